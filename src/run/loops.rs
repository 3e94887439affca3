//! Turning a task's loop keyword (`loop`, `with_items`, `with_dict`, …) into a list of items.

use minijinja::value::ValueKind;
use minijinja::Value;

use crate::load::model::{LoopKind, LoopSpec};
use crate::template::{Scope, TemplateError};

fn list_of(value: &Value) -> Vec<Value> {
    match value.kind() {
        ValueKind::Seq => value.try_iter().map(|it| it.collect()).unwrap_or_default(),
        ValueKind::None | ValueKind::Undefined => vec![],
        _ => vec![value.clone()],
    }
}

/// The items of a loop, templated against `scope`.
pub fn expand(
    spec: &LoopSpec,
    scope: &Scope,
    search: &[std::path::PathBuf],
) -> Result<Vec<Value>, TemplateError> {
    let templar = scope.templar();
    let value = templar.render_value(&spec.items, scope)?;
    // A `with_items: "a,b"` string that is not a template stays one item; a string naming a
    // list variable (old Ansible style) is rejected by Ansible 2.x as well.
    Ok(match spec.kind {
        LoopKind::List => match value.kind() {
            ValueKind::Seq => list_of(&value),
            ValueKind::None | ValueKind::Undefined => vec![],
            kind => return Err(TemplateError::new(format!("Invalid data passed to 'loop', it requires a list, got this instead: {value} ({kind}). Hint: use dict2items for a mapping"))),
        },
        LoopKind::Items => list_of(&value).iter().flat_map(|v| if v.kind() == ValueKind::Seq { list_of(v) } else { vec![v.clone()] }).collect(),
        LoopKind::Dict => {
            if value.kind() != ValueKind::Map {
                return Err(TemplateError::new(format!("with_dict expects a dict, got {}", value.kind())));
            }
            value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|k| {
                    let v = value.get_item(&k).unwrap_or_default();
                    crate::template::map_value([("key".to_string(), k), ("value".to_string(), v)].into_iter().collect())
                })
                .collect()
        }
        LoopKind::IndexedItems => list_of(&value).into_iter().enumerate().map(|(i, v)| Value::from(vec![Value::from(i), v])).collect(),
        LoopKind::Together => {
            let lists: Vec<Vec<Value>> = list_of(&value).iter().map(list_of).collect();
            let len = lists.iter().map(Vec::len).max().unwrap_or(0);
            (0..len).map(|i| Value::from(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Value::from(()))).collect::<Vec<_>>())).collect()
        }
        LoopKind::Nested => {
            let mut product: Vec<Vec<Value>> = vec![vec![]];
            for list in list_of(&value).iter().map(list_of) {
                product = product.into_iter().flat_map(|prefix| list.iter().map(move |x| [prefix.clone(), vec![x.clone()]].concat())).collect();
            }
            product.into_iter().map(Value::from).collect()
        }
        LoopKind::FirstFound => {
            let names: Vec<String> = list_of(&value)
                .iter()
                .flat_map(|v| if let Ok(files) = v.get_attr("files") { if files.is_undefined() { vec![v.to_string()] } else { list_of(&files).iter().map(|f| f.to_string()).collect() } } else { vec![v.to_string()] })
                .collect();
            let found = names.iter().find_map(|n| {
                let p = std::path::Path::new(n);
                if p.is_absolute() {
                    return p.exists().then(|| p.to_path_buf());
                }
                search.iter().flat_map(|d| [d.join("files").join(n), d.join("vars").join(n), d.join("tasks").join(n), d.join(n)]).find(|c| c.exists())
            });
            match found {
                Some(path) => vec![Value::from(path.display().to_string())],
                None => return Err(TemplateError::new(format!("No file was found when using first_found: {names:?}"))),
            }
        }
        LoopKind::Fileglob => {
            let mut out = Vec::new();
            for pattern in list_of(&value) {
                let pattern = pattern.to_string();
                let full = if pattern.starts_with('/') { vec![pattern.clone()] } else { search.iter().map(|d| d.join("files").join(&pattern).display().to_string()).collect() };
                for p in full {
                    for entry in glob::glob(&p).into_iter().flatten().flatten() {
                        if entry.is_file() {
                            out.push(Value::from(entry.display().to_string()));
                        }
                    }
                }
            }
            out
        }
        LoopKind::Sequence => sequence(&value.to_string())?,
    })
}

/// Whether a loop failed because its items name something undefined, the one failure Ansible
/// defers until `when` has been evaluated. The template layer says so only in its words:
/// "'name' is undefined …", "an undefined value was used in …", or, for an operator given an
/// undefined operand, "… (`name` is undefined)".
pub fn is_undefined(err: &TemplateError) -> bool {
    let message = err.message.as_str();
    message.starts_with("an undefined value was used") || message.contains(" is undefined")
}

/// `with_sequence: start=1 end=5 stride=1 format=web%02d` (or `count=3`).
fn sequence(spec: &str) -> Result<Vec<Value>, TemplateError> {
    let kv = crate::load::kv::parse_kv(spec, None);
    let num = |k: &str, d: i64| {
        kv.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| TemplateError::new(format!("with_sequence: {k} must be a number")))
            })
            .transpose()
            .map(|v| v.unwrap_or(d))
    };
    let start = num("start", 1)?;
    let stride = num("stride", 1)?.max(1);
    let end = match kv.get("count") {
        Some(_) => start + (num("count", 0)? - 1) * stride,
        None => num("end", start)?,
    };
    let format = kv.get("format").cloned();
    Ok((start..=end)
        .step_by(stride as usize)
        .map(|n| {
            Value::from(match &format {
                Some(f) => printf_int(f, n),
                None => n.to_string(),
            })
        })
        .collect())
}

fn printf_int(format: &str, n: i64) -> String {
    let re = regex::Regex::new(r"%(0?)(\d*)d").expect("static pattern");
    re.replace(format, |c: &regex::Captures| {
        let width: usize = c[2].parse().unwrap_or(0);
        if &c[1] == "0" {
            format!("{n:0width$}")
        } else {
            format!("{n:width$}")
        }
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_list(items: &str, vars: &[(&str, Value)]) -> Result<Vec<Value>, TemplateError> {
        let vars: crate::load::model::VarMap = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let scope = Scope::new(
            crate::template::Templar::new(),
            vec![std::sync::Arc::new(vars)],
        );
        let spec = LoopSpec {
            kind: LoopKind::List,
            items: Value::from(items),
            loop_var: "item".into(),
            index_var: None,
            label: None,
            pause: None,
            extended: false,
        };
        expand(&spec, &scope, &[])
    }

    #[test]
    fn undefined_items_are_told_from_other_loop_failures() {
        let user = crate::template::map_value([("name".to_string(), Value::from("u"))].into());
        for items in [
            "{{ missing }}",
            "{{ u.keys_list }}",
            "{{ missing | default([]) + u.keys_list }}",
        ] {
            let err = expand_list(items, &[("u", user.clone())]).unwrap_err();
            assert!(is_undefined(&err), "{items}: {}", err.message);
        }
        for items in ["{{ u }}", "{{ 1 / 0 }}", "{{ u | no_such_filter }}"] {
            let err = expand_list(items, &[("u", user.clone())]).unwrap_err();
            assert!(!is_undefined(&err), "{items}: {}", err.message);
        }
    }

    #[test]
    fn sequences() {
        let items = sequence("start=1 end=3 format=web%02d").unwrap();
        assert_eq!(
            items.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            vec!["web01", "web02", "web03"]
        );
        assert_eq!(sequence("count=2").unwrap().len(), 2);
    }
}
