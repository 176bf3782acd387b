//! Several servers on one PostgreSQL database: the loop that holds this server's share of the
//! monitors.
//!
//! Every [`RENEW`] the loop renews the server's lease and claims free monitors up to its share
//! ([`Store::lease_round`]), starts checking what it claimed ([`Monitors::take`]), lets go of
//! what it holds beyond its share once it has stopped checking it ([`Monitors::let_go`], then
//! [`Store::release`]), and reads what the other servers changed ([`Monitors::refresh`]; their
//! newest checks every [`CHECKS_EVERY`] renewals, [`Monitors::refresh_checks`]). When
//! no renewal succeeded for [`LEASE`] minus [`MARGIN`] (the database is unreachable, or this
//! process stalled), it stops checking everything before another server may claim any of it;
//! it takes them up again, from the database's state, once a renewal succeeds (unless another
//! server claimed them meanwhile). A server that stops lets go of everything
//! ([`Store::leave`]), so the others take its monitors at their next renewal.
//!
//! The design and its guarantees are in the store's [`crate::store::postgres`] module.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::monitors::Monitors;
use crate::registry::AppName;
use crate::store::postgres::{LEASE, MARGIN, RENEW};
use crate::store::{ServerLease, Store};

/// A server id made at start: the host name (letters, digits, '.', '_', '-' only) and 8 random
/// hex digits.
pub fn default_server_id() -> String {
    let host: String = hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(55)
        .collect();
    let host = if host.is_empty() { "server" } else { &host };
    format!("{host}-{:08x}", fastrand::u32(..))
}

/// The cluster as this server last saw it, for `/health`; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    servers: Arc<RwLock<Vec<ServerLease>>>,
    id: Arc<str>,
    /// For pings forwarded to the server that holds their monitor.
    client: reqwest::Client,
}

impl Cluster {
    /// This server's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The HTTP client for the other servers (no proxy: they are on the LAN).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Where server `id`'s API is, if it is live.
    pub fn url_of(&self, id: &str) -> Option<String> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|server| server.id == id)
            .map(|server| server.url.clone())
    }

    /// The live servers at the last renewal, by id.
    pub fn servers(&self) -> Vec<ServerLease> {
        self.servers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, servers: Vec<ServerLease>) {
        *self
            .servers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = servers;
    }
}

/// Starts the lease loop of `monitors` (a set on a shared store, this server's API at `url`) on
/// `tasks` until `stop`.
pub fn spawn(
    monitors: Monitors,
    store: Store,
    url: String,
    stop: CancellationToken,
    tasks: &TaskTracker,
) -> Cluster {
    let cluster = Cluster {
        servers: Arc::default(),
        id: Arc::from(store.server().unwrap_or_default()),
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default(),
    };
    let seen = cluster.clone();
    tasks.spawn(async move {
        Lease::new(monitors, store, url).run(stop, &seen).await;
    });
    cluster
}

/// The loop's state.
struct Lease {
    monitors: Monitors,
    store: Store,
    /// Where this server's API is, for the others (they forward pings there).
    url: String,
    /// Until when this server may check what it holds (its own clock): its last successful
    /// renewal's send time plus [`LEASE`] minus [`MARGIN`].
    valid_until: Option<Instant>,
    /// Whether the next renewal reads every monitor held (at start, after an error or a lapse).
    reread: bool,
    /// The versions read up to, at the last two refreshes: each refresh reads from the older,
    /// so a change committed a little after a newer one is not missed.
    read: (i64, i64),
    /// When the last error was logged (one a minute at most).
    warned: Option<Instant>,
}

/// Every how many renewals the other servers' newest checks are read (the monitors' last checks
/// and counters in this server's views; states and transitions are read every renewal).
pub const CHECKS_EVERY: u32 = 10;

/// How long one renewal or refresh may take before it counts as failed.
const ATTEMPT: Duration = Duration::from_secs(2);

impl Lease {
    fn new(monitors: Monitors, store: Store, url: String) -> Lease {
        Lease {
            monitors,
            store,
            url,
            valid_until: None,
            reread: true,
            read: (0, 0),
            warned: None,
        }
    }

    async fn run(mut self, stop: CancellationToken, cluster: &Cluster) {
        tracing::info!(
            server = %cluster.id(),
            "sharing the database with other servers: checking the monitors this server holds the lease of"
        );
        let mut rounds: u32 = 0;
        let mut tick = tokio::time::interval(RENEW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.renew(cluster).await;
            self.refresh().await;
            rounds += 1;
            if rounds.is_multiple_of(CHECKS_EVERY) {
                match tokio::time::timeout(ATTEMPT, self.monitors.refresh_checks()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        self.failed(&format!("cannot read the other servers' checks: {error}"));
                    }
                    Err(_) => self.failed("reading the other servers' checks takes too long"),
                }
            }
        }
        let owned = self.monitors.owned();
        self.monitors.let_go(&owned);
        let _ = self.store.flush().await;
        match self.store.leave().await {
            Ok(()) => tracing::info!(
                "let go of {} monitor(s) for the other servers to check",
                owned.len()
            ),
            Err(error) => tracing::warn!(
                "cannot let go of the leases ({error}); the other servers take them when they run out in {} s",
                LEASE.as_secs()
            ),
        }
    }

    /// One renewal, with what it claims, loses and gives up.
    async fn renew(&mut self, cluster: &Cluster) {
        let sent = Instant::now();
        let deadline = self
            .valid_until
            .map_or(sent + ATTEMPT, |until| until.min(sent + ATTEMPT));
        let held = self.monitors.owned();
        let round = tokio::time::timeout_at(
            deadline.max(sent),
            self.store.lease_round(&self.url, held.len(), self.reread),
        )
        .await;
        let round = match round {
            Ok(Ok(round)) => round,
            Ok(Err(error)) => {
                self.failed(&format!("cannot renew the lease: {error}"));
                return self.lapse_if_due();
            }
            Err(_) => {
                self.failed("renewing the lease takes too long");
                return self.lapse_if_due();
            }
        };
        self.valid_until = Some(sent + LEASE - MARGIN);
        let claimed = if round.complete {
            let now: HashSet<&AppName> = round.held.iter().collect();
            let lost: Vec<AppName> = held
                .iter()
                .filter(|name| !now.contains(name))
                .cloned()
                .collect();
            if !lost.is_empty() {
                tracing::warn!(
                    "{} monitor(s) are checked by another server now",
                    lost.len()
                );
                self.monitors.let_go(&lost);
            }
            let before: HashSet<&AppName> = held.iter().collect();
            round
                .held
                .iter()
                .filter(|name| !before.contains(name))
                .cloned()
                .collect()
        } else {
            round.held
        };
        self.reread = false;
        if !claimed.is_empty() {
            let count = claimed.len();
            match self.monitors.take(claimed).await {
                Ok(()) => tracing::info!("took over {count} monitor(s)"),
                Err(error) => {
                    self.failed(&format!("cannot read the monitors just claimed: {error}"));
                    self.reread = true;
                }
            }
        }
        let owned = self.monitors.owned();
        if owned.len() > round.share {
            // Stop first, write what was checked, then give up: nobody else may start before
            // this server has stopped, and the next server goes on from its last check.
            let surplus = self.monitors.let_go_idle(owned.len() - round.share);
            let count = surplus.len();
            let written = self.store.flush().await;
            match written.and(self.store.release(surplus).await) {
                Ok(()) => {
                    tracing::info!("let go of {count} monitor(s) for a server that has fewer")
                }
                Err(error) => {
                    self.failed(&format!("cannot let go of monitors: {error}"));
                    self.reread = true;
                }
            }
        }
        // The live servers come by id: the first tells a storm (each sees it).
        self.monitors.set_speaker(
            round.servers.first().map(|server| server.id.as_str()) == Some(cluster.id()),
        );
        cluster.set(round.servers);
    }

    /// Stops checking everything once the lease may have run out.
    fn lapse_if_due(&mut self) {
        if self
            .valid_until
            .is_some_and(|until| Instant::now() >= until)
        {
            let owned = self.monitors.owned();
            if !owned.is_empty() {
                tracing::warn!(
                    "the lease could not be renewed for {} s: stopped checking {} monitor(s) so another server may take them",
                    (LEASE - MARGIN).as_secs_f64(),
                    owned.len()
                );
                self.monitors.let_go(&owned);
            }
            self.valid_until = None;
        }
        self.reread = true;
    }

    /// Reads what the other servers changed.
    async fn refresh(&mut self) {
        match tokio::time::timeout(ATTEMPT, self.monitors.refresh(self.read.0)).await {
            Ok(Ok(newest)) => self.read = (self.read.1, newest),
            Ok(Err(error)) => {
                self.failed(&format!("cannot read the other servers' changes: {error}"))
            }
            Err(_) => self.failed("reading the other servers' changes takes too long"),
        }
    }

    fn failed(&mut self, what: &str) {
        if self
            .warned
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            self.warned = Some(Instant::now());
            tracing::warn!("{what}");
        } else {
            tracing::debug!("{what}");
        }
    }
}
