//! Push monitors from the job's side: register one ([`PushMonitor`], with
//! [`ApiClient::push`](crate::api::ApiClient::push)) and report in through its ping URL
//! ([`Heartbeat`]): success, start, failure, exit status, a message, or a whole job run between
//! its start and its result ([`Heartbeat::run`]).
//!
//! A ping is answered only once the server made it durable; the key in the ping URL is the
//! credential, so pings send no token.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use url::Url;

use crate::api::{self, ApiClient, Http};
use crate::{AppName, Error, Result};

/// The most of a job's output a ping sends: the server keeps 10 KB; the last part of the output
/// is the one that says why a job failed.
pub const OUTPUT_MAX: usize = 10_000;

/// When a push monitor expects its job, as registered with
/// [`ApiClient::push`](crate::api::ApiClient::push).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use healthchecker_client::PushMonitor;
///
/// // every night at 03:00 Berlin time, missed 10 minutes later
/// let backup = PushMonitor::cron("0 3 * * *", "Europe/Berlin")
///     .grace(Duration::from_secs(600))
///     .email("me@example.com");
/// // every hour
/// let agent = PushMonitor::every(Duration::from_secs(3600));
/// # let _ = (backup, agent);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMonitor {
    period: Option<Duration>,
    schedule: Option<(String, String)>,
    grace: Option<Duration>,
    emails: Vec<String>,
    rotate_key: bool,
}

impl PushMonitor {
    /// A success expected every `period` (1 minute to 365 days, whole seconds).
    pub fn every(period: Duration) -> PushMonitor {
        PushMonitor {
            period: Some(period),
            schedule: None,
            grace: None,
            emails: Vec::new(),
            rotate_key: false,
        }
    }

    /// A success expected at the times of a five-field cron `schedule` in the IANA zone `tz`.
    pub fn cron(schedule: impl Into<String>, tz: impl Into<String>) -> PushMonitor {
        PushMonitor {
            period: None,
            schedule: Some((schedule.into(), tz.into())),
            grace: None,
            emails: Vec::new(),
            rotate_key: false,
        }
    }

    /// How long after the deadline the job is missed (and how long a started run may take);
    /// the server's default is one hour.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> PushMonitor {
        self.grace = Some(grace);
        self
    }

    /// Who is mailed (repeatable).
    #[must_use]
    pub fn email(mut self, address: impl Into<String>) -> PushMonitor {
        self.emails.push(address.into());
        self
    }

    /// Asks for a new ping key: the old ping URL stops working.
    #[must_use]
    pub fn rotate_key(mut self) -> PushMonitor {
        self.rotate_key = true;
        self
    }

    /// The registration body (`PUT /api/v1/monitors/{app}`).
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "kind": "push" });
        if let Some(period) = self.period {
            body["period"] = period.as_secs().into();
        }
        if let Some((schedule, tz)) = &self.schedule {
            body["schedule"] = schedule.as_str().into();
            body["tz"] = tz.as_str().into();
        }
        if let Some(grace) = self.grace {
            body["grace"] = grace.as_secs().into();
        }
        if !self.emails.is_empty() {
            body["email"] = self.emails.clone().into();
        }
        if self.rotate_key {
            body["rotate_key"] = true.into();
        }
        body
    }
}

/// One push monitor's ping URL, and the calls a job makes through it.
///
/// # Examples
///
/// ```no_run
/// use healthchecker_client::Heartbeat;
///
/// # async fn run() -> Result<(), healthchecker_client::Error> {
/// let heartbeat = Heartbeat::new("http://192.168.1.10:8080/ping/0123456789abcdef0123456789abcdef")?;
/// // around a job of your own: start, then its result (the run time is recorded)
/// let copied = heartbeat
///     .run(async { Ok::<_, std::io::Error>(42) })
///     .await?;
/// # let _ = copied;
/// // or by hand
/// heartbeat.start().await?;
/// heartbeat.exit(0, "backup done").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Heartbeat {
    http: Http,
    ping_url: Url,
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is the credential: show where, not what.
        let mut shown = self.ping_url.clone();
        shown.set_path("/ping/…");
        f.debug_struct("Heartbeat")
            .field("ping_url", &shown.as_str())
            .finish_non_exhaustive()
    }
}

impl Heartbeat {
    /// A handle on the ping URL `ping_url` (`<server>/ping/<key>`, as the registration
    /// answered it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the field `ping_url` when it is not an http(s) URL ending in
    /// `/ping/<key>`.
    pub fn new(ping_url: impl AsRef<str>) -> Result<Heartbeat> {
        let text = ping_url.as_ref();
        let bad = || {
            Error::invalid(
                "ping_url",
                "(the ping URL)",
                "an http:// or https:// URL ending in /ping/<32 hex digits>",
            )
        };
        let url = Url::parse(text.trim()).map_err(|_| bad())?;
        let key_ok = url
            .path_segments()
            .and_then(|mut segments| {
                let key = segments.next_back()?;
                (segments.next_back()? == "ping").then_some(key)
            })
            .is_some_and(|key| key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()));
        if !matches!(url.scheme(), "http" | "https") || !key_ok {
            return Err(bad());
        }
        Ok(Heartbeat {
            http: Http::from_env()?.without_token(),
            ping_url: url,
        })
    }

    /// How long one ping may take, connecting included (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Heartbeat {
        self.http.set_timeout(timeout);
        self
    }

    /// The job succeeded: `/ping/<key>`.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] when the server does not answer; [`Error::Rejected`] with status
    /// 404 when no monitor has this key (deleted, or its key rotated).
    pub async fn ping(&self) -> Result<()> {
        self.send("", None).await
    }

    /// The job started: `/ping/<key>/start`. Its result, when it comes, records the run time; no
    /// result within the monitor's grace is `run_too_long`.
    ///
    /// # Errors
    ///
    /// As for [`ping`](Self::ping).
    pub async fn start(&self) -> Result<()> {
        self.send("start", None).await
    }

    /// The job failed, saying why: `/ping/<key>/fail` (the monitor is `UNHEALTHY` at once).
    ///
    /// # Errors
    ///
    /// As for [`ping`](Self::ping).
    pub async fn fail(&self, message: &str) -> Result<()> {
        self.send("fail", Some(message)).await
    }

    /// The job ended with exit status `code` (0 is a success) and `output` (its last
    /// [`OUTPUT_MAX`] bytes are sent): `/ping/<key>/<code>`.
    ///
    /// # Errors
    ///
    /// As for [`ping`](Self::ping).
    pub async fn exit(&self, code: u8, output: &str) -> Result<()> {
        self.send(&code.to_string(), Some(output)).await
    }

    /// A message for the log; the state does not change: `/ping/<key>/log`.
    ///
    /// # Errors
    ///
    /// As for [`ping`](Self::ping).
    pub async fn log(&self, message: &str) -> Result<()> {
        self.send("log", Some(message)).await
    }

    /// Runs `job` between a start and its result: a success when it returns `Ok`, a failure
    /// with the error's text when it returns `Err`. The job's own result comes back whatever the
    /// pings did; an unreachable server does not stop the job (the start's error is returned
    /// after the job ran, the result's likewise).
    ///
    /// # Errors
    ///
    /// The first ping's error, as for [`ping`](Self::ping); the job's own result is the `Ok`.
    pub async fn run<T, E, F>(&self, job: F) -> Result<std::result::Result<T, E>>
    where
        F: Future<Output = std::result::Result<T, E>>,
        E: fmt::Display,
    {
        let started = self.start().await;
        let begun = Instant::now();
        let outcome = job.await;
        let reported = match &outcome {
            Ok(_) => self.ping().await,
            Err(error) => {
                self.fail(&format!(
                    "failed after {:.1} s: {error}",
                    begun.elapsed().as_secs_f64()
                ))
                .await
            }
        };
        started.and(reported)?;
        Ok(outcome)
    }

    /// `POST` (with a body) or `GET` the ping URL with `suffix`.
    async fn send(&self, suffix: &str, body: Option<&str>) -> Result<()> {
        let mut url = self.ping_url.clone();
        if !suffix.is_empty() {
            url.path_segments_mut()
                .map_err(|()| Error::invalid("ping_url", "(the ping URL)", "a base URL"))?
                .push(suffix);
        }
        let request = match body {
            Some(body) => self
                .http
                .request(reqwest::Method::POST, url.clone())
                .body(tail(body, OUTPUT_MAX).to_owned()),
            None => self.http.request(reqwest::Method::GET, url.clone()),
        };
        // Errors name the server, never the key.
        let mut shown = url.clone();
        shown.set_path("/ping/…");
        let (status, answer) = self.http.send(request, &shown).await?;
        if status == 200 {
            Ok(())
        } else {
            Err(api::error_for_answer(status, &answer, &shown, None))
        }
    }
}

impl ApiClient {
    /// Registers (or updates) the push monitor `app` and returns its [`Heartbeat`]:
    /// `PUT /api/v1/monitors/{app}` with `"kind": "push"`. Registering again keeps the ping URL
    /// (unless [`PushMonitor::rotate_key`]).
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] (422 naming the field) for a schedule the server refuses;
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Protocol`].
    pub async fn push(&self, app: &AppName, monitor: &PushMonitor) -> Result<Heartbeat> {
        #[derive(serde::Deserialize)]
        struct Answer {
            ping_url: Option<String>,
        }
        let url = api::app_endpoint(&self.base, app, &[])?;
        let request = self
            .http
            .request(reqwest::Method::PUT, url.clone())
            .json(&monitor.body());
        let (status, body) = self.http.send(request, &url).await?;
        if !matches!(status, 200 | 201) {
            return Err(api::error_for_answer(status, &body, &url, None));
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|error| Error::Protocol {
            url: url.to_string(),
            detail: format!("not a monitor: {error}"),
        })?;
        let ping_url = answer.ping_url.ok_or_else(|| Error::Protocol {
            url: url.to_string(),
            detail: "no ping_url in the answer: a server without push monitors?".to_owned(),
        })?;
        Heartbeat::new(ping_url)
    }
}

impl ApiClient {
    /// The [`Heartbeat`] of the existing push monitor `app`, from its `ping_url`:
    /// `GET /api/v1/monitors/{app}`.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] with status 404 for an unknown app, [`Error::InvalidInput`] for an app
    /// that is not a push monitor; [`Error::Unreachable`], [`Error::Unauthorized`],
    /// [`Error::Protocol`].
    pub async fn heartbeat(&self, app: &AppName) -> Result<Heartbeat> {
        let monitor: serde_json::Value = self
            .http
            .get_json(api::app_endpoint(&self.base, app, &[])?, None)
            .await?;
        match monitor["ping_url"].as_str() {
            Some(ping_url) => Heartbeat::new(ping_url),
            None => Err(Error::invalid(
                "app",
                app.as_str(),
                "a push monitor (register it with a period or a schedule first)",
            )),
        }
    }
}

/// The last `max` bytes of `text`, cut on a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_registrations() {
        let cron = PushMonitor::cron("0 3 * * *", "Europe/Berlin")
            .grace(Duration::from_secs(600))
            .email("me@example.com")
            .body();
        assert_eq!(
            cron,
            serde_json::json!({"kind": "push", "schedule": "0 3 * * *", "tz": "Europe/Berlin", "grace": 600, "email": ["me@example.com"]})
        );
        let every = PushMonitor::every(Duration::from_secs(3600))
            .rotate_key()
            .body();
        assert_eq!(
            every,
            serde_json::json!({"kind": "push", "period": 3600, "rotate_key": true})
        );
    }

    #[test]
    fn ping_urls_are_checked_and_never_shown_whole() {
        let key = "0123456789abcdef0123456789abcdef";
        let heartbeat = Heartbeat::new(format!("http://10.0.0.2:8080/ping/{key}")).expect("valid");
        assert!(!format!("{heartbeat:?}").contains(key));
        for bad in [
            "http://10.0.0.2:8080/ping/short".to_owned(),
            format!("ftp://10.0.0.2/ping/{key}"),
            format!("http://10.0.0.2/{key}"),
            "not a url".to_owned(),
        ] {
            let error = Heartbeat::new(&bad).expect_err(&bad);
            assert!(!error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn tails_cut_on_character_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aéé", 3), "é");
    }
}
