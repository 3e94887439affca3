//! The cycle spec: which image, how many instances, which balancer, how to roll, what
//! "healthy" means. Unknown fields are errors naming the field.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// A loaded cycle spec: the fleet and its balancer come as one [`Platform`], since each
/// fleet type works with one balancer type.
#[derive(Debug, Clone)]
pub struct CycleSpec {
    /// The fleet's name (its state lives under `$KILN_HOME/fleets/<name>`).
    pub name: String,
    /// `local:<id>` (or an image name), or `{manifest: path}`; default: the last build in
    /// `kiln-manifest.json`.
    pub image: Option<ImageRef>,
    pub platform: Platform,
    pub strategy: Strategy,
    pub health: Health,
    pub drain_timeout: String,
}

/// The spec as written: `fleet` and `balancer` each tagged by their `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default = "default_name")]
    name: String,
    image: Option<ImageRef>,
    fleet: Fleet,
    balancer: Balancer,
    #[serde(default)]
    strategy: Strategy,
    #[serde(default)]
    health: Health,
    #[serde(default = "default_drain")]
    drain_timeout: String,
}

fn default_name() -> String {
    "web".into()
}
fn default_drain() -> String {
    "30s".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ImageRef {
    Id(String),
    Manifest { manifest: PathBuf },
}

/// Where the fleet's instances run and what balances them.
#[derive(Debug, Clone)]
pub enum Platform {
    /// Local instances (systemd-nspawn) behind HAProxy.
    Local {
        fleet: LocalFleet,
        balancer: HaproxyBalancer,
    },
    /// EC2 instances behind an ELBv2 target group.
    Ec2 {
        fleet: Ec2Fleet,
        balancer: TargetGroupBalancer,
    },
}

impl Platform {
    /// How many instances the fleet runs.
    pub fn count(&self) -> usize {
        match self {
            Platform::Local { fleet, .. } => fleet.count,
            Platform::Ec2 { fleet, .. } => fleet.count,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum Fleet {
    #[serde(rename = "local")]
    Local(LocalFleet),
    #[serde(rename = "ec2")]
    Ec2(Ec2Fleet),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalFleet {
    pub count: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Fleet {
    pub count: usize,
    pub instance_type: String,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum Balancer {
    #[serde(rename = "haproxy")]
    Haproxy(HaproxyBalancer),
    #[serde(rename = "elbv2")]
    Elbv2(TargetGroupBalancer),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyBalancer {
    /// HAProxy's admin socket; kiln starts HAProxy there when none answers.
    pub socket: Option<PathBuf>,
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Where the HAProxy kiln starts listens.
    #[serde(default = "default_listen")]
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupBalancer {
    pub target_group_arn: String,
    pub port: Option<u16>,
    /// The fleet's region and endpoint unless set.
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

fn default_backend() -> String {
    "web".into()
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// How instances are replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum StrategyKind {
    /// A batch at a time, keeping `min_healthy_percent` in service.
    #[default]
    #[serde(rename = "rolling")]
    Rolling,
    /// The whole new fleet first, then the old one retired.
    #[serde(rename = "blue-green")]
    BlueGreen,
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StrategyKind::Rolling => "rolling",
            StrategyKind::BlueGreen => "blue-green",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    #[serde(rename = "type", default)]
    pub kind: StrategyKind,
    #[serde(default = "one")]
    pub batch: usize,
    #[serde(default = "hundred")]
    pub min_healthy_percent: usize,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            kind: StrategyKind::default(),
            batch: 1,
            min_healthy_percent: 100,
        }
    }
}

fn one() -> usize {
    1
}
fn hundred() -> usize {
    100
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[serde(default)]
    pub http: HttpCheck,
    #[serde(default = "default_timeout")]
    pub timeout: String,
    #[serde(default = "two")]
    pub healthy_threshold: usize,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            http: HttpCheck::default(),
            timeout: default_timeout(),
            healthy_threshold: 2,
        }
    }
}

fn default_timeout() -> String {
    "120s".into()
}
fn two() -> usize {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_expect")]
    pub expect: u16,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            path: default_path(),
            port: default_port(),
            expect: default_expect(),
        }
    }
}

fn default_path() -> String {
    "/".into()
}
fn default_port() -> u16 {
    80
}
fn default_expect() -> u16 {
    200
}

/// `90s`, `30m`, `2h` → a duration, or an error naming the field.
pub fn duration(text: &str, field: &str) -> Result<Duration, Error> {
    crate::util::parse_duration(text).ok_or_else(|| {
        Error::Usage(format!(
            "{field}: '{text}' is not a duration (use e.g. 30s, 2m)"
        ))
    })
}

impl CycleSpec {
    pub fn load(path: &Path) -> Result<CycleSpec, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            action: "read the cycle spec",
            source,
        })?;
        let file = Arc::new(path.to_path_buf());
        let spec: SpecFile =
            serde_saphyr::from_str(&text).map_err(|e| crate::load::yaml::yaml_error(&file, &e))?;
        let at = |m: String| Error::Usage(format!("{}: {m}", path.display()));
        let platform = match (spec.fleet, spec.balancer) {
            (Fleet::Local(fleet), Balancer::Haproxy(balancer)) => Platform::Local { fleet, balancer },
            (Fleet::Ec2(fleet), Balancer::Elbv2(balancer)) => Platform::Ec2 { fleet, balancer },
            (fleet, balancer) => {
                return Err(at(format!(
                    "fleet.type {} with balancer.type {} is not supported (use local with haproxy, or ec2 with elbv2)",
                    fleet.kind(),
                    balancer.kind()
                )))
            }
        };
        let spec = CycleSpec {
            name: spec.name,
            image: spec.image,
            platform,
            strategy: spec.strategy,
            health: spec.health,
            drain_timeout: spec.drain_timeout,
        };
        if spec.platform.count() == 0
            || spec.strategy.batch == 0
            || spec.strategy.min_healthy_percent > 100
        {
            return Err(at(
                "fleet.count and strategy.batch must be at least 1, strategy.min_healthy_percent at most 100".into(),
            ));
        }
        duration(&spec.health.timeout, "health.timeout")?;
        duration(&spec.drain_timeout, "drain_timeout")?;
        Ok(spec)
    }
}

impl Fleet {
    fn kind(&self) -> &'static str {
        match self {
            Fleet::Local(_) => "local",
            Fleet::Ec2(_) => "ec2",
        }
    }
}

impl Balancer {
    fn kind(&self) -> &'static str {
        match self {
            Balancer::Haproxy(_) => "haproxy",
            Balancer::Elbv2(_) => "elbv2",
        }
    }
}

/// `us-east-1:ami-1` (a manifest's artifact id) or `ami-1` → `ami-1`.
pub fn ami_id(artifact: &str) -> &str {
    artifact.rsplit(':').next().unwrap_or(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Result<CycleSpec, Error>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cycle.yml");
        std::fs::write(&path, text).unwrap();
        (CycleSpec::load(&path), path.display().to_string())
    }

    const LOCAL: &str = "fleet: {type: local, count: 2}\nbalancer: {type: haproxy}\n";

    #[test]
    fn fleet_balancer_and_strategy_types_are_typed() {
        let (spec, _) = load(&format!("{LOCAL}strategy: {{type: blue-green}}\n"));
        let spec = spec.unwrap();
        assert!(matches!(spec.platform, Platform::Local { .. }));
        assert_eq!(spec.platform.count(), 2);
        assert_eq!(spec.strategy.kind, StrategyKind::BlueGreen);
        let (spec, _) = load(
            "fleet: {type: ec2, count: 3, instance_type: t3.micro}\nbalancer: {type: elbv2, target_group_arn: arn:tg}\n",
        );
        match spec.unwrap().platform {
            Platform::Ec2 { fleet, balancer } => {
                assert_eq!((fleet.count, fleet.instance_type.as_str()), (3, "t3.micro"));
                assert_eq!(balancer.target_group_arn, "arn:tg");
            }
            other => panic!("not an ec2 platform: {other:?}"),
        }
        let (spec, _) = load(LOCAL);
        assert_eq!(spec.unwrap().strategy.kind, StrategyKind::Rolling);
    }

    #[test]
    fn a_bad_type_names_the_file_and_the_allowed_values() {
        for (text, allowed) in [
            (
                "fleet: {type: gce, count: 1}\nbalancer: {type: haproxy}\n",
                ["local", "ec2"],
            ),
            (
                "fleet: {type: local, count: 1}\nbalancer: {type: nginx}\n",
                ["haproxy", "elbv2"],
            ),
            (
                &format!("{LOCAL}strategy: {{type: canary}}\n") as &str,
                ["rolling", "blue-green"],
            ),
            (
                "fleet: {type: local, count: 1}\nbalancer: {type: elbv2, target_group_arn: a}\n",
                ["local", "haproxy"],
            ),
        ] {
            let (spec, path) = load(text);
            let message = spec.unwrap_err().to_string();
            assert!(message.contains(&path), "{message}");
            for value in allowed {
                assert!(message.contains(value), "{value} missing from: {message}");
            }
        }
    }

    #[test]
    fn ec2_fields_are_required_for_ec2_and_refused_for_local() {
        let (spec, path) =
            load("fleet: {type: ec2, count: 1}\nbalancer: {type: elbv2, target_group_arn: a}\n");
        let message = spec.unwrap_err().to_string();
        assert!(
            message.contains(&path) && message.contains("instance_type"),
            "{message}"
        );
        let (spec, _) = load(
            "fleet: {type: local, count: 1, instance_type: t3.micro}\nbalancer: {type: haproxy}\n",
        );
        assert!(spec.unwrap_err().to_string().contains("instance_type"));
    }
}
