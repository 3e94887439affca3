//! Roles: finding them on the search path and loading their defaults, vars, dependencies,
//! tasks and handlers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{Inherited, RoleScope, TaskItem, VarMap};
use super::task::{apply_common_keywords, bool_of, strings};
use super::yaml::{Document, Node};
use super::{load_vars_path, Loader};
use crate::error::{Error, Result};
use crate::modules::python::ModuleSearch;

/// One use of a role: from a play's `roles:`, a dependency, or `import_role`/`include_role`.
#[derive(Debug, Clone, Default)]
pub struct RoleRequest {
    pub name: String,
    pub params: VarMap,
    pub tasks_from: String,
    pub handlers_from: String,
    pub vars_from: String,
    pub defaults_from: String,
}

/// Keys of a `roles:` entry that are keywords rather than role parameters.
const ROLE_ENTRY_KEYWORDS: &[&str] = &[
    "role",
    "name",
    "when",
    "tags",
    "vars",
    "become",
    "become_user",
    "become_method",
    "environment",
    "ignore_errors",
    "check_mode",
    "diff",
    "no_log",
    "delegate_to",
    "run_once",
    "any_errors_fatal",
    "remote_user",
    "collections",
    "module_defaults",
];

impl RoleRequest {
    /// A request for `name` with every `*_from` at `main`.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            tasks_from: "main".into(),
            handlers_from: "main".into(),
            vars_from: "main".into(),
            defaults_from: "main".into(),
            ..Default::default()
        }
    }

    /// A `roles:` entry or a `meta/main.yml` dependency: a name or a mapping.
    pub fn from_entry(doc: &Document, node: &Node) -> Result<Self> {
        if let Some(name) = node.as_str() {
            return Ok(Self::named(name));
        }
        let Some(entries) = node.as_map() else {
            return Err(Error::invalid(
                doc.location(node),
                "a role entry must be a name or a mapping with 'role:'",
            ));
        };
        let name = node
            .get("role")
            .or_else(|| node.get("name"))
            .and_then(Node::as_str)
            .ok_or_else(|| {
                Error::invalid(doc.location(node), "this role entry has no 'role:' name")
            })?;
        let mut request = Self::named(name);
        for (k, v) in entries {
            let Some(key) = k.key_text() else { continue };
            if !ROLE_ENTRY_KEYWORDS.contains(&key.as_str()) {
                request.params.insert(key, v.to_value());
            }
        }
        if let Some(vars) = node.get("vars") {
            request
                .params
                .extend(super::task::var_map(doc, vars, "vars")?);
        }
        Ok(request)
    }

    /// The argument of `import_role`/`include_role`.
    pub fn from_import(doc: &Document, node: &Node) -> Result<Self> {
        let name = node
            .get("name")
            .or_else(|| node.get("role"))
            .and_then(Node::as_str)
            .or_else(|| node.as_str().and_then(|s| s.strip_prefix("name=")))
            .ok_or_else(|| Error::invalid(doc.location(node), "'import_role' needs 'name:'"))?;
        let mut request = Self::named(name);
        for (field, key) in [
            (&mut request.tasks_from, "tasks_from"),
            (&mut request.handlers_from, "handlers_from"),
            (&mut request.vars_from, "vars_from"),
            (&mut request.defaults_from, "defaults_from"),
        ] {
            if let Some(v) = node.get(key).and_then(Node::as_str) {
                *field = v.to_string();
            }
        }
        Ok(request)
    }
}

impl Loader {
    /// Every directory a role named `name` is looked for in, in order.
    /// Each is normalised as Ansible's `unfrackpath` does, before it is looked at: `..` takes
    /// away the component before it even when that does not exist, so Molecule's
    /// `roles: [../../../]` finds the role from `molecule/default/roles/`.
    pub fn role_search_paths(&self, name: &str) -> Vec<PathBuf> {
        let mut paths = vec![self.playbook_dir.join("roles").join(name)];
        paths.extend(self.roles_path.iter().map(|p| p.join(name)));
        paths.push(self.playbook_dir.join(name));
        if Path::new(name).is_absolute() {
            paths.insert(0, PathBuf::from(name));
        }
        paths.iter().map(|p| lexically_normal(p)).collect()
    }

    pub fn find_role(&self, name: &str) -> Option<PathBuf> {
        self.role_search_paths(name)
            .into_iter()
            .find(|p| p.is_dir())
            .or_else(|| self.module_search.collection_role(name))
    }

    /// Loads a role: its dependencies first, then its own tasks; its handlers join the play's.
    pub fn load_role(
        &mut self,
        request: &RoleRequest,
        inherited: &Inherited,
        doc: &Document,
        at: &Node,
    ) -> Result<Vec<TaskItem>> {
        let templated;
        let request = if request.name.contains("{{") {
            templated = RoleRequest {
                name: self.render_at_load(&request.name, inherited, doc, at)?,
                ..request.clone()
            };
            &templated
        } else {
            request
        };
        let path = self.find_role(&request.name).ok_or_else(|| {
            let searched: Vec<String> = self.role_search_paths(&request.name).iter().map(|p| p.display().to_string()).collect();
            Error::invalid(
                doc.location(at),
                format!(
                    "role '{}' was not found; searched:\n  {}\n(put it in one of these, or add its parent directory to roles_path in ansible.cfg or ANSIBLE_ROLES_PATH)",
                    request.name,
                    searched.join("\n  ")
                ),
            )
        })?;
        let role_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| request.name.clone());

        let mut items = Vec::new();
        let mut allow_duplicates = false;
        if let Some(meta_path) = find_main(&path.join("meta"), "main") {
            let meta = super::yaml::load_file(&meta_path)?;
            if let Some(flag) = meta.root.get("allow_duplicates") {
                allow_duplicates = bool_of(&meta, flag, "allow_duplicates")?;
            }
            if let Some(deps) = meta.root.get("dependencies") {
                for dep in deps.as_seq().unwrap_or_default() {
                    let dep_request = RoleRequest::from_entry(&meta, dep)?;
                    let dep_inherited =
                        apply_common_keywords(&meta, dep, &without_role(inherited))?;
                    items.extend(self.nested(&meta, dep, |loader| {
                        loader.load_role(&dep_request, &dep_inherited, &meta, dep)
                    })?);
                }
            }
        }

        let identity = format!(
            "{}|{:?}|{}",
            path.display(),
            request.params,
            request.tasks_from
        );
        if !allow_duplicates && !self.roles_applied.insert(identity) {
            return Ok(items);
        }

        let defaults = match find_main(&path.join("defaults"), &request.defaults_from) {
            Some(p) => load_vars_path(&p)?,
            None => VarMap::new(),
        };
        let vars = match find_main(&path.join("vars"), &request.vars_from) {
            Some(p) => load_vars_path(&p)?,
            None => VarMap::new(),
        };
        let scope = Arc::new(RoleScope {
            name: role_name,
            path: path.clone(),
            defaults: Arc::new(defaults),
            vars: Arc::new(vars),
            params: Arc::new(request.params.clone()),
        });
        self.role_scopes.push(scope.clone());
        let mut role_inherited = inherited.clone();
        role_inherited.role = Some(scope);
        role_inherited.module_search = Arc::new(self.role_module_search(&path)?);

        if let Some(tasks) = find_main(&path.join("tasks"), &request.tasks_from) {
            items.extend(self.load_task_file(&tasks, &role_inherited)?);
        } else if request.tasks_from != "main" {
            return Err(Error::invalid(
                doc.location(at),
                format!(
                    "role '{}' has no tasks file '{}' in {}",
                    request.name,
                    request.tasks_from,
                    path.join("tasks").display()
                ),
            ));
        }
        if let Some(handlers) = find_main(&path.join("handlers"), &request.handlers_from) {
            let handlers_doc = super::yaml::load_file(&handlers)?;
            let dir = handlers.parent().map(Path::to_path_buf).unwrap_or_default();
            let loaded = self.load_handlers(
                &handlers_doc,
                &handlers_doc.root.clone(),
                &dir,
                &role_inherited,
            )?;
            self.handlers.extend(loaded);
        }
        Ok(items)
    }
}

impl Loader {
    /// Where a role's modules are found: its own `library/` first, and the collections its
    /// `meta/main.yml` lists (a play's `collections:` does not reach into roles), with the
    /// collection a role ships in first.
    fn role_module_search(&self, role: &Path) -> Result<ModuleSearch> {
        let mut search = (*self.module_search).clone();
        search.library.insert(0, role.join("library"));
        if let Some(meta_path) = find_main(&role.join("meta"), "main") {
            let meta = super::yaml::load_file(&meta_path)?;
            if let Some(node) = meta.root.get("collections") {
                search.collections = strings(&meta, node, "collections")?;
            }
        }
        // …/ansible_collections/<namespace>/<collection>/roles/<role>
        let parts: Vec<String> = role
            .components()
            .rev()
            .take(5)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if let [_, roles, collection, namespace, root] = parts.as_slice() {
            if roles == "roles" && root == "ansible_collections" {
                search
                    .collections
                    .insert(0, format!("{namespace}.{collection}"));
            }
        }
        Ok(search)
    }
}

/// Dependencies see their parent's keywords, but not its role scope.
fn without_role(inherited: &Inherited) -> Inherited {
    let mut out = inherited.clone();
    out.role = None;
    out
}

/// `dir/NAME.yml`, `.yaml`, `.json`, no extension, or a `dir/NAME/` directory.
pub fn find_main(dir: &Path, name: &str) -> Option<PathBuf> {
    if !dir.is_dir() {
        return None;
    }
    let candidates = [
        format!("{name}.yml"),
        format!("{name}.yaml"),
        format!("{name}.json"),
        name.to_string(),
    ];
    candidates.iter().map(|c| dir.join(c)).find(|p| p.exists())
}

/// `path` with `.` and `..` resolved on its text (Python's `os.path.normpath`).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_role_climbs_from_the_playbooks_roles_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let project = dir.path().join("ansible-timezone");
        let scenario = project.join("molecule/default");
        std::fs::create_dir_all(&scenario).expect("mkdir");
        let loader = Loader::new(scenario, vec![]);
        assert_eq!(loader.find_role("../../../"), Some(project));
        assert_eq!(
            lexically_normal(Path::new("/a/b/roles/../../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
