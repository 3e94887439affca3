//! `human_readable` and `human_to_bytes`, as ansible-core's mathstuff filters (through its
//! `bytes_to_human`/`human_to_bytes` formatters): powers of 1024, Python's rounding and words.

use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, Value};

/// The unit letters, largest first, with their sizes.
const RANGES: [(char, f64); 9] = [
    ('Y', 1_208_925_819_614_629_174_706_176.0),
    ('Z', 1_180_591_620_717_411_303_424.0),
    ('E', 1_152_921_504_606_846_976.0),
    ('P', 1_125_899_906_842_624.0),
    ('T', 1_099_511_627_776.0),
    ('G', 1_073_741_824.0),
    ('M', 1_048_576.0),
    ('K', 1024.0),
    ('B', 1.0),
];

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// `human_readable(isbits=False, unit=None)`: `1.00 KB`, `10.00 Bytes`, `1.00 Mb`.
pub fn human_readable(size: Value, isbits: Option<bool>, kwargs: Kwargs) -> Result<String, Error> {
    let isbits = match isbits {
        Some(b) => b,
        None => kwargs.get::<Option<bool>>("isbits")?.unwrap_or(false),
    };
    let unit = kwargs.get::<Option<String>>("unit")?;
    kwargs.assert_all_used()?;
    let size = f64::try_from(size.clone())
        .ok()
        .or_else(|| size.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| {
            invalid(format!(
                "human_readable() can't interpret following string: {size}"
            ))
        })?;
    let wanted = unit
        .as_deref()
        .and_then(|u| u.chars().next())
        .map(|c| c.to_ascii_uppercase());
    let (letter, limit) = RANGES
        .iter()
        .copied()
        .find(|&(letter, limit)| match wanted {
            Some(w) => w == letter,
            None => size >= limit,
        })
        .unwrap_or(('B', 1.0));
    let base = if isbits { "bits" } else { "Bytes" };
    let suffix = if limit == 1.0 {
        base.to_string()
    } else {
        format!("{letter}{}", &base[..1])
    };
    Ok(format!("{:.2} {suffix}", size / limit))
}

/// `human_to_bytes(default_unit=None, isbits=False)`: `'1 KB'` → 1024, `'2.5M'` → 2621440.
pub fn human_to_bytes(
    value: Value,
    default_unit: Option<String>,
    kwargs: Kwargs,
) -> Result<i64, Error> {
    let default_unit = match default_unit {
        Some(u) => Some(u),
        None => kwargs.get::<Option<String>>("default_unit")?,
    };
    let isbits = kwargs.get::<Option<bool>>("isbits")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let text = value.to_string();
    let cant = || {
        invalid(format!(
            "human_to_bytes() can't interpret following string: {text}"
        ))
    };
    let trimmed = text.trim_end();
    let digits_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, rest) = trimmed.split_at(digits_end);
    let rest = rest.trim_start();
    if number.is_empty() || !rest.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(cant());
    }
    let number: f64 = number.parse().map_err(|_| cant())?;
    let unit = if rest.is_empty() {
        default_unit
    } else {
        Some(rest.to_string())
    };
    let Some(unit) = unit else {
        return Ok(number.round_ties_even() as i64);
    };
    let key = unit
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('B');
    let Some(&(_, limit)) = RANGES.iter().find(|(letter, _)| *letter == key) else {
        return Err(invalid(format!(
            "human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
        )));
    };
    let (class, class_name) = if isbits { ('b', "bit") } else { ('B', "byte") };
    if unit.len() > 1
        && !unit.to_lowercase().contains(class_name)
        && unit.chars().nth(1) != Some(class)
    {
        let expect = if key == 'B' {
            format!("expect {class} or {class_name}")
        } else {
            format!("expect {key}{class} or {key}")
        };
        return Err(invalid(format!(
            "human_to_bytes() failed to convert {text}. Value is not a valid string ({expect})"
        )));
    }
    Ok((number * limit).round_ties_even() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str) -> Result<String, Error> {
        let mut env = minijinja::Environment::new();
        env.add_filter("human_readable", human_readable);
        env.add_filter("human_to_bytes", human_to_bytes);
        env.render_str(source, ())
    }

    #[test]
    fn sizes_read_and_written_as_ansible_does() {
        for (source, expected) in [
            ("{{ 10 | human_readable }}", "10.00 Bytes"),
            ("{{ 1024 | human_readable }}", "1.00 KB"),
            ("{{ 1048576 | human_readable(unit='K') }}", "1024.00 KB"),
            ("{{ 1048576 | human_readable(isbits=true) }}", "1.00 Mb"),
            ("{{ '0' | human_readable }}", "0.00 Bytes"),
            ("{{ '1 KB' | human_to_bytes }}", "1024"),
            ("{{ '2.5M' | human_to_bytes }}", "2621440"),
            ("{{ '10' | human_to_bytes(default_unit='K') }}", "10240"),
            ("{{ '1 Mb' | human_to_bytes(isbits=true) }}", "1048576"),
            ("{{ '1 byte' | human_to_bytes }}", "1"),
        ] {
            assert_eq!(render(source).unwrap(), expected, "{source}");
        }
        let err = render("{{ '1 MX' | human_to_bytes }}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Value is not a valid string (expect MB or M)"),
            "{err}"
        );
        assert!(render("{{ 'x' | human_to_bytes }}").is_err());
    }
}
