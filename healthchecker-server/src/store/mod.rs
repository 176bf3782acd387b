//! The embedded store: everything that must survive a restart or a crash, in one SQLite file.
//!
//! [`Store`] is the interface; behind it is either this SQLite file (the default, described
//! below) or a PostgreSQL database ([`Store::open_postgres`], [`postgres`]), chosen at open. Each
//! method is a `match` on the backend: no dynamic call and no allocation on the way, so the
//! SQLite path costs what it did.
//!
//! `healthchecker.db` ([`FILE_NAME`]) in `data_dir` holds the registrations, each monitor's state
//! and counters and the state of its alerting, the transitions, the bounded health-check log and
//! the outbox of messages to deliver. A restarted server calls [`Store::load_monitors`] and
//! resumes with the states it had.
//!
//! What the alert policy keeps (a monitor's alerting state, the payload of a message) is stored as
//! the JSON text its owner wrote: the store keeps it, it does not read it.
//!
//! # Opening
//!
//! [`Store::open`] creates the folder when it is missing, checks the file (an SQLite database of
//! ours, `PRAGMA quick_check`), and migrates the schema (`PRAGMA user_version`, one step per
//! version; a file from a newer server is refused). A damaged, foreign or unreadable file stops the
//! start with a [`StoreError`] that names the file and says what to do: it is never replaced or
//! repaired behind the user's back.
//!
//! # Writing: one writer thread, batches
//!
//! Every write goes through one dedicated thread that owns the only writing connection, in the
//! order the calls were made. Checks are the bulk (10,000 monitors at a 5 s interval are 2,000 a
//! second), so they are not one transaction each:
//!
//! * [`Store::record`] never blocks and never fails: it appends the write to an in-memory queue.
//! * The writer commits whatever has arrived in one transaction when the oldest queued check is
//!   [`BATCH_WINDOW`] old, when [`BATCH_MAX`] checks are waiting, or at once when a call that waits
//!   for an answer (a registration, [`Store::flush`], the outbox) is queued. Statements are
//!   prepared once and cached.
//! * Each check is one row of the log, and that row also carries the monitor's health after it
//!   (state and counters): the newest log row is the monitor's state, so a check writes one row,
//!   not two. The monitor's state row is written only at registration, on a transition (for
//!   `since`), and for checks whose log row was dropped (below), once per batch, the latest
//!   write winning; it records which log row it is as new as, and a newer log row supersedes it.
//! * A check for a monitor that does not exist (any more) is ignored.
//! * A check that causes messages ([`CheckWrite::messages`], a withdrawal or a new alerting state)
//!   writes them in the same transaction as its transition, and makes the writer commit at once
//!   instead of waiting for the batch window; [`Store::outbox_changed`] is notified after that
//!   commit.
//! * A failed batch is applied again one operation at a time (each in a savepoint), so one bad
//!   write fails alone and the unrelated checks and calls in the batch are kept.
//!
//! # Durability
//!
//! The database runs in WAL mode. Batches of checks commit with `synchronous = NORMAL`: committed
//! data survives a crash of the process (kill -9) at once, and a power cut may lose the last
//! moments of checks, never the file's consistency. A batch that holds a registration, a new
//! message or a [`Store::flush`] commits with `synchronous = FULL`, so the WAL is fsynced before
//! the caller hears `Ok` (that one fsync also makes every earlier commit durable). A delivery
//! result ([`Store::mark_delivered`] and the like) is committed at once but not fsynced: it
//! survives a crash of the process, which is what keeps a restart from sending a message again,
//! and the window between the relay's acceptance and that commit stays a few milliseconds. No checkpoint is needed for
//! that: a synced WAL is part of the database. Checkpoints fold the WAL back into the main file
//! every [`WAL_AUTOCHECKPOINT_PAGES`] pages, on a thread of their own beside the writer (so no
//! commit waits for one), and fully at [`Store::close`].
//!
//! # Bounds
//!
//! * The queue holds at most [`QUEUE_CAP`] checks (about 25 s at 2,000 checks a second). Only a
//!   writer that cannot keep up (a stalled disk) fills it. Then the oldest queued check loses its
//!   log row, with a warning that counts them, but never its state: the latest state, counters and
//!   transitions of every monitor still reach the database.
//! * The log keeps the newest `log_retention` checks of each monitor. Each log row has a
//!   per-monitor sequence number; readers never see rows older than the newest `log_retention`, and
//!   every `log_retention / 10` checks (at least 1, at most 1,000) the writer deletes the older ones
//!   in one range delete, so the table holds at most `log_retention / 10` extra rows per monitor.
//! * Transitions and finished mail older than `retention` are deleted once an hour (and by
//!   [`Store::prune`]). The same hourly pass runs `PRAGMA optimize`, and gives free pages back to
//!   the file system (`auto_vacuum = INCREMENTAL`) when more than a quarter of the file is free:
//!   a log that stays at its bound reuses its pages, so the file only shrinks after monitors go
//!   away. The WAL is truncated to [`JOURNAL_SIZE_LIMIT`] after a checkpoint.
//!
//! # Reading
//!
//! Reads use their own connections (WAL lets them run while the writer commits), from a small
//! pool, on tokio's blocking threads. They see what is committed: await [`Store::visible`] first
//! to read the checks recorded a moment ago (it waits for the batch they are in, at most
//! [`BATCH_WINDOW`], and forces neither an early commit nor an fsync, so readers cannot make the
//! writer work harder). Log reads are bounded by bytes as well as by count ([`LOG_PAGE_BYTES`]),
//! and paged newest first with a `before` cursor.

mod aggregates;
mod checkpointer;
pub mod postgres;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::Config;
use crate::health::{Health, State, Transition};
use crate::history::{Glance, Incident, Series};
use crate::probe::CheckRecord;
use crate::registry::{AppName, MonitorSpec, Source};
use crate::telemetry::{DeliveryResult, Telemetry};

pub use aggregates::{AGGREGATE_LAG, DAILY_KEPT, HOURLY_KEPT};
pub use postgres::{Changes, DatabaseUrl, DatabaseUrlError, Round, ServerLease};
pub use writer::{BATCH_MAX, BATCH_WINDOW, QUEUE_CAP};

/// The database file inside `data_dir`.
pub const FILE_NAME: &str = "healthchecker.db";

/// How long a connection waits for a lock held by another connection (or another process, such as
/// a backup or the `sqlite3` shell) before it gives up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which a commit folds the WAL back into the database file (16 MiB of 1 KiB
/// pages: about 8 s of checks at 2,000 a second, so a page changed twice in that time is copied
/// back once).
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// The size the WAL file is cut back to after a checkpoint, in bytes.
pub const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Idle read connections kept open for the next read.
const READERS_KEPT: usize = 4;

/// Most bytes of check bodies and details in one page of the log ([`Store::log_page`]): one
/// request cannot make the server hold more than a few MB.
pub const LOG_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Checks kept in the log of each monitor; the oldest are dropped. Default 1000.
    pub log_retention: usize,
    /// Transitions and finished (delivered, logged or failed) mail older than this are deleted.
    /// Default 90 days.
    pub retention: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            log_retention: 1000,
            retention: Duration::from_secs(90 * 24 * 60 * 60),
        }
    }
}

impl From<&Config> for StoreOptions {
    fn from(config: &Config) -> Self {
        StoreOptions {
            log_retention: config.log_retention,
            retention: config.retention,
        }
    }
}

/// A monitor as the store keeps it: the registration and where its state machine stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMonitor {
    /// The app's name.
    pub name: AppName,
    /// What to check and how.
    pub spec: MonitorSpec,
    /// Polling is stopped (the monitor is kept).
    pub paused: bool,
    /// When the app registered (or last changed its registration).
    pub registered_at: DateTime<Utc>,
    /// State and counters after the newest check.
    pub health: Health,
    /// When the state last changed; `None` before the first transition.
    pub since: Option<DateTime<Utc>>,
    /// The newest check in the log.
    pub last_check: Option<LoggedCheck>,
    /// The newest transition.
    pub last_transition: Option<Transition>,
    /// Where its alerting stands, as the JSON its owner wrote (see [`crate::alerting`]); `None`
    /// when it was never written (a database from before version 2 of the schema).
    pub alerting: Option<String>,
    /// Who manages it: the API, or the config file.
    #[serde(default)]
    pub source: Source,
    /// Its maintenance set through the API, as the JSON its owner wrote; `None`: none.
    pub maintenance: Option<String>,
    /// Where a push monitor stands ([`crate::push::PushState`]) as the JSON its owner wrote;
    /// `None` for a polled monitor and before the first ping. Written with each ping
    /// ([`CheckWrite::push`]), never by [`Store::save_monitor`].
    pub push: Option<String>,
}

/// One entry of the health-check log: the check and the state it left the monitor in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedCheck {
    /// The check.
    #[serde(flatten)]
    pub record: CheckRecord,
    /// The state after the check.
    pub state: State,
    /// A push monitor's ping: its kind, exit status and run time; `None` for a polled check and
    /// for a deadline that passed.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<crate::push::PingEntry>,
}

/// What one check changes, in one transaction: a log row, the monitor's health, maybe a
/// transition, and what the alert policy decided about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckWrite {
    /// The monitor.
    pub name: AppName,
    /// The log entry.
    pub check: LoggedCheck,
    /// State and counters after the check.
    pub health: Health,
    /// The change of state the check caused, if any.
    pub transition: Option<Transition>,
    /// The monitor's new alerting state (JSON), when it changed.
    pub alerting: Option<String>,
    /// Messages to put in the outbox (their `monitor` is this monitor's name).
    pub messages: Vec<Message>,
    /// Pending messages of this monitor to withdraw, by event id (a held degrade that ended in a
    /// blip or was superseded).
    pub withdraw: Vec<String>,
    /// Messages held to go out with those of the same group (a host) are due now.
    pub release: Option<String>,
    /// A push monitor's new [`crate::push::PushState`] (JSON), when a ping changed it.
    pub push: Option<String>,
}

impl CheckWrite {
    /// Whether the write holds something for the outbox or the alerting state: then it is
    /// committed at once rather than at the end of the batch window.
    pub fn is_urgent(&self) -> bool {
        self.alerting.is_some()
            || !self.messages.is_empty()
            || !self.withdraw.is_empty()
            || self.release.is_some()
            || self.push.is_some()
    }
}

/// A message to deliver on one channel, as the outbox keeps it until it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The app it is about (a pause or a removal of the app withdraws it while pending).
    pub monitor: String,
    /// The channel: `email`, or a channel's name.
    pub channel: String,
    /// Mail addresses, for mail; empty for other channels.
    pub recipients: Vec<String>,
    /// The id of the event it tells (stable: a re-send carries the same).
    pub event_id: String,
    /// What to deliver, as JSON (see `notify`).
    pub payload: String,
    /// Messages of one group (the alerts of one host) that are due together go out as one.
    pub group: Option<String>,
    /// When it may be sent first.
    pub due: DateTime<Utc>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// The outbox entry, for the `mark_*` calls.
    pub id: i64,
    /// The message.
    pub message: Message,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it is due (again).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// How a channel's deliveries stand ([`Store::channel_status`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// Messages waiting to be delivered (due now or later).
    pub pending: usize,
    /// Messages given up (a permanent refusal, or failing for 24 h) within the retention.
    pub failed: usize,
    /// The newest message that is done: delivered, logged or given up.
    pub last: Option<Delivered>,
}

/// The outcome of one message ([`ChannelStatus::last`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// `delivered`, `logged` or `failed`.
    pub status: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The app it was about.
    pub app: String,
    /// Why the last attempt failed, if one did.
    pub error: Option<String>,
}

/// A page of a monitor's log, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogPage {
    /// The checks, newest first.
    pub checks: Vec<LoggedCheck>,
    /// Pass this as `before` to read the next (older) page; `None` when this page reaches the
    /// oldest check kept.
    pub next_before: Option<u64>,
}

/// What [`Store::prune`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Transitions older than the retention.
    pub transitions: usize,
    /// Delivered, logged, failed or withdrawn messages older than the retention.
    pub messages: usize,
    /// History buckets older than they are kept ([`HOURLY_KEPT`], [`DAILY_KEPT`]).
    pub buckets: usize,
}

/// A fault of the store. Every message names the database file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data folder does not exist and cannot be created.
    #[error(
        "cannot create the data folder {path}: {source}; create it, or choose another with --data-dir"
    )]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The database file, or its folder, may not be read or written by this user.
    #[error(
        "cannot open the database {path}: {reason}; the server needs to read and write the file \
         and to create files next to it (give its user access, or choose another --data-dir)"
    )]
    PermissionDenied {
        /// The database file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The file is not an SQLite database, belongs to another program, or is damaged.
    #[error(
        "the database {path} is damaged or is not a healthchecker database ({reason}); it was left \
         untouched: restore it from a backup, or move it away to start with an empty database \
         (apps then register again)"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer server with a schema this one does not know.
    #[error(
        "the database {path} has schema version {found}, but this healthchecker-server {} knows \
         versions up to {supported}; run a newer healthchecker-server, or restore a backup made with \
         this version",
        crate::VERSION
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The file's `user_version`.
        found: i64,
        /// The newest version this server knows.
        supported: i64,
    },
    /// Reading or writing failed (disk full, I/O error, ...).
    #[error("database {path}: {reason}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A stored row could not be read back (it was changed by hand, or by a newer server).
    #[error("database {path}: unreadable row: {reason}")]
    Data {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The PostgreSQL database failed: unreachable, refused the login, or a statement failed.
    #[error("database {path}: {reason}")]
    Postgres {
        /// The database, as `postgres://user@host:port/db` (never the password).
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A call only a store shared by several servers answers ([`Store::open_shared`]) was made
    /// to one that is not.
    #[error(
        "the database {path} is not shared by several servers: leases need a PostgreSQL \
         database_url and a server id"
    )]
    NotShared {
        /// The database.
        path: PathBuf,
    },
    /// The store was closed (or its writer stopped); nothing more can be read or written.
    #[error("the database {path} is closed")]
    Closed {
        /// The database file.
        path: PathBuf,
    },
}

/// A handle on the store. Cheap to clone; every clone uses the same database and writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    options: StoreOptions,
    backend: Backend,
    outbox_changed: tokio::sync::watch::Sender<u64>,
    telemetry: Telemetry,
}

/// Where the data is: the interface is [`Store`]'s methods, each a `match` on this (no dynamic
/// call, no allocation on the way to either backend).
enum Backend {
    /// The embedded file, with its writer thread and pooled read connections.
    Sqlite {
        queue: Arc<writer::Queue>,
        readers: Mutex<Vec<Connection>>,
    },
    /// A PostgreSQL database ([`postgres`]).
    Postgres(postgres::Pg),
}

impl Drop for Inner {
    /// The last handle is gone without [`Store::close`]: the writer commits what is queued and stops.
    fn drop(&mut self) {
        match &self.backend {
            Backend::Sqlite { queue, .. } => queue.shut_down(),
            // Its own drop does the same.
            Backend::Postgres(_) => {}
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) `healthchecker.db` in `data_dir`, checks and migrates it, and starts the
    /// writer thread. Blocking: call it at start, before serving.
    ///
    /// # Errors
    ///
    /// [`StoreError::CreateDir`] when the folder cannot be made, [`StoreError::PermissionDenied`],
    /// [`StoreError::Corrupt`] for a damaged or foreign file (left untouched),
    /// [`StoreError::TooNew`] for a file from a newer server, [`StoreError::Sqlite`] otherwise.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(FILE_NAME);
        let conn = schema::open_writer(&path)?;
        let reader = schema::open_reader(&path)?;
        let outbox_changed = tokio::sync::watch::Sender::new(0);
        let queue = writer::spawn(conn, path.clone(), options, outbox_changed.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                options,
                backend: Backend::Sqlite {
                    queue,
                    readers: Mutex::new(vec![reader]),
                },
                outbox_changed,
                telemetry: Telemetry::new(),
            }),
        })
    }

    /// Connects to the PostgreSQL database `url`, creates or migrates its schema, and starts its
    /// writer. Blocking: call it at start. One server per database for now (see [`postgres`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Postgres`] when the database cannot be reached or refuses,
    /// [`StoreError::Corrupt`] for a database with tables of another program (left untouched),
    /// [`StoreError::TooNew`] for a schema from a newer server.
    pub fn open_postgres(url: &DatabaseUrl, options: StoreOptions) -> Result<Store, StoreError> {
        Store::open_pg(url, options, None)
    }

    /// [`Store::open_postgres`] for server `server` of several sharing the database: it writes
    /// only the checks of monitors whose lease `server` holds ([`Store::lease_round`]), and
    /// claims the messages it sends.
    ///
    /// # Errors
    ///
    /// As [`Store::open_postgres`].
    pub fn open_shared(
        url: &DatabaseUrl,
        options: StoreOptions,
        server: &str,
    ) -> Result<Store, StoreError> {
        Store::open_pg(url, options, Some(server.to_owned()))
    }

    fn open_pg(
        url: &DatabaseUrl,
        options: StoreOptions,
        server: Option<String>,
    ) -> Result<Store, StoreError> {
        let outbox_changed = tokio::sync::watch::Sender::new(0);
        let pg = postgres::Pg::open(url, options, server, outbox_changed.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: pg.path().to_owned(),
                options,
                backend: Backend::Postgres(pg),
                outbox_changed,
                telemetry: Telemetry::new(),
            }),
        })
    }

    /// The database: the SQLite file, or the PostgreSQL database as `postgres://user@host/db`
    /// (never its password).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> StoreOptions {
        self.inner.options
    }

    /// Every monitor with its state, newest check and newest transition, sorted by name. Blocking:
    /// meant for the start; it reads what is committed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] or [`StoreError::Data`] when the database cannot be read,
    /// [`StoreError::Closed`] after [`Store::close`].
    pub fn load_monitors(&self) -> Result<Vec<StoredMonitor>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => self.read_blocking(rows::load_monitors),
            Backend::Postgres(pg) => pg.load_monitors(),
        }
    }

    /// The server this store writes for, when several servers share its database
    /// ([`Store::open_shared`]).
    pub fn server(&self) -> Option<&str> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => None,
            Backend::Postgres(pg) => pg.server(),
        }
    }

    /// The PostgreSQL backend of a shared store.
    fn shared(&self) -> Result<&postgres::Pg, StoreError> {
        match &self.inner.backend {
            Backend::Postgres(pg) if pg.server().is_some() => Ok(pg),
            _ => Err(StoreError::NotShared {
                path: self.path().to_owned(),
            }),
        }
    }

    /// Renews this server's lease (its API at `url`), claims free monitors when it holds fewer
    /// than `held` of its share, and lists the live servers (see [`postgres`]'s leases). With `reread`, the answer
    /// lists every monitor it holds.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotShared`] for a store not opened with [`Store::open_shared`];
    /// [`StoreError::Postgres`] when the database fails.
    pub async fn lease_round(
        &self,
        url: &str,
        held: usize,
        reread: bool,
    ) -> Result<Round, StoreError> {
        self.shared()?.lease_round(url, held, reread).await
    }

    /// Lets go of `names`' leases (after this server stopped checking them).
    ///
    /// # Errors
    ///
    /// As [`Store::lease_round`].
    pub async fn release(&self, names: Vec<AppName>) -> Result<(), StoreError> {
        self.shared()?.release(names).await
    }

    /// Lets go of every lease and of this server's row: for a server that stops.
    ///
    /// # Errors
    ///
    /// As [`Store::lease_round`].
    pub async fn leave(&self) -> Result<(), StoreError> {
        self.shared()?.leave().await
    }

    /// Keeps the names of the monitors this server's config file declares (`names`), and returns
    /// those the files of the other servers declare (see [`postgres::leases::DECLARED_FOR`]): a
    /// monitor of the config file is removed when no server's file declares it any more, so
    /// servers with different files do not remove each other's.
    ///
    /// # Errors
    ///
    /// As [`Store::lease_round`].
    pub async fn declare(&self, names: &[AppName]) -> Result<Vec<String>, StoreError> {
        self.shared()?.declare(names).await
    }

    /// What changed after version `since` that this server did not write itself.
    ///
    /// # Errors
    ///
    /// As [`Store::lease_round`].
    pub async fn changes(&self, since: i64) -> Result<Changes, StoreError> {
        self.shared()?.changes(since).await
    }

    /// The newest check of each monitor this server does not hold, with the health after it.
    ///
    /// # Errors
    ///
    /// As [`Store::lease_round`].
    pub async fn last_checks(&self) -> Result<Vec<(AppName, LoggedCheck, Health)>, StoreError> {
        self.shared()?.last_checks().await
    }

    /// The monitors `names` as stored, for a server that just claimed them.
    ///
    /// # Errors
    ///
    /// As [`Store::lease_round`].
    pub async fn load_named(&self, names: Vec<AppName>) -> Result<Vec<StoredMonitor>, StoreError> {
        self.shared()?.load_named(names).await
    }

    /// The key of the hashes of bodies the log does not keep ([`crate::probe::BodyDigest`]):
    /// made once, when the database got the schema that keeps them, so a body's hash stays the
    /// same across restarts. Blocking: meant for the start.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] or [`StoreError::Data`] when it cannot be read,
    /// [`StoreError::Closed`] after [`Store::close`].
    pub fn digest_key(&self) -> Result<crate::probe::DigestKey, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => self.read_blocking(rows::digest_key),
            Backend::Postgres(pg) => pg.digest_key(),
        }
    }

    /// Registers `monitor`, or replaces the spec, `paused` and `registered_at` of the monitor with
    /// that name (keeping its state, log and transitions). A new monitor starts with
    /// `monitor.health` and `monitor.since`; `last_check` and `last_transition` are not written
    /// (they come from the log). Durable (committed and fsynced) when it returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when the commit failed (then nothing changed),
    /// [`StoreError::Closed`] after [`Store::close`].
    pub async fn save_monitor(&self, monitor: &StoredMonitor) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::Save(Box::new(monitor.clone()), reply))
                    .await
            }
            Backend::Postgres(pg) => pg.save_monitor(monitor).await,
        }
    }

    /// Replaces the spec, `paused`, `registered_at` and `source` of the existing monitor
    /// `monitor.name`, and starts its state over: `transition` (to `UNKNOWN`, saying why), when
    /// given, is recorded, the state becomes `monitor.health`, the alerting state is forgotten and pending
    /// messages are withdrawn; the log and the older transitions stay. For a monitor whose target
    /// changed (a new `url`). Durable when it returns; `Ok(false)` when there is no such monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn restart_monitor(
        &self,
        monitor: &StoredMonitor,
        transition: Option<&Transition>,
    ) -> Result<bool, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.restart_monitor(monitor, transition).await;
        }
        self.call(|reply| {
            writer::Op::Restart(Box::new((monitor.clone(), transition.cloned())), reply)
        })
        .await
    }

    /// Removes the monitor `name` with its log and transitions, and withdraws its pending
    /// messages. Durable when it returns. `Ok(false)` when there is no such monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn delete_monitor(&self, name: &AppName) -> Result<bool, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::Delete(name.clone(), reply))
                    .await
            }
            Backend::Postgres(pg) => pg.delete_monitor(name).await,
        }
    }

    /// Sets (or, with `None`, ends) the maintenance of `name`, as the JSON its owner writes.
    /// Durable when it returns. `Ok(false)` when there is no such monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn set_maintenance(
        &self,
        name: &AppName,
        maintenance: Option<String>,
    ) -> Result<bool, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::Maintenance(name.clone(), maintenance, reply))
                    .await
            }
            Backend::Postgres(pg) => pg.set_maintenance(name, maintenance).await,
        }
    }

    /// The value kept under `key` for the server as a whole (JSON), if any. Blocking: meant
    /// for the start.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub fn server_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.read_blocking(|conn, path| rows::server_state(conn, path, key))
            }
            Backend::Postgres(pg) => pg.server_state(key),
        }
    }

    /// Keeps `value` (JSON) under `key` for the server as a whole; `None` forgets it. Durable
    /// when it returns.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn set_server_state(
        &self,
        key: &str,
        value: Option<String>,
    ) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::ServerState(key.to_owned(), value, reply))
                    .await
            }
            Backend::Postgres(pg) => pg.set_server_state(key, value).await,
        }
    }

    /// Pauses or resumes the monitor `name`. Pausing also forgets its alerting state and
    /// withdraws its pending messages (a paused app is told nothing more). Durable when it
    /// returns. `Ok(false)` when there is no such monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn set_paused(&self, name: &AppName, paused: bool) -> Result<bool, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::Pause(name.clone(), paused, reply))
                    .await
            }
            Backend::Postgres(pg) => pg.set_paused(name, paused).await,
        }
    }

    /// Queues one check for the writer. Never blocks, never fails: a write for an unknown monitor
    /// is ignored, a write after [`Store::close`] is dropped, and a full queue drops the oldest log
    /// row but keeps the monitor's latest state and everything the check decided for the outbox
    /// (see the module documentation).
    pub fn record(&self, write: CheckWrite) {
        self.inner.telemetry.check_done(write.check.record.outcome);
        match &self.inner.backend {
            Backend::Sqlite { queue, .. } => queue.record(write),
            Backend::Postgres(pg) => pg.record(write),
        }
    }

    /// Changes after every commit that put messages in the outbox, for the delivery workers
    /// (each waits on its own receiver).
    pub fn outbox_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.outbox_changed.subscribe()
    }

    /// Returns once everything recorded before the call is committed and fsynced.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when that commit failed, [`StoreError::Closed`] after
    /// [`Store::close`].
    pub async fn flush(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => self.call(writer::Op::Flush).await,
            Backend::Postgres(pg) => pg.sync().await,
        }
    }

    /// Returns once everything recorded before the call is committed, so readers see it: at the
    /// end of the batch it is in (at most [`BATCH_WINDOW`]), without an early commit or an fsync.
    /// Meant for readers that want the checks of a moment ago (the API).
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when that commit failed, [`StoreError::Closed`] after
    /// [`Store::close`].
    pub async fn visible(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => self.call(writer::Op::Visible).await,
            Backend::Postgres(pg) => pg.sync().await,
        }
    }

    /// The newest `limit` checks of `name` (at most `log_retention`), newest first; empty for an
    /// unknown monitor. Shows what is committed (see [`Store::visible`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] or [`StoreError::Data`] when the database cannot be read,
    /// [`StoreError::Closed`] after [`Store::close`].
    pub async fn log(&self, name: &AppName, limit: usize) -> Result<Vec<LoggedCheck>, StoreError> {
        Ok(self.log_page(name, None, limit).await?.checks)
    }

    /// A page of the log of `name`, newest first: the newest `limit` checks (at most
    /// `log_retention`) older than the cursor `before` (a [`LogPage::next_before`]), and at most
    /// [`LOG_PAGE_BYTES`] of bodies and details (at least one check). Shows what is committed.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn log_page(
        &self,
        name: &AppName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<LogPage, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.log_page(name, before, limit).await;
        }
        let name = name.clone();
        let limit = limit.min(self.inner.options.log_retention);
        let retention = self.inner.options.log_retention;
        self.read(move |conn, path| {
            rows::log(
                conn,
                path,
                &name,
                rows::LogQuery {
                    before,
                    limit,
                    retention,
                    max_bytes: LOG_PAGE_BYTES,
                },
            )
        })
        .await
    }

    /// The newest `limit` transitions of `name`, newest first; empty for an unknown monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn transitions(
        &self,
        name: &AppName,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.transitions(name, limit).await;
        }
        let name = name.clone();
        self.read(move |conn, path| rows::transitions(conn, path, &name, limit))
            .await
    }

    /// The history of `name` as of `now`: its hourly and daily buckets, every check recorded
    /// before the call included (its buckets are written with the batch it is in, which the
    /// writer commits at once). `Ok(None)` for an unknown monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn history(
        &self,
        name: &AppName,
        now: DateTime<Utc>,
    ) -> Result<Option<Series>, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.history(name, now).await;
        }
        self.call(|reply| writer::Op::History(Some(name.clone()), reply))
            .await?;
        let name = name.clone();
        self.read(move |conn, path| aggregates::history(conn, path, name.as_str(), now))
            .await
    }

    /// Every monitor's history at a glance, sorted by name: its totals over the last 24 hours
    /// and 30 days, and its newest `recent` checks, every check recorded before the call
    /// included (the buckets changed since their last write are written with the batch, which
    /// the writer commits at once rather than after its batch window, so asking often costs
    /// the writer at most two row writes per check and a commit per request).
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn glances(
        &self,
        now: DateTime<Utc>,
        recent: usize,
    ) -> Result<Vec<Glance>, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.glances(now, recent).await;
        }
        self.call(|reply| writer::Op::History(None, reply)).await?;
        let retention = self.inner.options.log_retention;
        self.read(move |conn, path| aggregates::glances(conn, path, now, recent, retention))
            .await
    }

    /// The newest `limit` incidents of `name` as of `now`, newest first, found from its
    /// transitions (the newest 10,000 kept) with their messages counted from the outbox. Shows
    /// what is committed. `Ok(None)` for an unknown monitor.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn incidents(
        &self,
        name: &AppName,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Option<Vec<Incident>>, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.incidents(name, now, limit).await;
        }
        let name = name.clone();
        self.read(move |conn, path| rows::incidents(conn, path, &name, now, limit))
            .await
    }

    /// [`Store::transitions`], blocking: meant for the start.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub fn transitions_blocking(
        &self,
        name: &AppName,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.read_blocking(|conn, path| rows::transitions(conn, path, name, limit))
            }
            Backend::Postgres(pg) => pg.transitions_blocking(name, limit),
        }
    }

    /// Deletes transitions and finished messages older than `now - retention`. The writer also
    /// does this once an hour by itself.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<Pruned, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.prune(now).await;
        }
        self.call(|reply| writer::Op::Prune(now, reply)).await
    }

    /// Puts `message` in the outbox, due at `message.due`. Durable when it returns; the id is for
    /// the `mark_*` calls. (Messages about checks are written with the check instead:
    /// [`CheckWrite::messages`].)
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn enqueue(&self, message: &Message) -> Result<i64, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::Enqueue(Box::new(message.clone()), reply))
                    .await
            }
            Backend::Postgres(pg) => pg.enqueue(message).await,
        }
    }

    /// Up to `limit` pending messages of `channel` due at `now`, the longest-waiting first.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn due_messages(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.due_messages(channel, now, limit).await;
        }
        let channel = channel.to_owned();
        self.read(move |conn, path| rows::due_messages(conn, path, &channel, now, limit))
            .await
    }

    /// How `channel`'s deliveries stand: pending messages, and the newest finished one.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn channel_status(&self, channel: &str) -> Result<ChannelStatus, StoreError> {
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.channel_status(channel).await;
        }
        let channel = channel.to_owned();
        self.read(move |conn, path| rows::channel_status(conn, path, &channel))
            .await
    }

    /// Marks message `id` as delivered at `at`: it is never sent again. Committed at once (not
    /// fsynced: see the module documentation). `Ok(false)` when `id` is not a pending message.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.update_message(id, writer::MessageUpdate::Delivered { at })
            .await
    }

    /// Marks message `id` as written to the log instead of sent (test mode, or no relay).
    /// `Ok(false)` when `id` is not a pending message.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn mark_logged(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.update_message(id, writer::MessageUpdate::Logged { at })
            .await
    }

    /// Records a failed attempt of message `id`: one more attempt, due again at
    /// `next_attempt_at`. `Ok(false)` when `id` is not a pending message.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn mark_retry(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.update_message(
            id,
            writer::MessageUpdate::Retry {
                next_attempt_at,
                error: error.to_owned(),
            },
        )
        .await
    }

    /// Gives message `id` up at `at` (a permanent failure): one more attempt, never due again.
    /// `Ok(false)` when `id` is not a pending message.
    ///
    /// # Errors
    ///
    /// As [`Store::save_monitor`].
    pub async fn mark_failed(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.update_message(
            id,
            writer::MessageUpdate::Failed {
                at,
                error: error.to_owned(),
            },
        )
        .await
    }

    /// Messages in the outbox not yet delivered, logged, given up or withdrawn.
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn pending_messages(&self) -> Result<usize, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => self.read(rows::pending_messages).await,
            Backend::Postgres(pg) => pg.pending_messages().await,
        }
    }

    /// Check log rows dropped so far because the writer could not keep up (see the module
    /// documentation); 0 on a healthy server.
    pub fn dropped_checks(&self) -> u64 {
        match &self.inner.backend {
            Backend::Sqlite { queue, .. } => queue.dropped_checks(),
            Backend::Postgres(pg) => pg.dropped_checks(),
        }
    }

    /// Commits everything queued, folds the WAL into the database file and stops the writer. Later
    /// calls fail with [`StoreError::Closed`]; later [`Store::record`]s are dropped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] when the last commit failed, [`StoreError::Closed`] when the store
    /// was already closed.
    pub async fn close(&self) -> Result<(), StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { readers, .. } => {
                let result = self.call(|reply| writer::Op::Close(Some(reply))).await;
                readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                result
            }
            Backend::Postgres(pg) => pg.close().await,
        }
    }

    /// Updates message `id` and counts the attempt's result (see [`crate::telemetry`]).
    async fn update_message(
        &self,
        id: i64,
        update: writer::MessageUpdate,
    ) -> Result<bool, StoreError> {
        let result = match &update {
            writer::MessageUpdate::Delivered { .. } => DeliveryResult::Delivered,
            writer::MessageUpdate::Logged { .. } => DeliveryResult::Logged,
            writer::MessageUpdate::Retry { .. } => DeliveryResult::Retry,
            writer::MessageUpdate::Failed { .. } => DeliveryResult::Failed,
        };
        let channel = match &self.inner.backend {
            Backend::Sqlite { .. } => {
                self.call(|reply| writer::Op::Message(id, update, reply))
                    .await?
            }
            Backend::Postgres(pg) => {
                let update = match update {
                    writer::MessageUpdate::Delivered { at } => {
                        postgres::MessageUpdate::Delivered(at)
                    }
                    writer::MessageUpdate::Logged { at } => postgres::MessageUpdate::Logged(at),
                    writer::MessageUpdate::Retry {
                        next_attempt_at,
                        error,
                    } => postgres::MessageUpdate::Retry(next_attempt_at, error),
                    writer::MessageUpdate::Failed { at, error } => {
                        postgres::MessageUpdate::Failed(at, error)
                    }
                };
                pg.update_message(id, update).await?
            }
        };
        if let Some(channel) = &channel {
            self.inner.telemetry.delivery(channel, result);
        }
        Ok(channel.is_some())
    }

    /// The server's own counters: checks recorded by outcome, message attempts by channel and
    /// result (counted here, where every check and every result passes), and the lateness of
    /// checks (the live set adds it).
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// Pending messages per channel (only channels that have some).
    ///
    /// # Errors
    ///
    /// As [`Store::log`].
    pub async fn pending_by_channel(&self) -> Result<Vec<(String, usize)>, StoreError> {
        match &self.inner.backend {
            Backend::Sqlite { .. } => self.read(rows::pending_by_channel).await,
            Backend::Postgres(pg) => pg.pending_by_channel().await,
        }
    }

    /// Queues an operation for the writer and waits for its answer.
    async fn call<T>(
        &self,
        op: impl FnOnce(writer::Reply<T>) -> writer::Op,
    ) -> Result<T, StoreError> {
        let Backend::Sqlite { queue, .. } = &self.inner.backend else {
            return Err(self.closed());
        };
        let (reply, answer) = oneshot::channel();
        if !queue.push(op(reply)) {
            return Err(self.closed());
        }
        answer.await.unwrap_or_else(|_| Err(self.closed()))
    }

    fn closed(&self) -> StoreError {
        StoreError::Closed {
            path: self.inner.path.clone(),
        }
    }

    /// Runs `f` on a read connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .unwrap_or_else(|join| {
                Err(StoreError::Sqlite {
                    path: self.inner.path.clone(),
                    reason: format!("read task failed: {join}"),
                })
            })
    }

    /// Runs `f` on a pooled read connection (opening one when none is idle).
    fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection, &Path) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Backend::Sqlite { queue, readers } = &self.inner.backend else {
            return Err(self.closed());
        };
        if queue.is_closing() {
            return Err(self.closed());
        }
        let idle = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => schema::open_reader(&self.inner.path)?,
        };
        let result = f(&conn, &self.inner.path);
        let mut readers = readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < READERS_KEPT && !queue.is_closing() {
            readers.push(conn);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_sync_and_cheap_to_clone() {
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<Store>();
    }

    #[test]
    fn options_follow_the_config() {
        let options = StoreOptions::from(&Config::default());
        assert_eq!(options, StoreOptions::default());
    }

    #[test]
    fn logged_check_serializes_flat() {
        let check = LoggedCheck {
            record: CheckRecord {
                time: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
                outcome: crate::health::Outcome::Pass,
                reason: crate::probe::Reason::Ok,
                http_status: Some(200),
                latency: Duration::from_micros(1500),
                body: None,
                body_digest: None,
                detail: None,
                cert_not_after: None,
                cert_days_left: None,
            },
            state: State::Healthy,
            ping: None,
        };
        let json = serde_json::to_value(&check).expect("serializes");
        assert_eq!(json["state"], "HEALTHY");
        assert_eq!(json["outcome"], "pass");
        assert_eq!(json["latency_ms"], 1.5);
        let back: LoggedCheck = serde_json::from_value(json).expect("parses");
        assert_eq!(back, check);
    }
}
