//! Converging a file's content and attributes, shared by copy, template and lineinfile.
//!
//! Plan: one command reads the destination's state, checksum (and content for `--diff`).
//! Apply: one command uploads the content on stdin to a temporary file beside the
//! destination, sets mode and owner, validates it, keeps a backup, and `mv`s it into place,
//! so an existing destination is never half-written (a new one is written in place, see
//! `write_script`).

use minijinja::Value;

use crate::connection::quote;
use crate::modules::util::{
    if_exists, octal, parse_probe, present_state_command, sha1_hex, stat_command, wanted_mode,
    Mode, PathState,
};
use crate::modules::{Diff, ModuleCtx, ModuleError, ModuleResult};

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

    /// The attribute changes needed on an existing path, as shell commands.
    pub fn changes(&self, path: &str, state: &PathState) -> Vec<String> {
        let mut out = Vec::new();
        let q = quote(path);
        if let Some(owner) = &self.owner {
            if owner != &state.owner && owner != &state.uid.to_string() {
                out.push(format!("chown -h {} {q}", quote(owner)));
            }
        }
        if let Some(group) = &self.group {
            if group != &state.group && group != &state.gid.to_string() {
                out.push(format!("chgrp -h {} {q}", quote(group)));
            }
        }
        if let Some(mode) = &self.mode {
            if state.kind != "link" {
                if let Some(want) = wanted_mode(mode, Some(state.mode), state.kind == "directory") {
                    if want != state.mode {
                        out.push(format!("chmod {} {q}", octal(want)));
                    }
                }
            }
        }
        out
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
}

/// The command that reports a path's state and either a regular file's checksum or, with a
/// `content_limit`, its content (the controller computes the checksum; one process less).
fn probe_script(path: &str, content_limit: Option<u64>) -> String {
    if_exists(
        path,
        &present_state_script(path, content_limit),
        "echo absent",
    )
}

/// What `probe_script` prints for a path that exists.
fn present_state_script(path: &str, content_limit: Option<u64>) -> String {
    match content_limit {
        None => present_state_command(path, true),
        Some(limit) => {
            let p = quote(path);
            // A small file is read by the shell (no `head` process) when that reads back all
            // its bytes (`read` drops NULs); one byte past the limit tells a file that is too
            // large from one that fits.
            format!(
                "{stat_size} && if [ -f {p} ] && [ ! -L {p} ]; then echo '{CONTENT_MARKER}'; \
                 k_t=; if [ \"$k_b\" -le {COMPARE_LIMIT} ]; then {read}; fi; \
                 if [ \"${{#k_t}}\" = \"$k_b\" ]; then printf '%s' \"$k_t\"; \
                 else head -c {limit} -- {p}; fi; fi",
                stat_size = stat_with_size(path),
                read = read_into_k_t(path),
                limit = limit + 1,
            )
        }
    }
}

const CONTENT_MARKER: &str = "--kiln-content--";

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
    let (state, before) = if speculates(ctx, &request) {
        match create_if_absent(ctx, &request, None).await? {
            Speculation::Created(result) => return Ok(result),
            Speculation::Exists(state, _) => (state, None),
        }
    } else {
        probe(ctx, &request.dest, ctx.diff.then_some(DIFF_LIMIT)).await?
    };
    if let (Some(name), "directory") = (file_name, state.kind.as_str()) {
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
    if state.kind == "directory" {
        return Err(ModuleError::Failed(format!(
            "{} is a directory; name the file to write",
            request.dest
        )));
    }
    if state.kind == "link" {
        // Follow the link the way Ansible does: write through to its target.
        if let Some(target) = state.link_target.clone() {
            let resolved = if target.starts_with('/') {
                target
            } else {
                format!("{}/{target}", parent_dir(&request.dest))
            };
            request.dest = resolved;
            (state, before) = probe(ctx, &request.dest, ctx.diff.then_some(DIFF_LIMIT)).await?;
        }
    }
    let checksum = sha1_hex(&request.content);
    let content_changes = !state.exists || state.checksum.as_deref() != Some(checksum.as_str());
    let attr_changes = if state.exists {
        request.attrs.changes(&request.dest, &state)
    } else {
        vec![]
    };
    let changed = content_changes || !attr_changes.is_empty();

    let mut result = ModuleResult::changed(changed)
        .with("dest", request.dest.as_str())
        .with("checksum", checksum.as_str())
        .with("size", request.content.len() as i64);
    if ctx.diff && content_changes {
        result.diffs.push(Diff {
            before_header: request.dest.clone(),
            after_header: request.dest.clone(),
            before: before
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            after: String::from_utf8_lossy(&request.content).into_owned(),
        });
    }
    if !changed || ctx.check_mode {
        return Ok(with_final_attrs(result, &state, &request.attrs));
    }
    if !content_changes {
        ctx.run_ok_inline(&attr_changes.join(" && "), None, "changing attributes")
            .await?;
        return Ok(with_final_attrs(result, &state, &request.attrs));
    }
    let backup_file = request.backup && state.exists;
    let (script, stdin) = write_script(&request, &state, backup_file);
    let out = run_write(ctx, &request, &script, stdin).await?;
    if out.rc != 0 {
        return Err(write_failure(&request.dest, &out.stderr_text()));
    }
    if backup_file {
        result = result.with("backup_file", out.stdout_text().trim());
    }
    Ok(with_final_attrs(result, &state, &request.attrs))
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
    let present = compare
        .clone()
        .unwrap_or_else(|| present_state_script(&request.dest, content_limit));
    let script = if_exists(
        &request.dest,
        &present,
        &format!("{{ {write}; }} && echo {CREATED}"),
    );
    let out = run_write(ctx, request, &script, stdin).await?;
    if out.rc != 0 {
        return Err(write_failure(&request.dest, &out.stderr_text()));
    }
    let stdout = out.stdout_text();
    if stdout.trim_end() == CREATED {
        let result = ModuleResult::changed(true)
            .with("dest", request.dest.as_str())
            .with("checksum", sha1_hex(&request.content))
            .with("size", request.content.len() as i64);
        return Ok(Speculation::Created(with_final_attrs(
            result,
            &absent,
            &request.attrs,
        )));
    }
    if compare.is_some() {
        let mut state = parse_probe(&stdout);
        // Unknown (None) counts as different: the plan writes the file.
        state.checksum = stdout.contains(SAME).then(|| sha1_hex(&request.content));
        return Ok(Speculation::Exists(state, None));
    }
    let (state, content) = parse_probe_output(&out.stdout, content_limit);
    Ok(Speculation::Exists(state, content))
}

/// Small files are read and compared by the target's shell itself (one `stat`, no `head`
/// or checksum process): `read` takes a byte per system call, so only up to this size.
const COMPARE_LIMIT: usize = 1024;
const SAME: &str = "__kiln_same__";

/// A script that prints a path's state and, when it is a regular file whose size and text
/// equal `content`, a line saying so. A file holding NUL bytes (which `read` drops) cannot
/// pass for `content`: its size would differ from what was read.
fn compare_script(path: &str, content: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(content).ok()?;
    if content.len() > COMPARE_LIMIT || text.contains('\0') {
        return None;
    }
    let p = quote(path);
    Some(format!(
        "{stat_size} && if [ \"$k_b\" = {len} ] && [ -f {p} ] && [ ! -L {p} ]; then \
         {read}; if [ \"$k_t\" = {expected} ]; then echo {SAME}; fi; fi",
        stat_size = stat_with_size(path),
        read = read_into_k_t(path),
        len = content.len(),
        expected = quote(text),
    ))
}

/// Prints a path's `stat` line and leaves its size in `k_b` (the 7th field; the fields
/// before it hold no `|`).
fn stat_with_size(path: &str) -> String {
    format!(
        "k_t=$({}) && printf '%s\\n' \"$k_t\" && k_b=${{k_t#*|*|*|*|*|*|}} && k_b=${{k_b%%|*}}",
        stat_command(path)
    )
}

/// Reads a file into `k_t` with shell builtins, byte for byte except NULs.
fn read_into_k_t(path: &str) -> String {
    format!(
        "k_t=; while IFS= read -r k_rc; do k_t=\"$k_t$k_rc\n\"; done <{}; k_t=\"$k_t$k_rc\"",
        quote(path)
    )
}

/// The file's mode/owner/group after the write, as far as they are known without asking
/// again (a new file's defaults come from the target's umask and user: left out).
/// Converges only the attributes of an existing file whose content is right.
pub async fn converge_attributes(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    state: &PathState,
    attrs: &Attributes,
) -> Result<ModuleResult, ModuleError> {
    let changes = attrs.changes(dest, state);
    if !changes.is_empty() && !ctx.check_mode {
        ctx.run_ok_inline(&changes.join(" && "), None, "changing attributes")
            .await?;
    }
    let result = ModuleResult::changed(!changes.is_empty()).with("dest", dest);
    Ok(with_final_attrs(result, state, attrs))
}

fn with_final_attrs(
    mut result: ModuleResult,
    state: &PathState,
    attrs: &Attributes,
) -> ModuleResult {
    let current = state.exists.then_some(state.mode);
    if let Some(mode) = attrs
        .mode
        .as_ref()
        .and_then(|m| wanted_mode(m, current, false))
        .or(current)
    {
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

pub fn parent_dir(path: &str) -> String {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_string(),
        None => ".".into(),
    }
}

/// Content up to this size, if it is text, travels inside the script (written by `printf`, a
/// shell builtin) rather than as the command's stdin (which costs the target a `dd`).
const INLINE_LIMIT: usize = 16 * 1024;

/// The apply command, and the stdin it needs (None when the content is inlined).
///
/// The temporary file is written by a shell redirection under a umask that yields the wanted
/// mode, so a plain write costs the target one process (`mv`); `chmod`/`chown` run only for
/// modes a redirection cannot create (execute and special bits) and for explicit owners.
///
/// A destination that does not exist yet, with inlined content and nothing to validate, is
/// created in place instead (`set -C`: exclusive, never through a link) and written by one
/// `printf`: no process at all. There is nothing to replace atomically; a reader racing with
/// the creation may see the new file empty for the moment between the two. A failed write
/// removes the file it created.
fn write_script(
    request: &WriteRequest,
    state: &PathState,
    backup: bool,
) -> (String, Option<Vec<u8>>) {
    let dest = quote(&request.dest);
    // A fresh name beside the destination (same filesystem, so `mv` is atomic).
    let temp = quote(&format!(
        "{}/.kiln-tmp.{}",
        parent_dir(&request.dest),
        &crate::modules::util::random_id()[..12]
    ));
    let mode = request
        .attrs
        .mode
        .as_ref()
        .and_then(|m| wanted_mode(m, state.exists.then_some(state.mode), false))
        .or(state.exists.then_some(state.mode));
    let inline = match std::str::from_utf8(&request.content) {
        Ok(text) if request.content.len() <= INLINE_LIMIT && !text.contains('\0') => Some(text),
        _ => None,
    };
    let source = match inline {
        Some(text) => format!("printf '%s' {}", quote(text)),
        None => "cat".to_string(),
    };
    let in_place = !state.exists && inline.is_some() && request.validate.is_none();
    // Without a wanted mode, a new file gets the target's umask default, as with any
    // redirection; `set -C` refuses to follow anything already at the name.
    let (umask, chmod) = match mode {
        Some(m) if m & !0o666 == 0 => (Some(0o777 & !m), None),
        Some(m) => (Some(0o077), Some(m)),
        None => (None, None),
    };
    let umask = umask
        .map(|u| format!("umask {u:03o} && "))
        .unwrap_or_default();
    let mut steps = Vec::new();
    if in_place {
        // `k_t` names the file only once this command created it: the cleanup on failure
        // must not remove a file that appeared at the name meanwhile. (`true`, not `:`: a
        // failed redirection of a special builtin would end the session's shell.)
        steps.push(format!(
            "{umask}set -C && true >{dest} && k_t={dest} && set +C && {source} >>\"$k_t\""
        ));
    } else {
        steps.push(format!("k_t={temp}"));
        steps.push(format!("{umask}set -C && {source} >\"$k_t\" && set +C"));
    }
    // Ownership before the mode: `chown` clears the setuid and setgid bits.
    match (&request.attrs.owner, &request.attrs.group) {
        (Some(owner), Some(group)) => {
            steps.push(format!("chown {}:{} \"$k_t\"", quote(owner), quote(group)))
        }
        (Some(owner), None) => steps.push(format!("chown {} \"$k_t\"", quote(owner))),
        (None, Some(group)) => steps.push(format!("chgrp {} \"$k_t\"", quote(group))),
        (None, None) => {}
    }
    if state.exists && request.attrs.owner.is_none() && request.attrs.group.is_none() {
        // Keep the current owner when we may (as root); otherwise the file is ours. The
        // builtin tests skip the `chown` when the owner is already us.
        steps.push(format!(
            "{{ [ -O {dest} ] && [ -G {dest} ] || chown {}:{} \"$k_t\" 2>/dev/null || true; }}",
            state.uid, state.gid
        ));
    }
    if let Some(m) = chmod {
        steps.push(format!("chmod {} \"$k_t\"", octal(m)));
    }
    let stdin = inline.is_none().then(|| request.content.clone());
    if let Some(validate) = &request.validate {
        let command = validate.replace("%s", "\"$k_t\"");
        steps.push(format!(
            "{{ {command} >&2 || {{ echo kiln-validate-failed >&2; false; }}; }}"
        ));
    }
    if backup {
        steps.push(format!(
            "k_b={dest}.$(date +%Y-%m-%d@%H:%M:%S)~ && cp -p {dest} \"$k_b\" && echo \"$k_b\""
        ));
    }
    if !in_place {
        steps.push(format!("mv -f \"$k_t\" {dest}"));
    }
    (
        format!(
            "{} || {{ k_rc=$?; [ -z \"$k_t\" ] || rm -f \"$k_t\"; (exit $k_rc); }}",
            steps.join(" && ")
        ),
        stdin,
    )
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
