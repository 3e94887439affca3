//! The cycle spec: which image, how many instances, which balancer, how to roll, what
//! "healthy" means. Unknown fields are errors naming the field.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleSpec {
    /// The fleet's name (its state lives under `$KILN_HOME/fleets/<name>`).
    #[serde(default = "default_name")]
    pub name: String,
    /// `local:<id>` (or an image name), or `{manifest: path}`; default: the last build in
    /// `kiln-manifest.json`.
    pub image: Option<ImageRef>,
    pub fleet: Fleet,
    pub balancer: Balancer,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub health: Health,
    #[serde(default = "default_drain")]
    pub drain_timeout: String,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    #[serde(rename = "type")]
    pub kind: String,
    pub count: usize,
    // ec2 only:
    pub instance_type: Option<String>,
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
#[serde(deny_unknown_fields)]
pub struct Balancer {
    #[serde(rename = "type")]
    pub kind: String,
    /// HAProxy's admin socket; kiln starts HAProxy there when none answers.
    pub socket: Option<PathBuf>,
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Where the HAProxy kiln starts listens.
    #[serde(default = "default_listen")]
    pub listen: String,
    // elbv2 only:
    pub target_group_arn: Option<String>,
    pub port: Option<u16>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

fn default_backend() -> String {
    "web".into()
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    #[serde(rename = "type", default = "default_strategy")]
    pub kind: String,
    #[serde(default = "one")]
    pub batch: usize,
    #[serde(default = "hundred")]
    pub min_healthy_percent: usize,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            kind: default_strategy(),
            batch: 1,
            min_healthy_percent: 100,
        }
    }
}

fn default_strategy() -> String {
    "rolling".into()
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
        let spec: CycleSpec =
            serde_saphyr::from_str(&text).map_err(|e| crate::load::yaml::yaml_error(&file, &e))?;
        let at = |m: String| Error::Usage(format!("{}: {m}", path.display()));
        match (spec.fleet.kind.as_str(), spec.balancer.kind.as_str()) {
            ("local", "haproxy") => {}
            ("ec2", "elbv2") => {
                if spec.fleet.instance_type.is_none() {
                    return Err(at("fleet.instance_type is required for fleet.type ec2".into()));
                }
                if spec.balancer.target_group_arn.is_none() {
                    return Err(at("balancer.target_group_arn is required for balancer.type elbv2".into()));
                }
            }
            (fleet, balancer) => {
                return Err(at(format!(
                    "fleet.type {fleet} with balancer.type {balancer} is not supported (use local with haproxy, or ec2 with elbv2)"
                )))
            }
        }
        if !matches!(spec.strategy.kind.as_str(), "rolling" | "blue-green") {
            return Err(at(format!(
                "strategy.type must be rolling or blue-green, got '{}'",
                spec.strategy.kind
            )));
        }
        if spec.fleet.count == 0
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
