//! The aws_ec2 inventory plugin against moto (no AWS account is reachable here; moto answers
//! the same DescribeInstances API): instances found by tag filters, include and exclude
//! filters, terminated ones left out, named by `hostnames`, grouped by keyed_groups and
//! conditionals, with ansible_host composed, in the shape amazon.aws documents.
#![cfg(feature = "aws")]

mod support;

use serde_json::Value as Json;
use support::moto::Moto;

const INVENTORY: &str = r#"plugin: amazon.aws.aws_ec2
regions: [us-east-1]
filters:
  tag:Role: [web, db]
include_filters:
  - tag:Extra: ["1"]
exclude_filters:
  - tag:Skip: ["yes"]
hostnames:
  - tag:Name
  - instance-id
keyed_groups:
  - key: tags.Role
    prefix: role
  - key: tags.Env | default('')
    prefix: env
    default_value: none
  - key: placement.region
    prefix: aws_region
groups:
  production: "tags.Env == 'prod'"
compose:
  ansible_host: private_ip_address
"#;

/// Launches one instance of a public AMI moto ships per tag list; returns their ids in order.
fn launch(moto: &Moto, fleet: &[&[(&str, &str)]]) -> Vec<String> {
    let (_, [ami, _]) = moto.target_group_and_amis();
    fleet
        .iter()
        .map(|tags| moto.launch_tagged(&ami, tags))
        .collect()
}

/// A group's hosts from `--list` JSON, sorted.
fn hosts(list: &Json, group: &str) -> Vec<String> {
    let mut names: Vec<String> = list[group]["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no hosts in {group}: {list}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn aws_ec2_finds_the_fleet_by_tags_and_groups_it() {
    let moto = Moto::start();
    let ids = launch(
        &moto,
        &[
            &[("Name", "web1"), ("Role", "web"), ("Env", "prod")],
            &[("Name", "web2"), ("Role", "web"), ("Env", "staging")],
            &[("Name", "db1"), ("Role", "db"), ("Env", "prod")],
            &[("Name", "skipped"), ("Role", "web"), ("Skip", "yes")],
            &[("Name", "old"), ("Role", "web")],
            &[("Role", "other"), ("Extra", "1")],
            &[("Name", "unrelated"), ("Role", "other")],
        ],
    );
    moto.terminate(&ids[4]);
    let dir = support::project(&[("fleet.aws_ec2.yml", INVENTORY)]);
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = support::run_kiln(
        &support::kiln(),
        dir.path(),
        &["inventory", "-i", "fleet.aws_ec2.yml", "--list"],
        &env,
    );
    run.assert_ok();
    let json: Json = serde_json::from_str(&run.stdout).unwrap();
    // The untagged-by-Name instance is named by its id, the next preference.
    let extra = ids[5].clone();
    let mut all = vec![
        "db1".to_string(),
        "web1".into(),
        "web2".into(),
        extra.clone(),
    ];
    all.sort();
    assert_eq!(hosts(&json, "aws_ec2"), all, "{}", run.stdout);
    assert_eq!(hosts(&json, "role_web"), vec!["web1", "web2"]);
    assert_eq!(hosts(&json, "role_db"), vec!["db1"]);
    assert_eq!(hosts(&json, "env_prod"), vec!["db1", "web1"]);
    assert_eq!(hosts(&json, "env_none"), vec![extra.clone()]);
    assert_eq!(hosts(&json, "production"), vec!["db1", "web1"]);
    assert_eq!(hosts(&json, "aws_region_us_east_1"), all);
    let web1 = &json["_meta"]["hostvars"]["web1"];
    assert_eq!(web1["instance_id"], ids[0].as_str());
    assert!(web1["private_ip_address"].is_string(), "{web1}");
    assert_eq!(web1["ansible_host"], web1["private_ip_address"]);
    assert_eq!(
        web1["tags"],
        serde_json::json!({"Name": "web1", "Role": "web", "Env": "prod"})
    );
    assert_eq!(web1["placement"]["region"], "us-east-1");
    assert_eq!(web1["state"]["name"], "running");
    for field in [
        "image_id",
        "instance_type",
        "launch_time",
        "owner_id",
        "reservation_id",
        "vpc_id",
        "subnet_id",
        "private_dns_name",
        "security_groups",
        "network_interfaces",
        "block_device_mappings",
    ] {
        assert!(web1.get(field).is_some(), "no {field} in {web1}");
    }
    let graph = support::run_kiln(
        &support::kiln(),
        dir.path(),
        &[
            "inventory",
            "-i",
            "fleet.aws_ec2.yml",
            "--graph",
            "role_web",
        ],
        &env,
    );
    graph.assert_ok();
    assert!(graph.stdout.starts_with("@role_web:\n"), "{}", graph.stdout);
    assert!(graph.stdout.contains("  |--web1\n") && graph.stdout.contains("  |--web2\n"));

    // The endpoint from the file, and a bare `plugin: aws_ec2`.
    let dir = support::project(&[(
        "aws_ec2.yaml",
        &format!(
            "plugin: aws_ec2\nregions: [us-east-1]\nendpoint_url: {}\nhostnames: [tag:Name]\nfilters:\n  tag:Role: db\n",
            moto.url
        ),
    )]);
    let without_endpoint: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
        .copied()
        .collect();
    let run = support::run_kiln(
        &support::kiln(),
        dir.path(),
        &["inventory", "-i", "aws_ec2.yaml", "--list"],
        &without_endpoint,
    );
    run.assert_ok();
    let json: Json = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(hosts(&json, "aws_ec2"), vec!["db1"]);
}

#[test]
fn an_aws_ec2_file_must_be_named_as_amazon_aws_requires() {
    let dir = support::project(&[(
        "ec2.yml",
        "plugin: amazon.aws.aws_ec2\nregions: [us-east-1]\n",
    )]);
    let run = support::run_kiln(
        &support::kiln(),
        dir.path(),
        &["inventory", "-i", "ec2.yml", "--list"],
        &[],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("must end in 'aws_ec2.yml'"),
        "{}",
        run.stderr
    );
}
