//! `kiln-playbook`: a drop-in for `ansible-playbook` (Vagrant's `playbook_command`,
//! Packer's ansible provisioner `command`).

use std::process::ExitCode;

use clap::Parser;
use kiln::cli;

#[derive(Parser)]
#[command(
    name = "kiln-playbook",
    version,
    about = "Run Ansible playbooks with kiln (ansible-playbook's flags)"
)]
struct Cli {
    #[command(flatten)]
    args: cli::playbook::PlaybookArgs,
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
    match runtime.block_on(cli::playbook::run(cli.args)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => cli::fail(&e),
    }
}
