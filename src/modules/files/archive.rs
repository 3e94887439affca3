//! `archive` (community.general): paths on the target packed with its own `tar` (gz, bz2,
//! xz or plain) or `zip`, or one file compressed. As in the module, members are named from
//! the paths' common parent, a directory contributes what is under it, and the archive counts
//! as changed when its member list (names, modes, owners, sizes, times; CRCs for zip) or,
//! for a compressed file, its content differs from what was there: the new archive is built
//! beside `dest` and kept only then.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::write::{converge_attributes, Attributes};
use crate::modules::util::{parse_probe, stat_command};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Archive;

/// What the probe saw of the source paths.
#[derive(Debug, Default, PartialEq)]
pub struct Sources {
    /// `path` after glob expansion, in order.
    pub expanded: Vec<String>,
    pub excluded: Vec<String>,
    pub dirs: Vec<String>,
    pub existing: Vec<String>,
    pub globbed: bool,
}

/// Expands each pattern (a glob when it holds `*` or `?`, as the module decides) and reports
/// which of `path`'s results are directories and which exist. Output: `exp:`, `exc:`, `dir:`,
/// `lex:` lines.
fn probe_command(paths: &[String], excludes: &[String]) -> String {
    let mut script = String::from("IFS='\n'; ");
    let checks = "[ -d \"$f\" ] && printf 'dir:%s\\n' \"$f\"; if [ -e \"$f\" ] || [ -L \"$f\" ]; then printf 'lex:%s\\n' \"$f\"; fi; ";
    for (list, tag) in [(paths, "exp"), (excludes, "exc")] {
        let checks = if tag == "exp" { checks } else { "" };
        for pattern in list {
            let q = quote(pattern);
            if pattern.contains(['*', '?']) {
                // An unquoted variable is globbed but never otherwise expanded.
                script.push_str(&format!(
                    "k_p={q}; for f in $k_p; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then printf '{tag}:%s\\n' \"$f\"; {checks}fi; done; "
                ));
            } else {
                script.push_str(&format!("f={q}; printf '{tag}:%s\\n' \"$f\"; {checks}"));
            }
        }
    }
    script.push_str("true");
    script
}

/// Reads the probe's output (pure).
pub fn parse(text: &str, globbed: bool) -> Sources {
    let mut s = Sources {
        globbed,
        ..Sources::default()
    };
    for line in text.lines() {
        if let Some((tag, path)) = line.split_once(':') {
            let list = match tag {
                "exp" => &mut s.expanded,
                "exc" => &mut s.excluded,
                "dir" => &mut s.dirs,
                "lex" => &mut s.existing,
                _ => continue,
            };
            list.push(path.to_string());
        }
    }
    s
}

/// The module's `common_path`: the common prefix of the paths' parent directories, cut back
/// to a directory, with a trailing `/`.
pub fn common_root(paths: &[String]) -> String {
    let parents: Vec<String> = paths
        .iter()
        .map(|p| match p.rfind('/') {
            Some(i) => format!("{}/", &p[..i]),
            None => String::new(),
        })
        .collect();
    let Some(first) = parents.first() else {
        return String::new();
    };
    let mut prefix = first.as_str();
    for p in &parents[1..] {
        let common = prefix
            .bytes()
            .zip(p.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        prefix = &prefix[..common];
    }
    match prefix.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => format!("{}/", &prefix[..i]),
        None => String::new(),
    }
}

/// The formats and what packs or compresses each.
fn compressor(format: &str) -> &'static str {
    match format {
        "bz2" => "bzip2",
        "xz" => "xz",
        _ => "gzip",
    }
}

/// Whether a file name looks like an archive (rather than a compressed file).
fn is_archive_name(dest: &str) -> bool {
    let name = dest.rsplit('/').next().unwrap_or(dest).to_lowercase();
    [
        ".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".zip",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// The script that builds the archive of `rels` (relative to `root`) at a temporary name
/// beside `dest`, compares it with `dest` and keeps it only when it differs; it prints
/// `changed` or `same`, then the members (`m:` lines).
pub fn archive_script(
    format: &str,
    root: &str,
    rels: &[String],
    dest: &str,
    patterns: &[String],
    tmp: &str,
) -> String {
    let d = quote(dest);
    let t = quote(tmp);
    let names: Vec<String> = rels.iter().map(|r| quote(r)).collect();
    let list = format!(
        "for f in {}; do if [ -d \"$f\" ]; then find -H \"$f\" -mindepth 1; else printf '%s\\n' \"$f\"; fi; done",
        names.join(" ")
    );
    let (build, listing, members) = if format == "zip" {
        let excludes: Vec<String> = patterns.iter().map(|p| quote(p)).collect();
        let x = if excludes.is_empty() {
            String::new()
        } else {
            format!(" -x {}", excludes.join(" "))
        };
        (
            format!("{{ {list}; }} | zip -q -X {t} -@{x}"),
            "unzip -v FILE 2>/dev/null | awk 'NR > 3 && $7 ~ /^[0-9a-f]+$/ { $1 = $2 = $3 = $4 = $5 = $6 = \"\"; print }' | sort".to_string(),
            format!("unzip -Z1 {t}"),
        )
    } else {
        let flag = match format {
            "gz" => " -z",
            "bz2" => " -j",
            "xz" => " -J",
            _ => "",
        };
        let excludes: String = patterns
            .iter()
            .map(|p| format!(" --exclude={}", quote(p)))
            .collect();
        (
            format!("{{ {list}; }} | tar --no-recursion --anchored{excludes}{flag} -c -f {t} -T -"),
            "tar --full-time -tvf FILE 2>/dev/null | sort".to_string(),
            format!("tar -tf {t}"),
        )
    };
    let same = format!(
        "[ -e {d} ] && [ \"$({})\" = \"$({})\" ]",
        listing.replace("FILE", &d),
        listing.replace("FILE", &t)
    );
    format!(
        "cd {root} && {build} || {{ k_rc=$?; rm -f {t}; exit $k_rc; }}; \
         if {same}; then rm -f {t}; echo same; else mv -f {t} {d} || exit; echo changed; fi; \
         {members} | sed 's/^/m:/'",
        root = quote(root),
        members = members.replace(&t, &d),
    )
}

/// The script compressing one file to `dest` (kept only when its content differs).
pub fn compress_script(format: &str, src: &str, dest: &str, tmp: &str) -> String {
    let (s, d, t) = (quote(src), quote(dest), quote(tmp));
    let c = compressor(format);
    format!(
        "{c} -c < {s} > {t} || {{ k_rc=$?; rm -f {t}; exit $k_rc; }}; \
         if [ -e {d} ] && [ \"$({c} -dc < {d} 2>/dev/null | cksum)\" = \"$(cksum < {s})\" ]; then rm -f {t}; echo same; \
         else mv -f {t} {d} || exit; echo changed; fi"
    )
}

#[async_trait]
impl Module for Archive {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let paths = args.list(&["path"])?;
        let format = args.choice("format", &["bz2", "gz", "tar", "xz", "zip"], "gz")?;
        let dest_arg = args.str(&["dest"])?;
        let excludes = args.list(&["exclude_path"])?;
        let patterns = args.list(&["exclusion_patterns"])?;
        let force_archive = args.bool("force_archive", false)?;
        let remove = args.bool("remove", false)?;
        let attrs = Attributes::from_args(&mut args)?;
        args.ignore(crate::modules::args::IGNORED_FILE_OPTIONS);
        args.finish()?;
        if paths.is_empty() {
            return Err(ModuleError::Args(
                "archive: missing required arguments: path".into(),
            ));
        }
        let globbed = paths.iter().any(|p| p.contains(['*', '?']));
        let probe = probe_command(&paths, &excludes);
        let out = ctx.run_ok(&probe, None, "finding the paths").await?;
        let sources = parse(&out.stdout_text(), globbed);
        let mut paths_left: Vec<String> = sources
            .expanded
            .iter()
            .filter(|p| !sources.excluded.contains(p))
            .cloned()
            .collect();
        paths_left.sort();
        paths_left.dedup();
        if paths_left.is_empty() {
            return Err(ModuleResult::changed(false)
                .with("path", paths.join(", "))
                .with("expanded_paths", sources.expanded.join(", "))
                .with("expanded_exclude_paths", sources.excluded.join(", "))
                .fail("Error, no source paths were found"));
        }
        let root = common_root(&paths_left);
        let is_dir = |p: &String| sources.dirs.contains(p);
        let must_archive =
            force_archive || globbed || is_dir(&paths_left[0]) || paths_left.len() > 1;
        let dest = match (&dest_arg, must_archive) {
            (Some(d), _) => d.clone(),
            (None, false) => format!("{}.{format}", paths_left[0]),
            (None, true) => {
                return Err(ModuleError::Failed(
                    "Error, must specify \"dest\" when archiving multiple files or trees".into(),
                ))
            }
        };
        if remove {
            let inside = paths_left
                .iter()
                .any(|p| is_dir(p) && dest.starts_with(&format!("{}/", p.trim_end_matches('/'))));
            if inside {
                return Err(ModuleError::Failed(
                    "Error, created archive can not be contained in source paths when remove=true"
                        .into(),
                ));
            }
        }
        let (targets, missing): (Vec<String>, Vec<String>) = paths_left
            .iter()
            .cloned()
            .partition(|p| sources.existing.contains(p));

        let stat = ctx.run(&stat_command(&dest), None).await?;
        let dest_state_before = parse_probe(&stat.stdout_text());
        let archive_format = format == "zip" || format == "tar";
        let mut changed = false;
        let mut archived = Vec::new();
        let dest_state;
        if targets.is_empty() {
            dest_state = match (dest_state_before.exists, is_archive_name(&dest)) {
                (false, _) => "absent",
                (true, true) => "archive",
                (true, false) => "compress",
            };
        } else if must_archive || archive_format {
            dest_state = if must_archive && !missing.is_empty() {
                "incomplete"
            } else {
                "archive"
            };
            if ctx.check_mode {
                changed = must_archive || !dest_state_before.exists;
            } else {
                let rels: Vec<String> = targets
                    .iter()
                    .map(|p| p.strip_prefix(&root).unwrap_or(p).to_string())
                    .collect();
                let tmp = format!(
                    "{}/.kiln-archive-{}",
                    parent(&dest),
                    crate::util::random_id()
                );
                let tmp = if format == "zip" { tmp + ".zip" } else { tmp };
                let script = archive_script(&format, &root, &rels, &dest, &patterns, &tmp);
                let out = ctx.run_ok(&script, None, "archiving").await?.stdout_text();
                changed = out.lines().next() == Some("changed");
                archived = out
                    .lines()
                    .filter_map(|l| l.strip_prefix("m:"))
                    .map(|m| format!("{root}{}", m.trim_end_matches('/')))
                    .collect();
            }
        } else {
            dest_state = "compress";
            if ctx.check_mode {
                changed = !dest_state_before.exists;
            } else {
                let tmp = format!(
                    "{}/.kiln-archive-{}",
                    parent(&dest),
                    crate::util::random_id()
                );
                let script = compress_script(&format, &targets[0], &dest, &tmp);
                let out = ctx
                    .run_ok(&script, None, "compressing")
                    .await?
                    .stdout_text();
                changed = out.lines().next() == Some("changed");
                archived = vec![targets[0].clone()];
            }
        }
        if remove && !ctx.check_mode && !targets.is_empty() {
            let words: Vec<String> = targets.iter().map(|p| quote(p)).collect();
            ctx.run_ok(
                &format!("rm -rf -- {}", words.join(" ")),
                None,
                "removing the sources",
            )
            .await?;
        }
        let mut result = ModuleResult::changed(changed);
        let stat = ctx.run(&stat_command(&dest), None).await?;
        let now = parse_probe(&stat.stdout_text());
        if now.exists {
            let attrs_result = converge_attributes(ctx, &dest, &now, &attrs).await?;
            result.changed |= attrs_result.changed;
            result.data.extend(attrs_result.data);
        }
        Ok(result
            .with("archived", archived)
            .with("dest", dest)
            .with("dest_state", dest_state)
            .with("arcroot", root)
            .with("missing", missing)
            .with("expanded_paths", sources.expanded)
            .with("expanded_exclude_paths", sources.excluded))
    }
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].to_string(),
        None => ".".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_the_common_parent_directory() {
        let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(common_root(&v(&["/srv/data"])), "/srv/");
        assert_eq!(common_root(&v(&["/srv/a/x", "/srv/b/y"])), "/srv/");
        assert_eq!(common_root(&v(&["/srv/ab/x", "/srv/ac/y"])), "/srv/");
        assert_eq!(common_root(&v(&["/etc/motd", "/etc/hosts"])), "/etc/");
        assert_eq!(common_root(&v(&["/a", "/b"])), "/");
    }

    #[test]
    fn the_probe_is_read_by_its_tags() {
        let s = parse(
            "exp:/srv/a\nexp:/srv/b c\nexc:/srv/b c\ndir:/srv/a\nlex:/srv/a\n",
            true,
        );
        assert_eq!(s.expanded, ["/srv/a", "/srv/b c"]);
        assert_eq!(s.excluded, ["/srv/b c"]);
        assert_eq!(s.dirs, ["/srv/a"]);
        assert_eq!(s.existing, ["/srv/a"]);
        assert!(s.globbed);
    }

    #[test]
    fn archives_are_kept_only_when_their_members_differ() {
        let script = archive_script(
            "gz",
            "/srv/",
            &["data".into()],
            "/tmp/d.tgz",
            &["*.log".into()],
            "/tmp/.t",
        );
        assert!(script.starts_with("cd /srv/ && "), "{script}");
        assert!(
            script
                .contains("tar --no-recursion --anchored --exclude='*.log' -z -c -f /tmp/.t -T -"),
            "{script}"
        );
        assert!(
            script.contains("tar --full-time -tvf /tmp/d.tgz 2>/dev/null | sort"),
            "{script}"
        );
        assert!(script.contains("tar -tf /tmp/d.tgz | sed"), "{script}");
        let gz = compress_script("xz", "/var/log/a b", "/var/log/a b.xz", "/var/log/.t");
        assert!(
            gz.starts_with("xz -c < '/var/log/a b' > /var/log/.t"),
            "{gz}"
        );
        assert!(is_archive_name("/x/Y.TAR.GZ") && !is_archive_name("/x/y.gz"));
    }
}
