//! Running a server: wiring the parts together, serving, and shutting down in order.
//!
//! Shutdown is a protocol, not an abort: when the `shutdown` future completes, the listener stops
//! accepting, in-flight requests get [`SHUTDOWN_GRACE`] to finish, and background tasks are cancelled
//! through one [`CancellationToken`] and awaited through one [`TaskTracker`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState};
use crate::config::Mdns;
use crate::discovery::{AdvertiseOptions, Advertiser, SERVICE_TYPE};
use crate::monitors::{Monitors, MonitorsOptions, Parts};
use crate::notify::{Notifier, NotifyError};
use crate::probe::Prober;
use crate::store::{Store, StoreError, StoreOptions};
use crate::{Config, VERSION};

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
    /// The database cannot be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client for the checks cannot be built.
    #[error("cannot build the HTTP client for checks: {0}")]
    Prober(String),
    /// Mail cannot be sent as configured.
    #[error(transparent)]
    Notify(#[from] NotifyError),
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

    let store = Store::open(&config.data_dir, StoreOptions::from(&config))?;
    let loaded = store.load_monitors()?;
    tracing::info!(
        "database {}: {} monitor(s) loaded",
        config.data_dir.join(crate::store::FILE_NAME).display(),
        loaded.len()
    );
    let prober = Prober::new().map_err(|error| ServerError::Prober(error.to_string()))?;
    let (events, transitions) = mpsc::unbounded_channel();
    let notifier = Notifier::spawn(
        &config,
        store.clone(),
        server_url(addr),
        transitions,
        cancel.clone(),
        &tasks,
    )?;
    let mail = notifier.describe().to_owned();
    let parts = Parts {
        store: store.clone(),
        checker: Arc::new(prober),
        events,
        notifier: Some(notifier),
        cancel: cancel.clone(),
        tasks: tasks.clone(),
    };
    let monitors = Monitors::start(
        parts,
        loaded,
        MonitorsOptions {
            max_monitors: config.max_monitors,
            ..MonitorsOptions::default()
        },
    );
    let advertiser = advertise(&config, addr.port());
    // The line users (and tests) wait for: everything is up, and this is where.
    tracing::info!(
        "healthchecker-server {VERSION} listening on http://{addr} (config file: {}; data: {}; mail: {mail})",
        config
            .config_file
            .as_ref()
            .map_or_else(|| "none".to_owned(), |path| path.display().to_string()),
        config.data_dir.display(),
    );

    let state = AppState::new(Arc::new(config), monitors, store.clone());

    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            cancel.cancel();
        });
    }

    let serve = axum::serve(
        listener,
        api::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(cancel.clone().cancelled_owned());
    let serve = tokio::spawn(async move { serve.await });
    let result = tokio::select! {
        result = serve => result.unwrap_or_else(|join| Err(io::Error::other(join))),
        () = async { cancel.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; closing them");
            Ok(())
        }
    };

    if let Some(advertiser) = advertiser {
        advertiser.shutdown().await;
    }
    cancel.cancel();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish within {SHUTDOWN_GRACE:?}");
    }
    // Last: the checks and mail of the tasks above are written before the file is closed.
    if let Err(error) = store.close().await {
        tracing::error!("closing the database: {error}");
    }
    tracing::info!("stopped");
    result.map_err(|source| ServerError::Serve { addr, source })
}

/// Starts advertising over mDNS unless it is off; a failure is logged and the API serves on.
fn advertise(config: &Config, port: u16) -> Option<Advertiser> {
    let Mdns::On { interfaces } = &config.mdns else {
        return None;
    };
    let options = AdvertiseOptions {
        interfaces: interfaces.clone(),
        auth_token: config.token.is_some(),
        ..AdvertiseOptions::new(port)
    };
    match Advertiser::start(&options) {
        Ok(advertiser) => {
            tracing::info!(
                "advertised over mDNS as {:?} ({SERVICE_TYPE})",
                advertiser.instance()
            );
            Some(advertiser)
        }
        Err(error) => {
            tracing::warn!(
                "mDNS discovery is off: {error}; clients need --server or HEALTHCHECKER_URL"
            );
            None
        }
    }
}

/// This server's base URL as a user on the LAN would type it, for the stop instructions in mail.
fn server_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        iputils::my_ip_addr().map_or_else(|_| hostname(), |ip| ip.to_string())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}

/// The name this server goes by on the LAN: `healthchecker on <hostname>`.
pub fn service_name() -> String {
    format!("healthchecker on {}", hostname())
}

/// This machine's host name, or `localhost` when it has none.
fn hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
