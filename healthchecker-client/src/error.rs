//! Every way a call can fail, each saying what to do. A leaf: discovery's [`BrowseError`] lives
//! here too (and is shown as `discovery::BrowseError`), so that no error type imports a module
//! that returns it.

use std::time::Duration;

/// What went wrong talking to a healthchecker server, or with the input given to this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No healthchecker server answered: none was advertised over mDNS within the discovery
    /// timeout, or none of those advertised answered on any of its addresses.
    #[error(
        "no healthchecker server found: {}; start healthchecker-server on this LAN with \
         mDNS on (UDP port 5353 must not be blocked), or set HEALTHCHECKER_URL=http://host:port",
        not_found_detail(*.waited, .unreachable)
    )]
    ServerNotFound {
        /// How long discovery listened over mDNS.
        waited: std::time::Duration,
        /// The servers that were advertised but did not answer, e.g.
        /// `"healthchecker on pi" at http://192.168.1.20:41234`.
        unreachable: Vec<String>,
    },

    /// Discovery over mDNS could not even start (no usable network, or the mDNS daemon failed).
    #[error(
        "cannot look for a healthchecker server over mDNS: {source}; set \
         HEALTHCHECKER_URL=http://host:port instead"
    )]
    Discovery {
        /// What went wrong.
        #[from]
        source: BrowseError,
    },

    /// The server did not answer: refused, reset, timed out, DNS or TLS failure.
    #[error(
        "cannot reach the healthchecker server at {url}: {}; is it running, \
         and is HEALTHCHECKER_URL right?",
        chain(source.as_ref())
    )]
    Unreachable {
        /// The URL that was requested.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The server requires a token and got none or a wrong one.
    #[error(
        "the healthchecker server refused the request ({message}); set HEALTHCHECKER_TOKEN \
         to the server's token"
    )]
    Unauthorized {
        /// The server's message.
        message: String,
    },

    /// The server does not monitor this app (it answered 404 for it).
    #[error("the healthchecker server does not monitor {app:?}; call monitor() first")]
    NotMonitored {
        /// The app's name.
        app: String,
    },

    /// The server refused the request with an error of its own (4xx or 5xx with a JSON error).
    #[error("the healthchecker server answered {status}: {message}{}", field_note(.field))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's machine-readable code, e.g. `invalid_field`.
        code: String,
        /// The request field the error is about, when there is one.
        field: Option<String>,
        /// The server's message, which says what was wrong and what is valid.
        message: String,
    },

    /// An input to this crate is invalid; nothing was sent.
    #[error("invalid {field}: {value}; expected {expected}")]
    InvalidInput {
        /// Which input: `app`, `app_url`, `server_url`, `interval`, `email`, ...
        field: &'static str,
        /// The value given, quoted (control characters escaped).
        value: String,
        /// What would be valid.
        expected: String,
    },

    /// The server answered something this client does not understand: probably not a
    /// healthchecker server, or an incompatible version.
    #[error(
        "unexpected answer from {url}: {detail}; is this a healthchecker server of a \
         compatible version?"
    )]
    Protocol {
        /// The URL that was requested.
        url: String,
        /// What was unexpected.
        detail: String,
    },
}

/// Browsing over mDNS failed, or found nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowseError {
    /// The mDNS daemon could not be started.
    #[error("cannot start the mDNS daemon: {0}")]
    Daemon(#[source] mdns_sd::Error),
    /// The daemon refused a command (it stopped, or its queue is full).
    #[error("the mDNS daemon refused to {action}: {source}")]
    Command {
        /// What was asked, e.g. `browse _healthchecker._tcp.local.`.
        action: String,
        /// Why not.
        #[source]
        source: mdns_sd::Error,
    },
    /// No healthchecker server answered in time.
    #[error("no healthchecker server answered over mDNS within {} ms", .0.as_millis())]
    NotFound(Duration),
}

/// An error and its causes on one line: "error sending request: connection refused".
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let next = inner.to_string();
        // Some errors repeat their cause in their own message; say it once.
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = inner.source();
    }
    text
}

fn not_found_detail(waited: std::time::Duration, unreachable: &[String]) -> String {
    let waited = if waited < std::time::Duration::from_secs(1) {
        format!("{} ms", waited.as_millis())
    } else {
        format!("{:.1} s", waited.as_secs_f64())
    };
    if unreachable.is_empty() {
        format!("none answered over mDNS within {waited}")
    } else {
        format!(
            "{} advertised over mDNS but did not answer (within {waited})",
            unreachable.join("; ")
        )
    }
}

fn field_note(field: &Option<String>) -> String {
    match field {
        Some(field) => format!(" (field `{field}`)"),
        None => String::new(),
    }
}

impl Error {
    /// An [`Error::InvalidInput`] that quotes `value` safely (on one line, shortened).
    pub(crate) fn invalid(
        field: &'static str,
        value: impl AsRef<str>,
        expected: impl Into<String>,
    ) -> Self {
        let value = value.as_ref();
        let shown = if value.chars().count() > 80 {
            value.chars().take(77).collect::<String>() + "..."
        } else {
            value.to_owned()
        };
        Error::InvalidInput {
            field,
            value: format!("{shown:?}"),
            expected: expected.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let cases = [
            (
                Error::ServerNotFound {
                    waited: std::time::Duration::from_secs(3),
                    unreachable: vec![],
                },
                "no healthchecker server found: none answered over mDNS within 3.0 s; start \
                 healthchecker-server on this LAN with mDNS on (UDP port 5353 must not be \
                 blocked), or set HEALTHCHECKER_URL=http://host:port",
            ),
            (
                Error::ServerNotFound {
                    waited: std::time::Duration::from_millis(500),
                    unreachable: vec!["\"healthchecker on pi\" at http://10.0.0.5:4000".into()],
                },
                "\"healthchecker on pi\" at http://10.0.0.5:4000 advertised over mDNS but did \
                 not answer (within 500 ms)",
            ),
            (
                Error::Unauthorized {
                    message: "missing token".into(),
                },
                "set HEALTHCHECKER_TOKEN",
            ),
            (
                Error::NotMonitored { app: "x".into() },
                "does not monitor \"x\"; call monitor() first",
            ),
            (
                Error::Rejected {
                    status: 422,
                    code: "invalid_field".into(),
                    field: Some("interval".into()),
                    message: "interval 3: from 5 to 300 seconds".into(),
                },
                "answered 422: interval 3: from 5 to 300 seconds (field `interval`)",
            ),
            (
                Error::invalid("interval", "3", "from 5 to 300 seconds"),
                "invalid interval: \"3\"; expected from 5 to 300 seconds",
            ),
        ];
        for (error, expected) in cases {
            let text = error.to_string();
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn invalid_values_are_quoted_on_one_line_and_shortened() {
        let Error::InvalidInput { value, .. } = Error::invalid("app", "a\r\nBcc: x", "y") else {
            panic!("variant");
        };
        assert_eq!(value, "\"a\\r\\nBcc: x\"");
        let Error::InvalidInput { value, .. } = Error::invalid("app", "x".repeat(200), "y") else {
            panic!("variant");
        };
        assert!(value.ends_with("...\"") && value.len() < 90, "{value}");
    }
}
