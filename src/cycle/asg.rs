//! The Auto Scaling, launch template and target group calls an ASG cycle makes, each
//! returning kiln's own small types (`Group`, `TemplateVersion`), so the rollout in
//! `asg_rollout.rs` reads as the algorithm. The instance refresh calls are in
//! `asg_refresh.rs`.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_sdk_autoscaling::config::http::HttpResponse;
use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};
use aws_sdk_ec2::types::RequestLaunchTemplateData;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};

/// The three clients, one region and endpoint.
pub struct Aws {
    pub asg: aws_sdk_autoscaling::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

/// How a group names its launch template version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    Latest,
    Default,
    Number(i64),
}

impl VersionRef {
    pub fn parse(text: &str) -> VersionRef {
        match text {
            "$Latest" => VersionRef::Latest,
            "$Default" => VersionRef::Default,
            number => number
                .parse()
                .map_or(VersionRef::Default, VersionRef::Number),
        }
    }

    pub fn as_api(&self) -> String {
        match self {
            VersionRef::Latest => "$Latest".into(),
            VersionRef::Default => "$Default".into(),
            VersionRef::Number(n) => n.to_string(),
        }
    }
}

/// One Auto Scaling group as kiln needs it.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub template_id: String,
    pub version: VersionRef,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub target_groups: Vec<String>,
    /// Instances with their lifecycle state (`InService`, `Pending`, `Terminating`, …).
    pub instances: Vec<(String, String)>,
    pub created: i64,
    pub subnets: Option<String>,
    pub zones: Vec<String>,
    pub health_check_type: Option<String>,
    pub health_check_grace: Option<i32>,
    pub tags: Vec<(String, String)>,
}

impl Group {
    /// Instances not on their way out.
    pub fn live_instances(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter(|(_, state)| !state.starts_with("Terminat") && !state.starts_with("Detach"))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// One launch template version: its number, image, and the fields kiln copies explicitly
/// (besides `SourceVersion`, which copies every field, user data included, on AWS).
#[derive(Debug, Clone)]
pub struct TemplateVersion {
    pub number: i64,
    pub image: String,
    pub default: bool,
    instance_type: Option<String>,
    key_name: Option<String>,
}

/// A failed SDK call as an error naming the call and AWS's code and message.
pub(super) fn sdk_error<E>(
    call: &str,
    e: aws_sdk_autoscaling::error::SdkError<E, HttpResponse>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = e.message().map(str::to_string);
    let code = e.code().map(str::to_string);
    anyhow::Error::new(e).context(format!(
        "{call}: {}",
        [code, message]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ")
    ))
}

impl Aws {
    /// Groups whose name starts with `prefix`, oldest first.
    pub async fn groups(&self, prefix: &str) -> anyhow::Result<Vec<Group>> {
        let mut groups = Vec::new();
        let mut pages = self
            .asg
            .describe_auto_scaling_groups()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("DescribeAutoScalingGroups", e))?;
            for group in page.auto_scaling_groups() {
                let name = group.auto_scaling_group_name().unwrap_or_default();
                if !name.starts_with(prefix) {
                    continue;
                }
                let template = group.launch_template().with_context(|| {
                    format!("group {name} has no launch template (launch configurations and mixed instances policies are not supported)")
                })?;
                groups.push(Group {
                    name: name.to_string(),
                    template_id: match template.launch_template_id() {
                        Some(id) => id.to_string(),
                        None => {
                            self.template_id(template.launch_template_name().unwrap_or_default())
                                .await?
                        }
                    },
                    version: VersionRef::parse(template.version().unwrap_or("$Default")),
                    min: group.min_size().unwrap_or(0),
                    max: group.max_size().unwrap_or(0),
                    desired: group.desired_capacity().unwrap_or(0),
                    target_groups: group.target_group_arns().to_vec(),
                    instances: group
                        .instances()
                        .iter()
                        .map(|i| {
                            (
                                i.instance_id().unwrap_or_default().to_string(),
                                i.lifecycle_state()
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect(),
                    created: group.created_time().map(|t| t.secs()).unwrap_or(0),
                    subnets: group.vpc_zone_identifier().map(str::to_string),
                    zones: group.availability_zones().to_vec(),
                    health_check_type: group.health_check_type().map(str::to_string),
                    health_check_grace: group.health_check_grace_period(),
                    tags: group
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                        .collect(),
                });
            }
        }
        groups.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        Ok(groups)
    }

    async fn template_id(&self, name: &str) -> anyhow::Result<String> {
        let out = self
            .ec2
            .describe_launch_templates()
            .launch_template_names(name)
            .send()
            .await
            .context("DescribeLaunchTemplates")?;
        out.launch_templates()
            .first()
            .and_then(|t| t.launch_template_id())
            .map(str::to_string)
            .with_context(|| format!("no launch template named {name}"))
    }

    /// Every version of a launch template, oldest first.
    pub async fn versions(&self, template: &str) -> anyhow::Result<Vec<TemplateVersion>> {
        let out = self
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(template)
            .send()
            .await
            .context("DescribeLaunchTemplateVersions")?;
        let mut versions: Vec<TemplateVersion> = out
            .launch_template_versions()
            .iter()
            .map(|v| {
                let data = v.launch_template_data();
                TemplateVersion {
                    number: v.version_number().unwrap_or(0),
                    image: data
                        .and_then(|d| d.image_id())
                        .unwrap_or_default()
                        .to_string(),
                    default: v.default_version().unwrap_or(false),
                    instance_type: data
                        .and_then(|d| d.instance_type())
                        .map(|t| t.as_str().to_string()),
                    key_name: data.and_then(|d| d.key_name()).map(str::to_string),
                }
            })
            .collect();
        versions.sort_by_key(|v| v.number);
        Ok(versions)
    }

    /// A new version from `source` with `image`. `SourceVersion` copies every field on AWS,
    /// user data included; instance type and key name are also copied explicitly, so an
    /// endpoint that ignores `SourceVersion` (moto) still launches the same instances. User
    /// data is not: moto cannot launch from a version given user data this way.
    pub async fn create_version(
        &self,
        template: &str,
        source: &TemplateVersion,
        image: &str,
    ) -> anyhow::Result<i64> {
        let data = RequestLaunchTemplateData::builder()
            .image_id(image)
            .set_instance_type(source.instance_type.as_deref().map(Into::into))
            .set_key_name(source.key_name.clone())
            .build();
        let out = self
            .ec2
            .create_launch_template_version()
            .launch_template_id(template)
            .source_version(source.number.to_string())
            .version_description(format!("kiln: {image}"))
            .launch_template_data(data)
            .send()
            .await
            .context("CreateLaunchTemplateVersion")?;
        out.launch_template_version()
            .and_then(|v| v.version_number())
            .context("CreateLaunchTemplateVersion returned no version number")
    }

    pub async fn set_default_version(&self, template: &str, number: i64) -> anyhow::Result<()> {
        self.ec2
            .modify_launch_template()
            .launch_template_id(template)
            .default_version(number.to_string())
            .send()
            .await
            .context("ModifyLaunchTemplate")?;
        Ok(())
    }

    pub(super) fn template_spec(
        template: &str,
        version: &VersionRef,
    ) -> LaunchTemplateSpecification {
        LaunchTemplateSpecification::builder()
            .launch_template_id(template)
            .version(version.as_api())
            .build()
    }

    /// Points a group at a launch template version and, when given, a capacity.
    pub async fn update_group(
        &self,
        group: &str,
        template: Option<(&str, &VersionRef)>,
        capacity: Option<(i32, i32)>,
    ) -> anyhow::Result<()> {
        self.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .set_launch_template(template.map(|(id, version)| Self::template_spec(id, version)))
            .set_desired_capacity(capacity.map(|(desired, _)| desired))
            .set_max_size(capacity.map(|(desired, max)| max.max(desired)))
            .set_min_size(capacity.filter(|(desired, _)| *desired == 0).map(|_| 0))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateAutoScalingGroup", e))?;
        Ok(())
    }

    pub async fn tag_group(&self, group: &str, key: &str, value: &str) -> anyhow::Result<()> {
        self.asg
            .create_or_update_tags()
            .tags(
                Tag::builder()
                    .resource_id(group)
                    .resource_type("auto-scaling-group")
                    .key(key)
                    .value(value)
                    .propagate_at_launch(false)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("CreateOrUpdateTags", e))?;
        Ok(())
    }

    pub async fn untag_group(&self, group: &str, key: &str) -> anyhow::Result<()> {
        self.asg
            .delete_tags()
            .tags(
                Tag::builder()
                    .resource_id(group)
                    .resource_type("auto-scaling-group")
                    .key(key)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("DeleteTags", e))?;
        Ok(())
    }

    /// Terminates a group's instance and lowers its desired capacity by one.
    pub async fn terminate(&self, instance: &str) -> anyhow::Result<()> {
        self.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(|e| sdk_error("TerminateInstanceInAutoScalingGroup", e))?;
        Ok(())
    }

    /// The image each instance runs.
    pub async fn images(&self, ids: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let out = self
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .context("DescribeInstances")?;
        Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i.instance_id()?.to_string(), i.image_id()?.to_string())))
            .collect())
    }

    /// Each target's state in the target group (`healthy`, `unused`, `draining`, …).
    pub async fn target_health(
        &self,
        target_group: &str,
    ) -> anyhow::Result<BTreeMap<String, TargetHealthStateEnum>> {
        Ok(
            super::elbv2::describe_target_health(&self.elb, target_group)
                .await?
                .into_iter()
                .filter_map(|(id, state)| Some((id, state?)))
                .collect(),
        )
    }

    pub async fn deregister(&self, target_group: &str, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.elb
            .deregister_targets()
            .target_group_arn(target_group)
            .set_targets(Some(
                ids.iter()
                    .map(|id| TargetDescription::builder().id(id).build())
                    .collect(),
            ))
            .send()
            .await
            .context("DeregisterTargets")?;
        Ok(())
    }

    /// A new group named `name` with `live`'s configuration, the launch template at
    /// `version`, no target groups yet and no instances.
    pub async fn create_group_like(
        &self,
        live: &Group,
        name: &str,
        version: &VersionRef,
        target_groups: &[String],
    ) -> anyhow::Result<()> {
        self.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(Self::template_spec(&live.template_id, version))
            .min_size(0)
            .max_size(live.max.max(live.desired))
            .desired_capacity(0)
            .set_vpc_zone_identifier(live.subnets.clone().filter(|s| !s.is_empty()))
            .set_availability_zones((!live.zones.is_empty()).then(|| live.zones.clone()))
            .set_health_check_type(live.health_check_type.clone())
            .set_health_check_grace_period(live.health_check_grace)
            .set_target_group_arns(Some(target_groups.to_vec()))
            .set_tags(Some(
                live.tags
                    .iter()
                    .filter(|(k, _)| !k.starts_with("kiln:"))
                    .map(|(k, v)| {
                        Tag::builder()
                            .key(k)
                            .value(v)
                            .propagate_at_launch(true)
                            .build()
                    })
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| sdk_error("CreateAutoScalingGroup", e))?;
        Ok(())
    }

    pub async fn attach(&self, group: &str, target_groups: &[String]) -> anyhow::Result<()> {
        self.asg
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(group)
            .set_target_group_arns(Some(target_groups.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("AttachLoadBalancerTargetGroups", e))?;
        Ok(())
    }

    pub async fn detach(&self, group: &str, target_groups: &[String]) -> anyhow::Result<()> {
        self.asg
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(group)
            .set_target_group_arns(Some(target_groups.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("DetachLoadBalancerTargetGroups", e))?;
        Ok(())
    }

    /// Deletes a group and (force) its instances.
    pub async fn delete_group(&self, group: &str) -> anyhow::Result<()> {
        self.asg
            .delete_auto_scaling_group()
            .auto_scaling_group_name(group)
            .force_delete(true)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteAutoScalingGroup", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_references_round_trip() {
        for text in ["$Latest", "$Default", "7"] {
            assert_eq!(VersionRef::parse(text).as_api(), text);
        }
    }
}
