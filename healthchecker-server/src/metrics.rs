//! `GET /metrics`: the Prometheus text format (0.0.4), rendered by `metrics-exporter-prometheus`.
//!
//! Two parts, rendered one after the other (each its own metric families):
//!
//! * the server's own counters, kept as things happen ([`crate::telemetry`]):
//!   `healthchecker_checks_total{outcome}`, `healthchecker_check_lateness_seconds` (histogram),
//!   `healthchecker_deliveries_total{channel,result}`;
//! * what is read at scrape time, into a recorder made for the scrape (so a removed monitor's
//!   series go with it): Uptime Kuma's per-monitor series, so existing Grafana dashboards work
//!   (`monitor_status`, `monitor_response_time`, `monitor_cert_days_remaining`,
//!   `monitor_cert_is_valid`, labels `monitor_name`, `monitor_type`, `monitor_url`,
//!   `monitor_hostname`, `monitor_port`), and `healthchecker_outbox_pending{channel}`,
//!   `healthchecker_monitors{state}`, `healthchecker_monitor_state{monitor_name,state}`.
//!
//! `monitor_status` is 0 down (`UNHEALTHY`), 1 up (`HEALTHY`), 2 pending (`DEGRADED`, `UNKNOWN`),
//! 3 in maintenance, as Uptime Kuma counts. `monitor_response_time` is the last check's latency in
//! milliseconds (absent before the first check). The certificate series are there for monitors
//! whose last check saw a certificate (https, tls).

use chrono::Utc;
use metrics::{Key, KeyName, Label, Metadata, Recorder as _, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::config::channel::EMAIL;
use crate::health::State;
use crate::monitors::{MonitorView, Monitors};
use crate::registry::Kind;
use crate::store::{Store, StoreError};

/// Media type of the answer: the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The per-monitor and per-state series, with their help texts.
const GAUGES: &[(&str, &str)] = &[
    (
        "monitor_status",
        "Monitor status: 0 down (UNHEALTHY), 1 up (HEALTHY), 2 pending (DEGRADED or UNKNOWN), 3 in maintenance.",
    ),
    (
        "monitor_response_time",
        "Latency of the monitor's last check, in milliseconds.",
    ),
    (
        "monitor_cert_days_remaining",
        "Days until the certificate seen by the monitor's last check expires.",
    ),
    (
        "monitor_cert_is_valid",
        "Whether the certificate seen by the monitor's last check is still valid (1) or not (0).",
    ),
    (
        "healthchecker_outbox_pending",
        "Messages waiting in the outbox, by channel.",
    ),
    ("healthchecker_monitors", "Monitors, by state."),
    (
        "healthchecker_monitor_state",
        "1 for the state each monitor is in, 0 for the others.",
    ),
];

/// Renders every series: the store's counters, then what the live set and the outbox hold now.
/// `channels` are the configured channels (each gets an outbox series, 0 when empty).
///
/// # Errors
///
/// [`StoreError`] when the outbox cannot be read.
pub async fn render(
    monitors: &Monitors,
    store: &Store,
    channels: &[String],
) -> Result<String, StoreError> {
    let pending = store.pending_by_channel().await?;
    let views = monitors.list();
    let now = Utc::now();
    let recorder = PrometheusBuilder::new().build_recorder();
    for (name, help) in GAUGES {
        let unit = (*name == "monitor_response_time").then_some(Unit::Milliseconds);
        recorder.describe_gauge(KeyName::from(*name), unit, SharedString::const_str(help));
    }
    let gauge = |name: &'static str, labels: Vec<Label>, value: f64| {
        recorder
            .register_gauge(&Key::from_parts(name, labels), &metadata())
            .set(value);
    };
    for view in &views {
        let labels = kuma_labels(view);
        let status = if in_maintenance(view, now) {
            3.0
        } else {
            match view.state {
                State::Unhealthy => 0.0,
                State::Healthy => 1.0,
                State::Degraded | State::Unknown => 2.0,
            }
        };
        gauge("monitor_status", labels.clone(), status);
        if let Some(check) = &view.last_check {
            gauge(
                "monitor_response_time",
                labels.clone(),
                (check.record.latency.as_secs_f64() * 1e6).round() / 1e3,
            );
            if let Some((days, valid)) = certificate(view, now) {
                gauge("monitor_cert_days_remaining", labels.clone(), days);
                gauge(
                    "monitor_cert_is_valid",
                    labels,
                    if valid { 1.0 } else { 0.0 },
                );
            }
        }
        for state in State::ALL {
            gauge(
                "healthchecker_monitor_state",
                vec![
                    Label::new("monitor_name", view.app.to_string()),
                    Label::new("state", state.as_str()),
                ],
                if view.state == state { 1.0 } else { 0.0 },
            );
        }
    }
    for state in State::ALL {
        let count = views.iter().filter(|view| view.state == state).count();
        gauge(
            "healthchecker_monitors",
            vec![Label::new("state", state.as_str())],
            count as f64,
        );
    }
    let mut names: Vec<&str> = std::iter::once(EMAIL)
        .chain(channels.iter().map(String::as_str))
        .collect();
    for (channel, _) in &pending {
        if !names.contains(&channel.as_str()) {
            names.push(channel);
        }
    }
    for channel in names {
        let count = pending
            .iter()
            .find(|(name, _)| name == channel)
            .map_or(0, |(_, count)| *count);
        gauge(
            "healthchecker_outbox_pending",
            vec![Label::new("channel", channel.to_owned())],
            count as f64,
        );
    }
    let mut text = store.telemetry().render();
    text.push_str(&finish(&recorder));
    Ok(text)
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn finish(recorder: &PrometheusRecorder) -> String {
    let handle = recorder.handle();
    handle.run_upkeep();
    handle.render()
}

/// Uptime Kuma's labels of a monitor: its `monitor_type` is Kuma's word for the same check
/// (`http`, `port` for a TCP connection, `ping`, `push`), `tls` for a TLS handshake (Kuma has none).
fn kuma_labels(view: &MonitorView) -> Vec<Label> {
    let url = url::Url::parse(&view.url).ok();
    let kind = match view.kind {
        Kind::Http | Kind::Https => "http",
        Kind::Tcp => "port",
        Kind::Tls => "tls",
        Kind::Icmp => "ping",
        Kind::Push => "push",
    };
    let host = url
        .as_ref()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    let port = url
        .as_ref()
        .and_then(url::Url::port_or_known_default)
        .map(|port| port.to_string())
        .unwrap_or_default();
    let checked = if matches!(view.kind, Kind::Http | Kind::Https) {
        format!("{}{}", view.url.trim_end_matches('/'), view.path)
    } else {
        view.url.clone()
    };
    vec![
        Label::new("monitor_name", view.app.to_string()),
        Label::new("monitor_type", kind.to_owned()),
        Label::new("monitor_url", checked),
        Label::new("monitor_hostname", host),
        Label::new("monitor_port", port),
    ]
}

/// Whether the monitor is in maintenance at `now` (set through the API, or a scheduled window).
fn in_maintenance(view: &MonitorView, now: chrono::DateTime<Utc>) -> bool {
    view.maintenance_until.is_some_and(|until| until > now)
}

/// Days left and validity of the certificate the last check saw, if it saw one.
// MERGE: certificates come with the `kinds` branch (`CheckRecord::cert_not_after`).
fn certificate(_view: &MonitorView, _now: chrono::DateTime<Utc>) -> Option<(f64, bool)> {
    None
}
