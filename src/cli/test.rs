//! `kiln test [PATH] [--scenario NAME|--all] [--destroy always|never] [--platform NAME]`: a
//! role's Molecule scenarios on local instances. Parses the command line into the scenario
//! runner's options (`scenario::sequence`).

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::load::config::AnsibleConfig;
use crate::run::playbook_run::reporter;
use crate::scenario::sequence::{test, DestroyPolicy, TestOptions};
use crate::scenario::spec::Scenario;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum DestroyArg {
    /// Remove the instances when the sequence ends, passed or failed (the default).
    Always,
    /// Keep them for inspection (the next run of the scenario removes them first).
    Never,
}

#[derive(Debug, Args, Clone)]
pub struct TestArgs {
    /// The role's directory (the one holding molecule/).
    #[arg(default_value = ".")]
    pub role: PathBuf,
    /// The scenario to run (a directory under molecule/).
    #[arg(short, long, default_value = "default")]
    pub scenario: String,
    /// Run every scenario of the role.
    #[arg(long, conflicts_with = "scenario")]
    pub all: bool,
    /// Whether to remove the instances at the end.
    #[arg(long, value_enum, default_value = "always")]
    pub destroy: DestroyArg,
    /// Only remove the instances earlier runs of the scenario left, then exit.
    #[arg(long)]
    pub destroy_only: bool,
    /// Only this platform.
    #[arg(long)]
    pub platform: Option<String>,
    /// Boot a platform image as a local one: `IMAGE=debian:12`, `IMAGE=local:<id>` or
    /// `IMAGE=<local image name>` (repeatable).
    #[arg(long = "image", value_name = "FROM=TO")]
    pub images: Vec<String>,
    /// Also write JSON-lines events (stages and playbook results) to this file (`-`: stdout).
    #[arg(long = "json-events", env = "KILN_JSON_EVENTS")]
    pub json_events: Option<PathBuf>,
    /// More output (as ansible-playbook's -v).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

pub async fn run(args: TestArgs) -> anyhow::Result<i32> {
    let scenarios = if args.all {
        let names = Scenario::names(&args.role);
        if names.is_empty() {
            bail!("{} has no molecule/*/molecule.yml", args.role.display());
        }
        names
    } else {
        vec![args.scenario.clone()]
    };
    let images = args
        .images
        .iter()
        .map(|m| match m.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                Ok((from.to_string(), to.to_string()))
            }
            _ => Err(crate::error::Error::Usage(format!(
                "--image '{m}': expected FROM=TO (a platform image and a local image)"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = AnsibleConfig::discover();
    let reporter = reporter(&config, args.verbose, args.json_events.as_deref())?;
    test(TestOptions {
        role: args.role,
        scenarios,
        destroy: match args.destroy {
            DestroyArg::Always => DestroyPolicy::Always,
            DestroyArg::Never => DestroyPolicy::Never,
        },
        platform: args.platform,
        images,
        destroy_only: args.destroy_only,
        reporter,
        verbosity: args.verbose,
        lines_to_stderr: args.json_events.as_deref() == Some(std::path::Path::new("-")),
    })
    .await
}
