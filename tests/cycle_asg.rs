//! `kiln cycle` with an Auto Scaling group fleet, against moto (EC2, Auto Scaling, ELBv2).
//! moto has no instance refresh (StartInstanceRefresh answers HTTP 500), so the rolling
//! tests exercise kiln's own replacement, reached by `refresh.method: auto` falling back;
//! moto reports group instances healthy in the target group at once, so "unhealthy" is
//! produced by stopping the new instances as they appear (moto then reports them `unused`).
//! moto ignores `SourceVersion` when it makes a launch template version, so only the fields
//! kiln copies explicitly (instance type, key name) can be checked here, not user data.
#![cfg(feature = "aws")]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use support::moto::Moto;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// moto with a target group, a launch template (with user data) on the first of two AMIs,
/// and a group of two instances named by prefix, as Terraform's `name_prefix` makes it.
struct Fixture {
    moto: Moto,
    config: aws_config::SdkConfig,
    dir: tempfile::TempDir,
    target_group: String,
    template: String,
    amis: [String; 2],
}

const PREFIX: &str = "web-";

impl Fixture {
    fn new(version: &str) -> Fixture {
        let moto = Moto::start();
        let config = moto.sdk_config();
        let (target_group, amis) = moto.target_group_and_amis();
        let template = block_on(async {
            let ec2 = aws_sdk_ec2::Client::new(&config);
            ec2.create_launch_template()
                .launch_template_name("web")
                .launch_template_data(
                    aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                        .image_id(&amis[0])
                        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                        .key_name("deploy")
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .launch_template()
                .unwrap()
                .launch_template_id()
                .unwrap()
                .to_string()
        });
        let fixture = Fixture {
            moto,
            config,
            dir: tempfile::tempdir().unwrap(),
            target_group,
            template,
            amis,
        };
        fixture.create_group(&format!("{PREFIX}20261130000000000000000001"), version);
        fixture
    }

    fn asg(&self) -> aws_sdk_autoscaling::Client {
        aws_sdk_autoscaling::Client::new(&self.config)
    }

    fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config)
    }

    fn create_group(&self, name: &str, version: &str) {
        block_on(
            self.asg()
                .create_auto_scaling_group()
                .auto_scaling_group_name(name)
                .launch_template(
                    aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                        .launch_template_id(&self.template)
                        .version(version)
                        .build(),
                )
                .min_size(1)
                .max_size(4)
                .desired_capacity(2)
                .availability_zones("us-east-1a")
                .target_group_arns(&self.target_group)
                .send(),
        )
        .unwrap();
    }

    /// Writes the spec and runs `kiln cycle` on it with `extra` arguments; returns whether
    /// it succeeded, its summary and its output.
    fn cycle(
        &self,
        strategy: &str,
        image: &str,
        extra: &[&str],
    ) -> (bool, serde_json::Value, String) {
        let summary = self.dir.path().join("summary.json");
        let _ = std::fs::remove_file(&summary);
        let out = self
            .command(strategy, image, extra)
            .arg("--summary")
            .arg(&summary)
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&summary).unwrap_or_else(|_| panic!("no summary: {text}")),
        )
        .unwrap();
        (out.status.success(), summary, text)
    }

    fn command(&self, strategy: &str, image: &str, extra: &[&str]) -> Command {
        let path = self.dir.path().join("cycle.yml");
        std::fs::write(
            &path,
            format!(
                "name: web\nimage: us-east-1:{image}\nfleet:\n  type: asg\n  group: {PREFIX}\n  refresh: {{method: auto, min_healthy_percent: 50, instance_warmup: 0s}}\nstrategy: {{type: {strategy}}}\nhealth:\n  timeout: 8s\n"
            ),
        )
        .unwrap();
        let mut command = Command::new(support::kiln());
        command
            .arg("cycle")
            .arg(&path)
            .args(extra)
            .env("KILN_HOME", self.dir.path().join("home"));
        for (k, v) in self.moto.env() {
            command.env(k, v);
        }
        command
    }

    /// Each group with its prefix: name → (desired, images of its live instances, tags).
    fn groups(&self) -> BTreeMap<String, (i32, Vec<String>, Vec<String>)> {
        let asg = self.asg();
        let groups = block_on(asg.describe_auto_scaling_groups().send()).unwrap();
        groups
            .auto_scaling_groups()
            .iter()
            .map(|g| {
                let ids: Vec<String> = g
                    .instances()
                    .iter()
                    .filter(|i| {
                        !i.lifecycle_state()
                            .map(|s| s.as_str().starts_with("Terminat"))
                            .unwrap_or(false)
                    })
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect();
                let mut images: Vec<String> = self.images(&ids).into_values().collect();
                images.sort();
                (
                    g.auto_scaling_group_name().unwrap().to_string(),
                    (
                        g.desired_capacity().unwrap(),
                        images,
                        g.tags()
                            .iter()
                            .filter_map(|t| t.key().map(str::to_string))
                            .collect(),
                    ),
                )
            })
            .collect()
    }

    fn images(&self, ids: &[String]) -> BTreeMap<String, String> {
        if ids.is_empty() {
            return BTreeMap::new();
        }
        let out = block_on(
            self.ec2()
                .describe_instances()
                .set_instance_ids(Some(ids.to_vec()))
                .send(),
        )
        .unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i.instance_id()?.to_string(), i.image_id()?.to_string())))
            .collect()
    }

    /// The launch template's versions: (number, image, key name).
    fn versions(&self) -> Vec<(i64, String, Option<String>)> {
        let out = block_on(
            self.ec2()
                .describe_launch_template_versions()
                .launch_template_id(&self.template)
                .send(),
        )
        .unwrap();
        let mut versions: Vec<_> = out
            .launch_template_versions()
            .iter()
            .map(|v| {
                let data = v.launch_template_data().unwrap();
                (
                    v.version_number().unwrap(),
                    data.image_id().unwrap_or_default().to_string(),
                    data.key_name().map(str::to_string),
                )
            })
            .collect();
        versions.sort();
        versions
    }

    /// Instances neither terminated nor in a group: what a cycle must never leave behind.
    fn orphans(&self) -> Vec<String> {
        let in_groups: Vec<String> = block_on(self.asg().describe_auto_scaling_groups().send())
            .unwrap()
            .auto_scaling_groups()
            .iter()
            .flat_map(|g| g.instances())
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        self.moto
            .resources()
            .into_iter()
            .filter(|r| r.starts_with("instance "))
            .filter(|r| !in_groups.iter().any(|id| r.contains(id.as_str())))
            .collect()
    }

    /// The healthy targets of the target group.
    fn healthy_targets(&self) -> Vec<String> {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&self.config);
        let out = block_on(
            elb.describe_target_health()
                .target_group_arn(&self.target_group)
                .send(),
        )
        .unwrap();
        out.target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str())
                    == Some("healthy")
            })
            .filter_map(|d| d.target()?.id().map(str::to_string))
            .collect()
    }
}

fn events_of(summary: &serde_json::Value) -> Vec<String> {
    summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn position(events: &[String], prefix: &str) -> usize {
    events
        .iter()
        .position(|e| e.starts_with(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' in {events:?}"))
}

#[test]
fn rolling_falls_back_to_kiln_replacing_instances_in_order_and_rolls_back_on_request() {
    let f = Fixture::new("$Latest");
    let [ami1, ami2] = f.amis.clone();
    let (ok, summary, out) = f.cycle("rolling", &ami2, &[]);
    assert!(ok, "{out}");
    let events = events_of(&summary);
    // New version → (no instance refresh here) kiln's surge → healthy → old terminated.
    assert!(
        position(&events, "version 2") < position(&events, "refresh-unsupported"),
        "{events:?}"
    );
    assert!(
        position(&events, "refresh-unsupported") < position(&events, "scale-out"),
        "{events:?}"
    );
    let first_healthy = position(&events, "healthy ");
    let first_terminate = position(&events, "terminate ");
    assert!(position(&events, "scale-out") < first_healthy, "{events:?}");
    assert!(first_healthy < first_terminate, "{events:?}");
    // Every terminate follows at least as many healthy new instances as terminates.
    for (at, event) in events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.starts_with("terminate "))
    {
        let healthy = events[..at]
            .iter()
            .filter(|e| e.starts_with("healthy "))
            .count();
        let gone = events[..at]
            .iter()
            .filter(|e| e.starts_with("terminate "))
            .count();
        assert!(healthy > gone, "{event} too early: {events:?}");
    }
    assert_eq!(
        summary["retired"].as_array().unwrap().len(),
        2,
        "{events:?}"
    );
    let groups = f.groups();
    let (desired, images, tags) = &groups.values().next().unwrap();
    assert_eq!(
        (*desired, images.clone()),
        (2, vec![ami2.clone(), ami2.clone()]),
        "{groups:?}"
    );
    assert!(tags.iter().all(|t| !t.starts_with("kiln:")), "{tags:?}");
    let versions = f.versions();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[1].1, ami2);
    assert_eq!(
        versions[1].2.as_deref(),
        Some("deploy"),
        "the key name is kept"
    );
    assert_eq!(f.orphans(), Vec::<String>::new());

    // Again: converged, nothing created.
    let (ok, summary, out) = f.cycle("rolling", &ami2, &[]);
    assert!(ok, "{out}");
    assert_eq!(
        events_of(&summary),
        vec![format!("converged {}", groups.keys().next().unwrap())]
    );
    assert_eq!(f.versions().len(), 2);

    // `--rollback`: back to the first image ($Latest needs a new version with it).
    let (ok, summary, out) = f.cycle("rolling", &ami2, &["--rollback"]);
    assert!(ok, "{out}");
    assert_eq!(summary["image"], ami1.as_str(), "{summary}");
    let groups = f.groups();
    assert_eq!(
        groups.values().next().unwrap().1,
        vec![ami1.clone(), ami1.clone()]
    );
    let versions = f.versions();
    assert_eq!((versions.len(), versions[2].1.as_str()), (3, ami1.as_str()));
    assert_eq!(f.orphans(), Vec::<String>::new());
}

/// Stops every instance running `ami` until told to stop (moto then reports it `unused` in
/// the target group, never `healthy`).
fn sabotage(f: &Fixture, ami: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let done = Arc::new(AtomicBool::new(false));
    let config = f.config.clone();
    let ami = ami.to_string();
    let flag = done.clone();
    let thread = std::thread::spawn(move || {
        let ec2 = aws_sdk_ec2::Client::new(&config);
        while !flag.load(Ordering::SeqCst) {
            let out = block_on(
                ec2.describe_instances()
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("image-id")
                            .values(&ami)
                            .build(),
                    )
                    .filters(
                        aws_sdk_ec2::types::Filter::builder()
                            .name("instance-state-name")
                            .values("running")
                            .build(),
                    )
                    .send(),
            )
            .unwrap();
            let ids: Vec<String> = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect();
            if !ids.is_empty() {
                block_on(ec2.stop_instances().set_instance_ids(Some(ids)).send()).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    (done, thread)
}

#[test]
fn unhealthy_new_instances_roll_the_group_back() {
    let f = Fixture::new("$Default");
    let [ami1, ami2] = f.amis.clone();
    let (done, thread) = sabotage(&f, &ami2);
    let (ok, summary, out) = f.cycle("rolling", &ami2, &[]);
    done.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("rolled back"), "{out}");
    assert_eq!(summary["rolled_back"], true);
    let events = events_of(&summary);
    assert!(
        position(&events, "scale-out") < position(&events, "terminate "),
        "{events:?}"
    );
    let back = events.iter().rposition(|e| e.starts_with("use ")).unwrap();
    assert!(position(&events, "terminate ") < back, "{events:?}");
    // The launch template's default is back on version 1; the group on its two old instances.
    assert_eq!(events[back].rsplit(' ').next(), Some("1"), "{events:?}");
    let groups = f.groups();
    let (desired, images, tags) = groups.values().next().unwrap();
    assert_eq!(
        (*desired, images.clone()),
        (2, vec![ami1.clone(), ami1.clone()]),
        "{groups:?}"
    );
    assert!(tags.iter().all(|t| !t.starts_with("kiln:")), "{tags:?}");
    assert_eq!(f.versions().len(), 2, "one version made, none copied");
    assert_eq!(f.orphans(), Vec::<String>::new());
}

#[test]
fn blue_green_creates_a_group_shifts_and_deletes_the_old_one() {
    let f = Fixture::new("$Latest");
    let [ami1, ami2] = f.amis.clone();
    let old_group = f.groups().into_keys().next().unwrap();
    let (ok, summary, out) = f.cycle("blue-green", &ami2, &[]);
    assert!(ok, "{out}");
    let events = events_of(&summary);
    let order = [
        "version 2",
        "create-group web-",
        "scale-out web-",
        "healthy ",
        "shift ",
        "scale-in ",
        "delete-group ",
    ];
    for pair in order.windows(2) {
        assert!(
            position(&events, pair[0]) < position(&events, pair[1]),
            "{pair:?}: {events:?}"
        );
    }
    assert_eq!(
        events.iter().filter(|e| e.starts_with("healthy ")).count(),
        2,
        "{events:?}"
    );
    let groups = f.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let (new_group, (desired, images, _)) = groups.iter().next().unwrap();
    assert!(
        new_group.starts_with(PREFIX)
            && *new_group != old_group
            && new_group.len() == PREFIX.len() + 26,
        "{new_group}"
    );
    assert_eq!(
        (*desired, images.clone()),
        (2, vec![ami2.clone(), ami2.clone()])
    );
    let healthy = f.healthy_targets();
    let new_ids = f.images(&healthy);
    assert!(
        healthy.len() == 2 && new_ids.values().all(|i| *i == ami2),
        "{healthy:?} {new_ids:?}"
    );
    assert_eq!(f.orphans(), Vec::<String>::new());
    // `kiln fleet status` shows the live group, its version and image, and each instance's
    // target group health.
    let status = f.command("blue-green", &ami2, &[]);
    let args: Vec<_> = status.get_args().map(|a| a.to_owned()).collect();
    let mut command = Command::new(support::kiln());
    command.args(["fleet", "status"]).arg(&args[1]);
    for (k, v) in status.get_envs() {
        if let Some(v) = v {
            command.env(k, v);
        }
    }
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("GROUP {new_group} (live)"))
            && text.contains(&format!("= version 2 image {ami2}")),
        "{text}"
    );
    for id in &healthy {
        assert!(
            text.lines().any(|l| l.contains(id.as_str())
                && l.contains("InService")
                && l.contains("healthy")),
            "{text}"
        );
    }

    // `--rollback` makes another group from version 1, with no new version.
    let (ok, summary, out) = f.cycle("blue-green", &ami2, &["--rollback"]);
    assert!(ok, "{out}");
    assert!(
        events_of(&summary).contains(&"version 1 (existing)".to_string()),
        "{summary}"
    );
    let groups = f.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        groups.values().next().unwrap().1,
        vec![ami1.clone(), ami1.clone()]
    );
    assert_eq!(f.versions().len(), 2);
    assert_eq!(f.orphans(), Vec::<String>::new());
}

#[test]
fn blue_green_with_unhealthy_instances_deletes_the_new_group_and_leaves_the_live_one() {
    let f = Fixture::new("$Latest");
    let [ami1, ami2] = f.amis.clone();
    let before = f.groups();
    let (done, thread) = sabotage(&f, &ami2);
    let (ok, summary, out) = f.cycle("blue-green", &ami2, &[]);
    done.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    assert!(!ok, "{out}");
    let events = events_of(&summary);
    assert!(
        position(&events, "create-group") < position(&events, "delete-group"),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.starts_with("shift")), "{events:?}");
    let after = f.groups();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(after.values().next().unwrap().1, vec![ami1.clone(), ami1]);
    assert_eq!(f.orphans(), Vec::<String>::new());
}

/// Starts a cycle and kills it once its output shows `line`.
fn kill_at(f: &Fixture, strategy: &str, image: &str, line: &str) {
    let mut child = f
        .command(strategy, image, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for text in BufReader::new(stdout).lines() {
        let text = text.unwrap();
        let hit = text.contains(line);
        seen.push(text);
        if hit {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.last().is_some_and(|l| l.contains(line)),
        "the cycle ended without '{line}': {seen:?}"
    );
}

#[test]
fn a_cycle_killed_mid_way_converges_when_run_again() {
    for strategy in ["rolling", "blue-green"] {
        let f = Fixture::new("$Latest");
        let ami2 = f.amis[1].clone();
        let at = if strategy == "rolling" {
            "scale-out"
        } else {
            "create-group"
        };
        kill_at(&f, strategy, &ami2, at);
        let (ok, summary, out) = f.cycle(strategy, &ami2, &[]);
        assert!(ok, "{strategy}: {out}");
        let groups = f.groups();
        assert_eq!(groups.len(), 1, "{strategy}: {groups:?}");
        let (desired, images, tags) = groups.values().next().unwrap();
        assert_eq!(
            (*desired, images.clone()),
            (2, vec![ami2.clone(), ami2.clone()]),
            "{strategy}: {summary}"
        );
        assert!(
            tags.iter().all(|t| !t.starts_with("kiln:")),
            "{strategy}: {tags:?}"
        );
        assert_eq!(
            f.versions().len(),
            2,
            "{strategy}: the version made by the killed run is reused"
        );
        assert_eq!(f.orphans(), Vec::<String>::new(), "{strategy}");
    }
}
