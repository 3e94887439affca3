//! `kiln cycle SPEC [--dry-run] [--rollback] [--summary FILE]` and `kiln fleet status SPEC`:
//! roll a local fleet to a new image behind HAProxy (started by kiln when none answers on
//! the spec's socket), and show which instance runs which image and how the balancer sees it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::bake::images::ImageStore;
use crate::bake::local;
use crate::bake::manifest;
use crate::cycle::fleet::{http_status, FleetStore, LocalFleet};
use crate::cycle::haproxy::{self, HaProxy};
use crate::cycle::rollout::{Rollout, Summary};
use crate::cycle::spec::{duration, CycleSpec, HaproxyBalancer, ImageRef, Platform};
use crate::cycle::{Balancer, Fleet};

#[derive(Debug, Args, Clone)]
pub struct CycleArgs {
    /// The cycle spec (YAML).
    pub spec: PathBuf,
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Roll back to the image the fleet ran before its current one.
    #[arg(long)]
    pub rollback: bool,
    /// Write a JSON summary here (for CI).
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand, Clone)]
pub enum FleetCommand {
    /// Which instances run which image, their health and balancer state.
    Status { spec: PathBuf },
    /// Take the whole fleet down: drain and destroy every instance, stop kiln's HAProxy.
    Down { spec: PathBuf },
}

fn spec_dir(spec: &Path) -> PathBuf {
    spec.parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The artifact to roll to: `local:<id>` (checked against the image store) or an AMI.
fn resolve_image(spec: &CycleSpec, dir: &Path, store: &ImageStore) -> anyhow::Result<String> {
    let reference = match &spec.image {
        Some(ImageRef::Id(id)) => id.clone(),
        Some(ImageRef::Manifest { manifest: path }) => {
            let path = dir.join(path);
            manifest::last_artifact(&path)?
                .with_context(|| format!("{} lists no build", path.display()))?
        }
        None => {
            let path = dir.join("kiln-manifest.json");
            manifest::last_artifact(&path)
                .with_context(|| "no image given and no kiln-manifest.json beside the spec")?
                .with_context(|| format!("{} lists no build", path.display()))?
        }
    };
    if matches!(spec.platform, Platform::Ec2 { .. } | Platform::Asg { .. }) {
        let ami = crate::cycle::spec::ami_id(&reference);
        if !ami.starts_with("ami-") {
            bail!("image {reference} is not an AMI (an ec2 fleet needs ami-… or region:ami-…)");
        }
        return Ok(ami.to_string());
    }
    if !reference.starts_with("local:") && reference.contains(':') {
        bail!("image {reference} is not a local image (a local fleet needs local:<id>)");
    }
    Ok(store.find(&reference)?.artifact_id())
}

/// The fleet and balancer the spec names.
pub(crate) async fn backends(
    spec: &CycleSpec,
    home: &Path,
    fleet_store: &FleetStore,
) -> anyhow::Result<(Box<dyn Fleet>, Box<dyn Balancer>, Option<HaProxy>)> {
    let (fleet, balancer) = match &spec.platform {
        Platform::Ec2 { fleet, balancer } => (fleet, balancer),
        // Rolled and shown by `cycle_asg`, which needs no instance-level backends.
        Platform::Asg { .. } => bail!("an asg fleet has no instance-level backends"),
        Platform::Local { balancer, .. } => {
            let fleet = LocalFleet {
                store: FleetStore::open(home, &spec.name)?,
                images: ImageStore::open(home),
                home: home.to_path_buf(),
            };
            return Ok((
                Box::new(fleet),
                Box::new(haproxy_for(balancer, fleet_store)),
                Some(haproxy_for(balancer, fleet_store)),
            ));
        }
    };
    aws_backends(spec, fleet, balancer).await
}

#[cfg(not(feature = "aws"))]
async fn aws_backends(
    _: &CycleSpec,
    _: &crate::cycle::spec::Ec2Fleet,
    _: &crate::cycle::spec::TargetGroupBalancer,
) -> anyhow::Result<(Box<dyn Fleet>, Box<dyn Balancer>, Option<HaProxy>)> {
    Err(crate::bake::aws_unavailable("an ec2 fleet"))
}

/// An EC2 fleet behind an ELBv2 target group.
#[cfg(feature = "aws")]
async fn aws_backends(
    spec: &CycleSpec,
    fleet: &crate::cycle::spec::Ec2Fleet,
    balancer: &crate::cycle::spec::TargetGroupBalancer,
) -> anyhow::Result<(Box<dyn Fleet>, Box<dyn Balancer>, Option<HaProxy>)> {
    use crate::cycle::ec2::Ec2Fleet;
    use crate::cycle::elbv2::TargetGroup;
    let ec2 =
        crate::bake::aws::client(fleet.region.as_deref(), fleet.endpoint_url.as_deref()).await?;
    let elb_config = crate::bake::aws::sdk_config(
        balancer.region.as_deref().or(fleet.region.as_deref()),
        balancer
            .endpoint_url
            .as_deref()
            .or(fleet.endpoint_url.as_deref()),
    )
    .await;
    let instances = Ec2Fleet {
        ec2,
        name: spec.name.clone(),
        instance_type: fleet.instance_type.clone(),
        subnet_ids: fleet.subnet_ids.clone(),
        security_group_ids: fleet.security_group_ids.clone(),
        key_name: fleet.key_name.clone(),
        tags: fleet.tags.clone(),
    };
    let target_group = TargetGroup {
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&elb_config),
        arn: balancer.target_group_arn.clone(),
        port: balancer.port,
    };
    Ok((Box::new(instances), Box::new(target_group), None))
}

#[cfg(feature = "aws")]
async fn asg_cycle(
    args: &CycleArgs,
    spec: &CycleSpec,
    fleet: &crate::cycle::spec::AsgFleet,
    image: Option<String>,
) -> anyhow::Result<i32> {
    super::cycle_asg::run(args, spec, fleet, image).await
}

#[cfg(feature = "aws")]
async fn asg_status(fleet: &crate::cycle::spec::AsgFleet) -> anyhow::Result<i32> {
    super::cycle_asg::status(fleet).await
}

#[cfg(not(feature = "aws"))]
async fn asg_cycle(
    _: &CycleArgs,
    _: &CycleSpec,
    _: &crate::cycle::spec::AsgFleet,
    _: Option<String>,
) -> anyhow::Result<i32> {
    Err(crate::bake::aws_unavailable("an asg fleet"))
}

#[cfg(not(feature = "aws"))]
async fn asg_status(_: &crate::cycle::spec::AsgFleet) -> anyhow::Result<i32> {
    Err(crate::bake::aws_unavailable("an asg fleet"))
}

fn haproxy_for(balancer: &HaproxyBalancer, fleet: &FleetStore) -> HaProxy {
    HaProxy {
        socket: balancer
            .socket
            .clone()
            .unwrap_or_else(|| fleet.dir.join("haproxy.sock")),
        backend: balancer.backend.clone(),
    }
}

pub async fn run(args: CycleArgs) -> anyhow::Result<i32> {
    let spec = CycleSpec::load(&args.spec)?;
    let dir = spec_dir(&args.spec);
    let home = local::home();
    let store = ImageStore::open(&home);
    if let Platform::Asg { fleet } = &spec.platform {
        let image = if args.rollback {
            None
        } else {
            Some(resolve_image(&spec, &dir, &store)?)
        };
        return asg_cycle(&args, &spec, fleet, image).await;
    }
    let history = FleetStore::open(&home, &spec.name)?;
    let target = if args.rollback {
        history
            .history()
            .previous
            .context("the fleet has no earlier image to roll back to")?
    } else {
        resolve_image(&spec, &dir, &store)?
    };
    let name = spec.name.clone();
    let say = move |m: &str| crate::output::progress::step(&name, m);
    let (fleet, balancer_backend, haproxy) = backends(&spec, &home, &history).await?;
    if args.dry_run {
        let members = fleet.members().await?;
        let (new, old): (Vec<_>, Vec<_>) = members.iter().partition(|m| m.image == target);
        let count = spec.platform.count().unwrap_or(0);
        crate::output::progress::line(&spec.name, &format!(
            "dry run: would roll fleet {} to {target}: launch {}, retire {} ({} strategy, batch {})",
            spec.name,
            count.saturating_sub(new.len()),
            old.len() + new.len().saturating_sub(count),
            spec.strategy.kind,
            spec.strategy.batch
        ));
        return Ok(0);
    }
    if let (Some(lb), Platform::Local { balancer, .. }) = (&haproxy, &spec.platform) {
        lb.ensure_running(
            &history.dir,
            &haproxy::config(
                &lb.socket,
                &balancer.listen,
                &balancer.backend,
                &spec.health.http.path,
                spec.health.http.expect,
            ),
        )
        .await?;
    }
    let rollout = Rollout {
        spec: &spec,
        fleet: fleet.as_ref(),
        balancer: balancer_backend.as_ref(),
        history: &history,
        health_timeout: duration(&spec.health.timeout, "health.timeout")?,
        drain_timeout: duration(&spec.drain_timeout, "drain_timeout")?,
        say: &say,
    };
    let mut summary = Summary {
        fleet: spec.name.clone(),
        image: target.clone(),
        ..Default::default()
    };
    let result = rollout.run(&target, &mut summary).await;
    finish(&args, &spec, &mut summary, result)
}

/// Writes the summary (`--summary`) and reports the outcome: exit 0, or 1 after a failure
/// (rolled back or not).
pub(super) fn finish(
    args: &CycleArgs,
    spec: &CycleSpec,
    summary: &mut Summary,
    result: Result<(), crate::cycle::CycleError>,
) -> anyhow::Result<i32> {
    let target = summary.image.clone();
    summary.ok = result.is_ok();
    if let Err(e) = &result {
        summary.error = Some(format!("{e:#}"));
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    match result {
        Ok(()) => {
            crate::output::progress::line(
                &spec.name,
                &match spec.platform.count() {
                    Some(count) => {
                        format!("fleet {} runs {target} on {count} instances", spec.name)
                    }
                    None => format!("fleet {} runs {target}", spec.name),
                },
            );
            Ok(0)
        }
        Err(e) => {
            crate::output::progress::finish_current();
            eprintln!(
                "ERROR! cycle of fleet {} to {target} failed{}: {e:#}",
                spec.name,
                if summary.rolled_back {
                    " and was rolled back"
                } else {
                    ""
                }
            );
            Ok(1)
        }
    }
}

pub async fn fleet(args: FleetArgs) -> anyhow::Result<i32> {
    let (path, down) = match args.command {
        FleetCommand::Status { spec } => (spec, false),
        FleetCommand::Down { spec } => (spec, true),
    };
    let spec = CycleSpec::load(&path)?;
    if let Platform::Asg { fleet } = &spec.platform {
        if down {
            bail!("kiln fleet down does not take an asg fleet down (its groups are Terraform's)");
        }
        return asg_status(fleet).await;
    }
    let home = local::home();
    let history = FleetStore::open(&home, &spec.name)?;
    let (fleet, balancer_backend, haproxy) = backends(&spec, &home, &history).await?;
    let reachable = match &haproxy {
        Some(lb) => lb.answers().await,
        None => true,
    };
    let servers = if reachable {
        balancer_backend.servers().await?
    } else {
        vec![]
    };
    if down {
        let drain = duration(&spec.drain_timeout, "drain_timeout")?;
        for member in fleet.members().await? {
            if reachable {
                balancer_backend.remove(&member.id, drain).await?;
            }
            fleet.destroy(&member).await?;
            println!("destroyed {} ({})", member.id, member.image);
        }
        if let Some(lb) = &haproxy {
            lb.stop(&history.dir).await?;
        }
        return Ok(0);
    }
    println!(
        "{:<20} {:<16} {:<22} {:<8} {:<10} SESSIONS",
        "INSTANCE", "ADDRESS", "IMAGE", "HTTP", "BALANCER"
    );
    for member in fleet.members().await? {
        let http = if fleet.checks_directly() {
            http_status(
                &member.address,
                spec.health.http.port,
                &spec.health.http.path,
            )
            .await
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into())
        } else {
            "n/a".into()
        };
        let server = servers.iter().find(|s| s.name == member.id);
        println!(
            "{:<20} {:<16} {:<22} {:<8} {:<10} {}",
            member.id,
            member.address,
            member.image,
            http,
            server.map(|s| s.status.as_str()).unwrap_or("absent"),
            server.map(|s| s.sessions).unwrap_or(0)
        );
    }
    Ok(0)
}
