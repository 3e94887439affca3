//! Lookups (`lookup('env', …)`, `file`, `template`, `pipe`, `first_found`, `vars`) and
//! `query`/`q`; the lookups that make lists (`items`, `dict`, `subelements`, …) are in
//! `list_lookups.rs`, and a `with_<lookup>:` loop asks for its items through `loop_items`.
//! They run on the controller, as in Ansible. Relative paths are searched for in the
//! directories listed by the `__search_paths` variable (role files/templates, playbook dir).

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

pub fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
    env.add_function(LOOP_ITEMS, loop_items);
}

/// The function a `with_<lookup>:` loop calls: `(lookup name, list of terms)`.
pub(super) const LOOP_ITEMS: &str = "__kiln_loop_items";

pub(super) fn fail(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// What a shell command run on the controller prints (`pipe`, `lines`); a failure names
/// the lookup and the command. Text a target sent back is never run as a command here.
pub(super) fn controller_command(lookup: &str, command: &Value) -> Result<String, Error> {
    if super::is_untrusted(command) {
        return Err(fail(format!(
            "lookup('{lookup}'): refusing to run a command that came from a target"
        )));
    }
    let command = command.to_string();
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .output()
        .map_err(|e| fail(format!("lookup('{lookup}'): {e}")))?;
    if !output.status.success() {
        return Err(fail(format!(
            "lookup('{lookup}'): '{command}' exited with {}",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The controller directories relative lookup paths are searched in.
pub(super) fn search_paths(state: &State) -> Vec<std::path::PathBuf> {
    state
        .lookup("__search_paths")
        .and_then(|dirs| dirs.try_iter().ok().map(|it| it.collect::<Vec<_>>()))
        .unwrap_or_default()
        .into_iter()
        .map(|d| std::path::PathBuf::from(d.to_string()))
        .collect()
}

/// Finds a controller file: absolute as given, else in the search directories.
pub fn find_file(state: &State, name: &str, subdir: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(name);
    if path.is_absolute() {
        return path.exists().then(|| path.to_path_buf());
    }
    for dir in search_paths(state) {
        for candidate in [dir.join(subdir).join(name), dir.join(name)] {
            if candidate.exists() {
                return Some(candidate);
            }
        }
    }
    None
}

fn run_lookup(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let name = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    if let Some(items) = super::list_lookups::run(state, name, terms, kwargs) {
        return items;
    }
    let mut out = Vec::new();
    match name {
        "env" => {
            for term in terms {
                let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
                out.push(Value::from(
                    std::env::var(term.to_string()).unwrap_or(default),
                ));
            }
        }
        "file" => {
            for term in terms {
                let path = find_file(state, &term.to_string(), "files")
                    .ok_or_else(|| fail(format!("lookup('file'): could not find '{term}'")))?;
                let bytes = crate::vault::read_file(&path)
                    .map_err(|e| fail(format!("lookup('file'): {e}")))?;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let text = if kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true) {
                    text.trim_end().to_string()
                } else {
                    text
                };
                let text = if kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false) {
                    text.trim_start().to_string()
                } else {
                    text
                };
                out.push(Value::from(text));
            }
        }
        "template" => {
            for term in terms {
                let path = find_file(state, &term.to_string(), "templates")
                    .ok_or_else(|| fail(format!("lookup('template'): could not find '{term}'")))?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| fail(format!("lookup('template'): {}: {e}", path.display())))?;
                super::limits::check(&text, false).map_err(|e| {
                    fail(format!(
                        "lookup('template'): {}: {}",
                        path.display(),
                        e.message
                    ))
                })?;
                let vars = state.lookup("vars").unwrap_or_default();
                let rendered = state
                    .env()
                    .render_str(&text, vars.clone())
                    .map_err(|e| template_failure(&e, &path, &text, &vars))?;
                out.push(Value::from(super::restore_trailing_newlines(
                    &text, rendered,
                )));
            }
        }
        "pipe" => {
            for term in terms {
                let stdout = controller_command("pipe", term)?;
                out.push(Value::from(stdout.trim_end().to_string()));
            }
        }
        "first_found" => {
            let mut names: Vec<String> = Vec::new();
            // `files=`/`paths=` given as options stand for one term of that mapping.
            let from_options = match kwargs.get::<Option<Value>>("files")? {
                Some(files) => {
                    let mut term = indexmap::IndexMap::new();
                    term.insert("files".to_string(), files);
                    if let Some(paths) = kwargs.get::<Option<Value>>("paths")? {
                        term.insert("paths".to_string(), paths);
                    }
                    Some(crate::value::map_value(term))
                }
                None => None,
            };
            for term in terms.iter().chain(from_options.as_ref()) {
                first_found_names(term, &mut names, 0)?;
            }
            let found = names
                .iter()
                .find_map(|n| find_file(state, n, "files").or_else(|| find_file(state, n, "vars")));
            match found {
                Some(path) => out.push(Value::from(path.display().to_string())),
                // `skip` as an option, or (the older form) inside a term's mapping.
                None if kwargs.get::<Option<bool>>("skip")?.unwrap_or(false)
                    || terms.iter().any(|term| {
                        term.kind() == ValueKind::Map
                            && term
                                .get_attr("skip")
                                .is_ok_and(|v| crate::value::truthy(&v))
                    }) => {}
                None => {
                    return Err(fail(format!(
                        "lookup('first_found'): none of {names:?} was found"
                    )))
                }
            }
        }
        "ini" => out = super::file_lookups::ini(state, terms, kwargs)?,
        "csvfile" => out = super::file_lookups::csvfile(state, terms, kwargs)?,
        "password" => out = super::password_lookup::run(state, terms, kwargs)?,
        // One of the terms, at random (none for none).
        "random_choice" if terms.is_empty() => {}
        "random_choice" => out.push(super::random::random(
            Value::from(terms.to_vec()),
            Kwargs::from_iter(std::iter::empty::<(&str, Value)>()),
        )?),
        "vars" => {
            let default = kwargs.get::<Option<Value>>("default")?;
            for term in terms {
                let Some(name) = term.as_str() else {
                    return Err(fail(format!(
                        "Variable name must be 'str' not '{}'",
                        python_type(term)
                    )));
                };
                let value = state
                    .lookup(name)
                    .filter(|v| !v.is_undefined())
                    .or_else(|| default.clone())
                    .ok_or_else(|| fail(format!("No variable named '{name}' was found")))?;
                out.push(value);
            }
        }
        other => {
            return Err(fail(format!(
                "lookup plugin '{other}' is not supported by kiln"
            )))
        }
    }
    Ok(out)
}

/// Python's name for the type of `value`, as ansible-core's messages give it.
pub(super) fn python_type(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::Bool => "bool",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        ValueKind::None | ValueKind::Undefined => "NoneType",
        _ => "str",
    }
}

/// A template file's failure, naming the file, the line and (when one is undefined) the
/// variable, so the message does not stop at the `lookup` call around it.
fn template_failure(err: &Error, path: &std::path::Path, text: &str, vars: &Value) -> Error {
    let line = err.line().map(|l| format!(":{l}")).unwrap_or_default();
    let what = match super::Scope::from_value(vars) {
        Some(scope) => super::describe(err, text, &scope),
        None => err.to_string(),
    };
    fail(format!(
        "lookup('template'): {}{line}: {what}",
        path.display()
    ))
}

/// `errors='ignore'` or `'warn'`: a lookup that fails gives nothing instead of failing the
/// template (`None`, or an empty list where a list is wanted), as ansible-core's do.
fn lenient(kwargs: &Kwargs) -> Result<bool, Error> {
    Ok(matches!(
        kwargs.get::<Option<String>>("errors")?.as_deref(),
        Some("ignore" | "warn")
    ))
}

/// A term or option that is undefined fails the lookup's call, as Ansible templates a
/// lookup's arguments before it runs (so `errors='ignore'` does not hide it).
fn reject_undefined(terms: &[Value], kwargs: &Kwargs) -> Result<(), Error> {
    let undefined_option = kwargs
        .args()
        .any(|key| kwargs.peek::<Value>(key).is_ok_and(|v| v.is_undefined()));
    if undefined_option || terms.iter().any(Value::is_undefined) {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "a lookup's argument is undefined",
        ));
    }
    Ok(())
}

fn lookup(state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    reject_undefined(&terms, &kwargs)?;
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let results = match run_lookup(state, &name, &terms, &kwargs) {
        Ok(results) => results,
        Err(_) if lenient(&kwargs)? && wantlist => return Ok(Value::from(Vec::<Value>::new())),
        Err(_) if lenient(&kwargs)? => return Ok(Value::from(())),
        Err(e) => return Err(e),
    };
    if wantlist {
        return Ok(Value::from(results));
    }
    // As ansible-core: several strings are joined with commas, other values stay a list.
    Ok(match results.len() {
        0 => Value::from(""),
        1 => results.into_iter().next().unwrap_or_default(),
        _ if results.iter().any(|v| v.kind() != ValueKind::String) => Value::from(results),
        _ => Value::from(
            results
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
    })
}

fn query(state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    reject_undefined(&terms, &kwargs)?;
    match run_lookup(state, &name, &terms, &kwargs) {
        Ok(results) => Ok(Value::from(results)),
        Err(_) if lenient(&kwargs)? => Ok(Value::from(Vec::<Value>::new())),
        Err(e) => Err(e),
    }
}

fn loop_items(state: &State, name: String, terms: Vec<Value>) -> Result<Value, Error> {
    let kwargs = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
    Ok(Value::from(run_lookup(state, &name, &terms, &kwargs)?))
}

/// The file names one `first_found` term stands for, as Ansible's lookup reads them: a
/// name, a mapping of `files` (and `paths`, each joined with each file, path by path), or a
/// list of terms. Undefined values are left out, as the lookup ignores them.
fn first_found_names(term: &Value, names: &mut Vec<String>, depth: usize) -> Result<(), Error> {
    match term.kind() {
        ValueKind::Undefined => {}
        ValueKind::String => names.push(term.to_string()),
        ValueKind::Map => {
            let Some(files) = term.get_attr("files").ok().filter(|v| !v.is_undefined()) else {
                return Ok(());
            };
            let files = split_list(&files, &[',', ';'])?;
            match term.get_attr("paths").ok().filter(|v| !v.is_undefined()) {
                Some(paths) => {
                    for dir in split_list(&paths, &[',', ':', ';'])? {
                        let dir = std::path::Path::new(&dir);
                        names.extend(files.iter().map(|f| dir.join(f).display().to_string()));
                    }
                }
                None => names.extend(files),
            }
        }
        ValueKind::Seq if depth < 16 => {
            for item in term.try_iter()? {
                first_found_names(&item, names, depth + 1)?;
            }
        }
        _ => {
            return Err(fail(format!(
                "Invalid term supplied. A string, dict or list is required, not '{}').",
                super::filters::type_debug(term.clone())
            )))
        }
    }
    Ok(())
}

/// A list option given as a list or as one string split on `separators` (first_found's
/// `files` and `paths`).
fn split_list(value: &Value, separators: &[char]) -> Result<Vec<String>, Error> {
    if let Some(text) = value.as_str() {
        return Ok(text
            .split(separators)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect());
    }
    Ok(value
        .try_iter()?
        .filter(|v| !v.is_undefined())
        .map(|v| v.to_string())
        .collect())
}

#[cfg(test)]
mod unit {
    use std::sync::Arc;

    use minijinja::Value;

    use crate::template::{Scope, Templar};
    use crate::value::VarMap;

    #[test]
    fn undefined_variable_in_a_template_lookup_names_the_variable_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(
            dir.path().join("templates/x.j2"),
            "first line\nsecond {{ missing_var }}\n",
        )
        .unwrap();
        let mut vars = VarMap::new();
        vars.insert(
            "__search_paths".into(),
            Value::from(vec![dir.path().display().to_string()]),
        );
        let scope = Scope::new(Templar::new(), vec![Arc::new(vars)]);
        let err = scope
            .templar()
            .render_str("{{ lookup('template', 'x.j2') }}", &scope)
            .unwrap_err();
        assert!(
            err.message.contains("'missing_var' is undefined"),
            "{}",
            err.message
        );
        assert!(err.message.contains("templates/x.j2:2"), "{}", err.message);
        assert!(
            !err.message.contains("'lookup' is undefined"),
            "{}",
            err.message
        );
    }

    #[test]
    fn first_found_searches_the_paths_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("role/vars")).unwrap();
        std::fs::create_dir_all(dir.path().join("tasks")).unwrap();
        std::fs::write(dir.path().join("role/vars/default.yml"), "a: 1\n").unwrap();
        std::fs::write(dir.path().join("tasks/Debian.yml"), "- debug:\n").unwrap();
        let mut vars = VarMap::new();
        vars.insert(
            "__search_paths".into(),
            Value::from(vec![dir.path().join("tasks").display().to_string()]),
        );
        let vars_dir = dir.path().join("role/vars").display().to_string();
        vars.insert("vars_dir".into(), Value::from(vars_dir.clone()));
        let scope = Scope::new(Templar::new(), vec![Arc::new(vars)]);
        let found = scope
            .templar()
            .render_str(
                "{{ lookup('first_found', {'files': ['Debian.yml', 'default.yml'], 'paths': [vars_dir]}) }}",
                &scope,
            )
            .unwrap();
        assert_eq!(found.to_string(), format!("{vars_dir}/default.yml"));
    }

    #[test]
    fn file_lookups_strip_as_asked_and_failures_may_be_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/padded.txt"), "  padded  \n").unwrap();
        let mut vars = VarMap::new();
        vars.insert(
            "__search_paths".into(),
            Value::from(vec![dir.path().display().to_string()]),
        );
        let scope = Scope::new(Templar::new(), vec![Arc::new(vars)]);
        let render = |source: &str| {
            scope
                .templar()
                .render_str(source, &scope)
                .unwrap()
                .to_string()
        };
        assert_eq!(render("[{{ lookup('file', 'padded.txt') }}]"), "[  padded]");
        assert_eq!(
            render("[{{ lookup('file', 'padded.txt', lstrip=True) }}]"),
            "[padded]"
        );
        assert_eq!(
            render("{{ lookup('file', 'missing.txt', errors='ignore') is none }}"),
            "True"
        );
        assert_eq!(
            render("{{ query('file', 'missing.txt', errors='ignore') | length }}"),
            "0"
        );
        assert!(scope
            .templar()
            .render_str("{{ lookup('file', 'missing.txt') }}", &scope)
            .is_err());
        let err = scope
            .templar()
            .render_str("{{ lookup('first_found', 1) }}", &scope)
            .unwrap_err();
        assert!(err.message.contains("not 'int'"), "{}", err.message);
    }
}
