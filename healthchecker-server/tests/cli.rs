//! The subcommands that talk to a server (`list`, `log`, `maintenance`, `test-channel`) of the
//! real binary against a real server, both on loopback. (`discover` and the mDNS fallback are covered by the discovery tests, which run in a
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
    subcommand_with_token(args, None)
}

fn subcommand_with_token(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(BINARY);
    match token {
        Some(token) => command.env("HEALTHCHECKER_TOKEN", token),
        None => command.env_remove("HEALTHCHECKER_TOKEN"),
    };
    let output = command
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

/// A loopback webhook receiver: answers `status` and counts the posts it got.
async fn receiver(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route(
        "/hook",
        axum::routing::post(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            let status = axum::http::StatusCode::from_u16(status).expect("status");
            async move { (status, "thanks") }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook"), count)
}

// Two worker threads: the receivers answer while `subcommand` blocks one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_and_test_channel_change_the_server_with_its_token() {
    use std::sync::atomic::Ordering;
    let dir = temp_dir();
    let (good, delivered) = receiver(200).await;
    let (bad, _) = receiver(500).await;
    let config = dir.path().join("healthchecker.toml");
    std::fs::write(
        &config,
        format!(
            "[[channel]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{good}\"\n\n\
             [[channel]]\nname = \"broken\"\nkind = \"webhook\"\nurl = \"{bad}\"\n"
        ),
    )
    .expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .args(["--token", "cli-secret", "--config"])
        .arg(&config);
    let server = ServerProcess::start(cmd);
    let app_url = app().await;
    let answer = reqwest::Client::new()
        .put(format!("{}/api/v1/monitors/nas", server.url))
        .bearer_auth("cli-secret")
        .json(&serde_json::json!({"url": app_url, "interval": 10, "email": ["ops@example.com"]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 201, "{:?}", answer.text().await);
    let url = server.url.as_str();

    // without the token: refused, and nothing changed
    let (code, _, err) = subcommand(&["maintenance", "nas", "15m", "--server", url]);
    assert_eq!(code, 1);
    assert!(err.contains("HEALTHCHECKER_TOKEN"), "{err}");
    let (_, out, _) = subcommand(&["list", "--json", "--server", url]);
    assert!(out.contains("\"maintenance_until\": null"), "{out}");

    let token = Some("cli-secret");
    let (code, out, err) = subcommand_with_token(
        &[
            "maintenance",
            "nas",
            "1h30m",
            "--reason",
            "disk swap",
            "--server",
            url,
        ],
        token,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("nas: in maintenance until ") && out.trim_end().ends_with("(disk swap)"),
        "{out}"
    );
    let (_, out, _) = subcommand(&["list", "--json", "--server", url]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(list["monitors"][0]["maintenance_reason"], "disk swap");
    let until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(list["monitors"][0]["maintenance_until"].clone()).expect("time");
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(88) && left <= chrono::Duration::minutes(90),
        "{left}"
    );

    let (code, out, err) =
        subcommand_with_token(&["maintenance", "nas", "--end", "--server", url], token);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("nas: not in maintenance; state "), "{out}");

    // a duration is needed unless --end; a bad one names the problem
    let (code, _, err) = subcommand(&["maintenance", "nas", "--server", url]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("<DURATION>"), "{err}");
    let (code, _, err) = subcommand(&["maintenance", "nas", "soon", "--server", url]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'soon'"), "{err}");

    let (code, out, err) = subcommand_with_token(&["test-channel", "hook", "--server", url], token);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("hook: delivered; the receiver answered:"),
        "{out}"
    );
    assert_eq!(delivered.load(Ordering::SeqCst), 1);

    let (code, _, err) = subcommand_with_token(&["test-channel", "broken", "--server", url], token);
    assert_eq!(code, 1);
    assert!(err.contains("502") && err.contains("500"), "{err}");
    let (code, _, err) = subcommand_with_token(&["test-channel", "pager", "--server", url], token);
    assert_eq!(code, 1);
    assert!(err.contains("404") && err.contains("pager"), "{err}");
}
