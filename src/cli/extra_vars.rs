//! `-e/--extra-vars`: `k=v k2=v2`, inline JSON/YAML, or `@file`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::load::kv::parse_kv;
use crate::load::model::VarMap;
use crate::load::yaml::{parse_str, NodeKind};

pub fn parse(values: &[String]) -> Result<VarMap> {
    let mut out = VarMap::new();
    for value in values {
        let value = value.trim();
        if let Some(file) = value.strip_prefix('@') {
            out.extend(crate::load::load_vars_path(Path::new(file))?);
        } else if value.starts_with('{') || value.starts_with('[') {
            let doc = parse_str(value, Path::new("--extra-vars"))?;
            match &doc.root.kind {
                NodeKind::Map(_) => {
                    out.extend(crate::load::task::var_map(&doc, &doc.root, "extra vars")?)
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "--extra-vars '{value}' must be a mapping"
                    )))
                }
            }
        } else {
            for (k, v) in parse_kv(value, None) {
                if k == "_raw_params" {
                    return Err(Error::Usage(format!(
                        "--extra-vars: '{v}' is not 'name=value', JSON, or @file"
                    )));
                }
                out.insert(k, minijinja::Value::from(v));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_forms() {
        let vars = parse(&["a=1 b='x y'".into(), r#"{"c": 2, "d": [1]}"#.into()]).unwrap();
        assert_eq!(vars["a"].as_str(), Some("1"));
        assert_eq!(vars["b"].as_str(), Some("x y"));
        assert_eq!(vars["c"].as_i64(), Some(2));
        assert!(parse(&["nonsense".into()]).is_err());
    }
}
