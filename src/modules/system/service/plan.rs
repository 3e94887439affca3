//! `service`'s pure plans: from the wanted state and what systemd (or the SysV tools) said
//! about the unit, the verbs to run (no target needed; unit-tested on recorded output).

use indexmap::IndexMap;

use crate::connection::quote;
use crate::modules::ModuleError;

/// The `state` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

impl RunState {
    pub fn parse(module: &str, text: &str) -> Result<Self, ModuleError> {
        Ok(match text {
            "started" => Self::Started,
            "stopped" => Self::Stopped,
            "restarted" => Self::Restarted,
            "reloaded" => Self::Reloaded,
            other => {
                return Err(ModuleError::Args(format!(
                    "{module}: value of state must be one of: started, stopped, restarted, reloaded, got: {other}"
                )))
            }
        })
    }
}

/// The module's arguments, checked and typed.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// Empty: only a daemon reload was asked for.
    pub name: String,
    pub state: Option<RunState>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub daemon_reload: bool,
    pub daemon_reexec: bool,
    pub no_block: bool,
    pub user_scope: bool,
}

/// What the target's systemd says about a unit.
#[derive(Debug, Default, Clone)]
pub struct UnitState {
    pub properties: IndexMap<String, String>,
    /// `systemctl is-enabled` output: enabled, disabled, static, masked, …
    pub enablement: String,
    /// `is-enabled -l` went on to list the links that install the unit: an `indirect` unit
    /// whose `Also=` units are enabled. Ansible's module then takes it as enabled.
    pub links_listed: bool,
}

impl UnitState {
    pub fn found(&self) -> bool {
        let load = self.prop("LoadState");
        load != "not-found" && !(load == "masked" && self.prop("ActiveState").is_empty())
            || self.enablement == "masked"
    }
    pub fn prop(&self, key: &str) -> &str {
        self.properties.get(key).map(String::as_str).unwrap_or("")
    }
    pub fn running(&self) -> bool {
        matches!(
            self.prop("ActiveState"),
            "active" | "activating" | "reloading"
        )
    }
    /// Enabled as Ansible's systemd module judges it: `is-enabled` succeeded, except for
    /// `enabled-runtime`, `indirect` and `alias` (enabling those is left to systemctl, and
    /// disabling them changes nothing).
    pub fn enabled(&self) -> bool {
        match self.enablement.as_str() {
            "enabled" | "static" | "generated" | "transient" => true,
            "enabled-runtime" | "indirect" | "alias" => self.links_listed,
            _ => false,
        }
    }
    pub fn masked(&self) -> bool {
        self.enablement == "masked" || self.prop("LoadState") == "masked"
    }
}

/// Parses `systemctl show` output followed by `enablement:` from `is-enabled`.
pub fn parse_unit(text: &str) -> UnitState {
    let mut state = UnitState::default();
    let mut after_enablement = false;
    for line in text.lines() {
        if let Some(e) = line.strip_prefix("enablement:") {
            state.enablement = e.trim().to_string();
            after_enablement = true;
        } else if after_enablement {
            state.links_listed |= !line.trim().is_empty();
        } else if let Some((k, v)) = line.split_once('=') {
            state.properties.insert(k.to_string(), v.to_string());
        }
    }
    state
}

/// A `systemctl` verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Mask,
    Unmask,
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Mask => "mask",
            Verb::Unmask => "unmask",
            Verb::Enable => "enable",
            Verb::Disable => "disable",
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Reload => "reload",
        }
    }
}

/// The verbs that take a found unit to `wanted`, in Ansible's order (mask, enable, state);
/// `restarted` and `reloaded` always act.
pub fn plan_systemd(wanted: &Wanted, unit: &UnitState) -> Vec<Verb> {
    let mut verbs = Vec::new();
    match wanted.masked {
        Some(true) if !unit.masked() => verbs.push(Verb::Mask),
        Some(false) if unit.masked() => verbs.push(Verb::Unmask),
        _ => {}
    }
    // A static unit has no [Install] section; there is nothing to enable.
    let static_unit = unit.enablement == "static";
    match wanted.enabled {
        Some(true) if !static_unit && (!unit.enabled() || verbs.contains(&Verb::Unmask)) => {
            verbs.push(Verb::Enable)
        }
        Some(false) if unit.enabled() && !static_unit => verbs.push(Verb::Disable),
        _ => {}
    }
    let running = unit.running();
    match wanted.state {
        Some(RunState::Started) if !running => verbs.push(Verb::Start),
        Some(RunState::Stopped) if running => verbs.push(Verb::Stop),
        Some(RunState::Restarted) => verbs.push(Verb::Restart),
        Some(RunState::Reloaded) if running => verbs.push(Verb::Reload),
        Some(RunState::Reloaded) => verbs.push(Verb::Start),
        _ => {}
    }
    verbs
}

/// What the SysV probe said about a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysvState {
    pub running: bool,
    pub enabled: bool,
    /// The boot-link tool: `openrc`, `update-rc.d`, `chkconfig`, or empty when none.
    pub tool: String,
}

/// Parses the SysV probe's `running:`, `enabled:` and `tool:` lines.
pub fn parse_sysv(text: &str) -> SysvState {
    SysvState {
        running: text.contains("running:0"),
        enabled: text.contains("enabled:yes"),
        tool: text
            .lines()
            .find_map(|l| l.strip_prefix("tool:"))
            .unwrap_or("")
            .to_string(),
    }
}

/// The commands that take a SysV service to `wanted` (boot links first, then the run state).
pub fn plan_sysv(wanted: &Wanted, state: &SysvState) -> Result<Vec<String>, ModuleError> {
    let q = quote(&wanted.name);
    let start = if state.tool == "openrc" {
        format!("rc-service {q}")
    } else {
        format!("service {q}")
    };
    let mut commands: Vec<String> = Vec::new();
    match wanted.enabled {
        Some(want) if want != state.enabled => commands.push(match (state.tool.as_str(), want) {
            ("openrc", true) => format!("rc-update add {q} default"),
            ("openrc", false) => format!("rc-update del {q} default"),
            ("update-rc.d", true) => format!("update-rc.d {q} defaults && update-rc.d {q} enable"),
            ("update-rc.d", false) => format!("update-rc.d {q} disable"),
            ("chkconfig", true) => format!("chkconfig {q} on"),
            ("chkconfig", false) => format!("chkconfig {q} off"),
            _ => {
                return Err(ModuleError::Failed(format!(
                    "service: no tool found to enable or disable {} at boot",
                    wanted.name
                )))
            }
        }),
        _ => {}
    }
    match wanted.state {
        Some(RunState::Started) if !state.running => commands.push(format!("{start} start")),
        Some(RunState::Stopped) if state.running => commands.push(format!("{start} stop")),
        Some(RunState::Restarted) => commands.push(format!("{start} restart")),
        Some(RunState::Reloaded) => commands.push(format!("{start} reload")),
        _ => {}
    }
    Ok(commands)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
