//! Drift detection: playbooks run in check mode with diffs against running hosts, touching
//! nothing, collected into a per-host report (`report.rs`); for a fleet, each instance is
//! checked against the playbooks and variables its image was baked from (`fleet.rs`).
//! `cli/drift.rs` drives it.

pub mod fleet;
pub mod report;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::load::inventory::Inventory;
use crate::run::playbook_run::{load_playbooks, PlaybookRun, RunEnd};
use crate::run::RunOptions;

pub use report::{DriftCollector, DriftReport, HostState};

/// One check: playbooks against an inventory, with the run's options (check mode and diffs
/// are forced on).
pub struct Check {
    pub playbooks: Vec<PathBuf>,
    pub roles_path: Vec<PathBuf>,
    pub inventory: Inventory,
    pub options: RunOptions,
    /// The name the report gives the check's one host (a fleet instance checked under its
    /// image's build host name); `None` keeps the inventory's names.
    pub report_as: Option<String>,
}

/// Runs each check in check mode with diffs, all reporting into `collector`; a load or run
/// error ends the checks and is kept in the report. `stop` resolving (Ctrl-C) ends them too.
pub async fn run_checks(
    checks: Vec<Check>,
    collector: &Arc<DriftCollector>,
    stop: impl Future<Output = ()>,
) -> DriftReport {
    let mut error = None;
    tokio::pin!(stop);
    for check in checks {
        collector.report_as(check.report_as);
        let mut options = check.options;
        options.check = true;
        options.diff = true;
        let (playbooks, loader) = match load_playbooks(&check.playbooks, &check.roles_path) {
            Ok(loaded) => loaded,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        let run = PlaybookRun::new(
            playbooks,
            loader,
            check.inventory,
            options,
            collector.clone(),
        );
        match run.run_until(&mut stop).await {
            Ok(RunEnd::Finished { .. }) => {}
            Ok(RunEnd::Stopped) => {
                error = Some("interrupted: the check did not finish".into());
                break;
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    collector.report_as(None);
    let mut report = collector.report();
    if report.error.is_none() {
        report.error = error;
    }
    report
}
