//! `unarchive`: a tar (any compression GNU tar reads) or zip archive unpacked into a
//! directory — from the controller (uploaded to a temporary file) or already on the target
//! (`remote_src`). Idempotent through `tar --diff` (zip: every member present); `creates`
//! skips the work outright.

use async_trait::async_trait;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::{quote, quote_all};

pub struct Unarchive;

fn is_zip(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".zip") || lower.ends_with(".jar") || lower.ends_with(".war")
}

/// `tar --diff` lines that matter: ownership or mode differences are ignored when the task
/// sets them itself (they are then applied after extraction).
pub fn significant_differences(diff: &str, own: bool, mode: bool) -> Vec<String> {
    diff.lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !(own && (l.ends_with("Uid differs") || l.ends_with("Gid differs"))))
        .filter(|l| !(mode && l.ends_with("Mode differs")))
        .map(str::to_string)
        .collect()
}

#[async_trait]
impl Module for Unarchive {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let remote_src = args.bool("remote_src", false)? || !args.bool("copy", true)?;
        let src = args
            .source_path(ctx, &["src"], remote_src)
            .await?
            .ok_or_else(|| args.missing("src"))?;
        let dest = args.required_path(ctx, &["dest"]).await?;
        let creates = args.path(ctx, &["creates"]).await?;
        let list_files = args.bool("list_files", false)?;
        let extra_opts = args.list(&["extra_opts"])?;
        let exclude = args.list(&["exclude"])?;
        let include = args.list(&["include"])?;
        let keep_newer = args.bool("keep_newer", false)?;
        let owner = args.str(&["owner"])?;
        let group = args.str(&["group"])?;
        let mode = args.str(&["mode"])?;
        let _ = args.raw_any(&["validate_certs", "decrypt", "io_buffer_size"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        if src.starts_with("http://") || src.starts_with("https://") {
            return Err(ModuleError::Args(
                "unarchive: URLs as src are not supported by kiln; download with get_url first, then use remote_src: yes".into(),
            ));
        }
        if let Some(path) = &creates {
            let there = ctx
                .run(&format!("[ -e {} ] && echo yes; true", quote(path)), None)
                .await?
                .stdout_text()
                .contains("yes");
            if there {
                return Ok(ModuleResult::changed(false)
                    .with_msg(format!("skipped, since {path} exists"))
                    .with("dest", dest));
            }
        }
        let d = quote(&dest);
        let dest_ok = ctx
            .run(&format!("[ -d {d} ] && [ -w {d} ] && echo ok; true"), None)
            .await?
            .stdout_text()
            .contains("ok");
        if !dest_ok && ctx.check_mode {
            // An earlier task (`file: state=directory`) would have created it.
            return Ok(ModuleResult::changed(true).with_msg(format!(
                "{dest} not found; assuming an earlier task would create it"
            )));
        }
        if !dest_ok {
            return Err(ModuleError::Failed(format!(
                "dest '{dest}' must be an existing dir"
            )));
        }
        // The archive on the target: as given, or uploaded to a temporary file.
        let (archive, uploaded) = if remote_src {
            (src.clone(), false)
        } else {
            let local = ctx.find_source(&src, "files").ok_or_else(|| {
                ModuleError::Failed(format!(
                    "Could not find or access '{src}' on the controller"
                ))
            })?;
            let bytes = std::fs::read(&local).map_err(|e| {
                ModuleError::Failed(format!("cannot read {}: {e}", local.display()))
            })?;
            let out = ctx
                .run_ok(
                    "t=$(mktemp /tmp/.kiln-unarchive.XXXXXX) && cat > \"$t\" && echo \"$t\"",
                    Some(bytes),
                    "uploading the archive",
                )
                .await?;
            (out.stdout_text().trim().to_string(), true)
        };
        let a = quote(&archive);
        let zip = is_zip(&src);
        let mut filters = String::new();
        for pattern in &exclude {
            filters.push_str(&format!(" --exclude={}", quote(pattern)));
        }
        let members = if include.is_empty() {
            String::new()
        } else {
            format!(" {}", quote_all(&include))
        };
        let (list, compare, extract) = if zip {
            (
                format!("unzip -Z1 {a}{members}"),
                format!("cd {d} && unzip -Z1 {a}{members} | while IFS= read -r m; do [ -e \"$m\" ] || echo \"$m: missing\"; done"),
                format!("unzip -o {} {a}{members} -d {d}", quote_all(&extra_opts)),
            )
        } else {
            let extra = extra_opts
                .iter()
                .map(|o| format!(" {}", quote(o)))
                .collect::<String>();
            let newer = if keep_newer {
                " --keep-newer-files"
            } else {
                ""
            };
            (
                format!("tar -tf {a}{filters}{members}"),
                format!("tar -C {d} -df {a}{filters}{members} 2>&1; true"),
                format!("tar -C {d} -xf {a}{newer}{filters}{extra}{members}"),
            )
        };
        let check_tool = if zip {
            let message = format!(
                "Failed to find handler for \"{src}\". Make sure the required command to extract the file is installed.\nUnable to find required 'unzip' or 'zipinfo' binary in the path."
            );
            format!(
                "command -v unzip >/dev/null && command -v zipinfo >/dev/null || {{ printf '%s\\n' {} >&2; exit 3; }}; ",
                quote(&message)
            )
        } else {
            String::new()
        };
        let outcome = async {
            let diff = ctx.run(&format!("{check_tool}{compare}"), None).await?;
            if diff.rc == 3 {
                return Err(ModuleError::Failed(diff.stderr_text().trim().to_string()));
            }
            let mut changes = significant_differences(&diff.stdout_text(), owner.is_some() || group.is_some(), mode.is_some());
            if changes.iter().any(|l| l.contains("This does not look like a tar archive") || l.contains("Error is not recoverable")) {
                return Err(ModuleError::Failed(format!(
                    "Failed to find handler for \"{src}\": {}",
                    changes.join("; ")
                )));
            }
            // Ownership and mode asked for: anything under the members not yet so is a change.
            let mut attr_fix = Vec::new();
            let member_list = format!("cd {d} && {list} 2>/dev/null | while IFS= read -r m; do [ -e \"$m\" ] && printf '%s\\0' \"$m\"; done");
            let mut conditions = Vec::new();
            if let Some(o) = &owner {
                conditions.push(format!("! -user {}", quote(o)));
                attr_fix.push(format!("xargs -0 chown -h {} --", quote(o)));
            }
            if let Some(g) = &group {
                conditions.push(format!("! -group {}", quote(g)));
                attr_fix.push(format!("xargs -0 chgrp -h {} --", quote(g)));
            }
            if let Some(m) = &mode {
                // chmod would follow a link among the members (the archive's or one planted
                // in dest) to whatever it names: links are left out.
                attr_fix.push(format!(
                    "xargs -0 sh -c 'find \"$@\" -maxdepth 0 ! -type l -exec chmod {} -- {{}} +' sh",
                    quote(m).replace('\'', "'\\''")
                ));
                // An octal mode is checked exactly; a symbolic one is applied on extraction.
                if m.bytes().all(|b| b.is_ascii_digit()) {
                    conditions.push(format!("\\( ! -type l ! -perm {m} \\)"));
                }
            }
            let attrs_differ = if conditions.is_empty() || !changes.is_empty() {
                false
            } else {
                !ctx.run(&format!("{member_list} | xargs -0 -r sh -c 'find \"$@\" -maxdepth 0 \\( {} \\) -print' sh | head -n1", conditions.join(" -o ")), None)
                    .await?
                    .stdout_text()
                    .trim()
                    .is_empty()
            };
            if attrs_differ {
                changes.push("attributes differ".into());
            }
            let changed = !changes.is_empty();
            if changed && !ctx.check_mode {
                ctx.run_ok(&extract, None, "unpacking the archive").await?;
                for fix in &attr_fix {
                    ctx.run_ok(&format!("{member_list} | {fix}"), None, "setting attributes").await?;
                }
            }
            let mut result = ModuleResult::changed(changed);
            if list_files {
                let files: Vec<String> = ctx.run(&list, None).await?.stdout_text().lines().map(str::to_string).collect();
                result = result.with("files", files);
            }
            Ok(result
                .with("dest", dest.as_str())
                .with("src", src.as_str())
                .with("handler", if zip { "ZipArchive" } else { "TgzArchive" }))
        }
        .await;
        if uploaded {
            let _ = ctx.run(&format!("rm -f {a}"), None).await;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ownership_differences_ignored_when_the_task_sets_them() {
        let diff = "app/: Uid differs\napp/a: Mode differs\napp/b: Contents differ\n";
        assert_eq!(
            super::significant_differences(diff, true, true),
            vec!["app/b: Contents differ"]
        );
        assert_eq!(super::significant_differences(diff, false, false).len(), 3);
        assert!(super::is_zip("x.ZIP"));
    }
}
