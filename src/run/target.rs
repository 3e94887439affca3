//! Where a host is reached: connection type, address, port, user, keys and SSH options,
//! from its variables with the command line and ansible.cfg as defaults.

use std::path::PathBuf;

use super::connect::{
    parse_ssh_options, split_option_value, ConnectionDefaults, SshParamsKey, Target, ALIVE_COUNT,
    ALIVE_INTERVAL,
};
use crate::connection::proxy::{JumpHost, Proxy};
use crate::connection::ssh_config::{
    expand_tokens, local_user, unquote, ProxySetting, SshConfig, Tokens,
};
use crate::connection::Password;
use crate::template::Scope;

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Why a host's variables name no target kiln can reach.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("connection type '{0}' is not supported by kiln (use ssh or local)")]
    UnsupportedConnection(String),
    #[error("ansible_port '{0}' is not a port number")]
    BadPort(String),
}

/// `keyword`: the task's `connection:` (from its play, role or block), which a host's
/// `ansible_connection` overrides, as variables override keywords in Ansible. `user`: the
/// login user the task, inventory or command line names (None: ssh_config's `User`, else the
/// local user, as `ssh` without `-o User`).
pub fn resolve(
    defaults: &ConnectionDefaults,
    host: &str,
    scope: &Scope,
    user: Option<&str>,
    keyword: Option<&str>,
) -> Result<Target, TargetError> {
    let connection = scope
        .text("ansible_connection")
        .or_else(|| keyword.map(str::to_string))
        .or_else(|| defaults.connection.clone())
        .unwrap_or_else(|| {
            if host == "localhost" && scope.get_raw("ansible_host").is_none() {
                "local".into()
            } else {
                "ssh".into()
            }
        });
    match connection.as_str() {
        "local" => return Ok(Target::Local),
        "ssh" | "smart" | "paramiko" | "paramiko_ssh" | "ansible.builtin.ssh" => {}
        other => return Err(TargetError::UnsupportedConnection(other.to_string())),
    }
    // The name ssh is given, which ssh_config's `Host` patterns match.
    let destination = scope
        .text("ansible_host")
        .or_else(|| scope.text("ansible_ssh_host"))
        .unwrap_or_else(|| host.to_string());
    let mut address: Option<String> = None;
    let mut port: Option<u16> = match scope
        .text("ansible_port")
        .or_else(|| scope.text("ansible_ssh_port"))
    {
        Some(p) => Some(p.parse().map_err(|_| TargetError::BadPort(p.clone()))?),
        None => None,
    };
    let mut user = user.map(str::to_string);
    let mut identities: Vec<PathBuf> = Vec::new();
    if let Some(key) = scope
        .text("ansible_ssh_private_key_file")
        .or_else(|| scope.text("ansible_private_key_file"))
    {
        identities.push(expand_home(&key));
    } else if let Some(key) = &defaults.private_key {
        identities.push(key.clone());
    }
    let mut policy = if defaults.host_key_checking {
        "yes".to_string()
    } else {
        "no".to_string()
    };
    if let Some(v) = scope
        .get("ansible_host_key_checking")
        .or_else(|| scope.get("ansible_ssh_host_key_checking"))
    {
        policy = if crate::template::truthy(&v) {
            "yes".into()
        } else {
            "no".into()
        };
    }
    let mut alive_interval = Some(ALIVE_INTERVAL);
    let mut alive_count = ALIVE_COUNT;
    let mut known_hosts = defaults.known_hosts.clone().unwrap_or_else(|| {
        vec![std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
            .unwrap_or_default()]
    });
    let args = [
        defaults.ssh_args.clone(),
        scope.text("ansible_ssh_common_args").unwrap_or_default(),
        scope.text("ansible_ssh_extra_args").unwrap_or_default(),
    ]
    .join(" ");
    let mut config_file: Option<PathBuf> = None;
    let mut proxy: Option<ProxySetting> = None;
    let mut known_hosts_option = false;
    let mut policy_option = false;
    for (key, value) in parse_ssh_options(&args) {
        match key.to_ascii_lowercase().as_str() {
            "-f" => config_file = config_file.or_else(|| Some(expand_home(&value))),
            "proxyjump" | "proxycommand" if proxy.is_none() => {
                proxy = Some(match (value.as_str(), key.to_ascii_lowercase().as_str()) {
                    ("none", _) => ProxySetting::Direct,
                    (_, "proxyjump") => ProxySetting::Jump(value),
                    // Ansible splits the arguments as a shell does before ssh sees them.
                    _ => ProxySetting::Command(unquote(&value)),
                })
            }
            "stricthostkeychecking" => {
                policy = host_key_policy(&value);
                policy_option = true;
            }
            "userknownhostsfile" => {
                known_hosts = known_hosts_files(&value);
                known_hosts_option = true;
            }
            "serveraliveinterval" => {
                if let Some(interval) = crate::util::parse_duration(&value) {
                    alive_interval = Some(interval).filter(|i| !i.is_zero());
                }
            }
            "serveralivecountmax" => alive_count = value.parse().unwrap_or(alive_count),
            "identityfile" => identities.push(expand_home(&value)),
            "port" => port = value.parse().ok().or(port),
            "user" => user = Some(value),
            "hostname" => address = Some(value),
            _ => {}
        }
    }
    // ssh_config comes last: inventory variables and command-line options win over it.
    let config = match &config_file {
        Some(file) => SshConfig::load(file, &home_ssh_dir()),
        None => SshConfig::load_default(),
    };
    let found = config.lookup(&destination);
    let address = address.unwrap_or_else(|| found.hostname_for(&destination));
    let port = port.or(found.port).unwrap_or(22);
    let user = user
        .or_else(|| found.user.clone())
        .unwrap_or_else(local_user);
    identities.extend(found.identity_files(&Tokens {
        host: &address,
        user: &user,
        port,
    }));
    if let (false, Some(value)) = (policy_option, &found.strict_host_key_checking) {
        policy = host_key_policy(value);
    }
    if let (false, Some(value)) = (known_hosts_option, &found.user_known_hosts_file) {
        known_hosts = known_hosts_files(value);
    }
    let proxy = match proxy.or_else(|| found.proxy.clone()) {
        Some(ProxySetting::Jump(hops)) => Some(Proxy::Jump(jump_hosts(&hops, &config))),
        Some(ProxySetting::Command(command)) => Some(Proxy::Command(expand_tokens(
            &command,
            &Tokens {
                host: &address,
                user: &user,
                port,
            },
        ))),
        Some(ProxySetting::Direct) | None => None,
    };
    Ok(Target::Ssh(SshParamsKey {
        host: address,
        port,
        user,
        identity_files: identities,
        policy,
        known_hosts,
        alive_interval,
        alive_count,
        proxy,
        password: scope
            .text("ansible_password")
            .or_else(|| scope.text("ansible_ssh_pass"))
            .or_else(|| scope.text("ansible_ssh_password"))
            .map(Password)
            .or_else(|| defaults.password.clone()),
    }))
}

fn host_key_policy(value: &str) -> String {
    match value.to_ascii_lowercase().as_str() {
        "no" | "off" | "false" => "no".into(),
        "accept-new" => "accept-new".into(),
        _ => "yes".into(),
    }
}

fn known_hosts_files(value: &str) -> Vec<PathBuf> {
    split_option_value(value)
        .iter()
        .map(|f| expand_home(f))
        .collect()
}

fn home_ssh_dir() -> PathBuf {
    expand_home("~/.ssh")
}

/// `ProxyJump`'s `[user@]host[:port]` hops, each completed from ssh_config as `ssh` does for
/// the jump host (its `HostName`, `User`, `Port`, `IdentityFile`; else the local user, port
/// 22 and the default keys).
fn jump_hosts(hops: &str, config: &SshConfig) -> Vec<JumpHost> {
    hops.split(',')
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .map(|hop| {
            let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
            let (user, rest) = match hop.rsplit_once('@') {
                Some((user, rest)) => (Some(user.to_string()), rest),
                None => (None, hop),
            };
            let (name, port) = split_host_port(rest);
            let found = config.lookup(name);
            let host = found.hostname_for(name);
            let port = port.or(found.port).unwrap_or(22);
            let user = user
                .or_else(|| found.user.clone())
                .unwrap_or_else(local_user);
            let identity_files = found.identity_files(&Tokens {
                host: &host,
                user: &user,
                port,
            });
            JumpHost {
                host,
                port,
                user,
                identity_files,
            }
        })
        .collect()
}

/// `host:port`, `[v6]:port` or a bare host.
fn split_host_port(text: &str) -> (&str, Option<u16>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use minijinja::Value;

    use super::*;
    use crate::template::Templar;

    fn resolve_with(name: &str, value: &str) -> Result<Target, TargetError> {
        let mut vars = crate::load::model::VarMap::new();
        vars.insert(name.into(), Value::from(value));
        let scope = Scope::new(Templar::new(), vec![Arc::new(vars)]);
        let defaults = ConnectionDefaults {
            connection: None,
            remote_user: None,
            private_key: None,
            host_key_checking: true,
            timeout: Duration::from_secs(10),
            ssh_args: String::new(),
            known_hosts: Some(vec![PathBuf::from("/dev/null")]),
            password: None,
            become_password: None,
        };
        resolve(&defaults, "web1", &scope, Some("root"), None)
    }

    #[test]
    fn unreachable_settings_are_typed_errors_with_ansible_like_words() {
        let error = resolve_with("ansible_connection", "winrm").unwrap_err();
        assert!(matches!(error, TargetError::UnsupportedConnection(_)));
        assert_eq!(
            error.to_string(),
            "connection type 'winrm' is not supported by kiln (use ssh or local)"
        );
        let error = resolve_with("ansible_port", "ssh").unwrap_err();
        assert!(matches!(error, TargetError::BadPort(_)));
        assert_eq!(error.to_string(), "ansible_port 'ssh' is not a port number");
        match resolve_with("ansible_port", "2222").unwrap() {
            Target::Ssh(ssh) => {
                assert_eq!(ssh.port, 2222);
                assert_eq!(ssh.known_hosts, [PathBuf::from("/dev/null")]);
            }
            other => panic!("not an SSH target: {other:?}"),
        }
    }

    #[test]
    fn jump_hops_are_completed_from_ssh_config() {
        let config = SshConfig::parse(
            "Host bastion\n  HostName 10.0.0.2\n  User ops\n  Port 2200\n  IdentityFile /k/%r@%h\n",
            std::path::Path::new("/nonexistent"),
        );
        let hops = jump_hosts("bastion, admin@bastion:22 ,[::1]:2022,plain", &config);
        let summary: Vec<String> = hops.iter().map(|h| h.to_string()).collect();
        assert_eq!(
            summary,
            [
                "ops@10.0.0.2:2200".to_string(),
                "admin@10.0.0.2:22".to_string(),
                format!("{}@::1:2022", local_user()),
                format!("{}@plain:22", local_user()),
            ]
        );
        assert_eq!(hops[0].identity_files, [PathBuf::from("/k/ops@10.0.0.2")]);
        assert_eq!(hops[1].identity_files, [PathBuf::from("/k/admin@10.0.0.2")]);
        assert!(hops[3].identity_files.is_empty(), "default keys then");
    }

    #[test]
    fn ssh_options_win_over_ssh_config_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg");
        std::fs::write(
            &file,
            "Host web1\n  HostName 10.1.1.1\n  User cfg\n  Port 2222\n  ProxyCommand nc %h %p\n",
        )
        .unwrap();
        let args = format!("-F {}", file.display());
        let Target::Ssh(ssh) = resolve_with("ansible_ssh_common_args", &args).unwrap() else {
            panic!("not an SSH target")
        };
        assert_eq!((ssh.host.as_str(), ssh.port), ("10.1.1.1", 2222));
        assert_eq!(ssh.user, "root", "the named login user wins over User");
        assert_eq!(ssh.proxy, Some(Proxy::Command("nc 10.1.1.1 2222".into())));
        let args = format!("-F {} -o Port=22 -J j1", file.display());
        let Target::Ssh(ssh) = resolve_with("ansible_ssh_extra_args", &args).unwrap() else {
            panic!("not an SSH target")
        };
        assert_eq!(ssh.port, 22);
        assert!(matches!(ssh.proxy, Some(Proxy::Jump(_))), "-J comes first");
    }
}
