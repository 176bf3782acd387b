//! The server's own counters for `GET /metrics`: checks done by outcome, how late checks start,
//! and what became of each message, kept in a Prometheus recorder (`metrics-exporter-prometheus`).
//!
//! Counting is on the check path, so it is a few atomic additions: the counters of the three
//! outcomes and the lateness histogram are registered once, and a check only adds to their
//! handles. The histogram's samples wait in a lock-free bucket until [`Telemetry::upkeep`] folds
//! them in (the server runs it every [`UPKEEP_EVERY`], and every render does), so memory stays
//! bounded whether anyone scrapes or not. A delivery result registers its `{channel, result}`
//! series on first use (deliveries are rare).
//!
//! What is read at scrape time from the live set and the store (each monitor's state, the outbox)
//! is rendered by `metrics`, not kept here.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram, Key, KeyName, Label, Metadata, Recorder as _, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::health::Outcome;

/// Checks done, by `outcome` (`pass`, `warn`, `fail`).
pub const CHECKS_TOTAL: &str = "healthchecker_checks_total";

/// How late checks start after their due time, in seconds.
pub const LATENESS: &str = "healthchecker_check_lateness_seconds";

/// Messages whose attempt ended, by `channel` and `result` (`delivered`, `logged`, `retry`,
/// `failed`).
pub const DELIVERIES_TOTAL: &str = "healthchecker_deliveries_total";

/// The lateness histogram's buckets, in seconds: the target is 50 ms at p99.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the server folds the histogram's samples in.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// How one message's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Accepted by its channel.
    Delivered,
    /// Written to the server's log instead of sent.
    Logged,
    /// Failed; it is tried again later.
    Retry,
    /// Given up.
    Failed,
}

impl DeliveryResult {
    /// Its `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Delivered => "delivered",
            DeliveryResult::Logged => "logged",
            DeliveryResult::Retry => "retry",
            DeliveryResult::Failed => "failed",
        }
    }
}

/// The server's own counters; cheap to clone (every clone counts into the same ones).
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    /// By outcome: pass, warn, fail.
    checks: [Counter; 3],
    lateness: Histogram,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

impl Telemetry {
    /// Counters at zero.
    pub fn new() -> Telemetry {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENESS.to_owned()), LATENESS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new()) // only fails for an empty list
            .build_recorder();
        recorder.describe_counter(
            KeyName::from(CHECKS_TOTAL),
            None,
            SharedString::const_str("Checks done, by outcome."),
        );
        recorder.describe_histogram(
            KeyName::from(LATENESS),
            None,
            SharedString::const_str("How late checks started after their due time, in seconds."),
        );
        recorder.describe_counter(
            KeyName::from(DELIVERIES_TOTAL),
            None,
            SharedString::const_str(
                "Message attempts that ended, by channel and result (delivered, logged, retry, failed).",
            ),
        );
        let checks = Outcome::ALL.map(|outcome| {
            recorder.register_counter(
                &Key::from_parts(CHECKS_TOTAL, vec![Label::new("outcome", outcome.as_str())]),
                &metadata(),
            )
        });
        let lateness = recorder.register_histogram(&Key::from_name(LATENESS), &metadata());
        Telemetry {
            inner: Arc::new(Inner {
                recorder,
                checks,
                lateness,
            }),
        }
    }

    /// One check done with `outcome`.
    pub fn check_done(&self, outcome: Outcome) {
        let index = match outcome {
            Outcome::Pass => 0,
            Outcome::Warn => 1,
            Outcome::Fail => 2,
        };
        self.inner.checks[index].increment(1);
    }

    /// A check started `late` after it was due.
    pub fn check_started(&self, late: Duration) {
        self.inner.lateness.record(late.as_secs_f64());
    }

    /// One attempt of a message on `channel` ended with `result`.
    pub fn delivery(&self, channel: &str, result: DeliveryResult) {
        self.inner
            .recorder
            .register_counter(
                &Key::from_parts(
                    DELIVERIES_TOTAL,
                    vec![
                        Label::new("channel", channel.to_owned()),
                        Label::new("result", result.as_str()),
                    ],
                ),
                &metadata(),
            )
            .increment(1);
    }

    /// Folds the histogram's waiting samples in.
    pub fn upkeep(&self) {
        self.inner.recorder.handle().run_upkeep();
    }

    /// The counters in the Prometheus text format (0.0.4).
    pub fn render(&self) -> String {
        let handle = self.inner.recorder.handle();
        handle.run_upkeep();
        handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let telemetry = Telemetry::new();
        telemetry.check_done(Outcome::Pass);
        telemetry.check_done(Outcome::Pass);
        telemetry.check_done(Outcome::Fail);
        telemetry.check_started(Duration::from_millis(3));
        telemetry.check_started(Duration::from_millis(300));
        telemetry.delivery("email", DeliveryResult::Delivered);
        let text = telemetry.render();
        assert!(
            text.contains("# TYPE healthchecker_checks_total counter"),
            "{text}"
        );
        assert!(
            text.contains("healthchecker_checks_total{outcome=\"pass\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("healthchecker_checks_total{outcome=\"warn\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE healthchecker_check_lateness_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("healthchecker_check_lateness_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("healthchecker_check_lateness_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "healthchecker_deliveries_total{channel=\"email\",result=\"delivered\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("# HELP healthchecker_checks_total Checks done"),
            "{text}"
        );
    }
}
