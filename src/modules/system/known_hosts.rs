//! `known_hosts`: a host's key added to (or removed from) an OpenSSH known_hosts file, as
//! ansible-core's module does it: a new key of a type the host already has replaces the old
//! one, `hash_host` writes the name hashed (`|1|salt|hash`), `absent` without a key removes
//! every line of the host. Pure file editing through the shared text edit.

use async_trait::async_trait;
use base64::Engine;

use crate::connection::known_hosts::{hmac_sha1, hosts_match};
use crate::connection::quote;
use crate::modules::files::edit::{edit_text, TextEdit, WhenAbsent};
use crate::modules::files::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct KnownHosts;

/// A known_hosts line's parts (marker lines such as `@revoked` are never touched).
#[derive(Debug, PartialEq)]
struct HostKey<'a> {
    hosts: &'a str,
    kind: &'a str,
    blob: &'a str,
}

fn split(line: &str) -> Option<HostKey<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
        return None;
    }
    let mut words = line.split_whitespace();
    Some(HostKey {
        hosts: words.next()?,
        kind: words.next()?,
        blob: words.next()?,
    })
}

/// The name as written in known_hosts: `[host]:port` for a port other than 22.
fn hashed_name(name: &str, salt: &[u8]) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    format!(
        "|1|{}|{}",
        engine.encode(salt),
        engine.encode(hmac_sha1(salt, name.as_bytes()))
    )
}

/// The file's new text. `key` is the whole supplied line; `salt` hashes the name when given.
pub fn edit(
    text: &str,
    name: &str,
    key: Option<&str>,
    present: bool,
    salt: Option<&[u8]>,
) -> String {
    let wanted = key.and_then(split);
    let mut lines: Vec<&str> = text.lines().collect();
    fn of_host<'l>(line: &'l str, name: &str) -> Option<HostKey<'l>> {
        split(line).filter(|k| hosts_match(name, k.hosts))
    }
    match (&wanted, present) {
        (Some(w), true) => {
            if lines
                .iter()
                .any(|l| of_host(l, name).is_some_and(|k| k.kind == w.kind && k.blob == w.blob))
            {
                return text.to_string();
            }
            // A key of the same type for the host is replaced.
            if let Some(at) = lines
                .iter()
                .position(|l| of_host(l, name).is_some_and(|k| k.kind == w.kind))
            {
                lines.remove(at);
            }
        }
        (Some(w), false) => lines
            .retain(|l| !of_host(l, name).is_some_and(|k| k.kind == w.kind && k.blob == w.blob)),
        (None, _) => lines.retain(|l| of_host(l, name).is_none()),
    }
    let mut out: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if let (Some(key), true) = (key, present) {
        let key = key.trim();
        match (salt, wanted.as_ref()) {
            (Some(salt), Some(w)) => {
                let rest = key[w.hosts.len()..].trim_start();
                out.push_str(&format!("{} {rest}\n", hashed_name(name, salt)));
            }
            _ => out.push_str(&format!("{key}\n")),
        }
    }
    if out == text || (out.is_empty() && text.trim().is_empty()) {
        return text.to_string();
    }
    out
}

/// Ansible's check that the supplied line is a key for `name`.
fn sanity_check(name: &str, key: &str) -> Result<(), String> {
    let Some(k) = split(key) else {
        return Err(format!("Invalid key specified: {key}"));
    };
    if hosts_match(name, k.hosts) {
        Ok(())
    } else if k.hosts.starts_with("|1|") {
        Err("Host parameter does not match hashed host field in supplied key".into())
    } else {
        Err("Host parameter does not match host field in supplied key".into())
    }
}

#[async_trait]
impl Module for KnownHosts {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name", "host"])?.to_lowercase();
        let key = args.str(&["key"])?;
        let path = args
            .str(&["path"])?
            .unwrap_or_else(|| "~/.ssh/known_hosts".into());
        let present = args.choice("state", &["present", "absent"], "present")? == "present";
        let hash_host = args.bool("hash_host", false)?;
        args.finish()?;
        if let Some(key) = &key {
            sanity_check(&name, key).map_err(ModuleError::Failed)?;
        } else if present {
            return Err(ModuleError::Failed(
                "No key specified when adding a host".into(),
            ));
        }
        // `~/` is the login (or become) user's home on the target; its directory is made
        // as Ansible makes it (0700) when a key is added.
        let file = match path.strip_prefix("~/") {
            Some(rest) => {
                let home = ctx
                    .run_ok("printf '%s' \"$HOME\"", None, "known_hosts")
                    .await?
                    .stdout_text();
                format!("{}/{rest}", home.trim_end_matches('/'))
            }
            None => path.clone(),
        };
        if present && !ctx.check_mode {
            if let Some((dir, _)) = file.rsplit_once('/').filter(|(d, _)| !d.is_empty()) {
                ctx.run_ok(
                    &format!("[ -d {d} ] || mkdir -m 700 -p {d}", d = quote(dir)),
                    None,
                    "known_hosts",
                )
                .await?;
            }
        }
        let mut salt = [0u8; 20];
        if hash_host {
            getrandom::getrandom(&mut salt)
                .map_err(|e| ModuleError::Failed(format!("known_hosts: no random salt: {e}")))?;
        }
        let result = edit_text(
            ctx,
            TextEdit {
                module: "known_hosts",
                path: file,
                absent: if present {
                    WhenAbsent::Create
                } else {
                    WhenAbsent::Skip("file not present")
                },
                attrs: Attributes::default(),
                backup: false,
                validate: None,
                follow: true,
            },
            |current| {
                let text = String::from_utf8_lossy(current);
                edit(
                    &text,
                    &name,
                    key.as_deref(),
                    present,
                    hash_host.then_some(&salt[..]),
                )
                .into_bytes()
            },
        )
        .await?;
        Ok(result
            .with("name", name.as_str())
            .with("key", key.map_or(minijinja::Value::from(()), Into::into))
            .with("path", path)
            .with("state", if present { "present" } else { "absent" })
            .with("hash_host", hash_host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n\
        git.example.com ssh-ed25519 AAAAold\n\
        git.example.com ssh-rsa AAAArsa\n\
        other ssh-ed25519 AAAAother\n";

    #[test]
    fn a_known_key_is_left_and_a_new_one_of_its_type_replaces_the_old() {
        let same = edit(
            FILE,
            "git.example.com",
            Some("git.example.com ssh-rsa AAAArsa"),
            true,
            None,
        );
        assert_eq!(same, FILE);
        let replaced = edit(
            FILE,
            "git.example.com",
            Some("git.example.com ssh-ed25519 AAAAnew"),
            true,
            None,
        );
        assert_eq!(
            replaced,
            "# comment\ngit.example.com ssh-rsa AAAArsa\nother ssh-ed25519 AAAAother\ngit.example.com ssh-ed25519 AAAAnew\n"
        );
    }

    #[test]
    fn absent_removes_one_key_or_the_whole_host() {
        let one = edit(
            FILE,
            "git.example.com",
            Some("git.example.com ssh-rsa AAAArsa"),
            false,
            None,
        );
        assert!(!one.contains("AAAArsa") && one.contains("AAAAold"));
        let all = edit(FILE, "git.example.com", None, false, None);
        assert_eq!(all, "# comment\nother ssh-ed25519 AAAAother\n");
    }

    #[test]
    fn hashed_names_match_and_are_written_hashed() {
        let salt = [7u8; 20];
        let out = edit(
            "",
            "[h]:2222",
            Some("[h]:2222 ssh-ed25519 AAAAk c"),
            true,
            Some(&salt),
        );
        assert!(out.starts_with("|1|"), "{out}");
        assert!(out.ends_with(" ssh-ed25519 AAAAk c\n"));
        // The hashed line is found again: a second run changes nothing.
        assert_eq!(
            edit(
                &out,
                "[h]:2222",
                Some("[h]:2222 ssh-ed25519 AAAAk c"),
                true,
                Some(&[9u8; 20])
            ),
            out
        );
    }

    #[test]
    fn the_key_must_name_the_host() {
        assert_eq!(
            sanity_check("a.example", "b.example ssh-ed25519 AAAA"),
            Err("Host parameter does not match host field in supplied key".into())
        );
        assert!(sanity_check("a.example", "a.example,1.2.3.4 ssh-ed25519 AAAA").is_ok());
    }
}
