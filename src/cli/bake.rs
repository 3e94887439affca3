//! `kiln bake SPEC`: playbook → image. Launches a build instance, provisions it in-process
//! with the playbook engine, stores the result as an image and records it in the manifest.
//! Every resource's undo goes on the cleanup stack the moment the resource exists; failure,
//! Ctrl-C and SIGTERM unwind it (`--on-error=abort` keeps the instance for debugging).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, ValueEnum};

use crate::bake::cleanup::CleanupStack;
use crate::bake::images::ImageStore;
use crate::bake::local::{self, Instance};
use crate::bake::manifest::{self, Build};
use crate::bake::proxy::Proxy;
use crate::bake::spec::{BakeSpec, LocalSource, Provision, Source};
use crate::clock::epoch_seconds as now;

/// The port of the apt proxy on the host's end of a build instance's veth.
const PROXY_PORT: u16 = 3142;

/// Files a build places in the instance and removes before the image is stored.
const BUILD_FILES: &[&str] = &[
    "etc/kiln-build",
    "etc/ssh/sshd_config.d/00-kiln-build.conf",
    "etc/apt/apt.conf.d/00kiln-build",
    "etc/apt/sources.list.d/kiln-build.list",
];

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum OnError {
    /// Remove everything the build created (the default).
    Cleanup,
    /// Keep the build instance running and print how to reach it.
    Abort,
}

#[derive(Debug, Args, Clone)]
pub struct BakeArgs {
    /// The bake spec (YAML).
    pub spec: PathBuf,
    /// Extra variables for every provisioning playbook (`k=v`, JSON/YAML, or `@file`).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// What to do with the build instance when the build fails.
    #[arg(long, value_enum, default_value = "cleanup")]
    pub on_error: OnError,
    /// Replace an existing image of the same name.
    #[arg(long)]
    pub force: bool,
}

pub(super) use super::progress::{line, step as say};

pub async fn run(args: BakeArgs) -> anyhow::Result<i32> {
    let spec = BakeSpec::load(&args.spec)?;
    let spec_dir = args
        .spec
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    match &spec.source {
        Source::Local(source) => bake_local(&args, &spec, source, &spec_dir).await,
        Source::AmazonEbs(source) => super::bake_ebs::bake(&args, &spec, source, &spec_dir).await,
    }
}

/// A run id in Packer's uuid shape.
pub(super) fn run_uuid() -> String {
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
pub(super) fn render(text: &str, name: &str) -> anyhow::Result<String> {
    let (timestamp, git_sha) = template_context();
    let env = minijinja::Environment::new();
    env.render_str(
        text,
        minijinja::context! { timestamp => timestamp, git_sha => git_sha, name => name },
    )
    .with_context(|| format!("rendering '{text}'"))
}

/// `render` over every value of a tag map.
pub(super) fn render_tags(
    tags: &BTreeMap<String, String>,
    name: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    tags.iter()
        .map(|(k, v)| Ok((k.clone(), render(v, name)?)))
        .collect()
}

async fn bake_local(
    args: &BakeArgs,
    spec: &BakeSpec,
    source: &LocalSource,
    spec_dir: &Path,
) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let run_id = run_uuid();
    let home = local::home();
    let store = ImageStore::open(&home);
    let image_name = render(
        source
            .image_name
            .as_deref()
            .unwrap_or("{{ name }}-{{ timestamp }}"),
        &spec.name,
    )?;
    let mut tags = render_tags(&source.tags, &spec.name)?;
    tags.insert("kiln:run-id".into(), run_id.clone());
    if let Ok(existing) = store.find(&image_name) {
        if existing.name == image_name && !args.force {
            bail!(
                "a local image named '{image_name}' exists ({}); use --force to replace it",
                existing.artifact_id()
            );
        }
    }
    let parent = match &source.source_image {
        Some(reference) => Some(store.find(reference)?),
        None => None,
    };
    let name = spec.name.clone();
    let base = match &parent {
        Some(p) => p.base.clone(),
        None => local::ensure_base(&home, |m| say(&name, m)).await?,
    };
    let lower = match &parent {
        Some(p) => store.lower_dirs(p),
        None => vec![base.clone()],
    };

    let mut cleanup = CleanupStack::default();
    let build = build(
        args,
        spec,
        source,
        spec_dir,
        &home,
        &run_id,
        &lower,
        &mut cleanup,
    );
    let mut signal_code = None;
    let outcome = tokio::select! {
        result = build => result,
        code = interrupted() => {
            signal_code = Some(code);
            Err(anyhow::anyhow!("interrupted by a signal"))
        }
    };
    let result = match outcome {
        Ok(upper) => {
            let stored = store
                .commit(&upper, &image_name, tags.clone(), parent.as_ref(), &base)
                .await;
            stored.map(|image| (image, upper))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((image, _)) => {
            let failures = cleanup
                .unwind(|what| say(&name, &format!("cleanup: {what}")))
                .await;
            for f in &failures {
                eprintln!("WARNING: cleanup failed: {f}");
            }
            record(
                spec,
                "local",
                &image.artifact_id(),
                image.tags.clone(),
                &run_id,
                spec_dir,
            )?;
            line(
                &name,
                &format!("image {} stored as {}", image.name, image.artifact_id()),
            );
            line(
                &name,
                &format!(
                    "build finished after {:.1}s\n==> Builds finished. The artifacts of successful builds are:\n--> {}: {}",
                    started.elapsed().as_secs_f64(),
                    spec.name,
                    image.artifact_id()
                ),
            );
            Ok(0)
        }
        Err(e) => {
            super::progress::finish_current();
            eprintln!("==> {name}: build failed: {e:#}");
            if args.on_error == OnError::Abort && !cleanup.is_empty() {
                eprintln!("==> {name}: --on-error=abort: the build instance is left running (its files: {}); run `kiln sweep --yes` to remove it", home.join("builds").join(&run_id).display());
                return Ok(1);
            }
            let failures = cleanup
                .unwind(|what| say(&name, &format!("cleanup: {what}")))
                .await;
            for f in &failures {
                eprintln!("ERROR: cleanup failed: {f}");
            }
            Ok(signal_code.unwrap_or(1))
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM with the shell's exit code for it (130, 143).
pub(super) async fn interrupted() -> i32 {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => 130,
        _ = term.recv() => 143,
    }
}

/// Launches, provisions and shuts down the build instance; returns its upper layer, cleaned
/// of the build's own files.
#[allow(clippy::too_many_arguments)]
async fn build(
    args: &BakeArgs,
    spec: &BakeSpec,
    source: &LocalSource,
    spec_dir: &Path,
    home: &Path,
    run_id: &str,
    lower: &[PathBuf],
    cleanup: &mut CleanupStack,
) -> anyhow::Result<PathBuf> {
    let name = &spec.name;
    let dir = home.join("builds").join(run_id);
    std::fs::create_dir_all(dir.join("upper"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let removed = dir.clone();
    cleanup.push(format!("remove {}", dir.display()), async move {
        match tokio::fs::remove_dir_all(&removed).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    });
    let key = dir.join("id_ed25519");
    let status = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-build", "-f"])
        .arg(&key)
        .status()
        .await
        .context("running ssh-keygen (package openssh-client)")?;
    if !status.success() {
        bail!("ssh-keygen failed");
    }
    let net = local::allocate_network().await?;
    std::fs::write(dir.join("netns"), &net.netns)?;
    write_build_files(&dir.join("upper"), &key, &net.host, source)?;
    let netns = net.netns.clone();
    cleanup.push(
        format!("tear down instance {netns}"),
        local::teardown(netns),
    );
    say(
        name,
        &format!("launching build instance {} at {}", net.netns, net.instance),
    );
    let mut instance = Instance::boot(home, &dir, &net, lower).await?;
    // The proxy binds the host's end of the veth once the instance's script made it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let proxy = loop {
        match Proxy::start(SocketAddr::from((net.host, PROXY_PORT))).await {
            Ok(p) => break p,
            Err(e) if std::time::Instant::now() > deadline => {
                bail!("could not start the apt proxy on {}: {e}", net.host)
            }
            Err(_) => {
                instance.check_alive()?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    say(name, "waiting for SSH");
    instance
        .wait_for_ssh(Duration::from_secs(source.ssh_timeout.unwrap_or(120)))
        .await?;
    let host = host_line(&net.instance.to_string(), 22, "root", &key);
    provision_all(args, spec, spec_dir, &dir, &host).await?;
    drop(proxy);
    say(name, "shutting the instance down");
    instance.shutdown(Duration::from_secs(60)).await?;
    let upper = dir.join("upper");
    remove_build_files(&upper);
    Ok(upper)
}

fn write_build_files(
    upper: &Path,
    key: &Path,
    host: &std::net::Ipv4Addr,
    source: &LocalSource,
) -> anyhow::Result<()> {
    let write = |path: &str, text: &str| -> anyhow::Result<()> {
        let full = upper.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))
    };
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    write("etc/kiln-build/authorized_keys", &public)?;
    // sshd takes the first value it reads; drop-ins are read before the main file.
    write(
        "etc/ssh/sshd_config.d/00-kiln-build.conf",
        "AuthorizedKeysFile /etc/kiln-build/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nMaxSessions 64\n",
    )?;
    write(
        "etc/apt/apt.conf.d/00kiln-build",
        &format!(
            "Acquire::http::Proxy \"http://{host}:{PROXY_PORT}\";\nAcquire::https::Proxy \"http://{host}:{PROXY_PORT}\";\nAcquire::http::Pipeline-Depth \"0\";\n"
        ),
    )?;
    if !source.apt_sources.is_empty() {
        write(
            "etc/apt/sources.list.d/kiln-build.list",
            &(source.apt_sources.join("\n") + "\n"),
        )?;
    }
    Ok(())
}

/// Drops the build's own files, per-instance identity (host keys, machine id) and apt's
/// downloaded packages from the layer.
fn remove_build_files(upper: &Path) {
    for path in BUILD_FILES {
        let full = upper.join(path);
        let _ = std::fs::remove_dir_all(&full).or_else(|_| std::fs::remove_file(&full));
    }
    for dir in ["etc/ssh", "var/cache/apt/archives"] {
        for entry in std::fs::read_dir(upper.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with("ssh_host_") || file.ends_with(".deb") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = std::fs::remove_file(upper.join("etc/machine-id"));
}

/// The build host's inventory line: `default` at `address`, logging in with `key`.
pub(super) fn host_line(address: &str, port: u16, user: &str, key: &Path) -> String {
    format!(
        "default ansible_host={address} ansible_port={port} ansible_user={user} ansible_ssh_private_key_file={}\n",
        key.display()
    )
}

/// Runs every provisioning step against the build host (`host`: its inventory line).
pub(super) async fn provision_all(
    args: &BakeArgs,
    spec: &BakeSpec,
    spec_dir: &Path,
    build_dir: &Path,
    host: &str,
) -> anyhow::Result<()> {
    for (n, step) in spec.provision.iter().enumerate() {
        line(
            &spec.name,
            &format!(
                "provisioning with {} (step {} of {})",
                step.playbook.display(),
                n + 1,
                spec.provision.len()
            ),
        );
        provision(args, step, spec_dir, build_dir, host).await?;
    }
    Ok(())
}

/// Runs one provisioning playbook against the build host, in-process.
async fn provision(
    args: &BakeArgs,
    step: &Provision,
    spec_dir: &Path,
    build_dir: &Path,
    host: &str,
) -> anyhow::Result<()> {
    let mut inventory = host.to_string();
    for group in &step.groups {
        inventory.push_str(&format!("[{group}]\ndefault\n"));
    }
    let hosts = build_dir.join("hosts");
    std::fs::write(&hosts, inventory)?;
    let playbook = spec_dir.join(&step.playbook);
    let mut argv: Vec<String> = vec![
        "kiln-playbook".into(),
        "-i".into(),
        hosts.display().to_string(),
        "--ssh-extra-args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null".into(),
    ];
    if !step.extra_vars.is_empty() {
        argv.push("-e".into());
        argv.push(serde_json::to_string(&step.extra_vars)?);
    }
    for e in &args.extra_vars {
        argv.push("-e".into());
        argv.push(e.clone());
    }
    if !step.tags.is_empty() {
        argv.push(format!("--tags={}", step.tags.join(",")));
    }
    if !step.skip_tags.is_empty() {
        argv.push(format!("--skip-tags={}", step.skip_tags.join(",")));
    }
    argv.push(playbook.display().to_string());
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: super::playbook::PlaybookArgs,
    }
    let parsed = Wrapper::try_parse_from(&argv).context("building the provisioner's arguments")?;
    let code = super::playbook::run_as_step(parsed.args).await?;
    if code != 0 {
        bail!(
            "provisioning with {} failed (exit code {code})",
            step.playbook.display()
        );
    }
    Ok(())
}

pub(super) fn record(
    spec: &BakeSpec,
    builder_type: &str,
    artifact_id: &str,
    custom_data: BTreeMap<String, String>,
    run_id: &str,
    spec_dir: &Path,
) -> anyhow::Result<()> {
    if let Some(post) = &spec.post.manifest {
        let path = if post.output.is_absolute() {
            post.output.clone()
        } else {
            spec_dir.join(&post.output)
        };
        manifest::append(
            &path,
            Build {
                name: spec.name.clone(),
                builder_type: builder_type.into(),
                build_time: now(),
                files: None,
                artifact_id: artifact_id.into(),
                packer_run_uuid: run_id.to_string(),
                custom_data,
                other: Default::default(),
            },
        )?;
    }
    Ok(())
}
