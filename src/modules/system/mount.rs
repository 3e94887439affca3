//! `mount` (ansible.posix): a filesystem's line in fstab and whether it is mounted now.
//!
//! The fstab edit goes through the shared text edit (atomic, `backup`, `--diff`); whether the
//! path is mounted is read from `/proc/mounts`. States: `present`/`absent_from_fstab` touch
//! only fstab, `unmounted`/`remounted`/`ephemeral` only the live mount, `mounted` and
//! `absent` both.

use async_trait::async_trait;

use crate::connection::quote;
use crate::modules::files::edit::{edit_text, Line, Lines, TextEdit, WhenAbsent};
use crate::modules::files::write::Attributes;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Mount;

/// One fstab entry as the module writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub src: String,
    pub path: String,
    pub fstype: String,
    pub opts: String,
    pub dump: String,
    pub passno: String,
}

impl Entry {
    /// The fstab line, fields escaped as fstab and `/proc/mounts` escape them.
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            escape(&self.src),
            escape(&self.path),
            escape(&self.fstype),
            escape(&self.opts),
            self.dump,
            self.passno
        )
    }

    /// Whether an fstab line's fields say the same (missing dump and passno are 0).
    fn matches(&self, fields: &[String]) -> bool {
        let field = |i: usize| fields.get(i).map_or("0", String::as_str);
        fields.len() >= 4
            && fields[0] == self.src
            && fields[2] == self.fstype
            && fields[3] == self.opts
            && field(4) == self.dump
            && field(5) == self.passno
    }
}

/// Spaces, tabs, newlines and backslashes as octal escapes (`\040`), as fstab(5) wants.
pub fn escape(field: &str) -> String {
    let mut out = String::new();
    for c in field.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

/// The reverse of `escape` (any `\ooo` octal escape).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The unescaped fields of an fstab or `/proc/mounts` line; None for comments and blanks.
fn fields(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    Some(line.split_whitespace().map(unescape).collect())
}

/// fstab's bytes with `path`'s lines set to `entry` (appended when it has none) or, without
/// an entry, removed. Lines already saying the same keep their bytes.
pub fn edit_fstab(bytes: &[u8], path: &str, entry: Option<&Entry>) -> Vec<u8> {
    let mut file = Lines::parse(bytes);
    let mut found = false;
    let mut kept = Vec::new();
    for line in file.lines.drain(..) {
        let text = String::from_utf8_lossy(&line.text).into_owned();
        let Some(f) = fields(&text).filter(|f| f.get(1).map(String::as_str) == Some(path)) else {
            kept.push(line);
            continue;
        };
        found = true;
        match entry {
            Some(e) if e.matches(&f) => kept.push(line),
            Some(e) => kept.push(Line {
                text: e.line().into_bytes(),
                end: line.end,
            }),
            None => {}
        }
    }
    file.lines = kept;
    if let (Some(e), false) = (entry, found) {
        let end = file.lines.len();
        file.insert(end, vec![e.line().into_bytes()]);
    }
    file.to_bytes()
}

/// The source and filesystem type `path` is mounted with, from `/proc/mounts` (the last
/// mount on a path is the one in effect).
pub fn mounted(proc_mounts: &str, path: &str) -> Option<(String, String)> {
    proc_mounts
        .lines()
        .filter_map(fields)
        .filter(|f| f.len() >= 3 && f[1] == path)
        .map(|f| (f[0].clone(), f[2].clone()))
        .next_back()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Mounted,
    Unmounted,
    Present,
    Absent,
    AbsentFromFstab,
    Remounted,
    Ephemeral,
}

#[async_trait]
impl Module for Mount {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args.required_path(ctx, &["path", "name"]).await?;
        let state = match args
            .choice(
                "state",
                &[
                    "mounted",
                    "unmounted",
                    "present",
                    "absent",
                    "absent_from_fstab",
                    "remounted",
                    "ephemeral",
                ],
                "present",
            )?
            .as_str()
        {
            "mounted" => State::Mounted,
            "unmounted" => State::Unmounted,
            "absent" => State::Absent,
            "absent_from_fstab" => State::AbsentFromFstab,
            "remounted" => State::Remounted,
            "ephemeral" => State::Ephemeral,
            _ => State::Present,
        };
        let src = args.str(&["src"])?;
        let fstype = args.str(&["fstype"])?;
        let mut opts = args.str(&["opts"])?.unwrap_or_else(|| "defaults".into());
        let dump = args.str(&["dump"])?.unwrap_or_else(|| "0".into());
        let passno = args.str(&["passno"])?.unwrap_or_else(|| "0".into());
        let fstab = args.str(&["fstab"])?.unwrap_or_else(|| "/etc/fstab".into());
        let boot = args.bool("boot", true)?;
        let backup = args.bool("backup", false)?;
        args.finish()?;
        let path = path.trim_end_matches('/').to_string();
        let path = if path.is_empty() { "/".into() } else { path };
        if !boot && !opts.split(',').any(|o| o == "noauto") {
            opts = if opts == "defaults" {
                "noauto".into()
            } else {
                format!("{opts},noauto")
            };
        }
        let needs_source = matches!(state, State::Mounted | State::Present | State::Ephemeral);
        let entry = match (&src, &fstype) {
            (Some(src), Some(fstype)) => Some(Entry {
                src: src.clone(),
                path: path.clone(),
                fstype: fstype.clone(),
                opts: opts.clone(),
                dump,
                passno,
            }),
            _ if needs_source => {
                return Err(ModuleError::Args(
                    "mount: state is mounted, present or ephemeral but any of the following are missing: src, fstype".into(),
                ))
            }
            _ => None,
        };

        let mut result = ModuleResult::changed(false);
        let fstab_entry = match state {
            State::Mounted | State::Present => Some(entry.as_ref()),
            State::Absent | State::AbsentFromFstab => Some(None),
            _ => None,
        };
        if let Some(wanted) = fstab_entry {
            result = edit_text(
                ctx,
                TextEdit {
                    module: "mount",
                    path: fstab.clone(),
                    absent: if wanted.is_some() {
                        WhenAbsent::Create
                    } else {
                        WhenAbsent::Skip("fstab not present")
                    },
                    attrs: Attributes::default(),
                    backup,
                    validate: None,
                    follow: true,
                },
                |current| edit_fstab(current, &path, wanted),
            )
            .await?;
            result.msg = None;
        }
        let fstab_changed = result.changed;

        let live = ctx
            .run_ok("cat /proc/mounts", None, "reading /proc/mounts")
            .await?;
        let now = mounted(&live.stdout_text(), &path);
        let q = quote(&path);
        let mount_new = |e: &Entry| {
            format!(
                "mkdir -p -- {q} && mount -t {} -o {} -- {} {q}",
                quote(&e.fstype),
                quote(&e.opts),
                quote(&e.src)
            )
        };
        let command = match (state, &now, &entry) {
            (State::Mounted | State::Ephemeral, None, Some(e)) => Some(mount_new(e)),
            (State::Mounted, Some(_), Some(e)) if fstab_changed => Some(format!(
                "mount -o {} -- {q} || {{ umount -- {q} && {}; }}",
                quote(&format!("remount,{}", e.opts)),
                mount_new(e)
            )),
            (State::Ephemeral, Some((s, t)), Some(e)) if *s != e.src || *t != e.fstype => {
                return Err(ModuleError::Failed(format!(
                    "mount: ephemeral mount point {path} is already mounted with a different source or filesystem type ({s}, {t})"
                )))
            }
            (State::Unmounted, Some(_), _) => Some(format!("umount -- {q}")),
            (State::Absent, Some(_), _) => Some(format!("umount -- {q} && {{ rmdir -- {q} 2>/dev/null || true; }}")),
            (State::Remounted, Some(_), _) => Some(format!(
                "mount -o {} -- {q}",
                quote(&entry.as_ref().map_or("remount".into(), |e| format!("remount,{}", e.opts)))
            )),
            (State::Remounted, None, _) => {
                return Err(ModuleError::Failed(format!(
                    "mount: {path} is not mounted, so it cannot be remounted"
                )))
            }
            _ => None,
        };
        if let Some(command) = command {
            result.changed = true;
            if !ctx.check_mode {
                ctx.run_ok(&command, None, "mount").await?;
            }
        }
        let mut result = result
            .with("name", path.as_str())
            .with("opts", opts.as_str())
            .with("fstab", fstab.as_str())
            .with("dump", entry.as_ref().map_or("0", |e| e.dump.as_str()))
            .with("passno", entry.as_ref().map_or("0", |e| e.passno.as_str()));
        if let Some(e) = &entry {
            result = result
                .with("src", e.src.as_str())
                .with("fstype", e.fstype.as_str());
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Entry {
        Entry {
            src: "/dev/sdb1".into(),
            path: "/srv/my data".into(),
            fstype: "ext4".into(),
            opts: "defaults,noatime".into(),
            dump: "0".into(),
            passno: "2".into(),
        }
    }

    const FSTAB: &[u8] = b"# /etc/fstab\nUUID=1 / ext4 errors=remount-ro 0 1\n/dev/sdb1\t/srv/my\\040data ext4 defaults 0 2\n";

    #[test]
    fn entries_are_replaced_appended_and_removed() {
        let e = data();
        assert_eq!(
            String::from_utf8_lossy(&edit_fstab(FSTAB, "/srv/my data", Some(&e))),
            "# /etc/fstab\nUUID=1 / ext4 errors=remount-ro 0 1\n/dev/sdb1 /srv/my\\040data ext4 defaults,noatime 0 2\n"
        );
        let once = edit_fstab(b"# empty\n", "/srv/my data", Some(&e));
        assert_eq!(
            String::from_utf8_lossy(&once),
            "# empty\n/dev/sdb1 /srv/my\\040data ext4 defaults,noatime 0 2\n"
        );
        assert_eq!(edit_fstab(&once, "/srv/my data", Some(&e)), once);
        assert_eq!(
            String::from_utf8_lossy(&edit_fstab(FSTAB, "/srv/my data", None)),
            "# /etc/fstab\nUUID=1 / ext4 errors=remount-ro 0 1\n"
        );
        // A line saying the same in other spacing keeps its bytes; missing dump/passno are 0.
        let same = b"/dev/sdb1\t/srv/my\\040data  ext4 defaults,noatime 0 2\r\n";
        assert_eq!(edit_fstab(same, "/srv/my data", Some(&e)), same);
        let short = Entry {
            passno: "0".into(),
            ..data()
        };
        let no_numbers = b"/dev/sdb1 /srv/my\\040data ext4 defaults,noatime\n";
        assert_eq!(
            edit_fstab(no_numbers, "/srv/my data", Some(&short)),
            no_numbers
        );
    }

    #[test]
    fn mounts_are_read_from_proc_mounts() {
        let proc = "overlay / overlay rw 0 0\ntmpfs /srv/my\\040data tmpfs rw,relatime 0 0\ntmpfs /run tmpfs rw 0 0\nnone /run tmpfs rw 0 0\n";
        assert_eq!(
            mounted(proc, "/srv/my data"),
            Some(("tmpfs".into(), "tmpfs".into()))
        );
        assert_eq!(mounted(proc, "/run"), Some(("none".into(), "tmpfs".into())));
        assert_eq!(mounted(proc, "/srv"), None);
        assert_eq!(escape("a b\\c"), "a\\040b\\134c");
        assert_eq!(unescape("a\\040b\\134c\\9"), "a b\\c\\9");
    }
}
