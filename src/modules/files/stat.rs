//! `stat`: report a path's state with the keys ansible-core's `stat` returns (`exists`,
//! `isdir`, `mode`, `atime`, `inode`, `wusr`, `checksum`, `mimetype`, `attributes`, …), read
//! in one round trip: the `stat` line, access, and the optional checksum, mime type and
//! attributes.

use async_trait::async_trait;

use super::path_info::{stat_dict, StatExtras};
use crate::connection::quote;
use crate::modules::util::{parse_probe, stat_line_command};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Stat;

/// What to read besides the `stat` line.
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    follow: bool,
    /// The checksum program (`sha1sum`, …), when `get_checksum`.
    checksum: Option<&'static str>,
    mime: bool,
    attributes: bool,
}

const ALGORITHMS: &[(&str, &str)] = &[
    ("md5", "md5sum"),
    ("sha1", "sha1sum"),
    ("sha224", "sha224sum"),
    ("sha256", "sha256sum"),
    ("sha384", "sha384sum"),
    ("sha512", "sha512sum"),
];

#[async_trait]
impl Module for Stat {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let name = args.module();
        let path = args.required_path(ctx, &["path", "dest", "name"]).await?;
        let follow = args.bool("follow", false)?;
        let get_checksum = args.bool("get_checksum", true)?;
        let mime = args.bool_any(&["get_mime", "mime", "mime_type", "mime-type"], true)?;
        let attributes = args.bool_any(&["get_attributes", "attr", "attributes"], true)?;
        let algorithm = args
            .str(&["checksum_algorithm", "checksum", "checksum_algo"])?
            .unwrap_or_else(|| "sha1".into());
        let _ = args.raw_any(&["get_md5", "get_selinux_context"]);
        args.finish()?;
        let Some(&(_, program)) = ALGORITHMS.iter().find(|(a, _)| *a == algorithm) else {
            let known: Vec<&str> = ALGORITHMS.iter().map(|(a, _)| *a).collect();
            return Err(ModuleError::Args(format!(
                "{name}: value of checksum_algorithm must be one of: {}, got: {algorithm}",
                known.join(", ")
            )));
        };
        let wanted = Wanted {
            follow,
            checksum: get_checksum.then_some(program),
            mime,
            attributes,
        };
        let out = ctx.run_inline(&stat_script(&path, &wanted), None).await?;
        if out.rc != 0 {
            return Err(ModuleError::Failed(format!(
                "could not stat {path}: {}",
                out.stderr_text().trim()
            )));
        }
        let (state, extras) = parse_stat_output(&out.stdout_text(), &wanted);
        let stat = stat_dict(&path, &state, &extras);
        Ok(ModuleResult::changed(false).with("stat", stat))
    }
}

/// The one command `stat` sends: `absent`, or the `stat` line followed by `key:value` lines.
fn stat_script(path: &str, wanted: &Wanted) -> String {
    let p = quote(path);
    let mut steps = vec![
        stat_line_command(path, wanted.follow),
        format!(
            "printf access:; [ -r {p} ] && printf r; [ -w {p} ] && printf w; \
             [ -x {p} ] && printf x; echo"
        ),
    ];
    if !wanted.follow {
        steps.push(format!(
            "if [ -L {p} ]; then printf realpath:; readlink -m -- {p}; fi"
        ));
    }
    if let Some(program) = wanted.checksum {
        let not_link = if wanted.follow {
            String::new()
        } else {
            format!(" && [ ! -L {p} ]")
        };
        steps.push(format!(
            "if [ -f {p} ]{not_link} && [ -r {p} ]; then printf checksum:; {program} < {p}; fi"
        ));
    }
    if wanted.mime {
        steps.push(format!(
            "if command -v file >/dev/null 2>&1; then printf mime:; \
             file -b --mime-type --mime-encoding -- {p} 2>/dev/null || echo; fi"
        ));
    }
    if wanted.attributes {
        steps.push(format!(
            "printf attr:; lsattr -vd -- {p} 2>/dev/null || echo"
        ));
    }
    let exists = if wanted.follow {
        format!("[ -e {p} ]")
    } else {
        format!("[ -e {p} ] || [ -L {p} ]")
    };
    format!(
        "if {exists}; then {}; else echo absent; fi",
        steps.join("; ")
    )
}

/// Reads `stat_script`'s output (pure: unit-tested on recorded output).
fn parse_stat_output(
    output: &str,
    wanted: &Wanted,
) -> (crate::modules::util::PathState, StatExtras) {
    let mut state = parse_probe(output);
    // `parse_probe` takes a checksum from the second line; here the lines are labelled.
    state.checksum = None;
    let mut extras = StatExtras::default();
    if wanted.mime {
        extras.mime = Some(("unknown".into(), "unknown".into()));
    }
    if wanted.attributes {
        extras.attributes = Some((String::new(), String::new()));
    }
    for line in output.lines().skip(1) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "access" => {
                extras.access = (
                    value.contains('r'),
                    value.contains('w'),
                    value.contains('x'),
                )
            }
            "realpath" => extras.realpath = Some(value.to_string()),
            "checksum" => {
                let sum = value.split_whitespace().next().unwrap_or_default();
                if !sum.is_empty() && sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                    extras.checksum = Some(sum.to_string());
                }
            }
            "mime" => {
                if let Some((mimetype, charset)) = value.split_once(';') {
                    let charset = charset.split_once('=').map_or("", |(_, c)| c);
                    extras.mime = Some((mimetype.trim().into(), charset.trim().into()));
                }
            }
            "attr" => {
                let mut fields = value.split_whitespace();
                if let (Some(version), Some(flags)) = (fields.next(), fields.next()) {
                    extras.attributes = Some((version.into(), flags.replace('-', "")));
                }
            }
            _ => {}
        }
    }
    if let Some(sum) = &extras.checksum {
        state.checksum = Some(sum.clone());
    }
    (state, extras)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything() -> Wanted {
        Wanted {
            follow: false,
            checksum: Some("sha1sum"),
            mime: true,
            attributes: true,
        }
    }

    #[test]
    fn a_recorded_file_is_read_whole() {
        let output = "regular file|644|root|root|0|0|11|1796093000.123456|1796093001.000000|1796093002.000000|65024|1198019|1|8|4096|0|0|'/tmp/foo.txt'\n\
            access:rw\n\
            checksum:2aae6c35c94fcfb415dbe95f408b9ce91ee846ed  -\n\
            mime:text/plain; charset=us-ascii\n\
            attr:  3261398817 --------------e------- /tmp/foo.txt\n";
        let (state, extras) = parse_stat_output(output, &everything());
        assert_eq!((state.kind.as_str(), state.size), ("file", 11));
        assert_eq!(extras.access, (true, true, false));
        assert_eq!(
            extras.checksum.as_deref(),
            Some("2aae6c35c94fcfb415dbe95f408b9ce91ee846ed")
        );
        assert_eq!(
            extras.mime,
            Some(("text/plain".to_string(), "us-ascii".to_string()))
        );
        assert_eq!(
            extras.attributes,
            Some(("3261398817".to_string(), "e".to_string()))
        );
    }

    #[test]
    fn missing_tools_leave_ansibles_defaults() {
        let output = "symbolic link|777|root|root|0|0|12|1.0|1.0|1.0|65024|7|1|0|4096|0|0|'/tmp/l' -> 'foo.txt'\n\
            access:rw\n\
            realpath:/tmp/foo.txt\n\
            attr:\n";
        let (state, extras) = parse_stat_output(output, &everything());
        assert_eq!(state.link_target.as_deref(), Some("foo.txt"));
        assert_eq!(extras.realpath.as_deref(), Some("/tmp/foo.txt"));
        assert_eq!(extras.checksum, None);
        assert_eq!(
            extras.mime,
            Some(("unknown".to_string(), "unknown".to_string()))
        );
        assert_eq!(extras.attributes, Some((String::new(), String::new())));
        let (absent, _) = parse_stat_output("absent\n", &everything());
        assert!(!absent.exists);
    }

    #[test]
    fn the_script_reads_only_what_is_asked() {
        let bare = Wanted {
            follow: true,
            checksum: None,
            mime: false,
            attributes: false,
        };
        let script = stat_script("/tmp/x", &bare);
        assert!(script.starts_with("if [ -e /tmp/x ]; then stat -L -c"));
        for absent in ["sum", "file -b", "lsattr", "readlink"] {
            assert!(!script.contains(absent), "{absent} in {script}");
        }
        let all = stat_script("/tmp/x", &everything());
        for present in ["sha1sum < /tmp/x", "file -b", "lsattr -vd", "readlink -m"] {
            assert!(all.contains(present), "{present} not in {all}");
        }
    }
}
