//! `deb822_repository`: an apt source in deb822 form, `/etc/apt/sources.list.d/<name>.sources`.
//! Like Ansible's, it does not update the cache (follow it with `apt: update_cache=yes`).

use async_trait::async_trait;
use minijinja::Value;

use crate::modules::files::write::remove_file;
use crate::modules::files::write::{converge, Attributes, WriteRequest};
use crate::modules::util::Mode;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Deb822Repository;

/// The file name Ansible derives from `name`: lowercased, runs of `_` and blanks made one `-`,
/// anything else but `a-z0-9-` dropped.
pub fn file_stem(name: &str) -> String {
    let mut stem = String::new();
    let mut in_run = false;
    for c in name.to_lowercase().chars() {
        if c == '_' || c.is_whitespace() {
            if !in_run {
                stem.push('-');
            }
            in_run = true;
            continue;
        }
        in_run = false;
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            stem.push(c);
        }
    }
    stem
}

/// The field name Ansible writes for an option (`date_max_future` → `Date-Max-Future`).
fn field_name(option: &str) -> String {
    match option {
        "name" => "X-Repolib-Name".into(),
        "uris" => "URIs".into(),
        _ => option
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                match chars.next() {
                    Some(first) => first
                        .to_uppercase()
                        .chain(chars.flat_map(char::to_lowercase))
                        .collect(),
                    None => String::new(),
                }
            })
            .collect::<Vec<String>>()
            .join("-"),
    }
}

/// A field as python-debian dumps it: a value of several lines starts on the next line,
/// each line indented four spaces, a blank one written `.`.
fn field(name: &str, value: &str) -> String {
    if !value.contains('\n') {
        return format!("{name}: {value}\n");
    }
    let mut out = format!("{name}:\n");
    for line in value.trim().lines() {
        let line = line.trim();
        out.push_str("    ");
        out.push_str(if line.is_empty() { "." } else { line });
        out.push('\n');
    }
    out
}

/// Options that are lists (space-separated in the file), booleans (`yes`/`no`) and strings;
/// Ansible writes every option given, sorted by option name.
const LISTS: &[&str] = &[
    "architectures",
    "components",
    "languages",
    "suites",
    "targets",
    "types",
    "uris",
];
const FLAGS: &[&str] = &[
    "allow_downgrade_to_insecure",
    "allow_insecure",
    "allow_weak",
    "by_hash",
    "check_date",
    "check_valid_until",
    "enabled",
    "pdiffs",
    "trusted",
];
const STRINGS: &[&str] = &["date_max_future", "inrelease_path", "name", "signed_by"];

/// The `.sources` file's text, as ansible-core's module writes it.
fn sources(args: &mut Args) -> Result<String, ModuleError> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for option in LISTS {
        let mut values = args.list(&[option])?;
        if *option == "types" && values.is_empty() {
            values.push("deb".into());
        }
        if !values.is_empty() {
            fields.push((option, values.join(" ")));
        }
    }
    for option in FLAGS {
        if let Some(v) = args.raw(option) {
            let text = match crate::modules::args::parse_bool(&v) {
                Some(true) => "yes".to_string(),
                Some(false) => "no".to_string(),
                None => {
                    return Err(ModuleError::Args(format!(
                        "deb822_repository: option '{option}' must be a boolean (yes/no), got '{v}'"
                    )))
                }
            };
            fields.push((option, text));
        }
    }
    for option in STRINGS {
        if let Some(v) = args.str(&[option])? {
            if *option == "signed_by" && (v.starts_with("http://") || v.starts_with("https://")) {
                return Err(ModuleError::Args(
                    "deb822_repository: signed_by as a URL is not supported by kiln; give a key file path or the key itself".into(),
                ));
            }
            fields.push((option, v));
        }
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    Ok(fields
        .iter()
        .map(|(option, value)| field(&field_name(option), value))
        .collect())
}

#[async_trait]
impl Module for Deb822Repository {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let content = sources(&mut args)?;
        let mode = match args.raw("mode") {
            Some(v) => crate::modules::util::parse_mode(&v)
                .map_err(|e| ModuleError::Args(format!("deb822_repository: {e}")))?,
            None => Mode::Octal(0o644),
        };
        let _ = args.raw_any(&["install_python_debian"]);
        args.finish()?;
        if state == "present" && !content.contains("\nURIs:") && !content.starts_with("URIs:") {
            return Err(ModuleError::Args(
                "deb822_repository: uris is required with state=present".into(),
            ));
        }
        let dest = format!("/etc/apt/sources.list.d/{}.sources", file_stem(&name));
        if state == "absent" {
            let result = remove_file(ctx, &dest).await?;
            return Ok(result
                .with("dest", dest)
                .with("repo", Value::from(()))
                .with("key_filename", Value::from(())));
        }
        let result = converge(
            ctx,
            WriteRequest {
                dest: dest.clone(),
                content: content.clone().into_bytes(),
                attrs: Attributes {
                    mode: Some(mode),
                    ..Default::default()
                },
                backup: false,
                validate: None,
                force: true,
                follow: false,
            },
        )
        .await?;
        Ok(result
            .with("dest", dest)
            .with("repo", content)
            .with("key_filename", Value::from(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_fields_start_on_their_own_line() {
        assert_eq!(
            field("Signed-By", "-----BEGIN-----\n\nabc\n-----END-----\n"),
            "Signed-By:\n    -----BEGIN-----\n    .\n    abc\n    -----END-----\n"
        );
        assert_eq!(field("Types", "deb"), "Types: deb\n");
    }

    #[test]
    fn names_and_file_stems_as_ansible_writes_them() {
        assert_eq!(file_stem("Docker CE"), "docker-ce");
        assert_eq!(
            file_stem("ansible-test focal_archive.x"),
            "ansible-test-focal-archivex"
        );
        assert_eq!(field_name("date_max_future"), "Date-Max-Future");
        assert_eq!(field_name("uris"), "URIs");
        assert_eq!(field_name("name"), "X-Repolib-Name");
        assert_eq!(field_name("by_hash"), "By-Hash");
    }

    #[test]
    fn options_are_written_sorted_by_name() {
        let value = crate::template::map_value(indexmap::IndexMap::from_iter([
            (
                "name".to_string(),
                Value::from("ansible-test focal archive"),
            ),
            (
                "uris".to_string(),
                Value::from("http://us.archive.ubuntu.com/ubuntu"),
            ),
            (
                "suites".to_string(),
                Value::from(vec!["focal", "focal-updates"]),
            ),
            (
                "components".to_string(),
                Value::from(vec!["main", "restricted"]),
            ),
            ("date_max_future".to_string(), Value::from(10)),
            ("enabled".to_string(), Value::from(true)),
        ]));
        let mut args = Args::new("deb822_repository", &value).unwrap();
        assert_eq!(
            sources(&mut args).unwrap(),
            "Components: main restricted\nDate-Max-Future: 10\nEnabled: yes\nX-Repolib-Name: ansible-test focal archive\nSuites: focal focal-updates\nTypes: deb\nURIs: http://us.archive.ubuntu.com/ubuntu\n"
        );
    }
}
