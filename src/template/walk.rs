//! Rebuilding a value's lists and mappings as plain ones, with a function applied to every
//! other value inside: used to mark target data untrusted and to turn lazy sequences into
//! lists.

use minijinja::value::ValueKind;
use minijinja::Value;

use super::scope::is_scope;

/// How deep a walk descends; deeper data is left as it is. Data from YAML or JSON a target
/// sent is bounded far below this; only a self-referencing object could reach it.
const MAX_DEPTH: usize = 512;

/// `value` with lists, lazy sequences and mappings rebuilt as plain ones and `leaf` applied
/// to everything else. Lazy variable views (`vars`, `hostvars[h]`) are kept as they are.
pub(super) fn rebuild(value: &Value, leaf: &impl Fn(&Value) -> Value) -> Value {
    rebuild_at(value, 0, leaf)
}

fn rebuild_at(value: &Value, depth: usize, leaf: &impl Fn(&Value) -> Value) -> Value {
    if depth > MAX_DEPTH || is_scope(value) {
        return value.clone();
    }
    match value.kind() {
        ValueKind::Seq | ValueKind::Iterable => Value::from(
            value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|item| rebuild_at(&item, depth + 1, leaf))
                .collect::<Vec<_>>(),
        ),
        ValueKind::Map => {
            let map: indexmap::IndexMap<Value, Value> = value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|key| {
                    let item = value.get_item(&key).unwrap_or_default();
                    (key, rebuild_at(&item, depth + 1, leaf))
                })
                .collect();
            Value::from_object(map)
        }
        _ => leaf(value),
    }
}

/// Whether a lazy sequence (minijinja's `list + list`) hides anywhere inside `value`.
pub(super) fn has_lazy_sequence(value: &Value) -> bool {
    any_inside(value, &|v| v.kind() == ValueKind::Iterable)
}

/// Whether `found` holds for `value` or for anything inside its lists and mappings (lazy
/// variable views are not looked into).
pub(super) fn any_inside(value: &Value, found: &impl Fn(&Value) -> bool) -> bool {
    any_at(value, 0, found)
}

fn any_at(value: &Value, depth: usize, found: &impl Fn(&Value) -> bool) -> bool {
    if depth > MAX_DEPTH || is_scope(value) {
        return false;
    }
    if found(value) {
        return true;
    }
    match value.kind() {
        ValueKind::Seq => value
            .try_iter()
            .into_iter()
            .flatten()
            .any(|item| any_at(&item, depth + 1, found)),
        ValueKind::Map => value.try_iter().into_iter().flatten().any(|key| {
            value
                .get_item(&key)
                .is_ok_and(|item| any_at(&item, depth + 1, found))
        }),
        _ => false,
    }
}

/// `value` with every lazy sequence in it made a list, so that modules, loops and filters
/// see a list where the expression built one.
pub(super) fn native(value: Value) -> Value {
    if has_lazy_sequence(&value) {
        rebuild(&value, &Value::clone)
    } else {
        value
    }
}
