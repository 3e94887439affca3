//! Modules kiln runs natively where Ansible would ship Python: slurp, fetch, debconf,
//! modprobe, mount and others, each against a real target with the module protocol (check
//! mode changes nothing, a real run changes, a second run reports `changed=0`).

mod support;

use support::{converge, play, Target};

#[test]
fn slurp_returns_the_file_base64_encoded() {
    let t = Target::start("t");
    t.root("printf 'secret=1\\n\\001\\377' > /etc/kiln-slurp && chmod 600 /etc/kiln-slurp && mkdir -p /srv/d");
    let tasks = r#"
    - slurp: src=/etc/kiln-slurp
      register: s
    - assert:
        that:
          - s is not changed
          - s.encoding == 'base64'
          - s.source == '/etc/kiln-slurp'
          - s.content == 'c2VjcmV0PTEKAf8='
          - (s.content | b64decode).startswith('secret=1')
    - slurp: path=/srv/d
      register: dir
      ignore_errors: yes
    - slurp: path=/nonexistent
      register: gone
      ignore_errors: yes
    - assert:
        that:
          - dir is failed
          - "'directory' in dir.msg"
          - gone is failed
          - "'file not found' in gone.msg"
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/etc /srv", false);
}

#[test]
fn fetch_copies_into_host_directories_and_flat() {
    let t = Target::start("t");
    t.root("mkdir -p /etc/app && printf 'a=1\\n' > /etc/app/app.conf && chmod 600 /etc/app/app.conf && printf 'motd\\n' > /etc/motd");
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().display().to_string();
    let tasks = format!(
        r#"
    - fetch: src=/etc/app/app.conf dest={dest}/tree
      register: tree
    - fetch: src=/etc/motd dest={dest}/flat/ flat=yes
    - fetch: src=/etc/motd dest={dest}/renamed.txt flat=yes
    - fetch: src=/etc/missing dest={dest}/tree fail_on_missing=no
      register: missing
    - assert:
        that:
          - missing is not changed
          - "'does not exist' in missing.msg"
          - tree.checksum == tree.remote_checksum
          - tree.dest == '{dest}/tree/t/etc/app/app.conf'
"#
    );
    // Check mode writes nothing on the controller either.
    let dir = support::project(&[("site.yml", &play(&tasks))]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    support::playbook(
        dir.path(),
        &["-i", inv.to_str().unwrap(), "--check", "site.yml"],
    )
    .assert_ok();
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    converge(&t, &[("site.yml", &play(&tasks))], "/etc", true);
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap_or_default();
    assert_eq!(read("tree/t/etc/app/app.conf"), "a=1\n");
    assert_eq!(read("flat/motd"), "motd\n");
    assert_eq!(read("renamed.txt"), "motd\n");

    // A changed file on the target is fetched again; `src` cannot climb out of the tree.
    t.root("printf 'a=2\\n' > /etc/app/app.conf");
    let tasks = format!(
        r#"
    - fetch: src=/etc/app/app.conf dest={dest}/tree
      register: again
    - fetch: src=/../../../tmp/escape dest={dest}/tree
      register: escape
      ignore_errors: yes
    - assert:
        that:
          - again is changed
          - escape is failed
"#
    );
    support::run_play(&t, &play(&tasks)).assert_ok();
    assert_eq!(read("tree/t/etc/app/app.conf"), "a=2\n");
}
