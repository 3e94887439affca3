//! A Molecule scenario as `kiln test` reads it from `molecule/<name>/molecule.yml`: the
//! platforms, the provisioner's inventory variables, environment and playbook names, the
//! test sequence, and the verifier. Keys kiln has no use for (driver, dependency, lint) are
//! ignored, as a Molecule file written for Docker must load unchanged.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::Error;
use crate::value::VarMap;
use crate::yaml::Node;

/// One step of the test sequence, in Molecule's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Dependency,
    Cleanup,
    Destroy,
    Syntax,
    Create,
    Prepare,
    Converge,
    Idempotence,
    SideEffect,
    Verify,
    Lint,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Dependency => "dependency",
            Stage::Cleanup => "cleanup",
            Stage::Destroy => "destroy",
            Stage::Syntax => "syntax",
            Stage::Create => "create",
            Stage::Prepare => "prepare",
            Stage::Converge => "converge",
            Stage::Idempotence => "idempotence",
            Stage::SideEffect => "side_effect",
            Stage::Verify => "verify",
            Stage::Lint => "lint",
        }
    }

    fn parse(text: &str) -> Option<Stage> {
        // The default sequence holds every stage but lint.
        DEFAULT_SEQUENCE
            .into_iter()
            .chain([Stage::Lint])
            .find(|s| s.name() == text)
    }
}

/// Molecule's default `test_sequence`.
pub const DEFAULT_SEQUENCE: [Stage; 12] = [
    Stage::Dependency,
    Stage::Cleanup,
    Stage::Destroy,
    Stage::Syntax,
    Stage::Create,
    Stage::Prepare,
    Stage::Converge,
    Stage::Idempotence,
    Stage::SideEffect,
    Stage::Verify,
    Stage::Cleanup,
    Stage::Destroy,
];

/// One platform: an instance of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    pub name: String,
    /// The container image Molecule's driver would start (mapped to a local image).
    pub image: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// `molecule/<name>`: the scenario's playbooks are here.
    pub dir: PathBuf,
    pub platforms: Vec<Platform>,
    pub group_vars: IndexMap<String, VarMap>,
    pub host_vars: IndexMap<String, VarMap>,
    /// `provisioner.env`, as written (`$VAR` references are expanded when it is applied).
    pub env: Vec<(String, String)>,
    /// `provisioner.playbooks`: a stage's playbook file when not `<stage>.yml`.
    pub playbooks: IndexMap<String, String>,
    pub sequence: Vec<Stage>,
}

impl Scenario {
    /// Reads `role/molecule/<name>/molecule.yml`.
    pub fn load(role: &Path, name: &str) -> Result<Scenario, Error> {
        let dir = role.join("molecule").join(name);
        let file = dir.join("molecule.yml");
        if !file.is_file() {
            return Err(Error::Usage(format!(
                "no scenario '{name}': {} does not exist",
                file.display()
            )));
        }
        let doc = crate::yaml::load_file(&file)?;
        let invalid = |node: &Node, message: String| Error::invalid(doc.location(node), message);
        let root = &doc.root;
        let mut platforms = Vec::new();
        for node in root.get("platforms").and_then(Node::as_seq).unwrap_or(&[]) {
            let text = |key: &str| node.get(key).and_then(Node::as_str).map(str::to_string);
            let name =
                text("name").ok_or_else(|| invalid(node, "a platform needs 'name:'".into()))?;
            let image = text("image").unwrap_or_default();
            let groups = node
                .get("groups")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect();
            platforms.push(Platform {
                name,
                image,
                groups,
            });
        }
        if platforms.is_empty() {
            return Err(Error::invalid(
                doc.location(root),
                "molecule.yml: 'platforms' lists no instance",
            ));
        }
        let provisioner = root.get("provisioner");
        let section = |key: &str| provisioner.and_then(|p| p.get(key));
        let inventory = section("inventory");
        let vars_of = |key: &str| -> IndexMap<String, VarMap> {
            named_maps(inventory.and_then(|i| i.get(key)))
                .into_iter()
                .map(|(name, node)| (name, named_values(Some(node))))
                .collect()
        };
        let env = named_maps(section("env"))
            .into_iter()
            .map(|(name, node)| (name, scalar_text(node)))
            .collect();
        let playbooks = named_maps(section("playbooks"))
            .into_iter()
            .filter_map(|(stage, node)| Some((stage, node.as_str()?.to_string())))
            .collect();
        if let Some(verifier) = root.get("verifier").and_then(|v| v.get("name")) {
            match verifier.as_str() {
                Some("ansible") | None => {}
                Some(other) => {
                    return Err(invalid(
                        verifier,
                        format!(
                            "verifier '{other}' is not supported: kiln test runs the ansible verifier (molecule/{name}/verify.yml); testinfra and other Python verifiers are out of scope"
                        ),
                    ))
                }
            }
        }
        let sequence = match root
            .get("scenario")
            .and_then(|s| s.get("test_sequence"))
            .and_then(Node::as_seq)
        {
            Some(items) => items
                .iter()
                .map(|item| {
                    item.as_str().and_then(Stage::parse).ok_or_else(|| {
                        invalid(
                            item,
                            format!(
                                "scenario.test_sequence: unknown stage {}",
                                item.as_str().unwrap_or(item.type_name())
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => DEFAULT_SEQUENCE.to_vec(),
        };
        Ok(Scenario {
            name: name.to_string(),
            dir,
            platforms,
            group_vars: vars_of("group_vars"),
            host_vars: vars_of("host_vars"),
            env,
            playbooks,
            sequence,
        })
    }

    /// The playbook a stage runs (`<stage>.yml` unless `provisioner.playbooks` names another).
    pub fn playbook(&self, stage: Stage) -> PathBuf {
        let file = self
            .playbooks
            .get(stage.name())
            .cloned()
            .unwrap_or_else(|| format!("{}.yml", stage.name()));
        self.dir.join(file)
    }

    /// Every scenario of a role: the directories under `molecule/` holding a molecule.yml,
    /// `default` first.
    pub fn names(role: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(role.join("molecule"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("molecule.yml").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort_by_key(|n| (n != "default", n.clone()));
        names
    }
}

/// A mapping's entries by key (nothing for anything but a mapping).
fn named_maps(node: Option<&Node>) -> Vec<(String, &Node)> {
    node.and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, v)| Some((k.key_text()?, v)))
        .collect()
}

fn named_values(node: Option<&Node>) -> VarMap {
    named_maps(node)
        .into_iter()
        .map(|(k, v)| (k, v.to_value()))
        .collect()
}

/// An environment value as text (`true` as `True`, numbers as written).
fn scalar_text(node: &Node) -> String {
    node.as_str()
        .map(str::to_string)
        .or_else(|| node.key_text())
        .unwrap_or_default()
}

/// Expands `$NAME` and `${NAME}` from `lookup` (unset names expand to nothing), as Molecule
/// does in molecule.yml; `$$` is a literal `$`.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('{')
            .and_then(|inner| inner.split_once('}'))
        {
            out.push_str(&lookup(name).unwrap_or_default());
            rest = tail;
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// Container images that mean Debian 12, which kiln's base image is.
pub fn is_debian12(image: &str) -> bool {
    let image = image.trim().to_ascii_lowercase();
    // Drop a registry host (it has a dot or a port) and Docker Hub's `library/`.
    let path = match image.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') => rest,
        _ => image.as_str(),
    };
    let path = path.strip_prefix("library/").unwrap_or(path);
    let (repository, tag) = path.split_once(':').unwrap_or((path, "latest"));
    let tag = tag.split('@').next().unwrap_or(tag);
    let debian12_tag = tag == "12"
        || tag.starts_with("12.")
        || tag.starts_with("12-")
        || tag.starts_with("bookworm");
    let short = repository.rsplit('/').next().unwrap_or(repository);
    match short {
        "debian" | "systemd-debian" | "debian-systemd" => debian12_tag,
        _ => {
            short.contains("debian12") || short.contains("debian-12") || short.contains("bookworm")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_12_images_and_others() {
        for image in [
            "debian:12",
            "debian:bookworm",
            "debian:bookworm-slim",
            "docker.io/library/debian:12.8",
            "geerlingguy/docker-debian12-ansible",
            "geerlingguy/docker-debian12-ansible:latest",
            "jrei/systemd-debian:12",
        ] {
            assert!(is_debian12(image), "{image}");
        }
        for image in [
            "debian",
            "debian:11",
            "debian:trixie",
            "ubuntu:22.04",
            "geerlingguy/docker-rockylinux9-ansible",
            "",
        ] {
            assert!(!is_debian12(image), "{image}");
        }
    }

    #[test]
    fn expands_environment_references() {
        let lookup = |name: &str| (name == "HOME").then(|| "/root".to_string());
        assert_eq!(
            expand_env("${HOME}/x:$HOME:$NOPE.", lookup),
            "/root/x:/root:."
        );
        assert_eq!(expand_env("$$HOME $ end", lookup), "$HOME $ end");
    }

    fn scenario(text: &str) -> Result<Scenario, Error> {
        let role = tempfile::tempdir().unwrap();
        let dir = role.path().join("molecule/default");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("molecule.yml"), text).unwrap();
        Scenario::load(role.path(), "default")
    }

    #[test]
    fn reads_platforms_inventory_env_and_sequence() {
        let s = scenario(
            "driver: {name: docker}\nplatforms:\n  - name: web1\n    image: debian:12\n    groups: [web]\n  - name: db1\n    image: debian:bookworm\nprovisioner:\n  name: ansible\n  env: {APP_MODE: test, RETRIES: 3}\n  playbooks: {converge: site.yml}\n  inventory:\n    group_vars:\n      all: {port: 8080}\n      web: {role_kind: web}\n    host_vars:\n      db1: {primary: true}\nscenario:\n  test_sequence: [create, converge, verify, destroy]\nverifier: {name: ansible}\n",
        )
        .unwrap();
        assert_eq!(s.platforms.len(), 2);
        assert_eq!(s.platforms[0].groups, vec!["web"]);
        assert_eq!(s.group_vars["all"]["port"], minijinja::Value::from(8080));
        assert_eq!(s.group_vars["web"]["role_kind"].as_str(), Some("web"));
        assert!(s.host_vars["db1"]["primary"].is_true());
        assert_eq!(
            s.env,
            vec![
                ("APP_MODE".to_string(), "test".to_string()),
                ("RETRIES".to_string(), "3".to_string())
            ]
        );
        assert_eq!(
            s.sequence,
            vec![
                Stage::Create,
                Stage::Converge,
                Stage::Verify,
                Stage::Destroy
            ]
        );
        assert!(s
            .playbook(Stage::Converge)
            .ends_with("molecule/default/site.yml"));
        assert!(s
            .playbook(Stage::Verify)
            .ends_with("molecule/default/verify.yml"));
    }

    #[test]
    fn every_scenario_default_first() {
        let role = tempfile::tempdir().unwrap();
        for name in ["alpha", "default", "zeta", "no-file"] {
            let dir = role.path().join("molecule").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            if name != "no-file" {
                std::fs::write(dir.join("molecule.yml"), "platforms: []\n").unwrap();
            }
        }
        assert_eq!(
            Scenario::names(role.path()),
            vec!["default", "alpha", "zeta"]
        );
    }

    #[test]
    fn default_sequence_and_refusals() {
        let s = scenario("platforms: [{name: instance, image: debian:12}]\n").unwrap();
        assert_eq!(s.sequence, DEFAULT_SEQUENCE.to_vec());
        let err =
            scenario("platforms: [{name: i, image: debian:12}]\nverifier: {name: testinfra}\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("testinfra") && err.contains("out of scope"),
            "{err}"
        );
        let err = scenario("platforms: [{name: i}]\nscenario: {test_sequence: [create, lnt]}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown stage lnt"), "{err}");
        assert!(scenario("driver: {name: docker}\n").is_err());
    }
}
