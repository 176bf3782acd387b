//! The client library against the real server, both in this process on 127.0.0.1 port 0:
//! register, update, info, list, log, pause/resume, stop; with and without a token.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use healthchecker_client::{
    CheckOutcome, Error, HealthCheckResponse, HealthCheckerServer, HealthStatus, Monitor,
    MonitorState,
};
use healthchecker_server::Config;
use healthchecker_server::config::{Mdns, Secret};
use tokio_util::sync::CancellationToken;

struct Running {
    url: String,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn server(token: Option<&str>) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.bind_addr = [127, 0, 0, 1].into();
    config.data_dir = dir.path().to_owned();
    config.mdns = Mdns::Off;
    config.test_mode = true;
    config.token = token.map(|token| Secret::new(token.to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move { healthchecker_server::run(config, listener, shutdown).await });
    Running {
        url,
        stop,
        _dir: dir,
    }
}

/// An app whose `/health` is built with the client's own `HealthCheckResponse`.
async fn app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route(
        "/health",
        get(|| async {
            let answer = HealthCheckResponse::new()
                .description("full-stack test app")
                .status(HealthStatus::Pass);
            ([("content-type", answer.content_type())], answer.body())
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn register_update_read_and_stop_without_a_token() {
    let server = server(None).await;
    let app_url = app().await;
    let client = HealthCheckerServer::at(&server.url, "media-center", &app_url)
        .expect("client")
        .without_token();

    let monitor = Monitor::new()
        .email("me@example.com")
        .interval(5)
        .timeout(2)
        .unhealthy(2)
        .healthy(4);
    let registration = client.monitor(&monitor).await.expect("registers");
    assert!(registration.created);
    assert_eq!(registration.monitor.app, "media-center");
    assert_eq!(
        (registration.monitor.interval, registration.monitor.healthy),
        (5, 4)
    );

    let again = client.monitor(&monitor).await.expect("idempotent");
    assert!(!again.created);
    let updated = client
        .monitor(monitor.clone().interval(6))
        .await
        .expect("updates");
    assert_eq!(updated.monitor.interval, 6);

    // The server checks the app's health+json answer and reports it.
    let deadline = Instant::now() + Duration::from_secs(15);
    let info = loop {
        let info = client.info().await.expect("info");
        if info.state == MonitorState::Healthy || Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(info.state, MonitorState::Healthy);
    assert_eq!(
        info.transitions.first().map(|t| t.to),
        Some(MonitorState::Healthy)
    );
    let log = client.log(10).await.expect("log");
    assert_eq!(log[0].outcome, CheckOutcome::Pass);
    assert_eq!(
        log[0]
            .body
            .as_ref()
            .and_then(|body| body["description"].as_str()),
        Some("full-stack test app")
    );
    let all = client.list().await.expect("list");
    assert_eq!(all.len(), 1);

    assert!(client.pause().await.expect("pause").paused);
    assert!(!client.resume().await.expect("resume").paused);

    client.stop().await.expect("stops");
    assert!(client.list().await.expect("list").is_empty());
    assert!(matches!(
        client.info().await,
        Err(Error::NotMonitored { .. })
    ));
}

#[tokio::test]
async fn a_token_guards_changes() {
    let token = "a-long-enough-test-token";
    let server = server(Some(token)).await;
    let app_url = app().await;
    let anonymous = HealthCheckerServer::at(&server.url, "nas", &app_url)
        .expect("client")
        .without_token();
    let error = anonymous
        .monitor(Monitor::new())
        .await
        .expect_err("no token");
    assert!(matches!(error, Error::Unauthorized { .. }), "{error}");
    assert!(anonymous.list().await.expect("reads are open").is_empty());

    let wrong = HealthCheckerServer::at(&server.url, "nas", &app_url)
        .expect("client")
        .token("not-the-right-token")
        .expect("token");
    assert!(matches!(
        wrong.monitor(Monitor::new()).await,
        Err(Error::Unauthorized { .. })
    ));

    let owner = HealthCheckerServer::at(&server.url, "nas", &app_url)
        .expect("client")
        .token(token)
        .expect("token");
    assert!(
        owner
            .monitor(Monitor::new())
            .await
            .expect("registers")
            .created
    );
    assert!(matches!(
        anonymous.stop().await,
        Err(Error::Unauthorized { .. })
    ));
    owner.stop().await.expect("stops");
}
