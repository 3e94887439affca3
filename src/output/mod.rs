//! Output: run events rendered as ansible-playbook's text and/or a JSON-lines stream.

pub mod ansible;
pub mod json;
pub mod json_doc;
pub mod progress;

use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::Value;

use crate::modules::Diff;

/// The result Ansible prints in place of one hidden by `no_log`.
pub const NO_LOG_CENSORED: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

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
    /// The module's short name (`command`, `copy`, …).
    pub action: &'a str,
    pub status: Status,
    /// The registered result (Ansible's JSON), already with `changed`, `msg`, …
    pub result: &'a IndexMap<String, Value>,
    pub item_label: Option<String>,
    pub ignored: bool,
    pub diffs: &'a [Diff],
    /// `debug` output is always shown, indented; other results only with `-v`.
    pub is_debug: bool,
    /// A result never printed in full (fact gathering: Ansible's `_ansible_verbose_override`).
    pub verbose_override: bool,
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
    /// While on (hosts running tasks independently, the `free` strategy), a task's banner
    /// shows above each result whose task differs from the last banner, as Ansible prints
    /// it, rather than when the task starts.
    fn banners_per_result(&self, _on: bool) {}
    /// Where the task just started was written (after `task_start`, whatever the verbosity).
    fn task_location(&self, _location: &crate::error::Location) {}
    /// One host's result for a task or a loop item; also a loop's summary line after its
    /// items (Ansible prints one for failures only).
    fn host_result(&self, event: &HostEvent<'_>);
    /// `[WARNING]: …` (notified handlers that do not exist, …).
    fn warning(&self, message: &str);
    /// `FAILED - RETRYING: [host]: task (N retries left).`, a line of its own in Ansible's
    /// output; other outputs take it as a warning.
    fn retry(&self, message: &str) {
        self.warning(message);
    }
    fn recap(&self, stats: &IndexMap<String, Stats>);
    fn no_hosts_matched(&self);
    /// `included: FILE for host1, host2`
    fn included(&self, _file: &str, _hosts: &[String]) {}
    /// A detail shown from `-v` × `level` on (`task path: …`, `<host> ESTABLISH …`).
    fn verbose(&self, _level: u8, _host: Option<&str>, _message: &str) {}
    /// A stage of `kiln test` ended: `outcome` is `passed`, `failed` or `skipped`.
    fn test_stage(&self, _scenario: &str, _stage: &str, _outcome: &str, _seconds: f64) {}
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
    fn banners_per_result(&self, on: bool) {
        self.0.iter().for_each(|r| r.banners_per_result(on));
    }
    fn task_location(&self, location: &crate::error::Location) {
        self.0.iter().for_each(|r| r.task_location(location));
    }
    fn host_result(&self, event: &HostEvent<'_>) {
        self.0.iter().for_each(|r| r.host_result(event));
    }
    fn warning(&self, message: &str) {
        self.0.iter().for_each(|r| r.warning(message));
    }
    fn retry(&self, message: &str) {
        self.0.iter().for_each(|r| r.retry(message));
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
    fn verbose(&self, level: u8, host: Option<&str>, message: &str) {
        self.0.iter().for_each(|r| r.verbose(level, host, message));
    }
    fn test_stage(&self, scenario: &str, stage: &str, outcome: &str, seconds: f64) {
        self.0
            .iter()
            .for_each(|r| r.test_stage(scenario, stage, outcome, seconds));
    }
}

/// JSON of a result with sorted keys (ansible-playbook's callback sorts them), with Python's
/// `json.dumps` separators: `, ` and `: ` when compact, four spaces of indent when pretty.
pub fn result_json(result: &IndexMap<String, Value>, pretty: bool) -> String {
    let value =
        crate::template::filters::to_json_value(&crate::template::map_value(result.clone()));
    let sorted = crate::template::filters::sort_keys(value);
    let mut buf = Vec::new();
    let written = if pretty {
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
        serde::Serialize::serialize(&sorted, &mut ser)
    } else {
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, PythonCompact);
        serde::Serialize::serialize(&sorted, &mut ser)
    };
    match written {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(e) => format!("{{\"msg\": \"the result could not be shown: {e}\"}}"),
    }
}

/// serde_json's compact layout with Python's default separators, as Ansible prints results.
struct PythonCompact;

impl serde_json::ser::Formatter for PythonCompact {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.begin_array_value(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// A loop item as Ansible's `(item=…)` shows it: a string as it is, anything else as Python's
/// `repr` would print it (`{'name': 'x', 'uid': 1}`, `['a', 'b']`, `True`, `None`).
pub fn item_label(item: &Value) -> String {
    match item.as_str() {
        Some(text) => text.to_string(),
        None => crate::value::python_repr(item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_results_use_python_separators_without_touching_strings() {
        let result = IndexMap::from([
            ("msg".to_string(), Value::from("a\":b,\"c")),
            ("changed".to_string(), Value::from(false)),
            ("list".to_string(), Value::from(vec![1, 2])),
        ]);
        assert_eq!(
            result_json(&result, false),
            r#"{"changed": false, "list": [1, 2], "msg": "a\":b,\"c"}"#
        );
    }

    #[test]
    fn loop_labels_print_items_as_python_does() {
        let nested: Value = serde_json::from_str::<serde_json::Value>(
            r#"{"name": "x", "opts": {"b": 1, "on": true, "no": null}, "l": ["it's", "a\\b"]}"#,
        )
        .map(|json| Value::from(minijinja::value::Serde(json)))
        .unwrap_or_default();
        assert_eq!(
            item_label(&nested),
            r#"{'name': 'x', 'opts': {'b': 1, 'on': True, 'no': None}, 'l': ["it's", 'a\\b']}"#
        );
        assert_eq!(item_label(&Value::from("plain text")), "plain text");
        assert_eq!(item_label(&Value::from(3)), "3");
    }
}
