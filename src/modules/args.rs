//! Typed access to a module's (templated) arguments, with Ansible-like messages for missing,
//! unknown or mistyped options.

use indexmap::{IndexMap, IndexSet};
use minijinja::value::ValueKind;
use minijinja::Value;

use super::{paths, ModuleCtx, ModuleError};
use crate::error::did_you_mean;

/// Ansible's shared file options kiln accepts and ignores: SELinux contexts, chattr
/// attributes, and `unsafe_writes` (kiln's writes are always atomic).
pub const IGNORED_FILE_OPTIONS: &[&str] = &[
    "unsafe_writes",
    "seuser",
    "serole",
    "setype",
    "selevel",
    "attributes",
];

pub struct Args {
    module: &'static str,
    values: IndexMap<String, Value>,
    used: IndexSet<String>,
}

impl Args {
    pub fn new(module: &'static str, value: &Value) -> Result<Self, ModuleError> {
        let mut values = IndexMap::new();
        match value.kind() {
            ValueKind::Map => {
                for key in value.try_iter().into_iter().flatten() {
                    values.insert(key.to_string(), value.get_item(&key).unwrap_or_default());
                }
            }
            ValueKind::None | ValueKind::Undefined => {}
            _ => {
                return Err(ModuleError::Args(format!(
                    "{module}: arguments must be a mapping, got {}",
                    value.kind()
                )))
            }
        }
        Ok(Self {
            module,
            values,
            used: IndexSet::new(),
        })
    }

    pub fn module(&self) -> &'static str {
        self.module
    }

    fn err(&self, message: String) -> ModuleError {
        ModuleError::Args(format!("{}: {message}", self.module))
    }

    /// Ansible's error for a required option that is not set.
    pub fn missing(&self, key: &str) -> ModuleError {
        self.err(format!("missing required argument: {key}"))
    }

    /// Whether `key` was written at all, even as null (`that:` with nothing after it).
    pub fn given(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn raw(&mut self, key: &str) -> Option<Value> {
        self.used.insert(key.to_string());
        self.values
            .get(key)
            .filter(|v| !v.is_none() && !v.is_undefined())
            .cloned()
    }

    /// The first of several names (an option and its aliases) that is set.
    pub fn raw_any(&mut self, keys: &[&str]) -> Option<Value> {
        let mut found = None;
        for key in keys {
            let v = self.raw(key);
            if found.is_none() {
                found = v;
            }
        }
        found
    }

    pub fn str(&mut self, keys: &[&str]) -> Result<Option<String>, ModuleError> {
        match self.raw_any(keys) {
            None => Ok(None),
            Some(v) => match v.kind() {
                ValueKind::String | ValueKind::Number | ValueKind::Bool => Ok(Some(
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )),
                kind => Err(self.err(format!("option '{}' must be a string, got {kind}", keys[0]))),
            },
        }
    }

    pub fn required_str(&mut self, keys: &[&str]) -> Result<String, ModuleError> {
        self.str(keys)?
            .ok_or_else(|| self.err(format!("missing required argument: {}", keys[0])))
    }

    /// A `type: path` option the module uses on the target: `~` and `$VARS` expanded there.
    pub async fn path(
        &mut self,
        ctx: &ModuleCtx<'_>,
        keys: &[&str],
    ) -> Result<Option<String>, ModuleError> {
        match self.str(keys)? {
            Some(path) => Ok(Some(paths::on_target(ctx, path).await?)),
            None => Ok(None),
        }
    }

    pub async fn required_path(
        &mut self,
        ctx: &ModuleCtx<'_>,
        keys: &[&str],
    ) -> Result<String, ModuleError> {
        match self.path(ctx, keys).await? {
            Some(path) => Ok(path),
            None => Err(self.missing(keys[0])),
        }
    }

    /// A `type: path` option naming a controller file: `~` and `$VARS` expanded on the
    /// controller.
    pub fn controller_path(&mut self, keys: &[&str]) -> Result<Option<String>, ModuleError> {
        Ok(self.str(keys)?.map(|path| paths::on_controller(&path)))
    }

    pub fn required_controller_path(&mut self, keys: &[&str]) -> Result<String, ModuleError> {
        self.controller_path(keys)?
            .ok_or_else(|| self.missing(keys[0]))
    }

    /// A `src:` that names a file on the target when `remote` (`remote_src`), on the
    /// controller otherwise, expanded where it lives.
    pub async fn source_path(
        &mut self,
        ctx: &ModuleCtx<'_>,
        keys: &[&str],
        remote: bool,
    ) -> Result<Option<String>, ModuleError> {
        if remote {
            self.path(ctx, keys).await
        } else {
            self.controller_path(keys)
        }
    }

    pub fn bool(&mut self, key: &str, default: bool) -> Result<bool, ModuleError> {
        self.bool_any(&[key], default)
    }

    /// A boolean option given by its name or one of its aliases (`keys[0]` is the name).
    pub fn bool_any(&mut self, keys: &[&str], default: bool) -> Result<bool, ModuleError> {
        match self.raw_any(keys) {
            None => Ok(default),
            Some(v) => parse_bool(&v).ok_or_else(|| {
                self.err(format!(
                    "option '{}' must be a boolean (yes/no), got '{v}'",
                    keys[0]
                ))
            }),
        }
    }

    /// A boolean option whose absence means something of its own (None).
    pub fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, ModuleError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => parse_bool(&v).map(Some).ok_or_else(|| {
                self.err(format!(
                    "option '{key}' must be a boolean (yes/no), got '{v}'"
                ))
            }),
        }
    }

    /// A duration in whole seconds (Ansible's are integers), the first of `keys` given (an
    /// option and its aliases), else `default`; a negative one is refused.
    pub fn seconds(
        &mut self,
        keys: &[&str],
        default: u64,
    ) -> Result<std::time::Duration, ModuleError> {
        for key in keys {
            match self.int(key)? {
                Some(n) if n < 0 => {
                    return Err(self.err(format!("'{key}' must not be negative")));
                }
                Some(n) => return Ok(std::time::Duration::from_secs(n.unsigned_abs())),
                None => {}
            }
        }
        Ok(std::time::Duration::from_secs(default))
    }

    pub fn int(&mut self, key: &str) -> Result<Option<i64>, ModuleError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .map(Some)
                .ok_or_else(|| self.err(format!("option '{key}' must be an integer, got '{v}'"))),
        }
    }

    /// A string option restricted to `choices`.
    pub fn choice(
        &mut self,
        key: &str,
        choices: &[&str],
        default: &str,
    ) -> Result<String, ModuleError> {
        let value = self.str(&[key])?.unwrap_or_else(|| default.to_string());
        if !choices.contains(&value.as_str()) {
            return Err(self.err(format!(
                "value of {key} must be one of: {}, got: {value}",
                choices.join(", ")
            )));
        }
        Ok(value)
    }

    /// A list of strings (a list, or a comma-separated string).
    pub fn list(&mut self, keys: &[&str]) -> Result<Vec<String>, ModuleError> {
        match self.raw_any(keys) {
            None => Ok(vec![]),
            Some(v) if matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable) => Ok(v
                .try_iter()
                .into_iter()
                .flatten()
                .map(|i| i.to_string())
                .collect()),
            Some(v) => Ok(v
                .to_string()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()),
        }
    }

    /// Marks options as accepted without effect (kiln has nothing to do for them).
    pub fn ignore(&mut self, keys: &[&str]) {
        for key in keys {
            self.used.insert(key.to_string());
        }
    }

    /// These arguments, minus `drop`, for another module (`package` hands them to `apt`, …).
    pub fn forward(mut self, module: &'static str, drop: &[&str]) -> Args {
        for key in drop {
            self.values.shift_remove(*key);
        }
        Args {
            module,
            values: self.values,
            used: IndexSet::new(),
        }
    }

    /// Errors on options the module does not know (the keys never asked for).
    pub fn finish(self) -> Result<(), ModuleError> {
        if self.values.contains_key("_raw_params") && !self.used.contains("_raw_params") {
            let extra = self
                .values
                .get("_raw_params")
                .map(|v| v.to_string())
                .unwrap_or_default();
            return Err(self.err(format!(
                "this module takes no free-form text, but '{extra}' was given (write options as name=value, and quote values that contain spaces)"
            )));
        }
        let unknown: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !self.used.contains(*k) && !k.starts_with('_'))
            .collect();
        if let Some(first) = unknown.first() {
            let hint = did_you_mean(first, self.used.iter().map(String::as_str));
            return Err(self.err(format!(
                "unsupported parameter '{first}'{hint} (supported: {})",
                self.used
                    .iter()
                    .filter(|k| !k.starts_with('_'))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }
}

pub use crate::value::bool_of as parse_bool;
