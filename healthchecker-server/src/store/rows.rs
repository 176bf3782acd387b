//! Values in and out of rows, and the read queries.
//!
//! States and outcomes are stored as small integer codes (one byte per row instead of up to nine:
//! the log has millions of rows). The codes are part of the file format: never renumber them.
//! Reasons are stored by name, so a new [`Reason`] needs no change here.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    ChannelStatus, Delivered, LogPage, LoggedCheck, Message, QueuedMessage, StoreError,
    StoredMonitor,
};
use crate::health::{Health, Outcome, State, Transition};
use crate::history::Incident;
use crate::probe::{BodyDigest, CheckRecord, JsonBody, Reason};
use crate::registry::{AppName, MonitorSpec, Source};

/// The highest sequence number of a log row: 2^32 - 1 (680 years of checks every 5 s).
pub(super) const MAX_SEQ: i64 = 0xFFFF_FFFF;

/// The key of a log row: the monitor in the high 32 bits, the row's sequence number in the low
/// 32, so each monitor's log is one contiguous range of the table, in order.
pub(super) fn check_key(monitor_id: i64, seq: i64) -> i64 {
    (monitor_id << 32) | (seq & MAX_SEQ)
}

/// A time as stored: nanoseconds since the epoch (UTC), saturated outside 1677..2262.
pub(super) fn time_to_sql(time: DateTime<Utc>) -> i64 {
    time.timestamp_nanos_opt()
        .unwrap_or(if time.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// A stored time.
pub(super) fn time_from_sql(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// A latency as stored: whole nanoseconds.
pub(super) fn latency_to_sql(latency: Duration) -> i64 {
    i64::try_from(latency.as_nanos()).unwrap_or(i64::MAX)
}

pub(super) fn state_to_sql(state: State) -> i64 {
    match state {
        State::Unknown => 0,
        State::Healthy => 1,
        State::Degraded => 2,
        State::Unhealthy => 3,
    }
}

pub(super) fn state_from_sql(code: i64) -> Result<State, String> {
    Ok(match code {
        0 => State::Unknown,
        1 => State::Healthy,
        2 => State::Degraded,
        3 => State::Unhealthy,
        _ => return Err(format!("unknown state code {code}")),
    })
}

pub(super) fn outcome_to_sql(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Pass => 0,
        Outcome::Warn => 1,
        Outcome::Fail => 2,
    }
}

fn outcome_from_sql(code: i64) -> Result<Outcome, String> {
    Ok(match code {
        0 => Outcome::Pass,
        1 => Outcome::Warn,
        2 => Outcome::Fail,
        _ => return Err(format!("unknown outcome code {code}")),
    })
}

fn reason_from_sql(name: String) -> Result<Reason, String> {
    serde_json::from_value(serde_json::Value::String(name)).map_err(|error| error.to_string())
}

pub(super) fn count_from_sql(value: i64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("counter out of range: {value}"))
}

/// A read failed: the connection's error, or a row that does not decode.
fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |error| super::schema::classify(path, &error)
}

fn data_error(path: &Path) -> impl Fn(String) -> StoreError + '_ {
    move |reason| StoreError::Data {
        path: path.to_owned(),
        reason,
    }
}

/// The columns of a check row, in this order.
pub(super) const CHECK_COLUMNS: &str = "c.time, c.outcome, c.reason, c.http_status, c.latency_ns, c.body, \
                             c.detail, c.state, c.passes, c.fails, c.recovering, c.id, \
                             c.cert_not_after, c.body_size, c.body_hash, c.ping";

/// A check row as read, before decoding (decoding errors are ours, not SQLite's).
pub(super) struct RawCheck {
    pub(super) time: i64,
    pub(super) outcome: i64,
    pub(super) reason: String,
    pub(super) http_status: Option<i64>,
    pub(super) latency_ns: i64,
    pub(super) body: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) state: i64,
    pub(super) passes: i64,
    pub(super) fails: i64,
    pub(super) recovering: bool,
    pub(super) key: i64,
    pub(super) cert_not_after: Option<i64>,
    pub(super) body_size: Option<i64>,
    pub(super) body_hash: Option<String>,
    pub(super) ping: Option<String>,
}

impl RawCheck {
    /// Reads [`CHECK_COLUMNS`] starting at column `at`.
    fn read(row: &Row<'_>, at: usize) -> rusqlite::Result<RawCheck> {
        Ok(RawCheck {
            time: row.get(at)?,
            outcome: row.get(at + 1)?,
            reason: row.get(at + 2)?,
            http_status: row.get(at + 3)?,
            latency_ns: row.get(at + 4)?,
            body: row.get(at + 5)?,
            detail: row.get(at + 6)?,
            state: row.get(at + 7)?,
            passes: row.get(at + 8)?,
            fails: row.get(at + 9)?,
            recovering: row.get(at + 10)?,
            key: row.get(at + 11)?,
            cert_not_after: row.get(at + 12)?,
            body_size: row.get(at + 13)?,
            body_hash: row.get(at + 14)?,
            ping: row.get(at + 15)?,
        })
    }

    /// The health after this check.
    pub(super) fn health(&self) -> Result<Health, String> {
        Ok(Health {
            state: state_from_sql(self.state)?,
            passes: count_from_sql(self.passes)?,
            fails: count_from_sql(self.fails)?,
            recovering: self.recovering,
        })
    }

    pub(super) fn decode(self) -> Result<LoggedCheck, String> {
        let http_status = self
            .http_status
            .map(|status| u16::try_from(status).map_err(|_| format!("HTTP status {status}")))
            .transpose()?;
        let body = self
            .body
            .map(|body| JsonBody::from_text(body).map_err(|error| format!("check body: {error}")))
            .transpose()?;
        let body_digest = match (self.body_size, self.body_hash) {
            (Some(size), Some(hash)) => Some(Box::new(BodyDigest {
                size: u64::try_from(size).map_err(|_| format!("body size {size}"))?,
                hash: hash
                    .parse()
                    .map_err(|error| format!("body hash {hash:?}: {error}"))?,
            })),
            _ => None,
        };
        let time = time_from_sql(self.time);
        let cert_not_after = self.cert_not_after.map(time_from_sql);
        Ok(LoggedCheck {
            record: CheckRecord {
                time,
                outcome: outcome_from_sql(self.outcome)?,
                reason: reason_from_sql(self.reason)?,
                http_status,
                latency: Duration::from_nanos(u64::try_from(self.latency_ns).unwrap_or(0)),
                body,
                body_digest,
                detail: self.detail,
                cert_not_after,
                cert_days_left: cert_not_after
                    .map(|not_after| crate::probe::days_left(not_after, time)),
            },
            state: state_from_sql(self.state)?,
            ping: self
                .ping
                .map(|ping| serde_json::from_str(&ping).map_err(|error| format!("ping: {error}")))
                .transpose()?,
        })
    }
}

pub(super) const TRANSITION_COLUMNS: &str = "t.time, t.from_state, t.to_state, t.reason";

pub(super) struct RawTransition {
    pub(super) time: i64,
    pub(super) from: i64,
    pub(super) to: i64,
    pub(super) reason: String,
}

impl RawTransition {
    fn read(row: &Row<'_>) -> rusqlite::Result<RawTransition> {
        Ok(RawTransition {
            time: row.get(0)?,
            from: row.get(1)?,
            to: row.get(2)?,
            reason: row.get(3)?,
        })
    }

    pub(super) fn decode(self) -> Result<Transition, String> {
        Ok(Transition {
            time: time_from_sql(self.time),
            from: state_from_sql(self.from)?,
            to: state_from_sql(self.to)?,
            reason: self.reason,
        })
    }
}

/// Every monitor, sorted by name, in one read transaction (one consistent snapshot).
/// The key of body digests, from the `secrets` table.
pub(super) fn digest_key(
    conn: &Connection,
    path: &Path,
) -> Result<crate::probe::DigestKey, StoreError> {
    let key: Vec<u8> = conn
        .query_row(
            "SELECT value FROM secrets WHERE name = 'body_digest_key'",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error(path))?;
    crate::probe::DigestKey::from_bytes(&key).ok_or_else(|| StoreError::Data {
        path: path.to_owned(),
        reason: format!("the body digest key has {} bytes, not 32", key.len()),
    })
}

pub(super) fn load_monitors(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<StoredMonitor>, StoreError> {
    let sql = sql_error(path);
    let data = data_error(path);
    let tx = conn.unchecked_transaction().map_err(&sql)?;
    struct RawMonitor {
        id: i64,
        name: String,
        spec: String,
        paused: bool,
        registered_at: i64,
        state: i64,
        passes: i64,
        fails: i64,
        recovering: bool,
        since: Option<i64>,
        health_seq: i64,
        alerting: Option<String>,
        source: String,
        maintenance: Option<String>,
        push: Option<String>,
    }
    let raw: Vec<RawMonitor> = tx
        .prepare(
            "SELECT m.id, m.name, m.spec, m.paused, m.registered_at,
                    s.state, s.passes, s.fails, s.recovering, s.since, s.health_seq, m.alerting,
                    m.source, m.maintenance, m.push
             FROM monitors m JOIN states s ON s.monitor_id = m.id
             ORDER BY m.name",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| {
                    Ok(RawMonitor {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        spec: row.get(2)?,
                        paused: row.get(3)?,
                        registered_at: row.get(4)?,
                        state: row.get(5)?,
                        passes: row.get(6)?,
                        fails: row.get(7)?,
                        recovering: row.get(8)?,
                        since: row.get(9)?,
                        health_seq: row.get(10)?,
                        alerting: row.get(11)?,
                        source: row.get(12)?,
                        maintenance: row.get(13)?,
                        push: row.get(14)?,
                    })
                })?
                .collect()
        })
        .map_err(&sql)?;
    let mut last_check = tx
        .prepare(&format!(
            "SELECT {CHECK_COLUMNS} FROM checks c WHERE c.id BETWEEN ?1 AND ?2
             ORDER BY c.id DESC LIMIT 1"
        ))
        .map_err(&sql)?;
    let mut last_transition = tx
        .prepare(&format!(
            "SELECT {TRANSITION_COLUMNS} FROM transitions t
             WHERE t.monitor_id = ?1 ORDER BY t.id DESC LIMIT 1"
        ))
        .map_err(&sql)?;
    let mut monitors = Vec::with_capacity(raw.len());
    for raw in raw {
        let name = AppName::parse(&raw.name).map_err(|error| data(error.to_string()))?;
        let spec: MonitorSpec = serde_json::from_str(&raw.spec)
            .map_err(|error| data(format!("spec of {name}: {error}")))?;
        let source = match raw.source.as_str() {
            "config" => Source::Config,
            "api" => Source::Api,
            other => return Err(data(format!("source of {name}: {other:?}"))),
        };
        let newest = last_check
            .query_row([check_key(raw.id, 0), check_key(raw.id, MAX_SEQ)], |row| {
                RawCheck::read(row, 0)
            })
            .optional()
            .map_err(&sql)?;
        // The newest log row carries the health, unless the state row was written after it.
        let logged_health = match &newest {
            Some(row) if row.key & MAX_SEQ > raw.health_seq => Some(row.health().map_err(&data)?),
            _ => None,
        };
        let check = newest.map(RawCheck::decode).transpose().map_err(&data)?;
        let transition = last_transition
            .query_row([raw.id], RawTransition::read)
            .optional()
            .map_err(&sql)?
            .map(RawTransition::decode)
            .transpose()
            .map_err(&data)?;
        monitors.push(StoredMonitor {
            name,
            spec,
            paused: raw.paused,
            registered_at: time_from_sql(raw.registered_at),
            health: match logged_health {
                Some(health) => health,
                None => Health {
                    state: state_from_sql(raw.state).map_err(&data)?,
                    passes: count_from_sql(raw.passes).map_err(&data)?,
                    fails: count_from_sql(raw.fails).map_err(&data)?,
                    recovering: raw.recovering,
                },
            },
            since: raw.since.map(time_from_sql),
            last_check: check,
            last_transition: transition,
            alerting: raw.alerting,
            source,
            maintenance: raw.maintenance,
            push: raw.push,
        });
    }
    drop(last_check);
    drop(last_transition);
    tx.finish().map_err(&sql)?;
    Ok(monitors)
}

/// What a read of the log asks for.
pub(super) struct LogQuery {
    /// Only checks older than this cursor ([`LogPage::next_before`]).
    pub(super) before: Option<u64>,
    /// At most this many checks.
    pub(super) limit: usize,
    /// Only among the newest `retention` checks.
    pub(super) retention: usize,
    /// At most this many bytes of bodies and details (at least one check).
    pub(super) max_bytes: usize,
}

/// A page of the log of `name`, newest first (see [`LogQuery`]).
pub(super) fn log(
    conn: &Connection,
    path: &Path,
    name: &AppName,
    query: LogQuery,
) -> Result<LogPage, StoreError> {
    let sql = sql_error(path);
    let Some((id, newest)) = conn
        .prepare_cached(
            "SELECT m.id, (SELECT max(c.id) FROM checks c WHERE c.id BETWEEN m.id << 32 AND (m.id << 32) | ?2)
             FROM monitors m WHERE m.name = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![name.as_str(), MAX_SEQ], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
                })
                .optional()
        })
        .map_err(&sql)?
    else {
        return Ok(LogPage::default());
    };
    let Some(newest) = newest.map(|key| key & MAX_SEQ) else {
        return Ok(LogPage::default());
    };
    // Rows past the retention may still be in the table (they go in steps): hide them.
    let oldest = (newest - to_i64(query.retention) + 1).max(1);
    let below = query
        .before
        .map_or(newest, |before| {
            i64::try_from(before).unwrap_or(MAX_SEQ).saturating_sub(1)
        })
        .min(newest);
    if below < oldest {
        return Ok(LogPage::default());
    }
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {CHECK_COLUMNS} FROM checks c
             WHERE c.id BETWEEN ?1 AND ?2
             ORDER BY c.id DESC
             LIMIT ?3"
        ))
        .map_err(&sql)?;
    let mut rows = statement
        .query(params![
            check_key(id, oldest),
            check_key(id, below),
            to_i64(query.limit.min(query.retention))
        ])
        .map_err(&sql)?;
    let mut page = LogPage::default();
    let mut bytes = 0;
    let mut last_seq = None;
    while let Some(row) = rows.next().map_err(&sql)? {
        let raw = RawCheck::read(row, 0).map_err(&sql)?;
        let size = raw.body.as_ref().map_or(0, String::len)
            + raw.detail.as_ref().map_or(0, String::len)
            + 100;
        if !page.checks.is_empty() && bytes + size > query.max_bytes {
            break;
        }
        bytes += size;
        last_seq = Some(raw.key & MAX_SEQ);
        page.checks.push(raw.decode().map_err(data_error(path))?);
    }
    page.next_before = last_seq
        .filter(|seq| *seq > oldest)
        .map(|seq| u64::try_from(seq).unwrap_or(0));
    Ok(page)
}

/// The newest `limit` transitions of `name`, newest first.
pub(super) fn transitions(
    conn: &Connection,
    path: &Path,
    name: &AppName,
    limit: usize,
) -> Result<Vec<Transition>, StoreError> {
    let sql = sql_error(path);
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {TRANSITION_COLUMNS}
             FROM monitors m JOIN transitions t ON t.monitor_id = m.id
             WHERE m.name = ?1
             ORDER BY t.id DESC
             LIMIT ?2"
        ))
        .map_err(&sql)?;
    let raw: Vec<RawTransition> = statement
        .query_map(params![name.as_str(), to_i64(limit)], RawTransition::read)
        .and_then(Iterator::collect)
        .map_err(&sql)?;
    raw.into_iter()
        .map(RawTransition::decode)
        .collect::<Result<_, _>>()
        .map_err(data_error(path))
}

/// Transitions read to find a monitor's incidents, at most.
pub(super) const INCIDENT_TRANSITIONS: usize = 10_000;

/// The newest `limit` incidents of `name`, newest first, with their messages counted; `None`
/// for an unknown monitor.
pub(super) fn incidents(
    conn: &Connection,
    path: &Path,
    name: &AppName,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Option<Vec<Incident>>, StoreError> {
    let sql = sql_error(path);
    let tx = conn.unchecked_transaction().map_err(&sql)?;
    if super::aggregates::monitor_id(&tx, name.as_str())
        .map_err(&sql)?
        .is_none()
    {
        return Ok(None);
    }
    let mut transitions = transitions(&tx, path, name, INCIDENT_TRANSITIONS)?;
    transitions.reverse();
    let mut found = crate::history::incidents(&transitions, now);
    found.truncate(limit);
    let mut counts = tx
        .prepare_cached(
            "SELECT status, count(*) FROM messages
             WHERE monitor = ?1 AND created_at BETWEEN ?2 AND ?3 GROUP BY status",
        )
        .map_err(&sql)?;
    for incident in &mut found {
        let rows = counts
            .query_map(
                params![
                    name.as_str(),
                    time_to_sql(incident.opened_at),
                    time_to_sql(incident.closed_at.unwrap_or(now))
                ],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
            )
            .map_err(&sql)?;
        for row in rows {
            let (status, count) = row.map_err(&sql)?;
            let count = u64::try_from(count).unwrap_or(0);
            let messages = &mut incident.messages;
            match status.as_str() {
                "delivered" => messages.sent += count,
                "logged" => messages.logged += count,
                "pending" => messages.pending += count,
                "failed" => messages.failed += count,
                _ => messages.withdrawn += count,
            }
        }
    }
    drop(counts);
    tx.finish().map_err(&sql)?;
    Ok(Some(found))
}

/// Pending messages of `channel` due at `now`, the longest-waiting first.
pub(super) fn due_messages(
    conn: &Connection,
    path: &Path,
    channel: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<QueuedMessage>, StoreError> {
    let sql = sql_error(path);
    let data = data_error(path);
    struct RawMessage {
        id: i64,
        monitor: String,
        channel: String,
        recipients: String,
        event_id: String,
        payload: String,
        created_at: i64,
        attempts: i64,
        next_attempt_at: i64,
        last_error: Option<String>,
        group: Option<String>,
    }
    let mut statement = conn
        .prepare_cached(
            "SELECT id, monitor, channel, recipients, event_id, payload, created_at, attempts,
                    next_attempt_at, last_error, group_key
             FROM messages
             WHERE status = 'pending' AND channel = ?3 AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id
             LIMIT ?2",
        )
        .map_err(&sql)?;
    let raw: Vec<RawMessage> = statement
        .query_map(params![time_to_sql(now), to_i64(limit), channel], |row| {
            Ok(RawMessage {
                id: row.get(0)?,
                monitor: row.get(1)?,
                channel: row.get(2)?,
                recipients: row.get(3)?,
                event_id: row.get(4)?,
                payload: row.get(5)?,
                created_at: row.get(6)?,
                attempts: row.get(7)?,
                next_attempt_at: row.get(8)?,
                last_error: row.get(9)?,
                group: row.get(10)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(&sql)?;
    raw.into_iter()
        .map(|raw| {
            let recipients = serde_json::from_str::<Vec<String>>(&raw.recipients)
                .map_err(|error| data(format!("outbox message {}: {error}", raw.id)))?;
            let next_attempt_at = time_from_sql(raw.next_attempt_at);
            Ok(QueuedMessage {
                id: raw.id,
                message: Message {
                    monitor: raw.monitor,
                    channel: raw.channel,
                    recipients,
                    event_id: raw.event_id,
                    payload: raw.payload,
                    group: raw.group,
                    due: next_attempt_at,
                    created_at: time_from_sql(raw.created_at),
                },
                attempts: count_from_sql(raw.attempts).map_err(&data)?,
                next_attempt_at,
                last_error: raw.last_error,
            })
        })
        .collect()
}

/// How `channel`'s deliveries stand.
pub(super) fn channel_status(
    conn: &Connection,
    path: &Path,
    channel: &str,
) -> Result<ChannelStatus, StoreError> {
    let sql = sql_error(path);
    let count = |status: &str| -> Result<usize, StoreError> {
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM messages WHERE channel = ?1 AND status = ?2")
            .and_then(|mut statement| {
                statement.query_row(params![channel, status], |row| row.get(0))
            })
            .map_err(&sql)?;
        Ok(usize::try_from(count).unwrap_or(0))
    };
    let last = conn
        .prepare_cached(
            "SELECT status, done_at, monitor, last_error FROM messages
             WHERE channel = ?1 AND status IN ('delivered', 'logged', 'failed')
             ORDER BY done_at DESC LIMIT 1",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![channel], |row| {
                    Ok(Delivered {
                        status: row.get(0)?,
                        at: time_from_sql(row.get::<_, Option<i64>>(1)?.unwrap_or(0)),
                        app: row.get(2)?,
                        error: row.get(3)?,
                    })
                })
                .optional()
        })
        .map_err(&sql)?;
    Ok(ChannelStatus {
        pending: count("pending")?,
        failed: count("failed")?,
        last,
    })
}

/// The value under `key` of the server's own state.
pub(super) fn server_state(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM server_state WHERE key = ?1")
        .and_then(|mut statement| statement.query_row([key], |row| row.get(0)).optional())
        .map_err(sql_error(path))
}

/// Messages not yet delivered, logged, given up or withdrawn.
pub(super) fn pending_messages(conn: &Connection, path: &Path) -> Result<usize, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM messages WHERE status = 'pending'")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(sql_error(path))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Pending messages per channel.
pub(super) fn pending_by_channel(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(String, usize)>, StoreError> {
    conn.prepare_cached(
        "SELECT channel, count(*) FROM messages WHERE status = 'pending' GROUP BY channel",
    )
    .and_then(|mut statement| {
        statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    usize::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })?
            .collect()
    })
    .map_err(sql_error(path))
}

/// A count or limit for SQL (saturating).
pub(super) fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for state in State::ALL {
            assert_eq!(state_from_sql(state_to_sql(state)), Ok(state));
        }
        for outcome in Outcome::ALL {
            assert_eq!(outcome_from_sql(outcome_to_sql(outcome)), Ok(outcome));
        }
        assert!(state_from_sql(9).is_err());
        assert_eq!(
            reason_from_sql(Reason::BodyTruncated.as_str().to_owned()),
            Ok(Reason::BodyTruncated)
        );
        assert!(reason_from_sql("nonsense".to_owned()).is_err());
    }

    #[test]
    fn times_keep_their_nanoseconds() {
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid");
        assert_eq!(time_from_sql(time_to_sql(time)), time);
        let far = DateTime::from_timestamp(100_000_000_000, 0).expect("valid");
        assert_eq!(time_to_sql(far), i64::MAX, "saturates");
    }
}
