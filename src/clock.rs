//! Wall-clock time as people and Ansible's outputs print it (UTC dates, ISO 8601 stamps,
//! ages), without a date crate: the civil-from-days algorithm is a dozen lines.
//! A leaf module: it imports nothing from the rest of kiln.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (0 if the clock is before it).
pub fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl UtcTime {
    pub fn from_epoch(epoch_seconds: i64) -> Self {
        let days = epoch_seconds.div_euclid(86_400);
        let secs = epoch_seconds.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day: doy - (153 * mp + 2) / 5 + 1,
            hour: secs / 3_600,
            minute: secs % 3_600 / 60,
            second: secs % 60,
        }
    }

    /// `2026-11-30 12:23:04 UTC`
    pub fn human(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// An instant as Ansible's json callback stamps durations: `2026-11-30T12:23:04.123456Z`.
pub fn iso8601(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = UtcTime::from_epoch(since.as_secs() as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        since.subsec_micros()
    )
}

/// An instant as Python's `str(datetime)` prints it, in UTC: `2026-11-30 12:23:04.000042`
/// (no fraction when it is zero), as `command`'s `start` and `end`.
pub fn python_datetime(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = UtcTime::from_epoch(since.as_secs() as i64);
    let date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    with_micros(date, since.subsec_micros())
}

/// A duration as Python's `str(timedelta)` prints it: `0:00:00.005414`, `1 day, 2:03:04`,
/// as `command`'s `delta`.
pub fn python_timedelta(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3_600, rest % 3_600 / 60, rest % 60);
    let clock = with_micros(clock, duration.subsec_micros());
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        n => format!("{n} days, {clock}"),
    }
}

fn with_micros(text: String, micros: u32) -> String {
    if micros == 0 {
        text
    } else {
        format!("{text}.{micros:06}")
    }
}

/// How long ago, in the largest whole unit: `just now`, `5 minutes ago`, `3 days ago`.
pub fn age(seconds: i64) -> String {
    let units = [(86_400, "day"), (3_600, "hour"), (60, "minute")];
    for (size, unit) in units {
        let n = seconds / size;
        if n > 0 {
            let plural = if n == 1 { "" } else { "s" };
            return format!("{n} {unit}{plural} ago");
        }
    }
    if seconds < 0 {
        "in the future".into()
    } else {
        "just now".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_stamps_and_ages() {
        assert_eq!(UtcTime::from_epoch(0).human(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            UtcTime::from_epoch(951_782_400).human(),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            UtcTime::from_epoch(1_796_041_384).human(),
            "2026-11-30 12:23:04 UTC"
        );
        let at = UNIX_EPOCH + Duration::from_micros(1_796_041_384_000_042);
        assert_eq!(iso8601(at), "2026-11-30T12:23:04.000042Z");
        assert_eq!(age(0), "just now");
        assert_eq!(age(59), "just now");
        assert_eq!(age(60), "1 minute ago");
        assert_eq!(age(7_300), "2 hours ago");
        assert_eq!(age(3 * 86_400 + 5), "3 days ago");
        assert_eq!(age(-5), "in the future");
    }

    #[test]
    fn python_datetimes_and_timedeltas() {
        let at = UNIX_EPOCH + Duration::from_micros(1_796_041_384_005_414);
        assert_eq!(python_datetime(at), "2026-11-30 12:23:04.005414");
        let whole = UNIX_EPOCH + Duration::from_secs(1_796_041_384);
        assert_eq!(python_datetime(whole), "2026-11-30 12:23:04");
        assert_eq!(
            python_timedelta(Duration::from_micros(5_414)),
            "0:00:00.005414"
        );
        assert_eq!(python_timedelta(Duration::from_secs(3_725)), "1:02:05");
        assert_eq!(
            python_timedelta(Duration::from_secs(86_400 + 61)),
            "1 day, 0:01:01"
        );
        assert_eq!(
            python_timedelta(Duration::from_millis(2 * 86_400_000 + 500)),
            "2 days, 0:00:00.500000"
        );
    }
}
