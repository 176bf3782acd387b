//! The threshold state machine: outcomes of checks in, states and transitions out.
//!
//! A pure function of (state, counters, outcome, thresholds): no clock, no I/O. The scheduler feeds
//! it each check's [`Outcome`] and records the [`Transition`] it reports; `notify` decides what to
//! mail from transitions alone. The table (DESIGN.md, and `img/statemachine.svg`, which a test keeps
//! in step with [`TABLE`]):
//!
//! | from \ on   | pass | warn | fail |
//! |-------------|------|------|------|
//! | `UNKNOWN`   | `HEALTHY` | `DEGRADED` | `UNHEALTHY` once fails reach `unhealthy`, else stay |
//! | `HEALTHY`   | stay | `DEGRADED` | `DEGRADED` |
//! | `DEGRADED`  | `HEALTHY` once passes reach the need | stay | `UNHEALTHY` once fails reach `unhealthy` |
//! | `UNHEALTHY` | `DEGRADED`, or `HEALTHY` once passes reach `healthy` | `DEGRADED` | stay |
//!
//! The need to get back to `HEALTHY` is one pass after a blip (not `UNHEALTHY` since it was last
//! `HEALTHY`) and `healthy` passes in a row after a recovery. A pass resets the fail counter, a fail
//! the pass counter, and a warn both.
//!
//! Push monitors ([`crate::push`]) run through the same function with `unhealthy` and `healthy`
//! of 1, which polled monitors cannot have (their range starts at 2): one failure is enough, so
//! a fail in `HEALTHY` is `UNHEALTHY` at once (a failed job), and one success is a recovery.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The health of a monitored app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Not checked enough yet to say (the initial state).
    #[default]
    Unknown,
    /// Passing.
    Healthy,
    /// Warning, or failing but not for long enough to be called unhealthy, or recovering.
    Degraded,
    /// Failed `unhealthy` checks in a row.
    Unhealthy,
}

impl State {
    /// Every state, in the order of the table.
    pub const ALL: [State; 4] = [
        State::Unknown,
        State::Healthy,
        State::Degraded,
        State::Unhealthy,
    ];

    /// The name users see: `UNKNOWN`, `HEALTHY`, `DEGRADED`, `UNHEALTHY`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "UNKNOWN",
            State::Healthy => "HEALTHY",
            State::Degraded => "DEGRADED",
            State::Unhealthy => "UNHEALTHY",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown state {text:?}"))
    }
}

/// What one check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// HTTP 200 and a body that does not say otherwise.
    Pass,
    /// HTTP 200 with a body that says `warn`.
    Warn,
    /// Anything else.
    Fail,
}

impl Outcome {
    /// Every outcome, in the order of the table.
    pub const ALL: [Outcome; 3] = [Outcome::Pass, Outcome::Warn, Outcome::Fail];

    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| format!("unknown outcome {text:?}"))
    }
}

/// A monitor's thresholds: how many checks in a row make it unhealthy, or healthy again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Consecutive failed checks that make a monitor `UNHEALTHY`. 1 (push monitors only) makes
    /// a fail in `HEALTHY` go to `UNHEALTHY` at once rather than to `DEGRADED`.
    pub unhealthy: u32,
    /// Consecutive passed checks that make it `HEALTHY` again after it was `UNHEALTHY`.
    pub healthy: u32,
}

/// Everything the state machine remembers about one monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Health {
    /// The current state.
    pub state: State,
    /// Consecutive passed checks.
    pub passes: u32,
    /// Consecutive failed checks.
    pub fails: u32,
    /// Whether the monitor has been `UNHEALTHY` since it was last `HEALTHY`: then getting back to
    /// `HEALTHY` is a recovery and needs `healthy` passes in a row, not one.
    pub recovering: bool,
}

/// A change of state, as reported by [`Health::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// `to` is `HEALTHY` at the end of a recovery from `UNHEALTHY` (not after a mere blip).
    pub recovered: bool,
}

impl Change {
    /// This change as the log records it: caused by the check that started at `time`, for
    /// `reason`.
    pub fn transition(self, time: DateTime<Utc>, reason: String) -> Transition {
        Transition {
            time,
            from: self.from,
            to: self.to,
            reason,
        }
    }
}

impl Health {
    /// Applies one check's outcome; returns the new health and the change of state, if any.
    #[must_use]
    pub fn step(self, outcome: Outcome, thresholds: Thresholds) -> (Health, Option<Change>) {
        let mut next = self;
        match outcome {
            Outcome::Pass => {
                next.passes = self.passes.saturating_add(1);
                next.fails = 0;
            }
            Outcome::Fail => {
                next.fails = self.fails.saturating_add(1);
                next.passes = 0;
            }
            Outcome::Warn => {
                next.passes = 0;
                next.fails = 0;
            }
        }
        let failed_enough = next.fails >= thresholds.unhealthy;
        let need = if self.recovering {
            thresholds.healthy
        } else {
            1
        };
        next.state = match (self.state, outcome) {
            (State::Unknown, Outcome::Pass) => State::Healthy,
            (State::Unknown | State::Degraded, Outcome::Fail) if failed_enough => State::Unhealthy,
            (State::Healthy, Outcome::Fail) if thresholds.unhealthy <= 1 => State::Unhealthy,
            (State::Unknown, Outcome::Fail) => State::Unknown,
            (State::Healthy, Outcome::Pass) => State::Healthy,
            (State::Degraded, Outcome::Pass) if next.passes >= need => State::Healthy,
            (State::Unhealthy, Outcome::Pass) if next.passes >= thresholds.healthy => {
                State::Healthy
            }
            (State::Unhealthy, Outcome::Fail) => State::Unhealthy,
            (_, Outcome::Pass | Outcome::Warn | Outcome::Fail) => State::Degraded,
        };
        match next.state {
            State::Unhealthy => next.recovering = true,
            State::Healthy => next.recovering = false,
            State::Unknown | State::Degraded => {}
        }
        let change = (next.state != self.state).then_some(Change {
            from: self.state,
            to: next.state,
            recovered: next.state == State::Healthy && self.recovering,
        });
        (next, change)
    }
}

/// A change of state as recorded in the log: when, from, to, and the check that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// When the check that caused it started (UTC).
    pub time: DateTime<Utc>,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why, in words: the check's reason and detail, e.g. `timeout: no answer within 5 s`.
    pub reason: String,
}

/// One cell of the transition table, as words: the state after `outcome` in `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The state the monitor is in.
    pub from: State,
    /// The outcome of the check.
    pub on: Outcome,
    /// Where it can go (more than one target when a threshold decides).
    pub to: &'static [State],
    /// When it goes there.
    pub when: &'static str,
}

/// The transition table, cell by cell: what `img/statemachine.svg` draws and the tests check
/// [`Health::step`] against. A staying cell has `to == [from]`.
pub const TABLE: &[Rule] = &[
    Rule {
        from: State::Unknown,
        on: Outcome::Pass,
        to: &[State::Healthy],
        when: "first pass",
    },
    Rule {
        from: State::Unknown,
        on: Outcome::Warn,
        to: &[State::Degraded],
        when: "warn",
    },
    Rule {
        from: State::Unknown,
        on: Outcome::Fail,
        to: &[State::Unknown, State::Unhealthy],
        when: "fails reach unhealthy",
    },
    Rule {
        from: State::Healthy,
        on: Outcome::Pass,
        to: &[State::Healthy],
        when: "",
    },
    Rule {
        from: State::Healthy,
        on: Outcome::Warn,
        to: &[State::Degraded],
        when: "warn",
    },
    Rule {
        from: State::Healthy,
        on: Outcome::Fail,
        to: &[State::Degraded],
        when: "fail",
    },
    Rule {
        from: State::Degraded,
        on: Outcome::Pass,
        to: &[State::Degraded, State::Healthy],
        when: "1 pass after a blip, healthy passes after a recovery",
    },
    Rule {
        from: State::Degraded,
        on: Outcome::Warn,
        to: &[State::Degraded],
        when: "",
    },
    Rule {
        from: State::Degraded,
        on: Outcome::Fail,
        to: &[State::Degraded, State::Unhealthy],
        when: "fails reach unhealthy",
    },
    Rule {
        from: State::Unhealthy,
        on: Outcome::Pass,
        to: &[State::Degraded, State::Healthy],
        when: "passes reach healthy",
    },
    Rule {
        from: State::Unhealthy,
        on: Outcome::Warn,
        to: &[State::Degraded],
        when: "warn",
    },
    Rule {
        from: State::Unhealthy,
        on: Outcome::Fail,
        to: &[State::Unhealthy],
        when: "",
    },
];

#[cfg(test)]
mod tests {
    use super::Outcome::{Fail, Pass, Warn};
    use super::State::{Degraded, Healthy, Unhealthy, Unknown};
    use super::*;

    const T: Thresholds = Thresholds {
        unhealthy: 2,
        healthy: 3,
    };

    /// Runs `steps` from a fresh monitor; each step is (outcome, state after, passes, fails).
    fn run(thresholds: Thresholds, steps: &[(Outcome, State, u32, u32)]) -> Health {
        let mut health = Health::default();
        for (i, &(outcome, state, passes, fails)) in steps.iter().enumerate() {
            health = health.step(outcome, thresholds).0;
            assert_eq!(
                (health.state, health.passes, health.fails),
                (state, passes, fails),
                "step {i}: after {outcome} in {steps:?}"
            );
        }
        health
    }

    #[test]
    fn unknown_row() {
        run(T, &[(Pass, Healthy, 1, 0)]);
        run(T, &[(Warn, Degraded, 0, 0)]);
        run(T, &[(Fail, Unknown, 0, 1), (Fail, Unhealthy, 0, 2)]);
        run(T, &[(Fail, Unknown, 0, 1), (Pass, Healthy, 1, 0)]);
        let five = Thresholds {
            unhealthy: 5,
            healthy: 2,
        };
        run(
            five,
            &[
                (Fail, Unknown, 0, 1),
                (Fail, Unknown, 0, 2),
                (Fail, Unknown, 0, 3),
                (Fail, Unknown, 0, 4),
                (Fail, Unhealthy, 0, 5),
            ],
        );
    }

    #[test]
    fn healthy_row() {
        run(T, &[(Pass, Healthy, 1, 0), (Pass, Healthy, 2, 0)]);
        run(T, &[(Pass, Healthy, 1, 0), (Warn, Degraded, 0, 0)]);
        run(T, &[(Pass, Healthy, 1, 0), (Fail, Degraded, 0, 1)]);
    }

    #[test]
    fn degraded_row_after_a_blip_needs_one_pass() {
        run(
            T,
            &[
                (Pass, Healthy, 1, 0),
                (Fail, Degraded, 0, 1),
                (Pass, Healthy, 1, 0),
            ],
        );
        run(T, &[(Warn, Degraded, 0, 0), (Pass, Healthy, 1, 0)]);
        run(
            T,
            &[
                (Pass, Healthy, 1, 0),
                (Warn, Degraded, 0, 0),
                (Warn, Degraded, 0, 0),
            ],
        );
        run(
            T,
            &[
                (Pass, Healthy, 1, 0),
                (Fail, Degraded, 0, 1),
                (Fail, Unhealthy, 0, 2),
            ],
        );
        // a warn between two fails resets the count: not two fails in a row
        run(
            T,
            &[
                (Pass, Healthy, 1, 0),
                (Fail, Degraded, 0, 1),
                (Warn, Degraded, 0, 0),
                (Fail, Degraded, 0, 1),
            ],
        );
    }

    #[test]
    fn degraded_row_during_a_recovery_needs_healthy_passes() {
        let down = [(Fail, Unknown, 0, 1), (Fail, Unhealthy, 0, 2)];
        let mut steps = down.to_vec();
        steps.extend([
            (Pass, Degraded, 1, 0),
            (Pass, Degraded, 2, 0),
            (Pass, Healthy, 3, 0),
        ]);
        run(T, &steps);
        // a fail during the recovery starts the count again, and falls back once fails reach unhealthy
        let mut steps = down.to_vec();
        steps.extend([
            (Pass, Degraded, 1, 0),
            (Fail, Degraded, 0, 1),
            (Pass, Degraded, 1, 0),
            (Pass, Degraded, 2, 0),
        ]);
        steps.extend([(Fail, Degraded, 0, 1), (Fail, Unhealthy, 0, 2)]);
        run(T, &steps);
        // a warn while recovering keeps it degraded and restarts the count
        let mut steps = down.to_vec();
        steps.extend([
            (Pass, Degraded, 1, 0),
            (Warn, Degraded, 0, 0),
            (Pass, Degraded, 1, 0),
            (Pass, Degraded, 2, 0),
        ]);
        steps.push((Pass, Healthy, 3, 0));
        run(T, &steps);
    }

    #[test]
    fn unhealthy_row() {
        let down = [(Fail, Unknown, 0, 1), (Fail, Unhealthy, 0, 2)];
        let with = |more: &[(Outcome, State, u32, u32)]| {
            let mut steps = down.to_vec();
            steps.extend_from_slice(more);
            run(T, &steps)
        };
        with(&[(Fail, Unhealthy, 0, 3)]);
        with(&[(Warn, Degraded, 0, 0)]);
        with(&[(Pass, Degraded, 1, 0)]);
        // healthy passes straight from UNHEALTHY when the threshold is met in one step is impossible
        // (healthy >= 2), but the rule holds for any threshold the state machine is given
        let one = Thresholds {
            unhealthy: 2,
            healthy: 1,
        };
        run(
            one,
            &[
                (Fail, Unknown, 0, 1),
                (Fail, Unhealthy, 0, 2),
                (Pass, Healthy, 1, 0),
            ],
        );
    }

    #[test]
    fn changes_are_reported_with_recovery_marked() {
        let mut health = Health::default();
        let mut changes = Vec::new();
        for outcome in [Pass, Fail, Pass, Fail, Fail, Pass, Pass, Pass, Pass] {
            let (next, change) = health.step(outcome, T);
            health = next;
            changes.extend(change);
        }
        let expected = [
            Change {
                from: Unknown,
                to: Healthy,
                recovered: false,
            },
            Change {
                from: Healthy,
                to: Degraded,
                recovered: false,
            },
            Change {
                from: Degraded,
                to: Healthy,
                recovered: false,
            },
            Change {
                from: Healthy,
                to: Degraded,
                recovered: false,
            },
            Change {
                from: Degraded,
                to: Unhealthy,
                recovered: false,
            },
            Change {
                from: Unhealthy,
                to: Degraded,
                recovered: false,
            },
            Change {
                from: Degraded,
                to: Healthy,
                recovered: true,
            },
        ];
        assert_eq!(changes, expected);
    }

    /// Push monitors (thresholds of 1): a failure is `UNHEALTHY` from any state, a warn (late)
    /// `DEGRADED`, and one success is the recovery.
    #[test]
    fn thresholds_of_one_for_push_monitors() {
        let one = Thresholds {
            unhealthy: 1,
            healthy: 1,
        };
        run(one, &[(Fail, Unhealthy, 0, 1), (Pass, Healthy, 1, 0)]);
        run(one, &[(Pass, Healthy, 1, 0), (Fail, Unhealthy, 0, 1)]);
        let end = run(
            one,
            &[
                (Pass, Healthy, 1, 0),
                (Warn, Degraded, 0, 0),
                (Fail, Unhealthy, 0, 1),
                (Pass, Healthy, 1, 0),
            ],
        );
        assert!(!end.recovering);
        let (_, change) = Health {
            state: Unhealthy,
            passes: 0,
            fails: 1,
            recovering: true,
        }
        .step(Pass, one);
        assert!(change.is_some_and(|change| change.recovered));
    }

    /// Every cell of [`TABLE`] agrees with [`Health::step`], from every reachable counter value.
    #[test]
    fn table_matches_the_step_function() {
        for rule in TABLE {
            let mut seen = Vec::new();
            for passes in 0..4 {
                for fails in 0..4 {
                    for recovering in [false, true] {
                        let before = Health {
                            state: rule.from,
                            passes,
                            fails,
                            recovering,
                        };
                        seen.push(before.step(rule.on, T).0.state);
                    }
                }
            }
            seen.sort_by_key(|state| *state as u8);
            seen.dedup();
            let mut expected = rule.to.to_vec();
            expected.sort_by_key(|state| *state as u8);
            assert_eq!(seen, expected, "{:?} on {}", rule.from, rule.on);
        }
        for from in State::ALL {
            for on in Outcome::ALL {
                assert_eq!(
                    TABLE
                        .iter()
                        .filter(|rule| rule.from == from && rule.on == on)
                        .count(),
                    1
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
            assert_eq!(serde_json::to_value(state).expect("json"), state.as_str());
        }
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
    }
}
