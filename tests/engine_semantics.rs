//! Task semantics ansible-core's own integration targets check, against real targets: loop
//! items seeing what earlier items defined, `loop_control` (`pause`, `extended`, `index_var`),
//! `failed_when` and the `exception` fields, `include_vars` over directories, action plugins
//! beside a playbook, and `script`'s options.

mod support;

use std::time::{Duration, Instant};

use support::{run_on, Target};

/// Each item sees the facts and the registered result of the items before it, and
/// `loop_control.pause` waits between items only.
#[test]
fn loop_items_see_earlier_items_and_pause_between_them() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - set_fact:
        seen: "{{ seen | default([]) + [item] }}"
      loop: [a, b, c]
      loop_control:
        pause: 0.5
    - command: echo {{ item }}
      loop: [one, two]
      register: echoed
      changed_when: false
      when: item == 'one' or echoed.stdout == 'one'
    - assert:
        that:
          - seen == ['a', 'b', 'c']
          - echoed.results | map(attribute='stdout') | list == ['one', 'two']
"#;
    let started = Instant::now();
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
}

/// `loop_control.extended` and `index_var` fill what Ansible fills, for includes too (whose
/// `loop_var` may be a template); a label is templated with the item's registered result,
/// and one naming something undefined fails the item.
#[test]
fn extended_loop_info_index_var_and_labels_match_ansible() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - assert:
        that:
          - ansible_loop.allitems == ['apple', 'orange', 'banana']
          - ansible_loop.revindex == 3 - i
          - ansible_loop.revindex0 == 2 - i
          - (ansible_loop.previtem is defined) == (i > 0)
          - (ansible_loop.nextitem is defined) == (i < 2)
      loop: [apple, orange, banana]
      loop_control:
        extended: true
        index_var: i
      register: looped
    - include_tasks: indexed.yml
      loop: [x, y]
      loop_control:
        index_var: n
        loop_var: "{{ var_name }}"
      vars:
        var_name: letter
    - command: echo {{ item }}
      register: r
      loop: [changed, skipped]
      loop_control:
        label: "{{ r.stdout }}"
      when: item == 'changed'
      ignore_errors: true
    - assert:
        that:
          - looped.results[1].ansible_loop.previtem == 'apple'
          - looped.results[1].i == 1
          - looped.results[1].ansible_index_var == 'i'
          - r.results[0] is changed
          - r.results[1] is failed
          - r.results[1].msg is contains('Failed to template loop_control.label')
"#;
    let indexed = "- assert: {that: \"['x', 'y'][n] == letter and ansible_index_var == 'n'\"}\n";
    let (_dir, run) = run_on(&[&t], &[("site.yml", site), ("indexed.yml", indexed)], &[]);
    run.assert_ok();
    assert_eq!(
        run.stdout.matches("included: indexed.yml").count(),
        2,
        "{}",
        run.stdout
    );
}

/// A failed result carries `exception` (not shown on the failure line); a failure that
/// `failed_when` suppressed keeps it as `failed_when_suppressed_exception`.
#[test]
fn failed_results_carry_an_exception_that_failed_when_suppresses() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - shell: exit 0
      register: fine
    - shell: exit 1
      failed_when: true
      ignore_errors: true
      register: forced
    - shell: exit 1
      failed_when: false
      register: suppressed
    - debug: msg=hi
      failed_when: true
      ignore_errors: true
      register: debug_failed
    - assert:
        that:
          - fine.exception is undefined and fine.failed_when_suppressed_exception is undefined
          - forced is failed and forced.exception is defined and forced.failed_when_result
          - forced.failed_when_suppressed_exception is undefined
          - suppressed is not failed and suppressed.exception is undefined
          - suppressed.failed_when_suppressed_exception is defined
          - debug_failed.exception is defined
"#;
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
    let fatal: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("fatal:"))
        .collect();
    assert_eq!(fatal.len(), 2, "{}", run.stdout);
    assert!(
        fatal.iter().all(|l| !l.contains("exception")),
        "{}",
        run.stdout
    );
}

/// A directory is read in sorted order, recursively, with files of no known extension
/// failing the task unless `ignore_unknown_extensions` skips them.
#[test]
fn include_vars_reads_directories_as_ansible_does() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - include_vars:
        dir: vars
        extensions: ['', 'yml']
        ignore_unknown_extensions: true
      register: everything
    - include_vars:
        dir: vars
        ignore_unknown_extensions: true
        files_matching: '^b'
        name: only_b
      register: matching
    - include_vars:
        dir: vars
      register: strict
      ignore_errors: true
    - include_vars:
        file: vars/b/sub/over.yml
        name: merged
    - include_vars:
        file: vars/a.yml
        name: merged
        hash_behaviour: merge
    - assert:
        that:
          - everything.ansible_included_var_files | map('basename') | list == ['a.yml', 'no_extension', 'b.yml', 'over.yml']
          - base == 'over' and plain == 1
          - everything.ansible_facts.plain == 1
          - matching.ansible_included_var_files | map('basename') | list == ['b.yml']
          - "only_b == {'base': 'b'}"
          - strict is failed
          - "'does not have a valid extension' in strict.message"
          - "merged == {'base': 'a', 'deep': {'x': 1, 'y': 2}}"
"#;
    let files = [
        ("site.yml", site),
        ("vars/a.yml", "base: a\ndeep: {x: 1}\n"),
        ("vars/no_extension", "plain: 1\n"),
        ("vars/notes.txt", "ignored: 1\n"),
        ("vars/b/b.yml", "base: b\n"),
        ("vars/b/sub/over.yml", "base: over\ndeep: {y: 2}\n"),
    ];
    let (_dir, run) = run_on(&[&t], &files, &[]);
    run.assert_ok();
}

/// An action plugin beside the playbook loads: one that re-exports a builtin action runs as
/// that action, any other fails only when a host reaches it.
#[test]
fn action_plugins_beside_the_playbook_load_and_fail_only_when_reached() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - debug_alias:
        msg: through the alias
      register: aliased
    - assert:
        that: aliased.msg == 'through the alias'
    - own_plugin:
        anything: 1
      when: false
    - own_plugin:
        anything: 1
      register: reached
      ignore_errors: true
    - assert:
        that:
          - reached is failed
          - "'action plugin' in reached.msg"
"#;
    let files = [
        ("site.yml", site),
        (
            "action_plugins/debug_alias.py",
            "from __future__ import annotations\n\nfrom ansible.plugins.action.debug import ActionModule\n\nassert ActionModule\n",
        ),
        (
            "action_plugins/own_plugin.py",
            "from ansible.plugins.action import ActionBase\n\n\nclass ActionModule(ActionBase):\n    pass\n",
        ),
    ];
    let (_dir, run) = run_on(&[&t], &files, &[]);
    run.assert_ok();
}

/// `script` takes its command line free-form or as `cmd`, requires one of them, finds a
/// quoted script path holding spaces, skips as Ansible's action does (creates/removes met,
/// check mode without them), and refuses `async`.
#[test]
fn script_requires_a_command_line_and_refuses_async() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - script:
      register: missing
      ignore_errors: true
    - script:
        cmd: hello.sh there
      register: by_cmd
    - script: "'space path/hello.sh' spaced"
      register: spaced
    - script: make.sh /tmp/script-made
      args: {creates: /tmp/script-made}
      register: made
    - script: make.sh /tmp/script-made
      args: {creates: /tmp/script-made}
      register: made_again
    - script: make.sh /tmp/script-other
      check_mode: true
      register: unguarded_check
    - script: hello.sh
      async: 2
      register: in_background
      ignore_errors: true
    - assert:
        that:
          - missing is failed
          - "'one of the following' in missing.msg"
          - by_cmd.stdout_lines == ['hello there']
          - spaced.stdout_lines == ['hello spaced']
          - made is changed
          - made_again is skipped
          - made_again.msg == '/tmp/script-made exists, matching creates option'
          - unguarded_check is skipped
          - unguarded_check.msg == 'Check mode is not supported for this task.'
          - in_background is failed
          - in_background.msg == 'This action (script) does not support async.'
"#;
    let files = [
        ("site.yml", site),
        ("files/hello.sh", "#!/bin/sh\necho hello $1\n"),
        ("files/space path/hello.sh", "#!/bin/sh\necho hello $1\n"),
        ("files/make.sh", "#!/bin/sh\ntouch \"$1\"\n"),
    ];
    let (_dir, run) = run_on(&[&t], &files, &[]);
    run.assert_ok();
}

/// `retries` without `until` retries until the task succeeds; exhausted retries report the
/// number of retries as `attempts`; `delay` may be a fraction; `attempts` is seen by
/// `changed_when`.
#[test]
fn until_and_retries_count_as_ansible_does() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - file: path=/tmp/until-runs state=absent
    - shell: test -e /tmp/until-marker || { touch /tmp/until-marker; exit 1; }
      retries: 3
      delay: 0.1
      register: second_time
    - fail: msg=always
      retries: 3
      delay: 0.1
      register: exhausted
      ignore_errors: true
    - shell: echo run >> /tmp/until-runs
      until: 1 == 0
      retries: 2
      delay: 0.1
      register: counted
      changed_when: counted.attempts == 2
      ignore_errors: true
    - command: cat /tmp/until-runs
      register: runs
    # Out of retries, a failed_when still decides whether the task failed.
    - shell: 'true'
      register: decided
      until: 1 == 0
      retries: 1
      delay: 0.1
      failed_when: decided.attempts > 6
    - assert:
        that:
          - second_time is succeeded and second_time.attempts == 2
          - exhausted is failed and exhausted.attempts == 3
          - counted is failed and counted.attempts == 2
          - runs.stdout_lines | length == 3
          - decided.attempts == 1
"#;
    let started = Instant::now();
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
    // Retries are lines of their own, named as the play names the task.
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAILED - RETRYING: [") && l.ends_with("retries left).")),
        "{}",
        run.stdout
    );
    // Six delays of a tenth of a second, not of the default five seconds.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
