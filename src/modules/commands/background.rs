//! Background jobs (`async:`): a user's command detached on the target, its output in files
//! under `~/.ansible_async` as Ansible keeps its jobs, so `async_status` finds it from a later
//! task. `~/.ansible_async/<jid>.job/` holds `stdin`, `pid`, `start`, and once the command
//! ends `stdout`, `stderr`, `end` and `rc` (written last); `~/.ansible_async/<jid>` is the
//! finished result as JSON, written by the controller once it knows it.

use minijinja::Value;

use crate::connection::{Connection, ConnectionError, ExecOutput};
use crate::shell::quote;

/// The directory of the login (or become) user's jobs, for the target's shell.
const JOBS: &str = "\"$HOME/.ansible_async\"";

/// A new job id in Ansible's shape (`j` + 12 digits + `.` + the controller's process id).
pub fn new_job_id() -> String {
    let hex = crate::util::random_id();
    let number =
        u64::from_str_radix(&hex[..15.min(hex.len())], 16).unwrap_or(0) % 1_000_000_000_000;
    format!("j{number:012}.{}", std::process::id())
}

/// Whether `jid` can name a job file (a user's `jid:` must not reach another path).
pub fn valid_job_id(jid: &str) -> bool {
    !jid.is_empty()
        && !jid.starts_with('.')
        && jid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

/// The path Ansible registers as `results_file`, as the target's shell spells it.
pub fn results_file(jid: &str) -> String {
    format!("~/.ansible_async/{jid}")
}

/// The script that starts `command` detached (its own session, so a timeout stops all of it)
/// and returns at once; the command reads what this script gets on stdin. `timeout` kills it
/// after `seconds`, as Ansible's async wrapper does; `--foreground` keeps it in the job's
/// process group, so [`kill`] stops the job's shell, `timeout` and the command at once.
pub fn launch_script(jid: &str, command: &str, seconds: u64) -> String {
    let job = job_dir(jid);
    let stamp = "date '+%Y-%m-%d %H:%M:%S.%6N'";
    let body = format!(
        "cd \"$1\" && {{ timeout --foreground -s KILL {seconds} sh -c {cmd} <stdin >stdout 2>stderr; echo $? >rc.new; {stamp} >end; mv rc.new rc; }}",
        cmd = quote(command)
    );
    format!(
        "umask 077; mkdir -p {JOBS} && mkdir {job} && cat >{job}/stdin && {stamp} >{job}/start && \
         {{ setsid sh -c {body} job {job} </dev/null >/dev/null 2>&1 & echo $! >{job}/pid; }}",
        body = quote(&body)
    )
}

fn job_dir(jid: &str) -> String {
    format!("{JOBS}/{}.job", quote(jid))
}

/// What the target holds for a job.
#[derive(Debug)]
pub enum JobState {
    /// No file for this id.
    Missing,
    Running,
    /// The command ended: its output, and its start and end stamps.
    Done {
        output: ExecOutput,
        start: String,
        end: String,
    },
    /// The controller recorded the result (JSON).
    Recorded(Value),
}

/// Reads a job's state: one round trip, and two more once its command has ended.
pub async fn probe(conn: &dyn Connection, jid: &str) -> Result<JobState, ConnectionError> {
    let job = job_dir(jid);
    let file = format!("{JOBS}/{}", quote(jid));
    let out = conn
        .exec(
            &format!(
                "if [ -f {file} ]; then echo recorded; cat {file}; elif [ -f {job}/rc ]; then echo done; elif [ -d {job} ]; then echo running; else echo missing; fi"
            ),
            None,
        )
        .await?;
    let text = out.stdout_text();
    let (state, rest) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    match state.trim() {
        "recorded" => Ok(JobState::Recorded(
            serde_json::from_str::<serde_json::Value>(rest)
                .map(|json| Value::from(minijinja::value::Serde(json)))
                .unwrap_or_default(),
        )),
        "running" => Ok(JobState::Running),
        "done" => {
            let output = conn
                .exec(
                    &format!(
                        "cd {job} && read k_rc <rc; cat stdout; cat stderr >&2; exit \"$k_rc\""
                    ),
                    None,
                )
                .await?;
            let stamps = conn
                .exec(&format!("cd {job} && cat start end"), None)
                .await?
                .stdout_text();
            let mut lines = stamps.lines();
            let start = lines.next().unwrap_or_default().to_string();
            let end = lines.next().unwrap_or_default().to_string();
            Ok(JobState::Done { output, start, end })
        }
        _ => Ok(JobState::Missing),
    }
}

/// Stops a job's command (its whole session).
pub async fn kill(conn: &dyn Connection, jid: &str) -> Result<(), ConnectionError> {
    let job = job_dir(jid);
    conn.exec(
        &format!("read k_p <{job}/pid 2>/dev/null && kill -s KILL -- \"-$k_p\" 2>/dev/null; true"),
        None,
    )
    .await?;
    Ok(())
}

/// Records a finished job's result, so `async_status` returns it as it is.
pub async fn record(
    conn: &dyn Connection,
    jid: &str,
    result: &Value,
) -> Result<(), ConnectionError> {
    let json = serde_json::to_vec(result).unwrap_or_default();
    let job = job_dir(jid);
    let file = format!("{JOBS}/{}", quote(jid));
    conn.exec(
        &format!(
            "umask 077; mkdir -p {JOBS} && cat >{file}.new && mv {file}.new {file} && rm -rf {job}"
        ),
        Some(json),
    )
    .await?;
    Ok(())
}

/// Removes a job's files; returns the path removed when there was one.
pub async fn cleanup(conn: &dyn Connection, jid: &str) -> Result<bool, ConnectionError> {
    let job = job_dir(jid);
    let file = format!("{JOBS}/{}", quote(jid));
    let out = conn
        .exec(
            &format!("if [ -e {file} ] || [ -e {job} ]; then rm -rf {file} {job}; echo erased; fi"),
            None,
        )
        .await?;
    Ok(out.stdout_text().trim() == "erased")
}

/// The seconds between two stamps as Ansible's `delta` (`0:00:01.002345`).
pub fn delta(start: &str, end: &str) -> String {
    let seconds = |stamp: &str| -> Option<f64> {
        let time = stamp.split_whitespace().nth(1)?;
        let mut parts = time.split(':');
        let h: f64 = parts.next()?.parse().ok()?;
        let m: f64 = parts.next()?.parse().ok()?;
        let s: f64 = parts.next()?.parse().ok()?;
        Some(h * 3600.0 + m * 60.0 + s)
    };
    let mut diff = match (seconds(start), seconds(end)) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    if diff < 0.0 {
        diff += 86_400.0;
    }
    let micros = (diff * 1_000_000.0).round() as u64;
    format!(
        "{}:{:02}:{:02}.{:06}",
        micros / 3_600_000_000,
        micros / 60_000_000 % 60,
        micros / 1_000_000 % 60,
        micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_look_like_ansibles_and_refuse_paths() {
        let jid = new_job_id();
        assert!(jid.starts_with('j') && jid.contains('.'), "{jid}");
        assert!(valid_job_id(&jid));
        for bad in ["", "../x", "a/b", ".hidden", "a b", "$(x)"] {
            assert!(!valid_job_id(bad), "{bad}");
        }
    }

    #[test]
    fn delta_is_ansibles_format() {
        assert_eq!(
            delta("2026-11-30 21:00:01.500000", "2026-11-30 21:00:03.250001"),
            "0:00:01.750001"
        );
        assert_eq!(delta("x", "y"), "0:00:00.000000");
    }
}
