//! `synchronize` against a real target with rsync: the controller's rsync reaches the
//! target's through kiln's own connection, as root through become and as the login user
//! without it. Module protocol: check mode changes nothing, a real run changes, a second run
//! reports `changed=0`.

mod support;

use support::{converge, Target};

#[test]
fn synchronize_pushes_a_tree_with_delete_and_pulls_a_file_back() {
    let t = Target::start_with_net_tools("t");
    t.root("mkdir -p /srv/www && echo old > /srv/www/stale.txt && echo hi > /etc/kiln-pull-me");
    let site = r#"
- hosts: all
  become: yes
  gather_facts: no
  tasks:
    - synchronize:
        src: site/
        dest: /srv/www/
        delete: yes
        rsync_opts: ["--exclude=skip.txt"]
      register: pushed
    - assert:
        that:
          - pushed.cmd is search('--delete-after')
          - pushed.rc == 0
    - synchronize:
        mode: pull
        src: /etc/kiln-pull-me
        dest: "{{ playbook_dir }}/pulled"
    - assert:
        that: lookup('file', playbook_dir + '/pulled') == 'hi'
      when: not ansible_check_mode
- hosts: all
  gather_facts: no
  tasks:
    - synchronize:
        src: site/sub
        dest: /home/kiln/
"#;
    let first = converge(
        &t,
        &[
            ("site.yml", site),
            ("files/site/index.html", "<h1>kiln</h1>\n"),
            ("files/site/sub/a.txt", "a\n"),
            ("files/site/skip.txt", "not sent\n"),
        ],
        "/srv /home/kiln",
        true,
    );
    assert!(first.stdout.contains("changed: [t]"), "{}", first.stdout);
    assert_eq!(t.root("cat /srv/www/index.html"), "<h1>kiln</h1>\n");
    assert_eq!(t.root("cat /srv/www/sub/a.txt"), "a\n");
    assert!(
        !t.check("test -e /srv/www/stale.txt"),
        "delete left a stale file"
    );
    assert!(
        !t.check("test -e /srv/www/skip.txt"),
        "an excluded file was sent"
    );
    // Without become, the login user's own rsync wrote the files.
    assert_eq!(
        t.root("stat -c %U /home/kiln/sub/a.txt").trim(),
        "kiln",
        "the unprivileged push did not run as the login user"
    );
}

#[test]
fn synchronize_without_rsync_on_the_target_fails_with_rsyncs_message() {
    let t = Target::start("t");
    let site = r#"
- hosts: all
  become: yes
  gather_facts: no
  tasks:
    - synchronize: {src: /etc/hostname, dest: /srv/}
      register: r
      ignore_errors: true
    - assert:
        that:
          - r is failed
          - r.rc != 0
          - r.msg | length > 0
"#;
    let run = support::run_play(&t, site);
    run.assert_ok();
    assert_eq!(run.recap("t", "ignored"), 1, "{}", run.stdout);
}
