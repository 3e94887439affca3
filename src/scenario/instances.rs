//! A scenario's instances: local systemd-nspawn instances (see `bake::local`) recorded under
//! `$KILN_HOME/tests/<scenario key>/<platform>/` — the network namespace's name is written
//! there *before* the instance boots, so whatever a killed kiln left is found and removed by
//! the next `kiln test` of that scenario or by `kiln sweep`. Platform images map to local
//! images: Debian 12 names to the base, `local:<id>` or a baked image's name to that image.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use minijinja::Value;

use super::spec::{is_debian12, Platform};
use crate::bake::build_local::{generate_key, start_proxy, write_build_files};
use crate::bake::images::ImageStore;
use crate::bake::local::{self, Instance};
use crate::bake::proxy::Proxy;
use crate::value::VarMap;

/// How long an instance may take to answer on SSH.
const SSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Where every scenario's instances are recorded.
pub fn tests_root(home: &Path) -> PathBuf {
    home.join("tests")
}

/// One platform's instance, booted and reachable.
pub struct Launched {
    pub platform: Platform,
    pub address: Ipv4Addr,
    pub netns: String,
    pub key: PathBuf,
    instance: Instance,
    _proxy: Proxy,
}

impl Launched {
    /// The inventory variables kiln reaches the instance with.
    pub fn connection_vars(&self) -> VarMap {
        let mut vars = VarMap::new();
        vars.insert("ansible_host".into(), Value::from(self.address.to_string()));
        vars.insert("ansible_port".into(), Value::from(22));
        vars.insert("ansible_user".into(), Value::from("root"));
        vars.insert(
            "ansible_ssh_private_key_file".into(),
            Value::from(self.key.display().to_string()),
        );
        vars
    }

    pub async fn wait_for_ssh(&mut self) -> anyhow::Result<()> {
        self.instance
            .wait_for_ssh(SSH_TIMEOUT)
            .await
            .with_context(|| format!("platform {}", self.platform.name))
    }
}

/// The local image a platform boots: the overlay's lower directories and a description.
pub fn resolve_image(
    platform: &Platform,
    mappings: &[(String, String)],
    store: &ImageStore,
    base: &Path,
) -> anyhow::Result<(Vec<PathBuf>, String)> {
    let wanted = mappings
        .iter()
        .find(|(from, _)| *from == platform.image)
        .map(|(_, to)| to.as_str())
        .unwrap_or(platform.image.as_str());
    if is_debian12(wanted) {
        return Ok((vec![base.to_path_buf()], "Debian 12 base".into()));
    }
    if let Ok(image) = store.find(wanted) {
        let description = format!("{} ({})", image.name, image.artifact_id());
        return Ok((store.lower_dirs(&image), description));
    }
    bail!(
        "platform '{}': image '{}' has no local equivalent. kiln test boots Debian 12 (debian:12, debian:bookworm, geerlingguy/docker-debian12-ansible, …) and the images `kiln bake` made (see `kiln images`); map this one with --image '{}=IMAGE' (IMAGE: debian:12, local:<id> or a local image's name)",
        platform.name,
        platform.image,
        platform.image
    )
}

/// The instances of one scenario of one role.
pub struct InstanceSet {
    pub dir: PathBuf,
    home: PathBuf,
}

impl InstanceSet {
    /// The scenario's own directory: the role's directory name, the scenario's, and a digest
    /// of the role's path (two checkouts of one role never share instances).
    pub fn for_scenario(home: &Path, role_dir: &Path, role_name: &str, scenario: &str) -> Self {
        let digest = crate::util::sha1_hex(role_dir.to_string_lossy().as_bytes());
        let key = format!("{role_name}-{scenario}-{}", &digest[..8]);
        InstanceSet {
            dir: tests_root(home).join(key),
            home: home.to_path_buf(),
        }
    }

    /// Boots a platform's instance over `lower`; returns once it is starting. Its network
    /// namespace is recorded before it exists.
    pub async fn launch(&self, platform: &Platform, lower: &[PathBuf]) -> anyhow::Result<Launched> {
        let dir = self.dir.join("instances").join(&platform.name);
        if dir.exists() {
            remove_instance(&dir).await?;
        }
        std::fs::create_dir_all(dir.join("upper"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let key = generate_key(&dir).await?;
        let net = local::allocate_network().await?;
        std::fs::write(dir.join("netns"), &net.netns)?;
        write_build_files(&dir.join("upper"), &key, &net.host, &[])?;
        let mut instance = Instance::boot(&self.home, &dir, &net, lower).await?;
        let proxy = start_proxy(&mut instance).await?;
        Ok(Launched {
            platform: platform.clone(),
            address: net.instance,
            netns: net.netns,
            key,
            instance,
            _proxy: proxy,
        })
    }

    /// The network namespaces of the instances recorded now.
    pub fn recorded(&self) -> Vec<String> {
        instance_dirs(&self.dir)
            .iter()
            .filter_map(|d| recorded_netns(d))
            .collect()
    }

    /// Removes every instance recorded for the scenario (running or not) and its records;
    /// returns the names of the instances removed.
    pub async fn destroy_all(&self) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for dir in instance_dirs(&self.dir) {
            if let Some(netns) = remove_instance(&dir).await? {
                removed.push(netns);
            }
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", self.dir.display()))?
            }
            _ => Ok(removed),
        }
    }
}

/// Every recorded instance directory of a scenario's directory.
pub fn instance_dirs(scenario_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(scenario_dir.join("instances"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

fn recorded_netns(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("netns")).ok()?;
    let name = text.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Stops an instance (its processes, cgroups and network namespace) and removes its
/// directory; returns its namespace's name when one was recorded.
pub async fn remove_instance(dir: &Path) -> anyhow::Result<Option<String>> {
    let netns = recorded_netns(dir);
    if let Some(name) = &netns {
        local::teardown(name.clone()).await?;
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(netns),
    }
}
