//! No alert is lost or sent twice when the server stops with failing checks in flight: the real
//! binary, 20 apps whose checks time out, a real SMTP server, and a SIGTERM or a kill -9 just as
//! their second failing checks run (the transitions to UNHEALTHY), then a restart on the same data
//! folder.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::smtp::{Received, Smtp, tally};
use common::{ServerProcess, mailing_command, temp_dir};
use serde_json::{Value, json};

const APPS: usize = 20;

/// Twenty loopback apps on one port, `/health/{i}`: each hangs (its check times out) until
/// `up` is set, then passes.
async fn farm(up: Arc<AtomicBool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route(
        "/health/{i}",
        get(move || {
            let up = Arc::clone(&up);
            async move {
                if !up.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                (StatusCode::OK, r#"{"status":"pass"}"#)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn start(dir: &std::path::Path, smtp: u16) -> ServerProcess {
    let mut cmd = mailing_command(dir, smtp);
    // all twenty failing at once would be a storm, which holds per-app alerts: not this
    // test's subject
    cmd.args(["--storm-min", "100000"]);
    ServerProcess::start(cmd)
}

fn app(i: usize) -> String {
    format!("app-{i:02}")
}

async fn states(client: &reqwest::Client, server: &str) -> HashMap<String, String> {
    let list: Value = client
        .get(format!("{server}/api/v1/monitors"))
        .send()
        .await
        .expect("GET monitors")
        .json()
        .await
        .expect("JSON");
    list["monitors"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            (
                m["app"].as_str().expect("app").to_owned(),
                m["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

/// Waits (within 60 s) until every app is in `state`.
async fn until_all(client: &reqwest::Client, server: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states = states(client, server).await;
        if states.len() == APPS && states.values().all(|s| s == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not all {state} within 60 s: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The outbox's recovery messages, for a failure's message.
fn outbox(dir: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(dir.join("data/healthchecker.db")).expect("db");
    let mut statement = conn
        .prepare(
            "SELECT monitor || ' ' || status || ' due ' || next_attempt_at || ' ' || \
             coalesce(group_key, '-') || ' ' || recipients || ' ' || substr(event_id, 1, 40) \
             FROM messages ORDER BY monitor, id",
        )
        .expect("prepare");
    let rows: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    rows.join("\n")
}

/// Registers the apps, lets them fail, then stops the server with `signal` just as their second
/// failing checks run, restarts it, and checks that every app
/// is told UNHEALTHY (exactly once unless `at_least_once`), and that its recovery is told after.
async fn stop_in_the_middle(signal: &str, at_least_once: bool) {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let up = Arc::new(AtomicBool::new(false));
    let farm = farm(Arc::clone(&up)).await;
    let client = reqwest::Client::new();

    up.store(true, Ordering::SeqCst);
    let mut server = start(dir.path(), smtp.port);
    for i in 0..APPS {
        let answer = client
            .put(format!("{}/api/v1/monitors/{}", server.url, app(i)))
            .json(&json!({
                // one owner each: mail to one recipient list within 10 s is merged into a digest
                "url": farm, "path": format!("/health/{i}"), "email": format!("owner-{i}@example.com"),
                "interval": 5, "timeout": 2, "unhealthy": 2, "healthy": 2,
            }))
            .send()
            .await
            .expect("PUT");
        assert_eq!(
            answer.status(),
            201,
            "{}",
            answer.text().await.unwrap_or_default()
        );
    }
    until_all(&client, &server.url, "HEALTHY").await;
    up.store(false, Ordering::SeqCst);
    let down = Instant::now();
    // The apps' phases are spread over the 5 s interval, and a failing check takes 2 s: 8 s after
    // the apps went down, about two in five are in their second failing check (the one that
    // makes them UNHEALTHY), the others just before or after it.
    tokio::time::sleep((down + Duration::from_secs(8)).saturating_duration_since(Instant::now()))
        .await;
    let in_flight_at_stop = states(&client, &server.url).await;
    let status = tokio::task::block_in_place(|| server.signal_and_wait(signal));
    eprintln!("stopped with {signal}: {status}; states then: {in_flight_at_stop:?}");
    drop(server);
    let first_run = smtp.drain();
    eprintln!("mails before the restart: {}", first_run.len());

    let server = start(dir.path(), smtp.port);
    until_all(&client, &server.url, "UNHEALTHY").await;
    // The last transitions' mail is on its way.
    let mut mails = first_run;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        mails.extend(smtp.drain());
        let told = tally(&mails)
            .keys()
            .filter(|(_, what)| what == "is UNHEALTHY")
            .count();
        if told == APPS || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let told = tally(&mails);
    for i in 0..APPS {
        let ids = told
            .get(&(app(i), "is UNHEALTHY".to_owned()))
            .unwrap_or_else(|| panic!("{} was never told UNHEALTHY; mails: {told:#?}", app(i)));
        if at_least_once {
            let unique: std::collections::HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), 1, "one incident, one message id: {ids:?}");
            if ids.len() > 1 {
                eprintln!("{} told twice (same Message-ID {})", app(i), ids[0]);
            }
        } else {
            assert_eq!(
                ids.len(),
                1,
                "{} told UNHEALTHY {} times",
                app(i),
                ids.len()
            );
        }
    }

    // and each recovery comes after its alert
    up.store(true, Ordering::SeqCst);
    until_all(&client, &server.url, "HEALTHY").await;
    // A host's recoveries go out together (the last one up releases them), and mail to one
    // address within 10 s of the last waits for that window.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        mails.extend(smtp.drain());
        let recovered = tally(&mails)
            .keys()
            .filter(|(_, what)| what == "is HEALTHY again")
            .count();
        if recovered == APPS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{recovered} recoveries told; the outbox:\n{}",
            outbox(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..APPS {
        let subjects: Vec<String> = mails
            .iter()
            .map(Received::subject)
            .filter(|s| s.contains(&format!(" {} ", app(i))))
            .collect();
        let alert = subjects.iter().position(|s| s.ends_with("is UNHEALTHY"));
        let recovery = subjects
            .iter()
            .position(|s| s.ends_with("is HEALTHY again"));
        assert!(alert < recovery, "{}: {subjects:?}", app(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_with_failing_checks_in_flight_loses_no_alert() {
    stop_in_the_middle("TERM", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_with_failing_checks_in_flight_loses_no_alert() {
    stop_in_the_middle("KILL", true).await;
}
