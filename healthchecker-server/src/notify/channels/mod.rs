//! The channels besides mail: each kind renders an [`Event`] into one [`Delivery`] (a pure
//! function, table-tested), and one sender carries it out.
//!
//! | kind | file | what goes out |
//! |---|---|---|
//! | `webhook` | [`webhook`] | `POST url` with the event as JSON ([`webhook::Payload`]), `Idempotency-Key`, an HMAC signature |
//! | `ntfy` | [`ntfy`] | `POST` to the topic, the text as body, `Title`, `Priority`, `Tags` headers |
//! | `gotify` | [`gotify`] | `POST {url}/message`, `X-Gotify-Key`, JSON `title`, `message`, `priority` |
//! | `discord` | [`discord`] | `POST url`, JSON `content` and an embed, mentions off |
//! | `slack` | [`slack`] | `POST url`, JSON `text` (Slack and Mattermost) |
//! | `telegram` | [`telegram`] | `POST {api_url}/bot{token}/sendMessage`, JSON `chat_id`, `text` |
//! | `pushover` | [`pushover`] | `POST {api_url}/1/messages.json`, form `token`, `user`, `title`, `message`, `priority` |
//! | `command` | [`command`] | the program with its arguments, the event in `HEALTHCHECKER_*` variables |
//!
//! Whatever comes from a monitored app (its name, a reason, a detail) reaches a header, an
//! environment variable or a chat message only through [`text`]'s one-line rule, and JSON bodies
//! are built by `serde_json`: a hostile name cannot add a header, break a body or mention
//! `@everyone`.

pub mod command;
pub mod discord;
pub mod gotify;
pub mod ntfy;
pub mod pushover;
pub mod send;
pub mod slack;
pub mod telegram;
pub mod text;
pub mod webhook;
pub(crate) mod worker;

use std::fmt;
use std::path::PathBuf;

use url::Url;

use self::text::Text;
use crate::alerting::Event;
use crate::config::channel::ChannelKind;

/// What delivering one message on a channel is.
#[derive(Clone, PartialEq, Eq)]
pub enum Delivery {
    /// One HTTP request.
    Http(HttpRequest),
    /// One run of a program.
    Command(CommandRun),
}

/// A `POST` to send. Its `Debug` leaves out header values and the URL's path and query (they
/// may be credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Where to.
    pub url: Url,
    /// Headers besides `Content-Type`.
    pub headers: Vec<(String, String)>,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("host", &self.url.host_str())
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("content_type", &self.content_type)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A program to run, without a shell, with these variables added to its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    /// Absolute path of the program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// `HEALTHCHECKER_*` variables that describe the event.
    pub env: Vec<(String, String)>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Http(request) => request.fmt(f),
            Delivery::Command(run) => run.fmt(f),
        }
    }
}

/// What a rendering needs besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// This server's base URL, for links.
    pub server_url: &'a str,
}

/// The delivery of `event` on a channel of `kind`; `None` for mail (sent by the mail worker).
pub fn render(kind: &ChannelKind, event: &Event, context: Context<'_>) -> Option<Delivery> {
    match kind {
        ChannelKind::Webhook {
            url,
            headers,
            secret,
        } => Some(Delivery::Http(webhook::request(
            url,
            headers,
            secret.as_ref(),
            event,
            context,
        ))),
        ChannelKind::Command { program, args } => {
            Some(Delivery::Command(command::run(program, args, event)))
        }
        _ => render_text(kind, &Text::of(event, context.server_url)),
    }
}

/// One delivery for the alerts of one host that are due together, on a channel people read;
/// `None` for the kinds that machines read (`webhook`, `command`: one delivery per event, each
/// with its own id) and for mail.
pub fn render_group(
    kind: &ChannelKind,
    host: &str,
    events: &[Event],
    context: Context<'_>,
) -> Option<Delivery> {
    match kind {
        ChannelKind::Webhook { .. } | ChannelKind::Command { .. } => None,
        _ => render_text(kind, &Text::of_group(host, events, context.server_url)),
    }
}

/// The request of a kind people read, for `text`.
fn render_text(kind: &ChannelKind, text: &Text) -> Option<Delivery> {
    Some(Delivery::Http(match kind {
        ChannelKind::Ntfy { url, token } => ntfy::request(url, token.as_ref(), text),
        ChannelKind::Gotify { url, token } => gotify::request(url, token, text),
        ChannelKind::Discord { url } => discord::request(url, text),
        ChannelKind::Slack { url } => slack::request(url, text),
        ChannelKind::Telegram {
            api_url,
            token,
            chat_id,
        } => telegram::request(api_url, token, chat_id, text),
        ChannelKind::Pushover {
            api_url,
            token,
            user,
        } => pushover::request(api_url, token, user, text),
        // Mail goes through the mail worker; the others are rendered per event above.
        _ => return None,
    }))
}

/// A JSON body (a value of strings and numbers always serializes).
fn json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testing {
    //! An event to render in the tests of every kind.

    use chrono::{DateTime, Utc};

    use crate::alerting::{Event, EventKind, IncidentInfo};
    use crate::health::{Outcome, State, Transition};
    use crate::probe::{CheckRecord, Reason};
    use crate::registry::AppName;
    use crate::store::LoggedCheck;

    pub(crate) fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_715_000 + secs, 0).expect("valid time")
    }

    #[test]
    fn an_event_with_checks_round_trips_as_a_payload() {
        let mut event = event(EventKind::Unhealthy, "nas", "timeout");
        let mut check = event.checks[0].clone();
        check.record.http_status = None;
        check.record.reason = Reason::Timeout;
        check.record.latency = std::time::Duration::from_nanos(870_439);
        check.record.detail = Some("no answer within 0 s".to_owned());
        event.checks.push(check);
        let json = serde_json::to_string(&crate::notify::Payload::Event(Box::new(event.clone())))
            .expect("json");
        let back: crate::notify::Payload =
            serde_json::from_str(&json).unwrap_or_else(|error| panic!("{error}: {json}"));
        let crate::notify::Payload::Event(back) = back else {
            panic!("an event: {json}");
        };
        assert_eq!(back.checks.len(), 2);
        assert_eq!(back.checks[1].record.reason, Reason::Timeout);
        assert_eq!(back.checks[1].ping, None);
    }

    /// `app` went `kind` at 90 s, after failing since 0 s.
    pub(crate) fn event(kind: EventKind, app: &str, reason: &str) -> Event {
        let (from, to) = match kind {
            EventKind::Recovered => (State::Degraded, State::Healthy),
            EventKind::Degraded => (State::Healthy, State::Degraded),
            _ => (State::Degraded, State::Unhealthy),
        };
        Event {
            id: crate::alerting::event_id(kind, app, at(90)),
            kind,
            app: AppName::parse(app).expect("valid name"),
            url: "http://192.168.1.30:8096/health".to_owned(),
            time: at(90),
            transition: Transition {
                time: at(90),
                from,
                to,
                reason: reason.to_owned(),
            },
            incident: IncidentInfo {
                id: "hc.unhealthy.nas.1.0".to_owned(),
                opened_at: at(0),
                back_at: None,
                downtime_s: 90,
                was_unhealthy: true,
            },
            checks: vec![LoggedCheck {
                record: CheckRecord {
                    cert_not_after: None,
                    cert_days_left: None,
                    time: at(90),
                    outcome: Outcome::Fail,
                    reason: Reason::StatusCode,
                    http_status: Some(503),
                    latency: std::time::Duration::from_millis(12),
                    body: None,
                    body_digest: None,
                    detail: Some("HTTP 503".to_owned()),
                },
                state: to,
                ping: None,
            }],
            thread: Vec::new(),
        }
    }

    /// A name and a reason that try to break out of every format.
    pub(crate) const HOSTILE_APP: &str = "x\" <a> @everyone <!channel> &amp; %0d%0a";
    pub(crate) const HOSTILE_REASON: &str =
        "body_fail: x\r\nX-Injected: yes\r\n\r\n{\"event\": \"fake\"}\u{0}\u{202E}";
}
