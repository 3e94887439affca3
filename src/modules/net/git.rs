//! `git`: a working copy at `dest` cloned from `repo` and kept at `version` (a branch, a tag,
//! a commit or the remote's `HEAD`), with the target's own git, as ansible-core's module does.
//! One probe reads the working copy and the remote's refs (`git ls-remote --symref`); a pure
//! `plan` decides; one script clones or fetches and checks out.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Git;

/// The module's options that change what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub repo: String,
    pub dest: String,
    pub version: String,
    pub remote: String,
    pub force: bool,
    pub depth: Option<u32>,
    pub clone: bool,
    pub update: bool,
    pub bare: bool,
    pub single_branch: bool,
    /// `GIT_SSH_COMMAND` (key file, host key acceptance, `ssh_opts`), as Ansible builds it.
    pub ssh_command: String,
}

/// What the probe saw on the target.
#[derive(Debug, Default, PartialEq)]
pub struct Observed {
    /// `$PATH` when git is missing.
    pub missing_git: Option<String>,
    /// The working copy's repository config exists.
    pub exists: bool,
    pub before: Option<String>,
    pub remote_url: Option<String>,
    /// Tracked files differ from `HEAD` (untracked ones do not count, as in Ansible).
    pub local_mods: bool,
    /// The remote's refs: (name, sha), `HEAD` included.
    pub refs: Vec<(String, String)>,
    /// The branch the remote's `HEAD` points at.
    pub head_branch: Option<String>,
    /// Why `ls-remote` failed, if it did.
    pub remote_error: Option<String>,
}

/// What `version` names on the remote.
#[derive(Debug, Clone, PartialEq)]
pub enum Version {
    /// The remote's default branch.
    Head(String),
    Branch(String),
    Tag(String),
    /// Anything else is taken for a commit.
    Commit(String),
}

/// What the module does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing: `update=no` on an existing copy, or `clone=no` with no copy.
    Report {
        after: Option<String>,
    },
    Clone {
        version: Version,
        after: String,
    },
    Update {
        version: Version,
        after: String,
        reset: bool,
        set_url: bool,
    },
}

impl Params {
    fn parse(mut args: Args) -> Result<Params, ModuleError> {
        let repo = args.required_str(&["repo", "name"])?;
        let dest = args.str(&["dest"])?.unwrap_or_default();
        let version = args.str(&["version"])?.unwrap_or_else(|| "HEAD".into());
        let remote = args.str(&["remote"])?.unwrap_or_else(|| "origin".into());
        let force = args.bool("force", false)?;
        let depth = args
            .int("depth")?
            .map(|d| {
                u32::try_from(d)
                    .map_err(|_| ModuleError::Args(format!("git: depth {d} is out of range")))
            })
            .transpose()?;
        let clone = args.bool("clone", true)?;
        let update = args.bool("update", true)?;
        let bare = args.bool("bare", false)?;
        let single_branch = args.bool("single_branch", false)?;
        let accept_hostkey = args.bool("accept_hostkey", false)?;
        let accept_newhostkey = args.bool("accept_newhostkey", false)?;
        let key_file = args.str(&["key_file"])?;
        let ssh_opts = args.str(&["ssh_opts"])?;
        args.ignore(&["recursive", "track_submodules", "executable"]);
        for unsupported in [
            "refspec",
            "reference",
            "archive",
            "archive_prefix",
            "separate_git_dir",
            "umask",
        ] {
            if args.raw(unsupported).is_some() {
                return Err(ModuleError::Args(format!(
                    "git: kiln's native git does not support '{unsupported}'"
                )));
            }
        }
        if args.bool("verify_commit", false)? {
            return Err(ModuleError::Args(
                "git: kiln's native git does not support 'verify_commit'".into(),
            ));
        }
        args.list(&["gpg_allowlist", "gpg_whitelist"])?;
        args.finish()?;
        if accept_hostkey && accept_newhostkey {
            return Err(ModuleError::Args(
                "git: parameters are mutually exclusive: accept_hostkey|accept_newhostkey".into(),
            ));
        }
        if dest.is_empty() && clone {
            return Err(ModuleError::Failed(
                "the destination directory must be specified unless clone=no".into(),
            ));
        }
        Ok(Params {
            // Depth needs a file:// URL for a path, so Ansible makes one.
            repo: if repo.starts_with('/') {
                format!("file://{repo}")
            } else {
                repo
            },
            dest: dest.trim_end_matches('/').to_string(),
            version,
            remote,
            force,
            depth,
            clone,
            update,
            bare,
            single_branch,
            ssh_command: ssh_command(
                ssh_opts.as_deref(),
                accept_hostkey,
                accept_newhostkey,
                key_file.as_deref(),
            ),
        })
    }

    /// The repository's config file, whose existence means a working copy is there.
    fn config_path(&self) -> String {
        if self.bare {
            format!("{}/config", self.dest)
        } else {
            format!("{}/.git/config", self.dest)
        }
    }
}

/// `ssh` with the options Ansible's module gives it.
fn ssh_command(
    ssh_opts: Option<&str>,
    accept_hostkey: bool,
    accept_newhostkey: bool,
    key_file: Option<&str>,
) -> String {
    let mut opts = ssh_opts.unwrap_or_default().to_string();
    let has_policy = |o: &str| {
        o.contains("-o StrictHostKeyChecking=no")
            || o.contains("-o StrictHostKeyChecking=accept-new")
    };
    if accept_hostkey && !has_policy(&opts) {
        opts.push_str(" -o StrictHostKeyChecking=no");
    }
    if accept_newhostkey && !has_policy(&opts) {
        opts.push_str(" -o StrictHostKeyChecking=accept-new");
    }
    if !opts.contains("BatchMode=yes") {
        opts.push_str(" -o BatchMode=yes");
    }
    if let Some(key) = key_file {
        opts.push_str(&format!(" -i {}", quote(key)));
        if !opts.contains("IdentitiesOnly=yes") {
            opts.push_str(" -o IdentitiesOnly=yes");
        }
    }
    format!("ssh {}", opts.trim())
}

/// The probe: git's presence, the working copy's state, the remote's refs.
fn probe_command(p: &Params) -> String {
    let dest = quote(&p.dest);
    format!(
        "command -v git >/dev/null 2>&1 || {{ printf 'nogit:%s\\n' \"$PATH\"; exit 0; }}; \
         if [ -f {config} ]; then echo exists; \
           (cd {dest} && git rev-parse --verify -q HEAD | sed 's/^/before:/'; \
            git config --get remote.{remote}.url | sed 's/^/url:/'; \
            {mods}); fi; \
         k_refs=$(git ls-remote --symref -- {repo} 2>&1) || {{ printf '%s\\n' \"$k_refs\" | sed 's/^/lserr:/'; exit 0; }}; \
         printf '%s\\n' \"$k_refs\" | sed 's/^/ref:/'",
        config = quote(&p.config_path()),
        remote = quote(&p.remote),
        mods = if p.bare {
            String::new()
        } else {
            "git status --porcelain | grep -qv '^??' && echo mods".to_string()
        },
        repo = quote(&p.repo),
    )
}

pub fn parse(text: &str) -> Observed {
    let mut seen = Observed::default();
    let mut errors = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("nogit:") {
            seen.missing_git = Some(path.to_string());
        } else if line == "exists" {
            seen.exists = true;
        } else if line == "mods" {
            seen.local_mods = true;
        } else if let Some(sha) = line.strip_prefix("before:") {
            seen.before = Some(sha.trim().to_string());
        } else if let Some(url) = line.strip_prefix("url:") {
            seen.remote_url = Some(url.to_string());
        } else if let Some(e) = line.strip_prefix("lserr:") {
            errors.push(e.to_string());
        } else if let Some(r) = line.strip_prefix("ref:") {
            if let Some(target) = r.strip_prefix("ref: ") {
                // `ref: refs/heads/main<TAB>HEAD`
                let (target, name) = target.split_once('\t').unwrap_or((target, ""));
                if name == "HEAD" {
                    seen.head_branch = target.strip_prefix("refs/heads/").map(str::to_string);
                }
            } else if let Some((sha, name)) = r.split_once('\t') {
                seen.refs.push((name.to_string(), sha.to_string()));
            }
        }
    }
    if !errors.is_empty() {
        seen.remote_error = Some(errors.join("\n"));
    }
    seen
}

impl Observed {
    fn sha_of(&self, name: &str) -> Option<&str> {
        self.refs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, sha)| sha.as_str())
    }

    /// What `version` names, and the commit it resolves to on the remote.
    pub fn resolve(&self, version: &str) -> Result<(Version, String), String> {
        if version == "HEAD" {
            let branch = self
                .head_branch
                .clone()
                .ok_or_else(|| "Could not determine remote ref for HEAD".to_string())?;
            let sha = self
                .sha_of(&format!("refs/heads/{branch}"))
                .or_else(|| self.sha_of("HEAD"))
                .ok_or_else(|| "Could not determine remote ref for HEAD".to_string())?;
            return Ok((Version::Head(branch), sha.to_string()));
        }
        if let Some(sha) = self.sha_of(&format!("refs/heads/{version}")) {
            return Ok((Version::Branch(version.into()), sha.into()));
        }
        // An annotated tag's commit is its peeled (`^{}`) ref.
        let tag = format!("refs/tags/{version}");
        if let Some(sha) = self
            .sha_of(&format!("{tag}^{{}}"))
            .or_else(|| self.sha_of(&tag))
        {
            return Ok((Version::Tag(version.into()), sha.into()));
        }
        Ok((Version::Commit(version.into()), version.into()))
    }
}

/// A commit id the user wrote may be abbreviated: it matches a full one it starts.
fn same_commit(a: &str, b: &str) -> bool {
    a.len() >= 7 && b.len() >= 7 && (a.starts_with(b) || b.starts_with(a))
}

/// Decides what to do from what the probe saw.
pub fn plan(p: &Params, seen: &Observed) -> Result<Plan, String> {
    if let Some(path) = &seen.missing_git {
        return Err(format!(
            "Failed to find required executable \"git\" in paths: {path}"
        ));
    }
    if seen.exists && !p.update {
        return Ok(Plan::Report {
            after: seen.before.clone(),
        });
    }
    if seen.exists && seen.local_mods && !p.force {
        return Err(format!(
            "Local modifications exist in the destination: {} (force=no).",
            p.dest
        ));
    }
    if let Some(e) = &seen.remote_error {
        return Err(format!(
            "Failed to read the remote {}: {}",
            p.repo,
            e.trim()
        ));
    }
    let (version, after) = seen.resolve(&p.version)?;
    if !seen.exists {
        if !p.clone {
            return Ok(Plan::Report { after: Some(after) });
        }
        return Ok(Plan::Clone { version, after });
    }
    let set_url = seen
        .remote_url
        .as_deref()
        .is_some_and(|url| url.trim_end_matches('/') != p.repo.trim_end_matches('/'))
        || seen.remote_url.is_none();
    Ok(Plan::Update {
        version,
        after,
        reset: seen.local_mods,
        set_url,
    })
}

impl Plan {
    /// Whether the plan changes the target, given the commit checked out now.
    pub fn changes(&self, before: Option<&str>) -> bool {
        match self {
            Plan::Report { .. } => false,
            Plan::Clone { .. } => true,
            Plan::Update {
                after,
                reset,
                set_url,
                ..
            } => *reset || *set_url || !before.is_some_and(|b| same_commit(b, after)),
        }
    }
}

/// Checking out `version` in the working copy (the current directory), as Ansible's
/// `switch_version` does.
fn switch_command(remote: &str, version: &Version) -> String {
    let remote = quote(remote);
    match version {
        Version::Head(branch) | Version::Branch(branch) => {
            let b = quote(branch);
            format!(
                "if git show-ref --verify --quiet refs/heads/{b}; then \
                 git checkout --force {b} && git reset --hard {remote}/{b} --; \
                 else git checkout --track -b {b} {remote}/{b}; fi"
            )
        }
        Version::Tag(v) | Version::Commit(v) => format!("git checkout --force {}", quote(v)),
    }
}

/// The script carrying out a clone or an update; it prints the commit checked out last.
fn apply_command(p: &Params, plan: &Plan) -> Option<String> {
    let dest = quote(&p.dest);
    let remote = quote(&p.remote);
    let depth = p.depth.map(|d| format!(" --depth {d}")).unwrap_or_default();
    let head = "git rev-parse HEAD | sed 's/^/after:/'";
    let script = match plan {
        Plan::Report { .. } => return None,
        Plan::Clone { version, .. } => {
            let mut clone = String::from("git clone");
            if p.bare {
                clone.push_str(" --bare");
            } else {
                clone.push_str(&format!(" --origin {remote}"));
            }
            let named = matches!(version, Version::Branch(_) | Version::Tag(_));
            if p.depth.is_some() && (named || matches!(version, Version::Head(_))) {
                clone.push_str(&depth);
            }
            if p.single_branch {
                clone.push_str(" --single-branch");
            }
            if named && (p.depth.is_some() || p.single_branch) {
                clone.push_str(&format!(" --branch {}", quote(&p.version)));
            }
            clone.push_str(&format!(" -- {} {dest}", quote(&p.repo)));
            if p.bare {
                format!("{clone} && cd {dest} && {head}")
            } else {
                format!(
                    "{clone} && cd {dest} && {{ {switch}; }} && {head}",
                    switch = switch_command(&p.remote, version)
                )
            }
        }
        Plan::Update {
            version,
            reset,
            set_url,
            ..
        } => {
            let mut steps = vec![format!("cd {dest}")];
            if *reset {
                steps.push("git reset --hard HEAD".into());
            }
            if *set_url {
                let repo = quote(&p.repo);
                steps.push(format!(
                    "{{ git remote set-url {remote} {repo} 2>/dev/null || git remote add {remote} {repo}; }}"
                ));
            }
            let refspecs = if p.bare {
                "'+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'".to_string()
            } else {
                format!(
                    "{} '+refs/tags/*:refs/tags/*'",
                    quote(&format!("+refs/heads/*:refs/remotes/{}/*", p.remote))
                )
            };
            let force = if p.force { " --force" } else { "" };
            steps.push(format!("git fetch{depth}{force} {remote} {refspecs}"));
            if !p.bare {
                steps.push(format!("{{ {}; }}", switch_command(&p.remote, version)));
            }
            steps.push(head.into());
            steps.join(" && ")
        }
    };
    Some(format!(
        "export LC_ALL=C GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND={}; {script}",
        quote(&p.ssh_command)
    ))
}

#[async_trait]
impl Module for Git {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        let p = Params::parse(args)?;
        let probe = format!(
            "export LC_ALL=C GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND={}; {}",
            quote(&p.ssh_command),
            probe_command(&p)
        );
        let out = ctx.run_ok(&probe, None, "reading the repository").await?;
        let seen = parse(&out.stdout_text());
        let before = seen.before.clone();
        let result = |after: Option<String>| {
            ModuleResult::changed(false)
                .with(
                    "before",
                    before
                        .clone()
                        .map_or(minijinja::Value::from(()), Into::into),
                )
                .with(
                    "after",
                    after.map_or(minijinja::Value::from(()), Into::into),
                )
        };
        let plan = plan(&p, &seen).map_err(|msg| result(None).fail(msg))?;
        let changed = plan.changes(before.as_deref());
        let remote_url_changed =
            matches!(plan, Plan::Update { set_url: true, .. }) && seen.remote_url.is_some();
        let planned_after = match &plan {
            Plan::Report { after } => after.clone(),
            Plan::Clone { after, .. } | Plan::Update { after, .. } => Some(after.clone()),
        };
        let with_url = |r: ModuleResult| {
            if seen.exists {
                r.with("remote_url_changed", remote_url_changed)
            } else {
                r
            }
        };
        let command = match apply_command(&p, &plan) {
            Some(command) if changed && !ctx.check_mode => command,
            _ => {
                let mut r = with_url(result(planned_after));
                r.changed = changed;
                return Ok(r);
            }
        };
        let out = ctx.run(&command, None).await?;
        let after = out
            .stdout_text()
            .lines()
            .find_map(|l| l.strip_prefix("after:").map(|s| s.trim().to_string()));
        if out.rc != 0 {
            let what = match &plan {
                Plan::Clone { .. } => format!("Failed to clone {}", p.repo),
                _ => format!("Failed to update {} to {}", p.dest, p.version),
            };
            return Err(with_url(result(after))
                .with("rc", out.rc)
                .with("stdout", out.stdout_text())
                .with("stderr", out.stderr_text())
                .fail(format!("{what}: {}", out.stderr_text().trim())));
        }
        let mut r = with_url(result(after.clone()));
        r.changed = remote_url_changed
            || matches!(plan, Plan::Clone { .. } | Plan::Update { reset: true, .. })
            || after != before;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS_REMOTE: &str = "ref:ref: refs/heads/main\tHEAD\n\
        ref:1111111111111111111111111111111111111111\tHEAD\n\
        ref:1111111111111111111111111111111111111111\trefs/heads/main\n\
        ref:2222222222222222222222222222222222222222\trefs/heads/dev\n\
        ref:3333333333333333333333333333333333333333\trefs/tags/v1\n\
        ref:4444444444444444444444444444444444444444\trefs/tags/v1^{}\n\
        ref:5555555555555555555555555555555555555555\trefs/tags/light\n";

    fn params() -> Params {
        Params {
            repo: "file:///srv/repo.git".into(),
            dest: "/srv/app".into(),
            version: "HEAD".into(),
            remote: "origin".into(),
            force: false,
            depth: None,
            clone: true,
            update: true,
            bare: false,
            single_branch: false,
            ssh_command: "ssh -o BatchMode=yes".into(),
        }
    }

    #[test]
    fn versions_resolve_through_the_remote_refs() {
        let seen = parse(LS_REMOTE);
        assert_eq!(seen.head_branch.as_deref(), Some("main"));
        let sha = |c: char| c.to_string().repeat(40);
        assert_eq!(
            seen.resolve("HEAD"),
            Ok((Version::Head("main".into()), sha('1')))
        );
        assert_eq!(
            seen.resolve("dev"),
            Ok((Version::Branch("dev".into()), sha('2')))
        );
        // An annotated tag resolves to the commit it points at.
        assert_eq!(
            seen.resolve("v1"),
            Ok((Version::Tag("v1".into()), sha('4')))
        );
        assert_eq!(
            seen.resolve("light"),
            Ok((Version::Tag("light".into()), sha('5')))
        );
        assert_eq!(
            seen.resolve("abc1234"),
            Ok((Version::Commit("abc1234".into()), "abc1234".into()))
        );
    }

    #[test]
    fn a_missing_copy_is_cloned_and_a_current_one_left_alone() {
        let p = params();
        let plan_new = plan(&p, &parse(LS_REMOTE)).unwrap();
        assert!(matches!(plan_new, Plan::Clone { .. }));
        assert!(plan_new.changes(None));

        let current = format!(
            "exists\nbefore:{}\nurl:file:///srv/repo.git\n{LS_REMOTE}",
            "1".repeat(40)
        );
        let seen = parse(&current);
        let plan_current = plan(&p, &seen).unwrap();
        assert!(!plan_current.changes(seen.before.as_deref()));

        let behind = current.replace(&format!("before:{}", "1".repeat(40)), "before:0000000");
        let seen = parse(&behind);
        assert!(plan(&p, &seen).unwrap().changes(seen.before.as_deref()));
    }

    #[test]
    fn local_changes_need_force_and_a_new_url_is_set() {
        let text = format!(
            "exists\nbefore:{}\nurl:https://old/repo\nmods\n{LS_REMOTE}",
            "1".repeat(40)
        );
        let seen = parse(&text);
        let err = plan(&params(), &seen).unwrap_err();
        assert_eq!(
            err,
            "Local modifications exist in the destination: /srv/app (force=no)."
        );
        let forced = Params {
            force: true,
            ..params()
        };
        let p = plan(&forced, &seen).unwrap();
        assert!(matches!(
            p,
            Plan::Update {
                reset: true,
                set_url: true,
                ..
            }
        ));
        assert!(p.changes(seen.before.as_deref()));
    }

    #[test]
    fn missing_git_fails_with_ansibles_message() {
        let seen = parse("nogit:/usr/bin:/bin\n");
        assert_eq!(
            plan(&params(), &seen).unwrap_err(),
            "Failed to find required executable \"git\" in paths: /usr/bin:/bin"
        );
    }

    #[test]
    fn update_no_reports_the_current_commit() {
        let p = Params {
            update: false,
            ..params()
        };
        let seen = parse("exists\nbefore:abcdef0123\n");
        assert_eq!(
            plan(&p, &seen),
            Ok(Plan::Report {
                after: Some("abcdef0123".into())
            })
        );
    }

    #[test]
    fn ssh_options_follow_ansibles_order() {
        assert_eq!(
            ssh_command(None, true, false, Some("/k/id")),
            "ssh -o StrictHostKeyChecking=no -o BatchMode=yes -i /k/id -o IdentitiesOnly=yes"
        );
        assert_eq!(
            ssh_command(Some("-p 2222"), false, true, None),
            "ssh -p 2222 -o StrictHostKeyChecking=accept-new -o BatchMode=yes"
        );
    }
}
