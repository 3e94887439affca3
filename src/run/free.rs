//! The `free` strategy: each host runs through a section's tasks on its own, as fast as it
//! can, instead of waiting for every host to finish each task. Every host gets its own runner
//! over a copy of the run's state (so `hostvars` of the others read as they were when the
//! section began); its own state is taken back when it is done. Handlers then run at the end
//! of the section as in `linear`.

use futures::stream::{self, StreamExt};

use super::{PlayCtx, Runner};
use crate::error::Result;
use crate::load::model::TaskItem;

impl Runner {
    pub(crate) async fn run_free(
        &mut self,
        ctx: &mut PlayCtx,
        items: &[TaskItem],
        hosts: &[String],
    ) -> Result<()> {
        let hosts: Vec<String> = hosts
            .iter()
            .filter(|h| self.hosts.get(*h).is_some_and(|s| s.active()))
            .cloned()
            .collect();
        let forks = match self.shared.opts.forks {
            0 => hosts.len().max(1),
            n => n,
        };
        let mut runs: Vec<(String, Runner, PlayCtx)> = hosts
            .into_iter()
            .map(|host| (host, self.for_one_host(), ctx.clone()))
            .collect();
        self.shared.reporter.banners_per_result(true);
        let results: Vec<Result<()>> = stream::iter(runs.iter_mut().map(|(host, runner, own)| {
            Box::pin(runner.run_items(own, items, std::slice::from_ref(host)))
        }))
        .buffer_unordered(forks)
        .collect()
        .await;
        self.shared.reporter.banners_per_result(false);
        let known = ctx.handlers.len();
        for (host, mut runner, own) in runs {
            if let Some(state) = runner.hosts.shift_remove(&host) {
                self.hosts.insert(host, state);
            }
            ctx.end_play |= own.end_play;
            ctx.end_batch |= own.end_batch;
            // Handlers an include_role brought in.
            for handler in own.handlers.into_iter().skip(known) {
                if !ctx
                    .handlers
                    .iter()
                    .any(|h| std::sync::Arc::ptr_eq(h, &handler))
                {
                    ctx.handlers.push(handler);
                }
            }
            self.warned_keywords.extend(runner.warned_keywords);
            if runner.start_at.is_none() {
                self.start_at = None;
            }
        }
        results.into_iter().collect::<Result<()>>()?;
        self.commit_inventory_edit(ctx)
    }

    /// A runner for one host of a `free` section, over a copy of this one's state.
    fn for_one_host(&self) -> Runner {
        Runner {
            shared: self.shared.clone(),
            hosts: self.hosts.clone(),
            start_at: self.start_at.clone(),
            include_depth: self.include_depth,
            warned_keywords: self.warned_keywords.clone(),
        }
    }
}
