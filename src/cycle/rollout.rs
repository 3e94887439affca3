//! The rollout: bring new instances up and into the balancer before any old one leaves it,
//! drain old ones before destroying them, never drop below `min_healthy_percent` of the
//! desired count in service, and roll back when new instances do not become healthy.
//!
//! It starts by reconciling the fleet's records with the balancer, so a run interrupted at
//! any point converges when run again: a recorded instance the balancer does not know is
//! registered (if it runs the target image and is healthy) or destroyed; a balancer server
//! with no record is drained and removed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::fleet::{http_status, FleetStore, Member};
use super::haproxy::HaProxy;
use super::spec::CycleSpec;
use crate::bake::images::{Image, ImageStore};

pub struct Rollout<'a> {
    pub spec: &'a CycleSpec,
    pub home: PathBuf,
    pub store: ImageStore,
    pub fleet: FleetStore,
    pub balancer: HaProxy,
    pub health_timeout: Duration,
    pub drain_timeout: Duration,
    pub say: &'a (dyn Fn(&str) + Sync),
}

/// What a rollout did, for people and for CI (`--summary`).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub fleet: String,
    pub image: String,
    pub launched: Vec<String>,
    pub retired: Vec<String>,
    pub rolled_back: bool,
    pub ok: bool,
    pub error: Option<String>,
}

impl Rollout<'_> {
    /// Consecutive good answers to the health check, within the timeout.
    async fn wait_healthy(&self, member: &Member) -> anyhow::Result<()> {
        let check = &self.spec.health.http;
        let deadline = Instant::now() + self.health_timeout;
        let mut streak = 0;
        loop {
            match http_status(&member.address, check.port, &check.path).await {
                Some(status) if status == check.expect => streak += 1,
                _ => streak = 0,
            }
            if streak >= self.spec.health.healthy_threshold {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} ({}) did not answer GET {} with {} within {}s",
                    member.id,
                    member.address,
                    check.path,
                    check.expect,
                    self.health_timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn register(&self, member: &Member) -> anyhow::Result<()> {
        self.balancer
            .add(&member.id, &member.address, self.spec.health.http.port)
            .await?;
        self.balancer.wait_up(&member.id, self.health_timeout).await
    }

    /// Launches `count` instances of `image`, each healthy and in service; on failure the
    /// ones it launched are removed again.
    async fn bring_up(
        &self,
        image: &Image,
        count: usize,
        summary: &mut Summary,
    ) -> anyhow::Result<Vec<Member>> {
        let mut launched = Vec::new();
        for _ in 0..count {
            let member = self.fleet.launch(&self.home, &self.store, image).await?;
            (self.say)(&format!(
                "launched {} at {} from {}",
                member.id, member.address, member.image
            ));
            launched.push(member);
        }
        let mut failure = None;
        for member in &launched {
            let ready = async {
                self.wait_healthy(member).await?;
                self.register(member).await
            };
            if let Err(e) = ready.await {
                failure = Some(e);
                break;
            }
            (self.say)(&format!("{} is healthy and in service", member.id));
        }
        if let Some(e) = failure {
            (self.say)(&format!(
                "new instances are not healthy: {e:#}; removing them"
            ));
            for member in &launched {
                self.balancer.remove(&member.id, Duration::ZERO).await?;
                self.fleet.destroy(member).await?;
            }
            return Err(e);
        }
        summary
            .launched
            .extend(launched.iter().map(|m| m.id.clone()));
        Ok(launched)
    }

    async fn retire(&self, member: &Member, summary: &mut Summary) -> anyhow::Result<()> {
        (self.say)(&format!("draining {} ({})", member.id, member.image));
        self.balancer.remove(&member.id, self.drain_timeout).await?;
        self.fleet.destroy(member).await?;
        summary.retired.push(member.id.clone());
        Ok(())
    }

    /// Makes the fleet's records and the balancer agree; returns the members in service.
    async fn reconcile(&self, target: &Image) -> anyhow::Result<Vec<Member>> {
        let members = self.fleet.members()?;
        let servers = self.balancer.servers().await?;
        for server in &servers {
            if !members.iter().any(|m| m.id == server.name) {
                (self.say)(&format!(
                    "removing {} from the balancer: no such instance",
                    server.name
                ));
                self.balancer.remove(&server.name, Duration::ZERO).await?;
            }
        }
        let mut in_service = Vec::new();
        for member in members {
            let registered = servers.iter().any(|s| {
                s.name == member.id
                    && !s.status.starts_with("MAINT")
                    && !s.status.starts_with("DRAIN")
            });
            if registered {
                in_service.push(member);
                continue;
            }
            let healthy = member.image == target.artifact_id()
                && http_status(
                    &member.address,
                    self.spec.health.http.port,
                    &self.spec.health.http.path,
                )
                .await
                    == Some(self.spec.health.http.expect);
            if healthy && self.register(&member).await.is_ok() {
                (self.say)(&format!(
                    "{} (left by an earlier run) is healthy: in service",
                    member.id
                ));
                in_service.push(member);
            } else {
                (self.say)(&format!(
                    "{} was left by an earlier run out of service: destroying it",
                    member.id
                ));
                self.balancer.remove(&member.id, Duration::ZERO).await?;
                self.fleet.destroy(&member).await?;
            }
        }
        Ok(in_service)
    }

    /// Rolls the fleet to `target`.
    pub async fn run(&self, target: &Image, summary: &mut Summary) -> anyhow::Result<()> {
        let desired = self.spec.fleet.count;
        let batch = self.spec.strategy.batch;
        let min_in_service = (desired * self.spec.strategy.min_healthy_percent).div_ceil(100);
        let members = self.reconcile(target).await?;
        let (mut new, mut old): (Vec<Member>, Vec<Member>) = members
            .into_iter()
            .partition(|m| m.image == target.artifact_id());
        let previous = old.first().map(|m| m.image.clone());
        (self.say)(&format!(
            "fleet {}: {} on {}, {} on older images; want {desired}",
            self.spec.name,
            new.len(),
            target.artifact_id(),
            old.len()
        ));
        let blue_green = self.spec.strategy.kind == "blue-green";
        while new.len() < desired || !old.is_empty() {
            if new.len() < desired {
                let count = if blue_green {
                    desired - new.len()
                } else {
                    batch.min(desired - new.len())
                };
                match self.bring_up(target, count, summary).await {
                    Ok(up) => new.extend(up),
                    Err(e) => {
                        summary.rolled_back = true;
                        // New instances from earlier batches are rolled back to the old image.
                        if !summary.launched.is_empty() {
                            if let Some(previous) = &previous {
                                (self.say)(&format!("rolling back to {previous}"));
                                let image = self.store.find(previous)?;
                                Box::pin(self.run(&image, &mut Summary::default())).await?;
                            }
                        }
                        return Err(e);
                    }
                }
            }
            // Retire old instances while enough stay in service.
            let mut retired_now = 0;
            while !old.is_empty()
                && (blue_green || retired_now < batch || new.len() >= desired)
                && new.len() + old.len() > min_in_service.max(new.len())
            {
                let member = old.remove(0);
                self.retire(&member, summary).await?;
                retired_now += 1;
            }
            if new.len() >= desired && !old.is_empty() && new.len() + old.len() <= min_in_service {
                bail!("cannot retire old instances without going below min_healthy_percent");
            }
        }
        // Scale down when there are more than wanted.
        while new.len() > desired {
            let member = new.remove(0);
            self.retire(&member, summary).await?;
        }
        self.fleet.record_converged(&target.artifact_id())?;
        Ok(())
    }
}
