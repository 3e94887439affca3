//! More of ansible-core's own filters, as Python computes them: paths (`path_join`,
//! `normpath`, `commonpath`, `relpath`, `expandvars`), digests (`md5`, `sha1`, `hash` with
//! every hashlib name kiln knows, `to_uuid`), lists (`product`, `combinations`,
//! `permutations`, `zip_longest`, `extract`, `rekey_on_member`), numbers (`pow`, `log`,
//! `root`), `urldecode` and `from_yaml_all`.

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use sha1::{Digest, Sha1};

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("path_join", path_join);
    env.add_filter("normpath", |p: String| normpath(&p));
    env.add_filter("commonpath", commonpath);
    env.add_filter("relpath", relpath);
    env.add_filter("expandvars", |s: String| expandvars(&s));
    env.add_filter("md5", |s: String| digest("md5", &s));
    env.add_filter("sha1", |s: String| digest("sha1", &s));
    env.add_filter("hash", hash);
    env.add_filter("to_uuid", to_uuid);
    env.add_filter("product", product);
    env.add_filter("combinations", combinations);
    env.add_filter("permutations", permutations);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("extract", extract);
    env.add_filter("rekey_on_member", rekey_on_member);
    env.add_filter("pow", |x: f64, y: f64| x.powf(y));
    env.add_filter("log", log);
    env.add_filter("root", root);
    env.add_filter("urldecode", |s: String| urldecode(&s));
    env.add_filter("from_yaml_all", from_yaml_all);
}

fn list(value: &Value) -> Result<Vec<Value>, Error> {
    Ok(value.try_iter()?.collect())
}

/// Python's `os.path.join`: an absolute part starts the path over.
fn path_join(parts: Value) -> Result<String, Error> {
    let parts: Vec<String> = match parts.kind() {
        ValueKind::String => return Ok(parts.to_string()),
        _ => list(&parts)?.iter().map(|p| p.to_string()).collect(),
    };
    let mut path = String::new();
    for part in parts {
        if part.starts_with('/') || path.is_empty() {
            path = part;
        } else if path.ends_with('/') {
            path.push_str(&part);
        } else {
            path = format!("{path}/{part}");
        }
    }
    Ok(path)
}

/// Python's `os.path.normpath`.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    // POSIX keeps exactly two leading slashes, and makes three or more one.
    let lead = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if !lead.is_empty() => {}
            other => parts.push(other),
        }
    }
    let joined = format!("{lead}{}", parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// Python's `os.path.commonpath`.
fn commonpath(paths: Value) -> Result<String, Error> {
    let paths: Vec<String> = list(&paths)?.iter().map(|p| p.to_string()).collect();
    let Some(first) = paths.first() else {
        return Err(invalid("commonpath() arg is an empty sequence"));
    };
    let absolute = first.starts_with('/');
    if paths.iter().any(|p| p.starts_with('/') != absolute) {
        return Err(invalid("Can't mix absolute and relative paths"));
    }
    let split = |p: &String| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(String::from)
            .collect()
    };
    let all: Vec<Vec<String>> = paths.iter().map(split).collect();
    let mut common = all[0].clone();
    for parts in &all[1..] {
        let n = common.iter().zip(parts).take_while(|(a, b)| a == b).count();
        common.truncate(n);
    }
    let joined = common.join("/");
    Ok(if absolute {
        format!("/{joined}")
    } else {
        joined
    })
}

/// Python's `os.path.relpath` for absolute paths (relative ones are taken from `/`).
fn relpath(path: String, start: Option<String>) -> String {
    let absolute = |p: &str| {
        normpath(&if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        })
    };
    let path = absolute(&path);
    let start = absolute(&start.unwrap_or_else(|| "/".into()));
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let (to, from) = (parts(&path), parts(&start));
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut rel: Vec<String> = vec!["..".to_string(); from.len() - common];
    rel.extend(to[common..].iter().cloned());
    if rel.is_empty() {
        ".".into()
    } else {
        rel.join("/")
    }
}

/// Python's `os.path.expandvars` with the controller's environment: `$NAME` and `${NAME}`
/// set in it are replaced, others left as written.
fn expandvars(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match std::env::var(name).ok().filter(|_| !name.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[at..at + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn digest(algorithm: &str, text: &str) -> Result<String, Error> {
    crate::util::digest_hex(algorithm, text.as_bytes()).ok_or_else(|| {
        invalid(format!(
            "hash: algorithm '{algorithm}' is not supported (use md5, sha1, sha224, sha256, sha384 or sha512)"
        ))
    })
}

fn hash(value: String, algorithm: Option<String>) -> Result<String, Error> {
    digest(algorithm.as_deref().unwrap_or("sha1"), &value)
}

/// Python's `uuid.uuid5(namespace, name)`, Ansible's default namespace unless given.
fn to_uuid(name: String, namespace: Option<String>) -> Result<String, Error> {
    let namespace = namespace.unwrap_or_else(|| "361E6D51-FAEC-444A-9079-341386DA8E2E".into());
    let hex: String = namespace.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return Err(invalid(format!("to_uuid: '{namespace}' is not a UUID")));
    }
    let mut bytes = Vec::with_capacity(16);
    for i in 0..16 {
        let byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
            .map_err(|_| invalid(format!("to_uuid: '{namespace}' is not a UUID")))?;
        bytes.push(byte);
    }
    let mut hasher = Sha1::new();
    hasher.update(&bytes);
    hasher.update(name.as_bytes());
    let mut uuid: Vec<u8> = hasher.finalize()[..16].to_vec();
    uuid[6] = (uuid[6] & 0x0f) | 0x50;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// `itertools.product(*lists, repeat=n)`.
fn product(first: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let repeat = kwargs.get::<Option<usize>>("repeat")?.unwrap_or(1);
    kwargs.assert_all_used()?;
    let mut pools = vec![list(&first)?];
    for other in others.iter() {
        pools.push(list(other)?);
    }
    let pools: Vec<Vec<Value>> = (0..repeat).flat_map(|_| pools.clone()).collect();
    let mut result: Vec<Vec<Value>> = vec![Vec::new()];
    for pool in &pools {
        result = result
            .iter()
            .flat_map(|prefix| {
                pool.iter().map(move |item| {
                    let mut next = prefix.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::from(
        result.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

/// `itertools.combinations(list, r)`, in Python's order.
fn combinations(items: Value, r: usize) -> Result<Value, Error> {
    let items = list(&items)?;
    let n = items.len();
    let mut out = Vec::new();
    if r > n {
        return Ok(Value::from(out));
    }
    let mut indices: Vec<usize> = (0..r).collect();
    loop {
        out.push(Value::from(
            indices
                .iter()
                .map(|&i| items[i].clone())
                .collect::<Vec<_>>(),
        ));
        let Some(i) = (0..r).rev().find(|&i| indices[i] != i + n - r) else {
            break;
        };
        indices[i] += 1;
        for j in i + 1..r {
            indices[j] = indices[j - 1] + 1;
        }
    }
    Ok(Value::from(out))
}

/// `itertools.permutations(list, r=len)`, in Python's order.
fn permutations(items: Value, r: Option<usize>) -> Result<Value, Error> {
    let items = list(&items)?;
    let r = r.unwrap_or(items.len());
    let mut out = Vec::new();
    fn walk(
        items: &[Value],
        r: usize,
        used: &mut Vec<bool>,
        current: &mut Vec<Value>,
        out: &mut Vec<Value>,
    ) {
        if current.len() == r {
            out.push(Value::from(current.clone()));
            return;
        }
        for i in 0..items.len() {
            if used[i] {
                continue;
            }
            used[i] = true;
            current.push(items[i].clone());
            walk(items, r, used, current, out);
            current.pop();
            used[i] = false;
        }
    }
    if r <= items.len() {
        walk(
            &items,
            r,
            &mut vec![false; items.len()],
            &mut Vec::new(),
            &mut out,
        );
    }
    Ok(Value::from(out))
}

/// `itertools.zip_longest(*lists, fillvalue=None)`.
fn zip_longest(first: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let fill = kwargs
        .get::<Option<Value>>("fillvalue")?
        .unwrap_or(Value::from(()));
    kwargs.assert_all_used()?;
    let mut lists = vec![list(&first)?];
    for other in others.iter() {
        lists.push(list(other)?);
    }
    let len = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| {
                Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// `extract(item, container, morekeys)`: `container[item]`, then each further key.
fn extract(item: Value, container: Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut value = container.get_item(&item)?;
    if let Some(keys) = morekeys.filter(|k| !k.is_none() && !k.is_undefined()) {
        let keys = match keys.kind() {
            ValueKind::Seq => list(&keys)?,
            _ => vec![keys],
        };
        for key in keys {
            value = value.get_item(&key)?;
        }
    }
    Ok(value)
}

/// `rekey_on_member(data, key, duplicates='error')`: a list (or mapping) of mappings,
/// keyed by each one's `key`.
fn rekey_on_member(data: Value, key: Value, duplicates: Option<String>) -> Result<Value, Error> {
    let duplicates = duplicates.unwrap_or_else(|| "error".into());
    if !matches!(duplicates.as_str(), "error" | "overwrite") {
        return Err(invalid(format!(
            "duplicates parameter to rekey_on_member has unknown value: {duplicates}"
        )));
    }
    let items: Vec<Value> = match data.kind() {
        ValueKind::Map => list(&data)?
            .iter()
            .map(|k| data.get_item(k))
            .collect::<Result<_, _>>()?,
        _ => list(&data)?,
    };
    let mut out: indexmap::IndexMap<String, Value> = indexmap::IndexMap::new();
    for item in items {
        if item.kind() != ValueKind::Map {
            return Err(invalid(format!("List item is not a valid dict: {item}")));
        }
        let member = item.get_item(&key)?;
        if member.is_undefined() {
            return Err(invalid(format!("Key {key} was not found")));
        }
        let name = member.to_string();
        if out.contains_key(&name) && duplicates == "error" {
            return Err(invalid(format!(
                "Key {name} is not unique, cannot correctly turn into dict"
            )));
        }
        out.insert(name, item);
    }
    Ok(crate::value::map_value(out))
}

fn log(x: f64, base: Option<f64>) -> f64 {
    match base {
        Some(base) => x.ln() / base.ln(),
        None => x.ln(),
    }
}

fn root(x: f64, base: Option<f64>) -> f64 {
    match base.unwrap_or(2.0) {
        2.0 => x.sqrt(),
        b => x.powf(1.0 / b),
    }
}

/// Python's `unquote_plus`.
fn urldecode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every document of a YAML stream (split at `---` lines; `...` ends one).
fn from_yaml_all(text: String) -> Result<Value, Error> {
    let mut documents: Vec<String> = vec![String::new()];
    for line in text.lines() {
        let marker = line.trim_end();
        if marker == "---" || marker.starts_with("--- ") || marker == "..." {
            documents.push(String::new());
            if let Some(rest) = marker.strip_prefix("--- ") {
                if let Some(current) = documents.last_mut() {
                    current.push_str(&format!("{rest}\n"));
                }
            }
            continue;
        }
        if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    let mut out = Vec::new();
    for document in documents.iter().filter(|d| !d.trim().is_empty()) {
        let parsed = crate::yaml::parse_str(document, std::path::Path::new("<from_yaml_all>"))
            .map_err(|e| invalid(format!("from_yaml_all: {e}")))?;
        out.push(parsed.root.to_value());
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_python_joins_and_normalizes_them() {
        assert_eq!(
            path_join(Value::from(vec!["/etc", "apt", "sources.list"])).unwrap(),
            "/etc/apt/sources.list"
        );
        assert_eq!(
            path_join(Value::from(vec!["a", "/b", "c"])).unwrap(),
            "/b/c"
        );
        assert_eq!(normpath("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(normpath("../x/.."), "..");
        assert_eq!(normpath("/.."), "/");
        assert_eq!(
            commonpath(Value::from(vec!["/usr/lib", "/usr/local/lib"])).unwrap(),
            "/usr"
        );
        assert_eq!(
            relpath("/srv/app/current".into(), Some("/srv/www".into())),
            "../app/current"
        );
    }

    #[test]
    fn digests_and_uuids_match_python() {
        // hashlib.md5(b'kiln').hexdigest()
        assert_eq!(
            digest("md5", "kiln").unwrap(),
            "9e8287435ae73a052c9459e215e46a28"
        );
        // uuid.uuid5(uuid.UUID('361E6D51-FAEC-444A-9079-341386DA8E2E'), 'example.com')
        assert_eq!(
            to_uuid("example.com".into(), None).unwrap(),
            "ae780c3a-a3ab-53c2-bfb4-098da300b3fe"
        );
    }

    #[test]
    fn itertools_orders() {
        let combos = combinations(Value::from(vec![1, 2, 3]), 2).unwrap();
        assert_eq!(combos.to_string(), "[[1, 2], [1, 3], [2, 3]]");
        let perms = permutations(Value::from(vec![1, 2, 3]), Some(2)).unwrap();
        assert_eq!(
            perms.to_string(),
            "[[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]"
        );
        assert_eq!(urldecode("a%20b+c%2Fd"), "a b c/d");
        let docs = from_yaml_all("a: 1\n---\n- x\n...\n".into()).unwrap();
        assert_eq!(docs.to_string(), "[{'a': 1}, ['x']]");
    }
}
