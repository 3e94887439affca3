//! Ansible's Jinja tests: results (`succeeded`, `changed`, …), regex, `version`, paths.

use super::pyregex::{compile, runtime};
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

pub fn register(env: &mut Environment<'static>) {
    // Each test under every name ansible-core gives it (core.py, files.py, mathstuff.py).
    // Result tests take a task result only, as ansible-core's raise for anything else.
    for name in ["succeeded", "success", "successful"] {
        env.add_test(name, |v: Value| {
            Ok(!result_flag("failed", &v, "failed", false)?)
        });
    }
    for name in ["failed", "failure"] {
        env.add_test(name, |v: Value| result_flag("failed", &v, "failed", false));
    }
    env.add_test("unreachable", |v: Value| {
        result_flag("unreachable", &v, "unreachable", false)
    });
    env.add_test("reachable", |v: Value| {
        Ok(!result_flag("unreachable", &v, "unreachable", false)?)
    });
    env.add_test("timedout", |v: Value| {
        v.get_attr("timedout")
            .is_ok_and(|t| !t.is_undefined() && flag(&t, "period"))
    });
    for name in ["changed", "change"] {
        env.add_test(name, changed);
    }
    for name in ["skipped", "skip"] {
        env.add_test(name, |v: Value| {
            result_flag("skipped", &v, "skipped", false)
        });
    }
    // A task that did not run asynchronously counts as started and finished.
    env.add_test("finished", |v: Value| {
        result_flag("finished", &v, "finished", true)
    });
    env.add_test("started", |v: Value| {
        result_flag("started", &v, "started", true)
    });
    env.add_test("match", regex_match);
    env.add_test("search", regex_search);
    env.add_test("regex", regex_search);
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    env.add_test("truthy", |v: Value| super::truthy(&v));
    env.add_test("falsy", |v: Value| !super::truthy(&v));
    env.add_test("any", |v: Value| items(&v).iter().any(Value::is_true));
    env.add_test("all", |v: Value| items(&v).iter().all(Value::is_true));
    env.add_test("contains", contains);
    // ansible-core's own test of a value's trust: a string kiln would template (one the
    // playbook's side wrote) is trusted; what a target sent, or `!unsafe`, is not.
    env.add_test(
        "ansible._protomatter.tagged_with",
        |v: Value, tag: String| {
            tag == "TrustedAsTemplate"
                && v.kind() == ValueKind::String
                && !crate::value::is_untrusted(&v)
        },
    );
    let subset = |a: Value, b: Value| {
        let b = items(&b);
        items(&a).iter().all(|x| b.contains(x))
    };
    for name in ["subset", "issubset"] {
        env.add_test(name, subset);
    }
    for name in ["superset", "issuperset"] {
        env.add_test(name, move |a: Value, b: Value| subset(b, a));
    }
    for name in ["nan", "isnan"] {
        env.add_test(name, |v: Value| f64::try_from(v).is_ok_and(f64::is_nan));
    }
    let path = |p: &str| std::path::PathBuf::from(p);
    for name in ["file", "is_file"] {
        env.add_test(name, move |p: String| path(&p).is_file());
    }
    for name in ["directory", "is_dir"] {
        env.add_test(name, move |p: String| path(&p).is_dir());
    }
    for name in ["link", "is_link"] {
        env.add_test(name, move |p: String| path(&p).is_symlink());
    }
    env.add_test("exists", move |p: String| path(&p).exists());
    env.add_test("link_exists", move |p: String| {
        path(&p).symlink_metadata().is_ok()
    });
    for name in ["abs", "is_abs"] {
        env.add_test(name, |p: String| p.starts_with('/'));
    }
    for name in ["same_file", "is_same_file"] {
        env.add_test(name, move |a: String, b: String| {
            same_file(&path(&a), &path(&b))
        });
    }
    for name in ["mount", "is_mount"] {
        env.add_test(name, move |p: String| is_mount(&path(&p)));
    }
}

/// A list's (or any iterable's) items; nothing for a scalar.
fn items(value: &Value) -> Vec<Value> {
    value.try_iter().map(|it| it.collect()).unwrap_or_default()
}

/// `result[name]` of a task result, or `default` when it has none; an error for a value
/// that is not a result.
fn result_flag(test: &str, result: &Value, name: &str, default: bool) -> Result<bool, Error> {
    if result.kind() != ValueKind::Map {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("The '{test}' test expects a dictionary"),
        ));
    }
    Ok(flag_or(result, name, default))
}

/// A result without `changed` of its own is changed when one of its loop results is.
fn changed(result: Value) -> Result<bool, Error> {
    let has_own = result.get_attr("changed").is_ok_and(|v| !v.is_undefined());
    if has_own || result.kind() != ValueKind::Map {
        return result_flag("changed", &result, "changed", false);
    }
    Ok(result
        .get_attr("results")
        .ok()
        .filter(|r| r.kind() == ValueKind::Seq)
        .is_some_and(|r| {
            r.try_iter()
                .into_iter()
                .flatten()
                .any(|r| flag(&r, "changed"))
        }))
}

fn flag_or(result: &Value, name: &str, default: bool) -> bool {
    match result.get_attr(name) {
        Ok(v) if !v.is_undefined() => v.is_true(),
        _ => default,
    }
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A mount point: on another device than its parent, or the same inode as its parent (`/`).
fn is_mount(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return false;
    }
    match std::fs::metadata(path.join("..")) {
        Ok(parent) => parent.dev() != meta.dev() || parent.ino() == meta.ino(),
        Err(_) => false,
    }
}

fn flag(result: &Value, name: &str) -> bool {
    result.get_attr(name).map(|v| v.is_true()).unwrap_or(false)
}

fn regex_match(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let re = compile(&format!("^(?:{pattern})"), &kwargs)?;
    re.is_match(&value).map_err(runtime)
}

fn regex_search(value: String, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    compile(&pattern, &kwargs)?
        .is_match(&value)
        .map_err(runtime)
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

/// The release part of a version (its leading digits and dots) and what follows it.
fn split_release(version: &str) -> (&str, &str) {
    let version = version.trim_start_matches(['v', 'V']);
    let end = version
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(version.len());
    let (release, rest) = version.split_at(end);
    (
        release.trim_end_matches('.'),
        rest.trim_start_matches(['-', '.', '_']),
    )
}

/// PEP 440 and SemVer order: releases by number, a pre-release before its release.
fn compare_with_prereleases(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let ((ra, pa), (rb, pb)) = (split_release(a), split_release(b));
    match compare_versions(ra, rb) {
        Equal => match (pa.is_empty(), pb.is_empty()) {
            (true, true) => Equal,
            (true, false) => Greater,
            (false, true) => Less,
            (false, false) => compare_versions(pa, pb),
        },
        other => other,
    }
}

fn version_test(
    value: Value,
    other: Value,
    op: Option<String>,
    // `strict` may come positionally, as in Python.
    _strict: Option<Value>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let op = match op {
        Some(op) => op,
        None => kwargs
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".into()),
    };
    let _ = kwargs.get::<Option<bool>>("strict");
    let version_type = kwargs.get::<Option<String>>("version_type")?;
    let text = |v: &Value| {
        if v.kind() == ValueKind::String {
            v.as_str().unwrap_or_default().to_string()
        } else {
            v.to_string()
        }
    };
    let ord = match version_type.as_deref() {
        // Pre-releases come before their release (2.14.0rc1 < 2.14.0).
        Some("pep440" | "semver" | "semantic") => {
            compare_with_prereleases(&text(&value), &text(&other))
        }
        _ => compare_versions(&text(&value), &text(&other)),
    };
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
    fn prereleases_come_first_for_pep440_and_semver() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_with_prereleases("2.14.0rc1", "2.14.0"), Less);
        assert_eq!(compare_with_prereleases("1.0.0-alpha", "1.0.0-beta"), Less);
        assert_eq!(compare_with_prereleases("1.0.1", "1.0.0-rc1"), Greater);
        assert_eq!(compare_versions("2.14.0rc1", "2.14.0"), Greater);
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10", "1.9"), std::cmp::Ordering::Greater);
        assert_eq!(compare_versions("12", "12.0"), std::cmp::Ordering::Equal);
    }

    #[test]
    fn every_name_ansible_gives_a_test_works() {
        let mut env = Environment::new();
        register(&mut env);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path().join("l")).unwrap();
        let ctx = minijinja::context! {
            ok => minijinja::context! { failed => false, changed => true },
            down => minijinja::context! { unreachable => true },
            d => dir.path().display().to_string(),
            f => file.display().to_string(),
            l => dir.path().join("l").display().to_string(),
        };
        let render = |expr: &str| env.render_str(&format!("{{{{ {expr} }}}}"), &ctx).unwrap();
        for expr in [
            "ok is successful",
            "ok is reachable and down is unreachable",
            "ok is finished and ok is started",
            "[1] is issubset([1, 2]) and [1, 2] is issuperset([2])",
            "[1, 0] is any and not ([1, 0] is all)",
            "d is is_dir and f is is_file and l is is_link and l is link_exists",
            "f is is_abs and f is same_file(l) and '/' is is_mount and not (d is mount)",
        ] {
            assert_eq!(render(expr), "True", "{expr}");
        }
    }

    #[test]
    fn result_tests_take_results_only_and_see_loop_changes() {
        let mut env = Environment::new();
        register(&mut env);
        let ctx = minijinja::context! {
            looped => minijinja::context! { results => vec![
                minijinja::context! { changed => false },
                minijinja::context! { changed => true },
            ] },
        };
        let render = |expr: &str| env.render_str(&format!("{{{{ {expr} }}}}"), &ctx);
        assert_eq!(render("looped is changed").unwrap(), "True");
        let err = render("'nope' is failure").unwrap_err().to_string();
        assert!(
            err.contains("The 'failed' test expects a dictionary"),
            "{err}"
        );
        assert!(render("'nope' is changed").is_err());
    }

    #[test]
    fn regex_tests_take_python_look_around() {
        let mut env = Environment::new();
        register(&mut env);
        let render = |expr: &str| env.render_str(&format!("{{{{ {expr} }}}}"), ()).unwrap();
        assert_eq!(
            render("'qa_1 qz_1' is search('(?=.*qa_1)(?=.*qz_1)')"),
            "True"
        );
        assert_eq!(render("'qa_1' is search('(?=.*qa_1)(?=.*qz_1)')"), "False");
        assert_eq!(render("'abab' is match('(ab)\\\\1')"), "True");
    }
}
