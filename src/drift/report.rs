//! The drift report: a [`Reporter`] that collects, per host, the tasks a check-mode run says
//! would change (with their diffs), the tasks that failed and whether the host was reachable;
//! the verdict (`terraform plan -detailed-exitcode`'s exit codes), the terminal table and
//! the JSON document CI reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indexmap::IndexMap;
use serde::Serialize;

use crate::output::ansible::unified_diff;
use crate::output::{HostEvent, Reporter, Stats, Status};

/// Exit code: no host drifted.
pub const IN_SYNC: i32 = 0;
/// Exit code: a host could not be checked (unreachable, a task failed, the run failed).
pub const ERRORS: i32 = 1;
/// Exit code: some host drifted, every host was checked.
pub const DRIFTED: i32 = 2;

/// One host's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Every task reported ok or skipped: the host matches the playbook.
    InSync,
    /// Some task would change the host.
    Drifted,
    /// The host could not be reached: nothing is known about its drift.
    Unreachable,
    /// A task failed, so the check did not finish on this host.
    Failed,
}

impl HostState {
    pub fn word(self) -> &'static str {
        match self {
            HostState::InSync => "in sync",
            HostState::Drifted => "drifted",
            HostState::Unreachable => "unreachable",
            HostState::Failed => "failed",
        }
    }
}

/// A task that would change a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub task: String,
    /// The module (`copy`, `file`, …).
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Run as a handler notified by an earlier change.
    pub handler: bool,
    /// Unified diffs, as `--diff` prints them (none for `no_log` tasks).
    pub diff: Vec<String>,
}

/// A task that failed or found the host unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub task: String,
    pub msg: String,
}

/// Everything known about one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostDrift {
    pub state: HostState,
    pub changes: Vec<Change>,
    pub problems: Vec<Problem>,
}

impl Default for HostDrift {
    fn default() -> Self {
        HostDrift {
            state: HostState::InSync,
            changes: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// The whole report: hosts in the order the run met them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    pub hosts: IndexMap<String, HostDrift>,
    /// Notes about the check itself (a playbook changed since its image was baked, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A failure that stopped the check before every host was judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DriftReport {
    /// 1 when any host could not be checked (or the run failed), else 2 when any drifted,
    /// else 0.
    pub fn exit_code(&self) -> i32 {
        let states = || self.hosts.values().map(|h| h.state);
        if self.error.is_some()
            || states().any(|s| matches!(s, HostState::Unreachable | HostState::Failed))
        {
            ERRORS
        } else if states().any(|s| s == HostState::Drifted) {
            DRIFTED
        } else {
            IN_SYNC
        }
    }

    /// The report as CI reads it: the verdict, then every host.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "exit_code": self.exit_code(),
            "drifted": self.count(HostState::Drifted),
            "in_sync": self.count(HostState::InSync),
            "unreachable": self.count(HostState::Unreachable),
            "failed": self.count(HostState::Failed),
        });
        if let (Some(object), Ok(serde_json::Value::Object(rest))) =
            (json.as_object_mut(), serde_json::to_value(self))
        {
            object.extend(rest);
        }
        json
    }

    fn count(&self, state: HostState) -> usize {
        self.hosts.values().filter(|h| h.state == state).count()
    }

    /// The terminal summary: one row per host, then each drifted host's tasks and diffs and
    /// each failure's message.
    pub fn table(&self) -> String {
        let width = self
            .hosts
            .keys()
            .map(|h| h.chars().count())
            .chain([4])
            .max()
            .unwrap_or(4);
        let mut out = format!(
            "{:<width$}  {:<11}  {:>7}  DETAIL\n",
            "HOST", "STATE", "CHANGES"
        );
        for (host, drift) in &self.hosts {
            let detail = match drift.state {
                HostState::Drifted => {
                    let mut tasks: Vec<&str> =
                        drift.changes.iter().map(|c| c.task.as_str()).collect();
                    tasks.dedup();
                    tasks.join(", ")
                }
                HostState::InSync => String::new(),
                HostState::Unreachable | HostState::Failed => drift
                    .problems
                    .first()
                    .map(|p| p.msg.lines().next().unwrap_or_default().to_string())
                    .unwrap_or_default(),
            };
            out.push_str(&format!(
                "{host:<width$}  {:<11}  {:>7}  {detail}\n",
                drift.state.word(),
                drift.changes.len()
            ));
        }
        for (host, drift) in &self.hosts {
            for change in &drift.changes {
                let item = change
                    .item
                    .as_ref()
                    .map(|i| format!(" (item={i})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "\n{host}: {} [{}]{item} would change\n",
                    if change.handler { "HANDLER" } else { "TASK" },
                    change.task
                ));
                for diff in &change.diff {
                    out.push_str(diff);
                }
            }
            for problem in &drift.problems {
                out.push_str(&format!(
                    "\n{host}: {} [{}]: {}\n",
                    drift.state.word(),
                    problem.task,
                    problem.msg
                ));
            }
        }
        for warning in &self.warnings {
            out.push_str(&format!("\n[WARNING]: {warning}\n"));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("\nERROR! {error}\n"));
        }
        out
    }
}

/// Collects a check-mode run's events into a [`DriftReport`]; prints nothing but warnings
/// (to stderr).
#[derive(Default)]
pub struct DriftCollector {
    report: Mutex<DriftReport>,
    in_handler: AtomicBool,
    /// The name every host's results are recorded under, while one is set.
    alias: Mutex<Option<String>>,
}

impl DriftCollector {
    /// The report so far.
    pub fn report(&self) -> DriftReport {
        self.report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// A host that cannot be checked, and why (`what` names the step that stopped it).
    pub fn unchecked(&self, host: &str, what: &str, msg: &str) {
        self.with_host(host, |drift| {
            drift.problems.push(Problem {
                task: what.to_string(),
                msg: msg.to_string(),
            });
            drift.state = HostState::Failed;
        });
    }

    /// A note about the check itself, shown after the table and kept in the JSON.
    pub fn note(&self, warning: String) {
        self.with_report(|report| report.warnings.push(warning));
    }

    /// Records the next run's results under `name` (its inventory holds one host), or
    /// under their own names again with `None`.
    pub fn report_as(&self, name: Option<String>) {
        *self
            .alias
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = name;
    }

    fn with_host(&self, host: &str, update: impl FnOnce(&mut HostDrift)) {
        let host = self
            .alias
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .unwrap_or_else(|| host.to_string());
        self.with_report(|report| update(report.hosts.entry(host).or_default()));
    }

    fn with_report(&self, update: impl FnOnce(&mut DriftReport)) {
        let mut report = self
            .report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        update(&mut report);
    }
}

/// The message of a failed or unreachable result.
fn message(event: &HostEvent<'_>) -> String {
    if event.no_log {
        return crate::output::NO_LOG_CENSORED.to_string();
    }
    event
        .result
        .get("msg")
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_else(|| crate::output::result_json(event.result, false))
}

impl Reporter for DriftCollector {
    fn play_start(&self, _name: &str) {}

    fn task_start(&self, _name: &str, handler: bool) {
        self.in_handler.store(handler, Ordering::Relaxed);
    }

    fn host_result(&self, event: &HostEvent<'_>) {
        let handler = self.in_handler.load(Ordering::Relaxed);
        self.with_host(event.host, |host| match event.status {
            Status::Changed => {
                host.changes.push(Change {
                    task: event.task.to_string(),
                    action: event.action.to_string(),
                    item: event.item_label.clone(),
                    handler,
                    diff: event.diffs.iter().map(unified_diff).collect(),
                });
                if host.state == HostState::InSync {
                    host.state = HostState::Drifted;
                }
            }
            Status::Failed if !event.ignored => {
                host.problems.push(Problem {
                    task: event.task.to_string(),
                    msg: message(event),
                });
                if host.state != HostState::Unreachable {
                    host.state = HostState::Failed;
                }
            }
            Status::Unreachable => {
                host.problems.push(Problem {
                    task: event.task.to_string(),
                    msg: message(event),
                });
                host.state = HostState::Unreachable;
            }
            Status::Ok | Status::Skipped | Status::Failed => {}
        });
    }

    fn warning(&self, message: &str) {
        eprintln!("[WARNING]: {message}");
    }

    /// Every host the run counted gets a row, also those that only reported ok.
    fn recap(&self, stats: &IndexMap<String, Stats>) {
        for host in stats.keys() {
            self.with_host(host, |_| {});
        }
    }

    fn no_hosts_matched(&self) {
        self.note("a play matched no hosts: it checked nothing".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Diff;
    use minijinja::Value;

    fn event<'a>(
        host: &'a str,
        task: &'a str,
        status: Status,
        result: &'a IndexMap<String, Value>,
        diffs: &'a [Diff],
    ) -> HostEvent<'a> {
        HostEvent {
            host,
            task,
            action: "copy",
            status,
            result,
            item_label: None,
            ignored: false,
            diffs,
            is_debug: false,
            verbose_override: false,
            delegated_to: None,
            round_trips: 0,
            no_log: false,
        }
    }

    fn collected(events: &[HostEvent<'_>], hosts: &[&str]) -> DriftReport {
        let collector = DriftCollector::default();
        collector.task_start("t", false);
        for e in events {
            collector.host_result(e);
        }
        collector.recap(
            &hosts
                .iter()
                .map(|h| (h.to_string(), Stats::default()))
                .collect(),
        );
        collector.report()
    }

    #[test]
    fn a_changed_task_drifts_its_host_with_the_diff_and_exits_2() {
        let result = IndexMap::new();
        let diff = [Diff {
            before_header: "/etc/motd".into(),
            after_header: "/etc/motd".into(),
            before: "hand edit\n".into(),
            after: "welcome\n".into(),
        }];
        let report = collected(
            &[
                event("web1", "motd", Status::Changed, &result, &diff),
                event("web2", "motd", Status::Ok, &result, &[]),
            ],
            &["web1", "web2"],
        );
        assert_eq!(report.hosts["web1"].state, HostState::Drifted);
        assert_eq!(report.hosts["web2"].state, HostState::InSync);
        assert_eq!(report.exit_code(), DRIFTED);
        let change = &report.hosts["web1"].changes[0];
        assert_eq!(
            (change.task.as_str(), change.action.as_str()),
            ("motd", "copy")
        );
        assert!(
            change.diff[0].contains("-hand edit\n+welcome"),
            "{:?}",
            change.diff
        );
        let table = report.table();
        assert!(table.contains("web1  drifted"), "{table}");
        assert!(table.contains("web2  in sync"), "{table}");
        assert!(table.contains("web1: TASK [motd] would change"), "{table}");
        let json = report.to_json();
        assert_eq!(json["exit_code"], 2);
        assert_eq!(json["drifted"], 1);
        assert_eq!(json["hosts"]["web1"]["state"], "drifted");
        assert_eq!(json["hosts"]["web1"]["changes"][0]["task"], "motd");
        assert_eq!(json["hosts"]["web2"]["state"], "in_sync");
    }

    #[test]
    fn a_play_that_matched_no_hosts_is_noted_in_the_report() {
        let collector = DriftCollector::default();
        collector.no_hosts_matched();
        let report = collector.report();
        assert!(
            report.warnings[0].contains("matched no hosts"),
            "{report:?}"
        );
        assert!(report
            .table()
            .contains("[WARNING]: a play matched no hosts"));
        assert_eq!(report.to_json()["warnings"][0], report.warnings[0]);
    }

    #[test]
    fn unreachable_hosts_are_errors_not_drift() {
        let result = IndexMap::from([("msg".to_string(), Value::from("connection refused"))]);
        let report = collected(
            &[
                event("web1", "motd", Status::Unreachable, &result, &[]),
                event("web2", "motd", Status::Changed, &result, &[]),
            ],
            &["web1", "web2"],
        );
        assert_eq!(report.hosts["web1"].state, HostState::Unreachable);
        assert!(report.hosts["web1"].changes.is_empty());
        assert_eq!(report.hosts["web1"].problems[0].msg, "connection refused");
        assert_eq!(report.exit_code(), ERRORS);
        assert!(report.table().contains("web1  unreachable"));
    }

    #[test]
    fn an_all_ok_run_is_in_sync_and_ignored_failures_do_not_count() {
        let result = IndexMap::new();
        let mut ignored = event("web1", "probe", Status::Failed, &result, &[]);
        ignored.ignored = true;
        let report = collected(
            &[
                ignored,
                event("web1", "motd", Status::Skipped, &result, &[]),
            ],
            &["web1", "web2"],
        );
        assert_eq!(report.exit_code(), IN_SYNC);
        assert_eq!(report.hosts.len(), 2);
        let failed = collected(
            &[event("web1", "probe", Status::Failed, &result, &[])],
            &["web1"],
        );
        assert_eq!(failed.hosts["web1"].state, HostState::Failed);
        assert_eq!(failed.exit_code(), ERRORS);
    }
}
