//! Leases: how the servers sharing one database split its monitors between them.
//!
//! Each server has a row in `servers` with a lease (`lease_until`, on the database's clock) that
//! it renews every [`RENEW`] for [`LEASE`]; each monitor's `owner` names the server that checks
//! it. A monitor whose owner is gone (no row, or a lease run out) is free: live servers claim free
//! monitors with `FOR UPDATE SKIP LOCKED` (two servers never wait for, nor take, the same row)
//! up to their share, `ceil(monitors / live servers)`, and a server holding more than its share
//! lets the surplus go (after it stopped checking them), so shares even out as servers come and
//! go. Claims are made one at a time (an advisory lock held to the claim's commit), so a claim
//! always sees the claims before it. A lease is one row per server, not one per monitor: renewing costs one update whatever
//! the number of monitors.
//!
//! A server stops checking everything once [`LEASE`] minus [`MARGIN`] has passed on its own
//! clock since it sent its last successful renewal: before the database's clock lets any other
//! server claim its monitors. The writer writes a check only for a monitor whose `owner` is this
//! server, under a row lock (see the writer's `writable`): a check finished after its monitor
//! was taken over is dropped, never written beside the new owner's.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::rows::{CHECK_COLUMNS, time_from_sql, to_i64};
use super::super::{LoggedCheck, StoreError, StoredMonitor};
use super::{data_error, pg_error, query_monitors, raw_check_at, stored_monitor};
use crate::health::Health;
use crate::registry::AppName;
use std::path::Path;

/// How long a server's lease lasts after each renewal.
pub const LEASE: Duration = Duration::from_secs(4);

/// How often a server renews its lease (and claims, lets go and reads the others' changes).
pub const RENEW: Duration = Duration::from_secs(1);

/// How much earlier than its lease ends (on its own clock) a server that could not renew stops
/// checking: room for the clocks' drift and the renewal's round trip.
pub const MARGIN: Duration = Duration::from_millis(500);

/// A server not heard from for this long is forgotten (its row deleted).
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The advisory lock claims are made under.
const CLAIM_LOCK: i64 = 7_273_697_480_463;

/// The database's clock, in nanoseconds since the epoch.
const NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1e9)::BIGINT";

/// One server of the cluster, as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerLease {
    /// Its id.
    pub id: String,
    /// Where its API is.
    pub url: String,
    /// When it (last) started.
    pub started_at: DateTime<Utc>,
    /// Its last renewal.
    pub heartbeat_at: DateTime<Utc>,
    /// How many monitors it holds.
    pub leases: usize,
}

/// What a renewal found.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// The monitors this server holds now: all of them when asked (`reread` given to
    /// [`crate::store::Store::lease_round`]), else only those it claimed in this round.
    pub held: Vec<AppName>,
    /// Whether `held` is every monitor it holds (else only the newly claimed ones).
    pub complete: bool,
    /// How many monitors it should hold: `ceil(monitors / live servers)`.
    pub share: usize,
    /// The live servers, by id.
    pub servers: Vec<ServerLease>,
}

/// What changed since a version: for the views of monitors another server checks, and the
/// changes other servers made to this server's monitors.
#[derive(Debug, Default)]
pub struct Changes {
    /// Each changed monitor as stored, with its owner.
    pub monitors: Vec<(StoredMonitor, Option<String>)>,
    /// Monitors deleted.
    pub deleted: Vec<AppName>,
    /// The newest version read.
    pub newest: i64,
}

pub(super) fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// The server a renewal is for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Me<'a> {
    pub(super) id: &'a str,
    pub(super) url: &'a str,
    pub(super) started_at: DateTime<Utc>,
}

/// Renews the lease of server `me` (making its row when it has none), claims free monitors up
/// to its share when it holds `held` fewer, and lists the live servers. With `reread`, also reads
/// every monitor it holds (after a start, or after its lease may have run out).
pub(super) async fn round(
    client: &mut tokio_postgres::Client,
    path: &Path,
    me: Me<'_>,
    held: usize,
    reread: bool,
) -> Result<Round, StoreError> {
    let server = me.id;
    let sql = pg_error(path);
    let tx = client.transaction().await.map_err(&sql)?;
    let now: i64 = tx.query_one(NOW, &[]).await.map_err(&sql)?.get(0);
    let until = now + nanos(LEASE);
    tx.execute(
        "INSERT INTO servers (id, url, started_at, heartbeat_at, lease_until)
         VALUES ($1, $5, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, url = excluded.url,
             heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until",
        &[
            &server,
            &super::time_to_sql(me.started_at),
            &now,
            &until,
            &me.url,
        ],
    )
    .await
    .map_err(&sql)?;
    tx.execute(
        "DELETE FROM servers WHERE heartbeat_at < $1",
        &[&(now - nanos(FORGET_AFTER))],
    )
    .await
    .map_err(&sql)?;
    let (total, live): (i64, i64) = {
        let row = tx
            .query_one(
                "SELECT (SELECT count(*) FROM monitors),
                        (SELECT count(*) FROM servers WHERE lease_until >= $1)",
                &[&now],
            )
            .await
            .map_err(&sql)?;
        (row.get(0), row.get(1))
    };
    let live = live.max(1);
    let share = usize::try_from((total + live - 1) / live).unwrap_or(0);
    let mut names: Vec<String> = if reread {
        tx.query(
            "SELECT name FROM monitors WHERE owner = $1 ORDER BY id",
            &[&server],
        )
        .await
        .map_err(&sql)?
        .iter()
        .map(|row| row.get(0))
        .collect()
    } else {
        Vec::new()
    };
    let holding = if reread { names.len() } else { held };
    if holding < share {
        // One claimer at a time: under READ COMMITTED a claim whose snapshot predates another
        // server's committed claim could take its rows again (the re-check of a locked row does
        // not re-run the join that found it free). Each claim waits for the one before to
        // commit, then sees it.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
            .await
            .map_err(&sql)?;
        let claimed = tx
            .query(
                "UPDATE monitors SET owner = $1, version = nextval('changes')
                 WHERE id IN (SELECT m.id FROM monitors m
                              LEFT JOIN servers s ON s.id = m.owner AND s.lease_until >= $2
                              WHERE s.id IS NULL
                              ORDER BY m.id LIMIT $3
                              FOR UPDATE OF m SKIP LOCKED)
                 RETURNING name",
                &[&server, &now, &to_i64(share - holding)],
            )
            .await
            .map_err(&sql)?;
        names.extend(claimed.iter().map(|row| row.get::<_, String>(0)));
    }
    let servers = tx
        .query(
            "SELECT s.id, s.started_at, s.heartbeat_at,
                    (SELECT count(*) FROM monitors m WHERE m.owner = s.id), s.url
             FROM servers s WHERE s.lease_until >= $1 ORDER BY s.id",
            &[&now],
        )
        .await
        .map_err(&sql)?
        .iter()
        .map(|row| ServerLease {
            id: row.get(0),
            started_at: time_from_sql(row.get(1)),
            heartbeat_at: time_from_sql(row.get(2)),
            leases: usize::try_from(row.get::<_, i64>(3)).unwrap_or(0),
            url: row.get(4),
        })
        .collect();
    tx.commit().await.map_err(&sql)?;
    let held = names
        .iter()
        .filter_map(|name| AppName::parse(name).ok())
        .collect();
    Ok(Round {
        held,
        complete: reread,
        share,
        servers,
    })
}

/// Lets go of `names` (held by `server`): free for any server to claim at once.
pub(super) async fn release(
    client: &tokio_postgres::Client,
    path: &Path,
    server: &str,
    names: &[AppName],
) -> Result<(), StoreError> {
    let names: Vec<&str> = names.iter().map(AppName::as_str).collect();
    client
        .execute(
            "UPDATE monitors SET owner = NULL, version = nextval('changes')
             WHERE id IN (SELECT id FROM monitors WHERE owner = $1 AND name = ANY($2)
                          ORDER BY id FOR UPDATE)",
            &[&server, &names],
        )
        .await
        .map_err(pg_error(path))?;
    Ok(())
}

/// Lets go of every monitor `server` holds and of its lease: for a server that stops, so the
/// others take its monitors at their next renewal instead of after its lease.
pub(super) async fn leave(
    client: &mut tokio_postgres::Client,
    path: &Path,
    server: &str,
) -> Result<(), StoreError> {
    let sql = pg_error(path);
    let tx = client.transaction().await.map_err(&sql)?;
    tx.execute(
        "UPDATE monitors SET owner = NULL, version = nextval('changes')
         WHERE id IN (SELECT id FROM monitors WHERE owner = $1 ORDER BY id FOR UPDATE)",
        &[&server],
    )
    .await
    .map_err(&sql)?;
    tx.execute("DELETE FROM servers WHERE id = $1", &[&server])
        .await
        .map_err(&sql)?;
    tx.commit().await.map_err(&sql)
}

/// How long a server gone without leaving keeps what its config file declares.
pub const DECLARED_FOR: Duration = Duration::from_secs(3600);

/// The monitors the config files of the other servers declare: each server keeps the names its
/// file declares under `declared:<its id>` in `server_state` ([`crate::store::Store::declare`]).
/// Those of a server that is live, or whose lease ran out within [`DECLARED_FOR`] (killed, or
/// restarting), count; a server that stopped and left counts no more.
pub(super) async fn declared_elsewhere(
    client: &tokio_postgres::Client,
    path: &Path,
    server: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT v.value FROM server_state v JOIN servers s ON v.key = 'declared:' || s.id
                 WHERE s.id <> $1 AND s.lease_until >= ({NOW}) - $2"
            ),
            &[
                &server,
                &i64::try_from(DECLARED_FOR.as_nanos()).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(pg_error(path))?;
    let mut names = Vec::new();
    for row in rows {
        let value: String = row.get(0);
        let listed: Vec<String> =
            serde_json::from_str(&value).map_err(|error| StoreError::Data {
                path: path.to_owned(),
                reason: format!("the names another server declares do not read: {error}"),
            })?;
        names.extend(listed);
    }
    Ok(names)
}

/// What changed after version `since`: every monitor whose definition changed, the state of
/// those `server` does not hold, and the deletions.
pub(super) async fn changes(
    client: &tokio_postgres::Client,
    path: &Path,
    server: &str,
    since: i64,
) -> Result<Changes, StoreError> {
    let rows = query_monitors(
        client,
        path,
        "m.version > $1 OR (s.version > $1 AND m.owner IS DISTINCT FROM $2)",
        &[&since, &server],
    )
    .await?;
    let mut changes = Changes {
        newest: since,
        ..Changes::default()
    };
    for row in &rows {
        let (monitor, owner, version) = stored_monitor(row, path)?;
        changes.newest = changes.newest.max(version);
        changes.monitors.push((monitor, owner));
    }
    for row in client
        .query(
            "SELECT version, name FROM deleted WHERE version > $1",
            &[&since],
        )
        .await
        .map_err(pg_error(path))?
    {
        changes.newest = changes.newest.max(row.get(0));
        if let Ok(name) = AppName::parse(row.get(1)) {
            changes.deleted.push(name);
        }
    }
    Ok(changes)
}

/// The newest check of each monitor `server` does not hold, with the health after it: what the
/// other servers' checks changed besides states (those come with [`changes`]).
pub(super) async fn last_checks(
    client: &tokio_postgres::Client,
    path: &Path,
    server: &str,
) -> Result<Vec<(AppName, LoggedCheck, Health)>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT m.name, {CHECK_COLUMNS}
                 FROM monitors m JOIN states s ON s.monitor_id = m.id
                 JOIN checks c ON c.id = s.last_key
                 WHERE m.owner IS DISTINCT FROM $1"
            ),
            &[&server],
        )
        .await
        .map_err(pg_error(path))?;
    let data = data_error(path);
    let mut checks = Vec::with_capacity(rows.len());
    for row in &rows {
        let Ok(name) = AppName::parse(row.get(0)) else {
            continue;
        };
        let raw = raw_check_at(row, 1);
        let health = raw.health().map_err(&data)?;
        checks.push((name, raw.decode().map_err(&data)?, health));
    }
    Ok(checks)
}

/// The monitors `names` as stored (for a server that just claimed them).
pub(super) async fn load(
    client: &tokio_postgres::Client,
    path: &Path,
    names: &[AppName],
) -> Result<Vec<StoredMonitor>, StoreError> {
    let names: Vec<&str> = names.iter().map(AppName::as_str).collect();
    query_monitors(client, path, "m.name = ANY($1)", &[&names])
        .await?
        .iter()
        .map(|row| stored_monitor(row, path).map(|(monitor, _, _)| monitor))
        .collect()
}
