//! Running a server: wiring the parts together, serving, and shutting down in order.
//!
//! Shutdown is a protocol, not an abort: when the `shutdown` future completes, the listener stops
//! accepting, in-flight requests get [`SHUTDOWN_GRACE`] to finish, and background tasks are cancelled
//! through one [`CancellationToken`] and awaited through one [`TaskTracker`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::api::{self, AppState};

/// How long in-flight requests and background tasks get to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A fault of the server itself (never of a monitored app) that stops it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Serving the HTTP API failed.
    #[error("HTTP server failed on {addr}: {source}")]
    Serve {
        /// The address being served.
        addr: SocketAddr,
        /// The I/O error.
        source: io::Error,
    },
    /// The listener has no local address (it is not bound).
    #[error("the listener is not bound: {0}")]
    Listener(io::Error),
}

/// Serves the API on `listener` with `config` until `shutdown` completes, then shuts down in order.
///
/// # Errors
///
/// [`ServerError`] when the listener fails; a monitored app's failures are never errors here.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().map_err(ServerError::Listener)?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let state = AppState {
        config: Arc::new(config),
        started: Instant::now(),
        service_id: service_name(),
    };

    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            cancel.cancel();
        });
    }

    let serve = axum::serve(listener, api::router(state))
        .with_graceful_shutdown(cancel.clone().cancelled_owned());
    let serve = tokio::spawn(async move { serve.await });
    let result = tokio::select! {
        result = serve => result.unwrap_or_else(|join| Err(io::Error::other(join))),
        () = async { cancel.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; closing them");
            Ok(())
        }
    };

    cancel.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish within {SHUTDOWN_GRACE:?}");
    }
    tracing::info!("stopped");
    result.map_err(|source| ServerError::Serve { addr, source })
}

/// The name this server goes by on the LAN: `healthchecker on <hostname>`.
pub fn service_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("healthchecker on {host}")
}
