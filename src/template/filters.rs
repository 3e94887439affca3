//! Ansible's filters that roles use most, written as plain functions.

use super::pyregex::{compile, runtime};
use base64::Engine;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::truthy;

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter("bool", to_bool);
    env.add_filter("int", to_int);
    env.add_filter("float", to_float);
    env.add_filter("string", |v: Value| v.to_string());
    // minijinja passes strings it considers safe through `escape` unchanged, and target
    // data carries that flag (see trust.rs): escape every string, as Jinja2 does for text.
    env.add_filter("escape", html_escape);
    env.add_filter("e", html_escape);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", |s: String| regex::escape(&s));
    env.add_filter("b64encode", |s: String| {
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    env.add_filter("b64decode", b64decode);
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_yaml);
    env.add_filter("from_json", from_json);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("basename", |s: String| {
        s.rsplit('/').next().unwrap_or_default().to_string()
    });
    env.add_filter("dirname", dirname);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("combine", combine);
    env.add_filter("union", union);
    env.add_filter("difference", difference);
    env.add_filter("intersect", intersect);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("flatten", flatten);
    env.add_filter("ternary", ternary);
    env.add_filter("quote", |s: Value| crate::connection::quote(&s.to_string()));
    env.add_filter("mandatory", mandatory);
    env.add_filter("split", split);
    env.add_filter("splitext", splitext);
    env.add_filter("expanduser", |s: String| s);
    env.add_filter("realpath", |s: String| s);
    env.add_filter("checksum", |s: String| crate::util::sha1_hex(s.as_bytes()));
    env.add_filter("zip", zip);
    env.add_filter("type_debug", type_debug);
    env.add_filter("comment", comment);
}

/// `comment` in its default (`plain`) style, as Ansible renders it: a `#` line, each line of
/// the text behind `# ` (a bare `#` for an empty one), and a closing `#` line.
fn comment(text: String) -> String {
    let body: Vec<String> = text
        .split('\n')
        .map(|line| format!("# {line}").trim_end().to_string())
        .collect();
    format!("#\n{}\n#", body.join("\n"))
}

/// `default(x)` replaces undefined; `default(x, true)` also replaces falsy values.
fn default(value: Value, other: Option<Value>, boolean: Option<bool>) -> Value {
    let other = other.unwrap_or_else(|| Value::from(""));
    if value.is_undefined() || (boolean.unwrap_or(false) && !truthy(&value)) {
        other
    } else {
        value
    }
}

fn to_bool(value: Value) -> bool {
    match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::Number => value.as_i64().map(|i| i == 1).unwrap_or(false),
        ValueKind::String => matches!(
            value
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
                .as_str(),
            "yes" | "on" | "1" | "true" | "y"
        ),
        _ => false,
    }
}

fn to_int(value: Value, default: Option<i64>) -> i64 {
    if let Some(i) = value.as_i64() {
        return i;
    }
    if let Some(s) = value.as_str() {
        let s = s.trim();
        if let Ok(i) = s.parse::<i64>() {
            return i;
        }
        if let Ok(f) = s.parse::<f64>() {
            return f as i64;
        }
    }
    if let Ok(f) = f64::try_from(value.clone()) {
        return f as i64;
    }
    if value.kind() == ValueKind::Bool {
        return i64::from(value.is_true());
    }
    default.unwrap_or(0)
}

fn to_float(value: Value) -> f64 {
    f64::try_from(value.clone())
        .ok()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Python's `\1`/`\g<name>` references → the regex crate's `${1}`/`${name}`.
pub fn python_replacement(replacement: &str) -> String {
    let re = regex::Regex::new(r"\\(\d+)|\\g<(\w+)>|\$").expect("static pattern");
    re.replace_all(replacement, |c: &regex::Captures| {
        match (c.get(1), c.get(2)) {
            (Some(n), _) | (_, Some(n)) => format!("${{{}}}", n.as_str()),
            _ => "$$".to_string(),
        }
    })
    .into_owned()
}

fn regex_replace(
    value: String,
    pattern: String,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let re = compile(&pattern, &kwargs)?;
    let out = re
        .try_replacen(
            &value,
            0,
            python_replacement(&replacement.unwrap_or_default()).as_str(),
        )
        .map_err(runtime)?
        .into_owned();
    kwargs.assert_all_used()?;
    Ok(out)
}

fn regex_search(
    value: String,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let re = compile(&pattern, &kwargs)?;
    let Some(caps) = re.captures(&value).map_err(runtime)? else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(
            caps.get(0).map(|m| m.as_str()).unwrap_or_default(),
        ));
    }
    let picked: Vec<Value> = groups
        .iter()
        .map(|g| {
            let g = g.trim_start_matches('\\');
            let m = match g.parse::<usize>() {
                Ok(n) => caps.get(n),
                Err(_) => caps.name(g.trim_start_matches("g<").trim_end_matches('>')),
            };
            Value::from(m.map(|m| m.as_str()).unwrap_or_default())
        })
        .collect();
    Ok(Value::from(picked))
}

fn regex_findall(value: String, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let re = compile(&pattern, &kwargs)?;
    let mut found = Vec::new();
    for c in re.captures_iter(&value) {
        let c = c.map_err(runtime)?;
        found.push({
            if c.len() == 1 {
                Value::from(c.get(0).map(|m| m.as_str()).unwrap_or_default())
            } else if c.len() == 2 {
                Value::from(c.get(1).map(|m| m.as_str()).unwrap_or_default())
            } else {
                Value::from(
                    (1..c.len())
                        .map(|i| c.get(i).map(|m| m.as_str()).unwrap_or_default().to_string())
                        .collect::<Vec<_>>(),
                )
            }
        });
    }
    Ok(Value::from(found))
}

fn b64decode(value: String) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| invalid(format!("b64decode: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub fn to_json_value(value: &Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn to_json(value: Value, _kwargs: Kwargs) -> String {
    serde_json::to_string(&to_json_value(&value)).unwrap_or_default()
}

/// The widest indent `to_nice_json` accepts (each nesting level repeats it).
const MAX_INDENT: usize = 100;

fn to_nice_json(value: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: usize = kwargs.get::<Option<usize>>("indent")?.unwrap_or(4);
    if indent > MAX_INDENT {
        return Err(invalid(format!(
            "to_nice_json: indent={indent} is over the limit of {MAX_INDENT}"
        )));
    }
    let json = to_json_value(&value);
    let mut buf = Vec::new();
    let pad = vec![b' '; indent];
    let formatter = serde_json::ser::PrettyFormatter::with_indent(&pad);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(&sort_keys(json), &mut ser).map_err(|e| invalid(e.to_string()))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A JSON value with object keys sorted (as Python's `sort_keys=True`), recursively.
pub fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

fn to_yaml(value: Value, _kwargs: Kwargs) -> Result<String, Error> {
    serde_saphyr::to_string(&to_json_value(&value)).map_err(|e| invalid(format!("to_yaml: {e}")))
}

fn from_json(value: String) -> Result<Value, Error> {
    let json: serde_json::Value =
        serde_json::from_str(&value).map_err(|e| invalid(format!("from_json: {e}")))?;
    Ok(Value::from(minijinja::value::Serde(json)))
}

fn from_yaml(value: String) -> Result<Value, Error> {
    crate::yaml::parse_str(&value, std::path::Path::new("<from_yaml>"))
        .map(|doc| doc.root.to_value())
        .map_err(|e| invalid(format!("from_yaml: {e}")))
}

fn dirname(path: String) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => path[..i].to_string(),
        None => String::new(),
    }
}

/// `key_name=` and `value_name=` of dict2items/items2dict (default `key` and `value`).
fn key_value_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    Ok((
        kwargs
            .get::<Option<String>>("key_name")?
            .unwrap_or_else(|| "key".into()),
        kwargs
            .get::<Option<String>>("value_name")?
            .unwrap_or_else(|| "value".into()),
    ))
}

fn dict2items(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = key_value_names(&kwargs)?;
    if value.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "dict2items requires a dictionary, got {}",
            value.kind()
        )));
    }
    let items: Vec<Value> = value
        .try_iter()?
        .map(|k| {
            let v = value.get_item(&k).unwrap_or_default();
            Value::from_object(indexmap::IndexMap::from([
                (Value::from(key_name.clone()), k),
                (Value::from(value_name.clone()), v),
            ]))
        })
        .collect();
    Ok(Value::from(items))
}

fn items2dict(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = key_value_names(&kwargs)?;
    let mut out = indexmap::IndexMap::new();
    for item in value.try_iter()? {
        let k = item.get_attr(&key_name)?;
        let v = item.get_attr(&value_name)?;
        out.insert(k.to_string(), v);
    }
    Ok(crate::template::map_value(out))
}

pub(crate) fn merge(base: &Value, over: &Value, recursive: bool) -> Value {
    if base.kind() != ValueKind::Map || over.kind() != ValueKind::Map {
        return over.clone();
    }
    let mut out: indexmap::IndexMap<String, Value> = indexmap::IndexMap::new();
    for k in base.try_iter().into_iter().flatten() {
        out.insert(k.to_string(), base.get_item(&k).unwrap_or_default());
    }
    for k in over.try_iter().into_iter().flatten() {
        let new = over.get_item(&k).unwrap_or_default();
        let merged = match out.get(&k.to_string()) {
            Some(old) if recursive => merge(old, &new, true),
            _ => new,
        };
        out.insert(k.to_string(), merged);
    }
    crate::template::map_value(out)
}

fn combine(value: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let _ = kwargs.get::<Option<String>>("list_merge")?;
    let mut out = value;
    for other in others.iter() {
        if other.kind() == ValueKind::Seq {
            for item in other.try_iter()? {
                out = merge(&out, &item, recursive);
            }
        } else {
            out = merge(&out, other, recursive);
        }
    }
    Ok(out)
}

fn as_list(value: &Value) -> Vec<Value> {
    value.try_iter().map(|it| it.collect()).unwrap_or_default()
}

fn unique_push(out: &mut Vec<Value>, v: Value) {
    if !out.contains(&v) {
        out.push(v);
    }
}

fn union(a: Value, b: Value) -> Value {
    let mut out = Vec::new();
    for v in as_list(&a).into_iter().chain(as_list(&b)) {
        unique_push(&mut out, v);
    }
    Value::from(out)
}

fn difference(a: Value, b: Value) -> Value {
    let other = as_list(&b);
    let mut out = Vec::new();
    for v in as_list(&a).into_iter().filter(|v| !other.contains(v)) {
        unique_push(&mut out, v);
    }
    Value::from(out)
}

fn intersect(a: Value, b: Value) -> Value {
    let other = as_list(&b);
    let mut out = Vec::new();
    for v in as_list(&a).into_iter().filter(|v| other.contains(v)) {
        unique_push(&mut out, v);
    }
    Value::from(out)
}

fn symmetric_difference(a: Value, b: Value) -> Value {
    let (la, lb) = (as_list(&a), as_list(&b));
    let mut out = Vec::new();
    for v in la
        .iter()
        .filter(|v| !lb.contains(v))
        .chain(lb.iter().filter(|v| !la.contains(v)))
    {
        unique_push(&mut out, v.clone());
    }
    Value::from(out)
}

fn flatten_into(value: &Value, levels: Option<i64>, out: &mut Vec<Value>) {
    for item in as_list(value) {
        if item.kind() == ValueKind::Seq && levels.is_none_or(|l| l > 0) {
            flatten_into(&item, levels.map(|l| l - 1), out);
        } else if !item.is_none() {
            out.push(item);
        }
    }
}

fn flatten(value: Value, levels: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match kwargs.get::<Option<i64>>("levels")? {
        Some(l) => Some(l),
        None => levels,
    };
    let mut out = Vec::new();
    flatten_into(&value, levels, &mut out);
    Ok(Value::from(out))
}

fn ternary(value: Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    match (value.is_none() || value.is_undefined(), none) {
        (true, Some(n)) => n,
        _ if truthy(&value) => yes,
        _ => no,
    }
}

fn mandatory(state: &State, value: Value, message: Option<String>) -> Result<Value, Error> {
    let _ = state;
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            message.unwrap_or_else(|| "Mandatory variable not defined.".into()),
        ));
    }
    Ok(value)
}

fn split(value: String, sep: Option<String>, max: Option<usize>) -> Vec<String> {
    match (sep, max) {
        (Some(sep), Some(max)) => value
            .splitn(max + 1, sep.as_str())
            .map(str::to_string)
            .collect(),
        (Some(sep), None) => value.split(sep.as_str()).map(str::to_string).collect(),
        (None, _) => value.split_whitespace().map(str::to_string).collect(),
    }
}

fn splitext(path: String) -> Value {
    let name_start = path.rfind('/').map(|i| i + 1).unwrap_or(0);
    match path[name_start..].rfind('.') {
        Some(i) if i > 0 => {
            let at = name_start + i;
            Value::from(vec![path[..at].to_string(), path[at..].to_string()])
        }
        _ => Value::from(vec![path, String::new()]),
    }
}

fn zip(value: Value, others: Rest<Value>) -> Value {
    let lists: Vec<Vec<Value>> = std::iter::once(as_list(&value))
        .chain(others.iter().map(as_list))
        .collect();
    let len = lists.iter().map(Vec::len).min().unwrap_or(0);
    Value::from(
        (0..len)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    )
}

pub(crate) fn type_debug(value: Value) -> &'static str {
    match value.kind() {
        ValueKind::Bool => "bool",
        ValueKind::Number if value.as_i64().is_some() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::None => "NoneType",
        _ => "AnsibleUndefined",
    }
}

/// Jinja2's `escape`: `&`, `<`, `>`, `"` and `'` as HTML entities.
fn html_escape(value: Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn comment_frames_the_text_as_ansible_does() {
        assert_eq!(comment("Ansible managed".into()), "#\n# Ansible managed\n#");
        assert_eq!(comment("a\n\nb".into()), "#\n# a\n#\n# b\n#");
    }

    #[test]
    fn escape_escapes_target_data_too() {
        let env = crate::template::Templar::new();
        let scope = crate::template::Scope::new(
            env.clone(),
            vec![std::sync::Arc::new(crate::value::VarMap::from([(
                "out".to_string(),
                crate::template::trust::untrusted_str("<b>\"it's\" & more</b>"),
            )]))],
        );
        let text = env.render_str("{{ out | e }} {{ out | escape }}", &scope);
        let expected = "&lt;b&gt;&#34;it&#39;s&#34; &amp; more&lt;/b&gt;";
        assert_eq!(
            text.map(|v| v.to_string()).unwrap_or_default(),
            format!("{expected} {expected}")
        );
    }

    #[test]
    fn python_backrefs() {
        assert_eq!(python_replacement(r"\1-\g<x>$"), "${1}-${x}$$");
    }

    #[test]
    fn a_huge_indent_is_refused() {
        let env = {
            let mut env = minijinja::Environment::new();
            register(&mut env);
            env
        };
        let err = env
            .render_str("{{ [1] | to_nice_json(indent=10**9) }}", ())
            .unwrap_err();
        assert!(err.to_string().contains("limit of 100"), "{err}");
        let ok = env
            .render_str("{{ [1] | to_nice_json(indent=2) }}", ())
            .unwrap();
        assert_eq!(ok, "[\n  1\n]");
    }

    #[test]
    fn bool_filter_follows_ansible() {
        assert!(!to_bool(Value::from("no")));
        assert!(to_bool(Value::from("yes")));
        assert!(to_bool(Value::from(true)));
    }
}
