//! Router tests of the original's routes (`/healthchecker/...`): every status code, driven with
//! `oneshot` and no socket, against a real store in a temporary folder and a checker that
//! passes. Requests are the ones the 2020 Python client sends: a form-encoded POST (`+` for a
//! space) and GETs with `?appname=`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use healthchecker_server::api::{self, AppState};
use healthchecker_server::config::{Config, Secret};
use healthchecker_server::health::Outcome;
use healthchecker_server::monitors::{CheckFuture, Checker, Monitors, MonitorsOptions, Parts};
use healthchecker_server::probe::{CheckRecord, JsonBody, Reason};
use healthchecker_server::registry::MonitorSpec;
use healthchecker_server::store::{Store, StoreOptions};
use http_body_util::BodyExt as _;
use serde_json::Value;
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

struct Harness {
    router: Router,
    _cancel: tokio_util::sync::DropGuard,
    _dir: tempfile::TempDir,
}

/// An answer: status, content type, body as text.
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(
            self.content_type.starts_with("application/json"),
            "{}: {}",
            self.content_type,
            self.text
        );
        serde_json::from_str(&self.text).expect("JSON")
    }

    /// Asserts a plain-text answer with this status, and returns its text.
    fn text(&self, status: StatusCode) -> &str {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.content_type.starts_with("text/plain"),
            "{}: {}",
            self.content_type,
            self.text
        );
        &self.text
    }
}

fn harness() -> Harness {
    harness_with(|_| {})
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
        &healthchecker_server::identity::Identity::for_host("legacy-test"),
        monitors,
        store,
    );
    Harness {
        router: api::router_with(state.clone(), healthchecker_server::legacy::router(&state)),
        _cancel: cancel.drop_guard(),
        _dir: dir,
    }
}

/// The original client's form for `app` (its defaults, as it sends them), with `changes`.
fn form(app: &str, changes: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("appname", app.to_owned()),
        ("url", "http://127.0.0.1:9".to_owned()),
        ("email", String::new()),
        ("timeout", "5".to_owned()),
        ("interval", "30".to_owned()),
        ("unhealthy_threshold", "2".to_owned()),
        ("healthy_threshold", "10".to_owned()),
    ];
    for (key, value) in changes {
        match fields.iter_mut().find(|(name, _)| name == key) {
            Some(field) => field.1 = (*value).to_owned(),
            None => fields.push((key, (*value).to_owned())),
        }
    }
    fields.retain(|(_, value)| value != "<absent>");
    // As Python's urllib.parse.urlencode (used by requests) encodes: a space is `+`.
    serde_urlencoded::to_string(&fields).expect("encodes")
}

/// `app` as a query value, encoded as requests encodes `params` (`+` for a space).
fn query(app: &str) -> String {
    serde_urlencoded::to_string([("appname", app)]).expect("encodes")
}

impl Harness {
    async fn call(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Answer {
            status,
            content_type,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `POST /healthchecker/monitor` with a form body, as the Python client sends it.
    async fn post_form(&self, body: String, token: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/healthchecker/monitor")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CACHE_CONTROL, "no-cache");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.call(request.body(Body::from(body)).expect("request"))
            .await
    }

    async fn monitor(&self, app: &str, changes: &[(&str, &str)]) -> Answer {
        self.post_form(form(app, changes), None).await
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .uri(uri)
            .header(header::CACHE_CONTROL, "no-cache");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.call(request.body(Body::empty()).expect("request"))
            .await
    }

    /// `GET /healthchecker/{route}?appname=app`.
    async fn about(&self, route: &str, app: &str) -> Answer {
        self.get(&format!("/healthchecker/{route}?{}", query(app)), None)
            .await
    }

    /// The monitor as the JSON API shows it, or `None`.
    async fn v1(&self, app: &str) -> Option<Value> {
        let path = format!(
            "/api/v1/monitors/{}",
            app.replace('%', "%25").replace(' ', "%20")
        );
        let answer = self.get(&path, None).await;
        match answer.status {
            StatusCode::OK => Some(answer.json()),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET {path}: {other} {}", answer.text),
        }
    }

    async fn names(&self) -> Vec<String> {
        let list = self.get("/api/v1/monitors", None).await.json();
        list["monitors"]
            .as_array()
            .expect("list")
            .iter()
            .map(|monitor| monitor["app"].as_str().expect("name").to_owned())
            .collect()
    }
}

const APP: &str = "Sample HealthChecker App";

#[tokio::test]
async fn monitor_answers_201_then_200_and_registers_what_the_api_shows() {
    let h = harness();
    let body = form(
        APP,
        &[
            ("email", "me@example.com"),
            ("interval", "10"),
            ("healthy_threshold", "4"),
        ],
    );
    assert!(
        body.starts_with("appname=Sample+HealthChecker+App&url=http%3A%2F%2F127.0.0.1%3A9&"),
        "{body}"
    );
    let created = h.post_form(body.clone(), None).await;
    assert_eq!(
        created.text(StatusCode::CREATED),
        "App `Sample HealthChecker App` is scheduled for health check monitoring."
    );
    let monitor = h.v1(APP).await.expect("registered under the decoded name");
    assert_eq!(monitor["url"], "http://127.0.0.1:9/");
    assert_eq!(monitor["path"], "/health", "the default path");
    assert_eq!(monitor["email"], serde_json::json!(["me@example.com"]));
    assert_eq!(
        (&monitor["interval"], &monitor["timeout"]),
        (&10.into(), &5.into())
    );
    assert_eq!(
        (&monitor["unhealthy"], &monitor["healthy"]),
        (&2.into(), &4.into())
    );

    // Registering again (an app that restarts) is 200, whether or not anything changed.
    let again = h.post_form(body, None).await;
    assert!(again.text(StatusCode::OK).contains("unchanged"));
    let updated = h.monitor(APP, &[("interval", "20")]).await;
    assert!(updated.text(StatusCode::OK).contains("updated"));
    let monitor = h.v1(APP).await.expect("still there");
    assert_eq!(monitor["interval"], 20);
    assert_eq!(
        monitor["email"],
        serde_json::json!([]),
        "an empty email: nobody"
    );
    assert_eq!(h.names().await, [APP]);

    // Numbers left out take their defaults.
    let sparse = h
        .monitor(
            "sparse",
            &[
                ("email", "<absent>"),
                ("timeout", "<absent>"),
                ("interval", "<absent>"),
                ("unhealthy_threshold", "<absent>"),
                ("healthy_threshold", "<absent>"),
            ],
        )
        .await;
    sparse.text(StatusCode::CREATED);
    let monitor = h.v1("sparse").await.expect("registered");
    let numbers: Vec<u64> = ["interval", "timeout", "unhealthy", "healthy"]
        .iter()
        .map(|key| monitor[*key].as_u64().expect("a number"))
        .collect();
    assert_eq!(numbers, [30, 5, 2, 10]);
}

#[tokio::test]
async fn a_bad_url_email_or_name_or_a_malformed_form_is_400_and_changes_nothing() {
    let h = harness();
    h.monitor("keep", &[]).await.text(StatusCode::CREATED);
    let long_name = "x".repeat(65);
    let cases: Vec<(String, &str)> = vec![
        (form("a", &[("url", "ftp://127.0.0.1")]), "invalid `url`"),
        (form("a", &[("url", "192.168.1.20")]), "invalid `url`"),
        (form("a", &[("url", "<absent>")]), "`url` is missing"),
        (form("a", &[("email", "not an address")]), "invalid `email`"),
        (
            form("a", &[("appname", "<absent>")]),
            "`appname` parameter not specified.",
        ),
        (form(&long_name, &[]), "invalid `appname`"),
        (form("a/b", &[]), "invalid `appname`"),
        (
            form("a", &[("timeout", "five")]),
            "invalid `timeout` \"five\": a whole number",
        ),
        (form("a", &[("interval", "")]), "invalid `interval`"),
        (form("a", &[("healthy", "4")]), "unknown field `healthy`"),
        (
            "appname=a&appname=b&url=http%3A%2F%2Fa".to_owned(),
            "duplicate field `appname`",
        ),
    ];
    for (body, message) in cases {
        let answer = h.post_form(body.clone(), None).await;
        let text = answer.text(StatusCode::BAD_REQUEST);
        assert!(text.contains(message), "{body}: {text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }
    // Not a form at all: JSON, as the new API takes.
    let json = Request::builder()
        .method(Method::POST)
        .uri("/healthchecker/monitor")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"appname": "a", "url": "http://a"}"#))
        .expect("request");
    let answer = h.call(json).await;
    assert!(
        answer
            .text(StatusCode::BAD_REQUEST)
            .contains("application/x-www-form-urlencoded"),
        "{}",
        answer.text
    );
    assert_eq!(h.names().await, ["keep"]);
}

#[tokio::test]
async fn a_parameter_out_of_range_is_406_naming_it_and_changes_nothing() {
    let h = harness();
    let cases = [
        ("timeout", "1", "from 2 to 60 seconds"),
        ("timeout", "61", "from 2 to 60 seconds"),
        ("interval", "4", "from 5 to 300 seconds"),
        ("interval", "301", "from 5 to 300 seconds"),
        ("interval", "-5", "from 5 to 300 seconds"),
        ("interval", "99999999999999999999", "from 5 to 300 seconds"),
        ("unhealthy_threshold", "1", "from 2 to 10 checks"),
        ("unhealthy_threshold", "11", "from 2 to 10 checks"),
        ("unhealthy_threshold", "4294967296", "from 2 to 10 checks"),
        ("healthy_threshold", "1", "from 2 to 10 checks"),
        ("healthy_threshold", "11", "from 2 to 10 checks"),
    ];
    for (field, value, range) in cases {
        let answer = h.monitor("a", &[(field, value)]).await;
        let text = answer.text(StatusCode::NOT_ACCEPTABLE);
        assert!(
            text.starts_with(&format!("invalid `{field}` \"{value}\": {range}")),
            "{field}={value}: {text}"
        );
    }
    // The timeout must be less than the interval, as in the JSON API.
    let answer = h.monitor("a", &[("interval", "5"), ("timeout", "5")]).await;
    let text = answer.text(StatusCode::NOT_ACCEPTABLE);
    assert!(text.contains("less than `interval` (5 seconds)"), "{text}");
    // The documented defaults and both ends of every range are accepted (the original refused
    // its own defaults).
    for changes in [
        vec![("timeout", "2"), ("interval", "5")],
        vec![("timeout", "60"), ("interval", "300")],
        vec![("unhealthy_threshold", "10"), ("healthy_threshold", "2")],
    ] {
        let answer = h.monitor("edges", &changes).await;
        assert!(answer.status.is_success(), "{changes:?}: {}", answer.text);
    }
    assert_eq!(h.names().await, ["edges"]);
}

#[tokio::test]
async fn stop_pause_resume_answer_ok_or_404() {
    let h = harness();
    h.monitor(APP, &[]).await.text(StatusCode::CREATED);
    h.monitor("other", &[]).await.text(StatusCode::CREATED);

    assert_eq!(h.about("pause", APP).await.text(StatusCode::OK), "OK");
    assert_eq!(h.v1(APP).await.expect("kept")["paused"], true);
    assert_eq!(
        h.about("pause", APP).await.text(StatusCode::OK),
        "OK",
        "again"
    );
    assert_eq!(h.about("resume", APP).await.text(StatusCode::OK), "OK");
    assert_eq!(h.v1(APP).await.expect("kept")["paused"], false);

    assert_eq!(h.about("stop", APP).await.text(StatusCode::OK), "OK");
    assert!(h.v1(APP).await.is_none(), "forgotten");
    assert_eq!(
        h.about("stopmonitoring", "other")
            .await
            .text(StatusCode::OK),
        "OK",
        "the original server's name for stop"
    );
    assert!(h.names().await.is_empty());

    for route in ["stop", "stopmonitoring", "pause", "resume", "info"] {
        let answer = h.about(route, APP).await;
        assert_eq!(
            answer.text(StatusCode::NOT_FOUND),
            "App `Sample HealthChecker App` is not health check monitored.",
            "{route}"
        );
        let answer = h.get(&format!("/healthchecker/{route}"), None).await;
        assert_eq!(
            answer.text(StatusCode::BAD_REQUEST),
            "`appname` parameter not specified.",
            "{route}"
        );
        let answer = h
            .get(&format!("/healthchecker/{route}?appname=%0Aevil"), None)
            .await;
        assert!(
            answer
                .text(StatusCode::BAD_REQUEST)
                .starts_with("invalid `appname` \"\\nevil\""),
            "{route}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn plus_is_a_space_and_percent_2b_a_plus() {
    let h = harness();
    h.monitor("a+b", &[]).await.text(StatusCode::CREATED);
    assert!(h.v1("a+b").await.is_some(), "an encoded plus stays a plus");
    assert_eq!(
        h.get("/healthchecker/pause?appname=a%2Bb", None)
            .await
            .text(StatusCode::OK),
        "OK"
    );
    h.get("/healthchecker/pause?appname=a+b", None)
        .await
        .text(StatusCode::NOT_FOUND);
    h.monitor("a b", &[]).await.text(StatusCode::CREATED);
    assert_eq!(
        h.get("/healthchecker/pause?appname=a+b", None)
            .await
            .text(StatusCode::OK),
        "OK"
    );
    assert_eq!(h.v1("a b").await.expect("kept")["paused"], true);
}

/// The documented keys of `schema` in the OpenAPI document.
fn schema_keys(doc: &Value, schema: &str) -> Vec<String> {
    let mut keys: Vec<String> = doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn info_and_status_answer_json_as_documented() {
    let h = harness();
    h.monitor(APP, &[("interval", "5"), ("timeout", "2")])
        .await
        .text(StatusCode::CREATED);
    h.monitor("other", &[]).await.text(StatusCode::CREATED);

    let deadline = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = h.about("info", APP).await;
        assert_eq!(info.status, StatusCode::OK, "{}", info.text);
        let info = info.json();
        // On a loaded machine a first check can time out; wait for the first pass.
        if info["checks"][0]["outcome"] == "pass" {
            break info;
        }
        assert!(
            Instant::now() < deadline,
            "no passing check within 10 s: {info}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info["app"], APP);
    assert_eq!(info["state"], "HEALTHY");
    assert_eq!(info["checks"][0]["outcome"], "pass");
    assert_eq!(info["checks"][0]["body"]["status"], "pass");

    let status = h.get("/healthchecker/status", None).await;
    assert_eq!(status.status, StatusCode::OK);
    let status = status.json();
    assert_eq!(keys(&status), ["Sample HealthChecker App", "other"]);
    assert_eq!(status[APP]["app"], APP);
    assert_eq!(status["other"]["interval"], 30);

    // The answers have exactly the documented fields.
    let doc = h.get("/api/v1/openapi.json", None).await.json();
    let mut monitor = keys(&info);
    monitor.retain(|key| key != "checks");
    assert_eq!(monitor, schema_keys(&doc, "Monitor"));
    assert_eq!(keys(&status["other"]), schema_keys(&doc, "Monitor"));
    assert_eq!(keys(&info["checks"][0]), schema_keys(&doc, "Check"));
    let info_schema = &doc["components"]["schemas"]["LegacyInfo"]["allOf"][1]["properties"];
    assert_eq!(keys(info_schema), ["checks"]);
    assert_eq!(
        info_schema["checks"]["maxItems"],
        healthchecker_server::legacy::INFO_CHECKS
    );
    let form_keys = schema_keys(&doc, "LegacyMonitorForm");
    let mut sent: Vec<String> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(&form("a", &[]))
            .expect("parses")
            .into_iter()
            .map(|(key, _)| key)
            .collect();
    sent.sort();
    assert_eq!(form_keys, sent);
}

#[tokio::test]
async fn every_legacy_route_is_documented_as_deprecated_with_its_answers() {
    let h = harness_with(|config| config.token = Some(Secret::new("a-long-enough-token".into())));
    let doc = h.get("/api/v1/openapi.json", None).await.json();
    let paths = doc["paths"].as_object().expect("paths");
    let legacy: Vec<&String> = paths
        .keys()
        .filter(|path| path.starts_with(healthchecker_server::legacy::PREFIX))
        .collect();
    assert_eq!(legacy.len(), 7, "{legacy:?}");
    for path in legacy {
        let item = &paths[path];
        for (method, operation) in item.as_object().expect("item") {
            if method == "parameters" {
                continue;
            }
            assert_eq!(operation["deprecated"], true, "{method} {path}");
            assert_eq!(
                operation["tags"],
                serde_json::json!(["legacy"]),
                "{method} {path}"
            );
            let changes = operation.get("security").is_some();
            let responses = keys(&operation["responses"]);
            // What the router tests here see each route answer.
            let expected: &[&str] = match (method.as_str(), path.as_str()) {
                ("post", _) => &["200", "201", "400", "401", "406", "413", "429"],
                (_, "/healthchecker/info") => &["200", "400", "404"],
                (_, "/healthchecker/status") => &["200"],
                _ => &["200", "400", "401", "404"],
            };
            assert_eq!(responses, expected, "{method} {path}");
            assert_eq!(
                changes,
                responses.contains(&"401".to_owned()),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_token_guards_changes_and_leaves_reads_open() {
    let token = "a-long-enough-test-token";
    let h = harness_with(|config| config.token = Some(Secret::new(token.to_owned())));
    let refused = h.post_form(form(APP, &[]), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json()["error"]["code"], "unauthorized");
    let wrong = h
        .post_form(form(APP, &[]), Some("not-the-right-token"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(h.names().await.is_empty());
    h.post_form(form(APP, &[]), Some(token))
        .await
        .text(StatusCode::CREATED);

    for route in ["pause", "resume", "stop", "stopmonitoring"] {
        let uri = format!("/healthchecker/{route}?{}", query(APP));
        assert_eq!(
            h.get(&uri, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{route}"
        );
    }
    assert_eq!(h.about("info", APP).await.status, StatusCode::OK);
    assert_eq!(
        h.get("/healthchecker/status", None).await.status,
        StatusCode::OK
    );
    let uri = format!("/healthchecker/stop?{}", query(APP));
    assert_eq!(h.get(&uri, Some(token)).await.text(StatusCode::OK), "OK");
    assert!(h.names().await.is_empty());
}

#[tokio::test]
async fn the_servers_limits_hold_here_too() {
    let h = harness_with(|config| config.max_monitors = 1);
    h.monitor("one", &[]).await.text(StatusCode::CREATED);
    let full = h.monitor("two", &[]).await;
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(full.json()["error"]["code"], "monitor_limit");
    h.monitor("one", &[("interval", "60")])
        .await
        .text(StatusCode::OK);

    let h = harness_with(|config| config.max_registrations_per_minute = Some(1));
    h.monitor("one", &[]).await.text(StatusCode::CREATED);
    let limited = h.monitor("two", &[]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["error"]["code"], "rate_limited");

    let h = harness_with(|config| config.allowed_email_domains = vec!["example.com".into()]);
    let outside = h.monitor("a", &[("email", "me@elsewhere.org")]).await;
    let text = outside.text(StatusCode::BAD_REQUEST);
    assert!(
        text.starts_with("invalid `email`") && text.contains("example.com"),
        "{text}"
    );
    h.monitor("a", &[("email", "me@lab.example.com")])
        .await
        .text(StatusCode::CREATED);

    let h = harness();
    let huge = form("a", &[("url", &format!("http://a/{}", "x".repeat(70_000)))]);
    let too_large = h.post_form(huge, None).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.json()["error"]["code"], "body_too_large");
    assert!(h.names().await.is_empty());
}

#[tokio::test]
async fn with_legacy_off_none_of_it_is_served() {
    let h = harness_with(|config| config.legacy = false);
    let answer = h.monitor(APP, &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let error = answer.json();
    assert_eq!(error["error"]["code"], "not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("legacy = false")),
        "{error}"
    );
    for route in [
        "stop",
        "stopmonitoring",
        "pause",
        "resume",
        "info",
        "status",
    ] {
        let answer = h.about(route, APP).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{route}");
    }
    assert!(h.names().await.is_empty());
}
