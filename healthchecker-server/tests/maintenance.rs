//! Maintenance the way a user declares it: through the client crate and the CLI, against the
//! real binary with a real SMTP server, and with a restart inside the window.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use common::smtp::Smtp;
use common::{BINARY, ServerProcess, command, local_args, serve, temp_dir};
use healthchecker_client::{HealthCheckerServer, Monitor, MonitorInfo, MonitorState};

const OWNER: &str = "owner@example.com";

/// An app whose `/health` passes while `up` holds, and answers 503 otherwise.
async fn app(up: Arc<AtomicBool>) -> String {
    serve(Router::new().route(
        "/health",
        get(move || {
            let up = up.load(Ordering::SeqCst);
            async move {
                if up {
                    (StatusCode::OK, r#"{"status":"pass"}"#)
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"fail"}"#)
                }
            }
        }),
    ))
    .await
}

fn start(dir: &std::path::Path, smtp: u16) -> ServerProcess {
    let mut cmd = command(dir);
    cmd.args(local_args(dir))
        .arg("--smtp-url")
        .arg(format!("smtp://127.0.0.1:{smtp}"));
    ServerProcess::start(cmd)
}

/// Registers `nas` at `app_url` through the client: every 5 s (the smallest interval), two
/// failed checks make it UNHEALTHY, two passing ones HEALTHY again.
async fn register(server: &ServerProcess, app_url: &str) -> HealthCheckerServer {
    let client = HealthCheckerServer::at(&server.url, "nas", app_url).expect("client");
    client
        .monitor(
            Monitor::new()
                .email(OWNER)
                .interval(5)
                .timeout(2)
                .unhealthy(2)
                .healthy(2),
        )
        .await
        .expect("registered");
    client
}

/// Polls the monitor through the client until `state` (within 40 s: a few 5 s intervals).
async fn until_state(client: &HealthCheckerServer, state: MonitorState) -> MonitorInfo {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let info = client.info().await.expect("info");
        if info.state == state {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "nas never became {state:?}: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The client puts the app in maintenance for the shortest window (a minute), the app goes
/// down and stays down past it, and the server restarts in the middle: nothing is told during
/// the window, exactly one alert when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_through_the_client_survives_a_restart_and_ends_in_one_alert() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let up = Arc::new(AtomicBool::new(true));
    let app_url = app(Arc::clone(&up)).await;
    let mut server = start(dir.path(), smtp.port);
    let client = register(&server, &app_url).await;
    until_state(&client, MonitorState::Healthy).await;

    let info = client
        .maintenance(Duration::from_secs(60), "firmware update")
        .await
        .expect("maintenance accepted");
    let until: DateTime<Utc> = info.maintenance_until.expect("in maintenance");
    assert_eq!(info.maintenance_reason.as_deref(), Some("firmware update"));
    up.store(false, Ordering::SeqCst);
    until_state(&client, MonitorState::Unhealthy).await;
    smtp.none_within(Duration::from_secs(1)).await;

    assert!(server.signal_and_wait("TERM").success());
    let server = start(dir.path(), smtp.port);
    let client = HealthCheckerServer::at(&server.url, "nas", &app_url).expect("client");
    let info = client.info().await.expect("info");
    assert_eq!(
        info.maintenance_until,
        Some(until),
        "a restart keeps the window"
    );
    assert!(Utc::now() < until, "the restart came inside the window");

    let alert = smtp.next(Duration::from_secs(90)).await;
    assert_eq!(alert.subject(), "[healthchecker] nas is UNHEALTHY");
    assert!(Utc::now() >= until, "not before the window ended");
    smtp.none_within(Duration::from_secs(6)).await;
    let info = client.info().await.expect("info");
    assert_eq!(info.maintenance_until, None, "the window is over");
}

/// A deploy script: `maintenance nas 10m`, the app restarts (down for a few checks, then up),
/// `maintenance nas --end`. No mail at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_script_in_maintenance_gets_no_mail() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let up = Arc::new(AtomicBool::new(true));
    let app_url = app(Arc::clone(&up)).await;
    let server = start(dir.path(), smtp.port);
    let client = register(&server, &app_url).await;
    until_state(&client, MonitorState::Healthy).await;

    let cli = |args: &[&str]| {
        let output = Command::new(BINARY)
            .args(args)
            .args(["--server", &server.url])
            .env_remove("HEALTHCHECKER_TOKEN")
            .output()
            .expect("the CLI runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let said = cli(&["maintenance", "nas", "10m", "--reason", "deploy v2"]);
    assert!(
        said.starts_with("nas: in maintenance until ") && said.contains("(deploy v2)"),
        "{said}"
    );
    up.store(false, Ordering::SeqCst);
    until_state(&client, MonitorState::Unhealthy).await;
    up.store(true, Ordering::SeqCst);
    until_state(&client, MonitorState::Healthy).await;
    let said = cli(&["maintenance", "nas", "--end"]);
    assert_eq!(said.trim(), "nas: not in maintenance; state HEALTHY");
    smtp.none_within(Duration::from_secs(6)).await;
}
