//! `alternatives` (community.general): a Debian alternative registered (`update-alternatives
//! --install`), selected (`--set`), back on automatic (`--auto`) or removed, read with
//! `update-alternatives --query`.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Alternatives;

/// What `update-alternatives --query` says about a name.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub link: Option<String>,
    pub auto: bool,
    pub value: Option<String>,
    /// Registered paths and their priorities.
    pub alternatives: Vec<(String, i64)>,
}

pub fn parse_query(text: &str) -> Query {
    let mut query = Query::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "Link" => query.link = Some(value),
            "Status" => query.auto = value == "auto",
            "Value" if value != "none" => query.value = Some(value),
            "Alternative" => query.alternatives.push((value, 0)),
            "Priority" => {
                if let Some(last) = query.alternatives.last_mut() {
                    last.1 = value.parse().unwrap_or(0);
                }
            }
            _ => {}
        }
    }
    query
}

#[async_trait]
impl Module for Alternatives {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name"])?;
        let path = args.str(&["path"])?;
        let link = args.str(&["link"])?;
        let priority = args.int("priority")?.unwrap_or(50);
        let state = args.choice(
            "state",
            &["selected", "present", "auto", "absent"],
            "selected",
        )?;
        args.finish()?;
        let n = quote(&name);
        let out = ctx
            .run(&format!("LC_ALL=C update-alternatives --query {n}"), None)
            .await?;
        let query = if out.rc == 0 {
            parse_query(&out.stdout_text())
        } else {
            Query::default()
        };
        let registered = |p: &str| {
            query
                .alternatives
                .iter()
                .find(|(a, _)| a == p)
                .map(|(_, pr)| *pr)
        };
        let mut commands = Vec::new();
        if let Some(path) = &path {
            let p = quote(path);
            if state == "absent" {
                if registered(path).is_some() {
                    commands.push(format!("update-alternatives --remove {n} {p}"));
                }
            } else if registered(path) != Some(priority) {
                let link = link.clone().or(query.link.clone()).ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "alternatives: {name} is not registered yet, so link is required"
                    ))
                })?;
                commands.push(format!(
                    "update-alternatives --install {} {n} {p} {priority}",
                    quote(&link)
                ));
            }
        } else if state != "auto" {
            return Err(ModuleError::Args(format!(
                "alternatives: state is {state} but all of the following are missing: path"
            )));
        }
        match state.as_str() {
            "selected" if query.auto || query.value.as_deref() != path.as_deref() => {
                commands.push(format!(
                    "update-alternatives --set {n} {}",
                    quote(path.as_deref().unwrap_or_default())
                ));
            }
            "auto" if !query.auto || !commands.is_empty() => {
                commands.push(format!("update-alternatives --auto {n}"));
            }
            _ => {}
        }
        let changed = !commands.is_empty();
        if changed && !ctx.check_mode {
            ctx.run_ok(&commands.join(" && "), None, "update-alternatives")
                .await?;
        }
        Ok(ModuleResult::changed(changed)
            .with("name", name)
            .with("state", state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_lists_link_status_and_priorities() {
        let text = "Name: awk\nLink: /usr/bin/awk\nSlaves:\n awk.1.gz /usr/share/man/man1/awk.1.gz\nStatus: manual\nBest: /usr/bin/mawk\nValue: /usr/bin/gawk\n\nAlternative: /usr/bin/gawk\nPriority: 10\nSlaves:\n awk.1.gz /x\n\nAlternative: /usr/bin/mawk\nPriority: 5\n";
        assert_eq!(
            parse_query(text),
            Query {
                link: Some("/usr/bin/awk".into()),
                auto: false,
                value: Some("/usr/bin/gawk".into()),
                alternatives: vec![("/usr/bin/gawk".into(), 10), ("/usr/bin/mawk".into(), 5)],
            }
        );
        assert_eq!(parse_query("Status: auto\nValue: none\n").value, None);
    }
}
