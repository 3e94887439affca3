//! `kiln __rsh SOCKET [-l USER] HOST COMMAND...`: the shell rsync starts for `synchronize`
//! (its `--rsh`). Instead of logging in anywhere it hands COMMAND (joined with spaces, as
//! `ssh` joins its arguments) to the `synchronize` module waiting on SOCKET, a private Unix
//! socket, as one JSON line, and then copies its stdin to the socket and the socket to its
//! stdout: the module runs COMMAND over kiln's own connection to the host.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

/// The argument that makes either binary this shim.
pub const SHIM_ARG: &str = "__rsh";

/// Runs the shim when the process was started as one (`argv[1] == __rsh`).
pub fn intercept() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    (args.get(1).map(String::as_str) == Some(SHIM_ARG)).then(|| run(&args[2..]))
}

fn run(args: &[String]) -> ExitCode {
    let Some((socket, rest)) = args.split_first() else {
        eprintln!("kiln {SHIM_ARG}: usage: kiln {SHIM_ARG} SOCKET [-l USER] HOST COMMAND...");
        return ExitCode::from(255);
    };
    let command = remote_command(rest);
    match bridge(socket, &command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln {SHIM_ARG}: {e}");
            ExitCode::from(255)
        }
    }
}

/// The command rsync asks for: what follows the host (and ssh's `-l USER` before it).
fn remote_command(args: &[String]) -> String {
    let mut rest = args;
    while let [flag, _, tail @ ..] = rest {
        if flag != "-l" {
            break;
        }
        rest = tail;
    }
    rest.get(1..).unwrap_or_default().join(" ")
}

fn bridge(socket: &str, command: &str) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    let line = serde_json::to_string(command)?;
    stream.write_all(line.as_bytes())?;
    stream.write_all(b"\n")?;
    let mut upstream = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if upstream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = upstream.shutdown(std::net::Shutdown::Write);
    });
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::remote_command;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_host_and_login_are_dropped_and_the_command_kept() {
        assert_eq!(
            remote_command(&words(
                "-l kiln kiln-target rsync --server -logDtpre.iLsfxCIvu . /srv/"
            )),
            "rsync --server -logDtpre.iLsfxCIvu . /srv/"
        );
        assert_eq!(
            remote_command(&words("kiln-target rsync --server --sender . /etc/")),
            "rsync --server --sender . /etc/"
        );
    }
}
