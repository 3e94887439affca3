//! known_hosts files read and judged as OpenSSH does (sshd(8), "SSH_KNOWN_HOSTS FILE
//! FORMAT"): comma-separated host patterns with `*`, `?` and `!` negation, hashed names
//! (`|1|salt|hash`), `[host]:port` off port 22, and the `@revoked` and `@cert-authority`
//! markers. A revoked key is refused whatever else the files say.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use russh::keys::PublicKey;
use sha1::{Digest, Sha1};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Marker {
    /// A host key.
    Plain,
    /// `@revoked`: this key must never be accepted.
    Revoked,
    /// `@cert-authority`: a CA for host certificates (kiln checks plain keys only).
    CertAuthority,
}

/// One line of a known_hosts file that applies to the host being checked.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    pub line: usize,
    pub marker: Marker,
    pub key: PublicKey,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Trusted,
    /// Marked `@revoked` (file, line): refused.
    Revoked(PathBuf, usize),
    /// Recorded with another key of the same type (file, line): refused.
    Changed(PathBuf, usize),
    Unknown,
}

/// The name a host is recorded under: `host`, or `[host]:port` off port 22.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The entries of `files` (in order; missing or unreadable files are skipped) whose host
/// patterns match `host` on `port`.
pub fn entries_for(host: &str, port: u16, files: &[PathBuf]) -> Vec<Entry> {
    let name = host_name(host, port).to_ascii_lowercase();
    let mut entries = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        // A stray non-UTF-8 byte (in a comment, say) must not hide the file's other lines.
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            let Some((marker, hosts, key)) = parse_line(line) else {
                continue;
            };
            if hosts_match(&name, hosts) {
                entries.push(Entry {
                    file: file.clone(),
                    line: index + 1,
                    marker,
                    key,
                });
            }
        }
    }
    entries
}

/// `[@marker] hosts keytype base64 [comment]`; None for comments, blank or malformed lines
/// and unknown markers (which OpenSSH also skips).
fn parse_line(line: &str) -> Option<(Marker, &str, PublicKey)> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut words = line.split_whitespace();
    let mut first = words.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::Plain,
    };
    if marker != Marker::Plain {
        first = words.next()?;
    }
    let key_type = words.next()?;
    let blob = words.next()?;
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}")).ok()?;
    Some((marker, first, key))
}

/// Whether `name` (lower case) matches a line's hosts field: one hashed name, or a
/// comma-separated pattern list where a matching negated pattern rules the line out.
pub fn hosts_match(name: &str, hosts: &str) -> bool {
    if let Some(hashed) = hosts.strip_prefix("|1|") {
        return hashed_match(name, hashed);
    }
    let mut positive = false;
    for pattern in hosts.split(',') {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard_match(name.as_bytes(), negated.as_bytes()) => return false,
            Some(_) => {}
            None => positive |= wildcard_match(name.as_bytes(), pattern.as_bytes()),
        }
    }
    positive
}

/// Shell-style matching with `*` (any run of characters) and `?` (one character).
fn wildcard_match(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| wildcard_match(&text[skip..], rest)),
        Some((&p, rest)) => match text.split_first() {
            Some((&t, text_rest)) if p == b'?' || p == t => wildcard_match(text_rest, rest),
            _ => false,
        },
    }
}

/// `salt|hash` (both base64): the HMAC-SHA1 of the name keyed with the salt.
fn hashed_match(name: &str, hashed: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    match (engine.decode(salt), engine.decode(hash)) {
        (Ok(salt), Ok(hash)) => hmac_sha1(&salt, name.as_bytes()).as_slice() == hash,
        _ => false,
    }
}

pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        padded[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha1::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    Sha1::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Judges a server's key by a host's entries, as OpenSSH does: a revoked key is refused
/// whatever else is recorded; any recorded plain key that matches is trusted (a host may
/// have several); otherwise a recorded key of the same type means the key changed.
pub fn judge(entries: &[Entry], key: &PublicKey) -> Verdict {
    let same = |e: &&Entry| e.key.key_data() == key.key_data();
    if let Some(revoked) = entries
        .iter()
        .filter(|e| e.marker == Marker::Revoked)
        .find(same)
    {
        return Verdict::Revoked(revoked.file.clone(), revoked.line);
    }
    let plain: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.marker == Marker::Plain)
        .collect();
    if plain.iter().any(same) {
        return Verdict::Trusted;
    }
    match plain.iter().find(|e| e.key.algorithm() == key.algorithm()) {
        Some(e) => Verdict::Changed(e.file.clone(), e.line),
        None => Verdict::Unknown,
    }
}

/// Records `key` for `host` at the end of `file` (accept-new), creating the file and its
/// directory (0700, as OpenSSH does for ~/.ssh) when missing. A new file starts with the
/// entry itself; an existing one that lacks a final newline gets one first.
pub fn learn(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
    }
    let mut handle = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(file)?;
    let mut last = [0u8; 1];
    let needs_newline = handle.seek(SeekFrom::End(-1)).is_ok()
        && handle.read_exact(&mut last).is_ok()
        && last[0] != b'\n';
    let key_text = key
        .to_openssh()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let line = format!(
        "{}{} {}\n",
        if needs_newline { "\n" } else { "" },
        host_name(host, port),
        key_text.trim()
    );
    handle.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMAWN1NWh8uZpJp2Y30QiLU27afJrwPu/4n8FlYoXceC";
    const NEW: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDHu+Rsml2AggMZqvcCjclx9lHISVRsQ2PxPFtBYn+LF";
    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBG02H+DDL85NH9IyB6tJrYO9TS0tp9hTS2klIL7VcWEEDZrAVkKsjKYPQ7e+NBlP8F3ybnKc4y7rUzLzGyh5LPM=";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    /// The verdict for `host:port` showing `shown`, with `text` as the only known_hosts file.
    fn verdict(text: &str, host: &str, port: u16, shown: &str) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, text).unwrap();
        match judge(&entries_for(host, port, &[file]), &key(shown)) {
            Verdict::Revoked(_, line) => Verdict::Revoked(PathBuf::new(), line),
            Verdict::Changed(_, line) => Verdict::Changed(PathBuf::new(), line),
            other => other,
        }
    }

    #[test]
    fn a_recorded_key_is_trusted_a_replaced_one_refused() {
        let text = format!("other {NEW}\nweb1 {OLD}\n");
        assert_eq!(verdict(&text, "web1", 22, OLD), Verdict::Trusted);
        assert_eq!(
            verdict(&text, "web1", 22, NEW),
            Verdict::Changed(PathBuf::new(), 2),
            "another Ed25519 key than the one on line 2"
        );
        assert_eq!(verdict(&text, "web1", 22, P256), Verdict::Unknown);
        let rotating = format!("web1 {OLD}\nweb1 {NEW}\n");
        assert_eq!(
            verdict(&rotating, "web1", 22, NEW),
            Verdict::Trusted,
            "any of a host's recorded keys (a key being rotated)"
        );
    }

    #[test]
    fn a_stray_byte_does_not_hide_the_rest_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            [&b"# caf\xe9\n"[..], format!("web1 {OLD}\n").as_bytes()].concat(),
        )
        .unwrap();
        assert_eq!(
            judge(&entries_for("web1", 22, &[file]), &key(OLD)),
            Verdict::Trusted
        );
    }

    #[test]
    fn a_revoked_key_is_refused_even_where_it_is_also_recorded() {
        let text = format!("web1 {OLD}\n# comment\n@revoked * {OLD}\n");
        assert_eq!(
            verdict(&text, "web1", 22, OLD),
            Verdict::Revoked(PathBuf::new(), 3)
        );
        assert_eq!(
            verdict(
                &format!("@revoked db* {OLD}\nweb1 {OLD}\n"),
                "web1",
                22,
                OLD
            ),
            Verdict::Trusted,
            "a revocation applies to the hosts its patterns match"
        );
        assert_eq!(
            verdict(&format!("@revoked web1 {OLD}\n"), "web1", 22, NEW),
            Verdict::Unknown,
            "a revoked key is not a recorded key of its type"
        );
        assert_eq!(
            verdict(&format!("@cert-authority * {OLD}\n"), "web1", 22, OLD),
            Verdict::Unknown,
            "a CA key is not a host key"
        );
    }

    #[test]
    fn host_patterns_wildcards_negation_and_ports() {
        let matches = |name: &str, hosts: &str| hosts_match(name, hosts);
        assert!(matches("127.88.0.1", "127.88.*"));
        assert!(!matches("127.89.0.1", "127.88.*"));
        assert!(matches("web1", "web?"));
        assert!(!matches("web12", "web?"));
        assert!(matches("web1.example.com", "db,*.example.com"));
        assert!(!matches("bad.example.com", "*.example.com,!bad.*"));
        assert!(
            !matches("bad.example.com", "!bad.*,*.example.com"),
            "a negated match rules the line out wherever it stands"
        );
        assert!(!matches("web1", "!db"), "negation alone matches nothing");
        assert!(matches("web1", "WEB1"), "names compare without case");
        assert!(matches("[web1]:2222", "[web1]:2222"));
        assert!(matches("[web1]:2222", "[web?]:2222"));
        assert!(
            !matches("[web1]:2222", "web1"),
            "another port, another name"
        );
        let text = format!("127.88.* {OLD}\n[127.88.0.1]:2222 {NEW}\n");
        assert_eq!(verdict(&text, "127.88.0.9", 22, OLD), Verdict::Trusted);
        assert_eq!(verdict(&text, "127.88.0.1", 2222, NEW), Verdict::Trusted);
        assert_eq!(verdict(&text, "127.88.0.9", 2222, OLD), Verdict::Unknown);
    }

    #[test]
    fn hashed_names_match_as_ssh_keygen_hashes_them() {
        // `ssh-keygen -H` of "web1" and of "[web1]:2222".
        let text = format!(
            "|1|hDlpo/cbLXKKGW3DcLyEcGwiHmw=|dZ5JMeSwdSLE93U8XogKXnOWd0g= {OLD}\n|1|h1N8aGAvQFa8ChJddy45tGrbfek=|SoutcEcJghbr7ddiCvNj/A5XFRY= {NEW}\n"
        );
        assert_eq!(verdict(&text, "web1", 22, OLD), Verdict::Trusted);
        assert_eq!(verdict(&text, "web1", 2222, NEW), Verdict::Trusted);
        assert_eq!(verdict(&text, "web2", 22, OLD), Verdict::Unknown);
    }

    #[test]
    fn learning_a_key_writes_no_blank_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("new/.ssh/known_hosts");
        learn(&file, "web1", 22, &key(OLD)).unwrap();
        learn(&file, "web2", 2222, &key(NEW)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("web1 {OLD}\n[web2]:2222 {NEW}\n")
        );
        std::fs::write(&file, format!("web1 {OLD}")).unwrap();
        learn(&file, "web2", 22, &key(NEW)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("web1 {OLD}\nweb2 {NEW}\n"),
            "a file without a final newline gets one before the new line"
        );
    }
}
