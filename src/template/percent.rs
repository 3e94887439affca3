//! Python's `%` string formatting (`"%s/%s" % (a, b)`, `"%(name)s" % d`), which Jinja under
//! Ansible has because it is Python's operator. minijinja's `%` is arithmetic only, so
//! `literals` rewrites a string literal's `%` into this filter: `("…" | kiln_percent(a, b))`.

use minijinja::value::{Rest, ValueKind};
use minijinja::{Error, ErrorKind, Value};

pub(super) const FILTER: &str = "kiln_percent";

fn fail(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// One conversion: `%[(name)][flags][width][.precision]type`.
#[derive(Default)]
struct Spec {
    name: Option<String>,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
    kind: char,
}

fn parse_spec(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Spec, Error> {
    let mut spec = Spec::default();
    if chars.peek() == Some(&'(') {
        chars.next();
        let mut name = String::new();
        for c in chars.by_ref() {
            if c == ')' {
                break;
            }
            name.push(c);
        }
        spec.name = Some(name);
    }
    while let Some(&c) = chars.peek() {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            '#' => {}
            _ => break,
        }
        chars.next();
    }
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut n = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            n.push(d);
            chars.next();
        }
        n.parse::<usize>().ok()
    };
    spec.width = digits(chars).unwrap_or(0);
    if chars.peek() == Some(&'.') {
        chars.next();
        spec.precision = Some(digits(chars).unwrap_or(0));
    }
    while matches!(chars.peek(), Some('h' | 'l' | 'L')) {
        chars.next();
    }
    spec.kind = chars.next().ok_or_else(|| fail("incomplete format"))?;
    Ok(spec)
}

/// Python's `str()` of a value.
fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => crate::value::python_repr(value),
    }
}

fn number(value: &Value, kind: char) -> Result<f64, Error> {
    match value.kind() {
        ValueKind::Number => Ok(f64::try_from(value.clone()).unwrap_or(0.0)),
        ValueKind::Bool => Ok(if value.is_true() { 1.0 } else { 0.0 }),
        _ => Err(fail(format!(
            "%{kind} format: a real number is required, not {}",
            value.kind()
        ))),
    }
}

fn convert(spec: &Spec, value: &Value) -> Result<String, Error> {
    let sign = |negative: bool| match (negative, spec.plus, spec.space) {
        (true, _, _) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    };
    let (body, signed) = match spec.kind {
        's' => {
            let text = python_str(value);
            let text = match spec.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            };
            (text, None)
        }
        'r' | 'a' => (crate::value::python_repr(value), None),
        'd' | 'i' | 'u' => {
            let n = number(value, spec.kind)?.trunc();
            (format!("{}", n.abs() as i128), Some(sign(n < 0.0)))
        }
        'x' | 'X' | 'o' => {
            let n = number(value, spec.kind)?.trunc() as i128;
            let digits = match spec.kind {
                'x' => format!("{:x}", n.unsigned_abs()),
                'X' => format!("{:X}", n.unsigned_abs()),
                _ => format!("{:o}", n.unsigned_abs()),
            };
            (digits, Some(sign(n < 0)))
        }
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
            let n = number(value, spec.kind)?;
            let precision = spec.precision.unwrap_or(6);
            let text = match spec.kind {
                'e' => format!("{:.precision$e}", n.abs()),
                'E' => format!("{:.precision$E}", n.abs()),
                _ => format!("{:.precision$}", n.abs()),
            };
            (text, Some(sign(n < 0.0)))
        }
        'c' => match value.as_i64().and_then(|n| char::from_u32(n as u32)) {
            Some(c) => (c.to_string(), None),
            None => (python_str(value).chars().take(1).collect(), None),
        },
        other => return Err(fail(format!("unsupported format character '{other}'"))),
    };
    let prefix = signed.unwrap_or("");
    let len = prefix.chars().count() + body.chars().count();
    let pad = spec.width.saturating_sub(len);
    Ok(if spec.left {
        format!("{prefix}{body}{}", " ".repeat(pad))
    } else if spec.zero && signed.is_some() {
        format!("{prefix}{}{body}", "0".repeat(pad))
    } else {
        format!("{}{prefix}{body}", " ".repeat(pad))
    })
}

/// `format % args`: positional conversions take the arguments in order (a single mapping
/// argument serves `%(name)s`); too few or too many arguments fail as in Python.
pub(super) fn percent(format: String, args: Rest<Value>) -> Result<String, Error> {
    let mapping = match &args[..] {
        [only] if only.kind() == ValueKind::Map => Some(only.clone()),
        _ => None,
    };
    let mut positional = args.iter();
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let spec = parse_spec(&mut chars)?;
        let value = match (&spec.name, &mapping) {
            (Some(name), Some(map)) => map
                .get_attr(name)
                .ok()
                .filter(|v| !v.is_undefined())
                .ok_or_else(|| fail(format!("KeyError: '{name}'")))?,
            (Some(_), None) => return Err(fail("format requires a mapping")),
            (None, Some(map)) if args.len() == 1 => {
                // `"%s" % {'a': 1}` formats the mapping itself, as in Python.
                positional.next();
                map.clone()
            }
            (None, _) => positional
                .next()
                .cloned()
                .ok_or_else(|| fail("not enough arguments for format string"))?,
        };
        out.push_str(&convert(&spec, &value)?);
    }
    if mapping.is_none() && positional.next().is_some() {
        return Err(fail("not all arguments converted during string formatting"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(format: &str, args: Vec<Value>) -> String {
        percent(format.into(), Rest(args)).expect("formats")
    }

    #[test]
    fn formats_as_python_does() {
        assert_eq!(fmt("%s/%s", vec!["a".into(), Value::from(1)]), "a/1");
        assert_eq!(
            fmt("%05d|%-4s|%x", vec![42.into(), "ab".into(), 255.into()]),
            "00042|ab  |ff"
        );
        assert_eq!(fmt("%.2f%%", vec![Value::from(12.345)]), "12.35%");
        assert_eq!(
            fmt("%r %s", vec!["x".into(), Value::from(true)]),
            "'x' True"
        );
        assert_eq!(fmt("%s", vec![Value::from(vec!["a", "b"])]), "['a', 'b']");
        let map = crate::value::map_value(
            [
                ("name".to_string(), Value::from("web")),
                ("port".to_string(), Value::from(80)),
            ]
            .into(),
        );
        assert_eq!(fmt("%(name)s:%(port)d", vec![map]), "web:80");
        assert!(percent("%s %s".into(), Rest(vec!["a".into()])).is_err());
        assert!(percent("%s".into(), Rest(vec!["a".into(), "b".into()])).is_err());
    }
}
