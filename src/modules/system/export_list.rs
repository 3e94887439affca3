//! Reads a shell's environment from its `export -p` listing, as dash and busybox ash
//! (`export A='x'`), bash in POSIX mode (`export A="x"`, `export A=$'x\ny'`) and bash
//! (`declare -x A="x"`) print it. A builtin: fact gathering needs no `env` process.

/// The exported variables that have a value, in listing order.
pub fn parse_export_list(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let body = rest
            .strip_prefix("export ")
            .or_else(|| rest.strip_prefix("declare -x "));
        if let Some(body) = body {
            let name_len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let name = &body[..name_len];
            rest = &body[name_len..];
            if let Some(word) = rest.strip_prefix('=') {
                let (value, used) = shell_word(word);
                out.push((name.to_string(), value));
                rest = &word[used..];
            }
        }
        rest = rest.find('\n').map_or("", |at| &rest[at + 1..]);
    }
    out
}

/// One shell word at the start of `text`: its value and how many bytes it took.
fn shell_word(text: &str) -> (String, usize) {
    let mut value = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\'' => {
                for (_, c) in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    value.push(c);
                }
            }
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some((_, '\n')) => {}
                            Some((_, e @ ('$' | '`' | '"' | '\\'))) => value.push(e),
                            Some((_, e)) => {
                                value.push('\\');
                                value.push(e);
                            }
                            None => value.push('\\'),
                        },
                        _ => value.push(c),
                    }
                }
            }
            '$' if matches!(chars.peek(), Some((_, '\''))) => {
                chars.next();
                ansi_c(&mut chars, &mut value);
            }
            '\\' => match chars.next() {
                Some((_, '\n')) | None => {}
                Some((_, e)) => value.push(e),
            },
            ' ' | '\t' | '\n' => return (value, at),
            _ => value.push(c),
        }
    }
    (value, text.len())
}

/// The rest of a `$'…'` word (bash's ANSI-C quoting), after its opening quote.
fn ansi_c(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, value: &mut String) {
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' => return,
            '\\' => {
                let Some((_, e)) = chars.next() else { return };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'e' | 'E' => Some('\x1b'),
                    'f' => Some('\x0c'),
                    'v' => Some('\x0b'),
                    '\\' | '\'' | '"' | '?' => Some(e),
                    _ => None,
                };
                if let Some(s) = simple {
                    value.push(s);
                    continue;
                }
                let (radix, max, mut digits) = match e {
                    'x' => (16, 2, String::new()),
                    '0'..='7' => (8, 2, e.to_string()),
                    _ => {
                        value.push('\\');
                        value.push(e);
                        continue;
                    }
                };
                while digits.len() < max + usize::from(radix == 8) {
                    match chars.peek() {
                        Some((_, d)) if d.is_digit(radix) => {
                            digits.push(*d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                match u32::from_str_radix(&digits, radix)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(code) => value.push(code),
                    None => value.push_str(&format!("\\{e}")),
                }
            }
            _ => value.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_export_list(text)
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dash_listing() {
        let text = "export A='x'\"'\"'y'\nexport B='multi\nline'\nexport C='$back\\slash\"q'\nexport D=''\nexport E\n";
        assert_eq!(
            pairs(text),
            owned(&[
                ("A", "x'y"),
                ("B", "multi\nline"),
                ("C", "$back\\slash\"q"),
                ("D", "")
            ])
        );
    }

    #[test]
    fn bash_listings() {
        let posix = "export A=\"x'y\"\nexport B=$'multi\\nline\\x41\\101'\nexport C=\"\\$back\\\\slash\\\"q\"\nexport OLDPWD\nexport PWD=\"/root\"\n";
        assert_eq!(
            pairs(posix),
            owned(&[
                ("A", "x'y"),
                ("B", "multi\nlineAA"),
                ("C", "$back\\slash\"q"),
                ("PWD", "/root")
            ])
        );
        let native = "declare -x A=\"x'y\"\ndeclare -x OLDPWD\ndeclare -x SHLVL=\"1\"\n";
        assert_eq!(pairs(native), owned(&[("A", "x'y"), ("SHLVL", "1")]));
    }

    /// The listing of the shell this machine has, read back exactly (no mock: a real shell).
    #[test]
    fn round_trips_a_real_shell() {
        let tricky = "it's \"quoted\"\nwith $dollar, `tick`, \\back\\slash\tand tab";
        for shell in [&["/bin/sh"][..], &["/bin/bash"], &["/bin/bash", "--posix"]] {
            if !std::path::Path::new(shell[0]).exists() {
                continue;
            }
            let out = std::process::Command::new(shell[0])
                .args(&shell[1..])
                .args(["-c", "export -p"])
                .env_clear()
                .env("KILN_TRICKY", tricky)
                .env("KILN_EMPTY", "")
                .output()
                .unwrap();
            let list = pairs(&String::from_utf8_lossy(&out.stdout));
            let get = |name: &str| list.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            assert_eq!(get("KILN_TRICKY").as_deref(), Some(tricky), "{shell:?}");
            assert_eq!(get("KILN_EMPTY").as_deref(), Some(""), "{shell:?}");
        }
    }
}
