//! `reboot` on a real systemd target: the container reboots (nspawn boots it again over the
//! same overlay), kiln reconnects as the task's user with its become, and the play goes on.
//! A reboot always changes the host, so there is no idempotent second run: check mode must
//! report it and leave the boot alone; the real run must come back in a new boot. The older
//! pattern (a background reboot, then `wait_for_connection`) reconnects too.

mod support;

use support::{play, playbook, project, Target};

fn boot_id(t: &Target) -> String {
    t.root("cat /proc/sys/kernel/random/boot_id")
        .trim()
        .to_string()
}

#[test]
fn reboot_restarts_the_target_and_the_play_goes_on_in_the_new_boot() {
    let t = Target::start_systemd("t");
    // /run is a tmpfs: a marker there is gone after a reboot, and only after one.
    t.root("touch /run/kiln-before-reboot");
    let before = boot_id(&t);
    let tasks = r#"
    - reboot:
        msg: rebooting for kiln
        reboot_timeout: 120
      register: r
    - assert:
        that:
          - r is changed
          - r.rebooted
          - r.elapsed is defined
    - command: cat /proc/sys/kernel/random/boot_id
      register: after
      changed_when: false
      check_mode: false
    - copy:
        dest: /root/boot-after-reboot
        content: "{{ after.stdout }}"
"#;
    let dir = project(&[("site.yml", &play(tasks))]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");

    let check = playbook(dir.path(), &["-i", inv, "--check", "site.yml"]);
    check.assert_ok();
    // The reboot and the copy would change the host.
    assert_eq!(check.recap("t", "changed"), 2, "{}", check.stdout);
    assert!(!t.check("test -e /root/boot-after-reboot"));
    assert_eq!(
        boot_id(&t),
        before,
        "check mode rebooted:\n{}",
        check.stdout
    );
    assert!(t.check("test -e /run/kiln-before-reboot"));

    let run = playbook(dir.path(), &["-i", inv, "site.yml"]);
    run.assert_ok();
    assert_eq!(run.recap("t", "failed"), 0, "{}", run.stdout);
    let after = boot_id(&t);
    assert_ne!(after, before, "the target did not reboot:\n{}", run.stdout);
    assert!(!t.check("test -e /run/kiln-before-reboot"));
    // The tasks after the reboot ran over the new connection, in the new boot.
    assert_eq!(t.root("cat /root/boot-after-reboot").trim(), after);
}

#[test]
fn reboot_fails_with_ansibles_message_when_the_command_fails() {
    let t = Target::start_systemd("t");
    let before = boot_id(&t);
    let tasks = r#"
    - reboot:
        reboot_command: "false"
      register: r
      ignore_errors: true
    - assert:
        that:
          - r is failed
          - not r.rebooted
          - r.msg.startswith('Reboot command failed')
"#;
    let run = support::run_play(&t, &play(tasks));
    run.assert_ok();
    assert_eq!(boot_id(&t), before);
}

#[test]
fn wait_for_connection_reconnects_after_a_reboot_the_play_started_itself() {
    let t = Target::start_systemd("t");
    let before = boot_id(&t);
    // The pattern from before the reboot module: reboot in the background, then wait.
    let tasks = r#"
    - shell: sleep 1 && systemctl reboot
      async: 30
      poll: 0
    - wait_for_connection:
        delay: 3
        sleep: 1
        timeout: 120
        connect_timeout: 5
    - command: cat /proc/sys/kernel/random/boot_id
      register: after
    - copy:
        dest: /root/boot-after-reboot
        content: "{{ after.stdout }}"
"#;
    let run = support::run_play(&t, &play(tasks));
    run.assert_ok();
    let after = boot_id(&t);
    assert_ne!(after, before, "the target did not reboot:\n{}", run.stdout);
    assert_eq!(t.root("cat /root/boot-after-reboot").trim(), after);
}
