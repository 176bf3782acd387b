//! Push monitors through the live set on real parts: the real store (SQLite in a temporary
//! folder), the scheduler's timer wheel, the state machine, the alert policy and the outbox.
//! Periods and graces of seconds keep the tests short: the specs are built directly, not
//! through validation (whose minimum is a minute). The ping routes, mail through a real SMTP
//! server and kill -9 are in `push_binary.rs`; cron schedules across daylight saving changes are
//! tested on values in `push.rs`'s unit tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use healthchecker_server::health::State;
use healthchecker_server::monitors::{Monitors, MonitorsOptions, Parts};
use healthchecker_server::probe::Prober;
use healthchecker_server::push::{PingKey, PingKind, PushSpec, Schedule};
use healthchecker_server::registry::{AppName, ExpectStatus, MonitorSpec, PUSH_URL, limits};
use healthchecker_server::store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn spec(period: Duration, grace: Duration) -> MonitorSpec {
    MonitorSpec {
        url: PUSH_URL.parse().expect("url"),
        path: String::new(),
        emails: vec!["me@example.com".to_owned()],
        interval: grace,
        timeout: Duration::ZERO,
        unhealthy: 1,
        healthy: 1,
        notify: Vec::new(),
        expect_status: ExpectStatus::default(),
        cert_warn_days: limits::CERT_WARN_DAYS_DEFAULT,
        tls_verify: true,
        push: Some(PushSpec {
            key: PingKey::generate().expect("random"),
            schedule: Schedule::Period(period),
            grace,
            rotate_key: false,
        }),
    }
}

struct Set {
    monitors: Monitors,
    store: Store,
    cancel: CancellationToken,
}

fn start(dir: &std::path::Path) -> Set {
    let store = Store::open(dir, StoreOptions::default()).expect("store");
    let loaded = store.load_monitors().expect("load");
    let cancel = CancellationToken::new();
    let parts = Parts {
        store: store.clone(),
        checker: Arc::new(Prober::new().expect("prober")),
        routes: Default::default(),
        windows: Vec::new(),
        cancel: cancel.clone(),
        tasks: TaskTracker::new(),
    };
    Set {
        monitors: Monitors::start(parts, loaded, MonitorsOptions::default()),
        store,
        cancel,
    }
}

fn name(text: &str) -> AppName {
    AppName::parse(text).expect("name")
}

fn key(monitors: &Monitors, app: &AppName) -> PingKey {
    monitors
        .view(app)
        .and_then(|view| view.push)
        .and_then(|push| push.key)
        .expect("a push monitor")
}

/// Waits until `app` is in `state`; returns when it got there.
async fn until(monitors: &Monitors, app: &AppName, state: State, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let view = monitors.view(app).expect("registered");
        if view.state == state {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{app} never became {state}; it is {}",
            view.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The events (`degraded`, `unhealthy`, `recovered`) queued for mail, oldest first.
async fn mailed(store: &Store) -> Vec<String> {
    store.flush().await.expect("flush");
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    store
        .due_messages("email", far, 100)
        .await
        .expect("outbox")
        .into_iter()
        .map(|message| {
            let payload: serde_json::Value =
                serde_json::from_str(&message.message.payload).expect("payload");
            payload["kind"]
                .as_str()
                .or(payload["event"]["kind"].as_str())
                .unwrap_or_else(|| panic!("an event kind in {payload}"))
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_is_degraded_and_not_mailed_missed_is_unhealthy_and_mailed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let set = start(dir.path());
    let _stop = set.cancel.clone().drop_guard();
    let app = name("backup");
    let (period, grace) = (Duration::from_secs(2), Duration::from_secs(2));
    set.monitors
        .upsert(app.clone(), spec(period, grace))
        .await
        .expect("registered");
    let key = key(&set.monitors, &app);
    assert_eq!(set.monitors.view(&app).expect("view").state, State::Unknown);

    let pinged = Instant::now();
    let answered = set
        .monitors
        .ping(&key, PingKind::Success, None)
        .await
        .expect("durable");
    assert_eq!(answered, Some(app.clone()));
    let view = set.monitors.view(&app).expect("view");
    assert_eq!(view.state, State::Healthy);
    let push = view.push.expect("push view");
    assert_eq!(
        push.expected_by.zip(push.last_success).map(|(e, l)| e - l),
        Some(chrono::Duration::seconds(2))
    );

    let late = until(
        &set.monitors,
        &app,
        State::Degraded,
        Duration::from_secs(10),
    )
    .await;
    assert!(late - pinged >= period, "late only after the period");
    let view = set.monitors.view(&app).expect("view");
    assert_eq!(
        view.last_check.as_ref().map(|c| c.record.reason.as_str()),
        Some("late")
    );
    assert!(mailed(&set.store).await.is_empty(), "late is not mailed");

    let missed = until(
        &set.monitors,
        &app,
        State::Unhealthy,
        Duration::from_secs(10),
    )
    .await;
    assert!(missed - pinged >= period + grace, "missed after the grace");
    let view = set.monitors.view(&app).expect("view");
    assert_eq!(
        view.last_transition
            .as_ref()
            .map(|t| t.reason.split(':').next()),
        Some(Some("missed"))
    );
    assert_eq!(mailed(&set.store).await, ["unhealthy"]);

    // the next success recovers it, with a recovery message
    set.monitors
        .ping(&key, PingKind::Success, None)
        .await
        .expect("durable");
    assert_eq!(set.monitors.view(&app).expect("view").state, State::Healthy);
    assert_eq!(mailed(&set.store).await, ["unhealthy", "recovered"]);

    // an unknown key is nobody
    let stranger = PingKey::generate().expect("random");
    assert_eq!(
        set.monitors
            .ping(&stranger, PingKind::Success, None)
            .await
            .expect("no error"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_its_result_is_run_too_long_and_a_result_records_the_run_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let set = start(dir.path());
    let _stop = set.cancel.clone().drop_guard();
    let app = name("certbot");
    let grace = Duration::from_secs(2);
    set.monitors
        .upsert(app.clone(), spec(Duration::from_secs(3600), grace))
        .await
        .expect("registered");
    let key = key(&set.monitors, &app);
    set.monitors
        .ping(&key, PingKind::Start, None)
        .await
        .expect("durable");
    tokio::time::sleep(Duration::from_millis(300)).await;
    set.monitors
        .ping(&key, PingKind::Exit(0), Some("renewed".to_owned()))
        .await
        .expect("durable");
    let log = set.store.log(&app, 10).await.expect("log");
    let result = &log[0];
    let ping = result.ping.as_ref().expect("a ping entry");
    assert_eq!((ping.kind.as_str(), ping.exit_status), ("exit", Some(0)));
    assert!(ping.run_s.is_some_and(|run| run >= 0.3), "{ping:?}");
    assert_eq!(result.record.detail.as_deref(), Some("renewed"));
    assert_eq!(log[1].ping.as_ref().map(|p| p.kind.as_str()), Some("start"));

    // started again, and nothing comes
    let started = Instant::now();
    set.monitors
        .ping(&key, PingKind::Start, None)
        .await
        .expect("durable");
    let too_long = until(
        &set.monitors,
        &app,
        State::Unhealthy,
        Duration::from_secs(10),
    )
    .await;
    assert!(too_long - started >= grace);
    let view = set.monitors.view(&app).expect("view");
    assert_eq!(
        view.last_check.as_ref().map(|c| c.record.reason.as_str()),
        Some("run_too_long")
    );
    assert_eq!(mailed(&set.store).await, ["unhealthy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passed_while_the_server_was_down_waits_for_the_grace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = name("agent");
    let (period, grace) = (Duration::from_secs(1), Duration::from_secs(3));
    let key = {
        let set = start(dir.path());
        set.monitors
            .upsert(app.clone(), spec(period, grace))
            .await
            .expect("registered");
        let key = key(&set.monitors, &app);
        set.monitors
            .ping(&key, PingKind::Success, None)
            .await
            .expect("durable");
        set.cancel.cancel();
        set.store.close().await.expect("closed");
        key
    };
    // down for longer than period + grace: the deadline passes while nobody listens
    tokio::time::sleep(period + grace + Duration::from_millis(500)).await;

    let booted = Instant::now();
    let set = start(dir.path());
    let _stop = set.cancel.clone().drop_guard();
    let view = set.monitors.view(&app).expect("loaded");
    assert_eq!(view.state, State::Healthy, "the state it had");
    assert_eq!(view.push.as_ref().and_then(|p| p.key.clone()), Some(key));
    until(&set.monitors, &app, State::Degraded, Duration::from_secs(5)).await;
    let missed = until(
        &set.monitors,
        &app,
        State::Unhealthy,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        missed - booted >= grace,
        "missed {:?} after the start, before the grace of {grace:?}",
        missed - booted
    );
    assert_eq!(mailed(&set.store).await, ["unhealthy"]);
}
