//! SSH connections with russh: one TCP connection per host for the whole run, commands on
//! channels over it (at most 8 in flight: OpenSSH's default MaxSessions is 10), TCP_NODELAY
//! set (without it every command waits ~40 ms for delayed ACKs), host keys checked against
//! `known_hosts` unless checking is turned off.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use russh::client;
use russh::keys::{load_secret_key, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::Semaphore;

use super::alive::{lifeline, Alive, Lifeline};
use super::known_hosts::{self, Entry, Marker, Verdict};
use super::proxy::{Proxy, Transport};
use super::session::BoxStream;
use super::{Connection, ConnectionError, ExecOutput};

const CHANNELS_IN_FLIGHT: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub enum HostKeyPolicy {
    /// Known hosts only (Ansible's default).
    Strict,
    /// Accept and remember unknown hosts, refuse changed keys.
    AcceptNew,
    /// Accept anything (ANSIBLE_HOST_KEY_CHECKING=false, StrictHostKeyChecking=no).
    Off,
}

#[derive(Debug, Clone)]
pub struct SshParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub host_key_policy: HostKeyPolicy,
    pub known_hosts: Vec<PathBuf>,
    pub timeout: Duration,
    /// Keepalive (OpenSSH's ServerAliveInterval; None turns it off): a server that answers
    /// nothing for `alive_count` intervals more is given up as unreachable.
    pub alive_interval: Option<Duration>,
    /// OpenSSH's ServerAliveCountMax (0: never give up).
    pub alive_count: u32,
    /// Tried after the keys, as `ssh` with sshpass does (`ansible_password`, `-k`).
    pub password: Option<super::Password>,
    /// Jump hosts or a ProxyCommand to reach the host through (None: TCP).
    pub proxy: Option<Proxy>,
}

struct HostKeyCheck {
    params: SshParams,
    recorded: Vec<Entry>,
    /// Why the key was refused, for the error message.
    refusal: Arc<Mutex<Option<String>>>,
    /// russh drops the handler when the session ends: that ends every wait on it.
    _lifeline: Lifeline,
}

/// The known_hosts entries for this host (none when checking is off). Read once per
/// connection: they decide both which key type to ask for and whether to trust the key.
fn recorded_keys(params: &SshParams) -> Vec<Entry> {
    if params.host_key_policy == HostKeyPolicy::Off {
        return Vec::new();
    }
    known_hosts::entries_for(&params.host, params.port, &params.known_hosts)
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.refuse(
                "the server presented a certificate; kiln checks plain host keys only".into(),
            );
            return Ok(false);
        };
        if self.params.host_key_policy == HostKeyPolicy::Off {
            return Ok(true);
        }
        let p = &self.params;
        match known_hosts::judge(&self.recorded, key) {
            Verdict::Trusted => return Ok(true),
            Verdict::Revoked(file, line) => {
                self.refuse(format!(
                    "the host key of {}:{} is REVOKED ({} line {line}); kiln will not connect to a host presenting it",
                    p.host, p.port, file.display()
                ));
                return Ok(false);
            }
            Verdict::Changed(file, line) => {
                self.refuse(format!(
                    "the host key of {}:{} has CHANGED (it differs from {} line {line}). This may be an attack, or the host was rebuilt. If you trust the new key, remove the old one with: ssh-keygen -f {} -R '{}'",
                    p.host, p.port, file.display(), file.display(), known_hosts::host_name(&p.host, p.port)
                ));
                return Ok(false);
            }
            Verdict::Unknown => {}
        }
        if p.host_key_policy == HostKeyPolicy::AcceptNew {
            if let Some(file) = p.known_hosts.first() {
                // As OpenSSH: a file that cannot be written does not stop the connection.
                let _ = known_hosts::learn(file, &p.host, p.port, key);
            }
            return Ok(true);
        }
        self.refuse(format!(
            "the host key of {}:{} is not in known_hosts ({}). Add it with: ssh-keyscan -p {} {} >> ~/.ssh/known_hosts, or set ANSIBLE_HOST_KEY_CHECKING=false",
            p.host,
            p.port,
            p.known_hosts.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
            p.port,
            p.host
        ));
        Ok(false)
    }
}

impl HostKeyCheck {
    fn refuse(&self, reason: String) {
        if let Ok(mut slot) = self.refusal.lock() {
            *slot = Some(reason);
        }
    }
}

/// russh's default list of algorithms with `first` moved to the front.
fn preferring<T: PartialEq + Clone>(first: &[T], defaults: &[T]) -> Vec<T> {
    first
        .iter()
        .chain(defaults.iter().filter(|a| !first.contains(a)))
        .cloned()
        .collect()
}

/// The host key algorithms to ask for. ECDSA P-256 first: OpenSSH signs with it in OpenSSL's
/// optimised code, while its Ed25519 is the slow reference implementation. But a host whose
/// key is already in known_hosts is asked for that key's type first, so it can be checked.
fn host_key_order(recorded: &[Entry]) -> Vec<russh::keys::Algorithm> {
    use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
    let order = preferring(
        &[Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        }],
        &russh::Preferred::DEFAULT.key,
    );
    let known: Vec<Algorithm> = recorded
        .iter()
        .filter(|e| e.marker == Marker::Plain)
        .map(|e| match e.key.algorithm() {
            // A known RSA key is used with SHA-2 signatures.
            Algorithm::Rsa { .. } => Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            other => other,
        })
        .collect();
    let (first, rest): (Vec<_>, Vec<_>) = order.into_iter().partition(|a| known.contains(a));
    first.into_iter().chain(rest).collect()
}

/// Ansible's UNREACHABLE, in the words of its ssh connection.
pub(super) fn unreachable(what: String) -> ConnectionError {
    ConnectionError::Unreachable(format!("Failed to connect to the host via ssh: {what}"))
}

/// Whether the server accepted one authentication attempt (bounded by the timeout).
async fn accepted(
    attempt: impl std::future::Future<Output = Result<client::AuthResult, russh::Error>>,
    timeout: Duration,
    target: &str,
) -> Result<bool, ConnectionError> {
    let result = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| unreachable(format!("authentication with {target} timed out")))?
        .map_err(|e| unreachable(format!("authentication with {target} failed: {e}")))?;
    Ok(result.success())
}

pub struct SshConnection {
    handle: client::Handle<HostKeyCheck>,
    /// The jump hosts' connections or the ProxyCommand under this one.
    transport: Transport,
    alive: Alive,
    channels: Semaphore,
    commands: AtomicU64,
    target: String,
}

impl SshConnection {
    /// Connects and authenticates, or says why not (unreachable, refused key, failed auth).
    pub async fn connect(params: SshParams) -> Result<Self, ConnectionError> {
        super::proxy::connect(params).await
    }

    /// A TCP connection to `host:port` (the first hop of a connection).
    pub(super) async fn tcp(
        host: &str,
        port: u16,
        timeout: Duration,
        target: &str,
    ) -> Result<BoxStream, ConnectionError> {
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                unreachable(format!(
                    "connection to {target} timed out after {}s",
                    timeout.as_secs()
                ))
            })?
            .map_err(|e| unreachable(format!("connect to host {host} port {port}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Box::pin(super::quickack::QuickAckStream::new(stream)))
    }

    /// The SSH handshake and authentication over `stream`; `transport` is what carries it
    /// (kept as long as the connection lives).
    pub(super) async fn handshake(
        params: SshParams,
        stream: BoxStream,
        transport: Transport,
    ) -> Result<Self, ConnectionError> {
        let target = format!("{}@{}:{}", params.user, params.host, params.port);
        let recorded = recorded_keys(&params);
        let config = Arc::new(client::Config {
            preferred: russh::Preferred {
                // ECDH on P-256 first: OpenSSH computes it with OpenSSL's optimised curve
                // code, while its curve25519 is the slow reference implementation; that is
                // a large share of the server's CPU per connection.
                kex: std::borrow::Cow::Owned(preferring(
                    &[russh::kex::ECDH_SHA2_NISTP256],
                    &russh::Preferred::DEFAULT.kex,
                )),
                // AES-GCM first: both ends run it in hardware (OpenSSL on the server side),
                // while chacha20-poly1305 costs sshd its own Poly1305 per packet.
                cipher: std::borrow::Cow::Owned(preferring(
                    &[russh::cipher::AES_128_GCM, russh::cipher::AES_256_GCM],
                    &russh::Preferred::DEFAULT.cipher,
                )),
                key: std::borrow::Cow::Owned(host_key_order(&recorded)),
                ..Default::default()
            },
            nodelay: true,
            keepalive_interval: params.alive_interval,
            keepalive_max: params.alive_count as usize,
            // russh checks keepalives only between its writes, and a write to a server that
            // vanished without a word blocks until the TCP stack gives up (~15 minutes);
            // the inactivity timeout also ends such a write.
            inactivity_timeout: params
                .alive_interval
                .filter(|_| params.alive_count > 0)
                .map(|interval| interval * (params.alive_count + 1)),
            ..Default::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let (lifeline, alive) = lifeline();
        let handler = HostKeyCheck {
            params: params.clone(),
            recorded,
            refusal: refusal.clone(),
            _lifeline: lifeline,
        };
        let connecting = client::connect_stream(config, stream, handler);
        let mut handle = match tokio::time::timeout(params.timeout, connecting).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "SSH handshake with {target} timed out"
                )))
            }
            Ok(Err(e)) => {
                let reason = refusal.lock().ok().and_then(|mut r| r.take());
                return Err(unreachable(reason.unwrap_or_else(|| {
                    format!("SSH handshake with {target} failed: {e}")
                })));
            }
            Ok(Ok(handle)) => handle,
        };
        let keys = identity_candidates(&params.identity_files);
        let mut tried = Vec::new();
        for path in &keys {
            let Ok(key) = load_secret_key(path, None) else {
                tried.push(format!(
                    "{} (unreadable or passphrase-protected)",
                    path.display()
                ));
                continue;
            };
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten();
            let attempt = handle.authenticate_publickey(
                params.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            );
            if accepted(attempt, params.timeout, &target).await? {
                return Ok(Self::established(handle, alive, target, transport));
            }
            tried.push(path.display().to_string());
        }
        if let Some(password) = &params.password {
            let attempt = handle.authenticate_password(params.user.clone(), password.0.clone());
            if accepted(attempt, params.timeout, &target).await? {
                return Ok(Self::established(handle, alive, target, transport));
            }
            return Err(unreachable(format!(
                "{target}: Invalid/incorrect password: Permission denied, please try again."
            )));
        }
        Err(unreachable(format!(
            "{target}: Permission denied (publickey). Keys tried: {}. Set ansible_ssh_private_key_file or --private-key.",
            if tried.is_empty() { "none found".to_string() } else { tried.join(", ") }
        )))
    }

    fn established(
        handle: client::Handle<HostKeyCheck>,
        alive: Alive,
        target: String,
        transport: Transport,
    ) -> Self {
        Self {
            transport,
            handle,
            alive,
            channels: Semaphore::new(CHANNELS_IN_FLIGHT),
            commands: AtomicU64::new(0),
            target,
        }
    }

    async fn run(&self, command: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, russh::Error> {
        let mut channel = self.open_channel().await?;
        channel.exec(true, command).await?;
        if let Some(data) = stdin {
            channel.data(data).await?;
        }
        channel.eof().await?;
        let mut out = ExecOutput {
            rc: -1,
            ..Default::default()
        };
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => out.rc = exit_status as i32,
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.rc = 128 + signal_number(&signal_name);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Opens a session channel, retrying when the server refuses one for a moment.
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, russh::Error> {
        let mut delay = Duration::from_millis(2);
        for _ in 0..12 {
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                Err(russh::Error::ChannelOpenFailure(_)) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
        self.handle.channel_open_session().await
    }
}

impl SshConnection {
    /// A TCP connection from this host to `host:port` (what a jump host does for the next
    /// hop): a direct-tcpip channel as a stream.
    pub(super) async fn forward(&self, host: &str, port: u16) -> Result<BoxStream, russh::Error> {
        let channel = self
            .handle
            .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
            .await?;
        Ok(Box::pin(channel.into_stream()))
    }

    fn lost(&self) -> ConnectionError {
        ConnectionError::Unreachable(format!("the connection to {} was lost", self.target))
    }
}

fn signal_number(name: &russh::Sig) -> i32 {
    match name {
        russh::Sig::HUP => 1,
        russh::Sig::INT => 2,
        russh::Sig::KILL => 9,
        russh::Sig::TERM => 15,
        _ => 0,
    }
}

/// The keys to offer: the configured ones, else the usual files in `~/.ssh`.
fn identity_candidates(configured: &[PathBuf]) -> Vec<PathBuf> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let Some(home) = std::env::var_os("HOME") else {
        return vec![];
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|n| PathBuf::from(&home).join(".ssh").join(n))
        .filter(|p| p.exists())
        .collect()
}

#[async_trait]
impl Connection for SshConnection {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        let _permit = self.channels.acquire().await.map_err(|_| {
            ConnectionError::Unreachable(format!("connection to {} is closed", self.target))
        })?;
        self.commands.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            result = self.run(command, stdin.as_deref()) => result.map_err(|e| {
                ConnectionError::Unreachable(format!("SSH session with {} failed: {e}", self.target))
            }),
            () = self.alive.ended() => Err(self.lost()),
        }
    }

    fn round_trips(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    async fn open_stream(
        &self,
        command: &str,
    ) -> Result<super::session::BoxStream, ConnectionError> {
        self.stream(command, false).await
    }

    async fn open_terminal_stream(
        &self,
        command: &str,
    ) -> Result<super::session::BoxStream, ConnectionError> {
        self.stream(command, true).await
    }

    async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
        self.transport.close().await;
    }
}

impl SshConnection {
    /// A command's stdin and stdout as one stream, on a pseudo-terminal if `terminal`.
    async fn stream(
        &self,
        command: &str,
        terminal: bool,
    ) -> Result<super::session::BoxStream, ConnectionError> {
        let broken = |e: russh::Error| {
            ConnectionError::Unreachable(format!("SSH session with {} failed: {e}", self.target))
        };
        let opening = async {
            let channel = self.open_channel().await.map_err(broken)?;
            if terminal {
                channel
                    .request_pty(false, "dumb", 80, 24, 0, 0, &[])
                    .await
                    .map_err(broken)?;
            }
            // The session shell's own errors (sudo's, say) arrive on stdout so they reach the
            // message.
            channel
                .exec(true, format!("exec 2>&1; {command}"))
                .await
                .map_err(broken)?;
            Ok(channel)
        };
        let channel = tokio::select! {
            channel = opening => channel?,
            () = self.alive.ended() => return Err(self.lost()),
        };
        Ok(Box::pin(
            self.alive.guard(channel.into_stream(), self.target.clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, EcdsaCurve};

    fn params(policy: HostKeyPolicy, known_hosts: Vec<PathBuf>) -> SshParams {
        SshParams {
            host: "web1".into(),
            port: 22,
            user: "kiln".into(),
            identity_files: vec![],
            host_key_policy: policy,
            known_hosts,
            timeout: Duration::from_secs(1),
            alive_interval: None,
            alive_count: 3,
            password: None,
            proxy: None,
        }
    }

    #[test]
    fn host_keys_prefer_p256_unless_known_hosts_holds_another_type() {
        let p256 = Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, "web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIf2AzFyf4NFVwsuW/khpVqvcXtGEXVoccqVQd3jv2Vy\n").unwrap();
        let order = |policy, files| host_key_order(&recorded_keys(&params(policy, files)));
        let unknown = order(HostKeyPolicy::Strict, vec![dir.path().join("none")]);
        assert_eq!(unknown[0], p256);
        let known = order(HostKeyPolicy::Strict, vec![file.clone()]);
        assert_eq!(
            known[0],
            Algorithm::Ed25519,
            "the recorded key's type comes first"
        );
        assert_eq!(known[1], p256);
        let unchecked = order(HostKeyPolicy::Off, vec![file]);
        assert_eq!(unchecked[0], p256);
        assert_eq!(unchecked.len(), russh::Preferred::DEFAULT.key.len());
    }
}
