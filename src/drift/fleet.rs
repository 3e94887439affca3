//! A fleet's drift: its instances grouped by image, each checked against the provenance its
//! image recorded at bake time (playbooks, variables, groups, tags), under the build host's
//! name (templates that use `inventory_hostname` baked that name into the image). A
//! playbook whose content changed since the bake makes the comparison meaningless (the
//! check would report the playbook's change as the servers' drift), so those instances are
//! reported as not checked (exit 1) unless the caller accepts the current file.

use std::path::PathBuf;

use indexmap::IndexMap;
use minijinja::Value;

use super::{Check, DriftCollector};
use crate::bake::provenance::{file_sha256, Provenance, ProvisionRecord};
use crate::bake::provision::BUILD_HOST;
use crate::load::inventory::Inventory;
use crate::load::model::VarMap;
use crate::run::tags::TagFilter;
use crate::run::RunOptions;

/// A running instance of the fleet.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its name in the report and the inventory.
    pub name: String,
    /// Where SSH reaches it.
    pub address: String,
    /// The image it runs (`local:<id>`, an AMI id).
    pub image: String,
}

/// When a playbook changed since the image was baked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedPlaybook {
    /// The image's instances are reported as not checked (exit 1).
    Refuse,
    /// Warn, and check against the playbook as it is now.
    CheckCurrent,
}

/// What the fleet check needs besides its instances.
pub struct FleetCheck<'a> {
    /// The options every check starts from (connection, forks); variables and tags come
    /// from the provenance.
    pub options: &'a RunOptions,
    pub roles_path: &'a [PathBuf],
    pub changed_playbook: ChangedPlaybook,
}

impl FleetCheck<'_> {
    /// One check per provisioning step of each image the fleet runs; instances that cannot
    /// be checked are recorded in `collector` with the reason.
    pub fn checks(
        &self,
        instances: &[Instance],
        provenance_of: impl Fn(&str) -> anyhow::Result<Option<Provenance>>,
        collector: &DriftCollector,
    ) -> Vec<Check> {
        let mut by_image: IndexMap<&str, Vec<&Instance>> = IndexMap::new();
        for instance in instances {
            by_image.entry(&instance.image).or_default().push(instance);
        }
        let mut checks = Vec::new();
        for (image, members) in by_image {
            let refuse = |msg: &str| {
                for member in &members {
                    collector.unchecked(&member.name, "provenance", msg);
                }
            };
            let provenance = match provenance_of(image) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    refuse(&format!(
                        "image {image} records no provenance (baked by an older kiln or \
                         another tool): rebake it to check its instances for drift"
                    ));
                    continue;
                }
                Err(e) => {
                    refuse(&format!("reading image {image}'s provenance: {e:#}"));
                    continue;
                }
            };
            match self.verify(image, &provenance.steps, collector) {
                Ok(()) => {}
                Err(msg) => {
                    refuse(&msg);
                    continue;
                }
            }
            for member in &members {
                for step in &provenance.steps {
                    checks.push(self.check(step, member));
                }
            }
        }
        checks
    }

    /// Whether each playbook is still the one baked; a changed one is refused or noted.
    fn verify(
        &self,
        image: &str,
        steps: &[ProvisionRecord],
        collector: &DriftCollector,
    ) -> Result<(), String> {
        for step in steps {
            let path = step.playbook.display();
            let now = file_sha256(&step.playbook)
                .map_err(|e| format!("image {image} was baked from {path}: {e:#}"))?;
            if now == step.sha256 {
                continue;
            }
            let what = format!(
                "{path} changed since image {image} was baked from it (sha256 {} then, {} now)",
                short(&step.sha256),
                short(&now)
            );
            match self.changed_playbook {
                ChangedPlaybook::Refuse => {
                    return Err(format!(
                        "{what}: its instances are not checked; rebake, or pass \
                         --allow-playbook-change to check them against the current file"
                    ))
                }
                ChangedPlaybook::CheckCurrent => {
                    collector.note(format!("{what}: checking against the current file"))
                }
            }
        }
        Ok(())
    }

    /// One step against one instance, as the build host was provisioned.
    fn check(&self, step: &ProvisionRecord, instance: &Instance) -> Check {
        let mut vars = VarMap::new();
        vars.insert(
            "ansible_host".into(),
            Value::from(instance.address.as_str()),
        );
        let mut options = self.options.clone();
        options.limit = None;
        options.extra_vars = crate::value::vars_from_json(&step.extra_vars);
        options.tags = TagFilter {
            only: step.tags.clone(),
            skip: step.skip_tags.clone(),
        };
        Check {
            playbooks: vec![step.playbook.clone()],
            roles_path: self.roles_path.to_vec(),
            inventory: Inventory::with_host(BUILD_HOST, vars, &step.groups),
            options,
            report_as: Some(instance.name.clone()),
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::HostState;
    use crate::load::config::AnsibleConfig;
    use std::collections::BTreeMap;

    fn instance(name: &str, image: &str) -> Instance {
        Instance {
            name: name.into(),
            address: "10.0.0.1".into(),
            image: image.into(),
        }
    }

    #[test]
    fn images_are_checked_against_their_own_playbooks_and_a_changed_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let playbook = dir.path().join("site.yml");
        std::fs::write(&playbook, "- hosts: web\n  tasks: []\n").unwrap();
        let baked = Provenance {
            steps: vec![ProvisionRecord {
                playbook: playbook.clone(),
                sha256: file_sha256(&playbook).unwrap(),
                extra_vars: BTreeMap::from([("v".into(), serde_json::json!("1"))]),
                groups: vec!["web".into()],
                tags: vec![],
                skip_tags: vec![],
            }],
            git_sha: None,
        };
        let options = RunOptions::from_config(&AnsibleConfig::default()).unwrap();
        let instances = [
            instance("a", "local:new"),
            instance("b", "local:new"),
            instance("c", "local:old"),
        ];
        let provenance_of = |image: &str| Ok((image == "local:new").then(|| baked.clone()));
        let mut fleet = FleetCheck {
            options: &options,
            roles_path: &[],
            changed_playbook: ChangedPlaybook::Refuse,
        };
        let collector = DriftCollector::default();
        let checks = fleet.checks(&instances, provenance_of, &collector);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[1].inventory.group_hosts("web"), vec![BUILD_HOST]);
        assert_eq!(checks[1].report_as.as_deref(), Some("b"));
        assert_eq!(checks[0].options.extra_vars["v"].as_str(), Some("1"));
        let report = collector.report();
        assert_eq!(report.hosts["c"].state, HostState::Failed);
        assert!(report.hosts["c"].problems[0].msg.contains("no provenance"));

        std::fs::write(&playbook, "- hosts: web\n  tasks: [debug: msg=x]\n").unwrap();
        let collector = DriftCollector::default();
        assert!(fleet
            .checks(&instances, provenance_of, &collector)
            .is_empty());
        let msg = &collector.report().hosts["a"].problems[0].msg;
        assert!(
            msg.contains("changed since image local:new was baked"),
            "{msg}"
        );

        fleet.changed_playbook = ChangedPlaybook::CheckCurrent;
        let collector = DriftCollector::default();
        assert_eq!(fleet.checks(&instances, provenance_of, &collector).len(), 2);
        assert!(collector.report().warnings[0].contains("checking against the current file"));
    }
}
