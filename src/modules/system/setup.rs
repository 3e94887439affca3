//! `setup`: gather facts in ONE command. The target prints tagged lines; `parse_facts` turns
//! them into Ansible's fact names (a pure function, tested on recorded output).

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use super::export_list::parse_export_list;
use super::setup_subset;
use super::setup_virtual;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::value::VarMap;

pub struct Setup;

/// One command, three processes (hostname ×2, date); everything else is read with shell
/// builtins (`uname` and the user's ids from /proc, the user from /etc/passwd, falling back to
/// `uname` and `id`; the environment from `export -p`), because on a busy host each process
/// costs about a millisecond. Reads stop at the last line they need: `read` takes a byte per
/// system call, which is also why a host without /sys counts its CPUs from /proc/stat's first
/// lines rather than /proc/cpuinfo.
const GATHER: &str = r#"
r() { [ -r "$2" ] && while IFS= read -r l || [ -n "$l" ]; do printf '%s:%s\n' "$1" "$l"; done < "$2"; }
r os /etc/os-release
r debian_version /etc/debian_version
r hostname /proc/sys/kernel/hostname
r machine_id /etc/machine-id
r init /proc/1/comm
r cpu_online /sys/devices/system/cpu/online
[ -r /sys/devices/system/cpu/online ] || { c=0; while read -r k _; do case "$k" in cpu) ;; cpu*) c=$((c+1)) ;; *) break ;; esac; done < /proc/stat; echo "cpu_count:$c"; }
while read -r k v _; do case "$k" in MemTotal:|MemFree:) echo "mem:$k$v";; SwapTotal:) echo "mem:$k$v"; break;; esac; done < /proc/meminfo
while read -r iface dest _; do [ "$dest" = 00000000 ] && { echo "default_iface:$iface"; break; }; done < /proc/net/route
for m in apt-get dnf yum apk zypper pacman; do command -v $m >/dev/null 2>&1 && { echo "pkg_mgr:$m"; break; }; done
if [ -r /proc/sys/kernel/arch ]; then
  read -r s < /proc/sys/kernel/ostype; read -r k < /proc/sys/kernel/osrelease; read -r a < /proc/sys/kernel/arch
  echo "uname:$s $k $a"
else echo "uname:$(uname -s -r -m)"; fi
echo "fqdn:$(hostname -f 2>/dev/null)"
echo "ipv4:$(hostname -I 2>/dev/null)"
uid= gid= u=
[ -r /proc/self/status ] && while read -r k a _; do case "$k" in Uid:) uid=$a;; Gid:) gid=$a; break;; esac; done < /proc/self/status
[ -n "$uid" ] && while IFS=: read -r n _ x _ _ _ sh; do [ "$x" = "$uid" ] && { u=$n; echo "user_shell:$sh"; break; }; done < /etc/passwd
if [ -n "$u" ]; then echo "id:uid=$uid($u) gid=$gid"; else i=$(id); echo "id:$i"; fi
echo "user_dir:$HOME"
echo "date:$(date -u '+%s %Y-%m-%dT%H:%M:%SZ')"
r systemd_container /run/systemd/container
[ -r /proc/1/cgroup ] && while IFS= read -r l; do case "$l" in
  */docker/*|*/docker-*.scope*) echo "virt_cgroup_docker:1";; */lxc/*|*/machine.slice/machine-lxc*) echo "virt_cgroup_lxc:1";;
  */system.slice/containerd.service*) echo "virt_cgroup_containerd:1";; esac; done < /proc/1/cgroup
{ [ -e /.dockerenv ] || [ -e /.dockerinit ]; } && echo "virt_dockerenv:1"
[ -e /run/.containerenv ] && echo "virt_containerenv:1"
[ -e /proc/vz ] && [ ! -e /proc/lve ] && { [ -e /proc/bc ] && echo "virt_openvz:host" || echo "virt_openvz:guest"; }
[ -e /proc/xen ] && { grep -qs control_d /proc/xen/capabilities && echo "virt_xen:host" || echo "virt_xen:guest"; }
[ -e /dev/kvm ] && echo "virt_dev_kvm:1"
for f in product_name sys_vendor bios_vendor product_family; do r "dmi_$f" "/sys/devices/virtual/dmi/id/$f"; done
r kernel_version /proc/sys/kernel/version
[ -d /sys/kernel/security/apparmor ] && echo "apparmor:enabled"
[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && systemctl --version 2>/dev/null | {
  read -r _ v _; read -r f; echo "systemd_version:$v"; echo "systemd_features:$f"; }
for p in /usr/bin/python3 /usr/local/bin/python3 /usr/libexec/platform-python /usr/bin/python; do
  [ -x "$p" ] && { echo "python:$p $(readlink -f "$p")"; break; }; done
echo "--env--"
export -p
"#;

#[async_trait]
impl Module for Setup {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let gather_subset = args.list(&["gather_subset"])?;
        let collectors = setup_subset::collectors(&gather_subset).map_err(ModuleError::Failed)?;
        let filter = args
            .list(&["filter"])?
            .iter()
            .map(|p| {
                glob::Pattern::new(p)
                    .map_err(|e| ModuleError::Args(format!("setup: filter {p:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        args.ignore(&["gather_timeout", "fact_path"]);
        args.finish()?;
        let out = ctx.conn.exec(GATHER, None).await?;
        let mut facts: VarMap = parse_facts(&out.stdout_text())
            .into_iter()
            .filter(|(k, _)| setup_subset::keep(&collectors, &filter, k))
            .map(|(k, v)| (format!("ansible_{k}"), v))
            .collect();
        let given = if gather_subset.is_empty() {
            vec!["all".to_string()]
        } else {
            gather_subset
        };
        facts.insert("ansible_gather_subset".into(), Value::from(given));
        // As Ansible's setup: marks the host's facts as gathered (`gathering = smart`).
        facts.insert("ansible_module_setup".into(), Value::from(true));
        let mut result = ModuleResult::changed(false);
        result.facts = Some(facts);
        Ok(result)
    }
}

fn os_family(id: &str, id_like: &str) -> &'static str {
    let known = |s: &str| match s {
        "debian" | "ubuntu" | "raspbian" | "linuxmint" | "devuan" | "kali" | "pop" => {
            Some("Debian")
        }
        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" | "scientific" => {
            Some("RedHat")
        }
        "alpine" => Some("Alpine"),
        "arch" | "manjaro" => Some("Archlinux"),
        "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" | "sles" | "suse" => Some("Suse"),
        "gentoo" => Some("Gentoo"),
        _ => None,
    };
    known(id)
        .or_else(|| id_like.split_whitespace().find_map(known))
        .unwrap_or("Linux")
}

fn distribution_name(id: &str) -> String {
    match id {
        "debian" => "Debian".into(),
        "ubuntu" => "Ubuntu".into(),
        "centos" => "CentOS".into(),
        "rhel" => "RedHat".into(),
        "fedora" => "Fedora".into(),
        "alpine" => "Alpine".into(),
        "rocky" => "Rocky".into(),
        "almalinux" => "AlmaLinux".into(),
        "amzn" => "Amazon".into(),
        "arch" => "Archlinux".into(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// Turns the gather script's output (`key:value` lines, then `--env--` and `export -p`)
/// into facts, named without the `ansible_` prefix.
pub fn parse_facts(text: &str) -> VarMap {
    let mut raw: IndexMap<String, String> = IndexMap::new();
    let mut os: IndexMap<String, String> = IndexMap::new();
    let mut mem: IndexMap<String, i64> = IndexMap::new();
    let (text, exported) = text.split_once("--env--\n").unwrap_or((text, ""));
    let env: IndexMap<String, Value> = parse_export_list(exported)
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "os" => {
                if let Some((k, v)) = value.split_once('=') {
                    os.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
            "mem" => {
                if let Some((k, v)) = value.split_once(':') {
                    mem.insert(k.to_string(), v.trim().parse().unwrap_or(0));
                }
            }
            _ => {
                raw.insert(key.to_string(), value.trim().to_string());
            }
        }
    }
    let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let id = os.get("ID").cloned().unwrap_or_default();
    let mut facts = VarMap::new();
    let mut put = |k: &str, v: Value| {
        facts.insert(k.to_string(), v);
    };
    let uname: Vec<String> = get("uname")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let hostname = get("hostname");
    let fqdn = match get("fqdn") {
        f if f.is_empty() => hostname.clone(),
        f => f,
    };
    put(
        "hostname",
        Value::from(hostname.split('.').next().unwrap_or_default()),
    );
    put("nodename", Value::from(hostname.as_str()));
    put(
        "domain",
        Value::from(
            fqdn.split_once('.')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
        ),
    );
    put("fqdn", Value::from(fqdn));
    let arch = uname.get(2).cloned().unwrap_or_default();
    put("architecture", Value::from(arch.as_str()));
    put("machine", Value::from(arch));
    put(
        "kernel",
        Value::from(uname.get(1).cloned().unwrap_or_default()),
    );
    put(
        "system",
        Value::from(uname.first().cloned().unwrap_or_default()),
    );
    put(
        "os_family",
        Value::from(os_family(
            &id,
            os.get("ID_LIKE").map(String::as_str).unwrap_or(""),
        )),
    );
    put("distribution", Value::from(distribution_name(&id)));
    let version = match raw.get("debian_version") {
        Some(v) if id == "debian" && v.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
            v.clone()
        }
        _ => os.get("VERSION_ID").cloned().unwrap_or_default(),
    };
    put(
        "distribution_major_version",
        Value::from(version.split('.').next().unwrap_or_default()),
    );
    put("distribution_version", Value::from(version));
    put(
        "distribution_release",
        Value::from(os.get("VERSION_CODENAME").cloned().unwrap_or_default()),
    );
    let vcpus = match raw.get("cpu_count").and_then(|c| c.parse::<i64>().ok()) {
        Some(n) if n > 0 => n,
        _ => cpu_count(&get("cpu_online")),
    };
    put("processor_vcpus", Value::from(vcpus));
    put("processor_count", Value::from(vcpus));
    put("processor_cores", Value::from(vcpus));
    let mb = |k: &str| mem.get(k).copied().unwrap_or(0) / 1024;
    put("memtotal_mb", Value::from(mb("MemTotal")));
    put("memfree_mb", Value::from(mb("MemFree")));
    put("swaptotal_mb", Value::from(mb("SwapTotal")));
    let addresses: Vec<String> = get("ipv4")
        .split_whitespace()
        .filter(|a| !a.contains(':'))
        .map(str::to_string)
        .collect();
    let default_ipv4: IndexMap<String, Value> = match addresses.first() {
        Some(address) => [
            ("address".to_string(), Value::from(address.as_str())),
            ("interface".to_string(), Value::from(get("default_iface"))),
        ]
        .into_iter()
        .collect(),
        None => IndexMap::new(),
    };
    put("default_ipv4", crate::template::map_value(default_ipv4));
    put("all_ipv4_addresses", Value::from(addresses));
    let pkg_mgr = match get("pkg_mgr").as_str() {
        "apt-get" => "apt".to_string(),
        "" => "unknown".to_string(),
        other => other.to_string(),
    };
    put("pkg_mgr", Value::from(pkg_mgr));
    let service_mgr = match get("init").as_str() {
        "systemd" => "systemd",
        "init" if id == "alpine" => "openrc",
        _ => "service",
    };
    put("service_mgr", Value::from(service_mgr));
    // As Ansible's systemd collector: only where systemd manages the host.
    if let Ok(version) = get("systemd_version").parse::<i64>() {
        let systemd = [
            ("features".to_string(), Value::from(get("systemd_features"))),
            ("version".to_string(), Value::from(version)),
        ];
        put(
            "systemd",
            crate::template::map_value(systemd.into_iter().collect()),
        );
    }
    let (uid, user, gid) = parse_id(&get("id"));
    put("user_id", Value::from(user));
    put("user_uid", Value::from(uid));
    put("user_gid", Value::from(gid));
    put("user_dir", Value::from(get("user_dir")));
    put("user_shell", Value::from(get("user_shell")));
    put("machine_id", Value::from(get("machine_id")));
    let date = get("date");
    let (epoch, iso) = date.split_once(' ').unwrap_or((date.as_str(), ""));
    let date_time: IndexMap<String, Value> = [
        ("epoch".to_string(), Value::from(epoch)),
        ("iso8601".to_string(), Value::from(iso)),
    ]
    .into_iter()
    .collect();
    put("date_time", crate::template::map_value(date_time));
    put("env", crate::template::map_value(env));
    put("kernel_version", Value::from(get("kernel_version")));
    put("distribution_file_variety", Value::from(os_family(&id, "")));
    if let Some(python) = python_facts(&get("python")) {
        put("python", python);
    }
    for (key, value) in setup_virtual::facts(&raw) {
        facts.insert(key.to_string(), value);
    }
    facts
}

/// `ansible_python` from "EXECUTABLE RESOLVED" (`/usr/bin/python3 /usr/bin/python3.11`): the
/// target's python3, its version as its file name gives it (major and minor). Starting Python
/// to ask it would cost every fact gathering a process start on the target.
fn python_facts(line: &str) -> Option<Value> {
    let (executable, resolved) = line.split_once(' ')?;
    let name = resolved.rsplit('/').next()?;
    let (major, minor) = name.strip_prefix("python")?.split_once('.')?;
    let (major, minor) = (major.parse::<i64>().ok()?, minor.parse::<i64>().ok()?);
    let version: IndexMap<String, Value> = [("major", major), ("minor", minor)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    let python: IndexMap<String, Value> = [
        ("executable", Value::from(executable)),
        ("has_sslcontext", Value::from(true)),
        ("type", Value::from("CPython")),
        ("version", crate::template::map_value(version)),
        ("version_info", Value::from(vec![major, minor])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Some(crate::template::map_value(python))
}

/// `/sys/devices/system/cpu/online` ("0-3,6") → number of CPUs.
fn cpu_count(online: &str) -> i64 {
    let count: i64 = online
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(|range| match range.trim().split_once('-') {
            Some((a, b)) => b.parse::<i64>().unwrap_or(0) - a.parse::<i64>().unwrap_or(0) + 1,
            None => 1,
        })
        .sum();
    count.max(1)
}

/// `id`'s output ("uid=1000(kiln) gid=1000(kiln) groups=…") → uid, user name, gid.
fn parse_id(text: &str) -> (i64, String, i64) {
    let field = |name: &str| -> (i64, String) {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(|rest| {
                let (num, label) = rest.split_once('(').unwrap_or((rest, ""));
                (
                    num.parse().unwrap_or(-1),
                    label.trim_end_matches(')').to_string(),
                )
            })
            .unwrap_or((-1, String::new()))
    };
    let (uid, user) = field("uid=");
    let (gid, _) = field("gid=");
    (uid, user, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_bookworm() {
        let text = "os:ID=debian\nos:VERSION_CODENAME=bookworm\nos:VERSION_ID=\"12\"\ndebian_version:12.7\nhostname:web1.example.com\ninit:systemd\ncpu_online:0-1\nmem:MemTotal:2048000\ndefault_iface:eth0\npkg_mgr:apt-get\nuname:Linux 6.1.0 x86_64\nfqdn:web1.example.com\nipv4:10.0.0.5 fe80::1\nid:uid=1000(kiln) gid=1001(kiln) groups=1001(kiln)\nuser_dir:/home/kiln\nuser_shell:/bin/sh\ndate:1700000000 2023-11-14T22:13:20Z\npython:/usr/bin/python3 /usr/bin/python3.11\nsystemd_version:252\nsystemd_features:+PAM +AUDIT -SELINUX\n--env--\nexport HOME='/root'\nexport A='b=c'\n";
        let facts = parse_facts(text);
        assert_eq!(facts["os_family"].as_str(), Some("Debian"));
        assert_eq!(facts["distribution"].as_str(), Some("Debian"));
        assert_eq!(facts["distribution_major_version"].as_str(), Some("12"));
        assert_eq!(facts["distribution_release"].as_str(), Some("bookworm"));
        assert_eq!(facts["hostname"].as_str(), Some("web1"));
        assert_eq!(facts["pkg_mgr"].as_str(), Some("apt"));
        assert_eq!(facts["service_mgr"].as_str(), Some("systemd"));
        let systemd = &facts["systemd"];
        assert_eq!(systemd.get_attr("version").unwrap().as_i64(), Some(252));
        assert_eq!(
            systemd.get_attr("features").unwrap().as_str(),
            Some("+PAM +AUDIT -SELINUX")
        );
        assert_eq!(facts["memtotal_mb"].as_i64(), Some(2000));
        assert_eq!(
            facts["default_ipv4"].get_attr("address").unwrap().as_str(),
            Some("10.0.0.5")
        );
        assert_eq!(
            facts["env"].get_attr("HOME").unwrap().as_str(),
            Some("/root")
        );
        let python = &facts["python"];
        assert_eq!(
            python.get_attr("executable").unwrap().as_str(),
            Some("/usr/bin/python3")
        );
        let version = python.get_attr("version").unwrap();
        assert_eq!(version.get_attr("minor").unwrap().as_i64(), Some(11));
        assert_eq!(python.get_attr("type").unwrap().as_str(), Some("CPython"));
        // No python3 on the target: no ansible_python (Ansible's setup would not run at all).
        assert!(!parse_facts("os:ID=debian\n--env--\n").contains_key("python"));
    }
}
