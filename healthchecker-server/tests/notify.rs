//! Email notifications end to end: transitions in, mail out through a real SMTP server
//! (mailin-embedded) on 127.0.0.1, with the outbox in a real store on disk.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use healthchecker_server::Config;
use healthchecker_server::config::ServeArgs;
use healthchecker_server::health::{Health, Outcome, State, Transition};
use healthchecker_server::notify::{Notifier, NotifyOptions, TransitionEvent};
use healthchecker_server::probe::{CheckRecord, Reason};
use healthchecker_server::registry::{AppName, MonitorSpec};
use healthchecker_server::store::{CheckWrite, LoggedCheck, Store, StoreOptions, StoredMonitor};
use mailin_embedded::response::{NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server, SslConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const OWNER: &str = "owner@example.com";

/// One message as the SMTP server accepted it.
#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    data: String,
    at: Instant,
}

impl Received {
    /// The header section, folded lines joined.
    fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(line.trim_start());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        headers
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body, decoded when it is quoted-printable, with `\n` line ends.
    fn body(&self) -> String {
        let raw = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|cte| cte.eq_ignore_ascii_case("quoted-printable"));
        let text = if qp { decode_qp(&raw) } else { raw };
        text.replace("\r\n", "\n")
    }
}

/// Quoted-printable (RFC 2045) decoding: soft line breaks and `=XX`.
fn decode_qp(text: &str) -> String {
    let bytes = text.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The SMTP session handler: records every accepted message; answers 550 to every recipient
/// when `reject`.
#[derive(Clone)]
struct Capture {
    sink: mpsc::UnboundedSender<Received>,
    attempts: Arc<AtomicUsize>,
    reject: bool,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Capture {
    fn rcpt(&mut self, _to: &str) -> Response {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.reject { NO_MAILBOX } else { OK }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let _ = self.sink.send(Received {
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
            at: Instant::now(),
        });
        OK
    }
}

/// A real SMTP server on 127.0.0.1 that runs until the test process ends.
struct Smtp {
    port: u16,
    mail: mpsc::UnboundedReceiver<Received>,
    attempts: Arc<AtomicUsize>,
}

impl Smtp {
    fn start() -> Smtp {
        Smtp::serve(TcpListener::bind("127.0.0.1:0").expect("bind"), false)
    }

    fn serve(listener: TcpListener, reject: bool) -> Smtp {
        let port = listener.local_addr().expect("address").port();
        let (sink, mail) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicUsize::new(0));
        let handler = Capture {
            sink,
            attempts: Arc::clone(&attempts),
            reject,
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(handler);
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            // serve() runs for ever; its error is not Send, so it is dropped here.
            let _ = server.serve().map_err(|error| error.to_string());
        });
        Smtp {
            port,
            mail,
            attempts,
        }
    }

    /// The next accepted message, within `within`.
    async fn next(&mut self, within: Duration) -> Received {
        tokio::time::timeout(within, self.mail.recv())
            .await
            .expect("a mail arrives in time")
            .expect("server running")
    }

    /// Asserts that no message arrives within `wait`.
    async fn none_within(&mut self, wait: Duration) {
        if let Ok(Some(mail)) = tokio::time::timeout(wait, self.mail.recv()).await {
            panic!("unexpected mail: {}", mail.subject());
        }
    }
}

/// A port with nothing listening on it (bound once, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn config(dir: &Path, smtp_port: Option<u16>) -> Config {
    let file = dir.join("config");
    std::fs::write(&file, "").expect("config file");
    let args = ServeArgs {
        config: Some(file),
        data_dir: Some(dir.join("data")),
        smtp_url: smtp_port.map(|port| format!("smtp://127.0.0.1:{port}")),
        mail_from: Some("Health Checker <hc@test.example>".into()),
        ..ServeArgs::default()
    };
    Config::load(&args).expect("valid config")
}

fn open_store(dir: &Path) -> Store {
    Store::open(&dir.join("data"), StoreOptions::default()).expect("store opens")
}

/// A running notifier, with what it takes to stop it.
struct Running {
    notifier: Notifier,
    events: mpsc::UnboundedSender<TransitionEvent>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Running {
    fn start(config: &Config, store: &Store, tune: impl FnOnce(&mut NotifyOptions)) -> Running {
        let (events, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut options = NotifyOptions::new(config, "http://127.0.0.1:8080");
        options.coalesce_window = Duration::ZERO;
        tune(&mut options);
        let notifier =
            Notifier::spawn_with(config, options, store.clone(), rx, cancel.clone(), &tasks)
                .expect("notifier starts");
        Running {
            notifier,
            events,
            cancel,
            tasks,
        }
    }

    fn send(&self, event: TransitionEvent) {
        self.events.send(event).expect("notifier running");
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .expect("the notifier stops within its deadline");
    }
}

fn spec(emails: &[&str], interval: Duration) -> Arc<MonitorSpec> {
    Arc::new(MonitorSpec {
        url: "http://127.0.0.1:9/".parse().expect("url"),
        path: "/health".into(),
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        interval,
        timeout: interval / 4,
        unhealthy: 2,
        healthy: 2,
    })
}

fn event(
    app: &str,
    spec: &Arc<MonitorSpec>,
    from: State,
    to: State,
    reason: &str,
) -> TransitionEvent {
    let time = Utc::now();
    let outcome = match to {
        State::Healthy => Outcome::Pass,
        _ => Outcome::Fail,
    };
    TransitionEvent {
        name: AppName::parse(app).expect("valid name"),
        spec: Arc::clone(spec),
        transition: Transition {
            time,
            from,
            to,
            reason: reason.to_owned(),
        },
        recovered: to == State::Healthy && from != State::Healthy,
        recent: vec![LoggedCheck {
            record: CheckRecord {
                time,
                outcome,
                reason: if outcome == Outcome::Pass {
                    Reason::Ok
                } else {
                    Reason::Connect
                },
                http_status: None,
                latency: Duration::from_millis(3),
                body: None,
                detail: (outcome == Outcome::Fail).then(|| "connection refused".to_owned()),
            },
            state: to,
        }],
    }
}

/// Waits until `condition` holds, polling the store (within 10 s).
async fn until<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn failed_attempts(store: &Store) -> u32 {
    let far = Utc::now() + chrono::Duration::days(1);
    store
        .due_mail(far, 10)
        .await
        .expect("outbox readable")
        .iter()
        .map(|mail| mail.attempts)
        .max()
        .unwrap_or(0)
}

async fn pending(store: &Store) -> usize {
    store.pending_mail_count().await.expect("outbox readable")
}

fn temp_dir() -> tempfile::TempDir {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "healthchecker_server=debug".into()),
        )
        .with_test_writer()
        .try_init();
    tempfile::tempdir().expect("temp dir")
}

#[tokio::test]
async fn a_full_incident_is_one_thread_held_degrade_unhealthy_reminder_recovery() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |options| {
        options.remind_every = Some(Duration::from_secs(1));
    });
    let spec = spec(&[OWNER, "second@example.com"], Duration::from_secs(10));

    // one failed check: degraded, held; the next one makes it unhealthy: one mail only
    running.send(event(
        "media-center",
        &spec,
        State::Healthy,
        State::Degraded,
        "connect: connection refused",
    ));
    let sent = Instant::now();
    running.send(event(
        "media-center",
        &spec,
        State::Degraded,
        State::Unhealthy,
        "connect: connection refused",
    ));
    let unhealthy = smtp.next(Duration::from_secs(5)).await;
    eprintln!(
        "transition UNHEALTHY -> accepted by the SMTP server: {:?}",
        unhealthy.at - sent
    );
    assert_eq!(
        unhealthy.subject(),
        "[healthchecker] media-center is UNHEALTHY"
    );
    let mut to = unhealthy.to.clone();
    to.sort();
    assert_eq!(to, ["owner@example.com", "second@example.com"]);
    assert_eq!(
        unhealthy.header("From").as_deref(),
        Some("\"Health Checker\" <hc@test.example>")
    );
    let root = unhealthy.header("Message-ID").expect("Message-ID");
    assert!(root.starts_with("<hc.unhealthy.media-center."), "{root}");
    assert_eq!(unhealthy.header("In-Reply-To"), None);
    assert_eq!(
        unhealthy.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let body = unhealthy.body();
    for needle in [
        "media-center is UNHEALTHY.",
        "Checked:   http://127.0.0.1:9/health",
        "Change:    DEGRADED -> UNHEALTHY",
        "Reason:    connect: connection refused",
        "Last checks (UTC), newest first:",
        "curl -X DELETE http://127.0.0.1:8080/api/v1/monitors/media-center",
    ] {
        assert!(body.contains(needle), "missing {needle:?} in\n{body}");
    }

    // a reminder while it stays unhealthy, in the same thread
    let reminder = smtp.next(Duration::from_secs(5)).await;
    assert_eq!(
        reminder.subject(),
        "[healthchecker] media-center is still UNHEALTHY"
    );
    assert_eq!(reminder.header("In-Reply-To").as_ref(), Some(&root));
    assert_eq!(reminder.header("References").as_ref(), Some(&root));

    // half-recovery: not mailed; recovery: mailed with the downtime, in the thread
    running.send(event(
        "media-center",
        &spec,
        State::Unhealthy,
        State::Degraded,
        "ok",
    ));
    running.send(event(
        "media-center",
        &spec,
        State::Degraded,
        State::Healthy,
        "ok",
    ));
    let mut healthy = smtp.next(Duration::from_secs(5)).await;
    if healthy.subject().contains("still UNHEALTHY") {
        // a second reminder was already on its way before the recovery arrived
        healthy = smtp.next(Duration::from_secs(5)).await;
    }
    assert_eq!(
        healthy.subject(),
        "[healthchecker] media-center is HEALTHY again"
    );
    assert!(
        healthy
            .header("References")
            .expect("References")
            .starts_with(&root)
    );
    assert_ne!(healthy.header("In-Reply-To"), None);
    assert_ne!(
        healthy.header("In-Reply-To").as_ref(),
        Some(&root),
        "replies to the newest mail"
    );
    assert!(healthy.body().contains("Downtime:"), "{}", healthy.body());

    // the incident is closed: no more reminders
    smtp.none_within(Duration::from_millis(1500)).await;
    assert_eq!(pending(&store).await, 0);
    running.stop().await;
}

#[tokio::test]
async fn a_blip_is_not_mailed_but_a_degrade_that_lasts_one_check_is() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    // interval 400 ms, timeout 100 ms: a degrade is held 1.5 s
    let spec = spec(&[OWNER], Duration::from_millis(400));

    running.send(event(
        "blip",
        &spec,
        State::Healthy,
        State::Degraded,
        "status_code: HTTP 503",
    ));
    running.send(event("blip", &spec, State::Degraded, State::Healthy, "ok"));
    let started = Instant::now();
    running.send(event(
        "slow",
        &spec,
        State::Healthy,
        State::Degraded,
        "body_warn: disk 91% full",
    ));
    let degraded = smtp.next(Duration::from_secs(5)).await;
    assert_eq!(degraded.subject(), "[healthchecker] slow is DEGRADED");
    assert!(
        degraded.at - started >= Duration::from_millis(1400),
        "held for one check"
    );
    assert!(
        degraded
            .body()
            .contains("Reason:    body_warn: disk 91% full")
    );
    smtp.none_within(Duration::from_millis(500)).await;
    running.stop().await;
}

#[tokio::test]
async fn mail_waits_for_the_smtp_server_and_arrives_exactly_once() {
    let dir = temp_dir();
    let port = free_port();
    let config = config(dir.path(), Some(port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    let spec = spec(&[OWNER], Duration::from_secs(10));

    running.send(event(
        "nas",
        &spec,
        State::Healthy,
        State::Unhealthy,
        "timeout: no answer within 5 s",
    ));
    until(|| async { failed_attempts(&store).await >= 1 }).await;
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is still free");
    let up = Instant::now();
    let mut smtp = Smtp::serve(listener, false);
    let mail = smtp.next(Duration::from_secs(70)).await;
    eprintln!("SMTP server up -> mail accepted: {:?}", mail.at - up);
    assert_eq!(mail.subject(), "[healthchecker] nas is UNHEALTHY");
    until(|| async { pending(&store).await == 0 }).await;
    smtp.none_within(Duration::from_secs(2)).await;
    running.stop().await;
}

#[tokio::test]
async fn pending_mail_survives_a_restart_and_is_sent_exactly_once() {
    let dir = temp_dir();
    let port = free_port();
    let config = config(dir.path(), Some(port));

    // first run: the relay is down
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    let spec = spec(&[OWNER], Duration::from_secs(10));
    running.send(event(
        "nas",
        &spec,
        State::Healthy,
        State::Unhealthy,
        "connect: connection refused",
    ));
    until(|| async { failed_attempts(&store).await >= 1 }).await;
    running.stop().await;
    store.close().await.expect("store closes");
    drop(store);

    // second run: the relay is back
    let mut smtp = Smtp::serve(
        TcpListener::bind(("127.0.0.1", port)).expect("port free"),
        false,
    );
    let store = open_store(dir.path());
    assert_eq!(pending(&store).await, 1, "the mail waited in the outbox");
    let running = Running::start(&config, &store, |_| {});
    let mail = smtp.next(Duration::from_secs(70)).await;
    assert_eq!(mail.subject(), "[healthchecker] nas is UNHEALTHY");
    until(|| async { pending(&store).await == 0 }).await;
    running.stop().await;
    store.close().await.expect("store closes");
    drop(store);

    // third run: nothing is sent again
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    smtp.none_within(Duration::from_millis(1500)).await;
    running.stop().await;
}

#[tokio::test]
async fn reminders_go_on_after_a_restart_in_the_incident_thread() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    // the store says: nas went UNHEALTHY before the restart, and still is
    let spec = spec(&[OWNER], Duration::from_secs(10));
    let name = AppName::parse("nas").expect("valid");
    store
        .save_monitor(&StoredMonitor {
            name: name.clone(),
            spec: (*spec).clone(),
            paused: false,
            registered_at: Utc::now(),
            health: Health::default(),
            since: None,
            last_check: None,
            last_transition: None,
        })
        .await
        .expect("saved");
    let down = event("nas", &spec, State::Healthy, State::Unhealthy, "timeout");
    let down_at = down.transition.time;
    store.record(CheckWrite {
        name: name.clone(),
        check: down.recent[0].clone(),
        health: Health {
            state: State::Unhealthy,
            passes: 0,
            fails: 2,
            recovering: true,
        },
        transition: Some(down.transition.clone()),
    });
    store.flush().await.expect("flushed");

    let running = Running::start(&config, &store, |options| {
        options.remind_every = Some(Duration::from_secs(1));
    });
    let reminder = smtp.next(Duration::from_secs(5)).await;
    assert_eq!(reminder.subject(), "[healthchecker] nas is still UNHEALTHY");
    let parent = reminder.header("In-Reply-To").expect("In-Reply-To");
    assert!(
        parent.starts_with(&format!(
            "<hc.unhealthy.nas.{}.",
            down_at.timestamp_millis()
        )),
        "threads to the UNHEALTHY mail sent before the restart: {parent}"
    );
    // and its recovery closes the same thread
    running.send(event("nas", &spec, State::Degraded, State::Healthy, "ok"));
    let mut healthy = smtp.next(Duration::from_secs(5)).await;
    if healthy.subject().contains("still UNHEALTHY") {
        healthy = smtp.next(Duration::from_secs(5)).await;
    }
    assert_eq!(healthy.subject(), "[healthchecker] nas is HEALTHY again");
    assert!(
        healthy
            .header("References")
            .expect("References")
            .starts_with(&parent)
    );
    running.stop().await;
}

#[tokio::test]
async fn a_permanent_refusal_is_marked_failed_and_not_retried() {
    let dir = temp_dir();
    let mut smtp = Smtp::serve(TcpListener::bind("127.0.0.1:0").expect("bind"), true);
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    let spec = spec(&["nobody@example.com"], Duration::from_secs(10));

    running.send(event(
        "nas",
        &spec,
        State::Healthy,
        State::Unhealthy,
        "connect: connection refused",
    ));
    until(|| async { smtp.attempts.load(Ordering::SeqCst) >= 1 }).await;
    until(|| async { pending(&store).await == 0 }).await;
    // a transient failure would be retried after 1 s
    smtp.none_within(Duration::from_millis(2500)).await;
    assert_eq!(smtp.attempts.load(Ordering::SeqCst), 1, "tried once");
    running.stop().await;
}

#[tokio::test]
async fn hostile_names_and_reasons_cannot_inject_headers() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    let spec = spec(&[OWNER], Duration::from_secs(10));

    let name = "evil: \"x\" <victim@example.com>; Bcc: victim@example.com";
    let reason = "body_fail: x\r\nBcc: victim@example.com\r\nX-Injected: yes\r\n\r\nfake body\n.\nRCPT TO:<victim@example.com>";
    running.send(event(name, &spec, State::Healthy, State::Unhealthy, reason));
    let mail = smtp.next(Duration::from_secs(5)).await;
    assert_eq!(mail.to, [OWNER], "no extra recipient");
    for (header, value) in mail.headers() {
        assert!(
            !header.eq_ignore_ascii_case("Bcc") && !header.eq_ignore_ascii_case("X-Injected"),
            "injected header {header}: {value}"
        );
    }
    assert!(
        mail.subject().contains("is UNHEALTHY"),
        "{}",
        mail.subject()
    );
    let body = mail.body();
    assert!(
        body.lines()
            .all(|line| !line.starts_with("Bcc") && !line.starts_with("X-Injected")),
        "{body}"
    );
    assert!(body.contains(
        "Reason:    body_fail: x Bcc: victim@example.com X-Injected: yes fake body . RCPT"
    ));
    smtp.none_within(Duration::from_millis(300)).await;
    running.stop().await;
}

#[tokio::test]
async fn a_storm_is_coalesced_per_recipient() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |options| {
        options.coalesce_window = Duration::from_secs(1);
    });
    let shared = spec(&[OWNER], Duration::from_secs(10));
    let other = spec(&["other@example.com"], Duration::from_secs(10));

    running.send(event(
        "app-00",
        &shared,
        State::Healthy,
        State::Unhealthy,
        "timeout",
    ));
    let first = smtp.next(Duration::from_secs(5)).await;
    assert_eq!(
        first.subject(),
        "[healthchecker] app-00 is UNHEALTHY",
        "the first mail goes at once"
    );
    for i in 1..30 {
        running.send(event(
            &format!("app-{i:02}"),
            &shared,
            State::Healthy,
            State::Unhealthy,
            "timeout",
        ));
    }
    running.send(event(
        "lonely",
        &other,
        State::Healthy,
        State::Unhealthy,
        "timeout",
    ));
    let mut mails = Vec::new();
    while mails.len() < 2 {
        mails.push(smtp.next(Duration::from_secs(5)).await);
    }
    let lonely = mails
        .iter()
        .find(|m| m.to == ["other@example.com"])
        .expect("other's mail");
    assert_eq!(
        lonely.subject(),
        "[healthchecker] lonely is UNHEALTHY",
        "not held up by the storm"
    );
    let digest = mails.iter().find(|m| m.to == [OWNER]).expect("the digest");
    assert!(
        digest
            .subject()
            .starts_with("[healthchecker] 29 alerts: app-01 is UNHEALTHY"),
        "{}",
        digest.subject()
    );
    assert!(
        digest.at - first.at >= Duration::from_millis(900),
        "after the window"
    );
    for i in 1..30 {
        assert!(
            digest
                .body()
                .contains(&format!("==== app-{i:02} is UNHEALTHY ===="))
        );
    }
    until(|| async { pending(&store).await == 0 }).await;
    smtp.none_within(Duration::from_millis(1500)).await;
    running.stop().await;
}

#[tokio::test]
async fn without_an_smtp_relay_mail_is_logged_and_marked() {
    let dir = temp_dir();
    let config = config(dir.path(), None);
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    assert_eq!(
        running.notifier.describe(),
        "written to the log (no smtp_url)"
    );
    let spec = spec(&[OWNER], Duration::from_secs(10));
    running.send(event(
        "nas",
        &spec,
        State::Healthy,
        State::Unhealthy,
        "timeout",
    ));
    until(|| async {
        let far = Utc::now() + chrono::Duration::days(1);
        let empty = store.due_mail(far, 10).await.expect("readable").is_empty();
        empty && pending(&store).await == 0
    })
    .await;
    running.stop().await;
}

/// Not a timed test: prints the time from a transition to the SMTP server's acceptance, for the
/// record (DESIGN.md: at most `interval x unhealthy + timeout + 1 s` from the failure).
#[tokio::test]
async fn latency_from_transition_to_accepted_mail() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let store = open_store(dir.path());
    let running = Running::start(&config, &store, |_| {});
    let mut latencies = Vec::new();
    for i in 0..20 {
        let spec = spec(&[&format!("owner{i}@example.com")], Duration::from_secs(10));
        let start = Instant::now();
        running.send(event(
            &format!("app{i}"),
            &spec,
            State::Healthy,
            State::Unhealthy,
            "timeout",
        ));
        let mail = smtp.next(Duration::from_secs(5)).await;
        latencies.push(mail.at - start);
    }
    latencies.sort();
    eprintln!(
        "transition -> SMTP accepted, 20 mails one after another: min {:?}, median {:?}, max {:?}",
        latencies[0], latencies[10], latencies[19]
    );
    assert!(latencies[19] < Duration::from_secs(5));
    running.stop().await;
}
