//! `hostname`: the host's name, now and at boot (`/etc/hostname`; `hostnamectl` under systemd).

use async_trait::async_trait;

use crate::connection::quote;
use crate::load::model::VarMap;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Hostname;

#[async_trait]
impl Module for Hostname {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let strategy = args.str(&["use"])?;
        args.finish()?;
        if name.is_empty() || name.len() > 253 || name.contains(char::is_whitespace) {
            return Err(ModuleError::Args(format!(
                "hostname: '{name}' is not a valid host name"
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
                result.diffs.push(Diff {
                    before_header: "hostname".into(),
                    after_header: "hostname".into(),
                    before: format!("hostname = {now}\n"),
                    after: format!("hostname = {name}\n"),
                });
            }
            if !ctx.check_mode {
                let q = quote(&name);
                let cmd = if systemd {
                    format!("hostnamectl set-hostname {q}")
                } else {
                    format!("printf '%s\\n' {q} > /etc/hostname && hostname {q}")
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
