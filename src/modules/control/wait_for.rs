//! `wait_for`: wait on the target for a path to appear/disappear or a port to listen/close.
//! The polling loop runs on the target in one command (no round trip per poll). A
//! `search_regex` is a Python regular expression: the file is read every `sleep` seconds and
//! searched on the controller, which reports the match's groups as Ansible does.

use async_trait::async_trait;
use minijinja::Value;

use crate::connection::quote;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct WaitFor;

#[async_trait]
impl Module for WaitFor {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let path = args.path(ctx, &["path"]).await?;
        let port = args.int("port")?;
        let host = args.str(&["host"])?.unwrap_or_else(|| "127.0.0.1".into());
        let state = args.choice(
            "state",
            &["present", "started", "stopped", "absent", "drained"],
            "started",
        )?;
        let timeout = args.int("timeout")?.unwrap_or(300);
        let delay = args.int("delay")?.unwrap_or(0);
        let sleep = args.int("sleep")?.unwrap_or(1).max(1);
        let search = args.str(&["search_regex"])?;
        let msg = args.str(&["msg"])?;
        let _ = args.raw_any(&[
            "connect_timeout",
            "exclude_hosts",
            "active_connection_states",
        ]);
        args.finish()?;
        let present = matches!(state.as_str(), "present" | "started");
        if let (Some(p), Some(re), true) = (&path, &search, present) {
            let regex = fancy_regex::RegexBuilder::new(re)
                .multi_line(true)
                .build()
                .map_err(|e| ModuleError::Args(format!("wait_for: invalid search_regex: {e}")))?;
            let started = std::time::Instant::now();
            let deadline = started + std::time::Duration::from_secs(timeout.max(0) as u64);
            tokio::time::sleep(std::time::Duration::from_secs(delay.max(0) as u64)).await;
            let read = format!("cat -- {} 2>/dev/null; true", quote(p));
            loop {
                let text = ctx.run(&read, None).await?.stdout_text();
                if let Ok(Some(found)) = regex.captures(&text) {
                    let groups: Vec<Value> = (1..found.len())
                        .map(|i| {
                            found
                                .get(i)
                                .map_or(Value::from(()), |m| Value::from(m.as_str()))
                        })
                        .collect();
                    let named: indexmap::IndexMap<String, Value> = regex
                        .capture_names()
                        .flatten()
                        .map(|name| {
                            let value = found
                                .name(name)
                                .map_or(Value::from(()), |m| Value::from(m.as_str()));
                            (name.to_string(), value)
                        })
                        .collect();
                    return Ok(ModuleResult::changed(false)
                        .with("elapsed", started.elapsed().as_secs() as i64)
                        .with("state", state.as_str())
                        .with("path", p.as_str())
                        .with("search_regex", re.as_str())
                        .with("match_groups", groups)
                        .with("match_groupdict", crate::value::map_value(named)));
                }
                if std::time::Instant::now() >= deadline {
                    return Err(ModuleResult::changed(false)
                        .with("elapsed", started.elapsed().as_secs() as i64)
                        .fail(msg.unwrap_or_else(|| {
                            format!("Timeout when waiting for search string {re} in {p}")
                        })));
                }
                tokio::time::sleep(std::time::Duration::from_secs(sleep.max(1) as u64)).await;
            }
        }
        let test = match (&path, port) {
            // A search_regex was waited for above.
            (Some(p), _) if present => format!("[ -e {} ]", quote(p)),
            (Some(p), _) => format!("[ ! -e {} ]", quote(p)),
            (None, Some(port)) => {
                // Whether a socket on the port is in one of the kernel's TCP states.
                let port_in = |states: &str| {
                    format!(
                        "awk 'NR>1 && ({states}) {{split($2,a,\":\"); if (a[2]==\"{port:04X}\") f=1}} END {{exit !f}}' /proc/net/tcp /proc/net/tcp6 2>/dev/null"
                    )
                };
                let listening = port_in("$4==\"0A\"");
                match (present, state.as_str()) {
                    (true, _) => listening,
                    // Drained: no connection to the port in an active state (SYN_SENT
                    // through TIME_WAIT), listening or not, as Ansible's module counts them.
                    (false, "drained") => format!("! {}", port_in("$4>=\"01\" && $4<=\"06\"")),
                    (false, _) => format!("! {listening}"),
                }
            }
            (None, None) => "true".to_string(),
        };
        // Waiting changes nothing: it waits in check mode too, as Ansible's does.
        let started = std::time::Instant::now();
        let script = match (&path, port) {
            // Nothing to wait for: Ansible just sleeps `timeout` seconds.
            (None, None) => format!("sleep {delay}; sleep {timeout}"),
            _ => format!(
                "sleep {delay}; end=$(( $(date +%s) + {timeout} )); until {test}; do if [ $(date +%s) -ge $end ]; then exit 7; fi; sleep {sleep}; done"
            ),
        };
        let out = ctx.run(&script, None).await?;
        if out.rc == 7 {
            // Ansible's words for each kind of wait.
            let default = match (&path, port, present) {
                (Some(p), _, true) => format!("Timeout when waiting for file {p}"),
                (Some(p), _, false) => format!("Timeout when waiting for {p} to be absent."),
                (None, Some(port), true) => format!("Timeout when waiting for {host}:{port}"),
                (None, Some(port), false) if state == "drained" => {
                    format!("Timeout when waiting for {host}:{port} to drain")
                }
                (None, Some(port), false) => {
                    format!("Timeout when waiting for {host}:{port} to stop.")
                }
                (None, None, _) => "Timeout".to_string(),
            };
            return Err(ModuleResult::changed(false)
                .with("elapsed", started.elapsed().as_secs() as i64)
                .fail(msg.unwrap_or(default)));
        }
        if out.rc != 0 {
            return Err(ModuleError::Failed(format!(
                "wait_for failed: {}",
                out.stderr_text().trim()
            )));
        }
        let mut result = ModuleResult::changed(false)
            .with("elapsed", started.elapsed().as_secs() as i64)
            .with("state", state.as_str());
        if let Some(p) = path {
            result.data.insert("path".into(), p.into());
        }
        if let Some(p) = port {
            result.data.insert("port".into(), p.into());
        }
        Ok(result)
    }
}
