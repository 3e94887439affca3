//! `user`'s pure plan: from the typed arguments and the probed account, the steps that take
//! the account where it should be (no target needed; unit-tested on recorded probe output).

use crate::connection::quote;

/// The `state` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Present,
    Absent,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Absent => "absent",
        }
    }
}

/// The `update_password` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdatePassword {
    #[default]
    Always,
    OnCreate,
}

/// What `generate_ssh_key` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SshKey {
    pub key_type: String,
    pub bits: Option<i64>,
    /// Relative paths are under the account's home.
    pub file: Option<String>,
    pub comment: Option<String>,
    pub passphrase: Option<String>,
}

/// The module's arguments, checked and typed.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub name: String,
    pub state: State,
    pub uid: Option<i64>,
    pub group: Option<String>,
    pub groups: Option<Vec<String>>,
    pub append: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub move_home: bool,
    pub comment: Option<String>,
    pub password: Option<String>,
    pub update_password: UpdatePassword,
    pub password_lock: Option<bool>,
    /// Days since the epoch as usermod takes them; empty clears the expiry.
    pub expires: Option<String>,
    pub non_unique: bool,
    pub create_home: bool,
    pub system: bool,
    pub skeleton: Option<String>,
    pub remove: bool,
    pub force: bool,
    pub ssh_key: Option<SshKey>,
}

/// The account as the target knows it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Account {
    pub exists: bool,
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
    pub password: Option<String>,
    /// The account's expiry in days since the epoch (`/etc/shadow`'s 8th field; empty: never).
    pub expires: String,
    pub primary_group: String,
    pub groups: Vec<String>,
    /// A group named like the account exists (useradd would refuse to create it).
    pub same_name_group: bool,
}

/// Parses the probe: the passwd line, then `shadow:`, `pgroup:`, `groups:` lines and
/// `samegroup` when a group of the account's name exists.
pub fn parse_account(text: &str, name: &str) -> Account {
    let mut account = Account::default();
    for line in text.lines() {
        if let Some(shadow) = line.strip_prefix("shadow:") {
            let fields: Vec<&str> = shadow.split(':').collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or_default().to_string();
            account.password = Some(field(1)).filter(|p| !p.is_empty());
            account.expires = field(7);
        } else if let Some(g) = line.strip_prefix("pgroup:") {
            account.primary_group = g.trim().to_string();
        } else if let Some(g) = line.strip_prefix("groups:") {
            account.groups = g.split_whitespace().map(str::to_string).collect();
        } else if line == "samegroup" {
            account.same_name_group = true;
        } else {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 7 && f[0] == name {
                account.exists = true;
                account.uid = f[2].parse().unwrap_or(0);
                account.gid = f[3].parse().unwrap_or(0);
                account.comment = f[4].to_string();
                account.home = f[5].to_string();
                account.shell = f[6].to_string();
            }
        }
    }
    account
}

/// One command of the plan; all of a plan's steps run as one command, joined by `&&`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `useradd` with these options.
    Create(Vec<String>),
    /// `usermod` with these options.
    Modify(Vec<String>),
    /// Sets this hash through `chpasswd -e` on stdin (a hash in an argv is visible in `ps`).
    SetPassword(String),
    Delete {
        remove: bool,
        force: bool,
    },
}

impl Step {
    fn command(&self, name: &str) -> String {
        let q = quote(name);
        match self {
            Step::Create(opts) => format!("useradd {} {q}", opts.join(" ")),
            Step::Modify(opts) => format!("usermod {} {q}", opts.join(" ")),
            Step::SetPassword(_) => format!("chpasswd -e && {FORGET_STDIN}"),
            Step::Delete { remove, force } => format!(
                "userdel{}{} {q}",
                if *remove { " -r" } else { "" },
                if *force { " -f" } else { "" }
            ),
        }
    }
}

/// Empties the file the command's stdin came from (the session keeps it until the next
/// command with stdin): a secret read from it does not stay behind on the target.
pub const FORGET_STDIN: &str = "{ true >/dev/stdin || true; } 2>/dev/null";

/// The plan as one shell command and the stdin it needs (the `name:hash` line for chpasswd);
/// `None` when there is nothing to do.
pub fn render(steps: &[Step], name: &str) -> Option<(String, Option<String>)> {
    if steps.is_empty() {
        return None;
    }
    let command = steps
        .iter()
        .map(|step| step.command(name))
        .collect::<Vec<_>>()
        .join(" && ");
    let input = steps.iter().find_map(|step| match step {
        Step::SetPassword(hash) => Some(format!("{name}:{hash}\n")),
        _ => None,
    });
    Some((command, input))
}

/// The steps that take `account` to `wanted` (the SSH key is planned after them, on the
/// account as it then is).
pub fn plan(wanted: &Wanted, account: &Account) -> Vec<Step> {
    match (wanted.state, account.exists) {
        (State::Absent, false) => Vec::new(),
        (State::Absent, true) => vec![Step::Delete {
            remove: wanted.remove,
            force: wanted.force,
        }],
        (State::Present, false) => creation(wanted, account),
        (State::Present, true) => {
            let mut steps = Vec::new();
            // The hash first: a lock (`-L`) in the same run applies to the new hash.
            if let Some(password) = password_change(wanted, account) {
                steps.push(Step::SetPassword(password.to_string()));
            }
            let opts = modifications(wanted, account);
            if !opts.is_empty() {
                steps.push(Step::Modify(opts));
            }
            steps
        }
    }
}

/// useradd with every option given, then the password and the lock.
fn creation(wanted: &Wanted, account: &Account) -> Vec<Step> {
    let mut opts: Vec<String> = Vec::new();
    if let Some(uid) = wanted.uid {
        opts.push(format!("-u {uid}"));
        if wanted.non_unique {
            opts.push("-o".into());
        }
    }
    match &wanted.group {
        Some(g) => opts.push(format!("-g {}", quote(g))),
        // useradd refuses to create a user group whose name is taken.
        None if account.same_name_group => opts.push(format!("-g {}", quote(&wanted.name))),
        None => {}
    }
    if let Some(groups) = wanted.groups.as_ref().filter(|g| !g.is_empty()) {
        opts.push(format!("-G {}", quote(&groups.join(","))));
    }
    if let Some(s) = &wanted.shell {
        opts.push(format!("-s {}", quote(s)));
    }
    if let Some(h) = &wanted.home {
        opts.push(format!("-d {}", quote(h)));
    }
    if let Some(c) = &wanted.comment {
        opts.push(format!("-c {}", quote(c)));
    }
    if let Some(e) = &wanted.expires {
        opts.push(format!("-e {}", quote(e)));
    }
    if wanted.system {
        opts.push("-r".into());
    }
    if wanted.create_home {
        opts.push("-m".into());
        if let Some(skel) = &wanted.skeleton {
            opts.push(format!("-k {}", quote(skel)));
        }
    } else {
        opts.push("-M".into());
    }
    let mut steps = vec![Step::Create(opts)];
    if let Some(password) = &wanted.password {
        steps.push(Step::SetPassword(password.clone()));
    }
    if wanted.password_lock == Some(true) {
        steps.push(Step::Modify(vec!["-L".into()]));
    }
    steps
}

/// usermod options for what differs.
fn modifications(wanted: &Wanted, account: &Account) -> Vec<String> {
    let mut opts = Vec::new();
    if let Some(uid) = wanted.uid {
        if uid != account.uid as i64 {
            opts.push(format!("-u {uid}"));
            if wanted.non_unique {
                opts.push("-o".into());
            }
        }
    }
    if let Some(group) = &wanted.group {
        if group != &account.primary_group && group != &account.gid.to_string() {
            opts.push(format!("-g {}", quote(group)));
        }
    }
    if let Some(groups) = &wanted.groups {
        let current: Vec<&String> = account
            .groups
            .iter()
            .filter(|g| **g != account.primary_group)
            .collect();
        let missing = groups.iter().any(|g| !current.contains(&g));
        let extra = !wanted.append && current.iter().any(|g| !groups.contains(g));
        if missing || extra {
            if wanted.append {
                opts.push("-a".into());
            }
            opts.push(format!("-G {}", quote(&groups.join(","))));
        }
    }
    if let Some(shell) = &wanted.shell {
        if shell != &account.shell {
            opts.push(format!("-s {}", quote(shell)));
        }
    }
    if let Some(home) = &wanted.home {
        if home != &account.home {
            opts.push(format!("-d {}", quote(home)));
            if wanted.move_home {
                opts.push("-m".into());
            }
        }
    }
    if let Some(comment) = &wanted.comment {
        if comment != &account.comment {
            opts.push(format!("-c {}", quote(comment)));
        }
    }
    if let Some(lock) = wanted.password_lock {
        let locked = account
            .password
            .as_deref()
            .is_some_and(|p| p.starts_with('!'));
        if lock && !locked {
            opts.push("-L".into());
        } else if !lock && locked {
            opts.push("-U".into());
        }
    }
    if let Some(expires) = &wanted.expires {
        if expires != &account.expires {
            opts.push(format!("-e {}", quote(expires)));
        }
    }
    opts
}

/// The password hash to set on an existing account, if it differs.
fn password_change<'a>(wanted: &'a Wanted, account: &Account) -> Option<&'a str> {
    let password = wanted.password.as_deref()?;
    let current = account
        .password
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('!');
    (wanted.update_password == UpdatePassword::Always && password != current).then_some(password)
}

/// The account's home as reported: the probed one, else the wanted one, else /home/NAME.
pub fn home(wanted: &Wanted, account: &Account) -> String {
    if !account.home.is_empty() {
        account.home.clone()
    } else {
        wanted
            .home
            .clone()
            .unwrap_or_else(|| format!("/home/{}", wanted.name))
    }
}

/// Where the SSH key goes: an absolute `ssh_key_file`, one relative to the home, or
/// `~/.ssh/id_TYPE`.
pub fn key_file(key: &SshKey, name: &str, account: &Account) -> String {
    let home = if account.home.is_empty() {
        format!("/home/{name}")
    } else {
        account.home.clone()
    };
    match &key.file {
        Some(f) if f.starts_with('/') => f.clone(),
        Some(f) => format!("{home}/{f}"),
        None => format!("{home}/.ssh/id_{}", key.key_type),
    }
}

/// Ansible's warning when `password` does not look like a crypt(3) hash (it would be stored
/// as given, and no login would match it).
pub fn unhashed_password_warning(password: &str) -> Option<&'static str> {
    const WARNING: &str = "The input password appears not to have been hashed. The 'password' argument must be encrypted for this module to work properly.";
    if password.is_empty() || matches!(password, "*" | "!" | "*************") {
        return None;
    }
    let fields: Vec<&str> = password.split('$').collect();
    let last = fields.last().copied().unwrap_or_default();
    let wrong_length = |scheme: &str, len: usize| fields[1] == scheme && last.len() != len;
    let suspect = password.contains([':', '*', '!'])
        || !password.contains('$')
        || fields.len() < 3
        || last
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '=')))
        || wrong_length("1", 22)
        || wrong_length("5", 43)
        || wrong_length("6", 86)
        || wrong_length("y", 43);
    suspect.then_some(WARNING)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
