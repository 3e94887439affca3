//! `service_facts`: every service's state as `ansible_facts.services`
//! (`{"nginx.service": {name, state, status, source}}`), from systemd or the `service` tool.

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::map_value;

pub struct ServiceFacts;

const LIST: &str = "if [ -d /run/systemd/system ]; then systemctl list-units --type=service --all --no-legend --no-pager --plain | awk '{print \"unit\\t\"$1\"\\t\"$3\"\\t\"$4}'; systemctl list-unit-files --type=service --no-legend --no-pager | awk '{print \"file\\t\"$1\"\\t\"$2}'; else service --status-all 2>/dev/null | awk '{print \"sysv\\t\"$4\"\\t\"$2}'; fi";

/// Parses the listing into Ansible's shape.
pub fn parse_services(text: &str) -> IndexMap<String, IndexMap<String, String>> {
    let mut services: IndexMap<String, IndexMap<String, String>> = IndexMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[..] {
            ["unit", name, active, sub] => {
                let state = match (active, sub) {
                    ("active", "running") => "running",
                    ("active", _) | ("activating", _) => "running",
                    ("inactive", _) | ("failed", _) => "stopped",
                    _ => "unknown",
                };
                let entry = services.entry(name.to_string()).or_default();
                entry.insert("name".into(), name.into());
                entry.insert("state".into(), state.into());
                entry.insert("source".into(), "systemd".into());
                entry
                    .entry("status".into())
                    .or_insert_with(|| "unknown".into());
            }
            ["file", name, status] => {
                if name.ends_with("@.service") {
                    continue;
                }
                let entry = services.entry(name.to_string()).or_default();
                entry.insert("name".into(), name.into());
                entry
                    .entry("state".into())
                    .or_insert_with(|| "stopped".into());
                entry.insert("status".into(), status.into());
                entry.insert("source".into(), "systemd".into());
            }
            ["sysv", name, mark] => {
                let entry = services.entry(name.to_string()).or_default();
                entry.insert("name".into(), name.into());
                entry.insert(
                    "state".into(),
                    if mark == "+" { "running" } else { "stopped" }.into(),
                );
                entry.insert("status".into(), "unknown".into());
                entry.insert("source".into(), "sysv".into());
            }
            _ => {}
        }
    }
    services
}

#[async_trait]
impl Module for ServiceFacts {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        args.finish()?;
        let out = ctx.run_ok(LIST, None, "listing services").await?;
        let services = parse_services(&out.stdout_text())
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
    fn merges_units_and_files() {
        let s = super::parse_services(
            "unit\tnginx.service\tactive\trunning\nfile\tnginx.service\tenabled\nfile\tssh.service\tdisabled\nfile\tgetty@.service\tenabled\n",
        );
        assert_eq!(s["nginx.service"]["state"], "running");
        assert_eq!(s["nginx.service"]["status"], "enabled");
        assert_eq!(s["ssh.service"]["state"], "stopped");
        assert!(!s.contains_key("getty@.service"));
    }
}
