//! Example apps that register themselves with a healthchecker server, and the pieces they share.
//!
//! # Layout
//!
//! * this file: [`health_router`] (an axum app whose `/health` answers with
//!   [`HealthCheckResponse`]), [`Options`] (the full example's command line), [`public_url`]
//!   (the URL the server should poll) and [`shutdown_signal`] (Ctrl-C or SIGTERM).
//! * `src/bin/full.rs` (binary `example-app`): the original's "full example": serve `/health`,
//!   register on start, unregister on Ctrl-C or SIGTERM.
//! * `src/bin/minimal.rs` (binary `minimal`): the two lines of the product's story.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::routing::get;
use healthchecker_client::{HealthCheckResponse, HealthStatus};

/// The full example's command line; every option can also come from the environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "example-app",
    about = "A web app that registers itself with a healthchecker server and unregisters on exit"
)]
pub struct Options {
    /// The name the app is monitored under.
    #[arg(long, env = "EXAMPLE_APP", default_value = "Sample HealthChecker App")]
    pub app: String,

    /// The address to serve on.
    #[arg(long, env = "EXAMPLE_BIND_ADDR", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// The port to serve on; 0 takes any free port.
    #[arg(long, env = "EXAMPLE_PORT", default_value_t = 0)]
    pub port: u16,

    /// The URL the healthchecker server reaches this app at (its base; `/health` is appended).
    /// Default: `http://<bind address>:<port>`, or this host's LAN address when serving on
    /// every address (0.0.0.0). Set it behind NAT, in a container, or to a loopback URL in tests.
    #[arg(long, env = "EXAMPLE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Who gets mail when the app's state changes.
    #[arg(long, env = "EXAMPLE_EMAIL", default_value = "me@example.com")]
    pub email: String,

    /// The healthchecker server's URL. Default: `HEALTHCHECKER_URL`, then discovery.
    #[arg(long)]
    pub server: Option<String>,

    /// Also run a small periodic job every this many seconds (60 or more) that reports in as
    /// the push monitor `<app> job` (a missed or failed run is mailed). Default: no job.
    #[arg(long, env = "EXAMPLE_JOB_EVERY", value_name = "SECONDS")]
    pub job_every: Option<u64>,
}

/// The example's periodic job: registers the push monitor `<app> job` expecting a run every
/// `every` (grace: one more period), then runs `job` at that rate between its start and its
/// result, until the task is dropped.
///
/// # Errors
///
/// When the push monitor cannot be registered.
pub async fn periodic_job<F, Fut>(
    server_url: &str,
    app: &str,
    every: std::time::Duration,
    mut job: F,
) -> Result<tokio::task::JoinHandle<()>, healthchecker_client::Error>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<String, String>> + Send,
{
    let api = healthchecker_client::api::ApiClient::new(server_url)?;
    let name = healthchecker_client::AppName::parse(&format!("{app} job"))?;
    let heartbeat = api
        .push(
            &name,
            &healthchecker_client::PushMonitor::every(every).grace(every),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            match heartbeat.run(job()).await {
                Ok(Ok(done)) => tracing::info!("job done: {done}"),
                Ok(Err(failed)) => tracing::warn!("job failed: {failed}"),
                Err(error) => tracing::warn!("job ran, but could not report: {error}"),
            }
        }
    }))
}

/// An axum app whose `GET /health` answers `pass` with `description` set to `app_name`.
///
/// # Examples
///
/// ```
/// let app = healthchecker_examples::health_router("media-center");
/// ```
pub fn health_router(app_name: &str) -> Router {
    let app_name = app_name.to_owned();
    Router::new().route(
        "/health",
        get(move || {
            let app_name = app_name.clone();
            async move {
                HealthCheckResponse::new()
                    .description(app_name)
                    .status(HealthStatus::Pass)
            }
        }),
    )
}

/// The URL the healthchecker server should poll this app at.
///
/// `explicit` wins. Otherwise, serving on one address (`127.0.0.1`, `192.168.1.20`, ...) gives
/// `http://<that address>:<port>`; serving on every address (`0.0.0.0`, `::`) gives this host's
/// LAN address from [`iputils::my_ip_addr`].
///
/// # Errors
///
/// When serving on every address and this host has no LAN address: set the URL explicitly.
///
/// # Examples
///
/// ```
/// let local: std::net::SocketAddr = "127.0.0.1:9090".parse()?;
/// assert_eq!(healthchecker_examples::public_url(None, local)?, "http://127.0.0.1:9090");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn public_url(explicit: Option<&str>, local: SocketAddr) -> Result<String, iputils::Error> {
    if let Some(url) = explicit {
        return Ok(url.to_owned());
    }
    if local.ip().is_unspecified() {
        let ip = iputils::my_ip_addr()?;
        Ok(format!("http://{ip}:{}", local.port()))
    } else {
        // SocketAddr's Display brackets IPv6 addresses, as URLs need.
        Ok(format!("http://{local}"))
    }
}

/// Completes on Ctrl-C, or on SIGTERM on Unix (what `docker stop` and systemd send).
///
/// # Examples
///
/// ```no_run
/// # async fn run() {
/// healthchecker_examples::shutdown_signal().await;
/// println!("shutting down");
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_answers_pass_with_the_app_name() {
        let response = health_router("Sample HealthChecker App")
            .oneshot(
                Request::get("/health")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/health+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            br#"{"status":"pass","description":"Sample HealthChecker App"}"#
        );
    }

    #[test]
    fn public_url_table() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert_eq!(
            public_url(Some("http://nas.local:1"), addr("0.0.0.0:9")).expect("url"),
            "http://nas.local:1"
        );
        assert_eq!(
            public_url(None, addr("127.0.0.1:9090")).expect("url"),
            "http://127.0.0.1:9090"
        );
        assert_eq!(
            public_url(None, addr("[::1]:9090")).expect("url"),
            "http://[::1]:9090"
        );
    }
}
