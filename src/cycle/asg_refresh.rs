//! The instance refresh calls (start, follow, cancel, roll back) and how their answers read:
//! whether the endpoint implements them at all, and whether a refresh is still going.

use anyhow::Context;
use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_autoscaling::types::{DesiredConfiguration, InstanceRefreshStatus, RefreshPreferences};

use super::asg::{sdk_error, Aws, VersionRef};

/// An instance refresh as polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    pub status: String,
    pub percent: i32,
    pub to_update: i32,
    pub reason: String,
}

/// Whether a failed call means the endpoint does not implement the operation at all (an
/// emulator's HTTP 500/501 page without an AWS error code, or an unknown-operation code), as
/// opposed to AWS refusing it (a coded error such as `ValidationError`).
pub fn unimplemented(code: Option<&str>, http_status: Option<u16>) -> bool {
    match code {
        Some(code) => matches!(
            code,
            "NotImplemented" | "InvalidAction" | "UnknownOperationException"
        ),
        None => matches!(http_status, Some(500) | Some(501)),
    }
}

/// How an instance refresh's status reads: still going, done, or failed.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Running,
    Succeeded,
    Failed,
}

pub fn refresh_outcome(status: &str) -> RefreshOutcome {
    match status {
        "Successful" => RefreshOutcome::Succeeded,
        "Pending" | "InProgress" | "Baking" | "Cancelling" | "RollbackInProgress" => {
            RefreshOutcome::Running
        }
        _ => RefreshOutcome::Failed,
    }
}

impl Aws {
    /// Starts an instance refresh. With `desired` (a group pinned to a version number) AWS
    /// switches the group's version itself and can roll it back; `Err(None)` means the
    /// endpoint does not implement instance refreshes.
    pub async fn start_refresh(
        &self,
        group: &str,
        preferences: RefreshPreferences,
        desired: Option<(&str, &VersionRef)>,
    ) -> Result<String, Option<anyhow::Error>> {
        let result = self
            .asg
            .start_instance_refresh()
            .auto_scaling_group_name(group)
            .preferences(preferences)
            .set_desired_configuration(desired.map(|(id, version)| {
                DesiredConfiguration::builder()
                    .launch_template(Self::template_spec(id, version))
                    .build()
            }))
            .send()
            .await;
        match result {
            Ok(out) => out
                .instance_refresh_id()
                .map(str::to_string)
                .ok_or_else(|| Some(anyhow::anyhow!("StartInstanceRefresh returned no id"))),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if unimplemented(e.code(), status) {
                    Err(None)
                } else {
                    Err(Some(sdk_error("StartInstanceRefresh", e)))
                }
            }
        }
    }

    /// The refresh running on a group, if any (a cycle interrupted mid-refresh follows it).
    pub async fn running_refresh(&self, group: &str) -> anyhow::Result<Option<String>> {
        let out = self
            .asg
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeInstanceRefreshes", e))?;
        Ok(out
            .instance_refreshes()
            .iter()
            .find(|r| {
                matches!(
                    r.status(),
                    Some(InstanceRefreshStatus::Pending | InstanceRefreshStatus::InProgress)
                )
            })
            .and_then(|r| r.instance_refresh_id())
            .map(str::to_string))
    }

    pub async fn refresh_state(&self, group: &str, id: &str) -> anyhow::Result<RefreshState> {
        let out = self
            .asg
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .instance_refresh_ids(id)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeInstanceRefreshes", e))?;
        let refresh = out
            .instance_refreshes()
            .first()
            .with_context(|| format!("instance refresh {id} is gone"))?;
        Ok(RefreshState {
            status: refresh
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            percent: refresh.percentage_complete().unwrap_or(0),
            to_update: refresh.instances_to_update().unwrap_or(0),
            reason: refresh.status_reason().unwrap_or_default().to_string(),
        })
    }

    /// AWS's own rollback of a refresh started with a desired configuration.
    pub async fn rollback_refresh(&self, group: &str) -> anyhow::Result<()> {
        self.asg
            .rollback_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| sdk_error("RollbackInstanceRefresh", e))?;
        Ok(())
    }

    pub async fn cancel_refresh(&self, group: &str) -> anyhow::Result<()> {
        self.asg
            .cancel_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| sdk_error("CancelInstanceRefresh", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_uncoded_server_error_or_an_unknown_operation_means_unimplemented() {
        assert!(unimplemented(None, Some(500)));
        assert!(unimplemented(None, Some(501)));
        assert!(unimplemented(Some("InvalidAction"), Some(400)));
        assert!(!unimplemented(Some("InstanceRefreshInProgress"), Some(400)));
        assert!(!unimplemented(Some("ValidationError"), Some(400)));
        assert!(!unimplemented(None, Some(403)));
        assert!(!unimplemented(None, None), "a timeout is no answer at all");
    }

    #[test]
    fn refresh_statuses_read_as_running_succeeded_or_failed() {
        for status in [
            "Pending",
            "InProgress",
            "Baking",
            "Cancelling",
            "RollbackInProgress",
        ] {
            assert_eq!(refresh_outcome(status), RefreshOutcome::Running, "{status}");
        }
        assert_eq!(refresh_outcome("Successful"), RefreshOutcome::Succeeded);
        for status in [
            "Failed",
            "Cancelled",
            "RollbackSuccessful",
            "RollbackFailed",
            "",
        ] {
            assert_eq!(refresh_outcome(status), RefreshOutcome::Failed, "{status}");
        }
    }
}
