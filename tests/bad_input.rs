//! Bad input gets a clear message naming the file, line and what to do; a non-zero exit; no
//! panic; and nothing half-written on the target.

mod support;

use support::{client_key, inventory, playbook, project, run_kiln, Run, Target};

fn no_panic(run: &Run) {
    assert!(
        !run.stderr.contains("panicked"),
        "kiln panicked:\n{}",
        run.stderr
    );
    assert_ne!(
        run.code, 0,
        "expected failure:\n{}\n{}",
        run.stdout, run.stderr
    );
}

fn local(files: &[(&str, &str)]) -> (tempfile::TempDir, Run) {
    let dir = project(files);
    let run = playbook(dir.path(), &["-i", "localhost,", "-c", "local", "site.yml"]);
    no_panic(&run);
    (dir, run)
}

#[test]
fn yaml_syntax_error_names_file_line_and_column() {
    let (_dir, run) = local(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: x\n      debug: msg=hi\n     bad: indent\n",
    )]);
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("site.yml:5:"), "{}", run.stderr);
    assert!(run.stderr.contains("YAML syntax error"), "{}", run.stderr);
}

#[test]
fn unknown_module_suggests_the_closest_name() {
    let (_dir, run) = local(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: x\n      copyy:\n        dest: /tmp/x\n",
    )]);
    assert!(
        run.stderr
            .contains("site.yml:4:7: unknown module 'copyy' (did you mean 'copy'?)"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_task_keyword_is_named() {
    let (_dir, run) = local(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - name: x\n      debug: msg=hi\n      whn: false\n",
    )]);
    assert!(
        run.stderr
            .contains("site.yml:5:7: unknown task keyword 'whn' (did you mean 'when'?)"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_role_lists_the_paths_searched() {
    let (dir, run) = local(&[("site.yml", "- hosts: all\n  roles:\n    - nosuchrole\n")]);
    assert!(
        run.stderr
            .contains("role 'nosuchrole' was not found; searched:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "{}/roles/nosuchrole",
            dir.path().canonicalize().unwrap().display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("site.yml:3:7"), "{}", run.stderr);
}

#[test]
fn role_and_import_cycles_are_errors_not_crashes() {
    let (_dir, run) = local(&[
        ("site.yml", "- hosts: all\n  roles: [a]\n"),
        ("roles/a/meta/main.yml", "dependencies: [b]\n"),
        ("roles/b/meta/main.yml", "dependencies: [a]\n"),
    ]);
    assert!(run.stderr.contains("nest too deeply"), "{}", run.stderr);
    let (_dir, run) = local(&[
        (
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_tasks: loop.yml\n",
        ),
        ("loop.yml", "- import_tasks: loop.yml\n"),
    ]);
    assert!(run.stderr.contains("nest too deeply"), "{}", run.stderr);
}

#[test]
fn wrong_keyword_type_is_rejected_at_load() {
    let (_dir, run) = local(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - debug: msg=hi\n      become: maybe\n",
    )]);
    assert!(
        run.stderr
            .contains("site.yml:4:15: 'become' must be a boolean (yes/no), got 'maybe'"),
        "{}",
        run.stderr
    );
}

/// A project run against one real target; returns the run and the target for inspection.
fn on_target(files: &[(&str, &str)]) -> (Target, tempfile::TempDir, Run) {
    let target = Target::start("t1");
    let dir = project(files);
    let inv = inventory(dir.path(), "all", &[&target]);
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    no_panic(&run);
    (target, dir, run)
}

#[test]
fn undefined_variable_names_the_variable_and_the_task() {
    let (target, _dir, run) = on_target(&[(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: write motd\n      copy:\n        content: \"{{ nosuch_var }}\"\n        dest: /tmp/motd\n",
    )]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("TASK [write motd]"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("Error while resolving value for 'content': 'nosuch_var' is undefined"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("site.yml:4:7"), "{}", run.stdout);
    assert!(!target.check("test -e /tmp/motd"));
}

#[test]
fn template_error_names_the_template_file_and_line() {
    let (target, _dir, run) = on_target(&[
        ("site.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - template: src=page.j2 dest=/tmp/page\n"),
        ("templates/page.j2", "line one\nline two {{ missing_thing }}\n"),
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("templates/page.j2:2"), "{}", run.stdout);
    assert!(
        run.stdout.contains("'missing_thing' is undefined"),
        "{}",
        run.stdout
    );
    assert!(!target.check("test -e /tmp/page"), "nothing half-written");
}

#[test]
fn module_argument_of_the_wrong_type() {
    let (target, _dir, run) = on_target(&[(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        content: hi\n        dest: [a, b]\n    - file:\n        path: /tmp/x\n        state: sideways\n      ignore_errors: yes\n",
    )]);
    assert!(
        run.stdout
            .contains("copy: option 'dest' must be a string, got seq"),
        "{}",
        run.stdout
    );
    assert!(!target.check("ls /a /b"));
    let run2 = {
        let dir = project(&[("site.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - file:\n        path: /tmp/x\n        state: sideways\n    - copy: content=x dest=/tmp/y mode=rwx\n      ignore_errors: true\n")]);
        let inv = inventory(dir.path(), "all", &[&target]);
        playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"])
    };
    assert!(run2.stdout.contains("file: value of state must be one of: absent, directory, file, hard, link, touch, got: sideways"), "{}", run2.stdout);
    assert!(!target.check("test -e /tmp/x"));
}

#[test]
fn unreachable_and_failed_auth_hosts_do_not_stop_the_others() {
    let good = Target::start("good");
    let locked = Target::start("locked");
    let dir = project(&[(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=ok dest=/tmp/done\n",
    )]);
    let wrong_key = dir.path().join("wrong_key");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong_key)
        .status()
        .unwrap()
        .success());
    let inv = dir.path().join("hosts");
    std::fs::write(
        &inv,
        format!(
            "{}\ndead ansible_host=127.254.254.254 ansible_user=kiln ansible_ssh_private_key_file={}\nlocked ansible_host={} ansible_user=kiln ansible_ssh_private_key_file={}\n",
            good.inventory_line(),
            client_key().display(),
            locked.address,
            wrong_key.display()
        ),
    )
    .unwrap();
    let run = playbook(
        dir.path(),
        &["-i", inv.to_str().unwrap(), "--timeout", "5", "site.yml"],
    );
    no_panic(&run);
    assert_eq!(
        run.code, 4,
        "unreachable hosts give exit code 4:\n{}",
        run.stdout
    );
    assert_eq!(run.recap("good", "changed"), 1);
    assert_eq!(run.recap("dead", "unreachable"), 1);
    assert_eq!(run.recap("locked", "unreachable"), 1);
    assert!(
        run.stdout.contains("fatal: [locked]: UNREACHABLE!"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Permission denied (publickey)"),
        "{}",
        run.stdout
    );
    assert!(good.check("grep -q ok /tmp/done"));
    assert!(!locked.check("test -e /tmp/done"));
}

#[test]
fn host_keys_are_verified_and_a_changed_key_is_refused_with_the_fix() {
    let dir = project(&[(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=ok dest=/tmp/done\n",
    )]);
    let rootfs = std::env::var("KILN_TEST_ROOTFS")
        .unwrap_or_else(|_| "/var/cache/kiln-test/bookworm".into());
    let known_key =
        std::fs::read_to_string(format!("{rootfs}/etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let other_key = dir.path().join("other_host_key");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap()
        .success());
    let trusted = Target::start("trusted");
    let impostor = Target::start_with_host_key("impostor", Some(&other_key));
    std::fs::create_dir_all(dir.path().join(".ssh")).unwrap();
    let mut known = String::new();
    for t in [&trusted, &impostor] {
        known.push_str(&format!("{} {}", t.address, known_key));
    }
    std::fs::write(dir.path().join(".ssh/known_hosts"), known).unwrap();
    let inv = inventory(dir.path(), "all", &[&trusted, &impostor]);
    // Host key checking is on by default: no ANSIBLE_HOST_KEY_CHECKING here.
    let run = run_kiln(
        &support::kiln(),
        dir.path(),
        &["playbook", "-i", inv.to_str().unwrap(), "site.yml"],
        &[],
    );
    no_panic(&run);
    assert_eq!(run.recap("trusted", "changed"), 1, "{}", run.stdout);
    assert_eq!(run.recap("impostor", "unreachable"), 1);
    assert!(run.stdout.contains("has CHANGED"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ssh-keygen -f"),
        "the message gives the fix:\n{}",
        run.stdout
    );
    assert!(!impostor.check("test -e /tmp/done"));
}

/// A become method kiln does not implement fails the task with Ansible's words and the
/// methods kiln has, instead of quietly using sudo; the host stays reachable.
#[test]
fn an_unknown_become_method_fails_the_task() {
    let (_target, _dir, run) = on_target(&[(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      become: yes\n      become_method: pbrun\n",
    )]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "Invalid become method specified, could not find matching plugin: 'pbrun' (kiln implements sudo, su, doas)"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(run.recap("t1", "failed"), 1, "{}", run.stdout);
    assert_eq!(run.recap("t1", "unreachable"), 0, "{}", run.stdout);
}
