//! `find`: files matching names, types, ages, sizes and contents under some paths, returned
//! as `files` (each with stat-like fields) plus `matched` and `examined`. One `find` command
//! lists candidates; the filters run on the controller (pure, unit-tested below).

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;
use regex::Regex;

use crate::connection::quote;
use crate::modules::util::{apply_symbolic, parse_mode, Mode};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::map_value;
use crate::util::{parse_age, split_unit};

pub struct Find;

/// One path `find -printf` described.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub kind: char,
    pub size: u64,
    pub mtime: f64,
    pub atime: f64,
    pub ctime: f64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub nlink: u64,
    pub inode: u64,
    pub path: String,
}

const FORMAT: &str = "%y\\t%s\\t%T@\\t%A@\\t%C@\\t%m\\t%U\\t%G\\t%u\\t%g\\t%n\\t%i\\t%p\\0";

pub fn parse(output: &str) -> Vec<Found> {
    output
        .split('\0')
        .filter_map(|record| {
            let f: Vec<&str> = record.trim_start_matches('\n').splitn(13, '\t').collect();
            if f.len() < 13 {
                return None;
            }
            Some(Found {
                kind: f[0].chars().next().unwrap_or('f'),
                size: f[1].parse().unwrap_or(0),
                mtime: f[2].parse().unwrap_or(0.0),
                atime: f[3].parse().unwrap_or(0.0),
                ctime: f[4].parse().unwrap_or(0.0),
                mode: u32::from_str_radix(f[5], 8).unwrap_or(0),
                uid: f[6].parse().unwrap_or(0),
                gid: f[7].parse().unwrap_or(0),
                owner: f[8].to_string(),
                group: f[9].to_string(),
                nlink: f[10].parse().unwrap_or(0),
                inode: f[11].parse().unwrap_or(0),
                path: f[12].to_string(),
            })
        })
        .collect()
}

/// `10k`, `-1m`, `2g`, `512` (bytes) → signed bytes.
pub fn parse_size(size: &str) -> Option<i64> {
    let (number, unit) = split_unit(size);
    let scale: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    number.parse::<i64>().ok().map(|n| n * scale)
}

/// Filters Ansible's `find` applies to each candidate.
pub struct Filters {
    pub patterns: Vec<String>,
    pub excludes: Vec<String>,
    pub use_regex: bool,
    pub file_type: String,
    pub hidden: bool,
    /// Positive: at least this old; negative: at most.
    pub age: Option<i64>,
    pub age_stamp: String,
    pub size: Option<i64>,
    /// `mode`, resolved to bits: with `exact_mode` the permissions must equal it, else
    /// share a bit with it.
    pub mode: Option<u32>,
    pub exact_mode: bool,
    pub now: f64,
}

impl Filters {
    fn name_matches(&self, patterns: &[String], name: &str) -> bool {
        patterns.iter().any(|p| {
            if self.use_regex {
                Regex::new(&format!("^(?:{p})"))
                    .map(|re| re.is_match(name))
                    .unwrap_or(false)
            } else {
                glob::Pattern::new(p)
                    .map(|g| g.matches(name))
                    .unwrap_or(false)
            }
        })
    }

    pub fn keep(&self, f: &Found) -> bool {
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let type_ok = match self.file_type.as_str() {
            "file" => f.kind == 'f',
            "directory" => f.kind == 'd',
            "link" => f.kind == 'l',
            _ => true,
        };
        if !type_ok || (!self.hidden && name.starts_with('.')) {
            return false;
        }
        let patterns_ok = self.patterns.is_empty() || self.name_matches(&self.patterns, name);
        if !patterns_ok || self.name_matches(&self.excludes, name) {
            return false;
        }
        if let Some(age) = self.age {
            let stamp = match self.age_stamp.as_str() {
                "atime" => f.atime,
                "ctime" => f.ctime,
                _ => f.mtime,
            };
            let elapsed = self.now - stamp;
            let ok = if age >= 0 {
                elapsed >= age as f64
            } else {
                elapsed <= (-age) as f64
            };
            if !ok {
                return false;
            }
        }
        if let Some(size) = self.size {
            let ok = if size >= 0 {
                f.size as i64 >= size
            } else {
                f.size as i64 <= -size
            };
            if !ok {
                return false;
            }
        }
        match self.mode {
            Some(mode) if self.exact_mode => f.mode & 0o7777 == mode,
            Some(mode) => f.mode & mode != 0,
            None => true,
        }
    }
}

fn describe(f: &Found, checksum: Option<&String>) -> Value {
    let mut m: IndexMap<String, Value> = IndexMap::new();
    m.insert("path".into(), f.path.as_str().into());
    m.insert("mode".into(), format!("{:04o}", f.mode).into());
    m.insert("isdir".into(), (f.kind == 'd').into());
    m.insert("isreg".into(), (f.kind == 'f').into());
    m.insert("islnk".into(), (f.kind == 'l').into());
    m.insert("size".into(), f.size.into());
    m.insert("uid".into(), f.uid.into());
    m.insert("gid".into(), f.gid.into());
    m.insert("pw_name".into(), f.owner.as_str().into());
    m.insert("gr_name".into(), f.group.as_str().into());
    m.insert("mtime".into(), f.mtime.into());
    m.insert("atime".into(), f.atime.into());
    m.insert("ctime".into(), f.ctime.into());
    m.insert("nlink".into(), f.nlink.into());
    m.insert("inode".into(), f.inode.into());
    if let Some(sum) = checksum {
        m.insert("checksum".into(), sum.as_str().into());
    }
    map_value(m)
}

#[async_trait]
impl Module for Find {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let mut paths = Vec::new();
        for path in args.list(&["paths", "name", "path"])? {
            paths.push(crate::modules::paths::on_target(ctx, path).await?);
        }
        let patterns = args.list(&["patterns", "pattern"])?;
        let excludes = args.list(&["excludes", "exclude"])?;
        let use_regex = args.bool("use_regex", false)?;
        let contains = args.str(&["contains"])?;
        let file_type = args.choice("file_type", &["file", "directory", "link", "any"], "file")?;
        let recurse = args.bool("recurse", false)?;
        let depth = args.int("depth")?;
        let hidden = args.bool("hidden", false)?;
        let follow = args.bool("follow", false)?;
        let get_checksum = args.bool("get_checksum", false)?;
        let age = match args.str(&["age"])? {
            None => None,
            Some(a) => Some(parse_age(&a).ok_or_else(|| {
                ModuleError::Args(format!(
                    "find: failed to process age '{a}' (use e.g. 3d, -1w, 90)"
                ))
            })?),
        };
        let size = match args.str(&["size"])? {
            None => None,
            Some(s) => Some(parse_size(&s).ok_or_else(|| {
                ModuleError::Args(format!(
                    "find: failed to process size '{s}' (use e.g. 10k, -1m)"
                ))
            })?),
        };
        let age_stamp = args.choice("age_stamp", &["mtime", "atime", "ctime"], "mtime")?;
        let read_whole_file = args.bool("read_whole_file", false)?;
        let mode = match args.raw("mode") {
            None => None,
            Some(value) => match parse_mode(&value) {
                Ok(Mode::Octal(bits)) => Some(bits),
                // As Ansible: a symbolic mode is applied to no permissions at all.
                Ok(Mode::Symbolic(expr)) => Some(apply_symbolic(0, &expr, false)),
                Ok(Mode::Preserve) | Err(_) => {
                    return Err(ModuleError::Args(format!(
                        "find: mode must be octal (like '0644') or symbolic (like 'u=rw,g=r'), got '{value}'"
                    )))
                }
            },
        };
        let exact_mode = args.bool("exact_mode", true)?;
        let checksum_algorithm = args.choice(
            "checksum_algorithm",
            &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
            "sha1",
        )?;
        let encoding = args.str(&["encoding"])?;
        args.finish()?;
        if paths.is_empty() {
            return Err(ModuleError::Args(
                "find: missing required argument: paths".into(),
            ));
        }
        let max_depth = match (recurse, depth) {
            (false, _) => " -maxdepth 1".to_string(),
            // One level deeper than asked: Ansible's walk examines (and counts) the entries
            // of the deepest directories it reports, though it matches none of them.
            (true, Some(d)) => format!(" -maxdepth {}", d + 1),
            (true, None) => String::new(),
        };
        let follow_flag = if follow { "-L" } else { "-P" };
        let mut command = String::from("date +%s.%N; ");
        for p in &paths {
            command.push_str(&format!(
                "if [ -d {q} ]; then {{ LC_ALL=C find {follow_flag} {q} -mindepth 1{max_depth} -printf '{FORMAT}' 2>&1 >&3 | sed 's/^/walk:/' >&2; }} 3>&1; else echo \"skipped:\"{q} >&2; fi; ",
                q = quote(p)
            ));
        }
        let out = ctx.run(&command, None).await?;
        let text = out.stdout_text();
        let (now, listing) = text.split_once('\n').unwrap_or(("0", ""));
        let filters = Filters {
            patterns,
            excludes,
            use_regex,
            file_type,
            hidden,
            age,
            age_stamp,
            size,
            mode,
            exact_mode,
            now: now.trim().parse().unwrap_or(0.0),
        };
        let candidates = parse(listing);
        let examined = candidates.len();
        let within_depth = |f: &Found| match (recurse, depth) {
            (true, Some(d)) => depth_below(&paths, &f.path) <= d,
            _ => true,
        };
        let mut matched: Vec<Found> = candidates
            .into_iter()
            .filter(|f| within_depth(f) && filters.keep(f))
            .collect();
        // Paths whose files could not all be read, with Ansible's reason.
        let mut unread: IndexMap<String, Value> = IndexMap::new();
        if let Some(pattern) = &contains {
            let files: Vec<&str> = matched
                .iter()
                .filter(|f| f.kind == 'f')
                .map(|f| f.path.as_str())
                .collect();
            let search = ContentSearch {
                pattern,
                read_whole_file,
                encoding: encoding.as_deref(),
            };
            let report = match files.is_empty() {
                true => String::new(),
                false => ctx.run(&search.script(&files), None).await?.stdout_text(),
            };
            let outcome = search.outcome(&report);
            for root in &paths {
                if let Some(reason) = outcome.unread_reason(root) {
                    unread.insert(root.clone(), Value::from(reason));
                }
            }
            matched.retain(|f| f.kind == 'f' && outcome.hits.contains(&f.path));
        }
        let mut checksums: IndexMap<String, String> = IndexMap::new();
        if get_checksum {
            let files: Vec<String> = matched
                .iter()
                .filter(|f| f.kind == 'f')
                .map(|f| quote(&f.path))
                .collect();
            if !files.is_empty() {
                let sums = ctx
                    .run(
                        &format!("{checksum_algorithm}sum -- {}", files.join(" ")),
                        None,
                    )
                    .await?
                    .stdout_text();
                for line in sums.lines() {
                    if let Some((sum, path)) = line.split_once("  ") {
                        checksums.insert(path.to_string(), sum.to_string());
                    }
                }
            }
        }
        let skipped: IndexMap<String, Value> = out
            .stderr_text()
            .lines()
            .filter_map(|l| l.strip_prefix("skipped:"))
            .map(|p| (p.to_string(), Value::from(format!("{p} was skipped as it does not seem to be a valid directory or it cannot be accessed"))))
            .chain(out.stderr_text().lines().filter_map(walk_error))
            .chain(unread)
            .collect();
        let files: Vec<Value> = matched
            .iter()
            .map(|f| describe(f, checksums.get(&f.path)))
            .collect();
        let msg = match skipped.is_empty() {
            true => "All paths examined",
            false => "Not all paths examined, check warnings for details",
        };
        Ok(ModuleResult::changed(false)
            .with("matched", files.len())
            .with("files", files)
            .with("examined", examined)
            .with("skipped_paths", map_value(skipped))
            .with_msg(msg))
    }
}

/// A directory the walk could not read (find's "find: '/d': Permission denied"), in
/// Python's words, as Ansible's walk records it.
fn walk_error(line: &str) -> Option<(String, Value)> {
    let rest = line.strip_prefix("walk:find: '")?;
    let path = rest.strip_suffix("': Permission denied")?;
    let reason = format!("[Errno 13] Permission denied: '{path}'");
    Some((path.to_string(), Value::from(reason)))
}

/// How many levels below its search path an entry lies (1: directly in it).
fn depth_below(paths: &[String], path: &str) -> i64 {
    paths
        .iter()
        .filter_map(|root| path.strip_prefix(&format!("{}/", root.trim_end_matches('/'))))
        .map(|rest| rest.matches('/').count() as i64 + 1)
        .min()
        .unwrap_or(1)
}

/// `contains`: which files hold a line (or, reading whole files, a match anywhere) for a
/// Python pattern, read in an encoding as Ansible's module reads them.
struct ContentSearch<'a> {
    pattern: &'a str,
    read_whole_file: bool,
    encoding: Option<&'a str>,
}

/// What the search found: the matching files, and why some could not be read.
struct SearchOutcome {
    hits: std::collections::HashSet<String>,
    unknown_encoding: bool,
    undecodable: Vec<String>,
    encoding_shown: String,
}

impl ContentSearch<'_> {
    /// One script for all files: each is decoded (iconv, when the target has it) and then
    /// searched with grep's Perl patterns, reporting `hit`/`undecodable` lines.
    fn script(&self, files: &[&str]) -> String {
        // As Ansible's module: a line must match from its start (Python's re.match); the
        // whole file is searched anywhere (re.search), `$` at its end only. A newline in the
        // pattern is an escape to grep, which would otherwise split it into two patterns.
        let pattern = self.pattern.replace('\n', "\\n");
        let (flags, pattern) = match self.read_whole_file {
            true => ("-qzP", python_end_anchor(&pattern)),
            false => ("-qP", format!("^(?:{pattern})")),
        };
        let grep = format!("grep {flags} -- {}", quote(&pattern));
        let encoding = quote(self.encoding.unwrap_or("UTF-8"));
        let list: Vec<String> = files.iter().map(|f| quote(f)).collect();
        format!(
            "LC_ALL=C.UTF-8; export LC_ALL; \
             if ! command -v iconv >/dev/null 2>&1; then \
               for f in {files}; do {grep} \"$f\" 2>/dev/null && printf 'hit\\t%s\\n' \"$f\"; done; exit 0; fi; \
             iconv -f {encoding} -t UTF-8 </dev/null >/dev/null 2>&1 || {{ echo unknown-encoding; exit 0; }}; \
             for f in {files}; do \
               if ! iconv -f {encoding} -t UTF-8 -- \"$f\" >/dev/null 2>&1; then printf 'undecodable\\t%s\\n' \"$f\"; \
               elif iconv -f {encoding} -t UTF-8 -- \"$f\" 2>/dev/null | {grep} 2>/dev/null; then printf 'hit\\t%s\\n' \"$f\"; fi; \
             done",
            files = list.join(" "),
        )
    }

    fn outcome(&self, report: &str) -> SearchOutcome {
        let mut outcome = SearchOutcome {
            hits: Default::default(),
            unknown_encoding: false,
            undecodable: Vec::new(),
            encoding_shown: self.encoding.map_or_else(
                || "None (default determined by the Python built-in function \"open\")".into(),
                str::to_string,
            ),
        };
        for line in report.lines() {
            match line.split_once('\t') {
                Some(("hit", path)) => {
                    outcome.hits.insert(path.to_string());
                }
                Some(("undecodable", path)) => outcome.undecodable.push(path.to_string()),
                _ if line == "unknown-encoding" => outcome.unknown_encoding = true,
                _ => {}
            }
        }
        outcome
    }
}

impl SearchOutcome {
    /// Why files under `root` went unread, in the words of Ansible's module.
    fn unread_reason(&self, root: &str) -> Option<String> {
        if self.unknown_encoding {
            let encoding = &self.encoding_shown;
            return Some(format!("unknown encoding: {encoding}"));
        }
        let prefix = format!("{}/", root.trim_end_matches('/'));
        self.undecodable
            .iter()
            .find(|path| path.starts_with(&prefix))
            .map(|path| {
                format!(
                    "Failed to read the file {path} due to an encoding error. current encoding: {}",
                    self.encoding_shown
                )
            })
    }
}

/// A whole-file pattern's final `$` as Python's: the end, or just before a final newline (grep
/// -z takes it as the very end only).
fn python_end_anchor(pattern: &str) -> String {
    match pattern.strip_suffix('$') {
        Some(head) if !head.ends_with('\\') => format!("{head}(?=\\n?\\z)"),
        _ => pattern.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_pattern_ends_as_pythons() {
        assert_eq!(python_end_anchor("^ERROR$"), "^ERROR(?=\\n?\\z)");
        assert_eq!(python_end_anchor("cost \\$"), "cost \\$");
        assert_eq!(python_end_anchor("ERROR"), "ERROR");
    }

    #[test]
    fn unreadable_directories_are_skipped_in_pythons_words() {
        let (path, reason) = walk_error("walk:find: '/t/r/locked': Permission denied").unwrap();
        assert_eq!(path, "/t/r/locked");
        assert_eq!(
            reason.as_str(),
            Some("[Errno 13] Permission denied: '/t/r/locked'")
        );
        assert!(walk_error("walk:find: '/t': No such file or directory").is_none());
    }

    #[test]
    fn depth_counts_levels_below_the_search_path() {
        let paths = ["/srv/".to_string(), "/opt".to_string()];
        assert_eq!(depth_below(&paths, "/srv/a"), 1);
        assert_eq!(depth_below(&paths, "/srv/a/b/c"), 3);
        assert_eq!(depth_below(&paths, "/opt/x/y"), 2);
    }

    #[test]
    fn unreadable_files_skip_their_path_in_ansibles_words() {
        let search = ContentSearch {
            pattern: "has\na few",
            read_whole_file: true,
            encoding: None,
        };
        assert!(search.script(&["/t/a.txt"]).contains("has\\na few"));
        let outcome = search.outcome("hit\t/t/a.txt\nundecodable\t/t/b.gbk\n");
        assert!(outcome.hits.contains("/t/a.txt"));
        assert_eq!(
            outcome.unread_reason("/t/").as_deref(),
            Some("Failed to read the file /t/b.gbk due to an encoding error. current encoding: None (default determined by the Python built-in function \"open\")")
        );
        assert_eq!(outcome.unread_reason("/u"), None);
        let unknown = ContentSearch {
            encoding: Some("idontexist"),
            ..search
        }
        .outcome("unknown-encoding\n");
        assert_eq!(
            unknown.unread_reason("/t").as_deref(),
            Some("unknown encoding: idontexist")
        );
    }

    fn found(kind: char, path: &str, size: u64, mtime: f64) -> Found {
        Found {
            kind,
            path: path.into(),
            size,
            mtime,
            ..Default::default()
        }
    }

    #[test]
    fn parses_find_output() {
        let out = "f\t12\t1700000000.5\t1.0\t2.0\t644\t0\t0\troot\troot\t1\t99\t/etc/a b.conf\0d\t4096\t1\t1\t1\t755\t0\t0\troot\troot\t2\t5\t/etc/d\0";
        let f = parse(out);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].path.as_str(), f[0].mode, f[0].size),
            ("/etc/a b.conf", 0o644, 12)
        );
        assert_eq!(f[1].kind, 'd');
    }

    #[test]
    fn filters_like_ansible() {
        let mut filters = Filters {
            patterns: vec!["*.log".into()],
            excludes: vec!["keep*".into()],
            use_regex: false,
            file_type: "file".into(),
            hidden: false,
            age: Some(parse_age("1d").unwrap()),
            age_stamp: "mtime".into(),
            size: parse_size("1k"),
            mode: None,
            exact_mode: true,
            now: 200_000.0,
        };
        assert!(filters.keep(&found('f', "/l/app.log", 2048, 0.0)));
        assert!(
            !filters.keep(&found('f', "/l/app.log", 2048, 199_000.0)),
            "too young"
        );
        assert!(
            !filters.keep(&found('f', "/l/app.log", 10, 0.0)),
            "too small"
        );
        assert!(!filters.keep(&found('f', "/l/keep.log", 2048, 0.0)));
        assert!(!filters.keep(&found('f', "/l/.x.log", 2048, 0.0)));
        assert!(!filters.keep(&found('d', "/l/d.log", 2048, 0.0)));
        filters.use_regex = true;
        filters.patterns = vec![r"app\.\w+".into()];
        assert!(filters.keep(&found('f', "/l/app.log", 2048, 0.0)));
        assert_eq!(parse_age("-2w"), Some(-1_209_600));
        assert_eq!(parse_size("2m"), Some(2 << 20));
    }
}
