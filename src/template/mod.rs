//! Templating: minijinja configured like Ansible's Jinja2 (trim_blocks, trailing newlines
//! restored as Ansible does, Ansible's filters, tests, lookups and `now()`), with variables
//! looked up lazily through a [`Scope`] so that `a: "{{ b }}"` is resolved when `a` is read,
//! in precedence order.

mod attribute_map;
mod clock;
mod core_filters;
mod file_lookups;
pub(crate) mod filters;
pub mod limits;
mod list_lookups;
mod literals;
mod lookups;
mod password;
mod password_lookup;
mod percent;
mod pyregex;
mod random;
mod scope;
mod tests;
mod trust;
mod units;
mod walk;

use std::path::PathBuf;
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};

pub use crate::value::{map_value, truthy};
pub use filters::python_replacement;
pub use scope::Scope;
pub use trust::{
    is_plain_reference, is_untrusted, untrusted, untrusted_loop_result, untrusted_str,
    untrusted_where_templated,
};

/// A templating failure, already phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

impl TemplateError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The shared template environment. One per run; cheap to share across hosts and tasks.
pub struct Templar {
    env: Environment<'static>,
    /// The same environment, but an undefined value's attributes are undefined too rather
    /// than an error (see `retry_chained`).
    chaining: Environment<'static>,
}

impl std::fmt::Debug for Templar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templar")
    }
}

/// Whether a string needs templating at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Python's methods on values, as Jinja under Ansible has them: minijinja's Python
/// compatibility, plus a list's `index` (the position of the first equal item).
fn python_method(
    state: &mut minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    if method == "index" && value.kind() == minijinja::value::ValueKind::Seq {
        if let [wanted] = args {
            let position = value
                .try_iter()?
                .position(|item| &item == wanted)
                .ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("{wanted} is not in list"),
                    )
                })?;
            return Ok(Value::from(position));
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

impl Templar {
    pub fn new() -> Arc<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_unknown_method_callback(python_method);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        filters::register(&mut env);
        core_filters::register(&mut env);
        tests::register(&mut env);
        lookups::register(&mut env);
        env.add_filter("map", attribute_map::map);
        env.add_filter(percent::FILTER, percent::percent);
        env.add_function("now", clock::now);
        env.add_filter("random", random::random);
        env.add_filter("shuffle", random::shuffle);
        env.add_filter("password_hash", password::password_hash);
        env.add_filter("strftime", clock::strftime);
        env.add_filter("human_readable", units::human_readable);
        env.add_filter("human_to_bytes", units::human_to_bytes);
        let mut chaining = env.clone();
        chaining.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Chaining only lets `a.b.c` be undefined: printing one still fails.
        chaining.set_formatter(|out, state, value| {
            if value.is_undefined() {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    "an undefined value was printed",
                ));
            }
            minijinja::escape_formatter(out, state, value)
        });
        Arc::new(Self { env, chaining })
    }

    /// Ansible lets an undefined value's attributes be looked up (`r.stat.exists |
    /// default(false)`, `a.b is defined`), failing only where the value is used. minijinja
    /// fails at the lookup in its strict modes, so a template that failed on an undefined
    /// value and tests for or defaults one is evaluated again with lookups chained.
    fn retry_chained(source: &str, error: &minijinja::Error) -> bool {
        error.kind() == minijinja::ErrorKind::UndefinedError
            && (source.contains("defined") || source.contains("default") || source.contains("d("))
    }

    /// Renders a whole template. Like Ansible, the trailing newlines Jinja strips are put
    /// back only as far as the output has fewer than the source: keeping them in Jinja
    /// itself would add one after output that already ends in a newline.
    fn render_template(&self, source: &str, ctx: Value) -> Result<String, minijinja::Error> {
        let rendered = match self.env.render_str(source, ctx.clone()) {
            Err(e) if Self::retry_chained(source, &e) => {
                self.chaining.render_str(source, ctx).map_err(|_| e)?
            }
            other => other?,
        };
        Ok(restore_trailing_newlines(source, rendered))
    }

    fn eval_expression(&self, source: &str, ctx: Value) -> Result<Value, minijinja::Error> {
        match self.env.compile_expression(source)?.eval(ctx.clone()) {
            Err(e) if Self::retry_chained(source, &e) => self
                .chaining
                .compile_expression(source)?
                .eval(ctx)
                .map_err(|_| e),
            other => other,
        }
    }

    /// Templates a string. A string that is exactly one `{{ expression }}` yields the
    /// expression's native value (a list stays a list), as in Ansible.
    pub fn render_str(&self, text: &str, scope: &Scope) -> Result<Value, TemplateError> {
        if !is_template(text) {
            return Ok(Value::from(text));
        }
        limits::check(text, false)?;
        let ctx = scope.to_value();
        if let Some(inner) = single_expression(text) {
            return self
                .eval_expression(&literals::in_expression(inner), ctx)
                .and_then(|v| {
                    if v.is_undefined() {
                        Err(undefined_error())
                    } else {
                        Ok(walk::native(v))
                    }
                })
                .map_err(|e| explain(&e, text, scope));
        }
        self.render_template(&literals::in_template(text), ctx)
            .map(Value::from)
            .map_err(|e| explain(&e, text, scope))
    }

    /// The items of a `with_<lookup>:` loop: lookup `lookup` run over `terms` (already
    /// templated), as ansible-core runs a loop's lookup plugin.
    pub fn loop_items(
        &self,
        lookup: &str,
        terms: Vec<Value>,
        scope: &Scope,
    ) -> Result<Vec<Value>, TemplateError> {
        let mut layer = crate::value::VarMap::new();
        layer.insert("__kiln_lookup".into(), Value::from(lookup));
        layer.insert("__kiln_terms".into(), Value::from(terms));
        let scope = scope.with_layer(std::sync::Arc::new(layer));
        let expression = format!("{}(__kiln_lookup, __kiln_terms)", lookups::LOOP_ITEMS);
        let items = self
            .eval_expression(&expression, scope.to_value())
            .map_err(|e| {
                // The lookup's own message; the expression that called it is kiln's, not the
                // playbook's, so it is not shown.
                let detail = match e.detail() {
                    Some(detail) => detail.to_string(),
                    None => describe(&e, &expression, &scope),
                };
                TemplateError::new(format!("with_{lookup}: {detail}"))
            })?;
        Ok(items.try_iter().map(|it| it.collect()).unwrap_or_default())
    }

    /// Renders a template file's text (for `template:` and `lookup('template')`).
    pub fn render_file(
        &self,
        text: &str,
        path: &std::path::Path,
        scope: &Scope,
    ) -> Result<String, TemplateError> {
        limits::check(text, false)
            .map_err(|e| TemplateError::new(format!("{}: {}", path.display(), e.message)))?;
        self.render_template(&literals::percent_in_template(text), scope.to_value())
            .map_err(|e| {
                let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
                TemplateError::new(format!(
                    "{}{line}: {}",
                    path.display(),
                    describe(&e, text, scope)
                ))
            })
    }

    /// Templates every string inside a value (lists and mappings recursively); strings
    /// marked untrusted stay as they are.
    pub fn render_value(&self, value: &Value, scope: &Scope) -> Result<Value, TemplateError> {
        if is_untrusted(value) {
            return Ok(value.clone());
        }
        if let Some(s) = value.as_str() {
            return self.render_str(s, scope);
        }
        match value.kind() {
            minijinja::value::ValueKind::Seq => {
                let items: Result<Vec<Value>, _> = value
                    .try_iter()
                    .into_iter()
                    .flatten()
                    .map(|v| self.render_value(&v, scope))
                    .collect();
                Ok(Value::from(items?))
            }
            minijinja::value::ValueKind::Map => {
                let mut out = indexmap::IndexMap::new();
                for key in value.try_iter().into_iter().flatten() {
                    let item = value.get_item(&key).unwrap_or_default();
                    out.insert(key.to_string(), self.render_value(&item, scope)?);
                }
                Ok(crate::template::map_value(out))
            }
            _ => Ok(value.clone()),
        }
    }

    /// Evaluates a `when:`/`changed_when:`/`failed_when:` condition (a bare expression, or
    /// a boolean, or a string with `{{ }}`).
    pub fn eval_condition(&self, condition: &Value, scope: &Scope) -> Result<bool, TemplateError> {
        if let Some(b) = as_plain_bool(condition) {
            return Ok(b);
        }
        if is_untrusted(condition) {
            return Err(TemplateError::new(format!(
                "the conditional '{condition}' is untrusted (it came from a target, a template or !unsafe): it is data, never evaluated"
            )));
        }
        let text = condition.to_string();
        let text = text.trim();
        limits::check(
            text,
            single_expression(text).is_none() && !is_template(text),
        )?;
        // A bare condition is Jinja's to unescape, as in Ansible; `{{ }}` ones are rewritten
        // like any other value.
        let value = if let Some(inner) = single_expression(text) {
            self.eval_expression(&literals::in_expression(inner), scope.to_value())
        } else if is_template(text) {
            self.render_template(&literals::in_template(text), scope.to_value())
                .map(Value::from)
        } else {
            self.eval_expression(&literals::percent_in_expression(text), scope.to_value())
        }
        .map_err(|e| explain(&e, text, scope))?;
        if value.is_undefined() {
            return Err(explain(&undefined_error(), text, scope));
        }
        Ok(truthy(&value))
    }
}

/// Forgets why earlier renderings left undefined values in lists or mappings; see
/// [`undefined_inside`].
pub fn forget_undefined_reasons() {
    attribute_map::clear();
}

/// Why a rendered value still holds an undefined value inside a list or mapping (an item
/// `map(attribute=)` found without the attribute), if it does. A task's arguments may not:
/// Ansible fails their finalization, while loop items and variables may carry one.
pub fn undefined_inside(value: &Value) -> Option<String> {
    attribute_map::holds_undefined(value)
        .then(|| attribute_map::take().unwrap_or_else(|| "an undefined value is left in it".into()))
}

/// Appends the trailing newlines of `source` that `rendered` lacks (Jinja strips one).
pub(crate) fn restore_trailing_newlines(source: &str, mut rendered: String) -> String {
    let missing = trailing_newlines(source).saturating_sub(trailing_newlines(&rendered));
    rendered.push_str(&"\n".repeat(missing));
    rendered
}

/// How many `\n` a text ends with (Ansible counts only `\n`).
fn trailing_newlines(text: &str) -> usize {
    text.bytes().rev().take_while(|b| *b == b'\n').count()
}

fn undefined_error() -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::UndefinedError, "undefined value")
}

fn as_plain_bool(value: &Value) -> Option<bool> {
    match value.kind() {
        minijinja::value::ValueKind::Bool => Some(value.is_true()),
        minijinja::value::ValueKind::Undefined | minijinja::value::ValueKind::None => Some(false),
        _ => None,
    }
}

/// `{{ expr }}` with nothing around it and no second `{{`.
fn single_expression(text: &str) -> Option<&str> {
    let trimmed = text.strip_prefix("{{")?.strip_suffix("}}")?;
    if trimmed.contains("{{") || trimmed.contains("}}") || trimmed.contains("{%") {
        return None;
    }
    Some(trimmed.trim())
}

/// Turns a minijinja error into Ansible-style words: undefined variables are named.
fn explain(err: &minijinja::Error, source: &str, scope: &Scope) -> TemplateError {
    TemplateError::new(describe(err, source, scope))
}

fn describe(err: &minijinja::Error, source: &str, scope: &Scope) -> String {
    if err.kind() == minijinja::ErrorKind::UndefinedError {
        if let Some(undefined) = scope.first_undefined(source) {
            return format!("{undefined}{}", where_in(source));
        }
        if let Some(missing) = scope.first_missing_attribute(source) {
            return format!("{missing}{}", where_in(source));
        }
        return format!(
            "an undefined value was used in '{}': {}",
            source.trim(),
            err.detail().unwrap_or("undefined value")
        );
    }
    let kind = err.kind().to_string();
    let mut message = format!(
        "Error rendering template: {}",
        python_words(err.detail().unwrap_or(&kind))
    );
    let mut cause = std::error::Error::source(err);
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    message.push_str(&where_in(source));
    message
}

/// minijinja's words for an error Python names otherwise, in Python's (which is what
/// Ansible shows and what playbooks test for).
fn python_words(detail: &str) -> &str {
    let by_zero = detail.starts_with("unable to calculate ")
        && (detail.ends_with(" 0") || detail.ends_with(" 0.0"));
    match by_zero {
        true => "division by zero",
        false => detail,
    }
}

/// " (in 'source')" for a one-line source; a template file is named by its path instead.
fn where_in(source: &str) -> String {
    let source = source.trim();
    if source.contains('\n') || source.len() > 200 {
        String::new()
    } else {
        format!(" (in '{source}')")
    }
}

impl Templar {
    /// Whether `name` is a function every template has (`lookup`, `range`, …).
    pub(crate) fn is_global(&self, name: &str) -> bool {
        self.env.globals().any(|(global, _)| global == name)
    }

    /// Names of variables a template reads at top level, for undefined-variable messages.
    pub(crate) fn variables_of(&self, source: &str) -> Vec<String> {
        if limits::check(source, !is_template(source)).is_err() {
            return Vec::new();
        }
        let mut names: Vec<String> = match single_expression(source) {
            Some(inner) => self
                .env
                .compile_expression(inner)
                .map(|e| e.undeclared_variables(true))
                .unwrap_or_default(),
            None if is_template(source) => self
                .env
                .template_from_str(source)
                .map(|t| t.undeclared_variables(true))
                .unwrap_or_default(),
            None => self
                .env
                .compile_expression(source)
                .map(|e| e.undeclared_variables(true))
                .unwrap_or_default(),
        }
        .into_iter()
        .collect();
        names.sort();
        names
    }
}

/// Where controller-side files are looked up for `lookup('file')` and friends.
#[derive(Debug, Clone, Default)]
pub struct SearchPaths(pub Vec<PathBuf>);

#[cfg(test)]
mod rendering_tests {
    use super::*;

    fn render(text: &str) -> String {
        let templar = Templar::new();
        let scope = Scope::new(templar.clone(), vec![]);
        templar
            .render_str(text, &scope)
            .expect("renders")
            .to_string()
    }

    #[test]
    fn an_undefined_values_attributes_may_be_tested_and_defaulted_but_not_printed() {
        assert_eq!(render("{{ r.stat.exists | default(false) }}"), "False");
        assert_eq!(render("{{ r.stat is defined }}"), "False");
        assert_eq!(render("{% if r.a.b is not defined %}no{% endif %}"), "no");
        let templar = Templar::new();
        let scope = Scope::new(templar.clone(), vec![]);
        for failing in ["{{ r.stat.exists }}", "x{{ r.a }}{{ 1 | default(2) }}"] {
            assert!(templar.render_str(failing, &scope).is_err(), "{failing}");
        }
    }

    #[test]
    fn a_missing_attribute_mapped_fails_where_used_in_pythons_words() {
        let things = "[{'name': 'one'}, {'notname': 'two'}]";
        assert_eq!(
            render(&format!(
                "{{{{ {things} | map(attribute='name') | select('defined') | list }}}}"
            )),
            "['one']"
        );
        assert_eq!(
            render(&format!(
                "{{{{ {things} | map(attribute='name', default='-') | list }}}}"
            )),
            "['one', '-']"
        );
        let templar = Templar::new();
        let scope = Scope::new(templar.clone(), vec![]);
        forget_undefined_reasons();
        let mapped = templar
            .render_str(
                &format!("{{{{ {things} | map(attribute='name') }}}}"),
                &scope,
            )
            .expect("a mapped list may hold an undefined item");
        assert_eq!(
            undefined_inside(&mapped).as_deref(),
            Some("object of type 'dict' has no attribute 'name'")
        );
        assert_eq!(undefined_inside(&Value::from(vec!["a"])), None);
    }

    #[test]
    fn a_string_literal_formats_with_pythons_percent() {
        assert_eq!(
            render(r#"{{ "Failed to read %s/x due to %s" % ('/tmp', 'y') }}"#),
            "Failed to read /tmp/x due to y"
        );
        assert_eq!(render(r#"{{ ('%03d-%s' % (7, 'a')) | upper }}"#), "007-A");
        assert_eq!(render(r#"{{ 'n=%d' % 4 }}"#), "n=4");
    }

    #[test]
    fn a_template_error_reads_as_ansibles() {
        let templar = Templar::new();
        let scope = Scope::new(templar.clone(), vec![]);
        let error = templar
            .render_str("{{ 1 / 0 }}", &scope)
            .expect_err("no division by zero");
        assert_eq!(
            error.message,
            "Error rendering template: division by zero (in '{{ 1 / 0 }}')"
        );
    }

    #[test]
    fn a_list_has_pythons_index_method() {
        assert_eq!(render("{{ ['a', 'b', 'c'].index('b') }}"), "1");
        assert_eq!(render("{{ 'abc'.startswith('a') }}"), "True");
        let templar = Templar::new();
        let scope = Scope::new(templar.clone(), vec![]);
        assert!(templar
            .render_str("{{ ['a'].index('z') }}", &scope)
            .is_err());
    }

    #[test]
    fn trailing_newlines_follow_ansible() {
        // An empty last line leaves Jinja's output ending in the source's newlines already.
        assert_eq!(render("a\n\n{{ '' }}\n"), "a\n\n");
        assert_eq!(render("{{ 'x' }}\n"), "x\n");
        assert_eq!(render("{{ 'x' }}\n\n"), "x\n\n");
        assert_eq!(render("{{ 'x' }} y"), "x y");
        assert_eq!(render("{% if true %}\nx\n{% endif %}\n"), "x\n");
    }

    #[test]
    fn expression_literals_from_yaml_keep_their_backslashes() {
        // YAML has already unescaped the text: Ansible keeps what is left as written.
        assert_eq!(render(r"{{ 'a\1b' }}"), r"a\1b");
        assert_eq!(render(r"x{{ '\t' }}"), r"x\t");
        assert_eq!(
            render(r"{{ 'ab12' | regex_replace('(\d+)', '<\1>') }}"),
            "ab<12>"
        );
        assert_eq!(
            render(r"<{{ 'ab12' | regex_replace('(\d+)', '<\1>') }}>"),
            "<ab<12>>"
        );
    }

    #[test]
    fn template_files_and_bare_conditions_unescape_as_jinja2() {
        let templar = Templar::new();
        let scope = Scope::new(templar.clone(), vec![]);
        let file = templar
            .render_file(
                "{{ 'ab12' | regex_replace('(\\d+)', '<\\\\1>') }} {{ '\\x41' }}\n",
                std::path::Path::new("t.j2"),
                &scope,
            )
            .expect("renders");
        assert_eq!(file, "ab<12> A\n");
        // Output that already ends in the source's newline gets none added.
        let ends_in_newline = templar
            .render_file("{{ 'x\\n' }}\n", std::path::Path::new("t.j2"), &scope)
            .expect("renders");
        assert_eq!(ends_in_newline, "x\n");
        let bare = Value::from(r"'\x41' == 'A'");
        assert!(templar.eval_condition(&bare, &scope).expect("evaluates"));
        let wrapped = Value::from(r"{{ '\x41' == 'A' }}");
        assert!(!templar.eval_condition(&wrapped, &scope).expect("evaluates"));
    }

    #[test]
    fn now_is_a_datetime_like_value() {
        let year = render("{{ now().year }}");
        assert!(year.len() == 4 && year.parse::<u32>().is_ok(), "{year}");
        assert_eq!(render("{{ now(utc=true).strftime('%Y') }}"), year);
        assert_eq!(render("{{ now(fmt='%Y') }}"), year);
        let stamp = render("{{ now(true, '%Y-%m-%d %H') }}");
        assert_eq!(stamp.len(), 13, "{stamp}");
        let text = render("{{ now() }}");
        assert!(text.starts_with(&format!("{year}-")), "{text}");
    }
}
