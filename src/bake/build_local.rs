//! The `local` builder: a systemd-nspawn build instance booted from the Debian base (or a
//! parent image's layers) in its own network namespace, provisioned over SSH, and stored as
//! one overlay layer in the local image store.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use super::build::{render, render_tags, Builder, Job};
use super::cleanup::CleanupStack;
use super::images::{Image, ImageStore};
use super::local::{self, Instance};
use super::provision::{provision_all, BuildHost};
use super::proxy::Proxy;
use super::spec::LocalSource;
use crate::output::progress::{line, step as say};

/// The port of the apt proxy on the host's end of a build instance's veth.
const PROXY_PORT: u16 = 3142;

/// Files a build places in the instance and removes before the image is stored.
const BUILD_FILES: &[&str] = &[
    "etc/kiln-build",
    "etc/ssh/sshd_config.d/00-kiln-build.conf",
    "etc/apt/apt.conf.d/00kiln-build",
    "etc/apt/sources.list.d/kiln-build.list",
];

/// A local build, prepared: the image's name and tags rendered, its parent and base found.
pub struct LocalBuilder<'a> {
    job: &'a Job,
    source: &'a LocalSource,
    home: PathBuf,
    store: ImageStore,
    image_name: String,
    tags: BTreeMap<String, String>,
    parent: Option<Image>,
    base: PathBuf,
    lower: Vec<PathBuf>,
}

impl<'a> LocalBuilder<'a> {
    /// Checks the image name is free (unless forced) and makes sure the base exists.
    pub async fn prepare(job: &'a Job, source: &'a LocalSource) -> anyhow::Result<Self> {
        let spec = &job.spec;
        let home = local::home();
        let store = ImageStore::open(&home);
        let image_name = render(
            source
                .image_name
                .as_deref()
                .unwrap_or("{{ name }}-{{ timestamp }}"),
            &spec.name,
        )?;
        let mut tags = render_tags(&source.tags, &spec.name)?;
        tags.insert("kiln:run-id".into(), job.run_id.clone());
        if let Ok(existing) = store.find(&image_name) {
            if existing.name == image_name && !job.options.force {
                bail!(
                    "a local image named '{image_name}' exists ({}); use --force to replace it",
                    existing.artifact_id()
                );
            }
        }
        let parent = match &source.source_image {
            Some(reference) => Some(store.find(reference)?),
            None => None,
        };
        let name = spec.name.clone();
        let base = match &parent {
            Some(p) => p.base.clone(),
            None => local::ensure_base(&home, |m| say(&name, m)).await?,
        };
        let lower = match &parent {
            Some(p) => store.lower_dirs(p),
            None => vec![base.clone()],
        };
        Ok(Self {
            job,
            source,
            home,
            store,
            image_name,
            tags,
            parent,
            base,
            lower,
        })
    }
}

impl Builder for LocalBuilder<'_> {
    /// The build's upper layer, cleaned of the build's own files.
    type Built = PathBuf;
    type Kept = Image;

    async fn build(&self, cleanup: &mut CleanupStack) -> anyhow::Result<PathBuf> {
        build(self.job, self.source, &self.home, &self.lower, cleanup).await
    }

    async fn keep(&self, upper: PathBuf) -> anyhow::Result<Image> {
        self.store
            .commit(
                &upper,
                &self.image_name,
                self.tags.clone(),
                self.parent.as_ref(),
                &self.base,
                &self.job.provenance,
            )
            .await
    }

    fn report(&self, image: Image) -> anyhow::Result<()> {
        let name = &self.job.spec.name;
        self.job
            .record("local", &image.artifact_id(), image.tags.clone())?;
        line(
            name,
            &format!("image {} stored as {}", image.name, image.artifact_id()),
        );
        line(
            name,
            &format!(
                "build finished after {:.1}s\n==> Builds finished. The artifacts of successful builds are:\n--> {}: {}",
                self.job.started.elapsed().as_secs_f64(),
                name,
                image.artifact_id()
            ),
        );
        Ok(())
    }

    fn kept_on_abort(&self) -> String {
        format!(
            "the build instance is left running (its files: {}); run `kiln sweep --yes` to remove it",
            self.home.join("builds").join(&self.job.run_id).display()
        )
    }

    const ABORT_KEEPS_AFTER_SIGNAL: bool = true;
}

/// Launches, provisions and shuts down the build instance; returns its upper layer, cleaned
/// of the build's own files.
async fn build(
    job: &Job,
    source: &LocalSource,
    home: &Path,
    lower: &[PathBuf],
    cleanup: &mut CleanupStack,
) -> anyhow::Result<PathBuf> {
    let name = &job.spec.name;
    let dir = home.join("builds").join(&job.run_id);
    std::fs::create_dir_all(dir.join("upper"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let removed = dir.clone();
    cleanup.push(format!("remove {}", dir.display()), async move {
        match tokio::fs::remove_dir_all(&removed).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    });
    let key = generate_key(&dir).await?;
    let net = local::allocate_network().await?;
    std::fs::write(dir.join("netns"), &net.netns)?;
    write_build_files(&dir.join("upper"), &key, &net.host, &source.apt_sources)?;
    let netns = net.netns.clone();
    cleanup.push(
        format!("tear down instance {netns}"),
        local::teardown(netns),
    );
    say(
        name,
        &format!("launching build instance {} at {}", net.netns, net.instance),
    );
    let mut instance = Instance::boot(home, &dir, &net, lower).await?;
    let proxy = start_proxy(&mut instance).await?;
    say(name, "waiting for SSH");
    instance
        .wait_for_ssh(Duration::from_secs(source.ssh_timeout.unwrap_or(120)))
        .await?;
    let host = BuildHost {
        address: net.instance.to_string(),
        port: 22,
        user: "root".into(),
        private_key: key,
    };
    provision_all(job, &host).await?;
    drop(proxy);
    say(name, "shutting the instance down");
    instance.shutdown(Duration::from_secs(60)).await?;
    let upper = dir.join("upper");
    remove_build_files(&upper);
    Ok(upper)
}

/// A fresh ed25519 key pair for reaching an instance (`dir/id_ed25519`, `.pub` beside it).
pub(crate) async fn generate_key(dir: &Path) -> anyhow::Result<PathBuf> {
    let key = dir.join("id_ed25519");
    let status = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-build", "-f"])
        .arg(&key)
        .status()
        .await
        .context("running ssh-keygen (package openssh-client)")?;
    if !status.success() {
        bail!("ssh-keygen failed");
    }
    Ok(key)
}

/// Starts the apt proxy on the host's end of a booting instance's veth.
pub(crate) async fn start_proxy(instance: &mut Instance) -> anyhow::Result<Proxy> {
    let host = instance.net.host;
    // The proxy binds the host's end of the veth once the instance's script made it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match Proxy::start(SocketAddr::from((host, PROXY_PORT))).await {
            Ok(p) => return Ok(p),
            Err(e) if std::time::Instant::now() > deadline => {
                bail!("could not start the apt proxy on {host}: {e}")
            }
            Err(_) => {
                instance.check_alive()?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Files placed in an instance's upper layer before it boots: the key kiln logs in with,
/// sshd's settings for it, and apt's proxy (plus extra apt sources).
pub(crate) fn write_build_files(
    upper: &Path,
    key: &Path,
    host: &std::net::Ipv4Addr,
    apt_sources: &[String],
) -> anyhow::Result<()> {
    let write = |path: &str, text: &str| -> anyhow::Result<()> {
        let full = upper.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))
    };
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    write("etc/kiln-build/authorized_keys", &public)?;
    // sshd takes the first value it reads; drop-ins are read before the main file.
    write(
        "etc/ssh/sshd_config.d/00-kiln-build.conf",
        "AuthorizedKeysFile /etc/kiln-build/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nMaxSessions 64\n",
    )?;
    write(
        "etc/apt/apt.conf.d/00kiln-build",
        &format!(
            "Acquire::http::Proxy \"http://{host}:{PROXY_PORT}\";\nAcquire::https::Proxy \"http://{host}:{PROXY_PORT}\";\nAcquire::http::Pipeline-Depth \"0\";\n"
        ),
    )?;
    if !apt_sources.is_empty() {
        write(
            "etc/apt/sources.list.d/kiln-build.list",
            &(apt_sources.join("\n") + "\n"),
        )?;
    }
    Ok(())
}

/// Drops the build's own files, per-instance identity (host keys, machine id) and apt's
/// downloaded packages from the layer.
fn remove_build_files(upper: &Path) {
    for path in BUILD_FILES {
        let full = upper.join(path);
        let _ = std::fs::remove_dir_all(&full).or_else(|_| std::fs::remove_file(&full));
    }
    for dir in ["etc/ssh", "var/cache/apt/archives"] {
        for entry in std::fs::read_dir(upper.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with("ssh_host_") || file.ends_with(".deb") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = std::fs::remove_file(upper.join("etc/machine-id"));
}
