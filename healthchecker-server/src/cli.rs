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

impl Cli {
    /// Parses the process's arguments, exiting with clap's message (and status 2) when they are
    /// wrong, or with the help or version text when asked for one.
    ///
    /// The options' environment variables are shown in `--help` but read by the config layer,
    /// not by clap (see [`ServeArgs::environment_left_to_config`]).
    pub fn parse_args() -> Cli {
        Self::try_parse_args_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// [`Cli::parse_args`] from the given arguments (the first is the program's name).
    ///
    /// # Errors
    ///
    /// clap's error for arguments that are wrong, or its help or version "error" when one was
    /// asked for (print it with [`clap::Error::exit`]).
    pub fn try_parse_args_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::error::ErrorKind;
        use clap::{CommandFactory as _, FromArgMatches as _};
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        match ServeArgs::environment_left_to_config(Cli::command()).try_get_matches_from(&args) {
            Ok(matches) => Cli::from_arg_matches(&matches),
            // The help of the command that names every option's variable: it stops at the
            // help flag, before any variable is looked at.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) =>
            {
                Err(Cli::command()
                    .try_get_matches_from(&args)
                    .err()
                    .unwrap_or(error))
            }
            Err(error) => Err(error),
        }
    }
}

/// Subcommands: those that talk to a running server, and [`crate::admin`]'s.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show every monitor of a running server: name, kind, state, last check, latency, since.
    List {
        /// Which server.
        #[command(flatten)]
        server: ServerArgs,
        /// Print the JSON answer instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Show the health-check log of one app, oldest first: the newest check is the last line,
    /// where --follow adds new ones (the dashboard lists the newest first).
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
    /// Base URL of the server, e.g. http://192.168.1.10:8080 (http:// is assumed when left out)
    /// [default: found over mDNS]
    #[arg(long, value_name = "URL", env = "HEALTHCHECKER_URL", value_parser = server_url)]
    pub server: Option<Url>,
}

/// `--server`: a base URL, `http://` assumed when no scheme is given (`127.0.0.1:8080`).
///
/// # Errors
///
/// A sentence that shows the form expected, when it is not an http(s) URL with a host.
pub fn server_url(text: &str) -> Result<Url, String> {
    const EXAMPLE: &str = "give the server's URL like http://127.0.0.1:8080";
    let text = text.trim();
    let url = if text.contains("://") {
        Url::parse(text)
    } else {
        Url::parse(&format!("http://{text}"))
    }
    .map_err(|error| format!("{error}; {EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{}` is not a scheme the server speaks; {EXAMPLE}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("no host; {EXAMPLE}"));
    }
    Ok(url)
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
    #[error(
        "cannot reach the server at {server}: {cause}: is it running there? Start it with \
             `healthchecker-server`, or give its address with --server URL"
    )]
    Unreachable {
        /// The server (its origin, `http://host:port`).
        server: String,
        /// What went wrong, in words: `connection refused`, the innermost error otherwise.
        cause: String,
    },
    /// The server does not know the app.
    #[error(
        "the server at {server} has no monitor named {app:?}; see `healthchecker-server list \
             --server {server}` for the ones it has"
    )]
    UnknownApp {
        /// The server.
        server: String,
        /// The name given.
        app: String,
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
    /// `exec`'s command ended with this non-zero status (it said why itself).
    #[error("the command exited with status {0}")]
    Exited(u8),
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Unreachable { url, source } => CliError::Unreachable {
                server: Url::parse(&url).map_or(url, |url| url.origin().ascii_serialization()),
                cause: cause_in_words(source.as_ref()),
            },
            other => CliError::Client(other),
        }
    }
}

/// What went wrong under an HTTP client's error, in the words of its innermost cause
/// (`connection refused`, `dns error: ...`), which the client's own message hides.
fn cause_in_words(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    let mut current = Some(error);
    while let Some(inner) = current {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                std::io::ErrorKind::TimedOut => return "no answer (timed out)".to_owned(),
                _ => {}
            }
        }
        innermost = inner;
        current = inner.source();
    }
    let text = innermost.to_string();
    if text.to_ascii_lowercase().contains("connection refused") {
        "connection refused".to_owned()
    } else {
        text
    }
}

/// A 404 about `app` as the command line says it: which server, and how to see what it has.
fn unknown_app(error: CliError, api: &ApiClient, app: &AppName) -> CliError {
    match error {
        CliError::Client(ClientError::Rejected { status: 404, .. })
        | CliError::Client(ClientError::NotMonitored { .. }) => CliError::UnknownApp {
            server: api.url().as_str().trim_end_matches('/').to_owned(),
            app: app.as_str().to_owned(),
        },
        other => other,
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
                    writeln!(out, "{}", log_line(check, &chrono::Local))
                }
            };
            // Following: the live stream is open before the log is read, so no check falls
            // between the two; one that is in both is printed once (by its time).
            let mut live = if follow {
                Some(
                    api.follow(&app)
                        .await
                        .map_err(|error| unknown_app(error.into(), &api, &app))?,
                )
            } else {
                None
            };
            let mut checks = api
                .log(&app, limit)
                .await
                .map_err(|error| unknown_app(error.into(), &api, &app))?;
            // after the first answer: an error is then the only thing printed
            if !json {
                writeln!(out, "{}", log_header())?;
            }
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
            let monitor = api
                .maintenance(&app, window)
                .await
                .map_err(|error| unknown_app(error.into(), &api, &app))?;
            match (monitor.maintenance_until, &monitor.maintenance_reason) {
                (Some(until), reason) => writeln!(
                    out,
                    "{app}: in maintenance until {}{}",
                    until
                        .with_timezone(&chrono::Local)
                        .format("%Y-%m-%d %H:%M %:z"),
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
        return writeln!(out, "no monitors");
    }
    let rows: Vec<[String; 6]> = monitors
        .iter()
        .map(|monitor| {
            let state = if monitor.paused {
                format!("{} (paused)", monitor.state)
            } else {
                monitor.state.to_string()
            };
            let (last, latency) = match &monitor.last_check {
                Some(check) => (
                    format!("{} {}", ago(check.time, now), result(check)),
                    latency(check),
                ),
                None => ("not yet".to_owned(), "-".to_owned()),
            };
            let since = monitor
                .since
                .map_or_else(|| "-".to_owned(), |since| ago(since, now));
            let kind = if monitor.source == "config" {
                format!("{} (config)", monitor.kind)
            } else {
                monitor.kind.clone()
            };
            [monitor.app.clone(), kind, state, last, latency, since]
        })
        .collect();
    let header = ["NAME", "KIND", "STATE", "LAST CHECK", "LATENCY", "SINCE"].map(str::to_owned);
    let mut widths = [0; 6];
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

/// What a check said, each word once: `ok` for a pass, else `fail: connect`, `warn: body_warn`.
fn result(check: &CheckRecord) -> String {
    match check.outcome {
        healthchecker_client::CheckOutcome::Pass => "ok".to_owned(),
        outcome => format!("{outcome}: {}", check.reason),
    }
}

/// The latency of a check, or `-` for a connection that never opened (refused, unreachable, an
/// unknown name): its time says nothing about the app.
fn latency(check: &CheckRecord) -> String {
    if matches!(check.reason.as_str(), "connect" | "dns") {
        "-".to_owned()
    } else {
        format!("{:.1} ms", check.latency_ms)
    }
}

/// The widths of the log's columns, header and rows alike.
const LOG_FORMAT: [usize; 5] = [25, 18, 6, 9, 9];

/// The header row of `log`, like `list`'s; the times are local, with their UTC offset.
fn log_header() -> String {
    log_row(["TIME", "RESULT", "STATUS", "LATENCY", "STATE", "DETAIL"].map(str::to_owned))
}

fn log_row(cells: [String; 6]) -> String {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(LOG_FORMAT) {
        line.push_str(cell);
        line.extend(std::iter::repeat_n(
            ' ',
            (width + 2).saturating_sub(cell.width()).max(1),
        ));
    }
    line.push_str(&cells[5]);
    line.trim_end().to_owned()
}

/// One check as a row of `log`, its time in `tz` with the UTC offset.
fn log_line<Tz>(check: &CheckRecord, tz: &Tz) -> String
where
    Tz: chrono::TimeZone,
    Tz::Offset: std::fmt::Display,
{
    log_row([
        check
            .time
            .with_timezone(tz)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        result(check),
        check
            .http_status
            .map_or_else(|| "-".to_owned(), |status| status.to_string()),
        latency(check),
        check.state.to_string(),
        detail(check),
    ])
}

/// What a check said besides its result; for a body that is not a health answer, the size and
/// hash the server kept instead of it. A push monitor's detail is a job's output: one line of it
/// here.
fn detail(check: &CheckRecord) -> String {
    let text: String = check
        .detail
        .as_deref()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let text = text.trim_end().to_owned();
    match &check.body_digest {
        Some(digest) => format!("{text}  [body {} bytes, hash {}]", digest.size, digest.hash)
            .trim_start()
            .to_owned(),
        None => text,
    }
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
             "state": "UNKNOWN", "paused": true},
            {"app": "router", "kind": "icmp", "source": "config", "url": "icmp://10.0.0.1", "interval": 10, "timeout": 5,
             "unhealthy": 2, "healthy": 4, "state": "UNHEALTHY", "since": "2026-01-01T00:09:00Z",
             "last_check": {"time": "2026-01-01T00:09:55Z", "outcome": "fail", "reason": "no_reply", "latency_ms": 5000.0, "state": "UNHEALTHY"}}
        ]))
        .expect("monitors");
        let mut out = Vec::new();
        write_table(&mut out, &monitors, now).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let expected = "\
NAME          KIND           STATE             LAST CHECK              LATENCY    SINCE
nas           http           HEALTHY           2 s ago ok              1.2 ms     5 min ago
media-center  http           UNKNOWN (paused)  not yet                 -          -
router        icmp (config)  UNHEALTHY         5 s ago fail: no_reply  5000.0 ms  1 min ago
";
        assert_eq!(text, expected);
    }

    /// Issue 23: `log` has a header like `list`, says each word once, and shows no latency
    /// for a connection that never opened.
    #[test]
    fn log_rows_line_up_under_their_header() {
        let checks: Vec<CheckRecord> = serde_json::from_value(serde_json::json!([
            {"time": "2026-01-01T00:09:58Z", "outcome": "pass", "reason": "ok", "http_status": 200,
             "latency_ms": 1.25, "state": "HEALTHY"},
            {"time": "2026-01-01T00:10:08Z", "outcome": "fail", "reason": "connect",
             "latency_ms": 0.4, "state": "DEGRADED", "detail": "connection refused"}
        ]))
        .expect("checks");
        let tz = chrono::FixedOffset::east_opt(3600).expect("offset");
        let text: Vec<String> = std::iter::once(log_header())
            .chain(checks.iter().map(|check| log_line(check, &tz)))
            .collect();
        assert_eq!(
            text.join("\n"),
            "\
TIME                       RESULT              STATUS  LATENCY    STATE      DETAIL
2026-01-01 01:09:58 +01:00 ok                  200     1.2 ms     HEALTHY
2026-01-01 01:10:08 +01:00 fail: connect       -       -          DEGRADED   connection refused"
        );
    }

    #[test]
    fn server_urls_without_a_scheme_get_http() {
        for (given, url) in [
            ("127.0.0.1:8080", "http://127.0.0.1:8080/"),
            ("localhost:8080", "http://localhost:8080/"),
            ("http://nas.lan:8080", "http://nas.lan:8080/"),
            ("https://hc.example.com", "https://hc.example.com/"),
        ] {
            assert_eq!(server_url(given).expect(given).as_str(), url);
        }
        for bad in ["ftp://nas.lan", "http://", "::::"] {
            let error = server_url(bad).expect_err(bad);
            assert!(
                error.contains("like http://127.0.0.1:8080"),
                "{bad}: {error}"
            );
        }
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
