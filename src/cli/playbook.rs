//! `kiln playbook` / `kiln-playbook`: ansible-playbook's command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::load::config::AnsibleConfig;
use crate::load::inventory::Inventory;
use crate::load::model::TaskItem;
use crate::run::playbook_run::{load_playbooks, reporter, PlaybookRun, RunEnd};
use crate::run::tags::TagFilter;
use crate::run::RunOptions;

#[derive(Debug, Args, Clone, Default)]
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
    /// Ansible 1.x's spelling of --ask-become-pass.
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
    #[command(flatten)]
    pub vault: super::vault::PasswordArgs,
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

pub(crate) fn inventory_sources(args: &PlaybookArgs, config: &AnsibleConfig) -> Vec<PathBuf> {
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
    super::vault::install_run_keyring(&args.vault, &config)?;
    let (playbooks, loader) = load_playbooks(&args.playbooks, &config.roles_path)?;
    if args.syntax_check {
        for pb in &playbooks {
            println!("\nplaybook: {}", pb.path.display());
        }
        return Ok(0);
    }
    let inventory = Inventory::load(&inventory_sources(&args, &config))?;
    let reporter = reporter(&config, args.verbose, args.json_events.as_deref())?;
    let mut options = run_options(&args, &config)?;
    if args.ask_pass {
        let password = crate::vault::secrets::prompt_hidden("SSH password: ")?;
        options.connection.password = Some(crate::connection::Password(password));
    }
    if args.ask_become_pass || args.ask_sudo_pass {
        let password = crate::vault::secrets::prompt_hidden("BECOME password: ")?;
        options.connection.become_password = Some(crate::connection::Password(password));
    }
    let run = PlaybookRun::new(playbooks, loader, inventory, options, reporter);
    if args.list_hosts || args.list_tasks || args.list_tags {
        return list(&args, run);
    }
    let end = run.run_until(interrupt_signal(interrupts)).await?;
    if end == RunEnd::Stopped {
        eprintln!("[ERROR]: User interrupted execution");
    }
    Ok(end.exit_code())
}

/// ansible.cfg's options with the command line's on top.
pub(crate) fn run_options(
    args: &PlaybookArgs,
    config: &AnsibleConfig,
) -> anyhow::Result<RunOptions> {
    let mut options = RunOptions::from_config(config)?;
    options.check = args.check;
    options.diff = args.diff;
    options.forks = args.forks.unwrap_or(options.forks);
    options.limit = args.limit.clone();
    options.tags = TagFilter {
        only: split_tags(&args.tags),
        skip: split_tags(&args.skip_tags),
    };
    options.start_at_task = args.start_at_task.clone();
    options.extra_vars = super::extra_vars::parse(&args.extra_vars)?;
    options.become_default |= args.become_flag || args.sudo;
    options.become_user = args
        .become_user
        .clone()
        .or(args.sudo_user.clone())
        .or(options.become_user);
    options.become_method = args.become_method.clone().or(options.become_method);
    options.verbosity = args.verbose;
    options.force_handlers |= args.force_handlers;
    let connection = &mut options.connection;
    connection.connection = args.connection.clone();
    connection.remote_user = args.user.clone().or(connection.remote_user.take());
    connection.private_key = args.private_key.clone().or(connection.private_key.take());
    if let Some(timeout) = args.timeout {
        connection.timeout = Duration::from_secs(timeout);
    }
    connection.ssh_args = [
        std::mem::take(&mut connection.ssh_args),
        args.ssh_common_args.clone().unwrap_or_default(),
        args.ssh_extra_args.clone().unwrap_or_default(),
    ]
    .join(" ");
    Ok(options)
}

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
fn list(args: &PlaybookArgs, run: PlaybookRun) -> anyhow::Result<i32> {
    let (playbooks, mut runner) = run.into_runner()?;
    let opts = runner.shared.opts.clone();
    for pb in &playbooks {
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
