//! `async_status`: the state of a background job (`async:` with `poll: 0`) started by an
//! earlier task, or `mode: cleanup` to remove its files.

use async_trait::async_trait;
use minijinja::Value;

use super::background::{self, JobState};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct AsyncStatus;

#[async_trait]
impl Module for AsyncStatus {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let jid = args.required_str(&["jid"])?;
        let mode = args.choice("mode", &["status", "cleanup"], "status")?;
        args.ignore(&["_async_dir"]);
        args.finish()?;
        if !background::valid_job_id(&jid) {
            return Err(ModuleError::Args(format!(
                "async_status: '{jid}' is not a job id (letters, digits, '.', '_' and '-')"
            )));
        }
        let file = background::results_file(&jid);
        let job = |result: ModuleResult| {
            result
                .with("ansible_job_id", jid.as_str())
                .with("results_file", file.as_str())
                .with("started", 1)
        };
        if mode == "cleanup" {
            background::cleanup(ctx.conn, &jid).await?;
            return Ok(ModuleResult::changed(false)
                .with("ansible_job_id", jid.as_str())
                .with("erased", file.as_str()));
        }
        match background::probe(ctx.conn, &jid).await? {
            JobState::Missing => Err(job(ModuleResult::changed(false))
                .with("finished", 1)
                .fail("could not find job")),
            JobState::Running => Ok(job(ModuleResult::changed(false)).with("finished", 0)),
            JobState::Done { output, start, end } => {
                let result = finished_command(&output, &start, &end);
                background::record(ctx.conn, &jid, &recorded(&result)).await?;
                finish(job(result))
            }
            JobState::Recorded(value) => finish(job(from_recorded(&value))),
        }
    }
}

/// A finished command's result, as `command`/`shell` return it.
fn finished_command(out: &crate::connection::ExecOutput, start: &str, end: &str) -> ModuleResult {
    let stdout = out.stdout_text().trim_end_matches(['\n', '\r']).to_string();
    let stderr = out.stderr_text().trim_end_matches(['\n', '\r']).to_string();
    let lines = |s: &str| s.lines().map(Value::from).collect::<Vec<_>>();
    let mut result = ModuleResult::changed(true)
        .with("rc", out.rc)
        .with("stdout_lines", lines(&stdout))
        .with("stderr_lines", lines(&stderr))
        .with("stdout", stdout)
        .with("stderr", stderr)
        .with("start", start)
        .with("end", end)
        .with("delta", background::delta(start, end));
    if out.rc != 0 {
        result.failed = true;
        result.msg = Some("non-zero return code".into());
    }
    result
}

/// A result as the job file keeps it (`changed`, `failed`, `msg` and the return values).
pub fn recorded(result: &ModuleResult) -> Value {
    let mut map = result.data.clone();
    map.insert("changed".into(), Value::from(result.changed));
    map.insert("failed".into(), Value::from(result.failed));
    if let Some(msg) = &result.msg {
        map.insert("msg".into(), Value::from(msg.as_str()));
    }
    crate::value::map_value(map)
}

/// A result read back from a job file (it came from the target: every field is data).
fn from_recorded(value: &Value) -> ModuleResult {
    let mut result = ModuleResult::default();
    for key in value.try_iter().into_iter().flatten() {
        let field = value.get_item(&key).unwrap_or_default();
        match key.as_str().unwrap_or_default() {
            "changed" => result.changed = field.is_true(),
            "failed" => result.failed = field.is_true(),
            "msg" => result.msg = Some(field.to_string()),
            "ansible_job_id" | "results_file" | "started" | "finished" => {}
            name => {
                result.data.insert(name.to_string(), field);
            }
        }
    }
    result
}

/// A finished job's result: it fails as its task would have.
fn finish(result: ModuleResult) -> Result<ModuleResult, ModuleError> {
    let mut result = result.with("finished", 1);
    if result.failed {
        let msg = result.msg.take().unwrap_or_default();
        return Err(result.fail(msg));
    }
    Ok(result)
}
