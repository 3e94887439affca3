//! `apt`: Debian packages through apt-get, non-interactively, waiting for the dpkg lock.
//!
//! Observe: one command reads the cache's age and each named package's status (and, for
//! `latest`, a second one its candidate version after any cache update). The pure plan
//! (`plan.rs`) lists the transactions; `run` decides check mode once: report the plan, or
//! apply it with at most an `apt-get update` and one `apt-get` transaction per kind.

pub mod plan;

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::quote_all;
use plan::{
    mtime_seconds, parse_deb_installed, parse_probe, parse_wanted, simulation_pending, AptArgs,
    Observed, ObservedDeb, PackageState, Plan, Probed, Upgrade, WholeSystem,
};

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

/// Reads and checks the task's options.
fn parse(mut args: Args) -> Result<AptArgs, ModuleError> {
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
    let autoclean = args.bool("autoclean", false)?;
    let upgrade = args.choice("upgrade", &["no", "yes", "safe", "full", "dist"], "no")?;
    let default_release = args.str(&["default_release", "default-release"])?;
    let allow_unauthenticated = args.bool("allow_unauthenticated", false)?;
    let allow_downgrade = args.bool("allow_downgrade", false)?;
    let only_upgrade = args.bool("only_upgrade", false)?;
    let lock_timeout = args.int("lock_timeout")?.unwrap_or(60);
    let _ = args.raw_any(&["force", "force_apt_get", "dpkg_options", "policy_rc_d"]);
    args.finish()?;
    let state = PackageState::parse(&state)?;
    if deb.is_some() && !names.is_empty() {
        return Err(ModuleError::Args(
            "apt: parameters are mutually exclusive: deb|package".into(),
        ));
    }
    Ok(AptArgs {
        packages: names.iter().map(|n| parse_wanted(n)).collect(),
        deb,
        state,
        update_cache,
        cache_valid_time,
        install_recommends,
        default_release,
        allow_unauthenticated,
        allow_downgrade,
        only_upgrade,
        lock_timeout,
        purge,
        autoremove,
        autoclean,
        upgrade: Upgrade::parse(&upgrade),
    })
}

/// dpkg's `pkg:NAME\tSTATUS\tVERSION` lines for the quoted names.
fn status_query(quoted: &str) -> String {
    format!(
        "dpkg-query -W -f='pkg:${{Package}}\\t${{db:Status-Abbrev}}\\t${{Version}}\\n' {quoted} 2>/dev/null"
    )
}

fn quoted_names(args: &AptArgs) -> String {
    quote_all(args.packages.iter().map(|w| w.name.as_str()))
}

/// The first command: cache age, the `.deb` file's package, the named packages' states.
/// Lists without any Packages index were never updated, whatever their directory's age.
/// The second field is the lists' raw mtime, compared after an update as Ansible does.
fn probe_command(args: &AptArgs) -> String {
    let mut probe = format!(
        "now=$(date +%s); {CACHE_MTIME}; stamp=${{mtime%.*}}; ls /var/lib/apt/lists 2>/dev/null | grep -q _Packages || stamp=0; echo \"age:$((now - stamp)) $mtime\"; ",
    );
    if let Some(path) = &args.deb {
        probe.push_str(&format!(
            "dpkg-deb -W --showformat='deb:${{Package}}\\t${{Version}}\\n' {} || exit 3; ",
            quote(path)
        ));
    }
    if !args.packages.is_empty() {
        probe.push_str(&status_query(&quoted_names(args)));
        probe.push_str("; ");
    }
    probe
}

/// States and `cand:NAME\tVERSION` lines, read after any cache update so `latest` sees new
/// versions.
fn candidates_command(args: &AptArgs) -> String {
    let quoted = quoted_names(args);
    format!(
        "{}; for p in {quoted}; do printf 'cand:%s\\t%s\\n' \"$p\" \"$(apt-cache policy -- \"$p\" 2>/dev/null | sed -n 's/^ *Candidate: //p')\"; done",
        status_query(&quoted)
    )
}

#[async_trait]
impl Module for Apt {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        let args = parse(args)?;
        let first = ctx.run(&probe_command(&args), None).await?;
        if first.rc == 3 {
            return Err(ModuleError::Failed(format!(
                "apt: cannot read the package file {}: {}",
                args.deb.as_deref().unwrap_or_default(),
                first.stderr_text().trim()
            )));
        }
        let probed = parse_probe(&first.stdout_text());
        if ctx.check_mode {
            report(ctx, &args, &probed).await
        } else {
            apply(ctx, &args, &probed).await
        }
    }
}

/// Check mode: what a run would do. It cannot know whether the lists would change and
/// reports that they would; candidates are then unknown (the lists would be new).
async fn report(
    ctx: &ModuleCtx<'_>,
    args: &AptArgs,
    probed: &Probed,
) -> Result<ModuleResult, ModuleError> {
    let update = args.needs_cache_update(probed.cache_age);
    let observed = observe(ctx, args, probed, !update).await?;
    let plan = plan::plan(args, &observed);
    let mut changed = !plan.install.is_empty() || !plan.remove.is_empty();
    let apt = args.apt_get();
    for &action in &plan.whole_system {
        changed |= simulate(ctx, &apt, action).await?;
    }
    let output = Output {
        changed,
        cache_updated: update,
        cache_mtime: probed.cache_mtime.clone(),
        ..Output::default()
    };
    Ok(output.result(ctx, args, &plan))
}

/// A real run: update the lists if due, then the plan's transactions.
async fn apply(
    ctx: &ModuleCtx<'_>,
    args: &AptArgs,
    probed: &Probed,
) -> Result<ModuleResult, ModuleError> {
    let update = args.needs_cache_update(probed.cache_age);
    let apt = args.apt_get();
    let mut output = Output {
        cache_mtime: probed.cache_mtime.clone(),
        ..Output::default()
    };
    if update {
        // An update changed the lists only if it moved their mtime.
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
        output.cache_updated = after != output.cache_mtime;
        output.cache_mtime = after;
    }
    let observed = observe(ctx, args, probed, true).await?;
    let plan = plan::plan(args, &observed);
    if !plan.install.is_empty() {
        output.changed = true;
        let cmd = format!("{apt} install {}", quote_all(&plan.install));
        output
            .transaction(ctx, &cmd, "install", &plan.install)
            .await?;
    }
    if !plan.remove.is_empty() {
        output.changed = true;
        let purge_flag = if plan.purge { " --purge" } else { "" };
        let cmd = format!("{apt} remove{purge_flag} {}", quote_all(&plan.remove));
        output
            .transaction(ctx, &cmd, "remove", &plan.remove)
            .await?;
    }
    for &action in &plan.whole_system {
        if simulate(ctx, &apt, action).await? {
            output.changed = true;
            let action = action.as_str();
            let out = ctx
                .run_ok(
                    &format!("{apt} {action}"),
                    None,
                    &format!("apt-get {action}"),
                )
                .await?;
            output.stdout.push_str(&out.stdout_text());
        }
    }
    Ok(output.result(ctx, args, &plan))
}

/// Reads what the plan needs beyond the first probe: candidates for `latest` (when
/// `read_candidates`) and the installed version of a `.deb` file's package.
async fn observe(
    ctx: &ModuleCtx<'_>,
    args: &AptArgs,
    probed: &Probed,
    read_candidates: bool,
) -> Result<Observed, ModuleError> {
    let statuses = if args.reads_candidates() && read_candidates {
        ctx.run(&candidates_command(args), None)
            .await?
            .stdout_text()
    } else {
        probed.text.clone()
    };
    let deb = match &args.deb {
        None => None,
        Some(_) => {
            let (package, version) = probed.deb.clone().unwrap_or_default();
            let installed = ctx
                .run(
                    &format!(
                        "dpkg-query -W -f='${{db:Status-Abbrev}}\\t${{Version}}' {} 2>/dev/null",
                        quote(&package)
                    ),
                    None,
                )
                .await?
                .stdout_text();
            Some(ObservedDeb {
                version,
                installed: parse_deb_installed(&installed),
            })
        }
    };
    Ok(Observed { statuses, deb })
}

/// Simulates a whole-system action: whether it would change anything.
async fn simulate(
    ctx: &ModuleCtx<'_>,
    apt: &str,
    action: WholeSystem,
) -> Result<bool, ModuleError> {
    let simulated = ctx
        .run_ok(&format!("{apt} -s {}", action.as_str()), None, "apt-get")
        .await?
        .stdout_text();
    Ok(simulation_pending(&simulated))
}

/// What a run did (or, in check mode, would do), gathered into the module's result.
#[derive(Default)]
struct Output {
    changed: bool,
    cache_updated: bool,
    cache_mtime: String,
    stdout: String,
    stderr: String,
}

impl Output {
    /// Runs one `apt-get install`/`remove`, keeping its output; a failure keeps `rc` too.
    async fn transaction(
        &mut self,
        ctx: &ModuleCtx<'_>,
        command: &str,
        action: &str,
        packages: &[String],
    ) -> Result<(), ModuleError> {
        let out = ctx.run(command, None).await?;
        self.stdout.push_str(&out.stdout_text());
        self.stderr.push_str(&out.stderr_text());
        if out.rc != 0 {
            return Err(failure(action, packages, &out));
        }
        Ok(())
    }

    fn result(self, ctx: &ModuleCtx<'_>, args: &AptArgs, plan: &Plan) -> ModuleResult {
        // Ansible reports a cache update as the change only when there is nothing else to do.
        let mut result = ModuleResult::changed(
            self.changed || (self.cache_updated && args.only_updates_cache()),
        )
        .with("cache_updated", self.cache_updated)
        .with("cache_update_time", mtime_seconds(&self.cache_mtime));
        if ctx.diff && self.changed {
            result.diffs.push(Diff {
                before_header: "packages".into(),
                after_header: "packages".into(),
                before: String::new(),
                after: plan.diff_text(),
            });
        }
        result
            .with("stdout", self.stdout)
            .with("stderr", self.stderr)
    }
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
