//! `ansible.cfg`: the `[defaults]` and `[ssh_connection]` settings kiln honours.
//!
//! Looked up the way Ansible does: `ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg`,
//! `/etc/ansible/ansible.cfg`; the first that exists wins. Environment variables
//! (`ANSIBLE_ROLES_PATH`, `ANSIBLE_HOST_KEY_CHECKING`, …) override it.

use std::path::{Path, PathBuf};

use crate::value::parse_bool;

#[derive(Debug, Clone, Default)]
pub struct AnsibleConfig {
    pub path: Option<PathBuf>,
    pub inventory: Vec<PathBuf>,
    pub roles_path: Vec<PathBuf>,
    /// `library` / `ANSIBLE_LIBRARY`: directories of modules run through Python.
    pub library: Vec<PathBuf>,
    /// `collections_path` / `ANSIBLE_COLLECTIONS_PATH`: roots holding `ansible_collections/`
    /// (Ansible's default when unset: `~/.ansible/collections`, `/usr/share/ansible/collections`).
    pub collections_path: Vec<PathBuf>,
    pub forks: Option<usize>,
    pub remote_user: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub host_key_checking: Option<bool>,
    pub timeout: Option<u64>,
    pub ssh_args: Option<String>,
    pub escalate: Option<bool>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub gathering: Option<String>,
    /// `gather_subset` / `ANSIBLE_GATHER_SUBSET`: the facts plays gather by default.
    pub gather_subset: Vec<String>,
    /// `fact_caching` / `ANSIBLE_CACHE_PLUGIN` (`memory`, `jsonfile`).
    pub fact_caching: Option<String>,
    /// `fact_caching_connection` / `ANSIBLE_CACHE_PLUGIN_CONNECTION`: jsonfile's directory.
    pub fact_caching_connection: Option<PathBuf>,
    /// `fact_caching_timeout` / `ANSIBLE_CACHE_PLUGIN_TIMEOUT`, in seconds (0: never expire).
    pub fact_caching_timeout: Option<u64>,
    /// `force_handlers` / `ANSIBLE_FORCE_HANDLERS`: notified handlers run on failed hosts too.
    pub force_handlers: Option<bool>,
    /// `nocolor` / `ANSIBLE_NOCOLOR` / `NO_COLOR`.
    pub nocolor: Option<bool>,
    /// `force_color` / `ANSIBLE_FORCE_COLOR`: colour even when stdout is not a terminal.
    pub force_color: Option<bool>,
    /// `stdout_callback` / `ANSIBLE_STDOUT_CALLBACK` (`default`, `json`, `yaml`).
    pub stdout_callback: Option<String>,
    pub display_skipped_hosts: Option<bool>,
    pub display_ok_hosts: Option<bool>,
    /// `callback_result_format` (`json`, `yaml`).
    pub result_format: Option<String>,
    /// `vault_password_file` (ANSIBLE_VAULT_PASSWORD_FILE): used when no vault option is given.
    pub vault_password_file: Option<PathBuf>,
    /// Settings the file sets that kiln does not act on (`[section] key`), to warn about.
    pub unhonoured: Vec<String>,
}

/// The `ANSIBLE_*` environment variables kiln acts on; any other is warned about once.
pub const HONOURED_ENVIRONMENT: &[&str] = &[
    "ANSIBLE_CONFIG",
    "ANSIBLE_INVENTORY",
    "ANSIBLE_ROLES_PATH",
    "ANSIBLE_LIBRARY",
    "ANSIBLE_COLLECTIONS_PATH",
    "ANSIBLE_COLLECTIONS_PATHS",
    "ANSIBLE_FORKS",
    "ANSIBLE_REMOTE_USER",
    "ANSIBLE_PRIVATE_KEY_FILE",
    "ANSIBLE_HOST_KEY_CHECKING",
    "ANSIBLE_TIMEOUT",
    "ANSIBLE_SSH_ARGS",
    "ANSIBLE_BECOME",
    "ANSIBLE_BECOME_USER",
    "ANSIBLE_BECOME_METHOD",
    "ANSIBLE_GATHERING",
    "ANSIBLE_GATHER_SUBSET",
    "ANSIBLE_CACHE_PLUGIN",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION",
    "ANSIBLE_CACHE_PLUGIN_TIMEOUT",
    "ANSIBLE_FORCE_HANDLERS",
    "ANSIBLE_NOCOLOR",
    "ANSIBLE_FORCE_COLOR",
    "ANSIBLE_STDOUT_CALLBACK",
    "ANSIBLE_DISPLAY_SKIPPED_HOSTS",
    "ANSIBLE_DISPLAY_OK_HOSTS",
    "ANSIBLE_CALLBACK_RESULT_FORMAT",
    "ANSIBLE_VAULT_PASSWORD_FILE",
];

/// The `ANSIBLE_*` variables set in this environment that kiln does not act on.
pub fn unhonoured_environment() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.starts_with("ANSIBLE_") && !HONOURED_ENVIRONMENT.contains(&name.as_str())
        })
        .collect();
    names.sort();
    names
}

/// An `ANSIBLE_*` boolean from the environment, as Ansible reads one (unset or unreadable:
/// `None`, so the file's setting stands).
fn env_bool(name: &str) -> Option<bool> {
    std::env::var(name).ok().and_then(|v| parse_bool(&v))
}

/// A number from the environment (unset or not a number: `None`).
fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(text),
    }
}

fn path_list(text: &str, base: &Path) -> Vec<PathBuf> {
    text.split([':', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let p = expand_home(s);
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        })
        .collect()
}

impl AnsibleConfig {
    /// Finds and reads the configuration, then applies environment overrides.
    /// Whether text output is coloured, as Ansible decides: forced colour wins, then
    /// `nocolor`, then whether stdout is a terminal.
    pub fn color_output(&self, stdout_is_terminal: bool) -> bool {
        self.force_color == Some(true) || (self.nocolor != Some(true) && stdout_is_terminal)
    }

    pub fn discover() -> Self {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("ANSIBLE_CONFIG") {
            candidates.push(PathBuf::from(p));
        }
        candidates.push(PathBuf::from("ansible.cfg"));
        if let Some(home) = std::env::var_os("HOME") {
            candidates.push(Path::new(&home).join(".ansible.cfg"));
        }
        candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
        let mut config = candidates
            .into_iter()
            .find(|p| p.is_file())
            .and_then(|p| {
                std::fs::read_to_string(&p)
                    .ok()
                    .map(|text| Self::parse(&text, &p))
            })
            .unwrap_or_default();
        config.apply_env();
        config
    }

    pub fn parse(text: &str, path: &Path) -> Self {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = AnsibleConfig {
            path: Some(path.to_path_buf()),
            ..Default::default()
        };
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match (section.as_str(), key) {
                ("defaults", "inventory" | "hostfile") => {
                    config.inventory = path_list(value, &base)
                }
                ("defaults", "roles_path") => config.roles_path = path_list(value, &base),
                ("defaults", "library") => config.library = path_list(value, &base),
                ("defaults", "collections_path" | "collections_paths") => {
                    config.collections_path = path_list(value, &base)
                }
                ("defaults", "forks") => config.forks = value.parse().ok(),
                ("defaults", "remote_user") => config.remote_user = Some(value.to_string()),
                ("defaults", "private_key_file") => {
                    config.private_key_file = Some(expand_home(value))
                }
                ("defaults", "host_key_checking") => config.host_key_checking = parse_bool(value),
                ("defaults", "timeout") => config.timeout = value.parse().ok(),
                ("defaults", "gathering") => config.gathering = Some(value.to_string()),
                ("defaults", "gather_subset") => config.gather_subset = comma_list(value),
                ("defaults", "fact_caching") => config.fact_caching = Some(value.to_string()),
                ("defaults", "fact_caching_connection") => {
                    config.fact_caching_connection = Some(base.join(expand_home(value)))
                }
                ("defaults", "fact_caching_timeout") => {
                    config.fact_caching_timeout = value.parse().ok()
                }
                ("defaults", "force_handlers") => config.force_handlers = parse_bool(value),
                ("defaults", "nocolor") => config.nocolor = parse_bool(value),
                ("defaults", "stdout_callback") => config.stdout_callback = Some(value.to_string()),
                ("defaults", "display_skipped_hosts") => {
                    config.display_skipped_hosts = parse_bool(value)
                }
                ("defaults", "display_ok_hosts") => config.display_ok_hosts = parse_bool(value),
                ("defaults", "callback_result_format") => {
                    config.result_format = Some(value.to_string())
                }
                ("defaults", "force_color") => config.force_color = parse_bool(value),
                ("defaults", "vault_password_file") => {
                    config.vault_password_file = Some(base.join(expand_home(value)))
                }
                ("ssh_connection", "ssh_args") => config.ssh_args = Some(value.to_string()),
                ("privilege_escalation", "become") => config.escalate = parse_bool(value),
                ("privilege_escalation", "become_user") => {
                    config.become_user = Some(value.to_string())
                }
                ("privilege_escalation", "become_method") => {
                    config.become_method = Some(value.to_string())
                }
                (section, key) => config.unhonoured.push(format!("[{section}] {key}")),
            }
        }
        config
    }

    fn apply_env(&mut self) {
        let cwd = std::env::current_dir().unwrap_or_default();
        if let Ok(v) = std::env::var("ANSIBLE_ROLES_PATH") {
            let mut paths = path_list(&v, &cwd);
            paths.append(&mut self.roles_path);
            self.roles_path = paths;
        }
        if let Ok(v) = std::env::var("ANSIBLE_LIBRARY") {
            self.library = path_list(&v, &cwd);
        }
        if let Ok(v) = std::env::var("ANSIBLE_COLLECTIONS_PATH")
            .or_else(|_| std::env::var("ANSIBLE_COLLECTIONS_PATHS"))
        {
            self.collections_path = path_list(&v, &cwd);
        }
        if self.collections_path.is_empty() {
            self.collections_path = vec![
                expand_home("~/.ansible/collections"),
                PathBuf::from("/usr/share/ansible/collections"),
            ];
        }
        if let Ok(v) = std::env::var("ANSIBLE_INVENTORY") {
            self.inventory = path_list(&v, &cwd);
        }
        if let Some(b) = env_bool("ANSIBLE_HOST_KEY_CHECKING") {
            self.host_key_checking = Some(b);
        }
        if let Some(b) = env_bool("ANSIBLE_NOCOLOR") {
            self.nocolor = Some(b);
        } else if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            // no-color.org: any non-empty value turns colour off.
            self.nocolor = Some(true);
        }
        if let Some(b) = env_bool("ANSIBLE_FORCE_COLOR") {
            self.force_color = Some(b);
        }
        if let Some(b) = env_bool("ANSIBLE_BECOME") {
            self.escalate = Some(b);
        }
        if let Ok(v) = std::env::var("ANSIBLE_BECOME_USER") {
            self.become_user = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_BECOME_METHOD") {
            self.become_method = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_STDOUT_CALLBACK") {
            self.stdout_callback = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_CALLBACK_RESULT_FORMAT") {
            self.result_format = Some(v);
        }
        if let Some(b) = env_bool("ANSIBLE_DISPLAY_SKIPPED_HOSTS") {
            self.display_skipped_hosts = Some(b);
        }
        if let Some(b) = env_bool("ANSIBLE_DISPLAY_OK_HOSTS") {
            self.display_ok_hosts = Some(b);
        }
        if let Some(b) = env_bool("ANSIBLE_FORCE_HANDLERS") {
            self.force_handlers = Some(b);
        }
        if let Ok(v) = std::env::var("ANSIBLE_GATHERING") {
            self.gathering = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_GATHER_SUBSET") {
            self.gather_subset = comma_list(&v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_CACHE_PLUGIN") {
            self.fact_caching = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_CACHE_PLUGIN_CONNECTION") {
            self.fact_caching_connection = Some(cwd.join(expand_home(&v)));
        }
        if let Some(n) = env_parse("ANSIBLE_CACHE_PLUGIN_TIMEOUT") {
            self.fact_caching_timeout = Some(n);
        }
        if let Ok(v) = std::env::var("ANSIBLE_SSH_ARGS") {
            self.ssh_args = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_REMOTE_USER") {
            self.remote_user = Some(v);
        }
        if let Ok(v) = std::env::var("ANSIBLE_PRIVATE_KEY_FILE") {
            self.private_key_file = Some(expand_home(&v));
        }
        if let Ok(v) = std::env::var("ANSIBLE_VAULT_PASSWORD_FILE") {
            self.vault_password_file = Some(cwd.join(expand_home(&v)));
        }
        if let Some(n) = env_parse("ANSIBLE_FORKS") {
            self.forks = Some(n);
        }
        if let Some(n) = env_parse("ANSIBLE_TIMEOUT") {
            self.timeout = Some(n);
        }
    }
}

/// A comma-separated ansible.cfg list (`gather_subset = !all,network`).
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_module_and_collection_paths() {
        let text = "[defaults]\nlibrary = library:/opt/modules\ncollections_path = ./collections\n";
        let config = AnsibleConfig::parse(text, Path::new("/srv/site/ansible.cfg"));
        assert_eq!(
            config.library,
            vec![
                PathBuf::from("/srv/site/library"),
                PathBuf::from("/opt/modules")
            ]
        );
        assert_eq!(
            config.collections_path,
            vec![PathBuf::from("/srv/site/./collections")]
        );
        assert!(config.unhonoured.is_empty(), "{:?}", config.unhonoured);
    }

    #[test]
    fn reads_defaults_relative_to_the_file() {
        let text = "[defaults]\ninventory = inventories/prod\nroles_path = roles:/opt/roles\nforks=20\nhost_key_checking = False\n";
        let config = AnsibleConfig::parse(text, Path::new("/srv/site/ansible.cfg"));
        assert_eq!(
            config.inventory,
            vec![PathBuf::from("/srv/site/inventories/prod")]
        );
        assert_eq!(
            config.roles_path,
            vec![
                PathBuf::from("/srv/site/roles"),
                PathBuf::from("/opt/roles")
            ]
        );
        assert_eq!(config.forks, Some(20));
        assert_eq!(config.host_key_checking, Some(false));
    }
}
