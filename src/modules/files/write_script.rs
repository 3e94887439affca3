//! The shell text the file writer sends: reading a path's state (and a small file's content
//! with the shell's own `read`), comparing a small file with the wanted text, and writing a
//! file (in place when new, else through a temporary file and `mv`).

use crate::connection::quote;
use crate::modules::util::{if_exists, octal, present_state_command, stat_command, PathState};

use super::write::{parent_dir, WriteRequest};

/// The command that reports a path's state and either a regular file's checksum or, with a
/// `content_limit`, its content (the controller computes the checksum; one process less).
pub(super) fn probe_script(path: &str, content_limit: Option<u64>) -> String {
    if_exists(
        path,
        &present_state_script(path, content_limit),
        "echo absent",
    )
}

/// What `probe_script` prints for a path that exists.
pub(super) fn present_state_script(path: &str, content_limit: Option<u64>) -> String {
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

pub(super) const CONTENT_MARKER: &str = "--kiln-content--";

/// Small files are read and compared by the target's shell itself (one `stat`, no `head`
/// or checksum process): `read` takes a byte per system call, so only up to this size.
const COMPARE_LIMIT: usize = 1024;
pub(super) const SAME: &str = "__kiln_same__";

/// A script that prints a path's state and, when it is a regular file whose size and text
/// equal `content`, a line saying so. A file holding NUL bytes (which `read` drops) cannot
/// pass for `content`: its size would differ from what was read.
pub(super) fn compare_script(path: &str, content: &[u8]) -> Option<String> {
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
pub(super) fn write_script(
    request: &WriteRequest,
    state: &PathState,
    backup: bool,
) -> (String, Option<Vec<u8>>) {
    let dest = quote(&request.dest);
    // A fresh name beside the destination (same filesystem, so `mv` is atomic).
    let temp_path = format!(
        "{}/.kiln-tmp.{}",
        parent_dir(&request.dest),
        &crate::util::random_id()[..12]
    );
    let temp = quote(&temp_path);
    // A link being replaced passes on nothing: neither its mode nor its owner.
    let kept = state.exists && state.kind != "link";
    let mode = request
        .attrs
        .wanted_mode(kept.then_some(state.mode), false)
        .or(kept.then_some(state.mode));
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
    if kept && request.attrs.owner.is_none() && request.attrs.group.is_none() {
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
        let command = validate.replace("%s", &validate_path(&temp_path));
        steps.push(format!(
            "{{ {command} >&2 || {{ echo kiln-validate-failed >&2; false; }}; }}"
        ));
    }
    if backup {
        steps.push(format!(
            "k_b={dest}.$(date +%Y-%m-%d@%H:%M:%S)~ && cp -P -p {dest} \"$k_b\" && echo \"$k_b\""
        ));
    }
    if !in_place {
        // `-T`: a link to a directory at `dest` is replaced, not moved into.
        steps.push(format!("mv -f -T \"$k_t\" {dest}"));
    }
    (
        format!(
            "{} || {{ k_rc=$?; [ -z \"$k_t\" ] || rm -f \"$k_t\"; (exit $k_rc); }}",
            steps.join(" && ")
        ),
        stdin,
    )
}

/// The temporary file's path as a `validate` command's `%s` becomes (Ansible substitutes the
/// bare path, so `sh -c 'test -s %s'` works): bare when it needs no quoting, else quoted.
fn validate_path(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if path.chars().all(plain) {
        path.to_string()
    } else {
        quote(path)
    }
}
