//! The local image store (`$KILN_HOME/images/<id>/`): each image is one overlay layer (the
//! build's upper directory) plus `image.json` (id, name, tags, parent, base, created, the
//! layers to stack). Ids are content addresses: the sha256 of the layer as a normalised tar
//! stream, shortened to 12 hex digits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::provenance::Provenance;
use crate::clock::epoch_seconds as unix_now;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub parent: Option<String>,
    /// The base rootfs under all layers.
    pub base: PathBuf,
    /// Unix seconds.
    pub created: i64,
    /// Layer ids, topmost (this image's own) first.
    pub layers: Vec<String>,
    /// What the image was baked from (absent for images kiln stored before it kept this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl Image {
    pub fn artifact_id(&self) -> String {
        format!("local:{}", self.id)
    }
}

pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    pub fn open(home: &Path) -> ImageStore {
        ImageStore {
            root: home.join("images"),
        }
    }

    pub fn layer_dir(&self, id: &str) -> PathBuf {
        self.root.join(id).join("layer")
    }

    /// Every image, oldest first.
    pub fn list(&self) -> anyhow::Result<Vec<Image>> {
        let mut images = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(images);
        };
        for entry in entries.flatten() {
            let meta = entry.path().join("image.json");
            if let Ok(text) = std::fs::read_to_string(&meta) {
                let image: Image = serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", meta.display()))?;
                images.push(image);
            }
        }
        images.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(images)
    }

    /// An image by `local:<id>`, id (or a unique prefix), or name (the newest of that name).
    pub fn find(&self, reference: &str) -> anyhow::Result<Image> {
        let images = self.list()?;
        let key = reference.strip_prefix("local:").unwrap_or(reference);
        let by_id: Vec<&Image> = images.iter().filter(|i| i.id.starts_with(key)).collect();
        if let [one] = by_id[..] {
            return Ok(one.clone());
        }
        if let Some(named) = images.iter().rev().find(|i| i.name == key) {
            return Ok(named.clone());
        }
        if by_id.len() > 1 {
            bail!("the image reference '{reference}' is ambiguous: give more of the id");
        }
        bail!("no local image '{reference}' (see `kiln images`)")
    }

    /// The overlay lower directories to boot `image`: its layers, then the base.
    pub fn lower_dirs(&self, image: &Image) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = image.layers.iter().map(|l| self.layer_dir(l)).collect();
        dirs.push(image.base.clone());
        dirs
    }

    /// Stores a finished build's upper directory as a new image (the directory is moved).
    pub async fn commit(
        &self,
        upper: &Path,
        name: &str,
        tags: BTreeMap<String, String>,
        parent: Option<&Image>,
        base: &Path,
        provenance: &Provenance,
    ) -> anyhow::Result<Image> {
        let id = content_id(upper).await?;
        let dir = self.root.join(&id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("replacing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::rename(upper, dir.join("layer"))
            .with_context(|| format!("moving the build's layer into {}", dir.display()))?;
        let mut layers = vec![id.clone()];
        if let Some(p) = parent {
            layers.extend(p.layers.iter().cloned());
        }
        let image = Image {
            id: id.clone(),
            name: name.to_string(),
            tags,
            parent: parent.map(|p| p.id.clone()),
            base: base.to_path_buf(),
            created: unix_now(),
            layers,
            provenance: Some(provenance.clone()),
        };
        let meta = serde_json::to_string_pretty(&image)?;
        let tmp = dir.join("image.json.tmp");
        std::fs::write(&tmp, meta)?;
        std::fs::rename(&tmp, dir.join("image.json"))?;
        Ok(image)
    }

    /// Deletes an image; refused while another image builds on it.
    pub fn remove(&self, reference: &str) -> anyhow::Result<Image> {
        let image = self.find(reference)?;
        let children: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|i| i.id != image.id && i.layers.contains(&image.id))
            .map(|i| format!("{} ({})", i.id, i.name))
            .collect();
        if !children.is_empty() {
            bail!(
                "image {} is the parent of {}: remove those first",
                image.id,
                children.join(", ")
            );
        }
        std::fs::remove_dir_all(self.root.join(&image.id))
            .with_context(|| format!("removing image {}", image.id))?;
        Ok(image)
    }
}

/// sha256 of the layer as a normalised tar stream (sorted names, numeric owners, xattrs for
/// overlay whiteouts), first 12 hex digits.
async fn content_id(dir: &Path) -> anyhow::Result<String> {
    let mut child = Command::new("tar")
        .args([
            "--sort=name",
            "--numeric-owner",
            "--xattrs",
            "--mtime=@0",
            "-C",
        ])
        .arg(dir)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running tar to hash the image layer")?;
    let mut stdout = child.stdout.take().context("tar's output")?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = stdout.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "hashing the image layer failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(digest[..12].to_string())
}
