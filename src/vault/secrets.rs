//! Where vault passwords come from, as ansible-playbook and ansible-vault take them:
//! `--vault-id LABEL@SOURCE` (SOURCE a file, an executable that prints the password, or
//! `prompt`), `--vault-password-file`, `--ask-vault-pass`, and the configuration's
//! `vault_password_file` (ANSIBLE_VAULT_PASSWORD_FILE). A password is read here and kept
//! only in memory: never in an argument list, the environment or a file.

use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Keyring, Secret, DEFAULT_LABEL};

/// A password source that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("The vault password file {0} was not found")]
    NotFound(String),
    #[error("The vault password file provided '{0}' can not be a directory")]
    Directory(String),
    #[error("Could not read vault password file '{path}': {reason}")]
    Read {
        path: String,
        reason: std::io::Error,
    },
    #[error("Problem running vault password script {path} ({reason}). If this is not a script, remove the executable bit from the file.")]
    Run {
        path: String,
        reason: std::io::Error,
    },
    #[error("Vault password script {path} returned non-zero ({code}): {stderr}")]
    ScriptFailed {
        path: String,
        code: i32,
        stderr: String,
    },
    #[error(
        "Vault password client script {path} did not find a secret for vault-id={label}: {stderr}"
    )]
    UnknownLabel {
        path: String,
        label: String,
        stderr: String,
    },
    #[error("Invalid vault password was provided from {0}")]
    Empty(String),
    #[error("{0}")]
    Prompt(String),
    #[error("Passwords do not match")]
    Mismatch,
}

/// One `--vault-id` as given: a label and where its password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultId {
    pub label: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Asked on the terminal.
    Prompt,
    /// A file holding the password, or an executable printing it.
    File(String),
}

impl VaultId {
    /// `LABEL@SOURCE`, or a bare SOURCE under the default label.
    pub fn parse(text: &str) -> VaultId {
        let (label, source) = match text.split_once('@') {
            Some((label, source)) => (label, source),
            None => (DEFAULT_LABEL, text),
        };
        let source = match source {
            "prompt" | "prompt_ask_vault_pass" => Source::Prompt,
            file => Source::File(file.to_string()),
        };
        VaultId {
            label: label.to_string(),
            source,
        }
    }

    pub fn file(path: &Path) -> VaultId {
        VaultId {
            label: DEFAULT_LABEL.to_string(),
            source: Source::File(path.to_string_lossy().into_owned()),
        }
    }

    pub fn prompt() -> VaultId {
        VaultId {
            label: DEFAULT_LABEL.to_string(),
            source: Source::Prompt,
        }
    }
}

/// The vault options of one command line, in Ansible's order: `--vault-id`s, then
/// `--vault-password-file`s, then `--ask-vault-pass`; the configured file only when none
/// of these was given.
pub fn vault_ids(
    ids: &[String],
    password_files: &[std::path::PathBuf],
    ask: bool,
    configured_file: Option<&Path>,
) -> Vec<VaultId> {
    let mut out: Vec<VaultId> = ids.iter().map(|id| VaultId::parse(id)).collect();
    out.extend(password_files.iter().map(|f| VaultId::file(f)));
    if ask {
        out.push(VaultId::prompt());
    }
    if out.is_empty() {
        if let Some(file) = configured_file {
            out.push(VaultId::file(file));
        }
    }
    out
}

/// Reads every password (prompting on the terminal where asked).
pub fn load(ids: &[VaultId]) -> Result<Keyring, SecretError> {
    ids.iter()
        .map(|id| Ok(Secret::new(id.label.clone(), read_password(id, false)?)))
        .collect::<Result<Vec<_>, _>>()
        .map(Keyring::new)
}

/// Reads one password; `confirm` asks a prompted one twice (for a new password).
pub fn read_password(id: &VaultId, confirm: bool) -> Result<Vec<u8>, SecretError> {
    match &id.source {
        Source::Prompt => {
            let prompt = if id.label == DEFAULT_LABEL {
                "Vault password: ".to_string()
            } else {
                format!("Vault password ({}): ", id.label)
            };
            let first = prompt_hidden(&prompt)?;
            if confirm {
                let again = prompt_hidden(&format!("Confirm {}", lowercase_first(&prompt)))?;
                if again != first {
                    return Err(SecretError::Mismatch);
                }
            }
            let password = first.trim().as_bytes().to_vec();
            if password.is_empty() {
                return Err(SecretError::Empty("the prompt".into()));
            }
            Ok(password)
        }
        Source::File(path) => read_source_file(path, &id.label),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn read_source_file(path: &str, label: &str) -> Result<Vec<u8>, SecretError> {
    // Absolute, as Ansible makes it: a script named without a slash is not looked up in PATH.
    let expanded = std::path::absolute(expand_home(path))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| expand_home(path));
    let file = Path::new(&expanded);
    let meta = std::fs::metadata(file).map_err(|_| SecretError::NotFound(expanded.clone()))?;
    if meta.is_dir() {
        return Err(SecretError::Directory(expanded));
    }
    let password = if meta.permissions().mode() & 0o111 != 0 {
        run_script(&expanded, label)?
    } else {
        let bytes = std::fs::read(file).map_err(|reason| SecretError::Read {
            path: expanded.clone(),
            reason,
        })?;
        trim_ascii_whitespace(&bytes).to_vec()
    };
    if password.is_empty() {
        return Err(SecretError::Empty(format!("file ({expanded})")));
    }
    Ok(password)
}

/// Runs a password script; one named `*-client` (or `*-client.EXT`) is a client script
/// and is told the label with `--vault-id LABEL` (exit 2: it has no such secret).
fn run_script(path: &str, label: &str) -> Result<Vec<u8>, SecretError> {
    let stem = Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let client = stem.ends_with("-client");
    let mut command = Command::new(path);
    if client {
        command.args(["--vault-id", label]);
    }
    let output = command
        .stdin(Stdio::inherit())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(|reason| SecretError::Run {
            path: path.to_string(),
            reason,
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_string();
    match output.status.code() {
        Some(0) => Ok(trim_newlines(&output.stdout).to_vec()),
        Some(2) if client => Err(SecretError::UnknownLabel {
            path: path.to_string(),
            label: label.to_string(),
            stderr,
        }),
        code => Err(SecretError::ScriptFailed {
            path: path.to_string(),
            code: code.unwrap_or(-1),
            stderr,
        }),
    }
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

fn trim_ascii_whitespace(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A script's password loses only its surrounding line breaks (`strip(b'\r\n')`).
fn trim_newlines(bytes: &[u8]) -> &[u8] {
    let is_break = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = bytes
        .iter()
        .position(|b| !is_break(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_break(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Asks on the controlling terminal with echo off (for a vault password, and `-k`'s SSH
/// password); a password is never read from a pipe that was meant for something else.
pub fn prompt_hidden(prompt: &str) -> Result<String, SecretError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            SecretError::Prompt(format!("cannot prompt for a password: no terminal ({e})"))
        })?;
    // Echo goes off before the prompt shows: a password typed at once is not echoed.
    let echo = EchoOff::new(&tty);
    let mut writer = &tty;
    let _ = writer.write_all(prompt.as_bytes());
    let _ = writer.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    drop(echo);
    let _ = writer.write_all(b"\n");
    match read {
        Ok(0) => Err(SecretError::Prompt(format!(
            "EOFError (ctrl-d) on prompt for {}",
            prompt.trim_end_matches([':', ' '])
        ))),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => Err(SecretError::Prompt(format!(
            "cannot read the password: {e}"
        ))),
    }
}

/// Turns the terminal's echo off until dropped.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new(tty: &std::fs::File) -> EchoOff {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr only read and write the termios struct we own, on a
        // descriptor that stays open for this guard's lifetime.
        let saved = unsafe {
            let mut term: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut term) != 0 {
                None
            } else {
                let mut quiet = term;
                quiet.c_lflag &= !libc::ECHO;
                libc::tcsetattr(fd, libc::TCSANOW, &quiet);
                Some(term)
            }
        };
        EchoOff { fd, saved }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(term) = self.saved {
            // SAFETY: restores the settings read in `new` on the same open descriptor.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSANOW, &term);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_ids_parse_as_ansible_reads_them() {
        assert_eq!(
            VaultId::parse("prod@/etc/pw"),
            VaultId {
                label: "prod".into(),
                source: Source::File("/etc/pw".into())
            }
        );
        assert_eq!(VaultId::parse("dev@prompt").source, Source::Prompt);
        assert_eq!(VaultId::parse("pwfile").label, DEFAULT_LABEL);
    }

    #[test]
    fn the_configured_file_counts_only_without_options() {
        let cfg = Path::new("/cfg/pw");
        assert_eq!(
            vault_ids(&[], &[], false, Some(cfg)),
            vec![VaultId::file(cfg)]
        );
        let given = vault_ids(&["a@x".into()], &["y".into()], false, Some(cfg));
        assert_eq!(given.len(), 2);
        assert_eq!(given[0].label, "a");
    }

    #[test]
    fn password_files_and_scripts_are_trimmed_as_ansible_trims_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, " secret \n").unwrap();
        let pw = read_password(&VaultId::file(&file), false).unwrap();
        assert_eq!(pw, b"secret");

        let script = dir.path().join("pw-client.sh");
        std::fs::write(&script, "#!/bin/sh\nprintf ' %s\\n' \"$2\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let id = VaultId::parse(&format!("prod@{}", script.display()));
        assert_eq!(read_password(&id, false).unwrap(), b" prod");

        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            read_password(&VaultId::file(&file), false),
            Err(SecretError::Empty(_))
        ));
    }
}
