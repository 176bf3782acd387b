//! The API port against a hostile LAN client, with the real binary on loopback: a client that
//! opens many connections and sends a byte now and then, and a `--verbose` request log that
//! never shows a token or a body.
//!
//! The hostile client speaks from 127.0.0.2 (all of 127.0.0.0/8 is loopback), a host of its
//! own; the well-behaved one from 127.0.0.1. Counts are bounded and every wait has a deadline.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{ServerProcess, command, local_args, temp_dir};
use healthchecker_server::http::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS_PER_CLIENT};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Connections the hostile client opens: well past its limit, well within the test's files.
const HOSTILE: usize = MAX_CONNECTIONS_PER_CLIENT + 150;

/// The open files of a process.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

/// A connection to `server` from the address `from`.
async fn connect_from(from: IpAddr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    socket.connect(server).await.expect("connect")
}

/// What the server says on `stream` before it closes it, or `None` when it says nothing and
/// keeps it open for `within`.
async fn answer_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

/// `GET /health` from `from` on a fresh connection: the whole answer.
async fn health(from: IpAddr, server: SocketAddr) -> String {
    let mut stream = connect_from(from, server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: hc\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    answer_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("/health answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_are_capped_per_client_and_timed_out() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let server = ServerProcess::start(cmd);
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let files_before = open_files(server.pid());

    // The hostile host opens its connections and sends one byte of a request head on each.
    let hostile: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let mut streams = Vec::with_capacity(HOSTILE);
    for _ in 0..HOSTILE {
        let mut stream = connect_from(hostile, addr).await;
        stream.write_all(b"G").await.expect("one byte");
        streams.push(stream);
    }

    // Past its limit, a connection is closed at once (told 503 when its request had arrived;
    // else it is reset, which drops the answer); the others are held.
    let mut waits = tokio::task::JoinSet::new();
    for mut stream in streams {
        waits.spawn(async move {
            let answer = answer_within(&mut stream, Duration::from_millis(500)).await;
            (stream, answer)
        });
    }
    let mut held = Vec::new();
    let mut refused = 0;
    while let Some(waited) = waits.join_next().await {
        let (stream, answer) = waited.expect("a wait");
        match answer {
            Some(answer) => {
                assert!(
                    answer.is_empty() || answer.starts_with("HTTP/1.1 503 "),
                    "{answer:?}"
                );
                refused += 1;
            }
            None => held.push(stream),
        }
    }
    assert_eq!(held.len(), MAX_CONNECTIONS_PER_CLIENT, "refused {refused}");
    assert_eq!(refused, HOSTILE - MAX_CONNECTIONS_PER_CLIENT);

    // Another host is served meanwhile, and the server holds no file for a refused connection.
    let answer = health(Ipv4Addr::LOCALHOST.into(), addr).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
    let files = open_files(server.pid());
    assert!(
        files <= files_before + MAX_CONNECTIONS_PER_CLIENT + 8,
        "open files {files_before} -> {files}"
    );

    // A connection that does not finish its request head in time is closed.
    let deadline = Instant::now() + HEADER_READ_TIMEOUT + Duration::from_secs(10);
    for mut stream in held {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = answer_within(&mut stream, left).await;
        assert!(
            answer.is_some(),
            "a slow connection is still open after {HEADER_READ_TIMEOUT:?}"
        );
    }
    // ... and, its connections gone, the hostile host is served again.
    let answer = health(hostile, addr).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
}

#[tokio::test]
async fn verbose_logs_every_request_without_tokens_or_bodies() {
    const TOKEN: &str = "s3cret-token-value";
    const MARKER: &str = "body-marker-4711";
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    cmd.args(["--verbose", "--token", TOKEN]);
    let mut server = ServerProcess::start(cmd);

    let client = reqwest::Client::new();
    let answer = client
        .put(format!("{}/api/v1/monitors/{MARKER}x", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"url": "http://127.0.0.1:9", "email": "me@example.com"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 201);
    let answer = client
        .get(format!("{}/health", server.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(answer.status(), 200);

    let line = server.wait_for_line("path=/health");
    for needle in [
        "method=GET",
        "status=200",
        "latency_ms=",
        "client=127.0.0.1:",
    ] {
        assert!(line.contains(needle), "{needle} in {line}");
    }
    let put = server.wait_for_line("status=201");
    assert!(put.contains("method=PUT"), "{put}");
    let log = server.lines().join("\n");
    assert!(!log.contains(TOKEN), "the token is never logged:\n{log}");
    assert!(
        !log.contains("\"email\"") && !log.contains("\"url\""),
        "no body is logged:\n{log}"
    );
}
