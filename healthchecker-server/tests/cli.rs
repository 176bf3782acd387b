//! The reading subcommands (`list`, `log`) of the real binary against a real server, both on
//! loopback. (`discover` and the mDNS fallback are covered by the discovery tests, which run in a
//! network namespace.)

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{BINARY, ServerProcess, command, local_args, temp_dir};

/// A loopback app whose `/health` passes.
async fn app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route("/health", get(|| async { r#"{"status":"pass"}"# }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn subcommand(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("HEALTHCHECKER_URL")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn list_and_log_show_what_the_server_knows() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    let server = ServerProcess::start(cmd);
    let app_url = app().await;

    let (code, out, _) = subcommand(&["list", "--server", &server.url]);
    assert_eq!((code, out.trim()), (0, "no app is monitored yet"));

    let client = reqwest::Client::new();
    let answer = client
        .put(format!("{}/api/v1/monitors/media center", server.url))
        .json(&serde_json::json!({"url": app_url, "interval": 5, "timeout": 2}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 201);

    // the first check lands within a few seconds
    let deadline = Instant::now() + Duration::from_secs(15);
    let table = loop {
        let (code, out, err) = subcommand(&["list", "--server", &server.url]);
        assert_eq!(code, 0, "{err}");
        if out.contains("HEALTHY") || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATE") && lines[0].contains("LATENCY"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("media center")
            && lines[1].contains("HEALTHY")
            && lines[1].contains("pass ok"),
        "{table}"
    );

    let (code, out, err) = subcommand(&["log", "media center", "--server", &server.url]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|line| line.contains("pass") && line.contains("200") && line.contains("HEALTHY")),
        "{out}"
    );

    let (code, out, _) = subcommand(&[
        "log",
        "media center",
        "--json",
        "-n",
        "1",
        "--server",
        &server.url,
    ]);
    assert_eq!(code, 0);
    let check: serde_json::Value =
        serde_json::from_str(out.trim()).expect("one JSON object per line");
    assert_eq!(check["outcome"], "pass");

    let (code, out, _) = subcommand(&["list", "--json", "--server", &server.url]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(list["monitors"][0]["app"], "media center");

    let (code, _, err) = subcommand(&["log", "ghost", "--server", &server.url]);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no monitor named \"ghost\""),
        "{err}"
    );
}

#[test]
fn a_server_that_is_not_there_is_a_clear_error() {
    let port = common::free_port();
    let (code, _, err) = subcommand(&["list", "--server", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the server at") && err.contains("is it running?"),
        "{err}"
    );
}
