//! SSH password login on a real target whose sshd accepts passwords: `ansible_password`
//! (here an inline `!vault` value, as estates keep it) and `-k` asked on a terminal; the
//! password never in the output, a wrong one an unreachable host with Ansible's words.

mod support;

use support::{answer_on_terminal, playbook, project, Target};

const PASSWORD: &str = "pw-for-kiln-user";

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
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the password was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );

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
