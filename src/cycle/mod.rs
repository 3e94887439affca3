//! Rolling a fleet from one image to another behind a load balancer: the spec, HAProxy's
//! runtime API, the local fleet, and the rollout itself (`rollout.rs`), driven by
//! `cli/cycle.rs`.

#[cfg(feature = "aws")]
pub mod ec2;
#[cfg(feature = "aws")]
pub mod elbv2;
pub mod fleet;
pub mod haproxy;
pub mod rollout;
pub mod spec;

use std::time::Duration;

use async_trait::async_trait;

pub use fleet::Member;
pub use haproxy::ServerStat;

/// Why a rollout step failed. Only unhealthy new instances roll the fleet back; a failed
/// call leaves it where it is, since rolling back would make the same calls.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// New instances did not pass the health checks in time.
    #[error("{0}")]
    Unhealthy(String),
    /// A call to the fleet, the balancer or their APIs failed.
    #[error(transparent)]
    Call(#[from] anyhow::Error),
}

/// Where the fleet's instances are registered: HAProxy or an ELBv2 target group.
#[async_trait]
pub trait Balancer: Send + Sync {
    /// Every registered server, with its state (`UP`, `DOWN`, `DRAIN`, `MAINT`, …).
    async fn servers(&self) -> anyhow::Result<Vec<ServerStat>>;
    async fn add(&self, member: &Member, port: u16) -> anyhow::Result<()>;
    /// Waits until the balancer's own health checks put the server in service
    /// (`CycleError::Unhealthy` when they do not within `timeout`).
    async fn wait_up(&self, id: &str, timeout: Duration) -> Result<(), CycleError>;
    /// Drains a server (waiting up to `drain` for its sessions) and removes it.
    async fn remove(&self, id: &str, drain: Duration) -> anyhow::Result<()>;
}

/// Where the fleet's instances run: local containers or EC2 instances.
#[async_trait]
pub trait Fleet: Send + Sync {
    async fn members(&self) -> anyhow::Result<Vec<Member>>;
    /// Starts an instance of `image` (an artifact id); health is the caller's to wait for.
    async fn launch(&self, image: &str) -> anyhow::Result<Member>;
    async fn destroy(&self, member: &Member) -> anyhow::Result<()>;
    /// Whether kiln can reach instances for its own HTTP check (else the balancer decides).
    fn checks_directly(&self) -> bool;
}
