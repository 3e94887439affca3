//! Loading: YAML files into the typed model (playbooks, roles, inventories, vars files).

mod action_plugins;
pub mod config;
pub mod inventory;
pub mod kv;
pub mod model;
pub mod playbook;
pub mod role;
pub mod task;
pub mod tasklist;
pub use crate::yaml;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use model::{Task, VarMap};
use yaml::NodeKind;

use crate::error::{Error, Result};
use crate::modules::python::ModuleSearch;

/// Loads playbooks and the files they pull in. One loader serves one playbook run; it also
/// loads `include_tasks`/`include_role` targets when the runner reaches them.
#[derive(Debug, Default)]
pub struct Loader {
    pub playbook_dir: PathBuf,
    /// Extra role directories: `ansible.cfg` roles_path, then ANSIBLE_ROLES_PATH.
    pub roles_path: Vec<PathBuf>,
    /// Where modules run through Python are found, before any `collections:` keyword or
    /// role: the playbook's `library/`, `library` in ansible.cfg, the playbook's
    /// `collections/`, then `collections_path`.
    pub module_search: Arc<ModuleSearch>,
    /// Handlers collected from the roles of the play being loaded.
    handlers: Vec<Arc<Task>>,
    /// Roles already applied in the current play (a role runs once unless its parameters differ).
    roles_applied: HashSet<String>,
    /// Scopes of the roles loaded for the current play.
    role_scopes: Vec<Arc<model::RoleScope>>,
    /// How deep task files and roles are nested right now (a cycle would never end).
    nesting: usize,
}

/// Deeper nesting than this is taken to be a cycle (a role depending on itself, a task file
/// importing itself).
const MAX_NESTING: usize = 64;

impl Loader {
    pub fn new(playbook_dir: PathBuf, roles_path: Vec<PathBuf>) -> Self {
        let config = config::AnsibleConfig::discover();
        let mut library = vec![playbook_dir.join("library")];
        library.extend(config.library);
        let mut collections_path = vec![playbook_dir.join("collections")];
        collections_path.extend(config.collections_path);
        Self {
            module_search: Arc::new(ModuleSearch {
                collections: Vec::new(),
                library,
                collections_path,
            }),
            playbook_dir,
            roles_path,
            ..Default::default()
        }
    }

    /// A templated role name or static import path (Molecule's `role: "{{ lookup('env',
    /// 'MOLECULE_PROJECT_DIRECTORY') }}"`, `import_tasks: "{{ playbook_dir }}/x.yml"`), rendered
    /// while loading as Ansible does: lookups, `playbook_dir` and the play's and blocks' `vars`
    /// are available, host variables are not.
    pub(crate) fn render_at_load(
        &self,
        text: &str,
        inherited: &model::Inherited,
        doc: &yaml::Document,
        at: &yaml::Node,
    ) -> Result<String> {
        let mut vars = VarMap::new();
        vars.insert(
            "playbook_dir".into(),
            minijinja::Value::from(self.playbook_dir.display().to_string()),
        );
        let templar = crate::template::Templar::new();
        let scope = crate::template::Scope::new(
            templar.clone(),
            vec![Arc::new(vars), inherited.vars.clone()],
        );
        templar
            .render_str(text, &scope)
            .map(|v| v.to_string().trim().to_string())
            .map_err(|e| Error::invalid(doc.location(at), format!("in '{text}': {}", e.message)))
    }

    /// Handlers gathered by `include_role` at run time.
    pub fn take_handlers(&mut self) -> Vec<Arc<Task>> {
        std::mem::take(&mut self.handlers)
    }

    /// Role scopes loaded since the last call.
    pub fn take_role_scopes(&mut self) -> Vec<Arc<model::RoleScope>> {
        std::mem::take(&mut self.role_scopes)
    }
}

/// Loads a vars file (or a directory of them, merged in name order) into a mapping.
pub fn load_vars_path(path: &Path) -> Result<VarMap> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                action: "read directory",
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_vars_file(p))
            .collect();
        files.sort();
        let mut out = VarMap::new();
        for file in files {
            out.extend(load_vars_path(&file)?);
        }
        return Ok(out);
    }
    let doc = yaml::load_file(path)?;
    match &doc.root.kind {
        NodeKind::Null => Ok(VarMap::new()),
        NodeKind::Map(_) => task::var_map(&doc, &doc.root, "vars file"),
        _ => Err(Error::invalid(
            doc.location(&doc.root),
            format!(
                "a vars file must be a mapping of variable names to values, not {}",
                doc.root.type_name()
            ),
        )),
    }
}

/// Files Ansible reads as vars: YAML or JSON, or no extension at all.
pub fn is_vars_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.') || name.ends_with('~') {
        return false;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("yml" | "yaml" | "json") => true,
        None => path.is_file(),
        _ => false,
    }
}
