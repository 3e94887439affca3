//! Helpers shared by modules: file modes, target-side state probes.

/// A `mode:` option: octal (`0644`, `"0644"`, `420` from YAML's 0644) or symbolic (`u=rw,g=r`).
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Octal(u32),
    Symbolic(String),
    /// `preserve`: keep the source's mode (copy).
    Preserve,
}

pub fn parse_mode(value: &minijinja::Value) -> Result<Mode, String> {
    if let Some(i) = value.as_i64() {
        // YAML 1.1 already turned 0644 into 420; a plain number is taken as that value.
        if !(0..=0o7777).contains(&i) {
            return Err(format!("mode {i} is out of range"));
        }
        return Ok(Mode::Octal(i as u32));
    }
    let text = value.to_string();
    let text = text.trim();
    if text == "preserve" {
        return Ok(Mode::Preserve);
    }
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return u32::from_str_radix(text, 8)
            .map(Mode::Octal)
            .map_err(|_| format!("invalid mode '{text}'"));
    }
    let symbolic = regex::Regex::new(r"^([ugoa]*[-+=][rwxXst]*)(,[ugoa]*[-+=][rwxXst]*)*$")
        .expect("static pattern");
    if symbolic.is_match(text) {
        return Ok(Mode::Symbolic(text.to_string()));
    }
    Err(format!(
        "mode must be octal (like '0644') or symbolic (like 'u=rw,g=r'), got '{text}'"
    ))
}

/// The mode a symbolic expression yields when applied to `current` (umask not applied, as
/// chmod with explicit `who` does; an empty `who` means `a`).
pub fn apply_symbolic(current: u32, expr: &str, is_dir: bool) -> u32 {
    let mut mode = current & 0o7777;
    for clause in expr.split(',') {
        let op_at = clause.find(['+', '-', '=']).unwrap_or(0);
        let (who, rest) = clause.split_at(op_at);
        let op = rest.chars().next().unwrap_or('=');
        let perms = &rest[1..];
        let who = if who.is_empty() { "a" } else { who };
        let mut mask = 0u32;
        for w in who.chars() {
            mask |= match w {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
        }
        let mut bits = 0u32;
        for p in perms.chars() {
            bits |= match p {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || current & 0o111 != 0 => 0o111,
                's' => 0o6000,
                't' => 0o1000,
                _ => 0,
            };
        }
        let bits = bits & mask;
        mode = match op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => {
                (mode
                    & !(mask & 0o777
                        | if who.contains('a') || who.contains('u') {
                            0o4000
                        } else {
                            0
                        }
                        | if who.contains('a') || who.contains('g') {
                            0o2000
                        } else {
                            0
                        }))
                    | bits
            }
        };
    }
    mode
}

/// Resolves a wanted mode against the current one (for comparison and `chmod`).
pub fn wanted_mode(mode: &Mode, current: Option<u32>, is_dir: bool) -> Option<u32> {
    match mode {
        Mode::Octal(m) => Some(*m),
        Mode::Symbolic(expr) => Some(apply_symbolic(
            current.unwrap_or(if is_dir { 0o755 } else { 0o644 }),
            expr,
            is_dir,
        )),
        Mode::Preserve => None,
    }
}

/// What a path on the target is, as `present_state_command` reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathState {
    pub exists: bool,
    /// `file`, `directory`, `link`, or another `stat %F` word.
    pub kind: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the epoch, to the microsecond (Python's `st_mtime` float).
    pub mtime: f64,
    pub link_target: Option<String>,
    pub checksum: Option<String>,
    /// The rest of `lstat`, which `stat` and the file modules' path info report.
    pub inode: InodeInfo,
}

/// The `lstat` fields beyond kind, mode, owner and size, named as Python's `os.stat_result`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InodeInfo {
    pub atime: f64,
    pub ctime: f64,
    pub dev: u64,
    pub inode: u64,
    pub nlink: u64,
    pub blocks: u64,
    pub block_size: u64,
    /// A device file's major and minor numbers (`st_rdev`).
    pub rdev: (u64, u64),
}

impl InodeInfo {
    /// `st_rdev` as glibc's `makedev` packs it.
    pub fn device_type(&self) -> u64 {
        let (major, minor) = self.rdev;
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }
}

/// The state of a path that exists (and its sha1 when it is a regular file): the line
/// `kind|mode|owner|group|uid|gid|size|mtime|atime|ctime|dev|inode|nlink|blocks|block
/// size|major|minor|link`, then the checksum line. Wrapped in
/// `if_exists(…, "echo absent")` it reports any path.
pub fn present_state_command(path: &str, with_checksum: bool) -> String {
    let p = crate::connection::quote(path);
    let checksum = if with_checksum {
        format!(" && if [ -f {p} ] && [ ! -L {p} ]; then sha1sum < {p}; fi")
    } else {
        String::new()
    };
    format!("{}{checksum}", stat_command(path))
}

/// `then` when `path` exists (a dangling link counts), `otherwise` when it does not.
pub fn if_exists(path: &str, then: &str, otherwise: &str) -> String {
    let p = crate::connection::quote(path);
    format!("if [ -e {p} ] || [ -L {p} ]; then {then}; else {otherwise}; fi")
}

/// The `stat` call whose output line `parse_probe` reads. The size stays the 7th field and
/// the link (`%N`, which may hold `|`) the last.
pub fn stat_command(path: &str) -> String {
    stat_line_command(path, false)
}

/// `stat_command`, of the path a link names when `follow` (`stat -L`).
pub fn stat_line_command(path: &str, follow: bool) -> String {
    let follow = if follow { "-L " } else { "" };
    format!(
        "stat {follow}-c '{STAT_FORMAT}' -- {}",
        crate::connection::quote(path)
    )
}

const STAT_FORMAT: &str = "%F|%a|%U|%G|%u|%g|%s|%.6Y|%.6X|%.6Z|%d|%i|%h|%b|%o|%Hr|%Lr|%N";
const STAT_FIELDS: usize = 18;

/// Parses `present_state_command` output, or `absent` (pure: unit-tested on recorded output).
pub fn parse_probe(output: &str) -> PathState {
    let mut lines = output.lines();
    let Some(first) = lines.next() else {
        return PathState::default();
    };
    if first.trim() == "absent" {
        return PathState::default();
    }
    let fields: Vec<&str> = first.splitn(STAT_FIELDS, '|').collect();
    let number = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
    let seconds = |i: usize| fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let kind = match fields.first().copied().unwrap_or_default() {
        "regular file" | "regular empty file" => "file",
        "directory" => "directory",
        "symbolic link" => "link",
        other => other,
    }
    .to_string();
    let link_target = fields
        .get(STAT_FIELDS - 1)
        .and_then(|n| n.split_once(" -> "))
        .map(|(_, t)| t.trim_matches(['\'', '"', '`']).to_string());
    PathState {
        exists: true,
        kind,
        mode: fields
            .get(1)
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .unwrap_or(0),
        owner: fields.get(2).unwrap_or(&"").to_string(),
        group: fields.get(3).unwrap_or(&"").to_string(),
        uid: number(4) as u32,
        gid: number(5) as u32,
        size: number(6),
        mtime: seconds(7),
        link_target,
        inode: InodeInfo {
            atime: seconds(8),
            ctime: seconds(9),
            dev: number(10),
            inode: number(11),
            nlink: number(12),
            blocks: number(13),
            block_size: number(14),
            rdev: (number(15), number(16)),
        },
        // `sha1sum` prints "<40 hex digits>  -".
        checksum: lines
            .next()
            .and_then(|l| l.get(..40))
            .filter(|l| l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string),
    }
}

pub fn octal(mode: u32) -> String {
    format!("{mode:04o}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(
            parse_mode(&minijinja::Value::from(420)).unwrap(),
            Mode::Octal(0o644)
        );
        assert_eq!(
            parse_mode(&minijinja::Value::from("0755")).unwrap(),
            Mode::Octal(0o755)
        );
        assert!(parse_mode(&minijinja::Value::from("rwx")).is_err());
        assert_eq!(apply_symbolic(0o600, "g+r,o+r", false), 0o644);
        assert_eq!(apply_symbolic(0o777, "u=rw,g=r,o=", false), 0o640);
        assert_eq!(apply_symbolic(0o644, "a+X", true), 0o755);
    }

    #[test]
    fn probe_output() {
        let state = parse_probe("regular file|644|root|root|0|0|12|1700000000.250000|1700000001.000000|1700000002.500000|65024|1198019|2|8|4096|0|0|'/etc/motd'\nda39a3ee5e6b4b0d3255bfef95601890afd80709\n");
        assert!(state.exists);
        assert_eq!(
            (state.kind.as_str(), state.mode, state.size),
            ("file", 0o644, 12)
        );
        assert_eq!(
            state.checksum.as_deref(),
            Some("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        assert_eq!(state.mtime, 1700000000.25);
        let inode = &state.inode;
        assert_eq!((inode.atime, inode.ctime), (1700000001.0, 1700000002.5));
        assert_eq!((inode.dev, inode.inode, inode.nlink), (65024, 1198019, 2));
        assert_eq!((inode.blocks, inode.block_size), (8, 4096));
        let link = parse_probe(
            "symbolic link|777|root|root|0|0|4|1.0|1.0|1.0|2049|7|1|0|4096|0|0|'/a|x' -> '/b'\n",
        );
        assert_eq!(link.link_target.as_deref(), Some("/b"));
        let null = parse_probe(
            "character special file|666|root|root|0|0|0|1.0|1.0|1.0|6|3|1|0|4096|1|3|'/dev/null'\n",
        );
        assert_eq!(
            (null.kind.as_str(), null.inode.device_type()),
            ("character special file", 259)
        );
        assert!(!parse_probe("absent\n").exists);
    }
}
