//! `getent`: reads a name-service database (passwd, group, hosts, services, …) into the fact
//! `getent_<database>` (`{key: [fields…]}`); fails on a missing key unless `fail_key: no`.

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::map_value;

pub struct Getent;

/// Splits getent's lines: `:` for the colon databases, whitespace otherwise (or `split`).
pub fn parse(database: &str, text: &str, split: Option<&str>) -> IndexMap<String, Value> {
    let colon = matches!(database, "passwd" | "group" | "shadow" | "gshadow");
    let mut out = IndexMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = match split {
            Some(sep) => line.split(sep).collect(),
            None if colon => line.split(':').collect(),
            None => line.split_whitespace().collect(),
        };
        let Some((key, rest)) = fields.split_first() else {
            continue;
        };
        let values: Vec<Value> = rest.iter().map(|f| Value::from(*f)).collect();
        out.insert(key.to_string(), Value::from(values));
    }
    out
}

#[async_trait]
impl Module for Getent {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let database = args.required_str(&["database"])?;
        let key = args.str(&["key"])?;
        let split = args.str(&["split"])?;
        let fail_key = args.bool("fail_key", true)?;
        let service = args.str(&["service"])?;
        let _ = args.raw_any(&["name"]);
        args.finish()?;
        let mut cmd = String::from("getent");
        if let Some(s) = &service {
            cmd.push_str(&format!(" -s {}", quote(s)));
        }
        cmd.push_str(&format!(" {}", quote(&database)));
        if let Some(k) = &key {
            cmd.push_str(&format!(" {}", quote(k)));
        }
        let out = ctx.run(&cmd, None).await?;
        match out.rc {
            0 => {}
            2 if !fail_key => {}
            2 => {
                return Err(ModuleError::Failed(
                    "One or more supplied key could not be found in the database.".into(),
                ))
            }
            1 => {
                return Err(ModuleError::Args(format!(
                    "getent: missing arguments, or database '{database}' unknown"
                )))
            }
            rc => {
                return Err(ModuleError::Failed(format!(
                    "getent failed (rc={rc}): {}",
                    out.stderr_text().trim()
                )))
            }
        }
        let mut entries = parse(&database, &out.stdout_text(), split.as_deref());
        if out.rc == 2 {
            if let Some(k) = key {
                entries.insert(k, Value::from(()));
            }
        }
        Ok(ModuleResult::changed(false)
            .with_fact(&format!("getent_{database}"), map_value(entries)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colon_and_space_databases() {
        let p = super::parse("passwd", "root:x:0:0:root:/root:/bin/bash\n", None);
        assert_eq!(
            p["root"].get_item_by_index(4).unwrap().as_str(),
            Some("/root")
        );
        let h = super::parse("hosts", "127.0.0.1       localhost target\n", None);
        assert_eq!(h["127.0.0.1"].len(), Some(2));
    }
}
