//! `kiln bake SPEC`: playbook → image. Parses the command line into bake's options and hands
//! the build to `bake::build` (launch, provision in-process, store, record in the manifest;
//! failure, Ctrl-C and SIGTERM unwind the cleanup stack).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::bake::build::{bake, BakeOptions, OnError};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum OnErrorArg {
    /// Remove everything the build created (the default).
    Cleanup,
    /// Keep the build instance running and print how to reach it.
    Abort,
}

#[derive(Debug, Args, Clone)]
pub struct BakeArgs {
    /// The bake spec (YAML).
    pub spec: PathBuf,
    /// Extra variables for every provisioning playbook (`k=v`, JSON/YAML, or `@file`).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// What to do with the build instance when the build fails.
    #[arg(long, value_enum, default_value = "cleanup")]
    pub on_error: OnErrorArg,
    /// Replace an existing image of the same name.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: BakeArgs) -> anyhow::Result<i32> {
    bake(BakeOptions {
        spec: args.spec,
        extra_vars: super::extra_vars::parse(&args.extra_vars)?,
        on_error: match args.on_error {
            OnErrorArg::Cleanup => OnError::Cleanup,
            OnErrorArg::Abort => OnError::Abort,
        },
        force: args.force,
        // The provisioning runs' event stream, as `kiln playbook` reads it.
        json_events: std::env::var_os("KILN_JSON_EVENTS").map(PathBuf::from),
    })
    .await
}
