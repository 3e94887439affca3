//! `kiln vault`: ansible-vault's `encrypt`, `decrypt`, `view`, `edit`, `create`,
//! `encrypt_string` and `rekey`, with its flags, reading and writing its format; and the
//! vault passwords of a playbook run. Plaintext goes only where the user sends it (the file
//! decrypted in place, `--output`, stdout); `edit` works on a private temporary file that
//! is overwritten and removed afterwards.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};

use crate::load::config::AnsibleConfig;
use crate::vault::secrets::{self, VaultId};
use crate::vault::{Keyring, Secret};

/// The password options every vault subcommand and ansible-playbook take.
#[derive(Debug, Args, Clone, Default)]
pub struct PasswordArgs {
    /// LABEL@SOURCE: a password file, an executable printing it, or `prompt` (repeatable).
    #[arg(long = "vault-id")]
    pub vault_id: Vec<String>,
    /// A file holding the password, or an executable printing it (repeatable).
    #[arg(long = "vault-password-file", visible_alias = "vault-pass-file")]
    pub vault_password_file: Vec<PathBuf>,
    /// Ask for the vault password on the terminal.
    #[arg(
        short = 'J',
        long = "ask-vault-pass",
        visible_alias = "ask-vault-password"
    )]
    pub ask_vault_pass: bool,
}

impl PasswordArgs {
    fn ids(&self, config: &AnsibleConfig) -> Vec<VaultId> {
        secrets::vault_ids(
            &self.vault_id,
            &self.vault_password_file,
            self.ask_vault_pass,
            config.vault_password_file.as_deref(),
        )
    }
}

/// Reads a playbook run's vault passwords and makes them the process's, before anything is
/// loaded (vaulted files are decrypted as they are read).
pub fn install_run_keyring(passwords: &PasswordArgs, config: &AnsibleConfig) -> anyhow::Result<()> {
    crate::vault::install(secrets::load(&passwords.ids(config))?);
    Ok(())
}

#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub action: VaultAction,
}

#[derive(Debug, Subcommand)]
pub enum VaultAction {
    /// Encrypt files in place (or `-`: stdin to stdout).
    Encrypt {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[command(flatten)]
        target: EncryptTarget,
        /// Write to this file instead (`-` for stdout).
        #[arg(long = "output")]
        output: Option<String>,
        files: Vec<String>,
    },
    /// Decrypt files in place (or `-`: stdin to stdout).
    Decrypt {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[arg(long = "output")]
        output: Option<String>,
        files: Vec<String>,
    },
    /// Print the plaintext of vaulted files.
    View {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Edit a vaulted file in $EDITOR, re-encrypting it with the password that opened it.
    Edit {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[command(flatten)]
        target: EncryptTarget,
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Create a new vaulted file in $EDITOR.
    Create {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[command(flatten)]
        target: EncryptTarget,
        file: String,
    },
    /// Encrypt strings as `!vault` YAML values (`-` reads stdin).
    #[command(name = "encrypt_string", visible_alias = "encrypt-string")]
    EncryptString {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[command(flatten)]
        target: EncryptTarget,
        #[arg(long = "output")]
        output: Option<String>,
        /// Variable names for the strings, in order.
        #[arg(short = 'n', long = "name")]
        names: Vec<String>,
        /// The variable name for the string read from stdin.
        #[arg(long = "stdin-name")]
        stdin_name: Option<String>,
        /// Ask for the string on the terminal.
        #[arg(short = 'p', long = "prompt")]
        prompt: bool,
        strings: Vec<String>,
    },
    /// Re-encrypt vaulted files with a new password.
    Rekey {
        #[command(flatten)]
        passwords: PasswordArgs,
        #[command(flatten)]
        target: EncryptTarget,
        /// The new password's file (or executable).
        #[arg(long = "new-vault-password-file")]
        new_password_file: Option<PathBuf>,
        /// The new LABEL@SOURCE.
        #[arg(long = "new-vault-id")]
        new_vault_id: Option<String>,
        #[arg(required = true)]
        files: Vec<String>,
    },
}

/// Which password encrypts, when several are given.
#[derive(Debug, Args, Clone, Default)]
pub struct EncryptTarget {
    /// The vault id (label) to encrypt with.
    #[arg(long = "encrypt-vault-id")]
    pub encrypt_vault_id: Option<String>,
}

pub fn run(args: VaultArgs) -> anyhow::Result<i32> {
    let config = AnsibleConfig::discover();
    match args.action {
        VaultAction::Encrypt {
            passwords,
            target,
            output,
            files,
        } => {
            let secret = encrypting_secret(&passwords, &target, &config)?;
            for file in inputs(&files) {
                let plain = read_input(&file)?;
                if crate::vault::is_encrypted(&plain) {
                    bail!("input is already encrypted");
                }
                encrypt_to(output.as_deref().unwrap_or(&file), &plain, &secret)?;
            }
            success("Encryption successful");
        }
        VaultAction::Decrypt {
            passwords,
            output,
            files,
        } => {
            let keyring = opening_keyring(&passwords, &config)?;
            for file in inputs(&files) {
                let (plain, _) = open_input(&keyring, &file)?;
                write_output(output.as_deref().unwrap_or(&file), &plain)?;
            }
            success("Decryption successful");
        }
        VaultAction::View { passwords, files } => {
            let keyring = opening_keyring(&passwords, &config)?;
            let mut stdout = std::io::stdout().lock();
            for file in files {
                let (plain, _) = open_input(&keyring, &file)?;
                stdout.write_all(&plain)?;
            }
            stdout.flush()?;
        }
        VaultAction::Edit {
            passwords,
            target: _,
            files,
        } => {
            let keyring = opening_keyring(&passwords, &config)?;
            for file in files {
                let (plain, secret) = open_input(&keyring, &file)?;
                if let Some(edited) = edit_privately(&plain)? {
                    encrypt_to(&file, &edited, &secret)?;
                }
            }
        }
        VaultAction::Create {
            passwords,
            target,
            file,
        } => {
            if Path::new(&file).exists() {
                bail!("{file} exists, please use 'edit' instead");
            }
            let secret = encrypting_secret(&passwords, &target, &config)?;
            let edited = edit_privately(b"")?.unwrap_or_default();
            encrypt_to(&file, &edited, &secret)?;
        }
        VaultAction::EncryptString {
            passwords,
            target,
            output,
            names,
            stdin_name,
            prompt,
            strings,
        } => {
            let secret = encrypting_secret(&passwords, &target, &config)?;
            let plaintexts = strings_to_encrypt(&names, stdin_name, prompt, &strings)?;
            let mut out = String::new();
            for (name, plain) in &plaintexts {
                let text = crate::vault::encrypt(plain, &secret)?;
                out.push_str(&yaml_block(name.as_deref(), &text));
                out.push('\n');
            }
            write_output(output.as_deref().unwrap_or("-"), out.as_bytes())?;
            success("Encryption successful");
        }
        VaultAction::Rekey {
            passwords,
            target: _,
            new_password_file,
            new_vault_id,
            files,
        } => {
            let keyring = opening_keyring(&passwords, &config)?;
            let new_id = match (new_vault_id, new_password_file) {
                (Some(id), _) => VaultId::parse(&id),
                (None, Some(file)) => VaultId::file(&file),
                (None, None) => VaultId::prompt(),
            };
            let new_secret = Secret::new(
                new_id.label.clone(),
                read_new_password(&new_id, "New Vault password: ")?,
            );
            for file in &files {
                let (plain, _) = open_input(&keyring, file)?;
                encrypt_to(file, &plain, &new_secret)?;
            }
            eprintln!("Rekey successful");
        }
    }
    Ok(0)
}

/// "- " alone, or no files at all: stdin.
fn inputs(files: &[String]) -> Vec<String> {
    if files.is_empty() {
        vec!["-".to_string()]
    } else {
        files.to_vec()
    }
}

fn success(message: &str) {
    if std::io::stdout().is_terminal() {
        eprintln!("{message}");
    }
}

/// The passwords that may open a vault (prompting when no option names any).
fn opening_keyring(passwords: &PasswordArgs, config: &AnsibleConfig) -> anyhow::Result<Keyring> {
    let mut ids = passwords.ids(config);
    if ids.is_empty() {
        ids.push(VaultId::prompt());
    }
    Ok(secrets::load(&ids)?)
}

/// The one password that encrypts: `--encrypt-vault-id`'s, the only one given, or a new
/// one asked twice on the terminal.
fn encrypting_secret(
    passwords: &PasswordArgs,
    target: &EncryptTarget,
    config: &AnsibleConfig,
) -> anyhow::Result<Secret> {
    let ids = passwords.ids(config);
    let id = match (&target.encrypt_vault_id, ids.as_slice()) {
        (Some(label), _) => ids
            .iter()
            .find(|id| &id.label == label)
            .cloned()
            .ok_or_else(|| {
                anyhow!("Did not find a match for --encrypt-vault-id={label} in the known vault-ids")
            })?,
        (None, []) => {
            let id = VaultId::prompt();
            return Ok(Secret::new(
                id.label.clone(),
                read_new_password(&id, "New Vault password: ")?,
            ));
        }
        (None, [only]) => only.clone(),
        (None, several) => bail!(
            "The vault-ids {} are available to encrypt. Specify the vault-id to encrypt with --encrypt-vault-id",
            several
                .iter()
                .map(|id| id.label.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    Ok(Secret::new(
        id.label.clone(),
        secrets::read_password(&id, true)?,
    ))
}

/// A new password: from its file, or asked twice on the terminal.
fn read_new_password(id: &VaultId, prompt: &str) -> anyhow::Result<Vec<u8>> {
    if id.source != secrets::Source::Prompt {
        return Ok(secrets::read_password(id, false)?);
    }
    let first = secrets::prompt_hidden(prompt)?;
    let again = secrets::prompt_hidden(&format!("Confirm {prompt}"))?;
    if first != again {
        bail!("Passwords do not match");
    }
    let password = first.trim().as_bytes().to_vec();
    if password.is_empty() {
        bail!("Invalid vault password was provided from the prompt");
    }
    Ok(password)
}

fn read_input(file: &str) -> anyhow::Result<Vec<u8>> {
    if file == "-" {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        return Ok(data);
    }
    std::fs::read(file).with_context(|| format!("Unable to read source file ({file})"))
}

/// Decrypts one input; the error names it as ansible-vault does.
fn open_input(keyring: &Keyring, file: &str) -> anyhow::Result<(Vec<u8>, Secret)> {
    let data = read_input(file)?;
    let name = if file == "-" { "<stdin>" } else { file };
    if !crate::vault::is_encrypted(&data) {
        bail!("input is not vault encrypted data for {name}");
    }
    let text = std::str::from_utf8(&data)
        .map_err(|_| anyhow!("Vault format error: the file is not text for {name}"))?;
    let (plain, secret) = keyring.open(text).map_err(|e| anyhow!("{e} for {name}"))?;
    Ok((plain, secret.clone()))
}

fn encrypt_to(dest: &str, plain: &[u8], secret: &Secret) -> anyhow::Result<()> {
    let text = crate::vault::encrypt(plain, secret)?;
    write_output(dest, text.as_bytes())
}

/// Writes to stdout (`-`) or replaces a file atomically: a new file is private (0600), an
/// existing one keeps its mode.
fn write_output(dest: &str, data: &[u8]) -> anyhow::Result<()> {
    if dest == "-" {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(data)?;
        stdout.flush()?;
        return Ok(());
    }
    let path = Path::new(dest);
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", crate::util::random_id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(anyhow!("Destination '{dest}' not writable: {e}"));
    }
    Ok(())
}

/// Opens the plaintext in $EDITOR in a private directory; returns the new text when it
/// changed. The file is overwritten with zeros and removed whatever happens.
fn edit_privately(plain: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let dir = std::env::temp_dir().join(format!("kiln-vault-{}", crate::util::random_id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("could not create {}", dir.display()))?;
    let file = dir.join("vault.yml");
    let result = (|| -> anyhow::Result<Option<Vec<u8>>> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)?
            .write_all(plain)?;
        let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".to_string());
        let mut words = crate::shell::split_words(&editor);
        if words.is_empty() {
            words.push("vi".to_string());
        }
        let status = std::process::Command::new(&words[0])
            .args(&words[1..])
            .arg(&file)
            .status()
            .with_context(|| format!("Unable to execute the command \"{editor}\""))?;
        if !status.success() {
            bail!("the editor \"{editor}\" exited with {status}; the vault is unchanged");
        }
        let edited = std::fs::read(&file)?;
        Ok((edited != plain).then_some(edited))
    })();
    shred(&file);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Overwrites a file's content before it is removed.
fn shred(file: &Path) {
    if let Ok(meta) = std::fs::metadata(file) {
        if let Ok(mut handle) = std::fs::OpenOptions::new().write(true).open(file) {
            let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
            let _ = handle.write_all(&zeros);
            let _ = handle.sync_all();
        }
    }
    let _ = std::fs::remove_file(file);
}

/// The strings `encrypt_string` encrypts, with their variable names: the prompt's, stdin's
/// (`-` or `--stdin-name`), then the arguments matched to `--name`s in order.
fn strings_to_encrypt(
    names: &[String],
    stdin_name: Option<String>,
    prompt: bool,
    strings: &[String],
) -> anyhow::Result<Vec<(Option<String>, Vec<u8>)>> {
    let mut out = Vec::new();
    if prompt {
        let text = secrets::prompt_hidden("String to encrypt (hidden): ")?;
        if text.is_empty() {
            bail!("The plaintext provided from the prompt was empty, not encrypting");
        }
        out.push((names.first().cloned(), text.into_bytes()));
    }
    let read_stdin = strings.iter().any(|s| s == "-") || stdin_name.is_some();
    if read_stdin {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text)?;
        if text.is_empty() {
            bail!("stdin was empty, not encrypting");
        }
        out.push((stdin_name, text));
    }
    let args: Vec<&String> = strings.iter().filter(|s| s.as_str() != "-").collect();
    if args.len() > names.len() && !names.is_empty() {
        eprintln!("The number of --name options do not match the number of args.");
        if let Some(last) = names.last() {
            eprintln!("The last named variable will be \"{last}\". The rest will not have names.");
        }
    }
    for (i, text) in args.into_iter().enumerate() {
        if text.is_empty() {
            bail!("The plaintext provided from the command line args was empty, not encrypting");
        }
        out.push((names.get(i).cloned(), text.as_bytes().to_vec()));
    }
    if out.len() > 1 {
        for (i, (name, _)) in out.iter().enumerate() {
            match name {
                Some(name) => eprintln!(
                    "# The encrypted version of variable (\"{name}\", the string #{}).",
                    i + 1
                ),
                None => eprintln!("# The encrypted version of the string #{}.", i + 1),
            }
        }
    }
    Ok(out)
}

/// `name: !vault |` and the vaulted text indented by ten spaces, as ansible-vault prints it.
fn yaml_block(name: Option<&str>, vaulttext: &str) -> String {
    let mut out = match name {
        Some(name) => format!("{name}: !vault |"),
        None => "!vault |".to_string(),
    };
    for line in vaulttext.lines() {
        out.push('\n');
        out.push_str("          ");
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yaml_block_is_indented_as_ansible_vault_prints_it() {
        let text = "$ANSIBLE_VAULT;1.1;AES256\nabcd\n";
        assert_eq!(
            yaml_block(Some("pw"), text),
            "pw: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          abcd"
        );
        assert!(yaml_block(None, text).starts_with("!vault |\n"));
    }

    #[test]
    fn strings_take_their_names_in_order() {
        let got =
            strings_to_encrypt(&["a".into()], None, false, &["one".into(), "two".into()]).unwrap();
        assert_eq!(got[0], (Some("a".into()), b"one".to_vec()));
        assert_eq!(got[1], (None, b"two".to_vec()));
    }
}
