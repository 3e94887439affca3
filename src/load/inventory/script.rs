//! Executable inventory scripts, as Ansible's `script` plugin runs them: `SCRIPT --list` once
//! for the groups (`hosts`, `vars`, `children`, or a bare list of hosts), then the host
//! variables from `_meta.hostvars` when the output has it, else `SCRIPT --host HOST` per host.

use std::path::Path;
use std::process::Command;

use indexmap::IndexSet;
use serde_json::Value as Json;

use super::Inventory;
use crate::error::{Error, Result};
use crate::value::{vars_from_json, VarMap};

/// How many lines of a failing script's stderr an error quotes.
const STDERR_LINES: usize = 5;

/// Whether a file is an inventory script: an executable file that can run (a `#!` script or
/// an ELF binary). An INI or YAML file that merely has its execute bit set stays a static
/// inventory, as Ansible falls back to reading it when running it fails.
pub fn is_script(path: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let executable =
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let mut magic = [0u8; 4];
    executable
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok_and(|()| magic.starts_with(b"#!") || magic == *b"\x7fELF")
}

/// Runs the script and adds what it prints to the inventory.
pub fn load(inv: &mut Inventory, path: &Path) -> Result<()> {
    let listing = run(path, &["--list"])?;
    let listing = parse_json(path, "--list", &listing)?;
    add_listing(inv, path, &listing, |host| {
        let output = run(path, &["--host", host])?;
        if output.stdout.trim().is_empty() {
            return Ok(Json::Object(Default::default()));
        }
        parse_json(path, &format!("--host {host}"), &output)
    })
}

/// The `--list` document's groups and hosts; `host_vars` answers for each host when the
/// document has no `_meta.hostvars`.
pub fn add_listing(
    inv: &mut Inventory,
    path: &Path,
    listing: &Json,
    mut host_vars: impl FnMut(&str) -> Result<Json>,
) -> Result<()> {
    let Some(groups) = listing.as_object() else {
        return Err(invalid(
            path,
            format!(
                "--list printed {} instead of a JSON object of groups",
                json_type(listing)
            ),
        ));
    };
    let mut meta_hostvars = None;
    let mut seen = IndexSet::new();
    for (group, body) in groups {
        if group == "_meta" {
            match body.get("hostvars") {
                Some(Json::Object(vars)) => meta_hostvars = Some(vars),
                Some(other) => {
                    return Err(invalid(
                        path,
                        format!(
                            "_meta.hostvars is {} instead of an object",
                            json_type(other)
                        ),
                    ))
                }
                None => {}
            }
            continue;
        }
        add_group(inv, path, group, body, &mut seen)?;
    }
    for host in seen {
        let vars = match meta_hostvars {
            Some(all) => all.get(&host).cloned().unwrap_or(Json::Null),
            None => host_vars(&host)?,
        };
        let vars = match vars {
            Json::Object(vars) => vars_from_json(&vars),
            Json::Null => VarMap::new(),
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "the variables of host '{host}' are {} instead of an object",
                        json_type(&other)
                    ),
                ))
            }
        };
        inv.hosts.entry(host).or_default().extend(vars);
    }
    Ok(())
}

fn add_group(
    inv: &mut Inventory,
    path: &Path,
    name: &str,
    body: &Json,
    seen: &mut IndexSet<String>,
) -> Result<()> {
    inv.group_mut(name);
    let malformed;
    let body = match body {
        // The bare list form: `"web": ["w1", "w2"]`.
        Json::Array(_) => {
            malformed = serde_json::json!({ "hosts": body });
            &malformed
        }
        // An object with none of the keys: the group is its own sole host, as Ansible reads it.
        Json::Object(map)
            if !["hosts", "vars", "children"]
                .iter()
                .any(|k| map.contains_key(*k)) =>
        {
            malformed = serde_json::json!({ "hosts": [name], "vars": body });
            &malformed
        }
        Json::Object(_) => body,
        other => {
            return Err(invalid(
                path,
                format!(
                    "group '{name}' is {} instead of an object or a list of hosts",
                    json_type(other)
                ),
            ))
        }
    };
    if let Some(hosts) = body.get("hosts") {
        let Some(hosts) = hosts.as_array() else {
            return Err(invalid(
                path,
                format!("{name}.hosts is {} instead of a list", json_type(hosts)),
            ));
        };
        for host in hosts {
            let host = scalar_text(host);
            inv.add_host(&host, (name != "all").then_some(name));
            seen.insert(host);
        }
    }
    if let Some(vars) = body.get("vars") {
        let Some(vars) = vars.as_object() else {
            return Err(invalid(
                path,
                format!("{name}.vars is {} instead of an object", json_type(vars)),
            ));
        };
        inv.group_mut(name).vars.extend(vars_from_json(vars));
    }
    if let Some(children) = body.get("children") {
        let Some(children) = children.as_array() else {
            return Err(invalid(
                path,
                format!(
                    "{name}.children is {} instead of a list",
                    json_type(children)
                ),
            ));
        };
        for child in children {
            let child = scalar_text(child);
            inv.group_mut(&child);
            inv.group_mut(name).children.insert(child);
        }
    }
    Ok(())
}

/// What a script printed.
struct Output {
    stdout: String,
    stderr: String,
}

fn run(path: &Path, args: &[&str]) -> Result<Output> {
    // A bare name would be looked up on PATH instead of in the current directory.
    let program = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            action: "run inventory script",
            source: e,
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        let code = output
            .status
            .code()
            .map(|c| format!("exit code {c}"))
            .unwrap_or_else(|| "killed by a signal".into());
        return Err(Error::Usage(format!(
            "inventory script {} {} failed ({code}){}",
            path.display(),
            args.join(" "),
            stderr_excerpt(&stderr)
        )));
    }
    Ok(Output {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    })
}

fn parse_json(path: &Path, args: &str, output: &Output) -> Result<Json> {
    serde_json::from_str(&output.stdout).map_err(|e| {
        Error::Usage(format!(
            "inventory script {} {args} did not print JSON ({e}){}",
            path.display(),
            stderr_excerpt(&output.stderr)
        ))
    })
}

/// The first lines of a script's stderr, for an error message.
fn stderr_excerpt(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(STDERR_LINES)
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr:\n  {}", lines.join("\n  "))
    }
}

fn invalid(path: &Path, message: String) -> Error {
    Error::Usage(format!("inventory script {}: {message}", path.display()))
}

/// A host or group name as Python would print the JSON scalar.
fn scalar_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(json: &str, per_host: &[(&str, Json)]) -> Result<Inventory> {
        let mut inv = Inventory::new();
        let asked: std::cell::RefCell<Vec<String>> = Default::default();
        add_listing(
            &mut inv,
            Path::new("inv.py"),
            &serde_json::from_str(json).unwrap(),
            |host| {
                asked.borrow_mut().push(host.to_string());
                Ok(per_host
                    .iter()
                    .find(|(h, _)| *h == host)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Json::Null))
            },
        )?;
        inv.finish();
        if json.contains("_meta") {
            assert!(asked.borrow().is_empty(), "asked --host with _meta present");
        }
        Ok(inv)
    }

    #[test]
    fn groups_vars_children_and_meta_hostvars() {
        let inv = listing(
            r#"{"web": {"hosts": ["w1", "w2"], "vars": {"port": 80}},
                "db": ["d1"],
                "prod": {"children": ["web", "db"]},
                "_meta": {"hostvars": {"w1": {"role": "front"}}}}"#,
            &[],
        )
        .unwrap();
        assert_eq!(inv.group_hosts("prod"), vec!["w1", "w2", "d1"]);
        let vars = inv.host_vars("w1").unwrap();
        assert_eq!(vars["port"], minijinja::Value::from(80));
        assert_eq!(vars["role"], minijinja::Value::from("front"));
        assert_eq!(inv.group_names("d1"), vec!["db", "prod"]);
    }

    #[test]
    fn without_meta_each_host_is_asked_for() {
        let inv = listing(
            r#"{"web": {"hosts": ["w1"]}, "solo": {"a": 1}}"#,
            &[("w1", serde_json::json!({"x": "y"}))],
        )
        .unwrap();
        assert_eq!(
            inv.host_vars("w1").unwrap()["x"],
            minijinja::Value::from("y")
        );
        // An object without hosts/vars/children is a group holding one host of its name.
        assert_eq!(inv.group_hosts("solo"), vec!["solo"]);
        assert_eq!(
            inv.host_vars("solo").unwrap()["a"],
            minijinja::Value::from(1)
        );
    }

    #[test]
    fn malformed_listings_are_errors_naming_the_script() {
        for bad in [
            r#"[1, 2]"#,
            r#"{"web": {"hosts": "w1"}}"#,
            r#"{"web": 3}"#,
            r#"{"_meta": {"hostvars": []}}"#,
        ] {
            let err = listing(bad, &[]).expect_err(bad).to_string();
            assert!(err.contains("inventory script inv.py"), "{err}");
        }
    }

    #[test]
    fn only_runnable_executables_are_scripts() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        assert!(is_script(&write("a.sh", "#!/bin/sh\n", 0o755)));
        assert!(!is_script(&write("b.sh", "#!/bin/sh\n", 0o644)));
        assert!(!is_script(&write("hosts", "[web]\nw1\n", 0o755)));
        assert!(!is_script(&write("x", "#", 0o755)));
    }

    #[test]
    fn stderr_is_quoted_by_its_first_lines() {
        let text = (1..=9).map(|i| format!("line{i}\n")).collect::<String>();
        let excerpt = stderr_excerpt(&text);
        assert!(excerpt.contains("line1") && excerpt.contains("line5"));
        assert!(!excerpt.contains("line6"));
        assert_eq!(stderr_excerpt(""), "");
    }
}
