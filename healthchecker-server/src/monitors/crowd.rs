//! What the monitors know of each other: how many are failing (the storm rule) and which are in
//! flux on each host (host grouping). Counts only, updated as each check's result changes a
//! monitor's part; the rules themselves are [`crate::alerting::storm`].

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alerting::storm::{Storm, StormChange, StormRules, in_flux};
use crate::config::channel::EventKind;
use crate::health::{Outcome, State};

/// A monitor's part in the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Part {
    /// Checked (not paused).
    active: bool,
    /// Its last check failed.
    failing: bool,
    /// In flux for alerts: failing, not `UNHEALTHY` yet.
    going_down: bool,
    /// In flux for recoveries: passing, not `HEALTHY` yet.
    coming_back: bool,
}

impl Part {
    /// The part of a monitor that is `paused` or not, in `state`, whose last check had `outcome`.
    pub(super) fn of(paused: bool, state: State, outcome: Option<Outcome>) -> Part {
        if paused {
            return Part::default();
        }
        Part {
            active: true,
            failing: outcome == Some(Outcome::Fail),
            going_down: in_flux(EventKind::Unhealthy, state, outcome),
            coming_back: in_flux(EventKind::Recovered, state, outcome),
        }
    }
}

/// One host's monitors.
#[derive(Debug, Clone, Copy, Default)]
struct Host {
    monitors: usize,
    /// The longest time among them from a check to the next one's answer (interval and timeout;
    /// not lowered when one leaves).
    longest: Duration,
    going_down: usize,
    coming_back: usize,
}

/// The counts, and the storm rule's state.
#[derive(Debug)]
pub(super) struct Crowd {
    storm: Storm,
    rules: StormRules,
    active: usize,
    failing: usize,
    hosts: HashMap<String, Host>,
}

impl Crowd {
    pub(super) fn new(rules: StormRules, storm: Storm) -> Crowd {
        Crowd {
            storm,
            rules,
            active: 0,
            failing: 0,
            hosts: HashMap::new(),
        }
    }

    /// A monitor on `host` whose next check answers `within` a check's ([`MonitorSpec::next_answer_within`])
    /// joins with `part`.
    ///
    /// [`MonitorSpec::next_answer_within`]: crate::registry::MonitorSpec::next_answer_within
    pub(super) fn join(&mut self, host: &str, within: Duration, part: Part) {
        let entry = self.hosts.entry(host.to_owned()).or_default();
        entry.monitors += 1;
        entry.longest = entry.longest.max(within);
        self.change(host, Part::default(), part);
    }

    /// A monitor on `host` whose part was `part` leaves.
    pub(super) fn leave(&mut self, host: &str, part: Part) {
        self.change(host, part, Part::default());
        if let Some(entry) = self.hosts.get_mut(host) {
            entry.monitors = entry.monitors.saturating_sub(1);
            if entry.monitors == 0 {
                self.hosts.remove(host);
            }
        }
    }

    /// A monitor's part changed from `old` to `new`. Returns the kind of alerts whose group on
    /// `host` is released: nobody there is in flux for them any more.
    pub(super) fn change(&mut self, host: &str, old: Part, new: Part) -> Option<EventKind> {
        if old == new {
            return None;
        }
        let step = |count: &mut usize, was: bool, is: bool| match (was, is) {
            (false, true) => *count += 1,
            (true, false) => *count = count.saturating_sub(1),
            _ => {}
        };
        step(&mut self.active, old.active, new.active);
        step(&mut self.failing, old.failing, new.failing);
        let entry = self.hosts.entry(host.to_owned()).or_default();
        let (down, back) = (entry.going_down, entry.coming_back);
        step(&mut entry.going_down, old.going_down, new.going_down);
        step(&mut entry.coming_back, old.coming_back, new.coming_back);
        if down > 0 && entry.going_down == 0 {
            Some(EventKind::Unhealthy)
        } else if back > 0 && entry.coming_back == 0 {
            Some(EventKind::Recovered)
        } else {
            None
        }
    }

    /// Applies the storm rule to the counts as they are.
    pub(super) fn storm_step(&mut self, now: DateTime<Utc>) -> Option<StormChange> {
        self.storm.step(self.failing, self.active, self.rules, now)
    }

    /// Whether alerts of a monitor checked every `interval` are held by a storm at `now`.
    pub(super) fn holds(&self, interval: Duration, now: DateTime<Utc>) -> bool {
        self.storm.holds(interval, now)
    }

    /// How long an alert of `kind` on `host` waits for the others in flux there: until the
    /// slowest of the host's monitors has had its next check answered (its interval and timeout),
    /// or `None` when nobody else is in flux.
    pub(super) fn wait_for_host(&self, host: &str, kind: EventKind) -> Option<Duration> {
        let entry = self.hosts.get(host)?;
        let others = match kind {
            EventKind::Unhealthy => entry.going_down,
            EventKind::Recovered => entry.coming_back,
            _ => 0,
        };
        (others > 0).then_some(entry.longest)
    }

    /// The storm rule's state, for the store.
    pub(super) fn storm(&self) -> Storm {
        self.storm
    }

    /// Monitors failing, and active ones.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.failing, self.active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_715_000 + secs, 0).expect("valid time")
    }

    #[test]
    fn a_host_is_released_when_its_last_monitor_in_flux_decides() {
        let mut crowd = Crowd::new(StormRules::default(), Storm::default());
        let healthy = Part::of(false, State::Healthy, Some(Outcome::Pass));
        let falling = Part::of(false, State::Degraded, Some(Outcome::Fail));
        let down = Part::of(false, State::Unhealthy, Some(Outcome::Fail));
        for _ in 0..3 {
            crowd.join("nas", Duration::from_secs(30), healthy);
        }
        crowd.join("nas", Duration::from_secs(60), healthy);
        crowd.join("router", Duration::from_secs(10), healthy);
        // two fail: both in flux
        assert_eq!(crowd.change("nas", healthy, falling), None);
        assert_eq!(crowd.change("nas", healthy, falling), None);
        // the first goes down: the other is still in flux, so it waits the longest time
        assert_eq!(crowd.change("nas", falling, down), None);
        assert_eq!(
            crowd.wait_for_host("nas", EventKind::Unhealthy),
            Some(Duration::from_secs(60))
        );
        assert_eq!(crowd.wait_for_host("router", EventKind::Unhealthy), None);
        // the second goes down too: the group is released
        assert_eq!(
            crowd.change("nas", falling, down),
            Some(EventKind::Unhealthy)
        );
        assert_eq!(crowd.wait_for_host("nas", EventKind::Unhealthy), None);
        assert_eq!(crowd.counts(), (2, 5));
        // pausing one takes it out of the counts
        crowd.change(
            "nas",
            down,
            Part::of(true, State::Unhealthy, Some(Outcome::Fail)),
        );
        assert_eq!(crowd.counts(), (1, 4));
        crowd.leave("router", healthy);
        assert_eq!(crowd.counts(), (1, 3));
    }

    #[test]
    fn the_storm_follows_the_counts() {
        let mut crowd = Crowd::new(StormRules::default(), Storm::default());
        let healthy = Part::of(false, State::Healthy, Some(Outcome::Pass));
        let failing = Part::of(false, State::Degraded, Some(Outcome::Fail));
        for _ in 0..20 {
            crowd.join("h", Duration::from_secs(30), healthy);
        }
        for i in 0..12 {
            crowd.change("h", healthy, failing);
            let change = crowd.storm_step(at(i));
            if i == 9 {
                assert_eq!(
                    change,
                    Some(StormChange::Began {
                        failing: 10,
                        active: 20,
                        tell: true
                    })
                );
            } else {
                assert_eq!(change, None, "{i}");
            }
        }
        assert!(crowd.holds(Duration::from_secs(30), at(20)));
        for _ in 0..3 {
            crowd.change("h", failing, healthy);
        }
        assert_eq!(crowd.storm_step(at(30)), Some(StormChange::Cleared));
        assert!(crowd.holds(Duration::from_secs(30), at(89)));
        assert!(!crowd.holds(Duration::from_secs(30), at(90)));
    }
}
