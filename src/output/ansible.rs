//! ansible-playbook's default text output: PLAY/TASK banners, `ok:`/`changed:`/`fatal:`
//! lines, unified diffs with `--diff`, and PLAY RECAP, so tools that parse it keep working.

use std::io::Write;
use std::sync::Mutex;

use indexmap::IndexMap;

use super::{result_json, HostEvent, Reporter, Stats, Status};

pub struct AnsibleText {
    verbosity: u8,
    options: TextOptions,
    out: Mutex<Box<dyn Write + Send>>,
    /// A task banner held back until the task shows a result (when results are filtered).
    pending_banner: Mutex<Option<String>>,
    /// Banners above results (`Reporter::banners_per_result`): the task of the last banner
    /// shown, while on.
    per_result: Mutex<Option<Option<String>>>,
}

/// How the text looks beyond its verbosity.
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    /// Colour as ansible-playbook does on a terminal.
    pub color: bool,
    /// `display_skipped_hosts`
    pub show_skipped: bool,
    /// `display_ok_hosts`
    pub show_ok: bool,
    /// Results as YAML (the `yaml` stdout callback, `callback_result_format = yaml`).
    pub yaml: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            color: false,
            show_skipped: true,
            show_ok: true,
            yaml: false,
        }
    }
}

/// Ansible's default colours (its `COLOR_*` settings) as SGR codes.
mod colors {
    pub const OK: &str = "0;32";
    pub const CHANGED: &str = "0;33";
    pub const ERROR: &str = "0;31";
    pub const SKIP: &str = "0;36";
    pub const UNREACHABLE: &str = "1;31";
    pub const WARN: &str = "1;35";
    pub const DEBUG: &str = "1;30";
    pub const VERBOSE: &str = "0;34";
    pub const DIFF_ADD: &str = "0;32";
    pub const DIFF_REMOVE: &str = "0;31";
    pub const DIFF_LINES: &str = "0;36";
}

impl AnsibleText {
    pub fn new(verbosity: u8, options: TextOptions, out: Box<dyn Write + Send>) -> Self {
        Self {
            verbosity,
            options,
            out: Mutex::new(out),
            pending_banner: Mutex::new(None),
            per_result: Mutex::new(None),
        }
    }

    /// A result as Ansible's `_dump_results` prints it after `=> `: JSON (one line, or
    /// indented), or YAML indented four spaces under the line.
    fn dump(&self, result: &IndexMap<String, minijinja::Value>, indented: bool) -> String {
        if !self.options.yaml {
            return result_json(result, indented);
        }
        let value =
            crate::template::filters::to_json_value(&crate::template::map_value(result.clone()));
        let yaml = serde_saphyr::to_string(&crate::template::filters::sort_keys(value))
            .unwrap_or_else(|e| format!("msg: the result could not be shown: {e}"));
        let body: Vec<String> = yaml.lines().map(|l| format!("    {l}")).collect();
        format!("\n{}", body.join("\n"))
    }

    /// `text` in the colour `code`, line by line as Ansible's `stringc` does (so a pager or
    /// `grep` never sees a colour run across a newline).
    fn paint(&self, text: &str, code: &str) -> String {
        if !self.options.color {
            return text.to_string();
        }
        text.split('\n')
            .map(|line| format!("\x1b[{code}m{line}\x1b[0m"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A unified diff with added lines green, removed red and hunk headers cyan.
    fn paint_diff(&self, diff: &str) -> String {
        let mut out = String::with_capacity(diff.len());
        for line in diff.split_inclusive('\n') {
            let (body, newline) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            let code = if body.starts_with('+') {
                Some(colors::DIFF_ADD)
            } else if body.starts_with('-') {
                Some(colors::DIFF_REMOVE)
            } else if body.starts_with("@@") {
                Some(colors::DIFF_LINES)
            } else {
                None
            };
            match code {
                Some(code) => out.push_str(&self.paint(body, code)),
                None => out.push_str(body),
            }
            out.push_str(newline);
        }
        out
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

impl AnsibleText {
    /// A recap line coloured as Ansible's `hostcolor` and `colorize` do: the host by its
    /// worst outcome, each non-zero counter in its status's colour.
    fn recap_line_colored(&self, host: &str, s: &Stats) -> String {
        if !self.options.color {
            return recap_line(host, s);
        }
        let host_color = if s.failed > 0 || s.unreachable > 0 {
            colors::ERROR
        } else if s.changed > 0 {
            colors::CHANGED
        } else {
            colors::OK
        };
        let counter = |name: &str, n: u64, code: &str| {
            let text = format!("{name}={n:<4}");
            if n == 0 {
                text
            } else {
                self.paint(&text, code)
            }
        };
        // Ansible pads the coloured name to 37 columns: 26 plus the 11 bytes of colour codes.
        format!(
            "{:<37} : {} {} {} {} {} {} {}",
            self.paint(host, host_color),
            counter("ok", s.ok, colors::OK),
            counter("changed", s.changed, colors::CHANGED),
            counter("unreachable", s.unreachable, colors::UNREACHABLE),
            counter("failed", s.failed, colors::ERROR),
            counter("skipped", s.skipped, colors::SKIP),
            counter("rescued", s.rescued, colors::OK),
            counter("ignored", s.ignored, colors::WARN),
        )
    }
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
        if let Ok(mut pending) = self.pending_banner.lock() {
            *pending = None;
        }
        self.print(&banner(&format!("PLAY [{name}]")));
    }

    fn banners_per_result(&self, on: bool) {
        if let Ok(mut per_result) = self.per_result.lock() {
            *per_result = on.then_some(None);
        }
    }

    fn task_start(&self, name: &str, handler: bool) {
        if self.per_result.lock().is_ok_and(|p| p.is_some()) {
            return;
        }
        let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
        let text = banner(&format!("{kind} [{name}]"));
        if self.options.show_skipped && self.options.show_ok {
            self.print(&text);
        } else if let Ok(mut pending) = self.pending_banner.lock() {
            // As Ansible: with results filtered, a banner shows only above a result.
            *pending = Some(text);
        }
    }

    fn host_result(&self, e: &HostEvent<'_>) {
        let hidden = match e.status {
            Status::Skipped => !self.options.show_skipped,
            Status::Ok => !self.options.show_ok,
            _ => false,
        };
        if hidden {
            return;
        }
        if let Some(text) = self.pending_banner.lock().ok().and_then(|mut p| p.take()) {
            self.print(&text);
        }
        if let Ok(mut per_result) = self.per_result.lock() {
            if let Some(last) = per_result.as_mut() {
                if last.as_deref() != Some(e.task) {
                    self.print(&banner(&format!("TASK [{}]", e.task)));
                    *last = Some(e.task.to_string());
                }
            }
        }
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
            text.push_str(&self.paint_diff(&unified_diff(diff)));
        }
        let censored;
        let result = if e.no_log {
            censored = IndexMap::from([
                (
                    "censored".to_string(),
                    minijinja::Value::from(super::NO_LOG_CENSORED),
                ),
                (
                    "changed".to_string(),
                    e.result.get("changed").cloned().unwrap_or_default(),
                ),
            ]);
            &censored
        } else {
            e.result
        };
        // ansible-playbook does not repeat `"failed": true` after FAILED!, and shows a
        // failure's `exception` (a traceback) only as its own message.
        let mut shown_failure;
        let result = if matches!(e.status, Status::Failed | Status::Unreachable) {
            shown_failure = result.clone();
            shown_failure.shift_remove("failed");
            shown_failure.shift_remove("exception");
            &shown_failure
        } else {
            result
        };
        // As Ansible's `_dump_results`: one line up to -vv, indented from -vvv (and always
        // for debug).
        let indented = self.verbosity > 2;
        let line = match e.status {
            Status::Failed => format!("fatal: {host}: FAILED! => {}", self.dump(result, indented)),
            Status::Unreachable => format!(
                "fatal: {host}: UNREACHABLE! => {}",
                self.dump(result, indented)
            ),
            status => {
                let mut line = format!("{}: {host}{item}", status.word());
                let shown = if e.is_debug {
                    status != Status::Skipped
                } else {
                    self.verbosity > 0 && !e.verbose_override
                };
                if shown {
                    let mut shown = result.clone();
                    if e.is_debug {
                        shown.shift_remove("changed");
                    }
                    let text = self.dump(&shown, e.is_debug || indented);
                    line.push_str(&format!(" => {text}"));
                }
                line
            }
        };
        let line = if e.status == Status::Failed && e.item_label.is_some() {
            format!("failed: {host}{item} => {}", self.dump(result, indented))
        } else {
            line
        };
        let code = match e.status {
            Status::Ok => colors::OK,
            Status::Changed => colors::CHANGED,
            Status::Skipped => colors::SKIP,
            Status::Failed => colors::ERROR,
            Status::Unreachable => colors::UNREACHABLE,
        };
        text.push_str(&self.paint(&line, code));
        if e.ignored {
            text.push('\n');
            text.push_str(&self.paint("...ignoring", colors::SKIP));
        }
        if self.verbosity >= 3 {
            text.push('\n');
            text.push_str(&self.paint(
                &format!("<{}> round trips so far: {}", e.host, e.round_trips),
                colors::VERBOSE,
            ));
        }
        self.print(&text);
    }

    fn warning(&self, message: &str) {
        self.print(&self.paint(&format!("[WARNING]: {message}"), colors::WARN));
    }

    fn retry(&self, message: &str) {
        self.print(&self.paint(message, colors::DEBUG));
    }

    fn recap(&self, stats: &IndexMap<String, Stats>) {
        let mut text = banner("PLAY RECAP");
        for (host, s) in stats {
            text.push('\n');
            text.push_str(&self.recap_line_colored(host, s));
        }
        text.push('\n');
        self.print(&text);
    }

    fn no_hosts_matched(&self) {
        self.print(&self.paint("skipping: no hosts matched", colors::SKIP));
    }

    fn verbose(&self, level: u8, host: Option<&str>, message: &str) {
        if self.verbosity < level {
            return;
        }
        let line = match host {
            Some(host) => format!("<{host}> {message}"),
            None => message.to_string(),
        };
        self.print(&self.paint(&line, colors::VERBOSE));
    }

    fn included(&self, file: &str, hosts: &[String]) {
        let line = format!("included: {file} for {}", hosts.join(", "));
        self.print(&self.paint(&line, colors::SKIP));
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
        let plain = AnsibleText::new(0, TextOptions::default(), Box::new(std::io::sink()));
        assert_eq!(plain.recap_line_colored("web1", &s), recap_line("web1", &s));
        let options = TextOptions {
            color: true,
            ..TextOptions::default()
        };
        let colored = AnsibleText::new(0, options, Box::new(std::io::sink()));
        assert_eq!(
            colored.recap_line_colored("web1", &s),
            format!(
                "{:<37} : \x1b[0;32mok=5   \x1b[0m \x1b[0;33mchanged=2   \x1b[0m unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   ",
                "\x1b[0;33mweb1\x1b[0m"
            )
        );
        assert_eq!(
            colored.paint_diff("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n same\n"),
            "\x1b[0;31m--- a\x1b[0m\n\x1b[0;32m+++ b\x1b[0m\n\x1b[0;36m@@ -1 +1 @@\x1b[0m\n\x1b[0;31m-x\x1b[0m\n\x1b[0;32m+y\x1b[0m\n same\n"
        );
        assert_eq!(
            recap_line("web1", &s),
            "web1                       : ok=5    changed=2    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   "
        );
    }
}
