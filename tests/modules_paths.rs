//! `type: path` options expand `~` and `$VARS` where the path is used: on the target (the
//! login user's, root's or the become user's home and environment) for the paths a module
//! acts on, on the controller for `src:` files; nothing in them runs as shell.

mod support;

use support::{converge, Target};

#[test]
fn target_paths_expand_for_the_login_root_and_become_users() {
    let t = Target::start("t");
    t.root("useradd --create-home --shell /bin/sh app");
    let site = r#"
- hosts: all
  gather_facts: no
  tasks:
    - copy: content="login\n" dest=~/x
    - file: path=$HOME/y state=directory
    - file: path="~/$(touch kiln-pwned)" state=touch modification_time=preserve access_time=preserve
    - file: path=/tmp/$KILN_UNSET_VARIABLE state=directory
- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - copy: content="root\n" dest=~/x
    - file: path=$HOME/y state=directory
    - file: path=$APP_DIR state=directory
      environment:
        APP_DIR: /srv/from-env
    - lineinfile: path=~app/notes line=by-root create=yes
- hosts: all
  gather_facts: no
  become: yes
  become_user: app
  tasks:
    - copy: content="app\n" dest=~/x
    - file: path=${HOME}/y state=directory
    - stat: path=~/x
      register: st
    - assert:
        that: st.stat.exists and st.stat.path == '/home/app/x'
      when: not ansible_check_mode
"#;
    converge(&t, &[("site.yml", site)], "/home /root /srv", true);
    assert_eq!(t.root("cat /home/kiln/x"), "login\n");
    assert_eq!(t.root("cat /root/x"), "root\n");
    assert_eq!(t.root("cat /home/app/x"), "app\n");
    assert_eq!(t.root("stat -c %U /home/app/x").trim(), "app");
    for home in ["/home/kiln", "/root", "/home/app"] {
        assert!(t.check(&format!("test -d {home}/y")), "{home}/y");
    }
    assert!(t.check("test -d /srv/from-env"));
    assert_eq!(t.root("cat /home/app/notes"), "by-root\n");
    assert!(
        t.check("test -d '/tmp/$KILN_UNSET_VARIABLE'"),
        "an unset variable stays as written"
    );
    assert!(
        t.check("test -f '/home/kiln/$(touch kiln-pwned)'")
            && t.root("find / -xdev -name kiln-pwned").is_empty(),
        "a command substitution in a path is a name, never run"
    );
}

#[test]
fn controller_sources_expand_on_the_controller() {
    let t = Target::start("t");
    // The test harness runs kiln with HOME set to the project directory.
    let site = r#"
- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - copy: src=$HOME/local/banner.txt dest=/etc/banner.txt
    - template: src=~/local/motd.j2 dest=/etc/motd.kiln
"#;
    converge(
        &t,
        &[
            ("site.yml", site),
            ("local/banner.txt", "from the controller\n"),
            ("local/motd.j2", "host {{ inventory_hostname }}\n"),
        ],
        "/etc",
        true,
    );
    assert_eq!(t.root("cat /etc/banner.txt"), "from the controller\n");
    assert_eq!(t.root("cat /etc/motd.kiln"), "host t\n");
}
