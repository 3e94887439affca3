//! Modules kiln runs natively by driving a tool of the target's (dpkg-divert, iptables, ufw,
//! locale-gen, the archivers), each against a real target with the module protocol (check
//! mode changes nothing, a real run changes, a second run reports `changed=0`). Firewall
//! targets live in network namespaces of their own.

mod support;

use support::{converge, converge_with, play, Target};

#[test]
fn dpkg_divert_adds_changes_and_removes_diversions() {
    let t = Target::start("t");
    t.root(
        "printf 'kiln\\n' > /etc/kiln.conf && printf 'x' > /etc/kiln-other.conf && printf 'y' > /etc/kiln-other.conf.distrib \
         && touch /usr/local/bin/kiln-tool && dpkg-divert --local --add /etc/kiln-gone \
         && dpkg-divert --local --divert /etc/kiln-moved.old --add /etc/kiln-moved",
    );
    let tasks = r#"
    - dpkg_divert: path=/etc/kiln.conf rename=yes
      register: conf
    - dpkg_divert: path=/usr/local/bin/kiln-tool divert=/usr/local/bin/kiln-tool.real
    - dpkg_divert: path=/etc/kiln-gone state=absent
      register: gone
    - dpkg_divert: path=/etc/kiln-moved divert=/etc/kiln-moved.new
    - dpkg_divert: path=/etc/kiln-other.conf rename=yes force=yes
    - assert:
        that:
          - conf.diversion.holder == 'LOCAL'
          - conf.diversion.divert == '/etc/kiln.conf.distrib'
          - conf.diversion.state == 'present'
          - conf.commands[0] == '/usr/bin/dpkg-divert --rename --local --divert /etc/kiln.conf.distrib --add /etc/kiln.conf'
          - gone.diversion.state == 'absent'
          - gone.diversion.divert is none
"#;
    converge_with(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc /usr/local/bin /var/lib/dpkg/diversions",
        true,
        &["--diff"],
    );
    let list = t.root("dpkg-divert --list | grep kiln | sort");
    assert_eq!(
        list,
        "local diversion of /etc/kiln-moved to /etc/kiln-moved.new\n\
         local diversion of /etc/kiln-other.conf to /etc/kiln-other.conf.distrib\n\
         local diversion of /etc/kiln.conf to /etc/kiln.conf.distrib\n\
         local diversion of /usr/local/bin/kiln-tool to /usr/local/bin/kiln-tool.real\n"
    );
    assert_eq!(t.root("cat /etc/kiln.conf.distrib"), "kiln\n");
    assert!(!t.check("test -e /etc/kiln.conf"), "renamed away");
    assert_eq!(t.root("cat /etc/kiln-other.conf.distrib"), "x");
    assert!(t.check("test -e /usr/local/bin/kiln-tool"), "not renamed");

    // A rename onto an existing file is refused without force.
    t.root("printf a > /etc/kiln-clash && printf b > /etc/kiln-clash.distrib");
    let refused = support::run_play(
        &t,
        &play("    - dpkg_divert: path=/etc/kiln-clash rename=yes\n"),
    );
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stdout.contains("force"), "{}", refused.stdout);
}

/// The firewall's rules, both families, as `-S` lists them.
fn rules(t: &Target) -> String {
    t.root("iptables -S; iptables -t nat -S; ip6tables -S")
}

#[test]
fn iptables_rules_policies_and_chains_converge() {
    let (t, _netns) = Target::start_with_tools("t");
    t.root("iptables -A OUTPUT -s 10.1.1.1/32 -j DROP");
    let tasks = r#"
    - iptables: chain=INPUT protocol=tcp destination_port=22 ctstate=NEW,ESTABLISHED jump=ACCEPT comment="ssh in"
      register: ssh
    - iptables:
        chain: INPUT
        protocol: tcp
        destination_ports: [80, "443"]
        jump: ACCEPT
        action: insert
        rule_num: 1
    - iptables: chain=KILN chain_management=yes
    - iptables: chain=KILN source=!10.9.0.0/16 jump=RETURN
    - iptables: chain=FORWARD policy=DROP
    - iptables: table=nat chain=POSTROUTING out_interface=eth9 jump=MASQUERADE
    - iptables: chain=INPUT protocol=udp destination_port=53 jump=ACCEPT ip_version=ipv6
    - iptables: chain=OUTPUT source=10.1.1.1 jump=DROP state=absent
      register: dropped
    - assert:
        that:
          - ssh.rule == '-p tcp -j ACCEPT --destination-port 22 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment ssh in'
          - ssh.table == 'filter'
          - ssh.chain == 'INPUT'
          - ssh.state == 'present'
          - dropped.rule == '-s 10.1.1.1 -j DROP'
"#;
    let before = rules(&t);
    let dir = support::project(&[("site.yml", &play(tasks))]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let check = support::playbook(
        dir.path(),
        &["-i", inv.to_str().unwrap(), "--check", "site.yml"],
    );
    check.assert_ok();
    assert!(check.recap("t", "changed") >= 7, "{}", check.stdout);
    assert_eq!(rules(&t), before, "check mode changed the rules");

    converge(&t, &[("site.yml", &play(tasks))], "/etc", true);
    let after = rules(&t);
    for rule in [
        "-P FORWARD DROP",
        "-N KILN",
        "-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment \"ssh in\" -j ACCEPT",
        "-A KILN ! -s 10.9.0.0/16 -j RETURN",
        "-A POSTROUTING -o eth9 -j MASQUERADE",
        "-A INPUT -p udp -m udp --dport 53 -j ACCEPT",
    ] {
        assert!(after.contains(rule), "no '{rule}' in:\n{after}");
    }
    assert!(!after.contains("10.1.1.1"), "{after}");

    // Flushing a chain, then removing it.
    let tasks = r#"
    - iptables: chain=KILN flush=yes
      register: flushed
    - iptables: chain=KILN chain_management=yes state=absent
    - iptables: chain=NOPE jump=ACCEPT protocol=tcp
      register: missing
      ignore_errors: yes
    - assert:
        that:
          - flushed is changed
          - missing is failed
"#;
    support::run_play(&t, &play(tasks)).assert_ok();
    assert!(!rules(&t).contains("KILN"), "{}", rules(&t));
}

#[test]
fn ufw_rules_defaults_and_state_converge() {
    let (t, _netns) = Target::start_with_tools("t");
    // ufw refuses to insert at a position past its last rule, also in a dry run.
    t.root("ufw allow 2200/tcp");
    let tasks = r#"
    - ufw: rule=allow port=22 proto=tcp
    - ufw: state=enabled policy=deny
      register: enabled
    - ufw: rule=limit port=2222 proto=tcp from_ip=10.0.0.0/8 comment="rate limited"
    - ufw: rule=allow direction=in interface=lo
    - ufw: logging=medium
    - ufw: rule=allow port=8080 proto=tcp from_ip=10.0.0.0/8 insert=1
    - assert:
        that:
          - ansible_check_mode or 'Status: active' in enabled.msg
          - enabled.commands[0] is search('ufw status verbose$')
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/etc/ufw", true);
    let status = t.root("ufw status verbose");
    assert!(status.contains("Status: active"), "{status}");
    assert!(status.contains("Logging: on (medium)"), "{status}");
    assert!(status.contains("Default: deny (incoming)"), "{status}");
    let numbered = t.root("ufw status numbered");
    assert!(numbered.contains("[ 1] 8080/tcp"), "{numbered}");
    assert!(
        numbered.lines().any(|l| l.contains("2222/tcp")
            && l.contains("LIMIT IN")
            && l.ends_with("# rate limited")),
        "{numbered}"
    );
    assert!(numbered.contains("Anywhere on lo"), "{numbered}");

    // Deleting a rule, and turning the firewall off.
    let tasks = r#"
    - ufw: rule=allow port=8080 proto=tcp from_ip=10.0.0.0/8 delete=yes
    - ufw: state=disabled
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/etc/ufw", true);
    assert!(!t
        .root("grep -h '^### tuple' /etc/ufw/user.rules")
        .contains("8080"));
    assert!(t.root("ufw status").contains("inactive"));
}

#[test]
fn locale_gen_generates_and_removes_locales() {
    let (t, _netns) = Target::start_with_tools("t");
    t.root("sed -i 's/^# *\\(nl_NL.UTF-8 \\)/\\1/' /etc/locale.gen && locale-gen >/dev/null");
    assert!(t.root("locale -a").contains("nl_NL.utf8"));
    let tasks = r#"
    - locale_gen: name=de_CH.UTF-8
      register: de
    - locale_gen:
        name: [en_US.UTF-8, fr_FR.UTF-8]
    - locale_gen: name=nl_NL.UTF-8 state=absent
    - locale_gen: name=C.UTF-8
      register: builtin
    - locale_gen: name=xx_YY.UTF-8
      register: unknown
      ignore_errors: yes
    - assert:
        that:
          - de.mechanism == 'glibc'
          - de.name == ['de_CH.UTF-8']
          - builtin is not changed
          - unknown is failed
          - "'not available on your system: xx_YY.UTF-8' in unknown.msg"
"#;
    converge(
        &t,
        &[("site.yml", &play(tasks))],
        "/etc /usr/lib/locale",
        true,
    );
    let generated = t.root("locale -a");
    for name in ["de_CH.utf8", "en_US.utf8", "fr_FR.utf8"] {
        assert!(generated.contains(name), "no {name} in {generated}");
    }
    assert!(!generated.contains("nl_NL"), "{generated}");
    let enabled = t.root("grep -v -e '^#' -e '^$' /etc/locale.gen | sort");
    assert_eq!(
        enabled,
        "de_CH.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\nfr_FR.UTF-8 UTF-8\n"
    );
}

#[test]
fn archive_packs_trees_and_compresses_files() {
    let (t, _netns) = Target::start_with_tools("t");
    t.root(
        "mkdir -p '/srv/data/sub dir' /srv/logs /srv/out && printf 'a\\n' > /srv/data/a.txt && printf 'b\\n' > '/srv/data/sub dir/b.txt' \
         && printf 'skip\\n' > /srv/data/debug.log && printf 'one\\n' > /srv/logs/one.log && printf 'two\\n' > /srv/logs/two.log \
         && printf 'three\\n' > /srv/logs/three.txt && seq 1 1000 > /srv/big.txt && printf 'bye\\n' > /srv/gone.txt",
    );
    let tasks = r#"
    - archive: path=/srv/data dest=/srv/out/data.tar.gz exclusion_patterns=*.log
      register: tgz
    - archive: path=/srv/data dest=/srv/out/data.tar.bz2 format=bz2
    - archive: path=/srv/data dest=/srv/out/data.tar.xz format=xz mode=0600
    - archive: path=/srv/data dest=/srv/out/data.zip format=zip
    - archive:
        path: /srv/logs/*
        exclude_path: /srv/logs/two.log
        dest: /srv/out/logs.tar
        format: tar
      register: logs
    - archive: path=/srv/big.txt
      register: big
    - archive: path=/srv/gone.txt dest=/srv/out/gone.txt.gz remove=yes
    - assert:
        that:
          - tgz.arcroot == '/srv/'
          - tgz.dest_state == 'archive'
          - tgz.expanded_paths == ['/srv/data']
          - logs.expanded_exclude_paths == ['/srv/logs/two.log']
          - big.dest == '/srv/big.txt.gz'
          - big.dest_state == 'compress'
          - ansible_check_mode or ('/srv/data/sub dir/b.txt' in tgz.archived and '/srv/data/debug.log' not in tgz.archived)
"#;
    converge(&t, &[("site.yml", &play(tasks))], "/srv", true);
    let list = |cmd: &str| {
        let mut v: Vec<String> = t.root(cmd).lines().map(str::to_string).collect();
        v.sort();
        v.join(" ")
    };
    assert_eq!(
        list("tar -tzf /srv/out/data.tar.gz"),
        "data/a.txt data/sub dir/ data/sub dir/b.txt"
    );
    assert_eq!(
        list("tar -tJf /srv/out/data.tar.xz"),
        "data/a.txt data/debug.log data/sub dir/ data/sub dir/b.txt"
    );
    assert_eq!(t.root("stat -c %a /srv/out/data.tar.xz"), "600\n");
    assert!(list("tar -tjf /srv/out/data.tar.bz2").contains("data/debug.log"));
    assert!(list("unzip -Z1 /srv/out/data.zip").contains("data/sub dir/b.txt"));
    assert_eq!(list("tar -tf /srv/out/logs.tar"), "one.log three.txt");
    assert_eq!(t.root("gzip -dc /srv/big.txt.gz | tail -1"), "1000\n");
    assert_eq!(t.root("gzip -dc /srv/out/gone.txt.gz"), "bye\n");
    assert!(!t.check("test -e /srv/gone.txt"));

    // A changed source file makes a new archive.
    t.root("printf 'a2\\n' >> /srv/data/a.txt");
    let again = "    - archive: path=/srv/data dest=/srv/out/data.tar.gz exclusion_patterns=*.log\n      register: r\n    - assert: {that: [r is changed]}\n";
    support::run_play(&t, &play(again)).assert_ok();
}
