//! Nothing acknowledged is lost: the real binary, 50 monitors, SIGKILL in the middle of traffic,
//! and a restart on the same data folder.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use common::{ServerProcess, command, local_args, temp_dir};
use serde_json::Value;

const MONITORS: usize = 50;
/// Every fifth app fails, so the states to keep are not all the same.
fn failing(i: usize) -> bool {
    i.is_multiple_of(5)
}

/// Fifty loopback apps on one port: `/health/{i}`.
async fn farm() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route(
        "/health/{i}",
        get(|Path(i): Path<usize>| async move {
            if failing(i) {
                (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"fail"}"#)
            } else {
                (StatusCode::OK, r#"{"status":"pass"}"#)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The real binary on loopback, mDNS off, its data in `dir`.
fn start(dir: &std::path::Path) -> ServerProcess {
    let mut cmd = command(dir);
    cmd.args(local_args(dir));
    ServerProcess::start(cmd)
}

async fn monitors(client: &reqwest::Client, server: &str) -> HashMap<String, Value> {
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
        .map(|monitor| {
            (
                monitor["app"].as_str().expect("name").to_owned(),
                monitor.clone(),
            )
        })
        .collect()
}

async fn log_times(client: &reqwest::Client, server: &str, app: &str) -> Vec<String> {
    let log: Value = client
        .get(format!("{server}/api/v1/monitors/{app}/log?limit=1000"))
        .send()
        .await
        .expect("GET log")
        .json()
        .await
        .expect("JSON");
    log["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|check| check["time"].as_str().expect("time").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_acknowledged() {
    let dir = temp_dir();
    let farm = farm().await;
    let client = reqwest::Client::new();

    let mut server = start(dir.path());
    for i in 0..MONITORS {
        let answer = client
            .put(format!("{}/api/v1/monitors/app-{i}", server.url))
            .json(&serde_json::json!({"url": farm, "path": format!("/health/{i}"), "interval": 5, "timeout": 2}))
            .send()
            .await
            .expect("PUT");
        assert_eq!(answer.status(), 201, "app-{i}");
    }

    // Wait until every monitor has settled: HEALTHY, or UNHEALTHY for the failing ones.
    let deadline = Instant::now() + Duration::from_secs(40);
    let before = loop {
        let now = monitors(&client, &server.url).await;
        let settled = now.iter().all(|(name, monitor)| {
            let i: usize = name.trim_start_matches("app-").parse().expect("index");
            monitor["state"] == if failing(i) { "UNHEALTHY" } else { "HEALTHY" }
        });
        if settled {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "monitors did not settle: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(before.len(), MONITORS);
    let mut logs_before = HashMap::new();
    for name in before.keys() {
        logs_before.insert(name.clone(), log_times(&client, &server.url, name).await);
    }

    // In the middle of traffic: checks keep landing while we kill.
    let killed = server.signal_and_wait("KILL");
    assert!(!killed.success());
    let killed_at = chrono::Utc::now();

    let server = start(dir.path());
    let after = monitors(&client, &server.url).await;
    assert_eq!(
        after.len(),
        MONITORS,
        "every acknowledged registration is back"
    );
    for (name, monitor) in &before {
        let again = &after[name];
        assert_eq!(
            again["state"], monitor["state"],
            "{name} keeps its state across the crash"
        );
        assert_eq!(again["url"], monitor["url"]);
        assert_eq!(again["interval"], monitor["interval"]);
        let log = log_times(&client, &server.url, name).await;
        for time in &logs_before[name] {
            assert!(
                log.contains(time),
                "{name}: check at {time} was flushed before the kill and is gone"
            );
        }
    }

    // Polling resumes at once, from the states it had.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = monitors(&client, &server.url).await;
        let fresh = now
            .values()
            .filter(|monitor| {
                monitor["last_check"]["time"]
                    .as_str()
                    .and_then(|time| time.parse::<chrono::DateTime<chrono::Utc>>().ok())
                    .is_some_and(|time| time > killed_at)
            })
            .count();
        if fresh == MONITORS {
            assert!(now.values().all(|monitor| monitor["state"] != "UNKNOWN"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {fresh} of {MONITORS} monitors were checked after the restart"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_keeps_the_last_checks() {
    let dir = temp_dir();
    let farm = farm().await;
    let client = reqwest::Client::new();
    let mut server = start(dir.path());
    let answer = client
        .put(format!("{}/api/v1/monitors/app-1", server.url))
        .json(&serde_json::json!({"url": farm, "path": "/health/1", "interval": 5, "timeout": 2}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 201);
    // The newest check as the live monitor shows it (it may not be on disk yet)...
    let deadline = Instant::now() + Duration::from_secs(15);
    let last = loop {
        let now = monitors(&client, &server.url).await;
        if let Some(time) = now["app-1"]["last_check"]["time"].as_str() {
            break time.to_owned();
        }
        assert!(Instant::now() < deadline, "no check within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(server.signal_and_wait("TERM").success());
    // ...is in the log after a clean stop and a restart.
    let server = start(dir.path());
    let log = log_times(&client, &server.url, "app-1").await;
    assert!(log.contains(&last), "{last} missing from {log:?}");
}
