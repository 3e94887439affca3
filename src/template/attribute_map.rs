//! Jinja's `map` filter as Ansible's behaves with `attribute=`: an item without the attribute
//! maps to an undefined value (so `map(attribute='x') | select('defined')` works), and a
//! result that still holds one when the task uses it fails with Python's words for the
//! missing attribute ("object of type 'dict' has no attribute 'name'"). minijinja's own
//! undefined value carries no reason, so the filter notes the first one here.

use std::cell::RefCell;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Error, State, Value};

thread_local! {
    /// Why the latest `map(attribute=)` produced an undefined item, for the error raised
    /// when that item reaches a task.
    static MISSING_ATTRIBUTE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Forgets the reason noted by an earlier evaluation.
pub(super) fn clear() {
    MISSING_ATTRIBUTE.with(|slot| slot.borrow_mut().take());
}

/// The reason noted for the undefined value the latest evaluation produced, if any.
pub(super) fn take() -> Option<String> {
    MISSING_ATTRIBUTE.with(|slot| slot.borrow_mut().take())
}

/// Python's AttributeError message for `value` lacking `attribute`.
pub(super) fn missing_attribute(value: &Value, attribute: &str) -> String {
    format!(
        "object of type '{}' has no attribute '{attribute}'",
        python_type(value)
    )
}

/// Python's name for a value's type, as its AttributeError message gives it.
fn python_type(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::Map => "dict",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::String => "str",
        ValueKind::Bool => "bool",
        ValueKind::None | ValueKind::Undefined => "NoneType",
        ValueKind::Number if value.as_i64().is_some() => "int",
        ValueKind::Number => "float",
        _ => "object",
    }
}

pub(super) fn map(
    state: &mut State,
    value: Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Vec<Value>, Error> {
    let attribute = args.iter().find_map(|arg| {
        let kwargs = Kwargs::try_from((**arg).clone()).ok()?;
        if kwargs.has("default") {
            return None;
        }
        kwargs.peek::<String>("attribute").ok()
    });
    if let (Some(attribute), Ok(items)) = (attribute, value.try_iter()) {
        for item in items {
            if lookup_path(&item, &attribute).is_none_or(|v| v.is_undefined()) {
                let reason = missing_attribute(&item, &attribute);
                MISSING_ATTRIBUTE.with(|slot| *slot.borrow_mut() = Some(reason));
                break;
            }
        }
    }
    minijinja::filters::map(state, value, args)
}

/// `a.b.0`: an attribute path as Jinja's `map(attribute=)` follows it (a number indexes).
fn lookup_path(value: &Value, path: &str) -> Option<Value> {
    path.split('.').try_fold(value.clone(), |current, part| {
        let next = match part.parse::<i64>() {
            Ok(index) => current.get_item(&Value::from(index)),
            Err(_) => current.get_attr(part),
        };
        next.ok()
    })
}

/// Whether an undefined value hides inside a list or mapping.
pub(super) fn holds_undefined(value: &Value) -> bool {
    super::walk::any_inside(value, &Value::is_undefined)
}
