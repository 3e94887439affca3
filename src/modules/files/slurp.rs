//! `slurp`: a file's content from the target, base64-encoded (`content`, `encoding`, `source`).

use async_trait::async_trait;
use base64::Engine as _;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Slurp;

/// What the read reports on stderr when it reads nothing (the content itself is binary, so
/// stdout carries only the file).
const IS_DIRECTORY: &str = "kiln-slurp: directory";
const MISSING: &str = "kiln-slurp: missing";

/// Reads `path` as is: stdout is the file's bytes; a directory or a missing path says so on
/// stderr and fails.
pub fn read_command(path: &str) -> String {
    let q = quote(path);
    format!(
        "if [ -d {q} ]; then echo '{IS_DIRECTORY}' >&2; false; elif [ ! -e {q} ]; then echo '{MISSING}' >&2; false; else cat -- {q}; fi"
    )
}

#[async_trait]
impl Module for Slurp {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let src = args.required_path(ctx, &["src", "path"]).await?;
        args.finish()?;
        let out = ctx.run(&read_command(&src), None).await?;
        if out.rc != 0 {
            let err = out.stderr_text();
            let msg = if err.contains(IS_DIRECTORY) {
                format!("source is a directory and must be a file: {src}")
            } else if err.contains(MISSING) {
                format!("file not found: {src}")
            } else {
                format!("unable to slurp file: {src}: {}", err.trim())
            };
            return Err(ModuleError::Failed(msg));
        }
        let content = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
        Ok(ModuleResult::changed(false)
            .with("content", content)
            .with("encoding", "base64")
            .with("source", src))
    }
}
