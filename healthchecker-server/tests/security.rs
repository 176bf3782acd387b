//! The server is not a proxy into the LAN (DESIGN.md, "Security"), tried the way a hostile LAN
//! client would, with the real binary on loopback: a "router" that answers a secret JSON
//! document to anyone who asks, registered by a client without a token; every read behind
//! `read_token`; targets outside `allowed_targets`; one client's cap of monitors; a channel
//! test that a repeated request cannot send twice. 127.0.0.2 (all of
//! 127.0.0.0/8 is loopback) stands for a second host.
//!
//! The DNS-rebinding test runs the probe in-process, with a DNS server of its own on 127.0.0.1.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use common::{BINARY, ServerProcess, command, local_args, temp_dir};
use healthchecker_server::config::targets::AllowedTargets;
use healthchecker_server::health::Outcome;
use healthchecker_server::probe::{Prober, ProberOptions, Reason};
use healthchecker_server::registry::{MonitorSpec, Registration};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};

/// What the router tells anyone who asks: nothing of it may ever be shown.
const ROUTER_SECRET: &str = r#"{"model":"LAN-Router 3000","admin_user":"admin","admin_password":"hunter2-router-secret","wan_ip":"203.0.113.77"}"#;

/// The words of [`ROUTER_SECRET`] a leak would show.
const LEAKS: [&str; 3] = ["hunter2-router-secret", "203.0.113.77", "LAN-Router"];

/// A health answer, kept as it is.
const HEALTH_ANSWER: &str =
    r#"{"status":"pass","checks":{"db:responseTime":[{"observedValue":3,"status":"pass"}]}}"#;

/// Serves `body` with `content_type` at every path of a listener bound on `ip`; the URL.
async fn serve(ip: &str, content_type: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let answer = move || async move { ([(header::CONTENT_TYPE, content_type)], body) };
    let router = Router::new().fallback(get(answer));
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().expect("address"))
        .no_proxy()
        .build()
        .expect("client")
}

/// The status and JSON body of `request`.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let answer = request.send().await.expect("the server answers");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Waits for the first check of `app` and returns it.
async fn first_check(client: &reqwest::Client, server: &str, app: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, log) = send(client.get(format!("{server}/api/v1/monitors/{app}/log"))).await;
        assert_eq!(status, 200, "{log}");
        if let Some(check) = log["checks"].get(0) {
            return check.clone();
        }
        assert!(Instant::now() < deadline, "no check of {app} within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The original client's form.
fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("a form")
}

fn registration(url: &str, path: &str) -> Value {
    json!({"url": url, "path": path, "interval": 5, "timeout": 2})
}

/// A client without a token registers the router's status page and reads the log back: it
/// shows that the router answered, how much and whether that changed, never what it said.
#[tokio::test]
async fn a_routers_secret_json_is_kept_only_as_its_size_and_hash() {
    let router = serve("127.0.0.1", "application/json", ROUTER_SECRET).await;
    let same_router = serve("127.0.0.1", "application/json", ROUTER_SECRET).await;
    let other_router = serve("127.0.0.1", "application/json", r#"{"admin_password":"x"}"#).await;
    let app = serve("127.0.0.1", "application/health+json", HEALTH_ANSWER).await;
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let mut server = ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    for (name, url, path) in [
        ("router", &router, "/cgi-bin/status.json"),
        ("same-router", &same_router, "/cgi-bin/status.json"),
        ("other-router", &other_router, "/api/system"),
        ("app", &app, "/health"),
    ] {
        let (status, answer) = send(
            client
                .put(format!("{}/api/v1/monitors/{name}", server.url))
                .json(&registration(url, path)),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }

    let check = first_check(&client, &server.url, "router").await;
    assert_eq!(check["outcome"], "pass", "{check}");
    assert_eq!(check["body"], Value::Null, "{check}");
    assert_eq!(check["body_digest"]["size"], ROUTER_SECRET.len(), "{check}");
    let hash = check["body_digest"]["hash"]
        .as_str()
        .expect("a hash")
        .to_owned();
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{hash}"
    );
    let same = first_check(&client, &server.url, "same-router").await;
    assert_eq!(same["body_digest"]["hash"], hash.as_str(), "the same body");
    let other = first_check(&client, &server.url, "other-router").await;
    assert_ne!(other["body_digest"]["hash"], hash.as_str(), "another body");

    // A health answer is kept as before.
    let check = first_check(&client, &server.url, "app").await;
    assert_eq!(
        check["body"],
        serde_json::from_str::<Value>(HEALTH_ANSWER).expect("JSON")
    );
    assert_eq!(check["body_digest"], Value::Null);

    // Nothing anyone can read shows the router's words: not the API, not the original's
    // routes, not the dashboard's data, not the server's log, not the database.
    let mut read = String::new();
    for path in [
        "/api/v1/monitors",
        "/api/v1/monitors/router",
        "/api/v1/monitors/router/log",
        "/healthchecker/info?appname=router",
        "/healthchecker/status",
    ] {
        let (status, answer) = send(client.get(format!("{}{path}", server.url))).await;
        assert_eq!(status, 200, "{path}: {answer}");
        read.push_str(&answer.to_string());
    }
    assert!(read.contains(&hash), "the reads show the digest");
    let exit = server.signal_and_wait("TERM");
    assert!(exit.success(), "{exit:?}");
    read.push_str(&server.lines().join("\n"));
    for word in LEAKS {
        assert!(!read.contains(word), "{word:?} leaked:\n{read}");
    }
    for file in std::fs::read_dir(dir.path().join("data")).expect("data folder") {
        let path = file.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        for word in LEAKS {
            let leaked = bytes
                .windows(word.len())
                .any(|window| window == word.as_bytes());
            assert!(!leaked, "{word:?} is in {}", path.display());
        }
    }
}

/// With a `read_token`, every read the OpenAPI document lists answers 401 without it (or with a
/// wrong one) and 200 with it or with the `token`; the server's own `/health`, the dashboard's
/// page and the document stay open, and the client crate's CLI reads with
/// `HEALTHCHECKER_READ_TOKEN` (or `HEALTHCHECKER_TOKEN` alone).
#[tokio::test]
async fn every_read_needs_the_read_token_and_health_stays_open() {
    const TOKEN: &str = "change-token-4711";
    const READ_TOKEN: &str = "read-token-0815";
    let app = serve("127.0.0.1", "application/health+json", HEALTH_ANSWER).await;
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .args(["--token", TOKEN, "--read-token", READ_TOKEN]);
    let server = ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    let (status, _) = send(
        client
            .put(format!("{}/api/v1/monitors/app", server.url))
            .bearer_auth(READ_TOKEN)
            .json(&registration(&app, "/health")),
    )
    .await;
    assert_eq!(status, 401, "the read token changes nothing");
    let (status, _) = send(
        client
            .put(format!("{}/api/v1/monitors/app", server.url))
            .bearer_auth(TOKEN)
            .json(&registration(&app, "/health")),
    )
    .await;
    assert_eq!(status, 201);

    let (status, doc) = send(client.get(format!("{}/api/v1/openapi.json", server.url))).await;
    assert_eq!(status, 200, "the document stays open");
    let mut reads = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(operation) = item.get("get") else {
            continue;
        };
        let guarded = operation["security"].is_array();
        // A push monitor's ping routes need no token: the key in the path is the credential.
        let open = ["/", "/health", "/api/v1/openapi.json"].contains(&path.as_str())
            || path.starts_with("/ping/");
        // Legacy's GET routes that change something (stop, pause, ...) need the token instead.
        let change = operation["responses"]["200"]["$ref"] == "#/components/responses/LegacyOk";
        assert!(
            guarded != open,
            "GET {path}: every read but /, /health, the document and the pings is guarded"
        );
        if !change && guarded {
            reads.push(path.clone());
        }
    }
    assert!(reads.len() >= 12, "{reads:?}");
    for path in &reads {
        let url = format!(
            "{}{}",
            server.url,
            path.replace("{app}", "app")
                .replace("/healthchecker/info", "/healthchecker/info?appname=app")
        );
        for given in [None, Some("wrong-token-xyz"), Some(READ_TOKEN), Some(TOKEN)] {
            let mut request = client.get(&url);
            if let Some(token) = given {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.expect("answers");
            let status = answer.status().as_u16();
            let challenge = answer.headers().get(header::WWW_AUTHENTICATE).cloned();
            if status == 200 && path == "/api/v1/events" {
                continue; // a stream that stays open: its status is the answer
            }
            let body = answer.text().await.expect("body");
            match given {
                Some(READ_TOKEN | TOKEN) => assert_eq!(status, 200, "GET {path}: {body}"),
                _ => {
                    assert_eq!(status, 401, "GET {path} with {given:?}: {body}");
                    assert!(body.contains("read_token") && !body.contains(READ_TOKEN));
                    assert_eq!(
                        challenge.as_ref().map(|v| v.as_bytes()),
                        Some(&b"Bearer"[..])
                    );
                }
            }
        }
    }
    for open in ["/health", "/", "/api/v1/openapi.json"] {
        let (status, answer) = send(client.get(format!("{}{open}", server.url))).await;
        assert_eq!(status, 200, "{open}");
        assert!(
            !answer.to_string().contains("monitors:count"),
            "{open}: no counts per state without the read token"
        );
    }
    let (_, health) = send(
        client
            .get(format!("{}/health", server.url))
            .bearer_auth(READ_TOKEN),
    )
    .await;
    assert!(health["checks"]["monitors:count"].is_array(), "{health}");

    // The CLI (the client crate's ApiClient) reads with the read token, or the token alone.
    let list = |env: &[(&str, &str)]| {
        let mut cli = std::process::Command::new(BINARY);
        cli.args(["list", "--server", &server.url])
            .env_remove("HEALTHCHECKER_URL")
            .env_remove("HEALTHCHECKER_TOKEN")
            .env_remove("HEALTHCHECKER_READ_TOKEN")
            .stdin(std::process::Stdio::null());
        for (key, value) in env {
            cli.env(key, value);
        }
        let output = cli.output().expect("runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, out) = list(&[("HEALTHCHECKER_READ_TOKEN", READ_TOKEN)]);
    assert!(ok && out.contains("app"), "{out}");
    let (ok, out) = list(&[("HEALTHCHECKER_TOKEN", TOKEN)]);
    assert!(
        ok && out.contains("app"),
        "the token alone reads too: {out}"
    );
    let (ok, out) = list(&[]);
    assert!(!ok && out.contains("HEALTHCHECKER_READ_TOKEN"), "{out}");
    assert!(!out.contains(READ_TOKEN) && !out.contains(TOKEN), "{out}");
}

/// With `allowed_targets`, a registration is refused (422 naming `url`) for an address outside
/// and for a name that resolves outside, on the API and on the original's route; a target
/// inside is registered and checked.
#[tokio::test]
async fn targets_outside_allowed_targets_are_refused() {
    let inside = serve("127.0.0.2", "application/health+json", HEALTH_ANSWER).await;
    let outside = serve("127.0.0.1", "application/json", ROUTER_SECRET).await;
    let port = outside.rsplit(':').next().expect("port");
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .args(["--allowed-targets", "127.0.0.2/32"]);
    let server = ServerProcess::start(cmd);
    let client = reqwest::Client::new();
    for (url, shown) in [
        (outside.clone(), "127.0.0.1 is outside"),
        (format!("http://localhost:{port}"), "localhost resolves to"),
        (format!("http://[::1]:{port}"), "::1 is outside"),
        (format!("http://[::ffff:127.0.0.1]:{port}"), "is outside"),
    ] {
        let (status, answer) = send(
            client
                .put(format!("{}/api/v1/monitors/probe", server.url))
                .json(&registration(&url, "/")),
        )
        .await;
        assert_eq!(status, 422, "{url}: {answer}");
        assert_eq!(answer["error"]["field"], "url", "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("allowed_targets (127.0.0.2/32)") && message.contains(shown),
            "{url}: {message}"
        );
    }
    // Every kind is held to the list: the url crate leaves the host of a scheme it does not
    // know (tcp://, tls://) a name, and the admission still reads it as the address it is.
    for url in [
        "tcp://127.0.0.1:22".to_owned(),
        format!("tls://127.0.0.1:{port}"),
        format!("tcp://[::1]:{port}"),
    ] {
        let (status, answer) = send(
            client
                .put(format!("{}/api/v1/monitors/probe", server.url))
                .json(&json!({"url": url, "interval": 5, "timeout": 2})),
        )
        .await;
        assert_eq!(status, 422, "{url}: {answer}");
        assert_eq!(answer["error"]["field"], "url", "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("allowed_targets (127.0.0.2/32)") && message.contains("is outside"),
            "{url}: {message}"
        );
    }
    let answer = client
        .post(format!("{}/healthchecker/monitor", server.url))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("appname", "probe"),
            ("url", &outside),
            ("email", ""),
        ]))
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 422);
    let answer: Value = answer.json().await.expect("JSON error");
    assert_eq!(answer["error"]["field"], "url");
    let (status, list) = send(client.get(format!("{}/api/v1/monitors", server.url))).await;
    assert_eq!(
        (status, list["monitors"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    let (status, answer) = send(
        client
            .put(format!("{}/api/v1/monitors/inside", server.url))
            .json(&registration(&inside, "/health")),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let check = first_check(&client, &server.url, "inside").await;
    assert_eq!(
        (check["outcome"].as_str(), check["reason"].as_str()),
        (Some("pass"), Some("ok"))
    );
}

/// One client address may create `max_monitors_per_client` monitors; past it, 429 naming the
/// option, on the API and the original's route alike. Its updates still work, another address
/// has its own count, and a removal frees a place.
#[tokio::test]
async fn one_client_may_create_at_most_max_monitors_per_client() {
    let app = serve("127.0.0.1", "application/health+json", HEALTH_ANSWER).await;
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path())).args([
        "--max-monitors-per-client",
        "2",
        "--max-registrations-per-minute",
        "0",
    ]);
    let server = ServerProcess::start(cmd);
    let (one, two) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let put = |client: &reqwest::Client, name: &str, interval: u64| {
        client
            .put(format!("{}/api/v1/monitors/{name}", server.url))
            .json(&json!({"url": app, "interval": interval, "timeout": 2}))
    };
    assert_eq!(send(put(&one, "a", 5)).await.0, 201);
    assert_eq!(send(put(&one, "b", 5)).await.0, 201);
    let (status, answer) = send(put(&one, "c", 5)).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "client_monitor_limit");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_monitors_per_client") && m.contains('2')),
        "{answer}"
    );
    let legacy = one
        .post(format!("{}/healthchecker/monitor", server.url))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("appname", "c"), ("url", &app), ("email", "")]))
        .send()
        .await
        .expect("answers");
    assert_eq!(legacy.status(), 429);
    assert_eq!(
        send(put(&one, "a", 10)).await.0,
        200,
        "an update creates nothing"
    );
    assert_eq!(send(put(&two, "c", 5)).await.0, 201, "another address");
    let (status, _) = send(two.delete(format!("{}/api/v1/monitors/a", server.url))).await;
    assert_eq!(status, 204);
    assert_eq!(send(put(&one, "d", 5)).await.0, 201, "a place freed");
    assert_eq!(send(put(&one, "e", 5)).await.0, 429);
}

/// Repeating a request cannot page people twice: a second test of a channel while the first is
/// on its way (a client that timed out and retried, a double click) or just after it answers 429
/// with `Retry-After` and sends nothing; the receiver gets one message. An unknown name is a 404
/// and is not counted.
#[tokio::test]
async fn a_repeated_channel_test_sends_one_message() {
    let received = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let handler = {
        let (received, arrived, release) = (received.clone(), arrived.clone(), release.clone());
        move || async move {
            received.fetch_add(1, Ordering::SeqCst);
            arrived.notify_one();
            release.notified().await;
            "thanks"
        }
    };
    let router = Router::new().route("/hook", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = temp_dir();
    let config = dir.path().join("healthchecker.toml");
    std::fs::write(
        &config,
        format!("[[channel]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"{hook}\"\n"),
    )
    .expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .arg("--config")
        .arg(&config);
    let server = ServerProcess::start(cmd);
    let test_url = format!("{}/api/v1/channels/pager/test", server.url);
    let client = reqwest::Client::new();

    let first = tokio::spawn(client.post(&test_url).send());
    tokio::time::timeout(Duration::from_secs(20), arrived.notified())
        .await
        .expect("the first test reaches the receiver within 20 s");
    let again = client.post(&test_url).send().await.expect("answers");
    assert_eq!(
        again.status(),
        429,
        "a second test while the first is on its way"
    );
    let retry_after: u64 = again
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let answer: Value = again.json().await.expect("JSON");
    assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"pager\"") && m.contains("retry in")),
        "{answer}"
    );
    release.notify_one();
    let first = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .expect("the first test answers within 20 s")
        .expect("task")
        .expect("answers");
    assert_eq!(first.status(), 200);

    let (status, answer) = send(client.post(&test_url)).await;
    assert_eq!(status, 429, "a replay just after: {answer}");
    let (status, _) = send(client.post(format!("{}/api/v1/channels/ghost/test", server.url))).await;
    assert_eq!(status, 404);
    assert_eq!(received.load(Ordering::SeqCst), 1, "one message, not two");
}

/// A DNS server on 127.0.0.1 whose one name answers whatever address the test sets now (TTL 0).
struct Rebinding {
    addr: SocketAddr,
    answer: Arc<Mutex<Ipv4Addr>>,
}

async fn rebinding_dns(name: &'static str, first: Ipv4Addr) -> Rebinding {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS");
    let addr = socket.local_addr().expect("addr");
    let answer = Arc::new(Mutex::new(first));
    let current = Arc::clone(&answer);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let Some(query) = request.queries.first().cloned() else {
                continue;
            };
            let mut response = Message::response(request.metadata.id, request.metadata.op_code);
            response.metadata.authoritative = true;
            response.metadata.recursion_desired = request.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(query.clone());
            let asked = query.name().to_ascii().trim_end_matches('.').to_lowercase();
            if asked != name {
                response.metadata.response_code = ResponseCode::NXDomain;
            } else if query.query_type() == RecordType::A {
                let ip = *current.lock().expect("lock");
                response.add_answer(Record::from_rdata(query.name().clone(), 0, RData::A(A(ip))));
            }
            let bytes = response.to_vec().expect("DNS answer");
            let _ = socket.send_to(&bytes, from).await;
        }
    });
    Rebinding { addr, answer }
}

/// An app on `ip:port` that answers `answer` and closes each connection (so every check
/// connects, and looks the name up, anew); counts connections.
async fn counting_app(ip: Ipv4Addr, port: u16, answer: &'static [u8]) -> Option<Arc<AtomicUsize>> {
    let listener = TcpListener::bind((ip, port)).await.ok()?;
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = stream.write_all(answer).await;
            });
        }
    });
    Some(connections)
}

const HEALTHY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\n\
    connection: close\r\ncontent-length: 17\r\n\r\n{\"status\":\"pass\"}";

/// A name that resolved inside `allowed_targets` at registration and moves outside (DNS
/// rebinding) fails its next check with `not_allowed`: the probe checks the address it connects
/// to, so nothing reaches the host outside. A listed name is trusted to wherever it points.
#[tokio::test]
async fn a_name_that_moves_outside_fails_its_check_with_not_allowed() {
    const NAME: &str = "app.rebind.test";
    let inside_ip = Ipv4Addr::new(127, 0, 0, 2);
    let outside_ip = Ipv4Addr::LOCALHOST;
    // One port on both addresses: the URL names one.
    let (port, inside, outside) = {
        let mut tries = 0;
        loop {
            let probe = std::net::TcpListener::bind((inside_ip, 0)).expect("bind");
            let port = probe.local_addr().expect("addr").port();
            drop(probe);
            if let (Some(inside), Some(outside)) = (
                counting_app(inside_ip, port, HEALTHY).await,
                counting_app(outside_ip, port, HEALTHY).await,
            ) {
                break (port, inside, outside);
            }
            tries += 1;
            assert!(tries < 20, "no port free on both addresses");
        }
    };
    let dns = rebinding_dns(NAME, inside_ip).await;
    let allowed = |entries: &[&str]| {
        AllowedTargets::parse(&entries.iter().map(|&e| e.to_owned()).collect::<Vec<_>>())
            .expect("valid")
    };
    let prober = Prober::with_options(ProberOptions {
        name_servers: Some(vec![dns.addr]),
        allowed_targets: allowed(&["127.0.0.2/32"]),
        ..ProberOptions::default()
    })
    .expect("prober");
    let targets = prober.targets();
    let spec = spec(&format!("http://{NAME}:{port}"));

    targets.admit(&spec).await.expect("inside at registration");
    let record = prober.check(&spec).await;
    assert_eq!(
        (record.outcome, record.reason),
        (Outcome::Pass, Reason::Ok),
        "{record:?}"
    );
    assert_eq!(inside.load(Ordering::SeqCst), 1);

    *dns.answer.lock().expect("lock") = outside_ip;
    let record = prober.check(&spec).await;
    assert_eq!(
        (record.outcome, record.reason, record.detail.as_deref()),
        (
            Outcome::Fail,
            Reason::NotAllowed,
            Some("app.rebind.test resolves to 127.0.0.1, outside allowed_targets")
        ),
        "{record:?}"
    );
    assert_eq!(
        outside.load(Ordering::SeqCst),
        0,
        "nothing reached the host outside"
    );
    let refused = targets.admit(&spec).await.expect_err("outside now");
    assert_eq!(refused.field, "url");
    assert!(
        refused.expected.contains("resolves to 127.0.0.1"),
        "{refused}"
    );
    let by_address = targets
        .admit(&self::spec(&format!("http://127.0.0.1:{port}")))
        .await
        .expect_err("an address outside");
    assert!(
        by_address.expected.contains("127.0.0.1 is outside"),
        "{by_address}"
    );

    // A listed name goes wherever it resolves to.
    let trusting = Prober::with_options(ProberOptions {
        name_servers: Some(vec![dns.addr]),
        allowed_targets: allowed(&["127.0.0.2/32", "*.rebind.test"]),
        ..ProberOptions::default()
    })
    .expect("prober");
    trusting
        .targets()
        .admit(&spec)
        .await
        .expect("a listed name");
    let record = trusting.check(&spec).await;
    assert_eq!(
        (record.outcome, record.reason),
        (Outcome::Pass, Reason::Ok),
        "{record:?}"
    );
    assert_eq!(outside.load(Ordering::SeqCst), 1);
}

fn spec(url: &str) -> MonitorSpec {
    Registration {
        url: Some(url.to_owned()),
        interval: Some(30),
        timeout: Some(2),
        unhealthy: Some(2),
        healthy: Some(2),
        ..Registration::default()
    }
    .validate()
    .expect("valid spec")
}

/// Checks of every kind connect (or ping) only inside `allowed_targets`, whatever was admitted:
/// a tcp or tls check of an address outside fails `not_allowed` without a connection, and an
/// icmp check fails `not_allowed` before any echo is sent.
#[tokio::test]
async fn checks_of_every_kind_go_only_inside_allowed_targets() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = Arc::clone(&accepted);
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let prober = Prober::with_options(ProberOptions {
        allowed_targets: AllowedTargets::parse(&["127.0.0.2/32".to_owned()]).expect("valid"),
        ..ProberOptions::default()
    })
    .expect("prober");
    for url in [
        format!("tcp://127.0.0.1:{port}"),
        format!("tls://127.0.0.1:{port}"),
        "icmp://127.0.0.1".to_owned(),
    ] {
        let record = prober.check(&spec(&url)).await;
        assert_eq!(
            (record.outcome, record.reason),
            (Outcome::Fail, Reason::NotAllowed),
            "{url}: {record:?}"
        );
        let detail = record.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("127.0.0.1"), "{url}: {detail}");
    }
    // The same prober without the list connects: the refusal above was the list's.
    let open = Prober::new().expect("prober");
    let record = open.check(&spec(&format!("tcp://127.0.0.1:{port}"))).await;
    assert_eq!(
        (record.outcome, record.reason),
        (Outcome::Pass, Reason::Ok),
        "{record:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the open check's connection never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "only the open check connected"
    );
}

/// A `[[monitor]]` table pointing outside `allowed_targets` stops the start, naming the table;
/// a reload that adds one is refused and changes nothing; a reload that changes `read_token`,
/// `allowed_targets` or `max_monitors_per_client` says they take effect at the next start.
#[test]
fn declared_monitors_are_held_to_allowed_targets_at_start_and_on_reload() {
    let dir = temp_dir();
    let file = dir.path().join("config");
    let outside = "allowed_targets = [\"127.0.0.2/32\"]\n\n[[monitor]]\nname = \"nas\"\n\
                   url = \"tcp://127.0.0.1:22\"\n";
    std::fs::write(&file, outside).expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path())).arg("--config").arg(&file);
    let (status, stderr) = common::run_to_end(cmd);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("[[monitor]] nas: `url`") && stderr.contains("127.0.0.1 is outside"),
        "{stderr}"
    );

    std::fs::write(&file, "allowed_targets = [\"127.0.0.2/32\"]\n").expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path())).arg("--config").arg(&file);
    let mut server = ServerProcess::start(cmd);
    let reload = |server: &mut ServerProcess, config: &str, expect: &str| {
        std::fs::write(&file, config).expect("config");
        let before = server.lines().len();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + common::PATIENCE;
        loop {
            let lines = server.lines();
            if lines[before..].iter().any(|line| line.contains(expect)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{expect:?} not logged; log:\n{}",
                lines[before..].join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    reload(
        &mut server,
        outside,
        "reload refused, nothing changed: [[monitor]] nas: `url`",
    );
    assert!(
        server
            .lines()
            .iter()
            .any(|line| line.contains("reload refused") && line.contains("127.0.0.1 is outside")),
        "{:?}",
        server.lines()
    );
    reload(
        &mut server,
        "allowed_targets = [\"127.0.0.0/8\"]\nread_token = \"r3ad-t0ken-long-enough\"\n\
         max_monitors_per_client = 3\n",
        "take effect at the next start",
    );
    let line = server
        .lines()
        .into_iter()
        .find(|line| line.contains("take effect at the next start"))
        .expect("the warning");
    for option in ["read_token", "allowed_targets", "max_monitors_per_client"] {
        assert!(line.contains(option), "{option} not in {line:?}");
    }
    assert!(
        !line.contains("r3ad-t0ken"),
        "no secret in the log: {line:?}"
    );
    assert!(server.signal_and_wait("TERM").success());
}
