//! `sysctl`: a kernel parameter's value in a sysctl file (`/etc/sysctl.conf` by default),
//! optionally applied at once (`sysctl_set`) and the file reloaded.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::write::{converge_from, probe, Attributes, WriteRequest};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Sysctl;

/// Kernel values compare by words: `1  0` equals `1 0`.
fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The file's text with `name` set to `value` (or removed when `value` is None).
pub fn edit(text: &str, name: &str, value: Option<&str>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut done = false;
    for line in text.lines() {
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.starts_with('#') && !k.starts_with(';'));
        if key == Some(name) {
            if let (Some(v), false) = (value, done) {
                lines.push(format!("{name}={v}"));
                done = true;
            }
            continue;
        }
        lines.push(line.to_string());
    }
    if let (Some(v), false) = (value, done) {
        lines.push(format!("{name}={v}"));
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
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
        let (file_state, content) = probe(ctx, &file, Some(1024 * 1024)).await?;
        let current_text = content
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let in_file = file_value(&current_text, &name);
        let file_ok = match (&value, &in_file) {
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
        let mut result = ModuleResult::changed(false);
        if !file_ok {
            let updated = edit(&current_text, &name, value.as_deref());
            let before = ctx.diff.then(|| current_text.clone().into_bytes());
            result = converge_from(
                ctx,
                WriteRequest {
                    dest: file.clone(),
                    content: updated.into_bytes(),
                    attrs: Attributes::default(),
                    backup: false,
                    validate: None,
                    force: true,
                },
                file_state,
                before,
            )
            .await?;
        }
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
                return Ok(ModuleResult::failed(format!(
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
        let text = "# comment\nnet.ipv4.ip_forward = 0\nvm.swappiness=10\n";
        assert_eq!(
            edit(text, "net.ipv4.ip_forward", Some("1")),
            "# comment\nnet.ipv4.ip_forward=1\nvm.swappiness=10\n"
        );
        assert_eq!(
            edit(text, "vm.swappiness", None),
            "# comment\nnet.ipv4.ip_forward = 0\n"
        );
        assert_eq!(edit("", "a.b", Some("2")), "a.b=2\n");
        assert_eq!(file_value(text, "vm.swappiness").as_deref(), Some("10"));
        assert!(same_value("1  0", "1 0"));
    }
}
