//! Connections to targets: run a shell command (with optional stdin) and get its output.
//! Everything a module does on a target goes through [`Connection::exec`].

mod alive;
pub mod escalate;
pub mod known_hosts;
pub mod local;
pub mod proxy;
mod quickack;
pub mod session;
pub mod ssh;
pub mod ssh_config;

use std::sync::Arc;

use async_trait::async_trait;

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The host could not be reached or the session broke: Ansible's UNREACHABLE.
    #[error("{0}")]
    Unreachable(String),
    /// Privilege escalation refused (a missing or wrong become password): the task fails,
    /// the host stays reachable, as in Ansible.
    #[error("{0}")]
    Become(String),
}

#[async_trait]
pub trait Connection: Send + Sync {
    /// Runs `command` with `/bin/sh -c` semantics on the target.
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError>;
    /// Runs a user's command (`command`, `shell`, …) that may leave daemons behind holding its
    /// output open: a session captures its output in a file before framing it.
    async fn exec_user(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.exec(command, stdin).await
    }
    /// Runs one of kiln's own scripts that is safe to run without a subshell (see
    /// [`session`]); other connections run it like any command.
    async fn exec_inline(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.exec(command, stdin).await
    }
    /// Commands run so far (for the round-trip count in `-vvv` and the JSON stream).
    fn round_trips(&self) -> u64;
    /// Starts `command` and returns its stdin/stdout as one stream (for [`session::Session`]).
    async fn open_stream(&self, command: &str) -> Result<session::BoxStream, ConnectionError>;
    /// [`Connection::open_stream`] on a pseudo-terminal (for `su`, which reads its password
    /// from a terminal only).
    async fn open_terminal_stream(
        &self,
        _command: &str,
    ) -> Result<session::BoxStream, ConnectionError> {
        Err(ConnectionError::Unreachable(
            "this connection cannot give a command a terminal".into(),
        ))
    }
    async fn close(&self) {}
}

pub type SharedConnection = Arc<dyn Connection>;

/// A login password (`ansible_password`, `-k`): compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

pub use crate::shell::quote;
pub use escalate::{shell_start, ShellStart, BECOME_METHODS};
