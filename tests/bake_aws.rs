//! `kiln bake` with the amazon-ebs builder against moto's EC2 server (no AWS account can be
//! reached here; moto answers the same API). moto's instances have no real address, so the
//! build's `ssh_host` points at a real local sshd target, which the playbook provisions.
//! Every failure, injected at each step or by a signal, must leave moto with no instance,
//! key pair, security group or unfinished image; a SIGKILL'd build's orphans are swept.
#![cfg(feature = "aws")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::moto::Moto;
use support::{client_key, Running, Target};

const PLAYBOOK: &str =
    "- hosts: web\n  become: yes\n  gather_facts: no\n  tasks:\n    - copy: {content: \"baked\\n\", dest: /etc/baked}\n";

struct Build {
    dir: tempfile::TempDir,
    moto: Moto,
}

impl Build {
    fn new() -> Build {
        let dir = tempfile::Builder::new()
            .prefix("kiln-ebs-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("play.yml"), PLAYBOOK).unwrap();
        Build {
            dir,
            moto: Moto::start(),
        }
    }

    /// A spec whose build host is `ssh_host:ssh_port`; with `own_key` the test's key is used,
    /// else kiln creates a temporary key pair.
    fn spec(&self, ssh_host: &str, ssh_port: u16, own_key: bool) -> PathBuf {
        let key = if own_key {
            format!("  ssh_private_key_file: {}\n", client_key().display())
        } else {
            String::new()
        };
        let path = self.dir.path().join("ebs.yml");
        std::fs::write(
            &path,
            format!(
                "name: web\nsource:\n  type: amazon-ebs\n  region: us-east-1\n  instance_type: t3.micro\n  source_ami_filter:\n    filters: {{name: \"*ubuntu*\"}}\n    most_recent: true\n  ssh_username: kiln\n  ssh_host: {ssh_host}\n  ssh_port: {ssh_port}\n{key}  ami_name: \"web-{{{{ timestamp }}}}\"\n  tags: {{Name: web, Role: frontend}}\n  run_tags: {{Name: kiln-build}}\nprovision:\n  - playbook: play.yml\n    groups: [web]\npost:\n  manifest: {{output: manifest.json}}\n"
            ),
        )
        .unwrap();
        path
    }

    fn command(&self, spec: &Path, extra_env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(support::kiln());
        command
            .arg("bake")
            .arg(spec)
            .env("KILN_HOME", self.dir.path().join("home"))
            .env("HOME", self.dir.path());
        for (k, v) in self.moto.env() {
            command.env(k, v);
        }
        for (k, v) in extra_env {
            command.env(k, v);
        }
        command
    }

    fn run(&self, spec: &Path, extra_env: &[(&str, &str)]) -> Output {
        self.command(spec, extra_env).output().unwrap()
    }

    fn assert_no_leaks(&self, context: &str) {
        let left = self.moto.resources();
        assert!(left.is_empty(), "{context}: leaked {left:?}");
        let unfinished: Vec<_> = self
            .moto
            .own_images()
            .into_iter()
            .filter(|(_, tags)| tags.iter().any(|(k, v)| k == "kiln:state" && v != "done"))
            .collect();
        assert!(
            unfinished.is_empty(),
            "{context}: unfinished images {unfinished:?}"
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn bakes_an_ami_with_tags_and_a_manifest_and_leaves_nothing_else() {
    let target = Target::start("build");
    let build = Build::new();
    let spec = build.spec(&target.address.to_string(), 22, true);
    let out = build.run(&spec, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        target.root("cat /etc/baked"),
        "baked\n",
        "the playbook ran on the build host"
    );

    let images = build.moto.own_images();
    assert_eq!(images.len(), 1, "{images:?}");
    let (ami, tags) = &images[0];
    for (k, v) in [
        ("Name", "web"),
        ("Role", "frontend"),
        ("kiln:state", "done"),
    ] {
        assert!(
            tags.iter().any(|(tk, tv)| tk == k && tv == v),
            "{k}={v} missing in {tags:?}"
        );
    }
    assert!(tags.iter().any(|(k, _)| k == "kiln:run-id"));
    // The AMI records what it was baked from, for `kiln drift`.
    let playbook = build.dir.path().join("play.yml").canonicalize().unwrap();
    let digest = Command::new("sha256sum").arg(&playbook).output().unwrap();
    let digest = String::from_utf8_lossy(&digest.stdout);
    let digest = digest.split_whitespace().next().unwrap();
    let tag = |key: &str| {
        tags.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} tag in {tags:?}"))
    };
    assert_eq!(tag("kiln:playbook"), playbook.display().to_string());
    assert_eq!(tag("kiln:playbook-sha256"), digest);
    assert_eq!(tag("kiln:extra-vars"), "{}");
    assert_eq!(tag("kiln:groups"), "web");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(build.dir.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    let entry = &manifest["builds"][0];
    assert_eq!(entry["artifact_id"], format!("us-east-1:{ami}"));
    assert_eq!(entry["builder_type"], "amazon-ebs");
    assert_eq!(entry["custom_data"]["Role"], "frontend");
    assert_eq!(entry["custom_data"]["kiln:playbook-sha256"], digest);
    assert_eq!(manifest["last_run_uuid"], entry["packer_run_uuid"]);
    build.assert_no_leaks("after a good build");
}

/// A manifest Packer wrote (with its nulls) is appended to; a manifest that cannot be
/// written fails the build before the AMI is marked done, and the AMI is deregistered.
#[test]
fn appends_to_packers_manifest_and_an_unwritable_manifest_undoes_the_ami() {
    let target = Target::start("build");
    let build = Build::new();
    let spec = build.spec(&target.address.to_string(), 22, true);
    let manifest = build.dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        r#"{"builds": [{"name": "web", "builder_type": "amazon-ebs", "build_time": 1700000000, "files": null, "artifact_id": "us-east-1:ami-packer", "packer_run_uuid": "p1", "custom_data": null}], "last_run_uuid": "p1"}"#,
    )
    .unwrap();
    let out = build.run(&spec, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(written["builds"][0]["artifact_id"], "us-east-1:ami-packer");
    assert_eq!(written["builds"][1]["builder_type"], "amazon-ebs");
    assert_eq!(build.moto.own_images().len(), 1);

    std::fs::write(&manifest, r#"{"builds": "not a list"}"#).unwrap();
    let out = build.run(&spec, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is not a build manifest"),
        "{}",
        text(&out)
    );
    assert_eq!(
        build.moto.own_images().len(),
        1,
        "the second AMI was deregistered: {}",
        text(&out)
    );
    build.assert_no_leaks("after a manifest that cannot be written");
}

#[test]
fn a_failure_at_any_step_leaves_nothing() {
    let target = Target::start("build");
    let build = Build::new();
    // Up to provisioning kiln creates (and must delete) a temporary key pair; the later steps
    // need a key the build host accepts, the test's own.
    let own_key = build.dir.path().join("own-key.yml");
    std::fs::copy(build.spec(&target.address.to_string(), 22, true), &own_key).unwrap();
    let temporary_key = build.spec(&target.address.to_string(), 22, false);
    for (step, spec) in [
        ("key_pair", &temporary_key),
        ("security_group", &temporary_key),
        ("instance", &temporary_key),
        ("ssh", &temporary_key),
        ("provision", &temporary_key),
        ("stop", &own_key),
        ("image", &own_key),
        ("image_available", &own_key),
        ("manifest", &own_key),
    ] {
        let out = build.run(spec, &[("KILN_FAIL_AT", step)]);
        assert_eq!(out.status.code(), Some(1), "{step}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("failure injected at step '{step}'")),
            "{}",
            text(&out)
        );
        build.assert_no_leaks(step);
    }
    // A real failure: moto's key pair is not authorised on the target, so provisioning fails.
    let out = build.run(&temporary_key, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("provisioning with play.yml failed"),
        "{}",
        text(&out)
    );
    build.assert_no_leaks("unreachable build host");
    assert!(build.moto.own_images().is_empty());
}

/// Starts a build that waits for an SSH server that never answers, caught once kiln says
/// it is waiting.
fn waiting_build(build: &Build) -> Running {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = build.spec("127.0.0.1", closed_port, false);
    Running::until(build.command(&spec, &[]), "waiting for SSH")
}

#[test]
fn sigterm_and_sigint_while_waiting_unwind_everything() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let build = Build::new();
        let running = waiting_build(&build);
        assert!(
            !build.moto.resources().is_empty(),
            "the build should hold resources now"
        );
        running.signal(signal);
        let (status, output) = running.finish();
        assert_eq!(status.code(), Some(code), "{output}");
        assert!(output.contains("cleanup: terminate instance"), "{output}");
        build.assert_no_leaks(&format!("SIG{signal}"));
    }
}

#[test]
fn a_sigkilled_build_leaves_tagged_orphans_that_sweep_removes() {
    let build = Build::new();
    let running = waiting_build(&build);
    running.signal("KILL");
    running.finish();
    let left = build.moto.resources();
    assert!(left.iter().any(|r| r.starts_with("instance")), "{left:?}");
    assert!(left.iter().any(|r| r.starts_with("key-pair")), "{left:?}");
    assert!(
        left.iter().any(|r| r.starts_with("security-group")),
        "{left:?}"
    );

    let sweep = |args: &[&str]| {
        let mut command = Command::new(support::kiln());
        command.arg("sweep").arg("--aws").args(args);
        command.env("KILN_HOME", build.dir.path().join("home"));
        for (k, v) in build.moto.env() {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = sweep(&[]);
    for kind in ["aws instance", "aws key pair", "aws security group"] {
        assert!(listed.contains(kind), "{listed}");
    }
    assert!(build.moto.resources().len() >= 3, "listing must not delete");
    sweep(&["--yes"]);
    build.assert_no_leaks("after kiln sweep --aws --yes");
}

#[test]
fn missing_credentials_and_fields_are_named() {
    let build = Build::new();
    let spec = build.spec("127.0.0.1", 22, true);
    let out = Command::new(support::kiln())
        .arg("bake")
        .arg(&spec)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("HOME", build.dir.path())
        .env("KILN_HOME", build.dir.path().join("home"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no AWS credentials found") && stderr.contains("AWS_ACCESS_KEY_ID"),
        "{stderr}"
    );

    std::fs::write(
        &spec,
        "name: web\nsource:\n  type: amazon-ebs\n  source_ami: ami-1\n  ssh_username: u\n  ami_name: x\nprovision: [{playbook: play.yml}]\n",
    )
    .unwrap();
    let out = build.run(&spec, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("source.instance_type is required"),
        "{stderr}"
    );
}
