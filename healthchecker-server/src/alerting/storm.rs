//! Many monitors at once: the storm rule and host grouping, as pure functions of counts and time.
//!
//! * **Storm**: a storm begins when at least `storm_fraction` of the active monitors (and at
//!   least `storm_min`) are failing (their last check failed); it lasts while at least that
//!   fraction fails, and clears when fewer do. At its start one message asks whether the
//!   server's own network is up; per-app alerts are held during it and for two intervals after
//!   it clears (a monitor still `UNHEALTHY` then is told, see [`super::Quiet`]).
//! * **Host grouping**: a monitor is *in flux* on its host when its last check failed but it is
//!   not `UNHEALTHY` yet (for alerts), or its last check passed but it is not `HEALTHY` yet (for
//!   recoveries). An alert of a monitor whose host has others in flux waits until none is, at
//!   most until their next checks have answered (the host's longest interval and timeout: a
//!   check due a hair after one interval still counts); then the host's alerts go out together,
//!   one message per recipient and channel.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::channel::EventKind;
use crate::health::{Outcome, State};

/// The storm rule's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormRules {
    /// The fraction of active monitors that must be failing.
    pub fraction: f64,
    /// The fewest failing monitors that make a storm.
    pub min: usize,
}

/// Default `storm_fraction`.
pub const STORM_FRACTION: f64 = 0.5;

/// Default `storm_min`.
pub const STORM_MIN: usize = 5;

impl Default for StormRules {
    fn default() -> Self {
        StormRules {
            fraction: STORM_FRACTION,
            min: STORM_MIN,
        }
    }
}

/// Where the storm rule stands; kept in the store so a restart neither tells it again nor
/// forgets the alerts it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Storm {
    /// When the storm began, while it lasts.
    pub started: Option<DateTime<Utc>>,
    /// When the last storm cleared.
    pub cleared: Option<DateTime<Utc>>,
}

/// A change of the storm rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormChange {
    /// A storm begins: `failing` of `active` monitors failed.
    Began {
        /// Monitors failing.
        failing: usize,
        /// Active (not paused) monitors.
        active: usize,
        /// Whether to tell it: not when it is the last storm coming back within
        /// [`STORM_ECHO`] of clearing (the counts hover around the threshold).
        tell: bool,
    },
    /// The storm cleared.
    Cleared,
}

/// A storm that begins within this long after the last one cleared is told no second time: the
/// same outage, its counts hovering around the threshold.
pub const STORM_ECHO: Duration = Duration::from_secs(30 * 60);

impl Storm {
    /// The rule after the counts changed to `failing` of `active`, at `now`.
    pub fn step(
        &mut self,
        failing: usize,
        active: usize,
        rules: StormRules,
        now: DateTime<Utc>,
    ) -> Option<StormChange> {
        // Compared in whole numbers: failing / active >= fraction.
        let enough = active > 0 && failing as f64 >= rules.fraction * active as f64;
        match self.started {
            None if enough && failing >= rules.min => {
                self.started = Some(now);
                let echo = chrono::Duration::from_std(STORM_ECHO).unwrap_or(chrono::Duration::MAX);
                let tell = self.cleared.is_none_or(|cleared| now >= cleared + echo);
                Some(StormChange::Began {
                    failing,
                    active,
                    tell,
                })
            }
            Some(_) if !enough => {
                self.started = None;
                self.cleared = Some(now);
                Some(StormChange::Cleared)
            }
            _ => None,
        }
    }

    /// Whether alerts of a monitor checked every `interval` are held at `now`: during a storm,
    /// and for two of its intervals after it cleared.
    pub fn holds(&self, interval: Duration, now: DateTime<Utc>) -> bool {
        if self.started.is_some() {
            return true;
        }
        let after = chrono::Duration::from_std(interval * 2).unwrap_or(chrono::Duration::MAX);
        self.cleared.is_some_and(|cleared| now < cleared + after)
    }
}

/// Whether a monitor in `state` after a check with `outcome` is in flux for alerts of `kind`
/// (see the module documentation).
pub fn in_flux(kind: EventKind, state: State, outcome: Option<Outcome>) -> bool {
    match kind {
        EventKind::Unhealthy => outcome == Some(Outcome::Fail) && state != State::Unhealthy,
        EventKind::Recovered => {
            outcome == Some(Outcome::Pass) && matches!(state, State::Degraded | State::Unhealthy)
        }
        _ => false,
    }
}

/// The group of a host's alerts of `kind`: `nas.lan unhealthy`; `None` for kinds that are not
/// grouped.
pub fn group_key(host: &str, kind: EventKind) -> Option<String> {
    matches!(kind, EventKind::Unhealthy | EventKind::Recovered)
        .then(|| format!("{host} {}", kind.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_715_000 + secs, 0).expect("valid time")
    }

    #[test]
    fn a_storm_begins_at_half_and_five_lasts_while_half_fail_and_holds_two_intervals_after() {
        let rules = StormRules::default();
        let mut storm = Storm::default();
        // (failing, active, change)
        let steps = [
            (4, 8, None),  // half, but fewer than 5
            (5, 20, None), // five, but a quarter
            (
                12,
                20,
                Some(StormChange::Began {
                    failing: 12,
                    active: 20,
                    tell: true,
                }),
            ),
            (11, 20, None), // still more than half
            (10, 20, None), // exactly half: lasts
            (9, 20, Some(StormChange::Cleared)),
            (9, 20, None),
        ];
        for (i, (failing, active, change)) in steps.into_iter().enumerate() {
            assert_eq!(
                storm.step(failing, active, rules, at(i as i64)),
                change,
                "step {i}"
            );
        }
        let interval = Duration::from_secs(30);
        assert!(storm.holds(interval, at(5)));
        assert!(
            storm.holds(interval, at(5 + 59)),
            "two intervals after it cleared"
        );
        assert!(!storm.holds(interval, at(5 + 60)));
        assert_eq!(
            storm.step(0, 0, rules, at(100)),
            None,
            "no monitors, no storm"
        );
        // back within half an hour: the same outage, not told again; later, a new one
        assert_eq!(
            storm.step(12, 20, rules, at(200)),
            Some(StormChange::Began {
                failing: 12,
                active: 20,
                tell: false
            })
        );
        assert_eq!(
            storm.step(5, 20, rules, at(300)),
            Some(StormChange::Cleared)
        );
        assert!(matches!(
            storm.step(12, 20, rules, at(300 + 1800)),
            Some(StormChange::Began { tell: true, .. })
        ));
    }

    #[test]
    fn what_is_in_flux() {
        use EventKind::{Recovered, Unhealthy};
        use Outcome::{Fail, Pass, Warn};
        let table = [
            (Unhealthy, State::Degraded, Some(Fail), true),
            (Unhealthy, State::Unknown, Some(Fail), true),
            (Unhealthy, State::Unhealthy, Some(Fail), false),
            (Unhealthy, State::Healthy, Some(Pass), false),
            (Unhealthy, State::Degraded, Some(Warn), false),
            (Recovered, State::Degraded, Some(Pass), true),
            (Recovered, State::Unhealthy, Some(Pass), true),
            (Recovered, State::Healthy, Some(Pass), false),
            (Recovered, State::Degraded, Some(Fail), false),
            (Unhealthy, State::Unknown, None, false),
        ];
        for (kind, state, outcome, flux) in table {
            assert_eq!(
                in_flux(kind, state, outcome),
                flux,
                "{kind} {state} {outcome:?}"
            );
        }
        assert_eq!(
            group_key("nas.lan", Unhealthy).as_deref(),
            Some("nas.lan unhealthy")
        );
        assert_eq!(group_key("nas.lan", EventKind::Degraded), None);
    }
}
