//! The build manifest, in Packer's format (`builds[]` with `name`, `builder_type`,
//! `build_time`, `files`, `artifact_id`, `packer_run_uuid`, `custom_data`; `last_run_uuid`),
//! appended to across runs so CI can read the newest artifact.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    #[serde(default)]
    pub builds: Vec<Build>,
    #[serde(default)]
    pub last_run_uuid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub name: String,
    pub builder_type: String,
    pub build_time: i64,
    pub files: Option<Vec<serde_json::Value>>,
    pub artifact_id: String,
    pub packer_run_uuid: String,
    #[serde(default)]
    pub custom_data: BTreeMap<String, String>,
}

/// Appends a build to the manifest at `path` (created if absent), atomically.
pub fn append(path: &Path, build: Build) -> anyhow::Result<()> {
    let mut manifest: Manifest = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a build manifest", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    manifest.last_run_uuid = build.packer_run_uuid.clone();
    manifest.builds.push(build);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&manifest)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The newest build's artifact id, for `image: {manifest: …}`.
pub fn last_artifact(path: &Path) -> anyhow::Result<Option<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)?;
    Ok(manifest
        .builds
        .iter()
        .rev()
        .find(|b| b.packer_run_uuid == manifest.last_run_uuid)
        .or(manifest.builds.last())
        .map(|b| b.artifact_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_the_last_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        for (n, uuid) in [(1, "u1"), (2, "u2")] {
            append(
                &path,
                Build {
                    name: "web".into(),
                    builder_type: "local".into(),
                    build_time: n,
                    files: None,
                    artifact_id: format!("local:{n}"),
                    packer_run_uuid: uuid.into(),
                    custom_data: BTreeMap::new(),
                },
            )
            .unwrap();
        }
        let m: Manifest = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((m.builds.len(), m.last_run_uuid.as_str()), (2, "u2"));
        assert_eq!(last_artifact(&path).unwrap().as_deref(), Some("local:2"));
    }
}
