//! Editing a text file in place (blockinfile, replace, lineinfile's kin): read the file and
//! its state in one command, edit its text with a pure function, write back through
//! `write::converge_from` (atomic, with attributes, backup, validate and `--diff`).

use super::write::{
    converge_from, create_if_absent, probe, speculates, Attributes, Speculation, WriteRequest,
};
use crate::modules::{ModuleCtx, ModuleError, ModuleResult};

/// Files larger than this are not edited (their content is not read).
pub const EDIT_LIMIT: u64 = 64 * 1024 * 1024;

/// What to do when the file does not exist.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WhenAbsent {
    /// Fail, telling the user about `create`.
    Fail,
    /// Report `ok` with this message: nothing to edit.
    Skip(&'static str),
    /// Edit an empty text and create the file.
    Create,
}

pub struct TextEdit {
    pub module: &'static str,
    pub path: String,
    pub absent: WhenAbsent,
    pub attrs: Attributes,
    pub backup: bool,
    pub validate: Option<String>,
}

/// Applies `edit` (current text → new text) to the file on the target. A file that is to be
/// created when absent is written in the same round trip that reads an existing one.
pub async fn edit_text(
    ctx: &ModuleCtx<'_>,
    request: TextEdit,
    mut edit: impl FnMut(&str) -> String,
) -> Result<ModuleResult, ModuleError> {
    let path = request.path;
    let fresh = WriteRequest {
        dest: path.clone(),
        content: Vec::new(),
        attrs: request.attrs.clone(),
        backup: request.backup,
        validate: request.validate.clone(),
        force: true,
    };
    let (state, content) = if request.absent == WhenAbsent::Create && speculates(ctx, &fresh) {
        let fresh = WriteRequest {
            content: edit("").into_bytes(),
            ..fresh
        };
        match create_if_absent(ctx, &fresh, Some(EDIT_LIMIT)).await? {
            Speculation::Created(result) => return Ok(result),
            Speculation::Exists(state, content) => (state, content),
        }
    } else {
        probe(ctx, &path, Some(EDIT_LIMIT)).await?
    };
    if state.exists && state.kind != "file" && state.kind != "link" {
        return Err(ModuleError::Failed(format!(
            "{}: {path} is a {}, not a file",
            request.module, state.kind
        )));
    }
    let current = match (state.exists, content) {
        (true, Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        (true, None) if state.size > 0 => {
            return Err(ModuleError::Failed(format!(
                "{}: {path} is larger than {} MiB; not edited",
                request.module,
                EDIT_LIMIT >> 20
            )))
        }
        (true, None) => String::new(),
        (false, _) => match request.absent {
            WhenAbsent::Fail => {
                return Err(ModuleError::Failed(format!(
                    "Destination {path} does not exist! (use create: yes to create it)"
                )))
            }
            WhenAbsent::Skip(msg) => return Ok(ModuleResult::changed(false).with_msg(msg)),
            WhenAbsent::Create => String::new(),
        },
    };
    let updated = edit(&current);
    let before = ctx.diff.then(|| current.into_bytes());
    converge_from(
        ctx,
        WriteRequest {
            dest: path,
            content: updated.into_bytes(),
            attrs: request.attrs,
            backup: request.backup,
            validate: request.validate,
            force: true,
        },
        state,
        before,
    )
    .await
}

/// Joins lines back into a file's text: a final newline unless the result is empty.
pub fn join_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}
