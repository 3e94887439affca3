//! A bake from spec to image: bake's own options, the [`Builder`] trait each builder type
//! (`local`, `amazon-ebs`) implements, and the one driver that runs any builder: build under
//! the cleanup stack, keep the artifact, unwind; on failure, Ctrl-C or SIGTERM, unwind
//! everything (`OnError::Abort` keeps the build instance for debugging).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::cleanup::CleanupStack;
use super::manifest::{self, Build};
use super::provenance::Provenance;
use super::spec::{BakeSpec, Source};
use crate::clock::epoch_seconds as now;
use crate::load::model::VarMap;
use crate::output::progress::{finish_current, step as say};

/// What to do with the build instance when a build fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Remove everything the build created.
    Cleanup,
    /// Keep the build instance running and say how to reach it.
    Abort,
}

/// How to bake: everything a caller decides besides the spec's contents.
#[derive(Debug, Clone)]
pub struct BakeOptions {
    /// The bake spec (YAML); provisioning playbooks are relative to its directory.
    pub spec: PathBuf,
    /// Extra variables for every provisioning playbook, over each step's own.
    pub extra_vars: VarMap,
    pub on_error: OnError,
    /// Replace an existing image of the same name.
    pub force: bool,
    /// Where the provisioning runs also write JSON-lines events (`-`: stdout instead of text).
    pub json_events: Option<PathBuf>,
}

/// One bake in progress: its spec and options, and the run id every resource is tagged with.
pub struct Job {
    pub options: BakeOptions,
    pub spec: BakeSpec,
    pub spec_dir: PathBuf,
    /// A Packer-shaped uuid naming this run.
    pub run_id: String,
    /// What the image is baked from, recorded with it.
    pub provenance: Provenance,
    pub started: Instant,
}

/// One builder type. [`bake`] drives each the same way; a builder only says how to launch,
/// provision and capture its instance, how to keep the result, and what it leaves on abort.
/// Builders run on the caller's task, so their futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Builder {
    /// What a successful build produced (the image's layer, an AMI id).
    type Built;
    /// What keeping it produced (an image in the local store, the same AMI id).
    type Kept;

    /// Launches, provisions and captures the build instance; each resource's undo goes on
    /// `cleanup` the moment the resource exists.
    async fn build(&self, cleanup: &mut CleanupStack) -> anyhow::Result<Self::Built>;

    /// Stores what was built while the build's undos are still armed: a failure here
    /// unwinds as a failed build does.
    async fn keep(&self, built: Self::Built) -> anyhow::Result<Self::Kept>;

    /// Records and announces the kept artifact, after the build's resources are gone.
    fn report(&self, kept: Self::Kept) -> anyhow::Result<()>;

    /// What `OnError::Abort` leaves behind and how to reach or remove it.
    fn kept_on_abort(&self) -> String;

    /// Whether `OnError::Abort` also keeps the instance after Ctrl-C or SIGTERM.
    const ABORT_KEEPS_AFTER_SIGNAL: bool;
}

/// Bakes the spec with its source's builder; the exit code is 0 (stored), 1 (failed) or the
/// shell's code for the signal that stopped it (130, 143).
pub async fn bake(options: BakeOptions) -> anyhow::Result<i32> {
    let spec = BakeSpec::load(&options.spec)?;
    let spec_dir = options
        .spec
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let provenance = Provenance::of_bake(&spec, &spec_dir, &options.extra_vars)?;
    let job = Job {
        options,
        spec,
        spec_dir,
        provenance,
        run_id: run_uuid(),
        started: Instant::now(),
    };
    match &job.spec.source {
        Source::Local(source) => {
            drive(
                &job,
                super::build_local::LocalBuilder::prepare(&job, source).await?,
            )
            .await
        }
        #[cfg(feature = "aws")]
        Source::AmazonEbs(source) => {
            drive(
                &job,
                super::build_ebs::EbsBuilder::prepare(&job, source).await?,
            )
            .await
        }
        #[cfg(not(feature = "aws"))]
        Source::AmazonEbs(_) => Err(super::aws_unavailable("an amazon-ebs source")),
    }
}

async fn drive<B: Builder>(job: &Job, builder: B) -> anyhow::Result<i32> {
    let name = &job.spec.name;
    let mut cleanup = CleanupStack::default();
    let mut signal_code = None;
    let outcome = tokio::select! {
        result = builder.build(&mut cleanup) => result,
        code = interrupted() => {
            signal_code = Some(code);
            Err(anyhow::anyhow!("interrupted by a signal"))
        }
    };
    let outcome = match outcome {
        Ok(built) => builder.keep(built).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(kept) => {
            for f in cleanup
                .unwind(|what| say(name, &format!("cleanup: {what}")))
                .await
            {
                eprintln!("WARNING: cleanup failed: {f}");
            }
            builder.report(kept)?;
            Ok(0)
        }
        Err(e) => {
            finish_current();
            eprintln!("==> {name}: build failed: {e:#}");
            let keeps = signal_code.is_none() || B::ABORT_KEEPS_AFTER_SIGNAL;
            if job.options.on_error == OnError::Abort && keeps && !cleanup.is_empty() {
                eprintln!("==> {name}: --on-error=abort: {}", builder.kept_on_abort());
                return Ok(1);
            }
            for f in cleanup
                .unwind(|what| say(name, &format!("cleanup: {what}")))
                .await
            {
                eprintln!("ERROR: cleanup failed: {f}");
            }
            Ok(signal_code.unwrap_or(1))
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM with the shell's exit code for it (130, 143).
pub(crate) async fn interrupted() -> i32 {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => 130,
        _ = term.recv() => 143,
    }
}

/// A run id in Packer's uuid shape.
fn run_uuid() -> String {
    let id = crate::util::random_id();
    format!(
        "{}-{}-{}-{}-{}",
        &id[0..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    )
}

/// What spec strings may use: one `timestamp` and one `git_sha` for the whole build, so an
/// image's name and its tags agree.
fn template_context() -> &'static (i64, String) {
    static CONTEXT: std::sync::OnceLock<(i64, String)> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(|| {
        let git_sha = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        (now(), git_sha)
    })
}

/// Renders `{{ timestamp }}`, `{{ git_sha }}` and `{{ name }}` in spec strings.
pub fn render(text: &str, name: &str) -> anyhow::Result<String> {
    let (timestamp, git_sha) = template_context();
    let env = minijinja::Environment::new();
    env.render_str(
        text,
        minijinja::context! { timestamp => timestamp, git_sha => git_sha, name => name },
    )
    .with_context(|| format!("rendering '{text}'"))
}

/// `render` over every value of a tag map.
pub fn render_tags(
    tags: &BTreeMap<String, String>,
    name: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    tags.iter()
        .map(|(k, v)| Ok((k.clone(), render(v, name)?)))
        .collect()
}

impl Job {
    /// Appends the build to the manifest the spec's post-processor names, if any; its
    /// `custom_data` holds the image's provenance too.
    pub fn record(
        &self,
        builder_type: &str,
        artifact_id: &str,
        mut custom_data: BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        custom_data.extend(self.provenance.to_tags());
        if let Some(post) = &self.spec.post.manifest {
            let path = if post.output.is_absolute() {
                post.output.clone()
            } else {
                self.spec_dir.join(&post.output)
            };
            manifest::append(
                &path,
                Build {
                    name: self.spec.name.clone(),
                    builder_type: builder_type.into(),
                    build_time: now(),
                    files: None,
                    artifact_id: artifact_id.into(),
                    packer_run_uuid: self.run_id.clone(),
                    custom_data,
                    other: Default::default(),
                },
            )?;
        }
        Ok(())
    }
}
