//! `assemble`: one file from the fragments in a directory (on the target, or with
//! `remote_src: no` on the controller), in name order, written through the shared file
//! writer (attributes, `backup`, `validate`, `--diff`).

use std::path::Path;

use async_trait::async_trait;

use super::write::{converge, Attributes, WriteRequest};
use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Assemble;

/// Lists the regular files (links followed) directly in `dir`, each name NUL-terminated.
fn list_command(dir: &str) -> String {
    format!(
        "cd -- {} && for f in * .*; do [ -f \"$f\" ] && printf '%s\\0' \"$f\"; done; true",
        quote(dir)
    )
}

/// Prints each file's size on a line, then its bytes.
fn read_command(dir: &str, names: &[Vec<u8>]) -> String {
    let files: Vec<String> = names
        .iter()
        .map(|n| quote(&String::from_utf8_lossy(n)))
        .collect();
    format!(
        "cd -- {} && for f in {}; do wc -c < \"$f\" && cat -- \"$f\" || exit 1; done",
        quote(dir),
        files.join(" ")
    )
}

/// Splits `read_command`'s output into the files' contents.
fn split_sized(mut out: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut parts = Vec::new();
    while !out.is_empty() {
        let end = out.iter().position(|&b| b == b'\n')?;
        let size: usize = std::str::from_utf8(&out[..end]).ok()?.trim().parse().ok()?;
        let body = out.get(end + 1..end + 1 + size)?;
        parts.push(body.to_vec());
        out = &out[end + 1 + size..];
    }
    Some(parts)
}

/// The fragments of `names` worth assembling, in name (byte) order.
pub fn select(
    mut names: Vec<Vec<u8>>,
    regexp: Option<&regex::Regex>,
    ignore_hidden: bool,
) -> Vec<Vec<u8>> {
    names.sort();
    names.dedup();
    names.retain(|n| {
        let text = String::from_utf8_lossy(n);
        !(ignore_hidden && n.starts_with(b"."))
            && regexp.is_none_or(|r| r.is_match(&text))
            && n.as_slice() != b"."
            && n.as_slice() != b".."
    });
    names
}

/// Python's `codecs.escape_decode` for the usual escapes (`\n`, `\t`, `\\`, …).
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('\\') => out.push(b'\\'),
            Some('0') => out.push(0),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

/// The assembled file, as Ansible joins fragments: a newline after a fragment that lacks
/// one when another follows, and the delimiter (always followed by a newline) between them.
pub fn assemble(fragments: &[Vec<u8>], delimiter: Option<&str>) -> Vec<u8> {
    let delimiter = delimiter.filter(|d| !d.is_empty()).map(unescape);
    let mut out = Vec::new();
    for (i, fragment) in fragments.iter().enumerate() {
        if i > 0 {
            if !fragments[i - 1].ends_with(b"\n") {
                out.push(b'\n');
            }
            if let Some(d) = &delimiter {
                out.extend_from_slice(d);
                // Ansible compares the last byte with b'\n' as an int on Python 3, so a
                // newline always follows the delimiter.
                out.push(b'\n');
            }
        }
        out.extend_from_slice(fragment);
    }
    out
}

#[async_trait]
impl Module for Assemble {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let remote_src = args.bool("remote_src", true)?;
        let src = args
            .source_path(ctx, &["src"], remote_src)
            .await?
            .ok_or_else(|| args.missing("src"))?;
        let dest = args.required_path(ctx, &["dest"]).await?;
        let delimiter = args.str(&["delimiter"])?;
        let regexp = args.str(&["regexp"])?;
        let ignore_hidden = args.bool("ignore_hidden", false)?;
        let backup = args.bool("backup", false)?;
        let validate = args.str(&["validate"])?;
        args.ignore(&["decrypt"]);
        let attrs = Attributes::from_args(&mut args)?;
        args.finish()?;
        let regexp = regexp
            .map(|r| regex::Regex::new(&r))
            .transpose()
            .map_err(|e| ModuleError::Args(format!("assemble: invalid regexp: {e}")))?;
        let fragments = if remote_src {
            let listed = ctx.run(&list_command(&src), None).await?;
            if listed.rc != 0 {
                return Err(ModuleError::Failed(format!(
                    "Source ({src}) is not a directory"
                )));
            }
            let names: Vec<Vec<u8>> = listed
                .stdout
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            let names = select(names, regexp.as_ref(), ignore_hidden);
            if names.is_empty() {
                Vec::new()
            } else {
                let out = ctx
                    .run_ok(&read_command(&src, &names), None, "reading the fragments")
                    .await?;
                split_sized(&out.stdout).ok_or_else(|| {
                    ModuleError::Failed(format!("assemble: unexpected output reading {src}"))
                })?
            }
        } else {
            let dir = ctx
                .find_source(&src, "files")
                .filter(|p| p.is_dir())
                .ok_or_else(|| ModuleError::Failed(format!("Source ({src}) is not a directory")))?;
            local_fragments(&dir, regexp.as_ref(), ignore_hidden)
                .map_err(|e| ModuleError::Failed(format!("assemble: reading {src}: {e}")))?
        };
        let result = converge(
            ctx,
            WriteRequest {
                dest: dest.clone(),
                content: assemble(&fragments, delimiter.as_deref()),
                attrs,
                backup,
                validate,
                force: true,
                follow: false,
            },
        )
        .await?;
        Ok(result.with("dest", dest).with("src", src))
    }
}

/// The controller's fragments in `dir` (regular files, links followed).
fn local_fragments(
    dir: &Path,
    regexp: Option<&regex::Regex>,
    ignore_hidden: bool,
) -> std::io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.path().is_file() {
            names.push(entry.file_name().into_encoded_bytes());
        }
    }
    select(names, regexp, ignore_hidden)
        .into_iter()
        .map(|n| std::fs::read(dir.join(String::from_utf8_lossy(&n).as_ref())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_join_as_ansible_joins_them() {
        let f = |s: &str| s.as_bytes().to_vec();
        assert_eq!(assemble(&[f("a\n"), f("b"), f("c\n")], None), b"a\nb\nc\n");
        assert_eq!(assemble(&[f("a"), f("b\n")], Some("# --")), b"a\n# --\nb\n");
        assert_eq!(
            assemble(&[f("a\n"), f("b\n")], Some("--\\n")),
            b"a\n--\n\nb\n"
        );
        assert_eq!(assemble(&[], Some("x")), b"");
    }

    #[test]
    fn fragments_are_chosen_and_ordered_by_name() {
        let names = vec![
            b"20-b".to_vec(),
            b".hidden".to_vec(),
            b"10-a".to_vec(),
            b"x.bak".to_vec(),
        ];
        let re = regex::Regex::new("^[0-9.]").ok();
        assert_eq!(
            select(names.clone(), re.as_ref(), false),
            [b".hidden".to_vec(), b"10-a".to_vec(), b"20-b".to_vec()]
        );
        assert_eq!(select(names, None, true)[0], b"10-a");
        assert_eq!(
            split_sized(b"2\nab0\n3\nc\nd"),
            Some(vec![b"ab".to_vec(), Vec::new(), b"c\nd".to_vec()])
        );
        assert_eq!(split_sized(b"9\nab"), None);
    }
}
