//! The delivery loop of one channel: its own task, so a slow or dead channel delays nobody else.
//!
//! A round reads the channel's due messages, oldest first, renders each one for the channel and
//! sends it, one at a time (so one receiver sees them in order), and marks it in the store as
//! the next step after the answer: delivered, tried again after [`backoff`] (1 s doubling to
//! 1 min, for up to [`GIVE_UP_AFTER`]), or given up (a permanent refusal, logged and kept in the
//! outbox, where `GET /api/v1/channels` shows it).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::send::{Sender, Sent};
use super::{Context, render, render_group};
use crate::alerting::Event;
use crate::config::channel::Channel;
use crate::notify::delivery::{BACKOFF_FIRST, FLUSH_DEADLINE, GIVE_UP_AFTER, backoff};
use crate::notify::render::human_duration;
use crate::notify::{Payload, sleep_until};
use crate::store::{QueuedMessage, Store};

/// Messages read per round.
const ROUND: usize = 50;

/// One channel's worker.
pub(crate) struct Worker {
    pub(crate) channel: Channel,
    pub(crate) store: Store,
    pub(crate) sender: Sender,
    pub(crate) server_url: String,
    pub(crate) wake: watch::Receiver<u64>,
}

impl Worker {
    /// Delivers until `stop` (a delivery in progress finishes first), then makes one last round
    /// within [`FLUSH_DEADLINE`].
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        loop {
            let next = self.round(Utc::now()).await;
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = self.wake.changed() => {}
                () = sleep_until(next) => {}
            }
        }
        let _ = tokio::time::timeout(FLUSH_DEADLINE, self.round(Utc::now())).await;
    }

    /// Sends what is due; says when to come back.
    async fn round(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let horizon = now + chrono::Duration::days(3650);
        let rows = match self
            .store
            .due_messages(&self.channel.name, horizon, ROUND)
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(channel = %self.channel.name, "cannot read the outbox: {error}");
                return Some(now + BACKOFF_FIRST);
            }
        };
        let full = rows.len() == ROUND;
        let mut next = None;
        // Due messages of one group (a host's alerts) go out as one.
        let mut batches: Vec<Vec<QueuedMessage>> = Vec::new();
        for row in rows {
            if row.next_attempt_at > now {
                next = Some(row.next_attempt_at);
                break;
            }
            let batch = row.message.group.as_ref().and_then(|group| {
                batches
                    .iter_mut()
                    .find(|batch| batch[0].message.group.as_ref() == Some(group))
            });
            match batch {
                Some(batch) => batch.push(row),
                None => batches.push(vec![row]),
            }
        }
        let sent_any = !batches.is_empty();
        for batch in batches {
            self.deliver(batch).await;
        }
        // More may be due (a full round), and a retry is due at a time only the next read shows.
        if sent_any || full {
            return Some(Utc::now());
        }
        next
    }

    /// Delivers `rows`: one message for a group of a host's alerts when the channel's kind is
    /// read by people, else one per row.
    async fn deliver(&self, rows: Vec<QueuedMessage>) {
        let context = Context {
            server_url: &self.server_url,
        };
        let events: Vec<Option<Event>> = rows
            .iter()
            .map(
                |row| match serde_json::from_str::<Payload>(&row.message.payload) {
                    Ok(Payload::Event(event)) => Some(*event),
                    Ok(Payload::Rendered { .. }) | Err(_) => None,
                },
            )
            .collect();
        if rows.len() > 1
            && let Some(events) = events.iter().cloned().collect::<Option<Vec<Event>>>()
            && let Some(host) = rows[0]
                .message
                .group
                .as_deref()
                .and_then(|group| group.rsplit_once(' '))
                .map(|(host, _)| host)
            && let Some(delivery) = render_group(&self.channel.kind, host, &events, context)
        {
            let sent = self.sender.send(&delivery, self.channel.timeout).await;
            self.finish(&rows, sent).await;
            return;
        }
        for (row, event) in rows.iter().zip(events) {
            let delivery = event.and_then(|event| render(&self.channel.kind, &event, context));
            let Some(delivery) = delivery else {
                self.mark(
                    row.id,
                    &row.message.monitor,
                    Err("this channel cannot deliver the message (unreadable)".into()),
                )
                .await;
                continue;
            };
            let sent = self.sender.send(&delivery, self.channel.timeout).await;
            self.finish(std::slice::from_ref(row), sent).await;
        }
    }

    /// Marks `rows`, delivered together, with what the receiver said.
    async fn finish(&self, rows: &[QueuedMessage], sent: Sent) {
        let channel = &self.channel;
        let monitors = rows
            .iter()
            .map(|row| row.message.monitor.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let monitor = monitors.as_str();
        let result = match sent {
            Sent::Delivered { summary, output } => {
                tracing::info!(channel = %channel.name, monitor, "delivered ({summary})");
                if !output.trim().is_empty() {
                    tracing::info!(channel = %channel.name, monitor, "output: {}", output.trim_end());
                }
                Ok(())
            }
            Sent::Permanent(why) => Err(why),
            Sent::Transient(why) => {
                let oldest = rows.iter().map(|row| row.message.created_at).min();
                let attempts = rows
                    .iter()
                    .map(|row| row.attempts)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1);
                let age = oldest
                    .map(|oldest| (Utc::now() - oldest).to_std().unwrap_or_default())
                    .unwrap_or_default();
                if age < GIVE_UP_AFTER {
                    let wait = backoff(attempts);
                    tracing::warn!(
                        channel = %channel.name,
                        monitor,
                        "not delivered yet (attempt {attempts}, next in {} s): {why}",
                        wait.as_secs()
                    );
                    for row in rows {
                        self.retry(row.id, wait, &why).await;
                    }
                    return;
                }
                Err(format!(
                    "{why} (given up after {attempts} attempts in {})",
                    human_duration(age)
                ))
            }
        };
        for row in rows {
            self.mark(row.id, &row.message.monitor, result.clone())
                .await;
        }
    }

    async fn mark(&self, id: i64, monitor: &str, result: Result<(), String>) {
        let now = Utc::now();
        let marked = match &result {
            Ok(()) => self.store.mark_delivered(id, now).await,
            Err(why) => {
                tracing::error!(channel = %self.channel.name, monitor, "message given up: {why}");
                self.store.mark_failed(id, now, why).await
            }
        };
        if let Err(error) = marked {
            tracing::error!(channel = %self.channel.name, "cannot update the outbox: {error}");
        }
    }

    async fn retry(&self, id: i64, wait: Duration, why: &str) {
        let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        if let Err(error) = self.store.mark_retry(id, at, why).await {
            tracing::error!(channel = %self.channel.name, "cannot update the outbox: {error}");
        }
    }
}
