//! Task lists: tasks, blocks, and the static imports (`import_tasks`, `import_role`) that are
//! expanded while loading.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::{Block, Inherited, Task, TaskItem};
use super::role::RoleRequest;
use super::task::{apply_common_keywords, parse_task};
use super::yaml::{load_file, Document, Node, NodeKind};
use super::Loader;
use crate::error::{Error, Result};
use crate::modules::registry::{self, Kind, RunnerAction};

const BLOCK_KEYWORDS: &[&str] = &[
    "block",
    "rescue",
    "always",
    "name",
    "when",
    "tags",
    "vars",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "ignore_errors",
    "ignore_unreachable",
    "environment",
    "check_mode",
    "diff",
    "no_log",
    "delegate_to",
    "run_once",
    "any_errors_fatal",
    "remote_user",
    "module_defaults",
    "collections",
    "throttle",
    "connection",
    "port",
    "debugger",
    "timeout",
    "notify",
];

impl Loader {
    /// Loads a task file (`tasks/main.yml`, an `import_tasks` target).
    pub fn load_task_file(&mut self, path: &Path, inherited: &Inherited) -> Result<Vec<TaskItem>> {
        let doc = load_file(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.nested(&doc, &doc.root, |loader| {
            loader.load_task_list(&doc, &doc.root.clone(), &dir, inherited)
        })
    }

    /// Runs a nested load, refusing to go on forever around a cycle.
    pub(crate) fn nested<T>(
        &mut self,
        doc: &Document,
        at: &Node,
        load: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        if self.nesting >= super::MAX_NESTING {
            return Err(Error::invalid(
                doc.location(at),
                "task files and roles nest too deeply: a role depends on itself, or a task file imports itself",
            ));
        }
        self.nesting += 1;
        let result = load(self);
        self.nesting -= 1;
        result
    }

    /// Loads a YAML list of tasks and blocks.
    pub fn load_task_list(
        &mut self,
        doc: &Document,
        node: &Node,
        dir: &Path,
        inherited: &Inherited,
    ) -> Result<Vec<TaskItem>> {
        let items = match &node.kind {
            NodeKind::Null => return Ok(vec![]),
            NodeKind::Seq(items) => items,
            _ => {
                return Err(Error::invalid(
                    doc.location(node),
                    format!(
                        "a task list must be a YAML list of tasks, not {}",
                        node.type_name()
                    ),
                ))
            }
        };
        let mut out = Vec::new();
        for item in items {
            if item.as_map().is_none() {
                return Err(Error::invalid(
                    doc.location(item),
                    format!(
                        "each task must be a mapping (such as '- name: ...'), not {}",
                        item.type_name()
                    ),
                ));
            }
            out.extend(self.load_task_entry(doc, item, dir, inherited)?);
        }
        Ok(out)
    }

    fn load_task_entry(
        &mut self,
        doc: &Document,
        map: &Node,
        dir: &Path,
        inherited: &Inherited,
    ) -> Result<Vec<TaskItem>> {
        if map.get("block").is_some() {
            return Ok(vec![TaskItem::Block(Arc::new(
                self.load_block(doc, map, dir, inherited)?,
            ))]);
        }
        match static_import(map) {
            Some((RunnerAction::ImportTasks, target)) => {
                let inherited = apply_common_keywords(doc, map, inherited)?;
                let file = target
                    .as_str()
                    .or_else(|| target.get("file").and_then(Node::as_str))
                    .ok_or_else(|| {
                        Error::invalid(doc.location(target), "'import_tasks' needs a file name")
                    })?;
                let rendered;
                let file = if file.contains("{{") {
                    rendered = self.render_at_load(file, &inherited, doc, target)?;
                    rendered.as_str()
                } else {
                    file
                };
                let path = self.resolve_task_file(file, dir, &inherited);
                if !path.is_file() {
                    return Err(Error::invalid(
                        doc.location(target),
                        format!("'import_tasks' could not find {}", path.display()),
                    ));
                }
                return self.load_task_file(&path, &inherited);
            }
            Some((RunnerAction::ImportRole, spec)) => {
                let inherited = apply_common_keywords(doc, map, inherited)?;
                let request = RoleRequest::from_import(doc, spec)?;
                let loaded = self.load_role(&request, &inherited, doc, spec)?;
                return Ok(loaded);
            }
            _ => {}
        }
        Ok(vec![TaskItem::Task(Arc::new(parse_task(
            doc, map, inherited,
        )?))])
    }

    fn load_block(
        &mut self,
        doc: &Document,
        map: &Node,
        dir: &Path,
        inherited: &Inherited,
    ) -> Result<Block> {
        for (key, _) in map.as_map().unwrap_or_default() {
            let name = key.as_str().unwrap_or_default();
            if !BLOCK_KEYWORDS.contains(&name) {
                return Err(Error::invalid(
                    doc.location(key),
                    format!(
                        "unknown block keyword '{name}'{}",
                        crate::error::did_you_mean(name, BLOCK_KEYWORDS.iter().copied())
                    ),
                ));
            }
        }
        let inherited = apply_common_keywords(doc, map, inherited)?;
        let mut section = |key: &str| -> Result<Vec<TaskItem>> {
            match map.get(key) {
                Some(node) => self.load_task_list(doc, node, dir, &inherited),
                None => Ok(vec![]),
            }
        };
        Ok(Block {
            name: map.get("name").map(|n| n.to_value().to_string()),
            tasks: section("block")?,
            rescue: section("rescue")?,
            always: section("always")?,
            location: doc.location(map),
        })
    }

    /// Where a relative task file lives: next to the including file, then in the role's
    /// `tasks/`, then beside the playbook.
    pub fn resolve_task_file(&self, file: &str, dir: &Path, inherited: &Inherited) -> PathBuf {
        let candidates = [
            Some(dir.join(file)),
            inherited
                .role
                .as_ref()
                .map(|r| r.path.join("tasks").join(file)),
            Some(self.playbook_dir.join(file)),
        ];
        candidates
            .iter()
            .flatten()
            .find(|p| p.is_file())
            .cloned()
            .unwrap_or_else(|| dir.join(file))
    }

    /// Loads handlers: a task list whose tasks are run by name or `listen` topic.
    pub fn load_handlers(
        &mut self,
        doc: &Document,
        node: &Node,
        dir: &Path,
        inherited: &Inherited,
    ) -> Result<Vec<Arc<Task>>> {
        let items = self.load_task_list(doc, node, dir, inherited)?;
        let mut out = Vec::new();
        flatten_tasks(&items, &mut out);
        Ok(out)
    }
}

/// All tasks of a list, blocks opened (handlers cannot use rescue/always meaningfully).
pub fn flatten_tasks(items: &[TaskItem], out: &mut Vec<Arc<Task>>) {
    for item in items {
        match item {
            TaskItem::Task(task) => out.push(task.clone()),
            TaskItem::Block(block) => {
                flatten_tasks(&block.tasks, out);
                flatten_tasks(&block.rescue, out);
                flatten_tasks(&block.always, out);
            }
        }
    }
}

/// The static import a task entry names (`import_tasks` or `import_role`, by any of their
/// names), with its argument node.
fn static_import(map: &Node) -> Option<(RunnerAction, &Node)> {
    map.as_map()
        .unwrap_or_default()
        .iter()
        .find_map(
            |(key, value)| match registry::resolve(key.as_str()?)?.kind {
                Kind::Runner(action @ (RunnerAction::ImportTasks | RunnerAction::ImportRole)) => {
                    Some((action, value))
                }
                _ => None,
            },
        )
}
