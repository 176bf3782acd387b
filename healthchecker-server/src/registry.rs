//! What a monitor is: a checked [`AppName`] and a validated [`MonitorSpec`].
//!
//! A registration arrives as raw JSON ([`Registration`]) and is validated once, here, into a
//! [`MonitorSpec`] of typed values; inner code never sees raw strings. Every rejection is a
//! [`FieldError`] that names the field, the value and the valid range, so the API can answer 422
//! with a message a user can act on. The defaults and ranges live in [`limits`].
//!
//! The scheme of a monitor's `url` says what a check is ([`Kind`]): `http://` and `https://`
//! fetch `{url}{path}`, `tcp://host:port` connects, `tls://host:port` connects and does a TLS
//! handshake, `icmp://host` sends one echo. Everything else (interval, timeout, thresholds) is the
//! same for every kind; the fields that only make sense for some kinds (`path` and
//! `expect_status` for http(s), `cert_warn_days` and `tls_verify` for https and tls) are refused
//! for the others, naming the field.
//!
//! `"kind": "push"` makes a push monitor ([`crate::push`], [`Kind::Push`]): no `url` and no polling fields, but a
//! `period` or a cron `schedule` (with its `tz`), and a `grace`; the fields of the one kind are
//! refused for the other, naming the field.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::Config;
use crate::push::{self, PingKey, PushSpec, Schedule};

/// Defaults and valid ranges of the registration parameters (DESIGN.md).
pub mod limits {
    use std::ops::RangeInclusive;

    /// Longest app name, in characters.
    pub const APP_NAME_MAX: usize = 64;
    /// Seconds a check may take.
    pub const TIMEOUT: RangeInclusive<u64> = 2..=60;
    /// Default `timeout`, seconds, where the interval leaves room for it: see [`default_timeout`].
    pub const TIMEOUT_DEFAULT: u64 = 5;
    /// Seconds between checks.
    pub const INTERVAL: RangeInclusive<u64> = 5..=300;
    /// Default `interval`, seconds.
    pub const INTERVAL_DEFAULT: u64 = 30;
    /// Consecutive failed checks that make a monitor unhealthy.
    pub const UNHEALTHY: RangeInclusive<u32> = 2..=10;
    /// Default `unhealthy`.
    pub const UNHEALTHY_DEFAULT: u32 = 2;
    /// Consecutive passed checks that make it healthy again.
    pub const HEALTHY: RangeInclusive<u32> = 2..=10;
    /// Default `healthy`.
    pub const HEALTHY_DEFAULT: u32 = 10;
    /// Default path of the health endpoint.
    pub const PATH_DEFAULT: &str = "/health";
    /// Longest path, in bytes.
    pub const PATH_MAX: usize = 1024;
    /// Longest URL, in bytes.
    pub const URL_MAX: usize = 2048;
    /// Most recipients of one monitor.
    pub const EMAILS_MAX: usize = 10;
    /// The `timeout` of a registration that does not send one: 5 seconds, or one second less
    /// than `interval` when the interval is shorter than 6 seconds, so that a default never
    /// makes a valid request invalid (the smallest interval, 5, gets a timeout of 4).
    pub const fn default_timeout(interval: u64) -> u64 {
        let room = interval.saturating_sub(1);
        let timeout = if TIMEOUT_DEFAULT < room {
            TIMEOUT_DEFAULT
        } else {
            room
        };
        if timeout < *TIMEOUT.start() {
            *TIMEOUT.start()
        } else {
            timeout
        }
    }
    /// Default `limit` of `GET /api/v1/monitors/{app}/log`, checks.
    pub const LOG_LIMIT_DEFAULT: usize = 100;
    /// Largest `limit` of `GET /api/v1/monitors/{app}/log`, checks.
    pub const LOG_LIMIT_MAX: usize = 100_000;
    /// Days before a certificate's expiry when a check warns (`cert_warn_days`; 0 turns it off).
    pub const CERT_WARN_DAYS: RangeInclusive<u32> = 0..=365;
    /// Default `cert_warn_days`.
    pub const CERT_WARN_DAYS_DEFAULT: u32 = 14;
    /// HTTP status codes `expect_status` may name.
    pub const STATUS: RangeInclusive<u16> = 100..=599;
    /// Most entries (codes and ranges) in `expect_status`.
    pub const EXPECT_STATUS_MAX: usize = 20;
}

/// Who manages a monitor: the API (an app that registered itself, or a user with `curl`), or
/// the operator's config file (`[[monitor]]` tables), which the API may not change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Registered over the API (`PUT /api/v1/monitors/{app}`, or the original's routes).
    #[default]
    Api,
    /// Declared in the config file; `PUT` and `DELETE` answer 409 `managed_by_config`.
    Config,
}

impl Source {
    /// `api` or `config`: the name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Config => "config",
        }
    }
}

/// What one check of a monitor is, by the scheme of its URL; or a push monitor, which is not
/// checked but pinged (`"kind": "push"`, no URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `http://`: `GET {url}{path}`.
    Http,
    /// `https://`: the same over TLS; the certificate's expiry is watched.
    Https,
    /// `tcp://host:port`: a TCP connection within the timeout.
    Tcp,
    /// `tls://host:port`: a TCP connection and a TLS handshake; the certificate's expiry is
    /// watched.
    Tls,
    /// `icmp://host`: one ICMP echo (IPv4 or IPv6), answered within the timeout.
    Icmp,
    /// A push monitor ([`crate::push`]): the job pings the server; nothing is polled.
    Push,
}

impl Kind {
    /// Every kind a URL's scheme can say, in the order the documentation lists them.
    pub const ALL: [Kind; 5] = [Kind::Http, Kind::Https, Kind::Tcp, Kind::Tls, Kind::Icmp];

    /// The kind of a URL scheme (`http`, `https`, `tcp`, `tls`, `icmp`), if it is one (a push
    /// monitor has no URL to check).
    pub fn from_scheme(scheme: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == scheme)
    }

    /// `http`, `https`, `tcp`, `tls`, `icmp` (the scheme) or `push`: the name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Https => "https",
            Kind::Tcp => "tcp",
            Kind::Tls => "tls",
            Kind::Icmp => "icmp",
            Kind::Push => "push",
        }
    }

    /// Whether a check is an HTTP request (`path` and `expect_status` apply).
    pub fn is_http(self) -> bool {
        matches!(self, Kind::Http | Kind::Https)
    }

    /// Whether a check does a TLS handshake (`cert_warn_days` and `tls_verify` apply).
    pub fn has_certificate(self) -> bool {
        matches!(self, Kind::Https | Kind::Tls)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP status codes that pass a check (`expect_status`): single codes and ranges, e.g.
/// `200-299` or `200, 204, 401`; by default `200` alone.
///
/// It relaxes only the status test: a health+json body that says `warn` or `fail` still decides
/// the outcome. Written as text (`200-299,401`) wherever it is stored or shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectStatus(Vec<(u16, u16)>);

impl Default for ExpectStatus {
    fn default() -> Self {
        ExpectStatus(vec![(200, 200)])
    }
}

impl ExpectStatus {
    /// Whether `status` passes.
    pub fn accepts(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }

    /// Whether this is the default (`200` alone).
    pub fn is_default(&self) -> bool {
        *self == ExpectStatus::default()
    }

    /// Reads what a registration gives: a code (`204`), a text of codes and ranges separated by
    /// commas (`"200-299, 401"`), or a list of codes and such texts (`[200, "300-399"]`).
    ///
    /// # Errors
    ///
    /// A [`FieldError`] for `expect_status` naming the bad entry and what is valid.
    pub fn parse(value: &serde_json::Value) -> Result<ExpectStatus, FieldError> {
        const EXPECTED: &str = "HTTP status codes from 100 to 599 that pass: a code (200), a range \
                                (\"200-299\"), or a list of them ([200, 204, \"300-399\"])";
        let bad = |shown: &dyn fmt::Display| FieldError::new("expect_status", shown, EXPECTED);
        let code = |text: &str| -> Result<u16, FieldError> {
            text.trim()
                .parse::<u16>()
                .ok()
                .filter(|code| limits::STATUS.contains(code))
                .ok_or_else(|| bad(&text))
        };
        let mut entries = Vec::new();
        let add_text = |text: &str, entries: &mut Vec<(u16, u16)>| -> Result<(), FieldError> {
            for part in text.split(',') {
                let entry = match part.split_once('-') {
                    Some((low, high)) => (code(low)?, code(high)?),
                    None => {
                        let one = code(part)?;
                        (one, one)
                    }
                };
                if entry.0 > entry.1 {
                    return Err(bad(&part.trim()));
                }
                entries.push(entry);
            }
            Ok(())
        };
        let number = |number: &serde_json::Number| -> Result<(u16, u16), FieldError> {
            number
                .as_u64()
                .and_then(|code| u16::try_from(code).ok())
                .filter(|code| limits::STATUS.contains(code))
                .map(|code| (code, code))
                .ok_or_else(|| bad(number))
        };
        match value {
            serde_json::Value::Number(n) => entries.push(number(n)?),
            serde_json::Value::String(text) => add_text(text, &mut entries)?,
            serde_json::Value::Array(items) if !items.is_empty() => {
                for item in items {
                    match item {
                        serde_json::Value::Number(n) => entries.push(number(n)?),
                        serde_json::Value::String(text) => add_text(text, &mut entries)?,
                        other => return Err(bad(other)),
                    }
                }
            }
            other => return Err(bad(other)),
        }
        if entries.len() > limits::EXPECT_STATUS_MAX {
            return Err(FieldError::new(
                "expect_status",
                format!("{} entries", entries.len()),
                format!("at most {} codes and ranges", limits::EXPECT_STATUS_MAX),
            ));
        }
        entries.dedup();
        Ok(ExpectStatus(entries))
    }
}

impl fmt::Display for ExpectStatus {
    /// `200`, `200-299,401`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, &(low, high)) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for ExpectStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExpectStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ExpectStatus::parse(&serde_json::Value::String(text)).map_err(serde::de::Error::custom)
    }
}

/// A registration body that is refused before its fields are looked at, or a field that is not
/// valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not one JSON value (a syntax error, trailing bytes after it, a cut body).
    #[error("the body is not valid JSON: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The JSON has a field of the wrong type, an unknown field, or a value out of range.
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// A registration parameter that is not valid: which field, what was given, what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`{}: {expected}", if value.is_empty() { String::new() } else { format!(" {value}") })]
pub struct FieldError {
    /// The field, as named in the JSON body (or `app` for the name in the path).
    pub field: String,
    /// The value as given, quoted and shortened for display.
    pub value: String,
    /// What is valid instead.
    pub expected: String,
}

impl FieldError {
    /// A refusal of `field`: `value` as given (quoted, and shortened past 80 characters) and
    /// what is `expected` instead.
    pub(crate) fn new(field: &str, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        let mut value = value.to_string();
        if value.chars().count() > 80 {
            value = value.chars().take(77).collect::<String>() + "...";
        }
        FieldError {
            field: field.to_owned(),
            // Debug-quoting escapes control characters, so the message is one safe line.
            value: format!("{value:?}"),
            expected: expected.into(),
        }
    }
}

/// The name an app is monitored under: 1–64 characters, no control or formatting characters, no
/// slashes, no leading or trailing spaces. It appears in mail subjects and log lines, so nothing in
/// it can start a new header or line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    /// Checks `name`.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] for the field `app` saying what is wrong.
    pub fn parse(name: &str) -> Result<AppName, FieldError> {
        const EXPECTED: &str = "1 to 64 characters: letters, digits, spaces and punctuation, \
                                without control characters, slashes, or spaces at either end";
        let length = name.chars().count();
        let bad_char = |c: char| matches!(c, '/' | '\\') || crate::text::is_unsafe(c);
        if length == 0
            || length > limits::APP_NAME_MAX
            || name.trim() != name
            || name.chars().any(bad_char)
        {
            return Err(FieldError::new("app", name, EXPECTED));
        }
        Ok(AppName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AppName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AppName::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One recipient or several, as the JSON body may give them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Emails {
    /// `"email": "me@example.com"`
    One(String),
    /// `"email": ["me@example.com", "you@example.com"]`
    Many(Vec<String>),
}

/// A registration as it arrives in the body of `PUT /api/v1/monitors/{app}` (or as a
/// `[[monitor]]` table of the config file, without its `name`), before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// What to check: `http://` or `https://` base URL of the app, `tcp://host:port`,
    /// `tls://host:port` or `icmp://host`. Required.
    pub url: Option<String>,
    /// Who is mailed about this app.
    pub email: Option<Emails>,
    /// Seconds between checks.
    pub interval: Option<u64>,
    /// Seconds a check may take.
    pub timeout: Option<u64>,
    /// Consecutive failed checks that make the app unhealthy.
    pub unhealthy: Option<u32>,
    /// Consecutive passed checks that make it healthy again.
    pub healthy: Option<u32>,
    /// Path of the health endpoint, below `url`.
    pub path: Option<String>,
    /// Channels of the config file to tell too, by name.
    pub notify: Option<Vec<String>>,
    /// Status codes that pass (http, https): a code, a text of codes and ranges, or a list.
    pub expect_status: Option<serde_json::Value>,
    /// Days before the certificate expires when a check warns (https, tls); 0 turns it off.
    pub cert_warn_days: Option<u32>,
    /// Whether the certificate must be trusted (https, tls); `false` accepts a self-signed one.
    pub tls_verify: Option<bool>,
    /// `"push"` for a push monitor (the job reports in); absent for a polled one.
    pub kind: Option<String>,
    /// Push: seconds between successes.
    pub period: Option<u64>,
    /// Push: seconds after the deadline before the monitor is `missed`.
    pub grace: Option<u64>,
    /// Push: a five-field cron expression of when the job runs (instead of `period`).
    pub schedule: Option<String>,
    /// Push: the IANA time zone of `schedule` (default UTC).
    pub tz: Option<String>,
    /// Push: make a new ping key (the old ping URL stops working).
    pub rotate_key: Option<bool>,
}

/// A validated monitor definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorSpec {
    /// What is checked (no query or fragment, no credentials); its scheme is the [`Kind`].
    pub url: Url,
    /// Path of the health endpoint, starting with `/` (http and https; empty for the others).
    pub path: String,
    /// Recipients of mail about this app, each a valid address; may be empty.
    pub emails: Vec<String>,
    /// Time between checks.
    #[serde(with = "seconds")]
    pub interval: Duration,
    /// Time a check may take, less than `interval`.
    #[serde(with = "seconds")]
    pub timeout: Duration,
    /// Consecutive failed checks that make the app unhealthy.
    pub unhealthy: u32,
    /// Consecutive passed checks that make it healthy again.
    pub healthy: u32,
    /// Channels of the config file that are told too, by name (checked against the
    /// configuration by [`MonitorSpec::unknown_channel`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// Status codes that pass (http and https).
    #[serde(default, skip_serializing_if = "ExpectStatus::is_default")]
    pub expect_status: ExpectStatus,
    /// Days before the certificate's expiry when a passing check becomes a warn (https and tls);
    /// 0 turns the warning off.
    #[serde(default = "cert_warn_days_default")]
    pub cert_warn_days: u32,
    /// Whether the certificate must be trusted and name the host (https and tls); `false`
    /// accepts any certificate (a self-signed router or NAS), whose expiry is still watched.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// A push monitor's schedule and key; `None` for a polled monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

fn cert_warn_days_default() -> u32 {
    limits::CERT_WARN_DAYS_DEFAULT
}

fn yes() -> bool {
    true
}

/// The `url` every push monitor has: nothing is fetched, the job pings the server.
pub const PUSH_URL: &str = "push:";

impl MonitorSpec {
    /// How long after a check the next one has answered: one interval, and the time that check
    /// may take. A monitor in flux for an alert decides within this (host grouping waits so long).
    pub fn next_answer_within(&self) -> Duration {
        self.interval + self.timeout
    }

    /// What a check is: [`Kind::Push`] for a push monitor, else by the URL's scheme (a
    /// validated spec always has one of the kinds; anything else reads as http).
    pub fn kind(&self) -> Kind {
        if self.is_push() {
            return Kind::Push;
        }
        Kind::from_scheme(self.url.scheme()).unwrap_or(Kind::Http)
    }

    /// The host a check goes to: a name (lowercase) or an address. For `tcp`, `tls` and `icmp`
    /// URLs (which the URL standard leaves opaque) an address written as text is read as one.
    pub fn host(&self) -> Option<url::Host<String>> {
        let host = self.url.host()?.to_owned();
        Some(match host {
            url::Host::Domain(name) => match name.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(ip)) => url::Host::Ipv4(ip),
                Ok(std::net::IpAddr::V6(ip)) => url::Host::Ipv6(ip),
                Err(_) => url::Host::Domain(name.to_ascii_lowercase()),
            },
            other => other,
        })
    }

    /// Whether the monitor is a push monitor (the job reports in; nothing is polled).
    pub fn is_push(&self) -> bool {
        self.push.is_some()
    }

    /// Refuses what this server's `config` does not allow: a recipient outside
    /// `allowed_email_domains` (when that list is not empty; a subdomain is inside its domain), a
    /// channel in `notify` that is not a `[[channel]]` of the config.
    ///
    /// # Errors
    ///
    /// The [`FieldError`] of the first field refused.
    pub fn allowed_by(&self, config: &Config) -> Result<(), FieldError> {
        if let Some(error) = self.unknown_channel(config.channels.iter().map(|c| c.name.as_str())) {
            return Err(error);
        }
        check_domains(&self.emails, &config.allowed_email_domains)
    }

    /// The first channel of `notify` that is not among `known`, as the refusal of the field.
    pub fn unknown_channel<'a>(
        &self,
        known: impl Iterator<Item = &'a str> + Clone,
    ) -> Option<FieldError> {
        let name = self
            .notify
            .iter()
            .find(|name| !known.clone().any(|known| known == name.as_str()))?;
        let mut known: Vec<&str> = known.collect();
        known.sort_unstable();
        Some(FieldError::new(
            "notify",
            name,
            if known.is_empty() {
                "the name of a [[channel]] of the server's config file; it has none".to_owned()
            } else {
                format!("the name of a channel of the server: {}", known.join(", "))
            },
        ))
    }

    /// The URL that is checked: for http and https `url` with `path` appended, for the other
    /// kinds `url` itself. For a push monitor, nothing is fetched: its schedule, in words
    /// (`push: 0 3 * * * (Europe/Berlin), grace 600 s`), which mail and channels show where a URL
    /// would be.
    pub fn check_url(&self) -> String {
        if let Some(push) = &self.push {
            return format!(
                "push: {}, grace {} s",
                push.schedule.describe(),
                push.grace.as_secs()
            );
        }
        format!("{}{}", self.url.as_str().trim_end_matches('/'), self.path)
    }

    /// The thresholds for the state machine.
    pub fn thresholds(&self) -> crate::health::Thresholds {
        crate::health::Thresholds {
            unhealthy: self.unhealthy,
            healthy: self.healthy,
        }
    }
}

impl Registration {
    /// Reads a registration body: one JSON object and nothing after it. A body that is not JSON
    /// is [`BodyError::Malformed`]; wrong types and unknown fields are [`BodyError::Invalid`]
    /// naming the field.
    ///
    /// # Errors
    ///
    /// [`BodyError`] as above.
    pub fn from_json(body: &[u8]) -> Result<Registration, BodyError> {
        json_body(body)
    }

    /// Reads and validates a registration body ([`from_json`](Self::from_json), then
    /// [`validate`](Self::validate)), and checks it against what the server's `config` allows
    /// ([`MonitorSpec::allowed_by`]).
    ///
    /// # Errors
    ///
    /// [`BodyError`]: the first problem found.
    pub fn accept(body: &[u8], config: &Config) -> Result<MonitorSpec, BodyError> {
        let spec = Registration::from_json(body)?.validate()?;
        spec.allowed_by(config)?;
        Ok(spec)
    }
}

/// One JSON value of type `T` from a request body: a syntax error, a cut body or bytes after the
/// value are [`BodyError::Malformed`]; a field of the wrong type or an unknown field is
/// [`BodyError::Invalid`] naming the field.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut *deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = match message.strip_prefix("unknown field `") {
                    Some(rest) => rest.split('`').next().unwrap_or_default().to_owned(),
                    None => field,
                };
                BodyError::Invalid(FieldError {
                    field: if field == "." {
                        "body".to_owned()
                    } else {
                        field
                    },
                    value: String::new(),
                    expected: message,
                })
            }
            _ => BodyError::Malformed(inner),
        }
    })?;
    // `{...} garbage` is as malformed as any other bad JSON.
    deserializer.end().map_err(BodyError::Malformed)?;
    Ok(value)
}

/// Refuses recipients outside `allowed` (when it is not empty): subdomains are in their domain.
fn check_domains(emails: &[String], allowed: &[String]) -> Result<(), FieldError> {
    if allowed.is_empty() {
        return Ok(());
    }
    for email in emails {
        let domain = email
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let inside = allowed.iter().any(|ok| {
            domain == *ok
                || domain
                    .strip_suffix(ok.as_str())
                    .is_some_and(|sub| sub.ends_with('.'))
        });
        if !inside {
            return Err(FieldError {
                field: "email".to_owned(),
                value: format!("{email:?}"),
                expected: format!(
                    "an address in {} (allowed_email_domains)",
                    allowed.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The `limit` of a log request: [`limits::LOG_LIMIT_DEFAULT`] when it is not given, else a
/// whole number from 1 to [`limits::LOG_LIMIT_MAX`].
///
/// # Errors
///
/// A [`FieldError`] for the field `limit`.
pub fn log_limit(given: Option<&str>) -> Result<usize, FieldError> {
    let Some(text) = given else {
        return Ok(limits::LOG_LIMIT_DEFAULT);
    };
    text.parse::<usize>()
        .ok()
        .filter(|limit| (1..=limits::LOG_LIMIT_MAX).contains(limit))
        .ok_or_else(|| FieldError {
            field: "limit".to_owned(),
            value: format!("{text:?}"),
            expected: format!("from 1 to {} checks", limits::LOG_LIMIT_MAX),
        })
}

/// Incidents shown when a request names no `limit`.
pub const INCIDENTS_LIMIT_DEFAULT: usize = 100;

/// The most incidents one request may ask for.
pub const INCIDENTS_LIMIT_MAX: usize = 1000;

/// The `limit` of an incidents request: [`INCIDENTS_LIMIT_DEFAULT`] when absent, else a whole
/// number from 1 to [`INCIDENTS_LIMIT_MAX`].
///
/// # Errors
///
/// A [`FieldError`] for the field `limit`.
pub fn incidents_limit(given: Option<&str>) -> Result<usize, FieldError> {
    let Some(text) = given else {
        return Ok(INCIDENTS_LIMIT_DEFAULT);
    };
    text.parse::<usize>()
        .ok()
        .filter(|limit| (1..=INCIDENTS_LIMIT_MAX).contains(limit))
        .ok_or_else(|| FieldError {
            field: "limit".to_owned(),
            value: format!("{text:?}"),
            expected: format!("from 1 to {INCIDENTS_LIMIT_MAX} incidents"),
        })
}

/// The `uptime` window of a badge: `24h`, `7d`, `30d` or `365d`.
///
/// # Errors
///
/// A [`FieldError`] for the field `uptime`.
pub fn uptime_window(given: &str) -> Result<crate::history::Window, FieldError> {
    crate::history::Window::parse(given).ok_or_else(|| FieldError {
        field: "uptime".to_owned(),
        value: format!("{given:?}"),
        expected: "one of 24h, 7d, 30d, 365d".to_owned(),
    })
}

/// The `before` cursor of a log request: `None` for the newest page, else the `next_before` of
/// the previous page (a whole number).
///
/// # Errors
///
/// A [`FieldError`] for the field `before`.
pub fn log_before(given: Option<&str>) -> Result<Option<u64>, FieldError> {
    given
        .map(|text| {
            text.parse::<u64>().map_err(|_| FieldError {
                field: "before".to_owned(),
                value: format!("{text:?}"),
                expected: "the `next_before` of the previous page (a whole number)".to_owned(),
            })
        })
        .transpose()
}

/// Serializes a [`Duration`] as whole seconds.
/// A duration as a number of seconds: a whole number when it is one (what the API takes), else
/// a fraction, so that what is stored reads back as it was (a test's 800 ms timeout stays 800 ms
/// across a restart instead of becoming 0 s).
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if duration.subsec_nanos() == 0 {
            serializer.serialize_u64(duration.as_secs())
        } else {
            serializer.serialize_f64(duration.as_secs_f64())
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(D::Error::custom)
    }
}

impl Registration {
    /// Validates every field into a [`MonitorSpec`], applying the defaults.
    ///
    /// # Errors
    ///
    /// The first [`FieldError`] found, in the order url, path, email, interval, timeout,
    /// unhealthy, healthy, notify, expect_status, cert_warn_days, tls_verify.
    pub fn validate(&self) -> Result<MonitorSpec, FieldError> {
        match self.kind.as_deref() {
            None => {}
            Some("push") => return self.validate_push(),
            Some(other) => {
                return Err(FieldError::new(
                    "kind",
                    other,
                    "\"push\" for a push monitor, or no `kind` for a polled one",
                ));
            }
        }
        let push_only = [
            ("period", self.period.is_some()),
            ("grace", self.grace.is_some()),
            ("schedule", self.schedule.is_some()),
            ("tz", self.tz.is_some()),
            ("rotate_key", self.rotate_key.is_some()),
        ];
        if let Some((field, _)) = push_only.iter().find(|(_, given)| *given) {
            return Err(FieldError::new(
                field,
                "",
                "only for push monitors (\"kind\": \"push\")",
            ));
        }
        let url = self.url.as_deref().ok_or_else(|| {
            FieldError::new(
                "url",
                "(missing)",
                "the app's base URL, e.g. http://192.168.1.20:9090, or tcp://host:port, \
                 tls://host:port, icmp://host",
            )
        })?;
        let (url, kind) = validate_url(url)?;
        let only_for = |field: &str, present: bool, applies: bool, kinds: &str| {
            if present && !applies {
                Err(FieldError {
                    field: field.to_owned(),
                    value: String::new(),
                    expected: format!("only for {kinds} monitors; this one is {kind}://"),
                })
            } else {
                Ok(())
            }
        };
        only_for(
            "path",
            self.path.is_some(),
            kind.is_http(),
            "http:// and https://",
        )?;
        let path = if kind.is_http() {
            validate_path(self.path.as_deref().unwrap_or(limits::PATH_DEFAULT))?
        } else {
            String::new()
        };
        let emails = match &self.email {
            None => Vec::new(),
            Some(Emails::One(one)) => vec![one.clone()],
            Some(Emails::Many(many)) => many.clone(),
        };
        let emails = validate_emails(emails)?;
        let interval = in_range(
            "interval",
            self.interval.unwrap_or(limits::INTERVAL_DEFAULT),
            limits::INTERVAL,
            "seconds",
        )?;
        let timeout = in_range(
            "timeout",
            self.timeout.unwrap_or(limits::default_timeout(interval)),
            limits::TIMEOUT,
            "seconds",
        )?;
        if timeout >= interval {
            // Only a timeout the user sent can get here (the default always fits), so the
            // field named is one they wrote; say when the interval it is compared with is the
            // default rather than theirs.
            let whose = if self.interval.is_some() {
                ""
            } else {
                ", the default"
            };
            return Err(FieldError::new(
                "timeout",
                timeout,
                format!(
                    "less than `interval` ({interval} seconds{whose}), and from 2 to 60 seconds"
                ),
            ));
        }
        let unhealthy = in_range(
            "unhealthy",
            self.unhealthy.unwrap_or(limits::UNHEALTHY_DEFAULT),
            limits::UNHEALTHY,
            "checks",
        )?;
        let healthy = in_range(
            "healthy",
            self.healthy.unwrap_or(limits::HEALTHY_DEFAULT),
            limits::HEALTHY,
            "checks",
        )?;
        Ok(MonitorSpec {
            url,
            path,
            emails,
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            unhealthy,
            healthy,
            notify: notify(self.notify.as_deref())?,
            expect_status: match &self.expect_status {
                Some(value) => {
                    only_for(
                        "expect_status",
                        true,
                        kind.is_http(),
                        "http:// and https://",
                    )?;
                    ExpectStatus::parse(value)?
                }
                None => ExpectStatus::default(),
            },
            cert_warn_days: match self.cert_warn_days {
                Some(days) => {
                    only_for(
                        "cert_warn_days",
                        true,
                        kind.has_certificate(),
                        "https:// and tls://",
                    )?;
                    in_range(
                        "cert_warn_days",
                        days,
                        limits::CERT_WARN_DAYS,
                        "days (0: off)",
                    )?
                }
                None => limits::CERT_WARN_DAYS_DEFAULT,
            },
            tls_verify: match self.tls_verify {
                Some(verify) => {
                    only_for(
                        "tls_verify",
                        true,
                        kind.has_certificate(),
                        "https:// and tls://",
                    )?;
                    verify
                }
                None => true,
            },
            push: None,
        })
    }
}

impl Registration {
    /// Validates a push monitor's registration (`"kind": "push"`): `period` or `schedule` (with
    /// `tz`), `grace`, `email`, `notify`; no polling fields. The spec gets a fresh key, which
    /// [`crate::monitors`] replaces with the existing monitor's unless `rotate_key` is set.
    fn validate_push(&self) -> Result<MonitorSpec, FieldError> {
        let polled_only = [
            ("url", self.url.is_some()),
            ("path", self.path.is_some()),
            ("interval", self.interval.is_some()),
            ("timeout", self.timeout.is_some()),
            ("unhealthy", self.unhealthy.is_some()),
            ("healthy", self.healthy.is_some()),
            ("expect_status", self.expect_status.is_some()),
            ("cert_warn_days", self.cert_warn_days.is_some()),
            ("tls_verify", self.tls_verify.is_some()),
        ];
        if let Some((field, _)) = polled_only.iter().find(|(_, given)| *given) {
            return Err(FieldError::new(
                field,
                "",
                "not for a push monitor: nothing is polled, the job pings the server (use \
                 `period` or `schedule`, and `grace`)",
            ));
        }
        let seconds = |field: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(FieldError::new(
                    field,
                    value,
                    format!(
                        "from {} to {} seconds (1 minute to 365 days)",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        let schedule = match (self.period, self.schedule.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "schedule",
                    self.schedule.as_deref().unwrap_or_default(),
                    "either `period` or `schedule`, not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "period",
                    "(missing)",
                    "seconds between successes (60 to 31536000), or a cron `schedule` instead",
                ));
            }
            (Some(period), None) => {
                if self.tz.is_some() {
                    return Err(FieldError::new(
                        "tz",
                        self.tz.as_deref().unwrap_or_default(),
                        "only with a cron `schedule`",
                    ));
                }
                Schedule::Period(seconds("period", period, push::limits::PERIOD)?)
            }
            (None, Some(text)) => {
                if text.chars().any(crate::text::is_unsafe) || text.len() > 200 {
                    return Err(FieldError::new(
                        "schedule",
                        text,
                        "a five-field cron expression, e.g. \"0 3 * * *\"",
                    ));
                }
                let cron = crate::config::maintenance::parse_cron(text).map_err(|error| {
                    FieldError::new(
                        "schedule",
                        text,
                        format!(
                            "a five-field cron expression (minute hour day month weekday), \
                             e.g. \"0 3 * * *\": {error}"
                        ),
                    )
                })?;
                let tz_text = self.tz.as_deref().unwrap_or("UTC");
                let tz = crate::config::maintenance::parse_tz(tz_text)
                    .map_err(|error| FieldError::new("tz", tz_text, error))?;
                Schedule::Cron {
                    cron: Box::new(cron),
                    text: text.trim().to_owned(),
                    tz,
                }
            }
        };
        let grace = seconds(
            "grace",
            self.grace.unwrap_or(push::limits::GRACE_DEFAULT),
            push::limits::GRACE,
        )?;
        let key = PingKey::generate()
            .map_err(|error| FieldError::new("kind", "push", error.to_string()))?;
        let emails = match &self.email {
            None => Vec::new(),
            Some(Emails::One(one)) => vec![one.clone()],
            Some(Emails::Many(many)) => many.clone(),
        };
        Ok(MonitorSpec {
            url: Url::parse(PUSH_URL).map_err(|_| FieldError::new("url", PUSH_URL, "push:"))?,
            path: String::new(),
            emails: validate_emails(emails)?,
            interval: grace,
            timeout: Duration::ZERO,
            unhealthy: 1,
            healthy: 1,
            notify: notify(self.notify.as_deref())?,
            expect_status: ExpectStatus::default(),
            cert_warn_days: limits::CERT_WARN_DAYS_DEFAULT,
            tls_verify: true,
            push: Some(PushSpec {
                key,
                schedule,
                grace,
                rotate_key: self.rotate_key.unwrap_or(false),
            }),
        })
    }
}

/// Most channels one registration may name.
const NOTIFY_MAX: usize = 10;

/// The `notify` list: names of channels (checked against the server's own list elsewhere), at
/// most [`NOTIFY_MAX`], without repeats.
fn notify(names: Option<&[String]>) -> Result<Vec<String>, FieldError> {
    let Some(names) = names else {
        return Ok(Vec::new());
    };
    if names.len() > NOTIFY_MAX {
        return Err(FieldError::new(
            "notify",
            format!("{} names", names.len()),
            format!("at most {NOTIFY_MAX} channel names"),
        ));
    }
    let mut list: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(FieldError::new(
                "notify",
                name,
                "channel names: 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
        if !list.contains(name) {
            list.push(name.clone());
        }
    }
    Ok(list)
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, FieldError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            value,
            format!("from {} to {} {unit}", range.start(), range.end()),
        ))
    }
}

fn validate_url(text: &str) -> Result<(Url, Kind), FieldError> {
    const EXPECTED: &str = "an http:// or https:// base URL with a host, without credentials, query or \
                            fragment, e.g. http://192.168.1.20:9090; or tcp://host:port, \
                            tls://host:port, icmp://host";
    let bad = |expected: &str| FieldError::new("url", text, expected);
    if text.len() > limits::URL_MAX || text.chars().any(crate::text::is_unsafe) {
        return Err(bad(EXPECTED));
    }
    let url = Url::parse(text.trim()).map_err(|_| bad(EXPECTED))?;
    let Some(kind) = Kind::from_scheme(url.scheme()) else {
        return Err(bad(EXPECTED));
    };
    let acceptable = url.host_str().is_some_and(|host| !host.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !acceptable {
        return Err(bad(EXPECTED));
    }
    let bare = matches!(url.path(), "" | "/");
    match kind {
        Kind::Http | Kind::Https => Ok((url, kind)),
        Kind::Tcp | Kind::Tls => {
            let host_ok = url.host_str().is_some_and(valid_host);
            if host_ok && bare && url.port().is_some_and(|port| port > 0) {
                Ok((url, kind))
            } else {
                Err(bad(&format!(
                    "{kind}://host:port with a port from 1 to 65535 and nothing after it, \
                     e.g. {kind}://192.168.1.30:{}",
                    if kind == Kind::Tcp { 22 } else { 443 }
                )))
            }
        }
        Kind::Icmp => {
            let host_ok = url.host_str().is_some_and(valid_host);
            if host_ok && bare && url.port().is_none() {
                Ok((url, kind))
            } else {
                Err(bad(
                    "icmp://host: a host name or address, without port or path, \
                                          e.g. icmp://192.168.1.1 or icmp://[fd00::1]",
                ))
            }
        }
        // No scheme says push (`"kind": "push"` does).
        Kind::Push => Err(bad(EXPECTED)),
    }
}

/// A host of a `tcp`, `tls` or `icmp` URL (left opaque by the URL standard): an address, or a DNS
/// name of letters, digits, `-`, `_` and dots.
fn valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true; // an IPv6 address, parsed as one by the URL parser
    }
    host.len() <= 253
        && !host.starts_with('.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        })
}

fn validate_path(text: &str) -> Result<String, FieldError> {
    let acceptable = text.starts_with('/')
        && !text.starts_with("//")
        && text.len() <= limits::PATH_MAX
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '#' || crate::text::is_unsafe(c));
    if acceptable {
        Ok(text.to_owned())
    } else {
        Err(FieldError::new(
            "path",
            text,
            "a path starting with / (a query is allowed), without spaces, e.g. /health",
        ))
    }
}

fn validate_emails(emails: Vec<String>) -> Result<Vec<String>, FieldError> {
    if emails.len() > limits::EMAILS_MAX {
        return Err(FieldError::new(
            "email",
            format!("{} addresses", emails.len()),
            format!("at most {} addresses", limits::EMAILS_MAX),
        ));
    }
    let mut valid: Vec<String> = Vec::with_capacity(emails.len());
    for email in emails {
        let address = email.trim().parse::<lettre::Address>().map_err(|_| {
            FieldError::new("email", &email, "an email address such as me@example.com")
        })?;
        let address = address.to_string();
        if !valid.contains(&address) {
            valid.push(address);
        }
    }
    Ok(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(json: serde_json::Value) -> Result<MonitorSpec, FieldError> {
        serde_json::from_value::<Registration>(json)
            .expect("shape")
            .validate()
    }

    #[test]
    fn a_stored_spec_reads_back_as_it_was_written() {
        let mut spec =
            registration(serde_json::json!({"url": "http://10.0.0.5:9090"})).expect("valid");
        let stored = serde_json::to_value(&spec).expect("serializes");
        assert_eq!(
            (&stored["interval"], &stored["timeout"]),
            (&30.into(), &5.into())
        );
        spec.timeout = Duration::from_millis(800);
        let stored = serde_json::to_string(&spec).expect("serializes");
        let read: MonitorSpec = serde_json::from_str(&stored).expect("reads back");
        assert_eq!(read, spec);
        let negative = stored.replace("\"timeout\":0.8", "\"timeout\":-1");
        assert!(serde_json::from_str::<MonitorSpec>(&negative).is_err());
    }

    #[test]
    fn defaults_apply() {
        let spec = registration(serde_json::json!({"url": "http://10.0.0.5:9090"})).expect("valid");
        assert_eq!(spec.interval, Duration::from_secs(30));
        assert_eq!(spec.timeout, Duration::from_secs(5));
        assert_eq!((spec.unhealthy, spec.healthy), (2, 10));
        assert_eq!(spec.check_url(), "http://10.0.0.5:9090/health");
        assert!(spec.emails.is_empty());
    }

    #[test]
    fn the_documented_example_is_valid() {
        let spec = registration(serde_json::json!({
            "url": "http://media.lan:8096/", "email": "me@example.com",
            "interval": 10, "unhealthy": 2, "healthy": 4, "path": "/api/health?full=1"
        }))
        .expect("valid");
        assert_eq!(spec.check_url(), "http://media.lan:8096/api/health?full=1");
        assert_eq!(spec.emails, ["me@example.com"]);
    }

    #[test]
    fn ranges_are_checked_at_both_ends() {
        for (field, bad, good) in [
            ("interval", [4, 301], [5, 300]),
            ("timeout", [1, 61], [2, 60]),
            ("unhealthy", [1, 11], [2, 10]),
            ("healthy", [1, 11], [2, 10]),
        ] {
            for value in bad {
                let mut body = serde_json::json!({"url": "http://a", "interval": 300});
                body[field] = value.into();
                let error = registration(body).expect_err("out of range");
                assert_eq!(error.field, field);
                assert_eq!(error.value, format!("\"{value}\""));
                assert!(
                    error.expected.starts_with("from ") || error.expected.contains("less than"),
                    "{error}"
                );
            }
            for value in good {
                let mut body = serde_json::json!({"url": "http://a", "interval": 300});
                body[field] = value.into();
                if field == "interval" {
                    body["timeout"] = 2.into();
                }
                registration(body).unwrap_or_else(|error| panic!("{field}={value}: {error}"));
            }
        }
    }

    #[test]
    fn the_default_timeout_fits_every_valid_interval() {
        for (interval, timeout) in [(5, 4), (6, 5), (7, 5), (30, 5), (300, 5)] {
            let spec = registration(serde_json::json!({"url": "http://a", "interval": interval}))
                .unwrap_or_else(|error| panic!("interval {interval}: {error}"));
            assert_eq!(
                spec.timeout,
                Duration::from_secs(timeout),
                "interval {interval}"
            );
        }
        for interval in limits::INTERVAL {
            let timeout = limits::default_timeout(interval);
            assert!(
                limits::TIMEOUT.contains(&timeout) && timeout < interval,
                "{interval}"
            );
        }
    }

    #[test]
    fn a_timeout_against_the_default_interval_says_so() {
        let error = registration(serde_json::json!({"url": "http://a", "timeout": 40}))
            .expect_err("longer than the default interval");
        assert_eq!(error.field, "timeout");
        assert!(
            error.expected.contains("(30 seconds, the default)"),
            "{error}"
        );
    }

    #[test]
    fn timeout_must_be_less_than_interval() {
        let error =
            registration(serde_json::json!({"url": "http://a", "interval": 5, "timeout": 5}))
                .expect_err("equal");
        assert_eq!(error.field, "timeout");
        assert!(
            error.expected.contains("less than `interval` (5 seconds)"),
            "{error}"
        );
    }

    #[test]
    fn bad_urls_paths_and_emails_name_the_field() {
        for url in [
            "ftp://a",
            "http://",
            "not a url",
            "http://u:p@a",
            "http://a/?q=1",
            "http://a/#x",
            "http://a\r\nX: y",
        ] {
            assert_eq!(
                registration(serde_json::json!({ "url": url }))
                    .expect_err(url)
                    .field,
                "url"
            );
        }
        assert_eq!(
            registration(serde_json::json!({}))
                .expect_err("missing")
                .field,
            "url"
        );
        for path in ["health", "//evil.com/health", "/he alth", "/a#b"] {
            let error =
                registration(serde_json::json!({"url": "http://a", "path": path})).expect_err(path);
            assert_eq!(error.field, "path");
        }
        for email in [
            serde_json::json!("nope"),
            serde_json::json!(["a@b.c", "x@y\r\nBcc: z@w"]),
        ] {
            let error = registration(serde_json::json!({"url": "http://a", "email": email}))
                .expect_err("bad email");
            assert_eq!(error.field, "email");
            assert!(!error.to_string().contains('\n'), "one line: {error}");
        }
        let many: Vec<String> = (0..11).map(|i| format!("u{i}@example.com")).collect();
        assert_eq!(
            registration(serde_json::json!({"url": "http://a", "email": many}))
                .expect_err("too many")
                .field,
            "email"
        );
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let valid = br#"{"url": "http://a"}"#;
        assert!(Registration::from_json(valid).is_ok());
        for body in [
            &br#"{"url": "http://a"} garbage"#[..],
            br#"{"url": "http://a"}{"url": "http://b"}"#,
            br#"{"url": "http://a"} 1"#,
        ] {
            let error = Registration::from_json(body).expect_err("trailing bytes");
            assert!(matches!(error, BodyError::Malformed(_)), "{error}");
        }
        // White space after the value is not trailing garbage.
        assert!(Registration::from_json(b"{\"url\": \"http://a\"}\r\n ").is_ok());
    }

    #[test]
    fn log_limits() {
        assert_eq!(log_limit(None), Ok(limits::LOG_LIMIT_DEFAULT));
        assert_eq!(log_limit(Some("1")), Ok(1));
        assert_eq!(log_limit(Some("100000")), Ok(100_000));
        for bad in ["0", "100001", "-1", "ten", ""] {
            assert_eq!(log_limit(Some(bad)).expect_err(bad).field, "limit");
        }
        assert_eq!(log_before(None), Ok(None));
        assert_eq!(log_before(Some("42")), Ok(Some(42)));
        assert_eq!(
            log_before(Some("-1")).expect_err("negative").field,
            "before"
        );
    }

    #[test]
    fn kinds_by_scheme() {
        let rows: &[(&str, Kind, &str)] = &[
            (
                "http://10.0.0.5:9090",
                Kind::Http,
                "http://10.0.0.5:9090/health",
            ),
            ("https://nas.lan", Kind::Https, "https://nas.lan/health"),
            ("tcp://10.0.0.5:22", Kind::Tcp, "tcp://10.0.0.5:22"),
            ("tcp://NAS.lan:22/", Kind::Tcp, "tcp://NAS.lan:22"),
            ("tls://10.0.0.5:993", Kind::Tls, "tls://10.0.0.5:993"),
            ("icmp://10.0.0.1", Kind::Icmp, "icmp://10.0.0.1"),
            ("icmp://[fd00::1]", Kind::Icmp, "icmp://[fd00::1]"),
        ];
        for (url, kind, checked) in rows {
            let spec = registration(serde_json::json!({ "url": url })).expect(url);
            assert_eq!(
                (spec.kind(), spec.check_url().as_str()),
                (*kind, *checked),
                "{url}"
            );
            assert_eq!(spec.path.is_empty(), !kind.is_http(), "{url}");
        }
        let host = |url: &str| {
            registration(serde_json::json!({ "url": url }))
                .expect(url)
                .host()
                .expect("host")
        };
        assert_eq!(
            host("tcp://127.0.0.1:1"),
            url::Host::<String>::Ipv4([127, 0, 0, 1].into())
        );
        assert_eq!(
            host("icmp://[::1]"),
            url::Host::<String>::Ipv6(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            host("tls://NAS.Lan:443"),
            url::Host::Domain("nas.lan".to_owned())
        );
    }

    #[test]
    fn each_kind_takes_only_its_own_fields() {
        for (body, field) in [
            (serde_json::json!({"url": "tcp://a"}), "url"),
            (serde_json::json!({"url": "tcp://a:0"}), "url"),
            (serde_json::json!({"url": "tcp://a:22/x"}), "url"),
            (serde_json::json!({"url": "tls://a b:22"}), "url"),
            (serde_json::json!({"url": "icmp://a:7"}), "url"),
            (serde_json::json!({"url": "icmp://a/ping"}), "url"),
            (serde_json::json!({"url": "ssh://a:22"}), "url"),
            (
                serde_json::json!({"url": "tcp://a:22", "path": "/health"}),
                "path",
            ),
            (
                serde_json::json!({"url": "icmp://a", "expect_status": 200}),
                "expect_status",
            ),
            (
                serde_json::json!({"url": "http://a", "cert_warn_days": 7}),
                "cert_warn_days",
            ),
            (
                serde_json::json!({"url": "tcp://a:22", "tls_verify": false}),
                "tls_verify",
            ),
            (
                serde_json::json!({"url": "https://a", "cert_warn_days": 366}),
                "cert_warn_days",
            ),
        ] {
            let error = registration(body.clone()).expect_err(&body.to_string());
            assert_eq!(error.field, field, "{body}: {error}");
        }
        let error =
            registration(serde_json::json!({"url": "tcp://a:22", "path": "/x"})).expect_err("path");
        assert_eq!(
            error.to_string(),
            "invalid `path`: only for http:// and https:// monitors; this one is tcp://"
        );
        let spec = registration(serde_json::json!({
            "url": "tls://printer.lan:631", "cert_warn_days": 0, "tls_verify": false
        }))
        .expect("valid");
        assert_eq!((spec.cert_warn_days, spec.tls_verify), (0, false));
        let spec = registration(serde_json::json!({"url": "https://a"})).expect("valid");
        assert_eq!((spec.cert_warn_days, spec.tls_verify), (14, true));
    }

    #[test]
    fn expect_status_takes_codes_ranges_and_lists() {
        let parse = |value: serde_json::Value| ExpectStatus::parse(&value);
        let rows: &[(serde_json::Value, &str, &[u16], &[u16])] = &[
            (serde_json::json!(204), "204", &[204], &[200]),
            (
                serde_json::json!("200-299"),
                "200-299",
                &[200, 250, 299],
                &[199, 300],
            ),
            (
                serde_json::json!([200, 204, 401]),
                "200,204,401",
                &[200, 204, 401],
                &[201, 403],
            ),
            (
                serde_json::json!(["200-299", 401]),
                "200-299,401",
                &[226, 401],
                &[302],
            ),
            (
                serde_json::json!(" 200 , 300-302"),
                "200,300-302",
                &[301],
                &[303],
            ),
        ];
        for (value, text, pass, fail) in rows {
            let expect = parse(value.clone()).unwrap_or_else(|error| panic!("{value}: {error}"));
            assert_eq!(expect.to_string(), *text);
            assert!(pass.iter().all(|code| expect.accepts(*code)), "{value}");
            assert!(!fail.iter().any(|code| expect.accepts(*code)), "{value}");
            let back: ExpectStatus =
                serde_json::from_value(serde_json::to_value(&expect).expect("text")).expect("back");
            assert_eq!(back, expect);
        }
        for bad in [
            serde_json::json!(99),
            serde_json::json!(600),
            serde_json::json!("2xx"),
            serde_json::json!("299-200"),
            serde_json::json!([]),
            serde_json::json!([true]),
            serde_json::json!({"code": 200}),
            serde_json::json!(-1),
        ] {
            let Err(error) = parse(bad.clone()) else {
                panic!("{bad} is accepted");
            };
            assert_eq!(error.field, "expect_status");
            assert!(error.expected.contains("100 to 599"), "{error}");
        }
        let spec = registration(serde_json::json!({"url": "http://a"})).expect("valid");
        assert!(spec.expect_status.is_default() && spec.expect_status.accepts(200));
        let spec =
            registration(serde_json::json!({"url": "https://a", "expect_status": [200, 401]}))
                .expect("valid");
        assert!(spec.expect_status.accepts(401));
    }

    #[test]
    fn specs_stored_before_the_kinds_read_with_the_defaults() {
        let old = r#"{"url":"http://a/","path":"/health","emails":[],"interval":30,"timeout":5,"unhealthy":2,"healthy":10}"#;
        let spec: MonitorSpec = serde_json::from_str(old).expect("old spec");
        assert_eq!(spec.kind(), Kind::Http);
        assert!(spec.expect_status.is_default());
        assert_eq!((spec.cert_warn_days, spec.tls_verify), (14, true));
        let text = serde_json::to_string(&spec).expect("json");
        assert!(!text.contains("expect_status"), "{text}");
        assert_eq!(
            serde_json::from_str::<MonitorSpec>(&text).expect("back"),
            spec
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_value::<Registration>(
                serde_json::json!({"url": "http://a", "intervall": 5})
            )
            .is_err()
        );
    }

    #[test]
    fn app_names() {
        for good in [
            "media-center",
            "Sample HealthChecker App",
            "ü",
            "a.b_c:d (1)",
            &"x".repeat(64),
        ] {
            assert_eq!(AppName::parse(good).expect(good).as_str(), good);
        }
        for bad in [
            "",
            " lead",
            "trail ",
            "a\nb",
            "a\r\nSubject: x",
            "a/b",
            "tab\there",
            "\u{202E}evil",
            &"x".repeat(65),
        ] {
            let error = AppName::parse(bad).expect_err(bad);
            assert_eq!(error.field, "app");
            assert!(!error.to_string().contains(['\n', '\r']), "{error}");
        }
    }
}

/// The body of `POST /api/v1/monitors/{app}/maintenance`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// How long, in minutes (1 to 10080, a week). Required.
    pub minutes: Option<u64>,
    /// Why, shown with the monitor (at most 200 characters).
    pub reason: Option<String>,
}

/// The longest maintenance, in minutes (a week).
pub const MAINTENANCE_MINUTES_MAX: u64 = 10_080;

impl MaintenanceRequest {
    /// Reads and validates a maintenance body: the window's length and reason.
    ///
    /// # Errors
    ///
    /// [`BodyError`]: malformed JSON, or a field naming what is wrong.
    pub fn accept(body: &[u8]) -> Result<(Duration, String), BodyError> {
        Ok(json_body::<MaintenanceRequest>(body)?.validate()?)
    }

    /// The window's length and reason.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] naming `minutes` or `reason`.
    pub fn validate(&self) -> Result<(Duration, String), FieldError> {
        let minutes = match self.minutes {
            Some(minutes @ 1..=MAINTENANCE_MINUTES_MAX) => minutes,
            Some(minutes) => {
                return Err(FieldError::new(
                    "minutes",
                    minutes,
                    format!("from 1 to {MAINTENANCE_MINUTES_MAX} minutes (a week)"),
                ));
            }
            None => {
                return Err(FieldError::new(
                    "minutes",
                    "",
                    "the length of the maintenance, in minutes (required)",
                ));
            }
        };
        let reason = self.reason.as_deref().unwrap_or("maintenance").trim();
        if reason.chars().count() > 200 || reason.chars().any(char::is_control) {
            return Err(FieldError::new(
                "reason",
                reason,
                "one line of at most 200 characters",
            ));
        }
        let reason = if reason.is_empty() {
            "maintenance"
        } else {
            reason
        };
        Ok((Duration::from_secs(minutes * 60), reason.to_owned()))
    }
}
