//! The example web golden-image playbook against real systemd targets: it installs nginx
//! from a real apt repository, serves a templated site (fetched from the host with curl),
//! adds a service user and a cron job; converges again with nothing to change; `--check` on a
//! fresh target touches nothing; and the Vagrant- and Packer-style invocations.

mod support;

use support::{inventory, kiln_playbook, playbook, repo, run_kiln, Target};

fn site_args(inv: &str) -> Vec<String> {
    vec![
        "-i".into(),
        inv.into(),
        repo().join("playbooks/site.yml").display().to_string(),
    ]
}

fn roles_env() -> String {
    repo().join("roles").display().to_string()
}

#[test]
fn site_converges_then_reports_no_changes() {
    let web1 = Target::start_systemd("web1");
    let web2 = Target::start_systemd("web2");
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), "web", &[&web1, &web2]);
    let args = site_args(inv.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("ANSIBLE_HOST_KEY_CHECKING", "false"),
        ("ANSIBLE_ROLES_PATH", roles_env().leak() as &str),
    ];

    let first = run_kiln(
        &support::kiln(),
        dir.path(),
        &[&["playbook"], args.as_slice()].concat(),
        &env,
    );
    first.assert_ok();
    assert!(first.recap("web1", "changed") >= 10, "{}", first.stdout);
    assert_eq!(first.recap("web2", "failed"), 0);
    assert!(
        first
            .stdout
            .contains("RUNNING HANDLER [web : reload web server]"),
        "{}",
        first.stdout
    );

    // The target's real state, read over OpenSSH.
    for t in [&web1, &web2] {
        let motd = t.root("cat /etc/motd");
        assert!(
            motd.contains(&format!("Host: {} (Debian 12", t.name)),
            "{motd}"
        );
        assert!(t
            .root("grep '^PermitRootLogin' /etc/ssh/sshd_config")
            .contains("PermitRootLogin no"));
        assert_eq!(t.root("stat -c '%a %U %G' /srv/www").trim(), "755 root adm");
        assert_eq!(
            t.root("readlink /etc/nginx/sites-enabled/site.conf").trim(),
            "/etc/nginx/sites-available/site.conf"
        );
        assert!(t
            .root("cat /srv/www/site/index.html")
            .contains(&format!("Served by {}, app hello version 1.0", t.name)));
        assert_eq!(t.root("stat -c %a /opt/hello/app.conf").trim(), "640");
        assert_eq!(
            t.root("cat /etc/cron.d/hello-health"),
            "#Ansible: hello health check\n*/5 * * * * hello /opt/hello/healthcheck.sh >/dev/null 2>&1\n"
        );
        assert!(t
            .root("getent passwd hello")
            .ends_with(":/opt/hello:/usr/sbin/nologin\n"));
        assert_eq!(
            t.root("systemctl is-active nginx; systemctl is-enabled nginx"),
            "active\nenabled\n"
        );
        // The templated page, served by the real nginx, fetched from the host.
        let page = std::process::Command::new("curl")
            .args(["-sf", "--max-time", "5", &format!("http://{}/", t.address)])
            .output()
            .expect("curl");
        let page = String::from_utf8_lossy(&page.stdout);
        assert!(
            page.contains(&format!("Served by {}, app hello version 1.0", t.name)),
            "{page}"
        );
        assert!(t.root("cat /etc/image-build").contains("version: 1.0"));
    }

    let second = run_kiln(
        &support::kiln(),
        dir.path(),
        &[&["playbook"], args.as_slice()].concat(),
        &env,
    );
    second.assert_ok();
    for host in ["web1", "web2"] {
        assert_eq!(
            second.recap(host, "changed"),
            0,
            "second run changed something:\n{}",
            second.stdout
        );
        assert_eq!(second.recap(host, "failed"), 0);
    }
    assert!(
        !second.stdout.contains("RUNNING HANDLER"),
        "{}",
        second.stdout
    );
}

#[test]
fn check_mode_reports_changes_and_touches_nothing() {
    let web1 = Target::start_systemd("web1");
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), "web", &[&web1]);
    let watched = "/etc /srv /opt";
    let before = web1.fingerprint(watched);
    let args = site_args(inv.to_str().unwrap());
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--check");
    args.push("--diff");
    let roles = roles_env();
    let run = run_kiln(
        &support::kiln(),
        dir.path(),
        &[&["playbook"], args.as_slice()].concat(),
        &[
            ("ANSIBLE_HOST_KEY_CHECKING", "false"),
            ("ANSIBLE_ROLES_PATH", &roles),
        ],
    );
    // The health check cannot pass before the app is installed: check mode skips commands, and
    // the assert sees a skipped result. Everything before it must report its change.
    assert!(
        run.recap("web1", "changed") >= 8,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("+++ after: /etc/motd"),
        "--diff shows the file diff:\n{}",
        run.stdout
    );
    assert_eq!(
        web1.fingerprint(watched),
        before,
        "check mode changed the target"
    );
    assert!(!web1.check("test -e /opt/hello"));
}

#[test]
fn vagrant_style_invocation() {
    let default = Target::start_systemd("default");
    let dir = tempfile::tempdir().unwrap();
    // Vagrant writes a directory holding one generated inventory file.
    let inv_dir = dir.path().join(".vagrant/provisioners/ansible/inventory");
    std::fs::create_dir_all(&inv_dir).unwrap();
    std::fs::write(
        inv_dir.join("vagrant_ansible_inventory"),
        format!(
            "# Generated by Vagrant\n\ndefault ansible_host={} ansible_port=22 ansible_user='kiln' ansible_ssh_private_key_file='{}'\n\n[web]\ndefault\n",
            default.address,
            support::client_key().display()
        ),
    )
    .unwrap();
    let site = repo().join("playbooks/site.yml");
    let roles = roles_env();
    let run = run_kiln(
        &kiln_playbook(),
        dir.path(),
        &[
            "--connection=ssh",
            "--timeout=30",
            "--limit=default",
            &format!("--inventory-file={}", inv_dir.display()),
            "--extra-vars={\"a\":1}",
            "--become",
            "-v",
            site.to_str().unwrap(),
        ],
        &[
            ("ANSIBLE_HOST_KEY_CHECKING", "false"),
            ("ANSIBLE_SSH_ARGS", "-o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ControlMaster=auto -o ControlPersist=60s"),
            ("ANSIBLE_ROLES_PATH", &roles),
        ],
    );
    run.assert_ok();
    assert!(run.recap("default", "changed") > 0);
    assert!(
        run.stdout.contains("changed: [default] => {"),
        "-v prints results:\n{}",
        run.stdout
    );
    assert!(default.root("cat /etc/motd").contains("Managed by kiln"));
    let _ = playbook;
}

#[test]
fn packer_style_invocation() {
    let default = Target::start_systemd("default");
    let dir = tempfile::tempdir().unwrap();
    // Packer's ansible provisioner writes an inventory file like this one and passes the key
    // with -e, its build variables with -e, and SSH options with --ssh-extra-args.
    let inv = dir.path().join("packer-provisioner-ansible123");
    std::fs::write(
        &inv,
        format!(
            "default ansible_host={} ansible_user=kiln ansible_port=22\n[web]\ndefault\n",
            default.address
        ),
    )
    .unwrap();
    let site = repo().join("playbooks/site.yml");
    let roles = roles_env();
    let key = format!(
        "ansible_ssh_private_key_file={}",
        support::client_key().display()
    );
    let run = run_kiln(
        &kiln_playbook(),
        dir.path(),
        &[
            "-e",
            "packer_build_name=\"web\" packer_builder_type=amazon-ebs packer_http_addr=127.0.0.1:0",
            "--ssh-extra-args",
            "-o IdentitiesOnly=yes",
            "--scp-extra-args",
            "'-O'",
            "-e",
            &key,
            "-i",
            inv.to_str().unwrap(),
            site.to_str().unwrap(),
        ],
        &[
            ("ANSIBLE_HOST_KEY_CHECKING", "False"),
            ("ANSIBLE_ROLES_PATH", &roles),
        ],
    );
    run.assert_ok();
    assert!(run.recap("default", "changed") > 0);
    assert!(default
        .root("cat /etc/image-build")
        .contains("built_by: kiln"));
}
