//! The words of a message, shared by the chat and push kinds: a title and a few lines, every
//! piece of outside text made one safe line first.

use std::time::Duration;

use crate::alerting::Event;
use crate::config::channel::EventKind;
use crate::notify::render::{human_duration, one_line};

/// What a person reads: a title and a body, and what the message is about (for its priority).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// One line.
    pub title: String,
    /// A few lines, `\n` line ends.
    pub body: String,
    /// What it tells.
    pub kind: EventKind,
    /// When it happened.
    pub time: chrono::DateTime<chrono::Utc>,
}

impl Text {
    /// The text of one event.
    pub fn of(event: &Event, server_url: &str) -> Text {
        Text {
            title: title(event),
            body: body(event, server_url),
            kind: event.kind,
            time: event.time,
        }
    }

    /// The text of the alerts of one host that go out together: `nas.lan: 3 apps UNHEALTHY`,
    /// a line per app.
    pub fn of_group(host: &str, events: &[Event], server_url: &str) -> Text {
        let kind = events
            .first()
            .map_or(EventKind::Unhealthy, |event| event.kind);
        let what = match kind {
            EventKind::Recovered => "HEALTHY again",
            _ => "UNHEALTHY",
        };
        let mut body = String::new();
        for event in events {
            body.push_str(&format!(
                "{}: {}\n",
                one_line(event.app.as_str(), 64),
                reason(event)
            ));
        }
        body.push_str(&format!("Dashboard: {}", one_line(server_url, 200)));
        Text {
            title: format!("{}: {} apps {what}", one_line(host, 100), events.len()),
            body,
            kind,
            time: events
                .last()
                .map_or_else(chrono::Utc::now, |event| event.time),
        }
    }
}

/// Longest reason shown, in characters.
const REASON_MAX: usize = 300;

/// `nas is UNHEALTHY`, `nas is HEALTHY again`, ...
pub fn title(event: &Event) -> String {
    let app = one_line(event.app.as_str(), 64);
    match event.kind {
        EventKind::Degraded => format!("{app} is DEGRADED"),
        EventKind::Unhealthy => format!("{app} is UNHEALTHY"),
        EventKind::Reminder => format!("{app} is still UNHEALTHY"),
        EventKind::Recovered => format!("{app} is HEALTHY again"),
        EventKind::Test => "healthchecker test message".to_owned(),
        EventKind::Flapping => format!("{app} is FLAPPING"),
        EventKind::Storm => format!("{app}: many monitors failed at once"),
    }
}

/// The reason of the change, one line.
pub fn reason(event: &Event) -> String {
    one_line(&event.transition.reason, REASON_MAX)
}

/// The body: what happened, why, since when, and where to look. `\n` line ends.
pub fn body(event: &Event, server_url: &str) -> String {
    if event.kind == EventKind::Test {
        return format!(
            "{}\nThis channel works: healthchecker-server at {} can reach it.",
            reason(event),
            one_line(server_url, 200)
        );
    }
    // The downtime of the incident, as the mail says it (see `IncidentInfo`).
    let incident = &event.incident;
    let lasted = human_duration(Duration::from_secs(incident.downtime_s));
    let utc = |time: chrono::DateTime<chrono::Utc>| time.format("%Y-%m-%d %H:%M:%S UTC");
    let since = utc(incident.opened_at);
    let (change, time) = match event.kind {
        EventKind::Recovered => {
            let worst = if incident.was_unhealthy {
                "UNHEALTHY"
            } else {
                "DEGRADED"
            };
            let back = utc(incident.back_at.unwrap_or(event.transition.time));
            let label = if incident.was_unhealthy {
                "Downtime"
            } else {
                "Degraded for"
            };
            (
                format!("{worst} -> HEALTHY"),
                format!("{worst} since {since}, back at {back}; {label}: {lasted}"),
            )
        }
        EventKind::Degraded => (
            format!("{} -> {}", event.transition.from, event.transition.to),
            format!("Degraded since {since}"),
        ),
        EventKind::Unhealthy if incident.opened_at == event.transition.time => (
            format!("{} -> {}", event.transition.from, event.transition.to),
            format!("Down since {since}"),
        ),
        _ => (
            format!("{} -> {}", event.transition.from, event.transition.to),
            format!("Down for: {lasted} (since {since})"),
        ),
    };
    format!(
        "{change}: {}\nChecked: {}\n{time}\nDashboard: {}",
        reason(event),
        one_line(&event.url, 500),
        one_line(server_url, 200),
    )
}

/// The transition's reason split into its code and detail: `timeout: no answer within 5 s` is
/// `("timeout", Some("no answer within 5 s"))`.
pub fn reason_parts(event: &Event) -> (String, Option<String>) {
    let reason = &event.transition.reason;
    match reason.split_once(": ") {
        Some((code, detail)) if !code.contains(' ') => (code.to_owned(), Some(detail.to_owned())),
        _ => (reason.clone(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HOSTILE_APP, HOSTILE_REASON, event};
    use super::*;

    #[test]
    fn titles_and_bodies() {
        let unhealthy = event(EventKind::Unhealthy, "nas", "timeout: no answer within 5 s");
        assert_eq!(title(&unhealthy), "nas is UNHEALTHY");
        assert_eq!(
            body(&unhealthy, "http://hc.lan:8080"),
            "DEGRADED -> UNHEALTHY: timeout: no answer within 5 s\n\
             Checked: http://192.168.1.30:8096/health\n\
             Down for: 1 min 30 s (since 2025-11-21 08:50:00 UTC)\n\
             Dashboard: http://hc.lan:8080"
        );
        // A job that reported its failure is down from that check, not "for 0 s".
        let mut failed_at_once =
            event(EventKind::Unhealthy, "backup", "job_failed: exit status 11");
        failed_at_once.incident.opened_at = failed_at_once.transition.time;
        assert!(
            body(&failed_at_once, "x").contains("\nDown since 2025-11-21 08:51:30 UTC\n"),
            "{}",
            body(&failed_at_once, "x")
        );
        let recovered = event(EventKind::Recovered, "nas", "ok");
        assert_eq!(title(&recovered), "nas is HEALTHY again");
        assert!(body(&recovered, "x").contains("Downtime: 1 min 30 s"));
        assert_eq!(
            reason_parts(&unhealthy),
            (
                "timeout".to_owned(),
                Some("no answer within 5 s".to_owned())
            )
        );
        assert_eq!(reason_parts(&recovered), ("ok".to_owned(), None));
    }

    #[test]
    fn hostile_text_stays_one_line() {
        let hostile = event(EventKind::Unhealthy, HOSTILE_APP, HOSTILE_REASON);
        assert!(!title(&hostile).contains(['\r', '\n', '\0']));
        let body = body(&hostile, "http://hc");
        assert_eq!(body.lines().count(), 4, "{body}");
        assert!(!body.contains(['\r', '\0', '\u{202E}']), "{body:?}");
    }
}
