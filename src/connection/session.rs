//! A persistent shell on the target that runs kiln's commands one after another.
//!
//! Opening an SSH session, starting the login shell and (with `become`) running `sudo` cost
//! several milliseconds per command; `sudo` alone ~6 ms. A session pays that once per host
//! (and per become user): one channel runs a small POSIX sh loop, and each command then costs
//! one `sh -c` on the target. Commands and their output are framed with a random nonce:
//!
//! ```text
//! → <script lines>  "<nonce> <stdin length> <c|d>\n"  <stdin bytes>
//! ← <stdout> "\n<nonce> 1\n" <stderr> "\n<nonce> 2 <exit code>\n"
//! ```
//!
//! Each command runs in a subshell (a fork, no exec: cheaper than `sh -c`, with the loop's own
//! variables cleared first) with stdin from a file (or /dev/null). A user's command (`c`) has
//! its output captured in a file first, so a daemon it leaves behind cannot corrupt the
//! framing; kiln's own scripts (`d`) stream their output directly, saving a `cat` each.
//! kiln's hottest scripts (`f`, [`Connection::exec_inline`]) skip the subshell's fork: they
//! run in the loop's shell, so they must not `exit` and may only set the variables `k_t`,
//! `k_rc` and `k_b`, `umask` and `set -C`, which the loop resets after each.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{Connection, ConnectionError, ExecOutput};

/// A bidirectional byte stream to a remote command (an SSH channel, a local pipe pair).
pub trait DuplexStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> DuplexStream for T {}
pub type BoxStream = Pin<Box<dyn DuplexStream>>;

/// The loop the target runs; `@N@` is replaced by the nonce.
const LOOP: &str = r#"n=@N@
d=$(mktemp -d /tmp/.kiln-session.XXXXXX) || exit 1
m=$(umask)
trap 'rm -rf "$d"' EXIT HUP TERM
printf '%s ready\n' "$n"
while :; do
  s= l=
  while IFS= read -r l; do
    case "$l" in "$n "*) break ;; esac
    s="$s$l
"
  done
  case "$l" in "$n "*) ;; *) exit 0 ;; esac
  set -- $l
  i=/dev/null
  if [ "$2" -gt 0 ]; then
    dd of="$d/i" bs="$2" count=1 iflag=fullblock 2>/dev/null
    i="$d/i"
  fi
  if [ "$3" = c ]; then
    (eval "unset l i r n m; set --; d=; s=; $s") <"$i" >"$d/o" 2>"$d/e"
    r=$?
    [ -s "$d/o" ] && cat "$d/o"
  elif [ "$3" = f ]; then
    { eval "$s"; } <"$i" 2>"$d/e"
    r=$?
    umask "$m"; set +C; unset k_t k_rc k_b
  else
    (eval "unset l i r n m; set --; d=; s=; $s") <"$i" 2>"$d/e"
    r=$?
  fi
  if [ -s "$d/e" ]; then
    printf '\n%s 1\n' "$n"; cat "$d/e"; printf '\n%s 2 %s\n' "$n" "$r"
  else
    printf '\n%s 1\n\n%s 2 %s\n' "$n" "$n" "$r"
  fi
done
"#;

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

/// The command that starts the loop (wrap it with `become_command` to run as another user).
pub fn loop_command(nonce: &str) -> String {
    LOOP.replace("@N@", nonce)
}

pub fn new_nonce() -> String {
    format!("kiln-{}", crate::modules::util::random_id())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Io {
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
    /// Starts the loop on `stream` (already running `loop_command`) and waits until it is ready.
    pub async fn start(
        stream: BoxStream,
        nonce: String,
        what: String,
    ) -> Result<Self, ConnectionError> {
        let mut io = Io {
            stream,
            buffer: Vec::new(),
        };
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
    /// Runs one framed command; `mode` is `c` (capture stdout first) or `d` (stream it).
    async fn run(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
        mode: char,
    ) -> Result<ExecOutput, ConnectionError> {
        let mut io = self.io.lock().await;
        self.commands.fetch_add(1, Ordering::Relaxed);
        let input = stdin.unwrap_or_default();
        let mut message = Vec::with_capacity(command.len() + input.len() + 64);
        message.extend_from_slice(command.as_bytes());
        message.extend_from_slice(format!("\n{} {} {mode}\n", self.nonce, input.len()).as_bytes());
        message.extend_from_slice(&input);
        let broken = |e: String| {
            ConnectionError::Unreachable(format!("the shell session for {} ended: {e}", self.what))
        };
        io.stream
            .write_all(&message)
            .await
            .map_err(|e| broken(e.to_string()))?;
        io.stream.flush().await.map_err(|e| broken(e.to_string()))?;
        let stdout = io
            .read_until(format!("\n{} 1\n", self.nonce).as_bytes())
            .await
            .map_err(broken)?;
        let stderr = io
            .read_until(format!("\n{} 2 ", self.nonce).as_bytes())
            .await
            .map_err(broken)?;
        let code = io.read_until(b"\n").await.map_err(broken)?;
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

    /// Runs the real loop under the local /bin/sh (no mock: the same script targets run).
    async fn local_session() -> Session {
        let nonce = new_nonce();
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(loop_command(&nonce))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stream = tokio::io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap());
        std::mem::forget(child);
        Session::start(Box::pin(stream), nonce, "local".into())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn frames_output_errors_exit_codes_and_stdin() {
        let s = local_session().await;
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
        let out = s.exec("echo \"[$s][$n]\"", None).await.unwrap();
        assert_eq!(
            out.stdout_text(),
            "[][]\n",
            "the loop's variables do not leak into commands"
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
        assert_eq!(s.round_trips(), 10);
    }
}
