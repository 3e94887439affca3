//! The cleanup stack: every resource a build creates pushes its undo right after it exists;
//! on failure, Ctrl-C or SIGTERM the stack unwinds in reverse, each undo attempted even when
//! an earlier one fails. A finished build disarms what it keeps (the image).

use std::future::Future;
use std::pin::Pin;

type Undo = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

#[derive(Default)]
pub struct CleanupStack {
    steps: Vec<Option<(String, Undo)>>,
}

/// Names a pushed undo, to disarm it.
#[derive(Debug, Clone, Copy)]
pub struct Handle(usize);

impl CleanupStack {
    /// Registers the undo for a resource that now exists.
    pub fn push(
        &mut self,
        what: impl Into<String>,
        undo: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Handle {
        self.steps.push(Some((what.into(), Box::pin(undo))));
        Handle(self.steps.len() - 1)
    }

    /// Keeps the resource: its undo will not run.
    pub fn disarm(&mut self, handle: Handle) {
        if let Some(step) = self.steps.get_mut(handle.0) {
            *step = None;
        }
    }

    /// Runs every remaining undo, newest first; returns the ones that failed.
    pub async fn unwind(&mut self, report: impl Fn(&str)) -> Vec<String> {
        let mut failures = Vec::new();
        while let Some(step) = self.steps.pop() {
            let Some((what, undo)) = step else { continue };
            report(&what);
            if let Err(e) = undo.await {
                failures.push(format!("{what}: {e:#}"));
            }
        }
        failures
    }

    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn unwinds_newest_first_skipping_disarmed_and_past_failures() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stack = CleanupStack::default();
        for name in ["a", "b", "c"] {
            let log = log.clone();
            let h = stack.push(name, async move {
                log.lock().unwrap().push(name);
                if name == "c" {
                    anyhow::bail!("boom")
                }
                Ok(())
            });
            if name == "b" {
                stack.disarm(h);
            }
        }
        let failures = stack.unwind(|_| {}).await;
        assert_eq!(*log.lock().unwrap(), vec!["c", "a"]);
        assert_eq!(failures, vec!["c: boom"]);
        assert!(stack.is_empty());
    }
}
