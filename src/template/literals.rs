//! String literals inside `{{ }}` keep their backslashes as written, as in Ansible for text
//! that comes from YAML: YAML has already processed its escapes, so `'\1'` in
//! `regex_replace('(\d+)', '\1')` is a back-reference, not chr(1). Template files and bare
//! conditions are not rewritten (Ansible lets Jinja unescape those), nor are `{% %}` blocks.
//!
//! The rewrite escapes each literal's backslashes (and its own quote) so that minijinja's
//! unescaping gives back exactly the characters between the quotes.

use std::borrow::Cow;

/// Rewrites the literals of every `{{ }}` in a template.
pub fn in_template(source: &str) -> Cow<'_, str> {
    if !source.contains('\\') {
        return Cow::Borrowed(source);
    }
    let bytes = source.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(b"{{") {
            out.extend_from_slice(b"{{");
            at += 2;
            copy_expression(bytes, &mut at, &mut out, Some(b"}}"), true);
        } else if rest.starts_with(b"{#") {
            let end = find(bytes, at + 2, b"#}").map_or(bytes.len(), |e| e + 2);
            out.extend_from_slice(&bytes[at..end]);
            at = end;
        } else if rest.starts_with(b"{%") {
            if let Some(end) = raw_block_end(bytes, at) {
                out.extend_from_slice(&bytes[at..end]);
                at = end;
            } else {
                out.extend_from_slice(b"{%");
                at += 2;
                copy_expression(bytes, &mut at, &mut out, Some(b"%}"), false);
            }
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(source), Cow::Owned)
}

/// Rewrites the literals of one expression (the inside of a lone `{{ }}`).
pub fn in_expression(expression: &str) -> Cow<'_, str> {
    if !expression.contains('\\') {
        return Cow::Borrowed(expression);
    }
    let bytes = expression.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut at = 0;
    copy_expression(bytes, &mut at, &mut out, None, true);
    String::from_utf8(out).map_or(Cow::Borrowed(expression), Cow::Owned)
}

/// Copies an expression up to and including `end` found outside brackets (as Jinja's lexer
/// ends a tag only when its brackets are balanced), or to the end of the text.
fn copy_expression(
    bytes: &[u8],
    at: &mut usize,
    out: &mut Vec<u8>,
    end: Option<&[u8]>,
    rewrite: bool,
) {
    let mut depth = 0usize;
    while *at < bytes.len() {
        if let Some(end) = end.filter(|end| depth == 0 && bytes[*at..].starts_with(end)) {
            out.extend_from_slice(end);
            *at += end.len();
            return;
        }
        let byte = bytes[*at];
        match byte {
            b'\'' | b'"' => {
                copy_string(bytes, at, out, rewrite);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(byte);
        *at += 1;
    }
}

/// Copies the string literal starting at `at` (Jinja's rule: a backslash takes the next
/// character into the literal). An unterminated literal is copied as it is, for the parser
/// to report.
fn copy_string(bytes: &[u8], at: &mut usize, out: &mut Vec<u8>, rewrite: bool) {
    let quote = bytes[*at];
    let mut close = *at + 1;
    while close < bytes.len() && bytes[close] != quote {
        if bytes[close] == b'\\' {
            close += 1;
        }
        close += 1;
    }
    if close >= bytes.len() || !rewrite {
        let end = (close + 1).min(bytes.len());
        out.extend_from_slice(&bytes[*at..end]);
        *at = end;
        return;
    }
    out.push(quote);
    for &byte in &bytes[*at + 1..close] {
        if byte == b'\\' || byte == quote {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(quote);
    *at = close + 1;
}

/// Where a `{% raw %}…{% endraw %}` block starting at `at` ends, if it is one.
fn raw_block_end(bytes: &[u8], at: usize) -> Option<usize> {
    let tag_end = find(bytes, at + 2, b"%}")?;
    let tag = std::str::from_utf8(&bytes[at + 2..tag_end]).ok()?;
    if tag.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) != "raw" {
        return None;
    }
    let endraw = find(bytes, tag_end, b"endraw")?;
    Some(find(bytes, endraw, b"%}").map_or(bytes.len(), |e| e + 2))
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_literals_are_taken_as_written() {
        assert_eq!(in_template(r"{{ '\1' }}"), r"{{ '\\1' }}");
        assert_eq!(
            in_template(r#"{{ "a\"b" ~ 'c\'d' }}"#),
            r#"{{ "a\\\"b" ~ 'c\\\'d' }}"#
        );
        assert_eq!(
            in_template(r"{{ {'k': '\d'} }} \n"),
            r"{{ {'k': '\\d'} }} \n"
        );
        assert_eq!(
            in_expression(r"x | regex_replace('(\d)', '\1')"),
            r"x | regex_replace('(\\d)', '\\1')"
        );
    }

    #[test]
    fn blocks_comments_raw_and_plain_text_are_left_alone() {
        for text in [
            r"{% set x = '\1' %}{{ x }}",
            r"{# '\1' #}{{ x }}",
            r"{% raw %}{{ '\1' }}{% endraw %}",
            r"a\1b {{ x }}",
            r"{{ 'unterminated\1 }}",
        ] {
            assert_eq!(in_template(text), text);
        }
        assert_eq!(
            in_template(r"{% if a %}{{ '\t' }}{% endif %}"),
            r"{% if a %}{{ '\\t' }}{% endif %}"
        );
    }
}
