//! `include_vars` as Ansible's action: one file found beside the role or task, or a directory
//! walked in sorted order (`depth`, `files_matching`, `ignore_files`, `extensions`,
//! `ignore_unknown_extensions`), the variables optionally under `name` and merged into the
//! existing ones with `hash_behaviour: merge`.

use std::path::{Path, PathBuf};

use minijinja::value::ValueKind;
use minijinja::Value;

use super::actions::{entries, ActionResult, VarLevel};
use super::vars::{search_paths, PlayLayers};
use crate::load::model::{Task, VarMap};
use crate::modules::ModuleResult;
use crate::template::Scope;

const DIR_OPTIONS: &[&str] = &[
    "dir",
    "depth",
    "files_matching",
    "ignore_files",
    "extensions",
    "ignore_unknown_extensions",
];
const FILE_OPTIONS: &[&str] = &["file", "_raw_params"];
const COMMON_OPTIONS: &[&str] = &["name", "hash_behaviour"];

/// How a directory is read: which of its files are variables files.
#[derive(Debug, Default)]
struct DirRules {
    depth: usize,
    files_matching: Option<regex::Regex>,
    ignore_files: Vec<regex::Regex>,
    extensions: Vec<String>,
    ignore_unknown_extensions: bool,
}

/// A failure, reported as Ansible's action does: under `message` (and kiln's `msg`).
fn failure(message: String, included: &[String]) -> ActionResult {
    let mut result = ModuleResult::failed(message.clone());
    result.data.insert("message".into(), Value::from(message));
    result.data.insert(
        "ansible_included_var_files".into(),
        Value::from(included.to_vec()),
    );
    result.into()
}

pub fn include_vars(args: &Value, task: &Task, play: &PlayLayers, scope: &Scope) -> ActionResult {
    let map: VarMap = entries(args).into_iter().collect();
    let unknown = map.keys().find(|k| {
        ![DIR_OPTIONS, FILE_OPTIONS, COMMON_OPTIONS]
            .iter()
            .any(|options| options.contains(&k.as_str()))
    });
    if let Some(option) = unknown {
        return failure(
            format!("{option} is not a valid option in include_vars"),
            &[],
        );
    }
    let has = |options: &[&str]| map.keys().any(|k| options.contains(&k.as_str()));
    if has(DIR_OPTIONS) && has(FILE_OPTIONS) {
        return failure(
            "You are mixing file only and dir only arguments, these are incompatible".into(),
            &[],
        );
    }
    let text = |key: &str| {
        map.get(key)
            .filter(|v| !v.is_none() && !v.is_undefined())
            .map(|v| v.to_string())
    };
    let loaded = match text("dir") {
        Some(dir) => match dir_rules(&map) {
            Ok(rules) => load_dir(&source_dir(&dir, task), &rules),
            Err(message) => Err((message, Vec::new())),
        },
        None => {
            let file = text("file").or_else(|| text("_raw_params"));
            load_file(
                file.as_deref().map(|f| f.trim_end_matches('\n')),
                task,
                play,
            )
        }
    };
    let (mut vars, included) = match loaded {
        Ok(loaded) => loaded,
        Err((message, included)) => return failure(message, &included),
    };
    if let Some(name) = text("name") {
        vars = VarMap::from([(name, crate::template::map_value(vars))]);
    }
    if text("hash_behaviour").as_deref() == Some("merge") {
        for (key, value) in vars.iter_mut() {
            if let Some(existing) = scope.get(key).filter(|v| v.kind() == ValueKind::Map) {
                *value = crate::template::filters::merge(&existing, value, true);
            }
        }
    }
    let mut result = ModuleResult::changed(false);
    result
        .data
        .insert("ansible_included_var_files".into(), Value::from(included));
    ActionResult::defining(result, vars, VarLevel::IncludeVars)
}

type Loaded = Result<(VarMap, Vec<String>), (String, Vec<String>)>;

/// One file, looked up as Ansible's `_find_needle('vars', …)`; any extension is read.
fn load_file(file: Option<&str>, task: &Task, play: &PlayLayers) -> Loaded {
    let not_found = |name: Option<&str>| {
        let what = match name {
            Some(name) => format!("Could not find or access '{name}'"),
            None => "Could not find file".to_string(),
        };
        format!("{what} on the Ansible Controller.\nIf you are using a module and expect the file to exist on the remote, see the remote_src option")
    };
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        return Err((not_found(None), Vec::new()));
    };
    let candidates: Vec<PathBuf> = if file.starts_with('/') {
        vec![file.into()]
    } else {
        search_paths(task, play)
            .iter()
            .flat_map(|d| [d.join("vars").join(file), d.join(file)])
            .collect()
    };
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err((not_found(Some(file)), Vec::new()));
    };
    match crate::load::load_vars_path(path) {
        Ok(vars) => Ok((vars, vec![path.display().to_string()])),
        Err(e) => Err((e.to_string(), Vec::new())),
    }
}

/// Where `dir` is: under the role's `vars/` (a `vars/…` path that exists is taken from the
/// role itself), or beside the task's file outside a role.
fn source_dir(dir: &str, task: &Task) -> PathBuf {
    match &task.inherited.role {
        Some(role) => {
            let direct = role.path.join(dir);
            if dir.split('/').next() == Some("vars") && direct.exists() {
                direct
            } else if dir.split('/').next() == Some("vars") {
                PathBuf::from(dir)
            } else {
                role.path.join("vars").join(dir)
            }
        }
        None => task
            .location
            .file
            .parent()
            .map(|parent| parent.join(dir))
            .unwrap_or_else(|| PathBuf::from(dir)),
    }
}

fn dir_rules(map: &VarMap) -> Result<DirRules, String> {
    let regex = |pattern: &str| {
        regex::Regex::new(pattern).map_err(|_| format!("Invalid regular expression: {pattern}"))
    };
    let words = |value: &Value| -> Vec<String> {
        match value.kind() {
            ValueKind::Seq => crate::value::list_of(value)
                .iter()
                .map(|v| v.to_string())
                .collect(),
            _ => value
                .to_string()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        }
    };
    let set = |key: &str| map.get(key).filter(|v| !v.is_none() && !v.is_undefined());
    let depth = match set("depth") {
        None => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| format!("depth must be a number, not {v}"))?,
    };
    let files_matching = set("files_matching")
        .map(|v| regex(&v.to_string()))
        .transpose()?;
    let ignore_files = match set("ignore_files") {
        Some(v) if v.kind() == ValueKind::Map => return Err(format!("{v} must be a list")),
        Some(v) => words(v)
            .iter()
            .map(|p| regex(&format!("(?:{p})$")))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let extensions = match set("extensions") {
        None => vec!["yaml".into(), "yml".into(), "json".into()],
        Some(v) if v.kind() == ValueKind::Seq => words(v),
        Some(v) if v.kind() == ValueKind::String => {
            // Python's list() of a string: its characters.
            v.to_string().chars().map(String::from).collect()
        }
        Some(_) => return Err("Invalid type for \"extensions\" option, it must be a list".into()),
    };
    let ignore_unknown_extensions = set("ignore_unknown_extensions")
        .map(|v| crate::value::bool_of(v).unwrap_or(false))
        .unwrap_or(false);
    Ok(DirRules {
        depth,
        files_matching,
        ignore_files,
        extensions,
        ignore_unknown_extensions,
    })
}

/// Every directory under `root` (following links), each with its files, sorted by path as
/// Ansible sorts its walk; directories deeper than `depth` (0: any depth) are left out.
fn walk(root: &Path, depth: usize) -> Vec<(PathBuf, Vec<String>)> {
    fn visit(
        dir: &Path,
        level: usize,
        seen: &mut Vec<PathBuf>,
        out: &mut Vec<(PathBuf, Vec<String>)>,
        depth: usize,
    ) {
        // A link back up the tree would otherwise be walked forever.
        if let Ok(real) = dir.canonicalize() {
            if seen.contains(&real) {
                return;
            }
            seen.push(real);
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        files.sort();
        if depth == 0 || level <= depth {
            out.push((dir.to_path_buf(), files));
        }
        for sub in dirs {
            visit(&sub, level + 1, seen, out, depth);
        }
    }
    let mut out = Vec::new();
    visit(root, 1, &mut Vec::new(), &mut out, depth);
    out.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    out
}

/// Whether a file's extension (the text after its last dot, "" for none) is one of `extensions`.
fn has_valid_extension(name: &str, extensions: &[String]) -> bool {
    // Python's splitext: a leading dot does not start an extension.
    let stem_start = name.len() - name.trim_start_matches('.').len();
    let extension = name[stem_start..]
        .rfind('.')
        .map(|at| &name[stem_start + at + 1..])
        .unwrap_or("");
    extensions.iter().any(|e| e == extension)
}

fn load_dir(root: &Path, rules: &DirRules) -> Loaded {
    if !root.exists() {
        return Err((
            format!("{} directory does not exist", root.display()),
            Vec::new(),
        ));
    }
    if !root.is_dir() {
        return Err((format!("{} is not a directory", root.display()), Vec::new()));
    }
    let mut vars = VarMap::new();
    let mut included = Vec::new();
    for (dir, files) in walk(root, rules.depth) {
        for name in files {
            let path = dir.join(&name);
            let matching = rules
                .files_matching
                .as_ref()
                .is_none_or(|m| m.is_match(&name));
            let ignored = rules.ignore_files.iter().any(|p| p.is_match(&name));
            let valid = has_valid_extension(&name, &rules.extensions);
            if !matching || ignored || !path.exists() || (rules.ignore_unknown_extensions && !valid)
            {
                continue;
            }
            if !valid {
                let message = format!(
                    "{} does not have a valid extension: {}",
                    path.display(),
                    rules.extensions.join(", ")
                );
                return Err((message, included));
            }
            match crate::load::load_vars_path(&path) {
                Ok(loaded) => vars.extend(loaded),
                Err(e) => return Err((e.to_string(), included)),
            }
            included.push(path.display().to_string());
        }
    }
    Ok((vars, included))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(extensions: &[&str], ignore_unknown_extensions: bool) -> DirRules {
        DirRules {
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
            ignore_unknown_extensions,
            ..DirRules::default()
        }
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("all/all.yml", "a: 1\nbase: all\n"),
            ("env/dev/all.yml", "base: env\n"),
            ("env/dev/deep/web.yml", "web: 1\n"),
            ("web/no_extension", "plain: 1\n"),
            ("web/notes.txt", "not: vars\n"),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn names(root: &Path, included: &[String]) -> Vec<String> {
        included
            .iter()
            .map(|p| {
                p.strip_prefix(&format!("{}/", root.display()))
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_directory_is_read_in_sorted_order_and_unknown_extensions_fail_or_are_skipped() {
        let dir = tree();
        let (vars, included) = load_dir(dir.path(), &rules(&["", "yml"], true)).unwrap();
        assert_eq!(
            names(dir.path(), &included),
            [
                "all/all.yml",
                "env/dev/all.yml",
                "env/dev/deep/web.yml",
                "web/no_extension"
            ]
        );
        assert_eq!(vars["base"].to_string(), "env");
        assert!(vars.contains_key("plain"));

        let (message, _) = load_dir(dir.path(), &rules(&["yml"], false)).unwrap_err();
        assert!(
            message.contains("does not have a valid extension: yml"),
            "{message}"
        );
        let (_, included) = load_dir(dir.path(), &rules(&["yml"], true)).unwrap();
        assert_eq!(included.len(), 3);
    }

    #[test]
    fn depth_matching_and_ignored_files_narrow_the_walk() {
        let dir = tree();
        let mut narrow = rules(&["yml"], true);
        narrow.depth = 3;
        narrow.ignore_files = vec![regex::Regex::new("(?:all.yml)$").unwrap()];
        let (_, included) = load_dir(dir.path(), &narrow).unwrap();
        assert_eq!(names(dir.path(), &included), Vec::<String>::new());
        narrow.depth = 4;
        let (_, included) = load_dir(dir.path(), &narrow).unwrap();
        assert_eq!(names(dir.path(), &included), ["env/dev/deep/web.yml"]);
        let mut matching = rules(&["yml"], true);
        matching.files_matching = Some(regex::Regex::new("^all").unwrap());
        let (_, included) = load_dir(dir.path(), &matching).unwrap();
        assert_eq!(
            names(dir.path(), &included),
            ["all/all.yml", "env/dev/all.yml"]
        );
    }

    #[test]
    fn extensions_are_read_as_pythons_splitext_does() {
        let exts = |list: &[&str]| list.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert!(has_valid_extension("a.yml", &exts(&["yml"])));
        assert!(has_valid_extension("plain", &exts(&[""])));
        assert!(has_valid_extension(".hidden", &exts(&[""])));
        assert!(!has_valid_extension("a.tar.gz", &exts(&["tar.gz"])));
        assert!(!has_valid_extension("a.txt", &exts(&["yml"])));
    }
}
