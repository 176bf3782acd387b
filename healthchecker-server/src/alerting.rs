//! Who is told what, and when: the alert policy of one monitor, as a pure function.
//!
//! The monitors run it where a transition is made, under the monitor's lock, and write what it
//! decides in the same store transaction as the transition ([`crate::store::CheckWrite`]): the
//! monitor's new [`Alerting`] state and the [`Event`]s to deliver. So a transition and the
//! messages it causes are one unit: no crash, kill -9 or shutdown can keep the one and lose the
//! other, and a restarted server knows exactly which incident is open and what was told.
//!
//! No clock (every call is given `now`), no I/O. The rules:
//!
//! * **UNHEALTHY opens an incident and is told at once.** Within one incident `UNHEALTHY` is told
//!   once: a half-recovery to `DEGRADED` that falls back to `UNHEALTHY` is noted, not told again.
//! * **DEGRADED is held for one check.** Entering `DEGRADED` from `HEALTHY` (or `UNKNOWN`) writes
//!   its event due only at the end of a hold of `interval + timeout +` [`HOLD_SLACK`] from the check
//!   that caused it, the time the next check needs to report. Back to `HEALTHY` within the hold: a
//!   blip, the held event is withdrawn. On to `UNHEALTHY` within the hold: the held event is
//!   withdrawn and only the `UNHEALTHY` one goes (one failed check never causes two messages).
//!   Still `DEGRADED` when the hold ends: the held event goes out and opens the incident; a later
//!   `UNHEALTHY` follows in the same thread. The held event is a row of the durable outbox, so a
//!   hold survives a restart.
//! * **HEALTHY closes the incident** with a `recovered` event that gives the downtime. There is
//!   never a recovery without an event before it about the same incident.
//! * **Reminders**, when `remind_every` is set: while an incident's app stays `UNHEALTHY`, a
//!   `reminder` at the first check `remind_every` or more after the last `UNHEALTHY` event or
//!   reminder. None while it is recovering (`DEGRADED` after `UNHEALTHY`), none while it is paused
//!   (no checks), none after it is removed.
//! * **Threads**: the first event of an incident is its root; every later event lists the ones
//!   before it in [`Event::thread`] (root first, at most [`REFERENCES_MAX`]), which mail turns
//!   into `In-Reply-To` and `References`. Event ids are a function of the kind, the app and the
//!   time ([`event_id`]), so the same event always has the same id (a re-send is recognisable).
//!
//! * **Quiet times**: during a monitor's maintenance, and while a storm holds per-app alerts (see
//!   [`Quiet`]), changes are recorded but nothing is told, and a held degrade is withdrawn. When
//!   the quiet time is over, the first check **reconciles** what was told with the state: an app
//!   `UNHEALTHY` that nobody was told about is told now (one `unhealthy`), an incident whose app
//!   is `HEALTHY` again is closed with its `recovered`; anything else is left to the next change.
//! * **Flapping**: a monitor whose state changed more than `flap_changes` times within
//!   `flap_window` is flapping: one `flapping` event says so, and nothing is told per change
//!   until no change has happened for a whole window; then it is reconciled as after a quiet
//!   time. (An app failing every third check would otherwise toggle `HEALTHY`/`DEGRADED` for
//!   ever and never be reported: each degrade ends in a blip.)
//!
//! A paused or removed monitor forgets its state ([`Alerting::default`]), and the store withdraws
//! what it still had pending in the same transaction.

pub mod storm;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::config::channel::EventKind;
use crate::health::{Outcome, State, Transition};
use crate::registry::{AppName, MonitorSpec};
use crate::store::LoggedCheck;

/// Added to `interval + timeout` for the hold of a degrade: room for the next check's result to
/// arrive before the hold ends.
pub const HOLD_SLACK: Duration = Duration::from_secs(1);

/// Most earlier events listed in an event's thread (the root and the newest ones).
pub const REFERENCES_MAX: usize = 10;

/// Checks carried in an event at most (newest first).
pub const CHECKS_MAX: usize = 5;

/// The incident an event belongs to.
///
/// **Downtime** is defined here, once, and every message uses it: from the first failed check
/// of the incident (`opened_at`: the first of the checks in a row that were not a pass, up to
/// the one that changed the state) to the check that recovered it (`back_at`: the first of the
/// passed checks in a row that made it `HEALTHY` again), or to the event while it lasts. See
/// [`first_failed_check`], [`first_passed_check`] and [`downtime`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentInfo {
    /// The id of the incident's first event.
    pub id: String,
    /// When the app stopped being healthy: the first failed check of the incident.
    pub opened_at: DateTime<Utc>,
    /// For `recovered`: when it was back, the first of the passed checks that made it `HEALTHY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_at: Option<DateTime<Utc>>,
    /// Seconds from `opened_at` to `back_at` (for `recovered`: the whole downtime), or to this
    /// event while the incident lasts: [`downtime`].
    pub downtime_s: u64,
    /// Whether the app was `UNHEALTHY` in this incident (not only `DEGRADED`: it answered).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub was_unhealthy: bool,
}

/// When the failure that led to a change at `at` began: the first of the checks in a row, up to
/// `at`, that were not a pass (a warn or a fail), from `recent` (newest first); `at` when
/// `recent` does not reach back to it (after a restart only the last check is kept).
pub fn first_failed_check(recent: &[LoggedCheck], at: DateTime<Utc>) -> DateTime<Utc> {
    first_of_run(recent, at, |outcome| outcome != Outcome::Pass)
}

/// When an app was back: the first of the passed checks in a row, up to the change to
/// `HEALTHY` at `at`, from `recent` (newest first); `at` when `recent` does not reach back.
pub fn first_passed_check(recent: &[LoggedCheck], at: DateTime<Utc>) -> DateTime<Utc> {
    first_of_run(recent, at, |outcome| outcome == Outcome::Pass)
}

fn first_of_run(
    recent: &[LoggedCheck],
    at: DateTime<Utc>,
    belongs: impl Fn(Outcome) -> bool,
) -> DateTime<Utc> {
    recent
        .iter()
        .skip_while(|check| check.record.time > at)
        .take_while(|check| belongs(check.record.outcome))
        .map(|check| check.record.time)
        .last()
        .map_or(at, |first| first.min(at))
}

/// The downtime of an incident opened at `opened_at`, as of `until` (the check that recovered
/// it, or now): never negative.
pub fn downtime(opened_at: DateTime<Utc>, until: DateTime<Utc>) -> Duration {
    (until - opened_at).to_std().unwrap_or(Duration::ZERO)
}

/// Something to tell about one monitor: what every channel renders its message from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and stable ([`event_id`]): the mail's `Message-ID`, a webhook's idempotency key.
    pub id: String,
    /// What it says.
    pub kind: EventKind,
    /// The app.
    pub app: AppName,
    /// The URL that is checked.
    pub url: String,
    /// When it happened: the time of its transition; for a reminder, its own time.
    pub time: DateTime<Utc>,
    /// The change it is about (for a reminder: the one into `UNHEALTHY`).
    pub transition: Transition,
    /// The incident it belongs to.
    pub incident: IncidentInfo,
    /// The last checks before it, newest first (at most [`CHECKS_MAX`]).
    pub checks: Vec<LoggedCheck>,
    /// The ids of the incident's events before this one, root first (at most
    /// [`REFERENCES_MAX`]); empty for the first.
    pub thread: Vec<String>,
}

impl Event {
    /// A test message about the channel `channel`, sent by the server at `server_url`.
    pub fn test(channel: &str, server_url: &str, now: DateTime<Utc>) -> Event {
        let app =
            AppName::parse("healthchecker test").unwrap_or_else(|_| unreachable!("a valid name"));
        let id = event_id(EventKind::Test, channel, now);
        Event {
            incident: IncidentInfo {
                id: id.clone(),
                opened_at: now,
                back_at: None,
                downtime_s: 0,
                was_unhealthy: false,
            },
            id,
            kind: EventKind::Test,
            app,
            url: server_url.to_owned(),
            time: now,
            transition: Transition {
                time: now,
                from: State::Healthy,
                to: State::Healthy,
                reason: format!("test: a test message for the channel {channel}"),
            },
            checks: Vec::new(),
            thread: Vec::new(),
        }
    }
}

impl Event {
    /// The message of a storm: `failing` of `active` monitors failed at once, at `now`.
    pub fn storm(failing: usize, active: usize, now: DateTime<Utc>) -> Event {
        let app =
            AppName::parse("healthchecker-server").unwrap_or_else(|_| unreachable!("a valid name"));
        let id = event_id(EventKind::Storm, app.as_str(), now);
        Event {
            incident: IncidentInfo {
                id: id.clone(),
                opened_at: now,
                back_at: None,
                downtime_s: 0,
                was_unhealthy: false,
            },
            id,
            kind: EventKind::Storm,
            app,
            url: String::new(),
            time: now,
            transition: Transition {
                time: now,
                from: State::Healthy,
                to: State::Unhealthy,
                reason: format!(
                    "storm: {failing} of {active} monitors failed at once; is this server's \
                     network up? Alerts of single apps are held until it is over"
                ),
            },
            checks: Vec::new(),
            thread: Vec::new(),
        }
    }
}

/// An event and when it may be delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The event.
    pub event: Event,
    /// Not before this time: the end of the hold of a degrade, else the event's own time.
    pub due: DateTime<Utc>,
}

/// Something that happened and is logged rather than told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A degrade is held for one check before it is told.
    DegradeHeld {
        /// When the hold ends.
        until: DateTime<Utc>,
    },
    /// `HEALTHY` again within the hold of a degrade: a blip, not told.
    Blip,
    /// A half-recovery within an open incident (`UNHEALTHY` to `DEGRADED`): not told.
    Recovering,
    /// Back to `UNHEALTHY` within an incident whose `UNHEALTHY` was told already.
    StillInIncident,
    /// A change that needs no message (e.g. `UNKNOWN` to `HEALTHY`, or `HEALTHY` with nothing
    /// told before it).
    Quiet,
    /// An event was decided.
    Told(EventKind),
    /// A change in a quiet time: recorded, told later if it still matters.
    Quieted(Quiet),
    /// A change while flapping: not told.
    Flapping,
    /// No change for a whole window: the monitor no longer flaps.
    FlappingOver,
    /// A push monitor is late (`DEGRADED`): not told; `missed` (after its grace) is.
    Late,
}

/// Why nothing may be told about a monitor right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// It is in maintenance until then.
    Maintenance {
        /// The end of the window.
        until: DateTime<Utc>,
    },
    /// A storm holds per-app alerts (many monitors failed at once), or cleared too recently.
    Storm,
}

impl fmt::Display for Quiet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quiet::Maintenance { until } => {
                write!(
                    f,
                    "in maintenance until {}",
                    until.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }
            Quiet::Storm => f.write_str("held while many monitors fail at once"),
        }
    }
}

/// What the policy decided about one transition or check.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Events to deliver.
    pub send: Vec<Outgoing>,
    /// The id of a held event to withdraw from the outbox (a blip, or one superseded by
    /// `UNHEALTHY`).
    pub withdraw: Option<String>,
    /// What to log about it.
    pub note: Note,
}

impl Decision {
    fn note(note: Note) -> Decision {
        Decision {
            send: Vec::new(),
            withdraw: None,
            note,
        }
    }
}

/// What a monitor's policy is given about it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The app.
    pub app: &'a AppName,
    /// Its registration (interval and timeout for the hold, the checked URL).
    pub spec: &'a MonitorSpec,
    /// Its last checks, newest first.
    pub recent: &'a [LoggedCheck],
    /// Its state after the check.
    pub state: State,
    /// The change that brought it into that state, if it ever changed.
    pub last_transition: Option<&'a Transition>,
    /// Why nothing may be told now, if so.
    pub quiet: Option<Quiet>,
}

/// Server-wide settings of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Time between reminders while an app stays `UNHEALTHY`; `None`: no reminders.
    pub remind_every: Option<Duration>,
    /// More changes than this within `flap_window` make a monitor flapping; 0 turns it off.
    pub flap_changes: u32,
    /// See `flap_changes`.
    pub flap_window: Duration,
}

/// Default `flap_changes`.
pub const FLAP_CHANGES: u32 = 6;

/// Default `flap_window`: 30 minutes.
pub const FLAP_WINDOW: Duration = Duration::from_secs(30 * 60);

impl Default for Rules {
    fn default() -> Self {
        Rules {
            remind_every: None,
            flap_changes: FLAP_CHANGES,
            flap_window: FLAP_WINDOW,
        }
    }
}

/// A degrade whose event waits in the outbox for the end of its hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    /// The held event's id.
    event: String,
    /// The degrade's transition.
    since: DateTime<Utc>,
    /// The first failed check before it ([`first_failed_check`]); `since` in a state written
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_failed: Option<DateTime<Utc>>,
    /// When the hold ends and the event goes out.
    until: DateTime<Utc>,
}

/// An incident that something was told about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Incident {
    /// When the app stopped being healthy.
    opened_at: DateTime<Utc>,
    /// The transition into `UNHEALTHY` that was told; `None` while only a degrade was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unhealthy: Option<Transition>,
    /// The app is `UNHEALTHY` now (not recovering).
    unhealthy_now: bool,
    /// The incident's events so far, root first (bounded as [`REFERENCES_MAX`]).
    thread: Vec<String>,
    /// When the next reminder is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_reminder: Option<DateTime<Utc>>,
}

/// Where one monitor's alerting stands: a held degrade, an open incident, or nothing. Kept with
/// the monitor in the store; [`Alerting::default`] is nothing open.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Alerting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held: Option<Held>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incident: Option<Incident>,
    /// Changes happened in a quiet time or while flapping: reconcile when it is over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deferred: bool,
    /// Times of the recent changes (within `flap_window`, at most `flap_changes + 1`).
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    changes: VecDeque<DateTime<Utc>>,
    /// Since when the monitor flaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flapping: Option<DateTime<Utc>>,
}

impl Alerting {
    /// Whether nothing is held, no incident is open, nothing waits to be reconciled and no
    /// recent change is remembered.
    pub fn is_idle(&self) -> bool {
        self.held.is_none()
            && self.incident.is_none()
            && !self.deferred
            && self.changes.is_empty()
            && self.flapping.is_none()
    }

    /// Since when the monitor flaps, if it does.
    pub fn flapping_since(&self) -> Option<DateTime<Utc>> {
        self.flapping
    }

    /// Remembers a change at `at`, forgetting those older than the window.
    fn record_change(&mut self, at: DateTime<Utc>, rules: Rules) {
        if rules.flap_changes == 0 {
            self.changes.clear();
            return;
        }
        self.changes.push_back(at);
        self.forget_changes(at, rules);
        while self.changes.len() > rules.flap_changes as usize + 1 {
            self.changes.pop_front();
        }
    }

    fn forget_changes(&mut self, now: DateTime<Utc>, rules: Rules) {
        let window = chrono::Duration::from_std(rules.flap_window).unwrap_or(chrono::Duration::MAX);
        while self
            .changes
            .front()
            .is_some_and(|first| *first + window <= now)
        {
            self.changes.pop_front();
        }
    }

    /// Starts flapping when the recent changes are too many: one `flapping` event.
    fn start_flapping(
        &mut self,
        subject: Subject<'_>,
        transition: &Transition,
        rules: Rules,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        if self.flapping.is_some()
            || rules.flap_changes == 0
            || self.changes.len() <= rules.flap_changes as usize
        {
            return None;
        }
        self.flapping = Some(now);
        self.deferred = true;
        let withdraw = self.held.take().map(|held| held.event);
        let first = self.changes.front().copied().unwrap_or(now);
        let mut burst = Incident {
            opened_at: first,
            unhealthy: None,
            unhealthy_now: false,
            thread: Vec::new(),
            next_reminder: None,
        };
        let mut flapping = event(EventKind::Flapping, subject, transition, now, &mut burst);
        flapping.transition.reason = format!(
            "{} changes of state in {} min; no message per change until it is stable for {} min \
             (last: {})",
            self.changes.len(),
            (now - first).num_minutes().max(1),
            rules.flap_window.as_secs() / 60,
            transition.reason
        );
        Some(Decision {
            note: Note::Told(EventKind::Flapping),
            send: vec![Outgoing {
                event: flapping,
                due: now,
            }],
            withdraw,
        })
    }

    /// After a quiet time or flapping: tells what the state is, when it differs from what was
    /// told (see the module documentation).
    fn reconcile(
        &mut self,
        subject: Subject<'_>,
        rules: Rules,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        self.deferred = false;
        let transition = subject
            .last_transition
            .cloned()
            .unwrap_or_else(|| Transition {
                time: now,
                from: subject.state,
                to: subject.state,
                reason: "(the state when the quiet time ended)".to_owned(),
            });
        match subject.state {
            State::Unhealthy => {
                if let Some(incident) = &mut self.incident
                    && incident.unhealthy.is_some()
                {
                    incident.unhealthy_now = true;
                    return None;
                }
                let incident = self.incident.get_or_insert_with(|| Incident {
                    opened_at: first_failed_check(subject.recent, transition.time),
                    unhealthy: None,
                    unhealthy_now: true,
                    thread: Vec::new(),
                    next_reminder: None,
                });
                incident.unhealthy = Some(transition.clone());
                incident.unhealthy_now = true;
                incident.next_reminder = rules.remind_every.map(|every| now + every);
                let event = event(EventKind::Unhealthy, subject, &transition, now, incident);
                Some(told(event, now, None))
            }
            State::Healthy => {
                let mut incident = self.incident.take()?;
                let event = event(
                    EventKind::Recovered,
                    subject,
                    &transition,
                    now,
                    &mut incident,
                );
                Some(told(event, now, None))
            }
            State::Degraded | State::Unknown => {
                if let Some(incident) = &mut self.incident {
                    incident.unhealthy_now = false;
                }
                None
            }
        }
    }

    /// Whether an incident that something was told about is open.
    pub fn in_incident(&self) -> bool {
        self.incident.is_some()
    }

    /// The end of the hold of a degrade, if one is held.
    pub fn held_until(&self) -> Option<DateTime<Utc>> {
        self.held.as_ref().map(|held| held.until)
    }

    /// A held degrade whose hold is over was delivered (its row fell due): it opens the incident.
    fn settle(&mut self, now: DateTime<Utc>) {
        if let Some(held) = self.held.take_if(|held| held.until <= now) {
            self.incident = Some(Incident {
                opened_at: held.first_failed.unwrap_or(held.since),
                unhealthy: None,
                unhealthy_now: false,
                thread: vec![held.event],
                next_reminder: None,
            });
        }
    }

    /// Decides about one transition of the monitor, at `now`.
    pub fn on_transition(
        &mut self,
        subject: Subject<'_>,
        transition: &Transition,
        rules: Rules,
        now: DateTime<Utc>,
    ) -> Decision {
        self.settle(now);
        self.record_change(transition.time, rules);
        if let Some(decision) = self.start_flapping(subject, transition, rules, now) {
            return decision;
        }
        if self.flapping.is_some() || subject.quiet.is_some() {
            self.deferred = true;
            return Decision {
                send: Vec::new(),
                withdraw: self.held.take().map(|held| held.event),
                note: subject.quiet.map_or(Note::Flapping, Note::Quieted),
            };
        }
        // A change after a quiet time: the usual rules, from what was told.
        self.deferred = false;
        let held = self.held.take();
        match transition.to {
            State::Unhealthy => match &mut self.incident {
                Some(incident) if incident.unhealthy.is_some() => {
                    incident.unhealthy_now = true;
                    Decision::note(Note::StillInIncident)
                }
                Some(incident) => {
                    // Only the degrade was told: UNHEALTHY follows in its thread.
                    incident.unhealthy = Some(transition.clone());
                    incident.unhealthy_now = true;
                    incident.next_reminder = rules.remind_every.map(|every| now + every);
                    let event = event(
                        EventKind::Unhealthy,
                        subject,
                        transition,
                        transition.time,
                        incident,
                    );
                    told(event, transition.time, None)
                }
                None => {
                    let first_failed = first_failed_check(subject.recent, transition.time);
                    let opened_at = held.as_ref().map_or(first_failed, |held| {
                        held.first_failed.unwrap_or(held.since).min(first_failed)
                    });
                    let mut incident = Incident {
                        opened_at,
                        unhealthy: Some(transition.clone()),
                        unhealthy_now: true,
                        thread: Vec::new(),
                        next_reminder: rules.remind_every.map(|every| now + every),
                    };
                    let event = event(
                        EventKind::Unhealthy,
                        subject,
                        transition,
                        transition.time,
                        &mut incident,
                    );
                    self.incident = Some(incident);
                    told(event, transition.time, held.map(|held| held.event))
                }
            },
            State::Degraded => match &mut self.incident {
                Some(incident) => {
                    incident.unhealthy_now = false;
                    Decision::note(Note::Recovering)
                }
                None if transition.from == State::Unhealthy => Decision::note(Note::Quiet),
                // A push monitor's late ping is told only once it is missed (after its grace).
                None if subject.spec.is_push() => Decision::note(Note::Late),
                None => {
                    let until =
                        transition.time + subject.spec.interval + subject.spec.timeout + HOLD_SLACK;
                    // The held event is the root of the incident it may open.
                    let first_failed = first_failed_check(subject.recent, transition.time);
                    let mut draft = Incident {
                        opened_at: first_failed,
                        unhealthy: None,
                        unhealthy_now: false,
                        thread: Vec::new(),
                        next_reminder: None,
                    };
                    let event = event(
                        EventKind::Degraded,
                        subject,
                        transition,
                        transition.time,
                        &mut draft,
                    );
                    self.held = Some(Held {
                        event: event.id.clone(),
                        since: transition.time,
                        first_failed: Some(first_failed),
                        until,
                    });
                    Decision {
                        send: vec![Outgoing { event, due: until }],
                        withdraw: None,
                        note: Note::DegradeHeld { until },
                    }
                }
            },
            State::Healthy | State::Unknown => match self.incident.take() {
                Some(mut incident) if transition.to == State::Healthy => {
                    let event = event(
                        EventKind::Recovered,
                        subject,
                        transition,
                        transition.time,
                        &mut incident,
                    );
                    told(event, transition.time, None)
                }
                Some(incident) => {
                    // Back to UNKNOWN (a new registration): nothing to close, nothing to tell.
                    drop(incident);
                    Decision::note(Note::Quiet)
                }
                None => match held {
                    Some(held) => Decision {
                        send: Vec::new(),
                        withdraw: Some(held.event),
                        note: Note::Blip,
                    },
                    None => Decision::note(Note::Quiet),
                },
            },
        }
    }

    /// Decides about a check that changed no state, at `now`: a reminder when one is due.
    /// `None` when there is nothing to do (the common case; nothing changed then).
    pub fn on_check(
        &mut self,
        subject: Subject<'_>,
        rules: Rules,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        if self.is_idle() {
            return None;
        }
        let before = self.clone();
        self.settle(now);
        self.forget_changes(now, rules);
        let mut note = Note::Quiet;
        if self.flapping.is_some() && self.changes.is_empty() {
            self.flapping = None;
            note = Note::FlappingOver;
        }
        if subject.quiet.is_some() || self.flapping.is_some() {
            // A degrade held before the quiet time began is not told during it.
            if let Some(held) = self.held.take() {
                self.deferred = true;
                return Some(Decision {
                    send: Vec::new(),
                    withdraw: Some(held.event),
                    note: subject.quiet.map_or(Note::Flapping, Note::Quieted),
                });
            }
            return (*self != before).then_some(Decision::note(note));
        }
        if self.deferred
            && let Some(decision) = self.reconcile(subject, rules, now)
        {
            return Some(decision);
        }
        let reminder = match (&mut self.incident, rules.remind_every) {
            (Some(incident), Some(every))
                if incident.unhealthy_now
                    && incident.unhealthy.as_ref().is_some_and(|unhealthy| {
                        // Reminders turned on since: the first is due `every` after UNHEALTHY.
                        incident.next_reminder.unwrap_or(unhealthy.time + every) <= now
                    }) =>
            {
                let unhealthy = incident.unhealthy.clone()?;
                incident.next_reminder = Some(now + every);
                Some(event(
                    EventKind::Reminder,
                    subject,
                    &unhealthy,
                    now,
                    incident,
                ))
            }
            _ => None,
        };
        match reminder {
            Some(event) => Some(told(event, now, None)),
            None if *self != before => Some(Decision::note(note)),
            None => None,
        }
    }

    /// Rebuilds the state of a monitor from its stored transitions (newest first), for a
    /// database written before the state was kept: an incident whose `UNHEALTHY` was told is open
    /// when the history has an entry into `UNHEALTHY` after its newest `HEALTHY`.
    pub fn from_history(
        app: &AppName,
        history: &[Transition],
        rules: Rules,
        now: DateTime<Utc>,
    ) -> Alerting {
        let streak: Vec<&Transition> = history
            .iter()
            .take_while(|t| !matches!(t.to, State::Healthy | State::Unknown))
            .collect();
        let Some(unhealthy) = streak.iter().rev().find(|t| t.to == State::Unhealthy) else {
            return Alerting::default();
        };
        let unhealthy_now = streak.first().is_some_and(|t| t.to == State::Unhealthy);
        Alerting {
            held: None,
            deferred: false,
            changes: VecDeque::new(),
            flapping: None,
            incident: Some(Incident {
                opened_at: streak.last().map_or(unhealthy.time, |t| t.time),
                unhealthy: Some((*unhealthy).clone()),
                unhealthy_now,
                thread: vec![event_id(EventKind::Unhealthy, app.as_str(), unhealthy.time)],
                next_reminder: rules.remind_every.map(|every| now + every),
            }),
        }
    }
}

/// An event decided now, maybe withdrawing a held one.
fn told(event: Event, due: DateTime<Utc>, withdraw: Option<String>) -> Decision {
    Decision {
        note: Note::Told(event.kind),
        send: vec![Outgoing { event, due }],
        withdraw,
    }
}

/// The next event of `incident`, threaded after the ones before it.
fn event(
    kind: EventKind,
    subject: Subject<'_>,
    transition: &Transition,
    time: DateTime<Utc>,
    incident: &mut Incident,
) -> Event {
    let id = event_id(kind, subject.app.as_str(), time);
    let back_at = (kind == EventKind::Recovered)
        .then(|| first_passed_check(subject.recent, transition.time).max(incident.opened_at));
    let thread = incident.thread.clone();
    incident.thread.push(id.clone());
    if incident.thread.len() > REFERENCES_MAX {
        // Keep the root, drop the oldest of the rest.
        incident.thread.remove(1);
    }
    Event {
        incident: IncidentInfo {
            id: incident
                .thread
                .first()
                .cloned()
                .unwrap_or_else(|| id.clone()),
            opened_at: incident.opened_at,
            back_at,
            downtime_s: downtime(incident.opened_at, back_at.unwrap_or(time)).as_secs(),
            was_unhealthy: incident.unhealthy.is_some() || kind == EventKind::Unhealthy,
        },
        id,
        kind,
        app: subject.app.clone(),
        url: subject.spec.check_url(),
        time,
        transition: transition.clone(),
        checks: subject.recent.iter().take(CHECKS_MAX).cloned().collect(),
        thread,
    }
}

/// The id of an event of `kind` about `app` at `time`: `hc.unhealthy.media-center.1763715071766.3f2a9c0d`.
///
/// The same inputs always give the same id. Only dot-atom characters are used (it is the left
/// part of a `Message-ID`): the app name is reduced to letters, digits and `-` (at most 40 of
/// them), and a hash of the full name keeps names that reduce alike apart.
pub fn event_id(kind: EventKind, app: &str, time: DateTime<Utc>) -> String {
    let mut name: String = app
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    if name.trim_matches('-').is_empty() {
        name = "app".to_owned();
    }
    format!(
        "hc.{}.{}.{}.{:08x}",
        kind.as_str(),
        name,
        time.timestamp_millis(),
        fnv1a(app.as_bytes()) as u32,
    )
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use State::{Degraded, Healthy, Unhealthy, Unknown};

    use super::*;
    use crate::registry::Registration;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_715_000 + secs, 0).expect("valid time")
    }

    /// interval 10 s, timeout 5 s: a degrade is held 16 s.
    fn spec() -> MonitorSpec {
        Registration {
            url: Some("http://127.0.0.1:9/".into()),
            email: Some(crate::registry::Emails::One("me@example.com".into())),
            interval: Some(10),
            timeout: Some(5),
            ..Registration::default()
        }
        .validate()
        .expect("valid")
    }

    fn name() -> AppName {
        AppName::parse("nas").expect("valid")
    }

    fn t(secs: i64, from: State, to: State) -> Transition {
        Transition {
            time: at(secs),
            from,
            to,
            reason: format!("at {secs}"),
        }
    }

    /// One step of a scenario at `secs`: a transition `from -> to`, or a check that changed nothing.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        To(i64, State, State),
        Check(i64),
    }

    /// What came out of a step.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Out {
        /// Events of these kinds, and maybe a withdrawal.
        Send(Vec<EventKind>, bool),
        Note(Note),
        /// `on_check` had nothing to do.
        Nothing,
    }

    fn send(kind: EventKind) -> Out {
        Out::Send(vec![kind], false)
    }

    /// The rules of the tables that test one rule at a time: flapping off.
    fn plain(remind: Option<u64>) -> Rules {
        Rules {
            remind_every: remind.map(Duration::from_secs),
            flap_changes: 0,
            ..Rules::default()
        }
    }

    fn run(remind: Option<u64>, steps: &[(Step, Out)]) -> (Alerting, Vec<Outgoing>) {
        run_with(plain(remind), None, steps)
    }

    /// Runs `steps` under `rules`, quiet (maintenance) from `quiet.0` to `quiet.1` seconds;
    /// the monitor's state follows the transitions.
    fn run_with(
        rules: Rules,
        quiet: Option<(i64, i64)>,
        steps: &[(Step, Out)],
    ) -> (Alerting, Vec<Outgoing>) {
        let spec = spec();
        let name = name();
        let mut state = State::Unknown;
        let mut last: Option<Transition> = None;
        let mut alerting = Alerting::default();
        let mut sent = Vec::new();
        for (i, (step, expected)) in steps.iter().enumerate() {
            let secs = match *step {
                Step::To(secs, ..) | Step::Check(secs) => secs,
            };
            let quiet = quiet
                .filter(|(from, until)| (*from..*until).contains(&secs))
                .map(|(_, until)| Quiet::Maintenance { until: at(until) });
            let decision = match *step {
                Step::To(secs, from, to) => {
                    let transition = t(secs, from, to);
                    state = to;
                    let subject = Subject {
                        app: &name,
                        spec: &spec,
                        recent: &[],
                        state,
                        last_transition: Some(&transition),
                        quiet,
                    };
                    let decision = alerting.on_transition(subject, &transition, rules, at(secs));
                    last = Some(transition);
                    Some(decision)
                }
                Step::Check(secs) => {
                    let subject = Subject {
                        app: &name,
                        spec: &spec,
                        recent: &[],
                        state,
                        last_transition: last.as_ref(),
                        quiet,
                    };
                    alerting.on_check(subject, rules, at(secs))
                }
            };
            let got = match &decision {
                None => Out::Nothing,
                Some(decision) if decision.send.is_empty() && decision.withdraw.is_none() => {
                    Out::Note(decision.note)
                }
                Some(decision) => Out::Send(
                    decision.send.iter().map(|out| out.event.kind).collect(),
                    decision.withdraw.is_some(),
                ),
            };
            assert_eq!(got, *expected, "step {i}: {step:?}");
            // A persisted state always reads back the same.
            let json = serde_json::to_string(&alerting).expect("serializes");
            let back: Alerting = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, alerting, "step {i}: {json}");
            sent.extend(decision.into_iter().flat_map(|decision| decision.send));
        }
        (alerting, sent)
    }

    use EventKind as K;
    use Step::{Check, To};

    /// Issue 23: downtime, defined once ([`IncidentInfo`]), as a table of checks 10 s apart
    /// (from t = 0) run through the real state machine and this policy, the recent checks kept
    /// as the monitors keep them: every event's (kind, opened_at, back_at, downtime, was
    /// unhealthy).
    #[test]
    fn downtime_runs_from_the_first_failed_check_to_the_first_passed_check_back() {
        use crate::health::{Health, Thresholds};
        use crate::probe::{CheckRecord, Reason};
        use Outcome::{Fail as F, Pass as P, Warn as W};
        type Row = (K, i64, Option<i64>, u64, bool);
        let table: &[(&str, &[Outcome], u32, &[Row])] = &[
            (
                "a first check that fails is when it went down, not the second",
                &[F, F],
                2,
                &[(K::Unhealthy, 0, None, 10, true)],
            ),
            (
                "a longer threshold reaches back as far",
                &[F, F, F, F, F],
                5,
                &[(K::Unhealthy, 0, None, 40, true)],
            ),
            (
                "an outage after a pass: the degrade held, then UNHEALTHY, then back",
                &[P, F, F, P, P],
                2,
                &[
                    (K::Degraded, 10, None, 0, false),
                    (K::Unhealthy, 10, None, 10, true),
                    (K::Recovered, 10, Some(30), 20, true),
                ],
            ),
            (
                "a recovery that falls back counts from its last run of passes",
                &[F, F, P, F, P, P],
                2,
                &[
                    (K::Unhealthy, 0, None, 10, true),
                    (K::Recovered, 0, Some(40), 40, true),
                ],
            ),
            (
                "an app that answers (warn) is degraded, never UNHEALTHY",
                &[P, W, W, W, P],
                2,
                &[
                    (K::Degraded, 10, None, 0, false),
                    (K::Recovered, 10, Some(40), 30, false),
                ],
            ),
        ];
        let name = name();
        for (case, outcomes, unhealthy, expected) in table {
            let mut spec = spec();
            spec.unhealthy = *unhealthy;
            let thresholds = Thresholds {
                unhealthy: *unhealthy,
                healthy: 2,
            };
            let mut health = Health::default();
            let mut alerting = Alerting::default();
            let mut recent: VecDeque<LoggedCheck> = VecDeque::new();
            let mut last: Option<Transition> = None;
            let mut got = Vec::new();
            for (i, outcome) in outcomes.iter().enumerate() {
                let time = at(i as i64 * 10);
                let (next, change) = health.step(*outcome, thresholds);
                health = next;
                recent.push_front(LoggedCheck {
                    record: CheckRecord {
                        time,
                        outcome: *outcome,
                        reason: if *outcome == P {
                            Reason::Ok
                        } else {
                            Reason::StatusCode
                        },
                        http_status: Some(200),
                        latency: Duration::from_millis(3),
                        body: None,
                        detail: None,
                        cert_days_left: None,
                        cert_not_after: None,
                        body_digest: None,
                    },
                    state: health.state,
                    ping: None,
                });
                recent.truncate(crate::monitors::RECENT_CHECKS);
                let transition = change.map(|change| change.transition(time, "r".to_owned()));
                if transition.is_some() {
                    last.clone_from(&transition);
                }
                let subject = Subject {
                    app: &name,
                    spec: &spec,
                    recent: recent.make_contiguous(),
                    state: health.state,
                    last_transition: last.as_ref(),
                    quiet: None,
                };
                let decision = match &transition {
                    Some(transition) => {
                        Some(alerting.on_transition(subject, transition, plain(None), time))
                    }
                    None => alerting.on_check(subject, plain(None), time),
                };
                for out in decision.into_iter().flat_map(|decision| decision.send) {
                    let incident = &out.event.incident;
                    got.push((
                        out.event.kind,
                        (incident.opened_at - at(0)).num_seconds(),
                        incident.back_at.map(|back| (back - at(0)).num_seconds()),
                        incident.downtime_s,
                        incident.was_unhealthy,
                    ));
                }
            }
            assert_eq!(&got, expected, "{case}");
        }
    }

    #[test]
    fn a_blip_withdraws_the_held_degrade() {
        let (alerting, sent) = run(
            None,
            &[
                (To(0, Healthy, Degraded), send(K::Degraded)),
                (To(10, Degraded, Healthy), Out::Send(vec![], true)),
                (Check(100), Out::Nothing),
            ],
        );
        assert_eq!(sent[0].due, at(16), "held for interval + timeout + 1 s");
        assert!(alerting.is_idle(), "nothing left to remember");
    }

    #[test]
    fn a_degrade_that_goes_on_to_unhealthy_is_told_once() {
        let (_, sent) = run(
            None,
            &[
                (To(0, Healthy, Degraded), send(K::Degraded)),
                (Check(5), Out::Nothing),
                (
                    To(10, Degraded, Unhealthy),
                    Out::Send(vec![K::Unhealthy], true),
                ),
                (Check(100), Out::Nothing),
            ],
        );
        let unhealthy = &sent[1].event;
        assert_eq!(
            unhealthy.incident.opened_at,
            at(0),
            "from the first failed check"
        );
        assert_eq!(unhealthy.incident.downtime_s, 10);
        assert!(unhealthy.thread.is_empty(), "the root of its incident");
        assert_eq!(sent[1].due, at(10), "at once");
    }

    #[test]
    fn a_degrade_that_lasts_opens_the_incident_and_threads_what_follows() {
        let (_, sent) = run(
            None,
            &[
                (To(0, Healthy, Degraded), send(K::Degraded)),
                // the hold ends at 16: the held event went out; the state settles at the next check
                (Check(20), Out::Note(Note::Quiet)),
                (Check(30), Out::Nothing),
                (To(40, Degraded, Unhealthy), send(K::Unhealthy)),
                (To(60, Unhealthy, Degraded), Out::Note(Note::Recovering)),
                (To(90, Degraded, Healthy), send(K::Recovered)),
            ],
        );
        let root = &sent[0].event.id;
        assert_eq!(sent[1].event.thread, std::slice::from_ref(root));
        assert_eq!(sent[1].event.incident.id, *root);
        assert_eq!(
            sent[2].event.thread,
            [root.clone(), sent[1].event.id.clone()]
        );
        assert_eq!(sent[2].event.incident.opened_at, at(0));
        assert_eq!(sent[2].event.incident.downtime_s, 90);
    }

    #[test]
    fn a_transition_after_the_hold_ended_finds_the_incident_open() {
        // No check between: the next transition itself settles the hold.
        let (_, sent) = run(
            None,
            &[
                (To(0, Unknown, Degraded), send(K::Degraded)),
                (To(50, Degraded, Healthy), send(K::Recovered)),
            ],
        );
        assert_eq!(sent[1].event.thread, [sent[0].event.id.clone()]);
    }

    #[test]
    fn a_full_incident_with_a_half_recovery_tells_unhealthy_once() {
        let (alerting, sent) = run(
            None,
            &[
                (To(0, Unknown, Unhealthy), send(K::Unhealthy)),
                (To(10, Unhealthy, Degraded), Out::Note(Note::Recovering)),
                (Check(100), Out::Nothing),
                (
                    To(20, Degraded, Unhealthy),
                    Out::Note(Note::StillInIncident),
                ),
                (To(30, Unhealthy, Degraded), Out::Note(Note::Recovering)),
                (To(60, Degraded, Healthy), send(K::Recovered)),
                // the next incident is a new thread
                (To(70, Healthy, Degraded), send(K::Degraded)),
                (
                    To(80, Degraded, Unhealthy),
                    Out::Send(vec![K::Unhealthy], true),
                ),
            ],
        );
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[1].event.thread, [sent[0].event.id.clone()]);
        assert!(sent[3].event.thread.is_empty());
        assert_ne!(sent[3].event.id, sent[0].event.id);
        assert_eq!(sent[3].event.incident.opened_at, at(70));
        assert!(alerting.in_incident());
    }

    #[test]
    fn healthy_without_an_event_before_it_is_quiet() {
        run(
            None,
            &[
                (To(0, Unknown, Healthy), Out::Note(Note::Quiet)),
                // recovered, but nothing was told about the failure (e.g. it was paused)
                (To(10, Degraded, Healthy), Out::Note(Note::Quiet)),
                (To(20, Unhealthy, Degraded), Out::Note(Note::Quiet)),
            ],
        );
    }

    #[test]
    fn reminders_come_with_checks_while_unhealthy_only() {
        let (_, sent) = run(
            Some(60),
            &[
                (To(0, Healthy, Unhealthy), send(K::Unhealthy)),
                (Check(59), Out::Nothing),
                (Check(60), send(K::Reminder)),
                (Check(61), Out::Nothing),
                (Check(125), send(K::Reminder)),
                (To(130, Unhealthy, Degraded), Out::Note(Note::Recovering)),
                (Check(500), Out::Nothing),
                (
                    To(510, Degraded, Unhealthy),
                    Out::Note(Note::StillInIncident),
                ),
                (Check(511), send(K::Reminder)),
                (To(520, Unhealthy, Healthy), send(K::Recovered)),
                (Check(10_000), Out::Nothing),
            ],
        );
        let kinds: Vec<_> = sent.iter().map(|out| out.event.kind).collect();
        assert_eq!(
            kinds,
            [
                K::Unhealthy,
                K::Reminder,
                K::Reminder,
                K::Reminder,
                K::Recovered
            ]
        );
        assert_eq!(
            sent[1].event.transition, sent[0].event.transition,
            "about the same failure"
        );
        assert_eq!(sent[1].event.time, at(60));
        assert_ne!(sent[1].event.id, sent[2].event.id);
        for pair in sent.windows(2) {
            assert_eq!(pair[1].event.thread.last(), Some(&pair[0].event.id));
        }
    }

    #[test]
    fn reminders_turned_on_later_start_from_the_unhealthy_event() {
        let spec = spec();
        let name = name();
        let subject = Subject {
            app: &name,
            spec: &spec,
            recent: &[],
            state: State::Unknown,
            last_transition: None,
            quiet: None,
        };
        let mut alerting = Alerting::default();
        alerting.on_transition(subject, &t(0, Healthy, Unhealthy), Rules::default(), at(0));
        // a restart with `remind_every` set
        let rules = Rules {
            remind_every: Some(Duration::from_secs(60)),
            ..Rules::default()
        };
        assert_eq!(alerting.on_check(subject, rules, at(59)), None);
        let reminder = alerting.on_check(subject, rules, at(60)).expect("due");
        assert_eq!(reminder.send[0].event.kind, K::Reminder);
        assert_eq!(alerting.on_check(subject, rules, at(61)), None);
        // and turned off again
        assert_eq!(alerting.on_check(subject, Rules::default(), at(1000)), None);
    }

    fn quiet_note(until: i64) -> Out {
        Out::Note(Note::Quieted(Quiet::Maintenance { until: at(until) }))
    }

    #[test]
    fn maintenance_tells_nothing_and_then_what_is_still_wrong_once() {
        let (_, sent) = run_with(
            plain(None),
            Some((0, 100)),
            &[
                (To(10, Healthy, Degraded), quiet_note(100)),
                (To(20, Degraded, Unhealthy), quiet_note(100)),
                (Check(50), Out::Nothing),
                // the window is over and the app is still down: told at the first check after
                (Check(105), send(K::Unhealthy)),
                (Check(110), Out::Nothing),
                (To(120, Unhealthy, Degraded), Out::Note(Note::Recovering)),
                (To(130, Degraded, Healthy), send(K::Recovered)),
            ],
        );
        assert_eq!(sent[0].event.transition.to, Unhealthy);
        assert_eq!(sent[0].event.incident.opened_at, at(20));
        assert_eq!(sent[1].event.thread, [sent[0].event.id.clone()]);
    }

    #[test]
    fn a_recovery_inside_maintenance_is_told_at_its_end() {
        run_with(
            plain(None),
            Some((10, 100)),
            &[
                (To(0, Healthy, Unhealthy), send(K::Unhealthy)),
                (To(20, Unhealthy, Degraded), quiet_note(100)),
                (To(30, Degraded, Healthy), quiet_note(100)),
                (Check(100), send(K::Recovered)),
                (Check(110), Out::Nothing),
            ],
        );
    }

    #[test]
    fn maintenance_over_a_healthy_app_ends_quietly() {
        run_with(
            plain(None),
            Some((10, 100)),
            &[
                (To(0, Unknown, Healthy), Out::Note(Note::Quiet)),
                (To(20, Healthy, Degraded), quiet_note(100)),
                (To(30, Degraded, Healthy), quiet_note(100)),
                (Check(100), Out::Note(Note::Quiet)),
                (Check(110), Out::Nothing),
            ],
        );
    }

    #[test]
    fn a_degrade_held_when_maintenance_starts_is_withdrawn() {
        run_with(
            plain(None),
            Some((10, 100)),
            &[
                (To(0, Healthy, Degraded), send(K::Degraded)),
                (Check(10), Out::Send(vec![], true)),
                // reconciled: DEGRADED is nothing to tell
                (Check(100), Out::Note(Note::Quiet)),
                (Check(110), Out::Nothing),
            ],
        );
    }

    #[test]
    fn an_app_failing_every_third_check_is_told_flapping_once() {
        let rules = Rules::default();
        let mut steps: Vec<(Step, Out)> = Vec::new();
        // a check every 10 s; every third fails: HEALTHY -> DEGRADED -> HEALTHY, for 7 minutes
        for round in 0..14 {
            let start = round * 30;
            let expected_degrade = match round {
                0..=2 => send(K::Degraded),
                // the seventh change: one message says so
                3 => Out::Send(vec![K::Flapping], false),
                _ => Out::Note(Note::Flapping),
            };
            steps.push((To(start, Healthy, Degraded), expected_degrade));
            let expected_back = match round {
                0..=2 => Out::Send(vec![], true), // a blip: its held degrade withdrawn
                _ => Out::Note(Note::Flapping),
            };
            steps.push((To(start + 10, Degraded, Healthy), expected_back));
        }
        // stable for a whole window after the last change (at 400 s): no longer flapping
        steps.push((Check(400 + 1800), Out::Note(Note::FlappingOver)));
        steps.push((Check(400 + 1810), Out::Nothing));
        steps.push((To(2300, Healthy, Degraded), send(K::Degraded)));
        let (_, sent) = run_with(rules, None, &steps);
        let kinds: Vec<EventKind> = sent.iter().map(|out| out.event.kind).collect();
        assert_eq!(
            kinds,
            [
                K::Degraded,
                K::Degraded,
                K::Degraded,
                K::Flapping,
                K::Degraded
            ]
        );
        assert!(
            sent[3]
                .event
                .transition
                .reason
                .starts_with("7 changes of state in"),
            "{}",
            sent[3].event.transition.reason
        );
    }

    #[test]
    fn flapping_into_an_outage_tells_it_when_it_settles() {
        let mut steps: Vec<(Step, Out)> = Vec::new();
        for round in 0..3 {
            steps.push((To(round * 30, Healthy, Degraded), send(K::Degraded)));
            steps.push((
                To(round * 30 + 10, Degraded, Healthy),
                Out::Send(vec![], true),
            ));
        }
        steps.push((
            To(90, Healthy, Degraded),
            Out::Send(vec![K::Flapping], false),
        ));
        steps.push((To(100, Degraded, Unhealthy), Out::Note(Note::Flapping)));
        // stable for a window: the outage is told then
        steps.push((Check(100 + 1800), send(K::Unhealthy)));
        run_with(Rules::default(), None, &steps);
    }

    #[test]
    fn threads_stay_bounded_and_keep_the_root() {
        let steps: Vec<(Step, Out)> =
            std::iter::once((To(0, Healthy, Unhealthy), send(K::Unhealthy)))
                .chain((1..=30).map(|i| (Check(i * 60), send(K::Reminder))))
                .collect();
        let (_, sent) = run(Some(60), &steps);
        let last = &sent.last().expect("events").event;
        assert_eq!(last.thread.len(), REFERENCES_MAX);
        assert_eq!(last.thread[0], sent[0].event.id);
        assert_eq!(last.thread.last(), Some(&sent[sent.len() - 2].event.id));
    }

    #[test]
    fn incidents_are_rebuilt_from_the_history() {
        let rules = Rules::default();
        /// Whether it is UNHEALTHY now, when the incident opened, when UNHEALTHY was told.
        type Open = Option<(bool, i64, i64)>;
        // newest first
        let table: [(&[Transition], Open); 5] = [
            (&[], None),
            (&[t(10, Healthy, Degraded), t(0, Unknown, Healthy)], None),
            (
                &[
                    t(30, Unhealthy, Degraded),
                    t(20, Degraded, Unhealthy),
                    t(10, Healthy, Degraded),
                    t(0, Unknown, Healthy),
                ],
                Some((false, 10, 20)),
            ),
            (
                &[
                    t(50, Degraded, Unhealthy),
                    t(40, Unhealthy, Degraded),
                    t(30, Unknown, Unhealthy),
                ],
                Some((true, 30, 30)),
            ),
            (
                &[
                    t(50, Degraded, Unhealthy),
                    t(40, Healthy, Degraded),
                    t(30, Unhealthy, Healthy),
                    t(20, Unknown, Unhealthy),
                ],
                Some((true, 40, 50)),
            ),
        ];
        for (history, expected) in table {
            let alerting = Alerting::from_history(&name(), history, rules, at(100));
            let got = alerting.incident.as_ref().map(|incident| {
                (
                    incident.unhealthy_now,
                    (incident.opened_at - at(0)).num_seconds(),
                    (incident.unhealthy.as_ref().expect("told").time - at(0)).num_seconds(),
                )
            });
            assert_eq!(got, expected, "{history:?}");
        }
    }

    #[test]
    fn a_rebuilt_incident_threads_its_recovery_after_the_stored_unhealthy() {
        let spec = spec();
        let history = [
            t(30, Unhealthy, Degraded),
            t(20, Degraded, Unhealthy),
            t(10, Healthy, Degraded),
        ];
        let mut alerting = Alerting::from_history(&name(), &history, Rules::default(), at(40));
        let subject = Subject {
            app: &name(),
            spec: &spec,
            recent: &[],
            state: State::Unknown,
            last_transition: None,
            quiet: None,
        };
        let again = alerting.on_transition(
            subject,
            &t(40, Degraded, Unhealthy),
            Rules::default(),
            at(40),
        );
        assert_eq!(again.note, Note::StillInIncident, "not told again");
        alerting.on_transition(
            subject,
            &t(50, Unhealthy, Degraded),
            Rules::default(),
            at(50),
        );
        let recovery =
            alerting.on_transition(subject, &t(90, Degraded, Healthy), Rules::default(), at(90));
        let event = &recovery.send[0].event;
        assert_eq!(event.kind, K::Recovered);
        assert_eq!(event.incident.opened_at, at(10));
        let root = event_id(K::Unhealthy, "nas", at(20));
        assert_eq!(event.thread, [root]);
    }

    #[test]
    fn event_ids_are_stable_and_safe() {
        let id = event_id(K::Unhealthy, "media center <x>", at(1));
        assert_eq!(id, event_id(K::Unhealthy, "media center <x>", at(1)));
        assert!(
            id.starts_with("hc.unhealthy.media-center--x-.1763715001000."),
            "{id}"
        );
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')),
            "{id}"
        );
        assert_ne!(
            event_id(K::Unhealthy, "a b", at(1)),
            event_id(K::Unhealthy, "a-b", at(1)),
            "names that reduce alike stay apart"
        );
        assert!(event_id(K::Degraded, "ünï", at(1)).starts_with("hc.degraded.-n-."));
        assert!(event_id(K::Degraded, "---", at(1)).starts_with("hc.degraded.app."));
    }
}
