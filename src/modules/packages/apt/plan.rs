//! `apt`'s pure plan: from the typed arguments and what dpkg and apt-cache said about the
//! packages, the `apt-get` transactions to run (no target needed; unit-tested on recorded
//! probe output).

use crate::connection::quote;
use crate::modules::packages::version_matches;
use crate::modules::ModuleError;

/// The `state` option kiln supports (`build-dep` and `fixed` are refused while parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageState {
    /// `present` or `installed`.
    Present,
    /// `absent` or `removed`.
    Absent,
    Latest,
}

impl PackageState {
    /// `text` is one of the choices the module's arguments accept.
    pub fn parse(text: &str) -> Result<Self, ModuleError> {
        Ok(match text {
            "present" | "installed" => Self::Present,
            "absent" | "removed" => Self::Absent,
            "latest" => Self::Latest,
            other => {
                return Err(ModuleError::Args(format!(
                    "apt: state={other} is not supported by kiln"
                )))
            }
        })
    }
}

/// The `upgrade` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    No,
    /// `yes` or `safe`.
    Safe,
    /// `full` or `dist`.
    Full,
}

impl Upgrade {
    /// `text` is one of the choices the module's arguments accept.
    pub fn parse(text: &str) -> Self {
        match text {
            "yes" | "safe" => Self::Safe,
            "full" | "dist" => Self::Full,
            _ => Self::No,
        }
    }
}

/// A package as named in the task: `nginx`, `nginx=1.22*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub name: String,
    pub version: Option<String>,
}

impl Wanted {
    /// The name as `apt-get install` takes it.
    pub fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}={v}", self.name),
            None => self.name.clone(),
        }
    }
}

pub fn parse_wanted(spec: &str) -> Wanted {
    match spec.split_once('=') {
        Some((name, version)) => Wanted {
            name: name.trim().to_string(),
            version: Some(version.trim().to_string()),
        },
        None => Wanted {
            name: spec.trim().to_string(),
            version: None,
        },
    }
}

/// The module's arguments, checked and typed.
#[derive(Debug, Clone)]
pub struct AptArgs {
    pub packages: Vec<Wanted>,
    /// A `.deb` file on the target.
    pub deb: Option<String>,
    pub state: PackageState,
    pub update_cache: bool,
    /// Seconds; 0 when not given.
    pub cache_valid_time: i64,
    pub install_recommends: Option<bool>,
    pub default_release: Option<String>,
    pub allow_unauthenticated: bool,
    pub allow_downgrade: bool,
    pub only_upgrade: bool,
    pub lock_timeout: i64,
    pub purge: bool,
    pub autoremove: bool,
    /// Delete the cached `.deb` files of packages that can no longer be downloaded.
    pub autoclean: bool,
    pub upgrade: Upgrade,
}

impl Default for AptArgs {
    fn default() -> Self {
        Self {
            packages: Vec::new(),
            deb: None,
            state: PackageState::Present,
            update_cache: false,
            cache_valid_time: 0,
            install_recommends: None,
            default_release: None,
            allow_unauthenticated: false,
            allow_downgrade: false,
            only_upgrade: false,
            lock_timeout: 60,
            purge: false,
            autoremove: false,
            autoclean: false,
            upgrade: Upgrade::No,
        }
    }
}

impl AptArgs {
    /// The `apt-get` command line these options ask for.
    pub fn apt_get(&self) -> String {
        let mut extra = String::new();
        match self.install_recommends {
            Some(true) => extra.push_str(" -o APT::Install-Recommends=yes"),
            Some(false) => extra.push_str(" --no-install-recommends"),
            None => {}
        }
        if let Some(release) = &self.default_release {
            extra.push_str(&format!(" -t {}", quote(release)));
        }
        if self.allow_unauthenticated {
            extra.push_str(" --allow-unauthenticated");
        }
        if self.allow_downgrade {
            extra.push_str(" --allow-downgrades");
        }
        super::apt_get(self.lock_timeout, &extra)
    }

    /// Whether the lists, `age` seconds old, must be updated. As in Ansible, an explicit
    /// cache_valid_time asks for an update too.
    pub fn needs_cache_update(&self, age: i64) -> bool {
        (self.update_cache || self.cache_valid_time > 0)
            && (self.cache_valid_time == 0 || age > self.cache_valid_time)
    }

    /// Whether `latest` must read candidate versions in a second round trip.
    pub fn reads_candidates(&self) -> bool {
        self.state == PackageState::Latest && !self.packages.is_empty()
    }

    /// Whether a cache update is the task's only possible change, which Ansible then reports.
    pub fn only_updates_cache(&self) -> bool {
        self.packages.is_empty() && self.deb.is_none() && self.upgrade == Upgrade::No
    }
}

/// What the first probe said: the lists' age and mtime, and the `.deb` file's package.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probed {
    /// Seconds since the last update; `i64::MAX` when the lists were never updated.
    pub cache_age: i64,
    /// The lists' mtime as the target printed it (nanoseconds after the point).
    pub cache_mtime: String,
    /// `(package, version)` inside the `.deb` file.
    pub deb: Option<(String, String)>,
    /// The whole output: the named packages' `pkg:` lines are in it.
    pub text: String,
}

/// Parses the probe's `age:SECONDS MTIME` and `deb:PACKAGE\tVERSION` lines.
pub fn parse_probe(text: &str) -> Probed {
    let (cache_age, cache_mtime) = text
        .lines()
        .find_map(|l| l.strip_prefix("age:"))
        .and_then(|s| s.split_once(' '))
        .map(|(a, m)| (a.parse::<i64>().unwrap_or(i64::MAX), m.trim().to_string()))
        .unwrap_or((i64::MAX, String::new()));
    let deb = text
        .lines()
        .find_map(|l| l.strip_prefix("deb:"))
        .and_then(|l| l.split_once('\t'))
        .map(|(p, v)| (p.to_string(), v.to_string()));
    Probed {
        cache_age,
        cache_mtime,
        deb,
        text: text.to_string(),
    }
}

/// The whole seconds of an mtime the target printed; anything unreadable counts as never.
pub fn mtime_seconds(mtime: &str) -> i64 {
    let whole = mtime.trim().split('.').next().unwrap_or_default();
    whole.parse().unwrap_or(0)
}

/// What the target says about one package.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Installed {
    pub installed: Option<String>,
    pub candidate: Option<String>,
    /// Removed but its configuration files kept (`rc`), for `purge`.
    pub config_files: bool,
}

/// Parses the probe's `pkg:NAME\tSTATUS\tVERSION` and `cand:NAME\tVERSION` lines.
pub fn parse_status(text: &str, name: &str) -> Installed {
    let mut out = Installed::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pkg:") {
            let mut f = rest.split('\t');
            let (Some(n), Some(status), Some(version)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            // `Package` may carry an architecture qualifier (`libc6:amd64`).
            if n.split(':').next() != Some(name) {
                continue;
            }
            match status.trim() {
                "ii" | "hi" => out.installed = Some(version.to_string()),
                "rc" => out.config_files = true,
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix("cand:") {
            if let Some((n, version)) = rest.split_once('\t') {
                if n == name && version != "(none)" && !version.is_empty() {
                    out.candidate = Some(version.to_string());
                }
            }
        }
    }
    out
}

/// The installed version of the `.deb` file's package, from `STATUS\tVERSION`.
pub fn parse_deb_installed(text: &str) -> Option<String> {
    text.split_once('\t')
        .filter(|(s, _)| s.trim() == "ii")
        .map(|(_, v)| v.to_string())
}

/// Everything the plan needs to know about the target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// dpkg's `pkg:`/`cand:` lines for the named packages.
    pub statuses: String,
    /// The `.deb` file's version and the installed version of its package.
    pub deb: Option<ObservedDeb>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedDeb {
    pub version: String,
    pub installed: Option<String>,
}

/// A whole-system `apt-get` action, simulated first so a no-op reports `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WholeSystem {
    Upgrade,
    DistUpgrade,
    Autoremove,
    AutoremovePurge,
    Autoclean,
}

impl WholeSystem {
    /// The `apt-get` arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upgrade => "upgrade --with-new-pkgs",
            Self::DistUpgrade => "dist-upgrade",
            Self::Autoremove => "autoremove",
            Self::AutoremovePurge => "autoremove --purge",
            Self::Autoclean => "autoclean",
        }
    }
}

/// Whether `apt-get -s` output lists anything it would install, remove, purge or (for
/// `autoclean`) delete from the package cache.
pub fn simulation_pending(simulated: &str) -> bool {
    simulated.lines().any(|l| {
        ["Inst ", "Remv ", "Purg ", "Del "]
            .iter()
            .any(|verb| l.starts_with(verb))
    })
}

/// The transactions that take the packages to the wanted state, in order: install, remove,
/// then the whole-system actions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Names (with versions) and `.deb` paths for `apt-get install`.
    pub install: Vec<String>,
    /// Names for `apt-get remove` (`--purge` when `purge`).
    pub remove: Vec<String>,
    pub purge: bool,
    pub whole_system: Vec<WholeSystem>,
}

impl Plan {
    /// The package changes as a diff's "after" text.
    pub fn diff_text(&self) -> String {
        let install = self.install.iter().map(|p| format!("install {p}\n"));
        let remove = self.remove.iter().map(|p| format!("remove {p}\n"));
        install.chain(remove).collect()
    }
}

/// The pure plan for `args` on a target that looks like `observed`.
pub fn plan(args: &AptArgs, observed: &Observed) -> Plan {
    let mut plan = Plan {
        purge: args.purge,
        ..Plan::default()
    };
    for wanted in &args.packages {
        let status = parse_status(&observed.statuses, &wanted.name);
        match args.state {
            PackageState::Present => {
                let ok = match (&status.installed, &wanted.version) {
                    (Some(v), Some(want)) => version_matches(v, want),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                let skip = args.only_upgrade && status.installed.is_none();
                if !(ok || skip) {
                    plan.install.push(wanted.spec());
                }
            }
            PackageState::Latest => {
                let stale = match (&status.installed, &status.candidate) {
                    (None, _) => !args.only_upgrade,
                    (Some(i), Some(c)) => i != c,
                    (Some(_), None) => false,
                };
                if stale {
                    plan.install.push(wanted.name.clone());
                }
            }
            PackageState::Absent => {
                if status.installed.is_some() || (args.purge && status.config_files) {
                    plan.remove.push(wanted.name.clone());
                }
            }
        }
    }
    if let (Some(path), Some(deb)) = (&args.deb, &observed.deb) {
        if deb.installed.as_deref() != Some(deb.version.as_str()) {
            plan.install.push(path.clone());
        }
    }
    match args.upgrade {
        Upgrade::No => {}
        Upgrade::Safe => plan.whole_system.push(WholeSystem::Upgrade),
        Upgrade::Full => plan.whole_system.push(WholeSystem::DistUpgrade),
    }
    if args.autoremove {
        plan.whole_system.push(if args.purge {
            WholeSystem::AutoremovePurge
        } else {
            WholeSystem::Autoremove
        });
    }
    if args.autoclean {
        plan.whole_system.push(WholeSystem::Autoclean);
    }
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
