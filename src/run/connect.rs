//! Connections for hosts: one per host for the whole run, opened on first use, from the
//! host's variables (`ansible_host`, `ansible_port`, `ansible_user`, keys, SSH options).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::connection::local::LocalConnection;
use crate::connection::proxy::Proxy;
use crate::connection::session::{Session, SHELL_COMMAND};
use crate::connection::ssh::{HostKeyPolicy, SshConnection, SshParams};
pub use crate::connection::ssh_config::split_option_value;
use crate::connection::{shell_start, ConnectionError, Password, SharedConnection};

/// Ansible's words for a `become_method` there is no plugin for (kiln's list added).
pub fn unknown_become_method(method: &str) -> String {
    format!(
        "Invalid become method specified, could not find matching plugin: '{method}' (kiln implements {})",
        crate::connection::BECOME_METHODS.join(", ")
    )
}

/// Connection settings from the command line and ansible.cfg (host variables override).
#[derive(Debug, Clone)]
pub struct ConnectionDefaults {
    pub connection: Option<String>,
    pub remote_user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub host_key_checking: bool,
    pub timeout: Duration,
    /// `-o Key=Value` options from ANSIBLE_SSH_ARGS, ansible.cfg and `--ssh-*-args`.
    pub ssh_args: String,
    /// The known-hosts files to judge host keys by (None: `~/.ssh/known_hosts`); an
    /// explicit `UserKnownHostsFile` option still overrides it.
    pub known_hosts: Option<Vec<PathBuf>>,
    /// The SSH password `-k` asked for (a host's `ansible_password` overrides it).
    pub password: Option<Password>,
    /// The become password `-K` asked for (a host's `ansible_become_password` overrides it).
    pub become_password: Option<Password>,
}

/// What one host needs to be reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Local,
    Ssh(SshParamsKey),
}

/// `SshParams` plus equality, so a host's connection is reused while its settings hold.
#[derive(Debug, Clone, PartialEq)]
pub struct SshParamsKey {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub policy: String,
    pub known_hosts: Vec<PathBuf>,
    /// ServerAliveInterval (None: off) and ServerAliveCountMax.
    pub alive_interval: Option<Duration>,
    pub alive_count: u32,
    pub password: Option<Password>,
    /// Jump hosts or a ProxyCommand (None: TCP).
    pub proxy: Option<Proxy>,
}

/// Keepalive defaults: a target that answers nothing for about a minute is unreachable.
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(15);
pub const ALIVE_COUNT: u32 = 3;

/// A host's connection, opened at most once (a failure is kept for the run).
type ConnectionCell = Arc<OnceCell<Result<SharedConnection, OpenError>>>;

/// Why a host's connection or shell could not be opened; kept, so cloneable, and shown as
/// the host's unreachable message.
#[derive(Debug, Clone, thiserror::Error)]
enum OpenError {
    /// The SSH connection, or the stream for a shell, failed.
    #[error("{0}")]
    Connection(String),
    /// A missing or refused become password (a failed task, not an unreachable host).
    #[error("{0}")]
    Become(String),
    #[error("{}", unknown_become_method(.0))]
    UnknownBecomeMethod(String),
    #[error("starting a shell for {what} timed out (does {by} need a password?)")]
    ShellTimeout { what: String, by: String },
    /// The handshake limiter was closed (only while the run shuts down).
    #[error("semaphore closed")]
    HandshakesClosed,
}

impl From<ConnectionError> for OpenError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Become(message) => Self::Become(message),
            other => Self::Connection(other.to_string()),
        }
    }
}

impl From<tokio::sync::AcquireError> for OpenError {
    fn from(_: tokio::sync::AcquireError) -> Self {
        Self::HandshakesClosed
    }
}

impl OpenError {
    /// The kept failure, as the connection error every later use of the host sees.
    fn unreachable(&self) -> ConnectionError {
        match self {
            Self::Become(message) => ConnectionError::Become(message.clone()),
            other => ConnectionError::Unreachable(other.to_string()),
        }
    }
}

pub struct ConnectionPool {
    /// Handshakes in flight at once: with hundreds of hosts, starting every handshake at once
    /// makes each slow enough to hit the connect timeout; in waves each one is quick.
    handshakes: tokio::sync::Semaphore,
    cells: Mutex<HashMap<String, ConnectionCell>>,
    /// Persistent shells, by host and the user they run as.
    sessions: Mutex<HashMap<(String, String), ConnectionCell>>,
}

/// How long closing a connection may take at the end of a run.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Concurrent SSH handshakes (and shell starts).
const HANDSHAKES_IN_FLIGHT: usize = 64;

impl Default for ConnectionPool {
    fn default() -> Self {
        Self {
            handshakes: tokio::sync::Semaphore::new(HANDSHAKES_IN_FLIGHT),
            cells: Mutex::default(),
            sessions: Mutex::default(),
        }
    }
}

impl ConnectionPool {
    /// Whether a connection to `name` was opened (or tried) already.
    pub fn has_connection(&self, name: &str) -> bool {
        self.cells
            .lock()
            .map(|cells| cells.contains_key(name))
            .unwrap_or(false)
    }

    /// The connection for `name`, opened once; failures are remembered (the host stays
    /// unreachable for the run, as in Ansible).
    pub async fn get(
        &self,
        name: &str,
        target: &Target,
        timeout: Duration,
    ) -> Result<SharedConnection, ConnectionError> {
        let cell = {
            let mut cells = self
                .cells
                .lock()
                .map_err(|_| ConnectionError::Unreachable("connection pool poisoned".into()))?;
            cells.entry(name.to_string()).or_default().clone()
        };
        let result = cell
            .get_or_init(|| async {
                match target {
                    Target::Local => Ok(Arc::new(LocalConnection::default()) as SharedConnection),
                    Target::Ssh(p) => {
                        let _permit = self.handshakes.acquire().await?;
                        SshConnection::connect(SshParams {
                            host: p.host.clone(),
                            port: p.port,
                            user: p.user.clone(),
                            identity_files: p.identity_files.clone(),
                            host_key_policy: match p.policy.as_str() {
                                "no" => HostKeyPolicy::Off,
                                "accept-new" => HostKeyPolicy::AcceptNew,
                                _ => HostKeyPolicy::Strict,
                            },
                            known_hosts: p.known_hosts.clone(),
                            timeout,
                            alive_interval: p.alive_interval,
                            alive_count: p.alive_count,
                            password: p.password.clone(),
                            proxy: p.proxy.clone(),
                        })
                        .await
                        .map(|c| Arc::new(c) as SharedConnection)
                        .map_err(OpenError::from)
                    }
                }
            })
            .await;
        result.clone().map_err(|e| e.unreachable())
    }

    /// The persistent shell on `name` that runs commands as `escalation` (method, user), or
    /// as the login user. Opened on first use over the host's connection; `become_password`
    /// answers the method's password prompt.
    pub async fn session(
        &self,
        name: &str,
        target: &Target,
        timeout: Duration,
        escalation: Option<&(String, String)>,
        become_password: Option<&Password>,
    ) -> Result<SharedConnection, ConnectionError> {
        let user = escalation
            .map(|(m, u)| format!("{m}:{u}"))
            .unwrap_or_default();
        let cell = {
            let mut sessions = self
                .sessions
                .lock()
                .map_err(|_| ConnectionError::Unreachable("connection pool poisoned".into()))?;
            sessions
                .entry((name.to_string(), user))
                .or_default()
                .clone()
        };
        let result = cell
            .get_or_init(|| async {
                let base = self.get(name, target, timeout).await?;
                let start = match escalation {
                    Some((method, user)) => Some(
                        shell_start(method, user)
                            .ok_or_else(|| OpenError::UnknownBecomeMethod(method.clone()))?,
                    ),
                    None => None,
                };
                let what = match escalation {
                    Some((method, user)) => format!("{name} ({method} to {user})"),
                    None => name.to_string(),
                };
                let _permit = self.handshakes.acquire().await?;
                let starting = async {
                    let stream = match &start {
                        Some(start) => {
                            let mut stream = if start.terminal {
                                base.open_terminal_stream(&start.command).await?
                            } else {
                                base.open_stream(&start.command).await?
                            };
                            start.escalate(&mut stream, become_password).await?;
                            stream
                        }
                        None => base.open_stream(SHELL_COMMAND).await?,
                    };
                    Session::start(stream, what.clone()).await
                };
                let session = tokio::time::timeout(timeout, starting)
                    .await
                    .map_err(|_| OpenError::ShellTimeout {
                        what: what.clone(),
                        by: escalation
                            .map(|(m, _)| m.clone())
                            .unwrap_or_else(|| "the login shell".into()),
                    })??;
                Ok(Arc::new(session) as SharedConnection)
            })
            .await;
        result.clone().map_err(|e| e.unreachable())
    }

    /// Forgets a host's connection and shells (`meta: reset_connection`).
    pub fn reset(&self, name: &str) {
        if let Ok(mut cells) = self.cells.lock() {
            cells.remove(name);
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|(host, _), _| host != name);
        }
    }

    pub async fn close_all(&self) {
        // Shells first: closing their stdin ends the shell, which removes its files.
        let shells: Vec<ConnectionCell> = self
            .sessions
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        close_each(&shells).await;
        let connections: Vec<ConnectionCell> = self
            .cells
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        close_each(&connections).await;
    }

    /// Commands run so far on a host, over its connection and its shells.
    pub fn round_trips(&self, name: &str) -> u64 {
        let count = |cell: &ConnectionCell| {
            cell.get()
                .and_then(|r| r.as_ref().ok().map(|c| c.round_trips()))
                .unwrap_or(0)
        };
        let direct = self
            .cells
            .lock()
            .ok()
            .and_then(|c| c.get(name).map(count))
            .unwrap_or(0);
        let sessions: u64 = self
            .sessions
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|((host, _), _)| host == name)
                    .map(|(_, cell)| count(cell))
                    .sum()
            })
            .unwrap_or(0);
        direct + sessions
    }
}

/// Closes the open connections of `cells` together, each in bounded time: a target that
/// stopped answering must not hold up the end of the run.
async fn close_each(cells: &[ConnectionCell]) {
    let closing = cells.iter().filter_map(|cell| match cell.get() {
        Some(Ok(conn)) => Some(tokio::time::timeout(CLOSE_TIMEOUT, conn.close())),
        _ => None,
    });
    futures::future::join_all(closing).await;
}

/// Parses `-o Key=Value` / `-oKey=Value` / `-i file` options out of an ssh argument string,
/// with `-J hops` as `ProxyJump` and `-F file` as the key `-F`.
pub fn parse_ssh_options(args: &str) -> Vec<(String, String)> {
    let words = crate::shell::split_words(args);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = crate::shell::unquote(&words[i]);
        let (flag, inline) = if let Some(rest) = word.strip_prefix("-o") {
            ("o", rest.to_string())
        } else if let Some(rest) = word.strip_prefix("-i") {
            ("i", rest.to_string())
        } else if let Some(rest) = word.strip_prefix("-F") {
            ("F", rest.to_string())
        } else if let Some(rest) = word.strip_prefix("-J") {
            ("J", rest.to_string())
        } else {
            i += 1;
            continue;
        };
        let value = if inline.is_empty() {
            i += 1;
            words
                .get(i)
                .map(|w| crate::shell::unquote(w))
                .unwrap_or_default()
        } else {
            inline
        };
        if flag == "i" {
            out.push(("IdentityFile".to_string(), value));
        } else if flag == "F" {
            out.push(("-F".to_string(), value));
        } else if flag == "J" {
            out.push(("ProxyJump".to_string(), value));
        } else if let Some((k, v)) = value.split_once(['=', ' ']) {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_option_forms() {
        let opts = parse_ssh_options("-o ControlMaster=auto -oStrictHostKeyChecking=no -o 'UserKnownHostsFile=/dev/null' -i /k/id");
        assert_eq!(opts[1], ("StrictHostKeyChecking".into(), "no".into()));
        assert_eq!(opts[2], ("UserKnownHostsFile".into(), "/dev/null".into()));
        assert_eq!(opts[3], ("IdentityFile".into(), "/k/id".into()));
        let opts = parse_ssh_options("-o UserKnownHostsFile='/k/a b' -o 'ServerAliveInterval 2'");
        assert_eq!(opts[0], ("UserKnownHostsFile".into(), "'/k/a b'".into()));
        assert_eq!(split_option_value(&opts[0].1), ["/k/a b"]);
        assert_eq!(opts[1], ("ServerAliveInterval".into(), "2".into()));
        let opts = parse_ssh_options("-F ~/cfg -J a,b -o 'ProxyCommand=ssh -W %h:%p gw'");
        assert_eq!(opts[0], ("-F".into(), "~/cfg".into()));
        assert_eq!(opts[1], ("ProxyJump".into(), "a,b".into()));
        assert_eq!(opts[2], ("ProxyCommand".into(), "ssh -W %h:%p gw".into()));
    }
}
