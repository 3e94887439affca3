//! What carries an SSH connection: TCP, a chain of jump hosts (`ProxyJump`: each hop an SSH
//! connection of its own, authenticated with its own user, port and keys, and the next hop
//! reached through a direct-tcpip channel over it), or a `ProxyCommand` (a subprocess whose
//! stdin and stdout are the connection).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::session::BoxStream;
use super::ssh::{unreachable, SshConnection, SshParams};
use super::ConnectionError;

/// One jump host, as resolved from `ProxyJump`/`-J` and ssh_config.
#[derive(Debug, Clone, PartialEq)]
pub struct JumpHost {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
}

impl std::fmt::Display for JumpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Proxy {
    /// Hops in order, the first reached over TCP.
    Jump(Vec<JumpHost>),
    /// A shell command line, its tokens already expanded.
    Command(String),
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proxy::Jump(hops) => {
                let hops: Vec<String> = hops.iter().map(ToString::to_string).collect();
                write!(f, "jump hosts {}", hops.join(", "))
            }
            Proxy::Command(command) => write!(f, "ProxyCommand `{command}`"),
        }
    }
}

/// What must live as long as the connection it carries.
#[derive(Default)]
pub struct Transport {
    jumps: Vec<SshConnection>,
    command: Option<Mutex<Child>>,
}

impl Transport {
    /// Ends the hops (last first) and the proxy command.
    pub async fn close(&self) {
        use super::Connection;
        for jump in self.jumps.iter().rev() {
            jump.close().await;
        }
        if let Some(child) = &self.command {
            let _ = child.lock().await.kill().await;
        }
    }
}

/// How much of a proxy command's stderr is kept for an error message.
const STDERR_KEPT: usize = 4096;

/// Connects as `params` says: directly, through its jump hosts, or over its proxy command.
pub async fn connect(mut params: SshParams) -> Result<SshConnection, ConnectionError> {
    let target = format!("{}@{}:{}", params.user, params.host, params.port);
    match params.proxy.take() {
        None => {
            let stream =
                SshConnection::tcp(&params.host, params.port, params.timeout, &target).await?;
            SshConnection::handshake(params, stream, Transport::default()).await
        }
        Some(Proxy::Jump(hops)) => through_jumps(params, &hops).await,
        Some(Proxy::Command(command)) => over_command(params, &command).await,
    }
}

/// Connects to each hop through the one before it, then to the host through the last.
async fn through_jumps(
    params: SshParams,
    hops: &[JumpHost],
) -> Result<SshConnection, ConnectionError> {
    let mut jumps: Vec<SshConnection> = Vec::new();
    for hop in hops {
        let stream = match jumps.last() {
            None => SshConnection::tcp(&hop.host, hop.port, params.timeout, &hop.to_string())
                .await
                .map_err(|e| via(hop, e))?,
            Some(previous) => forward(previous, &hop.host, hop.port, &jumps, hops).await?,
        };
        let hop_params = SshParams {
            host: hop.host.clone(),
            port: hop.port,
            user: hop.user.clone(),
            identity_files: hop.identity_files.clone(),
            password: None,
            proxy: None,
            ..params.clone()
        };
        let connection = SshConnection::handshake(hop_params, stream, Transport::default())
            .await
            .map_err(|e| via(hop, e))?;
        jumps.push(connection);
    }
    let Some(last) = jumps.last() else {
        let target = format!("{}@{}:{}", params.user, params.host, params.port);
        let stream = SshConnection::tcp(&params.host, params.port, params.timeout, &target).await?;
        return SshConnection::handshake(params, stream, Transport::default()).await;
    };
    let stream = forward(last, &params.host, params.port, &jumps, hops).await?;
    let transport = Transport {
        jumps,
        command: None,
    };
    SshConnection::handshake(params, stream, transport).await
}

/// A channel from the last connected hop to `host:port`; a refusal names that hop.
async fn forward(
    from: &SshConnection,
    host: &str,
    port: u16,
    connected: &[SshConnection],
    hops: &[JumpHost],
) -> Result<BoxStream, ConnectionError> {
    from.forward(host, port).await.map_err(|e| {
        let hop = &hops[connected.len() - 1];
        unreachable(format!(
            "jump host {hop} could not connect to {host} port {port}: {e}"
        ))
    })
}

/// A hop's failure, naming the hop.
fn via(hop: &JumpHost, error: ConnectionError) -> ConnectionError {
    unreachable(format!("jump host {hop}: {}", reason(&error)))
}

/// A connection failure's words without the "Failed to connect" lead, to wrap them.
fn reason(error: &ConnectionError) -> String {
    let message = error.to_string();
    message
        .strip_prefix("Failed to connect to the host via ssh: ")
        .unwrap_or(&message)
        .to_string()
}

/// Runs `command` with the shell and speaks SSH over its stdin and stdout; a failure shows
/// what the command said on stderr.
async fn over_command(params: SshParams, command: &str) -> Result<SshConnection, ConnectionError> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| unreachable(format!("ProxyCommand `{command}` could not start: {e}")))?;
    let (Some(stdout), Some(stdin), Some(mut stderr)) =
        (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err(unreachable(format!(
            "ProxyCommand `{command}` has no pipes"
        )));
    };
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = said.clone();
    let reader = tokio::spawn(async move {
        let mut chunk = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            if let Ok(mut said) = kept.lock() {
                let room = STDERR_KEPT.saturating_sub(said.len()).min(n);
                said.extend_from_slice(&chunk[..room]);
            }
        }
    });
    let stream: BoxStream = Box::pin(tokio::io::join(stdout, stdin));
    let transport = Transport {
        jumps: Vec::new(),
        command: Some(Mutex::new(child)),
    };
    let error = match SshConnection::handshake(params, stream, transport).await {
        Ok(connection) => return Ok(connection),
        Err(e) => e,
    };
    // The command has usually exited by now (or was killed with the transport): what it
    // said on stderr is what explains the failure.
    let _ = tokio::time::timeout(STDERR_GRACE, reader).await;
    let said = said
        .lock()
        .map(|s| String::from_utf8_lossy(&s).trim().to_string())
        .unwrap_or_default();
    if said.is_empty() {
        return Err(error);
    }
    Err(unreachable(format!(
        "{} (ProxyCommand `{command}` said: {said})",
        reason(&error)
    )))
}

/// How long a failed proxy command gets to finish saying why.
const STDERR_GRACE: Duration = Duration::from_millis(300);
