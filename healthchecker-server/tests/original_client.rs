//! The original's apps keep working: a Python client that sends exactly the 2020 Python
//! HealthChecker.Server client's requests (`tests/python/original_client.py`: a python-zeroconf
//! lookup of `_healthchecker._http._tcp.local.`, then the form POST and the GETs through a
//! `requests` session) against the real binary, beside an app that uses the Rust client.
//!
//! mDNS is on, so these tests (`mdns_...`) are `#[ignore]`d with that reason and run only when
//! asked for, in a network namespace of their own with nothing but `lo` (as `.ci/run` runs
//! them); asked for elsewhere, they fail saying why. They also need `python3` with `zeroconf`
//! and `requests` (`.ci/run` installs them with pip when missing).
//!
//! ```sh
//! cargo build -p healthchecker-server --all-targets
//! unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && \
//!     cargo test -p healthchecker-server --offline --test original_client -- --ignored mdns_'
//! ```
//!
//! The original's mDNS name is one fixed name, so two servers of these tests must not advertise
//! at the same time: each test holds [`MDNS`] while its server runs.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{ServerProcess, command, temp_dir};
use healthchecker_client::{HealthCheckResponse, HealthCheckerServer, HealthStatus, Monitor};
use serde_json::Value;

/// The Python stand-in for the original client.
const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/original_client.py"
);

/// Longest wait for anything here (the Python client bounds its own steps at 30 s each).
const PATIENCE: Duration = Duration::from_secs(60);

/// One server with mDNS at a time in this test binary (see the module documentation).
static MDNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Fails `test` unless it can run here: only `lo` (these tests are `#[ignore]`d for that reason
/// and run only when asked for, inside `unshare -n`, as .ci/run does), and python3 with the
/// packages of the original client's stand-in.
fn can_run(test: &str) {
    healthchecker_client::testing::assert_network_isolated(test);
    let python = Command::new("python3")
        .args(["-c", "import zeroconf, requests"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        python,
        "{test}: needs python3 with zeroconf and requests \
         (`python3 -m pip install zeroconf requests`; .ci/run installs them)"
    );
}

/// The real server with mDNS on (inside the namespace), in test mode, on 127.0.0.1.
fn server(dir: &std::path::Path, extra: &[&str]) -> ServerProcess {
    let mut cmd = command(dir);
    cmd.args(["--bind-addr", "127.0.0.1", "--test", "--data-dir"])
        .arg(dir.join("data"))
        .args(extra);
    ServerProcess::start(cmd)
}

/// The Python client, killed when dropped; its stdout arrives line by line.
struct Python {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Python {
    fn start(args: &[&str]) -> Python {
        let mut child = Command::new("python3")
            .arg(CLIENT)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[python] {}", line.chars().take(300).collect::<String>());
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Python {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The rest of the first line that starts with `prefix`; panics on `FAILED` or at the
    /// deadline.
    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                    assert!(!line.starts_with("FAILED"), "the Python client: {line}");
                    self.seen.push(line);
                }
                Err(_) => break,
            }
        }
        panic!(
            "the Python client never printed {prefix:?}; it printed: {:?}",
            self.seen
        );
    }

    /// Lets a paused `run` go on.
    fn proceed(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go on\n").expect("write to python");
        stdin.flush().expect("flush");
    }

    /// Waits for the exit, and returns whether it was a success.
    fn finish(mut self) -> bool {
        drop(self.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the Python client did not exit within {PATIENCE:?}");
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An app that uses the Rust client's `HealthCheckResponse`, on 127.0.0.1; counts its checks.
async fn rust_app() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counter = Arc::clone(&hits);
    let router = Router::new().route(
        "/health",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                let answer = HealthCheckResponse::new()
                    .description("rust app")
                    .status(HealthStatus::Pass);
                ([("content-type", answer.content_type())], answer.body())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), hits)
}

/// `GET {base}{path}` as JSON.
async fn get_json(base: &str, path: &str) -> Value {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

/// The monitors as the JSON API lists them: name to state.
async fn states(base: &str) -> Vec<(String, String)> {
    let list = get_json(base, "/api/v1/monitors").await;
    list["monitors"]
        .as_array()
        .expect("monitors")
        .iter()
        .map(|m| {
            (
                m["app"].as_str().expect("app").to_owned(),
                m["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

const LEGACY_APP: &str = "Sample HealthChecker App";
const RUST_APP: &str = "rust-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_the_original_python_client_and_the_rust_client_side_by_side() {
    can_run("mdns_the_original_python_client_and_the_rust_client_side_by_side");
    let _mdns = MDNS.lock().await;
    let dir = temp_dir();
    let mut server = server(dir.path(), &[]);
    let port = server.url.rsplit(':').next().expect("port").to_owned();

    // The Rust app finds the server under _healthchecker._tcp and registers.
    let (app_url, rust_hits) = rust_app().await;
    let rust = HealthCheckerServer::discover(RUST_APP, &app_url)
        .await
        .expect("the Rust client discovers the server");
    assert_eq!(rust.url().as_str(), format!("{}/", server.url));
    let registered = rust
        .monitor(
            Monitor::new()
                .interval(5)
                .timeout(2)
                .unhealthy(2)
                .healthy(4),
        )
        .await
        .expect("registers");
    assert!(registered.created);

    // The original client finds it under _healthchecker._http._tcp, registers, and is polled.
    let mut python = Python::start(&["run", LEGACY_APP, "owner@example.com"]);
    let polled: Value =
        serde_json::from_str(&python.wait_for("POLLED")).expect("JSON from the Python client");
    assert_eq!(
        polled["server"],
        format!("http://127.0.0.1:{port}/healthchecker/"),
        "the first IPv4 address and the real port"
    );
    assert_eq!(polled["info"]["app"], LEGACY_APP, "`+` decoded as a space");
    assert_eq!(polled["info"]["path"], "/health");
    assert_eq!(
        (&polled["info"]["interval"], &polled["info"]["healthy"]),
        (&Value::from(5), &Value::from(4))
    );
    assert_eq!(
        polled["info"]["email"],
        serde_json::json!(["owner@example.com"])
    );
    assert_eq!(
        polled["info"]["checks"][0]["body"]["description"], LEGACY_APP,
        "the app's own health answer, kept in the log"
    );
    assert_eq!(
        polled["user_agent"],
        format!("healthchecker/{}", healthchecker_server::VERSION)
    );

    // Side by side: one server, both apps, both checked and HEALTHY, in both APIs.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = states(&server.url).await;
        if now
            == [
                (LEGACY_APP.to_owned(), "HEALTHY".to_owned()),
                (RUST_APP.to_owned(), "HEALTHY".to_owned()),
            ]
        {
            break;
        }
        assert!(Instant::now() < deadline, "not both HEALTHY: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rust_hits.load(Ordering::SeqCst) >= 1);
    let status = get_json(&server.url, "/healthchecker/status").await;
    let mut names: Vec<&String> = status.as_object().expect("object").keys().collect();
    names.sort();
    assert_eq!(names, [LEGACY_APP, RUST_APP]);
    let rust_info = rust.info().await.expect("info");
    assert_eq!(rust_info.app, RUST_APP);

    // The original client pauses, resumes, reads info and stops; the Rust app is untouched.
    python.proceed();
    let done: Value =
        serde_json::from_str(&python.wait_for("DONE")).expect("JSON from the Python client");
    assert!(python.finish(), "the Python client exits 0");
    assert_eq!(done["paused_view"]["paused"], true);
    assert_eq!(done["info"]["paused"], false);
    assert!(
        done["hits"].as_u64().is_some_and(|hits| hits >= 2),
        "{done}"
    );
    assert!(
        done["status"].get(RUST_APP).is_some() && done["status"].get(LEGACY_APP).is_some(),
        "{}",
        done["status"]
    );
    assert_eq!(
        states(&server.url).await,
        [(RUST_APP.to_owned(), "HEALTHY".to_owned())],
        "stop() removed the legacy app only"
    );
    let before = rust_hits.load(Ordering::SeqCst);
    let deadline = Instant::now() + PATIENCE;
    while rust_hits.load(Ordering::SeqCst) == before {
        assert!(
            Instant::now() < deadline,
            "the Rust app is no longer checked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rust.stop().await.expect("the Rust client stops");
    assert!(states(&server.url).await.is_empty());
    println!(
        "the original client found the server in {} lookup(s), {} s; first check after resume: {} s",
        polled["attempts"], polled["discovery_s"], done["first_check_after_resume_s"]
    );

    assert!(server.signal_and_wait("TERM").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_the_originals_name_is_advertised_as_it_was_and_withdrawn_on_shutdown() {
    can_run("mdns_the_originals_name_is_advertised_as_it_was_and_withdrawn_on_shutdown");
    let _mdns = MDNS.lock().await;
    let dir = temp_dir();
    let mut server = server(dir.path(), &[]);
    let port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("port");
    let browser = mdns_sd::ServiceDaemon::new().expect("an mDNS browser");
    let events = browser.browse("_http._tcp.local.").expect("browse");
    let wanted = "_healthchecker._http._tcp.local.";
    let next = |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now());
        events.recv_timeout(left).ok()
    };
    // The browser reports the name again as it learns more addresses (over IPv6 and IPv4);
    // wait for the IPv4 one, the one the original client takes.
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = None;
    let resolved = loop {
        match next(deadline) {
            Some(mdns_sd::ServiceEvent::ServiceResolved(found)) if found.fullname == wanted => {
                if found.addresses.iter().any(|ip| ip.to_ip_addr() == loopback) {
                    break found;
                }
                seen = Some(found);
            }
            Some(_) => {}
            None => panic!("{wanted} not resolved with 127.0.0.1 within 15 s: {seen:?}"),
        }
    };
    assert_eq!(resolved.port, port);
    assert_eq!(
        resolved.txt_properties.get_property_val_str("version"),
        Some(healthchecker_server::VERSION)
    );
    assert_eq!(
        resolved.txt_properties.get_property_val_str("desc"),
        Some("health check micro-service")
    );

    // Goodbye packets on a clean stop: without them the records would live two minutes.
    assert!(server.signal_and_wait("TERM").success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match next(deadline) {
            Some(mdns_sd::ServiceEvent::ServiceRemoved(_, name)) if name == wanted => break,
            Some(_) => {}
            None => panic!("{wanted} not withdrawn within 5 s of the shutdown"),
        }
    }
    let _ = browser.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_with_no_legacy_the_original_client_finds_nothing() {
    can_run("mdns_with_no_legacy_the_original_client_finds_nothing");
    let _mdns = MDNS.lock().await;
    let dir = temp_dir();
    let mut server = server(dir.path(), &["--no-legacy"]);
    // The server is on the LAN under its own name...
    let found = healthchecker_server::discovery::find_first(Duration::from_secs(10))
        .await
        .expect("the main name is advertised");
    assert_eq!(found.url(), Some(server.url.clone()));
    // ...but not under the original's, and its routes are gone.
    let mut lookup = Python::start(&["discover"]);
    let answer = lookup.wait_for("NOT-FOUND");
    assert!(lookup.finish(), "{answer}");
    let response = reqwest::Client::new()
        .post(format!("{}/healthchecker/monitor", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("appname=a&url=http%3A%2F%2F127.0.0.1%3A9")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 404);
    assert!(server.signal_and_wait("TERM").success());
}
