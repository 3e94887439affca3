//! Starting a session's shell as another user (`become`), with a password when the method
//! asks for one.
//!
//! sudo runs with `-S -p <prompt>`: the prompt is random, so no other output can pass for it,
//! and the password is written on the channel's stdin only once that prompt appears (never in
//! an argument list, the environment or a file). The shell sudo starts first prints a random
//! "ready" line, which tells a granted escalation (no password needed, or the right one) from
//! a prompt. A prompt with no password known is Ansible's "Missing sudo password"; a second
//! prompt after the password is its "Incorrect sudo password". Both fail the task rather than
//! make the host unreachable, as in Ansible.
//!
//! su reads its password from a terminal only, so its channel gets a pseudo-terminal; the
//! shell su starts turns the terminal's echo and line editing off (`stty raw -echo`) before it
//! prints its ready line, and the session's shell runs non-interactive (`+i`), so the
//! session's protocol then runs over it unchanged. su's prompt
//! cannot be chosen: the password is written when su, the only program that has written to
//! the channel so far, has printed text ending in ": " without a newline.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::session::BoxStream;
use super::{quote, ConnectionError, Password};
use crate::util::random_id;

/// The `become_method`s kiln implements.
pub const BECOME_METHODS: &[&str] = &["sudo", "su", "doas"];

/// How a session's shell is started as another user, and how to tell it started.
#[derive(Debug, Clone)]
pub struct ShellStart {
    /// The command the channel runs.
    pub command: String,
    /// Whether the channel needs a pseudo-terminal (su).
    pub terminal: bool,
    method: String,
    /// The line the new shell prints once it runs (None: no handshake, as for doas).
    ready: Option<String>,
    /// sudo's prompt (None for su, whose prompt is its own).
    prompt: Option<String>,
}

/// The shell's start as `user` through `method`, as Ansible's `become` does (`exec`: the
/// login shell need not wait for it). Like [`super::session::SHELL_COMMAND`], it hands the
/// shell the process id of the login shell's parent (sshd's process for this connection),
/// which the session watches. `None` for a method kiln does not implement.
pub fn shell_start(method: &str, user: &str) -> Option<ShellStart> {
    let user = quote(user);
    let ready = random_id();
    let (command, prompt, ready, terminal) = match method {
        "sudo" => {
            let prompt = format!("[kiln sudo {}] ", random_id());
            let shell = quote(&format!("echo {ready}; exec /bin/sh -s \"$1\""));
            let command = format!(
                "exec sudo -H -S -p {} -u {user} /bin/sh -c {shell} sh $PPID",
                quote(&prompt)
            );
            (command, Some(prompt), Some(ready), false)
        }
        "su" => {
            // `+i`: a shell whose input and output are a terminal would otherwise be
            // interactive and print prompts into the session's output.
            let shell = format!("stty raw -echo; echo {ready}; exec /bin/sh +i -s \"$1\"");
            let shell = quote(&format!("/bin/sh -c {} sh $0", quote(&shell)));
            let command = format!("exec su {user} -c {shell} $PPID");
            (command, None, Some(ready), true)
        }
        "doas" => {
            let command = format!("exec doas -n -u {user} /bin/sh -s $PPID");
            (command, None, None, false)
        }
        _ => return None,
    };
    Some(ShellStart {
        command,
        terminal,
        method: method.to_string(),
        ready,
        prompt,
    })
}

/// What the escalation's output so far says.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The new shell runs.
    Ready,
    /// The method asks for a password.
    Prompt,
    /// Nothing decisive yet.
    Waiting,
}

impl ShellStart {
    /// Reads what the escalation prints, answers its password prompt once with `password`,
    /// and returns once the new shell runs. A missing or refused password is a
    /// [`ConnectionError::Become`]; any other failure (sudo refusing the user, the channel
    /// closing) is the method's own words.
    pub async fn escalate(
        &self,
        stream: &mut BoxStream,
        password: Option<&Password>,
    ) -> Result<(), ConnectionError> {
        let Some(ready) = &self.ready else {
            return Ok(());
        };
        let ready_line = format!("{ready}\n");
        let mut output: Vec<u8> = Vec::new();
        let mut answered = false;
        loop {
            match self.judge(&output, &ready_line) {
                Seen::Ready => return Ok(()),
                Seen::Prompt if answered => return Err(self.refused("Incorrect")),
                Seen::Prompt => {
                    let Some(password) = password else {
                        return Err(self.refused("Missing"));
                    };
                    let mut answer = password.0.clone().into_bytes();
                    answer.push(b'\n');
                    let written = stream.write_all(&answer).await;
                    answer.iter_mut().for_each(|b| *b = 0);
                    written
                        .and(stream.flush().await)
                        .map_err(|e| self.broken(e.to_string()))?;
                    answered = true;
                    output.clear();
                }
                Seen::Waiting => {}
            }
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| self.broken(e.to_string()))?;
            if n == 0 {
                // su says "Authentication failure" and exits; no prompt comes again.
                return Err(if answered && self.prompt.is_none() {
                    self.refused("Incorrect")
                } else {
                    self.broken(String::from_utf8_lossy(&output).trim().to_string())
                });
            }
            output.extend_from_slice(&chunk[..n]);
        }
    }

    fn judge(&self, output: &[u8], ready_line: &str) -> Seen {
        let text = String::from_utf8_lossy(output);
        // A terminal turns the ready line's newline into CR LF until `stty` has run.
        if text.contains(ready_line) || text.contains(&ready_line.replace('\n', "\r\n")) {
            return Seen::Ready;
        }
        let prompted = match &self.prompt {
            Some(prompt) => text.contains(prompt.as_str()),
            None => text.ends_with(": ") && !text.contains('\n'),
        };
        if prompted {
            Seen::Prompt
        } else {
            Seen::Waiting
        }
    }

    /// Ansible's words for a password the method did not get or did not accept.
    fn refused(&self, how: &str) -> ConnectionError {
        ConnectionError::Become(format!("{how} {} password", self.method))
    }

    fn broken(&self, detail: String) -> ConnectionError {
        let detail = if detail.is_empty() {
            "it exited".to_string()
        } else {
            detail
        };
        ConnectionError::Unreachable(format!("{} failed: {detail}", self.method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_become_methods_have_no_shell() {
        for method in BECOME_METHODS {
            assert!(shell_start(method, "root").is_some(), "{method}");
        }
        assert!(shell_start("pbrun", "root").is_none());
    }

    #[test]
    fn every_start_has_its_own_random_prompt_and_no_password_in_the_command() {
        let a = shell_start("sudo", "root").unwrap();
        let b = shell_start("sudo", "root").unwrap();
        assert_ne!(a.prompt, b.prompt);
        assert_ne!(a.ready, b.ready);
        assert!(a.command.contains(a.prompt.as_deref().unwrap()));
        assert!(!a.command.contains(" -n "), "sudo may ask: kiln answers");
        assert!(shell_start("su", "root").unwrap().terminal);
    }

    /// A fake escalation: a local shell printing `script`'s output, whose stdin kiln writes.
    async fn escalate_against(
        start: &ShellStart,
        script: &str,
        password: Option<&str>,
    ) -> Result<(), ConnectionError> {
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stream = tokio::io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap());
        let mut stream: BoxStream = Box::pin(stream);
        let password = password.map(|p| Password(p.into()));
        start.escalate(&mut stream, password.as_ref()).await
    }

    /// A stand-in for `sudo -S -p PROMPT`: prompts until it reads `secret`, then runs.
    fn fake_sudo(start: &ShellStart, secret: &str) -> String {
        let prompt = quote(start.prompt.as_deref().unwrap());
        let ready = start.ready.as_deref().unwrap();
        format!(
            "for i in 1 2 3; do printf %s {prompt} >&1; read -r p; \
             [ \"$p\" = {secret} ] && echo {ready} && exec sleep 5; echo 'Sorry, try again.'; done; exit 1"
        )
    }

    #[tokio::test]
    async fn sudo_passwords_are_answered_missing_or_refused_as_ansible_says() {
        let start = shell_start("sudo", "root").unwrap();
        let script = fake_sudo(&start, "right");
        escalate_against(&start, &script, Some("right"))
            .await
            .unwrap();
        let wrong = escalate_against(&start, &script, Some("wrong")).await;
        assert_eq!(
            wrong.unwrap_err().to_string(),
            "Incorrect sudo password",
            "a second prompt means the password was refused"
        );
        let missing = escalate_against(&start, &script, None).await;
        assert!(
            matches!(&missing, Err(ConnectionError::Become(m)) if m == "Missing sudo password"),
            "{missing:?}"
        );
        let ready = format!("echo {}; sleep 5", start.ready.as_deref().unwrap());
        escalate_against(&start, &ready, None)
            .await
            .expect("no prompt: no password needed");
        let refused = escalate_against(&start, "echo 'kiln is not in the sudoers file'", None)
            .await
            .unwrap_err();
        assert!(matches!(refused, ConnectionError::Unreachable(_)));
        assert!(
            refused.to_string().contains("not in the sudoers"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_prompt_lookalike_in_other_output_is_not_answered() {
        let start = shell_start("sudo", "root").unwrap();
        let script = "printf '[kiln sudo 0000] '; sleep 0.3; dd bs=1 count=64 iflag=nonblock 2>/dev/null; exit 1";
        let result = escalate_against(&start, script, Some("secret")).await;
        let error = result.unwrap_err().to_string();
        assert!(!error.contains("secret"), "{error}");
    }
}
