//! The `now()` global as Ansible's: the controller's current time as a datetime-like value
//! (`.year`, `.strftime(fmt)`, …), or as text when `fmt` is given. Formatting goes through the
//! C library's `strftime`, as Python's does.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::value::{from_args, Kwargs, Object};
use minijinja::{Error, ErrorKind, State, Value};

/// A point in time, shown in local time or UTC. The broken-down `tm` is computed when
/// needed: it holds a pointer (the zone name) and so cannot be shared between threads.
#[derive(Debug, Clone)]
pub struct DateTime {
    seconds: libc::time_t,
    microsecond: u32,
    utc: bool,
}

/// `now(utc=False, fmt=None)`.
pub fn now(utc: Option<bool>, fmt: Option<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let utc = match utc {
        Some(utc) => utc,
        None => kwargs.get::<Option<bool>>("utc")?.unwrap_or(false),
    };
    let fmt = match fmt {
        Some(fmt) => Some(fmt),
        None => kwargs.get::<Option<String>>("fmt")?,
    };
    kwargs.assert_all_used()?;
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let time = DateTime::at(since_epoch.as_secs(), since_epoch.subsec_micros(), utc)?;
    Ok(match fmt {
        Some(fmt) => Value::from(time.strftime(&fmt)),
        None => Value::from_object(time),
    })
}

/// The `strftime(second=None, utc=False)` filter: the format applied to `second` (seconds
/// since the epoch, default now), in local time or UTC.
pub fn strftime(format: String, second: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let second = match second {
        Some(s) if !s.is_none() => Some(s),
        _ => kwargs.get::<Option<Value>>("second")?,
    };
    let utc = kwargs.get::<Option<bool>>("utc")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let seconds = match second {
        Some(value) => f64::try_from(value.clone())
            .ok()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("Invalid value for epoch value ({value})"),
                )
            })?,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?
            .as_secs_f64(),
    };
    let time = DateTime::at(seconds.trunc() as u64, 0, utc)?;
    Ok(Value::from(time.strftime(&format)))
}

impl DateTime {
    fn at(seconds: u64, microsecond: u32, utc: bool) -> Result<Self, Error> {
        let seconds = libc::time_t::try_from(seconds)
            .map_err(|_| Error::new(ErrorKind::InvalidOperation, "the clock is out of range"))?;
        let time = Self {
            seconds,
            microsecond,
            utc,
        };
        time.broken_down()?;
        Ok(time)
    }

    fn broken_down(&self) -> Result<libc::tm, Error> {
        // SAFETY: `tm` is plain data; the *_r functions only write into it and return NULL
        // (checked) on failure.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let converted = unsafe {
            if self.utc {
                libc::gmtime_r(&self.seconds, &mut tm)
            } else {
                libc::localtime_r(&self.seconds, &mut tm)
            }
        };
        if converted.is_null() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "the current time cannot be broken down",
            ));
        }
        Ok(tm)
    }

    /// Python's `datetime.strftime`: `%f` (microseconds) is Python's own, the rest is C's.
    pub fn strftime(&self, format: &str) -> String {
        let Ok(tm) = self.broken_down() else {
            return String::new();
        };
        let format = expand_microseconds(format, self.microsecond);
        let Ok(c_format) = std::ffi::CString::new(format) else {
            return String::new();
        };
        let mut size = 256;
        // A format may legitimately expand to nothing, so the buffer grows a few times
        // before an empty result is believed.
        for _ in 0..6 {
            let mut buffer = vec![0u8; size];
            // SAFETY: the buffer is `size` bytes long; strftime writes at most that many
            // and returns how many it wrote (0 when it did not fit).
            let written =
                unsafe { libc::strftime(buffer.as_mut_ptr().cast(), size, c_format.as_ptr(), &tm) };
            if written > 0 {
                buffer.truncate(written);
                return String::from_utf8_lossy(&buffer).into_owned();
            }
            size *= 4;
        }
        String::new()
    }

    fn field(&self, name: &str) -> Option<i64> {
        let tm = self.broken_down().ok()?;
        Some(match name {
            "year" => i64::from(tm.tm_year) + 1900,
            "month" => i64::from(tm.tm_mon) + 1,
            "day" => i64::from(tm.tm_mday),
            "hour" => i64::from(tm.tm_hour),
            "minute" => i64::from(tm.tm_min),
            "second" => i64::from(tm.tm_sec),
            "microsecond" => i64::from(self.microsecond),
            _ => return None,
        })
    }

    /// Python's `str(datetime)`: microseconds only when there are any.
    fn isoformat(&self, separator: &str) -> String {
        let micro = if self.microsecond == 0 {
            String::new()
        } else {
            format!(".{:06}", self.microsecond)
        };
        self.strftime(&format!("%Y-%m-%d{separator}%H:%M:%S")) + &micro
    }
}

/// Replaces `%f` with zero-padded microseconds, leaving `%%f` alone.
fn expand_microseconds(format: &str, microsecond: u32) -> String {
    let mut out = String::with_capacity(format.len());
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => out.push_str(&format!("{microsecond:06}")),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

impl Object for DateTime {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str()
            .and_then(|name| self.field(name))
            .map(Value::from)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                Ok(Value::from(self.strftime(&format)))
            }
            "isoformat" => {
                let (separator,): (Option<String>,) = from_args(args)?;
                Ok(Value::from(
                    self.isoformat(separator.as_deref().unwrap_or("T")),
                ))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python() {
        // 2026-03-04 05:06:07 UTC
        let time = DateTime::at(1_772_600_767, 42, true).expect("a valid time");
        assert_eq!(
            time.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "2026-03-04 05:06:07.000042"
        );
        assert_eq!(time.strftime("100%%f"), "100%f");
        assert_eq!(time.field("year"), Some(2026));
        assert_eq!(time.field("month"), Some(3));
        assert_eq!(time.isoformat(" "), "2026-03-04 05:06:07.000042");
    }

    #[test]
    fn the_strftime_filter_takes_second_and_utc() {
        let mut env = minijinja::Environment::new();
        env.add_filter("strftime", strftime);
        let render = |source: &str| env.render_str(source, ()).unwrap();
        assert_eq!(
            render("{{ '%Y-%m-%d %H:%M:%S' | strftime(second=1772600767, utc=true) }}"),
            "2026-03-04 05:06:07"
        );
        assert_eq!(render("{{ '%Y' | strftime('0', utc=true) }}"), "1970");
        assert_eq!(render("{{ '%Y' | strftime | length }}"), "4");
        assert!(env
            .render_str("{{ '%Y' | strftime(second='x') }}", ())
            .is_err());
    }
}
