//! Live events: what `GET /api/v1/events` streams (Server-Sent Events) to the dashboard and to
//! `log --follow`: each check, each transition, maintenance, and changes to the set of monitors.
//!
//! One `tokio::sync::broadcast` channel of [`CAPACITY`] events carries them. Publishing never
//! waits: the channel is a ring that overwrites its oldest event, so a reader that falls more
//! than [`CAPACITY`] events behind (a slow or stalled client) learns that it lagged on its next
//! read and is dropped by the API, and checking never slows down for it. Memory is the ring,
//! whatever the number of readers. Nothing is built when nobody listens ([`Events::publish`]
//! takes a closure).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::health::Transition;
use crate::registry::AppName;
use crate::store::LoggedCheck;

/// Events kept for readers that are behind: about two seconds of checks at 2,000 a second.
pub const CAPACITY: usize = 4096;

/// Something that happened to a monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A check was recorded (without its body).
    Check {
        /// The monitor.
        app: AppName,
        /// The check and the state after it.
        check: LoggedCheck,
    },
    /// The monitor changed state.
    Transition {
        /// The monitor.
        app: AppName,
        /// The change.
        transition: Transition,
    },
    /// The monitor's maintenance was set or ended.
    Maintenance {
        /// The monitor.
        app: AppName,
        /// Until when; `null`: ended.
        until: Option<DateTime<Utc>>,
        /// Why, as given.
        reason: Option<String>,
    },
    /// The monitor was registered, changed, paused, resumed or removed.
    Monitor {
        /// The monitor.
        app: AppName,
        /// What happened.
        change: Change,
    },
}

impl Event {
    /// The monitor it is about.
    pub fn app(&self) -> &AppName {
        match self {
            Event::Check { app, .. }
            | Event::Transition { app, .. }
            | Event::Maintenance { app, .. }
            | Event::Monitor { app, .. } => app,
        }
    }

    /// Its SSE event name (the `type` of its JSON).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Check { .. } => "check",
            Event::Transition { .. } => "transition",
            Event::Maintenance { .. } => "maintenance",
            Event::Monitor { .. } => "monitor",
        }
    }
}

/// What happened to the set of monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new monitor.
    Registered,
    /// A new definition.
    Updated,
    /// Checks stopped.
    Paused,
    /// Checks started again.
    Resumed,
    /// Forgotten.
    Removed,
}

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// A channel of [`CAPACITY`] events, nobody listening yet.
    pub fn new() -> Events {
        Events {
            sender: broadcast::Sender::new(CAPACITY),
        }
    }

    /// Sends the event `make` builds, if anyone listens; never waits.
    pub fn publish(&self, make: impl FnOnce() -> Event) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(make()));
        }
    }

    /// A reader of the events sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(name: &str) -> Event {
        Event::Monitor {
            app: AppName::parse(name).expect("name"),
            change: Change::Removed,
        }
    }

    #[test]
    fn nothing_is_built_without_readers() {
        let events = Events::new();
        events.publish(|| unreachable!("nobody listens"));
        let mut reader = events.subscribe();
        events.publish(|| removed("a"));
        let event = reader.try_recv().expect("one event");
        assert_eq!(event.app().as_str(), "a");
        assert_eq!(
            serde_json::to_value(&*event).expect("JSON"),
            serde_json::json!({"type": "monitor", "app": "a", "change": "removed"})
        );
    }

    /// A reader that falls behind is told it lagged; the sender never waited for it.
    #[test]
    fn a_slow_reader_lags_and_the_sender_goes_on() {
        let events = Events::new();
        let mut slow = events.subscribe();
        for n in 0..CAPACITY + 10 {
            events.publish(|| removed(&format!("m{n}")));
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(10))
        ));
    }
}
