//! Command-line front ends: `kiln` (subcommands) and `kiln-playbook` (ansible-playbook's
//! flags, for Vagrant's `playbook_command` and Packer's `command`).

pub mod bake;
pub mod cycle;
#[cfg(feature = "aws")]
mod cycle_asg;
pub mod drift;
pub mod extra_vars;
pub mod images;
pub mod inventory;
pub mod playbook;
pub mod rsh;
pub mod sweep;
pub mod test;
pub mod vault;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

/// Raises the open-file limit to its hard maximum: each host holds a connection open for the
/// whole run, and a thousand hosts exceed the usual soft limit of 1024.
pub fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

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

/// Runs a command on a multi-threaded runtime and turns its result into the exit code.
/// Boxed rather than generic so the runtime is compiled once, here, and not again into
/// each binary for each command.
pub fn block_on(command: Pin<Box<dyn Future<Output = anyhow::Result<i32>> + '_>>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => exit(runtime.block_on(command)),
        Err(e) => {
            eprintln!("ERROR! could not start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

/// The exit code for a command's result (errors printed as ansible-playbook prints them).
pub fn exit(result: anyhow::Result<i32>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => fail(&e),
    }
}
