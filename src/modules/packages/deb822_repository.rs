//! `deb822_repository`: an apt source in deb822 form, `/etc/apt/sources.list.d/<name>.sources`.
//! Like Ansible's, it does not update the cache (follow it with `apt: update_cache=yes`).

use async_trait::async_trait;

use crate::modules::files::write::remove_file;
use crate::modules::files::write::{converge, Attributes, WriteRequest};
use crate::modules::util::Mode;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Deb822Repository;

/// The file name Ansible derives from `name`.
pub fn file_stem(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A field's value in deb822: continuation lines indented, blank ones as ` .`.
fn field(name: &str, value: &str) -> String {
    let mut lines = value.trim_end().lines();
    let mut out = format!("{name}: {}\n", lines.next().unwrap_or_default());
    for line in lines {
        if line.trim().is_empty() {
            out.push_str(" .\n");
        } else {
            out.push_str(&format!(" {line}\n"));
        }
    }
    out
}

#[async_trait]
impl Module for Deb822Repository {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let mut content = format!("X-Repolib-Name: {name}\n");
        let list_fields: &[(&str, &str)] = &[
            ("types", "Types"),
            ("uris", "URIs"),
            ("suites", "Suites"),
            ("components", "Components"),
            ("architectures", "Architectures"),
            ("languages", "Languages"),
            ("targets", "Targets"),
        ];
        for (option, key) in list_fields {
            let mut values = args.list(&[option])?;
            if *option == "types" && values.is_empty() {
                values.push("deb".into());
            }
            if !values.is_empty() {
                content.push_str(&field(key, &values.join(" ")));
            }
        }
        let flags: &[(&str, &str)] = &[
            ("enabled", "Enabled"),
            ("trusted", "Trusted"),
            ("allow_insecure", "Allow-Insecure"),
            ("allow_weak", "Allow-Weak"),
            ("allow_downgrade_to_insecure", "Allow-Downgrade-To-Insecure"),
            ("check_valid_until", "Check-Valid-Until"),
            ("pdiffs", "PDiffs"),
            ("by_hash", "By-Hash"),
            ("inrelease_path", "InRelease-Path"),
        ];
        for (option, key) in flags {
            if let Some(v) = args.raw(option) {
                let text = match crate::modules::args::parse_bool(&v) {
                    Some(true) => "yes".to_string(),
                    Some(false) => "no".to_string(),
                    None => v.to_string(),
                };
                content.push_str(&field(key, &text));
            }
        }
        if let Some(signed_by) = args.str(&["signed_by"])? {
            if signed_by.starts_with("http://") || signed_by.starts_with("https://") {
                return Err(ModuleError::Args(
                    "deb822_repository: signed_by as a URL is not supported by kiln; give a key file path or the key itself".into(),
                ));
            }
            content.push_str(&field("Signed-By", &signed_by));
        }
        let mode = match args.raw("mode") {
            Some(v) => crate::modules::util::parse_mode(&v)
                .map_err(|e| ModuleError::Args(format!("deb822_repository: {e}")))?,
            None => Mode::Octal(0o644),
        };
        let _ = args.raw_any(&["install_python_debian"]);
        args.finish()?;
        if state == "present" && !content.contains("\nURIs:") {
            return Err(ModuleError::Args(
                "deb822_repository: uris is required with state=present".into(),
            ));
        }
        let dest = format!("/etc/apt/sources.list.d/{}.sources", file_stem(&name));
        let result = if state == "absent" {
            remove_file(ctx, &dest).await?
        } else {
            converge(
                ctx,
                WriteRequest {
                    dest: dest.clone(),
                    content: content.into_bytes(),
                    attrs: Attributes {
                        mode: Some(mode),
                        ..Default::default()
                    },
                    backup: false,
                    validate: None,
                    force: true,
                    follow: false,
                },
            )
            .await?
        };
        Ok(result.with("dest", dest).with("repo", name))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn multi_line_fields() {
        assert_eq!(
            super::field("Signed-By", "-----BEGIN-----\n\nabc\n-----END-----\n"),
            "Signed-By: -----BEGIN-----\n .\n abc\n -----END-----\n"
        );
        assert_eq!(super::file_stem("Docker CE"), "docker-ce");
    }
}
