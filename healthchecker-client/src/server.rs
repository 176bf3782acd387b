//! One app's handle on one healthchecker server: the HTTP API calls and the mapping of every
//! answer to a value or an [`Error`].

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::Method;
use url::Url;

use crate::api::{
    Http, app_endpoint, app_url_text, bearer, endpoint, error_for_answer, parse, parse_base_url,
};
use crate::discovery::{self, DEFAULT_DISCOVERY_TIMEOUT, Location, Origin};
use crate::model::{CheckLog, MonitorList};
use crate::{AppName, CheckRecord, Error, Monitor, MonitorInfo, Result};

/// The shortest period [`HealthCheckerServer::keep_monitored`] accepts; shorter ones are raised
/// to it (a registration does not need checking more than once a second).
pub const KEEP_MONITORED_MIN_PERIOD: Duration = Duration::from_secs(1);

/// The answer to [`HealthCheckerServer::monitor`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Registration {
    /// `true` when the app was not monitored before (the server answered 201), `false` when an
    /// existing registration was updated or left unchanged (200).
    pub created: bool,
    /// The monitor as the server now has it, with the defaults it applied.
    pub monitor: MonitorInfo,
}

/// The answer to [`HealthCheckerServer::stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stopped {
    /// The server monitored the app and has stopped.
    Removed,
    /// The server did not monitor the app (it answered 404): nothing to stop.
    WasNotMonitored,
}

/// One app's handle on one healthchecker server.
///
/// Holds where the server is, the app's checked name and base URL, the token (from
/// `HEALTHCHECKER_TOKEN` or [`token`](Self::token)) and one HTTP client with its connection
/// pool, so keep one per app and clone it freely: clones share the pool, the server's location
/// (a move one of them notices is seen by all) and the last [`Monitor`] registered.
///
/// The HTTP client talks to the server directly, ignoring proxy settings (the server is on the
/// LAN), and does not follow redirects.
///
/// # When the server moves
///
/// A server listens on any free port by default, so after a restart it is usually on another
/// port; it keeps its registrations (they are stored), but a client holding the old URL would
/// fail for ever. So, when the URL was found over mDNS (by [`discover`](Self::discover); never
/// for one given to [`at`](Self::at) or in `HEALTHCHECKER_URL`, which the user chose):
///
/// 1. a call that cannot reach the server (refused, reset, timed out) looks for it again over
///    mDNS, once, within the discovery timeout, preferring the server it used before (same
///    instance name). Concurrent calls share that one search;
/// 2. when found, the new URL replaces the old one for this handle and its clones, and the
///    call is retried once there;
/// 3. if the server found there does not know the app (404 for [`info`](Self::info),
///    [`log`](Self::log), [`pause`](Self::pause) or [`resume`](Self::resume)), the app is
///    registered again with the last [`Monitor`] given to [`monitor`](Self::monitor), and the
///    call is retried once more. [`stop`](Self::stop) forgets that monitor, so an app that
///    stopped is never registered again behind its back.
///
/// When nothing answers, the call fails with its original [`Error::Unreachable`].
/// [`keep_monitored`](Self::keep_monitored) runs this check periodically, so that an app that
/// makes no calls of its own stays registered too.
///
/// # Examples
///
/// ```no_run
/// use healthchecker_client::{HealthCheckerServer, Monitor};
///
/// # async fn run() -> Result<(), healthchecker_client::Error> {
/// let server = HealthCheckerServer::at(
///     "http://192.168.1.10:8080",
///     "media-center",
///     "http://192.168.1.20:9090",
/// )?;
/// let registration = server.monitor(Monitor::new().email("me@example.com")).await?;
/// println!("{} is {:?}", registration.monitor.app, registration.monitor.state);
/// server.stop().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HealthCheckerServer {
    http: Http,
    shared: Arc<Shared>,
    app: AppName,
    app_url: String,
}

/// What the clones of one handle share.
#[derive(Debug)]
struct Shared {
    /// Where the server is; replaced when it is found again after it moved.
    location: RwLock<Location>,
    /// Where `location` came from, which decides whether it is ever looked for again.
    origin: Origin,
    /// Only one search at a time: concurrent calls that find the server gone wait for it.
    search: tokio::sync::Mutex<()>,
    /// The last monitor registered, to register again with when the server lost the app;
    /// `None` before the first [`HealthCheckerServer::monitor`] and after
    /// [`HealthCheckerServer::stop`]. Held across a re-registration, so that `stop` cannot slip
    /// in between.
    last_monitor: tokio::sync::Mutex<Option<Monitor>>,
    /// Whether the warning about a missing token was given.
    warned_no_token: AtomicBool,
}

/// What a call does when the server turns out to have moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterMove {
    /// Just retry it at the new address.
    Retry,
    /// Retry it, and if the server does not know the app, register it again first.
    Reregister,
}

impl fmt::Debug for HealthCheckerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthCheckerServer")
            .field("server_url", &self.url().as_str())
            .field("origin", &self.shared.origin)
            .field("app", &self.app.as_str())
            .field("app_url", &self.app_url)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl HealthCheckerServer {
    /// Finds the healthchecker server and returns a handle for the app `app` at `app_url`.
    ///
    /// The server is taken from `HEALTHCHECKER_URL` when it is set (and then nothing is sent
    /// over mDNS); otherwise it is looked for over mDNS for at most
    /// [`DEFAULT_DISCOVERY_TIMEOUT`] (3 s; see [`discover_with_timeout`](Self::discover_with_timeout)),
    /// and the first server that answers `GET /health` on one of its advertised addresses
    /// (tried in [`FoundServer::urls`](crate::discovery::FoundServer::urls) order) is used. A
    /// server found over mDNS is looked for again if it moves (see
    /// [When the server moves](Self#when-the-server-moves)). To give the URL explicitly, use
    /// [`at`](Self::at).
    ///
    /// `HEALTHCHECKER_TOKEN` is read as for [`at`](Self::at). When the server advertises
    /// `auth=token` and no token is set, the first call logs a warning.
    ///
    /// # Errors
    ///
    /// * [`Error::ServerNotFound`] when no server answers in time, saying what to do;
    /// * [`Error::Discovery`] when mDNS cannot be used at all;
    /// * [`Error::InvalidInput`] for a bad app name, app URL, `HEALTHCHECKER_URL` or
    ///   `HEALTHCHECKER_TOKEN`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use healthchecker_client::HealthCheckerServer;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let port = 9090;
    /// let server = HealthCheckerServer::discover(
    ///     "media-center",
    ///     format!("http://{}:{port}", iputils::my_ip_addr()?),
    /// )
    /// .await?;
    /// println!("using the healthchecker server at {}", server.url());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn discover(app: impl AsRef<str>, app_url: impl AsRef<str>) -> Result<Self> {
        Self::discover_with_timeout(app, app_url, DEFAULT_DISCOVERY_TIMEOUT).await
    }

    /// [`discover`](Self::discover), listening over mDNS for at most `timeout` (also the
    /// time allowed to find the server again when it moved).
    ///
    /// # Errors
    ///
    /// As for [`discover`](Self::discover).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use healthchecker_client::HealthCheckerServer;
    ///
    /// # async fn run() -> Result<(), healthchecker_client::Error> {
    /// let server = HealthCheckerServer::discover_with_timeout(
    ///     "media-center",
    ///     "http://192.168.1.20:9090",
    ///     Duration::from_secs(10),
    /// )
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn discover_with_timeout(
        app: impl AsRef<str>,
        app_url: impl AsRef<str>,
        timeout: Duration,
    ) -> Result<Self> {
        // Check the app's side first: a typo there is worth reporting even with no server.
        let app = AppName::parse(app.as_ref())?;
        let app_url = app_url_text(app_url.as_ref())?;
        let http = Http::from_env()?;
        let (location, origin) = discovery::find_server(http.client(), timeout).await?;
        match origin {
            Origin::Env => tracing::debug!(
                "using the healthchecker server at {} (HEALTHCHECKER_URL)",
                location.url
            ),
            _ => tracing::info!(
                "found the healthchecker server {:?} at {} over mDNS",
                location.instance.as_deref().unwrap_or_default(),
                location.url
            ),
        }
        Ok(Self::from_parts(http, location, origin, app, app_url))
    }

    /// A handle for the app `app` at `app_url`, on the server at `server_url`.
    ///
    /// `server_url` and `app_url` are `http://` or `https://` base URLs with a host and no
    /// credentials, query or fragment; they may carry a path prefix. `HEALTHCHECKER_TOKEN`,
    /// when set and not blank, becomes the bearer token (see [`token`](Self::token)).
    /// Nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the bad input: `server_url`, `app`, `app_url`, or
    /// `HEALTHCHECKER_TOKEN`.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::HealthCheckerServer;
    ///
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?;
    /// assert_eq!(server.url().as_str(), "http://127.0.0.1:8080/");
    /// assert!(HealthCheckerServer::at("ftp://x", "nas", "http://127.0.0.1:9090").is_err());
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    pub fn at(
        server_url: impl AsRef<str>,
        app: impl AsRef<str>,
        app_url: impl AsRef<str>,
    ) -> Result<Self> {
        let server_url = parse_base_url("server_url", server_url.as_ref())?;
        let app = AppName::parse(app.as_ref())?;
        let app_url = app_url_text(app_url.as_ref())?;
        let http = Http::from_env()?;
        let location = Location {
            url: server_url,
            instance: None,
            auth_token: false,
        };
        Ok(Self::from_parts(
            http,
            location,
            Origin::Explicit,
            app,
            app_url,
        ))
    }

    fn from_parts(
        http: Http,
        location: Location,
        origin: Origin,
        app: AppName,
        app_url: String,
    ) -> Self {
        Self {
            http,
            shared: Arc::new(Shared {
                location: RwLock::new(location),
                origin,
                search: tokio::sync::Mutex::new(()),
                last_monitor: tokio::sync::Mutex::new(None),
                warned_no_token: AtomicBool::new(false),
            }),
            app,
            app_url,
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request, replacing any token from
    /// `HEALTHCHECKER_TOKEN`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the field `token` when it is empty or holds characters other
    /// than visible ASCII.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::HealthCheckerServer;
    ///
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?
    ///     .token("s3cret")?;
    /// assert!(!format!("{server:?}").contains("s3cret"));
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    pub fn token(mut self, token: impl AsRef<str>) -> Result<Self> {
        let value = bearer("token", token.as_ref())?;
        self.http.set_token(Some(value));
        Ok(self)
    }

    /// Sends no `Authorization` header, even when `HEALTHCHECKER_TOKEN` is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::HealthCheckerServer;
    ///
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?
    ///     .without_token();
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn without_token(mut self) -> Self {
        self.http.set_token(None);
        self
    }

    /// How long one request to the server may take, connecting included (default 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use healthchecker_client::HealthCheckerServer;
    ///
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?
    ///     .timeout(Duration::from_secs(3));
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http.set_timeout(timeout);
        self
    }

    /// The server's base URL: the one given, or the one found over mDNS (which changes when
    /// the server is found again after it moved).
    ///
    /// # Examples
    ///
    /// ```
    /// # use healthchecker_client::HealthCheckerServer;
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?;
    /// println!("registered with healthchecker at {}", server.url());
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn url(&self) -> Url {
        self.location().url
    }

    /// The mDNS instance name of the server (e.g. `healthchecker on pi`) when it was found over
    /// mDNS; `None` for a URL that was given.
    ///
    /// # Examples
    ///
    /// ```
    /// # use healthchecker_client::HealthCheckerServer;
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?;
    /// assert_eq!(server.instance(), None);
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn instance(&self) -> Option<String> {
        self.location().instance
    }

    /// Whether the server advertised over mDNS that it requires a token (`auth=token` in its
    /// TXT record). Always `false` for a URL that was given: nothing says so then.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn run() -> Result<(), healthchecker_client::Error> {
    /// let server = HealthCheckerServer::discover("nas", "http://192.168.1.20:9090").await?;
    /// if server.token_required() {
    ///     println!("set HEALTHCHECKER_TOKEN to register");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn token_required(&self) -> bool {
        self.location().auth_token
    }

    fn location(&self) -> Location {
        self.shared
            .location
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The app's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use healthchecker_client::HealthCheckerServer;
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?;
    /// assert_eq!(server.app().as_str(), "nas");
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// The app's base URL, as sent to the server.
    ///
    /// # Examples
    ///
    /// ```
    /// # use healthchecker_client::HealthCheckerServer;
    /// let server = HealthCheckerServer::at("http://127.0.0.1:8080", "nas", "http://127.0.0.1:9090")?;
    /// assert_eq!(server.app_url(), "http://127.0.0.1:9090");
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// Registers the app for monitoring, or updates its registration (idempotent):
    /// `PUT /api/v1/monitors/{app}`.
    ///
    /// The parameters are checked locally first ([`Monitor::validate`]); parameters not set
    /// are left out so the server's defaults apply.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidInput`] for a parameter out of range (nothing is sent);
    /// * [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Rejected`] (e.g. 422 naming
    ///   a field, 429 rate limited), [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::{HealthCheckerServer, Monitor};
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// let registration = server
    ///     .monitor(Monitor::new().email("me@example.com").interval(10).unhealthy(2).healthy(4))
    ///     .await?;
    /// if registration.created {
    ///     println!("now monitored every {} s", registration.monitor.interval);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn monitor(&self, monitor: impl Borrow<Monitor>) -> Result<Registration> {
        let monitor = monitor.borrow();
        monitor.validate()?;
        let registration = self
            .call(AfterMove::Retry, |base| self.register_at(base, monitor))
            .await?;
        *self.shared.last_monitor.lock().await = Some(monitor.clone());
        Ok(registration)
    }

    async fn register_at(&self, base: Url, monitor: &Monitor) -> Result<Registration> {
        let url = app_endpoint(&base, &self.app, &[])?;
        let request = self
            .http
            .request(Method::PUT, url.clone())
            .json(&monitor.body(&self.app_url));
        let (status, body) = self.http.send(request, &url).await?;
        let created = match status {
            201 => true,
            200 => false,
            _ => return Err(error_for_answer(status, &body, &url, Some(&self.app))),
        };
        let monitor: MonitorInfo = parse(&url, &body)?;
        tracing::info!(
            app = %self.app,
            server = %base,
            created,
            "registered with healthchecker"
        );
        Ok(Registration { created, monitor })
    }

    /// Stops monitoring the app: `DELETE /api/v1/monitors/{app}`.
    ///
    /// A 404 (the server did not monitor the app) is not an error: the result is
    /// [`Stopped::WasNotMonitored`], and a log line says so. The last [`Monitor`] given is
    /// forgotten, so the app is not registered again after a move or by
    /// [`keep_monitored`](Self::keep_monitored) until [`monitor`](Self::monitor) is called
    /// again.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Rejected`],
    /// [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::{HealthCheckerServer, Stopped};
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// if server.stop().await? == Stopped::WasNotMonitored {
    ///     println!("was not monitored anyway");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(&self) -> Result<Stopped> {
        // Held until the server has answered: a re-registration cannot slip in between.
        let mut last_monitor = self.shared.last_monitor.lock().await;
        *last_monitor = None;
        self.call(AfterMove::Retry, |base| self.unregister_at(base))
            .await
    }

    async fn unregister_at(&self, base: Url) -> Result<Stopped> {
        let url = app_endpoint(&base, &self.app, &[])?;
        let (status, body) = self
            .http
            .send(self.http.request(Method::DELETE, url.clone()), &url)
            .await?;
        match status {
            200 | 204 => {
                tracing::info!(app = %self.app, server = %base, "unregistered from healthchecker");
                Ok(Stopped::Removed)
            }
            _ => match error_for_answer(status, &body, &url, Some(&self.app)) {
                Error::NotMonitored { .. } => {
                    tracing::info!(
                        app = %self.app,
                        server = %base,
                        "not monitored by healthchecker: nothing to stop"
                    );
                    Ok(Stopped::WasNotMonitored)
                }
                other => Err(other),
            },
        }
    }

    /// The app's monitor with its state, counters and recent transitions:
    /// `GET /api/v1/monitors/{app}`.
    ///
    /// # Errors
    ///
    /// [`Error::NotMonitored`] when the server does not monitor the app; [`Error::Unreachable`],
    /// [`Error::Unauthorized`], [`Error::Rejected`], [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// let info = server.info().await?;
    /// println!("{} is {:?} since {:?}", info.app, info.state, info.since);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn info(&self) -> Result<MonitorInfo> {
        self.call(AfterMove::Reregister, |base| async move {
            let url = app_endpoint(&base, &self.app, &[])?;
            self.http.get_json(url, Some(&self.app)).await
        })
        .await
    }

    /// The app's health-check log, newest first, at most `limit` checks:
    /// `GET /api/v1/monitors/{app}/log?limit=N`.
    ///
    /// # Errors
    ///
    /// [`Error::NotMonitored`] when the server does not monitor the app; [`Error::Unreachable`],
    /// [`Error::Unauthorized`], [`Error::Rejected`], [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// for check in server.log(20).await? {
    ///     println!("{} {:?} {} {:.1} ms", check.time, check.outcome, check.reason, check.latency_ms);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn log(&self, limit: u32) -> Result<Vec<CheckRecord>> {
        self.call(AfterMove::Reregister, |base| async move {
            let mut url = app_endpoint(&base, &self.app, &["log"])?;
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
            let log: CheckLog = self.http.get_json(url, Some(&self.app)).await?;
            Ok(log.checks)
        })
        .await
    }

    /// Every monitor the server has: `GET /api/v1/monitors`.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Rejected`],
    /// [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// for monitor in server.list().await? {
    ///     println!("{:30} {:?}", monitor.app, monitor.state);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list(&self) -> Result<Vec<MonitorInfo>> {
        self.call(AfterMove::Retry, |base| async move {
            let url = endpoint(&base, &[])?;
            let list: MonitorList = self.http.get_json(url, Some(&self.app)).await?;
            Ok(list.monitors)
        })
        .await
    }

    /// Stops polling the app without forgetting it: `POST /api/v1/monitors/{app}/pause`.
    ///
    /// # Errors
    ///
    /// [`Error::NotMonitored`] when the server does not monitor the app; [`Error::Unreachable`],
    /// [`Error::Unauthorized`], [`Error::Rejected`], [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// let info = server.pause().await?;
    /// assert!(info.paused);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn pause(&self) -> Result<MonitorInfo> {
        self.post_action("pause").await
    }

    /// Restarts polling a paused app: `POST /api/v1/monitors/{app}/resume`.
    ///
    /// # Errors
    ///
    /// [`Error::NotMonitored`] when the server does not monitor the app; [`Error::Unreachable`],
    /// [`Error::Unauthorized`], [`Error::Rejected`], [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// let info = server.resume().await?;
    /// assert!(!info.paused);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resume(&self) -> Result<MonitorInfo> {
        self.post_action("resume").await
    }

    /// Puts the app in maintenance for `duration` (rounded up to whole minutes, at most a
    /// week): its checks go on, nobody is told anything until it ends, and then only what is
    /// still wrong. Meant for an app's own deploy or shutdown path, before it goes away for a
    /// moment: `POST /api/v1/monitors/{app}/maintenance`.
    ///
    /// # Errors
    ///
    /// [`Error::NotMonitored`] when the server does not monitor the app; [`Error::Rejected`]
    /// for a duration of more than a week; [`Error::Unreachable`], [`Error::Unauthorized`],
    /// [`Error::Protocol`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use healthchecker_client::HealthCheckerServer;
    /// # async fn deploy(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// server.maintenance(Duration::from_secs(10 * 60), "deploy").await?;
    /// // ... restart the app: no alert while it is down ...
    /// server.end_maintenance().await?; // back early
    /// # Ok(())
    /// # }
    /// ```
    pub async fn maintenance(&self, duration: Duration, reason: &str) -> Result<MonitorInfo> {
        let body = crate::api::maintenance_body(duration, reason);
        self.call(AfterMove::Reregister, |base| {
            let body = body.clone();
            async move {
                let url = app_endpoint(&base, &self.app, &["maintenance"])?;
                let request = self.http.request(Method::POST, url.clone()).json(&body);
                let (status, answer) = self.http.send(request, &url).await?;
                if status == 200 {
                    parse(&url, &answer)
                } else {
                    Err(error_for_answer(status, &answer, &url, Some(&self.app)))
                }
            }
        })
        .await
    }

    /// Ends the app's maintenance now: `DELETE /api/v1/monitors/{app}/maintenance`.
    ///
    /// # Errors
    ///
    /// As for [`maintenance`](Self::maintenance).
    pub async fn end_maintenance(&self) -> Result<MonitorInfo> {
        self.call(AfterMove::Reregister, |base| async move {
            let url = app_endpoint(&base, &self.app, &["maintenance"])?;
            let (status, body) = self
                .http
                .send(self.http.request(Method::DELETE, url.clone()), &url)
                .await?;
            if status == 200 {
                parse(&url, &body)
            } else {
                Err(error_for_answer(status, &body, &url, Some(&self.app)))
            }
        })
        .await
    }

    async fn post_action(&self, action: &str) -> Result<MonitorInfo> {
        self.call(AfterMove::Reregister, |base| async move {
            let url = app_endpoint(&base, &self.app, &[action])?;
            let (status, body) = self
                .http
                .send(self.http.request(Method::POST, url.clone()), &url)
                .await?;
            if status == 200 {
                parse(&url, &body)
            } else {
                Err(error_for_answer(status, &body, &url, Some(&self.app)))
            }
        })
        .await
    }

    /// Runs `attempt` against the server's base URL; when the server moved, finds it again and
    /// retries (see [When the server moves](Self#when-the-server-moves)).
    async fn call<T, F, Fut>(&self, after_move: AfterMove, attempt: F) -> Result<T>
    where
        F: Fn(Url) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let location = self.location();
        self.warn_if_token_missing(&location);
        let error = match attempt(location.url.clone()).await {
            Err(error @ Error::Unreachable { .. }) if self.rediscovers() => error,
            other => return other,
        };
        let Some(moved) = self.find_again(&location.url, &error).await else {
            return Err(error);
        };
        match attempt(moved.clone()).await {
            Err(Error::NotMonitored { .. }) if after_move == AfterMove::Reregister => {
                self.reregister(moved.clone(), "the server moved").await?;
                attempt(moved).await
            }
            other => other,
        }
    }

    fn rediscovers(&self) -> bool {
        matches!(self.shared.origin, Origin::Mdns { .. })
    }

    /// Looks for the server again after `failed` stopped answering; the URL to retry at, or
    /// `None` when it was not found (then the original error stands).
    async fn find_again(&self, failed: &Url, error: &Error) -> Option<Url> {
        let Origin::Mdns { timeout } = self.shared.origin else {
            return None;
        };
        let _one_search = self.shared.search.lock().await;
        let known = self.location();
        if known.url != *failed {
            // Another call found it while this one waited.
            return Some(known.url);
        }
        tracing::info!(
            app = %self.app,
            "the healthchecker server at {failed} does not answer ({error}); looking for it \
             again over mDNS"
        );
        match discovery::find_reachable(self.http.client(), timeout, known.instance.as_deref())
            .await
        {
            Ok(found) => {
                if found.url == *failed {
                    tracing::info!(app = %self.app, "the healthchecker server is back at {failed}");
                } else {
                    tracing::info!(
                        app = %self.app,
                        "the healthchecker server {:?} moved from {failed} to {}",
                        found.instance.as_deref().unwrap_or_default(),
                        found.url
                    );
                }
                let url = found.url.clone();
                *self
                    .shared
                    .location
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = found;
                Some(url)
            }
            Err(not_found) => {
                tracing::warn!(
                    app = %self.app,
                    "the healthchecker server at {failed} does not answer, and looking for it \
                     again failed: {not_found}"
                );
                None
            }
        }
    }

    /// Registers the app again with the last monitor given, if there is one (`why` is logged).
    /// Returns whether it did.
    async fn reregister(&self, base: Url, why: &str) -> Result<bool> {
        let last_monitor = self.shared.last_monitor.lock().await;
        let Some(monitor) = last_monitor.as_ref() else {
            return Ok(false);
        };
        tracing::info!(app = %self.app, "registering with healthchecker again: {why}");
        self.register_at(base, monitor).await?;
        Ok(true)
    }

    fn warn_if_token_missing(&self, location: &Location) {
        if location.auth_token
            && !self.http.has_token()
            && !self.shared.warned_no_token.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                app = %self.app,
                "the healthchecker server {:?} at {} requires a token (it advertises \
                 auth=token) and none is set: registering and other changes will be refused; \
                 set HEALTHCHECKER_TOKEN or call .token(...)",
                location.instance.as_deref().unwrap_or_default(),
                location.url
            );
        }
    }

    /// Keeps the app registered in the background: every `period`, checks that the server
    /// still monitors it, and registers it again with the last [`Monitor`] given to
    /// [`monitor`](Self::monitor) when the server lost it (another data folder, a deleted
    /// database) or moved (see [When the server moves](Self#when-the-server-moves)).
    ///
    /// Each check is one `GET /api/v1/monitors/{app}`. Nothing is done before the first
    /// [`monitor`](Self::monitor) nor after [`stop`](Self::stop); a server that cannot be
    /// reached is logged and tried again next period. The checks run on a tokio task until the
    /// returned [`KeepMonitored`] is stopped ([`KeepMonitored::stop`]) or dropped. A `period`
    /// under [`KEEP_MONITORED_MIN_PERIOD`] is raised to it; about a minute suits most apps.
    ///
    /// Unlike the one-off re-registration after a move, this also registers the app again when
    /// someone else removed it from the server (the app asked to be kept monitored).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use healthchecker_client::{HealthCheckerServer, Monitor};
    /// # async fn run(server: HealthCheckerServer) -> Result<(), healthchecker_client::Error> {
    /// server.monitor(Monitor::new().email("me@example.com")).await?;
    /// let keeper = server.keep_monitored(Duration::from_secs(60));
    /// // ... the app runs ...
    /// keeper.stop().await;
    /// server.stop().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn keep_monitored(&self, period: Duration) -> KeepMonitored {
        let period = period.max(KEEP_MONITORED_MIN_PERIOD);
        let server = self.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    () = server.check_registration(period) => {}
                }
            }
        });
        KeepMonitored {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// One check of [`keep_monitored`](Self::keep_monitored).
    async fn check_registration(&self, period: Duration) {
        if self.shared.last_monitor.lock().await.is_none() {
            tracing::debug!(app = %self.app, "not registered: nothing to keep");
            return;
        }
        match self.info().await {
            Ok(_) => tracing::debug!(app = %self.app, "still monitored by healthchecker"),
            Err(Error::NotMonitored { .. }) => {
                match self
                    .reregister(self.url(), "the server no longer monitors this app")
                    .await
                {
                    Ok(_) => {}
                    Err(error) => tracing::warn!(
                        app = %self.app,
                        "cannot register with healthchecker again: {error}; trying again in {period:?}"
                    ),
                }
            }
            Err(error) => tracing::warn!(
                app = %self.app,
                "cannot check the healthchecker registration: {error}; trying again in {period:?}"
            ),
        }
    }
}

/// The handle of [`HealthCheckerServer::keep_monitored`]'s background checks: they stop when it
/// is dropped, or, waiting for a check in progress to be abandoned cleanly, with
/// [`stop`](Self::stop).
#[derive(Debug)]
#[must_use = "the checks stop when this is dropped"]
pub struct KeepMonitored {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl KeepMonitored {
    /// Stops the checks and waits until the task has ended. It does not unregister the app:
    /// call [`HealthCheckerServer::stop`] for that.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::debug!("keep_monitored task ended abnormally: {error}");
        }
    }
}

impl Drop for KeepMonitored {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BASE_URL, error_for, unexpected};

    fn server(app: &str) -> HealthCheckerServer {
        HealthCheckerServer::at("http://127.0.0.1:8080/", app, "http://127.0.0.1:9090")
            .expect("valid")
    }

    #[test]
    fn base_url_table() {
        let table: &[(&str, bool)] = &[
            ("http://192.168.1.20:9090", true),
            ("https://nas.local", true),
            ("http://[::1]:8080", true),
            ("http://10.0.0.5:9090/app/", true),
            (" http://10.0.0.5:9090 ", true),
            ("10.0.0.5:9090", false),
            ("ftp://10.0.0.5", false),
            ("http://", false),
            ("http://user:pw@10.0.0.5", false),
            ("http://10.0.0.5/?x=1", false),
            ("http://10.0.0.5/?", false),
            ("http://10.0.0.5/#top", false),
            ("http://10.0.0.5/a\nb", false),
            ("", false),
        ];
        for (text, ok) in table {
            assert_eq!(parse_base_url("app_url", text).is_ok(), *ok, "{text:?}");
        }
        let err = parse_base_url("app_url", "nope").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            format!("invalid app_url: \"nope\"; expected {BASE_URL}")
        );
    }

    #[test]
    fn endpoints_encode_the_app_as_one_segment() {
        let at = |server: &HealthCheckerServer, tail: &[&str]| {
            app_endpoint(&server.url(), server.app(), tail).expect("url")
        };
        assert_eq!(
            at(&server("media-center"), &[]).as_str(),
            "http://127.0.0.1:8080/api/v1/monitors/media-center"
        );
        assert_eq!(
            at(&server("Sample App?x=1#y%"), &["log"]).as_str(),
            "http://127.0.0.1:8080/api/v1/monitors/Sample%20App%3Fx=1%23y%25/log"
        );
        assert_eq!(
            endpoint(&server("café").url(), &[]).expect("url").as_str(),
            "http://127.0.0.1:8080/api/v1/monitors"
        );
        let prefixed =
            HealthCheckerServer::at("http://127.0.0.1:8080/hc", "nas", "http://127.0.0.1:9090")
                .expect("valid");
        assert_eq!(
            at(&prefixed, &["pause"]).as_str(),
            "http://127.0.0.1:8080/hc/api/v1/monitors/nas/pause"
        );
    }

    #[test]
    fn constructors_name_the_bad_input() {
        let field = |r: Result<HealthCheckerServer>| match r {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            field(HealthCheckerServer::at("x", "nas", "http://a")),
            "server_url"
        );
        assert_eq!(
            field(HealthCheckerServer::at("http://a", "", "http://a")),
            "app"
        );
        assert_eq!(
            field(HealthCheckerServer::at("http://a", "nas", "a:1")),
            "app_url"
        );
        assert_eq!(field(server("nas").token("has space")), "token");
        assert_eq!(field(server("nas").token("")), "token");
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", server("nas").token("s3cret").expect("token"));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn error_mapping_table() {
        let url = Url::parse("http://127.0.0.1:8080/api/v1/monitors/nas").expect("url");
        let list = Url::parse("http://127.0.0.1:8080/api/v1/monitors").expect("url");
        let app = AppName::parse("nas").expect("name");
        let json_error =
            br#"{"error":{"code":"invalid_field","message":"interval 3: from 5 to 300","field":"interval"}}"#;
        let not_found =
            br#"{"error":{"code":"not_found","message":"no monitor nas","field":null}}"#;

        let mapped = |status, body: &[u8], url: &Url| {
            error_for(status, body, url, Some(&app))
                .unwrap_or_else(|| unexpected(status, body, url))
        };
        assert!(matches!(
            mapped(422, json_error, &url),
            Error::Rejected { status: 422, ref code, field: Some(ref f), .. }
                if code == "invalid_field" && f == "interval"
        ));
        assert!(
            matches!(mapped(404, not_found, &url), Error::NotMonitored { ref app } if app == "nas")
        );
        assert!(matches!(
            mapped(404, not_found, &list),
            Error::Rejected { status: 404, .. }
        ));
        assert!(matches!(
            mapped(404, b"<html>nope</html>", &url),
            Error::Protocol { .. }
        ));
        assert!(matches!(
            mapped(401, br#"{"error":{"code":"unauthorized","message":"token required"}}"#, &url),
            Error::Unauthorized { ref message } if message == "token required"
        ));
        assert!(matches!(mapped(401, b"", &url), Error::Unauthorized { .. }));
        assert!(matches!(
            mapped(502, b"Bad Gateway", &url),
            Error::Protocol { .. }
        ));
        let Error::Protocol { detail, .. } = mapped(302, b"", &url) else {
            panic!("variant")
        };
        assert_eq!(detail, "HTTP 302 with an empty body");
    }
}
