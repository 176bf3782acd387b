//! The monitoring engine end to end on real parts: the real probe against a real loopback app
//! whose answer changes from one check to the next, the state machine, the real store, and the
//! API staying responsive while it runs. (The checks run faster than the API allows, to keep the
//! test short: the spec is built directly, not through validation.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use healthchecker_server::api::{self, AppState};
use healthchecker_server::health::State;
use healthchecker_server::monitors::{Monitors, MonitorsOptions, Parts};
use healthchecker_server::probe::{Prober, Reason};
use healthchecker_server::registry::{AppName, MonitorSpec};
use healthchecker_server::store::{Store, StoreOptions};
use healthchecker_server::{Config, health::Outcome};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

#[derive(Debug, Clone, Copy)]
enum Answer {
    Fine,
    Warn,
    Unavailable,
    Slow,
    BodyFail,
    Redirect,
    Huge,
}

async fn respond(script: Arc<Mutex<VecDeque<Answer>>>) -> Response {
    let answer = script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Answer::Fine);
    match answer {
        Answer::Fine => (StatusCode::OK, r#"{"status":"pass"}"#).into_response(),
        Answer::Warn => (StatusCode::OK, r#"{"status":"warn"}"#).into_response(),
        Answer::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Answer::Slow => {
            tokio::time::sleep(Duration::from_millis(800)).await;
            StatusCode::OK.into_response()
        }
        Answer::BodyFail => (StatusCode::OK, r#"{"status":"fail"}"#).into_response(),
        Answer::Redirect => (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")]).into_response(),
        Answer::Huge => (StatusCode::OK, vec![b'x'; 10 * 1024 * 1024]).into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_flip_and_the_states_follow_the_table() {
    use Answer::*;
    let script = Arc::new(Mutex::new(VecDeque::from([
        Fine,
        Warn,
        Fine,
        Unavailable,
        Slow,
        BodyFail,
        Redirect,
        Huge,
        Fine,
    ])));
    let expected: [(Outcome, Reason, State); 9] = [
        (Outcome::Pass, Reason::Ok, State::Healthy),
        (Outcome::Warn, Reason::BodyWarn, State::Degraded),
        (Outcome::Pass, Reason::Ok, State::Healthy), // a blip: one pass is enough
        (Outcome::Fail, Reason::StatusCode, State::Degraded),
        (Outcome::Fail, Reason::Timeout, State::Unhealthy), // two fails in a row
        (Outcome::Fail, Reason::BodyFail, State::Unhealthy),
        (Outcome::Fail, Reason::StatusCode, State::Unhealthy), // the redirect is not followed
        (Outcome::Pass, Reason::Ok, State::Degraded),          // recovering: 1 of 2 passes
        (Outcome::Pass, Reason::Ok, State::Healthy),
    ];

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app_url = format!("http://{}", listener.local_addr().expect("addr"));
    let target = Router::new().route("/health", get(move || respond(Arc::clone(&script))));
    tokio::spawn(async move { axum::serve(listener, target).await });

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let parts = Parts {
        store: store.clone(),
        checker: Arc::new(Prober::new().expect("prober")),
        routes: Default::default(),
        windows: Vec::new(),
        cancel: cancel.clone(),
        tasks: TaskTracker::new(),
    };
    let options = MonitorsOptions {
        first_check_within: Duration::from_millis(10),
        ..MonitorsOptions::default()
    };
    let monitors = Monitors::start(parts, Vec::new(), options);
    let api = api::router(AppState::new(
        Arc::new(Config::default()),
        &healthchecker_server::identity::Identity::for_host("engine-test"),
        monitors.clone(),
        store.clone(),
    ));

    let name = AppName::parse("flipper").expect("name");
    let spec = MonitorSpec {
        expect_status: Default::default(),
        cert_warn_days: 14,
        tls_verify: true,
        url: app_url.parse().expect("url"),
        path: "/health".to_owned(),
        emails: Vec::new(),
        interval: Duration::from_millis(1000),
        timeout: Duration::from_millis(400),
        unhealthy: 2,
        healthy: 2,
        notify: Vec::new(),
        push: None,
    };
    monitors
        .upsert(name.clone(), spec)
        .await
        .expect("registered");

    // Until every scripted answer has been checked, the API answers its own health each time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen < expected.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {seen} of {} checks within 60 s",
            expected.len()
        );
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            api.clone().oneshot(
                Request::get("/health")
                    .body(Body::empty())
                    .expect("request"),
            ),
        )
        .await
        .expect("the API answers while checks run")
        .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        store.flush().await.expect("flush");
        seen = store.log(&name, 100).await.expect("log").len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut log = store.log(&name, 100).await.expect("log");
    log.reverse();
    let got: Vec<(Outcome, Reason, State)> = log
        .iter()
        .take(expected.len())
        .map(|check| (check.record.outcome, check.record.reason, check.state))
        .collect();
    assert_eq!(got, expected, "{log:#?}");
    assert_eq!(log[6].record.http_status, Some(302));
    assert!(
        log[4].record.latency < Duration::from_millis(700),
        "the timeout cut the slow answer"
    );

    let mut changes: Vec<(State, State)> = store
        .transitions(&name, 100)
        .await
        .expect("transitions")
        .iter()
        .rev()
        .map(|transition| (transition.from, transition.to))
        .collect();
    changes.truncate(7);
    assert_eq!(
        changes,
        [
            (State::Unknown, State::Healthy),
            (State::Healthy, State::Degraded),
            (State::Degraded, State::Healthy),
            (State::Healthy, State::Degraded),
            (State::Degraded, State::Unhealthy),
            (State::Unhealthy, State::Degraded),
            (State::Degraded, State::Healthy),
        ]
    );
}
