//! Vagrant 2.3's ansible provisioner with `playbook_command = "kiln-playbook"` on Vagrant's
//! docker provider, as the README's drop-in section shows it: the real `vagrant` and
//! `dockerd` (Debian's, installed by scripts/setup), driven by
//! tests/support/dropin-vagrant.sh, which starts a private dockerd and removes everything
//! it started. `vagrant up` provisions (changed), `vagrant provision` changes nothing.

mod support;

use std::process::Command;

use support::{kiln_playbook, repo};

#[test]
fn vagrants_ansible_provisioner_runs_kiln_playbook() {
    let work = tempfile::Builder::new()
        .prefix("kiln-vagrant-")
        .tempdir()
        .expect("tempdir");
    let bin_dir = kiln_playbook()
        .parent()
        .expect("kiln-playbook has a directory")
        .to_path_buf();
    let out = Command::new(repo().join("tests/support/dropin-vagrant.sh"))
        .arg(&bin_dir)
        .arg(work.path())
        .output()
        .expect("run tests/support/dropin-vagrant.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let (up, provision) = stdout
        .split_once("== vagrant provision")
        .expect("both vagrant runs");
    assert!(up.contains("Running ansible-playbook"), "{stdout}");
    assert!(up.contains("changed: [default]"), "{stdout}");
    assert!(up.contains("ok=2    changed=1"), "{stdout}");
    assert!(provision.contains("ok=2    changed=0"), "{stdout}");
    assert!(
        provision.contains("kiln-playbook for default"),
        "the box was provisioned: {stdout}"
    );
}
