//! Provisioning a build instance: each step of the spec's `provision` list is a playbook run
//! in-process through [`PlaybookRun`] against a one-host inventory (`default`, in the step's
//! groups), with ansible.cfg's options plus the step's and the caller's.

use std::path::{Path, PathBuf};

use anyhow::bail;
use minijinja::Value;

use super::build::Job;
use super::spec::Provision;
use crate::load::config::AnsibleConfig;
use crate::load::inventory::Inventory;
use crate::load::model::VarMap;
use crate::output::progress::line;
use crate::run::playbook_run::{load_playbooks, reporter, PlaybookRun};
use crate::run::tags::TagFilter;
use crate::run::RunOptions;

/// The build instance's name in the provisioning inventory (Packer's): templates that use
/// `inventory_hostname` bake it into the image.
pub const BUILD_HOST: &str = "default";

/// The build instance as provisioning reaches it.
pub struct BuildHost {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub private_key: PathBuf,
}

impl BuildHost {
    /// The variables of the inventory's `default` host.
    fn vars(&self) -> VarMap {
        let mut vars = VarMap::new();
        vars.insert("ansible_host".into(), Value::from(self.address.as_str()));
        vars.insert("ansible_port".into(), Value::from(self.port));
        vars.insert("ansible_user".into(), Value::from(self.user.as_str()));
        vars.insert(
            "ansible_ssh_private_key_file".into(),
            Value::from(self.private_key.display().to_string()),
        );
        vars
    }
}

/// Runs every provisioning step against the build host.
pub async fn provision_all(job: &Job, host: &BuildHost) -> anyhow::Result<()> {
    let steps = &job.spec.provision;
    for (n, step) in steps.iter().enumerate() {
        line(
            &job.spec.name,
            &format!(
                "provisioning with {} (step {} of {})",
                step.playbook.display(),
                n + 1,
                steps.len()
            ),
        );
        provision(job, step, host).await?;
    }
    Ok(())
}

/// Runs one provisioning playbook against the build host. Ctrl-C and SIGTERM are the bake's
/// to handle (its cleanup decides the exit), so the run itself is never stopped early.
async fn provision(job: &Job, step: &Provision, host: &BuildHost) -> anyhow::Result<()> {
    let config = AnsibleConfig::discover();
    let (playbooks, loader) =
        load_playbooks(&[job.spec_dir.join(&step.playbook)], &config.roles_path)?;
    let inventory = Inventory::with_host(BUILD_HOST, host.vars(), &step.groups);
    let options = step_options(&config, step, &job.options.extra_vars)?;
    let reporter = reporter(&config, 0, job.options.json_events.as_deref())?;
    let run = PlaybookRun::new(playbooks, loader, inventory, options, reporter);
    let code = run.run_until(std::future::pending()).await?.exit_code();
    if code != 0 {
        bail!(
            "provisioning with {} failed (exit code {code})",
            step.playbook.display()
        );
    }
    Ok(())
}

/// ansible.cfg's options, the step's variables under the caller's, the step's tags, and no
/// host key checking.
fn step_options(
    config: &AnsibleConfig,
    step: &Provision,
    extra_vars: &VarMap,
) -> anyhow::Result<RunOptions> {
    let mut options = RunOptions::from_config(config)?;
    options.extra_vars = crate::value::vars_from_json(&step.extra_vars);
    options.extra_vars.extend(extra_vars.clone());
    options.tags = TagFilter {
        only: step.tags.clone(),
        skip: step.skip_tags.clone(),
    };
    trust_fresh_host_keys(&mut options);
    Ok(options)
}

/// No host key checking and no known_hosts file: every local instance has a fresh host key,
/// and it is never recorded.
pub(crate) fn trust_fresh_host_keys(options: &mut RunOptions) {
    options.connection.host_key_checking = false;
    options.connection.known_hosts = Some(vec![Path::new("/dev/null").to_path_buf()]);
}
