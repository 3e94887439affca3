//! Modules kiln has no native version of, run through the target's Python as Ansible runs
//! them: an ansible-core module, a collection module with its own module_utils (by FQCN,
//! through a `plugin_routing` redirect, by the `collections:` keyword, from a collection's
//! role), a role's `library/` module, and a target without Python. Each converges with the module protocol (check mode reports the
//! change and touches nothing, a real run changes, a second run reports `changed=0`).

mod support;

use support::{converge_with, inventory, kiln, play, project, run_kiln, run_play, Target};

/// A module that writes `path` with the text `TEXT` computes (from `name`), in check mode and
/// with a diff, as a collection or role ships one. `IMPORTS` brings in what `TEXT` uses.
const WRITER_MODULE: &str = r#"#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
IMPORTS


def main():
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", required=True), name=dict(type="str", default="")),
        supports_check_mode=True,
    )
    path, name = module.params["path"], module.params["name"]
    want = TEXT
    try:
        with open(path) as f:
            have = f.read()
    except FileNotFoundError:
        have = None
    changed = have != want
    if name == "warn":
        module.warn("asked to warn")
    if changed and not module.check_mode:
        with open(path, "w") as f:
            f.write(want)
    diff = dict(before=have or "", after=want, before_header=path, after_header=path)
    module.exit_json(changed=changed, path=path, diff=diff)


if __name__ == "__main__":
    main()
"#;

fn writer_module(imports: &str, text: &str) -> String {
    WRITER_MODULE
        .replace("IMPORTS", imports)
        .replace("TEXT", text)
}

const COLLECTION: &str = "collections/ansible_collections/acme/tools";

#[test]
fn a_collection_module_and_a_role_library_module_converge() {
    let t = Target::start_with_python("t");
    let greeting = writer_module(
        "from ansible_collections.acme.tools.plugins.module_utils.greetings import greeting",
        "greeting(name)",
    );
    let stamp = writer_module("", r#""stamped\n""#);
    let module_path = format!("{COLLECTION}/plugins/modules/greeting.py");
    let utils_path = format!("{COLLECTION}/plugins/module_utils/greetings.py");
    let role_tasks = format!("{COLLECTION}/roles/greeter/tasks/main.yml");
    let runtime_path = format!("{COLLECTION}/meta/runtime.yml");
    let included_tasks = format!("{COLLECTION}/roles/greeter/tasks/included.yml");
    let site = format!(
        "{}  roles:\n    - role: acme.tools.greeter\n",
        play(
            r#"
    - acme.tools.greeting: {path: /etc/greeting-fqcn, name: fqcn}
    - acme.tools.hello: {path: /etc/greeting-redirect, name: redirect}
    - greeting: {path: /etc/greeting-keyword, name: keyword}
      collections: [acme.tools]
    - include_role: {name: local}
    - include_role: {name: acme.tools.greeter, tasks_from: included}
"#
        )
    );
    let files = [
        ("site.yml", site.as_str()),
        (module_path.as_str(), greeting.as_str()),
        (
            utils_path.as_str(),
            "def greeting(name):\n    return 'hello %s\\n' % name\n",
        ),
        (
            role_tasks.as_str(),
            "- greeting: {path: /etc/greeting-role, name: role}\n",
        ),
        (
            included_tasks.as_str(),
            "- greeting: {path: /etc/greeting-included, name: included}\n",
        ),
        (
            runtime_path.as_str(),
            "plugin_routing:\n  modules:\n    hello:\n      redirect: acme.tools.greeting\n",
        ),
        ("roles/local/library/stamp.py", stamp.as_str()),
        (
            "roles/local/tasks/main.yml",
            "- stamp: {path: /etc/stamped, name: warn}\n",
        ),
    ];
    let run = converge_with(&t, &files, "/etc", true, &["--diff"]);
    assert_eq!(run.recap("t", "changed"), 6, "{}", run.stdout);
    assert!(run.stdout.contains("+hello fqcn"), "{}", run.stdout);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains("[WARNING]: asked to warn"), "{output}");
    assert_eq!(
        t.root("cat /etc/greeting-fqcn /etc/greeting-redirect /etc/greeting-keyword /etc/greeting-role /etc/greeting-included /etc/stamped"),
        "hello fqcn\nhello redirect\nhello keyword\nhello role\nhello included\nstamped\n"
    );
}

#[test]
fn collections_path_and_library_come_from_the_environment_and_ansible_cfg() {
    let t = Target::start_with_python("t");
    let stamp = writer_module("", "name");
    let tasks = r#"
    - acme.elsewhere.stamp: {path: /etc/from-collection, name: collection}
    - action: "{{ 'cfg_' ~ 'stamp' }} path=/etc/from-library name=library"
"#;
    let dir = project(&[
        ("site.yml", &play(tasks)),
        ("ansible.cfg", "[defaults]\nlibrary = mylib\n"),
        ("mylib/cfg_stamp.py", &stamp),
        (
            "shared/ansible_collections/acme/elsewhere/plugins/modules/stamp.py",
            &stamp,
        ),
    ]);
    let inv = inventory(dir.path(), "all", &[&t]);
    let shared = dir.path().join("shared");
    let run_with = |site: &str| {
        run_kiln(
            &kiln(),
            dir.path(),
            &["playbook", "-i", inv.to_str().expect("utf-8"), site],
            &[
                ("ANSIBLE_HOST_KEY_CHECKING", "false"),
                ("ANSIBLE_COLLECTIONS_PATH", shared.to_str().expect("utf-8")),
            ],
        )
    };
    let run = run_with("site.yml");
    run.assert_ok();
    assert_eq!(run.recap("t", "changed"), 2, "{}", run.stdout);
    assert_eq!(
        t.root("cat /etc/from-collection /etc/from-library"),
        "collectionlibrary"
    );
    // A name no collection or library holds is refused when the playbook loads.
    std::fs::write(
        dir.path().join("typo.yml"),
        play("    - acme.elsewhere.stomp: {path: /etc/x}\n"),
    )
    .expect("write");
    let typo = run_with("typo.yml");
    assert_ne!(typo.code, 0);
    assert!(
        typo.stderr
            .contains("typo.yml:5:7: unknown module 'acme.elsewhere.stomp'"),
        "{}",
        typo.stderr
    );
}

#[test]
fn an_ansible_core_module_kiln_lacks_runs_with_become() {
    let t = Target::start_with_python("t");
    let tasks = r#"
    - ansible.builtin.dpkg_selections: {name: openssh-server, selection: hold}
      register: held
    - assert:
        that: held.after == 'hold'
"#;
    converge_with(
        &t,
        &[("site.yml", &play(tasks))],
        "/var/lib/dpkg/status /var/lib/dpkg/selections",
        true,
        &[],
    );
    assert_eq!(
        t.root("dpkg --get-selections openssh-server")
            .split_whitespace()
            .last(),
        Some("hold")
    );
}

#[test]
fn a_failing_python_module_fails_its_task_with_the_modules_message() {
    let t = Target::start_with_python("t");
    let run = run_play(
        &t,
        &play("    - ansible.builtin.dpkg_selections: {name: openssh-server, selection: bogus}\n"),
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.recap("t", "failed"), 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("value of selection must be one of"),
        "{}",
        run.stdout
    );
}

#[test]
fn ansible_python_interpreter_chooses_the_python() {
    let t = Target::start_with_python("t");
    let task = |interpreter: &str| {
        format!(
            "    - ansible.builtin.dpkg_selections: {{name: openssh-server, selection: install}}\n      vars: {{ansible_python_interpreter: {interpreter}}}\n"
        )
    };
    let tasks = [
        task("/usr/bin/python3.11"),
        task("auto_silent"),
        task("/opt/none/python3"),
    ]
    .concat();
    let run = run_play(&t, &play(&tasks));
    assert_eq!(run.recap("t", "ok"), 2, "{}", run.stdout);
    assert_eq!(run.recap("t", "failed"), 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ansible_python_interpreter (/opt/none/python3) does not exist there"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_target_without_python_gets_both_fixes_named() {
    let t = Target::start("t");
    let run = run_play(
        &t,
        &play("    - ansible.builtin.dpkg_selections: {name: openssh-server, selection: hold}\n"),
    );
    assert_eq!(run.recap("t", "failed"), 1, "{}", run.stdout);
    for wanted in ["dpkg_selections", "install python3", "native module"] {
        assert!(run.stdout.contains(wanted), "{wanted}: {}", run.stdout);
    }
}
