//! `healthchecker-history-bench`: the history, dashboard and API targets; see
//! `healthchecker_bench::history`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use healthchecker_bench::{history, server};

/// Benchmark the API list, the dashboard's first render and the database size of a year.
#[derive(Debug, Parser)]
#[command(name = "healthchecker-history-bench")]
struct Args {
    #[command(subcommand)]
    what: What,
    /// The server binary [default: built now with cargo, next to this binary].
    #[arg(long, global = true)]
    server: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum What {
    /// `GET /api/v1/monitors` with N monitors being checked (target < 50 ms).
    List {
        #[arg(long, default_value_t = 10_000)]
        monitors: usize,
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Loopback endpoints the monitors' targets share.
        #[arg(long, default_value_t = 100)]
        endpoints: usize,
    },
    /// The dashboard's first render with N monitors, in Chromium (target < 300 ms); run it in
    /// a network namespace.
    Dashboard {
        #[arg(long, default_value_t = 1000)]
        monitors: usize,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long, default_value_t = 100)]
        endpoints: usize,
        /// Checks each monitor has before the page is opened (30 fills every bar).
        #[arg(long, default_value_t = 30)]
        checks: usize,
    },
    /// The database of N monitors after a simulated year (target < 100 MB).
    Database {
        #[arg(long, default_value_t = 100)]
        monitors: usize,
        /// Seconds between checks.
        #[arg(long, default_value_t = 30)]
        interval: u64,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("healthchecker-history-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match args.what {
            What::Database { monitors, interval } => history::database(monitors, interval).await,
            What::List {
                monitors,
                requests,
                endpoints,
            } => {
                let binary = server::locate(args.server.as_deref())?;
                history::list(&binary, monitors, requests, endpoints).await
            }
            What::Dashboard {
                monitors,
                runs,
                endpoints,
                checks,
            } => {
                let binary = server::locate(args.server.as_deref())?;
                history::dashboard(&binary, monitors, runs, endpoints, checks).await
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("healthchecker-history-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}
