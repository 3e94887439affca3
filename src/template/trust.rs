//! Values that must never be templated again: whatever a target sent back (registered
//! results, facts, loop items built from them), `set_fact` results (rendered when set, as in
//! ansible-core 2.19) and `!unsafe` strings.
//!
//! Such strings carry minijinja's "safe" flag. Autoescaping is off, so the flag changes
//! nothing else; the lazy variable view and `render_value` leave flagged strings as they are,
//! so `{{ lookup('pipe', …) }}` written by a target is text, never code run on the controller.

use minijinja::value::ValueKind;
use minijinja::Value;

pub use crate::value::{is_untrusted, untrusted_str};

/// `value` with every string inside it (recursively) marked as never to be templated.
pub fn untrusted(value: &Value) -> Value {
    super::walk::rebuild(value, &|leaf| match leaf.kind() {
        ValueKind::String if !leaf.is_safe() => untrusted_str(leaf.as_str().unwrap_or_default()),
        _ => leaf.clone(),
    })
}

/// A loop item rendered from `source`, the playbook's own literal item: the parts written
/// as plain text in the playbook keep its trust (ansible-core 2.19 trusts playbook data, so
/// `assert: "{{ item }}"` may evaluate them); whatever a template produced is data.
pub fn untrusted_where_templated(source: &Value, rendered: &Value) -> Value {
    untrusted_where_templated_at(source, rendered, 0)
}

/// Deeper than any playbook literal; past it everything is treated as templated.
const MAX_LITERAL_DEPTH: usize = 64;

fn untrusted_where_templated_at(source: &Value, rendered: &Value, depth: usize) -> Value {
    if depth > MAX_LITERAL_DEPTH {
        return untrusted(rendered);
    }
    match (source.kind(), rendered.kind()) {
        (ValueKind::String, _) => {
            let text = source.as_str().unwrap_or_default();
            if ["{{", "{%", "{#"].iter().any(|m| text.contains(m)) {
                untrusted(rendered)
            } else {
                rendered.clone()
            }
        }
        (ValueKind::Seq, ValueKind::Seq) if source.len() == rendered.len() => Value::from(
            source
                .try_iter()
                .into_iter()
                .flatten()
                .zip(rendered.try_iter().into_iter().flatten())
                .map(|(s, r)| untrusted_where_templated_at(&s, &r, depth + 1))
                .collect::<Vec<_>>(),
        ),
        (ValueKind::Map, ValueKind::Map) => {
            let map: indexmap::IndexMap<Value, Value> = rendered
                .try_iter()
                .into_iter()
                .flatten()
                .map(|key| {
                    let item = rendered.get_item(&key).unwrap_or_default();
                    let item = match source.get_item(&key) {
                        Ok(s) if !s.is_undefined() => {
                            untrusted_where_templated_at(&s, &item, depth + 1)
                        }
                        _ => untrusted(&item),
                    };
                    (key, item)
                })
                .collect();
            Value::from_object(map)
        }
        _ => untrusted(rendered),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_loop_items_keep_trust_except_where_templated() {
        let source = Value::from(minijinja::value::Serde(serde_json::json!({
            "that": ["1 == 1", "{{ x }}"],
        })));
        let rendered = Value::from(minijinja::value::Serde(serde_json::json!({
            "that": ["1 == 1", "{{ y }}"],
        })));
        let item = untrusted_where_templated(&source, &rendered);
        let that = item.get_attr("that").unwrap();
        assert!(!is_untrusted(&that.get_item(&Value::from(0)).unwrap()));
        assert!(is_untrusted(&that.get_item(&Value::from(1)).unwrap()));
        let from_template = untrusted_where_templated(&Value::from("{{ items }}"), &rendered);
        assert!(is_untrusted(
            &from_template
                .get_attr("that")
                .unwrap()
                .get_item(&Value::from(0))
                .unwrap()
        ));
    }

    #[test]
    fn strings_inside_lists_and_maps_are_marked() {
        let value = Value::from(minijinja::value::Serde(serde_json::json!({
            "stdout": "{{ lookup('pipe', 'id') }}",
            "lines": ["a", "{{ b }}"],
            "rc": 0,
        })));
        let marked = untrusted(&value);
        assert!(is_untrusted(&marked.get_attr("stdout").unwrap()));
        let lines = marked.get_attr("lines").unwrap();
        assert!(lines.try_iter().unwrap().all(|l| is_untrusted(&l)));
        assert_eq!(marked.get_attr("rc").unwrap(), Value::from(0));
        assert!(!is_untrusted(&value.get_attr("stdout").unwrap()));
        assert_eq!(marked.to_string(), value.to_string());
    }
}
