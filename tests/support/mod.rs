//! The test bed: throwaway SSH targets on real Debian root filesystems.
//!
//! Each [`Target`] is an overlay over a cached debootstrap rootfs, in its own mount, PID and
//! UTS namespaces, with a real OpenSSH server on its own 127.x.y.z address and a login user
//! `kiln` whose shell is `/bin/sh` (no Python on the target). Tests read the target's state
//! with the OpenSSH client, never through kiln. Dropping a Target kills it.
#![allow(dead_code)]

pub mod bake;
pub mod http;
#[cfg(feature = "aws")]
pub mod moto;
pub mod systemd;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn kiln() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

pub fn kiln_playbook() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln-playbook"))
}

/// The rootfs with python3 added, for modules kiln runs through the target's Python; built
/// once per machine like the plain one.
fn python_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| rootfs_with("bookworm-python", "python3"))
}

/// The rootfs with git, curl and pip added (installed with apt after the plain build), for
/// the modules that drive them.
fn net_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let path = PathBuf::from("/var/cache/kiln-test/bookworm-net");
        let status = Command::new(repo().join("tests/support/build-net-rootfs.sh"))
            .arg(&path)
            .status()
            .expect("run tests/support/build-net-rootfs.sh");
        assert!(
            status.success(),
            "building the test rootfs bookworm-net failed"
        );
        path
    })
}

/// Builds (once per machine) the plain rootfs plus `packages` (comma-separated) under
/// /var/cache/kiln-test/`name`.
fn rootfs_with(name: &str, packages: &str) -> PathBuf {
    let path = PathBuf::from("/var/cache/kiln-test").join(name);
    let status = Command::new(repo().join("tests/support/build-rootfs.sh"))
        .arg(&path)
        .arg(packages)
        .status()
        .expect("run tests/support/build-rootfs.sh");
    assert!(status.success(), "building the test rootfs {name} failed");
    path
}

/// The rootfs with the tools some modules drive (iptables, ufw, locales, bzip2, xz, zip),
/// built once per machine like the plain one.
fn tools_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        rootfs_with(
            "bookworm-tools",
            "iptables,ufw,locales,bzip2,xz-utils,zip,unzip",
        )
    })
}

/// Builds the cached rootfs once per machine (the script is idempotent and locked).
fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let path = std::env::var("KILN_TEST_ROOTFS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from("/var/cache/kiln-test/bookworm"));
        let status = Command::new(repo().join("tests/support/build-rootfs.sh"))
            .arg(&path)
            .status()
            .expect(
                "run tests/support/build-rootfs.sh (needs root and debootstrap: run scripts/setup)",
            );
        assert!(
            status.success(),
            "building the test rootfs failed; run scripts/setup as root first"
        );
        path
    })
}

/// A client key for all targets of this test process.
pub fn client_key() -> &'static Path {
    static KEY: OnceLock<PathBuf> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kiln-test-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create key dir");
        let key = dir.join("id_ed25519");
        if !key.exists() {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .status()
                .expect("ssh-keygen");
            assert!(status.success());
        }
        key
    })
}

/// A free 127.x.y.z address (port 22 unbound there).
fn free_address() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let addr = Ipv4Addr::new(
            127,
            100 + (pid % 100) as u8,
            ((n / 250) % 250) as u8,
            (n % 250 + 2) as u8,
        );
        if TcpListener::bind((addr, 22)).is_ok() {
            return addr;
        }
    }
}

pub struct Target {
    pub name: String,
    pub address: Ipv4Addr,
    pub dir: tempfile::TempDir,
    child: Child,
    /// Set for systemd targets: their network namespace, torn down on drop.
    netns: Option<String>,
    /// Keeps the target's apt repository (and test files) served while it lives.
    _server: Option<http::FileServer>,
}

impl Target {
    pub fn start(name: &str) -> Target {
        Self::start_with_host_key(name, None)
    }

    /// A target whose sshd presents `host_key` instead of the rootfs's key.
    pub fn start_with_host_key(name: &str, host_key: Option<&Path>) -> Target {
        Self::start_with(name, host_key, "INFO")
    }

    /// A target with a given host key (or the rootfs's) and sshd `LogLevel`.
    pub fn start_with(name: &str, host_key: Option<&Path>, log_level: &str) -> Target {
        Self::launch(rootfs(), name, host_key, log_level, false, None)
    }

    /// A target whose sshd listens on `address` inside the network namespace `netns`
    /// (reachable only from where that namespace is routed).
    pub fn start_in_netns(name: &str, netns: &Netns, address: Ipv4Addr) -> Target {
        Self::launch(rootfs(), name, None, "INFO", false, Some((netns, address)))
    }

    /// A target that also has python3 (`/usr/bin/python3`).
    pub fn start_with_python(name: &str) -> Target {
        Self::launch(python_rootfs(), name, None, "INFO", false, None)
    }

    /// A target with iptables, ufw, locales and the archivers, in a network namespace of its
    /// own (so firewall rules a test sets never reach the machine), reachable from the test
    /// over a veth pair. Keep the namespace until the target is dropped.
    pub fn start_with_tools(name: &str) -> (Target, Netns) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let b = (std::process::id() % 250) as u8;
        let c = ((n % 60) * 4) as u8;
        let (host, here) = (
            Ipv4Addr::new(10, 251, b, c + 1),
            Ipv4Addr::new(10, 251, b, c + 2),
        );
        let netns = Netns::new();
        netns.link(here, None, host);
        let target = Self::launch(
            tools_rootfs(),
            name,
            None,
            "INFO",
            false,
            Some((&netns, here)),
        );
        (target, netns)
    }

    /// A target that also has git, curl, python3 and pip.
    pub fn start_with_net_tools(name: &str) -> Target {
        Self::launch(net_rootfs(), name, None, "INFO", false, None)
    }

    /// A target whose sshd also accepts passwords, where `kiln` logs in with `password`.
    pub fn start_with_password_login(name: &str, password: &str) -> Target {
        let target = Self::launch(rootfs(), name, None, "INFO", true, None);
        target.root(&format!("echo kiln:{} | chpasswd", shell_quote(password)));
        target
    }

    fn launch(
        rootfs: &Path,
        name: &str,
        host_key: Option<&Path>,
        log_level: &str,
        password_auth: bool,
        netns: Option<(&Netns, Ipv4Addr)>,
    ) -> Target {
        let dir = tempfile::Builder::new()
            .prefix("kiln-target-")
            .tempdir()
            .expect("tempdir");
        let script = repo().join("tests/support/start-target.sh");
        let (address, mut command) = match netns {
            Some((netns, address)) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &netns.name]).arg(script);
                (address, command)
            }
            None => (free_address(), Command::new(script)),
        };
        command
            .env("KILN_TEST_ROOTFS", rootfs)
            .env("KILN_TEST_SSHD_LOG_LEVEL", log_level)
            .env(
                "KILN_TEST_SSHD_PASSWORD_AUTH",
                if password_auth { "yes" } else { "no" },
            )
            .arg(dir.path())
            .arg(address.to_string())
            .arg(client_key().with_extension("pub"));
        if let Some(k) = host_key {
            command.arg(k);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).expect("log"))
            .spawn()
            .expect("start-target.sh");
        let target = Target {
            name: name.to_string(),
            address,
            dir,
            child,
            netns: None,
            _server: None,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        // A target in a namespace may not be reachable from here: its log says when it is up.
        let up = |t: &Target| match netns {
            Some(_) => t.log().contains("Server listening on"),
            None => TcpStream::connect((address, 22)).is_ok(),
        };
        while !up(&target) {
            assert!(
                Instant::now() < deadline,
                "target {name} did not start: {}",
                target.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        target
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Runs a command on the target with the OpenSSH client (as `kiln`, or root via sudo).
    pub fn ssh(&self, command: &str) -> Output {
        Command::new("ssh")
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "BatchMode=yes",
                "-i",
            ])
            .arg(client_key())
            .arg(format!("kiln@{}", self.address))
            .arg(command)
            .output()
            .expect("ssh")
    }

    /// stdout of a root command on the target; panics if it fails.
    pub fn root(&self, command: &str) -> String {
        let out = self.ssh(&format!("sudo -n sh -c {}", shell_quote(command)));
        assert!(
            out.status.success(),
            "`{command}` failed on {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether a root command succeeds on the target.
    pub fn check(&self, command: &str) -> bool {
        self.ssh(&format!("sudo -n sh -c {}", shell_quote(command)))
            .status
            .success()
    }

    /// A checksum of the target's whole writable layer state, for "nothing changed" checks.
    pub fn fingerprint(&self, paths: &str) -> String {
        self.root(&format!("find {paths} -xdev \\( -type f -o -type l -o -type d \\) -printf '%p %m %u %g %s %l\\n' 2>/dev/null | sort | sha1sum"))
    }

    /// The target's processes (pid, command name): its sshd (the first process of its PID
    /// namespace), the sessions' sshd processes and whatever they started.
    pub fn processes(&self) -> Vec<(String, String)> {
        let ppid = |pid: &str| -> Option<String> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after_name = &stat[stat.rfind(')')? + 2..];
            after_name.split_whitespace().nth(1).map(str::to_string)
        };
        let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let pids: Vec<String> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        let unshare = self.child.id().to_string();
        let Some(first) = pids
            .iter()
            .find(|p| ppid(p).as_deref() == Some(unshare.as_str()))
        else {
            return Vec::new();
        };
        let inside = namespace(first);
        pids.iter()
            .filter(|p| inside.is_some() && namespace(p) == inside)
            .map(|p| {
                let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                (p.clone(), name.trim().to_string())
            })
            .collect()
    }

    /// Waits (at most 30 s) until a process named `name` runs on the target.
    pub fn wait_for_process(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.processes().iter().any(|(_, n)| n == name) {
            assert!(Instant::now() < deadline, "no {name} on {}", self.name);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `signal` (`STOP`, `KILL`, …) to every process of the target; returns how many.
    pub fn signal_all(&self, signal: &str) -> usize {
        let pids: Vec<String> = self.processes().into_iter().map(|(pid, _)| pid).collect();
        if pids.is_empty() {
            return 0;
        }
        // A process may exit meanwhile: kill still signals the others.
        Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .stderr(Stdio::null())
            .status()
            .expect("kill");
        pids.len()
    }

    /// An INI inventory line for this target.
    pub fn inventory_line(&self) -> String {
        format!(
            "{} ansible_host={} ansible_user=kiln ansible_ssh_private_key_file={}",
            self.name,
            self.address,
            client_key().display()
        )
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(netns) = &self.netns {
            systemd::stop(netns);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A network namespace (with `lo` up), removed with its veth ends on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kn{}-{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run_ip(&["netns", "add", &name]);
        run_ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// Links `self` (at `here`) and `other` (at `there`, None: the test's own namespace)
    /// with a veth pair on one /30.
    pub fn link(&self, here: Ipv4Addr, other: Option<&Netns>, there: Ipv4Addr) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let (a, b) = (format!("kva{tag}"), format!("kvb{tag}"));
        run_ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        run_ip(&["link", "set", &a, "netns", &self.name]);
        run_ip(&[
            "-n",
            &self.name,
            "addr",
            "add",
            &format!("{here}/30"),
            "dev",
            &a,
        ]);
        run_ip(&["-n", &self.name, "link", "set", &a, "up"]);
        let mut side: Vec<&str> = Vec::new();
        if let Some(other) = other {
            run_ip(&["link", "set", &b, "netns", &other.name]);
            side = vec!["-n", &other.name];
        }
        let address = format!("{there}/30");
        run_ip(&[&side[..], &["addr", "add", &address, "dev", &b]].concat());
        run_ip(&[&side[..], &["link", "set", &b, "up"]].concat());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Writes an inventory with the targets under `[group]`.
pub fn inventory(dir: &Path, group: &str, targets: &[&Target]) -> PathBuf {
    let path = dir.join("hosts");
    let mut text = format!("[{group}]\n");
    for t in targets {
        text.push_str(&t.inventory_line());
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write inventory");
    path
}

/// The result of one kiln run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The PLAY RECAP counter for a host, e.g. `recap("web1", "changed")`.
    pub fn recap(&self, host: &str, counter: &str) -> u64 {
        let line = self
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("PLAY RECAP"))
            .find(|l| l.split_whitespace().next() == Some(host))
            .unwrap_or_else(|| {
                panic!(
                    "no recap line for {host} in:\n{}\n{}",
                    self.stdout, self.stderr
                )
            });
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{counter}=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {counter}= in {line}"))
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "kiln failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `kiln playbook` with host key checking off (targets are throwaway).
pub fn playbook(dir: &Path, args: &[&str]) -> Run {
    run_kiln(
        &kiln(),
        dir,
        &[&["playbook"], args].concat(),
        &[("ANSIBLE_HOST_KEY_CHECKING", "false")],
    )
}

pub fn run_kiln(binary: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .args(args)
        .env("HOME", dir)
        .env_remove("ANSIBLE_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run kiln");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A scratch project directory with files written from `(path, content)` pairs.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kiln-project-")
        .tempdir()
        .expect("tempdir");
    for (path, content) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    }
    dir
}

/// Runs `site.yml` of a project made of `files` against `targets` (the group `web`), with
/// `args` before the playbook.
pub fn run_on(
    targets: &[&Target],
    files: &[(&str, &str)],
    args: &[&str],
) -> (tempfile::TempDir, Run) {
    let dir = project(files);
    let inv = inventory(dir.path(), "web", targets);
    let mut all = vec!["-i", inv.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    all.push("site.yml");
    let run = playbook(dir.path(), &all);
    (dir, run)
}

/// Runs one playbook (`site.yml` with this text) against `target` once.
pub fn run_play(target: &Target, site: &str) -> Run {
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[target]);
    playbook(
        dir.path(),
        &["-i", inv.to_str().expect("utf-8 path"), "site.yml"],
    )
}

/// The module test protocol on one fresh target: `--check` first (must report changes when
/// `changes` is true and leave `watched` paths untouched), then a real run (must report
/// changes), then a second run (must report `changed=0`). Returns the real run for
/// assertions on the target's state.
pub fn converge(target: &Target, files: &[(&str, &str)], watched: &str, changes: bool) -> Run {
    converge_with(target, files, watched, changes, &[])
}

/// `converge`, with `args` (say `--diff`) added to every run.
pub fn converge_with(
    target: &Target,
    files: &[(&str, &str)],
    watched: &str,
    changes: bool,
    args: &[&str],
) -> Run {
    let dir = project(files);
    let inv = inventory(dir.path(), "all", &[target]);
    let inv = inv.to_str().expect("utf-8 path");
    let run = |mode: &[&str]| {
        playbook(
            dir.path(),
            &[&["-i", inv], mode, args, &["site.yml"]].concat(),
        )
    };
    let before = target.fingerprint(watched);
    let check = run(&["--check"]);
    check.assert_ok();
    if changes {
        assert!(
            check.recap(&target.name, "changed") > 0,
            "check mode reported no change:\n{}",
            check.stdout
        );
    }
    assert_eq!(
        target.fingerprint(watched),
        before,
        "check mode changed the target:\n{}",
        check.stdout
    );
    let first = run(&[]);
    first.assert_ok();
    if changes {
        assert!(
            first.recap(&target.name, "changed") > 0,
            "first run changed nothing:\n{}",
            first.stdout
        );
    }
    let second = run(&[]);
    second.assert_ok();
    assert_eq!(
        second.recap(&target.name, "changed"),
        0,
        "second run was not idempotent:\n{}",
        second.stdout
    );
    first
}

/// A one-play playbook running `tasks` (YAML text indented for a play) as root.
pub fn play(tasks: &str) -> String {
    format!("- hosts: all\n  become: yes\n  gather_facts: no\n  tasks:\n{tasks}")
}

/// Runs `command` (a shell command line) under a terminal (`script`), types `answer` once
/// `prompt` shows, and returns whether it succeeded and everything the terminal showed.
pub fn answer_on_terminal(dir: &Path, command: &str, prompt: &str, answer: &str) -> (bool, String) {
    use std::io::{Read, Write};
    let mut child = Command::new("script")
        .current_dir(dir)
        .env("HOME", dir)
        .env("ANSIBLE_HOST_KEY_CHECKING", "false")
        .args(["-qec", command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        let n = stdout.read(&mut byte).expect("read the terminal");
        assert_eq!(n, 1, "no prompt: {:?}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{answer}\n").as_bytes())
        .expect("type the answer");
    stdout.read_to_end(&mut seen).expect("read the terminal");
    drop(stdin);
    let ok = child.wait().expect("wait for script").success();
    (ok, String::from_utf8_lossy(&seen).into_owned())
}

/// A kiln run in the background, caught at a line of its output.
pub struct Running {
    pub child: Child,
    /// Its output up to and including the line it was caught at.
    pub seen: String,
    reader: std::thread::JoinHandle<String>,
}

impl Running {
    /// Spawns `command` (stdout piped, stderr discarded) and returns once a line of its
    /// output contains `marker`; the rest keeps being read (a closed pipe must not be what
    /// stops kiln).
    pub fn until(mut command: Command, marker: &str) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kiln");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let marker_owned = marker.to_string();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                all.push_str(&line);
                all.push('\n');
                if line.contains(&marker_owned) {
                    let _ = tx.send(all.clone());
                }
            }
            all
        });
        let seen = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("kiln never printed '{marker}'"));
        Running {
            child,
            seen,
            reader,
        }
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) to kiln.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (at most a minute) for kiln to exit; returns its status and whole output.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "kiln did not stop");
            std::thread::sleep(Duration::from_millis(100));
        };
        (status, self.reader.join().expect("output reader"))
    }
}
