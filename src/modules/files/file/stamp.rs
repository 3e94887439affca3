//! `modification_time` and `access_time`: `preserve`, `now`, or a time in a strptime format
//! (default `%Y%m%d%H%M.%S`), which Ansible reads as the target's local time. The text is
//! parsed here with the C library's strptime, as Python's is, and turned into seconds since
//! the epoch by the target's `date`, in the target's own time zone.

use std::ffi::CString;

use crate::connection::quote;
use crate::modules::{ModuleCtx, ModuleError};

/// One of a path's times as the task wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stamp {
    /// Not given: `now` for `touch`, `preserve` for every other state (Ansible's defaults).
    #[default]
    Unset,
    Preserve,
    Now,
    /// Seconds since the epoch.
    At(i64),
}

pub const DEFAULT_FORMAT: &str = "%Y%m%d%H%M.%S";

/// `text` read with `format` as a local time, written the way `date -d` reads one.
fn local_time(text: &str, format: &str) -> Result<String, ModuleError> {
    let failure = || {
        ModuleError::Failed(format!(
            "Error while obtaining timestamp for time {text} using format {format}: time data '{text}' does not match format '{format}'"
        ))
    };
    let (c_text, c_format) = match (CString::new(text), CString::new(format)) {
        (Ok(t), Ok(f)) => (t, f),
        _ => return Err(failure()),
    };
    // SAFETY: both strings are NUL-terminated and outlive the call; `tm` is plain data that
    // strptime fills in. The returned pointer is only compared, never read through.
    let (rest, tm) = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_mday = 1;
        let rest = libc::strptime(c_text.as_ptr(), c_format.as_ptr(), &mut tm);
        (rest, tm)
    };
    // Python requires the whole text to match.
    let whole = !rest.is_null()
        && std::ptr::eq(rest.cast_const(), c_text.as_ptr().wrapping_add(text.len()));
    if !whole {
        return Err(failure());
    }
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}

/// The stamps for `[(value, format)]` (modification time, then access time), asking the
/// target for the epoch seconds of those given as times, in one command.
pub async fn stamps(
    ctx: &ModuleCtx<'_>,
    given: [(Option<String>, String); 2],
) -> Result<[Stamp; 2], ModuleError> {
    let mut out = [Stamp::Unset; 2];
    let mut times = Vec::new();
    for (slot, (value, format)) in given.iter().enumerate() {
        out[slot] = match value.as_deref() {
            None => Stamp::Unset,
            Some("preserve") => Stamp::Preserve,
            Some("now") => Stamp::Now,
            Some(text) => {
                times.push((slot, local_time(text, format)?));
                continue;
            }
        };
    }
    if times.is_empty() {
        return Ok(out);
    }
    let script: Vec<String> = times
        .iter()
        .map(|(_, time)| format!("date -d {} +%s", quote(time)))
        .collect();
    let epochs = ctx
        .run_ok(&script.join(" && "), None, "reading the wanted times")
        .await?
        .stdout_text();
    for ((slot, time), line) in times.iter().zip(epochs.lines()) {
        let epoch = line.trim().parse().map_err(|_| {
            ModuleError::Failed(format!("the target's date could not read the time {time}"))
        })?;
        out[*slot] = Stamp::At(epoch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_pythons_strptime_reads_them() {
        assert_eq!(
            local_time("202001011200.0", DEFAULT_FORMAT).unwrap(),
            "2020-01-01 12:00:00"
        );
        assert_eq!(
            local_time("2021-02-03 04:05", "%Y-%m-%d %H:%M").unwrap(),
            "2021-02-03 04:05:00"
        );
        let error = local_time("2020", DEFAULT_FORMAT).unwrap_err().to_string();
        assert!(error.contains("does not match format"), "{error}");
        assert!(local_time("202001011200.00x", DEFAULT_FORMAT).is_err());
    }
}
