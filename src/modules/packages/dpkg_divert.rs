//! `dpkg_divert` (community.general): a dpkg diversion added, changed or removed with
//! `dpkg-divert` itself (`--listpackage`/`--truename` to read it, `--test` in check mode), with
//! the module's `diversion`, `commands` and `messages` return values. Needs dpkg >= 1.19.1
//! (`--no-rename`: Debian 10 and later).

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Diff, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::value::map_value;

pub struct DpkgDivert;

/// A path's diversion as `dpkg-divert` reports it (`holder` and `divert` only when present).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diversion {
    pub present: bool,
    pub holder: Option<String>,
    pub divert: Option<String>,
}

/// What the probe saw: the diversion and which of the files involved exist.
#[derive(Debug, Default, PartialEq)]
pub struct Observed {
    pub diversion: Diversion,
    pub path_exists: bool,
    /// The wanted divert-to file.
    pub target_exists: bool,
    /// The current diversion's divert-to file.
    pub truename_exists: bool,
}

/// The typed arguments.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub path: String,
    pub present: bool,
    /// `LOCAL` or a package name.
    pub holder: String,
    pub divert: String,
    pub rename: bool,
    pub force: bool,
}

/// What to do, decided from the arguments and the probe.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Nothing changes; `dpkg-divert --test` still reports what it would do.
    Nothing,
    /// One `dpkg-divert --add` or `--remove`, after removing a file in the way (`force`).
    Switch { unlink: Option<String> },
    /// A present diversion with another holder or divert-to name: removed, then added.
    Replace,
}

/// One command reading the diversion of `path` and whether the files involved exist.
fn probe_command(path: &str, target: &str) -> String {
    let p = quote(path);
    format!(
        "command -v dpkg-divert >/dev/null || {{ echo 'Failed to find required executable \"dpkg-divert\"' >&2; exit 127; }}; \
         h=$(dpkg-divert --listpackage {p}) || exit; printf 'holder:%s\\n' \"$h\"; \
         if [ -n \"$h\" ]; then t=$(dpkg-divert --truename {p}) || exit; printf 'truename:%s\\n' \"$t\"; \
         [ -e \"$t\" ] && echo truename-exists; fi; \
         [ -e {p} ] && echo path-exists; [ -e {t} ] && echo target-exists; true",
        t = quote(target),
    )
}

/// Reads `probe_command`'s output (pure: unit-tested on recorded output).
pub fn parse(text: &str) -> Observed {
    let mut seen = Observed::default();
    for line in text.lines() {
        if let Some(holder) = line.strip_prefix("holder:") {
            if !holder.is_empty() {
                seen.diversion.present = true;
                seen.diversion.holder = Some(holder.to_string());
            }
        } else if let Some(name) = line.strip_prefix("truename:") {
            seen.diversion.divert = Some(name.to_string());
        } else {
            match line {
                "path-exists" => seen.path_exists = true,
                "target-exists" => seen.target_exists = true,
                "truename-exists" => seen.truename_exists = true,
                _ => {}
            }
        }
    }
    seen
}

impl Wanted {
    fn diversion(&self) -> Diversion {
        Diversion {
            present: self.present,
            holder: self.present.then(|| self.holder.clone()),
            divert: self.present.then(|| self.divert.clone()),
        }
    }

    /// `dpkg-divert`'s arguments for the add or remove (after the program's name).
    fn main_args(&self, rename: bool) -> Vec<String> {
        let mut words = vec![if rename { "--rename" } else { "--no-rename" }.to_string()];
        if self.present {
            if self.holder == "LOCAL" {
                words.push("--local".into());
            } else {
                words.extend(["--package".into(), self.holder.clone()]);
            }
            words.extend(["--divert".into(), self.divert.clone(), "--add".into()]);
        } else {
            words.push("--remove".into());
        }
        words.push(self.path.clone());
        words
    }
}

/// The plan (pure). A rename onto a file that exists needs `force`, as the module says.
pub fn plan(wanted: &Wanted, seen: &Observed) -> Result<Plan, String> {
    let before = &seen.diversion;
    if *before == wanted.diversion() {
        return Ok(Plan::Nothing);
    }
    if before.present != wanted.present {
        let other_exists = if wanted.present {
            seen.target_exists
        } else {
            seen.truename_exists
        };
        if wanted.rename && seen.path_exists && other_exists {
            if !wanted.force {
                return Err("Set 'force' param to True to force renaming of files.".into());
            }
            let unlink = if wanted.present {
                wanted.divert.clone()
            } else {
                wanted.path.clone()
            };
            return Ok(Plan::Switch {
                unlink: Some(unlink),
            });
        }
        return Ok(Plan::Switch { unlink: None });
    }
    Ok(Plan::Replace)
}

fn diversion_value(path: &str, d: &Diversion) -> Value {
    let text = |v: &Option<String>| v.clone().map(Value::from).unwrap_or(Value::from(()));
    let mut map = IndexMap::new();
    map.insert("path".to_string(), Value::from(path));
    map.insert(
        "state".to_string(),
        Value::from(if d.present { "present" } else { "absent" }),
    );
    map.insert("divert".to_string(), text(&d.divert));
    map.insert("holder".to_string(), text(&d.holder));
    map_value(map)
}

fn diversion_text(path: &str, d: &Diversion) -> String {
    format!(
        "path: {path}\nstate: {}\ndivert: {}\nholder: {}\n",
        if d.present { "present" } else { "absent" },
        d.divert.as_deref().unwrap_or("null"),
        d.holder.as_deref().unwrap_or("null"),
    )
}

/// A command line for display (as the module shows it) and for the shell.
fn command(words: &[String], test: bool) -> (String, String) {
    let shown = std::iter::once("/usr/bin/dpkg-divert")
        .chain(words.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let mut run = vec!["dpkg-divert".to_string()];
    if test {
        run.push("--test".into());
    }
    run.extend(words.iter().map(|w| quote(w)));
    (shown, run.join(" "))
}

#[async_trait]
impl Module for DpkgDivert {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args.required_str(&["path"])?;
        let present = args.choice("state", &["present", "absent"], "present")? == "present";
        let holder = args
            .str(&["holder"])?
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "LOCAL".into());
        let divert = args
            .str(&["divert"])?
            .unwrap_or_else(|| format!("{path}.distrib"));
        let rename = args.bool("rename", false)?;
        let force = args.bool("force", false)?;
        args.finish()?;
        let wanted = Wanted {
            path,
            present,
            holder,
            divert,
            rename,
            force,
        };
        let probe = probe_command(&wanted.path, &wanted.divert);
        let out = ctx.run_ok(&probe, None, "reading the diversion").await?;
        let seen = parse(&out.stdout_text());
        let step = plan(&wanted, &seen).map_err(ModuleError::Failed)?;

        let main = wanted.main_args(wanted.rename);
        let (mut commands, mut messages) = (Vec::new(), Vec::new());
        let test = ctx.check_mode || step == Plan::Nothing;
        match &step {
            Plan::Nothing | Plan::Switch { .. } => {
                let (shown, run) = command(&main, test);
                commands.push(shown);
                let mut script = run;
                if let Plan::Switch { unlink: Some(file) } = &step {
                    if !test {
                        script = format!("rm -f -- {} && {script}", quote(file));
                    }
                }
                let out = ctx.run(&script, None).await?;
                // A rename that needs `force` fails under `--test`: its message is the plan's.
                if out.rc != 0 && !(test && matches!(step, Plan::Switch { unlink: Some(_) })) {
                    return Err(ModuleResult::changed(false)
                        .with("cmd", commands[0].clone())
                        .with("rc", out.rc)
                        .with("stdout", out.stdout_text())
                        .with("stderr", out.stderr_text())
                        .fail("Unexpected error while changing state of the diversion."));
                }
                messages.push(out.stdout_text().trim_end().to_string());
            }
            Plan::Replace => {
                let remove = vec![
                    "--no-rename".to_string(),
                    "--remove".to_string(),
                    wanted.path.clone(),
                ];
                let add = wanted.main_args(false);
                let (rm_shown, rm_run) = command(&remove, ctx.check_mode);
                let (add_shown, add_run) = command(&add, false);
                commands.extend([rm_shown, add_shown]);
                if ctx.check_mode {
                    let out = ctx.run_ok(&rm_run, None, "dpkg-divert").await?;
                    messages.push(out.stdout_text().trim_end().to_string());
                    messages.push("Running in check mode".into());
                } else {
                    let rm = ctx.run_ok(&rm_run, None, "dpkg-divert").await?;
                    let add = ctx.run_ok(&add_run, None, "dpkg-divert").await?;
                    messages.push(rm.stdout_text().trim_end().to_string());
                    messages.push(add.stdout_text().trim_end().to_string());
                    // Keep the diverted file under its new name, as the module does.
                    if let Some(old) = seen.diversion.divert.as_deref() {
                        if old != wanted.divert {
                            let (o, n) = (quote(old), quote(&wanted.divert));
                            ctx.run(
                                &format!("if [ -e {o} ] && [ ! -e {n} ]; then mv -- {o} {n}; fi"),
                                None,
                            )
                            .await?;
                        }
                    }
                }
            }
        }
        let after = wanted.diversion();
        let mut result = ModuleResult::changed(step != Plan::Nothing);
        if ctx.diff && result.changed {
            result.diffs.push(Diff {
                before_header: wanted.path.clone(),
                after_header: wanted.path.clone(),
                before: diversion_text(&wanted.path, &seen.diversion),
                after: diversion_text(&wanted.path, &after),
            });
        }
        Ok(result
            .with("diversion", diversion_value(&wanted.path, &after))
            .with("commands", commands)
            .with("messages", messages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(present: bool) -> Wanted {
        Wanted {
            path: "/etc/foo".into(),
            present,
            holder: "LOCAL".into(),
            divert: "/etc/foo.distrib".into(),
            rename: false,
            force: false,
        }
    }

    #[test]
    fn the_probe_reads_a_local_diversion() {
        let seen = parse("holder:LOCAL\ntruename:/etc/foo.distrib\ntruename-exists\npath-exists\n");
        assert_eq!(
            seen.diversion,
            Diversion {
                present: true,
                holder: Some("LOCAL".into()),
                divert: Some("/etc/foo.distrib".into()),
            }
        );
        assert!(seen.truename_exists && seen.path_exists && !seen.target_exists);
        assert_eq!(
            parse("holder:\npath-exists\n").diversion,
            Diversion::default()
        );
    }

    #[test]
    fn plans_follow_the_diversion() {
        let local = parse("holder:LOCAL\ntruename:/etc/foo.distrib\n");
        assert_eq!(plan(&wanted(true), &local), Ok(Plan::Nothing));
        assert_eq!(
            plan(&wanted(false), &local),
            Ok(Plan::Switch { unlink: None })
        );
        assert_eq!(
            plan(&wanted(true), &Observed::default()),
            Ok(Plan::Switch { unlink: None })
        );
        assert_eq!(
            plan(&wanted(false), &Observed::default()),
            Ok(Plan::Nothing)
        );
        let mut other = wanted(true);
        other.divert = "/etc/foo.orig".into();
        assert_eq!(plan(&other, &local), Ok(Plan::Replace));
        other.holder = "base-files".into();
        assert_eq!(plan(&other, &local), Ok(Plan::Replace));
    }

    #[test]
    fn renaming_onto_an_existing_file_needs_force() {
        let seen = parse("holder:\npath-exists\ntarget-exists\n");
        let mut w = wanted(true);
        w.rename = true;
        assert!(plan(&w, &seen).unwrap_err().contains("force"));
        w.force = true;
        assert_eq!(
            plan(&w, &seen),
            Ok(Plan::Switch {
                unlink: Some("/etc/foo.distrib".into())
            })
        );
    }

    #[test]
    fn commands_show_as_the_module_shows_them() {
        let (shown, run) = command(&wanted(true).main_args(false), true);
        assert_eq!(
            shown,
            "/usr/bin/dpkg-divert --no-rename --local --divert /etc/foo.distrib --add /etc/foo"
        );
        assert!(run.starts_with("dpkg-divert --test --no-rename"), "{run}");
    }
}
