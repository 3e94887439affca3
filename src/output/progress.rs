//! Build progress: one line per step. On a terminal the current step is an indicatif spinner
//! that turns into `✓ step (1.2s)` when the next begins; otherwise (CI logs, pipes) plain
//! `==> name: step` lines. Output errors are ignored: a closed stdout must not stop a cleanup.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Ends the current spinner, if any (before an error message, say).
pub fn finish_current() {
    if let Ok(mut current) = CURRENT.lock() {
        if let Some(bar) = current.take() {
            let elapsed = bar.elapsed().as_secs_f64();
            bar.finish_with_message(format!("{} ({elapsed:.1}s)", bar.message()));
        }
    }
}

/// Starts a step (a spinner on a terminal, a line otherwise).
pub fn step(name: &str, message: &str) {
    finish_current();
    if !std::io::stdout().is_terminal() {
        let _ = writeln!(std::io::stdout(), "==> {name}: {message}");
        return;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template("{spinner} ==> {prefix}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_strings(&["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "✓"]);
    bar.set_style(style);
    bar.set_prefix(name.to_string());
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    if let Ok(mut current) = CURRENT.lock() {
        *current = Some(bar);
    }
}

/// A plain line (ends any spinner first): for steps whose own output follows, such as a
/// playbook's, and for the final report.
pub fn line(name: &str, message: &str) {
    finish_current();
    let _ = writeln!(std::io::stdout(), "==> {name}: {message}");
}
