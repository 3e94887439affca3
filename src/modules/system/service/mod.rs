//! `service`, `systemd` and `systemd_service`: a unit's run state, enablement and mask under
//! systemd, in Ansible's order (daemon-reload, mask, enable, state). Without systemd,
//! `service` falls back to the `service` command and update-rc.d / chkconfig / rc-update.
//!
//! Plan: one `systemctl show` (plus `is-enabled`) reads everything; apply runs only the
//! `systemctl` verbs that change something (`restarted`/`reloaded` always do).

pub mod plan;

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::map_value;
use plan::{parse_sysv, parse_unit, plan_systemd, plan_sysv, RunState, Wanted};

pub struct Service {
    /// `systemd`/`systemd_service`: fail on a host without systemd rather than fall back.
    pub systemd_only: bool,
}

#[async_trait]
impl Module for Service {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let module = args.module();
        let name = args.str(&["name", "service", "unit"])?;
        let state = args
            .str(&["state"])?
            .as_deref()
            .map(|s| RunState::parse(module, s))
            .transpose()?;
        let optional_bool = |args: &mut Args, key: &str| -> Result<Option<bool>, ModuleError> {
            match args.raw(key) {
                None => Ok(None),
                Some(v) => crate::modules::args::parse_bool(&v)
                    .map(Some)
                    .ok_or_else(|| {
                        ModuleError::Args(format!(
                            "{module}: option '{key}' must be a boolean (yes/no), got '{v}'"
                        ))
                    }),
            }
        };
        let enabled = optional_bool(&mut args, "enabled")?;
        // `service` hands these to systemd as Ansible's service action does; only a host
        // without systemd refuses them (below).
        let masked = optional_bool(&mut args, "masked")?;
        let daemon_reload =
            args.bool("daemon_reload", false)? || args.bool("daemon-reload", false)?;
        let daemon_reexec =
            args.bool("daemon_reexec", false)? || args.bool("daemon-reexec", false)?;
        let scope = args.choice("scope", &["system", "user", "global"], "system")?;
        let systemd_args = masked.is_some() || daemon_reload || daemon_reexec || scope != "system";
        let no_block = args.bool("no_block", false)?;
        let _ = args.raw_any(&[
            "pattern",
            "sleep",
            "arguments",
            "args",
            "runlevel",
            "use",
            "force",
        ]);
        args.finish()?;
        let wanted = Wanted {
            name: name.clone().unwrap_or_default(),
            state,
            enabled,
            masked,
            daemon_reload,
            daemon_reexec,
            no_block,
            user_scope: scope == "user",
        };
        if name.is_none() && !(daemon_reload || daemon_reexec) {
            return Err(ModuleError::Args(format!(
                "{module}: missing required argument: name"
            )));
        }
        if name.is_some()
            && wanted.state.is_none()
            && wanted.enabled.is_none()
            && wanted.masked.is_none()
            && !daemon_reload
        {
            return Err(ModuleError::Args(format!(
                "{module}: one of the following is required: state, enabled{}",
                if self.systemd_only {
                    ", masked, daemon_reload"
                } else {
                    ""
                }
            )));
        }
        // One command: is systemd running, reload units if asked, read the unit's state.
        let plan = ctx
            .run(&systemd_probe(&wanted, ctx.check_mode), None)
            .await?;
        let text = plan.stdout_text();
        if text.starts_with(NO_SYSTEMD) {
            if self.systemd_only {
                return Err(ModuleError::Failed(format!(
                    "{module}: systemd is not running on this host (no /run/systemd/system)"
                )));
            }
            if systemd_args {
                return Err(ModuleError::Args(format!(
                    "{module}: masked, daemon_reload, daemon_reexec and scope need systemd, which this host does not run"
                )));
            }
            return sysv(ctx, &wanted).await;
        }
        if plan.rc == 3 {
            return Err(ModuleError::Failed(format!(
                "systemctl daemon-reload failed: {}",
                plan.stderr_text().trim()
            )));
        }
        systemd(ctx, &wanted, &text).await
    }
}

const NO_SYSTEMD: &str = "kiln:no-systemd";

fn systemctl(wanted: &Wanted) -> &'static str {
    if wanted.user_scope {
        "systemctl --user"
    } else {
        "systemctl"
    }
}

/// The plan's command: systemd's presence, the daemon reload (not a change Ansible reports,
/// and it must precede reading the unit), then `systemctl show` and `is-enabled`.
fn systemd_probe(wanted: &Wanted, check_mode: bool) -> String {
    let systemctl = systemctl(wanted);
    let mut command = format!("[ -d /run/systemd/system ] || {{ echo {NO_SYSTEMD}; exit 0; }}; ");
    if (wanted.daemon_reload || wanted.daemon_reexec) && !check_mode {
        let verb = if wanted.daemon_reexec {
            "daemon-reexec"
        } else {
            "daemon-reload"
        };
        command.push_str(&format!("{systemctl} {verb} || exit 3; "));
    }
    if !wanted.name.is_empty() {
        let q = quote(&wanted.name);
        command.push_str(&format!(
            "{systemctl} show --no-pager -- {q} 2>/dev/null; echo \"enablement:$({systemctl} is-enabled -l -- {q} 2>/dev/null)\""
        ));
    }
    command
}

async fn systemd(
    ctx: &ModuleCtx<'_>,
    wanted: &Wanted,
    probed: &str,
) -> Result<ModuleResult, ModuleError> {
    let systemctl = systemctl(wanted);
    let mut result = ModuleResult::changed(false);
    if wanted.name.is_empty() {
        return Ok(result);
    }
    let mut q = quote(&wanted.name);
    let mut unit = parse_unit(probed);
    // A name that is an alias (Debian's ntp for ntpsec) cannot be enabled or disabled as
    // such (systemd refuses): its enablement is the real unit's, and that is what changes.
    if unit.enablement == "alias" && wanted.enabled.is_some() {
        let real = unit.prop("Id").to_string();
        if !real.is_empty() && real != wanted.name {
            let real_q = quote(&real);
            let out = ctx
                .run(
                    &format!(
                        "echo \"enablement:$({systemctl} is-enabled -l -- {real_q} 2>/dev/null)\""
                    ),
                    None,
                )
                .await?;
            let real_unit = parse_unit(&out.stdout_text());
            unit.enablement = real_unit.enablement;
            unit.links_listed = real_unit.links_listed;
            q = real_q;
        }
    }
    // A state or enablement needs the unit, in check mode too, as Ansible's module does (a
    // unit is never assumed); masking works on units not installed yet.
    if !unit.found() && (wanted.state.is_some() || wanted.enabled.is_some()) {
        return Err(ModuleError::Failed(format!(
            "Could not find the requested service {}: host",
            wanted.name
        )));
    }
    let verbs = plan_systemd(wanted, &unit);
    let running = unit.running();
    let no_block = if wanted.no_block { " --no-block" } else { "" };
    if !ctx.check_mode {
        for verb in &verbs {
            let out = ctx
                .run(
                    &format!("{systemctl}{no_block} {} -- {q}", verb.as_str()),
                    None,
                )
                .await?;
            if out.rc != 0 {
                let journal = ctx
                    .run(
                        &format!("{systemctl} status --no-pager --lines=10 -- {q} 2>&1"),
                        None,
                    )
                    .await
                    .map(|o| o.stdout_text())
                    .unwrap_or_default();
                return Err(ModuleError::Failed(format!(
                    "Unable to {} service {}: {}\n{}",
                    verb.as_str(),
                    wanted.name,
                    out.stderr_text().trim(),
                    journal.trim_end()
                )));
            }
        }
    }
    result.changed = !verbs.is_empty();
    let final_state = match wanted.state {
        Some(RunState::Stopped) => "stopped",
        Some(_) => "started",
        None if running => "started",
        None => "stopped",
    };
    let status: IndexMap<String, Value> = unit
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    result = result
        .with("name", wanted.name.as_str())
        .with("state", final_state)
        .with("status", map_value(status));
    if let Some(enabled) = wanted.enabled {
        result = result.with("enabled", enabled);
    }
    Ok(result)
}

/// Services without systemd: `service NAME status|start|stop|…` and the distribution's
/// boot-link tool.
async fn sysv(ctx: &ModuleCtx<'_>, wanted: &Wanted) -> Result<ModuleResult, ModuleError> {
    let q = quote(&wanted.name);
    let probe = format!(
        "if command -v rc-service >/dev/null 2>&1; then rc-service {q} status >/dev/null 2>&1; echo \"running:$?\"; rc-update show default 2>/dev/null | grep -qw {q} && echo enabled:yes; echo tool:openrc; \
         else service {q} status >/dev/null 2>&1; echo \"running:$?\"; ls /etc/rc[2345].d/S??{q} >/dev/null 2>&1 && echo enabled:yes; \
         if command -v update-rc.d >/dev/null 2>&1; then echo tool:update-rc.d; elif command -v chkconfig >/dev/null 2>&1; then echo tool:chkconfig; fi; fi"
    );
    let text = ctx.run(&probe, None).await?.stdout_text();
    let observed = parse_sysv(&text);
    let commands = plan_sysv(wanted, &observed)?;
    let ctl = if observed.tool == "openrc" {
        "rc-service"
    } else {
        "service"
    };
    if !ctx.check_mode {
        for command in &commands {
            ctx.run_ok(command, None, ctl).await?;
        }
    }
    Ok(ModuleResult::changed(!commands.is_empty())
        .with("name", wanted.name.as_str())
        .with(
            "state",
            match wanted.state {
                Some(RunState::Stopped) => "stopped",
                _ => "started",
            },
        ))
}
