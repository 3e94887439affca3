//! `fail`: fail the host with a message.

use async_trait::async_trait;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Fail;

#[async_trait]
impl Module for Fail {
    async fn run(&self, _ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let msg = args
            .raw("msg")
            .map(|m| m.to_string())
            .unwrap_or_else(|| "Failed as requested from task".into());
        args.finish()?;
        Err(ModuleError::Failed(msg))
    }
}
