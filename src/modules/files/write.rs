//! Converging a file's content and attributes, shared by copy, template and lineinfile.
//!
//! Plan: one command reads the destination's state, checksum (and content for `--diff`).
//! Apply: one command uploads the content on stdin to a temporary file beside the
//! destination, sets mode and owner, validates it, keeps a backup, and `mv`s it into place,
//! so an existing destination is never half-written (a new one is written in place, see
//! `write_script`).

use minijinja::Value;

use super::path_info::add_path_info;
use super::write_plan::{self, WriteAction};
use super::write_script::{
    compare_script, present_state_script, probe_script, write_script, CONTENT_MARKER, SAME,
};
use crate::connection::quote;
use crate::modules::util::{
    if_exists, octal, parse_probe, stat_command, wanted_mode, Mode, PathState,
};
use crate::modules::{Diff, ModuleCtx, ModuleError, ModuleResult};
use crate::util::sha1_hex;

/// Files larger than this are not shown in `--diff`.
const DIFF_LIMIT: u64 = 256 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attributes {
    pub fn from_args(args: &mut crate::modules::Args) -> Result<Self, ModuleError> {
        let mode = match args.raw("mode") {
            Some(v) => Some(
                crate::modules::util::parse_mode(&v)
                    .map_err(|e| ModuleError::Args(format!("{}: {e}", args.module())))?,
            ),
            None => None,
        };
        Ok(Self {
            mode,
            owner: args.str(&["owner"])?,
            group: args.str(&["group"])?,
        })
    }

    /// The mode this asks for, resolved against the current one (None: leave it as it is).
    pub fn wanted_mode(&self, current: Option<u32>, is_dir: bool) -> Option<u32> {
        self.mode
            .as_ref()
            .and_then(|m| wanted_mode(m, current, is_dir))
    }

    /// The attribute changes needed on an existing path (a link's own mode is left alone).
    pub fn differences(&self, state: &PathState) -> Vec<AttrChange> {
        let mut out = Vec::new();
        if let Some(owner) = &self.owner {
            if owner != &state.owner && owner != &state.uid.to_string() {
                out.push(AttrChange::Owner(owner.clone()));
            }
        }
        if let Some(group) = &self.group {
            if group != &state.group && group != &state.gid.to_string() {
                out.push(AttrChange::Group(group.clone()));
            }
        }
        if state.kind != "link" {
            if let Some(want) = self.wanted_mode(Some(state.mode), state.kind == "directory") {
                if want != state.mode {
                    out.push(AttrChange::Mode(want));
                }
            }
        }
        out
    }

    /// The owner and group this asks for, unconditionally (for a path just created).
    pub fn ownership(&self) -> Vec<AttrChange> {
        let owner = self.owner.clone().map(AttrChange::Owner);
        let group = self.group.clone().map(AttrChange::Group);
        owner.into_iter().chain(group).collect()
    }
}

/// One attribute to set on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrChange {
    Owner(String),
    Group(String),
    Mode(u32),
}

impl AttrChange {
    /// The command for the quoted path `q` (ownership of a link is the link's own; with
    /// `recursive`, of everything below too).
    pub fn command(&self, q: &str, recursive: bool) -> String {
        let r = if recursive { "-R " } else { "" };
        match self {
            AttrChange::Owner(owner) => format!("chown -h {r}{} {q}", quote(owner)),
            AttrChange::Group(group) => format!("chgrp -h {r}{} {q}", quote(group)),
            AttrChange::Mode(mode) => format!("chmod {} {q}", octal(*mode)),
        }
    }
}

pub struct WriteRequest {
    pub dest: String,
    pub content: Vec<u8>,
    pub attrs: Attributes,
    pub backup: bool,
    /// A command with `%s` for the temporary file, run before it replaces the destination.
    pub validate: Option<String>,
    /// Create the destination when absent (lineinfile's `create`); copy/template always do.
    pub force: bool,
    /// Ansible's `follow`: a link at `dest` is written through to the file it names. Without
    /// it the link itself is replaced by the new file; nothing is read or written through it.
    pub follow: bool,
}

impl WriteRequest {
    /// A whole configuration file a module owns: written through links, attributes left
    /// as they are, no backup or validation.
    pub fn config_file(dest: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Self {
            dest: dest.into(),
            content: content.into(),
            attrs: Attributes::default(),
            backup: false,
            validate: None,
            force: true,
            follow: true,
        }
    }
}

/// Splits `probe_script` output into the state and the content (None when it was not read
/// or is larger than `content_limit`).
fn parse_probe_output(text: &[u8], content_limit: Option<u64>) -> (PathState, Option<Vec<u8>>) {
    let marker = format!("{CONTENT_MARKER}\n");
    let split = text
        .windows(marker.len())
        .position(|w| w == marker.as_bytes());
    let (head, content) = match split {
        Some(at) => (&text[..at], Some(text[at + marker.len()..].to_vec())),
        None => (text, None),
    };
    let mut state = parse_probe(&String::from_utf8_lossy(head));
    let content = content.filter(|c| c.len() as u64 <= content_limit.unwrap_or(u64::MAX));
    if let Some(bytes) = &content {
        state.checksum = Some(sha1_hex(bytes));
    }
    (state, content)
}

/// Reads a path's state on the target (and its content up to `content_limit` bytes).
pub async fn probe(
    ctx: &ModuleCtx<'_>,
    path: &str,
    content_limit: Option<u64>,
) -> Result<(PathState, Option<Vec<u8>>), ModuleError> {
    let run = |script: String| async move {
        let out = ctx.run_inline(&script, None).await?;
        if out.rc != 0 {
            return Err(ModuleError::Failed(format!(
                "could not read the state of {path}: {}",
                out.stderr_text().trim()
            )));
        }
        Ok(out.stdout)
    };
    let (state, content) = parse_probe_output(
        &run(probe_script(path, content_limit)).await?,
        content_limit,
    );
    if state.kind == "file" && state.checksum.is_none() {
        // Too large to read back: ask for its checksum alone.
        let (state, _) = parse_probe_output(&run(probe_script(path, None)).await?, None);
        return Ok((state, None));
    }
    Ok((state, content))
}

/// Plans and (outside check mode) applies a file write.
/// A `validate` command must name the file it checks (`%s`), as Ansible requires.
fn check_validate(request: &WriteRequest) -> Result<(), ModuleError> {
    match &request.validate {
        Some(command) if !command.contains("%s") => Err(ModuleError::Failed(format!(
            "validate must contain %s: {command}"
        ))),
        _ => Ok(()),
    }
}

pub async fn converge(
    ctx: &ModuleCtx<'_>,
    request: WriteRequest,
) -> Result<ModuleResult, ModuleError> {
    converge_into(ctx, request, None).await
}

/// `converge`, writing `dest/<file_name>` instead when `dest` turns out to be a directory
/// (copy's and template's rule); the first round trip tells.
pub async fn converge_into(
    ctx: &ModuleCtx<'_>,
    mut request: WriteRequest,
    file_name: Option<&str>,
) -> Result<ModuleResult, ModuleError> {
    check_validate(&request)?;
    let (state, before) = if speculates(ctx, &request) {
        match create_if_absent(ctx, &request, None).await? {
            Speculation::Created(result) => return Ok(result),
            Speculation::Exists(state, _) => (state, None),
        }
    } else {
        probe(ctx, &request.dest, ctx.diff.then_some(DIFF_LIMIT)).await?
    };
    // A link to a directory counts as the directory, as Ansible's `os.path.isdir` has it.
    let into_directory = match state.kind.as_str() {
        "directory" => true,
        "link" if file_name.is_some() => {
            let test = format!("[ -d {} ]", quote(&request.dest));
            ctx.run_inline(&test, None).await?.rc == 0
        }
        _ => false,
    };
    if let (Some(name), true) = (file_name, into_directory) {
        request.dest = format!("{}/{name}", request.dest.trim_end_matches('/'));
        return Box::pin(converge_into(ctx, request, None)).await;
    }
    converge_from(ctx, request, state, before).await
}

/// The rest of `converge`, for a caller that already read the destination's state (and its
/// content, for `--diff`).
pub async fn converge_from(
    ctx: &ModuleCtx<'_>,
    mut request: WriteRequest,
    mut state: PathState,
    mut before: Option<Vec<u8>>,
) -> Result<ModuleResult, ModuleError> {
    check_validate(&request)?;
    if state.kind == "link" {
        if request.follow {
            request.dest = resolve_link(ctx, &request.dest).await?;
            (state, before) = probe(ctx, &request.dest, ctx.diff.then_some(DIFF_LIMIT)).await?;
        } else {
            // The link is replaced (Ansible's `follow: no`): what it points to is never read.
            before = None;
        }
    }
    let plan = write_plan::plan(&request, &state)?;
    let mut result = ModuleResult::changed(plan.changed())
        .with("dest", request.dest.as_str())
        .with("checksum", plan.checksum.as_str())
        .with("size", request.content.len() as i64);
    if ctx.diff && plan.writes_content() {
        result.diffs.push(Diff {
            before_header: request.dest.clone(),
            after_header: request.dest.clone(),
            before: before
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            after: String::from_utf8_lossy(&request.content).into_owned(),
        });
    }
    // A replaced link passes on none of its attributes.
    let kept = if state.kind == "link" {
        PathState::default()
    } else {
        state.clone()
    };
    if ctx.check_mode {
        // Nothing changed: the path's info is its current state's (as Ansible reports it).
        if state.exists {
            add_path_info(&mut result, &state);
            return Ok(result);
        }
        return Ok(with_final_attrs(result, &kept, &request.attrs));
    }
    let (mut result, after) = apply(ctx, &request, &state, &plan.action, result).await?;
    add_path_info(&mut result, &after);
    Ok(result)
}

/// Carries out a write plan's action (`result` gains the backup's path), and returns the
/// destination's state afterwards (read by the same command that changed it).
async fn apply(
    ctx: &ModuleCtx<'_>,
    request: &WriteRequest,
    state: &PathState,
    action: &WriteAction,
    mut result: ModuleResult,
) -> Result<(ModuleResult, PathState), ModuleError> {
    let after = match action {
        WriteAction::Nothing => state.clone(),
        WriteAction::Attributes(changes) => change_attributes(ctx, &request.dest, changes)
            .await?
            .unwrap_or_else(|| state.clone()),
        WriteAction::Content { backup } => {
            let (script, stdin) = write_script(request, state, *backup);
            let script = then_stat(&script, &request.dest);
            let out = run_write(ctx, request, &script, stdin).await?;
            if out.rc != 0 {
                return Err(write_failure(&request.dest, &out.stderr_text()));
            }
            let stdout = out.stdout_text();
            let (printed, stat_line) = split_stat_line(&stdout);
            if *backup {
                result = result.with("backup_file", printed.trim());
            }
            parse_probe(stat_line)
        }
    };
    Ok((result, after))
}

/// A script followed, when it succeeds, by the `stat` line of `path` (the path's info after
/// the change, at the cost of one process and no round trip).
pub(super) fn then_stat(script: &str, path: &str) -> String {
    format!("{{ {script}; }} && {}", stat_command(path))
}

/// Splits a `then_stat` script's output into what the script printed and the `stat` line.
pub(super) fn split_stat_line(stdout: &str) -> (&str, &str) {
    let trimmed = stdout.trim_end_matches('\n');
    match trimmed.rfind('\n') {
        Some(at) => (&trimmed[..at], &trimmed[at + 1..]),
        None => ("", trimmed),
    }
}

/// Runs a write script inline, or in a subshell when it carries the user's `validate`
/// command (which, like any user command, may `exit` or change the shell).
async fn run_write(
    ctx: &ModuleCtx<'_>,
    request: &WriteRequest,
    script: &str,
    stdin: Option<Vec<u8>>,
) -> Result<crate::connection::ExecOutput, ModuleError> {
    if request.validate.is_none() {
        ctx.run_inline(script, stdin).await
    } else {
        ctx.run(script, stdin).await
    }
}

fn write_failure(dest: &str, stderr: &str) -> ModuleError {
    ModuleError::Failed(if stderr.contains("kiln-validate-failed") {
        format!(
            "failed to validate: {}",
            stderr.replace("kiln-validate-failed", "").trim()
        )
    } else {
        format!("could not write {dest}: {}", stderr.trim())
    })
}

/// Content up to this size is sent along with the first command (see `create_if_absent`).
const SPECULATE_LIMIT: usize = 256 * 1024;
const CREATED: &str = "__kiln_created__";

pub enum Speculation {
    /// The path was absent and is now written: the result to report.
    Created(ModuleResult),
    /// The path exists: its state, and its content when a limit was given.
    Exists(PathState, Option<Vec<u8>>),
}

/// Whether a write may be tried speculatively (`create_if_absent`).
pub fn speculates(ctx: &ModuleCtx<'_>, request: &WriteRequest) -> bool {
    !ctx.check_mode && !ctx.diff && !request.backup && request.content.len() <= SPECULATE_LIMIT
}

/// One round trip for the common cases: if the destination is absent, write it (the plan for
/// an absent path); otherwise report its state (and content up to `content_limit` bytes) for
/// the normal plan.
pub async fn create_if_absent(
    ctx: &ModuleCtx<'_>,
    request: &WriteRequest,
    content_limit: Option<u64>,
) -> Result<Speculation, ModuleError> {
    let absent = PathState::default();
    let (write, stdin) = write_script(request, &absent, false);
    let compare = content_limit
        .is_none()
        .then(|| compare_script(&request.dest, &request.content))
        .flatten();
    let compared = compare.is_some();
    let present = compare.unwrap_or_else(|| present_state_script(&request.dest, content_limit));
    let created = then_stat(&format!("{{ {write}; }} && echo {CREATED}"), &request.dest);
    let script = if_exists(&request.dest, &present, &created);
    let out = run_write(ctx, request, &script, stdin).await?;
    if out.rc != 0 {
        return Err(write_failure(&request.dest, &out.stderr_text()));
    }
    let stdout = out.stdout_text();
    if let Some(stat_line) = stdout.strip_prefix(&format!("{CREATED}\n")) {
        let mut result = ModuleResult::changed(true)
            .with("dest", request.dest.as_str())
            .with("checksum", sha1_hex(&request.content))
            .with("size", request.content.len() as i64);
        add_path_info(&mut result, &parse_probe(stat_line));
        return Ok(Speculation::Created(result));
    }
    if compared {
        let mut state = parse_probe(&stdout);
        // Unknown (None) counts as different: the plan writes the file.
        state.checksum = stdout.contains(SAME).then(|| sha1_hex(&request.content));
        return Ok(Speculation::Exists(state, None));
    }
    let (state, content) = parse_probe_output(&out.stdout, content_limit);
    Ok(Speculation::Exists(state, content))
}

/// Converges only the attributes of an existing file whose content is right.
pub async fn converge_attributes(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    state: &PathState,
    attrs: &Attributes,
) -> Result<ModuleResult, ModuleError> {
    let changes = attrs.differences(state);
    let mut after = None;
    if !ctx.check_mode {
        after = change_attributes(ctx, dest, &changes).await?;
    }
    let mut result = ModuleResult::changed(!changes.is_empty()).with("dest", dest);
    if ctx.check_mode && !changes.is_empty() {
        return Ok(with_final_attrs(result, state, attrs));
    }
    add_path_info(&mut result, after.as_ref().unwrap_or(state));
    Ok(result)
}

/// Applies attribute changes; the path's state afterwards when there were any.
async fn change_attributes(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    changes: &[AttrChange],
) -> Result<Option<PathState>, ModuleError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let q = quote(dest);
    let commands: Vec<String> = changes.iter().map(|c| c.command(&q, false)).collect();
    let script = then_stat(&commands.join(" && "), dest);
    let out = ctx
        .run_ok_inline(&script, None, "changing attributes")
        .await?;
    Ok(Some(parse_probe(&out.stdout_text())))
}

/// The file's mode/owner/group after a write check mode only plans, as far as they are known
/// without asking (a new file's defaults come from the target's umask and user: left out).
fn with_final_attrs(
    mut result: ModuleResult,
    state: &PathState,
    attrs: &Attributes,
) -> ModuleResult {
    let current = state.exists.then_some(state.mode);
    if let Some(mode) = attrs.wanted_mode(current, false).or(current) {
        result.data.insert("mode".into(), Value::from(octal(mode)));
    }
    let known = |wanted: &Option<String>, current: &str| {
        wanted
            .clone()
            .or_else(|| state.exists.then(|| current.to_string()))
    };
    if let Some(owner) = known(&attrs.owner, &state.owner) {
        result.data.insert("owner".into(), Value::from(owner));
    }
    if let Some(group) = known(&attrs.group, &state.group) {
        result.data.insert("group".into(), Value::from(group));
    }
    result
}

/// The absolute path a link finally names (`readlink -f`; a missing last component is
/// allowed, as with Python's `realpath`).
pub async fn resolve_link(ctx: &ModuleCtx<'_>, path: &str) -> Result<String, ModuleError> {
    let out = ctx
        .run_ok_inline(
            &format!("readlink -f -- {}", quote(path)),
            None,
            &format!("resolving the link {path}"),
        )
        .await?;
    let real = out.stdout_text().trim_end_matches('\n').to_string();
    if !real.starts_with('/') {
        return Err(ModuleError::Failed(format!(
            "could not resolve the link {path}"
        )));
    }
    Ok(real)
}

pub fn parent_dir(path: &str) -> String {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_string(),
        None => ".".into(),
    }
}

/// Removes a file when it exists (in check mode only reports whether it would).
pub async fn remove_file(ctx: &ModuleCtx<'_>, path: &str) -> Result<ModuleResult, ModuleError> {
    let q = quote(path);
    let command = if ctx.check_mode {
        format!("if [ -e {q} ] || [ -L {q} ]; then echo removed; fi")
    } else {
        format!("if [ -e {q} ] || [ -L {q} ]; then rm -f -- {q} && echo removed; fi")
    };
    let out = ctx
        .run_ok(&command, None, &format!("removing {path}"))
        .await?;
    Ok(ModuleResult::changed(out.stdout_text().contains("removed")))
}
