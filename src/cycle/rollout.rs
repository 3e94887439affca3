//! The rollout: bring new instances up and into the balancer before any old one leaves it,
//! drain old ones before destroying them, never drop below `min_healthy_percent` of the
//! desired count in service, and roll back when new instances do not become healthy.
//!
//! It starts by reconciling the fleet's instances with the balancer, so a run interrupted at
//! any point converges when run again: an instance the balancer does not know is registered
//! (if it runs the target image and is healthy) or destroyed; a balancer server that is no
//! instance of the fleet is drained and removed. Every action is logged in order in the
//! summary's `events`.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::fleet::{http_status, FleetStore, Member};
use super::spec::{CycleSpec, StrategyKind};
use super::{Balancer, Fleet};

pub struct Rollout<'a> {
    pub spec: &'a CycleSpec,
    pub fleet: &'a dyn Fleet,
    pub balancer: &'a dyn Balancer,
    /// Where the fleet's image history is kept (for `--rollback`).
    pub history: &'a FleetStore,
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
    /// Every action in order: `launch i-1`, `in-service i-1`, `drain i-0`, `destroy i-0`, …
    pub events: Vec<String>,
}

impl Summary {
    fn event(&mut self, what: &str, id: &str) {
        self.events.push(format!("{what} {id}"));
    }
}

impl Rollout<'_> {
    /// Consecutive good answers to kiln's own health check, within the timeout.
    async fn wait_healthy(&self, member: &Member) -> anyhow::Result<()> {
        if !self.fleet.checks_directly() {
            return Ok(());
        }
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

    async fn register(&self, member: &Member, summary: &mut Summary) -> anyhow::Result<()> {
        summary.event("register", &member.id);
        self.balancer
            .add(member, self.spec.health.http.port)
            .await?;
        self.balancer
            .wait_up(&member.id, self.health_timeout)
            .await?;
        summary.event("in-service", &member.id);
        Ok(())
    }

    /// Launches `count` instances of `image`, each healthy and in service; on failure the
    /// ones it launched are removed again.
    async fn bring_up(
        &self,
        image: &str,
        count: usize,
        summary: &mut Summary,
    ) -> anyhow::Result<Vec<Member>> {
        let mut launched = Vec::new();
        for _ in 0..count {
            let member = self.fleet.launch(image).await?;
            summary.event("launch", &member.id);
            (self.say)(&format!(
                "launched {} at {} from {}",
                member.id, member.address, member.image
            ));
            launched.push(member);
        }
        let mut failure = None;
        for member in &launched {
            if let Err(e) = self.wait_healthy(member).await {
                failure = Some(e);
                break;
            }
            if let Err(e) = self.register(member, summary).await {
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
                summary.event("destroy", &member.id);
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
        summary.event("drain", &member.id);
        self.balancer.remove(&member.id, self.drain_timeout).await?;
        summary.event("removed", &member.id);
        self.fleet.destroy(member).await?;
        summary.event("destroy", &member.id);
        summary.retired.push(member.id.clone());
        Ok(())
    }

    /// Makes the fleet and the balancer agree; returns the members in service.
    async fn reconcile(&self, target: &str, summary: &mut Summary) -> anyhow::Result<Vec<Member>> {
        let members = self.fleet.members().await?;
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
            let healthy = member.image == target
                && (!self.fleet.checks_directly()
                    || http_status(
                        &member.address,
                        self.spec.health.http.port,
                        &self.spec.health.http.path,
                    )
                    .await
                        == Some(self.spec.health.http.expect));
            if healthy && self.register(&member, summary).await.is_ok() {
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
                summary.event("destroy", &member.id);
            }
        }
        Ok(in_service)
    }

    /// Rolls the fleet to `target` (an artifact id).
    pub async fn run(&self, target: &str, summary: &mut Summary) -> anyhow::Result<()> {
        let desired = self.spec.platform.count();
        let batch = self.spec.strategy.batch;
        let min_in_service = (desired * self.spec.strategy.min_healthy_percent).div_ceil(100);
        let members = self.reconcile(target, summary).await?;
        let (mut new, mut old): (Vec<Member>, Vec<Member>) =
            members.into_iter().partition(|m| m.image == target);
        let previous = old.first().map(|m| m.image.clone());
        (self.say)(&format!(
            "fleet {}: {} on {target}, {} on older images; want {desired}",
            self.spec.name,
            new.len(),
            old.len()
        ));
        let blue_green = self.spec.strategy.kind == StrategyKind::BlueGreen;
        while new.len() < desired || !old.is_empty() {
            if new.len() < desired {
                let count = if blue_green {
                    desired - new.len()
                } else {
                    batch.min(desired - new.len())
                };
                let launched_before = summary.launched.len();
                match self.bring_up(target, count, summary).await {
                    Ok(up) => new.extend(up),
                    Err(e) => {
                        summary.rolled_back = true;
                        // New instances from earlier batches go back to the old image.
                        if launched_before > 0 {
                            if let Some(previous) = &previous {
                                (self.say)(&format!("rolling back to {previous}"));
                                Box::pin(self.run(previous, summary)).await?;
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
        }
        // Scale down when there are more than wanted.
        while new.len() > desired {
            let member = new.remove(0);
            self.retire(&member, summary).await?;
        }
        self.history.record_converged(target)?;
        Ok(())
    }
}
