//! Running a server: wiring the parts together, serving, and shutting down in order.
//!
//! Shutdown is a protocol, in stages, each logged at debug level, when the `shutdown` future
//! completes:
//!
//! 1. **Stop accepting changes**: the listener closes; requests in flight get [`REQUEST_GRACE`].
//! 2. **Stop the checks**: the scheduler starts no new check; checks in flight get
//!    [`CHECK_GRACE`] to finish (failing checks are the slow ones), and their results, with the
//!    transitions and messages they cause, are written as one unit. A check still running after
//!    that is dropped whole: it records nothing, so no transition is kept without its messages.
//! 3. **Deliver what is due**: the delivery worker finishes the attempt in progress and makes one
//!    last round within [`crate::notify::FLUSH_DEADLINE`]; what is left stays in the outbox.
//! 4. **Say goodbye on mDNS.**
//! 5. **Close the store** last: everything above is written before the file is closed.
//!
//! Each stage has its own [`CancellationToken`] and [`TaskTracker`], so it waits only for its own
//! tasks.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alerting::Rules;
use crate::alerting::storm::StormRules;
use crate::api::{self, AppState};
use crate::config::Mdns;
use crate::config::channel::Routes;
use crate::discovery::{AdvertiseOptions, Advertiser, SERVICE_TYPE};
use crate::http::{self, ServeOptions};
use crate::identity::Identity;
use crate::legacy;
use crate::monitors::{Monitors, MonitorsOptions, Parts};
use crate::notify::{Notifier, NotifyError};
use crate::probe::{Prober, ProberError};
use crate::store::{Store, StoreError, StoreOptions};
use crate::{Config, VERSION};

/// How long requests in flight get to finish once shutdown starts.
pub const REQUEST_GRACE: Duration = Duration::from_secs(5);

/// How long checks in flight get to finish once shutdown starts.
pub const CHECK_GRACE: Duration = Duration::from_secs(10);

/// The longest a shutdown takes, all stages included (the delivery round adds at most
/// [`crate::notify::FLUSH_DEADLINE`] and the mDNS goodbye about a second).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

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
    Listener(#[source] io::Error),
    /// The database cannot be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client for the checks cannot be built.
    #[error("cannot build the HTTP client for checks: {0}")]
    Prober(#[from] ProberError),
    /// Mail cannot be sent as configured.
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// The stages of shutdown that have tasks of their own (see the module documentation).
struct Stage {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Stage {
    fn new() -> Stage {
        Stage {
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Stops the stage and waits up to `grace` for its tasks; false when some are still running.
    async fn end(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
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
    let identity = Identity::of_this_host();
    let (api_stop, checks, delivery) = (CancellationToken::new(), Stage::new(), Stage::new());

    let store = Store::open(&config.data_dir, StoreOptions::from(&config))?;
    let loaded = store.load_monitors()?;
    tracing::info!(
        "database {}: {} monitor(s) loaded",
        config.data_dir.join(crate::store::FILE_NAME).display(),
        loaded.len()
    );
    let prober = Prober::new()?;
    let notifier = Notifier::spawn(
        &config,
        store.clone(),
        server_url(addr, &identity),
        delivery.stop.clone(),
        &delivery.tasks,
    )?;
    let parts = Parts {
        store: store.clone(),
        checker: Arc::new(prober),
        routes: Arc::new(Routes::new(
            config.channels.clone(),
            config.default_channels.clone(),
            config.admin_email.clone(),
        )),
        windows: config.maintenance.clone(),
        cancel: checks.stop.clone(),
        tasks: checks.tasks.clone(),
    };
    let monitors = Monitors::start(
        parts,
        loaded,
        MonitorsOptions {
            max_monitors: config.max_monitors,
            rules: Rules {
                remind_every: config.remind_every,
                flap_changes: config.flap_changes,
                flap_window: config.flap_window,
            },
            storm: StormRules {
                fraction: config.storm_fraction,
                min: config.storm_min,
            },
            ..MonitorsOptions::default()
        },
    );
    let advertiser = advertise(&config, &identity, addr.port());
    // The line users (and tests) wait for: everything is up, and this is where.
    tracing::info!(
        "healthchecker-server {VERSION} listening on http://{addr} (config file: {}; data: {}; mail: {})",
        config
            .config_file
            .as_ref()
            .map_or_else(|| "none".to_owned(), |path| path.display().to_string()),
        config.data_dir.display(),
        notifier.describe(),
    );

    let state = AppState::new(Arc::new(config), &identity, monitors, store.clone())
        .with_notifier(notifier)
        .with_stop(api_stop.clone());
    {
        // The lateness histogram's samples are folded in now and then, scraped or not.
        let telemetry = store.telemetry().clone();
        let stop = checks.stop.clone();
        checks.tasks.spawn(async move {
            let mut every = tokio::time::interval(crate::telemetry::UPKEEP_EVERY);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => telemetry.upkeep(),
                }
            }
        });
    }
    {
        let api_stop = api_stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            api_stop.cancel();
        });
    }

    let serving = ServeOptions {
        grace: REQUEST_GRACE,
        ..ServeOptions::default()
    };
    let router = api::router_with(state.clone(), legacy::router(&state));
    http::serve(listener, router, api_stop.clone(), &serving).await;
    tracing::debug!("shutdown 1/5: the API accepts nothing more");

    if checks.end(CHECK_GRACE).await {
        tracing::debug!("shutdown 2/5: checks stopped, those in flight finished and recorded");
    } else {
        tracing::warn!(
            "checks still running after {CHECK_GRACE:?} are dropped (nothing of them is recorded)"
        );
    }
    let flush = crate::notify::FLUSH_DEADLINE + Duration::from_secs(1);
    if delivery.end(flush).await {
        tracing::debug!("shutdown 3/5: delivery stopped after a last round");
    } else {
        tracing::warn!("delivery did not stop within {flush:?}");
    }
    if let Some(advertiser) = advertiser {
        advertiser.shutdown().await;
    }
    tracing::debug!("shutdown 4/5: mDNS goodbye sent");
    if let Err(error) = store.close().await {
        tracing::error!("closing the database: {error}");
    }
    tracing::debug!("shutdown 5/5: database closed");
    tracing::info!("stopped");
    Ok(())
}

/// Starts advertising over mDNS unless it is off; a failure is logged and the API serves on.
fn advertise(config: &Config, identity: &Identity, port: u16) -> Option<Advertiser> {
    let Mdns::On { interfaces } = &config.mdns else {
        return None;
    };
    let options = AdvertiseOptions {
        interfaces: interfaces.clone(),
        auth_token: config.token.is_some(),
        legacy: config.legacy,
        ..AdvertiseOptions::new(identity, port)
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
fn server_url(addr: SocketAddr, identity: &Identity) -> String {
    let host = if addr.ip().is_unspecified() {
        iputils::my_ip_addr().map_or_else(|_| identity.host_name.clone(), |ip| ip.to_string())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}
