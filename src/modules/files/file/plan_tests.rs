//! `file` plans from recorded `stat` lines (as `present_state_command` prints them).

use super::super::stamp::Stamp;
use super::*;
use crate::modules::util::{parse_probe, Mode};

const ABSENT: &str = "absent\n";
const DIRECTORY: &str = "directory|755|root|root|0|0|4096|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/srv/data'\n";
const FILE: &str = "regular file|600|root|root|0|0|12|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/srv/f'\n";
const LINK: &str =
    "symbolic link|777|kiln|kiln|1000|1000|9|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/srv/current' -> '/srv/data'\n";

fn observed(recorded: &str) -> Observed {
    Observed {
        path: parse_probe(recorded),
        ..Observed::default()
    }
}

fn args(path: &str, state: Option<FileState>) -> FileArgs {
    FileArgs {
        path: path.into(),
        state,
        ..FileArgs::default()
    }
}

fn owned(owner: &str, group: &str) -> Attributes {
    Attributes {
        owner: Some(owner.into()),
        group: Some(group.into()),
        ..Attributes::default()
    }
}

fn commands(args: &FileArgs, recorded: &str) -> Vec<String> {
    let plan = plan(args, &observed(recorded)).expect("a plan");
    plan.steps.iter().map(|s| s.command(&args.path)).collect()
}

#[test]
fn state_parses_every_ansible_word_and_rejects_others() {
    for word in ["absent", "directory", "file", "touch", "link", "hard"] {
        assert_eq!(FileState::parse(word).expect(word).as_str(), word);
    }
    assert!(FileState::parse("socket").is_err());
}

#[test]
fn directory_absent_is_created_with_mode_and_recursive_owner() {
    let mut a = args("/srv/data", Some(FileState::Directory));
    a.attrs = owned("kiln", "kiln");
    a.attrs.mode = Some(Mode::Octal(0o750));
    a.recurse = true;
    assert_eq!(
        commands(&a, ABSENT),
        [
            "install -d -m 0750 -- /srv/data",
            "chown -h -R kiln /srv/data",
            "chgrp -h -R kiln /srv/data",
        ]
    );
    let plan = plan(&a, &observed(ABSENT)).expect("a plan");
    assert_eq!(plan.mode, Some(0o750));
}

#[test]
fn directory_present_changes_only_what_differs() {
    let mut a = args("/srv/data", Some(FileState::Directory));
    a.attrs = owned("root", "kiln");
    a.attrs.mode = Some(Mode::Symbolic("g+w".into()));
    assert_eq!(
        commands(&a, DIRECTORY),
        ["chgrp -h kiln /srv/data", "chmod 0775 /srv/data"]
    );
    let converged = "directory|775|root|kiln|0|1000|4096|1700000000.0|1700000000.0|1700000000.0|2049|7|1|8|4096|0|0|'/srv/data'\n";
    assert!(commands(&a, converged).is_empty());
}

#[test]
fn directory_recurse_chowns_the_tree_only_when_something_below_differs() {
    let mut a = args("/srv/data", None);
    a.attrs.owner = Some("root".into());
    a.recurse = true;
    assert!(commands(&a, DIRECTORY).is_empty());
    let mut seen = observed(DIRECTORY);
    seen.tree_differs = true;
    let plan = plan(&a, &seen).expect("a plan");
    assert_eq!(plan.state, FileState::Directory);
    assert_eq!(
        plan.steps,
        [Step::Attribute {
            change: AttrChange::Owner("root".into()),
            recursive: true
        }]
    );
}

#[test]
fn directory_over_a_file_fails() {
    let a = args("/srv/f", Some(FileState::Directory));
    assert!(plan(&a, &observed(FILE)).is_err());
}

#[test]
fn file_needs_an_existing_path_and_resolves_a_symbolic_mode() {
    let mut a = args("/srv/f", Some(FileState::File));
    assert!(plan(&a, &observed(ABSENT)).is_err());
    a.attrs.mode = Some(Mode::Symbolic("u=rw,g=r".into()));
    let plan = plan(&a, &observed(FILE)).expect("a plan");
    assert_eq!(plan.steps, [attr(AttrChange::Mode(0o640))]);
    assert_eq!(plan.mode, Some(0o640));
}

#[test]
fn no_state_keeps_the_current_kind_or_means_file() {
    let a = args("/srv/x", None);
    assert_eq!(a.wanted(&parse_probe(DIRECTORY)), FileState::Directory);
    assert_eq!(a.wanted(&parse_probe(LINK)), FileState::Link);
    assert_eq!(a.wanted(&parse_probe(FILE)), FileState::File);
    assert_eq!(a.wanted(&parse_probe(ABSENT)), FileState::File);
    let linked = FileArgs {
        src: Some("/srv/data".into()),
        ..a
    };
    assert_eq!(linked.wanted(&parse_probe(ABSENT)), FileState::Link);
}

#[test]
fn touch_absent_creates_then_sets_mode_and_owner() {
    let mut a = args("/srv/stamp", Some(FileState::Touch));
    a.attrs.mode = Some(Mode::Octal(0o644));
    a.attrs.owner = Some("kiln".into());
    assert_eq!(
        commands(&a, ABSENT),
        [
            "touch -- /srv/stamp",
            "chmod 0644 /srv/stamp",
            "chown -h kiln /srv/stamp",
        ]
    );
}

#[test]
fn touch_present_changes_times_unless_both_are_preserved() {
    let mut a = args("/srv/f", Some(FileState::Touch));
    assert_eq!(commands(&a, FILE), ["touch -- /srv/f"]);
    // A link's own times, never what it names.
    assert_eq!(commands(&a, LINK), ["touch -h -- /srv/f"]);
    a.mtime = Stamp::Preserve;
    a.atime = Stamp::Preserve;
    assert!(commands(&a, FILE).is_empty());
}

#[test]
fn given_times_are_set_once() {
    let mut a = args("/srv/f", Some(FileState::Touch));
    a.mtime = Stamp::At(1_577_880_000);
    // The access time is `now` for touch: it always changes, as in Ansible.
    assert_eq!(
        commands(&a, FILE),
        ["touch -c -m -d @1577880000 -- /srv/f && touch -c -a -- /srv/f"]
    );
    let mut file = args("/srv/f", Some(FileState::File));
    file.mtime = Stamp::At(1_577_880_000);
    assert_eq!(
        commands(&file, FILE),
        ["touch -c -m -d @1577880000 -- /srv/f"]
    );
    let mut there = parse_probe(FILE);
    there.mtime = 1_577_880_000.0;
    let observed = Observed {
        path: there,
        ..Default::default()
    };
    assert!(plan(&file, &observed).unwrap().steps.is_empty());
}

#[test]
fn link_absent_is_created_and_owned() {
    let mut a = args("/srv/current", Some(FileState::Link));
    a.src = Some("/srv/data".into());
    a.attrs.group = Some("kiln".into());
    assert_eq!(
        commands(&a, ABSENT),
        [
            "ln -s -f -n -- /srv/data /srv/current",
            "chgrp -h kiln /srv/current",
        ]
    );
}

#[test]
fn link_present_is_left_alone_when_it_names_src_with_its_owner() {
    let mut a = args("/srv/current", Some(FileState::Link));
    a.src = Some("/srv/data".into());
    a.attrs = owned("kiln", "1000");
    a.attrs.mode = Some(Mode::Octal(0o600));
    assert!(commands(&a, LINK).is_empty());
    a.src = Some("/srv/other".into());
    assert_eq!(
        commands(&a, LINK),
        ["ln -s -f -n -- /srv/other /srv/current"]
    );
}

#[test]
fn link_over_a_file_needs_force() {
    let mut a = args("/srv/f", Some(FileState::Link));
    a.src = Some("/srv/data".into());
    assert!(plan(&a, &observed(FILE)).is_err());
    a.force = true;
    assert_eq!(commands(&a, FILE), ["ln -s -f -n -- /srv/data /srv/f"]);
}

#[test]
fn hard_link_is_made_unless_already_the_same_file() {
    let mut a = args("/srv/f", Some(FileState::Hard));
    a.src = Some("/srv/g".into());
    assert_eq!(commands(&a, ABSENT), ["ln -f -n -- /srv/g /srv/f"]);
    assert_eq!(commands(&a, FILE), ["ln -f -n -- /srv/g /srv/f"]);
    let mut same = observed(FILE);
    same.same_file = true;
    assert!(plan(&a, &same).expect("a plan").steps.is_empty());
}

#[test]
fn absent_removes_only_what_exists() {
    let a = args("/srv/old", Some(FileState::Absent));
    assert_eq!(commands(&a, DIRECTORY), ["rm -rf -- /srv/old"]);
    assert!(commands(&a, ABSENT).is_empty());
}

#[test]
fn creating_states_send_their_absent_plan_ahead() {
    for state in [
        FileState::Directory,
        FileState::Touch,
        FileState::Link,
        FileState::Hard,
    ] {
        let a = FileArgs {
            src: Some("/srv/data".into()),
            ..args("/srv/x", Some(state))
        };
        assert!(a.creates());
        assert!(!plan(&a, &Observed::default())
            .expect("a plan")
            .steps
            .is_empty());
    }
    assert!(!args("/srv/x", Some(FileState::Absent)).creates());
    assert!(!args("/srv/x", None).creates());
}

fn attr(change: AttrChange) -> Step {
    Step::Attribute {
        change,
        recursive: false,
    }
}
