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
//!
//! # Reloading
//!
//! [`run_with_reloads`] also takes a stream of configurations read again (the binary reads the
//! config file again on each SIGHUP). The monitors of its `[[monitor]]` tables replace those of
//! the file before ([`Monitors::reconcile`]); a configuration that does not validate, or that
//! the running server cannot take (a monitor naming a channel the server did not start with, an
//! `icmp://` monitor without ICMP sockets, one pointing outside the running `allowed_targets`),
//! changes nothing and the log says why. The other options (channels, mail, the listener,
//! `token`, `read_token`, `allowed_targets`, `max_monitors_per_client`, ...) take effect at the
//! next start; a reload that changes them says so.

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
use crate::config::channel::Routes;
use crate::config::{ConfigError, Mdns};
use crate::discovery::{AdvertiseOptions, Advertiser, SERVICE_TYPE};
use crate::http::{self, ServeOptions};
use crate::identity::Identity;
use crate::legacy;
use crate::monitors::{Monitors, MonitorsOptions, Parts};
use crate::notify::{Notifier, NotifyError};
use crate::probe::{Prober, ProberError, ProberOptions, Targets};
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
    /// A monitor of the config file cannot be taken (an `icmp://` one without ICMP sockets, or
    /// more than `max_monitors`).
    #[error("{0}")]
    Declared(String),
}

/// Configurations read again while the server runs (one per reload request, such as SIGHUP):
/// each a valid configuration, or why the file does not validate.
pub type Reloads = tokio::sync::mpsc::Receiver<Result<Config, ConfigError>>;

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
    let (_keep, reloads) = tokio::sync::mpsc::channel(1);
    run_with_reloads(config, listener, shutdown, reloads).await
}

/// [`run`], taking the monitors of each configuration that arrives on `reloads` (see the
/// [module documentation](self)).
///
/// # Errors
///
/// As [`run`]; also [`ServerError::Declared`] when a monitor of the config file cannot be taken
/// at start.
pub async fn run_with_reloads(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut reloads: Reloads,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().map_err(ServerError::Listener)?;
    let identity = Identity::of_this_host();
    let (api_stop, checks, delivery) = (CancellationToken::new(), Stage::new(), Stage::new());

    let store = match &config.database_url {
        Some(url) => {
            let server = config
                .server_id
                .clone()
                .unwrap_or_else(crate::cluster::default_server_id);
            Store::open_shared(url, StoreOptions::from(&config), &server)?
        }
        None => Store::open(&config.data_dir, StoreOptions::from(&config))?,
    };
    let loaded = store.load_monitors()?;
    tracing::info!(
        "database {}: {} monitor(s) loaded",
        store.path().display(),
        loaded.len()
    );
    let prober = Prober::with_options(ProberOptions {
        allowed_targets: config.allowed_targets.clone(),
        digest_key: Some(store.digest_key()?),
        ..ProberOptions::default()
    })?;
    let targets = prober.targets();
    let file = config
        .config_file
        .as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
    admissible(&config, &config.channels, &|spec| prober.admit(spec))
        .map_err(|why| ServerError::Declared(format!("{why} (config file {file})")))?;
    within_targets(&config, &targets)
        .await
        .map_err(|why| ServerError::Declared(format!("{why} (config file {file})")))?;
    let own_url = config.public_url.as_ref().map_or_else(
        || server_url(addr, &identity),
        |url| url.as_str().trim_end_matches('/').to_owned(),
    );
    let notifier = Notifier::spawn(
        &config,
        store.clone(),
        own_url.clone(),
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
    declare(&monitors, &config, &file).await?;
    let cluster = monitors.server().is_some().then(|| {
        crate::cluster::spawn(
            monitors.clone(),
            store.clone(),
            own_url.clone(),
            checks.stop.clone(),
            &checks.tasks,
        )
    });
    let advertiser = advertise(&config, &identity, addr.port());
    // The line users (and tests) wait for: everything is up, and this is where.
    tracing::info!(
        "healthchecker-server {VERSION} listening on http://{addr} (config file: {}; data: {}; mail: {})",
        config
            .config_file
            .as_ref()
            .map_or_else(|| "none".to_owned(), |path| path.display().to_string()),
        config.database_url.as_ref().map_or_else(
            || config.data_dir.display().to_string(),
            ToString::to_string
        ),
        notifier.describe(),
    );

    if let Some(allowed) = &config.allowed_targets {
        tracing::info!("monitors may point only at {allowed} (allowed_targets)");
    }
    let config = Arc::new(config);
    let state = AppState::new(
        Arc::clone(&config),
        &identity,
        monitors.clone(),
        store.clone(),
    )
    .with_notifier(notifier)
    .with_cluster(cluster)
    .with_targets(targets.clone())
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
    {
        let api_stop = api_stop.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = api_stop.cancelled() => break,
                    next = reloads.recv() => next,
                };
                match next {
                    Some(next) => reload(&monitors, &targets, &config, next).await,
                    None => break,
                }
            }
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

/// Takes the monitors of the config file (`file`) at start (they were found admissible).
async fn declare(monitors: &Monitors, config: &Config, file: &str) -> Result<(), ServerError> {
    if config.monitors.is_empty()
        && !monitors
            .list()
            .iter()
            .any(|monitor| monitor.source == crate::registry::Source::Config)
    {
        return Ok(());
    }
    let done = monitors
        .reconcile(&config.monitors)
        .await
        .map_err(|error| ServerError::Declared(format!("[[monitor]] tables of {file}: {error}")))?;
    tracing::info!(
        "config file {file}: {} monitor(s) declared: {done}",
        config.monitors.len()
    );
    Ok(())
}

/// Why the running server cannot take the monitors of `config`: one naming a channel that is not
/// among `channels` (those the server runs with), or one that `admit` says cannot be checked.
fn admissible(
    config: &Config,
    channels: &[crate::config::channel::Channel],
    admit: &dyn Fn(&crate::registry::MonitorSpec) -> Result<(), crate::registry::FieldError>,
) -> Result<(), String> {
    for declared in &config.monitors {
        if let Some(error) = declared
            .spec
            .unknown_channel(channels.iter().map(|c| c.name.as_str()))
        {
            return Err(format!(
                "[[monitor]] {}: `notify` {} is not a channel this server runs with ({}); \
                 channels added to the file take effect at the next start",
                declared.name, error.value, error.expected
            ));
        }
        if let Err(error) = admit(&declared.spec) {
            return Err(format!(
                "[[monitor]] {}: `{}` {}: {}",
                declared.name, error.field, error.value, error.expected
            ));
        }
    }
    Ok(())
}

/// Why the monitors of `config` cannot be taken under the running server's `allowed_targets`
/// (`targets`): one whose URL points outside, as a registration over the API would be refused.
async fn within_targets(config: &Config, targets: &Targets) -> Result<(), String> {
    for declared in &config.monitors {
        if let Err(error) = targets.admit(&declared.spec).await {
            return Err(format!(
                "[[monitor]] {}: `{}` {}: {}",
                declared.name, error.field, error.value, error.expected
            ));
        }
    }
    Ok(())
}

/// Takes the monitors of a configuration read again; logs what changed, or why nothing did.
/// Declared monitors are held to the running `allowed_targets` (`targets`), as at start.
async fn reload(
    monitors: &Monitors,
    targets: &Targets,
    running: &Config,
    next: Result<Config, ConfigError>,
) {
    let next = match next {
        Ok(next) => next,
        Err(error) => {
            tracing::error!("reload refused, nothing changed: {error}");
            return;
        }
    };
    let file = next
        .config_file
        .as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
    if let Err(why) = admissible(&next, &running.channels, &|spec| monitors.admit(spec)) {
        tracing::error!("reload refused, nothing changed: {why} (config file {file})");
        return;
    }
    if let Err(why) = within_targets(&next, targets).await {
        tracing::error!("reload refused, nothing changed: {why} (config file {file})");
        return;
    }
    match monitors.reconcile(&next.monitors).await {
        Ok(done) => tracing::info!(
            "config file {file} reloaded: {} monitor(s) declared: {done}",
            next.monitors.len()
        ),
        Err(error) => tracing::error!("reload of {file} failed: {error}"),
    }
    let changed = restart_options(running, &next);
    if !changed.is_empty() {
        tracing::warn!(
            "reload: {} changed; these take effect at the next start (only [[monitor]] tables \
             are reloaded)",
            changed.join(", ")
        );
    }
}

/// The options (besides the monitors) in which `next` differs from `running`.
fn restart_options(running: &Config, next: &Config) -> Vec<&'static str> {
    // Every field by name: a new option does not compile until it is compared here.
    let Config {
        bind_addr,
        port,
        data_dir,
        database_url,
        server_id,
        log_retention,
        retention,
        smtp_url,
        mail_from,
        remind_every,
        mdns,
        legacy,
        token,
        read_token,
        metrics_token,
        allowed_email_domains,
        allowed_targets,
        max_monitors,
        max_monitors_per_client,
        max_registrations_per_minute,
        log_level,
        test_mode,
        config_file: _,
        channels,
        default_channels,
        monitors: _,
        maintenance,
        admin_email,
        storm_fraction,
        storm_min,
        flap_changes,
        flap_window,
        public_url,
        timezone,
    } = running;
    let mut changed = Vec::new();
    let mut differs = |name: &'static str, differ: bool| {
        if differ {
            changed.push(name);
        }
    };
    differs("bind_addr", *bind_addr != next.bind_addr);
    differs("port", *port != next.port);
    differs("data_dir", *data_dir != next.data_dir);
    differs("database_url", *database_url != next.database_url);
    differs("server_id", *server_id != next.server_id);
    differs("log_retention", *log_retention != next.log_retention);
    differs("retention_days", *retention != next.retention);
    differs("smtp_url", *smtp_url != next.smtp_url);
    differs("mail_from", *mail_from != next.mail_from);
    differs("remind_every", *remind_every != next.remind_every);
    differs("mdns", *mdns != next.mdns);
    differs("legacy", *legacy != next.legacy);
    differs("token", *token != next.token);
    differs("read_token", *read_token != next.read_token);
    differs("metrics_token", *metrics_token != next.metrics_token);
    differs(
        "allowed_email_domains",
        *allowed_email_domains != next.allowed_email_domains,
    );
    differs("allowed_targets", *allowed_targets != next.allowed_targets);
    differs("max_monitors", *max_monitors != next.max_monitors);
    differs(
        "max_monitors_per_client",
        *max_monitors_per_client != next.max_monitors_per_client,
    );
    differs(
        "max_registrations_per_minute",
        *max_registrations_per_minute != next.max_registrations_per_minute,
    );
    differs("verbose/debug", *log_level != next.log_level);
    differs("test", *test_mode != next.test_mode);
    differs("[[channel]]", *channels != next.channels);
    differs(
        "default_channels",
        *default_channels != next.default_channels,
    );
    differs("[[maintenance]]", *maintenance != next.maintenance);
    differs("admin_email", *admin_email != next.admin_email);
    differs("storm_fraction", *storm_fraction != next.storm_fraction);
    differs("storm_min", *storm_min != next.storm_min);
    differs("flap_changes", *flap_changes != next.flap_changes);
    differs("flap_window", *flap_window != next.flap_window);
    differs("public_url", *public_url != next.public_url);
    differs("timezone", *timezone != next.timezone);
    changed
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

/// This server's base URL as a user on the LAN would type it, for the links in mail, when
/// `public_url` does not say.
fn server_url(addr: SocketAddr, identity: &Identity) -> String {
    let host = if addr.ip().is_unspecified() {
        iputils::my_ip_addr().map_or_else(|_| identity.host_name.clone(), |ip| ip.to_string())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}
