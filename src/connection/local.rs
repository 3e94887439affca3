//! The local connection (`ansible_connection=local`, implicit `localhost`).

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::session::BoxStream;
use super::{Connection, ConnectionError, ExecOutput};

#[derive(Debug, Default)]
pub struct LocalConnection {
    commands: AtomicU64,
}

#[async_trait]
impl Connection for LocalConnection {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.commands.fetch_add(1, Ordering::Relaxed);
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ConnectionError::Unreachable(format!("could not start /bin/sh: {e}")))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command that does not read its stdin closes the pipe early; that is fine.
            let _ = pipe.write_all(&data).await;
            drop(pipe);
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| ConnectionError::Unreachable(format!("local command failed: {e}")))?;
        Ok(ExecOutput {
            rc: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn round_trips(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    async fn open_stream(&self, command: &str) -> Result<BoxStream, ConnectionError> {
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // A group of its own, so the session can stop its command when kiln goes away
            // without signalling the group kiln itself runs in.
            .process_group(0)
            .spawn()
            .map_err(|e| ConnectionError::Unreachable(format!("could not start /bin/sh: {e}")))?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(ConnectionError::Unreachable(
                "could not open pipes to /bin/sh".into(),
            ));
        };
        // The child exits when its stdin closes (the session's shell reads EOF); reap it then.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Box::pin(tokio::io::join(stdout, stdin)))
    }
}
