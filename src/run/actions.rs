//! Actions the runner carries out itself because they change the run rather than the host:
//! `set_fact`, `meta` (and, in `include_vars.rs`, `include_vars`).

use minijinja::Value;

use crate::load::model::VarMap;
use crate::modules::ModuleResult;
use crate::template::Scope;

/// Where variables a runner action defines sit in Ansible's precedence order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VarLevel {
    IncludeVars,
    SetFact,
}

/// Variables an action defines for the host, with their precedence level.
pub type SetVars = (VarMap, VarLevel);

/// What an action did: the module's result, plus the variables a runner action defines.
#[derive(Debug, Default)]
pub struct ActionResult {
    pub result: ModuleResult,
    pub set_vars: Option<SetVars>,
}

impl From<ModuleResult> for ActionResult {
    fn from(result: ModuleResult) -> Self {
        Self {
            result,
            set_vars: None,
        }
    }
}

impl ActionResult {
    /// An unchanged result that defines `vars` at `level`.
    pub(super) fn defining(result: ModuleResult, vars: VarMap, level: VarLevel) -> Self {
        Self {
            result,
            set_vars: Some((vars, level)),
        }
    }
}

pub(super) fn entries(args: &Value) -> Vec<(String, Value)> {
    args.try_iter()
        .into_iter()
        .flatten()
        .map(|k| (k.to_string(), args.get_item(&k).unwrap_or_default()))
        .collect()
}

/// The `name=value` pairs of a free-form `set_fact`, once templated: a templated name
/// (`set_fact: "{{ item }}=moo"`) is only known now.
fn free_form_facts(text: &str) -> Option<Vec<(String, Value)>> {
    let pairs = crate::load::kv::parse_kv(text, None);
    if pairs.is_empty() || pairs.contains_key("_raw_params") {
        return None;
    }
    Some(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
    )
}

pub fn set_fact(args: &Value, scope: &Scope) -> ActionResult {
    let mut vars = VarMap::new();
    let mut pairs = Vec::new();
    for (key, value) in entries(args) {
        // A name may be a template (`"{{ item }}": 1`, or split from free-form text).
        let key = match scope.templar().render_str(&key, scope) {
            Ok(name) => name.to_string(),
            Err(e) => return ModuleResult::failed(e.to_string()).into(),
        };
        if key != "_raw_params" {
            pairs.push((key, value));
            continue;
        }
        match free_form_facts(&value.to_string()) {
            Some(facts) => pairs.extend(facts),
            None => {
                return ModuleResult::failed(format!("set_fact: '{value}' is not 'name=value'"))
                    .into()
            }
        }
    }
    for (key, value) in pairs {
        if key == "cacheable" {
            continue;
        }
        if !crate::load::task::is_identifier(&key) {
            return ModuleResult::failed(format!("set_fact: '{key}' is not a valid variable name"))
                .into();
        }
        vars.insert(key, value);
    }
    if vars.is_empty() {
        return ModuleResult::failed("set_fact: no variables given (write them as 'name: value')")
            .into();
    }
    ActionResult::defining(ModuleResult::changed(false), vars, VarLevel::SetFact)
}

/// `meta:` actions are reported back to the runner through the `_meta` key.
pub fn meta(args: &Value) -> ModuleResult {
    let action = args
        .get_attr("_raw_params")
        .ok()
        .filter(|v| !v.is_undefined())
        .map(|v| v.to_string())
        .unwrap_or_default();
    match action.as_str() {
        "flush_handlers" | "noop" | "end_play" | "end_host" | "end_batch" | "clear_facts" | "clear_host_errors" | "refresh_inventory" | "reset_connection" => {
            ModuleResult::changed(false).with("_meta", action)
        }
        other => ModuleResult::failed(format!("meta: unknown action '{other}' (known: flush_handlers, noop, end_play, end_host, end_batch, clear_facts, clear_host_errors, refresh_inventory, reset_connection)")),
    }
}
