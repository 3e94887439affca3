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

use serde::Serialize;

use super::fleet::{http_status, FleetStore, Member};
use super::spec::{CycleSpec, StrategyKind};
use super::{Balancer, CycleError, Fleet};

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
    async fn wait_healthy(&self, member: &Member) -> Result<(), CycleError> {
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
                return Err(CycleError::Unhealthy(format!(
                    "{} ({}) did not answer GET {} with {} within {}s",
                    member.id,
                    member.address,
                    check.path,
                    check.expect,
                    self.health_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn register(&self, member: &Member, summary: &mut Summary) -> Result<(), CycleError> {
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
    ) -> Result<Vec<Member>, CycleError> {
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
            (self.say)(&match &e {
                CycleError::Unhealthy(why) => {
                    format!("new instances are not healthy: {why}; removing them")
                }
                CycleError::Call(e) => format!("{e:#}; removing the new instances"),
            });
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
            let registered = servers
                .iter()
                .any(|s| s.name == member.id && s.state.in_service());
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
    pub async fn run(&self, target: &str, summary: &mut Summary) -> Result<(), CycleError> {
        // Auto Scaling groups are rolled by `asg_rollout`, never here.
        let desired = self.spec.platform.count().unwrap_or(0);
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
                    Err(e @ CycleError::Call(_)) => return Err(e),
                    Err(e @ CycleError::Unhealthy(_)) => {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cycle::haproxy::{ServerStat, ServerState};
    use crate::cycle::spec::{HaproxyBalancer, Health, LocalFleet, Platform, Strategy};

    /// A fleet in memory: instances exist from launch to destroy.
    #[derive(Default)]
    struct Instances(Mutex<Vec<Member>>);

    #[async_trait::async_trait]
    impl Fleet for Instances {
        async fn members(&self) -> anyhow::Result<Vec<Member>> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn launch(&self, image: &str) -> anyhow::Result<Member> {
            let mut members = self.0.lock().unwrap();
            let member = Member {
                id: format!("i-{}", members.len()),
                address: "192.0.2.1".into(),
                image: image.into(),
                created: 0,
            };
            members.push(member.clone());
            Ok(member)
        }
        async fn destroy(&self, member: &Member) -> anyhow::Result<()> {
            self.0.lock().unwrap().retain(|m| m.id != member.id);
            Ok(())
        }
        fn checks_directly(&self) -> bool {
            false
        }
    }

    /// A balancer in memory whose registration call fails, or whose health checks never
    /// pass for new servers.
    struct Registry {
        servers: Mutex<Vec<String>>,
        register_fails: bool,
    }

    #[async_trait::async_trait]
    impl Balancer for Registry {
        async fn servers(&self) -> anyhow::Result<Vec<ServerStat>> {
            let servers = self.servers.lock().unwrap();
            Ok(servers
                .iter()
                .map(|name| ServerStat {
                    name: name.clone(),
                    state: ServerState::Up,
                    status: "UP".into(),
                    sessions: 0,
                })
                .collect())
        }
        async fn add(&self, member: &Member, _port: u16) -> anyhow::Result<()> {
            if self.register_fails {
                anyhow::bail!("RegisterTargets: service unavailable");
            }
            self.servers.lock().unwrap().push(member.id.clone());
            Ok(())
        }
        async fn wait_up(&self, id: &str, _timeout: Duration) -> Result<(), CycleError> {
            Err(CycleError::Unhealthy(format!("{id} never became healthy")))
        }
        async fn remove(&self, id: &str, _drain: Duration) -> anyhow::Result<()> {
            self.servers.lock().unwrap().retain(|s| s != id);
            Ok(())
        }
    }

    /// Rolls a one-instance fleet on `old` to `new`; returns the error, the summary and
    /// what the fleet runs afterwards.
    async fn roll(register_fails: bool) -> (CycleError, Summary, Vec<String>) {
        let home = tempfile::tempdir().unwrap();
        let spec = CycleSpec {
            name: "web".into(),
            image: None,
            platform: Platform::Local {
                fleet: LocalFleet { count: 1 },
                balancer: HaproxyBalancer {
                    socket: None,
                    backend: "web".into(),
                    listen: "127.0.0.1:8080".into(),
                },
            },
            strategy: Strategy::default(),
            health: Health::default(),
            drain_timeout: "0s".into(),
        };
        let fleet = Instances::default();
        let old = fleet.launch("old").await.unwrap();
        let balancer = Registry {
            servers: Mutex::new(vec![old.id]),
            register_fails,
        };
        let history = FleetStore::open(home.path(), "web").unwrap();
        let rollout = Rollout {
            spec: &spec,
            fleet: &fleet,
            balancer: &balancer,
            history: &history,
            health_timeout: Duration::ZERO,
            drain_timeout: Duration::ZERO,
            say: &|_: &str| {},
        };
        let mut summary = Summary::default();
        let error = rollout.run("new", &mut summary).await.unwrap_err();
        let images = fleet.members().await.unwrap();
        (
            error,
            summary,
            images.into_iter().map(|m| m.image).collect(),
        )
    }

    #[tokio::test]
    async fn unhealthy_new_instances_roll_back() {
        let (error, summary, images) = roll(false).await;
        assert!(matches!(error, CycleError::Unhealthy(_)), "{error:?}");
        assert!(summary.rolled_back);
        assert_eq!(images, ["old"]);
    }

    #[tokio::test]
    async fn a_failed_call_stops_without_calling_it_a_rollback() {
        let (error, summary, images) = roll(true).await;
        assert!(matches!(error, CycleError::Call(_)), "{error:?}");
        assert!(error.to_string().contains("RegisterTargets"), "{error}");
        assert!(!summary.rolled_back);
        assert_eq!(images, ["old"], "the new instance is removed either way");
    }
}
