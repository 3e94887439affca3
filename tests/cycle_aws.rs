//! `kiln cycle` with an EC2 fleet behind an ELBv2 target group, against moto (no AWS account
//! is reachable here; moto answers the same API, and reports registered targets healthy at
//! once, so health gating itself is tested with the local balancer). The order of kiln's
//! actions must obey the rollout's rules, and the old instances must end terminated.
#![cfg(feature = "aws")]

mod support;

use std::process::Command;

use support::moto::Moto;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn config(moto: &Moto) -> aws_config::SdkConfig {
    block_on(async {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&moto.url)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await
    })
}

/// A target group in moto's default VPC, and two public AMIs moto ships.
fn setup(moto: &Moto) -> (String, String, String) {
    let config = config(moto);
    block_on(async {
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let vpc = ec2.describe_vpcs().send().await.unwrap().vpcs()[0]
            .vpc_id()
            .unwrap()
            .to_string();
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        let group = elb
            .create_target_group()
            .name("web")
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
            .send()
            .await
            .unwrap();
        let arn = group.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string();
        let images = ec2.describe_images().send().await.unwrap();
        let amis: Vec<String> = images
            .images()
            .iter()
            .filter_map(|i| i.image_id().map(str::to_string))
            .take(2)
            .collect();
        (arn, amis[0].clone(), amis[1].clone())
    })
}

fn terminated(moto: &Moto, ids: &[String]) -> bool {
    let config = config(moto);
    block_on(async {
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let out = ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .all(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some("terminated"))
    })
}

#[test]
fn rolls_an_ec2_fleet_behind_a_target_group_in_the_right_order() {
    let moto = Moto::start();
    let (arn, ami1, ami2) = setup(&moto);
    let dir = tempfile::tempdir().unwrap();
    let spec = |ami: &str| {
        let path = dir.path().join("cycle.yml");
        std::fs::write(
            &path,
            format!(
                "name: web\nimage: us-east-1:{ami}\nfleet:\n  type: ec2\n  count: 2\n  instance_type: t3.micro\n  tags: {{Role: web}}\nbalancer:\n  type: elbv2\n  target_group_arn: {arn}\n  port: 80\nstrategy: {{type: rolling, batch: 1, min_healthy_percent: 100}}\nhealth:\n  timeout: 60s\ndrain_timeout: 5s\n"
            ),
        )
        .unwrap();
        path
    };
    let cycle = |ami: &str| {
        let summary = dir.path().join("summary.json");
        let mut command = Command::new(support::kiln());
        command
            .args(["cycle"])
            .arg(spec(ami))
            .arg("--summary")
            .arg(&summary)
            .env("KILN_HOME", dir.path().join("home"));
        for (k, v) in moto.env() {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
        summary
    };

    let first = cycle(&ami1);
    let old: Vec<String> = first["launched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(old.len(), 2);

    let second = cycle(&ami2);
    let events: Vec<String> = second["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let at = |event: &str| {
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no '{event}' in {events:?}"))
    };
    let new: Vec<String> = second["launched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new.len(), 2, "{events:?}");
    for id in &new {
        assert!(at(&format!("launch {id}")) < at(&format!("register {id}")));
        assert!(at(&format!("register {id}")) < at(&format!("in-service {id}")));
    }
    // Batch 1 at 100 %: each old instance leaves only after one more new one is in service
    // (so at least `count` stay in service throughout).
    for id in &old {
        let drain = at(&format!("drain {id}"));
        let in_service = events[..drain]
            .iter()
            .filter(|e| e.starts_with("in-service"))
            .count();
        let drained = events[..drain]
            .iter()
            .filter(|e| e.starts_with("drain"))
            .count();
        assert!(in_service > drained, "{id} drained too early: {events:?}");
        assert!(at(&format!("drain {id}")) < at(&format!("removed {id}")));
        assert!(at(&format!("removed {id}")) < at(&format!("destroy {id}")));
    }
    assert!(terminated(&moto, &old), "old instances are not terminated");
}
