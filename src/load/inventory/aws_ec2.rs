//! The `amazon.aws.aws_ec2` inventory plugin, natively: EC2 instances from DescribeInstances
//! in each region (filters, include_filters, exclude_filters; by default every instance that
//! is not terminated), named by the `hostnames` preferences, with the host variables amazon.aws
//! sets (the instance's fields in snake_case, `tags` as a mapping, `placement.region`), in the
//! group `aws_ec2`, then compose, groups and keyed_groups. The AWS calls need the `aws` cargo
//! feature; the rest is plain data handling.

#[cfg(feature = "aws")]
mod describe;

use std::path::Path;

use minijinja::value::ValueKind;
use minijinja::Value;
use serde_json::Value as Json;

use super::construct::{sanitize_group_name, Constructable};
use super::Inventory;
use crate::error::{Error, Result};
use crate::value::{bool_of, vars_from_json, VarMap};

/// One `Name: [values]` filter list, as DescribeInstances takes it.
pub type Filters = Vec<(String, Vec<String>)>;

/// What the configuration file asks for.
#[derive(Debug, Default)]
pub struct Options {
    pub regions: Vec<String>,
    /// Each entry is one query; an instance any of them finds is in the inventory.
    pub include_filters: Vec<Filters>,
    /// Instances any of these finds are left out.
    pub exclude_filters: Vec<Filters>,
    pub hostnames: Vec<Hostname>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
    /// Whether an access-denied answer is an error rather than no instances.
    pub strict_permissions: bool,
}

/// One `hostnames` preference.
#[derive(Debug, Clone, PartialEq)]
pub enum Hostname {
    /// `tag:Name`, `private-ip-address`, `dns-name`, …
    Attribute(String),
    /// `{name: …, prefix: …, separator: …}`.
    Prefixed {
        name: String,
        prefix: Option<String>,
        separator: String,
    },
}

/// Hostname preferences and the host variable path each reads (instance filter names, as
/// amazon.aws accepts them).
const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("ami-launch-index", &["ami_launch_index"]),
    ("architecture", &["architecture"]),
    ("availability-zone", &["placement", "availability_zone"]),
    ("dns-name", &["public_dns_name"]),
    ("image-id", &["image_id"]),
    ("instance-id", &["instance_id"]),
    ("instance-state-code", &["state", "code"]),
    ("instance-state-name", &["state", "name"]),
    ("instance-type", &["instance_type"]),
    ("ip-address", &["public_ip_address"]),
    ("kernel-id", &["kernel_id"]),
    ("key-name", &["key_name"]),
    ("launch-time", &["launch_time"]),
    ("owner-id", &["owner_id"]),
    ("placement-group-name", &["placement", "group_name"]),
    ("platform", &["platform"]),
    ("private-dns-name", &["private_dns_name"]),
    ("private-ip-address", &["private_ip_address"]),
    ("requester-id", &["requester_id"]),
    ("reservation-id", &["reservation_id"]),
    ("root-device-name", &["root_device_name"]),
    ("root-device-type", &["root_device_type"]),
    ("subnet-id", &["subnet_id"]),
    ("tenancy", &["placement", "tenancy"]),
    ("virtualization-type", &["virtualization_type"]),
    ("vpc-id", &["vpc_id"]),
];

/// The state filter amazon.aws adds to a query that names no state: all but terminated.
const LIVE_STATES: [&str; 4] = ["running", "pending", "stopping", "stopped"];

pub fn load(inv: &mut Inventory, path: &Path, config: &VarMap) -> Result<()> {
    let source = path.display().to_string();
    let options = Options::from_config(config, &source)?;
    let construct = Constructable::from_config(config, &source)?;
    let instances = fetch(&options).map_err(|e| Error::Usage(format!("{source}: {e}")))?;
    populate(inv, &options, &construct, instances)
        .map_err(|e| Error::Usage(format!("{source}: {e}")))
}

#[cfg(feature = "aws")]
fn fetch(options: &Options) -> std::result::Result<Vec<Json>, String> {
    describe::instances(options)
}

#[cfg(not(feature = "aws"))]
fn fetch(_options: &Options) -> std::result::Result<Vec<Json>, String> {
    // The words of `bake::aws_unavailable`, which loading cannot reach up to.
    Err("the aws_ec2 inventory plugin needs AWS, and this kiln was built without it: rebuild it with the `aws` feature (`cargo install --path . --features aws`)".into())
}

impl Options {
    pub fn from_config(config: &VarMap, source: &str) -> Result<Self> {
        let bad = |message: String| Error::Usage(format!("{source}: {message}"));
        let text = |key: &str| {
            config
                .get(key)
                .filter(|v| !v.is_none() && !v.is_undefined())
                .map(|v| v.to_string())
        };
        let mut include_filters = Vec::new();
        if let Some(filters) = config.get("filters").filter(|f| f.is_true()) {
            include_filters.push(filter_list(filters).map_err(bad)?);
        }
        for key in ["include_filters", "exclude_filters"] {
            if let Some(list) = config.get(key).filter(|v| !v.is_none()) {
                if list.kind() != ValueKind::Seq {
                    return Err(bad(format!("'{key}' must be a list of filter mappings")));
                }
            }
        }
        let filter_lists = |key: &str| -> Result<Vec<Filters>> {
            config
                .get(key)
                .into_iter()
                .flat_map(|v| v.try_iter().into_iter().flatten())
                .map(|f| filter_list(&f).map_err(bad))
                .collect()
        };
        include_filters.extend(filter_lists("include_filters")?);
        if include_filters.is_empty() {
            include_filters.push(Vec::new());
        }
        let hostnames = config
            .get("hostnames")
            .into_iter()
            .flat_map(|v| v.try_iter().into_iter().flatten())
            .map(|h| hostname_preference(&h).map_err(bad))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            regions: config
                .get("regions")
                .into_iter()
                .flat_map(|v| v.try_iter().into_iter().flatten())
                .map(|r| r.to_string())
                .collect(),
            include_filters,
            exclude_filters: filter_lists("exclude_filters")?,
            hostnames,
            endpoint_url: text("endpoint_url").or_else(|| text("aws_endpoint_url")),
            profile: text("aws_profile").or_else(|| text("profile")),
            access_key: text("aws_access_key").or_else(|| text("aws_access_key_id")),
            secret_key: text("aws_secret_key").or_else(|| text("aws_secret_access_key")),
            session_token: text("aws_security_token").or_else(|| text("session_token")),
            strict_permissions: config
                .get("strict_permissions")
                .and_then(bool_of)
                .unwrap_or(true),
        })
    }
}

/// A filter mapping (`tag:Role: web`, `instance-state-name: [running]`) as DescribeInstances
/// filters, with amazon.aws's default state filter when none names a state.
fn filter_list(filters: &Value) -> std::result::Result<Filters, String> {
    if filters.kind() != ValueKind::Map {
        return Err(format!("filters must be a mapping, not {filters}"));
    }
    let mut out: Filters = filters
        .try_iter()
        .into_iter()
        .flatten()
        .map(|name| {
            let value = filters.get_item(&name).unwrap_or_default();
            let values = if value.kind() == ValueKind::Seq {
                value
                    .try_iter()
                    .into_iter()
                    .flatten()
                    .map(|v| v.to_string())
                    .collect()
            } else {
                vec![value.to_string()]
            };
            (name.to_string(), values)
        })
        .collect();
    if !out.iter().any(|(name, _)| name == "instance-state-name") {
        out.push((
            "instance-state-name".into(),
            LIVE_STATES.iter().map(|s| s.to_string()).collect(),
        ));
    }
    Ok(out)
}

fn hostname_preference(value: &Value) -> std::result::Result<Hostname, String> {
    if let Some(text) = value.as_str() {
        return Ok(Hostname::Attribute(text.to_string()));
    }
    if value.kind() != ValueKind::Map {
        return Err(format!(
            "a hostnames entry must be a string or a mapping, not {value}"
        ));
    }
    let field = |key: &str| {
        value
            .get_attr(key)
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_none())
            .map(|v| v.to_string())
    };
    let name = field("name").ok_or("A 'name' key must be defined in a hostnames dictionary.")?;
    Ok(Hostname::Prefixed {
        name,
        prefix: field("prefix"),
        separator: field("separator").unwrap_or_else(|| "_".into()),
    })
}

/// Adds the instances (host variables in snake_case, sorted by instance id) to the inventory.
pub fn populate(
    inv: &mut Inventory,
    options: &Options,
    construct: &Constructable,
    mut instances: Vec<Json>,
) -> std::result::Result<(), String> {
    instances.sort_by_key(|a| text_at(a, &["instance_id"]));
    inv.group_mut("aws_ec2");
    for instance in instances {
        let Some(name) = hostname(&instance, &options.hostnames)? else {
            continue;
        };
        inv.add_host(&name, Some("aws_ec2"));
        if let Json::Object(vars) = &instance {
            inv.hosts
                .entry(name.clone())
                .or_default()
                .extend(vars_from_json(vars));
        }
        construct
            .apply(inv, &name, |inv, host| {
                Ok(inv.hosts.get(host).cloned().unwrap_or_default())
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The instance's name: the first preference that has a value (default: public, then
/// private DNS name); `None` leaves the instance out, as amazon.aws does.
pub fn hostname(
    instance: &Json,
    preferences: &[Hostname],
) -> std::result::Result<Option<String>, String> {
    let default = [
        Hostname::Attribute("dns-name".into()),
        Hostname::Attribute("private-dns-name".into()),
    ];
    let preferences = if preferences.is_empty() {
        &default[..]
    } else {
        preferences
    };
    for preference in preferences {
        let found = match preference {
            Hostname::Attribute(attribute) => attribute_value(instance, attribute)?,
            Hostname::Prefixed {
                name,
                prefix,
                separator,
            } => {
                let name = attribute_value(instance, name)?;
                let prefix = match prefix {
                    Some(prefix) => attribute_value(instance, prefix)?,
                    None => None,
                };
                match (name, prefix) {
                    (Some(name), Some(prefix)) => Some(format!("{prefix}{separator}{name}")),
                    (name, _) => name,
                }
            }
        };
        if let Some(found) = found.filter(|f| !f.is_empty()) {
            return Ok(Some(if found.contains(':') {
                sanitize_group_name(&found)
            } else {
                found
            }));
        }
    }
    Ok(None)
}

/// One hostname preference's value: a tag (`tag:Name`, `tag:Name=Value`, several
/// comma-separated) or an instance attribute.
fn attribute_value(
    instance: &Json,
    attribute: &str,
) -> std::result::Result<Option<String>, String> {
    if let Some(tags) = attribute.strip_prefix("tag:") {
        for wanted in tags.split(',') {
            match wanted.split_once('=') {
                Some((key, value)) => {
                    if text_at(instance, &["tags", key]).as_deref() == Some(value) {
                        return Ok(Some(format!("{key}_{value}")));
                    }
                }
                None => {
                    if let Some(value) =
                        text_at(instance, &["tags", wanted]).filter(|v| !v.is_empty())
                    {
                        return Ok(Some(value));
                    }
                }
            }
        }
        return Ok(None);
    }
    let Some((_, path)) = ATTRIBUTES.iter().find(|(name, _)| *name == attribute) else {
        let known: Vec<&str> = ATTRIBUTES.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "Invalid filter '{attribute}' provided; filter must be one of {}, or tag:NAME",
            known.join(", ")
        ));
    };
    Ok(text_at(instance, path))
}

fn text_at(value: &Json, path: &[&str]) -> Option<String> {
    let found = path.iter().try_fold(value, |v, key| v.get(key))?;
    match found {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> VarMap {
        let value: Json = serde_json::from_str(json).unwrap();
        vars_from_json(value.as_object().unwrap())
    }

    fn instance(id: &str, name: Option<&str>, role: &str) -> Json {
        let mut tags = serde_json::json!({ "Role": role });
        if let Some(name) = name {
            tags["Name"] = name.into();
        }
        serde_json::json!({
            "instance_id": id,
            "private_ip_address": "10.0.0.1",
            "private_dns_name": format!("ip-{id}.ec2.internal"),
            "public_dns_name": "",
            "placement": {"availability_zone": "us-east-1a", "region": "us-east-1"},
            "state": {"code": 16, "name": "running"},
            "tags": tags,
        })
    }

    #[test]
    fn filters_get_the_live_state_filter_unless_they_name_a_state() {
        let options = Options::from_config(
            &config(r#"{"filters": {"tag:Role": "web"}, "include_filters": [{"instance-state-name": ["stopped"]}], "exclude_filters": [{"tag:Skip": ["yes", "true"]}]}"#),
            "x",
        )
        .unwrap();
        assert_eq!(options.include_filters.len(), 2);
        assert_eq!(
            options.include_filters[0][0],
            ("tag:Role".into(), vec!["web".into()])
        );
        assert_eq!(options.include_filters[0][1].0, "instance-state-name");
        assert_eq!(
            options.include_filters[1],
            vec![("instance-state-name".into(), vec!["stopped".into()])]
        );
        assert_eq!(options.exclude_filters[0][0].1, vec!["yes", "true"]);
        let none = Options::from_config(&config("{}"), "x").unwrap();
        assert_eq!(none.include_filters.len(), 1);
        assert!(none.strict_permissions);
    }

    #[cfg(not(feature = "aws"))]
    #[test]
    fn without_the_aws_feature_the_error_says_how_to_rebuild() {
        let err = fetch(&Options::default()).unwrap_err();
        assert!(err.contains("--features aws"), "{err}");
    }

    #[test]
    fn hostnames_follow_the_preferences() {
        let i = instance("i-1", Some("web1"), "web");
        let pick = |prefs: Json| {
            let options = Options::from_config(
                &config(&serde_json::json!({"hostnames": prefs}).to_string()),
                "x",
            )
            .unwrap();
            hostname(&i, &options.hostnames)
        };
        assert_eq!(
            pick(serde_json::json!(["tag:Name", "private-ip-address"]))
                .unwrap()
                .as_deref(),
            Some("web1")
        );
        assert_eq!(
            pick(serde_json::json!(["tag:Missing", "private-ip-address"]))
                .unwrap()
                .as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            pick(serde_json::json!(["tag:Role=web"]))
                .unwrap()
                .as_deref(),
            Some("Role_web")
        );
        assert_eq!(
            pick(
                serde_json::json!([{"name": "instance-id", "prefix": "tag:Role", "separator": "-"}])
            )
            .unwrap()
            .as_deref(),
            Some("web-i-1")
        );
        // The default: public DNS name (empty here), then the private one.
        assert_eq!(
            pick(serde_json::json!([])).unwrap().as_deref(),
            Some("ip-i-1.ec2.internal")
        );
        assert!(pick(serde_json::json!(["no-such-thing"])).is_err());
        assert_eq!(pick(serde_json::json!(["tag:Missing"])).unwrap(), None);
    }

    #[test]
    fn instances_become_hosts_in_aws_ec2_with_constructed_groups() {
        let config = config(
            r#"{"hostnames": ["tag:Name"], "keyed_groups": [{"key": "tags.Role", "prefix": "role"}],
                "compose": {"ansible_host": "private_ip_address"}, "groups": {"east": "placement.region == 'us-east-1'"}}"#,
        );
        let options = Options::from_config(&config, "x").unwrap();
        let construct = Constructable::from_config(&config, "x").unwrap();
        let mut inv = Inventory::new();
        populate(
            &mut inv,
            &options,
            &construct,
            vec![
                instance("i-2", Some("db1"), "db"),
                instance("i-1", Some("web1"), "web"),
                instance("i-3", None, "web"),
            ],
        )
        .unwrap();
        inv.finish();
        assert_eq!(inv.group_hosts("aws_ec2"), vec!["web1", "db1"]);
        assert_eq!(inv.group_hosts("role_web"), vec!["web1"]);
        assert_eq!(inv.group_hosts("east"), vec!["web1", "db1"]);
        assert_eq!(
            inv.host_vars("db1").unwrap()["ansible_host"],
            Value::from("10.0.0.1")
        );
        assert_eq!(
            inv.host_vars("db1").unwrap()["instance_id"],
            Value::from("i-2")
        );
    }
}
