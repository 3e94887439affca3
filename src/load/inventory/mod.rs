//! Inventories: hosts, groups and their variables, from INI or YAML files, executable
//! inventory scripts, inventory plugin files (`constructed`, `aws_ec2`), directories of them
//! (Vagrant passes a directory), or a comma-separated host list; plus `group_vars/` and
//! `host_vars/` beside the inventory and beside the playbook.

pub mod aws_ec2;
pub mod construct;
pub mod ini;
pub mod patterns;
pub mod plugin;
pub mod script;
pub mod yaml;

use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use minijinja::Value;

use super::model::VarMap;
use super::{is_vars_file, load_vars_path};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub hosts: IndexSet<String>,
    pub children: IndexSet<String>,
    pub vars: VarMap,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Host names in the order they were first seen, with their own variables.
    pub hosts: IndexMap<String, VarMap>,
    pub groups: IndexMap<String, Group>,
    /// Directories whose `group_vars/` and `host_vars/` apply, lowest precedence first.
    vars_dirs: Vec<PathBuf>,
}

impl Inventory {
    pub fn new() -> Self {
        let mut inv = Self::default();
        inv.groups.insert("all".into(), Group::default());
        inv.groups.insert("ungrouped".into(), Group::default());
        inv.group_mut("all").children.insert("ungrouped".into());
        inv
    }

    /// Loads every source in order (later sources add to earlier ones).
    pub fn load(sources: &[PathBuf]) -> Result<Self> {
        let mut inv = Self::new();
        for source in sources {
            inv.add_source(source)?;
        }
        inv.finish();
        Ok(inv)
    }

    /// An inventory of one host with its variables, in `groups` (ungrouped without any).
    pub fn with_host(name: &str, vars: VarMap, groups: &[String]) -> Self {
        Self::with_hosts(vec![(name.to_string(), vars)], groups)
    }

    /// Hosts with their variables, each in every one of `groups`.
    pub fn with_hosts(hosts: Vec<(String, VarMap)>, groups: &[String]) -> Self {
        Self::with_grouped_hosts(
            hosts
                .into_iter()
                .map(|(name, vars)| (name, vars, groups.to_vec()))
                .collect(),
        )
    }

    /// Hosts, each with its own variables and groups, in the order given.
    pub fn with_grouped_hosts(hosts: Vec<(String, VarMap, Vec<String>)>) -> Self {
        let mut inv = Self::new();
        for (name, vars, groups) in hosts {
            inv.add_host(&name, None);
            inv.hosts.insert(name.clone(), vars);
            for group in &groups {
                inv.add_host(&name, Some(group));
            }
        }
        inv.finish();
        inv
    }

    fn add_source(&mut self, source: &Path) -> Result<()> {
        let text = source.to_string_lossy();
        if !source.exists() && text.contains(',') {
            for host in text.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                self.add_host(host, None);
            }
            return Ok(());
        }
        if source.is_dir() {
            self.add_directory(source)?;
            self.vars_dirs.push(source.to_path_buf());
            return Ok(());
        }
        if !source.exists() {
            return Err(Error::Usage(format!(
                "inventory {} does not exist (pass a file, a directory, or a comma-separated host list such as 'web1,')",
                source.display()
            )));
        }
        self.add_file(source)?;
        if let Some(dir) = source.parent() {
            self.vars_dirs.push(dir.to_path_buf());
        }
        Ok(())
    }

    /// Every entry of a directory source in name order, subdirectories recursively, skipping
    /// what Ansible skips (hidden names, `group_vars`/`host_vars`, ignored extensions).
    fn add_directory(&mut self, dir: &Path) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                action: "read inventory directory",
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_inventory_entry(p))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                self.add_directory(&entry)?;
            } else if entry.is_file() {
                self.add_file(&entry)?;
            }
        }
        Ok(())
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        if script::is_script(path) {
            return script::load(self, path);
        }
        let text = crate::yaml::read_text(path, "read inventory")?;
        if plugin::is_plugin_config(path, &text) {
            return plugin::load(self, path);
        }
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml" | "json")
        ) || text.trim_start().starts_with("---")
            || text
                .lines()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .is_some_and(|l| {
                    let l = l.trim_end();
                    l.ends_with(':') && !l.starts_with('[')
                });
        if is_yaml {
            yaml::parse(self, &text, path)
        } else {
            ini::parse(self, &text, path)
        }
    }

    /// Adds the playbook's directory: its `group_vars/` and `host_vars/` override the inventory's.
    pub fn add_playbook_dir(&mut self, dir: &Path) {
        if !self.vars_dirs.iter().any(|d| d == dir) {
            self.vars_dirs.push(dir.to_path_buf());
        }
    }

    pub fn group_mut(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_string()).or_default()
    }

    pub fn add_host(&mut self, name: &str, group: Option<&str>) {
        self.hosts.entry(name.to_string()).or_default();
        if let Some(group) = group {
            self.group_mut(group).hosts.insert(name.to_string());
        }
    }

    /// Puts hosts without a group into `ungrouped` and groups without a parent under `all`.
    fn finish(&mut self) {
        let grouped: IndexSet<String> = self
            .groups
            .iter()
            .filter(|(name, _)| *name != "all" && *name != "ungrouped")
            .flat_map(|(_, g)| g.hosts.iter().cloned())
            .collect();
        let ungrouped: Vec<String> = self
            .hosts
            .keys()
            .filter(|h| !grouped.contains(*h))
            .cloned()
            .collect();
        let hosts = &mut self.group_mut("ungrouped").hosts;
        hosts.retain(|h| !grouped.contains(h));
        hosts.extend(ungrouped);
        let children: IndexSet<String> = self
            .groups
            .values()
            .flat_map(|g| g.children.iter().cloned())
            .collect();
        let tops: Vec<String> = self
            .groups
            .keys()
            .filter(|g| *g != "all" && !children.contains(*g))
            .cloned()
            .collect();
        self.group_mut("all").children.extend(tops);
    }

    /// All hosts of a group, its children's included, in inventory order.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.hosts.keys().cloned().collect();
        }
        let mut found = IndexSet::new();
        let mut stack = vec![group.to_string()];
        let mut seen = IndexSet::new();
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(g) = self.groups.get(&name) {
                found.extend(g.hosts.iter().cloned());
                stack.extend(g.children.iter().rev().cloned());
            }
        }
        self.hosts
            .keys()
            .filter(|h| found.contains(*h))
            .cloned()
            .collect()
    }

    /// The groups a host is in, with their depth below `all` (for variable precedence): the
    /// groups naming it and their ancestors, found upwards so that a large inventory costs
    /// time in proportion to its size rather than its square.
    fn host_groups_with_depth(&self, host: &str) -> Vec<(usize, String)> {
        if !self.hosts.contains_key(host) {
            return Vec::new();
        }
        let mut parents: IndexMap<&str, Vec<&str>> = IndexMap::new();
        for (name, group) in &self.groups {
            for child in &group.children {
                parents
                    .entry(child.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        let mut pending: Vec<&str> = self
            .groups
            .iter()
            .filter(|(name, group)| group.hosts.contains(host) || name.as_str() == "all")
            .map(|(name, _)| name.as_str())
            .collect();
        let mut member: IndexSet<&str> = IndexSet::new();
        while let Some(name) = pending.pop() {
            if member.insert(name) {
                pending.extend(parents.get(name).into_iter().flatten());
            }
        }
        let mut out: Vec<(usize, String)> = member
            .into_iter()
            .map(|name| (self.depth(name, 0), name.to_string()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        out
    }

    fn depth(&self, group: &str, guard: usize) -> usize {
        if group == "all" || guard > 64 {
            return 0;
        }
        self.groups
            .iter()
            .filter(|(_, g)| g.children.contains(group))
            .map(|(parent, _)| 1 + self.depth(parent, guard + 1))
            .max()
            .unwrap_or(1)
    }

    /// `group_names`: the host's groups except `all` and `ungrouped`, sorted.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .host_groups_with_depth(host)
            .into_iter()
            .map(|(_, g)| g)
            .filter(|g| g != "all" && g != "ungrouped")
            .collect();
        names.sort();
        names
    }

    /// The host's inventory variables: groups from `all` down, then the host's own, each
    /// with `group_vars/`/`host_vars/` files applied on top.
    pub fn host_vars(&self, host: &str) -> Result<VarMap> {
        self.host_vars_from(host, &self.vars_dirs, true)
    }

    /// The host's variables as an inventory plugin sees them while the inventory is still
    /// being loaded (what `constructed` sees): without `all`'s variables, which Ansible only
    /// attaches once every source is read, and without `group_vars/` and `host_vars/` files
    /// unless `with_files` (`use_vars_plugins`).
    pub fn source_host_vars(&self, host: &str, with_files: bool) -> Result<VarMap> {
        self.host_vars_from(host, if with_files { &self.vars_dirs } else { &[] }, false)
    }

    fn host_vars_from(&self, host: &str, vars_dirs: &[PathBuf], with_all: bool) -> Result<VarMap> {
        let mut vars = VarMap::new();
        for (_, group) in self.host_groups_with_depth(host) {
            if group == "all" && !with_all {
                continue;
            }
            if let Some(g) = self.groups.get(&group) {
                vars.extend(g.vars.clone());
            }
            for dir in vars_dirs {
                vars.extend(vars_entry(&dir.join("group_vars"), &group)?);
            }
        }
        if let Some(own) = self.hosts.get(host) {
            vars.extend(own.clone());
        }
        for dir in vars_dirs {
            vars.extend(vars_entry(&dir.join("host_vars"), host)?);
        }
        Ok(vars)
    }

    /// ansible-inventory's `--list` JSON.
    pub fn to_list_json(&self) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        let mut hostvars = serde_json::Map::new();
        for host in self.hosts.keys() {
            hostvars.insert(
                host.clone(),
                serde_json::to_value(crate::template::map_value(self.host_vars(host)?))
                    .unwrap_or_default(),
            );
        }
        // ansible-core 2.19 names the JSON profile its own output follows.
        out.insert(
            "_meta".into(),
            serde_json::json!({ "hostvars": hostvars, "profile": "inventory_legacy" }),
        );
        for (name, group) in &self.groups {
            let mut entry = serde_json::Map::new();
            if !group.hosts.is_empty() {
                entry.insert("hosts".into(), serde_json::json!(group.hosts));
            }
            if !group.children.is_empty() {
                entry.insert("children".into(), serde_json::json!(group.children));
            }
            // ansible-inventory leaves out a group with neither hosts nor children.
            if !entry.is_empty() {
                out.insert(name.clone(), serde_json::Value::Object(entry));
            }
        }
        Ok(serde_json::Value::Object(out))
    }

    /// ansible-inventory's `--graph` text.
    pub fn to_graph(&self, group: &str) -> String {
        let mut out = String::new();
        self.graph_into(group, 0, &mut out);
        out
    }

    fn graph_into(&self, group: &str, depth: usize, out: &mut String) {
        let indent = "  |".repeat(depth);
        out.push_str(&format!(
            "{indent}{}@{group}:\n",
            if depth == 0 { "" } else { "--" }
        ));
        let Some(g) = self.groups.get(group) else {
            return;
        };
        // Empty groups too (`ungrouped`), as ansible-inventory draws them.
        for child in &g.children {
            self.graph_into(child, depth + 1, out);
        }
        for host in &g.hosts {
            out.push_str(&format!("{indent}  |--{host}\n"));
        }
    }
}

/// `group_vars/NAME` as a file (`NAME`, `NAME.yml`, …) or a directory of files.
fn vars_entry(dir: &Path, name: &str) -> Result<VarMap> {
    if !dir.is_dir() {
        return Ok(VarMap::new());
    }
    let mut out = VarMap::new();
    for candidate in [
        name.to_string(),
        format!("{name}.yml"),
        format!("{name}.yaml"),
        format!("{name}.json"),
    ] {
        let path = dir.join(&candidate);
        if path.is_dir() || (path.is_file() && is_vars_file(&path)) {
            out.extend(load_vars_path(&path)?);
        }
    }
    Ok(out)
}

/// Extensions Ansible skips in a directory source (its INVENTORY_IGNORE_EXTS default).
const IGNORED_EXTENSIONS: [&str; 12] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

fn is_inventory_entry(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    !(name.starts_with('.')
        || matches!(name.as_str(), "host_vars" | "group_vars" | "vars_plugins")
        || IGNORED_EXTENSIONS.iter().any(|s| name.ends_with(s)))
}

/// Parses an INI/`k=v` scalar the way Ansible does: Python literals become numbers, booleans
/// and unquoted strings; everything else stays a string.
pub fn ini_scalar(text: &str) -> Value {
    let t = text.trim();
    if t.len() >= 2
        && ((t.starts_with('\'') && t.ends_with('\'')) || (t.starts_with('"') && t.ends_with('"')))
    {
        return Value::from(&t[1..t.len() - 1]);
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = t.parse::<f64>() {
        if t.contains('.') {
            return Value::from(f);
        }
    }
    match t {
        "True" | "true" => Value::from(true),
        "False" | "false" => Value::from(false),
        _ => Value::from(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_children_and_depth_order() {
        let mut inv = Inventory::new();
        ini::parse(&mut inv, "[web]\nw1 a=1\n[db]\nd1\n[prod:children]\nweb\ndb\n[prod:vars]\na=0\nb=2\n[all:vars]\nb=1\nc=1\n", Path::new("hosts")).unwrap();
        inv.finish();
        assert_eq!(inv.group_hosts("prod"), vec!["w1", "d1"]);
        let vars = inv.host_vars("w1").unwrap();
        assert_eq!(vars["a"], Value::from(1));
        assert_eq!(vars["b"], Value::from(2));
        assert_eq!(vars["c"], Value::from(1));
        assert_eq!(inv.group_names("w1"), vec!["prod", "web"]);
    }

    #[test]
    fn every_host_of_a_large_inventory_resolves_quickly() {
        let mut inv = Inventory::new();
        let text =
            "[web]\nweb[0:19999]\n[db]\ndb[0:99]\n[prod:children]\nweb\ndb\n[prod:vars]\np=1\n";
        ini::parse(&mut inv, text, Path::new("hosts")).unwrap();
        inv.finish();
        let started = std::time::Instant::now();
        for host in inv.hosts.keys() {
            assert_eq!(inv.host_vars(host).unwrap()["p"], Value::from(1));
        }
        assert_eq!(inv.group_names("db7"), vec!["db", "prod"]);
        // Quadratic in the host count, this took minutes.
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
