//! Delivery: what the alert policy decided, sent on its channels, at least once and never lost.
//!
//! `notify` reacts to what the outbox holds; it never checks anything, never decides what to tell
//! (that is [`crate::alerting`], run by the monitors in the transaction of each transition) and
//! never blocks a check. One task, the **delivery worker**, sends what is due in the store's
//! outbox: it renders each message for its channel (mail: [`render`]), sends it through the SMTP
//! relay, retries transient failures with a backoff that doubles from 1 s up to 60 s, gives up on
//! permanent ones, coalesces storms into digests, and marks each message in the store as the very
//! next step after the relay accepted it (see `delivery`). It wakes when a commit put messages in
//! the outbox ([`crate::store::Store::outbox_changed`]) and when a message falls due (a held
//! degrade, a retry).
//!
//! Without `smtp_url`, or in test mode, mail is written to the log instead (`MAIL (not sent: test
//! mode) To: ... Subject: ...` and the body) and marked as logged in the outbox.
//!
//! # Wiring
//!
//! ```no_run
//! # use healthchecker_server::{Config, notify::Notifier, store::{Store, StoreOptions}};
//! # use tokio_util::{sync::CancellationToken, task::TaskTracker};
//! # async fn wire(config: Config) -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(&config.data_dir, StoreOptions::from(&config))?;
//! let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
//! let notifier = Notifier::spawn(&config, store.clone(), "http://192.168.1.5:8080".into(),
//!                                stop.clone(), &tasks)?;
//! // ... the monitors write messages into the store's outbox with their checks ...
//! stop.cancel();   // at shutdown: the worker finishes the attempt in progress, tries once more
//! tasks.close();   // to send what is due (within notify::FLUSH_DEADLINE), then ends
//! tasks.wait().await;
//! store.close().await?;
//! # Ok(()) }
//! ```

pub mod channels;
pub mod delivery;
pub mod render;
mod smtp;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use delivery::{
    BACKOFF_FIRST, BACKOFF_MAX, COALESCE_WINDOW, DIGEST_MAX, FLUSH_DEADLINE, GIVE_UP_AFTER, backoff,
};
pub use smtp::{COMMAND_TIMEOUT, MAX_CONNECTIONS, SEND_TIMEOUT};

use crate::Config;
use crate::alerting::Event;
use crate::config::channel::{Channel, ChannelKind, EMAIL};
use crate::store::Store;

/// What a message of the outbox carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    /// An event, rendered for its channel when it is sent.
    Event(Box<Event>),
    /// A mail rendered already, by a server before version 2 of the store.
    Rendered {
        /// The mail.
        mail: RenderedMail,
    },
}

/// A mail as a server before version 2 of the store kept it in its outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedMail {
    /// The subject line.
    pub subject: String,
    /// The text body.
    pub body: String,
    /// The `Message-ID` header.
    pub message_id: String,
    /// The `In-Reply-To` header.
    pub in_reply_to: Option<String>,
    /// The `References` header.
    pub references: Vec<String>,
}

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The app (or apps, for a digest) the mail is about.
    pub monitor: String,
    /// Addresses to send it to.
    pub recipients: Vec<String>,
    /// The subject line.
    pub subject: String,
    /// The text body.
    pub body: String,
    /// The `Message-ID` header: the same on every attempt.
    pub message_id: String,
    /// The `In-Reply-To` header: the previous mail of the incident.
    pub in_reply_to: Option<String>,
    /// The `References` header.
    pub references: Vec<String>,
    /// When it was written (its `Date`).
    pub created_at: DateTime<Utc>,
}

/// A fault that stops the notifier from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// lettre cannot make a transport of `smtp_url`.
    #[error("cannot use the SMTP relay {url}: {source}")]
    Transport {
        /// The URL, password hidden.
        url: String,
        /// What lettre said.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The sender is not a mailbox.
    #[error("invalid sender address `{value}`: expected e.g. healthchecker@example.com")]
    MailFrom {
        /// The value.
        value: String,
    },
    /// The HTTP client for the channels cannot be built.
    #[error("cannot build the HTTP client for the channels: {0}")]
    Http(#[source] reqwest::Error),
}

/// Why a test message did not go out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// No channel has that name.
    #[error("there is no channel {name:?}; the config file's channels are: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    Unknown {
        /// The name asked for.
        name: String,
        /// The channels there are.
        known: Vec<String>,
    },
    /// The receiver refused it, or could not be reached.
    #[error("channel {name:?}: {why}")]
    Failed {
        /// The channel.
        name: String,
        /// What happened.
        why: String,
    },
}

/// How the notifier behaves, beyond what [`Config`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotifyOptions {
    /// This server's base URL as apps reach it (e.g. `http://192.168.1.5:8080`), for the stop
    /// instructions in every mail.
    pub server_url: String,
    /// Mail to a recipient list within this time after a successful send to it is coalesced into
    /// one digest; [`COALESCE_WINDOW`] by default, zero turns coalescing off.
    pub coalesce_window: Duration,
}

impl NotifyOptions {
    /// The options of a server whose base URL is `server_url`.
    pub fn new(server_url: impl Into<String>) -> NotifyOptions {
        NotifyOptions {
            server_url: server_url.into(),
            coalesce_window: COALESCE_WINDOW,
        }
    }
}

/// A running notifier: a handle on its delivery workers, and a way to test a channel.
#[derive(Debug, Clone)]
pub struct Notifier {
    describe: String,
    channels: Vec<Channel>,
    sender: channels::send::Sender,
    mailer: smtp::Mailer,
    server_url: String,
    host: String,
    zone: crate::config::Zone,
}

impl Notifier {
    /// Starts the delivery worker on `tasks`.
    ///
    /// `config` gives `smtp_url`, `mail_from` and `test_mode`; `server_url` is this server's base
    /// URL as apps reach it, for the stop instructions in every mail. Messages already in the
    /// outbox (from before a restart) are sent at once. On `stop`, the worker finishes the attempt
    /// in progress, tries once more to send everything due within [`FLUSH_DEADLINE`], and ends;
    /// what could not be sent stays in the outbox for the next start.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Transport`] when lettre cannot use `smtp_url`, [`NotifyError::MailFrom`] when
    /// the sender is not a mailbox. Nothing is spawned then.
    pub fn spawn(
        config: &Config,
        store: Store,
        server_url: String,
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Notifier, NotifyError> {
        Notifier::spawn_with(config, NotifyOptions::new(server_url), store, stop, tasks)
    }

    /// [`Notifier::spawn`] with every option spelled out.
    ///
    /// # Errors
    ///
    /// As [`Notifier::spawn`].
    pub fn spawn_with(
        config: &Config,
        options: NotifyOptions,
        store: Store,
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Notifier, NotifyError> {
        let host = render::safe_host(
            &hostname::get()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let mailer = smtp::Mailer::new(
            config.smtp_url.as_ref(),
            config.mail_from.as_deref(),
            config.test_mode,
            &host,
        )?;
        let describe = match &mailer {
            smtp::Mailer::Smtp { relay, from, .. } => format!("sent through {relay} from {from}"),
            smtp::Mailer::Log { why } => format!("written to the log ({why})"),
        };
        let sender = channels::send::Sender::new().map_err(NotifyError::Http)?;
        let mail_channels = std::iter::once(EMAIL.to_owned())
            .chain(
                config
                    .channels
                    .iter()
                    .filter(|channel| matches!(channel.kind, ChannelKind::Email { .. }))
                    .map(|channel| channel.name.clone()),
            )
            .collect();
        let worker = delivery::Worker {
            wake: store.outbox_changed(),
            store: store.clone(),
            mailer: mailer.clone(),
            channels: mail_channels,
            host: host.clone(),
            server_url: options.server_url.clone(),
            zone: config.timezone,
            window: options.coalesce_window,
            last_sent: std::collections::HashMap::new(),
        };
        tasks.spawn(worker.run(stop.clone()));
        for channel in &config.channels {
            if matches!(channel.kind, ChannelKind::Email { .. }) {
                continue;
            }
            let worker = channels::worker::Worker {
                channel: channel.clone(),
                wake: store.outbox_changed(),
                store: store.clone(),
                sender: sender.clone(),
                server_url: options.server_url.clone(),
            };
            tasks.spawn(worker.run(stop.clone()));
        }
        Ok(Notifier {
            describe,
            channels: config.channels.clone(),
            sender,
            mailer,
            server_url: options.server_url,
            host,
            zone: config.timezone,
        })
    }

    /// The configured channels.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Sends a test message on the channel `name` at once, outside the outbox and whatever its
    /// `events` filter says, and tells what the receiver answered.
    ///
    /// # Errors
    ///
    /// [`TestError::Unknown`] when there is no such channel, [`TestError::Failed`] with the
    /// receiver's answer (or the transport's failure) when the message did not get through.
    pub async fn test(&self, name: &str) -> Result<String, TestError> {
        let channel = self
            .channels
            .iter()
            .find(|channel| channel.name == name)
            .ok_or_else(|| TestError::Unknown {
                name: name.to_owned(),
                known: self.channels.iter().map(|c| c.name.clone()).collect(),
            })?;
        let event = crate::alerting::Event::test(&channel.name, &self.server_url, Utc::now());
        if let ChannelKind::Email { to } = &channel.kind {
            let rendered = render::render_in(&event, &self.server_url, self.zone);
            let mail = OutgoingMail {
                monitor: "test".to_owned(),
                recipients: to.clone(),
                subject: rendered.subject,
                body: rendered.body,
                message_id: render::message_id(&event.id, &self.host),
                in_reply_to: None,
                references: Vec::new(),
                created_at: event.time,
            };
            return match &self.mailer {
                smtp::Mailer::Log { why } => {
                    delivery::log_mail(&mail, why);
                    Ok(format!("written to the log ({why})"))
                }
                smtp::Mailer::Smtp { relay, .. } => match self.mailer.send(&mail).await {
                    Ok(()) => Ok(format!("accepted by {relay} for {}", to.join(", "))),
                    Err(smtp::SendError::Permanent(why) | smtp::SendError::Transient(why)) => {
                        Err(TestError::Failed {
                            name: name.to_owned(),
                            why,
                        })
                    }
                },
            };
        }
        let Some(delivery) = channels::render(
            &channel.kind,
            &event,
            channels::Context {
                server_url: &self.server_url,
            },
        ) else {
            return Err(TestError::Failed {
                name: name.to_owned(),
                why: "this kind of channel cannot be tested".to_owned(),
            });
        };
        match self.sender.send(&delivery, channel.timeout).await {
            channels::send::Sent::Delivered { summary, .. } => Ok(summary),
            channels::send::Sent::Transient(why) | channels::send::Sent::Permanent(why) => {
                Err(TestError::Failed {
                    name: name.to_owned(),
                    why,
                })
            }
        }
    }

    /// Where mail goes, for the start-up log: `sent through smtp://relay:25 from ...` or
    /// `written to the log (test mode)`.
    pub fn describe(&self) -> &str {
        &self.describe
    }
}

/// Sleeps until `at` (now when it is past), or for ever when `None`.
async fn sleep_until(at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => {
            let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait).await;
        }
        None => std::future::pending().await,
    }
}
