//! Push monitors with the real binary: registration over the API, the ping routes (GET, HEAD,
//! POST; success, start, fail, exit status, log; unknown keys), the log entries they leave, the
//! mail a failed job sends through a real SMTP server, and kill -9 under ping load (every ping
//! answered 200 is in the log after the restart).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::smtp::Smtp;
use common::{ServerProcess, command, local_args, temp_dir};
use serde_json::{Value, json};

fn start(dir: &std::path::Path, smtp: Option<u16>) -> ServerProcess {
    let mut cmd = command(dir);
    cmd.args(local_args(dir));
    if let Some(port) = smtp {
        cmd.arg("--smtp-url")
            .arg(format!("smtp://127.0.0.1:{port}"));
    }
    ServerProcess::start(cmd)
}

async fn register(client: &reqwest::Client, server: &str, app: &str, body: Value) -> Value {
    let answer = client
        .put(format!("{server}/api/v1/monitors/{app}"))
        .json(&body)
        .send()
        .await
        .expect("PUT");
    assert!(
        answer.status().is_success(),
        "{app}: {}",
        answer.text().await.unwrap_or_default()
    );
    answer.json().await.expect("JSON")
}

async fn log(client: &reqwest::Client, server: &str, app: &str) -> Vec<Value> {
    let log: Value = client
        .get(format!("{server}/api/v1/monitors/{app}/log?limit=100000"))
        .send()
        .await
        .expect("GET log")
        .json()
        .await
        .expect("JSON");
    log["checks"].as_array().expect("checks").clone()
}

async fn monitor(client: &reqwest::Client, server: &str, app: &str) -> Value {
    client
        .get(format!("{server}/api/v1/monitors/{app}"))
        .send()
        .await
        .expect("GET monitor")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_routes_states_log_and_the_mail_of_a_failed_job() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let mut server = start(dir.path(), Some(smtp.port));
    let client = reqwest::Client::new();
    let url = server.url.clone();

    let created = register(
        &client,
        &url,
        "nightly-backup",
        json!({"kind": "push", "schedule": "0 3 * * *", "tz": "Europe/Berlin", "grace": 600, "email": "me@example.com"}),
    )
    .await;
    assert_eq!(created["kind"], "push");
    assert_eq!(created["state"], "UNKNOWN");
    assert_eq!(created["schedule"], "0 3 * * *");
    assert_eq!(created["tz"], "Europe/Berlin");
    assert_eq!(created["grace"], 600);
    let ping_url = created["ping_url"].as_str().expect("ping_url").to_owned();
    let key = ping_url
        .strip_prefix(&format!("{url}/ping/"))
        .unwrap_or_else(|| panic!("{ping_url} is under {url}/ping/"))
        .to_owned();
    assert_eq!(key.len(), 32);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        !server.lines().iter().any(|line| line.contains(&key)),
        "the key is never logged in full"
    );

    // The same registration again keeps the key; rotate_key makes a new one.
    let again = register(
        &client,
        &url,
        "nightly-backup",
        json!({"kind": "push", "schedule": "0 3 * * *", "tz": "Europe/Berlin", "grace": 600, "email": "me@example.com"}),
    )
    .await;
    assert_eq!(again["ping_url"], ping_url.as_str());

    // Bad registrations name the field and change nothing.
    for (body, field) in [
        (json!({"kind": "push"}), "period"),
        (json!({"kind": "push", "period": 30}), "period"),
        (
            json!({"kind": "push", "period": 3600, "grace": 10}),
            "grace",
        ),
        (
            json!({"kind": "push", "schedule": "61 3 * * *", "grace": 600}),
            "schedule",
        ),
        (
            json!({"kind": "push", "schedule": "0 3 * * *", "tz": "Mars/Olympus"}),
            "tz",
        ),
        (
            json!({"kind": "push", "period": 3600, "url": "http://x"}),
            "url",
        ),
        (json!({"url": "http://x", "period": 3600}), "period"),
        (json!({"kind": "pull", "period": 3600}), "kind"),
    ] {
        let answer = client
            .put(format!("{url}/api/v1/monitors/nightly-backup"))
            .json(&body)
            .send()
            .await
            .expect("PUT");
        assert_eq!(answer.status(), 422, "{body}");
        let error: Value = answer.json().await.expect("JSON");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    assert_eq!(
        monitor(&client, &url, "nightly-backup").await["ping_url"],
        ping_url.as_str()
    );

    // start, then success (HEAD): HEALTHY, with the run time.
    let answer = client
        .get(format!("{ping_url}/start"))
        .send()
        .await
        .expect("start");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("text"), "OK\n");
    let answer = client.head(&ping_url).send().await.expect("HEAD");
    assert_eq!(answer.status(), 200);
    let view = monitor(&client, &url, "nightly-backup").await;
    assert_eq!(view["state"], "HEALTHY");
    assert!(view["expected_by"].is_string(), "{view}");
    assert!(view["last_success"].is_string());
    assert_eq!(view["running_since"], Value::Null);

    // a message, longer than the log keeps: logged (cut and marked), nothing changes
    let answer = client
        .post(format!("{ping_url}/log"))
        .body(format!("disk 81% full\n{}", "x".repeat(20_000)))
        .send()
        .await
        .expect("log");
    assert_eq!(answer.status(), 200);

    // the job fails with exit status 3 and its output: UNHEALTHY at once, mailed
    let output = "sending incremental file list\nrsync: connection unexpectedly closed\n";
    let answer = client
        .post(format!("{ping_url}/3"))
        .body(output)
        .send()
        .await
        .expect("exit 3");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        monitor(&client, &url, "nightly-backup").await["state"],
        "UNHEALTHY"
    );
    let mail = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(
        mail.subject(),
        "[healthchecker] nightly-backup is UNHEALTHY"
    );
    let body = mail.body();
    assert!(body.contains("job_failed"), "{body}");
    assert!(body.contains("exit status 3"), "{body}");
    assert!(
        body.contains("rsync: connection unexpectedly closed"),
        "the mail shows the job's output: {body}"
    );

    // success again: recovered, mailed
    let answer = client
        .post(format!("{ping_url}/0"))
        .send()
        .await
        .expect("0");
    assert_eq!(answer.status(), 200);
    let mail = smtp.next(Duration::from_secs(20)).await;
    assert!(
        mail.subject().contains("nightly-backup"),
        "{}",
        mail.subject()
    );
    assert_eq!(
        monitor(&client, &url, "nightly-backup").await["state"],
        "HEALTHY"
    );

    // the log: every ping, newest first, with kind, exit status, run time and the bounded body
    let entries = log(&client, &url, "nightly-backup").await;
    let kinds: Vec<&str> = entries
        .iter()
        .map(|entry| entry["kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(kinds, ["exit", "exit", "log", "success", "start"]);
    assert_eq!(entries[0]["exit_status"], 0);
    assert_eq!(entries[1]["exit_status"], 3);
    assert_eq!(entries[1]["reason"], "job_failed");
    assert_eq!(entries[1]["state"], "UNHEALTHY");
    assert_eq!(entries[1]["detail"], output);
    let detail = entries[2]["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("disk 81% full\n")
            && detail.len() < 10_100
            && detail.ends_with("[cut: 20014 bytes in all, the first 10000 kept]"),
        "bounded and marked: {} bytes",
        detail.len()
    );
    assert_eq!(entries[2]["reason"], "logged");
    assert!(entries[3]["run_s"].as_f64().is_some(), "{}", entries[3]);
    assert_eq!(entries[4]["reason"], "started");

    // unknown keys and ping kinds are 404; a ping needs no token
    for path in [
        format!("/ping/{}", "0".repeat(32)),
        "/ping/short".to_owned(),
        format!("/ping/{key}/256"),
        format!("/ping/{key}/stop"),
    ] {
        let answer = client
            .get(format!("{url}{path}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(answer.status(), 404, "{path}");
    }
    let _ = server.signal_and_wait("TERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_ping_load_loses_no_acknowledged_ping() {
    const MONITORS: usize = 8;
    let dir = temp_dir();
    let mut server = start(dir.path(), None);
    let client = reqwest::Client::new();
    let mut urls = Vec::new();
    for i in 0..MONITORS {
        let view = register(
            &client,
            &server.url,
            &format!("job-{i}"),
            json!({"kind": "push", "period": 3600, "grace": 600}),
        )
        .await;
        urls.push(view["ping_url"].as_str().expect("ping_url").to_owned());
    }
    // Each client pings with a numbered message; what was answered 200 must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (i, ping_url) in urls.iter().enumerate() {
        for worker in 0..4 {
            let client = client.clone();
            let ping_url = ping_url.clone();
            let stop = Arc::clone(&stop);
            workers.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                // below the log's retention (1000 per monitor), so nothing is trimmed
                for n in 0..240u32 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let message = format!("job-{i} worker-{worker} ping-{n}");
                    let sent = tokio::time::timeout(
                        Duration::from_secs(10),
                        client
                            .post(format!("{ping_url}/log"))
                            .body(message.clone())
                            .send(),
                    )
                    .await;
                    match sent {
                        Ok(Ok(answer)) if answer.status() == 200 => acknowledged.push(message),
                        _ => break, // the server is gone
                    }
                }
                acknowledged
            }));
        }
    }
    // Let some pings land, then kill in the middle of the traffic.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log(&client, &server.url, "job-0").await.len() < 200 {
        assert!(std::time::Instant::now() < deadline, "pings are too slow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = server.signal_and_wait("KILL");
    assert!(!killed.success());
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = HashSet::new();
    for worker in workers {
        acknowledged.extend(worker.await.expect("worker"));
    }
    assert!(
        acknowledged.len() >= 200,
        "{} acknowledged",
        acknowledged.len()
    );

    let server = start(dir.path(), None);
    let mut kept = HashSet::new();
    for i in 0..MONITORS {
        for entry in log(&client, &server.url, &format!("job-{i}")).await {
            if let Some(detail) = entry["detail"].as_str() {
                kept.insert(detail.to_owned());
            }
        }
    }
    let lost: Vec<&String> = acknowledged.difference(&kept).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged pings are not in the log after the restart, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    // and the key still works (the restarted server has a new port)
    let key = urls[0].rsplit('/').next().expect("key");
    let answer = client
        .get(format!("{}/ping/{key}", server.url))
        .send()
        .await
        .expect("ping");
    assert_eq!(answer.status(), 200);
}

/// `healthchecker-server exec` as cron runs it: the command's output passes through, its exit
/// status is the wrapper's and is reported with the output; without a server the command still
/// runs and the wrapper says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_wraps_a_cron_job_and_exits_with_its_status() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let server = start(dir.path(), Some(smtp.port));
    let client = reqwest::Client::new();
    let exec = |args: &[&str]| {
        let mut cmd = command(dir.path());
        cmd.arg("exec").args(args);
        cmd.output().expect("exec runs")
    };
    let failed = exec(&[
        "backup",
        "--period",
        "1d",
        "--grace",
        "1h",
        "--email",
        "me@example.com",
        "--server",
        &server.url,
        "--",
        "sh",
        "-c",
        "echo copying files; echo 'disk full' >&2; exit 3",
    ]);
    assert_eq!(failed.status.code(), Some(3), "the command's status");
    assert_eq!(String::from_utf8_lossy(&failed.stdout), "copying files\n");
    assert_eq!(String::from_utf8_lossy(&failed.stderr), "disk full\n");
    let mail = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(mail.subject(), "[healthchecker] backup is UNHEALTHY");
    // stdout and stderr are two pipes: which line came last is the scheduler's choice
    assert!(
        mail.body().contains("exit status 3: disk full")
            || mail.body().contains("exit status 3: copying files"),
        "{}",
        mail.body()
    );
    assert!(
        mail.body().contains("push: every 86400 s, grace 3600 s"),
        "{}",
        mail.body()
    );
    let entries = log(&client, &server.url, "backup").await;
    assert_eq!(entries[0]["kind"], "exit");
    assert_eq!(entries[0]["exit_status"], 3);
    let detail = entries[0]["detail"].as_str().expect("the output");
    assert!(
        detail == "copying files\ndisk full\n" || detail == "disk full\ncopying files\n",
        "{detail}"
    );
    assert!(entries[0]["run_s"].is_number());
    assert_eq!(entries[1]["kind"], "start");

    // without --period or --schedule: the existing monitor
    let fine = exec(&["backup", "--server", &server.url, "--", "true"]);
    assert_eq!(fine.status.code(), Some(0));
    assert_eq!(
        monitor(&client, &server.url, "backup").await["state"],
        "HEALTHY"
    );

    // the server is gone: the command still runs, the wrapper says why on stderr
    let marker = dir.path().join("ran");
    let nobody = format!("http://127.0.0.1:{}", common::free_port());
    let unreported = exec(&[
        "backup",
        "--server",
        &nobody,
        "--",
        "sh",
        "-c",
        &format!("touch '{}'; exit 4", marker.display()),
    ]);
    assert_eq!(unreported.status.code(), Some(4));
    assert!(marker.exists(), "the command ran");
    let stderr = String::from_utf8_lossy(&unreported.stderr);
    assert!(stderr.contains("cannot report"), "{stderr}");
    // a command that does not exist: 127, reported as a failure
    let missing = exec(&["backup", "--server", &server.url, "--", "/nonexistent/job"]);
    assert_eq!(missing.status.code(), Some(127));
    assert_eq!(
        monitor(&client, &server.url, "backup").await["state"],
        "UNHEALTHY"
    );
}

/// The client crate's heartbeat against the real binary: register, run a job that fails and
/// one that succeeds, ping by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_heartbeat_reports_jobs() {
    use healthchecker_client::api::ApiClient;
    use healthchecker_client::{AppName, PushMonitor};
    let dir = temp_dir();
    let server = start(dir.path(), None);
    let client = reqwest::Client::new();
    let api = ApiClient::new(&server.url).expect("client");
    let app = AppName::parse("indexer").expect("name");
    let heartbeat = api
        .push(&app, &PushMonitor::every(Duration::from_secs(3600)))
        .await
        .expect("registered");
    let failed = heartbeat
        .run(async { Err::<(), _>("disk full") })
        .await
        .expect("reported");
    assert_eq!(failed, Err("disk full"));
    assert_eq!(
        monitor(&client, &server.url, "indexer").await["state"],
        "UNHEALTHY"
    );
    let done = heartbeat
        .run(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, String>(7)
        })
        .await
        .expect("reported");
    assert_eq!(done, Ok(7));
    let entries = log(&client, &server.url, "indexer").await;
    assert_eq!(entries[0]["kind"], "success");
    assert!(entries[0]["run_s"].as_f64().is_some_and(|run| run >= 0.05));
    assert_eq!(entries[2]["kind"], "fail");
    assert!(
        entries[2]["detail"]
            .as_str()
            .is_some_and(|detail| detail.ends_with("disk full")),
        "{}",
        entries[2]
    );
    heartbeat.log("reindexed 3 shards").await.expect("log");
    heartbeat.exit(0, "").await.expect("exit");
    // the same registration again keeps the URL; the old handle still works
    let again = api
        .push(&app, &PushMonitor::every(Duration::from_secs(3600)))
        .await
        .expect("again");
    again.ping().await.expect("ping");
    heartbeat.ping().await.expect("the same key");
    // a rotated key: the old handle is refused (404), naming no key
    let rotated = api
        .push(
            &app,
            &PushMonitor::every(Duration::from_secs(3600)).rotate_key(),
        )
        .await
        .expect("rotated");
    rotated.ping().await.expect("new key");
    let error = heartbeat.ping().await.expect_err("old key");
    assert!(error.to_string().contains("404"), "{error}");
    assert!(api.heartbeat(&app).await.is_ok());
}
