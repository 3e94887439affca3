//! Templating against real targets: what a target sends back is data and never templated on
//! the controller; expressions keep their native types (a list stays a list).

mod support;

use support::{inventory, playbook, project, Target};

/// A template that, if it were ever rendered, would create `name` in kiln's working directory.
fn planted(name: &str) -> String {
    format!("{{{{ lookup('pipe', 'touch {name}') }}}}")
}

#[test]
fn target_data_is_never_templated_on_the_controller() {
    let t = Target::start("web1");
    // What a compromised or hostile target could send back: command output, a hostname and
    // a file name, each a template calling a controller lookup.
    t.root(&format!(
        "mkdir -p /tmp/p/found && printf '%s\\n' {register} > /tmp/p/register.txt \
         && printf '%s\\n' {set_fact} > /tmp/p/set_fact.txt \
         && printf '%s\\n%s\\n' {loop1} {loop2} > /tmp/p/loop.txt \
         && printf '%s\\n' {hostvars} > /tmp/p/hostvars.txt \
         && printf '%s\\n' {failed_when} > /tmp/p/failed_when.txt \
         && touch /tmp/p/found/{find} \
         && printf '%s' {hostname} > /proc/sys/kernel/hostname",
        register = support::shell_quote(&planted("pwned-register")),
        set_fact = support::shell_quote(&planted("pwned-set-fact")),
        loop1 = support::shell_quote(&planted("pwned-loop")),
        loop2 = support::shell_quote("{% endraw %}{{ lookup('pipe', 'touch pwned-loop2') }}"),
        hostvars = support::shell_quote(&planted("pwned-hostvars")),
        failed_when = support::shell_quote(&planted("pwned-failed-when")),
        find = support::shell_quote(&planted("pwned-find")),
        hostname = support::shell_quote(&planted("pwned-hostname")),
    ));
    let site = r#"- hosts: all
  gather_facts: yes
  vars:
    marked: !unsafe "{% endraw %}{{ lookup('pipe', 'touch pwned-unsafe') }}"
  tasks:
    - command: cat /tmp/p/register.txt
      register: r1
    - debug: msg="{{ r1.stdout }}"
    - debug: var=r1.stdout
    - debug: var="{{ r1.stdout }}"
    - command: cat /tmp/p/set_fact.txt
      register: r2
    - set_fact:
        copied: "{{ r2.stdout }}"
        parts: "{{ r2.stdout.split(' ') }}"
    - debug: msg="{{ copied }} {{ parts }}"
    - set_fact:
        copied_again: "{{ copied }}"
    - debug: msg="{{ copied_again }}"
    - debug: msg="{{ ansible_hostname }} {{ ansible_facts.nodename }}"
    - find:
        paths: /tmp/p/found
      register: found
    - debug: msg="{{ found.files | map(attribute='path') | list }}"
    - command: cat /tmp/p/loop.txt
      register: r3
    - debug: msg="{{ item }}"
      loop: "{{ r3.stdout_lines }}"
    - set_fact:
        seen: "{{ item }}"
      loop: "{{ r3.stdout.split('\n') }}"
    - debug: msg="{{ seen }}"
    - command: cat /tmp/p/hostvars.txt
      register: r4
    - debug: msg="{{ hostvars[inventory_hostname].r4.stdout }}"
    - command: cat /tmp/p/failed_when.txt
      register: r5
      failed_when: r5.rc != 0
      changed_when: r5.stdout is defined
    - debug: msg="{{ r5.stdout }}"
      when: r5.stdout | length > 0
    - debug: msg="{{ marked }}"
    - set_fact:
        marked_copy: "{{ marked }}"
    - debug: msg="{{ marked_copy }}"
"#;
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    run.assert_ok();
    let ran: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(
        ran.is_empty(),
        "target data was templated on the controller: {ran:?}\n{}",
        run.stdout
    );
    // The text itself is shown, as Ansible shows data it will not template.
    for marker in [
        "pwned-register",
        "pwned-set-fact",
        "pwned-hostname",
        "pwned-find",
        "pwned-loop",
        "pwned-loop2",
        "pwned-hostvars",
        "pwned-failed-when",
        "pwned-unsafe",
    ] {
        assert!(
            run.stdout
                .contains(&format!("lookup('pipe', 'touch {marker}')")),
            "{marker} not shown as text:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_list_built_by_an_expression_stays_a_list() {
    let t = Target::start("web1");
    let site = r#"- hosts: all
  gather_facts: no
  vars:
    words: [hello, "two  words"]
  tasks:
    - command:
        argv: "{{ ['printf', '[%s]'] + words }}"
      register: out
    - copy:
        dest: /tmp/argv
        content: "{{ out.stdout }}"
    - debug: msg="{{ item }}"
      loop: "{{ words + ['third'] }}"
"#;
    let dir = project(&[("site.yml", site)]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    run.assert_ok();
    assert_eq!(t.root("cat /tmp/argv"), "[hello][two  words]");
    assert!(run.stdout.contains("(item=third)"), "{}", run.stdout);
}

/// Runs `site.yml` against the controller itself (no target needed).
fn local(files: &[(&str, &str)], extra: &[&str]) -> (tempfile::TempDir, support::Run) {
    let dir = project(files);
    let mut args = vec!["-i", "localhost,", "-c", "local"];
    args.extend_from_slice(extra);
    args.push("site.yml");
    let run = playbook(dir.path(), &args);
    assert!(
        !run.stderr.contains("panicked") && run.code != 134 && run.code != -1,
        "kiln crashed ({}):\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    (dir, run)
}

#[test]
fn deep_expressions_fail_cleanly_naming_file_line_and_limit() {
    let sum = vec!["1"; 20_000].join(" + ");
    let chain = format!("x{}", ".a".repeat(40_000));
    let unary = format!("{}true", "not ".repeat(100_000));
    let site = format!(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg=\"{{{{ {sum} }}}}\"\n      ignore_errors: yes\n    - debug: msg=\"{{{{ {chain} }}}}\"\n      ignore_errors: yes\n    - debug: msg=ok\n      when: {unary}\n      ignore_errors: yes\n    - debug: msg=\"{{{{ [1] | to_nice_json(indent=10**9) }}}}\"\n      ignore_errors: yes\n"
    );
    let (_dir, run) = local(&[("site.yml", &site)], &[]);
    run.assert_ok();
    assert_eq!(run.recap("localhost", "ignored"), 4, "{}", run.stdout);
    for line in [4, 6, 8] {
        assert!(
            run.stdout.contains(&format!("site.yml:{line}:")),
            "no site.yml:{line}:\n{}",
            run.stdout
        );
    }
    assert_eq!(
        run.stdout.matches("more than 1000 operators").count(),
        3,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("limit of 100"), "{}", run.stdout);
}

#[test]
fn huge_inventory_range_fails_cleanly_with_the_limit() {
    let dir = project(&[
        ("hosts", "[web]\nweb[0:999999999]\n"),
        ("site.yml", "- hosts: all\n  tasks: []\n"),
    ]);
    let run = playbook(dir.path(), &["-i", "hosts", "site.yml"]);
    assert_ne!(run.code, 0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hosts:2") && run.stderr.contains("over the limit of 100000"),
        "{}",
        run.stderr
    );
}

#[test]
fn big_extra_vars_files_and_big_integers_are_kept() {
    let mut vars = String::from("big: 1000000000000000000000000000000000000000000000000\nwide: 18446744073709551617\nmany:\n");
    for i in 0..300_000 {
        vars.push_str(&format!("  - {i}\n"));
    }
    let site = "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: msg=\"{{ big }} {{ wide + 1 }} {{ many | length }}\"\n";
    let (_dir, run) = local(
        &[("site.yml", site), ("vars.yml", &vars)],
        &["-e", "@vars.yml"],
    );
    run.assert_ok();
    assert!(
        run.stdout
            .contains(&format!("1{} 18446744073709551618 300000", "0".repeat(48))),
        "{}",
        run.stdout
    );
}

#[test]
fn rendering_matches_ansible_for_newlines_escapes_time_and_randomness() {
    let t = Target::start("web1");
    let site = r#"- hosts: all
  gather_facts: no
  tasks:
    - template:
        src: blank.j2
        dest: /tmp/blank.txt
    - template:
        src: backref.j2
        dest: /tmp/backref.txt
    - copy:
        dest: /tmp/values
        content: |
          year={{ 'ok' if now().year == now(fmt='%Y') | int else now() }}
          utc={{ now(utc=true).strftime('%Y-%m-%d') | length }}
          pick={{ 'ok' if (10 | random(start=3, step=2)) in [3, 5, 7, 9] else 'out of range' }}
          seeded={{ 'ok' if (10**9) | random(seed=inventory_hostname) == (10**9) | random(seed=inventory_hostname) else 'differs' }}
          item={{ ['only'] | random }}
          order={{ [1, 2, 3, 4] | shuffle(seed='x') | sort | join(',') }}
          backref={{ 'ab12' | regex_replace('(\d+)', '<\1>') }}
"#;
    let dir = project(&[
        ("site.yml", site),
        ("templates/blank.j2", "a\n\n{{ '' }}\n"),
        (
            "templates/backref.j2",
            r"{{ 'ab12' | regex_replace('(\\d+)', '<\\1>') }}{{ '\x21' }}",
        ),
    ]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let run = playbook(dir.path(), &["-i", inv.to_str().unwrap(), "site.yml"]);
    run.assert_ok();
    // Ansible writes "a\n\n": the empty last line adds no newline of its own.
    assert_eq!(t.root("cat /tmp/blank.txt"), "a\n\n");
    // In a template file Jinja unescapes literals itself: `\\1` is the back-reference.
    assert_eq!(t.root("cat /tmp/backref.txt"), "ab<12>!");
    assert_eq!(
        t.root("cat /tmp/values"),
        "year=ok\nutc=10\npick=ok\nseeded=ok\nitem=only\norder=1,2,3,4\nbackref=ab<12>\n"
    );
}

#[test]
fn playbook_semantics_of_ansibles_own_lookup_and_test_targets() {
    let site = r#"- hosts: all
  gather_facts: no
  tasks:
    - set_fact: "{{ item if (item is string)|bool else item[0] }}={{ item }}"
      with_list: [a, [b, c]]
    - set_fact: {qz_1: x, qa_1: y}
    - set_fact:
        failure: "{{ 'nope' is failure }}"
      ignore_errors: yes
      register: misuse
    - assert: '{{ item.args }}'
      loop:
        - args: {}
          checks: ['item is failed', 'item.msg is contains("missing required arguments: that")']
        - args: {that: }
          checks: ['item is failed', 'item.msg is contains("Empty conditional expression")']
      ignore_errors: yes
      register: asserted
    - assert:
        that: '{{ item.item.checks }}'
      loop: '{{ asserted.results }}'
    - assert:
        that:
          - b == ['b', 'c'] and a == 'a' and c is not defined
          - misuse is failed and misuse.msg is contains("The 'failed' test expects a dictionary")
          - lookup('varnames', '^q.*_\d') is search('(?=.*qa_1)(?=.*qz_1)')
          - query('vars', 'ansible_connection') == ['local']
          - lookup('vars', 'doesnotexist', default='some text') == 'some text'
          - "'password' | password_hash('sha256', 'abcdefgh', rounds=5000) == '$5$abcdefgh$ZLdkj8mkc2XVSrPVjskDAgZPGjtj1VGVaa1aUkrMTU/'"
          - "'1 KB' | human_to_bytes == 1024 and 1024 | human_readable == '1.00 KB'"
          - "'%Y' | strftime(second=0, utc=true) == '1970'"
          - '''ab12'' | regex_replace(''(?<=b)(\\d)'', ''<\\1>'') == ''ab<1>2'''
          - lookup('ini', 'user section=production file=app.ini') == 'prod'
          - lookup('ini', 'missing', section='global', file='app.ini', default='d') == 'd'
          - lookup('csvfile', 'Li file=elements.csv delimiter=,', col=2) == '6,94'
          - "['/etc', 'apt', 'sources.list.d'] | path_join == '/etc/apt/sources.list.d'"
          - "'/a/./b/../c' | normpath == '/a/c'"
          - "'x' | md5 == '9dd4e461268c8034f5c8564e155c67a6'"
          - "'x' | hash('sha256') == '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881'"
          - "[1, 2] | product(['a']) | list == [[1, 'a'], [2, 'a']]"
          - "'b' | extract({'b': {'c': 3}}, 'c') == 3"
          - "'example.com' | to_uuid == 'ae780c3a-a3ab-53c2-bfb4-098da300b3fe'"
          - lookup('random_choice', 'a', 'b') in ['a', 'b']
          - "'1.0' is version_compare('1.0', '==', true)"
          - ansible_search_path[0] == playbook_dir
"#;
    let (_dir, run) = local(
        &[
            ("site.yml", site),
            (
                "files/app.ini",
                "[global]\nuser = all\n[production]\nUser=prod\n",
            ),
            ("files/elements.csv", "H,1,1.008\nLi,3,\"6,94\"\n"),
        ],
        &[],
    );
    run.assert_ok();
    assert_eq!(run.recap("localhost", "failed"), 0, "{}", run.stdout);
}

#[test]
fn password_lookup_keeps_its_password_in_a_private_file() {
    let site = r#"- hosts: all
  gather_facts: no
  tasks:
    - set_fact:
        db: "{{ lookup('password', 'credentials/db length=12 chars=digits') }}"
        hashed: "{{ lookup('password', 'credentials/admin encrypt=sha512_crypt') }}"
        scratch: "{{ lookup('password', '/dev/null') }}"
    - assert:
        that:
          - db is match('^[0-9]{12}$')
          - db == lookup('password', 'credentials/db length=12 chars=digits')
          - hashed is match('^\$6\$rounds=656000\$')
          - scratch | length == 20
          - scratch != lookup('password', '/dev/null')
"#;
    let (dir, run) = local(&[("site.yml", site)], &[]);
    run.assert_ok();
    assert_eq!(run.recap("localhost", "failed"), 0, "{}", run.stdout);
    use std::os::unix::fs::PermissionsExt;
    let stored = dir.path().join("credentials/db");
    let mode = std::fs::metadata(&stored)
        .expect("password file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(dir.path().join("credentials"))
        .expect("password dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    assert!(std::fs::read_to_string(stored)
        .expect("read")
        .trim_end()
        .chars()
        .all(|c| c.is_ascii_digit()));
    let admin = std::fs::read_to_string(dir.path().join("credentials/admin")).expect("read");
    assert!(admin.contains(" salt="), "{admin}");
}

#[test]
fn first_found_leaves_out_undefined_terms_and_ansibles_error_words_hold() {
    let site = r#"- hosts: all
  gather_facts: no
  vars:
    candidates:
      - "{{ missing_var }}foo1"
      - bar1
  tasks:
    - debug: msg="{{ item }}"
      with_first_found:
        - "{{ missing_var }}foo1"
        - bar1
      register: plain
    - debug: msg="{{ item }}"
      with_first_found:
        - files: "{{ candidates }}"
      register: lazy
    - set_fact:
        by_option: "{{ query('first_found', files=['missing', 'bar1'], paths=[playbook_dir ~ '/files']) }}"
        skipped: "{{ query('first_found', {'files': ['missing'], 'skip': true}) }}"
        formatted: "{{ '%s-%03d' % ('web', 7) }}"
    - set_fact:
        names: "{{ things | map(attribute='name') }}"
      vars:
        things: [{name: one}, {notname: two}]
      register: mapped
      ignore_errors: yes
    - debug: msg="{{ 1 / 0 }}"
      register: divided
      ignore_errors: yes
    - assert:
        that:
          - plain.results[0].item.endswith('/files/bar1')
          - lazy.results[0].item.endswith('/files/bar1')
          - by_option[0].endswith('/files/bar1')
          - skipped == []
          - formatted == 'web-007'
          - "mapped.msg is contains(\"Error while resolving value for 'names': object of type 'dict' has no attribute 'name'\")"
          - divided.msg is contains('Error rendering template: division by zero')
"#;
    let (_dir, run) = local(&[("site.yml", site), ("files/bar1", "")], &[]);
    run.assert_ok();
    assert_eq!(run.recap("localhost", "ignored"), 2, "{}", run.stdout);
}

#[test]
fn what_include_vars_reports_is_as_trusted_as_the_playbook_and_command_output_is_not() {
    let site = r#"- hosts: all
  gather_facts: no
  tasks:
    - include_vars: more.yml
      register: included
    - command: echo "{{ '{{' }} 1 + 1 }}"
      register: echoed
      changed_when: false
    - assert:
        that:
          - included.ansible_facts.greeting is ansible._protomatter.tagged_with('TrustedAsTemplate')
          - greeting == 'hello 2'
          - echoed.stdout is not ansible._protomatter.tagged_with('TrustedAsTemplate')
          - echoed.stdout == '{{ "{{" }} 1 + 1 }}'
"#;
    let (_dir, run) = local(
        &[
            ("site.yml", site),
            ("more.yml", "greeting: \"hello {{ 1 + 1 }}\"\n"),
        ],
        &[],
    );
    run.assert_ok();
}
