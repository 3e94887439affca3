//! ansible-vault on real targets and against the real ansible-vault: playbooks reading
//! vaulted group_vars, vars_files, include_vars, inline `!vault` values and a vaulted copy
//! `src` (fixtures written by ansible-vault itself); wrong passwords failing with the file's
//! name and nothing written; and `kiln vault` and ansible-vault reading each other's output.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{converge_with, inventory, play, playbook, project, repo, run_kiln, Run, Target};

const PASSWORD: &str = "ansible-fixture-pw";
const ANSIBLE_VENV: &str = "/var/cache/kiln-test/ansible-venv/bin";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("src/vault/fixtures").join(name)).expect("fixture")
}

/// The vaulted project: a whole-file vault in group_vars/all/, an inline value beside it, a
/// vaulted vars_files entry, a vaulted include_vars file (a 1.2 vault labelled `prod`) and a
/// vaulted file copied to the target and read by `lookup('file')`, and a vaulted template.
fn vaulted_project_files() -> Vec<(&'static str, String)> {
    let site = r#"- hosts: all
  become: yes
  gather_facts: no
  vars_files:
    - secrets.yml
  vars:
    # Never used, so it needs no password (and it could not be opened with one).
    unused: !vault |
      $ANSIBLE_VAULT;1.1;AES256
      3030
  tasks:
    - include_vars: included.yml
    - file: path=/etc/app state=directory
    - copy:
        content: "{{ group_secret }} {{ db_password }} {{ api_token }} {{ included_secret }} {{ inline }}\n"
        dest: /etc/app/creds
        mode: "0600"
    - copy: src=secret.txt dest=/etc/app/secret.txt mode=0600
    - copy: src=secret.txt dest=/etc/app/still-vaulted mode=0600 decrypt=no
    - template: src=app.conf.j2 dest=/etc/app/app.conf mode=0600
    - copy:
        content: "{{ lookup('file', 'secret.txt') }}"
        dest: /etc/app/looked-up
        mode: "0600"
"#;
    vec![
        ("site.yml", site.to_string()),
        ("group_vars/all/vault.yml", fixture("group-vars.vault")),
        ("group_vars/all/main.yml", fixture("inline.yml")),
        ("secrets.yml", fixture("v11.vault")),
        ("included.yml", fixture("include-vars.vault")),
        ("files/secret.txt", fixture("s16.vault")),
        ("templates/app.conf.j2", fixture("template.vault")),
        ("pw", format!("{PASSWORD}\n")),
        ("wrong", "not-the-password\n".to_string()),
    ]
}

#[test]
fn vaulted_vars_inline_values_and_copy_src_converge() {
    let t = Target::start("t");
    let files = vaulted_project_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    converge_with(
        &t,
        &files,
        "/etc/app",
        true,
        &["--vault-id", "dev@wrong", "--vault-password-file", "pw"],
    );
    assert_eq!(
        t.root("cat /etc/app/creds"),
        "from-group-vars s3cr3t tok en from-include-vars inline value\n"
    );
    assert_eq!(t.root("cat /etc/app/secret.txt"), "exactly sixteen!");
    assert_eq!(t.root("cat /etc/app/app.conf"), "key=from-group-vars\n");
    assert_eq!(t.root("cat /etc/app/looked-up"), "exactly sixteen!");
    assert_eq!(t.root("cat /etc/app/still-vaulted"), fixture("s16.vault"));
}

#[test]
fn the_vault_password_never_shows_and_a_script_can_print_it() {
    let t = Target::start("t");
    let script = format!("#!/bin/sh\necho {PASSWORD}\n");
    let (dir, inv) = vaulted_project(&t, &[("pw-script", &script)]);
    let script_path = dir.path().join("pw-script");
    std::fs::set_permissions(
        &script_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let run = playbook(
        dir.path(),
        &[
            "-i",
            &inv,
            "-vvv",
            "--vault-password-file",
            "pw-script",
            "site.yml",
        ],
    );
    run.assert_ok();
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the vault password was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(t.root("cat /etc/app/secret.txt"), "exactly sixteen!");
}

#[test]
fn the_configured_vault_password_file_is_used() {
    let t = Target::start("t");
    let (dir, inv) = vaulted_project(
        &t,
        &[("ansible.cfg", "[defaults]\nvault_password_file = pw\n")],
    );
    let run = run_kiln(
        &support::kiln(),
        dir.path(),
        &["playbook", "-i", &inv, "site.yml"],
        &[
            ("ANSIBLE_HOST_KEY_CHECKING", "false"),
            (
                "ANSIBLE_CONFIG",
                dir.path().join("ansible.cfg").to_str().unwrap(),
            ),
        ],
    );
    run.assert_ok();
    assert_eq!(t.root("cat /etc/app/secret.txt"), "exactly sixteen!");
}

#[test]
fn a_wrong_password_names_the_file_and_nothing_is_written() {
    let t = Target::start("t");
    let (dir, inv) = vaulted_project(&t, &[]);
    let inv = inv.as_str();

    let wrong = playbook(
        dir.path(),
        &["-i", inv, "--vault-password-file", "wrong", "site.yml"],
    );
    let all = failed_output(&wrong);
    assert!(
        all.contains("Decryption failed")
            && (all.contains("group_vars/all/vault.yml") || all.contains("secrets.yml")),
        "{all}"
    );
    let all = failed_output(&playbook(dir.path(), &["-i", inv, "site.yml"]));
    assert!(all.contains("no vault secrets found"), "{all}");
    assert!(
        !t.check("test -e /etc/app"),
        "a failed decryption wrote something"
    );
    assert_no_plaintext_under(dir.path());

    // An inline value that cannot be opened fails where it is used, naming its line; one
    // that is never used needs no password.
    let inline_only = project(&[
        ("group_vars/all/main.yml", &fixture("inline.yml")),
        (
            "site.yml",
            &play("    - copy: content={{ inline }} dest=/etc/inline mode=0600\n"),
        ),
        ("unused.yml", &play("    - command: 'true'\n")),
        ("wrong", "not-the-password\n"),
    ]);
    let inv = inventory(inline_only.path(), "all", &[&t]);
    let inv = inv.to_str().unwrap();
    let used = playbook(
        inline_only.path(),
        &["-i", inv, "--vault-password-file", "wrong", "site.yml"],
    );
    let all = failed_output(&used);
    assert!(
        all.contains("Decryption failed") && all.contains("group_vars/all/main.yml:2:"),
        "{all}"
    );
    assert!(!t.check("test -e /etc/inline"));
    playbook(inline_only.path(), &["-i", inv, "unused.yml"]).assert_ok();
}

/// The vaulted project with `extra` files, and its inventory of `target`.
fn vaulted_project(target: &Target, extra: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let files = vaulted_project_files();
    let mut files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    files.extend_from_slice(extra);
    let dir = project(&files);
    let inv = inventory(dir.path(), "all", &[target]);
    let inv = inv.to_str().expect("utf-8 path").to_string();
    (dir, inv)
}

/// The output of a run that must have failed.
fn failed_output(run: &Run) -> String {
    assert_ne!(run.code, 0, "the run should have failed:\n{}", run.stdout);
    format!("{}{}", run.stdout, run.stderr)
}

/// No file in the project holds a secret's plaintext (nothing decrypted was left behind).
fn assert_no_plaintext_under(dir: &Path) {
    for entry in walk(dir) {
        let text = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        assert!(
            !text.contains("from-group-vars") && !text.contains("exactly sixteen"),
            "{} holds decrypted text",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn ansible(tool: &str) -> Command {
    let path = Path::new(ANSIBLE_VENV).join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup",
        path.display()
    );
    let mut command = Command::new(path);
    command
        .env_remove("ANSIBLE_CONFIG")
        .env("ANSIBLE_NOCOLOR", "1");
    command
}

fn kiln_vault(dir: &Path, args: &[&str]) -> Output {
    Command::new(support::kiln())
        .current_dir(dir)
        .arg("vault")
        .args(args)
        .env("TMPDIR", dir.join("tmp"))
        .output()
        .expect("run kiln vault")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kiln_vault_and_ansible_vault_read_each_other() {
    let dir = project(&[
        ("pw", "first-pw\n"),
        ("pw2", "second-pw\n"),
        ("plain.yml", "answer: 42\n"),
        ("theirs.yml", "theirs: yes\n"),
        ("tmp/.keep", ""),
    ]);
    let d = dir.path();
    let in_dir = |cmd: &mut Command| -> Output { cmd.current_dir(d).output().expect("run") };

    // kiln encrypts in place (1.2 with a label); ansible-vault views it.
    ok(kiln_vault(
        d,
        &["encrypt", "--vault-id", "prod@pw", "plain.yml"],
    ));
    let text = std::fs::read_to_string(d.join("plain.yml")).unwrap();
    assert!(
        text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"),
        "{text}"
    );
    let viewed = ok(in_dir(ansible("ansible-vault").args([
        "view",
        "--vault-password-file",
        "pw",
        "plain.yml",
    ])));
    assert_eq!(viewed, "answer: 42\n");

    // ansible-vault encrypts; kiln decrypts to stdout and in place.
    ok(in_dir(ansible("ansible-vault").args([
        "encrypt",
        "--vault-password-file",
        "pw",
        "theirs.yml",
    ])));
    assert_eq!(
        ok(kiln_vault(
            d,
            &[
                "decrypt",
                "--vault-password-file",
                "pw",
                "--output",
                "-",
                "theirs.yml"
            ]
        )),
        "theirs: yes\n"
    );
    assert_eq!(
        ok(kiln_vault(
            d,
            &["view", "--vault-password-file", "pw", "theirs.yml"]
        )),
        "theirs: yes\n"
    );
    ok(kiln_vault(
        d,
        &["decrypt", "--vault-password-file", "pw", "theirs.yml"],
    ));
    assert_eq!(
        std::fs::read_to_string(d.join("theirs.yml")).unwrap(),
        "theirs: yes\n"
    );

    // kiln rekeys; ansible-vault needs the new password, and the old one fails.
    ok(kiln_vault(
        d,
        &[
            "rekey",
            "--vault-password-file",
            "pw",
            "--new-vault-id",
            "new@pw2",
            "plain.yml",
        ],
    ));
    assert!(std::fs::read_to_string(d.join("plain.yml"))
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.2;AES256;new\n"));
    assert!(!in_dir(ansible("ansible-vault").args([
        "view",
        "--vault-password-file",
        "pw",
        "plain.yml"
    ]))
    .status
    .success());
    assert_eq!(
        ok(in_dir(ansible("ansible-vault").args([
            "view",
            "--vault-password-file",
            "pw2",
            "plain.yml"
        ]))),
        "answer: 42\n"
    );

    // kiln edits through $EDITOR in a private temporary file that is gone afterwards.
    let editor = d.join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/42/43/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let edited = Command::new(support::kiln())
        .current_dir(d)
        .args(["vault", "edit", "--vault-password-file", "pw2", "plain.yml"])
        .env("EDITOR", &editor)
        .env("TMPDIR", d.join("tmp"))
        .output()
        .unwrap();
    ok(edited);
    assert_eq!(
        ok(in_dir(ansible("ansible-vault").args([
            "view",
            "--vault-password-file",
            "pw2",
            "plain.yml"
        ]))),
        "answer: 43\n"
    );
    let left: Vec<_> = std::fs::read_dir(d.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".keep")
        .collect();
    assert!(left.is_empty(), "edit left {left:?} behind");

    // encrypt_string both ways: kiln's block read by Ansible, Ansible's by kiln.
    let block = ok(kiln_vault(
        d,
        &[
            "encrypt_string",
            "--vault-password-file",
            "pw",
            "--name",
            "token",
            "sesame",
        ],
    ));
    assert!(
        block.starts_with("token: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n"),
        "{block}"
    );
    std::fs::write(d.join("kiln-string.yml"), &block).unwrap();
    let shown = ok(in_dir(ansible("ansible").args([
        "localhost",
        "-c",
        "local",
        "-m",
        "debug",
        "-a",
        "var=token",
        "-e",
        "@kiln-string.yml",
        "--vault-password-file",
        "pw",
    ])));
    assert!(shown.contains("\"token\": \"sesame\""), "{shown}");

    let mut theirs = ansible("ansible-vault");
    theirs.args([
        "encrypt_string",
        "--vault-id",
        "lab@pw",
        "--stdin-name",
        "word",
    ]);
    let theirs = theirs
        .current_dir(d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"open sesame")?;
            child.wait_with_output()
        })
        .unwrap();
    std::fs::write(d.join("their-string.yml"), ok(theirs)).unwrap();
    std::fs::write(
        d.join("show.yml"),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: msg=\"[{{ word }}]\"\n",
    )
    .unwrap();
    let run = run_kiln(
        &support::kiln(),
        d,
        &[
            "playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "@their-string.yml",
            "--vault-id",
            "lab@pw",
            "show.yml",
        ],
        &[],
    );
    run.assert_ok();
    assert!(run.stdout.contains("[open sesame]"), "{}", run.stdout);
}

#[test]
fn kiln_vault_refuses_a_wrong_password_and_writes_nothing() {
    let dir = project(&[
        ("pw", "right\n"),
        ("wrong", "wrong\n"),
        ("f.yml", "x: secret-text\n"),
        ("tmp/.keep", ""),
    ]);
    let d = dir.path();
    ok(kiln_vault(
        d,
        &["encrypt", "--vault-password-file", "pw", "f.yml"],
    ));
    let before = std::fs::read(d.join("f.yml")).unwrap();
    for args in [
        &["decrypt", "--vault-password-file", "wrong", "f.yml"][..],
        &[
            "decrypt",
            "--vault-password-file",
            "wrong",
            "--output",
            "out.yml",
            "f.yml",
        ],
        &["view", "--vault-password-file", "wrong", "f.yml"],
        &[
            "rekey",
            "--vault-password-file",
            "wrong",
            "--new-vault-password-file",
            "pw",
            "f.yml",
        ],
    ] {
        let out = kiln_vault(d, args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Decryption failed") && stderr.contains("f.yml"),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("secret-text"));
    }
    assert_eq!(std::fs::read(d.join("f.yml")).unwrap(), before);
    assert!(!d.join("out.yml").exists());
    let again = kiln_vault(d, &["encrypt", "--vault-password-file", "pw", "f.yml"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already encrypted"));
}

#[test]
fn the_vault_password_is_asked_on_the_terminal_without_echo() {
    let dir = project(&[("f.yml", &fixture("v11.vault"))]);
    let command = format!(
        "{} vault view --ask-vault-pass f.yml",
        support::kiln().display()
    );
    let (ok, seen) =
        support::answer_on_terminal(dir.path(), &command, "Vault password: ", PASSWORD);
    assert!(ok, "{seen}");
    assert!(seen.contains("db_password: s3cr3t"), "{seen}");
    assert!(!seen.contains(PASSWORD), "the password was echoed: {seen}");
}

#[test]
fn the_inventory_lists_inline_values_encrypted_as_ansible_inventory_does() {
    let dir = project(&[
        ("hosts", "[web]\nw1\n"),
        ("group_vars/web/inline.yml", &fixture("inline.yml")),
        ("group_vars/web/vault.yml", &fixture("group-vars.vault")),
        ("pw", &format!("{PASSWORD}\n")),
    ]);
    let run = run_kiln(
        &support::kiln(),
        dir.path(),
        &[
            "inventory",
            "-i",
            "hosts",
            "--host",
            "w1",
            "--vault-password-file",
            "pw",
        ],
        &[],
    );
    run.assert_ok();
    let vars: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(vars["group_secret"], "from-group-vars");
    let ciphertext = vars["inline"]["__ansible_vault"]
        .as_str()
        .unwrap_or_default();
    assert!(
        ciphertext.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("inline value"), "{}", run.stdout);
}

#[test]
fn a_vaulted_script_runs_decrypted() {
    let t = Target::start("t");
    let dir = project(&[
        ("pw", "script-pw\n"),
        (
            "files/mark.sh",
            "#!/bin/sh\necho from-a-vaulted-script > /tmp/marked\n",
        ),
        (
            "site.yml",
            &play("    - script: mark.sh creates=/tmp/marked\n"),
        ),
    ]);
    let d = dir.path();
    ok(kiln_vault(
        d,
        &["encrypt", "--vault-password-file", "pw", "files/mark.sh"],
    ));
    let inv = inventory(d, "all", &[&t]);
    let inv = inv.to_str().unwrap();
    playbook(d, &["-i", inv, "--vault-password-file", "pw", "site.yml"]).assert_ok();
    assert_eq!(t.root("cat /tmp/marked"), "from-a-vaulted-script\n");
}
