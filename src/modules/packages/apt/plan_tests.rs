//! `apt` plans from recorded probe output (`dpkg-query`, `apt-cache policy`, `dpkg-deb`,
//! the cache's age line).

use super::*;

/// nginx installed, hello removed with its configuration kept, tree never installed; apt
/// offers a newer nginx and nothing for tree.
const STATUSES: &str = "age:120 1764520000.123456789\npkg:nginx\tii \t1.22.1-9\npkg:hello\trc \t2.10-3\ncand:nginx\t1.22.1-10\ncand:tree\t(none)\n";
/// nginx installed at apt's candidate version.
const CURRENT: &str = "pkg:nginx\tii \t1.22.1-10\ncand:nginx\t1.22.1-10\n";

fn args(state: PackageState, names: &[&str]) -> AptArgs {
    AptArgs {
        packages: names.iter().map(|n| parse_wanted(n)).collect(),
        state,
        ..AptArgs::default()
    }
}

fn observed(statuses: &str) -> Observed {
    Observed {
        statuses: statuses.into(),
        deb: None,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn statuses_and_candidates() {
    let nginx = parse_status(STATUSES, "nginx");
    assert_eq!(nginx.installed.as_deref(), Some("1.22.1-9"));
    assert_eq!(nginx.candidate.as_deref(), Some("1.22.1-10"));
    let hello = parse_status(STATUSES, "hello");
    assert!(hello.installed.is_none() && hello.config_files);
    assert_eq!(parse_status(STATUSES, "tree"), Installed::default());
    let qualified = parse_status("pkg:libc6:amd64\tii \t2.36-9\n", "libc6");
    assert_eq!(qualified.installed.as_deref(), Some("2.36-9"));
}

#[test]
fn versioned_names() {
    assert_eq!(
        parse_wanted("nginx=1.22*"),
        Wanted {
            name: "nginx".into(),
            version: Some("1.22*".into())
        }
    );
    assert_eq!(parse_wanted("tree").version, None);
    assert_eq!(parse_wanted("nginx = 1.22*").spec(), "nginx=1.22*");
}

#[test]
fn states_parse_to_three_kinds_and_refuse_the_unsupported() {
    assert_eq!(
        PackageState::parse("installed").ok(),
        Some(PackageState::Present)
    );
    assert_eq!(
        PackageState::parse("removed").ok(),
        Some(PackageState::Absent)
    );
    assert_eq!(
        PackageState::parse("latest").ok(),
        Some(PackageState::Latest)
    );
    for unsupported in ["build-dep", "fixed"] {
        let err = PackageState::parse(unsupported).map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("apt: state={unsupported} is not supported by kiln")
        );
    }
    assert_eq!(Upgrade::parse("yes"), Upgrade::Safe);
    assert_eq!(Upgrade::parse("dist"), Upgrade::Full);
    assert_eq!(Upgrade::parse("no"), Upgrade::No);
}

#[test]
fn present_installs_only_what_is_missing_or_at_another_version() {
    let wanted = args(PackageState::Present, &["nginx", "tree", "hello"]);
    let missing = plan(&wanted, &observed(STATUSES));
    assert_eq!(missing.install, strings(&["tree", "hello"]));
    assert!(missing.remove.is_empty() && missing.whole_system.is_empty());

    let pinned = args(PackageState::Present, &["nginx=1.22*"]);
    assert!(plan(&pinned, &observed(STATUSES)).install.is_empty());
    let other = args(PackageState::Present, &["nginx=1.24*"]);
    assert_eq!(
        plan(&other, &observed(STATUSES)).install,
        strings(&["nginx=1.24*"])
    );
}

#[test]
fn present_with_only_upgrade_leaves_missing_packages_alone() {
    let wanted = AptArgs {
        only_upgrade: true,
        ..args(PackageState::Present, &["tree"])
    };
    assert_eq!(plan(&wanted, &observed(STATUSES)), Plan::default());
}

#[test]
fn absent_removes_installed_packages_and_purge_also_config_files() {
    let wanted = args(PackageState::Absent, &["nginx", "hello", "tree"]);
    let plan_kept = plan(&wanted, &observed(STATUSES));
    assert_eq!(plan_kept.remove, strings(&["nginx"]));
    assert!(!plan_kept.purge && plan_kept.install.is_empty());

    let purging = AptArgs {
        purge: true,
        ..wanted
    };
    let plan_purged = plan(&purging, &observed(STATUSES));
    assert_eq!(plan_purged.remove, strings(&["nginx", "hello"]));
    assert!(plan_purged.purge);
    assert_eq!(plan_purged.diff_text(), "remove nginx\nremove hello\n");
}

#[test]
fn latest_upgrades_a_stale_package_and_installs_a_missing_one() {
    let wanted = args(PackageState::Latest, &["nginx", "tree"]);
    assert!(wanted.reads_candidates());
    let plan_stale = plan(&wanted, &observed(STATUSES));
    assert_eq!(plan_stale.install, strings(&["nginx", "tree"]));
    assert_eq!(plan_stale.diff_text(), "install nginx\ninstall tree\n");

    let current = args(PackageState::Latest, &["nginx"]);
    assert!(plan(&current, &observed(CURRENT)).install.is_empty());
    // Without candidates (check mode before an update) an installed package stays.
    let unknown = observed("pkg:nginx\tii \t1.22.1-9\n");
    assert!(plan(&current, &unknown).install.is_empty());

    let only_upgrade = AptArgs {
        only_upgrade: true,
        ..wanted
    };
    assert_eq!(
        plan(&only_upgrade, &observed(STATUSES)).install,
        strings(&["nginx"])
    );
}

#[test]
fn update_cache_is_due_when_asked_or_older_than_cache_valid_time() {
    let never = parse_probe("age:1764520000 0\n");
    let recent = parse_probe(STATUSES);
    assert_eq!(recent.cache_age, 120);
    assert_eq!(recent.cache_mtime, "1764520000.123456789");
    assert_eq!(mtime_seconds(&recent.cache_mtime), 1_764_520_000);
    assert_eq!(parse_probe("").cache_age, i64::MAX);
    assert_eq!(mtime_seconds("garbage"), 0);

    let plain = AptArgs::default();
    assert!(!plain.needs_cache_update(never.cache_age));

    let update = AptArgs {
        update_cache: true,
        ..AptArgs::default()
    };
    assert!(update.needs_cache_update(recent.cache_age));
    assert!(update.only_updates_cache());

    // cache_valid_time alone asks for an update, but only of lists older than it.
    let valid_for_hour = AptArgs {
        cache_valid_time: 3600,
        ..AptArgs::default()
    };
    assert!(!valid_for_hour.needs_cache_update(recent.cache_age));
    assert!(valid_for_hour.needs_cache_update(never.cache_age));
    let valid_for_minute = AptArgs {
        update_cache: true,
        cache_valid_time: 60,
        ..AptArgs::default()
    };
    assert!(valid_for_minute.needs_cache_update(recent.cache_age));
}

#[test]
fn a_deb_file_installs_unless_its_version_is_installed() {
    let probed = parse_probe("age:5 1764520000.0\ndeb:hello\t2.10-3\n");
    assert_eq!(probed.deb, Some(("hello".into(), "2.10-3".into())));
    let wanted = AptArgs {
        deb: Some("/tmp/hello_2.10-3_amd64.deb".into()),
        ..AptArgs::default()
    };
    assert!(!wanted.only_updates_cache());
    let with_installed = |status: &str| Observed {
        statuses: String::new(),
        deb: Some(ObservedDeb {
            version: "2.10-3".into(),
            installed: parse_deb_installed(status),
        }),
    };
    assert_eq!(
        plan(&wanted, &with_installed("rc \t2.10-3")).install,
        strings(&["/tmp/hello_2.10-3_amd64.deb"])
    );
    assert_eq!(
        plan(&wanted, &with_installed("ii \t2.10-2")).install,
        strings(&["/tmp/hello_2.10-3_amd64.deb"])
    );
    assert!(plan(&wanted, &with_installed("ii \t2.10-3"))
        .install
        .is_empty());
    assert!(plan(&wanted, &with_installed("")).install.len() == 1);
}

#[test]
fn upgrade_and_autoremove_are_whole_system_actions_after_the_packages() {
    let wanted = AptArgs {
        upgrade: Upgrade::Full,
        autoremove: true,
        purge: true,
        ..args(PackageState::Absent, &["nginx"])
    };
    let plan_all = plan(&wanted, &observed(STATUSES));
    assert_eq!(plan_all.remove, strings(&["nginx"]));
    assert_eq!(
        plan_all.whole_system,
        [WholeSystem::DistUpgrade, WholeSystem::AutoremovePurge]
    );
    assert_eq!(plan_all.whole_system[1].as_str(), "autoremove --purge");

    let safe = AptArgs {
        upgrade: Upgrade::Safe,
        autoremove: true,
        ..AptArgs::default()
    };
    assert_eq!(
        plan(&safe, &Observed::default()).whole_system,
        [WholeSystem::Upgrade, WholeSystem::Autoremove]
    );
    assert!(!safe.only_updates_cache());
}

#[test]
fn a_simulation_is_pending_only_when_it_lists_a_change() {
    let nothing = "Reading package lists...\nBuilding dependency tree...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n";
    assert!(!simulation_pending(nothing));
    let removal = "Reading package lists...\nRemv libfoo1 [1.0-1]\nPurg libbar2 [2.0-1]\n";
    assert!(simulation_pending(removal));
    assert!(simulation_pending(
        "Inst curl [7.88.1-10] (7.88.1-10+deb12u5 Debian:12)\n"
    ));
}

#[test]
fn apt_get_carries_the_options() {
    let wanted = AptArgs {
        install_recommends: Some(false),
        default_release: Some("bookworm backports".into()),
        allow_downgrade: true,
        lock_timeout: 5,
        ..AptArgs::default()
    };
    let command = wanted.apt_get();
    assert!(command.contains("DPkg::Lock::Timeout=5 "));
    assert!(
        command.ends_with(" --no-install-recommends -t 'bookworm backports' --allow-downgrades")
    );
}

#[test]
fn autoclean_is_a_whole_system_action_pending_when_apt_would_delete_a_file() {
    let wanted = AptArgs {
        autoclean: true,
        ..AptArgs::default()
    };
    assert_eq!(
        plan(&wanted, &Observed::default()).whole_system,
        [WholeSystem::Autoclean]
    );
    assert!(simulation_pending(
        "Reading package lists...\nDel kiln-gone 0.1 [7 B]\n"
    ));
    assert!(!simulation_pending("Reading package lists...\n"));
}
