//! Modules run on the controller and act on the target through shell commands over the
//! connection (the target needs `/bin/sh` and coreutils only).
//!
//! Each module first *plans*: it reads the target's state (one batched command where it can)
//! and decides what must change. In check mode it stops there and reports the plan; otherwise
//! it *applies* exactly that. Idempotence is an empty plan; `--diff` is the plan's diff.

pub mod args;
pub mod commands;
pub mod control;
pub mod files;
pub mod net;
pub mod packages;
pub mod paths;
pub mod python;
pub mod registry;
pub mod system;
pub mod util;

use std::path::PathBuf;

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::connection::session::BoxStream;
use crate::connection::{quote, Connection, ConnectionError, ExecOutput, SharedConnection};
use crate::template::Scope;
use crate::value::VarMap;
pub use args::Args;

/// A before/after pair for `--diff`.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

impl Diff {
    /// One setting (the hostname, the time zone) going from `before` to `after`, shown as
    /// Ansible's modules show it: `key = value` under `header`.
    pub fn setting(header: &str, key: &str, before: &str, after: &str) -> Diff {
        Diff {
            before_header: header.into(),
            after_header: header.into(),
            before: format!("{key} = {before}\n"),
            after: format!("{key} = {after}\n"),
        }
    }
}

/// What a module did (or, in check mode, would do).
#[derive(Debug, Clone, Default)]
pub struct ModuleResult {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    pub diffs: Vec<Diff>,
    /// Return values (`rc`, `stdout`, `path`, `mode`, …) as registered variables see them.
    pub data: IndexMap<String, Value>,
    /// Facts to store for the host, named as Ansible modules return them: `ansible_hostname`
    /// (seen as `ansible_facts.hostname`), or a plain `getent_passwd` / `services`.
    pub facts: Option<VarMap>,
}

impl ModuleResult {
    pub fn changed(changed: bool) -> Self {
        Self {
            changed,
            ..Default::default()
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
    /// Adds a fact (named as Ansible modules name them; see `facts`).
    pub fn with_fact(mut self, name: &str, value: Value) -> Self {
        self.facts
            .get_or_insert_with(VarMap::new)
            .insert(name.to_string(), value);
        self
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            failed: true,
            msg: Some(msg.into()),
            ..Default::default()
        }
    }
    /// The module's failure, keeping these return values (`rc`, `stdout`, `changed`, …) in
    /// the registered result.
    pub fn fail(mut self, msg: impl Into<String>) -> ModuleError {
        self.failed = true;
        self.msg = Some(msg.into());
        ModuleError::FailedWith(Box::new(self))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Bad arguments: the message names the module and the option.
    #[error("{0}")]
    Args(String),
    /// The module ran and failed on the target.
    #[error("{0}")]
    Failed(String),
    /// The module failed, with return values the registered result keeps
    /// (`ModuleResult::fail`).
    #[error("{}", .0.msg.as_deref().unwrap_or_default())]
    FailedWith(Box<ModuleResult>),
    #[error(transparent)]
    Unreachable(#[from] ConnectionError),
}

/// Everything a module may use while it runs for one host.
pub struct ModuleCtx<'a> {
    pub host: &'a str,
    /// Already running as the become user, if any (its shell was started under sudo).
    pub conn: &'a dyn Connection,
    pub check_mode: bool,
    pub diff: bool,
    pub environment: Vec<(String, String)>,
    pub scope: &'a Scope,
    /// Controller directories to find `src:` files in (role `files/`/`templates/`, playbook dir).
    pub search_paths: &'a [PathBuf],
    /// The host's connection beyond the task's shell: opened anew, or a program's stream.
    pub link: &'a dyn HostLink,
}

/// What a few modules need of the host's connection besides running commands in its shell.
/// Both act as the task's own connection does (same user, become, delegate).
#[async_trait]
pub trait HostLink: Send + Sync {
    /// Drops the host's connection and shells and opens them again (for `reboot`, whose
    /// host drops them).
    async fn reconnect(&self) -> Result<SharedConnection, ConnectionError>;
    /// Starts `command` (a shell command line) on the host and returns its stdin and stdout
    /// as one byte stream (for `synchronize`, whose rsync talks to the host's rsync).
    async fn stream(&self, command: &str) -> Result<BoxStream, ConnectionError>;
}

impl ModuleCtx<'_> {
    /// Runs one of kiln's own shell commands on the target, with `environment` applied.
    pub async fn run(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ModuleError> {
        Ok(self.conn.exec(&self.wrap(command), stdin).await?)
    }

    /// Runs one of kiln's own scripts without a subshell on the target (a fork less). The
    /// script must not `exit`, and may only set `k_t`, `k_rc`, `k_b`, `umask` and `set -C`.
    pub async fn run_inline(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ModuleError> {
        if !self.environment.is_empty() {
            // `environment` exports variables, which must not outlive the command.
            return self.run(command, stdin).await;
        }
        Ok(self.conn.exec_inline(command, stdin).await?)
    }

    /// Runs a user's command line (`command`, `shell`, `raw`, `script`).
    pub async fn run_user(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ModuleError> {
        Ok(self.conn.exec_user(&self.wrap(command), stdin).await?)
    }

    /// Applies `environment` to a command line.
    fn wrap(&self, command: &str) -> String {
        let mut full = String::new();
        for (k, v) in &self.environment {
            full.push_str(&format!("{k}={} ", quote(v)));
        }
        if !self.environment.is_empty() {
            full = format!("export {full}; ");
        }
        full.push_str(command);
        full
    }

    /// Runs a command that must succeed; its stderr becomes the failure message.
    pub async fn run_ok(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        what: &str,
    ) -> Result<ExecOutput, ModuleError> {
        succeeded(self.run(command, stdin).await?, what)
    }

    /// `run_ok` for a script that may run inline (see `run_inline`).
    pub async fn run_ok_inline(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        what: &str,
    ) -> Result<ExecOutput, ModuleError> {
        succeeded(self.run_inline(command, stdin).await?, what)
    }

    /// Finds a controller-side file for `src:` in the search paths (`subdir` first).
    pub fn find_source(&self, name: &str, subdir: &str) -> Option<PathBuf> {
        let path = std::path::Path::new(name);
        if path.is_absolute() {
            return path.exists().then(|| path.to_path_buf());
        }
        self.search_paths
            .iter()
            .flat_map(|dir| [dir.join(subdir).join(name), dir.join(name)])
            .find(|p| p.exists())
    }
}

/// A module fails one way: with an `Err` (`ModuleError::Failed` for a message,
/// `ModuleResult::fail` to keep return values such as `rc` and `stdout`), never with an `Ok`
/// result marked failed.
#[async_trait]
pub trait Module: Send + Sync {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError>;
}

/// The output of a command that must have succeeded; its stderr (or stdout) becomes the
/// failure message otherwise.
fn succeeded(out: ExecOutput, what: &str) -> Result<ExecOutput, ModuleError> {
    if out.rc != 0 {
        let stderr = out.stderr_text();
        let detail = if stderr.trim().is_empty() {
            out.stdout_text()
        } else {
            stderr
        };
        return Err(ModuleError::Failed(format!(
            "{what} failed (rc={}): {}",
            out.rc,
            detail.trim()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Diff;

    #[test]
    fn a_setting_diff_reads_as_ansibles_hostname_and_timezone_diffs() {
        let diff = Diff::setting("timezone", "name", "Etc/UTC", "Europe/Paris");
        assert_eq!(diff.before_header, "timezone");
        assert_eq!(diff.after_header, "timezone");
        assert_eq!(diff.before, "name = Etc/UTC\n");
        assert_eq!(diff.after, "name = Europe/Paris\n");
    }
}
