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

#[cfg(test)]
mod tests {
    use super::*;

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
