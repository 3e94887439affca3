//! The typed model of loaded Ansible content: plays, blocks, tasks, roles.
//!
//! Inherited keywords (`when`, `tags`, `become`, `vars`, `environment`, …) are resolved at
//! load time: every task carries the effective values from its enclosing play, role and
//! blocks, so the runner never walks back up the tree.

use std::path::PathBuf;
use std::sync::Arc;

use minijinja::Value;

use crate::error::Location;
use crate::modules::python::ModuleSearch;
use crate::modules::registry::{Kind, ModuleSpec, RunnerAction};

pub use crate::value::VarMap;

/// A loaded playbook: its plays in order, `import_playbook` already expanded.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Arc<Play>>,
}

#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub playbook_dir: PathBuf,
    pub vars: Arc<VarMap>,
    pub vars_files: Vec<Value>,
    /// `gather_facts:` as written; unset follows `gathering` in ansible.cfg.
    pub gather_facts: Option<bool>,
    /// `gather_subset:` as written; unset follows `gather_subset` in ansible.cfg.
    pub gather_subset: Option<Vec<String>>,
    pub serial: Vec<Value>,
    pub any_errors_fatal: bool,
    pub max_fail_percentage: Option<f64>,
    /// `strategy:`: lockstep (`linear`) or each host on its own (`free`).
    pub strategy: Strategy,
    /// `force_handlers:` as written; unset follows the run's option.
    pub force_handlers: Option<bool>,
    /// pre_tasks, roles + tasks, post_tasks: handlers are flushed after each.
    pub sections: Vec<Vec<TaskItem>>,
    pub handlers: Vec<Arc<Task>>,
    /// Every role the play applies: their defaults and vars are visible play-wide
    /// (Ansible's default, `private_role_vars = false`).
    pub roles: Vec<Arc<RoleScope>>,
    /// The play's own keywords (become, environment, …), as its tasks inherit them.
    pub inherited: Inherited,
    pub location: Location,
}

/// How a play's hosts move through its tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Every host finishes a task before any starts the next.
    #[default]
    Linear,
    /// Each host runs through the tasks as fast as it can (Ansible's `free`).
    Free,
}

impl Strategy {
    /// The strategy a `strategy:` name asks for: `free` and `host_pinned` let hosts run
    /// ahead; every other (`linear`, `debug`, `mitogen_linear`, …) runs in lockstep.
    pub fn named(name: &str) -> Self {
        match name.rsplit('.').next().unwrap_or(name) {
            "free" | "host_pinned" => Strategy::Free,
            _ => Strategy::Linear,
        }
    }
}

/// One entry of a task list.
#[derive(Debug, Clone)]
pub enum TaskItem {
    Task(Arc<Task>),
    Block(Arc<Block>),
}

#[derive(Debug, Clone)]
pub struct Block {
    pub name: Option<String>,
    pub tasks: Vec<TaskItem>,
    pub rescue: Vec<TaskItem>,
    pub always: Vec<TaskItem>,
    pub location: Location,
}

/// Keywords a task inherits from its play, role and blocks, already combined.
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    pub when: Vec<Value>,
    pub tags: Vec<String>,
    pub vars: Arc<VarMap>,
    pub escalate: Option<bool>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub environment: Vec<Value>,
    pub ignore_errors: Option<Value>,
    pub check_mode: Option<Value>,
    pub diff: Option<bool>,
    pub no_log: Option<Value>,
    pub delegate_to: Option<Value>,
    pub run_once: Option<bool>,
    pub any_errors_fatal: Option<bool>,
    pub remote_user: Option<String>,
    /// The `connection:` keyword (`ssh`, `local`); a host's `ansible_connection` overrides it.
    pub connection: Option<String>,
    pub role: Option<Arc<RoleScope>>,
    /// `throttle:` (at most that many hosts run the task at once; 0 means no limit).
    pub throttle: Option<Value>,
    /// `ignore_unreachable:`: an unreachable host is counted ignored and stays in the play.
    pub ignore_unreachable: Option<Value>,
    /// `module_defaults:` of the play, roles, blocks and task, outermost first.
    pub module_defaults: Vec<Value>,
    /// Variables from the `vars:` of `include_tasks`/`include_role` and loop items of an include.
    pub include_vars: Arc<VarMap>,
    /// Where a module kiln runs through Python is found: the `collections:` keyword in
    /// effect, `library/` directories, collection roots.
    pub module_search: Arc<ModuleSearch>,
}

/// The variables and paths of one role application.
#[derive(Debug, Clone)]
pub struct RoleScope {
    pub name: String,
    pub path: PathBuf,
    pub defaults: Arc<VarMap>,
    pub vars: Arc<VarMap>,
    pub params: Arc<VarMap>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoopKind {
    /// `loop:`
    List,
    /// `with_<lookup>:`, the items of that lookup (`with_items` is the `items` lookup).
    Lookup(String),
}

#[derive(Debug, Clone)]
pub struct LoopSpec {
    pub kind: LoopKind,
    pub items: Value,
    pub loop_var: String,
    pub index_var: Option<String>,
    pub label: Option<Value>,
    pub pause: Option<f64>,
    pub extended: bool,
}

/// What a task does, resolved when it is loaded.
#[derive(Debug, Clone)]
pub enum Action {
    /// A module: one of kiln's, or an Ansible module kiln cannot run (the host fails).
    Module(&'static ModuleSpec),
    /// One of the runner's own actions (`set_fact`, `include_vars`, `meta`, includes).
    Runner(RunnerAction),
    /// `action: "{{ ... }}"`: the module is known only once the name is templated.
    Templated(String),
    /// A module kiln has no row for, found in a collection or a `library/` directory: run
    /// through the target's Python (the name as written).
    Python(Arc<str>),
    /// A Python action plugin beside the playbook or a role (`action_plugins/NAME.py`): known
    /// by name, but its controller-side Python is not run (the host fails).
    ControllerPlugin(Arc<str>),
}

impl Action {
    pub fn from_spec(spec: &'static ModuleSpec) -> Self {
        match spec.kind {
            Kind::Runner(action) => Action::Runner(action),
            Kind::Native(_) | Kind::Missing => Action::Module(spec),
        }
    }

    /// The action's short name (`ansible.builtin.` stripped), or the template as written.
    pub fn name(&self) -> &str {
        match self {
            Action::Module(spec) => spec.name,
            Action::Runner(action) => action.name(),
            Action::Templated(text) => text,
            Action::Python(name) | Action::ControllerPlugin(name) => name,
        }
    }

    /// The action's registry row, when known at load time.
    pub fn spec(&self) -> Option<&'static ModuleSpec> {
        match self {
            Action::Module(spec) => Some(spec),
            Action::Runner(action) => action.spec(),
            Action::Templated(_) | Action::Python(_) | Action::ControllerPlugin(_) => None,
        }
    }

    pub fn is(&self, action: RunnerAction) -> bool {
        matches!(self, Action::Runner(a) if *a == action)
    }
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    pub action: Action,
    /// The module's arguments, not yet templated.
    pub args: Value,
    pub inherited: Inherited,
    pub loop_spec: Option<LoopSpec>,
    pub register: Option<String>,
    pub changed_when: Vec<Value>,
    pub failed_when: Vec<Value>,
    pub until: Vec<Value>,
    pub retries: Option<Value>,
    pub delay: Option<Value>,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    /// `delegate_facts:`: facts the task returns belong to the delegate host.
    pub delegate_facts: Option<Value>,
    /// `async:` (seconds the task may run in the background) and `poll:` (seconds between
    /// checks; 0 leaves the job running).
    pub async_seconds: Option<Value>,
    pub poll: Option<Value>,
    /// Keywords the task sets that kiln accepts but does not act on (warned about once).
    pub ignored_keywords: Vec<&'static str>,
    pub location: Location,
}

impl Task {
    /// The name printed in `TASK [...]` headers: Ansible shows `role : name`.
    pub fn display_name(&self) -> String {
        let base = self
            .name
            .clone()
            .unwrap_or_else(|| self.action.name().to_string());
        match &self.inherited.role {
            Some(role) => format!("{} : {}", role.name, base),
            None => base,
        }
    }
}
