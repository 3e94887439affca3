//! `script`: copy a controller script to the target, run it, remove it.

use async_trait::async_trait;

use super::{command_result, guard, skipped};
use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::split_words;

pub struct Script;

#[async_trait]
impl Module for Script {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let line = args.required_str(&["_raw_params", "cmd"])?;
        let creates = args.str(&["creates"])?;
        let removes = args.str(&["removes"])?;
        let chdir = args.path(ctx, &["chdir"]).await?;
        let executable = args.str(&["executable"])?;
        let decrypt = args.bool("decrypt", true)?;
        args.finish()?;
        let words = split_words(&line);
        let Some(script) = words.first() else {
            return Err(ModuleError::Args("script: no script given".into()));
        };
        let path = ctx.find_source(script, "files").ok_or_else(|| {
            ModuleError::Failed(format!(
                "Could not find or access '{script}' on the controller"
            ))
        })?;
        let body = crate::vault::read_source(&path, decrypt)
            .map_err(|e| ModuleError::Failed(e.to_string()))?;
        let guard = guard(&creates, &removes);
        if ctx.check_mode {
            // With creates/removes, find out on the target whether it would run.
            if !guard.is_empty() {
                let out = ctx.run(&format!("{guard}echo kiln-run"), None).await?;
                let would_run = out.stdout_text().contains("kiln-run");
                return Ok(ModuleResult::changed(would_run)
                    .with_msg("script would have run if not in check mode"));
            }
            let mut result =
                ModuleResult::changed(false).with_msg("script would have run if not in check mode");
            result.skipped = true;
            return Ok(result);
        }
        let run = match &executable {
            Some(exe) => format!("{} \"$t\"", quote(exe)),
            None => "chmod 700 \"$t\" && \"$t\"".into(),
        };
        let rest = words[1..].join(" ");
        let cd = chdir
            .map(|d| format!("cd {} && ", quote(&d)))
            .unwrap_or_default();
        let command = format!(
            "{guard}t=$(mktemp) && cat > \"$t\" && {cd}{run} {rest}; rc=$?; rm -f \"$t\"; exit $rc"
        );
        let started = std::time::Instant::now();
        let out = ctx.run_user(&command, Some(body)).await?;
        if skipped(&out.stdout_text(), &creates, &removes).is_some() {
            return Ok(ModuleResult::changed(false)
                .with("rc", 0)
                .with_msg("skipped: creates/removes condition met"));
        }
        command_result(&line, &out, started, false)
    }
}
