//! Scheduled maintenance of the config file: `[[maintenance]]` tables validated into
//! [`Window`]s.
//!
//! ```toml
//! [[maintenance]]
//! monitors = ["nas", "media-center"]   # or "*" for every monitor
//! schedule = "0 3 * * SUN"             # five-field cron: when each window starts
//! duration = "1h"                      # how long it lasts: 90m, 1h30m, 2h, 1d
//! tz = "Europe/Berlin"                 # the schedule's time zone (IANA); default UTC
//! reason = "weekly backup"
//! ```
//!
//! During a window the monitors' checks go on and are logged, and nothing is told about them;
//! when it ends, what is still wrong is told (see [`crate::alerting`]). A start that a daylight
//! saving change skips (02:30 on the night clocks go forward) happens at the change, as cron
//! runs a skipped job.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use super::TableError;

/// The longest window: a week.
pub const DURATION_MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A `[[maintenance]]` table as written, before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Monitor names, or `"*"` for all.
    pub monitors: Option<Monitors>,
    /// Five-field cron of each window's start.
    pub schedule: Option<String>,
    /// How long each window lasts: `30m`, `1h30m`, `2h`, `1d`, or a number of minutes.
    pub duration: Option<DurationText>,
    /// The schedule's time zone, e.g. `Europe/Berlin`; UTC by default.
    pub tz: Option<String>,
    /// Why (shown with the monitors).
    pub reason: Option<String>,
}

/// `monitors`: one name (or `"*"`) or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Monitors {
    /// One name, or `"*"`.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

/// `duration`: text such as `1h30m`, or whole minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationText {
    /// Minutes.
    Minutes(u64),
    /// `90m`, `2h`, `1d`, `1h 30m`.
    Text(String),
}

/// Which monitors a window is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every monitor.
    All,
    /// These, by name.
    Names(Vec<String>),
}

/// A scheduled maintenance window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Which monitors.
    pub monitors: Selector,
    /// When each window starts.
    pub schedule: Cron,
    /// The schedule as written.
    pub schedule_text: String,
    /// How long each lasts.
    pub duration: Duration,
    /// The schedule's time zone.
    pub tz: Tz,
    /// Why.
    pub reason: String,
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.monitors == other.monitors
            && self.schedule_text == other.schedule_text
            && self.duration == other.duration
            && self.tz == other.tz
            && self.reason == other.reason
    }
}

impl Window {
    /// Whether the window is for the monitor `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        match &self.monitors {
            Selector::All => true,
            Selector::Names(names) => names.iter().any(|n| n == name),
        }
    }

    /// The end of the window `now` is in, if it is in one.
    pub fn active_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        let start = self.schedule.find_previous_occurrence(&local, true).ok()?;
        let end = start.with_timezone(&Utc) + chrono::Duration::from_std(self.duration).ok()?;
        (end > now).then_some(end)
    }

    /// When the next window starts after `now`.
    pub fn next_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        self.schedule
            .find_next_occurrence(&local, false)
            .ok()
            .map(|start| start.with_timezone(&Utc))
    }
}

/// A five-field cron pattern (minute hour day-of-month month day-of-week), as every cron reads it.
///
/// # Errors
///
/// What is wrong with it, in croner's words.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text.trim())
        .map_err(|error| error.to_string())
}

/// An IANA time zone name (`Europe/Berlin`, `UTC`).
///
/// # Errors
///
/// When there is no such zone.
pub fn parse_tz(text: &str) -> Result<Tz, String> {
    text.trim()
        .parse::<Tz>()
        .map_err(|_| format!("{text:?} is not an IANA time zone such as Europe/Berlin or UTC"))
}

/// A duration as written: `90m`, `1h30m`, `2h`, `1d`.
///
/// # Errors
///
/// When it is not one.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("{text:?} is not a duration such as 30m, 1h30m, 2h or 1d"))
}

/// Validates the `[[maintenance]]` tables.
///
/// # Errors
///
/// The first [`TableError`], naming the table (by its position) and the field.
pub fn validate(raw: &[RawWindow]) -> Result<Vec<Window>, TableError> {
    raw.iter()
        .enumerate()
        .map(|(index, table)| table.validate(index))
        .collect()
}

impl RawWindow {
    fn validate(&self, index: usize) -> Result<Window, TableError> {
        let error = |field: &str, reason: String| TableError {
            kind: "maintenance",
            table: format!("#{}", index + 1),
            field: field.to_owned(),
            reason,
        };
        let monitors = match &self.monitors {
            Some(Monitors::One(name)) if name.trim() == "*" => Selector::All,
            Some(Monitors::One(name)) if !name.trim().is_empty() => {
                Selector::Names(vec![name.trim().to_owned()])
            }
            Some(Monitors::Many(names)) if !names.is_empty() => {
                if names.iter().any(|name| name.trim() == "*") {
                    Selector::All
                } else {
                    Selector::Names(names.iter().map(|name| name.trim().to_owned()).collect())
                }
            }
            _ => {
                return Err(error(
                    "monitors",
                    "is missing: the monitors' names, or \"*\" for all".into(),
                ));
            }
        };
        let schedule_text = self.schedule.clone().ok_or_else(|| {
            error(
                "schedule",
                "is missing: a five-field cron of when each window starts, e.g. \"0 3 * * SUN\""
                    .into(),
            )
        })?;
        let schedule = parse_cron(&schedule_text).map_err(|why| {
            error(
                "schedule",
                format!(
                    "{schedule_text:?} is not a five-field cron (minute hour day month weekday): {why}"
                ),
            )
        })?;
        let duration = match &self.duration {
            Some(DurationText::Minutes(minutes)) => Duration::from_secs(minutes.saturating_mul(60)),
            Some(DurationText::Text(text)) => {
                parse_duration(text).map_err(|why| error("duration", why))?
            }
            None => {
                return Err(error(
                    "duration",
                    "is missing: how long each window lasts, e.g. \"1h\"".into(),
                ));
            }
        };
        if duration < Duration::from_secs(60) || duration > DURATION_MAX {
            return Err(error(
                "duration",
                "is out of range: from 1 minute to 7 days".into(),
            ));
        }
        let tz = match &self.tz {
            Some(text) => parse_tz(text).map_err(|why| error("tz", why))?,
            None => Tz::UTC,
        };
        let reason = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
            .unwrap_or("scheduled maintenance")
            .chars()
            .take(200)
            .collect();
        Ok(Window {
            monitors,
            schedule,
            schedule_text,
            duration,
            tz,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(toml: &str) -> Result<Window, TableError> {
        let raw: RawWindow = toml::from_str(toml).expect("a table");
        validate(&[raw]).map(|mut windows| windows.remove(0))
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn a_weekly_window_in_a_zone_across_a_daylight_saving_change() {
        let w = window(
            "monitors = ['nas']\nschedule = '30 2 * * SUN'\nduration = '1h'\ntz = 'Europe/Berlin'",
        )
        .expect("valid");
        assert!(w.applies_to("nas") && !w.applies_to("other"));
        // 2026-03-22 (CET, +1): 02:30 local is 01:30 UTC
        assert_eq!(
            w.active_until(at("2026-03-22T01:45:00Z")),
            Some(at("2026-03-22T02:30:00Z"))
        );
        assert_eq!(w.active_until(at("2026-03-22T02:30:00Z")), None);
        // 2026-03-29 is the change to summer time: 02:30 does not exist that night; the window
        // starts at the change instead (as cron runs a job whose time was skipped), for an hour
        let end = w
            .active_until(at("2026-03-29T01:15:00Z"))
            .expect("still that night");
        assert!(
            (at("2026-03-29T01:30:00Z")..=at("2026-03-29T02:30:00Z")).contains(&end),
            "{end}"
        );
        // 2026-04-05 (CEST, +2): 02:30 local is 00:30 UTC
        assert_eq!(
            w.active_until(at("2026-04-05T00:40:00Z")),
            Some(at("2026-04-05T01:30:00Z"))
        );
        assert_eq!(
            w.next_start(at("2026-04-01T00:00:00Z")),
            Some(at("2026-04-05T00:30:00Z"))
        );
    }

    #[test]
    fn every_monitor_minutes_and_defaults() {
        let w = window("monitors = '*'\nschedule = '0 3 * * *'\nduration = 90").expect("valid");
        assert_eq!(w.monitors, Selector::All);
        assert_eq!(w.duration, Duration::from_secs(90 * 60));
        assert_eq!(w.tz, Tz::UTC);
        assert_eq!(w.reason, "scheduled maintenance");
        assert_eq!(
            w.active_until(at("2026-12-01T04:00:00Z")),
            Some(at("2026-12-01T04:30:00Z"))
        );
    }

    #[test]
    fn mistakes_name_the_table_and_the_field() {
        let cases = [
            ("schedule = '0 3 * * *'\nduration = '1h'", "monitors"),
            ("monitors = '*'\nduration = '1h'", "schedule"),
            (
                "monitors = '*'\nschedule = '0 3 * *'\nduration = '1h'",
                "schedule",
            ),
            (
                "monitors = '*'\nschedule = '0 0 3 * * *'\nduration = '1h'",
                "schedule",
            ),
            ("monitors = '*'\nschedule = '0 3 * * *'", "duration"),
            (
                "monitors = '*'\nschedule = '0 3 * * *'\nduration = 'soon'",
                "duration",
            ),
            (
                "monitors = '*'\nschedule = '0 3 * * *'\nduration = '30s'",
                "duration",
            ),
            (
                "monitors = '*'\nschedule = '0 3 * * *'\nduration = '8d'",
                "duration",
            ),
            (
                "monitors = '*'\nschedule = '0 3 * * *'\nduration = '1h'\ntz = 'Mars/Olympus'",
                "tz",
            ),
        ];
        for (toml, field) in cases {
            let error = window(toml).expect_err(toml);
            assert_eq!(error.field, field, "{toml}: {error}");
            assert!(
                error.to_string().starts_with("[[maintenance]] #1: "),
                "{error}"
            );
        }
    }
}
