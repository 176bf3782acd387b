//! The command line of `healthchecker-server`.
//!
//! Without a subcommand it runs the server with the options of [`ServeArgs`]; each option can
//! also come from `HEALTHCHECKER_OPTION_NAME` or the config file (see [`crate::config`]). The
//! subcommands talk to a running server, given with `--server URL` (or `HEALTHCHECKER_URL`) or
//! found over mDNS: `list`, `log`, `maintenance`, `test-channel`, `discover`, and `exec`, the
//! cron wrapper of push monitors ([`exec`]); those for installing it (`check-config`,
//! `completions`, `man`) are [`crate::admin`]'s.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use healthchecker_client::api::ApiClient;
use healthchecker_client::discovery::{DEFAULT_DISCOVERY_TIMEOUT, locate_server};
use healthchecker_client::{AppName, CheckRecord, Error as ClientError, MonitorInfo};
use unicode_width::UnicodeWidthStr as _;
use url::Url;

use crate::config::ServeArgs;

/// Zero-config health checks for your LAN: apps register themselves, the server polls their
/// `/health` and emails you when one hangs.
///
/// Without a subcommand it runs the server. Every option can also be set as an environment
/// variable HEALTHCHECKER_OPTION_NAME (for example HEALTHCHECKER_PORT=8080) or in the config file as
/// `option_name = value`. A flag wins over the environment, which wins over the file, which wins
/// over the default.
#[derive(Debug, Parser)]
#[command(
    name = "healthchecker-server",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; without one, run the server.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the server.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands: those that talk to a running server, and [`crate::admin`]'s.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every monitor of a running server: name, state, last check, latency, since.
    List {
        /// Which server.
        #[command(flatten)]
        server: ServerArgs,
        /// Print the JSON answer instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Show the health-check log of one app, newest last.
    Log {
        /// The app's name.
        app: String,
        /// How many checks.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
        /// Keep printing new checks as they happen (Ctrl-C to stop).
        #[arg(short, long)]
        follow: bool,
        /// Print one JSON object per check instead of a table (for scripts).
        #[arg(long)]
        json: bool,
        /// Which server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Put an app in maintenance: no alerts for it until the time is up, or until `--end`.
    ///
    /// Checks go on and the log keeps them; a change that lasts past the window is told when
    /// it ends. Needs the server's token in HEALTHCHECKER_TOKEN when it has one.
    Maintenance {
        /// The app's name.
        app: String,
        /// How long, e.g. 15m, 2h or 1h30m (whole minutes, at most 7 days).
        #[arg(value_parser = humantime::parse_duration, required_unless_present = "end")]
        duration: Option<Duration>,
        /// Why, shown in the list and the dashboard.
        #[arg(long, default_value = "")]
        reason: String,
        /// End the maintenance now instead.
        #[arg(long, conflicts_with_all = ["duration", "reason"])]
        end: bool,
        /// Which server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Send a test message through a channel (a `[[channel]]` name, or `email`) and show what
    /// its receiver answered.
    TestChannel {
        /// The channel's name, as `GET /api/v1/channels` lists it.
        name: String,
        /// Which server.
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the healthchecker servers that answer over mDNS on this LAN.
    Discover {
        /// How long to listen, in seconds.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Run a command as a push monitor's job (for cron): ping start, run it, ping its exit
    /// status with the last 10 KB of its output, exit with its status.
    ///
    /// Registers the push monitor NAME when --period or --schedule is given (again is harmless:
    /// the ping URL stays), else uses the existing one. If the server cannot be reached the
    /// command still runs, and this says so on stderr. Example crontab line:
    ///
    ///   0 3 * * * healthchecker-server exec nightly-backup --schedule '0 3 * * *' --tz Europe/Berlin --grace 1h -- /usr/local/bin/backup.sh
    Exec(ExecArgs),
    /// `check-config`, `completions`, `man`.
    #[command(flatten)]
    Admin(crate::admin::AdminCommand),
}

/// What `exec` runs, and the push monitor it reports to.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// The push monitor's name.
    pub app: String,
    /// A success is expected every this long, e.g. 1d, 6h, 15m (registers the monitor).
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "schedule")]
    pub period: Option<Duration>,
    /// A success is expected at the times of this five-field cron expression, e.g. "0 3 * * *"
    /// (registers the monitor).
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// The IANA time zone of --schedule [default: UTC].
    #[arg(long, value_name = "ZONE", requires = "schedule")]
    pub tz: Option<String>,
    /// How long after the deadline the job is missed, and how long a run may take, e.g. 1h
    /// [default: the server's, 1 h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub grace: Option<Duration>,
    /// Who is mailed when it is missed or fails (repeatable; with --period or --schedule).
    #[arg(long, value_name = "ADDRESS")]
    pub email: Vec<String>,
    /// Which server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Where the running server is.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the server, e.g. http://192.168.1.10:8080 [default: found over mDNS]
    #[arg(long, value_name = "URL", env = "HEALTHCHECKER_URL")]
    pub server: Option<Url>,
}

/// Why a subcommand failed; each says what to do. What the server answered is the client
/// crate's [`ClientError`], with its own message; only where the command line knows better (its
/// flags) does the message here add to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No `--server`, and none answered over mDNS.
    #[error(
        "no healthchecker server given or found; pass --server http://HOST:PORT or set HEALTHCHECKER_URL ({0})"
    )]
    NoServer(#[source] ClientError),
    /// The server did not answer.
    #[error("cannot reach the server at {url}: {source}; is it running?")]
    Unreachable {
        /// The server.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error, or something else went wrong talking to it.
    #[error(transparent)]
    Client(ClientError),
    /// Writing the output failed (a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// An admin subcommand failed.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// `exec`'s command ended with this non-zero status (it said why itself).
    #[error("the command exited with status {0}")]
    Exited(u8),
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Unreachable { url, source } => CliError::Unreachable { url, source },
            other => CliError::Client(other),
        }
    }
}

/// Runs `command`, writing its output to `out`.
///
/// # Errors
///
/// [`CliError`] when the server cannot be found or reached, or answers with an error.
pub async fn run(command: Command, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    match command {
        Command::List { server, json } => {
            let api = connect(&server).await?;
            if json {
                let answer = api.list_json().await?;
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                )?;
                return Ok(());
            }
            write_table(out, &api.list().await?, Utc::now())?;
        }
        Command::Log {
            app,
            limit,
            follow,
            json,
            server,
        } => {
            let app = AppName::parse(&app)?;
            let api = connect(&server).await?;
            let mut last_seen: Option<DateTime<Utc>> = None;
            loop {
                let mut checks = api.log(&app, limit).await?;
                checks.reverse(); // oldest first, like a log file
                for check in checks
                    .iter()
                    .filter(|check| last_seen.is_none_or(|seen| check.time > seen))
                {
                    if json {
                        writeln!(out, "{}", serde_json::to_string(check).unwrap_or_default())?;
                    } else {
                        writeln!(out, "{}", log_line(check))?;
                    }
                }
                out.flush()?;
                if let Some(newest) = checks.last() {
                    last_seen = Some(newest.time);
                }
                if !follow {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        Command::Maintenance {
            app,
            duration,
            reason,
            end,
            server,
        } => {
            let app = AppName::parse(&app)?;
            let api = connect(&server).await?;
            let window = duration.filter(|_| !end).map(|d| (d, reason.as_str()));
            let monitor = api.maintenance(&app, window).await?;
            match (monitor.maintenance_until, &monitor.maintenance_reason) {
                (Some(until), reason) => writeln!(
                    out,
                    "{app}: in maintenance until {}{}",
                    until
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M %Z"),
                    reason
                        .as_deref()
                        .filter(|r| !r.is_empty())
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                )?,
                (None, _) => writeln!(out, "{app}: not in maintenance; state {}", monitor.state)?,
            }
        }
        Command::TestChannel { name, server } => {
            let api = connect(&server).await?;
            let answer = api.test_channel(&name).await?;
            writeln!(out, "{name}: delivered; the receiver answered: {answer}")?;
        }
        Command::Discover { timeout } => {
            let found = healthchecker_client::discovery::browse(Duration::from_secs(timeout))
                .await
                .map_err(|error| CliError::NoServer(ClientError::from(error)))?;
            if found.is_empty() {
                writeln!(out, "no healthchecker server answered within {timeout} s")?;
            }
            for server in found {
                writeln!(
                    out,
                    "{}\t{}\tversion {}\tauth {}",
                    server.instance,
                    server
                        .url()
                        .unwrap_or_else(|| "(no usable address)".to_owned()),
                    server.version.as_deref().unwrap_or("?"),
                    server.auth.as_deref().unwrap_or("?"),
                )?;
            }
        }
        Command::Exec(args) => {
            let status = exec(args).await;
            if status != 0 {
                return Err(CliError::Exited(status));
            }
        }
        Command::Admin(command) => crate::admin::run(command, out)?,
    }
    Ok(())
}

/// `exec`: runs the command between a start ping and its exit status; returns the status to
/// exit with (the command's; 128 + the signal when a signal ended it; 127 when it could not be
/// started). Talking to the server never stops the command: each failure is one line on stderr.
pub async fn exec(args: ExecArgs) -> u8 {
    let warn = |what: &str, error: &dyn std::fmt::Display| {
        eprintln!("healthchecker-server exec: {what}: {error}");
    };
    let heartbeat = match heartbeat(&args).await {
        Ok(heartbeat) => Some(heartbeat),
        Err(error) => {
            warn(
                "cannot report to the server; the command runs anyway, unreported",
                &error,
            );
            None
        }
    };
    if let Some(heartbeat) = &heartbeat
        && let Err(error) = heartbeat.start().await
    {
        warn("cannot ping start; the command runs anyway", &error);
    }
    let (status, output) = run_capturing(&args.command).await;
    if let Some(heartbeat) = &heartbeat {
        let reported = match status {
            Ran::Exited(code) => heartbeat.exit(code, &output).await,
            Ran::Signal(signal) => {
                heartbeat
                    .fail(&format!("{output}\n[killed by signal {signal}]"))
                    .await
            }
            Ran::NotStarted(ref error) => heartbeat.fail(error).await,
        };
        if let Err(error) = reported {
            warn("cannot report the command's result", &error);
        }
    }
    match status {
        Ran::Exited(code) => code,
        Ran::Signal(signal) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(127)),
        Ran::NotStarted(error) => {
            eprintln!("healthchecker-server exec: {error}");
            127
        }
    }
}

/// The heartbeat of `args.app`: registered when a schedule is given, else the existing one.
async fn heartbeat(args: &ExecArgs) -> Result<healthchecker_client::Heartbeat, CliError> {
    let api = connect(&args.server).await?;
    let app = AppName::parse(&args.app)?;
    let monitor = match (&args.period, &args.schedule) {
        (Some(period), _) => Some(healthchecker_client::PushMonitor::every(*period)),
        (None, Some(schedule)) => Some(healthchecker_client::PushMonitor::cron(
            schedule.clone(),
            args.tz.clone().unwrap_or_else(|| "UTC".to_owned()),
        )),
        (None, None) => None,
    };
    let Some(mut monitor) = monitor else {
        return Ok(api.heartbeat(&app).await?);
    };
    if let Some(grace) = args.grace {
        monitor = monitor.grace(grace);
    }
    for email in &args.email {
        monitor = monitor.email(email.clone());
    }
    Ok(api.push(&app, &monitor).await?)
}

/// How the command ended.
enum Ran {
    /// With this exit status (its low 8 bits).
    Exited(u8),
    /// Killed by this signal.
    Signal(i32),
    /// It could not be started.
    NotStarted(String),
}

/// Runs `command` with its output passed through to ours and the last
/// [`healthchecker_client::OUTPUT_MAX`] bytes of it (stdout and stderr as they came) kept.
async fn run_capturing(command: &[String]) -> (Ran, String) {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

    let Some((program, arguments)) = command.split_first() else {
        return (
            Ran::NotStarted("no command given".to_owned()),
            String::new(),
        );
    };
    let child = tokio::process::Command::new(program)
        .args(arguments)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            return (
                Ran::NotStarted(format!("cannot run {program:?}: {error}")),
                String::new(),
            );
        }
    };
    let kept: Arc<Mutex<Vec<u8>>> = Arc::default();
    async fn pass<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        mut from: R,
        mut to: W,
        kept: Arc<Mutex<Vec<u8>>>,
    ) {
        let max = healthchecker_client::OUTPUT_MAX;
        let mut buffer = [0u8; 8192];
        while let Ok(read) = from.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            let _ = to.write_all(&buffer[..read]).await;
            let _ = to.flush().await;
            let mut kept = kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            kept.extend_from_slice(&buffer[..read]);
            if kept.len() > 2 * max {
                let cut = kept.len() - max;
                kept.drain(..cut);
            }
        }
    }
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = async {
        if let Some(stdout) = stdout {
            pass(stdout, tokio::io::stdout(), Arc::clone(&kept)).await;
        }
    };
    let err = async {
        if let Some(stderr) = stderr {
            pass(stderr, tokio::io::stderr(), Arc::clone(&kept)).await;
        }
    };
    let (status, (), ()) = tokio::join!(child.wait(), out, err);
    let output = {
        let kept = kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let text = String::from_utf8_lossy(&kept).into_owned();
        healthchecker_client::tail(&text, healthchecker_client::OUTPUT_MAX).to_owned()
    };
    let ran = match status {
        Ok(status) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => Ran::Exited(u8::try_from(code & 0xff).unwrap_or(1)),
            (None, Some(signal)) => Ran::Signal(signal),
            (None, None) => Ran::Exited(1),
        },
        Err(error) => Ran::NotStarted(format!("cannot wait for {program:?}: {error}")),
    };
    (ran, output)
}

/// A client of the server: `--server`/`HEALTHCHECKER_URL`, or the first found over mDNS that
/// answers.
async fn connect(args: &ServerArgs) -> Result<ApiClient, CliError> {
    let url = match &args.server {
        Some(url) => url.clone(),
        None => locate_server(DEFAULT_DISCOVERY_TIMEOUT)
            .await
            .map_err(CliError::NoServer)?,
    };
    Ok(ApiClient::new(url)?)
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago".
fn ago(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - time).num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86400),
    }
}

fn write_table(
    out: &mut (dyn Write + Send),
    monitors: &[MonitorInfo],
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    if monitors.is_empty() {
        return writeln!(out, "no app is monitored yet");
    }
    let rows: Vec<[String; 5]> = monitors
        .iter()
        .map(|monitor| {
            let state = if monitor.paused {
                format!("{} (paused)", monitor.state)
            } else {
                monitor.state.to_string()
            };
            let (last, latency) = match &monitor.last_check {
                Some(check) => (
                    format!(
                        "{} {} {}",
                        ago(check.time, now),
                        check.outcome,
                        check.reason
                    ),
                    format!("{:.1} ms", check.latency_ms),
                ),
                None => ("not yet".to_owned(), "-".to_owned()),
            };
            let since = monitor
                .since
                .map_or_else(|| "-".to_owned(), |since| ago(since, now));
            [monitor.app.clone(), state, last, latency, since]
        })
        .collect();
    let header = ["NAME", "STATE", "LAST CHECK", "LATENCY", "SINCE"].map(str::to_owned);
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                // Padded by the columns the text takes on a terminal: a wide character
                // (CJK, most emoji) takes two, a combining mark none.
                line.extend(std::iter::repeat_n(' ', width - cell.width() + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn log_line(check: &CheckRecord) -> String {
    format!(
        "{}  {:<4}  {:<14}  {:>3}  {:>9}  {:<9}  {}",
        check.time.format("%Y-%m-%d %H:%M:%SZ"),
        check.outcome.to_string(),
        check.reason,
        check
            .http_status
            .map_or_else(|| "-".to_owned(), |status| status.to_string()),
        format!("{:.1} ms", check.latency_ms),
        check.state.to_string(),
        // A push monitor's detail is a job's output: one line here.
        check
            .detail
            .as_deref()
            .unwrap_or("")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect::<String>(),
    )
    .trim_end()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use healthchecker_client::api::encode_segment;

    use super::*;

    #[test]
    fn table_aligns_columns() {
        let now: DateTime<Utc> = "2026-01-01T00:10:00Z".parse().expect("time");
        let monitors: Vec<MonitorInfo> = serde_json::from_value(serde_json::json!([
            {"app": "nas", "url": "http://n", "interval": 10, "timeout": 5, "unhealthy": 2, "healthy": 4,
             "state": "HEALTHY", "since": "2026-01-01T00:05:00Z",
             "last_check": {"time": "2026-01-01T00:09:58Z", "outcome": "pass", "reason": "ok", "latency_ms": 1.25, "state": "HEALTHY"}},
            {"app": "media-center", "url": "http://m", "interval": 10, "timeout": 5, "unhealthy": 2, "healthy": 4,
             "state": "UNKNOWN", "paused": true}
        ]))
        .expect("monitors");
        let mut out = Vec::new();
        write_table(&mut out, &monitors, now).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let expected = "\
NAME          STATE             LAST CHECK       LATENCY  SINCE
nas           HEALTHY           2 s ago pass ok  1.2 ms   5 min ago
media-center  UNKNOWN (paused)  not yet          -        -
";
        assert_eq!(text, expected);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("my app/1"), "my%20app%2F1");
    }

    #[test]
    fn wide_characters_align_by_their_columns() {
        let now: DateTime<Utc> = "2026-01-01T00:10:00Z".parse().expect("time");
        let monitors: Vec<MonitorInfo> = serde_json::from_value(serde_json::json!([
            {"app": "媒体中心", "url": "http://m", "interval": 10, "timeout": 5, "unhealthy": 2,
             "healthy": 4, "state": "UNKNOWN"},
            {"app": "nas 🚀", "url": "http://n", "interval": 10, "timeout": 5, "unhealthy": 2,
             "healthy": 4, "state": "UNKNOWN"},
            {"app": "café", "url": "http://c", "interval": 10, "timeout": 5, "unhealthy": 2,
             "healthy": 4, "state": "UNKNOWN"}
        ]))
        .expect("monitors");
        let mut out = Vec::new();
        write_table(&mut out, &monitors, now).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        // Every STATE column starts at the same terminal column.
        let columns: Vec<usize> = text
            .lines()
            .map(|line| {
                let name_end = line.find("  ").expect("two spaces after the name");
                let rest = line[name_end..].trim_start();
                line[..line.len() - rest.len()].width()
            })
            .collect();
        assert!(
            columns.iter().all(|&c| c == columns[0]),
            "{columns:?}\n{text}"
        );
        assert_eq!(columns[0], "媒体中心".width() + 2, "{text}");
    }
}
