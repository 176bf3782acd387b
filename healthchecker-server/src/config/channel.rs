//! The channels of the config file: `[[channel]]` tables validated into typed [`Channel`]s.
//!
//! A channel is where messages go besides each registration's `email`: a named mail list, a
//! webhook, ntfy, Gotify, Discord, Slack (or Mattermost), Telegram, Pushover, or a command the
//! server runs. Channels exist only in the config file: no API field can name a program, a URL or
//! the arguments of one; registrations name channels by name (`notify`), and `default_channels`
//! apply to every monitor.
//!
//! Every secret (tokens, webhook secrets, the credential part of a Discord or Slack URL, header
//! values) is kept as a [`Secret`] and never shows in an error, a log line or an answer: a
//! channel is shown by [`Channel::target`], its kind and host.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{Secret, TableError};

/// What a message tells: the events a channel can be told, and filter on (`events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The app has been `DEGRADED` for longer than one check.
    Degraded,
    /// The app entered `UNHEALTHY`: the incident opens.
    Unhealthy,
    /// The app is `HEALTHY` again: the incident closes.
    Recovered,
    /// The app is still `UNHEALTHY` (when `remind_every` is set).
    Reminder,
    /// A test message (`test-channel`), sent whatever the channel's filter says.
    Test,
    /// The app changes state too often to be told each time.
    Flapping,
    /// Many monitors failed at once: the server's own network may be down.
    Storm,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 7] = [
        EventKind::Degraded,
        EventKind::Unhealthy,
        EventKind::Recovered,
        EventKind::Reminder,
        EventKind::Test,
        EventKind::Flapping,
        EventKind::Storm,
    ];

    /// `degraded`, `unhealthy`, `recovered`, `reminder`, `test`, `flapping` or `storm`: the name
    /// in event ids, webhooks and channel filters.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Degraded => "degraded",
            EventKind::Unhealthy => "unhealthy",
            EventKind::Recovered => "recovered",
            EventKind::Reminder => "reminder",
            EventKind::Test => "test",
            EventKind::Flapping => "flapping",
            EventKind::Storm => "storm",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of the built-in channel of each registration's `email` addresses; no `[[channel]]`
/// may take it.
pub const EMAIL: &str = "email";

/// Longest a channel's delivery may take by default (a request, or a command until it is killed).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Pushover's API, the default `api_url` of a `pushover` channel.
pub const PUSHOVER_API: &str = "https://api.pushover.net";

/// Telegram's Bot API, the default `api_url` of a `telegram` channel.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// A `[[channel]]` table as written in the config file, before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    /// The channel's name, as registrations and `default_channels` name it.
    pub name: Option<String>,
    /// `email`, `webhook`, `ntfy`, `gotify`, `discord`, `slack`, `telegram`, `pushover` or
    /// `command`.
    pub kind: Option<String>,
    /// The URL of every HTTP kind (for `telegram` and `pushover`: `api_url`).
    pub url: Option<String>,
    /// The API base of `telegram` and `pushover` (overridable for tests).
    pub api_url: Option<String>,
    /// ntfy's bearer token, Gotify's app token, Telegram's bot token, Pushover's app token.
    pub token: Option<String>,
    /// Pushover's user (or group) key.
    pub user: Option<String>,
    /// Telegram's chat id (a number or `@channelname`).
    pub chat_id: Option<ChatId>,
    /// A webhook's HMAC-SHA256 key for `X-Healthchecker-Signature`.
    pub secret: Option<String>,
    /// Extra headers of a webhook.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Addresses of an `email` channel.
    #[serde(default)]
    pub to: Vec<String>,
    /// The program of a `command` channel: an absolute path, run without a shell.
    pub program: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The events this channel is told; every event when absent.
    pub events: Option<Vec<String>>,
    /// Seconds a delivery may take (1–300); 30 by default.
    pub timeout: Option<u64>,
}

/// Telegram's chat id: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    /// A numeric id (negative for groups).
    Number(i64),
    /// A numeric id as text, or `@channelname`.
    Text(String),
}

/// A channel: its name, what it is, and which events it is told. Its `Debug` shows
/// [`Channel::target`], never a URL's credentials or a secret.
#[derive(Clone, PartialEq)]
pub struct Channel {
    /// Its name: 1–64 letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// What it is, with its settings.
    pub kind: ChannelKind,
    /// The events it is told ([`EventKind::Test`] always is).
    pub events: Vec<EventKind>,
    /// Longest a delivery may take.
    pub timeout: Duration,
}

/// A channel's kind and settings.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum ChannelKind {
    /// Mail to fixed addresses, through the server's SMTP relay.
    Email {
        /// The addresses.
        to: Vec<String>,
    },
    /// A documented JSON event, POSTed.
    Webhook {
        /// Where to.
        url: Url,
        /// Extra headers (their values may be credentials).
        headers: Vec<(String, Secret)>,
        /// Key of the HMAC-SHA256 signature of the body.
        secret: Option<Secret>,
    },
    /// ntfy: POST to the topic URL.
    Ntfy {
        /// The topic URL (the topic is a credential on a public server).
        url: Url,
        /// Bearer token, for a protected topic.
        token: Option<Secret>,
    },
    /// Gotify: `POST {url}/message`.
    Gotify {
        /// The server's base URL.
        url: Url,
        /// The application token.
        token: Secret,
    },
    /// A Discord webhook (its URL is the credential).
    Discord {
        /// The webhook URL.
        url: Url,
    },
    /// A Slack (or Mattermost) incoming webhook (its URL is the credential).
    Slack {
        /// The webhook URL.
        url: Url,
    },
    /// Telegram's `sendMessage`.
    Telegram {
        /// The Bot API base.
        api_url: Url,
        /// The bot token.
        token: Secret,
        /// The chat.
        chat_id: String,
    },
    /// Pushover's `messages.json`.
    Pushover {
        /// The API base.
        api_url: Url,
        /// The application token.
        token: Secret,
        /// The user or group key.
        user: Secret,
    },
    /// A program run without a shell, with the event in its environment.
    Command {
        /// Absolute path of the program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
}

impl ChannelKind {
    /// The kind's name, as `kind` says it.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Email { .. } => "email",
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Ntfy { .. } => "ntfy",
            ChannelKind::Gotify { .. } => "gotify",
            ChannelKind::Discord { .. } => "discord",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Pushover { .. } => "pushover",
            ChannelKind::Command { .. } => "command",
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind.name())
            .field("target", &self.target())
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Every kind a channel can be.
pub const KINDS: &[&str] = &[
    "email", "webhook", "ntfy", "gotify", "discord", "slack", "telegram", "pushover", "command",
];

impl Channel {
    /// Whether messages about `event` go to this channel.
    pub fn wants(&self, event: EventKind) -> bool {
        event == EventKind::Test || self.events.contains(&event)
    }

    /// Where the channel sends, for people: secrets and credential paths left out (a Discord,
    /// Slack or ntfy URL shows only its host; a webhook its URL without user, password or query).
    pub fn target(&self) -> String {
        let host = |url: &Url| url.host_str().unwrap_or_default().to_owned();
        match &self.kind {
            ChannelKind::Email { to } => to.join(", "),
            ChannelKind::Webhook { url, .. } | ChannelKind::Gotify { url, .. } => {
                let mut shown = url.clone();
                let _ = shown.set_username("");
                let _ = shown.set_password(None);
                shown.set_query(None);
                shown.set_fragment(None);
                shown.to_string()
            }
            ChannelKind::Ntfy { url, .. }
            | ChannelKind::Discord { url }
            | ChannelKind::Slack { url } => host(url),
            ChannelKind::Telegram { api_url, .. } | ChannelKind::Pushover { api_url, .. } => {
                host(api_url)
            }
            ChannelKind::Command { program, .. } => program.display().to_string(),
        }
    }
}

/// Where the messages of a monitor go: its `email` addresses (the built-in [`EMAIL`] channel),
/// the channels its registration names (`notify`), and the `default_channels`, each filtered by
/// its `events`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routes {
    channels: Vec<Channel>,
    defaults: Vec<String>,
    admin: Vec<String>,
}

/// One destination of a message: a channel, and for mail its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The channel's name ([`EMAIL`] for a registration's own addresses).
    pub channel: String,
    /// Mail addresses, for a mail channel; empty otherwise.
    pub recipients: Vec<String>,
}

impl Routes {
    /// The routes of `channels`, with `defaults` (names among them) for every monitor, and
    /// `admin` (`admin_email`) for messages about the server as a whole.
    pub fn new(channels: Vec<Channel>, defaults: Vec<String>, admin: Vec<String>) -> Routes {
        Routes {
            channels,
            defaults,
            admin,
        }
    }

    /// Where a message about the server as a whole goes: the admin's address and the default
    /// channels.
    pub fn server_targets(&self, kind: EventKind) -> Vec<Target> {
        self.targets(&self.admin, &[], kind)
    }

    /// The configured channels.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// The names of the configured channels.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.channels.iter().map(|channel| channel.name.as_str())
    }

    /// Where an event of `kind` about a monitor mailing `emails` and naming `notify` goes; each
    /// channel once.
    pub fn targets(&self, emails: &[String], notify: &[String], kind: EventKind) -> Vec<Target> {
        let mut targets = Vec::new();
        if !emails.is_empty() {
            targets.push(Target {
                channel: EMAIL.to_owned(),
                recipients: emails.to_vec(),
            });
        }
        for name in notify.iter().chain(&self.defaults) {
            if targets.iter().any(|target| &target.channel == name) {
                continue;
            }
            let Some(channel) = self.channels.iter().find(|channel| &channel.name == name) else {
                continue; // a name the configuration no longer has (checked at registration)
            };
            if !channel.wants(kind) {
                continue;
            }
            targets.push(Target {
                channel: channel.name.clone(),
                recipients: match &channel.kind {
                    ChannelKind::Email { to } => to.clone(),
                    _ => Vec::new(),
                },
            });
        }
        targets
    }
}

/// Validates the `[[channel]]` tables and `default_channels` (which must name channels).
///
/// # Errors
///
/// The first [`TableError`]: a missing or invalid field, a duplicate name, a default channel
/// that does not exist.
pub fn validate(
    raw: &[RawChannel],
    default_channels: &[String],
) -> Result<Vec<Channel>, TableError> {
    let mut channels = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for (index, table) in raw.iter().enumerate() {
        let label = table
            .name
            .clone()
            .unwrap_or_else(|| format!("#{} (no name)", index + 1));
        let channel = table.validate(&label)?;
        if !names.insert(channel.name.clone()) {
            return Err(TableError {
                kind: "channel",
                table: label,
                field: "name".into(),
                reason: "is used by an earlier [[channel]]; names must be unique".into(),
            });
        }
        channels.push(channel);
    }
    for name in default_channels {
        if !names.contains(name) {
            return Err(TableError {
                kind: "channel",
                table: "default_channels".into(),
                field: name.clone(),
                reason: format!(
                    "is not a channel; the [[channel]] tables name: {}",
                    list(names.iter())
                ),
            });
        }
    }
    Ok(channels)
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let mut names: Vec<&String> = names.collect();
    names.sort();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|name| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl RawChannel {
    fn validate(&self, label: &str) -> Result<Channel, TableError> {
        let error = |field: &str, reason: String| TableError {
            kind: "channel",
            table: label.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let name = self
            .name
            .clone()
            .ok_or_else(|| error("name", "is missing: every channel needs a name".into()))?;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(error(
                "name",
                format!("{name:?} is not a name: 1 to 64 letters, digits, `-`, `_` or `.`"),
            ));
        }
        if name == EMAIL {
            return Err(error(
                "name",
                "\"email\" is the channel of each registration's addresses; choose another name"
                    .into(),
            ));
        }
        let kind = self
            .kind
            .as_deref()
            .ok_or_else(|| error("kind", format!("is missing; one of {}", KINDS.join(", "))))?;
        let secret = |field: &str, value: &Option<String>| -> Result<Secret, TableError> {
            match value.as_deref().map(str::trim) {
                Some(value) if !value.is_empty() => Ok(Secret::new(value.to_owned())),
                _ => Err(error(
                    field,
                    format!("is missing (a {kind} channel needs it)"),
                )),
            }
        };
        let url = |field: &str, value: &Option<String>, default: Option<&str>| {
            let Some(text) = value.as_deref().or(default) else {
                return Err(error(
                    field,
                    format!("is missing (a {kind} channel needs it), e.g. https://host/path"),
                ));
            };
            let parsed = Url::parse(text).map_err(|why| {
                error(
                    field,
                    format!(
                        "{:?} is not a URL ({why}); expected http:// or https://",
                        redact(text)
                    ),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(error(
                    field,
                    format!(
                        "{:?} is not an http:// or https:// URL with a host",
                        redact(text)
                    ),
                ));
            }
            Ok(parsed)
        };
        let unused = |field: &str, present: bool| {
            if present {
                Err(error(
                    field,
                    format!("is not a setting of a {kind} channel"),
                ))
            } else {
                Ok(())
            }
        };
        unused("headers", !self.headers.is_empty() && kind != "webhook")?;
        unused("secret", self.secret.is_some() && kind != "webhook")?;
        unused("to", !self.to.is_empty() && kind != "email")?;
        unused("program", self.program.is_some() && kind != "command")?;
        unused("args", !self.args.is_empty() && kind != "command")?;
        unused("chat_id", self.chat_id.is_some() && kind != "telegram")?;
        unused("user", self.user.is_some() && kind != "pushover")?;
        unused(
            "api_url",
            self.api_url.is_some() && !matches!(kind, "telegram" | "pushover"),
        )?;
        unused(
            "url",
            self.url.is_some() && matches!(kind, "email" | "command" | "telegram" | "pushover"),
        )?;
        unused(
            "token",
            self.token.is_some() && !matches!(kind, "ntfy" | "gotify" | "telegram" | "pushover"),
        )?;
        let kind = match kind {
            "email" => {
                if self.to.is_empty() {
                    return Err(error("to", "is missing: the addresses to mail".into()));
                }
                for address in &self.to {
                    if address.parse::<lettre::Address>().is_err() {
                        return Err(error(
                            "to",
                            format!("{address:?} is not a mail address, e.g. me@example.com"),
                        ));
                    }
                }
                ChannelKind::Email {
                    to: self.to.clone(),
                }
            }
            "webhook" => {
                let mut headers = Vec::new();
                for (header, value) in &self.headers {
                    if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                        return Err(error(
                            "headers",
                            format!("{header:?} is not an HTTP header name"),
                        ));
                    }
                    if axum::http::HeaderValue::from_str(value).is_err() {
                        return Err(error(
                            "headers",
                            format!("the value of {header:?} is not a valid header value"),
                        ));
                    }
                    headers.push((header.clone(), Secret::new(value.clone())));
                }
                ChannelKind::Webhook {
                    url: url("url", &self.url, None)?,
                    headers,
                    secret: self.secret.clone().map(Secret::new),
                }
            }
            "ntfy" => ChannelKind::Ntfy {
                url: url("url", &self.url, None)?,
                token: self.token.clone().map(Secret::new),
            },
            "gotify" => ChannelKind::Gotify {
                url: url("url", &self.url, None)?,
                token: secret("token", &self.token)?,
            },
            "discord" => ChannelKind::Discord {
                url: url("url", &self.url, None)?,
            },
            "slack" => ChannelKind::Slack {
                url: url("url", &self.url, None)?,
            },
            "telegram" => ChannelKind::Telegram {
                api_url: url("api_url", &self.api_url, Some(TELEGRAM_API))?,
                token: secret("token", &self.token)?,
                chat_id: match &self.chat_id {
                    Some(ChatId::Number(id)) => id.to_string(),
                    Some(ChatId::Text(id)) if !id.trim().is_empty() => id.trim().to_owned(),
                    _ => {
                        return Err(error(
                            "chat_id",
                            "is missing: the chat to send to (a number, or @channelname)".into(),
                        ));
                    }
                },
            },
            "pushover" => ChannelKind::Pushover {
                api_url: url("api_url", &self.api_url, Some(PUSHOVER_API))?,
                token: secret("token", &self.token)?,
                user: secret("user", &self.user)?,
            },
            "command" => {
                let program = self.program.as_deref().ok_or_else(|| {
                    error(
                        "program",
                        "is missing: the absolute path of the program to run".into(),
                    )
                })?;
                let path = PathBuf::from(program);
                if !path.is_absolute() {
                    return Err(error(
                        "program",
                        format!(
                            "{program:?} is not an absolute path (commands run without a shell \
                             or a search path), e.g. /usr/local/bin/hc-action"
                        ),
                    ));
                }
                ChannelKind::Command {
                    program: path,
                    args: self.args.clone(),
                }
            }
            other => {
                return Err(error(
                    "kind",
                    format!("{other:?} is not a kind; one of {}", KINDS.join(", ")),
                ));
            }
        };
        let events = match &self.events {
            None => EventKind::ALL.to_vec(),
            Some(names) => {
                let mut events = Vec::with_capacity(names.len());
                for name in names {
                    let event = EventKind::ALL
                        .into_iter()
                        .find(|event| event.as_str() == name)
                        .ok_or_else(|| {
                            error(
                                "events",
                                format!(
                                    "{name:?} is not an event; the events are degraded, \
                                     unhealthy, recovered, reminder, flapping, storm and test"
                                ),
                            )
                        })?;
                    events.push(event);
                }
                events
            }
        };
        let timeout = match self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(seconds @ 1..=300) => Duration::from_secs(seconds),
            Some(seconds) => {
                return Err(error(
                    "timeout",
                    format!("{seconds} is out of range: from 1 to 300 seconds"),
                ));
            }
        };
        Ok(Channel {
            name,
            kind,
            events,
            timeout,
        })
    }
}

/// A URL as it may be shown in an error: without its user, password and query.
fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        // Unparseable: it may hold a password anywhere; show only its scheme.
        Err(_) => match text.split_once("://") {
            Some((scheme, _)) if scheme.len() <= 10 => format!("{scheme}://..."),
            _ => "(the value)".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml: &str) -> RawChannel {
        toml::from_str(toml).expect("a table")
    }

    fn one(toml: &str) -> Result<Channel, TableError> {
        validate(&[table(toml)], &[]).map(|mut channels| channels.remove(0))
    }

    #[test]
    fn every_kind_validates_with_its_settings() {
        let cases = [
            ("kind = 'email'\nto = ['me@example.com']", "email"),
            (
                "kind = 'webhook'\nurl = 'http://127.0.0.1:9/hook'\nsecret = 's'\nheaders = { X-Key = 'k' }",
                "webhook",
            ),
            (
                "kind = 'ntfy'\nurl = 'https://ntfy.sh/lab'\ntoken = 'tk'",
                "ntfy",
            ),
            (
                "kind = 'gotify'\nurl = 'http://gotify.lan'\ntoken = 'A1'",
                "gotify",
            ),
            (
                "kind = 'discord'\nurl = 'https://discord.com/api/webhooks/1/x'",
                "discord",
            ),
            (
                "kind = 'slack'\nurl = 'https://hooks.slack.com/services/T/B/X'",
                "slack",
            ),
            (
                "kind = 'telegram'\ntoken = '123:abc'\nchat_id = -100",
                "telegram",
            ),
            ("kind = 'pushover'\ntoken = 'app'\nuser = 'usr'", "pushover"),
            (
                "kind = 'command'\nprogram = '/usr/bin/true'\nargs = ['a']",
                "command",
            ),
        ];
        for (settings, kind) in cases {
            let channel = one(&format!("name = 'x'\n{settings}")).expect(kind);
            assert_eq!(channel.kind.name(), kind);
            assert_eq!(channel.events, EventKind::ALL, "every event by default");
            assert_eq!(channel.timeout, DEFAULT_TIMEOUT);
        }
    }

    #[test]
    fn mistakes_name_the_table_and_the_field() {
        let cases = [
            (
                "kind = 'ntfy'\nurl = 'https://ntfy.sh/x'",
                "#1 (no name)",
                "name",
            ),
            (
                "name = 'a b'\nkind = 'ntfy'\nurl = 'https://ntfy.sh/x'",
                "a b",
                "name",
            ),
            (
                "name = 'email'\nkind = 'ntfy'\nurl = 'https://ntfy.sh/x'",
                "email",
                "name",
            ),
            ("name = 'p'", "p", "kind"),
            ("name = 'p'\nkind = 'pager'", "p", "kind"),
            ("name = 'p'\nkind = 'ntfy'", "p", "url"),
            ("name = 'p'\nkind = 'ntfy'\nurl = 'ftp://x/y'", "p", "url"),
            (
                "name = 'p'\nkind = 'gotify'\nurl = 'http://g'",
                "p",
                "token",
            ),
            ("name = 'p'\nkind = 'telegram'\ntoken = 't'", "p", "chat_id"),
            ("name = 'p'\nkind = 'pushover'\ntoken = 't'", "p", "user"),
            (
                "name = 'p'\nkind = 'command'\nprogram = 'hc-action'",
                "p",
                "program",
            ),
            (
                "name = 'p'\nkind = 'email'\nto = ['not an address']",
                "p",
                "to",
            ),
            (
                "name = 'p'\nkind = 'ntfy'\nurl = 'https://n/x'\nevents = ['down']",
                "p",
                "events",
            ),
            (
                "name = 'p'\nkind = 'ntfy'\nurl = 'https://n/x'\ntimeout = 0",
                "p",
                "timeout",
            ),
            (
                "name = 'p'\nkind = 'ntfy'\nurl = 'https://n/x'\nprogram = '/bin/sh'",
                "p",
                "program",
            ),
            (
                "name = 'p'\nkind = 'command'\nprogram = '/bin/true'\nurl = 'http://x'",
                "p",
                "url",
            ),
            (
                "name = 'p'\nkind = 'webhook'\nurl = 'http://x'\nheaders = { 'Bad Header' = 'v' }",
                "p",
                "headers",
            ),
        ];
        for (toml, table, field) in cases {
            let error = one(toml).expect_err(toml);
            assert_eq!(
                (error.table.as_str(), error.field.as_str()),
                (table, field),
                "{toml}: {error}"
            );
        }
        let twice = [
            table("name = 'a'\nkind = 'slack'\nurl = 'https://s/x'"),
            table("name = 'a'\nkind = 'slack'\nurl = 'https://s/y'"),
        ];
        assert_eq!(validate(&twice, &[]).expect_err("duplicate").field, "name");
        let error = validate(&twice[..1], &["ghost".to_owned()]).expect_err("unknown default");
        assert!(error.to_string().contains("default_channels"), "{error}");
        assert!(error.to_string().contains("a"), "{error}");
    }

    #[test]
    fn secrets_never_show_in_errors_or_targets() {
        let error =
            one("name = 'w'\nkind = 'webhook'\nurl = 'http://user:hunter2@[bad/x?key=hunter2'")
                .expect_err("bad URL");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let channel = one(
            "name = 'w'\nkind = 'webhook'\nurl = 'http://user:hunter2@hooks.lan/x?key=hunter2'\nheaders = { Authorization = 'Bearer hunter2' }",
        )
        .expect("valid");
        assert_eq!(channel.target(), "http://hooks.lan/x");
        assert!(!format!("{channel:?}").contains("hunter2"), "{channel:?}");
        let discord =
            one("name = 'd'\nkind = 'discord'\nurl = 'https://discord.com/api/webhooks/1/hunter2'")
                .expect("valid");
        assert_eq!(discord.target(), "discord.com");
    }

    #[test]
    fn routes_join_email_notify_and_defaults_each_once_and_filtered() {
        let channels = validate(
            &[
                table("name = 'phone'\nkind = 'ntfy'\nurl = 'https://n/x'\nevents = ['unhealthy', 'recovered']"),
                table("name = 'ops'\nkind = 'email'\nto = ['ops@example.com']"),
                table("name = 'hook'\nkind = 'webhook'\nurl = 'http://h/x'"),
            ],
            &["hook".to_owned()],
        )
        .expect("valid");
        let routes = Routes::new(channels, vec!["hook".to_owned()], Vec::new());
        let names = |targets: Vec<Target>| {
            targets
                .into_iter()
                .map(|target| (target.channel, target.recipients))
                .collect::<Vec<_>>()
        };
        let me = vec!["me@example.com".to_owned()];
        let notify = vec![
            "phone".to_owned(),
            "ops".to_owned(),
            "hook".to_owned(),
            "gone".to_owned(),
        ];
        assert_eq!(
            names(routes.targets(&me, &notify, EventKind::Unhealthy)),
            [
                ("email".to_owned(), me.clone()),
                ("phone".to_owned(), vec![]),
                ("ops".to_owned(), vec!["ops@example.com".to_owned()]),
                ("hook".to_owned(), vec![]),
            ]
        );
        assert_eq!(
            names(routes.targets(&[], &notify, EventKind::Degraded)),
            [
                ("ops".to_owned(), vec!["ops@example.com".to_owned()]),
                ("hook".to_owned(), vec![]),
            ],
            "phone wants no degrades"
        );
        assert_eq!(
            names(routes.targets(&[], &[], EventKind::Reminder)),
            [("hook".to_owned(), vec![])]
        );
    }

    #[test]
    fn event_filters_and_test_events() {
        let channel = one(
            "name = 'n'\nkind = 'ntfy'\nurl = 'https://n/x'\nevents = ['unhealthy', 'recovered']",
        )
        .expect("valid");
        assert!(channel.wants(EventKind::Unhealthy));
        assert!(!channel.wants(EventKind::Degraded));
        assert!(
            channel.wants(EventKind::Test),
            "a test goes whatever the filter"
        );
    }
}
