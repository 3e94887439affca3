//! `kiln drift -i INVENTORY PLAYBOOK…` and `kiln drift FLEET_SPEC`: check hosts (or a
//! fleet's instances, against what their image was baked from) in check mode with diffs,
//! touching nothing; a per-host table on the terminal, the full report as JSON with
//! `--json`; exit 0 (in sync), 2 (drifted) or 1 (a host could not be checked).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::playbook::{inventory_sources, run_options, PlaybookArgs};
use crate::bake::images::ImageStore;
use crate::bake::local;
use crate::bake::provenance::Provenance;
use crate::cycle::fleet::FleetStore;
use crate::cycle::spec::{CycleSpec, Platform};
use crate::drift::fleet::{ChangedPlaybook, FleetCheck, Instance};
use crate::drift::{run_checks, Check, DriftCollector, DriftReport};
use crate::error::Error;
use crate::load::config::AnsibleConfig;
use crate::load::inventory::patterns::select;
use crate::load::inventory::Inventory;

#[derive(Debug, Args, Clone)]
pub struct DriftArgs {
    /// With -i: the playbooks to check the inventory's hosts against. Without: one fleet spec
    /// (as `kiln cycle` takes), whose instances are checked against their image's bake.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Inventory file, directory, or comma-separated host list (repeatable).
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    /// Check only hosts (or fleet instances) matching this pattern.
    #[arg(short = 'l', long = "limit")]
    pub limit: Option<String>,
    /// Variables as key=value, JSON/YAML, or @file (with -i; a fleet uses its bake's).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Only check tasks with these tags (with -i; a fleet uses its bake's).
    #[arg(short = 't', long = "tags")]
    pub tags: Vec<String>,
    /// Skip tasks with these tags (with -i).
    #[arg(long = "skip-tags")]
    pub skip_tags: Vec<String>,
    /// Log in as this user.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// The SSH private key to log in with.
    #[arg(long = "private-key", visible_alias = "key-file")]
    pub private_key: Option<PathBuf>,
    /// Run tasks with privilege escalation (sudo).
    #[arg(short = 'b', long = "become")]
    pub become_flag: bool,
    /// Hosts in flight at once (default: all).
    #[arg(short = 'f', long = "forks")]
    pub forks: Option<usize>,
    /// SSH connection timeout in seconds.
    #[arg(short = 'T', long = "timeout")]
    pub timeout: Option<u64>,
    /// Write the full report as JSON here (`-`: to stdout instead of the table).
    #[arg(long = "json")]
    pub json: Option<PathBuf>,
    /// A fleet whose playbook changed since its image was baked is checked against the
    /// current file (with a warning) instead of being reported as not checked.
    #[arg(long = "allow-playbook-change")]
    pub allow_playbook_change: bool,
}

impl DriftArgs {
    /// The options `kiln playbook` would take from the same flags.
    fn as_playbook_args(&self) -> PlaybookArgs {
        PlaybookArgs {
            playbooks: self.paths.clone(),
            inventory: self.inventory.clone(),
            extra_vars: self.extra_vars.clone(),
            limit: self.limit.clone(),
            tags: self.tags.clone(),
            skip_tags: self.skip_tags.clone(),
            check: true,
            diff: true,
            forks: self.forks,
            user: self.user.clone(),
            become_flag: self.become_flag,
            private_key: self.private_key.clone(),
            timeout: self.timeout,
            ..Default::default()
        }
    }
}

pub async fn run(args: DriftArgs) -> anyhow::Result<i32> {
    super::raise_file_limit();
    let config = AnsibleConfig::discover();
    let playbook_args = args.as_playbook_args();
    let options = run_options(&playbook_args, &config)?;
    let collector = Arc::new(DriftCollector::default());
    let checks = if args.inventory.is_empty() {
        let [spec] = &args.paths[..] else {
            return Err(Error::Usage(
                "kiln drift takes one fleet spec, or -i INVENTORY with playbooks".into(),
            )
            .into());
        };
        if !args.extra_vars.is_empty() || !args.tags.is_empty() || !args.skip_tags.is_empty() {
            return Err(Error::Usage(
                "a fleet is checked with the variables and tags its image was baked with: \
                 drop -e/-t/--skip-tags"
                    .into(),
            )
            .into());
        }
        let (mut instances, provenance) = fleet_instances(spec).await?;
        if instances.is_empty() {
            collector.note(format!(
                "the fleet in {} has no running instances: nothing to check",
                spec.display()
            ));
        }
        if let Some(pattern) = &args.limit {
            let names = instances
                .iter()
                .map(|i| (i.name.clone(), Default::default()))
                .collect();
            let selected = select(&Inventory::with_hosts(names, &[]), pattern);
            instances.retain(|i| selected.contains(&i.name));
        }
        let fleet = FleetCheck {
            options: &options,
            roles_path: &config.roles_path,
            changed_playbook: if args.allow_playbook_change {
                ChangedPlaybook::CheckCurrent
            } else {
                ChangedPlaybook::Refuse
            },
        };
        let provenance_of = |image: &str| match provenance.get(image) {
            Some(Ok(found)) => Ok(found.clone()),
            Some(Err(e)) => Err(anyhow::anyhow!("{e}")),
            None => Ok(None),
        };
        fleet.checks(&instances, provenance_of, &collector)
    } else {
        vec![Check {
            playbooks: args.paths.clone(),
            roles_path: config.roles_path.clone(),
            inventory: Inventory::load(&inventory_sources(&playbook_args, &config))?,
            options,
            report_as: None,
        }]
    };
    let report = run_checks(checks, &collector, interrupted()).await;
    print_report(&report, args.json.as_deref())?;
    Ok(report.exit_code())
}

fn print_report(report: &DriftReport, json: Option<&Path>) -> anyhow::Result<()> {
    let document = serde_json::to_string_pretty(&report.to_json())? + "\n";
    match json {
        Some(path) if path.as_os_str() == "-" => print!("{document}"),
        Some(path) => {
            std::fs::write(path, document)
                .with_context(|| format!("writing {}", path.display()))?;
            print!("{}", report.table());
        }
        None => print!("{}", report.table()),
    }
    Ok(())
}

/// Resolves at the first SIGINT or SIGTERM (never, when neither can be watched).
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Each image's provenance, or why it could not be read.
type Provenances = HashMap<String, Result<Option<Provenance>, String>>;

/// The fleet's running instances (found as `kiln cycle` finds them) and each of their
/// images' provenance.
async fn fleet_instances(spec_path: &Path) -> anyhow::Result<(Vec<Instance>, Provenances)> {
    let spec = CycleSpec::load(spec_path)?;
    let home = local::home();
    let history = FleetStore::open(&home, &spec.name)?;
    let (fleet, _, _) = super::cycle::backends(&spec, &home, &history).await?;
    let instances: Vec<Instance> = fleet
        .members()
        .await?
        .into_iter()
        .map(|m| Instance {
            name: m.id,
            address: m.address,
            image: m.image,
        })
        .collect();
    let mut images: Vec<&str> = instances.iter().map(|i| i.image.as_str()).collect();
    images.sort();
    images.dedup();
    let mut provenance = Provenances::new();
    match &spec.platform {
        Platform::Local { .. } => {
            let store = ImageStore::open(&home);
            for image in images {
                let found = store
                    .find(image)
                    .map(|i| i.provenance)
                    .map_err(|e| format!("{e:#}"));
                provenance.insert(image.to_string(), found);
            }
        }
        Platform::Ec2 { fleet, .. } => {
            ec2_provenance(fleet, &images, &mut provenance).await?;
        }
        // `backends` already refused it: an Auto Scaling group's instances are not listed here.
        Platform::Asg { .. } => anyhow::bail!("kiln drift does not check an asg fleet"),
    }
    Ok((instances, provenance))
}

/// Each AMI's provenance, from its tags.
#[cfg(feature = "aws")]
async fn ec2_provenance(
    fleet: &crate::cycle::spec::Ec2Fleet,
    images: &[&str],
    provenance: &mut Provenances,
) -> anyhow::Result<()> {
    let ec2 =
        crate::bake::aws::client(fleet.region.as_deref(), fleet.endpoint_url.as_deref()).await?;
    for image in images {
        let found = match crate::bake::aws::image_tags(&ec2, image).await {
            Ok(tags) => Provenance::from_tags(&tags).map_err(|e| format!("{e:#}")),
            Err(e) => Err(format!("{e:#}")),
        };
        provenance.insert(image.to_string(), found);
    }
    Ok(())
}

#[cfg(not(feature = "aws"))]
async fn ec2_provenance(
    _: &crate::cycle::spec::Ec2Fleet,
    _: &[&str],
    _: &mut Provenances,
) -> anyhow::Result<()> {
    Err(crate::bake::aws_unavailable("an ec2 fleet"))
}
