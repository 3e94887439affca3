//! `command` and `shell`: run a command line. `command` passes its words to the program
//! without a shell (each word quoted); `shell` hands the line to `/bin/sh`.

use async_trait::async_trait;
use minijinja::Value;

use super::expand::{expanding_word, expands};
use super::{command_result, guard, skipped};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::{quote, quote_always, split_words, unquote};

pub struct Command {
    pub shell: bool,
}

#[async_trait]
impl Module for Command {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.module();
        let raw = args.str(&["_raw_params", "cmd"])?;
        let argv = args.list(&["argv"])?;
        let creates = args.str(&["creates"])?;
        let removes = args.str(&["removes"])?;
        let chdir = args.path(ctx, &["chdir"]).await?;
        let executable = args.str(&["executable"])?;
        let stdin = args.str(&["stdin"])?;
        let stdin_add_newline = args.bool("stdin_add_newline", true)?;
        let strip = args.bool("strip_empty_ends", true)?;
        if self.shell && args.given("expand_argument_vars") {
            // As Ansible's shell action: a command-only option is refused by name.
            return Err(ModuleError::Failed(format!(
                "Unsupported parameters for ({name}) module: expand_argument_vars"
            )));
        }
        let expand = args.bool("expand_argument_vars", true)?;
        let _ = args.raw_any(&["warn"]);
        args.finish()?;

        // `cmd` is registered as Ansible's module has it: the line for `shell`, the words
        // (`shlex.split`) for `command`.
        let (line, cmd) = match (raw, argv.is_empty()) {
            (Some(raw), true) => {
                if self.shell {
                    (raw.clone(), Value::from(raw))
                } else {
                    // No shell: every word reaches the program as-is.
                    let words: Vec<String> = split_words(&raw).iter().map(|w| unquote(w)).collect();
                    (argv_line(words.iter().cloned(), expand), Value::from(words))
                }
            }
            (None, false) => (argv_line(argv.iter().cloned(), expand), Value::from(argv)),
            (Some(_), false) => {
                return Err(ModuleError::Args(format!(
                    "{name}: parameters are mutually exclusive: argv|cmd"
                )))
            }
            (None, true) => {
                // Ansible's argument check says it this way.
                return Err(ModuleError::Args(format!(
                    "{name}: one of the following is required: _raw_params, cmd, argv \
                     (no command given: write it after '{name}:' or set cmd/argv)"
                )));
            }
        };
        // creates/removes are checked on the target in the same command that runs the
        // program (one round trip); a skip prints a marker instead of running it.
        let guard = guard(&creates, &removes);
        // Ansible's own warning: `command` runs no shell, so it has no use for one.
        let warnings: Vec<String> = executable
            .iter()
            .filter(|_| !self.shell)
            .map(|exe| {
                format!(
                    "As of Ansible 2.4, the parameter 'executable' is no longer supported with \
                     the 'command' module. Not using '{exe}'."
                )
            })
            .collect();
        // `-P`: the shell's $PWD is the directory's real path, as after Python's chdir.
        let cd = chdir
            .as_ref()
            .map(|d| {
                format!(
                    "cd -P -- {} 2>/dev/null || {{ echo {NO_CHDIR}; exit 1; }}; ",
                    quote(d)
                )
            })
            .unwrap_or_default();
        if ctx.check_mode {
            // As in Ansible: with creates/removes the run is predictable (changed unless the
            // guard says skip); without, the command is skipped.
            if guard.is_empty() {
                let mut result = ModuleResult::changed(false)
                    .with("rc", 0)
                    .with_msg("Command would have run if not in check mode");
                result.skipped = true;
                return Ok(result);
            }
            let out = ctx.run(&format!("{cd}{guard}true"), None).await?;
            return Ok(match skipped(&out.stdout_text(), &creates, &removes) {
                Some(result) => result,
                None => ModuleResult::changed(true)
                    .with("rc", 0)
                    .with_msg("Command would have run if not in check mode"),
            });
        }
        let mut full = line.clone();
        if let (true, Some(exe)) = (self.shell, &executable) {
            full = format!("{} -c {}", quote(exe), quote(&full));
        }
        if !self.shell {
            // One program with quoted words: the subshell it runs in becomes it (no fork).
            full = format!("exec {full}");
        }
        let full = format!("{cd}{guard}{full}");
        let input = stdin.map(|s| {
            let mut bytes = s.into_bytes();
            if stdin_add_newline {
                bytes.push(b'\n');
            }
            bytes
        });
        let started = std::time::SystemTime::now();
        let out = ctx.run_user(&full, input).await?;
        if out.rc == 1 && out.stdout_text().trim_end() == NO_CHDIR {
            // As Ansible's module fails before it runs anything.
            let result = ModuleResult::changed(false)
                .with("cmd", cmd)
                .with("rc", ())
                .with("stdout", "")
                .with("stderr", "");
            return Err(result.fail("Unable to change directory before execution."));
        }
        if out.rc == 0 {
            if let Some(result) = skipped(&out.stdout_text(), &creates, &removes) {
                return Ok(with_warnings(result.with("cmd", cmd), warnings));
            }
        }
        if !self.shell {
            if let Some(failure) = program_not_started(&line, cmd.clone(), &out) {
                return Err(failure);
            }
        }
        match command_result(cmd, &out, started, strip) {
            Ok(result) => Ok(with_warnings(result.with_msg(""), warnings)),
            Err(ModuleError::FailedWith(result)) => Err(ModuleError::FailedWith(Box::new(
                with_warnings(*result, warnings),
            ))),
            Err(other) => Err(other),
        }
    }
}

/// What the command prints when `chdir` names no directory it can enter.
const NO_CHDIR: &str = "__kiln_no_chdir__";

/// Adds the module's warnings (registered as a list, shown as Ansible shows them) if any.
fn with_warnings(result: ModuleResult, warnings: Vec<String>) -> ModuleResult {
    if warnings.is_empty() {
        return result;
    }
    result.with("warnings", warnings)
}

/// The words of a program and its arguments, each quoted (with `expand`, `$VAR` and a
/// leading `~` expanded on the target, as Ansible's `expand_argument_vars` does). The first is
/// quoted even when it looks like `NAME=value`, which the shell would otherwise take for an
/// assignment: without a shell (as in Ansible) it names the program.
fn argv_line(words: impl Iterator<Item = String>, expand: bool) -> String {
    words
        .enumerate()
        .map(|(i, w)| {
            let word = if expand && expands(&w) {
                expanding_word(&w, false)
            } else if i == 0 && w.contains('=') {
                quote_always(&w)
            } else {
                quote(&w)
            };
            // An empty quote first: an expanded `NAME=…` is no assignment either.
            if i == 0 && w.contains('=') && !word.starts_with('\'') {
                format!("''{word}")
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `command` reports a program that could not be started as Ansible does (it runs no shell,
/// so the error is the operating system's): `rc` is the errno and nothing changed.
fn program_not_started(
    line: &str,
    cmd: Value,
    out: &crate::connection::ExecOutput,
) -> Option<ModuleError> {
    let stderr = out.stderr_text();
    let program = split_words(line).first().map(|w| unquote(w))?;
    // The shell's own words for it (dash, bash and busybox differ around them).
    let said =
        |what: &str| stderr.contains("exec") && stderr.contains(&format!("{program}: {what}"));
    let (errno, reason) = match out.rc {
        127 if said("not found") => (2, "No such file or directory"),
        126 if said("Permission denied") => (13, "Permission denied"),
        _ => return None,
    };
    let none: Vec<minijinja::Value> = Vec::new();
    let result = ModuleResult::changed(false)
        .with("cmd", cmd)
        .with("rc", errno)
        .with("stdout", "")
        .with("stderr", "")
        .with("stdout_lines", none.clone())
        .with("stderr_lines", none);
    Some(result.fail(format!("[Errno {errno}] {reason}: b'{program}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_words_are_quoted_and_never_an_assignment() {
        let line = |words: &[&str]| argv_line(words.iter().map(|w| w.to_string()), true);
        assert_eq!(line(&["FOO=bar", "env"]), "'FOO=bar' env");
        assert_eq!(line(&["echo", "a=b", "two words"]), "echo a=b 'two words'");
        assert_eq!(line(&["it's"]), "'it'\"'\"'s'");
        assert_eq!(line(&["X=$HOME"]), "''X=\"${HOME-\\$HOME}\"");
    }
}
