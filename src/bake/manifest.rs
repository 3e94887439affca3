//! The build manifest, in Packer's format (`builds[]` with `name`, `builder_type`,
//! `build_time`, `files`, `artifact_id`, `packer_run_uuid`, `custom_data`; `last_run_uuid`),
//! appended to across runs so CI can read the newest artifact.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// A manifest as Packer writes it. Every field may be missing or `null` in a file Packer
/// wrote (`custom_data: null`, `files: null`), and fields kiln does not know are kept as they
/// are when it appends a build.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    #[serde(default, deserialize_with = "null_as_default")]
    pub builds: Vec<Build>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub last_run_uuid: String,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Build {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub builder_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub build_time: i64,
    #[serde(default)]
    pub files: Option<Vec<serde_json::Value>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub artifact_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub packer_run_uuid: String,
    #[serde(default, deserialize_with = "custom_data")]
    pub custom_data: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `null` reads as the type's default (Packer writes `null` for what a build did not set).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `custom_data`: `null`, or a mapping whose values are strings (other JSON values are kept
/// as their JSON text).
fn custom_data<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let map: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
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
                    other: Default::default(),
                },
            )
            .unwrap();
        }
        let m: Manifest = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((m.builds.len(), m.last_run_uuid.as_str()), (2, "u2"));
        assert_eq!(last_artifact(&path).unwrap().as_deref(), Some("local:2"));
    }

    /// A manifest Packer 1.6 wrote (nulls, an extra field) is read, appended to, and keeps
    /// what kiln does not know.
    #[test]
    fn appends_to_a_manifest_packer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("packer-manifest.json");
        std::fs::write(
            &path,
            r#"{
  "builds": [
    {
      "name": "web",
      "builder_type": "amazon-ebs",
      "build_time": 1700000000,
      "files": null,
      "artifact_id": "us-east-1:ami-0123",
      "packer_run_uuid": "p1",
      "custom_data": null,
      "future_field": {"x": 1}
    }
  ],
  "last_run_uuid": "p1"
}"#,
        )
        .unwrap();
        assert_eq!(
            last_artifact(&path).unwrap().as_deref(),
            Some("us-east-1:ami-0123")
        );
        append(
            &path,
            Build {
                name: "web".into(),
                builder_type: "amazon-ebs".into(),
                build_time: 1_800_000_000,
                artifact_id: "us-east-1:ami-0456".into(),
                packer_run_uuid: "k2".into(),
                custom_data: BTreeMap::from([("kiln:run-id".into(), "k2".into())]),
                ..Default::default()
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(m["builds"][0]["future_field"]["x"], 1, "{text}");
        assert_eq!(m["builds"][1]["artifact_id"], "us-east-1:ami-0456");
        assert_eq!(m["last_run_uuid"], "k2");
        assert_eq!(
            last_artifact(&path).unwrap().as_deref(),
            Some("us-east-1:ami-0456")
        );
    }
}
