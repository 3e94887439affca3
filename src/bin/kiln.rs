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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ERROR! could not start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Command::Playbook(args) => runtime.block_on(cli::playbook::run(*args)),
        Command::Inventory(args) => cli::inventory::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => cli::fail(&e),
    }
}
