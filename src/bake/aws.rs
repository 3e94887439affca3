//! The amazon-ebs builder's AWS side: an EC2 client from the usual credential chain (plus
//! the spec's region and endpoint), the resources a build creates — each tagged
//! `kiln:run-id` (and `kiln:created`, `kiln:state` on images) so `kiln sweep` can find what a
//! SIGKILL left — and their undos.

use std::time::Duration;

use anyhow::{bail, Context};
use aws_config::BehaviorVersion;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, IpPermission, IpRange, KeyType, ResourceType, Tag,
    TagSpecification,
};
use aws_sdk_ec2::Client;

pub const RUN_ID_TAG: &str = "kiln:run-id";
pub const CREATED_TAG: &str = "kiln:created";
/// On images: `building` until the build finishes (sweep removes `building` images only).
pub const STATE_TAG: &str = "kiln:state";

/// How long waiters wait for EC2 (instances, images).
const WAIT: Duration = Duration::from_secs(30 * 60);

/// The AWS configuration for `region` and `endpoint` (else the environment's).
pub async fn sdk_config(region: Option<&str>, endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// An EC2 client for `region` (else AWS_REGION/AWS_DEFAULT_REGION/profile) and `endpoint`
/// (else AWS_ENDPOINT_URL), after checking credentials can be found.
pub async fn client(region: Option<&str>, endpoint: Option<&str>) -> anyhow::Result<Client> {
    let config = sdk_config(region, endpoint).await;
    if config.region().is_none() {
        bail!("no AWS region: set source.region in the spec, or AWS_REGION (or a profile's region in ~/.aws/config)");
    }
    use aws_credential_types::provider::ProvideCredentials;
    let provider = config
        .credentials_provider()
        .context("no AWS credentials provider configured")?;
    if let Err(e) = provider.provide_credentials().await {
        bail!(
            "no AWS credentials found ({e}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials (or `aws sso login`), or run where an instance role is available"
        );
    }
    Ok(Client::new(&config))
}

pub fn tags(run_id: &str, extra: &std::collections::BTreeMap<String, String>) -> Vec<Tag> {
    let created = crate::clock::epoch_seconds().to_string();
    let mut tags: Vec<Tag> = extra
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    tags.push(Tag::builder().key(RUN_ID_TAG).value(run_id).build());
    tags.push(Tag::builder().key(CREATED_TAG).value(created).build());
    tags
}

fn spec_for(kind: ResourceType, tags: &[Tag]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags.to_vec()))
        .build()
}

/// The newest image matching `filters` (name → values) and `owners`.
pub async fn find_image(
    ec2: &Client,
    filters: &[(String, Vec<String>)],
    owners: &[String],
) -> anyhow::Result<String> {
    let mut request = ec2.describe_images().set_owners(if owners.is_empty() {
        None
    } else {
        Some(owners.to_vec())
    });
    for (name, values) in filters {
        request = request.filters(
            Filter::builder()
                .name(name)
                .set_values(Some(values.clone()))
                .build(),
        );
    }
    let out = request.send().await.context("DescribeImages")?;
    let newest = out
        .images()
        .iter()
        .max_by_key(|i| i.creation_date().unwrap_or_default().to_string())
        .and_then(|i| i.image_id())
        .map(str::to_string);
    newest.with_context(|| {
        format!("source_ami_filter matched no image (filters {filters:?}, owners {owners:?})")
    })
}

/// A temporary key pair; returns its private key (PEM/OpenSSH text).
pub async fn create_key_pair(ec2: &Client, name: &str, tags: &[Tag]) -> anyhow::Result<String> {
    let out = ec2
        .create_key_pair()
        .key_name(name)
        .key_type(KeyType::Ed25519)
        .tag_specifications(spec_for(ResourceType::KeyPair, tags))
        .send()
        .await
        .context("CreateKeyPair")?;
    out.key_material()
        .map(str::to_string)
        .context("CreateKeyPair returned no key material")
}

pub async fn delete_key_pair(ec2: Client, name: String) -> anyhow::Result<()> {
    ec2.delete_key_pair()
        .key_name(&name)
        .send()
        .await
        .with_context(|| format!("DeleteKeyPair {name}"))?;
    Ok(())
}

/// A temporary security group allowing SSH in (from `cidr`).
pub async fn create_security_group(
    ec2: &Client,
    name: &str,
    subnet_id: Option<&str>,
    port: u16,
    cidr: &str,
    tags: &[Tag],
) -> anyhow::Result<String> {
    let vpc_id = match subnet_id {
        Some(subnet) => ec2
            .describe_subnets()
            .subnet_ids(subnet)
            .send()
            .await
            .context("DescribeSubnets")?
            .subnets()
            .first()
            .and_then(|s| s.vpc_id())
            .map(str::to_string),
        None => None,
    };
    let group = ec2
        .create_security_group()
        .group_name(name)
        .description("kiln bake: temporary SSH access to the build instance")
        .set_vpc_id(vpc_id)
        .tag_specifications(spec_for(ResourceType::SecurityGroup, tags))
        .send()
        .await
        .context("CreateSecurityGroup")?;
    let id = group
        .group_id()
        .context("CreateSecurityGroup returned no id")?
        .to_string();
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port as i32)
                .to_port(port as i32)
                .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
                .build(),
        )
        .send()
        .await
        .context("AuthorizeSecurityGroupIngress")?;
    Ok(id)
}

/// Deletes a security group, retrying while EC2 still counts a terminating instance in it.
pub async fn delete_security_group(ec2: Client, id: String) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..30 {
        match ec2.delete_security_group().group_id(&id).send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let text = format!("{}", aws_sdk_ec2::error::DisplayErrorContext(&e));
                if text.contains("NotFound") {
                    return Ok(());
                }
                last = Some(text);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    bail!("DeleteSecurityGroup {id}: {}", last.unwrap_or_default())
}

pub struct Launch<'a> {
    pub image_id: &'a str,
    pub instance_type: &'a str,
    pub key_name: Option<&'a str>,
    pub security_group_id: &'a str,
    pub subnet_id: Option<&'a str>,
    pub tags: &'a [Tag],
}

pub async fn run_instance(ec2: &Client, launch: Launch<'_>) -> anyhow::Result<String> {
    let out = ec2
        .run_instances()
        .image_id(launch.image_id)
        .instance_type(InstanceType::from(launch.instance_type))
        .min_count(1)
        .max_count(1)
        .set_key_name(launch.key_name.map(str::to_string))
        .security_group_ids(launch.security_group_id)
        .set_subnet_id(launch.subnet_id.map(str::to_string))
        .tag_specifications(spec_for(ResourceType::Instance, launch.tags))
        .tag_specifications(spec_for(ResourceType::Volume, launch.tags))
        .send()
        .await
        .context("RunInstances")?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_string)
        .context("RunInstances returned no instance")
}

/// Waits for `running`; returns the address `interface` names.
pub async fn wait_running(ec2: &Client, id: &str, interface: &str) -> anyhow::Result<String> {
    ec2.wait_until_instance_running()
        .instance_ids(id)
        .wait(WAIT)
        .await
        .with_context(|| format!("waiting for {id} to run"))?;
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .context("DescribeInstances")?;
    let instance = out
        .reservations()
        .first()
        .and_then(|r| r.instances().first())
        .with_context(|| format!("instance {id} not found"))?;
    let address = match interface {
        "private_ip" => instance.private_ip_address(),
        "public_dns" => instance.public_dns_name(),
        "private_dns" => instance.private_dns_name(),
        _ => instance.public_ip_address(),
    };
    address
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .with_context(|| {
            format!("instance {id} has no {interface} (set ssh_interface or ssh_host)")
        })
}

pub async fn stop_instance(ec2: &Client, id: &str) -> anyhow::Result<()> {
    ec2.stop_instances()
        .instance_ids(id)
        .send()
        .await
        .context("StopInstances")?;
    ec2.wait_until_instance_stopped()
        .instance_ids(id)
        .wait(WAIT)
        .await
        .with_context(|| format!("waiting for {id} to stop"))?;
    Ok(())
}

pub async fn terminate_instance(ec2: Client, id: String) -> anyhow::Result<()> {
    ec2.terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .with_context(|| format!("TerminateInstances {id}"))?;
    ec2.wait_until_instance_terminated()
        .instance_ids(&id)
        .wait(WAIT)
        .await
        .with_context(|| format!("waiting for {id} to terminate"))?;
    Ok(())
}

/// Creates the image (tagged `kiln:state=building` until `finish_image`).
pub async fn create_image(
    ec2: &Client,
    instance_id: &str,
    name: &str,
    tags: &[Tag],
) -> anyhow::Result<String> {
    let mut image_tags = tags.to_vec();
    image_tags.push(Tag::builder().key(STATE_TAG).value("building").build());
    let out = ec2
        .create_image()
        .instance_id(instance_id)
        .name(name)
        .tag_specifications(spec_for(ResourceType::Image, &image_tags))
        .send()
        .await
        .context("CreateImage")?;
    out.image_id()
        .map(str::to_string)
        .context("CreateImage returned no image id")
}

pub async fn wait_image(ec2: &Client, image_id: &str) -> anyhow::Result<()> {
    ec2.wait_until_image_available()
        .image_ids(image_id)
        .wait(WAIT)
        .await
        .with_context(|| format!("waiting for {image_id} to become available"))?;
    Ok(())
}

/// Marks the image finished and gives its snapshots the image's tags (tagged here rather
/// than at CreateImage, which not every EC2 implementation accepts for snapshots).
pub async fn finish_image(ec2: &Client, image_id: &str, tags: &[Tag]) -> anyhow::Result<()> {
    let snapshots = snapshots(ec2, image_id).await?;
    if !snapshots.is_empty() {
        ec2.create_tags()
            .set_resources(Some(snapshots))
            .set_tags(Some(tags.to_vec()))
            .send()
            .await
            .context("CreateTags (snapshots)")?;
    }
    ec2.create_tags()
        .resources(image_id)
        .tags(Tag::builder().key(STATE_TAG).value("done").build())
        .send()
        .await
        .context("CreateTags")?;
    Ok(())
}

/// An image's tags (its provenance among them).
pub async fn image_tags(
    ec2: &Client,
    image_id: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let out = ec2
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .with_context(|| format!("DescribeImages {image_id}"))?;
    let image = out
        .images()
        .first()
        .with_context(|| format!("no image {image_id}"))?;
    Ok(image
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect())
}

async fn snapshots(ec2: &Client, image_id: &str) -> anyhow::Result<Vec<String>> {
    let out = ec2
        .describe_images()
        .image_ids(image_id)
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect())
}

/// Deregisters an image and deletes its snapshots.
pub async fn delete_image(ec2: Client, image_id: String) -> anyhow::Result<()> {
    let snapshots = snapshots(&ec2, &image_id).await.unwrap_or_default();
    ec2.deregister_image()
        .image_id(&image_id)
        .send()
        .await
        .with_context(|| format!("DeregisterImage {image_id}"))?;
    for snapshot in snapshots {
        ec2.delete_snapshot()
            .snapshot_id(&snapshot)
            .send()
            .await
            .with_context(|| format!("DeleteSnapshot {snapshot}"))?;
    }
    Ok(())
}

/// What a build left: (kind, id, created unix seconds).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub kind: &'static str,
    pub id: String,
    pub created: i64,
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn created(tags: &[Tag]) -> i64 {
    tag_value(tags, CREATED_TAG)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every resource tagged `kiln:run-id` that a finished build would not have kept.
pub async fn orphans(ec2: &Client) -> anyhow::Result<Vec<Orphan>> {
    let tagged = || Filter::builder().name("tag-key").values(RUN_ID_TAG).build();
    let mut found = Vec::new();
    let instances = ec2
        .describe_instances()
        .filters(tagged())
        .send()
        .await
        .context("DescribeInstances")?;
    for instance in instances.reservations().iter().flat_map(|r| r.instances()) {
        let state = instance.state().and_then(|s| s.name());
        if matches!(
            state,
            Some(InstanceStateName::Terminated) | Some(InstanceStateName::ShuttingDown)
        ) {
            continue;
        }
        if let Some(id) = instance.instance_id() {
            found.push(Orphan {
                kind: "instance",
                id: id.to_string(),
                created: created(instance.tags()),
            });
        }
    }
    let images = ec2
        .describe_images()
        .owners("self")
        .filters(tagged())
        .send()
        .await
        .context("DescribeImages")?;
    for image in images.images() {
        if tag_value(image.tags(), STATE_TAG) == Some("building") {
            if let Some(id) = image.image_id() {
                found.push(Orphan {
                    kind: "image",
                    id: id.to_string(),
                    created: created(image.tags()),
                });
            }
        }
    }
    let keys = ec2
        .describe_key_pairs()
        .filters(tagged())
        .send()
        .await
        .context("DescribeKeyPairs")?;
    for key in keys.key_pairs() {
        if let Some(name) = key.key_name() {
            found.push(Orphan {
                kind: "key pair",
                id: name.to_string(),
                created: created(key.tags()),
            });
        }
    }
    let groups = ec2
        .describe_security_groups()
        .filters(tagged())
        .send()
        .await
        .context("DescribeSecurityGroups")?;
    for group in groups.security_groups() {
        if let Some(id) = group.group_id() {
            found.push(Orphan {
                kind: "security group",
                id: id.to_string(),
                created: created(group.tags()),
            });
        }
    }
    Ok(found)
}

/// Removes one orphan (instances first: groups cannot go while an instance uses them).
pub async fn remove_orphan(ec2: &Client, orphan: &Orphan) -> anyhow::Result<()> {
    let ec2 = ec2.clone();
    let id = orphan.id.clone();
    match orphan.kind {
        "instance" => terminate_instance(ec2, id).await,
        "image" => delete_image(ec2, id).await,
        "key pair" => delete_key_pair(ec2, id).await,
        _ => delete_security_group(ec2, id).await,
    }
}
