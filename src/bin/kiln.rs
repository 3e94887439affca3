//! `kiln`: the provisioner's subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln::cli;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Ansible-compatible agentless provisioner and image baker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Ansible playbooks over SSH (ansible-playbook's flags).
    Playbook(Box<cli::playbook::PlaybookArgs>),
    /// Show the inventory (ansible-inventory's --list / --graph).
    Inventory(cli::inventory::InventoryArgs),
    /// Bake an image: launch a build instance, provision it with playbooks, store the image.
    Bake(cli::bake::BakeArgs),
    /// List local images, or remove one (`kiln images rm REF`).
    Images(cli::images::ImagesArgs),
    /// List (and with --yes remove) what interrupted builds left behind.
    Sweep(cli::sweep::SweepArgs),
    /// Roll a fleet to a new image behind its load balancer (rolls back when unhealthy).
    Cycle(cli::cycle::CycleArgs),
    /// The fleet's instances, images, health and balancer state.
    Fleet(cli::cycle::FleetArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Playbook(args) => cli::block_on(cli::playbook::run(*args)),
        Command::Inventory(args) => cli::exit(cli::inventory::run(args)),
        Command::Bake(args) => cli::block_on(cli::bake::run(args)),
        Command::Images(args) => cli::exit(cli::images::run(args)),
        Command::Sweep(args) => cli::block_on(cli::sweep::run(args)),
        Command::Cycle(args) => cli::block_on(cli::cycle::run(args)),
        Command::Fleet(args) => cli::block_on(cli::cycle::fleet(args)),
    }
}
