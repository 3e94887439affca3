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
        for (what, part) in [("prefix", &prefix), ("suffix", &suffix)] {
            if part.contains('/') {
                return Err(ModuleError::Failed(format!(
                    "{what} must be a valid file name component, got '{part}'"
                )));
            }
        }
        if ctx.check_mode {
            return Ok(
                ModuleResult::changed(true).with("path", format!("{dir}/{prefix}XXXXXX{suffix}"))
            );
        }
        let flag = if state == "directory" { "-d " } else { "" };
        let template = format!("{dir}/{prefix}XXXXXXXX{suffix}");
        let out = ctx
            .run(&format!("mktemp {flag}{}", quote(&template)), None)
            .await?;
        if out.rc != 0 {
            // Python's mkstemp/mkdtemp error, as Ansible's module reports it.
            let stderr = out.stderr_text();
            let msg = if stderr.contains("No such file or directory") {
                format!("[Errno 2] No such file or directory: '{template}'")
            } else {
                stderr.trim().to_string()
            };
            return Err(ModuleError::Failed(msg));
        }
        Ok(ModuleResult::changed(true)
            .with("path", out.stdout_text().trim())
            .with("state", state.as_str()))
    }
}
