//! Channels end to end, with the real binary and a config file: a loopback receiver that records
//! every request and checks each kind's documented shape, a real SMTP server, a real command that
//! records its environment; a flaky receiver (500, then 200), one that refuses (400) and one that
//! hangs; a restart between the alert and the recovery. Every channel gets each event once.
//!
//! The receivers follow each service's documentation: ntfy's publish API (`docs.ntfy.sh/publish`:
//! `Title`, `Priority`, `Tags`, bearer token), Gotify's `POST /message` (`X-Gotify-Key`, JSON
//! `title`/`message`/`priority`), Discord's execute-webhook JSON (`content`, `embeds`,
//! `allowed_mentions`), Slack's incoming webhooks (`text`), Telegram's Bot API `sendMessage`
//! (`chat_id`, `text`), Pushover's `1/messages.json` (form `token`, `user`, `title`, `message`,
//! `priority`).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::hooks::{Log, receiver};
use common::smtp::Smtp;
use common::{ServerProcess, command, local_args, temp_dir};
use serde_json::{Value, json};

/// An app whose `/health` passes or fails as the test says.
async fn app(up: Arc<Mutex<bool>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route(
        "/health",
        get(move || {
            let up = *up.lock().expect("lock");
            async move {
                if up {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn config_file(dir: &Path, hooks: &str, envs: &Path) -> std::path::PathBuf {
    let script = format!(
        "env | grep '^HEALTHCHECKER_' | sort > {}/env.$HEALTHCHECKER_EVENT.$$",
        envs.display()
    );
    let text = format!(
        r#"
# plain options come before the first table
default_channels = ["hook", "flaky"]

[[channel]]
name = "hook"
kind = "webhook"
url = "{hooks}/webhook"
secret = "s3cret-key"
headers = {{ X-Team = "ops" }}

[[channel]]
name = "phone"
kind = "ntfy"
url = "{hooks}/ntfy/lab-alerts"
token = "tk_secret"
events = ["unhealthy", "recovered"]

[[channel]]
name = "gotify"
kind = "gotify"
url = "{hooks}/gotify"
token = "AgotifyToken"

[[channel]]
name = "discord"
kind = "discord"
url = "{hooks}/discord"

[[channel]]
name = "slack"
kind = "slack"
url = "{hooks}/slack"

[[channel]]
name = "telegram"
kind = "telegram"
api_url = "{hooks}/tg"
token = "123:TelegramToken"
chat_id = -1001

[[channel]]
name = "pushover"
kind = "pushover"
api_url = "{hooks}/po"
token = "PushoverAppToken"
user = "PushoverUserKey"

[[channel]]
name = "action"
kind = "command"
program = "/bin/sh"
args = ["-c", "{script}"]

[[channel]]
name = "ops"
kind = "email"
to = ["ops@example.com"]

[[channel]]
name = "flaky"
kind = "webhook"
url = "{hooks}/flaky"

[[channel]]
name = "refuses"
kind = "webhook"
url = "{hooks}/refuses"

[[channel]]
name = "hangs"
kind = "webhook"
url = "{hooks}/hangs"
timeout = 2
"#
    );
    let path = dir.join("config");
    std::fs::write(&path, text).expect("config file");
    path
}

fn start(dir: &Path, config: &Path, smtp: u16) -> ServerProcess {
    let mut cmd = command(dir);
    cmd.args(local_args(dir))
        .arg("--config")
        .arg(config)
        .arg("--smtp-url")
        .arg(format!("smtp://127.0.0.1:{smtp}"))
        // the server's own secrets must not reach a command's environment
        .env("HEALTHCHECKER_TOKEN", "server-secret-token");
    ServerProcess::start(cmd)
}

async fn state(client: &reqwest::Client, server: &str) -> String {
    let monitor: Value = client
        .get(format!("{server}/api/v1/monitors/nas"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    monitor["state"].as_str().unwrap_or_default().to_owned()
}

async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PATHS: [&str; 8] = [
    "/webhook",
    "/ntfy/lab-alerts",
    "/gotify/message",
    "/discord",
    "/slack",
    "/tg/bot123:TelegramToken/sendMessage",
    "/po/1/messages.json",
    "/flaky",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_gets_each_event_once_across_a_restart() {
    let dir = temp_dir();
    let envs = dir.path().join("envs");
    std::fs::create_dir(&envs).expect("dir");
    let mut smtp = Smtp::start();
    let log = Log::default();
    let hooks = receiver(log.clone()).await;
    let up = Arc::new(Mutex::new(true));
    let app = app(Arc::clone(&up)).await;
    let config = config_file(dir.path(), &hooks, &envs);
    let client = reqwest::Client::new();

    let mut server = start(dir.path(), &config, smtp.port);
    let answer = client
        .put(format!("{}/api/v1/monitors/nas", server.url))
        .bearer_auth("server-secret-token")
        .json(&json!({
            "url": app, "email": "me@example.com", "interval": 5, "timeout": 2,
            "unhealthy": 2, "healthy": 2,
            "notify": ["phone", "gotify", "discord", "slack", "telegram", "pushover",
                       "action", "ops", "refuses", "hangs"],
        }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        answer.status(),
        201,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    // an unknown channel is refused, naming the field
    let refused = client
        .put(format!("{}/api/v1/monitors/other", server.url))
        .bearer_auth("server-secret-token")
        .json(&json!({"url": app, "notify": ["pager"]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["field"], "notify");

    until("HEALTHY", async || {
        state(&client, &server.url).await == "HEALTHY"
    })
    .await;
    *up.lock().expect("lock") = false;
    until("UNHEALTHY", async || {
        state(&client, &server.url).await == "UNHEALTHY"
    })
    .await;
    let unhealthy_at = Instant::now();
    until("the alert on every HTTP channel", async || {
        PATHS
            .iter()
            .all(|path| log.delivered(path, "UNHEALTHY") >= 1)
    })
    .await;
    eprintln!(
        "UNHEALTHY -> every HTTP channel delivered (the flaky one on its second attempt): {:?}",
        unhealthy_at.elapsed()
    );
    assert!(
        unhealthy_at.elapsed() < Duration::from_secs(20),
        "the hanging channel held nobody up: {:?}",
        unhealthy_at.elapsed()
    );
    let mut mails = Vec::new();
    while mails.len() < 2 {
        mails.push(smtp.next(Duration::from_secs(20)).await);
    }
    until("the command ran", async || {
        std::fs::read_dir(&envs).expect("dir").count() >= 1
    })
    .await;

    // a restart between the alert and the recovery
    let status = tokio::task::block_in_place(|| server.signal_and_wait("TERM"));
    assert!(status.success(), "{status}");
    let mut server = start(dir.path(), &config, smtp.port);
    *up.lock().expect("lock") = true;
    until("HEALTHY again", async || {
        state(&client, &server.url).await == "HEALTHY"
    })
    .await;
    until("the recovery on every HTTP channel", async || {
        PATHS.iter().all(|path| log.delivered(path, "HEALTHY") >= 1)
    })
    .await;
    while mails.len() < 4 {
        mails.push(smtp.next(Duration::from_secs(20)).await);
    }
    until("the command ran twice", async || {
        std::fs::read_dir(&envs).expect("dir").count() >= 2
    })
    .await;
    // Let anything that would be sent twice arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // exactly once per event per channel
    for path in PATHS {
        let delivered: Vec<Value> = log
            .on(path)
            .iter()
            .filter(|r| r.status < 300)
            .map(|r| match r.json() {
                Value::Null => json!(String::from_utf8_lossy(&r.body)),
                json => json,
            })
            .collect();
        assert_eq!(delivered.len(), 2, "{path}: {delivered:#?}");
    }
    assert_eq!(
        log.on("/flaky").len(),
        4,
        "each message: one 500, then delivered"
    );
    assert_eq!(log.on("/refuses").len(), 2, "a 400 is not tried again");
    let mut to: Vec<Vec<String>> = mails.iter().map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        [
            vec!["me@example.com".to_owned()],
            vec!["me@example.com".to_owned()],
            vec!["ops@example.com".to_owned()],
            vec!["ops@example.com".to_owned()],
        ]
    );
    smtp.none_within(Duration::from_millis(500)).await;

    check_shapes(&log);
    check_command(&envs);
    check_channel_list(&client, &server.url).await;
    check_test_route(&client, &server.url, &log).await;
    let status = tokio::task::block_in_place(|| server.signal_and_wait("TERM"));
    assert!(status.success(), "{status}");
}

/// Each kind's request, as its service documents it.
fn check_shapes(log: &Log) {
    let webhook = &log.on("/webhook")[0];
    let event = webhook.json();
    assert_eq!(event["event"], "unhealthy");
    assert_eq!(event["app"], "nas");
    assert_eq!(event["state"], "UNHEALTHY");
    assert_eq!(event["previous"], "DEGRADED");
    assert_eq!(event["reason"], "status_code");
    assert!(event["incident"]["downtime_s"].as_u64().is_some());
    assert!(event["checks"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(
        webhook.header("Idempotency-Key"),
        event["id"].as_str().expect("id")
    );
    assert_eq!(webhook.header("X-Team"), "ops");
    assert_eq!(webhook.header("content-type"), "application/json");
    // the signature, checked by an independent implementation (Python's hmac)
    let expected = std::process::Command::new("python3")
        .arg("-c")
        .arg("import hashlib, hmac, sys; print('sha256=' + hmac.new(b's3cret-key', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().expect("stdin").write_all(&webhook.body)?;
            child.wait_with_output()
        })
        .expect("python3 runs");
    assert_eq!(
        webhook.header("X-Healthchecker-Signature"),
        String::from_utf8_lossy(&expected.stdout).trim()
    );

    let ntfy = &log.on("/ntfy/lab-alerts");
    assert_eq!(ntfy[0].header("Title"), "nas is UNHEALTHY");
    assert_eq!(ntfy[0].header("Priority"), "urgent");
    assert_eq!(ntfy[0].header("Tags"), "rotating_light");
    assert_eq!(ntfy[0].header("Authorization"), "Bearer tk_secret");
    assert_eq!(ntfy[1].header("Title"), "nas is HEALTHY again");
    assert_eq!(ntfy[1].header("Priority"), "default");

    let gotify = &log.on("/gotify/message")[0];
    assert_eq!(gotify.header("X-Gotify-Key"), "AgotifyToken");
    assert_eq!(gotify.json()["title"], "nas is UNHEALTHY");
    assert_eq!(gotify.json()["priority"], 8);
    assert!(gotify.json()["message"].is_string());

    let discord = log.on("/discord")[0].json();
    assert_eq!(discord["content"], "nas is UNHEALTHY");
    assert!(discord["embeds"][0]["description"].is_string());
    assert_eq!(discord["allowed_mentions"]["parse"], json!([]));

    let slack = log.on("/slack")[0].json();
    assert!(
        slack["text"]
            .as_str()
            .expect("text")
            .starts_with("*nas is UNHEALTHY*")
    );

    let telegram = log.on("/tg/bot123:TelegramToken/sendMessage")[0].json();
    assert_eq!(telegram["chat_id"], -1001);
    assert!(
        telegram["text"]
            .as_str()
            .expect("text")
            .starts_with("nas is UNHEALTHY")
    );

    let pushover = &log.on("/po/1/messages.json")[0];
    assert_eq!(
        pushover.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    let form: HashMap<String, String> = url::form_urlencoded::parse(&pushover.body)
        .into_owned()
        .collect();
    assert_eq!(form["token"], "PushoverAppToken");
    assert_eq!(form["user"], "PushoverUserKey");
    assert_eq!(form["title"], "nas is UNHEALTHY");
    assert_eq!(form["priority"], "1");
}

/// The command got the event in its environment, and none of the server's own variables.
fn check_command(envs: &Path) {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(envs).expect("dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        assert!(!text.contains("server-secret-token"), "{text}");
        assert!(!text.contains("HEALTHCHECKER_TOKEN"), "{text}");
        assert!(text.contains("HEALTHCHECKER_APP=nas"), "{text}");
        assert!(
            text.contains("HEALTHCHECKER_URL=http://127.0.0.1:"),
            "{text}"
        );
        assert!(text.contains("HEALTHCHECKER_INCIDENT=hc."), "{text}");
        let event = text
            .lines()
            .find_map(|line| line.strip_prefix("HEALTHCHECKER_EVENT="))
            .expect("event")
            .to_owned();
        seen.push(event);
    }
    seen.sort();
    assert_eq!(seen, ["recovered", "unhealthy"]);
}

/// `GET /api/v1/channels`: every channel with its last result, and no secret anywhere.
async fn check_channel_list(client: &reqwest::Client, server: &str) {
    let answer = client
        .get(format!("{server}/api/v1/channels"))
        .send()
        .await
        .expect("GET channels");
    let text = answer.text().await.expect("text");
    for secret in [
        "s3cret-key",
        "tk_secret",
        "AgotifyToken",
        "TelegramToken",
        "PushoverAppToken",
        "PushoverUserKey",
        "lab-alerts",
    ] {
        assert!(!text.contains(secret), "{secret} shows in {text}");
    }
    let list: Value = serde_json::from_str(&text).expect("JSON");
    let by_name: HashMap<String, Value> = list["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| (c["name"].as_str().expect("name").to_owned(), c.clone()))
        .collect();
    assert_eq!(by_name["phone"]["kind"], "ntfy");
    assert_eq!(
        by_name["phone"]["events"],
        json!(["unhealthy", "recovered"])
    );
    assert_eq!(by_name["hook"]["last"]["status"], "delivered");
    assert_eq!(by_name["refuses"]["failed"], 2);
    assert_eq!(by_name["refuses"]["last"]["status"], "failed");
    assert!(
        by_name["refuses"]["last"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 400")),
        "{}",
        by_name["refuses"]
    );
    assert!(
        by_name["hangs"]["pending"].as_u64() >= Some(1),
        "still being retried"
    );
}

/// `POST /api/v1/channels/{name}/test`: needs the token, sends whatever the filter, and says
/// when the receiver refuses.
async fn check_test_route(client: &reqwest::Client, server: &str, log: &Log) {
    let test = |name: &str, token: Option<&str>| {
        let mut request = client.post(format!("{server}/api/v1/channels/{name}/test"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(test("phone", None).await.expect("POST").status(), 401);
    let ok = test("phone", Some("server-secret-token"))
        .await
        .expect("POST");
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("JSON");
    assert_eq!(body["answer"], "HTTP 200 OK");
    let tests = log.on("/ntfy/lab-alerts");
    assert_eq!(tests.last().expect("test").header("Tags"), "test_tube");
    let refused = test("refuses", Some("server-secret-token"))
        .await
        .expect("POST");
    assert_eq!(refused.status(), 502);
    let body: Value = refused.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 400")),
        "{body}"
    );
    let unknown = test("pager", Some("server-secret-token"))
        .await
        .expect("POST");
    assert_eq!(unknown.status(), 404);
}

/// Every other service through Apprise: a `command` channel runs the real `apprise` CLI (pip),
/// here against a loopback receiver through its `json://` target. Skips, saying so, when
/// `apprise` is not installed (CI installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apprise_runs_as_a_command_channel() {
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v apprise"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        eprintln!("SKIPPED: the apprise CLI is not installed (python3 -m pip install apprise)");
        return;
    }
    let dir = temp_dir();
    let log = Log::default();
    let hooks = receiver(log.clone()).await;
    let target = hooks.replacen("http://", "json://", 1) + "/apprise";
    // As the README shows it: the event in apprise's title and body, the target as "$0".
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            r#"
[[channel]]
name = "apprise"
kind = "command"
program = "/bin/sh"
args = ["-c", 'apprise -t "$HEALTHCHECKER_APP is $HEALTHCHECKER_STATE" -b "$HEALTHCHECKER_EVENT: $HEALTHCHECKER_REASON $HEALTHCHECKER_DETAIL" "$0"', "{target}"]
"#
        ),
    )
    .expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path()))
        .arg("--config")
        .arg(&config);
    let mut server = ServerProcess::start(cmd);
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/channels/apprise/test", server.url))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let got = log.on("/apprise");
    assert_eq!(got.len(), 1, "apprise posted once: {got:?}");
    let body = got[0].json();
    assert_eq!(body["title"], "healthchecker test is HEALTHY", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("test: test a test message for the channel apprise")),
        "{body}"
    );
    let status = tokio::task::block_in_place(|| server.signal_and_wait("TERM"));
    assert!(status.success(), "{status}");
}
