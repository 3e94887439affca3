//! Command-line front ends: `kiln` (subcommands) and `kiln-playbook` (ansible-playbook's
//! flags, for Vagrant's `playbook_command` and Packer's `command`).

pub mod extra_vars;
pub mod inventory;
pub mod playbook;

use std::process::ExitCode;

/// Prints an error the way ansible-playbook does and picks its exit code.
pub fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("ERROR! {err:#}");
    let code = match err.downcast_ref::<crate::error::Error>() {
        Some(crate::error::Error::Usage(_)) => 5,
        Some(crate::error::Error::Yaml { .. } | crate::error::Error::Invalid { .. }) => 4,
        _ => 1,
    };
    ExitCode::from(code)
}
