//! What the run remembers about each host across tasks and plays.

use std::sync::Arc;

use indexmap::IndexSet;

use crate::load::model::VarMap;
use crate::output::Stats;

#[derive(Debug, Default, Clone)]
pub struct HostState {
    /// Inventory variables (groups, host, group_vars/host_vars files), raw.
    pub inventory_vars: Arc<VarMap>,
    /// Gathered facts, without the `ansible_` prefix.
    pub facts: Arc<VarMap>,
    /// `ansible_facts` plus the `ansible_*` names, built once per fact change.
    pub fact_layer: Arc<VarMap>,
    /// Facts a module returned without the prefix (`getent_passwd`, `services`): Ansible
    /// also defines them as variables under that plain name.
    pub plain_fact_names: IndexSet<String>,
    pub include_vars: Arc<VarMap>,
    /// `set_fact` and `register` results: they persist across plays.
    pub host_vars: Arc<VarMap>,
    pub stats: Stats,
    /// Failed in the current play (removed from the play's remaining tasks).
    pub failed: bool,
    pub unreachable: bool,
    /// `meta: end_host`.
    pub ended: bool,
    /// Handlers notified and not yet run, by handler name or listen topic.
    pub notified: IndexSet<String>,
    /// The task that last failed on the host and its result, for a `rescue`'s
    /// `ansible_failed_task` and `ansible_failed_result`.
    pub last_failure: Option<(minijinja::Value, minijinja::Value)>,
}

impl HostState {
    /// Stores facts as a module returned them: `ansible_hostname` becomes
    /// `ansible_facts.hostname`; a plain `getent_passwd` is also a variable of that name.
    /// Facts came from the target: they are never templated.
    pub fn set_facts(&mut self, facts: VarMap) {
        let mut merged = (*self.facts).clone();
        for (name, value) in facts {
            let value = crate::template::untrusted(&value);
            match name.strip_prefix("ansible_") {
                Some(short) => merged.insert(short.to_string(), value),
                None => {
                    self.plain_fact_names.insert(name.clone());
                    merged.insert(name, value)
                }
            };
        }
        self.facts = Arc::new(merged);
        let mut layer = VarMap::new();
        layer.insert(
            "ansible_facts".into(),
            crate::template::map_value((*self.facts).clone()),
        );
        for (k, v) in self.facts.iter() {
            layer.insert(format!("ansible_{k}"), v.clone());
            if self.plain_fact_names.contains(k) {
                layer.insert(k.clone(), v.clone());
            }
        }
        self.fact_layer = Arc::new(layer);
    }

    /// Stores a registered result or a `set_fact` value: both are final (a registered result
    /// came from the target, a `set_fact` value was rendered when it was set), so they are
    /// never templated again.
    pub fn set_var(&mut self, name: &str, value: minijinja::Value) {
        Arc::make_mut(&mut self.host_vars)
            .insert(name.to_string(), crate::template::untrusted(&value));
    }

    /// Stores a registered result as the task marked it (untrusted but for a loop's own
    /// items, which keep the trust they had as items).
    pub fn set_registered(&mut self, name: &str, value: minijinja::Value) {
        Arc::make_mut(&mut self.host_vars).insert(name.to_string(), value);
    }

    pub fn active(&self) -> bool {
        !self.failed && !self.unreachable && !self.ended
    }
}
