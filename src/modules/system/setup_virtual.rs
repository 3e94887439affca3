//! The `virtual` facts (`virtualization_type`, `_role`, `_tech_guest`, `_tech_host`), decided
//! from the markers the gather script prints, in the order ansible-core's LinuxVirtual checks
//! them: the first technology found names the type; every one found is listed.

use indexmap::{IndexMap, IndexSet};
use minijinja::Value;

/// DMI `sys_vendor`s ansible-core takes for KVM guests.
const KVM_SYS_VENDORS: &[&str] = &[
    "QEMU",
    "Amazon EC2",
    "DigitalOcean",
    "Google",
    "Scaleway",
    "Nutanix",
];

#[derive(Default)]
struct Found {
    kind: Option<String>,
    role: Option<String>,
    guest: IndexSet<String>,
    host: IndexSet<String>,
}

impl Found {
    fn guest(&mut self, tech: &str, kind: &str, role: Option<&str>) {
        self.guest.insert(tech.to_string());
        self.first(kind, role);
    }

    fn host(&mut self, tech: &str, kind: &str) {
        self.host.insert(tech.to_string());
        self.first(kind, Some("host"));
    }

    fn first(&mut self, kind: &str, role: Option<&str>) {
        if self.kind.is_none() {
            self.kind = Some(kind.to_string());
            if let Some(role) = role {
                self.role = Some(role.to_string());
            }
        }
    }
}

/// The virtual facts from the gather script's `key:value` lines (named without `ansible_`).
pub fn facts(raw: &IndexMap<String, String>) -> Vec<(&'static str, Value)> {
    let has = |k: &str| raw.contains_key(k);
    let get = |k: &str| raw.get(k).map(String::as_str).unwrap_or("");
    let mut found = Found::default();
    for (marker, tech) in [
        ("virt_cgroup_docker", "docker"),
        ("virt_cgroup_lxc", "lxc"),
        ("virt_cgroup_containerd", "containerd"),
        // Podman marks its containers with this file (ansible-core reads container=podman
        // from PID 1's environment, which only root may read).
        ("virt_containerenv", "podman"),
    ] {
        if has(marker) {
            found.guest(tech, tech, Some("guest"));
        }
    }
    match get("virt_openvz") {
        "host" => found.host("openvz", "openvz"),
        "guest" => found.guest("openvz", "openvz", Some("guest")),
        _ => {}
    }
    let systemd_container = get("systemd_container");
    if !systemd_container.is_empty() {
        found.guest(systemd_container, systemd_container, Some("guest"));
    }
    if has("virt_dockerenv") {
        found.guest("docker", "docker", Some("guest"));
    }
    let containers = ["docker", "lxc", "podman", "openvz", "containerd"];
    if !systemd_container.is_empty() || containers.iter().any(|c| found.guest.contains(*c)) {
        found.guest.insert("container".into());
    }
    match get("virt_xen") {
        "host" => found.host("xen", "xen"),
        "guest" => found.first("xen", Some("guest")),
        _ => {}
    }
    if found.kind.is_none() {
        found.role = Some("guest".into());
    }
    let product = get("dmi_product_name");
    let vendor = get("dmi_sys_vendor");
    let bios = get("dmi_bios_vendor");
    if matches!(
        product,
        "KVM" | "KVM Server" | "Bochs" | "AHV" | "CloudStack KVM Hypervisor"
    ) {
        found.guest("kvm", "kvm", None);
    }
    match vendor {
        "oVirt" => found.guest("oVirt", "oVirt", None),
        "Red Hat" if get("dmi_product_family") == "RHV" => found.guest("RHV", "RHV", None),
        "Red Hat" if product == "RHEV Hypervisor" => found.guest("RHEV", "RHEV", None),
        _ => {}
    }
    if product.starts_with("VMware") {
        found.guest("VMware", "VMware", None);
    }
    if matches!(product, "OpenStack Compute" | "OpenStack Nova") {
        found.guest("openstack", "openstack", None);
    }
    if bios == "Xen" {
        found.guest("xen", "xen", None);
    }
    if bios == "innotek GmbH" {
        found.guest("virtualbox", "virtualbox", None);
    }
    if matches!(bios, "Amazon EC2" | "DigitalOcean" | "Hetzner" | "Linode") {
        found.guest("kvm", "kvm", None);
    }
    if KVM_SYS_VENDORS.contains(&vendor) {
        found.guest("kvm", "kvm", None);
    }
    match vendor {
        "KubeVirt" => found.guest("KubeVirt", "KubeVirt", None),
        "Microsoft Corporation" => found.guest("VirtualPC", "VirtualPC", None),
        "Parallels Software International Inc." => found.guest("parallels", "parallels", None),
        "OpenStack Foundation" => found.guest("openstack", "openstack", None),
        _ => {}
    }
    if has("virt_dev_kvm") {
        found.host("kvm", "kvm");
    }
    let (kind, role) = match found.kind {
        Some(kind) => (kind, found.role.unwrap_or_else(|| "guest".into())),
        None => ("NA".to_string(), "NA".to_string()),
    };
    let list = |set: IndexSet<String>| Value::from(set.into_iter().collect::<Vec<_>>());
    vec![
        ("virtualization_type", Value::from(kind)),
        ("virtualization_role", Value::from(role)),
        ("virtualization_tech_guest", list(found.guest)),
        ("virtualization_tech_host", list(found.host)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn virtual_facts(lines: &[(&str, &str)]) -> IndexMap<String, String> {
        let raw = lines
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        facts(&raw)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_systemd_nspawn_container_is_a_guest_container() {
        let f = virtual_facts(&[
            ("systemd_container", "systemd-nspawn"),
            ("dmi_sys_vendor", "QEMU"),
        ]);
        assert_eq!(f["virtualization_type"], "systemd-nspawn");
        assert_eq!(f["virtualization_role"], "guest");
        assert_eq!(
            f["virtualization_tech_guest"],
            "['systemd-nspawn', 'container', 'kvm']"
        );
    }

    #[test]
    fn docker_is_found_by_its_cgroup_or_dockerenv() {
        let f = virtual_facts(&[("virt_dockerenv", "1")]);
        assert_eq!(f["virtualization_type"], "docker");
        let f = virtual_facts(&[("virt_cgroup_docker", "1"), ("virt_dockerenv", "1")]);
        assert_eq!(f["virtualization_tech_guest"], "['docker', 'container']");
    }

    #[test]
    fn a_cloud_vm_is_a_kvm_guest_and_bare_metal_is_na() {
        let f = virtual_facts(&[
            ("dmi_bios_vendor", "Amazon EC2"),
            ("dmi_product_name", "m5.large"),
        ]);
        assert_eq!(f["virtualization_type"], "kvm");
        assert_eq!(f["virtualization_role"], "guest");
        let f = virtual_facts(&[("dmi_sys_vendor", "Dell Inc.")]);
        assert_eq!(f["virtualization_type"], "NA");
        assert_eq!(f["virtualization_role"], "NA");
        let f = virtual_facts(&[("virt_dev_kvm", "1")]);
        assert_eq!(
            (
                f["virtualization_type"].as_str(),
                f["virtualization_role"].as_str()
            ),
            ("kvm", "host")
        );
    }
}
