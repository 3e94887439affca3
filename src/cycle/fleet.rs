//! The local fleet: instances booted from local images, each a systemd-nspawn container in
//! its own network namespace (see `bake::local`), recorded under
//! `$KILN_HOME/fleets/<name>/instances/<id>/member.json` *before* it boots, so an
//! interrupted cycle's instances are known to the next run. Also the fleet's image history,
//! for `--rollback`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bake::images::{Image, ImageStore};
use crate::bake::local;
use crate::clock::epoch_seconds as now;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    /// Also its network namespace and its server name in the balancer.
    pub id: String,
    pub address: String,
    /// `local:<id>`.
    pub image: String,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct History {
    /// The image the fleet last converged to.
    pub image: Option<String>,
    /// The one before it (`kiln cycle --rollback` goes back to it).
    pub previous: Option<String>,
}

pub struct FleetStore {
    pub dir: PathBuf,
}

impl FleetStore {
    pub fn open(home: &Path, name: &str) -> anyhow::Result<FleetStore> {
        let dir = home.join("fleets").join(name);
        std::fs::create_dir_all(dir.join("instances"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(FleetStore { dir })
    }

    pub fn members(&self) -> anyhow::Result<Vec<Member>> {
        let mut members = Vec::new();
        for entry in std::fs::read_dir(self.dir.join("instances"))?.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path().join("member.json")) {
                members.push(serde_json::from_str(&text)?);
            }
        }
        members.sort_by(|a: &Member, b: &Member| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(members)
    }

    pub fn history(&self) -> History {
        std::fs::read_to_string(self.dir.join("fleet.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn record_converged(&self, image: &str) -> anyhow::Result<()> {
        let mut history = self.history();
        if history.image.as_deref() != Some(image) {
            history.previous = history.image.take();
            history.image = Some(image.to_string());
        }
        std::fs::write(
            self.dir.join("fleet.json"),
            serde_json::to_string_pretty(&history)?,
        )?;
        Ok(())
    }

    /// Boots a new instance of `image`; returns once its container is starting (health is
    /// the caller's to wait for). The instance outlives this process.
    pub async fn launch(
        &self,
        home: &Path,
        store: &ImageStore,
        image: &Image,
    ) -> anyhow::Result<Member> {
        let net = local::allocate_network().await?;
        let dir = self.dir.join("instances").join(&net.netns);
        std::fs::create_dir_all(&dir)?;
        let member = Member {
            id: net.netns.clone(),
            address: net.instance.to_string(),
            image: image.artifact_id(),
            created: now(),
        };
        std::fs::write(
            dir.join("member.json"),
            serde_json::to_string_pretty(&member)?,
        )?;
        let instance = local::Instance::boot(home, &dir, &net, &store.lower_dirs(image)).await?;
        drop(instance);
        Ok(member)
    }

    /// Stops an instance and forgets it.
    pub async fn destroy(&self, member: &Member) -> anyhow::Result<()> {
        local::teardown(member.id.clone()).await?;
        let dir = self.dir.join("instances").join(&member.id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", dir.display()))
            }
            _ => Ok(()),
        }
    }
}

/// A local fleet: `FleetStore`'s instances, booted from the local image store.
pub struct LocalFleet {
    pub store: FleetStore,
    pub images: ImageStore,
    pub home: PathBuf,
}

#[async_trait::async_trait]
impl super::Fleet for LocalFleet {
    async fn members(&self) -> anyhow::Result<Vec<Member>> {
        self.store.members()
    }
    async fn launch(&self, image: &str) -> anyhow::Result<Member> {
        let image = self.images.find(image)?;
        self.store.launch(&self.home, &self.images, &image).await
    }
    async fn destroy(&self, member: &Member) -> anyhow::Result<()> {
        self.store.destroy(member).await
    }
    fn checks_directly(&self) -> bool {
        true
    }
}

/// The HTTP status `GET path` gets from `address:port`, if any answer comes within 2 s.
pub async fn http_status(address: &str, port: u16, path: &str) -> Option<u16> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((address, port)).await.ok()?;
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: kiln-health\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .ok()?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await.ok()?;
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}
