//! YAML inventories (`all: {hosts: …, children: …, vars: …}`).

use std::path::Path;

use super::Inventory;
use crate::error::{Error, Result};
use crate::load::task::var_map;
use crate::load::yaml::{parse_str, Document, Node};

pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> Result<()> {
    let doc = parse_str(text, path)?;
    let Some(entries) = doc.root.as_map() else {
        if doc.root.is_null() {
            return Ok(());
        }
        return Err(Error::invalid(
            doc.location(&doc.root),
            "a YAML inventory must be a mapping of group names (e.g. 'all:')",
        ));
    };
    for (name, body) in entries {
        let name = name.key_text().unwrap_or_default();
        add_group(inv, &doc, &name, body, 0)?;
    }
    Ok(())
}

fn add_group(
    inv: &mut Inventory,
    doc: &Document,
    name: &str,
    body: &Node,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(Error::invalid(
            doc.location(body),
            "inventory groups nest too deeply",
        ));
    }
    inv.group_mut(name);
    if body.is_null() {
        return Ok(());
    }
    let Some(entries) = body.as_map() else {
        return Err(Error::invalid(
            doc.location(body),
            format!("group '{name}' must be a mapping with hosts/children/vars"),
        ));
    };
    for (key, value) in entries {
        match key.as_str().unwrap_or_default() {
            "hosts" => {
                for (host, host_vars) in value.as_map().unwrap_or_default() {
                    let host_name = host.key_text().unwrap_or_default();
                    for expanded in super::ini::expand_range(&host_name)
                        .map_err(|m| Error::invalid(doc.location(host), m))?
                    {
                        inv.add_host(&expanded, (name != "all").then_some(name));
                        let vars = var_map(doc, host_vars, "host vars")?;
                        inv.hosts.entry(expanded).or_default().extend(vars);
                    }
                }
            }
            "children" => {
                for (child, child_body) in value.as_map().unwrap_or_default() {
                    let child_name = child.key_text().unwrap_or_default();
                    inv.group_mut(name).children.insert(child_name.clone());
                    add_group(inv, doc, &child_name, child_body, depth + 1)?;
                }
            }
            "vars" => {
                let vars = var_map(doc, value, "group vars")?;
                inv.group_mut(name).vars.extend(vars);
            }
            other => {
                return Err(Error::invalid(
                    doc.location(key),
                    format!(
                    "unknown key '{other}' in group '{name}' (expected hosts, children or vars)"
                ),
                ))
            }
        }
    }
    Ok(())
}
