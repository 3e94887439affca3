//! Every import points down: the layers below never name the layers above them, and the
//! leaf modules name nothing of kiln's but other leaves. Read from the source text, so an
//! upward `use` or path fails here before it can form a cycle.

use std::path::{Path, PathBuf};

const LEAVES: &[&str] = &["clock", "error", "shell", "util", "value", "vault", "yaml"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each `file:line: text` under `src/<area>` (a directory or a `.rs` file) that names one of
/// `forbidden` as `crate::<name>` (a path segment, so `crate::modules` also covers
/// `crate::modules::util`).
fn offending_lines(area: &str, forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let dir = src.join(area);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    } else {
        files.push(src.join(format!("{area}.rs")));
    }
    let mut found = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (number, line) in text.lines().enumerate() {
            let names_forbidden = forbidden.iter().any(|name| {
                line.match_indices(&format!("crate::{name}"))
                    .any(|(at, m)| {
                        !line[at + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
            });
            if names_forbidden {
                found.push(format!(
                    "{}:{}: {}",
                    file.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

fn assert_none(area: &str, forbidden: &[&str]) {
    let found = offending_lines(area, forbidden);
    assert!(
        found.is_empty(),
        "src/{area} imports from above it ({forbidden:?}):\n{}",
        found.join("\n")
    );
}

#[test]
fn connection_and_template_use_neither_modules_nor_load_nor_run() {
    for area in ["connection", "template"] {
        assert_none(area, &["modules", "load", "run"]);
    }
}

#[test]
fn modules_use_neither_load_nor_run() {
    assert_none("modules", &["load", "run"]);
}

#[test]
fn bake_cycle_scenario_and_cli_use_no_module_helpers() {
    for area in ["bake", "cycle", "cli", "scenario"] {
        assert_none(area, &["modules::util"]);
    }
}

#[test]
fn leaves_use_only_other_leaves() {
    let above = [
        "bake",
        "cli",
        "connection",
        "cycle",
        "load",
        "modules",
        "output",
        "run",
        "scenario",
        "template",
    ];
    for leaf in LEAVES {
        assert_none(leaf, &above);
    }
}

#[test]
fn the_check_sees_an_upward_import() {
    // The scan itself must be able to fail: the runner's own files name the loader.
    assert!(!offending_lines("run", &["load"]).is_empty());
    assert!(
        offending_lines("run", &["lo"]).is_empty(),
        "whole segments only"
    );
}
