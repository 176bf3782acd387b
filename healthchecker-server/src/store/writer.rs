//! The writer thread: the one connection that writes, committing in batches.
//!
//! Callers push [`Op`]s into a [`Queue`] (a mutex-protected deque and a condition variable: a
//! push is a few hundred nanoseconds and never waits for the disk). The thread takes everything
//! queued at once, applies it in order in one transaction, writes each monitor's state row once,
//! commits, and then answers the callers that wait. When the transaction fails, the batch is
//! applied again with each operation in a savepoint of its own, so only the operation that fails
//! is lost. See the module documentation of `store` for the policy.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::aggregates::{self, Aggregates, Folded};
use super::checkpointer::Checkpointer;
use super::rows::{
    MAX_SEQ, check_key, latency_to_sql, outcome_to_sql, state_to_sql, time_to_sql, to_i64,
};
use super::schema::classify;
use super::{CheckWrite, Message, Pruned, StoreError, StoreOptions, StoredMonitor};
use crate::health::{Health, Transition};
use crate::probe::JsonBody;
use crate::registry::AppName;

/// Longest a recorded check waits before its batch commits.
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);

/// Queued checks that make the writer commit at once, without waiting for [`BATCH_WINDOW`].
pub const BATCH_MAX: usize = 4096;

/// Most checks waiting in the queue; beyond it the oldest lose their log row (not their state).
pub const QUEUE_CAP: usize = 50_000;

/// Transitions kept per monitor for checks whose log row was dropped (a monitor flapping at every
/// check while the writer is stalled); beyond it the oldest are dropped too.
const DROPPED_TRANSITIONS_CAP: usize = 64;

/// How often the writer prunes, optimizes and gives free pages back.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Where a caller waits for the answer.
pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One thing for the writer to do, in the order the calls were made.
pub(super) enum Op {
    /// Boxed: a check carries its row, transition, alerting and messages (some 260 bytes).
    Check(Box<CheckWrite>),
    Save(Box<StoredMonitor>, Reply<()>),
    /// A new spec and a fresh state (see `Store::restart_monitor`).
    Restart(Box<(StoredMonitor, Option<Transition>)>, Reply<bool>),
    Delete(AppName, Reply<bool>),
    Pause(AppName, bool, Reply<bool>),
    Maintenance(AppName, Option<String>, Reply<bool>),
    ServerState(String, Option<String>, Reply<()>),
    /// Answered once committed and fsynced.
    Flush(Reply<()>),
    /// Answered once committed, at the end of the batch window: no early commit, no fsync.
    Visible(Reply<()>),
    /// Answered once the monitor's aggregates (`None`: every monitor's) are written and
    /// committed: at once, without waiting for the batch window (an early commit, no fsync).
    History(Option<AppName>, Reply<()>),
    Prune(DateTime<Utc>, Reply<Pruned>),
    Enqueue(Box<Message>, Reply<i64>),
    /// Answered with the message's channel, or `None` when it was not pending.
    Message(i64, MessageUpdate, Reply<Option<String>>),
    /// Commit what came before, fold the WAL in, stop. `None` when the last handle was dropped.
    Close(Option<Reply<()>>),
}

impl Op {
    /// Whether the caller needs this durable on disk (fsynced) before it hears back: registrations
    /// and other changes users are told about. Delivery results and checks survive a crash of the
    /// process without it.
    fn needs_fsync(&self) -> bool {
        match self {
            Op::Save(..)
            | Op::Restart(..)
            | Op::Delete(..)
            | Op::Pause(..)
            | Op::Maintenance(..)
            | Op::ServerState(..)
            | Op::Flush(_)
            | Op::Prune(..)
            | Op::Enqueue(..)
            | Op::Close(_) => true,
            Op::Check(_) | Op::Visible(_) | Op::History(..) | Op::Message(..) => false,
        }
    }
}

/// What applying one operation gave, for its caller.
enum Done {
    Unit,
    Found(bool),
    Id(i64),
    Pruned(Pruned),
    /// A check: whether it was written (false for an unknown monitor).
    Check(bool),
    /// A message update: the message's channel, `None` when it was not pending.
    Channel(Option<String>),
}

/// What happened to a message.
pub(super) enum MessageUpdate {
    Delivered {
        at: DateTime<Utc>,
    },
    Logged {
        at: DateTime<Utc>,
    },
    Retry {
        next_attempt_at: DateTime<Utc>,
        error: String,
    },
    Failed {
        at: DateTime<Utc>,
        error: String,
    },
}

/// What is left of checks whose log rows were dropped because the queue was full: the latest
/// health of the monitor and the transitions, so no state is lost.
struct Dropped {
    /// Order of the newest dropped check among all queued operations.
    seq: u64,
    health: Health,
    transitions: Vec<Transition>,
}

/// The queue between the callers and the writer thread.
pub(super) struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    dropped_total: AtomicU64,
}

#[derive(Default)]
struct Pending {
    /// Operations with their order number.
    ops: VecDeque<(u64, Op)>,
    next_seq: u64,
    /// `Op::Check`s in `ops`.
    checks: usize,
    /// When the oldest queued check arrived.
    first_check_at: Option<Instant>,
    /// Someone waits for an answer: commit now.
    urgent: bool,
    /// A close was queued: accept nothing more.
    closing: bool,
    dropped: HashMap<AppName, Dropped>,
    dropped_rows: u64,
    dropped_transitions: u64,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a check; never blocks on the disk, never fails.
    pub(super) fn record(&self, write: CheckWrite) {
        let mut pending = self.lock();
        if pending.closing {
            return;
        }
        if pending.checks >= QUEUE_CAP {
            pending.drop_oldest_check();
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
        }
        let seq = pending.next_seq;
        pending.next_seq += 1;
        let urgent = write.is_urgent();
        pending.ops.push_back((seq, Op::Check(Box::new(write))));
        pending.checks += 1;
        // A check that decided messages is committed at once: they are delivered only then.
        pending.urgent |= urgent;
        // Wake the writer only when it has something new to time, or must not wait any longer.
        let wake = urgent || pending.first_check_at.is_none() || pending.checks == BATCH_MAX;
        if pending.first_check_at.is_none() {
            pending.first_check_at = Some(Instant::now());
        }
        drop(pending);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Queues an operation that someone waits for; false when the store is closing.
    pub(super) fn push(&self, op: Op) -> bool {
        let mut pending = self.lock();
        if pending.closing {
            return false;
        }
        if matches!(op, Op::Close(_)) {
            pending.closing = true;
        }
        let seq = pending.next_seq;
        pending.next_seq += 1;
        // A reader that only wants to see what was recorded waits for the batch as it is; one
        // that asks for history (the dashboard's list, a monitor's uptime) has it committed at
        // once: up to BATCH_WINDOW of waiting was most of a dashboard's first render.
        pending.urgent |= !matches!(op, Op::Visible(_));
        pending.ops.push_back((seq, op));
        drop(pending);
        self.wake.notify_one();
        true
    }

    /// The last handle is gone: commit what is queued and stop.
    pub(super) fn shut_down(&self) {
        let _ = self.push(Op::Close(None));
    }

    pub(super) fn is_closing(&self) -> bool {
        self.lock().closing
    }

    pub(super) fn dropped_checks(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Waits until a batch is due (or `deadline` passes), then takes everything queued.
    fn take(&self, deadline: Instant) -> Batch {
        let mut pending = self.lock();
        loop {
            let now = Instant::now();
            // Without checks to wait for, whatever is queued (a reader's `Visible`) goes now.
            let due = pending.urgent
                || pending.checks >= BATCH_MAX
                || pending
                    .first_check_at
                    .map_or(!pending.ops.is_empty(), |first| now >= first + BATCH_WINDOW);
            if due || now >= deadline {
                break;
            }
            let until = pending
                .first_check_at
                .map_or(deadline, |first| (first + BATCH_WINDOW).min(deadline));
            pending = self
                .wake
                .wait_timeout(pending, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let mut dropped: Vec<(AppName, Dropped)> = pending.dropped.drain().collect();
        dropped.sort_by_key(|(_, dropped)| dropped.seq);
        let batch = Batch {
            ops: std::mem::take(&mut pending.ops),
            dropped,
            dropped_rows: std::mem::take(&mut pending.dropped_rows),
            dropped_transitions: std::mem::take(&mut pending.dropped_transitions),
        };
        pending.checks = 0;
        pending.first_check_at = None;
        pending.urgent = false;
        batch
    }
}

impl Pending {
    /// The queue is full: the oldest queued check gives up its log row; its health and transition
    /// are kept (merged per monitor) and still written, in order, with the next batch. A check
    /// that decided messages or a new alerting state is never dropped (those are rare, and are
    /// committed at once anyway).
    fn drop_oldest_check(&mut self) {
        let Some(index) = self
            .ops
            .iter()
            .position(|(_, op)| matches!(op, Op::Check(write) if !write.is_urgent()))
        else {
            return;
        };
        let Some((seq, Op::Check(write))) = self.ops.remove(index) else {
            return;
        };
        let write = *write;
        self.checks -= 1;
        self.dropped_rows += 1;
        if self.checks == 0 {
            self.first_check_at = None;
        }
        let transitions = write.transition.into_iter();
        match self.dropped.entry(write.name) {
            Entry::Occupied(mut entry) => {
                let dropped = entry.get_mut();
                dropped.seq = seq;
                dropped.health = write.health;
                dropped.transitions.extend(transitions);
                let excess = dropped
                    .transitions
                    .len()
                    .saturating_sub(DROPPED_TRANSITIONS_CAP);
                dropped.transitions.drain(..excess);
                self.dropped_transitions += excess as u64;
            }
            Entry::Vacant(entry) => {
                entry.insert(Dropped {
                    seq,
                    health: write.health,
                    transitions: transitions.collect(),
                });
            }
        }
    }
}

/// What the writer took from the queue.
struct Batch {
    ops: VecDeque<(u64, Op)>,
    /// Sorted by `seq`.
    dropped: Vec<(AppName, Dropped)>,
    dropped_rows: u64,
    dropped_transitions: u64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.dropped.is_empty()
    }

    /// Whether someone waits for this batch to be durable on disk.
    fn needs_sync(&self) -> bool {
        self.ops.iter().any(|(_, op)| op.needs_fsync())
    }
}

/// Starts the writer thread on `conn`.
pub(super) fn spawn(
    mut conn: Connection,
    path: PathBuf,
    options: StoreOptions,
    outbox_changed: tokio::sync::watch::Sender<u64>,
) -> Result<Arc<Queue>, StoreError> {
    let monitors = load_slots(&conn, &path)?;
    let aggregates = Aggregates::load(&conn, &path, monitors.values().map(|slot| slot.id))?;
    let queue = Arc::new(Queue {
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        dropped_total: AtomicU64::new(0),
    });
    let checkpointer = Checkpointer::attach(&mut conn, &path)?;

    let writer = Writer {
        conn,
        checkpointer,
        trim_step: trim_step(options.log_retention),
        path: path.clone(),
        options,
        monitors,
        aggregates,
        sync_full: false,
        outbox_changed,
    };
    let thread_queue = Arc::clone(&queue);
    std::thread::Builder::new()
        .name("hc-store-writer".to_owned())
        .spawn(move || writer.run(&thread_queue))
        .map_err(|error| StoreError::Sqlite {
            path,
            reason: format!("cannot start the writer thread: {error}"),
        })?;
    Ok(queue)
}

/// Every how many checks of a monitor the log rows beyond the retention are deleted.
pub(super) fn trim_step(log_retention: usize) -> i64 {
    to_i64((log_retention / 10).clamp(1, 1000))
}

/// What the writer knows of a monitor.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: i64,
    /// Sequence number of the newest log row.
    last_seq: i64,
}

fn load_slots(conn: &Connection, path: &Path) -> Result<HashMap<AppName, Slot>, StoreError> {
    let sql = |error: rusqlite::Error| classify(path, &error);
    let mut statement = conn.prepare("SELECT name, id FROM monitors").map_err(sql)?;
    let mut newest = conn
        .prepare("SELECT max(id) FROM checks WHERE id BETWEEN ?1 AND ?2")
        .map_err(sql)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(sql)?;
    let mut slots = HashMap::new();
    for row in rows {
        let (name, id) = row.map_err(sql)?;
        let key: Option<i64> = newest
            .query_row([check_key(id, 0), check_key(id, MAX_SEQ)], |row| row.get(0))
            .map_err(sql)?;
        let slot = Slot {
            id,
            last_seq: key.map_or(0, |key| key & MAX_SEQ),
        };
        let name = AppName::parse(&name).map_err(|error| StoreError::Data {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        slots.insert(name, slot);
    }
    Ok(slots)
}

/// The state row of a monitor as of the newest write in the batch.
#[derive(Clone, Copy)]
struct StateRow {
    health: Health,
    /// Time of the newest transition in the batch, if any.
    since: Option<i64>,
    /// The newest log row when the health was written (a newer row supersedes it).
    health_seq: i64,
}

/// Sends each waiting caller its answer: the value of its operation, or why it failed.
fn answer(op: Op, result: Result<Done, StoreError>) -> Option<Option<Reply<()>>> {
    fn send<T>(reply: Reply<T>, result: Result<Done, StoreError>, value: impl FnOnce(Done) -> T) {
        let _ = reply.send(result.map(value));
    }
    match op {
        Op::Check(_) => {}
        Op::Save(_, reply)
        | Op::Flush(reply)
        | Op::Visible(reply)
        | Op::History(_, reply)
        | Op::ServerState(_, _, reply) => send(reply, result, drop),
        Op::Delete(_, reply)
        | Op::Pause(_, _, reply)
        | Op::Maintenance(_, _, reply)
        | Op::Restart(_, reply) => {
            send(reply, result, |done| matches!(done, Done::Found(true)));
        }
        Op::Message(_, _, reply) => send(reply, result, |done| match done {
            Done::Channel(channel) => channel,
            _ => None,
        }),
        Op::Enqueue(_, reply) => send(reply, result, |done| match done {
            Done::Id(id) => id,
            _ => 0,
        }),
        Op::Prune(_, reply) => send(reply, result, |done| match done {
            Done::Pruned(pruned) => pruned,
            _ => Pruned::default(),
        }),
        Op::Close(reply) => return Some(reply),
    }
    None
}

/// A batch failure, once for every caller that waited on it.
fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Corrupt { path, reason } => StoreError::Corrupt {
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::PermissionDenied { path, reason } => StoreError::PermissionDenied {
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::Data { path, reason } => StoreError::Data {
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::Postgres { path, reason } => StoreError::Postgres {
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::NotShared { path } => StoreError::NotShared { path: path.clone() },
        StoreError::TooNew {
            path,
            found,
            supported,
        } => StoreError::TooNew {
            path: path.clone(),
            found: *found,
            supported: *supported,
        },
        StoreError::Closed { path } => StoreError::Closed { path: path.clone() },
        StoreError::Sqlite { path, reason } => StoreError::Sqlite {
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::CreateDir { path, source } => StoreError::Sqlite {
            path: path.clone(),
            reason: source.to_string(),
        },
    }
}

struct Writer {
    conn: Connection,
    /// Folds the WAL back into the file beside this thread.
    checkpointer: Checkpointer,
    path: PathBuf,
    options: StoreOptions,
    trim_step: i64,
    monitors: HashMap<AppName, Slot>,
    /// Each monitor's hour and day being filled.
    aggregates: Aggregates,
    /// `synchronous` is FULL right now (else NORMAL).
    sync_full: bool,
    /// Changed after a commit that put messages in the outbox.
    outbox_changed: tokio::sync::watch::Sender<u64>,
}

/// What a batch did, for the trace and the delivery worker.
#[derive(Default)]
struct Tally {
    rows: u64,
    ignored: u64,
    calls: usize,
    messages: usize,
}

impl Writer {
    fn run(mut self, queue: &Queue) {
        // Once at start too: a server that was down for weeks prunes at once.
        self.maintain();
        let mut next_maintenance = Instant::now() + MAINTENANCE_EVERY;
        loop {
            let batch = queue.take(next_maintenance);
            if batch.dropped_rows > 0 {
                tracing::warn!(
                    "database {}: the writer fell behind; {} check log rows dropped (the states \
                     of their monitors are kept), {} in all",
                    self.path.display(),
                    batch.dropped_rows,
                    queue.dropped_checks()
                );
            }
            if batch.dropped_transitions > 0 {
                tracing::warn!(
                    "database {}: {} transitions dropped while the writer fell behind",
                    self.path.display(),
                    batch.dropped_transitions
                );
            }
            let close = if batch.is_empty() {
                None
            } else {
                self.commit(batch)
            };
            if let Some((reply, failed)) = close {
                let result = match failed {
                    Some(error) => {
                        let _ = self.finish();
                        Err(error)
                    }
                    None => self.finish(),
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
                return;
            }
            if Instant::now() >= next_maintenance {
                self.maintain();
                next_maintenance = Instant::now() + MAINTENANCE_EVERY;
            }
        }
    }

    /// Applies and commits one batch, then answers. When the transaction fails, applies the batch
    /// again with each operation in a savepoint, so that only the failing ones fail. Returns the
    /// close request, if the batch held one, with the batch's error.
    #[allow(clippy::type_complexity)]
    fn commit(&mut self, batch: Batch) -> Option<(Option<Reply<()>>, Option<StoreError>)> {
        let started = Instant::now();
        let sync_full = batch.needs_sync();
        let Batch { ops, dropped, .. } = batch;
        let mut tally = Tally::default();
        let mut results = match self.transaction(&ops, &dropped, sync_full, false, &mut tally) {
            Ok(results) => results,
            Err(error) => {
                tracing::warn!(
                    "database {}: a batch of {} operations failed ({error}); applying them one by one",
                    self.path.display(),
                    ops.len()
                );
                self.reload_slots();
                tally = Tally::default();
                match self.transaction(&ops, &dropped, sync_full, true, &mut tally) {
                    Ok(results) => {
                        if results.iter().any(Result::is_err) {
                            // What a failed operation changed in memory is rolled back too.
                            self.reload_slots();
                        }
                        results
                    }
                    Err(error) => {
                        tracing::error!(
                            "database {}: a batch of {} check log rows and {} waiting calls was not saved: {error}",
                            self.path.display(),
                            tally.rows,
                            tally.calls
                        );
                        self.reload_slots();
                        ops.iter().map(|_| Err(copy_error(&error))).collect()
                    }
                }
            }
        };
        for (result, (_, op)) in results.iter().zip(&ops) {
            if let (Err(error), Op::Check(write)) = (result, op) {
                tracing::error!(monitor = %write.name, "database {}: a check was not saved: {error}", self.path.display());
            }
        }
        tracing::trace!(
            rows = tally.rows,
            ignored = tally.ignored,
            calls = tally.calls,
            messages = tally.messages,
            "batch committed in {:?}",
            started.elapsed()
        );
        if tally.messages > 0 {
            self.outbox_changed
                .send_modify(|changes| *changes = changes.wrapping_add(1));
        }
        let mut close = None;
        let mut batch_error = None;
        for ((_, op), result) in ops.into_iter().zip(results.drain(..)) {
            if let Err(error) = &result {
                batch_error.get_or_insert_with(|| copy_error(error));
            }
            if let Some(reply) = answer(op, result) {
                close = Some(reply);
            }
        }
        close.map(|reply| (reply, batch_error))
    }

    /// The writer's view of the monitors and their aggregates, read again after a failure
    /// (what a failed transaction folded in memory is rolled back with it).
    fn reload_slots(&mut self) {
        match load_slots(&self.conn, &self.path) {
            Ok(monitors) => self.monitors = monitors,
            Err(error) => tracing::error!("{error}"),
        }
        let ids = self.monitors.values().map(|slot| slot.id);
        match Aggregates::load(&self.conn, &self.path, ids) {
            Ok(aggregates) => self.aggregates = aggregates,
            Err(error) => tracing::error!("{error}"),
        }
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |error| classify(&self.path, &error)
    }

    /// One transaction over the batch; with `isolate`, each operation in a savepoint whose
    /// failure is that operation's result alone. `Err` when the transaction as a whole failed.
    fn transaction(
        &mut self,
        ops: &VecDeque<(u64, Op)>,
        dropped: &[(AppName, Dropped)],
        sync_full: bool,
        isolate: bool,
        tally: &mut Tally,
    ) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
        if sync_full != self.sync_full {
            let level = if sync_full { "FULL" } else { "NORMAL" };
            self.conn
                .pragma_update(None, "synchronous", level)
                .map_err(self.sql())?;
            self.sync_full = sync_full;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| classify(&self.path, &error))?;
        let mut apply = Apply {
            conn: &tx,
            path: &self.path,
            options: &self.options,
            trim_step: self.trim_step,
            monitors: &mut self.monitors,
            aggregates: &mut self.aggregates,
            states: HashMap::new(),
        };
        let mut results = Vec::with_capacity(ops.len());
        let mut dropped = dropped.iter().peekable();
        for (seq, op) in ops {
            while let Some((name, lost)) = dropped.next_if(|(_, lost)| lost.seq < *seq) {
                apply.dropped(name, lost)?;
            }
            let result = if isolate {
                apply.isolated(op)
            } else {
                Ok(apply.op(op)?)
            };
            match (&result, op) {
                (Ok(Done::Check(true)), Op::Check(write)) => {
                    tally.rows += 1;
                    tally.messages += write.messages.len();
                }
                (Ok(Done::Check(false)), _) => tally.ignored += 1,
                (Ok(_), Op::Enqueue(..)) => {
                    tally.calls += 1;
                    tally.messages += 1;
                }
                (_, Op::Check(_)) => {}
                _ => tally.calls += 1,
            }
            results.push(result);
        }
        for (name, lost) in dropped {
            apply.dropped(name, lost)?;
        }
        apply
            .aggregates
            .write(apply.conn, apply.path, Instant::now())?;
        apply.write_states()?;
        tx.commit().map_err(|error| classify(&self.path, &error))?;
        Ok(results)
    }

    /// Hourly: prune by age, let SQLite refresh its statistics, give free pages back.
    fn maintain(&mut self) {
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| classify(&self.path, &error))?;
            let pruned = prune(&tx, &self.path, self.options.retention, Utc::now())?;
            tx.commit().map_err(|error| classify(&self.path, &error))?;
            self.conn
                .execute_batch("PRAGMA optimize")
                .map_err(self.sql())?;
            let pages: i64 = self
                .conn
                .pragma_query_value(None, "page_count", |row| row.get(0))
                .map_err(self.sql())?;
            let free: i64 = self
                .conn
                .pragma_query_value(None, "freelist_count", |row| row.get(0))
                .map_err(self.sql())?;
            if free > 0 && free * 4 > pages {
                self.conn
                    .execute_batch("PRAGMA incremental_vacuum")
                    .map_err(self.sql())?;
                tracing::info!(
                    "database {}: gave {free} free pages back to the file system",
                    self.path.display()
                );
            }
            Ok::<_, StoreError>(pruned)
        })();
        match result {
            Ok(pruned) => tracing::debug!(
                "database {}: pruned {} transitions, {} messages and {} history buckets",
                self.path.display(),
                pruned.transitions,
                pruned.messages,
                pruned.buckets
            ),
            Err(error) => tracing::warn!("maintenance failed: {error}"),
        }
    }

    /// The store closes: fold the WAL into the main file so it stands alone (a copy is a backup).
    fn finish(mut self) -> Result<(), StoreError> {
        self.checkpointer.stop();
        let sql = |error: rusqlite::Error| classify(&self.path, &error);
        self.conn.execute_batch("PRAGMA optimize").map_err(sql)?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql)?;
        self.conn.close().map_err(|(_, error)| sql(error))
    }
}

/// Applying one batch inside its transaction.
struct Apply<'a> {
    conn: &'a Connection,
    path: &'a Path,
    options: &'a StoreOptions,
    trim_step: i64,
    monitors: &'a mut HashMap<AppName, Slot>,
    aggregates: &'a mut Aggregates,
    /// Latest state per monitor id, written once at the end.
    states: HashMap<i64, StateRow>,
}

impl Apply<'_> {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |error| classify(self.path, &error)
    }

    /// [`Apply::op`] in a savepoint: its failure undoes only its own changes.
    fn isolated(&mut self, op: &Op) -> Result<Done, StoreError> {
        self.conn
            .execute_batch("SAVEPOINT op")
            .map_err(self.sql())?;
        let states = self.states.clone();
        let result = self.op(op);
        if result.is_err() {
            self.states = states;
            self.conn
                .execute_batch("ROLLBACK TO op")
                .map_err(self.sql())?;
        }
        self.conn.execute_batch("RELEASE op").map_err(self.sql())?;
        result
    }

    fn op(&mut self, op: &Op) -> Result<Done, StoreError> {
        Ok(match op {
            Op::Check(write) => Done::Check(self.check(write)?),
            Op::Save(monitor, _) => {
                self.save(monitor)?;
                Done::Unit
            }
            Op::Restart(restart, _) => Done::Found(self.restart(&restart.0, restart.1.as_ref())?),
            Op::Delete(name, _) => Done::Found(self.delete(name)?),
            Op::Pause(name, paused, _) => Done::Found(self.pause(name, *paused)?),
            Op::Maintenance(name, maintenance, _) => {
                Done::Found(self.maintenance(name, maintenance.as_deref())?)
            }
            Op::ServerState(key, value, _) => {
                self.server_state(key, value.as_deref())?;
                Done::Unit
            }
            // A flush makes the log durable; the aggregates follow it (they are folded again from
            // the log after a crash), so a push monitor's ping does not write them every time.
            Op::Visible(_) | Op::Flush(_) => Done::Unit,
            Op::Close(_) => {
                self.aggregates.request_all();
                Done::Unit
            }
            Op::History(Some(name), _) => {
                if let Some(slot) = self.monitors.get(name) {
                    self.aggregates.request(slot.id);
                }
                Done::Unit
            }
            Op::History(None, _) => {
                self.aggregates.request_all();
                Done::Unit
            }
            Op::Prune(now, _) => {
                Done::Pruned(prune(self.conn, self.path, self.options.retention, *now)?)
            }
            Op::Enqueue(message, _) => Done::Id(self.enqueue(message)?),
            Op::Message(id, update, _) => Done::Channel(self.update_message(*id, update)?),
        })
    }

    /// One check: its log row, its transition, what it decided for the outbox, its monitor's
    /// state. False for an unknown monitor.
    fn check(&mut self, write: &CheckWrite) -> Result<bool, StoreError> {
        let Some(slot) = self.monitors.get(&write.name).copied() else {
            return Ok(false);
        };
        let slot = Slot {
            last_seq: slot.last_seq + 1,
            ..slot
        };
        let record = &write.check.record;
        let body = record.body.as_ref().map(JsonBody::as_str);
        // A struct of a string and numbers always serializes.
        let ping = write
            .check
            .ping
            .as_ref()
            .map(|ping| serde_json::to_string(ping).unwrap_or_default());
        let digest = record.body_digest.as_ref();
        self.conn
            .prepare_cached(
                "INSERT INTO checks (id, time, outcome, reason, http_status, latency_ns, body,
                                     detail, state, passes, fails, recovering, cert_not_after,
                                     body_size, body_hash, ping)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    check_key(slot.id, slot.last_seq),
                    time_to_sql(record.time),
                    outcome_to_sql(record.outcome),
                    record.reason.as_str(),
                    record.http_status,
                    latency_to_sql(record.latency),
                    body,
                    record.detail,
                    state_to_sql(write.health.state),
                    write.health.passes,
                    write.health.fails,
                    write.health.recovering,
                    record.cert_not_after.map(time_to_sql),
                    digest.map(|digest| i64::try_from(digest.size).unwrap_or(i64::MAX)),
                    digest.map(|digest| digest.hash.to_string()),
                    ping,
                ])
            })
            .map_err(self.sql())?;
        self.aggregates.fold(
            slot.id,
            &Folded {
                seq: slot.last_seq,
                time: time_to_sql(record.time),
                outcome: outcome_to_sql(record.outcome),
                latency: latency_to_sql(record.latency),
            },
            Instant::now(),
        );
        if slot.last_seq % self.trim_step == 0 {
            let keep_after = slot.last_seq - to_i64(self.options.log_retention);
            if keep_after > 0 {
                self.conn
                    .prepare_cached("DELETE FROM checks WHERE id BETWEEN ?1 AND ?2")
                    .and_then(|mut statement| {
                        statement.execute(params![
                            check_key(slot.id, 0),
                            check_key(slot.id, keep_after)
                        ])
                    })
                    .map_err(self.sql())?;
            }
        }
        let since = match &write.transition {
            Some(transition) => Some(self.transition(slot.id, transition)?),
            None => None,
        };
        self.decided(slot.id, &write.name, write)?;
        if let Some(entry) = self.monitors.get_mut(&write.name) {
            *entry = slot;
        }
        // The row carries the health; the state row only needs `since` when the state changed.
        if since.is_some() {
            self.set_state(slot, write.health, since);
        }
        Ok(true)
    }

    /// What the alert policy decided with a check: the alerting state, withdrawals, messages.
    fn decided(&mut self, id: i64, name: &AppName, write: &CheckWrite) -> Result<(), StoreError> {
        if let Some(alerting) = &write.alerting {
            self.conn
                .prepare_cached("UPDATE monitors SET alerting = ?2 WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![id, alerting]))
                .map_err(self.sql())?;
        }
        if let Some(push) = &write.push {
            self.conn
                .prepare_cached("UPDATE monitors SET push = ?2 WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![id, push]))
                .map_err(self.sql())?;
        }
        for event_id in &write.withdraw {
            self.conn
                .prepare_cached(
                    "UPDATE messages SET status = 'withdrawn', done_at = ?3
                     WHERE monitor = ?1 AND event_id = ?2 AND status = 'pending'",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        name.as_str(),
                        event_id,
                        time_to_sql(write.check.record.time)
                    ])
                })
                .map_err(self.sql())?;
        }
        if let Some(group) = &write.release {
            self.conn
                .prepare_cached(
                    "UPDATE messages SET next_attempt_at = ?2
                     WHERE group_key = ?1 AND status = 'pending' AND next_attempt_at > ?2",
                )
                .and_then(|mut statement| {
                    statement.execute(params![group, time_to_sql(Utc::now())])
                })
                .map_err(self.sql())?;
        }
        for message in &write.messages {
            if message.monitor == name.as_str() {
                self.enqueue(message)?;
            } else {
                self.enqueue(&Message {
                    monitor: name.to_string(),
                    ..message.clone()
                })?;
            }
        }
        Ok(())
    }

    /// The remains of checks whose log rows were dropped: their transitions and latest health.
    fn dropped(&mut self, name: &AppName, lost: &Dropped) -> Result<(), StoreError> {
        let Some(&slot) = self.monitors.get(name) else {
            return Ok(());
        };
        let mut since = None;
        for transition in &lost.transitions {
            since = Some(self.transition(slot.id, transition)?);
        }
        self.set_state(slot, lost.health, since);
        Ok(())
    }

    fn set_state(&mut self, slot: Slot, health: Health, since: Option<i64>) {
        let row = self.states.entry(slot.id).or_insert(StateRow {
            health,
            since: None,
            health_seq: slot.last_seq,
        });
        row.health = health;
        row.since = since.or(row.since);
        row.health_seq = slot.last_seq;
    }

    /// Inserts a transition; returns its time as stored.
    fn transition(&mut self, id: i64, transition: &Transition) -> Result<i64, StoreError> {
        let time = time_to_sql(transition.time);
        self.conn
            .prepare_cached(
                "INSERT INTO transitions (monitor_id, time, from_state, to_state, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    time,
                    state_to_sql(transition.from),
                    state_to_sql(transition.to),
                    transition.reason,
                ])
            })
            .map_err(self.sql())?;
        Ok(time)
    }

    fn save(&mut self, monitor: &StoredMonitor) -> Result<(), StoreError> {
        let spec = serde_json::to_string(&monitor.spec).map_err(|error| StoreError::Data {
            path: self.path.to_owned(),
            reason: format!("spec of {}: {error}", monitor.name),
        })?;
        let registered_at = time_to_sql(monitor.registered_at);
        if let Some(slot) = self.monitors.get(&monitor.name) {
            self.conn
                .prepare_cached(
                    "UPDATE monitors SET spec = ?2, paused = ?3, registered_at = ?4, source = ?5
                     WHERE id = ?1",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        slot.id,
                        spec,
                        monitor.paused,
                        registered_at,
                        monitor.source.as_str()
                    ])
                })
                .map_err(self.sql())?;
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT INTO monitors (name, spec, paused, registered_at, alerting, source,
                                       maintenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    monitor.name.as_str(),
                    spec,
                    monitor.paused,
                    registered_at,
                    monitor.alerting.as_deref().unwrap_or("{}"),
                    monitor.source.as_str(),
                    monitor.maintenance,
                ])
            })
            .map_err(self.sql())?;
        let id = self.conn.last_insert_rowid();
        let health = monitor.health;
        self.conn
            .prepare_cached(
                "INSERT INTO states (monitor_id, state, passes, fails, recovering, since, health_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    state_to_sql(health.state),
                    health.passes,
                    health.fails,
                    health.recovering,
                    monitor.since.map(time_to_sql),
                ])
            })
            .map_err(self.sql())?;
        self.monitors
            .insert(monitor.name.clone(), Slot { id, last_seq: 0 });
        Ok(())
    }

    /// A new spec for an existing monitor and its state started over (see
    /// `Store::restart_monitor`); false for an unknown monitor.
    fn restart(
        &mut self,
        monitor: &StoredMonitor,
        transition: Option<&Transition>,
    ) -> Result<bool, StoreError> {
        let Some(slot) = self.monitors.get(&monitor.name).copied() else {
            return Ok(false);
        };
        self.save(monitor)?;
        self.conn
            .prepare_cached("UPDATE monitors SET alerting = '{}' WHERE id = ?1")
            .and_then(|mut statement| statement.execute(params![slot.id]))
            .map_err(self.sql())?;
        self.withdraw_all(&monitor.name)?;
        let since = match transition {
            Some(transition) => Some(self.transition(slot.id, transition)?),
            None => None,
        };
        self.set_state(slot, monitor.health, since);
        Ok(true)
    }

    /// Withdraws every pending message about `name`: it was paused or removed.
    fn withdraw_all(&self, name: &AppName) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE messages SET status = 'withdrawn', done_at = ?2
                 WHERE monitor = ?1 AND status = 'pending'",
            )
            .and_then(|mut statement| {
                statement.execute(params![name.as_str(), time_to_sql(Utc::now())])
            })
            .map_err(self.sql())?;
        Ok(())
    }

    fn maintenance(
        &mut self,
        name: &AppName,
        maintenance: Option<&str>,
    ) -> Result<bool, StoreError> {
        let Some(slot) = self.monitors.get(name).copied() else {
            return Ok(false);
        };
        self.conn
            .prepare_cached("UPDATE monitors SET maintenance = ?2 WHERE id = ?1")
            .and_then(|mut statement| statement.execute(params![slot.id, maintenance]))
            .map_err(self.sql())?;
        Ok(true)
    }

    fn server_state(&mut self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let statement = match value {
            Some(_) => {
                "INSERT INTO server_state (key, value) VALUES (?1, ?2)
                        ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            }
            None => "DELETE FROM server_state WHERE key = ?1 AND ?2 IS NULL",
        };
        self.conn
            .prepare_cached(statement)
            .and_then(|mut statement| statement.execute(params![key, value]))
            .map_err(self.sql())?;
        Ok(())
    }

    fn pause(&mut self, name: &AppName, paused: bool) -> Result<bool, StoreError> {
        let Some(slot) = self.monitors.get(name).copied() else {
            return Ok(false);
        };
        if paused {
            self.conn
                .prepare_cached("UPDATE monitors SET paused = 1, alerting = '{}' WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![slot.id]))
                .map_err(self.sql())?;
            self.withdraw_all(name)?;
        } else {
            self.conn
                .prepare_cached("UPDATE monitors SET paused = 0 WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![slot.id]))
                .map_err(self.sql())?;
        }
        Ok(true)
    }

    fn delete(&mut self, name: &AppName) -> Result<bool, StoreError> {
        let Some(slot) = self.monitors.get(name).copied() else {
            return Ok(false);
        };
        self.conn
            .prepare_cached("DELETE FROM checks WHERE id BETWEEN ?1 AND ?2")
            .and_then(|mut statement| {
                statement.execute(params![check_key(slot.id, 0), check_key(slot.id, MAX_SEQ)])
            })
            .map_err(self.sql())?;
        for sql in [
            "DELETE FROM transitions WHERE monitor_id = ?1",
            "DELETE FROM states WHERE monitor_id = ?1",
            "DELETE FROM monitors WHERE id = ?1",
        ] {
            self.conn
                .prepare_cached(sql)
                .and_then(|mut statement| statement.execute([slot.id]))
                .map_err(self.sql())?;
        }
        aggregates::delete(self.conn, self.path, slot.id)?;
        self.withdraw_all(name)?;
        self.monitors.remove(name);
        self.states.remove(&slot.id);
        self.aggregates.forget(slot.id);
        Ok(true)
    }

    fn enqueue(&mut self, message: &Message) -> Result<i64, StoreError> {
        let recipients = serde_json::Value::from(message.recipients.clone()).to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO messages (monitor, channel, recipients, event_id, payload, created_at,
                                       next_attempt_at, group_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    message.monitor,
                    message.channel,
                    recipients,
                    message.event_id,
                    message.payload,
                    time_to_sql(message.created_at),
                    time_to_sql(message.due),
                    message.group,
                ])
            })
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    fn update_message(
        &mut self,
        id: i64,
        update: &MessageUpdate,
    ) -> Result<Option<String>, StoreError> {
        let changed = match update {
            MessageUpdate::Delivered { at } => self.finish_message(id, "delivered", *at, None),
            MessageUpdate::Logged { at } => self.finish_message(id, "logged", *at, None),
            MessageUpdate::Failed { at, error } => {
                self.finish_message(id, "failed", *at, Some(error))
            }
            MessageUpdate::Retry {
                next_attempt_at,
                error,
            } => self
                .conn
                .prepare_cached(
                    "UPDATE messages SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
                     WHERE id = ?1 AND status = 'pending'",
                )
                .and_then(|mut statement| {
                    statement.execute(params![id, time_to_sql(*next_attempt_at), error])
                }),
        }
        .map_err(self.sql())?;
        if changed == 0 {
            return Ok(None);
        }
        self.conn
            .prepare_cached("SELECT channel FROM messages WHERE id = ?1")
            .and_then(|mut statement| statement.query_row([id], |row| row.get(0)))
            .map(Some)
            .map_err(self.sql())
    }

    fn finish_message(
        &self,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> rusqlite::Result<usize> {
        // A failure is one more attempt; a delivery or a logged message is not a failed attempt.
        self.conn
            .prepare_cached(
                "UPDATE messages SET status = ?2, done_at = ?3,
                        attempts = attempts + (?4 IS NOT NULL),
                        last_error = coalesce(?4, last_error)
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, status, time_to_sql(at), error])
    }

    /// Writes each monitor's state row once, as of its newest write in the batch.
    fn write_states(&mut self) -> Result<(), StoreError> {
        if self.states.is_empty() {
            return Ok(());
        }
        let mut statement = self
            .conn
            .prepare_cached(
                "UPDATE states SET state = ?2, passes = ?3, fails = ?4, recovering = ?5,
                        since = coalesce(?6, since), health_seq = ?7
                 WHERE monitor_id = ?1",
            )
            .map_err(|error| classify(self.path, &error))?;
        for (id, row) in self.states.drain() {
            statement
                .execute(params![
                    id,
                    state_to_sql(row.health.state),
                    row.health.passes,
                    row.health.fails,
                    row.health.recovering,
                    row.since,
                    row.health_seq,
                ])
                .map_err(|error| classify(self.path, &error))?;
        }
        Ok(())
    }
}

/// Deletes transitions and finished messages older than `now - retention`.
fn prune(
    conn: &Connection,
    path: &Path,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<Pruned, StoreError> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let cutoff = time_to_sql(
        now.checked_sub_signed(retention)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    );
    let sql = |error: rusqlite::Error| classify(path, &error);
    let transitions = conn
        .prepare_cached("DELETE FROM transitions WHERE time < ?1")
        .and_then(|mut statement| statement.execute([cutoff]))
        .map_err(sql)?;
    let messages = conn
        .prepare_cached("DELETE FROM messages WHERE done_at IS NOT NULL AND done_at < ?1")
        .and_then(|mut statement| statement.execute([cutoff]))
        .map_err(sql)?;
    let buckets = aggregates::prune(conn, path, now)?;
    Ok(Pruned {
        transitions,
        messages,
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Outcome, State};
    use crate::probe::{CheckRecord, Reason};
    use crate::store::LoggedCheck;

    fn write(name: &str, n: u32, transition: bool) -> CheckWrite {
        let time = DateTime::from_timestamp(1_700_000_000 + i64::from(n), 0).expect("valid");
        CheckWrite {
            name: AppName::parse(name).expect("name"),
            check: LoggedCheck {
                record: CheckRecord {
                    cert_not_after: None,
                    cert_days_left: None,
                    time,
                    outcome: Outcome::Fail,
                    reason: Reason::Timeout,
                    http_status: None,
                    latency: Duration::from_secs(5),
                    body: None,
                    body_digest: None,
                    detail: Some(format!("{n}")),
                },
                state: State::Degraded,
                ping: None,
            },
            health: Health {
                state: State::Degraded,
                passes: 0,
                fails: n,
                recovering: false,
            },
            transition: transition.then(|| Transition {
                time,
                from: State::Healthy,
                to: State::Degraded,
                reason: format!("t{n}"),
            }),
            alerting: None,
            messages: Vec::new(),
            withdraw: Vec::new(),
            release: None,
            push: None,
        }
    }

    fn queue() -> Queue {
        Queue {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            dropped_total: AtomicU64::new(0),
        }
    }

    /// A full queue drops the oldest log rows, keeps the latest health and every transition of
    /// each monitor, and stays at its cap.
    #[test]
    fn a_full_queue_keeps_states_and_transitions() {
        let queue = queue();
        queue.record(write("a", 0, true));
        for n in 1..=QUEUE_CAP as u32 {
            queue.record(write("b", n, false));
        }
        // "a" was the oldest: its row went, its health and transition stay.
        queue.record(write("b", QUEUE_CAP as u32 + 1, true));
        assert_eq!(queue.dropped_checks(), 2);
        let pending = queue.lock();
        assert_eq!(pending.checks, QUEUE_CAP);
        let a = &pending.dropped[&AppName::parse("a").expect("name")];
        assert_eq!(a.health.fails, 0);
        assert_eq!(a.transitions.len(), 1);
        let b = &pending.dropped[&AppName::parse("b").expect("name")];
        assert_eq!(b.health.fails, 1, "the latest dropped check of b");
        assert_eq!(b.seq, 1);
        drop(pending);
        let batch = queue.take(Instant::now());
        assert_eq!(batch.dropped.len(), 2);
        assert!(batch.dropped[0].1.seq < batch.dropped[1].1.seq, "sorted");
        assert_eq!(batch.dropped_rows, 2);
    }

    #[test]
    fn closing_refuses_new_work() {
        let queue = queue();
        let (reply, _answer) = oneshot::channel();
        assert!(queue.push(Op::Close(Some(reply))));
        assert!(queue.is_closing());
        let (reply, _answer) = oneshot::channel();
        assert!(!queue.push(Op::Flush(reply)));
        queue.record(write("a", 1, false));
        assert_eq!(queue.lock().checks, 0);
    }

    /// A dropped check's health wins over an older log row, and a newer log row over it.
    #[test]
    fn dropped_checks_keep_the_latest_health() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.db");
        let mut conn = super::super::schema::open_writer(&path).expect("opens");
        let mut writer = Writer {
            checkpointer: Checkpointer::attach(&mut conn, &path).expect("starts"),
            conn,
            path: path.clone(),
            options: StoreOptions::default(),
            trim_step: 100,
            monitors: HashMap::new(),
            aggregates: Aggregates::default(),
            sync_full: false,
            outbox_changed: tokio::sync::watch::Sender::new(0),
        };
        let monitor = StoredMonitor {
            source: Default::default(),
            name: AppName::parse("a").expect("name"),
            spec: crate::registry::Registration {
                url: Some("http://127.0.0.1:1".into()),
                ..Default::default()
            }
            .validate()
            .expect("spec"),
            paused: false,
            registered_at: DateTime::from_timestamp(0, 0).expect("valid"),
            health: Health::default(),
            since: None,
            last_check: None,
            last_transition: None,
            alerting: None,
            maintenance: None,
            push: None,
        };
        let (reply, _answer) = oneshot::channel();
        let mut ops = VecDeque::new();
        ops.push_back((0, Op::Save(Box::new(monitor), reply)));
        ops.push_back((1, Op::Check(Box::new(write("a", 1, false)))));
        let lost = write("a", 7, true);
        let batch = Batch {
            ops,
            dropped: vec![(
                lost.name.clone(),
                Dropped {
                    seq: 2,
                    health: lost.health,
                    transitions: lost.transition.into_iter().collect(),
                },
            )],
            dropped_rows: 1,
            dropped_transitions: 0,
        };
        assert!(writer.commit(batch).is_none());
        let reader = super::super::schema::open_reader(&path).expect("reader");
        let loaded = super::super::rows::load_monitors(&reader, &path).expect("loads");
        assert_eq!(
            loaded[0].health.fails, 7,
            "the dropped check is newer than row 1"
        );
        assert_eq!(
            loaded[0]
                .last_transition
                .as_ref()
                .map(|t| t.reason.as_str()),
            Some("t7")
        );
        assert_eq!(
            loaded[0]
                .last_check
                .as_ref()
                .and_then(|c| c.record.detail.as_deref()),
            Some("1")
        );
        let mut ops = VecDeque::new();
        ops.push_back((3, Op::Check(Box::new(write("a", 8, false)))));
        let batch = Batch {
            ops,
            dropped: Vec::new(),
            dropped_rows: 0,
            dropped_transitions: 0,
        };
        assert!(writer.commit(batch).is_none());
        let loaded = super::super::rows::load_monitors(&reader, &path).expect("loads");
        assert_eq!(loaded[0].health.fails, 8, "a newer log row wins");
        assert_eq!(
            loaded[0].since,
            Some(DateTime::from_timestamp(1_700_000_007, 0).expect("valid"))
        );
    }

    #[test]
    fn trim_step_is_a_tenth_within_bounds() {
        assert_eq!(trim_step(10), 1);
        assert_eq!(trim_step(1000), 100);
        assert_eq!(trim_step(100_000), 1000);
        assert_eq!(trim_step(0), 1);
    }
}
