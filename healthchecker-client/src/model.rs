//! Serde views of the server's answers.
//!
//! Tolerant on purpose, so this client keeps working while the server grows: unknown fields are
//! ignored, fields that may be missing default to empty, and unknown states or outcomes map to
//! an `Other` variant instead of failing the whole answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The state of a monitored app in the server's state machine.
///
/// # Examples
///
/// ```
/// use healthchecker_client::MonitorState;
///
/// let state: MonitorState = serde_json::from_str("\"UNHEALTHY\"")?;
/// assert_eq!(state, MonitorState::Unhealthy);
/// let later: MonitorState = serde_json::from_str("\"MAINTENANCE\"")?;
/// assert_eq!(later, MonitorState::Other);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum MonitorState {
    /// Not checked yet, or not enough checks to tell.
    Unknown,
    /// Passing.
    Healthy,
    /// Warning, or failing but not yet `unhealthy` times in a row, or recovering.
    Degraded,
    /// Failed `unhealthy` times in a row.
    Unhealthy,
    /// A state this client version does not know.
    #[serde(other)]
    Other,
}

impl MonitorState {
    /// The name the server uses: `UNKNOWN`, `HEALTHY`, `DEGRADED`, `UNHEALTHY` (`OTHER` for a
    /// state this client does not know).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::MonitorState::Healthy.as_str(), "HEALTHY");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorState::Unknown => "UNKNOWN",
            MonitorState::Healthy => "HEALTHY",
            MonitorState::Degraded => "DEGRADED",
            MonitorState::Unhealthy => "UNHEALTHY",
            MonitorState::Other => "OTHER",
        }
    }
}

impl std::fmt::Display for MonitorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one check.
///
/// # Examples
///
/// ```
/// use healthchecker_client::CheckOutcome;
///
/// let outcome: CheckOutcome = serde_json::from_str("\"warn\"")?;
/// assert_eq!(outcome, CheckOutcome::Warn);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckOutcome {
    /// The app answered 200 and its body, if any, said it is fine.
    Pass,
    /// The app answered 200 with a `warn` status.
    Warn,
    /// Anything else: another status, a failing body, a timeout, a refused connection, ...
    Fail,
    /// An outcome this client version does not know.
    #[serde(other)]
    Other,
}

impl CheckOutcome {
    /// `pass`, `warn`, `fail` (`other` for an outcome this client does not know).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::CheckOutcome::Warn.as_str(), "warn");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Pass => "pass",
            CheckOutcome::Warn => "warn",
            CheckOutcome::Fail => "fail",
            CheckOutcome::Other => "other",
        }
    }
}

impl std::fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check of an app, as kept in the server's health-check log.
///
/// # Examples
///
/// ```
/// use healthchecker_client::{CheckOutcome, CheckRecord};
///
/// let record: CheckRecord = serde_json::from_str(r#"{
///     "time": "2026-01-02T03:04:05Z", "outcome": "fail", "reason": "timeout",
///     "http_status": null, "latency_ms": 5000.0, "state": "DEGRADED",
///     "body": null, "detail": "no answer within 5 s"
/// }"#)?;
/// assert_eq!(record.outcome, CheckOutcome::Fail);
/// assert_eq!(record.reason, "timeout");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckRecord {
    /// When the check started (UTC).
    pub time: DateTime<Utc>,
    /// Pass, warn or fail.
    pub outcome: CheckOutcome,
    /// Why: `ok`, `status_code`, `body_warn`, `body_fail`, `timeout`, `connect`, `dns`, `tls`, ...
    #[serde(default)]
    pub reason: String,
    /// The app's HTTP status, when it answered.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// How long the check took, in milliseconds.
    #[serde(default)]
    pub latency_ms: f64,
    /// The monitor's state after this check.
    pub state: MonitorState,
    /// The app's parsed `application/health+json` body, when it sent one.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// More detail on a failure, e.g. the connection error.
    #[serde(default)]
    pub detail: Option<String>,
}

/// One change of a monitor's state.
///
/// # Examples
///
/// ```
/// use healthchecker_client::{MonitorState, Transition};
///
/// let t: Transition = serde_json::from_str(
///     r#"{"time": "2026-01-02T03:04:05Z", "from": "HEALTHY", "to": "DEGRADED", "reason": "timeout"}"#,
/// )?;
/// assert_eq!((t.from, t.to), (MonitorState::Healthy, MonitorState::Degraded));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Transition {
    /// When it changed (UTC).
    pub time: DateTime<Utc>,
    /// The state before.
    pub from: MonitorState,
    /// The state after.
    pub to: MonitorState,
    /// The reason of the check that caused it.
    #[serde(default)]
    pub reason: String,
}

/// What the server knows about one monitored app.
///
/// # Examples
///
/// ```
/// use healthchecker_client::{MonitorInfo, MonitorState};
///
/// let info: MonitorInfo = serde_json::from_str(r#"{
///     "app": "nas", "url": "http://10.0.0.5:9090", "path": "/health",
///     "email": ["me@example.com"], "interval": 10, "timeout": 5, "unhealthy": 2,
///     "healthy": 4, "state": "UNKNOWN", "paused": false, "passes": 0, "fails": 0,
///     "since": null, "registered_at": "2026-01-02T03:04:05Z",
///     "last_check": null, "last_transition": null
/// }"#)?;
/// assert_eq!(info.state, MonitorState::Unknown);
/// assert_eq!(info.check_url(), "http://10.0.0.5:9090/health");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MonitorInfo {
    /// The app's name.
    pub app: String,
    /// The app's base URL.
    pub url: String,
    /// The path of its health endpoint.
    #[serde(default)]
    pub path: String,
    /// Who gets mail on state changes (one address or a list on the wire).
    #[serde(default, deserialize_with = "one_or_many")]
    pub email: Vec<String>,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds a check may take.
    pub timeout: u32,
    /// Consecutive fails before `UNHEALTHY`.
    pub unhealthy: u32,
    /// Consecutive passes before `HEALTHY` after a recovery.
    pub healthy: u32,
    /// The current state.
    pub state: MonitorState,
    /// Whether polling is paused.
    #[serde(default)]
    pub paused: bool,
    /// Consecutive passes so far.
    #[serde(default)]
    pub passes: u32,
    /// Consecutive fails so far.
    #[serde(default)]
    pub fails: u32,
    /// Since when the monitor is in its current state.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// When the app was first registered.
    #[serde(default)]
    pub registered_at: Option<DateTime<Utc>>,
    /// The latest check.
    #[serde(default)]
    pub last_check: Option<CheckRecord>,
    /// Until when nothing is told about it (maintenance), if it is in maintenance.
    #[serde(default)]
    pub maintenance_until: Option<DateTime<Utc>>,
    /// Why it is in maintenance.
    #[serde(default)]
    pub maintenance_reason: Option<String>,
    /// Whether it changes state too often to be told each time.
    #[serde(default)]
    pub flapping: bool,
    /// The latest state change.
    #[serde(default)]
    pub last_transition: Option<Transition>,
    /// Recent state changes (only in the answer for one monitor; empty otherwise).
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

impl MonitorInfo {
    /// The URL the server checks: the app's URL with the path appended.
    ///
    /// # Examples
    ///
    /// See [`MonitorInfo`].
    #[must_use]
    pub fn check_url(&self) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), self.path)
    }
}

/// `GET /api/v1/monitors`.
#[derive(Debug, Deserialize)]
pub(crate) struct MonitorList {
    pub(crate) monitors: Vec<MonitorInfo>,
}

/// `GET /api/v1/monitors/{app}/log`.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckLog {
    pub(crate) checks: Vec<CheckRecord>,
}

/// The body of every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) field: Option<String>,
    /// Anything else the server adds, kept out of the way.
    #[serde(flatten)]
    #[allow(dead_code)]
    pub(crate) rest: BTreeMap<String, serde_json::Value>,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        None(()),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
        OneOrMany::None(()) => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_view() -> serde_json::Value {
        json!({
            "app": "media-center",
            "url": "http://10.0.0.5:9090/",
            "path": "/health",
            "email": ["me@example.com"],
            "interval": 10, "timeout": 5, "unhealthy": 2, "healthy": 4,
            "state": "DEGRADED",
            "paused": false,
            "passes": 0, "fails": 1,
            "since": "2026-01-02T03:04:05Z",
            "registered_at": "2026-01-01T00:00:00+01:00",
            "last_check": {
                "time": "2026-01-02T03:04:05.123Z", "outcome": "fail", "reason": "connect",
                "http_status": null, "latency_ms": 0.4, "state": "DEGRADED",
                "body": null, "detail": "connection refused"
            },
            "last_transition": {
                "time": "2026-01-02T03:04:05Z", "from": "HEALTHY", "to": "DEGRADED",
                "reason": "connect"
            },
            "transitions": [],
            "a_field_from_the_future": {"x": 1}
        })
    }

    #[test]
    fn full_view_parses() {
        let info: MonitorInfo = serde_json::from_value(full_view()).expect("parse");
        assert_eq!(info.app, "media-center");
        assert_eq!(info.state, MonitorState::Degraded);
        assert_eq!(info.fails, 1);
        assert_eq!(info.check_url(), "http://10.0.0.5:9090/health");
        assert_eq!(
            info.registered_at.map(|t| t.to_rfc3339()),
            Some("2025-12-31T23:00:00+00:00".to_owned())
        );
        let check = info.last_check.expect("last check");
        assert_eq!(check.outcome, CheckOutcome::Fail);
        assert_eq!(check.detail.as_deref(), Some("connection refused"));
        assert_eq!(
            info.last_transition.map(|t| (t.from, t.to)),
            Some((MonitorState::Healthy, MonitorState::Degraded))
        );
    }

    #[test]
    fn tolerant_of_missing_and_unknown() {
        let mut view = full_view();
        let object = view.as_object_mut().expect("object");
        for key in [
            "transitions",
            "since",
            "last_check",
            "last_transition",
            "paused",
        ] {
            object.remove(key);
        }
        object.insert("state".into(), json!("SOMETHING_NEW"));
        object.insert("email".into(), json!("one@example.com"));
        let info: MonitorInfo = serde_json::from_value(view).expect("parse");
        assert_eq!(info.state, MonitorState::Other);
        assert_eq!(info.email, ["one@example.com"]);
        assert!(info.transitions.is_empty());
        assert!(!info.paused);

        let record: CheckRecord = serde_json::from_value(json!({
            "time": "2026-01-02T03:04:05Z", "outcome": "skipped", "state": "HEALTHY"
        }))
        .expect("parse");
        assert_eq!(record.outcome, CheckOutcome::Other);
        assert_eq!(record.http_status, None);
    }

    #[test]
    fn error_body_parses_with_and_without_field() {
        let body: ErrorBody = serde_json::from_value(json!({
            "error": {"code": "invalid_field", "message": "m", "field": "interval", "extra": 1}
        }))
        .expect("parse");
        assert_eq!(body.error.field.as_deref(), Some("interval"));
        let body: ErrorBody =
            serde_json::from_value(json!({"error": {"code": "not_found", "message": "m"}}))
                .expect("parse");
        assert_eq!(body.error.field, None);
    }
}
