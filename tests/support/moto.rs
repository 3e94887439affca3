//! moto's EC2 server (the AWS API emulator; `scripts/setup` installs it into a venv), one
//! per test on a free loopback port, and an EC2 client pointed at it for reading its state.
//! moto stands in for AWS because no real AWS account can be reached here.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MOTO: &str = "/var/cache/kiln-test/moto-venv/bin/moto_server";

pub struct Moto {
    pub url: String,
    child: Child,
}

impl Moto {
    pub fn start() -> Moto {
        assert!(
            std::path::Path::new(MOTO).exists(),
            "{MOTO} is missing: run scripts/setup"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(MOTO)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// The environment a kiln run against this server needs (dummy credentials).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_ENDPOINT_URL", self.url.clone()),
        ]
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// SDK configuration for this server (dummy credentials).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        self.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(&self.url)
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "test", "test", None, None, "tests",
                ))
                .load(),
        )
    }

    /// An HTTP target group `web` on port 80 in moto's default VPC, and two public AMIs
    /// moto ships: (target group ARN, [ami, ami]).
    pub fn target_group_and_amis(&self) -> (String, [String; 2]) {
        let config = self.sdk_config();
        self.block_on(async {
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
            (arn, [amis[0].clone(), amis[1].clone()])
        })
    }

    fn client(&self) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// Launches an instance of `ami` tagged as a member of kiln's fleet `fleet` (as
    /// `kiln cycle` tags them); returns its id.
    pub fn launch_fleet_instance(&self, ami: &str, fleet: &str) -> String {
        self.launch_tagged(ami, &[("kiln:fleet", fleet), ("kiln:image", ami)])
    }

    /// Launches an instance of `ami` with these tags; returns its id.
    pub fn launch_tagged(&self, ami: &str, tags: &[(&str, &str)]) -> String {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let ec2 = self.client();
        let ami = ami.to_string();
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect();
        self.block_on(async move {
            let out = ec2
                .run_instances()
                .image_id(&ami)
                .min_count(1)
                .max_count(1)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send()
                .await
                .unwrap();
            out.instances()[0].instance_id().unwrap().to_string()
        })
    }

    /// Terminates an instance.
    pub fn terminate(&self, id: &str) {
        let ec2 = self.client();
        self.block_on(async move {
            ec2.terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .unwrap();
        });
    }

    pub fn resources(&self) -> Vec<String> {
        let ec2 = self.client();
        self.block_on(async move {
            let mut out = Vec::new();
            let instances = ec2.describe_instances().send().await.unwrap();
            for i in instances.reservations().iter().flat_map(|r| r.instances()) {
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string());
                if state.as_deref() != Some("terminated") {
                    out.push(format!(
                        "instance {} {state:?}",
                        i.instance_id().unwrap_or("")
                    ));
                }
            }
            for k in ec2.describe_key_pairs().send().await.unwrap().key_pairs() {
                out.push(format!("key-pair {}", k.key_name().unwrap_or("")));
            }
            for g in ec2
                .describe_security_groups()
                .send()
                .await
                .unwrap()
                .security_groups()
            {
                if g.group_name() != Some("default") {
                    out.push(format!("security-group {}", g.group_id().unwrap_or("")));
                }
            }
            out
        })
    }

    /// Images owned by this account, with their tags.
    pub fn own_images(&self) -> Vec<(String, Vec<(String, String)>)> {
        let ec2 = self.client();
        self.block_on(async move {
            ec2.describe_images()
                .owners("self")
                .send()
                .await
                .unwrap()
                .images()
                .iter()
                .map(|i| {
                    (
                        i.image_id().unwrap_or("").to_string(),
                        i.tags()
                            .iter()
                            .map(|t| {
                                (
                                    t.key().unwrap_or("").to_string(),
                                    t.value().unwrap_or("").to_string(),
                                )
                            })
                            .collect(),
                    )
                })
                .collect()
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
