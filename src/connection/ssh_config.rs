//! OpenSSH client configuration (`~/.ssh/config`, `/etc/ssh/ssh_config`, `-F FILE`), read as
//! `ssh` reads it, for the options kiln uses: `Host` blocks (patterns with `*`, `?` and
//! `!negation`), `Match all`, `Include` (globs, relative to `~/.ssh` or `/etc/ssh`),
//! `HostName` (`%h`), `User`, `Port`, `IdentityFile` (`~`, `%d`, `%u`, `%h`, `%r`, `%p`),
//! `IdentitiesOnly`, `ProxyJump`, `ProxyCommand`, `StrictHostKeyChecking`,
//! `UserKnownHostsFile`. The first value found for an option wins, except `IdentityFile`,
//! whose values add up. Other `Match` criteria never match (their blocks are skipped).

use std::path::{Path, PathBuf};

/// How deep `Include`s may nest (OpenSSH's limit).
const INCLUDE_DEPTH: usize = 16;

/// One parsed configuration file, its `Include`s read in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SshConfig {
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// `Host` patterns, or `Match` (true: `Match all`, false: criteria kiln does not judge).
    Host(Vec<String>),
    Match(bool),
    /// A keyword (lowercase) and its value as written after it.
    Option(String, String),
    Include(Vec<SshConfig>),
}

/// What the configuration says about one host (None: not set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// As written: expand with [`HostConfig::identity_files`].
    identity_files: Vec<String>,
    pub identities_only: Option<bool>,
    /// `ProxyJump` or `ProxyCommand`, whichever came first (`none` turns both off).
    pub proxy: Option<ProxySetting>,
    pub strict_host_key_checking: Option<String>,
    pub user_known_hosts_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProxySetting {
    /// Comma-separated `[user@]host[:port]` hops, as written.
    Jump(String),
    /// A shell command, tokens unexpanded (see [`expand_tokens`]).
    Command(String),
    /// `none`: connect directly.
    Direct,
}

/// The values `%` tokens stand for.
#[derive(Debug, Clone, Default)]
pub struct Tokens<'a> {
    /// `%h`: the host's name (after `HostName`).
    pub host: &'a str,
    /// `%r`: the remote user.
    pub user: &'a str,
    /// `%p`: the port.
    pub port: u16,
}

/// Expands `%h`, `%p`, `%r`, `%d` (home), `%u` (local user) and `%%` in `text`; a leading
/// `~/` is the home directory.
pub fn expand_tokens(text: &str, tokens: &Tokens) -> String {
    let home = home_dir();
    let text = match text.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", home.display()),
        None => text.to_string(),
    };
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(tokens.host),
            Some('r') => out.push_str(tokens.user),
            Some('p') => out.push_str(&tokens.port.to_string()),
            Some('d') => out.push_str(&home.display().to_string()),
            Some('u') => out.push_str(&local_user()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The local user's name (OpenSSH's default remote user).
pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

impl SshConfig {
    /// What `ssh` reads without `-F`: `~/.ssh/config`, then `/etc/ssh/ssh_config`.
    pub fn load_default() -> SshConfig {
        let user = home_dir().join(".ssh");
        let mut items = Vec::new();
        for (file, base) in [
            (user.join("config"), user.clone()),
            (
                PathBuf::from("/etc/ssh/ssh_config"),
                PathBuf::from("/etc/ssh"),
            ),
        ] {
            items.push(Item::Include(vec![SshConfig::load(&file, &base)]));
        }
        SshConfig { items }
    }

    /// Reads `file` (a missing or unreadable file is an empty configuration, as for `ssh`
    /// without `-F`); relative `Include`s are under `base`.
    pub fn load(file: &Path, base: &Path) -> SshConfig {
        Self::load_at(file, base, 0)
    }

    fn load_at(file: &Path, base: &Path, depth: usize) -> SshConfig {
        match std::fs::read_to_string(file) {
            Ok(text) => Self::parse_at(&text, base, depth),
            Err(_) => SshConfig::default(),
        }
    }

    /// Parses configuration text; relative `Include`s are under `base`.
    pub fn parse(text: &str, base: &Path) -> SshConfig {
        Self::parse_at(text, base, 0)
    }

    fn parse_at(text: &str, base: &Path, depth: usize) -> SshConfig {
        let mut items = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let split = line
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(line.len());
            let keyword = line[..split].to_ascii_lowercase();
            let rest = line[split..].trim_start();
            let value = rest.strip_prefix('=').unwrap_or(rest).trim().to_string();
            items.push(match keyword.as_str() {
                "host" => Item::Host(split_option_value(&value)),
                "match" => Item::Match(value.eq_ignore_ascii_case("all")),
                "include" if depth < INCLUDE_DEPTH => Item::Include(
                    split_option_value(&value)
                        .iter()
                        .flat_map(|pattern| included_files(pattern, base))
                        .map(|file| Self::load_at(&file, base, depth + 1))
                        .collect(),
                ),
                _ => Item::Option(keyword, value),
            });
        }
        SshConfig { items }
    }

    /// The options that apply to `host` (the name `ssh` is given: for Ansible, the host's
    /// `ansible_host` or inventory name).
    pub fn lookup(&self, host: &str) -> HostConfig {
        let mut found = HostConfig::default();
        self.apply(&host.to_ascii_lowercase(), &mut found);
        found
    }

    fn apply(&self, host: &str, found: &mut HostConfig) {
        let mut active = true;
        for item in &self.items {
            match item {
                Item::Host(patterns) => active = host_matches(patterns, host),
                Item::Match(all) => active = *all,
                Item::Include(files) if active => {
                    for file in files {
                        file.apply(host, found);
                    }
                }
                Item::Option(keyword, value) if active => found.set(keyword, value),
                _ => {}
            }
        }
    }
}

impl HostConfig {
    /// Records one option unless an earlier value holds it.
    fn set(&mut self, keyword: &str, value: &str) {
        let first = || split_option_value(value).into_iter().next();
        match keyword {
            "hostname" => self.hostname = self.hostname.take().or_else(first),
            "user" => self.user = self.user.take().or_else(first),
            "port" if self.port.is_none() => self.port = first().and_then(|p| p.parse().ok()),
            "identityfile" => self.identity_files.extend(first()),
            "identitiesonly" if self.identities_only.is_none() => {
                self.identities_only = first().map(|v| v.eq_ignore_ascii_case("yes"))
            }
            "proxyjump" if self.proxy.is_none() => {
                self.proxy = Some(match value {
                    "none" => ProxySetting::Direct,
                    hops => ProxySetting::Jump(hops.to_string()),
                })
            }
            "proxycommand" if self.proxy.is_none() => {
                self.proxy = Some(match value {
                    "none" => ProxySetting::Direct,
                    command => ProxySetting::Command(command.to_string()),
                })
            }
            "stricthostkeychecking" => {
                self.strict_host_key_checking = self.strict_host_key_checking.take().or_else(first)
            }
            "userknownhostsfile" if self.user_known_hosts_file.is_none() => {
                self.user_known_hosts_file = Some(value.to_string())
            }
            _ => {}
        }
    }

    /// `HostName` with `%h` expanded, or `host` itself.
    pub fn hostname_for(&self, host: &str) -> String {
        match &self.hostname {
            Some(name) => name.replace("%h", host).replace("%%", "%"),
            None => host.to_string(),
        }
    }

    /// The `IdentityFile`s, tokens expanded.
    pub fn identity_files(&self, tokens: &Tokens) -> Vec<PathBuf> {
        self.identity_files
            .iter()
            .map(|f| PathBuf::from(expand_tokens(f, tokens)))
            .collect()
    }
}

/// Whether a `Host` line's patterns select `host`: one positive pattern matches and no
/// negated one does.
fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard_match(negated, host) => return false,
            Some(_) => {}
            None => matched |= wildcard_match(&pattern, host),
        }
    }
    matched
}

/// `*` (any run) and `?` (one character) matching of the whole of `text`.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The files an `Include` pattern names, sorted as glob sorts them; `~` is the home
/// directory and a relative pattern is under `base`.
fn included_files(pattern: &str, base: &Path) -> Vec<PathBuf> {
    let expanded = expand_tokens(pattern, &Tokens::default());
    let full = if Path::new(&expanded).is_absolute() {
        PathBuf::from(expanded)
    } else {
        base.join(expanded)
    };
    let Some(text) = full.to_str() else {
        return Vec::new();
    };
    match glob::glob(text) {
        Ok(paths) => paths.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

/// Splits an ssh option's value into words as OpenSSH does (`UserKnownHostsFile='a b' c`
/// names two files, `a b` and `c`): whitespace separates words, quotes group them, and a
/// backslash outside single quotes keeps the next character.
pub fn split_option_value(value: &str) -> Vec<String> {
    shell_words(value, true)
}

/// `value` with one level of shell quoting removed and its spaces kept, as Ansible's shlex
/// split hands an `-o Key="a b"` option to `ssh`.
pub fn unquote(value: &str) -> String {
    shell_words(value, false).concat()
}

fn shell_words(value: &str, split: bool) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None | Some('"'), '\\') => {
                let next = chars.next().unwrap_or('\\');
                word.get_or_insert_with(String::new).push(next);
            }
            (None, c) if split && c.is_whitespace() => words.extend(word.take()),
            (_, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> SshConfig {
        SshConfig::parse(text, Path::new("/nonexistent"))
    }

    #[test]
    fn option_values_split_as_openssh_splits_them() {
        assert_eq!(split_option_value("/a /b"), ["/a", "/b"]);
        assert_eq!(
            split_option_value("'/k/a b' \"/c d\" e"),
            ["/k/a b", "/c d", "e"]
        );
        assert_eq!(split_option_value("/x\\ y ''"), ["/x y", ""]);
        assert!(split_option_value("  ").is_empty());
        assert_eq!(unquote("\"ssh -W %h:%p 'a b'\""), "ssh -W %h:%p 'a b'");
        assert_eq!(unquote("nc\\ x 'y z'"), "nc x y z");
    }

    #[test]
    fn wildcards_match_whole_names() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("web?.example.com", "web1.example.com"));
        assert!(!wildcard_match("web?.example.com", "web12.example.com"));
        assert!(wildcard_match("*.example.*", "db.example.org"));
        assert!(wildcard_match("a*b*c", "aXbYbZc"));
        assert!(!wildcard_match("a*b", "a"));
        assert!(!wildcard_match("web", "web1"));
    }

    #[test]
    fn first_value_wins_and_identity_files_add_up() {
        let c = config(
            "# comment\n\
             Host web1\n  HostName %h.internal\n  User deploy\n  IdentityFile ~/.ssh/web\n\
             Host web*\n  User other\n  Port=2222\n  IdentityFile /k/%u-%r@%h:%p\n\
             Host *\n  User fallback\n  Port 22\n",
        );
        let web1 = c.lookup("WEB1");
        assert_eq!(web1.hostname_for("web1"), "web1.internal");
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.port, Some(2222));
        let tokens = Tokens {
            host: "web1.internal",
            user: "deploy",
            port: 2222,
        };
        let files = web1.identity_files(&tokens);
        assert_eq!(files[0], home_dir().join(".ssh/web"));
        assert_eq!(
            files[1],
            PathBuf::from(format!("/k/{}-deploy@web1.internal:2222", local_user()))
        );
        let other = c.lookup("db");
        assert_eq!(other.user.as_deref(), Some("fallback"));
        assert_eq!(other.hostname_for("db"), "db");
    }

    #[test]
    fn negated_patterns_exclude_and_options_before_any_host_apply_to_all() {
        let c = config(
            "User everyone\n\
             Host *.corp !bastion.corp\n  ProxyJump admin@bastion.corp:2200,second\n\
             Host bastion.corp\n  ProxyCommand none\n\
             Host *\n  ProxyCommand ssh -W %h:%p gw\n",
        );
        assert_eq!(c.lookup("x").user.as_deref(), Some("everyone"));
        assert_eq!(
            c.lookup("db.corp").proxy,
            Some(ProxySetting::Jump("admin@bastion.corp:2200,second".into()))
        );
        assert_eq!(c.lookup("bastion.corp").proxy, Some(ProxySetting::Direct));
        assert_eq!(
            c.lookup("elsewhere").proxy,
            Some(ProxySetting::Command("ssh -W %h:%p gw".into()))
        );
        let only_negated = config("Host !a\n  User x\n");
        assert_eq!(
            only_negated.lookup("b").user,
            None,
            "a negation alone selects nothing"
        );
    }

    #[test]
    fn match_all_applies_and_other_criteria_are_skipped() {
        let c = config("Match host x exec true\n  User skipped\nMatch all\n  Port 2022\n");
        let found = c.lookup("x");
        assert_eq!((found.user, found.port), (None, Some(2022)));
    }

    #[test]
    fn includes_are_globs_relative_to_the_base_and_conditional_inside_a_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/10-a.conf"),
            "Host a\n  User from-a\nHost *\n  Port 2001\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("conf.d/20-b.conf"), "Port 2002\nUser any\n").unwrap();
        std::fs::write(dir.path().join("only-b"), "IdentitiesOnly yes\n").unwrap();
        let c = SshConfig::parse(
            "Include conf.d/*.conf\nHost b\n  Include only-b\n",
            dir.path(),
        );
        let a = c.lookup("a");
        assert_eq!((a.user.as_deref(), a.port), (Some("from-a"), Some(2001)));
        assert_eq!(a.identities_only, None);
        let b = c.lookup("b");
        assert_eq!((b.user.as_deref(), b.port), (Some("any"), Some(2001)));
        assert_eq!(b.identities_only, Some(true));
        // A file that includes itself stops at the depth limit.
        std::fs::write(dir.path().join("loop"), "Include loop\nUser looped\n").unwrap();
        let looped = SshConfig::load(&dir.path().join("loop"), dir.path());
        assert_eq!(looped.lookup("x").user.as_deref(), Some("looped"));
    }

    #[test]
    fn tokens_expand_and_unknown_ones_stay() {
        let tokens = Tokens {
            host: "h",
            user: "u",
            port: 22,
        };
        assert_eq!(
            expand_tokens("nc %h %p %r 100%% %x", &tokens),
            "nc h 22 u 100% %x"
        );
    }
}
