//! `user`: local accounts through useradd/usermod/userdel, plus an SSH key pair on request.
//!
//! One command reads the passwd entry, shadow hash and group memberships; the pure plan
//! (`plan.rs`) gives one useradd, usermod or userdel with exactly the options that differ,
//! which `run` reports in check mode or applies.

pub mod plan;

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{paths, Args, Module, ModuleCtx, ModuleError, ModuleResult};
use plan::{
    key_file, parse_account, render, Account, SshKey, State, UpdatePassword, Wanted, FORGET_STDIN,
};

pub struct User;

/// Checks and types the module's arguments.
pub fn parse(mut args: Args) -> Result<Wanted, ModuleError> {
    let name = args.required_str(&["name", "user"])?;
    let state = match args
        .choice("state", &["present", "absent"], "present")?
        .as_str()
    {
        "absent" => State::Absent,
        _ => State::Present,
    };
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
    let update_password = match args
        .choice("update_password", &["always", "on_create"], "always")?
        .as_str()
    {
        "on_create" => UpdatePassword::OnCreate,
        _ => UpdatePassword::Always,
    };
    let mut wanted = Wanted {
        name,
        state,
        uid: args.int("uid")?,
        group: args.str(&["group"])?,
        groups,
        append: args.bool("append", false)?,
        shell: args.str(&["shell"])?,
        home: args.str(&["home"])?,
        move_home: args.bool("move_home", false)?,
        comment: args.str(&["comment"])?,
        password: args.str(&["password"])?,
        update_password,
        password_lock: match args.raw("password_lock") {
            None => None,
            Some(v) => crate::modules::args::parse_bool(&v),
        },
        expires,
        non_unique: args.bool("non_unique", false)?,
        ..Wanted::default()
    };
    wanted.create_home = args.bool("create_home", true)? && args.bool("createhome", true)?;
    wanted.system = args.bool("system", false)?;
    wanted.remove = args.bool("remove", false)?;
    wanted.force = args.bool("force", false)?;
    wanted.skeleton = args.str(&["skeleton"])?;
    let generate_ssh_key = args.bool("generate_ssh_key", false)?;
    let ssh_key = SshKey {
        key_type: args.str(&["ssh_key_type"])?.unwrap_or_else(|| "rsa".into()),
        bits: args.int("ssh_key_bits")?,
        file: args.str(&["ssh_key_file"])?,
        comment: args.str(&["ssh_key_comment"])?,
        passphrase: args.str(&["ssh_key_passphrase"])?,
    };
    wanted.ssh_key = generate_ssh_key.then_some(ssh_key);
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
    Ok(wanted)
}

/// One command: the passwd line, the shadow line, the groups, and whether a group of the
/// account's name exists.
fn probe(name: &str) -> String {
    let q = quote(name);
    format!(
        "getent passwd {q}; echo \"shadow:$(getent shadow {q} 2>/dev/null)\"; echo \"pgroup:$(id -gn {q} 2>/dev/null)\"; echo \"groups:$(id -Gn {q} 2>/dev/null)\"; getent group {q} >/dev/null && echo samegroup; true"
    )
}

#[async_trait]
impl Module for User {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        let mut wanted = parse(args)?;
        // `home` is a path and `shell` reaches useradd through Ansible's run_command, which
        // expands both on the target.
        for path in [&mut wanted.home, &mut wanted.shell] {
            if let Some(value) = path.take() {
                *path = Some(paths::on_target(ctx, value).await?);
            }
        }
        let name = wanted.name.as_str();
        let probe = probe(name);
        let account = parse_account(&ctx.run(&probe, None).await?.stdout_text(), name);
        let planned = render(&plan::plan(&wanted, &account), name);

        // Check mode is decided here, once: report the plan, or apply it.
        if let (Some((command, input)), false) = (&planned, ctx.check_mode) {
            let out = ctx
                .run(command, input.clone().map(String::into_bytes))
                .await?;
            if out.rc != 0 {
                return Err(ModuleResult::default().with("name", name).fail(format!(
                    "user {name}: `{}` failed (rc={}): {}",
                    command.split_whitespace().next().unwrap_or("useradd"),
                    out.rc,
                    out.stderr_text().trim()
                )));
            }
        }
        let mut result = ModuleResult::changed(planned.is_some())
            .with("name", name)
            .with("state", wanted.state.as_str());
        if let Some(warning) = wanted
            .password
            .as_deref()
            .and_then(plan::unhashed_password_warning)
        {
            result = result.with("warnings", vec![warning]);
        }
        if wanted.state == State::Absent {
            return Ok(result
                .with("force", wanted.force)
                .with("remove", wanted.remove));
        }
        // Report the account as it is now (as it would be, in check mode).
        let now = if planned.is_some() && !ctx.check_mode {
            parse_account(&ctx.run(&probe, None).await?.stdout_text(), name)
        } else {
            account
        };
        let result = result
            .with("uid", now.uid)
            .with("group", now.gid)
            .with("groups", now.groups.join(","))
            .with("home", plan::home(&wanted, &now))
            .with("shell", now.shell.as_str())
            .with("comment", now.comment.as_str())
            .with("system", wanted.system)
            .with("create_home", wanted.create_home);
        match &wanted.ssh_key {
            Some(key) => ssh_key(ctx, name, key, &now, result).await,
            None => Ok(result),
        }
    }
}

/// Generates the key pair unless its file exists, and reports the public key.
async fn ssh_key(
    ctx: &ModuleCtx<'_>,
    name: &str,
    key: &SshKey,
    now: &Account,
    mut result: ModuleResult,
) -> Result<ModuleResult, ModuleError> {
    let q = quote(name);
    let file = key_file(key, name, now);
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
            let comment = key
                .comment
                .clone()
                .unwrap_or_else(|| format!("ansible-generated on {}", ctx.host));
            let bits = key
                .bits
                .filter(|b| *b > 0)
                .map(|b| format!(" -b {b}"))
                .unwrap_or_default();
            let keygen = format!(
                "ssh-keygen -q -t {}{bits} -C {} -f {f}",
                quote(&key.key_type),
                quote(&comment)
            );
            let (keygen, input) = match &key.passphrase {
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
    Ok(result.with("ssh_key_file", file))
}

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
