//! The outbox worker: sends the messages that are due, at least once, and never blocks a check.
//!
//! Every message is in the store's outbox before anyone tries to send it: the monitors write it
//! in the transaction of the transition that caused it, and the store wakes this worker after the
//! commit. A round reads the pending messages in the order they are due, renders and sends what
//! is due, and marks each one in the store as the very next step after the relay's answer:
//! delivered (never sent again, even after a restart), retry (due again after a backoff), or
//! failed. So a crash or a restart at any point loses nothing: at worst a mail the relay accepted
//! in the few milliseconds before the crash is sent again, with the same `Message-ID` (mail
//! clients show it once).
//!
//! # Retries
//!
//! A transient failure (relay unreachable, timeout, TLS trouble, a 4xx answer) makes a mail due
//! again after [`backoff`]: 1 s, 2 s, 4 s, ... doubling up to [`BACKOFF_MAX`], so mail goes out
//! within a minute of the relay coming back. A mail still failing [`GIVE_UP_AFTER`] after it was
//! written is given up (an alert that old is not worth sending). A permanent failure (a 5xx answer,
//! an address the relay or lettre refuses) is marked failed at once and logged with the monitor's
//! name.
//!
//! # Storms
//!
//! When many apps fail at once (a switch dies), every owner would get a mail per app. Instead, mail
//! is coalesced per recipient list: the first mail to a list goes out at once; mails to the same
//! list that become due within [`COALESCE_WINDOW`] after a successful send wait for the window to
//! end and go out together as one digest (the window is [`NotifyOptions::coalesce_window`](super::NotifyOptions)) (at most [`DIGEST_MAX`] mails each; more make further
//! digests, one per window). So a recipient gets at most one mail per window, the first one without
//! delay; and the relay sees at most one mail per recipient list per window. Independently, at most
//! [`smtp::MAX_CONNECTIONS`] mails are sent at once. A digest loses the per-incident threading of
//! the mails in it (it has its own `Message-ID`); later mails still thread to their incident.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::smtp::{self, Mailer, SendError};
use super::{OutgoingMail, Payload, render, sleep_until};
use crate::store::{QueuedMessage, Store};

/// After a successful send to a recipient list, further mail to it within this window is
/// coalesced into one digest sent at the end of the window.
pub const COALESCE_WINDOW: Duration = Duration::from_secs(10);

/// Most mails in one digest.
pub const DIGEST_MAX: usize = 50;

/// Pending mails read per round.
pub const DUE_BATCH: usize = 200;

/// The wait after the first failed attempt; it doubles with each further one.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);

/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A mail that still fails this long after it was written is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// At shutdown, how long the last attempt to send pending mail may take.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// The wait before attempt `attempts + 1`, after `attempts` failed ones (at least one).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

/// The recipient list as one key: lower-cased, sorted, without duplicates.
pub fn recipients_key(recipients: &[String]) -> String {
    let mut list: Vec<String> = recipients.iter().map(|r| r.trim().to_lowercase()).collect();
    list.sort();
    list.dedup();
    list.join(", ")
}

/// A mail of the outbox, rendered, with its place in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// The outbox entry, for the `mark_*` calls.
    pub id: i64,
    /// The mail.
    pub mail: OutgoingMail,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it is due (again).
    pub next_attempt_at: DateTime<Utc>,
    /// Its group (a host's alerts), when it has one.
    pub group: Option<String>,
}

/// Mails to send as one: a single mail, or several for one recipient list (a digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The recipient list (see [`recipients_key`]).
    pub key: String,
    /// The outbox entries, oldest first.
    pub rows: Vec<QueuedMail>,
}

/// What to do with the mail that is due.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Send these now.
    pub send: Vec<Batch>,
    /// Mail is waiting for a coalescing window that ends then.
    pub wake_at: Option<DateTime<Utc>>,
}

/// Groups the due mail by recipient list and decides what goes now: a list that had a mail
/// within `window` before `now` waits for the window to end; any other list gets its mail now, as
/// one mail or one digest. Pure.
pub fn plan(
    due: Vec<QueuedMail>,
    now: DateTime<Utc>,
    last_sent: &HashMap<String, DateTime<Utc>>,
    window: Duration,
) -> Plan {
    let mut groups: Vec<Batch> = Vec::new();
    for row in due {
        let key = recipients_key(&row.mail.recipients);
        match groups.iter_mut().find(|batch| batch.key == key) {
            Some(batch) => batch.rows.push(row),
            None => groups.push(Batch {
                key,
                rows: vec![row],
            }),
        }
    }
    let mut plan = Plan::default();
    for mut batch in groups {
        if let Some(open_until) = last_sent
            .get(&batch.key)
            .map(|sent| *sent + window)
            .filter(|end| *end > now)
        {
            plan.wake_at = Some(plan.wake_at.map_or(open_until, |at| at.min(open_until)));
            continue;
        }
        batch.rows.truncate(DIGEST_MAX);
        plan.send.push(batch);
    }
    plan
}

/// One mail that stands for several: each one's subject in the subject, each one in the body.
/// Its `Message-ID` is made of the outbox ids it stands for, so a digest sent again after a
/// restart carries the same one.
pub fn digest(rows: &[QueuedMail], now: DateTime<Utc>, host: &str) -> OutgoingMail {
    let headlines: Vec<&str> = rows
        .iter()
        .map(|row| {
            row.mail
                .subject
                .strip_prefix(render::SUBJECT_TAG)
                .unwrap_or(&row.mail.subject)
                .trim()
        })
        .collect();
    // The alerts of one host that went out together say so.
    let host_group = rows
        .first()
        .and_then(|row| row.group.as_deref())
        .filter(|group| rows.iter().all(|row| row.group.as_deref() == Some(group)))
        .and_then(|group| group.rsplit_once(' '));
    let subject = match host_group {
        Some((host, kind)) => render::one_line(
            &format!(
                "{} {host}: {} apps {}",
                render::SUBJECT_TAG,
                rows.len(),
                if kind == "recovered" {
                    "HEALTHY again"
                } else {
                    "UNHEALTHY"
                }
            ),
            200,
        ),
        None => render::one_line(
            &format!(
                "{} {} alerts: {}",
                render::SUBJECT_TAG,
                rows.len(),
                headlines.join(", ")
            ),
            200,
        ),
    };
    let mut body = format!(
        "{} alerts for you arrived within a short time; here they are in one mail, oldest first.\n",
        rows.len()
    );
    for (row, headline) in rows.iter().zip(&headlines) {
        body.push_str("\n==== ");
        body.push_str(headline);
        body.push_str(" ====\n\n");
        body.push_str(&row.mail.body);
    }
    let first = rows.first().map_or(0, |row| row.id);
    let last = rows.last().map_or(0, |row| row.id);
    OutgoingMail {
        monitor: rows
            .iter()
            .map(|row| row.mail.monitor.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        recipients: rows
            .first()
            .map(|row| row.mail.recipients.clone())
            .unwrap_or_default(),
        subject,
        body,
        message_id: format!(
            "<hc.digest.{first}-{last}.{}@{}>",
            rows.len(),
            render::safe_host(host)
        ),
        in_reply_to: None,
        references: Vec::new(),
        created_at: now,
    }
}

/// The outbox worker (see the module documentation).
pub(crate) struct Worker {
    pub(crate) store: Store,
    pub(crate) mailer: Mailer,
    /// The channels whose messages are mail: `email` and every `kind = "email"` channel.
    pub(crate) channels: Vec<String>,
    /// Changed by the store after a commit that put messages in the outbox.
    pub(crate) wake: watch::Receiver<u64>,
    pub(crate) host: String,
    pub(crate) server_url: String,
    /// The time zone of the times in mail (`timezone`).
    pub(crate) zone: crate::config::Zone,
    pub(crate) window: Duration,
    pub(crate) last_sent: HashMap<String, DateTime<Utc>>,
}

/// What became of one batch.
struct Sent {
    key: String,
    ok: bool,
}

impl Worker {
    /// Sends until `stop` (a round in progress finishes first); then tries once more to send
    /// everything that is due, within [`FLUSH_DEADLINE`].
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        loop {
            let wake_at = self.round(Utc::now(), false).await;
            let sleep = sleep_until(wake_at);
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = self.wake.changed() => {}
                () = sleep => {}
            }
        }
        tracing::debug!("shutdown: delivery: a last round for what is due");
        let flushed = tokio::time::timeout(FLUSH_DEADLINE, self.round(Utc::now(), true)).await;
        match (flushed.map(drop), self.store.pending_messages().await) {
            (_, Ok(0)) => {}
            (Ok(()), Ok(left)) => tracing::info!(
                "{left} message(s) not sent before shutdown (held, or waiting for a retry) stay in the outbox; they are sent after the next start"
            ),
            (Err(_), Ok(left)) => tracing::warn!(
                "sending pending messages took longer than {} s at shutdown; {left} message(s) stay in the outbox for the next start",
                FLUSH_DEADLINE.as_secs()
            ),
            (_, Err(error)) => tracing::warn!("cannot count the mail left in the outbox: {error}"),
        }
    }

    /// One round: reads the pending messages, sends what is due (with `flush`: without the
    /// coalescing window), and says when to come back.
    async fn round(&mut self, now: DateTime<Utc>, flush: bool) -> Option<DateTime<Utc>> {
        let horizon = now + chrono::Duration::days(3650);
        let mut rows = Vec::new();
        let mut full = false;
        for channel in &self.channels {
            match self.store.due_messages(channel, horizon, DUE_BATCH).await {
                Ok(more) => {
                    full |= more.len() == DUE_BATCH;
                    rows.extend(more);
                }
                Err(error) => {
                    tracing::error!("cannot read the outbox: {error}");
                    return Some(now + BACKOFF_FIRST);
                }
            }
        }
        rows.sort_by_key(|row| (row.next_attempt_at, row.id));
        let (due, future): (Vec<QueuedMessage>, Vec<QueuedMessage>) =
            rows.into_iter().partition(|row| row.next_attempt_at <= now);
        let next_future = future.first().map(|row| row.next_attempt_at);
        let due = self.mails(due).await;
        if due.is_empty() {
            return if full { Some(now) } else { next_future };
        }
        if let Mailer::Log { why } = self.mailer {
            for row in &due {
                log_mail(&row.mail, why);
                if let Err(error) = self.store.mark_logged(row.id, Utc::now()).await {
                    tracing::error!(monitor = %row.mail.monitor, "cannot mark a logged mail in the outbox: {error}");
                }
            }
            return if full { Some(now) } else { next_future };
        }
        let window = if flush { Duration::ZERO } else { self.window };
        self.last_sent.retain(|_, sent| *sent + window > now);
        let plan = plan(due, now, &self.last_sent, window);
        let sent_any = !plan.send.is_empty();
        let results: Vec<Sent> = futures_util::stream::iter(plan.send)
            .map(|batch| self.deliver(batch))
            .buffer_unordered(smtp::MAX_CONNECTIONS as usize)
            .collect()
            .await;
        for sent in results.into_iter().filter(|sent| sent.ok) {
            self.last_sent.insert(sent.key, Utc::now());
        }
        if sent_any {
            // Come back at once: more may be due (a full batch), and the mail that failed just
            // now is due again at a time only the next read of the outbox shows.
            return Some(now);
        }
        [plan.wake_at, next_future].into_iter().flatten().min()
    }

    /// The due messages as mails to send. A message that cannot be one (a channel this server
    /// does not have, a payload it cannot read) is given up, with the reason in the log and the
    /// outbox.
    async fn mails(&self, due: Vec<QueuedMessage>) -> Vec<QueuedMail> {
        let mut mails = Vec::with_capacity(due.len());
        for row in due {
            let QueuedMessage {
                id,
                message,
                attempts,
                next_attempt_at,
                ..
            } = row;
            let group = message.group.clone();
            let mail = if self.channels.contains(&message.channel) {
                serde_json::from_str::<Payload>(&message.payload)
                    .map_err(|error| {
                        tracing::debug!("unreadable payload: {}", message.payload);
                        format!("unreadable message: {error}")
                    })
                    .map(|payload| match payload {
                        Payload::Event(event) => {
                            let rendered = render::render_in(&event, &self.server_url, self.zone);
                            let thread: Vec<String> = event
                                .thread
                                .iter()
                                .map(|id| render::message_id(id, &self.host))
                                .collect();
                            OutgoingMail {
                                monitor: message.monitor.clone(),
                                recipients: message.recipients.clone(),
                                subject: rendered.subject,
                                body: rendered.body,
                                message_id: render::message_id(&event.id, &self.host),
                                in_reply_to: thread.last().cloned(),
                                references: thread,
                                created_at: message.created_at,
                            }
                        }
                        Payload::Rendered { mail } => OutgoingMail {
                            monitor: message.monitor.clone(),
                            recipients: message.recipients.clone(),
                            subject: mail.subject,
                            body: mail.body,
                            message_id: mail.message_id,
                            in_reply_to: mail.in_reply_to,
                            references: mail.references,
                            created_at: message.created_at,
                        },
                    })
            } else {
                Err(format!(
                    "this server has no channel {:?} (it was removed from the configuration)",
                    message.channel
                ))
            };
            match mail {
                Ok(mail) => mails.push(QueuedMail {
                    id,
                    mail,
                    attempts,
                    next_attempt_at,
                    group,
                }),
                Err(error) => {
                    tracing::error!(monitor = %message.monitor, "message {id} given up: {error}");
                    if let Err(error) = self.store.mark_failed(id, Utc::now(), &error).await {
                        tracing::error!("cannot update the outbox: {error}");
                    }
                }
            }
        }
        mails
    }

    /// Sends one batch and marks its mails.
    async fn deliver(&self, batch: Batch) -> Sent {
        let mail = match batch.rows.as_slice() {
            [one] => one.mail.clone(),
            rows => digest(rows, Utc::now(), &self.host),
        };
        let result = self.mailer.send(&mail).await;
        let now = Utc::now();
        let ok = result.is_ok();
        for row in &batch.rows {
            let monitor = row.mail.monitor.as_str();
            let marked = match &result {
                Ok(()) => {
                    tracing::info!(monitor, "mail sent to {}: {}", batch.key, row.mail.subject);
                    self.store.mark_delivered(row.id, now).await
                }
                Err(SendError::Permanent(error)) => {
                    tracing::error!(
                        monitor,
                        "mail to {} given up, the relay refused it: {error} ({})",
                        batch.key,
                        row.mail.subject
                    );
                    self.store.mark_failed(row.id, now, error).await
                }
                Err(SendError::Transient(error)) => {
                    let attempts = row.attempts.saturating_add(1);
                    let age = (now - row.mail.created_at).to_std().unwrap_or_default();
                    if age >= GIVE_UP_AFTER {
                        tracing::error!(
                            monitor,
                            "mail to {} given up after {attempts} attempts in {}: {error} ({})",
                            batch.key,
                            render::human_duration(age),
                            row.mail.subject
                        );
                        self.store.mark_failed(row.id, now, error).await
                    } else {
                        let wait = backoff(attempts);
                        tracing::warn!(
                            monitor,
                            "mail to {} not sent yet (attempt {attempts}, next in {} s): {error}",
                            batch.key,
                            wait.as_secs()
                        );
                        self.store.mark_retry(row.id, now + wait, error).await
                    }
                }
            };
            if let Err(error) = marked {
                tracing::error!(monitor, "cannot update the mail outbox: {error}");
            }
        }
        Sent { key: batch.key, ok }
    }
}

/// Writes a mail to the log in place of sending it, marked so nobody mistakes it for sent mail.
pub(crate) fn log_mail(mail: &OutgoingMail, why: &str) {
    tracing::info!(
        monitor = %mail.monitor,
        "MAIL (not sent: {why}) To: {} Subject: {}\n{}",
        mail.recipients.join(", "),
        mail.subject,
        mail.body
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_715_000 + secs, 0).expect("valid time")
    }

    fn row(id: i64, to: &[&str]) -> QueuedMail {
        QueuedMail {
            id,
            mail: OutgoingMail {
                monitor: format!("app{id}"),
                recipients: to.iter().map(|r| (*r).to_owned()).collect(),
                subject: format!("[healthchecker] app{id} is UNHEALTHY"),
                body: format!("app{id} is UNHEALTHY.\n"),
                message_id: format!("<{id}@h>"),
                in_reply_to: None,
                references: Vec::new(),
                created_at: at(0),
            },
            attempts: 0,
            next_attempt_at: at(0),
            group: None,
        }
    }

    #[test]
    fn backoff_doubles_from_a_second_up_to_a_minute() {
        let table = [
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (5, 16),
            (6, 32),
            (7, 60),
            (8, 60),
            (1000, 60),
        ];
        for (attempts, secs) in table {
            assert_eq!(backoff(attempts), Duration::from_secs(secs), "{attempts}");
        }
        assert_eq!(backoff(0), BACKOFF_FIRST);
    }

    #[test]
    fn recipient_lists_match_whatever_their_order_and_case() {
        assert_eq!(
            recipients_key(&["B@x.org".into(), "a@x.org".into(), "b@x.org".into()]),
            "a@x.org, b@x.org"
        );
    }

    #[test]
    fn the_first_mail_to_a_list_goes_at_once_and_the_rest_wait_for_the_window() {
        let window = Duration::from_secs(10);
        let mut last_sent = HashMap::new();
        // nothing sent lately: one mail alone, several as one digest, lists apart
        let due = vec![row(1, &["a@x"]), row(2, &["b@x"]), row(3, &["A@x"])];
        let plan1 = plan(due, at(0), &last_sent, window);
        assert_eq!(plan1.wake_at, None);
        let ids: Vec<Vec<i64>> = plan1
            .send
            .iter()
            .map(|batch| batch.rows.iter().map(|row| row.id).collect())
            .collect();
        assert_eq!(ids, [vec![1, 3], vec![2]]);
        // a@x was mailed at 0: its next mail waits until 10; b@x's goes at once
        last_sent.insert("a@x".to_owned(), at(0));
        let plan2 = plan(
            vec![row(4, &["a@x"]), row(5, &["c@x"])],
            at(3),
            &last_sent,
            window,
        );
        assert_eq!(plan2.wake_at, Some(at(10)));
        assert_eq!(plan2.send.len(), 1);
        assert_eq!(plan2.send[0].key, "c@x");
        // at the end of the window it goes
        let plan3 = plan(vec![row(4, &["a@x"])], at(10), &last_sent, window);
        assert_eq!(plan3.send.len(), 1);
        // a digest is bounded
        let many: Vec<QueuedMail> = (0..DIGEST_MAX as i64 + 5)
            .map(|id| row(id, &["d@x"]))
            .collect();
        let plan4 = plan(many, at(0), &last_sent, window);
        assert_eq!(plan4.send[0].rows.len(), DIGEST_MAX);
    }

    #[test]
    fn a_digest_lists_every_mail() {
        let rows = [row(1, &["a@x"]), row(2, &["a@x"])];
        let mail = digest(&rows, at(5), "host");
        assert_eq!(
            mail.subject,
            "[healthchecker] 2 alerts: app1 is UNHEALTHY, app2 is UNHEALTHY"
        );
        assert!(
            mail.body
                .contains("==== app1 is UNHEALTHY ====\n\napp1 is UNHEALTHY.\n")
        );
        assert!(
            mail.body
                .contains("==== app2 is UNHEALTHY ====\n\napp2 is UNHEALTHY.\n")
        );
        assert_eq!(mail.recipients, ["a@x"]);
        assert_eq!(mail.monitor, "app1, app2");
        assert_eq!(
            mail.message_id, "<hc.digest.1-2.2@host>",
            "stable on a re-send"
        );
        assert_eq!(mail.in_reply_to, None);
    }
}
