//! `file`'s pure plan: from the typed arguments and what the path is now, the steps that
//! converge it (no target needed; unit-tested on recorded states).

use super::stamp::Stamp;
use crate::connection::quote;
use crate::modules::files::write::{AttrChange, Attributes};
use crate::modules::util::PathState;
use crate::modules::ModuleError;

/// The `state` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Absent,
    Directory,
    File,
    Touch,
    Link,
    Hard,
}

impl FileState {
    pub fn parse(text: &str) -> Result<Self, ModuleError> {
        Ok(match text {
            "absent" => Self::Absent,
            "directory" => Self::Directory,
            "file" => Self::File,
            "touch" => Self::Touch,
            "link" => Self::Link,
            "hard" => Self::Hard,
            other => {
                return Err(ModuleError::Args(format!(
                    "file: value of state must be one of: absent, directory, file, hard, link, touch, got: {other}"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Directory => "directory",
            Self::File => "file",
            Self::Touch => "touch",
            Self::Link => "link",
            Self::Hard => "hard",
        }
    }
}

/// The module's arguments, checked and typed.
#[derive(Debug, Clone, Default)]
pub struct FileArgs {
    pub path: String,
    /// None: Ansible's default, decided by what the path is (`FileArgs::wanted`).
    pub state: Option<FileState>,
    /// The link target; always present for `link` and `hard`.
    pub src: Option<String>,
    pub recurse: bool,
    pub force: bool,
    pub attrs: Attributes,
    /// `modification_time` and `access_time`.
    pub mtime: Stamp,
    pub atime: Stamp,
}

impl FileArgs {
    /// Whether the wanted state creates an absent path, so that its plan for an absent path
    /// can be sent ahead with the first command.
    pub fn creates(&self) -> bool {
        matches!(
            self.state,
            Some(FileState::Directory | FileState::Touch | FileState::Link | FileState::Hard)
        )
    }

    /// The state to converge to. Ansible's default: keep the current kind, or `file` when
    /// absent.
    pub fn wanted(&self, current: &PathState) -> FileState {
        match self.state {
            Some(state) => state,
            None if self.src.is_some() => FileState::Link,
            None if current.exists => match current.kind.as_str() {
                "directory" => FileState::Directory,
                "link" => FileState::Link,
                _ => FileState::File,
            },
            None if self.recurse => FileState::Directory,
            None => FileState::File,
        }
    }
}

/// What the target told about the path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub path: PathState,
    /// `hard`: the existing path already is the same file as `src`.
    pub same_file: bool,
    /// `recurse`: something below the existing directory has another owner or group than
    /// wanted.
    pub tree_differs: bool,
    /// `link` without `force`: the link's source as seen from the link's directory, when
    /// nothing is there.
    pub missing_src: Option<String>,
}

/// One change to the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Remove,
    /// With its parents, and with its mode from the start when one is wanted.
    CreateDirectory {
        mode: Option<u32>,
    },
    /// `no_follow`: a link's own times (touching through it would create whatever a dangling
    /// link names, say /etc/nologin, as root).
    Touch {
        no_follow: bool,
    },
    Link {
        src: String,
        symbolic: bool,
    },
    /// Sets the times asked for (`Now` or `At`; `Preserve` leaves one alone).
    Times {
        mtime: Stamp,
        atime: Stamp,
        no_follow: bool,
    },
    Attribute {
        change: AttrChange,
        recursive: bool,
    },
}

impl Step {
    /// The shell command for this step on the path `path`.
    pub fn command(&self, path: &str) -> String {
        let q = quote(path);
        match self {
            Step::Remove => format!("rm -rf -- {q}"),
            // `install -d` creates the directory (and parents) with its mode in one process.
            Step::CreateDirectory { mode: Some(mode) } => {
                format!(
                    "install -d -m {} -- {q}",
                    crate::modules::util::octal(*mode)
                )
            }
            Step::CreateDirectory { mode: None } => format!("mkdir -p -- {q}"),
            Step::Touch { no_follow: true } => format!("touch -h -- {q}"),
            Step::Touch { no_follow: false } => format!("touch -- {q}"),
            Step::Link { src, symbolic } => {
                let flag = if *symbolic { "-s " } else { "" };
                format!("ln {flag}-f -n -- {} {q}", quote(src))
            }
            Step::Times {
                mtime,
                atime,
                no_follow,
            } => {
                let link = if *no_follow { "-h " } else { "" };
                let set = |stamp: &Stamp, which: &str| match stamp {
                    Stamp::At(epoch) => Some(format!("touch -c {link}-{which} -d @{epoch} -- {q}")),
                    Stamp::Now => Some(format!("touch -c {link}-{which} -- {q}")),
                    Stamp::Preserve | Stamp::Unset => None,
                };
                [set(mtime, "m"), set(atime, "a")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" && ")
            }
            Step::Attribute { change, recursive } => change.command(&q, *recursive),
        }
    }
}

/// The step that sets the path's times as asked, if any is needed: none when both are kept
/// or already are the times wanted; `now` always changes them, as in Ansible.
fn time_step(args: &FileArgs, state: FileState, current: &PathState) -> Option<Step> {
    let resolve = |stamp: Stamp| match stamp {
        Stamp::Unset if state == FileState::Touch => Stamp::Now,
        Stamp::Unset => Stamp::Preserve,
        other => other,
    };
    let (mtime, atime) = (resolve(args.mtime), resolve(args.atime));
    let no_follow = current.kind == "link";
    let already = |stamp: Stamp, now: f64| match stamp {
        Stamp::Preserve | Stamp::Unset => true,
        Stamp::Now => false,
        Stamp::At(epoch) => current.exists && now == epoch as f64,
    };
    match (mtime, atime) {
        (Stamp::Now, Stamp::Now) => Some(Step::Touch { no_follow }),
        _ if already(mtime, current.mtime) && already(atime, current.inode.atime) => None,
        _ => Some(Step::Times {
            mtime,
            atime,
            no_follow,
        }),
    }
}

/// The steps, the state they reach, and the mode the path ends with (when known).
#[derive(Debug, Clone, PartialEq)]
pub struct FilePlan {
    pub state: FileState,
    pub steps: Vec<Step>,
    pub mode: Option<u32>,
}

impl FilePlan {
    /// All steps as one command.
    pub fn script(&self, path: &str) -> String {
        let commands: Vec<String> = self.steps.iter().map(|s| s.command(path)).collect();
        commands.join(" && ")
    }
}

/// The plan that converges the path from `observed` to what `args` ask for.
pub fn plan(args: &FileArgs, observed: &Observed) -> Result<FilePlan, ModuleError> {
    let current = &observed.path;
    let state = args.wanted(current);
    if let (FileState::Link, Some(absrc)) = (state, &observed.missing_src) {
        return Err(ModuleError::Failed(format!(
            "src file does not exist, use \"force=yes\" if you really want to create the link: {absrc}"
        )));
    }
    let attrs = &args.attrs;
    let path = &args.path;
    let attribute =
        |recursive: bool| move |change: AttrChange| Step::Attribute { change, recursive };
    let mut steps = Vec::new();
    match state {
        FileState::Absent => {
            if current.exists {
                steps.push(Step::Remove);
            }
        }
        FileState::Directory if !current.exists => {
            steps.push(Step::CreateDirectory {
                mode: attrs.wanted_mode(None, true),
            });
            steps.extend(attrs.ownership().into_iter().map(attribute(args.recurse)));
        }
        FileState::Directory => {
            if current.kind != "directory" {
                return Err(ModuleError::Failed(format!(
                    "{path} already exists as a {}",
                    current.kind
                )));
            }
            steps.extend(attrs.differences(current).into_iter().map(attribute(false)));
            if observed.tree_differs {
                steps.extend(attrs.ownership().into_iter().map(attribute(true)));
            }
        }
        FileState::File => {
            if !current.exists {
                return Err(ModuleError::Failed(format!(
                    "file ({path}) is absent, cannot continue (use state=touch to create it)"
                )));
            }
            steps.extend(attrs.differences(current).into_iter().map(attribute(false)));
        }
        FileState::Touch if !current.exists => {
            steps.push(Step::Touch { no_follow: false });
            // A new file has the times of now: only given ones are set after.
            if let Some(Step::Times { .. }) = time_step(args, state, current) {
                steps.extend(time_step(args, state, current));
            }
            if let Some(mode) = attrs.wanted_mode(None, false) {
                steps.push(attribute(false)(AttrChange::Mode(mode)));
            }
            steps.extend(attrs.ownership().into_iter().map(attribute(false)));
        }
        FileState::Touch => {
            steps.extend(time_step(args, state, current));
            steps.extend(attrs.differences(current).into_iter().map(attribute(false)));
        }
        FileState::Link | FileState::Hard => {
            let symbolic = state == FileState::Link;
            let src = args.src.as_deref().ok_or_else(|| missing_src(state))?;
            let correct = if symbolic {
                current.kind == "link" && current.link_target.as_deref() == Some(src)
            } else {
                current.exists && observed.same_file
            };
            if !correct {
                if symbolic && current.exists && current.kind != "link" && !args.force {
                    return Err(ModuleError::Failed(format!(
                        "refusing to convert from {} to symlink for {path} (use force: yes)",
                        current.kind
                    )));
                }
                steps.push(Step::Link {
                    src: src.to_string(),
                    symbolic,
                });
            }
            if current.exists {
                steps.extend(attrs.differences(current).into_iter().map(attribute(false)));
            } else {
                steps.extend(attrs.ownership().into_iter().map(attribute(false)));
            }
        }
    }
    // Times given for other states are set once the path is what it should be.
    if !matches!(state, FileState::Absent | FileState::Touch) {
        steps.extend(time_step(args, state, current));
    }
    let known = current.exists.then_some(current.mode);
    let mode = attrs
        .wanted_mode(known, state == FileState::Directory)
        .or(known);
    Ok(FilePlan { state, steps, mode })
}

pub fn missing_src(state: FileState) -> ModuleError {
    let state = state.as_str();
    ModuleError::Args(format!(
        "file: src is required for creating a {state} (state={state})"
    ))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
