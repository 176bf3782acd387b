//! Router tests: every status code of the API, driven with `oneshot` and no socket, against a real
//! store in a temporary folder and a scripted checker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use healthchecker_server::api::{self, AppState};
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
                time: Utc::now(),
                outcome: Outcome::Pass,
                reason: Reason::Ok,
                http_status: Some(200),
                latency: Duration::from_millis(1),
                body: JsonBody::from_text(r#"{"status":"pass"}"#.to_owned()).ok(),
                detail: None,
            }
        })
    }
}

/// The host name the router tests' server believes it runs on.
const TEST_HOST: &str = "test-host";

struct Harness {
    router: Router,
    store: Store,
    _cancel: tokio_util::sync::DropGuard,
    _dir: tempfile::TempDir,
}

fn harness(token: Option<&str>) -> Harness {
    harness_with(|config| config.token = token.map(|token| Secret::new(token.to_owned())))
}

fn harness_with(configure: impl FnOnce(&mut Config)) -> Harness {
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
        windows: Vec::new(),
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
/// dashboard's HTML).
async fn json_of(response: axum::response::Response) -> Value {
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
    assert!(page.contains("<title>healthchecker</title>") && page.contains("api/v1/monitors"));
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
    let h = harness(None);
    let (status, doc) = h.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["info"]["version"], healthchecker_server::VERSION);
    h.put(
        "app",
        json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2}),
    )
    .await;

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
            let body = (method == "put").then(|| {
                json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2}).to_string()
            });
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let (status, _) = h.call(method.clone(), &uri, body, None).await;
            let documented = operation["responses"].as_object().expect("responses");
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {uri} answered {status}, not documented"
            );
            if method == Method::DELETE {
                h.put(
                    "app",
                    json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2}),
                )
                .await;
            }
        }
    }
    assert_eq!(
        operations, 25,
        "the router serves fourteen operations, four ping routes and the original's seven (legacy); document each"
    );

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
    let (_, monitor) = h.get("/api/v1/monitors/app").await;
    let mut monitor_keys = keys(&monitor);
    monitor_keys.retain(|key| key != "transitions");
    assert_eq!(monitor_keys, schema_keys("Monitor"));
    let (_, list) = h.get("/api/v1/monitors").await;
    assert_eq!(keys(&list["monitors"][0]), schema_keys("Monitor"));

    let deadline = Instant::now() + Duration::from_secs(10);
    let check = loop {
        let (_, log) = h.get("/api/v1/monitors/app/log").await;
        if let Some(check) = log["checks"].get(0) {
            break check.clone();
        }
        assert!(Instant::now() < deadline, "no check within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(keys(&check), schema_keys("Check"));
    let (_, monitor) = h.get("/api/v1/monitors/app").await;
    assert_eq!(keys(&monitor["transitions"][0]), schema_keys("Transition"));

    let registration = serde_json::to_value(healthchecker_server::registry::Registration {
        url: Some(String::new()),
        email: Some(healthchecker_server::registry::Emails::One(String::new())),
        interval: Some(0),
        timeout: Some(0),
        unhealthy: Some(0),
        healthy: Some(0),
        path: Some(String::new()),
        notify: Some(Vec::new()),
        kind: Some(String::new()),
        period: Some(0),
        grace: Some(0),
        schedule: Some(String::new()),
        tz: Some(String::new()),
        rotate_key: Some(false),
    })
    .expect("serializes");
    assert_eq!(keys(&registration), schema_keys("Registration"));
    let (_, error) = h.get("/api/v1/monitors/ghost").await;
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
                    time: Utc::now(),
                    outcome: Outcome::Pass,
                    reason: Reason::Ok,
                    http_status: Some(200),
                    latency: Duration::from_millis(1),
                    body: JsonBody::from_text(body).ok(),
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
