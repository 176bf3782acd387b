//! Push monitors: jobs that report in (cron jobs, backups, agents), where silence is the alert.
//!
//! The pure core, after healthchecks.io's model: a monitor's [`PushSpec`] (its [`PingKey`], a
//! [`Schedule`] of a period or a cron expression in a time zone, and a grace time), what a ping
//! does to a monitor's [`PushState`] ([`PushState::on_ping`]), and when the next deadline falls
//! ([`next_deadline`]). No clock and no I/O: times come in as values. The live set
//! ([`crate::monitors`]) feeds pings and passed deadlines through the same state machine, alert
//! policy and store write as a polled check, and arms the deadlines on the scheduler's timer wheel.
//!
//! | event | outcome | reason | state after |
//! |---|---|---|---|
//! | success ping (`/ping/<key>`, exit status 0) | pass | `ok` | `HEALTHY` (a recovery when it was `UNHEALTHY`) |
//! | `/start` | none (logged) | `started` | unchanged |
//! | `/log` | none (logged) | `logged` | unchanged |
//! | `/fail`, non-zero exit status | fail | `job_failed` | `UNHEALTHY` at once (mailed) |
//! | the deadline passes | warn | `late` | `DEGRADED` (not mailed) |
//! | the deadline + grace passes | fail | `missed` | `UNHEALTHY` (mailed) |
//! | grace after a `start` without its result | fail | `run_too_long` | `UNHEALTHY` (mailed) |
//!
//! The deadline is the last success + `period`, or the first cron time after the last success.
//! Pings sent while the server was down are lost, so after a server start a monitor gets at least
//! `grace` before it can be declared `missed` or `run_too_long`. A monitor that never pinged is
//! `UNKNOWN` and has no deadline (healthchecks' "new").

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::health::{Outcome, State};

/// Ranges and defaults of a push monitor's fields (DESIGN.md).
pub mod limits {
    use std::ops::RangeInclusive;

    /// Seconds of `period` and `grace`: one minute to 365 days.
    pub const PERIOD: RangeInclusive<u64> = 60..=365 * 24 * 3600;
    /// Seconds of `grace`: one minute to 365 days.
    pub const GRACE: RangeInclusive<u64> = 60..=365 * 24 * 3600;
    /// Default `grace`, seconds: one hour (healthchecks' default).
    pub const GRACE_DEFAULT: u64 = 3600;
    /// Bytes of a ping's body kept in the log; the rest is cut and marked.
    pub const BODY_MAX: usize = 10_000;
    /// Bytes of a ping's body read at all; a longer body is refused (413).
    pub const BODY_READ_MAX: usize = 1024 * 1024;
}

/// A monitor's ping key: 128 random bits from the operating system, written as 32 hex digits.
/// It is the credential of the ping routes, so it is compared in constant time and never
/// logged in full ([`PingKey::redacted`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PingKey([u8; 16]);

impl fmt::Debug for PingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PingKey({})", self.redacted())
    }
}

/// The operating system had no random bytes to give.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

impl PingKey {
    /// A new key from the operating system's random number generator.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when the operating system cannot give random bytes.
    pub fn generate() -> Result<PingKey, RandomError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|error| RandomError(error.to_string()))?;
        Ok(PingKey(bytes))
    }

    /// A key as written in a ping URL (32 hex digits, either case); `None` for anything else.
    pub fn parse(text: &str) -> Option<PingKey> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(PingKey(bytes))
    }

    /// The 32 hex digits, for the ping URL.
    pub fn expose(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 4 hex digits and an ellipsis: enough to tell keys apart in a log, not enough
    /// to ping.
    pub fn redacted(&self) -> String {
        format!("{}…", &hex::encode(self.0)[..4])
    }

    /// Whether `other` is this key, compared in constant time.
    pub fn matches(&self, other: &PingKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Serialize for PingKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> Deserialize<'de> for PingKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PingKey::parse(&text).ok_or_else(|| serde::de::Error::custom("a ping key: 32 hex digits"))
    }
}

/// When a push monitor expects its next success.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every `period` after the last success.
    Period(Duration),
    /// At the times of a five-field cron expression in a time zone.
    Cron {
        /// The expression, parsed.
        cron: Box<Cron>,
        /// The expression as written.
        text: String,
        /// Its time zone (IANA).
        tz: Tz,
    },
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Period(a), Schedule::Period(b)) => a == b,
            (Schedule::Cron { text: a, tz: x, .. }, Schedule::Cron { text: b, tz: y, .. }) => {
                a == b && x == y
            }
            _ => false,
        }
    }
}

impl Eq for Schedule {}

impl Schedule {
    /// The first time after `time` a success is expected: `time + period`, or the next cron
    /// time after `time` in the schedule's zone (across daylight saving changes as the zone's
    /// clocks go). `None` when a cron expression has no later time.
    pub fn next_after(&self, time: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Period(period) => Some(time + chrono::Duration::from_std(*period).ok()?),
            Schedule::Cron { cron, tz, .. } => cron
                .find_next_occurrence(&time.with_timezone(tz), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
        }
    }

    /// In words: `every 3600 s`, `0 3 * * * (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Period(period) => format!("every {} s", period.as_secs()),
            Schedule::Cron { text, tz, .. } => format!("{text} ({tz})"),
        }
    }
}

/// A push monitor's definition, part of its [`crate::registry::MonitorSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSpec {
    /// The credential of its ping URL; kept across re-registrations.
    pub key: PingKey,
    /// When a success is expected.
    pub schedule: Schedule,
    /// How long after the deadline it is `missed`, and how long a started run may take.
    pub grace: Duration,
    /// Asked for by the registration (`"rotate_key": true`): replace the key of an existing
    /// monitor instead of keeping it. Never stored.
    pub rotate_key: bool,
}

/// How a [`PushSpec`] is stored (inside the spec's JSON) and read back.
#[derive(Serialize, Deserialize)]
struct StoredPush {
    key: PingKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tz: Option<String>,
    grace: u64,
}

impl Serialize for PushSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (period, schedule, tz) = match &self.schedule {
            Schedule::Period(period) => (Some(period.as_secs()), None, None),
            Schedule::Cron { text, tz, .. } => (None, Some(text.clone()), Some(tz.to_string())),
        };
        StoredPush {
            key: self.key.clone(),
            period,
            schedule,
            tz,
            grace: self.grace.as_secs(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PushSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let stored = StoredPush::deserialize(deserializer)?;
        let schedule = match (stored.period, stored.schedule) {
            (Some(period), None) => Schedule::Period(Duration::from_secs(period)),
            (None, Some(text)) => {
                let tz =
                    crate::config::maintenance::parse_tz(stored.tz.as_deref().unwrap_or("UTC"))
                        .map_err(D::Error::custom)?;
                let cron =
                    crate::config::maintenance::parse_cron(&text).map_err(D::Error::custom)?;
                Schedule::Cron {
                    cron: Box::new(cron),
                    text,
                    tz,
                }
            }
            _ => return Err(D::Error::custom("a push spec has a period or a schedule")),
        };
        Ok(PushSpec {
            key: stored.key,
            schedule,
            grace: Duration::from_secs(stored.grace),
            rotate_key: false,
        })
    }
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PingKind {
    /// `/ping/<key>`: the job succeeded.
    Success,
    /// `/ping/<key>/start`: the job started.
    Start,
    /// `/ping/<key>/fail`: the job failed.
    Fail,
    /// `/ping/<key>/<0-255>`: the job ended with this exit status (0 is a success).
    Exit(u8),
    /// `/ping/<key>/log`: a message; the state does not change.
    Log,
}

impl PingKind {
    /// What follows the key in a ping URL: empty, `start`, `fail`, `log`, or an exit status
    /// from 0 to 255. `None` for anything else.
    pub fn from_path(rest: &str) -> Option<PingKind> {
        match rest {
            "" => Some(PingKind::Success),
            "start" => Some(PingKind::Start),
            "fail" => Some(PingKind::Fail),
            "log" => Some(PingKind::Log),
            digits
                if !digits.is_empty()
                    && digits.len() <= 3
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                digits.parse::<u8>().ok().map(PingKind::Exit)
            }
            _ => None,
        }
    }

    /// `success`, `start`, `fail`, `exit` or `log`: the `kind` of a log entry.
    pub fn as_str(self) -> &'static str {
        match self {
            PingKind::Success => "success",
            PingKind::Start => "start",
            PingKind::Fail => "fail",
            PingKind::Exit(_) => "exit",
            PingKind::Log => "log",
        }
    }

    /// The exit status it carries, if any.
    pub fn exit_status(self) -> Option<u8> {
        match self {
            PingKind::Exit(status) => Some(status),
            _ => None,
        }
    }

    /// Whether it reports the job's result (a success or a failure), not a start or a message.
    pub fn is_result(self) -> bool {
        !matches!(self, PingKind::Start | PingKind::Log)
    }

    /// Whether it reports a failure: `/fail`, or a non-zero exit status.
    pub fn is_failure(self) -> bool {
        matches!(self, PingKind::Fail) || matches!(self, PingKind::Exit(status) if status != 0)
    }
}

/// What a log entry of a push monitor adds to a check record: the ping, its exit status, and
/// the run time when a start preceded it. Deadlines passing have none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingEntry {
    /// `success`, `start`, `fail`, `exit` or `log`.
    pub kind: String,
    /// The exit status, for `exit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u8>,
    /// Seconds since the `start` that preceded this result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_s: Option<f64>,
}

/// Where a push monitor stands besides its health: kept with the monitor in the store, written
/// in the transaction of each ping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushState {
    /// The last ping of any kind.
    pub last_ping: Option<DateTime<Utc>>,
    /// The last success: the deadline counts from it.
    pub last_success: Option<DateTime<Utc>>,
    /// A `start` not yet followed by a result.
    pub started: Option<DateTime<Utc>>,
}

/// What one ping does, as [`PushState::on_ping`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingEffect {
    /// The outcome for the state machine; `None`: logged only (a start or a message).
    pub outcome: Option<Outcome>,
    /// The reason of its log entry.
    pub reason: PushReason,
    /// Time since the `start` that preceded a result.
    pub run: Option<Duration>,
}

/// The reasons of a push monitor's log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushReason {
    /// A success.
    Ok,
    /// A `start`.
    Started,
    /// A `log` message.
    Logged,
    /// A failure or a non-zero exit status.
    JobFailed,
    /// The deadline passed without a success.
    Late,
    /// The deadline and the grace passed without a success.
    Missed,
    /// The grace passed after a `start` without its result.
    RunTooLong,
}

impl PushState {
    /// Applies a ping of `kind` received at `now`.
    pub fn on_ping(&mut self, kind: PingKind, now: DateTime<Utc>) -> PingEffect {
        self.last_ping = Some(now);
        let run = if kind.is_result() {
            self.started
                .take()
                .and_then(|started| (now - started).to_std().ok())
        } else {
            None
        };
        let (outcome, reason) = match kind {
            PingKind::Start => {
                self.started = Some(now);
                (None, PushReason::Started)
            }
            PingKind::Log => (None, PushReason::Logged),
            kind if kind.is_failure() => (Some(Outcome::Fail), PushReason::JobFailed),
            _ => {
                self.last_success = Some(now);
                (Some(Outcome::Pass), PushReason::Ok)
            }
        };
        PingEffect {
            outcome,
            reason,
            run,
        }
    }

    /// When the next success is expected: after the last success, by `spec`'s schedule.
    pub fn expected_by(&self, spec: &PushSpec) -> Option<DateTime<Utc>> {
        spec.schedule.next_after(self.last_success?)
    }
}

/// A deadline of a push monitor, and what its passing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// The expected success did not come: `DEGRADED`, `late`.
    Late,
    /// Nor within the grace: `UNHEALTHY`, `missed`.
    Missed,
    /// A started run did not end within the grace: `UNHEALTHY`, `run_too_long`.
    RunTooLong,
}

impl Deadline {
    /// The outcome it feeds the state machine.
    pub fn outcome(self) -> Outcome {
        match self {
            Deadline::Late => Outcome::Warn,
            Deadline::Missed | Deadline::RunTooLong => Outcome::Fail,
        }
    }

    /// The reason of its log entry.
    pub fn reason(self) -> PushReason {
        match self {
            Deadline::Late => PushReason::Late,
            Deadline::Missed => PushReason::Missed,
            Deadline::RunTooLong => PushReason::RunTooLong,
        }
    }
}

/// The next deadline of a monitor in `health` with `state`, for a server that started at `boot`:
/// the earliest of a run taking too long (start + grace) and the expected success being late
/// (`HEALTHY`: at the deadline) or missed (`DEGRADED`: deadline + grace). A monitor that is
/// `UNHEALTHY` (told already) or never had a success (`UNKNOWN`) waits for a ping; after `boot`
/// nothing is missed before `boot + grace`.
pub fn next_deadline(
    spec: &PushSpec,
    state: &PushState,
    health: State,
    boot: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Deadline)> {
    if health == State::Unhealthy {
        return None;
    }
    let grace = chrono::Duration::from_std(spec.grace).ok()?;
    let settled = boot + grace;
    let run = state
        .started
        .map(|started| ((started + grace).max(settled), Deadline::RunTooLong));
    let expected = state.expected_by(spec).and_then(|expected| match health {
        State::Healthy => Some((expected.max(boot), Deadline::Late)),
        State::Degraded => Some(((expected + grace).max(settled), Deadline::Missed)),
        State::Unknown | State::Unhealthy => None,
    });
    match (run, expected) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// A ping's body as the log keeps it: at most [`limits::BODY_MAX`] bytes of text (invalid UTF-8
/// replaced), cut on a character boundary and marked when longer; `None` when empty.
pub fn kept_body(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    if text.len() <= limits::BODY_MAX {
        return Some(text.into_owned());
    }
    let mut end = limits::BODY_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!(
        "{}\n[cut: {} bytes in all, the first {end} kept]",
        &text[..end],
        body.len()
    ))
}

/// A short line about a result for a transition's reason (the whole output stays in the log
/// entry's detail): `exit status 3`, and the last non-empty line of the output.
pub fn summary(kind: PingKind, body: Option<&str>) -> Option<String> {
    let last = body
        .and_then(|body| {
            body.lines()
                .rev()
                .find(|line| !line.trim().is_empty() && !line.starts_with("[cut: "))
        })
        .map(|line| {
            let line: String = line
                .chars()
                .map(|c| if crate::text::is_unsafe(c) { ' ' } else { c })
                .take(160)
                .collect();
            line.trim().to_owned()
        });
    let status = kind
        .exit_status()
        .map(|status| format!("exit status {status}"));
    match (status, last) {
        (Some(status), Some(last)) => Some(format!("{status}: {last}")),
        (status, last) => status.or(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn period(secs: u64, grace: u64) -> PushSpec {
        PushSpec {
            key: PingKey::generate().expect("random"),
            schedule: Schedule::Period(Duration::from_secs(secs)),
            grace: Duration::from_secs(grace),
            rotate_key: false,
        }
    }

    fn cron(text: &str, tz: &str, grace: u64) -> PushSpec {
        PushSpec {
            key: PingKey::generate().expect("random"),
            schedule: Schedule::Cron {
                cron: Box::new(crate::config::maintenance::parse_cron(text).expect("cron")),
                text: text.to_owned(),
                tz: crate::config::maintenance::parse_tz(tz).expect("tz"),
            },
            grace: Duration::from_secs(grace),
            rotate_key: false,
        }
    }

    #[test]
    fn keys_are_random_hex_compared_whole_and_shown_redacted() {
        let a = PingKey::generate().expect("random");
        let b = PingKey::generate().expect("random");
        assert_ne!(a, b);
        let text = a.expose();
        assert_eq!(text.len(), 32);
        let parsed = PingKey::parse(&text.to_uppercase()).expect("either case");
        assert!(a.matches(&parsed));
        assert!(!a.matches(&b));
        assert!(PingKey::parse(&text[..31]).is_none());
        assert!(PingKey::parse(&format!("{}g", &text[..31])).is_none());
        assert_eq!(a.redacted().chars().count(), 5);
        assert!(!format!("{a:?}").contains(&text));
        let json = serde_json::to_string(&a).expect("json");
        assert_eq!(serde_json::from_str::<PingKey>(&json).expect("back"), a);
    }

    #[test]
    fn ping_paths() {
        assert_eq!(PingKind::from_path(""), Some(PingKind::Success));
        assert_eq!(PingKind::from_path("start"), Some(PingKind::Start));
        assert_eq!(PingKind::from_path("fail"), Some(PingKind::Fail));
        assert_eq!(PingKind::from_path("log"), Some(PingKind::Log));
        assert_eq!(PingKind::from_path("0"), Some(PingKind::Exit(0)));
        assert_eq!(PingKind::from_path("255"), Some(PingKind::Exit(255)));
        for bad in ["256", "-1", "1000", "stop", "0x1", "+1"] {
            assert_eq!(PingKind::from_path(bad), None, "{bad}");
        }
        assert!(!PingKind::Exit(0).is_failure());
        assert!(PingKind::Exit(2).is_failure() && PingKind::Fail.is_failure());
    }

    #[test]
    fn pings_change_the_push_state() {
        let mut state = PushState::default();
        let start = state.on_ping(PingKind::Start, at("2026-03-01T03:00:00Z"));
        assert_eq!((start.outcome, start.reason), (None, PushReason::Started));
        let ok = state.on_ping(PingKind::Exit(0), at("2026-03-01T03:02:30Z"));
        assert_eq!(ok.outcome, Some(Outcome::Pass));
        assert_eq!(ok.run, Some(Duration::from_secs(150)));
        assert_eq!(state.last_success, Some(at("2026-03-01T03:02:30Z")));
        assert_eq!(state.started, None);
        let log = state.on_ping(PingKind::Log, at("2026-03-01T04:00:00Z"));
        assert_eq!((log.outcome, log.run), (None, None));
        let failed = state.on_ping(PingKind::Exit(3), at("2026-03-01T05:00:00Z"));
        assert_eq!(
            (failed.outcome, failed.reason),
            (Some(Outcome::Fail), PushReason::JobFailed)
        );
        assert_eq!(state.last_success, Some(at("2026-03-01T03:02:30Z")));
        assert_eq!(state.last_ping, Some(at("2026-03-01T05:00:00Z")));
    }

    #[test]
    fn period_deadlines_late_then_missed() {
        let spec = period(3600, 300);
        let boot = at("2026-01-01T00:00:00Z");
        let mut state = PushState::default();
        assert_eq!(next_deadline(&spec, &state, State::Unknown, boot), None);
        state.on_ping(PingKind::Success, at("2026-01-01T10:00:00Z"));
        assert_eq!(
            next_deadline(&spec, &state, State::Healthy, boot),
            Some((at("2026-01-01T11:00:00Z"), Deadline::Late))
        );
        assert_eq!(
            next_deadline(&spec, &state, State::Degraded, boot),
            Some((at("2026-01-01T11:05:00Z"), Deadline::Missed))
        );
        assert_eq!(next_deadline(&spec, &state, State::Unhealthy, boot), None);
        // a start: the run may take the grace
        state.on_ping(PingKind::Start, at("2026-01-01T10:58:00Z"));
        assert_eq!(
            next_deadline(&spec, &state, State::Healthy, boot),
            Some((at("2026-01-01T11:00:00Z"), Deadline::Late))
        );
        assert_eq!(
            next_deadline(&spec, &state, State::Degraded, boot),
            Some((at("2026-01-01T11:03:00Z"), Deadline::RunTooLong))
        );
    }

    #[test]
    fn after_a_server_start_nothing_is_missed_before_grace() {
        let spec = period(3600, 600);
        let mut state = PushState::default();
        state.on_ping(PingKind::Success, at("2026-01-01T10:00:00Z"));
        // the server was down from 10:30 to 12:00: the deadline passed meanwhile
        let boot = at("2026-01-01T12:00:00Z");
        assert_eq!(
            next_deadline(&spec, &state, State::Healthy, boot),
            Some((boot, Deadline::Late))
        );
        assert_eq!(
            next_deadline(&spec, &state, State::Degraded, boot),
            Some((at("2026-01-01T12:10:00Z"), Deadline::Missed))
        );
        state.on_ping(PingKind::Start, at("2026-01-01T11:00:00Z"));
        assert_eq!(
            next_deadline(&spec, &state, State::Degraded, boot),
            Some((at("2026-01-01T12:10:00Z"), Deadline::RunTooLong))
        );
    }

    #[test]
    fn cron_deadlines_follow_the_zone_across_daylight_saving() {
        // 03:00 every day in Berlin; on 29 March 2026 clocks go from 02:00 CET to 03:00 CEST.
        let spec = cron("0 3 * * *", "Europe/Berlin", 600);
        let boot = at("2026-01-01T00:00:00Z");
        let mut state = PushState::default();
        state.on_ping(PingKind::Success, at("2026-03-28T02:00:30Z")); // 03:00:30 CET
        assert_eq!(
            state.expected_by(&spec),
            Some(at("2026-03-29T01:00:00Z")),
            "03:00 CEST is 01:00 UTC: 23 hours after the last run"
        );
        assert_eq!(
            next_deadline(&spec, &state, State::Degraded, boot),
            Some((at("2026-03-29T01:10:00Z"), Deadline::Missed))
        );
        state.on_ping(PingKind::Success, at("2026-03-29T01:00:20Z"));
        assert_eq!(state.expected_by(&spec), Some(at("2026-03-30T01:00:00Z")));
        // and back in October (03:00 CEST on the 24th, 03:00 CET on the 25th: 25 hours)
        state.on_ping(PingKind::Success, at("2026-10-24T01:00:10Z"));
        assert_eq!(state.expected_by(&spec), Some(at("2026-10-25T02:00:00Z")));
        // a zone on the other side: New York goes forward on 8 March 2026
        let spec = cron("30 2 * * *", "America/New_York", 600);
        state.on_ping(PingKind::Success, at("2026-03-07T07:30:00Z")); // 02:30 EST
        let next = state.expected_by(&spec).expect("next");
        assert!(
            next > at("2026-03-07T07:30:00Z") && next <= at("2026-03-09T06:30:00Z"),
            "02:30 does not exist on 8 March; the next run is at most on the 9th, got {next}"
        );
    }

    #[test]
    fn bodies_are_bounded_and_marked() {
        assert_eq!(kept_body(b""), None);
        assert_eq!(kept_body(b"done\n").as_deref(), Some("done\n"));
        let long = "é".repeat(6000); // 12,000 bytes
        let kept = kept_body(long.as_bytes()).expect("text");
        assert!(kept.len() < limits::BODY_MAX + 100);
        assert!(kept.ends_with("[cut: 12000 bytes in all, the first 10000 kept]"));
        assert_eq!(
            kept_body(b"\xff ok").as_deref(),
            Some("\u{fffd} ok"),
            "invalid UTF-8 is replaced"
        );
    }

    #[test]
    fn specs_round_trip_through_json() {
        for spec in [
            period(86_400, 3600),
            cron("0 3 * * *", "Europe/Berlin", 600),
        ] {
            let json = serde_json::to_string(&spec).expect("json");
            let back: PushSpec = serde_json::from_str(&json).expect("back");
            assert_eq!(back, spec);
        }
    }
}
