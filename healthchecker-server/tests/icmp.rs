//! `icmp://` checks on real sockets, inside a network namespace (the suite runs under
//! `unshare -n`, as .ci/run does; elsewhere the test is skipped, saying why): echoes to 127.0.0.1
//! and ::1 through a raw socket and through an unprivileged ping socket (the namespace's
//! `net.ipv4.ping_group_range` switched between the two), an address without a route
//! (`unreachable`), and a monitor whose address stops and starts answering (routed to `lo`
//! without being one of its addresses: the echo is dropped, `no_reply`), through the state
//! machine and a real SMTP server.
//!
//! One test function: the sysctl and the routes are the namespace's, shared by every thread.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use healthchecker_client::testing::network_isolated;
use healthchecker_server::Config;
use healthchecker_server::config::ServeArgs;
use healthchecker_server::health::{Outcome, State};
use healthchecker_server::monitors::{Monitors, MonitorsOptions, Parts};
use healthchecker_server::notify::{Notifier, NotifyOptions};
use healthchecker_server::probe::icmp::{SocketKind, availability};
use healthchecker_server::probe::{Prober, Reason};
use healthchecker_server::registry::{AppName, Emails, MonitorSpec, Registration};
use healthchecker_server::store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use common::smtp::Smtp;

const RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// An address of the benchmarking range that the test routes to `lo` (dropped: no reply) and
/// then gives to `lo` (answered).
const SILENT: &str = "198.18.7.1";

fn spec(url: &str) -> MonitorSpec {
    let mut spec = Registration {
        url: Some(url.to_owned()),
        email: Some(Emails::One("owner@example.com".into())),
        ..Registration::default()
    }
    .validate()
    .expect("valid");
    spec.interval = Duration::from_millis(500);
    spec.timeout = Duration::from_millis(300);
    spec.unhealthy = 2;
    spec.healthy = 2;
    spec
}

fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("ip runs");
    assert!(status.success(), "ip {args}");
}

/// Puts the namespace's ping group range back, and the test's routes away, on every exit.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(RANGE, &self.0);
        for args in [
            format!("route del {SILENT}/32 dev lo"),
            format!("addr del {SILENT}/32 dev lo"),
        ] {
            let _ = Command::new("ip").args(args.split_whitespace()).status();
        }
    }
}

fn has_ipv6_loopback() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|table| table.lines().any(|line| line.starts_with(&"0".repeat(31))))
}

async fn echo(prober: &Prober, url: &str) -> (Outcome, Reason, Option<String>) {
    let record = prober.check(&spec(url)).await;
    (record.outcome, record.reason, record.detail)
}

#[tokio::test]
async fn echoes_through_raw_and_ping_sockets_and_a_monitor_that_goes_silent() {
    if !network_isolated("icmp") {
        return;
    }
    let Ok(original) = std::fs::read_to_string(RANGE) else {
        eprintln!("icmp: skipped: {RANGE} is not readable here");
        return;
    };
    let _restore = Restore(original);
    let v6 = has_ipv6_loopback();
    if !v6 {
        eprintln!("icmp: this namespace has no ::1 (IPv6 off); only IPv4 is tried");
    }

    // No ping sockets for anyone: a raw socket (root here has CAP_NET_RAW).
    std::fs::write(RANGE, "1 0").expect("ping sockets off");
    assert_eq!(availability(false), Ok(SocketKind::Raw));
    let raw = Prober::new().expect("prober");
    assert_eq!(
        echo(&raw, "icmp://127.0.0.1").await,
        (Outcome::Pass, Reason::Ok, None)
    );
    if v6 {
        assert_eq!(availability(true), Ok(SocketKind::Raw));
        assert_eq!(
            echo(&raw, "icmp://[::1]").await,
            (Outcome::Pass, Reason::Ok, None)
        );
    }

    // Ping sockets for every group: those are taken first.
    std::fs::write(RANGE, "0 2147483647").expect("ping sockets on");
    assert_eq!(availability(false), Ok(SocketKind::Ping));
    let ping = Prober::new().expect("prober");
    for _ in 0..3 {
        assert_eq!(
            echo(&ping, "icmp://127.0.0.1").await,
            (Outcome::Pass, Reason::Ok, None)
        );
    }
    if v6 {
        assert_eq!(availability(true), Ok(SocketKind::Ping));
        assert_eq!(
            echo(&ping, "icmp://[::1]").await,
            (Outcome::Pass, Reason::Ok, None)
        );
    }

    // No route at all in an isolated namespace: unreachable, at once.
    let (outcome, reason, detail) = echo(&ping, "icmp://198.18.9.9").await;
    assert_eq!(
        (outcome, reason),
        (Outcome::Fail, Reason::Unreachable),
        "{detail:?}"
    );
    assert_eq!(
        detail.as_deref(),
        Some("network unreachable (echo to 198.18.9.9)")
    );

    // A monitor of an address that is routed but does not answer, then does.
    ip(&format!("route add {SILENT}/32 dev lo"));
    let (outcome, reason, detail) = echo(&ping, &format!("icmp://{SILENT}")).await;
    assert_eq!(
        (outcome, reason),
        (Outcome::Fail, Reason::NoReply),
        "{detail:?}"
    );
    assert_eq!(
        detail.as_deref(),
        Some(format!("no echo reply from {SILENT} within 300 ms").as_str())
    );
    silent_then_answering(ping).await;
}

/// The monitor of [`SILENT`] through the monitors, the store and mail: UNHEALTHY (`no_reply`)
/// while it is silent, HEALTHY again once it answers.
async fn silent_then_answering(prober: Prober) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut smtp = Smtp::start();
    let config = config(dir.path(), smtp.port);
    let store = Store::open(&config.data_dir, StoreOptions::default()).expect("store");
    let (checks, delivery) = (
        (CancellationToken::new(), TaskTracker::new()),
        (CancellationToken::new(), TaskTracker::new()),
    );
    let mut options = NotifyOptions::new("http://127.0.0.1:8080");
    options.coalesce_window = Duration::ZERO;
    let _notifier = Notifier::spawn_with(
        &config,
        options,
        store.clone(),
        delivery.0.clone(),
        &delivery.1,
    )
    .expect("notifier");
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
    let name = AppName::parse("router").expect("name");
    let url = format!("icmp://{SILENT}");
    let spec = spec(&url);
    monitors.admit(&spec).expect("ICMP sockets here");
    monitors
        .upsert(name.clone(), spec)
        .await
        .expect("registered");

    let mail = smtp.next(Duration::from_secs(15)).await;
    assert_eq!(mail.subject(), "[healthchecker] router is UNHEALTHY");
    let body = mail.body();
    assert!(body.contains(&format!("Checked:   {url}")), "{body}");
    assert!(
        body.contains(&format!("Reason:    no_reply: no echo reply from {SILENT}")),
        "{body}"
    );

    ip(&format!("addr add {SILENT}/32 dev lo"));
    let mail = smtp.next(Duration::from_secs(15)).await;
    assert_eq!(mail.subject(), "[healthchecker] router is HEALTHY again");
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitors.view(&name).expect("view").state != State::Healthy {
        assert!(Instant::now() < deadline, "not HEALTHY");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (stop, tasks) in [&checks, &delivery] {
        stop.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(15), tasks.wait())
            .await
            .expect("stops");
    }
    store.close().await.expect("closes");
}

fn config(dir: &Path, smtp_port: u16) -> Config {
    let file = dir.join("config");
    std::fs::write(&file, "").expect("config file");
    Config::load(&ServeArgs {
        config: Some(file),
        data_dir: Some(dir.join("data")),
        smtp_url: Some(format!("smtp://127.0.0.1:{smtp_port}")),
        mail_from: Some("hc@test.example".into()),
        ..ServeArgs::default()
    })
    .expect("valid config")
}

/// Without ping sockets (a fresh namespace allows none) and without CAP_NET_RAW (dropped by
/// setpriv), the real binary refuses to start with a declared `icmp://` monitor, saying why and
/// what to change, instead of running a monitor that always fails.
#[test]
fn without_icmp_sockets_a_declared_icmp_monitor_stops_the_start() {
    if !network_isolated("icmp refusal") {
        return;
    }
    let dir = common::temp_dir();
    let file = dir.path().join("config");
    std::fs::write(
        &file,
        "[[monitor]]\nname = \"router\"\nurl = \"icmp://127.0.0.1\"\n",
    )
    .expect("config");
    let mut command = Command::new("unshare");
    command
        .args([
            "-n",
            "--",
            "setpriv",
            "--inh-caps=-net_raw",
            "--bounding-set=-net_raw",
        ])
        .arg(common::BINARY)
        .arg("--config")
        .arg(&file)
        .args(common::local_args(dir.path()))
        .current_dir(dir.path())
        .env_remove("RUST_LOG");
    let (status, stderr) = common::run_to_end(command);
    if stderr.contains("unshare failed") || stderr.contains("setpriv: ") {
        eprintln!("icmp refusal: skipped: cannot drop CAP_NET_RAW here: {stderr}");
        return;
    }
    assert!(!status.success(), "{stderr}");
    for needle in [
        "[[monitor]] router: `url` \"icmp://127.0.0.1\": icmp:// checks need an ICMP socket",
        "net.ipv4.ping_group_range is \"1 0\"",
        "no CAP_NET_RAW",
        "sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"",
        "setcap cap_net_raw+ep",
        &format!("(config file {})", file.display()),
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}
