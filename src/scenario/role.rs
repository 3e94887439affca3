//! The role under test and the names playbooks reach it by: its directory's name and, as
//! Molecule arranges it, its Galaxy name (`meta/main.yml`'s `galaxy_info.namespace` and
//! `role_name`), each a link in a roles directory of the run's own.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::yaml::Node;

pub struct Role {
    /// The role's directory, absolute.
    pub dir: PathBuf,
    /// Every name it is reachable by, its directory's name first.
    pub names: Vec<String>,
}

impl Role {
    /// The role at `path` (a directory with a `molecule/` directory).
    pub fn at(path: &Path) -> anyhow::Result<Role> {
        let dir = path
            .canonicalize()
            .with_context(|| format!("the role directory {}", path.display()))?;
        if !dir.join("molecule").is_dir() {
            bail!(
                "{} has no molecule/ directory: run kiln test in a role's directory or name one (kiln test path/to/role)",
                dir.display()
            );
        }
        let dir_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "role".into());
        let meta = ["yml", "yaml"]
            .iter()
            .map(|ext| dir.join("meta").join(format!("main.{ext}")))
            .find(|p| p.is_file());
        let galaxy = match meta {
            Some(path) => galaxy_names(&crate::yaml::load_file(&path)?.root),
            None => Vec::new(),
        };
        let mut names = vec![dir_name];
        for name in galaxy {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(Role { dir, names })
    }

    /// Links the role into `roles_dir` under each of its names.
    pub fn link_into(&self, roles_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(roles_dir)
            .with_context(|| format!("creating {}", roles_dir.display()))?;
        for name in &self.names {
            let link = roles_dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&self.dir, &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
        Ok(())
    }

    /// `path` relative to the role when it is inside it (links resolved), else as it is.
    pub fn relative(&self, path: &Path) -> PathBuf {
        if let Ok(inside) = path.strip_prefix(&self.dir) {
            return inside.to_path_buf();
        }
        path.canonicalize()
            .ok()
            .and_then(|p| p.strip_prefix(&self.dir).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf())
    }
}

/// The Galaxy names in `meta/main.yml`: `role_name` and `namespace.role_name`.
fn galaxy_names(meta: &Node) -> Vec<String> {
    let info = meta.get("galaxy_info");
    let text = |key: &str| {
        info.and_then(|i| i.get(key))
            .and_then(Node::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let Some(role_name) = text("role_name") else {
        return Vec::new();
    };
    match text("namespace") {
        Some(namespace) => vec![format!("{namespace}.{role_name}"), role_name],
        None => vec![role_name],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachable_by_directory_and_galaxy_names() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ansible-role-motd");
        std::fs::create_dir_all(dir.join("molecule/default")).unwrap();
        std::fs::create_dir_all(dir.join("meta")).unwrap();
        std::fs::write(
            dir.join("meta/main.yml"),
            "galaxy_info:\n  role_name: motd\n  namespace: acme\n  author: x\n",
        )
        .unwrap();
        let role = Role::at(&dir).unwrap();
        assert_eq!(role.names, vec!["ansible-role-motd", "acme.motd", "motd"]);
        let roles = root.path().join("roles");
        role.link_into(&roles).unwrap();
        assert!(roles.join("acme.motd/meta/main.yml").is_file());
        assert_eq!(
            role.relative(&roles.join("motd/meta/main.yml")),
            PathBuf::from("meta/main.yml")
        );
        // Linking again (a rerun) replaces the links.
        role.link_into(&roles).unwrap();

        std::fs::remove_dir_all(dir.join("molecule")).unwrap();
        assert!(Role::at(&dir).is_err());
    }
}
