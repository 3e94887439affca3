//! Limits on what one template may ask of the controller, checked before minijinja sees it.
//!
//! minijinja parses `a + b + c …`, `a.b.c …` and `not not …` into a tree as deep as the chain
//! is long, then compiles and drops that tree recursively: a long enough chain overflows the
//! stack and aborts the process. No real template comes near these limits.

use super::TemplateError;

/// Operators, attribute accesses, subscripts, calls, filters and tests one `{{ }}` or
/// `{% %}` (or one bare expression such as a `when:`) may chain.
pub const MAX_OPERATORS: usize = 1000;

/// Fails when one expression in `source` chains more than [`MAX_OPERATORS`] operators.
/// `bare` says `source` is an expression (a `when:`), not template text.
pub fn check(source: &str, bare: bool) -> Result<(), TemplateError> {
    let mut scanner = Scanner {
        bytes: source.as_bytes(),
        pos: 0,
    };
    if bare {
        return scanner.expression(None, source);
    }
    while let Some(start) = scanner.find_tag() {
        let close: &[u8] = match &scanner.bytes[start + 1] {
            b'{' => b"}}",
            b'%' => b"%}",
            _ => {
                // A comment: skip to its end.
                scanner.pos = find(scanner.bytes, start + 2, b"#}")
                    .map_or(scanner.bytes.len(), |end| end + 2);
                continue;
            }
        };
        scanner.pos = start + 2;
        scanner.expression(Some(close), source)?;
    }
    Ok(())
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

impl Scanner<'_> {
    /// The next `{{`, `{%` or `{#` at or after the current position.
    fn find_tag(&self) -> Option<usize> {
        let mut at = self.pos;
        while at + 1 < self.bytes.len() {
            if self.bytes[at] == b'{' && matches!(self.bytes[at + 1], b'{' | b'%' | b'#') {
                return Some(at);
            }
            at += 1;
        }
        None
    }

    /// Counts operators up to `close` (or the end), skipping string literals.
    fn expression(&mut self, close: Option<&[u8]>, source: &str) -> Result<(), TemplateError> {
        let mut operators = 0usize;
        let mut word = 0usize;
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            if let Some(close) = close {
                if self.bytes[self.pos..].starts_with(close) {
                    self.pos += close.len();
                    return Ok(());
                }
            }
            if c.is_ascii_alphanumeric() || c == b'_' {
                word += 1;
                self.pos += 1;
                continue;
            }
            if word > 0 {
                operators += usize::from(self.is_keyword_operator(self.pos - word, self.pos));
                word = 0;
            }
            match c {
                b'\'' | b'"' => self.skip_string(c),
                b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'.' | b'[' | b'(' | b'|' | b'<'
                | b'>' | b'=' | b'!' => operators += 1,
                _ => {}
            }
            if operators > MAX_OPERATORS {
                return Err(too_complex(source));
            }
            self.pos += 1;
        }
        if word > 0 {
            operators += usize::from(self.is_keyword_operator(self.pos - word, self.pos));
        }
        if operators > MAX_OPERATORS {
            return Err(too_complex(source));
        }
        Ok(())
    }

    fn is_keyword_operator(&self, start: usize, end: usize) -> bool {
        matches!(
            &self.bytes[start..end],
            b"not" | b"and" | b"or" | b"is" | b"in" | b"if"
        )
    }

    /// Moves to the closing quote of a string literal (or the end).
    fn skip_string(&mut self, quote: u8) {
        self.pos += 1;
        while self.pos < self.bytes.len() && self.bytes[self.pos] != quote {
            if self.bytes[self.pos] == b'\\' {
                self.pos += 1;
            }
            self.pos += 1;
        }
    }
}

fn too_complex(source: &str) -> TemplateError {
    TemplateError::new(format!(
        "an expression in '{}' is too complex: it chains more than {MAX_OPERATORS} operators (the limit)",
        abbreviate(source)
    ))
}

/// The start of a long source, for messages.
pub fn abbreviate(source: &str) -> String {
    let trimmed = source.trim();
    match trimmed.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_chains_are_refused_and_ordinary_templates_pass() {
        let sum = vec!["1"; 20_000].join(" + ");
        assert!(check(&format!("{{{{ {sum} }}}}"), false).is_err());
        assert!(check(&sum, true).is_err());
        let chain = format!("a{}", ".b".repeat(40_000));
        let err = check(&chain, true).unwrap_err();
        assert!(err.message.contains("1000"), "{}", err.message);
        assert!(check(&format!("{} x", "not ".repeat(100_000)), true).is_err());
        // Operators in text, in string literals and spread over many tags are fine.
        let text = "a + b - c . d\n".repeat(5_000);
        assert!(check(&text, false).is_ok());
        let literal = format!("{{{{ '{}' }}}}", "+".repeat(50_000));
        assert!(check(&literal, false).is_ok());
        let many = "{{ a.b + c | d }}\n".repeat(5_000);
        assert!(check(&many, false).is_ok());
        assert!(check("{# + + + #}{{ x }}", false).is_ok());
        assert!(check("an unclosed {# comment", false).is_ok());
    }

    #[test]
    fn expressions_at_the_limit_render_on_a_small_stack() {
        // A tokio worker's stack (2 MiB), in a debug build: the limit leaves room.
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let scope = crate::template::Scope::new(crate::template::Templar::new(), vec![]);
                let templar = scope.templar().clone();
                let sum = vec!["1"; MAX_OPERATORS].join(" + ");
                assert!(check(&sum, true).is_ok());
                let rendered = templar.render_str(&format!("{{{{ {sum} }}}}"), &scope);
                assert_eq!(rendered.unwrap().to_string(), MAX_OPERATORS.to_string());
                let nots = format!("{}true", "not ".repeat(MAX_OPERATORS));
                assert!(templar.eval_condition(&nots.into(), &scope).is_ok());
                // Undefined, but compiled and evaluated without overflowing.
                let chain = format!("{{{{ x{} }}}}", ".a".repeat(MAX_OPERATORS));
                let err = templar.render_str(&chain, &scope).unwrap_err();
                assert!(err.message.contains("'x' is undefined"), "{}", err.message);
            })
            .unwrap();
        worker.join().unwrap();
    }
}
