//! `command`: runs a program of the operator's, without a shell, with the event in its
//! environment: `HEALTHCHECKER_EVENT`, `_APP`, `_STATE`, `_PREVIOUS`, `_REASON`, `_DETAIL`,
//! `_URL`, `_TIME` (RFC 3339) and `_INCIDENT` (the incident's id). Values are one line each, so a
//! hostile name cannot smuggle a second line into a script that reads them. The program gets no
//! standard input and inherits the server's environment without its own `HEALTHCHECKER_*`
//! variables (which may hold secrets); it is killed after the channel's `timeout`; exit status 0
//! is delivered, anything else is tried again later.

use std::path::Path;

use super::CommandRun;
use super::text;
use crate::alerting::Event;
use crate::notify::render::one_line;

/// Longest value of one variable, in characters.
const VALUE_MAX: usize = 2000;

/// The run that delivers `event`.
pub fn run(program: &Path, args: &[String], event: &Event) -> CommandRun {
    let (reason, detail) = text::reason_parts(event);
    let value = |text: &str| one_line(text, VALUE_MAX);
    let env = [
        ("EVENT", event.kind.as_str().to_owned()),
        ("APP", value(event.app.as_str())),
        ("STATE", event.transition.to.as_str().to_owned()),
        ("PREVIOUS", event.transition.from.as_str().to_owned()),
        ("REASON", value(&reason)),
        ("DETAIL", value(detail.as_deref().unwrap_or_default())),
        ("URL", value(&event.url)),
        ("TIME", event.time.to_rfc3339()),
        ("INCIDENT", value(&event.incident.id)),
    ]
    .into_iter()
    .map(|(name, value)| (format!("HEALTHCHECKER_{name}"), value))
    .collect();
    CommandRun {
        program: program.to_owned(),
        args: args.to_vec(),
        env,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HOSTILE_APP, HOSTILE_REASON, event};
    use super::*;
    use crate::config::channel::EventKind;

    #[test]
    fn the_environment_of_an_event() {
        let run = run(
            Path::new("/usr/local/bin/hc-action"),
            &["nginx".to_owned()],
            &event(EventKind::Unhealthy, "nas", "timeout: no answer within 5 s"),
        );
        let get = |name: &str| {
            run.env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("HEALTHCHECKER_EVENT"), Some("unhealthy"));
        assert_eq!(get("HEALTHCHECKER_APP"), Some("nas"));
        assert_eq!(get("HEALTHCHECKER_STATE"), Some("UNHEALTHY"));
        assert_eq!(get("HEALTHCHECKER_PREVIOUS"), Some("DEGRADED"));
        assert_eq!(get("HEALTHCHECKER_REASON"), Some("timeout"));
        assert_eq!(get("HEALTHCHECKER_DETAIL"), Some("no answer within 5 s"));
        assert_eq!(get("HEALTHCHECKER_TIME"), Some("2025-11-21T08:51:30+00:00"));
        assert_eq!(run.args, ["nginx"]);
    }

    #[test]
    fn hostile_values_are_one_line_without_nul() {
        let run = run(
            Path::new("/bin/true"),
            &[],
            &event(EventKind::Unhealthy, HOSTILE_APP, HOSTILE_REASON),
        );
        for (name, value) in &run.env {
            assert!(!value.contains(['\n', '\r', '\0']), "{name}={value:?}");
        }
    }
}
