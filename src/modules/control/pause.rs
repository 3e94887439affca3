//! `pause`: wait a number of seconds or minutes on the controller. A prompt is never answered
//! (kiln reads no terminal input during a run): as Ansible does without an interactive stdin,
//! it is shown and the pause returns at once with an empty `user_input`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use minijinja::Value;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Pause;

/// A number of seconds or minutes as written (`5`, `"0.5"`).
fn amount(args: &mut Args, key: &str) -> Result<Option<f64>, ModuleError> {
    let Some(value) = args.raw(key) else {
        return Ok(None);
    };
    let text = value.to_string();
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(Some)
        .ok_or_else(|| {
            ModuleError::Failed(format!(
                "pause: '{key}' must be a number of {key}, got '{text}'"
            ))
        })
}

#[async_trait]
impl Module for Pause {
    async fn run(&self, _ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let minutes = amount(&mut args, "minutes")?;
        let seconds = amount(&mut args, "seconds")?;
        let prompt = args.str(&["prompt"])?;
        args.bool("echo", true)?;
        args.finish()?;
        if minutes.is_some() && seconds.is_some() {
            return Err(ModuleError::Failed(
                "pause: parameters are mutually exclusive: minutes|seconds".into(),
            ));
        }
        let wait = minutes.map(|m| m * 60.0).or(seconds);
        let started = Instant::now();
        if let Some(wait) = wait {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        let delta = started.elapsed().as_secs();
        let stdout = format!("Paused for {} seconds", wait.unwrap_or(0.0));
        let mut result = ModuleResult::changed(false)
            .with("rc", 0)
            .with("delta", delta)
            .with("stdout", stdout)
            .with("echo", true);
        if prompt.is_some() || wait.is_none() {
            result = result.with("user_input", Value::from(""));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_accept_numbers_written_as_text() {
        let value = minijinja::context! { seconds => "0.5", minutes => "x" };
        let mut args = Args::new("pause", &value).expect("args");
        assert_eq!(amount(&mut args, "seconds").ok().flatten(), Some(0.5));
        assert!(amount(&mut args, "minutes").is_err());
    }
}
