//! POSIX shell words: quoting a value for `/bin/sh` and splitting a line into words the way
//! Ansible's `split_args` does. A leaf module: it imports nothing from the rest of kiln.

/// Quotes a value for POSIX sh, leaving a plain word as it is. Every value that reaches a
/// shell goes through here (or [`quote_always`]).
pub fn quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', "'\"'\"'"))
}

/// Quotes a value in single quotes even when it is a plain word (`NAME=value` as a program
/// name must not read as an assignment).
pub fn quote_always(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\"'\"'"))
}

/// Each word quoted, joined by spaces: an argument list for the shell.
pub fn quote_all<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words
        .into_iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\"'\"'s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote_always("a=b"), "'a=b'");
        assert_eq!(quote_always("it's"), "'it'\"'\"'s'");
        assert_eq!(quote_all(["a", "b c", ""]), "a 'b c' ''");
        assert_eq!(quote_all(Vec::<String>::new()), "");
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words("a 'b c' \"d\\\" e\" {{ x | y }}"),
            ["a", "'b c'", "\"d\\\" e\"", "{{ x | y }}"]
        );
        assert_eq!(unquote("'b c'"), "b c");
        assert_eq!(unquote("\"d\\\" e\""), "d\" e");
        assert_eq!(unquote("plain"), "plain");
    }
}
