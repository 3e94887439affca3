//! Control and utility modules on a real target: debug, assert, fail, ping, setup, meta,
//! tempfile, wait_for.

mod support;

use support::{converge, inventory, play, playbook, project, Target};

#[test]
fn debug_assert_ping_setup_change_nothing() {
    let t = Target::start("t");
    let tasks = r#"
    - ping:
      register: pong
    - setup:
    - debug: var=pong.ping
    - debug:
        msg: "{{ ansible_facts.hostname }} says {{ pong.ping }}"
    - assert:
        that:
          - pong.ping == 'pong'
          - ansible_hostname == 'target'
        success_msg: fine
    - wait_for: path=/etc/hostname timeout=5
    - wait_for: port=22 timeout=5
    - wait_for: port=9 state=stopped timeout=5
    - wait_for: port=9 state=drained timeout=5
    # Drained means no connection left, and kiln's own is one.
    - wait_for: port=22 state=drained timeout=1
      register: busy
      ignore_errors: true
    - assert:
        that: busy is failed and busy.msg == 'Timeout when waiting for 127.0.0.1:22 to drain'
    # Nothing to wait for: it sleeps its timeout, as Ansible's does.
    - wait_for: timeout=1
      register: slept
    - assert:
        that: slept.elapsed >= 1
    - copy: content="completed data 123" dest=/tmp/keyword
      check_mode: false
    - wait_for:
        path: /tmp/keyword
        search_regex: completed (?P<foo>\w+) ([0-9]+)
        timeout: 5
      register: found
    - assert:
        that:
          - found.search_regex is search('completed')
          - found.match_groupdict.foo == 'data'
          - found.match_groups == ['data', '123']
"#;
    let run = converge(&t, &[("site.yml", &play(tasks))], "/etc", false);
    assert!(
        run.stdout.contains("\"pong.ping\": \"pong\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"msg\": \"target says pong\""),
        "{}",
        run.stdout
    );
}

#[test]
fn fail_and_failed_assert_stop_the_host() {
    let t = Target::start("t");
    let tasks = "    - assert:\n        that: 1 == 2\n        fail_msg: numbers broke\n    - copy: content=x dest=/tmp/after\n";
    let run = support::run_play(&t, &play(tasks));
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains("\"msg\": \"numbers broke\""),
        "{}",
        run.stdout
    );
    assert!(!t.check("test -e /tmp/after"));
    let run = support::run_play(
        &t,
        &play("    - fail: msg=\"stop here\"\n      when: true\n"),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stdout
            .contains("fatal: [t]: FAILED! => {\"changed\": false, \"msg\": \"stop here\"}"),
        "{}",
        run.stdout
    );
}

#[test]
fn meta_end_host_and_end_play() {
    let a = Target::start("a");
    let b = Target::start("b");
    let site = r#"- hosts: all
  gather_facts: no
  tasks:
    - meta: end_host
      when: inventory_hostname == 'a'
    - copy: content=x dest=/tmp/after-end-host
- hosts: all
  gather_facts: no
  tasks:
    - meta: end_play
    - copy: content=x dest=/tmp/after-end-play
"#;
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&a, &b]);
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    run.assert_ok();
    assert!(!a.check("test -e /tmp/after-end-host"));
    assert!(b.check("test -e /tmp/after-end-host"));
    assert!(!b.check("test -e /tmp/after-end-play"));
}

#[test]
fn tempfile_and_wait_for_timeout() {
    let t = Target::start("t");
    let tasks = "    - tempfile: state=directory suffix=.work\n      register: tmp\n    - copy: content=x dest={{ tmp.path }}/f\n    - wait_for: path=/nonexistent timeout=1\n      register: waited\n      ignore_errors: yes\n    - assert:\n        that: waited is failed and waited.msg == 'Timeout when waiting for file /nonexistent' and waited.elapsed >= 1\n";
    let run = support::run_play(&t, &play(tasks));
    run.assert_ok();
    // tempfile creates a new path on every run, as in Ansible: it is not idempotent by design.
    assert_eq!(t.root("ls -d /tmp/ansible.*.work | wc -l").trim(), "1");
    assert_eq!(t.root("cat /tmp/ansible.*.work/f"), "x");
}

/// `no_log` hides a result everywhere kiln writes one: its loop items (`item=None`), its
/// diff, a failure's message, at every verbosity, and in the JSON event stream.
#[test]
fn no_log_hides_secrets_from_every_output() {
    let t = Target::start("t");
    let tasks = r#"
    - copy:
        content: "{{ item }}\n"
        dest: "/tmp/secret-{{ index }}"
      loop: [SECRET-ITEM-1]
      loop_control: {index_var: index}
      no_log: true
    - command: "echo SECRET-OUTPUT"
      no_log: true
    - command: "sh -c 'echo SECRET-FAILURE >&2; exit 3'"
      no_log: true
      ignore_errors: true
    - command: "false SECRET-IN-LOOP-{{ item }}"
      loop: [a]
      no_log: "{{ item == 'a' }}"
      ignore_errors: true
"#;
    let dir = project(&[("site.yml", &play(tasks))]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    for mode in [&["-v"][..], &["-vvvv"], &["--check", "-v"]] {
        let events = dir.path().join("events.json");
        let events_arg = events.to_str().expect("utf-8 path");
        let args = [
            &["-i", inv, "--diff", "--json-events", events_arg],
            mode,
            &["site.yml"],
        ];
        let run = playbook(dir.path(), &args.concat());
        run.assert_ok();
        let events = std::fs::read_to_string(&events).expect("events");
        for text in [&run.stdout, &run.stderr, &events] {
            assert!(!text.contains("SECRET"), "{mode:?} leaked:\n{text}");
        }
        assert!(run.stdout.contains("(item=None)"), "{}", run.stdout);
        assert!(
            run.stdout.contains("'no_log: true' was specified"),
            "{}",
            run.stdout
        );
    }
}

/// `debug` prints only when the run is at least as verbose as its `verbosity`; below that
/// it is skipped, as in Ansible.
#[test]
fn debug_honours_its_verbosity_threshold() {
    let t = Target::start("t");
    let tasks = r#"
    - debug: {msg: "LOUD-AT-0"}
    - debug: {msg: "QUIET-UNTIL-3", verbosity: 3}
"#;
    let dir = project(&[("site.yml", &play(tasks))]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let quiet = playbook(dir.path(), &["-i", inv, "site.yml"]);
    quiet.assert_ok();
    assert!(quiet.stdout.contains("LOUD-AT-0"), "{}", quiet.stdout);
    assert!(!quiet.stdout.contains("QUIET-UNTIL-3"), "{}", quiet.stdout);
    assert!(quiet.stdout.contains("skipping: [t]"), "{}", quiet.stdout);
    assert_eq!(quiet.recap("t", "skipped"), 1);
    let loud = playbook(dir.path(), &["-i", inv, "-vvv", "site.yml"]);
    loud.assert_ok();
    assert!(loud.stdout.contains("QUIET-UNTIL-3"), "{}", loud.stdout);
    assert_eq!(loud.recap("t", "skipped"), 0);
}
