//! `hostname`: the host's name, now and at boot (`/etc/hostname`; `hostnamectl` under systemd).

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::value::VarMap;

pub struct Hostname;

#[async_trait]
impl Module for Hostname {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let strategy = args.str(&["use"])?;
        args.finish()?;
        // Checked before anything is touched: a name the kernel refuses must not have
        // rewritten /etc/hostname first.
        if !valid_name(&name) {
            return Err(ModuleError::Args(format!(
                "hostname: '{name}' is not a valid host name (at most 64 characters; labels of letters, digits, '-' and '_', not starting or ending with '-')"
            )));
        }
        let out = ctx
            .run(
                "echo \"now:$(hostname)\"; echo \"boot:$(cat /etc/hostname 2>/dev/null)\"; [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null && echo systemd; true",
                None,
            )
            .await?
            .stdout_text();
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let (now, boot) = (field("now:"), field("boot:"));
        let systemd = out.lines().any(|l| l == "systemd") && strategy.as_deref() != Some("debian");
        let changed = now != name || boot != name;
        let mut result = ModuleResult::changed(changed);
        if changed {
            if ctx.diff {
                result
                    .diffs
                    .push(Diff::setting("hostname", "hostname", &now, &name));
            }
            if !ctx.check_mode {
                let q = quote(&name);
                let cmd = if systemd {
                    // As ansible-core's systemd strategy: the running name, and the name at
                    // boot together with the pretty name (/etc/machine-info), each only when
                    // it differs.
                    let mut steps = Vec::new();
                    if now != name {
                        steps.push(format!("hostnamectl --transient set-hostname {q}"));
                    }
                    if boot != name {
                        steps.push(format!("hostnamectl --pretty --static set-hostname {q}"));
                    }
                    steps.join(" && ")
                } else {
                    format!("hostname {q} && printf '%s\\n' {q} > /etc/hostname")
                };
                ctx.run_ok(&cmd, None, "setting the hostname").await?;
            }
        }
        let short = name.split('.').next().unwrap_or(&name).to_string();
        let mut facts = VarMap::new();
        facts.insert("ansible_hostname".into(), short.into());
        facts.insert("ansible_nodename".into(), name.as_str().into());
        facts.insert("ansible_fqdn".into(), name.as_str().into());
        result.facts = Some(facts);
        Ok(result.with("name", name))
    }
}

/// A name the kernel and resolvers take: at most 64 bytes (the kernel's limit), dot-separated
/// labels of 1–63 letters, digits, `-` or `_`, none starting or ending with `-`.
fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_use() {
        assert!(valid_name("web-1.example.com"));
        assert!(valid_name("db_2"));
        assert!(!valid_name(""));
        assert!(!valid_name("a..b"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("bad name"));
        assert!(!valid_name("semi;colon"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
