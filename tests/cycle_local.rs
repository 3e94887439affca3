//! `kiln cycle` on a local fleet behind a real HAProxy: two versions of the example web image
//! are baked (the page shows the version), the fleet is rolled v1 → v2 → v1 while a load
//! generator hammers the frontend — no request may fail, and afterwards every response shows
//! the new version; an image whose web server does not start is rolled back with no failed
//! request; a cycle killed midway converges when run again.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::bake::Bake;
use support::repo;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Fleet {
    bake: Bake,
    port: u16,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            bake: Bake::new(),
            port: free_port(),
        }
    }

    fn spec(&self, image: &str, timeout: &str) -> PathBuf {
        let path = self.bake.dir.path().join("cycle.yml");
        std::fs::write(
            &path,
            format!(
                "name: web\nimage: local:{image}\nfleet: {{type: local, count: 2}}\nbalancer: {{type: haproxy, listen: \"127.0.0.1:{}\", backend: web}}\nstrategy: {{type: rolling, batch: 1, min_healthy_percent: 100}}\nhealth:\n  http: {{path: /, port: 80, expect: 200}}\n  timeout: {timeout}\n  healthy_threshold: 2\ndrain_timeout: 10s\n",
                self.port
            ),
        )
        .unwrap();
        path
    }

    fn kiln(&self, args: &[&str]) -> Output {
        Command::new(support::kiln())
            .args(args)
            .env("KILN_HOME", self.bake.home())
            .output()
            .unwrap()
    }

    fn cycle(&self, image: &str, timeout: &str) -> Output {
        let spec = self.spec(image, timeout);
        self.kiln(&["cycle", spec.to_str().unwrap()])
    }

    /// The version a request through the balancer sees.
    fn version(&self) -> Option<String> {
        get(self.port).ok().and_then(|page| version_of(&page))
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let spec = self.bake.dir.path().join("cycle.yml");
        if spec.exists() {
            let _ = self.kiln(&["fleet", "down", spec.to_str().unwrap()]);
        }
    }
}

fn get(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn version_of(response: &str) -> Option<String> {
    if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
        return None;
    }
    response.split("version ").nth(1).map(|v| {
        v.trim_end_matches(|c: char| !c.is_ascii_digit())
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// Requests answered, the failures (status line or error), the versions seen.
type Tally = (u64, Vec<String>, Vec<String>);

/// Requests through the balancer from four threads until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new((0, Vec::new(), Vec::new())));
        let threads = (0..4)
            .map(|_| {
                let stop = stop.clone();
                let tally = tally.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let result = get(port);
                        let mut t = tally.lock().unwrap();
                        match result.as_deref().ok().and_then(version_of) {
                            Some(v) => {
                                t.0 += 1;
                                if !t.2.contains(&v) {
                                    t.2.push(v);
                                }
                            }
                            None => {
                                let what = match &result {
                                    Ok(r) => r.lines().next().unwrap_or("").to_string(),
                                    Err(e) => e.to_string(),
                                };
                                t.1.push(what);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            tally,
            threads,
        }
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let t = self.tally.lock().unwrap();
        (t.0, t.1.clone(), t.2.clone())
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn site() -> PathBuf {
    repo().join("playbooks/site.yml")
}

/// A playbook that leaves the image's web server stopped and disabled.
fn broken(dir: &Path) -> PathBuf {
    let path = dir.join("broken.yml");
    std::fs::write(
        &path,
        "- hosts: web\n  gather_facts: no\n  tasks:\n    - service: name=nginx state=stopped enabled=no\n",
    )
    .unwrap();
    path
}

#[test]
fn rolls_v1_to_v2_to_v1_under_load_then_rolls_back_a_broken_image() {
    let fleet = Fleet::new();
    let v1 = fleet.bake.bake(&site(), None, &["app_version=1.0"]);
    let v2 = fleet.bake.bake(&site(), None, &["app_version=2.0"]);
    let v3 = fleet.bake.bake(
        &broken(fleet.bake.dir.path()),
        Some(&format!("local:{v2}")),
        &[],
    );

    let out = fleet.cycle(&v1, "60s");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fleet.version().as_deref(), Some("1.0"));

    for (image, version) in [(&v2, "2.0"), (&v1, "1.0")] {
        let load = Load::start(fleet.port);
        std::thread::sleep(Duration::from_millis(300));
        let out = fleet.cycle(image, "60s");
        std::thread::sleep(Duration::from_millis(300));
        let (ok, failed, seen) = load.finish();
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            failed.is_empty(),
            "{} failed requests during the cycle to {version}: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(ok > 100, "too little load: {ok} requests");
        assert!(seen.contains(&version.to_string()), "{seen:?}");
        for _ in 0..20 {
            assert_eq!(
                fleet.version().as_deref(),
                Some(version),
                "after the cycle to {version}"
            );
        }
    }
    // Cycling to the image the fleet already runs changes nothing.
    let spec = fleet.spec(&v1, "60s");
    let summary = fleet.bake.dir.path().join("summary.json");
    let again = fleet.kiln(&[
        "cycle",
        spec.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", text(&again));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["launched"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["retired"], serde_json::json!([]), "{summary}");
    let status = fleet.kiln(&[
        "fleet",
        "status",
        fleet.bake.dir.path().join("cycle.yml").to_str().unwrap(),
    ]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(
        status.matches(&format!("local:{v1}")).count(),
        2,
        "{status}"
    );

    // The broken image never becomes healthy: rolled back, nothing failed, v1 still serves.
    let load = Load::start(fleet.port);
    let out = fleet.cycle(&v3, "8s");
    let (ok, failed, seen) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("rolled back"), "{}", text(&out));
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 0);
    assert_eq!(seen, vec!["1.0".to_string()]);
    let status = fleet.kiln(&[
        "fleet",
        "status",
        fleet.bake.dir.path().join("cycle.yml").to_str().unwrap(),
    ]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(!status.contains(&v3), "broken instances left: {status}");
    assert_eq!(
        status.matches(&format!("local:{v1}")).count(),
        2,
        "{status}"
    );
}

#[test]
fn a_cycle_killed_midway_converges_when_run_again() {
    let fleet = Fleet::new();
    let v1 = fleet.bake.bake(&site(), None, &["app_version=1.0"]);
    let v2 = fleet.bake.bake(&site(), None, &["app_version=2.0"]);
    assert!(fleet.cycle(&v1, "60s").status.success());
    let spec = fleet.spec(&v2, "60s");
    let mut cycle = Command::new(support::kiln());
    cycle
        .args(["cycle", spec.to_str().unwrap()])
        .env("KILN_HOME", fleet.bake.home());
    let running = support::Running::until(cycle, "launched");
    running.signal("KILL");
    running.finish();
    let load = Load::start(fleet.port);
    let out = fleet.cycle(&v2, "60s");
    let (_, failed, _) = load.finish();
    assert!(out.status.success(), "{}", text(&out));
    assert!(failed.is_empty(), "{:?}", &failed[..failed.len().min(5)]);
    let instances = std::fs::read_dir(fleet.bake.home().join("fleets/web/instances"))
        .unwrap()
        .count();
    assert_eq!(instances, 2, "orphaned instances after re-running");
    let status = fleet.kiln(&["fleet", "status", spec.to_str().unwrap()]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(
        status.matches(&format!("local:{v2}")).count(),
        2,
        "{status}"
    );
    assert_eq!(status.matches(" UP ").count(), 2, "{status}");
}
