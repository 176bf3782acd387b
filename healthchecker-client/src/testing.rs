//! A scripted stand-in for a healthchecker server, for tests (feature `test-util`).
//!
//! [`FakeServer`] listens on `127.0.0.1:0`, records every request (method, path with query,
//! headers, body) and answers each with the next scripted [`Reply`]. It plays the server's HTTP
//! contract only as far as the script says, so a test states exactly what the server answers
//! and checks exactly what the client sent. Nothing leaves loopback.
//!
//! ```
//! use healthchecker_client::testing::{FakeServer, Reply, monitor_view};
//! use healthchecker_client::{HealthCheckerServer, Monitor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeServer::start([Reply::json(201, monitor_view("nas", "http://127.0.0.1:9"))]).await?;
//! let server = HealthCheckerServer::at(fake.url(), "nas", "http://127.0.0.1:9")?.without_token();
//! assert!(server.monitor(Monitor::new()).await?.created);
//! assert_eq!(fake.requests()[0].method, "PUT");
//! assert_eq!(fake.requests()[0].path, "/api/v1/monitors/nas");
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// One request the fake server received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recorded {
    /// `GET`, `PUT`, `DELETE`, `POST`, ...
    pub method: String,
    /// The path with the query, as sent (percent-encoding kept), e.g. `/api/v1/monitors/a%20b`.
    pub path: String,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of the header `name` (any case).
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON, or `None` when it is empty or not JSON.
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    #[must_use]
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// This status with this body and content type.
    Body {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Never answer (until the client gives up): for timeout tests.
    Hang,
}

impl Reply {
    /// `status` with a JSON body.
    ///
    /// # Examples
    ///
    /// ```
    /// let reply = healthchecker_client::testing::Reply::json(200, serde_json::json!({"monitors": []}));
    /// ```
    #[must_use]
    pub fn json(status: u16, body: Value) -> Self {
        Reply::Body {
            status,
            content_type: "application/json".into(),
            body: body.to_string(),
        }
    }

    /// `status` with an empty body, e.g. `Reply::empty(204)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let reply = healthchecker_client::testing::Reply::empty(204);
    /// ```
    #[must_use]
    pub fn empty(status: u16) -> Self {
        Reply::Body {
            status,
            content_type: "text/plain".into(),
            body: String::new(),
        }
    }

    /// `status` with a plain-text body (not the server's format).
    ///
    /// # Examples
    ///
    /// ```
    /// let reply = healthchecker_client::testing::Reply::text(502, "Bad Gateway");
    /// ```
    #[must_use]
    pub fn text(status: u16, body: &str) -> Self {
        Reply::Body {
            status,
            content_type: "text/plain".into(),
            body: body.to_owned(),
        }
    }

    /// `status` with the server's error body
    /// `{"error": {"code": code, "message": message, "field": field}}`.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::testing::Reply;
    /// let reply = Reply::error(422, "invalid_field", "interval 3: from 5 to 300 seconds", Some("interval"));
    /// ```
    #[must_use]
    pub fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Self {
        Reply::json(
            status,
            json!({"error": {"code": code, "message": message, "field": field}}),
        )
    }
}

/// A monitor view as the server answers it (state `UNKNOWN`, the defaults), for replies.
///
/// # Examples
///
/// ```
/// let view = healthchecker_client::testing::monitor_view("nas", "http://127.0.0.1:9090");
/// assert_eq!(view["state"], "UNKNOWN");
/// ```
#[must_use]
pub fn monitor_view(app: &str, url: &str) -> Value {
    json!({
        "app": app,
        "url": url,
        "path": "/health",
        "email": [],
        "interval": 30,
        "timeout": 5,
        "unhealthy": 2,
        "healthy": 10,
        "state": "UNKNOWN",
        "paused": false,
        "passes": 0,
        "fails": 0,
        "since": null,
        "registered_at": "2026-01-02T03:04:05Z",
        "last_check": null,
        "last_transition": null
    })
}

/// A check record as the server answers it, for replies.
///
/// # Examples
///
/// ```
/// let record = healthchecker_client::testing::check_record("pass", "ok", "HEALTHY");
/// assert_eq!(record["http_status"], 200);
/// ```
#[must_use]
pub fn check_record(outcome: &str, reason: &str, state: &str) -> Value {
    let http_status = if outcome == "fail" && reason != "status_code" {
        Value::Null
    } else {
        json!(200)
    };
    json!({
        "time": "2026-01-02T03:04:05Z",
        "outcome": outcome,
        "reason": reason,
        "http_status": http_status,
        "latency_ms": 1.5,
        "state": state,
        "body": null,
        "detail": null
    })
}

#[derive(Default)]
struct Shared {
    requests: Vec<Recorded>,
    replies: VecDeque<Reply>,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A test that panicked while holding the lock has failed already; keep what was recorded.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted healthchecker server on `127.0.0.1:0`; stops when dropped.
///
/// When the script runs out, it answers `500` with the error code `unscripted`, so a test that
/// sends more than it planned fails clearly.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    url: String,
    shared: SharedState,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("requests", &self.requests.len())
            .field("replies", &self.replies.len())
            .finish()
    }
}

impl FakeServer {
    /// Starts the server with the replies to give, in order. Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// The I/O error when `127.0.0.1:0` cannot be bound.
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared: SharedState = Arc::new(Mutex::new(Shared {
            requests: Vec::new(),
            replies: replies.into_iter().collect(),
        }));
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            // Ends only when the task is aborted (on drop) or the listener fails.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a reply at the end of the script.
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared).replies.push_back(reply);
    }

    /// Every request received so far, oldest first.
    ///
    /// # Examples
    ///
    /// See the [module](self) documentation.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared).requests.clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(shared): State<SharedState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    // Record before answering, so a test that got its answer sees its request.
    let reply = {
        let mut shared = lock(&shared);
        shared.requests.push(recorded);
        shared.replies.pop_front()
    };
    match reply {
        Some(Reply::Body {
            status,
            content_type,
            body,
        }) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
        Some(Reply::Hang) => std::future::pending().await,
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json".to_owned())],
            json!({"error": {"code": "unscripted", "message": "the fake server has no reply scripted for this request", "field": null}})
                .to_string(),
        )
            .into_response(),
    }
}

/// The interfaces of the network namespace this process is in (from `/proc/self/net/dev`, which,
/// unlike `/sys/class/net`, is per namespace).
pub fn interfaces() -> Vec<String> {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    dev.lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Whether this process sees no interface but `lo`, so that an mDNS daemon cannot reach a real
/// network.
pub fn network_is_isolated() -> bool {
    let names = interfaces();
    !names.is_empty() && names.iter().all(|name| name == "lo")
}

/// Fails `test` unless [`network_is_isolated`]: every test that starts an mDNS daemon asks this
/// first. Such tests are `#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]`
/// and named `mdns_...`, so a plain `cargo test` reports them as ignored (never as passed
/// without running) and `cargo test -- --ignored mdns_` inside `unshare -n` runs them; asked
/// for anywhere else, they fail here, before any daemon starts.
///
/// # Panics
///
/// When another interface than `lo` is here, naming them.
pub fn assert_network_isolated(test: &str) {
    assert!(
        network_is_isolated(),
        "{test}: needs an isolated network namespace (only `lo`; interfaces here: {}): run it \
         inside `unshare -n sh -c 'ip link set lo up && cargo test --workspace -- --ignored mdns_'`, \
         as .ci/run does",
        interfaces().join(", ")
    );
}
