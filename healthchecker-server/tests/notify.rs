//! Alerts end to end: real loopback apps that pass, warn, fail or hang, checked by the real
//! prober through the monitors, the alert policy and a real store on disk, and mail out through a
//! real SMTP server (mailin-embedded) on 127.0.0.1. Restarts are a second set of parts on the same
//! folder, as a restarted server would be.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use healthchecker_server::Config;
use healthchecker_server::alerting::Rules;
use healthchecker_server::alerting::storm::StormRules;
use healthchecker_server::config::ServeArgs;
use healthchecker_server::config::channel::Routes;
use healthchecker_server::health::State;
use healthchecker_server::monitors::{Monitors, MonitorsOptions, Parts};
use healthchecker_server::notify::{Notifier, NotifyOptions};
use healthchecker_server::probe::Prober;
use healthchecker_server::registry::{AppName, MonitorSpec};
use healthchecker_server::store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use common::hooks::{Log, receiver};
use common::smtp::{Outage, Smtp};

const OWNER: &str = "owner@example.com";

fn config(dir: &Path, smtp_port: Option<u16>) -> Config {
    config_with(dir, smtp_port, "")
}

/// [`config`] with `text` in its config file.
fn config_with(dir: &Path, smtp_port: Option<u16>, text: &str) -> Config {
    let file = dir.join("config");
    std::fs::write(&file, text).expect("config file");
    let args = ServeArgs {
        config: Some(file),
        data_dir: Some(dir.join("data")),
        smtp_url: smtp_port.map(|port| format!("smtp://127.0.0.1:{port}")),
        mail_from: Some("Health Checker <hc@test.example>".into()),
        ..ServeArgs::default()
    };
    Config::load(&args).expect("valid config")
}

/// What a loopback app answers at `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Pass,
    Warn,
    Fail,
    /// No answer for 30 s: the check times out.
    Hang,
    /// A body whose status carries a header injection.
    Hostile,
    /// Every third answer is a 503, the others pass.
    EveryThirdFails,
}

/// A real HTTP app on 127.0.0.1 whose answer the test sets.
#[derive(Clone)]
struct App {
    url: String,
    answer: Arc<Mutex<Answer>>,
}

impl App {
    async fn start(answer: Answer) -> App {
        App::start_on("127.0.0.1", answer).await
    }

    /// An app on the loopback address `ip` (127.0.0.2 is another host to host grouping).
    async fn start_on(ip: &str, answer: Answer) -> App {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let answer = Arc::new(Mutex::new(answer));
        let shared = Arc::clone(&answer);
        let router = Router::new().route(
            "/health",
            get(move || {
                let answer = *shared.lock().expect("lock");
                let n = answered.fetch_add(1, Ordering::SeqCst);
                async move {
                    match answer {
                        Answer::EveryThirdFails if n % 3 == 2 => {
                            (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
                        }
                        Answer::EveryThirdFails => (StatusCode::OK, "{}").into_response(),
                        Answer::Pass => (StatusCode::OK, r#"{"status": "pass"}"#).into_response(),
                        Answer::Warn => (StatusCode::OK, r#"{"status": "warn", "output": "disk 91% full"}"#)
                            .into_response(),
                        Answer::Fail => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            StatusCode::OK.into_response()
                        }
                        Answer::Hostile => (
                            StatusCode::OK,
                            "{\"status\": \"x\\r\\nBcc: victim@example.com\\r\\nX-Injected: yes\\r\\n\\r\\nfake body\"}",
                        )
                            .into_response(),
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        App { url, answer }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }
}

/// How a lab's parts are tuned.
#[derive(Debug, Clone, Copy)]
struct Tuning {
    remind_every: Option<Duration>,
    coalesce_window: Duration,
    /// The fewest failing monitors that make a storm (held alerts).
    storm_min: usize,
    /// Who is told about a storm.
    admin: &'static [&'static str],
    /// More changes than this in 30 min are flapping; 0: off.
    flap_changes: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            remind_every: None,
            coalesce_window: Duration::ZERO,
            storm_min: healthchecker_server::alerting::storm::STORM_MIN,
            admin: &[],
            flap_changes: healthchecker_server::alerting::FLAP_CHANGES,
        }
    }
}

/// The insides of a server on one data folder: the store, the monitors with the real prober, and
/// the delivery worker; stopped in the server's order.
struct Lab {
    store: Store,
    monitors: Monitors,
    notifier: Notifier,
    checks: (CancellationToken, TaskTracker),
    delivery: (CancellationToken, TaskTracker),
}

impl Lab {
    fn start(config: &Config, tuning: Tuning) -> Lab {
        let store = Store::open(&config.data_dir, StoreOptions::default()).expect("store opens");
        let loaded = store.load_monitors().expect("loads");
        let checks = (CancellationToken::new(), TaskTracker::new());
        let delivery = (CancellationToken::new(), TaskTracker::new());
        let mut options = NotifyOptions::new("http://127.0.0.1:8080");
        options.coalesce_window = tuning.coalesce_window;
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
                checker: Arc::new(Prober::new().expect("prober")),
                routes: Arc::new(Routes::new(
                    config.channels.clone(),
                    config.default_channels.clone(),
                    tuning.admin.iter().map(|a| (*a).to_owned()).collect(),
                )),
                windows: config.maintenance.clone(),
                cancel: checks.0.clone(),
                tasks: checks.1.clone(),
            },
            loaded,
            MonitorsOptions {
                first_check_within: Duration::from_millis(300),
                rules: Rules {
                    remind_every: tuning.remind_every,
                    flap_changes: tuning.flap_changes,
                    ..Rules::default()
                },
                storm: StormRules {
                    min: tuning.storm_min,
                    ..StormRules::default()
                },
                ..MonitorsOptions::default()
            },
        );
        Lab {
            store,
            monitors,
            notifier,
            checks,
            delivery,
        }
    }

    /// Monitors `app` at `url` every `interval`, mailing `emails`.
    async fn watch(
        &self,
        app: &str,
        url: &str,
        emails: &[&str],
        interval: Duration,
        timeout: Duration,
    ) {
        let spec = MonitorSpec {
            expect_status: Default::default(),
            cert_warn_days: 14,
            tls_verify: true,
            url: url.parse().expect("url"),
            path: "/health".into(),
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            interval,
            timeout,
            unhealthy: 2,
            healthy: 2,
            notify: Vec::new(),
            push: None,
        };
        self.monitors
            .upsert(name(app), spec)
            .await
            .expect("registered");
    }

    fn state(&self, app: &str) -> State {
        self.monitors.view(&name(app)).expect("registered").state
    }

    async fn until_state(&self, app: &str, state: State) {
        until(|| async { self.state(app) == state }).await;
    }

    async fn pending(&self) -> usize {
        self.store
            .pending_messages()
            .await
            .expect("outbox readable")
    }

    async fn failed_attempts(&self) -> u32 {
        let far = chrono::Utc::now() + chrono::Duration::days(1);
        self.store
            .due_messages("email", far, 100)
            .await
            .expect("outbox readable")
            .iter()
            .map(|message| message.attempts)
            .max()
            .unwrap_or(0)
    }

    /// Stops as a server does: the checks (those in flight finish), delivery, the store.
    async fn stop(self) {
        for (stop, tasks) in [&self.checks, &self.delivery] {
            stop.cancel();
            tasks.close();
            tokio::time::timeout(Duration::from_secs(15), tasks.wait())
                .await
                .expect("the stage stops within its deadline");
        }
        self.store.close().await.expect("store closes");
    }
}

/// One second between checks, 800 ms to answer (loopback apps answer in a millisecond; the
/// margin is for a loaded machine): a degrade is held 2.8 s.
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_millis(800);

fn name(text: &str) -> AppName {
    AppName::parse(text).expect("valid name")
}

/// Waits until `condition` holds, polling (within 20 s).
async fn until<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "condition not met within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
async fn a_full_incident_is_one_thread_unhealthy_reminder_recovery() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(
        &config,
        Tuning {
            remind_every: Some(Duration::from_secs(1)),
            ..Tuning::default()
        },
    );
    let app = App::start(Answer::Pass).await;
    lab.watch(
        "media-center",
        &app.url,
        &[OWNER, "second@example.com"],
        INTERVAL,
        TIMEOUT,
    )
    .await;
    lab.until_state("media-center", State::Healthy).await;

    // one failed check: degraded, held; the next one makes it unhealthy: one mail only
    app.set(Answer::Fail);
    let failed = Instant::now();
    let unhealthy = smtp.next(Duration::from_secs(10)).await;
    eprintln!(
        "app fails -> UNHEALTHY accepted by the SMTP server: {:?}",
        unhealthy.at - failed
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
        &format!("Checked:   {}/health", app.url),
        "Change:    DEGRADED -> UNHEALTHY",
        "Reason:    status_code: HTTP 503",
        "Down for:  ",
        "Last checks, newest first:",
        "Next steps:\n  Dashboard: http://127.0.0.1:8080/#/monitor/media-center\n",
        "  Its log:   healthchecker-server log media-center --server http://127.0.0.1:8080\n",
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
    app.set(Answer::Pass);
    let mut healthy = smtp.next(Duration::from_secs(10)).await;
    while healthy.subject().contains("still UNHEALTHY") {
        // reminders that were due before the first pass
        healthy = smtp.next(Duration::from_secs(10)).await;
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
    assert_ne!(
        healthy.header("In-Reply-To").as_ref(),
        Some(&root),
        "replies to the newest mail"
    );
    // Issue 23: what it was, since when, when it was back, the downtime; not the last change.
    for needle in ["Was:       UNHEALTHY since ", "Back at:   ", "Downtime:  "] {
        assert!(
            healthy.body().contains(needle),
            "{needle:?} in {}",
            healthy.body()
        );
    }
    assert!(
        !healthy.body().contains("DEGRADED -> HEALTHY"),
        "{}",
        healthy.body()
    );

    // the incident is closed: no more reminders
    smtp.none_within(Duration::from_millis(2500)).await;
    assert_eq!(lab.pending().await, 0);
    lab.stop().await;
}

#[tokio::test]
async fn a_blip_is_not_mailed_but_a_degrade_that_lasts_one_check_is() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(&config, Tuning::default());
    let blip = App::start(Answer::Pass).await;
    let slow = App::start(Answer::Pass).await;
    lab.watch("blip", &blip.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.watch("slow", &slow.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.until_state("blip", State::Healthy).await;
    lab.until_state("slow", State::Healthy).await;

    // one failed check, then passes again: DEGRADED and back, nothing mailed
    blip.set(Answer::Fail);
    lab.until_state("blip", State::Degraded).await;
    blip.set(Answer::Pass);
    lab.until_state("blip", State::Healthy).await;

    slow.set(Answer::Warn);
    lab.until_state("slow", State::Degraded).await;
    let degraded_at = Instant::now();
    let degraded = smtp.next(Duration::from_secs(10)).await;
    assert_eq!(degraded.subject(), "[healthchecker] slow is DEGRADED");
    assert!(
        degraded.at - degraded_at >= Duration::from_millis(1800),
        "held for one check: {:?}",
        degraded.at - degraded_at
    );
    assert!(
        degraded
            .body()
            .contains("Reason:    body_warn: status \"warn\" in body"),
        "{}",
        degraded.body()
    );
    smtp.none_within(Duration::from_secs(3)).await;
    lab.stop().await;
}

#[tokio::test]
async fn mail_waits_for_the_smtp_server_and_arrives_exactly_once() {
    let dir = temp_dir();
    let outage = Outage::start();
    let config = config(dir.path(), Some(outage.port));
    let lab = Lab::start(&config, Tuning::default());
    let app = App::start(Answer::Fail).await;
    lab.watch("nas", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;

    until(|| async { lab.failed_attempts().await >= 1 }).await;
    let up = Instant::now();
    let mut smtp = outage.end();
    let mail = smtp.next(Duration::from_secs(70)).await;
    eprintln!("SMTP server up -> mail accepted: {:?}", mail.at - up);
    assert_eq!(mail.subject(), "[healthchecker] nas is UNHEALTHY");
    until(|| async { lab.pending().await == 0 }).await;
    smtp.none_within(Duration::from_secs(2)).await;
    lab.stop().await;
}

#[tokio::test]
async fn pending_mail_survives_a_restart_and_is_sent_exactly_once() {
    let dir = temp_dir();
    let outage = Outage::start();
    let config = config(dir.path(), Some(outage.port));
    let app = App::start(Answer::Fail).await;

    // first run: the relay is down
    let lab = Lab::start(&config, Tuning::default());
    lab.watch("nas", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    until(|| async { lab.failed_attempts().await >= 1 }).await;
    lab.stop().await;

    // second run: the relay is back; the app is still down (no new transition)
    let mut smtp = outage.end();
    let lab = Lab::start(&config, Tuning::default());
    let mail = smtp.next(Duration::from_secs(70)).await;
    assert_eq!(mail.subject(), "[healthchecker] nas is UNHEALTHY");
    until(|| async { lab.pending().await == 0 }).await;
    lab.stop().await;

    // third run: nothing is sent again
    let lab = Lab::start(&config, Tuning::default());
    smtp.none_within(Duration::from_secs(3)).await;
    lab.stop().await;
}

#[tokio::test]
async fn reminders_go_on_after_a_restart_in_the_incident_thread() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let app = App::start(Answer::Fail).await;
    let lab = Lab::start(&config, Tuning::default());
    lab.watch("nas", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    let first = smtp.next(Duration::from_secs(10)).await;
    assert_eq!(first.subject(), "[healthchecker] nas is UNHEALTHY");
    let root = first.header("Message-ID").expect("Message-ID");
    lab.stop().await;

    let lab = Lab::start(
        &config,
        Tuning {
            remind_every: Some(Duration::from_secs(1)),
            ..Tuning::default()
        },
    );
    let reminder = smtp.next(Duration::from_secs(10)).await;
    assert_eq!(reminder.subject(), "[healthchecker] nas is still UNHEALTHY");
    assert_eq!(
        reminder.header("In-Reply-To").as_ref(),
        Some(&root),
        "threads to the UNHEALTHY mail sent before the restart"
    );
    // and its recovery closes the same thread
    app.set(Answer::Pass);
    let mut healthy = smtp.next(Duration::from_secs(10)).await;
    while healthy.subject().contains("still UNHEALTHY") {
        healthy = smtp.next(Duration::from_secs(10)).await;
    }
    assert_eq!(healthy.subject(), "[healthchecker] nas is HEALTHY again");
    assert!(
        healthy
            .header("References")
            .expect("References")
            .starts_with(&root)
    );
    lab.stop().await;
}

/// A degrade held when the server stops is still told after the restart, at the end of its hold
/// (it waits in the outbox, not in memory).
#[tokio::test]
async fn a_held_degrade_survives_a_restart() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let app = App::start(Answer::Pass).await;
    let lab = Lab::start(&config, Tuning::default());
    lab.watch("nas", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.until_state("nas", State::Healthy).await;
    app.set(Answer::Warn);
    lab.until_state("nas", State::Degraded).await;
    let held_at = Instant::now();
    lab.stop().await;
    assert!(
        held_at.elapsed() < Duration::from_secs(2),
        "stopped within the hold"
    );
    smtp.none_within(Duration::from_millis(200)).await;

    let lab = Lab::start(&config, Tuning::default());
    let degraded = smtp.next(Duration::from_secs(10)).await;
    assert_eq!(degraded.subject(), "[healthchecker] nas is DEGRADED");
    assert!(
        degraded.at - held_at >= Duration::from_millis(1800),
        "not before the end of its hold"
    );
    smtp.none_within(Duration::from_secs(2)).await;
    lab.stop().await;
}

/// A check in flight when its app is deleted or paused tells nobody anything, and a paused app
/// keeps the state it had.
#[tokio::test]
async fn a_check_in_flight_when_its_app_is_deleted_or_paused_sends_nothing() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(&config, Tuning::default());
    let app = App::start(Answer::Pass).await;
    // checks take their whole timeout (1.5 s) once the app hangs
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_millis(1500));
    let apps = ["deleted-1", "deleted-2", "paused-1", "paused-2"];
    for name in apps {
        lab.watch(name, &app.url, &[OWNER], interval, timeout).await;
    }
    for name in apps {
        lab.until_state(name, State::Healthy).await;
    }
    app.set(Answer::Hang);
    for name in apps {
        lab.until_state(name, State::Degraded).await;
    }
    // 0.5 s into each one's second failing check: delete or pause it
    for name in apps {
        let first_fail = lab
            .monitors
            .view(&self::name(name))
            .and_then(|view| view.last_check)
            .expect("checked")
            .record
            .time;
        let next = first_fail
            + chrono::Duration::from_std(interval + Duration::from_millis(500)).expect("small");
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        if name.starts_with("deleted") {
            assert!(
                lab.monitors
                    .remove(&self::name(name))
                    .await
                    .expect("removes")
            );
        } else {
            lab.monitors
                .set_paused(&self::name(name), true)
                .await
                .expect("pauses");
        }
    }
    // the checks in flight end; nothing is mailed, then or later
    smtp.none_within(Duration::from_secs(5)).await;
    for name in ["paused-1", "paused-2"] {
        assert_eq!(lab.state(name), State::Degraded, "{name} keeps its state");
    }
    assert_eq!(lab.pending().await, 0);
    lab.stop().await;
}

#[tokio::test]
async fn a_permanent_refusal_is_marked_failed_and_not_retried() {
    let dir = temp_dir();
    let mut smtp = Smtp::serve(TcpListener::bind("127.0.0.1:0").expect("bind"), true);
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(&config, Tuning::default());
    let app = App::start(Answer::Fail).await;
    lab.watch("nas", &app.url, &["nobody@example.com"], INTERVAL, TIMEOUT)
        .await;
    until(|| async { smtp.attempts.load(Ordering::SeqCst) >= 1 }).await;
    until(|| async { lab.pending().await == 0 }).await;
    // a transient failure would be retried after 1 s
    smtp.none_within(Duration::from_millis(2500)).await;
    assert_eq!(smtp.attempts.load(Ordering::SeqCst), 1, "tried once");
    lab.stop().await;
}

#[tokio::test]
async fn hostile_names_and_answers_cannot_inject_headers() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(&config, Tuning::default());
    let app = App::start(Answer::Hostile).await;
    let name = "evil: \"x\" <victim@example.com>; Bcc: victim@example.com";
    lab.watch(name, &app.url, &[OWNER], INTERVAL, TIMEOUT).await;
    let mail = smtp.next(Duration::from_secs(10)).await;
    assert_eq!(mail.to, [OWNER], "no extra recipient");
    for (header, value) in mail.headers() {
        assert!(
            !header.eq_ignore_ascii_case("Bcc") && !header.eq_ignore_ascii_case("X-Injected"),
            "injected header {header}: {value}"
        );
    }
    assert!(mail.subject().contains("is DEGRADED"), "{}", mail.subject());
    let body = mail.body();
    assert!(
        body.lines()
            .all(|line| !line.starts_with("Bcc") && !line.starts_with("X-Injected")),
        "{body}"
    );
    assert!(
        body.contains("Reason:    body_warn: unrecognised status"),
        "{body}"
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_storm_is_coalesced_per_recipient() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(
        &config,
        Tuning {
            coalesce_window: Duration::from_secs(4),
            // 30 of 31 failing would be a storm, which holds per-app mail: not this test's subject
            storm_min: 1000,
            ..Tuning::default()
        },
    );
    let down = App::start(Answer::Fail).await;
    lab.watch("app-00", &down.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    let first = smtp.next(Duration::from_secs(10)).await;
    assert_eq!(
        first.subject(),
        "[healthchecker] app-00 is UNHEALTHY",
        "the first mail goes at once, alone"
    );
    // 29 more go down together, within the window after that mail
    for i in 1..30 {
        lab.watch(
            &format!("app-{i:02}"),
            &down.url,
            &[OWNER],
            INTERVAL,
            TIMEOUT,
        )
        .await;
    }
    lab.watch(
        "lonely",
        &down.url,
        &["other@example.com"],
        INTERVAL,
        TIMEOUT,
    )
    .await;
    let mut mails = Vec::new();
    while mails.len() < 2 {
        mails.push(smtp.next(Duration::from_secs(10)).await);
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
    assert_eq!(
        digest.subject(),
        "[healthchecker] 127.0.0.1: 29 apps UNHEALTHY",
        "one host's alerts, together"
    );
    assert!(
        digest.at - first.at >= Duration::from_millis(3900),
        "after the window"
    );
    let body = digest.body();
    assert_eq!(body.matches(" is UNHEALTHY ====").count(), 29, "{body}");
    until(|| async { lab.pending().await == 0 }).await;
    smtp.none_within(Duration::from_millis(1500)).await;
    lab.stop().await;
}

#[tokio::test]
async fn without_an_smtp_relay_mail_is_logged_and_marked() {
    let dir = temp_dir();
    let config = config(dir.path(), None);
    let lab = Lab::start(&config, Tuning::default());
    assert_eq!(lab.notifier.describe(), "written to the log (no smtp_url)");
    let app = App::start(Answer::Fail).await;
    lab.watch("nas", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.until_state("nas", State::Unhealthy).await;
    until(|| async {
        let conn =
            rusqlite::Connection::open(config.data_dir.join("healthchecker.db")).expect("open");
        let logged: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages WHERE status = 'logged'",
                [],
                |row| row.get(0),
            )
            .expect("count");
        logged == 1
    })
    .await;
    assert_eq!(lab.pending().await, 0);
    lab.stop().await;
}

/// Not a timed test: prints the time from an app failing to the SMTP server's acceptance (DESIGN.md:
/// at most `interval x unhealthy + timeout + 1 s`), and the window between the relay's acceptance
/// and the outbox saying `delivered` (a kill -9 inside it makes a restart send the mail again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_from_failure_to_accepted_mail_and_the_resend_window() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    // the apps failed one after another stay down: past five of them it would be a storm
    let lab = Lab::start(
        &config,
        Tuning {
            storm_min: 1000,
            ..Tuning::default()
        },
    );
    let conn = rusqlite::Connection::open(config.data_dir.join("healthchecker.db")).expect("open");
    let mut latencies = Vec::new();
    let mut windows = Vec::new();
    for i in 0..10 {
        let app = App::start(Answer::Pass).await;
        let name = format!("app{i}");
        lab.watch(
            &name,
            &app.url,
            &[&format!("owner{i}@example.com")],
            INTERVAL,
            TIMEOUT,
        )
        .await;
        lab.until_state(&name, State::Healthy).await;
        app.set(Answer::Fail);
        let start = Instant::now();
        let mail = smtp.next(Duration::from_secs(10)).await;
        latencies.push(mail.at - start);
        loop {
            let delivered: i64 = conn
                .query_row(
                    "SELECT count(*) FROM messages WHERE monitor = ?1 AND status = 'delivered'",
                    [&name],
                    |row| row.get(0),
                )
                .expect("count");
            if delivered == 1 {
                break;
            }
            assert!(
                mail.at.elapsed() < Duration::from_secs(5),
                "marked delivered"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        windows.push(mail.at.elapsed());
    }
    latencies.sort();
    windows.sort();
    eprintln!(
        "app fails -> SMTP accepted (bound {:?}): min {:?}, median {:?}, max {:?}",
        INTERVAL * 2 + TIMEOUT + Duration::from_secs(1),
        latencies[0],
        latencies[5],
        latencies[9]
    );
    eprintln!(
        "SMTP accepted -> marked delivered (the re-send window): min {:?}, median {:?}, max {:?}",
        windows[0], windows[5], windows[9]
    );
    lab.stop().await;
}

/// An app that fails every third check toggles HEALTHY and DEGRADED, each degrade a blip: it
/// would never be told. It is told once that it flaps, and nothing more while it goes on.
#[tokio::test]
async fn an_app_failing_every_third_check_is_told_once_that_it_flaps() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(&config, Tuning::default());
    let app = App::start(Answer::EveryThirdFails).await;
    lab.watch("flaky", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    let flapping = smtp.next(Duration::from_secs(30)).await;
    assert_eq!(flapping.subject(), "[healthchecker] flaky is FLAPPING");
    assert!(
        flapping.body().contains("7 changes of state in"),
        "{}",
        flapping.body()
    );
    assert!(
        lab.monitors
            .view(&name("flaky"))
            .expect("registered")
            .flapping
    );
    // it goes on flapping: nothing more
    smtp.none_within(Duration::from_secs(10)).await;
    lab.stop().await;
}

/// Seven apps on one host (127.0.0.2) fail together: one message listing them all on each
/// channel (mail and an ntfy topic), and a restart between the alert and the recovery tells
/// nothing twice. The apps of another host (127.0.0.1) keep the storm rule out of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seven_apps_on_one_host_failing_together_are_one_message_per_channel() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let hooks = Log::default();
    let ntfy = receiver(hooks.clone()).await;
    let config = config_with(
        dir.path(),
        Some(smtp.port),
        &format!(
            r#"
default_channels = ["phone"]

[[channel]]
name = "phone"
kind = "ntfy"
url = "{ntfy}/ntfy/nas"
"#
        ),
    );
    let lab = Lab::start(&config, Tuning::default());
    let nas = App::start_on("127.0.0.2", Answer::Pass).await;
    let other = App::start(Answer::Pass).await;
    // every 2 s: a host's alerts wait at most one interval for the others to decide, and the
    // seven decide within the 300 ms their first checks are spread over; a second to answer
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_secs(1));
    for i in 0..7 {
        lab.watch(&format!("nas-{i}"), &nas.url, &[OWNER], interval, timeout)
            .await;
    }
    for i in 0..10 {
        lab.watch(
            &format!("other-{i}"),
            &other.url,
            &[OWNER],
            interval,
            timeout,
        )
        .await;
    }
    for i in 0..7 {
        lab.until_state(&format!("nas-{i}"), State::Healthy).await;
    }
    nas.set(Answer::Fail);
    let grouped = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(
        grouped.subject(),
        "[healthchecker] 127.0.0.2: 7 apps UNHEALTHY"
    );
    let body = grouped.body();
    for i in 0..7 {
        assert!(body.contains(&format!("nas-{i} is UNHEALTHY")), "{body}");
    }
    until(|| async { !hooks.on("/ntfy/nas").is_empty() }).await;
    smtp.none_within(Duration::from_secs(3)).await;
    let posts = hooks.on("/ntfy/nas");
    assert_eq!(posts.len(), 1, "one post for the seven: {posts:?}");
    assert_eq!(posts[0].header("Title"), "127.0.0.2: 7 apps UNHEALTHY");
    // a restart while they are down tells nothing again
    lab.stop().await;
    let lab = Lab::start(&config, Tuning::default());
    smtp.none_within(Duration::from_secs(4)).await;
    assert_eq!(hooks.on("/ntfy/nas").len(), 1);
    // and their recovery, together too
    nas.set(Answer::Pass);
    let back = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(
        back.subject(),
        "[healthchecker] 127.0.0.2: 7 apps HEALTHY again"
    );
    until(|| async { hooks.on("/ntfy/nas").len() == 2 }).await;
    smtp.none_within(Duration::from_secs(3)).await;
    let posts = hooks.on("/ntfy/nas");
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[1].header("Title"), "127.0.0.2: 7 apps HEALTHY again");
    lab.stop().await;
}

/// 12 of 20 fail at once: one message asks whether the server's network is up, no per-app one
/// during the storm (a restart in it changes nothing), and when it clears the apps still down
/// are told, one message each; the ones that came back tell nothing.
// Twenty apps and the parts under test in one process: more than one thread, and checks every
// 2 s with 1.5 s to answer, so that healthy apps answer in time on a loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_is_one_message_and_the_apps_still_down_are_told_after_it() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let tuning = Tuning {
        admin: &["admin@example.com"],
        ..Tuning::default()
    };
    let (interval, timeout) = (Duration::from_secs(2), Duration::from_millis(1500));
    let lab = Lab::start(&config, tuning);
    let mut apps = Vec::new();
    for i in 0..20 {
        let app = App::start(Answer::Pass).await;
        let owner = format!("owner-{i}@example.com");
        lab.watch(
            &format!("app-{i:02}"),
            &app.url,
            &[&owner],
            interval,
            timeout,
        )
        .await;
        apps.push(app);
    }
    for i in 0..20 {
        lab.until_state(&format!("app-{i:02}"), State::Healthy)
            .await;
    }
    for app in &apps[..12] {
        app.set(Answer::Fail);
    }
    let storm = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(storm.to, ["admin@example.com"]);
    assert!(
        storm.subject().contains("many monitors fail at once"),
        "{}",
        storm.subject()
    );
    assert!(
        storm.body().contains("of 20 monitors failed at once"),
        "{}",
        storm.body()
    );
    for i in 0..12 {
        lab.until_state(&format!("app-{i:02}"), State::Unhealthy)
            .await;
    }
    smtp.none_within(Duration::from_secs(3)).await;
    // a restart in the storm: no second storm message, alerts still held
    lab.stop().await;
    let lab = Lab::start(&config, tuning);
    smtp.none_within(Duration::from_secs(5)).await;
    // three come back: 9 of 20 fail, the storm clears; two intervals later the 9 are told
    for app in &apps[..3] {
        app.set(Answer::Pass);
    }
    let mut told = Vec::new();
    while told.len() < 9 {
        told.push(smtp.next(Duration::from_secs(30)).await);
    }
    let mut subjects: Vec<String> = told.iter().map(|mail| mail.subject()).collect();
    subjects.sort();
    let expected: Vec<String> = (3..12)
        .map(|i| format!("[healthchecker] app-{i:02} is UNHEALTHY"))
        .collect();
    assert_eq!(subjects, expected);
    smtp.none_within(Duration::from_secs(4)).await;
    lab.stop().await;
}

/// An app in maintenance that goes down and stays down past the window: nothing during it (a
/// restart in it changes nothing), exactly one alert when it ends.
#[tokio::test]
async fn maintenance_then_still_down_is_one_alert_at_its_end() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    let config = config(dir.path(), Some(smtp.port));
    let lab = Lab::start(&config, Tuning::default());
    let app = App::start(Answer::Pass).await;
    lab.watch("nas", &app.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.until_state("nas", State::Healthy).await;
    let view = lab
        .monitors
        .set_maintenance(
            &name("nas"),
            Some((Duration::from_secs(8), "deploy".to_owned())),
        )
        .await
        .expect("stored")
        .expect("registered");
    let until = view.maintenance_until.expect("until");
    assert_eq!(view.maintenance_reason.as_deref(), Some("deploy"));
    app.set(Answer::Fail);
    lab.until_state("nas", State::Unhealthy).await;
    smtp.none_within(Duration::from_secs(1)).await;
    lab.stop().await;
    let lab = Lab::start(&config, Tuning::default());
    assert_eq!(
        lab.monitors
            .view(&name("nas"))
            .expect("registered")
            .maintenance_until,
        Some(until),
        "a restart keeps the window"
    );
    let alert = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(alert.subject(), "[healthchecker] nas is UNHEALTHY");
    assert!(
        chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now()) >= until,
        "not before the window ended"
    );
    smtp.none_within(Duration::from_secs(3)).await;
    lab.stop().await;
}

#[tokio::test]
async fn a_scheduled_window_of_the_config_file_silences_only_its_monitors() {
    let dir = temp_dir();
    let mut smtp = Smtp::start();
    // began at the last whole minute, lasts a day: open for the whole test
    let config = config_with(
        dir.path(),
        Some(smtp.port),
        "[[maintenance]]\nmonitors = [\"nas\"]\nschedule = \"* * * * *\"\nduration = \"1d\"\n\
         tz = \"Europe/Berlin\"\nreason = \"nightly backup\"\n",
    );
    let lab = Lab::start(&config, Tuning::default());
    let nas = App::start(Answer::Fail).await;
    let web = App::start_on("127.0.0.2", Answer::Fail).await;
    lab.watch("nas", &nas.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.watch("web", &web.url, &[OWNER], INTERVAL, TIMEOUT)
        .await;
    lab.until_state("nas", State::Unhealthy).await;
    lab.until_state("web", State::Unhealthy).await;

    let view = lab.monitors.view(&name("nas")).expect("registered");
    assert_eq!(view.maintenance_reason.as_deref(), Some("nightly backup"));
    let left = view.maintenance_until.expect("in a window") - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(23) && left <= chrono::Duration::days(1),
        "{left}"
    );
    assert_eq!(
        lab.monitors
            .view(&name("web"))
            .expect("registered")
            .maintenance_until,
        None
    );

    let alert = smtp.next(Duration::from_secs(20)).await;
    assert_eq!(alert.subject(), "[healthchecker] web is UNHEALTHY");
    smtp.none_within(Duration::from_secs(3)).await;
    lab.stop().await;
}
