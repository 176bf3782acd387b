//! `healthchecker-bench`: see the crate documentation of `healthchecker_bench`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use healthchecker_bench::{Args, default_deadline, farm, run, server};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(spec) = &args.farm_part {
        return farm_part(args.monitors, spec);
    }
    // Built before the clock starts: a first release build takes minutes, the run does not.
    let binary = match server::locate(args.server.as_deref()) {
        Ok(binary) => binary,
        Err(error) => {
            eprintln!("healthchecker-bench: {error:#}");
            return ExitCode::from(2);
        }
    };
    let deadline = Duration::from_secs(args.deadline.unwrap_or_else(|| default_deadline(&args)));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("healthchecker-bench: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = tokio::time::timeout(deadline, run(&args, &binary, deadline)) => match result {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("the run passed its hard deadline of {deadline:?}")),
            },
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    // The server process was stopped when `run`'s future was dropped.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("healthchecker-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// One part of a farm split over processes: serves until its parent closes its standard input.
fn farm_part(targets: usize, spec: &str) -> ExitCode {
    let served = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(farm::split::serve_part(targets, spec)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("healthchecker-bench farm part {spec}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
