//! Blue/green for an Auto Scaling group fleet: a new group beside the live one (named by the
//! prefix as Terraform's `name_prefix` would, the new version pinned, the same target groups),
//! scaled to the live capacity; once all of its instances are healthy the target groups move
//! to it and the old group goes. A failure before the shift deletes the new group and leaves
//! the live one untouched.

use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;

use super::asg::{Group, TemplateVersion, VersionRef};
use super::asg_rollout::{call, prefixed_name, resolve, AsgRollout};
use super::rollout::Summary;
use super::spec::duration;
use super::CycleError;

impl AsgRollout<'_> {
    pub(super) async fn blue_green(
        &self,
        groups: &[Group],
        live: &Group,
        versions: &[TemplateVersion],
        image: &str,
        summary: &mut Summary,
    ) -> Result<(), CycleError> {
        let current = resolve(versions, &live.version).cloned().ok_or_else(|| {
            call(anyhow::anyhow!(
                "the live group's launch template version is gone"
            ))
        })?;
        let delete_after =
            duration(&self.fleet.delete_after, "delete_after").map_err(|e| call(e.into()))?;
        // What the live group runs is what its instances run: a group on `$Latest` already
        // names a version made for the new group.
        let running = self.aws.images(&live.live_instances()).await?;
        let live_on_target = if running.is_empty() {
            current.image == image
        } else {
            running.values().all(|i| i == image)
        };
        // Groups other than the live one: a new group left by an interrupted run on the
        // target image is reused; any other is a leftover.
        let mut new_group = None;
        for group in groups.iter().filter(|g| g.name != live.name) {
            let runs = resolve(versions, &group.version).map(|v| v.image.as_str());
            if runs == Some(image) && !live_on_target && new_group.is_none() {
                self.event(summary, format!("reuse-group {}", group.name));
                new_group = Some(group.clone());
            } else {
                self.aws.delete_group(&group.name).await?;
                self.event(summary, format!("delete-group {}", group.name));
            }
        }
        if live_on_target {
            self.event(summary, format!("converged {}", live.name));
            return Ok(());
        }
        let new_group = match new_group {
            Some(group) => group,
            None => {
                let number = self
                    .version_for(
                        &Group {
                            version: VersionRef::Number(current.number),
                            ..live.clone()
                        },
                        versions,
                        &current,
                        image,
                        summary,
                    )
                    .await?;
                let name = prefixed_name(&self.fleet.group, std::time::SystemTime::now());
                self.aws
                    .create_group_like(
                        live,
                        &name,
                        &VersionRef::Number(number),
                        &live.target_groups,
                    )
                    .await?;
                self.event(summary, format!("create-group {name}"));
                self.group(&name).await?
            }
        };
        let capacity = live.desired.max(1);
        let staged = async {
            if new_group.desired < capacity {
                self.aws
                    .update_group(
                        &new_group.name,
                        None,
                        Some((capacity, live.max.max(capacity))),
                    )
                    .await?;
                self.event(summary, format!("scale-out {} {capacity}", new_group.name));
            }
            self.wait_healthy(&new_group.name, image, capacity as usize, summary)
                .await
        };
        if let Err(e) = staged.await {
            (self.say)(&format!("{e}; deleting {}", new_group.name));
            summary.rolled_back = matches!(e, CycleError::Unhealthy(_));
            self.aws.delete_group(&new_group.name).await?;
            self.event(summary, format!("delete-group {}", new_group.name));
            return Err(e);
        }
        // The shift: the old group leaves the target groups, then goes.
        if !live.target_groups.is_empty() {
            self.aws.detach(&live.name, &live.target_groups).await?;
            // AWS deregisters a detached group's instances; moto leaves some registered.
            for target_group in &live.target_groups {
                let health = self.aws.target_health(target_group).await?;
                let registered: Vec<String> = live
                    .live_instances()
                    .into_iter()
                    .filter(|id| {
                        health.get(id).is_some_and(|s| {
                            !matches!(
                                s,
                                TargetHealthStateEnum::Unused | TargetHealthStateEnum::Draining
                            )
                        })
                    })
                    .collect();
                self.aws.deregister(target_group, &registered).await?;
            }
        }
        self.event(
            summary,
            format!("shift {} -> {}", live.name, new_group.name),
        );
        self.aws
            .update_group(&live.name, None, Some((0, live.max)))
            .await?;
        self.event(summary, format!("scale-in {} 0", live.name));
        summary.retired.extend(live.live_instances());
        tokio::time::sleep(delete_after).await;
        self.aws.delete_group(&live.name).await?;
        self.event(summary, format!("delete-group {}", live.name));
        Ok(())
    }
}
