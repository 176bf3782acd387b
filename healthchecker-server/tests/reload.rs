//! Monitors declared in the config file, with the real binary: `[[monitor]]` tables taken at
//! start, SIGHUP reloads that add, change (state kept), change the url (state starts over, the
//! log stays) and remove, a reload that does not validate (nothing changes, the log says why),
//! 409 `managed_by_config` for PUT and DELETE on a declared monitor while pause and resume
//! work, and a restart that takes the file as it is then.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ServerProcess, command, local_args, temp_dir};
use serde_json::{Value, json};

/// A loopback HTTP app that always passes; its URL.
async fn app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { r#"{"status": "pass"}"# }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A loopback TCP listener that accepts (the kernel's backlog answers); its `host:port`.
async fn tcp_port() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    (listener, addr)
}

fn start(dir: &Path) -> ServerProcess {
    let mut cmd = command(dir);
    cmd.args(local_args(dir))
        .arg("--config")
        .arg(dir.join("config"));
    ServerProcess::start(cmd)
}

struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn monitor(&self, app: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/monitors/{app}"),
            None,
        )
        .await
    }

    async fn names(&self) -> Vec<(String, String)> {
        let (_, list) = self
            .call(reqwest::Method::GET, "/api/v1/monitors", None)
            .await;
        list["monitors"]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| {
                (
                    m["app"].as_str().expect("app").to_owned(),
                    m["source"].as_str().expect("source").to_owned(),
                )
            })
            .collect()
    }

    async fn log_len(&self, app: &str) -> usize {
        let (_, log) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/monitors/{app}/log?limit=1000"),
                None,
            )
            .await;
        log["checks"].as_array().map_or(0, Vec::len)
    }

    /// Waits (20 s at most) until `app` is in `state`.
    async fn until_state(&self, app: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, monitor) = self.monitor(app).await;
            if status == 200 && monitor["state"] == state {
                return monitor;
            }
            assert!(
                Instant::now() < deadline,
                "{app} not {state} within 20 s: {status} {monitor}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hup(server: &ServerProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Writes `config` and sends SIGHUP; returns the log line that says how the reload went.
fn reload(server: &mut ServerProcess, dir: &Path, config: &str, expect: &str) -> String {
    std::fs::write(dir.join("config"), config).expect("config");
    let before = server.lines().len();
    hup(server);
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let lines = server.lines();
        if let Some(line) = lines[before..].iter().find(|line| {
            line.contains("reloaded:")
                || line.contains("reload refused")
                || line.contains("reload of")
        }) {
            assert!(line.contains(expect), "{expect:?} not in {line:?}");
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no reload line; log:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_monitors_follow_the_file_across_reloads_and_restarts() {
    let dir = temp_dir();
    let web = app().await;
    let (_listener, nas) = tcp_port().await;
    let first = format!(
        "[[monitor]]\nname = \"media-center\"\nurl = \"{web}\"\ninterval = 5\ntimeout = 2\nhealthy = 2\n\n\
         [[monitor]]\nname = \"nas\"\nurl = \"tcp://{nas}\"\ninterval = 5\ntimeout = 2\n"
    );
    std::fs::write(dir.path().join("config"), &first).expect("config");
    let mut server = start(dir.path());
    server.wait_for_line("2 monitor(s) declared: 2 added (media-center, nas)");
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let media = api.until_state("media-center", "HEALTHY").await;
    assert_eq!(
        (media["source"].as_str(), media["kind"].as_str()),
        (Some("config"), Some("http"))
    );
    let nas_view = api.until_state("nas", "HEALTHY").await;
    assert_eq!(nas_view["kind"], "tcp");

    // An app registered over the API is left alone by every reload.
    let (status, _) = api
        .call(
            reqwest::Method::PUT,
            "/api/v1/monitors/phone-app",
            Some(json!({"url": web, "interval": 60})),
        )
        .await;
    assert_eq!(status, 201);

    // PUT and DELETE on a declared monitor: 409, nothing changes; pause and resume work.
    for (method, body) in [
        (reqwest::Method::PUT, Some(json!({"url": web}))),
        (reqwest::Method::DELETE, None),
    ] {
        let (status, error) = api
            .call(method.clone(), "/api/v1/monitors/media-center", body)
            .await;
        assert_eq!(status, 409, "{method}: {error}");
        assert_eq!(error["error"]["code"], "managed_by_config");
        assert!(
            error["error"]["message"].as_str().is_some_and(|m| m
                .starts_with("monitor \"media-center\" is declared in the server's config file")),
            "{error}"
        );
    }
    let (status, paused) = api
        .call(reqwest::Method::POST, "/api/v1/monitors/nas/pause", None)
        .await;
    assert_eq!((status, &paused["paused"]), (200, &json!(true)));
    let (status, _) = api
        .call(reqwest::Method::POST, "/api/v1/monitors/nas/resume", None)
        .await;
    assert_eq!(status, 200);

    // Reload: one added (printer), one changed (media-center: interval), one removed (nas).
    let checks_before = api.log_len("media-center").await;
    let transitions_before = api.monitor("media-center").await.1["transitions"]
        .as_array()
        .map(Vec::len);
    let (_printer_port, printer) = tcp_port().await;
    let second = format!(
        "[[monitor]]\nname = \"media-center\"\nurl = \"{web}\"\ninterval = 6\ntimeout = 2\nhealthy = 2\n\n\
         [[monitor]]\nname = \"printer\"\nurl = \"tcp://{printer}\"\ninterval = 5\ntimeout = 2\n"
    );
    reload(
        &mut server,
        dir.path(),
        &second,
        "2 monitor(s) declared: 1 added (printer), 1 updated (media-center), 0 restarted with a new url, 1 removed (nas), 0 unchanged",
    );
    let (status, media) = api.monitor("media-center").await;
    assert_eq!(status, 200);
    assert_eq!(
        (media["interval"].as_u64(), media["state"].as_str()),
        (Some(6), Some("HEALTHY"))
    );
    assert_eq!(
        media["transitions"].as_array().map(Vec::len),
        transitions_before
    );
    assert!(
        api.log_len("media-center").await >= checks_before,
        "the log is kept"
    );
    assert_eq!(api.monitor("nas").await.0, 404);
    api.until_state("printer", "HEALTHY").await;

    // `list`, as a user runs it, shows each with its kind and where it is managed.
    let output = std::process::Command::new(common::BINARY)
        .args(["list", "--server", &server.url])
        .env_remove("HEALTHCHECKER_URL")
        .env_remove("HEALTHCHECKER_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("list runs");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .split_whitespace()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("media-center"), "http (config)", "{table}");
    assert_eq!(row("printer"), "tcp (config)", "{table}");
    assert!(row("phone-app").starts_with("http "), "{table}");

    // An invalid reload changes nothing, and the log says why.
    let broken =
        format!("{second}\n[[monitor]]\nname = \"router\"\nurl = \"tcp://{nas}\"\ninterval = 3\n");
    reload(
        &mut server,
        dir.path(),
        &broken,
        "reload refused, nothing changed: [[monitor]] router: `interval` \"3\" is invalid: from 5 to 300 seconds",
    );
    let mut names = api.names().await;
    names.sort();
    assert_eq!(
        names,
        [
            ("media-center".to_owned(), "config".to_owned()),
            ("phone-app".to_owned(), "api".to_owned()),
            ("printer".to_owned(), "config".to_owned()),
        ]
    );
    let unknown = second.replace("interval = 6", "intervall = 6");
    reload(
        &mut server,
        dir.path(),
        &unknown,
        "reload refused, nothing changed: [[monitor]] media-center: `intervall` is not a field of a monitor",
    );
    assert_eq!(api.monitor("media-center").await.1["interval"], 6);

    // A changed url starts the state over as UNKNOWN; the log stays.
    let (_moved_port, moved) = tcp_port().await;
    let third = second.replace(&format!("tcp://{printer}"), &format!("tcp://{moved}"));
    let logged = api.log_len("printer").await;
    assert!(logged > 0);
    reload(
        &mut server,
        dir.path(),
        &third,
        "1 restarted with a new url (printer)",
    );
    let (_, printer_view) = api.monitor("printer").await;
    let last = &printer_view["transitions"][0];
    assert_eq!(
        (last["from"].as_str(), last["to"].as_str()),
        (Some("HEALTHY"), Some("UNKNOWN"))
    );
    assert!(
        last["reason"].as_str().is_some_and(|r| r.contains(&format!(
            "url changed from tcp://{printer} to tcp://{moved}"
        ))),
        "{last}"
    );
    assert!(api.log_len("printer").await >= logged, "the log stays");
    api.until_state("printer", "HEALTHY").await;

    // A restart takes the file as it is now: the table removed meanwhile is forgotten.
    assert_eq!(server.signal_and_wait("TERM").code(), Some(0));
    std::fs::write(
        dir.path().join("config"),
        third.split("\n\n").next().expect("first table"),
    )
    .expect("config");
    let mut server = start(dir.path());
    server.wait_for_line("1 monitor(s) declared: 0 added, 0 updated, 0 restarted with a new url, 1 removed (printer), 1 unchanged");
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let media = api.until_state("media-center", "HEALTHY").await;
    assert_eq!(media["source"], "config");
    assert_eq!(api.monitor("printer").await.0, 404);
    assert_eq!(api.monitor("phone-app").await.1["source"], "api");
}

#[test]
fn a_bad_table_stops_the_start_naming_the_file_the_table_and_the_field() {
    let dir = temp_dir();
    let file = dir.path().join("config");
    std::fs::write(
        &file,
        "[[monitor]]\nname = \"nas\"\nurl = \"tcp://192.168.1.40\"\n",
    )
    .expect("config");
    let mut cmd = command(dir.path());
    cmd.args(local_args(dir.path())).arg("--config").arg(&file);
    let (status, stderr) = common::run_to_end(cmd);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("[[monitor]] nas: `url` \"tcp://192.168.1.40\" is invalid: tcp://host:port"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("(config file {})", file.display())),
        "{stderr}"
    );
}

/// The README's worked example is a valid config file as written, with a monitor of each kind.
#[test]
fn the_readme_example_is_a_valid_config() {
    let readme =
        std::fs::read_to_string(common::workspace_root().join("README.md")).expect("README");
    let after = readme
        .split("<!-- declared-example")
        .nth(1)
        .expect("the marked example");
    let block = after
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block");
    let dir = temp_dir();
    let file = dir.path().join("config");
    std::fs::write(&file, block).expect("config");
    let config = healthchecker_server::Config::load(&healthchecker_server::config::ServeArgs {
        config: Some(file),
        ..Default::default()
    })
    .unwrap_or_else(|error| panic!("{error}"));
    let kinds: Vec<(&str, &str)> = config
        .monitors
        .iter()
        .map(|declared| (declared.name.as_str(), declared.spec.kind().as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("media-center", "http"),
            ("nas-web", "https"),
            ("nas-ssh", "tcp"),
            ("printer", "icmp"),
            ("mail-server", "tls"),
        ]
    );
}

/// A push monitor declared in a `[[monitor]]` table keeps its ping URL across a reload that
/// changes it and across a restart; its pings are taken (and the poll-only fields refused, the
/// table named).
#[tokio::test(flavor = "multi_thread")]
async fn a_declared_push_monitor_keeps_its_ping_url_across_reloads_and_restarts() {
    let dir = temp_dir();
    let table = |grace: u32| {
        format!(
            "[[monitor]]\nname = \"nightly-backup\"\nkind = \"push\"\nschedule = \"0 3 * * *\"\n\
             tz = \"Europe/Berlin\"\ngrace = {grace}\n"
        )
    };
    std::fs::write(dir.path().join("config"), table(3600)).expect("config");
    let mut server = start(dir.path());
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let (status, monitor) = api.monitor("nightly-backup").await;
    assert_eq!(status, 200, "{monitor}");
    assert_eq!(monitor["kind"], "push");
    assert_eq!(monitor["source"], "config");
    let ping_url = monitor["ping_url"].as_str().expect("a ping URL").to_owned();
    assert!(
        ping_url.starts_with(&format!("{}/ping/", api.url)),
        "{ping_url}"
    );

    reload(&mut server, dir.path(), &table(600), "reloaded:");
    let (_, monitor) = api.monitor("nightly-backup").await;
    assert_eq!(monitor["grace"], 600, "the change is taken");
    assert_eq!(
        monitor["ping_url"],
        ping_url.as_str(),
        "the same key after a reload"
    );

    let bad = format!("{}interval = 60\n", table(600));
    reload(&mut server, dir.path(), &bad, "interval");
    let (_, monitor) = api.monitor("nightly-backup").await;
    assert_eq!(
        monitor["ping_url"],
        ping_url.as_str(),
        "a refused reload changes nothing"
    );
    std::fs::write(dir.path().join("config"), table(600)).expect("config");

    assert!(server.signal_and_wait("TERM").success());
    let server = start(dir.path());
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let (_, monitor) = api.monitor("nightly-backup").await;
    let key = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
    assert_eq!(
        key(monitor["ping_url"].as_str().expect("a ping URL")),
        key(&ping_url),
        "the same key after a restart"
    );
    let answer = api
        .client
        .get(format!("{}/ping/{}", api.url, key(&ping_url)))
        .send()
        .await
        .expect("ping");
    assert_eq!(answer.status(), 200);
    api.until_state("nightly-backup", "HEALTHY").await;
}
