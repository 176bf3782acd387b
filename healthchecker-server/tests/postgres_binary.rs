//! The real binary on PostgreSQL (`--database-url`), one server: it registers, checks, mails
//! through the outbox, stops and starts again with an empty data folder, and has kept
//! everything, because everything is in the database. A throwaway cluster per test
//! (tests/common/postgres.rs; skipped without PostgreSQL unless HC_REQUIRE_POSTGRES=1).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::apps::Apps;
use common::postgres::Postgres;
use common::smtp::Smtp;
use common::{ServerProcess, command, get_json, local_args, mailing_command, run_to_end, temp_dir};
use serde_json::{Value, json};

fn start(dir: &std::path::Path, database_url: &str, smtp: u16) -> ServerProcess {
    let mut cmd = mailing_command(dir, smtp);
    cmd.env("HEALTHCHECKER_DATABASE_URL", database_url);
    ServerProcess::start(cmd)
}

async fn monitor(client: &reqwest::Client, server: &str) -> Value {
    let list = get_json(client, format!("{server}/api/v1/monitors")).await;
    let by_name: HashMap<String, Value> = list["monitors"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| (m["app"].as_str().expect("app").to_owned(), m.clone()))
        .collect();
    by_name.get("shop").cloned().unwrap_or(Value::Null)
}

/// Waits (within 60 s) for the monitor `shop` to be in `state`.
async fn until_state(client: &reqwest::Client, server: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shop = monitor(client, server).await;
        if shop["state"] == state {
            return shop;
        }
        assert!(Instant::now() < deadline, "not {state} within 60 s: {shop}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_on_postgres_keeps_everything_across_a_restart() {
    let Some(postgres) = Postgres::start() else {
        return;
    };
    postgres.create_database("health");
    let database_url = postgres.url("health");
    let mut smtp = Smtp::start();
    let target = Apps::start(1).await;
    let client = reqwest::Client::new();

    let first_dir = temp_dir();
    let mut server = start(first_dir.path(), &database_url, smtp.port);
    server.wait_for_line("database postgres://postgres@");
    let answer = client
        .put(format!("{}/api/v1/monitors/shop", server.url))
        .json(&json!({
            "url": target.url, "path": Apps::path(0), "email": "owner@example.com",
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
    until_state(&client, &server.url, "HEALTHY").await;
    target.set_failing(0, true);
    let before = until_state(&client, &server.url, "UNHEALTHY").await;
    let mail = smtp.next(Duration::from_secs(30)).await;
    assert!(
        mail.subject().contains("shop") && mail.subject().contains("UNHEALTHY"),
        "{}",
        mail.subject()
    );
    let log_before = get_json(&client, format!("{}/api/v1/monitors/shop/log", server.url)).await;
    assert!(server.signal_and_wait("TERM").success());
    drop(server);
    assert!(
        !first_dir.path().join("data/healthchecker.db").exists(),
        "nothing went to an SQLite file"
    );

    // Another data folder: all it can find is in the database.
    let second_dir = temp_dir();
    let server = start(second_dir.path(), &database_url, smtp.port);
    let after = monitor(&client, &server.url).await;
    assert_eq!(after["state"], "UNHEALTHY", "{after}");
    assert_eq!(after["since"], before["since"], "{after}");
    assert_eq!(after["url"], before["url"], "{after}");
    let log_after = get_json(&client, format!("{}/api/v1/monitors/shop/log", server.url)).await;
    let checks = |log: &Value| log["checks"].as_array().map_or(0, Vec::len);
    assert!(
        checks(&log_after) >= checks(&log_before) && checks(&log_before) >= 3,
        "before {log_before}\nafter {log_after}"
    );
    let incidents = get_json(
        &client,
        format!("{}/api/v1/monitors/shop/incidents", server.url),
    )
    .await;
    let open = incidents["incidents"].as_array().expect("incidents");
    assert_eq!(open.len(), 1, "{incidents}");
    assert!(open[0]["closed_at"].is_null(), "{incidents}");
    let uptime = get_json(&client, format!("{}/api/v1/uptime", server.url)).await;
    assert!(
        uptime["monitors"][0]["recent"]
            .as_array()
            .is_some_and(|recent| recent.len() >= 3),
        "{uptime}"
    );
    // The alert was sent once: the restart does not send it again.
    smtp.none_within(Duration::from_secs(3)).await;

    // And it recovers, told once.
    target.set_failing(0, false);
    until_state(&client, &server.url, "HEALTHY").await;
    let mail = smtp.next(Duration::from_secs(30)).await;
    assert!(mail.subject().contains("shop"), "{}", mail.subject());
}

#[test]
fn a_bad_database_url_stops_the_start_and_never_shows_its_password() {
    let dir = temp_dir();
    for (url, says) in [
        (
            "mysql://root:hunter2-pw@db.lan/health",
            "must be a PostgreSQL URL",
        ),
        (
            "postgres://hc:hunter2-pw@db.lan/health?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt",
            "sslrootcert /nonexistent/ca.crt cannot be read",
        ),
        (
            "postgres://hc:hunter2-pw@db.lan:port/health",
            "does not parse",
        ),
    ] {
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()))
            .args(["--database-url", url]);
        let (status, output) = run_to_end(cmd);
        assert!(!status.success(), "{url}: {output}");
        assert!(
            output.contains("database_url") && output.contains(says),
            "{url}: {output}"
        );
        assert!(!output.contains("hunter2"), "{url}: {output}");
    }
}
