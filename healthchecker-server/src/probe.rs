//! The check: one `GET {url}{path}` against a monitored app, turned into a [`CheckRecord`].
//!
//! A failed check is data, not an error: whatever the app does (refuse, hang, answer 503, send
//! 10 MB, redirect), the probe returns a record with an [`Outcome`], a [`Reason`], the HTTP status
//! and the latency.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::health::Outcome;

/// Why a check ended the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// HTTP 200 and a body that does not say otherwise.
    Ok,
    /// A status code other than 200 (redirects included: they are not followed).
    StatusCode,
    /// HTTP 200 with a health+json `status` of `warn`.
    BodyWarn,
    /// HTTP 200 with a health+json `status` of `fail`, `error` or `down`.
    BodyFail,
    /// The body claims `application/health+json` but does not parse as such.
    BodyInvalid,
    /// The body ended before its announced end, or the connection broke while reading it.
    BodyTruncated,
    /// The whole exchange did not finish within the monitor's timeout.
    Timeout,
    /// The connection was refused or reset.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// Any other transport failure.
    Other,
}

impl Reason {
    /// The name used in the API, logs and mail: `ok`, `status_code`, `timeout`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::StatusCode => "status_code",
            Reason::BodyWarn => "body_warn",
            Reason::BodyFail => "body_fail",
            Reason::BodyInvalid => "body_invalid",
            Reason::BodyTruncated => "body_truncated",
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Dns => "dns",
            Reason::Tls => "tls",
            Reason::Other => "other",
        }
    }
}

/// One check of one monitor, as recorded in the health-check log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// When the check started (UTC).
    pub time: DateTime<Utc>,
    /// Pass, warn or fail.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// The HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// Time from sending the request to the end of the body (or the failure).
    #[serde(with = "latency_ms", rename = "latency_ms")]
    pub latency: Duration,
    /// The parsed `application/health+json` (or any JSON) body, bounded in size.
    pub body: Option<serde_json::Value>,
    /// A short human-readable detail of a failure, e.g. "HTTP 503" or "connection refused".
    pub detail: Option<String>,
}

/// Serializes a [`Duration`] as fractional milliseconds.
mod latency_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        latency: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64((latency.as_secs_f64() * 1e6).round() / 1e3)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(deserializer)?;
        Ok(Duration::from_secs_f64((ms / 1e3).max(0.0)))
    }
}
