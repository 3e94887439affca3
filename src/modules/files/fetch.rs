//! `fetch`: a file from the target into a controller directory: `dest/<host>/<src path>`, or
//! with `flat` exactly `dest` (`dest/` plus the file's name when `dest` ends with `/`).
//!
//! The controller path comes from the task's `src`, `dest` and the host's inventory name
//! only, never from anything the target sends; `src` may not climb out of `dest/<host>` with
//! `..`. The copy is written atomically (a temporary file renamed over the old one).

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::util::{digest_hex, random_id, sha1_hex};

pub struct Fetch;

const IS_DIRECTORY: &str = "kiln-fetch: directory";
const MISSING: &str = "kiln-fetch: missing";

/// Prints the file's SHA-1 (40 hex digits and a newline), then its bytes; a directory or a
/// missing path says so on stderr and fails.
fn read_command(path: &str) -> String {
    let q = quote(path);
    format!(
        "if [ -d {q} ]; then echo '{IS_DIRECTORY}' >&2; false; elif [ ! -e {q} ]; then echo '{MISSING}' >&2; false; else sha1sum < {q} | cut -c1-40 && cat -- {q}; fi"
    )
}

/// Where the copy goes on the controller, or why `src`/`dest` cannot name a place there.
pub fn local_path(dest: &Path, host: &str, src: &str, flat: bool) -> Result<PathBuf, String> {
    if flat {
        let name = Path::new(src)
            .file_name()
            .ok_or_else(|| format!("src '{src}' names no file"))?;
        return Ok(if dest.to_string_lossy().ends_with('/') {
            dest.join(name)
        } else {
            dest.to_path_buf()
        });
    }
    if host.is_empty() || host.contains('/') || host == "." || host == ".." {
        return Err(format!("host name '{host}' cannot be a directory name"));
    }
    let mut path = dest.join(host);
    let mut depth = 0usize;
    for part in Path::new(src).components() {
        match part {
            Component::Normal(p) => {
                path.push(p);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                path.pop();
                depth -= 1;
            }
            Component::ParentDir => {
                return Err(format!("src '{src}' leaves the host's directory"));
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if depth == 0 {
        return Err(format!("src '{src}' names no file"));
    }
    Ok(path)
}

#[async_trait]
impl Module for Fetch {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let src = args.required_path(ctx, &["src"]).await?;
        let dest = args.required_controller_path(&["dest"])?;
        let flat = args.bool("flat", false)?;
        let fail_on_missing = args.bool("fail_on_missing", true)?;
        let validate_checksum = args.bool("validate_checksum", true)?;
        args.finish()?;
        let dest = if Path::new(&dest).is_absolute() {
            PathBuf::from(&dest)
        } else {
            // Relative to the playbook's directory, as Ansible's `path_dwim`.
            match ctx.search_paths.last() {
                Some(dir) => {
                    let mut joined = dir.join(&dest).into_os_string();
                    if dest.ends_with('/') {
                        joined.push("/");
                    }
                    PathBuf::from(joined)
                }
                None => PathBuf::from(&dest),
            }
        };
        let target = local_path(&dest, ctx.host, &src, flat)
            .map_err(|e| ModuleError::Failed(format!("fetch: {e}")))?;
        let out = ctx.run(&read_command(&src), None).await?;
        if out.rc != 0 {
            let err = out.stderr_text();
            let msg = if err.contains(IS_DIRECTORY) {
                "remote file is a directory, fetch cannot work on directories"
            } else if err.contains(MISSING) {
                "the remote file does not exist, not transferring, ignored"
            } else {
                return Err(ModuleError::Failed(format!(
                    "fetch: reading {src} failed: {}",
                    err.trim()
                )));
            };
            let result = ModuleResult::changed(false).with("file", src.as_str());
            if fail_on_missing {
                return Err(result.fail(msg));
            }
            return Ok(result.with_msg(msg));
        }
        let (remote_sum, content) = match out.stdout.split_at_checked(41) {
            Some((head, body)) if head[40] == b'\n' => {
                (String::from_utf8_lossy(&head[..40]).into_owned(), body)
            }
            _ => {
                return Err(ModuleError::Failed(format!(
                    "fetch: unexpected output reading {src}"
                )))
            }
        };
        let checksum = sha1_hex(content);
        if validate_checksum && checksum != remote_sum {
            return Err(ModuleError::Failed(
                "checksum mismatch: the file changed while it was being read".into(),
            ));
        }
        let before = std::fs::read(&target).ok();
        let changed = before.as_deref().map(sha1_hex).as_deref() != Some(checksum.as_str());
        if changed && !ctx.check_mode {
            write_atomically(&target, content).map_err(|e| {
                ModuleError::Failed(format!("fetch: writing {}: {e}", target.display()))
            })?;
        }
        let target_text = target.to_string_lossy().into_owned();
        Ok(ModuleResult::changed(changed)
            .with("checksum", checksum.as_str())
            .with("remote_checksum", remote_sum)
            .with("md5sum", digest_hex("md5", content).unwrap_or_default())
            .with("dest", target_text)
            .with("file", src.as_str())
            .with("remote_md5sum", minijinja::Value::from(())))
    }
}

/// Writes `content` to `path` through a temporary file beside it, creating its directories.
fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.kiln-{}", random_id()));
    std::fs::write(&temp, content)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_path_comes_from_the_task_only() {
        let dest = Path::new("/backup");
        assert_eq!(
            local_path(dest, "web1", "/etc/app.conf", false),
            Ok(PathBuf::from("/backup/web1/etc/app.conf"))
        );
        assert_eq!(
            local_path(dest, "web1", "/var/./log/../app.log", false),
            Ok(PathBuf::from("/backup/web1/var/app.log"))
        );
        assert!(local_path(dest, "web1", "/../../etc/passwd", false).is_err());
        assert!(local_path(dest, "web1", "/", false).is_err());
        assert!(local_path(dest, "../x", "/etc/motd", false).is_err());
        assert_eq!(
            local_path(Path::new("/b/"), "h", "/etc/motd", true),
            Ok(PathBuf::from("/b/motd"))
        );
        assert_eq!(
            local_path(Path::new("/b/copy"), "h", "/etc/motd", true),
            Ok(PathBuf::from("/b/copy"))
        );
    }
}
