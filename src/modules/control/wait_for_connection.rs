//! `wait_for_connection`: wait `delay`, then try the target every `sleep` seconds until it
//! answers a command (each try bounded by `connect_timeout`) or `timeout` passes, as
//! ansible-core's action does with its ping. Skipped in check mode, as Ansible's is. The first
//! try goes over the host's connection as it is; after a failed try the connection is opened
//! anew, as Ansible resets its connection between tries.

use std::time::Instant;

use async_trait::async_trait;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct WaitForConnection;

#[async_trait]
impl Module for WaitForConnection {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let delay = args.seconds(&["delay"], 0)?;
        let sleep = args.seconds(&["sleep"], 1)?;
        let timeout = args.seconds(&["timeout"], 600)?;
        let connect_timeout = args.seconds(&["connect_timeout"], 5)?;
        args.finish()?;
        if ctx.check_mode {
            let mut skipped = ModuleResult::changed(false);
            skipped.skipped = true;
            return Ok(skipped);
        }
        let start = Instant::now();
        tokio::time::sleep(delay).await;
        let deadline = start + delay + timeout;
        let mut reopen = false;
        loop {
            let ping = async {
                let out = match reopen {
                    false => ctx.run("echo pong", None).await?,
                    true => ctx.link.reconnect().await?.exec("echo pong", None).await?,
                };
                Ok::<_, ModuleError>(out)
            };
            let error = match tokio::time::timeout(connect_timeout, ping).await {
                Ok(Ok(out)) if out.rc == 0 && out.stdout_text().trim() == "pong" => {
                    return Ok(ModuleResult::changed(false)
                        .with("elapsed", start.elapsed().as_secs_f64().round() as i64));
                }
                Ok(Ok(out)) => format!("rc={}: {}", out.rc, out.stderr_text().trim()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {}s", connect_timeout.as_secs()),
            };
            reopen = true;
            if Instant::now() + sleep >= deadline {
                return Err(ModuleResult::changed(false)
                    .with("elapsed", start.elapsed().as_secs_f64().round() as i64)
                    .fail(format!("timed out waiting for ping module test: {error}")));
            }
            tokio::time::sleep(sleep).await;
        }
    }
}
