//! The full example as a process: it registers with a (scripted) server on 127.0.0.1, serves
//! `/health`, and unregisters on SIGTERM. Loopback only: the app is bound to 127.0.0.1, so its
//! public URL is a loopback URL too.

#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use healthchecker_client::testing::{FakeServer, Reply, monitor_view};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A guard against a hung child, not a synchronisation: every wait below ends on output.
const GUARD: Duration = Duration::from_secs(60);

async fn line_starting(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    let wait = async {
        loop {
            match lines.next_line().await.expect("read stdout") {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => {}
                None => panic!("the example exited before printing {prefix:?}"),
            }
        }
    };
    tokio::time::timeout(GUARD, wait)
        .await
        .unwrap_or_else(|_| panic!("no {prefix:?} line within {GUARD:?}"))
}

fn start(fake: &FakeServer, extra: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-app"))
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--email",
            "test@example.com",
        ])
        .args(extra)
        .env("HEALTHCHECKER_URL", fake.url())
        .env_remove("HEALTHCHECKER_TOKEN")
        .env_remove("EXAMPLE_PUBLIC_URL")
        .env_remove("EXAMPLE_APP")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start example-app");
    let stdout = child.stdout.take().expect("stdout");
    (child, BufReader::new(stdout).lines())
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn registers_serves_health_and_unregisters_on_sigterm() {
    let app = "Sample HealthChecker App";
    let fake = FakeServer::start([Reply::json(201, monitor_view(app, "")), Reply::empty(204)])
        .await
        .expect("fake server");
    let (mut child, mut lines) = start(&fake, &[]);

    let serving = line_starting(&mut lines, "serving on ").await;
    let url = serving
        .rsplit_once("reachable at ")
        .map(|(_, url)| url.to_owned())
        .expect("url in the serving line");
    assert!(url.starts_with("http://127.0.0.1:"), "{serving}");
    let registered = line_starting(&mut lines, "registered with healthchecker at ").await;
    assert!(
        registered.ends_with(&format!("{}/", fake.url())),
        "{registered}"
    );

    let put = &fake.requests()[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(put.path, "/api/v1/monitors/Sample%20HealthChecker%20App");
    assert_eq!(
        put.json(),
        Some(json!({
            "url": url,
            "email": ["test@example.com"],
            "interval": 10,
            "unhealthy": 2,
            "healthy": 4
        }))
    );

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let health = http
        .get(format!("{url}/health"))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health.text().await.expect("body"),
        r#"{"status":"pass","description":"Sample HealthChecker App"}"#
    );

    sigterm(&child);
    line_starting(&mut lines, "unregistered").await;
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].method, "DELETE");
    assert_eq!(requests[1].path, put.path);
}

#[tokio::test]
async fn an_explicit_public_url_is_registered_and_a_refusal_stops_the_app() {
    let fake = FakeServer::start([Reply::error(
        422,
        "invalid_field",
        "email \"test@example.com\": domain not allowed",
        Some("email"),
    )])
    .await
    .expect("fake server");
    let (mut child, mut lines) = start(&fake, &["--public-url", "http://127.0.0.1:1/app"]);
    line_starting(&mut lines, "serving on ").await;
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(!status.success(), "{status}");
    let put = &fake.requests()[0];
    assert_eq!(
        put.json().and_then(|body| body.get("url").cloned()),
        Some(json!("http://127.0.0.1:1/app"))
    );
}
