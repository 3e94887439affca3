//! `stat`: report a path's state (`stat.exists`, `isdir`, `mode`, `checksum`, …).

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use super::write::probe;
use crate::modules::util::octal;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Stat;

#[async_trait]
impl Module for Stat {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args.required_path(ctx, &["path", "dest", "name"]).await?;
        let _ = args.raw_any(&[
            "follow",
            "get_checksum",
            "get_md5",
            "get_mime",
            "get_attributes",
            "checksum_algorithm",
            "get_selinux_context",
        ]);
        args.finish()?;
        let (state, _) = probe(ctx, &path, None).await?;
        let mut stat: IndexMap<String, Value> = IndexMap::new();
        stat.insert("exists".into(), state.exists.into());
        if state.exists {
            stat.insert("path".into(), path.as_str().into());
            stat.insert("isdir".into(), (state.kind == "directory").into());
            stat.insert("isreg".into(), (state.kind == "file").into());
            stat.insert("islnk".into(), (state.kind == "link").into());
            stat.insert("mode".into(), octal(state.mode).into());
            stat.insert("pw_name".into(), state.owner.as_str().into());
            stat.insert("gr_name".into(), state.group.as_str().into());
            stat.insert("uid".into(), state.uid.into());
            stat.insert("gid".into(), state.gid.into());
            stat.insert("size".into(), state.size.into());
            stat.insert("mtime".into(), state.mtime.into());
            if let Some(target) = &state.link_target {
                stat.insert("lnk_target".into(), target.as_str().into());
                stat.insert("lnk_source".into(), target.as_str().into());
            }
            if let Some(sum) = &state.checksum {
                stat.insert("checksum".into(), sum.as_str().into());
            }
            stat.insert("executable".into(), (state.mode & 0o111 != 0).into());
            stat.insert("readable".into(), true.into());
            stat.insert("writeable".into(), (state.mode & 0o200 != 0).into());
        }
        Ok(ModuleResult::changed(false).with("stat", crate::template::map_value(stat)))
    }
}
