//! The shared plan/apply for package managers without apt's extras (dnf, yum, apk): which
//! named packages are installed, then one install, upgrade or remove transaction.

use crate::modules::{Args, Diff, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::quote_all;

/// The commands one package manager needs. `{}` in a template is the quoted package list.
pub struct Backend {
    pub name: &'static str,
    /// Prints the names of the installed packages among `{}`, one per line.
    pub installed: &'static str,
    /// Prints the names among `{}` that have an upgrade available, one per line.
    pub upgradable: &'static str,
    pub install: &'static str,
    pub upgrade: &'static str,
    pub remove: &'static str,
    pub update_cache: &'static str,
}

impl Backend {
    pub async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        mut args: Args,
    ) -> Result<ModuleResult, ModuleError> {
        let names = args.list(&["name", "pkg", "package"])?;
        let state = args.choice(
            "state",
            &["present", "installed", "latest", "absent", "removed"],
            "present",
        )?;
        let update_cache = args.bool("update_cache", false)?;
        let _ = args.raw_any(&[
            "disable_gpg_check",
            "enablerepo",
            "disablerepo",
            "install_weak_deps",
            "lock_timeout",
            "repository",
            "no_cache",
            "world",
            "allowerasing",
        ]);
        args.finish()?;
        if names.is_empty() && !update_cache {
            return Err(ModuleError::Args(format!(
                "{}: missing required argument: name",
                self.name
            )));
        }
        let list = quote_all(&names);
        let fill = |template: &str| template.replace("{}", &list);
        if update_cache && !ctx.check_mode {
            ctx.run_ok(
                self.update_cache,
                None,
                &format!("{} cache update", self.name),
            )
            .await?;
        }
        let mut result = ModuleResult::changed(false);
        if names.is_empty() {
            result.changed = update_cache;
            return Ok(result);
        }
        let mut probe = fill(self.installed);
        if state == "latest" {
            probe = format!("{probe}; echo --upgradable--; {}", fill(self.upgradable));
        }
        let out = ctx.run(&probe, None).await?.stdout_text();
        let (installed, upgradable) = out.split_once("--upgradable--").unwrap_or((&out, ""));
        fn is_listed(text: &str, name: &str) -> bool {
            text.lines().any(|l| l.trim() == name)
        }
        let (action, targets): (&str, Vec<String>) = match state.as_str() {
            "absent" | "removed" => (
                self.remove,
                names
                    .iter()
                    .filter(|n| is_listed(installed, n))
                    .cloned()
                    .collect(),
            ),
            "latest" => (
                self.upgrade,
                names
                    .iter()
                    .filter(|n| !is_listed(installed, n) || is_listed(upgradable, n))
                    .cloned()
                    .collect(),
            ),
            _ => (
                self.install,
                names
                    .iter()
                    .filter(|n| !is_listed(installed, n))
                    .cloned()
                    .collect(),
            ),
        };
        if targets.is_empty() {
            return Ok(result);
        }
        result.changed = true;
        let quoted = quote_all(&targets);
        if ctx.diff {
            result.diffs.push(Diff {
                before_header: "packages".into(),
                after_header: "packages".into(),
                after: format!("{state}: {quoted}\n"),
                ..Default::default()
            });
        }
        if !ctx.check_mode {
            let out = ctx.run(&action.replace("{}", &quoted), None).await?;
            result = result
                .with("rc", out.rc)
                .with("stdout", out.stdout_text())
                .with("stderr", out.stderr_text());
            if out.rc != 0 {
                result.failed = true;
                result.msg = Some(format!(
                    "{} failed for {quoted}: {}",
                    self.name,
                    out.stderr_text().trim()
                ));
            }
        }
        Ok(result.with("results", targets))
    }
}
