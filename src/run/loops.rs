//! Turning a task's loop keyword (`loop`, `with_items`, `with_dict`, …) into a list of items,
//! and what each item sees (`ansible_loop`) and shows (its label).

use minijinja::value::ValueKind;
use minijinja::Value;

use indexmap::IndexMap;

use crate::load::model::{LoopKind, LoopSpec, Task};
use crate::template::{Scope, TemplateError};

/// The items of a loop, templated against `scope`: `loop:`'s list, or the items of a
/// `with_<lookup>:` loop's lookup run over its terms.
pub fn expand(spec: &LoopSpec, scope: &Scope) -> Result<Vec<Value>, TemplateError> {
    let templar = scope.templar();
    let value = match &spec.kind {
        LoopKind::Lookup(lookup) if lookup == "first_found" => {
            first_found_terms(&spec.items, scope, 0)?.unwrap_or_default()
        }
        _ => templar.render_value(&spec.items, scope)?,
    };
    match &spec.kind {
        LoopKind::List => match value.kind() {
            ValueKind::Seq => Ok(crate::value::list_of(&value)),
            ValueKind::None | ValueKind::Undefined => Ok(vec![]),
            kind => Err(TemplateError::new(format!("Invalid data passed to 'loop', it requires a list, got this instead: {value} ({kind}). Hint: use dict2items for a mapping"))),
        },
        // Ansible hands a lookup its terms as a list: a list as it is, anything else as
        // the one term.
        LoopKind::Lookup(lookup) => templar.loop_items(lookup, crate::value::list_of(&value), scope),
    }
}

/// `with_first_found`'s terms: as in Ansible, each is templated on its own and one naming
/// something undefined is left out (a file name built from an optional variable), down
/// through a list a term names by a bare variable reference.
fn first_found_terms(
    raw: &Value,
    scope: &Scope,
    depth: usize,
) -> Result<Option<Value>, TemplateError> {
    const MAX_DEPTH: usize = 16;
    let templar = scope.templar();
    match raw.kind() {
        ValueKind::Seq if depth < MAX_DEPTH => {
            let mut items = Vec::new();
            for item in raw.try_iter().into_iter().flatten() {
                items.extend(first_found_terms(&item, scope, depth + 1)?);
            }
            Ok(Some(Value::from(items)))
        }
        ValueKind::Map if depth < MAX_DEPTH => {
            let mut map = IndexMap::new();
            for key in raw.try_iter().into_iter().flatten() {
                let item = raw.get_item(&key).unwrap_or_default();
                if let Some(value) = first_found_terms(&item, scope, depth + 1)? {
                    map.insert(key.to_string(), value);
                }
            }
            Ok(Some(crate::template::map_value(map)))
        }
        ValueKind::String if depth < MAX_DEPTH => {
            let text = raw.as_str().unwrap_or_default();
            if crate::template::is_plain_reference(text) {
                let name = text
                    .trim()
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim();
                let named = scope
                    .get_raw(name)
                    .filter(|v| matches!(v.kind(), ValueKind::Seq | ValueKind::Map));
                if let Some(named) = named {
                    return first_found_terms(&named, scope, depth + 1);
                }
            }
            match templar.render_value(raw, scope) {
                Ok(value) => Ok(Some(value)),
                Err(e) if is_undefined(&e) => Ok(None),
                Err(e) => Err(e),
            }
        }
        _ => templar.render_value(raw, scope).map(Some),
    }
}

/// Whether a loop failed because its items name something undefined, the one failure Ansible
/// defers until `when` has been evaluated. The template layer says so only in its words:
/// "'name' is undefined …", "an undefined value was used in …", "object of type 'dict' has
/// no attribute 'x' …", or, for an operator given an undefined operand, "… (`name` is
/// undefined)".
pub fn is_undefined(err: &TemplateError) -> bool {
    let message = err.message.as_str();
    message.starts_with("an undefined value was used")
        || message.contains(" is undefined")
        || message.starts_with("object of type '") && message.contains("' has no attribute '")
}

/// `ansible_loop` for `loop_control.extended`, as Ansible fills it for the item at `index`.
pub(super) fn extended_info(items: &[Value], index: usize) -> Value {
    let total = items.len();
    let mut info: IndexMap<String, Value> = [
        ("allitems", Value::from(items.to_vec())),
        ("index", Value::from(index + 1)),
        ("index0", Value::from(index)),
        ("first", Value::from(index == 0)),
        ("last", Value::from(index + 1 == total)),
        ("length", Value::from(total)),
        ("revindex", Value::from(total - index)),
        ("revindex0", Value::from(total - index - 1)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(next) = items.get(index + 1) {
        info.insert("nextitem".into(), next.clone());
    }
    if let Some(previous) = index.checked_sub(1).and_then(|i| items.get(i)) {
        info.insert("previtem".into(), previous.clone());
    }
    crate::template::map_value(info)
}

/// How an item is shown: its `loop_control.label`, templated, or the item itself. A label
/// naming something undefined is the item's failure in Ansible (`Err`: its message).
pub(super) fn item_label(task: &Task, scope: &Scope, item: &Value) -> Result<String, String> {
    if let Some(label) = task.loop_spec.as_ref().and_then(|l| l.label.as_ref()) {
        match scope.templar().render_value(label, scope) {
            Ok(v) => return Ok(crate::output::item_label(&v)),
            Err(e) if is_undefined(&e) => {
                return Err(format!(
                    "Failed to template loop_control.label: {}",
                    e.message
                ))
            }
            Err(_) => {}
        }
    }
    Ok(crate::output::item_label(item))
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
        expand(&spec, &scope)
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
    fn extended_info_names_the_neighbours_of_an_item() {
        let items = [Value::from("a"), Value::from("b"), Value::from("c")];
        let first = extended_info(&items, 0);
        assert!(first.get_attr("previtem").unwrap().is_undefined());
        assert_eq!(first.get_attr("nextitem").unwrap(), Value::from("b"));
        assert_eq!(first.get_attr("revindex").unwrap(), Value::from(3));
        let last = extended_info(&items, 2);
        assert_eq!(last.get_attr("previtem").unwrap(), Value::from("b"));
        assert!(last.get_attr("nextitem").unwrap().is_undefined());
        assert_eq!(last.get_attr("revindex0").unwrap(), Value::from(0));
        assert_eq!(last.get_attr("allitems").unwrap().len(), Some(3));
    }

    #[test]
    fn a_failing_loop_lookup_is_named_without_internal_expressions() {
        let scope = Scope::new(crate::template::Templar::new(), vec![]);
        let spec = LoopSpec {
            kind: LoopKind::Lookup("first_found".into()),
            items: Value::from(vec![Value::from("/nonexistent/a.yml")]),
            loop_var: "item".into(),
            index_var: None,
            label: None,
            pause: None,
            extended: false,
        };
        let err = expand(&spec, &scope).unwrap_err();
        assert!(
            err.message.starts_with("with_first_found: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("a.yml"), "{}", err.message);
        assert!(!err.message.contains("__kiln"), "{}", err.message);
    }
}
