//! Opening the file: checks, pragmas, and the schema migrations.
//!
//! The schema version is `PRAGMA user_version`: [`MIGRATIONS`]`[i]` takes a database from version
//! `i` to `i + 1`, each step in its own transaction. Steps are only ever appended; a released step
//! is never edited.
//!
//! Times are stored as whole nanoseconds since the Unix epoch (UTC) in an `INTEGER`, which keeps
//! every `DateTime<Utc>` exactly; states and outcomes as small integer codes (see `rows`); the
//! monitor spec as JSON.

use std::io::ErrorKind;
use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{BUSY_TIMEOUT, JOURNAL_SIZE_LIMIT, StoreError};

/// `PRAGMA application_id` of a healthchecker database: "HCKR".
pub(super) const APPLICATION_ID: i32 = 0x4843_4b52;

/// Page cache of the writer connection, in KiB (SQLite's negative `cache_size`).
const WRITER_CACHE_KIB: i64 = 8 * 1024;

/// Bytes per database page, fixed when the file is created. Each check changes one page of its
/// monitor's log range (10,000 monitors: 10,000 pages that never all fit a cache), and that page
/// is read, written to the WAL and copied back at the checkpoint: small pages make each of those
/// cheap. A check row (about 100 bytes, bodies up to about 900 bytes) still fits in one page.
pub(super) const PAGE_SIZE: u32 = 1024;

/// The schema, one step per version.
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the first schema.
    "
    CREATE TABLE monitors (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        name          TEXT    NOT NULL UNIQUE,
        spec          TEXT    NOT NULL,          -- MonitorSpec as JSON
        paused        INTEGER NOT NULL,
        registered_at INTEGER NOT NULL           -- ns since the epoch, UTC
    ) STRICT;

    -- A monitor's health where the log does not carry it: at registration, at each transition
    -- (for `since`), and for checks whose log rows were dropped. Otherwise the newest log row,
    -- which has the counters too, is the state: a check writes one row, not two.
    CREATE TABLE states (
        monitor_id INTEGER PRIMARY KEY,          -- monitors.id
        state      INTEGER NOT NULL,             -- 0 UNKNOWN, 1 HEALTHY, 2 DEGRADED, 3 UNHEALTHY
        passes     INTEGER NOT NULL,
        fails      INTEGER NOT NULL,
        recovering INTEGER NOT NULL,
        since      INTEGER,                      -- time of the last transition
        health_seq INTEGER NOT NULL              -- the health is as of this log row (0: none);
                                                 -- a newer log row supersedes it
    ) STRICT;

    -- The health-check log, clustered by monitor: one key range per monitor, read newest first.
    CREATE TABLE checks (
        id          INTEGER PRIMARY KEY,         -- monitor_id << 32 | seq (1, 2, 3... per monitor)
        time        INTEGER NOT NULL,
        outcome     INTEGER NOT NULL,            -- 0 pass, 1 warn, 2 fail
        reason      TEXT    NOT NULL,            -- probe::Reason::as_str
        http_status INTEGER,
        latency_ns  INTEGER NOT NULL,
        body        TEXT,                        -- JSON
        detail      TEXT,
        state       INTEGER NOT NULL,            -- the health after the check
        passes      INTEGER NOT NULL,
        fails       INTEGER NOT NULL,
        recovering  INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE transitions (
        id         INTEGER PRIMARY KEY,
        monitor_id INTEGER NOT NULL,
        time       INTEGER NOT NULL,
        from_state INTEGER NOT NULL,
        to_state   INTEGER NOT NULL,
        reason     TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX transitions_by_monitor ON transitions (monitor_id, id);
    CREATE INDEX transitions_by_time ON transitions (time);

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        monitor         TEXT    NOT NULL,
        recipients      TEXT    NOT NULL,        -- JSON array
        subject         TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        message_id      TEXT    NOT NULL,
        in_reply_to     TEXT,
        refs            TEXT    NOT NULL,        -- JSON array: the References header
        created_at      INTEGER NOT NULL,
        status          TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'logged', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        done_at         INTEGER                  -- when delivered, logged or given up
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    CREATE INDEX outbox_done ON outbox (done_at) WHERE done_at IS NOT NULL;
    ",
    // 1 -> 2: the alert policy's state is kept with each monitor, and the outbox holds messages
    // of any channel, written in the transaction of the transition that caused them. Mail that
    // was pending in the old outbox moves over as it was rendered.
    "
    ALTER TABLE monitors ADD COLUMN alerting TEXT;  -- alerting::Alerting as JSON; NULL: not
                                                    -- written yet (rebuilt from the transitions)

    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        monitor         TEXT    NOT NULL,        -- the app the message is about
        channel         TEXT    NOT NULL,        -- 'email', or a channel's name
        recipients      TEXT    NOT NULL,        -- JSON array (mail addresses; empty otherwise)
        event_id        TEXT    NOT NULL,        -- the event's id (withdrawals name it)
        payload         TEXT    NOT NULL,        -- JSON: what to deliver
        created_at      INTEGER NOT NULL,
        status          TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'logged', 'failed', 'withdrawn')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,        -- due then (a held degrade: the end of its hold)
        last_error      TEXT,
        done_at         INTEGER                  -- when delivered, logged, given up or withdrawn
    ) STRICT;
    CREATE INDEX messages_due ON messages (status, channel, next_attempt_at);
    CREATE INDEX messages_done ON messages (done_at) WHERE done_at IS NOT NULL;
    CREATE INDEX messages_done_by_channel ON messages (channel, done_at) WHERE done_at IS NOT NULL;
    CREATE INDEX messages_by_monitor ON messages (monitor, event_id) WHERE status = 'pending';

    INSERT INTO messages (monitor, channel, recipients, event_id, payload, created_at, status,
                          attempts, next_attempt_at, last_error, done_at)
    SELECT monitor, 'email', recipients, message_id,
           json_object('mail', json_object('subject', subject, 'body', body,
                                           'message_id', message_id, 'in_reply_to', in_reply_to,
                                           'references', json(refs))),
           created_at, status, attempts, next_attempt_at, last_error, done_at
    FROM outbox ORDER BY id;
    DROP TABLE outbox;
    ",
    // 2 -> 3: maintenance set through the API; messages held to be grouped by host; the state of
    // the server as a whole (a storm in progress).
    "
    ALTER TABLE monitors ADD COLUMN maintenance TEXT;  -- {\"until\": ..., \"reason\": ...} as JSON
    ALTER TABLE messages ADD COLUMN group_key TEXT;    -- the host whose alerts go out together
    CREATE INDEX messages_by_group ON messages (group_key) WHERE status = 'pending';
    CREATE TABLE server_state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL                            -- JSON
    ) STRICT;
    ",
    // 3 -> 4: monitors declared in the config file are told from those registered over the API,
    // and https and tls checks keep their certificate's expiry.
    "
    ALTER TABLE monitors ADD COLUMN source TEXT NOT NULL DEFAULT 'api'
        CHECK (source IN ('api', 'config'));          -- registry::Source
    ALTER TABLE checks ADD COLUMN cert_not_after INTEGER; -- ns since the epoch, UTC
    ",
    // 4 -> 5: the server is not a proxy into the LAN (DESIGN.md). A check keeps its body only
    // when it is a health answer; any other body is kept as its size and a short hash, keyed
    // with a key made here once (so the hash of a guessed body cannot be matched). Bodies of
    // earlier checks that are not a JSON object with a `status` member (in any casing) are
    // dropped: whoever could read the log could read them.
    "
    ALTER TABLE checks ADD COLUMN body_size INTEGER;  -- bytes of a body not kept (NULL: none)
    ALTER TABLE checks ADD COLUMN body_hash TEXT;     -- its keyed hash, 16 hex digits

    CREATE TABLE secrets (
        name  TEXT PRIMARY KEY,                  -- 'body_digest_key'
        value BLOB NOT NULL
    ) STRICT;
    INSERT INTO secrets (name, value) VALUES ('body_digest_key', randomblob(32));

    UPDATE checks SET body = NULL
    WHERE body IS NOT NULL
      AND CASE WHEN json_valid(body) AND json_type(body) = 'object'
               THEN NOT EXISTS (SELECT 1 FROM json_each(checks.body) WHERE lower(key) = 'status')
               ELSE 1 END;
    ",
    // 5 -> 6: history. Per-monitor aggregates of the checks, hourly (kept 30 days) and daily (kept
    // 400 days), so uptime and latency over a year never need the raw log. Each row records the
    // newest log row folded into it (`seq`), so a restart folds exactly the checks after it. The
    // log that is already there is folded in, so history starts with what the file holds.
    "
    CREATE TABLE hourly (
        monitor_id  INTEGER NOT NULL,            -- monitors.id
        start       INTEGER NOT NULL,            -- the bucket's start, ns since the epoch (UTC)
        checks      INTEGER NOT NULL,
        passes      INTEGER NOT NULL,
        warns       INTEGER NOT NULL,
        fails       INTEGER NOT NULL,
        latency_sum INTEGER NOT NULL,            -- ns, over every check of the bucket
        latency_max INTEGER NOT NULL,            -- ns
        seq         INTEGER NOT NULL,            -- the newest log row (checks.id & 0xFFFFFFFF) in it
        PRIMARY KEY (monitor_id, start)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX hourly_by_start ON hourly (start);
    CREATE TABLE daily (
        monitor_id  INTEGER NOT NULL,
        start       INTEGER NOT NULL,            -- midnight UTC
        checks      INTEGER NOT NULL,
        passes      INTEGER NOT NULL,
        warns       INTEGER NOT NULL,
        fails       INTEGER NOT NULL,
        latency_sum INTEGER NOT NULL,
        latency_max INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        PRIMARY KEY (monitor_id, start)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX daily_by_start ON daily (start);
    -- The messages of one incident (history::Incident::messages).
    CREATE INDEX messages_by_monitor_time ON messages (monitor, created_at);

    INSERT INTO hourly
    SELECT id >> 32, (time / 3600000000000) * 3600000000000, count(*),
           sum(outcome = 0), sum(outcome = 1), sum(outcome = 2),
           sum(latency_ns), max(latency_ns), max(id & 4294967295)
    FROM checks GROUP BY id >> 32, time / 3600000000000;
    INSERT INTO daily
    SELECT id >> 32, (time / 86400000000000) * 86400000000000, count(*),
           sum(outcome = 0), sum(outcome = 1), sum(outcome = 2),
           sum(latency_ns), max(latency_ns), max(id & 4294967295)
    FROM checks GROUP BY id >> 32, time / 86400000000000;
    ",
    // 6 -> 7: push monitors: where each stands (last ping, last success, a run in progress), and
    // what each ping of the log said.
    "
    ALTER TABLE monitors ADD COLUMN push TEXT;  -- push::PushState as JSON; NULL: polled, or no ping yet
    ALTER TABLE checks ADD COLUMN ping TEXT;    -- push::PingEntry as JSON; NULL: a check or a deadline
    ",
];

/// The schema version this server writes.
pub(super) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Opens the writer's connection: checks the file, migrates it, sets the pragmas.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    check_access(path)?;
    let conn = Connection::open(path).map_err(|error| classify(path, &error))?;
    let sql = |error: rusqlite::Error| classify(path, &error);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    // The first read of the header: a file that is not SQLite fails here, before anything is written.
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql)?;
    if version > current_version() {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: current_version(),
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(sql)?;
        if tables > 0 {
            return Err(corrupt(
                path,
                "an SQLite database of another program: it has tables but no healthchecker schema",
            ));
        }
        // Only possible before the first table exists (and before WAL mode, for the page size).
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(sql)?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sql)?;
    } else {
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(sql)?;
        if id != APPLICATION_ID {
            return Err(corrupt(
                path,
                &format!("an SQLite database of another program (application_id {id:#x})"),
            ));
        }
        quick_check(&conn, path)?;
    }
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Sqlite {
            path: path.to_owned(),
            reason: format!("cannot switch to WAL mode (journal_mode is {mode})"),
        });
    }
    migrate(&conn, path, version)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(sql)?;

    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(sql)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sql)?;
    // Recommended once for a long-lived connection: analyze what needs it, within limits.
    conn.execute_batch("PRAGMA optimize = 0x10002")
        .map_err(sql)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Opens a read connection on a database that [`open_writer`] has prepared.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|error| classify(path, &error))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| classify(path, &error))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|error| classify(path, &error))?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// Says "permission denied" in plain words before SQLite says "unable to open database file".
fn check_access(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(corrupt(path, "it is a folder, not a file"));
        }
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(access(path, &error)),
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|error| access(path, &error))
}

fn access(path: &Path, error: &std::io::Error) -> StoreError {
    if error.kind() == ErrorKind::PermissionDenied {
        StoreError::PermissionDenied {
            path: path.to_owned(),
            reason: error.to_string(),
        }
    } else {
        StoreError::Sqlite {
            path: path.to_owned(),
            reason: error.to_string(),
        }
    }
}

fn corrupt(path: &Path, reason: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `PRAGMA quick_check`: the b-trees are well formed (it does not verify indexes against tables,
/// which would read the whole file twice).
fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut statement = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|error| classify(path, &error))?;
    let problems = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| classify(path, &error))?;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(())
    } else {
        Err(corrupt(
            path,
            &format!("quick_check failed: {}", problems.join("; ")),
        ))
    }
}

/// Applies the migrations after `version`, each in its own transaction.
fn migrate(conn: &Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    let sql = |error: rusqlite::Error| classify(path, &error);
    for (step, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction().map_err(sql)?;
        tx.execute_batch(migration).map_err(sql)?;
        if step == 0 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(sql)?;
        }
        tx.pragma_update(None, "user_version", step as i64 + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        tracing::info!(
            "database {}: schema migrated to version {}",
            path.display(),
            step + 1
        );
    }
    Ok(())
}

/// Turns an SQLite error into the [`StoreError`] that tells the user what to do.
pub(super) fn classify(path: &Path, error: &rusqlite::Error) -> StoreError {
    let reason = error.to_string();
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_owned(),
            reason,
        },
        Some(ErrorCode::PermissionDenied | ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
            StoreError::PermissionDenied {
                path: path.to_owned(),
                reason,
            }
        }
        _ => StoreError::Sqlite {
            path: path.to_owned(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_create_the_schema_from_an_empty_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.db");
        std::fs::write(&path, b"").expect("empty file");
        let conn = open_writer(&path).expect("opens");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, current_version());
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .expect("id");
        assert_eq!(id, APPLICATION_ID);
        let vacuum: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .expect("auto_vacuum");
        assert_eq!(vacuum, 2, "incremental");
        let page_size: u32 = conn
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .expect("page_size");
        assert_eq!(page_size, PAGE_SIZE);
        let mut names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        names.retain(|name| !name.starts_with("sqlite_"));
        assert_eq!(
            names,
            [
                "checks",
                "daily",
                "hourly",
                "messages",
                "monitors",
                "secrets",
                "server_state",
                "states",
                "transitions"
            ]
        );
        drop(conn);
        // Opening again runs no step twice.
        open_writer(&path).expect("opens again");
    }

    /// The step that stops keeping bodies that are not health answers drops those of earlier
    /// checks, keeps health answers, and makes the digest key once.
    #[test]
    fn bodies_kept_before_that_are_not_health_answers_are_dropped() {
        const BODY_STEP: usize = 4;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.db");
        {
            let conn = Connection::open(&path).expect("create");
            for (step, migration) in MIGRATIONS.iter().enumerate().take(BODY_STEP) {
                conn.execute_batch(migration).expect("step");
                if step == 0 {
                    conn.pragma_update(None, "application_id", APPLICATION_ID)
                        .expect("id");
                }
            }
            conn.pragma_update(None, "user_version", BODY_STEP as i64)
                .expect("version");
            let bodies = [
                Some(r#"{"status":"pass","checks":{}}"#),
                Some(r#"{"Status":"UP"}"#),
                Some(r#"{"admin":"root","password":"hunter2"}"#),
                Some(r#"[{"status":"pass"}]"#),
                Some(r#"{"checks":{"status":"pass"}}"#),
                None,
            ];
            for (id, body) in bodies.iter().enumerate() {
                conn.execute(
                    "INSERT INTO checks (id, time, outcome, reason, http_status, latency_ns, \
                     body, detail, state, passes, fails, recovering) \
                     VALUES (?1, 0, 0, 'ok', 200, 1, ?2, NULL, 1, 1, 0, 0)",
                    rusqlite::params![id as i64 + 1, body],
                )
                .expect("old check");
            }
        }
        open_writer(&path).expect("migrates");
        let conn = Connection::open(&path).expect("open");
        let kept: Vec<Option<String>> = conn
            .prepare("SELECT body FROM checks ORDER BY id")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            kept,
            [
                Some(r#"{"status":"pass","checks":{}}"#.to_owned()),
                Some(r#"{"Status":"UP"}"#.to_owned()),
                None,
                None,
                None,
                None,
            ]
        );
        let key: Vec<u8> = conn
            .query_row(
                "SELECT value FROM secrets WHERE name = 'body_digest_key'",
                [],
                |row| row.get(0),
            )
            .expect("a key");
        assert_eq!(key.len(), 32);
        assert!(key.iter().any(|&byte| byte != 0), "random");
        drop(conn);
        open_writer(&path).expect("opens again");
        let again: Vec<u8> = Connection::open(&path)
            .expect("open")
            .query_row(
                "SELECT value FROM secrets WHERE name = 'body_digest_key'",
                [],
                |row| row.get(0),
            )
            .expect("a key");
        assert_eq!(again, key, "made once");
    }

    /// A database from before the history step keeps everything, and its log is folded into
    /// hourly and daily buckets.
    #[test]
    fn the_history_step_folds_the_log_already_there() {
        let step = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("CREATE TABLE hourly"))
            .expect("the history step");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.db");
        let conn = Connection::open(&path).expect("open");
        for (n, sql) in MIGRATIONS[..step].iter().enumerate() {
            conn.execute_batch(sql).expect("an older step");
            conn.pragma_update(None, "user_version", n as i64 + 1)
                .expect("version");
        }
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("id");
        conn.execute_batch(
            "INSERT INTO monitors (id, name, spec, paused, registered_at) VALUES (7, 'a', '{}', 0, 0);
             INSERT INTO states VALUES (7, 1, 1, 0, 0, NULL, 0);",
        )
        .expect("a monitor");
        const HOUR: i64 = 3_600_000_000_000;
        // Hour 0: pass 10 ms, fail 30 ms; hour 1: warn 20 ms; day 1: pass 5 ms.
        for (seq, time, outcome, latency_ms) in [
            (1, 5, 0, 10),
            (2, HOUR - 1, 2, 30),
            (3, HOUR + 2, 1, 20),
            (4, 24 * HOUR + 7, 0, 5),
        ] {
            conn.execute(
                "INSERT INTO checks (id, time, outcome, reason, http_status, latency_ns, \
                 body, detail, state, passes, fails, recovering) \
                 VALUES (?1, ?2, ?3, 'ok', 200, ?4, NULL, NULL, 1, 1, 0, 0)",
                rusqlite::params![(7_i64 << 32) | seq, time, outcome, latency_ms * 1_000_000],
            )
            .expect("a check");
        }
        drop(conn);
        let conn = open_writer(&path).expect("migrates");
        // start, checks, passes, warns, fails, latency_sum, latency_max, seq
        type Bucket = (i64, i64, i64, i64, i64, i64, i64, i64);
        let rows = |table: &str| -> Vec<Bucket> {
            conn.prepare(&format!(
                "SELECT start, checks, passes, warns, fails, latency_sum, latency_max, seq
                 FROM {table} WHERE monitor_id = 7 ORDER BY start"
            ))
            .expect("prepare")
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
        };
        let ms = 1_000_000;
        assert_eq!(
            rows("hourly"),
            [
                (0, 2, 1, 0, 1, 40 * ms, 30 * ms, 2),
                (HOUR, 1, 0, 1, 0, 20 * ms, 20 * ms, 3),
                (24 * HOUR, 1, 1, 0, 0, 5 * ms, 5 * ms, 4),
            ]
        );
        assert_eq!(
            rows("daily"),
            [
                (0, 3, 1, 1, 1, 60 * ms, 30 * ms, 3),
                (24 * HOUR, 1, 1, 0, 0, 5 * ms, 5 * ms, 4),
            ]
        );
        let checks: i64 = conn
            .query_row("SELECT count(*) FROM checks", [], |row| row.get(0))
            .expect("count");
        assert_eq!(checks, 4, "the log is kept");
    }

    #[test]
    fn a_foreign_sqlite_database_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE songs (title TEXT)")
            .expect("create");
        drop(conn);
        let error = open_writer(&path).expect_err("foreign");
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("another program"), "{error}");
    }
}
