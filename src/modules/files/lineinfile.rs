//! `lineinfile`: make sure one line is (or is not) in a file. The edit itself is a pure
//! function over the file's text, unit-tested below; the write goes through `write::converge`.

use async_trait::async_trait;
use regex::bytes::Regex;

use super::edit::{bytes_regex, edit_text_outcome, Lines, TextEdit, WhenAbsent};
use super::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct LineInFile;

#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub regexp: Option<Regex>,
    pub search_string: Option<String>,
    pub line: Option<String>,
    pub present: bool,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

/// Whether `haystack` holds `needle` (an empty needle is everywhere, as in Python).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether a line (its bytes without the line ending) is the one the edit looks for.
fn matches(edit: &Edit, line: &[u8]) -> bool {
    match (&edit.regexp, &edit.search_string, &edit.line) {
        (Some(re), _, _) => re.is_match(line),
        (None, Some(s), _) => contains(line, s.as_bytes()),
        (None, None, Some(l)) => line == l.as_bytes(),
        _ => false,
    }
}

fn anchor(pattern: &str, file: &Lines, first: bool) -> Option<Option<usize>> {
    match pattern {
        "EOF" => Some(None),
        "BOF" => Some(Some(usize::MAX)),
        p => {
            let re = bytes_regex(p).ok()?;
            let mut found = file
                .texts()
                .enumerate()
                .filter(|(_, l)| re.is_match(l))
                .map(|(i, _)| i);
            if first {
                found.next().map(Some)
            } else {
                found.next_back().map(Some)
            }
        }
    }
}

/// Applies the edit to a file's bytes; returns the new bytes and a message (`line added`, …).
/// Lines are matched without their line ending; untouched lines keep all their bytes, a
/// replaced line keeps its ending, and an added line takes the file's.
pub fn apply(edit: &Edit, bytes: &[u8]) -> (Vec<u8>, &'static str) {
    let mut file = Lines::parse(bytes);
    let mut msg = "";
    if !edit.present {
        let before = file.lines.len();
        file.lines.retain(|l| !matches(edit, &l.text));
        if file.lines.len() != before {
            msg = "line(s) removed";
        }
    } else {
        let line = edit.line.clone().unwrap_or_default().into_bytes();
        let found: Vec<usize> = file
            .texts()
            .enumerate()
            .filter(|(_, l)| matches(edit, l))
            .map(|(i, _)| i)
            .collect();
        let target = if edit.firstmatch {
            found.first()
        } else {
            found.last()
        };
        if let Some(&i) = target {
            let current = &file.lines[i].text;
            let new = match (&edit.regexp, edit.backrefs) {
                (Some(re), true) => {
                    let replacement = crate::template::python_replacement(
                        edit.line.as_deref().unwrap_or_default(),
                    );
                    re.replace(current, replacement.as_bytes()).into_owned()
                }
                _ => line,
            };
            if *current != new {
                file.lines[i].text = new;
                msg = "line replaced";
            }
        } else if edit.backrefs {
            // With backrefs and no match, Ansible leaves the file alone.
        } else if !file.texts().any(|l| l == line.as_slice()) {
            let position = match (&edit.insertbefore, &edit.insertafter) {
                (Some(p), _) => match anchor(p, &file, edit.firstmatch) {
                    Some(Some(usize::MAX)) => 0,
                    Some(Some(i)) => i,
                    _ => file.lines.len(),
                },
                (None, Some(p)) => match anchor(p, &file, edit.firstmatch) {
                    Some(Some(usize::MAX)) => 0,
                    Some(Some(i)) => i + 1,
                    _ => file.lines.len(),
                },
                _ => file.lines.len(),
            };
            file.insert(position, vec![line]);
            msg = "line added";
        }
    }
    (file.to_bytes(), msg)
}

#[async_trait]
impl Module for LineInFile {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args
            .required_path(ctx, &["path", "dest", "destfile", "name"])
            .await?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let regexp = match args.str(&["regexp", "regex"])? {
            Some(r) => Some(bytes_regex(&r).map_err(|e| {
                ModuleError::Args(format!("lineinfile: invalid regexp '{r}': {e}"))
            })?),
            None => None,
        };
        let edit = Edit {
            regexp,
            search_string: args.str(&["search_string"])?,
            line: args.str(&["line", "value"])?,
            present: state == "present",
            insertafter: args.str(&["insertafter"])?,
            insertbefore: args.str(&["insertbefore"])?,
            backrefs: args.bool("backrefs", false)?,
            firstmatch: args.bool("firstmatch", false)?,
        };
        let create = args.bool("create", false)?;
        let backup = args.bool("backup", false)?;
        let validate = args.str(&["validate"])?;
        let attrs = Attributes::from_args(&mut args)?;
        let _ = args.raw_any(&["others"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        if edit.present && edit.line.is_none() {
            return Err(ModuleError::Args(
                "lineinfile: line is required with state=present".into(),
            ));
        }
        if edit.present && edit.backrefs && edit.regexp.is_none() {
            return Err(ModuleError::Args(
                "lineinfile: regexp is required with backrefs=true".into(),
            ));
        }
        let absent = match (edit.present, create) {
            (false, _) => WhenAbsent::Skip("file not present"),
            (true, true) => WhenAbsent::Create,
            (true, false) => WhenAbsent::Fail,
        };
        let mut msg = "";
        let mut found = 0;
        let (mut result, outcome) = edit_text_outcome(
            ctx,
            TextEdit {
                module: "lineinfile",
                path,
                absent,
                attrs,
                backup,
                validate,
                follow: true,
            },
            |current| {
                let (text, what) = apply(&edit, current);
                msg = what;
                if !edit.present {
                    found = Lines::parse(current)
                        .texts()
                        .filter(|l| matches(&edit, l))
                        .count();
                }
                text
            },
        )
        .await?;
        if outcome.skipped {
            return Ok(result);
        }
        // Ansible's messages: `N line(s) removed` with `found: N` for state=absent.
        let text = if edit.present || msg.is_empty() {
            msg.to_string()
        } else {
            format!("{found} {msg}")
        };
        result.msg = Some(outcome.message(&text));
        if !edit.present {
            result = result.with("found", found);
        }
        // lineinfile names its backup `backup` ("" without one).
        let backup = result.data.get("backup_file").cloned();
        result = result.with("backup", backup.unwrap_or_else(|| "".into()));
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(regexp: Option<&str>, line: &str) -> Edit {
        Edit {
            regexp: regexp.map(|r| Regex::new(r).unwrap()),
            line: Some(line.into()),
            present: true,
            ..Default::default()
        }
    }

    #[test]
    fn replaces_the_last_match_and_is_idempotent() {
        let e = edit(Some("^PermitRootLogin"), "PermitRootLogin no");
        let (out, msg) = apply(&e, b"a\nPermitRootLogin yes\nb\n");
        assert_eq!(
            (out.as_slice(), msg),
            (&b"a\nPermitRootLogin no\nb\n"[..], "line replaced")
        );
        assert_eq!(apply(&e, &out).1, "");
    }

    #[test]
    fn inserts_after_anchor_or_at_end() {
        let mut e = edit(None, "x=1");
        assert_eq!(apply(&e, b"a\nb").0, b"a\nb\nx=1\n");
        e.insertafter = Some("^a".into());
        assert_eq!(apply(&e, b"a\nb\n").0, b"a\nx=1\nb\n");
        e.insertafter = None;
        e.insertbefore = Some("BOF".into());
        assert_eq!(apply(&e, b"a\n").0, b"x=1\na\n");
    }

    #[test]
    fn backrefs_and_absent() {
        let mut e = edit(Some(r"^(Listen) \d+"), r"\1 8080");
        e.backrefs = true;
        assert_eq!(apply(&e, b"Listen 80\n").0, b"Listen 8080\n");
        assert_eq!(apply(&e, b"nothing\n").1, "");
        let gone = Edit {
            regexp: Some(Regex::new("^#").unwrap()),
            present: false,
            ..Default::default()
        };
        assert_eq!(apply(&gone, b"#a\nb\n#c\n").0, b"b\n");
    }

    #[test]
    fn keeps_foreign_bytes_and_crlf_endings() {
        let latin1 = b"caf\xe9=1\nport=80\n";
        let by_any_byte = Edit {
            regexp: Some(bytes_regex("^caf.=").unwrap()),
            line: Some("caf=2".into()),
            present: true,
            ..Default::default()
        };
        assert_eq!(apply(&by_any_byte, latin1).0, b"caf=2\nport=80\n");
        let e = edit(Some("^port="), "port=8080");
        let (out, msg) = apply(&e, latin1);
        assert_eq!(
            (out.as_slice(), msg),
            (&b"caf\xe9=1\nport=8080\n"[..], "line replaced")
        );
        let crlf = b"a\r\nport=8080\r\nb\r\n";
        assert_eq!(apply(&e, crlf), (crlf.to_vec(), ""));
        assert_eq!(apply(&edit(None, "port=8080"), crlf), (crlf.to_vec(), ""));
        let (added, msg) = apply(&edit(None, "c"), crlf);
        assert_eq!(
            (added.as_slice(), msg),
            (&b"a\r\nport=8080\r\nb\r\nc\r\n"[..], "line added")
        );
        let gone = Edit {
            line: Some("b".into()),
            present: false,
            ..Default::default()
        };
        assert_eq!(apply(&gone, crlf).0, b"a\r\nport=8080\r\n");
    }
}
