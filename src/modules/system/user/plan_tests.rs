//! `user` plans from recorded probe output (`getent passwd`, `shadow:`, `pgroup:`, `groups:`).

use super::*;

/// The probe's output for an existing, locked account in `adm`, expiring on day 20000.
const DEPLOY: &str = "deploy:x:1001:1001:Deploy:/home/deploy:/bin/sh\nshadow:deploy:!$6$old:19000:0:99999:7::20000:\npgroup:deploy\ngroups:deploy adm\n";
/// The probe's output for a missing account whose name a group already has.
const MISSING_WITH_GROUP: &str = "shadow:\npgroup:\ngroups:\nsamegroup\n";
/// The probe's output for a missing account.
const MISSING: &str = "shadow:\npgroup:\ngroups:\n";

fn wanted(state: State) -> Wanted {
    Wanted {
        name: "deploy".into(),
        state,
        create_home: true,
        ..Wanted::default()
    }
}

fn steps(wanted: &Wanted, recorded: &str) -> Vec<Step> {
    plan(wanted, &parse_account(recorded, "deploy"))
}

fn modify(opts: &[&str]) -> Vec<Step> {
    vec![Step::Modify(opts.iter().map(|o| o.to_string()).collect())]
}

#[test]
fn reads_the_account() {
    let a = parse_account(DEPLOY, "deploy");
    assert!(a.exists && !a.same_name_group);
    assert_eq!(
        (a.uid, a.home.as_str(), a.shell.as_str()),
        (1001, "/home/deploy", "/bin/sh")
    );
    assert_eq!(a.groups, vec!["deploy", "adm"]);
    assert_eq!(a.expires, "20000");
    assert_eq!(a.password.as_deref(), Some("!$6$old"));
    let missing = parse_account(MISSING_WITH_GROUP, "deploy");
    assert!(!missing.exists && missing.same_name_group);
}

#[test]
fn present_creates_a_missing_account_with_every_option() {
    let w = Wanted {
        uid: Some(1500),
        non_unique: true,
        groups: Some(vec!["adm".into(), "sudo".into()]),
        shell: Some("/bin/bash".into()),
        home: Some("/srv/deploy".into()),
        comment: Some("Deploy user".into()),
        expires: Some("20000".into()),
        system: true,
        skeleton: Some("/etc/skel".into()),
        ..wanted(State::Present)
    };
    let opts = [
        "-u 1500",
        "-o",
        "-G adm,sudo",
        "-s /bin/bash",
        "-d /srv/deploy",
        "-c 'Deploy user'",
        "-e 20000",
        "-r",
        "-m",
        "-k /etc/skel",
    ];
    assert_eq!(
        steps(&w, MISSING),
        [Step::Create(opts.iter().map(|o| o.to_string()).collect())]
    );
}

#[test]
fn present_creates_into_a_group_of_the_same_name_and_without_home() {
    let w = Wanted {
        create_home: false,
        ..wanted(State::Present)
    };
    assert_eq!(
        steps(&w, MISSING_WITH_GROUP),
        [Step::Create(vec!["-g deploy".into(), "-M".into()])]
    );
    assert_eq!(steps(&w, MISSING), [Step::Create(vec!["-M".into()])]);
}

#[test]
fn a_created_account_gets_its_hash_on_stdin_then_the_lock() {
    let w = Wanted {
        password: Some("$6$new".into()),
        password_lock: Some(true),
        update_password: UpdatePassword::OnCreate,
        ..wanted(State::Present)
    };
    let planned = steps(&w, MISSING);
    assert_eq!(
        planned,
        [
            Step::Create(vec!["-m".into()]),
            Step::SetPassword("$6$new".into()),
            Step::Modify(vec!["-L".into()]),
        ]
    );
    let (command, input) = render(&planned, "deploy").unwrap_or_default();
    assert_eq!(
        command,
        format!("useradd -m deploy && chpasswd -e && {FORGET_STDIN} && usermod -L deploy")
    );
    assert!(!command.contains("$6$new"), "the hash stays out of argv");
    assert_eq!(input.as_deref(), Some("deploy:$6$new\n"));
}

#[test]
fn present_changes_nothing_on_a_matching_account() {
    let w = Wanted {
        uid: Some(1001),
        group: Some("1001".into()),
        groups: Some(vec!["adm".into()]),
        shell: Some("/bin/sh".into()),
        home: Some("/home/deploy".into()),
        comment: Some("Deploy".into()),
        password: Some("$6$old".into()),
        password_lock: Some(true),
        expires: Some("20000".into()),
        ..wanted(State::Present)
    };
    assert!(steps(&w, DEPLOY).is_empty());
    assert_eq!(render(&[], "deploy"), None);
}

#[test]
fn present_modifies_the_shell_uid_comment_and_expiry() {
    let w = Wanted {
        uid: Some(1002),
        shell: Some("/bin/bash".into()),
        comment: Some("Deployer".into()),
        expires: Some(String::new()),
        ..wanted(State::Present)
    };
    assert_eq!(
        steps(&w, DEPLOY),
        modify(&["-u 1002", "-s /bin/bash", "-c Deployer", "-e ''"])
    );
}

#[test]
fn groups_append_adds_only_missing_ones() {
    let append = |groups: &[&str]| Wanted {
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        append: true,
        ..wanted(State::Present)
    };
    assert_eq!(
        steps(&append(&["sudo"]), DEPLOY),
        modify(&["-a", "-G sudo"])
    );
    assert!(steps(&append(&["adm"]), DEPLOY).is_empty());
}

#[test]
fn groups_replace_drops_extra_ones() {
    let replace = |groups: Vec<String>| Wanted {
        groups: Some(groups),
        ..wanted(State::Present)
    };
    assert_eq!(steps(&replace(vec![]), DEPLOY), modify(&["-G ''"]));
    assert_eq!(
        steps(&replace(vec!["sudo".into()]), DEPLOY),
        modify(&["-G sudo"])
    );
    assert!(steps(&replace(vec!["adm".into()]), DEPLOY).is_empty());
}

#[test]
fn home_moves_only_when_asked() {
    let home = |move_home| Wanted {
        home: Some("/srv/deploy".into()),
        move_home,
        ..wanted(State::Present)
    };
    assert_eq!(steps(&home(false), DEPLOY), modify(&["-d /srv/deploy"]));
    assert_eq!(
        steps(&home(true), DEPLOY),
        modify(&["-d /srv/deploy", "-m"])
    );
}

#[test]
fn password_updates_always_but_not_on_create() {
    let password = |update_password| Wanted {
        password: Some("$6$new".into()),
        password_lock: Some(false),
        update_password,
        ..wanted(State::Present)
    };
    // The hash first, so that a lock in the same run applies to the new one.
    assert_eq!(
        steps(&password(UpdatePassword::Always), DEPLOY),
        [
            Step::SetPassword("$6$new".into()),
            Step::Modify(vec!["-U".into()])
        ]
    );
    assert_eq!(
        steps(&password(UpdatePassword::OnCreate), DEPLOY),
        modify(&["-U"])
    );
}

#[test]
fn system_only_matters_at_creation() {
    let w = Wanted {
        system: true,
        ..wanted(State::Present)
    };
    assert!(steps(&w, DEPLOY).is_empty());
    assert_eq!(
        steps(&w, MISSING),
        [Step::Create(vec!["-r".into(), "-m".into()])]
    );
}

#[test]
fn the_ssh_key_goes_under_the_home_unless_absolute() {
    let account = parse_account(DEPLOY, "deploy");
    let key = |file: Option<&str>| SshKey {
        key_type: "ed25519".into(),
        file: file.map(str::to_string),
        ..SshKey::default()
    };
    assert_eq!(
        key_file(&key(None), "deploy", &account),
        "/home/deploy/.ssh/id_ed25519"
    );
    assert_eq!(
        key_file(&key(Some("keys/id")), "deploy", &account),
        "/home/deploy/keys/id"
    );
    assert_eq!(
        key_file(&key(Some("/etc/k")), "deploy", &Account::default()),
        "/etc/k"
    );
    assert_eq!(
        key_file(&key(None), "deploy", &Account::default()),
        "/home/deploy/.ssh/id_ed25519"
    );
}

#[test]
fn absent_deletes_an_existing_account_with_remove_and_force() {
    let w = Wanted {
        remove: true,
        force: true,
        ..wanted(State::Absent)
    };
    let planned = steps(&w, DEPLOY);
    assert_eq!(
        planned,
        [Step::Delete {
            remove: true,
            force: true
        }]
    );
    assert_eq!(
        render(&planned, "deploy").map(|(c, _)| c).as_deref(),
        Some("userdel -r -f deploy")
    );
    assert_eq!(
        render(&steps(&wanted(State::Absent), DEPLOY), "deploy").map(|(c, _)| c),
        Some("userdel deploy".to_string())
    );
    assert!(steps(&w, MISSING).is_empty());
}

#[test]
fn a_password_that_is_no_hash_is_warned_about() {
    use super::unhashed_password_warning;
    assert!(unhashed_password_warning("secret").is_some());
    assert!(unhashed_password_warning("$6$short").is_some());
    assert!(unhashed_password_warning("!").is_none());
    let sha512 = format!("$6$saltsalt${}", "a".repeat(86));
    assert!(unhashed_password_warning(&sha512).is_none());
}
