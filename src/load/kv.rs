//! Ansible's free-form `key=value` argument strings (`command: echo hi creates=/x`).

use indexmap::IndexMap;

/// Splits a string on spaces the way Ansible's `split_args` does: quotes group words and
/// are removed from values; `{{ … }}` spans are kept whole.
pub fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') || chars.peek() == Some(&'%') => {
                depth += 1;
                current.push(c);
                current.push(chars.next().unwrap_or('{'));
                in_word = true;
            }
            '}' | '%' if depth > 0 && chars.peek() == Some(&'}') => {
                depth -= 1;
                current.push(c);
                current.push(chars.next().unwrap_or('}'));
            }
            '\'' | '"' if depth == 0 && quote.is_none() => {
                quote = Some(c);
                current.push(c);
                in_word = true;
            }
            q if Some(q) == quote => {
                quote = None;
                current.push(c);
            }
            '\\' if quote.is_some() => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            c if c.is_whitespace() && quote.is_none() && depth == 0 => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Removes one pair of matching outer quotes.
pub fn unquote(word: &str) -> String {
    let bytes = word.as_bytes();
    if bytes.len() >= 2 && (bytes[0] == b'"' || bytes[0] == b'\'') && bytes[bytes.len() - 1] == bytes[0] {
        let inner = &word[1..word.len() - 1];
        if bytes[0] == b'"' {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        return inner.to_string();
    }
    word.to_string()
}

/// Parses `k=v` pairs. With `raw_params_keys` set (command-like modules), only those keys are
/// taken out as options and everything else becomes `_raw_params`, as Ansible does.
pub fn parse_kv(text: &str, raw_params_keys: Option<&[&str]>) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    let mut raw: Vec<String> = Vec::new();
    for word in split_words(text) {
        let pair = word.split_once('=').filter(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match (pair, raw_params_keys) {
            (Some((k, v)), None) => {
                out.insert(k.to_string(), unquote(v));
            }
            (Some((k, v)), Some(keys)) if keys.contains(&k) => {
                out.insert(k.to_string(), unquote(v));
            }
            _ => raw.push(word),
        }
    }
    if !raw.is_empty() {
        out.insert("_raw_params".to_string(), raw.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_free_form_keeps_quotes_in_raw_params() {
        let kv = parse_kv("echo 'a b' > /tmp/x creates=/tmp/x chdir=/", Some(&["creates", "chdir"]));
        assert_eq!(kv["_raw_params"], "echo 'a b' > /tmp/x");
        assert_eq!(kv["creates"], "/tmp/x");
        assert_eq!(kv["chdir"], "/");
    }

    #[test]
    fn module_free_form_unquotes_values() {
        let kv = parse_kv("path=/etc/x mode=0644 content=\"a b\" owner={{ user | default('x y') }}", None);
        assert_eq!(kv["path"], "/etc/x");
        assert_eq!(kv["content"], "a b");
        assert_eq!(kv["owner"], "{{ user | default('x y') }}");
        assert!(!kv.contains_key("_raw_params"));
    }
}
