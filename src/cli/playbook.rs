//! `kiln playbook` / `kiln-playbook`: ansible-playbook's command line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::error::Error;
use crate::load::config::AnsibleConfig;
use crate::load::inventory::Inventory;
use crate::load::model::{Playbook, TaskItem};
use crate::load::Loader;
use crate::output::ansible::{AnsibleText, TextOptions};
use crate::output::{json::JsonLines, json_doc::JsonDocument, Fanout, Reporter};
use crate::run::connect::{ConnectionDefaults, ConnectionPool};
use crate::run::tags::TagFilter;
use crate::run::{RunOptions, Runner, Shared};
use crate::template::Templar;

#[derive(Debug, Args, Clone)]
pub struct PlaybookArgs {
    /// Playbook files to run, in order.
    #[arg(required_unless_present = "version")]
    pub playbooks: Vec<PathBuf>,
    /// Print the ansible-core version kiln follows, in ansible-playbook's layout (Packer,
    /// Vagrant and Molecule read it), and exit.
    #[arg(long = "version")]
    pub version: bool,
    /// Inventory file, directory, or comma-separated host list (repeatable).
    #[arg(short = 'i', long = "inventory", visible_alias = "inventory-file")]
    pub inventory: Vec<String>,
    /// Variables as key=value, JSON/YAML, or @file (repeatable).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Limit to hosts matching this pattern.
    #[arg(short = 'l', long = "limit")]
    pub limit: Option<String>,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags")]
    pub tags: Vec<String>,
    #[arg(long = "skip-tags")]
    pub skip_tags: Vec<String>,
    /// Report what would change without changing anything.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Show differences in changed files.
    #[arg(short = 'D', long = "diff")]
    pub diff: bool,
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    #[arg(long = "list-hosts")]
    pub list_hosts: bool,
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    #[arg(long = "list-tags")]
    pub list_tags: bool,
    #[arg(long = "start-at-task")]
    pub start_at_task: Option<String>,
    /// Hosts in flight at once (default: all).
    #[arg(short = 'f', long = "forks")]
    pub forks: Option<usize>,
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    #[arg(short = 'b', long = "become")]
    pub become_flag: bool,
    #[arg(long = "become-user")]
    pub become_user: Option<String>,
    #[arg(long = "become-method")]
    pub become_method: Option<String>,
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// Ansible 1.x's spelling of --become (Vagrant passes it in its 1.8 compatibility mode).
    #[arg(short = 's', long = "sudo", hide = true)]
    pub sudo: bool,
    /// Ansible 1.x's spelling of --become-user.
    #[arg(short = 'U', long = "sudo-user", hide = true)]
    pub sudo_user: Option<String>,
    /// Ansible 1.x's spelling of --ask-become-pass (refused as -K is).
    #[arg(long = "ask-sudo-pass", hide = true)]
    pub ask_sudo_pass: bool,
    #[arg(short = 'k', long = "ask-pass")]
    pub ask_pass: bool,
    #[arg(long = "private-key", visible_alias = "key-file")]
    pub private_key: Option<PathBuf>,
    #[arg(short = 'c', long = "connection")]
    pub connection: Option<String>,
    /// SSH connection timeout in seconds.
    #[arg(short = 'T', long = "timeout")]
    pub timeout: Option<u64>,
    #[arg(long = "ssh-common-args", allow_hyphen_values = true)]
    pub ssh_common_args: Option<String>,
    #[arg(long = "ssh-extra-args", allow_hyphen_values = true)]
    pub ssh_extra_args: Option<String>,
    #[arg(long = "scp-extra-args", allow_hyphen_values = true)]
    pub scp_extra_args: Option<String>,
    #[arg(long = "sftp-extra-args", allow_hyphen_values = true)]
    pub sftp_extra_args: Option<String>,
    #[arg(long = "vault-password-file", visible_alias = "vault-pass-file")]
    pub vault_password_file: Vec<PathBuf>,
    #[arg(long = "vault-id")]
    pub vault_id: Vec<String>,
    #[arg(
        short = 'J',
        long = "ask-vault-pass",
        visible_alias = "ask-vault-password"
    )]
    pub ask_vault_pass: bool,
    #[arg(short = 'M', long = "module-path")]
    pub module_path: Vec<String>,
    #[arg(long = "flush-cache")]
    pub flush_cache: bool,
    #[arg(long = "force-handlers")]
    pub force_handlers: bool,
    #[arg(long = "step")]
    pub step: bool,
    /// More output (-v shows results, -vvv shows SSH round trips).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Also write a JSON-lines event stream to this file (`-` for stdout instead of text).
    #[arg(long = "json-events", env = "KILN_JSON_EVENTS")]
    pub json_events: Option<PathBuf>,
}

fn inventory_sources(args: &PlaybookArgs, config: &AnsibleConfig) -> Vec<PathBuf> {
    if !args.inventory.is_empty() {
        return args.inventory.iter().map(PathBuf::from).collect();
    }
    if !config.inventory.is_empty() {
        return config.inventory.clone();
    }
    let default = PathBuf::from("/etc/ansible/hosts");
    if default.exists() {
        vec![default]
    } else {
        vec![]
    }
}

/// Loads every playbook, with the roles path from ansible.cfg and the environment.
fn load_playbooks(
    args: &PlaybookArgs,
    config: &AnsibleConfig,
) -> anyhow::Result<(Vec<Playbook>, Loader)> {
    let mut playbooks = Vec::new();
    let mut loader = Loader::default();
    for path in &args.playbooks {
        if !path.is_file() {
            // ansible-playbook's words and exit code (1, not a usage error's 5).
            anyhow::bail!("the playbook: {} could not be found", path.display());
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = dir.canonicalize().unwrap_or(dir);
        loader = Loader::new(dir, config.roles_path.clone());
        playbooks.push(loader.load_playbook(path)?);
    }
    Ok((playbooks, loader))
}

/// `kiln playbook`: runs the playbooks; SIGINT or SIGTERM stops the run as
/// ansible-playbook's Ctrl-C does (remote commands stopped, recap so far, exit 99).
pub async fn run(args: PlaybookArgs) -> anyhow::Result<i32> {
    run_with(args, Interrupts::StopTheRun).await
}

/// The playbooks as one step of a larger command (a bake's provisioning), which handles
/// SIGINT and SIGTERM itself (its cleanup decides the exit).
pub async fn run_as_step(args: PlaybookArgs) -> anyhow::Result<i32> {
    run_with(args, Interrupts::LeftToCaller).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupts {
    StopTheRun,
    LeftToCaller,
}

async fn run_with(args: PlaybookArgs, interrupts: Interrupts) -> anyhow::Result<i32> {
    super::raise_file_limit();
    let config = AnsibleConfig::discover();
    if args.version {
        print!("{}", version_text(&config));
        return Ok(0);
    }
    if args.ask_pass || args.ask_become_pass || args.ask_sudo_pass {
        return Err(Error::Usage(
            "kiln does not prompt for passwords: use SSH keys and passwordless sudo (drop -k/-K)"
                .into(),
        )
        .into());
    }
    let (playbooks, loader) = load_playbooks(&args, &config)?;
    if args.syntax_check {
        for pb in &playbooks {
            println!("\nplaybook: {}", pb.path.display());
        }
        return Ok(0);
    }
    let mut inventory = Inventory::load(&inventory_sources(&args, &config))?;
    for pb in &playbooks {
        if let Some(dir) = pb.path.parent() {
            inventory.add_playbook_dir(&dir.canonicalize().unwrap_or(dir.to_path_buf()));
        }
    }
    let extra_vars = super::extra_vars::parse(&args.extra_vars)?;
    let verbosity = args.verbose;
    let mut warnings = Vec::new();
    let stdout_reporter = stdout_reporter(&config, verbosity, &mut warnings);
    let mut reporters: Vec<Arc<dyn Reporter>> = Vec::new();
    match &args.json_events {
        Some(path) if path.as_os_str() == "-" => {
            reporters.push(Arc::new(JsonLines::new(Box::new(std::io::stdout()))))
        }
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating the event file {}", path.display()))?;
            reporters.push(Arc::new(JsonLines::new(Box::new(file))));
            reporters.push(stdout_reporter);
        }
        None => reporters.push(stdout_reporter),
    }
    let reporter = Arc::new(Fanout(reporters));
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
    let ssh_args = [
        config.ssh_args.clone().unwrap_or_default(),
        args.ssh_common_args.clone().unwrap_or_default(),
        args.ssh_extra_args.clone().unwrap_or_default(),
    ]
    .join(" ");
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        forks: args.forks.or(config.forks).unwrap_or(0),
        limit: args.limit.clone(),
        tags: TagFilter {
            only: split_tags(&args.tags),
            skip: split_tags(&args.skip_tags),
        },
        start_at_task: args.start_at_task.clone(),
        extra_vars,
        become_default: args.become_flag || args.sudo || config.escalate.unwrap_or(false),
        become_user: args
            .become_user
            .clone()
            .or(args.sudo_user.clone())
            .or(config.become_user.clone()),
        become_method: args.become_method.clone().or(config.become_method.clone()),
        connection: ConnectionDefaults {
            connection: args.connection.clone(),
            remote_user: args.user.clone().or(config.remote_user.clone()),
            private_key: args.private_key.clone().or(config.private_key_file.clone()),
            host_key_checking: config.host_key_checking.unwrap_or(true),
            timeout: Duration::from_secs(args.timeout.or(config.timeout).unwrap_or(10)),
            ssh_args,
        },
        verbosity,
        gathering: match &config.gathering {
            Some(text) => text.parse().map_err(Error::Usage)?,
            None => Default::default(),
        },
    };
    if args.list_hosts || args.list_tasks || args.list_tags {
        return list(&args, &playbooks, inventory, opts);
    }
    let shared = Shared {
        templar: Templar::new(),
        pool: ConnectionPool::default(),
        reporter,
        opts,
        inventory,
        loader: Mutex::new(loader),
    };
    let mut runner = Runner::new(shared)?;
    let mut code = 0;
    let interrupt = interrupt_signal(interrupts);
    tokio::pin!(interrupt);
    for playbook in &playbooks {
        tokio::select! {
            summary = runner.run(playbook) => code = code.max(summary?.exit_code),
            _ = &mut interrupt => {
                // The run's future is dropped here, so no host starts anything more.
                runner.interrupt().await;
                eprintln!("[ERROR]: User interrupted execution");
                return Ok(INTERRUPTED);
            }
        }
    }
    Ok(code)
}

/// ansible-playbook's exit code after Ctrl-C.
const INTERRUPTED: i32 = 99;

/// Resolves at the first SIGINT or SIGTERM (never, when the caller handles them or neither
/// can be watched).
async fn interrupt_signal(interrupts: Interrupts) {
    use tokio::signal::unix::{signal, SignalKind};
    if interrupts == Interrupts::LeftToCaller {
        return std::future::pending().await;
    }
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
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

/// `--version` as ansible-playbook prints it: tools match `[core X.Y.Z]` on the first line
/// to pick their code path for that Ansible version.
fn version_text(config: &AnsibleConfig) -> String {
    let program = std::env::args()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|name| {
            if name == "kiln" {
                "kiln playbook".to_string()
            } else {
                name
            }
        })
        .unwrap_or_else(|| "kiln-playbook".into());
    let config_file = config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "None".into());
    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!(
        "{program} [core {}]\n  config file = {config_file}\n  kiln version = {}\n  \
         configured module search path = Default w/o overrides\n  \
         executable location = {executable}\n  jinja version = minijinja 3\n  libyaml = False\n",
        crate::run::ANSIBLE_COMPAT_VERSION,
        env!("CARGO_PKG_VERSION"),
    )
}

fn split_tags(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// `--list-hosts`, `--list-tasks`, `--list-tags` in ansible-playbook's layout.
fn list(
    args: &PlaybookArgs,
    playbooks: &[Playbook],
    inventory: Inventory,
    opts: RunOptions,
) -> anyhow::Result<i32> {
    let shared = Shared {
        templar: Templar::new(),
        pool: ConnectionPool::default(),
        reporter: Arc::new(Fanout(vec![])),
        opts: opts.clone(),
        inventory,
        loader: Mutex::new(Loader::default()),
    };
    let mut runner = Runner::new(shared)?;
    for pb in playbooks {
        println!("\nplaybook: {}", pb.path.display());
        for (i, play) in pb.plays.iter().enumerate() {
            let hosts = runner.play_hosts(play)?;
            println!(
                "\n  play #{} ({}): {}\tTAGS: [{}]",
                i + 1,
                play.hosts,
                play.name,
                sorted_tags(&play.inherited.tags).join(", ")
            );
            if args.list_hosts {
                println!(
                    "    pattern: ['{}']\n    hosts ({}):",
                    play.hosts,
                    hosts.len()
                );
                for h in &hosts {
                    println!("      {h}");
                }
            }
            if args.list_tasks || args.list_tags {
                let mut tasks = Vec::new();
                for section in &play.sections {
                    collect(section, &mut tasks);
                }
                if args.list_tasks {
                    println!("    tasks:");
                    for task in tasks
                        .iter()
                        .filter(|t| opts.tags.selects(&t.inherited.tags))
                    {
                        println!(
                            "      {}\tTAGS: [{}]",
                            task.display_name(),
                            sorted_tags(&task.inherited.tags).join(", ")
                        );
                    }
                }
                if args.list_tags {
                    let all: Vec<String> = tasks
                        .iter()
                        .flat_map(|t| t.inherited.tags.clone())
                        .collect();
                    println!("      TASK TAGS: [{}]", sorted_tags(&all).join(", "));
                }
            }
        }
    }
    Ok(0)
}

/// Tags as ansible-playbook lists them: sorted, each once.
fn sorted_tags(tags: &[String]) -> Vec<String> {
    let mut tags = tags.to_vec();
    tags.sort();
    tags.dedup();
    tags
}

fn collect(items: &[TaskItem], out: &mut Vec<Arc<crate::load::model::Task>>) {
    crate::load::tasklist::flatten_tasks(items, out);
}
