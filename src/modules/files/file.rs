//! `file`: a path's existence, kind (file, directory, link, hard link, touch) and attributes.

use async_trait::async_trait;

use super::write::{probe, Attributes};
use crate::connection::quote;
use crate::modules::util::{
    if_exists, octal, parse_probe, present_state_command, wanted_mode, PathState,
};
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct File;

#[async_trait]
impl Module for File {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args.required_str(&["path", "dest", "name"])?;
        let state_arg = args.str(&["state"])?;
        let src = args.str(&["src"])?;
        let recurse = args.bool("recurse", false)?;
        let force = args.bool("force", false)?;
        let attrs = Attributes::from_args(&mut args)?;
        // `touch` keeps an existing file's timestamps (and so reports ok) only when both are
        // `preserve`, as in Ansible.
        let preserve_times = args.str(&["modification_time"])?.as_deref() == Some("preserve")
            && args.str(&["access_time"])?.as_deref() == Some("preserve");
        let _ = args.raw_any(&["follow", "modification_time_format", "access_time_format"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;

        // With an explicit state that creates something, one command creates the path when it
        // is absent (the plan for an absent path) and reports its state otherwise.
        let creatable = match state_arg.as_deref() {
            Some("directory" | "touch") => true,
            Some("link" | "hard") => src.is_some(),
            _ => false,
        };
        let current = if creatable && !ctx.check_mode && !ctx.diff {
            let wanted = state_arg.as_deref().unwrap_or_default();
            let q = quote(&path);
            let create = create_commands(wanted, &q, src.as_deref(), &attrs, recurse).join(" && ");
            let script = if_exists(
                &path,
                &present_state_command(&path, false),
                &format!("{create} && echo {CREATED}"),
            );
            let out = ctx
                .run_ok_inline(&script, None, &format!("file {path}"))
                .await?;
            if out.stdout_text().trim_end() == CREATED {
                let mut result = ModuleResult::changed(true)
                    .with("path", path.as_str())
                    .with("state", wanted);
                if let Some(m) = attrs
                    .mode
                    .as_ref()
                    .and_then(|m| wanted_mode(m, None, wanted == "directory"))
                {
                    result.data.insert("mode".into(), octal(m).into());
                }
                return Ok(result);
            }
            parse_probe(&out.stdout_text())
        } else {
            probe(ctx, &path, None).await?.0
        };
        // Ansible's default: keep the current kind, or `file` when absent.
        let wanted = match state_arg.as_deref() {
            Some(s) => s.to_string(),
            None if src.is_some() => "link".into(),
            None if current.exists && current.kind == "directory" => "directory".into(),
            None if current.exists => current.kind.clone(),
            None if recurse => "directory".into(),
            None => "file".into(),
        };
        let q = quote(&path);
        let mut commands: Vec<String> = Vec::new();
        let mut diff_before = describe(&current);
        match wanted.as_str() {
            "absent" => {
                if current.exists {
                    commands.push(format!("rm -rf -- {q}"));
                }
            }
            "directory" => {
                if !current.exists {
                    commands.extend(create_commands("directory", &q, None, &attrs, recurse));
                } else if current.kind != "directory" {
                    return Err(ModuleError::Failed(format!("{path} already exists as a {}", current.kind)));
                } else {
                    commands.extend(attrs.changes(&path, &current));
                    if recurse {
                        commands.extend(recursive_changes(ctx, &attrs, &q).await?);
                    }
                }
            }
            "file" => {
                if !current.exists {
                    return Err(ModuleError::Failed(format!("file ({path}) is absent, cannot continue (use state=touch to create it)")));
                }
                commands.extend(attrs.changes(&path, &current));
            }
            "touch" => {
                if !(current.exists && preserve_times) {
                    // A link's own times: touching through it would create whatever a
                    // dangling link names (say /etc/nologin), as root.
                    let own = if current.kind == "link" { "-h " } else { "" };
                    commands.push(format!("touch {own}-- {q}"));
                }
                if !current.exists {
                    commands = create_commands("touch", &q, None, &attrs, false);
                } else {
                    commands.extend(attrs.changes(&path, &current));
                }
            }
            "link" | "hard" => {
                let src = src.ok_or_else(|| ModuleError::Args(format!("file: src is required for creating a {wanted} (state={wanted})")))?;
                let flag = if wanted == "link" { "-s" } else { "" };
                let correct = if wanted == "link" {
                    current.kind == "link" && current.link_target.as_deref() == Some(src.as_str())
                } else {
                    current.exists && ctx.run(&format!("[ {q} -ef {} ]", quote(&src)), None).await?.rc == 0
                };
                if !correct {
                    if current.exists && current.kind != "link" && !force && wanted == "link" {
                        return Err(ModuleError::Failed(format!("refusing to convert from {} to symlink for {path} (use force: yes)", current.kind)));
                    }
                    commands.push(format!("ln {flag} -f -n -- {} {q}", quote(&src)));
                }
                if current.kind == "link" || !current.exists {
                    commands.extend(ownership(&attrs, &q, false));
                    if current.exists {
                        commands.retain(|c| !c.starts_with("chown") || attrs.owner.as_deref() != Some(current.owner.as_str()));
                    }
                } else {
                    commands.extend(attrs.changes(&path, &current));
                }
            }
            other => {
                return Err(ModuleError::Args(format!(
                    "file: value of state must be one of: absent, directory, file, hard, link, touch, got: {other}"
                )))
            }
        }
        // `touch` always changes timestamps; Ansible reports it changed.
        let changed = !commands.is_empty();
        let mut result = ModuleResult::changed(changed)
            .with("path", path.as_str())
            .with("state", wanted.as_str());
        if ctx.diff && changed {
            diff_before.push('\n');
            result.diffs.push(Diff {
                before_header: path.clone(),
                after_header: path.clone(),
                before: diff_before,
                after: format!("state: {wanted}\n"),
            });
        }
        if changed && !ctx.check_mode {
            ctx.run_ok_inline(&commands.join(" && "), None, &format!("file {path}"))
                .await?;
        }
        if let Some(m) = attrs.mode.as_ref().and_then(|m| {
            wanted_mode(
                m,
                current.exists.then_some(current.mode),
                wanted == "directory",
            )
        }) {
            result.data.insert("mode".into(), octal(m).into());
        } else if current.exists {
            result
                .data
                .insert("mode".into(), octal(current.mode).into());
        }
        Ok(result)
    }
}

const CREATED: &str = "__kiln_created__";

/// The commands that create `wanted` at an absent path.
fn create_commands(
    wanted: &str,
    q: &str,
    src: Option<&str>,
    attrs: &Attributes,
    recurse: bool,
) -> Vec<String> {
    let is_dir = wanted == "directory";
    let mut commands = match (wanted, src) {
        // `install -d` creates the directory (and parents) with its mode in one process.
        ("directory", _) => {
            let mode = attrs.mode.as_ref().and_then(|m| wanted_mode(m, None, true));
            let mut create = match mode {
                Some(m) => format!("install -d -m {}", octal(m)),
                None => "mkdir -p".to_string(),
            };
            create.push_str(&format!(" -- {q}"));
            let mut commands = vec![create];
            commands.extend(ownership(attrs, q, recurse));
            return commands;
        }
        ("touch", _) => vec![format!("touch -- {q}")],
        ("link", Some(src)) => vec![format!("ln -s -f -n -- {} {q}", quote(src))],
        ("hard", Some(src)) => vec![format!("ln -f -n -- {} {q}", quote(src))],
        _ => return vec![],
    };
    if !matches!(wanted, "link" | "hard") {
        if let Some(m) = attrs
            .mode
            .as_ref()
            .and_then(|m| wanted_mode(m, None, is_dir))
        {
            commands.push(format!("chmod {} {q}", octal(m)));
        }
    }
    commands.extend(ownership(attrs, q, recurse && is_dir));
    commands
}

fn describe(state: &PathState) -> String {
    if state.exists {
        format!("state: {}", state.kind)
    } else {
        "state: absent".into()
    }
}

fn ownership(attrs: &Attributes, q: &str, recurse: bool) -> Vec<String> {
    let r = if recurse { "-R " } else { "" };
    let mut out = Vec::new();
    if let Some(owner) = &attrs.owner {
        out.push(format!("chown -h {r}{} {q}", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        out.push(format!("chgrp -h {r}{} {q}", quote(group)));
    }
    out
}

/// `recurse: yes`: ownership is changed only when some path below differs, so a converged
/// tree reports ok. One command asks `find` for the first offender.
async fn recursive_changes(
    ctx: &ModuleCtx<'_>,
    attrs: &Attributes,
    q: &str,
) -> Result<Vec<String>, ModuleError> {
    let mut tests = Vec::new();
    if let Some(owner) = &attrs.owner {
        tests.push(format!("! -user {}", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        tests.push(format!("! -group {}", quote(group)));
    }
    if tests.is_empty() {
        return Ok(vec![]);
    }
    let command = format!("find {q} \\( {} \\) -print -quit", tests.join(" -o "));
    let out = ctx.run(&command, None).await?;
    if out.stdout.is_empty() {
        return Ok(vec![]);
    }
    Ok(ownership(attrs, q, true))
}
