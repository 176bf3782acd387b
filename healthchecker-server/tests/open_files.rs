//! The open-file limit, as users meet it: a soft limit of 1,024 while the server keeps a
//! connection to every app. The server raises its soft limit to the hard one, says when even that
//! is short of `max_monitors`, and when it does run out of files it closes idle connections
//! instead of failing checks.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{ServerProcess, command_with_file_limits, local_args, temp_dir};
use serde_json::Value;

/// The "Max open files" soft and hard limits of a running process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn the_soft_limit_is_raised_to_the_hard_one_and_a_short_one_is_named() {
    let dir = temp_dir();
    let mut cmd = command_with_file_limits(dir.path(), 200, 600);
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);

    assert_eq!(open_file_limits(server.pid()), (600, 600));
    // max_monitors is 1,000 by default: 600 files are not enough for that many apps.
    let warning = server.wait_for_line("the open-file limit is 600");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("max_monitors is 1000"), "{warning}");
    assert!(warning.contains("ulimit -Hn 1128"), "{warning}");
}

#[test]
fn enough_files_and_nothing_is_said() {
    let dir = temp_dir();
    let mut cmd = command_with_file_limits(dir.path(), 256, 4096);
    cmd.args(local_args(dir.path()));
    cmd.args(["--max-monitors", "100"]);
    let server = ServerProcess::start(cmd);

    assert_eq!(open_file_limits(server.pid()), (4096, 4096));
    let lines = server.lines();
    assert!(
        !lines.iter().any(|line| line.contains("open-file limit")),
        "{lines:?}"
    );
}

/// Apps on their own loopback ports, each answering a passing health check.
async fn apps(count: usize) -> Vec<String> {
    let mut urls = Vec::new();
    for _ in 0..count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        urls.push(format!("http://{}", listener.local_addr().expect("addr")));
        let router = Router::new().route("/health", get(|| async { r#"{"status":"pass"}"# }));
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_apps_than_open_files_still_pass() {
    const APPS: usize = 60;
    let dir = temp_dir();
    let urls = apps(APPS).await;
    // About 25 files go to the server itself (database, listener, runtime): room for about 20
    // connections, a third of the apps.
    let mut cmd = command_with_file_limits(dir.path(), 48, 48);
    cmd.args(local_args(dir.path()));
    cmd.args(["--max-registrations-per-minute", "0"]);
    let mut server = ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    for (i, url) in urls.iter().enumerate() {
        let answer = client
            .put(format!("{}/api/v1/monitors/app-{i}", server.url))
            .json(&serde_json::json!({"url": url, "interval": 5, "timeout": 2}))
            .send()
            .await
            .expect("PUT");
        assert_eq!(answer.status(), 201, "app-{i}");
    }

    // Two rounds of checks: every app checked, and not one check failed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut checked = 0;
        for i in 0..APPS {
            let log: Value = client
                .get(format!("{}/api/v1/monitors/app-{i}/log", server.url))
                .send()
                .await
                .expect("GET log")
                .json()
                .await
                .expect("JSON");
            let checks = log["checks"].as_array().expect("checks");
            for check in checks {
                assert_eq!(check["outcome"], "pass", "app-{i}: {check}");
            }
            if checks.len() >= 2 {
                checked += 1;
            }
        }
        if checked == APPS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {checked} of {APPS} apps checked twice"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.wait_for_line("out of open files: closed");
}
