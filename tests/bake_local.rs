//! `kiln bake` with the local builder: the example web image baked from the example playbook
//! on a real systemd-nspawn instance, then booted and serving its page; failures and signals
//! leave nothing behind (no instance, network namespace, cgroup or build directory).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::bake::{images, instance_name, Bake};
use support::{repo, Running, Target};

#[test]
fn bakes_the_example_web_image_that_boots_and_serves_its_page() {
    let bake = Bake::new();
    let spec = bake.spec(&repo().join("playbooks/site.yml").display().to_string(), "");
    let out = bake.command(&spec).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bake.assert_nothing_left(&stdout);

    let images = images(&bake.home());
    assert_eq!(images.len(), 1, "{images:?}");
    let image = &images[0];
    let id = image["id"].as_str().unwrap();
    assert!(stdout.contains(&format!("--> web: local:{id}")), "{stdout}");
    assert_eq!(image["tags"]["Role"], "web");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bake.dir.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["builds"][0]["artifact_id"], format!("local:{id}"));
    assert_eq!(manifest["builds"][0]["builder_type"], "local");
    assert_eq!(
        manifest["last_run_uuid"],
        manifest["builds"][0]["packer_run_uuid"]
    );
    let layer = bake.home().join("images").join(id).join("layer");
    assert!(
        !layer.join("etc/kiln-build").exists(),
        "build key baked into the image"
    );
    assert!(!layer.join("etc/apt/apt.conf.d/00kiln-build").exists());

    // The image boots (its layer over the base) and nginx serves the templated page.
    let lower = format!("{}:/var/cache/kiln-test/bookworm-systemd", layer.display());
    let instance = Target::start_systemd_on("web", &lower);
    let page = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://{}/", instance.address),
        ])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("app hello version 1.0"), "{page}");
    assert_eq!(instance.root("systemctl is-active nginx").trim(), "active");
    assert!(instance
        .root("cat /etc/image-build")
        .contains("built_by: kiln"));

    // `kiln images` lists it.
    let listed = Command::new(support::kiln())
        .arg("images")
        .env("KILN_HOME", bake.home())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let row = listed
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{listed}"));
    assert!(
        row.contains(" UTC (just now)") || row.contains(" minute"),
        "created is a date and an age: {row}"
    );
}

#[test]
fn a_failed_provisioning_leaves_nothing_and_stores_no_image() {
    let bake = Bake::new();
    let playbook = bake.dir.path().join("broken.yml");
    std::fs::write(
        &playbook,
        "- hosts: web\n  gather_facts: no\n  tasks:\n    - copy: {content: x, dest: /etc/x}\n    - fail: msg=broken on purpose\n",
    )
    .unwrap();
    let spec = bake.spec(&playbook.display().to_string(), "");
    let out = bake.command(&spec).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("build failed: provisioning with"),
        "{stderr}"
    );
    assert!(images(&bake.home()).is_empty());
    bake.assert_nothing_left(&String::from_utf8_lossy(&out.stdout));
}

/// A playbook that keeps the build busy for a minute.
fn slow_playbook(bake: &Bake) -> String {
    let path = bake.dir.path().join("slow.yml");
    std::fs::write(
        &path,
        "- hosts: web\n  gather_facts: no\n  tasks:\n    - command: sleep 60\n",
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn sigterm_and_sigint_while_provisioning_unwind_everything() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let bake = Bake::new();
        let spec = bake.spec(&slow_playbook(&bake), "");
        let running = Running::until(bake.command(&spec), "TASK [command]");
        std::thread::sleep(Duration::from_millis(500));
        running.signal(signal);
        let seen = running.seen.clone();
        let (status, output) = running.finish();
        assert_eq!(status.code(), Some(code), "{output}");
        assert!(output.contains("cleanup: tear down instance"), "{output}");
        assert!(images(&bake.home()).is_empty());
        bake.assert_nothing_left(&seen);
    }
}

#[test]
fn spec_errors_name_the_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yml");
    std::fs::write(
        &spec,
        "name: web\nsource:\n  type: local\n  image_nam: x\nprovision:\n  - playbook: site.yml\n",
    )
    .unwrap();
    let out = Command::new(support::kiln())
        .args(["bake"])
        .arg(&spec)
        .env("KILN_HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("bad.yml:4") && stderr.contains("image_nam"),
        "{stderr}"
    );
}

#[test]
fn a_sigkilled_build_leaves_orphans_that_sweep_removes() {
    let bake = Bake::new();
    let spec = bake.spec(&slow_playbook(&bake), "");
    let running = Running::until(bake.command(&spec), "TASK [command]");
    running.signal("KILL");
    let seen = running.seen.clone();
    running.finish();
    let netns = instance_name(&seen);
    assert!(
        Path::new("/run/netns").join(&netns).exists(),
        "the orphan should exist"
    );

    let sweep = |args: &[&str]| {
        let out = Command::new(support::kiln())
            .arg("sweep")
            .args(args)
            .env("KILN_HOME", bake.home())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = sweep(&[]);
    assert!(
        listed.contains(&netns) && listed.contains("--yes"),
        "{listed}"
    );
    assert!(sweep(&["--older-than", "1h"]).contains("nothing to sweep"));
    let removed = sweep(&["--yes"]);
    assert!(removed.contains("removed"), "{removed}");
    bake.assert_nothing_left(&seen);
}

/// The real default: the Debian 12 base kiln builds itself with debootstrap (cached per
/// machine), and packages from the Debian mirror through the build's apt proxy.
#[test]
fn bakes_on_the_debian_base_kiln_builds() {
    let dir = tempfile::Builder::new()
        .prefix("kiln-bake-")
        .tempdir()
        .unwrap();
    let spec = dir.path().join("web.yml");
    std::fs::write(
        &spec,
        format!(
            "name: web\nsource:\n  type: local\n  image_name: web-debian\nprovision:\n  - playbook: {}\n    groups: [web]\n",
            repo().join("playbooks/site.yml").display()
        ),
    )
    .unwrap();
    let home = dir.path().join("home");
    let out = Command::new(support::kiln())
        .arg("bake")
        .arg(&spec)
        .current_dir(repo())
        .env("KILN_HOME", &home)
        .env("KILN_BASE_ROOTFS", "/var/cache/kiln-test/kiln-base")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = &images(&home)[0];
    let layer = home
        .join("images")
        .join(image["id"].as_str().unwrap())
        .join("layer");
    assert!(
        layer.join("usr/sbin/nginx").exists(),
        "nginx is in the image's layer"
    );
    let base = Path::new("/var/cache/kiln-test/kiln-base");
    for root in [layer.as_path(), base] {
        let keys: Vec<_> = std::fs::read_dir(root.join("etc/ssh"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("ssh_host_"))
            .collect();
        assert!(keys.is_empty(), "host keys baked into {}", root.display());
    }
}
