//! The module table: names (with `ansible.builtin.` and common collection prefixes) to
//! implementations. Actions the runner handles itself (includes, `meta`) are listed too, so
//! the loader accepts them.

use super::{commands, control, files, packages, system, Module};

/// Actions the runner carries out itself.
pub const RUNNER_ACTIONS: &[&str] = &[
    "include_tasks",
    "include_role",
    "import_tasks",
    "import_role",
    "meta",
    "set_fact",
    "include_vars",
];

static MODULES: &[(&str, &dyn Module)] = &[
    ("command", &commands::command::Command { shell: false }),
    ("shell", &commands::command::Command { shell: true }),
    ("raw", &commands::raw::Raw),
    ("script", &commands::script::Script),
    ("file", &files::file::File),
    ("copy", &files::copy::Copy),
    ("template", &files::template::Template),
    ("stat", &files::stat::Stat),
    ("lineinfile", &files::lineinfile::LineInFile),
    ("blockinfile", &files::blockinfile::BlockInFile),
    ("replace", &files::replace::Replace),
    ("find", &files::find::Find),
    ("get_url", &files::get_url::GetUrl),
    ("unarchive", &files::unarchive::Unarchive),
    ("tempfile", &files::tempfile::TempFile),
    ("debug", &control::debug::Debug),
    ("assert", &control::assert::Assert),
    ("fail", &control::fail::Fail),
    ("ping", &control::ping::Ping),
    ("wait_for", &control::wait_for::WaitFor),
    ("setup", &system::setup::Setup),
    ("apt", &packages::apt::Apt),
    ("package", &packages::package::Package),
    (
        "dnf",
        &packages::dnf::Dnf {
            backend: &packages::dnf::DNF,
        },
    ),
    (
        "yum",
        &packages::dnf::Dnf {
            backend: &packages::dnf::YUM,
        },
    ),
    ("apk", &packages::apk::Apk),
    ("package_facts", &packages::package_facts::PackageFacts),
    ("apt_repository", &packages::apt_repository::AptRepository),
    (
        "deb822_repository",
        &packages::deb822_repository::Deb822Repository,
    ),
    (
        "service",
        &system::service::Service {
            systemd_only: false,
        },
    ),
    ("systemd", &system::service::Service { systemd_only: true }),
    (
        "systemd_service",
        &system::service::Service { systemd_only: true },
    ),
    ("service_facts", &system::service_facts::ServiceFacts),
    ("cron", &system::cron::Cron),
    ("user", &system::user::User),
    ("group", &system::group::Group),
    ("authorized_key", &system::authorized_key::AuthorizedKey),
    ("getent", &system::getent::Getent),
    ("hostname", &system::hostname::Hostname),
    ("sysctl", &system::sysctl::Sysctl),
];

/// Collections whose modules kiln answers to by short name.
const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
];

/// The short name kiln knows a module by, or None when it has no such module.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let short = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    let short = match short {
        "gather_facts" => "setup",
        "dnf5" => "dnf",
        "win_ping" => return None,
        other => other,
    };
    names().find(|n| *n == short)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES
        .iter()
        .map(|(n, _)| *n)
        .chain(RUNNER_ACTIONS.iter().copied())
}

pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
}
