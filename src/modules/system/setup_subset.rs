//! `setup`'s `gather_subset` and `filter`: which gathered facts a play asked for, chosen as
//! ansible-core's `get_collector_names` chooses its collectors (the minimal set always, `all`
//! by default, `!name` excluding, an explicit name winning over an exclusion). kiln gathers
//! its facts in one command either way; the subset decides which of them are returned.

use std::collections::BTreeSet;

/// The collectors ansible-core 2.19 has on Linux (each also a subset name, as are the fact
/// ids in `ALIASES`).
const COLLECTORS: &[&str] = &[
    "apparmor",
    "caps",
    "chroot",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "facter",
    "fibre_channel_wwn",
    "fips",
    "hardware",
    "iscsi",
    "loadavg",
    "local",
    "lsb",
    "network",
    "nvme",
    "ohai",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "systemd",
    "user",
    "virtual",
];

/// The collectors gathered even with `!all` (setup's `minimal_gather_subset`).
const MINIMAL: &[&str] = &[
    "apparmor",
    "caps",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "fips",
    "local",
    "lsb",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "user",
];

/// Collectors and the fact ids that name them in a subset.
const ALIASES: &[(&str, &[&str])] = &[
    ("chroot", &["is_chroot"]),
    (
        "caps",
        &["system_capabilities", "system_capabilities_enforced"],
    ),
    (
        "ssh_pub_keys",
        &[
            "ssh_host_key_dsa_public",
            "ssh_host_key_ecdsa_public",
            "ssh_host_key_ed25519_public",
            "ssh_host_key_rsa_public",
            "ssh_host_pub_keys",
        ],
    ),
    (
        "virtual",
        &[
            "virtualization_role",
            "virtualization_tech_guest",
            "virtualization_tech_host",
            "virtualization_type",
        ],
    ),
    (
        "platform",
        &[
            "architecture",
            "kernel",
            "kernel_version",
            "machine",
            "machine_id",
            "python_version",
            "system",
        ],
    ),
    (
        "distribution",
        &[
            "distribution_major_version",
            "distribution_release",
            "distribution_version",
            "os_family",
        ],
    ),
    (
        "user",
        &[
            "effective_group_ids",
            "effective_user_id",
            "real_user_id",
            "user_dir",
            "user_gecos",
            "user_gid",
            "user_id",
            "user_shell",
            "user_uid",
        ],
    ),
    (
        "hardware",
        &[
            "devices",
            "mounts",
            "processor",
            "processor_cores",
            "processor_count",
        ],
    ),
    (
        "network",
        &[
            "all_ipv4_addresses",
            "all_ipv6_addresses",
            "default_ipv4",
            "default_ipv6",
            "interfaces",
        ],
    ),
];

/// Every subset name ansible accepts, sorted: the collectors and their fact ids.
fn valid_names() -> BTreeSet<&'static str> {
    let ids = ALIASES.iter().flat_map(|(_, ids)| ids.iter());
    COLLECTORS.iter().chain(ids).copied().collect()
}

/// The collector a subset name stands for (a fact id names its collector).
fn collector_named(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(_, ids)| ids.contains(&name))
        .map_or(name, |(collector, _)| collector)
}

/// The collector that produces one of kiln's facts (named without `ansible_`).
fn collector_of(fact: &str) -> &'static str {
    match fact {
        "processor_vcpus" | "processor_count" | "processor_cores" | "memtotal_mb"
        | "memfree_mb" | "swaptotal_mb" => "hardware",
        "default_ipv4" | "all_ipv4_addresses" => "network",
        f if f.starts_with("virtualization_") => "virtual",
        "os_family" => "distribution",
        "pkg_mgr" => "pkg_mgr",
        "service_mgr" => "service_mgr",
        "systemd" => "systemd",
        "date_time" => "date_time",
        "env" => "env",
        f if f.starts_with("distribution") => "distribution",
        f if f.starts_with("user_") => "user",
        _ => "platform",
    }
}

/// The collectors `gather_subset` selects, or ansible's error for an unknown name.
pub fn collectors(gather_subset: &[String]) -> Result<BTreeSet<String>, String> {
    let mut additional: BTreeSet<&str> = BTreeSet::new();
    let mut excluded: BTreeSet<&str> = BTreeSet::new();
    let mut explicit: BTreeSet<&str> = BTreeSet::new();
    let default = ["all".to_string()];
    let given = if gather_subset.is_empty() {
        &default[..]
    } else {
        gather_subset
    };
    let valid = valid_names();
    additional.extend(MINIMAL);
    for subset in given.iter().map(|s| s.trim()) {
        match subset {
            "min" => additional.extend(MINIMAL),
            "all" => additional.extend(&valid),
            "!min" => excluded.extend(MINIMAL),
            "!all" => excluded.extend(valid.iter().filter(|v| !MINIMAL.contains(v))),
            _ => match subset.strip_prefix('!') {
                // Excluding an unknown name is ignored, as ansible does.
                Some(name) => {
                    if let Some((_, ids)) = ALIASES.iter().find(|(c, _)| *c == name) {
                        excluded.extend(ids.iter());
                    }
                    excluded.insert(name);
                }
                None => {
                    if !valid.contains(subset) {
                        return Err(format!(
                            "Bad subset '{subset}' given to Ansible. gather_subset options \
                             allowed: all, {}",
                            valid.iter().copied().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    explicit.insert(subset);
                    additional.insert(subset);
                }
            },
        }
    }
    let dropped: BTreeSet<&str> = excluded.difference(&explicit).copied().collect();
    Ok(additional
        .difference(&dropped)
        .map(|name| collector_named(name).to_string())
        .collect())
}

/// Whether a gathered fact (named without `ansible_`) is returned: its collector was
/// selected, and it matches one of `filter`'s patterns (on its `ansible_` name) if any.
pub fn keep(collectors: &BTreeSet<String>, filter: &[glob::Pattern], fact: &str) -> bool {
    collectors.contains(collector_of(fact))
        && (filter.is_empty()
            || filter
                .iter()
                .any(|p| p.matches(&format!("ansible_{fact}")) || p.matches(fact)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(subset: &[&str]) -> BTreeSet<String> {
        let given: Vec<String> = subset.iter().map(|s| s.to_string()).collect();
        collectors(&given).unwrap()
    }

    #[test]
    fn all_is_the_default_and_min_is_always_there() {
        for facts in [chosen(&[]), chosen(&["all"])] {
            assert!(keep(&facts, &[], "memtotal_mb"));
            assert!(keep(&facts, &[], "default_ipv4"));
            assert!(keep(&facts, &[], "distribution"));
        }
        let min = chosen(&["!all"]);
        assert!(keep(&min, &[], "distribution_release"));
        assert!(keep(&min, &[], "user_id"));
        assert!(keep(&min, &[], "hostname"));
        assert!(!keep(&min, &[], "memtotal_mb"));
        assert!(!keep(&min, &[], "all_ipv4_addresses"));
    }

    #[test]
    fn exclusions_and_explicit_names() {
        let nothing = chosen(&["!all", "!min"]);
        assert!(!keep(&nothing, &[], "distribution"));
        assert!(!keep(&nothing, &[], "env"));
        let network = chosen(&["!all", "network"]);
        assert!(keep(&network, &[], "default_ipv4"));
        assert!(!keep(&network, &[], "processor_count"));
        let no_hardware = chosen(&["all", "!hardware"]);
        assert!(!keep(&no_hardware, &[], "processor_vcpus"));
        assert!(keep(&no_hardware, &[], "all_ipv4_addresses"));
        // Without `all`, ansible starts from the minimal set: `!hardware` alone is `min`.
        let alone = chosen(&["!hardware"]);
        assert!(!keep(&alone, &[], "all_ipv4_addresses"));
        assert!(keep(&alone, &[], "distribution"));
        // A fact id selects its whole collector, as in ansible.
        let by_fact = chosen(&["!all", "!min", "processor_count"]);
        assert!(keep(&by_fact, &[], "memtotal_mb"));
        assert!(!keep(&by_fact, &[], "distribution"));
        // Excluding an unknown name is ignored.
        assert!(keep(&chosen(&["all", "!nonsense"]), &[], "memtotal_mb"));
    }

    #[test]
    fn an_unknown_subset_is_ansibles_error() {
        let err = collectors(&["hardwre".to_string()]).unwrap_err();
        assert!(
            err.starts_with("Bad subset 'hardwre' given to Ansible"),
            "{err}"
        );
        assert!(err.contains("hardware"), "{err}");
    }

    #[test]
    fn filter_matches_the_ansible_name() {
        let all = chosen(&[]);
        let filter = [glob::Pattern::new("ansible_distribution*").unwrap()];
        assert!(keep(&all, &filter, "distribution_release"));
        assert!(!keep(&all, &filter, "hostname"));
    }
}
