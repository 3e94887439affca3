//! Inventory plugin configuration files: YAML with a top-level `plugin:` key naming the
//! plugin, as Ansible's `auto` plugin reads them. kiln runs `constructed` and `aws_ec2`
//! natively.

use std::path::Path;

use super::construct::Constructable;
use super::Inventory;
use crate::error::{Error, Result};
use crate::load::load_vars_path;
use crate::value::bool_of;

/// Whether a file is a plugin configuration: a YAML file whose top level names a plugin.
pub fn is_plugin_config(path: &Path, text: &str) -> bool {
    let yaml_name = matches!(
        path.extension().and_then(|e| e.to_str()),
        None | Some("yml" | "yaml" | "config")
    );
    yaml_name && text.lines().any(|l| l.starts_with("plugin:"))
}

pub fn load(inv: &mut Inventory, path: &Path) -> Result<()> {
    let config = load_vars_path(path)?;
    let plugin = config
        .get("plugin")
        .and_then(|p| p.as_str().map(str::to_string))
        .unwrap_or_default();
    match plugin.as_str() {
        "constructed" | "ansible.builtin.constructed" => constructed(inv, path, &config),
        "aws_ec2" | "amazon.aws.aws_ec2" => {
            let name = path.to_string_lossy();
            if !(name.ends_with("aws_ec2.yml") || name.ends_with("aws_ec2.yaml")) {
                return Err(Error::Usage(format!(
                    "{}: an aws_ec2 inventory file's name must end in 'aws_ec2.yml' or 'aws_ec2.yaml', as amazon.aws requires",
                    path.display()
                )));
            }
            super::aws_ec2::load(inv, path, &config)
        }
        other => Err(Error::Usage(format!(
            "{}: inventory plugin '{other}' is not one kiln runs (it runs constructed and amazon.aws.aws_ec2; other plugins: export their output with ansible-inventory --list and use that, or an inventory script)",
            path.display()
        ))),
    }
}

/// The `constructed` plugin: compose, groups and keyed_groups over every host the sources
/// before it loaded.
fn constructed(inv: &mut Inventory, path: &Path, config: &crate::value::VarMap) -> Result<()> {
    let source = path.display().to_string();
    let construct = Constructable::from_config(config, &source)?;
    let with_files = config
        .get("use_vars_plugins")
        .and_then(bool_of)
        .unwrap_or(false);
    let hosts: Vec<String> = inv.hosts.keys().cloned().collect();
    for host in hosts {
        construct
            .apply(inv, &host, |inv, host| {
                inv.source_host_vars(host, with_files)
            })
            .map_err(|e| Error::Usage(format!("{source}: {e}")))?;
    }
    Ok(())
}
