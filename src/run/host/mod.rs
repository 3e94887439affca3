//! Running one task on one host: loop items, `when`, `until`, the module (or a runner action
//! such as `set_fact`), `changed_when`/`failed_when`, and the result Ansible would register.

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use minijinja::value::ValueKind;
use minijinja::Value;

use super::actions::{ActionResult, SetVars, VarLevel};
use super::state::HostState;
use super::vars::{task_layers, PlayLayers};
use super::Shared;
use crate::load::model::{Task, VarMap};
use crate::modules::registry::ResultDisplay;
use crate::modules::ModuleResult;
use crate::output::{HostEvent, Status};
use crate::template::{Scope, TemplateError};

mod outcome;
use outcome::skipped_loop;
mod report;

/// What a task did on a host; the runner applies it to the host's state.
#[derive(Debug, Default)]
pub struct HostOutcome {
    pub status: Option<Status>,
    pub ignored: bool,
    pub register: Option<(String, Value)>,
    pub facts: Option<VarMap>,
    /// Facts that belong to another host (`delegate_facts` on a delegated task), by host.
    pub delegated_facts: Vec<(String, VarMap)>,
    pub set_vars: Vec<SetVars>,
    pub notify: bool,
    /// The task changed something, also when it then failed (an ignored failure counts).
    pub changed: bool,
    pub meta: Option<String>,
    /// The result of a failure that stops the host (a `rescue` sees it as
    /// `ansible_failed_result`).
    pub failure: Option<Value>,
}

/// One run of the module (one loop item), before aggregation.
struct ItemRun {
    status: Status,
    result: IndexMap<String, Value>,
    outcome: ModuleResult,
    set_vars: Option<SetVars>,
    ignored: bool,
    /// The delegate that owns the facts this run returned (`delegate_facts`).
    facts_owner: Option<String>,
}

fn result_map(r: &ModuleResult, set_vars: Option<&SetVars>) -> IndexMap<String, Value> {
    let mut map = r.data.clone();
    map.insert("changed".into(), Value::from(r.changed));
    // Ansible registers `failed` on every result that ran (callbacks never show it).
    if r.skipped {
        map.insert("skipped".into(), Value::from(true));
    } else {
        map.insert("failed".into(), Value::from(r.failed));
    }
    if let Some(msg) = &r.msg {
        map.insert("msg".into(), Value::from(msg.as_str()));
    }
    // Modules return their diff (in diff mode) as one mapping, or a list when they have several.
    if !r.diffs.is_empty() && !map.contains_key("diff") {
        let mut diffs: Vec<Value> = r.diffs.iter().map(diff_value).collect();
        let diff = match diffs.len() {
            1 => diffs.remove(0),
            _ => Value::from(diffs),
        };
        map.insert("diff".into(), diff);
    }
    if let Some(facts) = &r.facts {
        let short = facts.iter().map(|(k, v)| {
            (
                k.strip_prefix("ansible_").unwrap_or(k).to_string(),
                v.clone(),
            )
        });
        map.insert(
            "ansible_facts".into(),
            crate::template::map_value(short.collect()),
        );
    }
    // Both report what they define as `ansible_facts`, as their Ansible actions do.
    if let Some((vars, VarLevel::SetFact | VarLevel::IncludeVars)) = set_vars {
        map.insert(
            "ansible_facts".into(),
            crate::template::map_value(vars.clone()),
        );
    }
    map
}

/// A diff as Ansible's modules return it.
fn diff_value(diff: &crate::modules::Diff) -> Value {
    let map: IndexMap<String, Value> = [
        ("before", &diff.before),
        ("after", &diff.after),
        ("before_header", &diff.before_header),
        ("after_header", &diff.after_header),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
    .collect();
    crate::template::map_value(map)
}

pub(super) fn failed_result(msg: String) -> ModuleResult {
    ModuleResult::failed(msg)
}

/// Renders a value and requires a boolean meaning.
pub(super) fn render_flag(
    scope: &Scope,
    value: &Option<Value>,
    default: bool,
) -> Result<bool, TemplateError> {
    match value {
        None => Ok(default),
        Some(v) => scope.templar().eval_condition(v, scope),
    }
}

/// How one result is shown: its loop label, the delegate, diffs and flags.
struct Shown<'a> {
    label: Option<String>,
    delegated: Option<String>,
    diffs: &'a [crate::modules::Diff],
    ignored: bool,
    is_debug: bool,
    no_log: bool,
}

pub struct TaskRun<'a> {
    pub shared: &'a Shared,
    pub play: &'a PlayLayers,
    pub task: &'a Task,
    pub host: &'a str,
    pub state: &'a HostState,
    pub hostvars: &'a Value,
    pub display_name: &'a str,
}

impl TaskRun<'_> {
    pub async fn execute(&self) -> HostOutcome {
        let scope = Scope::new(
            self.shared.templar.clone(),
            task_layers(self.play, self.host, self.state, self.task, self.hostvars),
        );
        let Some(spec) = &self.task.loop_spec else {
            let mut run = self.run_item(&scope, None).await;
            run.facts_owner = self.facts_owner(&scope);
            self.report(&run, None, &scope);
            return self.outcome(vec![run], false);
        };
        let items = match super::loops::expand(spec, &scope) {
            Ok(items) => items,
            Err(e) => {
                // As in Ansible, a loop over something undefined defers its error to `when`,
                // evaluated without an item: a false condition skips the task. A condition
                // that holds, or cannot be evaluated (it names the item), reports the loop's
                // error, which takes precedence over the condition's.
                let skipped = super::loops::is_undefined(&e)
                    .then(|| self.unmet_condition(&scope))
                    .flatten()
                    .filter(|run| run.status == Status::Skipped);
                let run = skipped.unwrap_or_else(|| self.finish(failed_result(e.message), &scope));
                self.report(&run, None, &scope);
                return self.outcome(vec![run], false);
            }
        };
        let mut runs = Vec::with_capacity(items.len());
        let total = items.len();
        let literal_items = match (&spec.kind, spec.items.kind()) {
            (crate::load::model::LoopKind::List, ValueKind::Seq)
                if spec.items.len() == Some(total) =>
            {
                crate::value::list_of(&spec.items)
            }
            _ => Vec::new(),
        };
        // What earlier items defined (facts, the item's registered result), as Ansible's loop
        // updates the variables the next item is templated with.
        let mut carried = VarMap::new();
        let all_items = match spec.extended {
            true => items.clone(),
            false => Vec::new(),
        };
        let plain_reference = matches!(spec.kind, crate::load::model::LoopKind::List)
            && spec
                .items
                .as_str()
                .is_some_and(crate::template::is_plain_reference);
        for (index, item) in items.into_iter().enumerate() {
            // Ansible pauses between items, not after the last.
            if let Some(pause) = spec.pause.filter(|_| index > 0) {
                tokio::time::sleep(Duration::try_from_secs_f64(pause).unwrap_or_default()).await;
            }
            // Loop items are final values (they may hold a target's output): never templated.
            // What the playbook wrote literally stays playbook data, as trusted as the task.
            // Items a bare variable reference yields are stored values, their marks intact.
            let item = match literal_items.get(index) {
                Some(source) => crate::template::untrusted_where_templated(source, &item),
                None if plain_reference => item,
                None => crate::template::untrusted(&item),
            };
            let mut layer = VarMap::new();
            layer.insert(spec.loop_var.clone(), item.clone());
            layer.insert(
                "ansible_loop_var".into(),
                Value::from(spec.loop_var.as_str()),
            );
            if let Some(index_var) = &spec.index_var {
                layer.insert(index_var.clone(), Value::from(index));
            }
            if spec.extended {
                layer.insert(
                    "ansible_loop".into(),
                    super::loops::extended_info(&all_items, index),
                );
            }
            let item_scope = match carried.is_empty() {
                true => scope.with_layer(Arc::new(layer)),
                false => scope
                    .with_layer(Arc::new(carried.clone()))
                    .with_layer(Arc::new(layer)),
            };
            let mut run = self.run_item(&item_scope, Some(&item)).await;
            run.facts_owner = self.facts_owner(&item_scope);
            run.result.insert(spec.loop_var.clone(), item.clone());
            run.result.insert(
                "ansible_loop_var".into(),
                Value::from(spec.loop_var.as_str()),
            );
            if let Some(index_var) = &spec.index_var {
                run.result.insert(index_var.clone(), Value::from(index));
                run.result
                    .insert("ansible_index_var".into(), Value::from(index_var.as_str()));
            }
            if spec.extended {
                run.result.insert(
                    "ansible_loop".into(),
                    super::loops::extended_info(&all_items, index),
                );
            }
            if let Some((vars, _)) = &run.set_vars {
                carried.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            if let Some(name) = &self.task.register {
                let registered = crate::template::map_value(run.result.clone());
                carried.insert(name.clone(), crate::template::untrusted(&registered));
            }
            // The label sees the item's own registered result, as in Ansible.
            let label_scope = self.with_registered(&item_scope, &run.result);
            let label =
                super::loops::item_label(self.task, &label_scope, &item).unwrap_or_else(|msg| {
                    run.status = Status::Failed;
                    run.outcome.failed = true;
                    run.result.insert("failed".into(), Value::from(true));
                    run.result.insert("msg".into(), Value::from(msg));
                    run.ignored = self.ignore_errors(&item_scope);
                    crate::output::item_label(&item)
                });
            self.report(&run, Some(label), &item_scope);
            let unreachable = run.status == Status::Unreachable;
            runs.push(run);
            if unreachable {
                break;
            }
        }
        // As ansible-playbook: a loop that skipped every item (or had none) ends with a line of
        // its own for the host.
        if runs.iter().all(|r| r.status == Status::Skipped) {
            self.report(&skipped_loop(runs.is_empty()), None, &scope);
        }
        self.outcome(runs, true)
    }

    /// The skipped (or, for a condition that cannot be evaluated, failed) result when the
    /// task's `when` does not hold in `scope`; `None` when the task runs.
    fn unmet_condition(&self, scope: &Scope) -> Option<ItemRun> {
        for condition in &self.task.inherited.when {
            match scope.templar().eval_condition(condition, scope) {
                Ok(true) => {}
                Ok(false) => {
                    let mut skipped = ModuleResult::changed(false);
                    skipped.skipped = true;
                    let mut result = result_map(&skipped, None);
                    result.insert(
                        "skip_reason".into(),
                        Value::from("Conditional result was False"),
                    );
                    result.insert("false_condition".into(), condition.clone());
                    return Some(ItemRun {
                        status: Status::Skipped,
                        result,
                        outcome: skipped,
                        set_vars: None,
                        ignored: false,
                        facts_owner: None,
                    });
                }
                Err(e) => {
                    let msg = format!(
                        "{}: The conditional check '{}' failed. The error was: {}",
                        self.task.location,
                        crate::template::limits::abbreviate(&condition.to_string()),
                        e.message
                    );
                    return Some(self.finish(failed_result(msg), scope));
                }
            }
        }
        None
    }

    /// One item: `when`, then the action with `until` retries, then changed/failed_when.
    async fn run_item(&self, scope: &Scope, _item: Option<&Value>) -> ItemRun {
        if let Some(run) = self.unmet_condition(scope) {
            return run;
        }
        // As Ansible: the first run plus `retries` (3 with `until` alone); with retries but
        // no `until`, the task is retried until it succeeds.
        let rendered = |value: &Option<Value>| {
            value
                .as_ref()
                .and_then(|v| scope.templar().render_value(v, scope).ok())
                .and_then(|v| {
                    f64::try_from(v.clone())
                        .ok()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                })
        };
        let attempts = match rendered(&self.task.retries) {
            Some(retries) => 1 + retries.max(0.0) as u64,
            None if self.task.until.is_empty() => 1,
            None => 4,
        };
        let delay = rendered(&self.task.delay).unwrap_or(5.0);
        let delay = if delay < 0.0 { 1.0 } else { delay };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut action = self.run_action(scope).await;
            if attempts > 1 {
                // Seen by changed_when and failed_when too.
                action
                    .result
                    .data
                    .insert("attempts".into(), Value::from(attempt));
            }
            let mut run = self.finish(action, scope);
            if attempts <= 1 || run.status == Status::Unreachable {
                return run;
            }
            let done = if self.task.until.is_empty() {
                run.status != Status::Failed
            } else {
                let check_scope = self.with_registered(scope, &run.result);
                self.task.until.iter().all(|c| {
                    check_scope
                        .templar()
                        .eval_condition(c, &check_scope)
                        .unwrap_or(false)
                })
            };
            if done {
                return run;
            }
            if attempt >= attempts {
                // Ansible counts the retries, not the runs, once they are exhausted, and
                // registers the task failed; a failed_when still decides how it counts.
                run.result
                    .insert("attempts".into(), Value::from(attempts - 1));
                run.result.insert("failed".into(), Value::from(true));
                if run
                    .result
                    .get("failed_when_result")
                    .is_some_and(|f| !f.is_true())
                {
                    return run;
                }
                run.status = Status::Failed;
                run.outcome.failed = true;
                record_exception(&mut run.result, false, true);
                run.ignored = self.ignore_errors(scope);
                return run;
            }
            // The task as named in the play, without its role (Ansible's task_name).
            let name = match &self.task.inherited.role {
                Some(role) => self
                    .display_name
                    .strip_prefix(&format!("{} : ", role.name))
                    .unwrap_or(self.display_name),
                None => self.display_name,
            };
            self.shared.reporter.retry(&format!(
                "FAILED - RETRYING: [{}]: {} ({} retries left).",
                self.host,
                name,
                attempts - attempt
            ));
            tokio::time::sleep(Duration::try_from_secs_f64(delay).unwrap_or_default()).await;
        }
    }

    /// The host that receives the facts of a delegated task with `delegate_facts: true`
    /// (`None`: they stay with the host the task ran for).
    fn facts_owner(&self, scope: &Scope) -> Option<String> {
        let delegate = self.task.inherited.delegate_to.as_ref()?;
        if !render_flag(scope, &self.task.delegate_facts, false).unwrap_or(false) {
            return None;
        }
        let name = scope
            .templar()
            .render_value(delegate, scope)
            .ok()?
            .to_string();
        (name != self.host).then_some(name)
    }

    fn with_registered(&self, scope: &Scope, result: &IndexMap<String, Value>) -> Scope {
        match &self.task.register {
            Some(name) => {
                let mut layer = VarMap::new();
                let registered = crate::template::map_value(result.clone());
                layer.insert(name.clone(), crate::template::untrusted(&registered));
                scope.with_layer(Arc::new(layer))
            }
            None => scope.clone(),
        }
    }

    fn ignore_errors(&self, scope: &Scope) -> bool {
        render_flag(scope, &self.task.inherited.ignore_errors, false).unwrap_or(false)
    }

    /// Applies changed_when/failed_when and decides the status.
    fn finish(&self, action: impl Into<ActionResult>, scope: &Scope) -> ItemRun {
        let ActionResult {
            result: mut outcome,
            set_vars,
        } = action.into();
        let unreachable = outcome.data.contains_key("unreachable");
        let mut result = result_map(&outcome, set_vars.as_ref());
        let action_failed = outcome.failed;
        if !unreachable && !outcome.skipped {
            let check_scope = self.with_registered(scope, &result);
            if !self.task.changed_when.is_empty() {
                match self
                    .task
                    .changed_when
                    .iter()
                    .map(|c| check_scope.templar().eval_condition(c, &check_scope))
                    .collect::<Result<Vec<bool>, _>>()
                {
                    Ok(values) => outcome.changed = values.iter().all(|v| *v),
                    Err(e) => {
                        outcome.failed = true;
                        let msg = format!(
                            "The conditional check in changed_when failed: {}",
                            e.message
                        );
                        result.insert("changed_when_result".into(), Value::from(msg.as_str()));
                        outcome.msg = Some(msg);
                    }
                }
            }
            if !self.task.failed_when.is_empty() {
                match self
                    .task
                    .failed_when
                    .iter()
                    .map(|c| check_scope.templar().eval_condition(c, &check_scope))
                    .collect::<Result<Vec<bool>, _>>()
                {
                    Ok(values) => {
                        outcome.failed = values.iter().any(|v| *v);
                        result.insert("failed_when_result".into(), Value::from(outcome.failed));
                    }
                    Err(e) => {
                        outcome.failed = true;
                        let msg =
                            format!("The conditional check in failed_when failed: {}", e.message);
                        result.insert("failed_when_result".into(), Value::from(msg.as_str()));
                        outcome.msg = Some(msg);
                    }
                }
            }
            let extra: Vec<(String, Value)> = result
                .iter()
                .filter(|(k, _)| *k == "failed_when_result" || *k == "changed_when_result")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            result = result_map(&outcome, set_vars.as_ref());
            result.extend(extra);
        }
        record_exception(&mut result, action_failed, outcome.failed && !unreachable);
        let status = if unreachable {
            Status::Unreachable
        } else if outcome.failed {
            Status::Failed
        } else if outcome.skipped {
            Status::Skipped
        } else if outcome.changed {
            Status::Changed
        } else {
            Status::Ok
        };
        let ignored = match status {
            Status::Failed => self.ignore_errors(scope),
            Status::Unreachable => {
                render_flag(scope, &self.task.inherited.ignore_unreachable, false).unwrap_or(false)
            }
            _ => false,
        };
        ItemRun {
            status,
            result,
            outcome,
            set_vars,
            ignored,
            facts_owner: None,
        }
    }
}

/// Ansible 2.19 gives every failed result an `exception` (its traceback, which kiln, running no
/// Python, never has); a failure that `failed_when` suppressed keeps it as
/// `failed_when_suppressed_exception`.
fn record_exception(result: &mut IndexMap<String, Value>, action_failed: bool, failed: bool) {
    const UNAVAILABLE: &str = "(traceback unavailable)";
    if failed {
        result
            .entry("exception".into())
            .or_insert_with(|| Value::from(UNAVAILABLE));
    } else if action_failed {
        let exception = result
            .shift_remove("exception")
            .unwrap_or_else(|| Value::from(UNAVAILABLE));
        result.insert("failed_when_suppressed_exception".into(), exception);
    }
}

pub(super) fn unreachable(msg: String) -> ModuleResult {
    let mut r = ModuleResult::failed(msg);
    r.data.insert("unreachable".into(), Value::from(true));
    r
}
