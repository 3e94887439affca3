//! Playbooks and plays, with `import_playbook` expanded.

use std::path::Path;
use std::sync::Arc;

use super::model::{Inherited, Play, Playbook, Strategy, TaskItem};
use super::role::RoleRequest;
use super::task::{apply_common_keywords, bool_of, string_or_list, strings, var_map};
use super::yaml::{load_file, Document, Node, NodeKind};
use super::Loader;
use crate::error::{did_you_mean, Error, Result};

const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "pre_tasks",
    "roles",
    "tasks",
    "post_tasks",
    "handlers",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "serial",
    "any_errors_fatal",
    "max_fail_percentage",
    "environment",
    "tags",
    "remote_user",
    "connection",
    "strategy",
    "order",
    "check_mode",
    "diff",
    "no_log",
    "ignore_errors",
    "ignore_unreachable",
    "module_defaults",
    "collections",
    "force_handlers",
    "port",
    "run_once",
    "throttle",
    "timeout",
    "debugger",
    "when",
];

impl Loader {
    pub fn load_playbook(&mut self, path: &Path) -> Result<Playbook> {
        let mut plays = Vec::new();
        self.load_playbook_into(path, &mut plays, 0)?;
        Ok(Playbook {
            path: path.to_path_buf(),
            plays,
        })
    }

    fn load_playbook_into(
        &mut self,
        path: &Path,
        plays: &mut Vec<Arc<Play>>,
        depth: usize,
    ) -> Result<()> {
        let doc = load_file(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let entries =
            match &doc.root.kind {
                NodeKind::Seq(entries) => entries.clone(),
                NodeKind::Null => vec![],
                _ => return Err(Error::invalid(
                    doc.location(&doc.root),
                    "a playbook must be a YAML list of plays (each starting with '- hosts: ...')",
                )),
            };
        for entry in &entries {
            if entry.as_map().is_none() {
                return Err(Error::invalid(
                    doc.location(entry),
                    format!("each play must be a mapping, not {}", entry.type_name()),
                ));
            }
            if let Some(target) = entry
                .get("import_playbook")
                .or_else(|| entry.get("ansible.builtin.import_playbook"))
            {
                let file = target.as_str().ok_or_else(|| {
                    Error::invalid(doc.location(target), "'import_playbook' needs a file name")
                })?;
                if depth > 32 {
                    return Err(Error::invalid(
                        doc.location(target),
                        "'import_playbook' nests too deeply (a playbook imports itself?)",
                    ));
                }
                let imported = dir.join(file);
                if !imported.is_file() {
                    return Err(Error::invalid(
                        doc.location(target),
                        format!("'import_playbook' could not find {}", imported.display()),
                    ));
                }
                self.load_playbook_into(&imported, plays, depth + 1)?;
                continue;
            }
            plays.push(Arc::new(self.load_play(&doc, entry, &dir)?));
        }
        Ok(())
    }

    fn load_play(&mut self, doc: &Document, map: &Node, dir: &Path) -> Result<Play> {
        for (key, _) in map.as_map().unwrap_or_default() {
            let name = key.as_str().unwrap_or_default();
            if !PLAY_KEYWORDS.contains(&name) {
                return Err(Error::invalid(
                    doc.location(key),
                    format!(
                        "unknown play keyword '{name}'{}",
                        did_you_mean(name, PLAY_KEYWORDS.iter().copied())
                    ),
                ));
            }
        }
        let hosts = match map.get("hosts") {
            Some(node) => match &node.kind {
                NodeKind::Seq(items) => items
                    .iter()
                    .map(|i| i.to_value().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
                NodeKind::Null => String::new(),
                _ => node.to_value().to_string(),
            },
            None => {
                return Err(Error::invalid(
                    doc.location(map),
                    "this play has no 'hosts:' (say which hosts it runs on, e.g. 'hosts: all')",
                ))
            }
        };
        self.handlers.clear();
        self.roles_applied.clear();
        self.role_scopes.clear();

        let base = Inherited {
            module_search: self.module_search.clone(),
            ..Default::default()
        };
        let mut inherited = apply_common_keywords(doc, map, &base)?;
        // Play vars are their own precedence level, below block and task vars.
        inherited.vars = Default::default();
        let play_vars = match map.get("vars") {
            Some(node) => var_map(doc, node, "vars")?,
            None => Default::default(),
        };

        let section = |loader: &mut Loader, key: &str| -> Result<Vec<TaskItem>> {
            match map.get(key) {
                Some(node) => loader.load_task_list(doc, node, dir, &inherited),
                None => Ok(vec![]),
            }
        };
        let pre_tasks = section(self, "pre_tasks")?;
        let mut main = Vec::new();
        if let Some(roles) = map.get("roles") {
            let Some(entries) = roles.as_seq() else {
                return Err(Error::invalid(
                    doc.location(roles),
                    "'roles' must be a list",
                ));
            };
            for entry in entries {
                let request = RoleRequest::from_entry(doc, entry)?;
                let role_inherited = match entry.as_map() {
                    Some(_) => {
                        let mut with_keywords = apply_common_keywords(doc, entry, &inherited)?;
                        // A role entry's `vars:` are role parameters, not task vars.
                        with_keywords.vars = inherited.vars.clone();
                        with_keywords
                    }
                    None => inherited.clone(),
                };
                main.extend(self.load_role(&request, &role_inherited, doc, entry)?);
            }
        }
        main.extend(section(self, "tasks")?);
        let post_tasks = section(self, "post_tasks")?;
        let mut handlers = std::mem::take(&mut self.handlers);
        if let Some(node) = map.get("handlers") {
            handlers.extend(self.load_handlers(doc, node, dir, &inherited)?);
        }

        let gather_facts = match map.get("gather_facts") {
            Some(node) => Some(bool_of(doc, node, "gather_facts")?),
            None => None,
        };
        let gather_subset = match map.get("gather_subset") {
            Some(node) => Some(strings(doc, node, "gather_subset")?),
            None => None,
        };
        let force_handlers = match map.get("force_handlers") {
            Some(node) => Some(bool_of(doc, node, "force_handlers")?),
            None => None,
        };
        let serial = match map.get("serial") {
            Some(node) => string_or_list(doc, node, "serial")?,
            None => vec![],
        };
        let max_fail_percentage = map.get("max_fail_percentage").and_then(|n| match n.kind {
            NodeKind::Int(i) => Some(i as f64),
            NodeKind::Float(f) => Some(f),
            _ => n
                .as_str()
                .and_then(|s| s.trim_end_matches('%').parse().ok()),
        });
        Ok(Play {
            name: map
                .get("name")
                .map(|n| n.to_value().to_string())
                .unwrap_or_else(|| hosts.clone()),
            hosts,
            playbook_dir: self.playbook_dir.clone(),
            vars: Arc::new(play_vars),
            vars_files: match map.get("vars_files") {
                Some(node) => string_or_list(doc, node, "vars_files")?,
                None => vec![],
            },
            gather_facts,
            gather_subset,
            serial,
            any_errors_fatal: inherited.any_errors_fatal.unwrap_or(false),
            inherited: inherited.clone(),
            max_fail_percentage,
            force_handlers,
            strategy: map
                .get("strategy")
                .and_then(Node::as_str)
                .map(Strategy::named)
                .unwrap_or_default(),
            sections: vec![pre_tasks, main, post_tasks],
            handlers,
            roles: self.take_role_scopes(),
            location: doc.location(map),
        })
    }
}
