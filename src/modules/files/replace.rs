//! `replace`: every match of a (multi-line, Python-style) regular expression in a file
//! replaced, optionally only between `after` and `before`. Pure edit, unit-tested below.

use async_trait::async_trait;
use regex::bytes::Regex;

use super::edit::{edit_text, TextEdit, WhenAbsent};
use super::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::python_replacement;

pub struct Replace;

/// The text with replacements made, and how many were made.
pub fn apply(
    text: &[u8],
    pattern: &Regex,
    replacement: &str,
    after: Option<&Regex>,
    before: Option<&Regex>,
) -> (Vec<u8>, usize) {
    let start = after
        .and_then(|re| re.find(text))
        .map(|m| m.end())
        .unwrap_or(0);
    let end = before
        .and_then(|re| re.find(&text[start..]))
        .map(|m| start + m.start())
        .unwrap_or(text.len());
    let section = &text[start..end];
    let count = pattern.find_iter(section).count();
    if count == 0 {
        return (text.to_vec(), 0);
    }
    let replaced = pattern.replace_all(section, python_replacement(replacement).as_bytes());
    ([&text[..start], &replaced, &text[end..]].concat(), count)
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
        let after = args
            .str(&["after"])?
            .map(|p| compile(&p, "after"))
            .transpose()?;
        let before = args
            .str(&["before"])?
            .map(|p| compile(&p, "before"))
            .transpose()?;
        let backup = args.bool("backup", false)?;
        let validate = args.str(&["validate"])?;
        let attrs = Attributes::from_args(&mut args)?;
        let _ = args.raw_any(&["encoding", "others"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        let mut count = 0;
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
            |current| {
                let (text, n) = apply(
                    current,
                    &pattern,
                    &replacement,
                    after.as_ref(),
                    before.as_ref(),
                );
                count = n;
                text
            },
        )
        .await
        .map_err(|e| match e {
            ModuleError::Failed(m) if m.contains("does not exist") => {
                ModuleError::Failed(format!("Path {path} does not exist !"))
            }
            other => other,
        })?;
        result.msg = Some(if result.changed && count > 0 {
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
        let (out, n) = apply(b"a=old\nb=old\n", &re, r"\1=new", None, None);
        assert_eq!((out.as_slice(), n), (&b"a=new\nb=new\n"[..], 2));
        assert_eq!(apply(&out, &re, r"\1=new", None, None).1, 0);
        let after = compile(r"\[server\]", "after").unwrap();
        let before = compile(r"\[client\]", "before").unwrap();
        let text = b"port=old\n[server]\nport=old\n[client]\nport=old\n";
        let re = compile(r"^port=old$", "regexp").unwrap();
        let (out, n) = apply(text, &re, "port=1", Some(&after), Some(&before));
        assert_eq!(n, 1);
        assert_eq!(out, b"port=old\n[server]\nport=1\n[client]\nport=old\n");
    }

    #[test]
    fn keeps_bytes_outside_the_matches() {
        let re = compile(r"port=\d+", "regexp").unwrap();
        let text = b"caf\xe9\r\nport=1\r\n";
        let (out, n) = apply(text, &re, "port=2", None, None);
        assert_eq!((out.as_slice(), n), (&b"caf\xe9\r\nport=2\r\n"[..], 1));
    }
}
