//! The client against a scripted server on 127.0.0.1:0: the requests it sends and how it maps
//! the answers.

use std::time::Duration;

use healthchecker_client::testing::{FakeServer, Reply, check_record, monitor_view};
use healthchecker_client::{
    CheckOutcome, Error, HealthCheckResponse, HealthCheckerServer, HealthStatus, Monitor,
    MonitorState, Stopped,
};
use serde_json::json;

const APP_URL: &str = "http://127.0.0.1:9090";

async fn fake(replies: impl IntoIterator<Item = Reply>) -> FakeServer {
    FakeServer::start(replies).await.expect("start fake server")
}

/// A client for `app` on `fake`, independent of the environment's token.
fn client(fake: &FakeServer, app: &str) -> HealthCheckerServer {
    HealthCheckerServer::at(fake.url(), app, APP_URL)
        .expect("valid")
        .without_token()
}

#[tokio::test]
async fn monitor_puts_the_registration() {
    let fake = fake([Reply::json(201, monitor_view("media-center", APP_URL))]).await;
    let server = client(&fake, "media-center");
    let registration = server
        .monitor(
            Monitor::new()
                .email("me@example.com")
                .email("ops@example.com")
                .interval(10)
                .timeout(5)
                .unhealthy(2)
                .healthy(4)
                .path("/health"),
        )
        .await
        .expect("registered");
    assert!(registration.created);
    assert_eq!(registration.monitor.app, "media-center");
    assert_eq!(registration.monitor.state, MonitorState::Unknown);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let put = &requests[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(put.path, "/api/v1/monitors/media-center");
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("accept"), Some("application/json"));
    assert_eq!(put.header("authorization"), None);
    assert!(
        put.header("user-agent")
            .is_some_and(|ua| ua.starts_with("healthchecker-client/")),
        "{:?}",
        put.header("user-agent")
    );
    assert_eq!(
        put.json(),
        Some(json!({
            "url": APP_URL,
            "email": ["me@example.com", "ops@example.com"],
            "interval": 10,
            "timeout": 5,
            "unhealthy": 2,
            "healthy": 4,
            "path": "/health"
        }))
    );
}

#[tokio::test]
async fn unset_parameters_are_left_to_the_server_and_200_means_updated() {
    let fake = fake([Reply::json(200, monitor_view("nas", APP_URL))]).await;
    let registration = client(&fake, "nas")
        .monitor(&Monitor::new())
        .await
        .expect("registered");
    assert!(!registration.created);
    assert_eq!(fake.requests()[0].json(), Some(json!({"url": APP_URL})));
}

#[tokio::test]
async fn the_app_name_is_one_encoded_path_segment() {
    let app = "Sample HealthChecker App?#%";
    let fake = fake([
        Reply::json(201, monitor_view(app, APP_URL)),
        Reply::empty(204),
    ])
    .await;
    let server = client(&fake, app);
    server.monitor(Monitor::new()).await.expect("registered");
    server.stop().await.expect("stopped");
    let paths: Vec<_> = fake.requests().into_iter().map(|r| r.path).collect();
    let encoded = "/api/v1/monitors/Sample%20HealthChecker%20App%3F%23%25";
    assert_eq!(paths, [encoded, encoded]);
}

#[tokio::test]
async fn the_token_is_sent_as_bearer() {
    let fake = fake([
        Reply::json(201, monitor_view("nas", APP_URL)),
        Reply::empty(204),
    ])
    .await;
    let server = client(&fake, "nas").token("s3cret-token").expect("token");
    server.monitor(Monitor::new()).await.expect("registered");
    server.stop().await.expect("stopped");
    for request in fake.requests() {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer s3cret-token"),
            "{}",
            request.method
        );
    }
}

#[tokio::test]
async fn invalid_parameters_fail_before_any_request() {
    let fake = fake([]).await;
    let err = client(&fake, "nas")
        .monitor(Monitor::new().interval(3))
        .await
        .expect_err("invalid");
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "interval",
                ..
            }
        ),
        "{err}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn server_errors_are_mapped() {
    let fake = fake([
        Reply::error(
            422,
            "invalid_field",
            "url \"http://x y\": an http:// or https:// base URL",
            Some("url"),
        ),
        Reply::error(401, "unauthorized", "a bearer token is required", None),
        Reply::error(
            429,
            "rate_limited",
            "too many registrations; retry in 10 s",
            None,
        ),
        Reply::error(413, "too_large", "body over 64 KiB", None),
        Reply::text(502, "<html>Bad Gateway</html>"),
        Reply::json(201, json!({"unexpected": true})),
    ])
    .await;
    let server = client(&fake, "nas");
    let monitor = Monitor::new();

    let err = server.monitor(&monitor).await.expect_err("422");
    let Error::Rejected {
        status,
        code,
        field,
        message,
    } = &err
    else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(
        (*status, code.as_str(), field.as_deref()),
        (422, "invalid_field", Some("url"))
    );
    assert!(message.contains("base URL"), "{message}");
    assert!(err.to_string().contains("(field `url`)"), "{err}");

    let err = server.monitor(&monitor).await.expect_err("401");
    assert!(
        matches!(&err, Error::Unauthorized { message } if message == "a bearer token is required"),
        "{err:?}"
    );
    assert!(err.to_string().contains("set HEALTHCHECKER_TOKEN"), "{err}");

    let err = server.monitor(&monitor).await.expect_err("429");
    assert!(
        matches!(&err, Error::Rejected { status: 429, code, .. } if code == "rate_limited"),
        "{err:?}"
    );
    let err = server.monitor(&monitor).await.expect_err("413");
    assert!(
        matches!(&err, Error::Rejected { status: 413, .. }),
        "{err:?}"
    );

    let err = server.monitor(&monitor).await.expect_err("502");
    assert!(matches!(&err, Error::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP 502"), "{err}");

    let err = server.monitor(&monitor).await.expect_err("bad body");
    assert!(matches!(&err, Error::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("does not parse"), "{err}");
}

#[tokio::test]
async fn stop_deletes_and_a_404_is_not_an_error() {
    let fake = fake([
        Reply::empty(204),
        Reply::error(404, "not_found", "no monitor named \"nas\"", None),
        Reply::text(404, "Not Found"),
    ])
    .await;
    let server = client(&fake, "nas");
    assert_eq!(server.stop().await.expect("stop"), Stopped::Removed);
    assert_eq!(server.stop().await.expect("stop"), Stopped::WasNotMonitored);
    // A 404 without the server's error body: not a healthchecker server at that URL.
    let err = server.stop().await.expect_err("not ours");
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");

    for request in fake.requests() {
        assert_eq!(request.method, "DELETE");
        assert_eq!(request.path, "/api/v1/monitors/nas");
        assert!(request.body.is_empty());
    }
}

#[tokio::test]
async fn info_log_list_pause_resume() {
    let mut one = monitor_view("nas", APP_URL);
    one["state"] = json!("HEALTHY");
    one["transitions"] = json!([{
        "time": "2026-01-02T03:04:05Z", "from": "UNKNOWN", "to": "HEALTHY", "reason": "ok"
    }]);
    let mut paused = monitor_view("nas", APP_URL);
    paused["paused"] = json!(true);
    let fake = fake([
        Reply::json(200, one),
        Reply::error(404, "not_found", "no monitor named \"nas\"", None),
        Reply::json(
            200,
            json!({"app": "nas", "checks": [
                check_record("fail", "timeout", "DEGRADED"),
                check_record("pass", "ok", "HEALTHY"),
            ]}),
        ),
        Reply::json(
            200,
            json!({"monitors": [monitor_view("nas", APP_URL), monitor_view("tv", "http://127.0.0.1:1")]}),
        ),
        Reply::json(200, paused),
        Reply::json(200, monitor_view("nas", APP_URL)),
    ])
    .await;
    let server = client(&fake, "nas");

    let info = server.info().await.expect("info");
    assert_eq!(info.state, MonitorState::Healthy);
    assert_eq!(info.transitions.len(), 1);

    let err = server.info().await.expect_err("404");
    assert!(
        matches!(&err, Error::NotMonitored { app } if app == "nas"),
        "{err:?}"
    );

    let log = server.log(5).await.expect("log");
    assert_eq!(
        log.iter().map(|c| c.outcome).collect::<Vec<_>>(),
        [CheckOutcome::Fail, CheckOutcome::Pass]
    );
    assert_eq!(log[0].reason, "timeout");
    assert_eq!(log[0].http_status, None);

    let list = server.list().await.expect("list");
    assert_eq!(
        list.iter().map(|m| m.app.as_str()).collect::<Vec<_>>(),
        ["nas", "tv"]
    );

    assert!(server.pause().await.expect("pause").paused);
    assert!(!server.resume().await.expect("resume").paused);

    let sent: Vec<_> = fake
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        sent,
        [
            "GET /api/v1/monitors/nas",
            "GET /api/v1/monitors/nas",
            "GET /api/v1/monitors/nas/log?limit=5",
            "GET /api/v1/monitors",
            "POST /api/v1/monitors/nas/pause",
            "POST /api/v1/monitors/nas/resume",
        ]
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    // Bind and drop a listener to get a port nothing listens on (loopback only).
    let port = iputils::find_free_port().expect("port");
    let server = HealthCheckerServer::at(format!("http://127.0.0.1:{port}"), "nas", APP_URL)
        .expect("valid")
        .without_token();
    let err = server.info().await.expect_err("unreachable");
    assert!(matches!(&err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "cannot reach the healthchecker server at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
    // The cause is spelled out, not just "error sending request".
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out() {
    let fake = fake([Reply::Hang]).await;
    let server = client(&fake, "nas").timeout(Duration::from_millis(200));
    let err = server.info().await.expect_err("timeout");
    assert!(matches!(&err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

/// Only the app's own inputs here: with them valid, `discover` would browse over mDNS, which
/// happens only in a network namespace (tests/discovery.rs).
#[tokio::test]
async fn discover_checks_the_apps_inputs_before_looking_for_a_server() {
    for (app, app_url, field) in [("nas", "not a url", "app_url"), ("", APP_URL, "app")] {
        let err = HealthCheckerServer::discover(app, app_url)
            .await
            .expect_err("bad input");
        assert!(
            matches!(err, Error::InvalidInput { field: f, .. } if f == field),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn health_response_from_axum() {
    use axum::Router;
    use axum::routing::get;

    let app = Router::new()
        .route(
            "/health",
            get(|| async { HealthCheckResponse::new().description("nas") }),
        )
        .route(
            "/down",
            get(|| async {
                HealthCheckResponse::new()
                    .status(HealthStatus::Fail)
                    .output("disk gone")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (path, status, body) in [
        ("/health", 200, r#"{"status":"pass","description":"nas"}"#),
        ("/down", 503, r#"{"status":"fail","output":"disk gone"}"#),
    ] {
        let answer = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), status);
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/health+json")
        );
        assert_eq!(answer.text().await.expect("body"), body);
    }
    task.abort();
}
