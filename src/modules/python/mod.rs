//! Ansible modules kiln has no native version of, run as Ansible runs them: the module's
//! AnsiballZ payload (built on the controller by ansible-core, see `payload.rs`) is fed to the
//! target's Python on stdin over the host's session, its arguments inside it, and the JSON it
//! prints becomes the task's result (`reply.rs`).

pub mod payload;
pub mod reply;

use base64::Engine;
use minijinja::Value;
use serde_json::{json, Map, Value as Json};

use crate::connection::quote;
use crate::modules::{ModuleCtx, ModuleError, ModuleResult};
pub use payload::ModuleSearch;

/// What the target's shell prints (on stderr) when it finds no Python.
const NO_PYTHON: &str = "kiln: no python interpreter";

/// Ansible's interpreter discovery, in its order (`/usr/bin/python3` is what it settles on
/// for Debian and Ubuntu; the rest is `INTERPRETER_PYTHON_FALLBACK`).
const DISCOVERED_PYTHONS: &[&str] = &[
    "/usr/bin/python3",
    "python3.13",
    "python3.12",
    "python3.11",
    "python3.10",
    "python3.9",
    "python3.8",
    "/usr/libexec/platform-python",
    "python3",
];

/// Runs the module `name` (as the task wrote it) with `args` on the target.
pub async fn run(
    ctx: &ModuleCtx<'_>,
    name: &str,
    search: &ModuleSearch,
    args: &Value,
    no_log: bool,
) -> Result<ModuleResult, ModuleError> {
    let payload = payload::payload(name, search)
        .await
        .map_err(|e| ModuleError::Failed(e.to_string()))?;
    let params = module_params(ctx, name, args, no_log, &payload.ansible_version)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(params.to_string());
    let script = payload.script.replacen(
        payload::PARAMS_MARK,
        &format!("__import__('base64').b64decode('{encoded}').decode()"),
        1,
    );
    // `auto`, `auto_silent`, `auto_legacy`, … ask for discovery, as in Ansible.
    let interpreter = ctx
        .scope
        .text("ansible_python_interpreter")
        .filter(|path| !path.starts_with("auto"));
    let out = ctx
        .run(
            &python_command(interpreter.as_deref()),
            Some(script.into_bytes()),
        )
        .await?;
    if out.rc == 127 && out.stderr_text().contains(NO_PYTHON) {
        return Err(ModuleError::Failed(no_python_message(
            name,
            interpreter.as_deref(),
        )));
    }
    reply::parse(name, &out)
}

/// The shell command that runs the payload from stdin with the host's Python:
/// `ansible_python_interpreter` when set, else the first one discovery finds.
fn python_command(interpreter: Option<&str>) -> String {
    let candidates = match interpreter {
        Some(path) => quote(path),
        None => DISCOVERED_PYTHONS.join(" "),
    };
    format!(
        "for k_py in {candidates}; do command -v \"$k_py\" >/dev/null 2>&1 && exec \"$k_py\" -; done; echo '{NO_PYTHON}' >&2; exit 127"
    )
}

fn no_python_message(module: &str, interpreter: Option<&str>) -> String {
    let looked = match interpreter {
        Some(path) => format!("ansible_python_interpreter ({path}) does not exist there"),
        None => format!("none of {} is there", DISCOVERED_PYTHONS.join(", ")),
    };
    format!(
        "module '{module}' is not one of kiln's native modules and needs Python 3 on the target, but {looked}: install python3 on the host (e.g. with the `raw` or `apt` module), or use a native module instead (see the README's module list)"
    )
}

/// The payload's arguments: the task's, and the `_ansible_*` settings AnsibleModule reads.
fn module_params(
    ctx: &ModuleCtx<'_>,
    name: &str,
    args: &Value,
    no_log: bool,
    ansible_version: &str,
) -> Result<Json, ModuleError> {
    let mut module_args = match serde_json::to_value(args) {
        Ok(Json::Object(map)) => map,
        Ok(Json::Null) => Map::new(),
        Ok(other) => {
            return Err(ModuleError::Args(format!(
                "{name}: the arguments must be a mapping, not {other}"
            )))
        }
        Err(e) => return Err(ModuleError::Args(format!("{name}: {e}"))),
    };
    let internal = json!({
        "_ansible_check_mode": ctx.check_mode,
        "_ansible_diff": ctx.diff,
        "_ansible_no_log": no_log,
        "_ansible_debug": false,
        "_ansible_verbosity": 0,
        "_ansible_version": ansible_version,
        "_ansible_module_name": name,
        "_ansible_keep_remote_files": false,
        "_ansible_shell_executable": "/bin/sh",
        // The module's own temporary files go under /tmp, never into the user's home.
        "_ansible_remote_tmp": "/tmp",
        "_ansible_tmpdir": null,
    });
    if let Json::Object(internal) = internal {
        module_args.extend(internal);
    }
    Ok(json!({ "ANSIBLE_MODULE_ARGS": module_args }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_is_quoted_or_discovered() {
        let given = python_command(Some("/opt/py 3/bin/python"));
        assert!(
            given.starts_with("for k_py in '/opt/py 3/bin/python'; do"),
            "{given}"
        );
        let discovered = python_command(None);
        assert!(
            discovered.contains("/usr/bin/python3 python3.13"),
            "{discovered}"
        );
        assert!(discovered.ends_with("exit 127"));
    }

    #[test]
    fn the_missing_python_message_names_both_fixes() {
        let msg = no_python_message("community.general.thing", None);
        assert!(msg.contains("community.general.thing"));
        assert!(msg.contains("install python3"));
        assert!(msg.contains("native module"));
    }
}
