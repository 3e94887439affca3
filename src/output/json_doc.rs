//! `ANSIBLE_STDOUT_CALLBACK=json`: the whole run as one JSON document on stdout when it ends,
//! in the layout of Ansible's json callback (`plays[].play`, `plays[].tasks[].hosts`,
//! `stats`), for CI jobs that parse it with `jq`.

use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

use indexmap::IndexMap;
use serde_json::{json, Map, Value as Json};

use super::{HostEvent, Reporter, Stats, Status};
use crate::clock::iso8601;

pub struct JsonDocument {
    out: Mutex<Box<dyn Write + Send>>,
    doc: Mutex<Document>,
}

#[derive(Default)]
struct Document {
    plays: Vec<Json>,
    /// Ids as Ansible gives plays and tasks (unique within the run).
    next_id: u64,
}

impl Document {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("kiln-{:012}", self.next_id)
    }

    fn stamp_end(value: Option<&mut Json>) {
        if let Some(duration) = value.and_then(|v| v.get_mut("duration")) {
            if duration.get("end").is_none() {
                duration["end"] = Json::from(iso8601(SystemTime::now()));
            }
        }
    }

    fn current_play(&mut self) -> Option<&mut Json> {
        self.plays.last_mut()
    }

    fn current_task(&mut self) -> Option<&mut Json> {
        self.current_play()?
            .get_mut("tasks")?
            .as_array_mut()?
            .last_mut()
    }

    /// Ends the current task's duration (a new task started, or the play ended).
    fn end_task(&mut self) {
        Self::stamp_end(self.current_task().and_then(|t| t.get_mut("task")));
    }
}

impl JsonDocument {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            doc: Mutex::new(Document::default()),
        }
    }
}

/// One host's result as the json callback records it: the result, its `action`, and loop
/// items gathered under `results`.
fn record(hosts: &mut Map<String, Json>, e: &HostEvent<'_>) {
    let mut result = if e.no_log {
        json!({
            "censored": super::NO_LOG_CENSORED,
            "changed": e.status == Status::Changed,
        })
    } else {
        crate::template::filters::to_json_value(&crate::template::map_value(e.result.clone()))
    };
    if let Some(map) = result.as_object_mut() {
        map.insert("action".into(), Json::from(e.action));
        map.insert("_ansible_no_log".into(), Json::from(e.no_log));
    }
    if e.item_label.is_none() {
        match hosts.get_mut(e.host).and_then(Json::as_object_mut) {
            // A loop's summary after its items: its keys join the items' entry.
            Some(existing) => {
                if let Some(map) = result.as_object() {
                    existing.extend(map.clone());
                }
            }
            None => {
                hosts.insert(e.host.to_string(), result);
            }
        }
        return;
    }
    let entry = hosts
        .entry(e.host.to_string())
        .or_insert_with(|| json!({"action": e.action, "changed": false, "results": []}));
    if e.status == Status::Changed {
        entry["changed"] = Json::from(true);
    }
    if e.status == Status::Failed {
        entry["failed"] = Json::from(true);
    }
    if let Some(results) = entry.get_mut("results").and_then(Json::as_array_mut) {
        results.push(result);
    }
}

impl Reporter for JsonDocument {
    fn play_start(&self, name: &str) {
        if let Ok(mut doc) = self.doc.lock() {
            doc.end_task();
            Document::stamp_end(doc.current_play().and_then(|p| p.get_mut("play")));
            let id = doc.id();
            doc.plays.push(json!({
                "play": {
                    "duration": {"start": iso8601(SystemTime::now())},
                    "id": id,
                    "name": name,
                },
                "tasks": [],
            }));
        }
    }

    fn task_start(&self, name: &str, _handler: bool) {
        if let Ok(mut doc) = self.doc.lock() {
            doc.end_task();
            let id = doc.id();
            let task = json!({
                "hosts": {},
                "task": {
                    "duration": {"start": iso8601(SystemTime::now())},
                    "id": id,
                    "name": name,
                },
            });
            if let Some(tasks) = doc
                .current_play()
                .and_then(|p| p.get_mut("tasks"))
                .and_then(Json::as_array_mut)
            {
                tasks.push(task);
            }
        }
    }

    fn host_result(&self, e: &HostEvent<'_>) {
        if let Ok(mut doc) = self.doc.lock() {
            if let Some(hosts) = doc
                .current_task()
                .and_then(|t| t.get_mut("hosts"))
                .and_then(Json::as_object_mut)
            {
                record(hosts, e);
            }
        }
    }

    fn warning(&self, message: &str) {
        // The document owns stdout; warnings go where Ansible's display sends them.
        eprintln!("[WARNING]: {message}");
    }

    fn recap(&self, stats: &IndexMap<String, Stats>) {
        let Ok(mut doc) = self.doc.lock() else {
            return;
        };
        doc.end_task();
        Document::stamp_end(doc.current_play().and_then(|p| p.get_mut("play")));
        let stats: Map<String, Json> = stats
            .iter()
            .map(|(host, s)| {
                let counters = json!({
                    "changed": s.changed,
                    "failures": s.failed,
                    "ignored": s.ignored,
                    "ok": s.ok,
                    "rescued": s.rescued,
                    "skipped": s.skipped,
                    "unreachable": s.unreachable,
                });
                (host.clone(), counters)
            })
            .collect();
        let document = json!({
            "custom_stats": {},
            "global_custom_stats": {},
            "plays": std::mem::take(&mut doc.plays),
            "stats": stats,
        });
        let mut text = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
        if serde::Serialize::serialize(&document, &mut ser).is_ok() {
            text.push(b'\n');
            if let Ok(mut out) = self.out.lock() {
                let _ = out.write_all(&text);
                let _ = out.flush();
            }
        }
    }

    fn no_hosts_matched(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(
        host: &'a str,
        status: Status,
        result: &'a IndexMap<String, minijinja::Value>,
        item: Option<&str>,
    ) -> HostEvent<'a> {
        HostEvent {
            host,
            task: "t",
            action: "command",
            status,
            result,
            item_label: item.map(str::to_string),
            ignored: false,
            diffs: &[],
            is_debug: false,
            verbose_override: false,
            delegated_to: None,
            round_trips: 0,
            no_log: false,
        }
    }

    #[test]
    fn loop_items_gather_under_results_and_a_summary_joins_them() {
        let mut hosts = Map::new();
        let item = IndexMap::from([("rc".to_string(), minijinja::Value::from(0))]);
        record(&mut hosts, &event("a", Status::Changed, &item, Some("x")));
        record(&mut hosts, &event("a", Status::Failed, &item, Some("y")));
        let summary = IndexMap::from([(
            "msg".to_string(),
            minijinja::Value::from("One or more items failed"),
        )]);
        record(&mut hosts, &event("a", Status::Failed, &summary, None));
        let a = &hosts["a"];
        assert_eq!(a["changed"], json!(true));
        assert_eq!(a["failed"], json!(true));
        assert_eq!(a["results"].as_array().map(Vec::len), Some(2));
        assert_eq!(a["msg"], json!("One or more items failed"));
        assert_eq!(a["action"], json!("command"));
    }
}
