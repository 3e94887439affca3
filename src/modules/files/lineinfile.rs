//! `lineinfile`: make sure one line is (or is not) in a file. The edit itself is a pure
//! function over the file's text, unit-tested below; the write goes through `write::converge`.

use async_trait::async_trait;
use regex::Regex;

use super::edit::{edit_text, TextEdit, WhenAbsent};
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

fn matches(edit: &Edit, line: &str) -> bool {
    match (&edit.regexp, &edit.search_string, &edit.line) {
        (Some(re), _, _) => re.is_match(line),
        (None, Some(s), _) => line.contains(s.as_str()),
        (None, None, Some(l)) => line == l,
        _ => false,
    }
}

fn anchor(pattern: &str, lines: &[String], first: bool) -> Option<Option<usize>> {
    match pattern {
        "EOF" => Some(None),
        "BOF" => Some(Some(usize::MAX)),
        p => {
            let re = Regex::new(p).ok()?;
            let mut found = lines
                .iter()
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

/// Applies the edit to `text`; returns the new text and a message (`line added`, …).
pub fn apply(edit: &Edit, text: &str) -> (String, &'static str) {
    let had_trailing_newline = text.is_empty() || text.ends_with('\n');
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut msg = "";
    if !edit.present {
        let before = lines.len();
        lines.retain(|l| !matches(edit, l));
        if lines.len() != before {
            msg = "line(s) removed";
        }
    } else {
        let line = edit.line.clone().unwrap_or_default();
        let found: Vec<usize> = lines
            .iter()
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
            let new = match (&edit.regexp, edit.backrefs) {
                (Some(re), true) => re
                    .replace(
                        &lines[i],
                        crate::template::python_replacement(&line).as_str(),
                    )
                    .into_owned(),
                _ => line.clone(),
            };
            if lines[i] != new {
                lines[i] = new;
                msg = "line replaced";
            }
        } else if edit.backrefs {
            // With backrefs and no match, Ansible leaves the file alone.
        } else if !lines.contains(&line) {
            let position = match (&edit.insertbefore, &edit.insertafter) {
                (Some(p), _) => match anchor(p, &lines, edit.firstmatch) {
                    Some(Some(usize::MAX)) => 0,
                    Some(Some(i)) => i,
                    _ => lines.len(),
                },
                (None, Some(p)) => match anchor(p, &lines, edit.firstmatch) {
                    Some(Some(usize::MAX)) => 0,
                    Some(Some(i)) => i + 1,
                    _ => lines.len(),
                },
                _ => lines.len(),
            };
            lines.insert(position.min(lines.len()), line);
            msg = "line added";
        }
    }
    let mut out = lines.join("\n");
    if !lines.is_empty() && (had_trailing_newline || msg == "line added") {
        out.push('\n');
    }
    (out, msg)
}

#[async_trait]
impl Module for LineInFile {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args.required_str(&["path", "dest", "destfile", "name"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let regexp = match args.str(&["regexp", "regex"])? {
            Some(r) => Some(Regex::new(&r).map_err(|e| {
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
        let mut result = edit_text(
            ctx,
            TextEdit {
                module: "lineinfile",
                path,
                absent,
                attrs,
                backup,
                validate,
            },
            |current| {
                let (text, what) = apply(&edit, current);
                msg = what;
                text
            },
        )
        .await?;
        if result.changed {
            result.msg = Some(if msg.is_empty() {
                "attributes changed".into()
            } else {
                msg.into()
            });
        }
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
        let (out, msg) = apply(&e, "a\nPermitRootLogin yes\nb\n");
        assert_eq!(
            (out.as_str(), msg),
            ("a\nPermitRootLogin no\nb\n", "line replaced")
        );
        assert_eq!(apply(&e, &out).1, "");
    }

    #[test]
    fn inserts_after_anchor_or_at_end() {
        let mut e = edit(None, "x=1");
        assert_eq!(apply(&e, "a\nb").0, "a\nb\nx=1\n");
        e.insertafter = Some("^a".into());
        assert_eq!(apply(&e, "a\nb\n").0, "a\nx=1\nb\n");
        e.insertafter = None;
        e.insertbefore = Some("BOF".into());
        assert_eq!(apply(&e, "a\n").0, "x=1\na\n");
    }

    #[test]
    fn backrefs_and_absent() {
        let mut e = edit(Some(r"^(Listen) \d+"), r"\1 8080");
        e.backrefs = true;
        assert_eq!(apply(&e, "Listen 80\n").0, "Listen 8080\n");
        assert_eq!(apply(&e, "nothing\n").1, "");
        let gone = Edit {
            regexp: Some(Regex::new("^#").unwrap()),
            present: false,
            ..Default::default()
        };
        assert_eq!(apply(&gone, "#a\nb\n#c\n").0, "b\n");
    }
}
