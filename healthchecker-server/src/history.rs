//! History: what a monitor's checks add up to over time, and its incidents.
//!
//! Plain data and pure functions: the store keeps the buckets ([`Bucket`], hourly and daily) and
//! the transitions; this module says what they mean, with the time as an input.
//!
//! * **Uptime** over a window is the share of its checks that passed or warned (the app answered;
//!   a warn is up but degraded), and the mean latency is over every check of the window, failures
//!   included (a timeout counts with its full wait). Windows ([`Window`]) are whole buckets: 24 h,
//!   7 d and 30 d are the last 24, 168 and 720 hourly buckets (the current, partial one
//!   included), 365 d the last 365 daily buckets (UTC days). Hours without checks (the monitor
//!   was paused, or the server down) count for nothing either way.
//! * **Incidents** follow DESIGN.md: one opens when a monitor enters `UNHEALTHY` and closes when
//!   it is `HEALTHY` again; a half-recovery that falls back stays the same incident. It is dated
//!   from when the monitor stopped being healthy (the degrade before it, as the alert policy
//!   dates it), and its reason is that of the transition into `UNHEALTHY`. They are derived from
//!   the stored transitions ([`incidents`]), so they reach back as far as the transitions are
//!   kept (`retention`, 90 days by default), and the messages of each are counted from the
//!   outbox by the store.

use std::time::Duration;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use serde::Serialize;

use crate::health::{State, Transition};

/// One bucket of a monitor's history: what its checks were in one hour or one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// The start of the hour or day (UTC).
    pub start: DateTime<Utc>,
    /// Checks in it.
    pub checks: u64,
    /// Of which passed.
    pub passes: u64,
    /// Of which warned.
    pub warns: u64,
    /// Of which failed.
    pub fails: u64,
    /// The sum of their latencies.
    #[serde(rename = "latency_sum_ms", serialize_with = "as_ms")]
    pub latency_sum: Duration,
    /// The longest.
    #[serde(rename = "latency_max_ms", serialize_with = "as_ms")]
    pub latency_max: Duration,
}

/// A monitor's buckets: hourly ones of the last 30 days and daily ones of the last 400, oldest
/// first; buckets without checks are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Series {
    /// Hourly buckets.
    pub hourly: Vec<Bucket>,
    /// Daily buckets.
    pub daily: Vec<Bucket>,
}

/// Counts over a window, for the list of every monitor ([`Glance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    /// Checks.
    pub checks: u64,
    /// Of which passed or warned: the app answered.
    pub up: u64,
    /// The sum of their latencies.
    #[serde(rename = "latency_sum_ms", serialize_with = "as_ms")]
    pub latency_sum: Duration,
}

impl Totals {
    /// The share of checks that were up, in percent; `None` without checks.
    pub fn uptime_percent(&self) -> Option<f64> {
        percent(self.up, self.checks)
    }
}

/// One recent check, in short.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recent {
    /// When it started.
    pub time: DateTime<Utc>,
    /// 0 pass, 1 warn, 2 fail.
    pub outcome: u8,
    /// Its latency, in milliseconds.
    pub latency_ms: f64,
}

/// What the list of every monitor shows of one monitor's history.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Glance {
    /// The app.
    pub app: String,
    /// The last 24 hourly buckets (the current one included), added up.
    pub day: Totals,
    /// The last 30 daily buckets (today included), added up.
    pub month: Totals,
    /// The newest checks, newest first.
    pub recent: Vec<Recent>,
}

/// A window of uptime and latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last 24 hourly buckets.
    Day,
    /// The last 168 hourly buckets.
    Week,
    /// The last 720 hourly buckets.
    Month,
    /// The last 365 daily buckets.
    Year,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::Day, Window::Week, Window::Month, Window::Year];

    /// Its name in the API and in badges: `24h`, `7d`, `30d`, `365d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
            Window::Year => "365d",
        }
    }

    /// The window named `name` ([`Window::as_str`]).
    pub fn parse(name: &str) -> Option<Window> {
        Window::ALL
            .into_iter()
            .find(|window| window.as_str() == name)
    }

    /// The start of its oldest bucket when the time is `now`.
    fn from(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let hour = TimeDelta::hours(1);
        let day = TimeDelta::days(1);
        let floor = |step: TimeDelta| now.duration_trunc(step).unwrap_or(now);
        match self {
            Window::Day => floor(hour) - hour * 23,
            Window::Week => floor(hour) - hour * (7 * 24 - 1),
            Window::Month => floor(hour) - hour * (30 * 24 - 1),
            Window::Year => floor(day) - day * 364,
        }
    }
}

/// Uptime and latency over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// `24h`, `7d`, `30d` or `365d`.
    pub window: &'static str,
    /// Checks in it.
    pub checks: u64,
    /// Of which passed.
    pub passes: u64,
    /// Of which warned.
    pub warns: u64,
    /// Of which failed.
    pub fails: u64,
    /// Passed or warned, in percent of the checks; `null` without checks.
    pub uptime_percent: Option<f64>,
    /// The mean latency of its checks, ms; `null` without checks.
    pub latency_mean_ms: Option<f64>,
    /// The longest latency, ms; `null` without checks.
    pub latency_max_ms: Option<f64>,
}

/// Uptime and latency over each [`Window`] at `now`.
pub fn summarize(series: &Series, now: DateTime<Utc>) -> Vec<Summary> {
    Window::ALL
        .into_iter()
        .map(|window| {
            let buckets = match window {
                Window::Year => &series.daily,
                _ => &series.hourly,
            };
            let from = window.from(now);
            let mut total = Bucket {
                start: from,
                checks: 0,
                passes: 0,
                warns: 0,
                fails: 0,
                latency_sum: Duration::ZERO,
                latency_max: Duration::ZERO,
            };
            for bucket in buckets.iter().filter(|bucket| bucket.start >= from) {
                total.checks += bucket.checks;
                total.passes += bucket.passes;
                total.warns += bucket.warns;
                total.fails += bucket.fails;
                total.latency_sum += bucket.latency_sum;
                total.latency_max = total.latency_max.max(bucket.latency_max);
            }
            let any = total.checks > 0;
            Summary {
                window: window.as_str(),
                checks: total.checks,
                passes: total.passes,
                warns: total.warns,
                fails: total.fails,
                uptime_percent: percent(total.passes + total.warns, total.checks),
                latency_mean_ms: any
                    .then(|| round_ms(total.latency_sum.as_secs_f64() * 1e3 / total.checks as f64)),
                latency_max_ms: any.then(|| round_ms(total.latency_max.as_secs_f64() * 1e3)),
            }
        })
        .collect()
}

/// `part` of `whole` in percent, to three decimals; `None` when `whole` is 0.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 100_000.0 / whole as f64).round() / 1000.0)
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// How the messages of an incident went, from the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MessageCounts {
    /// Delivered to their channel.
    pub sent: u64,
    /// Written to the server's log instead (test mode, or no SMTP relay).
    pub logged: u64,
    /// Still waiting (held, or being retried).
    pub pending: u64,
    /// Given up.
    pub failed: u64,
    /// Withdrawn before they went (a degrade that was a blip, a pause).
    pub withdrawn: u64,
}

/// One incident of a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// When the monitor stopped being healthy.
    pub opened_at: DateTime<Utc>,
    /// When it was healthy again; `null` while the incident is open.
    pub closed_at: Option<DateTime<Utc>>,
    /// Seconds from `opened_at` to `closed_at`, or to now while open.
    pub downtime_s: u64,
    /// Why it went unhealthy: the reason of the transition into `UNHEALTHY`.
    pub reason: String,
    /// The messages about it (written from `opened_at` to `closed_at`).
    pub messages: MessageCounts,
}

/// The incidents told by `transitions` (oldest first), newest first, as of `now`. Their
/// `messages` are left at zero for the store to count.
pub fn incidents(transitions: &[Transition], now: DateTime<Utc>) -> Vec<Incident> {
    let mut found: Vec<Incident> = Vec::new();
    let mut open = false;
    // When the monitor last left HEALTHY (or started out not healthy).
    let mut left_healthy: Option<DateTime<Utc>> = None;
    for transition in transitions {
        // Reset on entering HEALTHY: any later transition leaves it.
        left_healthy.get_or_insert(transition.time);
        match transition.to {
            State::Unhealthy if !open => {
                open = true;
                found.push(Incident {
                    opened_at: left_healthy.unwrap_or(transition.time),
                    closed_at: None,
                    downtime_s: 0,
                    reason: transition.reason.clone(),
                    messages: MessageCounts::default(),
                });
            }
            State::Healthy => {
                if open && let Some(incident) = found.last_mut() {
                    incident.closed_at = Some(transition.time);
                }
                open = false;
                left_healthy = None;
            }
            _ => {}
        }
    }
    for incident in &mut found {
        let end = incident.closed_at.unwrap_or(now);
        incident.downtime_s = u64::try_from((end - incident.opened_at).num_seconds()).unwrap_or(0);
    }
    found.reverse();
    found
}

fn as_ms<S: serde::Serializer>(latency: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((latency.as_secs_f64() * 1e6).round() / 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + seconds, 0).expect("valid") // 2026-01-01
    }

    fn bucket(start: DateTime<Utc>, passes: u64, warns: u64, fails: u64, ms: u64) -> Bucket {
        let checks = passes + warns + fails;
        Bucket {
            start,
            checks,
            passes,
            warns,
            fails,
            latency_sum: Duration::from_millis(ms * checks),
            latency_max: Duration::from_millis(ms * 2),
        }
    }

    #[test]
    fn windows_add_up_whole_buckets() {
        let now = at(30 * 86_400 + 1800); // half past midnight, day 30
        let hour = 3600;
        let series = Series {
            hourly: vec![
                bucket(at(30 * 86_400 - 40 * 86_400), 100, 0, 0, 1), // too old for any
                bucket(at(30 * 86_400 - 10 * 86_400), 10, 0, 10, 4), // 30 d only
                bucket(at(30 * 86_400 - 3 * 86_400), 0, 0, 5, 10),   // 7 d and 30 d
                bucket(at(30 * 86_400 - 23 * hour), 3, 1, 0, 2),     // the oldest of 24 h
                bucket(at(30 * 86_400), 4, 0, 0, 2),                 // the current hour
            ],
            daily: vec![
                bucket(at(-400 * 86_400), 7, 0, 0, 1), // past a year
                bucket(at(30 * 86_400 - 364 * 86_400), 1, 0, 1, 1), // the oldest of 365 d
                bucket(at(30 * 86_400), 8, 0, 0, 1),
            ],
        };
        let summaries = summarize(&series, now);
        let by = |name: &str| {
            *summaries
                .iter()
                .find(|summary| summary.window == name)
                .expect("window")
        };
        let day = by("24h");
        assert_eq!((day.checks, day.passes, day.warns, day.fails), (8, 7, 1, 0));
        assert_eq!(day.uptime_percent, Some(100.0));
        assert_eq!(day.latency_mean_ms, Some(2.0));
        assert_eq!(day.latency_max_ms, Some(4.0));
        let week = by("7d");
        assert_eq!(week.checks, 13);
        assert_eq!(week.uptime_percent, Some(61.538));
        let month = by("30d");
        assert_eq!(month.checks, 33);
        assert_eq!(month.latency_max_ms, Some(20.0));
        let year = by("365d");
        assert_eq!(year.checks, 10);
        assert_eq!(year.uptime_percent, Some(90.0));
        let empty = summarize(&Series::default(), now);
        assert!(empty.iter().all(|summary| summary.uptime_percent.is_none()
            && summary.latency_mean_ms.is_none()
            && summary.checks == 0));
    }

    #[test]
    fn window_names_round_trip() {
        for window in Window::ALL {
            assert_eq!(Window::parse(window.as_str()), Some(window));
        }
        assert_eq!(Window::parse("1y"), None);
    }

    fn t(seconds: i64, from: State, to: State, reason: &str) -> Transition {
        Transition {
            time: at(seconds),
            from,
            to,
            reason: reason.to_owned(),
        }
    }

    /// Each case: the transitions, then the incidents (opened, closed, reason), newest first.
    #[test]
    fn incidents_from_transitions() {
        use State::{Degraded, Healthy, Unhealthy, Unknown};
        type Expected = &'static [(i64, Option<i64>, &'static str)];
        let cases: &[(&[Transition], Expected)] = &[
            // Nothing bad: no incident.
            (
                &[
                    t(0, Unknown, Healthy, "ok"),
                    t(10, Healthy, Degraded, "w"),
                    t(20, Degraded, Healthy, "ok"),
                ],
                &[],
            ),
            // Degraded, then unhealthy, then healthy: dated from the degrade.
            (
                &[
                    t(0, Unknown, Healthy, "ok"),
                    t(10, Healthy, Degraded, "timeout"),
                    t(20, Degraded, Unhealthy, "timeout: 5 s"),
                    t(50, Unhealthy, Degraded, "ok"),
                    t(60, Degraded, Unhealthy, "connect"),
                    t(90, Unhealthy, Degraded, "ok"),
                    t(100, Degraded, Healthy, "ok"),
                ],
                &[(10, Some(100), "timeout: 5 s")],
            ),
            // Never healthy: from the first transition; still open.
            (
                &[t(5, Unknown, Unhealthy, "connect")],
                &[(5, None, "connect")],
            ),
            // Two incidents; the blip between them is none.
            (
                &[
                    t(0, Unknown, Healthy, "ok"),
                    t(10, Healthy, Degraded, "a"),
                    t(20, Degraded, Unhealthy, "a2"),
                    t(30, Unhealthy, Healthy, "ok"),
                    t(40, Healthy, Degraded, "b"),
                    t(45, Degraded, Healthy, "ok"),
                    t(50, Healthy, Degraded, "c"),
                    t(60, Degraded, Unhealthy, "c2"),
                ],
                &[(50, None, "c2"), (10, Some(30), "a2")],
            ),
            // The transitions kept start inside an incident.
            (
                &[
                    t(0, Degraded, Unhealthy, "x"),
                    t(10, Unhealthy, Healthy, "ok"),
                ],
                &[(0, Some(10), "x")],
            ),
        ];
        let now = at(1000);
        for (transitions, expected) in cases {
            let found = incidents(transitions, now);
            let got: Vec<(i64, Option<i64>, &str)> = found
                .iter()
                .map(|incident| {
                    (
                        (incident.opened_at - at(0)).num_seconds(),
                        incident
                            .closed_at
                            .map(|closed| (closed - at(0)).num_seconds()),
                        incident.reason.as_str(),
                    )
                })
                .collect();
            assert_eq!(&got, expected, "{transitions:?}");
            for incident in &found {
                let end = incident.closed_at.unwrap_or(now);
                assert_eq!(
                    incident.downtime_s as i64,
                    (end - incident.opened_at).num_seconds()
                );
            }
        }
    }
}
