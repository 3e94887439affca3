//! `kiln images` (list local images) and `kiln images rm REF`.

use clap::{Args, Subcommand};

use crate::bake::images::ImageStore;
use crate::bake::local;

#[derive(Debug, Args, Clone)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: Option<ImagesCommand>,
}

#[derive(Debug, Subcommand, Clone)]
pub enum ImagesCommand {
    /// Remove a local image (by `local:<id>`, id prefix or name).
    Rm { reference: String },
}

pub fn run(args: ImagesArgs) -> anyhow::Result<i32> {
    let store = ImageStore::open(&local::home());
    match args.command {
        Some(ImagesCommand::Rm { reference }) => {
            let image = store.remove(&reference)?;
            println!("removed {} ({})", image.artifact_id(), image.name);
        }
        None => {
            println!(
                "{:<14} {:<32} {:<14} {:<37} TAGS",
                "ID", "NAME", "PARENT", "CREATED"
            );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            for image in store.list()? {
                let tags: Vec<String> = image
                    .tags
                    .iter()
                    .filter(|(k, _)| !k.starts_with("kiln:"))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let created = format!("{} ({})", utc_date(image.created), age(now - image.created));
                println!(
                    "{:<14} {:<32} {:<14} {:<37} {}",
                    image.id,
                    image.name,
                    image.parent.as_deref().unwrap_or("-"),
                    created,
                    tags.join(",")
                );
            }
        }
    }
    Ok(0)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm, so no
/// date crate is needed for one column).
fn utc_date(epoch_seconds: i64) -> String {
    let days = epoch_seconds.div_euclid(86_400);
    let secs = epoch_seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// How long ago, in the largest whole unit: `just now`, `5 minutes ago`, `3 days ago`.
fn age(seconds: i64) -> String {
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
    fn creation_times_print_as_a_date_and_an_age() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(1_796_041_384), "2026-11-30 12:23:04 UTC");
        assert_eq!(age(0), "just now");
        assert_eq!(age(59), "just now");
        assert_eq!(age(60), "1 minute ago");
        assert_eq!(age(7_300), "2 hours ago");
        assert_eq!(age(3 * 86_400 + 5), "3 days ago");
        assert_eq!(age(-5), "in the future");
    }
}
