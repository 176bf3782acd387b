//! History with the real binary: uptime survives a kill -9 between two writes of the
//! aggregates (they are folded again from the log), and `log --follow` prints checks from the
//! event stream.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{BINARY, PATIENCE, ServerProcess, command, local_args, temp_dir};
use serde_json::{Value, json};

/// A loopback app whose `/health` passes.
async fn app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route("/health", get(|| async { r#"{"status":"pass"}"# }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

async fn logged(server: &ServerProcess, app: &str) -> usize {
    get_json(&format!(
        "{}/api/v1/monitors/{app}/log?limit=1000",
        server.url
    ))
    .await["checks"]
        .as_array()
        .expect("checks")
        .len()
}

async fn day_checks(server: &ServerProcess, app: &str) -> usize {
    let uptime = get_json(&format!("{}/api/v1/monitors/{app}/uptime", server.url)).await;
    uptime["windows"][0]["checks"].as_u64().expect("checks") as usize
}

/// The aggregates of the checks made before a kill -9 are written at most a minute late; a
/// restart folds the log rows after them again, so uptime counts every check the log kept.
#[tokio::test]
async fn uptime_survives_a_kill_9() {
    let dir = temp_dir();
    let target = app().await;
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    let answer = reqwest::Client::new()
        .put(format!("{}/api/v1/monitors/nas", server.url))
        .json(&json!({"url": target, "interval": 5, "timeout": 2}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 201);
    // Only the log is read before the kill: reading the uptime would write the aggregates.
    let deadline = Instant::now() + PATIENCE;
    let before = loop {
        let count = logged(&server, "nas").await;
        if count >= 2 {
            break count;
        }
        assert!(Instant::now() < deadline, "two checks within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!server.signal_and_wait("KILL").success());

    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let server = ServerProcess::start(cmd);
    let low = logged(&server, "nas").await;
    let counted = day_checks(&server, "nas").await;
    let high = logged(&server, "nas").await;
    assert!(low >= before, "the log kept {before} checks, then {low}");
    assert!(
        (low..=high).contains(&counted),
        "uptime counts {counted} checks; the log had {low} to {high}"
    );
}

/// `log --follow` prints the log, then each new check as it is recorded, from the event stream;
/// when the server goes away the command says so and fails. (Two runtime threads: the test
/// waits for lines on a blocking channel while the target app answers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_follow_prints_new_checks_from_the_event_stream() {
    let dir = temp_dir();
    let target = app().await;
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    reqwest::Client::new()
        .put(format!("{}/api/v1/monitors/media", server.url))
        .json(&json!({"url": target, "interval": 5, "timeout": 2}))
        .send()
        .await
        .expect("PUT");
    let deadline = Instant::now() + PATIENCE;
    while logged(&server, "media").await == 0 {
        assert!(
            Instant::now() < deadline,
            "a first check within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut follow = Command::new(BINARY)
        .args(["log", "media", "--follow", "--json", "-n", "1"])
        .args(["--server", &server.url])
        .env_remove("HEALTHCHECKER_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("log --follow runs");
    let stdout = follow.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next = || -> Value {
        let line = lines_rx
            .recv_timeout(PATIENCE)
            .expect("a line within the patience");
        serde_json::from_str(&line).expect("one JSON check per line")
    };
    let first = next();
    let second = next();
    let third = next();
    let time = |check: &Value| -> chrono::DateTime<chrono::Utc> {
        check["time"]
            .as_str()
            .expect("time")
            .parse()
            .expect("RFC 3339")
    };
    assert!(time(&first) < time(&second) && time(&second) < time(&third));
    assert_eq!(second["outcome"], "pass");
    assert_eq!(second["state"], "HEALTHY");

    assert!(server.signal_and_wait("TERM").success());
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = follow.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "log --follow ends with the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut follow.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ended the live stream"), "{stderr}");
}
