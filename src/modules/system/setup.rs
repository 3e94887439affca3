//! `setup`: gather facts in ONE command. The target prints tagged lines; `parse_facts` turns
//! them into Ansible's fact names (a pure function, tested on recorded output).

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::load::model::VarMap;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Setup;

/// Everything is read with POSIX tools present on a minimal Debian, Alpine or RHEL system.
const GATHER: &str = r#"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null)"
echo "fqdn=$(hostname -f 2>/dev/null || hostname 2>/dev/null)"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "system=$(uname -s)"
if [ -r /etc/os-release ]; then sed 's/^/os:/' /etc/os-release; fi
if [ -r /etc/debian_version ]; then echo "debian_version=$(cat /etc/debian_version)"; fi
echo "nproc=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
awk '/^MemTotal:/ {print "memtotal_kb=" $2} /^MemFree:/ {print "memfree_kb=" $2} /^SwapTotal:/ {print "swaptotal_kb=" $2}' /proc/meminfo 2>/dev/null
awk 'NR>1 && $2=="00000000" {print "default_iface=" $1; exit}' /proc/net/route 2>/dev/null
echo "ipv4=$(hostname -I 2>/dev/null)"
for m in apt-get dnf yum apk zypper pacman; do if command -v $m >/dev/null 2>&1; then echo "pkg_mgr=$m"; break; fi; done
echo "init=$(cat /proc/1/comm 2>/dev/null)"
echo "user_id=$(id -un)"
echo "user_uid=$(id -u)"
echo "user_gid=$(id -g)"
echo "user_dir=$HOME"
echo "user_shell=$(getent passwd "$(id -un)" 2>/dev/null | cut -d: -f7)"
echo "machine_id=$(cat /etc/machine-id 2>/dev/null)"
echo "epoch=$(date +%s)"
echo "date_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
env | sed 's/^/env:/'
"#;

#[async_trait]
impl Module for Setup {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let _ = args.raw_any(&["gather_subset", "gather_timeout", "filter", "fact_path"]);
        args.finish()?;
        let out = ctx.conn.exec(GATHER, None).await?;
        let facts = parse_facts(&out.stdout_text());
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

/// Turns the gather script's output into facts (names without the `ansible_` prefix).
pub fn parse_facts(text: &str) -> VarMap {
    let mut raw: IndexMap<String, String> = IndexMap::new();
    let mut os: IndexMap<String, String> = IndexMap::new();
    let mut env: IndexMap<String, Value> = IndexMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("os:") {
            if let Some((k, v)) = rest.split_once('=') {
                os.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        } else if let Some(rest) = line.strip_prefix("env:") {
            if let Some((k, v)) = rest.split_once('=') {
                env.insert(k.to_string(), Value::from(v));
            }
        } else if let Some((k, v)) = line.split_once('=') {
            raw.insert(k.to_string(), v.trim().to_string());
        }
    }
    let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let id = os.get("ID").cloned().unwrap_or_default();
    let mut facts = VarMap::new();
    let mut put = |k: &str, v: Value| {
        facts.insert(k.to_string(), v);
    };
    let hostname = get("hostname");
    put(
        "hostname",
        Value::from(hostname.split('.').next().unwrap_or_default()),
    );
    put("nodename", Value::from(hostname.as_str()));
    put("fqdn", Value::from(get("fqdn")));
    put(
        "domain",
        Value::from(
            get("fqdn")
                .split_once('.')
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
        ),
    );
    put("architecture", Value::from(get("arch")));
    put("machine", Value::from(get("arch")));
    put("kernel", Value::from(get("kernel")));
    put("system", Value::from(get("system")));
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
    let vcpus: i64 = get("nproc").parse().unwrap_or(1);
    put("processor_vcpus", Value::from(vcpus));
    put("processor_count", Value::from(vcpus));
    put("processor_cores", Value::from(vcpus));
    let mb = |k: &str| get(k).parse::<i64>().map(|kb| kb / 1024).unwrap_or(0);
    put("memtotal_mb", Value::from(mb("memtotal_kb")));
    put("memfree_mb", Value::from(mb("memfree_kb")));
    put("swaptotal_mb", Value::from(mb("swaptotal_kb")));
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
    for key in ["user_id", "user_dir", "user_shell", "machine_id"] {
        put(key, Value::from(get(key)));
    }
    put(
        "user_uid",
        Value::from(get("user_uid").parse::<i64>().unwrap_or(-1)),
    );
    put(
        "user_gid",
        Value::from(get("user_gid").parse::<i64>().unwrap_or(-1)),
    );
    let date_time: IndexMap<String, Value> = [
        ("epoch".to_string(), Value::from(get("epoch"))),
        ("iso8601".to_string(), Value::from(get("date_iso"))),
    ]
    .into_iter()
    .collect();
    put("date_time", crate::template::map_value(date_time));
    put("env", crate::template::map_value(env));
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_bookworm() {
        let text = "hostname=web1.example.com\nfqdn=web1.example.com\narch=x86_64\nos:ID=debian\nos:VERSION_CODENAME=bookworm\nos:VERSION_ID=\"12\"\ndebian_version=12.7\nnproc=2\nmemtotal_kb=2048000\nipv4=10.0.0.5 fe80::1\ndefault_iface=eth0\npkg_mgr=apt-get\ninit=systemd\nenv:HOME=/root\n";
        let facts = parse_facts(text);
        assert_eq!(facts["os_family"].as_str(), Some("Debian"));
        assert_eq!(facts["distribution"].as_str(), Some("Debian"));
        assert_eq!(facts["distribution_major_version"].as_str(), Some("12"));
        assert_eq!(facts["distribution_release"].as_str(), Some("bookworm"));
        assert_eq!(facts["hostname"].as_str(), Some("web1"));
        assert_eq!(facts["pkg_mgr"].as_str(), Some("apt"));
        assert_eq!(facts["service_mgr"].as_str(), Some("systemd"));
        assert_eq!(facts["memtotal_mb"].as_i64(), Some(2000));
        assert_eq!(
            facts["default_ipv4"].get_attr("address").unwrap().as_str(),
            Some("10.0.0.5")
        );
        assert_eq!(
            facts["env"].get_attr("HOME").unwrap().as_str(),
            Some("/root")
        );
    }
}
