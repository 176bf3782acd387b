//! What a monitor is: a checked [`AppName`] and a validated [`MonitorSpec`].
//!
//! A registration arrives as raw JSON ([`Registration`]) and is validated once, here, into a
//! [`MonitorSpec`] of typed values; inner code never sees raw strings. Every rejection is a
//! [`FieldError`] that names the field, the value and the valid range, so the API can answer 422
//! with a message a user can act on. The defaults and ranges live in [`limits`].
//!
//! `"kind": "push"` makes a push monitor ([`crate::push`]): no `url` and no polling fields, but a
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
    /// Default `timeout`, seconds.
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
    /// Default `limit` of `GET /api/v1/monitors/{app}/log`, checks.
    pub const LOG_LIMIT_DEFAULT: usize = 100;
    /// Largest `limit` of `GET /api/v1/monitors/{app}/log`, checks.
    pub const LOG_LIMIT_MAX: usize = 100_000;
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
    fn new(field: &str, value: impl fmt::Display, expected: impl Into<String>) -> Self {
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

/// A registration as it arrives in the body of `PUT /api/v1/monitors/{app}`, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Base URL of the app, `http` or `https`. Required.
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
    /// Base URL of the app (no query or fragment, no credentials).
    pub url: Url,
    /// Path of the health endpoint, starting with `/`.
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
    /// A push monitor's schedule and key; `None` for a polled monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

/// The `url` every push monitor has: nothing is fetched, the job pings the server.
pub const PUSH_URL: &str = "push:";

impl MonitorSpec {
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

    /// The URL that is checked: `url` with `path` appended.
    /// For a push monitor, nothing is fetched: its schedule, in words (`push: 0 3 * * *
    /// (Europe/Berlin), grace 600 s`), which mail and channels show where a URL would be.
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
    /// unhealthy, healthy.
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
                "the app's base URL, e.g. http://192.168.1.20:9090",
            )
        })?;
        let url = validate_url(url)?;
        let path = validate_path(self.path.as_deref().unwrap_or(limits::PATH_DEFAULT))?;
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
            self.timeout.unwrap_or(limits::TIMEOUT_DEFAULT),
            limits::TIMEOUT,
            "seconds",
        )?;
        if timeout >= interval {
            return Err(FieldError::new(
                "timeout",
                timeout,
                format!("less than `interval` ({interval} seconds), and from 2 to 60 seconds"),
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

fn validate_url(text: &str) -> Result<Url, FieldError> {
    const EXPECTED: &str = "an http:// or https:// base URL with a host, without credentials, query or \
                            fragment, e.g. http://192.168.1.20:9090";
    let bad = || FieldError::new("url", text, EXPECTED);
    if text.len() > limits::URL_MAX || text.chars().any(crate::text::is_unsafe) {
        return Err(bad());
    }
    let url = Url::parse(text.trim()).map_err(|_| bad())?;
    let acceptable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|host| !host.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if acceptable { Ok(url) } else { Err(bad()) }
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
