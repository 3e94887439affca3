//! `dnf` and `yum`: RPM packages (Fedora, RHEL and kin) through the shared backend.

use async_trait::async_trait;

use super::backend::Backend;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Dnf {
    pub backend: &'static Backend,
}

pub static DNF: Backend = Backend {
    name: "dnf",
    installed: "rpm -q --qf '%{NAME}\\n' {} 2>/dev/null | grep -v ' '",
    upgradable:
        "dnf -q check-update {} 2>/dev/null | awk 'NF==3 {sub(/\\.[^.]*$/, \"\", $1); print $1}'",
    install: "dnf -y install {}",
    upgrade: "dnf -y install {} && dnf -y upgrade {}",
    remove: "dnf -y remove {}",
    update_cache: "dnf -y makecache",
};

pub static YUM: Backend = Backend {
    name: "yum",
    installed: "rpm -q --qf '%{NAME}\\n' {} 2>/dev/null | grep -v ' '",
    upgradable:
        "yum -q check-update {} 2>/dev/null | awk 'NF==3 {sub(/\\.[^.]*$/, \"\", $1); print $1}'",
    install: "yum -y install {}",
    upgrade: "yum -y install {} && yum -y update {}",
    remove: "yum -y remove {}",
    update_cache: "yum -y makecache",
};

#[async_trait]
impl Module for Dnf {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        self.backend.run(ctx, args).await
    }
}
