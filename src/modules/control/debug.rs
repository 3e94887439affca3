//! `debug`: print a message or a variable; skipped below its `verbosity` threshold.

use async_trait::async_trait;
use minijinja::Value;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Debug;

#[async_trait]
impl Module for Debug {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let msg = args.raw("msg");
        let var_is_data = args
            .raw("var")
            .is_some_and(|v| crate::template::is_untrusted(&v));
        let var = args.str(&["var"])?;
        let threshold = args.int("verbosity")?.unwrap_or(0);
        args.finish()?;
        let mut result = ModuleResult::changed(false);
        if threshold > run_verbosity(ctx) {
            // As Ansible's debug action: a skip, so `-v0` prints `skipping:` and no message.
            result.skipped = true;
            result.data.insert(
                "skipped_reason".into(),
                Value::from("Verbosity threshold not met."),
            );
            return Ok(result);
        }
        match (msg, var) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "debug: parameters are mutually exclusive: msg|var".into(),
                ))
            }
            (None, Some(var)) if var_is_data => {
                // A name that came from a target (or !unsafe) is shown, never evaluated.
                result
                    .data
                    .insert(var.clone(), crate::template::untrusted_str(&var));
            }
            (None, Some(var)) => {
                let value = ctx
                    .scope
                    .templar()
                    .render_str(&format!("{{{{ {var} }}}}"), ctx.scope)
                    .unwrap_or_else(|_| Value::from("VARIABLE IS NOT DEFINED!"));
                result.data.insert(var, value);
            }
            (Some(msg), None) => {
                result.data.insert("msg".into(), msg);
            }
            (None, None) => {
                result
                    .data
                    .insert("msg".into(), Value::from("Hello world!"));
            }
        }
        Ok(result)
    }
}

/// The run's `-v` count, as the magic variable `ansible_verbosity` holds it.
fn run_verbosity(ctx: &ModuleCtx<'_>) -> i64 {
    ctx.scope
        .get("ansible_verbosity")
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(0)
}
