//! A deterministic fuzzer on stable Rust: mutated and generated inputs for the YAML loader,
//! the playbook loader, both inventory parsers and the template engine. Every case must end
//! in a value or a clean error: no panic, no abort (a stack overflow would kill this test),
//! and within a time bound.
//!
//! `cargo test --test fuzz` runs a short, fixed campaign. `scripts/fuzz [CASES] [SEED]` runs
//! a long one (the `KILN_FUZZ_CASES` and `KILN_FUZZ_SEED` variables).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::load::inventory::Inventory;
use kiln::load::model::VarMap;
use kiln::template::{Scope, Templar};
use minijinja::Value;

/// Cases in the short run that `cargo test` does.
const SHORT_RUN: u64 = 2000;
/// The longest one case may take: a debug build on a loaded machine loads the largest
/// generated inputs (100,000 hosts, 20,000 tasks; linear in their size) in a few seconds.
const CASE_TIME: Duration = Duration::from_secs(30);
/// The stack a case runs on: the main thread's, where kiln loads and templates (the runtime
/// drives the run on it with `block_on`).
const CASE_STACK: usize = 8 << 20;

/// xorshift64*: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What a case feeds.
#[derive(Clone, Copy, Debug)]
enum Target {
    Yaml,
    Playbook,
    IniInventory,
    YamlInventory,
    Template,
    Expression,
}

const TARGETS: [Target; 6] = [
    Target::Yaml,
    Target::Playbook,
    Target::IniInventory,
    Target::YamlInventory,
    Target::Template,
    Target::Expression,
];

/// Real inputs from the repository: playbooks, roles, inventories and templates.
fn corpus() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["playbooks", "roles", "inventories", "examples", "bench"] {
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    let mut texts: Vec<String> = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|t| t.len() < 64 * 1024)
        .collect();
    texts.extend(SEEDS.iter().map(|s| s.to_string()));
    texts
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml" | "j2" | "ini" | "cfg" | "json") | None
        ) {
            out.push(path);
        }
    }
}

/// Hand-written seeds covering syntax the repository's files do not.
const SEEDS: &[&str] = &[
    "[web]\nweb[01:03] ansible_host=10.0.0.1 ansible_port=22\n[web:vars]\nx=1\n[all:children]\nweb\n",
    "all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n  children:\n    db:\n      hosts:\n        d[1:3]:\n      vars: {a: 1}\n",
    "- hosts: all\n  vars: {a: !unsafe '{{ x }}', b: 0644, c: yes}\n  tasks:\n    - debug: msg={{ a }}\n      loop: [1, 2]\n      when: a is defined\n    - block:\n        - command: echo hi\n      rescue:\n        - fail: msg=x\n",
    "{% for i in range(3) %}{{ i | string ~ 'x' }}{% if i > 1 %}{{ [i] | to_nice_json(indent=2) }}{% endif %}{% endfor %}",
    "{{ a.b.c | default('d') | regex_replace('(x)', '\\\\1') }} {{ {'k': [1, 2]} | dict2items }}",
    "x: &a [1, 2]\ny: *a\nz: {<<: {q: 1}, r: 2}\nbig: 100000000000000000000000000000000000000000000000\n",
];

/// Fragments spliced in: syntax that tends to reach edge cases.
const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "[",
    "]",
    "{",
    "}",
    ":",
    "- ",
    "&a ",
    "*a",
    "!unsafe ",
    "!vault ",
    "<<: ",
    "'",
    "\"",
    "\\",
    "\n",
    "\t",
    "|",
    ">",
    "\u{0}",
    "é",
    "[0:9]",
    "[a:z]",
    "[1:999999999999]",
    "=",
    ",",
    "%",
    "+",
    "**",
    "~",
    ".",
    "(",
    ")",
    "not ",
    " is ",
    " in ",
    "range(",
    "lookup(",
    "{{ x }}",
    "{% raw %}",
    "{% endraw %}",
    "{% for x in y %}",
    "{% endfor %}",
    "{% if %}",
    "{% set x = 1 %}",
    "{% macro m() %}",
    "0x",
    "1e999",
    "99999999999999999999999999999999999999999999",
    "-",
    "---\n",
    "...\n",
    "? ",
    "!!binary ",
];

/// One mutation of a corpus text.
fn mutate(rng: &mut Rng, corpus: &[String]) -> String {
    let mut bytes = rng.pick(corpus).as_bytes().to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(at),
            2 => {
                let fragment = rng.pick(FRAGMENTS).as_bytes();
                bytes.splice(at..at, fragment.iter().copied());
            }
            3 => {
                // Splice in a piece of another corpus text.
                let other = rng.pick(corpus).as_bytes();
                let start = rng.below(other.len() + 1);
                let end = (start + rng.below(256)).min(other.len());
                bytes.splice(at..at, other[start..end].iter().copied());
            }
            4 if !bytes.is_empty() => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            5 => {
                // Repeat a piece: long lines and repeated keys.
                let end = (at + rng.below(32)).min(bytes.len());
                let piece = bytes[at.min(end)..end].to_vec();
                for _ in 0..rng.below(64) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            _ => {
                let fragment = rng.pick(FRAGMENTS).as_bytes();
                bytes.extend_from_slice(fragment);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Deeply nested or very long inputs of each kind. Expressions are always tried at sizes
/// that once overflowed the stack (they are refused at once); large documents, which take
/// seconds to load in a debug build, only in a long run (`large`).
fn deep(rng: &mut Rng, target: Target, large: bool) -> String {
    let sizes: &[usize] = match target {
        Target::Template | Target::Expression => &[10, 100, 1_000, 20_000, 100_000],
        _ if large => &[10, 100, 1_000, 20_000, 100_000],
        _ => &[10, 100, 1_000],
    };
    let n = *rng.pick(sizes);
    match (target, rng.below(6)) {
        (Target::Template | Target::Expression, 0) => wrap(target, &vec!["1"; n].join(" + ")),
        (Target::Template | Target::Expression, 1) => wrap(target, &format!("a{}", ".b".repeat(n))),
        (Target::Template | Target::Expression, 2) => {
            wrap(target, &format!("{}x", "not ".repeat(n)))
        }
        (Target::Template | Target::Expression, 3) => {
            wrap(target, &format!("{}1{}", "(".repeat(n), ")".repeat(n)))
        }
        (Target::Template | Target::Expression, 4) => {
            wrap(target, &format!("{}1{}", "[".repeat(n), "]".repeat(n)))
        }
        (Target::Template, _) => format!(
            "{}x{}",
            "{% if true %}".repeat(n.min(5_000)),
            "{% endif %}".repeat(n.min(5_000))
        ),
        (Target::IniInventory, _) => {
            let ranges = rng.below(if large { 12 } else { 5 });
            format!("[g]\nh{}\n", "[0:9]".repeat(ranges))
        }
        (_, 0) => format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        (_, 1) => format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)),
        (_, 2) => (0..n)
            .map(|i| format!("{}- x\n", "  ".repeat(i % 64)))
            .collect(),
        (_, 3) => format!("a: {}\n", "9".repeat(n)),
        _ => format!(
            "- hosts: all\n  tasks:\n{}",
            "    - debug: msg=x\n".repeat(n.min(20_000))
        ),
    }
}

fn wrap(target: Target, expression: &str) -> String {
    match target {
        Target::Template => format!("{{{{ {expression} }}}}"),
        _ => expression.to_string(),
    }
}

/// Runs one case; `Err` says what went wrong.
fn run_case(target: Target, input: String, dir: &Path) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let (send, receive) = std::sync::mpsc::channel();
    let started = Instant::now();
    let worker = std::thread::Builder::new()
        .stack_size(CASE_STACK)
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                feed(target, &input, &dir)
            }));
            let _ = send.send(outcome.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        })
        .map_err(|e| format!("could not start a case thread: {e}"))?;
    match receive.recv_timeout(CASE_TIME) {
        Ok(Ok(())) => {
            let _ = worker.join();
            Ok(())
        }
        Ok(Err(panic)) => Err(format!("panicked: {panic}")),
        Err(_) => Err(format!(
            "took longer than {:?} (still running after {:?})",
            CASE_TIME,
            started.elapsed()
        )),
    }
}

/// Hands one input to its target; errors are fine, only panics and hangs are failures.
fn feed(target: Target, input: &str, dir: &Path) {
    match target {
        Target::Yaml => {
            if let Ok(doc) = kiln::load::yaml::parse_str(input, Path::new("fuzz.yml")) {
                let _ = doc.root.to_value().to_string();
            }
        }
        Target::Playbook => {
            let path = dir.join("site.yml");
            if std::fs::write(&path, input).is_ok() {
                let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
                let mut loader =
                    kiln::load::Loader::new(dir.to_path_buf(), vec![repo.join("roles")]);
                let _ = loader.load_playbook(&path);
            }
        }
        Target::IniInventory => {
            let mut inv = Inventory::new();
            if kiln::load::inventory::ini::parse(&mut inv, input, Path::new("hosts")).is_ok() {
                let _ = inv.to_list_json();
            }
        }
        Target::YamlInventory => {
            let mut inv = Inventory::new();
            if kiln::load::inventory::yaml::parse(&mut inv, input, Path::new("hosts.yml")).is_ok() {
                let _ = inv.to_list_json();
            }
        }
        Target::Template | Target::Expression => {
            let scope = scope(dir);
            let templar = scope.templar().clone();
            match target {
                Target::Template => {
                    let _ = templar.render_str(input, &scope);
                    let _ = templar.render_file(input, Path::new("fuzz.j2"), &scope);
                }
                _ => {
                    let _ = templar.eval_condition(&Value::from(input), &scope);
                }
            }
        }
    }
}

/// Variables a template case can read (data only: no lookups reach outside `dir`).
fn scope(dir: &Path) -> Scope {
    let mut vars = VarMap::new();
    vars.insert("x".into(), Value::from("text"));
    vars.insert("n".into(), Value::from(7));
    vars.insert("items".into(), Value::from(vec![1, 2, 3]));
    vars.insert("lazy".into(), Value::from("{{ x }}-{{ n }}"));
    vars.insert("loop_a".into(), Value::from("{{ loop_b }}"));
    vars.insert("loop_b".into(), Value::from("{{ loop_a }}"));
    vars.insert(
        "__search_paths".into(),
        Value::from(vec![dir.display().to_string()]),
    );
    Scope::new(Templar::new(), vec![Arc::new(vars)])
}

/// Runs `cases` cases from `seed`; returns how many ran, or the first failure.
fn campaign(cases: u64, seed: u64) -> Result<u64, String> {
    let corpus = corpus();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rng = Rng(seed.max(1));
    // An abort cannot be caught: the case being run is kept here to be read afterwards.
    let current = std::env::temp_dir().join(format!("kiln-fuzz-{seed}.current"));
    eprintln!(
        "fuzz: seed {seed}; after an abort, the case is in {}",
        current.display()
    );
    for case in 0..cases {
        let target = *rng.pick(&TARGETS);
        let input = if rng.below(10) == 0 {
            deep(&mut rng, target, cases > SHORT_RUN)
        } else {
            mutate(&mut rng, &corpus)
        };
        let _ = std::fs::write(&current, format!("case {case} {target:?}\n{input}"));
        let started = Instant::now();
        let outcome = run_case(target, input.clone(), dir.path());
        if std::env::var_os("KILN_FUZZ_SLOW").is_some() && started.elapsed().as_millis() > 200 {
            eprintln!(
                "slow case {case} {target:?} {:?} len {}: {:.80}",
                started.elapsed(),
                input.len(),
                input
            );
        }
        if let Err(problem) = outcome {
            return Err(format!(
                "case {case} (seed {seed}, {target:?}) {problem}; input saved to {}",
                current.display()
            ));
        }
    }
    let _ = std::fs::remove_file(&current);
    Ok(cases)
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn loaders_and_templates_survive_mutated_input() {
    let cases = env_number("KILN_FUZZ_CASES").unwrap_or(SHORT_RUN);
    let seed = env_number("KILN_FUZZ_SEED").unwrap_or(0x6b69_6c6e);
    match campaign(cases, seed) {
        Ok(ran) => {
            println!("fuzz: {ran} cases ran without a panic, an abort or a hang (seed {seed})")
        }
        Err(problem) => panic!("{problem}"),
    }
}
