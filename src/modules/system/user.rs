//! `user`: local accounts through useradd/usermod/userdel, plus an SSH key pair on request.
//!
//! Plan: one command reads the passwd entry, shadow hash and group memberships; apply runs
//! one useradd, usermod or userdel with exactly the options that differ.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct User;

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
}

/// Parses the probe: the passwd line, then `pw:`, `pgroup:`, `groups:` lines.
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

#[derive(Debug, Default)]
struct Wanted {
    uid: Option<i64>,
    group: Option<String>,
    groups: Option<Vec<String>>,
    append: bool,
    shell: Option<String>,
    home: Option<String>,
    move_home: bool,
    comment: Option<String>,
    password: Option<String>,
    update_password_always: bool,
    password_lock: Option<bool>,
    expires: Option<String>,
    non_unique: bool,
}

/// usermod options for what differs (pure).
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

/// The password hash to set on an existing account, if it differs (set through `chpasswd -e`
/// on stdin: a hash in useradd's or usermod's argv is visible to every user in `ps`).
fn password_change<'a>(wanted: &'a Wanted, account: &Account) -> Option<&'a str> {
    let password = wanted.password.as_deref()?;
    let current = account
        .password
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('!');
    (wanted.update_password_always && password != current).then_some(password)
}

#[async_trait]
impl Module for User {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name", "user"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let groups = match args.raw("groups") {
            None => None,
            Some(_) => Some(args.list(&["groups"])?),
        };
        let expires = match args.raw("expires") {
            None => None,
            // Ansible takes epoch seconds; usermod takes a date (-1 clears it).
            Some(v) => {
                let seconds = v
                    .as_i64()
                    .or_else(|| v.to_string().parse::<f64>().ok().map(|f| f as i64));
                match seconds {
                    Some(s) if s < 0 => Some(String::new()),
                    Some(s) => Some(format!("{}", s / 86400)),
                    None => {
                        return Err(ModuleError::Args(format!(
                            "user: option 'expires' must be epoch seconds, got '{v}'"
                        )))
                    }
                }
            }
        };
        let wanted = Wanted {
            uid: args.int("uid")?,
            group: args.str(&["group"])?,
            groups,
            append: args.bool("append", false)?,
            shell: args.str(&["shell"])?,
            home: args.str(&["home"])?,
            move_home: args.bool("move_home", false)?,
            comment: args.str(&["comment"])?,
            password: args.str(&["password"])?,
            update_password_always: args.choice(
                "update_password",
                &["always", "on_create"],
                "always",
            )? == "always",
            password_lock: match args.raw("password_lock") {
                None => None,
                Some(v) => crate::modules::args::parse_bool(&v),
            },
            expires,
            non_unique: args.bool("non_unique", false)?,
        };
        let create_home = args.bool("create_home", true)? && args.bool("createhome", true)?;
        let system = args.bool("system", false)?;
        let remove = args.bool("remove", false)?;
        let force = args.bool("force", false)?;
        let skeleton = args.str(&["skeleton"])?;
        let generate_ssh_key = args.bool("generate_ssh_key", false)?;
        let ssh_key_type = args.str(&["ssh_key_type"])?.unwrap_or_else(|| "rsa".into());
        let ssh_key_bits = args.int("ssh_key_bits")?;
        let ssh_key_file = args.str(&["ssh_key_file"])?;
        let ssh_key_comment = args.str(&["ssh_key_comment"])?;
        let ssh_key_passphrase = args.str(&["ssh_key_passphrase"])?;
        let _ = args.raw_any(&[
            "local",
            "seuser",
            "hidden",
            "login_class",
            "profile",
            "role",
            "authorization",
            "umask",
            "password_expire_max",
            "password_expire_min",
            "password_expire_warn",
            "uid_min",
            "uid_max",
        ]);
        args.finish()?;

        let q = quote(&name);
        let probe = format!(
            "getent passwd {q}; echo \"shadow:$(getent shadow {q} 2>/dev/null)\"; echo \"pgroup:$(id -gn {q} 2>/dev/null)\"; echo \"groups:$(id -Gn {q} 2>/dev/null)\"; getent group {q} >/dev/null && echo samegroup; true"
        );
        let text = ctx.run(&probe, None).await?.stdout_text();
        let account = parse_account(&text, &name);
        let same_name_group = text.lines().any(|l| l == "samegroup");

        let mut command: Option<String> = None;
        // A password hash travels on the command's stdin, never in an argv.
        let mut secret_input: Option<String> = None;
        if state == "absent" {
            if account.exists {
                let mut cmd = String::from("userdel");
                if remove {
                    cmd.push_str(" -r");
                }
                if force {
                    cmd.push_str(" -f");
                }
                command = Some(format!("{cmd} {q}"));
            }
        } else if !account.exists {
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
                None if same_name_group => opts.push(format!("-g {q}")),
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
            if system {
                opts.push("-r".into());
            }
            if create_home {
                opts.push("-m".into());
                if let Some(skel) = &skeleton {
                    opts.push(format!("-k {}", quote(skel)));
                }
            } else {
                opts.push("-M".into());
            }
            let mut cmd = format!("useradd {} {q}", opts.join(" "));
            if let Some(password) = &wanted.password {
                cmd.push_str(&format!(" && chpasswd -e && {FORGET_STDIN}"));
                secret_input = Some(format!("{name}:{password}\n"));
            }
            if wanted.password_lock == Some(true) {
                cmd.push_str(&format!(" && usermod -L {q}"));
            }
            command = Some(cmd);
        } else {
            let opts = modifications(&wanted, &account);
            let mut steps = Vec::new();
            // The hash first: a lock (`-L`) in the same run applies to the new hash.
            if let Some(password) = password_change(&wanted, &account) {
                steps.push(format!("chpasswd -e && {FORGET_STDIN}"));
                secret_input = Some(format!("{name}:{password}\n"));
            }
            if !opts.is_empty() {
                steps.push(format!("usermod {} {q}", opts.join(" ")));
            }
            if !steps.is_empty() {
                command = Some(steps.join(" && "));
            }
        }

        let mut result = ModuleResult::changed(command.is_some());
        if let Some(cmd) = &command {
            if !ctx.check_mode {
                let out = ctx.run(cmd, secret_input.map(String::into_bytes)).await?;
                if out.rc != 0 {
                    return Err(ModuleResult::default()
                        .with("name", name.as_str())
                        .fail(format!(
                            "user {name}: `{}` failed (rc={}): {}",
                            cmd.split_whitespace().next().unwrap_or("useradd"),
                            out.rc,
                            out.stderr_text().trim()
                        )));
                }
            }
        }
        result = result
            .with("name", name.as_str())
            .with("state", state.as_str());
        if state == "absent" {
            return Ok(result.with("force", force).with("remove", remove));
        }
        // Report the account as it is now (as it would be, in check mode).
        let now = if command.is_some() && !ctx.check_mode {
            parse_account(&ctx.run(&probe, None).await?.stdout_text(), &name)
        } else {
            account
        };
        result = result
            .with("uid", now.uid)
            .with("group", now.gid)
            .with("groups", now.groups.join(","))
            .with(
                "home",
                if now.home.is_empty() {
                    wanted
                        .home
                        .clone()
                        .unwrap_or_else(|| format!("/home/{name}"))
                } else {
                    now.home.clone()
                },
            )
            .with("shell", now.shell.as_str())
            .with("comment", now.comment.as_str())
            .with("system", system)
            .with("create_home", create_home);
        if generate_ssh_key {
            let home = if now.home.is_empty() {
                format!("/home/{name}")
            } else {
                now.home.clone()
            };
            let file = match ssh_key_file {
                Some(f) if f.starts_with('/') => f,
                Some(f) => format!("{home}/{f}"),
                None => format!("{home}/.ssh/id_{ssh_key_type}"),
            };
            let f = quote(&file);
            let dir = quote(&crate::modules::files::write::parent_dir(&file));
            let found = ctx
                .run(
                    &format!("if [ -L {dir} ] || [ -L {f} ] || [ -L {f}.pub ]; then echo link; elif [ -f {f} ]; then echo yes; fi"),
                    None,
                )
                .await?
                .stdout_text();
            if found.trim() == "link" {
                // ssh-keygen and chown would follow a link the user planted.
                return Err(ModuleError::Failed(format!(
                    "user {name}: {file}, its .pub or its directory is a symbolic link; refusing to write the key through it"
                )));
            }
            let exists = found.contains("yes");
            if !exists {
                result.changed = true;
                if !ctx.check_mode {
                    let comment = ssh_key_comment
                        .unwrap_or_else(|| format!("ansible-generated on {}", ctx.host));
                    let bits = ssh_key_bits
                        .filter(|b| *b > 0)
                        .map(|b| format!(" -b {b}"))
                        .unwrap_or_default();
                    let keygen = format!(
                        "ssh-keygen -q -t {}{bits} -C {} -f {f}",
                        quote(&ssh_key_type),
                        quote(&comment)
                    );
                    let (keygen, input) = match &ssh_key_passphrase {
                        Some(passphrase) if !passphrase.is_empty() => (
                            with_passphrase(&keygen),
                            Some(passphrase.clone().into_bytes()),
                        ),
                        _ => (format!("{keygen} -N ''"), None),
                    };
                    ctx.run_ok(
                        &format!(
                            "{{ [ -e {dir} ] || {{ mkdir -p {dir} && chmod 700 {dir} && chown -h {q}: {dir}; }}; }} && {keygen} && chown -h {q}: {f} {f}.pub"
                        ),
                        input,
                        "ssh-keygen",
                    )
                    .await?;
                }
            }
            if !ctx.check_mode || exists {
                let out = ctx
                    .run(&format!("cat {f}.pub; ssh-keygen -lf {f}.pub"), None)
                    .await?
                    .stdout_text();
                let mut lines = out.lines();
                result = result
                    .with(
                        "ssh_public_key",
                        lines.next().unwrap_or_default().to_string(),
                    )
                    .with(
                        "ssh_fingerprint",
                        lines.next().unwrap_or_default().to_string(),
                    );
            }
            result = result.with("ssh_key_file", file);
        }
        Ok(result)
    }
}

/// Empties the file the command's stdin came from (the session keeps it until the next
/// command with stdin): a secret read from it does not stay behind on the target.
const FORGET_STDIN: &str = "{ true >/dev/stdin || true; } 2>/dev/null";

/// Runs `keygen` with the passphrase from stdin: it goes into a file in a private directory
/// (0700, unpredictable name) that an askpass helper prints for ssh-keygen, so it never
/// appears in an argv; the directory is removed whatever happens.
fn with_passphrase(keygen: &str) -> String {
    format!(
        "k_d=$(umask 077 && mktemp -d) && {{ (umask 077 && cat >\"$k_d/p\" && {FORGET_STDIN} && \
         printf '#!/bin/sh\\nexec cat \"%s/p\"\\n' \"$k_d\" >\"$k_d/a\" && chmod 700 \"$k_d/a\" && \
         SSH_ASKPASS=\"$k_d/a\" SSH_ASKPASS_REQUIRE=force DISPLAY=${{DISPLAY:-kiln:0}} \
         {keygen} </dev/null); k_rc=$?; rm -rf -- \"$k_d\"; [ $k_rc = 0 ]; }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> Account {
        parse_account(
            "deploy:x:1001:1001:Deploy:/home/deploy:/bin/sh\nshadow:deploy:!:19000:0:99999:7::20000:\npgroup:deploy\ngroups:deploy adm\n",
            "deploy",
        )
    }

    #[test]
    fn reads_the_account() {
        let a = deploy();
        assert!(a.exists);
        assert_eq!(
            (a.uid, a.home.as_str(), a.shell.as_str()),
            (1001, "/home/deploy", "/bin/sh")
        );
        assert_eq!(a.groups, vec!["deploy", "adm"]);
        assert_eq!(a.expires, "20000");
        assert!(!parse_account("shadow:\npgroup:\ngroups:\n", "x").exists);
    }

    #[test]
    fn only_differences_become_options() {
        let a = deploy();
        let same = Wanted {
            shell: Some("/bin/sh".into()),
            groups: Some(vec!["adm".into()]),
            update_password_always: true,
            ..Default::default()
        };
        assert!(modifications(&same, &a).is_empty());
        let more = Wanted {
            groups: Some(vec!["sudo".into()]),
            append: true,
            shell: Some("/bin/bash".into()),
            ..Default::default()
        };
        assert_eq!(
            modifications(&more, &a),
            vec!["-a", "-G sudo", "-s /bin/bash"]
        );
        let exact = Wanted {
            groups: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(modifications(&exact, &a), vec!["-G ''"]);
        let expiry = |days: &str| Wanted {
            expires: Some(days.into()),
            ..Default::default()
        };
        assert!(modifications(&expiry("20000"), &a).is_empty());
        assert_eq!(modifications(&expiry(""), &a), vec!["-e ''"]);
    }
}
