//! `modprobe` (community.general): a kernel module loaded or unloaded now (`/proc/modules`,
//! `modules.builtin`), and with `persistent` listed in `/etc/modules-load.d` with its
//! options in `/etc/modprobe.d` (written through the shared file writer).

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::write::{converge, WriteRequest};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Modprobe;

/// What the probe saw: whether the module is in the kernel, and the configuration files
/// that already say what `persistent` wants or that mention the module at all.
#[derive(Debug, Default, PartialEq)]
pub struct Observed {
    pub loaded: bool,
    pub builtin: bool,
    /// modules-load.d files listing the module.
    pub listed_in: Vec<String>,
    /// modprobe.d files holding exactly the wanted `options` line.
    pub options_in: Vec<String>,
    /// modprobe.d files holding any `options` line for the module.
    pub any_options_in: Vec<String>,
}

/// Module names are letters, digits, `-` and `_` (which the kernel treats as one).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One command reading everything `plan` needs, as `key:value` lines.
fn probe_command(name: &str, options_line: &str) -> String {
    let kernel_name = name.replace('-', "_");
    let file_name = format!("/{kernel_name}.ko");
    let dashed = format!("/{}.ko", name.replace('_', "-"));
    format!(
        "awk '{{print \"loaded:\" $1}}' /proc/modules 2>/dev/null | grep -Fx {loaded}; \
         grep -Fe {file_name} -e {dashed} /lib/modules/\"$(uname -r)\"/modules.builtin >/dev/null 2>&1 && echo builtin; \
         grep -Flx -- {name_q} /etc/modules-load.d/*.conf 2>/dev/null | sed 's/^/listed:/'; \
         grep -Flx -- {options} /etc/modprobe.d/*.conf 2>/dev/null | sed 's/^/options:/'; \
         grep -El '^[[:space:]]*options[[:space:]]+{name}([[:space:]]|$)' /etc/modprobe.d/*.conf 2>/dev/null | sed 's/^/any-options:/'; true",
        loaded = quote(&format!("loaded:{kernel_name}")),
        file_name = quote(&file_name),
        dashed = quote(&dashed),
        name_q = quote(name),
        options = quote(options_line),
    )
}

pub fn parse(text: &str) -> Observed {
    let mut seen = Observed::default();
    for line in text.lines() {
        if line.starts_with("loaded:") {
            seen.loaded = true;
        } else if line == "builtin" {
            seen.builtin = true;
        } else if let Some(f) = line.strip_prefix("listed:") {
            seen.listed_in.push(f.to_string());
        } else if let Some(f) = line.strip_prefix("any-options:") {
            seen.any_options_in.push(f.to_string());
        } else if let Some(f) = line.strip_prefix("options:") {
            seen.options_in.push(f.to_string());
        }
    }
    seen
}

#[async_trait]
impl Module for Modprobe {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let present = args.choice("state", &["present", "absent"], "present")? == "present";
        let params = args.str(&["params"])?.unwrap_or_default();
        let persistent =
            args.choice("persistent", &["disabled", "absent", "present"], "disabled")?;
        args.finish()?;
        if !valid_name(&name) {
            return Err(ModuleError::Args(format!(
                "modprobe: '{name}' is not a kernel module name"
            )));
        }
        let params = params.split_whitespace().collect::<Vec<_>>().join(" ");
        let options_line = format!("options {name} {params}");
        let out = ctx
            .run_ok(
                &probe_command(&name, &options_line),
                None,
                "reading the kernel modules",
            )
            .await?;
        let seen = parse(&out.stdout_text());
        let mut result = ModuleResult::changed(false);

        let load = if present && !seen.loaded && !seen.builtin {
            let words: Vec<String> = params.split_whitespace().map(quote).collect();
            Some(format!("modprobe -- {} {}", quote(&name), words.join(" ")))
        } else if !present && seen.builtin {
            return Err(ModuleError::Failed(format!(
                "modprobe: {name} is built into the kernel and cannot be unloaded"
            )));
        } else if !present && seen.loaded {
            Some(format!("modprobe -r -- {}", quote(&name)))
        } else {
            None
        };
        if let Some(command) = load {
            result.changed = true;
            if !ctx.check_mode {
                ctx.run_ok(&command, None, "modprobe").await?;
            }
        }

        let mut writes = Vec::new();
        match persistent.as_str() {
            "present" if present => {
                if seen.listed_in.is_empty() {
                    writes.push((
                        format!("/etc/modules-load.d/{name}.conf"),
                        format!("{name}\n"),
                    ));
                }
                if !params.is_empty() && seen.options_in.is_empty() {
                    writes.push((
                        format!("/etc/modprobe.d/{name}.conf"),
                        format!("{options_line}\n"),
                    ));
                }
            }
            "absent" => {
                let mut edits = Vec::new();
                for file in &seen.listed_in {
                    edits.push(format!("sed -i -e '/^{name}$/d' -- {}", quote(file)));
                }
                for file in &seen.any_options_in {
                    edits.push(format!(
                        "sed -i -E -e '/^[[:space:]]*options[[:space:]]+{name}([[:space:]]|$)/d' -- {}",
                        quote(file)
                    ));
                }
                if !edits.is_empty() {
                    result.changed = true;
                    if !ctx.check_mode {
                        ctx.run_ok(
                            &edits.join(" && "),
                            None,
                            "removing the module's configuration",
                        )
                        .await?;
                    }
                }
            }
            _ => {}
        }
        for (path, content) in writes {
            let written = converge(ctx, WriteRequest::config_file(path, content)).await?;
            result.changed |= written.changed;
            result.diffs.extend(written.diffs);
        }
        Ok(result
            .with("name", name)
            .with("params", params)
            .with("state", if present { "present" } else { "absent" }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_read_by_its_prefixes() {
        let seen = parse(
            "loaded:br_netfilter\nlisted:/etc/modules-load.d/k8s.conf\noptions:/etc/modprobe.d/a.conf\nany-options:/etc/modprobe.d/a.conf\n",
        );
        assert!(seen.loaded && !seen.builtin);
        assert_eq!(seen.listed_in, ["/etc/modules-load.d/k8s.conf"]);
        assert_eq!(seen.options_in, ["/etc/modprobe.d/a.conf"]);
        assert_eq!(seen.any_options_in, ["/etc/modprobe.d/a.conf"]);
        assert!(parse("builtin\n").builtin);
        assert_eq!(parse(""), Observed::default());
    }

    #[test]
    fn names_reaching_a_regex_are_plain() {
        assert!(valid_name("br_netfilter"));
        assert!(valid_name("nf-conntrack"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name("x/../y"));
        assert!(!valid_name(""));
    }
}
