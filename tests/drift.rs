//! `kiln drift` on real targets: two converged hosts, one edited by hand, are checked in
//! check mode — the edited host and task are named with their diff, exit 2, and neither
//! target changes (contents and modification times); converged again, exit 0; an
//! unreachable host is reported as unreachable (exit 1), not as drift. Then a local fleet:
//! an image baked with its provenance, an instance of it edited by hand and checked against
//! what the image was baked from.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::bake::Bake;
use support::{inventory, playbook, project, repo, run_kiln, Run, Target};

const SITE: &str = r#"- hosts: all
  become: yes
  gather_facts: no
  tasks:
    - name: app directory
      file: path=/etc/app state=directory mode=0755
    - name: motd
      copy:
        content: "welcome to {{ inventory_hostname }}\n"
        dest: /etc/app/motd
        mode: "0644"
    - name: limits
      lineinfile: path=/etc/app/limits.conf line="nofile 4096" create=yes
"#;

/// Contents, modes and modification times under /etc/app, to prove nothing was touched.
fn state(target: &Target) -> String {
    target.root(
        "find /etc/app -printf '%p %m %s %T@\\n' | sort; cat /etc/app/motd /etc/app/limits.conf",
    )
}

fn drift(dir: &Path, args: &[&str]) -> Run {
    run_kiln(
        &support::kiln(),
        dir,
        &[&["drift"], args].concat(),
        &[("ANSIBLE_HOST_KEY_CHECKING", "false")],
    )
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("drift.json")).unwrap()).unwrap()
}

#[test]
fn names_the_drifted_host_and_task_changes_nothing_and_exits_0_once_converged() {
    let (web1, web2) = (Target::start("web1"), Target::start("web2"));
    let dir = project(&[("site.yml", SITE)]);
    let inv = inventory(dir.path(), "web", &[&web1, &web2]);
    let inv = inv.to_str().unwrap();
    playbook(dir.path(), &["-i", inv, "site.yml"]).assert_ok();

    let converged = drift(dir.path(), &["-i", inv, "site.yml", "--json", "drift.json"]);
    assert_eq!(
        converged.code, 0,
        "{}\n{}",
        converged.stdout, converged.stderr
    );
    assert_eq!(report(dir.path())["hosts"]["web1"]["state"], "in_sync");

    web2.root("printf 'hacked by hand\\n' > /etc/app/motd");
    let before = (state(&web1), state(&web2));
    let run = drift(dir.path(), &["-i", inv, "site.yml", "--json", "drift.json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        (state(&web1), state(&web2)),
        before,
        "drift changed a target"
    );

    let table_row = |host: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(host))
            .unwrap_or_else(|| panic!("no row for {host}:\n{}", run.stdout))
            .to_string()
    };
    assert!(table_row("web2").contains("drifted"), "{}", run.stdout);
    assert!(table_row("web2").contains("motd"), "{}", run.stdout);
    assert!(table_row("web1").contains("in sync"), "{}", run.stdout);
    assert!(run.stdout.contains("-hacked by hand"), "{}", run.stdout);

    let json = report(dir.path());
    assert_eq!(json["exit_code"], 2);
    assert_eq!(json["hosts"]["web1"]["state"], "in_sync");
    assert_eq!(json["hosts"]["web2"]["state"], "drifted");
    let changes = json["hosts"]["web2"]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{json:#}");
    assert_eq!(changes[0]["task"], "motd");
    assert_eq!(changes[0]["action"], "copy");
    let diff = changes[0]["diff"][0].as_str().unwrap();
    assert!(diff.contains("-hacked by hand\n+welcome to web2"), "{diff}");

    // --limit checks only the hosts it names.
    let limited = drift(dir.path(), &["-i", inv, "site.yml", "--limit", "web1"]);
    assert_eq!(limited.code, 0, "{}\n{}", limited.stdout, limited.stderr);

    playbook(dir.path(), &["-i", inv, "site.yml"]).assert_ok();
    let again = drift(dir.path(), &["-i", inv, "site.yml", "--json", "-"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    let json: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(json["in_sync"], 2, "{json:#}");
}

#[test]
fn an_unreachable_host_is_reported_as_unreachable_not_as_drift() {
    let web1 = Target::start("web1");
    let dir = project(&[("site.yml", SITE)]);
    let inv = inventory(dir.path(), "web", &[&web1]);
    playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]).assert_ok();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        format!("{text}gone ansible_host=127.0.0.1 ansible_port={port} ansible_user=kiln\n"),
    )
    .unwrap();

    let run = drift(
        dir.path(),
        &[
            "-i",
            inv.to_str().unwrap(),
            "site.yml",
            "--json",
            "drift.json",
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let json = report(dir.path());
    assert_eq!(json["hosts"]["gone"]["state"], "unreachable", "{json:#}");
    assert_eq!(json["hosts"]["gone"]["changes"], serde_json::json!([]));
    assert_eq!(json["hosts"]["web1"]["state"], "in_sync");
    assert_eq!(
        (json["drifted"].as_u64(), json["unreachable"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(run.stdout.contains("unreachable"), "{}", run.stdout);
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A web image (nginx from the test apt repository, a page) with SSH access for the test key
/// (the test rootfs's sshd reads keys from /etc/kiln), and a record of the build that a test
/// edits by hand.
fn fleet_playbook(dir: &Path) -> std::path::PathBuf {
    let public = std::fs::read_to_string(support::client_key().with_extension("pub")).unwrap();
    let path = dir.join("fleet-site.yml");
    std::fs::write(
        &path,
        format!(
            r#"- hosts: web
  gather_facts: no
  tasks:
    - name: web server
      apt: name=nginx state=present update_cache=yes cache_valid_time=3600
    - name: page
      copy:
        content: "app {{{{ app_version }}}}\n"
        dest: /var/www/html/index.html
        mode: "0644"
    - name: operator directory
      file: path=/etc/kiln state=directory mode=0755
    - name: operator access
      copy:
        content: "{}\n"
        dest: /etc/kiln/authorized_keys
        mode: "0644"
    - name: Record the image build
      copy:
        content: "built by kiln\n"
        dest: /etc/image-build
        mode: "0644"
"#,
            public.trim()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_local_fleet_is_checked_against_the_playbook_its_image_was_baked_from() {
    let bake = Bake::new();
    let playbook = fleet_playbook(bake.dir.path());
    let image = bake.bake(&playbook, None, &["app_version=1.0"]);

    // The bake recorded its provenance in the image store and the manifest.
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bake.home().join("images").join(&image).join("image.json"))
            .unwrap(),
    )
    .unwrap();
    let step = &stored["provenance"]["steps"][0];
    assert_eq!(
        step["playbook"],
        playbook.canonicalize().unwrap().display().to_string()
    );
    let digest = Command::new("sha256sum").arg(&playbook).output().unwrap();
    let digest = String::from_utf8_lossy(&digest.stdout);
    assert_eq!(step["sha256"], digest.split_whitespace().next().unwrap());
    assert_eq!(step["extra_vars"]["app_version"], "1.0");
    assert_eq!(step["groups"], serde_json::json!(["web"]));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bake.dir.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    let custom = &manifest["builds"][0]["custom_data"];
    assert_eq!(custom["kiln:playbook-sha256"], step["sha256"]);
    assert_eq!(custom["kiln:extra-vars"], r#"{"app_version":"1.0"}"#);

    let spec = bake.dir.path().join("fleet.yml");
    std::fs::write(
        &spec,
        format!(
            "name: web\nimage: local:{image}\nfleet: {{type: local, count: 1}}\nbalancer: {{type: haproxy, listen: \"127.0.0.1:{}\", backend: web}}\nhealth:\n  http: {{path: /, port: 80, expect: 200}}\n  timeout: 60s\ndrain_timeout: 5s\n",
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        ),
    )
    .unwrap();
    let kiln = |args: &[&str]| {
        Command::new(support::kiln())
            .args(args)
            .env("KILN_HOME", bake.home())
            .env("ANSIBLE_HOST_KEY_CHECKING", "false")
            .env_remove("ANSIBLE_CONFIG")
            .current_dir(repo())
            .output()
            .unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Output, &'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            (self.0)(&["fleet", "down", self.1.to_str().unwrap()]);
        }
    }
    let cycled = kiln(&["cycle", spec.to_str().unwrap()]);
    let _down = Down(&kiln, &spec);
    assert!(cycled.status.success(), "{}", text(&cycled));
    let member: serde_json::Value = {
        let dir = bake.home().join("fleets/web/instances");
        let entry = std::fs::read_dir(&dir).unwrap().flatten().next().unwrap();
        serde_json::from_str(&std::fs::read_to_string(entry.path().join("member.json")).unwrap())
            .unwrap()
    };
    let (id, address) = (
        member["id"].as_str().unwrap(),
        member["address"].as_str().unwrap(),
    );
    let key = support::client_key().to_str().unwrap();
    let drift = |extra: &[&str]| {
        kiln(
            &[
                &[
                    "drift",
                    spec.to_str().unwrap(),
                    "-u",
                    "root",
                    "--private-key",
                    key,
                ][..],
                extra,
            ]
            .concat(),
        )
    };

    let clean = drift(&[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains(id),
        "{}",
        text(&clean)
    );

    let ssh = Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-i",
            key,
        ])
        .arg(format!("root@{address}"))
        .arg("echo edited by hand > /etc/image-build")
        .output()
        .unwrap();
    assert!(ssh.status.success(), "{}", text(&ssh));
    let drifted = drift(&[]);
    let out = String::from_utf8_lossy(&drifted.stdout);
    assert_eq!(drifted.status.code(), Some(2), "{}", text(&drifted));
    let row = out
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{out}"));
    assert!(
        row.contains("drifted") && row.contains("Record the image build"),
        "{out}"
    );

    // A playbook edited since the bake: refused (exit 1) unless the current file is accepted.
    let text_now = std::fs::read_to_string(&playbook).unwrap();
    std::fs::write(&playbook, format!("{text_now}# edited after the bake\n")).unwrap();
    let refused = drift(&[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("changed since image"),
        "{}",
        text(&refused)
    );
    let accepted = drift(&["--allow-playbook-change"]);
    assert_eq!(accepted.status.code(), Some(2), "{}", text(&accepted));
    assert!(text(&accepted).contains("checking against the current file"));
}

/// An EC2 fleet against moto: the instance is found by kiln's fleet tag and checked against
/// the provenance its AMI's tags carry from an amazon-ebs bake. moto's instances have no
/// real address, so the check itself ends unreachable; a playbook edited since the bake is
/// refused before any connection.
#[cfg(feature = "aws")]
#[test]
fn an_ec2_fleet_is_checked_against_the_provenance_its_ami_tags_carry() {
    let moto = support::moto::Moto::start();
    let build_host = Target::start("build");
    let dir = project(&[(
        "play.yml",
        "- hosts: web\n  become: yes\n  gather_facts: no\n  tasks:\n    - name: baked\n      copy: {content: \"baked\\n\", dest: /etc/baked}\n",
    )]);
    std::fs::write(
        dir.path().join("ebs.yml"),
        format!(
            "name: web\nsource:\n  type: amazon-ebs\n  region: us-east-1\n  instance_type: t3.micro\n  source_ami_filter:\n    filters: {{name: \"*ubuntu*\"}}\n    most_recent: true\n  ssh_username: kiln\n  ssh_host: {}\n  ssh_private_key_file: {}\n  ami_name: web\nprovision:\n  - playbook: play.yml\n    groups: [web]\npost:\n  manifest: {{output: manifest.json}}\n",
            build_host.address,
            support::client_key().display()
        ),
    )
    .unwrap();
    let kiln = |args: &[&str]| {
        let mut command = Command::new(support::kiln());
        command
            .args(args)
            .current_dir(dir.path())
            .env("KILN_HOME", dir.path().join("home"))
            .env("HOME", dir.path())
            .env("ANSIBLE_HOST_KEY_CHECKING", "false");
        for (k, v) in moto.env() {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let baked = kiln(&["bake", "ebs.yml"]);
    assert!(baked.status.success(), "{}", text(&baked));
    let (ami, _) = moto.own_images().into_iter().next().unwrap();
    let instance = moto.launch_fleet_instance(&ami, "web");
    std::fs::write(
        dir.path().join("fleet.yml"),
        "name: web\nfleet: {type: ec2, count: 1, instance_type: t3.micro}\nbalancer: {type: elbv2, target_group_arn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0\"}\n",
    )
    .unwrap();
    let drift = || {
        let out = kiln(&["drift", "fleet.yml", "-T", "2", "--json", "drift.json"]);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("drift.json")).unwrap())
                .unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (out, json)
    };

    let (out, json) = drift();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let host = &json["hosts"][&instance];
    assert_eq!(host["state"], "unreachable", "{json:#}");
    assert_eq!(host["problems"][0]["task"], "baked", "{json:#}");

    std::fs::write(dir.path().join("play.yml"), "- hosts: web\n  tasks: []\n").unwrap();
    let (out, json) = drift();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let host = &json["hosts"][&instance];
    assert_eq!(host["state"], "failed", "{json:#}");
    let msg = host["problems"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("changed since image"), "{msg}");
}
