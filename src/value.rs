//! Values as kiln passes them between layers: variable maps, mappings as minijinja values,
//! and the two ways Ansible reads a value as true or false: the boolean table of options and
//! keywords ([`parse_bool`], [`bool_of`]) and the looser truthiness of conditions
//! ([`truthy`]); strings marked as never to be templated. A leaf module: it imports nothing
//! from the rest of kiln.

use indexmap::IndexMap;
use minijinja::value::ValueKind;
use minijinja::Value;

/// Variables by name, in the order they were defined.
pub type VarMap = IndexMap<String, Value>;

/// Variables from JSON values (a spec's or a record's `extra_vars`).
pub fn vars_from_json<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
) -> VarMap {
    vars.into_iter()
        .map(|(name, value)| {
            (
                name.clone(),
                Value::from(minijinja::value::Serde(value.clone())),
            )
        })
        .collect()
}

/// A mapping value (insertion order kept) from string keys.
pub fn map_value(map: IndexMap<String, Value>) -> Value {
    Value::from_object(
        map.into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<IndexMap<Value, Value>>(),
    )
}

/// Whether a string is marked as never to be templated (minijinja's safe-string flag; see
/// `template::trust`).
pub fn is_untrusted(value: &Value) -> bool {
    value.kind() == ValueKind::String && value.is_safe()
}

/// A string marked as never to be templated.
pub fn untrusted_str(text: &str) -> Value {
    Value::from_safe_string(text.to_string())
}

/// The strings Ansible reads as true (`BOOLEANS_TRUE` of ansible-core's `convert_bool`),
/// compared case-insensitively after trimming.
pub const BOOLEANS_TRUE: &[&str] = &["y", "yes", "on", "1", "true", "t"];
/// The strings Ansible reads as false (`BOOLEANS_FALSE`).
pub const BOOLEANS_FALSE: &[&str] = &["n", "no", "off", "0", "false", "f"];

/// A boolean option, keyword or setting written as text, as Ansible's `boolean()` reads it
/// (`None`: not a boolean).
pub fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim().to_ascii_lowercase();
    if BOOLEANS_TRUE.contains(&text.as_str()) {
        Some(true)
    } else if BOOLEANS_FALSE.contains(&text.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// A boolean option's value: a boolean, the numbers 1 and 0, or a string of the table
/// (`None`: not a boolean).
pub fn bool_of(value: &Value) -> Option<bool> {
    match value.kind() {
        ValueKind::Bool => Some(value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            Some(_) => None,
            None => f64::try_from(value.clone())
                .ok()
                .and_then(|f| (f == 1.0 || f == 0.0).then_some(f == 1.0)),
        },
        ValueKind::String => parse_bool(value.as_str().unwrap_or_default()),
        _ => None,
    }
}

/// The strings a condition reads as false besides Jinja's empty string.
const CONDITION_FALSE_WORDS: &[&str] = &["false", "no", "off", "0", "n", "none"];

/// Truthiness of a value in a condition (`when`, `failed_when`, the `truthy` test,
/// `default(x, true)`): Jinja's, except that a string reads as false when it is empty or one
/// of a few words meaning false. Unlike [`bool_of`] it never fails: any other value is
/// true or false by Jinja's rules.
/// A value as a list of items, as Ansible listifies a loop's or a lookup's terms: a list's
/// elements, nothing for none or undefined, anything else as the one item.
pub fn list_of(value: &Value) -> Vec<Value> {
    match value.kind() {
        minijinja::value::ValueKind::Seq => {
            value.try_iter().map(|it| it.collect()).unwrap_or_default()
        }
        minijinja::value::ValueKind::None | minijinja::value::ValueKind::Undefined => vec![],
        _ => vec![value.clone()],
    }
}

pub fn truthy(value: &Value) -> bool {
    if let Some(s) = value.as_str() {
        let s = s.trim().to_ascii_lowercase();
        return !(s.is_empty() || CONDITION_FALSE_WORDS.contains(&s.as_str()));
    }
    value.is_true()
}

/// Python's `repr()` of a value (`{'name': 'x', 'uid': 1}`, `['a']`, `True`, `None`).
pub fn python_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => python_str_repr(value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|v| python_repr(&v))
                .collect();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let entries: Vec<String> = value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|key| {
                    let item = value.get_item(&key).unwrap_or_default();
                    format!("{}: {}", python_repr(&key), python_repr(&item))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        _ => value.to_string(),
    }
}

/// Python's `repr` of a string: single quotes unless the text holds `'` and no `"`.
fn python_str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boolean_table_is_ansibles() {
        for word in ["y", "Yes", "ON", "1", "true", " True ", "t", "T"] {
            assert_eq!(parse_bool(word), Some(true), "{word:?}");
        }
        for word in ["n", "NO", "off", "0", "False", "f", " F"] {
            assert_eq!(parse_bool(word), Some(false), "{word:?}");
        }
        for word in ["", "none", "2", "yess", "enabled"] {
            assert_eq!(parse_bool(word), None, "{word:?}");
        }
    }

    #[test]
    fn boolean_values() {
        assert_eq!(bool_of(&Value::from(true)), Some(true));
        assert_eq!(bool_of(&Value::from(1)), Some(true));
        assert_eq!(bool_of(&Value::from(0)), Some(false));
        assert_eq!(bool_of(&Value::from(1.0)), Some(true));
        assert_eq!(bool_of(&Value::from(2)), None);
        assert_eq!(bool_of(&Value::from("off")), Some(false));
        assert_eq!(bool_of(&Value::from("maybe")), None);
        assert_eq!(bool_of(&Value::from(())), None);
    }

    #[test]
    fn condition_truthiness_differs_from_the_table() {
        for falsy in ["", " ", "no", "False", "0", "n", "none", "off"] {
            assert!(!truthy(&Value::from(falsy)), "{falsy:?}");
        }
        // `f` is false as an option but true in a condition, as is any other string.
        for truthy_text in ["f", "t", "yes", "anything"] {
            assert!(truthy(&Value::from(truthy_text)), "{truthy_text:?}");
        }
        assert!(!truthy(&Value::from(0)));
        assert!(truthy(&Value::from(2)));
        assert!(!truthy(&Value::from(())));
    }

    #[test]
    fn mappings_keep_their_order() {
        let map = map_value(VarMap::from([
            ("b".to_string(), Value::from(1)),
            ("a".to_string(), Value::from(2)),
        ]));
        let keys: Vec<String> = map
            .try_iter()
            .map(|keys| keys.map(|k| k.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["b", "a"]);
    }
}
