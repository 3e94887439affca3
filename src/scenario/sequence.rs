//! Runs a scenario's test sequence on local instances: create, prepare, converge,
//! idempotence (a second converge; any changed task fails it, named with its file and line),
//! side effect, verify (the ansible verifier: a playbook), cleanup, destroy. Each playbook is
//! a `run::PlaybookRun` in-process. One line per stage with its duration, a summary, and the
//! instances destroyed on success, on a failed stage and on Ctrl-C or SIGTERM (unless
//! `--destroy never`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::changes::ChangeWatcher;
use super::instances::{resolve_image, InstanceSet, Launched};
use super::role::Role;
use super::spec::{expand_env, Scenario, Stage};
use crate::bake::images::ImageStore;
use crate::bake::local;
use crate::bake::provision::trust_fresh_host_keys;
use crate::load::config::AnsibleConfig;
use crate::load::inventory::Inventory;
use crate::output::{Fanout, Reporter};
use crate::run::playbook_run::{load_playbooks, PlaybookRun};
use crate::run::RunOptions;

/// Whether instances are removed when the sequence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyPolicy {
    Always,
    Never,
}

/// Everything a caller decides about a test run.
pub struct TestOptions {
    pub role: PathBuf,
    pub scenarios: Vec<String>,
    pub destroy: DestroyPolicy,
    /// Only this platform of each scenario.
    pub platform: Option<String>,
    /// `--image FROM=TO`: a platform image mapped to a local image.
    pub images: Vec<(String, String)>,
    /// Only remove what earlier runs of the scenarios left, then exit.
    pub destroy_only: bool,
    pub reporter: Arc<dyn Reporter>,
    pub verbosity: u8,
    /// Stage lines go to stderr (stdout carries JSON events).
    pub lines_to_stderr: bool,
}

/// Exit code of a run in which a stage failed.
pub const FAILED_EXIT_CODE: i32 = 2;

/// Runs every scenario in order; the exit code is 0 when every stage of every scenario
/// passed, 2 when one failed, the shell's code for a signal (130, 143) when interrupted.
pub async fn test(options: TestOptions) -> anyhow::Result<i32> {
    let role = Role::at(&options.role)?;
    let home = local::home();
    let mut code = 0;
    for name in &options.scenarios {
        let scenario = Scenario::load(&role.dir, name)?;
        let set = InstanceSet::for_scenario(&home, &role.dir, &role.names[0], name);
        let run = ScenarioRun {
            options: &options,
            role: &role,
            scenario,
            set,
            home: home.clone(),
            launched: Vec::new(),
            results: Vec::new(),
            failed: None,
        };
        code = code.max(run.run().await?);
        if code > FAILED_EXIT_CODE {
            break;
        }
    }
    Ok(code)
}

#[derive(Debug, Clone)]
enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

struct ScenarioRun<'a> {
    options: &'a TestOptions,
    role: &'a Role,
    scenario: Scenario,
    set: InstanceSet,
    home: PathBuf,
    launched: Vec<Launched>,
    results: Vec<(Stage, Outcome, Duration)>,
    /// The stage that failed, once one has.
    failed: Option<Stage>,
}

impl ScenarioRun<'_> {
    async fn run(mut self) -> anyhow::Result<i32> {
        let started = Instant::now();
        if self.options.destroy_only {
            let removed = self.set.destroy_all().await?;
            self.say(&format!(
                "destroyed {} instance(s) {}",
                removed.len(),
                removed.join(" ")
            ));
            return Ok(0);
        }
        self.set_environment();
        let stages = self.stages();
        let mut signal = None;
        let outcome = {
            let sequence = self.sequence(&stages);
            tokio::select! {
                result = sequence => result,
                code = crate::bake::build::interrupted() => {
                    signal = Some(code);
                    Ok(())
                }
            }
        };
        if let Some(code) = signal {
            self.say("interrupted: destroying the instances");
            self.launched.clear();
            let removed = self.set.destroy_all().await?;
            self.say(&format!("destroyed {}", removed.join(" ")));
            return Ok(code);
        }
        if let Err(e) = outcome {
            // A failure before any stage could report it (a platform without a local image,
            // say): nothing may stay behind.
            self.launched.clear();
            self.set.destroy_all().await?;
            return Err(e);
        }
        if !self.launched.is_empty() || !self.set.recorded().is_empty() {
            match self.options.destroy {
                DestroyPolicy::Always => self.timed(Stage::Destroy, false).await?,
                DestroyPolicy::Never => self.say_kept(),
            }
        }
        self.summary(started.elapsed());
        Ok(if self.failed.is_some() {
            FAILED_EXIT_CODE
        } else {
            0
        })
    }

    /// The stages to run: the sequence, with the final destroy left to `run` (it also
    /// happens after a failure, and `--destroy never` keeps the instances).
    fn stages(&self) -> Vec<(Stage, bool)> {
        let mut stages = Vec::new();
        let mut created = false;
        for stage in &self.scenario.sequence {
            match stage {
                Stage::Create => created = true,
                Stage::Destroy if created => continue,
                _ => {}
            }
            stages.push((*stage, !created));
        }
        stages
    }

    async fn sequence(&mut self, stages: &[(Stage, bool)]) -> anyhow::Result<()> {
        for (stage, before_create) in stages {
            if let Some(failed) = self.failed {
                let reason = format!("{} failed", failed.name());
                self.results
                    .push((*stage, Outcome::Skipped(reason), Duration::ZERO));
                continue;
            }
            self.timed(*stage, *before_create).await?;
        }
        Ok(())
    }

    /// Runs a stage, prints its line, and records its outcome and duration.
    async fn timed(&mut self, stage: Stage, before_create: bool) -> anyhow::Result<()> {
        let started = Instant::now();
        let outcome = self.stage(stage, before_create).await?;
        let elapsed = started.elapsed();
        let seconds = elapsed.as_secs_f64();
        match &outcome {
            Outcome::Passed => self.say(&format!("{} passed ({seconds:.1}s)", stage.name())),
            Outcome::Failed(why) => {
                self.say(&format!("{} FAILED ({seconds:.1}s): {why}", stage.name()));
                self.failed = Some(stage);
            }
            Outcome::Skipped(_) => {}
        }
        let word = match outcome {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
        };
        self.options
            .reporter
            .test_stage(&self.scenario.name, stage.name(), word, seconds);
        self.results.push((stage, outcome, elapsed));
        Ok(())
    }

    async fn stage(&mut self, stage: Stage, before_create: bool) -> anyhow::Result<Outcome> {
        let playbook = self.scenario.playbook(stage);
        match stage {
            Stage::Destroy => {
                self.launched.clear();
                let removed = self.set.destroy_all().await?;
                if before_create && removed.is_empty() {
                    return Ok(Outcome::Skipped("nothing to destroy".into()));
                }
                self.say(&format!("destroy: removed {}", removed.join(" ")));
                Ok(Outcome::Passed)
            }
            Stage::Create => self.create().await,
            Stage::Syntax => self.syntax(),
            Stage::Converge => self.playbook(stage, &playbook).await,
            Stage::Idempotence => self.idempotence().await,
            Stage::Prepare | Stage::SideEffect | Stage::Verify | Stage::Cleanup => {
                if !playbook.is_file() {
                    let file = self.role.relative(&playbook);
                    return Ok(Outcome::Skipped(format!("no {}", file.display())));
                }
                if self.launched.is_empty() {
                    return Ok(Outcome::Skipped("no instances".into()));
                }
                self.playbook(stage, &playbook).await
            }
            Stage::Dependency => Ok(Outcome::Skipped(
                "kiln installs no Galaxy dependencies".into(),
            )),
            Stage::Lint => Ok(Outcome::Skipped("kiln runs no linter".into())),
        }
    }

    async fn create(&mut self) -> anyhow::Result<Outcome> {
        let platforms: Vec<_> = self
            .scenario
            .platforms
            .iter()
            .filter(|p| {
                self.options
                    .platform
                    .as_ref()
                    .is_none_or(|only| *only == p.name)
            })
            .cloned()
            .collect();
        if platforms.is_empty() {
            anyhow::bail!(
                "scenario {} has no platform named '{}'",
                self.scenario.name,
                self.options.platform.as_deref().unwrap_or_default()
            );
        }
        let name = self.scenario.name.clone();
        let base =
            local::ensure_base(&self.home, |m| crate::output::progress::line(&name, m)).await?;
        let store = ImageStore::open(&self.home);
        let mut images = Vec::new();
        for platform in &platforms {
            images.push(resolve_image(
                platform,
                &self.options.images,
                &store,
                &base,
            )?);
        }
        for (platform, (lower, description)) in platforms.iter().zip(images) {
            let launched = self.set.launch(platform, &lower).await?;
            self.say(&format!(
                "create: {} ({} from {description}) as instance {} at {}",
                platform.name, platform.image, launched.netns, launched.address
            ));
            self.launched.push(launched);
        }
        let waits = self.launched.iter_mut().map(Launched::wait_for_ssh);
        match futures::future::try_join_all(waits).await {
            Ok(_) => Ok(Outcome::Passed),
            Err(e) => Ok(Outcome::Failed(format!("{e:#}"))),
        }
    }

    /// Loads every playbook the sequence runs (Molecule's `syntax`).
    fn syntax(&self) -> anyhow::Result<Outcome> {
        let roles_path = self.roles_path(&AnsibleConfig::discover())?;
        for stage in [
            Stage::Prepare,
            Stage::Converge,
            Stage::SideEffect,
            Stage::Verify,
            Stage::Cleanup,
        ] {
            let path = self.scenario.playbook(stage);
            if stage != Stage::Converge && !path.is_file() {
                continue;
            }
            if let Err(e) = load_playbooks(&[path], &roles_path) {
                return Ok(Outcome::Failed(format!("{e}")));
            }
        }
        Ok(Outcome::Passed)
    }

    async fn idempotence(&mut self) -> anyhow::Result<Outcome> {
        let playbook = self.scenario.playbook(Stage::Converge);
        self.say(&format!(
            "idempotence: {} again",
            self.role.relative(&playbook).display()
        ));
        let watcher = Arc::new(ChangeWatcher::default());
        let outcome = self.run_playbook(&playbook, Some(watcher.clone())).await?;
        if !matches!(outcome, Outcome::Passed) {
            return Ok(outcome);
        }
        let changed = watcher.changed();
        if changed.is_empty() {
            return Ok(Outcome::Passed);
        }
        let lines: Vec<String> = changed
            .iter()
            .map(|c| match &c.location {
                Some(at) => format!(
                    "{}: {} ({}:{})",
                    c.host,
                    c.task,
                    self.role.relative(&at.file).display(),
                    at.line
                ),
                None => format!("{}: {}", c.host, c.task),
            })
            .collect();
        Ok(Outcome::Failed(format!(
            "{} task(s) changed on the second converge:\n    {}",
            lines.len(),
            lines.join("\n    ")
        )))
    }

    async fn playbook(&mut self, stage: Stage, playbook: &Path) -> anyhow::Result<Outcome> {
        if !playbook.is_file() {
            return Ok(Outcome::Failed(format!(
                "{} does not exist",
                self.role.relative(playbook).display()
            )));
        }
        self.say(&format!(
            "{}: {}",
            stage.name(),
            self.role.relative(playbook).display()
        ));
        self.run_playbook(playbook, None).await
    }

    /// Runs a playbook against the instances; a load error or a failed host fails the stage.
    async fn run_playbook(
        &self,
        playbook: &Path,
        watcher: Option<Arc<ChangeWatcher>>,
    ) -> anyhow::Result<Outcome> {
        let config = AnsibleConfig::discover();
        let roles_path = self.roles_path(&config)?;
        let (playbooks, loader) = match load_playbooks(&[playbook.to_path_buf()], &roles_path) {
            Ok(loaded) => loaded,
            Err(e) => return Ok(Outcome::Failed(format!("{e}"))),
        };
        let mut options = RunOptions::from_config(&config)?;
        trust_fresh_host_keys(&mut options);
        options.verbosity = self.options.verbosity;
        let reporter: Arc<dyn Reporter> = match watcher {
            Some(watcher) => Arc::new(Fanout(vec![self.options.reporter.clone(), watcher])),
            None => self.options.reporter.clone(),
        };
        let run = PlaybookRun::new(playbooks, loader, self.inventory(), options, reporter);
        let code = run.run_until(std::future::pending()).await?.exit_code();
        Ok(match code {
            0 => Outcome::Passed,
            code => Outcome::Failed(format!(
                "{} exited with {code}",
                self.role.relative(playbook).display()
            )),
        })
    }

    /// The run's roles directory (the role linked in under its names), then ansible.cfg's
    /// roles path.
    fn roles_path(&self, config: &AnsibleConfig) -> anyhow::Result<Vec<PathBuf>> {
        let roles = self.set.dir.join("roles");
        self.role.link_into(&roles)?;
        let mut paths = vec![roles];
        paths.extend(config.roles_path.iter().cloned());
        Ok(paths)
    }

    /// The instances as hosts in their platforms' groups, with the provisioner's variables.
    fn inventory(&self) -> Inventory {
        let hosts = self
            .launched
            .iter()
            .map(|l| {
                let mut vars = l.connection_vars();
                if let Some(own) = self.scenario.host_vars.get(&l.platform.name) {
                    vars.extend(own.clone());
                }
                (l.platform.name.clone(), vars, l.platform.groups.clone())
            })
            .collect();
        let mut inventory = Inventory::with_grouped_hosts(hosts);
        for (group, vars) in &self.scenario.group_vars {
            inventory.group_mut(group).vars.extend(vars.clone());
        }
        inventory
    }

    /// Molecule's variables for the scenario, then `provisioner.env` (which may use them).
    fn set_environment(&self) {
        let dir = |p: &Path| p.display().to_string();
        let molecule = [
            ("MOLECULE_PROJECT_DIRECTORY", dir(&self.role.dir)),
            ("MOLECULE_SCENARIO_NAME", self.scenario.name.clone()),
            ("MOLECULE_SCENARIO_DIRECTORY", dir(&self.scenario.dir)),
            ("MOLECULE_EPHEMERAL_DIRECTORY", dir(&self.set.dir)),
            ("MOLECULE_DRIVER_NAME", "kiln".to_string()),
        ];
        // No playbook runs yet: nothing reads the environment while it changes.
        for (name, value) in molecule {
            std::env::set_var(name, value);
        }
        for (name, value) in &self.scenario.env {
            let value = expand_env(value, |n| std::env::var(n).ok());
            std::env::set_var(name, value);
        }
    }

    fn say(&self, message: &str) {
        let name = &self.scenario.name;
        if self.options.lines_to_stderr {
            eprintln!("==> {name}: {message}");
        } else {
            crate::output::progress::line(name, message);
        }
    }

    fn say_kept(&self) {
        for l in &self.launched {
            self.say(&format!(
                "kept {} ({}): ssh -i {} root@{}",
                l.platform.name,
                l.netns,
                l.key.display(),
                l.address
            ));
        }
        self.say("the next `kiln test` of this scenario, `kiln test --destroy-only` or `kiln sweep --yes` removes them");
    }

    fn summary(&self, total: Duration) {
        let mut text = String::from("summary:");
        for (stage, outcome, took) in &self.results {
            let (word, note) = match outcome {
                Outcome::Passed => ("passed", String::new()),
                Outcome::Failed(_) => ("FAILED", String::new()),
                Outcome::Skipped(why) => ("skipped", format!("  ({why})")),
            };
            let took = match outcome {
                Outcome::Skipped(_) => String::new(),
                _ => format!("{:.1}s", took.as_secs_f64()),
            };
            text.push_str(&format!(
                "\n    {:<12} {word:<8} {took:>6}{note}",
                stage.name()
            ));
        }
        let verdict = match self.failed {
            Some(stage) => format!(
                "FAILED ({}) after {:.1}s",
                stage.name(),
                total.as_secs_f64()
            ),
            None => format!("passed in {:.1}s", total.as_secs_f64()),
        };
        text.push_str(&format!("\n==> {}: {verdict}", self.scenario.name));
        self.say(&text);
    }
}
