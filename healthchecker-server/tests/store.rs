//! The SQLite store on real files: migrations, bounds in the file, a kill -9 in the middle of
//! writing, damaged files, pruning, the outbox in the file. Every test works in its own temporary
//! folder. What both backends must do alike (round trips, the log, the outbox) is
//! tests/store_contract.rs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::store_data::{at, check, monitor, name};
use healthchecker_server::store::{
    FILE_NAME, LoggedCheck, Message, Store, StoreError, StoreOptions,
};

fn detail(check: &LoggedCheck) -> &str {
    check.record.detail.as_deref().unwrap_or_default()
}

fn options(log_retention: usize) -> StoreOptions {
    StoreOptions {
        log_retention,
        ..StoreOptions::default()
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn sqlite(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(FILE_NAME)).expect("open with rusqlite")
}

#[tokio::test]
async fn a_missing_folder_gets_a_new_migrated_database() {
    let dir = temp_dir();
    let data = dir.path().join("a/b/data");
    let store = Store::open(&data, StoreOptions::default()).expect("opens");
    assert_eq!(store.path(), data.join(FILE_NAME));
    assert!(store.load_monitors().expect("loads").is_empty());
    store.close().await.expect("closes");
    let conn = sqlite(&data);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("version");
    assert_eq!(version, 7);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn pausing_and_deleting() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("opens");
    store.save_monitor(&monitor("app")).await.expect("saves");
    assert!(store.set_paused(&name("app"), true).await.expect("pauses"));
    assert!(store.load_monitors().expect("loads")[0].paused);
    assert!(
        store
            .set_paused(&name("app"), false)
            .await
            .expect("resumes")
    );
    assert!(!store.load_monitors().expect("loads")[0].paused);
    assert!(
        !store
            .set_paused(&name("nope"), true)
            .await
            .expect("unknown")
    );

    for n in 1..=9 {
        store.record(check("app", n));
    }
    store.flush().await.expect("flushes");
    assert!(store.delete_monitor(&name("app")).await.expect("deletes"));
    assert!(!store.delete_monitor(&name("app")).await.expect("gone"));
    assert!(store.load_monitors().expect("loads").is_empty());
    assert!(store.log(&name("app"), 100).await.expect("log").is_empty());

    // The same name registered again starts with an empty history.
    store.save_monitor(&monitor("app")).await.expect("saves");
    assert!(store.log(&name("app"), 100).await.expect("log").is_empty());
    assert!(
        store
            .transitions(&name("app"), 100)
            .await
            .expect("t")
            .is_empty()
    );
    let conn = sqlite(dir.path());
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM checks) + (SELECT count(*) FROM transitions)",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(
        rows, 0,
        "the old log and transitions are gone from the file"
    );
}

#[tokio::test]
async fn the_log_is_bounded_per_monitor() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), options(100)).expect("opens");
    store.save_monitor(&monitor("busy")).await.expect("saves");
    store.save_monitor(&monitor("quiet")).await.expect("saves");
    for n in 1..=257 {
        store.record(check("busy", n));
    }
    store.record(check("quiet", 1));
    store.flush().await.expect("flushes");
    let log = store.log(&name("busy"), 1000).await.expect("log");
    assert_eq!(log.len(), 100, "at most log_retention");
    assert_eq!(detail(&log[0]), "check 257");
    assert_eq!(detail(&log[99]), "check 158");
    assert_eq!(store.log(&name("quiet"), 1000).await.expect("log").len(), 1);
    let conn = sqlite(dir.path());
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM checks", [], |row| row.get(0))
        .expect("count");
    assert!(
        (101..=111).contains(&rows),
        "old rows are deleted in steps of a tenth: {rows}"
    );
    drop(store);

    // A smaller retention applies at once to what is read, and to the file from the next step.
    let store = Store::open(dir.path(), options(10)).expect("reopens");
    assert_eq!(store.log(&name("busy"), 1000).await.expect("log").len(), 10);
    store.record(check("busy", 258));
    store.record(check("busy", 259));
    store.record(check("busy", 260));
    store.flush().await.expect("flushes");
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.id >> 32 WHERE m.name = 'busy'",
            [],
            |row| row.get(0),
        )
        .expect("count");
    assert_eq!(rows, 10);
}

#[tokio::test]
async fn a_closed_store_refuses_calls_and_a_dropped_one_still_commits() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("opens");
    store.save_monitor(&monitor("app")).await.expect("saves");
    store.record(check("app", 1));
    let clone = store.clone();
    store.close().await.expect("closes");
    clone.record(check("app", 2)); // dropped, no panic
    for error in [
        clone.flush().await.expect_err("closed"),
        clone.save_monitor(&monitor("x")).await.expect_err("closed"),
        clone.log(&name("app"), 1).await.expect_err("closed"),
        clone.load_monitors().expect_err("closed"),
        clone.close().await.expect_err("closed"),
    ] {
        assert!(matches!(error, StoreError::Closed { .. }), "{error}");
        assert!(error.to_string().contains(FILE_NAME), "{error}");
    }
    drop((store, clone));
    // close() folded the WAL into the file: it stands alone.
    let wal = dir.path().join(format!("{FILE_NAME}-wal"));
    assert!(
        std::fs::metadata(&wal).map_or(true, |meta| meta.len() == 0),
        "WAL left over"
    );

    let store = Store::open(dir.path(), StoreOptions::default()).expect("reopens");
    assert_eq!(store.log(&name("app"), 10).await.expect("log").len(), 1);
    // Dropping the last handle without close() commits what was recorded.
    store.record(check("app", 2));
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let store = Store::open(dir.path(), StoreOptions::default()).expect("reopens");
        if store.log(&name("app"), 10).await.expect("log").len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped store's write never arrived"
        );
        drop(store);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mail(n: u32) -> Message {
    Message {
        monitor: "media-center".into(),
        channel: "email".into(),
        recipients: vec!["me@example.com".into(), "ops@example.com".into()],
        event_id: format!("hc.unhealthy.media-center.{n}"),
        payload: format!(r#"{{"n": {n}, "text": "line one\nline two"}}"#),
        group: None,
        due: at(i64::from(n)),
        created_at: at(i64::from(n)),
    }
}

/// A check that causes messages: the check, the transition, the alerting state and the messages
/// are one write; a later check withdraws a held one; a pause and a removal withdraw the rest.
#[tokio::test]
async fn a_check_writes_its_messages_with_it_and_pause_and_removal_withdraw_them() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("opens");
    for app in ["app", "other"] {
        store.save_monitor(&monitor(app)).await.expect("saves");
    }
    let mut wake = store.outbox_changed();
    let woken = wake.changed();
    let mut first = check("app", 3);
    first.alerting = Some(r#"{"held": 1}"#.to_owned());
    first.messages = vec![
        mail(1),
        Message {
            due: at(1000),
            ..mail(2)
        },
    ];
    store.record(first);
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("the delivery side is told after the commit")
        .expect("the store is open");
    let due = store.due_messages("email", at(10), 10).await.expect("due");
    assert_eq!(due.len(), 1, "the held one is not due yet");
    assert_eq!(
        due[0].message,
        Message {
            monitor: "app".into(),
            ..mail(1)
        },
        "a check's messages are about its monitor"
    );
    assert_eq!(
        store
            .due_messages("email", at(1000), 10)
            .await
            .expect("due")
            .len(),
        2
    );
    let loaded = store.load_monitors().expect("loads");
    assert_eq!(loaded[0].alerting.as_deref(), Some(r#"{"held": 1}"#));
    assert_eq!(
        loaded[0]
            .last_transition
            .as_ref()
            .map(|t| t.reason.as_str()),
        Some("timeout: check 3")
    );

    // The held one is withdrawn by a later check; the due one stays.
    let mut second = check("app", 4);
    second.withdraw = vec![mail(2).event_id, "no such event".to_owned()];
    store.record(second);
    store.flush().await.expect("flush");
    let due = store
        .due_messages("email", at(5000), 10)
        .await
        .expect("due");
    assert_eq!(
        due.iter()
            .map(|m| m.message.event_id.clone())
            .collect::<Vec<_>>(),
        [mail(1).event_id]
    );

    // Another monitor's messages are not touched by this one's pause.
    let mut theirs = check("other", 3);
    theirs.messages = vec![Message {
        monitor: "other".into(),
        ..mail(3)
    }];
    store.record(theirs);
    assert!(store.set_paused(&name("app"), true).await.expect("pauses"));
    let due = store
        .due_messages("email", at(5000), 10)
        .await
        .expect("due");
    assert_eq!(
        due.iter()
            .map(|m| m.message.monitor.as_str())
            .collect::<Vec<_>>(),
        ["other"]
    );
    let loaded = store.load_monitors().expect("loads");
    assert_eq!(
        loaded[0].alerting.as_deref(),
        Some("{}"),
        "a pause forgets the state"
    );
    assert!(store.delete_monitor(&name("other")).await.expect("deletes"));
    assert_eq!(store.pending_messages().await.expect("count"), 0);
    let conn = sqlite(dir.path());
    let statuses: Vec<String> = conn
        .prepare("SELECT status FROM messages ORDER BY id")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(statuses, ["withdrawn", "withdrawn", "withdrawn"]);
}

/// One write that the database refuses (here a trigger that stands for a bad row) fails alone:
/// the other checks and calls of its batch are kept.
#[tokio::test]
async fn a_failed_write_loses_only_itself() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("opens");
    for app in ["a", "b"] {
        store.save_monitor(&monitor(app)).await.expect("saves");
    }
    sqlite(dir.path())
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON checks
             WHEN NEW.detail = 'check 5' AND NEW.id >> 32 = (SELECT id FROM monitors WHERE name = 'a')
             BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
        )
        .expect("trigger");
    for n in 1..=8 {
        store.record(check("a", n));
        store.record(check("b", n));
    }
    let registered = store.save_monitor(&monitor("c")).await;
    assert!(registered.is_ok(), "{registered:?}");
    store.flush().await.expect("the batch as a whole commits");
    let details = |app| {
        let store = store.clone();
        async move {
            store
                .log(&name(app), 100)
                .await
                .expect("log")
                .iter()
                .map(|check| detail(check).to_owned())
                .collect::<Vec<_>>()
        }
    };
    let a = details("a").await;
    assert_eq!(a.len(), 7, "{a:?}");
    assert!(!a.contains(&"check 5".to_owned()));
    assert_eq!(details("b").await.len(), 8);
    assert_eq!(store.load_monitors().expect("loads").len(), 3);
    // and the writer goes on
    store.record(check("c", 1));
    store.flush().await.expect("flush");
    assert_eq!(details("c").await.len(), 1);
}

#[tokio::test]
async fn the_outbox_keeps_messages_until_they_are_done() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("opens");
    let first = store.enqueue(&mail(1)).await.expect("enqueues");
    let second = store.enqueue(&mail(2)).await.expect("enqueues");
    let third = store.enqueue(&mail(3)).await.expect("enqueues");
    assert_eq!(store.pending_messages().await.expect("count"), 3);
    assert!(
        store
            .due_messages("email", at(0), 10)
            .await
            .expect("due")
            .is_empty(),
        "not due before it was queued"
    );
    let due = store.due_messages("email", at(10), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|m| m.id).collect::<Vec<_>>(),
        [first, second, third]
    );
    assert_eq!(due[1].message, mail(2));
    assert_eq!((due[1].attempts, due[1].last_error.as_deref()), (0, None));
    assert_eq!(
        store
            .due_messages("email", at(10), 1)
            .await
            .expect("due")
            .len(),
        1,
        "limit"
    );

    // The relay is down: try again later.
    assert!(
        store
            .mark_retry(first, at(100), "connection refused")
            .await
            .expect("retry")
    );
    assert!(
        store
            .mark_retry(first, at(200), "connection refused again")
            .await
            .expect("retry")
    );
    let due = store.due_messages("email", at(150), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|m| m.id).collect::<Vec<_>>(),
        [second, third]
    );
    store.close().await.expect("closes");

    // A restart keeps all of it.
    let store = Store::open(dir.path(), StoreOptions::default()).expect("reopens");
    let due = store.due_messages("email", at(200), 10).await.expect("due");
    assert_eq!(
        due.iter().map(|m| m.id).collect::<Vec<_>>(),
        [second, third, first]
    );
    assert_eq!(due[2].attempts, 2);
    assert_eq!(
        due[2].last_error.as_deref(),
        Some("connection refused again")
    );
    assert_eq!(due[2].next_attempt_at, at(200));

    assert!(
        store
            .mark_delivered(first, at(201))
            .await
            .expect("delivered")
    );
    assert!(
        !store
            .mark_delivered(first, at(202))
            .await
            .expect("not twice")
    );
    assert!(
        !store
            .mark_retry(first, at(300), "late")
            .await
            .expect("not pending")
    );
    assert!(store.mark_logged(second, at(201)).await.expect("logged"));
    assert!(
        store
            .mark_failed(third, at(201), "550 no such user")
            .await
            .expect("failed")
    );
    assert!(!store.mark_delivered(999, at(201)).await.expect("unknown"));
    assert_eq!(store.pending_messages().await.expect("count"), 0);
    assert!(
        store
            .due_messages("email", at(10_000), 10)
            .await
            .expect("due")
            .is_empty()
    );
    store.close().await.expect("closes");

    let store = Store::open(dir.path(), StoreOptions::default()).expect("reopens");
    assert!(
        store
            .due_messages("email", at(10_000), 10)
            .await
            .expect("due")
            .is_empty(),
        "delivered mail is never due again"
    );
    let conn = sqlite(dir.path());
    let statuses: Vec<(String, i64)> = conn
        .prepare("SELECT status, attempts FROM messages ORDER BY id")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        statuses,
        [
            ("delivered".into(), 2),
            ("logged".into(), 0),
            ("failed".into(), 1)
        ]
    );
    // Finished mail goes after the retention; nothing pending ever does.
    let fourth = store.enqueue(&mail(4)).await.expect("enqueues");
    let pruned = store
        .prune(at(201) + chrono::Duration::days(91))
        .await
        .expect("prunes");
    assert_eq!(pruned.messages, 3);
    let due = store
        .due_messages("email", at(10_000), 10)
        .await
        .expect("due");
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [fourth]);
    assert!(fourth > third, "ids are never reused");
}

#[test]
fn a_damaged_file_stops_the_start_and_is_left_untouched() {
    let dir = temp_dir();
    let path = dir.path().join(FILE_NAME);
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).expect("write garbage");
    let error = Store::open(dir.path(), StoreOptions::default()).expect_err("garbage");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("restore it from a backup"), "{message}");
    assert!(message.contains("move it away"), "{message}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        garbage,
        "left untouched"
    );
}

#[tokio::test]
async fn a_database_with_damaged_pages_fails_its_check() {
    let dir = temp_dir();
    // No trimming, so no free pages: every page scribbled over is in use.
    let store = Store::open(dir.path(), options(100_000)).expect("opens");
    store.save_monitor(&monitor("app")).await.expect("saves");
    for n in 1..=3000 {
        store.record(check("app", n));
    }
    store.close().await.expect("closes");
    drop(store);
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    assert!(bytes.len() > 40 * 4096, "several pages: {}", bytes.len());
    // Scribble over pages in the middle of the log, as a bad disk would.
    for byte in &mut bytes[20 * 4096..24 * 4096] {
        *byte = 0x5a;
    }
    std::fs::write(&path, &bytes).expect("write");
    let error = Store::open(dir.path(), StoreOptions::default()).expect_err("damaged");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "left untouched");
}

#[test]
fn a_database_from_a_newer_server_is_refused() {
    let dir = temp_dir();
    drop(Store::open(dir.path(), StoreOptions::default()).expect("opens"));
    sqlite(dir.path())
        .pragma_update(None, "user_version", 99)
        .expect("set version");
    let error = Store::open(dir.path(), StoreOptions::default()).expect_err("too new");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            StoreError::TooNew {
                found: 99,
                supported: 7,
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains(FILE_NAME) && message.contains("schema version 99"),
        "{message}"
    );
    assert!(
        message.contains("run a newer healthchecker-server"),
        "{message}"
    );
}

#[test]
fn an_unreadable_file_says_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    drop(Store::open(dir.path(), StoreOptions::default()).expect("opens"));
    let path = dir.path().join(FILE_NAME);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    if std::fs::File::open(&path).is_ok() {
        eprintln!(
            "skipped: running with the power to read any file (root), so permissions cannot be tested"
        );
        return;
    }
    let error = Store::open(dir.path(), StoreOptions::default()).expect_err("unreadable");
    let message = error.to_string();
    assert!(
        matches!(error, StoreError::PermissionDenied { .. }),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_data_dir_that_cannot_be_created_is_named() {
    let dir = temp_dir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let error = Store::open(&file.join("data"), StoreOptions::default()).expect_err("not a folder");
    let message = error.to_string();
    assert!(matches!(error, StoreError::CreateDir { .. }), "{message}");
    assert!(message.contains("a-file/data"), "{message}");
}

/// Set by [`a_kill_9_loses_nothing_acknowledged`] for its child process: the data folder.
const CHILD_DIR: &str = "HEALTHCHECKER_TEST_STORE_CHILD_DIR";

/// The child of [`a_kill_9_loses_nothing_acknowledged`]: registers a monitor a round and records a
/// check for every monitor each round, printing what was acknowledged, until it is killed. Does
/// nothing when run on its own.
#[test]
#[ignore = "the child process of a_kill_9_loses_nothing_acknowledged"]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = Store::open(Path::new(&dir), options(100_000)).expect("opens");
        for round in 0..5000u32 {
            let app = format!("app-{round}");
            store.save_monitor(&monitor(&app)).await.expect("saves");
            println!("ack saved {round}");
            for i in 0..=round {
                store.record(check(&format!("app-{i}"), round - i + 1));
            }
            if round % 5 == 4 {
                store.flush().await.expect("flushes");
                println!("ack flushed {round}");
            }
        }
    });
}

/// kill -9 in the middle of writing: the file opens, every acknowledged registration is there, and
/// every check recorded before the last acknowledged flush is in the log, in order, without gaps.
#[tokio::test]
async fn a_kill_9_loses_nothing_acknowledged() {
    let dir = temp_dir();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Let it get well into its stride, then kill it without warning.
    // libtest may print on the same line before our first line: look for the marker anywhere.
    let acks = |lines: &[String], what: &str| -> Vec<u32> {
        let marker = format!("ack {what} ");
        lines
            .iter()
            .filter_map(|line| line.split_once(&marker))
            .map(|(_, round)| round.trim().parse().expect("round"))
            .collect()
    };
    while acks(&lines, "flushed").len() < 12 {
        let wait = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(wait) {
            Ok(line) => lines.push(line),
            Err(error) => panic!("the child stopped talking ({error}); got {lines:?}"),
        }
    }
    std::thread::sleep(Duration::from_millis(fastrand::u64(0..30)));
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "killed, not finished: {status}");
    reader.join().expect("reader");
    lines.extend(lines_rx.try_iter());

    let saved = acks(&lines, "saved");
    assert_eq!(saved, (0..saved.len() as u32).collect::<Vec<_>>());
    let last_flushed = *acks(&lines, "flushed").last().expect("flushed");

    let store = Store::open(dir.path(), options(100_000)).expect("the killed store opens");
    let monitors = store.load_monitors().expect("loads");
    for round in &saved {
        let app = format!("app-{round}");
        assert!(
            monitors.iter().any(|m| m.name.as_str() == app),
            "{app} was acknowledged but is gone"
        );
    }
    for i in 0..=last_flushed {
        let app = format!("app-{i}");
        let log = store.log(&name(&app), 100_000).await.expect("log");
        // Monitor i got check 1 in round i, check n in round i + n - 1.
        let flushed = last_flushed - i + 1;
        assert!(
            log.len() >= flushed as usize,
            "{app}: {} < {flushed}",
            log.len()
        );
        for (k, entry) in log.iter().rev().enumerate() {
            assert_eq!(
                detail(entry),
                format!("check {}", k + 1),
                "{app}: in order, no gaps"
            );
        }
    }
    println!(
        "killed after {} registrations acknowledged, last flush at round {last_flushed}; {} monitors in the file",
        saved.len(),
        monitors.len()
    );
}

/// CPU time of this process and of the store's writer thread, from /proc (Linux), in seconds.
fn cpu_seconds() -> (f64, f64) {
    fn ticks(stat: &str) -> f64 {
        // After the ")" of the command name: state is field 3, utime 14 and stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        (utime + stime) / 100.0
    }
    let process = ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    let mut writer = 0.0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "hc-store-writer" {
            writer += ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    (process, writer)
}

/// Resident memory of this process, in MB (Linux).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// Records `per_monitor` checks for each of `apps`, `chunk` at a time with a flush in between (so
/// the queue never overflows). Returns the wall time.
async fn fill(store: &Store, apps: &[String], first: u32, per_monitor: u32) -> Duration {
    let started = Instant::now();
    for n in first..first + per_monitor {
        for app in apps {
            store.record(check(app, n));
        }
        store.flush().await.expect("flushes");
    }
    started.elapsed()
}

/// The figures for DESIGN.md's performance targets: run with
/// `cargo test --release -p healthchecker-server --test store -- --ignored measure --nocapture`.
/// `HC_BENCH_MONITORS` (default 10000) and `HC_BENCH_SECONDS` (default 20) change the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it by hand with --release"]
async fn measure_write_cost_and_size() {
    let monitors = env_u32("HC_BENCH_MONITORS", 10_000);
    let seconds = env_u32("HC_BENCH_SECONDS", 20);
    if std::env::var_os("HC_BENCH_SKIP_SIZE").is_none() {
        measure_size().await;
    }

    // Cost: `monitors` monitors with full logs, then 2,000 checks a second. `HC_BENCH_DIR` keeps
    // the database for the next run, which then skips the prefill.
    let temp = temp_dir();
    let dir = std::env::var_os("HC_BENCH_DIR").map_or_else(|| temp.path().to_owned(), Into::into);
    let store = Store::open(&dir, options(1000)).expect("opens");
    let apps: Vec<String> = (0..monitors).map(|i| format!("app-{i:06}")).collect();
    let loaded = store.load_monitors().expect("loads");
    let prefill = if loaded.len() == apps.len() {
        0
    } else {
        env_u32("HC_BENCH_PREFILL", 1000)
    };
    let first = loaded
        .iter()
        .filter_map(|m| m.last_check.as_ref())
        .map(|check| check.record.time)
        .max()
        .map_or(1, |time| ((time - at(0)).num_seconds() / 10) as u32 + 1);
    save_all(&store, &apps).await;
    let started = Instant::now();
    let (cpu_before, writer_before) = cpu_seconds();
    fill(&store, &apps, first, prefill).await;
    let (cpu_after, writer_after) = cpu_seconds();
    if prefill > 0 {
        let rows = f64::from(monitors) * f64::from(prefill);
        println!(
            "prefill: {rows} checks in {:.1} s = {:.0} checks/s unpaced; CPU {:.1} us/check ({:.1} in the writer)",
            started.elapsed().as_secs_f64(),
            rows / started.elapsed().as_secs_f64(),
            (cpu_after - cpu_before) * 1e6 / rows,
            (writer_after - writer_before) * 1e6 / rows,
        );
    }
    println!(
        "database with full logs: {:.1} MB",
        folder_size(&dir) as f64 / 1e6
    );
    paced(&store, &apps, seconds, first + prefill).await;
    store.close().await.expect("closes");
    println!(
        "database after close: {:.1} MB",
        folder_size(&dir) as f64 / 1e6
    );
}

fn env_u32(key: &str, default: u32) -> u32 {
    std::env::var(key)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Registers every app at once (one batch, one fsync).
async fn save_all(store: &Store, apps: &[String]) {
    futures_util::future::try_join_all(apps.iter().map(|app| {
        let store = store.clone();
        let app = app.clone();
        async move { store.save_monitor(&monitor(&app)).await }
    }))
    .await
    .expect("saves");
}

/// The database size of 1,000 monitors with full logs of 1,000 checks.
async fn measure_size() {
    let dir = temp_dir();
    let store = Store::open(dir.path(), options(1000)).expect("opens");
    let apps: Vec<String> = (0..1000).map(|i| format!("app-{i:05}")).collect();
    save_all(&store, &apps).await;
    let wall = fill(&store, &apps, 1, 1000).await;
    store.close().await.expect("closes");
    let size = folder_size(dir.path());
    println!(
        "size: 1,000 monitors x 1,000 checks (2/3 with a 45-byte JSON body): {:.1} MB on disk, \
         {:.0} bytes per check; filled at {:.0} checks/s",
        size as f64 / 1e6,
        size as f64 / 1e6,
        1e6 / wall.as_secs_f64()
    );
}

/// Records 2,000 checks a second for `seconds`, round robin over `apps`, and prints the cost.
async fn paced(store: &Store, apps: &[String], seconds: u32, first: u32) {
    let rate = 2000u32;
    let per_tick = (rate / 100) as usize;
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next = 0usize;
    let mut n = first;
    let mut in_record = Duration::ZERO;
    let total = (rate * seconds) as usize;
    let (cpu_before, writer_before) = cpu_seconds();
    let started = Instant::now();
    let mut recorded = 0usize;
    while recorded < total {
        interval.tick().await;
        for _ in 0..per_tick {
            let write = check(&apps[next], n);
            let call = Instant::now();
            store.record(write);
            in_record += call.elapsed();
            recorded += 1;
            next += 1;
            if next == apps.len() {
                next = 0;
                n += 1;
            }
        }
    }
    store.flush().await.expect("flushes");
    let wall = started.elapsed();
    let (cpu_after, writer_after) = cpu_seconds();
    let process = (cpu_after - cpu_before) * 1e6 / total as f64;
    let writer = (writer_after - writer_before) * 1e6 / total as f64;
    println!(
        "paced: {total} checks at {rate}/s over {} monitors in {:.1} s wall: CPU {process:.1} us/check \
         in all (test loop included), {writer:.1} us/check in the writer thread, {:.2} us/check inside \
         record(); {:.3} of a core for storage; {} log rows dropped; RSS {:.0} MB",
        apps.len(),
        wall.as_secs_f64(),
        in_record.as_secs_f64() * 1e6 / total as f64,
        writer * f64::from(rate) / 1e6,
        store.dropped_checks(),
        rss_mb()
    );
}
