//! The idempotence check's reporter: it records every task that reports `changed`, with the
//! host and the file and line the task was written at.

use std::sync::Mutex;

use indexmap::IndexMap;

use crate::error::Location;
use crate::output::{HostEvent, Reporter, Stats, Status};

/// A task that changed something.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub host: String,
    pub task: String,
    pub location: Option<Location>,
}

#[derive(Default)]
pub struct ChangeWatcher {
    current: Mutex<Option<Location>>,
    changed: Mutex<Vec<Changed>>,
}

impl ChangeWatcher {
    /// The changed tasks, each host's once per task, in the order they ran.
    pub fn changed(&self) -> Vec<Changed> {
        self.changed.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Reporter for ChangeWatcher {
    fn play_start(&self, _name: &str) {}
    fn task_start(&self, _name: &str, _handler: bool) {
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
    }
    fn task_location(&self, location: &Location) {
        if let Ok(mut current) = self.current.lock() {
            *current = Some(location.clone());
        }
    }
    fn host_result(&self, event: &HostEvent<'_>) {
        if event.status != Status::Changed {
            return;
        }
        let location = self.current.lock().ok().and_then(|c| c.clone());
        let change = Changed {
            host: event.host.to_string(),
            task: event.task.to_string(),
            location,
        };
        if let Ok(mut changed) = self.changed.lock() {
            if !changed.contains(&change) {
                changed.push(change);
            }
        }
    }
    fn warning(&self, _message: &str) {}
    fn recap(&self, _stats: &IndexMap<String, Stats>) {}
    fn no_hosts_matched(&self) {}
}
