//! The HTTP API: JSON under `/api/v1`, the server's own `GET /health`, and one error type.
//!
//! [`router`] builds the whole [`Router`] from an [`AppState`], so tests drive it with
//! `tower::ServiceExt::oneshot` and no socket. Every error leaves through [`ApiError`], which maps
//! to a status code and the JSON body `{"error": {"code", "message", "field"}}` in one place;
//! internal details never reach a response (they go to the log).
//!
//! Input is validated before anything changes: a request that is refused changes nothing.
//!
//! The ping routes of push monitors (`/ping/<key>`, `/start`, `/fail`, `/<exit status>`, `/log`;
//! GET, HEAD and POST) need no token: the key is the credential. A ping is answered `200 OK` only
//! once it is durable; an unknown key is 404. Their bodies may be up to
//! [`crate::push::limits::BODY_READ_MAX`]; the log keeps the first
//! [`crate::push::limits::BODY_MAX`] bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq as _;

use crate::config::channel::EMAIL;
use crate::health::{State as HealthState, Transition};
use crate::identity::Identity;
use crate::monitors::{MonitorView, Monitors, MonitorsError, Upserted};
use crate::notify::{Notifier, TestError};
use crate::push::{self, PingKey, PingKind};
use crate::registry::{self, AppName, BodyError, FieldError, Registration};
use crate::store::{LoggedCheck, Store};
use crate::throttle::RegistrationLimiter;
use crate::{Config, VERSION};

/// Media type of health answers (IETF draft "Health Check Response Format for HTTP APIs").
pub const HEALTH_JSON: &str = "application/health+json";

/// Largest request body accepted; a registration is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// How long one request may take, from its head to its answer (its body included): a client
/// that sends its body too slowly gets 408. A registration takes milliseconds.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Transitions shown with one monitor.
pub const TRANSITIONS_SHOWN: usize = 20;

/// What every handler can reach; built with [`AppState::new`].
#[derive(Debug, Clone)]
pub struct AppState {
    /// The server's configuration.
    pub config: Arc<Config>,
    /// When the server started, for its uptime.
    pub started: Instant,
    /// `serviceId` in `GET /health` ([`Identity::service_id`]).
    pub service_id: String,
    /// The live monitors.
    pub monitors: Monitors,
    /// The database, for the logs.
    pub store: Store,
    /// Registrations per client address per minute; `None` without a limit.
    pub limiter: Option<Arc<RegistrationLimiter>>,
    /// Delivery, for testing channels; `None` in tests that do not deliver.
    pub notifier: Option<Notifier>,
}

impl AppState {
    /// The state of the server `identity` with `config`, its live `monitors` and its `store`.
    pub fn new(
        config: Arc<Config>,
        identity: &Identity,
        monitors: Monitors,
        store: Store,
    ) -> AppState {
        AppState {
            limiter: RegistrationLimiter::new(config.max_registrations_per_minute).map(Arc::new),
            config,
            started: Instant::now(),
            service_id: identity.service_id.clone(),
            monitors,
            store,
            notifier: None,
        }
    }

    /// This state with `notifier` for `POST /api/v1/channels/{name}/test`.
    #[must_use]
    pub fn with_notifier(mut self, notifier: Notifier) -> AppState {
        self.notifier = Some(notifier);
        self
    }
}

/// The client's address, when the server was started with connection info (tests without a
/// socket have none, and share one window).
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
        Ok(ClientAddr(addr))
    }
}

/// The JSON API, `GET /health` and the dashboard.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] with `more` routes merged in (the server adds the original's, from
/// [`crate::legacy`], which is built on this module): they share the fallback, the body limit and
/// the request timeout.
pub fn router_with(state: AppState, more: Router<AppState>) -> Router {
    let changes = Router::new()
        .route(
            "/api/v1/monitors/{app}",
            axum::routing::put(register)
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    limit_registrations,
                ))
                .delete(unregister),
        )
        .route("/api/v1/monitors/{app}/pause", post(pause))
        .route("/api/v1/monitors/{app}/resume", post(resume))
        .route("/api/v1/channels/{name}/test", post(test_channel))
        .route(
            "/api/v1/monitors/{app}/maintenance",
            post(start_maintenance).delete(end_maintenance),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let pings = Router::new()
        .route("/ping/{key}", get(ping_success).post(ping_success))
        .route("/ping/{key}/{kind}", get(ping).post(ping))
        .layer(DefaultBodyLimit::max(push::limits::BODY_READ_MAX));
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(own_health))
        .route("/api/v1/monitors", get(list))
        .route("/api/v1/monitors/{app}", get(one))
        .route("/api/v1/monitors/{app}/log", get(log))
        .route("/api/v1/channels", get(channels))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(changes)
        .merge(pings)
        .merge(more)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async { ApiError::Timeout },
                ))
                .timeout(REQUEST_TIMEOUT),
        )
        .with_state(state)
}

/// `GET /health`: the server's own health, in `application/health+json`.
async fn own_health(State(state): State<AppState>) -> Response {
    let counts = state.monitors.state_counts();
    let (storm, failing, active) = state.monitors.storm();
    let count = |s: HealthState| counts.get(&s).copied().unwrap_or(0);
    let body = json!({
        "status": "pass",
        "version": VERSION,
        "serviceId": state.service_id,
        "description": "healthchecker server",
        "checks": {
            "uptime": [{
                "componentType": "system",
                "observedValue": state.started.elapsed().as_secs(),
                "observedUnit": "s",
                "status": "pass",
            }],
            "monitors:failing": [{
                "componentType": "system",
                "observedValue": failing,
                "observedUnit": "monitors",
                "status": if storm.started.is_some() { "warn" } else { "pass" },
                "output": match storm.started {
                    Some(since) => format!("storm since {}: {failing} of {active} active monitors fail; per-app alerts are held", since.to_rfc3339()),
                    None => format!("{failing} of {active} active monitors fail"),
                },
            }],
            "monitors:count": HealthState::ALL.iter().map(|&s| json!({
                "componentId": s.as_str(),
                "observedValue": count(s),
                "status": "pass",
            })).collect::<Vec<_>>(),
        },
    });
    ([(header::CONTENT_TYPE, HEALTH_JSON)], Json(body)).into_response()
}

/// The web dashboard: one self-contained page that reads the JSON API.
pub const DASHBOARD: &str = include_str!("dashboard.html");

/// `GET /`: the dashboard.
async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(DASHBOARD)
}

/// The OpenAPI 3 description of this API; a test keeps it in step with the routes and types.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; the API lives under /api/v1".to_owned())
}

/// Rejects changes without the right bearer token, when the server has one.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.config.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        let matches: bool = given.as_bytes().ct_eq(token.expose().as_bytes()).into();
        if !matches {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Refuses registrations past `max_registrations_per_minute` from one client address (a layer on
/// `PUT` only; see [`crate::throttle`]).
pub(crate) async fn limit_registrations(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &state.limiter
        && let Err(retry_after) = limiter.admit(client)
    {
        tracing::warn!(%client, "registration refused: more than max_registrations_per_minute");
        return ApiError::RateLimited(retry_after).into_response();
    }
    next.run(request).await
}

/// `/ping/{key}` (GET, HEAD, POST): the job succeeded.
async fn ping_success(
    state: State<AppState>,
    Path(key): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ping_with(state, &key, "", body).await
}

/// `/ping/{key}/{kind}`: `start`, `fail`, `log`, or an exit status from 0 to 255.
async fn ping(
    state: State<AppState>,
    Path((key, kind)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ping_with(state, &key, &kind, body).await
}

async fn ping_with(
    State(state): State<AppState>,
    key: &str,
    kind: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let unknown = || {
        ApiError::NotFound(
            "no push monitor has this ping key (or no such ping: use /ping/<key>, /start, /fail, \
             /log or /<exit status 0-255>)"
                .to_owned(),
        )
    };
    let (Some(key), Some(kind)) = (PingKey::parse(key), PingKind::from_path(kind)) else {
        return Err(unknown());
    };
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::Unreadable(rejection)
        }
    })?;
    match state
        .monitors
        .ping(&key, kind, push::kept_body(&body))
        .await?
    {
        Some(_) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "OK\n",
        )
            .into_response()),
        None => Err(unknown()),
    }
}

/// Where the jobs of this request's client reach the server: `public_url` when set, else the
/// scheme and the `Host` the request was sent to.
fn ping_base(config: &Config, headers: &HeaderMap) -> Option<String> {
    if let Some(url) = &config.public_url {
        return Some(url.as_str().trim_end_matches('/').to_owned());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    // A host header is a host and a port: nothing that could make the URL point elsewhere.
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    valid.then(|| format!("http://{host}"))
}

/// `view` with its `ping_url` filled in, for a push monitor.
fn with_ping_url(mut view: MonitorView, base: Option<&str>) -> MonitorView {
    if let Some(push) = view.push.as_mut() {
        push.ping_url = match (base, &push.key) {
            (Some(base), Some(key)) => Some(format!("{base}/ping/{}", key.expose())),
            _ => None,
        };
    }
    view
}

fn app_name(raw: &str) -> Result<AppName, ApiError> {
    AppName::parse(raw).map_err(ApiError::Invalid)
}

/// `PUT /api/v1/monitors/{app}`: register or update; 201 created, 200 updated or unchanged.
async fn register(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = app_name(&app)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::Unreadable(rejection)
        }
    })?;
    let spec = Registration::accept(&body, &state.config)?;
    let (upserted, view) = state.monitors.upsert(name, spec).await?;
    let view = with_ping_url(view, ping_base(&state.config, &headers).as_deref());
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated | Upserted::Unchanged => StatusCode::OK,
    };
    Ok((status, Json(view)).into_response())
}

/// `DELETE /api/v1/monitors/{app}`: 204, or 404 when unknown.
async fn unregister(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = app_name(&app)?;
    if state.monitors.remove(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::unknown_app(&name))
    }
}

async fn pause(state: State<AppState>, app: Path<String>) -> Result<Json<MonitorView>, ApiError> {
    set_paused(state, app, true).await
}

async fn resume(state: State<AppState>, app: Path<String>) -> Result<Json<MonitorView>, ApiError> {
    set_paused(state, app, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    Path(app): Path<String>,
    paused: bool,
) -> Result<Json<MonitorView>, ApiError> {
    let name = app_name(&app)?;
    state
        .monitors
        .set_paused(&name, paused)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unknown_app(&name))
}

#[derive(Serialize)]
struct MonitorList {
    monitors: Vec<MonitorView>,
}

/// `GET /api/v1/monitors`: every monitor, sorted by name.
async fn list(State(state): State<AppState>, headers: HeaderMap) -> Json<MonitorList> {
    let base = ping_base(&state.config, &headers);
    Json(MonitorList {
        monitors: state
            .monitors
            .list()
            .into_iter()
            .map(|view| with_ping_url(view, base.as_deref()))
            .collect(),
    })
}

#[derive(Serialize)]
struct MonitorDetail {
    #[serde(flatten)]
    monitor: MonitorView,
    transitions: Vec<Transition>,
}

/// `GET /api/v1/monitors/{app}`: one monitor with its recent transitions.
async fn one(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Json<MonitorDetail>, ApiError> {
    let name = app_name(&app)?;
    let monitor = state
        .monitors
        .view(&name)
        .ok_or_else(|| ApiError::unknown_app(&name))?;
    let monitor = with_ping_url(monitor, ping_base(&state.config, &headers).as_deref());
    state.store.visible().await.map_err(ApiError::internal)?;
    let transitions = state
        .store
        .transitions(&name, TRANSITIONS_SHOWN)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(MonitorDetail {
        monitor,
        transitions,
    }))
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<String>,
    before: Option<String>,
}

#[derive(Serialize)]
struct LogPage {
    app: AppName,
    checks: Vec<LoggedCheck>,
    /// `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<u64>,
}

/// `GET /api/v1/monitors/{app}/log?limit=N`: the health-check log, newest first.
async fn log(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let name = app_name(&app)?;
    let limit = registry::log_limit(query.limit.as_deref()).map_err(ApiError::Invalid)?;
    let before = registry::log_before(query.before.as_deref()).map_err(ApiError::Invalid)?;
    if state.monitors.view(&name).is_none() {
        return Err(ApiError::unknown_app(&name));
    }
    // What was checked a moment ago may still be in the writer's batch.
    state.store.visible().await.map_err(ApiError::internal)?;
    let page = state
        .store
        .log_page(&name, before, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(LogPage {
        app: name,
        checks: page.checks,
        next_before: page.next_before,
    }))
}

/// A channel as `GET /api/v1/channels` shows it: never a secret.
#[derive(Serialize)]
struct ChannelView {
    name: String,
    kind: &'static str,
    /// Where it sends, credentials left out.
    target: String,
    events: Vec<crate::config::channel::EventKind>,
    #[serde(flatten)]
    status: crate::store::ChannelStatus,
}

#[derive(Serialize)]
struct ChannelList {
    channels: Vec<ChannelView>,
}

async fn channels(State(state): State<AppState>) -> Result<Json<ChannelList>, ApiError> {
    let mut channels = Vec::with_capacity(state.config.channels.len() + 1);
    channels.push(ChannelView {
        name: EMAIL.to_owned(),
        kind: "email",
        target: "each monitor's email addresses".to_owned(),
        events: crate::config::channel::EventKind::ALL.to_vec(),
        status: state
            .store
            .channel_status(EMAIL)
            .await
            .map_err(ApiError::internal)?,
    });
    for channel in &state.config.channels {
        channels.push(ChannelView {
            name: channel.name.clone(),
            kind: channel.kind.name(),
            target: channel.target(),
            events: channel.events.clone(),
            status: state
                .store
                .channel_status(&channel.name)
                .await
                .map_err(ApiError::internal)?,
        });
    }
    Ok(Json(ChannelList { channels }))
}

async fn start_maintenance(
    State(state): State<AppState>,
    Path(app): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MonitorView>, ApiError> {
    let name = app_name(&app)?;
    let body = body.map_err(ApiError::Unreadable)?;
    let window = crate::registry::MaintenanceRequest::accept(&body)?;
    state
        .monitors
        .set_maintenance(&name, Some(window))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unknown_app(&name))
}

async fn end_maintenance(
    State(state): State<AppState>,
    Path(app): Path<String>,
) -> Result<Json<MonitorView>, ApiError> {
    let name = app_name(&app)?;
    state
        .monitors
        .set_maintenance(&name, None)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unknown_app(&name))
}

async fn test_channel(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(notifier) = &state.notifier else {
        return Err(ApiError::NotFound(format!("no channel named {name:?}")));
    };
    match notifier.test(&name).await {
        Ok(answer) => Ok(Json(
            json!({"channel": name, "delivered": true, "answer": answer}),
        )),
        Err(error @ TestError::Unknown { .. }) => Err(ApiError::NotFound(error.to_string())),
        Err(error) => Err(ApiError::ChannelFailed(error.to_string())),
    }
}

/// Every way a request can fail, mapped to its status code in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    BadJson(#[source] serde_json::Error),
    /// 400: the body could not be read (the client stopped sending, or sent it too slowly).
    #[error("cannot read the request body: {}", .0.body_text())]
    Unreadable(#[source] BytesRejection),
    /// 401: a change without the right token.
    #[error(
        "this server requires `Authorization: Bearer <token>` for changes; set HEALTHCHECKER_TOKEN"
    )]
    Unauthorized,
    /// 404: no such route or app.
    #[error("{0}")]
    NotFound(String),
    /// 408: the request took longer than [`REQUEST_TIMEOUT`] (a body sent too slowly).
    #[error("the request took longer than {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// 413: the body is larger than [`MAX_BODY`].
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// 422: a field out of range or malformed.
    #[error("{0}")]
    Invalid(FieldError),
    /// 429: the server monitors as many apps as it may ([`MonitorsError::Full`]).
    #[error(transparent)]
    Full(MonitorsError),
    /// 429: too many registrations from one address; retry after this many seconds.
    #[error(
        "too many registrations from this address (max_registrations_per_minute); retry in {0} s"
    )]
    RateLimited(u64),
    /// 502: a channel's receiver refused a test message, or could not be reached.
    #[error("{0}")]
    ChannelFailed(String),
    /// 500: our fault; the details are in the log, not in the answer.
    #[error("internal error; the server log has the details")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    fn unknown_app(name: &AppName) -> ApiError {
        ApiError::NotFound(format!("no monitor named {:?}", name.as_str()))
    }

    /// 500 for `error`, which goes to the log (and stays the answer's source), not to the client.
    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        tracing::error!("request failed: {error}");
        ApiError::Internal(Box::new(error))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadJson(_) | ApiError::Unreadable(_) => {
                (StatusCode::BAD_REQUEST, "malformed_json")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Full(_) => (StatusCode::TOO_MANY_REQUESTS, "monitor_limit"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::ChannelFailed(_) => (StatusCode::BAD_GATEWAY, "channel_failed"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Invalid(field) => ApiError::Invalid(field),
            BodyError::Malformed(json) => ApiError::BadJson(json),
        }
    }
}

impl From<MonitorsError> for ApiError {
    fn from(error: MonitorsError) -> Self {
        match error {
            full @ MonitorsError::Full(_) => ApiError::Full(full),
            other => ApiError::internal(other),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            ApiError::RateLimited(seconds) => Some(*seconds),
            _ => None,
        };
        let field = match &self {
            ApiError::Invalid(error) => Some(error.field.as_str()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn ping_urls_use_public_url_else_the_host_the_request_was_sent_to() {
        let mut headers = HeaderMap::new();
        let config = Config::default();
        assert_eq!(ping_base(&config, &headers), None);
        headers.insert(header::HOST, "hc.lan:8080".parse().expect("header"));
        assert_eq!(
            ping_base(&config, &headers).as_deref(),
            Some("http://hc.lan:8080")
        );
        headers.insert(header::HOST, "evil/x?".parse().expect("header"));
        assert_eq!(ping_base(&config, &headers), None, "not a host");
        let config = Config {
            public_url: Some("https://hc.example.com/base/".parse().expect("url")),
            ..Config::default()
        };
        assert_eq!(
            ping_base(&config, &headers).as_deref(),
            Some("https://hc.example.com/base")
        );
    }

    #[test]
    fn errors_keep_their_sources() {
        let malformed = ApiError::from(Registration::from_json(b"{").expect_err("cut"));
        assert!(
            malformed
                .source()
                .is_some_and(|source| source.is::<serde_json::Error>()),
            "{malformed:?}"
        );
        assert!(matches!(
            ApiError::from(MonitorsError::Full(3)),
            ApiError::Full(MonitorsError::Full(3))
        ));
        let internal = ApiError::internal(std::io::Error::other("disk full"));
        assert_eq!(
            internal.to_string(),
            "internal error; the server log has the details"
        );
        assert!(
            internal
                .source()
                .is_some_and(|source| source.to_string() == "disk full")
        );
    }
}
