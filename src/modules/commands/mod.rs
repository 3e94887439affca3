//! Command modules: command, shell, raw, script.

pub mod command;
pub mod raw;
pub mod script;

use crate::connection::ExecOutput;
use crate::modules::ModuleResult;

/// The return values every command-like module registers (`rc`, `stdout_lines`, …).
pub fn command_result(
    cmd: &str,
    out: &ExecOutput,
    started: std::time::Instant,
    strip: bool,
) -> ModuleResult {
    let mut stdout = out.stdout_text();
    let mut stderr = out.stderr_text();
    if strip {
        stdout = stdout.trim_end_matches(['\n', '\r']).to_string();
        stderr = stderr.trim_end_matches(['\n', '\r']).to_string();
    }
    let lines = |s: &str| s.lines().map(minijinja::Value::from).collect::<Vec<_>>();
    let mut result = ModuleResult::changed(true)
        .with("cmd", cmd)
        .with("rc", out.rc)
        .with("stdout_lines", lines(&stdout))
        .with("stderr_lines", lines(&stderr))
        .with("stdout", stdout)
        .with("stderr", stderr)
        .with("delta", format!("{:?}", started.elapsed()));
    if out.rc != 0 {
        result.failed = true;
        result.msg = Some("non-zero return code".into());
    }
    result
}
