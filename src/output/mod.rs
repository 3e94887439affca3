//! Output: run events rendered as ansible-playbook's text and/or a JSON-lines stream.

pub mod ansible;
pub mod json;

use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::Value;

use crate::modules::Diff;

/// How one task ended on one host (or for one loop item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipping",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
        }
    }
}

/// A host's result for a task, as the reporters see it.
#[derive(Debug, Clone)]
pub struct HostEvent<'a> {
    pub host: &'a str,
    pub task: &'a str,
    pub status: Status,
    /// The registered result (Ansible's JSON), already with `changed`, `msg`, …
    pub result: &'a IndexMap<String, Value>,
    pub item_label: Option<String>,
    pub ignored: bool,
    pub diffs: &'a [Diff],
    /// `debug` output is always shown; other results only with `-v`.
    pub is_debug: bool,
    pub delegated_to: Option<&'a str>,
    pub round_trips: u64,
    pub no_log: bool,
}

/// Per-host counters for PLAY RECAP.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub ok: u64,
    pub changed: u64,
    pub unreachable: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rescued: u64,
    pub ignored: u64,
}

pub trait Reporter: Send + Sync {
    fn playbook_start(&self, _path: &str) {}
    fn play_start(&self, name: &str);
    fn task_start(&self, name: &str, handler: bool);
    fn host_result(&self, event: &HostEvent<'_>);
    /// A loop's summary line after its items (Ansible prints one for failures only).
    fn warning(&self, message: &str);
    fn recap(&self, stats: &IndexMap<String, Stats>);
    fn no_hosts_matched(&self);
    /// `included: FILE for host1, host2`
    fn included(&self, _file: &str, _hosts: &[String]) {}
}

/// Sends every event to several reporters (text on stdout plus a JSON stream, say).
pub struct Fanout(pub Vec<Arc<dyn Reporter>>);

impl Reporter for Fanout {
    fn playbook_start(&self, path: &str) {
        self.0.iter().for_each(|r| r.playbook_start(path));
    }
    fn play_start(&self, name: &str) {
        self.0.iter().for_each(|r| r.play_start(name));
    }
    fn task_start(&self, name: &str, handler: bool) {
        self.0.iter().for_each(|r| r.task_start(name, handler));
    }
    fn host_result(&self, event: &HostEvent<'_>) {
        self.0.iter().for_each(|r| r.host_result(event));
    }
    fn warning(&self, message: &str) {
        self.0.iter().for_each(|r| r.warning(message));
    }
    fn recap(&self, stats: &IndexMap<String, Stats>) {
        self.0.iter().for_each(|r| r.recap(stats));
    }
    fn no_hosts_matched(&self) {
        self.0.iter().for_each(|r| r.no_hosts_matched());
    }
    fn included(&self, file: &str, hosts: &[String]) {
        self.0.iter().for_each(|r| r.included(file, hosts));
    }
}

/// JSON of a result with sorted keys (ansible-playbook's callback sorts them).
pub fn result_json(result: &IndexMap<String, Value>, pretty: bool) -> String {
    let value =
        crate::template::filters::to_json_value(&crate::template::map_value(result.clone()));
    let sorted = crate::template::filters::sort_keys(value);
    if pretty {
        let mut buf = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
        let _ = serde::Serialize::serialize(&sorted, &mut ser);
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        serde_json::to_string(&sorted)
            .unwrap_or_default()
            .replace("\":", "\": ")
            .replace(",\"", ", \"")
    }
}
