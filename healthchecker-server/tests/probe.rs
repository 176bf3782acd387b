//! The probe against real HTTP targets on 127.0.0.1, whose answer each test sets (and flips) at
//! run time.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use healthchecker_server::health::Outcome;
use healthchecker_server::probe::{CheckRecord, JsonBody, Prober, Reason};
use healthchecker_server::registry::MonitorSpec;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Long enough for any answer the test does not mean to be late.
const PATIENT: Duration = Duration::from_secs(2);
/// The timeout of the tests about timeouts.
const SHORT: Duration = Duration::from_millis(300);

/// What the target does with the next request.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Answer at once.
    Answer {
        status: u16,
        content_type: Option<&'static str>,
        location: Option<&'static str>,
        body: &'static str,
    },
    /// Answer 200 after this long.
    Late(Duration),
    /// Send the head at once, then 10 bytes of a 1000-byte body every `every`.
    Dribble(Duration),
    /// 200 `text/plain`, `bytes` long, made as it is sent, 64 KiB at a time.
    Big { bytes: usize },
}

fn answer(status: u16, content_type: Option<&'static str>, body: &'static str) -> Behaviour {
    Behaviour::Answer {
        status,
        content_type,
        location: None,
        body,
    }
}

/// A request the target saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    user_agent: Option<String>,
}

/// An HTTP/1 server on 127.0.0.1:0 that answers as told, and counts what it sees.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes handed to the connection by `Behaviour::Big`.
    sent: Arc<AtomicUsize>,
}

type Body = BoxBody<Bytes, Infallible>;

impl Target {
    async fn start(behaviour: Behaviour) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = Target {
            addr: listener.local_addr().expect("addr"),
            behaviour: Arc::new(Mutex::new(behaviour)),
            connections: Arc::default(),
            requests: Arc::default(),
            sent: Arc::default(),
        };
        let serving = target.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serving.connections.fetch_add(1, Ordering::SeqCst);
                let target = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let target = target.clone();
                        async move { Ok::<_, Infallible>(target.respond(request).await) }
                    });
                    // A client that stops reading ends the connection with an error: expected.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        target
    }

    fn set(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn spec(&self, timeout: Duration) -> MonitorSpec {
        spec(&format!("http://{}", self.addr), timeout)
    }

    async fn respond(&self, request: Request<hyper::body::Incoming>) -> Response<Body> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                path: request.uri().path().to_owned(),
                user_agent: request
                    .headers()
                    .get("user-agent")
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            });
        let behaviour = self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut response = Response::builder();
        let body = match behaviour {
            Behaviour::Answer {
                status,
                content_type,
                location,
                body,
            } => {
                response = response.status(status);
                if let Some(content_type) = content_type {
                    response = response.header("content-type", content_type);
                }
                if let Some(location) = location {
                    response = response.header("location", location);
                }
                Full::new(Bytes::from_static(body.as_bytes())).boxed()
            }
            Behaviour::Late(delay) => {
                tokio::time::sleep(delay).await;
                Full::new(Bytes::from_static(b"late")).boxed()
            }
            Behaviour::Dribble(every) => {
                response = response.header("content-length", "1000");
                let chunks = futures_util::stream::unfold(0, move |sent| async move {
                    if sent >= 1000 {
                        return None;
                    }
                    tokio::time::sleep(every).await;
                    Some((Ok(Frame::data(Bytes::from_static(&[b'x'; 10]))), sent + 10))
                });
                BodyExt::boxed(StreamBody::new(chunks))
            }
            Behaviour::Big { bytes } => {
                const CHUNK: &[u8] = &[b'x'; 64 * 1024];
                response = response
                    .header("content-type", "text/plain")
                    .header("content-length", bytes.to_string());
                let sent = Arc::clone(&self.sent);
                let chunks = futures_util::stream::iter((0..bytes).step_by(CHUNK.len())).map(
                    move |offset| {
                        let len = CHUNK.len().min(bytes - offset);
                        sent.fetch_add(len, Ordering::SeqCst);
                        Ok(Frame::data(Bytes::from_static(&CHUNK[..len])))
                    },
                );
                BodyExt::boxed(StreamBody::new(chunks))
            }
        };
        response.body(body).expect("response")
    }
}

fn spec(url: &str, timeout: Duration) -> MonitorSpec {
    MonitorSpec {
        expect_status: Default::default(),
        cert_warn_days: 14,
        tls_verify: true,
        url: url.parse().expect("url"),
        path: "/health".to_owned(),
        emails: Vec::new(),
        interval: Duration::from_secs(30),
        timeout,
        unhealthy: 2,
        healthy: 2,
        notify: Vec::new(),
        push: None,
    }
}

fn prober() -> Prober {
    Prober::new().expect("prober")
}

#[track_caller]
/// The body the probe kept, as JSON text.
fn body_text(record: &CheckRecord) -> Option<&str> {
    record.body.as_ref().map(JsonBody::as_str)
}

fn assert_check(record: &CheckRecord, outcome: Outcome, reason: Reason, detail: Option<&str>) {
    assert_eq!(
        (record.outcome, record.reason, record.detail.as_deref()),
        (outcome, reason, detail),
        "{record:?}"
    );
}

#[tokio::test]
async fn answers_flip_between_checks() {
    let target = Target::start(answer(200, None, "")).await;
    let prober = prober();
    let spec = target.spec(PATIENT);

    let before = chrono::Utc::now();
    let record = prober.check(&spec).await;
    assert_check(&record, Outcome::Pass, Reason::Ok, None);
    assert_eq!(record.http_status, Some(200));
    assert!(
        record.time >= before && record.time <= chrono::Utc::now(),
        "{record:?}"
    );
    assert!(record.latency < PATIENT, "{record:?}");

    target.set(answer(503, Some("text/plain"), "down for maintenance"));
    let record = prober.check(&spec).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::StatusCode,
        Some("HTTP 503 Service Unavailable"),
    );
    assert_eq!(record.http_status, Some(503));

    target.set(answer(200, Some("text/plain"), "OK"));
    assert_check(&prober.check(&spec).await, Outcome::Pass, Reason::Ok, None);
}

#[tokio::test]
async fn health_json_bodies() {
    let health = Some("application/health+json");
    let target = Target::start(answer(200, health, r#"{"status":"pass"}"#)).await;
    let prober = prober();
    let spec = target.spec(PATIENT);

    let record = prober.check(&spec).await;
    assert_check(&record, Outcome::Pass, Reason::Ok, None);
    assert_eq!(body_text(&record), Some(r#"{"status":"pass"}"#));

    target.set(answer(200, health, r#"{"status":"warn"}"#));
    assert_check(
        &prober.check(&spec).await,
        Outcome::Warn,
        Reason::BodyWarn,
        Some("status \"warn\" in body"),
    );

    target.set(answer(
        200,
        health,
        r#"{"status":"fail","output":"db down"}"#,
    ));
    let record = prober.check(&spec).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::BodyFail,
        Some("status \"fail\" in body"),
    );
    let body = record.body.expect("body").to_value().expect("JSON");
    assert_eq!(body["output"], "db down");

    target.set(answer(200, health, "<html>garbage\u{7}</html>"));
    let record = prober.check(&spec).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::BodyInvalid,
        Some("body says application/health+json but is not JSON"),
    );
    assert_eq!(record.body, None);
}

#[tokio::test]
async fn spring_style_bodies() {
    let json = Some("application/vnd.spring-boot.actuator.v3+json");
    let target = Target::start(answer(
        200,
        json,
        r#"{"status":"UP","groups":["liveness"]}"#,
    ))
    .await;
    let prober = prober();
    let spec = target.spec(PATIENT);
    assert_check(&prober.check(&spec).await, Outcome::Pass, Reason::Ok, None);

    target.set(answer(200, json, r#"{"status":"DOWN"}"#));
    assert_check(
        &prober.check(&spec).await,
        Outcome::Fail,
        Reason::BodyFail,
        Some("status \"DOWN\" in body"),
    );

    // Spring answers 503 when down; the status code decides, and the body is kept.
    target.set(answer(503, json, r#"{"status":"OUT_OF_SERVICE"}"#));
    let record = prober.check(&spec).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::StatusCode,
        Some("HTTP 503 Service Unavailable"),
    );
    assert_eq!(body_text(&record), Some(r#"{"status":"OUT_OF_SERVICE"}"#));
}

#[tokio::test]
async fn a_late_answer_is_a_timeout() {
    let target = Target::start(Behaviour::Late(Duration::from_secs(5))).await;
    let record = prober().check(&target.spec(SHORT)).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::Timeout,
        Some("no answer within 300 ms"),
    );
    assert_eq!(record.http_status, None);
    assert!(
        record.latency >= SHORT && record.latency < SHORT * 3,
        "{record:?}"
    );
}

#[tokio::test]
async fn a_body_dribbled_past_the_timeout_is_a_timeout() {
    // The head comes at once; the whole body would take 100 x 20 ms = 2 s.
    let target = Target::start(Behaviour::Dribble(Duration::from_millis(20))).await;
    let record = prober().check(&target.spec(SHORT)).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::Timeout,
        Some("body not complete within 300 ms"),
    );
    assert_eq!(record.http_status, Some(200));
    assert!(
        record.latency >= SHORT && record.latency < SHORT * 3,
        "{record:?}"
    );
}

#[tokio::test]
async fn a_refused_connection() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let record = prober()
        .check(&spec(&format!("http://127.0.0.1:{port}"), PATIENT))
        .await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::Connect,
        Some("connection refused"),
    );
    assert_eq!(record.http_status, None);
}

#[tokio::test]
async fn a_huge_body_is_read_to_the_limit_only_and_passes() {
    let target = Target::start(Behaviour::Big {
        bytes: 10 * 1024 * 1024,
    })
    .await;
    let prober = prober();
    let record = prober.check(&target.spec(PATIENT)).await;
    assert_check(&record, Outcome::Pass, Reason::Ok, None);
    assert_eq!(record.body, None);

    // Far more than the kernel's socket buffers can hold: the target cannot hand it all over
    // unless the probe reads it, which it must not.
    let total = 200 * 1024 * 1024;
    target.set(Behaviour::Big { bytes: total });
    target.sent.store(0, Ordering::SeqCst);
    let record = prober.check(&target.spec(PATIENT)).await;
    assert_check(&record, Outcome::Pass, Reason::Ok, None);
    let sent = target.sent.load(Ordering::SeqCst);
    assert!(sent < total / 4, "the target handed over {sent} bytes");
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let target = Target::start(Behaviour::Answer {
        status: 302,
        content_type: None,
        location: Some("/elsewhere"),
        body: "",
    })
    .await;
    let record = prober().check(&target.spec(PATIENT)).await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::StatusCode,
        Some("HTTP 302 Found, redirect to /elsewhere"),
    );
    assert_eq!(record.http_status, Some(302));
    let paths: Vec<String> = target
        .requests()
        .into_iter()
        .map(|seen| seen.path)
        .collect();
    assert_eq!(paths, ["/health"]);
}

#[tokio::test]
async fn the_user_agent_names_the_version() {
    let target = Target::start(answer(200, None, "")).await;
    prober().check(&target.spec(PATIENT)).await;
    let seen = target.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].user_agent.as_deref(),
        Some(format!("healthchecker/{}", healthchecker_server::VERSION).as_str())
    );
}

#[tokio::test]
async fn checks_reuse_one_kept_alive_connection() {
    let target = Target::start(answer(
        200,
        Some("application/health+json"),
        r#"{"status":"pass"}"#,
    ))
    .await;
    let prober = prober();
    let spec = target.spec(PATIENT);
    for _ in 0..10 {
        assert_check(&prober.check(&spec).await, Outcome::Pass, Reason::Ok, None);
    }
    // A clone shares the pool.
    let clone = prober.clone();
    assert_check(&clone.check(&spec).await, Outcome::Pass, Reason::Ok, None);
    assert_eq!(target.requests().len(), 11);
    assert_eq!(target.connections.load(Ordering::SeqCst), 1);
}

/// A raw TCP target on 127.0.0.1:0: on each connection it reads one request head, writes
/// `answer` and closes. Counts the connections.
fn raw_target(answer: Vec<u8>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    std::thread::spawn(move || {
        while let Ok((mut stream, _)) = listener.accept() {
            counter.fetch_add(1, Ordering::SeqCst);
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(&answer);
            // Dropping the stream closes the connection.
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn a_body_cut_short_is_truncated() {
    let (addr, _) = raw_target(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"status\":"
            .to_vec(),
    );
    let record = prober()
        .check(&spec(&format!("http://{addr}"), PATIENT))
        .await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::BodyTruncated,
        Some("connection closed before the end of the body"),
    );
    assert_eq!(record.http_status, Some(200));
    assert!(record.latency < PATIENT, "{record:?}");
}

#[tokio::test]
async fn a_chunked_body_cut_short_is_truncated() {
    let (addr, _) =
        raw_target(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec());
    let record = prober()
        .check(&spec(&format!("http://{addr}"), PATIENT))
        .await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::BodyTruncated,
        Some("connection closed before the end of the body"),
    );
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..1000 {
        answer.extend_from_slice(format!("x-filler-{i}: {}\r\n", "y".repeat(100)).as_bytes());
    }
    answer.extend_from_slice(b"content-length: 0\r\n\r\n");
    let (addr, _) = raw_target(answer);
    let record = prober()
        .check(&spec(&format!("http://{addr}"), PATIENT))
        .await;
    assert_eq!(
        (record.outcome, record.reason),
        (Outcome::Fail, Reason::Other),
        "{record:?}"
    );
}

#[tokio::test]
async fn a_closed_connection_without_an_answer() {
    let (addr, connections) = raw_target(Vec::new());
    let record = prober()
        .check(&spec(&format!("http://{addr}"), PATIENT))
        .await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::Connect,
        Some("connection closed before an answer"),
    );
    // A new connection that fails is not a kept-alive race: it is not asked again.
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_tls_failure() {
    let target = Target::start(answer(200, None, "")).await;
    let record = prober()
        .check(&spec(&format!("https://{}", target.addr), PATIENT))
        .await;
    assert_eq!(
        (record.outcome, record.reason),
        (Outcome::Fail, Reason::Tls),
        "{record:?}"
    );
    let detail = record.detail.expect("detail");
    assert!(detail.starts_with("TLS"), "{detail}");
}

/// What a [`scripted_target`] does with one request.
#[derive(Debug, Clone)]
enum Reply {
    /// Write these bytes, and wait for the next request on the connection.
    Answer(&'static [u8]),
    /// Write these bytes, then close the connection (without having said so).
    AnswerAndClose(&'static [u8]),
    /// Close the connection without answering.
    Close,
}

/// A raw TCP target on 127.0.0.1:0 that keeps connections open between requests.
struct ScriptedTarget {
    addr: SocketAddr,
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
    /// Request heads read, on all connections.
    requests: Arc<AtomicUsize>,
    /// Receives the number of each connection the target closed, once closed.
    closed: std::sync::mpsc::Receiver<usize>,
}

impl ScriptedTarget {
    fn spec(&self) -> MonitorSpec {
        spec(&format!("http://{}", self.addr), PATIENT)
    }

    /// (connections, requests) so far.
    fn counts(&self) -> (usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.requests.load(Ordering::SeqCst),
        )
    }
}

/// Starts a [`ScriptedTarget`]: `script(connection, request)` says what to do with request
/// `request` (from 0) on connection `connection` (from 0). Each connection has its own thread.
fn scripted_target(script: fn(usize, usize) -> Reply) -> ScriptedTarget {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let (accepted, seen) = (Arc::clone(&connections), Arc::clone(&requests));
    std::thread::spawn(move || {
        while let Ok((mut stream, _)) = listener.accept() {
            let connection = accepted.fetch_add(1, Ordering::SeqCst);
            let (seen, closed_tx) = (Arc::clone(&seen), closed_tx.clone());
            std::thread::spawn(move || {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                for request in 0.. {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            // The probe closed the connection (or went quiet): done.
                            _ => return,
                        }
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    match script(connection, request) {
                        Reply::Answer(answer) => {
                            if stream.write_all(answer).is_err() {
                                return;
                            }
                        }
                        Reply::AnswerAndClose(answer) => {
                            let _ = stream.write_all(answer);
                            break;
                        }
                        Reply::Close => break,
                    }
                }
                drop(stream);
                let _ = closed_tx.send(connection);
            });
        }
    });
    ScriptedTarget {
        addr,
        connections,
        requests,
        closed,
    }
}

const OK_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK";

#[tokio::test]
async fn an_idle_connection_the_app_closed_is_not_used() {
    // Every connection carries one answer, then the app closes it without saying so (its
    // keep-alive timeout was shorter than the interval).
    let target = scripted_target(|_, _| Reply::AnswerAndClose(OK_ANSWER));
    let prober = prober();
    for round in 1..=3 {
        assert_check(
            &prober.check(&target.spec()).await,
            Outcome::Pass,
            Reason::Ok,
            None,
        );
        let closed = target.closed.recv_timeout(PATIENT).expect("closed");
        assert_eq!(closed, round - 1);
    }
    assert_eq!(target.counts(), (3, 3));
}

#[tokio::test]
async fn a_connection_closed_as_the_request_goes_out_is_asked_again() {
    // The first connection answers once, then closes on the second request, as if the app's
    // keep-alive timer fired just as it arrived; a new connection answers.
    let target = scripted_target(|connection, request| match (connection, request) {
        (0, 0) => Reply::Answer(OK_ANSWER),
        (0, _) => Reply::Close,
        _ => Reply::Answer(OK_ANSWER),
    });
    let prober = prober();
    for _ in 0..3 {
        assert_check(
            &prober.check(&target.spec()).await,
            Outcome::Pass,
            Reason::Ok,
            None,
        );
    }
    // The second check was sent twice (once on each connection); the third reused the second.
    assert_eq!(target.counts(), (2, 4));
}

#[tokio::test]
async fn a_kept_alive_connection_is_asked_again_once_only() {
    // The first connection answers once, then closes on the next request; so do all the others
    // (without answering at all).
    let target = scripted_target(|connection, request| match (connection, request) {
        (0, 0) => Reply::Answer(OK_ANSWER),
        _ => Reply::Close,
    });
    let prober = prober();
    let spec = target.spec();
    assert_check(&prober.check(&spec).await, Outcome::Pass, Reason::Ok, None);
    assert_check(
        &prober.check(&spec).await,
        Outcome::Fail,
        Reason::Connect,
        Some("connection closed before an answer"),
    );
    // On the kept-alive connection, then once on a new one: not more.
    assert_eq!(target.counts(), (2, 3));
}

#[tokio::test]
async fn a_chunked_body_is_read_whole_and_the_connection_reused() {
    let target = scripted_target(|_, _| {
        Reply::Answer(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\n\
              transfer-encoding: chunked\r\n\r\n\
              7;part=1\r\n{\"statu\r\na\r\ns\":\"warn\"}\r\n0\r\nx-checked: yes\r\n\r\n",
        )
    });
    let prober = prober();
    for _ in 0..3 {
        let record = prober.check(&target.spec()).await;
        assert_check(
            &record,
            Outcome::Warn,
            Reason::BodyWarn,
            Some("status \"warn\" in body"),
        );
        assert_eq!(body_text(&record), Some(r#"{"status":"warn"}"#));
    }
    assert_eq!(target.counts(), (1, 3));
}

#[tokio::test]
async fn an_http_1_0_body_ends_with_the_connection() {
    let (addr, connections) = raw_target(
        b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"warn\"}".to_vec(),
    );
    let prober = prober();
    let spec = spec(&format!("http://{addr}"), PATIENT);
    for _ in 0..2 {
        let record = prober.check(&spec).await;
        assert_check(
            &record,
            Outcome::Warn,
            Reason::BodyWarn,
            Some("status \"warn\" in body"),
        );
        assert_eq!(body_text(&record), Some(r#"{"status":"warn"}"#));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_close_is_honoured() {
    // The app says close, but would answer again on the connection: it must not be asked.
    let target = scripted_target(|_, _| {
        Reply::Answer(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nOK")
    });
    let prober = prober();
    for _ in 0..3 {
        assert_check(
            &prober.check(&target.spec()).await,
            Outcome::Pass,
            Reason::Ok,
            None,
        );
    }
    assert_eq!(target.counts(), (3, 3));
}

#[tokio::test]
async fn folded_header_lines_are_unfolded() {
    // RFC 9112 §5.2: a user agent replaces obsolete line folding with spaces before it reads a
    // field. Folded, the Content-Type still says health+json, which this body is not.
    let target = scripted_target(|_, _| {
        Reply::Answer(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/health+json;\r\n charset=utf-8\r\n\
              x-note: one\r\n\ttwo\r\ncontent-length: 7\r\n\r\ngarbage",
        )
    });
    let prober = prober();
    for _ in 0..2 {
        assert_check(
            &prober.check(&target.spec()).await,
            Outcome::Fail,
            Reason::BodyInvalid,
            Some("body says application/health+json but is not JSON"),
        );
    }
    assert_eq!(target.counts(), (1, 2));
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let target = scripted_target(|_, _| {
        Reply::Answer(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n\
              HTTP/1.1 200 OK\r\ncontent-type: application/health+json\r\n\
              content-length: 17\r\n\r\n{\"status\":\"warn\"}",
        )
    });
    let prober = prober();
    for _ in 0..3 {
        let record = prober.check(&target.spec()).await;
        assert_check(
            &record,
            Outcome::Warn,
            Reason::BodyWarn,
            Some("status \"warn\" in body"),
        );
        assert_eq!(record.http_status, Some(200));
    }
    assert_eq!(target.counts(), (1, 3));
}

#[tokio::test]
async fn chunk_lines_end_in_crlf() {
    // RFC 9112 §7.1: a bare LF may end a head line, never a chunk line; the body is broken
    // there, and the connection is not used again.
    let target = scripted_target(|_, _| {
        Reply::Answer(
            b"HTTP/1.1 200 OK\ncontent-type: application/json\ntransfer-encoding: chunked\n\n\
              11\n{\"status\":\"pass\"}\n0\n\n",
        )
    });
    let prober = prober();
    for _ in 0..2 {
        let record = prober.check(&target.spec()).await;
        assert_check(
            &record,
            Outcome::Fail,
            Reason::BodyTruncated,
            Some("connection closed before the end of the body"),
        );
        assert_eq!(record.http_status, Some(200));
    }
    assert_eq!(target.counts(), (2, 2));
}

#[tokio::test]
async fn http_1_0_with_transfer_encoding_is_refused() {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing; the answer is
    // discarded and the connection closed.
    let target = scripted_target(|_, _| {
        Reply::Answer(
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n\
              2\r\nOK\r\n0\r\n\r\n",
        )
    });
    let prober = prober();
    for _ in 0..2 {
        let record = prober.check(&target.spec()).await;
        assert_check(
            &record,
            Outcome::Fail,
            Reason::Other,
            Some("malformed HTTP response: unexpected transfer-encoding parsed"),
        );
        assert_eq!(record.http_status, None);
    }
    assert_eq!(target.counts(), (2, 2));
}

#[tokio::test]
async fn the_apps_keep_alive_timeout_is_honoured() {
    // The app keeps its connections open, but says it closes idle ones after 1 s: less than
    // the probe's margin, so the probe does not keep them at all.
    let brief = scripted_target(|_, _| {
        Reply::Answer(b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nOK")
    });
    // Node's default: 5 s, so a connection is kept for 4 s.
    let node = scripted_target(|_, _| {
        Reply::Answer(
            b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\
              content-length: 2\r\n\r\nOK",
        )
    });
    let prober = prober();
    for _ in 0..3 {
        for target in [&brief, &node] {
            assert_check(
                &prober.check(&target.spec()).await,
                Outcome::Pass,
                Reason::Ok,
                None,
            );
        }
    }
    assert_eq!(brief.counts(), (3, 3));
    assert_eq!(node.counts(), (1, 3));
}

/// A TLS server on 127.0.0.1:0 whose certificate (for 127.0.0.1, from `tests/data`) was issued
/// by a CA that nothing trusts. It only does handshakes.
async fn untrusted_tls_target() -> SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let certificate = CertificateDer::from(include_bytes!("data/localhost.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("data/localhost.key.der").to_vec(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .expect("certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            // The probe refuses the certificate: the handshake fails, as it should.
            tokio::spawn(async move { acceptor.accept(stream).await.map(drop) });
        }
    });
    addr
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_failure() {
    let addr = untrusted_tls_target().await;
    let record = prober()
        .check(&spec(&format!("https://{addr}"), PATIENT))
        .await;
    assert_eq!(
        (record.outcome, record.reason, record.http_status),
        (Outcome::Fail, Reason::Tls, None),
        "{record:?}"
    );
    let detail = record.detail.expect("detail");
    assert!(
        detail.starts_with("TLS: invalid peer certificate"),
        "{detail}"
    );
}

/// The thread's CPU time so far (user + system), from `/proc/thread-self/stat`, in seconds.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second)
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// Runs `checks` checks, `concurrency` at a time, on a single-threaded runtime of this thread,
/// and prints the CPU time of this thread per check (the target runs on another thread).
fn measure<F, Fut>(name: &str, checks: usize, concurrency: usize, check: F)
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        for _ in 0..concurrency * 10 {
            check().await;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let cpu = thread_cpu_seconds();
        let wall = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let check = check.clone();
                let done = Arc::clone(&done);
                tokio::task::spawn_local(async move {
                    while done.fetch_add(1, Ordering::SeqCst) < checks && Instant::now() < deadline {
                        check().await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("worker");
        }
        let done = done.load(Ordering::SeqCst).min(checks) as f64;
        let cpu = thread_cpu_seconds() - cpu;
        println!(
            "{name:<20} {concurrency:>3} at a time: {:>5.1} us CPU per check, {:>5.1} us wall per check ({done} checks)",
            cpu * 1e6 / done,
            wall.elapsed().as_secs_f64() * 1e6 / done,
        );
    });
}

/// CPU per check against a loopback keep-alive target: the prober, and plain reqwest for
/// comparison. A measurement, not a test: `cargo test --release -p healthchecker-server --test
/// probe -- --ignored --nocapture cpu_per_check`.
#[test]
#[ignore = "a measurement; run it by hand, in release mode"]
fn cpu_per_check() {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let target = Target::start(answer(
                200,
                Some("application/health+json"),
                r#"{"status":"pass"}"#,
            ))
            .await;
            addr_tx.send(target.addr).expect("send");
            std::future::pending::<()>().await;
        });
    });
    let addr = addr_rx.recv().expect("target");
    for concurrency in [1, 16] {
        let prober = prober();
        let spec = Arc::new(spec(&format!("http://{addr}"), PATIENT));
        measure("prober", 40_000, concurrency, move || {
            let prober = prober.clone();
            let spec = Arc::clone(&spec);
            async move {
                let record = prober.check(&spec).await;
                assert_eq!(record.outcome, Outcome::Pass, "{record:?}");
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("healthchecker")
            .build()
            .expect("reqwest");
        let url = format!("http://{addr}/health");
        measure("reqwest, bare", 40_000, concurrency, move || {
            let client = client.clone();
            let url = url.clone();
            async move {
                let response = client.get(&url).send().await.expect("send");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("body");
            }
        });
    }
}

/// The process's resident set size, from `/proc/self/status`, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .expect("VmRSS value")
        .parse()
        .expect("VmRSS number");
    kib * 1024
}

/// Set (to the number of targets) only in the child process that [`memory_per_idle_connection`]
/// starts to serve its targets, so that their memory is not counted with the probe's.
const MEMORY_FARM: &str = "HEALTHCHECKER_PROBE_MEMORY_FARM";

/// The target farm of [`memory_per_idle_connection`], in a process of its own: as many keep-alive
/// HTTP/1.1 targets on 127.0.0.1 as `MEMORY_FARM` says, each on its own port; prints `farm
/// <addr>` for each, then serves until its standard input closes. Does nothing when run any
/// other way.
#[test]
#[ignore = "the target farm of memory_per_idle_connection, run by it in a child process"]
fn memory_farm() {
    let Ok(count) = std::env::var(MEMORY_FARM) else {
        return;
    };
    let count: usize = count.parse().expect("count");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut out = std::io::stdout().lock();
        for _ in 0..count {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            writeln!(out, "farm {}", listener.local_addr().expect("addr")).expect("print");
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(|_request| async {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/health+json")
                                    .body(Full::new(Bytes::from_static(br#"{"status":"pass"}"#)))
                                    .expect("response"),
                            )
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        }
        out.flush().expect("flush");
        drop(out);
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
            .await
            .expect("stdin")
            .expect("read stdin");
    });
}

/// Memory per idle kept-alive connection: checks each of 2,000 loopback targets (each its own
/// host and port, so each its own pooled connection) once, and prints how much the resident set
/// grew per connection. The targets run in a child process. A measurement, not a test: `cargo
/// test --release -p healthchecker-server --test probe -- --ignored --nocapture
/// memory_per_idle_connection`.
#[test]
#[ignore = "a measurement; run it by hand, in release mode"]
fn memory_per_idle_connection() {
    use std::io::BufRead as _;

    const TARGETS: usize = 2_000;
    let mut farm = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "memory_farm", "--nocapture"])
        .env(MEMORY_FARM, TARGETS.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("farm");
    let mut lines = std::io::BufReader::new(farm.stdout.take().expect("farm stdout")).lines();
    let mut addrs = Vec::with_capacity(TARGETS);
    while addrs.len() < TARGETS {
        let line = lines.next().expect("farm ended early").expect("farm line");
        if let Some(addr) = line.strip_prefix("farm ") {
            addrs.push(addr.to_owned());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let prober = prober();
        let specs: Vec<MonitorSpec> = addrs
            .iter()
            .map(|addr| spec(&format!("http://{addr}"), PATIENT))
            .collect();
        // Warm up on one target, so that what is made once is made before the first reading.
        for _ in 0..100 {
            let record = prober.check(&specs[0]).await;
            assert_eq!(record.outcome, Outcome::Pass, "{record:?}");
        }
        // Each check in a task of its own, as the server runs them: an idle connection must not
        // keep anything of its last check's task alive.
        let check = |spec: &MonitorSpec| {
            let (prober, spec) = (prober.clone(), spec.clone());
            async move {
                let record = tokio::spawn(async move { prober.check(&spec).await })
                    .await
                    .expect("check task");
                assert_eq!(record.outcome, Outcome::Pass, "{record:?}");
            }
        };
        let before = rss_bytes();
        for spec in &specs[1..] {
            check(spec).await;
        }
        let after = rss_bytes();
        // A second round on the same connections must not grow anything.
        for spec in &specs[1..] {
            check(spec).await;
        }
        let again = rss_bytes();
        let connections = (TARGETS - 1) as f64;
        println!(
            "{} idle kept-alive connections: {:.1} MiB more resident, {:.0} bytes per connection; \
             after a second round on them: {:.0} bytes per connection",
            TARGETS - 1,
            (after - before) as f64 / (1024.0 * 1024.0),
            (after - before) as f64 / connections,
            again.saturating_sub(before) as f64 / connections,
        );
    });
    drop(farm.stdin.take());
    let _ = farm.wait();
}
