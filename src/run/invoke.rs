//! Invoking a task's action on a host: templated arguments, the connection (or delegate),
//! privilege escalation, environment, check/diff mode, then the module or runner action.

use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::ValueKind;
use minijinja::Value;

use super::actions::ActionResult;
use super::async_task::{AsyncJob, AsyncSpec};
use super::connect::Target;
use super::error::TaskError;
use super::host::{failed_result, render_flag, unreachable, TaskRun};
use super::vars::{search_paths, OMIT};
use crate::connection::{ConnectionError, Password, SharedConnection};
use crate::load::model::Action;
use crate::modules::registry::{self, Kind, ModuleSpec, RunnerAction};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::{truthy, Scope, TemplateError};

/// A module to run once its context is set up.
enum ModuleRun<'a> {
    /// One of kiln's.
    Native(&'static dyn Module, Args),
    /// An Ansible module run through the host's Python.
    Python {
        name: &'a str,
        args: &'a Value,
        no_log: bool,
    },
}

impl TaskRun<'_> {
    /// Runs the action once: a runner action (set_fact, include_vars, meta) or a module.
    pub(super) async fn run_action(&self, scope: &Scope) -> ActionResult {
        let args = match self.render_args(scope) {
            Ok(args) => args,
            Err(e) => return failed_result(e.to_string()).into(),
        };
        let resolved;
        let action = match &self.task.action {
            Action::Templated(template) => match self.resolve_templated(scope, template) {
                Ok(action) => {
                    resolved = action;
                    &resolved
                }
                Err(e) => return failed_result(e.to_string()).into(),
            },
            action => action,
        };
        let spec = match action {
            Action::Module(spec) => *spec,
            Action::Python(name) => return self.run_python(scope, name, &args).await.into(),
            Action::Runner(action) => return self.run_runner_action(scope, *action, &args),
            Action::Templated(name) => {
                return failed_result(format!("the module name '{name}' is still a template"))
                    .into()
            }
            Action::ControllerPlugin(name) => {
                return failed_result(format!("'{name}' is an Ansible action plugin (action_plugins/{name}.py): Python that ansible-core runs on its controller, which kiln does not run"))
                    .into()
            }
        };
        let args = match self.with_module_defaults(scope, spec, args) {
            Ok(args) => args,
            Err(e) => return failed_result(e.to_string()).into(),
        };
        match spec.kind {
            Kind::Native(module) => self.run_module(scope, spec, module, &args).await.into(),
            Kind::Runner(action) => self.run_runner_action(scope, action, &args),
            Kind::Missing => self.run_python(scope, spec.name, &args).await.into(),
        }
    }

    /// Runs one of kiln's modules on the host (or its delegate).
    async fn run_module(
        &self,
        scope: &Scope,
        spec: &'static ModuleSpec,
        module: &'static dyn Module,
        args: &Value,
    ) -> ModuleResult {
        let args = match Args::new(spec.name, args) {
            Ok(a) => a,
            Err(e) => return failed_result(e.to_string()),
        };
        if !spec.allows_async && matches!(self.async_spec(scope), Ok(Some(_))) {
            return failed_result(format!(
                "This action ({}) does not support async.",
                spec.name
            ));
        }
        self.run_in_module_ctx(
            scope,
            spec.needs_connection,
            ModuleRun::Native(module, args),
        )
        .await
    }

    /// Runs a module kiln has no native version of through the host's Python.
    async fn run_python(&self, scope: &Scope, name: &str, args: &Value) -> ModuleResult {
        let no_log = match render_flag(scope, &self.task.inherited.no_log, false) {
            Ok(v) => v,
            Err(e) => return failed_result(e.to_string()),
        };
        let run = ModuleRun::Python { name, args, no_log };
        self.run_in_module_ctx(scope, true, run).await
    }

    /// Sets up the module context (connection, become, check and diff mode, environment)
    /// and runs the module in it.
    async fn run_in_module_ctx(
        &self,
        scope: &Scope,
        needs_connection: bool,
        run: ModuleRun<'_>,
    ) -> ModuleResult {
        let escalation = self.escalation(scope);
        if let Some((method, _)) = &escalation {
            if !crate::connection::BECOME_METHODS.contains(&method.as_str()) {
                return failed_result(super::connect::unknown_become_method(method));
            }
        }
        let conn: SharedConnection = if needs_connection {
            match self.connection(scope, escalation.as_ref()).await {
                Ok(c) => c,
                Err(TaskError::Connection(ConnectionError::Become(e))) => return failed_result(e),
                Err(e) => return unreachable(e.to_string()),
            }
        } else {
            Arc::new(crate::connection::local::LocalConnection::default())
        };
        let check_mode = match render_flag(
            scope,
            &self.task.inherited.check_mode,
            self.shared.opts.check,
        ) {
            Ok(v) => v,
            Err(e) => return failed_result(e.to_string()),
        };
        let environment = match self.environment(scope) {
            Ok(v) => v,
            Err(e) => return failed_result(e.to_string()),
        };
        let job = match self.async_spec(scope) {
            Ok(spec) => spec
                .filter(|_| needs_connection && !check_mode)
                .map(|spec| AsyncJob::new(conn.clone(), spec)),
            Err(e) => return failed_result(e),
        };
        let search = search_paths(self.task, self.play);
        let ctx = ModuleCtx {
            host: self.host,
            conn: match &job {
                Some(job) => job,
                None => conn.as_ref(),
            },
            check_mode,
            diff: self.task.inherited.diff.unwrap_or(self.shared.opts.diff),
            environment,
            scope,
            search_paths: &search,
            link: &super::host_link::TaskLink {
                run: self,
                scope,
                escalation: escalation.as_ref(),
            },
        };
        let outcome = match run {
            ModuleRun::Native(module, args) => module.run(&ctx, args).await,
            ModuleRun::Python { name, args, no_log } => {
                let search = &self.task.inherited.module_search;
                crate::modules::python::run(&ctx, name, search, args, no_log).await
            }
        };
        let result = match outcome {
            Ok(result) => result,
            Err(ModuleError::Unreachable(e)) => return unreachable(e.to_string()),
            Err(ModuleError::FailedWith(result)) => *result,
            Err(e) => failed_result(e.to_string()),
        };
        match &job {
            Some(job) => job.finish(result).await,
            None => result,
        }
    }

    /// The task's `async`/`poll`, rendered for this host.
    fn async_spec(&self, scope: &Scope) -> Result<Option<AsyncSpec>, String> {
        let render = |value: &Option<Value>| -> Result<Option<Value>, String> {
            value
                .as_ref()
                .map(|v| scope.templar().render_value(v, scope))
                .transpose()
                .map_err(|e| e.to_string())
        };
        super::async_task::spec(render(&self.task.async_seconds)?, render(&self.task.poll)?)
    }

    /// `set_fact`, `include_vars` and `meta`; includes are expanded by the lockstep loop and
    /// imports at load time, so neither reaches a host (a templated name may name them).
    fn run_runner_action(&self, scope: &Scope, action: RunnerAction, args: &Value) -> ActionResult {
        match action {
            RunnerAction::SetFact => super::actions::set_fact(args, scope),
            RunnerAction::IncludeVars => {
                super::include_vars::include_vars(args, self.task, self.play, scope)
            }
            RunnerAction::Meta => super::actions::meta(args).into(),
            RunnerAction::AddHost => super::inventory_edit::add_host(args, self.shared),
            RunnerAction::GroupBy => super::inventory_edit::group_by(args, self.host, self.shared),
            RunnerAction::IncludeTasks
            | RunnerAction::IncludeRole
            | RunnerAction::ImportTasks
            | RunnerAction::ImportRole => failed_result(format!(
                "'{}' cannot be named by a templated 'action': write it as the task's own key",
                action.name()
            ))
            .into(),
        }
    }

    /// The module a templated `action:` names, once rendered for this host: a registry row,
    /// or a module in a collection or `library/` directory.
    fn resolve_templated(&self, scope: &Scope, template: &str) -> Result<Action, TaskError> {
        let name = scope
            .templar()
            .render_str(template, scope)
            .map_err(|source| self.template_error(source))?
            .to_string();
        let name = name.trim();
        if let Some(spec) = registry::resolve(name) {
            return Ok(Action::from_spec(spec));
        }
        if self.task.inherited.module_search.finds(name) {
            return Ok(Action::Python(name.into()));
        }
        Err(TaskError::UnknownModule {
            location: self.task.location.to_string(),
            name: name.to_string(),
            suggestion: crate::error::did_you_mean(name, registry::names()),
        })
    }

    /// A template error in the task's arguments or `action`, naming the task.
    fn template_error(&self, source: TemplateError) -> TaskError {
        TaskError::TemplateAt {
            location: self.task.location.to_string(),
            source,
        }
    }

    fn render_args(&self, scope: &Scope) -> Result<Value, TaskError> {
        crate::template::forget_undefined_reasons();
        let rendered = scope
            .templar()
            .render_value(&self.task.args, scope)
            .map_err(|mut source| {
                // Ansible names the option whose value failed.
                if let Some(key) = self.failing_arg(scope) {
                    source.message = format!(
                        "Error while resolving value for '{key}': {}",
                        source.message
                    );
                }
                self.template_error(source)
            })?;
        // A list or mapping holding an undefined item fails here, as Ansible's finalization
        // of a task's arguments does.
        for key in rendered.try_iter().into_iter().flatten() {
            let value = rendered.get_item(&key).unwrap_or_default();
            if let Some(reason) = crate::template::undefined_inside(&value) {
                let message = format!("Error while resolving value for '{key}': {reason}");
                return Err(self.template_error(TemplateError::new(message)));
            }
        }
        let mut map: IndexMap<String, Value> = IndexMap::new();
        for key in rendered.try_iter().into_iter().flatten() {
            let value = rendered.get_item(&key).unwrap_or_default();
            if key.as_str() == Some("_args_template") {
                for inner in value.try_iter().into_iter().flatten() {
                    map.insert(
                        inner.to_string(),
                        value.get_item(&inner).unwrap_or_default(),
                    );
                }
                continue;
            }
            if key.as_str() == Some("_raw_params") && value.kind() == ValueKind::Map {
                // `assert: "{{ item }}"`: a free-form template that gives a mapping is the
                // arguments; options written beside it (`args:`) win, as in Ansible.
                for inner in value.try_iter().into_iter().flatten() {
                    let explicit = rendered.get_item(&inner).is_ok_and(|v| !v.is_undefined());
                    if !explicit {
                        map.insert(
                            inner.to_string(),
                            value.get_item(&inner).unwrap_or_default(),
                        );
                    }
                }
                continue;
            }
            if value.as_str() == Some(OMIT) {
                continue;
            }
            map.insert(key.to_string(), value);
        }
        Ok(crate::template::map_value(map))
    }

    /// The first argument whose value does not render (only asked once rendering failed).
    fn failing_arg(&self, scope: &Scope) -> Option<String> {
        let args = &self.task.args;
        args.try_iter().ok()?.find_map(|key| {
            let value = args.get_item(&key).ok()?;
            let name = key.as_str()?;
            (!name.starts_with('_') && scope.templar().render_value(&value, scope).is_err())
                .then(|| name.to_string())
        })
    }

    /// The task's arguments over the `module_defaults` that name its module (by short name,
    /// FQCN or alias; inner scopes over outer ones). `group/...` keys name collections'
    /// action groups: ansible.builtin defines none, so they apply to none of kiln's modules.
    fn with_module_defaults(
        &self,
        scope: &Scope,
        spec: &'static ModuleSpec,
        args: Value,
    ) -> Result<Value, TaskError> {
        if self.task.inherited.module_defaults.is_empty() {
            return Ok(args);
        }
        // `service` runs the host's service manager's module, whose defaults apply too, as
        // Ansible's service action applies them.
        let backend = scope
            .text("ansible_service_mgr")
            .and_then(|mgr| registry::service_backend(spec, &mgr));
        let applies = |s: &'static ModuleSpec| {
            std::ptr::eq(s, spec) || backend.is_some_and(|b| std::ptr::eq(s, b))
        };
        let mut merged: IndexMap<String, Value> = IndexMap::new();
        for layer in &self.task.inherited.module_defaults {
            let rendered = scope
                .templar()
                .render_value(layer, scope)
                .map_err(|source| self.template_error(source))?;
            // The old form is a list of mappings.
            let mappings: Vec<Value> = match rendered.kind() {
                ValueKind::Seq => rendered.try_iter().into_iter().flatten().collect(),
                _ => vec![rendered],
            };
            for mapping in mappings {
                for key in mapping.try_iter().into_iter().flatten() {
                    let Some(name) = key.as_str() else { continue };
                    if name.starts_with("group/") || !registry::resolve(name).is_some_and(applies) {
                        continue;
                    }
                    let defaults = mapping.get_item(&key).unwrap_or_default();
                    for option in defaults.try_iter().into_iter().flatten() {
                        let value = defaults.get_item(&option).unwrap_or_default();
                        if value.as_str() != Some(OMIT) {
                            merged.insert(option.to_string(), value);
                        }
                    }
                }
            }
        }
        for key in args.try_iter().into_iter().flatten() {
            merged.insert(key.to_string(), args.get_item(&key).unwrap_or_default());
        }
        Ok(crate::template::map_value(merged))
    }

    fn environment(&self, scope: &Scope) -> Result<Vec<(String, String)>, TaskError> {
        let mut out: IndexMap<String, String> = IndexMap::new();
        for env in &self.task.inherited.environment {
            let value = scope.templar().render_value(env, scope)?;
            if value.kind() != ValueKind::Map {
                return Err(TaskError::EnvironmentNotMapping(value.to_string()));
            }
            for key in value.try_iter().into_iter().flatten() {
                out.insert(
                    key.to_string(),
                    value.get_item(&key).unwrap_or_default().to_string(),
                );
            }
        }
        Ok(out.into_iter().collect())
    }

    fn escalation(&self, scope: &Scope) -> Option<(String, String)> {
        let opts = &self.shared.opts;
        let enabled = self
            .task
            .inherited
            .escalate
            .or_else(|| scope.get("ansible_become").map(|v| truthy(&v)))
            .unwrap_or(opts.become_default);
        if !enabled {
            return None;
        }
        let user = self
            .task
            .inherited
            .become_user
            .as_deref()
            .map(|u| self.render_text(scope, u))
            .or_else(|| scope.text("ansible_become_user"))
            .or_else(|| opts.become_user.clone())
            .unwrap_or_else(|| "root".into());
        let method = self
            .task
            .inherited
            .become_method
            .as_deref()
            .map(|m| self.render_text(scope, m))
            .or_else(|| scope.text("ansible_become_method"))
            .or_else(|| opts.become_method.clone())
            .unwrap_or_else(|| "sudo".into());
        let login = self.login_user(scope);
        if login == user {
            return None;
        }
        Some((method, user))
    }

    /// The password for `method`: the host's `ansible_become_password` (or its older names),
    /// else the one `-K` asked for.
    pub(super) fn become_password(&self, scope: &Scope, method: &str) -> Option<Password> {
        let older = match method {
            "sudo" => "ansible_sudo_pass",
            "su" => "ansible_su_pass",
            _ => "ansible_become_pass",
        };
        ["ansible_become_password", "ansible_become_pass", older]
            .iter()
            .find_map(|name| scope.text(name))
            .map(Password)
            .or_else(|| self.shared.opts.connection.become_password.clone())
    }

    /// A templated keyword value; a template error leaves the text as written (the command
    /// then fails and shows it).
    fn render_text(&self, scope: &Scope, text: &str) -> String {
        scope
            .templar()
            .render_str(text, scope)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| text.to_string())
    }

    /// The login user: a variable (`ansible_user`, from the inventory say) wins over the
    /// `remote_user` keyword, as every variable wins over playbook keywords in Ansible.
    fn login_user(&self, scope: &Scope) -> String {
        self.named_login_user(scope)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into())
    }

    /// The login user the host's variables, the task or the command line name (without one,
    /// ssh_config's `User` applies).
    fn named_login_user(&self, scope: &Scope) -> Option<String> {
        scope
            .text("ansible_user")
            .or_else(|| scope.text("ansible_ssh_user"))
            .or_else(|| {
                self.task
                    .inherited
                    .remote_user
                    .as_deref()
                    .map(|u| self.render_text(scope, u))
            })
            .or_else(|| self.shared.opts.connection.remote_user.clone())
    }

    /// The pool's name for the connection this task runs over, and how to reach it.
    pub(super) fn connection_target(&self, scope: &Scope) -> Result<(String, Target), TaskError> {
        let delegate = match &self.task.inherited.delegate_to {
            Some(d) => Some(scope.templar().render_value(d, scope)?.to_string()),
            None => None,
        };
        let (name, target) = match delegate.as_deref() {
            Some(d) if d != self.host => {
                if matches!(d, "localhost" | "127.0.0.1")
                    && !self.shared.inventory.hosts.contains_key(d)
                {
                    (d.to_string(), Target::Local)
                } else {
                    let vars = self.shared.inventory.host_vars(d)?;
                    let delegate_scope = Scope::new(scope.templar().clone(), vec![Arc::new(vars)]);
                    (
                        d.to_string(),
                        super::target::resolve(
                            &self.shared.opts.connection,
                            d,
                            &delegate_scope,
                            self.named_login_user(&delegate_scope).as_deref(),
                            self.task.inherited.connection.as_deref(),
                        )?,
                    )
                }
            }
            _ => (
                self.host.to_string(),
                super::target::resolve(
                    &self.shared.opts.connection,
                    self.host,
                    scope,
                    self.named_login_user(scope).as_deref(),
                    self.task.inherited.connection.as_deref(),
                )?,
            ),
        };
        // A host reached locally by one task (`connection: local`) and over SSH by another
        // has two connections, never one shared by both.
        let name = match (&target, self.task.inherited.connection.as_deref()) {
            (Target::Local, Some(_)) => format!("{name} (connection: local)"),
            _ => name,
        };
        Ok((name, target))
    }

    pub(super) async fn connection(
        &self,
        scope: &Scope,
        escalation: Option<&(String, String)>,
    ) -> Result<SharedConnection, TaskError> {
        let (name, target) = self.connection_target(scope)?;
        let timeout = self.shared.opts.connection.timeout;
        let pool = &self.shared.pool;
        // Only -vvv shows the connection line: no pool lookup per task otherwise.
        if let (Target::Ssh(ssh), true) = (&target, self.shared.opts.verbosity >= 3) {
            if !pool.has_connection(&name) {
                let keys: Vec<String> = ssh
                    .identity_files
                    .iter()
                    .map(|k| k.display().to_string())
                    .collect();
                let reporter = &self.shared.reporter;
                let message = format!("ESTABLISH SSH CONNECTION FOR USER: {}", ssh.user);
                reporter.verbose(3, Some(&ssh.host), &message);
                let message = format!(
                    "SSH: russh to {}:{} as {}, keys: {}{}",
                    ssh.host,
                    ssh.port,
                    ssh.user,
                    if keys.is_empty() {
                        "none".into()
                    } else {
                        keys.join(", ")
                    },
                    ssh.proxy
                        .as_ref()
                        .map(|proxy| format!(", through {proxy}"))
                        .unwrap_or_default()
                );
                reporter.verbose(3, Some(&ssh.host), &message);
            }
        }
        // SSH hosts run everything through one persistent shell per become user; local runs
        // need one only to change user.
        match (&target, escalation) {
            (Target::Local, None) => pool.get(&name, &target, timeout).await,
            (_, escalation) => {
                let password =
                    escalation.and_then(|(method, _)| self.become_password(scope, method));
                pool.session(&name, &target, timeout, escalation, password.as_ref())
                    .await
            }
        }
        .map_err(TaskError::from)
    }
}
