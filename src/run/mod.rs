//! Running playbooks: plays over host batches, tasks in lockstep across hosts (the linear
//! strategy), handlers at the end of each section, and the recap.

mod actions;
mod async_task;
pub mod connect;
mod error;
pub mod fact_cache;
mod free;
mod host;
mod host_link;
mod include_vars;
mod inventory_edit;
mod invoke;
mod items;
pub mod loops;
pub mod playbook_run;
pub mod state;
pub mod tags;
mod target;
pub mod vars;

use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::Value;

use crate::error::{Error, Result};
use crate::load::inventory::{patterns, Inventory};
use crate::load::model::{Action, Play, Playbook, Strategy, Task, VarMap};
use crate::load::Loader;
use crate::output::{Reporter, Stats};
use crate::template::{map_value, Scope, Templar};
use connect::{ConnectionDefaults, ConnectionPool};
use state::HostState;
use tags::TagFilter;
use vars::{PlayLayers, OMIT};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    /// Hosts in flight at once (0: all).
    pub forks: usize,
    pub limit: Option<String>,
    pub tags: TagFilter,
    pub start_at_task: Option<String>,
    pub extra_vars: VarMap,
    pub become_default: bool,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub connection: ConnectionDefaults,
    pub verbosity: u8,
    pub gathering: Gathering,
    /// ansible.cfg's `gather_subset`, for plays that set none.
    pub gather_subset: Vec<String>,
    /// `fact_caching = jsonfile`: facts kept between runs.
    pub fact_cache: Option<fact_cache::FactCache>,
    /// Notified handlers run on hosts that failed later (a play's `force_handlers:` wins).
    pub force_handlers: bool,
}

/// ansible.cfg's `gathering`: when a play without `gather_facts:` gathers facts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gathering {
    /// Always, unless the play says `gather_facts: no` (Ansible's default).
    #[default]
    Implicit,
    /// Only when the play says `gather_facts: yes`.
    Explicit,
    /// As implicit, but not again for a host whose facts were already gathered in this run.
    Smart,
}

impl std::str::FromStr for Gathering {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "implicit" => Ok(Self::Implicit),
            "explicit" => Ok(Self::Explicit),
            "smart" => Ok(Self::Smart),
            other => Err(Error::Usage(format!(
                "gathering = {other} is not one of implicit, explicit, smart"
            ))),
        }
    }
}

/// What every host's task run may read; nothing here changes while a task runs.
pub struct Shared {
    pub templar: Arc<Templar>,
    pub pool: ConnectionPool,
    pub reporter: Arc<dyn Reporter>,
    pub opts: RunOptions,
    pub inventory: Inventory,
    /// The inventory as `add_host`/`group_by` left it during the current task, if they ran.
    pub inventory_edit: Mutex<Option<Inventory>>,
    pub loader: Mutex<Loader>,
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub stats: IndexMap<String, Stats>,
    pub exit_code: i32,
}

/// The state of the play being run.
#[derive(Clone)]
pub(crate) struct PlayCtx {
    pub play: Arc<Play>,
    pub layers: PlayLayers,
    pub handlers: Vec<Arc<Task>>,
    /// The hosts of the current batch.
    pub hosts: Vec<String>,
    pub end_play: bool,
    pub end_batch: bool,
}

pub struct Runner {
    pub shared: Arc<Shared>,
    pub(crate) hosts: IndexMap<String, HostState>,
    pub(crate) start_at: Option<String>,
    /// How many dynamic includes deep the run is (a file may include itself under a `when`).
    pub(crate) include_depth: usize,
    /// Keywords kiln does not act on that this run has warned about already.
    pub(crate) warned_keywords: std::collections::HashSet<&'static str>,
}

/// The ansible-core release whose behaviour kiln follows (`ansible_version`, `--version`).
pub const ANSIBLE_COMPAT_VERSION: &str = "2.19.0";

impl Runner {
    pub fn new(shared: Shared) -> Result<Self> {
        let mut hosts = IndexMap::new();
        for name in shared.inventory.hosts.keys() {
            let mut state = HostState {
                inventory_vars: Arc::new(shared.inventory.host_vars(name)?),
                ..Default::default()
            };
            if let Some(cached) = shared.opts.fact_cache.as_ref().and_then(|c| c.load(name)) {
                state.set_facts(cached);
            }
            hosts.insert(name.clone(), state);
        }
        let start_at = shared.opts.start_at_task.clone();
        Ok(Self {
            shared: Arc::new(shared),
            hosts,
            start_at,
            include_depth: 0,
            warned_keywords: Default::default(),
        })
    }

    pub async fn run(&mut self, playbook: &Playbook) -> Result<RunSummary> {
        self.shared
            .reporter
            .playbook_start(&playbook.path.display().to_string());
        for play in &playbook.plays {
            self.run_play(play.clone()).await?;
        }
        Ok(self.finish().await)
    }

    /// Ends an interrupted run (the future of [`Runner::run`] was dropped mid-task): closes
    /// every connection, which makes each target's session stop its running command and
    /// clean up, and prints the recap so far.
    pub async fn interrupt(&mut self) -> RunSummary {
        self.finish().await
    }

    /// Closes the connections and prints the recap.
    async fn finish(&mut self) -> RunSummary {
        self.shared.pool.close_all().await;
        let stats: IndexMap<String, Stats> = self
            .hosts
            .iter()
            .filter(|(_, s)| s.stats != Stats::default())
            .map(|(h, s)| (h.clone(), s.stats.clone()))
            .collect();
        self.shared.reporter.recap(&stats);
        let exit_code = if stats.values().any(|s| s.failed > 0) {
            2
        } else if stats.values().any(|s| s.unreachable > 0) {
            4
        } else {
            0
        };
        RunSummary { stats, exit_code }
    }

    /// The hosts a play runs on: its pattern (templated with extra vars), cut by `--limit`.
    pub fn play_hosts(&mut self, play: &Play) -> Result<Vec<String>> {
        let scope = Scope::new(
            self.shared.templar.clone(),
            vec![
                play.vars.clone(),
                Arc::new(self.shared.opts.extra_vars.clone()),
            ],
        );
        let pattern = self
            .shared
            .templar
            .render_str(&play.hosts, &scope)
            .map_err(|e| {
                Error::invalid(play.location.clone(), format!("in 'hosts': {}", e.message))
            })?
            .to_string();
        let mut selected = patterns::select(&self.shared.inventory, &pattern);
        if selected.is_empty()
            && pattern
                .split([':', ','])
                .any(|p| p.trim() == "localhost" || p.trim() == "127.0.0.1")
        {
            // Ansible's implicit localhost: a local connection, outside `all`.
            let mut vars = VarMap::new();
            vars.insert("ansible_connection".into(), Value::from("local"));
            self.hosts
                .entry("localhost".into())
                .or_insert_with(|| HostState {
                    inventory_vars: Arc::new(vars),
                    ..Default::default()
                });
            selected.push("localhost".into());
        }
        if let Some(limit) = &self.shared.opts.limit {
            let allowed = patterns::select(&self.shared.inventory, limit);
            selected.retain(|h| allowed.contains(h) || limit.split([':', ',']).any(|l| l == h));
        }
        Ok(selected)
    }

    async fn run_play(&mut self, play: Arc<Play>) -> Result<()> {
        self.shared.reporter.play_start(&play.name);
        let all_hosts = self.play_hosts(&play)?;
        if all_hosts.is_empty() {
            self.shared.reporter.no_hosts_matched();
            return Ok(());
        }
        // A host that failed or was unreachable stays out for the rest of the run, as in
        // Ansible; `meta: end_host` lasts one play.
        for state in self.hosts.values_mut() {
            state.ended = false;
            state.notified.clear();
        }
        let layers = self.play_layers(&play, &all_hosts)?;
        for batch in batches(&play.serial, &all_hosts) {
            let mut ctx = PlayCtx {
                play: play.clone(),
                layers: layers.clone(),
                handlers: play.handlers.clone(),
                hosts: batch.clone(),
                end_play: false,
                end_batch: false,
            };
            for host in &batch {
                let magic = Arc::make_mut(ctx.layers.magic.entry(host.clone()).or_default());
                magic.insert("ansible_play_batch".into(), Value::from(batch.clone()));
            }
            let gather = play
                .gather_facts
                .unwrap_or(self.shared.opts.gathering != Gathering::Explicit);
            if gather {
                self.gather_facts(&mut ctx).await;
            }
            for section in &play.sections {
                if ctx.end_play || ctx.end_batch {
                    break;
                }
                match play.strategy {
                    Strategy::Linear => self.run_items(&mut ctx, section, &batch).await?,
                    Strategy::Free => self.run_free(&mut ctx, section, &batch).await?,
                }
                self.flush_handlers(&mut ctx).await?;
            }
            if ctx.end_play {
                break;
            }
            if self.batch_failed(&play, &batch) {
                break;
            }
        }
        Ok(())
    }

    /// A batch stops the play when every host in it failed or max_fail_percentage is passed.
    fn batch_failed(&self, play: &Play, batch: &[String]) -> bool {
        let failed = batch
            .iter()
            .filter(|h| {
                self.hosts
                    .get(*h)
                    .is_some_and(|s| s.failed || s.unreachable)
            })
            .count();
        if failed == batch.len() {
            return true;
        }
        match play.max_fail_percentage {
            Some(max) => (failed as f64) * 100.0 / (batch.len() as f64) > max,
            None => false,
        }
    }

    fn play_layers(&mut self, play: &Play, hosts: &[String]) -> Result<PlayLayers> {
        let mut play_vars = (*play.vars).clone();
        play_vars
            .entry("playbook_dir".into())
            .or_insert_with(|| Value::from(play.playbook_dir.display().to_string()));
        let play_vars = Arc::new(play_vars);
        let extra = Arc::new(self.shared.opts.extra_vars.clone());
        let vars_files = Arc::new(self.load_vars_files(play, &play_vars, &extra)?);
        let groups: IndexMap<String, Value> = self
            .shared
            .inventory
            .groups
            .keys()
            .map(|g| (g.clone(), Value::from(self.shared.inventory.group_hosts(g))))
            .collect();
        let groups = map_value(groups);
        let opts = &self.shared.opts;
        let version = map_value(
            [
                ("full", ANSIBLE_COMPAT_VERSION),
                ("string", ANSIBLE_COMPAT_VERSION),
                ("major", "2"),
                ("minor", "19"),
                ("revision", "0"),
            ]
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.parse::<i64>().map(Value::from).unwrap_or(Value::from(v)),
                )
            })
            .collect(),
        );
        let mut magic = IndexMap::new();
        for host in hosts {
            let mut m = VarMap::new();
            m.insert("inventory_hostname".into(), Value::from(host.as_str()));
            m.insert(
                "inventory_hostname_short".into(),
                Value::from(host.split('.').next().unwrap_or(host)),
            );
            m.insert(
                "group_names".into(),
                Value::from(self.shared.inventory.group_names(host)),
            );
            m.insert("groups".into(), groups.clone());
            m.insert("play_hosts".into(), Value::from(hosts.to_vec()));
            m.insert("ansible_play_hosts".into(), Value::from(hosts.to_vec()));
            m.insert("ansible_play_hosts_all".into(), Value::from(hosts.to_vec()));
            m.insert("ansible_play_name".into(), Value::from(play.name.as_str()));
            m.insert(
                "playbook_dir".into(),
                Value::from(play.playbook_dir.display().to_string()),
            );
            m.insert("ansible_check_mode".into(), Value::from(opts.check));
            m.insert("ansible_diff_mode".into(), Value::from(opts.diff));
            m.insert("ansible_verbosity".into(), Value::from(opts.verbosity));
            m.insert("ansible_forks".into(), Value::from(opts.forks));
            m.insert(
                "ansible_run_tags".into(),
                Value::from(if opts.tags.only.is_empty() {
                    vec!["all".to_string()]
                } else {
                    opts.tags.only.clone()
                }),
            );
            m.insert(
                "ansible_skip_tags".into(),
                Value::from(opts.tags.skip.clone()),
            );
            m.insert("ansible_version".into(), version.clone());
            m.insert("omit".into(), Value::from(OMIT));
            magic.insert(host.clone(), Arc::new(m));
        }
        let mut role_defaults = VarMap::new();
        let mut role_vars = VarMap::new();
        for role in &play.roles {
            role_defaults.extend(role.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
            role_vars.extend(role.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(PlayLayers {
            role_defaults: Arc::new(role_defaults),
            role_vars: Arc::new(role_vars),
            play_vars,
            vars_files,
            extra_vars: extra,
            magic,
            default_connection: self.shared.opts.connection.connection.clone(),
        })
    }

    /// `vars_files`: each entry a file, or a list whose first existing file is used.
    fn load_vars_files(
        &self,
        play: &Play,
        play_vars: &Arc<VarMap>,
        extra: &Arc<VarMap>,
    ) -> Result<VarMap> {
        let scope = Scope::new(
            self.shared.templar.clone(),
            vec![play_vars.clone(), extra.clone()],
        );
        let mut out = VarMap::new();
        for entry in &play.vars_files {
            let candidates: Vec<Value> = match entry.kind() {
                minijinja::value::ValueKind::Seq => {
                    entry.try_iter().map(|i| i.collect()).unwrap_or_default()
                }
                _ => vec![entry.clone()],
            };
            let mut found = None;
            for candidate in &candidates {
                let name = self
                    .shared
                    .templar
                    .render_str(&candidate.to_string(), &scope)
                    .map_err(|e| {
                        Error::invalid(
                            play.location.clone(),
                            format!("in vars_files: {}", e.message),
                        )
                    })?
                    .to_string();
                let path = play.playbook_dir.join(&name);
                if path.exists() {
                    found = Some(path);
                    break;
                }
            }
            let path = found.ok_or_else(|| {
                Error::invalid(
                    play.location.clone(),
                    format!(
                        "vars file {} was not found (relative to {})",
                        entry,
                        play.playbook_dir.display()
                    ),
                )
            })?;
            out.extend(crate::load::load_vars_path(&path)?);
        }
        Ok(out)
    }

    async fn gather_facts(&mut self, ctx: &mut PlayCtx) {
        let subset = match &ctx.play.gather_subset {
            Some(subset) => subset.clone(),
            None => self.shared.opts.gather_subset.clone(),
        };
        let mut gather_args = IndexMap::new();
        if !subset.is_empty() {
            gather_args.insert("gather_subset".to_string(), Value::from(subset));
        }
        let task = Arc::new(Task {
            name: Some("Gathering Facts".into()),
            action: Action::from_spec(crate::modules::registry::fact_gathering()),
            args: map_value(gather_args),
            // Facts are gathered with the play's become and environment, as in Ansible.
            inherited: crate::load::model::Inherited {
                tags: vec!["always".into()],
                when: vec![],
                ..ctx.play.inherited.clone()
            },
            loop_spec: None,
            register: None,
            changed_when: vec![],
            failed_when: vec![],
            until: vec![],
            retries: None,
            delay: None,
            notify: vec![],
            listen: vec![],
            delegate_facts: None,
            async_seconds: None,
            poll: None,
            ignored_keywords: vec![],
            location: ctx.play.location.clone(),
        });
        let smart = self.shared.opts.gathering == Gathering::Smart;
        let hosts: Vec<String> = ctx
            .hosts
            .iter()
            .filter(|h| !smart || !self.facts_gathered(h))
            .cloned()
            .collect();
        if hosts.is_empty() {
            return;
        }
        // Fact gathering is never skipped by --start-at-task.
        let pending = self.start_at.take();
        let _ = self.run_task(ctx, &task, &hosts, false).await;
        self.start_at = pending;
        if let Some(cache) = &self.shared.opts.fact_cache {
            for host in hosts.iter().filter(|h| self.facts_gathered(h)) {
                let facts = &self.hosts[host.as_str()].facts;
                if let Err(e) = cache.store(host, facts) {
                    self.shared.reporter.warning(&e.to_string());
                }
            }
        }
    }
}

impl Runner {
    /// Whether `setup` already ran on `host` in this run (and `meta: clear_facts` did not
    /// clear it since).
    fn facts_gathered(&self, host: &str) -> bool {
        self.hosts
            .get(host)
            .and_then(|s| s.facts.get("module_setup"))
            .is_some_and(|v| v.is_true())
    }
}

/// Splits hosts into `serial` batches (numbers, percentages, or a list of them).
pub fn batches(serial: &[Value], hosts: &[String]) -> Vec<Vec<String>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let sizes: Vec<usize> = serial
        .iter()
        .map(|v| {
            let text = v.to_string();
            match text.strip_suffix('%') {
                Some(p) => {
                    ((p.trim().parse::<f64>().unwrap_or(100.0) / 100.0) * hosts.len() as f64)
                        .floor()
                        .max(1.0) as usize
                }
                None => text.trim().parse::<usize>().unwrap_or(hosts.len()).max(1),
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i.min(sizes.len() - 1)].min(rest.len());
        out.push(rest[..size].to_vec());
        rest = &rest[size..];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        assert_eq!(batches(&[], &hosts).len(), 1);
        assert_eq!(
            batches(&[Value::from(2)], &hosts)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(
            batches(&[Value::from(1), Value::from("50%")], &hosts)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            vec![1, 2, 2]
        );
    }
}
