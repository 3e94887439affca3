//! `kiln cycle SPEC [--dry-run] [--rollback] [--summary FILE]` and `kiln fleet status SPEC`:
//! roll a local fleet to a new image behind HAProxy (started by kiln when none answers on
//! the spec's socket), and show which instance runs which image and how the balancer sees it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::bake::images::{Image, ImageStore};
use crate::bake::local;
use crate::bake::manifest;
use crate::cycle::fleet::{http_status, FleetStore};
use crate::cycle::haproxy::{self, HaProxy};
use crate::cycle::rollout::{Rollout, Summary};
use crate::cycle::spec::{duration, CycleSpec, ImageRef};

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

fn resolve_image(spec: &CycleSpec, dir: &Path, store: &ImageStore) -> anyhow::Result<Image> {
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
    if !reference.starts_with("local:") && reference.contains(':') {
        bail!(
            "image {reference} is not a local image; this version of kiln cycles local fleets only"
        );
    }
    store.find(&reference)
}

fn balancer(spec: &CycleSpec, fleet: &FleetStore) -> HaProxy {
    HaProxy {
        socket: spec
            .balancer
            .socket
            .clone()
            .unwrap_or_else(|| fleet.dir.join("haproxy.sock")),
        backend: spec.balancer.backend.clone(),
    }
}

pub async fn run(args: CycleArgs) -> anyhow::Result<i32> {
    let spec = CycleSpec::load(&args.spec)?;
    let dir = spec_dir(&args.spec);
    let home = local::home();
    let store = ImageStore::open(&home);
    let fleet = FleetStore::open(&home, &spec.name)?;
    let target = if args.rollback {
        let previous = fleet
            .history()
            .previous
            .context("the fleet has no earlier image to roll back to")?;
        store.find(&previous)?
    } else {
        resolve_image(&spec, &dir, &store)?
    };
    let name = spec.name.clone();
    let say = move |m: &str| super::progress::line(&name, m);
    let lb = balancer(&spec, &fleet);
    if args.dry_run {
        let members = fleet.members()?;
        let (new, old): (Vec<_>, Vec<_>) = members
            .iter()
            .partition(|m| m.image == target.artifact_id());
        say(&format!(
            "dry run: would roll fleet {} to {} ({}): launch {}, retire {} ({} strategy, batch {})",
            spec.name,
            target.artifact_id(),
            target.name,
            spec.fleet.count.saturating_sub(new.len()),
            old.len() + new.len().saturating_sub(spec.fleet.count),
            spec.strategy.kind,
            spec.strategy.batch
        ));
        return Ok(0);
    }
    lb.ensure_running(
        &fleet.dir,
        &haproxy::config(
            &lb.socket,
            &spec.balancer.listen,
            &spec.balancer.backend,
            &spec.health.http.path,
            spec.health.http.expect,
        ),
    )
    .await?;
    let rollout = Rollout {
        spec: &spec,
        home: home.clone(),
        store,
        fleet,
        balancer: lb,
        health_timeout: duration(&spec.health.timeout, "health.timeout")?,
        drain_timeout: duration(&spec.drain_timeout, "drain_timeout")?,
        say: &say,
    };
    let mut summary = Summary {
        fleet: spec.name.clone(),
        image: target.artifact_id(),
        ..Default::default()
    };
    let result = rollout.run(&target, &mut summary).await;
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
            say(&format!(
                "fleet {} runs {} ({}) on {} instances behind {}",
                spec.name,
                target.artifact_id(),
                target.name,
                spec.fleet.count,
                spec.balancer.listen
            ));
            Ok(0)
        }
        Err(e) => {
            eprintln!(
                "ERROR! cycle of fleet {} to {} failed{}: {e:#}",
                spec.name,
                target.artifact_id(),
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
    let fleet = FleetStore::open(&local::home(), &spec.name)?;
    let lb = balancer(&spec, &fleet);
    if down {
        let drain = duration(&spec.drain_timeout, "drain_timeout")?;
        let running = lb.answers().await;
        for member in fleet.members()? {
            if running {
                lb.remove(&member.id, drain).await?;
            }
            fleet.destroy(&member).await?;
            println!("destroyed {} ({})", member.id, member.image);
        }
        lb.stop(&fleet.dir).await?;
        return Ok(0);
    }
    let servers = if lb.answers().await {
        lb.servers().await?
    } else {
        vec![]
    };
    println!(
        "{:<12} {:<16} {:<20} {:<8} {:<10} SESSIONS",
        "INSTANCE", "ADDRESS", "IMAGE", "HTTP", "BALANCER"
    );
    for member in fleet.members()? {
        let http = http_status(
            &member.address,
            spec.health.http.port,
            &spec.health.http.path,
        )
        .await
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
        let server = servers.iter().find(|s| s.name == member.id);
        println!(
            "{:<12} {:<16} {:<20} {:<8} {:<10} {}",
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
