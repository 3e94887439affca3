//! `package`: installs or removes packages with whichever manager the target uses (the
//! `pkg_mgr` fact when gathered, else a probe), handing every option on to that module.

use async_trait::async_trait;

use crate::modules::{registry, Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Package;

/// The module that drives a `pkg_mgr` fact's manager.
pub fn module_for(manager: &str) -> Option<&'static str> {
    match manager {
        "apt" | "apt-get" => Some("apt"),
        "dnf" | "dnf5" => Some("dnf"),
        "yum" => Some("yum"),
        "apk" => Some("apk"),
        _ => None,
    }
}

#[async_trait]
impl Module for Package {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let chosen = args.str(&["use"])?.unwrap_or_else(|| "auto".into());
        let manager = if chosen != "auto" {
            chosen
        } else if let Some(fact) = ctx
            .scope
            .get("ansible_facts")
            .and_then(|f| f.get_attr("pkg_mgr").ok())
            .filter(|v| !v.is_undefined() && !v.is_none())
        {
            fact.to_string()
        } else {
            let out = ctx
                .run(
                    "for m in apt-get dnf yum apk zypper pacman; do command -v $m >/dev/null 2>&1 && { echo $m; exit 0; }; done; echo unknown",
                    None,
                )
                .await?;
            out.stdout_text().trim().to_string()
        };
        let name = module_for(&manager).ok_or_else(|| {
            ModuleError::Failed(format!(
                "package: no support for the package manager '{manager}' (kiln drives apt, dnf, yum and apk)"
            ))
        })?;
        let module = registry::native(name)
            .ok_or_else(|| ModuleError::Failed(format!("package: module {name} missing")))?;
        module.run(ctx, args.forward(name, &["use"])).await
    }
}
