//! SSH password login on a real target whose sshd accepts passwords: `ansible_password`
//! (here an inline `!vault` value, as estates keep it) and `-k` asked on a terminal; the
//! password never in the output, a wrong one an unreachable host with Ansible's words.
//! Become passwords for sudo (`ansible_become_password`, `-K`) and su on a target whose sudo
//! rule asks for one: a missing or wrong one fails the task with Ansible's words.

mod support;

use support::{answer_on_terminal, playbook, project, Target};

const PASSWORD: &str = "pw-for-kiln-user";

fn assert_not_shown(run: &support::Run, password: &str) {
    assert!(
        !run.stdout.contains(password) && !run.stderr.contains(password),
        "the password was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

fn password_inventory(t: &Target, password_line: &str) -> String {
    format!(
        "[all]\n{} ansible_host={} ansible_user=kiln{password_line}\n",
        t.name, t.address
    )
}

#[test]
fn ansible_password_logs_in_and_never_shows() {
    let t = Target::start_with_password_login("t", PASSWORD);
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      register: who\n    - copy: content={{ who.stdout }} dest=/tmp/who\n";
    let dir = project(&[
        ("site.yml", site),
        ("hosts", &password_inventory(&t, "")),
        ("vault-pw", "vault-pw\n"),
    ]);
    let d = dir.path();
    // The password as an inline vault value in host_vars.
    let block = std::process::Command::new(support::kiln())
        .current_dir(d)
        .args([
            "vault",
            "encrypt_string",
            "--vault-password-file",
            "vault-pw",
            "--name",
            "ansible_password",
            PASSWORD,
        ])
        .output()
        .unwrap();
    assert!(block.status.success());
    std::fs::create_dir_all(d.join("host_vars")).unwrap();
    std::fs::write(d.join("host_vars/t.yml"), &block.stdout).unwrap();

    let run = playbook(
        d,
        &[
            "-i",
            "hosts",
            "-vvv",
            "--vault-password-file",
            "vault-pw",
            "site.yml",
        ],
    );
    run.assert_ok();
    assert_eq!(t.root("cat /tmp/who"), "kiln");
    assert_not_shown(&run, PASSWORD);

    std::fs::write(
        d.join("hosts"),
        password_inventory(&t, " ansible_password=wrong"),
    )
    .unwrap();
    std::fs::remove_file(d.join("host_vars/t.yml")).unwrap();
    let wrong = playbook(d, &["-i", "hosts", "site.yml"]);
    assert_ne!(wrong.code, 0);
    assert!(wrong.stdout.contains("UNREACHABLE"), "{}", wrong.stdout);
    assert!(
        wrong.stdout.contains("Invalid/incorrect password"),
        "{}",
        wrong.stdout
    );
}

#[test]
fn ask_pass_prompts_on_the_terminal() {
    let t = Target::start_with_password_login("t", PASSWORD);
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: touch /tmp/asked\n";
    let dir = project(&[("site.yml", site), ("hosts", &password_inventory(&t, ""))]);
    let command = format!(
        "{} playbook -k -i hosts site.yml",
        support::kiln().display()
    );
    let (ok, seen) = answer_on_terminal(dir.path(), &command, "SSH password: ", PASSWORD);
    assert!(ok, "{seen}");
    assert!(!seen.contains(PASSWORD), "the password was echoed: {seen}");
    assert!(t.check("test -e /tmp/asked"));
}

const SUDO_PASSWORD: &str = "sudo-pw-for-ops";
const ROOT_PASSWORD: &str = "root-pw-for-su";

/// A target with a login user `ops` (key login) whose sudo rule asks for its password, and a
/// root password for su.
fn start_with_sudo_password() -> Target {
    let t = Target::start("t");
    t.root(&format!(
        "useradd --create-home --shell /bin/sh ops && echo ops:{SUDO_PASSWORD} | chpasswd && \
         echo root:{ROOT_PASSWORD} | chpasswd && \
         echo 'ops ALL=(ALL) ALL' >/etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops"
    ));
    t
}

fn ops_inventory(t: &Target, extra: &str) -> String {
    format!(
        "[all]\n{} ansible_host={} ansible_user=ops ansible_ssh_private_key_file={}{extra}\n",
        t.name,
        t.address,
        support::client_key().display()
    )
}

/// A become task that writes who it ran as, then a task without become: the second runs
/// when the first failed only if failures are ignored, as in Ansible.
const BECOME_SITE: &str = "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: id -un >/tmp/who-$(id -un)\n      become: yes\n      ignore_errors: yes\n    - command: touch /tmp/after\n";

#[test]
fn sudo_password_from_a_variable_is_answered_missing_or_wrong_fails_the_task() {
    let t = start_with_sudo_password();
    let dir = project(&[("site.yml", BECOME_SITE)]);
    let d = dir.path();
    let hosts = |extra: &str| std::fs::write(d.join("hosts"), ops_inventory(&t, extra)).unwrap();

    hosts(&format!(" ansible_become_password={SUDO_PASSWORD}"));
    let run = playbook(d, &["-i", "hosts", "-vvv", "site.yml"]);
    run.assert_ok();
    assert_eq!(t.root("cat /tmp/who-root"), "root\n");
    assert_not_shown(&run, SUDO_PASSWORD);

    for (extra, words) in [
        ("", "Missing sudo password"),
        (" ansible_become_pass=wrong", "Incorrect sudo password"),
        (" ansible_sudo_pass=wrong", "Incorrect sudo password"),
    ] {
        t.root("rm -f /tmp/after");
        hosts(extra);
        let run = playbook(d, &["-i", "hosts", "site.yml"]);
        assert!(run.stdout.contains(words), "{extra}: {}", run.stdout);
        assert_eq!(run.recap("t", "unreachable"), 0, "{}", run.stdout);
        assert_eq!(run.recap("t", "ignored"), 1, "{}", run.stdout);
        assert!(t.check("test -e /tmp/after"), "the play went on");
    }
}

#[test]
fn ask_become_pass_prompts_on_the_terminal() {
    let t = start_with_sudo_password();
    let dir = project(&[("site.yml", BECOME_SITE), ("hosts", &ops_inventory(&t, ""))]);
    let command = format!(
        "{} playbook -K -i hosts site.yml",
        support::kiln().display()
    );
    let (ok, seen) = answer_on_terminal(dir.path(), &command, "BECOME password: ", SUDO_PASSWORD);
    assert!(ok, "{seen}");
    assert!(
        !seen.contains(SUDO_PASSWORD),
        "the password was echoed: {seen}"
    );
    assert_eq!(t.root("cat /tmp/who-root"), "root\n");
}

#[test]
fn su_with_a_password_runs_as_root_and_a_wrong_one_fails_the_task() {
    let t = start_with_sudo_password();
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: id -un >/tmp/who-$(id -un); printf 'a\\nb' | wc -l\n      become: yes\n      become_method: su\n      register: lines\n      ignore_errors: yes\n    - copy: content={{ lines.stdout | default('none') }} dest=/tmp/lines\n";
    let dir = project(&[("site.yml", site)]);
    let d = dir.path();
    let hosts = |extra: &str| std::fs::write(d.join("hosts"), ops_inventory(&t, extra)).unwrap();
    hosts(&format!(" ansible_become_password={ROOT_PASSWORD}"));
    let run = playbook(d, &["-i", "hosts", "site.yml"]);
    run.assert_ok();
    assert_eq!(t.root("cat /tmp/who-root"), "root\n");
    assert_eq!(
        t.root("cat /tmp/lines"),
        "1",
        "output over the terminal is not mangled"
    );
    hosts(" ansible_become_password=wrong");
    let run = playbook(d, &["-i", "hosts", "site.yml"]);
    assert!(
        run.stdout.contains("Incorrect su password"),
        "{}",
        run.stdout
    );
    assert_eq!(run.recap("t", "unreachable"), 0, "{}", run.stdout);
}
