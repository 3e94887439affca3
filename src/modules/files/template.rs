//! `template`: render a Jinja2 template on the controller and write it like `copy`.

use async_trait::async_trait;

use super::write::{converge_into, Attributes, WriteRequest};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Template;

#[async_trait]
impl Module for Template {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let src = args.required_controller_path(&["src"])?;
        let dest = args.required_path(ctx, &["dest"]).await?;
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
