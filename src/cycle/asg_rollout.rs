//! Rolling an Auto Scaling group fleet to an image: a new launch template version (or the
//! newest one that already has the image), then either the group's instances replaced in
//! place (AWS's instance refresh, or kiln's own surge-and-terminate when the endpoint has no
//! instance refresh) or a new group beside the live one (blue/green) that takes over once all
//! of its instances are healthy in the target groups.
//!
//! AWS is the only record: every run starts from the groups and versions it finds, so a run
//! interrupted anywhere converges when run again (a refresh in progress is followed, a
//! surge's original capacity is kept in a group tag, a half-made new group is reused or
//! deleted). Every action is logged in order in the summary's `events`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_autoscaling::types::RefreshPreferences;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use super::asg::{Aws, Group, TemplateVersion, VersionRef};
use super::asg_refresh::{refresh_outcome, RefreshOutcome};
use super::rollout::Summary;
use super::spec::{duration, AsgFleet, RefreshMethod, StrategyKind};
use super::CycleError;

/// The group tag holding `desired,max` while kiln's own replacement has surged a group.
const SURGE_TAG: &str = "kiln:surge";

/// Where a cycle goes.
pub enum Goal {
    Image(String),
    /// The image of the newest launch template version before the live one that differs.
    Previous,
}

pub struct AsgRollout<'a> {
    pub aws: &'a Aws,
    pub fleet: &'a AsgFleet,
    pub strategy: StrategyKind,
    pub health_timeout: Duration,
    /// Consecutive polls an instance must be healthy on before it counts.
    pub healthy_threshold: usize,
    /// How often groups, targets and refreshes are polled.
    pub poll: Duration,
    pub say: &'a (dyn Fn(&str) + Sync),
}

/// The live group: the oldest one serving a target group (else the oldest).
pub fn live_group(groups: &[Group]) -> Option<&Group> {
    groups
        .iter()
        .find(|g| !g.target_groups.is_empty())
        .or_else(|| groups.first())
}

/// The version a group's reference resolves to.
pub fn resolve<'v>(
    versions: &'v [TemplateVersion],
    reference: &VersionRef,
) -> Option<&'v TemplateVersion> {
    match reference {
        VersionRef::Latest => versions.iter().max_by_key(|v| v.number),
        VersionRef::Default => versions.iter().find(|v| v.default),
        VersionRef::Number(n) => versions.iter().find(|v| v.number == *n),
    }
}

/// The image the fleet ran before `current`: the newest older version with another image.
pub fn previous_image(versions: &[TemplateVersion], current: &TemplateVersion) -> Option<String> {
    versions
        .iter()
        .rev()
        .filter(|v| v.number < current.number && v.image != current.image)
        .map(|v| v.image.clone())
        .next()
}

/// How many instances kiln's own replacement adds (and then retires) at once: what
/// `min_healthy_percent` allows to be out of service, at least one. Surging first keeps the
/// full capacity in service throughout.
pub fn batch_size(capacity: usize, min_healthy_percent: u8) -> usize {
    let keep = (capacity * usize::from(min_healthy_percent)).div_ceil(100);
    capacity.saturating_sub(keep).max(1)
}

/// A group name as Terraform's `name_prefix` makes one: the prefix, a UTC timestamp with
/// sub-second digits, and a counter (26 characters after the prefix).
pub fn prefixed_name(prefix: &str, now: std::time::SystemTime) -> String {
    let stamp: String = crate::clock::iso8601(now)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let fraction = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_micros() / 100)
        .unwrap_or(0);
    format!("{prefix}{stamp}{fraction:04}00000001")
}

pub(super) fn call(e: anyhow::Error) -> CycleError {
    CycleError::Call(e)
}

impl AsgRollout<'_> {
    pub(super) fn event(&self, summary: &mut Summary, event: String) {
        (self.say)(&event);
        summary.events.push(event);
    }

    pub async fn run(&self, goal: Goal, summary: &mut Summary) -> Result<(), CycleError> {
        let groups = self.aws.groups(&self.fleet.group).await?;
        let live = live_group(&groups).cloned().ok_or_else(|| {
            call(anyhow::anyhow!(
                "no Auto Scaling group named {}…",
                self.fleet.group
            ))
        })?;
        let versions = self.aws.versions(&live.template_id).await?;
        let current = resolve(&versions, &live.version).cloned().ok_or_else(|| {
            call(anyhow::anyhow!(
                "group {} uses launch template {} version {}, which does not exist",
                live.name,
                live.template_id,
                live.version.as_api()
            ))
        })?;
        let image = match goal {
            Goal::Image(image) => image,
            Goal::Previous => previous_image(&versions, &current).ok_or_else(|| {
                call(anyhow::anyhow!(
                    "launch template {} has no version with an earlier image to roll back to",
                    live.template_id
                ))
            })?,
        };
        summary.image = image.clone();
        (self.say)(&format!(
            "group {} runs {} (launch template {} version {}); rolling to {image}",
            live.name, current.image, live.template_id, current.number
        ));
        match self.strategy {
            StrategyKind::Rolling => {
                self.rolling(&live, &versions, &current, &image, summary)
                    .await
            }
            StrategyKind::BlueGreen => {
                self.blue_green(&groups, &live, &versions, &image, summary)
                    .await
            }
        }
    }

    /// The newest version with `image` when the group can point at it, else a new one.
    pub(super) async fn version_for(
        &self,
        live: &Group,
        versions: &[TemplateVersion],
        current: &TemplateVersion,
        image: &str,
        summary: &mut Summary,
    ) -> Result<i64, CycleError> {
        let newest = versions.iter().rev().find(|v| v.image == image);
        // `$Latest` can only name the newest version.
        let usable = newest.filter(|v| {
            live.version != VersionRef::Latest
                || Some(v.number) == versions.last().map(|l| l.number)
        });
        if let Some(version) = usable {
            self.event(summary, format!("version {} (existing)", version.number));
            return Ok(version.number);
        }
        let number = self
            .aws
            .create_version(&live.template_id, current, image)
            .await?;
        self.event(summary, format!("version {number}"));
        Ok(number)
    }

    /// Makes `number` the version the group launches, the way the group names it.
    async fn point_group(
        &self,
        live: &Group,
        number: i64,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        match live.version {
            VersionRef::Latest => {}
            VersionRef::Default => {
                self.aws
                    .set_default_version(&live.template_id, number)
                    .await?
            }
            VersionRef::Number(_) => {
                self.aws
                    .update_group(
                        &live.name,
                        Some((&live.template_id, &VersionRef::Number(number))),
                        None,
                    )
                    .await?
            }
        }
        self.event(summary, format!("use {} version {number}", live.name));
        Ok(())
    }

    async fn rolling(
        &self,
        live: &Group,
        versions: &[TemplateVersion],
        current: &TemplateVersion,
        image: &str,
        summary: &mut Summary,
    ) -> Result<(), CycleError> {
        let previous = if current.image == image {
            None
        } else {
            let number = self
                .version_for(live, versions, current, image, summary)
                .await?;
            self.point_group(live, number, summary).await?;
            Some(current.clone())
        };
        let outdated = self.outdated(live, image).await?;
        if outdated.is_empty() && live.tags.iter().all(|(k, _)| k != SURGE_TAG) {
            self.event(summary, format!("converged {}", live.name));
            return Ok(());
        }
        let result = match self.fleet.refresh.method {
            RefreshMethod::Kiln => self.kiln_replace(live, image, summary).await,
            method => match self.instance_refresh(live, summary).await {
                Err(None) if method == RefreshMethod::Auto => {
                    self.event(
                        summary,
                        "refresh-unsupported: kiln replaces the instances".into(),
                    );
                    self.kiln_replace(live, image, summary).await
                }
                Err(None) => Err(call(anyhow::anyhow!(
                    "the endpoint does not implement StartInstanceRefresh (use refresh.method kiln or auto)"
                ))),
                Err(Some(e)) => Err(e),
                Ok(()) => Ok(()),
            },
        };
        match result {
            Err(CycleError::Unhealthy(why)) => {
                summary.rolled_back = true;
                let back = match previous {
                    Some(previous) => previous,
                    None => {
                        // An interrupted run: the version before the current image's.
                        let image = previous_image(versions, current).unwrap_or_default();
                        match versions.iter().rev().find(|v| v.image == image) {
                            Some(v) => v.clone(),
                            None => return Err(CycleError::Unhealthy(why)),
                        }
                    }
                };
                self.roll_back(live, &back, summary).await?;
                Err(CycleError::Unhealthy(why))
            }
            other => other,
        }
    }

    /// Live instances of a group not running `image`.
    async fn outdated(&self, group: &Group, image: &str) -> Result<Vec<String>, CycleError> {
        let ids = group.live_instances();
        let images = self.aws.images(&ids).await?;
        Ok(ids
            .into_iter()
            .filter(|id| images.get(id).map(String::as_str) != Some(image))
            .collect())
    }

    /// AWS's instance refresh, followed to its end. `Err(None)`: not implemented here.
    async fn instance_refresh(
        &self,
        live: &Group,
        summary: &mut Summary,
    ) -> Result<(), Option<CycleError>> {
        let refresh = &self.fleet.refresh;
        let warmup = duration(&refresh.instance_warmup, "instance_warmup")
            .map_err(|e| Some(call(e.into())))?;
        let delay = match &refresh.checkpoint_delay {
            Some(d) => Some(duration(d, "checkpoint_delay").map_err(|e| Some(call(e.into())))?),
            None => None,
        };
        let id = match self.aws.running_refresh(&live.name).await {
            Ok(Some(id)) => {
                self.event(summary, format!("refresh {id} (already running)"));
                id
            }
            _ => {
                let preferences = RefreshPreferences::builder()
                    .min_healthy_percentage(i32::from(refresh.min_healthy_percent))
                    .instance_warmup(warmup.as_secs() as i32)
                    .set_checkpoint_percentages(
                        (!refresh.checkpoints.is_empty())
                            .then(|| refresh.checkpoints.iter().map(|p| i32::from(*p)).collect()),
                    )
                    .set_checkpoint_delay(delay.map(|d| d.as_secs() as i32))
                    .build();
                let id = self
                    .aws
                    .start_refresh(&live.name, preferences, None)
                    .await
                    .map_err(|e| e.map(call))?;
                self.event(summary, format!("refresh {id}"));
                id
            }
        };
        let deadline = Instant::now() + self.health_timeout.max(warmup) * 10;
        let mut last = None;
        loop {
            let state = self
                .aws
                .refresh_state(&live.name, &id)
                .await
                .map_err(|e| Some(call(e)))?;
            if last.as_ref() != Some(&state) {
                self.event(
                    summary,
                    format!(
                        "refresh-progress {}% {} ({} to update)",
                        state.percent, state.status, state.to_update
                    ),
                );
                last = Some(state.clone());
            }
            match refresh_outcome(&state.status) {
                RefreshOutcome::Succeeded => return Ok(()),
                RefreshOutcome::Failed => {
                    return Err(Some(CycleError::Unhealthy(format!(
                        "instance refresh {id} ended {}: {}",
                        state.status, state.reason
                    ))))
                }
                RefreshOutcome::Running if Instant::now() > deadline => {
                    self.aws
                        .cancel_refresh(&live.name)
                        .await
                        .map_err(|e| Some(call(e)))?;
                    return Err(Some(CycleError::Unhealthy(format!(
                        "instance refresh {id} did not finish in time"
                    ))));
                }
                RefreshOutcome::Running => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// kiln's own replacement: surge by a batch, wait until the new instances are healthy in
    /// every target group, terminate as many old ones with a decrement; again until none is
    /// left. The original capacity is kept in a group tag so an interrupted run resumes.
    async fn kiln_replace(
        &self,
        live: &Group,
        image: &str,
        summary: &mut Summary,
    ) -> Result<(), CycleError> {
        let surge = live
            .tags
            .iter()
            .find(|(k, _)| k == SURGE_TAG)
            .and_then(|(_, v)| v.split_once(','))
            .and_then(|(d, m)| Some((d.parse::<i32>().ok()?, m.parse::<i32>().ok()?)));
        let (capacity, max) = surge.unwrap_or((live.desired, live.max));
        self.aws
            .tag_group(&live.name, SURGE_TAG, &format!("{capacity},{max}"))
            .await?;
        let batch = batch_size(
            capacity.max(1) as usize,
            self.fleet.refresh.min_healthy_percent,
        ) as i32;
        loop {
            let group = self.group(&live.name).await?;
            let outdated = self.outdated(&group, image).await?;
            let current = group.live_instances().len() as i32 - outdated.len() as i32;
            if outdated.is_empty() && current >= capacity {
                break;
            }
            let add = if outdated.is_empty() {
                capacity - current
            } else {
                batch.min(outdated.len() as i32)
            };
            let want = current + add;
            if group.desired < want + outdated.len() as i32 {
                let desired = want + outdated.len() as i32;
                self.aws
                    .update_group(&live.name, None, Some((desired, max.max(desired))))
                    .await?;
                self.event(summary, format!("scale-out {} {desired}", live.name));
            }
            let healthy = self
                .wait_healthy(&live.name, image, want as usize, summary)
                .await;
            if let Err(e) = healthy {
                // Back to the original capacity: the new instances go, the old ones stay.
                let group = self.group(&live.name).await?;
                let images = self.aws.images(&group.live_instances()).await?;
                for id in group.live_instances() {
                    if images.get(&id).map(String::as_str) == Some(image) {
                        self.aws.terminate(&id).await?;
                        self.event(summary, format!("terminate {id}"));
                    }
                }
                self.aws
                    .update_group(&live.name, None, Some((capacity, max)))
                    .await?;
                self.aws.untag_group(&live.name, SURGE_TAG).await?;
                return Err(e);
            }
            let retire = if outdated.is_empty() { 0 } else { add as usize };
            for id in outdated.iter().take(retire) {
                self.aws.terminate(id).await?;
                summary.retired.push(id.clone());
                self.event(summary, format!("terminate {id}"));
            }
        }
        self.aws
            .update_group(&live.name, None, Some((capacity, max)))
            .await?;
        self.aws.untag_group(&live.name, SURGE_TAG).await?;
        self.event(summary, format!("converged {}", live.name));
        Ok(())
    }

    pub(super) async fn group(&self, name: &str) -> anyhow::Result<Group> {
        self.aws
            .groups(name)
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| anyhow::anyhow!("group {name} is gone"))
    }

    /// Waits until `count` instances of the group run `image` and are healthy in every one
    /// of its target groups.
    pub(super) async fn wait_healthy(
        &self,
        group: &str,
        image: &str,
        count: usize,
        summary: &mut Summary,
    ) -> Result<(), CycleError> {
        let deadline = Instant::now() + self.health_timeout;
        let mut seen: Vec<String> = Vec::new();
        let mut streaks: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            let g = self.group(group).await?;
            let ids = g.live_instances();
            let images = self.aws.images(&ids).await?;
            let mut health: Vec<BTreeMap<String, TargetHealthStateEnum>> = Vec::new();
            for target_group in &g.target_groups {
                health.push(self.aws.target_health(target_group).await?);
            }
            let mut healthy = 0;
            for id in ids
                .iter()
                .filter(|id| images.get(*id).map(String::as_str) == Some(image))
            {
                if !summary.launched.contains(id) {
                    summary.launched.push(id.clone());
                    self.event(summary, format!("launch {id}"));
                }
                let ok = health
                    .iter()
                    .all(|h| h.get(id) == Some(&TargetHealthStateEnum::Healthy));
                let streak = streaks.entry(id.clone()).or_default();
                *streak = if ok { *streak + 1 } else { 0 };
                if *streak >= self.healthy_threshold {
                    healthy += 1;
                    if !seen.contains(id) {
                        seen.push(id.clone());
                        self.event(summary, format!("healthy {id}"));
                    }
                }
            }
            if healthy >= count {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CycleError::Unhealthy(format!(
                    "{healthy} of {count} instances of {group} on {image} were healthy in its target groups after {}s",
                    self.health_timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Points the group back at `back`'s image: the version itself where the group names a
    /// default or a number, a new copy of it where the group follows `$Latest`.
    async fn roll_back(
        &self,
        live: &Group,
        back: &TemplateVersion,
        summary: &mut Summary,
    ) -> Result<(), CycleError> {
        (self.say)(&format!("rolling back to {}", back.image));
        let number = if live.version == VersionRef::Latest {
            let latest = self.aws.versions(&live.template_id).await?;
            match latest.last() {
                Some(v) if v.image == back.image => v.number,
                _ => {
                    let number = self
                        .aws
                        .create_version(&live.template_id, back, &back.image)
                        .await?;
                    self.event(summary, format!("version {number} (rollback)"));
                    number
                }
            }
        } else {
            back.number
        };
        self.point_group(live, number, summary).await?;
        // Instances already replaced go back too (AWS would do this in its own rollback).
        let outdated = self
            .outdated(&self.group(&live.name).await?, &back.image)
            .await?;
        if !outdated.is_empty() {
            match self.fleet.refresh.method {
                RefreshMethod::Kiln => self.kiln_replace(live, &back.image, summary).await?,
                _ => {
                    if self.aws.rollback_refresh(&live.name).await.is_ok() {
                        self.event(summary, format!("refresh-rollback {}", live.name));
                    } else if let Err(e) = self.instance_refresh(live, summary).await {
                        match e {
                            None => self.kiln_replace(live, &back.image, summary).await?,
                            Some(e) => return Err(e),
                        }
                    }
                }
            }
        }
        self.event(summary, format!("rolled-back {}", live.name));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_what_min_healthy_leaves_out_of_service_and_at_least_one() {
        assert_eq!(batch_size(2, 90), 1);
        assert_eq!(batch_size(10, 90), 1);
        assert_eq!(batch_size(20, 90), 2);
        assert_eq!(batch_size(4, 50), 2);
        assert_eq!(batch_size(3, 100), 1);
        assert_eq!(batch_size(5, 0), 5);
    }

    #[test]
    fn names_follow_terraforms_name_prefix() {
        let at = std::time::UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        let name = prefixed_name("web-", at);
        assert!(name.starts_with("web-2026"), "{name}");
        assert_eq!(name.len(), "web-".len() + 26, "{name}");
        assert!(name.ends_with("123400000001"), "{name}");
    }
}
