//! When to mail: transitions and the passing of time in, mails to write and notes to log out.
//!
//! A pure state machine over values: no clock (every call is given `now`), no I/O. The rules:
//!
//! * **UNHEALTHY opens an incident and is mailed at once.** Within one incident `UNHEALTHY` is
//!   mailed once: a half-recovery to `DEGRADED` that falls back to `UNHEALTHY` is noted, not mailed.
//! * **DEGRADED is held for one check.** Entering `DEGRADED` from `HEALTHY` (or `UNKNOWN`) starts a
//!   hold of `interval + timeout +` [`HOLD_SLACK`] from the check that caused it, the time the next
//!   check needs to report. Back to `HEALTHY` within the hold: a blip, noted, not mailed. On to
//!   `UNHEALTHY` within the hold: only the `UNHEALTHY` mail goes out (one failed check never causes
//!   two mails). Still `DEGRADED` when the hold ends: the `DEGRADED` mail goes out and opens an
//!   incident; a later `UNHEALTHY` is then mailed in the same thread.
//! * **HEALTHY closes the incident** with a mail that gives the downtime (from the first check that
//!   was not healthy). There is never a `HEALTHY again` mail without a mail before it about the same
//!   incident.
//! * **Reminders**, when `remind_every` is set: while an incident's app stays `UNHEALTHY`, a
//!   `still UNHEALTHY` mail every `remind_every` after the last `UNHEALTHY` mail. None while it is
//!   recovering (`DEGRADED` after `UNHEALTHY`).
//! * **Threads**: the first mail of an incident is the root; every later mail of the incident has
//!   `In-Reply-To` the previous one and `References` the chain (root first, at most
//!   [`REFERENCES_MAX`]). Ids come from [`render::message_id`], a function of the mail's kind, the
//!   app and the time of its transition, so a restarted server can rebuild an open incident from
//!   the stored transitions ([`Policy::resume`]).
//!
//! Only monitors with a held degrade or an open incident are remembered, so memory grows with the
//! number of apps that are down, not with the number of monitors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::render::{self, MailKind};
use crate::health::{State, Transition};
use crate::registry::{AppName, MonitorSpec};
use crate::store::LoggedCheck;

/// Added to `interval + timeout` for the hold of a degrade: room for the next check's result to
/// arrive before the hold ends.
pub const HOLD_SLACK: Duration = Duration::from_secs(1);

/// Most message ids in a `References` header (the root and the newest ones).
pub const REFERENCES_MAX: usize = 10;

/// A mail the policy wants written and sent.
#[derive(Debug, Clone, PartialEq)]
pub struct MailPlan {
    /// What the mail says.
    pub kind: MailKind,
    /// The app.
    pub name: AppName,
    /// Its registration when the mail was decided (recipients, URL).
    pub spec: Arc<MonitorSpec>,
    /// The transition the mail is about (for a reminder: the one that entered `UNHEALTHY`).
    pub transition: Transition,
    /// The first check that was not healthy in this incident.
    pub down_since: DateTime<Utc>,
    /// The checks to show, newest first: those of the transition; for a reminder, those of the
    /// newest transition seen (the reactor shows the newest ones from the store instead).
    pub recent: Vec<LoggedCheck>,
    /// This mail's `Message-ID`.
    pub message_id: String,
    /// `In-Reply-To`: the previous mail of the incident; `None` for its first mail.
    pub in_reply_to: Option<String>,
    /// `References`: the incident's mails before this one, root first.
    pub references: Vec<String>,
}

/// Something that happened and is logged rather than mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A degrade is held for one check before it is mailed.
    DegradeHeld {
        /// When the hold ends.
        until: DateTime<Utc>,
    },
    /// `HEALTHY` again within the hold of a degrade: a blip, not mailed.
    Blip,
    /// A half-recovery within an open incident (`UNHEALTHY` to `DEGRADED`): not mailed.
    Recovering,
    /// Back to `UNHEALTHY` within an incident whose `UNHEALTHY` was already mailed: not mailed again.
    StillInIncident,
    /// A change that needs no mail (e.g. `UNKNOWN` to `HEALTHY`, or `HEALTHY` with nothing mailed
    /// before it).
    Quiet,
}

/// What the policy decided about one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write and send this mail.
    Mail(Box<MailPlan>),
    /// Log this, send nothing.
    Note(Note),
}

/// The input the policy needs from a transition event.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The app.
    pub name: &'a AppName,
    /// Its registration.
    pub spec: &'a Arc<MonitorSpec>,
    /// The change of state.
    pub transition: &'a Transition,
    /// The last checks, newest first.
    pub recent: &'a [LoggedCheck],
}

/// An incident that was open before a restart, rebuilt from the stored transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    /// The first transition out of `HEALTHY` (or `UNKNOWN`) of the incident.
    pub down_since: DateTime<Utc>,
    /// The time of the transition into `UNHEALTHY` that opened the incident.
    pub unhealthy_at: DateTime<Utc>,
    /// The newest transition was into `UNHEALTHY` (not a half-recovery to `DEGRADED`).
    pub unhealthy_now: bool,
}

/// Finds the open incident in `history` (newest first), if any: an entry into `UNHEALTHY` after
/// the newest `HEALTHY`.
pub fn resume_from(history: &[Transition]) -> Option<Resumed> {
    let streak: Vec<&Transition> = history
        .iter()
        .take_while(|t| !matches!(t.to, State::Healthy | State::Unknown))
        .collect();
    let unhealthy_at = streak.iter().rev().find(|t| t.to == State::Unhealthy)?.time;
    Some(Resumed {
        down_since: streak.last().map_or(unhealthy_at, |t| t.time),
        unhealthy_at,
        unhealthy_now: streak.first().is_some_and(|t| t.to == State::Unhealthy),
    })
}

#[derive(Debug, Clone)]
struct Held {
    transition: Transition,
    recent: Vec<LoggedCheck>,
    until: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Incident {
    down_since: DateTime<Utc>,
    /// The transition into `UNHEALTHY` that was mailed; `None` while only a degrade was mailed.
    unhealthy: Option<Transition>,
    /// The app is `UNHEALTHY` now (not recovering).
    unhealthy_now: bool,
    /// The mails of the incident so far, root first (bounded as `References`).
    thread: Vec<String>,
    next_reminder: Option<DateTime<Utc>>,
    recent: Vec<LoggedCheck>,
}

#[derive(Debug, Clone)]
struct Tracked {
    spec: Arc<MonitorSpec>,
    held: Option<Held>,
    incident: Option<Incident>,
}

/// The mail policy of every monitor.
#[derive(Debug, Clone)]
pub struct Policy {
    remind_every: Option<Duration>,
    host: String,
    monitors: HashMap<AppName, Tracked>,
}

impl Policy {
    /// A policy with no open incident. `host` goes into the `Message-ID`s; `remind_every` turns
    /// reminders on.
    pub fn new(host: &str, remind_every: Option<Duration>) -> Policy {
        Policy {
            remind_every: remind_every.filter(|every| !every.is_zero()),
            host: render::safe_host(host),
            monitors: HashMap::new(),
        }
    }

    /// Whether the policy holds anything for `name` (a held degrade or an open incident).
    pub fn tracks(&self, name: &AppName) -> bool {
        self.monitors.contains_key(name)
    }

    /// Whether reminders are on.
    pub fn reminds(&self) -> bool {
        self.remind_every.is_some()
    }

    /// Whether a transition into or out of this state, for a monitor the policy does not track,
    /// may belong to an incident opened before a restart (then call [`Policy::resume`] first).
    pub fn needs_history(&self, input: &Input<'_>) -> bool {
        !self.tracks(input.name)
            && matches!(input.transition.from, State::Degraded | State::Unhealthy)
    }

    /// Reopens an incident that was open before a restart (see [`resume_from`]), as if its
    /// `UNHEALTHY` mail had been sent by this policy. Does nothing when `name` is tracked already.
    pub fn resume(
        &mut self,
        name: &AppName,
        spec: &Arc<MonitorSpec>,
        resumed: Resumed,
        now: DateTime<Utc>,
    ) {
        if self.tracks(name) {
            return;
        }
        let unhealthy = Transition {
            time: resumed.unhealthy_at,
            from: State::Degraded,
            to: State::Unhealthy,
            reason: "(before a restart of the server)".to_owned(),
        };
        let root = render::message_id(
            MailKind::Unhealthy,
            name.as_str(),
            unhealthy.time,
            &self.host,
        );
        self.monitors.insert(
            name.clone(),
            Tracked {
                spec: Arc::clone(spec),
                held: None,
                incident: Some(Incident {
                    down_since: resumed.down_since,
                    unhealthy: Some(unhealthy),
                    unhealthy_now: resumed.unhealthy_now,
                    thread: vec![root],
                    next_reminder: self.remind_every.map(|every| now + every),
                    recent: Vec::new(),
                }),
            },
        );
    }

    /// Decides about one transition, at `now`.
    pub fn on_transition(&mut self, input: Input<'_>, now: DateTime<Utc>) -> Vec<Action> {
        let transition = input.transition;
        let tracked = self
            .monitors
            .entry(input.name.clone())
            .or_insert_with(|| Tracked {
                spec: Arc::clone(input.spec),
                held: None,
                incident: None,
            });
        tracked.spec = Arc::clone(input.spec);
        let held = tracked.held.take();
        let action = match transition.to {
            State::Unhealthy => match &mut tracked.incident {
                Some(incident) if incident.unhealthy.is_some() => {
                    incident.unhealthy_now = true;
                    incident.recent = input.recent.to_vec();
                    Action::Note(Note::StillInIncident)
                }
                Some(incident) => {
                    // Only the degrade was mailed: the UNHEALTHY mail goes in its thread.
                    incident.unhealthy = Some(transition.clone());
                    incident.unhealthy_now = true;
                    incident.next_reminder = self.remind_every.map(|every| now + every);
                    incident.recent = input.recent.to_vec();
                    Action::Mail(Box::new(plan(
                        &self.host,
                        MailKind::Unhealthy,
                        input.name,
                        &tracked.spec,
                        transition,
                        incident,
                        now,
                    )))
                }
                None => {
                    let down_since = held.as_ref().map_or(transition.time, |held| {
                        held.transition.time.min(transition.time)
                    });
                    let mut incident = Incident {
                        down_since,
                        unhealthy: Some(transition.clone()),
                        unhealthy_now: true,
                        thread: Vec::new(),
                        next_reminder: self.remind_every.map(|every| now + every),
                        recent: input.recent.to_vec(),
                    };
                    let mail = plan(
                        &self.host,
                        MailKind::Unhealthy,
                        input.name,
                        &tracked.spec,
                        transition,
                        &mut incident,
                        now,
                    );
                    tracked.incident = Some(incident);
                    Action::Mail(Box::new(mail))
                }
            },
            State::Degraded => match &mut tracked.incident {
                Some(incident) => {
                    incident.unhealthy_now = false;
                    incident.recent = input.recent.to_vec();
                    Action::Note(Note::Recovering)
                }
                None if transition.from == State::Unhealthy => Action::Note(Note::Quiet),
                None => {
                    let until =
                        transition.time + input.spec.interval + input.spec.timeout + HOLD_SLACK;
                    tracked.held = Some(Held {
                        transition: transition.clone(),
                        recent: input.recent.to_vec(),
                        until,
                    });
                    Action::Note(Note::DegradeHeld { until })
                }
            },
            State::Healthy | State::Unknown => match tracked.incident.take() {
                Some(mut incident) if transition.to == State::Healthy => {
                    incident.recent = input.recent.to_vec();
                    Action::Mail(Box::new(plan(
                        &self.host,
                        MailKind::Healthy,
                        input.name,
                        &tracked.spec,
                        transition,
                        &mut incident,
                        now,
                    )))
                }
                _ if held.is_some() => Action::Note(Note::Blip),
                _ => Action::Note(Note::Quiet),
            },
        };
        self.forget_if_idle(input.name);
        vec![action]
    }

    /// Degrades whose hold has ended and reminders that are due, at `now`.
    pub fn on_tick(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut names: Vec<&AppName> = self.monitors.keys().collect();
        names.sort();
        let names: Vec<AppName> = names.into_iter().cloned().collect();
        for name in names {
            let Some(tracked) = self.monitors.get_mut(&name) else {
                continue;
            };
            if let Some(held) = tracked.held.take_if(|held| held.until <= now) {
                let mut incident = Incident {
                    down_since: held.transition.time,
                    unhealthy: None,
                    unhealthy_now: false,
                    thread: Vec::new(),
                    next_reminder: None,
                    recent: held.recent.clone(),
                };
                let mail = plan(
                    &self.host,
                    MailKind::Degraded,
                    &name,
                    &tracked.spec,
                    &held.transition,
                    &mut incident,
                    now,
                );
                tracked.incident = Some(incident);
                actions.push(Action::Mail(Box::new(mail)));
            }
            if let Some(incident) = &mut tracked.incident
                && incident.unhealthy_now
                && let Some(every) = self.remind_every
                && incident.next_reminder.is_some_and(|due| due <= now)
                && let Some(unhealthy) = incident.unhealthy.clone()
            {
                incident.next_reminder = Some(now + every);
                actions.push(Action::Mail(Box::new(plan(
                    &self.host,
                    MailKind::Reminder,
                    &name,
                    &tracked.spec,
                    &unhealthy,
                    incident,
                    now,
                ))));
            }
        }
        actions
    }

    /// When [`Policy::on_tick`] has something to do next: the end of the earliest hold or the
    /// earliest reminder.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.monitors
            .values()
            .flat_map(|tracked| {
                let reminder = tracked
                    .incident
                    .as_ref()
                    .filter(|incident| incident.unhealthy_now && incident.unhealthy.is_some())
                    .and_then(|incident| incident.next_reminder);
                tracked
                    .held
                    .as_ref()
                    .map(|held| held.until)
                    .into_iter()
                    .chain(reminder)
            })
            .min()
    }

    /// Forgets `name` (its monitor was removed): no held degrade or reminder is mailed for it.
    pub fn forget(&mut self, name: &AppName) {
        self.monitors.remove(name);
    }

    fn forget_if_idle(&mut self, name: &AppName) {
        if self
            .monitors
            .get(name)
            .is_some_and(|tracked| tracked.held.is_none() && tracked.incident.is_none())
        {
            self.monitors.remove(name);
        }
    }
}

/// The next mail of `incident`, threaded after the ones before it.
fn plan(
    host: &str,
    kind: MailKind,
    name: &AppName,
    spec: &Arc<MonitorSpec>,
    transition: &Transition,
    incident: &mut Incident,
    now: DateTime<Utc>,
) -> MailPlan {
    let stamp = if kind == MailKind::Reminder {
        now
    } else {
        transition.time
    };
    let message_id = render::message_id(kind, name.as_str(), stamp, host);
    let references = incident.thread.clone();
    let in_reply_to = references.last().cloned();
    incident.thread.push(message_id.clone());
    if incident.thread.len() > REFERENCES_MAX {
        // Keep the root, drop the oldest of the rest.
        incident.thread.remove(1);
    }
    MailPlan {
        kind,
        name: name.clone(),
        spec: Arc::clone(spec),
        transition: transition.clone(),
        down_since: incident.down_since,
        recent: incident.recent.clone(),
        message_id,
        in_reply_to,
        references,
    }
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
    fn spec() -> Arc<MonitorSpec> {
        Arc::new(
            Registration {
                url: Some("http://127.0.0.1:9/".into()),
                email: Some(crate::registry::Emails::One("me@example.com".into())),
                interval: Some(10),
                timeout: Some(5),
                ..Registration::default()
            }
            .validate()
            .expect("valid"),
        )
    }

    fn name() -> AppName {
        AppName::parse("nas").expect("valid")
    }

    /// One step of a scenario: at `secs`, either a transition `from -> to` or a tick.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        To(i64, State, State),
        Tick(i64),
    }

    /// What came out of a step: the mail kinds, or a note.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        Mail(MailKind),
        Note(Note),
    }

    fn run(remind: Option<u64>, steps: &[(Step, &[Out])]) -> (Policy, Vec<MailPlan>) {
        let mut policy = Policy::new("host", remind.map(Duration::from_secs));
        let spec = spec();
        let name = name();
        let mut mails = Vec::new();
        for (i, (step, expected)) in steps.iter().enumerate() {
            let actions = match *step {
                Step::To(secs, from, to) => {
                    let transition = Transition {
                        time: at(secs),
                        from,
                        to,
                        reason: format!("step {i}"),
                    };
                    policy.on_transition(
                        Input {
                            name: &name,
                            spec: &spec,
                            transition: &transition,
                            recent: &[],
                        },
                        at(secs),
                    )
                }
                Step::Tick(secs) => policy.on_tick(at(secs)),
            };
            let got: Vec<Out> = actions
                .iter()
                .map(|action| match action {
                    Action::Mail(plan) => Out::Mail(plan.kind),
                    Action::Note(note) => Out::Note(*note),
                })
                .collect();
            assert_eq!(got, *expected, "step {i}: {step:?}");
            mails.extend(actions.into_iter().filter_map(|action| match action {
                Action::Mail(plan) => Some(*plan),
                Action::Note(_) => None,
            }));
        }
        (policy, mails)
    }

    use MailKind as K;
    use Step::{Tick, To};

    /// The note for a degrade at 0 s, held until 16 s.
    fn held() -> Out {
        Out::Note(Note::DegradeHeld { until: at(16) })
    }

    #[test]
    fn a_blip_is_not_mailed() {
        let (policy, mails) = run(
            None,
            &[
                (To(0, Healthy, Degraded), &[held()]),
                (To(10, Degraded, Healthy), &[Out::Note(Note::Blip)]),
                (Tick(100), &[]),
            ],
        );
        assert!(mails.is_empty());
        assert!(!policy.tracks(&name()), "nothing left to remember");
        assert_eq!(policy.next_deadline(), None);
    }

    #[test]
    fn a_degrade_that_goes_on_to_unhealthy_is_mailed_once() {
        let (_, mails) = run(
            None,
            &[
                (To(0, Healthy, Degraded), &[held()]),
                (Tick(15), &[]),
                (To(10, Degraded, Unhealthy), &[Out::Mail(K::Unhealthy)]),
                (Tick(100), &[]),
            ],
        );
        assert_eq!(mails.len(), 1);
        assert_eq!(
            mails[0].down_since,
            at(0),
            "downtime from the first failed check"
        );
        assert_eq!(mails[0].in_reply_to, None);
    }

    #[test]
    fn a_degrade_that_lasts_is_mailed_after_the_hold_and_threads_what_follows() {
        let (_, mails) = run(
            None,
            &[
                (To(0, Healthy, Degraded), &[held()]),
                (Tick(15), &[]),
                (Tick(16), &[Out::Mail(K::Degraded)]),
                (Tick(17), &[]),
                (To(40, Degraded, Unhealthy), &[Out::Mail(K::Unhealthy)]),
                (To(60, Unhealthy, Degraded), &[Out::Note(Note::Recovering)]),
                (To(90, Degraded, Healthy), &[Out::Mail(K::Healthy)]),
            ],
        );
        assert_eq!(mails.len(), 3);
        let root = &mails[0].message_id;
        assert_eq!(mails[1].in_reply_to.as_ref(), Some(root));
        assert_eq!(mails[1].references, std::slice::from_ref(root));
        assert_eq!(mails[2].in_reply_to.as_ref(), Some(&mails[1].message_id));
        assert_eq!(
            mails[2].references,
            [root.clone(), mails[1].message_id.clone()]
        );
        assert_eq!(mails[2].down_since, at(0));
    }

    #[test]
    fn each_mail_shows_the_checks_of_its_own_transition() {
        let mut policy = Policy::new("host", None);
        let spec = spec();
        let check = |state: State| LoggedCheck {
            record: crate::probe::CheckRecord {
                cert_not_after: None,
                cert_days_left: None,
                time: at(0),
                outcome: crate::health::Outcome::Pass,
                reason: crate::probe::Reason::Ok,
                http_status: Some(200),
                latency: Duration::from_millis(1),
                body: None,
                body_digest: None,
                detail: None,
            },
            state,
        };
        let mut mails = Vec::new();
        for (from, to) in [
            (Healthy, Unhealthy),
            (Unhealthy, Degraded),
            (Degraded, Healthy),
        ] {
            let transition = t(0, from, to);
            let recent = [check(to)];
            let actions = policy.on_transition(
                Input {
                    name: &name(),
                    spec: &spec,
                    transition: &transition,
                    recent: &recent,
                },
                at(0),
            );
            mails.extend(actions.into_iter().filter_map(|action| match action {
                Action::Mail(plan) => Some(plan),
                Action::Note(_) => None,
            }));
        }
        let states: Vec<Vec<State>> = mails
            .iter()
            .map(|mail| mail.recent.iter().map(|check| check.state).collect())
            .collect();
        assert_eq!(states, [vec![Unhealthy], vec![Healthy]]);
    }

    #[test]
    fn a_degrade_that_lasts_and_recovers_gets_a_healthy_mail() {
        run(
            None,
            &[
                (To(0, Unknown, Degraded), &[held()]),
                (Tick(16), &[Out::Mail(K::Degraded)]),
                (To(50, Degraded, Healthy), &[Out::Mail(K::Healthy)]),
            ],
        );
    }

    #[test]
    fn a_full_incident_with_a_half_recovery_mails_unhealthy_once() {
        let (policy, mails) = run(
            None,
            &[
                (To(0, Unknown, Unhealthy), &[Out::Mail(K::Unhealthy)]),
                (To(10, Unhealthy, Degraded), &[Out::Note(Note::Recovering)]),
                (Tick(100), &[]),
                (
                    To(20, Degraded, Unhealthy),
                    &[Out::Note(Note::StillInIncident)],
                ),
                (To(30, Unhealthy, Degraded), &[Out::Note(Note::Recovering)]),
                (To(60, Degraded, Healthy), &[Out::Mail(K::Healthy)]),
                // the next incident is a new thread
                (
                    To(70, Healthy, Degraded),
                    &[Out::Note(Note::DegradeHeld { until: at(86) })],
                ),
                (To(80, Degraded, Unhealthy), &[Out::Mail(K::Unhealthy)]),
            ],
        );
        assert_eq!(mails.len(), 3);
        assert_eq!(mails[1].in_reply_to.as_ref(), Some(&mails[0].message_id));
        assert_eq!(mails[2].in_reply_to, None);
        assert_ne!(mails[2].message_id, mails[0].message_id);
        assert_eq!(mails[2].down_since, at(70));
        assert!(policy.tracks(&name()));
    }

    #[test]
    fn healthy_without_a_mail_before_it_is_quiet() {
        run(
            None,
            &[
                (To(0, Unknown, Healthy), &[Out::Note(Note::Quiet)]),
                // recovered, but nothing was mailed about the failure (e.g. a new server)
                (To(10, Degraded, Healthy), &[Out::Note(Note::Quiet)]),
                (To(20, Unhealthy, Degraded), &[Out::Note(Note::Quiet)]),
            ],
        );
    }

    #[test]
    fn reminders_while_unhealthy_only() {
        let (_, mails) = run(
            Some(60),
            &[
                (To(0, Healthy, Unhealthy), &[Out::Mail(K::Unhealthy)]),
                (Tick(59), &[]),
                (Tick(60), &[Out::Mail(K::Reminder)]),
                (Tick(61), &[]),
                (Tick(120), &[Out::Mail(K::Reminder)]),
                (To(130, Unhealthy, Degraded), &[Out::Note(Note::Recovering)]),
                (Tick(500), &[]),
                (
                    To(510, Degraded, Unhealthy),
                    &[Out::Note(Note::StillInIncident)],
                ),
                (Tick(511), &[Out::Mail(K::Reminder)]),
                (To(520, Unhealthy, Healthy), &[Out::Mail(K::Healthy)]),
                (Tick(10_000), &[]),
            ],
        );
        let kinds: Vec<_> = mails.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                K::Unhealthy,
                K::Reminder,
                K::Reminder,
                K::Reminder,
                K::Healthy
            ]
        );
        assert_eq!(
            mails[1].transition, mails[0].transition,
            "about the same failure"
        );
        assert_ne!(mails[1].message_id, mails[2].message_id);
        for pair in mails.windows(2) {
            assert_eq!(pair[1].in_reply_to.as_ref(), Some(&pair[0].message_id));
        }
    }

    #[test]
    fn references_stay_bounded_and_keep_the_root() {
        let steps: Vec<(Step, &[Out])> =
            std::iter::once((To(0, Healthy, Unhealthy), &[Out::Mail(K::Unhealthy)][..]))
                .chain((1..=30).map(|i| (Tick(i * 60), &[Out::Mail(K::Reminder)][..])))
                .collect();
        let (_, mails) = run(Some(60), &steps);
        let last = mails.last().expect("mails");
        assert_eq!(last.references.len(), REFERENCES_MAX);
        assert_eq!(last.references[0], mails[0].message_id);
        assert_eq!(
            last.in_reply_to.as_ref(),
            Some(&mails[mails.len() - 2].message_id)
        );
    }

    #[test]
    fn deadlines() {
        let mut policy = Policy::new("host", Some(Duration::from_secs(300)));
        assert_eq!(policy.next_deadline(), None);
        let spec = spec();
        let transition = Transition {
            time: at(0),
            from: Healthy,
            to: Degraded,
            reason: String::new(),
        };
        let input = Input {
            name: &name(),
            spec: &spec,
            transition: &transition,
            recent: &[],
        };
        policy.on_transition(input, at(0));
        assert_eq!(policy.next_deadline(), Some(at(16)));
        policy.forget(&name());
        assert_eq!(policy.next_deadline(), None);
        assert!(policy.on_tick(at(1000)).is_empty());
    }

    fn t(secs: i64, from: State, to: State) -> Transition {
        Transition {
            time: at(secs),
            from,
            to,
            reason: String::new(),
        }
    }

    #[test]
    fn incidents_are_found_in_the_history() {
        // newest first
        let table: [(&[Transition], Option<Resumed>); 5] = [
            (&[], None),
            (&[t(10, Healthy, Degraded), t(0, Unknown, Healthy)], None),
            (
                &[
                    t(30, Unhealthy, Degraded),
                    t(20, Degraded, Unhealthy),
                    t(10, Healthy, Degraded),
                    t(0, Unknown, Healthy),
                ],
                Some(Resumed {
                    down_since: at(10),
                    unhealthy_at: at(20),
                    unhealthy_now: false,
                }),
            ),
            (
                &[
                    t(50, Degraded, Unhealthy),
                    t(40, Unhealthy, Degraded),
                    t(30, Unknown, Unhealthy),
                ],
                Some(Resumed {
                    down_since: at(30),
                    unhealthy_at: at(30),
                    unhealthy_now: true,
                }),
            ),
            (
                &[
                    t(50, Degraded, Unhealthy),
                    t(40, Healthy, Degraded),
                    t(30, Unhealthy, Healthy),
                    t(20, Unknown, Unhealthy),
                ],
                Some(Resumed {
                    down_since: at(40),
                    unhealthy_at: at(50),
                    unhealthy_now: true,
                }),
            ),
        ];
        for (history, expected) in table {
            assert_eq!(resume_from(history), expected, "{history:?}");
        }
    }

    #[test]
    fn a_resumed_incident_threads_its_recovery_after_the_stored_unhealthy_mail() {
        let mut policy = Policy::new("host", None);
        let spec = spec();
        let resumed = Resumed {
            down_since: at(0),
            unhealthy_at: at(20),
            unhealthy_now: false,
        };
        let transition = t(100, Degraded, Healthy);
        let input = Input {
            name: &name(),
            spec: &spec,
            transition: &transition,
            recent: &[],
        };
        assert!(policy.needs_history(&input));
        policy.resume(&name(), &spec, resumed, at(100));
        assert!(!policy.needs_history(&input));
        let actions = policy.on_transition(input, at(100));
        let [Action::Mail(mail)] = actions.as_slice() else {
            panic!("one mail: {actions:?}");
        };
        assert_eq!(mail.kind, K::Healthy);
        assert_eq!(mail.down_since, at(0));
        let root = render::message_id(K::Unhealthy, "nas", at(20), "host");
        assert_eq!(mail.in_reply_to.as_ref(), Some(&root));
        assert_eq!(mail.references, [root]);
    }

    #[test]
    fn a_fall_back_after_a_restart_is_not_mailed_again() {
        let mut policy = Policy::new("host", None);
        let spec = spec();
        let history = [
            t(30, Unhealthy, Degraded),
            t(20, Degraded, Unhealthy),
            t(10, Healthy, Degraded),
        ];
        let resumed = resume_from(&history).expect("open incident");
        policy.resume(&name(), &spec, resumed, at(40));
        let transition = t(40, Degraded, Unhealthy);
        let actions = policy.on_transition(
            Input {
                name: &name(),
                spec: &spec,
                transition: &transition,
                recent: &[],
            },
            at(40),
        );
        assert_eq!(actions, [Action::Note(Note::StillInIncident)]);
    }
}
