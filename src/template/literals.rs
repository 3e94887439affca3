//! String literals inside `{{ }}` keep their backslashes as written, as in Ansible for text
//! that comes from YAML: YAML has already processed its escapes, so `'\1'` in
//! `regex_replace('(\d+)', '\1')` is a back-reference, not chr(1). Template files and bare
//! conditions are not rewritten (Ansible lets Jinja unescape those), nor are `{% %}` blocks.
//!
//! The rewrite escapes each literal's backslashes (and its own quote) so that minijinja's
//! unescaping gives back exactly the characters between the quotes.

use std::borrow::Cow;

/// Rewrites the literals of every `{{ }}` in a template (and Python's `%` after a literal
/// in every tag).
pub fn in_template(source: &str) -> Cow<'_, str> {
    walk_template(source, true)
}

/// Only Python's `%` after a string literal, in every tag of a template whose literals
/// Jinja unescapes itself (a template file).
pub fn percent_in_template(source: &str) -> Cow<'_, str> {
    walk_template(source, false)
}

/// Only Python's `%` after a string literal, in a bare expression (a condition).
pub fn percent_in_expression(expression: &str) -> Cow<'_, str> {
    walk_expression(expression, false)
}

fn walk_template(source: &str, backslashes: bool) -> Cow<'_, str> {
    if !(backslashes && source.contains('\\') || has_percent_after_literal(source)) {
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
            copy_expression(bytes, &mut at, &mut out, Some(b"}}"), backslashes);
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
    walk_expression(expression, true)
}

fn walk_expression(expression: &str, backslashes: bool) -> Cow<'_, str> {
    if !(backslashes && expression.contains('\\') || has_percent_after_literal(expression)) {
        return Cow::Borrowed(expression);
    }
    let bytes = expression.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut at = 0;
    copy_expression(bytes, &mut at, &mut out, None, backslashes);
    String::from_utf8(out).map_or(Cow::Borrowed(expression), Cow::Owned)
}

/// A quote, spaces and a `%` that does not close a tag: the cheap test for whether a text
/// may use Python's string formatting at all.
fn has_percent_after_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        (b == b'\'' || b == b'"') && {
            let rest = &bytes[i + 1..];
            let skip = rest.iter().take_while(|c| **c == b' ').count();
            rest.get(skip) == Some(&b'%') && rest.get(skip + 1) != Some(&b'}')
        }
    })
}

/// After a string literal ending at `at`: the operand of a Python `%` operator (start and
/// end), if one follows. The operand is what `%` binds in Jinja: an atom (name, number,
/// literal, or bracketed group) with its attribute, item, call and filter suffixes.
fn percent_operand(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let spaces = |mut i: usize| {
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        i
    };
    let op = spaces(at);
    if bytes.get(op) != Some(&b'%') || matches!(bytes.get(op + 1), Some(b'}' | b'%' | b'=')) {
        return None;
    }
    let start = spaces(op + 1);
    let mut end = atom_end(bytes, start)?;
    loop {
        match bytes.get(end) {
            Some(b'.') => end = name_end(bytes, end + 1)?,
            Some(b'[' | b'(') => end = group_end(bytes, end)?,
            _ => {
                // A filter: `| name` with its arguments.
                let bar = spaces(end);
                if bytes.get(bar) != Some(&b'|') {
                    break;
                }
                end = name_end(bytes, spaces(bar + 1))?;
                if bytes.get(end) == Some(&b'(') {
                    end = group_end(bytes, end)?;
                }
            }
        }
    }
    Some((start, end))
}

fn name_end(bytes: &[u8], start: usize) -> Option<usize> {
    let len = bytes[start.min(bytes.len())..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (len > 0).then_some(start + len)
}

fn atom_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'(' | b'[' | b'{' => group_end(bytes, start),
        b'\'' | b'"' => {
            let mut scratch = Vec::new();
            let mut at = start;
            copy_string(bytes, &mut at, &mut scratch, false);
            Some(at)
        }
        b'-' => name_end(bytes, start + 1),
        _ => name_end(bytes, start),
    }
}

/// The end of the bracketed group opening at `start` (strings inside skipped).
fn group_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    while at < bytes.len() {
        match bytes[at] {
            b'\'' | b'"' => {
                let mut scratch = Vec::new();
                copy_string(bytes, &mut at, &mut scratch, false);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    None
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
                let literal_start = out.len();
                copy_string(bytes, at, out, rewrite);
                if let Some((start, end)) = percent_operand(bytes, *at) {
                    // `'…' % x` becomes `('…' | kiln_percent(x))`; a parenthesised operand
                    // (`% (a, b)`) is the filter's argument list itself.
                    let literal = out.split_off(literal_start);
                    let mut operand = Vec::new();
                    let mut operand_at = 0;
                    copy_expression(
                        &bytes[start..end],
                        &mut operand_at,
                        &mut operand,
                        None,
                        rewrite,
                    );
                    out.push(b'(');
                    out.extend(literal);
                    out.extend_from_slice(b" | ");
                    out.extend_from_slice(super::percent::FILTER.as_bytes());
                    if bytes[start] == b'(' && group_end(bytes, start) == Some(end) {
                        out.extend(operand);
                    } else {
                        out.push(b'(');
                        out.extend(operand);
                        out.push(b')');
                    }
                    out.push(b')');
                    *at = end;
                }
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
    fn pythons_percent_after_a_literal_becomes_the_filter() {
        assert_eq!(
            in_expression(r#""%s/%s" % (a, b.c)"#),
            r#"("%s/%s" | kiln_percent(a, b.c))"#
        );
        assert_eq!(
            in_expression(r#""x" ~ "%d" % n | int + 1"#),
            r#""x" ~ ("%d" | kiln_percent(n | int)) + 1"#
        );
        assert_eq!(
            in_template(r#"{% set m = 'v%s' % x[0] %}{{ m }}"#),
            r#"{% set m = ('v%s' | kiln_percent(x[0])) %}{{ m }}"#
        );
        assert_eq!(
            percent_in_template(r#"{{ '\d%s' % (x) }}"#),
            r#"{{ ('\d%s' | kiln_percent(x)) }}"#
        );
        assert_eq!(
            percent_in_expression(r#"'%(a)s' % {'a': 1} == '1'"#),
            r#"('%(a)s' | kiln_percent({'a': 1})) == '1'"#
        );
        for untouched in [r#"{% if x == "a" %}y{% endif %}"#, "{{ 10 % 3 }}", "100%"] {
            assert_eq!(in_template(untouched), untouched);
        }
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
