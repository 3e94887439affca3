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
        assert_eq!(kv["_raw_params"], "if true; then\n  echo a\nfi");
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
