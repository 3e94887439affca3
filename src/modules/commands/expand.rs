//! Shell words that expand as Ansible's `command` expands its arguments on the target:
//! `$NAME` and `${NAME}` (left as written when unset, like Python's `os.path.expandvars`), a
//! leading `~` or `~user` (`os.path.expanduser`), and for `creates`/`removes` glob patterns.
//! Nothing else in the word is special to the shell.

use crate::connection::quote;

/// A shell word for `word` with variables and a leading `~` expanded; `glob` leaves the
/// pattern characters `*`, `?` and `[…]` active.
pub fn expanding_word(word: &str, glob: bool) -> String {
    let mut out = String::new();
    let mut rest = word;
    if let Some(after) = rest.strip_prefix('~') {
        let end = after.find('/').unwrap_or(after.len());
        let user = &after[..end];
        if user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            // The tilde prefix and the slash after it stay unquoted, or the shell keeps `~`.
            out.push('~');
            out.push_str(user);
            rest = &after[end..];
            if let Some(path) = rest.strip_prefix('/') {
                out.push('/');
                rest = path;
            }
        }
    }
    let variable =
        regex::Regex::new(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
            .expect("static pattern");
    let mut last = 0;
    for found in variable.captures_iter(rest) {
        let (Some(whole), Some(name)) = (found.get(0), found.get(1).or(found.get(2))) else {
            continue;
        };
        out.push_str(&literal(&rest[last..whole.start()], glob));
        // Unset: the text as written (`\$` and `\}` are literal inside the double quotes).
        let written = whole.as_str().replace('$', "\\$").replace('}', "\\}");
        out.push_str(&format!("\"${{{}-{written}}}\"", name.as_str()));
        last = whole.end();
    }
    out.push_str(&literal(&rest[last..], glob));
    if out.is_empty() {
        "''".into()
    } else {
        out
    }
}

/// Text the shell takes literally; with `glob`, pattern characters stay active and every
/// other character the shell would treat specially is escaped.
fn literal(text: &str, glob: bool) -> String {
    if text.is_empty() {
        return String::new();
    }
    if !glob {
        return quote(text);
    }
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\n' => out.push_str("'\n'"),
            c if c.is_ascii_alphanumeric() || "*?[]!^-/._,:+@%=".contains(c) => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out
}

/// Whether a word needs `expanding_word` (otherwise plain quoting gives the same result).
pub fn expands(word: &str) -> bool {
    word.starts_with('~') || word.contains('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_expand_variables_and_home_only() {
        assert_eq!(expanding_word("$HOME/x", false), "\"${HOME-\\$HOME}\"/x");
        assert_eq!(
            expanding_word("a${USER}b", false),
            "a\"${USER-\\${USER\\}}\"b"
        );
        assert_eq!(expanding_word("~/a b", false), "~/'a b'");
        assert_eq!(expanding_word("~root", false), "~root");
        assert_eq!(expanding_word("$1;x", false), "'$1;x'");
        assert_eq!(expanding_word("", false), "''");
    }

    #[test]
    fn globs_keep_patterns_and_escape_the_rest() {
        assert_eq!(expanding_word("/tmp/a b*.[ch]", true), "/tmp/a\\ b*.[ch]");
        assert_eq!(expanding_word("/x;rm", true), "/x\\;rm");
        assert_eq!(expanding_word("~/d/*", true), "~/d/*");
    }
}
