//! Python's regular expressions as Ansible's filters, tests and lookups use them: look-around
//! and backreferences included (fancy-regex, which hands plain patterns to `regex`), and
//! compile errors worded as Python's `re` words the ones playbooks test for.

use fancy_regex::{Regex, RegexBuilder};
use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind};

/// Compiles `pattern` with the `ignorecase`/`multiline` flags Ansible's filters and tests take.
pub fn compile(pattern: &str, kwargs: &Kwargs) -> Result<Regex, Error> {
    let mut builder = RegexBuilder::new(pattern);
    builder.case_insensitive(kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false));
    builder.multi_line(kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false));
    builder.build().map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "invalid regular expression '{pattern}': {}",
                python_error(&e)
            ),
        )
    })
}

/// Compiles `pattern` with no flags.
pub fn plain(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| python_error(&e))
}

/// The error in Python's words where Python has its own (`nothing to repeat at position 0`).
pub fn python_error(err: &fancy_regex::Error) -> String {
    use fancy_regex::ParseError;
    match err {
        fancy_regex::Error::ParseError(at, ParseError::TargetNotRepeatable) => {
            format!("nothing to repeat at position {at}")
        }
        other => other.to_string(),
    }
}

/// A matching run that gave up (fancy-regex bounds backtracking), as a template error.
pub fn runtime(err: fancy_regex::Error) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("regular expression failed: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_around_and_backreferences_work_and_errors_read_as_python() {
        let ahead = plain("(?=.*qa_1)(?=.*qz_1)").unwrap();
        assert!(ahead.is_match("['qz_1', 'qa_1']").unwrap());
        assert!(!ahead.is_match("['qz_1']").unwrap());
        assert!(plain(r"(\w+) \1").unwrap().is_match("to to").unwrap());
        assert!(plain("*").unwrap_err().contains("nothing to repeat"));
    }
}
