//! The module table: the one place that knows each module, one row per module. A row says
//! what implements the name (a module of kiln's, an action the runner carries out itself, or
//! nothing: an Ansible module kiln cannot run), its other names, how its free-form string
//! is read, and whether it needs a connection to the target.

use std::fmt;

use super::{commands, control, files, net, packages, system, Module};

/// One name the loader accepts for a task's action, and what it means.
pub struct ModuleSpec {
    /// The short name (`ansible.builtin.` stripped), as results and headers show it.
    pub name: &'static str,
    /// Other short names for the same thing (`gather_facts` for `setup`).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// How a free-form string (`command: ls -l`, `copy: src=a dest=b`) becomes arguments.
    pub free_form: FreeForm,
    /// False for modules that only look at their arguments and variables: running them
    /// opens no connection.
    pub needs_connection: bool,
    pub display: ResultDisplay,
    /// Whether the task may run in the background (`async`): Ansible's action plugins that
    /// work on the controller's side refuse it.
    pub allows_async: bool,
}

/// What carries out a registry name.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A module of kiln's.
    Native(&'static dyn Module),
    /// An action the runner carries out itself (it changes the run rather than the host).
    Runner(RunnerAction),
    /// An `ansible.builtin` module kiln has no native version of: a host that reaches it
    /// runs ansible-core's module through its Python (`modules::python`).
    Missing,
}

/// The runner's own actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerAction {
    SetFact,
    IncludeVars,
    Meta,
    IncludeTasks,
    IncludeRole,
    ImportTasks,
    ImportRole,
    AddHost,
    GroupBy,
}

/// How a free-form argument string is read.
#[derive(Debug, Clone, Copy)]
pub enum FreeForm {
    /// `k=v` pairs.
    KeyValue,
    /// A command line: only these options are taken out of it (`k=v`), the rest is
    /// `_raw_params`, as Ansible does.
    CommandLine(&'static [&'static str]),
    /// A file or role name (`include_tasks: setup.yml`) unless the text holds a `=`; then
    /// `k=v` pairs, with these options taken out of a command line when given.
    Target(Option<&'static [&'static str]>),
}

/// How the text output shows a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultDisplay {
    /// In full at `-v`.
    Normal,
    /// Always in full, as `debug` prints its message.
    Always,
    /// Never in full (fact gathering: Ansible's `_ansible_verbose_override`).
    Never,
}

impl fmt::Debug for ModuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl ModuleSpec {
    const fn new(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            aliases: &[],
            kind,
            free_form: FreeForm::KeyValue,
            needs_connection: true,
            display: ResultDisplay::Normal,
            allows_async: true,
        }
    }
    const fn aliases(self, aliases: &'static [&'static str]) -> Self {
        Self { aliases, ..self }
    }
    const fn free_form(self, free_form: FreeForm) -> Self {
        Self { free_form, ..self }
    }
    const fn controller_only(self) -> Self {
        Self {
            needs_connection: false,
            ..self
        }
    }
    const fn display(self, display: ResultDisplay) -> Self {
        Self { display, ..self }
    }
    const fn without_async(self) -> Self {
        Self {
            allows_async: false,
            ..self
        }
    }

    /// Whether `name` (already without a collection prefix) names this row.
    fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

const fn module(name: &'static str, module: &'static dyn Module) -> ModuleSpec {
    ModuleSpec::new(name, Kind::Native(module))
}

const fn runner(name: &'static str, action: RunnerAction) -> ModuleSpec {
    ModuleSpec::new(name, Kind::Runner(action)).controller_only()
}

const fn missing(name: &'static str) -> ModuleSpec {
    ModuleSpec::new(name, Kind::Missing)
}

/// The options `command` and `shell` take out of their free-form command line.
const COMMAND_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "strip_empty_ends",
];

const SETUP: ModuleSpec = module("setup", &system::setup::Setup)
    .aliases(&["gather_facts"])
    .display(ResultDisplay::Never);

static MODULES: &[ModuleSpec] = &[
    module("command", &commands::command::Command { shell: false })
        .free_form(FreeForm::CommandLine(COMMAND_OPTIONS)),
    module("shell", &commands::command::Command { shell: true })
        .free_form(FreeForm::CommandLine(COMMAND_OPTIONS)),
    module("async_status", &commands::async_status::AsyncStatus),
    module("raw", &commands::raw::Raw).free_form(FreeForm::CommandLine(&["executable"])),
    module("script", &commands::script::Script)
        .free_form(FreeForm::CommandLine(&[
            "creates",
            "removes",
            "chdir",
            "executable",
        ]))
        .without_async(),
    module("file", &files::file::File),
    module("copy", &files::copy::Copy).without_async(),
    module("template", &files::template::Template).without_async(),
    module("stat", &files::stat::Stat),
    module("lineinfile", &files::lineinfile::LineInFile),
    module("blockinfile", &files::blockinfile::BlockInFile),
    module("replace", &files::replace::Replace),
    module("find", &files::find::Find),
    module("get_url", &files::get_url::GetUrl),
    module("unarchive", &files::unarchive::Unarchive).without_async(),
    module("archive", &files::archive::Archive),
    module("tempfile", &files::tempfile::TempFile),
    module("debug", &control::debug::Debug)
        .free_form(FreeForm::CommandLine(&["msg", "var", "verbosity"]))
        .controller_only()
        .display(ResultDisplay::Always),
    module("assert", &control::assert::Assert).controller_only(),
    module("fail", &control::fail::Fail)
        .free_form(FreeForm::CommandLine(&["msg"]))
        .controller_only(),
    module("ping", &control::ping::Ping),
    module("wait_for", &control::wait_for::WaitFor),
    SETUP,
    module("apt", &packages::apt::Apt),
    module("package", &packages::package::Package),
    module(
        "dnf",
        &packages::dnf::Dnf {
            backend: &packages::dnf::DNF,
        },
    )
    .aliases(&["dnf5"]),
    module(
        "yum",
        &packages::dnf::Dnf {
            backend: &packages::dnf::YUM,
        },
    ),
    module("apk", &packages::apk::Apk),
    module("package_facts", &packages::package_facts::PackageFacts),
    module("apt_repository", &packages::apt_repository::AptRepository),
    module(
        "deb822_repository",
        &packages::deb822_repository::Deb822Repository,
    ),
    module(
        "service",
        &system::service::Service {
            systemd_only: false,
        },
    ),
    module("systemd", &system::service::Service { systemd_only: true }),
    module(
        "systemd_service",
        &system::service::Service { systemd_only: true },
    ),
    module("service_facts", &system::service_facts::ServiceFacts),
    module("cron", &system::cron::Cron),
    module("user", &system::user::User),
    module("group", &system::group::Group),
    module("authorized_key", &system::authorized_key::AuthorizedKey),
    module("getent", &system::getent::Getent),
    module("hostname", &system::hostname::Hostname),
    module("sysctl", &system::sysctl::Sysctl),
    module("mount", &system::mount::Mount),
    module("modprobe", &system::modprobe::Modprobe),
    module("alternatives", &system::alternatives::Alternatives),
    module("timezone", &system::timezone::Timezone),
    module("ufw", &system::ufw::Ufw),
    module("locale_gen", &system::locale_gen::LocaleGen),
    runner("set_fact", RunnerAction::SetFact),
    runner("include_vars", RunnerAction::IncludeVars).free_form(FreeForm::Target(None)),
    runner("meta", RunnerAction::Meta).free_form(FreeForm::CommandLine(&[])),
    runner("include_tasks", RunnerAction::IncludeTasks)
        .free_form(FreeForm::Target(Some(&["apply"]))),
    runner("include_role", RunnerAction::IncludeRole).free_form(FreeForm::Target(None)),
    runner("import_tasks", RunnerAction::ImportTasks).free_form(FreeForm::Target(Some(&[]))),
    runner("import_role", RunnerAction::ImportRole).free_form(FreeForm::Target(None)),
    // The rest of ansible-core's modules (lib/ansible/modules in 2.19): content using them
    // loads, and only a host that reaches one fails.
    runner("add_host", RunnerAction::AddHost),
    missing("apt_key"),
    module("assemble", &files::assemble::Assemble).without_async(),
    module("debconf", &packages::debconf::Debconf),
    module("dpkg_divert", &packages::dpkg_divert::DpkgDivert),
    missing("dpkg_selections"),
    missing("expect"),
    module("fetch", &files::fetch::Fetch).without_async(),
    module("git", &net::git::Git),
    runner("group_by", RunnerAction::GroupBy),
    module("iptables", &system::iptables::Iptables),
    module("known_hosts", &system::known_hosts::KnownHosts),
    missing("mount_facts"),
    module("pause", &control::pause::Pause).controller_only(),
    module("pip", &packages::pip::Pip),
    module("reboot", &system::reboot::Reboot).without_async(),
    missing("rpm_key"),
    missing("set_stats"),
    module("slurp", &files::slurp::Slurp),
    missing("subversion"),
    module("synchronize", &files::synchronize::Synchronize),
    missing("sysvinit"),
    module("uri", &net::uri::Uri),
    missing("validate_argument_spec"),
    module(
        "wait_for_connection",
        &control::wait_for_connection::WaitForConnection,
    )
    .without_async(),
    missing("yum_repository"),
];

/// Collections whose modules kiln answers to by short name.
const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// The row for a task's action name (with or without a collection prefix, or an alias).
pub fn resolve(name: &str) -> Option<&'static ModuleSpec> {
    let short = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    MODULES.iter().find(|spec| spec.answers_to(short))
}

/// The module Ansible's `service` action hands its task to on a host whose service manager
/// is `service_mgr` (that module's `module_defaults` apply too); None for any other module.
pub fn service_backend(spec: &ModuleSpec, service_mgr: &str) -> Option<&'static ModuleSpec> {
    (spec.name == "service")
        .then(|| resolve(service_mgr))
        .flatten()
}

/// Every name (without prefix) the registry knows, for "did you mean" hints.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES
        .iter()
        .flat_map(|spec| std::iter::once(spec.name).chain(spec.aliases.iter().copied()))
}

/// One of kiln's own modules by its short name (for modules that hand over to another).
pub fn native(name: &str) -> Option<&'static dyn Module> {
    match resolve(name)?.kind {
        Kind::Native(module) => Some(module),
        _ => None,
    }
}

/// The module that gathers facts (the play's implicit first task).
pub fn fact_gathering() -> &'static ModuleSpec {
    &SETUP
}

impl RunnerAction {
    /// The action's row in the registry.
    pub fn spec(self) -> Option<&'static ModuleSpec> {
        MODULES
            .iter()
            .find(|spec| matches!(spec.kind, Kind::Runner(a) if a == self))
    }

    pub fn name(self) -> &'static str {
        self.spec().map_or("", |spec| spec.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_aliases_resolve_to_one_row() {
        for name in ["setup", "gather_facts", "ansible.builtin.gather_facts"] {
            assert_eq!(resolve(name).map(|s| s.name), Some("setup"), "{name}");
        }
        assert_eq!(resolve("ansible.legacy.dnf5").map(|s| s.name), Some("dnf"));
        assert_eq!(
            resolve("community.general.apk").map(|s| s.name),
            Some("apk")
        );
        assert!(resolve("win_ping").is_none());
        assert!(resolve("copyy").is_none());
        assert_eq!(fact_gathering().name, "setup");
        assert_eq!(RunnerAction::IncludeRole.name(), "include_role");
    }

    #[test]
    fn every_name_is_one_row() {
        let all: Vec<&str> = names().collect();
        for name in &all {
            assert_eq!(
                all.iter().filter(|n| *n == name).count(),
                1,
                "'{name}' names two rows"
            );
        }
    }

    /// Words in the loader and runner that are a module's name but mean something else
    /// there: an argument key, an SSH config key, a role directory, a play keyword, a
    /// `loop_control` option.
    const OTHER_MEANINGS: &[(&str, &str)] = &[
        ("run/actions.rs", "file"),
        ("run/include_vars.rs", "file"),
        ("run/items.rs", "file"),
        ("load/tasklist.rs", "file"),
        ("run/target.rs", "user"),
        ("run/target.rs", "hostname"),
        ("load/role.rs", "meta"),
        ("load/playbook.rs", "gather_facts"),
        ("load/task.rs", "pause"),
        ("run/inventory_edit.rs", "group"),
        ("run/inventory_edit.rs", "hostname"),
        ("run/inventory_edit.rs", "add_host"),
    ];

    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The registry is the one place that knows a module by name: the loader and the runner
    /// go through its rows, never through their own lists of names.
    #[test]
    fn no_module_names_outside_the_registry() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src.join("load"), &mut files);
        sources(&src.join("run"), &mut files);
        assert!(files.len() > 10, "no sources found under {}", src.display());
        let mut found = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let file = path.strip_prefix(&src).unwrap_or(&path).to_string_lossy();
            for name in names() {
                if OTHER_MEANINGS.contains(&(file.as_ref(), name)) {
                    continue;
                }
                for (n, line) in code.lines().enumerate() {
                    if line.contains(&format!("\"{name}\"")) {
                        found.push(format!("{file}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "module names outside the registry:\n{}",
            found.join("\n")
        );
    }
}
