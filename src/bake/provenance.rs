//! What an image was baked from: each provisioning step's playbook (absolute path and the
//! sha256 of its content), variables, groups and tags, and the git commit of the playbook's
//! repository. Kept in the local image store's `image.json`, and as tags (AMI tags, the
//! manifest's `custom_data`), so `kiln drift` can check a running instance against it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::spec::BakeSpec;
use crate::load::model::VarMap;

/// An EC2 tag value holds at most 256 characters.
pub const TAG_VALUE_LIMIT: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub steps: Vec<ProvisionRecord>,
    /// `git rev-parse HEAD` where the first playbook lives, if it is in a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
}

/// One provisioning step as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionRecord {
    pub playbook: PathBuf,
    /// sha256 of the playbook file's content, hex.
    pub sha256: String,
    /// The step's variables with the command line's `-e` over them.
    #[serde(default)]
    pub extra_vars: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub skip_tags: Vec<String>,
}

/// sha256 of a file's content, hex.
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn git_sha(dir: &Path) -> Option<String> {
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|sha| !sha.is_empty())
}

impl Provenance {
    /// The provenance of a bake about to run: its playbooks as they are now, each step's
    /// variables with the caller's over them.
    pub fn of_bake(
        spec: &BakeSpec,
        spec_dir: &Path,
        caller_vars: &VarMap,
    ) -> anyhow::Result<Provenance> {
        let mut steps = Vec::new();
        for step in &spec.provision {
            let path = spec_dir.join(&step.playbook);
            let playbook = path
                .canonicalize()
                .with_context(|| format!("playbook {}", path.display()))?;
            let mut extra_vars = step.extra_vars.clone();
            for (name, value) in caller_vars {
                extra_vars.insert(name.clone(), serde_json::to_value(value)?);
            }
            steps.push(ProvisionRecord {
                sha256: file_sha256(&playbook)?,
                playbook,
                extra_vars,
                groups: step.groups.clone(),
                tags: step.tags.clone(),
                skip_tags: step.skip_tags.clone(),
            });
        }
        let git_sha = steps
            .first()
            .and_then(|s| s.playbook.parent())
            .and_then(git_sha);
        Ok(Provenance { steps, git_sha })
    }

    /// As tags: `kiln:playbook`, `kiln:playbook-sha256`, `kiln:extra-vars` (JSON),
    /// `kiln:groups`, `kiln:tags`, `kiln:skip-tags` (comma-separated) for the first step,
    /// `kiln:step<N>:…` for step N from 2 on, and `kiln:git-sha`.
    pub fn to_tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        for (n, step) in self.steps.iter().enumerate() {
            let key = |name: &str| step_key(n + 1, name);
            tags.insert(key("playbook"), step.playbook.display().to_string());
            tags.insert(key("playbook-sha256"), step.sha256.clone());
            let vars = serde_json::to_string(&step.extra_vars).unwrap_or_default();
            tags.insert(key("extra-vars"), vars);
            for (name, list) in [
                ("groups", &step.groups),
                ("tags", &step.tags),
                ("skip-tags", &step.skip_tags),
            ] {
                if !list.is_empty() {
                    tags.insert(key(name), list.join(","));
                }
            }
        }
        if let Some(sha) = &self.git_sha {
            tags.insert("kiln:git-sha".into(), sha.clone());
        }
        tags
    }

    /// Reads [`to_tags`](Self::to_tags)' tags back; `None` when they hold no provenance.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> anyhow::Result<Option<Provenance>> {
        let mut steps = Vec::new();
        for n in 1.. {
            let get = |name: &str| tags.get(&step_key(n, name));
            let Some(playbook) = get("playbook") else {
                break;
            };
            let list = |name: &str| -> Vec<String> {
                get(name)
                    .map(|v| v.split(',').map(str::to_string).collect())
                    .unwrap_or_default()
            };
            let extra_vars = match get("extra-vars") {
                Some(text) => serde_json::from_str(text)
                    .with_context(|| format!("the image's {} tag", step_key(n, "extra-vars")))?,
                None => BTreeMap::new(),
            };
            steps.push(ProvisionRecord {
                playbook: PathBuf::from(playbook),
                sha256: get("playbook-sha256").cloned().unwrap_or_default(),
                extra_vars,
                groups: list("groups"),
                tags: list("tags"),
                skip_tags: list("skip-tags"),
            });
        }
        if steps.is_empty() {
            return Ok(None);
        }
        Ok(Some(Provenance {
            steps,
            git_sha: tags.get("kiln:git-sha").cloned(),
        }))
    }

    /// Tags too long for EC2 (checked before a build starts, not after it).
    pub fn check_tag_lengths(&self) -> anyhow::Result<()> {
        for (key, value) in self.to_tags() {
            if value.chars().count() > TAG_VALUE_LIMIT {
                anyhow::bail!(
                    "the image's provenance tag {key} would be {} characters, over EC2's \
                     {TAG_VALUE_LIMIT}: shorten the playbook path or pass fewer extra variables",
                    value.chars().count()
                );
            }
        }
        Ok(())
    }
}

fn step_key(n: usize, name: &str) -> String {
    if n == 1 {
        format!("kiln:{name}")
    } else {
        format!("kiln:step{n}:{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(playbook: &str, vars: serde_json::Value, groups: &[&str]) -> ProvisionRecord {
        ProvisionRecord {
            playbook: PathBuf::from(playbook),
            sha256: "ab".repeat(32),
            extra_vars: serde_json::from_value(vars).unwrap(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            tags: vec![],
            skip_tags: vec!["slow".into()],
        }
    }

    #[test]
    fn tags_round_trip_every_step() {
        let provenance = Provenance {
            steps: vec![
                record(
                    "/src/site.yml",
                    serde_json::json!({"v": "1.0", "n": 3}),
                    &["web"],
                ),
                record("/src/extra.yml", serde_json::json!({}), &[]),
            ],
            git_sha: Some("0123abcd".into()),
        };
        let tags = provenance.to_tags();
        assert_eq!(tags["kiln:playbook"], "/src/site.yml");
        assert_eq!(tags["kiln:step2:playbook"], "/src/extra.yml");
        assert_eq!(tags["kiln:extra-vars"], r#"{"n":3,"v":"1.0"}"#);
        assert_eq!(tags["kiln:git-sha"], "0123abcd");
        assert_eq!(Provenance::from_tags(&tags).unwrap(), Some(provenance));
        assert_eq!(Provenance::from_tags(&BTreeMap::new()).unwrap(), None);
    }

    #[test]
    fn overlong_tags_are_refused() {
        let long = Provenance {
            steps: vec![record(
                "/p.yml",
                serde_json::json!({"key": "x".repeat(300)}),
                &[],
            )],
            git_sha: None,
        };
        let err = long.check_tag_lengths().unwrap_err().to_string();
        assert!(err.contains("kiln:extra-vars"), "{err}");
    }
}
