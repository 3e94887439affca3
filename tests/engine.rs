//! The engine against real targets: variable precedence, facts, handlers, includes, tags,
//! serial/run_once/delegate_to, retries, cross-play state, and the CLI's listing modes.

mod support;

use support::{inventory, playbook, project, run_on, Target};

#[test]
fn variable_precedence_follows_ansible() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  vars:
    from_play: play
    overridden_by_vars_file: play
    overridden_by_task: play
  vars_files: [vars/main.yml]
  roles:
    - role: r
  tasks:
    - set_fact:
        from_set_fact: set_fact
        overridden_by_extra: set_fact
    - copy:
        dest: /tmp/vars
        content: |
          default={{ role_default }}
          group={{ from_group }}
          host={{ from_host }}
          play={{ from_play }}
          vars_file={{ overridden_by_vars_file }}
          role_var={{ role_var }}
          task={{ overridden_by_task }}
          set_fact={{ from_set_fact }}
          extra={{ overridden_by_extra }}
          lazy={{ lazy }}
      vars:
        overridden_by_task: task
        lazy: "{{ from_play }}-{{ from_host }}"
"#;
    let (_dir, run) = run_on(
        &[&t],
        &[
            ("site.yml", site),
            ("vars/main.yml", "overridden_by_vars_file: vars_file\n"),
            (
                "group_vars/web.yml",
                "from_group: group\nfrom_host: group\nrole_default: group\n",
            ),
            ("host_vars/web1/main.yml", "from_host: host\n"),
            (
                "roles/r/defaults/main.yml",
                "role_default: default\nrole_only_default: d\n",
            ),
            ("roles/r/vars/main.yml", "role_var: role_var\n"),
            (
                "roles/r/tasks/main.yml",
                "- debug: msg={{ role_only_default }}\n",
            ),
        ],
        &["-e", "overridden_by_extra=extra"],
    );
    run.assert_ok();
    assert_eq!(
        t.root("cat /tmp/vars"),
        "default=group\ngroup=group\nhost=host\nplay=play\nvars_file=vars_file\nrole_var=role_var\ntask=task\nset_fact=set_fact\nextra=extra\nlazy=play-host\n"
    );
}

#[test]
fn facts_in_one_round_trip_and_magic_variables() {
    let a = Target::start("web1");
    let b = Target::start("web2");
    // Targets share this machine's kernel, so they see its online CPUs.
    let cpus = String::from_utf8_lossy(
        &std::process::Command::new("nproc")
            .arg("--all")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let site = r#"- hosts: web
  tasks:
    - assert:
        that:
          - ansible_facts.distribution == 'Debian'
          - ansible_distribution_major_version == '12'
          - ansible_distribution_release == 'bookworm'
          - ansible_os_family == 'Debian'
          - ansible_pkg_mgr == 'apt'
          - ansible_processor_vcpus == CPUS
          - ansible_memtotal_mb > 0
          - ansible_user_id == 'kiln'
          - ansible_virtualization_role in ['guest', 'host', 'NA']
          - ansible_virtualization_type is string and ansible_virtualization_type | length > 0
          - ansible_virtualization_tech_guest is sequence
          - ansible_kernel_version is string and ansible_kernel_version | length > 0
          - ansible_distribution_file_variety == 'Debian'
          - inventory_hostname in groups['web']
          - group_names == ['web']
          - ansible_play_hosts | length == 2
          - hostvars['web2']['ansible_host'] is defined
          - hostvars[groups['web'][0]].ansible_hostname == 'target'
"#
    .replace("CPUS", &cpus);
    let (dir, run) = run_on(
        &[&a, &b],
        &[("site.yml", &site)],
        &["--json-events", "events.jsonl"],
    );
    run.assert_ok();
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let facts_event = events
        .lines()
        .find(|l| l.contains("\"task\":\"Gathering Facts\"") && l.contains("host_result"))
        .expect("fact event");
    assert!(
        facts_event.contains("\"round_trips\":1"),
        "facts take one round trip: {facts_event}"
    );
}

#[test]
fn facts_are_gathered_with_the_plays_become() {
    let t = Target::start("web1");
    let site = "- hosts: web\n  become: yes\n  tasks:\n    - assert:\n        that: ansible_user_id == 'root' and ansible_env.HOME == '/root'\n";
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
}

#[test]
fn handlers_listen_flush_and_run_once_each() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  become: yes
  tasks:
    - copy: content=a dest=/tmp/a
      notify: [restart app, restart app]
    - copy: content=b dest=/tmp/b
      notify: web changed
    - meta: flush_handlers
    - shell: cat /tmp/handled
      register: after_flush
      changed_when: false
    - assert:
        that: after_flush.stdout_lines == ['app', 'listener', 'second listener']
  handlers:
    - name: restart app
      shell: echo app >> /tmp/handled
    - name: never notified
      shell: echo never >> /tmp/handled
    - name: on web change
      listen: web changed
      shell: echo listener >> /tmp/handled
    # Every handler listening to a topic runs, not just the first (a skipped one included).
    - name: skipped listener
      listen: web changed
      shell: echo skipped >> /tmp/handled
      when: false
    - name: second listener
      listen: web changed
      shell: echo second listener >> /tmp/handled
"#;
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
    assert_eq!(
        t.root("cat /tmp/handled"),
        "app\nlistener\nsecond listener\n"
    );
}

#[test]
fn includes_imports_blocks_and_loops() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  become: yes
  tasks:
    - import_tasks: tasks/imported.yml
      when: true
    - include_tasks: tasks/per_item.yml
      loop: [one, two]
      loop_control:
        loop_var: name
    - include_role:
        name: r
        tasks_from: extra
    - block:
        - command: "false"
        - copy: content=unreachable dest=/tmp/never
      rescue:
        - copy: content=rescued dest=/tmp/rescued
      always:
        - copy: content=always dest=/tmp/always
      when: inventory_hostname == 'web1'
    - copy: content={{ item.key }}={{ item.value }} dest=/tmp/dict-{{ item.key }}
      with_dict: {x: 1}
    - copy: content={{ item }} dest=/tmp/items-{{ item }}
      with_items: [[p, q], r]
"#;
    let (_dir, run) = run_on(
        &[&t],
        &[
            ("site.yml", site),
            (
                "tasks/imported.yml",
                "- copy: content=imported dest=/tmp/imported\n",
            ),
            (
                "tasks/per_item.yml",
                "- copy: content={{ name }} dest=/tmp/item-{{ name }}\n",
            ),
            (
                "roles/r/tasks/extra.yml",
                "- copy: content={{ role_name }} dest=/tmp/from-role\n",
            ),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.recap("web1", "rescued"), 1);
    assert_eq!(
        t.root(
            "cat /tmp/imported /tmp/item-one /tmp/item-two /tmp/from-role /tmp/rescued /tmp/always"
        ),
        "importedonetworrescuedalways"
    );
    assert!(!t.check("test -e /tmp/never"));
    assert_eq!(t.root("cat /tmp/dict-x"), "x=1");
    assert_eq!(
        t.root("ls /tmp | grep -c items-").trim(),
        "3",
        "with_items flattens one level"
    );
    assert!(run.stdout.contains("included: "), "{}", run.stdout);
}

#[test]
fn tags_serial_run_once_delegate_and_retries() {
    let a = Target::start("web1");
    let b = Target::start("web2");
    let site = r#"- hosts: web
  gather_facts: no
  serial: 1
  tasks:
    - copy: content=tagged dest=/tmp/tagged
      tags: [deploy]
    - copy: content=untagged dest=/tmp/untagged
    - copy: content=always dest=/tmp/always
      tags: [always]
    - copy: content=never dest=/tmp/never
      tags: [never]
    - command: hostname
      run_once: true
      register: once
      tags: [deploy]
    - shell: echo {{ inventory_hostname }} >> {{ local_log }}
      delegate_to: localhost
      tags: [deploy]
    - shell: n=$(cat /tmp/count 2>/dev/null || echo 0); echo $((n+1)) > /tmp/count; cat /tmp/count
      register: counter
      until: counter.stdout | int >= 3
      retries: 5
      delay: 0
      tags: [deploy]
"#;
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().display().to_string();
    let (_dir, run) = run_on(
        &[&a, &b],
        &[("site.yml", site)],
        &["--tags", "deploy", "-e", &format!("local_log={log_path}")],
    );
    run.assert_ok();
    for t in [&a, &b] {
        assert!(t.check("test -f /tmp/tagged && test -f /tmp/always"));
        assert!(!t.check("test -e /tmp/untagged || test -e /tmp/never"));
        assert_eq!(t.root("cat /tmp/count"), "3\n");
    }
    // serial: 1 runs web1's batch before web2's.
    assert_eq!(std::fs::read_to_string(log.path()).unwrap(), "web1\nweb2\n");
    let plays = run.stdout.matches("TASK [command]").count();
    assert_eq!(plays, 2, "one run_once task per batch:\n{}", run.stdout);
}

#[test]
fn state_crosses_plays_and_imported_playbooks() {
    let t = Target::start("web1");
    let site = "- hosts: web\n  gather_facts: no\n  tasks:\n    - set_fact: token=abc\n    - command: echo hi\n      register: greeting\n- import_playbook: second.yml\n";
    let second = "- hosts: web\n  gather_facts: no\n  tasks:\n    - copy: content='{{ token }} {{ greeting.stdout }}' dest=/tmp/cross\n";
    let (_dir, run) = run_on(&[&t], &[("site.yml", site), ("second.yml", second)], &[]);
    run.assert_ok();
    assert_eq!(t.root("cat /tmp/cross"), "abc hi");
}

#[test]
fn a_failed_host_sits_out_the_later_plays() {
    let a = Target::start("web1");
    let b = Target::start("web2");
    let site = "- hosts: web\n  gather_facts: no\n  tasks:\n    - fail: msg=broken\n      when: inventory_hostname == 'web1'\n- hosts: web\n  gather_facts: no\n  tasks:\n    - copy: content=x dest=/tmp/second-play\n";
    let (_dir, run) = run_on(&[&a, &b], &[("site.yml", site)], &[]);
    assert_eq!(run.code, 2);
    assert!(!a.check("test -e /tmp/second-play"));
    assert!(b.check("test -e /tmp/second-play"));
}

#[test]
fn become_user_environment_and_include_vars() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - include_vars: settings.yml
    - shell: echo "$(id -un) $GREETING {{ colour }}" > /tmp/who-$(id -un)
      become: yes
      become_user: "{{ run_as }}"
      environment:
        GREETING: hello
"#;
    let (_dir, run) = run_on(
        &[&t],
        &[
            ("site.yml", site),
            ("vars/settings.yml", "colour: blue\nrun_as: nobody\n"),
        ],
        &[],
    );
    run.assert_ok();
    assert_eq!(t.root("cat /tmp/who-nobody"), "nobody hello blue\n");
}

#[test]
fn listing_modes_and_start_at_task() {
    let t = Target::start("web1");
    let site = "- hosts: web\n  gather_facts: no\n  tasks:\n    - name: first\n      copy: content=1 dest=/tmp/first\n      tags: [a]\n    - name: second\n      copy: content=2 dest=/tmp/second\n";
    let (dir, run) = run_on(&[&t], &[("site.yml", site)], &["--list-tasks"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("first\tTAGS: [a]") && run.stdout.contains("second\tTAGS: []"),
        "{}",
        run.stdout
    );
    let inv = dir.path().join("hosts");
    let hosts = playbook(
        dir.path(),
        &["-i", inv.to_str().unwrap(), "--list-hosts", "site.yml"],
    );
    assert!(
        hosts.stdout.contains("hosts (1):\n      web1"),
        "{}",
        hosts.stdout
    );
    let syntax = playbook(dir.path(), &["--syntax-check", "site.yml"]);
    syntax.assert_ok();
    let started = playbook(
        dir.path(),
        &[
            "-i",
            inv.to_str().unwrap(),
            "--start-at-task",
            "second",
            "site.yml",
        ],
    );
    started.assert_ok();
    assert!(!t.check("test -e /tmp/first"));
    assert!(t.check("test -e /tmp/second"));
}

#[test]
fn inventory_list_and_graph() {
    let dir = project(&[
        ("inv/hosts.yml", "all:\n  children:\n    web:\n      hosts:\n        web[1:2]:\n          http_port: 80\n    db:\n      hosts:\n        db1:\n"),
        ("inv/group_vars/web/main.yml", "role: frontend\n"),
    ]);
    let run = support::run_kiln(
        &support::kiln(),
        dir.path(),
        &["inventory", "-i", "inv", "--list"],
        &[],
    );
    run.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["web"]["hosts"], serde_json::json!(["web1", "web2"]));
    assert_eq!(json["_meta"]["hostvars"]["web2"]["role"], "frontend");
    assert_eq!(json["_meta"]["hostvars"]["web1"]["http_port"], 80);
    let graph = support::run_kiln(
        &support::kiln(),
        dir.path(),
        &["inventory", "-i", "inv", "--graph"],
        &[],
    );
    assert!(
        graph.stdout.starts_with("@all:\n  |--@ungrouped:")
            || graph
                .stdout
                .contains("  |--@web:\n  |  |--web1\n  |  |--web2\n"),
        "{}",
        graph.stdout
    );
}

/// kiln asks sshd for what it computes in OpenSSL's optimised code (ECDH P-256, an ECDSA host
/// key, AES-GCM) rather than OpenSSH's reference curve25519 and Ed25519: the server's CPU per
/// connection is most of a fleet run's time.
#[test]
fn ssh_negotiates_what_is_cheap_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_key");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let t = Target::start_with("t", Some(&key), "DEBUG1");
    support::run_play(
        &t,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    )
    .assert_ok();
    let log = t.log();
    for negotiated in [
        "kex: algorithm: ecdh-sha2-nistp256",
        "kex: host key algorithm: ecdsa-sha2-nistp256",
        "cipher: aes128-gcm@openssh.com",
    ] {
        assert!(
            log.contains(negotiated),
            "no '{negotiated}' in sshd's log:\n{log}"
        );
    }
}

#[test]
fn an_undefined_loop_is_skipped_when_its_condition_is_false() {
    let t = Target::start("web1");
    // A play whose first task loops over bob's undefined keys under `when`, then `rest`.
    let site = |when: &str, rest: &str| {
        format!(
            r#"- hosts: web
  gather_facts: no
  vars:
    users:
      - name: alice
        keys_list: [k1, k2]
      - name: bob
  tasks:
    - debug: msg="{{{{ item }}}}"
      loop: "{{{{ u.keys_list }}}}"
      when: {when}
      vars:
        u: "{{{{ users[1] }}}}"
      register: bob_keys
{rest}"#
        )
    };
    let rest = r#"    - include_tasks: keys.yml
      loop: "{{ u.keys_list }}"
      when: u.keys_list is defined
      vars:
        u: "{{ users[1] }}"
    - assert:
        that:
          - bob_keys is skipped
          - bob_keys.skip_reason == "Conditional result was False"
          - bob_keys.results is not defined
"#;
    let skipping = site("u.keys_list is defined", rest);
    let files = [
        ("site.yml", skipping.as_str()),
        ("keys.yml", "- fail: msg=included\n"),
    ];
    let (_dir, run) = run_on(&[&t], &files, &[]);
    // keys.yml fails if it is included; the skipped debug and include count once each.
    run.assert_ok();
    assert_eq!(run.recap("web1", "skipped"), 2, "{}", run.stdout);
    assert_eq!(run.recap("web1", "ok"), 1, "{}", run.stdout);

    // A true condition reports the loop's error.
    let failing = site("u.name == 'bob'", "");
    let (_dir, run) = run_on(&[&t], &[("site.yml", failing.as_str())], &[]);
    assert_eq!(run.recap("web1", "failed"), 1, "{}", run.stdout);
    assert!(run.stdout.contains("u.keys_list"), "{}", run.stdout);
}

/// The `connection:` keyword: a play (or task) with `connection: local` runs on the
/// controller even for an inventory host reached over SSH, the next play reaches the same
/// host over SSH again, and a host's `ansible_connection` overrides the keyword.
#[test]
fn the_connection_keyword_runs_a_play_or_task_locally() {
    let t = Target::start("t");
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("ran-locally");
    let site = format!(
        "- hosts: all\n  gather_facts: no\n  connection: local\n  tasks:\n    - copy: content=x dest={marker}\n- hosts: all\n  gather_facts: no\n  tasks:\n    - command: hostname\n      register: remote\n    - assert: {{that: \"remote.stdout == 'target'\"}}\n    - command: hostname\n      connection: local\n      register: here\n    - assert: {{that: \"here.stdout != 'target'\"}}\n",
        marker = marker.display()
    );
    let dir = support::project(&[("site.yml", &site)]);
    let inv = support::inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().unwrap();
    support::playbook(dir.path(), &["-i", inv, "site.yml"]).assert_ok();
    assert!(marker.exists(), "the local play wrote on the controller");
    assert!(!t.check(&format!("test -e {}", marker.display())));
}

/// A notified handler runs after a later failure when forced (play keyword, flag, or
/// environment), and a handler may be an `include_tasks`; unforced, a failed host drops its
/// notifications without warning that the handler does not exist.
#[test]
fn forced_handlers_run_after_a_failure_and_may_include_tasks() {
    let t = Target::start("web1");
    let play = |force: &str| {
        format!(
            "- hosts: web\n  gather_facts: no\n{force}  tasks:\n    - command: /bin/true\n      notify: clean up\n    - fail: msg=boom\n  handlers:\n    - name: clean up\n      include_tasks: cleanup.yml\n"
        )
    };
    let cleanup = "- shell: echo cleaned >> /tmp/handled\n";
    let forced_play = play("  force_handlers: true\n");
    let (_dir, run) = run_on(
        &[&t],
        &[("site.yml", &forced_play), ("cleanup.yml", cleanup)],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(t.root("cat /tmp/handled"), "cleaned\n", "{}", run.stdout);

    let plain_play = play("");
    let files = [("site.yml", plain_play.as_str()), ("cleanup.yml", cleanup)];
    let (_dir, run) = run_on(&[&t], &files, &["--force-handlers"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(t.root("cat /tmp/handled"), "cleaned\ncleaned\n");

    let dir = project(&files);
    let inv = inventory(dir.path(), "web", &[&t]);
    let args = ["playbook", "-i", inv.to_str().unwrap(), "site.yml"];
    let env = [
        ("ANSIBLE_HOST_KEY_CHECKING", "false"),
        ("ANSIBLE_FORCE_HANDLERS", "true"),
    ];
    let run = support::run_kiln(&support::kiln(), dir.path(), &args, &env);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(t.root("cat /tmp/handled"), "cleaned\ncleaned\ncleaned\n");

    let (_dir, run) = run_on(&[&t], &files, &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(t.root("cat /tmp/handled"), "cleaned\ncleaned\ncleaned\n");
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(!output.contains("no handler by that name"), "{output}");
}

/// The recap counts as Ansible's: a skipped include and an empty loop are skipped once, a
/// loop with some items skipped is ok once, an ignored failure that changed is changed; and
/// `failed_when` sees the module's own result, `failed` included (also when false).
#[test]
fn recap_counts_and_registered_results_follow_ansible() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  vars:
    a_var: one
  tasks:
    - include_tasks: never.yml
      when: false
    - include_tasks: never.yml
      loop: []
    - debug: msg={{ item }}
      loop: [1, 2, 3]
      when: item != 2
    - command: /bin/false
      ignore_errors: true
    - command: /bin/true
      register: fine
    - assert: {that: a_var != "one"}
      register: result
      failed_when: result is not failed or result.msg is not contains("Assertion failed")
    - assert:
        that: fine.failed is defined and not fine.failed
    - name: empty loop
      debug: msg={{ item }}
      loop: []
    - name: all items skipped
      debug: msg={{ item }}
      loop: [1, 2]
      when: item > 5
"#;
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
    // As ansible-playbook, a loop that ran no item ends with the host's own skipping line.
    for task in ["empty loop", "all items skipped"] {
        let section = run
            .stdout
            .split("TASK [")
            .find(|s| s.starts_with(task))
            .unwrap_or_default();
        assert!(
            section.lines().any(|l| l == "skipping: [web1]"),
            "{task}:\n{}",
            run.stdout
        );
    }
    for (counter, expected) in [
        ("ok", 5),
        ("changed", 2),
        ("skipped", 4),
        ("ignored", 1),
        ("failed", 0),
    ] {
        assert_eq!(
            run.recap("web1", counter),
            expected,
            "{counter}:\n{}",
            run.stdout
        );
    }
}

/// Every module ansible-core ships is known by name: one kiln has no native version of loads
/// (a Debian run is not stopped by an `rpm_key` task meant for other hosts), and only a host
/// that reaches it runs it (through Python, see tests/python_modules.rs) or, for one Ansible
/// carries out on the controller, fails saying so.
#[test]
fn ansible_modules_kiln_lacks_load_and_fail_only_where_reached() {
    let t = Target::start("t");
    let site = r#"- hosts: all
  become: yes
  tasks:
    - ansible.builtin.rpm_key:
        key: https://example.com/RPM-GPG-KEY
      when: ansible_facts.os_family == 'RedHat'
    - copy: content=x dest=/tmp/after-rpm-key
"#;
    support::run_play(&t, site).assert_ok();
    assert!(t.check("test -e /tmp/after-rpm-key"));

    let reached = support::run_play(&t, &support::play("    - set_stats: aggregate=no\n"));
    assert_eq!(reached.code, 2, "{}", reached.stdout);
    assert!(
        reached
            .stdout
            .contains("'set_stats' is carried out by an Ansible action plugin"),
        "{}",
        reached.stdout
    );
}

/// `action: "{{ ... }}"` names the module through a variable, resolved when the task runs;
/// the templated module follows the module protocol (check, change, then no change).
#[test]
fn a_templated_action_is_resolved_when_the_task_runs() {
    let t = Target::start("t");
    let tasks = r#"    - action: "{{ writer }}"
      args:
        content: templated
        dest: /tmp/templated-action
      vars:
        writer: ansible.builtin.copy
    - action: "{{ 'debug' }} msg={{ writer | default('no writer') }}"
      register: said
    - assert:
        that: said.msg == 'no writer'
"#;
    support::converge(&t, &[("site.yml", &support::play(tasks))], "/tmp", true);
    assert_eq!(t.root("cat /tmp/templated-action"), "templated");
}

#[test]
fn every_with_lookup_loops_over_that_lookup() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  vars:
    users:
      - name: alice
        auth: {pubkeys: [a1, a2], shell: /bin/sh}
      - name: bob
        auth: {pubkeys: [], shell: /bin/sh}
    qz_1: one
    qz_2: two
  tasks:
    - set_fact: "{{ item }}=moo"
      with_items: [foo, [bar]]
    - set_fact: "line_{{ item }}=seen"
      with_lines: printf 'l1\nl2\n'
    - debug:
        msg: "{{ item.0.name ~ ':' ~ item.1 ~ ':' ~ (item.0.auth.pubkeys is defined) }}"
      with_subelements: [ "{{ users }}", auth.pubkeys ]
      register: pairs
    - debug: msg="{{ item }}"
      with_sequence: 2-6/2:web%02d
      register: seq
    - debug: msg="{{ item.key }}"
      with_dict: {a: 1, b: 2}
      register: dict_keys
    - set_fact:
        found: "{{ lookup('varnames', '^qz_.+', wantlist=True) | sort }}"
    - assert:
        that:
          - foo == 'moo' and bar == 'moo'
          - line_l1 == 'seen' and line_l2 == 'seen'
          - pairs.results | map(attribute='msg') | list == ['alice:a1:False', 'alice:a2:False']
          - seq.results | map(attribute='msg') | list == ['web02', 'web04', 'web06']
          - dict_keys.results | map(attribute='msg') | list == ['a', 'b']
          - found == ['qz_1', 'qz_2']
    - debug: msg="{{ item }}"
      with_no_such_lookup: [1]
"#;
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    assert_eq!(run.recap("web1", "ok"), 7, "{}", run.stdout);
    // A lookup kiln does not have fails the task that loops over it, not the whole load.
    assert_eq!(run.recap("web1", "failed"), 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("lookup plugin 'no_such_lookup' is not supported"),
        "{}",
        run.stdout
    );
}

/// `add_host` and `group_by` change the inventory at once (the next task, the next loop item
/// and later plays see it) and report changed only when it moved; `pause` waits; a free-form
/// template that gives a mapping is the task's arguments.
#[test]
fn add_host_group_by_and_pause_change_the_run() {
    let t = Target::start("web1");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - add_host:
        name: "extra_{{ item }}"
        groups: [dynamic]
        ansible_host: "{{ hostvars['web1'].ansible_host }}"
        ansible_user: "{{ hostvars['web1'].ansible_user }}"
        ansible_ssh_private_key_file: "{{ hostvars['web1'].ansible_ssh_private_key_file }}"
        from_add_host: yes
      loop: [1, 1]
      register: added
    - add_host: "{{ {'name': '10.9.9.9:2222'} }}"
      register: with_port
    - group_by:
        key: "os {{ 'debian' }}"
      register: grouped
    - group_by:
        key: "os debian"
      register: grouped_again
    - pause:
        seconds: 1
      register: paused
    - assert:
        that:
          - added.results[0] is changed
          - added.results[1] is not changed
          - "'extra_1' in groups['dynamic']"
          - hostvars['extra_1'].from_add_host
          - "'dynamic' in hostvars['extra_1'].group_names"
          - with_port.add_host.host_name == '10.9.9.9'
          - with_port.add_host.host_vars.ansible_ssh_port == 2222
          - grouped is changed and grouped.add_group == 'os-debian'
          - grouped_again is not changed
          - "'os-debian' in group_names"
          - paused.stdout is defined
- hosts: dynamic
  gather_facts: no
  tasks:
    - command: hostname
      register: where
    - assert:
        that:
          - inventory_hostname == 'extra_1'
          - where.rc == 0
- hosts: os-debian
  gather_facts: no
  tasks:
    - debug: msg=grouped
"#;
    let started = std::time::Instant::now();
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(run.recap("extra_1", "ok"), 2, "{}", run.stdout);
    assert_eq!(run.recap("web1", "ok"), 7, "{}", run.stdout);
}

/// Literal loop items are playbook data, so `assert: "{{ item }}"` evaluates them (what a
/// template produced inside them stays data); a conditional that fails to evaluate leaves
/// its error in `changed_when_result`/`failed_when_result`.
#[test]
fn literal_loop_items_are_trusted_and_conditional_errors_are_registered() {
    let t = Target::start("t");
    let tasks = r#"    - assert: "{{ item }}"
      loop:
        - that: 1 == 1
        - that: ["2 == 2", "{{ 1 == 1 }}"]
    - assert: "{{ item }}"
      loop:
        - that: "{{ '1 == 1' }}"
      register: templated
      ignore_errors: yes
    - command: echo foo
      changed_when: boomboomboom
      register: bad_changed
      ignore_errors: yes
    - command: echo foo
      failed_when: boomboomboom
      register: bad_failed
      ignore_errors: yes
    - assert:
        that:
          - templated is failed
          - templated.results[0].msg is contains('untrusted')
          - bad_changed is failed and bad_changed.stdout == 'foo'
          - bad_changed.changed_when_result is contains('boomboomboom')
          - bad_failed.failed_when_result is contains('boomboomboom')
"#;
    let run = support::run_play(&t, &support::play(tasks));
    run.assert_ok();
    assert_eq!(run.recap("t", "ignored"), 3, "{}", run.stdout);
}

/// A `rescue` sees the failed task and its result as `ansible_failed_task` and
/// `ansible_failed_result`; lookups fail with ansible-core's messages, and a lookup giving
/// several non-string values gives them as a list.
#[test]
fn rescue_sees_the_failure_and_lookups_fail_as_ansible_does() {
    let t = Target::start("t");
    let tasks = r#"    - block:
        - name: bad sequence
          debug: msg="{{ item }}"
          with_sequence: start=0 junk=3
      rescue:
        - assert:
            that:
              - ansible_failed_task.name == 'bad sequence'
              - ansible_failed_result.msg is contains "unrecognized arguments to with_sequence"
    - block:
        - name: empty together
          debug: msg="{{ item }}"
          with_together: []
      rescue:
        - assert:
            that:
              - ansible_failed_task.name == 'empty together'
              - ansible_failed_result.msg is contains "requires at least one element"
    - set_fact:
        pairs: "{{ lookup('dict', {'a': 1, 'b': 2}) | sort(attribute='key') }}"
    - assert:
        that:
          - pairs | length == 2
          - pairs[1].value == 2
"#;
    let run = support::run_play(&t, &support::play(tasks));
    run.assert_ok();
    assert_eq!(run.recap("t", "rescued"), 2, "{}", run.stdout);
}
