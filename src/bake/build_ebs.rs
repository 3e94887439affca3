//! The `amazon-ebs` builder: Packer's amazon-ebs builder, done in-process. Resolve
//! the source AMI → temporary key pair and security group → instance with run tags → wait
//! for SSH → provision → stop → image (tagged, snapshots too) → wait available; each
//! resource's undo goes on the cleanup stack as soon as it exists.
//!
//! `KILN_FAIL_AT=<step>` makes the build fail at that step (`key_pair`, `security_group`,
//! `instance`, `ssh`, `provision`, `stop`, `image`, `image_available`): a fault-injection
//! point for testing that every failure leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::aws;
use super::build::{render, render_tags, Builder, Job};
use super::cleanup::CleanupStack;
use super::local;
use super::provision::{provision_all, BuildHost};
use super::spec::AmazonEbsSource;
use crate::error::Error;
use crate::output::progress::{line, step as say};

/// The spec's templated names and tags, rendered once for the whole build (the image's tags
/// with its provenance).
struct Names {
    ami_name: String,
    tags: BTreeMap<String, String>,
    run_tags: BTreeMap<String, String>,
}

fn checkpoint(step: &str) -> anyhow::Result<()> {
    if std::env::var("KILN_FAIL_AT").is_ok_and(|s| s == step) {
        bail!("failure injected at step '{step}' (KILN_FAIL_AT)");
    }
    Ok(())
}

fn required<'a>(value: &'a Option<String>, field: &str, spec: &Path) -> Result<&'a str, Error> {
    value.as_deref().ok_or_else(|| {
        Error::Usage(format!(
            "{}: source.{field} is required for type amazon-ebs",
            spec.display()
        ))
    })
}

/// EC2 filters: a name and the values it accepts.
type Filters = Vec<(String, Vec<String>)>;

/// `source_ami_filter: {filters: {name: …}, owners: […], most_recent: true}`.
fn parse_filter(value: &serde_json::Value) -> anyhow::Result<(Filters, Vec<String>)> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            other => vec![other.to_string()],
        }
    };
    let filters = value
        .get("filters")
        .and_then(|f| f.as_object())
        .context("source_ami_filter.filters must be a mapping of filter names to values")?
        .iter()
        .map(|(k, v)| (k.clone(), strings(v)))
        .collect();
    let owners = value.get("owners").map(strings).unwrap_or_default();
    Ok((filters, owners))
}

/// An amazon-ebs build, prepared: the spec checked, names rendered, the EC2 client made.
pub struct EbsBuilder<'a> {
    job: &'a Job,
    source: &'a AmazonEbsSource,
    names: Names,
    ec2: aws_sdk_ec2::Client,
    region: String,
    /// The build's local files (the temporary key).
    dir: PathBuf,
}

impl<'a> EbsBuilder<'a> {
    pub async fn prepare(job: &'a Job, source: &'a AmazonEbsSource) -> anyhow::Result<Self> {
        let name = &job.spec.name;
        let spec_path = &job.options.spec;
        required(&source.instance_type, "instance_type", spec_path)?;
        required(&source.ssh_username, "ssh_username", spec_path)?;
        job.provenance.check_tag_lengths()?;
        let mut tags = render_tags(&source.tags, name)?;
        tags.extend(job.provenance.to_tags());
        let names = Names {
            ami_name: render(required(&source.ami_name, "ami_name", spec_path)?, name)?,
            tags,
            run_tags: render_tags(&source.run_tags, name)?,
        };
        if source.source_ami.is_none() && source.source_ami_filter.is_none() {
            return Err(Error::Usage(format!(
                "{}: source.source_ami or source.source_ami_filter is required for type amazon-ebs",
                spec_path.display()
            ))
            .into());
        }
        let ec2 = aws::client(source.region.as_deref(), source.endpoint_url.as_deref()).await?;
        let region = ec2
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let dir = local::home().join("builds").join(&job.run_id);
        Ok(Self {
            job,
            source,
            names,
            ec2,
            region,
            dir,
        })
    }
}

impl Builder for EbsBuilder<'_> {
    /// The AMI id.
    type Built = String;
    type Kept = String;

    async fn build(&self, cleanup: &mut CleanupStack) -> anyhow::Result<String> {
        build(
            self.job,
            self.source,
            &self.ec2,
            &self.names,
            &self.dir,
            cleanup,
        )
        .await
    }

    async fn keep(&self, image_id: String) -> anyhow::Result<String> {
        Ok(image_id)
    }

    fn report(&self, image_id: String) -> anyhow::Result<()> {
        let name = &self.job.spec.name;
        line(
            name,
            &format!(
                "AMI {} ({image_id}) ready after {:.1}s\n==> Builds finished. The artifacts of successful builds are:\n--> {name}: AMIs were created:\n{}: {image_id}",
                self.names.ami_name,
                self.job.started.elapsed().as_secs_f64(),
                self.region,
            ),
        );
        Ok(())
    }

    fn kept_on_abort(&self) -> String {
        format!(
            "the build instance and its key pair and security group are kept (tag kiln:run-id={}); log in with the key in {}, and run `kiln sweep --aws --yes` when done",
            self.job.run_id,
            self.dir.display()
        )
    }

    const ABORT_KEEPS_AFTER_SIGNAL: bool = false;
}

async fn build(
    job: &Job,
    source: &AmazonEbsSource,
    ec2: &aws_sdk_ec2::Client,
    names: &Names,
    dir: &Path,
    cleanup: &mut CleanupStack,
) -> anyhow::Result<String> {
    let (name, run_id, spec_dir) = (&job.spec.name, job.run_id.as_str(), &job.spec_dir);
    let short = &run_id[..8];
    let run_tags = aws::tags(run_id, &names.run_tags);
    let image_tags = aws::tags(run_id, &names.tags);
    let ami_name = names.ami_name.as_str();
    let port = source.ssh_port.unwrap_or(22);

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let removed = dir.to_path_buf();
    cleanup.push(format!("remove {}", dir.display()), async move {
        match tokio::fs::remove_dir_all(&removed).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    });

    say(name, "resolving the source AMI");
    let image = match (&source.source_ami, &source.source_ami_filter) {
        (Some(ami), _) => ami.clone(),
        (None, Some(filter)) => {
            let (filters, owners) = parse_filter(filter)?;
            aws::find_image(ec2, &filters, &owners).await?
        }
        (None, None) => unreachable!("checked before the build"),
    };
    say(name, &format!("source AMI: {image}"));

    checkpoint("key_pair")?;
    let (key_file, key_name): (PathBuf, Option<String>) = match &source.ssh_private_key_file {
        Some(file) => (spec_dir.join(file), source.ssh_keypair_name.clone()),
        None => {
            let key_name = format!("kiln_{short}");
            say(name, &format!("creating temporary key pair {key_name}"));
            let material = aws::create_key_pair(ec2, &key_name, &run_tags).await?;
            cleanup.push(
                format!("delete key pair {key_name}"),
                aws::delete_key_pair(ec2.clone(), key_name.clone()),
            );
            let file = write_private_key(dir, material.as_bytes())
                .with_context(|| format!("writing the key of {key_name}"))?;
            (file, Some(key_name))
        }
    };

    checkpoint("security_group")?;
    let group_name = format!("kiln_{short}");
    say(
        name,
        &format!("creating temporary security group {group_name}"),
    );
    let group = aws::create_security_group(
        ec2,
        &group_name,
        source.subnet_id.as_deref(),
        port,
        "0.0.0.0/0",
        &run_tags,
    )
    .await?;
    cleanup.push(
        format!("delete security group {group}"),
        aws::delete_security_group(ec2.clone(), group.clone()),
    );

    checkpoint("instance")?;
    say(
        name,
        &format!(
            "launching a {} instance",
            source.instance_type.as_deref().unwrap_or_default()
        ),
    );
    let instance = aws::run_instance(
        ec2,
        aws::Launch {
            image_id: &image,
            instance_type: source.instance_type.as_deref().unwrap_or_default(),
            key_name: key_name.as_deref(),
            security_group_id: &group,
            subnet_id: source.subnet_id.as_deref(),
            tags: &run_tags,
        },
    )
    .await?;
    cleanup.push(
        format!("terminate instance {instance}"),
        aws::terminate_instance(ec2.clone(), instance.clone()),
    );
    say(name, &format!("waiting for instance {instance} to run"));
    let address = aws::wait_running(
        ec2,
        &instance,
        source.ssh_interface.as_deref().unwrap_or("public_ip"),
    )
    .await?;
    let host = source.ssh_host.clone().unwrap_or(address);

    checkpoint("ssh")?;
    say(name, &format!("waiting for SSH on {host}:{port}"));
    wait_for_ssh(&host, port, Duration::from_secs(300)).await?;

    checkpoint("provision")?;
    let user = source.ssh_username.as_deref().unwrap_or("root");
    let host = BuildHost {
        address: host,
        port,
        user: user.to_string(),
        private_key: key_file,
    };
    provision_all(job, &host).await?;

    checkpoint("stop")?;
    say(name, &format!("stopping instance {instance}"));
    aws::stop_instance(ec2, &instance).await?;

    checkpoint("image")?;
    say(name, &format!("creating AMI {ami_name}"));
    let image_id = aws::create_image(ec2, &instance, ami_name, &image_tags).await?;
    let keep = cleanup.push(
        format!("deregister AMI {image_id} and delete its snapshots"),
        aws::delete_image(ec2.clone(), image_id.clone()),
    );
    checkpoint("image_available")?;
    say(
        name,
        &format!("waiting for AMI {image_id} to become available"),
    );
    aws::wait_image(ec2, &image_id).await?;
    // The manifest is written while the image is still `kiln:state=building` and its undo
    // armed: if writing it fails, the image is deregistered rather than left unrecorded.
    checkpoint("manifest")?;
    let region = ec2
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut custom = names.tags.clone();
    custom.insert(aws::RUN_ID_TAG.into(), run_id.to_string());
    let artifact = format!("{region}:{image_id}");
    job.record("amazon-ebs", &artifact, custom)?;
    aws::finish_image(ec2, &image_id, &image_tags).await?;
    cleanup.disarm(keep);
    Ok(image_id)
}

/// Waits until an SSH server answers on `host`:`port` with its banner.
/// Writes a temporary private key into a fresh private directory under `dir`: the directory
/// is created 0700 and the file 0600, both exclusively, so the key is never readable by
/// others, not even for a moment, and never written through a planted file or link.
fn write_private_key(dir: &Path, material: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let private = dir.join(format!("key-{}", &crate::util::random_id()[..16]));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let path = private.join("key.pem");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(material)?;
    file.sync_all()?;
    Ok(path)
}

async fn wait_for_ssh(host: &str, port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !local::ssh_banner_at(host, port).await {
        if Instant::now() > deadline {
            bail!(
                "no SSH server answered on {host}:{port} within {}s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const IN_CHILD: &str = "KILN_TEST_PRIVATE_KEY_DIR";

    /// The key is private from its creation: written by a process whose umask is 0 (where a
    /// plain create leaves it readable by everyone until a chmod), it is still 0600 in a 0700
    /// directory. The umask is per process, so the write runs in a child test process.
    #[test]
    fn the_temporary_key_is_private_from_its_creation() {
        if let Some(dir) = std::env::var_os(IN_CHILD) {
            // SAFETY: umask only changes this (child) process's file creation mask.
            unsafe { libc::umask(0) };
            let key = write_private_key(Path::new(&dir), b"-----BEGIN KEY-----\n").unwrap();
            println!("key={}", key.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "bake::build_ebs::tests::the_temporary_key_is_private_from_its_creation",
                "--nocapture",
            ])
            .env(IN_CHILD, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "{stdout}");
        let key = stdout
            .lines()
            .find_map(|l| l.strip_prefix("key="))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no key written: {stdout}"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(key.parent().unwrap()), 0o700);
        assert_eq!(std::fs::read(&key).unwrap(), b"-----BEGIN KEY-----\n");
        let again = write_private_key(dir.path(), b"other").unwrap();
        assert_ne!(
            again.parent(),
            key.parent(),
            "each key gets its own directory"
        );
    }
}
