//! The store's contract on both backends: the same test functions run against SQLite (a file in a
//! temporary folder) and PostgreSQL (a throwaway cluster, tests/common/postgres.rs; skipped with a
//! message where PostgreSQL is not installed, unless HC_REQUIRE_POSTGRES=1). What only one backend
//! has (SQLite's file checks, WAL, pruning, history; PostgreSQL's URL and schema checks) is tested
//! on its own: tests/store.rs, and the `postgres_` tests at the end of this file.

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::postgres::Postgres;
use common::store_data::{at, check, monitor, name, spec};
use healthchecker_server::health::{Health, State, Transition};
use healthchecker_server::probe::BodyDigest;
use healthchecker_server::store::{
    DatabaseUrl, FILE_NAME, LoggedCheck, Message, Store, StoreError, StoreOptions, StoredMonitor,
};

/// Where a contract test keeps its data: reopened with [`Db::open`] to stand for a restart.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres {
        /// Kept running until the test ends.
        _cluster: Postgres,
        url: Box<DatabaseUrl>,
    },
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    /// `None` (the test is skipped, said on stderr) without PostgreSQL on the machine.
    fn postgres() -> Option<Db> {
        let postgres = Postgres::start()?;
        postgres.create_database("contract");
        let url = DatabaseUrl::parse(&postgres.url("contract")).expect("the harness's URL");
        Some(Db::Postgres {
            _cluster: postgres,
            url: Box::new(url),
        })
    }

    fn open(&self) -> Store {
        self.open_with(StoreOptions::default())
    }

    fn open_with(&self, options: StoreOptions) -> Store {
        match self {
            Db::Sqlite(dir) => Store::open(dir.path(), options).expect("opens"),
            Db::Postgres { url, .. } => Store::open_postgres(url, options).expect("opens"),
        }
    }

    /// What the store's errors call the database.
    fn shown(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => FILE_NAME,
            Db::Postgres { .. } => "postgres://postgres@",
        }
    }
}

/// Each test function, once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(db) = super::Db::postgres() else {
                        return;
                    };
                    super::$test(&db).await;
                }
            )*
        }
    };
}

contract!(
    every_field_round_trips_through_a_restart,
    saving_again_replaces_the_registration_and_keeps_the_history,
    pausing_maintenance_and_deleting,
    many_records_then_flush_read_newest_first,
    the_log_is_bounded_per_monitor_and_paged,
    writes_for_unknown_monitors_are_ignored,
    a_closed_store_refuses_calls_and_a_dropped_one_still_commits,
    concurrent_reads_while_writing,
    a_check_writes_its_messages_with_it_and_pause_and_removal_withdraw_them,
    the_outbox_keeps_messages_until_they_are_done,
    server_state_and_the_digest_key_survive_a_restart,
    history_folds_checks_into_hours_and_days,
    incidents_count_their_messages,
    restarting_a_monitor_starts_its_state_over,
    old_transitions_are_pruned,
    glances_give_each_monitor_its_own_newest_checks,
);

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

fn detail(check: &LoggedCheck) -> &str {
    check.record.detail.as_deref().unwrap_or_default()
}

fn options(log_retention: usize) -> StoreOptions {
    StoreOptions {
        log_retention,
        ..StoreOptions::default()
    }
}

async fn every_field_round_trips_through_a_restart(db: &Db) {
    let store = db.open();
    let mut saved = monitor("media-center");
    saved.paused = true;
    saved.health = Health {
        state: State::Unhealthy,
        passes: 0,
        fails: 7,
        recovering: true,
    };
    saved.since = Some(at(-50));
    saved.maintenance = Some(r#"{"until": 5}"#.to_owned());
    store.save_monitor(&saved).await.expect("saves");
    store
        .save_monitor(&monitor("another"))
        .await
        .expect("saves");

    let loaded = store.load_monitors().expect("loads");
    assert_eq!(
        loaded,
        vec![monitor("another"), saved.clone()],
        "sorted by name"
    );

    let first = check("media-center", 3);
    let mut second = check("media-center", 4);
    second.push = Some(r#"{"last_ping": 1}"#.to_owned());
    second.check.record.cert_not_after = Some(at(86_400 * 30));
    store.record(first.clone());
    store.record(second.clone());
    store.flush().await.expect("flushes");
    let mut logged_second = second.check.clone();
    logged_second.record.cert_days_left = Some(29);
    let expected = StoredMonitor {
        source: Default::default(),
        health: second.health,
        since: first.transition.as_ref().map(|transition| transition.time),
        last_check: Some(logged_second.clone()),
        last_transition: first.transition.clone(),
        push: second.push.clone(),
        ..saved.clone()
    };
    assert_eq!(store.load_monitors().expect("loads")[1], expected);
    store.close().await.expect("closes");

    let store = db.open();
    let loaded = store.load_monitors().expect("loads");
    assert_eq!(loaded[1], expected);
    let log = store.log(&name("media-center"), 10).await.expect("log");
    assert_eq!(log, vec![logged_second, first.check]);
    let transitions = store
        .transitions(&name("media-center"), 10)
        .await
        .expect("transitions");
    assert_eq!(transitions, vec![first.transition.expect("a transition")]);
    assert_eq!(
        store
            .transitions_blocking(&name("media-center"), 10)
            .expect("transitions"),
        transitions
    );
}

async fn saving_again_replaces_the_registration_and_keeps_the_history(db: &Db) {
    let store = db.open();
    store.save_monitor(&monitor("app")).await.expect("saves");
    for n in 1..=6 {
        store.record(check("app", n));
    }
    store.flush().await.expect("flushes");
    let before = store.load_monitors().expect("loads").remove(0);

    let mut changed = monitor("app");
    changed.spec = spec(8080);
    changed.registered_at = at(1000);
    changed.health = Health::default(); // not written over the kept state
    store.save_monitor(&changed).await.expect("saves");
    let after = store.load_monitors().expect("loads").remove(0);
    assert_eq!(after.spec, spec(8080));
    assert_eq!(after.registered_at, at(1000));
    assert_eq!(after.health, before.health);
    assert_eq!(after.last_check, before.last_check);
    assert_eq!(store.log(&name("app"), 100).await.expect("log").len(), 6);
    assert_eq!(
        store.transitions(&name("app"), 100).await.expect("t").len(),
        2
    );
}

async fn pausing_maintenance_and_deleting(db: &Db) {
    let store = db.open();
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
    let window = r#"{"from": 1, "until": 2}"#.to_owned();
    assert!(
        store
            .set_maintenance(&name("app"), Some(window.clone()))
            .await
            .expect("sets")
    );
    assert_eq!(
        store.load_monitors().expect("loads")[0].maintenance,
        Some(window)
    );
    assert!(
        store
            .set_maintenance(&name("app"), None)
            .await
            .expect("ends")
    );
    assert_eq!(store.load_monitors().expect("loads")[0].maintenance, None);
    assert!(
        !store
            .set_maintenance(&name("nope"), None)
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
    assert_eq!(store.load_monitors().expect("loads")[0].last_check, None);
}

async fn many_records_then_flush_read_newest_first(db: &Db) {
    let store = db.open();
    for app in ["a", "b", "c"] {
        store.save_monitor(&monitor(app)).await.expect("saves");
    }
    for n in 1..=500 {
        for app in ["a", "b", "c"] {
            store.record(check(app, n));
        }
    }
    store.flush().await.expect("flushes");
    let log = store.log(&name("b"), 20).await.expect("log");
    let details: Vec<&str> = log.iter().map(detail).collect();
    let expected: Vec<String> = (481..=500).rev().map(|n| format!("check {n}")).collect();
    assert_eq!(details, expected);
    let monitors = store.load_monitors().expect("loads");
    assert!(
        monitors
            .iter()
            .all(|m| m.last_check.as_ref().map(detail) == Some("check 500"))
    );
    let transitions = store.transitions(&name("c"), 5).await.expect("t");
    assert_eq!(transitions.len(), 5);
    assert_eq!(transitions[0].reason, "timeout: check 498");
    assert_eq!(transitions[4].reason, "timeout: check 486");
}

async fn the_log_is_bounded_per_monitor_and_paged(db: &Db) {
    let store = db.open_with(options(100));
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

    // Pages of 40, newest first, down to the oldest kept.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .log_page(&name("busy"), before, 40)
            .await
            .expect("page");
        seen.extend(page.checks.iter().map(|check| detail(check).to_owned()));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (158..=257).rev().map(|n| format!("check {n}")).collect();
    assert_eq!(seen, expected);
    store.close().await.expect("closes");

    // A smaller retention applies at once to what is read.
    let store = db.open_with(options(10));
    assert_eq!(store.log(&name("busy"), 1000).await.expect("log").len(), 10);
    store.record(check("busy", 258));
    store.flush().await.expect("flushes");
    let log = store.log(&name("busy"), 1000).await.expect("log");
    assert_eq!((log.len(), detail(&log[0])), (10, "check 258"));
}

async fn writes_for_unknown_monitors_are_ignored(db: &Db) {
    let store = db.open();
    store.save_monitor(&monitor("known")).await.expect("saves");
    store.record(check("ghost", 1));
    store.record(check("known", 1));
    store.record(check("ghost", 2));
    store.flush().await.expect("flushes");
    assert_eq!(store.load_monitors().expect("loads").len(), 1);
    assert!(store.log(&name("ghost"), 10).await.expect("log").is_empty());
    assert_eq!(store.log(&name("known"), 10).await.expect("log").len(), 1);
    // Deleted, then written to: ignored too.
    store.delete_monitor(&name("known")).await.expect("deletes");
    store.record(check("known", 2));
    store.flush().await.expect("flushes");
    store.save_monitor(&monitor("ghost")).await.expect("saves");
    assert!(store.log(&name("ghost"), 10).await.expect("log").is_empty());
}

async fn a_closed_store_refuses_calls_and_a_dropped_one_still_commits(db: &Db) {
    let store = db.open();
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
        assert!(error.to_string().contains(db.shown()), "{error}");
    }
    drop((store, clone));

    let store = db.open();
    assert_eq!(store.log(&name("app"), 10).await.expect("log").len(), 1);
    // Dropping the last handle without close() commits what was recorded.
    store.record(check("app", 2));
    drop(store);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let store = db.open();
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

async fn concurrent_reads_while_writing(db: &Db) {
    let store = db.open();
    store.save_monitor(&monitor("app")).await.expect("saves");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 1..=2000 {
                store.record(check("app", n));
                if n % 100 == 0 {
                    store.flush().await.expect("flushes");
                }
            }
        })
    };
    let mut reads = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        reads.push(tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..50 {
                let log = store.log(&name("app"), 5).await.expect("log");
                let newest = log.first().map_or(0, |check| {
                    detail(check)
                        .trim_start_matches("check ")
                        .parse::<u32>()
                        .expect("number")
                });
                assert!(newest >= last, "reads never go back in time");
                last = newest;
            }
        }));
    }
    writer.await.expect("writer");
    for read in reads {
        read.await.expect("reader");
    }
    assert_eq!(
        store.log(&name("app"), 1).await.expect("log")[0]
            .record
            .detail
            .as_deref(),
        Some("check 2000")
    );
}

/// A check that causes messages: the check, the transition, the alerting state and the messages
/// are one write; a later check withdraws a held one; a pause and a removal withdraw the rest.
async fn a_check_writes_its_messages_with_it_and_pause_and_removal_withdraw_them(db: &Db) {
    let store = db.open();
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
    let email = store.channel_status("email").await.expect("status");
    assert_eq!(
        (email.pending, email.failed, email.last),
        (0, 0, None),
        "withdrawn is not done"
    );
}

async fn the_outbox_keeps_messages_until_they_are_done(db: &Db) {
    let store = db.open();
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
    let store = db.open();
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

    let store = db.open();
    assert!(
        store
            .due_messages("email", at(10_000), 10)
            .await
            .expect("due")
            .is_empty(),
        "delivered mail is never due again"
    );
    let email = store.channel_status("email").await.expect("status");
    assert_eq!((email.pending, email.failed), (0, 1));
    let last = email.last.expect("a finished message");
    assert_eq!((last.at, last.app.as_str()), (at(201), "media-center"));
    // Another channel's messages are counted apart.
    let fourth = store
        .enqueue(&Message {
            channel: "ntfy".into(),
            recipients: Vec::new(),
            ..mail(4)
        })
        .await
        .expect("enqueues");
    assert!(fourth > third, "ids are never reused");
    assert_eq!(
        store.pending_by_channel().await.expect("by channel"),
        [("ntfy".to_owned(), 1)]
    );
    assert!(
        store
            .due_messages("email", at(10_000), 10)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(
        store
            .due_messages("ntfy", at(10_000), 10)
            .await
            .expect("due")[0]
            .id,
        fourth
    );
}

async fn server_state_and_the_digest_key_survive_a_restart(db: &Db) {
    let store = db.open();
    let digest = |store: &Store| BodyDigest::of(b"<html>", &store.digest_key().expect("a key"));
    let before = digest(&store);
    assert_ne!(
        before,
        BodyDigest::of(b"<html>", &healthchecker_server::probe::DigestKey::random()),
        "a key of its own"
    );
    assert_eq!(store.server_state("admin").expect("reads"), None);
    store
        .set_server_state("admin", Some(r#"{"a": 1}"#.to_owned()))
        .await
        .expect("sets");
    store
        .set_server_state("admin", Some(r#"{"a": 2}"#.to_owned()))
        .await
        .expect("replaces");
    store
        .set_server_state("other", Some("[]".to_owned()))
        .await
        .expect("sets");
    store.close().await.expect("closes");
    let store = db.open();
    assert_eq!(
        store.server_state("admin").expect("reads").as_deref(),
        Some(r#"{"a": 2}"#)
    );
    store
        .set_server_state("other", None)
        .await
        .expect("forgets");
    assert_eq!(store.server_state("other").expect("reads"), None);
    assert_eq!(digest(&store), before, "the same key after a restart");
}

async fn old_transitions_are_pruned(db: &Db) {
    let store = db.open_with(StoreOptions {
        log_retention: 1000,
        retention: Duration::from_secs(24 * 3600),
    });
    store.save_monitor(&monitor("app")).await.expect("saves");
    for n in [3, 6, 9] {
        store.record(check("app", n));
    }
    // check n happens at at(10 n): keep what is younger than a day before at(75).
    let pruned = store
        .prune(at(75) + chrono::Duration::days(1))
        .await
        .expect("prunes");
    assert_eq!(pruned.transitions, 2);
    let left = store.transitions(&name("app"), 10).await.expect("t");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].reason, "timeout: check 9");
    assert_eq!(
        store.log(&name("app"), 10).await.expect("log").len(),
        3,
        "the log is not pruned by age"
    );
}

async fn history_folds_checks_into_hours_and_days(db: &Db) {
    let store = db.open();
    store.save_monitor(&monitor("app")).await.expect("saves");
    store.save_monitor(&monitor("idle")).await.expect("saves");
    // Check n is at at(10 n): 359 in the first hour of 2100-01-01, 41 in the second.
    for n in 1..=400 {
        store.record(check("app", n));
        if n % 150 == 0 {
            store.flush().await.expect("flushes"); // buckets filled over several batches
        }
    }
    let now = at(4000);
    let series = store
        .history(&name("app"), now)
        .await
        .expect("history")
        .expect("a known monitor");
    let counts = |bucket: &healthchecker_server::history::Bucket| {
        (
            bucket.start,
            bucket.checks,
            bucket.passes,
            bucket.warns,
            bucket.fails,
        )
    };
    let hour = |h: i64| {
        Utc.timestamp_opt(4_102_444_800 + h * 3600, 0)
            .single()
            .expect("valid")
    };
    // Multiples of 3 fail: 119 of 1..=359, 14 of 360..=400.
    assert_eq!(
        series.hourly.iter().map(counts).collect::<Vec<_>>(),
        [(hour(0), 359, 240, 0, 119), (hour(1), 41, 27, 0, 14)]
    );
    assert_eq!(
        series.daily.iter().map(counts).collect::<Vec<_>>(),
        [(hour(0), 400, 267, 0, 133)]
    );
    let latency_max = Duration::from_nanos(1_234_567 + 400);
    assert_eq!(series.daily[0].latency_max, latency_max);
    let sum: u64 = (1..=400u64).map(|n| 1_234_567 + n).sum();
    assert_eq!(series.daily[0].latency_sum, Duration::from_nanos(sum));
    assert_eq!(
        store.history(&name("nope"), now).await.expect("history"),
        None
    );

    let glances = store.glances(now, 3).await.expect("glances");
    assert_eq!(
        glances.iter().map(|g| g.app.as_str()).collect::<Vec<_>>(),
        ["app", "idle"]
    );
    assert_eq!((glances[0].day.checks, glances[0].day.up), (400, 267));
    assert_eq!((glances[0].month.checks, glances[0].month.up), (400, 267));
    assert_eq!(
        glances[0]
            .recent
            .iter()
            .map(|r| (r.time, r.outcome))
            .collect::<Vec<_>>(),
        [(at(4000), 0), (at(3990), 2), (at(3980), 0)]
    );
    assert_eq!((glances[1].day.checks, glances[1].recent.len()), (0, 0));
    store.close().await.expect("closes");

    // A restart folds nothing twice.
    let store = db.open();
    store.record(check("app", 401));
    let series = store
        .history(&name("app"), now)
        .await
        .expect("history")
        .expect("known");
    assert_eq!(series.daily[0].checks, 401);
}

/// The glances of all monitors at once, from checks written interleaved: each monitor its own
/// totals and newest checks, newest first, at most `recent` and at most the log's retention.
async fn glances_give_each_monitor_its_own_newest_checks(db: &Db) {
    let store = db.open_with(options(5));
    for app in ["b", "empty", "a", "c"] {
        store.save_monitor(&monitor(app)).await.expect("saves");
    }
    for n in 1..=12 {
        store.record(check("a", n));
        if n % 2 == 0 {
            store.record(check("b", n));
        }
        if n <= 2 {
            store.record(check("c", n));
        }
        if n % 5 == 0 {
            store.flush().await.expect("flushes");
        }
    }
    let now = at(130);
    let shown = |glances: &[healthchecker_server::history::Glance]| {
        glances
            .iter()
            .map(|g| {
                let times: Vec<i64> = g
                    .recent
                    .iter()
                    .map(|r| (r.time - at(0)).num_seconds())
                    .collect();
                let outcomes: Vec<u8> = g.recent.iter().map(|r| r.outcome).collect();
                (g.app.clone(), g.day.checks, g.month.checks, times, outcomes)
            })
            .collect::<Vec<_>>()
    };
    let row = |app: &str, checks: u64, times: &[i64]| {
        // Every third check fails (common::store_data::check).
        let outcomes = times
            .iter()
            .map(|t| if (t / 10) % 3 == 0 { 2 } else { 0 })
            .collect();
        (app.to_owned(), checks, checks, times.to_vec(), outcomes)
    };
    assert_eq!(
        shown(&store.glances(now, 30).await.expect("glances")),
        [
            row("a", 12, &[120, 110, 100, 90, 80]),
            row("b", 6, &[120, 100, 80, 60, 40]),
            row("c", 2, &[20, 10]),
            row("empty", 0, &[]),
        ],
        "at most the log's retention (5)"
    );
    assert_eq!(
        shown(&store.glances(now, 3).await.expect("glances")),
        [
            row("a", 12, &[120, 110, 100]),
            row("b", 6, &[120, 100, 80]),
            row("c", 2, &[20, 10]),
            row("empty", 0, &[]),
        ],
        "at most `recent` (3)"
    );
    let latency = store.glances(now, 1).await.expect("glances")[0].recent[0].latency_ms;
    assert_eq!(
        latency, 1.235,
        "check 12's 1,234,579 ns, in ms rounded to the µs"
    );
    store.close().await.expect("closes");
}

async fn incidents_count_their_messages(db: &Db) {
    let store = db.open();
    store.save_monitor(&monitor("app")).await.expect("saves");
    let transitions = [
        (100, State::Healthy, State::Unhealthy, "timeout"),
        (200, State::Unhealthy, State::Healthy, "ok"),
        (300, State::Healthy, State::Unhealthy, "HTTP 500"),
    ];
    for (n, (time, from, to, reason)) in transitions.into_iter().enumerate() {
        let mut write = check("app", n as u32 + 1);
        write.transition = Some(Transition {
            time: at(time),
            from,
            to,
            reason: reason.to_owned(),
        });
        if n == 0 {
            write.messages = vec![Message {
                created_at: at(150),
                ..mail(1)
            }];
        }
        store.record(write);
    }
    store.flush().await.expect("flushes");
    let first = store
        .due_messages("email", at(10_000), 1)
        .await
        .expect("due")[0]
        .id;
    assert!(
        store
            .mark_delivered(first, at(151))
            .await
            .expect("delivered")
    );
    store
        .enqueue(&Message {
            monitor: "app".into(),
            created_at: at(350),
            ..mail(2)
        })
        .await
        .expect("enqueues");
    let now = at(400);
    let found = store
        .incidents(&name("app"), now, 10)
        .await
        .expect("incidents")
        .expect("a known monitor");
    let mut oldest_first = store.transitions(&name("app"), 10).await.expect("t");
    oldest_first.reverse();
    let expected = healthchecker_server::history::incidents(&oldest_first, now);
    assert_eq!(found.len(), 2);
    assert_eq!(
        found
            .iter()
            .map(|i| (i.opened_at, i.closed_at, i.reason.as_str()))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|i| (i.opened_at, i.closed_at, i.reason.as_str()))
            .collect::<Vec<_>>()
    );
    assert_eq!((found[0].messages.pending, found[0].messages.sent), (1, 0));
    assert_eq!((found[1].messages.pending, found[1].messages.sent), (0, 1));
    assert_eq!(
        store
            .incidents(&name("app"), now, 1)
            .await
            .expect("incidents")
            .expect("known")
            .len(),
        1
    );
    assert_eq!(
        store
            .incidents(&name("nope"), now, 10)
            .await
            .expect("incidents"),
        None
    );
}

async fn restarting_a_monitor_starts_its_state_over(db: &Db) {
    let store = db.open();
    store.save_monitor(&monitor("app")).await.expect("saves");
    let mut write = check("app", 3);
    write.alerting = Some(r#"{"down": true}"#.to_owned());
    write.messages = vec![mail(1)];
    store.record(write);
    store.flush().await.expect("flushes");
    assert_eq!(store.pending_messages().await.expect("count"), 1);

    let mut moved = monitor("app");
    moved.spec = spec(8443);
    moved.registered_at = at(500);
    let restart = Transition {
        time: at(500),
        from: State::Degraded,
        to: State::Unknown,
        reason: "the target changed".to_owned(),
    };
    assert!(
        store
            .restart_monitor(&moved, Some(&restart))
            .await
            .expect("restarts")
    );
    assert!(
        !store
            .restart_monitor(&monitor("nope"), None)
            .await
            .expect("unknown")
    );
    store.close().await.expect("closes");
    let store = db.open();
    let loaded = store.load_monitors().expect("loads").remove(0);
    assert_eq!(loaded.spec, spec(8443));
    assert_eq!(loaded.health, Health::default());
    assert_eq!(loaded.since, Some(at(500)));
    assert_eq!(loaded.alerting.as_deref(), Some("{}"));
    assert_eq!(loaded.last_transition, Some(restart));
    assert_eq!(
        store.pending_messages().await.expect("count"),
        0,
        "withdrawn"
    );
    assert_eq!(
        store.log(&name("app"), 10).await.expect("log").len(),
        1,
        "kept"
    );
    // The next check's row carries the health again.
    store.record(check("app", 4));
    store.flush().await.expect("flushes");
    let loaded = store.load_monitors().expect("loads").remove(0);
    assert_eq!(loaded.health, check("app", 4).health);
}

/// The harness itself: a cluster starts, answers over its Unix socket only, and is stopped and
/// removed when dropped.
#[tokio::test]
async fn postgres_harness_starts_answers_and_cleans_up() {
    let Some(postgres) = Postgres::start() else {
        return;
    };
    let socket_dir = postgres.socket_dir().to_owned();
    let (client, connection) =
        tokio_postgres::connect(&postgres.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect over the socket");
    let connection = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_setting('listen_addresses'), current_setting('fsync')",
            &[],
        )
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), "", "no TCP");
    assert_eq!(row.get::<_, String>(1), "off");
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the connection ends")
        .expect("join")
        .expect("a clean end");
    drop(postgres);
    assert!(!socket_dir.exists(), "{} is removed", socket_dir.display());
}

/// Runs `sql` on database `db` of the cluster, as another program (or an operator) would.
async fn psql(postgres: &Postgres, db: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(&postgres.url(db), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let connection = tokio::spawn(connection);
    client.batch_execute(sql).await.expect("runs");
    drop(client);
    let _ = connection.await;
}

/// A database with another program's tables is refused and left alone; one from a newer server
/// is refused naming both versions; an unreachable one names the database, never the password.
#[tokio::test]
async fn postgres_refuses_foreign_newer_and_unreachable_databases() {
    let Some(postgres) = Postgres::start() else {
        return;
    };
    postgres.create_database("songs");
    psql(&postgres, "songs", "CREATE TABLE songs (title TEXT)").await;
    let url = DatabaseUrl::parse(&postgres.url("songs")).expect("valid");
    let error = Store::open_postgres(&url, StoreOptions::default()).expect_err("foreign");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("another program"), "{error}");
    psql(&postgres, "songs", "SELECT title FROM songs").await;

    postgres.create_database("newer");
    let url = DatabaseUrl::parse(&postgres.url("newer")).expect("valid");
    let store = Store::open_postgres(&url, StoreOptions::default()).expect("creates");
    store.close().await.expect("closes");
    psql(
        &postgres,
        "newer",
        "UPDATE healthchecker_schema SET version = 99",
    )
    .await;
    let error = Store::open_postgres(&url, StoreOptions::default()).expect_err("too new");
    assert!(
        matches!(error, StoreError::TooNew { found: 99, .. }),
        "{error}"
    );

    let wrong_port = postgres
        .url("newer")
        .replace("postgres@", "postgres:SeCrEt-pw@")
        .replace(&format!("port={}", postgres.port()), "port=1");
    let url = DatabaseUrl::parse(&wrong_port).expect("valid");
    assert!(!url.to_string().contains("SeCrEt"), "{url}");
    let error = Store::open_postgres(&url, StoreOptions::default()).expect_err("unreachable");
    let text = error.to_string();
    assert!(matches!(error, StoreError::Postgres { .. }), "{text}");
    assert!(text.contains("postgres://postgres@"), "{text}");
    assert!(!text.contains("SeCrEt"), "{text}");
}

/// Several servers on one database: leases split the monitors (claimed up to each server's
/// share, the surplus let go), a server writes only the checks of monitors it holds, the
/// monitors of a server that stops renewing are claimed by another once its lease ran out, the
/// other servers read what changed, and a message due is claimed by one server at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_servers_share_the_monitors_by_leases() {
    let Some(db) = Db::postgres() else {
        return;
    };
    let Db::Postgres { url, .. } = &db else {
        unreachable!("a PostgreSQL Db");
    };
    let a = Store::open_shared(url, StoreOptions::default(), "a").expect("opens");
    let b = Store::open_shared(url, StoreOptions::default(), "b").expect("opens");
    let names: Vec<String> = (0..10).map(|n| format!("app-{n}")).collect();
    for app in &names {
        a.save_monitor(&monitor(app)).await.expect("saves");
    }
    // Alone, a takes everything; b, joining, finds nothing free.
    let round = a
        .lease_round("http://a.lan:8080", 0, true)
        .await
        .expect("renews");
    assert_eq!((round.held.len(), round.share), (10, 10));
    let round = b
        .lease_round("http://b.lan:8080", 0, true)
        .await
        .expect("renews");
    assert_eq!(
        (round.held.len(), round.share),
        (0, 5),
        "a's leases are live"
    );
    // a sees its share is 5 and lets go of the surplus; b claims it.
    let round = a
        .lease_round("http://a.lan:8080", 10, false)
        .await
        .expect("renews");
    assert_eq!(round.share, 5);
    let surplus: Vec<_> = names[5..].iter().map(|app| name(app)).collect();
    a.release(surplus.clone()).await.expect("releases");
    let round = b
        .lease_round("http://b.lan:8080", 0, false)
        .await
        .expect("renews");
    let mut claimed = round.held.clone();
    claimed.sort();
    assert_eq!(claimed, surplus, "b claims what a let go");
    let leases: Vec<(String, usize)> = round
        .servers
        .iter()
        .map(|server| (server.id.clone(), server.leases))
        .collect();
    assert_eq!(leases, vec![("a".to_owned(), 5), ("b".to_owned(), 5)]);
    assert_eq!(round.servers[0].url, "http://a.lan:8080");

    // Each writes only the checks of what it holds.
    a.record(check("app-0", 1));
    a.record(check("app-9", 1));
    b.record(check("app-9", 2));
    a.flush().await.expect("flushes");
    b.flush().await.expect("flushes");
    assert_eq!(a.log(&name("app-0"), 10).await.expect("reads").len(), 1);
    let nine = b.log(&name("app-9"), 10).await.expect("reads");
    assert_eq!(nine.len(), 1, "a's check of b's monitor is not written");
    assert_eq!(nine[0].record.time, check("app-9", 2).check.record.time);

    // b reads the monitors with their owners, then a deletion made by a.
    let changes = b.changes(0).await.expect("reads");
    let owner_of = |app: &str| {
        changes
            .monitors
            .iter()
            .find(|(monitor, _)| monitor.name.as_str() == app)
            .and_then(|(_, owner)| owner.clone())
    };
    assert_eq!(owner_of("app-0").as_deref(), Some("a"));
    assert_eq!(owner_of("app-9").as_deref(), Some("b"));
    assert!(a.delete_monitor(&name("app-1")).await.expect("deletes"));
    let later = b.changes(changes.newest).await.expect("reads");
    assert_eq!(later.deleted, vec![name("app-1")]);

    // A message due now is claimed by one server until its result (while its lease lives).
    a.lease_round("http://a.lan:8080", 4, false)
        .await
        .expect("renews");
    let mut due = mail(1);
    due.due = Utc::now() - chrono::Duration::seconds(1);
    let id = a.enqueue(&due).await.expect("queues");
    let horizon = Utc::now() + chrono::Duration::days(1);
    let got = a.due_messages("email", horizon, 10).await.expect("reads");
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
    assert!(
        b.due_messages("email", horizon, 10)
            .await
            .expect("reads")
            .is_empty()
    );
    let again = Utc::now() - chrono::Duration::seconds(1);
    a.mark_retry(id, again, "refused").await.expect("marks");
    let got = b.due_messages("email", horizon, 10).await.expect("reads");
    assert_eq!(
        got.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![id],
        "a retry is free"
    );

    // b claims a message and stops renewing: once its lease ran out, a claims its monitors and
    // the message (b died while sending it).
    let mut orphan = mail(2);
    orphan.due = Utc::now() - chrono::Duration::seconds(1);
    let orphan = a.enqueue(&orphan).await.expect("queues");
    b.lease_round("http://b.lan:8080", 5, false)
        .await
        .expect("renews");
    let got = b.due_messages("email", horizon, 10).await.expect("reads");
    assert!(got.iter().any(|m| m.id == orphan), "b claims it");
    assert!(
        !a.due_messages("email", horizon, 10)
            .await
            .expect("reads")
            .iter()
            .any(|m| m.id == orphan),
        "claimed by b"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut held = 4; // app-1 is gone
    loop {
        let round = a
            .lease_round("http://a.lan:8080", held, false)
            .await
            .expect("renews");
        held += round.held.len();
        if held == 9 {
            break;
        }
        assert!(Instant::now() < deadline, "a holds {held} of 9 after 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = a.due_messages("email", horizon, 10).await.expect("reads");
    assert!(
        got.iter().any(|m| m.id == orphan),
        "a dead server's claim ends with its lease"
    );
    a.record(check("app-9", 3));
    a.flush().await.expect("flushes");
    assert_eq!(b.log(&name("app-9"), 10).await.expect("reads").len(), 2);
    // A store that is not shared has no leases.
    let plain = Store::open_postgres(url, StoreOptions::default()).expect("opens");
    assert!(matches!(
        plain.lease_round("http://plain.lan:8080", 0, true).await,
        Err(StoreError::NotShared { .. })
    ));
    for store in [a, b, plain] {
        store.close().await.expect("closes");
    }
}

/// A database that stalls (here another session holds the log table) fills the queue: then
/// checks that change nothing but the log are dropped and counted, while a check with a
/// transition is still queued and written once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stalled_database_drops_log_rows_not_state_changes() {
    let Some(db) = Db::postgres() else {
        return;
    };
    let store = db.open();
    store.save_monitor(&monitor("app")).await.expect("saves");
    let Db::Postgres {
        _cluster: cluster, ..
    } = &db
    else {
        unreachable!("a PostgreSQL Db");
    };
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("contract"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    let connection = tokio::spawn(connection);
    client
        .batch_execute("BEGIN; LOCK TABLE checks IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("locks the log");
    let extra: u32 = 10_000;
    let total = healthchecker_server::store::QUEUE_CAP as u32 + extra;
    assert!(total.is_multiple_of(3));
    for n in 1..=total {
        let mut write = check("app", n);
        write.transition = None;
        store.record(write);
    }
    let last = check("app", total + 3); // a multiple of 3: a failure with a transition
    assert!(last.transition.is_some());
    store.record(last.clone());
    let dropped = store.dropped_checks();
    let batch = healthchecker_server::store::BATCH_MAX as u64;
    assert!(
        (u64::from(extra) - batch - 1..=u64::from(extra)).contains(&dropped),
        "dropped {dropped}"
    );
    client.batch_execute("COMMIT").await.expect("unlocks");
    tokio::time::timeout(Duration::from_secs(60), store.flush())
        .await
        .expect("the writer catches up")
        .expect("flushes");
    let loaded = store.load_monitors().expect("loads").remove(0);
    assert_eq!(loaded.health, last.health);
    assert_eq!(loaded.last_transition, last.transition);
    assert_eq!(
        loaded.last_check.as_ref().map(detail),
        Some(detail(&last.check))
    );
    assert_eq!(
        store.dropped_checks(),
        dropped,
        "nothing more once it keeps up"
    );
    drop(client);
    let _ = connection.await;
}
