//! `template`: render a Jinja2 template on the controller and write it like `copy`.

use async_trait::async_trait;

use super::write::{converge_into, Attributes, WriteRequest};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Template;

#[async_trait]
impl Module for Template {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let src = args.required_str(&["src"])?;
        let dest = args.required_str(&["dest"])?;
        let backup = args.bool("backup", false)?;
        let force = args.bool("force", true)?;
        let validate = args.str(&["validate"])?;
        let attrs = Attributes::from_args(&mut args)?;
        let newline = args.str(&["newline_sequence"])?;
        let follow = args.bool("follow", false)?;
        let _ = args.raw_any(&["trim_blocks", "lstrip_blocks", "output_encoding"]);
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;

        let path = ctx.find_source(&src, "templates").ok_or_else(|| {
            ModuleError::Failed(format!(
                "Could not find or access '{src}' (searched {})",
                ctx.search_paths
                    .iter()
                    .map(|p| p.join("templates").display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let text = crate::vault::read_file(&path)
            .map_err(|e| ModuleError::Failed(e.to_string()))
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    ModuleError::Failed(format!("could not read {}: not UTF-8", path.display()))
                })
            })?;
        let scope = ctx.scope.with_layer(std::sync::Arc::new(
            [
                (
                    "template_path".to_string(),
                    minijinja::Value::from(path.display().to_string()),
                ),
                (
                    "template_host".to_string(),
                    minijinja::Value::from(ctx.host),
                ),
                (
                    "ansible_managed".to_string(),
                    minijinja::Value::from("Ansible managed"),
                ),
            ]
            .into_iter()
            .chain(template_file_vars(&path))
            .collect(),
        ));
        let mut rendered = ctx
            .scope
            .templar()
            .render_file(&text, &path, &scope)
            .map_err(|e| {
                ModuleError::Failed(format!(
                    "AnsibleError: template error while templating {}",
                    e.message
                ))
            })?;
        if let Some(nl) = newline {
            let nl = nl.replace("\\r", "\r").replace("\\n", "\n");
            rendered = rendered.replace('\n', &nl);
        }
        // An existing directory at `dest` receives the file under the template's own name
        // (`.j2` included, as Ansible does).
        let name = src.rsplit('/').next().unwrap_or_default();
        let mut result = converge_into(
            ctx,
            WriteRequest {
                dest,
                content: rendered.into_bytes(),
                attrs,
                backup,
                validate,
                force,
                follow,
            },
            Some(name),
        )
        .await?;
        result.data.insert("src".into(), src.into());
        Ok(result)
    }
}

/// What Ansible tells a template about its own file: `template_fullpath`, `template_uid`
/// (the owner's name where the controller knows it), `template_mtime` and
/// `template_run_date` (as Python prints a datetime).
fn template_file_vars(path: &std::path::Path) -> Vec<(String, minijinja::Value)> {
    use std::os::unix::fs::MetadataExt;
    let fullpath = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut vars = vec![
        (
            "template_fullpath".to_string(),
            minijinja::Value::from(fullpath.display().to_string()),
        ),
        (
            "template_run_date".to_string(),
            minijinja::Value::from(python_datetime(std::time::SystemTime::now())),
        ),
    ];
    if let Ok(meta) = std::fs::metadata(path) {
        let owner = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|passwd| {
                passwd.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split(':').collect();
                    (fields.get(2) == Some(&meta.uid().to_string().as_str()))
                        .then(|| fields[0].to_string())
                })
            });
        vars.push((
            "template_uid".to_string(),
            owner.map_or_else(
                || minijinja::Value::from(meta.uid()),
                minijinja::Value::from,
            ),
        ));
        if let Ok(mtime) = meta.modified() {
            vars.push((
                "template_mtime".to_string(),
                minijinja::Value::from(python_datetime(mtime)),
            ));
        }
    }
    vars
}

/// `2026-11-30 12:23:04.123456` (UTC), as Python's `str()` of a datetime.
fn python_datetime(at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let t = crate::clock::UtcTime::from_epoch(since.as_secs() as i64);
    let micros = since.subsec_micros();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{fraction}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod file_vars_tests {
    use super::*;

    #[test]
    fn a_template_is_told_about_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.j2");
        std::fs::write(&path, "x").unwrap();
        let vars: std::collections::HashMap<String, minijinja::Value> =
            template_file_vars(&path).into_iter().collect();
        assert_eq!(
            vars["template_fullpath"].to_string(),
            path.display().to_string()
        );
        for name in ["template_uid", "template_mtime", "template_run_date"] {
            assert!(vars.contains_key(name), "{name}");
        }
        let epoch = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_500_000);
        assert_eq!(python_datetime(epoch), "1970-01-01 00:00:01.500000");
    }
}
