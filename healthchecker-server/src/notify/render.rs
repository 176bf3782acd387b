//! Email content: subjects, plain-text bodies and `Message-ID`s of events, as pure functions of
//! values.
//!
//! Nothing here reads a clock, the host name or the time zone: the time of the mail, the local time
//! zone and the host are arguments, so every function is table-tested.
//!
//! Anything that comes from the monitored app (its name, a reason, a detail) goes through
//! [`one_line`] before it is put in a subject or a body line: control characters (CR, LF, tab, ...)
//! and invisible formatting characters become spaces and the text is bounded. Headers are built
//! only through lettre's typed builder, which encodes whatever is left (see `smtp`).

use std::fmt::{self, Write as _};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use healthchecker_client::api::encode_segment;

use crate::alerting::{Event, EventKind};
use crate::config::Zone;
use crate::probe::Reason;
use crate::store::LoggedCheck;
use crate::text::is_unsafe;

/// Every subject starts with this tag, so users can filter on it.
pub const SUBJECT_TAG: &str = "[healthchecker]";

/// Longest reason or detail put in a body line, in characters.
const LINE_MAX: usize = 200;

/// Lines shorter than this keep a plain-text body readable as it is sent (7bit); longer ones
/// make lettre encode the body (quoted-printable).
const SHORT_LINE: usize = 76;

/// Checks listed in a mail at most.
pub const RECENT_MAX: usize = 5;

/// The end of the subject line after the app name.
fn headline(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Degraded => "is DEGRADED",
        EventKind::Unhealthy => "is UNHEALTHY",
        EventKind::Reminder => "is still UNHEALTHY",
        EventKind::Recovered => "is HEALTHY again",
        EventKind::Test => "test message",
        EventKind::Flapping => "is FLAPPING",
        EventKind::Storm => "sees many monitors fail at once: is its network up?",
    }
}

/// A rendered mail: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line, one line.
    pub subject: String,
    /// The body, plain text, `\n` line ends.
    pub body: String,
}

/// `[healthchecker] <app> is UNHEALTHY` and the like.
pub fn subject(kind: EventKind, app: &str) -> String {
    format!("{SUBJECT_TAG} {} {}", one_line(app, 64), headline(kind))
}

/// [`render`] in the configured time zone.
pub fn render_in(event: &Event, server_url: &str, zone: Zone) -> Rendered {
    match zone {
        Zone::Host => render(event, server_url, &chrono::Local),
        Zone::Named(tz) => render(event, server_url, &tz),
    }
}

/// Renders the subject and the body of the mail of `event`. `server_url` is this server's base
/// URL as the recipient reaches it (`public_url`), for the links; `tz` the time zone of every
/// time shown, each with its UTC offset (the server's, `timezone`, in production).
///
/// The numbers come from the event's [`crate::alerting::IncidentInfo`], where downtime is
/// defined: an outage says since when it is down (its first failed check) and for how long; a
/// recovery says what it was and since when, when it was back and the downtime; a degrade (the
/// app answers) is never called down.
pub fn render<Tz>(event: &Event, server_url: &str, tz: &Tz) -> Rendered
where
    Tz: TimeZone,
    Tz::Offset: fmt::Display,
{
    let app = one_line(event.app.as_str(), 64);
    let transition = &event.transition;
    let incident = &event.incident;
    let when = |time: DateTime<Utc>| local_time(time, tz);
    let lasted = human_duration(Duration::from_secs(incident.downtime_s));
    let mut body = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(body, "{app} {}.", headline(event.kind));
    body.push('\n');
    let _ = writeln!(body, "  App:       {app}");
    let _ = writeln!(body, "  Checked:   {}", one_line(&event.url, 2048));
    match event.kind {
        EventKind::Recovered => {
            let worst = if incident.was_unhealthy {
                "UNHEALTHY"
            } else {
                "DEGRADED"
            };
            let _ = writeln!(
                body,
                "  Was:       {worst} since {} (the first check that failed)",
                when(incident.opened_at)
            );
            let back = incident.back_at.unwrap_or(transition.time);
            let _ = writeln!(
                body,
                "  Back at:   {} (the first of the passed checks that made it HEALTHY)",
                when(back)
            );
            let label = if incident.was_unhealthy {
                "Downtime:"
            } else {
                "Degraded:"
            };
            let _ = writeln!(body, "  {label:<10} {lasted}");
        }
        _ => {
            let _ = writeln!(
                body,
                "  Change:    {} -> {}",
                transition.from, transition.to
            );
            let _ = writeln!(
                body,
                "  Reason:    {}",
                one_line(&transition.reason, LINE_MAX)
            );
            let _ = writeln!(body, "  At:        {}", when(transition.time));
            let since = when(incident.opened_at);
            match event.kind {
                // Down from the check that made it UNHEALTHY (a job that reported its failure):
                // no "for 0 s".
                EventKind::Unhealthy if incident.opened_at == transition.time => {
                    let _ = writeln!(
                        body,
                        "  Down:      since {since} (the first check that failed)"
                    );
                }
                EventKind::Unhealthy | EventKind::Reminder => {
                    let _ = writeln!(
                        body,
                        "  Down for:  {lasted}, since {since} (the first check that failed)"
                    );
                }
                EventKind::Degraded => {
                    let _ = writeln!(
                        body,
                        "  Degraded:  since {since} (the first check that did not pass)"
                    );
                }
                EventKind::Flapping => {
                    let _ = writeln!(body, "  Changing:  for {lasted}, since {since}");
                }
                EventKind::Recovered | EventKind::Test | EventKind::Storm => {}
            }
        }
    }
    if !event.checks.is_empty() {
        body.push('\n');
        body.push_str("Last checks, newest first:\n");
        for check in event.checks.iter().take(RECENT_MAX) {
            body.push_str(&check_line(check, tz));
            body.push('\n');
        }
    }
    if !matches!(event.kind, EventKind::Test | EventKind::Storm) {
        body.push('\n');
        body.push_str(&next_steps(event, server_url));
    }
    body.push('\n');
    let _ = writeln!(body, "To stop monitoring {app}:");
    let _ = writeln!(
        body,
        "  curl -X DELETE {}",
        stop_url(server_url, event.app.as_str())
    );
    if event.url.starts_with(crate::registry::PUSH_URL) {
        // A cron job has no client to stop: what pings is its crontab line.
        body.push_str("and take its ping (or `healthchecker-server exec`) out of the job.\n");
    } else {
        body.push_str("or call stop() on its HealthCheckerServer (healthchecker-client).\n");
    }
    body.push_str("\n-- \n");
    let _ = writeln!(body, "healthchecker-server {}", crate::VERSION);
    Rendered {
        subject: subject(event.kind, event.app.as_str()),
        body,
    }
}

/// What the reader can do next: the monitor in the dashboard, its log from the command line,
/// and for a check that got no answer (refused, unreachable, timed out, unknown name) the
/// question to ask first.
fn next_steps(event: &Event, server_url: &str) -> String {
    let server = one_line(server_url.trim_end_matches('/'), 2048).replace(' ', "%20");
    let mut steps = String::from("Next steps:\n");
    let _ = writeln!(
        steps,
        "  Dashboard: {server}/#/monitor/{}",
        encode_segment(event.app.as_str())
    );
    let _ = writeln!(
        steps,
        "  Its log:   healthchecker-server log {} --server {server}",
        shell_quoted(&one_line(event.app.as_str(), 64))
    );
    let no_answer = event.kind != EventKind::Recovered
        && event.checks.first().is_some_and(|check| {
            matches!(
                check.record.reason,
                Reason::Connect
                    | Reason::Timeout
                    | Reason::Dns
                    | Reason::NoReply
                    | Reason::Unreachable
            )
        });
    if no_answer {
        let url = url::Url::parse(&event.url).ok();
        let host = url
            .as_ref()
            .and_then(|url| url.host_str())
            .map_or_else(|| one_line(&event.url, 200), |host| one_line(host, 200));
        let port = url.as_ref().and_then(url::Url::port_or_known_default);
        let hint = match (url.as_ref().map(url::Url::scheme), port) {
            (Some("icmp"), _) => format!(
                "is {host} switched on, and can this server's network reach it? (Try \
                 `ping -c 3 {host}` from the server's machine.)"
            ),
            (Some("tcp" | "tls"), Some(port)) => format!(
                "is anything listening on {host}:{port}, and can this server's network reach \
                 it? (Try `nc -vz {host} {port}` from the server's machine.)"
            ),
            (_, Some(port)) => format!(
                "is the app listening on {host}:{port}, and can this server's network reach \
                 it? (Try `curl {}` from the server's machine.)",
                one_line(&event.url, 2048)
            ),
            (_, None) => format!(
                "can this server's network reach {}?",
                one_line(&event.url, 2048)
            ),
        };
        let _ = writeln!(steps, "  Hint:      {hint}");
    }
    steps
}

/// `text` as one word for a POSIX shell: in single quotes unless it is plain.
fn shell_quoted(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// One line of the recent-checks table: time, outcome, reason, status, latency, state after;
/// the detail at the end, or on a line of its own when the line would get longer than
/// [`SHORT_LINE`]. A check whose connection never opened (refused, unreachable, unknown name)
/// shows no latency.
fn check_line<Tz>(check: &LoggedCheck, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: fmt::Display,
{
    let record = &check.record;
    let status = record
        .http_status
        .map_or_else(|| "-".to_owned(), |status| status.to_string());
    let latency = if matches!(record.reason, Reason::Connect | Reason::Dns) {
        "-".to_owned()
    } else {
        format!("{} ms", record.latency.as_millis())
    };
    let mut line = format!(
        "  {}  {:<4}  {:<14} {:>3}  {:>7}  {}",
        local_time(record.time, tz),
        record.outcome.as_str(),
        record.reason.as_str(),
        status,
        latency,
        check.state,
    );
    if let Some(detail) = record.detail.as_deref().filter(|d| !d.is_empty()) {
        let detail = one_line(detail, LINE_MAX);
        if line.chars().count() + detail.chars().count() + 4 < SHORT_LINE {
            let _ = write!(line, "  ({detail})");
        } else {
            let _ = write!(line, "\n      {detail}");
        }
    }
    // What the log kept of a body that is not a health answer: never its content.
    if let Some(digest) = &record.body_digest {
        let _ = write!(
            line,
            "\n      body: {} bytes, hash {} (not a health answer: not kept)",
            digest.size, digest.hash
        );
    }
    line
}

/// `2026-11-21 09:51:11 +01:00`: `time` in `tz`, with its UTC offset.
pub fn local_time<Tz>(time: DateTime<Utc>, tz: &Tz) -> String
where
    Tz: TimeZone,
    Tz::Offset: fmt::Display,
{
    time.with_timezone(tz)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// `45 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`: two units at most, rounded down.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) if seconds == 0 => format!("{minutes} min"),
        (0, 0, _) => format!("{minutes} min {seconds} s"),
        (0, _, 0) => format!("{hours} h"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        (_, 0, _) => format!("{days} d"),
        (_, _, _) => format!("{days} d {hours} h"),
    }
}

/// `http://server/api/v1/monitors/<app>`, the app name percent-encoded so the line can be pasted
/// into a shell as it is.
pub fn stop_url(server_url: &str, app: &str) -> String {
    let mut url = one_line(server_url.trim_end_matches('/'), 2048).replace(' ', "%20");
    url.push_str("/api/v1/monitors/");
    url.push_str(&encode_segment(app));
    url
}

/// `text` as one safe line of at most `max` characters: control characters (CR, LF, tab, ...),
/// line and paragraph separators and invisible formatting characters (zero-width, bidirectional
/// overrides) become spaces, runs of spaces collapse, and the ends are trimmed. A cut line ends
/// in `...`.
pub fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max));
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        let c = if is_unsafe(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if count == max {
            let keep: String = line.chars().take(max.saturating_sub(3)).collect();
            return format!("{}...", keep.trim_end());
        }
        line.push(c);
        count += 1;
    }
    line.trim_end().to_owned()
}

/// The `Message-ID` (angle brackets included) of the mail of the event `event_id` (see
/// [`crate::alerting::event_id`]): `<hc.unhealthy.media-center.1763715071766.3f2a9c0d@host>`.
///
/// The same event always gives the same id, on every attempt and after a restart, so mail clients
/// collapse a re-send, and a thread can name mails this server did not send itself.
pub fn message_id(event_id: &str, host: &str) -> String {
    let id: String = event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    format!("<{id}@{}>", safe_host(host))
}

/// `host` reduced to the characters of a domain name (letters, digits, `-`, `.`); `localhost`
/// when nothing is left.
pub fn safe_host(host: &str) -> String {
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(253)
        .collect();
    let host = host.trim_matches(|c| c == '.' || c == '-');
    if host.is_empty() {
        "localhost".to_owned()
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;
    use crate::alerting::IncidentInfo;
    use crate::health::{Outcome, State, Transition};
    use crate::probe::{CheckRecord, Reason};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_763_715_000 + secs, 0).expect("valid time")
    }

    fn check(secs: i64, outcome: Outcome, reason: Reason, state: State) -> LoggedCheck {
        LoggedCheck {
            record: CheckRecord {
                cert_not_after: None,
                cert_days_left: None,
                time: at(secs),
                outcome,
                reason,
                http_status: (reason == Reason::StatusCode).then_some(503),
                latency: Duration::from_millis(12),
                body: None,
                body_digest: None,
                detail: (reason != Reason::Ok).then(|| "HTTP 503".to_owned()),
            },
            state,
            ping: None,
        }
    }

    fn transition(from: State, to: State, secs: i64, reason: &str) -> Transition {
        Transition {
            time: at(secs),
            from,
            to,
            reason: reason.to_owned(),
        }
    }

    fn event(
        kind: EventKind,
        app: &str,
        transition: Transition,
        opened_at: i64,
        checks: Vec<LoggedCheck>,
    ) -> Event {
        let time = transition.time;
        Event {
            id: crate::alerting::event_id(kind, app, time),
            kind,
            app: crate::registry::AppName::parse(app).expect("valid name"),
            url: "http://192.168.1.20:9090/health".to_owned(),
            time,
            transition,
            incident: IncidentInfo {
                id: "root".to_owned(),
                opened_at: at(opened_at),
                back_at: None,
                downtime_s: (time - at(opened_at)).num_seconds().unsigned_abs(),
                was_unhealthy: kind != EventKind::Degraded,
            },
            checks,
            thread: Vec::new(),
        }
    }

    #[test]
    fn subjects() {
        let table = [
            (
                EventKind::Unhealthy,
                "[healthchecker] media-center is UNHEALTHY",
            ),
            (
                EventKind::Degraded,
                "[healthchecker] media-center is DEGRADED",
            ),
            (
                EventKind::Recovered,
                "[healthchecker] media-center is HEALTHY again",
            ),
            (
                EventKind::Reminder,
                "[healthchecker] media-center is still UNHEALTHY",
            ),
        ];
        for (kind, expected) in table {
            assert_eq!(subject(kind, "media-center"), expected);
        }
    }

    #[test]
    fn unhealthy_body_has_everything_a_reader_needs() {
        let t = transition(
            State::Degraded,
            State::Unhealthy,
            60,
            "status_code: HTTP 503",
        );
        let recent = vec![
            check(60, Outcome::Fail, Reason::StatusCode, State::Unhealthy),
            check(30, Outcome::Fail, Reason::StatusCode, State::Degraded),
            check(0, Outcome::Pass, Reason::Ok, State::Healthy),
        ];
        let tz = FixedOffset::east_opt(3600).expect("offset");
        let rendered = render(
            &event(EventKind::Unhealthy, "media center", t, 29, recent),
            "http://192.168.1.5:8080/",
            &tz,
        );
        assert_eq!(
            rendered.subject,
            "[healthchecker] media center is UNHEALTHY"
        );
        let body = &rendered.body;
        for needle in [
            "media center is UNHEALTHY.\n",
            "  App:       media center\n",
            "  Checked:   http://192.168.1.20:9090/health\n",
            "  Change:    DEGRADED -> UNHEALTHY\n",
            "  Reason:    status_code: HTTP 503\n",
            "  At:        2025-11-21 09:51:00 +01:00\n",
            "  Down for:  31 s, since 2025-11-21 09:50:29 +01:00 (the first check that failed)\n",
            "Last checks, newest first:\n  2025-11-21 09:51:00 +01:00  fail  status_code    503    12 ms  UNHEALTHY\n      HTTP 503\n",
            "  2025-11-21 09:50:00 +01:00  pass  ok               -    12 ms  HEALTHY\n",
            "Next steps:\n  Dashboard: http://192.168.1.5:8080/#/monitor/media%20center\n",
            "  Its log:   healthchecker-server log 'media center' --server http://192.168.1.5:8080\n",
            "  curl -X DELETE http://192.168.1.5:8080/api/v1/monitors/media%20center\n",
            "stop()",
        ] {
            assert!(body.contains(needle), "missing {needle:?} in\n{body}");
        }
    }

    #[test]
    fn a_body_that_is_not_a_health_answer_shows_as_its_size_and_hash() {
        let mut login_page = check(60, Outcome::Fail, Reason::StatusCode, State::Unhealthy);
        login_page.record.body_digest = Some(Box::new(crate::probe::BodyDigest {
            size: 5120,
            hash: "3f2a9c01d4e5b6a7".parse().expect("hex"),
        }));
        let line = check_line(&login_page, &Utc);
        assert_eq!(
            line,
            "  2025-11-21 08:51:00 +00:00  fail  status_code    503    12 ms  UNHEALTHY\n      HTTP 503\n      \
             body: 5120 bytes, hash 3f2a9c01d4e5b6a7 (not a health answer: not kept)"
        );
    }

    #[test]
    fn recovery_body_has_the_downtime_and_utc_alone_when_local_is_utc() {
        let t = transition(State::Degraded, State::Healthy, 3725, "ok");
        let rendered = render(
            &event(EventKind::Recovered, "nas", t, 0, Vec::new()),
            "http://hc:1",
            &Utc,
        );
        assert_eq!(rendered.subject, "[healthchecker] nas is HEALTHY again");
        for needle in [
            "  Was:       UNHEALTHY since 2025-11-21 08:50:00 +00:00 (the first check that failed)\n",
            "  Back at:   2025-11-21 09:52:05 +00:00 (the first of the passed checks that made it HEALTHY)\n",
            "  Downtime:  1 h 2 min\n",
        ] {
            assert!(
                rendered.body.contains(needle),
                "missing {needle:?} in\n{}",
                rendered.body
            );
        }
        assert!(!rendered.body.contains("Change:"), "{}", rendered.body);
        assert!(!rendered.body.contains("Last checks"));
    }

    /// A push monitor's mail says how to stop its pings, not the app-side client's `stop()`.
    #[test]
    fn a_push_monitors_mail_says_how_to_stop_its_pings() {
        let t = transition(
            State::Unknown,
            State::Unhealthy,
            0,
            "job_failed: exit status 11",
        );
        let mut push = event(EventKind::Unhealthy, "nightly-backup", t, 0, Vec::new());
        push.url = "push: 0 3 * * * (Europe/Berlin), grace 3600 s".to_owned();
        let body = render(&push, "http://hc:1", &Utc).body;
        assert!(
            body.contains(
                "To stop monitoring nightly-backup:\n  curl -X DELETE http://hc:1/api/v1/monitors/nightly-backup\n\
                 and take its ping (or `healthchecker-server exec`) out of the job.\n"
            ),
            "{body}"
        );
        assert!(
            !body.contains("stop() on its HealthCheckerServer"),
            "{body}"
        );
    }

    /// A job that reported its failure is down from that check, not "for 0 s".
    #[test]
    fn a_failure_from_the_first_check_says_since_not_for_0_s() {
        let failed = check(10, Outcome::Fail, Reason::StatusCode, State::Unhealthy);
        let transition = transition(State::Unknown, State::Unhealthy, 10, "job_failed");
        let body = render(
            &event(EventKind::Unhealthy, "backup", transition, 10, vec![failed]),
            "http://hc:1",
            &Utc,
        )
        .body;
        assert!(
            body.contains(
                "  Down:      since 2025-11-21 08:50:10 +00:00 (the first check that failed)\n"
            ),
            "{body}"
        );
        assert!(!body.contains("Down for"), "{body}");
    }

    /// Issue 23: what each kind of mail says about the incident's time, from the one downtime
    /// of [`IncidentInfo`]; never "down" for an app that answers.
    #[test]
    fn each_kind_says_the_downtime_its_own_way() {
        let fail = |secs| check(secs, Outcome::Fail, Reason::StatusCode, State::Unhealthy);
        let warn = |secs| check(secs, Outcome::Warn, Reason::BodyWarn, State::Degraded);
        /// Kind, change, whether it was UNHEALTHY, its checks, what the body has and lacks.
        type Row = (
            EventKind,
            State,
            State,
            bool,
            Vec<LoggedCheck>,
            &'static [&'static str],
            &'static [&'static str],
        );
        let table: [Row; 4] = [
            (
                EventKind::Unhealthy,
                State::Unknown,
                State::Unhealthy,
                true,
                vec![fail(10), fail(0)],
                &[
                    "  Down for:  10 s, since 2025-11-21 08:50:00 +00:00 (the first check that failed)\n",
                ],
                &["Degraded:", "Downtime:"],
            ),
            (
                EventKind::Degraded,
                State::Healthy,
                State::Degraded,
                false,
                vec![warn(10)],
                &[
                    "  Degraded:  since 2025-11-21 08:50:00 +00:00 (the first check that did not pass)\n",
                ],
                &["Down", "Hint:"],
            ),
            (
                EventKind::Recovered,
                State::Degraded,
                State::Healthy,
                false,
                Vec::new(),
                &["  Was:       DEGRADED since", "  Degraded:  10 s\n"],
                &["Down", "UNHEALTHY", "Hint:"],
            ),
            (
                EventKind::Reminder,
                State::Degraded,
                State::Unhealthy,
                true,
                vec![fail(10)],
                &["  Down for:  10 s, since"],
                &["Degraded:"],
            ),
        ];
        for (kind, from, to, was_unhealthy, checks, has, lacks) in table {
            let mut event = event(kind, "nas", transition(from, to, 10, "r"), 0, checks);
            event.incident.was_unhealthy = was_unhealthy;
            let body = render(&event, "http://hc:1", &Utc).body;
            for needle in has {
                assert!(
                    body.contains(needle),
                    "{kind:?}: missing {needle:?} in\n{body}"
                );
            }
            for needle in lacks {
                assert!(!body.contains(needle), "{kind:?}: {needle:?} in\n{body}");
            }
        }
    }

    /// Issue 23: a check that got no answer gets the question to ask first, and no latency
    /// when its connection never opened.
    #[test]
    fn no_answer_hints_at_the_address_and_shows_no_latency() {
        let mut refused = check(10, Outcome::Fail, Reason::Connect, State::Unhealthy);
        refused.record.http_status = None;
        refused.record.detail = Some("connection refused".to_owned());
        let event = event(
            EventKind::Unhealthy,
            "nas",
            transition(
                State::Unknown,
                State::Unhealthy,
                10,
                "connect: connection refused",
            ),
            0,
            vec![refused],
        );
        let body = render(&event, "http://hc:1", &Utc).body;
        for needle in [
            "  Hint:      is the app listening on 192.168.1.20:9090, and can this server's network reach it?",
            "  2025-11-21 08:50:10 +00:00  fail  connect          -        -  UNHEALTHY",
        ] {
            assert!(body.contains(needle), "missing {needle:?} in\n{body}");
        }
    }

    #[test]
    fn the_hint_fits_the_kind_of_check() {
        for (url, reason, hint) in [
            (
                "icmp://router.lan",
                Reason::NoReply,
                "is router.lan switched on, and can this server's network reach it? (Try `ping -c 3 router.lan`",
            ),
            (
                "tcp://nas.lan:22",
                Reason::Connect,
                "is anything listening on nas.lan:22, and can this server's network reach it? (Try `nc -vz nas.lan 22`",
            ),
            (
                "tls://nas.lan:993",
                Reason::Timeout,
                "is anything listening on nas.lan:993,",
            ),
        ] {
            let mut failed = check(10, Outcome::Fail, reason, State::Unhealthy);
            failed.record.http_status = None;
            let mut event = event(
                EventKind::Unhealthy,
                "device",
                transition(State::Unknown, State::Unhealthy, 10, "no answer"),
                0,
                vec![failed],
            );
            event.url = url.to_owned();
            let body = render(&event, "http://hc:1", &Utc).body;
            assert!(body.contains(hint), "{url}: missing {hint:?} in\n{body}");
        }
    }

    #[test]
    fn hostile_text_stays_on_its_line() {
        let hostile = "x\r\nBcc: victim@example.com\r\n\r\nfake body\u{202E}\u{2028}end";
        let t = transition(State::Healthy, State::Unhealthy, 0, hostile);
        let mut recent = vec![check(0, Outcome::Fail, Reason::Connect, State::Unhealthy)];
        recent[0].record.detail = Some(hostile.to_owned());
        let mut event = event(
            EventKind::Unhealthy,
            "x Bcc: victim@example.com",
            t,
            0,
            recent,
        );
        event.url = hostile.to_owned();
        let rendered = render(&event, hostile, &Utc);
        assert!(
            !rendered
                .subject
                .contains(|c: char| c.is_control() || is_unsafe(c))
        );
        assert_eq!(
            rendered.subject,
            "[healthchecker] x Bcc: victim@example.com is UNHEALTHY"
        );
        for line in rendered.body.lines() {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("fake"),
                "{line:?}"
            );
            assert!(!line.contains(|c: char| c.is_control() || is_unsafe(c)));
        }
        assert!(
            rendered
                .body
                .contains("/api/v1/monitors/x%20Bcc%3A%20victim%40example.com")
        );
    }

    #[test]
    fn one_line_collapses_and_bounds() {
        let table = [
            ("plain", 10, "plain"),
            ("  a \t\r\n b  ", 10, "a b"),
            ("a\u{200B}b\u{FEFF}c", 10, "a b c"),
            ("0123456789abc", 10, "0123456..."),
            ("0123456789", 10, "0123456789"),
            ("", 10, ""),
        ];
        for (text, max, expected) in table {
            assert_eq!(one_line(text, max), expected, "{text:?}");
        }
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        let table = [
            (0, "0 s"),
            (45, "45 s"),
            (60, "1 min"),
            (200, "3 min 20 s"),
            (3600, "1 h"),
            (3725, "1 h 2 min"),
            (86_400, "1 d"),
            (86_400 * 3 + 3600 * 4 + 5, "3 d 4 h"),
        ];
        for (secs, expected) in table {
            assert_eq!(human_duration(Duration::from_secs(secs)), expected);
        }
    }

    #[test]
    fn message_ids_are_stable_and_safe() {
        let event = crate::alerting::event_id(EventKind::Unhealthy, "media-center", at(0));
        let id = message_id(&event, "my-host.lan");
        assert_eq!(id, message_id(&event, "my-host.lan"));
        assert!(id.starts_with("<hc.unhealthy.media-center.1763715000000."));
        assert!(id.ends_with("@my-host.lan>"));
        let hostile = message_id("a b>\r\nX: y", "h\r\n>x");
        let inner = &hostile[1..hostile.len() - 1];
        assert!(
            inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@')),
            "{hostile}"
        );
        assert_eq!(safe_host("\r\n"), "localhost");
    }
}
