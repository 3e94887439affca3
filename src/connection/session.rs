//! A persistent shell on the target that runs kiln's commands one after another.
//!
//! Opening an SSH session, starting the login shell and (with `become`) running `sudo` cost
//! several milliseconds per command; `sudo` alone ~6 ms. A session pays that once per host
//! (and per become user): one channel runs `/bin/sh` reading commands from its stdin, and
//! each command then costs the target a few shell builtins. kiln writes one line of shell per
//! command (a "frame"); its output comes back framed by a secret nonce:
//!
//! ```text
//! → { eval '<script>'; } </dev/null 2>"$d/e"; k_r=$?; …; k_e $k_r
//! ← <stdout> "\n<nonce> 1\n" <stderr> "\n<nonce> 2 <exit code>\n"
//! ```
//!
//! The nonce (160 bits from the OS's CSPRNG) travels only on the shell's stdin and is printed
//! only by builtins: it never appears in a file name, an argument list or the environment, so
//! no other user of the target can learn it, and no file content a command streams (a file
//! another user wrote, read as root) can end a frame early and shift later results. The
//! session's files (`$d/e` stderr, `$d/o` captured output, `$d/i` stdin) live in a private
//! directory (mode 0700, another random name, created exclusively) that the shell removes when
//! it exits, including when the controller goes away (EOF, HUP, SIGPIPE; see [`SETUP`]).
//!
//! Handing the shell its commands as its main input (rather than a loop that `read`s them)
//! matters: dash reads its input in blocks, while `read` takes one byte per system call, which
//! cost ~0.5 µs per byte of script. The script travels single-quoted and runs under `eval`,
//! so the frame always parses. A command with stdin first asks the shell to copy that many
//! bytes to a file (`dd`), and the bytes are sent once the shell says it is ready for them
//! (so they never land in the shell's read-ahead buffer).
//!
//! Modes: a user's command (`c`) runs in a subshell with its output captured in a file first,
//! so a daemon it leaves behind cannot corrupt the framing; kiln's own scripts (`d`) run in a
//! subshell and stream their output directly; kiln's hottest scripts (`f`,
//! [`Connection::exec_inline`]) skip the subshell's fork: they run in the session's shell, so
//! they must not `exit` and may only set the variables `k_t`, `k_rc` and `k_b`, `umask` and
//! `set -C`, which the frame resets after each.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{quote, Connection, ConnectionError, ExecOutput};

/// A bidirectional byte stream to a remote command (an SSH channel, a local pipe pair).
pub trait DuplexStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> DuplexStream for T {}
pub type BoxStream = Pin<Box<dyn DuplexStream>>;

/// The command a session's channel runs (`become_shell` gives the one for another user): a
/// shell reading its commands from stdin, told the process id of sshd's process for this
/// connection (the login shell's parent), which it watches.
pub const SHELL_COMMAND: &str = "exec /bin/sh -s $PPID";

/// The session's setup, its first input; `@N@` is replaced by the nonce and `@D@` by the
/// name of the session's directory. The nonce reaches the shell only here (its stdin): it is
/// never in a file name, an argument list or the environment, so another user of the target
/// cannot learn it and a file's content cannot end a frame early. The session's files (stderr,
/// captured output, stdin) live in a directory of another random name, created exclusively
/// and private (mkdir under umask 077). The umask to restore comes from /proc when it can (no
/// `$(umask)` fork). Cleanup does not depend on a clean exit: the EXIT trap removes the
/// directory, and losing the controller ends the shell through that trap: EOF on its input,
/// HUP, or SIGPIPE when it writes a frame to a closed channel (a shell killed by SIGPIPE would
/// skip the trap). A command still running then keeps the shell busy, so a watcher (one
/// `tail --pid` for the session's life, no process per command) removes the directory as soon
/// as the connection's sshd process (`$1`) exits, and stops the command: it signals the
/// session's process group (the shell, the command and its children), but only when that
/// group is not the watched process's own (sshd gives each channel a session of its own; a
/// local shell is started in a group of its own). A shell that ends normally kills its
/// watcher first, so a daemon a command left behind survives a normal end of the run. Where
/// `tail` lacks `--pid` (busybox) there is no watcher and the trap cleans up once the command
/// ends. `k_e` ends a frame.
const SETUP: &str = r#"unset n d m k_r k_w 2>/dev/null
n=@N@ d=/tmp/.kiln-@D@ m= k_r= k_w= k_p=$1 k_g= k_h=
read -r k_s </proc/$$/stat 2>/dev/null && set -- $k_s && k_g=$5
read -r k_s </proc/$k_p/stat 2>/dev/null && set -- $k_s && k_h=$5
set --
while read -r k_k k_v; do case "$k_k" in Umask:) m=$k_v; break ;; esac; done 2>/dev/null </proc/self/status
[ -n "$m" ] || m=$(umask)
unset k_k k_v
umask 077
mkdir "$d" || exit 1
trap 'rm -rf "$d"; [ -z "$k_w" ] || kill "$k_w" 2>/dev/null' EXIT
trap 'exit 1' HUP TERM PIPE
umask "$m"
{ tail --pid="$k_p" -f /dev/null && rm -rf "$d" && [ -n "$k_g" ] && [ "$k_g" != "$k_h" ] && kill -TERM 0; } </dev/null >/dev/null 2>&1 &
k_w=$!
unset k_p k_g k_h k_s
k_e() {
  if [ -s "$d/e" ]; then
    printf '\n%s 1\n' "$n"; cat "$d/e"; printf '\n%s 2 %s\n' "$n" "$1"
  else
    printf '\n%s 1\n\n%s 2 %s\n' "$n" "$n" "$1"
  fi
}
printf '%s ready\n' "$n"
"#;

/// The line that runs `script` in `mode`, its stdin from the session's stdin file or
/// /dev/null. A stdin file is emptied once its command ends: what it held (file content, a
/// secret a module passes on stdin) stays on the target no longer than the command needs it.
fn frame(script: &str, mode: char, has_stdin: bool) -> String {
    let script = quote(script);
    let (input, forget) = if has_stdin {
        ("\"$d/i\"", ": >\"$d/i\"; ")
    } else {
        ("/dev/null", "")
    };
    match mode {
        'f' => format!(
            "{{ eval {script}; }} <{input} 2>\"$d/e\"; k_r=$?; {forget}umask \"$m\"; set +C; \
             unset k_t k_rc k_b; k_e $k_r\n"
        ),
        'c' => format!(
            "(unset n d m k_r k_w; eval {script}) <{input} >\"$d/o\" 2>\"$d/e\"; k_r=$?; \
             {forget}[ ! -s \"$d/o\" ] || cat \"$d/o\"; k_e $k_r\n"
        ),
        _ => format!(
            "(unset n d m k_r k_w; eval {script}) <{input} 2>\"$d/e\"; k_r=$?; {forget}k_e $k_r\n"
        ),
    }
}

struct Io {
    stream: BoxStream,
    buffer: Vec<u8>,
}

pub struct Session {
    io: Mutex<Io>,
    nonce: String,
    commands: AtomicU64,
    what: String,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Io {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())?;
        self.stream.flush().await.map_err(|e| e.to_string())
    }

    /// Reads until `marker` appears; returns the bytes before it and drops the marker.
    async fn read_until(&mut self, marker: &[u8]) -> Result<Vec<u8>, String> {
        let mut searched = 0;
        loop {
            if let Some(at) = find(&self.buffer[searched..], marker).map(|p| p + searched) {
                let before = self.buffer[..at].to_vec();
                self.buffer.drain(..at + marker.len());
                return Ok(before);
            }
            searched = self.buffer.len().saturating_sub(marker.len());
            let mut chunk = [0u8; 16384];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(String::from_utf8_lossy(&self.buffer).trim().to_string());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Session {
    /// Sets up the session on `stream` (already running [`SHELL_COMMAND`]) and waits until it
    /// is ready.
    pub async fn start(stream: BoxStream, what: String) -> Result<Self, ConnectionError> {
        use crate::util::random_id;
        let nonce = random_id();
        let setup = SETUP.replace("@N@", &nonce).replace("@D@", &random_id());
        let mut io = Io {
            stream,
            buffer: Vec::new(),
        };
        if let Err(e) = io.write(setup.as_bytes()).await {
            return Err(ConnectionError::Unreachable(format!(
                "could not start a shell for {what}: {e}"
            )));
        }
        let ready = format!("{nonce} ready\n");
        if let Err(output) = io.read_until(ready.as_bytes()).await {
            let detail = if output.is_empty() {
                "the shell exited".to_string()
            } else {
                output
            };
            return Err(ConnectionError::Unreachable(format!(
                "could not start a shell for {what}: {detail}"
            )));
        }
        Ok(Self {
            io: Mutex::new(io),
            nonce,
            commands: AtomicU64::new(0),
            what,
        })
    }
}

impl Session {
    /// Runs one framed command in `mode` (see the module's documentation).
    async fn run(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        mode: char,
    ) -> Result<ExecOutput, ConnectionError> {
        let mut io = self.io.lock().await;
        let broken = |e: String| {
            ConnectionError::Unreachable(format!("the shell session for {} ended: {e}", self.what))
        };
        let input = stdin.unwrap_or_default();
        let mut message = Vec::with_capacity(command.len() + input.len() + 256);
        if !input.is_empty() {
            // The shell copies the bytes to its stdin file; they go out only once it asks.
            self.commands.fetch_add(1, Ordering::Relaxed);
            let ask = format!(
                "printf '%s data\\n' \"$n\"; dd of=\"$d/i\" bs={} count=1 iflag=fullblock 2>/dev/null\n",
                input.len()
            );
            io.write(ask.as_bytes()).await.map_err(&broken)?;
            io.read_until(format!("{} data\n", self.nonce).as_bytes())
                .await
                .map_err(&broken)?;
            message.extend_from_slice(&input);
        }
        self.commands.fetch_add(1, Ordering::Relaxed);
        message.extend_from_slice(frame(command, mode, !input.is_empty()).as_bytes());
        io.write(&message).await.map_err(&broken)?;
        let stdout = io
            .read_until(format!("\n{} 1\n", self.nonce).as_bytes())
            .await
            .map_err(&broken)?;
        let stderr = io
            .read_until(format!("\n{} 2 ", self.nonce).as_bytes())
            .await
            .map_err(&broken)?;
        let code = io.read_until(b"\n").await.map_err(&broken)?;
        let rc = String::from_utf8_lossy(&code).trim().parse().unwrap_or(-1);
        Ok(ExecOutput { rc, stdout, stderr })
    }
}

#[async_trait]
impl Connection for Session {
    async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.run(command, stdin, 'd').await
    }

    async fn exec_user(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.run(command, stdin, 'c').await
    }

    async fn exec_inline(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<ExecOutput, ConnectionError> {
        self.run(command, stdin, 'f').await
    }

    fn round_trips(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    async fn open_stream(&self, _command: &str) -> Result<BoxStream, ConnectionError> {
        Err(ConnectionError::Unreachable(format!(
            "cannot open a stream inside the shell session for {}",
            self.what
        )))
    }

    async fn close(&self) {
        let mut io = self.io.lock().await;
        let _ = io.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a real session under the local /bin/sh (no mock: the same scripts targets run).
    async fn local_session() -> Session {
        session_in(SHELL_COMMAND).await
    }

    /// A session in the shell `command` starts (bash stands in for RHEL's /bin/sh).
    async fn session_in(command: &str) -> Session {
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .unwrap();
        let stream = tokio::io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap());
        std::mem::forget(child);
        Session::start(Box::pin(stream), "local".into())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn frames_output_errors_exit_codes_and_stdin() {
        frames_in(local_session().await).await;
    }

    /// bash reads its input a byte at a time and prints `export -p` differently, but the
    /// protocol must hold there too.
    #[tokio::test]
    async fn frames_the_same_under_bash() {
        if std::path::Path::new("/bin/bash").exists() {
            frames_in(session_in("exec /bin/bash --posix").await).await;
        }
    }

    async fn frames_in(s: Session) {
        let out = s
            .exec_user("echo hello; echo oops >&2; exit 3", None)
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "hello\n");
        let out = s
            .exec("echo hello; echo oops >&2; exit 3", None)
            .await
            .unwrap();
        assert_eq!(
            (
                out.stdout_text().as_str(),
                out.stderr_text().as_str(),
                out.rc
            ),
            ("hello\n", "oops\n", 3)
        );
        let out = s.exec("printf 'no newline'", None).await.unwrap();
        assert_eq!(out.stdout_text(), "no newline");
        let out = s
            .exec("cat; echo", Some(b"line1\nline2".to_vec()))
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "line1\nline2\n");
        let out = s
            .exec("if true; then\n  echo multi\nfi\ntrue $d", None)
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "multi\n");
        let out = s
            .exec_user("echo \"[$n][$d][$m][$k_r]\"", None)
            .await
            .unwrap();
        assert_eq!(
            out.stdout_text(),
            "[][][][]\n",
            "the session's variables do not leak into commands"
        );
        let out = s
            .exec_inline("printf '%s\\n' \"it's\" 'a\\b'", None)
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "it's\na\\b\n", "scripts travel quoted");
        let out = s.exec_user("read -r x; echo \"[$x]\"", None).await.unwrap();
        assert_eq!(
            out.stdout_text(),
            "[]\n",
            "a command reading stdin cannot swallow the session's input"
        );
        let shell_state = "umask; echo \"[$k_t]\"; case $- in *C*) echo noclobber;; esac";
        let before = s.exec(shell_state, None).await.unwrap().stdout_text();
        let out = s
            .exec_inline("umask 077; set -C; k_t=1; echo inline >&2; false", None)
            .await
            .unwrap();
        assert_eq!((out.stderr_text().as_str(), out.rc), ("inline\n", 1));
        assert_eq!(
            s.exec(shell_state, None).await.unwrap().stdout_text(),
            before,
            "an inline script's umask, noclobber and variables do not outlive it"
        );
        let big = vec![b'x'; 300_000];
        let out = s.exec("wc -c", Some(big)).await.unwrap();
        assert_eq!(out.stdout_text().trim(), "300000");
        let out = s.exec("echo after", None).await.unwrap();
        assert_eq!(
            out.stdout_text(),
            "after\n",
            "stdin bytes are not run as script"
        );
        // 13 commands, and the two with stdin wait once more for the shell to take it.
        assert_eq!(s.round_trips(), 15);
    }

    /// The session's directory, asked of the session itself.
    async fn directory(s: &Session) -> String {
        let out = s.exec_inline("echo \"$d\"", None).await.unwrap();
        out.stdout_text().trim().to_string()
    }

    async fn wait_gone(path: &str) {
        for _ in 0..250 {
            if !std::path::Path::new(path).exists() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{path} left behind");
    }

    #[tokio::test]
    async fn the_session_files_are_private_and_removed_at_the_end() {
        let s = local_session().await;
        s.exec("cat >/dev/null", Some(b"x".to_vec())).await.unwrap();
        let dir = directory(&s).await;
        let out = s
            .exec_inline("stat -c %a \"$d\"; ls \"$d\"", None)
            .await
            .unwrap();
        assert_eq!(
            out.stdout_text(),
            "700\ne\ni\n",
            "the files (stdin's too) are in a private directory"
        );
        assert!(dir.starts_with("/tmp/.kiln-"), "{dir}");
        assert!(
            !dir.contains(&s.nonce),
            "the nonce is not in the directory's name"
        );
        drop(s);
        wait_gone(&dir).await;
    }

    /// What a command read on stdin (a file's content, a secret) does not stay in the
    /// session's stdin file after the command, in every mode.
    #[tokio::test]
    async fn stdin_is_emptied_once_its_command_ends() {
        let s = local_session().await;
        let size = "stat -c %s \"$d/i\"";
        for mode in ['c', 'd', 'f'] {
            let out = s
                .run("cat >/dev/null", Some(b"SECRET".to_vec()), mode)
                .await
                .unwrap();
            assert_eq!(out.rc, 0, "{mode}");
            let left = s.exec_inline(size, None).await.unwrap().stdout_text();
            assert_eq!(left, "0\n", "mode {mode} left its stdin behind");
        }
    }

    /// A controller that goes away in the middle of a command (the channel closes): the shell
    /// finds out when it writes the frame's end, and still removes its files.
    #[tokio::test]
    async fn the_session_files_are_removed_when_the_controller_goes_away() {
        let s = std::sync::Arc::new(local_session().await);
        let dir = directory(&s).await;
        let running = {
            let s = s.clone();
            tokio::spawn(async move { s.exec_user("sleep 0.3; echo done", None).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        running.abort();
        let _ = running.await;
        drop(s);
        wait_gone(&dir).await;
    }
}
