//! Command modules: command, shell, raw, script.

pub mod async_status;
pub mod background;
pub mod command;
pub mod expand;
pub mod raw;
pub mod script;

use std::time::SystemTime;

use crate::clock::{python_datetime, python_timedelta};
use crate::connection::ExecOutput;
use crate::modules::{ModuleError, ModuleResult};

/// The return values every command-like module registers (`rc`, `stdout_lines`, `start`,
/// `delta`, …, as Python's `datetime` and `timedelta` print them); a non-zero return code
/// fails the module with them. `cmd` is a string or, for `command`, its list of words.
pub fn command_result(
    cmd: impl Into<minijinja::Value>,
    out: &ExecOutput,
    started: SystemTime,
    strip: bool,
) -> Result<ModuleResult, ModuleError> {
    let ended = SystemTime::now();
    let delta = ended.duration_since(started).unwrap_or_default();
    let mut stdout = out.stdout_text();
    let mut stderr = out.stderr_text();
    if strip {
        stdout = stdout.trim_end_matches(['\n', '\r']).to_string();
        stderr = stderr.trim_end_matches(['\n', '\r']).to_string();
    }
    let lines = |s: &str| s.lines().map(minijinja::Value::from).collect::<Vec<_>>();
    let result = ModuleResult::changed(true)
        .with("cmd", cmd)
        .with("rc", out.rc)
        .with("stdout_lines", lines(&stdout))
        .with("stderr_lines", lines(&stderr))
        .with("stdout", stdout)
        .with("stderr", stderr)
        .with("start", python_datetime(started))
        .with("end", python_datetime(ended))
        .with("delta", python_timedelta(delta));
    if out.rc != 0 {
        return Err(result.fail("non-zero return code"));
    }
    Ok(result)
}

/// A shell prefix that exits early, printing a marker, when something matches `creates` or
/// nothing matches `removes` (checked on the target in the same command that runs the
/// program). Both are glob patterns with `$VAR` and `~` expanded, as Ansible's `path` type and
/// `glob.glob` treat them; a dangling link counts as a match.
pub fn guard(creates: &Option<String>, removes: &Option<String>) -> String {
    let mut guard = String::new();
    let any_match = |pattern: &str| {
        format!(
            "k_g=; for k_m in {}; do if [ -e \"$k_m\" ] || [ -L \"$k_m\" ]; then k_g=1; break; fi; done; ",
            expand::expanding_word(pattern, true)
        )
    };
    if let Some(c) = creates {
        guard.push_str(&any_match(c));
        guard.push_str(&format!(
            "if [ -n \"$k_g\" ]; then echo {SKIP_CREATES}; exit 0; fi; "
        ));
    }
    if let Some(r) = removes {
        guard.push_str(&any_match(r));
        guard.push_str(&format!(
            "if [ -z \"$k_g\" ]; then echo {SKIP_REMOVES}; exit 0; fi; "
        ));
    }
    guard
}

pub(crate) const SKIP_CREATES: &str = "__kiln_skip_creates__";
pub(crate) const SKIP_REMOVES: &str = "__kiln_skip_removes__";

/// The result for a command its creates/removes guard skipped, if the output says so (it
/// did not run: `start`, `end` and `delta` are null, as in Ansible).
pub fn skipped(
    stdout: &str,
    creates: &Option<String>,
    removes: &Option<String>,
) -> Option<ModuleResult> {
    let why = match stdout.trim_end() {
        SKIP_CREATES => format!("{} exists", creates.as_deref().unwrap_or_default()),
        SKIP_REMOVES => format!("{} does not exist", removes.as_deref().unwrap_or_default()),
        _ => return None,
    };
    let none = minijinja::Value::from(());
    Some(
        ModuleResult::changed(false)
            .with("rc", 0)
            .with("stdout", format!("skipped, since {why}"))
            .with("stderr", "")
            .with("start", none.clone())
            .with("end", none.clone())
            .with("delta", none)
            .with_msg(format!("Did not run command since '{why}'")),
    )
}
