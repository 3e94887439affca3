//! `service` plans from recorded `systemctl show` / `is-enabled` and SysV probe output.

use super::*;

const RUNNING_ENABLED: &str =
    "Id=nginx.service\nLoadState=loaded\nActiveState=active\nenablement:enabled\n";
const STOPPED_DISABLED: &str =
    "Id=nginx.service\nLoadState=loaded\nActiveState=inactive\nenablement:disabled\n";
const STATIC_STOPPED: &str =
    "Id=tmp.mount\nLoadState=loaded\nActiveState=inactive\nenablement:static\n";
const MASKED: &str = "LoadState=masked\nActiveState=inactive\nenablement:masked\n";

fn wanted(state: Option<RunState>, enabled: Option<bool>) -> Wanted {
    Wanted {
        name: "nginx".into(),
        state,
        enabled,
        ..Wanted::default()
    }
}

fn verbs(wanted: &Wanted, recorded: &str) -> Vec<Verb> {
    plan_systemd(wanted, &parse_unit(recorded))
}

#[test]
fn unit_states() {
    let nginx = parse_unit(RUNNING_ENABLED);
    assert!(nginx.found() && nginx.running() && nginx.enabled() && !nginx.masked());
    let missing =
        parse_unit("Id=nope.service\nLoadState=not-found\nActiveState=inactive\nenablement:\n");
    assert!(!missing.found());
    let masked = parse_unit(MASKED);
    assert!(masked.found() && masked.masked());
}

#[test]
fn state_parses_the_four_words_only() {
    assert_eq!(
        RunState::parse("service", "reloaded").ok(),
        Some(RunState::Reloaded)
    );
    assert!(RunState::parse("service", "running").is_err());
}

#[test]
fn started_starts_only_a_stopped_unit() {
    let w = wanted(Some(RunState::Started), None);
    assert_eq!(verbs(&w, STOPPED_DISABLED), [Verb::Start]);
    assert!(verbs(&w, RUNNING_ENABLED).is_empty());
}

#[test]
fn stopped_stops_only_a_running_unit() {
    let w = wanted(Some(RunState::Stopped), None);
    assert_eq!(verbs(&w, RUNNING_ENABLED), [Verb::Stop]);
    assert!(verbs(&w, STOPPED_DISABLED).is_empty());
}

#[test]
fn restarted_always_restarts() {
    let w = wanted(Some(RunState::Restarted), None);
    assert_eq!(verbs(&w, RUNNING_ENABLED), [Verb::Restart]);
    assert_eq!(verbs(&w, STOPPED_DISABLED), [Verb::Restart]);
}

#[test]
fn reloaded_reloads_a_running_unit_and_starts_a_stopped_one() {
    let w = wanted(Some(RunState::Reloaded), None);
    assert_eq!(verbs(&w, RUNNING_ENABLED), [Verb::Reload]);
    assert_eq!(verbs(&w, STOPPED_DISABLED), [Verb::Start]);
}

#[test]
fn enabled_enables_before_starting_and_leaves_static_units_alone() {
    let w = wanted(Some(RunState::Started), Some(true));
    assert_eq!(verbs(&w, STOPPED_DISABLED), [Verb::Enable, Verb::Start]);
    assert_eq!(verbs(&w, STATIC_STOPPED), [Verb::Start]);
    assert!(verbs(&w, RUNNING_ENABLED).is_empty());
    let off = wanted(None, Some(false));
    assert_eq!(verbs(&off, RUNNING_ENABLED), [Verb::Disable]);
    assert!(verbs(&off, STATIC_STOPPED).is_empty());
}

#[test]
fn indirect_units_count_as_disabled_as_ansible_counts_them() {
    const INDIRECT: &str =
        "Id=dummy.service\nLoadState=loaded\nActiveState=inactive\nenablement:indirect\n";
    assert!(verbs(&wanted(None, Some(false)), INDIRECT).is_empty());
    assert_eq!(verbs(&wanted(None, Some(true)), INDIRECT), [Verb::Enable]);
    // Once its Also= units are enabled, `is-enabled -l` lists their links after the state,
    // and Ansible's module takes the unit as enabled.
    let linked = format!("{INDIRECT}  /etc/systemd/system/sockets.target.wants/dummy.socket\n");
    assert!(verbs(&wanted(None, Some(true)), &linked).is_empty());
    assert_eq!(verbs(&wanted(None, Some(false)), &linked), [Verb::Disable]);
}

#[test]
fn unmasking_enables_again() {
    let mut w = wanted(None, Some(true));
    w.masked = Some(false);
    assert_eq!(verbs(&w, MASKED), [Verb::Unmask, Verb::Enable]);
    w.masked = Some(true);
    w.enabled = None;
    assert!(verbs(&w, MASKED).is_empty());
    assert_eq!(verbs(&w, RUNNING_ENABLED), [Verb::Mask]);
}

#[test]
fn sysv_uses_the_boot_tool_it_found() {
    let stopped = parse_sysv("running:3\ntool:update-rc.d\n");
    assert_eq!(
        plan_sysv(&wanted(Some(RunState::Started), Some(true)), &stopped).expect("a plan"),
        [
            "update-rc.d nginx defaults && update-rc.d nginx enable",
            "service nginx start"
        ]
    );
    let running = parse_sysv("running:0\nenabled:yes\ntool:openrc\n");
    assert!(
        plan_sysv(&wanted(Some(RunState::Started), Some(true)), &running)
            .expect("a plan")
            .is_empty()
    );
    assert_eq!(
        plan_sysv(&wanted(Some(RunState::Stopped), Some(false)), &running).expect("a plan"),
        ["rc-update del nginx default", "rc-service nginx stop"]
    );
    assert_eq!(
        plan_sysv(&wanted(Some(RunState::Reloaded), None), &running).expect("a plan"),
        ["rc-service nginx reload"]
    );
    let no_tool = parse_sysv("running:0\n");
    assert!(plan_sysv(&wanted(None, Some(true)), &no_tool).is_err());
}
