//! DescribeInstances for the aws_ec2 plugin, and each instance as the host variables amazon.aws
//! gives it: boto3's fields in snake_case (absent ones left out), `tags` as a mapping,
//! `placement.region`, and the reservation's owner, requester and id.

use aws_config::BehaviorVersion;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, Instance, Reservation};
use aws_sdk_ec2::Client;
use serde_json::{json, Map, Value as Json};

use super::{Filters, Options};

/// Every instance the include filters find in every region, less those the exclude filters
/// find, each once.
pub fn instances(options: &Options) -> Result<Vec<Json>, String> {
    // Inventory loading is synchronous and may run inside kiln's runtime: the SDK gets a
    // runtime of its own on a thread of its own.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("could not start the AWS client runtime: {e}"))?
                    .block_on(query(options))
            })
            .join()
            .unwrap_or_else(|_| Err("the AWS client thread panicked".into()))
    })
}

async fn query(options: &Options) -> Result<Vec<Json>, String> {
    let regions = if options.regions.is_empty() {
        all_regions(options).await?
    } else {
        options.regions.clone()
    };
    let mut excluded = std::collections::HashSet::new();
    let mut found = Vec::new();
    for region in &regions {
        let client = client(options, Some(region)).await;
        for filters in &options.exclude_filters {
            for reservation in describe(&client, filters, options).await? {
                for instance in reservation.instances() {
                    excluded.insert(instance.instance_id().unwrap_or_default().to_string());
                }
            }
        }
        for filters in &options.include_filters {
            for reservation in describe(&client, filters, options).await? {
                for instance in reservation.instances() {
                    let id = instance.instance_id().unwrap_or_default().to_string();
                    if excluded.insert(id) {
                        found.push(host_vars(instance, &reservation));
                    }
                }
            }
        }
    }
    Ok(found)
}

async fn client(options: &Options, region: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let (Some(key), Some(secret)) = (&options.access_key, &options.secret_key) {
        loader = loader.credentials_provider(aws_sdk_ec2::config::Credentials::new(
            key,
            secret,
            options.session_token.clone(),
            None,
            "aws_ec2 inventory file",
        ));
    }
    Client::new(&loader.load().await)
}

/// Every region DescribeRegions lists, asked of the default region (us-east-1 without one).
async fn all_regions(options: &Options) -> Result<Vec<String>, String> {
    let mut client = client(options, None).await;
    if client.config().region().is_none() {
        client = self::client(options, Some("us-east-1")).await;
    }
    let out = client
        .describe_regions()
        .send()
        .await
        .map_err(|e| format!("DescribeRegions failed: {}", error_text(&e)))?;
    let regions: Vec<String> = out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    if regions.is_empty() {
        return Err(
            "no regions found: list the regions to search in the file's 'regions' option".into(),
        );
    }
    Ok(regions)
}

async fn describe(
    client: &Client,
    filters: &Filters,
    options: &Options,
) -> Result<Vec<Reservation>, String> {
    let filters: Vec<Filter> = filters
        .iter()
        .map(|(name, values)| {
            Filter::builder()
                .name(name)
                .set_values(Some(values.clone()))
                .build()
        })
        .collect();
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut reservations = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => reservations.extend(page.reservations().iter().cloned()),
            Err(e) => {
                let denied = e.raw_response().is_some_and(|r| r.status().as_u16() == 403);
                if denied && !options.strict_permissions {
                    return Ok(Vec::new());
                }
                return Err(format!("Failed to describe instances: {}", error_text(&e)));
            }
        }
    }
    Ok(reservations)
}

fn error_text<E: ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => format!("{e}"),
    }
}

/// Inserts `key` when the value is present, as boto3 leaves absent fields out.
fn put(map: &mut Map<String, Json>, key: &str, value: Option<impl Into<Json>>) {
    if let Some(value) = value {
        map.insert(key.to_string(), value.into());
    }
}

fn time(t: &aws_sdk_ec2::primitives::DateTime) -> Option<String> {
    t.fmt(aws_sdk_ec2::primitives::DateTimeFormat::DateTime)
        .ok()
        .map(|s| s.replace('Z', "+00:00"))
}

fn groups(list: &[aws_sdk_ec2::types::GroupIdentifier]) -> Json {
    list.iter()
        .map(|g| json!({ "group_id": g.group_id(), "group_name": g.group_name() }))
        .collect()
}

fn host_vars(i: &Instance, reservation: &Reservation) -> Json {
    let mut m = Map::new();
    put(&mut m, "ami_launch_index", i.ami_launch_index());
    put(&mut m, "architecture", i.architecture().map(|v| v.as_str()));
    let devices: Vec<Json> = i
        .block_device_mappings()
        .iter()
        .map(|d| {
            let mut ebs = Map::new();
            if let Some(e) = d.ebs() {
                put(&mut ebs, "attach_time", e.attach_time().and_then(time));
                put(&mut ebs, "delete_on_termination", e.delete_on_termination());
                put(&mut ebs, "status", e.status().map(|s| s.as_str()));
                put(&mut ebs, "volume_id", e.volume_id());
            }
            json!({ "device_name": d.device_name(), "ebs": ebs })
        })
        .collect();
    m.insert("block_device_mappings".into(), devices.into());
    put(&mut m, "client_token", i.client_token());
    put(&mut m, "ebs_optimized", i.ebs_optimized());
    put(&mut m, "ena_support", i.ena_support());
    put(&mut m, "hypervisor", i.hypervisor().map(|v| v.as_str()));
    put(
        &mut m,
        "iam_instance_profile",
        i.iam_instance_profile()
            .map(|p| json!({ "arn": p.arn(), "id": p.id() })),
    );
    put(&mut m, "image_id", i.image_id());
    put(&mut m, "instance_id", i.instance_id());
    put(
        &mut m,
        "instance_lifecycle",
        i.instance_lifecycle().map(|v| v.as_str()),
    );
    put(
        &mut m,
        "instance_type",
        i.instance_type().map(|v| v.as_str()),
    );
    put(&mut m, "kernel_id", i.kernel_id());
    put(&mut m, "key_name", i.key_name());
    put(&mut m, "launch_time", i.launch_time().and_then(time));
    put(
        &mut m,
        "monitoring",
        i.monitoring()
            .map(|v| json!({ "state": v.state().map(|s| s.as_str()) })),
    );
    let interfaces: Vec<Json> = i
        .network_interfaces()
        .iter()
        .map(|n| {
            let mut ni = Map::new();
            put(
                &mut ni,
                "association",
                n.association().map(|a| {
                    json!({ "ip_owner_id": a.ip_owner_id(), "public_dns_name": a.public_dns_name(), "public_ip": a.public_ip() })
                }),
            );
            put(&mut ni, "description", n.description());
            ni.insert("groups".into(), groups(n.groups()));
            put(&mut ni, "mac_address", n.mac_address());
            put(&mut ni, "network_interface_id", n.network_interface_id());
            put(&mut ni, "owner_id", n.owner_id());
            put(&mut ni, "private_dns_name", n.private_dns_name());
            put(&mut ni, "private_ip_address", n.private_ip_address());
            put(&mut ni, "source_dest_check", n.source_dest_check());
            put(&mut ni, "status", n.status().map(|s| s.as_str()));
            put(&mut ni, "subnet_id", n.subnet_id());
            put(&mut ni, "vpc_id", n.vpc_id());
            Json::Object(ni)
        })
        .collect();
    m.insert("network_interfaces".into(), interfaces.into());
    let zone = i
        .placement()
        .and_then(|p| p.availability_zone())
        .unwrap_or_default();
    let mut placement = Map::new();
    if let Some(p) = i.placement() {
        put(&mut placement, "availability_zone", p.availability_zone());
        put(&mut placement, "group_name", p.group_name());
        put(&mut placement, "tenancy", p.tenancy().map(|t| t.as_str()));
    }
    // amazon.aws adds the region, the zone less its letter, for grouping by region.
    let region = zone.get(..zone.len().saturating_sub(1)).unwrap_or_default();
    placement.insert("region".into(), region.into());
    m.insert("placement".into(), placement.into());
    put(&mut m, "platform", i.platform().map(|v| v.as_str()));
    put(&mut m, "platform_details", i.platform_details());
    put(&mut m, "private_dns_name", i.private_dns_name());
    put(&mut m, "private_ip_address", i.private_ip_address());
    let codes: Vec<Json> = i
        .product_codes()
        .iter()
        .map(|c| json!({ "product_code_id": c.product_code_id(), "product_code_type": c.product_code_type().map(|t| t.as_str()) }))
        .collect();
    m.insert("product_codes".into(), codes.into());
    put(&mut m, "public_dns_name", i.public_dns_name());
    put(&mut m, "public_ip_address", i.public_ip_address());
    put(&mut m, "ramdisk_id", i.ramdisk_id());
    put(&mut m, "root_device_name", i.root_device_name());
    put(
        &mut m,
        "root_device_type",
        i.root_device_type().map(|v| v.as_str()),
    );
    m.insert("security_groups".into(), groups(i.security_groups()));
    put(&mut m, "source_dest_check", i.source_dest_check());
    put(
        &mut m,
        "spot_instance_request_id",
        i.spot_instance_request_id(),
    );
    put(
        &mut m,
        "state",
        i.state()
            .map(|s| json!({ "code": s.code(), "name": s.name().map(|n| n.as_str()) })),
    );
    put(
        &mut m,
        "state_reason",
        i.state_reason()
            .map(|s| json!({ "code": s.code(), "message": s.message() })),
    );
    put(
        &mut m,
        "state_transition_reason",
        i.state_transition_reason(),
    );
    put(&mut m, "subnet_id", i.subnet_id());
    put(
        &mut m,
        "virtualization_type",
        i.virtualization_type().map(|v| v.as_str()),
    );
    put(&mut m, "vpc_id", i.vpc_id());
    let tags: Map<String, Json> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().into())))
        .collect();
    m.insert("tags".into(), tags.into());
    put(&mut m, "owner_id", reservation.owner_id());
    m.insert(
        "requester_id".into(),
        reservation.requester_id().unwrap_or_default().into(),
    );
    put(&mut m, "reservation_id", reservation.reservation_id());
    Json::Object(m)
}
