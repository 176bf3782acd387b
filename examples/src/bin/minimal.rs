//! The product's story in its two lines: find the server, ask to be monitored; stop on exit.
//!
//! Serves `/health` on a free port of every address and registers this host's LAN address.
//! The server is found over mDNS, or at `HEALTHCHECKER_URL` when that is set.

use healthchecker_client::{HealthCheckResponse, HealthCheckerServer, Monitor};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { HealthCheckResponse::new() }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The two lines:
    let server = HealthCheckerServer::discover(
        "media-center",
        format!("http://{}:{port}", iputils::my_ip_addr()?),
    )
    .await?;
    server
        .monitor(
            Monitor::new()
                .email("me@example.com")
                .interval(10)
                .unhealthy(2)
                .healthy(4),
        )
        .await?;

    println!(
        "monitored by healthchecker at {}; Ctrl-C to stop",
        server.url()
    );
    tokio::signal::ctrl_c().await?;
    server.stop().await?; // on clean shutdown: unregistered, no alert
    Ok(())
}
