//! Dynamic inventory: executable inventory scripts and the `constructed` plugin, mixed with
//! static files in a directory or as several `-i` sources. `kiln inventory` must show what
//! the real ansible-inventory shows for the same sources, and a playbook must reach a real
//! target that only a script names.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;
use support::Target;

const ANSIBLE_INVENTORY: &str = "/var/cache/kiln-test/ansible-venv/bin/ansible-inventory";

/// A script printing groups in every form Ansible reads (hosts/vars/children, the bare
/// list) with `_meta.hostvars`.
const SCRIPT_WITH_META: &str = r#"#!/bin/sh
if [ "$1" = "--list" ]; then
cat <<'J'
{"cache": {"hosts": ["c1", "c2"], "vars": {"mem": 64}},
 "edge": ["e1"],
 "infra": {"children": ["cache", "edge"]},
 "_meta": {"hostvars": {"c1": {"os": "debian"}, "e1": {"os": "alpine", "ansible_host": "10.0.0.9"}}}}
J
else echo '{}'; fi
"#;

const STATIC_HOSTS: &str = "[web]\nweb1 http_port=80 os=debian\nweb2 http_port=8080 os=alpine\n\n[db]\ndb1\n\n[all:vars]\ndc=fra\n";

const CONSTRUCTED: &str = r#"plugin: ansible.builtin.constructed
strict: false
compose:
  url: "'http://' ~ inventory_hostname ~ ':' ~ (http_port | default(80))"
groups:
  big_cache: mem is defined and mem > 32
keyed_groups:
  - key: os
    prefix: os
  - key: os
    parent_group: systems
  - key: dc
    prefix: site
"#;

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn ansible_inventory(dir: &Path, args: &[&str]) -> String {
    assert!(
        Path::new(ANSIBLE_INVENTORY).exists(),
        "{ANSIBLE_INVENTORY} is missing: run scripts/setup"
    );
    let out = Command::new(ANSIBLE_INVENTORY)
        .current_dir(dir)
        .args(args)
        .env("HOME", dir)
        .env("ANSIBLE_DEPRECATION_WARNINGS", "false")
        .env_remove("ANSIBLE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ansible-inventory failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kiln_inventory(dir: &Path, args: &[&str]) -> support::Run {
    support::run_kiln(&support::kiln(), dir, &[&["inventory"], args].concat(), &[])
}

/// ansible-inventory's JSON with its `__ansible_unsafe` wrappers (which mark values a plugin
/// computed) taken off: kiln prints the plain values.
fn plain(value: Json) -> Json {
    match value {
        Json::Object(mut map) => {
            if map.len() == 1 && map.contains_key("__ansible_unsafe") {
                return map.remove("__ansible_unsafe").unwrap_or_default();
            }
            Json::Object(map.into_iter().map(|(k, v)| (k, plain(v))).collect())
        }
        Json::Array(items) => Json::Array(items.into_iter().map(plain).collect()),
        other => other,
    }
}

fn assert_same_as_ansible(dir: &Path, sources: &[&str]) {
    let mut args: Vec<&str> = sources.iter().flat_map(|s| ["-i", *s]).collect();
    args.push("--list");
    let kiln = kiln_inventory(dir, &args);
    kiln.assert_ok();
    let ours: Json = serde_json::from_str(&kiln.stdout).unwrap();
    let theirs = plain(serde_json::from_str(&ansible_inventory(dir, &args)).unwrap());
    assert_eq!(ours, theirs, "kiln:\n{}", kiln.stdout);
    args.pop();
    args.push("--graph");
    let graph = kiln_inventory(dir, &args);
    graph.assert_ok();
    assert_eq!(graph.stdout, ansible_inventory(dir, &args));
}

#[test]
fn a_directory_of_static_files_scripts_and_constructed_matches_ansible_inventory() {
    let dir = support::project(&[
        ("inv/01-hosts.ini", STATIC_HOSTS),
        ("inv/03-constructed.yml", CONSTRUCTED),
        // Ansible skips these extensions in a directory; parsed, they would fail.
        ("inv/notes.md", "[broken\n"),
        ("inv/old.bak", "[broken\n"),
        ("inv/group_vars/web.yml", "tier: front\n"),
        (
            "inv/sub/04-more.yml",
            "all:\n  children:\n    late:\n      hosts:\n        l1:\n",
        ),
    ]);
    write_script(&dir.path().join("inv/02-script.sh"), SCRIPT_WITH_META);
    // Executable but not a script: read as INI, as Ansible falls back to.
    write_script(&dir.path().join("inv/00-exec-hosts"), "[misc]\nm1\n");
    assert_same_as_ansible(dir.path(), &["inv"]);
    let list = kiln_inventory(dir.path(), &["-i", "inv", "--list"]);
    let json: Json = serde_json::from_str(&list.stdout).unwrap();
    // What the sources gave, checked directly as well.
    assert_eq!(
        json["infra"]["children"],
        serde_json::json!(["cache", "edge"])
    );
    assert_eq!(json["_meta"]["hostvars"]["e1"]["ansible_host"], "10.0.0.9");
    assert_eq!(json["_meta"]["hostvars"]["web2"]["url"], "http://web2:8080");
    assert_eq!(json["_meta"]["hostvars"]["web1"]["tier"], "front");
    assert_eq!(json["misc"]["hosts"], serde_json::json!(["m1"]));
    assert_eq!(json["big_cache"]["hosts"], serde_json::json!(["c1", "c2"]));
    assert_eq!(
        json["systems"]["children"],
        serde_json::json!(["_debian", "_alpine"])
    );
    assert!(
        json.get("site_fra").is_none(),
        "all's vars are not visible to constructed"
    );
}

#[test]
fn several_sources_in_order_match_ansible_inventory() {
    let dir = support::project(&[
        ("hosts.ini", STATIC_HOSTS),
        ("constructed.yml", CONSTRUCTED),
    ]);
    write_script(&dir.path().join("script.sh"), SCRIPT_WITH_META);
    assert_same_as_ansible(dir.path(), &["hosts.ini", "script.sh", "constructed.yml"]);
    // constructed sees only the sources before it.
    assert_same_as_ansible(dir.path(), &["hosts.ini", "constructed.yml", "script.sh"]);
    let list = kiln_inventory(
        dir.path(),
        &[
            "-i",
            "hosts.ini",
            "-i",
            "constructed.yml",
            "-i",
            "script.sh",
            "--list",
        ],
    );
    let json: Json = serde_json::from_str(&list.stdout).unwrap();
    assert!(json["_meta"]["hostvars"]["c1"].get("url").is_none());
}

#[test]
fn a_script_without_meta_is_asked_for_each_host() {
    let dir = support::project(&[]);
    let log = dir.path().join("calls");
    write_script(
        &dir.path().join("inv.sh"),
        &format!(
            r#"#!/bin/sh
echo "$*" >> {log}
case "$1" in
  --list) echo '{{"web": {{"hosts": ["w1", "w2"], "vars": {{"port": 80}}}}, "lonely": {{"x": 1}}}}' ;;
  --host) [ "$2" = w1 ] && echo '{{"role": "front", "n": [1, 2]}}' || echo '' ;;
esac
"#,
            log = log.display()
        ),
    );
    assert_same_as_ansible(dir.path(), &["inv.sh"]);
    std::fs::remove_file(&log).unwrap();
    let host = kiln_inventory(dir.path(), &["-i", "inv.sh", "--host", "w1"]);
    host.assert_ok();
    let ours: Json = serde_json::from_str(&host.stdout).unwrap();
    assert_eq!(
        ours,
        serde_json::json!({"port": 80, "role": "front", "n": [1, 2]})
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let mut calls: Vec<&str> = calls.lines().collect();
    calls.sort();
    assert_eq!(
        calls,
        vec!["--host lonely", "--host w1", "--host w2", "--list"]
    );
}

#[test]
fn a_failing_script_or_bad_json_is_an_error_naming_the_script() {
    let dir = support::project(&[]);
    write_script(
        &dir.path().join("fails.sh"),
        "#!/bin/sh\necho 'cannot reach the CMDB' >&2\necho 'token expired' >&2\nexit 3\n",
    );
    write_script(
        &dir.path().join("garbage.sh"),
        "#!/bin/sh\necho 'not json'\necho oops >&2\n",
    );
    let run = kiln_inventory(dir.path(), &["-i", "fails.sh", "--list"]);
    assert_ne!(run.code, 0);
    for needed in [
        "fails.sh",
        "exit code 3",
        "cannot reach the CMDB",
        "token expired",
    ] {
        assert!(run.stderr.contains(needed), "{needed}: {}", run.stderr);
    }
    let run = kiln_inventory(dir.path(), &["-i", "garbage.sh", "--list"]);
    assert_ne!(run.code, 0);
    for needed in ["garbage.sh --list did not print JSON", "oops"] {
        assert!(run.stderr.contains(needed), "{needed}: {}", run.stderr);
    }
    // A playbook run stops on it too, before connecting anywhere.
    std::fs::write(dir.path().join("site.yml"), support::play("    - ping:\n")).unwrap();
    let run = support::playbook(dir.path(), &["-i", "fails.sh", "site.yml"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("exit code 3"), "{}", run.stderr);
}

#[test]
fn a_playbook_reaches_a_target_that_only_a_script_names_in_a_constructed_group() {
    let target = Target::start("t");
    let dir = support::project(&[
        (
            "constructed.yml",
            "plugin: constructed\nstrict: true\nkeyed_groups:\n  - key: role\n    prefix: role\ncompose:\n  greeting: \"'hello from ' ~ inventory_hostname\"\n",
        ),
        (
            "site.yml",
            "- hosts: role_builder\n  gather_facts: no\n  tasks:\n    - command: echo {{ greeting }}\n      register: out\n    - debug: var=out.stdout\n",
        ),
    ]);
    let meta = serde_json::json!({
        "builders": {"hosts": ["box"]},
        "_meta": {"hostvars": {"box": {
            "role": "builder",
            "ansible_host": target.address.to_string(),
            "ansible_user": "kiln",
            "ansible_ssh_private_key_file": support::client_key(),
        }}}
    });
    write_script(
        &dir.path().join("fleet.sh"),
        &format!("#!/bin/sh\ncat <<'J'\n{meta}\nJ\n"),
    );
    let run = support::playbook(
        dir.path(),
        &["-i", "fleet.sh", "-i", "constructed.yml", "site.yml"],
    );
    run.assert_ok();
    assert_eq!(run.recap("box", "ok"), 2);
    assert!(run.stdout.contains("hello from box"), "{}", run.stdout);
}
