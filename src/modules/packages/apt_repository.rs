//! `apt_repository`: a one-line `deb …` source present in (or absent from) apt's sources,
//! written to `/etc/apt/sources.list.d/<name>.list`, then the cache updated.

use async_trait::async_trait;
use regex::Regex;

use crate::modules::files::write::{converge, Attributes, WriteRequest};
use crate::modules::util::Mode;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct AptRepository;

const SOURCES: &str = "/etc/apt/sources.list.d";

/// The file Ansible picks for a line: its host and path with punctuation turned to `_`.
pub fn suggest_filename(line: &str) -> String {
    let no_options = Regex::new(r"\[[^\]]+\]")
        .map(|re| re.replace_all(line, "").into_owned())
        .unwrap_or_else(|_| line.to_string());
    let no_scheme = Regex::new(r"\w+://")
        .map(|re| re.replace_all(&no_options, "").into_owned())
        .unwrap_or(no_options);
    let first = no_scheme
        .split_whitespace()
        .find(|p| *p != "deb" && *p != "deb-src")
        .unwrap_or("repository");
    let host_path = first.rsplit_once('@').map(|(_, h)| h).unwrap_or(first);
    host_path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn normalize(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `==> FILE` section of the probe that holds `line` (not commented out).
fn files_holding(listing: &str, line: &str) -> Vec<(String, String)> {
    let want = normalize(line);
    let mut out = Vec::new();
    for section in listing.split("==> ").skip(1) {
        let (file, body) = section.split_once('\n').unwrap_or((section, ""));
        if body.lines().any(|l| normalize(l) == want) {
            out.push((file.to_string(), body.to_string()));
        }
    }
    out
}

#[async_trait]
impl Module for AptRepository {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let repo = args.required_str(&["repo"])?;
        let state = args.choice("state", &["present", "absent"], "present")?;
        let filename = args.str(&["filename"])?;
        let update_cache = args.bool("update_cache", true)? && args.bool("update-cache", true)?;
        let mode = match args.raw("mode") {
            Some(v) => crate::modules::util::parse_mode(&v)
                .map_err(|e| ModuleError::Args(format!("apt_repository: {e}")))?,
            None => Mode::Octal(0o644),
        };
        let _ = args.raw_any(&[
            "codename",
            "install_python_apt",
            "validate_certs",
            "update_cache_retries",
            "update_cache_retry_max_delay",
        ]);
        args.finish()?;
        if repo.trim_start().starts_with("ppa:") {
            return Err(ModuleError::Args(
                "apt_repository: PPAs are Ubuntu-only and not supported by kiln; give the deb line"
                    .into(),
            ));
        }
        let listing = ctx
            .run(
                "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f \"$f\" ] && { echo \"==> $f\"; cat \"$f\"; echo; }; done; true",
                None,
            )
            .await?
            .stdout_text();
        let holding = files_holding(&listing, &repo);
        let mut changed = false;
        let mut result = ModuleResult::changed(false);
        let edits: Vec<(String, String)> = if state == "present" {
            if holding.is_empty() {
                let name = filename.unwrap_or_else(|| suggest_filename(&repo));
                let dest = format!("{SOURCES}/{name}.list");
                let existing = listing
                    .split("==> ")
                    .find_map(|s| s.strip_prefix(&format!("{dest}\n")))
                    .unwrap_or("")
                    .trim_end()
                    .to_string();
                let content = if existing.is_empty() {
                    format!("{}\n", normalize(&repo))
                } else {
                    format!("{existing}\n{}\n", normalize(&repo))
                };
                vec![(dest, content)]
            } else {
                vec![]
            }
        } else {
            let want = normalize(&repo);
            holding
                .into_iter()
                .map(|(file, body)| {
                    let kept: String = body
                        .trim_end()
                        .lines()
                        .filter(|l| normalize(l) != want)
                        .map(|l| format!("{l}\n"))
                        .collect();
                    (file, kept)
                })
                .collect()
        };
        for (dest, content) in edits {
            let write = converge(
                ctx,
                WriteRequest {
                    dest: dest.clone(),
                    content: content.into_bytes(),
                    attrs: Attributes {
                        mode: Some(mode.clone()),
                        ..Default::default()
                    },
                    backup: false,
                    validate: None,
                    force: true,
                    follow: false,
                },
            )
            .await?;
            changed |= write.changed;
            result.diffs.extend(write.diffs);
            result.data.insert("sources_list".into(), dest.into());
        }
        if changed && update_cache && !ctx.check_mode {
            ctx.run_ok(
                &format!("{} update", super::apt::apt_get(60, "")),
                None,
                "apt-get update",
            )
            .await?;
        }
        result.changed = changed;
        Ok(result.with("repo", repo).with("state", state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_follow_ansible() {
        assert_eq!(
            suggest_filename("deb [arch=amd64 signed-by=/k.gpg] https://dl.google.com/linux/chrome/deb/ stable main"),
            "dl_google_com_linux_chrome_deb"
        );
        assert_eq!(
            suggest_filename("deb http://user:pw@repo.example.com/debian bookworm main"),
            "repo_example_com_debian"
        );
    }

    #[test]
    fn finds_lines_whatever_the_spacing() {
        let listing =
            "==> /etc/apt/sources.list\ndeb  http://a/ x main\n# deb http://b/ y main\n\n";
        assert_eq!(files_holding(listing, "deb http://a/ x main").len(), 1);
        assert!(files_holding(listing, "deb http://b/ y main").is_empty());
    }
}
