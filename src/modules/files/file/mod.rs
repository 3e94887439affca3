//! `file`: a path's existence, kind (file, directory, link, hard link, touch) and attributes.
//!
//! Parse the arguments, observe the path, plan (pure, see `plan`), then apply the plan unless
//! in check mode.

pub mod plan;
pub mod stamp;

use async_trait::async_trait;
use minijinja::Value;

use super::path_info::add_path_info;
use super::write::{probe, split_stat_line, then_stat, Attributes};
use crate::connection::quote;
use crate::modules::util::{if_exists, octal, parse_probe, present_state_command, PathState};
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};
use plan::{missing_src, plan, FileArgs, FilePlan, FileState, Observed};

pub struct File;

#[async_trait]
impl Module for File {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        let args = parse(ctx, args).await?;
        // With an explicit state that creates something, one command creates the path when it
        // is absent (the plan for an absent path, sent ahead) and reports its state otherwise.
        // A link without `force` must have a source: that is looked at first.
        let checks_src = args.state == Some(FileState::Link) && !args.force;
        let current = if args.creates() && !ctx.check_mode && !ctx.diff && !checks_src {
            let ahead = plan(&args, &Observed::default())?;
            match create_if_absent(ctx, &args, &ahead).await? {
                Probed::Exists(state) => state,
                Probed::Created(after) => {
                    let mut result = report(&args, &ahead, true);
                    add_path_info(&mut result, &after);
                    return Ok(result);
                }
            }
        } else {
            probe(ctx, &args.path, None).await?.0
        };
        let observed = observe(ctx, &args, current).await?;
        let plan = plan(&args, &observed)?;
        let changed = !plan.steps.is_empty();
        let mut result = report(&args, &plan, changed);
        if ctx.diff && changed {
            result.diffs.push(Diff {
                before_header: args.path.clone(),
                after_header: args.path.clone(),
                before: format!("{}\n", describe(&observed.path)),
                after: format!("state: {}\n", plan.state.as_str()),
            });
            result = result.with("diff", registered_diff(&args, &observed.path, plan.state));
        }
        let removes = plan.state == FileState::Absent;
        let mut after = observed.path.clone();
        if changed && !ctx.check_mode {
            let mut script = plan.script(&args.path);
            if !removes {
                script = then_stat(&script, &args.path);
            }
            let out = ctx
                .run_ok_inline(&script, None, &format!("file {}", args.path))
                .await?;
            if !removes {
                after = parse_probe(split_stat_line(&out.stdout_text()).1);
            }
        }
        if !removes {
            add_path_info(&mut result, &after);
        }
        Ok(result)
    }
}

async fn parse(ctx: &ModuleCtx<'_>, mut args: Args) -> Result<FileArgs, ModuleError> {
    let path = args.required_path(ctx, &["path", "dest", "name"]).await?;
    let state = args
        .str(&["state"])?
        .as_deref()
        .map(FileState::parse)
        .transpose()?;
    let src = args.path(ctx, &["src"]).await?;
    let recurse = args.bool("recurse", false)?;
    let force = args.bool("force", false)?;
    let attrs = Attributes::from_args(&mut args)?;
    let time = |args: &mut Args, key: &str| -> Result<_, ModuleError> {
        let format = args
            .str(&[&format!("{key}_format")])?
            .unwrap_or_else(|| stamp::DEFAULT_FORMAT.into());
        Ok((args.str(&[key])?, format))
    };
    let given_times = [
        time(&mut args, "modification_time")?,
        time(&mut args, "access_time")?,
    ];
    let _ = args.raw_any(&["follow"]);
    args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
    args.finish()?;
    if let Some(state @ (FileState::Link | FileState::Hard)) = state {
        if src.is_none() {
            return Err(missing_src(state));
        }
    }
    let [mtime, atime] = stamp::stamps(ctx, given_times).await?;
    Ok(FileArgs {
        path,
        state,
        src,
        recurse,
        force,
        attrs,
        mtime,
        atime,
    })
}

const CREATED: &str = "__kiln_created__";

/// What `create_if_absent` found.
enum Probed {
    /// The path was absent and is now created: its state afterwards.
    Created(PathState),
    /// The path exists: its state.
    Exists(PathState),
}

/// Runs the plan for an absent path if the path is absent; otherwise returns the path's
/// state.
async fn create_if_absent(
    ctx: &ModuleCtx<'_>,
    args: &FileArgs,
    ahead: &FilePlan,
) -> Result<Probed, ModuleError> {
    let path = &args.path;
    let script = if_exists(
        path,
        &present_state_command(path, false),
        &then_stat(&format!("{} && echo {CREATED}", ahead.script(path)), path),
    );
    let out = ctx
        .run_ok_inline(&script, None, &format!("file {path}"))
        .await?;
    let stdout = out.stdout_text();
    let (printed, stat_line) = split_stat_line(&stdout);
    if printed.trim_end().ends_with(CREATED) {
        return Ok(Probed::Created(parse_probe(stat_line)));
    }
    Ok(Probed::Exists(parse_probe(&stdout)))
}

/// Asks the target what the plan needs beyond the path's own state: whether an existing path
/// already is `src`'s hard link, and whether a tree to `recurse` into has other owners.
async fn observe(
    ctx: &ModuleCtx<'_>,
    args: &FileArgs,
    path: PathState,
) -> Result<Observed, ModuleError> {
    let q = quote(&args.path);
    let wanted = args.wanted(&path);
    let mut observed = Observed {
        path,
        ..Observed::default()
    };
    if wanted == FileState::Hard && observed.path.exists {
        if let Some(src) = &args.src {
            let test = format!("[ {q} -ef {} ]", quote(src));
            observed.same_file = ctx.run(&test, None).await?.rc == 0;
        }
    }
    // In check mode the source may be one an earlier task would have made: not looked at.
    if let (FileState::Link, false, false, Some(src)) =
        (wanted, args.force, ctx.check_mode, &args.src)
    {
        // Ansible resolves a relative source from the link's directory.
        let absrc = match src.starts_with('/') {
            true => src.clone(),
            false => {
                let dir = args.path.rsplit_once('/').map_or(".", |(d, _)| d);
                format!("{dir}/{src}")
            }
        };
        if ctx
            .run(&format!("[ -e {} ]", quote(&absrc)), None)
            .await?
            .rc
            != 0
        {
            observed.missing_src = Some(absrc);
        }
    }
    if wanted == FileState::Directory && observed.path.kind == "directory" && args.recurse {
        observed.tree_differs = tree_differs(ctx, &args.attrs, &q).await?;
    }
    Ok(observed)
}

/// `recurse: yes`: ownership is changed only when some path below differs, so a converged
/// tree reports ok. One command asks `find` for the first offender.
async fn tree_differs(
    ctx: &ModuleCtx<'_>,
    attrs: &Attributes,
    q: &str,
) -> Result<bool, ModuleError> {
    let mut tests = Vec::new();
    if let Some(owner) = &attrs.owner {
        tests.push(format!("! -user {}", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        tests.push(format!("! -group {}", quote(group)));
    }
    if tests.is_empty() {
        return Ok(false);
    }
    let command = format!("find {q} \\( {} \\) -print -quit", tests.join(" -o "));
    let out = ctx.run(&command, None).await?;
    Ok(!out.stdout.is_empty())
}

/// The module's result for a plan (`touch` always changes timestamps; Ansible reports it
/// changed).
fn report(args: &FileArgs, plan: &FilePlan, changed: bool) -> ModuleResult {
    let mut result = ModuleResult::changed(changed)
        .with("path", args.path.as_str())
        .with("state", plan.state.as_str());
    // A link's result names it `dest`, beside its `src`, as Ansible's does.
    if let (FileState::Link | FileState::Hard, Some(src)) = (plan.state, &args.src) {
        result = result
            .with("dest", args.path.as_str())
            .with("src", src.as_str());
    }
    // A removed path has no attributes left to report (Ansible returns only its state).
    if let (Some(mode), false) = (plan.mode, plan.state == FileState::Absent) {
        result.data.insert("mode".into(), octal(mode).into());
    }
    result
}

/// The diff Ansible's module registers: the path, and its state and link source where they
/// change, before and after.
fn registered_diff(args: &FileArgs, before: &PathState, state: FileState) -> Value {
    let path = Value::from(args.path.as_str());
    let mut old = vec![("path".to_string(), path.clone())];
    let mut new = vec![("path".to_string(), path)];
    let before_state = if before.exists {
        before.kind.as_str()
    } else {
        "absent"
    };
    if before_state != state.as_str() {
        old.push(("state".into(), Value::from(before_state)));
        new.push(("state".into(), Value::from(state.as_str())));
    }
    if let (FileState::Link, Some(src)) = (state, &args.src) {
        if before.link_target.as_deref() != Some(src.as_str()) {
            if let Some(target) = &before.link_target {
                old.push(("src".into(), Value::from(target.as_str())));
            }
            new.push(("src".into(), Value::from(src.as_str())));
        }
    }
    let map = |pairs: Vec<(String, Value)>| crate::template::map_value(pairs.into_iter().collect());
    crate::template::map_value(
        [
            ("before".to_string(), map(old)),
            ("after".to_string(), map(new)),
        ]
        .into_iter()
        .collect(),
    )
}

fn describe(state: &PathState) -> String {
    if state.exists {
        format!("state: {}", state.kind)
    } else {
        "state: absent".into()
    }
}
