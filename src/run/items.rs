//! Lockstep execution: each task runs on every active host before the next task starts;
//! blocks route failures to `rescue` and always run `always`; dynamic includes load their
//! tasks per host group; handlers run in definition order when flushed.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use indexmap::IndexMap;
use minijinja::Value;

use super::actions::VarLevel;
use super::host::{HostOutcome, TaskRun};
use super::vars::HostVars;
use super::{PlayCtx, Runner};
use crate::error::{Error, Result};
use crate::load::model::{Block, Inherited, Task, TaskItem, VarMap};
use crate::load::role::RoleRequest;
use crate::modules::registry::RunnerAction;
use crate::output::Status;
use crate::template::Scope;

/// Dynamic includes deeper than this are taken to be a runaway self-inclusion.
const MAX_INCLUDE_DEPTH: usize = 100;

/// What applying one host's outcome asks of the task loop.
#[derive(Default)]
struct Applied {
    /// The host failed or became unreachable (for any_errors_fatal).
    fatal: bool,
    /// `meta: flush_handlers` ran on the host.
    flush: bool,
}

impl Runner {
    fn active(&self, hosts: &[String]) -> Vec<String> {
        hosts
            .iter()
            .filter(|h| self.hosts.get(*h).is_some_and(|s| s.active()))
            .cloned()
            .collect()
    }

    pub(crate) async fn run_items(
        &mut self,
        ctx: &mut PlayCtx,
        items: &[TaskItem],
        hosts: &[String],
    ) -> Result<()> {
        for item in items {
            if ctx.end_play || ctx.end_batch {
                return Ok(());
            }
            let active = self.active(hosts);
            if active.is_empty() {
                return Ok(());
            }
            match item {
                TaskItem::Task(task) if is_include(task) => {
                    Box::pin(self.run_include(ctx, task, &active, false)).await?;
                }
                TaskItem::Task(task) => self.run_task(ctx, task, &active, false).await?,
                TaskItem::Block(block) => Box::pin(self.run_block(ctx, block, &active)).await?,
            }
        }
        Ok(())
    }

    async fn run_block(
        &mut self,
        ctx: &mut PlayCtx,
        block: &Block,
        hosts: &[String],
    ) -> Result<()> {
        self.run_items(ctx, &block.tasks, hosts).await?;
        let failed: Vec<String> = hosts
            .iter()
            .filter(|h| {
                self.hosts
                    .get(*h)
                    .is_some_and(|s| s.failed && !s.unreachable)
            })
            .cloned()
            .collect();
        if !block.rescue.is_empty() && !failed.is_empty() {
            for host in &failed {
                if let Some(state) = self.hosts.get_mut(host) {
                    state.failed = false;
                    state.stats.failed = state.stats.failed.saturating_sub(1);
                    state.stats.rescued += 1;
                    if let Some((task, result)) = state.last_failure.clone() {
                        state.set_var("ansible_failed_task", task);
                        state.set_var("ansible_failed_result", result);
                    }
                }
            }
            self.run_items(ctx, &block.rescue, &failed).await?;
        }
        if !block.always.is_empty() {
            // `always` runs for hosts that failed in the block too.
            let still_failed: Vec<String> = hosts
                .iter()
                .filter(|h| self.hosts.get(*h).is_some_and(|s| s.failed))
                .cloned()
                .collect();
            for host in &still_failed {
                if let Some(state) = self.hosts.get_mut(host) {
                    state.failed = false;
                }
            }
            self.run_items(ctx, &block.always, hosts).await?;
            for host in &still_failed {
                if let Some(state) = self.hosts.get_mut(host) {
                    state.failed = true;
                }
            }
        }
        Ok(())
    }

    fn selected(&mut self, task: &Task) -> bool {
        if !self.shared.opts.tags.selects(&task.inherited.tags) {
            return false;
        }
        if let Some(wanted) = &self.start_at {
            let name = task.name.clone().unwrap_or_default();
            if &name != wanted && &task.display_name() != wanted {
                return false;
            }
            self.start_at = None;
        }
        true
    }

    /// Runs one task on `hosts` concurrently (at most `forks` at once) and applies results.
    pub(crate) async fn run_task(
        &mut self,
        ctx: &mut PlayCtx,
        task: &Arc<Task>,
        hosts: &[String],
        handler: bool,
    ) -> Result<()> {
        if !handler && !self.selected(task) {
            return Ok(());
        }
        let run_once = task.inherited.run_once.unwrap_or(false);
        let targets: Vec<String> = if run_once {
            hosts.iter().take(1).cloned().collect()
        } else {
            hosts.to_vec()
        };
        let display_name = task.display_name();
        self.shared.reporter.task_start(&display_name, handler);
        self.shared.reporter.task_location(&task.location);
        for keyword in &task.ignored_keywords {
            if self.warned_keywords.insert(keyword) {
                self.shared.reporter.warning(&format!(
                    "kiln does not implement the task keyword '{keyword}' yet ({}:{}): it is ignored",
                    task.location.file.display(),
                    task.location.line
                ));
            }
        }
        if self.shared.opts.verbosity >= 3 {
            // Absolute, as Ansible prints it (editors and CI annotations open it as it is).
            let file = task.location.file.as_path();
            let path = format!(
                "task path: {}:{}",
                std::path::absolute(file)
                    .as_deref()
                    .unwrap_or(file)
                    .display(),
                task.location.line
            );
            self.shared.reporter.verbose(3, None, &path);
        }
        let hostvars = HostVars::build(self.shared.templar.clone(), &self.hosts, &ctx.layers);
        let forks = if self.shared.opts.forks == 0 {
            targets.len().max(1)
        } else {
            self.shared.opts.forks
        };
        let forks = match self.throttle(ctx, task, &targets, &hostvars)? {
            Some(limit) => forks.min(limit),
            None => forks,
        };
        let outcomes: Vec<(String, HostOutcome)> = {
            let shared = &self.shared;
            let states = &self.hosts;
            let layers = &ctx.layers;
            let name = display_name.as_str();
            let hostvars = &hostvars;
            stream::iter(targets.iter().map(|host| async move {
                let state = states.get(host).cloned().unwrap_or_default();
                let run = TaskRun {
                    shared,
                    play: layers,
                    task,
                    host,
                    state: &state,
                    hostvars,
                    display_name: name,
                };
                (host.clone(), run.execute().await)
            }))
            .buffer_unordered(forks)
            .collect()
            .await
        };
        let mut by_host: IndexMap<String, HostOutcome> = outcomes.into_iter().collect();
        // run_once: every host of the batch sees the one result.
        if run_once {
            if let Some((_, first)) = by_host.first() {
                let shared_register = first.register.clone();
                let shared_facts = first.set_vars.clone();
                for host in hosts.iter().skip(1) {
                    by_host.insert(
                        host.clone(),
                        HostOutcome {
                            status: None,
                            register: shared_register.clone(),
                            set_vars: shared_facts.clone(),
                            ..Default::default()
                        },
                    );
                }
            }
        }
        self.commit_inventory_edit(ctx)?;
        let mut any_fatal_failure = false;
        let mut flush = false;
        for host in hosts {
            let Some(outcome) = by_host.shift_remove(host) else {
                continue;
            };
            let applied = self.apply(ctx, task, host, outcome, handler);
            any_fatal_failure |= applied.fatal;
            flush |= applied.flush;
        }
        if flush {
            Box::pin(self.flush_handlers(ctx)).await?;
        }
        if any_fatal_failure
            && (task.inherited.any_errors_fatal.unwrap_or(false) || ctx.play.any_errors_fatal)
        {
            for host in hosts {
                if let Some(state) = self.hosts.get_mut(host) {
                    state.failed = true;
                }
            }
            ctx.end_play = true;
        }
        Ok(())
    }

    /// The task's `throttle:`, rendered with the first host's variables (a task runs on at
    /// most that many hosts at once; 0 or unset means only `forks` limits it).
    fn throttle(
        &self,
        ctx: &PlayCtx,
        task: &Task,
        hosts: &[String],
        hostvars: &Value,
    ) -> Result<Option<usize>> {
        let (Some(value), Some(host)) = (&task.inherited.throttle, hosts.first()) else {
            return Ok(None);
        };
        let state = self.hosts.get(host).cloned().unwrap_or_default();
        let scope = Scope::new(
            self.shared.templar.clone(),
            super::vars::task_layers(&ctx.layers, host, &state, task, hostvars),
        );
        let invalid = |message: String| Error::invalid(task.location.clone(), message);
        let rendered = scope
            .templar()
            .render_value(value, &scope)
            .map_err(|e| invalid(e.message))?;
        let limit = rendered
            .as_i64()
            .or_else(|| rendered.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                invalid(format!(
                    "'throttle' must be a whole number, got '{rendered}'"
                ))
            })?;
        Ok((limit > 0).then_some(limit as usize))
    }

    /// Applies a host's outcome: stats, failure state, registered vars, facts, notifications.
    fn apply(
        &mut self,
        ctx: &mut PlayCtx,
        task: &Task,
        host: &str,
        outcome: HostOutcome,
        handler: bool,
    ) -> Applied {
        let Some(state) = self.hosts.get_mut(host) else {
            return Applied::default();
        };
        let mut fatal = false;
        let mut flush = false;
        match outcome.status {
            Some(Status::Ok) => state.stats.ok += 1,
            Some(Status::Changed) => {
                state.stats.ok += 1;
                state.stats.changed += 1;
            }
            Some(Status::Skipped) => state.stats.skipped += 1,
            Some(Status::Failed) if outcome.ignored => {
                state.stats.ok += 1;
                state.stats.ignored += 1;
                if outcome.changed {
                    state.stats.changed += 1;
                }
            }
            Some(Status::Failed) => {
                state.stats.failed += 1;
                state.failed = true;
                fatal = true;
                let failed_task = crate::template::map_value(VarMap::from([
                    (
                        "name".to_string(),
                        Value::from(task.name.clone().unwrap_or_default()),
                    ),
                    ("action".to_string(), Value::from(task.action.name())),
                ]));
                state.last_failure = Some((failed_task, outcome.failure.unwrap_or_default()));
            }
            // `ignore_unreachable`: counted as Ansible does, and the host stays in the play.
            Some(Status::Unreachable) if outcome.ignored => {
                state.stats.ok += 1;
                state.stats.ignored += 1;
            }
            Some(Status::Unreachable) => {
                state.stats.unreachable += 1;
                state.unreachable = true;
                fatal = true;
            }
            None => {}
        }
        if let Some((name, value)) = outcome.register {
            state.set_registered(&name, value);
        }
        if let Some(facts) = outcome.facts {
            state.set_facts(facts);
        }
        for (owner, facts) in outcome.delegated_facts {
            if let Some(delegate) = self.hosts.get_mut(&owner) {
                delegate.set_facts(facts);
            }
        }
        let Some(state) = self.hosts.get_mut(host) else {
            return Applied::default();
        };
        for (vars, level) in outcome.set_vars {
            match level {
                VarLevel::SetFact => {
                    for (k, v) in vars {
                        state.set_var(&k, v);
                    }
                }
                VarLevel::IncludeVars => Arc::make_mut(&mut state.include_vars).extend(vars),
            }
        }
        if outcome.notify && !handler {
            for name in &task.notify {
                state.notified.insert(name.clone());
            }
        }
        if let Some(meta) = outcome.meta {
            match meta.as_str() {
                "end_play" => ctx.end_play = true,
                "end_batch" => ctx.end_batch = true,
                "end_host" => state.ended = true,
                "clear_facts" => {
                    state.facts = Default::default();
                    state.fact_layer = Default::default();
                    state.plain_fact_names.clear();
                }
                "clear_host_errors" => state.failed = false,
                "reset_connection" => self.shared.pool.reset(host),
                "flush_handlers" => flush = true,
                _ => {}
            }
        }
        Applied { fatal, flush }
    }

    /// Runs notified handlers in definition order, each once, on the hosts that notified it.
    /// With `force_handlers` a host that failed since still runs them (as an `always` would).
    pub(crate) async fn flush_handlers(&mut self, ctx: &mut PlayCtx) -> Result<()> {
        let force = ctx
            .play
            .force_handlers
            .unwrap_or(self.shared.opts.force_handlers);
        let handlers = ctx.handlers.clone();
        for handler in &handlers {
            let matches = |n: &String| handler_matches(handler, n);
            let hosts: Vec<String> = ctx
                .hosts
                .iter()
                .filter(|h| {
                    self.hosts.get(*h).is_some_and(|s| {
                        let runs = s.active() || (force && s.failed && !s.unreachable && !s.ended);
                        runs && s.notified.iter().any(matches)
                    })
                })
                .cloned()
                .collect();
            if hosts.is_empty() {
                continue;
            }
            // Notifications stay until the flush ends: every handler listening to the same
            // topic runs, each once (the loop visits each handler once).
            let mut revived = Vec::new();
            for host in &hosts {
                if let Some(state) = self.hosts.get_mut(host) {
                    if state.failed {
                        state.failed = false;
                        revived.push(host.clone());
                    }
                }
            }
            let ran = if is_include(handler) {
                Box::pin(self.run_include(ctx, handler, &hosts, true)).await
            } else {
                self.run_task(ctx, handler, &hosts, true).await
            };
            for host in &revived {
                if let Some(state) = self.hosts.get_mut(host) {
                    state.failed = true;
                }
            }
            ran?;
        }
        // Notifications naming no handler are an error in Ansible; warn and drop them. Those
        // of a host that failed before the flush are dropped silently.
        for host in ctx.hosts.clone() {
            if let Some(state) = self.hosts.get_mut(&host) {
                for orphan in state.notified.drain(..) {
                    if handlers.iter().any(|h| handler_matches(h, &orphan)) {
                        continue;
                    }
                    self.shared.reporter.warning(&format!("[{host}]: the handler '{orphan}' was notified but no handler by that name or listen topic exists"));
                }
            }
        }
        Ok(())
    }

    /// `include_tasks` / `include_role`: evaluated per host (and loop item), loaded, and run
    /// for each group of hosts that resolved to the same file or role.
    async fn run_include(
        &mut self,
        ctx: &mut PlayCtx,
        task: &Arc<Task>,
        hosts: &[String],
        handler: bool,
    ) -> Result<()> {
        if !handler && !self.selected(task) {
            return Ok(());
        }
        let hostvars = HostVars::build(self.shared.templar.clone(), &self.hosts, &ctx.layers);
        // (target, include vars) → hosts
        let mut groups: IndexMap<(String, String), (Value, VarMap, Vec<String>)> = IndexMap::new();
        let mut announced = false;
        // Hosts for which every item's condition was false (or the loop was empty): the
        // include counts once as skipped for each, as in Ansible's recap.
        let mut skipped = Vec::new();
        for host in hosts {
            let mut included = false;
            let state = self.hosts.get(host).cloned().unwrap_or_default();
            let scope = Scope::new(
                self.shared.templar.clone(),
                super::vars::task_layers(&ctx.layers, host, &state, task, &hostvars),
            );
            let mut deferred = None;
            let items: Vec<Option<Value>> = match &task.loop_spec {
                Some(spec) => match super::loops::expand(spec, &scope) {
                    Ok(items) => items.into_iter().map(Some).collect(),
                    // An undefined loop defers its error to `when`, evaluated without an item:
                    // a false condition skips the include, a true one reports the loop's error.
                    Err(e) if super::loops::is_undefined(&e) => {
                        deferred = Some(e);
                        vec![None]
                    }
                    Err(e) => return Err(Error::invalid(task.location.clone(), e.message)),
                },
                None => vec![None],
            };
            let all_items: Vec<Value> = items.iter().flatten().cloned().collect();
            for (index, item) in items.into_iter().enumerate() {
                let mut layer = VarMap::new();
                if let (Some(item), Some(spec)) = (&item, &task.loop_spec) {
                    // An include's loop_var may be a template (`loop_var: "{{ name }}"`).
                    let loop_var = scope
                        .templar()
                        .render_str(&spec.loop_var, &scope)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|_| spec.loop_var.clone());
                    layer.insert(loop_var.clone(), crate::template::untrusted(item));
                    layer.insert("ansible_loop_var".into(), Value::from(loop_var));
                    if let Some(index_var) = &spec.index_var {
                        layer.insert(index_var.clone(), Value::from(index));
                        layer.insert("ansible_index_var".into(), Value::from(index_var.as_str()));
                    }
                    if spec.extended {
                        layer.insert(
                            "ansible_loop".into(),
                            super::loops::extended_info(&all_items, index),
                        );
                    }
                }
                let item_scope = scope.with_layer(Arc::new(layer.clone()));
                let mut pass = true;
                for condition in &task.inherited.when {
                    pass &= item_scope
                        .templar()
                        .eval_condition(condition, &item_scope)
                        .map_err(|e| Error::invalid(task.location.clone(), e.message))?;
                }
                if let (true, Some(e)) = (pass, deferred.take()) {
                    return Err(Error::invalid(task.location.clone(), e.message));
                }
                if !pass {
                    if !announced {
                        self.shared
                            .reporter
                            .task_start(&task.display_name(), handler);
                        announced = true;
                    }
                    continue;
                }
                let args = item_scope
                    .templar()
                    .render_value(&task.args, &item_scope)
                    .map_err(|e| Error::invalid(task.location.clone(), e.message))?;
                let key_target = args
                    .get_attr("_raw_params")
                    .ok()
                    .filter(|v| !v.is_undefined())
                    .or_else(|| args.get_attr("file").ok().filter(|v| !v.is_undefined()))
                    .or_else(|| args.get_attr("name").ok().filter(|v| !v.is_undefined()))
                    .unwrap_or_default()
                    .to_string();
                let key = (key_target, format!("{layer:?}"));
                groups
                    .entry(key)
                    .or_insert_with(|| (args.clone(), layer.clone(), Vec::new()))
                    .2
                    .push(host.clone());
                included = true;
            }
            if !included {
                skipped.push(host.clone());
            }
        }
        for host in &skipped {
            if let Some(state) = self.hosts.get_mut(host) {
                state.stats.skipped += 1;
            }
        }
        for ((target, _), (args, item_vars, group_hosts)) in groups {
            let mut inherited: Inherited = task.inherited.clone();
            let mut include_vars = (*inherited.include_vars).clone();
            include_vars.extend(item_vars);
            if let Some(vars) = args.get_attr("vars").ok().filter(|v| !v.is_undefined()) {
                for k in vars.try_iter().into_iter().flatten() {
                    include_vars.insert(k.to_string(), vars.get_item(&k).unwrap_or_default());
                }
            }
            inherited.include_vars = Arc::new(include_vars);
            inherited.when.clear();
            let loaded = if task.action.is(RunnerAction::IncludeTasks) {
                let dir = task
                    .location
                    .file
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default();
                let mut loader = self
                    .shared
                    .loader
                    .lock()
                    .map_err(|_| Error::Usage("loader lock poisoned".into()))?;
                let path = loader.resolve_task_file(&target, &dir, &inherited);
                if !path.is_file() {
                    return Err(Error::invalid(
                        task.location.clone(),
                        format!("include_tasks could not find {}", path.display()),
                    ));
                }
                self.shared
                    .reporter
                    .included(&path.display().to_string(), &group_hosts);
                loader.load_task_file(&path, &inherited)?
            } else {
                let mut request = RoleRequest::named(&target);
                for (key, field) in [
                    ("tasks_from", &mut request.tasks_from),
                    ("handlers_from", &mut request.handlers_from),
                    ("vars_from", &mut request.vars_from),
                    ("defaults_from", &mut request.defaults_from),
                ] {
                    if let Some(v) = args.get_attr(key).ok().filter(|v| !v.is_undefined()) {
                        *field = v.to_string();
                    }
                }
                let doc = crate::load::yaml::Document {
                    file: task.location.file.clone(),
                    root: crate::load::yaml::Node {
                        kind: crate::load::yaml::NodeKind::Null,
                        line: task.location.line,
                        column: task.location.column,
                    },
                };
                let mut loader = self
                    .shared
                    .loader
                    .lock()
                    .map_err(|_| Error::Usage("loader lock poisoned".into()))?;
                let items = loader.load_role(&request, &inherited, &doc, &doc.root.clone())?;
                ctx.handlers.extend(loader.take_handlers());
                // include_role keeps its variables private (Ansible's `public: false`).
                loader.take_role_scopes();
                items
            };
            if self.include_depth >= MAX_INCLUDE_DEPTH {
                return Err(Error::invalid(
                    task.location.clone(),
                    format!("includes nest more than {MAX_INCLUDE_DEPTH} levels deep: does a file include itself without a condition that stops it?"),
                ));
            }
            self.include_depth += 1;
            let result = Box::pin(self.run_items(ctx, &loaded, &group_hosts)).await;
            self.include_depth -= 1;
            result?;
        }
        Ok(())
    }
}

/// A dynamic include, which the task loop expands rather than running as a module.
fn is_include(task: &Task) -> bool {
    task.action.is(RunnerAction::IncludeTasks) || task.action.is(RunnerAction::IncludeRole)
}

/// Whether a notification names `handler` (by name, role-qualified name or listen topic).
fn handler_matches(handler: &Task, notified: &str) -> bool {
    handler.name.as_deref() == Some(notified)
        || handler.display_name() == notified
        || handler.listen.iter().any(|topic| topic == notified)
}
