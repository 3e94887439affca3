//! `service_facts`: every service's state as `ansible_facts.services`
//! (`{"nginx.service": {name, state, status, source}}`), from systemd or the `service` tool.

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::map_value;

pub struct ServiceFacts;

const LIST: &str = "if [ -d /run/systemd/system ]; then systemctl list-units --no-pager --type service --all --plain --no-legend | sed 's/^/unit /'; systemctl list-unit-files --no-pager --type service --all --no-legend | sed 's/^/file /'; else service --status-all 2>/dev/null | awk '{print \"sysv \"$4\" \"$2}'; fi";

/// What systemd reports that Ansible shows as a unit's status whatever else the line says.
const BAD_STATES: [&str; 3] = ["not-found", "masked", "failed"];

type Services = IndexMap<String, IndexMap<String, String>>;

fn entry(state: &str, status: &str, source: &str, name: &str) -> IndexMap<String, String> {
    IndexMap::from([
        ("name".to_string(), name.to_string()),
        ("state".to_string(), state.to_string()),
        ("status".to_string(), status.to_string()),
        ("source".to_string(), source.to_string()),
    ])
}

/// Parses the listing into Ansible's shape, as its module reads the same commands: a loaded
/// unit is `running` when its sub-state is, else `stopped`, its status the active state (or
/// a bad state the line shows), then the unit file's state. Unit files systemd has not
/// loaded are returned apart: their state is their `ActiveState`, asked for next.
pub fn parse_services(text: &str) -> (Services, Vec<(String, String)>) {
    let mut services = Services::new();
    let mut unloaded = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.contains(".service") || l.starts_with("sysv "))
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            ["unit", name, _load, active, sub, ..] => {
                // Ansible checks every field but the last (a description's last word).
                let shown = &fields[1..fields.len() - 1];
                let status = BAD_STATES
                    .into_iter()
                    .find(|bad| shown.contains(bad))
                    .unwrap_or(active);
                let state = if sub == "running" {
                    "running"
                } else {
                    "stopped"
                };
                services.insert(name.into(), entry(state, status, "systemd", name));
            }
            ["file", name, status, ..] => match services.get_mut(name) {
                Some(known) => {
                    if !BAD_STATES.contains(&known["status"].as_str()) {
                        known.insert("status".into(), status.into());
                    }
                }
                None => unloaded.push((name.to_string(), status.to_string())),
            },
            ["sysv", name, mark] => {
                let state = if mark == "+" { "running" } else { "stopped" };
                services.insert(name.into(), entry(state, "unknown", "sysv", name));
            }
            _ => {}
        }
    }
    (services, unloaded)
}

/// `ActiveState` per `Id` from `systemctl show --property=Id --property=ActiveState`.
fn active_states(text: &str) -> IndexMap<String, String> {
    let mut states = IndexMap::new();
    for block in text.split("\n\n") {
        let property = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        if let (Some(id), Some(state)) = (property("Id"), property("ActiveState")) {
            states.insert(id, state);
        }
    }
    states
}

#[async_trait]
impl Module for ServiceFacts {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        args.finish()?;
        let out = ctx.run_ok(LIST, None, "listing services").await?;
        let (mut services, unloaded) = parse_services(&out.stdout_text());
        // A template (`getty@.service`) has no state to show, and naming one would fail the
        // whole query: it stays `unknown`, as in Ansible's module.
        let names: Vec<String> = unloaded
            .iter()
            .filter(|(name, _)| !name.contains("@."))
            .map(|(name, _)| quote(name))
            .collect();
        let states = match names.is_empty() {
            true => IndexMap::new(),
            false => active_states(
                &ctx.run(
                    &format!(
                        "systemctl show --property=Id --property=ActiveState -- {} 2>/dev/null",
                        names.join(" ")
                    ),
                    None,
                )
                .await?
                .stdout_text(),
            ),
        };
        for (name, status) in unloaded {
            let state = states.get(&name).map_or("unknown", String::as_str);
            services.insert(name.clone(), entry(state, &status, "systemd", &name));
        }
        let services = services
            .into_iter()
            .map(|(name, fields)| {
                let fields = fields
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect();
                (name, map_value(fields))
            })
            .collect();
        Ok(ModuleResult::changed(false).with_fact("services", map_value(services)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn merges_units_and_files_as_ansible_does() {
        let (s, unloaded) = super::parse_services(
            "unit nginx.service loaded active running A web server\nunit cron.service loaded active exited Cron\nunit gone.service not-found inactive dead gone.service\nfile nginx.service enabled enabled\nfile gone.service masked enabled\nfile ssh.service disabled enabled\nfile getty@.service enabled enabled\n",
        );
        assert_eq!(s["nginx.service"]["state"], "running");
        assert_eq!(s["nginx.service"]["status"], "enabled");
        assert_eq!(
            s["cron.service"]["state"], "stopped",
            "only a running sub-state runs"
        );
        assert_eq!(
            s["gone.service"]["status"], "not-found",
            "a bad state stays"
        );
        assert_eq!(
            unloaded,
            [
                ("ssh.service".to_string(), "disabled".to_string()),
                ("getty@.service".to_string(), "enabled".to_string())
            ]
        );
        let states = super::active_states(
            "ActiveState=inactive\nId=ssh.service\n\nId=getty@.service\nActiveState=inactive\n",
        );
        assert_eq!(states["ssh.service"], "inactive");
        assert_eq!(states["getty@.service"], "inactive");
    }
}
