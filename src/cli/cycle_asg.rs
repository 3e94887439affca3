//! `kiln cycle` and `kiln fleet status` for an Auto Scaling group fleet (`fleet: {type: asg}`):
//! the image comes from the spec (or `--rollback`), the rollout from `cycle::asg_rollout`.

use std::time::Duration;

use anyhow::Context;

use crate::cycle::asg::Aws;
use crate::cycle::asg_rollout::{live_group, resolve, AsgRollout, Goal};
use crate::cycle::rollout::Summary;
use crate::cycle::spec::{duration, AsgFleet, CycleSpec};

use super::cycle::CycleArgs;

async fn clients(fleet: &AsgFleet) -> anyhow::Result<Aws> {
    // `client` checks the region and the credentials once, for all three.
    let ec2 =
        crate::bake::aws::client(fleet.region.as_deref(), fleet.endpoint_url.as_deref()).await?;
    let config =
        crate::bake::aws::sdk_config(fleet.region.as_deref(), fleet.endpoint_url.as_deref()).await;
    Ok(Aws {
        asg: aws_sdk_autoscaling::Client::new(&config),
        ec2,
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
    })
}

/// Rolls the group; `image` is None for `--rollback`.
pub async fn run(
    args: &CycleArgs,
    spec: &CycleSpec,
    fleet: &AsgFleet,
    image: Option<String>,
) -> anyhow::Result<i32> {
    let aws = clients(fleet).await?;
    if args.dry_run {
        let groups = aws.groups(&fleet.group).await?;
        let live = live_group(&groups)
            .with_context(|| format!("no Auto Scaling group named {}…", fleet.group))?;
        crate::output::progress::line(
            &spec.name,
            &format!(
                "dry run: would roll group {} ({} instances, launch template {} {}) to {} ({} strategy, refresh method {:?})",
                live.name,
                live.desired,
                live.template_id,
                live.version.as_api(),
                image.as_deref().unwrap_or("the previous image"),
                spec.strategy.kind,
                fleet.refresh.method
            ),
        );
        return Ok(0);
    }
    let name = spec.name.clone();
    let say = move |m: &str| crate::output::progress::step(&name, m);
    let rollout = AsgRollout {
        aws: &aws,
        fleet,
        strategy: spec.strategy.kind,
        health_timeout: duration(&spec.health.timeout, "health.timeout")?,
        healthy_threshold: spec.health.healthy_threshold.max(1),
        poll: Duration::from_secs(2),
        say: &say,
    };
    let mut summary = Summary {
        fleet: spec.name.clone(),
        image: image.clone().unwrap_or_default(),
        ..Default::default()
    };
    let goal = image.map_or(Goal::Previous, Goal::Image);
    let result = rollout.run(goal, &mut summary).await;
    super::cycle::finish(args, spec, &mut summary, result)
}

/// The groups, their launch template versions and images, and every instance with its
/// lifecycle state, image and health in each target group.
pub async fn status(fleet: &AsgFleet) -> anyhow::Result<i32> {
    let aws = clients(fleet).await?;
    let groups = aws.groups(&fleet.group).await?;
    let live = live_group(&groups).map(|g| g.name.clone());
    for group in &groups {
        let versions = aws.versions(&group.template_id).await?;
        let version = resolve(&versions, &group.version);
        println!(
            "GROUP {}{} desired {} (min {}, max {}) launch template {} {} = version {} image {}",
            group.name,
            if Some(&group.name) == live.as_ref() {
                " (live)"
            } else {
                ""
            },
            group.desired,
            group.min,
            group.max,
            group.template_id,
            group.version.as_api(),
            version.map_or("?".into(), |v| v.number.to_string()),
            version.map_or("?", |v| v.image.as_str()),
        );
        let ids: Vec<String> = group.instances.iter().map(|(id, _)| id.clone()).collect();
        let images = aws.images(&ids).await?;
        let mut health = Vec::new();
        for target_group in &group.target_groups {
            health.push(aws.target_health(target_group).await?);
        }
        println!(
            "  {:<22} {:<14} {:<16} TARGET GROUPS",
            "INSTANCE", "LIFECYCLE", "IMAGE"
        );
        for (id, lifecycle) in &group.instances {
            let states: Vec<&str> = health
                .iter()
                .map(|h| h.get(id).map_or("absent", |s| s.as_str()))
                .collect();
            println!(
                "  {:<22} {:<14} {:<16} {}",
                id,
                lifecycle,
                images.get(id).map_or("?", String::as_str),
                if states.is_empty() {
                    "-".into()
                } else {
                    states.join(",")
                }
            );
        }
    }
    if groups.is_empty() {
        println!("no Auto Scaling group named {}…", fleet.group);
    }
    Ok(0)
}
