//! Ansible action plugins beside a playbook or role (`action_plugins/NAME.py`): Python that
//! ansible-core runs on its controller. One that only re-exports a builtin action's class is
//! that action under another name; any other is known by its name (the task loads) and fails
//! when a host reaches it, as kiln cannot run controller-side Python.

use crate::modules::python::ModuleSearch;
use crate::modules::registry::{self, ModuleSpec};

/// What an action plugin file is to kiln.
pub enum ActionPlugin {
    /// `from ansible.plugins.action.debug import ActionModule`: the builtin action itself.
    Alias(&'static ModuleSpec),
    /// Any other plugin: its own Python.
    Python,
}

/// The action plugin `name` (a short name) in an `action_plugins/` directory beside one of
/// the `library/` directories kiln searches for modules (the playbook's and each role's).
pub fn find(search: &ModuleSearch, name: &str) -> Option<ActionPlugin> {
    if name.is_empty() || name.contains(['.', '/']) {
        return None;
    }
    let path = search
        .library
        .iter()
        .filter(|dir| dir.file_name().is_some_and(|n| n == "library"))
        .filter_map(|dir| dir.parent())
        .map(|dir| dir.join("action_plugins").join(format!("{name}.py")))
        .find(|path| path.is_file())?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match alias_of(&text).and_then(registry::resolve) {
        Some(spec) => Some(ActionPlugin::Alias(spec)),
        None => Some(ActionPlugin::Python),
    }
}

/// The builtin action a plugin's source only re-exports, if that is all it does (comments,
/// `from __future__` imports and an `assert ActionModule` aside).
fn alias_of(text: &str) -> Option<&str> {
    let mut alias = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("from __future__ import")
            || line == "assert ActionModule"
        {
            continue;
        }
        let action = line
            .strip_prefix("from ansible.plugins.action.")
            .and_then(|rest| rest.strip_suffix(" import ActionModule"))
            .filter(|action| {
                action
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        match (action, alias) {
            (Some(action), None) => alias = Some(action),
            _ => return None,
        }
    }
    alias
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_that_only_re_exports_a_builtin_is_an_alias() {
        let alias = "from __future__ import annotations\n\nfrom ansible.plugins.action.debug import ActionModule\n\nassert ActionModule\n";
        assert_eq!(alias_of(alias), Some("debug"));
        let own = "from ansible.plugins.action import ActionBase\n\nclass ActionModule(ActionBase):\n    pass\n";
        assert_eq!(alias_of(own), None);
        let more = "from ansible.plugins.action.debug import ActionModule\nprint('x')\n";
        assert_eq!(alias_of(more), None);
    }

    #[test]
    fn plugins_are_found_beside_library_directories() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("action_plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(
            plugins.join("debug_alias.py"),
            "from ansible.plugins.action.debug import ActionModule\n",
        )
        .unwrap();
        std::fs::write(plugins.join("own.py"), "class ActionModule: pass\n").unwrap();
        let search = ModuleSearch {
            library: vec![dir.path().join("library")],
            ..ModuleSearch::default()
        };
        assert!(
            matches!(find(&search, "debug_alias"), Some(ActionPlugin::Alias(spec)) if spec.name == "debug")
        );
        assert!(matches!(find(&search, "own"), Some(ActionPlugin::Python)));
        assert!(find(&search, "missing").is_none());
        assert!(find(&search, "ns.coll.own").is_none());
    }
}
