//! `healthchecker-server`: turns the command line into a [`Config`], starts logging, binds the
//! listener and hands over to [`healthchecker_server::run`].

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use healthchecker_server::Config;
use healthchecker_server::admin::{self, AdminCommand};
use healthchecker_server::cli::{self, Cli, Command};
use healthchecker_server::config::ServeArgs;
use healthchecker_server::datadir::{DataDirLock, LockError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    match cli.command {
        Some(Command::Admin(command)) => return run_admin(command),
        Some(Command::Exec(args)) => return run_exec(args),
        Some(command) => return run_command(command),
        None => {}
    }
    let config = match Config::load(&cli.serve) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("healthchecker-server: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    // One server per data folder: taken before anything of the server starts (the port too, so
    // a leftover server on the same port is named as the folder's holder), held until it stopped.
    let _data_dir = match DataDirLock::acquire(&config.data_dir) {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!("healthchecker-server: {error}");
            // Another server on the folder is a refused start, like a bad option.
            return match error {
                LockError::Held { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            };
        }
    };
    // The port too, before anything logs: one taken is a refused start like a bad option.
    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(error) => {
            let why = match error.kind() {
                std::io::ErrorKind::AddrInUse => "the port is in use; is another server using it? \
                     Choose another with --port"
                    .to_owned(),
                std::io::ErrorKind::AddrNotAvailable => {
                    format!("{error}; --bind-addr must be an address of this machine (or 0.0.0.0)")
                }
                std::io::ErrorKind::PermissionDenied => {
                    format!("{error}; ports below 1024 need privileges: choose another with --port")
                }
                _ => error.to_string(),
            };
            eprintln!("healthchecker-server: cannot listen on {addr}: {why}");
            return ExitCode::from(2);
        }
    };
    check_open_file_limit(&config);
    match serve(config, cli.serve, listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `check-config`, `completions` or `man`: no server, no runtime; output to stdout.
fn run_admin(command: AdminCommand) -> ExitCode {
    match admin::run(command, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthchecker-server: {error}");
            ExitCode::from(error.exit_status())
        }
    }
}

/// Runs `exec`: the command's own exit status is the wrapper's.
fn run_exec(args: cli::ExecArgs) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => ExitCode::from(runtime.block_on(cli::exec(args))),
        Err(error) => {
            eprintln!("healthchecker-server exec: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a subcommand that talks to a running server; its output goes to stdout.
fn run_command(command: Command) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(|error| error.to_string())
        .and_then(|runtime| {
            runtime
                .block_on(cli::run(command, &mut std::io::stdout()))
                .map_err(|error| error.to_string())
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthchecker-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at the level the options ask for; `RUST_LOG`, when set, wins.
fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log_level.filter_directive()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Open files the server needs besides its connections to the apps: the database, its WAL and
/// readers, the listener, API clients, mail, mDNS.
const FILES_BESIDES_APPS: u64 = 128;

/// Raises the soft open-file limit to the hard one, as Go programs do at start: every monitored
/// app may hold a kept-alive connection, and with a soft limit of 1,024 (the usual default) the
/// probe would have to close and reopen connections past about a thousand apps. Warns when even
/// the hard limit is short of `max_monitors`.
fn check_open_file_limit(config: &Config) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    let limit = getrlimit(Resource::Nofile);
    // No hard limit at all: ask for a generous one (Linux refuses "unlimited").
    let wanted = limit.maximum.unwrap_or(1 << 20);
    let current = match limit.current {
        Some(current) if current < wanted => {
            let raised = Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => wanted,
                Err(error) => {
                    tracing::debug!(%error, "cannot raise the open-file limit from {current}");
                    current
                }
            }
        }
        Some(current) => current,
        None => return,
    };
    let needed = u64::try_from(config.max_monitors)
        .unwrap_or(u64::MAX)
        .saturating_add(FILES_BESIDES_APPS);
    if current < needed {
        tracing::warn!(
            "the open-file limit is {current}, and each monitored app may keep a connection open: \
             past about {} apps connections are closed and opened again to make room (more work \
             per check) (max_monitors is {}). \
             Raise the hard limit: `ulimit -Hn {needed}` as root, or LimitNOFILE={needed} in a systemd unit",
            current.saturating_sub(FILES_BESIDES_APPS),
            config.max_monitors,
        );
    } else {
        tracing::debug!("open-file limit {current}");
    }
}

fn serve(config: Config, args: ServeArgs, listener: std::net::TcpListener) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let reloads = reload_requests(args)?;
        listener
            .set_nonblocking(true)
            .context("cannot use the listening socket")?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .context("cannot use the listening socket")?;
        healthchecker_server::server::run_with_reloads(config, listener, shutdown, reloads).await?;
        Ok(())
    })
}

/// Listens for SIGINT (Ctrl-C) and SIGTERM now, so that a signal arriving at any moment after
/// start-up is a clean shutdown; the returned future completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

/// Listens for SIGHUP (`systemctl reload`, the unit's `ExecReload`) now, so that one arriving at
/// any moment after start-up is a reload rather than the end of the process: each one reads the
/// configuration again, as at start (command line > environment > config file), and hands the
/// result to the server, which takes its `[[monitor]]` tables or logs why not.
fn reload_requests(args: ServeArgs) -> anyhow::Result<healthchecker_server::server::Reloads> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let (sender, reloads) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again");
            let args = args.clone();
            let loaded = tokio::task::spawn_blocking(move || Config::load(&args)).await;
            let Ok(loaded) = loaded else { break };
            if sender.send(loaded).await.is_err() {
                break;
            }
        }
    });
    Ok(reloads)
}
