//! An ELBv2 target group as the balancer: register, wait until the target group calls the
//! target healthy, deregister (the target group drains it for its deregistration delay),
//! wait until deregistered.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};
use aws_sdk_elasticloadbalancingv2::Client;

use super::fleet::Member;
use super::haproxy::{ServerStat, ServerState};
use super::CycleError;

pub struct TargetGroup {
    pub elb: Client,
    pub arn: String,
    /// The port targets are registered on (else the health check's port).
    pub port: Option<u16>,
}

/// Each registered target of a target group and its health state, if the API gave one.
pub async fn describe_target_health(
    elb: &Client,
    target_group: &str,
) -> anyhow::Result<Vec<(String, Option<TargetHealthStateEnum>)>> {
    let out = elb
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .context("DescribeTargetHealth")?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let id = d.target()?.id()?.to_string();
            Some((id, d.target_health().and_then(|h| h.state()).cloned()))
        })
        .collect())
}

impl TargetGroup {
    /// The target group's own health state of `id` (None: not registered).
    async fn state(&self, id: &str) -> anyhow::Result<Option<TargetHealthStateEnum>> {
        Ok(self
            .health()
            .await?
            .into_iter()
            .find(|(target, _)| target == id)
            .map(|(_, state)| state))
    }

    /// Every registered target in use, with its health state as the SDK reports it.
    async fn health(&self) -> anyhow::Result<Vec<(String, TargetHealthStateEnum)>> {
        Ok(describe_target_health(&self.elb, &self.arn)
            .await?
            .into_iter()
            .map(|(id, state)| (id, state.unwrap_or(TargetHealthStateEnum::Unavailable)))
            // An unused target takes no traffic: kiln treats it as gone.
            .filter(|(_, state)| *state != TargetHealthStateEnum::Unused)
            .collect())
    }

    async fn servers(&self) -> anyhow::Result<Vec<ServerStat>> {
        Ok(self
            .health()
            .await?
            .into_iter()
            .map(|(name, state)| ServerStat {
                name,
                state: server_state(&state),
                status: status_text(&state).to_string(),
                sessions: 0,
            })
            .collect())
    }
}

/// A target's health as a balancer state.
fn server_state(state: &TargetHealthStateEnum) -> ServerState {
    match state {
        TargetHealthStateEnum::Healthy => ServerState::Up,
        TargetHealthStateEnum::Draining => ServerState::Draining,
        TargetHealthStateEnum::Unused => ServerState::Maintenance,
        _ => ServerState::NotUp,
    }
}

/// A target's health in HAProxy's words, so `kiln fleet status` reads the same for both.
fn status_text(state: &TargetHealthStateEnum) -> &'static str {
    match state {
        TargetHealthStateEnum::Healthy => "UP",
        TargetHealthStateEnum::Draining => "DRAIN",
        TargetHealthStateEnum::Unused => "MAINT",
        TargetHealthStateEnum::Initial => "DOWN (initial)",
        _ => "DOWN",
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

    async fn wait_up(&self, id: &str, timeout: Duration) -> Result<(), CycleError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.state(id).await? == Some(TargetHealthStateEnum::Healthy) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CycleError::Unhealthy(format!(
                    "the target group did not report {id} healthy within {}s",
                    timeout.as_secs()
                )));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_health_maps_to_balancer_states_and_haproxy_words() {
        for (health, state, text) in [
            (TargetHealthStateEnum::Healthy, ServerState::Up, "UP"),
            (
                TargetHealthStateEnum::Draining,
                ServerState::Draining,
                "DRAIN",
            ),
            (
                TargetHealthStateEnum::Unused,
                ServerState::Maintenance,
                "MAINT",
            ),
            (
                TargetHealthStateEnum::Initial,
                ServerState::NotUp,
                "DOWN (initial)",
            ),
            (TargetHealthStateEnum::Unhealthy, ServerState::NotUp, "DOWN"),
        ] {
            assert_eq!(server_state(&health), state, "{health:?}");
            assert_eq!(status_text(&health), text, "{health:?}");
        }
    }
}
