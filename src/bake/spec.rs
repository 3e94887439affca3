//! The bake spec: what to build from, how to provision it, where to write the manifest. Field
//! names follow Packer's (`source_ami`, `ssh_username`, `ami_name`, `run_tags`, …); unknown
//! fields are errors that name the field and its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::Error;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BakeSpec {
    pub name: String,
    pub source: Source,
    #[serde(default)]
    pub provision: Vec<Provision>,
    #[serde(default)]
    pub post: Post,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Source {
    #[serde(rename = "local")]
    Local(LocalSource),
    #[serde(rename = "amazon-ebs")]
    AmazonEbs(Box<AmazonEbsSource>),
}

/// The local builder: a systemd-nspawn instance booted from a base rootfs (or a local image).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LocalSource {
    /// A local image to build on (`local:<id>` or its name); else the Debian 12 base.
    pub source_image: Option<String>,
    /// The new image's name (templated: `{{ timestamp }}`, `{{ git_sha }}`).
    pub image_name: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Extra apt sources lines for the build only (removed from the image afterwards).
    #[serde(default)]
    pub apt_sources: Vec<String>,
    /// Seconds to wait for the instance's SSH server.
    pub ssh_timeout: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AmazonEbsSource {
    pub region: Option<String>,
    pub instance_type: Option<String>,
    pub source_ami: Option<String>,
    pub source_ami_filter: Option<serde_json::Value>,
    pub ssh_username: Option<String>,
    pub ssh_interface: Option<String>,
    pub ssh_host: Option<String>,
    pub ssh_port: Option<u16>,
    pub ssh_keypair_name: Option<String>,
    pub ssh_private_key_file: Option<PathBuf>,
    pub subnet_id: Option<String>,
    pub ami_name: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub run_tags: BTreeMap<String, String>,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    pub playbook: PathBuf,
    #[serde(default)]
    pub extra_vars: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub skip_tags: Vec<String>,
    /// Inventory groups the build host is in (Packer's `groups`); the host is `default`.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Post {
    pub manifest: Option<ManifestPost>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestPost {
    pub output: PathBuf,
}

impl BakeSpec {
    pub fn load(path: &Path) -> Result<BakeSpec, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            action: "read the bake spec",
            source,
        })?;
        let file = Arc::new(path.to_path_buf());
        let spec: BakeSpec =
            serde_saphyr::from_str(&text).map_err(|e| schema_error(&file, &text, &e))?;
        if spec.name.trim().is_empty() {
            return Err(Error::Usage(format!(
                "{}: name must not be empty",
                path.display()
            )));
        }
        if spec.provision.is_empty() {
            return Err(Error::Usage(format!(
                "{}: provision needs at least one step (- playbook: …)",
                path.display()
            )));
        }
        Ok(spec)
    }
}

/// A spec error at the line that causes it: serde reports an unknown field of a tagged
/// section at the section's start, so the field's own line is looked up in the text.
fn schema_error(file: &Arc<PathBuf>, text: &str, err: &serde_saphyr::Error) -> Error {
    let base = crate::yaml::yaml_error(file, err);
    let Error::Yaml { location, message } = base else {
        return base;
    };
    let field = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(field, _)| field.to_string());
    let location = match field.and_then(|f| {
        text.lines().position(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .starts_with(&format!("{f}:"))
        })
    }) {
        Some(line) => crate::error::Location::new(file.clone(), line as u32 + 1, 1),
        None => location,
    };
    if message.contains("unknown field")
        || message.contains("missing field")
        || message.contains("unknown variant")
    {
        Error::invalid(location, format!("bake spec: {message}"))
    } else {
        Error::Yaml { location, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_local_spec_and_rejects_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "name: web\nsource:\n  type: local\n  image_name: web-{{ timestamp }}\n  tags: {Role: web}\nprovision:\n  - playbook: site.yml\n    groups: [web]\npost:\n  manifest: {output: m.json}\n",
        )
        .unwrap();
        let spec = BakeSpec::load(&path).unwrap();
        assert!(matches!(spec.source, Source::Local(ref l) if l.tags["Role"] == "web"));
        assert_eq!(spec.provision[0].groups, vec!["web"]);
        std::fs::write(
            &path,
            "name: web\nsource:\n  type: local\n  image_nam: x\nprovision: [{playbook: a.yml}]\n",
        )
        .unwrap();
        let err = BakeSpec::load(&path).unwrap_err().to_string();
        assert!(err.contains("image_nam"), "{err}");
        assert!(err.contains("web.yml:4"), "{err}");
    }
}
