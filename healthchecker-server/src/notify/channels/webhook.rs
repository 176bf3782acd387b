//! `webhook`: the event as a documented JSON document, for Home Assistant, n8n and scripts.
//!
//! `POST url` with `Content-Type: application/json`, the body a [`Payload`],
//! `Idempotency-Key: <event id>` (the same on every retry, so a receiver can drop a repeat),
//! the channel's extra `headers`, and with a `secret`,
//! `X-Healthchecker-Signature: sha256=<hex of HMAC-SHA256(secret, body)>`, which a receiver checks
//! against the exact bytes it got.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;

use super::{Context, HttpRequest, text};
use crate::alerting::Event;
use crate::config::Secret;
use crate::health::State;
use crate::store::LoggedCheck;

/// The header of the signature.
pub const SIGNATURE_HEADER: &str = "X-Healthchecker-Signature";

/// The JSON a webhook receives (schema `WebhookEvent` in the OpenAPI document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// `degraded`, `unhealthy`, `recovered`, `reminder` or `test`.
    pub event: String,
    /// The event's id, also the `Idempotency-Key`.
    pub id: String,
    /// The app.
    pub app: String,
    /// Its state now.
    pub state: State,
    /// Its state before.
    pub previous: State,
    /// Why: the check's reason (`timeout`, `status_code`, `connect`, ...).
    pub reason: String,
    /// The reason's detail, e.g. `no answer within 5 s`.
    pub detail: Option<String>,
    /// The URL that is checked.
    pub url: String,
    /// When it happened (RFC 3339, UTC).
    pub time: DateTime<Utc>,
    /// The incident it belongs to.
    pub incident: Incident,
    /// The last checks, newest first.
    pub checks: Vec<LoggedCheck>,
    /// This server's base URL.
    pub server: String,
}

/// The incident of a [`Payload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The id of its first event.
    pub id: String,
    /// When the app stopped being healthy.
    pub opened_at: DateTime<Utc>,
    /// Seconds down so far (for `recovered`: the whole downtime).
    pub downtime_s: u64,
}

/// The payload of `event`.
pub fn payload(event: &Event, context: Context<'_>) -> Payload {
    let (reason, detail) = text::reason_parts(event);
    Payload {
        event: event.kind.as_str().to_owned(),
        id: event.id.clone(),
        app: event.app.to_string(),
        state: event.transition.to,
        previous: event.transition.from,
        reason,
        detail,
        url: event.url.clone(),
        time: event.time,
        incident: Incident {
            id: event.incident.id.clone(),
            opened_at: event.incident.opened_at,
            downtime_s: event.incident.downtime_s,
        },
        checks: event.checks.clone(),
        server: context.server_url.to_owned(),
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The request that delivers `event`.
pub fn request(
    url: &Url,
    headers: &[(String, Secret)],
    secret: Option<&Secret>,
    event: &Event,
    context: Context<'_>,
) -> HttpRequest {
    // A payload of strings, numbers and times always serializes.
    let body = serde_json::to_vec(&payload(event, context)).unwrap_or_default();
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.clone(), value.expose().to_owned()))
        .collect();
    all.push(("Idempotency-Key".to_owned(), event.id.clone()));
    if let Some(secret) = secret {
        all.push((SIGNATURE_HEADER.to_owned(), signature(secret, &body)));
    }
    HttpRequest {
        url: url.clone(),
        headers: all,
        content_type: "application/json",
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HOSTILE_APP, HOSTILE_REASON, event};
    use super::*;
    use crate::config::channel::EventKind;

    const CONTEXT: Context<'static> = Context {
        server_url: "http://hc.lan:8080",
    };

    #[test]
    fn the_event_as_json_with_key_and_signature() {
        let url: Url = "http://127.0.0.1:9/hook".parse().expect("url");
        let secret = Secret::new("s3cret".to_owned());
        let headers = [("X-Team".to_owned(), Secret::new("ops".to_owned()))];
        let event = event(EventKind::Unhealthy, "nas", "timeout: no answer within 5 s");
        let request = request(&url, &headers, Some(&secret), &event, CONTEXT);
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["event"], "unhealthy");
        assert_eq!(body["app"], "nas");
        assert_eq!(body["state"], "UNHEALTHY");
        assert_eq!(body["previous"], "DEGRADED");
        assert_eq!(body["reason"], "timeout");
        assert_eq!(body["detail"], "no answer within 5 s");
        assert_eq!(body["incident"]["downtime_s"], 90);
        assert_eq!(body["checks"][0]["http_status"], 503);
        assert_eq!(body["server"], "http://hc.lan:8080");
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("Idempotency-Key"), Some(event.id.clone()));
        assert_eq!(header("X-Team").as_deref(), Some("ops"));
        assert_eq!(
            header(SIGNATURE_HEADER),
            Some(signature(&secret, &request.body))
        );
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
        assert_eq!(
            signature(
                &Secret::new("Jefe".to_owned()),
                b"what do ya want for nothing?"
            ),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_hostile_event_stays_inside_its_strings() {
        let url: Url = "http://127.0.0.1:9/hook".parse().expect("url");
        let event = event(EventKind::Unhealthy, HOSTILE_APP, HOSTILE_REASON);
        let request = request(&url, &[], None, &event, CONTEXT);
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("still JSON");
        assert_eq!(body["app"], HOSTILE_APP);
        assert_eq!(body["event"], "unhealthy");
        assert_eq!(
            request.headers.len(),
            1,
            "no header but the key: {:?}",
            request.headers
        );
        assert!(!request.headers[0].1.contains(['\r', '\n']));
    }
}
