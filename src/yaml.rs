//! YAML 1.1 loading, the way PyYAML (and so Ansible) reads it.
//!
//! serde-saphyr does the parsing; this file turns its output into a [`Node`] tree that keeps
//! every value's line and column (so later errors can name `file:line:col`) and the two tags
//! Ansible gives meaning to (`!unsafe`, `!vault`). Two places where serde-saphyr is more
//! liberal than PyYAML are corrected from the source text: only PyYAML's boolean spellings
//! (`yes/no/on/off/true/false` in lower, Title or UPPER case) become booleans; `y`, `n` or
//! `yEs` stay strings.
//!
//! A leaf module: the loader, `from_yaml` and the CLI's `-e @file` all read YAML here, so it
//! imports only the other leaves (`error`, `value`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::Value;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};

use crate::error::{Error, Location};

/// One YAML value with the place it was written.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Null,
    Bool(bool),
    /// Integers keep 128 bits (PyYAML's are unbounded).
    Int(i128),
    /// An integer literal beyond 128 bits, as written (its digits).
    BigInt(String),
    Float(f64),
    Str(String),
    /// A `!unsafe` string: never templated.
    Unsafe(String),
    /// A `!vault` encrypted string, opened when the file is read.
    Vault(Vaulted),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// An inline `!vault` value: its ciphertext and what opening it gave. A value that could not
/// be opened fails only where it is used, as in Ansible (a variable nobody reads needs no
/// password).
#[derive(Clone)]
pub struct Vaulted {
    pub ciphertext: String,
    /// The plaintext, or the error naming the value's file and line.
    pub plaintext: Result<String, String>,
}

/// Never prints the plaintext.
impl fmt::Debug for Vaulted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vaulted(..)")
    }
}

impl Vaulted {
    /// The value a template sees: the plaintext, or an invalid value carrying the error.
    fn to_value(&self) -> Value {
        if crate::vault::shows_ciphertext() {
            let entry = (
                "__ansible_vault".to_string(),
                Value::from(self.ciphertext.as_str()),
            );
            return crate::value::map_value([entry].into_iter().collect());
        }
        match &self.plaintext {
            Ok(text) => Value::from(text.as_str()),
            Err(message) => Value::from(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message.clone(),
            )),
        }
    }
}

/// A parsed YAML document together with the file it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: Arc<PathBuf>,
    pub root: Node,
}

impl Document {
    pub fn location(&self, node: &Node) -> Location {
        Location::new(self.file.clone(), node.line, node.column)
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) | NodeKind::Unsafe(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_text().as_deref() == Some(key))
            .map(|(_, v)| v)
    }

    /// The text of a mapping key (keys may be plain numbers or booleans in YAML).
    pub fn key_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) | NodeKind::Unsafe(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::BigInt(digits) => Some(digits.clone()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            NodeKind::Null => Some("None".to_string()),
            _ => None,
        }
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::BigInt(_) => "an integer",
            NodeKind::Float(_) => "a float",
            NodeKind::Str(_) | NodeKind::Unsafe(_) | NodeKind::Vault(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts to a template value. `!unsafe` text is marked untrusted: it is never
    /// templated, wherever it is copied to.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::from(()),
            NodeKind::Bool(b) => Value::from(*b),
            NodeKind::Int(i) => Value::from(*i),
            // minijinja has no integers beyond 128 bits: the digits keep the exact value.
            NodeKind::BigInt(digits) => Value::from(digits.as_str()),
            NodeKind::Float(f) => Value::from(*f),
            NodeKind::Str(s) => Value::from(s.as_str()),
            NodeKind::Vault(vaulted) => vaulted.to_value(),
            NodeKind::Unsafe(s) => crate::value::untrusted_str(s),
            NodeKind::Seq(items) => {
                Value::from(items.iter().map(Node::to_value).collect::<Vec<_>>())
            }
            NodeKind::Map(entries) => {
                let map: IndexMap<String, Value> = entries
                    .iter()
                    .filter_map(|(k, v)| Some((k.key_text()?, v.to_value())))
                    .collect();
                crate::value::map_value(map)
            }
        }
    }
}

/// Reads and parses a YAML file, decrypting it first when it is vaulted.
pub fn load_file(path: &Path) -> Result<Document, Error> {
    let text = read_text(path, "read")?;
    parse_str(&text, path)
}

/// Reads a text file Ansible reads through its vault: decrypted when vaulted.
pub fn read_text(path: &Path, action: &'static str) -> Result<String, Error> {
    let bytes = crate::vault::read_file(path)?;
    String::from_utf8(bytes).map_err(|_| Error::Io {
        path: path.to_path_buf(),
        action,
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

/// The most YAML nodes one file may hold (serde-saphyr's default is 250,000).
const MAX_NODES: usize = 100_000_000;

/// Parses YAML text that came from `path` (used only for messages).
pub fn parse_str(text: &str, path: &Path) -> Result<Document, Error> {
    let file = Arc::new(path.to_path_buf());
    if text.trim().is_empty() {
        return Ok(Document {
            file,
            root: Node {
                kind: NodeKind::Null,
                line: 1,
                column: 1,
            },
        });
    }
    let mut options = serde_saphyr::options::Options::default();
    options.legacy_octal_numbers = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    options.with_snippet = false;
    // As large as the input makes it, as in Ansible: a file's node count is bounded by its
    // size. Alias expansion (billion laughs) stays bounded by the alias limits.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_NODES.saturating_mul(2);
    options.budget = Some(budget);
    let raw: Spanned<Tagged<RawNode>> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(&file, &e))?;
    let mut root = convert(raw, text);
    open_vaults(&mut root, &file);
    Ok(Document { file, root })
}

pub(crate) fn yaml_error(file: &Arc<PathBuf>, err: &serde_saphyr::Error) -> Error {
    let (line, column) = err
        .location()
        .map(|l| (l.line() as u32, l.column() as u32))
        .unwrap_or((0, 0));
    let message = err.to_string();
    // serde-saphyr prefixes "error: line N column M: "; the location is printed by us.
    let message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
        _ => message,
    };
    Error::Yaml {
        location: Location::new(file.clone(), line, column),
        message,
    }
}

/// PyYAML's boolean spellings (YAML 1.1 as implemented by PyYAML's resolver).
fn is_pyyaml_bool(text: &str) -> bool {
    matches!(
        text,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// The source text of a scalar, trimmed ("" when its span is unknown).
fn source_text<'a>(source: &'a str, loc: &serde_saphyr::Location) -> &'a str {
    let span = loc.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(start), Some(len)) => source
            .get(start as usize..(start + len) as usize)
            .unwrap_or("")
            .trim(),
        _ => "",
    }
}

/// A plain decimal integer literal (`-12_345`), as its digits without `_` or `+`.
fn integer_literal(text: &str) -> Option<String> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'-' => ("-", &text[1..]),
        b'+' => ("", &text[1..]),
        _ => ("", text),
    };
    let ok = digits.as_bytes().first()?.is_ascii_digit()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    ok.then(|| format!("{sign}{}", digits.replace('_', "")))
}

fn convert(spanned: Spanned<Tagged<RawNode>>, source: &str) -> Node {
    let loc = spanned.referenced;
    let line = loc.line() as u32;
    let column = loc.column() as u32;
    let Tagged(raw, tag) = spanned.value;
    let kind = match raw {
        RawNode::Null => NodeKind::Null,
        RawNode::Bool(b) => {
            let text = source_text(source, &loc);
            if text.is_empty() || is_pyyaml_bool(text) {
                NodeKind::Bool(b)
            } else {
                NodeKind::Str(text.to_string())
            }
        }
        RawNode::Int(i) => NodeKind::Int(i),
        // serde-saphyr hands integers beyond 128 bits over as floats: keep their digits.
        RawNode::Float(f) => match integer_literal(source_text(source, &loc)) {
            Some(digits) => match digits.parse::<i128>() {
                Ok(i) => NodeKind::Int(i),
                Err(_) => NodeKind::BigInt(digits),
            },
            None => NodeKind::Float(f),
        },
        RawNode::Str(s) => NodeKind::Str(s),
        RawNode::Seq(items) => {
            NodeKind::Seq(items.into_iter().map(|n| convert(n, source)).collect())
        }
        RawNode::Map(entries) => NodeKind::Map(
            entries
                .into_iter()
                .map(|(k, v)| (convert(k, source), convert(v, source)))
                .collect(),
        ),
    };
    let kind = match (tag.as_deref(), kind) {
        (Some("!unsafe"), NodeKind::Str(s)) => NodeKind::Unsafe(s),
        (Some("!vault"), NodeKind::Str(s)) => NodeKind::Vault(Vaulted {
            ciphertext: s,
            plaintext: Err(String::new()),
        }),
        (_, kind) => kind,
    };
    Node { kind, line, column }
}

/// Decrypts every inline `!vault` value with the process's vault passwords; a failure is kept
/// with the value's place, for the moment it is used.
fn open_vaults(node: &mut Node, file: &Path) {
    match &mut node.kind {
        NodeKind::Vault(_) if crate::vault::shows_ciphertext() => {}
        NodeKind::Vault(vaulted) => {
            vaulted.plaintext = crate::vault::decrypt(&vaulted.ciphertext)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .map_err(|e| {
                    format!(
                        "{}:{}:{}: {e} (the !vault value here)",
                        file.display(),
                        node.line,
                        node.column
                    )
                });
        }
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| open_vaults(n, file)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|(_, v)| open_vaults(v, file)),
        _ => {}
    }
}

/// What serde-saphyr hands us, before source-text corrections.
enum RawNode {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<RawEntry>),
    Map(Vec<(RawEntry, RawEntry)>),
}

type RawEntry = Spanned<Tagged<RawNode>>;

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(i128::try_from(v)
            .map(RawNode::Int)
            .unwrap_or(RawNode::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = access.next_entry()? {
            entries.push(entry);
        }
        Ok(RawNode::Map(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, access: A) -> Result<RawNode, A::Error> {
        use de::VariantAccess;
        let (_tag, variant): (String, _) = access.variant()?;
        variant.newtype_variant()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        parse_str(text, Path::new("t.yml")).unwrap().root
    }

    #[test]
    fn yaml_1_1_scalars_match_pyyaml() {
        let root = parse("a: yes\nb: 'yes'\nc: off\nd: 0644\ne: y\nf: NO\ng: yEs\nh: 1.5\ni:\n");
        assert!(matches!(root.get("a").unwrap().kind, NodeKind::Bool(true)));
        assert!(matches!(root.get("b").unwrap().kind, NodeKind::Str(ref s) if s == "yes"));
        assert!(matches!(root.get("c").unwrap().kind, NodeKind::Bool(false)));
        assert!(matches!(root.get("d").unwrap().kind, NodeKind::Int(420)));
        assert!(matches!(root.get("e").unwrap().kind, NodeKind::Str(ref s) if s == "y"));
        assert!(matches!(root.get("f").unwrap().kind, NodeKind::Bool(false)));
        assert!(matches!(root.get("g").unwrap().kind, NodeKind::Str(ref s) if s == "yEs"));
        assert!(matches!(root.get("h").unwrap().kind, NodeKind::Float(_)));
        assert!(root.get("i").unwrap().is_null());
    }

    #[test]
    fn tags_and_merge_keys() {
        let root = parse("b: &b {x: 1}\nm:\n  <<: *b\n  y: 2\nu: !unsafe '{{ raw }}'\nv: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n");
        let m = root.get("m").unwrap();
        assert!(matches!(m.get("x").unwrap().kind, NodeKind::Int(1)));
        assert!(matches!(m.get("y").unwrap().kind, NodeKind::Int(2)));
        assert!(matches!(root.get("u").unwrap().kind, NodeKind::Unsafe(_)));
        assert!(matches!(root.get("v").unwrap().kind, NodeKind::Vault(_)));
        let unsafe_value = root.get("u").unwrap().to_value();
        assert_eq!(unsafe_value.as_str(), Some("{{ raw }}"));
        assert!(crate::value::is_untrusted(&unsafe_value));
    }

    #[test]
    fn integers_beyond_64_bits_keep_their_value() {
        let root = parse("a: 170141183460469231731687303715884105727\nb: -18446744073709551617\nc: 1000000000000000000000000000000000000000000000000\nd: 1.5e300\n");
        assert_eq!(
            root.get("a").unwrap().to_value().to_string(),
            "170141183460469231731687303715884105727"
        );
        assert!(matches!(root.get("a").unwrap().kind, NodeKind::Int(_)));
        assert_eq!(
            root.get("b").unwrap().to_value().to_string(),
            "-18446744073709551617"
        );
        assert_eq!(
            root.get("c").unwrap().to_value().to_string(),
            format!("1{}", "0".repeat(48))
        );
        assert!(matches!(root.get("d").unwrap().kind, NodeKind::Float(_)));
    }

    #[test]
    fn large_files_parse_and_alias_bombs_do_not() {
        let big = format!("[{}]", vec!["1"; 300_000].join(","));
        let root = parse(&big);
        assert_eq!(root.as_seq().unwrap().len(), 300_000);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                [prev.as_str(); 10].join(", ")
            ));
        }
        assert!(parse_str(&bomb, Path::new("bomb.yml")).is_err());
    }

    #[test]
    fn locations_are_one_based() {
        let root = parse("- hosts: all\n  tasks:\n    - name: x\n");
        let task = &root.as_seq().unwrap()[0]
            .get("tasks")
            .unwrap()
            .as_seq()
            .unwrap()[0];
        assert_eq!((task.line, task.column), (3, 7));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_str("a: 1\nb:\n  - x\n c: 2\n", Path::new("bad.yml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.yml:4:2"), "{text}");
    }
}
