//! `authorized_key`: SSH public keys in (or out of) a user's authorized_keys, keys compared
//! by type and key material so options and comments can change in place.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::write::{converge_from, probe, Attributes, WriteRequest};
use crate::modules::util::Mode;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct AuthorizedKey;

const KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-ed25519",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
];

/// A key line split into options, type, key material and comment.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyLine {
    pub options: Option<String>,
    pub kind: String,
    pub blob: String,
    pub comment: Option<String>,
}

impl KeyLine {
    pub fn parse(line: &str) -> Option<KeyLine> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| KEY_TYPES.contains(w))?;
        let options = (at > 0).then(|| words[..at].join(" "));
        Some(KeyLine {
            options,
            kind: words[at].to_string(),
            blob: words.get(at + 1)?.to_string(),
            comment: (words.len() > at + 2).then(|| words[at + 2..].join(" ")),
        })
    }

    fn same_key(&self, other: &KeyLine) -> bool {
        self.kind == other.kind && self.blob == other.blob
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(o) = &self.options {
            out.push_str(o);
            out.push(' ');
        }
        out.push_str(&self.kind);
        out.push(' ');
        out.push_str(&self.blob);
        if let Some(c) = &self.comment {
            out.push(' ');
            out.push_str(c);
        }
        out
    }
}

/// The file's new text with `keys` present (or absent); `exclusive` drops all others.
pub fn edit(text: &str, keys: &[KeyLine], present: bool, exclusive: bool) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        match KeyLine::parse(line) {
            Some(existing) => {
                let wanted = keys.iter().find(|k| k.same_key(&existing));
                match (wanted, present) {
                    (Some(k), true) => lines.push(k.render()),
                    (Some(_), false) => {}
                    (None, _) if exclusive && present => {}
                    (None, _) => lines.push(line.to_string()),
                }
            }
            None => lines.push(line.to_string()),
        }
    }
    if present {
        for key in keys {
            let there = text
                .lines()
                .filter_map(KeyLine::parse)
                .any(|existing| key.same_key(&existing));
            if !there {
                lines.push(key.render());
            }
        }
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}

#[async_trait]
impl Module for AuthorizedKey {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let user = args.required_str(&["user"])?;
        let key_text = args.required_str(&["key"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let path = args.str(&["path"])?;
        let manage_dir = args.bool("manage_dir", true)?;
        let exclusive = args.bool("exclusive", false)?;
        let key_options = args.str(&["key_options"])?;
        let comment = args.str(&["comment"])?;
        let _ = args.raw_any(&["follow", "validate_certs"]);
        args.finish()?;
        if key_text.starts_with("http://") || key_text.starts_with("https://") {
            return Err(ModuleError::Args(
                "authorized_key: keys from URLs are not supported by kiln; use a lookup('file', …) or the key text".into(),
            ));
        }
        let mut keys = Vec::new();
        for line in key_text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        {
            let mut key = KeyLine::parse(line).ok_or_else(|| {
                ModuleError::Args(format!("authorized_key: invalid key specified: {line}"))
            })?;
            if key_options.is_some() {
                key.options = key_options.clone();
            }
            if comment.is_some() {
                key.comment = comment.clone();
            }
            keys.push(key);
        }
        let entry = ctx
            .run(&format!("getent passwd {}", quote(&user)), None)
            .await?
            .stdout_text();
        let fields: Vec<&str> = entry.trim().split(':').collect();
        if fields.len() < 7 && ctx.check_mode {
            // An earlier task (`user`) would have created the account.
            return Ok(ModuleResult::changed(true).with_msg(format!(
                "user {user} not found; assuming an earlier task would create it"
            )));
        }
        if fields.len() < 7 {
            return Err(ModuleError::Failed(format!(
                "authorized_key: user {user} does not exist on the host"
            )));
        }
        let home = fields[5];
        let file = path.unwrap_or_else(|| format!("{home}/.ssh/authorized_keys"));
        let (state_now, content) = probe(ctx, &file, Some(8 * 1024 * 1024)).await?;
        let current = content
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let updated = edit(&current, &keys, state == "present", exclusive);
        if !state_now.exists && state == "absent" {
            return Ok(ModuleResult::changed(false).with("user", user.as_str()));
        }
        let dir = crate::modules::files::write::parent_dir(&file);
        if manage_dir && !ctx.check_mode && !state_now.exists {
            ctx.run_ok(
                &format!(
                    "[ -d {d} ] || {{ mkdir -p {d} && chown {u}: {d} && chmod 700 {d}; }}",
                    d = quote(&dir),
                    u = quote(&user)
                ),
                None,
                "creating the .ssh directory",
            )
            .await?;
        }
        let before = ctx.diff.then(|| current.clone().into_bytes());
        let result = converge_from(
            ctx,
            WriteRequest {
                dest: file.clone(),
                content: updated.into_bytes(),
                attrs: Attributes {
                    mode: Some(Mode::Octal(0o600)),
                    owner: Some(user.clone()),
                    group: None,
                },
                backup: false,
                validate: None,
                force: true,
            },
            state_now,
            before,
        )
        .await?;
        Ok(result
            .with("user", user.as_str())
            .with("key", key_text)
            .with("keyfile", file)
            .with("exclusive", exclusive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_by_material_and_update_in_place() {
        let k = KeyLine::parse("ssh-ed25519 AAAA1 alice@laptop").unwrap();
        let file = "# keys\nssh-ed25519 AAAA1 old-comment\nssh-rsa BBBB bob\n";
        assert_eq!(
            edit(file, std::slice::from_ref(&k), true, false),
            "# keys\nssh-ed25519 AAAA1 alice@laptop\nssh-rsa BBBB bob\n"
        );
        assert_eq!(
            edit(file, std::slice::from_ref(&k), true, true),
            "# keys\nssh-ed25519 AAAA1 alice@laptop\n"
        );
        assert_eq!(
            edit(file, std::slice::from_ref(&k), false, false),
            "# keys\nssh-rsa BBBB bob\n"
        );
        assert_eq!(
            edit("", &[k], true, false),
            "ssh-ed25519 AAAA1 alice@laptop\n"
        );
        let opt = KeyLine::parse("no-pty,from=\"10.0.0.1\" ssh-rsa CCCC").unwrap();
        assert_eq!(opt.options.as_deref(), Some("no-pty,from=\"10.0.0.1\""));
    }
}
