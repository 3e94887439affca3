//! Editing a text file in place (lineinfile, blockinfile, replace, authorized_key, sysctl):
//! read the file and its state in one command, edit its bytes with a pure function, write
//! back through `write::converge_from` (atomic, with attributes, backup, validate, `--diff`).
//!
//! Edits work on bytes, as Ansible's do: a line the edit does not touch keeps every byte,
//! whatever its encoding, and its line ending. A followed link leads to the file it names (as
//! Ansible's `realpath` does); owner and group asked for apply to the link itself (`-h`).

use super::write::{
    converge_attributes, converge_from, create_if_absent, parent_dir, probe, resolve_link,
    speculates, Attributes, Speculation, WriteRequest,
};
use crate::connection::quote;
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
    /// Edit the file a link names (lineinfile, blockinfile, replace, sysctl: always, as in
    /// Ansible). Without it a link is replaced by the edited empty text, never read through.
    pub follow: bool,
}

/// What an edit changed, for the messages lineinfile and blockinfile return.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EditOutcome {
    /// The file did not exist and nothing was to be done (`WhenAbsent::Skip`).
    pub skipped: bool,
    /// The file did not exist and is (or, in check mode, would be) created.
    pub created: bool,
    /// The text changed.
    pub content: bool,
    /// Owner, group or mode changed on an existing file (or its link).
    pub attributes: bool,
}

impl EditOutcome {
    /// A module's message with Ansible's `check_file_attrs` suffix when attributes changed.
    pub fn message(&self, text: &str) -> String {
        const ATTRIBUTES: &str = "ownership, perms or SE linux context changed";
        match (self.attributes, text.is_empty()) {
            (false, _) => text.to_string(),
            (true, true) => ATTRIBUTES.to_string(),
            (true, false) => format!("{text} and {ATTRIBUTES}"),
        }
    }
}

/// Applies `edit` (current bytes → new bytes) to the file on the target. A file that is to be
/// created when absent is written in the same round trip that reads an existing one.
pub async fn edit_text(
    ctx: &ModuleCtx<'_>,
    request: TextEdit,
    edit: impl FnMut(&[u8]) -> Vec<u8>,
) -> Result<ModuleResult, ModuleError> {
    Ok(edit_text_outcome(ctx, request, edit).await?.0)
}

/// `edit_text`, also telling what changed.
pub async fn edit_text_outcome(
    ctx: &ModuleCtx<'_>,
    request: TextEdit,
    mut edit: impl FnMut(&[u8]) -> Vec<u8>,
) -> Result<(ModuleResult, EditOutcome), ModuleError> {
    let created = EditOutcome {
        created: true,
        content: true,
        ..EditOutcome::default()
    };
    let mut path = request.path;
    let fresh = WriteRequest {
        dest: path.clone(),
        content: Vec::new(),
        attrs: request.attrs.clone(),
        backup: request.backup,
        validate: request.validate.clone(),
        force: true,
        follow: true,
    };
    let (mut state, mut content) =
        if request.absent == WhenAbsent::Create && speculates(ctx, &fresh) {
            let fresh = WriteRequest {
                content: edit(b""),
                ..fresh
            };
            let speculation = match create_if_absent(ctx, &fresh, Some(EDIT_LIMIT)).await {
                // The write may have failed for want of the file's directory, which Ansible
                // creates (`os.makedirs`): made, the write is tried once more.
                Err(error) if !make_parent(ctx, &path).await? => return Err(error),
                Err(_) => create_if_absent(ctx, &fresh, Some(EDIT_LIMIT)).await?,
                Ok(speculation) => speculation,
            };
            match speculation {
                Speculation::Created(result) => return Ok((result, created)),
                Speculation::Exists(state, content) => (state, content),
            }
        } else {
            let (state, content) = probe(ctx, &path, Some(EDIT_LIMIT)).await?;
            if !state.exists && request.absent == WhenAbsent::Create && !ctx.check_mode {
                make_parent(ctx, &path).await?;
            }
            (state, content)
        };
    // The file a link names is edited; the attributes asked for go to the link (`-h`).
    let mut link = None;
    let mut attrs = request.attrs.clone();
    if state.kind == "link" && request.follow {
        let real = resolve_link(ctx, &path).await?;
        link = Some((std::mem::replace(&mut path, real), state));
        (state, content) = probe(ctx, &path, Some(EDIT_LIMIT)).await?;
        attrs = Attributes::default();
    } else if state.kind == "link" {
        content = Some(Vec::new());
    }
    if state.exists && !matches!(state.kind.as_str(), "file" | "link") {
        return Err(ModuleError::Failed(format!(
            "{}: {path} is a {}, not a file",
            request.module, state.kind
        )));
    }
    let current = match (state.exists, content) {
        (true, Some(bytes)) => bytes,
        (true, None) if state.size > 0 => {
            return Err(ModuleError::Failed(format!(
                "{}: {path} is larger than {} MiB; not edited",
                request.module,
                EDIT_LIMIT >> 20
            )))
        }
        (true, None) => Vec::new(),
        (false, _) => match request.absent {
            WhenAbsent::Fail => {
                return Err(ModuleError::Failed(format!(
                    "Destination {path} does not exist !"
                )))
            }
            WhenAbsent::Skip(msg) => {
                let skipped = EditOutcome {
                    skipped: true,
                    ..EditOutcome::default()
                };
                return Ok((ModuleResult::changed(false).with_msg(msg), skipped));
            }
            WhenAbsent::Create => Vec::new(),
        },
    };
    let updated = edit(&current);
    let mut outcome = if state.exists {
        EditOutcome {
            content: updated != current,
            attributes: !attrs.differences(&state).is_empty(),
            ..EditOutcome::default()
        }
    } else {
        created
    };
    let before = ctx.diff.then_some(current);
    let mut result = converge_from(
        ctx,
        WriteRequest {
            dest: path,
            content: updated,
            attrs,
            backup: request.backup,
            validate: request.validate,
            force: true,
            follow: request.follow,
        },
        state,
        before,
    )
    .await?;
    if let Some((link_path, link_state)) = link {
        let on_link = converge_attributes(ctx, &link_path, &link_state, &request.attrs).await?;
        result.changed |= on_link.changed;
        outcome.attributes |= on_link.changed;
    }
    Ok((result, outcome))
}

/// Creates the directory of a file to be created when it is missing, as Ansible's
/// lineinfile and blockinfile do; whether it had to.
async fn make_parent(ctx: &ModuleCtx<'_>, path: &str) -> Result<bool, ModuleError> {
    let parent = quote(&parent_dir(path));
    let script = format!("if [ ! -d {parent} ]; then mkdir -p -- {parent} && echo made; fi");
    let out = ctx
        .run_ok_inline(&script, None, &format!("creating the directory of {path}"))
        .await?;
    Ok(out.stdout_text().trim() == "made")
}

/// A pattern matched against a file's bytes as Python's `re` matches a bytes pattern (as
/// lineinfile and blockinfile do): `.` matches any byte, so a Latin-1 line still matches
/// `^name=.*$`, and `\w`, `\d`, `\s` are ASCII classes.
pub fn bytes_regex(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::Regex::new(&format!("(?-u){pattern}"))
}

/// One line of a file: its bytes without the line ending, and the ending (`\n`, `\r\n`, or
/// nothing for a last line without one).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: Vec<u8>,
    pub end: &'static [u8],
}

/// A file's bytes as lines, so an edit keeps every byte of the lines it does not touch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lines {
    pub lines: Vec<Line>,
}

impl Lines {
    pub fn parse(bytes: &[u8]) -> Lines {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => {
                    lines.push(Line {
                        text: rest.to_vec(),
                        end: b"",
                    });
                    break;
                }
            };
            let (text, end): (&[u8], &'static [u8]) = match line.strip_suffix(b"\r") {
                Some(text) => (text, b"\r\n"),
                None => (line, b"\n"),
            };
            lines.push(Line {
                text: text.to_vec(),
                end,
            });
            rest = next;
        }
        Lines { lines }
    }

    /// The ending new lines get: the first line's (so a CRLF file stays CRLF), else `\n`.
    pub fn newline(&self) -> &'static [u8] {
        match self.lines.first() {
            Some(line) if !line.end.is_empty() => line.end,
            _ => b"\n",
        }
    }

    /// Inserts lines at `at` (clamped to the end) with the file's line ending; a last line
    /// without an ending gets one first when lines go after it.
    pub fn insert(&mut self, at: usize, texts: Vec<Vec<u8>>) {
        let newline = self.newline();
        let at = at.min(self.lines.len());
        if at == self.lines.len() && !texts.is_empty() {
            if let Some(last) = self.lines.last_mut() {
                if last.end.is_empty() {
                    last.end = newline;
                }
            }
        }
        let new = texts.into_iter().map(|text| Line { text, end: newline });
        self.lines.splice(at..at, new);
    }

    /// Each line's bytes without its ending.
    pub fn texts(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator + '_ {
        self.lines.iter().map(|l| l.text.as_slice())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            out.extend_from_slice(&line.text);
            out.extend_from_slice(line.end);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_every_byte_and_ending() {
        let bytes = b"caf\xe9\r\nplain\nlast";
        let lines = Lines::parse(bytes);
        assert_eq!(lines.to_bytes(), bytes);
        assert_eq!(lines.lines[0].text, b"caf\xe9");
        assert_eq!(lines.newline(), b"\r\n");
        assert_eq!(lines.lines[2].end, b"");
    }

    #[test]
    fn patterns_match_bytes_as_python_does() {
        let re = bytes_regex("^caf.=1$").unwrap();
        assert!(re.is_match(b"caf\xe9=1"));
        assert!(bytes_regex("caf\u{e9}")
            .unwrap()
            .is_match("café".as_bytes()));
        assert!(!bytes_regex(r"^\w+$").unwrap().is_match(b"caf\xe9"));
    }

    #[test]
    fn inserted_lines_take_the_files_ending() {
        let mut lines = Lines::parse(b"a\r\nb");
        lines.insert(9, vec![b"c".to_vec()]);
        assert_eq!(lines.to_bytes(), b"a\r\nb\r\nc\r\n");
        let mut empty = Lines::parse(b"");
        empty.insert(0, vec![b"x".to_vec()]);
        assert_eq!(empty.to_bytes(), b"x\n");
    }
}
