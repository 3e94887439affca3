//! `add_host` and `group_by`: actions that change the run's inventory. While a task runs they
//! edit a copy of it (so a later loop item sees an earlier one's host, and `changed` says
//! whether the inventory moved, as Ansible's strategy decides); the runner makes the copy the
//! inventory once the task is done, and later tasks and plays see the new hosts and groups.

use std::sync::Arc;

use minijinja::value::ValueKind;
use minijinja::Value;

use super::actions::entries;
use super::actions::ActionResult;
use super::{PlayCtx, Runner, Shared};
use crate::load::inventory::Inventory;
use crate::load::model::VarMap;
use crate::modules::ModuleResult;
use crate::template::map_value;

/// Options of `add_host` that are not variables of the new host.
const ADD_HOST_OPTIONS: &[&str] = &["name", "hostname", "host", "groupname", "groups", "group"];

/// Runs `edit` on the task's working copy of the inventory (made on first use).
fn edit_inventory<T>(shared: &Shared, edit: impl FnOnce(&mut Inventory) -> T) -> T {
    let mut pending = shared
        .inventory_edit
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let inventory = pending.get_or_insert_with(|| shared.inventory.clone());
    edit(inventory)
}

/// `name` as Ansible's `parse_address` splits it: `host:port`, `[v6]:port`, or a bare name.
fn split_port(name: &str) -> (String, Option<u16>) {
    if let Some(rest) = name.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            if let Ok(port) = port.parse() {
                return (host.to_string(), Some(port));
            }
        }
        return (rest.trim_end_matches(']').to_string(), None);
    }
    match name.split_once(':') {
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(port) => (host.to_string(), Some(port)),
            Err(_) => (name.to_string(), None),
        },
        _ => (name.to_string(), None),
    }
}

/// Puts `host` into `group` (created under `all` when new); true when it was not there.
fn join_group(inventory: &mut Inventory, group: &str, host: &str) -> bool {
    let created = !inventory.groups.contains_key(group);
    if created {
        inventory
            .group_mut("all")
            .children
            .insert(group.to_string());
    }
    let joined = inventory.group_mut(group).hosts.insert(host.to_string());
    created || joined
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .try_iter()
        .into_iter()
        .flatten()
        .map(|v| v.to_string())
        .collect()
}

/// Group names given as a list or a comma-separated string.
fn group_list(value: Option<&Value>) -> Result<Vec<String>, String> {
    let Some(value) = value.filter(|v| !v.is_undefined() && !v.is_none()) else {
        return Ok(Vec::new());
    };
    let names = match value.kind() {
        ValueKind::String => value
            .to_string()
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect(),
        ValueKind::Seq => string_list(value),
        _ => return Err(format!("add_host: groups must be a list, got '{value}'")),
    };
    Ok(names)
}

pub fn add_host(args: &Value, shared: &Shared) -> ActionResult {
    let mut options = VarMap::new();
    for (key, value) in entries(args) {
        if key != "_raw_params" {
            options.insert(key, value);
        } else {
            return ModuleResult::failed(format!(
                "add_host: invalid raw parameters: a mapping is required, got '{value}'"
            ))
            .into();
        }
    }
    let Some(given) = ["name", "hostname", "host"]
        .iter()
        .find_map(|k| options.get(*k))
        .map(|v| v.to_string())
    else {
        return ModuleResult::failed("add_host: name, host or hostname needs to be provided")
            .into();
    };
    let (name, port) = split_port(&given);
    let groups = match group_list(
        ["groupname", "groups", "group"]
            .iter()
            .find_map(|k| options.get(*k)),
    ) {
        Ok(groups) => groups,
        Err(msg) => return ModuleResult::failed(msg).into(),
    };
    let mut host_vars: VarMap = options
        .into_iter()
        .filter(|(k, _)| !ADD_HOST_OPTIONS.contains(&k.as_str()))
        .collect();
    if let Some(port) = port {
        host_vars.insert("ansible_ssh_port".into(), Value::from(port));
    }
    let changed = edit_inventory(shared, |inventory| {
        let mut changed = !inventory.hosts.contains_key(&name);
        if changed && groups.is_empty() {
            inventory.add_host(&name, Some("ungrouped"));
        }
        let own = inventory.hosts.entry(name.clone()).or_default();
        for (key, value) in &host_vars {
            if own.get(key) != Some(value) {
                own.insert(key.clone(), value.clone());
                changed = true;
            }
        }
        for group in &groups {
            changed |= join_group(inventory, group, &name);
        }
        changed
    });
    let summary = VarMap::from([
        ("host_name".to_string(), Value::from(name.as_str())),
        ("groups".to_string(), Value::from(groups)),
        ("host_vars".to_string(), map_value(host_vars)),
    ]);
    ModuleResult::changed(changed)
        .with("add_host", map_value(summary))
        .into()
}

pub fn group_by(args: &Value, host: &str, shared: &Shared) -> ActionResult {
    let key = args.get_attr("key").ok().filter(|v| !v.is_undefined());
    let Some(key) = key else {
        return ModuleResult::failed("the 'key' param is required when using group_by").into();
    };
    let group = key.to_string().replace(' ', "-");
    let parents = match args.get_attr("parents").ok().filter(|v| !v.is_undefined()) {
        None => vec!["all".to_string()],
        Some(p) if p.kind() == ValueKind::String => vec![p.to_string()],
        Some(p) => string_list(&p),
    };
    let parents: Vec<String> = parents.iter().map(|p| p.replace(' ', "-")).collect();
    let changed = edit_inventory(shared, |inventory| {
        let mut changed = !inventory.groups.contains_key(&group);
        inventory.group_mut(&group);
        for parent in &parents {
            changed |= !inventory.groups.contains_key(parent);
            changed |= inventory.group_mut(parent).children.insert(group.clone());
        }
        if !parents.iter().any(|p| p == "all") {
            inventory.group_mut("all").children.shift_remove(&group);
        }
        changed |= inventory.group_mut(&group).hosts.insert(host.to_string());
        changed
    });
    ModuleResult::changed(changed)
        .with("add_group", group)
        .with("parent_groups", parents)
        .into()
}

impl Runner {
    /// Makes the inventory the task edited (if it did) the run's: new hosts get a state, every
    /// host's inventory variables and the play's `groups`/`group_names` are read again.
    pub(crate) fn commit_inventory_edit(&mut self, ctx: &mut PlayCtx) -> crate::error::Result<()> {
        // A `free` section's per-host runners share the run's state: the edit waits in
        // `inventory_edit` until the section ends and the play's own runner commits it.
        let Some(shared) = Arc::get_mut(&mut self.shared) else {
            return Ok(());
        };
        let edited = shared
            .inventory_edit
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(inventory) = edited else {
            return Ok(());
        };
        shared.inventory = inventory;
        let inventory = &self.shared.inventory;
        for name in inventory.hosts.keys() {
            let vars = Arc::new(inventory.host_vars(name)?);
            self.hosts.entry(name.clone()).or_default().inventory_vars = vars;
        }
        let groups = map_value(
            inventory
                .groups
                .keys()
                .map(|g| (g.clone(), Value::from(inventory.group_hosts(g))))
                .collect(),
        );
        for name in inventory.hosts.keys() {
            let magic = Arc::make_mut(ctx.layers.magic.entry(name.clone()).or_default());
            magic
                .entry("inventory_hostname".into())
                .or_insert_with(|| Value::from(name.as_str()));
            magic
                .entry("inventory_hostname_short".into())
                .or_insert_with(|| Value::from(name.split('.').next().unwrap_or(name)));
            magic.insert(
                "group_names".into(),
                Value::from(inventory.group_names(name)),
            );
            magic.insert("groups".into(), groups.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_split_off_names_as_ansible_parses_addresses() {
        assert_eq!(
            split_port("127.0.1.1:2222"),
            ("127.0.1.1".into(), Some(2222))
        );
        assert_eq!(split_port("[::1]:22"), ("::1".into(), Some(22)));
        assert_eq!(split_port("fe80::1"), ("fe80::1".into(), None));
        assert_eq!(split_port("web1"), ("web1".into(), None));
    }

    #[test]
    fn joining_a_group_is_a_change_once() {
        let mut inventory = Inventory::new();
        inventory.add_host("a", None);
        assert!(join_group(&mut inventory, "web", "a"));
        assert!(!join_group(&mut inventory, "web", "a"));
        assert_eq!(inventory.group_hosts("web"), vec!["a".to_string()]);
        assert!(inventory.group_names("a").contains(&"web".to_string()));
    }
}
