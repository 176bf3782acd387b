//! The command line of `healthchecker-server`.
//!
//! Without a subcommand it runs the server with the options of [`ServeArgs`]; each option can
//! also come from `HEALTHCHECKER_OPTION_NAME` or the config file (see [`crate::config`]). The
//! subcommands talk to a running server, given with `--server URL` (or `HEALTHCHECKER_URL`) or
//! found over mDNS: `list`, `log`, `maintenance`, `test-channel` and `discover`; those for installing it (`check-config`,
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
        /// Keep printing new checks as they happen, live from the server's event stream (Ctrl-C
        /// to stop).
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
    /// `check-config`, `completions`, `man`.
    #[command(flatten)]
    Admin(crate::admin::AdminCommand),
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
    /// `log --follow`: the server ended the live stream.
    #[error(
        "the server ended the live stream (it shut down, or this client fell too far behind); \
         run the command again"
    )]
    StreamEnded,
    /// An admin subcommand failed.
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
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
            let print = |out: &mut (dyn Write + Send), check: &CheckRecord| {
                if json {
                    writeln!(out, "{}", serde_json::to_string(check).unwrap_or_default())
                } else {
                    writeln!(out, "{}", log_line(check))
                }
            };
            // Following: the live stream is open before the log is read, so no check falls
            // between the two; one that is in both is printed once (by its time).
            let mut live = if follow {
                Some(api.follow(&app).await?)
            } else {
                None
            };
            let mut checks = api.log(&app, limit).await?;
            checks.reverse(); // oldest first, like a log file
            for check in &checks {
                print(out, check)?;
            }
            out.flush()?;
            let mut last_seen: Option<DateTime<Utc>> = checks.last().map(|check| check.time);
            if let Some(live) = &mut live {
                while let Some(check) = live.next().await? {
                    if last_seen.is_some_and(|seen| check.time <= seen) {
                        continue;
                    }
                    last_seen = Some(check.time);
                    print(out, &check)?;
                    out.flush()?;
                }
                return Err(CliError::StreamEnded);
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
        Command::Admin(command) => crate::admin::run(command, out)?,
    }
    Ok(())
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
        check.detail.as_deref().unwrap_or(""),
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
