//! File modules on a real target: each converges, converges again with `changed=0`, and in
//! check mode on a fresh target reports the change while touching nothing.

mod support;

use support::{converge, play, Target};

#[test]
fn file_directories_links_touch_and_absent() {
    let t = Target::start("t");
    t.root(
        "mkdir -p /srv/old /srv/pre && touch /srv/old/junk && install -m 600 /dev/null /srv/pre/f",
    );
    let tasks = r#"
    - file: path=/srv/data state=directory owner=kiln group=kiln mode=0750
    - file: path=/srv/data/sub/deep state=directory
    - file: src=/srv/data dest=/srv/current state=link group=kiln
    - file: path=/srv/old state=absent
    - file:
        path: /srv/data
        owner: kiln
        recurse: yes
    - file: path=/srv/pre/f mode=u=rw,g=r
    - file: path=/srv/pre/stamp state=touch mode=0644 modification_time=preserve access_time=preserve
    # Given times are the target's local time, set once (idempotent, unlike `now`).
    - file: path=/srv/pre/dated state=touch modification_time=202001011200.0 access_time=preserve
    - file:
        path: /srv/pre/f
        modification_time: "2021-06-01 08:30"
        modification_time_format: "%Y-%m-%d %H:%M"
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/srv", true);
    assert_eq!(
        t.root("stat -c '%a %U %G' /srv/data").trim(),
        "750 kiln kiln"
    );
    assert!(t.check("test -d /srv/data/sub/deep"));
    assert_eq!(t.root("stat -c %U /srv/data/sub/deep").trim(), "kiln");
    assert_eq!(t.root("readlink /srv/current").trim(), "/srv/data");
    assert_eq!(t.root("stat -c %G /srv/current").trim(), "kiln");
    assert!(!t.check("test -e /srv/old"));
    assert_eq!(t.root("stat -c %a /srv/pre/f").trim(), "640");
    assert_eq!(t.root("stat -c %a /srv/pre/stamp").trim(), "644");
    assert_eq!(
        t.root("stat -c %Y /srv/pre/dated /srv/pre/f"),
        t.root("date -d '2020-01-01 12:00:00' +%s; date -d '2021-06-01 08:30:00' +%s")
    );
}

#[test]
fn copy_content_src_remote_src_backup_validate() {
    let t = Target::start("t");
    t.root("mkdir -p /etc/app && printf 'old\\n' > /etc/app/existing.conf && printf 'seed\\n' > /etc/app/seed");
    let tasks = r#"
    - copy:
        content: "hello {{ inventory_hostname }}\n"
        dest: /etc/app/hello.txt
        owner: kiln
        group: root
        mode: "0640"
    - copy: src=banner.txt dest=/etc/app
    - copy: src=/etc/app/seed dest=/etc/app/seed.copy remote_src=yes mode=0600
    - copy: content="echo run\n" dest=/etc/app/run.sh mode=04755 group=kiln
    - copy:
        content: "new\n"
        dest: /etc/app/existing.conf
        backup: yes
        validate: grep -q new %s
"#;
    converge(
        &t,
        &[
            ("site.yml", &play(tasks)),
            ("files/banner.txt", "welcome\n"),
        ],
        "/etc/app",
        true,
    );
    assert_eq!(t.root("cat /etc/app/hello.txt"), "hello t\n");
    assert_eq!(
        t.root("stat -c '%a %U %G' /etc/app/hello.txt").trim(),
        "640 kiln root"
    );
    assert_eq!(t.root("cat /etc/app/banner.txt"), "welcome\n");
    assert_eq!(t.root("cat /etc/app/seed.copy"), "seed\n");
    assert_eq!(t.root("stat -c %a /etc/app/seed.copy").trim(), "600");
    assert_eq!(
        t.root("stat -c '%a %U %G' /etc/app/run.sh").trim(),
        "4755 root kiln",
        "modes a shell redirection cannot create are set afterwards"
    );
    assert_eq!(t.root("cat /etc/app/existing.conf"), "new\n");
    assert_eq!(
        t.root("cat /etc/app/existing.conf.*~"),
        "old\n",
        "backup keeps the old content"
    );
    assert_eq!(
        t.root("ls -a /etc/app | grep -c kiln-tmp || true").trim(),
        "0",
        "no temporary files left"
    );
}

#[test]
fn copy_validate_failure_leaves_the_destination_alone() {
    let t = Target::start("t");
    t.root("printf 'keep\\n' > /etc/keep.conf");
    let run = support::run_play(
        &t,
        &play("    - copy: content=bad dest=/etc/keep.conf validate='grep -q good %s'\n"),
    );
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("failed to validate"), "{}", run.stdout);
    assert_eq!(t.root("cat /etc/keep.conf"), "keep\n");
    assert_eq!(t.root("ls -a /etc | grep -c kiln-tmp || true").trim(), "0");
    // A validate command that does not name the file is refused before anything is written.
    let run = support::run_play(
        &t,
        &play(
            "    - lineinfile: path=/etc/keep.conf line=x validate=/bin/true
",
        ),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stdout.contains("validate must contain %s: /bin/true"),
        "{}",
        run.stdout
    );
    assert_eq!(t.root("cat /etc/keep.conf"), "keep\n");
}

#[test]
fn template_renders_with_facts_loops_and_filters() {
    let t = Target::start("t");
    let site = r#"- hosts: all
  become: yes
  vars:
    upstreams: [a, b]
    settings: {workers: 4, log: /var/log/app.log}
  tasks:
    - template: src=app.conf.j2 dest=/etc/app.conf mode=0644
    - template: src=app.conf.j2 dest=/opt
"#;
    let tmpl = "# {{ ansible_managed }}\nhost={{ ansible_hostname }} os={{ ansible_os_family }}\n{% for u in upstreams %}\nupstream {{ u | upper }}\n{% endfor %}\n{{ settings | to_nice_json }}\n";
    converge(
        &t,
        &[("site.yml", site), ("templates/app.conf.j2", tmpl)],
        "/etc/app.conf /etc /opt",
        true,
    );
    let text = t.root("cat /etc/app.conf");
    assert_eq!(
        t.root("cat /opt/app.conf.j2"),
        text,
        "a directory destination receives the file under the template's name"
    );
    assert!(text.contains("host=target os=Debian"), "{text}");
    assert!(text.contains("upstream A\nupstream B\n"), "{text}");
    assert!(text.contains("\"workers\": 4"), "{text}");
}

#[test]
fn lineinfile_edits_lines_idempotently() {
    let t = Target::start("t");
    t.root("printf '#Port 22\\nPermitRootLogin yes\\nUsePAM yes\\n' > /etc/demo.conf");
    let tasks = r#"
    - lineinfile: path=/etc/demo.conf regexp='^#?Port ' line='Port 2222'
    - lineinfile: path=/etc/demo.conf regexp='^PermitRootLogin' line='PermitRootLogin no'
    - lineinfile: path=/etc/demo.conf line='AllowUsers kiln' insertafter='^Port'
    - lineinfile: path=/etc/demo.conf regexp='^UsePAM' state=absent
    - lineinfile: path=/etc/new.conf line='created=yes' create=yes mode=0600
"#;
    converge(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc/demo.conf /etc/new.conf /etc",
        true,
    );
    assert_eq!(
        t.root("cat /etc/demo.conf"),
        "Port 2222\nAllowUsers kiln\nPermitRootLogin no\n"
    );
    assert_eq!(t.root("cat /etc/new.conf"), "created=yes\n");
    assert_eq!(t.root("stat -c %a /etc/new.conf").trim(), "600");
}

#[test]
fn stat_reports_what_roles_read() {
    let t = Target::start("t");
    t.root("printf 'abc' > /etc/s.txt && chmod 640 /etc/s.txt");
    let tasks = r#"
    - stat: path=/etc/s.txt
      register: s
    - stat: path=/nonexistent
      register: missing
    - assert:
        that:
          - s.stat.exists
          - s.stat.isreg
          - s.stat.mode == '0640'
          - s.stat.size == 3
          - s.stat.checksum == 'a9993e364706816aba3e25717850c26c9cd0d89d'
          - not missing.stat.exists
"#;
    let run = converge(&t, &[("site.yml", &play(tasks))], "/etc", false);
    assert_eq!(run.recap("t", "failed"), 0);
}

#[test]
fn a_failed_write_reports_why_and_the_host_goes_on() {
    let t = Target::start("t");
    let run = support::run_play(
        &t,
        &play(
            r#"
    - copy: content=x dest=/missing/dir/file mode=0600
      ignore_errors: yes
    - copy: content=x dest=/etc/unowned.conf owner=nosuchuser
      ignore_errors: yes
    - copy: content="after\n" dest=/etc/after.txt
"#,
        ),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("could not write /missing/dir/file"),
        "{}",
        run.stdout
    );
    assert_eq!(
        t.root("test -e /etc/unowned.conf && echo left || echo gone")
            .trim(),
        "gone",
        "a new file whose owner cannot be set is removed again"
    );
    assert_eq!(t.root("cat /etc/after.txt"), "after\n");
    assert_eq!(
        t.root("stat -c %a /etc/after.txt").trim(),
        "644",
        "the failed write's umask (for 0600) does not outlive it"
    );
}

#[test]
fn large_files_travel_as_stdin_and_compare_by_checksum() {
    let t = Target::start("t");
    // Over --diff's 256 KiB read-back limit: the plan falls back to a checksum on the target.
    let big = "x".repeat(300_000);
    t.root("head -c 300000 /dev/zero | tr '\\0' x > /etc/big.txt");
    // Over the 16 KiB that ride inside the script: sent as the command's stdin.
    let upload: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let tasks = r#"
    - copy: src=big.txt dest=/etc/big.txt
    - copy: src=upload.txt dest=/etc/upload.txt mode=0600
"#;
    let first = support::converge_with(
        &t,
        &[
            ("site.yml", &play(tasks)),
            ("files/big.txt", &big),
            ("files/upload.txt", &upload),
        ],
        "/etc",
        true,
        &["--diff"],
    );
    assert_eq!(first.recap("t", "changed"), 1, "{}", first.stdout);
    assert_eq!(t.root("cat /etc/upload.txt"), upload);
    assert_eq!(t.root("stat -c %a /etc/upload.txt").trim(), "600");
}

#[test]
fn existing_files_are_compared_exactly() {
    let t = Target::start("t");
    t.root(
        "printf 'two\\n  lines \\\\ \\n' > /etc/same.txt && printf 'no newline' > /etc/tail.txt \
         && printf 'no newline' > /etc/newline.txt && printf 'aaa\\n' > /etc/differs.txt",
    );
    let tasks = r#"
    - copy:
        content: "two\n  lines \\ \n"
        dest: /etc/same.txt
    - copy: content="no newline" dest=/etc/tail.txt
    - copy: content="no newline\n" dest=/etc/newline.txt
    - copy: content="bbb\n" dest=/etc/differs.txt
"#;
    let first = converge(&t, &[("site.yml", &play(tasks))], "/etc", true);
    assert_eq!(
        first.recap("t", "changed"),
        2,
        "only the file of the same size with other bytes and the one without its newline differ:\n{}",
        first.stdout
    );
    assert_eq!(t.root("cat /etc/differs.txt"), "bbb\n");
    assert_eq!(t.root("cat /etc/tail.txt"), "no newline");
    assert_eq!(t.root("cat /etc/newline.txt"), "no newline\n");
}

#[test]
fn text_edits_read_small_large_and_binary_files_exactly() {
    let t = Target::start("t");
    // Small files are read back by the shell; one with a NUL byte (which the shell's `read`
    // drops) and one over its size limit are read with `head`.
    t.root(
        "printf 'héllo \\\\ world\\n  indented\\n' > /etc/small.conf \
         && printf 'a\\000b\\nkeep\\n' > /etc/nul.conf \
         && seq 1 1000 > /etc/large.conf",
    );
    let tasks = r#"
    - lineinfile: path=/etc/small.conf line=added
    - lineinfile: path=/etc/nul.conf line=added
    - lineinfile: path=/etc/large.conf line=added
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/etc", true);
    assert_eq!(
        t.root("cat /etc/small.conf"),
        "héllo \\ world\n  indented\nadded\n"
    );
    assert_eq!(t.root("cat -v /etc/nul.conf"), "a^@b\nkeep\nadded\n");
    assert_eq!(t.root("wc -l < /etc/large.conf").trim(), "1001");
    assert_eq!(t.root("head -n 2 /etc/large.conf"), "1\n2\n");
}

/// RHEL's /bin/sh is bash: the session protocol, the file scripts and fact gathering must
/// hold there as under dash (bash reads input a byte at a time, counts `${#v}` in
/// characters and lists `export -p` in its own quoting).
#[test]
fn file_modules_and_facts_under_bash_as_sh() {
    let t = Target::start("t");
    t.root("ln -sf bash /bin/sh && printf 'héllo\\n' > /etc/utf8.conf && printf 'same\\n' > /etc/same.conf");
    let tasks = r#"
    - file: path=/srv/app state=directory mode=0750
    - copy: content="new\n" dest=/srv/app/new.conf mode=0640
    - copy: content="same\n" dest=/etc/same.conf
    - template: src=t.j2 dest=/srv/app/t.conf
    - lineinfile: path=/etc/utf8.conf line=added
    - command: touch /srv/app/stamp creates=/srv/app/stamp
"#;
    let site = format!(
        "- hosts: all\n  become: yes\n  tasks:\n    - assert:\n        that: ansible_env.HOME == '/root' and ansible_distribution == 'Debian'\n{}",
        play(tasks).split_once("  tasks:\n").map(|(_, t)| t).unwrap_or_default()
    );
    converge(
        &t,
        &[
            ("site.yml", &site),
            ("templates/t.j2", "host={{ inventory_hostname }}\n"),
        ],
        "/srv",
        true,
    );
    assert_eq!(t.root("readlink /bin/sh").trim(), "bash");
    assert_eq!(t.root("cat /srv/app/new.conf"), "new\n");
    assert_eq!(t.root("stat -c %a /srv/app/new.conf").trim(), "640");
    assert_eq!(t.root("cat /srv/app/t.conf"), "host=t\n");
    assert_eq!(t.root("cat /etc/utf8.conf"), "héllo\nadded\n");
}

/// A directory `src:` copies its tree: `dir/` its contents, `dir` the directory itself; from
/// the controller or (`remote_src`) within the target.
#[test]
fn copy_directories_recursively_from_the_controller_and_the_target() {
    let t = Target::start("t");
    t.root("mkdir -p /opt/seed/conf.d && printf 'a\\n' > /opt/seed/a.conf && printf 'b\\n' > /opt/seed/conf.d/b.conf && chmod 0600 /opt/seed/a.conf && mkdir -p /srv/contents && chmod 0711 /srv/contents");
    let tasks = r#"
    - copy:
        src: site/
        dest: /srv/contents
        mode: "0640"
        directory_mode: "0750"
        owner: kiln
        group: kiln
    - copy: src=site dest=/srv/whole
    - copy: src=/opt/seed/ dest=/srv/remote-contents remote_src=yes owner=kiln
    - copy: src=/opt/seed dest=/srv/remote-whole remote_src=yes mode=0700
"#;
    converge(
        &t,
        &[
            ("site.yml", &play(tasks)),
            ("files/site/index.html", "<h1>hi</h1>\n"),
            ("files/site/css/main.css", "body {}\n"),
        ],
        "/srv",
        true,
    );
    assert_eq!(t.root("cat /srv/contents/index.html"), "<h1>hi</h1>\n");
    assert_eq!(
        t.root("stat -c '%a %U %G' /srv/contents/index.html /srv/contents/css /srv/contents/css/main.css /srv/contents"),
        "640 kiln kiln\n750 kiln kiln\n640 kiln kiln\n711 root root\n",
        "files get mode, directories directory_mode; an existing dest keeps its own"
    );
    assert_eq!(t.root("cat /srv/whole/site/css/main.css"), "body {}\n");
    assert_eq!(t.root("cat /srv/remote-contents/conf.d/b.conf"), "b\n");
    assert_eq!(
        t.root("stat -c '%a %U' /srv/remote-contents/a.conf /srv/remote-contents/conf.d/b.conf"),
        "600 kiln\n644 kiln\n",
        "a remote copy keeps the source's modes and takes the owner throughout"
    );
    assert_eq!(t.root("cat /srv/remote-whole/seed/a.conf"), "a\n");
    assert_eq!(t.root("stat -c %a /srv/remote-whole/seed").trim(), "700");
}

#[test]
fn a_link_to_nothing_needs_force() {
    let t = Target::start("t");
    let tasks = r#"
    - file: src=/nonexistent dest=/tmp/dangling state=link
      register: refused
      ignore_errors: true
    - assert:
        that:
          - refused is failed
          - refused.msg is search('src file does not exist, use "force=yes"')
    - file: src=/nonexistent dest=/tmp/dangling state=link force=yes
    - lineinfile: path=/some/where/missing.txt line=x
      register: missing
      ignore_errors: true
    - assert:
        that: "'Destination /some/where/missing.txt does not exist !' in missing.msg"
"#;
    let run = support::run_play(&t, &play(tasks));
    run.assert_ok();
    assert_eq!(t.root("readlink /tmp/dangling").trim(), "/nonexistent");
}
