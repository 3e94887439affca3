//! A task's outcome on a host from its item runs: the status the recap counts, the facts and
//! variables it sets, and the result Ansible would register (a loop's `results`).

use super::*;

impl TaskRun<'_> {
    /// Combines item runs into the task's outcome (and the loop's registered `results`).
    pub(super) fn outcome(&self, runs: Vec<ItemRun>, looped: bool) -> HostOutcome {
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
            // include_vars reports what the playbook's own vars files hold: as trusted as
            // the variables it set. Everything else a task returns came from a target.
            let playbook_data = self
                .task
                .action
                .is(crate::modules::registry::RunnerAction::IncludeVars);
            let registered = match (looped, playbook_data) {
                (_, true) => registered,
                (true, false) => crate::template::untrusted_loop_result(&registered),
                (false, false) => crate::template::untrusted(&registered),
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
}

/// The task-level result of a loop whose items were all skipped (or that had none).
pub(super) fn skipped_loop(empty: bool) -> ItemRun {
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
