//! `replace`: every match of a (multi-line, Python-style) regular expression in a file
//! replaced, optionally only between `after` and `before`. Pure edit, unit-tested below.

use async_trait::async_trait;
use regex::bytes::Regex;

use super::edit::{edit_text, TextEdit, WhenAbsent};
use super::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::python_replacement;

pub struct Replace;

/// The text with replacements made within the section `section` matches (its `subsection`
/// group; the whole text without one), and how many were made; None when the section is not
/// found.
pub fn apply(
    text: &[u8],
    pattern: &Regex,
    replacement: &str,
    section: Option<&Regex>,
) -> Option<(Vec<u8>, usize)> {
    let (start, end) = match section {
        Some(re) => {
            let sub = re.captures(text)?.name("subsection")?;
            (sub.start(), sub.end())
        }
        None => (0, text.len()),
    };
    let part = &text[start..end];
    let count = pattern.find_iter(part).count();
    if count == 0 {
        return Some((text.to_vec(), 0));
    }
    let replaced = pattern.replace_all(part, python_replacement(replacement).as_bytes());
    Some(([&text[..start], &replaced, &text[end..]].concat(), count))
}

/// Ansible's section pattern for `after`/`before`: the text between the first `after` and the
/// next `before` (the last `before` without `after`), matched with DOTALL but not MULTILINE.
fn section_pattern(after: Option<&str>, before: Option<&str>) -> Option<String> {
    match (after, before) {
        (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
        (None, None) => None,
    }
}

/// Python's error for a replacement template with an unknown letter escape (`\D`), which
/// Ansible reports as "Unable to process replace due to error: …".
fn check_template(replacement: &str) -> Result<(), ModuleError> {
    let mut chars = replacement.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            continue;
        }
        match chars.next() {
            Some((_, e)) if e.is_ascii_alphabetic() && !"gabfnrtv".contains(e) => {
                return Err(ModuleError::Failed(format!(
                    "Unable to process replace due to error: bad escape \\{e} at position {at}"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn compile(pattern: &str, option: &str) -> Result<Regex, ModuleError> {
    // Python's re.MULTILINE, as Ansible compiles it.
    Regex::new(&format!("(?m){pattern}"))
        .map_err(|e| ModuleError::Args(format!("replace: invalid {option} '{pattern}': {e}")))
}

#[async_trait]
impl Module for Replace {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args
            .required_path(ctx, &["path", "dest", "destfile", "name"])
            .await?;
        let pattern = compile(&args.required_str(&["regexp"])?, "regexp")?;
        let replacement = args.str(&["replace"])?.unwrap_or_default();
        check_template(&replacement)?;
        let section_source = section_pattern(
            args.str(&["after"])?.as_deref(),
            args.str(&["before"])?.as_deref(),
        );
        let section = section_source
            .as_ref()
            .map(|p| {
                Regex::new(&format!("(?s){p}")).map_err(|e| {
                    ModuleError::Args(format!("replace: invalid after/before '{p}': {e}"))
                })
            })
            .transpose()?;
        let backup = args.bool("backup", false)?;
        let validate = args.str(&["validate"])?;
        let attrs = Attributes::from_args(&mut args)?;
        let _ = args.raw_any(&["encoding", "others"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        let mut count = 0;
        let mut unmatched = false;
        let mut result = edit_text(
            ctx,
            TextEdit {
                module: "replace",
                path: path.clone(),
                absent: WhenAbsent::Fail,
                attrs,
                backup,
                validate,
                follow: true,
            },
            |current| match apply(current, &pattern, &replacement, section.as_ref()) {
                Some((text, n)) => {
                    count = n;
                    text
                }
                None => {
                    unmatched = true;
                    current.to_vec()
                }
            },
        )
        .await
        .map_err(|e| match e {
            ModuleError::Failed(m) if m.contains("does not exist") => {
                ModuleError::Failed(format!("Path {path} does not exist !"))
            }
            ModuleError::Failed(m) if m.contains("is a directory") => {
                ModuleError::Failed(format!("Path {path} is a directory !"))
            }
            other => other,
        })?;
        result.msg = Some(if let (true, Some(p)) = (unmatched, &section_source) {
            format!("Pattern for before/after params did not match the given file: {p}")
        } else if result.changed && count > 0 {
            format!("{count} replacements made")
        } else {
            String::new()
        });
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_backrefs_and_sections() {
        let re = compile(r"^(\w+)=old$", "regexp").unwrap();
        let (out, n) = apply(b"a=old\nb=old\n", &re, r"\1=new", None).unwrap();
        assert_eq!((out.as_slice(), n), (&b"a=new\nb=new\n"[..], 2));
        assert_eq!(apply(&out, &re, r"\1=new", None).unwrap().1, 0);
        let section = section_pattern(Some(r"\[server\]"), Some(r"\[client\]")).unwrap();
        let section = Regex::new(&format!("(?s){section}")).unwrap();
        let text = b"port=old\n[server]\nport=old\n[client]\nport=old\n";
        let re = compile(r"^port=old$", "regexp").unwrap();
        let (out, n) = apply(text, &re, "port=1", Some(&section)).unwrap();
        assert_eq!(n, 1);
        assert_eq!(out, b"port=old\n[server]\nport=1\n[client]\nport=old\n");
    }

    #[test]
    fn a_section_that_is_not_found_is_reported_not_replaced() {
        let re = compile("e", "regexp").unwrap();
        let text = b"the promptly\nthe quilt\nthe end\n";
        let section = |after, before| {
            let p = section_pattern(after, before).unwrap();
            Regex::new(&format!("(?s){p}")).unwrap()
        };
        let reversed = section(Some("quilt"), Some("promptly"));
        assert_eq!(apply(text, &re, "3", Some(&reversed)), None);
        let between = section(Some("promptly"), Some("quilt"));
        let (out, n) = apply(text, &re, "3", Some(&between)).unwrap();
        assert_eq!(
            (out.as_slice(), n),
            (&b"the promptly\nth3 quilt\nthe end\n"[..], 1)
        );
        // Without `after`, the section runs from the start to the last `before`.
        let to_last = section(None, Some("end"));
        let (out, n) = apply(text, &re, "3", Some(&to_last)).unwrap();
        assert_eq!(
            (out.as_slice(), n),
            (&b"th3 promptly\nth3 quilt\nth3 end\n"[..], 3)
        );
    }

    #[test]
    fn unknown_letter_escapes_in_the_replacement_fail_as_in_python() {
        let err = check_template(r"a\D").unwrap_err().to_string();
        assert_eq!(
            err,
            r"Unable to process replace due to error: bad escape \D at position 1"
        );
        assert!(check_template(r"\1-\g<1>\n\\\.").is_ok());
    }

    #[test]
    fn keeps_bytes_outside_the_matches() {
        let re = compile(r"port=\d+", "regexp").unwrap();
        let text = b"caf\xe9\r\nport=1\r\n";
        let (out, n) = apply(text, &re, "port=2", None).unwrap();
        assert_eq!((out.as_slice(), n), (&b"caf\xe9\r\nport=2\r\n"[..], 1));
    }
}
