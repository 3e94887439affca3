//! Ansible's free-form `key=value` argument strings (`command: echo hi creates=/x`).

use indexmap::IndexMap;

use crate::shell::{unquote, word_spans};

/// Decodes backslash escapes in a `k=v` value the way Ansible's `parse_kv` does
/// (`\n`, `\t`, `\\`, `\"`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`). Octal escapes are not among them:
/// `replace='"\1"'` keeps its back-reference.
pub fn decode_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&next) = chars.peek() else {
            out.push(c);
            break;
        };
        let simple = match next {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(decoded) = simple {
            chars.next();
            out.push(decoded);
            continue;
        }
        let (len, radix) = match next {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            _ => (0, 0),
        };
        if len == 0 {
            out.push(c);
            continue;
        }
        let mut lookahead = chars.clone();
        lookahead.next();
        let digits: String = lookahead
            .clone()
            .take(len)
            .take_while(|d| d.is_digit(radix))
            .collect();
        let complete = digits.len() == len;
        match u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32)
            .filter(|_| complete)
        {
            Some(decoded) => {
                chars = lookahead;
                for _ in 0..digits.len() {
                    chars.next();
                }
                out.push(decoded);
            }
            None => out.push(c),
        }
    }
    out
}

/// Parses `k=v` pairs. With `raw_params_keys` set (command-like modules), only those keys are
/// taken out as options and everything else becomes `_raw_params`, as Ansible does.
pub fn parse_kv(text: &str, raw_params_keys: Option<&[&str]>) -> IndexMap<String, String> {
    if let Some(keys) = raw_params_keys {
        if let Some(words) = split_args(text) {
            return command_kv(words, keys);
        }
    }
    let mut out = IndexMap::new();
    // The command text is kept verbatim (newlines included); only option words are cut out.
    let mut raw = String::new();
    let mut copied_to = 0;
    for (start, end) in word_spans(text) {
        let word = &text[start..end];
        // A templated name (`set_fact: "{{ item }}={{ value }}"`) is split here and templated
        // when the task runs, as Ansible splits before templating.
        let pair = word.split_once('=').filter(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || raw_params_keys.is_none() && is_whole_expression(k)
        });
        let taken = match (pair, raw_params_keys) {
            (Some((k, v)), None) => Some((k, v)),
            (Some((k, v)), Some(keys)) if keys.contains(&k) => Some((k, v)),
            _ => None,
        };
        if let Some((k, v)) = taken {
            out.insert(k.to_string(), unquote(&decode_escapes(v)));
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

/// A command-like module's free form as Ansible's `parse_kv(check_raw=True)` takes it: the
/// option words (`creates=…`) are cut out and the rest joined back into the command text,
/// which is what the module runs and reports as `cmd`.
fn command_kv(words: Vec<String>, keys: &[&str]) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    let mut raw = Vec::new();
    for word in words {
        let decoded = decode_escapes(&word);
        // The first `=` after the first character that no backslash escapes.
        let split = decoded
            .char_indices()
            .skip(1)
            .find(|&(i, c)| c == '=' && !decoded[..i].ends_with('\\'))
            .map(|(i, _)| i);
        match split {
            Some(i) if keys.contains(&&decoded[..i]) => {
                let value = decoded[i + 1..].trim();
                out.insert(decoded[..i].trim().to_string(), unquote(value));
            }
            None if decoded.contains('=') => raw.push(decoded.replace("\\=", "=")),
            _ => raw.push(word),
        }
    }
    let joined = join_args(&raw);
    if !joined.trim().is_empty() {
        out.insert("_raw_params".to_string(), joined);
    }
    out
}

/// Ansible's `join_args`: words joined by a space, except after a newline.
fn join_args(words: &[String]) -> String {
    let mut out = String::new();
    for word in words {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Ansible's `split_args`: the text split on spaces and newlines, with quoted strings and
/// Jinja blocks kept whole, runs of spaces and newlines kept, and a lone `\` ending a line
/// (outside quotes) joining it to the next. `None` when quotes or blocks are unbalanced.
fn split_args(text: &str) -> Option<Vec<String>> {
    let mut params: Vec<String> = Vec::new();
    let mut quote: Option<char> = None;
    let (mut print, mut block, mut comment) = (0usize, 0usize, 0usize);
    let lines: Vec<&str> = text.split('\n').collect();
    for (line_index, line) in lines.iter().enumerate() {
        let mut continued = false;
        for (index, token) in line.split(' ').enumerate() {
            if token.is_empty() && index != 0 {
                match params.last_mut() {
                    Some(last) => last.push(' '),
                    None => params.push(" ".into()),
                }
                continue;
            }
            if token == "\\" && quote.is_none() {
                continued = true;
                continue;
            }
            let was_quoted = quote.is_some();
            quote = quote_state(token, quote);
            let in_block = print > 0 || block > 0 || comment > 0;
            let mut appended = false;
            if quote.is_some() && !was_quoted && !in_block {
                params.push(token.to_string());
                appended = true;
            } else if in_block || quote.is_some() || was_quoted {
                if let Some(last) = params.last_mut() {
                    if index > 0 {
                        last.push(' ');
                    }
                    last.push_str(token);
                } else {
                    params.push(token.to_string());
                }
                appended = true;
            }
            for (depth, open, close) in [
                (&mut print, "{{", "}}"),
                (&mut block, "{%", "%}"),
                (&mut comment, "{#", "#}"),
            ] {
                let before = *depth;
                *depth = jinja_depth(token, before, open, close);
                if *depth != before && !appended {
                    params.push(token.to_string());
                    appended = true;
                }
            }
            let in_block = print > 0 || block > 0 || comment > 0;
            if !in_block && quote.is_none() && !appended && !token.is_empty() {
                params.push(token.to_string());
            }
        }
        if lines.len() > 1 && line_index != lines.len() - 1 && !continued {
            match params.last_mut() {
                Some(last) => last.push('\n'),
                None => params.push("\n".into()),
            }
        }
    }
    let balanced = quote.is_none() && print == 0 && block == 0 && comment == 0;
    balanced.then_some(params)
}

/// The quote a token leaves open, given the one open before it (a backslashed quote counts
/// for nothing).
fn quote_state(token: &str, mut quote: Option<char>) -> Option<char> {
    let mut previous = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && previous != Some('\\') {
            match quote {
                Some(open) if open == c => quote = None,
                Some(_) => {}
                None => quote = Some(c),
            }
        }
        previous = Some(c);
    }
    quote
}

/// A Jinja block depth after a token, by counting its opening and closing delimiters.
fn jinja_depth(token: &str, depth: usize, open: &str, close: &str) -> usize {
    let opened = token.matches(open).count();
    let closed = token.matches(close).count();
    (depth + opened).saturating_sub(closed)
}

/// `{{ … }}` and nothing else.
fn is_whole_expression(text: &str) -> bool {
    text.starts_with("{{") && text.ends_with("}}") && text[2..].find("}}") == Some(text.len() - 4)
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
        assert_eq!(kv["_raw_params"], "if true; then\n  echo a\nfi\n");
    }

    #[test]
    fn a_command_joins_continued_lines_as_ansible_does() {
        let text = "echo this is a \\\n\"multiline echo\" \\\n\"with a new line\nin quotes\" \\\n| sha1sum  -\necho done creates=/x\n";
        let kv = parse_kv(text, Some(&["creates"]));
        assert_eq!(
            kv["_raw_params"],
            "echo this is a \"multiline echo\" \"with a new line\nin quotes\" | sha1sum  -\necho done"
        );
        assert_eq!(kv["creates"], "/x");
        let kv = parse_kv(
            "echo {{ a | default('x  y') }} chdir=/tmp",
            Some(&["chdir"]),
        );
        assert_eq!(kv["_raw_params"], "echo {{ a | default('x  y') }}");
        assert_eq!(kv["chdir"], "/tmp");
    }

    #[test]
    fn values_decode_escapes_like_ansible() {
        let kv = parse_kv(r#"content="line 1\n" tab=a\tb hex=\x41 path=C:\\x"#, None);
        assert_eq!(kv["content"], "line 1\n");
        assert_eq!(kv["tab"], "a\tb");
        assert_eq!(kv["hex"], "A");
        assert_eq!(kv["path"], "C:\\x");
        let backref = parse_kv(r#"replace='"\1"' nul=\0"#, None);
        assert_eq!(
            backref["replace"], r#""\1""#,
            "octal escapes are not decoded"
        );
        assert_eq!(backref["nul"], r"\0");
        let raw = parse_kv(r"printf 'a\n' creates=/x", Some(&["creates"]));
        assert_eq!(
            raw["_raw_params"], r"printf 'a\n'",
            "command text is not decoded"
        );
    }

    #[test]
    fn a_templated_name_is_split_from_its_value() {
        let kv = parse_kv("{{ item if item is string else item[0] }}={{ item }}", None);
        assert_eq!(
            kv["{{ item if item is string else item[0] }}"],
            "{{ item }}"
        );
        assert!(!kv.contains_key("_raw_params"));
        let kv = parse_kv("{{ a }}={{ b }}", Some(&[]));
        assert_eq!(kv["_raw_params"], "{{ a }}={{ b }}");
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
