//! A path's info as Ansible's modules return it, built in this one place from the `stat`
//! line every file module already reads: the file modules' `add_path_info` fields (`owner`,
//! `group`, `mode`, `state`, `uid`, `gid`, `size`) and the `stat` module's dictionary.

use indexmap::IndexMap;
use minijinja::Value;

use crate::modules::util::PathState;
use crate::modules::ModuleResult;

/// What `stat`'s own script learns besides the `stat` line (all from the same round trip).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatExtras {
    /// `os.access` for the connecting (or become) user: read, write, execute.
    pub access: (bool, bool, bool),
    /// `os.path.realpath` of a link.
    pub realpath: Option<String>,
    pub checksum: Option<String>,
    /// `file --mime-type --mime-encoding`: the type and the charset.
    pub mime: Option<(String, String)>,
    /// `lsattr -vd`: the version and the flags without dashes.
    pub attributes: Option<(String, String)>,
}

/// The mode as Ansible's `add_path_info` writes it: `'0%03o'` (`0644`, `04755`).
fn mode_text(mode: u32) -> String {
    format!("0{mode:03o}")
}

/// A name `stat` could not resolve prints as `UNKNOWN`.
fn known_name(name: &str) -> Option<&str> {
    (!name.is_empty() && name != "UNKNOWN").then_some(name)
}

/// Adds Ansible's `add_path_info` fields for an existing path to a module's result (nothing
/// for a path that does not exist, as in Ansible).
pub fn add_path_info(result: &mut ModuleResult, state: &PathState) {
    if !state.exists {
        return;
    }
    let kind = match state.kind.as_str() {
        "link" => "link",
        "directory" => "directory",
        _ if state.inode.nlink > 1 => "hard",
        _ => "file",
    };
    let name_or_id = |name: &str, id: u32| known_name(name).map_or(id.to_string(), str::to_string);
    let data = &mut result.data;
    data.insert("uid".into(), state.uid.into());
    data.insert("gid".into(), state.gid.into());
    data.insert("owner".into(), name_or_id(&state.owner, state.uid).into());
    data.insert("group".into(), name_or_id(&state.group, state.gid).into());
    data.insert("mode".into(), mode_text(state.mode).into());
    data.insert("state".into(), kind.into());
    data.insert("size".into(), state.size.into());
}

/// The `stat` module's `stat` dictionary for `path`, with the keys ansible-core's returns.
pub fn stat_dict(path: &str, state: &PathState, extras: &StatExtras) -> Value {
    let mut stat: IndexMap<String, Value> = IndexMap::new();
    let mut put = |key: &str, value: Value| {
        stat.insert(key.to_string(), value);
    };
    put("exists", state.exists.into());
    if !state.exists {
        return crate::template::map_value(stat);
    }
    let mode = state.mode;
    let kind = state.kind.as_str();
    let inode = &state.inode;
    put("path", path.into());
    put("mode", format!("{mode:04o}").into());
    put("isdir", (kind == "directory").into());
    put("ischr", (kind == "character special file").into());
    put("isblk", (kind == "block special file").into());
    put("isreg", (kind == "file").into());
    put("isfifo", (kind == "fifo").into());
    put("islnk", (kind == "link").into());
    put("issock", (kind == "socket").into());
    put("uid", state.uid.into());
    put("gid", state.gid.into());
    put("size", state.size.into());
    put("inode", inode.inode.into());
    put("dev", inode.dev.into());
    put("nlink", inode.nlink.into());
    put("atime", inode.atime.into());
    put("mtime", state.mtime.into());
    put("ctime", inode.ctime.into());
    let bits = [
        ("wusr", 0o200),
        ("rusr", 0o400),
        ("xusr", 0o100),
        ("wgrp", 0o020),
        ("rgrp", 0o040),
        ("xgrp", 0o010),
        ("woth", 0o002),
        ("roth", 0o004),
        ("xoth", 0o001),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ];
    for (key, bit) in bits {
        put(key, (mode & bit != 0).into());
    }
    put("blocks", inode.blocks.into());
    put("block_size", inode.block_size.into());
    put("device_type", inode.device_type().into());
    let (readable, writeable, executable) = extras.access;
    put("readable", readable.into());
    put("writeable", writeable.into());
    put("executable", executable.into());
    if kind == "link" {
        let source = extras.realpath.clone().unwrap_or_default();
        put("lnk_source", source.into());
        let target = state.link_target.clone().unwrap_or_default();
        put("lnk_target", target.into());
    }
    if let Some(owner) = known_name(&state.owner) {
        put("pw_name", owner.into());
    }
    if let Some(group) = known_name(&state.group) {
        put("gr_name", group.into());
    }
    if let Some(sum) = &extras.checksum {
        put("checksum", sum.as_str().into());
    }
    if let Some((mimetype, charset)) = &extras.mime {
        put("mimetype", mimetype.as_str().into());
        put("charset", charset.as_str().into());
    }
    if let Some((version, flags)) = &extras.attributes {
        let version = if version.is_empty() {
            Value::from(())
        } else {
            Value::from(version.as_str())
        };
        put("version", version);
        put("attributes", attribute_names(flags).into());
        put("attr_flags", flags.as_str().into());
    }
    crate::template::map_value(stat)
}

/// `lsattr`'s flag letters as Ansible's `format_attributes` names them.
fn attribute_names(flags: &str) -> Vec<Value> {
    const NAMES: &[(char, &str)] = &[
        ('A', "noatime"),
        ('a', "append"),
        ('c', "compressed"),
        ('C', "nocow"),
        ('d', "nodump"),
        ('D', "dirsync"),
        ('e', "extents"),
        ('E', "encrypted"),
        ('h', "blocksize"),
        ('i', "immutable"),
        ('I', "indexed"),
        ('j', "journalled"),
        ('N', "inline"),
        ('s', "zero"),
        ('S', "synchronous"),
        ('t', "notail"),
        ('T', "blockroot"),
        ('u', "undelete"),
        ('X', "compressedraw"),
        ('Z', "compresseddirty"),
    ];
    flags
        .chars()
        .filter_map(|c| NAMES.iter().find(|(flag, _)| *flag == c))
        .map(|(_, name)| Value::from(*name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::util::parse_probe;

    const FILE: &str = "regular file|4755|root|UNKNOWN|0|1234|11|1700000000.500000|1700000001.000000|1700000002.000000|65024|1198019|1|8|4096|0|0|'/srv/f'\n";

    #[test]
    fn path_info_has_add_path_infos_fields() {
        let mut result = ModuleResult::changed(true);
        add_path_info(&mut result, &parse_probe(FILE));
        let got: Vec<String> = result
            .data
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            got,
            [
                "uid=0",
                "gid=1234",
                "owner=root",
                "group=1234",
                "mode=04755",
                "state=file",
                "size=11"
            ]
        );
        let hard = FILE.replace("|1198019|1|", "|1198019|2|");
        let mut result = ModuleResult::changed(false);
        add_path_info(&mut result, &parse_probe(&hard));
        assert_eq!(result.data["state"].as_str(), Some("hard"));
        let mut absent = ModuleResult::changed(false);
        add_path_info(&mut absent, &parse_probe("absent\n"));
        assert!(absent.data.is_empty());
    }

    #[test]
    fn stat_dict_has_ansibles_keys() {
        let extras = StatExtras {
            access: (true, false, true),
            checksum: Some("2aae6c35c94fcfb415dbe95f408b9ce91ee846ed".into()),
            mime: Some(("text/plain".into(), "us-ascii".into())),
            attributes: Some(("42".into(), "ie".into())),
            ..Default::default()
        };
        let stat = stat_dict("/srv/f", &parse_probe(FILE), &extras);
        let get = |key: &str| stat.get_attr(key).unwrap().to_string();
        assert_eq!(get("mode"), "4755");
        assert_eq!(get("isuid"), "True");
        assert_eq!(get("isgid"), "False");
        assert_eq!(get("xoth"), "True");
        assert_eq!(get("woth"), "False");
        assert_eq!(get("isreg"), "True");
        assert_eq!(get("mtime"), "1700000000.5");
        assert_eq!(get("ctime"), "1700000002.0");
        assert_eq!(get("inode"), "1198019");
        assert_eq!(get("dev"), "65024");
        assert_eq!(get("block_size"), "4096");
        assert_eq!(get("writeable"), "False");
        assert_eq!(get("pw_name"), "root");
        assert!(stat.get_attr("gr_name").unwrap().is_undefined());
        assert!(stat.get_attr("lnk_target").unwrap().is_undefined());
        assert_eq!(get("mimetype"), "text/plain");
        assert_eq!(get("charset"), "us-ascii");
        assert_eq!(get("attributes"), "['immutable', 'extents']");
        assert_eq!(get("attr_flags"), "ie");
        let absent = stat_dict("/nope", &parse_probe("absent\n"), &StatExtras::default());
        assert_eq!(absent.to_string(), "{'exists': False}");
    }
}
