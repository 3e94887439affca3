//! `synchronize` (ansible.posix): rsync between the controller and the target, as the
//! collection's action builds the command line. The controller's rsync reaches the target's
//! rsync through kiln's own connection rather than an `ssh` of its own: its `--rsh` is kiln
//! (`kiln __rsh SOCKET`, see `cli::rsh`), which hands the remote command to this module over
//! a private socket, and the module runs it over the host's connection (as the task's user,
//! become and password included, through bastions as every task goes). So synchronize works
//! wherever kiln logs in, and needs rsync on both ends.

use std::path::Path;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::connection::quote;
use crate::connection::session::BoxStream;
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Synchronize;

/// The host name rsync is given for the target's side: the rsh shim ignores it.
const REMOTE: &str = "kiln-target";
/// Ansible's marker before each itemized change (`--out-format`): a line with it is a change.
const CHANGED_MARKER: &str = "<<CHANGED>>";

/// The rsync options as ansible.posix.synchronize reads them.
#[derive(Debug, Default)]
struct Options {
    src: String,
    dest: String,
    pull: bool,
    archive: bool,
    checksum: bool,
    compress: bool,
    existing_only: bool,
    delete: bool,
    dirs: bool,
    recursive: Option<bool>,
    links: Option<bool>,
    copy_links: bool,
    perms: Option<bool>,
    times: Option<bool>,
    owner: Option<bool>,
    group: Option<bool>,
    rsync_path: Option<String>,
    rsync_timeout: i64,
    rsync_opts: Vec<String>,
    partial: bool,
    delay_updates: bool,
    link_dest: Vec<String>,
}

impl Options {
    fn read(args: &mut Args) -> Result<Self, ModuleError> {
        let options = Self {
            src: args.required_str(&["src"])?,
            dest: args.required_str(&["dest"])?,
            pull: args.choice("mode", &["push", "pull"], "push")? == "pull",
            archive: args.bool("archive", true)?,
            checksum: args.bool("checksum", false)?,
            compress: args.bool("compress", true)?,
            existing_only: args.bool("existing_only", false)?,
            delete: args.bool("delete", false)?,
            dirs: args.bool("dirs", false)?,
            recursive: args.opt_bool("recursive")?,
            links: args.opt_bool("links")?,
            copy_links: args.bool("copy_links", false)?,
            perms: args.opt_bool("perms")?,
            times: args.opt_bool("times")?,
            owner: args.opt_bool("owner")?,
            group: args.opt_bool("group")?,
            rsync_path: args.str(&["rsync_path"])?,
            rsync_timeout: args.int("rsync_timeout")?.unwrap_or(0),
            rsync_opts: args.list(&["rsync_opts"])?,
            partial: args.bool("partial", false)?,
            delay_updates: args.bool("delay_updates", true)?,
            link_dest: args.list(&["link_dest"])?,
        };
        // How ansible.posix reaches the host over its own ssh: kiln's connection does that.
        args.ignore(&[
            "set_remote_user",
            "use_ssh_args",
            "ssh_args",
            "ssh_connection_multiplexing",
            "private_key",
            "verify_host",
            "dest_port",
        ]);
        Ok(options)
    }

    /// rsync's options, in the order the collection's module adds them.
    fn rsync_args(&self, check_mode: bool) -> Vec<String> {
        let mut cmd: Vec<String> = Vec::new();
        let mut push = |arg: &str| cmd.push(arg.to_string());
        if self.delay_updates {
            push("--delay-updates");
        }
        push("-F");
        if self.compress {
            push("--compress");
        }
        if self.rsync_timeout > 0 {
            push(&format!("--timeout={}", self.rsync_timeout));
        }
        if check_mode {
            push("--dry-run");
        }
        if self.delete {
            push("--delete-after");
        }
        if self.existing_only {
            push("--existing");
        }
        if self.checksum {
            push("--checksum");
        }
        if self.copy_links {
            push("--copy-links");
        }
        let tristate = [
            (self.recursive, "recursive"),
            (self.links, "links"),
            (self.perms, "perms"),
            (self.times, "times"),
            (self.owner, "owner"),
            (self.group, "group"),
        ];
        if self.archive {
            push("--archive");
            for (value, name) in tristate {
                if value == Some(false) {
                    push(&format!("--no-{name}"));
                }
            }
        } else {
            for (value, name) in tristate {
                if value == Some(true) {
                    push(&format!("--{name}"));
                }
            }
        }
        if self.dirs {
            push("--dirs");
        }
        if let Some(path) = &self.rsync_path {
            push(&format!("--rsync-path={path}"));
        }
        for opt in &self.rsync_opts {
            push(opt);
        }
        if self.partial {
            push("--partial");
        }
        for dir in &self.link_dest {
            push(&format!("--link-dest={dir}"));
        }
        push(&format!("--out-format={CHANGED_MARKER}%i %n%L"));
        cmd
    }
}

#[async_trait]
impl Module for Synchronize {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let mut options = Options::read(&mut args)?;
        args.finish()?;
        if !options.pull {
            // A relative source is found as `copy` finds one (role files/, playbook dir),
            // keeping its trailing slash (rsync copies a directory's contents then).
            if !Path::new(&options.src).is_absolute() {
                let slash = options.src.ends_with('/');
                if let Some(found) = ctx.find_source(options.src.trim_end_matches('/'), "files") {
                    options.src = found.display().to_string();
                    if slash {
                        options.src.push('/');
                    }
                }
            }
        }
        let (source, dest) = match options.pull {
            false => (options.src.clone(), format!("{REMOTE}:{}", options.dest)),
            true => (format!("{REMOTE}:{}", options.src), options.dest.clone()),
        };
        let socket_dir = PrivateDir::create()
            .map_err(|e| ModuleError::Failed(format!("synchronize: no private directory: {e}")))?;
        let socket = socket_dir.0.join("link");
        let listener = UnixListener::bind(&socket)
            .map_err(|e| ModuleError::Failed(format!("synchronize: {e}")))?;
        let shim = std::env::current_exe()
            .map_err(|e| ModuleError::Failed(format!("synchronize: where is kiln? {e}")))?;
        let rsh = format!(
            "{} __rsh {}",
            quote(&shim.display().to_string()),
            quote(&socket.display().to_string())
        );
        let mut argv = vec!["rsync".to_string()];
        argv.extend(options.rsync_args(ctx.check_mode));
        argv.push(format!("--rsh={rsh}"));
        argv.push(source);
        argv.push(dest);
        let cmd = argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
        let child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ModuleError::Failed(format!(
                    "synchronize: could not run rsync on the controller ({e}); install rsync"
                ))
            })?;
        // rsync may end without ever starting its shell (a bad option): then nothing is
        // served, and the wait for its connection ends with it.
        let waiting = child.wait_with_output();
        let serving = serve(ctx, &listener);
        tokio::pin!(waiting, serving);
        let (output, bridged) = tokio::select! {
            output = &mut waiting => (output, Ok(())),
            bridged = &mut serving => (waiting.await, bridged),
        };
        let output = output.map_err(|e| ModuleError::Failed(format!("synchronize: {e}")))?;
        let rc = output.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if rc != 0 {
            let mut msg = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if let Err(e) = bridged {
                msg = format!("{msg} ({e})");
            }
            return Err(ModuleResult::changed(false)
                .with("rc", rc)
                .with("cmd", cmd)
                .fail(msg));
        }
        let changed = stdout.contains(CHANGED_MARKER);
        let msg = stdout.replace(CHANGED_MARKER, "");
        let lines: Vec<String> = msg
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        Ok(ModuleResult::changed(changed)
            .with("cmd", cmd)
            .with("rc", rc)
            .with("stdout_lines", lines)
            .with_msg(msg))
    }
}

/// A directory only kiln's user can enter (for the socket), removed when dropped.
struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    fn create() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("kiln-rsync-{}", crate::util::random_id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves the one connection rsync's shell makes: reads the remote command it would run,
/// starts it on the host and copies bytes both ways until both ends close. The local side's
/// bytes wait until the remote side has spoken: the command is started by a shell reading
/// its stdin (become), which must not read rsync's protocol as more commands.
async fn serve(ctx: &ModuleCtx<'_>, listener: &UnixListener) -> Result<(), String> {
    let (mut local, _) = listener.accept().await.map_err(|e| e.to_string())?;
    let command = read_command(&mut local).await?;
    let remote: BoxStream = ctx.link.stream(&command).await.map_err(|e| e.to_string())?;
    let (mut remote_read, mut remote_write) = tokio::io::split(remote);
    let (mut local_read, mut local_write) = local.into_split();
    let (spoke, heard) = tokio::sync::oneshot::channel::<()>();
    let down = async {
        let mut spoke = Some(spoke);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = remote_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            local_write.write_all(&buf[..n]).await?;
            if let Some(spoke) = spoke.take() {
                let _ = spoke.send(());
            }
        }
        local_write.shutdown().await
    };
    let up = async {
        let _ = heard.await;
        tokio::io::copy(&mut local_read, &mut remote_write).await?;
        remote_write.shutdown().await
    };
    let (down, up) = tokio::join!(down, up);
    down.and(up).map_err(|e| e.to_string())
}

/// The shim's first line: the remote command as a JSON string.
async fn read_command(local: &mut tokio::net::UnixStream) -> Result<String, String> {
    // Byte by byte: what follows the line is rsync's protocol, not to be read here.
    let mut line = Vec::new();
    loop {
        let byte = local.read_u8().await.map_err(|e| e.to_string())?;
        if byte == b'\n' {
            break;
        }
        line.push(byte);
        if line.len() > 1 << 20 {
            return Err("the rsync command line is too long".into());
        }
    }
    serde_json::from_slice(&line).map_err(|e| format!("bad rsync command line: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_ansibles_command_line() {
        let options = Options {
            archive: true,
            compress: true,
            delay_updates: true,
            ..Options::default()
        };
        assert_eq!(
            options.rsync_args(false),
            [
                "--delay-updates",
                "-F",
                "--compress",
                "--archive",
                "--out-format=<<CHANGED>>%i %n%L"
            ]
        );
    }

    #[test]
    fn archive_parts_turn_off_and_on_as_ansible_turns_them() {
        let options = Options {
            archive: true,
            perms: Some(false),
            owner: Some(false),
            delete: true,
            rsync_opts: vec!["--exclude=.git".into()],
            ..Options::default()
        };
        let args = options.rsync_args(true);
        assert_eq!(
            args,
            [
                "-F",
                "--dry-run",
                "--delete-after",
                "--archive",
                "--no-perms",
                "--no-owner",
                "--exclude=.git",
                "--out-format=<<CHANGED>>%i %n%L"
            ]
        );
        let plain = Options {
            recursive: Some(true),
            times: Some(true),
            ..Options::default()
        };
        assert_eq!(
            plain.rsync_args(false),
            [
                "-F",
                "--recursive",
                "--times",
                "--out-format=<<CHANGED>>%i %n%L"
            ]
        );
    }
}
