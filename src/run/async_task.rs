//! `async:`/`poll:`: a task's user command runs as a background job on the target. With
//! `poll: 0` the task returns at once with the job's id (`async_status` follows it); otherwise
//! the runner checks every `poll` seconds until the job ends or `async` seconds pass. Modules
//! that run no user command run as usual, and their result is recorded as the job's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use minijinja::Value;

use crate::connection::{session::BoxStream, Connection, ConnectionError, ExecOutput};
use crate::modules::commands::async_status::recorded;
use crate::modules::commands::background::{self, JobState};
use crate::modules::ModuleResult;

/// The task's `async` (seconds) and `poll` (seconds between checks, 0: do not wait).
#[derive(Debug, Clone, Copy)]
pub struct AsyncSpec {
    pub seconds: u64,
    pub poll: u64,
}

/// The first check comes sooner than `poll`, so a short job does not wait a whole interval.
const FIRST_CHECK: Duration = Duration::from_millis(100);

/// A connection that runs the task's user command as a background job; kiln's own commands
/// pass through.
pub struct AsyncJob {
    inner: Arc<dyn Connection>,
    pub jid: String,
    spec: AsyncSpec,
    launched: AtomicBool,
    timed_out: AtomicBool,
}

impl AsyncJob {
    pub fn new(inner: Arc<dyn Connection>, spec: AsyncSpec) -> Self {
        Self {
            inner,
            jid: background::new_job_id(),
            spec,
            launched: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
        }
    }

    /// Turns the module's result into the task's, as Ansible registers an async task.
    pub async fn finish(&self, result: ModuleResult) -> ModuleResult {
        let file = background::results_file(&self.jid);
        let job = |result: ModuleResult, finished: i64| {
            result
                .with("ansible_job_id", self.jid.as_str())
                .with("results_file", file.as_str())
                .with("started", 1)
                .with("finished", finished)
        };
        if self.timed_out.load(Ordering::SeqCst) {
            let mut failed = ModuleResult::failed(format!(
                "async task did not complete within the requested time - {}s",
                self.spec.seconds
            ));
            failed.changed = false;
            let _ = background::cleanup(self.inner.as_ref(), &self.jid).await;
            return job(failed, 0);
        }
        if self.spec.poll > 0 {
            // As Ansible's cleanup after a finished poll: the job leaves no files.
            let _ = background::cleanup(self.inner.as_ref(), &self.jid).await;
            return job(result, 1);
        }
        if !self.launched.load(Ordering::SeqCst) {
            // Nothing ran in the background: the result is already final.
            if let Err(e) =
                background::record(self.inner.as_ref(), &self.jid, &recorded(&result)).await
            {
                return crate::modules::ModuleResult::failed(e.to_string());
            }
        }
        // Ansible reports a started job as changed.
        job(ModuleResult::changed(true), 0)
    }

    /// Waits for the job every `poll` seconds; past `async` seconds it is stopped.
    async fn wait(&self) -> Result<ExecOutput, ConnectionError> {
        let deadline = Instant::now() + Duration::from_secs(self.spec.seconds);
        let mut pause = FIRST_CHECK;
        loop {
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            if let JobState::Done { output, .. } =
                background::probe(self.inner.as_ref(), &self.jid).await?
            {
                return Ok(output);
            }
            if Instant::now() >= deadline {
                background::kill(self.inner.as_ref(), &self.jid).await?;
                self.timed_out.store(true, Ordering::SeqCst);
                return Ok(ExecOutput::default());
            }
            pause = Duration::from_secs(self.spec.poll);
        }
    }
}

#[async_trait]
impl Connection for AsyncJob {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.inner.exec(command, stdin).await
    }

    async fn exec_inline(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.inner.exec_inline(command, stdin).await
    }

    async fn exec_user(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        let script = background::launch_script(&self.jid, command, self.spec.seconds);
        let started = self
            .inner
            .exec(&script, Some(stdin.unwrap_or_default()))
            .await?;
        if started.rc != 0 {
            return Ok(started);
        }
        self.launched.store(true, Ordering::SeqCst);
        if self.spec.poll == 0 {
            return Ok(ExecOutput::default());
        }
        self.wait().await
    }

    fn round_trips(&self) -> u64 {
        self.inner.round_trips()
    }

    async fn open_stream(&self, command: &str) -> Result<BoxStream, ConnectionError> {
        self.inner.open_stream(command).await
    }
}

/// Reads `async:` and `poll:` (Ansible's default poll is 15 seconds); `None` without `async`
/// or with `async: 0`.
pub fn spec(seconds: Option<Value>, poll: Option<Value>) -> Result<Option<AsyncSpec>, String> {
    let number = |what: &str, value: &Value| -> Result<u64, String> {
        value
            .as_i64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| *n >= 0)
            .map(|n| n as u64)
            .ok_or_else(|| format!("'{what}' must be a whole number of seconds, got '{value}'"))
    };
    let Some(seconds) = seconds else {
        return Ok(None);
    };
    let seconds = number("async", &seconds)?;
    let poll = match poll {
        Some(poll) => number("poll", &poll)?,
        None => 15,
    };
    Ok((seconds > 0).then_some(AsyncSpec { seconds, poll }))
}
