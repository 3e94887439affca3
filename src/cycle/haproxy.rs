//! HAProxy as the local balancer, driven through its runtime API (the admin socket): add a
//! server, enable its health checks, set it ready; drain it, wait for its sessions to end,
//! put it in maintenance, delete it. Added servers do not inherit `default-server`, so every
//! option that keeps throughput (connection pooling) is given on `add server`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub struct HaProxy {
    pub socket: PathBuf,
    pub backend: String,
}

/// One server's line of `show stat`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerStat {
    pub name: String,
    pub state: ServerState,
    /// The balancer's own words for it, for people: `UP`, `DOWN`, `MAINT`, `DRAIN`,
    /// `UP 1/2`, `no check`, …
    pub status: String,
    /// Current sessions.
    pub sessions: u64,
}

/// Where a registered server stands with its balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// In service: the balancer's health checks pass.
    Up,
    /// Taking no new sessions while its current ones end.
    Draining,
    /// Administratively out of service.
    Maintenance,
    /// Registered but not (or not yet, or no longer fully) passing its checks.
    NotUp,
}

impl ServerState {
    /// HAProxy's `status` column: `MAINT` and `DRAIN` may carry a suffix (`MAINT (via …)`),
    /// and only a plain `UP` is fully up (`UP 1/2` is on its way down).
    pub fn from_haproxy(status: &str) -> Self {
        if status == "UP" {
            ServerState::Up
        } else if status.starts_with("MAINT") {
            ServerState::Maintenance
        } else if status.starts_with("DRAIN") {
            ServerState::Draining
        } else {
            ServerState::NotUp
        }
    }

    /// Whether the server counts as registered and serving (or about to).
    pub fn in_service(self) -> bool {
        !matches!(self, ServerState::Draining | ServerState::Maintenance)
    }
}

/// Parses `show stat` CSV for `backend`'s servers.
pub fn parse_stat(csv: &str, backend: &str) -> Vec<ServerStat> {
    let mut header: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for line in csv.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            header = h.split(',').collect();
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let get = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .and_then(|i| fields.get(i).copied())
                .unwrap_or("")
        };
        let server = get("svname");
        if get("pxname") != backend
            || server == "BACKEND"
            || server == "FRONTEND"
            || server.is_empty()
        {
            continue;
        }
        let status = get("status");
        out.push(ServerStat {
            name: server.to_string(),
            state: ServerState::from_haproxy(status),
            status: status.to_string(),
            sessions: get("scur").parse().unwrap_or(0),
        });
    }
    out
}

/// The configuration of the HAProxy kiln starts for a local fleet.
pub fn config(socket: &Path, listen: &str, backend: &str, check_path: &str, expect: u16) -> String {
    format!(
        "global\n    stats socket {socket} mode 600 level admin\n    maxconn 4000\n\ndefaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    retries 3\n    option redispatch\n\nfrontend fe_{backend}\n    bind {listen}\n    default_backend {backend}\n\nbackend {backend}\n    balance roundrobin\n    option httpchk GET {check_path}\n    http-check expect status {expect}\n",
        socket = socket.display()
    )
}

impl HaProxy {
    /// Sends one runtime API command; returns HAProxy's answer.
    pub async fn command(&self, command: &str) -> anyhow::Result<String> {
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connecting to HAProxy's socket {}", self.socket.display()))?;
        stream.write_all(format!("{command}\n").as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    pub async fn answers(&self) -> bool {
        self.command("show info").await.is_ok()
    }

    /// Starts HAProxy with `config` unless one already answers on the socket.
    pub async fn ensure_running(&self, dir: &Path, config_text: &str) -> anyhow::Result<()> {
        if self.answers().await {
            return Ok(());
        }
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, config_text).with_context(|| format!("writing {}", cfg.display()))?;
        let _ = std::fs::remove_file(&self.socket);
        let status = tokio::process::Command::new("haproxy")
            .arg("-f")
            .arg(&cfg)
            .arg("-D")
            .arg("-p")
            .arg(dir.join("haproxy.pid"))
            .status()
            .await
            .context("starting haproxy (package haproxy)")?;
        if !status.success() {
            bail!("haproxy did not start with {}", cfg.display());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers().await {
            if Instant::now() > deadline {
                bail!(
                    "haproxy started but its socket {} does not answer",
                    self.socket.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the HAProxy kiln started in `dir` (none started elsewhere is touched).
    pub async fn stop(&self, dir: &Path) -> anyhow::Result<()> {
        let pidfile = dir.join("haproxy.pid");
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            for pid in text
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2) with a pid read from the pidfile HAProxy wrote.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let _ = std::fs::remove_file(&pidfile);
        }
        Ok(())
    }

    pub async fn server_stats(&self) -> anyhow::Result<Vec<ServerStat>> {
        Ok(parse_stat(&self.command("show stat").await?, &self.backend))
    }

    async fn checked(&self, command: &str) -> anyhow::Result<()> {
        let answer = self.command(command).await?;
        let trimmed = answer.trim();
        if !trimmed.is_empty()
            && !trimmed.starts_with("New server registered")
            && !trimmed.starts_with("Server deleted")
        {
            bail!("haproxy: `{command}`: {trimmed}");
        }
        Ok(())
    }

    /// Adds a server with health checks and makes it ready for traffic.
    pub async fn add_server(&self, name: &str, address: &str, port: u16) -> anyhow::Result<()> {
        let be = &self.backend;
        self.checked(&format!(
            "add server {be}/{name} {address}:{port} check inter 500ms rise 2 fall 2 pool-max-conn -1 pool-purge-delay 5s"
        ))
        .await?;
        self.checked(&format!("enable health {be}/{name}")).await?;
        self.checked(&format!("set server {be}/{name} state ready"))
            .await
    }

    /// Waits until HAProxy's own checks call the server UP.
    pub async fn wait_server_up(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), super::CycleError> {
        let deadline = Instant::now() + timeout;
        loop {
            let up = self
                .server_stats()
                .await?
                .iter()
                .any(|s| s.name == name && s.state == ServerState::Up);
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(super::CycleError::Unhealthy(format!(
                    "haproxy did not see {name} healthy within {}s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Drains a server (no new sessions), waits for its sessions to end (or `timeout`),
    /// puts it in maintenance and deletes it.
    pub async fn remove_server(&self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        let be = &self.backend;
        if !self.server_stats().await?.iter().any(|s| s.name == name) {
            return Ok(());
        }
        self.checked(&format!("set server {be}/{name} state drain"))
            .await?;
        let deadline = Instant::now() + timeout;
        loop {
            let busy = self
                .server_stats()
                .await?
                .iter()
                .any(|s| s.name == name && s.sessions > 0);
            if !busy || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.checked(&format!("set server {be}/{name} state maint"))
            .await?;
        // Idle pooled connections hold the server until the pool purges them.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = self.command(&format!("del server {be}/{name}")).await?;
            if answer.contains("Server deleted") || answer.contains("No such server") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("haproxy would not delete {name}: {}", answer.trim());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[async_trait::async_trait]
impl super::Balancer for HaProxy {
    async fn servers(&self) -> anyhow::Result<Vec<ServerStat>> {
        self.server_stats().await
    }
    async fn add(&self, member: &super::Member, port: u16) -> anyhow::Result<()> {
        self.add_server(&member.id, &member.address, port).await
    }
    async fn wait_up(&self, id: &str, timeout: Duration) -> Result<(), super::CycleError> {
        self.wait_server_up(id, timeout).await
    }
    async fn remove(&self, id: &str, drain: Duration) -> anyhow::Result<()> {
        self.remove_server(id, drain).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_server_states() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\nfe,FRONTEND,,,3,,,,,,,,,,,,,OPEN\nweb,kb1,0,0,2,5,,9,,,,,,,,,,UP\nweb,kb2,0,0,0,0,,0,,,,,,,,,,DRAIN\nweb,BACKEND,0,0,2,,,,,,,,,,,,,UP\n";
        let s = super::parse_stat(csv, "web");
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].name.as_str(), s[0].status.as_str(), s[0].sessions),
            ("kb1", "UP", 2)
        );
        assert_eq!(s[1].status, "DRAIN");
        assert_eq!(
            (s[0].state, s[1].state),
            (super::ServerState::Up, super::ServerState::Draining)
        );
    }

    #[test]
    fn only_a_plain_up_is_up_and_maint_or_drain_with_a_suffix_are_out_of_service() {
        use super::ServerState;
        for (status, state, in_service) in [
            ("UP", ServerState::Up, true),
            ("UP 1/2", ServerState::NotUp, true),
            ("DOWN", ServerState::NotUp, true),
            ("no check", ServerState::NotUp, true),
            ("MAINT (via web/kb1)", ServerState::Maintenance, false),
            ("DRAIN (agent)", ServerState::Draining, false),
        ] {
            assert_eq!(ServerState::from_haproxy(status), state, "{status}");
            assert_eq!(state.in_service(), in_service, "{status}");
        }
    }
}
