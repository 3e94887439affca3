//! Command modules on a real target: `creates`/`removes` make them idempotent, check mode
//! runs nothing, results carry rc/stdout/stderr as roles read them.

mod support;

use support::{converge, play, Target};

#[test]
fn command_and_shell_with_creates_removes_chdir_and_results() {
    let t = Target::start("t");
    t.root("touch /tmp/remove-me");
    let tasks = r#"
    - command: touch /srv/made creates=/srv/made
    - shell: echo "$((6 * 7))" > answer; echo done
      args:
        chdir: /srv
        creates: /srv/answer
    - command: rm /tmp/remove-me removes=/tmp/remove-me
    - command: cat /srv/answer
      register: answer
      changed_when: false
      when: not ansible_check_mode
    - assert:
        that: answer.stdout == '42' and answer.rc == 0 and answer.stdout_lines == ['42']
      when: not ansible_check_mode
    - command: printf '%s' "a b"
      register: quoted
      changed_when: false
      check_mode: no
    - assert:
        that: quoted.stdout == 'a b'
    - shell: |
        if [ -d /srv ]; then
          echo multi-line
        fi
      register: multi
      changed_when: false
      check_mode: no
    - assert:
        that: multi.stdout == 'multi-line'
    # A line ending in a lone backslash joins the next; the command is shown as joined.
    - shell: |
        echo joined \
          "line"
      register: continued
      changed_when: false
      check_mode: no
    - assert:
        that:
          - continued.stdout == 'joined line'
          - continued.cmd == 'echo joined  "line"\n'
    # chdir goes to the real directory, as Python's chdir does: $PWD has no link in it.
    - shell: pwd; echo "$PWD"
      args:
        chdir: /tmp/linked
      register: real
      changed_when: false
      check_mode: no
    - assert:
        that: real.stdout_lines == ['/srv', '/srv']
"#;
    t.root("ln -s /srv /tmp/linked");
    converge(&t, &[("site.yml", &play(tasks))], "/srv /tmp", true);
    assert_eq!(t.root("cat /srv/answer"), "42\n");
    assert!(t.check("test -f /srv/made"));
    assert!(!t.check("test -e /tmp/remove-me"));
}

#[test]
fn failing_command_reports_rc_and_stderr() {
    let t = Target::start("t");
    let tasks = r#"
    - command: ls /nonexistent
      register: r
      ignore_errors: yes
    - command: nosuchprogram --flag
      register: missing
      ignore_errors: yes
    - command: FOO=bar env
      register: assignment
      ignore_errors: yes
    - shell: echo hi
      args:
        expand_argument_vars: false
      register: command_only
      ignore_errors: yes
    - assert:
        that:
          - r is failed
          - r.rc == 2
          - "'No such file' in r.stderr"
          - missing is failed and missing is not changed
          - missing.rc == 2
          - assignment is failed and assignment.rc == 2
          - 'missing.msg == "[Errno 2] No such file or directory: b''nosuchprogram''"'
          - "command_only.msg == 'Unsupported parameters for (shell) module: expand_argument_vars'"
"#;
    let run = support::run_play(&t, &play(tasks));
    run.assert_ok();
    assert_eq!(run.recap("t", "ignored"), 4);
    assert!(run.stdout.contains("...ignoring"), "{}", run.stdout);
}

#[test]
fn raw_and_script() {
    let t = Target::start("t");
    let tasks = r#"
    - raw: test -e /srv/raw-ran || touch /srv/raw-ran
      changed_when: false
    - script: setup.sh hello creates=/srv/script-out
"#;
    converge(
        &t,
        &[
            ("site.yml", &play(tasks)),
            (
                "files/setup.sh",
                "#!/bin/sh\necho \"$1\" > /srv/script-out\n",
            ),
        ],
        "/srv/script-out /srv/raw-ran",
        true,
    );
    assert_eq!(t.root("cat /srv/script-out"), "hello\n");
    assert!(t.check("test -e /srv/raw-ran"));
    assert_eq!(
        t.root("ls /tmp | grep -c tmp. || true").trim(),
        "0",
        "the script's temporary copy is removed"
    );
}

#[test]
fn command_globs_guards_and_expands_home_and_variables() {
    let t = Target::start("t");
    t.root("mkdir -p '/tmp/g d' && touch '/tmp/g d/a.flag'");
    let tasks = r#"
    - command: touch /tmp/never creates="/tmp/g d/*.flag"
    - command: touch /tmp/ran removes="/tmp/g d/?.flag"
    - command: touch /tmp/not-either removes=/tmp/nothing-*
    - command: printf '%s %s %s|' $HOME ~/x $KILN_UNSET_VAR
      register: expanded
    - command: printf '%s' '$HOME'
      args:
        expand_argument_vars: no
      register: literal
    - copy:
        dest: /tmp/results
        content: "{{ expanded.stdout }}{{ literal.stdout }}\n"
"#;
    let run = support::run_play(&t, &play(tasks));
    run.assert_ok();
    assert!(!t.check("test -e /tmp/never"), "creates ignored its glob");
    assert!(t.check("test -e /tmp/ran"), "removes ignored its glob");
    assert!(!t.check("test -e /tmp/not-either"));
    let home = t.root("getent passwd root | cut -d: -f6");
    assert_eq!(
        t.root("cat /tmp/results"),
        format!("{h} {h}/x $KILN_UNSET_VAR|$HOME\n", h = home.trim())
    );
}
