//! `kiln`: the provisioner's subcommands.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Run a role's Molecule scenarios on local throwaway instances.
    Test(cli::test::TestArgs),
    /// Roll a fleet to a new image behind its load balancer (rolls back when unhealthy).
    Cycle(cli::cycle::CycleArgs),
    /// The fleet's instances, images, health and balancer state.
    Fleet(cli::cycle::FleetArgs),
    /// Which hosts drifted from their playbook (check mode + diff, nothing changed): exit 0
    /// in sync, 2 drifted, 1 a host could not be checked.
    Drift(Box<cli::drift::DriftArgs>),
    /// Encrypt, decrypt, view, edit and rekey ansible-vault files and strings.
    Vault(cli::vault::VaultArgs),
    /// Print a shell completion script (e.g. `kiln completions bash > /etc/bash_completion.d/kiln`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print kiln's man page (roff; e.g. `kiln man > /usr/local/share/man/man1/kiln.1`).
    Man,
}

fn main() -> ExitCode {
    if let Some(code) = cli::rsh::intercept() {
        return code;
    }
    match Cli::parse().command {
        Command::Playbook(args) => cli::block_on(Box::pin(cli::playbook::run(*args))),
        Command::Inventory(args) => cli::exit(cli::inventory::run(args)),
        Command::Bake(args) => cli::block_on(Box::pin(cli::bake::run(args))),
        Command::Images(args) => cli::exit(cli::images::run(args)),
        Command::Sweep(args) => cli::block_on(Box::pin(cli::sweep::run(args))),
        Command::Test(args) => cli::block_on(Box::pin(cli::test::run(args))),
        Command::Cycle(args) => cli::block_on(Box::pin(cli::cycle::run(args))),
        Command::Fleet(args) => cli::block_on(Box::pin(cli::cycle::fleet(args))),
        Command::Drift(args) => cli::block_on(Box::pin(cli::drift::run(*args))),
        Command::Vault(args) => cli::exit(cli::vault::run(args)),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kiln", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => cli::fail(&e.into()),
            }
        }
    }
}
