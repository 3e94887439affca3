//! INI inventories: `[group]`, `[group:children]`, `[group:vars]`, ranges, inline host vars.

use std::path::Path;
use std::sync::Arc;

use super::{ini_scalar, Inventory};
use crate::error::{Error, Location, Result};
use crate::shell::split_words;

pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> Result<()> {
    let file = Arc::new(path.to_path_buf());
    let mut group = "ungrouped".to_string();
    let mut kind = "hosts";
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || Location::new(file.clone(), index as u32 + 1, 1);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.split(']').next().unwrap_or_default();
            let (name, suffix) = header.split_once(':').unwrap_or((header, "hosts"));
            if !matches!(suffix, "hosts" | "children" | "vars") {
                return Err(Error::invalid(
                    at(),
                    format!("unknown section kind ':{suffix}' (use :children or :vars)"),
                ));
            }
            group = name.to_string();
            kind = suffix;
            inv.group_mut(&group);
            continue;
        }
        match kind {
            "children" => {
                let child = line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                inv.group_mut(&child);
                inv.group_mut(&group).children.insert(child);
            }
            "vars" => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(Error::invalid(
                        at(),
                        format!("expected 'name=value' in [{group}:vars]"),
                    ));
                };
                inv.group_mut(&group)
                    .vars
                    .insert(k.trim().to_string(), ini_scalar(v));
            }
            _ => {
                let words = split_words(line);
                let Some(pattern) = words.first() else {
                    continue;
                };
                for host in expand_range(pattern).map_err(|m| Error::invalid(at(), m))? {
                    let (name, port) = split_port(&host);
                    inv.add_host(&name, (group != "ungrouped").then_some(group.as_str()));
                    if group == "ungrouped" {
                        inv.group_mut("ungrouped").hosts.insert(name.clone());
                    }
                    let vars = inv.hosts.entry(name).or_default();
                    if let Some(port) = port {
                        vars.insert("ansible_port".into(), minijinja::Value::from(port));
                    }
                    for word in &words[1..] {
                        let Some((k, v)) = word.split_once('=') else {
                            return Err(Error::invalid(
                                at(),
                                format!("expected 'name=value' after the host name, got '{word}'"),
                            ));
                        };
                        vars.insert(k.to_string(), ini_scalar(v));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `host:2222` (not IPv6) → name and port.
fn split_port(host: &str) -> (String, Option<i64>) {
    if host.matches(':').count() == 1 {
        if let Some((name, port)) = host.split_once(':') {
            if let Ok(port) = port.parse() {
                return (name.to_string(), Some(port));
            }
        }
    }
    (host.to_string(), None)
}

/// The most hosts one range pattern may expand to.
pub const MAX_RANGE_HOSTS: usize = 100_000;

/// Expands `web[01:10]`, `db[a:c]` and `h[1:9:2]` patterns (several ranges multiply).
pub fn expand_range(pattern: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut rest = pattern;
    while let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) {
        if close < open {
            break;
        }
        let inner = &rest[open + 1..close];
        let parts: Vec<&str> = inner.split(':').collect();
        if parts.len() < 2 {
            break;
        }
        let values = range_values(inner, &parts, out.len())?;
        let prefix = &rest[..open];
        if let [only] = values.as_slice() {
            // Appended in place: a long pattern of one-value ranges stays linear.
            for host in &mut out {
                host.push_str(prefix);
                host.push_str(only);
            }
        } else {
            out = out
                .iter()
                .flat_map(|head| values.iter().map(move |v| format!("{head}{prefix}{v}")))
                .collect();
        }
        rest = &rest[close + 1..];
    }
    for host in &mut out {
        host.push_str(rest);
    }
    Ok(out)
}

/// The values of one `[start:end(:step)]`, refused when, times the `hosts` already expanded,
/// they would exceed [`MAX_RANGE_HOSTS`].
fn range_values(
    inner: &str,
    parts: &[&str],
    hosts: usize,
) -> std::result::Result<Vec<String>, String> {
    let step: usize = parts
        .get(2)
        .map(|s| s.parse().unwrap_or(1))
        .unwrap_or(1)
        .max(1);
    let too_many = |count: u64| {
        let total = u64::try_from(hosts)
            .unwrap_or(u64::MAX)
            .saturating_mul(count);
        if total > MAX_RANGE_HOSTS as u64 {
            Err(format!(
                "host range '[{inner}]' expands to {total} hosts, over the limit of {MAX_RANGE_HOSTS}"
            ))
        } else {
            Ok(())
        }
    };
    if let (Ok(start), Ok(end)) = (parts[0].parse::<u64>(), parts[1].parse::<u64>()) {
        let count = if end < start {
            0
        } else {
            (end - start) / step as u64 + 1
        };
        too_many(count)?;
        let width = if parts[0].starts_with('0') {
            parts[0].len()
        } else {
            0
        };
        Ok((start..=end)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect())
    } else if parts[0].len() == 1 && parts[1].len() == 1 {
        let (a, b) = (parts[0].as_bytes()[0], parts[1].as_bytes()[0]);
        too_many(u64::from(b.saturating_sub(a)) + 1)?;
        Ok((a..=b)
            .step_by(step)
            .map(|c| (c as char).to_string())
            .collect())
    } else {
        Err(format!(
            "invalid host range '[{inner}]' (use [01:10] or [a:f])"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            expand_range("web[01:03].x").unwrap(),
            vec!["web01.x", "web02.x", "web03.x"]
        );
        assert_eq!(expand_range("db[a:c]").unwrap(), vec!["dba", "dbb", "dbc"]);
        assert_eq!(
            expand_range("h[1:2]-[a:b]").unwrap(),
            vec!["h1-a", "h1-b", "h2-a", "h2-b"]
        );
        assert_eq!(expand_range("h[1:5:2]").unwrap(), vec!["h1", "h3", "h5"]);
        assert_eq!(expand_range("plain[x]").unwrap(), vec!["plain[x]"]);
    }

    #[test]
    fn huge_ranges_are_refused_with_the_limit() {
        let err = expand_range("web[0:999999999]").unwrap_err();
        assert!(err.contains("over the limit of 100000"), "{err}");
        let err = expand_range("w[0:999][0:999]").unwrap_err();
        assert!(err.contains("1000000 hosts"), "{err}");
        let many = "[1:1]".repeat(100_000);
        assert_eq!(
            expand_range(&format!("h{many}")).unwrap(),
            vec!["h".to_string() + &"1".repeat(100_000)]
        );
    }

    #[test]
    fn vagrant_style_line() {
        let mut inv = Inventory::new();
        parse(&mut inv, "default ansible_host=127.0.0.1 ansible_port=2222 ansible_user='vagrant' ansible_ssh_private_key_file='/k/private_key'\n", Path::new("inv")).unwrap();
        let vars = &inv.hosts["default"];
        assert_eq!(vars["ansible_port"], minijinja::Value::from(2222));
        assert_eq!(vars["ansible_user"].as_str(), Some("vagrant"));
    }
}
