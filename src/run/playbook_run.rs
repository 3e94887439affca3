//! The library entry point for runs: a [`PlaybookRun`] holds loaded playbooks, an inventory,
//! the run's options and a reporter, and runs the playbooks until they end or the caller's
//! stop future resolves. The CLI, bake's provisioning and anything else that runs playbooks
//! in-process start here; none of them builds a command line to do it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::load::config::AnsibleConfig;
use crate::load::inventory::Inventory;
use crate::load::model::Playbook;
use crate::load::Loader;
use crate::output::ansible::{AnsibleText, TextOptions};
use crate::output::{json::JsonLines, json_doc::JsonDocument, Fanout, Reporter};
use crate::template::Templar;

use super::connect::{ConnectionDefaults, ConnectionPool};
use super::{RunOptions, Runner, Shared};

/// ansible-playbook's exit code after Ctrl-C.
pub const INTERRUPTED_EXIT_CODE: i32 = 99;

/// Playbooks ready to run against an inventory.
pub struct PlaybookRun {
    playbooks: Vec<Playbook>,
    loader: Loader,
    inventory: Inventory,
    options: RunOptions,
    reporter: Arc<dyn Reporter>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every playbook ran; the code is ansible-playbook's (0, 2 for failed hosts, 4 for
    /// unreachable ones).
    Finished { exit_code: i32 },
    /// The stop future resolved first: every connection was closed (which stops the
    /// targets' running commands) and the recap so far was printed.
    Stopped,
}

impl RunEnd {
    /// The process exit code ansible-playbook uses for this end.
    pub fn exit_code(self) -> i32 {
        match self {
            RunEnd::Finished { exit_code } => exit_code,
            RunEnd::Stopped => INTERRUPTED_EXIT_CODE,
        }
    }
}

impl PlaybookRun {
    /// `loader` is the one that loaded the playbooks (dynamic includes go through it again).
    /// Each playbook's directory adds its `group_vars/` and `host_vars/` to the inventory.
    pub fn new(
        playbooks: Vec<Playbook>,
        loader: Loader,
        mut inventory: Inventory,
        options: RunOptions,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        for playbook in &playbooks {
            if let Some(dir) = playbook.path.parent() {
                inventory.add_playbook_dir(&dir.canonicalize().unwrap_or(dir.to_path_buf()));
            }
        }
        Self {
            playbooks,
            loader,
            inventory,
            options,
            reporter,
        }
    }

    /// Runs every playbook in order; when `stop` resolves first, the run's work is dropped
    /// (no host starts anything more) and it ends as ansible-playbook's Ctrl-C does.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<RunEnd> {
        let (playbooks, mut runner) = self.into_runner()?;
        let mut exit_code = 0;
        tokio::pin!(stop);
        for playbook in &playbooks {
            tokio::select! {
                summary = runner.run(playbook) => exit_code = exit_code.max(summary?.exit_code),
                _ = &mut stop => {
                    runner.interrupt().await;
                    return Ok(RunEnd::Stopped);
                }
            }
        }
        Ok(RunEnd::Finished { exit_code })
    }

    /// The playbooks and a runner that has run nothing yet (for listing hosts and tasks).
    pub fn into_runner(self) -> Result<(Vec<Playbook>, Runner)> {
        let shared = Shared {
            templar: Templar::new(),
            pool: ConnectionPool::default(),
            reporter: self.reporter,
            opts: self.options,
            inventory: self.inventory,
            inventory_edit: Mutex::new(None),
            loader: Mutex::new(self.loader),
        };
        Ok((self.playbooks, Runner::new(shared)?))
    }
}

/// Loads every playbook in order, each with its own directory and `roles_path`; the loader
/// returned (the last playbook's) is the one dynamic includes go through.
pub fn load_playbooks(
    paths: &[PathBuf],
    roles_path: &[PathBuf],
) -> Result<(Vec<Playbook>, Loader)> {
    let mut playbooks = Vec::new();
    let mut loader = Loader::default();
    for path in paths {
        if !path.is_file() {
            return Err(Error::PlaybookNotFound(path.clone()));
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = dir.canonicalize().unwrap_or(dir);
        loader = Loader::new(dir, roles_path.to_vec());
        playbooks.push(loader.load_playbook(path)?);
    }
    Ok((playbooks, loader))
}

impl RunOptions {
    /// The options ansible.cfg and the `ANSIBLE_*` environment give a run before any command
    /// line: nothing selected or limited, no extra variables, verbosity 0.
    pub fn from_config(config: &AnsibleConfig) -> Result<Self> {
        Ok(Self {
            check: false,
            diff: false,
            forks: config.forks.unwrap_or(0),
            limit: None,
            tags: Default::default(),
            start_at_task: None,
            extra_vars: Default::default(),
            become_default: config.escalate.unwrap_or(false),
            become_user: config.become_user.clone(),
            become_method: config.become_method.clone(),
            connection: ConnectionDefaults {
                connection: None,
                remote_user: config.remote_user.clone(),
                private_key: config.private_key_file.clone(),
                host_key_checking: config.host_key_checking.unwrap_or(true),
                timeout: Duration::from_secs(config.timeout.unwrap_or(10)),
                ssh_args: config.ssh_args.clone().unwrap_or_default(),
                known_hosts: None,
                password: None,
                become_password: None,
            },
            verbosity: 0,
            gathering: match &config.gathering {
                Some(text) => text.parse()?,
                None => Default::default(),
            },
            force_handlers: config.force_handlers.unwrap_or(false),
            gather_subset: config.gather_subset.clone(),
            fact_cache: fact_cache(config)?,
        })
    }
}

/// ansible.cfg's fact cache: jsonfile in its directory, or none (ansible's `memory`).
fn fact_cache(config: &AnsibleConfig) -> Result<Option<super::fact_cache::FactCache>> {
    match config.fact_caching.as_deref().map(str::trim) {
        None | Some("" | "memory") => Ok(None),
        Some("jsonfile" | "ansible.builtin.jsonfile") => {
            let dir = config.fact_caching_connection.clone().ok_or_else(|| {
                Error::Usage(
                    "fact_caching = jsonfile needs fact_caching_connection (the cache \
                     directory) in ansible.cfg or ANSIBLE_CACHE_PLUGIN_CONNECTION"
                        .into(),
                )
            })?;
            Ok(Some(super::fact_cache::FactCache {
                dir,
                timeout: Duration::from_secs(config.fact_caching_timeout.unwrap_or(86400)),
            }))
        }
        Some(other) => Err(Error::Usage(format!(
            "fact_caching = {other}: kiln caches facts in memory or jsonfile"
        ))),
    }
}

/// The reporter a run prints with: stdout as ansible.cfg's `stdout_callback` and display
/// settings say, or (with `json_events` `-`) JSON lines instead; any other `json_events` path
/// gets JSON lines besides. The settings kiln ignores are reported as warnings first.
pub fn reporter(
    config: &AnsibleConfig,
    verbosity: u8,
    json_events: Option<&Path>,
) -> Result<Arc<dyn Reporter>> {
    let mut warnings = Vec::new();
    let stdout = stdout_reporter(config, verbosity, &mut warnings);
    let reporters: Vec<Arc<dyn Reporter>> = match json_events {
        Some(path) if path.as_os_str() == "-" => {
            vec![Arc::new(JsonLines::new(Box::new(std::io::stdout())))]
        }
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                action: "create the event file",
                source,
            })?;
            vec![Arc::new(JsonLines::new(Box::new(file))), stdout]
        }
        None => vec![stdout],
    };
    let reporter: Arc<dyn Reporter> = Arc::new(Fanout(reporters));
    warnings.extend(config.unhonoured.iter().map(|setting| {
        format!("kiln does not act on the ansible.cfg setting {setting}: it is ignored")
    }));
    warnings.extend(
        crate::load::config::unhonoured_environment()
            .into_iter()
            .map(|name| format!("kiln does not act on {name}: it is ignored")),
    );
    for warning in &warnings {
        reporter.warning(warning);
    }
    Ok(reporter)
}

/// What prints to stdout, from `stdout_callback` (`default`, `json`, `yaml`) and the display
/// settings; an unknown callback falls back to the default with a warning.
fn stdout_reporter(
    config: &AnsibleConfig,
    verbosity: u8,
    warnings: &mut Vec<String>,
) -> Arc<dyn Reporter> {
    let mut options = TextOptions {
        color: config.color_output(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        show_skipped: config.display_skipped_hosts.unwrap_or(true),
        show_ok: config.display_ok_hosts.unwrap_or(true),
        yaml: config.result_format.as_deref() == Some("yaml"),
    };
    let callback = config.stdout_callback.as_deref().unwrap_or("default");
    let short = callback.rsplit('.').next().unwrap_or(callback);
    match short {
        "json" => return Arc::new(JsonDocument::new(Box::new(std::io::stdout()))),
        "yaml" => options.yaml = true,
        "default" => {}
        other => warnings.push(format!(
            "kiln has no stdout callback '{other}' (it has default, json and yaml): using default"
        )),
    }
    Arc::new(AnsibleText::new(
        verbosity,
        options,
        Box::new(std::io::stdout()),
    ))
}
