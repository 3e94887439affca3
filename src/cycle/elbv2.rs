//! An ELBv2 target group as the balancer: register, wait until the target group calls the
//! target healthy, deregister (the target group drains it for its deregistration delay),
//! wait until deregistered.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
use aws_sdk_elasticloadbalancingv2::Client;

use super::fleet::Member;
use super::haproxy::ServerStat;

pub struct TargetGroup {
    pub elb: Client,
    pub arn: String,
    /// The port targets are registered on (else the health check's port).
    pub port: Option<u16>,
}

impl TargetGroup {
    async fn state(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .servers()
            .await?
            .into_iter()
            .find(|s| s.name == id)
            .map(|s| s.status))
    }

    async fn servers(&self) -> anyhow::Result<Vec<ServerStat>> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(&self.arn)
            .send()
            .await
            .context("DescribeTargetHealth")?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let id = d.target().and_then(|t| t.id())?.to_string();
                let state = d.target_health().and_then(|h| h.state());
                let status = match state {
                    Some(TargetHealthStateEnum::Healthy) => "UP",
                    Some(TargetHealthStateEnum::Draining) => "DRAIN",
                    Some(TargetHealthStateEnum::Unused) => "MAINT",
                    Some(TargetHealthStateEnum::Initial) => "DOWN (initial)",
                    _ => "DOWN",
                };
                Some(ServerStat {
                    name: id,
                    status: status.to_string(),
                    sessions: 0,
                })
            })
            .filter(|s| s.status != "MAINT")
            .collect())
    }
}

#[async_trait::async_trait]
impl super::Balancer for TargetGroup {
    async fn servers(&self) -> anyhow::Result<Vec<ServerStat>> {
        TargetGroup::servers(self).await
    }

    async fn add(&self, member: &Member, port: u16) -> anyhow::Result<()> {
        self.elb
            .register_targets()
            .target_group_arn(&self.arn)
            .targets(
                TargetDescription::builder()
                    .id(&member.id)
                    .port(self.port.unwrap_or(port) as i32)
                    .build(),
            )
            .send()
            .await
            .context("RegisterTargets")?;
        Ok(())
    }

    async fn wait_up(&self, id: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.state(id).await?.as_deref() == Some("UP") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the target group did not report {id} healthy within {}s",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn remove(&self, id: &str, drain: Duration) -> anyhow::Result<()> {
        if self.state(id).await?.is_none() {
            return Ok(());
        }
        self.elb
            .deregister_targets()
            .target_group_arn(&self.arn)
            .targets(TargetDescription::builder().id(id).build())
            .send()
            .await
            .context("DeregisterTargets")?;
        // The target group drains the target for its deregistration delay.
        let deadline = Instant::now() + drain + Duration::from_secs(300);
        while self.state(id).await?.is_some() {
            if Instant::now() > deadline {
                bail!("{id} is still registered after deregistration");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(())
    }
}
