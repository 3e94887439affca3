//! Lookups that read a value out of a controller file: `ini` and `csvfile`, as ansible-core's
//! plugins (a term is `key option=value …`; keyword arguments give the same options).

use minijinja::value::Kwargs;
use minijinja::{Error, State, Value};

use super::lookups::{fail, find_file};

/// The key and options of one term, keyword arguments filling in what the term leaves out.
fn term_options(
    term: &Value,
    kwargs: &Kwargs,
    names: &[&str],
) -> Result<(String, Vec<Option<String>>), Error> {
    let words = crate::shell::split_words(&term.to_string());
    let mut key = Vec::new();
    let mut options: Vec<Option<String>> = names
        .iter()
        .map(|name| {
            kwargs
                .get::<Option<Value>>(name)
                .map(|v| v.map(|v| v.to_string()))
        })
        .collect::<Result<_, _>>()?;
    for word in words {
        match word.split_once('=') {
            Some((name, value)) if names.contains(&name) => {
                let at = names.iter().position(|n| *n == name).unwrap_or(0);
                options[at] = Some(crate::shell::unquote(value));
            }
            _ => key.push(crate::shell::unquote(&word)),
        }
    }
    Ok((key.join(" "), options))
}

fn read(state: &State, lookup: &str, name: &str) -> Result<String, Error> {
    let path = find_file(state, name, "files")
        .ok_or_else(|| fail(format!("lookup('{lookup}'): could not find '{name}'")))?;
    let bytes = crate::vault::read_file(&path)
        .map_err(|e| fail(format!("lookup('{lookup}'): {}: {e}", path.display())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `lookup('ini', 'key section=global file=ansible.ini default= type=ini re=False')`.
pub fn ini(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let names = ["section", "file", "default", "type", "re", "case_sensitive"];
    let mut out = Vec::new();
    for term in terms {
        let (key, o) = term_options(term, kwargs, &names)?;
        let section = o[0].clone().unwrap_or_else(|| "global".into());
        let file = o[1].clone().unwrap_or_else(|| "ansible.ini".into());
        let default = o[2].clone().unwrap_or_default();
        let properties = o[3].as_deref() == Some("properties");
        let as_regex = o[4]
            .as_deref()
            .is_some_and(|v| crate::value::parse_bool(v) == Some(true));
        let case_sensitive = o[5]
            .as_deref()
            .is_some_and(|v| crate::value::parse_bool(v) == Some(true));
        let text = read(state, "ini", &file)?;
        let entries = ini_entries(&text, properties.then_some(""), &section, case_sensitive);
        if as_regex {
            let re =
                super::pyregex::plain(&key).map_err(|e| fail(format!("lookup('ini'): {e}")))?;
            for (name, value) in &entries {
                if re.is_match(name).map_err(super::pyregex::runtime)? {
                    out.push(Value::from(value.as_str()));
                }
            }
            continue;
        }
        let wanted = if case_sensitive {
            key
        } else {
            key.to_lowercase()
        };
        let found = entries.into_iter().find(|(name, _)| *name == wanted);
        out.push(Value::from(found.map(|(_, v)| v).unwrap_or(default)));
    }
    Ok(out)
}

/// The `name = value` entries of `section` (every line when `whole` is given: a properties
/// file has no sections); names lowercased unless case-sensitive, as configparser does.
fn ini_entries(
    text: &str,
    whole: Option<&str>,
    section: &str,
    case_sensitive: bool,
) -> Vec<(String, String)> {
    let mut current = whole.map(str::to_string);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if whole.is_none() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(name.trim().to_string());
                continue;
            }
        }
        let in_section = match (&current, whole) {
            (_, Some(_)) => true,
            (Some(name), None) => name == section,
            (None, None) => false,
        };
        if !in_section {
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let name = line[..at].trim();
        let name = if case_sensitive {
            name.to_string()
        } else {
            name.to_lowercase()
        };
        out.push((name, line[at + 1..].trim().to_string()));
    }
    out
}

/// `lookup('csvfile', 'key file=ansible.csv delimiter=TAB col=1 default=')`: column `col` of
/// the first row whose first column is the key.
pub fn csvfile(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let names = ["file", "delimiter", "col", "default"];
    let mut out = Vec::new();
    for term in terms {
        let (key, o) = term_options(term, kwargs, &names)?;
        let file = o[0].clone().unwrap_or_else(|| "ansible.csv".into());
        let delimiter = match o[1].as_deref() {
            None | Some("TAB") | Some("t") | Some("\\t") => '\t',
            Some(d) => d.chars().next().unwrap_or('\t'),
        };
        let col: usize = o[2].as_deref().unwrap_or("1").parse().map_err(|_| {
            fail(format!(
                "lookup('csvfile'): col must be a number in '{term}'"
            ))
        })?;
        let text = read(state, "csvfile", &file)?;
        let found = text.lines().find_map(|line| {
            let fields = split_csv(line, delimiter);
            (fields.first() == Some(&key)).then(|| fields.get(col).cloned())
        });
        match found {
            Some(Some(value)) => out.push(Value::from(value)),
            Some(None) => {
                return Err(fail(format!(
                    "lookup('csvfile'): the row of '{key}' has no column {col}"
                )))
            }
            None => out.push(o[3].clone().map_or(Value::from(()), Value::from)),
        }
    }
    Ok(out)
}

/// One CSV line's fields (double quotes group and `""` escapes a quote, as Python's csv).
fn split_csv(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delimiter && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections_and_csv_fields() {
        let ini = "[global]\nuser = yannig\n[production]\nUser=prod\n# x = y\n";
        assert_eq!(
            ini_entries(ini, None, "production", false),
            vec![("user".to_string(), "prod".to_string())]
        );
        assert_eq!(ini_entries(ini, None, "global", false)[0].1, "yannig");
        assert_eq!(ini_entries("a.b=1\n", Some(""), "x", true)[0].0, "a.b");
        assert_eq!(split_csv("Li,3,\"6,94\"", ','), vec!["Li", "3", "6,94"]);
        assert_eq!(split_csv("a\t\"q\"\"x\"", '\t'), vec!["a", "q\"x"]);
    }
}
