//! Text-editing, search, download and archive modules on a real target: blockinfile,
//! replace, find, get_url (from a local HTTP server) and unarchive. Each converges, converges
//! again with `changed=0`, and in check mode on a fresh target touches nothing.

mod support;

use std::net::SocketAddr;

use support::http::FileServer;
use support::{converge, play, project, Target};

#[test]
fn blockinfile_and_replace_edit_in_place() {
    let t = Target::start("t");
    t.root("mkdir -p /etc/app && printf 'listen=80\\n[server]\\nport=1\\n[client]\\nport=1\\n' > /etc/app/app.conf && printf 'keep\\n# BEGIN OLD\\nx\\n# END OLD\\n' > /etc/app/old.conf");
    let tasks = r##"
    - blockinfile:
        path: /etc/app/app.conf
        insertafter: "^listen"
        block: |
          # managed
          workers=4
    - blockinfile:
        path: /etc/app/new.conf
        create: yes
        mode: "0640"
        marker: "; {mark} kiln"
        block: "a=1"
    - blockinfile: path=/etc/app/old.conf marker="# {mark} OLD" state=absent
    - replace:
        path: /etc/app/app.conf
        regexp: '^(port)=1$'
        replace: '\g<1>=10'
        after: '\[server\]'
        before: '\[client\]'
      register: replaced
    - assert:
        that: replaced.msg == '1 replacements made'
      when: replaced.changed and not ansible_check_mode
"##;
    converge(&t, &[("site.yml", &play(tasks))], "/etc/app", true);
    assert_eq!(
        t.root("cat /etc/app/app.conf"),
        "listen=80\n# BEGIN ANSIBLE MANAGED BLOCK\n# managed\nworkers=4\n# END ANSIBLE MANAGED BLOCK\n[server]\nport=10\n[client]\nport=1\n"
    );
    assert_eq!(
        t.root("cat /etc/app/new.conf; stat -c %a /etc/app/new.conf"),
        "; BEGIN kiln\na=1\n; END kiln\n640\n"
    );
    assert_eq!(t.root("cat /etc/app/old.conf"), "keep\n");
}

#[test]
fn find_reports_matching_files() {
    let t = Target::start("t");
    t.root("mkdir -p /srv/logs/sub && cd /srv/logs && printf 1234567890 > big.log && echo x > small.log && echo x > keep.txt && echo ERROR > sub/deep.log && touch -d '3 days ago' big.log sub/deep.log && printf 'has\\na few\\n' > sub/lines.txt && chmod 0640 big.log");
    let tasks = r#"
    - find: paths=/srv/logs patterns=*.log
      register: flat
    - find:
        paths: [/srv/logs]
        patterns: ["*.log"]
        recurse: yes
        age: 2d
      register: old
    - find: paths=/srv/logs recurse=yes contains=ERROR
      register: errors
    # A line must match from its start (Python's re.match), as in Ansible's module.
    - find: paths=/srv/logs recurse=yes contains=RROR
      register: mid_line
    # The whole file: `$` is its end, not a line's.
    - find: paths=/srv/logs/sub contains='^ERROR$' read_whole_file=true
      register: whole
    - find: paths=/srv/logs contains='^1234$' read_whole_file=true
      register: whole_no_match
    - find: paths=/srv/logs file_type=directory
      register: dirs
    # A pattern with a newline spans lines of the whole file only.
    - find:
        paths: /srv/logs/sub
        contains: "has\na few"
        read_whole_file: true
      register: spanning
    - find: paths=/srv/logs patterns=*.log mode=0640
      register: exact
    - find: paths=/srv/logs patterns=*.log mode=u=rw exact_mode=false
      register: user_writable
    # Ansible's walk examines one level deeper than it reports.
    - find: paths=/srv/logs recurse=yes depth=1 file_type=any
      register: shallow
    - find: paths=/srv/logs patterns=big.log get_checksum=yes checksum_algorithm=md5
      register: md5
    - find: paths=/srv/logs patterns=*.log contains=x encoding=idontexist
      register: unknown_encoding
    - assert:
        that:
          - flat.matched == 2
          - old.files | map(attribute='path') | sort == ['/srv/logs/big.log', '/srv/logs/sub/deep.log']
          - errors.files[0].path == '/srv/logs/sub/deep.log'
          - dirs.files[0].isdir
          - flat.examined == 4
          - flat.msg == 'All paths examined'
          - mid_line.matched == 0
          - whole.matched == 1
          - whole_no_match.matched == 0
          - spanning.matched == 1
          - exact.files | map(attribute='path') | list == ['/srv/logs/big.log']
          - user_writable.matched == 2
          - shallow.matched == 4 and shallow.examined == 6
          - md5.files[0].checksum == 'e807f1fcf82d132f9bb018ca6738a19f'
          - unknown_encoding.skipped_paths['/srv/logs'] == 'unknown encoding: idontexist'
          - unknown_encoding.msg == 'Not all paths examined, check warnings for details'
"#;
    // The play's own asserts check the results; converge fails the test if one fails.
    converge(&t, &[("site.yml", &play(tasks))], "/srv", false);
}

#[test]
fn get_url_downloads_once_and_checks_checksums() {
    let t = Target::start("t");
    let served = tempfile::tempdir().unwrap();
    std::fs::write(served.path().join("tool.sh"), "#!/bin/sh\necho tool 1.0\n").unwrap();
    let server = FileServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), served.path());
    let sha256 = "0fe3c3a3e42d1ac0d8ff7a74fdc2a28c95b7f9ae5b0e1ea4b1c16a9f43bab02d";
    let actual = String::from_utf8(
        std::process::Command::new("sha256sum")
            .arg(served.path().join("tool.sh"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let actual = actual.split_whitespace().next().unwrap();
    let tasks = format!(
        r#"
    - get_url:
        url: {url}/tool.sh
        dest: /usr/local/bin/tool
        mode: "0755"
        checksum: "sha256:{actual}"
    - file: path=/opt/dl state=directory
    - get_url: url={url}/tool.sh dest=/opt/dl/
"#,
        url = server.url()
    );
    converge(
        &t,
        &[("site.yml", &play(&tasks))],
        "/usr/local/bin /opt",
        true,
    );
    assert_eq!(t.root("/usr/local/bin/tool").trim(), "tool 1.0");
    assert_eq!(t.root("stat -c %a /usr/local/bin/tool").trim(), "755");
    assert!(t.check("test -f /opt/dl/tool.sh"));

    // A wrong checksum fails and leaves nothing; a missing file is an HTTP error.
    let run = support::run_play(&t, &play(&format!(
            "    - get_url: url={u}/tool.sh dest=/tmp/t checksum=sha256:{sha256}\n    - get_url: url={u}/missing dest=/tmp/m\n      ignore_errors: yes\n      register: missing\n    - assert:\n        that: missing.status_code == 404\n",
            u = server.url()
        )));
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stdout.contains("did not match"), "{}", run.stdout);
    assert!(!t.check("test -e /tmp/t"));
}

#[test]
fn unarchive_tarballs_from_controller_and_target() {
    let t = Target::start("t");
    let dir = project(&[
        ("files/app/bin/run", "#!/bin/sh\necho run\n"),
        ("files/app/conf/app.ini", "a=1\n"),
        ("site.yml", ""),
    ]);
    let status = std::process::Command::new("tar")
        .args(["-czf", "files/app.tar.gz", "-C", "files", "app"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let archive = std::fs::read(dir.path().join("files/app.tar.gz")).unwrap();
    let tasks = r#"
    - file: path=/opt/app state=directory
    - unarchive: src=app.tar.gz dest=/opt/app owner=kiln
    - file: path=/opt/remote state=directory
    - copy: src=app.tar.gz dest=/tmp/app.tar.gz
    - unarchive:
        src: /tmp/app.tar.gz
        dest: /opt/remote
        remote_src: yes
        list_files: yes
      register: unpacked
    - assert:
        that: "'app/conf/app.ini' in unpacked.files"
      when: not ansible_check_mode
"#;
    let playbook = play(tasks);
    let project_dir = project(&[("site.yml", &playbook)]);
    std::fs::create_dir_all(project_dir.path().join("files")).unwrap();
    std::fs::write(project_dir.path().join("files/app.tar.gz"), &archive).unwrap();
    // converge() writes its own project; run the protocol by hand on this one.
    let inv = support::inventory(project_dir.path(), "all", &[&t]);
    let inv = inv.to_str().unwrap();
    let before = t.fingerprint("/opt");
    let check = support::playbook(project_dir.path(), &["-i", inv, "--check", "site.yml"]);
    check.assert_ok();
    assert_eq!(t.fingerprint("/opt"), before, "check mode changed /opt");
    let first = support::playbook(project_dir.path(), &["-i", inv, "site.yml"]);
    first.assert_ok();
    assert!(first.recap("t", "changed") >= 4, "{}", first.stdout);
    let second = support::playbook(project_dir.path(), &["-i", inv, "site.yml"]);
    second.assert_ok();
    assert_eq!(second.recap("t", "changed"), 0, "{}", second.stdout);
    assert_eq!(t.root("sh /opt/app/app/bin/run").trim(), "run");
    assert_eq!(
        t.root("stat -c %U /opt/app/app/conf/app.ini").trim(),
        "kiln"
    );
    assert_eq!(t.root("cat /opt/remote/app/conf/app.ini"), "a=1\n");
}

/// A file's bytes on the target, as hex.
fn target_hex(t: &Target, path: &str) -> String {
    t.root(&format!("od -An -v -tx1 {path} | tr -d ' \\n'"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn text_edits_keep_foreign_bytes_line_endings_and_links() {
    let t = Target::start("t");
    t.root(
        "mkdir -p /etc/app && cd /etc/app && printf 'caf\\351=1\\nna\\357ve=1\\nport=80\\n' > latin1.conf \
         && printf 'a=1\\r\\nport=8080\\r\\n' > crlf.conf && printf 'x=1\\n' > real.conf \
         && ln -s real.conf link.conf && printf '# keep\\351\\nvm.overcommit_memory=1\\n' > sysctl.real \
         && ln -s sysctl.real sysctl.link",
    );
    let tasks = r#"
    - lineinfile: path=/etc/app/latin1.conf regexp=^port= line=port=8080
    - lineinfile: path=/etc/app/latin1.conf regexp=^na.ve= line=naive=2
    - blockinfile: path=/etc/app/latin1.conf block=b=1
    - lineinfile: path=/etc/app/crlf.conf line=port=8080
      register: present
    - assert:
        that: not present.changed
    - lineinfile: path=/etc/app/crlf.conf line=added=1
    - replace: path=/etc/app/crlf.conf regexp='^a=1' replace=a=2
    - lineinfile: path=/etc/app/link.conf line=y=2
    - sysctl: name=vm.swappiness value=10 sysctl_file=/etc/app/sysctl.link reload=no
    - copy:
        content: "validated\n"
        dest: /etc/app/validated.conf
        validate: "sh -c 'test -s %s'"
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/etc/app", true);
    assert_eq!(
        target_hex(&t, "/etc/app/latin1.conf"),
        hex(b"caf\xe9=1\nnaive=2\nport=8080\n# BEGIN ANSIBLE MANAGED BLOCK\nb=1\n# END ANSIBLE MANAGED BLOCK\n")
    );
    assert_eq!(
        target_hex(&t, "/etc/app/crlf.conf"),
        hex(b"a=2\r\nport=8080\r\nadded=1\r\n")
    );
    assert_eq!(
        t.root("cd /etc/app && readlink link.conf sysctl.link && cat real.conf"),
        "real.conf\nsysctl.real\nx=1\ny=2\n"
    );
    assert_eq!(
        target_hex(&t, "/etc/app/sysctl.real"),
        hex(b"# keep\xe9\nvm.overcommit_memory=1\nvm.swappiness=10\n")
    );
    assert_eq!(t.root("cat /etc/app/validated.conf"), "validated\n");
}

#[test]
fn unarchive_without_unzip_names_the_missing_tools_as_ansible_does() {
    let t = Target::start("t");
    // The smallest zip there is: an end-of-central-directory record and nothing else.
    let empty_zip = format!("PK\u{5}\u{6}{}", "\0".repeat(18));
    let site = play(
        "    - file: path=/srv/out state=directory\n    - unarchive: src=empty.zip dest=/srv/out\n      register: r\n      ignore_errors: true\n    - assert:\n        that:\n          - r is failed\n          - r.msg is search('Unable to find required .unzip. or .zipinfo. binary in the path')\n",
    );
    let dir = project(&[("site.yml", &site), ("files/empty.zip", &empty_zip)]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let run = support::playbook(
        dir.path(),
        &["-i", inv.to_str().expect("utf-8"), "site.yml"],
    );
    run.assert_ok();
    assert_eq!(run.recap("t", "ignored"), 1, "{}", run.stdout);
}
