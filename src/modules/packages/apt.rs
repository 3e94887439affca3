//! `apt`: Debian packages through apt-get, non-interactively, waiting for the dpkg lock.
//!
//! Plan: one command reads the cache's age and each named package's status (and, for
//! `latest`, its candidate version). Apply: at most an `apt-get update` and one `apt-get`
//! transaction for everything that must change.

use async_trait::async_trait;

use super::version_matches;
use crate::connection::quote;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Apt;

/// apt-get's options for unattended runs: keep changed config files, wait for the lock.
pub fn apt_get(lock_timeout: i64, extra: &str) -> String {
    format!(
        "DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -y -q -o DPkg::Lock::Timeout={lock_timeout} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold{extra}"
    )
}

/// Sets `mtime` to the mtime of the package lists as Ansible reads it (apt's update-success
/// stamp if there is one, else the lists directory, else 0), in nanoseconds: an update that
/// changes the lists within the second of the previous one still moves it.
const CACHE_MTIME: &str = "mtime=$(stat -c %.9Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %.9Y /var/lib/apt/lists 2>/dev/null || echo 0)";

/// The whole seconds of an mtime the target printed; anything unreadable counts as never.
fn mtime_seconds(mtime: &str) -> i64 {
    let whole = mtime.trim().split('.').next().unwrap_or_default();
    whole.parse().unwrap_or(0)
}

/// A package as named in the task: `nginx`, `nginx=1.22*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub name: String,
    pub version: Option<String>,
}

pub fn parse_wanted(spec: &str) -> Wanted {
    match spec.split_once('=') {
        Some((name, version)) => Wanted {
            name: name.trim().to_string(),
            version: Some(version.trim().to_string()),
        },
        None => Wanted {
            name: spec.trim().to_string(),
            version: None,
        },
    }
}

/// What the target says about one package.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Installed {
    pub installed: Option<String>,
    pub candidate: Option<String>,
    /// Removed but its configuration files kept (`rc`), for `purge`.
    pub config_files: bool,
}

/// Parses the probe's `pkg:NAME\tSTATUS\tVERSION` and `cand:NAME\tVERSION` lines.
pub fn parse_status(text: &str, name: &str) -> Installed {
    let mut out = Installed::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pkg:") {
            let mut f = rest.split('\t');
            let (Some(n), Some(status), Some(version)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            // `Package` may carry an architecture qualifier (`libc6:amd64`).
            if n.split(':').next() != Some(name) {
                continue;
            }
            match status.trim() {
                "ii" | "hi" => out.installed = Some(version.to_string()),
                "rc" => out.config_files = true,
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix("cand:") {
            if let Some((n, version)) = rest.split_once('\t') {
                if n == name && version != "(none)" && !version.is_empty() {
                    out.candidate = Some(version.to_string());
                }
            }
        }
    }
    out
}

#[async_trait]
impl Module for Apt {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let names = args.list(&["name", "pkg", "package"])?;
        let state = args.choice(
            "state",
            &[
                "present",
                "installed",
                "absent",
                "removed",
                "latest",
                "fixed",
                "build-dep",
            ],
            "present",
        )?;
        let update_cache = args.bool("update_cache", false)? || args.bool("update-cache", false)?;
        let cache_valid_time = args.int("cache_valid_time")?.unwrap_or(0);
        let install_recommends = match args.raw_any(&["install_recommends", "install-recommends"]) {
            None => None,
            Some(v) => Some(crate::modules::args::parse_bool(&v).ok_or_else(|| {
                ModuleError::Args(format!(
                    "apt: option 'install_recommends' must be a boolean, got '{v}'"
                ))
            })?),
        };
        let deb = args.str(&["deb"])?;
        let purge = args.bool("purge", false)?;
        let autoremove = args.bool("autoremove", false)?;
        let upgrade = args.choice("upgrade", &["no", "yes", "safe", "full", "dist"], "no")?;
        let default_release = args.str(&["default_release", "default-release"])?;
        let allow_unauthenticated = args.bool("allow_unauthenticated", false)?;
        let allow_downgrade = args.bool("allow_downgrade", false)?;
        let only_upgrade = args.bool("only_upgrade", false)?;
        let lock_timeout = args.int("lock_timeout")?.unwrap_or(60);
        let _ = args.raw_any(&["force", "force_apt_get", "dpkg_options", "policy_rc_d"]);
        args.finish()?;
        if state == "build-dep" || state == "fixed" {
            return Err(ModuleError::Args(format!(
                "apt: state={state} is not supported by kiln"
            )));
        }
        if deb.is_some() && !names.is_empty() {
            return Err(ModuleError::Args(
                "apt: parameters are mutually exclusive: deb|package".into(),
            ));
        }
        let wanted: Vec<Wanted> = names.iter().map(|n| parse_wanted(n)).collect();

        let mut extra = String::new();
        match install_recommends {
            Some(true) => extra.push_str(" -o APT::Install-Recommends=yes"),
            Some(false) => extra.push_str(" --no-install-recommends"),
            None => {}
        }
        if let Some(release) = &default_release {
            extra.push_str(&format!(" -t {}", quote(release)));
        }
        if allow_unauthenticated {
            extra.push_str(" --allow-unauthenticated");
        }
        if allow_downgrade {
            extra.push_str(" --allow-downgrades");
        }
        let apt = apt_get(lock_timeout, &extra);

        // Plan: cache age, package states, candidates (one command).
        // Lists without any Packages index were never updated, whatever their directory's age.
        // The second field is the lists' raw mtime, compared after an update as Ansible does.
        let mut probe = format!(
            "now=$(date +%s); {CACHE_MTIME}; stamp=${{mtime%.*}}; ls /var/lib/apt/lists 2>/dev/null | grep -q _Packages || stamp=0; echo \"age:$((now - stamp)) $mtime\"; ",
        );
        let deb_path = deb.clone();
        if let Some(path) = &deb_path {
            probe.push_str(&format!(
                "dpkg-deb -W --showformat='deb:${{Package}}\\t${{Version}}\\n' {} || exit 3; ",
                quote(path)
            ));
        }
        let quoted: Vec<String> = wanted.iter().map(|w| quote(&w.name)).collect();
        if !quoted.is_empty() {
            probe.push_str(&format!(
                "dpkg-query -W -f='pkg:${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {} 2>/dev/null; ",
                quoted.join(" ")
            ));
        }
        // As in Ansible, an explicit cache_valid_time asks for an update too.
        let need_update = |age: i64| {
            (update_cache || cache_valid_time > 0)
                && (cache_valid_time == 0 || age > cache_valid_time)
        };
        let first = ctx.run(&probe, None).await?;
        if first.rc == 3 {
            return Err(ModuleError::Failed(format!(
                "apt: cannot read the package file {}: {}",
                deb.unwrap_or_default(),
                first.stderr_text().trim()
            )));
        }
        let text = first.stdout_text();
        let (age, mut cache_mtime) = text
            .lines()
            .find_map(|l| l.strip_prefix("age:"))
            .and_then(|s| s.split_once(' '))
            .map(|(a, m)| (a.parse::<i64>().unwrap_or(i64::MAX), m.trim().to_string()))
            .unwrap_or((i64::MAX, String::new()));

        let mut result = ModuleResult::changed(false);
        let mut cache_updated = false;
        if need_update(age) {
            // Check mode cannot know whether the lists would change and reports that they
            // would; a real update changed them only if it moved their mtime.
            cache_updated = ctx.check_mode;
            if !ctx.check_mode {
                let out = ctx
                    .run_ok(
                        &format!("{apt} update && {CACHE_MTIME} && echo \"mtime:$mtime\""),
                        None,
                        "apt-get update",
                    )
                    .await
                    .map_err(|e| ModuleError::Failed(format!("Failed to update apt cache: {e}")))?
                    .stdout_text();
                let after = out
                    .lines()
                    .find_map(|l| l.strip_prefix("mtime:"))
                    .map(|m| m.trim().to_string())
                    .unwrap_or_default();
                cache_updated = after != cache_mtime;
                cache_mtime = after;
            }
        }
        result = result
            .with("cache_updated", cache_updated)
            .with("cache_update_time", mtime_seconds(&cache_mtime));

        // Candidates are read after any cache update so `latest` sees new versions.
        let statuses = if state == "latest"
            && !wanted.is_empty()
            && !(cache_updated && ctx.check_mode)
        {
            let cmd = format!(
                "dpkg-query -W -f='pkg:${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {q} 2>/dev/null; for p in {q}; do printf 'cand:%s\\t%s\\n' \"$p\" \"$(apt-cache policy -- \"$p\" 2>/dev/null | sed -n 's/^ *Candidate: //p')\"; done",
                q = quoted.join(" ")
            );
            ctx.run(&cmd, None).await?.stdout_text()
        } else {
            text.clone()
        };

        let mut install: Vec<String> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        for w in &wanted {
            let status = parse_status(&statuses, &w.name);
            match state.as_str() {
                "present" | "installed" => {
                    let ok = match (&status.installed, &w.version) {
                        (Some(v), Some(want)) => version_matches(v, want),
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    let skip = only_upgrade && status.installed.is_none();
                    if !(ok || skip) {
                        install.push(spec(w));
                    }
                }
                "latest" => {
                    let stale = match (&status.installed, &status.candidate) {
                        (None, _) => !only_upgrade,
                        (Some(i), Some(c)) => i != c,
                        (Some(_), None) => false,
                    };
                    if stale {
                        install.push(w.name.clone());
                    }
                }
                _ => {
                    if status.installed.is_some() || (purge && status.config_files) {
                        remove.push(w.name.clone());
                    }
                }
            }
        }
        if let Some(path) = &deb_path {
            let (pkg, version) = text
                .lines()
                .find_map(|l| l.strip_prefix("deb:"))
                .and_then(|l| l.split_once('\t'))
                .map(|(p, v)| (p.to_string(), v.to_string()))
                .unwrap_or_default();
            let installed = ctx
                .run(
                    &format!(
                        "dpkg-query -W -f='${{db:Status-Abbrev}}\\t${{Version}}' {} 2>/dev/null",
                        quote(&pkg)
                    ),
                    None,
                )
                .await?
                .stdout_text();
            let current = installed
                .split_once('\t')
                .filter(|(s, _)| s.trim() == "ii")
                .map(|(_, v)| v.to_string());
            if current.as_deref() != Some(version.as_str()) {
                install.push(path.clone());
            }
        }

        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut changed = false;
        if !install.is_empty() {
            changed = true;
            if !ctx.check_mode {
                let cmd = format!("{apt} install {}", quote_all(&install));
                let out = ctx.run(&cmd, None).await?;
                stdout.push_str(&out.stdout_text());
                stderr.push_str(&out.stderr_text());
                if out.rc != 0 {
                    return Err(failure("install", &install, &out));
                }
            }
        }
        if !remove.is_empty() {
            changed = true;
            if !ctx.check_mode {
                let purge_flag = if purge { " --purge" } else { "" };
                let cmd = format!("{apt} remove{purge_flag} {}", quote_all(&remove));
                let out = ctx.run(&cmd, None).await?;
                stdout.push_str(&out.stdout_text());
                stderr.push_str(&out.stderr_text());
                if out.rc != 0 {
                    return Err(failure("remove", &remove, &out));
                }
            }
        }
        // Upgrades and autoremove: simulate first, so a no-op reports `ok`.
        let mut whole_system = Vec::new();
        if upgrade != "no" {
            whole_system.push(if upgrade == "full" || upgrade == "dist" {
                "dist-upgrade"
            } else {
                "upgrade --with-new-pkgs"
            });
        }
        if autoremove {
            whole_system.push(if purge {
                "autoremove --purge"
            } else {
                "autoremove"
            });
        }
        for action in whole_system {
            let simulated = ctx
                .run_ok(&format!("{apt} -s {action}"), None, "apt-get")
                .await?
                .stdout_text();
            let pending = simulated.lines().any(|l| {
                l.starts_with("Inst ") || l.starts_with("Remv ") || l.starts_with("Purg ")
            });
            if pending {
                changed = true;
                if !ctx.check_mode {
                    let out = ctx
                        .run_ok(
                            &format!("{apt} {action}"),
                            None,
                            &format!("apt-get {action}"),
                        )
                        .await?;
                    stdout.push_str(&out.stdout_text());
                }
            }
        }
        // Ansible reports a cache update as the change only when there is nothing else to do.
        result.changed =
            changed || (cache_updated && wanted.is_empty() && deb.is_none() && upgrade == "no");
        if ctx.diff && changed {
            result.diffs.push(Diff {
                before_header: "packages".into(),
                after_header: "packages".into(),
                before: String::new(),
                after: [
                    install
                        .iter()
                        .map(|p| format!("install {p}\n"))
                        .collect::<String>(),
                    remove.iter().map(|p| format!("remove {p}\n")).collect(),
                ]
                .concat(),
            });
        }
        Ok(result.with("stdout", stdout).with("stderr", stderr))
    }
}

fn spec(w: &Wanted) -> String {
    match &w.version {
        Some(v) => format!("{}={v}", w.name),
        None => w.name.clone(),
    }
}

fn quote_all(items: &[String]) -> String {
    items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(" ")
}

fn failure(action: &str, packages: &[String], out: &crate::connection::ExecOutput) -> ModuleError {
    let stderr = out.stderr_text();
    let msg = format!(
        "'apt-get {action} {}' failed: {}",
        packages.join(" "),
        stderr
            .lines()
            .filter(|l| l.starts_with("E:"))
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
    );
    ModuleResult::default()
        .with("rc", out.rc)
        .with("stdout", out.stdout_text())
        .with("stderr", stderr)
        .fail(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_candidates() {
        let text = "pkg:nginx\tii \t1.22.1-9\npkg:hello\trc \t2.10-3\ncand:nginx\t1.22.1-10\ncand:tree\t(none)\n";
        let nginx = parse_status(text, "nginx");
        assert_eq!(nginx.installed.as_deref(), Some("1.22.1-9"));
        assert_eq!(nginx.candidate.as_deref(), Some("1.22.1-10"));
        let hello = parse_status(text, "hello");
        assert!(hello.installed.is_none() && hello.config_files);
        assert_eq!(parse_status(text, "tree"), Installed::default());
    }

    #[test]
    fn versioned_names() {
        assert_eq!(
            parse_wanted("nginx=1.22*"),
            Wanted {
                name: "nginx".into(),
                version: Some("1.22*".into())
            }
        );
        assert_eq!(parse_wanted("tree").version, None);
    }

    #[test]
    fn a_name_list_built_by_an_expression_stays_a_list() {
        let vars: crate::value::VarMap = [
            ("base".to_string(), minijinja::Value::from(vec!["sudo"])),
            (
                "extra".to_string(),
                minijinja::Value::from(vec!["curl", "vim"]),
            ),
        ]
        .into_iter()
        .collect();
        let scope = crate::template::Scope::new(
            crate::template::Templar::new(),
            vec![std::sync::Arc::new(vars)],
        );
        let task_args = crate::template::map_value(
            [(
                "name".to_string(),
                minijinja::Value::from("{{ base + extra }}"),
            )]
            .into_iter()
            .collect(),
        );
        let rendered = scope.templar().render_value(&task_args, &scope).unwrap();
        let mut args = Args::new("apt", &rendered).unwrap();
        assert_eq!(
            args.list(&["name", "pkg", "package"]).unwrap(),
            vec!["sudo", "curl", "vim"]
        );
    }
}
