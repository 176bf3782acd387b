//! The client side of the HTTP API in one place: base URLs and endpoints, the one HTTP client,
//! one request with its token and timeout, and the mapping of every answer to a value or an
//! [`Error`].
//!
//! Two tokens: changes send the `token` (`HEALTHCHECKER_TOKEN`); reads send the `read_token`
//! (`HEALTHCHECKER_READ_TOKEN`) when there is one, else the `token` (a server takes it for reads
//! too).
//!
//! [`ApiClient`] reads a server's monitors and logs without being an app (the server's `list`
//! and `log` subcommands use it); [`HealthCheckerServer`](crate::HealthCheckerServer), an app's
//! handle, sends through the same `Http`. [`encode_segment`] is the one percent-encoding of an
//! app name in a URL.
//!
//! This module is a leaf of the crate: it knows the API's paths and answers, not discovery nor
//! apps' handles.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource as _};
use futures_util::{Stream, StreamExt as _};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use url::Url;

use crate::model::{CheckLog, ErrorBody, MonitorList};
use crate::{AppName, CheckRecord, ENV_READ_TOKEN, ENV_TOKEN, Error, MonitorInfo, Result};

/// How long one request to the server may take, unless set with
/// [`HealthCheckerServer::timeout`](crate::HealthCheckerServer::timeout) or
/// [`ApiClient::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most this client reads of one answer; a list of many monitors fits easily.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// The longest URL accepted, in bytes (the server's limit too).
const URL_MAX: usize = 2048;

/// One HTTP client with the token and the timeout of its requests: what every call sends
/// through.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    /// Sent with changes, and with reads when there is no `read_token`.
    token: Option<HeaderValue>,
    /// Sent with reads.
    read_token: Option<HeaderValue>,
    timeout: Duration,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            // The token is a secret: say whether there is one, never what it is.
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "read_token",
                &self.read_token.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// A client with the tokens from `HEALTHCHECKER_TOKEN` and `HEALTHCHECKER_READ_TOKEN` and
    /// the default timeout.
    pub(crate) fn from_env() -> Result<Http> {
        Ok(Http {
            token: token_from_env(ENV_TOKEN)?,
            read_token: token_from_env(ENV_READ_TOKEN)?,
            client: http_client()?,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The underlying client, for discovery's probes.
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether a token is sent.
    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Sends `Bearer token` with changes from now on (and with reads, without a read token);
    /// `None`: no token.
    pub(crate) fn set_token(&mut self, token: Option<HeaderValue>) {
        self.token = token;
    }

    /// Sends `Bearer read_token` with reads from now on; `None`: the token, if any.
    pub(crate) fn set_read_token(&mut self, read_token: Option<HeaderValue>) {
        self.read_token = read_token;
    }

    /// This client without tokens (push monitors' pings: the key is the credential).
    pub(crate) fn without_token(mut self) -> Http {
        self.token = None;
        self.read_token = None;
        self
    }

    /// How long one request may take.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// What a read sends: the `read_token`, else the `token`.
    pub(crate) fn read_authorization(&self) -> Option<&HeaderValue> {
        self.read_token.as_ref().or(self.token.as_ref())
    }

    /// A request of `method` to `url`.
    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// `GET url`, parsed from JSON on 200; any other answer is mapped to an [`Error`] (a 404 is
    /// [`Error::NotMonitored`] when `app` is given).
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        app: Option<&AppName>,
    ) -> Result<T> {
        let (status, body) = self
            .send_with(
                self.request(Method::GET, url.clone()),
                &url,
                self.read_authorization(),
            )
            .await?;
        if status == 200 {
            parse(&url, &body)
        } else {
            Err(error_for_answer(status, &body, &url, app))
        }
    }

    /// Sends a change with the timeout and token; returns the status and the body.
    pub(crate) async fn send(&self, request: RequestBuilder, url: &Url) -> Result<(u16, Vec<u8>)> {
        self.send_with(request, url, self.token.as_ref()).await
    }

    /// Sends the request with the timeout and `token`; returns the status and the body.
    async fn send_with(
        &self,
        request: RequestBuilder,
        url: &Url,
        token: Option<&HeaderValue>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut request = request
            .timeout(self.timeout)
            .header(ACCEPT, "application/json");
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        let unreachable = |source: reqwest::Error| Error::Unreachable {
            url: url.to_string(),
            source: Box::new(source),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Error::Protocol {
                    url: url.to_string(),
                    detail: format!("an answer larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

/// A client of one server's API that is not an app: it reads the monitors and their logs, for
/// tools such as the server's `list` and `log` subcommands. An app uses
/// [`HealthCheckerServer`](crate::HealthCheckerServer) instead.
///
/// # Examples
///
/// ```no_run
/// use healthchecker_client::AppName;
/// use healthchecker_client::api::ApiClient;
///
/// # async fn run() -> Result<(), healthchecker_client::Error> {
/// let api = ApiClient::new("http://192.168.1.10:8080")?;
/// for monitor in api.list().await? {
///     println!("{} {:?}", monitor.app, monitor.state);
/// }
/// let log = api.log(&AppName::parse("media-center")?, 20).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub(crate) http: Http,
    pub(crate) base: Url,
}

impl ApiClient {
    /// A client of the server at `server_url` (an `http://` or `https://` base URL), sending
    /// `HEALTHCHECKER_READ_TOKEN`, or else `HEALTHCHECKER_TOKEN`, with its reads when set and
    /// not blank. Nothing is sent yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad `server_url`, `HEALTHCHECKER_TOKEN` or
    /// `HEALTHCHECKER_READ_TOKEN`.
    pub fn new(server_url: impl AsRef<str>) -> Result<ApiClient> {
        Ok(ApiClient {
            base: parse_base_url("server_url", server_url.as_ref())?,
            http: Http::from_env()?,
        })
    }

    /// Sends `Authorization: Bearer <token>`, replacing any token from `HEALTHCHECKER_TOKEN`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the field `token` when it is empty or holds characters other
    /// than visible ASCII.
    pub fn token(mut self, token: impl AsRef<str>) -> Result<ApiClient> {
        self.http.set_token(Some(bearer("token", token.as_ref())?));
        Ok(self)
    }

    /// Sends `Authorization: Bearer <read_token>` with every read (the server's `read_token`),
    /// replacing any from `HEALTHCHECKER_READ_TOKEN`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the field `read_token` when it is empty or holds characters
    /// other than visible ASCII.
    pub fn read_token(mut self, read_token: impl AsRef<str>) -> Result<ApiClient> {
        self.http
            .set_read_token(Some(bearer("read_token", read_token.as_ref())?));
        Ok(self)
    }

    /// How long one request may take, connecting included (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> ApiClient {
        self.http.set_timeout(timeout);
        self
    }

    /// The server's base URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.base
    }

    /// Every monitor of the server: `GET /api/v1/monitors`.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Rejected`],
    /// [`Error::Protocol`].
    pub async fn list(&self) -> Result<Vec<MonitorInfo>> {
        let list: MonitorList = self.http.get_json(endpoint(&self.base, &[])?, None).await?;
        Ok(list.monitors)
    }

    /// `GET /api/v1/monitors` as the server sent it, for scripts that want every field.
    ///
    /// # Errors
    ///
    /// As for [`list`](Self::list).
    pub async fn list_json(&self) -> Result<serde_json::Value> {
        self.http.get_json(endpoint(&self.base, &[])?, None).await
    }

    /// One monitor with its recent transitions: `GET /api/v1/monitors/{app}`.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] with status 404 (and the server's message) for an unknown app;
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Protocol`].
    pub async fn info(&self, app: &AppName) -> Result<MonitorInfo> {
        self.http
            .get_json(app_endpoint(&self.base, app, &[])?, None)
            .await
    }

    /// The health-check log of `app`, newest first, at most `limit` checks:
    /// `GET /api/v1/monitors/{app}/log?limit=N`.
    ///
    /// # Errors
    ///
    /// As for [`info`](Self::info).
    pub async fn log(&self, app: &AppName, limit: u32) -> Result<Vec<CheckRecord>> {
        let mut url = app_endpoint(&self.base, app, &["log"])?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        let log: CheckLog = self.http.get_json(url, None).await?;
        Ok(log.checks)
    }

    /// The checks of `app` from now on, as they happen: `GET /api/v1/events?app=NAME`. The
    /// stream is open when this returns, so a check made after it is never missed.
    ///
    /// # Errors
    ///
    /// As for [`info`](Self::info).
    pub async fn follow(&self, app: &AppName) -> Result<CheckEvents> {
        let mut url = self.base.clone();
        {
            let path = format!("{}/api/v1/events", self.base.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        url.query_pairs_mut().append_pair("app", app.as_str());
        // No timeout: the stream is meant to stay open (the server sends a comment every 15 s).
        let mut request = self
            .http
            .request(Method::GET, url.clone())
            .header(ACCEPT, "text/event-stream");
        if let Some(token) = self.http.read_authorization() {
            request = request.header(AUTHORIZATION, token.clone());
        }
        let unreachable = |source: reqwest::Error| Error::Unreachable {
            url: url.to_string(),
            source: Box::new(source),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        if status != 200 {
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
                body.extend_from_slice(&chunk);
                if body.len() > 64 * 1024 {
                    break;
                }
            }
            return Err(error_for_answer(status, &body, &url, Some(app)));
        }
        let bytes = futures_util::stream::unfold(Some(response), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                Ok(None) => None,
                Err(error) => Some((Err(error), None)),
            }
        });
        Ok(CheckEvents {
            events: Box::pin(bytes.eventsource()),
            url,
        })
    }
}

/// The checks of one app as they happen, from `GET /api/v1/events?app=NAME` (Server-Sent
/// Events); made by [`ApiClient::follow`].
pub struct CheckEvents {
    events: Pin<
        Box<
            dyn Stream<
                    Item = std::result::Result<
                        eventsource_stream::Event,
                        EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
    url: Url,
}

impl fmt::Debug for CheckEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckEvents")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// One `check` event as the server sends it.
#[derive(serde::Deserialize)]
struct CheckEvent {
    check: CheckRecord,
}

impl CheckEvents {
    /// The next check, as soon as the server has recorded it; `Ok(None)` when the server ended
    /// the stream (it shut down, or this reader fell too far behind and was dropped).
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] when the connection broke, [`Error::Protocol`] for an event that
    /// is not what the server sends.
    pub async fn next(&mut self) -> Result<Option<CheckRecord>> {
        while let Some(event) = self.events.next().await {
            let event = event.map_err(|error| Error::Unreachable {
                url: self.url.to_string(),
                source: Box::new(error),
            })?;
            match event.event.as_str() {
                "check" => {
                    let parsed: CheckEvent = parse(&self.url, event.data.as_bytes())?;
                    return Ok(Some(parsed.check));
                }
                "lagged" => return Ok(None),
                _ => {}
            }
        }
        Ok(None)
    }
}

/// The body of `POST .../maintenance` for `duration` (whole minutes, rounded up, at least one).
pub(crate) fn maintenance_body(duration: Duration, reason: &str) -> serde_json::Value {
    let minutes = duration.as_secs().div_ceil(60).max(1);
    serde_json::json!({ "minutes": minutes, "reason": reason })
}

impl ApiClient {
    /// Puts `app` in maintenance for `duration`, or (with `None`) ends it:
    /// `POST` or `DELETE /api/v1/monitors/{app}/maintenance`.
    ///
    /// # Errors
    ///
    /// As for [`info`](Self::info), and [`Error::Unauthorized`] without the server's token.
    pub async fn maintenance(
        &self,
        app: &AppName,
        window: Option<(Duration, &str)>,
    ) -> Result<MonitorInfo> {
        let url = app_endpoint(&self.base, app, &["maintenance"])?;
        let request = match window {
            Some((duration, reason)) => self
                .http
                .request(reqwest::Method::POST, url.clone())
                .json(&maintenance_body(duration, reason)),
            None => self.http.request(reqwest::Method::DELETE, url.clone()),
        };
        let (status, body) = self.http.send(request, &url).await?;
        if status == 200 {
            parse(&url, &body)
        } else {
            Err(error_for_answer(status, &body, &url, Some(app)))
        }
    }

    /// Sends a test message through the channel `name` (a `[[channel]]` of the server's config,
    /// or `email`) and returns what its receiver answered:
    /// `POST /api/v1/channels/{name}/test`.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] with status 404 for an unknown channel and 502 when the receiver
    /// refused the message or could not be reached (the server's message says which);
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Protocol`].
    pub async fn test_channel(&self, name: &str) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Delivered {
            answer: String,
        }
        let url = api_endpoint(&self.base, "channels", &[name, "test"])?;
        let request = self.http.request(reqwest::Method::POST, url.clone());
        let (status, body) = self.http.send(request, &url).await?;
        if status == 200 {
            Ok(parse::<Delivered>(&url, &body)?.answer)
        } else {
            Err(error_for_answer(status, &body, &url, None))
        }
    }
}

/// The error for a non-success answer: the server's JSON error when it sent one, else
/// [`Error::Protocol`].
pub(crate) fn error_for_answer(
    status: u16,
    body: &[u8],
    url: &Url,
    app: Option<&AppName>,
) -> Error {
    error_for(status, body, url, app).unwrap_or_else(|| unexpected(status, body, url))
}

/// What [`encode_segment`] percent-encodes: everything but ASCII letters and digits, the
/// RFC 3986 unreserved marks `-._~`, and `=`. So a segment means the same in a URL, in a mail
/// and on a shell line (no space, quote, `;`, `&`, `?`, `#`, `/`, `:` or `@` is left as it is).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'=');

/// `text` percent-encoded as one URL path segment: the one encoding of app names in URLs, used
/// by this client and by the server (in the stop instructions of its mail).
///
/// # Examples
///
/// ```
/// use healthchecker_client::api::encode_segment;
///
/// assert_eq!(encode_segment("my app/1"), "my%20app%2F1");
/// assert_eq!(encode_segment("a:b@c"), "a%3Ab%40c");
/// ```
#[must_use]
pub fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// `{server}/api/v1/monitors/{tail...}`, each part one percent-encoded path segment.
pub(crate) fn endpoint(base: &Url, tail: &[&str]) -> Result<Url> {
    api_endpoint(base, "monitors", tail)
}

/// `{base}/api/v1/{collection}/{tail...}`, each part of `tail` percent-encoded as one segment.
fn api_endpoint(base: &Url, collection: &str, tail: &[&str]) -> Result<Url> {
    if base.cannot_be_a_base() {
        return Err(Error::invalid("server_url", base.as_str(), BASE_URL));
    }
    let mut path = base.path().trim_end_matches('/').to_owned();
    path.push_str("/api/v1/");
    path.push_str(collection);
    for part in tail {
        path.push('/');
        path.push_str(&encode_segment(part));
    }
    let mut url = base.clone();
    url.set_path(&path);
    Ok(url)
}

/// `{server}/api/v1/monitors/{app}/{tail...}`.
pub(crate) fn app_endpoint(base: &Url, app: &AppName, tail: &[&str]) -> Result<Url> {
    let mut parts = Vec::with_capacity(tail.len() + 1);
    parts.push(app.as_str());
    parts.extend_from_slice(tail);
    endpoint(base, &parts)
}

/// The HTTP client of one handle or [`ApiClient`]: straight to the server (no proxy: it is on the LAN), no
/// redirects.
pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("healthchecker-client/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|source| Error::Unreachable {
            url: "(no request yet)".to_owned(),
            source: Box::new(source),
        })
}

/// The token from the environment variable `variable` (`HEALTHCHECKER_TOKEN`,
/// `HEALTHCHECKER_READ_TOKEN`), when it is set and not blank.
pub(crate) fn token_from_env(variable: &'static str) -> Result<Option<HeaderValue>> {
    match std::env::var(variable) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(bearer(variable, &text)?)),
        _ => Ok(None),
    }
}

/// Maps an error answer with the server's JSON error body to an [`Error`]; `None` when the body
/// is not the server's error format (then the answer is not understood).
pub(crate) fn error_for(
    status: u16,
    body: &[u8],
    url: &Url,
    app: Option<&AppName>,
) -> Option<Error> {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    match (status, parsed) {
        (401 | 403, parsed) => Some(Error::Unauthorized {
            message: parsed
                .map(|p| p.error.message)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("HTTP {status} from {url}")),
        }),
        (404, Some(_)) if app.is_some() && !is_list(url) => Some(Error::NotMonitored {
            app: app.map(ToString::to_string).unwrap_or_default(),
        }),
        (400..=599, Some(parsed)) => Some(Error::Rejected {
            status,
            code: parsed.error.code,
            field: parsed.error.field,
            message: parsed.error.message,
        }),
        _ => None,
    }
}

fn is_list(url: &Url) -> bool {
    url.path()
        .trim_end_matches('/')
        .ends_with("/api/v1/monitors")
}

pub(crate) fn unexpected(status: u16, body: &[u8], url: &Url) -> Error {
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(200).collect();
    let detail = if shown.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status} with body {shown:?}")
    };
    Error::Protocol {
        url: url.to_string(),
        detail,
    }
}

pub(crate) fn parse<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|error| Error::Protocol {
        url: url.to_string(),
        detail: format!("a body that does not parse: {error}"),
    })
}

pub(crate) const BASE_URL: &str = "an http:// or https:// base URL with a host, without credentials, query \
                        or fragment, e.g. http://192.168.1.20:9090";

/// Checks a base URL (`field` names it in the error): http or https, a host, no credentials,
/// query or fragment, at most 2048 bytes.
pub(crate) fn parse_base_url(field: &'static str, text: &str) -> Result<Url> {
    let bad = || Error::invalid(field, text, BASE_URL);
    let trimmed = text.trim();
    if trimmed.len() > URL_MAX || trimmed.chars().any(char::is_control) {
        return Err(bad());
    }
    let url = Url::parse(trimmed).map_err(|_| bad())?;
    let acceptable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|host| !host.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        // A bare `?` or `#` parses to an empty query or fragment; refuse those too.
        && !trimmed.contains(['?', '#']);
    if acceptable { Ok(url) } else { Err(bad()) }
}

/// What an app URL may be besides an http(s) base URL.
const TARGET_URL: &str = "an http:// or https:// base URL with a host, without credentials, query \
                          or fragment, e.g. http://192.168.1.20:9090; or tcp://host:port, \
                          tls://host:port, icmp://host";

/// The app URL to send: an http(s) base URL checked by [`parse_base_url`], or `tcp://host:port`,
/// `tls://host:port` or `icmp://host` (the server checks those fully); then as the user wrote it
/// (trimmed) rather than normalized (`http://a:1` would become `http://a:1/`), since the server
/// shows it back and appends the path to it.
pub(crate) fn app_url_text(text: &str) -> Result<String> {
    let trimmed = text.trim();
    let bad = || Error::invalid("app_url", text, TARGET_URL);
    match Url::parse(trimmed).map(|url| url.scheme().to_owned()) {
        Ok(scheme) if matches!(scheme.as_str(), "tcp" | "tls" | "icmp") => {
            let url = Url::parse(trimmed).map_err(|_| bad())?;
            let port_ok = match scheme.as_str() {
                "icmp" => url.port().is_none(),
                _ => url.port().is_some_and(|port| port > 0),
            };
            let ok = trimmed.len() <= URL_MAX
                && !trimmed.chars().any(char::is_control)
                && url.host_str().is_some_and(|host| !host.is_empty())
                && url.username().is_empty()
                && url.password().is_none()
                && matches!(url.path(), "" | "/")
                && !trimmed.contains(['?', '#'])
                && port_ok;
            if ok {
                Ok(trimmed.to_owned())
            } else {
                Err(bad())
            }
        }
        _ => {
            parse_base_url("app_url", text).map_err(|_| bad())?;
            Ok(trimmed.to_owned())
        }
    }
}

/// `Bearer <token>` as a sensitive header value.
pub(crate) fn bearer(field: &'static str, token: &str) -> Result<HeaderValue> {
    let expected = "a non-empty token of visible ASCII characters";
    let token = token.trim();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        // Never quote a token: it is a secret.
        return Err(Error::invalid(field, "(hidden)", expected));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::invalid(field, "(hidden)", expected))?;
    value.set_sensitive(true);
    Ok(value)
}
