//! `raw`: send a command line as-is (no argument handling, no check mode).

use async_trait::async_trait;

use super::command_result;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Raw;

#[async_trait]
impl Module for Raw {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let line = args.required_str(&["_raw_params"])?;
        let executable = args.str(&["executable"])?;
        args.finish()?;
        if ctx.check_mode {
            let mut result =
                ModuleResult::changed(false).with_msg("raw does not support check mode");
            result.skipped = true;
            return Ok(result);
        }
        let full = match executable {
            Some(exe) => format!(
                "{} -c {}",
                crate::connection::quote(&exe),
                crate::connection::quote(&line)
            ),
            None => line.clone(),
        };
        let started = std::time::SystemTime::now();
        let out = ctx.run_user(&full, None).await?;
        command_result(&line, &out, started, false)
    }
}
