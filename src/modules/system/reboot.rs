//! `reboot`: reboot the target and wait until it is back, as ansible-core's action does. The
//! boot id is read first; the shutdown command is sent; then the host's connection is opened
//! anew every second until the boot id differs and `test_command` succeeds, or
//! `reboot_timeout` passes. Check mode reports the reboot without sending it (as Ansible).

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::connection::{quote, SharedConnection};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Reboot;

const DEFAULT_MESSAGE: &str = "Reboot initiated by Ansible";
const DEFAULT_BOOT_TIME_COMMAND: &str = "cat /proc/sys/kernel/random/boot_id";
/// Where Ansible looks for `shutdown` when `search_paths` is not given.
const DEFAULT_SEARCH_PATHS: &[&str] =
    &["/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin"];

struct Options {
    pre_delay: Duration,
    post_delay: Duration,
    timeout: Duration,
    connect_timeout: Duration,
    test_command: String,
    boot_time_command: String,
    message: String,
    reboot_command: Option<String>,
    search_paths: Vec<String>,
}

impl Options {
    fn read(mut args: Args) -> Result<Self, ModuleError> {
        let options = Self {
            pre_delay: args.seconds(&["pre_reboot_delay", "reboot_delay"], 0)?,
            post_delay: args.seconds(&["post_reboot_delay", "post_reboot_delay_sec"], 0)?,
            timeout: args.seconds(&["reboot_timeout", "reboot_timeout_sec"], 600)?,
            connect_timeout: args.seconds(&["connect_timeout", "connect_timeout_sec"], 30)?,
            test_command: args
                .str(&["test_command"])?
                .unwrap_or_else(|| "whoami".into()),
            boot_time_command: args
                .str(&["boot_time_command"])?
                .unwrap_or_else(|| DEFAULT_BOOT_TIME_COMMAND.into()),
            message: args
                .str(&["msg"])?
                .unwrap_or_else(|| DEFAULT_MESSAGE.into()),
            reboot_command: args.str(&["reboot_command"])?,
            search_paths: args.list(&["search_paths"])?,
        };
        args.finish()?;
        Ok(options)
    }

    /// The command line that reboots: `reboot_command` as given, else `shutdown` found in
    /// the search paths with Ansible's Linux arguments (the delay in whole minutes).
    fn shutdown_script(&self) -> String {
        if let Some(command) = &self.reboot_command {
            return command.clone();
        }
        let paths = if self.search_paths.is_empty() {
            DEFAULT_SEARCH_PATHS.iter().map(|p| p.to_string()).collect()
        } else {
            self.search_paths.clone()
        };
        let candidates: Vec<String> = paths
            .iter()
            .map(|dir| quote(&format!("{}/shutdown", dir.trim_end_matches('/'))))
            .collect();
        let minutes = self.pre_delay.as_secs() / 60;
        format!(
            "k_s=; for k_c in {}; do [ -x \"$k_c\" ] && {{ k_s=$k_c; break; }}; done; \
             if [ -z \"$k_s\" ]; then echo 'Unable to find command \"shutdown\" in search paths: {}' >&2; exit 127; fi; \
             \"$k_s\" -r {minutes} {}",
            candidates.join(" "),
            paths.join(", ").replace('\'', ""),
            quote(&self.message)
        )
    }
}

/// What a failed reboot registers: Ansible's `rebooted` and `elapsed` beside the message.
fn failure(start: Instant, rebooted: bool, message: String) -> ModuleError {
    ModuleResult::changed(rebooted)
        .with("rebooted", rebooted)
        .with("elapsed", start.elapsed().as_secs() as i64)
        .fail(message)
}

#[async_trait]
impl Module for Reboot {
    async fn run(&self, ctx: &ModuleCtx<'_>, args: Args) -> Result<ModuleResult, ModuleError> {
        let options = Options::read(args)?;
        if ctx.check_mode {
            return Ok(ModuleResult::changed(true)
                .with("rebooted", true)
                .with("elapsed", 0));
        }
        let start = Instant::now();
        let before = ctx.run(&options.boot_time_command, None).await?;
        if before.rc != 0 {
            return Err(failure(
                start,
                false,
                format!(
                    "Failed to get the boot time: {}",
                    before.stderr_text().trim()
                ),
            ));
        }
        let boot_id = before.stdout_text().trim().to_string();
        // The shutdown command may lose its connection before it answers: that is the
        // reboot under way, not a failure.
        if let Ok(out) = ctx.run(&options.shutdown_script(), None).await {
            if out.rc != 0 {
                let detail = match out.stderr_text().trim() {
                    "" => out.stdout_text().trim().to_string(),
                    e => e.to_string(),
                };
                return Err(failure(
                    start,
                    false,
                    format!("Reboot command failed. Error was: '{detail}'"),
                ));
            }
        }
        tokio::time::sleep(options.pre_delay).await;
        let deadline = start + options.pre_delay + options.timeout;
        let conn = wait_for_new_boot(ctx, &options, &boot_id, deadline)
            .await
            .map_err(|e| failure(start, true, e))?;
        wait_for_test_command(&conn, &options, deadline)
            .await
            .map_err(|e| failure(start, true, e))?;
        tokio::time::sleep(options.post_delay).await;
        Ok(ModuleResult::changed(true)
            .with("rebooted", true)
            .with("elapsed", start.elapsed().as_secs() as i64))
    }
}

/// Reconnects every second until the boot id differs from `before`; the connection that saw
/// the new boot.
async fn wait_for_new_boot(
    ctx: &ModuleCtx<'_>,
    options: &Options,
    before: &str,
    deadline: Instant,
) -> Result<SharedConnection, String> {
    loop {
        let attempt = async {
            let conn = ctx.link.reconnect().await.map_err(|e| e.to_string())?;
            let out = conn
                .exec(&options.boot_time_command, None)
                .await
                .map_err(|e| e.to_string())?;
            let now = out.stdout_text().trim().to_string();
            match out.rc == 0 && !now.is_empty() && now != before {
                true => Ok(conn),
                false => Err("the boot time has not changed yet".to_string()),
            }
        };
        let last_error = match tokio::time::timeout(options.connect_timeout, attempt).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {}s", options.connect_timeout.as_secs()),
        };
        if Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(format!(
                "Timed out waiting for last boot time check (timeout={}): {last_error}",
                options.timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `test_command` every second until it succeeds.
async fn wait_for_test_command(
    conn: &SharedConnection,
    options: &Options,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        let error = match conn.exec(&options.test_command, None).await {
            Ok(out) if out.rc == 0 => return Ok(()),
            Ok(out) => format!("rc={}: {}", out.rc, out.stderr_text().trim()),
            Err(e) => e.to_string(),
        };
        if Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(format!(
                "Timed out waiting for post-reboot test command (timeout={}): {error}",
                options.timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(reboot_command: Option<&str>, pre_delay: u64) -> Options {
        Options {
            pre_delay: Duration::from_secs(pre_delay),
            post_delay: Duration::ZERO,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(5),
            test_command: "whoami".into(),
            boot_time_command: DEFAULT_BOOT_TIME_COMMAND.into(),
            message: "it's time".into(),
            reboot_command: reboot_command.map(String::from),
            search_paths: Vec::new(),
        }
    }

    #[test]
    fn shutdown_is_found_in_the_search_paths_with_the_delay_in_minutes() {
        let script = options(None, 125).shutdown_script();
        assert!(script.contains("/sbin/shutdown /bin/shutdown"), "{script}");
        assert!(
            script.ends_with(r#""$k_s" -r 2 'it'"'"'s time'"#),
            "{script}"
        );
    }

    #[test]
    fn a_reboot_command_is_sent_as_given() {
        let script = options(Some("systemctl reboot"), 0).shutdown_script();
        assert_eq!(script, "systemctl reboot");
    }
}
