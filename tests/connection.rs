//! The connection under attack and failure, against real targets: another user of the
//! target trying to forge results, targets that die or stop answering mid-transfer, a
//! controller killed mid-run, revoked host keys.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{inventory, play, project, run_kiln, shell_quote, Running, Target};

/// What an unprivileged user on the target does: every 50 ms, collect every name visible in
/// /tmp and in every process's arguments, and write a file of forged frame ends (the
/// session's framing: "\n<nonce> 1\n" then "\n<nonce> 2 <rc>\n") for each of them and each
/// of their suffixes after a '-'.
const FORGER: &str = r#"cd /home/eve || exit 1
end=$(( $(date +%s) + 120 ))
: >seen
while [ "$(date +%s)" -lt "$end" ]; do
  { ls -a /tmp; cat /proc/[0-9]*/cmdline; } 2>/dev/null | tr -c 'A-Za-z0-9_-' '\n' \
    | grep -E '^.{8,}$' | sort -u - seen >seen.new
  mv seen.new seen
  while read -r t; do
    while :; do
      printf '\n%s 1\n\n%s 2 0\n' "$t" "$t"
      case $t in *-*) t=${t#*-} ;; *) break ;; esac
    done
  done <seen >forged.new
  mv forged.new forged
  sleep 0.05
done
"#;

#[test]
fn a_file_another_user_wrote_cannot_forge_results() {
    let target = Target::start("web1");
    target.root(&format!(
        "useradd -m -s /bin/sh eve && printf '%s' {} >/home/eve/forge.sh",
        shell_quote(FORGER)
    ));
    target.root(
        "sudo -u eve setsid sh /home/eve/forge.sh </dev/null >/dev/null 2>&1 & \
         while [ ! -s /home/eve/forged ]; do sleep 0.05; done",
    );
    let payload = "x".repeat(4 << 20);
    let site = play(
        "    - copy: src=payload dest=/root/payload\n\
         \x20     diff: no\n\
         \x20   - command: sleep 1\n\
         \x20   - command: cat /home/eve/forged\n\
         \x20     register: by_command\n\
         \x20   - lineinfile: path=/home/eve/forged line=never\n\
         \x20     check_mode: yes\n\
         \x20   - copy: content=replaced dest=/home/eve/forged\n\
         \x20     check_mode: yes\n\
         \x20   - command: /bin/false\n\
         \x20     register: failing\n\
         \x20     ignore_errors: yes\n\
         \x20   - command: echo after\n\
         \x20     register: after\n\
         \x20   - assert:\n\
         \x20       that:\n\
         \x20         - \"' 2 0' in by_command.stdout\"\n\
         \x20         - failing is failed\n\
         \x20         - failing.rc == 1\n\
         \x20         - after.stdout == 'after'\n",
    );
    let dir = project(&[("site.yml", &site), ("payload", &payload)]);
    let inv = inventory(dir.path(), "all", &[&target]);
    let run = support::playbook(
        dir.path(),
        &["-i", inv.to_str().unwrap(), "--diff", "site.yml"],
    );
    let seen = target.root("cat /home/eve/seen");
    assert!(
        seen.lines().any(|name| name.starts_with("kiln-")),
        "the forger saw the session's names in /tmp:\n{seen}"
    );
    run.assert_ok();
    assert_eq!(run.recap("web1", "failed"), 0, "{}", run.stdout);
    assert_eq!(run.recap("web1", "ignored"), 1, "{}", run.stdout);
    assert!(run.stdout.contains("TASK [assert]"), "{}", run.stdout);
}

/// kiln running `site` on `targets` in the background (host key checking off, with
/// `ssh_args`), caught once it prints `marker`.
fn kiln_until(dir: &Path, targets: &[&Target], ssh_args: &str, marker: &str) -> (Running, Instant) {
    let inv = inventory(dir, "all", targets);
    let mut command = Command::new(support::kiln());
    command
        .current_dir(dir)
        .args(["playbook", "-i", inv.to_str().unwrap(), "site.yml"])
        .env("HOME", dir)
        .env_remove("ANSIBLE_CONFIG")
        .env("ANSIBLE_HOST_KEY_CHECKING", "false")
        .env("ANSIBLE_SSH_ARGS", ssh_args);
    let started = Instant::now();
    (Running::until(command, marker), started)
}

/// A project that copies a 50 MB file as root to every host, then runs one more task.
fn large_copy() -> tempfile::TempDir {
    let dir = project(&[(
        "site.yml",
        &play(
            "    - copy: src=large dest=/root/large\n\
             \x20   - command: echo next\n",
        ),
    )]);
    std::fs::write(dir.path().join("large"), vec![b'k'; 50 << 20]).unwrap();
    dir
}

/// Two hosts copy a large file; `fail` does something to the second one mid-transfer.
/// kiln must end in bounded time, the first host ok, the second unreachable, exit code 4.
fn one_host_fails_mid_copy(ssh_args: &str, fail: impl FnOnce(&Target)) {
    let good = Target::start("good");
    let lost = Target::start("lost");
    let dir = large_copy();
    let (running, started) = kiln_until(dir.path(), &[&good, &lost], ssh_args, "TASK [copy]");
    // The upload is under way once the session's shell copies its stdin (`dd`).
    lost.wait_for_process("dd");
    assert!(lost.signal_all("STOP") > 3);
    fail(&lost);
    let deadline = started + Duration::from_secs(60);
    let mut running = running;
    let status = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = running.child.kill();
            panic!("kiln still runs a minute after a target was lost");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, output) = running.finish();
    let recap = |host: &str, counter: &str| {
        support::Run {
            code: 0,
            stdout: output.clone(),
            stderr: String::new(),
        }
        .recap(host, counter)
    };
    assert_eq!(status.code(), Some(4), "{output}");
    assert_eq!(recap("lost", "unreachable"), 1, "{output}");
    assert_eq!(recap("good", "unreachable"), 0, "{output}");
    assert_eq!(recap("good", "failed"), 0, "{output}");
    assert_eq!(recap("good", "ok"), 2, "{output}");
    assert_eq!(good.root("stat -c %s /root/large").trim(), "52428800");
}

#[test]
fn a_target_killed_mid_copy_is_unreachable_and_the_run_ends() {
    // The transfer is stuck first (the server stops reading), then every process of the
    // target dies: kiln is waiting to write when the connection goes away.
    one_host_fails_mid_copy("", |lost| {
        std::thread::sleep(Duration::from_secs(1));
        lost.signal_all("KILL");
    });
}

#[test]
fn a_target_that_stops_answering_mid_copy_is_unreachable_after_the_keepalives() {
    // No FIN, no RST: only keepalives can tell.
    one_host_fails_mid_copy("-o ServerAliveInterval=1 -o ServerAliveCountMax=2", |_| {});
}

/// Whatever kiln left under /tmp on the target, after waiting up to 15 s for it to go.
fn left_in_tmp(target: &Target) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = target.root("ls -A /tmp | grep kiln || true");
        if left.trim().is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_killed_controller_leaves_nothing_in_tmp() {
    let target = Target::start("web1");
    // Mid-upload: kiln dies while the shell copies its stdin to the session's file.
    let dir = large_copy();
    let (running, _) = kiln_until(dir.path(), &[&target], "", "TASK [copy]");
    target.wait_for_process("dd");
    running.signal("KILL");
    let _ = running.finish();
    assert_eq!(left_in_tmp(&target), "", "left after a kill mid-upload");
    // During a long command: the shell is busy, its watcher sees sshd's process go.
    let dir = project(&[("site.yml", &play("    - command: sleep 600\n"))]);
    let (running, _) = kiln_until(dir.path(), &[&target], "", "TASK [command]");
    target.wait_for_process("sleep");
    running.signal("KILL");
    let _ = running.finish();
    assert_eq!(
        left_in_tmp(&target),
        "",
        "left after a kill during a command"
    );
}

#[test]
fn a_revoked_host_key_is_refused_and_host_patterns_match() {
    let dir = project(&[(
        "site.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=ok dest=/tmp/done\n",
    )]);
    let revoked_key = dir.path().join("revoked_host_key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&revoked_key)
        .status()
        .unwrap()
        .success());
    let rootfs = std::env::var("KILN_TEST_ROOTFS")
        .unwrap_or_else(|_| "/var/cache/kiln-test/bookworm".into());
    let rootfs_key =
        std::fs::read_to_string(format!("{rootfs}/etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    let revoked_pub = std::fs::read_to_string(revoked_key.with_extension("pub")).unwrap();
    let trusted = Target::start("trusted");
    let revoked = Target::start_with_host_key("revoked", Some(&revoked_key));
    // The trusted host only through a wildcard that excludes the other one; the other host
    // recorded with its key, which is also revoked.
    let known = format!(
        "127.*,!{revoked} {rootfs_key}{revoked} {revoked_pub}@revoked * {revoked_pub}",
        revoked = revoked.address,
    );
    std::fs::create_dir_all(dir.path().join(".ssh")).unwrap();
    std::fs::write(dir.path().join(".ssh/known_hosts"), known).unwrap();
    let inv = inventory(dir.path(), "all", &[&trusted, &revoked]);
    // Host key checking is on by default: no ANSIBLE_HOST_KEY_CHECKING here.
    let run = run_kiln(
        &support::kiln(),
        dir.path(),
        &["playbook", "-i", inv.to_str().unwrap(), "site.yml"],
        &[],
    );
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.recap("trusted", "changed"), 1, "{}", run.stdout);
    assert_eq!(run.recap("revoked", "unreachable"), 1, "{}", run.stdout);
    assert!(run.stdout.contains("REVOKED"), "{}", run.stdout);
    assert!(!revoked.check("test -e /tmp/done"));
}

/// Ctrl-C (SIGINT) and SIGTERM stop every host's running command and clean up, print the
/// recap so far and exit 99, as ansible-playbook does; the command never finishes its work.
#[test]
fn an_interrupt_stops_the_remote_command_prints_the_recap_and_exits_99() {
    for signal in ["INT", "TERM"] {
        let web1 = Target::start("web1");
        let web2 = Target::start("web2");
        let tasks = "    - copy: content=x dest=/tmp/before\n    - shell: sleep 40 && touch /tmp/after-interrupt\n";
        let dir = project(&[("site.yml", &play(tasks))]);
        let (running, _) = kiln_until(dir.path(), &[&web1, &web2], "", "TASK [shell]");
        web1.wait_for_process("sleep");
        web2.wait_for_process("sleep");
        running.signal(signal);
        let (status, output) = running.finish();
        assert_eq!(status.code(), Some(99), "{signal}:\n{output}");
        assert!(output.contains("PLAY RECAP"), "{signal}:\n{output}");
        assert!(
            output.contains("web1                       : ok=1    changed=1"),
            "{signal}: the recap so far:\n{output}"
        );
        for target in [&web1, &web2] {
            let deadline = Instant::now() + Duration::from_secs(15);
            while target.processes().iter().any(|(_, name)| name == "sleep") {
                assert!(
                    Instant::now() < deadline,
                    "{signal}: the remote command still runs on {}",
                    target.name
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            assert_eq!(left_in_tmp(target), "", "{signal}: left on {}", target.name);
            assert!(!target.check("test -e /tmp/after-interrupt"));
        }
    }
}
