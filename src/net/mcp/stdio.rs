//! The stdio transport: the server is a command run on this host, speaking one JSON-RPC
//! message per line on its stdin and stdout.
//!
//! Only reachable when the instance allows stdio servers (`mcp.allow_stdio`). The command line
//! is split into words (quotes and backslashes as in a shell) and run directly, without a
//! shell, with an empty environment except `PATH`: the server's own secrets (master key,
//! database URL…) must not reach a program a tenant admin named. The process is killed when
//! the ping ends, however it ends.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{PingError, PingSettings, Rpc, find_response, protocol};

pub(super) struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<tokio::io::Take<ChildStdout>>,
    max: usize,
    next_id: u64,
}

impl Session {
    pub(super) fn start(command_line: &str, settings: PingSettings) -> Result<Self, PingError> {
        let words = split_command_line(command_line).map_err(PingError::Spawn)?;
        let (program, args) = words
            .split_first()
            .ok_or_else(|| PingError::Spawn("the command line is empty".into()))?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command
            .spawn()
            .map_err(|e| PingError::Spawn(format!("{program}: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(PingError::Spawn(
                "the command's stdin/stdout are not pipes".into(),
            ));
        };
        Ok(Session {
            child,
            stdin,
            stdout: BufReader::new(stdout.take(settings.max_response_bytes as u64)),
            max: settings.max_response_bytes,
            next_id: 1,
        })
    }

    async fn send(&mut self, message: &Value) -> Result<(), PingError> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| protocol(format!("cannot write to the command ({e})")))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| protocol(format!("cannot write to the command ({e})")))
    }

    pub(super) async fn close(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Rpc for Session {
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, PingError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = self
                .stdout
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| protocol(format!("cannot read from the command ({e})")))?;
            if read == 0 {
                // The cap ends the stream like an exit does; tell the two apart.
                if self.stdout.get_ref().limit() == 0 {
                    return Err(PingError::TooLarge(self.max));
                }
                return Err(protocol(format!(
                    "the command ended its output before the response to {method}"
                )));
            }
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            let message: Value = serde_json::from_str(text.trim()).map_err(|e| {
                protocol(format!("the command wrote a line that is not JSON ({e})"))
            })?;
            if let Some(result) = find_response(&message, id) {
                return result;
            }
        }
    }

    async fn notify(&mut self, method: &str) -> Result<(), PingError> {
        self.send(&json!({ "jsonrpc": "2.0", "method": method }))
            .await
    }

    fn negotiated(&mut self, _version: &str) {}
}

/// Splits a command line into words the way a POSIX shell would for plain words, quotes and
/// backslashes (no variables, globs or operators: those are refused rather than misread).
pub(super) fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err("the command line ends with a backslash".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a \" quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the command line ends with a backslash".into()),
                }
            }
            '|' | '&' | ';' | '<' | '>' | '`' | '$' => {
                return Err(format!(
                    "'{c}' needs a shell; name a program and its arguments (or a script)"
                ));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell_and_shell_syntax_is_refused() {
        assert_eq!(
            split_command_line(r#"npx -y "@scope/server fs" '/tmp/a b' c\ d"#).unwrap(),
            ["npx", "-y", "@scope/server fs", "/tmp/a b", "c d"]
        );
        assert_eq!(split_command_line("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command_line("a ''").unwrap(), ["a", ""]);
        for bad in ["a | b", "a; rm -rf /", "echo $HOME", "a 'b", "a \"b", "a\\"] {
            assert!(split_command_line(bad).is_err(), "{bad}");
        }
    }
}
