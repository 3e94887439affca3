//! A JSON-lines event stream for CI (`--json-events FILE`, or KILN_JSON_EVENTS): one object
//! per line, for plays, tasks, host results (with SSH round trips so far) and the recap.

use std::io::Write;
use std::sync::Mutex;

use indexmap::IndexMap;
use serde_json::json;

use super::{HostEvent, Reporter, Stats};

pub struct JsonLines {
    out: Mutex<Box<dyn Write + Send>>,
    started: std::time::Instant,
}

impl JsonLines {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            started: std::time::Instant::now(),
        }
    }

    /// Writes one event, stamped with milliseconds since the run started (`at_ms`).
    fn emit(&self, mut value: serde_json::Value) {
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "at_ms".into(),
                json!((self.started.elapsed().as_secs_f64() * 1000.0).round()),
            );
        }
        // One write per event: `Display` would hand an unbuffered file many small pieces.
        let mut line = value.to_string();
        line.push('\n');
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

impl Reporter for JsonLines {
    fn playbook_start(&self, path: &str) {
        self.emit(json!({"event": "playbook_start", "playbook": path}));
    }
    fn play_start(&self, name: &str) {
        self.emit(json!({"event": "play_start", "play": name}));
    }
    fn task_start(&self, name: &str, handler: bool) {
        self.emit(json!({"event": "task_start", "task": name, "handler": handler}));
    }
    fn host_result(&self, e: &HostEvent<'_>) {
        let result = if e.no_log {
            json!({"censored": true})
        } else {
            crate::template::filters::to_json_value(&crate::template::map_value(e.result.clone()))
        };
        self.emit(json!({
            "event": "host_result",
            "host": e.host,
            "task": e.task,
            "status": e.status.word(),
            "item": if e.no_log { None } else { e.item_label.as_deref() },
            "ignored": e.ignored,
            "round_trips": e.round_trips,
            "result": result,
        }));
    }
    fn warning(&self, message: &str) {
        self.emit(json!({"event": "warning", "message": message}));
    }
    fn recap(&self, stats: &IndexMap<String, Stats>) {
        self.emit(json!({"event": "recap", "hosts": stats}));
    }
    fn no_hosts_matched(&self) {
        self.emit(json!({"event": "no_hosts_matched"}));
    }
    fn test_stage(&self, scenario: &str, stage: &str, outcome: &str, seconds: f64) {
        self.emit(json!({
            "event": "test_stage",
            "scenario": scenario,
            "stage": stage,
            "outcome": outcome,
            "duration_ms": (seconds * 1000.0).round(),
        }));
    }
}
