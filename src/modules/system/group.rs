//! `group`: local groups through groupadd/groupmod/groupdel.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Group;

#[async_trait]
impl Module for Group {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let gid = args.int("gid")?;
        let system = args.bool("system", false)?;
        let non_unique = args.bool("non_unique", false)?;
        // groupdel -f removes a group even when it is a user's primary group.
        let force = args.bool("force", false)?;
        let local = args.bool("local", false)?;
        let gid_min = args.int("gid_min")?;
        let gid_max = args.int("gid_max")?;
        args.finish()?;
        if local {
            // Ansible's local groups go through libuser, which has no gid range.
            for (option, given) in [("gid_min", gid_min), ("gid_max", gid_max)] {
                if given.is_some() {
                    return Err(ModuleError::Failed(format!(
                        "'{option}' can not be used with 'local'"
                    )));
                }
            }
        }
        if non_unique && gid.is_none() {
            return Err(ModuleError::Args(
                "non_unique is True but all of the following are missing: gid".into(),
            ));
        }
        let q = quote(&name);
        let line = ctx
            .run(&format!("getent group {q}; true"), None)
            .await?
            .stdout_text();
        let current_gid: Option<i64> = line
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[0] == name)
            .and_then(|f| f[2].parse().ok());
        let command = match (state.as_str(), current_gid) {
            ("absent", Some(_)) if force => Some(format!("groupdel -f {q}")),
            ("absent", Some(_)) => Some(format!("groupdel {q}")),
            ("absent", None) => None,
            (_, None) => {
                let mut cmd = String::from("groupadd");
                if let Some(g) = gid {
                    cmd.push_str(&format!(" -g {g}"));
                    if non_unique {
                        cmd.push_str(" -o");
                    }
                }
                if system {
                    cmd.push_str(" -r");
                }
                // A new group's gid is picked from this range, as login.defs' own keys.
                if let Some(min) = gid_min {
                    cmd.push_str(&format!(" -K GID_MIN={min}"));
                }
                if let Some(max) = gid_max {
                    cmd.push_str(&format!(" -K GID_MAX={max}"));
                }
                Some(format!("{cmd} {q}"))
            }
            (_, Some(current)) => match gid {
                Some(g) if g != current => Some(format!(
                    "groupmod -g {g}{} {q}",
                    if non_unique { " -o" } else { "" }
                )),
                _ => None,
            },
        };
        if let (Some(cmd), false) = (&command, ctx.check_mode) {
            ctx.run_ok(cmd, None, &format!("group {name}")).await?;
        }
        let mut result = ModuleResult::changed(command.is_some())
            .with("name", name.as_str())
            .with("state", state.as_str());
        if state == "present" {
            let now = if command.is_some() && !ctx.check_mode {
                ctx.run(&format!("getent group {q} | cut -d: -f3"), None)
                    .await?
                    .stdout_text()
                    .trim()
                    .parse::<i64>()
                    .ok()
            } else {
                current_gid.or(gid)
            };
            if let Some(g) = now {
                result = result.with("gid", g);
            }
            result = result.with("system", system);
        }
        Ok(result)
    }
}
