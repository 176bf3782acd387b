//! Router tests: every status code of the API, driven with `oneshot` and no socket, against a real
//! store in a temporary folder and a scripted checker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use healthchecker_server::api::{self, AppState};
use healthchecker_server::config::targets::AllowedTargets;
use healthchecker_server::config::{Config, Secret};
use healthchecker_server::health::Outcome;
use healthchecker_server::identity::Identity;
use healthchecker_server::monitors::{CheckFuture, Checker, Monitors, MonitorsOptions, Parts};
use healthchecker_server::probe::{CheckRecord, JsonBody, Reason};
use healthchecker_server::registry::MonitorSpec;
use healthchecker_server::store::{Store, StoreOptions};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// Every check passes at once.
struct AlwaysPass;

impl Checker for AlwaysPass {
    fn check(&self, _spec: Arc<MonitorSpec>) -> CheckFuture {
        Box::pin(async {
            CheckRecord {
                cert_not_after: None,
                cert_days_left: None,
                time: Utc::now(),
                outcome: Outcome::Pass,
                reason: Reason::Ok,
                http_status: Some(200),
                latency: Duration::from_millis(1),
                body: JsonBody::from_text(r#"{"status":"pass"}"#.to_owned()).ok(),
                body_digest: None,
                detail: None,
            }
        })
    }

    /// Scripted: this checker has no ICMP socket (the real refusal is tested in icmp.rs).
    fn admit(&self, spec: &MonitorSpec) -> Result<(), healthchecker_server::registry::FieldError> {
        if spec.kind() == healthchecker_server::registry::Kind::Icmp {
            return Err(healthchecker_server::registry::FieldError {
                field: "url".to_owned(),
                value: format!("{:?}", spec.url.as_str()),
                expected: "icmp:// checks need an ICMP socket (scripted refusal)".to_owned(),
            });
        }
        Ok(())
    }
}

/// The host name the router tests' server believes it runs on.
const TEST_HOST: &str = "test-host";

struct Harness {
    router: Router,
    store: Store,
    monitors: Monitors,
    _cancel: tokio_util::sync::DropGuard,
    _dir: tempfile::TempDir,
}

fn harness(token: Option<&str>) -> Harness {
    harness_with(|config| config.token = token.map(|token| Secret::new(token.to_owned())))
}

fn harness_with(configure: impl FnOnce(&mut Config)) -> Harness {
    harness_with_windows(configure, Vec::new())
}

/// A harness whose server has the scheduled maintenance `windows`.
fn harness_with_windows(
    configure: impl FnOnce(&mut Config),
    windows: Vec<healthchecker_server::config::maintenance::Window>,
) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.max_registrations_per_minute = None;
    configure(&mut config);
    config.data_dir = dir.path().to_owned();
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store opens");
    let cancel = CancellationToken::new();
    let options = MonitorsOptions {
        first_check_within: Duration::from_millis(20),
        max_monitors: config.max_monitors,
        ..MonitorsOptions::default()
    };
    let parts = Parts {
        store: store.clone(),
        checker: Arc::new(AlwaysPass),
        routes: Default::default(),
        windows,
        cancel: cancel.clone(),
        tasks: TaskTracker::new(),
    };
    let monitors = Monitors::start(parts, Vec::new(), options);
    let state = AppState::new(
        Arc::new(config),
        &Identity::for_host(TEST_HOST),
        monitors,
        store.clone(),
    );

    Harness {
        router: api::router_with(state.clone(), healthchecker_server::legacy::router(&state)),
        store,
        monitors: state.monitors.clone(),
        _cancel: cancel.drop_guard(),
        _dir: dir,
    }
}

impl Harness {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        }
        .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        (response.status(), json_of(response).await)
    }

    async fn put(&self, app: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            &format!("/api/v1/monitors/{app}"),
            Some(body.to_string()),
            None,
        )
        .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None, None).await
    }

    /// Whether reads need a token here.
    async fn guarded(&self) -> bool {
        self.get("/api/v1/monitors").await.0 == StatusCode::UNAUTHORIZED
    }

    async fn names(&self) -> Vec<String> {
        let (status, body) = self.get("/api/v1/monitors").await;
        assert_eq!(status, StatusCode::OK);
        body["monitors"]
            .as_array()
            .expect("list")
            .iter()
            .map(|monitor| monitor["app"].as_str().expect("name").to_owned())
            .collect()
    }
}

/// The body of `response` as JSON: `null` when empty, a string when it is not JSON (the
/// dashboard's HTML); for an event stream, its first frame as a string.
async fn json_of(response: axum::response::Response) -> Value {
    if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
    {
        let mut body = response.into_body();
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a first event within 10 s")
            .expect("a frame")
            .expect("no error");
        let data = frame.into_data().expect("data");
        return Value::String(String::from_utf8_lossy(&data).into_owned());
    }
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

fn assert_error(body: &Value, code: &str, field: Option<&str>) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["error"]["field"].as_str(), field, "{body}");
}

#[tokio::test]
async fn register_is_idempotent_201_then_200() {
    let h = harness(None);
    let body = json!({"url": "http://127.0.0.1:9", "email": "me@example.com", "interval": 10, "unhealthy": 2, "healthy": 4});
    let (status, created) = h.put("media-center", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["app"], "media-center");
    assert_eq!(created["state"], "UNKNOWN");
    assert_eq!(created["email"], json!(["me@example.com"]));
    assert_eq!(
        (created["interval"].as_u64(), created["timeout"].as_u64()),
        (Some(10), Some(5))
    );

    let (status, _) = h.put("media-center", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "unchanged");
    let mut changed = body;
    changed["interval"] = 20.into();
    let (status, updated) = h.put("media-center", changed).await;
    assert_eq!(status, StatusCode::OK, "updated");
    assert_eq!(updated["interval"], 20);
    assert_eq!(h.names().await, ["media-center"]);
}

/// Issue 23: the documented minimum interval, sent alone, is accepted; the default timeout is
/// derived from it rather than refused about a field the user never sent.
#[tokio::test]
async fn the_smallest_interval_alone_is_accepted() {
    let h = harness(None);
    let (status, created) = h
        .put("fast", json!({"url": "http://127.0.0.1:9", "interval": 5}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["interval"].as_u64(), created["timeout"].as_u64()),
        (Some(5), Some(4))
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let h = harness(None);
    let (status, _) = h.put("keep", json!({"url": "http://127.0.0.1:9"})).await;
    assert_eq!(status, StatusCode::CREATED);

    let long_name = "x".repeat(65);
    let cases: Vec<(&str, String, StatusCode, &str, Option<&str>)> = vec![
        (
            "a",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "a",
            "".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        // A valid registration with bytes after it is as malformed as any other bad JSON.
        (
            "a",
            format!("{} garbage", json!({"url": "http://127.0.0.1:9"})),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "a",
            json!({"url": "http://x", "interval": "ten"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("interval"),
        ),
        (
            "a",
            json!({"url": "http://x", "interval": 301}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("interval"),
        ),
        (
            "a",
            json!({"url": "http://x", "timeout": 1}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("timeout"),
        ),
        (
            "a",
            json!({"url": "http://x", "unhealthy": 11}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("unhealthy"),
        ),
        (
            "a",
            json!({"url": "http://x", "healthy": 1}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("healthy"),
        ),
        (
            "a",
            json!({"url": "ftp://x"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("url"),
        ),
        (
            "a",
            json!({"email": "me@example.com"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("url"),
        ),
        (
            "a",
            json!({"url": "http://x", "email": "not-an-address"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("email"),
        ),
        (
            "a",
            json!({"url": "http://x", "intervall": 10}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("intervall"),
        ),
        (
            "a",
            json!(["url"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("body"),
        ),
        (
            "bad%0Aname",
            json!({"url": "http://x"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("app"),
        ),
        (
            &long_name,
            json!({"url": "http://x"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("app"),
        ),
        (
            "a",
            format!(
                "{{\"url\": \"http://x\", \"path\": \"/{}\"}}",
                "p".repeat(70_000)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
        ),
    ];
    for (app, body, status, code, field) in cases {
        let (got, answer) = h
            .call(
                Method::PUT,
                &format!("/api/v1/monitors/{app}"),
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(got, status, "{body:.200} -> {answer}");
        assert_error(&answer, code, field);
        assert_eq!(
            h.names().await,
            ["keep"],
            "a refused request changes nothing"
        );
    }
    // an out-of-range value names the field, the value and the range
    let (_, answer) = h
        .put("a", json!({"url": "http://x", "interval": 301}))
        .await;
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("interval")
            && message.contains("301")
            && message.contains("from 5 to 300"),
        "{message}"
    );
    // and so does a refused update: the old registration stays as it was
    let (status, _) = h
        .put("keep", json!({"url": "http://127.0.0.1:9", "interval": 1}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, keep) = h.get("/api/v1/monitors/keep").await;
    assert_eq!(keep["interval"], 30);
}

#[tokio::test]
async fn unknown_apps_are_404_everywhere() {
    let h = harness(None);
    for (method, uri) in [
        (Method::GET, "/api/v1/monitors/ghost"),
        (Method::DELETE, "/api/v1/monitors/ghost"),
        (Method::GET, "/api/v1/monitors/ghost/log"),
        (Method::POST, "/api/v1/monitors/ghost/pause"),
        (Method::POST, "/api/v1/monitors/ghost/resume"),
        (Method::GET, "/api/v2/nothing"),
    ] {
        let (status, body) = h.call(method.clone(), uri, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_error(&body, "not_found", None);
    }
}

#[tokio::test]
async fn delete_pause_resume_and_the_log() {
    let h = harness(None);
    h.put(
        "app",
        json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2}),
    )
    .await;

    // the first check comes within first_check_within and lands in the log
    let deadline = Instant::now() + Duration::from_secs(10);
    let checks = loop {
        let (status, log) = h.get("/api/v1/monitors/app/log?limit=5").await;
        assert_eq!(status, StatusCode::OK);
        let checks = log["checks"].as_array().expect("checks").clone();
        if !checks.is_empty() || Instant::now() > deadline {
            break checks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(checks.len(), 1, "one check so far");
    assert_eq!(checks[0]["outcome"], "pass");
    assert_eq!(checks[0]["state"], "HEALTHY");
    let (_, one) = h.get("/api/v1/monitors/app").await;
    assert_eq!(one["state"], "HEALTHY");
    assert_eq!(one["transitions"][0]["to"], "HEALTHY");

    for limit in ["0", "-1", "abc", "100001"] {
        let (status, body) = h
            .get(&format!("/api/v1/monitors/app/log?limit={limit}"))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "limit={limit}");
        assert_error(&body, "invalid_field", Some("limit"));
    }

    let (status, paused) = h
        .call(Method::POST, "/api/v1/monitors/app/pause", None, None)
        .await;
    assert_eq!((status, &paused["paused"]), (StatusCode::OK, &json!(true)));
    let (status, resumed) = h
        .call(Method::POST, "/api/v1/monitors/app/resume", None, None)
        .await;
    assert_eq!(
        (status, &resumed["paused"]),
        (StatusCode::OK, &json!(false))
    );

    let (status, body) = h
        .call(Method::DELETE, "/api/v1/monitors/app", None, None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = h
        .call(Method::DELETE, "/api/v1/monitors/app", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(h.names().await.is_empty());
    h.store.flush().await.expect("flush");
}

#[tokio::test]
async fn token_guards_changes_not_reads() {
    let token = "s3cret-token-for-tests";
    let h = harness(Some(token));
    let body = json!({"url": "http://127.0.0.1:9"}).to_string();
    for given in [None, Some("wrong-token-xxxxxxxxx"), Some("")] {
        let (status, answer) = h
            .call(
                Method::PUT,
                "/api/v1/monitors/app",
                Some(body.clone()),
                given,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{given:?}");
        assert_error(&answer, "unauthorized", None);
        assert!(
            !answer.to_string().contains(token),
            "the token never appears in an answer"
        );
    }
    assert!(h.names().await.is_empty(), "reads stay open");
    let (status, _) = h
        .call(Method::PUT, "/api/v1/monitors/app", Some(body), Some(token))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (method, uri) in [
        (Method::POST, "/api/v1/monitors/app/pause"),
        (Method::POST, "/api/v1/monitors/app/resume"),
        (Method::DELETE, "/api/v1/monitors/app"),
    ] {
        let (status, _) = h.call(method.clone(), uri, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let (status, _) = h.call(method.clone(), uri, None, Some(token)).await;
        assert!(status.is_success(), "{method} {uri}: {status}");
    }
}

/// With a `read_token` and no `token` (apps register themselves, only the owner reads): reads
/// need the read token, and what a change or `/health` answers to anyone else holds no check
/// result (else registering again would read it back, one port at a time).
#[tokio::test]
async fn read_token_guards_reads_and_change_answers_show_no_results() {
    let h = harness_with(|config| {
        config.read_token = Some(Secret::new(READ_TOKEN.to_owned()));
    });
    let body = json!({"url": "http://127.0.0.1:9", "email": "me@example.com"}).to_string();
    let put = |token| {
        h.call(
            Method::PUT,
            "/api/v1/monitors/app",
            Some(body.clone()),
            token,
        )
    };
    assert_eq!(put(None).await.0, StatusCode::CREATED, "changes stay open");
    let (status, answer) = h.get("/api/v1/monitors").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&answer, "unauthorized", None);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HEALTHCHECKER_READ_TOKEN"))
    );
    // the first check lands (it passes at once)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, view) = h
            .call(Method::GET, "/api/v1/monitors/app", None, Some(READ_TOKEN))
            .await;
        assert_eq!(status, StatusCode::OK);
        if view["state"] == "HEALTHY" {
            break;
        }
        assert!(Instant::now() < deadline, "no check within 10 s: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, echo) = put(None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&echo["state"], &echo["last_check"], &echo["passes"]),
        (&json!("UNKNOWN"), &Value::Null, &json!(0)),
        "no result to whoever may not read: {echo}"
    );
    assert_eq!(
        echo["url"], "http://127.0.0.1:9/",
        "the registration sent is echoed"
    );
    let (_, echo) = put(Some(READ_TOKEN)).await;
    assert_eq!(echo["state"], "HEALTHY", "whole to whoever may read");
    let (status, paused) = h
        .call(Method::POST, "/api/v1/monitors/app/pause", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &paused["paused"],
            &paused["url"],
            &paused["email"],
            &paused["state"]
        ),
        (&json!(true), &json!(""), &json!([]), &json!("UNKNOWN")),
        "pausing shows nothing of someone else's monitor: {paused}"
    );
    // The maintenance routes (issue 17) echo the maintenance set or ended, nothing else.
    let (status, maintained) = h
        .call(
            Method::POST,
            "/api/v1/monitors/app/maintenance",
            Some(json!({"minutes": 60, "reason": "new disk"}).to_string()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{maintained}");
    assert_eq!(
        (
            &maintained["url"],
            &maintained["email"],
            &maintained["state"],
            &maintained["maintenance_reason"]
        ),
        (
            &json!(""),
            &json!([]),
            &json!("UNKNOWN"),
            &json!("new disk")
        ),
        "maintenance shows nothing of someone else's monitor but what it set: {maintained}"
    );
    assert!(maintained["maintenance_until"].is_string(), "{maintained}");
    let (status, ended) = h
        .call(
            Method::DELETE,
            "/api/v1/monitors/app/maintenance",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&ended["url"], &ended["maintenance_until"]),
        (&json!(""), &Value::Null),
        "{ended}"
    );
    let (_, health) = h.get("/health").await;
    assert_eq!(health["status"], "pass");
    assert!(health["checks"].get("monitors:count").is_none(), "{health}");
    let failing = &health["checks"]["monitors:failing"][0];
    assert_eq!(
        failing["status"], "pass",
        "whether a storm is on stays open"
    );
    assert!(
        failing.get("observedValue").is_none() && failing.get("output").is_none(),
        "no count of failing monitors to whoever may not read: {health}"
    );
    let (_, health) = h.call(Method::GET, "/health", None, Some(READ_TOKEN)).await;
    assert!(health["checks"]["monitors:count"].is_array(), "{health}");
    assert!(
        health["checks"]["monitors:failing"][0]["observedValue"].is_u64(),
        "{health}"
    );
}

#[tokio::test]
async fn abuse_limits_refuse_with_clear_answers_and_change_nothing() {
    let h = harness_with(|config| {
        config.allowed_email_domains = vec!["example.com".to_owned()];
        config.max_monitors = 2;
        config.max_registrations_per_minute = Some(4);
    });
    let (status, _) = h
        .put(
            "a",
            json!({"url": "http://127.0.0.1:9", "email": "ops@lab.example.com"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "subdomains are in their domain"
    );
    let (status, body) = h
        .put(
            "b",
            json!({"url": "http://127.0.0.1:9", "email": ["me@example.com", "x@spam.test"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_field", Some("email"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("x@spam.test") && m.contains("example.com"))
    );
    let (status, _) = h.put("b", json!({"url": "http://127.0.0.1:9"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = h.put("c", json!({"url": "http://127.0.0.1:9"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_error(&body, "monitor_limit", None);
    assert_eq!(h.names().await, ["a", "b"]);
    // that was the fourth registration this minute (refused ones count too): the fifth is
    // refused, with Retry-After
    let request = Request::put("/api/v1/monitors/a")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"url": "http://127.0.0.1:9"}).to_string()))
        .expect("request");
    let response = h.router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    assert_error(&json_of(response).await, "rate_limited", None);
}

#[tokio::test]
async fn dashboard_is_served_at_the_root() {
    let h = harness(None);
    let (status, page) = h.get("/").await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().expect("HTML");
    assert!(page.contains("<title>healthchecker</title>") && page.contains("assets/app.js"));
    let (status, script) = h.get("/assets/app.js").await;
    assert_eq!(status, StatusCode::OK);
    let script = script.as_str().expect("JavaScript");
    assert!(script.contains("api/v1/events") && script.contains("api/v1/uptime"));
    let (status, chart) = h.get("/assets/uPlot.iife.min.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(chart.as_str().expect("JavaScript").contains("uPlot"));
    let (status, missing) = h.get("/assets/nothing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&missing, "not_found", None);
}

#[tokio::test]
async fn own_health_counts_monitors_by_state() {
    let h = harness(None);
    h.put("a", json!({"url": "http://127.0.0.1:9"})).await;
    let (status, body) = h.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "pass");
    let total: u64 = body["checks"]["monitors:count"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|count| count["observedValue"].as_u64().expect("number"))
        .sum();
    assert_eq!(total, 1);
}

/// `serviceId` is the identity the server was given, not whatever this machine is called.
#[tokio::test]
async fn health_names_the_service_it_was_given() {
    let h = harness(None);
    let (status, body) = h.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["serviceId"], format!("healthchecker on {TEST_HOST}"));
}

/// The OpenAPI document names every route the router serves, and its schemas have exactly the
/// fields the real answers have.
#[tokio::test]
async fn openapi_agrees_with_the_routes_and_the_answers() {
    openapi_agrees(&harness(None), None).await;
}

/// The same with every guard on (`token`, `read_token`, `allowed_targets`,
/// `max_monitors_per_client`): without a token every operation still answers a documented status
/// (401 for reads and changes alike), and with it the answers are as documented.
#[tokio::test]
async fn openapi_agrees_with_every_guard_on() {
    let h = harness_with(|config| {
        config.token = Some(Secret::new(TOKEN.to_owned()));
        config.read_token = Some(Secret::new(READ_TOKEN.to_owned()));
        config.allowed_targets = AllowedTargets::parse(&["127.0.0.0/8".to_owned()]).expect("valid");
        config.max_monitors_per_client = Some(5);
    });
    openapi_agrees(&h, None).await;
    openapi_agrees(&h, Some(TOKEN)).await;
}

/// The token of the router tests with guards on, and their read token.
const TOKEN: &str = "change-token-for-tests";
const READ_TOKEN: &str = "read-token-for-tests";

async fn openapi_agrees(h: &Harness, token: Option<&str>) {
    let (status, doc) = h.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "the document stays open");
    assert_eq!(doc["info"]["version"], healthchecker_server::VERSION);
    let registration = json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2});
    let put = || {
        h.call(
            Method::PUT,
            "/api/v1/monitors/app",
            Some(registration.to_string()),
            token,
        )
    };
    put().await;

    // every documented operation is routed (answers something other than the fallback 404/405)
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            operations += 1;
            let uri = path.replace("{app}", "app");
            let body = (method == "put").then(|| registration.to_string());
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let (status, _) = h.call(method.clone(), &uri, body, token).await;
            let documented = operation["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {uri} answered {status}, not documented"
            );
            if status == StatusCode::UNAUTHORIZED {
                assert!(
                    operation["security"].is_array(),
                    "{method} {uri}: a 401 is documented with its security"
                );
            }
            if method == Method::DELETE {
                put().await;
            }
        }
    }
    assert_eq!(
        operations, 31,
        "the router serves twenty operations, four ping routes and the original's seven (legacy); document each"
    );
    if token.is_none() && h.guarded().await {
        return; // the answers below are read with the token
    }

    // schema properties == fields of real answers
    let schema_keys = |name: &str| -> Vec<String> {
        let mut keys: Vec<String> = doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    let get = |uri: &'static str| h.call(Method::GET, uri, None, token);
    let (_, monitor) = get("/api/v1/monitors/app").await;
    let mut monitor_keys = keys(&monitor);
    monitor_keys.retain(|key| key != "transitions");
    assert_eq!(monitor_keys, schema_keys("Monitor"));
    let (_, list) = get("/api/v1/monitors").await;
    assert_eq!(keys(&list["monitors"][0]), schema_keys("Monitor"));

    let deadline = Instant::now() + Duration::from_secs(10);
    let check = loop {
        let (_, log) = get("/api/v1/monitors/app/log").await;
        if let Some(check) = log["checks"].get(0) {
            break check.clone();
        }
        assert!(Instant::now() < deadline, "no check within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(keys(&check), schema_keys("Check"));
    let (_, monitor) = get("/api/v1/monitors/app").await;
    assert_eq!(keys(&monitor["transitions"][0]), schema_keys("Transition"));
    let (_, uptime) = get("/api/v1/monitors/app/uptime").await;
    assert_eq!(keys(&uptime), schema_keys("Uptime"));
    assert_eq!(keys(&uptime["windows"][0]), schema_keys("UptimeWindow"));
    assert_eq!(keys(&uptime["hourly"][0]), schema_keys("Bucket"));
    let (_, list) = get("/api/v1/uptime").await;
    assert_eq!(keys(&list), schema_keys("UptimeList"));
    assert_eq!(keys(&list["monitors"][0]), schema_keys("Glance"));
    let (_, list) = get("/api/v1/uptime?compact=true").await;
    assert_eq!(keys(&list["monitors"][0]), schema_keys("CompactGlance"));
    let (_, incidents) = get("/api/v1/monitors/app/incidents").await;
    assert_eq!(keys(&incidents), schema_keys("IncidentList"));

    let registration = serde_json::to_value(healthchecker_server::registry::Registration {
        url: Some(String::new()),
        email: Some(healthchecker_server::registry::Emails::One(String::new())),
        interval: Some(0),
        timeout: Some(0),
        unhealthy: Some(0),
        healthy: Some(0),
        path: Some(String::new()),
        notify: Some(Vec::new()),
        expect_status: Some(json!(200)),
        cert_warn_days: Some(0),
        tls_verify: Some(true),
        kind: Some(String::new()),
        period: Some(0),
        grace: Some(0),
        schedule: Some(String::new()),
        tz: Some(String::new()),
        rotate_key: Some(false),
    })
    .expect("serializes");
    assert_eq!(keys(&registration), schema_keys("Registration"));
    let (_, error) = get("/api/v1/monitors/ghost").await;
    let error_schema = &doc["components"]["schemas"]["Error"]["properties"]["error"];
    assert_eq!(keys(&error["error"]), keys(&error_schema["properties"]));
}

/// One read of the log cannot make the server build an answer of gigabytes: pages are bounded by
/// bytes, and `before` walks the rest, newest first, each check once.
#[tokio::test]
async fn the_log_is_paged_by_bytes_and_walked_with_before() {
    use healthchecker_server::health::{Health, State};
    use healthchecker_server::registry::AppName;
    use healthchecker_server::store::{CheckWrite, LOG_PAGE_BYTES, LoggedCheck};

    let harness = harness(None);
    let (status, _) = harness
        .put("big", json!({"url": "http://127.0.0.1:9", "interval": 300}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let filler = "x".repeat(60 * 1024);
    let checks = 120;
    for n in 0..checks {
        let body = json!({"status": "pass", "n": n, "filler": filler}).to_string();
        harness.store.record(CheckWrite {
            name: AppName::parse("big").expect("name"),
            check: LoggedCheck {
                record: CheckRecord {
                    cert_not_after: None,
                    cert_days_left: None,
                    time: Utc::now(),
                    outcome: Outcome::Pass,
                    reason: Reason::Ok,
                    http_status: Some(200),
                    latency: Duration::from_millis(1),
                    body: JsonBody::from_text(body).ok(),
                    body_digest: None,
                    detail: None,
                },
                state: State::Healthy,
                ping: None,
            },
            health: Health::default(),
            transition: None,
            alerting: None,
            messages: Vec::new(),
            withdraw: Vec::new(),
            release: None,
            push: None,
        });
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/monitors/big/log?limit=100000".to_owned();
    loop {
        let request = Request::get(&uri).body(Body::empty()).expect("request");
        let response = harness
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(
            bytes.len() < LOG_PAGE_BYTES + 128 * 1024,
            "a page of {} bytes",
            bytes.len()
        );
        let page: Value = serde_json::from_slice(&bytes).expect("JSON");
        let numbers: Vec<i64> = page["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|check| check["body"]["n"].as_i64().unwrap_or(-1))
            .collect();
        assert!(!numbers.is_empty());
        seen.extend(numbers);
        match page["next_before"].as_u64() {
            Some(before) => uri = format!("/api/v1/monitors/big/log?limit=100000&before={before}"),
            None => break,
        }
    }
    // (the scripted checker's own checks have no number)
    seen.retain(|n| *n >= 0);
    let expected: Vec<i64> = (0..checks).rev().collect();
    assert_eq!(seen, expected, "newest first, each once");
    let (status, body) = harness.get("/api/v1/monitors/big/log?before=x").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_field", Some("before"));
}

/// Every kind registers over the API and shows what applies to it; an `icmp://` monitor the
/// checker cannot check is a 422 naming `url`, and nothing is registered.
#[tokio::test]
async fn every_kind_registers_and_shows_its_own_fields() {
    let h = harness(None);
    let rows = [
        (
            "web",
            json!({"url": "https://nas.lan:5001", "expect_status": [200, 401], "cert_warn_days": 30}),
            json!({"kind": "https", "path": "/health", "expect_status": "200,401", "cert_warn_days": 30, "tls_verify": true}),
        ),
        (
            "ssh",
            json!({"url": "tcp://192.168.1.30:22"}),
            json!({"kind": "tcp", "path": "", "expect_status": null, "cert_warn_days": null, "tls_verify": null}),
        ),
        (
            "imaps",
            json!({"url": "tls://192.168.1.30:993", "tls_verify": false, "cert_warn_days": 0}),
            json!({"kind": "tls", "path": "", "expect_status": null, "cert_warn_days": 0, "tls_verify": false}),
        ),
    ];
    for (app, body, shown) in rows {
        let (status, view) = h.put(app, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {view}");
        for (key, value) in shown.as_object().expect("object") {
            assert_eq!(&view[key], value, "{app}: {key}");
        }
        assert_eq!(view["source"], "api");
    }
    let (status, body) = h.put("router", json!({"url": "icmp://192.168.1.1"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_field", Some("url"));
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("icmp:// checks need an ICMP socket"),
        "{message}"
    );
    let (status, _) = h.get("/api/v1/monitors/router").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = h
        .put(
            "ssh2",
            json!({"url": "tcp://192.168.1.30:22", "path": "/health"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_field", Some("path"));
}

/// A body that stops coming holds the request only until the request timeout: 408, in the
/// API's JSON error format, and nothing changes (paused clock: no real wait).
#[tokio::test(start_paused = true)]
async fn a_body_that_never_ends_times_out() {
    let h = harness(None);
    let started = tokio::time::Instant::now();
    let first = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"url\": "))
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    let request = Request::put("/api/v1/monitors/slow")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("request");
    let response = h.router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() >= api::REQUEST_TIMEOUT);
    assert_error(&json_of(response).await, "request_timeout", None);
    assert!(h.names().await.is_empty());
}

/// Schemathesis-style fuzzing, driven by the OpenAPI document: every documented operation is
/// called with inputs made from what the document says it takes, then broken (odd names in the
/// path, odd query values, bodies with fields of the wrong type, out of range, unknown, not JSON,
/// another media type, no token, a wrong one). Every answer must be a status the document lists
/// for that operation, never a 5xx it does not list, an API error in the JSON error format, and
/// a refused change must change nothing. With the new options off, and on (with no token, and
/// with it). A fixed seed per run, so a failure is repeatable.
#[tokio::test]
async fn fuzzing_the_documented_operations_finds_only_documented_answers() {
    fuzz(&harness(None), None, None, 0x5eed_0001).await;
    let guarded = harness_with(|config| {
        config.token = Some(Secret::new(TOKEN.to_owned()));
        config.read_token = Some(Secret::new(READ_TOKEN.to_owned()));
        config.allowed_targets = AllowedTargets::parse(&["127.0.0.0/8".to_owned()]).expect("valid");
        config.max_monitors_per_client = Some(3);
    });
    fuzz(&guarded, None, Some(TOKEN), 0x5eed_0002).await;
    fuzz(&guarded, Some(TOKEN), Some(TOKEN), 0x5eed_0003).await;
    fuzz(&guarded, Some(READ_TOKEN), Some(TOKEN), 0x5eed_0004).await;
}

/// Cases per documented operation and run.
const FUZZ_CASES: usize = 40;

/// Calls every operation of the document [`FUZZ_CASES`] times with `token`; `reader` reads the
/// monitors to see that a refused change changed nothing.
async fn fuzz(h: &Harness, token: Option<&str>, reader: Option<&str>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (_, doc) = h.get("/api/v1/openapi.json").await;
    let registration = json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2});
    let restore = || {
        h.call(
            Method::PUT,
            "/api/v1/monitors/app",
            Some(registration.to_string()),
            reader,
        )
    };
    restore().await;
    let snapshot = || async {
        let (status, list) = h.call(Method::GET, "/api/v1/monitors", None, reader).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["monitors"]
            .as_array()
            .expect("monitors")
            .iter()
            .map(|m| {
                let fields = [
                    "app",
                    "url",
                    "path",
                    "email",
                    "notify",
                    "interval",
                    "timeout",
                    "unhealthy",
                    "healthy",
                    "paused",
                    "maintenance_reason",
                ];
                fields.map(|field| m[field].clone()).to_vec()
            })
            .collect::<Vec<_>>()
    };
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let mut parameters: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
        for method in ["get", "put", "post", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            parameters.extend(
                operation["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            let parameters: Vec<Value> = parameters
                .iter()
                .map(|parameter| match parameter["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.rsplit('/').next().expect("a name");
                        doc["components"]["parameters"][name].clone()
                    }
                    None => parameter.clone(),
                })
                .collect();
            let documented = operation["responses"].as_object().expect("responses");
            let media = operation["requestBody"]["content"]
                .as_object()
                .and_then(|content| content.keys().next().cloned());
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            for case in 0..FUZZ_CASES {
                let mut uri = path.replace("{name}", &fuzz_name(&mut rng));
                uri = uri.replace("{app}", &fuzz_name(&mut rng));
                let mut query = Vec::new();
                for parameter in &parameters {
                    if parameter["in"] == "query" && rng.u8(..10) < 8 {
                        let value = if parameter["schema"]["type"] == "integer" {
                            fuzz_number(&mut rng)
                        } else {
                            fuzz_name(&mut rng)
                        };
                        query.push(format!(
                            "{}={value}",
                            parameter["name"].as_str().expect("name")
                        ));
                    }
                }
                if rng.u8(..10) == 0 {
                    query.push("unknown=1".to_owned());
                }
                if !query.is_empty() {
                    uri = format!("{uri}?{}", query.join("&"));
                }
                let (content_type, body) = match &media {
                    Some(media) => fuzz_body(&mut rng, media, path),
                    None => (None, Vec::new()),
                };
                let mut request = Request::builder().method(verb.clone()).uri(&uri);
                let sent_token = match rng.u8(..10) {
                    0 => Some("wrong-token"),
                    _ => token,
                };
                if let Some(token) = sent_token {
                    request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
                if let Some(content_type) = content_type {
                    request = request.header(header::CONTENT_TYPE, content_type);
                }
                let Ok(request) = request.body(Body::from(body.clone())) else {
                    continue; // a URI that http itself refuses never reaches the server
                };
                let before = snapshot().await;
                let response = h.router.clone().oneshot(request).await.expect("infallible");
                let status = response.status();
                let json = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
                let answer = json_of(response).await;
                let what = format!(
                    "{verb} {uri} (case {case}, seed {seed:#x}, body {:?}) answered {status}: {answer}",
                    String::from_utf8_lossy(&body)
                );
                assert!(
                    documented.contains_key(status.as_str()),
                    "not documented: {what}"
                );
                let text = answer.to_string();
                assert!(
                    !text.contains(TOKEN) && !text.contains(READ_TOKEN),
                    "a token in an answer: {what}"
                );
                if status.is_client_error() && json {
                    assert!(
                        answer["error"]["code"].is_string()
                            && answer["error"]["message"].is_string(),
                        "not the error format: {what}"
                    );
                }
                if !status.is_success() && verb != Method::GET {
                    assert_eq!(
                        snapshot().await,
                        before,
                        "a refused change changed something: {what}"
                    );
                }
                if status.is_success() && verb == Method::DELETE
                    || path.starts_with("/healthchecker/stop")
                {
                    restore().await;
                }
            }
        }
    }
}

/// A check of `app` recorded straight into the store, at `time`, with `transition`.
fn recorded(
    app: &str,
    time: chrono::DateTime<Utc>,
    outcome: Outcome,
    transition: Option<(
        healthchecker_server::health::State,
        healthchecker_server::health::State,
    )>,
    messages: usize,
) -> healthchecker_server::store::CheckWrite {
    use healthchecker_server::health::{Health, State, Transition};
    use healthchecker_server::registry::AppName;
    use healthchecker_server::store::{CheckWrite, LoggedCheck, Message};
    let state = transition.map_or(State::Healthy, |(_, to)| to);
    CheckWrite {
        name: AppName::parse(app).expect("name"),
        check: LoggedCheck {
            record: CheckRecord {
                time,
                outcome,
                reason: if outcome == Outcome::Fail {
                    Reason::Timeout
                } else {
                    Reason::Ok
                },
                http_status: (outcome != Outcome::Fail).then_some(200),
                latency: Duration::from_millis(10),
                body: None,
                detail: None,
                body_digest: None,
                cert_not_after: None,
                cert_days_left: None,
            },
            state,
            ping: None,
        },
        health: Health {
            state,
            ..Health::default()
        },
        transition: transition.map(|(from, to)| Transition {
            time,
            from,
            to,
            reason: format!("{} then", to.as_str().to_lowercase()),
        }),
        alerting: None,
        messages: (0..messages)
            .map(|n| Message {
                monitor: app.to_owned(),
                channel: "email".to_owned(),
                recipients: vec!["me@example.com".to_owned()],
                event_id: format!("{app}-{}-{n}", time.timestamp()),
                payload: "{}".to_owned(),
                due: time,
                created_at: time,
                group: None,
            })
            .collect(),
        withdraw: Vec::new(),
        release: None,
        push: None,
    }
}

/// Waits until `app` has been checked once by the harness's own checker.
async fn first_check(h: &Harness, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = h.get(&format!("/api/v1/monitors/{app}/log")).await;
        if log["checks"]
            .as_array()
            .is_some_and(|checks| !checks.is_empty())
        {
            return;
        }
        assert!(Instant::now() < deadline, "no check within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Uptime adds up every check recorded, at once (no waiting for the aggregates to be written),
/// over whole hourly buckets for 24 h, 7 d, 30 d and daily ones for 365 d.
#[tokio::test]
async fn uptime_counts_every_check_recorded_in_its_window() {
    let h = harness(None);
    let (status, _) = h
        .put("h", json!({"url": "http://127.0.0.1:9", "interval": 300}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    first_check(&h, "h").await; // the harness's checker: one pass, now
    let now = Utc::now();
    let hours = |n: i64| now - chrono::Duration::hours(n);
    for write in [
        recorded("h", hours(2), Outcome::Pass, None, 0),
        recorded("h", hours(2), Outcome::Fail, None, 0),
        recorded("h", hours(3 * 24), Outcome::Warn, None, 0),
        recorded("h", hours(40 * 24), Outcome::Pass, None, 0),
    ] {
        h.store.record(write);
    }
    let (status, uptime) = h.get("/api/v1/monitors/h/uptime").await;
    assert_eq!(status, StatusCode::OK, "{uptime}");
    let window = |name: &str| {
        uptime["windows"]
            .as_array()
            .expect("windows")
            .iter()
            .find(|w| w["window"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("window {name}: {uptime}"))
    };
    let counts = |w: &Value| {
        (
            w["checks"].as_u64().expect("checks"),
            w["passes"].as_u64().expect("passes"),
            w["warns"].as_u64().expect("warns"),
            w["fails"].as_u64().expect("fails"),
        )
    };
    assert_eq!(counts(&window("24h")), (3, 2, 0, 1), "{uptime}");
    assert_eq!(window("24h")["uptime_percent"], 66.667);
    assert_eq!(counts(&window("7d")), (4, 2, 1, 1), "{uptime}");
    assert_eq!(window("7d")["uptime_percent"], 75.0, "a warn is up");
    assert_eq!(counts(&window("30d")), (4, 2, 1, 1), "{uptime}");
    assert_eq!(counts(&window("365d")), (5, 3, 1, 1), "{uptime}");
    let total = |series: &str| -> u64 {
        uptime[series]
            .as_array()
            .expect("series")
            .iter()
            .map(|bucket| bucket["checks"].as_u64().expect("checks"))
            .sum()
    };
    assert_eq!(
        total("hourly"),
        4,
        "the 40-day-old check is past the hourly series"
    );
    assert_eq!(total("daily"), 5);
    let mean = window("24h")["latency_mean_ms"].as_f64().expect("mean");
    assert!(mean > 0.0, "{uptime}");

    // The list shows the same at a glance, and the newest checks.
    let (status, list) = h.get("/api/v1/uptime").await;
    assert_eq!(status, StatusCode::OK);
    let glance = &list["monitors"][0];
    assert_eq!(glance["app"], "h");
    assert_eq!(glance["uptime_24h"], 66.667);
    assert_eq!(glance["recent"].as_array().expect("recent").len(), 5);

    // The compact form holds the same, the checks as columns.
    let (status, compact) = h.get("/api/v1/uptime?compact=true").await;
    assert_eq!(status, StatusCode::OK);
    let columns = &compact["monitors"][0];
    for field in ["app", "uptime_24h", "uptime_30d", "latency_24h_ms"] {
        assert_eq!(columns[field], glance[field], "{field}: {compact}");
    }
    let recent = glance["recent"].as_array().expect("recent");
    let newest: chrono::DateTime<Utc> = recent[0]["time"]
        .as_str()
        .expect("time")
        .parse()
        .expect("time");
    assert_eq!(
        columns["newest"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<Utc>>().expect("time")),
        Some(newest)
    );
    let column = |name: &str| columns[name].as_array().expect(name).clone();
    assert_eq!(
        column("outcomes"),
        recent
            .iter()
            .map(|c| c["outcome"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        column("latencies_ms"),
        recent
            .iter()
            .map(|c| c["latency_ms"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        column("before_ms"),
        recent
            .iter()
            .map(|c| {
                let time: chrono::DateTime<Utc> =
                    c["time"].as_str().expect("time").parse().expect("time");
                json!((newest - time).num_milliseconds())
            })
            .collect::<Vec<_>>()
    );
    let (status, same) = h.get("/api/v1/uptime?compact=false").await;
    assert_eq!((status, &same), (StatusCode::OK, &list));
    let (status, error) = h.get("/api/v1/uptime?compact=yes").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&error, "invalid_field", Some("compact"));

    let (status, error) = h.get("/api/v1/monitors/ghost/uptime").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&error, "not_found", None);
}

/// An incident runs from leaving HEALTHY to HEALTHY again, through UNHEALTHY, and counts the
/// messages written meanwhile.
#[tokio::test]
async fn incidents_come_from_the_transitions_with_their_messages() {
    use healthchecker_server::health::State::{Degraded, Healthy, Unhealthy};
    let h = harness(None);
    h.put("i", json!({"url": "http://127.0.0.1:9", "interval": 300}))
        .await;
    first_check(&h, "i").await;
    let at = |seconds: i64| Utc::now() + chrono::Duration::seconds(seconds);
    let (opened, closed) = (at(60), at(420));
    for write in [
        recorded("i", opened, Outcome::Fail, Some((Healthy, Degraded)), 0),
        recorded("i", at(120), Outcome::Fail, Some((Degraded, Unhealthy)), 2),
        recorded("i", at(300), Outcome::Pass, Some((Unhealthy, Degraded)), 0),
        recorded("i", closed, Outcome::Pass, Some((Degraded, Healthy)), 1),
        recorded("i", at(500), Outcome::Fail, Some((Healthy, Degraded)), 0),
    ] {
        h.store.record(write);
    }
    let (status, answer) = h.get("/api/v1/monitors/i/incidents").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let incidents = answer["incidents"].as_array().expect("incidents");
    assert_eq!(
        incidents.len(),
        1,
        "a degrade alone is no incident: {answer}"
    );
    let incident = &incidents[0];
    let time = |value: &Value| -> chrono::DateTime<Utc> {
        value.as_str().expect("time").parse().expect("RFC 3339")
    };
    assert_eq!(time(&incident["opened_at"]), opened);
    assert_eq!(time(&incident["closed_at"]), closed);
    assert_eq!(incident["downtime_s"], 360);
    assert_eq!(incident["reason"], "unhealthy then");
    assert_eq!(
        incident["messages"],
        json!({"sent": 0, "logged": 0, "pending": 3, "failed": 0, "withdrawn": 0})
    );
    let (status, error) = h.get("/api/v1/monitors/i/incidents?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&error, "invalid_field", Some("limit"));
}

#[tokio::test]
async fn badges_show_the_state_or_the_uptime() {
    let h = harness(None);
    h.put("b", json!({"url": "http://127.0.0.1:9", "interval": 300}))
        .await;
    first_check(&h, "b").await;
    let svg = |uri: &str| {
        let router = h.router.clone();
        let uri = uri.to_owned();
        async move {
            let response = router
                .oneshot(Request::get(&uri).body(Body::empty()).expect("request"))
                .await
                .expect("answer");
            let status = response.status();
            let kind = response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|value| value.to_str().expect("ASCII").to_owned());
            (status, kind, json_of(response).await)
        }
    };
    let (status, kind, body) = svg("/badge/b.svg").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind.as_deref(), Some("image/svg+xml"));
    let body = body.as_str().expect("SVG").to_owned();
    assert!(
        body.starts_with("<svg") && body.contains("b: HEALTHY"),
        "{body}"
    );
    let (status, _, body) = svg("/badge/b.svg?uptime=30d").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.as_str().expect("SVG").contains("uptime 30d: 100%"),
        "{body}"
    );
    let (status, _, body) = svg("/badge/b.svg?uptime=1y").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_field", Some("uptime"));
    assert_eq!(svg("/badge/ghost.svg").await.0, StatusCode::NOT_FOUND);
    assert_eq!(svg("/badge/b.png").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_need_their_token_and_show_every_monitor() {
    let h = harness_with(|config| {
        config.metrics_token = Some(Secret::new("scrape-me-please".to_owned()));
    });
    h.put("app", json!({"url": "http://127.0.0.1:9", "interval": 300}))
        .await;
    first_check(&h, "app").await;
    let (status, error) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&error, "unauthorized", None);
    assert!(error.to_string().contains("metrics_token"), "{error}");
    let (status, _) = h
        .call(Method::GET, "/metrics", None, Some("wrong-token-wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = h
        .call(Method::GET, "/metrics", None, Some("scrape-me-please"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().expect("text");
    let line = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    let status_line = line("monitor_status{");
    for label in [
        "monitor_name=\"app\"",
        "monitor_type=\"http\"",
        "monitor_url=\"http://127.0.0.1:9/health\"",
        "monitor_hostname=\"127.0.0.1\"",
        "monitor_port=\"9\"",
    ] {
        assert!(status_line.contains(label), "{status_line}");
    }
    assert!(status_line.ends_with(" 1"), "HEALTHY is up: {status_line}");
    assert!(line("monitor_response_time{").contains("monitor_name=\"app\""));
    assert_eq!(
        line("healthchecker_checks_total{outcome=\"pass\"}"),
        "healthchecker_checks_total{outcome=\"pass\"} 1"
    );
    assert!(line("healthchecker_check_lateness_seconds_count").ends_with(" 1"));
    assert!(line("healthchecker_monitors{state=\"HEALTHY\"}").ends_with(" 1"));
    assert!(
        line("healthchecker_monitor_state{monitor_name=\"app\",state=\"HEALTHY\"}").ends_with(" 1")
    );
    assert!(
        line("healthchecker_monitor_state{monitor_name=\"app\",state=\"UNHEALTHY\"}")
            .ends_with(" 0")
    );
    assert!(line("healthchecker_outbox_pending{channel=\"email\"}").ends_with(" 0"));
    assert!(!text.contains("scrape-me-please"));
}

/// Reads the event stream `body` until `done` says so, within 10 s; returns the events
/// (name, data) seen.
async fn read_events(
    body: &mut Body,
    mut done: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("events within 10 s");
        let Some(frame) = frame else {
            return seen;
        };
        if let Ok(data) = frame.expect("no error").into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = value.to_owned();
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            if name.is_empty() {
                continue; // a keep-alive comment
            }
            let data: Value = serde_json::from_str(&data).expect("JSON data");
            let stop = done(&name, &data);
            seen.push((name, data));
            if stop {
                return seen;
            }
        }
    }
}

/// A name for a path or query: mostly one that exists, else odd ones.
fn fuzz_name(rng: &mut fastrand::Rng) -> String {
    const NAMES: &[&str] = &[
        "app",
        "app",
        "app",
        "email",
        "ghost",
        "a%20b",
        "%20app",
        "..",
        "%2F",
        "a%2Fb",
        "%FF%FE",
        "%C3%A9t%C3%A9",
        "%00",
        "%0Aevil",
        "-",
        "*",
        "app%3Fx",
        "1",
    ];
    match rng.u8(..20) {
        0 => "x".repeat(rng.usize(60..200)),
        1 => (0..rng.usize(1..12)).map(|_| rng.alphanumeric()).collect(),
        _ => NAMES[rng.usize(..NAMES.len())].to_owned(),
    }
}

/// A number for an integer query parameter, in and out of range and not a number at all.
fn fuzz_number(rng: &mut fastrand::Rng) -> String {
    const NUMBERS: &[&str] = &[
        "1",
        "5",
        "100",
        "0",
        "-1",
        "100001",
        "18446744073709551616",
        "1e3",
        "x",
        "",
        "%20",
        "2.5",
    ];
    NUMBERS[rng.usize(..NUMBERS.len())].to_owned()
}

/// A request body for an operation that takes `media`: a valid one, or one broken a way.
fn fuzz_body(rng: &mut fastrand::Rng, media: &str, path: &str) -> (Option<&'static str>, Vec<u8>) {
    let mut valid = if path.ends_with("/maintenance") {
        json!({"minutes": 30, "reason": "disk"})
    } else if path == "/healthchecker/monitor" {
        json!({"appname": "app", "url": "http://127.0.0.1:9", "interval": "10", "timeout": "2"})
    } else {
        json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2, "email": "me@example.com"})
    };
    const ODD: &[&str] = &[
        "null",
        "-1",
        "0",
        "1e300",
        "18446744073709551616",
        "\"\"",
        "[]",
        "{}",
        "true",
        "\"x\"",
        "\"http://10.0.0.1/\"",
        "\"http://[::1]:9\"",
        "\"file:///etc/passwd\"",
        "\"mailto:x\"",
        "\"\\u0000\"",
        "\"a\\nb\"",
        "301",
        "3.5",
    ];
    const FIELDS: &[&str] = &[
        "url",
        "path",
        "email",
        "interval",
        "timeout",
        "unhealthy",
        "healthy",
        "notify",
        "minutes",
        "reason",
        "appname",
        "unknown",
    ];
    let kind = rng.u8(..12);
    if kind < 7 {
        let field = FIELDS[rng.usize(..FIELDS.len())];
        let odd: Value = serde_json::from_str(ODD[rng.usize(..ODD.len())]).expect("JSON");
        if kind > 1 {
            valid[field] = odd;
        }
    }
    let form = media == "application/x-www-form-urlencoded";
    let encode = |value: &Value| -> Vec<u8> {
        if form {
            let fields: Vec<(String, String)> = value
                .as_object()
                .expect("an object")
                .iter()
                .map(|(key, value)| {
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    (key.clone(), text)
                })
                .collect();
            serde_urlencoded::to_string(fields)
                .expect("a form")
                .into_bytes()
        } else {
            value.to_string().into_bytes()
        }
    };
    let declared = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    match kind {
        7 => (Some(declared), b"{\"url\": ".to_vec()),
        8 => (Some(declared), Vec::new()),
        9 => (Some("text/plain"), encode(&valid)),
        10 => (None, encode(&valid)),
        11 => (Some(declared), vec![0xff, 0xfe, b'{', 0, b'}']),
        _ => (Some(declared), encode(&valid)),
    }
}

#[tokio::test]
async fn events_stream_the_checks_of_one_app() {
    let h = harness(None);
    let request = Request::get("/api/v1/events?app=a")
        .body(Body::empty())
        .expect("request");
    let response = h.router.clone().oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    // The app is unknown when the stream opens; it is registered (and checked) after.
    let (status, _) = h.put("b", json!({"url": "http://127.0.0.1:9"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = h.put("a", json!({"url": "http://127.0.0.1:9"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let events = read_events(&mut body, |name, _| name == "check").await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"ready"), "{events:?}");
    assert!(names.contains(&"monitor"), "{events:?}");
    assert!(
        events.iter().skip(1).all(|(_, data)| data["app"] == "a"),
        "only a: {events:?}"
    );
    let (_, check) = events.last().expect("a check");
    assert_eq!(check["type"], "check");
    assert_eq!(check["check"]["outcome"], "pass");
    assert_eq!(check["check"]["state"], "HEALTHY");
    assert!(
        check["check"].get("body").is_none_or(Value::is_null),
        "no body: {check}"
    );

    let (status, error) = h.get("/api/v1/events?app=%0Abad").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&error, "invalid_field", Some("app"));
}

/// A reader that does not read is dropped once it is a ring behind; publishing never waited.
#[tokio::test]
async fn a_slow_event_reader_is_dropped() {
    use healthchecker_server::events::{CAPACITY, Change, Event};
    use healthchecker_server::registry::AppName;
    let h = harness(None);
    let request = Request::get("/api/v1/events")
        .body(Body::empty())
        .expect("request");
    let response = h.router.clone().oneshot(request).await.expect("answer");
    let mut body = response.into_body();
    let started = Instant::now();
    for n in 0..CAPACITY + 100 {
        h.monitors.events().publish(|| Event::Monitor {
            app: AppName::parse(&format!("m{n}")).expect("name"),
            change: Change::Registered,
        });
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "publishing never waits"
    );
    let events = read_events(&mut body, |_, _| false).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["ready", "lagged"], "then the stream ends");
    assert_eq!(events[1].1["missed"], 100);
}

/// `GET /api/v1/monitors` sent to `host` (the base of push monitors' ping URLs), and each of its
/// monitors checked against `GET /api/v1/monitors/{app}` (made afresh for each request, without
/// the list's kept JSON): the same monitor, field for field.
async fn fresh_list(h: &Harness, host: &str) -> Vec<Value> {
    let get = |uri: String| {
        let request = Request::get(uri)
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("request");
        async {
            let response = h.router.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
            json_of(response).await
        }
    };
    let list = get("/api/v1/monitors".to_owned()).await;
    let monitors = list["monitors"].as_array().expect("monitors").clone();
    for monitor in &monitors {
        let app = monitor["app"].as_str().expect("app");
        let mut one = get(format!("/api/v1/monitors/{app}")).await;
        one.as_object_mut().expect("object").remove("transitions");
        assert_eq!(monitor, &one, "the list shows {app} as it is");
    }
    monitors
}

/// Waits until the log of `app` holds `n` checks; the time of the newest.
async fn nth_check(h: &Harness, app: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = h.get(&format!("/api/v1/monitors/{app}/log")).await;
        if log["checks"]
            .as_array()
            .is_some_and(|checks| checks.len() >= n)
        {
            return log["checks"][0]["time"].clone();
        }
        assert!(Instant::now() < deadline, "no check {n} within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The monitor `app` of `list`.
fn listed<'a>(list: &'a [Value], app: &str) -> &'a Value {
    list.iter()
        .find(|monitor| monitor["app"] == app)
        .unwrap_or_else(|| panic!("{app} is listed: {list:?}"))
}

/// The list keeps each monitor's JSON until the monitor changes: every change is in the next
/// list (a check, a change of state, pause and resume, maintenance, an update, a removal), and
/// so is what changes without the monitor (a scheduled window, the host a request is sent to).
#[tokio::test]
async fn the_list_shows_every_change_at_once() {
    use healthchecker_server::config::maintenance::{Selector, Window, parse_cron, parse_tz};
    // Always on for `gamma`: one begins each month and lasts 40 days (its end moves only at
    // midnight on the first, not between two requests of the test).
    let window = Window {
        monitors: Selector::Names(vec!["gamma".to_owned()]),
        schedule: parse_cron("0 0 1 * *").expect("cron"),
        schedule_text: "0 0 1 * *".to_owned(),
        duration: Duration::from_secs(40 * 86_400),
        tz: parse_tz("UTC").expect("tz"),
        reason: "backups".to_owned(),
    };
    let h = harness_with_windows(|_| {}, vec![window]);
    let host = "hc.lan:8080";
    let polled = json!({"url": "http://127.0.0.1:9", "interval": 300, "timeout": 2});
    for app in ["alpha", "gamma"] {
        assert_eq!(h.put(app, polled.clone()).await.0, StatusCode::CREATED);
    }
    let (status, beta) = h
        .put(
            "beta",
            json!({"kind": "push", "period": 3600, "grace": 600, "email": "me@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Listed before their first checks (not compared: one may land between two requests).
    let (_, before) = h.get("/api/v1/monitors").await;
    assert_eq!(before["monitors"].as_array().map(Vec::len), Some(3));
    first_check(&h, "alpha").await;
    first_check(&h, "gamma").await;
    let list = fresh_list(&h, host).await;
    assert_eq!(
        list.iter().map(|m| &m["app"]).collect::<Vec<_>>(),
        ["alpha", "beta", "gamma"]
    );
    assert_eq!(listed(&list, "alpha")["state"], "HEALTHY");
    assert_eq!(listed(&list, "alpha")["last_check"]["outcome"], "pass");
    assert_eq!(listed(&list, "gamma")["maintenance_reason"], "backups");
    assert!(listed(&list, "gamma")["maintenance_until"].is_string());
    assert_eq!(listed(&list, "alpha")["maintenance_until"], Value::Null);

    // The ping URL follows the host of each request.
    let ping_url = |list: &[Value]| listed(list, "beta")["ping_url"].clone();
    let url = ping_url(&list);
    let key = url
        .as_str()
        .and_then(|url| url.strip_prefix("http://hc.lan:8080/ping/"))
        .unwrap_or_else(|| panic!("{url} under the request's host"))
        .to_owned();
    assert_eq!(beta["ping_url"], Value::Null, "PUT had no Host");
    let other = fresh_list(&h, "10.0.0.2:8080").await;
    assert_eq!(ping_url(&other), format!("http://10.0.0.2:8080/ping/{key}"));
    assert_eq!(ping_url(&fresh_list(&h, host).await), url);

    // New checks and changes of state (pings: at once, no waiting for a schedule).
    for (ping, state) in [("", "HEALTHY"), ("/fail", "UNHEALTHY"), ("", "HEALTHY")] {
        let (status, _) = h.get(&format!("/ping/{key}{ping}")).await;
        assert_eq!(status, StatusCode::OK);
        let list = fresh_list(&h, host).await;
        let beta = listed(&list, "beta");
        assert_eq!(beta["state"], state, "after /ping{ping}");
        assert_eq!(beta["last_check"]["state"], state, "after /ping{ping}");
    }

    // Pause, then resume: a new check starts at once.
    let uri = "/api/v1/monitors/alpha/pause";
    assert_eq!(
        h.call(Method::POST, uri, None, None).await.0,
        StatusCode::OK
    );
    let list = fresh_list(&h, host).await;
    assert_eq!(listed(&list, "alpha")["paused"], true);
    let first = listed(&list, "alpha")["last_check"]["time"].clone();
    let uri = "/api/v1/monitors/alpha/resume";
    assert_eq!(
        h.call(Method::POST, uri, None, None).await.0,
        StatusCode::OK
    );
    let newest = nth_check(&h, "alpha", 2).await;
    assert_ne!(newest, first);
    let list = fresh_list(&h, host).await;
    assert_eq!(listed(&list, "alpha")["paused"], false);
    assert_eq!(listed(&list, "alpha")["last_check"]["time"], newest);

    // A maintenance set and ended.
    let maintenance = "/api/v1/monitors/alpha/maintenance";
    let body = json!({"minutes": 60, "reason": "new disk"}).to_string();
    assert_eq!(
        h.call(Method::POST, maintenance, Some(body), None).await.0,
        StatusCode::OK
    );
    let list = fresh_list(&h, host).await;
    assert_eq!(listed(&list, "alpha")["maintenance_reason"], "new disk");
    let (status, _) = h.call(Method::DELETE, maintenance, None, None).await;
    assert_eq!(status, StatusCode::OK);
    let list = fresh_list(&h, host).await;
    assert_eq!(listed(&list, "alpha")["maintenance_reason"], Value::Null);

    // An update, then a removal.
    let updated = json!({"url": "http://127.0.0.2:9", "interval": 300, "timeout": 2});
    assert_eq!(h.put("alpha", updated).await.0, StatusCode::OK);
    // An update starts the schedule over: its first check comes at once.
    nth_check(&h, "alpha", 3).await;
    let list = fresh_list(&h, host).await;
    assert_eq!(listed(&list, "alpha")["url"], "http://127.0.0.2:9/");
    let (status, _) = h
        .call(Method::DELETE, "/api/v1/monitors/alpha", None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = fresh_list(&h, host).await;
    assert_eq!(
        list.iter().map(|m| &m["app"]).collect::<Vec<_>>(),
        ["beta", "gamma"]
    );
    h.store.flush().await.expect("flush");
}
