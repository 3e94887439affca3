//! Modules kiln runs natively where Ansible would ship Python: slurp, fetch, debconf,
//! modprobe, mount and others, each against a real target with the module protocol (check
//! mode changes nothing, a real run changes, a second run reports `changed=0`).

mod support;

use support::{converge, converge_with, play, Target};

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

#[test]
fn mount_edits_fstab_and_mounts_for_real() {
    let t = Target::start("t");
    t.root(
        "mkdir -p /srv/old /srv/un && printf 'tmpfs /srv/old tmpfs defaults 0 0\\ntmpfs /srv/un tmpfs defaults 0 0\\n' >> /etc/fstab \
         && mount -t tmpfs tmpfs /srv/old && mount -t tmpfs tmpfs /srv/un",
    );
    let tasks = r#"
    - mount:
        path: /srv/my data
        src: tmpfs
        fstype: tmpfs
        opts: size=1m
        state: mounted
      register: m
    - mount: path=/srv/later src=/dev/sdz9 fstype=ext4 state=present boot=no passno=2
    - mount: path=/srv/old state=absent
    - mount: path=/srv/eph src=tmpfs fstype=tmpfs state=ephemeral
    - mount: path=/srv/un state=unmounted
    - assert:
        that:
          - m.name == '/srv/my data'
          - m.fstype == 'tmpfs'
"#;
    converge_with(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc/fstab /srv",
        true,
        &["--diff"],
    );
    let fstab = t.root("cat /etc/fstab");
    assert!(
        fstab.contains("tmpfs /srv/my\\040data tmpfs size=1m 0 0\n"),
        "{fstab}"
    );
    assert!(
        fstab.contains("/dev/sdz9 /srv/later ext4 noauto 0 2\n"),
        "{fstab}"
    );
    assert!(!fstab.contains("/srv/old"), "{fstab}");
    assert!(fstab.contains("tmpfs /srv/un tmpfs"), "{fstab}");
    assert!(!fstab.contains("/srv/eph"), "{fstab}");
    let mounts = t.root("cut -d' ' -f2 /proc/mounts");
    let mounted: Vec<&str> = mounts.lines().collect();
    assert!(mounted.contains(&"/srv/my\\040data"), "{mounts}");
    assert!(mounted.contains(&"/srv/eph"), "{mounts}");
    assert!(!mounted.contains(&"/srv/old"), "{mounts}");
    assert!(!mounted.contains(&"/srv/un"), "{mounts}");
    assert!(!t.check("test -e /srv/old"));

    // Changed options remount what is mounted; `remounted` always remounts.
    let tasks = r#"
    - mount: {path: /srv/my data, src: tmpfs, fstype: tmpfs, opts: "size=2m", state: mounted}
      register: grown
    - mount: {path: /srv/eph, state: remounted}
      register: again
    - mount: {path: /srv/nothing, state: remounted}
      register: nothing
      ignore_errors: yes
    - assert:
        that:
          - grown is changed
          - again is changed
          - nothing is failed
"#;
    support::run_play(&t, &play(tasks)).assert_ok();
    assert!(t.root("df -k '/srv/my data' | tail -1").contains(" 2048 "));
}

#[test]
fn debconf_sets_answers_once_and_hides_passwords() {
    let t = Target::start("t");
    let tasks = r#"
    - debconf:
        name: kiln-demo
        question: kiln-demo/flavour
        vtype: select
        value: plain
    - debconf: name=kiln-demo question=kiln-demo/enabled vtype=boolean value=yes
    - debconf:
        name: kiln-demo
        question: kiln-demo/secret
        vtype: password
        value: "s3cret word"
      register: pw
    - debconf: name=kiln-demo
      register: all
    - assert:
        that:
          - all is not changed
          - all.current['kiln-demo/flavour'] == 'plain'
          - all.current['kiln-demo/enabled'] == 'true'
      when: not ansible_check_mode
"#;
    let run = converge_with(
        &t,
        &[("site.yml", &play(tasks))],
        "/var/cache/debconf",
        true,
        &["--diff", "-v"],
    );
    assert!(!run.stdout.contains("s3cret"), "{}", run.stdout);
    assert!(
        run.stdout.contains("kiln-demo/flavour: plain"),
        "{}",
        run.stdout
    );
    let shown = t.root("debconf-show kiln-demo");
    assert!(shown.contains("kiln-demo/flavour: plain"), "{shown}");
    assert!(shown.contains("kiln-demo/enabled: true"), "{shown}");
    assert!(t.check("grep -qx 'Value: s3cret word' /var/cache/debconf/passwords.dat"));
}

/// The test machine's kernel loads no modules (no `/proc/modules`), so the kernel side is
/// a stand-in: a module listed in the target's `modules.builtin` counts as loaded, and a
/// `modprobe` script records what it was asked to load. The configuration files are real.
#[test]
fn modprobe_loads_and_persists_modules() {
    let t = Target::start("t");
    t.root(
        "d=/lib/modules/$(uname -r) && mkdir -p $d && echo kernel/net/bridge/br_netfilter.ko > $d/modules.builtin \
         && mkdir -p /etc/modules-load.d /etc/modprobe.d && printf 'overlay\\ndummy\\n' > /etc/modules-load.d/old.conf \
         && printf 'options dummy numdummies=2\\n' > /etc/modprobe.d/dummy.conf \
         && printf '#!/bin/sh\\necho \"$*\" >> /run/modprobe.log\\n' > /usr/local/sbin/modprobe && chmod 755 /usr/local/sbin/modprobe",
    );
    let tasks = r#"
    - modprobe: name=br_netfilter state=present persistent=present params="nf_conntrack_max=1000  hashsize=1"
      register: br
    - modprobe: name=dummy state=absent persistent=absent
    - assert:
        that:
          - br.params == 'nf_conntrack_max=1000 hashsize=1'
"#;
    converge_with(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc/modules-load.d /etc/modprobe.d",
        true,
        &["--diff"],
    );
    assert_eq!(
        t.root("cat /etc/modules-load.d/br_netfilter.conf"),
        "br_netfilter\n"
    );
    assert_eq!(
        t.root("cat /etc/modprobe.d/br_netfilter.conf"),
        "options br_netfilter nf_conntrack_max=1000 hashsize=1\n"
    );
    assert_eq!(t.root("cat /etc/modules-load.d/old.conf"), "overlay\n");
    assert_eq!(t.root("cat /etc/modprobe.d/dummy.conf"), "");
    assert!(
        !t.check("test -e /run/modprobe.log"),
        "nothing was to be loaded"
    );

    // A module not in the kernel is loaded with its parameters; check mode only says so.
    let tasks = "    - modprobe: {name: nf-conntrack, params: 'a=1 b=\"x y\"'}\n";
    let dir = support::project(&[("site.yml", &play(tasks))]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().unwrap();
    let check = support::playbook(dir.path(), &["-i", inv, "--check", "site.yml"]);
    assert_eq!(check.assert_ok().recap("t", "changed"), 1);
    assert!(!t.check("test -e /run/modprobe.log"));
    support::playbook(dir.path(), &["-i", inv, "site.yml"]).assert_ok();
    assert_eq!(
        t.root("cat /run/modprobe.log"),
        "-- nf-conntrack a=1 b=\"x y\"\n"
    );
}

#[test]
fn assemble_joins_fragments_from_the_target_and_the_controller() {
    let t = Target::start("t");
    t.root(
        "mkdir -p /etc/app/conf.d && cd /etc/app/conf.d && printf 'a=1\\n' > 10-a && printf 'b=2' > 20-b \
         && printf 'hidden\\n' > .30-h && printf 'skip\\n' > notes.txt && mkdir 40-dir",
    );
    let tasks = r#"
    - assemble:
        src: /etc/app/conf.d
        dest: /etc/app/app.conf
        regexp: '^[0-9.]'
        ignore_hidden: yes
        delimiter: '# ---'
        mode: "0640"
    - assemble: src=parts dest=/etc/app/local.conf remote_src=no
"#;
    converge_with(
        &t,
        &[
            ("site.yml", &play(tasks)),
            ("files/parts/1", "one\n"),
            ("files/parts/2", "two\n"),
        ],
        "/etc/app",
        true,
        &["--diff"],
    );
    assert_eq!(t.root("cat /etc/app/app.conf"), "a=1\n# ---\nb=2");
    assert_eq!(t.root("stat -c %a /etc/app/app.conf").trim(), "640");
    assert_eq!(t.root("cat /etc/app/local.conf"), "one\ntwo\n");
}

#[test]
fn alternatives_register_select_and_remove() {
    let t = Target::start("t");
    t.root(
        "for v in a b c; do printf '#!/bin/sh\\necho %s\\n' $v > /usr/local/bin/kiln-$v && chmod 755 /usr/local/bin/kiln-$v; done \
         && update-alternatives --install /usr/local/bin/kiln-tool kiln-tool /usr/local/bin/kiln-c 5 >/dev/null",
    );
    let tasks = r#"
    - alternatives: name=kiln-tool path=/usr/local/bin/kiln-a link=/usr/local/bin/kiln-tool priority=10 state=present
    - alternatives: name=kiln-tool path=/usr/local/bin/kiln-b priority=20
    - alternatives: name=kiln-tool path=/usr/local/bin/kiln-c state=absent
"#;
    converge(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc/alternatives /var/lib/dpkg/alternatives /usr/local/bin",
        true,
    );
    assert_eq!(t.root("/usr/local/bin/kiln-tool").trim(), "b");
    let query = t.root("update-alternatives --query kiln-tool");
    assert!(query.contains("Status: manual"), "{query}");
    assert!(
        query.contains("Alternative: /usr/local/bin/kiln-a\nPriority: 10"),
        "{query}"
    );
    assert!(!query.contains("kiln-c"), "{query}");

    let tasks = "    - alternatives: name=kiln-tool state=auto\n";
    converge(&t, &[("site.yml", &play(tasks))], "/etc/alternatives", true);
    assert!(t
        .root("update-alternatives --query kiln-tool")
        .contains("Status: auto"));
}

#[test]
fn timezone_links_localtime_and_names_the_zone() {
    let t = Target::start("t");
    let tasks = r#"
    - timezone: name=Europe/Berlin
    - timezone: name=../../etc/passwd
      register: bad
      ignore_errors: yes
    - timezone: name=Mars/Olympus_Mons
      register: unknown
      ignore_errors: yes
    - assert:
        that:
          - bad is failed
          - unknown is failed
"#;
    converge_with(&t, &[("site.yml", &play(tasks))], "/etc", true, &["--diff"]);
    assert_eq!(
        t.root("readlink /etc/localtime").trim(),
        "/usr/share/zoneinfo/Europe/Berlin"
    );
    assert_eq!(t.root("cat /etc/timezone"), "Europe/Berlin\n");
    assert_eq!(t.root("date +%Z -d 2026-01-15").trim(), "CET");
}

#[test]
fn deb822_repository_writes_the_file_ansible_writes() {
    let t = Target::start("t");
    let tasks = r#"
    - deb822_repository:
        name: kiln test_archive
        uris: http://deb.example.org/debian
        suites: [bookworm, bookworm-updates]
        components: [main, contrib]
        date_max_future: 10
        enabled: yes
      register: repo
    - assert:
        that:
          - repo.dest == '/etc/apt/sources.list.d/kiln-test-archive.sources'
          - repo.repo is search('Date-Max-Future: 10')
"#;
    converge(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc/apt/sources.list.d",
        true,
    );
    // Options sorted by name, as ansible-core's module writes them through python-debian.
    assert_eq!(
        t.root("cat /etc/apt/sources.list.d/kiln-test-archive.sources"),
        "Components: main contrib\nDate-Max-Future: 10\nEnabled: yes\nX-Repolib-Name: kiln test_archive\nSuites: bookworm bookworm-updates\nTypes: deb\nURIs: http://deb.example.org/debian\n"
    );
}
