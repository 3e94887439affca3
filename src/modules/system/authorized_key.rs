//! `authorized_key`: SSH public keys in (or out of) a user's authorized_keys, keys compared
//! by type and key material so options and comments can change in place.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::edit::{edit_text, Line, Lines, TextEdit, WhenAbsent};
use crate::modules::files::write::{parent_dir, Attributes};
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

/// The file's new bytes with `keys` present (or absent); `exclusive` drops all others. Lines
/// that are not keys, or not UTF-8, keep their bytes; every line keeps its line ending.
pub fn edit(bytes: &[u8], keys: &[KeyLine], present: bool, exclusive: bool) -> Vec<u8> {
    let mut file = Lines::parse(bytes);
    let existing: Vec<Option<KeyLine>> = file
        .lines
        .iter()
        .map(|l| std::str::from_utf8(&l.text).ok().and_then(KeyLine::parse))
        .collect();
    let mut kept = Vec::new();
    for (line, parsed) in file.lines.drain(..).zip(&existing) {
        let Some(parsed) = parsed else {
            kept.push(line);
            continue;
        };
        match (keys.iter().find(|k| k.same_key(parsed)), present) {
            (Some(k), true) => kept.push(Line {
                text: k.render().into_bytes(),
                end: line.end,
            }),
            (Some(_), false) => {}
            (None, _) if exclusive && present => {}
            (None, _) => kept.push(line),
        }
    }
    file.lines = kept;
    if present {
        let missing = keys
            .iter()
            .filter(|k| !existing.iter().flatten().any(|e| k.same_key(e)))
            .map(|k| k.render().into_bytes())
            .collect();
        let end = file.lines.len();
        file.insert(end, missing);
    }
    file.to_bytes()
}

#[async_trait]
impl Module for AuthorizedKey {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let user = args.required_str(&["user"])?;
        let key_text = args.required_str(&["key"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let path = args.path(ctx, &["path"]).await?;
        let manage_dir = args.bool("manage_dir", true)?;
        let exclusive = args.bool("exclusive", false)?;
        let key_options = args.str(&["key_options"])?;
        let comment = args.str(&["comment"])?;
        let follow = args.bool("follow", false)?;
        let _ = args.raw_any(&["validate_certs"]);
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
        let dir = parent_dir(&file);
        // A linked key directory (say ~/.ssh → /etc, planted by the user) would lead the
        // write, and the owner and mode that follow it, elsewhere: refused unless followed.
        let d = quote(&dir);
        let create = if manage_dir && !ctx.check_mode {
            format!(
                " elif [ ! -e {d} ]; then mkdir -p -m 700 -- {d} && chown -h {}: {d};",
                quote(&user)
            )
        } else {
            String::new()
        };
        let out = ctx
            .run_ok(
                &format!("if [ -L {d} ]; then echo link;{create} fi"),
                None,
                "preparing the key directory",
            )
            .await?;
        if out.stdout_text().trim() == "link" && !follow {
            return Err(ModuleError::Failed(format!(
                "authorized_key: {dir} is a symbolic link; refusing to write through it (set follow: yes to allow it)"
            )));
        }
        let result = edit_text(
            ctx,
            TextEdit {
                module: "authorized_key",
                path: file.clone(),
                absent: if state == "present" {
                    WhenAbsent::Create
                } else {
                    WhenAbsent::Skip("file not present")
                },
                attrs: Attributes {
                    mode: Some(Mode::Octal(0o600)),
                    owner: Some(user.clone()),
                    group: None,
                },
                backup: false,
                validate: None,
                follow,
            },
            |current| edit(current, &keys, state == "present", exclusive),
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
            edit(file.as_bytes(), std::slice::from_ref(&k), true, false),
            b"# keys\nssh-ed25519 AAAA1 alice@laptop\nssh-rsa BBBB bob\n"
        );
        assert_eq!(
            edit(file.as_bytes(), std::slice::from_ref(&k), true, true),
            b"# keys\nssh-ed25519 AAAA1 alice@laptop\n"
        );
        assert_eq!(
            edit(file.as_bytes(), std::slice::from_ref(&k), false, false),
            b"# keys\nssh-rsa BBBB bob\n"
        );
        assert_eq!(
            edit(b"", &[k], true, false),
            b"ssh-ed25519 AAAA1 alice@laptop\n"
        );
        let opt = KeyLine::parse("no-pty,from=\"10.0.0.1\" ssh-rsa CCCC").unwrap();
        assert_eq!(opt.options.as_deref(), Some("no-pty,from=\"10.0.0.1\""));
    }

    #[test]
    fn keeps_foreign_bytes_and_crlf_endings() {
        let k = KeyLine::parse("ssh-ed25519 AAAA1 alice").unwrap();
        let file = b"# caf\xe9\r\nssh-ed25519 AAAA1 alice\r\n";
        assert_eq!(edit(file, std::slice::from_ref(&k), true, false), file);
        let other = KeyLine::parse("ssh-rsa BBBB bob").unwrap();
        assert_eq!(
            edit(file, &[other], true, false),
            b"# caf\xe9\r\nssh-ed25519 AAAA1 alice\r\nssh-rsa BBBB bob\r\n"
        );
    }
}
