//! A Python module's reply read into kiln's result. Everything in it comes from the target:
//! it is parsed as JSON only, and every string is marked never to be templated.

use minijinja::Value;
use serde_json::Value as Json;

use crate::connection::ExecOutput;
use crate::modules::{Diff, ModuleError, ModuleResult};
use crate::template::untrusted;
use crate::value::VarMap;

/// The most of a module's raw output a failure message quotes.
const QUOTED_OUTPUT: usize = 2000;

/// Reads the module's JSON result (Ansible's rules: text before the first line starting with
/// `{` is ignored, as is anything after the document), or fails with its raw output.
pub fn parse(module: &str, out: &ExecOutput) -> Result<ModuleResult, ModuleError> {
    let stdout = out.stdout_text();
    let Some(Json::Object(fields)) = json_document(&stdout) else {
        let stderr = out.stderr_text();
        let detail = if stderr.trim().is_empty() {
            &stdout
        } else {
            &stderr
        };
        return Err(ModuleResult::default()
            .with("rc", out.rc)
            .with("module_stdout", untrusted_text(&stdout))
            .with("module_stderr", untrusted_text(&stderr))
            .fail(format!(
                "MODULE FAILURE: module '{module}' returned no JSON result (rc={}): {}",
                out.rc,
                truncated(detail.trim())
            )));
    };
    let mut result = ModuleResult::default();
    for (key, value) in fields {
        match key.as_str() {
            "changed" => result.changed = truthy(&value),
            "failed" => result.failed = truthy(&value),
            "skipped" => result.skipped = truthy(&value),
            "msg" => result.msg = Some(text_of(&value)),
            "diff" => result.diffs = diffs(&value),
            "ansible_facts" => result.facts = Some(facts(&value)),
            "warnings" | "deprecations" => {
                let messages: Vec<Value> = messages(&value).map(|m| untrusted_text(&m)).collect();
                result.data.insert(key, Value::from(messages));
            }
            _ if key.starts_with("_ansible_") => {}
            _ => {
                result.data.insert(
                    key,
                    untrusted(&Value::from(minijinja::value::Serde(&value))),
                );
            }
        }
    }
    // As Ansible's task executor does: a non-zero `rc` fails the task unless it says otherwise.
    let rc_failed = result
        .data
        .get("rc")
        .and_then(|rc| i64::try_from(rc.clone()).ok())
        .is_some_and(|rc| rc != 0);
    if result.failed || rc_failed {
        let msg = result
            .msg
            .take()
            .unwrap_or_else(|| format!("module '{module}' failed"));
        return Err(result.fail(msg));
    }
    Ok(result)
}

/// The first JSON document in the output, skipping lines before it (a login banner, a
/// warning some Python printed).
fn json_document(stdout: &str) -> Option<Json> {
    let start = stdout
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0))
        .filter(|&i| stdout[i..].starts_with('{'))
        .min()?;
    serde_json::Deserializer::from_str(&stdout[start..])
        .into_iter::<Json>()
        .next()?
        .ok()
}

/// Warning and deprecation texts: plain strings, or (ansible-core 2.19) summaries whose
/// `event.msg` holds the text.
fn messages(value: &Json) -> impl Iterator<Item = String> + '_ {
    value.as_array().into_iter().flatten().map(|item| {
        item.pointer("/event/msg")
            .or_else(|| item.get("msg"))
            .unwrap_or(item)
            .as_str()
            .map_or_else(|| item.to_string(), str::to_string)
    })
}

fn truthy(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        Json::String(s) => crate::value::parse_bool(s).unwrap_or(false),
        Json::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    }
}

fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn untrusted_text(text: &str) -> Value {
    untrusted(&Value::from(text))
}

fn truncated(text: &str) -> &str {
    match text.char_indices().nth(QUOTED_OUTPUT) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// `diff` is one before/after mapping or a list of them; a side that is a mapping shows as
/// JSON, as Ansible's callback prints it.
fn diffs(value: &Json) -> Vec<Diff> {
    let one = |d: &Json| {
        let side = |key: &str| match d.get(key) {
            None | Some(Json::Null) => String::new(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => serde_json::to_string_pretty(other).unwrap_or_default() + "\n",
        };
        Diff {
            before_header: side("before_header"),
            after_header: side("after_header"),
            before: side("before"),
            after: side("after"),
        }
    };
    match value {
        Json::Array(items) => items.iter().map(one).collect(),
        Json::Object(_) => vec![one(value)],
        _ => Vec::new(),
    }
}

fn facts(value: &Json) -> VarMap {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                untrusted(&Value::from(minijinja::value::Serde(v))),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::is_untrusted;

    fn output(rc: i32, stdout: &str) -> ExecOutput {
        ExecOutput {
            rc,
            stdout: stdout.as_bytes().to_vec(),
            stderr: b"a warning on stderr".to_vec(),
        }
    }

    #[test]
    fn a_result_after_noise_is_read() {
        let out = output(
            0,
            "banner {not json\n{\"changed\": true, \"msg\": \"{{ lookup('pipe','id') }}\", \"path\": \"/x\", \"ansible_facts\": {\"thing\": 1}, \"warnings\": [\"plain\", {\"event\": {\"msg\": \"summary\", \"__ansible_type\": \"Event\"}, \"__ansible_type\": \"WarningSummary\"}], \"diff\": {\"before\": \"a\\n\", \"after\": {\"k\": 1}}, \"_ansible_no_log\": false}\ntrailing",
        );
        let result = parse("demo", &out).unwrap();
        assert!(result.changed);
        assert_eq!(result.msg.as_deref(), Some("{{ lookup('pipe','id') }}"));
        assert!(is_untrusted(&result.data["path"]));
        assert!(!result.data.contains_key("_ansible_no_log"));
        assert_eq!(result.data["warnings"].to_string(), "['plain', 'summary']");
        assert_eq!(result.facts.unwrap()["thing"], Value::from(1));
        assert_eq!(result.diffs[0].before, "a\n");
        assert!(result.diffs[0].after.contains("\"k\": 1"));
    }

    #[test]
    fn failures_keep_their_return_values() {
        let failed = parse(
            "demo",
            &output(1, "{\"failed\": true, \"msg\": \"no\", \"rc\": 3}"),
        );
        match failed {
            Err(ModuleError::FailedWith(result)) => {
                assert_eq!(result.msg.as_deref(), Some("no"));
                assert_eq!(result.data["rc"], Value::from(3));
            }
            other => panic!("{other:?}"),
        }
        let by_rc = parse("demo", &output(0, "{\"rc\": 2}"));
        assert!(matches!(by_rc, Err(ModuleError::FailedWith(_))));
    }

    #[test]
    fn output_without_json_is_a_module_failure() {
        match parse("demo", &output(1, "Traceback: boom")) {
            Err(ModuleError::FailedWith(result)) => {
                let msg = result.msg.unwrap_or_default();
                assert!(msg.starts_with("MODULE FAILURE"), "{msg}");
                assert!(msg.contains("a warning on stderr"), "{msg}");
                assert!(is_untrusted(&result.data["module_stdout"]));
            }
            other => panic!("{other:?}"),
        }
    }
}
