//! ansible.cfg's `fact_caching = jsonfile`: each host's facts kept between runs in
//! `fact_caching_connection/<host>`, one JSON document in the layout ansible's jsonfile cache
//! writes (`ansible_`-prefixed names, `module_setup` and `gather_subset` plain), so ansible
//! and kiln can share a cache. Cached facts are the host's facts at the start of a run, and
//! with `gathering = smart` a host with fresh cached facts is not gathered again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::value::VarMap;

/// Fact names ansible's setup returns without the `ansible_` prefix.
const PLAIN_FACTS: &[&str] = &["module_setup", "gather_subset"];

#[derive(Debug, Clone)]
pub struct FactCache {
    pub dir: PathBuf,
    /// Cached facts older than this are ignored; zero keeps them forever (as ansible).
    pub timeout: Duration,
}

impl FactCache {
    /// The cache file of an inventory host, or None for a name that is not one file name.
    fn path(&self, host: &str) -> Option<PathBuf> {
        let plain = !host.is_empty() && host != "." && host != ".." && !host.contains('/');
        plain.then(|| self.dir.join(host))
    }

    /// The host's cached facts, named as a module returns them, if fresh. A cache file that
    /// cannot be read or parsed is treated as absent: it is only a cache.
    pub fn load(&self, host: &str) -> Option<VarMap> {
        let path = self.path(host)?;
        let meta = std::fs::metadata(&path).ok()?;
        if !self.timeout.is_zero() {
            let age = SystemTime::now()
                .duration_since(meta.modified().ok()?)
                .unwrap_or_default();
            if age > self.timeout {
                return None;
            }
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).ok()?;
        Some(
            json.into_iter()
                .map(|(name, value)| {
                    let name = if name.starts_with("ansible_") {
                        name
                    } else {
                        format!("ansible_{name}")
                    };
                    (name, minijinja::Value::from(minijinja::value::Serde(value)))
                })
                .collect(),
        )
    }

    /// Writes the host's facts (named without the prefix, as the run keeps them). The file
    /// is private to its owner: facts include the login environment.
    pub fn store(&self, host: &str, facts: &VarMap) -> Result<()> {
        let Some(path) = self.path(host) else {
            return Ok(());
        };
        let named: serde_json::Map<String, serde_json::Value> = facts
            .iter()
            .map(|(name, value)| {
                let name = if PLAIN_FACTS.contains(&name.as_str()) {
                    name.clone()
                } else {
                    format!("ansible_{name}")
                };
                (name, serde_json::to_value(value).unwrap_or_default())
            })
            .collect();
        let text = serde_json::to_string_pretty(&named).unwrap_or_default();
        write_private(&self.dir, &path, text.as_bytes()).map_err(|source| Error::Io {
            path: path.clone(),
            action: "write the fact cache",
            source,
        })
    }
}

/// Writes through a temporary file in the same directory, renamed over the target, so a
/// reader never sees half a file.
fn write_private(dir: &Path, path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".kiln-{}", crate::util::random_id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| file.write_all(content))
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, timeout: u64) -> FactCache {
        FactCache {
            dir: dir.to_path_buf(),
            timeout: Duration::from_secs(timeout),
        }
    }

    #[test]
    fn facts_round_trip_in_ansibles_layout() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path(), 0);
        let mut facts = VarMap::new();
        facts.insert("distribution".into(), minijinja::Value::from("Debian"));
        facts.insert("module_setup".into(), minijinja::Value::from(true));
        cache.store("web1", &facts).unwrap();
        let text = std::fs::read_to_string(dir.path().join("web1")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["ansible_distribution"], "Debian");
        assert_eq!(json["module_setup"], true);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("web1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = cache.load("web1").unwrap();
        assert_eq!(loaded["ansible_distribution"].as_str(), Some("Debian"));
        assert!(loaded["ansible_module_setup"].is_true());
    }

    #[test]
    fn stale_broken_and_unsafe_entries_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), "{}").unwrap();
        let past = SystemTime::now() - Duration::from_secs(120);
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("old"))
            .unwrap();
        file.set_modified(past).unwrap();
        assert!(cache(dir.path(), 60).load("old").is_none());
        assert!(cache(dir.path(), 0).load("old").is_some());
        std::fs::write(dir.path().join("broken"), "{not json").unwrap();
        assert!(cache(dir.path(), 0).load("broken").is_none());
        let facts = VarMap::new();
        cache(dir.path(), 0).store("../escape", &facts).unwrap();
        assert!(!dir.path().parent().unwrap().join("escape").exists());
        assert!(cache(dir.path(), 0).load("..").is_none());
    }
}
