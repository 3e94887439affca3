//! `apk`: Alpine packages through the shared backend.

use async_trait::async_trait;

use super::backend::Backend;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Apk;

static APK: Backend = Backend {
    name: "apk",
    installed: "apk info -e {} 2>/dev/null",
    upgradable:
        "apk version -l '<' {} 2>/dev/null | awk 'NR>1 {sub(/-[0-9].*$/, \"\", $1); print $1}'",
    install: "apk add {}",
    upgrade: "apk add --upgrade {}",
    remove: "apk del {}",
    update_cache: "apk update",
};

#[async_trait]
impl Module for Apk {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        APK.run(ctx, args).await
    }
}
