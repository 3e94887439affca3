//! ansible-playbook's command-line manners that tools rely on: `--version`'s layout (Packer,
//! Vagrant and Molecule parse it), Ansible 1.x's `--sudo` flags (Vagrant's 1.8 mode), the
//! `--list-tasks` layout and the exit code for a missing playbook.

mod support;

use support::{inventory, kiln, kiln_playbook, playbook, project, run_kiln, Target};

#[test]
fn version_prints_the_ansible_core_release_kiln_follows() {
    let dir = project(&[]);
    for (binary, args, first) in [
        (
            kiln_playbook(),
            &["--version"][..],
            "kiln-playbook [core 2.19.0]",
        ),
        (
            kiln(),
            &["playbook", "--version"][..],
            "kiln playbook [core 2.19.0]",
        ),
    ] {
        let run = run_kiln(&binary, dir.path(), args, &[]);
        run.assert_ok();
        let mut lines = run.stdout.lines();
        assert_eq!(lines.next(), Some(first), "{}", run.stdout);
        assert!(
            run.stdout.contains("\n  config file = None\n"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("\n  kiln version = "), "{}", run.stdout);
    }
}

#[test]
fn legacy_sudo_flags_become_root() {
    let t = Target::start("t");
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      register: who\n    - assert: {that: \"who.stdout == 'root'\"}\n";
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    playbook(dir.path(), &["-i", inv, "--sudo", "site.yml"]).assert_ok();
    playbook(dir.path(), &["-i", inv, "-s", "-U", "root", "site.yml"]).assert_ok();
    let without = playbook(dir.path(), &["-i", inv, "site.yml"]);
    assert_eq!(without.code, 2, "{}", without.stdout);
    let asked = playbook(dir.path(), &["-i", inv, "--ask-sudo-pass", "site.yml"]);
    assert_eq!(asked.code, 5, "{}", asked.stderr);
}

#[test]
fn a_missing_playbook_exits_1_with_ansibles_words() {
    let dir = project(&[]);
    let run = playbook(dir.path(), &["-i", "localhost,", "nope.yml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the playbook: nope.yml could not be found"),
        "{}",
        run.stderr
    );
}

#[test]
fn list_tasks_shows_play_tags_and_sorted_task_tags() {
    let site = "- hosts: all\n  name: web\n  tags: [web]\n  gather_facts: no\n  tasks:\n    - name: one\n      debug: msg=x\n      tags: [zeta, alpha]\n";
    let dir = project(&[("site.yml", site)]);
    let run = playbook(
        dir.path(),
        &[
            "-i",
            "localhost,",
            "--list-tasks",
            "--list-tags",
            "site.yml",
        ],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("  play #1 (all): web\tTAGS: [web]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("      one\tTAGS: [alpha, web, zeta]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("      TASK TAGS: [alpha, web, zeta]\n"),
        "{}",
        run.stdout
    );
}
