//! The kinds of monitor on real parts: a loopback TCP listener that comes and goes, a rustls
//! server whose certificates are made here with rcgen (valid, expiring in 3 days, expired,
//! self-signed), an https app on one kept-alive connection, and HTTP apps answering codes that
//! `expect_status` lets pass or not. Each flips a monitor through the state machine (the real
//! prober, monitors, alert policy and store on disk) and mail out through a real SMTP server
//! (mailin-embedded) on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use healthchecker_server::Config;
use healthchecker_server::config::ServeArgs;
use healthchecker_server::health::{Outcome, State};
use healthchecker_server::monitors::{Monitors, MonitorsOptions, Parts};
use healthchecker_server::notify::{Notifier, NotifyOptions};
use healthchecker_server::probe::{Prober, Reason};
use healthchecker_server::registry::{AppName, MonitorSpec, Registration};
use healthchecker_server::store::{LoggedCheck, Store, StoreOptions};
use socket2::{Domain, Socket, Type};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use common::smtp::{Received, Smtp};
use common::tls::{Ca, Speak, TlsServer, self_signed, self_signed_expired};

const OWNER: &str = "owner@example.com";

/// 400 ms between checks, 300 ms to answer: quick flips, and a degrade is held one interval.
const INTERVAL: Duration = Duration::from_millis(400);
const TIMEOUT: Duration = Duration::from_millis(300);

const DAY: Duration = Duration::from_secs(86_400);

fn name(text: &str) -> AppName {
    AppName::parse(text).expect("valid name")
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

fn config(dir: &Path, smtp_port: u16) -> Config {
    let file = dir.join("config");
    std::fs::write(&file, "").expect("config file");
    let args = ServeArgs {
        config: Some(file),
        data_dir: Some(dir.join("data")),
        smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
        mail_from: Some("Health Checker <hc@test.example>".into()),
        ..ServeArgs::default()
    };
    Config::load(&args).expect("valid config")
}

/// A spec of any kind, validated like a registration, then given the tests' short interval.
fn spec(body: serde_json::Value) -> MonitorSpec {
    let mut registration: Registration = serde_json::from_value(body).expect("a registration");
    registration.email = Some(healthchecker_server::registry::Emails::One(OWNER.into()));
    let mut spec = registration.validate().expect("valid");
    spec.interval = INTERVAL;
    spec.timeout = TIMEOUT;
    spec.unhealthy = 2;
    spec.healthy = 2;
    spec
}

/// The insides of a server: store, monitors with the real prober (trusting `roots`), delivery.
struct Lab {
    store: Store,
    monitors: Monitors,
    _notifier: Notifier,
    stages: [(CancellationToken, TaskTracker); 2],
}

impl Lab {
    fn start(config: &Config, prober: Prober) -> Lab {
        let store = Store::open(&config.data_dir, StoreOptions::default()).expect("store opens");
        let checks = (CancellationToken::new(), TaskTracker::new());
        let delivery = (CancellationToken::new(), TaskTracker::new());
        let mut options = NotifyOptions::new("http://127.0.0.1:8080");
        options.coalesce_window = Duration::ZERO;
        let notifier = Notifier::spawn_with(
            config,
            options,
            store.clone(),
            delivery.0.clone(),
            &delivery.1,
        )
        .expect("notifier starts");
        let monitors = Monitors::start(
            Parts {
                store: store.clone(),
                checker: Arc::new(prober),
                routes: Default::default(),
                windows: Vec::new(),
                cancel: checks.0.clone(),
                tasks: checks.1.clone(),
            },
            Vec::new(),
            MonitorsOptions {
                first_check_within: Duration::from_millis(100),
                ..MonitorsOptions::default()
            },
        );
        Lab {
            store,
            monitors,
            _notifier: notifier,
            stages: [checks, delivery],
        }
    }

    async fn watch(&self, app: &str, spec: MonitorSpec) {
        self.monitors
            .upsert(name(app), spec)
            .await
            .expect("registered");
    }

    fn state(&self, app: &str) -> State {
        self.monitors.view(&name(app)).expect("registered").state
    }

    /// Waits (20 s at most) until `app` is in `state`; returns its last check.
    async fn until_state(&self, app: &str, state: State) -> LoggedCheck {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state(app) != state {
            assert!(
                Instant::now() < deadline,
                "{app} not {state} within 20 s; it is {} after {:?}",
                self.state(app),
                self.last(app)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.last(app).expect("a check")
    }

    fn last(&self, app: &str) -> Option<LoggedCheck> {
        self.monitors
            .view(&name(app))
            .and_then(|view| view.last_check)
    }

    /// The newest `n` checks of `app` in the store, newest first.
    async fn log(&self, app: &str, n: usize) -> Vec<LoggedCheck> {
        self.store.visible().await.expect("visible");
        self.store.log(&name(app), n).await.expect("log")
    }

    async fn stop(self) {
        for (stop, tasks) in &self.stages {
            stop.cancel();
            tasks.close();
            tokio::time::timeout(Duration::from_secs(15), tasks.wait())
                .await
                .expect("the stage stops");
        }
        self.store.close().await.expect("store closes");
    }
}

/// The next mail, which must be about `app` entering `state`; returns its body.
async fn mail_about(smtp: &mut Smtp, app: &str, state: &str) -> Received {
    let mail = smtp.next(Duration::from_secs(15)).await;
    assert_eq!(
        mail.subject(),
        format!("[healthchecker] {app} is {state}"),
        "{}",
        mail.body()
    );
    assert_eq!(mail.to, [OWNER]);
    mail
}

/// A loopback TCP port the test opens and closes without giving it up: a bound socket without
/// `listen` holds the port (SO_REUSEPORT) while the listener comes and goes, so a closed port
/// refuses connections and nobody else can take it.
struct Port {
    addr: SocketAddr,
    _holder: Socket,
    listener: Option<Socket>,
}

fn reuse_port_socket() -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket
}

impl Port {
    fn open_new() -> Port {
        let listener = reuse_port_socket();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().expect("addr").into())
            .expect("bind");
        listener.listen(16).expect("listen");
        let addr = listener
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet");
        let holder = reuse_port_socket();
        holder.bind(&addr.into()).expect("hold the port");
        Port {
            addr,
            _holder: holder,
            listener: Some(listener),
        }
    }

    /// Connections are refused from now on.
    fn close(&mut self) {
        self.listener = None;
    }

    /// Connections are accepted (by the kernel's backlog) again.
    fn open(&mut self) {
        let listener = reuse_port_socket();
        listener.bind(&self.addr.into()).expect("bind again");
        listener.listen(16).expect("listen");
        self.listener = Some(listener);
    }
}

#[tokio::test]
async fn a_tcp_monitor_follows_its_port_through_the_states_and_the_mail() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let lab = Lab::start(
        &config(dir.path(), smtp.port),
        Prober::new().expect("prober"),
    );
    let mut port = Port::open_new();
    let url = format!("tcp://{}", port.addr);
    lab.watch("printer", spec(serde_json::json!({ "url": url })))
        .await;
    let check = lab.until_state("printer", State::Healthy).await;
    assert_eq!(
        (
            check.record.outcome,
            check.record.reason,
            check.record.http_status
        ),
        (Outcome::Pass, Reason::Ok, None)
    );

    port.close();
    let mail = mail_about(&mut smtp, "printer", "UNHEALTHY").await;
    let body = mail.body();
    assert!(body.contains(&format!("Checked:   {url}")), "{body}");
    assert!(
        body.contains("Reason:    connect: connection refused"),
        "{body}"
    );
    let check = lab.until_state("printer", State::Unhealthy).await;
    assert_eq!(check.record.reason, Reason::Connect);

    port.open();
    let mail = mail_about(&mut smtp, "printer", "HEALTHY again").await;
    assert!(
        mail.body().contains("printer is HEALTHY again"),
        "{}",
        mail.body()
    );
    lab.until_state("printer", State::Healthy).await;
    let reasons: Vec<Reason> = lab
        .log("printer", 100)
        .await
        .iter()
        .map(|check| check.record.reason)
        .collect();
    assert!(
        reasons.contains(&Reason::Connect) && reasons[0] == Reason::Ok,
        "{reasons:?}"
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_tls_monitor_watches_trust_and_expiry() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let ca = Ca::new();
    let valid = ca.leaf(90 * DAY + Duration::from_secs(3600));
    let expiring = ca.leaf(3 * DAY + Duration::from_secs(3600));
    let expired = ca.expired(2 * DAY);
    let lab = Lab::start(
        &config(dir.path(), smtp.port),
        Prober::with_roots(&[ca.root()]).expect("prober"),
    );
    let server = TlsServer::start(&valid, Speak::Nothing).await;
    lab.watch(
        "imap",
        spec(serde_json::json!({ "url": format!("tls://{}", server.addr) })),
    )
    .await;

    // valid: healthy, its expiry recorded
    let check = lab.until_state("imap", State::Healthy).await;
    assert_eq!(check.record.outcome, Outcome::Pass);
    let not_after = check.record.cert_not_after.expect("expiry recorded");
    assert_eq!(not_after.timestamp(), valid.not_after_unix());
    assert_eq!(check.record.cert_days_left, Some(90));

    // expiring in 3 days (of 14): a warn, degraded, and mailed once it lasts a check
    server.show(&expiring);
    let mail = mail_about(&mut smtp, "imap", "DEGRADED").await;
    let body = mail.body();
    assert!(
        body.contains("cert_expiring: certificate of 127.0.0.1 expires in 3 days ("),
        "{body}"
    );
    let check = lab.until_state("imap", State::Degraded).await;
    assert_eq!(
        (
            check.record.outcome,
            check.record.reason,
            check.record.cert_days_left
        ),
        (Outcome::Warn, Reason::CertExpiring, Some(3))
    );
    let date = chrono::DateTime::from_timestamp(expiring.not_after_unix(), 0)
        .expect("date")
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        check
            .record
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(&date)),
        "{:?}",
        check.record.detail
    );

    // expired: rustls refuses it; a fail, unhealthy, mailed, and the expiry still recorded
    server.show(&expired);
    let mail = mail_about(&mut smtp, "imap", "UNHEALTHY").await;
    assert!(
        mail.body()
            .contains("tls: certificate of 127.0.0.1 expired 2 days ago"),
        "{}",
        mail.body()
    );
    let check = lab.until_state("imap", State::Unhealthy).await;
    assert_eq!(check.record.reason, Reason::Tls);
    assert_eq!(
        check.record.cert_not_after.map(|t| t.timestamp()),
        Some(expired.not_after_unix())
    );
    assert_eq!(check.record.cert_days_left, Some(-2));

    // valid again: healthy after two passes, and the recovery mailed
    server.show(&valid);
    mail_about(&mut smtp, "imap", "HEALTHY again").await;
    lab.until_state("imap", State::Healthy).await;
    lab.stop().await;
}

#[tokio::test]
async fn a_self_signed_device_passes_only_without_verification_and_its_expiry_is_watched() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let ca = Ca::new();
    let router = self_signed(365 * DAY);
    let lab = Lab::start(
        &config(dir.path(), smtp.port),
        Prober::with_roots(&[ca.root()]).expect("prober"),
    );
    let server = TlsServer::start(&router, Speak::Nothing).await;
    let url = format!("tls://{}", server.addr);
    lab.watch(
        "router",
        spec(serde_json::json!({ "url": url, "tls_verify": false })),
    )
    .await;
    lab.watch("router-verified", spec(serde_json::json!({ "url": url })))
        .await;
    let check = lab.until_state("router", State::Healthy).await;
    assert_eq!(
        check.record.cert_not_after.map(|t| t.timestamp()),
        Some(router.not_after_unix())
    );
    let check = lab.until_state("router-verified", State::Unhealthy).await;
    assert_eq!(check.record.reason, Reason::Tls);
    assert!(
        check
            .record
            .detail
            .as_deref()
            .is_some_and(|detail| detail.contains("UnknownIssuer")),
        "{:?}",
        check.record.detail
    );
    let mail = mail_about(&mut smtp, "router-verified", "UNHEALTHY").await;
    assert!(
        mail.body().contains("tls: TLS: invalid peer certificate"),
        "{}",
        mail.body()
    );

    // the self-signed certificate nears its end: still watched without verification
    server.show(&self_signed(2 * DAY + Duration::from_secs(3600)));
    let check = lab.until_state("router", State::Degraded).await;
    assert_eq!(
        (check.record.reason, check.record.cert_days_left),
        (Reason::CertExpiring, Some(2))
    );
    let mail = mail_about(&mut smtp, "router", "DEGRADED").await;
    assert!(mail.body().contains("expires in 2 days"), "{}", mail.body());
    // expired, unverified: a fail all the same
    server.show(&self_signed_expired(DAY));
    let check = lab.until_state("router", State::Unhealthy).await;
    assert_eq!(check.record.reason, Reason::Tls);
    assert!(
        check
            .record
            .detail
            .as_deref()
            .is_some_and(|detail| detail.starts_with("certificate of 127.0.0.1 expired")),
        "{:?}",
        check.record.detail
    );
    lab.stop().await;
}

#[tokio::test]
async fn https_keeps_the_expiry_with_its_pooled_connection() {
    let ca = Ca::new();
    let leaf = ca.leaf(10 * DAY + Duration::from_secs(3600));
    let server = TlsServer::start(&leaf, Speak::Http).await;
    let prober = Prober::with_roots(&[ca.root()]).expect("prober");
    let spec = spec(serde_json::json!({ "url": format!("https://{}", server.addr) }));
    let mut records = Vec::new();
    for _ in 0..3 {
        records.push(prober.check(&spec).await);
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "one connection"
    );
    for record in &records {
        assert_eq!(
            (record.outcome, record.reason, record.http_status),
            (Outcome::Warn, Reason::CertExpiring, Some(200)),
            "{record:?}"
        );
        assert_eq!(
            record.cert_not_after.map(|t| t.timestamp()),
            Some(leaf.not_after_unix())
        );
        assert_eq!(record.cert_days_left, Some(10));
    }
    // cert_warn_days 0: the same certificate, no warning, still recorded
    let mut quiet = spec.clone();
    quiet.cert_warn_days = 0;
    let record = prober.check(&quiet).await;
    assert_eq!(
        (record.outcome, record.cert_days_left),
        (Outcome::Pass, Some(10))
    );
    // a monitor that does not verify never gets the verified connection, nor the reverse
    let mut unverified = spec.clone();
    unverified.tls_verify = false;
    let record = prober.check(&unverified).await;
    assert_eq!(record.reason, Reason::CertExpiring);
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

/// An HTTP app on 127.0.0.1 answering each path with its status and body.
async fn app() -> String {
    let router = Router::new()
        .route(
            "/unauthorized",
            get(|| async { (StatusCode::UNAUTHORIZED, "login first") }),
        )
        .route("/empty", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/accepted-warn",
            get(|| async {
                (
                    StatusCode::ACCEPTED,
                    [("content-type", "application/health+json")],
                    r#"{"status": "warn"}"#,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn expect_status_decides_the_status_test_only() {
    let url = app().await;
    let prober = Prober::new().expect("prober");
    let check = |path: &str, expect: serde_json::Value| {
        let mut body = serde_json::json!({ "url": url, "path": path });
        if !expect.is_null() {
            body["expect_status"] = expect;
        }
        let spec = spec(body);
        let prober = prober.clone();
        async move { prober.check(&spec).await }
    };
    let rows: &[(&str, serde_json::Value, Outcome, Reason, Option<&str>)] = &[
        (
            "/unauthorized",
            serde_json::Value::Null,
            Outcome::Fail,
            Reason::StatusCode,
            Some("HTTP 401 Unauthorized"),
        ),
        (
            "/unauthorized",
            serde_json::json!([200, 204, 401]),
            Outcome::Pass,
            Reason::Ok,
            None,
        ),
        (
            "/empty",
            serde_json::json!("200-299"),
            Outcome::Pass,
            Reason::Ok,
            None,
        ),
        (
            "/down",
            serde_json::json!("200-299"),
            Outcome::Fail,
            Reason::StatusCode,
            Some("HTTP 503 Service Unavailable (expected 200-299)"),
        ),
        // the body still decides
        (
            "/accepted-warn",
            serde_json::json!("200-299"),
            Outcome::Warn,
            Reason::BodyWarn,
            Some("status \"warn\" in body"),
        ),
    ];
    for (path, expect, outcome, reason, detail) in rows {
        let record = check(path, expect.clone()).await;
        assert_eq!(
            (record.outcome, record.reason, record.detail.as_deref()),
            (*outcome, *reason, *detail),
            "{path} expecting {expect}"
        );
    }
}
