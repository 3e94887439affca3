//! `debconf`: a package's debconf answer (`debconf-show` to read, `debconf-set-selections`
//! on stdin to write, so answers and passwords never reach argv).

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Debconf;

const VTYPES: &[&str] = &[
    "string",
    "password",
    "boolean",
    "select",
    "multiselect",
    "note",
    "error",
    "title",
    "text",
    "seen",
];

/// What a password answer shows as in results and diffs.
const HIDDEN: &str = "********";

/// `debconf-show`'s lines (`* name: value`, `  name: value`) as a map.
pub fn parse_show(text: &str) -> IndexMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(['*', ' ']);
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// The value debconf stores for an answer: booleans as `true`/`false`.
fn normalise(vtype: &str, value: &str) -> String {
    if vtype == "boolean" {
        match crate::value::parse_bool(value) {
            Some(b) => b.to_string(),
            None => value.to_lowercase(),
        }
    } else {
        value.to_string()
    }
}

/// Whether the stored answer differs from the wanted one (multiselect answers compare as
/// sets of `, `-separated choices).
pub fn differs(vtype: &str, stored: Option<&str>, wanted: &str) -> bool {
    match stored {
        None => true,
        Some(stored) if vtype == "multiselect" => {
            let set = |s: &str| {
                let mut v: Vec<String> = s.split(',').map(|p| p.trim().to_string()).collect();
                v.sort();
                v
            };
            set(stored) != set(wanted)
        }
        Some(stored) => stored != wanted,
    }
}

/// Prints the stored value of a password question (debconf-show omits them) from debconf's
/// password database; nothing when it has none.
fn password_command(question: &str) -> String {
    format!(
        "awk -v q={} 'BEGIN{{RS=\"\"; FS=\"\\n\"}} {{ hit=0; for (i=1;i<=NF;i++) {{ if ($i == \"Name: \" q) hit=1 }} if (hit) for (i=1;i<=NF;i++) if (substr($i,1,7) == \"Value: \") print substr($i,8) }}' /var/cache/debconf/passwords.dat 2>/dev/null; true",
        quote(question)
    )
}

fn as_map(map: &IndexMap<String, String>) -> Value {
    crate::template::map_value(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

#[async_trait]
impl Module for Debconf {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.required_str(&["name", "pkg"])?;
        let question = args.str(&["question", "selection", "setting"])?;
        let vtype = args.str(&["vtype"])?;
        let value = match args.raw_any(&["value", "answer"]) {
            Some(v) if v.kind() == minijinja::value::ValueKind::Seq => Some(
                v.try_iter()
                    .map(|items| items.map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
            ),
            Some(v) if v.is_none() || v.is_undefined() => None,
            Some(v) => Some(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
            None => None,
        };
        let unseen = args.bool("unseen", false)?;
        args.finish()?;
        if let Some(v) = &vtype {
            if !VTYPES.contains(&v.as_str()) {
                return Err(ModuleError::Args(format!(
                    "debconf: value of vtype must be one of: {}, got: {v}",
                    VTYPES.join(", ")
                )));
            }
        }
        let out = ctx
            .run_ok(
                &format!("debconf-show {}", quote(&name)),
                None,
                "debconf-show",
            )
            .await?;
        let mut previous = parse_show(&out.stdout_text());
        let Some(question) = question else {
            return Ok(ModuleResult::changed(false).with("current", as_map(&previous)));
        };
        let (Some(vtype), Some(value)) = (vtype, value) else {
            return Err(ModuleError::Args(
                "debconf: when supplying a question you must supply a valid vtype and value".into(),
            ));
        };
        let value = normalise(&vtype, &value);
        let password = vtype == "password";
        let stored = if password {
            let out = ctx.run(&password_command(&question), None).await?;
            let text = out.stdout_text();
            text.lines().next().map(str::to_string)
        } else {
            previous.get(&question).cloned()
        };
        let changed = differs(&vtype, stored.as_deref(), &value);
        let mut result = ModuleResult::changed(changed);
        if !changed {
            if password {
                previous.insert(question.clone(), HIDDEN.into());
            }
            return Ok(result.with("current", as_map(&previous)));
        }
        if !ctx.check_mode {
            let flag = if unseen { " -u" } else { "" };
            let line = format!("{name} {question} {vtype} {value}\n");
            ctx.run_ok(
                &format!("debconf-set-selections{flag}"),
                Some(line.into_bytes()),
                "debconf-set-selections",
            )
            .await?;
        }
        let shown = |v: &str| {
            if password {
                HIDDEN.to_string()
            } else {
                v.to_string()
            }
        };
        let before = stored.as_deref().map(shown).unwrap_or_default();
        let after = shown(&value);
        let current = IndexMap::from([(question.clone(), after.clone())]);
        let previous = IndexMap::from([(question.clone(), before.clone())]);
        if ctx.diff {
            result.diffs.push(Diff {
                before_header: format!("{name} {question}"),
                after_header: format!("{name} {question}"),
                before: format!("{question}: {before}\n"),
                after: format!("{question}: {after}\n"),
            });
        }
        result = result
            .with("current", as_map(&current))
            .with("previous", as_map(&previous));
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_compared_as_debconf_stores_them() {
        let shown = "* tzdata/Areas: Europe\n  tzdata/Zones/Europe: Berlin\n  kiln/empty:\n";
        let map = parse_show(shown);
        assert_eq!(map.get("tzdata/Areas").map(String::as_str), Some("Europe"));
        assert_eq!(
            map.get("tzdata/Zones/Europe").map(String::as_str),
            Some("Berlin")
        );
        assert_eq!(map.get("kiln/empty").map(String::as_str), Some(""));
        assert_eq!(normalise("boolean", "True"), "true");
        assert_eq!(normalise("boolean", "no"), "false");
        assert_eq!(normalise("string", "True"), "True");
        assert!(!differs("multiselect", Some("b, a"), "a, b"));
        assert!(differs("multiselect", Some("a"), "a, b"));
        assert!(differs("string", None, ""));
        assert!(!differs("string", Some("x"), "x"));
    }
}
