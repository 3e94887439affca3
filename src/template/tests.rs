//! Ansible's Jinja tests: results (`succeeded`, `changed`, …), regex, `version`, paths.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

pub fn register(env: &mut Environment<'static>) {
    env.add_test("succeeded", |v: Value| !flag(&v, "failed"));
    env.add_test("success", |v: Value| !flag(&v, "failed"));
    env.add_test("failed", |v: Value| flag(&v, "failed"));
    env.add_test("failure", |v: Value| flag(&v, "failed"));
    env.add_test("changed", |v: Value| flag(&v, "changed"));
    env.add_test("change", |v: Value| flag(&v, "changed"));
    env.add_test("skipped", |v: Value| flag(&v, "skipped"));
    env.add_test("skip", |v: Value| flag(&v, "skipped"));
    env.add_test("match", regex_match);
    env.add_test("search", regex_search);
    env.add_test("regex", regex_search);
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    env.add_test("truthy", |v: Value| super::truthy(&v));
    env.add_test("falsy", |v: Value| !super::truthy(&v));
    env.add_test("contains", contains);
    env.add_test("subset", |a: Value, b: Value| {
        let b: Vec<Value> = b.try_iter().map(|i| i.collect()).unwrap_or_default();
        a.try_iter()
            .map(|mut it| it.all(|x| b.contains(&x)))
            .unwrap_or(false)
    });
    env.add_test("superset", |a: Value, b: Value| {
        let a: Vec<Value> = a.try_iter().map(|i| i.collect()).unwrap_or_default();
        b.try_iter()
            .map(|mut it| it.all(|x| a.contains(&x)))
            .unwrap_or(false)
    });
    env.add_test("file", |p: String| std::path::Path::new(&p).is_file());
    env.add_test("directory", |p: String| std::path::Path::new(&p).is_dir());
    env.add_test("exists", |p: String| std::path::Path::new(&p).exists());
    env.add_test("abs", |p: String| p.starts_with('/'));
}

fn flag(result: &Value, name: &str) -> bool {
    result.get_attr(name).map(|v| v.is_true()).unwrap_or(false)
}

fn regex_match(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let re = build(&format!("^(?:{pattern})"), &kwargs)?;
    Ok(re.is_match(&value))
}

fn regex_search(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    Ok(build(&pattern, &kwargs)?.is_match(&value))
}

fn build(pattern: &str, kwargs: &Kwargs) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false))
        .multi_line(kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("invalid regular expression: {e}"),
            )
        })
}

/// Compares dotted versions part by part, numerically where both parts are numbers.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| -> Vec<String> {
        s.split(['.', '-', '+', '~', ':'])
            .map(str::to_string)
            .collect()
    };
    let (pa, pb) = (split(a), split(b));
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (
            pa.get(i).map(String::as_str).unwrap_or("0"),
            pb.get(i).map(String::as_str).unwrap_or("0"),
        );
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    std::cmp::Ordering::Equal
}

fn version_test(
    value: Value,
    other: Value,
    op: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let op = match op {
        Some(op) => op,
        None => kwargs
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".into()),
    };
    let _ = kwargs.get::<Option<bool>>("strict");
    let _ = kwargs.get::<Option<String>>("version_type");
    let text = |v: &Value| {
        if v.kind() == ValueKind::String {
            v.as_str().unwrap_or_default().to_string()
        } else {
            v.to_string()
        }
    };
    let ord = compare_versions(&text(&value), &text(&other));
    use std::cmp::Ordering::*;
    Ok(match op.as_str() {
        "==" | "=" | "eq" => ord == Equal,
        "!=" | "<>" | "ne" => ord != Equal,
        "<" | "lt" => ord == Less,
        "<=" | "le" => ord != Greater,
        ">" | "gt" => ord == Greater,
        ">=" | "ge" => ord != Less,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("version: unknown operator '{other}'"),
            ))
        }
    })
}

/// `seq is contains(item)`: Python's `item in seq`, so a substring of a string.
fn contains(seq: Value, item: Value) -> bool {
    if let (Some(text), Some(part)) = (seq.as_str(), item.as_str()) {
        return text.contains(part);
    }
    seq.try_iter()
        .map(|mut it| it.any(|x| x == item))
        .unwrap_or(false)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn contains_finds_substrings_items_and_keys() {
        let mut env = Environment::new();
        register(&mut env);
        let render = |expr: &str| env.render_str(expr, ()).unwrap();
        assert_eq!(
            render("{{ 'Assertion failed' is contains('Assertion') }}"),
            "True"
        );
        assert_eq!(render("{{ 'abc' is contains('x') }}"), "False");
        assert_eq!(render("{{ [1, 2] is contains(2) }}"), "True");
        assert_eq!(render("{{ {'k': 1} is contains('k') }}"), "True");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10", "1.9"), std::cmp::Ordering::Greater);
        assert_eq!(compare_versions("12", "12.0"), std::cmp::Ordering::Equal);
    }
}
