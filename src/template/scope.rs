//! A [`Scope`] is what a template sees: variable layers in precedence order, resolved lazily.
//!
//! A variable whose value holds `{{ }}` is templated when it is read, against the same scope,
//! so definitions may refer to each other in any order, as in Ansible.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use super::{is_template, Templar};
use crate::value::VarMap;

/// How deep variables may refer to variables before we call it a loop.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug)]
pub struct Scope {
    inner: Arc<ScopeInner>,
}

#[derive(Debug)]
struct ScopeInner {
    /// Lowest precedence first.
    layers: Vec<Arc<VarMap>>,
    templar: Arc<Templar>,
    depth: AtomicUsize,
    /// The first failure met while resolving a variable, for the error message.
    failure: Mutex<Option<String>>,
}

impl Scope {
    pub fn new(templar: Arc<Templar>, layers: Vec<Arc<VarMap>>) -> Self {
        Self {
            inner: Arc::new(ScopeInner {
                layers,
                templar,
                depth: AtomicUsize::new(0),
                failure: Mutex::new(None),
            }),
        }
    }

    /// The same scope with one more layer on top (loop items, registered results).
    pub fn with_layer(&self, layer: Arc<VarMap>) -> Self {
        let mut layers = self.inner.layers.clone();
        layers.push(layer);
        Self::new(self.inner.templar.clone(), layers)
    }

    pub fn templar(&self) -> &Arc<Templar> {
        &self.inner.templar
    }

    /// The layers, lowest precedence first.
    pub fn layers(&self) -> &[Arc<VarMap>] {
        &self.inner.layers
    }

    /// The scope behind a value made by [`Scope::to_value`] (what templates see as `vars`).
    pub(super) fn from_value(value: &Value) -> Option<Scope> {
        value
            .downcast_object::<ScopeInner>()
            .map(|inner| Scope { inner })
    }

    pub fn to_value(&self) -> Value {
        Value::from_dyn_object(self.inner.clone())
    }

    /// A variable's value, templated.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.inner.lookup(name)
    }

    /// A variable's value as text (templated), unless undefined or null.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.is_none() && !v.is_undefined())
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
    }

    /// A variable's raw value, not templated.
    pub fn get_raw(&self, name: &str) -> Option<Value> {
        self.inner
            .layers
            .iter()
            .rev()
            .find_map(|l| l.get(name).cloned())
    }

    /// For an undefined-variable error, in Ansible's words: the failure met while resolving a
    /// variable the template reads, or the first one this scope cannot resolve ("'x' is
    /// undefined").
    pub fn first_undefined(&self, source: &str) -> Option<String> {
        if let Some(failure) = self.inner.failure.lock().ok().and_then(|mut f| f.take()) {
            return Some(failure);
        }
        self.inner
            .templar
            .variables_of(source)
            .into_iter()
            .map(|path| path.split('.').next().unwrap_or_default().to_string())
            .find(|name| self.get(name).is_none() && !self.inner.templar.is_global(name))
            .map(|name| format!("'{name}' is undefined"))
    }

    /// For an undefined-value error where every variable is defined: the first attribute a
    /// dotted path in the template reads that its value lacks, in Python's words ("object of
    /// type 'dict' has no attribute 'stdout'").
    pub fn first_missing_attribute(&self, source: &str) -> Option<String> {
        self.inner
            .templar
            .variables_of(source)
            .into_iter()
            .find_map(|path| {
                let mut parts = path.split('.');
                let mut value = self.get(parts.next()?)?;
                for attribute in parts {
                    let next = value.get_attr(attribute).ok().filter(|v| !v.is_undefined());
                    match next {
                        Some(next) => value = next,
                        None => {
                            return Some(super::attribute_map::missing_attribute(&value, attribute))
                        }
                    }
                }
                None
            })
    }
}

impl ScopeInner {
    fn lookup(self: &Arc<Self>, name: &str) -> Option<Value> {
        if name == "vars" {
            return Some(Value::from_dyn_object(self.clone()));
        }
        let raw = self.layers.iter().rev().find_map(|l| l.get(name))?;
        if !needs_templating(raw) {
            return Some(raw.clone());
        }
        let depth = self.depth.fetch_add(1, Ordering::SeqCst);
        let result = if depth > MAX_DEPTH {
            self.record(format!(
                "recursive loop detected in the definition of '{name}'"
            ));
            None
        } else {
            let scope = Scope {
                inner: self.clone(),
            };
            match self.templar.render_value(raw, &scope) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.record(format!("{} (while resolving '{name}')", e.message));
                    None
                }
            }
        };
        self.depth.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn record(&self, message: String) {
        if let Ok(mut failure) = self.failure.lock() {
            if failure.is_none() {
                *failure = Some(message);
            }
        }
    }
}

/// Whether a value is a lazy variable view (`vars`, a host of `hostvars`).
pub(super) fn is_scope(value: &Value) -> bool {
    value.downcast_object_ref::<ScopeInner>().is_some()
}

/// Whether a value holds a template anywhere inside it (strings marked untrusted never do).
fn needs_templating(value: &Value) -> bool {
    if let Some(s) = value.as_str() {
        return !value.is_safe() && is_template(s);
    }
    match value.kind() {
        minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Map => {
            let is_map = value.kind() == minijinja::value::ValueKind::Map;
            value.try_iter().into_iter().flatten().any(|item| {
                if is_map {
                    value
                        .get_item(&item)
                        .map(|v| needs_templating(&v))
                        .unwrap_or(false)
                } else {
                    needs_templating(&item)
                }
            })
        }
        _ => false,
    }
}

impl Object for ScopeInner {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: indexmap::IndexSet<String> = indexmap::IndexSet::new();
        for layer in &self.layers {
            keys.extend(layer.keys().cloned());
        }
        Enumerator::Values(keys.into_iter().map(Value::from).collect())
    }
}
