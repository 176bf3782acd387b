//! When each monitor is checked: a fixed-rate timer per monitor, all on one timer wheel.
//!
//! One task owns a [`DelayQueue`] (tokio-util's hierarchical timer wheel) with one entry per
//! scheduled monitor, instead of one sleeping task per monitor: 100,000 monitors cost 100,000 small
//! entries and one task. When an entry expires the scheduler hands `(name, due)` to the dispatcher
//! it was built with (which starts the check) and re-arms the entry one interval after its *due*
//! time, not after the check: a slow check does not shift the schedule. A tick that is already in
//! the past when re-arming (the process was stalled) is skipped, never fired in a burst.
//!
//! First due times are rounded down to a [`GRID`] (10 ms) shared by every monitor, and intervals
//! are whole seconds, so all checks fall on the grid: the checks due in one 10 ms slot are
//! dispatched together, in one wake-up of the scheduler, instead of one wake-up (and one round of
//! thread wake-ups in the runtime) each. At 2,000 checks a second that is 20 checks per wake-up.
//! The phase of a monitor is random anyway, so this moves no check later than its due time.
//!
//! Push monitors' deadlines ([`crate::push`]) are one-shot entries on the same wheel
//! ([`Scheduler::schedule_once`]): no task per monitor either.
//!
//! Time comes from `tokio::time`, so tests run the scheduler on a paused clock.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::time::DelayQueue;
use tokio_util::time::delay_queue::Key;

use crate::registry::AppName;

/// The grid every due time is on: checks due in one slot run together.
pub const GRID: Duration = Duration::from_millis(10);

/// `first` rounded down to the grid that starts at `origin`.
fn on_grid(first: Instant, origin: Instant) -> Instant {
    let Some(since) = first.checked_duration_since(origin) else {
        return first;
    };
    let slots = since.as_nanos() / GRID.as_nanos();
    origin + GRID * u32::try_from(slots).unwrap_or(u32::MAX)
}

/// What the scheduler is told.
#[derive(Debug)]
enum Command {
    /// Check `name` first at `first`, then every `interval`; replaces any earlier schedule.
    Schedule {
        name: AppName,
        first: Instant,
        interval: Duration,
    },
    /// Dispatch `name` once at `at`; replaces any earlier schedule.
    Once { name: AppName, at: Instant },
    /// Stop checking `name`.
    Unschedule { name: AppName },
}

/// Tells the scheduler task what to check when; cheap to clone.
#[derive(Debug, Clone)]
pub struct Scheduler {
    commands: mpsc::UnboundedSender<Command>,
}

impl Scheduler {
    /// Starts the scheduler task; it calls `dispatch(name, due)` for every due check until
    /// `cancel` fires. `dispatch` must return at once (spawn the check, do not run it).
    pub fn spawn<F>(
        dispatch: F,
        cancel: CancellationToken,
    ) -> (Scheduler, tokio::task::JoinHandle<()>)
    where
        F: FnMut(&AppName, Instant) + Send + 'static,
    {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(receiver, dispatch, cancel));
        (Scheduler { commands }, task)
    }

    /// Checks `name` first at `first`, then every `interval` after that; replaces any earlier
    /// schedule of `name`.
    pub fn schedule(&self, name: AppName, first: Instant, interval: Duration) {
        // An error means the scheduler has stopped: the server is shutting down.
        let _ = self.commands.send(Command::Schedule {
            name,
            first,
            interval,
        });
    }

    /// Dispatches `name` once, at `at` (a push monitor's deadline), and not again unless told;
    /// replaces any earlier schedule of `name`.
    pub fn schedule_once(&self, name: AppName, at: Instant) {
        let _ = self.commands.send(Command::Once { name, at });
    }

    /// Stops checking `name` (a check already started finishes).
    pub fn unschedule(&self, name: AppName) {
        let _ = self.commands.send(Command::Unschedule { name });
    }
}

/// The next due time after `due` at a fixed rate, skipping ticks that are already past at `now`.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now {
        return next;
    }
    // Stalled for more than an interval: keep the phase, drop the missed ticks.
    let behind = now.duration_since(due);
    let missed = behind.as_nanos() / interval.as_nanos().max(1);
    let skip = u32::try_from(missed + 1).unwrap_or(u32::MAX);
    due + interval.saturating_mul(skip)
}

struct Entry {
    name: AppName,
    /// `None`: once.
    interval: Option<Duration>,
}

async fn run<F>(
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut dispatch: F,
    cancel: CancellationToken,
) where
    F: FnMut(&AppName, Instant),
{
    let mut queue: DelayQueue<Entry> = DelayQueue::new();
    let mut keys: HashMap<AppName, Key> = HashMap::new();
    let origin = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            command = commands.recv() => match command {
                Some(Command::Schedule { name, first, interval }) => {
                    if let Some(key) = keys.remove(&name) {
                        queue.remove(&key);
                    }
                    let first = on_grid(first, origin);
                    let key = queue.insert_at(Entry { name: name.clone(), interval: Some(interval) }, first);
                    keys.insert(name, key);
                }
                Some(Command::Once { name, at }) => {
                    if let Some(key) = keys.remove(&name) {
                        queue.remove(&key);
                    }
                    let key = queue.insert_at(Entry { name: name.clone(), interval: None }, at);
                    keys.insert(name, key);
                }
                Some(Command::Unschedule { name }) => {
                    if let Some(key) = keys.remove(&name) {
                        queue.remove(&key);
                    }
                }
                None => break,
            },
            Some(expired) = queue.next() => {
                let due = expired.deadline();
                let entry = expired.into_inner();
                let Some(interval) = entry.interval else {
                    // Removed first: the dispatch may schedule the next one.
                    keys.remove(&entry.name);
                    dispatch(&entry.name, due);
                    continue;
                };
                dispatch(&entry.name, due);
                let next = next_due(due, interval, Instant::now());
                let name = entry.name.clone();
                keys.insert(name, queue.insert_at(entry, next));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Log = Arc<Mutex<Vec<(String, Duration)>>>;

    /// A scheduler whose dispatches are logged as (name, time since `start`).
    fn scheduler(start: Instant) -> (Scheduler, Log, CancellationToken) {
        let log: Log = Arc::default();
        let cancel = CancellationToken::new();
        let sink = Arc::clone(&log);
        let (scheduler, _task) = Scheduler::spawn(
            move |name, due| {
                assert_eq!(
                    Instant::now(),
                    due,
                    "dispatched exactly on time (paused clock)"
                );
                sink.lock()
                    .expect("lock")
                    .push((name.to_string(), due - start));
            },
            cancel.clone(),
        );
        (scheduler, log, cancel)
    }

    fn name(text: &str) -> AppName {
        AppName::parse(text).expect("valid")
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn taken(log: &Log) -> Vec<(String, Duration)> {
        std::mem::take(&mut *log.lock().expect("lock"))
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_rate_per_monitor() {
        let start = Instant::now();
        let (scheduler, log, _cancel) = scheduler(start);
        scheduler.schedule(name("a"), start + secs(1), secs(5));
        scheduler.schedule(name("b"), start + secs(2), secs(7));
        tokio::time::sleep(secs(20)).await;
        let mut expected = vec![
            ("a".to_owned(), secs(1)),
            ("b".to_owned(), secs(2)),
            ("a".to_owned(), secs(6)),
            ("b".to_owned(), secs(9)),
            ("a".to_owned(), secs(11)),
            ("a".to_owned(), secs(16)),
            ("b".to_owned(), secs(16)),
        ];
        let mut got = taken(&log);
        got.sort_by_key(|(name, at)| (*at, name.clone()));
        expected.sort_by_key(|(name, at)| (*at, name.clone()));
        assert_eq!(got, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn reschedule_and_unschedule_take_effect_at_once() {
        let start = Instant::now();
        let (scheduler, log, _cancel) = scheduler(start);
        scheduler.schedule(name("a"), start + secs(1), secs(10));
        tokio::time::sleep(secs(2)).await;
        assert_eq!(taken(&log), [("a".to_owned(), secs(1))]);
        // re-registration with a new interval: the old schedule is gone
        scheduler.schedule(name("a"), start + secs(3), secs(5));
        tokio::time::sleep(secs(7)).await; // to 9 s
        assert_eq!(
            taken(&log),
            [("a".to_owned(), secs(3)), ("a".to_owned(), secs(8))]
        );
        scheduler.unschedule(name("a"));
        tokio::time::sleep(secs(60)).await;
        assert_eq!(taken(&log), []);
        // and back (resume)
        scheduler.schedule(name("a"), start + secs(70), secs(5));
        tokio::time::sleep(secs(6)).await;
        assert_eq!(taken(&log), [("a".to_owned(), secs(70))]);
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_stops_dispatching() {
        let start = Instant::now();
        let (scheduler, log, cancel) = scheduler(start);
        scheduler.schedule(name("a"), start + secs(1), secs(5));
        tokio::time::sleep(secs(2)).await;
        cancel.cancel();
        tokio::time::sleep(secs(30)).await;
        assert_eq!(taken(&log).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn once_fires_once_and_replaces_a_schedule() {
        let start = Instant::now();
        let (scheduler, log, _cancel) = scheduler(start);
        scheduler.schedule(name("a"), start + secs(1), secs(5));
        scheduler.schedule_once(name("a"), start + secs(3));
        scheduler.schedule_once(name("b"), start + secs(4));
        scheduler.schedule_once(name("b"), start + secs(9)); // moved
        tokio::time::sleep(secs(60)).await;
        assert_eq!(
            taken(&log),
            [("a".to_owned(), secs(3)), ("b".to_owned(), secs(9))]
        );
    }

    #[test]
    fn first_due_times_are_rounded_down_to_the_grid() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(on_grid(origin + ms(1999), origin), origin + ms(1990));
        assert_eq!(on_grid(origin + ms(20), origin), origin + ms(20));
        assert_eq!(on_grid(origin, origin), origin);
        // before the grid starts: as asked
        assert_eq!(on_grid(origin - ms(5), origin), origin - ms(5));
    }

    #[test]
    fn missed_ticks_are_skipped_not_bursted() {
        let due = Instant::now();
        let five = secs(5);
        assert_eq!(next_due(due, five, due + secs(1)), due + five);
        // stalled 12 s: the ticks at 5 and 10 are gone, the next is at 15
        assert_eq!(next_due(due, five, due + secs(12)), due + secs(15));
        // exactly on a tick counts as missed
        assert_eq!(next_due(due, five, due + secs(10)), due + secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn many_monitors_on_one_wheel() {
        let start = Instant::now();
        let (scheduler, log, _cancel) = scheduler(start);
        for i in 0..10_000u64 {
            scheduler.schedule(
                name(&format!("m{i}")),
                start + Duration::from_millis(i % 5000),
                secs(5),
            );
        }
        tokio::time::sleep(Duration::from_millis(10_000)).await;
        let got = taken(&log);
        assert_eq!(got.len(), 20_000, "every monitor twice in two intervals");
    }
}
