//! `kiln test`: Molecule scenarios run unchanged on local systemd-nspawn instances. A role
//! that passes; one whose second converge changes a task (the run fails and names it with
//! its file and line); one whose verify fails; two platforms with group and host variables;
//! Ctrl-C and a killed kiln. After each, no instance, network namespace, cgroup or record
//! is left.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run_kiln, Run, Running};

const BASE: &str = "/var/cache/kiln-test/bookworm-systemd";

/// A role directory (`<tmp>/ansible-role-motd`) and a kiln home of its own.
struct RoleUnderTest {
    root: tempfile::TempDir,
}

impl RoleUnderTest {
    fn new(files: &[(&str, &str)]) -> RoleUnderTest {
        // Builds the systemd rootfs the instances boot on first use.
        support::systemd::apt_repo();
        let root = tempfile::Builder::new()
            .prefix("kiln-role-")
            .tempdir()
            .unwrap();
        let role = RoleUnderTest { root };
        for (path, text) in files {
            let full = role.dir().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        role
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("ansible-role-motd")
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(support::kiln());
        command
            .arg("test")
            .args(args)
            .current_dir(self.dir())
            .env("HOME", self.root.path())
            .env_remove("ANSIBLE_CONFIG")
            .env("KILN_HOME", self.home())
            .env("KILN_BASE_ROOTFS", BASE);
        command
    }

    fn kiln(&self, args: &[&str]) -> Run {
        run_kiln(
            &support::kiln(),
            &self.dir(),
            &[&["test"], args].concat(),
            &[
                ("KILN_HOME", &self.home().display().to_string()),
                ("KILN_BASE_ROOTFS", BASE),
            ],
        )
    }

    /// No instance record under the kiln home, and no network namespace or cgroup of any
    /// instance the output names.
    fn assert_nothing_left(&self, output: &str) {
        let names = instance_names(output);
        assert!(!names.is_empty(), "no instance named in:\n{output}");
        assert_gone(&names);
        let left: Vec<_> = std::fs::read_dir(self.home().join("tests"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "test records left: {left:?}");
    }
}

fn assert_gone(names: &[String]) {
    for name in names {
        assert!(
            !Path::new("/run/netns").join(name).exists(),
            "network namespace {name} left"
        );
        for hierarchy in ["unified", "systemd", ""] {
            let cg = Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join("kiln")
                .join(name);
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
    }
}

/// Instance names from `create: PLATFORM (IMAGE from …) as instance NAME at ADDR` lines.
fn instance_names(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.split(" as instance ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

const META: &str = "galaxy_info:\n  role_name: motd\n  namespace: acme\n  author: kiln\n";
const MOLECULE: &str = "dependency: {name: galaxy}\ndriver: {name: docker}\nplatforms:\n  - name: instance\n    image: geerlingguy/docker-debian12-ansible:latest\n    pre_build_image: true\nprovisioner: {name: ansible}\nverifier: {name: ansible}\n";
const TASKS: &str = "- name: write the message of the day\n  copy:\n    dest: /etc/motd\n    content: \"{{ motd_text }}\\n\"\n    mode: '0644'\n- name: add a login banner line\n  lineinfile:\n    path: /etc/issue.net\n    line: \"{{ motd_text }}\"\n    create: true\n";
const DEFAULTS: &str = "motd_text: managed by kiln\n";
/// Reaches the role by its Galaxy name, as a role published as `acme.motd` is tested.
const CONVERGE: &str =
    "- name: Converge\n  hosts: all\n  gather_facts: false\n  roles:\n    - acme.motd\n";
const VERIFY: &str = "- name: Verify\n  hosts: all\n  gather_facts: false\n  tasks:\n    - command: cat /etc/motd /etc/prepared\n      register: motd\n      changed_when: false\n    - assert:\n        that:\n          - \"'managed by kiln' in motd.stdout\"\n          - \"'prepared' in motd.stdout\"\n";
const PREPARE: &str = "- name: Prepare\n  hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {dest: /etc/prepared, content: \"prepared\\n\"}\n";

fn motd_role(extra: &[(&'static str, &'static str)]) -> RoleUnderTest {
    let mut files = vec![
        ("meta/main.yml", META),
        ("defaults/main.yml", DEFAULTS),
        ("tasks/main.yml", TASKS),
        ("molecule/default/molecule.yml", MOLECULE),
        ("molecule/default/converge.yml", CONVERGE),
        ("molecule/default/prepare.yml", PREPARE),
        ("molecule/default/verify.yml", VERIFY),
    ];
    for (path, text) in extra {
        files.retain(|(p, _)| p != path);
        files.push((path, text));
    }
    RoleUnderTest::new(&files)
}

/// The summary's line for a stage (the last, for stages run twice such as destroy).
fn stage_line<'a>(output: &'a str, stage: &str) -> &'a str {
    output
        .lines()
        .rev()
        .find(|l| l.starts_with("    ") && l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no summary line for {stage} in:\n{output}"))
}

#[test]
fn a_passing_role_runs_every_stage_and_leaves_nothing() {
    let role = motd_role(&[]);
    let events = role.root.path().join("events.jsonl");
    let run = role.kiln(&["--json-events", &events.display().to_string()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for stage in [
        "create",
        "prepare",
        "converge",
        "idempotence",
        "verify",
        "destroy",
    ] {
        let line = stage_line(&run.stdout, stage);
        assert!(line.contains("passed"), "{line}\n{}", run.stdout);
    }
    assert!(stage_line(&run.stdout, "dependency").contains("skipped"));
    // The converge output is kiln's own playbook output; the second converge changed nothing.
    assert!(
        run.stdout
            .contains("TASK [motd : write the message of the day]")
            || run
                .stdout
                .contains("TASK [acme.motd : write the message of the day]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("==> default: passed in "),
        "{}",
        run.stdout
    );
    let events = std::fs::read_to_string(&events).unwrap();
    let stages: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "test_stage")
        .collect();
    let idempotence = stages
        .iter()
        .find(|e| e["stage"] == "idempotence")
        .unwrap_or_else(|| panic!("no idempotence event in {events}"));
    assert_eq!(idempotence["outcome"], "passed");
    assert!(events.contains("\"event\":\"host_result\""));
    role.assert_nothing_left(&run.stdout);
}

#[test]
fn a_task_that_changes_on_the_second_converge_fails_the_run_and_is_named() {
    let tasks = "- name: write the message of the day\n  copy:\n    dest: /etc/motd\n    content: \"{{ motd_text }}\\n\"\n- name: stamp the build time\n  command: date\n";
    let role = motd_role(&[("tasks/main.yml", tasks)]);
    let run = role.kiln(&[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        stage_line(&run.stdout, "idempotence").contains("FAILED"),
        "{}",
        run.stdout
    );
    // The changed task, with its host, file and line; the task that converged is not named.
    let failure = run
        .stdout
        .lines()
        .skip_while(|l| !l.contains("idempotence FAILED"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        failure.contains("1 task(s) changed")
            && failure.contains("instance: ")
            && failure.contains("stamp the build time (tasks/main.yml:5)"),
        "{failure}\n{}",
        run.stdout
    );
    assert!(!failure.contains("write the message"), "{failure}");
    assert!(stage_line(&run.stdout, "verify").contains("skipped"));
    assert!(stage_line(&run.stdout, "destroy").contains("passed"));
    assert!(
        run.stdout.contains("FAILED (idempotence)"),
        "{}",
        run.stdout
    );
    role.assert_nothing_left(&run.stdout);
}

#[test]
fn a_failing_verify_fails_the_run() {
    let verify = "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: cat /etc/motd\n      register: motd\n      changed_when: false\n    - assert:\n        that: \"'something else' in motd.stdout\"\n";
    let role = motd_role(&[("molecule/default/verify.yml", verify)]);
    let run = role.kiln(&[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(stage_line(&run.stdout, "idempotence").contains("passed"));
    assert!(stage_line(&run.stdout, "verify").contains("FAILED"));
    assert!(stage_line(&run.stdout, "destroy").contains("passed"));
    assert!(run.stdout.contains("FAILED (verify)"), "{}", run.stdout);
    role.assert_nothing_left(&run.stdout);
}

#[test]
fn two_platforms_get_their_groups_and_variables() {
    let molecule = "driver: {name: docker}\nplatforms:\n  - name: web1\n    image: debian:bookworm\n    groups: [web]\n  - name: db1\n    image: debian:12\n    groups: [db]\nprovisioner:\n  name: ansible\n  env:\n    MOTD_SITE: \"site-of-${MOLECULE_SCENARIO_NAME}\"\n  inventory:\n    group_vars:\n      all: {motd_text: fleet}\n      web: {tier: frontend}\n      db: {tier: storage}\n    host_vars:\n      db1: {motd_text: primary database}\nscenario:\n  test_sequence: [destroy, create, converge, idempotence, verify, destroy]\n";
    // Reaches the role by its directory's name, as Molecule's generated converge.yml does.
    let converge = "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_role:\n        name: \"{{ lookup('env', 'MOLECULE_PROJECT_DIRECTORY') | basename }}\"\n    - copy:\n        dest: /etc/tier\n        content: \"{{ tier }} {{ lookup('env', 'MOTD_SITE') }}\\n\"\n";
    let verify = "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: cat /etc/motd /etc/tier\n      register: out\n      changed_when: false\n    - assert:\n        that:\n          - out.stdout_lines[0] == ('fleet' if inventory_hostname == 'web1' else 'primary database')\n          - out.stdout_lines[1] == ('frontend' if inventory_hostname == 'web1' else 'storage') ~ ' site-of-default'\n";
    let role = motd_role(&[
        ("molecule/default/molecule.yml", molecule),
        ("molecule/default/converge.yml", converge),
        ("molecule/default/verify.yml", verify),
    ]);
    let run = role.kiln(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(instance_names(&run.stdout).len(), 2, "{}", run.stdout);
    assert!(stage_line(&run.stdout, "verify").contains("passed"));
    assert!(run.stdout.contains("ok: [web1]") && run.stdout.contains("ok: [db1]"));
    role.assert_nothing_left(&run.stdout);
}

#[test]
fn ctrl_c_destroys_the_instances() {
    let tasks = "- name: wait a while\n  command: sleep 60\n";
    let role = motd_role(&[("tasks/main.yml", tasks)]);
    let running = Running::until(role.command(&[]), "TASK [");
    std::thread::sleep(std::time::Duration::from_millis(500));
    running.signal("INT");
    let (status, output) = running.finish();
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(output.contains("interrupted: destroying"), "{output}");
    role.assert_nothing_left(&output);
}

#[test]
fn what_a_killed_kiln_or_destroy_never_leaves_is_swept() {
    let role = motd_role(&[]);
    let run = role.kiln(&["--destroy", "never"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let kept = instance_names(&run.stdout);
    assert!(
        Path::new("/run/netns").join(&kept[0]).exists(),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("kept instance"), "{}", run.stdout);

    // A kiln killed mid-converge cannot clean up: the next run of the scenario removes the
    // instance the killed one left, and the earlier kept one, before it creates its own.
    let tasks = "- name: wait a while\n  command: sleep 60\n";
    std::fs::write(role.dir().join("tasks/main.yml"), tasks).unwrap();
    let running = Running::until(role.command(&[]), "TASK [");
    running.signal("KILL");
    let (_, output) = running.finish();
    let killed = instance_names(&output);
    assert!(Path::new("/run/netns").join(&killed[0]).exists());
    assert!(!Path::new("/run/netns").join(&kept[0]).exists());

    let swept = Command::new(support::kiln())
        .args(["sweep", "--yes"])
        .env("KILN_HOME", role.home())
        .output()
        .unwrap();
    let swept = String::from_utf8_lossy(&swept.stdout);
    assert!(swept.contains("local test instance"), "{swept}");
    assert!(swept.contains(&killed[0]), "{swept}");
    role.assert_nothing_left(&output);
}

#[test]
fn an_image_kiln_cannot_make_is_refused_by_name() {
    let molecule = "platforms:\n  - name: instance\n    image: quay.io/centos/centos:stream9\n";
    let role = motd_role(&[("molecule/default/molecule.yml", molecule)]);
    let run = role.kiln(&[]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("quay.io/centos/centos:stream9")
            && run.stderr.contains("--image")
            && run.stderr.contains("debian:12"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let left: Vec<_> = std::fs::read_dir(role.home().join("tests"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // Mapped to the Debian 12 base, the same scenario passes.
    let run = role.kiln(&["--image", "quay.io/centos/centos:stream9=debian:12"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    role.assert_nothing_left(&run.stdout);
}
