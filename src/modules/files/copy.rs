//! `copy`: put content (`content:`) or a controller file (`src:`) on the target, or copy a
//! file already there (`remote_src: true`).

use async_trait::async_trait;

use super::copy_dir::DirCopy;
use super::write::{converge_into, probe, Attributes, WriteRequest};
use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Copy;

/// The exit status of copy's remote read when `src` is a directory.
const IS_DIRECTORY: i32 = 3;

#[async_trait]
impl Module for Copy {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let remote_src = args.bool("remote_src", false)?;
        let dest = args.required_path(ctx, &["dest"]).await?;
        let src = args.source_path(ctx, &["src"], remote_src).await?;
        let content = args.raw("content");
        let backup = args.bool("backup", false)?;
        let force = args.bool("force", true)?;
        let validate = args.str(&["validate"])?;
        // The mode as given, for a remote directory's top (the file module reads it).
        let mode = args.raw("mode");
        let attrs = Attributes::from_args(&mut args)?;
        let follow = args.bool("follow", false)?;
        let decrypt = args.bool("decrypt", true)?;
        let directory_mode = args.raw("directory_mode");
        let _ = args.raw_any(&["local_follow", "checksum"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;

        let dir_copy = |src| DirCopy {
            src,
            dest: &dest,
            attrs: &attrs,
            directory_mode: directory_mode.clone(),
            force,
        };
        let bytes = match (&src, &content) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "copy: parameters are mutually exclusive: content|src".into(),
                ))
            }
            (None, None) => {
                return Err(ModuleError::Args(
                    "copy: one of the following is required: src, content".into(),
                ))
            }
            (None, Some(content)) => match content.as_str() {
                Some(s) => s.as_bytes().to_vec(),
                // Ansible writes non-string content as JSON.
                None => serde_json::to_string(&content)
                    .unwrap_or_default()
                    .into_bytes(),
            },
            (Some(src), None) if remote_src => {
                // A directory answers 3 instead of its content (one round trip either way).
                let q = quote(src);
                let read = format!("if [ -d {q} ]; then exit {IS_DIRECTORY}; fi; cat {q}");
                let out = ctx.run(&read, None).await?;
                if out.rc == IS_DIRECTORY {
                    return dir_copy(src).on_target(ctx, mode).await;
                }
                if out.rc != 0 {
                    let stderr = out.stderr_text();
                    return Err(ModuleError::Failed(
                        if stderr.contains("No such file or directory") {
                            format!("Source {src} not found")
                        } else {
                            format!("reading {src} failed (rc={}): {}", out.rc, stderr.trim())
                        },
                    ));
                }
                out.stdout
            }
            (Some(src), None) => {
                let path = ctx.find_source(src, "files").ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "Could not find or access '{src}' on the controller (searched {})",
                        ctx.search_paths
                            .iter()
                            .map(|p| p.join("files").display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                if path.is_dir() {
                    return dir_copy(src).from_controller(ctx, &path, decrypt).await;
                }
                crate::vault::read_source(&path, decrypt)
                    .map_err(|e| ModuleError::Failed(e.to_string()))?
            }
        };
        let name = src
            .as_deref()
            .and_then(|s| s.trim_end_matches('/').rsplit('/').next())
            .unwrap_or("content")
            .to_string();
        let mut dest = dest;
        if dest.ends_with('/') {
            dest = format!("{}/{name}", dest.trim_end_matches('/'));
        }
        if !force {
            let (mut state, _) = probe(ctx, &dest, None).await?;
            if state.kind == "directory" {
                dest = format!("{dest}/{name}");
                state = probe(ctx, &dest, None).await?.0;
            }
            if state.exists {
                return Ok(ModuleResult::changed(false).with("dest", dest.as_str()));
            }
        }
        // An existing directory at `dest` receives the file under its own name.
        let mut result = converge_into(
            ctx,
            WriteRequest {
                dest,
                content: bytes,
                attrs,
                backup,
                validate,
                force,
                follow,
            },
            Some(&name),
        )
        .await?;
        if let Some(src) = src {
            result.data.insert("src".into(), src.into());
        }
        Ok(result)
    }
}
