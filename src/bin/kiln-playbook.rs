//! `kiln-playbook`: a drop-in for `ansible-playbook` (Vagrant's `playbook_command`,
//! Packer's ansible provisioner `command`).

use std::process::ExitCode;

use clap::Parser;
use kiln::cli;

#[derive(Parser)]
#[command(
    name = "kiln-playbook",
    disable_version_flag = true,
    about = "Run Ansible playbooks with kiln (ansible-playbook's flags)"
)]
struct Cli {
    #[command(flatten)]
    args: cli::playbook::PlaybookArgs,
}

fn main() -> ExitCode {
    // `synchronize` starts this binary as rsync's shell.
    if let Some(code) = cli::rsh::intercept() {
        return code;
    }
    cli::block_on(Box::pin(cli::playbook::run(Cli::parse().args)))
}
