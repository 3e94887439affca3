//! `ping`: prove the host answers commands (no Python needed on the target).

use async_trait::async_trait;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Ping;

#[async_trait]
impl Module for Ping {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let data = args.str(&["data"])?.unwrap_or_else(|| "pong".into());
        args.finish()?;
        if data == "crash" {
            // ansible-core's ping raises an exception here; its message reads so.
            return Err(ModuleError::Failed(
                "Task failed: Module failed: boom".into(),
            ));
        }
        ctx.run_ok("true", None, "ping").await?;
        Ok(ModuleResult::changed(false).with("ping", data))
    }
}
