//! The monitoring parameters an app registers with, their defaults and valid ranges.

use serde::Serialize;

use crate::{Error, Result};

/// The defaults and valid ranges of the monitoring parameters: the same as the server's
/// (see the product's DESIGN.md), so bad values fail before any request is made.
pub mod limits {
    use std::ops::RangeInclusive;

    /// Seconds between two checks.
    pub const INTERVAL: RangeInclusive<u32> = 5..=300;
    /// The server's default interval, in seconds.
    pub const INTERVAL_DEFAULT: u32 = 30;
    /// Seconds a check may take; it must also be less than the interval.
    pub const TIMEOUT: RangeInclusive<u32> = 2..=60;
    /// The server's default timeout, in seconds.
    pub const TIMEOUT_DEFAULT: u32 = 5;
    /// Consecutive failed checks that make an app `UNHEALTHY`.
    pub const UNHEALTHY: RangeInclusive<u32> = 2..=10;
    /// The server's default `unhealthy` threshold.
    pub const UNHEALTHY_DEFAULT: u32 = 2;
    /// Consecutive passed checks that make a recovering app `HEALTHY` again.
    pub const HEALTHY: RangeInclusive<u32> = 2..=10;
    /// The server's default `healthy` threshold.
    pub const HEALTHY_DEFAULT: u32 = 10;
    /// The server's default path of the health endpoint.
    pub const PATH_DEFAULT: &str = "/health";
    /// The longest path, in bytes.
    pub const PATH_MAX: usize = 1024;
    /// The most email recipients of one monitor.
    pub const EMAILS_MAX: usize = 10;
    /// Days before a certificate expires when checks warn (https, tls); 0 turns it off.
    pub const CERT_WARN_DAYS: RangeInclusive<u32> = 0..=365;
    /// The server's default `cert_warn_days`.
    pub const CERT_WARN_DAYS_DEFAULT: u32 = 14;
    /// HTTP status codes `expect_status` may name.
    pub const STATUS: RangeInclusive<u16> = 100..=599;
    /// The longest email address, in bytes.
    pub const EMAIL_MAX: usize = 254;
}

/// How an app wants to be monitored: who gets mail, how often it is checked, and the thresholds.
///
/// What a check is follows from the scheme of the app's URL (given to
/// [`HealthCheckerServer::discover`](crate::HealthCheckerServer::discover) or
/// [`at`](crate::HealthCheckerServer::at)): `http://` and `https://` fetch the health endpoint,
/// `tcp://host:port` connects, `tls://host:port` connects and does a TLS handshake,
/// `icmp://host` sends one echo. [`expect_status`](Self::expect_status) and [`path`](Self::path)
/// apply to http(s), [`cert_warn_days`](Self::cert_warn_days) and
/// [`tls_verify`](Self::tls_verify) to https and tls.
///
/// Every parameter is optional; what is not set is left out of the request so the server's
/// defaults apply (interval 30 s, timeout 5 s, unhealthy 2, healthy 10, path `/health`, see
/// [`limits`]). Values are checked against the valid ranges when the monitor is registered
/// ([`HealthCheckerServer::monitor`](crate::HealthCheckerServer::monitor)), or earlier with
/// [`Monitor::validate`].
///
/// # Examples
///
/// ```
/// use healthchecker_client::Monitor;
///
/// let monitor = Monitor::new()
///     .email("me@example.com")
///     .email("ops@example.com")
///     .interval(10)
///     .timeout(5)
///     .unhealthy(2)
///     .healthy(4)
///     .path("/health");
/// monitor.validate()?;
/// # Ok::<(), healthchecker_client::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Monitor {
    emails: Vec<String>,
    interval: Option<u32>,
    timeout: Option<u32>,
    unhealthy: Option<u32>,
    healthy: Option<u32>,
    path: Option<String>,
    expect_status: Option<String>,
    cert_warn_days: Option<u32>,
    tls_verify: Option<bool>,
}

impl Monitor {
    /// No parameters set: the server's defaults, and no email.
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new();
    /// assert_eq!(monitor.interval_secs(), 30);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a recipient of state-change mail (at most 10).
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new().email("me@example.com");
    /// assert_eq!(monitor.recipients(), ["me@example.com"]);
    /// ```
    pub fn email(mut self, address: impl Into<String>) -> Self {
        self.emails.push(address.into());
        self
    }

    /// Adds several recipients.
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new().emails(["a@example.com", "b@example.com"]);
    /// assert_eq!(monitor.recipients().len(), 2);
    /// ```
    pub fn emails<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.emails.extend(addresses.into_iter().map(Into::into));
        self
    }

    /// Seconds between two checks: 5 to 300, default 30.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().interval(10).interval_secs(), 10);
    /// ```
    pub fn interval(mut self, seconds: u32) -> Self {
        self.interval = Some(seconds);
        self
    }

    /// Seconds one check may take: 2 to 60 and less than the interval, default 5.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().timeout(3).timeout_secs(), 3);
    /// ```
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout = Some(seconds);
        self
    }

    /// Consecutive failed checks before the app is `UNHEALTHY`: 2 to 10, default 2.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().unhealthy(3).unhealthy_count(), 3);
    /// ```
    pub fn unhealthy(mut self, checks: u32) -> Self {
        self.unhealthy = Some(checks);
        self
    }

    /// Consecutive passed checks before a recovering app is `HEALTHY`: 2 to 10, default 10.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().healthy(4).healthy_count(), 4);
    /// ```
    pub fn healthy(mut self, checks: u32) -> Self {
        self.healthy = Some(checks);
        self
    }

    /// The path of the app's health endpoint, appended to the app's URL; default `/health`.
    /// It starts with `/` and may carry a query.
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new().path("/status?full=1");
    /// assert_eq!(monitor.path_or_default(), "/status?full=1");
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The HTTP status codes that pass (http, https): codes and ranges separated by commas, e.g.
    /// `"200-299"` or `"200,204,401"`; the server's default is `200`. A health+json body that
    /// says `warn` or `fail` still decides.
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new().expect_status("200-299,401");
    /// monitor.validate()?;
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    pub fn expect_status(mut self, codes: impl Into<String>) -> Self {
        self.expect_status = Some(codes.into());
        self
    }

    /// Days before the certificate expires when checks warn (https, tls): 0 to 365, 0 turns the
    /// warning off; the server's default is 14.
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new().cert_warn_days(30);
    /// monitor.validate()?;
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    pub fn cert_warn_days(mut self, days: u32) -> Self {
        self.cert_warn_days = Some(days);
        self
    }

    /// Whether the certificate must be trusted (https, tls); `false` accepts a self-signed one
    /// (a router, a NAS), whose expiry is still watched. The server's default is `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// let monitor = healthchecker_client::Monitor::new().tls_verify(false);
    /// monitor.validate_for("tls://192.168.1.40:5001")?;
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    pub fn tls_verify(mut self, verify: bool) -> Self {
        self.tls_verify = Some(verify);
        self
    }

    /// The recipients added so far.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(healthchecker_client::Monitor::new().recipients().is_empty());
    /// ```
    #[must_use]
    pub fn recipients(&self) -> &[String] {
        &self.emails
    }

    /// The interval in effect: the one set, or the default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().interval_secs(), 30);
    /// ```
    #[must_use]
    pub fn interval_secs(&self) -> u32 {
        self.interval.unwrap_or(limits::INTERVAL_DEFAULT)
    }

    /// The timeout in effect: the one set, or the default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().timeout_secs(), 5);
    /// ```
    #[must_use]
    pub fn timeout_secs(&self) -> u32 {
        self.timeout.unwrap_or(limits::TIMEOUT_DEFAULT)
    }

    /// The `unhealthy` threshold in effect: the one set, or the default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().unhealthy_count(), 2);
    /// ```
    #[must_use]
    pub fn unhealthy_count(&self) -> u32 {
        self.unhealthy.unwrap_or(limits::UNHEALTHY_DEFAULT)
    }

    /// The `healthy` threshold in effect: the one set, or the default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().healthy_count(), 10);
    /// ```
    #[must_use]
    pub fn healthy_count(&self) -> u32 {
        self.healthy.unwrap_or(limits::HEALTHY_DEFAULT)
    }

    /// The path in effect: the one set, or `/health`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Monitor::new().path_or_default(), "/health");
    /// ```
    #[must_use]
    pub fn path_or_default(&self) -> &str {
        self.path.as_deref().unwrap_or(limits::PATH_DEFAULT)
    }

    /// Checks every parameter against the valid ranges, with defaults standing in for what is
    /// not set (so `interval(5)` alone fails: the default timeout 5 is not less than 5).
    ///
    /// # Errors
    ///
    /// The first [`Error::InvalidInput`] found, in the order path, email, interval, timeout,
    /// unhealthy, healthy; its message names the field, the value and the valid range.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{Error, Monitor};
    ///
    /// let err = Monitor::new().interval(3).validate().unwrap_err();
    /// assert!(matches!(err, Error::InvalidInput { field: "interval", .. }));
    /// assert_eq!(err.to_string(), "invalid interval: \"3\"; expected from 5 to 300 seconds");
    /// ```
    pub fn validate(&self) -> Result<()> {
        validate_path(self.path_or_default())?;
        validate_emails(&self.emails)?;
        let interval = in_range(
            "interval",
            self.interval_secs(),
            &limits::INTERVAL,
            "seconds",
        )?;
        let timeout = in_range("timeout", self.timeout_secs(), &limits::TIMEOUT, "seconds")?;
        if timeout >= interval {
            let whose = if self.interval.is_some() {
                ""
            } else {
                ", the default"
            };
            return Err(Error::invalid(
                "timeout",
                timeout.to_string(),
                format!("less than the interval ({interval} seconds{whose})"),
            ));
        }
        in_range(
            "unhealthy",
            self.unhealthy_count(),
            &limits::UNHEALTHY,
            "checks",
        )?;
        in_range("healthy", self.healthy_count(), &limits::HEALTHY, "checks")?;
        if let Some(codes) = &self.expect_status {
            validate_status(codes)?;
        }
        if let Some(days) = self.cert_warn_days {
            in_range(
                "cert_warn_days",
                days,
                &limits::CERT_WARN_DAYS,
                "days (0: off)",
            )?;
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and that each parameter set applies to the kind of
    /// `app_url` (its scheme): `path` and `expect_status` to http and https, `cert_warn_days`
    /// and `tls_verify` to https and tls.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate); also [`Error::InvalidInput`] for a parameter of another
    /// kind.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{Error, Monitor};
    ///
    /// Monitor::new().interval(60).validate_for("tcp://192.168.1.30:22")?;
    /// let err = Monitor::new().path("/x").validate_for("tcp://192.168.1.30:22").unwrap_err();
    /// assert!(matches!(err, Error::InvalidInput { field: "path", .. }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn validate_for(&self, app_url: &str) -> Result<()> {
        self.validate()?;
        let scheme = app_url
            .trim()
            .split_once("://")
            .map_or("", |(scheme, _)| scheme)
            .to_ascii_lowercase();
        let http = matches!(scheme.as_str(), "http" | "https");
        let tls = matches!(scheme.as_str(), "https" | "tls");
        let only = |field: &'static str, set: bool, applies: bool, kinds: &str| {
            if set && !applies {
                Err(Error::invalid(
                    field,
                    app_url,
                    format!("a {kinds} app URL for {field}"),
                ))
            } else {
                Ok(())
            }
        };
        only("path", self.path.is_some(), http, "http:// or https://")?;
        only(
            "expect_status",
            self.expect_status.is_some(),
            http,
            "http:// or https://",
        )?;
        only(
            "cert_warn_days",
            self.cert_warn_days.is_some(),
            tls,
            "https:// or tls://",
        )?;
        only(
            "tls_verify",
            self.tls_verify.is_some(),
            tls,
            "https:// or tls://",
        )?;
        Ok(())
    }

    /// The registration body for `app_url`, leaving out what is not set.
    pub(crate) fn body<'a>(&'a self, app_url: &'a str) -> RegistrationBody<'a> {
        RegistrationBody {
            url: app_url,
            email: &self.emails,
            interval: self.interval,
            timeout: self.timeout,
            unhealthy: self.unhealthy,
            healthy: self.healthy,
            path: self.path.as_deref(),
            expect_status: self.expect_status.as_deref(),
            cert_warn_days: self.cert_warn_days,
            tls_verify: self.tls_verify,
        }
    }
}

/// The JSON body of `PUT /api/v1/monitors/{app}`.
#[derive(Debug, Serialize)]
pub(crate) struct RegistrationBody<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    email: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unhealthy: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthy: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_warn_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_verify: Option<bool>,
}

/// Codes from 100 to 599 and ranges of them, separated by commas (`200-299,401`).
fn validate_status(codes: &str) -> Result<()> {
    let code = |text: &str| {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|code| limits::STATUS.contains(code))
    };
    let ok = !codes.trim().is_empty()
        && codes.split(',').all(|part| match part.split_once('-') {
            Some((low, high)) => {
                matches!((code(low), code(high)), (Some(low), Some(high)) if low <= high)
            }
            None => code(part).is_some(),
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "expect_status",
            codes,
            "HTTP status codes from 100 to 599 and ranges, separated by commas, e.g. 200-299,401",
        ))
    }
}

fn in_range(
    field: &'static str,
    value: u32,
    range: &std::ops::RangeInclusive<u32>,
    unit: &str,
) -> Result<u32> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(
            field,
            value.to_string(),
            format!("from {} to {} {unit}", range.start(), range.end()),
        ))
    }
}

fn validate_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= limits::PATH_MAX
        && !path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '#');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "path",
            path,
            "a path starting with / (a query is allowed), without spaces or #, e.g. /health",
        ))
    }
}

fn validate_emails(emails: &[String]) -> Result<()> {
    if emails.len() > limits::EMAILS_MAX {
        return Err(Error::invalid(
            "email",
            format!("{} addresses", emails.len()),
            format!("at most {} addresses", limits::EMAILS_MAX),
        ));
    }
    for email in emails {
        if !plausible_email(email) {
            return Err(Error::invalid(
                "email",
                email,
                "one email address such as me@example.com",
            ));
        }
    }
    Ok(())
}

/// A light check: the server parses addresses fully; this catches typos and anything that could
/// smuggle a second recipient or header (separators, brackets, line breaks) before a request.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.len() <= limits::EMAIL_MAX
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';' | '<' | '>' | '(' | ')' | '[' | ']' | '"' | '\\'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(monitor: &Monitor) -> Option<&'static str> {
        match monitor.validate() {
            Ok(()) => None,
            Err(Error::InvalidInput { field, .. }) => Some(field),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn validation_table() {
        let m = Monitor::new;
        let table: Vec<(&str, Monitor, Option<&str>)> = vec![
            ("defaults", m(), None),
            (
                "the story",
                m().email("me@example.com")
                    .interval(10)
                    .unhealthy(2)
                    .healthy(4),
                None,
            ),
            ("interval low edge", m().interval(6), None),
            (
                "interval 5 with timeout 2",
                m().interval(5).timeout(2),
                None,
            ),
            (
                "interval 5 with the default timeout",
                m().interval(5),
                Some("timeout"),
            ),
            ("interval below", m().interval(4), Some("interval")),
            ("interval high edge", m().interval(300), None),
            ("interval above", m().interval(301), Some("interval")),
            ("timeout below", m().timeout(1), Some("timeout")),
            ("timeout high edge", m().timeout(60).interval(61), None),
            (
                "timeout above",
                m().timeout(61).interval(300),
                Some("timeout"),
            ),
            (
                "timeout equal to interval",
                m().timeout(10).interval(10),
                Some("timeout"),
            ),
            (
                "timeout above default interval",
                m().timeout(30),
                Some("timeout"),
            ),
            ("unhealthy edges", m().unhealthy(2).healthy(10), None),
            ("unhealthy below", m().unhealthy(1), Some("unhealthy")),
            ("unhealthy above", m().unhealthy(11), Some("unhealthy")),
            ("healthy below", m().healthy(1), Some("healthy")),
            ("healthy above", m().healthy(11), Some("healthy")),
            ("path with query", m().path("/status?full=1"), None),
            ("path without slash", m().path("health"), Some("path")),
            (
                "path network-relative",
                m().path("//evil/health"),
                Some("path"),
            ),
            ("path with space", m().path("/he alth"), Some("path")),
            ("path with fragment", m().path("/health#x"), Some("path")),
            ("path with newline", m().path("/health\n"), Some("path")),
            ("email plain", m().email("a.b+c@mail.example.org"), None),
            ("email without at", m().email("me"), Some("email")),
            ("email without domain", m().email("me@"), Some("email")),
            (
                "email with header injection",
                m().email("a@b.c\r\nBcc: x@y"),
                Some("email"),
            ),
            ("two emails in one", m().email("a@b.c,d@e.f"), Some("email")),
            ("email display name", m().email("Me <a@b.c>"), Some("email")),
            (
                "ten emails",
                m().emails((0..10).map(|i| format!("u{i}@example.com"))),
                None,
            ),
            (
                "eleven emails",
                m().emails((0..11).map(|i| format!("u{i}@example.com"))),
                Some("email"),
            ),
            ("expect a range", m().expect_status("200-299"), None),
            ("expect a list", m().expect_status("200, 204,401"), None),
            (
                "expect below 100",
                m().expect_status("99"),
                Some("expect_status"),
            ),
            (
                "expect a reversed range",
                m().expect_status("299-200"),
                Some("expect_status"),
            ),
            (
                "expect words",
                m().expect_status("2xx"),
                Some("expect_status"),
            ),
            ("cert warn off", m().cert_warn_days(0), None),
            ("cert warn a year", m().cert_warn_days(365), None),
            (
                "cert warn above",
                m().cert_warn_days(366),
                Some("cert_warn_days"),
            ),
        ];
        for (what, monitor, expected) in table {
            assert_eq!(field_of(&monitor), expected, "{what}");
        }
    }

    #[test]
    fn messages_name_field_value_and_range() {
        let cases = [
            (
                m_err(Monitor::new().interval(301)),
                "invalid interval: \"301\"; expected from 5 to 300 seconds",
            ),
            (
                m_err(Monitor::new().timeout(1)),
                "invalid timeout: \"1\"; expected from 2 to 60 seconds",
            ),
            (
                m_err(Monitor::new().interval(5)),
                "invalid timeout: \"5\"; expected less than the interval (5 seconds)",
            ),
            (
                m_err(Monitor::new().timeout(30)),
                "invalid timeout: \"30\"; expected less than the interval (30 seconds, the default)",
            ),
            (
                m_err(Monitor::new().unhealthy(1)),
                "invalid unhealthy: \"1\"; expected from 2 to 10 checks",
            ),
            (
                m_err(Monitor::new().healthy(11)),
                "invalid healthy: \"11\"; expected from 2 to 10 checks",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }

    fn m_err(monitor: Monitor) -> String {
        monitor.validate().expect_err("invalid").to_string()
    }

    #[test]
    fn each_kind_takes_its_own_parameters() {
        let field = |monitor: Monitor, url: &str| match monitor.validate_for(url) {
            Ok(()) => None,
            Err(Error::InvalidInput { field, .. }) => Some(field),
            Err(other) => panic!("{other}"),
        };
        let m = Monitor::new;
        assert_eq!(field(m().path("/x"), "https://nas.lan"), None);
        assert_eq!(field(m().path("/x"), "tcp://nas.lan:22"), Some("path"));
        assert_eq!(
            field(m().expect_status("401"), "icmp://nas.lan"),
            Some("expect_status")
        );
        assert_eq!(field(m().cert_warn_days(7), "tls://nas.lan:993"), None);
        assert_eq!(
            field(m().cert_warn_days(7), "http://nas.lan"),
            Some("cert_warn_days")
        );
        assert_eq!(field(m().tls_verify(false), "https://nas.lan"), None);
        assert_eq!(
            field(m().tls_verify(false), "tcp://nas.lan:22"),
            Some("tls_verify")
        );
        assert_eq!(
            serde_json::to_value(
                m().expect_status("200-299")
                    .cert_warn_days(30)
                    .tls_verify(false)
                    .body("https://nas.lan")
            )
            .expect("json"),
            json!({"url": "https://nas.lan", "expect_status": "200-299", "cert_warn_days": 30, "tls_verify": false})
        );
    }

    #[test]
    fn body_leaves_out_what_is_not_set() {
        let monitor = Monitor::new();
        assert_eq!(
            serde_json::to_value(monitor.body("http://10.0.0.5:9090")).expect("json"),
            json!({"url": "http://10.0.0.5:9090"})
        );
        let monitor = Monitor::new()
            .email("a@b.c")
            .email("d@e.f")
            .interval(10)
            .timeout(5)
            .unhealthy(2)
            .healthy(4)
            .path("/health");
        assert_eq!(
            serde_json::to_value(monitor.body("http://10.0.0.5:9090")).expect("json"),
            json!({
                "url": "http://10.0.0.5:9090",
                "email": ["a@b.c", "d@e.f"],
                "interval": 10,
                "timeout": 5,
                "unhealthy": 2,
                "healthy": 4,
                "path": "/health"
            })
        );
    }
}
