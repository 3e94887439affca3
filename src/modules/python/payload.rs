//! The controller's share of running an Ansible module through Python: a Python that has
//! ansible-core, the module's AnsiballZ payload built by ansible-core's own builder
//! (`build_payload.py`, shipped inside kiln), and each payload kept for the rest of the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// The helper run with the controller's Python.
const HELPER: &str = include_str!("build_payload.py");
/// Where the payload expects its arguments (a Python expression giving the JSON text).
pub const PARAMS_MARK: &str = "KILN_MODULE_PARAMS";
/// The ansible-core that `scripts/setup` installs for the compatibility tests.
const SETUP_VENV_PYTHON: &str = "/var/cache/kiln-test/ansible-venv/bin/python";

/// Where a module name is looked for: the `collections:` keyword in effect, `library/`
/// directories (the playbook's, the role's, `ANSIBLE_LIBRARY`) and collection roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ModuleSearch {
    pub collections: Vec<String>,
    pub library: Vec<PathBuf>,
    pub collections_path: Vec<PathBuf>,
}

impl ModuleSearch {
    /// Whether `name` (as a task writes it) names a module here: a `.py` file in a `library/`
    /// directory, or in a collection (by its FQCN, or its short name through `collections:`).
    /// The payload builder resolves it again as ansible-core does, redirects included.
    pub fn finds(&self, name: &str) -> bool {
        if name.contains('/') || name.is_empty() {
            return false;
        }
        if name.matches('.').count() >= 2 {
            return self.in_collection(name);
        }
        self.library
            .iter()
            .any(|dir| dir.join(format!("{name}.py")).is_file())
            || self
                .collections
                .iter()
                .any(|collection| self.in_collection(&format!("{collection}.{name}")))
    }

    /// Whether a collection on the path has the module `ns.coll.name` (`name` may hold
    /// dots for subdirectories), or routes that name elsewhere in its `meta/runtime.yml`.
    fn in_collection(&self, fqcn: &str) -> bool {
        let mut parts = fqcn.splitn(3, '.');
        let (Some(namespace), Some(collection), Some(module)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if matches!(namespace, "ansible") && matches!(collection, "builtin" | "legacy") {
            // ansible-core's own modules are the registry's rows.
            return false;
        }
        self.collections_path.iter().any(|root| {
            let dir = root
                .join("ansible_collections")
                .join(namespace)
                .join(collection);
            let file = dir
                .join("plugins/modules")
                .join(format!("{}.py", module.replace('.', "/")));
            file.is_file()
                || std::fs::read_to_string(dir.join("meta/runtime.yml"))
                    .is_ok_and(|routing| routing.contains(&format!("{module}:")))
        })
    }

    /// The directory of a role in a collection (`ns.coll.role`), if one is on the path.
    pub fn collection_role(&self, fqcn: &str) -> Option<PathBuf> {
        let mut parts = fqcn.splitn(3, '.');
        let (namespace, collection, role) = (parts.next()?, parts.next()?, parts.next()?);
        if role.contains(['.', '/']) || namespace.contains('/') || collection.contains('/') {
            return None;
        }
        self.collections_path
            .iter()
            .map(|root| {
                root.join("ansible_collections")
                    .join(namespace)
                    .join(collection)
                    .join("roles")
                    .join(role)
            })
            .find(|dir| dir.is_dir())
    }
}

/// One module's payload, its arguments still a mark.
#[derive(Debug)]
pub struct Payload {
    pub fqcn: String,
    pub script: String,
    pub ansible_version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("module '{module}' is not one of kiln's native modules, and running it through Python needs ansible-core on the controller: none was found (set KILN_ANSIBLE_PYTHON to a Python that has it, e.g. a virtualenv's bin/python after `pip install ansible-core`, or put ansible-core's `ansible` on PATH)")]
    NoAnsible { module: String },
    #[error("module '{module}': {message}")]
    Build { module: String, message: String },
}

#[derive(Serialize)]
struct Request<'a> {
    name: &'a str,
    #[serde(flatten)]
    search: &'a ModuleSearch,
}

#[derive(Deserialize)]
struct Reply {
    error: Option<String>,
    fqcn: Option<String>,
    payload: Option<String>,
    ansible_version: Option<String>,
}

type Cache = Mutex<HashMap<(String, ModuleSearch), Arc<Payload>>>;

/// The payload for `name` as `search` resolves it, built once per run.
pub async fn payload(name: &str, search: &ModuleSearch) -> Result<Arc<Payload>, PayloadError> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    // Held while building: hosts reaching the same module wait for one build.
    let mut cache = CACHE.get_or_init(Default::default).lock().await;
    let key = (name.to_string(), search.clone());
    if let Some(found) = cache.get(&key) {
        return Ok(found.clone());
    }
    let built = Arc::new(build(name, search).await?);
    cache.insert(key, built.clone());
    Ok(built)
}

async fn build(name: &str, search: &ModuleSearch) -> Result<Payload, PayloadError> {
    let build_error = |message: String| PayloadError::Build {
        module: name.to_string(),
        message,
    };
    let python = controller_python().ok_or_else(|| PayloadError::NoAnsible {
        module: name.to_string(),
    })?;
    let request =
        serde_json::to_vec(&Request { name, search }).map_err(|e| build_error(e.to_string()))?;
    let mut child = tokio::process::Command::new(python)
        .arg("-c")
        .arg(HELPER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| build_error(format!("starting {}: {e}", python.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&request)
            .await
            .map_err(|e| build_error(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| build_error(e.to_string()))?;
    let reply: Reply = serde_json::from_slice(&out.stdout).map_err(|_| {
        build_error(format!(
            "ansible-core's payload builder ({}) failed: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    match reply {
        Reply {
            error: None,
            fqcn: Some(fqcn),
            payload: Some(script),
            ansible_version,
        } if script.contains(PARAMS_MARK) => Ok(Payload {
            fqcn,
            script,
            ansible_version: ansible_version.unwrap_or_default(),
        }),
        Reply { error, .. } => {
            Err(build_error(error.unwrap_or_else(|| {
                "the payload builder gave no payload".to_string()
            })))
        }
    }
}

/// The controller's Python with ansible-core: `KILN_ANSIBLE_PYTHON`, else the interpreter of
/// the `ansible` command on PATH, else the virtualenv `scripts/setup` installs.
fn controller_python() -> Option<&'static Path> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("KILN_ANSIBLE_PYTHON") {
                return Some(PathBuf::from(path));
            }
            let on_path = std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("ansible"))
                    .find(|p| p.is_file())
            });
            on_path
                .and_then(|ansible| shebang_interpreter(&ansible))
                .or_else(|| {
                    let venv = PathBuf::from(SETUP_VENV_PYTHON);
                    venv.is_file().then_some(venv)
                })
        })
        .as_deref()
}

/// The interpreter a script's `#!` line names, when it is a Python.
fn shebang_interpreter(script: &Path) -> Option<PathBuf> {
    let text = std::fs::read(script).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?;
    let mut words = line.split_whitespace();
    let program = words.next()?;
    // `#!/usr/bin/env python3`
    let interpreter = if program.ends_with("/env") {
        words.next()?
    } else {
        program
    };
    interpreter
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("python"))
        .then(|| PathBuf::from(interpreter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_found_by_fqcn_library_and_collections_keyword() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("collections");
        let coll = root.join("ansible_collections/acme/tools");
        std::fs::create_dir_all(coll.join("plugins/modules")).unwrap();
        std::fs::create_dir_all(coll.join("roles/web")).unwrap();
        std::fs::create_dir_all(coll.join("meta")).unwrap();
        std::fs::write(coll.join("plugins/modules/greet.py"), "").unwrap();
        std::fs::write(
            coll.join("meta/runtime.yml"),
            "plugin_routing:\n  modules:\n    old_greet:\n      redirect: acme.tools.greet\n",
        )
        .unwrap();
        let library = dir.path().join("library");
        std::fs::create_dir_all(&library).unwrap();
        std::fs::write(library.join("local_thing.py"), "").unwrap();
        let mut search = ModuleSearch {
            collections: vec![],
            library: vec![library],
            collections_path: vec![root],
        };
        assert!(search.finds("acme.tools.greet"));
        assert!(search.finds("acme.tools.old_greet"));
        assert!(!search.finds("acme.tools.nothing"));
        assert!(!search.finds("ansible.builtin.greet"));
        assert!(search.finds("local_thing"));
        assert!(!search.finds("greet"));
        search.collections = vec!["acme.tools".into()];
        assert!(search.finds("greet"));
        assert!(search.collection_role("acme.tools.web").is_some());
        assert!(search.collection_role("acme.tools.db").is_none());
        assert!(search.collection_role("acme.tools.../x").is_none());
    }

    #[test]
    fn the_interpreter_comes_from_the_shebang() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("ansible");
        for (line, want) in [
            (
                "#!/opt/venv/bin/python3.11\n",
                Some("/opt/venv/bin/python3.11"),
            ),
            ("#!/usr/bin/env python3\n", Some("python3")),
            ("#!/bin/sh\n", None),
            ("no shebang\n", None),
        ] {
            std::fs::write(&script, line).unwrap();
            assert_eq!(
                shebang_interpreter(&script),
                want.map(PathBuf::from),
                "{line}"
            );
        }
    }
}
