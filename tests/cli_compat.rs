//! ansible-playbook's command-line manners that tools rely on: `--version`'s layout (Packer,
//! Vagrant and Molecule parse it), Ansible 1.x's `--sudo` flags (Vagrant's 1.8 mode), the
//! `--list-tasks` layout and the exit code for a missing playbook.

mod support;

use support::{inventory, kiln, kiln_playbook, playbook, project, run_kiln, Target};

#[test]
fn version_prints_the_ansible_core_release_kiln_follows() {
    let dir = project(&[]);
    for (binary, args, first) in [
        (
            kiln_playbook(),
            &["--version"][..],
            "kiln-playbook [core 2.19.0]",
        ),
        (
            kiln(),
            &["playbook", "--version"][..],
            "kiln playbook [core 2.19.0]",
        ),
    ] {
        let run = run_kiln(&binary, dir.path(), args, &[]);
        run.assert_ok();
        let mut lines = run.stdout.lines();
        assert_eq!(lines.next(), Some(first), "{}", run.stdout);
        assert!(
            run.stdout.contains("\n  config file = None\n"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("\n  kiln version = "), "{}", run.stdout);
    }
}

#[test]
fn legacy_sudo_flags_become_root() {
    let t = Target::start("t");
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      register: who\n    - assert: {that: \"who.stdout == 'root'\"}\n";
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    playbook(dir.path(), &["-i", inv, "--sudo", "site.yml"]).assert_ok();
    playbook(dir.path(), &["-i", inv, "-s", "-U", "root", "site.yml"]).assert_ok();
    let without = playbook(dir.path(), &["-i", inv, "site.yml"]);
    assert_eq!(without.code, 2, "{}", without.stdout);
    // --ask-sudo-pass is -K: it asks on the terminal, and there is none here.
    let asked = playbook(dir.path(), &["-i", inv, "--ask-sudo-pass", "site.yml"]);
    assert_ne!(asked.code, 0, "{}", asked.stdout);
    assert!(
        asked.stderr.contains("cannot prompt for a password"),
        "{}",
        asked.stderr
    );
}

#[test]
fn a_missing_playbook_exits_1_with_ansibles_words() {
    let dir = project(&[]);
    let run = playbook(dir.path(), &["-i", "localhost,", "nope.yml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the playbook: nope.yml could not be found"),
        "{}",
        run.stderr
    );
}

#[test]
fn list_tasks_shows_play_tags_and_sorted_task_tags() {
    let site = "- hosts: all\n  name: web\n  tags: [web]\n  gather_facts: no\n  tasks:\n    - name: one\n      debug: msg=x\n      tags: [zeta, alpha]\n";
    let dir = project(&[("site.yml", site)]);
    let run = playbook(
        dir.path(),
        &[
            "-i",
            "localhost,",
            "--list-tasks",
            "--list-tags",
            "site.yml",
        ],
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("  play #1 (all): web\tTAGS: [web]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("      one\tTAGS: [alpha, web, zeta]\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("      TASK TAGS: [alpha, web, zeta]\n"),
        "{}",
        run.stdout
    );
}

/// Colour as ansible-playbook: on a terminal, not when piped, never with NO_COLOR or
/// ANSIBLE_NOCOLOR, always with ANSIBLE_FORCE_COLOR (which wins).
#[test]
fn colour_on_a_terminal_or_when_forced_and_never_when_refused() {
    let t = Target::start("t");
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: 'true'\n      changed_when: false\n    - command: 'true'\n";
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let green_ok = "\x1b[0;32mok: [t]\x1b[0m";
    let yellow_changed = "\x1b[0;33mchanged: [t]\x1b[0m";
    let piped = playbook(dir.path(), &["-i", inv, "site.yml"]);
    piped.assert_ok();
    assert!(!piped.stdout.contains('\x1b'), "{}", piped.stdout);
    let forced = run_kiln(
        &kiln(),
        dir.path(),
        &["playbook", "-i", inv, "site.yml"],
        &[
            ("ANSIBLE_HOST_KEY_CHECKING", "false"),
            ("ANSIBLE_FORCE_COLOR", "1"),
            ("NO_COLOR", "1"),
        ],
    );
    forced.assert_ok();
    assert!(forced.stdout.contains(green_ok), "{:?}", forced.stdout);
    assert!(
        forced.stdout.contains(yellow_changed),
        "{:?}",
        forced.stdout
    );
    // A real terminal: util-linux `script` runs kiln on a pseudo-terminal.
    let on_terminal = |env: &[(&str, &str)]| {
        let command = format!(
            "{} playbook -i {inv} site.yml",
            kiln().to_str().expect("utf-8 path")
        );
        let mut script = std::process::Command::new("script");
        script
            .current_dir(dir.path())
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("HOME", dir.path())
            .env("ANSIBLE_HOST_KEY_CHECKING", "false")
            .env_remove("NO_COLOR")
            .env_remove("ANSIBLE_NOCOLOR")
            .env_remove("ANSIBLE_FORCE_COLOR");
        for (k, v) in env {
            script.env(k, v);
        }
        let out = script.output().expect("run script");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tty = on_terminal(&[]);
    assert!(tty.contains(green_ok), "{tty:?}");
    for refusal in ["NO_COLOR", "ANSIBLE_NOCOLOR"] {
        let plain = on_terminal(&[(refusal, "1")]);
        assert!(plain.contains("ok: [t]"), "{plain:?}");
        assert!(!plain.contains('\x1b'), "{refusal}: {plain:?}");
    }
}

/// `-v` prints each result on one line and never dumps gathered facts; `-vvv` indents them,
/// as ansible-playbook's default callback does.
#[test]
fn verbose_results_are_one_line_and_facts_stay_hidden() {
    let t = Target::start("t");
    let site = "- hosts: all\n  tasks:\n    - command: echo hi\n";
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let v = playbook(dir.path(), &["-i", inv, "-v", "site.yml"]);
    v.assert_ok();
    assert!(v.stdout.contains("\nok: [t]\n"), "{}", v.stdout);
    assert!(!v.stdout.contains("ansible_facts"), "{}", v.stdout);
    let changed = v
        .stdout
        .lines()
        .find(|l| l.starts_with("changed: [t]"))
        .unwrap_or_else(|| panic!("no changed line:\n{}", v.stdout));
    assert!(
        changed.starts_with("changed: [t] => {\"changed\": true, ")
            && changed.contains("\"stdout\": \"hi\"")
            && changed.ends_with('}'),
        "{changed}"
    );
    let vvv = playbook(dir.path(), &["-i", inv, "-vvv", "site.yml"]);
    vvv.assert_ok();
    assert!(
        vvv.stdout
            .contains("changed: [t] => {\n    \"changed\": true,"),
        "{}",
        vvv.stdout
    );
    assert!(!vvv.stdout.contains("ansible_facts"), "{}", vvv.stdout);
    assert!(
        vvv.stdout.contains("/site.yml:3\n"),
        "-vvv names each task's file and line:\n{}",
        vvv.stdout
    );
    let establish = format!("<{}> ESTABLISH SSH CONNECTION FOR USER: kiln", t.address);
    assert_eq!(
        vvv.stdout.matches(&establish).count(),
        1,
        "one connection per host, shown once:\n{}",
        vvv.stdout
    );
}

/// ANSIBLE_BECOME, ANSIBLE_BECOME_USER and ANSIBLE_BECOME_METHOD are honoured.
#[test]
fn become_settings_from_the_environment() {
    let t = Target::start("t");
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: id -un\n      register: who\n    - assert: {that: \"who.stdout == 'root'\"}\n";
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let env = |extra: &[(&'static str, &'static str)]| {
        let mut env = vec![("ANSIBLE_HOST_KEY_CHECKING", "false")];
        env.extend_from_slice(extra);
        run_kiln(
            &kiln(),
            dir.path(),
            &["playbook", "-i", inv, "site.yml"],
            &env,
        )
    };
    env(&[
        ("ANSIBLE_BECOME", "true"),
        ("ANSIBLE_BECOME_USER", "root"),
        ("ANSIBLE_BECOME_METHOD", "sudo"),
    ])
    .assert_ok();
    let off = env(&[("ANSIBLE_BECOME", "false")]);
    assert_eq!(off.code, 2, "{}", off.stdout);
}

/// `gathering = explicit` gathers only for plays that ask; `smart` gathers once per host in
/// a run; an unknown value is a usage error naming it.
#[test]
fn gathering_explicit_and_smart() {
    let t = Target::start("t");
    let play = |facts: &str| {
        format!("- hosts: all\n{facts}  tasks:\n    - debug: msg=\"{{{{ ansible_hostname | default('NO-FACTS') }}}}\"\n")
    };
    let site = [play(""), play(""), play("  gather_facts: yes\n")].concat();
    let dir = project(&[("site.yml", &site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let with = |gathering: &str| {
        let run = run_kiln(
            &kiln(),
            dir.path(),
            &["playbook", "-i", inv, "site.yml"],
            &[
                ("ANSIBLE_HOST_KEY_CHECKING", "false"),
                ("ANSIBLE_GATHERING", gathering),
            ],
        );
        (run.stdout.matches("TASK [Gathering Facts]").count(), run)
    };
    let (gathered, run) = with("implicit");
    run.assert_ok();
    assert_eq!(gathered, 3, "{}", run.stdout);
    let (gathered, run) = with("explicit");
    run.assert_ok();
    assert_eq!(gathered, 1, "{}", run.stdout);
    assert_eq!(run.stdout.matches("NO-FACTS").count(), 2, "{}", run.stdout);
    let (gathered, run) = with("smart");
    run.assert_ok();
    assert_eq!(gathered, 1, "{}", run.stdout);
    assert!(!run.stdout.contains("NO-FACTS"), "{}", run.stdout);
    let (_, run) = with("sometimes");
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("gathering = sometimes"),
        "{}",
        run.stderr
    );
}

/// `gather_subset` (play keyword, ansible.cfg, `setup` option) returns only the facts asked
/// for, with ansible's error for an unknown subset; `fact_caching = jsonfile` keeps facts
/// between runs, so `gathering = smart` does not gather a host whose facts are cached.
#[test]
fn gather_subset_and_the_jsonfile_fact_cache() {
    let t = Target::start("t");
    let show = "    - debug: msg=\"[{{ ansible_distribution | default('NO-DISTRIBUTION') }} {{ ansible_memtotal_mb | default('NO-MEMORY') }} {{ ansible_facts.gather_subset | join(',') }}]\"\n";
    let site = format!(
        "- hosts: all\n  tasks:\n{show}\
         - hosts: all\n  gather_facts: no\n  tasks:\n    - setup: {{gather_subset: ['!all', '!min', 'hardware'], filter: 'ansible_mem*'}}\n{show}"
    );
    let bad = "- hosts: all\n  gather_subset: hardwre\n  tasks: []\n";
    let cfg = "[defaults]\ngathering = smart\nfact_caching = jsonfile\nfact_caching_connection = cache\ngather_subset = !all\n";
    let dir = project(&[("site.yml", &site), ("bad.yml", bad), ("ansible.cfg", cfg)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let env = [("ANSIBLE_HOST_KEY_CHECKING", "false")];
    let run = run_kiln(
        &kiln(),
        dir.path(),
        &["playbook", "-i", inv, "site.yml"],
        &env,
    );
    run.assert_ok();
    assert!(
        run.stdout.contains("[Debian NO-MEMORY !all]"),
        "{}",
        run.stdout
    );
    // The setup task's subset and filter: memory facts only (and the earlier ones kept).
    assert!(
        run.stdout.contains("[Debian ") && run.stdout.contains(" !all,!min,hardware]"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("NO-MEMORY !all,!min"),
        "{}",
        run.stdout
    );
    let cached = std::fs::read_to_string(dir.path().join("cache").join(&t.name))
        .expect("jsonfile cache written for the host");
    assert!(
        cached.contains("\"ansible_distribution\": \"Debian\""),
        "{cached}"
    );
    // A second run finds the host's facts in the cache and does not gather them again.
    let again = run_kiln(
        &kiln(),
        dir.path(),
        &["playbook", "-i", inv, "site.yml"],
        &env,
    );
    again.assert_ok();
    assert_eq!(
        again.stdout.matches("TASK [Gathering Facts]").count(),
        0,
        "{}",
        again.stdout
    );
    assert!(again.stdout.contains("[Debian "), "{}", again.stdout);
    let bad = run_kiln(
        &kiln(),
        dir.path(),
        &["playbook", "-i", inv, "bad.yml"],
        &[env[0], ("ANSIBLE_GATHERING", "implicit")],
    );
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("Bad subset 'hardwre' given to Ansible"),
        "{}",
        bad.stdout
    );
}

/// display_skipped_hosts / display_ok_hosts hide those results (and the banners of tasks
/// that show nothing); the json stdout callback prints one document; yaml prints results
/// as YAML; settings kiln does not act on are named in one warning each.
#[test]
fn stdout_callbacks_display_filters_and_unhonoured_settings() {
    let t = Target::start("t");
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: quiet\n      command: 'true'\n      changed_when: false\n    - name: skipped\n      command: 'true'\n      when: false\n    - name: loud\n      command: echo hi\n";
    let dir = project(&[
        ("site.yml", site),
        (
            "ansible.cfg",
            "[defaults]\ndisplay_skipped_hosts = False\nstdout_callback = default\n[ssh_connection]\npipelining = True\n",
        ),
    ]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let inv = inv.to_str().expect("utf-8 path");
    let run = |env: &[(&str, &str)]| {
        let mut all = vec![("ANSIBLE_HOST_KEY_CHECKING", "false")];
        all.extend_from_slice(env);
        run_kiln(
            &kiln(),
            dir.path(),
            &["playbook", "-i", inv, "site.yml"],
            &all,
        )
    };
    let filtered = run(&[
        ("ANSIBLE_DISPLAY_OK_HOSTS", "false"),
        ("ANSIBLE_PIPELINING", "1"),
    ]);
    filtered.assert_ok();
    assert!(
        !filtered.stdout.contains("TASK [quiet]"),
        "{}",
        filtered.stdout
    );
    assert!(
        !filtered.stdout.contains("TASK [skipped]"),
        "{}",
        filtered.stdout
    );
    assert!(
        filtered.stdout.contains("TASK [loud]"),
        "{}",
        filtered.stdout
    );
    assert!(
        filtered.stdout.contains("changed: [t]"),
        "{}",
        filtered.stdout
    );
    assert_eq!(filtered.recap("t", "skipped"), 1);
    for named in ["[ssh_connection] pipelining", "ANSIBLE_PIPELINING"] {
        assert_eq!(
            filtered.stdout.matches(named).count(),
            1,
            "{named}:\n{}",
            filtered.stdout
        );
    }

    let json = run(&[("ANSIBLE_STDOUT_CALLBACK", "json")]);
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", json.stdout));
    let tasks = &doc["plays"][0]["tasks"];
    assert_eq!(tasks[2]["task"]["name"], "loud", "{doc}");
    assert_eq!(tasks[2]["hosts"]["t"]["stdout"], "hi", "{doc}");
    assert_eq!(tasks[2]["hosts"]["t"]["action"], "command", "{doc}");
    assert_eq!(doc["stats"]["t"]["changed"], 1, "{doc}");
    assert_eq!(doc["stats"]["t"]["skipped"], 1, "{doc}");

    let yaml = run(&[
        ("ANSIBLE_STDOUT_CALLBACK", "yaml"),
        ("ANSIBLE_DISPLAY_SKIPPED_HOSTS", "1"),
    ]);
    yaml.assert_ok();
    assert!(yaml.stdout.contains("skipping: [t]"), "{}", yaml.stdout);
    let loud = playbook(dir.path(), &["-i", inv, "-v", "site.yml"]);
    assert!(loud.stdout.contains("changed: [t] => {"), "{}", loud.stdout);
    let yaml_v = run_kiln(
        &kiln(),
        dir.path(),
        &["playbook", "-i", inv, "-v", "site.yml"],
        &[
            ("ANSIBLE_HOST_KEY_CHECKING", "false"),
            ("ANSIBLE_STDOUT_CALLBACK", "yaml"),
        ],
    );
    yaml_v.assert_ok();
    assert!(
        yaml_v
            .stdout
            .contains("changed: [t] => \n    changed: true\n"),
        "{}",
        yaml_v.stdout
    );
    assert!(
        yaml_v.stdout.contains("\n    stdout: hi\n"),
        "{}",
        yaml_v.stdout
    );
}

/// `kiln completions SHELL` prints a script the shell accepts; `kiln man` a roff page.
#[test]
fn completions_and_man_page() {
    let dir = project(&[]);
    for shell in ["bash", "zsh", "fish"] {
        let run = run_kiln(&kiln(), dir.path(), &["completions", shell], &[]);
        run.assert_ok();
        assert!(run.stdout.contains("playbook"), "{shell}:\n{}", run.stdout);
    }
    let script = run_kiln(&kiln(), dir.path(), &["completions", "bash"], &[]);
    let file = dir.path().join("kiln.bash");
    std::fs::write(&file, &script.stdout).expect("write");
    let sourced = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {} && complete -p kiln",
            file.to_str().expect("utf-8 path")
        ))
        .output()
        .expect("bash");
    assert!(sourced.status.success(), "{sourced:?}");
    let man = run_kiln(&kiln(), dir.path(), &["man"], &[]);
    man.assert_ok();
    assert!(man.stdout.starts_with(".ie"), "{}", man.stdout);
    assert!(man.stdout.contains(".TH kiln 1"), "{}", man.stdout);
}

/// A task keyword kiln accepts but does not act on is named in one warning per run, with
/// the first task that uses it.
#[test]
fn ignored_task_keywords_are_named_once() {
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg=one\n      debugger: never\n    - debug: msg=two\n      debugger: never\n      become_exe: sudo\n";
    let dir = project(&[("site.yml", site)]);
    let run = playbook(dir.path(), &["-i", "localhost,", "-c", "local", "site.yml"]);
    run.assert_ok();
    for keyword in ["debugger", "become_exe"] {
        let warning = format!("kiln does not implement the task keyword '{keyword}' yet");
        assert_eq!(
            run.stdout.matches(&warning).count(),
            1,
            "{keyword}:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("site.yml:4): it is ignored"),
        "{}",
        run.stdout
    );
}
