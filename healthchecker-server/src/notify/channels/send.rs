//! Carrying out a [`Delivery`]: an HTTP request through one shared client, or a program run with
//! a deadline. The answer says whether to try again.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::{CommandRun, Delivery, HttpRequest};
use crate::notify::render::one_line;

/// Most bytes of a command's output kept for the log.
pub const OUTPUT_MAX: usize = 4096;

/// Most bytes of an HTTP answer's body quoted in an error.
const ANSWER_QUOTED: usize = 200;

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Delivered; what the receiver said (`HTTP 200 OK`, `exit status 0`), and a command's
    /// output (at most [`OUTPUT_MAX`] bytes).
    Delivered {
        /// A short summary.
        summary: String,
        /// A command's output, empty otherwise.
        output: String,
    },
    /// Not delivered; worth another attempt later (a timeout, a refused connection, 5xx, 408,
    /// 429, a command that failed).
    Transient(String),
    /// Not delivered, and never will be as configured (another 4xx, a redirect, a program that
    /// cannot run).
    Permanent(String),
}

/// Sends deliveries. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    /// A sender whose requests say `User-Agent: healthchecker/<version>` and follow no redirect.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new() -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(format!("healthchecker/{}", crate::VERSION))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Sender { client })
    }

    /// Delivers, within `timeout`.
    pub async fn send(&self, delivery: &Delivery, timeout: Duration) -> Sent {
        match delivery {
            Delivery::Http(request) => self.http(request, timeout).await,
            Delivery::Command(run) => command(run, timeout).await,
        }
    }

    async fn http(&self, request: &HttpRequest, timeout: Duration) -> Sent {
        let mut builder = self
            .client
            .post(request.url.clone())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, request.content_type)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let answer = match builder.send().await {
            Ok(answer) => answer,
            Err(error) => return Sent::Transient(transport(error, timeout)),
        };
        let status = answer.status();
        let summary = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        if status.is_success() {
            return Sent::Delivered {
                summary,
                output: String::new(),
            };
        }
        let quoted = answer
            .bytes()
            .await
            .map(|bytes| {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ANSWER_QUOTED)]);
                one_line(&text, ANSWER_QUOTED)
            })
            .unwrap_or_default();
        let said = if quoted.is_empty() {
            summary
        } else {
            format!("{summary}: {quoted}")
        };
        match status.as_u16() {
            408 | 429 | 500..=599 => Sent::Transient(said),
            401 | 403 => Sent::Permanent(format!(
                "{said} (the receiver refused the credentials: check the channel's token or URL)"
            )),
            300..=399 => Sent::Permanent(format!(
                "{said} (a redirect, not followed: give the channel the final URL)"
            )),
            _ => Sent::Permanent(said),
        }
    }
}

/// A transport failure in words, without the URL (it may hold a credential).
fn transport(error: reqwest::Error, timeout: Duration) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text, 300)
}

/// Runs `run`, killing it after `timeout`.
async fn command(run: &CommandRun, timeout: Duration) -> Sent {
    let mut command = tokio::process::Command::new(&run.program);
    command
        .args(&run.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .starts_with(crate::config::ENV_PREFIX)
        {
            command.env_remove(name);
        }
    }
    command.envs(run.env.iter().map(|(name, value)| (name, value)));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Sent::Permanent(format!("cannot run {}: {error}", run.program.display()));
        }
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = tokio::time::timeout(timeout, async {
        let (out, err, status) = tokio::join!(capped(stdout), capped(stderr), child.wait());
        (out, err, status)
    })
    .await;
    let Ok((out, err, status)) = finished else {
        let _ = child.kill().await;
        return Sent::Transient(format!(
            "{} did not finish within {} s and was killed",
            run.program.display(),
            timeout.as_secs()
        ));
    };
    let mut output = out;
    output.extend_from_slice(&err);
    output.truncate(OUTPUT_MAX);
    let output = String::from_utf8_lossy(&output).into_owned();
    match status {
        Ok(status) if status.success() => Sent::Delivered {
            summary: "exit status 0".to_owned(),
            output,
        },
        Ok(status) => Sent::Transient(format!(
            "{} ended with {status}: {}",
            run.program.display(),
            one_line(&output, 300)
        )),
        Err(error) => Sent::Transient(format!("waiting for {}: {error}", run.program.display())),
    }
}

/// The first [`OUTPUT_MAX`] bytes of a pipe; the rest is read and dropped, so the program never
/// blocks on a full pipe.
async fn capped(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return kept,
            Ok(read) => {
                let room = OUTPUT_MAX.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..read.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str) -> CommandRun {
        CommandRun {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("HEALTHCHECKER_APP".into(), "nas".into())],
        }
    }

    #[tokio::test]
    async fn a_command_that_exits_0_is_delivered_with_its_output() {
        let sent = command(
            &run("echo \"$HEALTHCHECKER_APP\"; echo oops >&2"),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            sent,
            Sent::Delivered {
                summary: "exit status 0".into(),
                output: "nas\noops\n".into()
            }
        );
    }

    #[tokio::test]
    async fn failures_hangs_floods_and_missing_programs() {
        assert!(
            matches!(command(&run("exit 3"), Duration::from_secs(10)).await, Sent::Transient(why) if why.contains("exit status: 3"))
        );
        let started = std::time::Instant::now();
        let hung = command(&run("sleep 30"), Duration::from_millis(300)).await;
        assert!(
            matches!(&hung, Sent::Transient(why) if why.contains("killed")),
            "{hung:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let flood = command(
            &run("head -c 1000000 /dev/zero | tr '\\0' x"),
            Duration::from_secs(10),
        )
        .await;
        let Sent::Delivered { output, .. } = flood else {
            panic!("{flood:?}")
        };
        assert_eq!(output.len(), OUTPUT_MAX);
        let missing = CommandRun {
            program: "/nonexistent/hc-action".into(),
            args: Vec::new(),
            env: Vec::new(),
        };
        assert!(matches!(
            command(&missing, Duration::from_secs(1)).await,
            Sent::Permanent(_)
        ));
    }
}
