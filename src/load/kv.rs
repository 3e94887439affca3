//! Ansible's free-form `key=value` argument strings (`command: echo hi creates=/x`).

use indexmap::IndexMap;

/// Splits a string on spaces the way Ansible's `split_args` does: quotes group words and
/// are removed from values; `{{ … }}` spans are kept whole.
pub fn split_words(text: &str) -> Vec<String> {
    word_spans(text)
        .into_iter()
        .map(|(start, end)| text[start..end].to_string())
        .collect()
}

/// The byte ranges of the words of `text` (see [`split_words`]).
pub fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    let mut start: Option<usize> = None;
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|(_, n)| *n);
        match c {
            '{' if quote.is_none() && (next == Some('{') || next == Some('%')) => {
                depth += 1;
                start.get_or_insert(i);
                chars.next();
            }
            '}' | '%' if depth > 0 && next == Some('}') => {
                depth -= 1;
                chars.next();
            }
            '\'' | '"' if depth == 0 && quote.is_none() => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            q if Some(q) == quote => quote = None,
            '\\' if quote.is_some() => {
                chars.next();
            }
            c if c.is_whitespace() && quote.is_none() && depth == 0 => {
                if let Some(s) = start.take() {
                    spans.push((s, i));
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Removes one pair of matching outer quotes.
pub fn unquote(word: &str) -> String {
    let bytes = word.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
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
    // The command text is kept verbatim (newlines included); only option words are cut out.
    let mut raw = String::new();
    let mut copied_to = 0;
    for (start, end) in word_spans(text) {
        let word = &text[start..end];
        let pair = word.split_once('=').filter(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let taken = match (pair, raw_params_keys) {
            (Some((k, v)), None) => Some((k, v)),
            (Some((k, v)), Some(keys)) if keys.contains(&k) => Some((k, v)),
            _ => None,
        };
        if let Some((k, v)) = taken {
            out.insert(k.to_string(), unquote(v));
            raw.push_str(&text[copied_to..start]);
            copied_to = end;
        }
    }
    raw.push_str(&text[copied_to..]);
    let raw = raw.trim();
    if !raw.is_empty() {
        out.insert("_raw_params".to_string(), raw.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_free_form_keeps_quotes_in_raw_params() {
        let kv = parse_kv(
            "echo 'a b' > /tmp/x creates=/tmp/x chdir=/",
            Some(&["creates", "chdir"]),
        );
        assert_eq!(kv["_raw_params"], "echo 'a b' > /tmp/x");
        assert_eq!(kv["creates"], "/tmp/x");
        assert_eq!(kv["chdir"], "/");
    }

    #[test]
    fn multi_line_commands_keep_their_newlines() {
        let kv = parse_kv("if true; then\n  echo a\nfi\n", Some(&["creates"]));
        assert_eq!(kv["_raw_params"], "if true; then\n  echo a\nfi");
    }

    #[test]
    fn module_free_form_unquotes_values() {
        let kv = parse_kv(
            "path=/etc/x mode=0644 content=\"a b\" owner={{ user | default('x y') }}",
            None,
        );
        assert_eq!(kv["path"], "/etc/x");
        assert_eq!(kv["content"], "a b");
        assert_eq!(kv["owner"], "{{ user | default('x y') }}");
        assert!(!kv.contains_key("_raw_params"));
    }
}
