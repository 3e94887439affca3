//! The host's connection as a module sees it beyond the task's shell ([`HostLink`]): opened
//! anew after a reboot, or a program's stdin and stdout as one stream (rsync's server), each
//! as the task's own connection is opened (user, become and its password, delegate).

use tokio::io::AsyncWriteExt;

use super::error::TaskError;
use super::host::TaskRun;
use crate::connection::escalate::shell_start;
use crate::connection::session::BoxStream;
use crate::connection::{ConnectionError, SharedConnection};
use crate::modules::HostLink;
use crate::template::Scope;

pub struct TaskLink<'r> {
    pub run: &'r TaskRun<'r>,
    pub scope: &'r Scope,
    pub escalation: Option<&'r (String, String)>,
}

fn connection_error(e: TaskError) -> ConnectionError {
    match e {
        TaskError::Connection(e) => e,
        other => ConnectionError::Unreachable(other.to_string()),
    }
}

#[async_trait::async_trait]
impl HostLink for TaskLink<'_> {
    /// The pool forgets the host's connection (and any failed try, which it would otherwise
    /// keep for the run), then the task's connection is opened as before.
    async fn reconnect(&self) -> Result<SharedConnection, ConnectionError> {
        let (name, _) = self
            .run
            .connection_target(self.scope)
            .map_err(connection_error)?;
        self.run.shared.pool.reset(&name);
        self.run
            .connection(self.scope, self.escalation)
            .await
            .map_err(connection_error)
    }

    /// Without become, the command runs on a channel of its own. With become, the channel
    /// starts a shell as the become user the way the task's shell was started (its password
    /// answered on the channel, never in an argument), and that shell `exec`s the command.
    async fn stream(&self, command: &str) -> Result<BoxStream, ConnectionError> {
        let (name, target) = self
            .run
            .connection_target(self.scope)
            .map_err(connection_error)?;
        let timeout = self.run.shared.opts.connection.timeout;
        let base = self.run.shared.pool.get(&name, &target, timeout).await?;
        let Some((method, user)) = self.escalation else {
            return base.open_stream(&format!("exec {command}")).await;
        };
        let start = shell_start(method, user).ok_or_else(|| {
            ConnectionError::Unreachable(format!("unknown become method '{method}'"))
        })?;
        let mut stream = if start.terminal {
            base.open_terminal_stream(&start.command).await?
        } else {
            base.open_stream(&start.command).await?
        };
        let password = self.run.become_password(self.scope, method);
        start.escalate(&mut stream, password.as_ref()).await?;
        let line = format!("exec {command}\n");
        stream
            .write_all(line.as_bytes())
            .await
            .and(stream.flush().await)
            .map_err(|e| ConnectionError::Unreachable(format!("{name}: {e}")))?;
        Ok(stream)
    }
}
