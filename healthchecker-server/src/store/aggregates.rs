//! History: per-monitor aggregates of the checks, hourly and daily, kept by the writer.
//!
//! Each check is folded into its monitor's current hour and current day in memory, on the writer
//! thread, as part of applying the check (a few additions: no statement). The rows of the
//! `hourly` and `daily` tables are written with absolute values, in a batch's transaction:
//!
//! * a bucket that is over (the next check fell into a newer hour or day) is written with the
//!   next batch, once;
//! * a bucket still filling is written [`AGGREGATE_LAG`] after it first changed since its last
//!   write, in whichever batch is committed then, so at 10,000 monitors about two row writes per
//!   monitor a minute are added to the 12 log rows a minute each writes at a 5 s interval;
//! * at once when asked: closing the store, before a read of one
//!   monitor's history ([`super::Store::history`]) and of every monitor's
//!   ([`super::Store::glances`]), which therefore never lag. Only buckets changed since their
//!   last write are written, so readers asking often cost the writer at most two row writes per
//!   check.
//!
//! Each row records the newest log row folded into it (`seq`). When the writer starts, and after
//! a batch that failed, it reads the newest row of each monitor and table back and folds the log
//! rows after that `seq` again, so a crash between two writes of a bucket loses nothing that the
//! log still holds. A check's bucket is the hour (day) of its time, in UTC. A check whose time is
//! earlier than the bucket being filled (the clock stepped back, or checks written after the fact)
//! is added to its own bucket's row directly, in the same transaction as the bucket being filled
//! is written with its `seq`, so a restart never folds it twice.
//!
//! Checks whose log rows were dropped because the writer fell behind (see `store`) never reach
//! the writer, and are missing from the aggregates too.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::StoreError;
use super::rows::{MAX_SEQ, check_key, time_from_sql, time_to_sql};
use super::schema::classify;
use crate::history::{Bucket, Glance, Recent, Series, Totals};

/// Longest a changed bucket waits in memory before it is written.
pub const AGGREGATE_LAG: Duration = Duration::from_secs(60);

/// Hourly buckets are kept this long.
pub const HOURLY_KEPT: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Daily buckets are kept this long.
pub const DAILY_KEPT: Duration = Duration::from_secs(400 * 24 * 60 * 60);

pub(super) const HOUR_NS: i64 = 3_600_000_000_000;
pub(super) const DAY_NS: i64 = 24 * HOUR_NS;

/// One statement for the table of each [`Grain`]: `head`, the table's name, `tail`.
macro_rules! per_table {
    ($grain:expr, $head:literal, $tail:literal) => {
        match $grain {
            Grain::Hour => concat!($head, "hourly", $tail),
            Grain::Day => concat!($head, "daily", $tail),
        }
    };
}

/// The two sizes of bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Hour,
    Day,
}

impl Grain {
    const BOTH: [Grain; 2] = [Grain::Hour, Grain::Day];

    fn length(self) -> i64 {
        match self {
            Grain::Hour => HOUR_NS,
            Grain::Day => DAY_NS,
        }
    }

    fn upsert(self) -> &'static str {
        per_table!(
            self,
            "INSERT INTO ",
            " (monitor_id, start, checks, passes, warns, fails, latency_sum, latency_max, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (monitor_id, start) DO UPDATE SET
                 checks = excluded.checks, passes = excluded.passes, warns = excluded.warns,
                 fails = excluded.fails, latency_sum = excluded.latency_sum,
                 latency_max = excluded.latency_max, seq = excluded.seq"
        )
    }

    /// Adds one late check to its bucket's row (its `seq` is not the newest: left alone).
    fn add(self) -> &'static str {
        per_table!(
            self,
            "INSERT INTO ",
            " (monitor_id, start, checks, passes, warns, fails, latency_sum, latency_max, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)
             ON CONFLICT (monitor_id, start) DO UPDATE SET
                 checks = checks + excluded.checks, passes = passes + excluded.passes,
                 warns = warns + excluded.warns, fails = fails + excluded.fails,
                 latency_sum = latency_sum + excluded.latency_sum,
                 latency_max = max(latency_max, excluded.latency_max)"
        )
    }

    fn newest(self) -> &'static str {
        per_table!(
            self,
            "SELECT start, checks, passes, warns, fails, latency_sum, latency_max, seq FROM ",
            " WHERE monitor_id = ?1 ORDER BY start DESC LIMIT 1"
        )
    }
}

/// One bucket being filled, as the writer holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Agg {
    start: i64,
    checks: i64,
    passes: i64,
    warns: i64,
    fails: i64,
    latency_sum: i64,
    latency_max: i64,
    seq: i64,
}

impl Agg {
    fn empty(start: i64) -> Agg {
        Agg {
            start,
            checks: 0,
            passes: 0,
            warns: 0,
            fails: 0,
            latency_sum: 0,
            latency_max: 0,
            seq: 0,
        }
    }

    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Agg> {
        Ok(Agg {
            start: row.get(0)?,
            checks: row.get(1)?,
            passes: row.get(2)?,
            warns: row.get(3)?,
            fails: row.get(4)?,
            latency_sum: row.get(5)?,
            latency_max: row.get(6)?,
            seq: row.get(7)?,
        })
    }

    fn add(&mut self, check: &Folded) {
        self.checks += 1;
        match check.outcome {
            0 => self.passes += 1,
            1 => self.warns += 1,
            _ => self.fails += 1,
        }
        self.latency_sum = self.latency_sum.saturating_add(check.latency);
        self.latency_max = self.latency_max.max(check.latency);
        self.seq = check.seq;
    }
}

/// What of a check goes into the aggregates.
#[derive(Debug, Clone, Copy)]
pub(super) struct Folded {
    /// The log row's sequence number.
    pub(super) seq: i64,
    /// ns since the epoch.
    pub(super) time: i64,
    /// The outcome's code (0 pass, 1 warn, 2 fail).
    pub(super) outcome: i64,
    /// ns.
    pub(super) latency: i64,
}

/// One monitor's buckets being filled.
#[derive(Debug, Default)]
struct Track {
    hour: Option<Agg>,
    day: Option<Agg>,
    /// Changed since it was last written.
    dirty: bool,
}

impl Track {
    fn grain(&mut self, grain: Grain) -> &mut Option<Agg> {
        match grain {
            Grain::Hour => &mut self.hour,
            Grain::Day => &mut self.day,
        }
    }
}

/// Every monitor's buckets being filled, and what is to be written.
#[derive(Debug, Default)]
pub(super) struct Aggregates {
    tracks: HashMap<i64, Track>,
    /// Buckets that are over, to be written with the next batch.
    finished: Vec<(Grain, i64, Agg)>,
    /// Checks older than the bucket being filled, to be added to their own buckets' rows.
    late: Vec<(Grain, i64, Agg)>,
    /// Monitors in the order their buckets changed after being written.
    dirty: VecDeque<(Instant, i64)>,
    /// Monitors whose buckets are written with this batch whatever their age.
    requested: Vec<i64>,
    /// Every bucket is written with this batch.
    all: bool,
}

impl Aggregates {
    /// The buckets of the monitors `ids`, as the database holds them, with the log rows after
    /// them folded in again.
    pub(super) fn load(
        conn: &Connection,
        path: &Path,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<Aggregates, StoreError> {
        let sql = |error: rusqlite::Error| classify(path, &error);
        let mut aggregates = Aggregates::default();
        let mut after = conn
            .prepare(
                "SELECT id & 4294967295, time, outcome, latency_ns FROM checks
                 WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
            )
            .map_err(sql)?;
        let now = Instant::now();
        for id in ids {
            let mut track = Track::default();
            for grain in Grain::BOTH {
                *track.grain(grain) = conn
                    .prepare_cached(grain.newest())
                    .and_then(|mut statement| {
                        rusqlite::OptionalExtension::optional(statement.query_row([id], Agg::read))
                    })
                    .map_err(sql)?;
            }
            let folded = |agg: &Option<Agg>| agg.map_or(0, |agg| agg.seq);
            let from = folded(&track.hour).min(folded(&track.day));
            aggregates.tracks.insert(id, track);
            let rows = after
                .query_map([check_key(id, from + 1), check_key(id, MAX_SEQ)], |row| {
                    Ok(Folded {
                        seq: row.get(0)?,
                        time: row.get(1)?,
                        outcome: row.get(2)?,
                        latency: row.get(3)?,
                    })
                })
                .map_err(sql)?;
            for check in rows {
                aggregates.fold(id, &check.map_err(sql)?, now);
            }
        }
        Ok(aggregates)
    }

    /// Folds one check of monitor `id` into its hour and day (a check already folded, by its
    /// `seq`, is not counted again).
    pub(super) fn fold(&mut self, id: i64, check: &Folded, now: Instant) {
        let track = self.tracks.entry(id).or_default();
        let mut changed = false;
        for grain in Grain::BOTH {
            let start = check.time.div_euclid(grain.length()) * grain.length();
            let slot = track.grain(grain);
            let agg = match slot {
                Some(agg) if check.seq <= agg.seq => continue,
                Some(agg) if agg.start > start => {
                    let mut one = Agg::empty(start);
                    one.add(check);
                    self.late.push((grain, id, one));
                    // Written with the late check, so that a restart does not fold it again.
                    agg.seq = check.seq;
                    self.requested.push(id);
                    changed = true;
                    continue;
                }
                Some(agg) if agg.start == start => agg,
                Some(agg) => {
                    self.finished.push((grain, id, *agg));
                    *agg = Agg::empty(start);
                    agg
                }
                None => slot.insert(Agg::empty(start)),
            };
            agg.add(check);
            changed = true;
        }
        if changed && !track.dirty {
            track.dirty = true;
            self.dirty.push_back((now, id));
        }
    }

    /// Monitor `id` is gone: nothing of it is written any more.
    pub(super) fn forget(&mut self, id: i64) {
        self.tracks.remove(&id);
        self.finished.retain(|(_, of, _)| *of != id);
        self.late.retain(|(_, of, _)| *of != id);
    }

    /// Writes the buckets of monitor `id` with this batch.
    pub(super) fn request(&mut self, id: i64) {
        self.requested.push(id);
    }

    /// Writes every bucket with this batch.
    pub(super) fn request_all(&mut self) {
        self.all = true;
    }

    /// Writes, in the batch's transaction, what is due: finished buckets, buckets changed more
    /// than [`AGGREGATE_LAG`] ago, and those asked for.
    pub(super) fn write(
        &mut self,
        conn: &Connection,
        path: &Path,
        now: Instant,
    ) -> Result<(), StoreError> {
        let sql = |error: rusqlite::Error| classify(path, &error);
        let put = |grain: Grain, id: i64, agg: &Agg| -> Result<(), StoreError> {
            conn.prepare_cached(grain.upsert())
                .and_then(|mut statement| {
                    statement.execute(params![
                        id,
                        agg.start,
                        agg.checks,
                        agg.passes,
                        agg.warns,
                        agg.fails,
                        agg.latency_sum,
                        agg.latency_max,
                        agg.seq,
                    ])
                })
                .map(drop)
                .map_err(sql)
        };
        for (grain, id, agg) in self.finished.drain(..) {
            put(grain, id, &agg)?;
        }
        for (grain, id, one) in self.late.drain(..) {
            conn.prepare_cached(grain.add())
                .and_then(|mut statement| {
                    statement.execute(params![
                        id,
                        one.start,
                        one.checks,
                        one.passes,
                        one.warns,
                        one.fails,
                        one.latency_sum,
                        one.latency_max,
                    ])
                })
                .map_err(sql)?;
        }
        let mut due: Vec<i64> = std::mem::take(&mut self.requested);
        if std::mem::take(&mut self.all) {
            due.extend(self.dirty.drain(..).map(|(_, id)| id));
        } else {
            while let Some(&(since, id)) = self.dirty.front() {
                if now.saturating_duration_since(since) < AGGREGATE_LAG {
                    break;
                }
                self.dirty.pop_front();
                due.push(id);
            }
        }
        for id in due {
            let Some(track) = self.tracks.get_mut(&id) else {
                continue;
            };
            if !track.dirty {
                continue;
            }
            track.dirty = false;
            for (grain, agg) in [(Grain::Hour, track.hour), (Grain::Day, track.day)] {
                if let Some(agg) = agg {
                    put(grain, id, &agg)?;
                }
            }
        }
        Ok(())
    }
}

/// Deletes buckets older than they are kept, as of `now`; returns how many.
pub(super) fn prune(
    conn: &Connection,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let sql = |error: rusqlite::Error| classify(path, &error);
    let before = |kept: Duration| {
        time_to_sql(
            now.checked_sub_signed(
                chrono::Duration::from_std(kept).unwrap_or(chrono::Duration::MAX),
            )
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    };
    let hourly = conn
        .prepare_cached("DELETE FROM hourly WHERE start < ?1")
        .and_then(|mut statement| statement.execute([before(HOURLY_KEPT)]))
        .map_err(sql)?;
    let daily = conn
        .prepare_cached("DELETE FROM daily WHERE start < ?1")
        .and_then(|mut statement| statement.execute([before(DAILY_KEPT)]))
        .map_err(sql)?;
    Ok(hourly + daily)
}

/// Deletes every bucket of monitor `id`.
pub(super) fn delete(conn: &Connection, path: &Path, id: i64) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM hourly WHERE monitor_id = ?1",
        "DELETE FROM daily WHERE monitor_id = ?1",
    ] {
        conn.prepare_cached(statement)
            .and_then(|mut statement| statement.execute([id]))
            .map_err(|error| classify(path, &error))?;
    }
    Ok(())
}

/// A row of `hourly` or `daily` (its first seven columns).
fn bucket_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Bucket> {
    let count = |i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
    };
    Ok(Bucket {
        start: time_from_sql(row.get(0)?),
        checks: count(1)?,
        passes: count(2)?,
        warns: count(3)?,
        fails: count(4)?,
        latency_sum: Duration::from_nanos(count(5)?),
        latency_max: Duration::from_nanos(count(6)?),
    })
}

/// The history of the monitor `name` as of `now`; `None` for an unknown monitor.
pub(super) fn history(
    conn: &Connection,
    path: &Path,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<Series>, StoreError> {
    let sql = |error: rusqlite::Error| classify(path, &error);
    let Some(id) = monitor_id(conn, name).map_err(sql)? else {
        return Ok(None);
    };
    let since = |kept: Duration| {
        time_to_sql(now - chrono::Duration::from_std(kept).unwrap_or(chrono::Duration::zero()))
    };
    let read = |statement: &str, from: i64| -> Result<Vec<Bucket>, StoreError> {
        conn.prepare_cached(statement)
            .and_then(|mut statement| {
                statement
                    .query_map(params![id, from], bucket_from_row)?
                    .collect()
            })
            .map_err(sql)
    };
    // A bucket whose start is before `since` but which reaches past it is kept.
    Ok(Some(Series {
        hourly: read(
            "SELECT start, checks, passes, warns, fails, latency_sum, latency_max FROM hourly
             WHERE monitor_id = ?1 AND start > ?2 ORDER BY start",
            since(HOURLY_KEPT) - HOUR_NS,
        )?,
        daily: read(
            "SELECT start, checks, passes, warns, fails, latency_sum, latency_max FROM daily
             WHERE monitor_id = ?1 AND start > ?2 ORDER BY start",
            since(DAILY_KEPT) - DAY_NS,
        )?,
    }))
}

/// For every monitor, sorted by name: its totals over 24 hours and 30 days and its newest
/// `recent` checks (at most `retention`), as of `now`.
///
/// Four statements for all monitors rather than three per monitor: the monitors, the sums of
/// their hourly and of their daily buckets (each an index range per monitor, grouped), and their
/// newest checks (the newest `recent` keys of each monitor's range of the log, found with a
/// correlated `LIMIT`). A monitor's log keys are consecutive (the writer numbers its checks
/// 1, 2, 3... and trims only the oldest), so its newest `recent.min(retention)` rows are within
/// its newest `retention`.
pub(super) fn glances(
    conn: &Connection,
    path: &Path,
    now: DateTime<Utc>,
    recent: usize,
    retention: usize,
) -> Result<Vec<Glance>, StoreError> {
    let sql = |error: rusqlite::Error| classify(path, &error);
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let mut glances: Vec<Glance> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    tx.prepare_cached("SELECT id, name FROM monitors ORDER BY name")
        .and_then(|mut statement| {
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                index.insert(row.get(0)?, glances.len());
                glances.push(Glance {
                    app: row.get(1)?,
                    ..Glance::default()
                });
            }
            Ok(())
        })
        .map_err(sql)?;
    let hour = time_to_sql(now).div_euclid(HOUR_NS) * HOUR_NS;
    let day = time_to_sql(now).div_euclid(DAY_NS) * DAY_NS;
    let count = |value: Option<i64>| u64::try_from(value.unwrap_or(0)).unwrap_or(0);
    for (statement, from, monthly) in [
        (
            "SELECT m.id, sum(h.checks), sum(h.passes + h.warns), sum(h.latency_sum)
             FROM monitors m JOIN hourly h ON h.monitor_id = m.id AND h.start >= ?1
             GROUP BY m.id",
            hour - 23 * HOUR_NS,
            false,
        ),
        (
            "SELECT m.id, sum(d.checks), sum(d.passes + d.warns), sum(d.latency_sum)
             FROM monitors m JOIN daily d ON d.monitor_id = m.id AND d.start >= ?1
             GROUP BY m.id",
            day - 29 * DAY_NS,
            true,
        ),
    ] {
        tx.prepare_cached(statement)
            .and_then(|mut statement| {
                let mut rows = statement.query([from])?;
                while let Some(row) = rows.next()? {
                    let Some(&at) = index.get(&row.get::<_, i64>(0)?) else {
                        continue;
                    };
                    let totals = Totals {
                        checks: count(row.get(1)?),
                        up: count(row.get(2)?),
                        latency_sum: Duration::from_nanos(count(row.get(3)?)),
                    };
                    if monthly {
                        glances[at].month = totals;
                    } else {
                        glances[at].day = totals;
                    }
                }
                Ok(())
            })
            .map_err(sql)?;
    }
    // Each monitor's checks with their keys, sorted newest first below (the join's order is
    // the planner's).
    let mut checks: Vec<Vec<(i64, Recent)>> = vec![Vec::new(); glances.len()];
    tx.prepare_cached(
        "SELECT c.id, c.time, c.outcome, c.latency_ns FROM monitors m JOIN checks c
         ON c.id IN (SELECT id FROM checks WHERE id BETWEEN m.id << 32 AND (m.id << 32) | ?1
                     ORDER BY id DESC LIMIT ?2)",
    )
    .and_then(|mut statement| {
        let mut rows =
            statement.query(params![MAX_SEQ, super::rows::to_i64(recent.min(retention))])?;
        while let Some(row) = rows.next()? {
            let key: i64 = row.get(0)?;
            let Some(&at) = index.get(&(key >> 32)) else {
                continue;
            };
            checks[at].push((
                key,
                Recent {
                    time: time_from_sql(row.get(1)?),
                    outcome: u8::try_from(row.get::<_, i64>(2)?).unwrap_or(2),
                    latency_ms: (row.get::<_, i64>(3)? as f64 / 1e3).round() / 1e3,
                },
            ));
        }
        Ok(())
    })
    .map_err(sql)?;
    tx.finish().map_err(sql)?;
    for (glance, mut checks) in glances.iter_mut().zip(checks) {
        checks.sort_unstable_by_key(|(key, _)| std::cmp::Reverse(*key));
        glance.recent = checks.into_iter().map(|(_, check)| check).collect();
    }
    Ok(glances)
}

/// The id of the monitor `name`.
pub(super) fn monitor_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM monitors WHERE name = ?1")
        .and_then(|mut statement| {
            rusqlite::OptionalExtension::optional(statement.query_row([name], |row| row.get(0)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seq: i64, seconds: i64, outcome: i64, latency_ms: i64) -> Folded {
        Folded {
            seq,
            time: seconds * 1_000_000_000,
            outcome,
            latency: latency_ms * 1_000_000,
        }
    }

    #[test]
    fn checks_fold_into_their_hour_and_day() {
        let mut aggregates = Aggregates::default();
        let now = Instant::now();
        // Two checks in hour 0, one in hour 1 of day 0, one in day 1.
        aggregates.fold(7, &check(1, 10, 0, 5), now);
        aggregates.fold(7, &check(2, 20, 2, 15), now);
        aggregates.fold(7, &check(3, 3_700, 1, 10), now);
        let track = &aggregates.tracks[&7];
        assert_eq!(track.hour.map(|agg| agg.start), Some(HOUR_NS));
        assert_eq!(track.hour.map(|agg| agg.checks), Some(1));
        assert_eq!(track.day.map(|agg| agg.checks), Some(3));
        let day = track.day.expect("day");
        assert_eq!((day.passes, day.warns, day.fails), (1, 1, 1));
        assert_eq!(day.latency_sum, 30_000_000);
        assert_eq!(day.latency_max, 15_000_000);
        assert_eq!(day.seq, 3);
        assert_eq!(aggregates.finished.len(), 1, "hour 0 is over");
        assert_eq!(aggregates.finished[0].2.checks, 2);
        aggregates.fold(7, &check(4, 86_400 + 5, 0, 1), now);
        assert_eq!(aggregates.finished.len(), 3, "hour 1 and day 0 are over");
        // A check already folded (its seq) is not counted twice.
        aggregates.fold(7, &check(4, 86_400 + 5, 0, 1), now);
        assert_eq!(aggregates.tracks[&7].day.map(|agg| agg.checks), Some(1));
        assert_eq!(
            aggregates.dirty.len(),
            1,
            "one entry per monitor until written"
        );
    }

    #[test]
    fn a_check_from_the_past_goes_to_its_own_bucket() {
        let mut aggregates = Aggregates::default();
        let now = Instant::now();
        aggregates.fold(1, &check(1, 7_300, 0, 1), now);
        aggregates.fold(1, &check(2, 3_500, 2, 1), now); // the clock stepped back an hour
        assert!(aggregates.finished.is_empty());
        let hour = aggregates.tracks[&1].hour.expect("hour");
        assert_eq!((hour.start, hour.checks, hour.seq), (2 * HOUR_NS, 1, 2));
        assert_eq!(aggregates.late.len(), 1, "the hour; the day is the same");
        assert_eq!(aggregates.late[0].2.start, 0);
        assert_eq!(aggregates.late[0].2.fails, 1);
        assert_eq!(aggregates.tracks[&1].day.map(|agg| agg.checks), Some(2));
        assert_eq!(aggregates.requested, [1], "written with it");
    }

    #[test]
    fn forgotten_monitors_write_nothing() {
        let mut aggregates = Aggregates::default();
        let now = Instant::now();
        aggregates.fold(1, &check(1, 10, 0, 1), now);
        aggregates.fold(1, &check(2, 3_610, 0, 1), now);
        aggregates.forget(1);
        assert!(aggregates.finished.is_empty());
        assert!(aggregates.tracks.is_empty());
    }
}
