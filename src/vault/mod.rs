//! ansible-vault's format 1.1 and 1.2: AES256 in CTR mode, keys from PBKDF2-SHA256 (10,000
//! iterations), an HMAC-SHA256 over the ciphertext, all hex-encoded under a
//! `$ANSIBLE_VAULT;1.1;AES256` (or `1.2;AES256;LABEL`) header.
//!
//! A leaf module: the YAML reader, the loader, the file modules and the `kiln vault` command
//! all decrypt through the process's [`Keyring`], which the CLI fills once from
//! `--vault-id`, `--vault-password-file`, `--ask-vault-pass` and the configuration
//! (`secrets.rs`). A label in a 1.2 header only chooses which password is tried first, as
//! in Ansible: it is not authenticated.

pub mod secrets;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use aes::cipher::{KeyIvInit, StreamCipher};
use pbkdf2::hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::Sha256;

/// What every vaulted text starts with.
pub const HEADER: &str = "$ANSIBLE_VAULT";
const CIPHER: &str = "AES256";
const ITERATIONS: u32 = 10_000;
const SALT_LEN: usize = 32;
/// The label of a password given without one (its vaults are written as format 1.1).
pub const DEFAULT_LABEL: &str = "default";

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// No password was given at all.
    #[error("Attempting to decrypt but no vault secrets found")]
    NoSecrets,
    /// None of the passwords opened it (a wrong password, or a tampered vault).
    #[error("Decryption failed (no vault secrets were found that could decrypt)")]
    NoMatchingSecret,
    #[error("Vault format error: {0}")]
    Format(&'static str),
    #[error("Cipher {0:?} could not be found")]
    UnknownCipher(String),
    #[error("input is already encrypted")]
    AlreadyEncrypted,
    #[error("input is not vault encrypted data")]
    NotEncrypted,
}

/// One vault password and the label (`--vault-id LABEL@SOURCE`) it was given under.
#[derive(Clone)]
pub struct Secret {
    pub label: String,
    password: Vec<u8>,
}

impl Secret {
    pub fn new(label: impl Into<String>, password: Vec<u8>) -> Self {
        Self {
            label: label.into(),
            password,
        }
    }
}

/// Never prints the password, whatever formats it.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.label)
    }
}

/// The vault passwords of one run, in the order they were given.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    secrets: Vec<Secret>,
}

impl Keyring {
    pub fn new(secrets: Vec<Secret>) -> Self {
        Self { secrets }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// Decrypts vaulted text: the password whose label the header names first, then the
    /// others in the order they were given.
    pub fn decrypt(&self, vaulttext: &str) -> Result<Vec<u8>, VaultError> {
        self.open(vaulttext).map(|(plain, _)| plain)
    }

    /// Decrypts and tells which password did it (an edited vault is written back with it).
    pub fn open(&self, vaulttext: &str) -> Result<(Vec<u8>, &Secret), VaultError> {
        let envelope = Envelope::parse(vaulttext)?;
        if self.secrets.is_empty() {
            return Err(VaultError::NoSecrets);
        }
        let payload = envelope.payload()?;
        let labelled = self
            .secrets
            .iter()
            .filter(|s| Some(s.label.as_str()) == envelope.label.as_deref());
        let others = self
            .secrets
            .iter()
            .filter(|s| Some(s.label.as_str()) != envelope.label.as_deref());
        labelled
            .chain(others)
            .find_map(|secret| {
                decrypt_with(&secret.password, &payload).map(|plain| (plain, secret))
            })
            .ok_or(VaultError::NoMatchingSecret)
    }
}

/// Whether text is vaulted (starts with the vault header, as Ansible checks it).
pub fn is_encrypted(text: &[u8]) -> bool {
    text.starts_with(HEADER.as_bytes())
}

/// The header and the hex body of vaulted text.
struct Envelope {
    label: Option<String>,
    body: String,
}

impl Envelope {
    fn parse(vaulttext: &str) -> Result<Envelope, VaultError> {
        let text = vaulttext.trim_start();
        if !is_encrypted(text.as_bytes()) {
            return Err(VaultError::NotEncrypted);
        }
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let fields: Vec<&str> = header.trim().split(';').map(str::trim).collect();
        if fields.len() < 3 {
            return Err(VaultError::Format("the header has too few fields"));
        }
        if fields[2] != CIPHER {
            return Err(VaultError::UnknownCipher(fields[2].to_string()));
        }
        let label = fields.get(3).map(|l| l.to_string());
        let body = lines.map(str::trim).collect();
        Ok(Envelope { label, body })
    }

    /// Salt, HMAC and ciphertext: the body is hex of "hex(salt)\nhex(hmac)\nhex(ciphertext)".
    fn payload(&self) -> Result<Payload, VaultError> {
        let inner = unhex(&self.body).ok_or(VaultError::Format("the body is not hex"))?;
        let inner =
            String::from_utf8(inner).map_err(|_| VaultError::Format("the body is not hex"))?;
        let mut parts = inner.splitn(3, '\n');
        let mut next = || {
            parts.next().and_then(unhex).ok_or(VaultError::Format(
                "the body lacks salt, HMAC or ciphertext",
            ))
        };
        Ok(Payload {
            salt: next()?,
            mac: next()?,
            ciphertext: next()?,
        })
    }
}

struct Payload {
    salt: Vec<u8>,
    mac: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// AES key, HMAC key and counter block from a password and salt.
fn derive_keys(password: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let derived: [u8; 80] = pbkdf2::pbkdf2_hmac_array::<Sha256, 80>(password, salt, ITERATIONS);
    let mut cipher_key = [0u8; 32];
    let mut mac_key = [0u8; 32];
    let mut iv = [0u8; 16];
    cipher_key.copy_from_slice(&derived[..32]);
    mac_key.copy_from_slice(&derived[32..64]);
    iv.copy_from_slice(&derived[64..]);
    (cipher_key, mac_key, iv)
}

fn new_mac(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// The plaintext, or None when this password does not open the vault.
fn decrypt_with(password: &[u8], payload: &Payload) -> Option<Vec<u8>> {
    let (cipher_key, mac_key, iv) = derive_keys(password, &payload.salt);
    let mut check = new_mac(&mac_key);
    check.update(&payload.ciphertext);
    check.verify_slice(&payload.mac).ok()?;
    let mut plain = payload.ciphertext.clone();
    Aes256Ctr::new(&cipher_key.into(), &iv.into()).apply_keystream(&mut plain);
    unpad(plain)
}

/// Strips PKCS#7 padding (Ansible pads even in CTR mode).
fn unpad(mut data: Vec<u8>) -> Option<Vec<u8>> {
    let pad = usize::from(*data.last()?);
    if pad == 0 || pad > 16 || pad > data.len() {
        return None;
    }
    if !data[data.len() - pad..]
        .iter()
        .all(|&b| usize::from(b) == pad)
    {
        return None;
    }
    data.truncate(data.len() - pad);
    Some(data)
}

/// Encrypts with a password and a random salt; the label goes into a 1.2 header unless it
/// is the default one. The text ends with a newline, as ansible-vault writes it.
pub fn encrypt(plaintext: &[u8], secret: &Secret) -> Result<String, VaultError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt).map_err(|_| VaultError::Format("no random salt"))?;
    Ok(encrypt_with_salt(plaintext, secret, &salt))
}

fn encrypt_with_salt(plaintext: &[u8], secret: &Secret, salt: &[u8]) -> String {
    let (cipher_key, mac_key, iv) = derive_keys(&secret.password, salt);
    let pad = 16 - plaintext.len() % 16;
    let mut data = plaintext.to_vec();
    data.resize(plaintext.len() + pad, pad as u8);
    Aes256Ctr::new(&cipher_key.into(), &iv.into()).apply_keystream(&mut data);
    let mut mac = new_mac(&mac_key);
    mac.update(&data);
    let tag = mac.finalize().into_bytes();
    let inner = format!("{}\n{}\n{}", hex(salt), hex(&tag), hex(&data));
    let body = hex(inner.as_bytes());
    let header = if secret.label.is_empty() || secret.label == DEFAULT_LABEL {
        format!("{HEADER};1.1;{CIPHER}")
    } else {
        format!("{HEADER};1.2;{CIPHER};{}", secret.label)
    };
    let mut out = header;
    for chunk in body.as_bytes().chunks(80) {
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out.push('\n');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The process's vault passwords: set once by the CLI before anything is loaded.
fn process_keyring() -> &'static Mutex<Keyring> {
    static KEYRING: OnceLock<Mutex<Keyring>> = OnceLock::new();
    KEYRING.get_or_init(Mutex::default)
}

static SHOW_CIPHERTEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Inline vault values stay encrypted and show as `{"__ansible_vault": CIPHERTEXT}`, as
/// ansible-inventory lists them.
pub fn show_ciphertext() {
    SHOW_CIPHERTEXT.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn shows_ciphertext() -> bool {
    SHOW_CIPHERTEXT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Makes these the passwords every vaulted file and value of this process is opened with.
pub fn install(keyring: Keyring) {
    *lock(process_keyring()) = keyring;
}

/// Decrypts with the process's passwords. Each vault is opened once per process: the key
/// derivation is slow by design, and a vars file is read again for every host.
pub fn decrypt(vaulttext: &str) -> Result<Vec<u8>, VaultError> {
    static OPENED: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let opened = OPENED.get_or_init(Mutex::default);
    if let Some(plain) = lock(opened).get(vaulttext) {
        return Ok(plain.clone());
    }
    let plain = lock(process_keyring()).decrypt(vaulttext)?;
    lock(opened).insert(vaulttext.to_string(), plain.clone());
    Ok(plain)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A file that could not be read or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("could not read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{source} on {}", path.display())]
    Vault { path: PathBuf, source: VaultError },
}

/// Reads a file Ansible would read through its vault: decrypted when vaulted, as is otherwise.
pub fn read_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_source(path, true)
}

/// A module's controller-side source file (`copy`/`script` `src`): decrypted when vaulted,
/// unless the task says `decrypt: false`.
pub fn read_source(path: &Path, decrypt: bool) -> Result<Vec<u8>, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if decrypt {
        decrypt_if_vaulted(bytes, path)
    } else {
        Ok(bytes)
    }
}

/// Decrypts file content when it is vaulted; `path` names it in an error.
pub fn decrypt_if_vaulted(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, ReadError> {
    if !is_encrypted(&bytes) {
        return Ok(bytes);
    }
    let vault_error = |source| ReadError::Vault {
        path: path.to_path_buf(),
        source,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| vault_error(VaultError::Format("the file is not text")))?;
    decrypt(text).map_err(vault_error)
}

#[cfg(test)]
mod tests;
