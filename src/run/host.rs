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
    if let Some((vars, VarLevel::SetFact)) = set_vars {
        map.insert(
            "ansible_facts".into(),
            crate::template::map_value(vars.clone()),
        );
    }
    map
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

fn item_label(task: &Task, scope: &Scope, item: &Value) -> String {
    if let Some(label) = task.loop_spec.as_ref().and_then(|l| l.label.as_ref()) {
        if let Ok(v) = scope.templar().render_value(label, scope) {
            return crate::output::item_label(&v);
        }
    }
    crate::output::item_label(item)
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
                // evaluated without an item: a false condition skips the task.
                let skipped = super::loops::is_undefined(&e)
                    .then(|| self.unmet_condition(&scope))
                    .flatten();
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
        let plain_reference = matches!(spec.kind, crate::load::model::LoopKind::List)
            && spec
                .items
                .as_str()
                .is_some_and(crate::template::is_plain_reference);
        for (index, item) in items.into_iter().enumerate() {
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
                let info: VarMap = [
                    ("index", Value::from(index + 1)),
                    ("index0", Value::from(index)),
                    ("first", Value::from(index == 0)),
                    ("last", Value::from(index + 1 == total)),
                    ("length", Value::from(total)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                layer.insert("ansible_loop".into(), crate::template::map_value(info));
            }
            let item_scope = scope.with_layer(Arc::new(layer));
            let mut run = self.run_item(&item_scope, Some(&item)).await;
            run.facts_owner = self.facts_owner(&item_scope);
            run.result.insert(spec.loop_var.clone(), item.clone());
            run.result.insert(
                "ansible_loop_var".into(),
                Value::from(spec.loop_var.as_str()),
            );
            let label = item_label(self.task, &item_scope, &item);
            self.report(&run, Some(label), &item_scope);
            let unreachable = run.status == Status::Unreachable;
            runs.push(run);
            if unreachable {
                break;
            }
            if let Some(pause) = spec.pause {
                tokio::time::sleep(Duration::from_secs_f64(pause)).await;
            }
        }
        // As ansible-playbook: a loop that skipped every item (or had none) ends with a line of
        // its own for the host.
        if runs.iter().all(|r| r.status == Status::Skipped) {
            self.report(&skipped_loop(runs.is_empty()), None, &scope);
        }
        self.outcome(runs, true)
    }

    /// Combines item runs into the task's outcome (and the loop's registered `results`).
    fn outcome(&self, runs: Vec<ItemRun>, looped: bool) -> HostOutcome {
        let mut out = HostOutcome::default();
        let any = |s: Status| runs.iter().any(|r| r.status == s);
        let status = if runs.is_empty() {
            Status::Skipped
        } else if any(Status::Unreachable) {
            out.ignored = runs
                .iter()
                .filter(|r| r.status == Status::Unreachable)
                .all(|r| r.ignored);
            Status::Unreachable
        } else if runs
            .iter()
            .any(|r| r.status == Status::Failed && !r.ignored)
        {
            Status::Failed
        } else if any(Status::Failed) {
            out.ignored = true;
            Status::Failed
        } else if any(Status::Changed) {
            Status::Changed
        } else if runs.iter().all(|r| r.status == Status::Skipped) {
            Status::Skipped
        } else {
            Status::Ok
        };
        out.status = Some(status);
        out.notify = status == Status::Changed;
        out.changed = runs.iter().any(|r| r.outcome.changed);
        for run in &runs {
            match (&run.outcome.facts, &run.facts_owner) {
                (Some(facts), Some(owner)) => {
                    out.delegated_facts.push((owner.clone(), facts.clone()))
                }
                (Some(facts), None) => out
                    .facts
                    .get_or_insert_with(VarMap::new)
                    .extend(facts.clone()),
                (None, _) => {}
            }
            if let Some(set) = &run.set_vars {
                out.set_vars.push(set.clone());
            }
            if let Some(meta) = run.result.get("_meta").and_then(|m| m.as_str()) {
                out.meta = Some(meta.to_string());
            }
        }
        let registered = if looped {
            let mut map = IndexMap::new();
            map.insert("changed".to_string(), Value::from(any(Status::Changed)));
            map.insert(
                "msg".to_string(),
                Value::from(if status == Status::Failed {
                    "One or more items failed"
                } else {
                    "All items completed"
                }),
            );
            map.insert(
                "results".to_string(),
                Value::from(
                    runs.iter()
                        .map(|r| crate::template::map_value(r.result.clone()))
                        .collect::<Vec<_>>(),
                ),
            );
            if status == Status::Failed {
                map.insert("failed".to_string(), Value::from(true));
            }
            if status == Status::Skipped {
                map.insert("skipped".to_string(), Value::from(true));
            }
            crate::template::map_value(map)
        } else {
            runs.first()
                .map(|r| crate::template::map_value(r.result.clone()))
                .unwrap_or_default()
        };
        if status == Status::Failed && !out.ignored {
            out.failure = Some(registered.clone());
        }
        if let Some(name) = &self.task.register {
            let registered = match looped {
                true => crate::template::untrusted_loop_result(&registered),
                false => crate::template::untrusted(&registered),
            };
            out.register = Some((name.clone(), registered));
        }
        if looped && status == Status::Failed && !out.ignored {
            // Ansible follows a failed loop with one summary line.
            let summary = IndexMap::from([
                ("changed".to_string(), Value::from(any(Status::Changed))),
                ("msg".to_string(), Value::from("One or more items failed")),
            ]);
            let delegated = self
                .task
                .inherited
                .delegate_to
                .as_ref()
                .map(|d| d.to_string());
            let shown = Shown {
                label: None,
                delegated,
                diffs: &[],
                ignored: false,
                is_debug: false,
                no_log: false,
            };
            self.emit_with(Status::Failed, &summary, shown);
        }
        out
    }

    fn report(&self, run: &ItemRun, label: Option<String>, scope: &Scope) {
        let no_log = self
            .task
            .inherited
            .no_log
            .as_ref()
            .map(|v| scope.templar().eval_condition(v, scope).unwrap_or(true))
            .unwrap_or(false);
        let is_debug = self.shows(ResultDisplay::Always);
        // A hidden result hides its loop item and its diff too (Ansible prints `item=None`).
        let (label, diffs): (_, &[crate::modules::Diff]) = if no_log {
            (label.map(|_| "None".to_string()), &[])
        } else {
            (label, &run.outcome.diffs)
        };
        // The delegate as this host (and item) names it.
        let delegated = self.task.inherited.delegate_to.as_ref().map(|d| {
            scope
                .templar()
                .render_value(d, scope)
                .map_or_else(|_| d.to_string(), |v| v.to_string())
        });
        let shown = Shown {
            label,
            delegated,
            diffs,
            ignored: run.ignored,
            is_debug,
            no_log,
        };
        self.emit_with(run.status, &run.result, shown);
        // Warnings a module returned (Python modules' `warnings`), shown as Ansible does.
        let warnings = run.result.get("warnings");
        if let Some(warnings) = warnings.filter(|w| !no_log && w.kind() == ValueKind::Seq) {
            for warning in warnings.try_iter().into_iter().flatten() {
                self.shared.reporter.warning(&warning.to_string());
            }
        }
    }

    fn emit_with(&self, status: Status, result: &IndexMap<String, Value>, shown: Shown<'_>) {
        let Shown {
            label,
            delegated,
            diffs,
            ignored,
            is_debug,
            no_log,
        } = shown;
        // `failed: false` is registered but, as in Ansible's callbacks, never shown.
        let visible;
        let result = if result.get("failed").is_some_and(|f| !f.is_true()) {
            visible = {
                let mut copy = result.clone();
                copy.shift_remove("failed");
                copy
            };
            &visible
        } else {
            result
        };
        self.shared.reporter.host_result(&HostEvent {
            host: self.host,
            task: self.display_name,
            action: self.task.action.name(),
            status,
            result,
            item_label: label,
            ignored,
            diffs,
            is_debug,
            verbose_override: self.shows(ResultDisplay::Never),
            delegated_to: delegated.as_deref(),
            round_trips: self.shared.pool.round_trips(self.host),
            no_log,
        });
    }

    /// Whether the task's module asks the output to show its results this way.
    fn shows(&self, display: ResultDisplay) -> bool {
        self.task
            .action
            .spec()
            .is_some_and(|spec| spec.display == display)
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
        let retries = match (&self.task.until.is_empty(), &self.task.retries) {
            (true, _) => 0,
            (false, Some(v)) => scope
                .templar()
                .render_value(v, scope)
                .ok()
                .and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(3),
            (false, None) => 3,
        };
        let delay = self
            .task
            .delay
            .as_ref()
            .and_then(|v| scope.templar().render_value(v, scope).ok())
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(5);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.run_action(scope).await;
            let mut run = self.finish(result, scope);
            if self.task.until.is_empty() || run.status == Status::Unreachable {
                return run;
            }
            let check_scope = self.with_registered(scope, &run.result);
            let done = self.task.until.iter().all(|c| {
                check_scope
                    .templar()
                    .eval_condition(c, &check_scope)
                    .unwrap_or(false)
            });
            if done {
                run.result.insert("attempts".into(), Value::from(attempt));
                return run;
            }
            if attempt > retries {
                run.result.insert("attempts".into(), Value::from(attempt));
                run.status = Status::Failed;
                run.result.insert("failed".into(), Value::from(true));
                run.result
                    .entry("msg".into())
                    .or_insert(Value::from("Retries exhausted"));
                run.ignored = self.ignore_errors(scope);
                return run;
            }
            self.shared.reporter.warning(&format!(
                "FAILED - RETRYING: [{}]: {} ({} retries left).",
                self.host,
                self.display_name,
                retries + 1 - attempt
            ));
            tokio::time::sleep(Duration::from_secs(delay.max(0) as u64)).await;
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

pub(super) fn unreachable(msg: String) -> ModuleResult {
    let mut r = ModuleResult::failed(msg);
    r.data.insert("unreachable".into(), Value::from(true));
    r
}

/// The task-level result of a loop whose items were all skipped (or that had none).
fn skipped_loop(empty: bool) -> ItemRun {
    let mut skipped = ModuleResult::changed(false);
    skipped.skipped = true;
    let mut result = result_map(&skipped, None);
    if empty {
        result.insert("skipped_reason".into(), Value::from("No items in the list"));
        result.insert("results".into(), Value::from(Vec::<Value>::new()));
    }
    ItemRun {
        status: Status::Skipped,
        result,
        outcome: skipped,
        set_vars: None,
        ignored: false,
        facts_owner: None,
    }
}
