//! Building what a task sees: variable layers in Ansible's precedence order (lowest first),
//! magic variables, and `hostvars`.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use super::state::HostState;
use crate::load::model::{Task, VarMap};
use crate::template::{Scope, Templar};

/// The placeholder `omit` expands to; arguments equal to it are dropped.
pub const OMIT: &str = "__omit_place_holder__kiln";

/// Per-play inputs to every task's scope.
#[derive(Debug, Clone, Default)]
pub struct PlayLayers {
    /// Defaults and vars of every role in the play, merged in the order the roles load.
    pub role_defaults: Arc<VarMap>,
    pub role_vars: Arc<VarMap>,
    pub play_vars: Arc<VarMap>,
    pub vars_files: Arc<VarMap>,
    pub extra_vars: Arc<VarMap>,
    /// Per host: inventory_hostname, group_names, play hosts, … (built once per play).
    pub magic: IndexMap<String, Arc<VarMap>>,
    /// The command line's `--connection`, if given.
    pub default_connection: Option<String>,
}

/// The layers of one host for one task.
pub fn task_layers(
    play: &PlayLayers,
    host: &str,
    state: &HostState,
    task: &Task,
    hostvars: &Value,
) -> Vec<Arc<VarMap>> {
    let role = task.inherited.role.as_ref();
    let mut layers = Vec::with_capacity(16);
    layers.push(connection_default(play, host, task));
    layers.push(play.role_defaults.clone());
    if let Some(role) = role {
        layers.push(role.defaults.clone());
    }
    layers.push(state.inventory_vars.clone());
    layers.push(state.fact_layer.clone());
    layers.push(play.play_vars.clone());
    layers.push(play.vars_files.clone());
    layers.push(play.role_vars.clone());
    if let Some(role) = role {
        layers.push(role.vars.clone());
    }
    layers.push(task.inherited.vars.clone());
    layers.push(state.include_vars.clone());
    layers.push(state.host_vars.clone());
    if let Some(role) = role {
        layers.push(role.params.clone());
    }
    layers.push(task.inherited.include_vars.clone());
    layers.push(play.extra_vars.clone());
    if let Some(magic) = play.magic.get(host) {
        layers.push(magic.clone());
    }
    let mut task_magic = VarMap::new();
    task_magic.insert("hostvars".into(), hostvars.clone());
    if let Some(role) = role {
        task_magic.insert(
            "role_path".into(),
            Value::from(role.path.display().to_string()),
        );
        task_magic.insert("role_name".into(), Value::from(role.name.as_str()));
    }
    let searched = Value::from(
        search_paths(task, play)
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    // Where lookups and `src:` look, the role's directory first, as Ansible names it.
    task_magic.insert("ansible_search_path".into(), searched.clone());
    task_magic.insert("__search_paths".into(), searched);
    layers.push(Arc::new(task_magic));
    layers
}

/// `ansible_connection` below every other layer: the connection the task uses when no variable
/// names one (its `connection:` keyword, `--connection`, else ssh), which Ansible always
/// defines. A `localhost` without one is left to the connection's own rule (local unless it
/// has an `ansible_host`), which only the whole scope can tell.
fn connection_default(play: &PlayLayers, host: &str, task: &Task) -> Arc<VarMap> {
    let connection = task
        .inherited
        .connection
        .clone()
        .or_else(|| play.default_connection.clone())
        .or_else(|| (host != "localhost").then(|| "ssh".to_string()));
    let mut layer = VarMap::new();
    if let Some(connection) = connection {
        layer.insert("ansible_connection".into(), Value::from(connection));
    }
    Arc::new(layer)
}

/// Where a task's relative `src:` and lookups are found: its role, then the playbook dir.
pub fn search_paths(task: &Task, play: &PlayLayers) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(role) = &task.inherited.role {
        paths.push(role.path.clone());
    }
    // A file named relative to the working directory is looked for from there.
    if let Some(dir) = task.location.file.parent() {
        match (dir.is_absolute(), std::env::current_dir()) {
            (true, _) => paths.push(dir.to_path_buf()),
            (false, Ok(cwd)) if dir.as_os_str().is_empty() => paths.push(cwd),
            (false, Ok(cwd)) => paths.push(cwd.join(dir)),
            (false, Err(_)) => paths.push(dir.to_path_buf()),
        }
    }
    if let Some(dir) = play
        .play_vars
        .get("playbook_dir")
        .and_then(|v| v.as_str().map(PathBuf::from))
    {
        paths.push(dir);
    }
    if let Some(dir) = play
        .magic
        .values()
        .next()
        .and_then(|m| m.get("playbook_dir"))
        .and_then(|v| v.as_str().map(PathBuf::from))
    {
        paths.push(dir);
    }
    paths.dedup();
    paths
}

/// `hostvars`: every host's inventory variables, facts and set_fact/registered variables.
#[derive(Debug)]
pub struct HostVars {
    pub templar: Arc<Templar>,
    pub hosts: IndexMap<String, Vec<Arc<VarMap>>>,
}

impl HostVars {
    pub fn build(
        templar: Arc<Templar>,
        states: &IndexMap<String, HostState>,
        play: &PlayLayers,
    ) -> Value {
        let hosts = states
            .iter()
            .map(|(name, s)| {
                let mut layers = vec![
                    s.inventory_vars.clone(),
                    s.fact_layer.clone(),
                    play.play_vars.clone(),
                    s.include_vars.clone(),
                    s.host_vars.clone(),
                    play.extra_vars.clone(),
                ];
                if let Some(magic) = play.magic.get(name) {
                    layers.push(magic.clone());
                } else {
                    let mut m = VarMap::new();
                    m.insert("inventory_hostname".into(), Value::from(name.as_str()));
                    layers.push(Arc::new(m));
                }
                (name.clone(), layers)
            })
            .collect();
        Value::from_object(HostVars { templar, hosts })
    }
}

impl Object for HostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let layers = self.hosts.get(key.as_str()?)?;
        Some(Scope::new(self.templar.clone(), layers.clone()).to_value())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.hosts.keys().map(|k| Value::from(k.as_str())).collect())
    }
}
