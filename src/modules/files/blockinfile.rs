//! `blockinfile`: a block of lines between marker lines (`# BEGIN ANSIBLE MANAGED BLOCK`),
//! inserted, replaced or removed. The edit is a pure function, unit-tested below.

use async_trait::async_trait;
use regex::bytes::Regex;

use super::edit::{bytes_regex, edit_text_outcome, Lines, TextEdit, WhenAbsent};
use super::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct BlockInFile;

#[derive(Debug, Clone, Default)]
pub struct Block {
    pub begin: String,
    pub end: String,
    /// The block's lines; empty (or absent state) removes the block.
    pub lines: Vec<String>,
    pub insertafter: Option<Regex>,
    pub insertbefore: Option<Regex>,
    /// `insertbefore: BOF`.
    pub at_start: bool,
    pub firstmatch: bool,
    /// The pattern sets Python's multiline flag (`(?m)`): Ansible then searches the whole
    /// file, so a pattern may span lines.
    pub multiline: bool,
    pub append_newline: bool,
    pub prepend_newline: bool,
}

/// The block's lines, split at `\n` only (a `\r` before it stays the line's).
fn block_lines(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').map(str::to_string).collect()
}

/// The file's lines with the block applied.
pub fn apply(block: &Block, bytes: &[u8]) -> Vec<u8> {
    let mut file = Lines::parse(bytes);
    let find_marker = |marker: &str| file.lines.iter().rposition(|l| l.text == marker.as_bytes());
    let (begin, end) = (find_marker(&block.begin), find_marker(&block.end));
    let mut wanted: Vec<Vec<u8>> = Vec::new();
    // A block line keeps its own `\r` (Ansible keeps the block's line endings) unless the
    // file's own ending already carries one.
    let crlf = file.newline() == b"\r\n";
    let own = |line: &String| match line.strip_suffix('\r') {
        Some(text) if crlf => text.as_bytes().to_vec(),
        _ => line.clone().into_bytes(),
    };
    if !block.lines.is_empty() {
        wanted.push(block.begin.clone().into_bytes());
        wanted.extend(block.lines.iter().map(own));
        wanted.push(block.end.clone().into_bytes());
    }
    let at = match (begin, end) {
        (Some(b), Some(e)) => {
            let (b, e) = (b.min(e), b.max(e));
            file.lines.drain(b..=e);
            b
        }
        _ => {
            if wanted.is_empty() {
                return bytes.to_vec();
            }
            let find = |re: &Regex| {
                let mut hits = file.texts().enumerate().filter(|(_, l)| re.is_match(l));
                if block.firstmatch {
                    hits.next().map(|(i, _)| i)
                } else {
                    hits.next_back().map(|(i, _)| i)
                }
            };
            // The line a whole-file match starts (before) or ends (after) on.
            let spanning = |re: &Regex, after: bool| {
                re.find(bytes).map(|m| {
                    let end = if after { m.end() } else { m.start() };
                    let line = bytes[..end].iter().filter(|b| **b == b'\n').count();
                    line + usize::from(after)
                })
            };
            let position = if block.at_start {
                Some(0)
            } else if let (Some(re), true) = (&block.insertbefore, block.multiline) {
                spanning(re, false)
            } else if let (Some(re), true) = (&block.insertafter, block.multiline) {
                spanning(re, true)
            } else if let Some(re) = &block.insertbefore {
                find(re)
            } else if let Some(re) = &block.insertafter {
                find(re).map(|i| i + 1)
            } else {
                None
            };
            position.unwrap_or(file.lines.len()).min(file.lines.len())
        }
    };
    // A blank line before or after the block unless one is there, whether the block is new
    // or replaces one, as Ansible's module does.
    let lines = &file.lines;
    if !wanted.is_empty() {
        if block.prepend_newline && at > 0 && !lines[at - 1].text.is_empty() {
            wanted.insert(0, Vec::new());
        }
        if block.append_newline && at < lines.len() && !lines[at].text.is_empty() {
            wanted.push(Vec::new());
        }
    }
    file.insert(at, wanted);
    file.to_bytes()
}

/// Whether a Python pattern turns on the multiline flag with a leading inline group
/// (`(?m)`, `(?im)`…), the only way a module's string pattern can.
fn python_multiline(pattern: &str) -> bool {
    pattern
        .strip_prefix("(?")
        .and_then(|rest| rest.split_once(')'))
        .is_some_and(|(flags, _)| {
            flags.contains('m') && flags.chars().all(|c| c.is_ascii_alphabetic())
        })
}

#[async_trait]
impl Module for BlockInFile {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args
            .required_path(ctx, &["path", "dest", "destfile", "name"])
            .await?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let text = args.str(&["block", "content"])?.unwrap_or_default();
        let marker = args
            .str(&["marker"])?
            .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
        let marker_begin = args
            .str(&["marker_begin"])?
            .unwrap_or_else(|| "BEGIN".into());
        let marker_end = args.str(&["marker_end"])?.unwrap_or_else(|| "END".into());
        let regex = |args: &mut Args, key: &str| -> Result<Option<Regex>, ModuleError> {
            match args.str(&[key])? {
                None => Ok(None),
                Some(p) if p == "EOF" || p == "BOF" => Ok(None),
                Some(p) => bytes_regex(&p).map(Some).map_err(|e| {
                    ModuleError::Args(format!("blockinfile: invalid {key} '{p}': {e}"))
                }),
            }
        };
        let at_start = args
            .raw("insertbefore")
            .is_some_and(|v| v.as_str() == Some("BOF"));
        let multiline = ["insertbefore", "insertafter"].iter().any(|key| {
            args.raw(key)
                .and_then(|v| v.as_str().map(python_multiline))
                .unwrap_or(false)
        });
        let insertbefore = regex(&mut args, "insertbefore")?;
        let insertafter = regex(&mut args, "insertafter")?;
        let block = Block {
            begin: marker.replace("{mark}", &marker_begin),
            end: marker.replace("{mark}", &marker_end),
            lines: if state == "present" {
                block_lines(&text)
            } else {
                vec![]
            },
            insertafter,
            insertbefore,
            at_start,
            firstmatch: args.bool("firstmatch", false)?,
            multiline,
            append_newline: args.bool("append_newline", false)?,
            prepend_newline: args.bool("prepend_newline", false)?,
        };
        let create = args.bool("create", false)?;
        let backup = args.bool("backup", false)?;
        let validate = args.str(&["validate"])?;
        let attrs = Attributes::from_args(&mut args)?;
        let _ = args.raw_any(&["encoding"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        let absent = match (state.as_str(), create) {
            ("absent", _) => WhenAbsent::Skip("file not present"),
            (_, true) => WhenAbsent::Create,
            _ => WhenAbsent::Fail,
        };
        let (mut result, outcome) = edit_text_outcome(
            ctx,
            TextEdit {
                module: "blockinfile",
                path: path.clone(),
                absent,
                attrs,
                backup,
                validate,
                follow: true,
            },
            |current| apply(&block, current),
        )
        .await?;
        // Ansible's messages, in its order of precedence.
        let text = if outcome.skipped {
            format!("File {path} not present")
        } else if !outcome.content {
            String::new()
        } else if outcome.created {
            "File created".into()
        } else if block.lines.is_empty() {
            "Block removed".into()
        } else {
            "Block inserted".into()
        };
        result.msg = Some(outcome.message(&text));
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lines: &[&str]) -> Block {
        Block {
            begin: "# BEGIN X".into(),
            end: "# END X".into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_blocks_own_line_endings_are_kept() {
        let b = Block {
            lines: block_lines("dos\r\ndos\r\n"),
            ..block(&[])
        };
        assert_eq!(b.lines, ["dos\r", "dos\r"]);
        assert_eq!(
            apply(&b, b"unix\n"),
            b"unix\n# BEGIN X\ndos\r\ndos\r\n# END X\n".to_vec()
        );
        assert_eq!(
            apply(&b, b"dos\r\n"),
            b"dos\r\n# BEGIN X\r\ndos\r\ndos\r\n# END X\r\n".to_vec()
        );
        assert_eq!(block_lines("a\nb"), ["a", "b"]);
        assert!(block_lines("").is_empty());
    }

    #[test]
    fn inserts_replaces_and_removes() {
        let b = block(&["a", "b"]);
        let once = apply(&b, b"top\n");
        assert_eq!(once, b"top\n# BEGIN X\na\nb\n# END X\n");
        assert_eq!(apply(&b, &once), once);
        let changed = apply(&block(&["c"]), &once);
        assert_eq!(changed, b"top\n# BEGIN X\nc\n# END X\n");
        assert_eq!(apply(&block(&[]), &changed), b"top\n");
    }

    #[test]
    fn anchors() {
        let mut b = block(&["x"]);
        b.insertafter = Some(Regex::new("^one").unwrap());
        assert_eq!(
            apply(&b, b"one\ntwo\n"),
            b"one\n# BEGIN X\nx\n# END X\ntwo\n"
        );
        b.insertafter = None;
        b.at_start = true;
        assert_eq!(apply(&b, b"one\n"), b"# BEGIN X\nx\n# END X\none\n");
    }

    #[test]
    fn blank_lines_around_a_block_are_added_to_an_existing_one_too() {
        let mut b = block(&["x"]);
        let existing = b"one\n# BEGIN X\nx\n# END X\ntwo\n";
        b.append_newline = true;
        b.prepend_newline = true;
        let spaced = apply(&b, existing);
        assert_eq!(spaced, b"one\n\n# BEGIN X\nx\n# END X\n\ntwo\n");
        assert_eq!(apply(&b, &spaced), spaced, "once is enough");
        assert_eq!(apply(&block(&[]), &spaced), b"one\n\n\ntwo\n");
    }

    #[test]
    fn a_multiline_pattern_spans_lines_and_a_line_pattern_does_not() {
        let mut b = block(&["x"]);
        b.insertafter = Some(Regex::new("(?m)one\n.*two").unwrap());
        b.multiline = true;
        assert_eq!(
            apply(&b, b"one\n  two\nthree\n"),
            b"one\n  two\n# BEGIN X\nx\n# END X\nthree\n"
        );
        b.insertbefore = b.insertafter.take();
        assert_eq!(
            apply(&b, b"zero\none\n  two\n"),
            b"zero\n# BEGIN X\nx\n# END X\none\n  two\n"
        );
        b.insertafter = Some(Regex::new("one\n.*two").unwrap());
        b.insertbefore = None;
        b.multiline = false;
        assert_eq!(
            apply(&b, b"one\ntwo\n"),
            b"one\ntwo\n# BEGIN X\nx\n# END X\n"
        );
        assert!(python_multiline("(?m)a\nb") && python_multiline("(?im)a"));
        assert!(!python_multiline("a(?m)") && !python_multiline("(?:m)"));
    }

    #[test]
    fn keeps_foreign_bytes_and_crlf_endings() {
        let crlf = b"caf\xe9\r\n# BEGIN X\r\nx\r\n# END X\r\ntail\r\n";
        assert_eq!(apply(&block(&["x"]), crlf), crlf);
        assert_eq!(
            apply(&block(&["y"]), crlf),
            b"caf\xe9\r\n# BEGIN X\r\ny\r\n# END X\r\ntail\r\n"
        );
        assert_eq!(apply(&block(&[]), crlf), b"caf\xe9\r\ntail\r\n");
    }
}
