//! The local builder's machinery: the Debian base rootfs (built once with debootstrap), and
//! throwaway instances — systemd-nspawn containers on an overlay, each in its own network
//! namespace (a veth /30) and cgroup, torn down by killing the cgroup and deleting the
//! namespace (the veth goes with it).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

const BASE_SCRIPT: &str = include_str!("base-rootfs.sh");
const INSTANCE_SCRIPT: &str = include_str!("instance.sh");

/// Where kiln keeps local images, the base rootfs and build directories.
pub fn home() -> PathBuf {
    std::env::var_os("KILN_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/kiln"))
}

/// The base rootfs: `KILN_BASE_ROOTFS` (used as it is when it holds a root filesystem, else
/// built there), or `home/base/bookworm`; built once with debootstrap.
pub async fn ensure_base(home: &Path, report: impl Fn(&str)) -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("KILN_BASE_ROOTFS") {
        Some(given) => {
            let given = PathBuf::from(given);
            if given.join("etc/os-release").exists() {
                return Ok(given);
            }
            given
        }
        None => home.join("base/bookworm"),
    };
    if base.join(".kiln-base-ready").exists() {
        return Ok(base);
    }
    report(&format!(
        "building the Debian 12 base image in {} with debootstrap (once, about a minute)",
        base.display()
    ));
    let script = write_script(home, "base-rootfs.sh", BASE_SCRIPT)?;
    let status = Command::new("sh")
        .arg(&script)
        .arg(&base)
        .status()
        .await
        .context("running debootstrap for the base image")?;
    if !status.success() {
        bail!(
            "building the base image failed (see {}.log)",
            base.display()
        );
    }
    Ok(base)
}

fn write_script(home: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let dir = home.join("scripts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// An instance's network: its namespace and the two ends of its veth pair.
#[derive(Debug, Clone)]
pub struct Network {
    pub netns: String,
    pub host: Ipv4Addr,
    pub instance: Ipv4Addr,
}

/// A fresh namespace name and a /30 in 10.201.0.0/16 no interface here uses yet.
pub async fn allocate_network() -> anyhow::Result<Network> {
    let used = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .await
        .context("running `ip` (package iproute2)")?;
    let used = String::from_utf8_lossy(&used.stdout).into_owned();
    for _ in 0..64 {
        let id = crate::util::random_id();
        let bytes = u32::from_str_radix(&id[..8], 16).unwrap_or(0).to_be_bytes();
        let (b, c) = (bytes[0], (bytes[1] % 64) * 4);
        let host = Ipv4Addr::new(10, 201, b, c + 1);
        if used.contains(&format!(" {host}/")) {
            continue;
        }
        return Ok(Network {
            netns: format!("kb{}", &id[8..16]),
            host,
            instance: Ipv4Addr::new(10, 201, b, c + 2),
        });
    }
    bail!("no free address for an instance in 10.201.0.0/16")
}

/// The cgroups an instance runs in (hybrid hierarchy, or the unified one alone).
fn cgroups(netns: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("unified").is_dir() {
        vec![
            root.join("unified/kiln").join(netns),
            root.join("systemd/kiln").join(netns),
        ]
    } else {
        vec![root.join("kiln").join(netns)]
    }
}

pub struct Instance {
    child: Child,
    pub dir: PathBuf,
    pub net: Network,
}

impl Instance {
    /// Boots an instance whose upper layer is `dir/upper` (files placed there beforehand
    /// are visible at boot) over `lower` (topmost first).
    pub async fn boot(
        home: &Path,
        dir: &Path,
        net: &Network,
        lower: &[PathBuf],
    ) -> anyhow::Result<Instance> {
        let script = write_script(home, "instance.sh", INSTANCE_SCRIPT)?;
        let lower = lower
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let log = std::fs::File::create(dir.join("console.log"))
            .with_context(|| format!("creating {}/console.log", dir.display()))?;
        let child = Command::new("sh")
            .arg(&script)
            .arg(dir)
            .arg(&net.netns)
            .arg(net.host.to_string())
            .arg(net.instance.to_string())
            .arg(lower)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(false)
            // Its own process group: a Ctrl-C meant for kiln must not reach the instance
            // (kiln's cleanup, or a fleet that outlives kiln, decides its fate).
            .process_group(0)
            .spawn()
            .context("starting systemd-nspawn (package systemd-container)")?;
        Ok(Instance {
            child,
            dir: dir.to_path_buf(),
            net: net.clone(),
        })
    }

    /// Fails when the instance has stopped (showing the end of its console).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the instance stopped while booting ({status}); its console: {}",
                tail(&self.dir.join("console.log"))
            );
        }
        Ok(())
    }

    /// Waits until sshd inside answers with its banner.
    pub async fn wait_for_ssh(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if ssh_banner(self.net.instance).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the instance's SSH server did not answer within {}s; its console: {}",
                    timeout.as_secs(),
                    tail(&self.dir.join("console.log"))
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Shuts the instance down cleanly (SIGTERM to nspawn = poweroff), killing it if it takes
    /// longer than `timeout`.
    pub async fn shutdown(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid with a valid signal number.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(timeout, self.child.wait())
            .await
            .is_err()
        {
            kill_cgroup(&self.net.netns).await;
            let _ = self.child.wait().await;
        }
        Ok(())
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Whether an SSH server answers on `address`:22 with its banner (a bare TCP connect is not
/// proof: some networks accept connections for any address).
pub async fn ssh_banner(address: Ipv4Addr) -> bool {
    ssh_banner_at(&address.to_string(), 22).await
}

/// `ssh_banner` for a host name or address and port.
pub async fn ssh_banner_at(host: &str, port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((host, port));
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_millis(500), connect).await else {
        return false;
    };
    let mut banner = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut banner)).await,
        Ok(Ok(_)) if &banner == b"SSH-"
    )
}

async fn kill_cgroup(netns: &str) {
    for cg in cgroups(netns) {
        let kill = cg.join("cgroup.kill");
        if kill.exists() {
            let _ = std::fs::write(&kill, "1");
            let deadline = Instant::now() + Duration::from_secs(5);
            while cgroup_has_processes(&cg) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn cgroup_has_processes(dir: &Path) -> bool {
    let own = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    if !own.trim().is_empty() {
        return true;
    }
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .any(|e| cgroup_has_processes(&e.path()))
}

fn remove_cgroup_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            remove_cgroup_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Removes everything an instance left: its processes, cgroups and network namespace.
/// Safe to call twice, and for an instance that never fully started.
pub async fn teardown(netns: String) -> anyhow::Result<()> {
    kill_cgroup(&netns).await;
    for cg in cgroups(&netns) {
        remove_cgroup_tree(&cg);
    }
    if Path::new("/run/netns").join(&netns).exists() {
        let status = Command::new("ip")
            .args(["netns", "del", &netns])
            .status()
            .await?;
        if !status.success() {
            bail!("could not delete the network namespace {netns}");
        }
    }
    Ok(())
}
