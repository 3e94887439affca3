//! What the output shows of a task's result on a host: the result line, its loop label,
//! its delegate, diffs, warnings, and what `no_log` hides.

use super::*;

impl TaskRun<'_> {
    pub(super) fn report(&self, run: &ItemRun, label: Option<String>, scope: &Scope) {
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

    pub(super) fn emit_with(
        &self,
        status: Status,
        result: &IndexMap<String, Value>,
        shown: Shown<'_>,
    ) {
        let Shown {
            label,
            delegated,
            diffs,
            ignored,
            is_debug,
            no_log,
        } = shown;
        // `failed: false` and `diff` are registered but, as in Ansible's callbacks, not shown
        // in the result (the diff is printed as a diff).
        let visible;
        let hidden =
            result.get("failed").is_some_and(|f| !f.is_true()) || result.contains_key("diff");
        let result = if hidden {
            visible = {
                let mut copy = result.clone();
                if copy.get("failed").is_some_and(|f| !f.is_true()) {
                    copy.shift_remove("failed");
                }
                copy.shift_remove("diff");
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
    pub(super) fn shows(&self, display: ResultDisplay) -> bool {
        self.task
            .action
            .spec()
            .is_some_and(|spec| spec.display == display)
    }
}
