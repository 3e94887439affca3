//! `copy` of a directory, as Ansible's copy action does it: `src: dir/` copies the directory's
//! contents into `dest`, `src: dir` the directory itself (as `dest/dir`). Directories are
//! created with `directory_mode` (and existing ones below `dest` set to it), files written with
//! `mode`; both get `owner`/`group`. With `remote_src` the tree is on the target.

use std::path::{Path, PathBuf};

use minijinja::Value;

use super::file::File;
use super::write::{converge, probe, Attributes, WriteRequest};
use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

/// A source tree: directories and files by their path relative to the copied directory
/// (parents before children, in name order).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub dirs: Vec<String>,
    pub files: Vec<String>,
}

/// Which of a directory's owners the file module is asked to set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ownership {
    None,
    Here,
    /// The directory and everything below it.
    Recursive,
}

/// What a directory copy writes, besides the tree.
pub struct DirCopy<'a> {
    /// `src` as given: a trailing slash copies the contents only.
    pub src: &'a str,
    pub dest: &'a str,
    pub attrs: &'a Attributes,
    /// `directory_mode` as given (the file module reads it as it reads `mode`).
    pub directory_mode: Option<Value>,
    pub force: bool,
}

impl DirCopy<'_> {
    /// The directory the tree's top maps to.
    fn root(&self) -> String {
        let dest = self.dest.trim_end_matches('/');
        if self.src.ends_with('/') {
            return dest.to_string();
        }
        let name = self
            .src
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        format!("{dest}/{name}")
    }

    /// Ansible's result for a directory copy: `dest` with its trailing slash.
    fn result(&self, changed: bool) -> ModuleResult {
        ModuleResult::changed(changed)
            .with("dest", format!("{}/", self.dest.trim_end_matches('/')))
            .with("src", self.src)
    }

    /// Creates the tree's directories top-down (file's `state: directory` with
    /// `directory_mode`, `owner` and `group`). The root of a contents copy (`src: dir/`) is only
    /// created when absent: an existing `dest` keeps its attributes. Returns whether anything
    /// changed.
    async fn directories(&self, ctx: &ModuleCtx<'_>, tree: &Tree) -> Result<bool, ModuleError> {
        let root = self.root();
        let mut changed = false;
        let root_kept = self.src.ends_with('/') && {
            let test = format!("[ -d {} ]", quote(&root));
            ctx.run_inline(&test, None).await?.rc == 0
        };
        if !root_kept {
            changed |= self.directory(ctx, &root).await?;
        }
        for dir in &tree.dirs {
            changed |= self.directory(ctx, &format!("{root}/{dir}")).await?;
        }
        Ok(changed)
    }

    async fn directory(&self, ctx: &ModuleCtx<'_>, path: &str) -> Result<bool, ModuleError> {
        self.file(ctx, path, self.directory_mode.clone(), Ownership::Here)
            .await
    }

    /// Runs the file module on a directory `path` with `mode` and, as `ownership` says,
    /// `owner`/`group`. Returns whether it changed anything.
    async fn file(
        &self,
        ctx: &ModuleCtx<'_>,
        path: &str,
        mode: Option<Value>,
        ownership: Ownership,
    ) -> Result<bool, ModuleError> {
        let mut options = vec![
            ("path", Value::from(path)),
            ("state", Value::from("directory")),
            ("recurse", Value::from(ownership == Ownership::Recursive)),
        ];
        if let Some(mode) = mode {
            options.push(("mode", mode));
        }
        let owner = self.attrs.owner.iter().map(|o| ("owner", o));
        let group = self.attrs.group.iter().map(|g| ("group", g));
        if ownership != Ownership::None {
            options.extend(
                owner
                    .chain(group)
                    .map(|(k, v)| (k, Value::from(v.as_str()))),
            );
        }
        let options: std::collections::BTreeMap<&str, Value> = options.into_iter().collect();
        let args = Args::new("file", &Value::from(options))?;
        Ok(File.run(ctx, args).await?.changed)
    }

    /// Copies a controller tree rooted at `local` (read through the vault when `decrypt`).
    pub async fn from_controller(
        &self,
        ctx: &ModuleCtx<'_>,
        local: &Path,
        decrypt: bool,
    ) -> Result<ModuleResult, ModuleError> {
        let tree = walk(local)
            .map_err(|e| ModuleError::Failed(format!("reading {} failed: {e}", local.display())))?;
        let mut changed = self.directories(ctx, &tree).await?;
        let root = self.root();
        for file in &tree.files {
            let dest = format!("{root}/{file}");
            // `force: no` leaves existing files alone.
            if !self.force && probe(ctx, &dest, None).await?.0.exists {
                continue;
            }
            let content = crate::vault::read_source(&local.join(file), decrypt)
                .map_err(|e| ModuleError::Failed(e.to_string()))?;
            let written = converge(
                ctx,
                WriteRequest {
                    dest,
                    content,
                    attrs: self.attrs.clone(),
                    backup: false,
                    validate: None,
                    force: true,
                    follow: false,
                },
            )
            .await?;
            changed |= written.changed;
        }
        Ok(self.result(changed))
    }
}

impl DirCopy<'_> {
    /// Copies a tree on the target (`remote_src`), as Ansible's copy module does: directories
    /// missing under the destination are created and files that differ copied, both keeping
    /// the source's mode; `owner`/`group` then apply to the whole copy and `mode` to its top.
    pub async fn on_target(
        &self,
        ctx: &ModuleCtx<'_>,
        mode: Option<Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let root = self.root();
        let (make_dir, copy_file) = if ctx.check_mode {
            (":", ":")
        } else {
            (
                "mkdir -p \"$t\" && chmod \"$(stat -c %a \"$p\")\" \"$t\"",
                "cp -p \"$p\" \"$t\"",
            )
        };
        let keep = if self.force {
            ""
        } else {
            "[ -e \"$t\" ] && continue; "
        };
        // Each copied path prints a line: any output means a change.
        let sync = format!(
            "cd {src} || exit 1; r={root}; if [ ! -d \"$r\" ]; then echo .; {make_root}; fi; \
             find . -mindepth 1 \\( -type d -o -type f \\) -exec sh -c '\
             r=$1; shift; for p do t=\"$r/${{p#./}}\"; \
             if [ -d \"$p\" ]; then [ -d \"$t\" ] && continue; echo \"$p\"; {make_dir} || exit 1; \
             else {keep}cmp -s \"$p\" \"$t\" && continue; echo \"$p\"; {copy_file} || exit 1; fi; \
             done' sh \"$r\" {{}} +",
            src = quote(self.src),
            root = quote(&root),
            make_root = if ctx.check_mode {
                ":"
            } else {
                "mkdir -p \"$r\""
            },
        );
        let out = ctx
            .run_ok(&sync, None, &format!("copying {}", self.src))
            .await?;
        let mut changed = !out.stdout.is_empty();
        if self.attrs.owner.is_some() || self.attrs.group.is_some() {
            changed |= self.file(ctx, &root, None, Ownership::Recursive).await?;
        }
        if mode.is_some() {
            changed |= self.file(ctx, &root, mode, Ownership::None).await?;
        }
        Ok(self.result(changed))
    }
}

/// Walks a controller directory, following links as Ansible's `local_follow` does by default
/// (a link back to a directory being walked is skipped rather than followed forever).
pub fn walk(root: &Path) -> std::io::Result<Tree> {
    let mut tree = Tree::default();
    let mut ancestors = vec![root.canonicalize()?];
    walk_into(root, "", &mut ancestors, &mut tree)?;
    Ok(tree)
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
    tree: &mut Tree,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let rel = format!("{prefix}{name}");
        let path = entry.path();
        // A dangling link has no metadata to follow: nothing to copy.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let real = path.canonicalize()?;
            if ancestors.contains(&real) {
                continue;
            }
            tree.dirs.push(rel.clone());
            ancestors.push(real);
            walk_into(&path, &format!("{rel}/"), ancestors, tree)?;
            ancestors.pop();
        } else if meta.is_file() {
            tree.files.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_lists_parents_first_and_skips_link_cycles() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("a"), "a").unwrap();
        std::fs::write(root.join("b/c/d"), "d").unwrap();
        std::os::unix::fs::symlink(root, root.join("b/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("b/link")).unwrap();
        let tree = walk(root).unwrap();
        assert_eq!(tree.dirs, ["b", "b/c"]);
        assert_eq!(tree.files, ["a", "b/c/d", "b/link"]);
    }

    #[test]
    fn a_trailing_slash_copies_the_contents_only() {
        let attrs = Attributes::default();
        let copy = |src| DirCopy {
            src,
            dest: "/srv/",
            attrs: &attrs,
            directory_mode: None,
            force: true,
        };
        assert_eq!(copy("files/site/").root(), "/srv");
        assert_eq!(copy("files/site").root(), "/srv/site");
    }
}
