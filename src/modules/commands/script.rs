//! `script`: copy a controller script to the target, run it, remove it.

use async_trait::async_trait;

use super::{command_result, guard, skipped, SKIP_CREATES};
use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::split_words;

pub struct Script;

#[async_trait]
impl Module for Script {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        // The free form and `cmd` are two options, one of them required (not aliases).
        let line = match (args.str(&["_raw_params"])?, args.str(&["cmd"])?) {
            (Some(line), None) | (None, Some(line)) => line,
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "script: parameters are mutually exclusive: _raw_params|cmd".into(),
                ))
            }
            (None, None) => {
                return Err(ModuleError::Args(
                    "script: one of the following is required: _raw_params, cmd".into(),
                ))
            }
        };
        let creates = args.str(&["creates"])?;
        let removes = args.str(&["removes"])?;
        let chdir = args.path(ctx, &["chdir"]).await?;
        let executable = args.str(&["executable"])?;
        let decrypt = args.bool("decrypt", true)?;
        args.finish()?;
        let words = split_words(&line);
        let Some(first) = words.first() else {
            return Err(ModuleError::Args("script: no script given".into()));
        };
        // A quoted first word names a script whose path holds spaces.
        let script = &crate::shell::unquote(first);
        let path = ctx.find_source(script, "files").ok_or_else(|| {
            ModuleError::Failed(format!(
                "Could not find or access '{script}' on the controller"
            ))
        })?;
        let body = crate::vault::read_source(&path, decrypt)
            .map_err(|e| ModuleError::Failed(e.to_string()))?;
        let guard = guard(&creates, &removes);
        if ctx.check_mode {
            // With creates/removes, find out on the target whether it would run; without,
            // nothing tells, so Ansible skips.
            if guard.is_empty() {
                let mut result = ModuleResult::changed(false)
                    .with_msg("Check mode is not supported for this task.");
                result.skipped = true;
                return Ok(result);
            }
            let out = ctx.run(&format!("{guard}echo kiln-run"), None).await?;
            return Ok(guarded_skip(&out.stdout_text(), &creates, &removes)
                .unwrap_or_else(|| ModuleResult::changed(true)));
        }
        let run = match &executable {
            Some(exe) => format!("{} \"$t\"", quote(exe)),
            None => "chmod 700 \"$t\" && \"$t\"".into(),
        };
        let rest = words[1..].join(" ");
        let cd = chdir
            .map(|d| format!("cd -P -- {} && ", quote(&d)))
            .unwrap_or_default();
        let command = format!(
            "{guard}t=$(mktemp) && cat > \"$t\" && {cd}{run} {rest}; rc=$?; rm -f \"$t\"; exit $rc"
        );
        let started = std::time::SystemTime::now();
        let out = ctx.run_user(&command, Some(body)).await?;
        if let Some(skip) = guarded_skip(&out.stdout_text(), &creates, &removes) {
            return Ok(skip);
        }
        command_result(&line, &out, started, false)
    }
}

/// The skipped result, worded as Ansible's script action words it, when `creates` or
/// `removes` kept the script from running.
fn guarded_skip(
    stdout: &str,
    creates: &Option<String>,
    removes: &Option<String>,
) -> Option<ModuleResult> {
    skipped(stdout, creates, removes)?;
    let msg = match stdout.trim_end() {
        SKIP_CREATES => format!(
            "{} exists, matching creates option",
            creates.as_deref().unwrap_or_default()
        ),
        _ => format!(
            "{} does not exist, matching removes option",
            removes.as_deref().unwrap_or_default()
        ),
    };
    let mut result = ModuleResult::changed(false).with_msg(msg);
    result.skipped = true;
    Some(result)
}
