//! What Ansible's constructable inventory plugins share: `compose` (variables from Jinja
//! expressions), `groups` (groups from conditionals) and `keyed_groups` (groups named after a
//! variable's value), with `strict` deciding whether a failing expression is an error or
//! skipped. Used by the `constructed` and `aws_ec2` plugins.

use std::sync::Arc;

use minijinja::value::ValueKind;
use minijinja::Value;

use super::Inventory;
use crate::error::{Error, Result};
use crate::template::{Scope, Templar};
use crate::value::{bool_of, VarMap};

/// The constructable options of one plugin configuration file.
pub struct Constructable {
    compose: Vec<(String, Value)>,
    groups: Vec<(String, Value)>,
    keyed_groups: Vec<Value>,
    strict: bool,
    leading_separator: bool,
    templar: Arc<Templar>,
}

impl Constructable {
    pub fn from_config(config: &VarMap, source: &str) -> Result<Self> {
        let pairs = |key: &str| -> Result<Vec<(String, Value)>> {
            match config.get(key) {
                None => Ok(Vec::new()),
                Some(v) if v.is_none() => Ok(Vec::new()),
                Some(v) if v.kind() == ValueKind::Map => Ok(v
                    .try_iter()
                    .into_iter()
                    .flatten()
                    .map(|k| (k.to_string(), v.get_item(&k).unwrap_or_default()))
                    .collect()),
                Some(_) => Err(usage(source, format!("'{key}' must be a mapping"))),
            }
        };
        let keyed_groups = match config.get("keyed_groups") {
            None => Vec::new(),
            Some(v) if v.is_none() => Vec::new(),
            Some(v) if v.kind() == ValueKind::Seq => v.try_iter().into_iter().flatten().collect(),
            Some(_) => return Err(usage(source, "'keyed_groups' must be a list".into())),
        };
        let flag = |key: &str, default: bool| config.get(key).and_then(bool_of).unwrap_or(default);
        Ok(Self {
            compose: pairs("compose")?,
            groups: pairs("groups")?,
            keyed_groups,
            strict: flag("strict", false),
            leading_separator: flag("leading_separator", true),
            templar: Templar::new(),
        })
    }

    /// Applies compose, then groups and keyed_groups to `host`. `vars` gives the variables
    /// the expressions see; it is asked again after compose so that groups see composed
    /// variables, as in Ansible.
    pub fn apply(
        &self,
        inv: &mut Inventory,
        host: &str,
        vars: impl Fn(&Inventory, &str) -> Result<VarMap>,
    ) -> Result<()> {
        let scope = self.scope(inv, host, vars(inv, host)?);
        for (name, expression) in &self.compose {
            match self.evaluate(expression, &scope) {
                Ok(value) => {
                    inv.hosts
                        .entry(host.to_string())
                        .or_default()
                        .insert(name.clone(), value);
                }
                Err(e) if self.strict => {
                    return Err(Error::Usage(format!(
                        "Could not set {name} for host {host}: {e}"
                    )))
                }
                Err(_) => {}
            }
        }
        let scope = self.scope(inv, host, vars(inv, host)?);
        for (group, condition) in &self.groups {
            let group = sanitize_group_name(group);
            match self.templar.eval_condition(condition, &scope) {
                Ok(true) => inv.add_host(host, Some(&group)),
                Ok(false) => {}
                Err(e) if self.strict => {
                    return Err(Error::Usage(format!(
                        "Could not add host {host} to group {group}: {}",
                        e.message
                    )))
                }
                Err(_) => {}
            }
        }
        for keyed in &self.keyed_groups {
            self.keyed_group(inv, host, keyed, &scope)?;
        }
        Ok(())
    }

    /// The variables with the host's magic ones on top, as Ansible's `Host.get_vars()`.
    fn scope(&self, inv: &Inventory, host: &str, mut vars: VarMap) -> Scope {
        vars.insert("inventory_hostname".into(), Value::from(host));
        let short = host.split('.').next().unwrap_or(host);
        vars.insert("inventory_hostname_short".into(), Value::from(short));
        vars.insert("group_names".into(), Value::from(inv.group_names(host)));
        Scope::new(self.templar.clone(), vec![Arc::new(vars)])
    }

    /// A compose expression's value (a non-string is its own value).
    fn evaluate(&self, expression: &Value, scope: &Scope) -> Result<Value, String> {
        let Some(text) = expression.as_str() else {
            return Ok(expression.clone());
        };
        self.templar
            .render_str(&format!("{{{{ {text} }}}}"), scope)
            .map_err(|e| e.message)
    }

    fn keyed_group(
        &self,
        inv: &mut Inventory,
        host: &str,
        keyed: &Value,
        scope: &Scope,
    ) -> Result<()> {
        if keyed.kind() != ValueKind::Map {
            return Err(Error::Usage(format!(
                "Invalid keyed group entry, it must be a dictionary: {keyed}"
            )));
        }
        let option = |name: &str| {
            keyed
                .get_attr(name)
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_none())
        };
        let key_expression = option("key").unwrap_or_default();
        let key = match self.evaluate(&key_expression, scope) {
            Ok(key) => key,
            Err(e) if self.strict => {
                return Err(Error::Usage(format!(
                    "Could not generate group for host {host} from {key_expression} entry: {e}"
                )))
            }
            Err(_) => return Ok(()),
        };
        let default_value = option("default_value").map(|v| python_str(&v));
        let trailing_separator = option("trailing_separator").and_then(|v| bool_of(&v));
        if trailing_separator.is_some() && default_value.is_some() {
            return Err(Error::Usage(
                "parameters are mutually exclusive for keyed groups: default_value|trailing_separator".into(),
            ));
        }
        let is_blank = |v: &Value| v.is_none() || v.as_str() == Some("");
        let use_default = is_blank(&key) && default_value.is_some();
        if !(key.is_true() || use_default) {
            let empty_collection =
                matches!(key.kind(), ValueKind::Seq | ValueKind::Map) && key.len() == Some(0);
            if self.strict && !empty_collection {
                return Err(Error::Usage(format!(
                    "No key or key resulted empty for {key_expression} in host {host}, invalid entry"
                )));
            }
            return Ok(());
        }
        let prefix = option("prefix").map(|v| python_str(&v)).unwrap_or_default();
        let separator = option("separator")
            .map(|v| python_str(&v))
            .unwrap_or_else(|| "_".into());
        let parent = match option("parent_group") {
            None => None,
            Some(raw) => match self.evaluate_template(&raw, scope) {
                Ok(parent) => Some(parent).filter(|p| !p.is_empty()),
                Err(e) if self.strict => {
                    return Err(Error::Usage(format!(
                        "Could not generate parent group {raw} for group {key}: {e}"
                    )))
                }
                Err(_) => return Ok(()),
            },
        };
        let mut bare_names = Vec::new();
        if use_default {
            bare_names.extend(default_value.clone());
        } else if key.kind() == ValueKind::String {
            bare_names.push(python_str(&key));
        } else if key.kind() == ValueKind::Seq {
            for item in key.try_iter().into_iter().flatten() {
                match &default_value {
                    Some(default) if is_blank(&item) => bare_names.push(default.clone()),
                    _ => bare_names.push(python_str(&item)),
                }
            }
        } else if key.kind() == ValueKind::Map {
            for name in key.try_iter().into_iter().flatten() {
                let value = key.get_item(&name).unwrap_or_default();
                let name = python_str(&name);
                bare_names.push(if is_blank(&value) {
                    match (&default_value, trailing_separator) {
                        (Some(default), _) => format!("{name}{separator}{default}"),
                        (None, Some(false)) => name,
                        _ => format!("{name}{separator}{}", python_str(&value)),
                    }
                } else {
                    format!("{name}{separator}{}", python_str(&value))
                });
            }
        } else {
            return Err(Error::Usage(format!(
                "Invalid group name format, expected a string or a list of them or dictionary, got: {}",
                key.kind()
            )));
        }
        let separator = if prefix.is_empty() && !self.leading_separator {
            String::new()
        } else {
            separator
        };
        for bare in bare_names {
            let group = sanitize_group_name(&format!("{prefix}{separator}{bare}"));
            inv.add_host(host, Some(&group));
            if let Some(parent) = &parent {
                let parent = sanitize_group_name(parent);
                inv.group_mut(&parent).children.insert(group);
            }
        }
        Ok(())
    }

    /// A value that may hold `{{ }}` (parent_group), rendered to text.
    fn evaluate_template(&self, raw: &Value, scope: &Scope) -> Result<String, String> {
        self.templar
            .render_value(raw, scope)
            .map(|v| python_str(&v))
            .map_err(|e| e.message)
    }
}

/// Ansible's safe group names: every character that is not a letter, digit or `_`, and a
/// leading digit, become `_`.
pub fn sanitize_group_name(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if (c.is_alphanumeric() || c == '_') && !(i == 0 && c.is_numeric()) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A value as Python's `str()` prints it inside a group name.
fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        _ => value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string()),
    }
}

fn usage(source: &str, message: String) -> Error {
    Error::Usage(format!("{source}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> VarMap {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        crate::value::vars_from_json(value.as_object().unwrap())
    }

    fn host_inventory() -> Inventory {
        let mut inv = Inventory::new();
        inv.add_host("h1", Some("web"));
        let vars = inv.hosts.get_mut("h1").unwrap();
        vars.insert("os".into(), Value::from("Debian 12"));
        vars.insert(
            "tags".into(),
            crate::value::map_value(
                [
                    ("Role".to_string(), Value::from("db")),
                    ("Env".to_string(), Value::from("")),
                ]
                .into_iter()
                .collect(),
            ),
        );
        inv.group_mut("web")
            .vars
            .insert("port".into(), Value::from(80));
        inv
    }

    fn apply(json: &str) -> Result<Inventory> {
        let mut inv = host_inventory();
        let c = Constructable::from_config(&config(json), "c.yml")?;
        c.apply(&mut inv, "h1", |inv, h| inv.source_host_vars(h, false))?;
        Ok(inv)
    }

    #[test]
    fn compose_sees_group_vars_and_groups_see_composed_vars() {
        let inv = apply(
            r#"{"compose": {"url": "'http://h:' ~ port", "big": "port > 50"},
                "groups": {"fast-lane": "big", "never": "port < 0", "broken": "nope.x"}}"#,
        )
        .unwrap();
        assert_eq!(inv.hosts["h1"]["url"], Value::from("http://h:80"));
        assert_eq!(inv.group_hosts("fast_lane"), vec!["h1"]);
        assert!(!inv.groups.contains_key("never"));
        assert!(!inv.groups.contains_key("broken"));
    }

    #[test]
    fn expressions_see_magic_variables_but_not_alls_variables_yet() {
        let inv = apply(
            r#"{"compose": {"who": "inventory_hostname ~ '/' ~ group_names | join(',')", "site": "dc"}}"#,
        )
        .unwrap();
        assert_eq!(inv.hosts["h1"]["who"], Value::from("h1/web"));
        // Ansible attaches `all` to hosts only after every source is loaded.
        assert!(!inv.hosts["h1"].contains_key("site"));
    }

    #[test]
    fn strict_turns_a_failing_expression_into_an_error() {
        let err = apply(r#"{"strict": true, "compose": {"x": "nope.y"}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("Could not set x for host h1"), "{err}");
        assert!(apply(r#"{"strict": false, "compose": {"x": "nope.y"}}"#).is_ok());
    }

    #[test]
    fn keyed_groups_follow_ansibles_naming() {
        let inv = apply(
            r#"{"keyed_groups": [
                {"key": "tags.Role", "prefix": "role"},
                {"key": "tags.Role"},
                {"key": "tags", "prefix": "tag", "separator": "-"},
                {"key": "tags.Env", "prefix": "env", "default_value": "none"},
                {"key": "tags", "prefix": "t", "trailing_separator": false},
                {"key": "os", "prefix": "", "parent_group": "systems"},
                {"key": "missing.x", "prefix": "m"}
            ], "leading_separator": true}"#,
        )
        .unwrap();
        for group in [
            "role_db",
            "_db",
            "tag_Role_db",
            "tag_Env_",
            "env_none",
            "t_Role_db",
            "t_Env",
            "_Debian_12",
        ] {
            assert_eq!(
                inv.group_hosts(group),
                vec!["h1"],
                "{group}: {:?}",
                inv.groups.keys()
            );
        }
        assert!(inv.groups["systems"].children.contains("_Debian_12"));
        assert!(!inv.groups.keys().any(|g| g.starts_with("m_")));
    }

    #[test]
    fn no_leading_separator_without_a_prefix() {
        let inv = apply(r#"{"keyed_groups": [{"key": "tags.Role"}], "leading_separator": false}"#)
            .unwrap();
        assert_eq!(inv.group_hosts("db"), vec!["h1"]);
    }

    #[test]
    fn group_names_are_sanitized_like_ansible() {
        assert_eq!(sanitize_group_name("1web-a.b"), "_web_a_b");
        assert_eq!(sanitize_group_name("web_1"), "web_1");
    }
}
