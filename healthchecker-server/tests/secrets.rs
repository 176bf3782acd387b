//! Secrets with the real binary: a token that looks like a number works from the environment and
//! from the config file, and no secret (the token, the SMTP password) shows in any log line, at
//! the debug level too, in an error or in an API answer.

mod common;

use common::{ServerProcess, command, local_args, run_to_end, temp_dir};

const TOKEN: &str = "12345678";
const SMTP_PASSWORD: &str = "pw-31337";

/// Registers an app with and without the token; returns the statuses.
async fn register(server: &ServerProcess, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .put(format!("{}/api/v1/monitors/nas", server.url))
        .json(&serde_json::json!({"url": "http://127.0.0.1:9", "interval": 5, "timeout": 2}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("PUT").status().as_u16()
}

/// Everything a user can see of the server: its log and its API answers.
async fn everything_shown(server: &ServerProcess) -> String {
    let client = reqwest::Client::new();
    let mut shown = server.lines().join("\n");
    for path in ["/health", "/api/v1/monitors", "/api/v1/monitors/nas"] {
        let answer = client
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .expect("GET");
        shown.push_str(&answer.text().await.expect("body"));
    }
    shown
}

#[tokio::test]
async fn a_numeric_token_from_the_environment_works_and_never_shows() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    cmd.args([
        "--debug",
        "--smtp-url",
        &format!("smtp://me:{SMTP_PASSWORD}@127.0.0.1:1"),
        "--mail-from",
        "hc@example.com",
    ]);
    cmd.env("HEALTHCHECKER_TOKEN", TOKEN);
    let server = ServerProcess::start(cmd);

    assert_eq!(register(&server, None).await, 401);
    assert_eq!(register(&server, Some("87654321")).await, 401);
    assert_eq!(register(&server, Some(TOKEN)).await, 201);
    let shown = everything_shown(&server).await;
    assert!(!shown.contains(TOKEN), "the token shows:\n{shown}");
    assert!(
        !shown.contains(SMTP_PASSWORD),
        "the SMTP password shows:\n{shown}"
    );
}

#[tokio::test]
async fn a_numeric_token_in_the_config_file_works() {
    let dir = temp_dir();
    let file = dir.path().join("config");
    std::fs::write(&file, format!("token = {TOKEN}\n")).expect("config file");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    cmd.args(["--debug", "--config", &file.display().to_string()]);
    let server = ServerProcess::start(cmd);

    assert_eq!(register(&server, None).await, 401);
    assert_eq!(register(&server, Some(TOKEN)).await, 201);
    let shown = everything_shown(&server).await;
    assert!(!shown.contains(TOKEN), "the token shows:\n{shown}");
}

#[test]
fn a_refused_secret_is_named_not_shown() {
    let dir = temp_dir();
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    cmd.env("HEALTHCHECKER_TOKEN", "9081726");
    let (status, output) = run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("HEALTHCHECKER_TOKEN"), "{output}");
    assert!(!output.contains("9081726"), "{output}");

    let file = dir.path().join("config");
    std::fs::write(&file, "token = 1234.5678\n").expect("config file");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()));
    cmd.args(["--config", &file.display().to_string()]);
    let (status, output) = run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("`token`"), "{output}");
    assert!(!output.contains("1234.5678"), "{output}");
}
