//! Parsing one task mapping: its module, arguments and keywords.

use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::Value;

use super::action_plugins::ActionPlugin;
use super::kv::parse_kv;
use super::model::{Action, Inherited, LoopKind, LoopSpec, Task, VarMap};
use super::yaml::{Document, Node, NodeKind};
use crate::error::{did_you_mean, Error, Result};
use crate::modules::python::ModuleSearch;
use crate::modules::registry::{self, FreeForm};

/// Keywords a task may carry besides its module.
pub const TASK_KEYWORDS: &[&str] = &[
    "name",
    "action",
    "local_action",
    "args",
    "when",
    "loop",
    "loop_control",
    "register",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "until",
    "retries",
    "delay",
    "notify",
    "tags",
    "vars",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "become_exe",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "no_log",
    "check_mode",
    "diff",
    "environment",
    "listen",
    "any_errors_fatal",
    "remote_user",
    "connection",
    "timeout",
    "throttle",
    "debugger",
    "collections",
    "module_defaults",
    "async",
    "poll",
    "port",
    "apply",
];

/// Task keywords kiln accepts (so content using them loads) but does not act on yet; a run
/// warns once about each one a task uses.
pub const IGNORED_KEYWORDS: &[&str] = &["become_flags", "become_exe", "debugger"];

/// A string or list of strings (for `when`, `tags`, `notify`, …), as values.
pub fn string_or_list(doc: &Document, node: &Node, what: &str) -> Result<Vec<Value>> {
    match &node.kind {
        NodeKind::Null => Ok(vec![]),
        NodeKind::Seq(items) => Ok(items.iter().map(Node::to_value).collect()),
        NodeKind::Map(_) => Err(Error::invalid(
            doc.location(node),
            format!("'{what}' must be a string or a list, not a mapping"),
        )),
        _ => Ok(vec![node.to_value()]),
    }
}

pub fn strings(doc: &Document, node: &Node, what: &str) -> Result<Vec<String>> {
    Ok(string_or_list(doc, node, what)?
        .into_iter()
        .flat_map(|v| match v.as_str() {
            // `tags: a,b` is a comma-separated list.
            Some(s) if what == "tags" => s.split(',').map(|t| t.trim().to_string()).collect(),
            _ => vec![v.to_string()],
        })
        .filter(|s| !s.is_empty())
        .collect())
}

pub fn bool_of(doc: &Document, node: &Node, what: &str) -> Result<bool> {
    match &node.kind {
        NodeKind::Bool(b) => Ok(*b),
        NodeKind::Int(1) => Ok(true),
        NodeKind::Int(0) => Ok(false),
        NodeKind::Str(s) => match crate::value::parse_bool(s) {
            Some(b) => Ok(b),
            None => Err(Error::invalid(
                doc.location(node),
                format!("'{what}' must be a boolean (yes/no), got '{s}'"),
            )),
        },
        _ => Err(Error::invalid(
            doc.location(node),
            format!("'{what}' must be a boolean, not {}", node.type_name()),
        )),
    }
}

pub fn var_map(doc: &Document, node: &Node, what: &str) -> Result<VarMap> {
    match &node.kind {
        NodeKind::Null => Ok(VarMap::new()),
        NodeKind::Map(entries) => Ok(entries
            .iter()
            .filter_map(|(k, v)| Some((k.key_text()?, v.to_value())))
            .collect()),
        // A list of mappings is accepted too (old Ansible style).
        NodeKind::Seq(items) => {
            let mut out = VarMap::new();
            for item in items {
                out.extend(var_map(doc, item, what)?);
            }
            Ok(out)
        }
        _ => Err(Error::invalid(
            doc.location(node),
            format!(
                "'{what}' must be a mapping of variable names to values, not {}",
                node.type_name()
            ),
        )),
    }
}

/// Applies a block/role/task's own keywords on top of what it inherited.
pub fn apply_common_keywords(
    doc: &Document,
    map: &Node,
    inherited: &Inherited,
) -> Result<Inherited> {
    let mut out = inherited.clone();
    for (key, value) in map.as_map().unwrap_or_default() {
        let Some(key) = key.as_str() else { continue };
        match key {
            "when" => out.when.extend(string_or_list(doc, value, key)?),
            "tags" => out.tags.extend(strings(doc, value, key)?),
            "vars" => {
                let mut vars = (*out.vars).clone();
                vars.extend(var_map(doc, value, key)?);
                out.vars = Arc::new(vars);
            }
            "become" => out.escalate = Some(bool_of(doc, value, key)?),
            "become_user" => {
                out.become_user = value.as_str().map(str::to_string).or(out.become_user)
            }
            "become_method" => out.become_method = value.as_str().map(str::to_string),
            "remote_user" => out.remote_user = value.as_str().map(str::to_string),
            "connection" => out.connection = value.as_str().map(str::to_string),
            "collections" => {
                let mut search = (*out.module_search).clone();
                search.collections = strings(doc, value, key)?;
                out.module_search = Arc::new(search);
            }
            "environment" if !value.is_null() => out.environment.push(value.to_value()),
            "ignore_errors" => out.ignore_errors = Some(value.to_value()),
            "check_mode" => out.check_mode = Some(value.to_value()),
            "diff" => out.diff = Some(bool_of(doc, value, key)?),
            "no_log" => out.no_log = Some(value.to_value()),
            "delegate_to" => out.delegate_to = Some(value.to_value()),
            "run_once" => out.run_once = Some(bool_of(doc, value, key)?),
            "any_errors_fatal" => out.any_errors_fatal = Some(bool_of(doc, value, key)?),
            "throttle" => out.throttle = Some(value.to_value()),
            "ignore_unreachable" => out.ignore_unreachable = Some(value.to_value()),
            "module_defaults" if !value.is_null() => out.module_defaults.push(value.to_value()),
            _ => {}
        }
    }
    Ok(out)
}

/// Finds the module key of a task mapping and checks every other key is a keyword.
fn find_action<'a>(
    doc: &Document,
    map: &'a Node,
    search: &ModuleSearch,
) -> Result<(Action, Option<&'a Node>)> {
    let entries = map.as_map().unwrap_or_default();
    let mut action: Option<(Action, Option<&Node>)> = None;
    let mut unknown: Vec<&Node> = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_str() else {
            return Err(Error::invalid(
                doc.location(key),
                "task keys must be strings",
            ));
        };
        if TASK_KEYWORDS.contains(&name) || loop_lookup(name).is_some() {
            if name == "action" || name == "local_action" {
                let (module, args) = split_action_value(doc, value, search)?;
                action = Some((module, args));
            }
            continue;
        }
        let found = match registry::resolve(name) {
            Some(spec) => Some(Action::from_spec(spec)),
            None if search.finds(name) => Some(Action::Python(name.into())),
            None => match super::action_plugins::find(search, name) {
                Some(ActionPlugin::Alias(spec)) => Some(Action::from_spec(spec)),
                Some(ActionPlugin::Python) => Some(Action::ControllerPlugin(name.into())),
                None => None,
            },
        };
        match found {
            Some(found) => {
                if let Some((previous, _)) = &action {
                    return Err(Error::invalid(
                        doc.location(key),
                        format!(
                            "a task may name only one module, but this one names '{}' and '{name}'",
                            previous.name()
                        ),
                    ));
                }
                action = Some((found, Some(value)));
            }
            None => unknown.push(key),
        }
    }
    if let Some(key) = unknown.first() {
        let name = key.as_str().unwrap_or_default();
        let message = if action.is_some() {
            format!(
                "unknown task keyword '{name}'{}",
                did_you_mean(name, TASK_KEYWORDS.iter().copied())
            )
        } else {
            let short = name.rsplit('.').next().unwrap_or(name);
            let hint = did_you_mean(
                short,
                registry::names().chain(TASK_KEYWORDS.iter().copied()),
            );
            format!("unknown module '{name}'{hint}: kiln has no native module of that name, and no library/ directory or collection on the collections path holds one (see the README's module list and \"Collections\")")
        };
        return Err(Error::invalid(doc.location(key), message));
    }
    action.ok_or_else(|| {
        Error::invalid(
            doc.location(map),
            "this task names no module (add one such as 'command:' or 'copy:')",
        )
    })
}

/// `action: copy src=a dest=b`, `action: {module: copy, src: a}` or a templated name
/// (`action: "{{ module }}"`, resolved when the task runs).
fn split_action_value<'a>(
    doc: &Document,
    value: &'a Node,
    search: &ModuleSearch,
) -> Result<(Action, Option<&'a Node>)> {
    let module = match &value.kind {
        NodeKind::Str(s) => action_name(s).to_string(),
        NodeKind::Map(_) => value
            .get("module")
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    if module.contains("{{") {
        return Ok((Action::Templated(module), Some(value)));
    }
    if registry::resolve(&module).is_none() && search.finds(&module) {
        return Ok((Action::Python(module.into()), Some(value)));
    }
    let spec = registry::resolve(&module).ok_or_else(|| {
        Error::invalid(
            doc.location(value),
            format!(
                "unknown module '{module}' in 'action'{}",
                did_you_mean(&module, registry::names())
            ),
        )
    })?;
    Ok((Action::from_spec(spec), Some(value)))
}

/// The module name an `action:` string starts with: its first word, or a whole leading
/// `{{ ... }}` template.
fn action_name(text: &str) -> &str {
    let text = text.trim_start();
    if text.starts_with("{{") {
        if let Some(end) = text.find("}}") {
            return &text[..end + 2];
        }
    }
    text.split_whitespace().next().unwrap_or_default()
}

/// Turns a module's argument node (mapping, free-form string or null) into a mapping value.
fn module_args(
    doc: &Document,
    action: &Action,
    node: Option<&Node>,
    from_action_keyword: bool,
) -> Result<IndexMap<String, Value>> {
    let Some(node) = node else {
        return Ok(IndexMap::new());
    };
    let mut out = IndexMap::new();
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                let Some(k) = k.key_text() else { continue };
                if from_action_keyword && k == "module" {
                    continue;
                }
                out.insert(k, v.to_value());
            }
        }
        NodeKind::Str(_)
        | NodeKind::Unsafe(_)
        | NodeKind::Int(_)
        | NodeKind::BigInt(_)
        | NodeKind::Float(_)
        | NodeKind::Bool(_) => {
            let text = match node.as_str() {
                Some(s) => s.to_string(),
                None => node.to_value().to_string(),
            };
            let text = if from_action_keyword {
                let text = text.trim_start();
                text[action_name(text).len()..]
                    .strip_prefix(char::is_whitespace)
                    .unwrap_or_default()
                    .to_string()
            } else {
                text
            };
            let free_form = action
                .spec()
                .map_or(FreeForm::KeyValue, |spec| spec.free_form);
            let raw_keys = match free_form {
                FreeForm::KeyValue => None,
                FreeForm::CommandLine(keys) => Some(keys),
                FreeForm::Target(_) if !text.contains('=') => {
                    out.insert("_raw_params".to_string(), Value::from(text.trim()));
                    return Ok(out);
                }
                FreeForm::Target(keys) => keys,
            };
            for (k, v) in parse_kv(&text, raw_keys) {
                out.insert(k, Value::from(v));
            }
        }
        NodeKind::Seq(_) | NodeKind::Vault(_) => {
            return Err(Error::invalid(
                doc.location(node),
                format!(
                    "the arguments of '{}' must be a mapping or a 'key=value' string, not {}",
                    action.name(),
                    node.type_name()
                ),
            ))
        }
    }
    Ok(out)
}

/// The lookup a `with_<lookup>:` key loops over (any lookup, as in Ansible).
fn loop_lookup(key: &str) -> Option<&str> {
    key.strip_prefix("with_").filter(|name| !name.is_empty())
}

fn loop_spec(doc: &Document, map: &Node) -> Result<Option<LoopSpec>> {
    let mut found: Option<LoopSpec> = None;
    for (key, node) in map.as_map().into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        let kind = match key {
            "loop" => LoopKind::List,
            other => match loop_lookup(other) {
                Some(lookup) => LoopKind::Lookup(lookup.to_string()),
                None => continue,
            },
        };
        if found.is_some() {
            return Err(Error::invalid(
                doc.location(node),
                "a task may have only one loop keyword",
            ));
        }
        found = Some(LoopSpec {
            kind,
            items: node.to_value(),
            loop_var: "item".to_string(),
            index_var: None,
            label: None,
            pause: None,
            extended: false,
        });
    }
    if let (Some(spec), Some(control)) = (found.as_mut(), map.get("loop_control")) {
        let Some(entries) = control.as_map() else {
            return Err(Error::invalid(
                doc.location(control),
                "'loop_control' must be a mapping",
            ));
        };
        for (k, v) in entries {
            match k.as_str().unwrap_or_default() {
                "loop_var" => spec.loop_var = v.to_value().to_string(),
                "index_var" => spec.index_var = Some(v.to_value().to_string()),
                "label" => spec.label = Some(v.to_value()),
                "pause" => {
                    spec.pause = v
                        .to_value()
                        .as_i64()
                        .map(|i| i as f64)
                        .or_else(|| f64::try_from(v.to_value()).ok())
                }
                "extended" => spec.extended = bool_of(doc, v, "extended")?,
                "extended_allitems" => {}
                other => {
                    return Err(Error::invalid(
                        doc.location(k),
                        format!(
                            "unknown loop_control option '{other}'{}",
                            did_you_mean(
                                other,
                                ["loop_var", "index_var", "label", "pause", "extended"]
                            )
                        ),
                    ))
                }
            }
        }
    }
    Ok(found)
}

/// Parses one task mapping (not a block, not a static import).
pub fn parse_task(doc: &Document, map: &Node, inherited: &Inherited) -> Result<Task> {
    // A task's own `collections:` decides how its module name resolves.
    let search = match map.get("collections") {
        Some(_) => apply_common_keywords(doc, map, inherited)?.module_search,
        None => inherited.module_search.clone(),
    };
    let (action, args_node) = find_action(doc, map, &search)?;
    let from_action_keyword = map.get("action").is_some() || map.get("local_action").is_some();
    let mut args = module_args(doc, &action, args_node, from_action_keyword)?;
    if let Some(extra) = map.get("args") {
        match extra.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    if let Some(k) = k.key_text() {
                        args.insert(k, v.to_value());
                    }
                }
            }
            None if extra.as_str().is_some() => {
                // `args: "{{ some_dict }}"` is templated at run time.
                args.insert("_args_template".to_string(), extra.to_value());
            }
            None => {
                return Err(Error::invalid(
                    doc.location(extra),
                    "'args' must be a mapping",
                ))
            }
        }
    }
    let mut inherited = apply_common_keywords(doc, map, inherited)?;
    if map.get("local_action").is_some() {
        inherited.delegate_to = Some(Value::from("localhost"));
    }
    let name = map.get("name").map(|n| n.to_value().to_string());
    let get_list = |key: &str| -> Result<Vec<Value>> {
        map.get(key)
            .map(|n| string_or_list(doc, n, key))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let register = match map.get("register") {
        Some(node) => match node.as_str() {
            Some(name) if is_identifier(name) => Some(name.to_string()),
            _ => {
                return Err(Error::invalid(
                    doc.location(node),
                    "'register' must be a variable name (letters, digits, underscores)",
                ))
            }
        },
        None => None,
    };
    Ok(Task {
        name,
        args: crate::template::map_value(args),
        loop_spec: loop_spec(doc, map)?,
        register,
        changed_when: get_list("changed_when")?,
        failed_when: get_list("failed_when")?,
        until: get_list("until")?,
        retries: map.get("retries").map(Node::to_value),
        delay: map.get("delay").map(Node::to_value),
        notify: map
            .get("notify")
            .map(|n| strings(doc, n, "notify"))
            .transpose()?
            .unwrap_or_default(),
        listen: map
            .get("listen")
            .map(|n| strings(doc, n, "listen"))
            .transpose()?
            .unwrap_or_default(),
        delegate_facts: map.get("delegate_facts").map(Node::to_value),
        async_seconds: map.get("async").map(Node::to_value),
        poll: map.get("poll").map(Node::to_value),
        ignored_keywords: IGNORED_KEYWORDS
            .iter()
            .copied()
            .filter(|k| map.get(k).is_some())
            .collect(),
        location: doc.location(map),
        action,
        inherited,
    })
}

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
