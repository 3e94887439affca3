//! Packer 1.6's ansible provisioner with `command: kiln-playbook`, as the README's drop-in
//! section shows it: the real `packer` (Debian's 1.6.6, installed by scripts/setup) on its
//! `null` builder pointed at a real sshd target, once through Packer's own SSH proxy (its
//! default) and once connecting to the target directly (`use_proxy: false`).

mod support;

use std::process::Command;

use support::{client_key, kiln_playbook, project, Target};

/// The template the README shows, with the target's address and key filled in.
fn template(target: &Target, use_proxy: bool) -> String {
    serde_json::json!({
        "builders": [{
            "type": "null",
            "communicator": "ssh",
            "ssh_host": target.address.to_string(),
            "ssh_username": "kiln",
            "ssh_private_key_file": client_key().display().to_string(),
        }],
        "provisioners": [{
            "type": "ansible",
            "command": "kiln-playbook",
            "playbook_file": "site.yml",
            "user": "kiln",
            "use_proxy": use_proxy,
            "extra_arguments": ["--become", "-e", "greeting=hello"],
            "ansible_env_vars": ["ANSIBLE_HOST_KEY_CHECKING=False"],
        }],
    })
    .to_string()
}

#[test]
fn packers_ansible_provisioner_runs_kiln_playbook() {
    let target = Target::start("packer");
    let site = "- hosts: all\n  tasks:\n    - copy:\n        dest: /etc/baked-by\n        content: \"{{ greeting }} from {{ packer_build_name }} ({{ packer_builder_type }})\\n\"\n";
    let bin_dir = kiln_playbook()
        .parent()
        .expect("kiln-playbook has a directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (use_proxy, changed) in [(true, "changed=1"), (false, "changed=0")] {
        let dir = project(&[
            ("site.yml", site),
            ("template.json", &template(&target, use_proxy)),
        ]);
        let out = Command::new("packer")
            .args(["build", "-color=false", "template.json"])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("CHECKPOINT_DISABLE", "1")
            .env("PACKER_CACHE_DIR", dir.path().join("cache"))
            .output()
            .expect("run packer (scripts/setup installs Debian's packer)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "packer build (use_proxy={use_proxy}) failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("PLAY RECAP"), "{stdout}");
        assert!(stdout.contains(changed), "{stdout}");
        assert_eq!(
            target.root("cat /etc/baked-by").trim(),
            "hello from null (null)",
            "{stdout}"
        );
    }
}
