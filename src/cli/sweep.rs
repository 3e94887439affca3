//! `kiln sweep [--older-than 2h] [--yes]`: lists (and with `--yes` removes) what builds left
//! behind when they could not clean up after themselves (SIGKILL, power loss, or
//! `--on-error=abort`): local build instances, their network namespaces and directories, and
//! the instances `kiln test` left.

use std::time::{Duration, SystemTime};

use clap::Args;

use crate::bake::local;
use crate::scenario::instances;

#[derive(Debug, Args, Clone)]
pub struct SweepArgs {
    /// Only what is older than this (`90s`, `30m`, `2h`, `1d`).
    #[arg(long, default_value = "0s")]
    pub older_than: String,
    /// Remove what is listed (without it, only list).
    #[arg(long)]
    pub yes: bool,
    /// Also sweep AWS: instances, key pairs and security groups tagged `kiln:run-id`, and
    /// images of builds that did not finish.
    #[arg(long)]
    pub aws: bool,
    /// The AWS region (else AWS_REGION or the profile's).
    #[arg(long)]
    pub region: Option<String>,
    /// The EC2 endpoint (else AWS_ENDPOINT_URL).
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

/// `--older-than`'s value as a duration.
pub fn parse_age(text: &str) -> anyhow::Result<Duration> {
    crate::util::parse_duration(text).ok_or_else(|| {
        anyhow::anyhow!("--older-than: '{text}' is not a duration (use e.g. 90s, 30m, 2h, 1d)")
    })
}

pub async fn run(args: SweepArgs) -> anyhow::Result<i32> {
    let older_than = parse_age(&args.older_than)?;
    let builds = local::home().join("builds");
    let mut found = 0;
    for entry in std::fs::read_dir(&builds).into_iter().flatten().flatten() {
        let age = age(&entry.path());
        if age < older_than {
            continue;
        }
        found += 1;
        let netns = std::fs::read_to_string(entry.path().join("netns")).unwrap_or_default();
        let netns = netns.trim().to_string();
        println!(
            "local build {} (instance {}, {}s old)",
            entry.file_name().to_string_lossy(),
            if netns.is_empty() { "-" } else { &netns },
            age.as_secs()
        );
        if args.yes {
            if !netns.is_empty() {
                local::teardown(netns).await?;
            }
            std::fs::remove_dir_all(entry.path())?;
            println!("  removed");
        }
    }
    found += sweep_tests(&args, older_than).await?;
    if args.aws {
        found += sweep_aws(&args, older_than).await?;
    }
    if found == 0 {
        println!("nothing to sweep");
    } else if !args.yes {
        println!("run again with --yes to remove these");
    }
    Ok(0)
}

/// The instances `kiln test` left (`--destroy never`, a killed kiln), and their scenarios'
/// directories.
async fn sweep_tests(args: &SweepArgs, older_than: Duration) -> anyhow::Result<usize> {
    let mut found = 0;
    let root = instances::tests_root(&local::home());
    for scenario in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for dir in instances::instance_dirs(&scenario.path()) {
            if age(&dir) < older_than {
                continue;
            }
            found += 1;
            let netns = std::fs::read_to_string(dir.join("netns")).unwrap_or_default();
            println!(
                "local test instance {}/{} ({}, {}s old)",
                scenario.file_name().to_string_lossy(),
                dir.file_name().unwrap_or_default().to_string_lossy(),
                netns.trim(),
                age(&dir).as_secs()
            );
            if args.yes {
                instances::remove_instance(&dir).await?;
                println!("  removed");
            }
        }
        if args.yes && instances::instance_dirs(&scenario.path()).is_empty() {
            std::fs::remove_dir_all(scenario.path())?;
        }
    }
    Ok(found)
}

/// How long ago a file or directory was last modified.
fn age(path: &std::path::Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

#[cfg(not(feature = "aws"))]
async fn sweep_aws(_: &SweepArgs, _: Duration) -> anyhow::Result<usize> {
    Err(crate::bake::aws_unavailable("--aws"))
}

#[cfg(feature = "aws")]
async fn sweep_aws(args: &SweepArgs, older_than: Duration) -> anyhow::Result<usize> {
    use crate::bake::aws;
    let ec2 = aws::client(args.region.as_deref(), args.endpoint_url.as_deref()).await?;
    let now = crate::clock::epoch_seconds();
    let mut orphans: Vec<aws::Orphan> = aws::orphans(&ec2)
        .await?
        .into_iter()
        .filter(|o| now - o.created >= older_than.as_secs() as i64)
        .collect();
    // Instances first: a security group cannot go while an instance uses it.
    orphans.sort_by_key(|o| match o.kind {
        "instance" => 0,
        "image" => 1,
        "key pair" => 2,
        _ => 3,
    });
    for orphan in &orphans {
        println!(
            "aws {} {} ({}s old)",
            orphan.kind,
            orphan.id,
            now - orphan.created
        );
        if args.yes {
            aws::remove_orphan(&ec2, orphan).await?;
            println!("  removed");
        }
    }
    Ok(orphans.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages() {
        assert_eq!(super::parse_age("2h").unwrap().as_secs(), 7200);
        assert_eq!(super::parse_age("90").unwrap().as_secs(), 90);
        assert!(super::parse_age("2 weeks").is_err());
    }
}
