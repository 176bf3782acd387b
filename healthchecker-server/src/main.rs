//! `healthchecker-server`: turns the command line into a [`Config`], starts logging, binds the
//! listener and hands over to [`healthchecker_server::run`].

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use healthchecker_server::Config;
use healthchecker_server::cli::Cli;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.serve) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("healthchecker-server: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
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

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let addr = SocketAddr::new(config.bind_addr, config.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr}; is another server using the port? Choose another with --port")
        })?;
        let local = listener.local_addr().context("cannot read the bound address")?;
        tracing::info!(
            "healthchecker-server {} listening on http://{local} (config file: {}; data: {}; mail: {})",
            healthchecker_server::VERSION,
            config
                .config_file
                .as_ref()
                .map_or_else(|| "none".to_owned(), |path| path.display().to_string()),
            config.data_dir.display(),
            match (&config.smtp_url, config.test_mode) {
                (_, true) => "test mode, written to the log".to_owned(),
                (None, false) => "no smtp_url, written to the log".to_owned(),
                (Some(url), false) => format!("via {url}"),
            },
        );
        healthchecker_server::run(config, listener, shutdown).await?;
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
