//! Lookups that turn their terms into a list of items (`items`, `dict`, `nested`,
//! `subelements`, `sequence`, `fileglob`, `lines`, `varnames`, …): what a `with_<lookup>:` loop
//! iterates over, and what `lookup()`/`query()` return in templates. Each follows the
//! ansible-core lookup plugin of the same name.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, State, Value};

use super::lookups::fail;

/// The items of list lookup `name`, or None when `name` is not one of these lookups.
pub fn run(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Option<Result<Vec<Value>, Error>> {
    Some(match name {
        "items" => Ok(flatten_once(terms)),
        "list" => Ok(terms.to_vec()),
        "dict" => dict(terms),
        "indexed_items" => Ok(flatten_once(terms)
            .into_iter()
            .enumerate()
            .map(|(i, v)| Value::from(vec![Value::from(i), v]))
            .collect()),
        "together" if terms.is_empty() => Err(fail(
            "with_together requires at least one element in each list".into(),
        )),
        "together" => Ok(together(terms)),
        "nested" => Ok(nested(terms)),
        "sequence" => sequence(terms, kwargs),
        "subelements" => subelements(terms),
        "fileglob" => Ok(fileglob(state, terms)),
        "lines" => lines(terms),
        "varnames" => varnames(state, terms),
        _ => return None,
    })
}

fn flatten_once(terms: &[Value]) -> Vec<Value> {
    terms.iter().flat_map(crate::value::list_of).collect()
}

fn dict(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for term in terms {
        if term.kind() != ValueKind::Map {
            return Err(fail(format!(
                "the 'dict' lookup plugin expects a dictionary, got '{term}' of type <class '{}'>)",
                super::lookups::python_type(term)
            )));
        }
        for key in term.try_iter()? {
            let value = term.get_item(&key)?;
            out.push(crate::value::map_value(
                [("key".to_string(), key), ("value".to_string(), value)].into(),
            ));
        }
    }
    Ok(out)
}

/// Zips the terms, padding the shorter ones with None.
fn together(terms: &[Value]) -> Vec<Value> {
    let lists: Vec<Vec<Value>> = terms.iter().map(crate::value::list_of).collect();
    let len = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            Value::from(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or(Value::from(())))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Every combination of one item from each term, in order.
fn nested(terms: &[Value]) -> Vec<Value> {
    if terms.is_empty() {
        return vec![];
    }
    let mut product: Vec<Vec<Value>> = vec![vec![]];
    for list in terms.iter().map(crate::value::list_of) {
        product = product
            .into_iter()
            .flat_map(|prefix| {
                list.iter()
                    .map(move |x| [prefix.clone(), vec![x.clone()]].concat())
            })
            .collect();
    }
    product.into_iter().map(Value::from).collect()
}

/// `start=1 end=5 stride=1 format=web%02d`, `count=3`, the short form `1-5/1:web%02d`, or
/// the same as keyword arguments.
fn sequence(terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    // Keyword arguments are every term's defaults; what a term says wins.
    let mut defaults = Vec::new();
    for key in ["start", "end", "count", "stride", "format"] {
        if let Some(value) = kwargs.get::<Option<Value>>(key)? {
            defaults.push((key.to_string(), value.to_string()));
        }
    }
    let mut specs: Vec<Vec<(String, String)>> = terms
        .iter()
        .map(|term| parse_sequence(&term.to_string()).map(|own| [defaults.clone(), own].concat()))
        .collect::<Result<_, _>>()?;
    if specs.is_empty() {
        if defaults.is_empty() {
            return Ok(Vec::new());
        }
        specs.push(defaults);
    }
    let mut out = Vec::new();
    for spec in specs {
        let unknown: Vec<String> = spec
            .iter()
            .filter(|(k, _)| !["start", "end", "count", "stride", "format"].contains(&k.as_str()))
            .map(|(k, _)| format!("'{k}'"))
            .collect();
        if !unknown.is_empty() {
            return Err(fail(format!(
                "unrecognized arguments to with_sequence: [{}]",
                unknown.join(", ")
            )));
        }
        let get = |k: &str| spec.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v);
        let num = |k: &str, default: i64| -> Result<i64, Error> {
            match get(k) {
                None => Ok(default),
                Some(v) => parse_int(v)
                    .ok_or_else(|| fail(format!("sequence: {k} has an invalid value '{v}'"))),
            }
        };
        let start = num("start", 1)?;
        let stride = num("stride", 1)?;
        let end = match get("count") {
            Some(_) if get("end").is_some() => {
                return Err(fail(
                    "sequence: can't specify both count and end in with_sequence".into(),
                ))
            }
            Some(_) => {
                let count = num("count", 0)?;
                if count == 0 {
                    continue;
                }
                start + count * stride - 1
            }
            None if get("end").is_none() => {
                return Err(fail(
                    "sequence: must specify count or end in with_sequence".into(),
                ))
            }
            None => num("end", start)?,
        };
        if stride > 0 && end < start {
            return Err(fail(
                "sequence: to count backwards make stride negative".into(),
            ));
        }
        if stride < 0 && end > start {
            return Err(fail(
                "sequence: to count forward don't make stride negative".into(),
            ));
        }
        if stride == 0 {
            continue;
        }
        let format = get("format").cloned().unwrap_or_else(|| "%d".into());
        if !format.contains('%') {
            return Err(fail(format!("sequence: bad formatting string: {format}")));
        }
        let mut n = start;
        loop {
            if (stride > 0 && n > end) || (stride < 0 && n < end) {
                break;
            }
            out.push(Value::from(printf_int(&format, n)));
            n += stride;
        }
    }
    Ok(out)
}

fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return i64::from_str_radix(octal, 8).ok();
    }
    text.parse().ok()
}

fn parse_sequence(term: &str) -> Result<Vec<(String, String)>, Error> {
    let term = term.trim();
    if !term.contains('=') {
        // start-end/stride:format, each part after start optional
        let (range, format) = match term.split_once(':') {
            Some((range, format)) => (range, Some(format)),
            None => (term, None),
        };
        let (range, stride) = match range.split_once('/') {
            Some((range, stride)) => (range, Some(stride)),
            None => (range, None),
        };
        let mut spec = Vec::new();
        match range.split_once('-') {
            Some((start, end)) => {
                spec.push(("start".to_string(), start.to_string()));
                spec.push(("end".to_string(), end.to_string()));
            }
            None => spec.push(("end".to_string(), range.to_string())),
        }
        if let Some(stride) = stride {
            spec.push(("stride".to_string(), stride.to_string()));
        }
        if let Some(format) = format {
            spec.push(("format".to_string(), format.to_string()));
        }
        return Ok(spec);
    }
    term.split_whitespace()
        .map(|word| {
            word.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| fail(format!("sequence: can't parse '{word}' as key=value")))
        })
        .collect()
}

/// Formats `n` with a printf-style format holding one integer conversion (`%d`, `%02d`,
/// `%x`, `%o`, `%5d`).
fn printf_int(format: &str, n: i64) -> String {
    let Some(at) = format.find('%') else {
        return format.to_string();
    };
    let rest = &format[at + 1..];
    let spec_len = rest
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| i + 1)
        .unwrap_or(rest.len());
    let (spec, tail) = rest.split_at(spec_len);
    let conversion = spec.chars().last().unwrap_or('d');
    let flags = &spec[..spec.len().saturating_sub(1)];
    let zero = flags.starts_with('0');
    let width: usize = flags.trim_start_matches('0').parse().unwrap_or(0);
    let digits = match conversion {
        'x' => format!("{n:x}"),
        'X' => format!("{n:X}"),
        'o' => format!("{n:o}"),
        _ => n.to_string(),
    };
    let padded = if zero {
        format!("{digits:0>width$}")
    } else {
        format!("{digits:>width$}")
    };
    format!("{}{padded}{tail}", &format[..at])
}

/// `[list_or_dict, 'sub.key', {skip_missing: true}]`: each element paired with each item of
/// its list at `sub.key`; that key is removed from the element, as ansible-core does.
fn subelements(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let usage = || {
        fail("subelements lookup expects a list of two or three items: first a dict or a list, second a string pointing to the subkey".into())
    };
    if !(2..=3).contains(&terms.len()) {
        return Err(usage());
    }
    let path: Vec<String> = match terms[1].as_str() {
        Some(path) => path.split('.').map(str::to_string).collect(),
        None => return Err(usage()),
    };
    if terms
        .get(2)
        .is_some_and(|flags| flags.kind() != ValueKind::Map)
    {
        return Err(fail(
            "subelements lookup: the optional third item must be a dict with flags skip_missing"
                .into(),
        ));
    }
    let skip_missing = terms
        .get(2)
        .and_then(|flags| flags.get_attr("skip_missing").ok())
        .is_some_and(|v| crate::value::truthy(&v));
    let elements = match terms[0].kind() {
        ValueKind::Map => {
            if skipped(&terms[0]) {
                return Ok(vec![]);
            }
            terms[0]
                .try_iter()?
                .map(|k| terms[0].get_item(&k))
                .collect::<Result<Vec<_>, _>>()?
        }
        ValueKind::Seq => crate::value::list_of(&terms[0]),
        _ => return Err(usage()),
    };
    let mut out = Vec::new();
    for element in elements {
        if element.kind() != ValueKind::Map {
            return Err(fail(format!(
                "subelements lookup expects a dictionary, got '{element}'"
            )));
        }
        if skipped(&element) {
            continue;
        }
        let Some((stripped, sublist)) = take_path(&element, &path, skip_missing)? else {
            continue;
        };
        for item in sublist {
            out.push(Value::from(vec![stripped.clone(), item]));
        }
    }
    Ok(out)
}

fn skipped(value: &Value) -> bool {
    value
        .get_attr("skipped")
        .is_ok_and(|v| !v.is_undefined() && v.is_true())
}

/// The list at `path` inside `element`, and `element` without it; None when missing and
/// `skip_missing`.
fn take_path(
    element: &Value,
    path: &[String],
    skip_missing: bool,
) -> Result<Option<(Value, Vec<Value>)>, Error> {
    let Some((key, rest)) = path.split_first() else {
        return Ok(None);
    };
    let child = element.get_attr(key).unwrap_or_default();
    if child.is_undefined() {
        return if skip_missing {
            Ok(None)
        } else {
            Err(fail(format!(
                "could not find '{key}' key in iterated item '{element}'"
            )))
        };
    }
    let (replacement, sublist) = if rest.is_empty() {
        if child.kind() != ValueKind::Seq {
            return Err(fail(format!(
                "the key {key} should point to a list, got '{child}'"
            )));
        }
        (None, crate::value::list_of(&child))
    } else {
        if child.kind() != ValueKind::Map {
            return if skip_missing {
                Ok(None)
            } else {
                Err(fail(format!(
                    "the key {key} should point to a dictionary, got '{child}'"
                )))
            };
        }
        match take_path(&child, rest, skip_missing)? {
            Some((inner, sublist)) => (Some(inner), sublist),
            None => return Ok(None),
        }
    };
    let mut map = indexmap::IndexMap::new();
    for k in element.try_iter()? {
        let name = k.to_string();
        if &name == key {
            if let Some(inner) = &replacement {
                map.insert(name, inner.clone());
            }
        } else {
            map.insert(name, element.get_item(&k)?);
        }
    }
    Ok(Some((crate::value::map_value(map), sublist)))
}

/// Controller files matching each pattern (relative ones in the `files` directories of the
/// search path), files only.
fn fileglob(state: &State, terms: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for pattern in terms.iter().map(|t| t.to_string()) {
        let candidates: Vec<String> = if pattern.starts_with('/') {
            vec![pattern]
        } else {
            super::lookups::search_paths(state)
                .iter()
                .flat_map(|d| [d.join("files").join(&pattern), d.join(&pattern)])
                .map(|p| p.display().to_string())
                .collect()
        };
        for candidate in candidates {
            let matches: Vec<Value> = glob::glob(&candidate)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|p| p.is_file())
                .map(|p| Value::from(p.display().to_string()))
                .collect();
            if !matches.is_empty() {
                out.extend(matches);
                break;
            }
        }
    }
    out
}

/// The lines a command run on the controller prints.
fn lines(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for term in terms {
        let stdout = super::lookups::controller_command("lines", term)?;
        out.extend(stdout.lines().map(|l| Value::from(l.to_string())));
    }
    Ok(out)
}

/// The names of the variables matching each regular expression (Python's `re.search`).
fn varnames(state: &State, terms: &[Value]) -> Result<Vec<Value>, Error> {
    let names: Vec<String> = state
        .lookup("vars")
        .and_then(|vars| {
            vars.try_iter()
                .ok()
                .map(|it| it.map(|k| k.to_string()).collect())
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for term in terms {
        let Some(pattern) = term.as_str() else {
            return Err(fail(format!(
                "Invalid setting identifier, \"{term}\" is not a string, it is a {}",
                term.kind()
            )));
        };
        let re = super::pyregex::plain(pattern).map_err(|e| {
            fail(format!(
                "Unable to use \"{pattern}\" as a search parameter: {e}"
            ))
        })?;
        for name in &names {
            if re.is_match(name).map_err(super::pyregex::runtime)? {
                out.push(Value::from(name.as_str()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn json(value: serde_json::Value) -> Value {
        Value::from(minijinja::value::Serde(value))
    }

    fn strings(values: &[Value]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn sequences_in_every_form() {
        let kwargs = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
        let run = |spec: &str| strings(&sequence(&[Value::from(spec)], &kwargs).unwrap());
        assert_eq!(
            run("start=1 end=3 format=web%02d"),
            ["web01", "web02", "web03"]
        );
        assert_eq!(run("count=2"), ["1", "2"]);
        assert_eq!(run("4-8/2"), ["4", "6", "8"]);
        assert_eq!(
            run("2-3:host%d.example"),
            ["host2.example", "host3.example"]
        );
        assert_eq!(run("start=5 end=1 stride=-2"), ["5", "3", "1"]);
        assert_eq!(run("start=10 end=11 format=%x"), ["a", "b"]);
        assert_eq!(run("count=0"), Vec::<String>::new());
        assert!(sequence(&[Value::from("start=5 end=1")], &kwargs).is_err());
        assert!(sequence(&[Value::from("count=2 end=3")], &kwargs).is_err());
        let with_stride = Kwargs::from_iter([("stride", Value::from(-1))]);
        assert_eq!(
            strings(&sequence(&[Value::from("count=3 start=0")], &with_stride).unwrap()),
            ["0", "-1", "-2", "-3", "-4"]
        );
        assert!(sequence(&[], &kwargs).unwrap().is_empty());
        for (spec, message) in [
            (
                "start=0 junk=3",
                "unrecognized arguments to with_sequence: ['junk']",
            ),
            ("1-B/2", "end has an invalid value 'B'"),
            ("start=1", "must specify count or end"),
            ("start=1 end=4 format=d", "bad formatting string: d"),
        ] {
            let err = sequence(&[Value::from(spec)], &kwargs).unwrap_err();
            assert!(err.to_string().contains(message), "{spec}: {err}");
        }
    }

    #[test]
    fn subelements_pair_each_element_with_its_list_and_drop_the_key() {
        let users = json(serde_json::json!([
            {"name": "alice", "keys": ["a1", "a2"]},
            {"name": "bob", "keys": []},
            {"name": "carol", "skipped": true},
        ]));
        let items = subelements(&[users.clone(), Value::from("keys")]).unwrap();
        assert_eq!(
            strings(&items),
            ["[{'name': 'alice'}, 'a1']", "[{'name': 'alice'}, 'a2']"]
        );
        let missing = json(serde_json::json!([{"name": "dave"}]));
        assert!(subelements(&[missing.clone(), Value::from("keys")]).is_err());
        let flags = json(serde_json::json!({"skip_missing": true}));
        assert!(subelements(&[missing, Value::from("keys"), flags])
            .unwrap()
            .is_empty());
        let nested = json(serde_json::json!([
            {"name": "eve", "auth": {"keys": ["e1"], "shell": "sh"}},
        ]));
        let items = subelements(&[nested, Value::from("auth.keys")]).unwrap();
        assert_eq!(
            strings(&items),
            ["[{'name': 'eve', 'auth': {'shell': 'sh'}}, 'e1']"]
        );
    }

    #[test]
    fn dicts_together_nested_and_items() {
        let map = json(serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(
            strings(&dict(&[map]).unwrap()),
            ["{'key': 'a', 'value': 1}", "{'key': 'b', 'value': 2}"]
        );
        assert!(dict(&[Value::from(vec![1])]).is_err());
        let a = Value::from(vec!["x", "y"]);
        let b = Value::from(vec![1]);
        assert_eq!(
            strings(&together(&[a.clone(), b.clone()])),
            ["['x', 1]", "['y', None]"]
        );
        assert_eq!(strings(&nested(&[a.clone(), b])), ["['x', 1]", "['y', 1]"]);
        assert_eq!(
            strings(&flatten_once(&[a, Value::from("z")])),
            ["x", "y", "z"]
        );
    }

    #[test]
    fn a_command_a_target_sent_is_never_run_on_the_controller() {
        let planted = crate::template::untrusted_str("touch /tmp/never");
        let err = lines(&[planted]).unwrap_err();
        assert!(err.to_string().contains("came from a target"), "{err}");
        assert_eq!(
            strings(&lines(&[Value::from("echo a; echo b")]).unwrap()),
            ["a", "b"]
        );
    }
}
