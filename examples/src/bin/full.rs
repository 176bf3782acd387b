//! The original's "full example" in Rust: a web app that serves `/health`, registers itself with
//! the healthchecker server on start, and unregisters on Ctrl-C or SIGTERM before exiting.
//!
//! ```sh
//! HEALTHCHECKER_URL=http://127.0.0.1:8080 example-app --bind 127.0.0.1 --email me@example.com
//! ```

use anyhow::Context;
use clap::Parser;
use healthchecker_client::{HealthCheckerServer, Monitor};
use healthchecker_examples::{Options, health_router, periodic_job, public_url, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    // Bind first (port 0 = any free port, without find_free_port's race), then tell the
    // server the port we really got.
    let listener = tokio::net::TcpListener::bind((options.bind, options.port))
        .await
        .with_context(|| format!("cannot serve on {}:{}", options.bind, options.port))?;
    let local = listener.local_addr()?;
    let url = public_url(options.public_url.as_deref(), local)
        .context("cannot tell this app's URL; set --public-url or EXAMPLE_PUBLIC_URL")?;

    // Serve before registering, so the server's first check finds us up.
    let (stop_serving, serving_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = health_router(&options.app);
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = serving_stopped.await;
            })
            .await
    });
    println!("serving on {local}, reachable at {url}");

    let server = match &options.server {
        Some(server) => HealthCheckerServer::at(server, &options.app, &url)?,
        None => HealthCheckerServer::discover(&options.app, &url).await?,
    };
    // Register that we want to be monitored.
    server
        .monitor(
            Monitor::new()
                .email(&options.email)
                .interval(10)
                .unhealthy(2)
                .healthy(4),
        )
        .await
        .context("cannot register with the healthchecker server")?;
    println!("registered with healthchecker at {}", server.url());

    // A small periodic job that reports in (a push monitor): here it counts the files of the
    // temporary folder; a real app would clean a cache, renew a token, back up a database.
    let job = match options.job_every {
        Some(seconds) => Some(
            periodic_job(
                server.url().as_str(),
                &options.app,
                std::time::Duration::from_secs(seconds.max(60)),
                || async {
                    let entries = std::fs::read_dir(std::env::temp_dir())
                        .map_err(|error| format!("cannot read the temporary folder: {error}"))?;
                    Ok(format!(
                        "{} entries in the temporary folder",
                        entries.count()
                    ))
                },
            )
            .await
            .context("cannot register the periodic job")?,
        ),
        None => None,
    };

    shutdown_signal().await;
    if let Some(job) = job {
        job.abort();
    }

    // Stop being monitored first, so stopping the web server raises no alert.
    let stopped = server.stop().await;
    let _ = stop_serving.send(());
    serving.await??;
    stopped.context("cannot unregister from the healthchecker server")?;
    println!("unregistered");
    Ok(())
}
