//! The live set of monitors: registering, pausing and removing them, and running their checks.
//!
//! This is the one place that knows the check, the policy and the reaction (pingora's split):
//! the [`Scheduler`] says when, a [`Checker`] (the [`Prober`] in production) does the check, the
//! state machine in [`crate::health`] turns the outcome into a state, the alert policy in
//! [`crate::alerting`] decides what to tell about it, and the [`Store`] records all of it in one
//! transaction: the check, the transition, the monitor's alerting state and the messages for the
//! outbox. Whoever delivers (`notify`) learns only from the outbox, in the order it was written.
//!
//! A registration is acknowledged only after the store has made it durable. Checks run as small
//! tasks, at most [`MonitorsOptions::max_concurrent_checks`] at once; a monitor never has two
//! checks in flight. Memory per monitor is bounded: the spec, the counters, the alerting state and
//! the last few checks without their bodies (the full log lives in the store).
//!
//! # Removing and pausing
//!
//! A check in flight when its monitor is removed or paused must not tell anyone anything. Both
//! bump the monitor's generation under its lock before anything else, so a check that finishes
//! later is discarded; a check that finished before queued its writes to the store ahead of the
//! removal or pause, which withdraws whatever that check put in the outbox and, for a pause,
//! forgets the alerting state. Reminders come with checks, so a paused or removed monitor gets
//! none.
//!
//! # Declared monitors
//!
//! Each monitor has a [`Source`]: the API, or the config file. [`Monitors::reconcile`] makes the
//! monitors of the config file what its `[[monitor]]` tables say (at start, and at each reload):
//! new tables are registered, removed ones forgotten, changed ones updated with their state, log
//! and open incident kept; a changed `url` starts the state over as `UNKNOWN` (a transition
//! saying so is recorded; the log stays). [`Monitors::upsert`] and [`Monitors::remove`] (the
//! API's) refuse a monitor of the config file ([`MonitorsError::ManagedByConfig`]); pausing and
//! resuming work on every monitor.
//!
//! # Push monitors
//!
//! A push monitor ([`crate::push`]) is a monitor whose checks come from outside: a ping
//! ([`Monitors::ping`]) or a deadline passing becomes a check record that goes through the same
//! state machine, alert policy and store write as a polled check; the ping is answered only once
//! that write is committed and fsynced. Its next deadline is a one-shot entry on the scheduler's
//! timer wheel, re-armed after every ping and every deadline. Push monitors keep their time on
//! one clock: the wall clock read when the set started plus the monotonic time since, so
//! deadlines and the paused clock of tests agree. They take no part in the storm rule or host
//! grouping (their silence says nothing about this server's network).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod crowd;
mod listed;
mod shared;

pub use shared::TAKEOVER_SPREAD;

use listed::{Context, Listed};

use crate::alerting::storm::{Storm, StormChange, StormRules, group_key};
use crate::alerting::{Alerting, Decision, Event, Note, Quiet, Rules, Subject};
use crate::config::channel::{EventKind, Routes};
use crate::config::maintenance::Window;
use crate::config::monitor::Declared;
use crate::events::{self as live, Change, Events};
use crate::health::{Health, State, Transition};
use crate::probe::{CheckRecord, Prober, Reason};
use crate::push::{self, Deadline, PingEntry, PingKey, PingKind, PushState};
use crate::registry::{AppName, FieldError, Kind, MonitorSpec, Source};
use crate::scheduler::{GRID, Scheduler};
use crate::store::{CheckWrite, LoggedCheck, Message, Store, StoreError, StoredMonitor};

/// How many recent checks each monitor keeps in memory (for mail and the monitor view): as many
/// as the largest threshold, so that an incident's first failed check and its recovery's first
/// passed check are in it when the state changes (the downtime, [`crate::alerting::IncidentInfo`]).
pub const RECENT_CHECKS: usize = {
    let most = *crate::registry::limits::UNHEALTHY.end();
    let healthy = *crate::registry::limits::HEALTHY.end();
    (if most > healthy { most } else { healthy }) as usize
};

/// A check, boxed so that production and tests can plug in different checkers.
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckRecord> + Send>>;

/// Does one check of one monitor. A failed check is a record, never an error.
pub trait Checker: Send + Sync + 'static {
    /// Checks the app described by `spec`.
    fn check(&self, spec: Arc<MonitorSpec>) -> CheckFuture;

    /// Whether `spec` can be checked here at all (an `icmp://` monitor needs an ICMP socket);
    /// every spec can, unless the checker says otherwise.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] saying why not and what to change.
    fn admit(&self, spec: &MonitorSpec) -> Result<(), FieldError> {
        let _ = spec;
        Ok(())
    }
}

impl Checker for Prober {
    fn check(&self, spec: Arc<MonitorSpec>) -> CheckFuture {
        let prober = self.clone();
        Box::pin(async move { prober.check(&spec).await })
    }

    fn admit(&self, spec: &MonitorSpec) -> Result<(), FieldError> {
        Prober::admit(self, spec)
    }
}

/// What the live set works with.
pub struct Parts {
    /// Where registrations, states and checks are kept.
    pub store: Store,
    /// What does the checks.
    pub checker: Arc<dyn Checker>,
    /// Where each monitor's messages go besides its `email`.
    pub routes: SharedRoutes,
    /// Scheduled maintenance windows (`[[maintenance]]`).
    pub windows: Vec<Window>,
    /// No new check starts once this fires (the first stage of shutdown).
    pub cancel: CancellationToken,
    /// Checks are spawned here, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// Limits of the live set.
#[derive(Debug, Clone, Copy)]
pub struct MonitorsOptions {
    /// Checks running at once, across all monitors.
    pub max_concurrent_checks: usize,
    /// Monitors that can be registered.
    pub max_monitors: usize,
    /// A new registration is first checked within this long (spread at random).
    pub first_check_within: Duration,
    /// What the alert policy is told (reminders, flapping).
    pub rules: Rules,
    /// When many failing monitors make a storm.
    pub storm: StormRules,
}

/// Where messages go: the channels of the configuration.
pub type SharedRoutes = Arc<Routes>;

impl Default for MonitorsOptions {
    fn default() -> Self {
        MonitorsOptions {
            max_concurrent_checks: 1024,
            max_monitors: 100_000,
            first_check_within: Duration::from_secs(5),
            rules: Rules::default(),
            storm: StormRules::default(),
        }
    }
}

/// Why a change to the set was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorsError {
    /// The store could not make the change durable; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `max_monitors` are registered already.
    #[error("this server already monitors {0} apps, its maximum (max_monitors)")]
    Full(usize),
    /// The monitor is declared in the config file: only the file changes it.
    #[error(
        "monitor \"{0}\" is declared in the server's config file ([[monitor]]); change or remove it there \
         and reload the server (SIGHUP, systemctl reload)"
    )]
    ManagedByConfig(AppName),
    /// The monitor is checked by another server sharing the database (a ping must go there).
    #[error(
        "monitor \"{app}\" is checked by server {owner} of this cluster, not by this one; \
         ping that server, or retry in a few seconds (its lease moves when servers come and go)"
    )]
    Elsewhere {
        /// The monitor.
        app: AppName,
        /// The server that checks it ("none yet" while nobody holds it).
        owner: String,
    },
}

/// What [`Monitors::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Registered now.
    pub added: Vec<AppName>,
    /// Given a new definition (their states kept).
    pub updated: Vec<AppName>,
    /// Given a new `url`: their states start over as `UNKNOWN`.
    pub restarted: Vec<AppName>,
    /// Forgotten: no table declares them any more.
    pub removed: Vec<AppName>,
    /// As they were.
    pub unchanged: usize,
}

impl Reconciled {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty()
            && self.updated.is_empty()
            && self.restarted.is_empty()
            && self.removed.is_empty())
    }
}

impl std::fmt::Display for Reconciled {
    /// `2 added (nas, printer), 1 updated (router), 0 removed, 3 unchanged`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |list: &[AppName]| {
            if list.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    list.iter()
                        .map(AppName::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        write!(
            f,
            "{} added{}, {} updated{}, {} restarted with a new url{}, {} removed{}, {} unchanged",
            self.added.len(),
            names(&self.added),
            self.updated.len(),
            names(&self.updated),
            self.restarted.len(),
            names(&self.restarted),
            self.removed.len(),
            names(&self.removed),
            self.unchanged
        )
    }
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A new monitor.
    Created,
    /// An existing monitor with a new definition; its schedule restarts.
    Updated,
    /// The same definition again: nothing changed.
    Unchanged,
}

/// A monitor as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorView {
    /// Its name.
    pub app: AppName,
    /// What a check is: `http`, `https`, `tcp`, `tls` or `icmp` (the URL's scheme).
    pub kind: Kind,
    /// Who manages it: `api`, or `config` (the config file; the API cannot change it).
    pub source: Source,
    /// Base URL of the app (or what is checked: `tcp://host:port`, ...).
    pub url: String,
    /// Path of its health endpoint (empty for tcp, tls and icmp).
    pub path: String,
    /// The status codes that pass (http and https; `null` for the others).
    pub expect_status: Option<String>,
    /// Days before the certificate's expiry when checks warn (https and tls; 0: off).
    pub cert_warn_days: Option<u32>,
    /// Whether the certificate must be trusted (https and tls).
    pub tls_verify: Option<bool>,
    /// Who is mailed.
    pub email: Vec<String>,
    /// Channels told besides the mail (the server's `default_channels` apply too).
    pub notify: Vec<String>,
    /// Seconds between checks.
    pub interval: u64,
    /// Seconds a check may take.
    pub timeout: u64,
    /// Failed checks in a row that make it unhealthy.
    pub unhealthy: u32,
    /// Passed checks in a row that make it healthy again.
    pub healthy: u32,
    /// Current state.
    pub state: State,
    /// Whether checks are paused.
    pub paused: bool,
    /// Passed checks in a row.
    pub passes: u32,
    /// Failed checks in a row.
    pub fails: u32,
    /// When it entered its current state (its last transition), if it ever changed.
    pub since: Option<DateTime<Utc>>,
    /// When it was first registered.
    pub registered_at: DateTime<Utc>,
    /// The last check.
    pub last_check: Option<LoggedCheck>,
    /// The last change of state.
    pub last_transition: Option<Transition>,
    /// Until when nothing is told about it (maintenance through the API or a scheduled window).
    pub maintenance_until: Option<DateTime<Utc>>,
    /// Why, as the maintenance was set.
    pub maintenance_reason: Option<String>,
    /// Whether it changes state too often to be told each time.
    pub flapping: bool,
    /// A push monitor's schedule and where it stands; absent for a polled monitor.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushView>,
    /// The server that checks it, when several servers share the database (`null` otherwise,
    /// and while no server holds it).
    pub owner: Option<String>,
}

/// What the API shows of a push monitor, besides what every monitor has.
#[derive(Debug, Clone, Serialize)]
pub struct PushView {
    /// Seconds between successes, for a monitor on a period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// The cron expression, for a monitor on a schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The schedule's time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Seconds after the deadline before it is missed.
    pub grace: u64,
    /// Where the job pings: `<base>/ping/<key>` (set by the API, which knows the base).
    pub ping_url: Option<String>,
    /// When the next success is due (the deadline).
    pub expected_by: Option<DateTime<Utc>>,
    /// The last ping of any kind.
    pub last_ping: Option<DateTime<Utc>>,
    /// The last success.
    pub last_success: Option<DateTime<Utc>>,
    /// The start of a run that has not reported its result yet.
    pub running_since: Option<DateTime<Utc>>,
    /// The ping key, for the API to build `ping_url`; never serialized.
    #[serde(skip)]
    pub key: Option<PingKey>,
}

impl MonitorView {
    /// The view with its `ping_url` filled in under `base` (where the jobs of the request's
    /// client reach the server), for a push monitor; `None` without a base.
    pub fn with_ping_url(mut self, base: Option<&str>) -> MonitorView {
        if let Some(push) = self.push.as_mut() {
            push.ping_url = match (base, &push.key) {
                (Some(base), Some(key)) => Some(format!("{base}/ping/{}", key.expose())),
                _ => None,
            };
        }
        self
    }
}

impl PushView {
    /// The view of a monitor with `spec` (a push monitor) whose push state is `state`.
    fn of(spec: &MonitorSpec, state: &PushState) -> Option<PushView> {
        let push = spec.push.as_ref()?;
        let (period, schedule, tz) = match &push.schedule {
            push::Schedule::Period(period) => (Some(period.as_secs()), None, None),
            push::Schedule::Cron { text, tz, .. } => {
                (None, Some(text.clone()), Some(tz.to_string()))
            }
        };
        Some(PushView {
            period,
            schedule,
            tz,
            grace: push.grace.as_secs(),
            ping_url: None,
            expected_by: state.expected_by(push),
            last_ping: state.last_ping,
            last_success: state.last_success,
            running_since: state.started,
            key: Some(push.key.clone()),
        })
    }
}

/// A maintenance set through the API: nothing is told until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Maintenance {
    /// The end of the window.
    pub until: DateTime<Utc>,
    /// Why (shown in the API, the CLI and the dashboard).
    pub reason: String,
}

/// One monitor's live state.
#[derive(Debug)]
struct Slot {
    spec: Arc<MonitorSpec>,
    /// Who manages it.
    source: Source,
    paused: bool,
    registered_at: DateTime<Utc>,
    health: Health,
    since: Option<DateTime<Utc>>,
    recent: VecDeque<LoggedCheck>,
    last_transition: Option<Transition>,
    /// What the alert policy remembers (a held degrade, an open incident).
    alerting: Alerting,
    /// Maintenance set through the API.
    maintenance: Option<Maintenance>,
    /// The host of its URL, for host grouping.
    host: String,
    /// Bumped whenever the spec changes and when the monitor is paused or removed, so a check
    /// started before is discarded.
    generation: u64,
    in_flight: bool,
    /// A push monitor's last pings.
    push: PushState,
    /// A push monitor's armed deadline: when it falls on the timer wheel, and what it does.
    armed: Option<(Instant, Deadline)>,
    /// Whether this server checks it: always with a database of its own; with a shared one,
    /// while it holds the monitor's lease.
    owned: bool,
    /// The server that checks it, when several share the database.
    owner: Option<Arc<str>>,
}

impl Slot {
    fn view(&self, name: &AppName) -> MonitorView {
        let kind = self.spec.kind();
        let tls = kind.has_certificate();
        MonitorView {
            app: name.clone(),
            kind,
            source: self.source,
            url: self.spec.url.to_string(),
            path: self.spec.path.clone(),
            expect_status: kind.is_http().then(|| self.spec.expect_status.to_string()),
            cert_warn_days: tls.then_some(self.spec.cert_warn_days),
            tls_verify: tls.then_some(self.spec.tls_verify),
            email: self.spec.emails.clone(),
            notify: self.spec.notify.clone(),
            interval: self.spec.interval.as_secs(),
            timeout: self.spec.timeout.as_secs(),
            unhealthy: self.spec.unhealthy,
            healthy: self.spec.healthy,
            state: self.health.state,
            paused: self.paused,
            passes: self.health.passes,
            fails: self.health.fails,
            since: self.since,
            registered_at: self.registered_at,
            last_check: self.recent.front().cloned(),
            last_transition: self.last_transition.clone(),
            maintenance_until: self.maintenance.as_ref().map(|m| m.until),
            maintenance_reason: self.maintenance.as_ref().map(|m| m.reason.clone()),
            flapping: self.alerting.flapping_since().is_some(),
            push: PushView::of(&self.spec, &self.push),
            owner: self.owner.as_deref().map(str::to_owned),
        }
    }

    /// Its part in the counts of the storm rule and host grouping (none for a push monitor).
    fn part(&self) -> crowd::Part {
        if self.spec.is_push() {
            return crowd::Part::default();
        }
        crowd::Part::of(
            self.paused,
            self.health.state,
            self.recent.front().map(|check| check.record.outcome),
        )
    }

    fn stored(&self, name: &AppName) -> StoredMonitor {
        StoredMonitor {
            name: name.clone(),
            spec: (*self.spec).clone(),
            paused: self.paused,
            registered_at: self.registered_at,
            health: self.health,
            since: self.since,
            last_check: self.recent.front().cloned(),
            last_transition: self.last_transition.clone(),
            alerting: Some(alerting_json(&self.alerting)),
            source: self.source,
            maintenance: self.maintenance.as_ref().map(maintenance_json),
            push: None,
        }
    }
}

/// A maintenance as the store keeps it.
fn maintenance_json(maintenance: &Maintenance) -> String {
    serde_json::to_string(maintenance).unwrap_or_default()
}

/// The host of `spec`'s URL (a lower-case name or an address), whatever its kind: what host
/// grouping groups by, so `http://nas.lan:5000`, `tcp://NAS.lan:22` and `icmp://nas.lan` are one
/// host. A push monitor is a group of its own (`push:<name>`): its messages are never merged
/// with others'.
fn host_of(name: &AppName, spec: &MonitorSpec) -> String {
    if spec.is_push() {
        return format!("push:{name}");
    }
    spec.host().map(|host| host.to_string()).unwrap_or_default()
}

/// What is known of a scheduled window, so that its cron is evaluated about twice per
/// occurrence, not at every check.
#[derive(Debug, Default)]
struct WindowState {
    /// The end of the window in progress.
    until: Option<DateTime<Utc>>,
    /// When to evaluate it again: the end of this window, or the start of the next.
    next: Option<DateTime<Utc>>,
}

impl WindowState {
    /// The end of `window`'s occurrence `now` is in, if any.
    fn until(&mut self, window: &Window, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.next.is_none_or(|next| now >= next) {
            self.until = window.active_until(now);
            self.next = self.until.or_else(|| window.next_start(now));
        }
        self.until.filter(|until| *until > now)
    }
}

/// The alerting state as the store keeps it.
fn alerting_json(alerting: &Alerting) -> String {
    // A struct of strings, times and booleans always serializes.
    serde_json::to_string(alerting).unwrap_or_else(|_| "{}".to_owned())
}

type Slots = HashMap<AppName, Arc<Listed<Slot>>>;

/// The slots sorted by name.
type Sorted = Arc<Vec<(AppName, Arc<Listed<Slot>>)>>;

struct Inner {
    slots: RwLock<Slots>,
    /// The slots sorted by name, for the list: made at the first list after the set changed
    /// ([`Inner::write_slots`] forgets it), not at every list (at 10,000 monitors, cloning and
    /// sorting the names was a tenth of a list). Locked after `slots`.
    sorted: Mutex<Option<Sorted>>,
    store: Store,
    checker: Arc<dyn Checker>,
    scheduler: Scheduler,
    permits: Arc<Semaphore>,
    routes: SharedRoutes,
    tasks: TaskTracker,
    /// What the monitors know of each other (storm rule, host grouping); locked after a slot.
    crowd: Mutex<crowd::Crowd>,
    /// Scheduled maintenance windows, each with when it must be looked at again.
    windows: Vec<(Window, Mutex<WindowState>)>,
    /// Serializes changes to the set, so two registrations of one name cannot interleave.
    changes: tokio::sync::Mutex<()>,
    options: MonitorsOptions,
    /// Checks, transitions and changes, for whoever listens (`GET /api/v1/events`).
    events: Events,
    /// Push monitors by ping key.
    keys: RwLock<HashMap<PingKey, AppName>>,
    /// When the set started, on the wall clock and the monotonic one: push monitors' clock.
    boot: (DateTime<Utc>, Instant),
    /// This server's id when several servers share the database: then it checks only the
    /// monitors it holds the lease of ([`shared`]).
    server: Option<Arc<str>>,
    /// Whether this server tells what concerns every monitor (a storm's start): always when it
    /// is alone; of several sharing the database, the first live one by id
    /// ([`Monitors::set_speaker`]), so that a storm every server sees is told once.
    speaker: std::sync::atomic::AtomicBool,
}

impl Inner {
    /// The slots for reading, recovering them if a panicking thread poisoned the lock (they are
    /// consistent at every unlock point).
    fn read_slots(&self) -> std::sync::RwLockReadGuard<'_, Slots> {
        self.slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slots for changing, recovered like [`Inner::read_slots`]; forgets the sorted ones
    /// (no list can read them until the change is made: the lock is held).
    fn write_slots(&self) -> std::sync::RwLockWriteGuard<'_, Slots> {
        let slots = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *lock(&self.sorted) = None;
        slots
    }

    /// Every slot, sorted by name: the ones sorted at a list before when the set has not
    /// changed since.
    fn sorted_slots(&self) -> Sorted {
        let slots = self.read_slots();
        let mut sorted = lock(&self.sorted);
        if let Some(sorted) = &*sorted {
            return Arc::clone(sorted);
        }
        let mut list: Vec<(AppName, Arc<Listed<Slot>>)> = slots
            .iter()
            .map(|(name, slot)| (name.clone(), Arc::clone(slot)))
            .collect();
        list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Arc::clone(sorted.insert(Arc::new(list)))
    }

    /// One monitor's slot.
    fn slot(&self, name: &AppName) -> Option<Arc<Listed<Slot>>> {
        self.read_slots().get(name).cloned()
    }

    fn crowd(&self) -> std::sync::MutexGuard<'_, crowd::Crowd> {
        lock(&self.crowd)
    }

    /// Push monitors' clock: the wall clock at the start plus the monotonic time since.
    fn now(&self) -> DateTime<Utc> {
        let since = Instant::now().saturating_duration_since(self.boot.1);
        self.boot.0 + chrono::Duration::from_std(since).unwrap_or_default()
    }

    /// Push monitors by key, for reading (recovered like [`Inner::read_slots`]).
    fn keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PingKey, AppName>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Push monitors by key, for changing.
    fn keys_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PingKey, AppName>> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `name` out of the set: no longer scheduled, a check in flight discarded, its ping
    /// key and its part in the crowd gone. Nothing in the store changes.
    fn unlist(&self, name: &AppName) -> bool {
        let Some(slot) = self.write_slots().remove(name) else {
            return false;
        };
        self.scheduler.unschedule(name.clone());
        let mut slot = slot.lock();
        slot.generation += 1;
        if let Some(push) = &slot.spec.push {
            self.keys_mut().remove(&push.key);
        }
        self.crowd().leave(&slot.host, slot.part());
        true
    }

    /// The live state of `stored`, checked by this server when `owned`.
    fn restored(&self, stored: StoredMonitor, owned: bool) -> Slot {
        let alerting = restore_alerting(&self.store, &stored, self.options.rules);
        let maintenance = stored
            .maintenance
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        let push = stored
            .push
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        Slot {
            host: host_of(&stored.name, &stored.spec),
            spec: Arc::new(stored.spec),
            source: stored.source,
            paused: stored.paused,
            registered_at: stored.registered_at,
            health: stored.health,
            since: stored.since,
            // Without its body, like every check in memory: events carry the recent checks,
            // and a body (a raw JSON value) does not survive the outbox's untagged payload.
            recent: recent_ring(stored.last_check.map(|mut check| {
                check.record.body = None;
                check
            })),
            last_transition: stored.last_transition,
            alerting,
            maintenance,
            generation: 0,
            in_flight: false,
            push,
            armed: None,
            owned,
            owner: None,
        }
    }

    /// Starts `slot`'s schedule: a polled monitor is first checked at `first`, then every
    /// interval; a push monitor gets its next deadline armed.
    fn schedule(&self, name: &AppName, slot: &mut Slot, first: Instant) {
        if !slot.owned {
            return; // another server checks it
        }
        if slot.spec.is_push() {
            self.arm(name, slot);
        } else {
            self.scheduler
                .schedule(name.clone(), first, slot.spec.interval);
        }
    }

    /// Arms a push monitor's next deadline on the timer wheel (or none, see
    /// [`push::next_deadline`]).
    fn arm(&self, name: &AppName, slot: &mut Slot) {
        let Some(spec) = slot.spec.push.as_ref() else {
            return;
        };
        match push::next_deadline(spec, &slot.push, slot.health.state, self.boot.0) {
            Some((at, deadline)) => {
                let wait = (at - self.now()).to_std().unwrap_or_default();
                let instant = Instant::now() + wait;
                slot.armed = Some((instant, deadline));
                self.scheduler.schedule_once(name.clone(), instant);
            }
            None => {
                // Also whatever schedule it had before (a polled monitor made a push monitor).
                slot.armed = None;
                self.scheduler.unschedule(name.clone());
            }
        }
    }

    /// `slot` as the API shows it at `now`: the maintenance that holds now (through the API or a
    /// scheduled window) in `maintenance_until`, none once it has ended.
    fn view(&self, name: &AppName, slot: &Slot, now: DateTime<Utc>) -> MonitorView {
        self.view_in(name, slot, self.context(name, slot, now))
    }

    /// What `slot`'s view shows at `now` that the slot does not hold: the maintenance in force
    /// and, when a scheduled window sets it, which one (for its reason). No ping base (the API's
    /// part).
    fn context(&self, name: &AppName, slot: &Slot, now: DateTime<Utc>) -> Context<'static> {
        let until = self.maintenance_until(name, slot, now);
        let window = match until {
            Some(until) if Some(until) != slot.maintenance.as_ref().map(|m| m.until) => {
                self.windows.iter().position(|(window, state)| {
                    window.applies_to(name.as_str())
                        && lock(state).until(window, now) == Some(until)
                })
            }
            _ => None,
        };
        Context {
            maintenance_until: until,
            window,
            ping_base: None,
        }
    }

    /// `slot` as the API shows it in `context` (from [`Inner::context`]; its ping base is not
    /// used here).
    fn view_in(&self, name: &AppName, slot: &Slot, context: Context<'_>) -> MonitorView {
        let mut view = slot.view(name);
        if context.maintenance_until != view.maintenance_until {
            view.maintenance_until = context.maintenance_until;
            view.maintenance_reason = context
                .window
                .map(|window| self.windows[window].0.reason.clone());
        }
        view
    }

    /// Until when `name` is in maintenance at `now`, through the API or a scheduled window.
    fn maintenance_until(
        &self,
        name: &AppName,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let manual = slot
            .maintenance
            .as_ref()
            .map(|m| m.until)
            .filter(|until| *until > now);
        let scheduled = self
            .windows
            .iter()
            .filter(|(window, _)| window.applies_to(name.as_str()))
            .filter_map(|(window, state)| lock(state).until(window, now))
            .max();
        manual.max(scheduled)
    }

    /// Why nothing may be told about `slot` at `now`, if so: its maintenance, or a storm.
    fn quiet(
        &self,
        name: &AppName,
        slot: &Slot,
        crowd: &crowd::Crowd,
        now: DateTime<Utc>,
    ) -> Option<Quiet> {
        if let Some(until) = self.maintenance_until(name, slot, now) {
            return Some(Quiet::Maintenance { until });
        }
        crowd.holds(slot.spec.interval, now).then_some(Quiet::Storm)
    }

    /// Tells a storm's start (one message to the default channels and the admin address), and
    /// keeps the storm's state in the store, so a restart neither repeats it nor forgets it.
    async fn on_storm(&self, change: StormChange, storm: Storm) {
        if let Err(error) = self
            .store
            .set_server_state(STORM_KEY, serde_json::to_string(&storm).ok())
            .await
        {
            tracing::error!("cannot keep the storm's state: {error}");
        }
        let StormChange::Began {
            failing,
            active,
            tell,
        } = change
        else {
            tracing::info!(
                "the storm is over: fewer monitors fail; alerts held during it go out if they still apply"
            );
            return;
        };
        if !tell {
            tracing::warn!(
                "{failing} of {active} monitors fail at once again: holding per-app alerts (the same outage as the last storm, not told again)"
            );
            return;
        }
        tracing::warn!(
            "{failing} of {active} monitors failed at once: holding per-app alerts (is this server's network up?)"
        );
        if !self.speaker.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::info!(
                "the storm is told by the first of the servers sharing the database, not this one"
            );
            return;
        }
        let now = Utc::now();
        let event = Event::storm(failing, active, now);
        let payload = serde_json::to_string(&event).unwrap_or_default();
        for target in self.routes.server_targets(EventKind::Storm) {
            let message = Message {
                monitor: String::new(),
                channel: target.channel,
                recipients: target.recipients,
                event_id: event.id.clone(),
                payload: payload.clone(),
                group: None,
                due: now,
                created_at: now,
            };
            if let Err(error) = self.store.enqueue(&message).await {
                tracing::error!("cannot queue the storm message: {error}");
            }
        }
    }
}

/// The live set of monitors; cheap to clone.
#[derive(Clone)]
pub struct Monitors {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Monitors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitors")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (the data is
/// consistent at every unlock point).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Monitors {
    /// Starts checking `loaded` monitors (spreading their first checks over one interval) and
    /// returns the set.
    pub fn start(parts: Parts, loaded: Vec<StoredMonitor>, options: MonitorsOptions) -> Monitors {
        let Parts {
            store,
            checker,
            routes,
            windows,
            cancel,
            tasks,
        } = parts;
        let storm = store
            .server_state(STORM_KEY)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let server = store.server().map(Arc::from);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            let (scheduler, _task) = Scheduler::spawn(
                move |name, due| {
                    if let Some(inner) = weak.upgrade() {
                        dispatch(&inner, name, due);
                    }
                },
                cancel,
            );
            Inner {
                slots: RwLock::new(HashMap::new()),
                sorted: Mutex::new(None),
                store,
                checker,
                scheduler,
                permits: Arc::new(Semaphore::new(options.max_concurrent_checks.max(1))),
                routes,
                tasks,
                crowd: Mutex::new(crowd::Crowd::new(options.storm, storm)),
                windows: windows
                    .into_iter()
                    .map(|window| (window, Mutex::new(WindowState::default())))
                    .collect(),
                changes: tokio::sync::Mutex::new(()),
                options,
                events: Events::new(),
                keys: RwLock::new(HashMap::new()),
                boot: (Utc::now(), Instant::now()),
                speaker: std::sync::atomic::AtomicBool::new(server.is_none()),
                server,
            }
        });
        let now = Instant::now();
        {
            let mut slots = inner.write_slots();
            for stored in loaded {
                let name = stored.name.clone();
                // With a shared database, nothing is checked before its lease is claimed.
                let mut slot = inner.restored(stored, inner.server.is_none());
                if let Some(push) = &slot.spec.push {
                    inner.keys_mut().insert(push.key.clone(), name.clone());
                }
                if !slot.paused {
                    let first = now + jitter(slot.spec.interval);
                    inner.schedule(&name, &mut slot, first);
                }
                inner
                    .crowd()
                    .join(&slot.host, slot.spec.next_answer_within(), slot.part());
                slots.insert(name, Arc::new(Listed::new(slot)));
            }
        }
        Monitors { inner }
    }

    /// The live events of every monitor: each check, transition and change to the set.
    pub fn events(&self) -> &Events {
        &self.inner.events
    }

    /// Tells the readers of [`Monitors::events`] that `change` happened to `name`.
    fn changed(&self, name: &AppName, change: Change) {
        self.inner.events.publish(|| live::Event::Monitor {
            app: name.clone(),
            change,
        });
    }

    /// How many monitors are registered.
    pub fn len(&self) -> usize {
        self.inner.read_slots().len()
    }

    /// Whether no monitor is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers `name` over the API, or updates its definition. Durable before it returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`MonitorsError::ManagedByConfig`] when the config file declares `name`;
    /// [`MonitorsError::Full`] when the set is at `max_monitors`; [`MonitorsError::Store`] when
    /// the change could not be made durable (then nothing changed).
    pub async fn upsert(
        &self,
        name: AppName,
        spec: MonitorSpec,
    ) -> Result<(Upserted, MonitorView), MonitorsError> {
        let _change = self.inner.changes.lock().await;
        self.upsert_locked(name, spec, Source::Api).await
    }

    /// [`Monitors::upsert`] with the changes lock held, for `source`.
    async fn upsert_locked(
        &self,
        name: AppName,
        spec: MonitorSpec,
        source: Source,
    ) -> Result<(Upserted, MonitorView), MonitorsError> {
        let mut spec = spec;
        let interval = spec.interval;
        if let Some(slot) = self.inner.slot(&name) {
            let stored = {
                let slot = slot.lock();
                if slot.source == Source::Config && source == Source::Api {
                    return Err(MonitorsError::ManagedByConfig(name));
                }
                // A push monitor keeps its key (its ping URL) unless asked for a new one.
                if let (Some(new), Some(old)) = (spec.push.as_mut(), slot.spec.push.as_ref())
                    && !new.rotate_key
                {
                    new.key = old.key.clone();
                }
                if let Some(push) = spec.push.as_mut() {
                    push.rotate_key = false;
                }
                if *slot.spec == spec && slot.source == source {
                    return Ok((Upserted::Unchanged, slot.view(&name)));
                }
                let mut stored = slot.stored(&name);
                stored.spec = spec.clone();
                stored.source = source;
                stored
            };
            self.inner.store.save_monitor(&stored).await?;
            let view = {
                let mut slot = slot.lock();
                let host = host_of(&name, &spec);
                {
                    let mut keys = self.inner.keys_mut();
                    if let Some(old) = &slot.spec.push {
                        keys.remove(&old.key);
                    }
                    if let Some(new) = &spec.push {
                        keys.insert(new.key.clone(), name.clone());
                    }
                }
                let part = slot.part();
                {
                    let mut crowd = self.inner.crowd();
                    crowd.leave(&slot.host, part);
                    crowd.join(&host, spec.next_answer_within(), part);
                }
                slot.host = host;
                slot.spec = Arc::new(spec);
                slot.source = source;
                slot.generation += 1;
                if !slot.paused {
                    let first = Instant::now() + first_check(interval, self.inner.options);
                    if !slot.spec.is_push() {
                        // Polled now: a deadline armed before is gone.
                        slot.armed = None;
                    }
                    self.inner.schedule(&name, &mut slot, first);
                }
                slot.view(&name)
            };
            tracing::info!(app = %name, "monitor updated: {}", describe(&view));
            self.changed(&name, Change::Updated);
            return Ok((Upserted::Updated, view));
        }
        if self.len() >= self.inner.options.max_monitors {
            return Err(MonitorsError::Full(self.inner.options.max_monitors));
        }
        if let Some(push) = spec.push.as_mut() {
            push.rotate_key = false;
        }
        let mut slot = Slot {
            host: host_of(&name, &spec),
            spec: Arc::new(spec),
            source,
            paused: false,
            registered_at: Utc::now(),
            health: Health::default(),
            since: None,
            recent: recent_ring(None),
            last_transition: None,
            alerting: Alerting::default(),
            maintenance: None,
            generation: 0,
            in_flight: false,
            push: PushState::default(),
            armed: None,
            // With a shared database, the server that claims its lease checks it.
            owned: self.inner.server.is_none(),
            owner: None,
        };
        self.inner.store.save_monitor(&slot.stored(&name)).await?;
        self.inner
            .crowd()
            .join(&slot.host, slot.spec.next_answer_within(), slot.part());
        let view = slot.view(&name);
        if let Some(push) = &slot.spec.push {
            self.inner.keys_mut().insert(push.key.clone(), name.clone());
        }
        self.inner.schedule(
            &name,
            &mut slot,
            Instant::now() + first_check(interval, self.inner.options),
        );
        self.inner
            .write_slots()
            .insert(name.clone(), Arc::new(Listed::new(slot)));
        tracing::info!(app = %name, "monitor registered: {}", describe(&view));
        self.changed(&name, Change::Registered);
        Ok((Upserted::Created, view))
    }

    /// Stops monitoring `name` (registered over the API) and forgets it; `false` when it was not
    /// registered.
    ///
    /// # Errors
    ///
    /// [`MonitorsError::ManagedByConfig`] when the config file declares `name`;
    /// [`MonitorsError::Store`] when the removal could not be made durable (then nothing changed).
    pub async fn remove(&self, name: &AppName) -> Result<bool, MonitorsError> {
        let _change = self.inner.changes.lock().await;
        if self
            .inner
            .slot(name)
            .is_some_and(|slot| slot.lock().source == Source::Config)
        {
            return Err(MonitorsError::ManagedByConfig(name.clone()));
        }
        self.remove_locked(name).await
    }

    /// Removes `name` whatever its source, with the changes lock held.
    async fn remove_locked(&self, name: &AppName) -> Result<bool, MonitorsError> {
        let Some(slot) = self.inner.slot(name) else {
            return Ok(false);
        };
        // First: a check in flight is discarded (see the module documentation).
        slot.lock().generation += 1;
        self.inner.store.delete_monitor(name).await?;
        self.inner.unlist(name);
        tracing::info!(app = %name, "monitor removed");
        self.changed(name, Change::Removed);
        Ok(true)
    }

    /// Whether `spec` can be checked by this server at all (see [`Checker::admit`]).
    ///
    /// # Errors
    ///
    /// The checker's [`FieldError`] saying why not and what to change.
    pub fn admit(&self, spec: &MonitorSpec) -> Result<(), FieldError> {
        self.inner.checker.admit(spec)
    }

    /// Makes the monitors of the config file those of `declared`: registers the new ones,
    /// updates the changed ones (a new `url` starts the state over as `UNKNOWN`, with a
    /// transition saying so; anything else keeps state, log and incident), forgets those of the
    /// config file that are no longer declared. A monitor registered over the API under a
    /// declared name is taken over by the config file. Each change is durable before the next.
    ///
    /// # Errors
    ///
    /// [`MonitorsError::Full`] before anything changed, when the declared monitors would not fit
    /// `max_monitors`; [`MonitorsError::Store`] when a change could not be made durable (the
    /// changes before it stay, the ones after it are not made).
    pub async fn reconcile(&self, declared: &[Declared]) -> Result<Reconciled, MonitorsError> {
        let _change = self.inner.changes.lock().await;
        let wanted: HashMap<&AppName, &MonitorSpec> =
            declared.iter().map(|d| (&d.name, &d.spec)).collect();
        let current: Vec<(AppName, Source)> = self
            .inner
            .read_slots()
            .iter()
            .map(|(name, slot)| (name.clone(), slot.lock().source))
            .collect();
        // Sharing the database: what the other servers' files declare stays (their files may
        // differ from this one's); when that cannot be read, nothing is removed this time.
        let elsewhere: Option<HashSet<String>> = if self.inner.server.is_some() {
            let names: Vec<AppName> = declared.iter().map(|d| d.name.clone()).collect();
            match self.inner.store.declare(&names).await {
                Ok(names) => Some(names.into_iter().collect()),
                Err(error) => {
                    tracing::warn!(
                        "cannot read what the other servers' config files declare ({error}): \
                         monitors no longer in this file are kept until the next reload"
                    );
                    None
                }
            }
        } else {
            Some(HashSet::new())
        };
        let gone: Vec<AppName> = current
            .iter()
            .filter(|(name, source)| {
                *source == Source::Config
                    && !wanted.contains_key(name)
                    && elsewhere
                        .as_ref()
                        .is_some_and(|elsewhere| !elsewhere.contains(name.as_str()))
            })
            .map(|(name, _)| name.clone())
            .collect();
        let new = declared
            .iter()
            .filter(|d| !current.iter().any(|(name, _)| *name == d.name))
            .count();
        let after = current.len() - gone.len() + new;
        if new > 0 && after > self.inner.options.max_monitors {
            return Err(MonitorsError::Full(self.inner.options.max_monitors));
        }
        let mut done = Reconciled::default();
        for name in gone {
            self.remove_locked(&name).await?;
            done.removed.push(name);
        }
        for Declared { name, spec } in declared {
            let previous = self.inner.slot(name).map(|slot| {
                let slot = slot.lock();
                (slot.source, slot.spec.url.clone(), slot.spec.is_push())
            });
            match previous {
                // A new target starts over; a monitor that becomes or stops being a push monitor
                // is updated like any change (that is where ping keys are kept and indexed).
                Some((_, url, push)) if url != spec.url && !push && !spec.is_push() => {
                    self.restart_locked(name, spec.clone()).await?;
                    done.restarted.push(name.clone());
                }
                previous => {
                    if previous.is_some_and(|(source, _, _)| source == Source::Api) {
                        tracing::warn!(
                            app = %name,
                            "the monitor registered over the API is now declared in the config \
                             file, which manages it from now on"
                        );
                    }
                    match self
                        .upsert_locked(name.clone(), spec.clone(), Source::Config)
                        .await?
                        .0
                    {
                        Upserted::Created => done.added.push(name.clone()),
                        Upserted::Updated => done.updated.push(name.clone()),
                        Upserted::Unchanged => done.unchanged += 1,
                    }
                }
            }
        }
        Ok(done)
    }

    /// Gives the existing monitor `name` a new spec (a new target) from the config file and starts
    /// its state over as `UNKNOWN`; with the changes lock held.
    async fn restart_locked(&self, name: &AppName, spec: MonitorSpec) -> Result<(), MonitorsError> {
        let Some(slot) = self.inner.slot(name) else {
            return Ok(());
        };
        let now = Utc::now();
        let (stored, transition) = {
            let slot = slot.lock();
            let transition = (slot.health != Health::default()).then(|| Transition {
                time: now,
                from: slot.health.state,
                to: State::Unknown,
                reason: format!(
                    "url changed from {} to {} in the config file: checks start over",
                    slot.spec.url, spec.url
                ),
            });
            let mut stored = slot.stored(name);
            stored.spec = spec.clone();
            stored.source = Source::Config;
            stored.health = Health::default();
            (stored, transition)
        };
        self.inner
            .store
            .restart_monitor(&stored, transition.as_ref())
            .await?;
        let (interval, within) = (spec.interval, spec.next_answer_within());
        let view = {
            let mut slot = slot.lock();
            // First: a check in flight (of the old target) is discarded.
            slot.generation += 1;
            let before = slot.part();
            let host = host_of(name, &spec);
            slot.spec = Arc::new(spec);
            slot.source = Source::Config;
            slot.health = Health::default();
            slot.alerting = Alerting::default();
            if let Some(transition) = transition {
                slot.since = Some(transition.time);
                slot.last_transition = Some(transition);
            }
            // The new url may name another host, and the state starts over: the counts of the
            // storm rule and host grouping follow.
            {
                let mut crowd = self.inner.crowd();
                crowd.leave(&slot.host, before);
                crowd.join(&host, within, slot.part());
            }
            slot.host = host;
            if !slot.paused {
                self.inner.scheduler.schedule(
                    name.clone(),
                    Instant::now() + first_check(interval, self.inner.options),
                    interval,
                );
            }
            slot.view(name)
        };
        tracing::info!(app = %name, "monitor restarted with a new url: {}", describe(&view));
        Ok(())
    }

    /// Pauses or resumes the checks of `name`; `None` when it is not registered.
    ///
    /// # Errors
    ///
    /// [`MonitorsError::Store`] when the change could not be made durable (then nothing changed).
    pub async fn set_paused(
        &self,
        name: &AppName,
        paused: bool,
    ) -> Result<Option<MonitorView>, MonitorsError> {
        let _change = self.inner.changes.lock().await;
        let Some(slot) = self.inner.slot(name) else {
            return Ok(None);
        };
        let interval = {
            let mut slot = slot.lock();
            if slot.paused == paused {
                return Ok(Some(slot.view(name)));
            }
            if paused {
                // First: a check in flight is discarded, and no new one starts.
                slot.generation += 1;
                let before = slot.part();
                slot.paused = true;
                self.inner.crowd().change(&slot.host, before, slot.part());
            }
            slot.spec.interval
        };
        if paused {
            self.inner.scheduler.unschedule(name.clone());
        }
        if let Err(error) = self.inner.store.set_paused(name, paused).await {
            if paused {
                let mut slot = slot.lock();
                slot.paused = false;
                let part = slot.part();
                self.inner
                    .crowd()
                    .change(&slot.host, crowd::Part::default(), part);
                let first = Instant::now() + first_check(interval, self.inner.options);
                self.inner.schedule(name, &mut slot, first);
            }
            return Err(error.into());
        }
        let mut slot = slot.lock();
        if paused {
            // The store forgot it in the same transaction.
            slot.alerting = Alerting::default();
        } else {
            slot.paused = false;
            let part = slot.part();
            self.inner
                .crowd()
                .change(&slot.host, crowd::Part::default(), part);
            let first = Instant::now() + first_check(interval, self.inner.options);
            self.inner.schedule(name, &mut slot, first);
        }
        tracing::info!(app = %name, "monitor {}", if paused { "paused" } else { "resumed" });
        self.changed(
            name,
            if paused {
                Change::Paused
            } else {
                Change::Resumed
            },
        );
        Ok(Some(slot.view(name)))
    }

    /// Puts `name` in maintenance for `duration` (`None` ends it): its checks go on and are
    /// logged, nothing is told; when it ends, an app that is `UNHEALTHY` is told at its next
    /// check. `None` when it is not registered.
    ///
    /// # Errors
    ///
    /// [`MonitorsError::Store`] when the change could not be made durable (then nothing changed).
    pub async fn set_maintenance(
        &self,
        name: &AppName,
        window: Option<(Duration, String)>,
    ) -> Result<Option<MonitorView>, MonitorsError> {
        let _change = self.inner.changes.lock().await;
        let Some(slot) = self.inner.slot(name) else {
            return Ok(None);
        };
        let maintenance = window.map(|(duration, reason)| Maintenance {
            until: Utc::now() + chrono::Duration::from_std(duration).unwrap_or_default(),
            reason,
        });
        self.inner
            .store
            .set_maintenance(name, maintenance.as_ref().map(maintenance_json))
            .await?;
        let mut slot = slot.lock();
        match &maintenance {
            Some(m) => tracing::info!(
                app = %name,
                "in maintenance until {} ({}): nothing is told meanwhile",
                m.until.format("%Y-%m-%d %H:%M:%S UTC"),
                m.reason
            ),
            None => tracing::info!(app = %name, "maintenance ended"),
        }
        self.inner.events.publish(|| live::Event::Maintenance {
            app: name.clone(),
            until: maintenance.as_ref().map(|m| m.until),
            reason: maintenance.as_ref().map(|m| m.reason.clone()),
        });
        slot.maintenance = maintenance;
        Ok(Some(slot.view(name)))
    }

    /// A ping of `kind` with the key `key` and the job's output `body` (already bounded, see
    /// [`push::kept_body`]): the push monitor's log entry, state, transition and messages, written
    /// as one unit; returns once that is committed and fsynced. `None` when no push monitor has
    /// that key. A ping to a paused monitor is logged and changes nothing.
    ///
    /// # Errors
    ///
    /// [`MonitorsError::Store`] when the write could not be made durable.
    pub async fn ping(
        &self,
        key: &PingKey,
        kind: PingKind,
        body: Option<String>,
    ) -> Result<Option<AppName>, MonitorsError> {
        let Some(name) = self.inner.keys().get(key).cloned() else {
            return Ok(None);
        };
        let Some(slot) = self.inner.slot(&name) else {
            return Ok(None);
        };
        let storm = {
            let mut slot = slot.lock();
            let spec = Arc::clone(&slot.spec);
            let Some(push_spec) = spec.push.as_ref() else {
                return Ok(None);
            };
            if !push_spec.key.matches(key) {
                return Ok(None);
            }
            if !slot.owned {
                return Err(MonitorsError::Elsewhere {
                    app: name,
                    owner: slot
                        .owner
                        .as_deref()
                        .map_or_else(|| "(none yet)".to_owned(), str::to_owned),
                });
            }
            let now = self.inner.now();
            let effect = slot.push.on_ping(kind, now);
            let summary = push::summary(kind, body.as_deref());
            let record = CheckRecord {
                time: now,
                outcome: effect.outcome.unwrap_or(crate::health::Outcome::Pass),
                reason: Reason::from(effect.reason),
                http_status: None,
                latency: effect.run.unwrap_or_default(),
                body: None,
                detail: body,
                body_digest: None,
                cert_not_after: None,
                cert_days_left: None,
            };
            let ping = PingEntry {
                kind: kind.as_str().to_owned(),
                exit_status: kind.exit_status(),
                run_s: effect.run.map(|run| run.as_secs_f64()),
            };
            let state = slot.push;
            let log_only = effect.outcome.is_none() || slot.paused;
            tracing::debug!(app = %name, key = %push_spec.key.redacted(), "ping: {}", kind.as_str());
            let storm = apply_locked(
                &self.inner,
                &name,
                &mut slot,
                &spec,
                record,
                Pushed {
                    ping: Some(ping),
                    state: Some(state),
                    log_only,
                    summary,
                },
            );
            if !slot.paused {
                self.inner.arm(&name, &mut slot);
            }
            storm
        };
        if let Some((change, storm)) = storm {
            self.inner.on_storm(change, storm).await;
        }
        self.inner.store.flush().await?;
        Ok(Some(name))
    }

    /// The storm rule's state, with the monitors failing and the active ones.
    pub fn storm(&self) -> (Storm, usize, usize) {
        let crowd = self.inner.crowd();
        let (failing, active) = crowd.counts();
        (crowd.storm(), failing, active)
    }

    /// One monitor as the API shows it.
    pub fn view(&self, name: &AppName) -> Option<MonitorView> {
        self.inner
            .slot(name)
            .map(|slot| self.inner.view(name, &slot.lock(), Utc::now()))
    }

    /// Every monitor, sorted by name.
    pub fn list(&self) -> Vec<MonitorView> {
        let now = Utc::now();
        self.inner
            .sorted_slots()
            .iter()
            .map(|(name, slot)| self.inner.view(name, &slot.lock(), now))
            .collect()
    }

    /// `{"monitors": [...]}`: [`Monitors::list`] as JSON, push monitors' ping URLs under
    /// `ping_base` ([`MonitorView::with_ping_url`]), written one monitor at a time into one
    /// buffer. Each monitor's JSON is kept (`monitors/listed.rs`): only the monitors that
    /// changed since the last list (or whose maintenance or ping base differs) are serialized
    /// again; at 10,000 monitors checked every 5 s, about 2 % of them for a list every 100 ms.
    ///
    /// # Errors
    ///
    /// When a view does not serialize (it always does: strings, numbers and times).
    pub fn list_json(&self, ping_base: Option<&str>) -> Result<Vec<u8>, serde_json::Error> {
        /// About what one monitor takes (about 800 bytes with its last check).
        const BYTES_PER_MONITOR: usize = 1024;
        let slots = self.inner.sorted_slots();
        let mut out = Vec::with_capacity(slots.len() * BYTES_PER_MONITOR + 16);
        out.extend_from_slice(b"{\"monitors\":[");
        let now = Utc::now();
        for (n, (name, slot)) in slots.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let mut slot = slot.lock();
            let context = Context {
                ping_base: ping_base.filter(|_| slot.spec.is_push()),
                ..self.inner.context(name, &slot, now)
            };
            slot.write_json(context, &mut out, |slot, out| {
                let view = self.inner.view_in(name, slot, context);
                serde_json::to_writer(out, &view.with_ping_url(ping_base))
            })?;
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    /// Counts of monitors per state, for the server's own health.
    pub fn state_counts(&self) -> HashMap<State, usize> {
        let slots = self.inner.read_slots();
        let mut counts = HashMap::new();
        for slot in slots.values() {
            *counts.entry(slot.lock().health.state).or_insert(0) += 1;
        }
        counts
    }
}

/// The ring of recent checks, allocated once at its final size ([`RECENT_CHECKS`]).
fn recent_ring(last: Option<LoggedCheck>) -> VecDeque<LoggedCheck> {
    let mut ring = VecDeque::with_capacity(RECENT_CHECKS);
    // Without its body, like every check `apply` keeps: the ring goes into events, and an
    // event in the outbox is read back through `Payload`, which cannot hold a raw JSON body.
    ring.extend(last.map(|mut check| {
        check.record.body = None;
        check
    }));
    ring
}

/// A random delay below `interval`, to spread first checks after a restart.
fn jitter(interval: Duration) -> Duration {
    interval.mul_f64(fastrand::f64())
}

/// When a new or changed registration is first checked: soon, but spread so that a burst of
/// registrations does not become a burst of checks.
fn first_check(interval: Duration, options: MonitorsOptions) -> Duration {
    jitter(interval.min(options.first_check_within))
}

fn describe(view: &MonitorView) -> String {
    if let Some(push) = &view.push {
        return format!(
            "push monitor, {}, grace {} s, mail to {}",
            match (&push.period, &push.schedule, &push.tz) {
                (Some(period), _, _) => format!("a success every {period} s"),
                (None, Some(schedule), Some(tz)) => format!("a success at {schedule} ({tz})"),
                _ => "no schedule".to_owned(),
            },
            push.grace,
            if view.email.is_empty() {
                "nobody".to_owned()
            } else {
                view.email.join(", ")
            }
        );
    }
    format!(
        "{}{} every {} s (timeout {} s, unhealthy after {}, healthy after {}), mail to {}",
        view.url.trim_end_matches('/'),
        view.path,
        view.interval,
        view.timeout,
        view.unhealthy,
        view.healthy,
        if view.email.is_empty() {
            "nobody".to_owned()
        } else {
            view.email.join(", ")
        }
    )
}

/// Called by the scheduler when `name` is due: starts its check, unless one is still running.
fn dispatch(inner: &Arc<Inner>, name: &AppName, due: Instant) {
    let Some(slot) = inner.slot(name) else {
        return;
    };
    if slot.lock().spec.is_push() {
        if let Some((change, storm)) = deadline_passed(inner, name, &slot, due) {
            let inner = Arc::clone(inner);
            inner
                .tasks
                .clone()
                .spawn(async move { inner.on_storm(change, storm).await });
        }
        return;
    }
    let (spec, generation) = {
        let mut slot = slot.lock();
        if slot.paused || slot.in_flight {
            if slot.in_flight {
                tracing::debug!(app = %name, "previous check still running; this one is skipped");
            }
            return;
        }
        if !slot.owned {
            return; // its lease passed to another server since it was scheduled
        }
        slot.in_flight = true;
        (Arc::clone(&slot.spec), slot.generation)
    };
    let inner = Arc::clone(inner);
    let name = name.clone();
    inner.tasks.clone().spawn(async move {
        let record = {
            let _permit = inner.permits.acquire().await;
            let late = Instant::now().saturating_duration_since(due);
            inner.store.telemetry().check_started(late);
            if late > Duration::from_secs(1) {
                tracing::debug!(app = %name, "check starts {late:?} late");
            }
            inner.checker.check(Arc::clone(&spec)).await
        };
        if let Some((change, storm)) = apply(&inner, &name, &slot, &spec, generation, record) {
            inner.on_storm(change, storm).await;
        }
    });
}

/// Runs the state machine and the alert policy on a finished check, and records the check, the
/// transition and what the policy decided as one write. Returns a change of the storm rule the
/// check caused, for the caller to tell (outside the locks).
fn apply(
    inner: &Inner,
    name: &AppName,
    slot: &Listed<Slot>,
    spec: &Arc<MonitorSpec>,
    generation: u64,
    record: CheckRecord,
) -> Option<(StormChange, Storm)> {
    let mut slot = slot.lock();
    slot.in_flight = false;
    if slot.generation != generation {
        return None; // the definition changed, or the monitor was paused or removed, while this ran
    }
    apply_locked(inner, name, &mut slot, spec, record, Pushed::default())
}

/// What a push monitor's entry adds to [`apply_locked`].
#[derive(Debug, Default)]
struct Pushed {
    /// The ping, for the log entry.
    ping: Option<PingEntry>,
    /// The monitor's push state after the ping, written in the same transaction.
    state: Option<PushState>,
    /// Only logged: a start, a message, or a ping to a paused monitor; the state machine is not
    /// run.
    log_only: bool,
    /// A short line for a transition's reason, instead of the whole detail (a job's output).
    summary: Option<String>,
}

/// A push monitor's deadline fell on the timer wheel at `due`: unless a ping moved it meanwhile,
/// the monitor is late, missed, or its run took too long.
fn deadline_passed(
    inner: &Inner,
    name: &AppName,
    slot: &Listed<Slot>,
    due: Instant,
) -> Option<(StormChange, Storm)> {
    let mut slot = slot.lock();
    let (at, deadline) = slot.armed?;
    if slot.paused || due + GRID < at {
        return None; // paused, or a ping moved the deadline after this one fell due
    }
    slot.armed = None;
    let spec = Arc::clone(&slot.spec);
    let push_spec = spec.push.as_ref()?;
    let now = inner.now();
    let detail = match deadline {
        Deadline::Late | Deadline::Missed => format!(
            "no success since {} ({}); expected by {}{}",
            slot.push.last_success.map_or_else(
                || "ever".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            ),
            push_spec.schedule.describe(),
            slot.push
                .expected_by(push_spec)
                .map_or_else(String::new, |t| t
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()),
            if deadline == Deadline::Missed {
                format!(", grace {} s", push_spec.grace.as_secs())
            } else {
                String::new()
            }
        ),
        Deadline::RunTooLong => format!(
            "started {} and no result within the grace of {} s",
            slot.push.started.map_or_else(String::new, |t| t
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()),
            push_spec.grace.as_secs()
        ),
    };
    let record = CheckRecord {
        time: now,
        outcome: deadline.outcome(),
        reason: deadline.reason().into(),
        http_status: None,
        latency: Duration::ZERO,
        body: None,
        detail: Some(detail),
        body_digest: None,
        cert_not_after: None,
        cert_days_left: None,
    };
    if deadline == Deadline::RunTooLong {
        // Told once; the run's result, when it comes, is a result without a start.
        slot.push.started = None;
    }
    let state = slot.push;
    let storm = apply_locked(
        inner,
        name,
        &mut slot,
        &spec,
        record,
        Pushed {
            state: Some(state),
            ..Pushed::default()
        },
    );
    inner.arm(name, &mut slot);
    storm
}

/// [`apply`] on a locked slot, for polled checks and push monitors' entries alike.
fn apply_locked(
    inner: &Inner,
    name: &AppName,
    slot: &mut Slot,
    spec: &Arc<MonitorSpec>,
    record: CheckRecord,
    pushed: Pushed,
) -> Option<(StormChange, Storm)> {
    let before = slot.part();
    let (health, change) = if pushed.log_only {
        (slot.health, None)
    } else {
        slot.health.step(record.outcome, spec.thresholds())
    };
    let transition = change.map(|change| {
        change.transition(
            record.time,
            match pushed.summary.as_ref().or(record.detail.as_ref()) {
                Some(detail) => format!("{}: {detail}", record.reason.as_str()),
                None => record.reason.as_str().to_owned(),
            },
        )
    });
    tracing::debug!(
        app = %name,
        outcome = %record.outcome,
        reason = record.reason.as_str(),
        latency_ms = record.latency.as_secs_f64() * 1e3,
        "check: {}",
        health.state
    );
    slot.health = health;
    // The in-memory copy goes without the body; only the log row needs it.
    let mut record = record;
    let body = record.body.take();
    let light = LoggedCheck {
        record,
        state: health.state,
        ping: pushed.ping,
    };
    let mut check = light.clone();
    check.record.body = body;
    inner.events.publish(|| live::Event::Check {
        app: name.clone(),
        check: light.clone(),
    });
    // Never above RECENT_CHECKS, so the ring keeps the capacity it was made with.
    if slot.recent.len() >= RECENT_CHECKS {
        slot.recent.pop_back();
    }
    slot.recent.push_front(light);
    if let Some(transition) = &transition {
        slot.since = Some(transition.time);
        slot.last_transition = Some(transition.clone());
        tracing::info!(app = %name, "{} -> {} ({})", transition.from, transition.to, transition.reason);
        inner.events.publish(|| live::Event::Transition {
            app: name.clone(),
            transition: transition.clone(),
        });
    }
    let now = Utc::now();
    let slot = &mut *slot;
    let mut crowd = inner.crowd();
    let released = crowd.change(&slot.host, before, slot.part());
    let storm_change = crowd.storm_step(now).map(|change| (change, crowd.storm()));
    let quiet = inner.quiet(name, slot, &crowd, now);
    let subject = Subject {
        app: name,
        spec,
        recent: slot.recent.make_contiguous(),
        state: health.state,
        last_transition: slot.last_transition.as_ref(),
        quiet,
    };
    let rules = inner.options.rules;
    let decision = match &transition {
        Some(transition) => Some(slot.alerting.on_transition(subject, transition, rules, now)),
        None if pushed.log_only => None,
        None => slot.alerting.on_check(subject, rules, now),
    };
    let mut write = CheckWrite {
        name: name.clone(),
        check,
        health,
        transition,
        alerting: None,
        messages: Vec::new(),
        withdraw: Vec::new(),
        release: released.and_then(|kind| group_key(&slot.host, kind)),
        // A struct of times always serializes.
        push: pushed
            .state
            .map(|state| serde_json::to_string(&state).unwrap_or_default()),
    };
    if let Some(decision) = decision {
        write.alerting = Some(alerting_json(&slot.alerting));
        write.withdraw.extend(decision.withdraw.iter().cloned());
        for outgoing in &decision.send {
            let targets = inner
                .routes
                .targets(&spec.emails, &spec.notify, outgoing.event.kind);
            // An event of strings, times and numbers always serializes.
            let payload = serde_json::to_string(&outgoing.event).unwrap_or_default();
            let group = group_key(&slot.host, outgoing.event.kind);
            // Others on the host still deciding: wait for them, at most until their next checks answer.
            let due = match crowd.wait_for_host(&slot.host, outgoing.event.kind) {
                Some(wait) => {
                    tracing::info!(
                        app = %name,
                        "{} held up to {} s for other monitors of {} still deciding",
                        outgoing.event.kind,
                        wait.as_secs(),
                        slot.host
                    );
                    now + chrono::Duration::from_std(wait).unwrap_or_default()
                }
                None => outgoing.due,
            };
            write
                .messages
                .extend(targets.into_iter().map(|target| Message {
                    monitor: name.to_string(),
                    channel: target.channel,
                    recipients: target.recipients,
                    event_id: outgoing.event.id.clone(),
                    payload: payload.clone(),
                    group: group.clone(),
                    due,
                    created_at: now,
                }));
        }
        note(name, write.transition.as_ref(), &decision, &write.messages);
    }
    drop(crowd);
    inner.store.record(write);
    storm_change
}

/// Where the storm rule's state is kept in the store.
const STORM_KEY: &str = "storm";

/// Logs what the alert policy decided about a check, and where its messages go.
fn note(
    name: &AppName,
    transition: Option<&Transition>,
    decision: &Decision,
    messages: &[Message],
) {
    let change = transition.map_or_else(String::new, |t| format!("{} -> {}: ", t.from, t.to));
    match decision.note {
        Note::DegradeHeld { until } => tracing::info!(
            app = %name,
            "{change}told only if it lasts until the next check ({})",
            until.format("%H:%M:%S UTC")
        ),
        Note::Blip => tracing::info!(app = %name, "{change}a blip within one check, not told"),
        Note::Late => tracing::info!(app = %name, "{change}late: told only if it is missed"),
        Note::Recovering => tracing::info!(app = %name, "{change}recovering, not told"),
        Note::StillInIncident => {
            tracing::info!(app = %name, "{change}same incident, told already");
        }
        Note::Quiet => tracing::debug!(app = %name, "{change}nothing to tell"),
        Note::Quieted(quiet) => tracing::info!(app = %name, "{change}not told: {quiet}"),
        Note::Flapping => tracing::info!(app = %name, "{change}flapping, not told"),
        Note::FlappingOver => tracing::info!(app = %name, "no longer flapping"),
        Note::Told(kind) if messages.is_empty() => tracing::info!(
            app = %name,
            "{change}{kind}: no email address or channel for it, nobody told"
        ),
        Note::Told(kind) => tracing::debug!(
            app = %name,
            "{change}{kind}: queued for {}",
            messages
                .iter()
                .map(|message| message.channel.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The alerting state of a loaded monitor; for a database written before it was kept, rebuilt
/// from the stored transitions.
fn restore_alerting(store: &Store, stored: &StoredMonitor, rules: Rules) -> Alerting {
    if let Some(json) = &stored.alerting {
        return serde_json::from_str(json).unwrap_or_else(|error| {
            tracing::warn!(app = %stored.name, "the stored alerting state is unreadable ({error}); starting afresh");
            Alerting::default()
        });
    }
    let open = matches!(stored.health.state, State::Unhealthy)
        || (stored.health.state == State::Degraded && stored.health.recovering);
    if stored.paused || !open {
        return Alerting::default();
    }
    match store.transitions_blocking(&stored.name, HISTORY) {
        Ok(history) => Alerting::from_history(&stored.name, &history, rules, Utc::now()),
        Err(error) => {
            tracing::warn!(app = %stored.name, "cannot read the transitions to find an open incident: {error}");
            Alerting::default()
        }
    }
}

/// Transitions read to rebuild an incident that was open before the alerting state was kept.
const HISTORY: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registration;

    fn spec(url: &str) -> MonitorSpec {
        Registration {
            url: Some(url.to_owned()),
            ..Registration::default()
        }
        .validate()
        .expect(url)
    }

    #[test]
    fn a_check_loaded_at_start_goes_into_the_ring_without_its_body() {
        let record = CheckRecord {
            time: Utc::now(),
            outcome: crate::health::Outcome::Warn,
            reason: crate::probe::Reason::BodyWarn,
            http_status: Some(200),
            latency: Duration::from_millis(3),
            body: Some(
                crate::probe::JsonBody::from_text(r#"{"status":"warn"}"#.to_owned()).expect("json"),
            ),
            body_digest: None,
            detail: None,
            cert_not_after: None,
            cert_days_left: None,
        };
        let ring = recent_ring(Some(LoggedCheck {
            record,
            state: State::Degraded,
            ping: None,
        }));
        assert_eq!(ring.len(), 1);
        assert!(ring[0].record.body.is_none());
    }

    #[test]
    fn every_kind_groups_by_the_host_of_its_url() {
        for (url, host) in [
            ("http://NAS.lan:5000", "nas.lan"),
            ("https://nas.lan", "nas.lan"),
            ("tcp://NAS.lan:22", "nas.lan"),
            ("tls://nas.LAN:993", "nas.lan"),
            ("icmp://nas.lan", "nas.lan"),
            ("http://192.168.1.40:8096", "192.168.1.40"),
            ("tcp://192.168.1.40:22", "192.168.1.40"),
            ("icmp://192.168.1.40", "192.168.1.40"),
            ("https://[fd00::1]:5001", "[fd00::1]"),
            ("tls://[fd00::1]:993", "[fd00::1]"),
            ("icmp://[fd00::1]", "[fd00::1]"),
        ] {
            assert_eq!(
                host_of(&AppName::parse("app").expect("name"), &spec(url)),
                host,
                "{url}"
            );
        }
    }
}
