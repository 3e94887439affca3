//! `timezone` (community.general): the system time zone as Debian keeps it, `/etc/localtime`
//! a link into `/usr/share/zoneinfo` and the name in `/etc/timezone` (`timedatectl` under
//! systemd, which writes the same link).

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Timezone;

const ZONEINFO: &str = "/usr/share/zoneinfo/";

/// The zone `/etc/localtime`'s link names (`../usr/share/zoneinfo/Europe/Berlin`).
pub fn zone_of_link(target: &str) -> Option<&str> {
    target
        .find("zoneinfo/")
        .map(|at| &target[at + "zoneinfo/".len()..])
        .filter(|z| !z.is_empty())
}

/// Zone names are paths under zoneinfo without `..` or a leading `/`.
fn valid_zone(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

#[async_trait]
impl Module for Timezone {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        args.finish()?;
        if !valid_zone(&name) {
            return Err(ModuleError::Args(format!(
                "timezone: '{name}' is not a time zone name"
            )));
        }
        let zone_file = format!("{ZONEINFO}{name}");
        let out = ctx
            .run(
                &format!(
                    "echo \"link:$(readlink /etc/localtime 2>/dev/null)\"; echo \"file:$(cat /etc/timezone 2>/dev/null)\"; [ -f {} ] && echo known; [ -d /run/systemd/system ] && command -v timedatectl >/dev/null && echo systemd; true",
                    quote(&zone_file)
                ),
                None,
            )
            .await?
            .stdout_text();
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if !out.lines().any(|l| l == "known") {
            return Err(ModuleError::Failed(format!(
                "timezone: given timezone \"{name}\" is not available (no {zone_file})"
            )));
        }
        let link = field("link:");
        let before = zone_of_link(&link).unwrap_or("").to_string();
        let file = field("file:");
        let changed = before != name || file != name;
        let mut result = ModuleResult::changed(changed);
        if changed {
            if ctx.diff {
                result
                    .diffs
                    .push(Diff::setting("timezone", "name", &before, &name));
            }
            if !ctx.check_mode {
                let q = quote(&name);
                let mut command = format!(
                    "ln -sfn {} /etc/localtime && printf '%s\\n' {q} > /etc/timezone",
                    quote(&zone_file)
                );
                if out.lines().any(|l| l == "systemd") {
                    command = format!("timedatectl set-timezone {q} && {command}");
                }
                ctx.run_ok(&command, None, "setting the time zone").await?;
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_come_from_the_link_and_names_stay_under_zoneinfo() {
        assert_eq!(
            zone_of_link("/usr/share/zoneinfo/Europe/Berlin"),
            Some("Europe/Berlin")
        );
        assert_eq!(zone_of_link("../usr/share/zoneinfo/UTC"), Some("UTC"));
        assert_eq!(zone_of_link("/etc/other"), None);
        assert!(valid_zone("America/Argentina/Buenos_Aires"));
        assert!(!valid_zone("../../etc/passwd"));
        assert!(!valid_zone("/etc/passwd"));
        assert!(!valid_zone(""));
    }
}
