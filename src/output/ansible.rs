//! ansible-playbook's default text output: PLAY/TASK banners, `ok:`/`changed:`/`fatal:`
//! lines, unified diffs with `--diff`, and PLAY RECAP, so tools that parse it keep working.

use std::io::Write;
use std::sync::Mutex;

use indexmap::IndexMap;

use super::{result_json, HostEvent, Reporter, Stats, Status};

pub struct AnsibleText {
    verbosity: u8,
    out: Mutex<Box<dyn Write + Send>>,
}

impl AnsibleText {
    pub fn new(verbosity: u8, out: Box<dyn Write + Send>) -> Self {
        Self {
            verbosity,
            out: Mutex::new(out),
        }
    }

    fn print(&self, text: &str) {
        let line = format!("{text}\n");
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// `TITLE ****…` padded with stars to 80 columns (at least three).
pub fn banner(title: &str) -> String {
    let stars = 79usize.saturating_sub(title.chars().count()).max(3);
    format!("\n{title} {}", "*".repeat(stars))
}

pub fn recap_line(host: &str, s: &Stats) -> String {
    format!(
        "{host:<26} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4}",
        s.ok, s.changed, s.unreachable, s.failed, s.skipped, s.rescued, s.ignored
    )
}

/// A unified diff in the form `--diff` prints.
pub fn unified_diff(diff: &crate::modules::Diff) -> String {
    let text = similar::TextDiff::from_lines(&diff.before, &diff.after);
    text.unified_diff()
        .context_radius(3)
        .header(
            &format!("before: {}", diff.before_header),
            &format!("after: {}", diff.after_header),
        )
        .to_string()
}

impl Reporter for AnsibleText {
    fn play_start(&self, name: &str) {
        self.print(&banner(&format!("PLAY [{name}]")));
    }

    fn task_start(&self, name: &str, handler: bool) {
        let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
        self.print(&banner(&format!("{kind} [{name}]")));
    }

    fn host_result(&self, e: &HostEvent<'_>) {
        let host = match e.delegated_to {
            Some(d) if d != e.host => format!("[{} -> {d}]", e.host),
            _ => format!("[{}]", e.host),
        };
        let item = e
            .item_label
            .as_ref()
            .map(|l| format!(" => (item={l})"))
            .unwrap_or_default();
        let mut text = String::new();
        for diff in e.diffs {
            text.push_str(&unified_diff(diff));
        }
        let censored;
        let result = if e.no_log {
            censored = IndexMap::from([
                ("censored".to_string(), minijinja::Value::from("the output has been hidden due to the fact that 'no_log: true' was specified for this result")),
                ("changed".to_string(), e.result.get("changed").cloned().unwrap_or_default()),
            ]);
            &censored
        } else {
            e.result
        };
        // ansible-playbook does not repeat `"failed": true` after FAILED!.
        let mut shown_failure;
        let result = if matches!(e.status, Status::Failed | Status::Unreachable) {
            shown_failure = result.clone();
            shown_failure.shift_remove("failed");
            &shown_failure
        } else {
            result
        };
        let line = match e.status {
            Status::Failed => format!(
                "fatal: {host}: FAILED! => {}",
                result_json(result, self.verbosity > 0)
            ),
            Status::Unreachable => format!(
                "fatal: {host}: UNREACHABLE! => {}",
                result_json(result, self.verbosity > 0)
            ),
            status => {
                let mut line = format!("{}: {host}{item}", status.word());
                if (e.is_debug && status != Status::Skipped) || self.verbosity > 0 {
                    let mut shown = result.clone();
                    if e.is_debug {
                        shown.shift_remove("changed");
                    }
                    line.push_str(&format!(" => {}", result_json(&shown, true)));
                }
                line
            }
        };
        if e.status == Status::Failed && e.item_label.is_some() {
            text.push_str(&format!(
                "failed: {host}{item} => {}",
                result_json(result, self.verbosity > 0)
            ));
        } else {
            text.push_str(&line);
        }
        if e.ignored {
            text.push_str("\n...ignoring");
        }
        if self.verbosity >= 3 {
            text.push_str(&format!(
                "\n<{}> round trips so far: {}",
                e.host, e.round_trips
            ));
        }
        self.print(&text);
    }

    fn warning(&self, message: &str) {
        self.print(&format!("[WARNING]: {message}"));
    }

    fn recap(&self, stats: &IndexMap<String, Stats>) {
        let mut text = banner("PLAY RECAP");
        for (host, s) in stats {
            text.push('\n');
            text.push_str(&recap_line(host, s));
        }
        text.push('\n');
        self.print(&text);
    }

    fn no_hosts_matched(&self) {
        self.print("skipping: no hosts matched");
    }

    fn included(&self, file: &str, hosts: &[String]) {
        self.print(&format!("included: {file} for {}", hosts.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_and_recap_match_ansible() {
        assert_eq!(banner("PLAY [all]").len(), 81);
        assert!(banner("PLAY [all]").starts_with("\nPLAY [all] ***"));
        assert!(banner(&"x".repeat(90)).ends_with(" ***"));
        let s = Stats {
            ok: 5,
            changed: 2,
            ..Default::default()
        };
        assert_eq!(
            recap_line("web1", &s),
            "web1                       : ok=5    changed=2    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   "
        );
    }
}
