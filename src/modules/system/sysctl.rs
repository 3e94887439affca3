//! `sysctl`: a kernel parameter's value in a sysctl file (`/etc/sysctl.conf` by default),
//! optionally applied at once (`sysctl_set`) and the file reloaded.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::edit::{edit_text, Line, Lines, TextEdit, WhenAbsent};
use crate::modules::files::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Sysctl;

/// Kernel values compare by words: `1  0` equals `1 0`.
fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The file's bytes with `name` set to `value` (or removed when `value` is None); other
/// lines keep their bytes, a rewritten line its line ending.
pub fn edit(bytes: &[u8], name: &str, value: Option<&str>) -> Vec<u8> {
    let mut file = Lines::parse(bytes);
    let mut done = false;
    let mut kept = Vec::new();
    for line in file.lines.drain(..) {
        let text = String::from_utf8_lossy(&line.text);
        let key = text
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.starts_with('#') && !k.starts_with(';'));
        if key == Some(name) {
            if let (Some(v), false) = (value, done) {
                kept.push(Line {
                    text: format!("{name}={v}").into_bytes(),
                    end: line.end,
                });
                done = true;
            }
            continue;
        }
        kept.push(line);
    }
    file.lines = kept;
    if let (Some(v), false) = (value, done) {
        let end = file.lines.len();
        file.insert(end, vec![format!("{name}={v}").into_bytes()]);
    }
    file.to_bytes()
}

/// The value the file gives `name`, if any.
fn file_value(text: &str, name: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

#[async_trait]
impl Module for Sysctl {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name", "key"])?;
        let value = args.str(&["value", "val"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let file = args
            .str(&["sysctl_file"])?
            .unwrap_or_else(|| "/etc/sysctl.conf".into());
        let reload = args.bool("reload", true)?;
        let sysctl_set = args.bool("sysctl_set", false)?;
        let ignoreerrors = args.bool("ignoreerrors", false)?;
        args.finish()?;
        let value = match (state.as_str(), value) {
            ("present", None) => {
                return Err(ModuleError::Args(
                    "sysctl: value is required with state=present".into(),
                ))
            }
            ("present", Some(v)) => Some(match v.as_str() {
                "True" | "true" | "yes" => "1".to_string(),
                "False" | "false" | "no" => "0".to_string(),
                _ => v,
            }),
            _ => None,
        };
        let file_ok = |text: &str| match (&value, &file_value(text, &name)) {
            (Some(v), Some(f)) => same_value(v, f),
            (None, None) => true,
            _ => false,
        };
        let live = if sysctl_set {
            let out = ctx
                .run(&format!("sysctl -n {}", quote(&name)), None)
                .await?;
            if out.rc != 0 && !ignoreerrors {
                return Err(ModuleError::Failed(format!(
                    "sysctl: unknown key {name}: {}",
                    out.stderr_text().trim()
                )));
            }
            Some(out.stdout_text().trim().to_string())
        } else {
            None
        };
        let live_ok = match (&value, &live) {
            (Some(v), Some(l)) => same_value(v, l),
            _ => true,
        };
        // The file a link names is edited, as Ansible's `realpath` does.
        let mut result = edit_text(
            ctx,
            TextEdit {
                module: "sysctl",
                path: file.clone(),
                absent: if value.is_some() {
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
                if file_ok(&String::from_utf8_lossy(current)) {
                    current.to_vec()
                } else {
                    edit(current, &name, value.as_deref())
                }
            },
        )
        .await?;
        result.msg = None;
        if !live_ok {
            result.changed = true;
            if !ctx.check_mode {
                let v = value.clone().unwrap_or_default();
                ctx.run_ok(
                    &format!("sysctl -w {}={}", quote(&name), quote(&v)),
                    None,
                    "sysctl -w",
                )
                .await?;
            }
        }
        if result.changed && reload && !ctx.check_mode {
            let flag = if ignoreerrors { " -e" } else { "" };
            let out = ctx
                .run(&format!("sysctl{flag} -p {}", quote(&file)), None)
                .await?;
            if out.rc != 0 && !ignoreerrors {
                return Err(ModuleError::Failed(format!(
                    "Failed to reload sysctl: {}",
                    out.stderr_text().trim()
                )));
            }
        }
        Ok(result.with("name", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_replaces_and_removes() {
        let text = b"# comment\nnet.ipv4.ip_forward = 0\nvm.swappiness=10\n";
        assert_eq!(
            edit(text, "net.ipv4.ip_forward", Some("1")),
            b"# comment\nnet.ipv4.ip_forward=1\nvm.swappiness=10\n"
        );
        assert_eq!(
            edit(text, "vm.swappiness", None),
            b"# comment\nnet.ipv4.ip_forward = 0\n"
        );
        assert_eq!(edit(b"", "a.b", Some("2")), b"a.b=2\n");
        assert_eq!(
            file_value(&String::from_utf8_lossy(text), "vm.swappiness").as_deref(),
            Some("10")
        );
        assert!(same_value("1  0", "1 0"));
    }

    #[test]
    fn keeps_foreign_bytes_and_crlf_endings() {
        let text = b"# caf\xe9\r\nvm.swappiness = 10\r\n";
        assert_eq!(
            edit(text, "vm.swappiness", Some("5")),
            b"# caf\xe9\r\nvm.swappiness=5\r\n"
        );
        assert_eq!(
            edit(text, "a.b", Some("1")),
            b"# caf\xe9\r\nvm.swappiness = 10\r\na.b=1\r\n"
        );
    }
}
