//! `tempfile`: create a temporary file or directory on the target (`path` is returned).

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct TempFile;

#[async_trait]
impl Module for TempFile {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let state = args.choice("state", &["file", "directory"], "file")?;
        let prefix = args.str(&["prefix"])?.unwrap_or_else(|| "ansible.".into());
        let suffix = args.str(&["suffix"])?.unwrap_or_default();
        let dir = args
            .path(ctx, &["path"])
            .await?
            .unwrap_or_else(|| "/tmp".into());
        args.finish()?;
        if ctx.check_mode {
            return Ok(
                ModuleResult::changed(true).with("path", format!("{dir}/{prefix}XXXXXX{suffix}"))
            );
        }
        let flag = if state == "directory" { "-d " } else { "" };
        let template = quote(&format!("{dir}/{prefix}XXXXXXXX{suffix}"));
        let out = ctx
            .run_ok(&format!("mktemp {flag}{template}"), None, "mktemp")
            .await?;
        Ok(ModuleResult::changed(true)
            .with("path", out.stdout_text().trim())
            .with("state", state.as_str()))
    }
}
