//! Task keywords that change how and where a task runs, against real targets: `throttle`,
//! `ignore_unreachable`, `delegate_facts`, `module_defaults`, `async`/`poll` with
//! `async_status`, `strategy: free`; and roles named as Molecule scenarios name them.

mod support;

use support::{inventory, play, playbook, project, run_on, run_play, Target};

#[test]
fn throttle_limits_the_hosts_running_a_task_at_once() {
    let targets: Vec<Target> = ["web1", "web2", "web3"]
        .iter()
        .map(|n| Target::start(n))
        .collect();
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - shell: echo start >> {{ log }}/throttled; sleep 0.4; echo end >> {{ log }}/throttled
      delegate_to: localhost
      throttle: "{{ one }}"
    - shell: echo start >> {{ log }}/free; sleep 0.4; echo end >> {{ log }}/free
      delegate_to: localhost
"#;
    let log = tempfile::tempdir().unwrap();
    let refs: Vec<&Target> = targets.iter().collect();
    let (_dir, run) = run_on(
        &refs,
        &[("site.yml", site)],
        &[
            "-e",
            &format!("log={}", log.path().display()),
            "-e",
            "one=1",
        ],
    );
    run.assert_ok();
    assert!(!run.stderr.contains("throttle"), "{}", run.stderr);
    let read = |name: &str| std::fs::read_to_string(log.path().join(name)).unwrap();
    assert_eq!(
        read("throttled"),
        "start\nend\n".repeat(3),
        "one host at a time"
    );
    // Without throttle the hosts overlap (so the assertion above can fail).
    assert!(
        read("free").starts_with("start\nstart\n"),
        "{}",
        read("free")
    );
}

#[test]
fn an_ignored_unreachable_host_stays_in_the_play() {
    let t = Target::start("web1");
    let dir = project(&[(
        "site.yml",
        r#"- hosts: web
  gather_facts: no
  tasks:
    - command: "true"
      ignore_unreachable: true
    - debug: {msg: still here}
"#,
    )]);
    // A host whose SSH port has no server.
    let dead = t.inventory_line().replacen("web1", "dead", 1).replacen(
        "ansible_host=",
        "ansible_port=1 ansible_host=",
        1,
    );
    let inv = dir.path().join("hosts");
    std::fs::write(&inv, format!("[web]\n{}\n{dead}\n", t.inventory_line())).unwrap();
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    run.assert_ok();
    assert_eq!(run.recap("dead", "unreachable"), 0, "{}", run.stdout);
    assert_eq!(run.recap("dead", "ignored"), 1, "{}", run.stdout);
    assert!(run.stdout.contains("ok: [dead] => {"), "{}", run.stdout);
    assert_eq!(run.recap("web1", "ok"), 2);
}

#[test]
fn delegated_facts_belong_to_the_delegate() {
    let a = Target::start("web1");
    let b = Target::start("web2");
    let site = r#"- hosts: web
  gather_facts: no
  tasks:
    - setup:
        gather_subset: [min]
      delegate_to: "{{ item }}"
      delegate_facts: true
      loop: [web2]
      when: inventory_hostname == 'web1'
    - assert:
        that:
          - hostvars['web2'].ansible_facts.distribution == 'Debian'
          - hostvars['web1'].ansible_facts is not defined
"#;
    let (_dir, run) = run_on(&[&a, &b], &[("site.yml", site)], &[]);
    run.assert_ok();
    assert!(!run.stderr.contains("delegate_facts"), "{}", run.stderr);
    assert!(run.stdout.contains("ok: [web1 -> web2]"), "{}", run.stdout);
}

#[test]
fn module_defaults_apply_by_name_and_scope() {
    let t = Target::start("web1");
    let dir = project(&[
        (
            "site.yml",
            r#"- hosts: all
  become: yes
  gather_facts: no
  module_defaults:
    ansible.builtin.copy: {mode: "0600", content: "play\n"}
    group/ansible.builtin.none: {mode: "0777"}
  roles:
    - role: r
      module_defaults:
        copy: {content: "role\n"}
  tasks:
    - copy: {dest: /tmp/md_play}
    - block:
        - copy: {dest: /tmp/md_block}
      module_defaults:
        copy: {content: "block\n"}
    - copy: {dest: /tmp/md_task, mode: "0640"}
    - command: echo untouched
      register: echoed
    - assert:
        that: echoed.stdout == 'untouched'
"#,
        ),
        ("roles/r/tasks/main.yml", "- copy: {dest: /tmp/md_role}\n"),
    ]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    run.assert_ok();
    assert_eq!(
        t.root("for f in play role block task; do stat -c %a /tmp/md_$f; cat /tmp/md_$f; done"),
        "600\nplay\n600\nrole\n600\nblock\n640\nplay\n"
    );
    assert!(!run.stderr.contains("module_defaults"), "{}", run.stderr);
}

#[test]
fn async_jobs_poll_fire_and_forget_and_time_out() {
    let t = Target::start("web1");
    let tasks = r#"    - shell: sleep 0.3; echo polled
      async: 10
      poll: 1
      register: polled
    - assert:
        that:
          - polled.stdout == 'polled'
          - polled.finished == 1
          - polled.ansible_job_id is defined
          - polled is changed
    - shell: sleep 2; echo background; touch /tmp/bg_done
      async: 30
      poll: 0
      register: job
    - assert:
        that:
          - job.started == 1
          - job.finished == 0
          - job.ansible_job_id is match('j[0-9]+[.][0-9]+')
          - job.results_file.endswith(job.ansible_job_id)
          - job is changed
    - stat: path=/tmp/bg_done
      register: early
    - assert:
        that: not early.stat.exists
    - async_status:
        jid: "{{ job.ansible_job_id }}"
      register: status
      until: status.finished
      retries: 30
      delay: 1
    - assert:
        that:
          - status.stdout == 'background'
          - status.rc == 0
          - status.delta is match('0:00:0[0-9][.][0-9]{6}')
    - async_status:
        jid: "{{ job.ansible_job_id }}"
      register: again
    - assert:
        that: again.finished == 1 and again.stdout == 'background'
    - async_status:
        jid: "{{ job.ansible_job_id }}"
        mode: cleanup
    - async_status:
        jid: "{{ job.ansible_job_id }}"
      register: gone
      ignore_errors: true
    - assert:
        that: gone is failed and gone.msg == 'could not find job'
    - shell: sleep 30
      async: 1
      poll: 1
      register: slow
      ignore_errors: true
    - assert:
        that:
          - slow is failed
          - slow.msg == 'async task did not complete within the requested time - 1s'
"#;
    let run = run_play(&t, &play(tasks));
    run.assert_ok();
    assert!(!run.stderr.contains("async"), "{}", run.stderr);
    assert!(t.check("test -f /tmp/bg_done"));
    // Polled jobs leave no files; the timed-out job was stopped.
    assert_eq!(t.root("ls -A /root/.ansible_async"), "");
    assert!(!t.check("pgrep -x sleep"));
}

#[test]
fn the_free_strategy_lets_each_host_run_ahead() {
    let a = Target::start("web1");
    let b = Target::start("web2");
    let site = r#"- hosts: web
  strategy: free
  gather_facts: no
  tasks:
    - name: first
      shell: "{{ 'sleep 1.5' if inventory_hostname == 'web1' else 'true' }}"
    - name: second
      shell: echo {{ inventory_hostname }}-second >> {{ log }}
      delegate_to: localhost
    - name: third
      shell: echo {{ inventory_hostname }}-third >> {{ log }}
      delegate_to: localhost
      notify: last
  handlers:
    - name: last
      shell: echo {{ inventory_hostname }}-handler >> {{ log }}
      delegate_to: localhost
"#;
    let log = tempfile::NamedTempFile::new().unwrap();
    let (_dir, run) = run_on(
        &[&a, &b],
        &[("site.yml", site)],
        &["-e", &format!("log={}", log.path().display())],
    );
    run.assert_ok();
    // web2 finished the list while web1 slept; handlers still wait for the end.
    let order = std::fs::read_to_string(log.path()).unwrap();
    let mut lines: Vec<&str> = order.lines().collect();
    // The two handlers run together, in either order.
    if let Some(handlers) = lines.get_mut(4..) {
        handlers.sort();
    }
    assert_eq!(
        lines,
        [
            "web2-second",
            "web2-third",
            "web1-second",
            "web1-third",
            "web1-handler",
            "web2-handler"
        ],
        "{order}"
    );
    // A banner above each result whose task differs from the last one shown, as Ansible's
    // free strategy prints them.
    let banners: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("TASK [") || l.starts_with("RUNNING HANDLER ["))
        .map(|l| l.split(']').next().unwrap_or_default())
        .collect();
    assert_eq!(
        banners,
        [
            "TASK [first",
            "TASK [second",
            "TASK [third",
            "TASK [first",
            "TASK [second",
            "TASK [third",
            "RUNNING HANDLER [last"
        ],
        "{}",
        run.stdout
    );
    assert_eq!(run.recap("web1", "changed"), 4);
    assert_eq!(run.recap("web2", "changed"), 4);
}

#[test]
fn molecule_scenarios_find_their_role_by_relative_path_or_template() {
    let t = Target::start("web1");
    let converge = |role: &str| {
        format!("- hosts: all\n  gather_facts: no\n  roles:\n    - role: \"{role}\"\n")
    };
    let dir = project(&[
        ("myrole/tasks/main.yml", "- debug: {msg: role ran}\n"),
        ("myrole/tests/pre.yml", "- debug: {msg: prepared}\n"),
        (
            "myrole/molecule/default/prepare.yml",
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - import_tasks: \"{{ playbook_dir }}/../../tests/pre.yml\"\n",
        ),
        (
            "myrole/molecule/default/relative.yml",
            &converge("../../../"),
        ),
        (
            "myrole/molecule/default/templated.yml",
            &converge("{{ lookup('env', 'MOLECULE_PROJECT_DIRECTORY') }}"),
        ),
    ]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let project_dir = dir.path().join("myrole").display().to_string();
    for (playbook, shown) in [
        ("relative.yml", "TASK [myrole : debug]"),
        ("templated.yml", "TASK [myrole : debug]"),
        ("prepare.yml", "\"msg\": \"prepared\""),
    ] {
        let run = support::run_kiln(
            &support::kiln(),
            dir.path(),
            &[
                "playbook",
                "-i",
                inv.to_str().unwrap(),
                &format!("myrole/molecule/default/{playbook}"),
            ],
            &[
                ("ANSIBLE_HOST_KEY_CHECKING", "false"),
                ("MOLECULE_PROJECT_DIRECTORY", &project_dir),
            ],
        );
        run.assert_ok();
        assert!(run.stdout.contains(shown), "{playbook}:\n{}", run.stdout);
    }
}

#[test]
fn the_inventorys_ansible_user_wins_over_remote_user() {
    let t = Target::start("web1");
    let site = "- hosts: web\n  remote_user: vagrant\n  gather_facts: no\n  tasks:\n    - command: id -un\n      register: who\n      remote_user: nobody\n    - assert:\n        that: who.stdout == 'kiln'\n";
    let (_dir, run) = run_on(&[&t], &[("site.yml", site)], &[]);
    run.assert_ok();
}
