//! `assert`: fail unless every condition in `that` holds.

use async_trait::async_trait;
use minijinja::value::ValueKind;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Assert;

#[async_trait]
impl Module for Assert {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let written = args.given("that");
        let Some(that) = args.raw("that") else {
            return Err(match written {
                // `that:` with nothing after it.
                true => {
                    ModuleError::Failed("Empty conditional expression in assert's 'that'".into())
                }
                false => ModuleError::Args("missing required arguments: that".into()),
            });
        };
        let fail_msg = args.raw_any(&["fail_msg", "msg"]);
        let success_msg = args.raw("success_msg");
        let quiet = args.bool("quiet", false)?;
        args.finish()?;
        let conditions: Vec<minijinja::Value> = if that.kind() == ValueKind::Seq {
            that.try_iter().into_iter().flatten().collect()
        } else {
            vec![that]
        };
        for condition in &conditions {
            let ok = ctx
                .scope
                .templar()
                .eval_condition(condition, ctx.scope)
                .map_err(|e| ModuleError::Failed(e.message))?;
            if !ok {
                return Err(ModuleResult::default()
                    .with("assertion", condition.clone())
                    .with("evaluated_to", false)
                    .fail(
                        fail_msg
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| "Assertion failed".into()),
                    ));
            }
        }
        let mut result = ModuleResult::changed(false);
        if !quiet {
            result.msg = Some(
                success_msg
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "All assertions passed".into()),
            );
        }
        Ok(result)
    }
}
