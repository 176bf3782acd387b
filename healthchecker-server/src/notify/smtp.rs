//! The way out: an SMTP relay through lettre, or the log (test mode, no `smtp_url`).
//!
//! `smtp_url` is handed to lettre's URL parser, which knows the forms the configuration documents:
//! `smtp://host[:port]` (plain, port 25), `smtp://host[:port]?tls=required` (STARTTLS, port 587),
//! `smtps://host[:port]` (implicit TLS, port 465), with `user:password@` percent-decoded. Every
//! SMTP command has a timeout ([`COMMAND_TIMEOUT`]) and a whole send another ([`SEND_TIMEOUT`]),
//! so a stuck relay only delays mail, never the checks.

use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::NotifyError;
use super::OutgoingMail;
use crate::config::SmtpUrl;

/// Longest wait for one SMTP reply.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest time one mail may take to send, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// SMTP connections kept open to the relay at most (also the most mails sent at once).
pub const MAX_CONNECTIONS: u32 = 4;

/// Why a send failed, and whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// Worth another attempt later: the relay is unreachable, timed out, or said 4xx.
    Transient(String),
    /// Never worth another attempt: the relay said 5xx, or the mail cannot be built.
    Permanent(String),
}

/// Where mail goes.
#[derive(Clone)]
pub(crate) enum Mailer {
    /// Sent through an SMTP relay.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        relay: String,
    },
    /// Written to the log; `why` says why (shown in every logged mail).
    Log { why: &'static str },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { relay, from, .. } => f
                .debug_struct("Smtp")
                .field("relay", relay)
                .field("from", &from.to_string())
                .finish_non_exhaustive(),
            Mailer::Log { why } => f.debug_struct("Log").field("why", why).finish(),
        }
    }
}

impl Mailer {
    /// The mailer the configuration asks for.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Transport`] when lettre refuses the URL, [`NotifyError::MailFrom`] when the
    /// sender is not a mailbox.
    pub(crate) fn new(
        smtp_url: Option<&SmtpUrl>,
        mail_from: Option<&str>,
        test_mode: bool,
        host: &str,
    ) -> Result<Mailer, NotifyError> {
        // Test mode first: it is what the user asked for, whatever else is configured.
        if test_mode {
            return Ok(Mailer::Log { why: "test mode" });
        }
        let Some(url) = smtp_url else {
            return Ok(Mailer::Log { why: "no smtp_url" });
        };
        let from = sender(mail_from, host)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose().as_str())
            .map_err(|source| NotifyError::Transport {
                url: url.to_string(),
                source,
            })?
            .timeout(Some(COMMAND_TIMEOUT))
            .pool_config(
                PoolConfig::new()
                    .max_size(MAX_CONNECTIONS)
                    .idle_timeout(Duration::from_secs(60)),
            )
            .build();
        Ok(Mailer::Smtp {
            transport,
            from,
            relay: url.to_string(),
        })
    }

    /// Sends one mail (SMTP mode).
    pub(crate) async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let Mailer::Smtp {
            transport, from, ..
        } = self
        else {
            return Ok(());
        };
        let message = build_message(mail, from).map_err(SendError::Permanent)?;
        match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
            Err(_) => Err(SendError::Transient(format!(
                "no answer from the SMTP relay within {} s",
                SEND_TIMEOUT.as_secs()
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if error.is_permanent() || error.is_client() => {
                Err(SendError::Permanent(describe(&error)))
            }
            Ok(Err(error)) => Err(SendError::Transient(describe(&error))),
        }
    }
}

/// A lettre error with its causes, on one line.
fn describe(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    super::render::one_line(&text, 300)
}

/// `mail_from`, or `healthchecker@<host>`.
fn sender(mail_from: Option<&str>, host: &str) -> Result<Mailbox, NotifyError> {
    let text = mail_from.map_or_else(|| format!("healthchecker@{host}"), str::to_owned);
    text.parse::<Mailbox>()
        .or_else(|_| {
            if mail_from.is_none() {
                "healthchecker@localhost".parse::<Mailbox>()
            } else {
                Err(lettre::address::AddressError::MissingParts)
            }
        })
        .map_err(|_| NotifyError::MailFrom { value: text })
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells auto-responders not to answer an alert.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// The lettre message of `mail`. Only typed builders: lettre encodes every value, so nothing in a
/// subject or a name can start a header of its own.
///
/// # Errors
///
/// Why it cannot be built (a recipient that is not an address), as text.
pub(crate) fn build_message(mail: &OutgoingMail, from: &Mailbox) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(super::render::one_line(&mail.subject, 900))
        .date(SystemTime::from(mail.created_at))
        .message_id(Some(mail.message_id.clone()))
        .header(AutoSubmitted);
    for recipient in &mail.recipients {
        let mailbox = recipient
            .parse::<Mailbox>()
            .map_err(|error| format!("invalid recipient {recipient:?}: {error}"))?;
        builder = builder.to(mailbox);
    }
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(parent.clone());
    }
    if !mail.references.is_empty() {
        builder = builder.references(mail.references.join(" "));
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|error| format!("cannot build the mail: {error}"))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            monitor: "nas".into(),
            recipients: vec!["me@example.com".into(), "you@example.com".into()],
            subject: "[healthchecker] nas is HEALTHY again".into(),
            body: "nas is HEALTHY again.\n.\nline\n".into(),
            message_id: "<hc.healthy.nas.1.0@host>".into(),
            in_reply_to: Some("<hc.unhealthy.nas.0.0@host>".into()),
            references: vec!["<hc.unhealthy.nas.0.0@host>".into()],
            created_at: DateTime::from_timestamp(1_763_715_000, 0).expect("time"),
        }
    }

    fn headers_of(message: &Message) -> String {
        let text = String::from_utf8(message.formatted()).expect("utf-8");
        text.split("\r\n\r\n").next().expect("headers").to_owned()
    }

    #[test]
    fn threads_and_recipients_are_in_the_headers() {
        let from: Mailbox = "healthchecker@host".parse().expect("mailbox");
        let message = build_message(&mail(), &from).expect("builds");
        let headers = headers_of(&message);
        for needle in [
            "From: healthchecker@host\r\n",
            "To: me@example.com, you@example.com\r\n",
            "Subject: [healthchecker] nas is HEALTHY again\r\n",
            "Message-ID: <hc.healthy.nas.1.0@host>\r\n",
            "In-Reply-To: <hc.unhealthy.nas.0.0@host>\r\n",
            "References: <hc.unhealthy.nas.0.0@host>\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "Date: Fri, 21 Nov 2025 08:50:00 +0000\r\n",
        ] {
            assert!(headers.contains(needle), "missing {needle:?} in\n{headers}");
        }
        assert_eq!(message.envelope().to().len(), 2);
    }

    #[test]
    fn hostile_subjects_cannot_add_headers() {
        let from: Mailbox = "healthchecker@host".parse().expect("mailbox");
        let mut hostile = mail();
        hostile.subject = "x\r\nBcc: victim@example.com\r\nX-Evil: 1".into();
        let message = build_message(&hostile, &from).expect("builds");
        let headers = headers_of(&message);
        for line in headers.split("\r\n") {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("X-Evil"),
                "{headers}"
            );
        }
        assert_eq!(message.envelope().to().len(), 2, "no extra recipient");
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_problem() {
        let from: Mailbox = "healthchecker@host".parse().expect("mailbox");
        let mut bad = mail();
        bad.recipients = vec!["not an address".into()];
        assert!(build_message(&bad, &from).is_err());
    }

    #[test]
    fn the_sender_defaults_to_the_host() {
        assert_eq!(
            sender(None, "nas.lan").expect("valid").to_string(),
            "healthchecker@nas.lan"
        );
        assert_eq!(
            sender(Some("HC <hc@example.com>"), "x")
                .expect("valid")
                .to_string(),
            "HC <hc@example.com>"
        );
        assert!(sender(Some("nope"), "x").is_err());
    }

    #[test]
    fn without_smtp_url_mail_is_logged() {
        assert!(matches!(
            Mailer::new(None, None, false, "h"),
            Ok(Mailer::Log { why: "no smtp_url" })
        ));
        assert!(matches!(
            Mailer::new(None, None, true, "h"),
            Ok(Mailer::Log { why: "test mode" })
        ));
    }
}
