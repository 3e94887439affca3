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

/// A loop's registered result: untrusted, except the items kiln put in each of its `results`
/// (under the name the entry's `ansible_loop_var` gives), which keep the trust they had as
/// loop items, so `assert: "{{ item.checks }}"` over a registered loop still evaluates the
/// playbook's own conditions.
pub fn untrusted_loop_result(result: &Value) -> Value {
    rebuild_map(result, |key, value| match key {
        "results" if value.kind() == ValueKind::Seq => Value::from(
            value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|entry| {
                    let loop_var = entry
                        .get_attr("ansible_loop_var")
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string));
                    rebuild_map(&entry, |key, value| match &loop_var {
                        Some(name) if name == key => value.clone(),
                        _ => untrusted(value),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        _ => untrusted(value),
    })
}

/// A mapping with each value replaced by `each(key, value)`; anything else untrusted whole.
fn rebuild_map(value: &Value, each: impl Fn(&str, &Value) -> Value) -> Value {
    if value.kind() != ValueKind::Map {
        return untrusted(value);
    }
    let mut out = indexmap::IndexMap::new();
    for key in value.try_iter().into_iter().flatten() {
        let name = key.to_string();
        let kept = each(&name, &value.get_item(&key).unwrap_or_default());
        out.insert(name, kept);
    }
    crate::value::map_value(out)
}

/// Whether `source` is one variable reference and nothing else (`{{ result.results }}`): what
/// it yields are values as they were stored, each string still carrying its trust mark, where
/// any operator or filter could build new strings out of untrusted ones.
pub fn is_plain_reference(source: &str) -> bool {
    let Some(inner) = source
        .trim()
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
    else {
        return false;
    };
    let mut rest = inner.trim();
    let mut first = true;
    while !rest.is_empty() {
        let name = if first {
            rest
        } else if let Some(after) = rest.strip_prefix('.') {
            after
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return false;
            };
            let index = &after[..end];
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            rest = &after[end + 1..];
            continue;
        } else {
            return false;
        };
        let len = name
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(name.len());
        if len == 0 || name.as_bytes()[0].is_ascii_digit() {
            return false;
        }
        rest = &name[len..];
        first = false;
    }
    !first
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
    fn only_a_bare_variable_reference_is_plain() {
        for plain in ["{{ r.results }}", "{{r}}", "{{ a.b[0].c }}"] {
            assert!(is_plain_reference(plain), "{plain}");
        }
        for built in [
            "{{ r.results | list }}",
            "{{ a ~ b }}",
            "{{ a[b] }}",
            "{{ }}",
            "x {{ a }}",
            "{{ 1a }}",
        ] {
            assert!(!is_plain_reference(built), "{built}");
        }
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
