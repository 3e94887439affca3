//! systemd targets: throwaway systemd-nspawn containers booted from an overlay over the cached
//! systemd rootfs, each in its own network namespace and cgroup, reachable over a veth pair.
//! apt inside installs real Debian packages from a local repository the test serves on the
//! host's end of the veth (containers have no route to a mirror). Dropping the Target kills
//! the container and removes its namespace.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{client_key, http::FileServer, repo, Target};

/// The port the apt repository is served on, on the host's end of each veth.
const REPO_PORT: u16 = 8080;

fn systemd_rootfs() -> &'static (PathBuf, PathBuf) {
    static ROOTFS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let rootfs = PathBuf::from("/var/cache/kiln-test/bookworm-systemd");
        let apt_repo = PathBuf::from("/var/cache/kiln-test/apt-repo");
        let status = Command::new(repo().join("tests/support/build-systemd-rootfs.sh"))
            .arg(&rootfs)
            .arg(&apt_repo)
            .status()
            .expect("run tests/support/build-systemd-rootfs.sh (run scripts/setup as root)");
        assert!(status.success(), "building the systemd test rootfs failed");
        (rootfs, apt_repo)
    })
}

/// The local apt repository (`main/`, `updates/`).
pub fn apt_repo() -> &'static Path {
    &systemd_rootfs().1
}

/// A fresh namespace name and the /30 its veth pair uses (host end, container end).
fn allocate() -> (String, Ipv4Addr, Ipv4Addr) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("kt{}-{n}", pid % 100_000);
        if Path::new("/run/netns").join(&name).exists() {
            continue;
        }
        let a = (100 + pid % 100) as u8;
        let b = ((n / 64) % 256) as u8;
        let c = ((n % 64) * 4) as u8;
        return (
            name,
            Ipv4Addr::new(10, a, b, c + 1),
            Ipv4Addr::new(10, a, b, c + 2),
        );
    }
}

/// Kills a systemd target's processes and removes its namespace.
pub fn stop(netns: &str) {
    let _ = Command::new(repo().join("tests/support/stop-systemd-target.sh"))
        .arg(netns)
        .status();
}

impl Target {
    /// Boots a systemd target; returns once its boot has finished and sshd answers.
    pub fn start_systemd(name: &str) -> Target {
        let rootfs = systemd_rootfs().0.display().to_string();
        Self::start_systemd_on(name, &rootfs)
    }

    /// Boots a systemd target over `lower` (overlay lower directories, colon-separated, the
    /// topmost first: a baked image's layers over the systemd rootfs).
    pub fn start_systemd_on(name: &str, lower: &str) -> Target {
        let rootfs = lower;
        let apt_repo = &systemd_rootfs().1;
        let dir = tempfile::Builder::new()
            .prefix("kiln-systemd-")
            .tempdir()
            .expect("tempdir");
        let (netns, host_address, address) = allocate();
        let child = Command::new(repo().join("tests/support/start-systemd-target.sh"))
            .env("KILN_TEST_SYSTEMD_ROOTFS", rootfs)
            .arg(dir.path())
            .arg(&netns)
            .arg(host_address.to_string())
            .arg(address.to_string())
            .arg(client_key().with_extension("pub"))
            .arg(format!("http://{host_address}:{REPO_PORT}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("console.log")).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).expect("log"))
            .spawn()
            .expect("start-systemd-target.sh");
        let mut target = Target {
            name: name.to_string(),
            address,
            dir,
            child,
            netns: Some(netns),
            _server: None,
        };
        // This machine may answer TCP connects to any routed-out address, so readiness is
        // judged only once the veth exists (its host address can be bound) and sshd's banner
        // comes back from inside.
        let deadline = Instant::now() + Duration::from_secs(30);
        let server = loop {
            if let Some(server) =
                FileServer::try_start(SocketAddr::from((host_address, REPO_PORT)), apt_repo)
            {
                break server;
            }
            target.assert_alive(deadline);
        };
        target._server = Some(server);
        while !ssh_banner(address) {
            target.assert_alive(deadline);
        }
        // Services a test starts should not queue behind the rest of the boot.
        let state = target.ssh("systemctl is-system-running --wait");
        let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
        assert!(
            state == "running" || state == "degraded",
            "systemd target {name} booted to '{state}'"
        );
        target
    }

    fn assert_alive(&mut self, deadline: Instant) {
        let exited = self.child.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "systemd target {} did not start ({exited:?}): {}",
            self.name,
            self.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    /// The address of the host's end of this target's veth (where the test serves files).
    pub fn host_address(&self) -> Ipv4Addr {
        let [a, b, c, d] = self.address.octets();
        Ipv4Addr::new(a, b, c, d - 1)
    }
}

/// Whether an SSH server answers with its banner on `address`:22.
fn ssh_banner(address: Ipv4Addr) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&(address, 22).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}
