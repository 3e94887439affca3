//! System modules on real systemd targets (systemd-nspawn containers booted from a Debian
//! rootfs): packages from a real apt repository, services under real systemd, cron, users.
//! Each module test converges, converges again with `changed=0`, and in check mode on a fresh
//! target reports the change while touching nothing. Target state is read over OpenSSH.

mod support;

use support::{converge, play, Target};

/// Paths apt changes when it installs or removes packages.
const APT_STATE: &str = "/usr/bin /usr/share/doc /etc/apt /var/lib/dpkg/info";

#[test]
fn apt_installs_from_a_real_repository() {
    let t = Target::start_systemd("t");
    let tasks = r#"
    - apt:
        name: hello
        update_cache: yes
        cache_valid_time: 3600
      register: first
    - assert:
        that: first.cache_updated or not first.changed
    - apt:
        name: [tree, kiln-demo=1.0]
        install_recommends: no
    - package: name=tree state=present
"#;
    let run = converge(&t, &[("site.yml", &play(tasks))], APT_STATE, true);
    assert!(run.stdout.contains("changed: [t]"), "{}", run.stdout);
    assert_eq!(
        t.root("dpkg-query -W -f='${Package} ${Status} ${Version}\\n' hello tree kiln-demo"),
        "hello install ok installed 2.10-3\nkiln-demo install ok installed 1.0\ntree install ok installed 2.1.0-1\n"
    );
    assert_eq!(t.root("/usr/bin/hello").trim(), "Hello, world!");
}

#[test]
fn apt_removes_purges_and_upgrades_to_latest() {
    let t = Target::start_systemd("t");
    t.root("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hello kiln-demo >/dev/null");
    let repo = format!(
        "deb [trusted=yes] http://{}:8080/updates ./",
        t.host_address()
    );
    let tasks = format!(
        r#"
    - apt: name=hello state=absent purge=yes
    - apt_repository:
        repo: "{repo}"
        filename: kiln-updates
    - apt: name=kiln-demo state=latest
"#
    );
    converge(&t, &[("site.yml", &play(&tasks))], APT_STATE, true);
    assert!(!t.check("dpkg-query -W hello"), "hello still known to dpkg");
    assert_eq!(
        t.root("cat /usr/share/kiln-demo/version").trim(),
        "2.0",
        "state=latest did not upgrade"
    );
    assert_eq!(
        t.root("cat /etc/apt/sources.list.d/kiln-updates.list"),
        format!("{repo}\n")
    );
}

#[test]
fn apt_bad_arguments_name_the_option() {
    let t = Target::start_systemd("t");
    let dir = support::project(&[(
        "site.yml",
        &play("    - apt: name=hello state=sideways\n"),
    )]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let run = support::playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("apt: value of state must be one of: present, installed"),
        "{}",
        run.stdout
    );
    let dir = support::project(&[(
        "site.yml",
        &play("    - apt: name=nonexistent-package-xyz update_cache=yes\n"),
    )]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let run = support::playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stdout.contains("Unable to locate package nonexistent-package-xyz"),
        "{}",
        run.stdout
    );
}
