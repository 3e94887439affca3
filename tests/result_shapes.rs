//! Registered results carry the fields ansible-core's modules return (names, types, when
//! present): the file modules' path info, `stat`'s whole dictionary, lineinfile's and
//! blockinfile's messages, and `command`/`shell`'s `cmd`, `start`, `end`, `delta` and
//! `warnings`. Each playbook registers results and asserts on them on a real target.

mod support;

use support::{play, run_play, Run, Target};

/// Runs `tasks` (which end in asserts) once on `t`; every task must pass.
fn asserts_pass(t: &Target, tasks: &str) -> Run {
    let run = run_play(t, &play(tasks));
    run.assert_ok();
    assert_eq!(run.recap(&t.name, "failed"), 0, "{}", run.stdout);
    run
}

#[test]
fn file_module_results_have_ansibles_path_info() {
    let t = Target::start("t");
    t.root("mkdir -p /srv");
    let tasks = r#"
    - copy: {dest: /srv/a.conf, content: "hello\n", mode: "0640", owner: kiln}
      register: created
    - copy: {dest: /srv/a.conf, content: "hello\n", mode: "0640", owner: kiln}
      register: same
    - copy: {dest: /srv/a.conf, content: "hello\n", mode: "0600"}
      register: chmod
    - copy: {dest: /srv/a.conf, content: "bye\n"}
      register: rewritten
    - copy: {dest: /srv/a.conf, content: "other\n"}
      register: planned
      check_mode: yes
    - file: {path: /srv/d, state: directory, mode: "0750"}
      register: dir
    - file: {path: /srv/d, state: directory, mode: "0750"}
      register: dir_again
    - file: {path: /srv/h, src: /srv/a.conf, state: hard}
      register: hard
    - file: {path: /srv/l, src: /srv/a.conf, state: link}
      register: link
    - file: {path: /srv/d, state: absent}
      register: removed
    - assert:
        that:
          - created is changed and not created.failed
          - created.state == 'file'
          - created.mode == '0640'
          - created.owner == 'kiln' and created.group == 'root'
          - created.uid > 0 and created.gid == 0
          - created.size == 6
          - created.dest == '/srv/a.conf'
          - same is not changed and same.state == 'file' and same.mode == '0640'
          - same.uid == created.uid and same.owner == 'kiln'
          - chmod is changed and chmod.mode == '0600' and chmod.owner == 'kiln'
          - rewritten is changed and rewritten.size == 4 and rewritten.mode == '0600'
          - rewritten.owner == 'kiln' and rewritten.uid == created.uid
          - planned is changed and planned.size == 4
          - dir.state == 'directory' and dir.mode == '0750' and dir.path == '/srv/d'
          - dir.owner == 'root' and dir.uid == 0
          - dir_again is not changed and dir_again.mode == '0750'
          - hard.state == 'hard' and hard.size == 4
          - link.state == 'link' and link.mode == '0777'
          - link.dest == '/srv/l' and link.src == '/srv/a.conf'
          - removed.state == 'absent' and 'mode' not in removed
"#;
    asserts_pass(&t, tasks);
}

#[test]
fn stat_returns_every_field_ansibles_does() {
    let t = Target::start("t");
    t.root("mkdir -p /srv && printf 'bye\\n' > /srv/a.conf && chown kiln /srv/a.conf && chmod 4750 /srv/a.conf && ln /srv/a.conf /srv/h && ln -s /srv/a.conf /srv/l");
    let tasks = r#"
    - stat: {path: /srv/a.conf}
      register: s
    - stat: {path: /srv/l}
      register: sl
    - stat: {path: /srv/l, follow: yes, get_checksum: no, get_mime: no, get_attributes: no}
      register: sf
    - stat: {path: /srv/a.conf, checksum_algorithm: sha256}
      register: s256
    - stat: {path: /dev/null}
      register: devnull
    - stat: {path: /srv/missing}
      register: missing
    - assert:
        that:
          - s.stat.exists and s.stat.isreg and not s.stat.isdir and not s.stat.islnk
          - not s.stat.ischr and not s.stat.isblk and not s.stat.isfifo and not s.stat.issock
          - s.stat.path == '/srv/a.conf'
          - s.stat.mode == '4750'
          - s.stat.isuid and not s.stat.isgid
          - s.stat.rusr and s.stat.wusr and s.stat.xusr
          - s.stat.rgrp and not s.stat.wgrp and s.stat.xgrp
          - not s.stat.roth and not s.stat.woth and not s.stat.xoth
          - s.stat.pw_name == 'kiln' and s.stat.gr_name == 'root'
          - s.stat.uid > 0 and s.stat.gid == 0
          - s.stat.size == 4 and s.stat.nlink == 2
          - s.stat.inode > 0 and s.stat.dev > 0
          - s.stat.atime > 1000000000 and s.stat.mtime > 1000000000 and s.stat.ctime > 1000000000
          - s.stat.blocks >= 0 and s.stat.block_size > 0 and s.stat.device_type == 0
          - s.stat.readable and s.stat.writeable and s.stat.executable
          - s.stat.checksum == 'ee9e51458f4642f48efe956962058245ee7127b1'
          - s.stat.mimetype in ['text/plain', 'unknown']
          - "'charset' in s.stat and 'attributes' in s.stat and 'attr_flags' in s.stat and 'version' in s.stat"
          - "'lnk_target' not in s.stat"
          - s256.stat.checksum | length == 64
          - sl.stat.islnk and not sl.stat.isreg and sl.stat.mode == '0777'
          - sl.stat.lnk_target == '/srv/a.conf' and sl.stat.lnk_source == '/srv/a.conf'
          - "'checksum' not in sl.stat"
          - sf.stat.isreg and not sf.stat.islnk and sf.stat.mode == '4750'
          - "'checksum' not in sf.stat and 'mimetype' not in sf.stat and 'attributes' not in sf.stat"
          - devnull.stat.ischr and devnull.stat.device_type == 259
          - missing.stat == {'exists': false}
"#;
    asserts_pass(&t, tasks);
}

#[test]
fn lineinfile_and_blockinfile_messages_are_ansibles() {
    let t = Target::start("t");
    t.root("mkdir -p /srv");
    let tasks = r#"
    - blockinfile: {path: /srv/b.conf, create: yes, block: "x=1"}
      register: b_created
    - blockinfile: {path: /srv/b.conf, block: "x=2"}
      register: b_inserted
    - blockinfile: {path: /srv/b.conf, block: "x=2"}
      register: b_same
    - blockinfile: {path: /srv/b.conf, state: absent}
      register: b_removed
    - blockinfile: {path: /srv/nope.conf, state: absent}
      register: b_missing
    - blockinfile: {path: /srv/b.conf, state: absent, mode: "0600"}
      register: b_attrs
    - lineinfile: {path: /srv/b.conf, line: "y=1"}
      register: l_added
    - lineinfile: {path: /srv/b.conf, regexp: "^y=", line: "y=2", mode: "0640"}
      register: l_replaced
    - lineinfile: {path: /srv/b.conf, line: "y=2"}
      register: l_same
    - lineinfile: {path: /srv/b.conf, regexp: "^y=", state: absent}
      register: l_removed
    - blockinfile: {path: /srv/new/deep/b.conf, create: yes, block: "x=1"}
      register: b_deep
    - lineinfile: {path: /srv/other/l.conf, create: yes, line: "y=1"}
      register: l_deep
      diff: yes
    - assert:
        that:
          - b_deep.msg == 'File created' and l_deep.msg == 'line added'
          - b_created.msg == 'File created'
          - b_inserted.msg == 'Block inserted'
          - b_same is not changed and b_same.msg == ''
          - b_removed.msg == 'Block removed'
          - b_missing is not changed and b_missing.msg == 'File /srv/nope.conf not present'
          - b_attrs is changed and b_attrs.msg == 'ownership, perms or SE linux context changed'
          - l_added.msg == 'line added' and l_added.backup == ''
          - l_replaced.msg == 'line replaced and ownership, perms or SE linux context changed'
          - l_same is not changed and l_same.msg == ''
          - l_removed.msg == '1 line(s) removed' and l_removed.found == 1
"#;
    asserts_pass(&t, tasks);
}

#[test]
fn command_results_have_cmd_times_and_warnings() {
    let t = Target::start("t");
    let tasks = r#"
    - command: echo "a b" c
      register: c
    - command:
        argv: [printf, "%s", x y]
      register: argv
    - shell: echo out; echo err >&2
      register: sh
    - command: ls /dev/null
      args: {executable: /bogus}
      register: exe
    - command: /bin/true
      args: {creates: /etc}
      register: skipped
    - command:
      args: {chdir: /}
      register: nothing
      ignore_errors: yes
    - command: echo
      args: {chdir: /nonexistent}
      register: no_dir
      ignore_errors: yes
    - assert:
        that:
          - nothing is failed and 'one of the following is required' in nothing.msg
          - no_dir is failed and no_dir is not changed and no_dir.rc is none
          - no_dir.msg == 'Unable to change directory before execution.'
          - c.cmd == ['echo', 'a b', 'c'] and c.stdout == 'a b c'
          - argv.cmd == ['printf', '%s', 'x y']
          - sh.cmd == 'echo out; echo err >&2'
          - sh.stdout_lines == ['out'] and sh.stderr_lines == ['err']
          - not c.failed and c.msg == ''
          - c.start | length in [19, 26] and c.start[4] == '-' and c.start[10] == ' '
          - c.end | length in [19, 26] and c.end >= c.start
          - c.delta.startswith('0:00:')
          - "'warnings' not in c"
          - exe.stdout == '/dev/null'
          - exe.warnings | length == 1
          - "'no longer supported' in exe.warnings[0]"
          - skipped is not changed and skipped.cmd == ['/bin/true']
          - skipped.start is none and skipped.delta is none
"#;
    let run = asserts_pass(&t, tasks);
    assert!(
        run.stdout
            .contains("the parameter 'executable' is no longer supported"),
        "the warning is not shown:\n{}",
        run.stdout
    );
}

#[test]
fn diff_mode_registers_the_modules_diff() {
    let t = Target::start("t");
    t.root("mkdir -p /srv && touch /srv/a /srv/b && ln -s /srv/a /srv/link");
    let run = asserts_pass(
        &t,
        r#"
    - file: src=/srv/b dest=/srv/link state=link
      diff: true
      register: relinked
    - blockinfile:
        path: /srv/block
        create: true
        block: "one"
      diff: true
      register: block
    - copy: content=x dest=/srv/plain
      register: no_diff
    - assert:
        that:
          - relinked.diff.before.src == '/srv/a'
          - relinked.diff.after.src == '/srv/b'
          - relinked.diff.before.path == '/srv/link'
          - block.diff | length > 0
          - no_diff.diff is not defined
"#,
    );
    // The diff is printed as a diff, never inside the result.
    assert!(!run.stdout.contains("\"diff\""), "{}", run.stdout);
}
