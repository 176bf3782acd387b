//! The HTTP API: JSON under `/api/v1`, the server's own `GET /health`, and one error type.
//!
//! [`router`] builds the whole [`Router`] from an [`AppState`], so tests drive it with
//! `tower::ServiceExt::oneshot` and no socket. Every error leaves through [`ApiError`], which maps
//! to a status code and the JSON body `{"error": {"code", "message", "field"}}` in one place;
//! internal details never reach a response (they go to the log).
//!
//! Input is validated before anything changes: a request that is refused changes nothing.
//!
//! # Who may do what
//!
//! Every route is one of three kinds, and [`router_with`] puts the guard of each kind on it in
//! one place, for this module's routes and the [`Routes`] of other modules alike: **reads**
//! (monitors, logs, uptime, incidents, events, badges, channels; any route that shows what the
//! server knows) need `read_token` when it is set ([`require_read_token`]; `token` is taken too);
//! **changes** need `token` when it is set ([`require_token`]); **open** routes are the server's
//! own `GET /health`, the dashboard's page and its assets (which hold no data: the page asks for
//! the token) and the OpenAPI document. A route added to `reads` is guarded by being there.
//! `/metrics` has a guard of its own (`may_read_metrics`): `metrics_token` when it is set (for
//! a Prometheus that may read nothing else), else the one of reads.
//!
//! With a `read_token`, what a change or `/health` answers holds nothing a read would guard
//! unless the caller may read: the monitor in the answer of `PUT` shows only the registration that
//! was sent (state `UNKNOWN`, no counters, no checks, no maintenance, not flapping), the one of
//! `pause` and `resume` not even that (its name, whether it is paused and its timing; an empty
//! `url` and `path`, no recipients or channels), the one of the maintenance routes that and the
//! maintenance it set, and `/health` leaves out the count of monitors per state and of failing
//! ones (whether a storm is on stays). Otherwise whoever may register could read each check's
//! result in the answer to registering again, or in the counts (a port scanner, one registration
//! at a time), and anyone's URL and recipients by pausing it.
//!
//! The ping routes of push monitors (`/ping/<key>`, `/start`, `/fail`, `/<exit status>`, `/log`;
//! GET, HEAD and POST) need no token (neither `token` nor `read_token`): the key is the credential, and the
//! answer says nothing but whether it was taken. A ping is answered `200 OK` only
//! once it is durable; an unknown key is 404. Their bodies may be up to
//! [`crate::push::limits::BODY_READ_MAX`]; the log keeps the first
//! [`crate::push::limits::BODY_MAX`] bytes.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::badge::{self, Color};
use crate::config::Secret;
use crate::config::channel::EMAIL;
use crate::events::Event;
use crate::health::{State as HealthState, Transition};
use crate::history::{self, Bucket, Incident, Recent, Summary};
use crate::identity::Identity;
use crate::monitors::{MonitorView, Monitors, MonitorsError, Upserted};
use crate::notify::{Notifier, TestError};
use crate::probe::Targets;
use crate::push::{self, PingKey, PingKind};
use crate::registry::{self, AppName, BodyError, FieldError, MonitorSpec, Registration};
use crate::store::{LoggedCheck, Store};
use crate::throttle::{ChannelTests, ClientMonitors, RegistrationLimiter};
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

/// What every handler can reach, shared by the requests ([`SharedState`]); built with
/// [`AppState::new`].
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
    /// `allowed_targets`, with the resolver the checks use, for checking registrations.
    pub targets: Targets,
    /// Monitors created per client address (`max_monitors_per_client`); `None` without a limit.
    pub clients: Option<Arc<ClientMonitors>>,
    /// When each channel was last sent a test message.
    pub channel_tests: Arc<ChannelTests>,
    /// Fires when the server shuts down: long-lived answers (the event stream) end then.
    pub stop: CancellationToken,
    /// The servers sharing the database, when there are several ([`crate::cluster`]).
    pub cluster: Option<crate::cluster::Cluster>,
}

/// The [`AppState`] each request sees: one reference count per request rather than a copy of
/// every field (a ping is answered some 10,000 times a second).
pub type SharedState = Arc<AppState>;

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
            targets: Targets::system(config.allowed_targets.clone()),
            clients: ClientMonitors::new(config.max_monitors_per_client).map(Arc::new),
            channel_tests: Arc::default(),
            config,
            started: Instant::now(),
            service_id: identity.service_id.clone(),
            monitors,
            store,
            notifier: None,
            stop: CancellationToken::new(),
            cluster: None,
        }
    }

    /// This state showing `cluster` in `GET /health`.
    #[must_use]
    pub fn with_cluster(mut self, cluster: Option<crate::cluster::Cluster>) -> AppState {
        self.cluster = cluster;
        self
    }

    /// This state with `stop`, which ends the event streams when it fires.
    #[must_use]
    pub fn with_stop(mut self, stop: CancellationToken) -> AppState {
        self.stop = stop;
        self
    }

    /// This state with `notifier` for `POST /api/v1/channels/{name}/test`.
    #[must_use]
    pub fn with_notifier(mut self, notifier: Notifier) -> AppState {
        self.notifier = Some(notifier);
        self
    }

    /// This state checking registrations against `targets` (a server hands over
    /// [`Prober::targets`](crate::probe::Prober::targets), so registrations and checks resolve
    /// names alike) instead of `allowed_targets` with the system's resolver.
    #[must_use]
    pub fn with_targets(mut self, targets: Targets) -> AppState {
        self.targets = targets;
        self
    }

    /// What a registration from `client` may still be refused for once its body is valid: a
    /// target outside `allowed_targets`, then (for a new monitor) `max_monitors_per_client`.
    /// The reservation, when there is one, is to be kept once the monitor is created.
    pub(crate) async fn admit(
        &self,
        client: IpAddr,
        name: &AppName,
        spec: &MonitorSpec,
    ) -> Result<Option<crate::throttle::MonitorReservation<'_>>, ApiError> {
        self.targets.admit(spec).await.map_err(ApiError::Invalid)?;
        let Some(clients) = &self.clients else {
            return Ok(None);
        };
        if self.monitors.view(name).is_some() {
            return Ok(None); // an update: it creates nothing
        }
        match clients.reserve(client, name.as_str()) {
            Ok(reservation) => Ok(Some(reservation)),
            Err(limit) => {
                tracing::warn!(%client, app = %name, "registration refused: more than max_monitors_per_client");
                Err(ApiError::ClientFull(limit))
            }
        }
    }

    /// `name` was removed: it no longer counts against the client that created it.
    pub(crate) fn removed(&self, name: &AppName) {
        if let Some(clients) = &self.clients {
            clients.removed(name.as_str());
        }
    }
}

/// Routes of another module served with the API's ([`router_with`]), by kind, so that the
/// guards are put on them here: see [Who may do what](self#who-may-do-what).
#[derive(Debug, Default)]
pub struct Routes {
    /// Routes that show what the server knows: behind `read_token`.
    pub reads: Router<SharedState>,
    /// Routes that change something: behind `token`.
    pub changes: Router<SharedState>,
    /// Routes that stay open (answers that hold nothing, such as a 404 that says a feature is
    /// off).
    pub open: Router<SharedState>,
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

/// The one parameter in a route's path (`{app}`, `{name}`), refused in the API's error format
/// (422 naming it) when it is not UTF-8 once percent-decoded, instead of axum's plain-text 400.
pub(crate) struct Segment(pub(crate) String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Segment(value)),
            Err(rejection) => {
                let field = match &rejection {
                    PathRejection::FailedToDeserializePathParams(error) => match error.kind() {
                        ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                        _ => "path".to_owned(),
                    },
                    _ => "path".to_owned(),
                };
                Err(ApiError::Invalid(FieldError::new(
                    &field,
                    "(not UTF-8)",
                    "text in UTF-8, percent-encoded",
                )))
            }
        }
    }
}

/// The JSON API, `GET /health` and the dashboard.
pub fn router(state: AppState) -> Router {
    router_with(state, Routes::default())
}

/// [`router`] with `more` routes merged in (the server adds the original's, from
/// [`crate::legacy`], which is built on this module): they get the guards of their kind and
/// share the fallback, the body limit and the request timeout.
pub fn router_with(state: AppState, more: Routes) -> Router {
    let state: SharedState = Arc::new(state);
    let reads = Router::new()
        .route("/api/v1/monitors", get(list))
        .route("/api/v1/monitors/{app}", get(one))
        .route("/api/v1/monitors/{app}/log", get(log))
        .route("/api/v1/monitors/{app}/uptime", get(uptime))
        .route("/api/v1/monitors/{app}/incidents", get(incidents))
        .route("/api/v1/uptime", get(uptimes))
        .route("/api/v1/events", get(events))
        .route("/badge/{file}", get(badge))
        .route("/api/v1/channels", get(channels))
        .merge(more.reads)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_read_token,
        ));
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
        .merge(more.changes)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let pings = Router::new()
        .route("/ping/{key}", get(ping_success).post(ping_success))
        .route("/ping/{key}/{kind}", get(ping).post(ping))
        .layer(DefaultBodyLimit::max(push::limits::BODY_READ_MAX));
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(own_health))
        .route("/assets/{file}", get(asset))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(reads)
        .merge(changes)
        .merge(pings)
        .merge(more.open)
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
async fn own_health(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let counts = state.monitors.state_counts();
    let (storm, failing, active) = state.monitors.storm();
    let count = |s: HealthState| counts.get(&s).copied().unwrap_or(0);
    let mut body = json!({
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
    if let Some(cluster) = &state.cluster {
        let servers: Vec<_> = cluster
            .servers()
            .into_iter()
            .map(|server| {
                json!({
                    "self": server.id == cluster.id(),
                    "id": server.id,
                                        "leases": server.leases,
                    "url": server.url,
                    "started_at": server.started_at,
                    "heartbeat_at": server.heartbeat_at,
                })
            })
            .collect();
        body["cluster"] = json!({ "server": cluster.id(), "servers": servers });
    }
    if !may_read(&state.config, &headers)
        && let Some(checks) = body["checks"].as_object_mut()
    {
        // The counts per state and of failing monitors are a read (see the module
        // documentation); whether a storm is on stays open, like the server's own health.
        checks.remove("monitors:count");
        checks.insert(
            "monitors:failing".to_owned(),
            json!([{
                "componentType": "system",
                "status": if storm.started.is_some() { "warn" } else { "pass" },
            }]),
        );
    }
    ([(header::CONTENT_TYPE, HEALTH_JSON)], Json(body)).into_response()
}

/// `GET /`: the dashboard ([`crate::dashboard`]).
async fn dashboard() -> Response {
    asset(Path("index.html".to_owned())).await
}

/// `GET /assets/{file}`: the dashboard's scripts, styles and icons, embedded in the binary.
async fn asset(Path(file): Path<String>) -> Response {
    match crate::dashboard::asset(&file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => ApiError::NotFound(format!("no dashboard asset named {file:?}")).into_response(),
    }
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

/// The bearer token of a request; empty when it has none.
fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Whether `given` is `secret`, compared in constant time.
fn is(given: &str, secret: &Secret) -> bool {
    given.as_bytes().ct_eq(secret.expose().as_bytes()).into()
}

/// Rejects changes without the right bearer token, when the server has one.
pub async fn require_token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.config.token
        && !is(bearer(&headers), token)
    {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

/// Whether a request with `headers` may read: the server has no `read_token`, or the request
/// carries it, or `token` (whoever may change may read).
fn may_read(config: &Config, headers: &HeaderMap) -> bool {
    let Some(read_token) = &config.read_token else {
        return true;
    };
    let given = bearer(headers);
    is(given, read_token) || config.token.as_ref().is_some_and(|token| is(given, token))
}

/// Rejects reads without the right bearer token, when the server has a `read_token`: that one,
/// or `token` (whoever may change may read).
pub async fn require_read_token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if !may_read(&state.config, &headers) {
        return ApiError::ReadUnauthorized.into_response();
    }
    next.run(request).await
}

/// What the answer to a change echoes of the monitor to a caller who may not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// The registration the caller sent (`PUT`).
    Registration,
    /// Nothing the caller did not name (`pause`, `resume`).
    Name,
    /// Nothing the caller did not name, and the maintenance it set or ended.
    Maintenance,
}

/// `view` as the answer to a change shows it: whole to a caller who may read, else as `echo`
/// says (see the module documentation).
fn shown(view: MonitorView, echo: Echo, config: &Config, headers: &HeaderMap) -> MonitorView {
    if may_read(config, headers) {
        return view;
    }
    let (maintenance_until, maintenance_reason) =
        (view.maintenance_until, view.maintenance_reason.clone());
    let mut observed = MonitorView {
        state: HealthState::Unknown,
        passes: 0,
        fails: 0,
        since: None,
        last_check: None,
        last_transition: None,
        maintenance_until: None,
        maintenance_reason: None,
        flapping: false,
        ..view
    };
    if let Some(push) = observed.push.as_mut() {
        // When the job last reported in is what a read shows; its ping URL the registrant needs.
        push.expected_by = None;
        push.last_ping = None;
        push.last_success = None;
        push.running_since = None;
    }
    let named = |observed| {
        let mut named = MonitorView {
            url: String::new(),
            path: String::new(),
            email: Vec::new(),
            notify: Vec::new(),
            ..observed
        };
        if let Some(push) = named.push.as_mut() {
            push.ping_url = None;
        }
        named
    };
    match echo {
        Echo::Registration => observed,
        Echo::Name => named(observed),
        Echo::Maintenance => MonitorView {
            maintenance_until,
            maintenance_reason,
            ..named(observed)
        },
    }
}

/// Whether a request with `headers` may read `/metrics`: with a `metrics_token`, it carries that
/// one, the `read_token` or the `token`; without, as for every read ([`may_read`]).
fn may_read_metrics(config: &Config, headers: &HeaderMap) -> bool {
    let Some(metrics_token) = &config.metrics_token else {
        return may_read(config, headers);
    };
    let given = bearer(headers);
    [
        Some(metrics_token),
        config.read_token.as_ref(),
        config.token.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|secret| is(given, secret))
}

/// Refuses registrations past `max_registrations_per_minute` from one client address (a layer on
/// `PUT` only; see [`crate::throttle`]).
pub(crate) async fn limit_registrations(
    State(state): State<SharedState>,
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
    state: State<SharedState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ping_with(state, &key, "", &headers, body).await
}

/// `/ping/{key}/{kind}`: `start`, `fail`, `log`, or an exit status from 0 to 255.
async fn ping(
    state: State<SharedState>,
    Path((key, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ping_with(state, &key, &kind, &headers, body).await
}

/// The header of a ping forwarded by another server of the cluster (never forwarded again).
const FORWARDED_BY: &str = "x-healthchecker-forwarded-by";

/// How long the server holding a push monitor gets to answer a forwarded ping.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn ping_with(
    State(state): State<SharedState>,
    key: &str,
    kind: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let unknown = || {
        ApiError::NotFound(
            "no push monitor has this ping key (or no such ping: use /ping/<key>, /start, /fail, \
             /log or /<exit status 0-255>)"
                .to_owned(),
        )
    };
    // As it came: what a server of the cluster that holds the monitor is asked.
    let uri = if kind.is_empty() {
        format!("/ping/{key}")
    } else {
        format!("/ping/{key}/{kind}")
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
    let pinged = match state
        .monitors
        .ping(&key, kind, push::kept_body(&body))
        .await
    {
        Err(MonitorsError::Elsewhere { app, owner }) => {
            return match (&state.cluster, headers.contains_key(FORWARDED_BY)) {
                (Some(cluster), false) => forward(cluster, &owner, &app, uri, body).await,
                _ => Err(MonitorsError::Elsewhere { app, owner }.into()),
            };
        }
        other => other?,
    };
    match pinged {
        Some(_) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "OK\n",
        )
            .into_response()),
        None => Err(unknown()),
    }
}

/// Hands a ping (`uri`, `body`) of `app`, a push monitor that server `owner` of the cluster
/// holds, to that server, and answers what it answered.
async fn forward(
    cluster: &crate::cluster::Cluster,
    owner: &str,
    app: &AppName,
    uri: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let elsewhere = || {
        ApiError::from(MonitorsError::Elsewhere {
            app: app.clone(),
            owner: owner.to_owned(),
        })
    };
    let Some(url) = cluster.url_of(owner) else {
        return Err(elsewhere());
    };
    let answer = cluster
        .client()
        .post(format!("{url}{uri}"))
        .header(FORWARDED_BY, cluster.id())
        .timeout(FORWARD_TIMEOUT)
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(app = %app, server = owner, "cannot forward a ping to the server that holds it: {}", error.without_url());
            return Err(elsewhere());
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("text/plain; charset=utf-8")
        .to_owned();
    let bytes = answer.bytes().await.map_err(|_| elsewhere())?;
    Ok((status, [(header::CONTENT_TYPE, content_type)], bytes).into_response())
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

fn app_name(raw: &str) -> Result<AppName, ApiError> {
    AppName::parse(raw).map_err(ApiError::Invalid)
}

/// `PUT /api/v1/monitors/{app}`: register or update; 201 created, 200 updated or unchanged.
async fn register(
    State(state): State<SharedState>,
    ClientAddr(client): ClientAddr,
    Segment(app): Segment,
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
    state.monitors.admit(&spec).map_err(ApiError::Invalid)?;
    let reservation = state.admit(client, &name, &spec).await?;
    let (upserted, view) = state.monitors.upsert(name, spec).await?;
    if let (Upserted::Created, Some(reservation)) = (upserted, reservation) {
        reservation.created();
    }
    let view = view.with_ping_url(ping_base(&state.config, &headers).as_deref());
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated | Upserted::Unchanged => StatusCode::OK,
    };
    let view = shown(view, Echo::Registration, &state.config, &headers);
    Ok((status, Json(view)).into_response())
}

/// `DELETE /api/v1/monitors/{app}`: 204, or 404 when unknown.
async fn unregister(
    State(state): State<SharedState>,
    Segment(app): Segment,
) -> Result<StatusCode, ApiError> {
    let name = app_name(&app)?;
    if state.monitors.remove(&name).await? {
        state.removed(&name);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::unknown_app(&name))
    }
}

async fn pause(
    state: State<SharedState>,
    app: Segment,
    headers: HeaderMap,
) -> Result<Json<MonitorView>, ApiError> {
    set_paused(state, app, &headers, true).await
}

async fn resume(
    state: State<SharedState>,
    app: Segment,
    headers: HeaderMap,
) -> Result<Json<MonitorView>, ApiError> {
    set_paused(state, app, &headers, false).await
}

async fn set_paused(
    State(state): State<SharedState>,
    Segment(app): Segment,
    headers: &HeaderMap,
    paused: bool,
) -> Result<Json<MonitorView>, ApiError> {
    let name = app_name(&app)?;
    state
        .monitors
        .set_paused(&name, paused)
        .await?
        .map(|view| Json(shown(view, Echo::Name, &state.config, headers)))
        .ok_or_else(|| ApiError::unknown_app(&name))
}

/// `GET /api/v1/monitors`: every monitor, sorted by name.
///
/// Written off the runtime's threads (checks go on meanwhile; at 10,000 monitors it is 7.7 MB),
/// one monitor at a time into one buffer, each monitor's JSON kept until it changes
/// ([`crate::monitors::Monitors::list_json`]). Behind [`require_read_token`]: a caller who gets
/// an answer may read it all.
async fn list(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let base = ping_base(&state.config, &headers);
    let monitors = state.monitors.clone();
    let body = tokio::task::spawn_blocking(move || monitors.list_json(base.as_deref()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Serialize)]
struct MonitorDetail {
    #[serde(flatten)]
    monitor: MonitorView,
    transitions: Vec<Transition>,
}

/// `GET /api/v1/monitors/{app}`: one monitor with its recent transitions.
async fn one(
    State(state): State<SharedState>,
    Segment(app): Segment,
    headers: HeaderMap,
) -> Result<Json<MonitorDetail>, ApiError> {
    let name = app_name(&app)?;
    let monitor = state
        .monitors
        .view(&name)
        .ok_or_else(|| ApiError::unknown_app(&name))?;
    let monitor = monitor.with_ping_url(ping_base(&state.config, &headers).as_deref());
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
    State(state): State<SharedState>,
    Segment(app): Segment,
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

/// `GET /api/v1/monitors/{app}/uptime`.
#[derive(Serialize)]
struct UptimeView {
    app: AppName,
    /// Uptime and latency over 24 h, 7 d, 30 d and 365 d.
    windows: Vec<Summary>,
    /// Hourly buckets of the last 30 days, oldest first.
    hourly: Vec<Bucket>,
    /// Daily buckets of the last 400 days, oldest first.
    daily: Vec<Bucket>,
}

/// `GET /api/v1/monitors/{app}/uptime`: uptime and mean latency over 24 h, 7 d, 30 d and 365 d,
/// with the hourly and daily series; every check recorded so far included.
async fn uptime(
    State(state): State<SharedState>,
    Segment(app): Segment,
) -> Result<Json<UptimeView>, ApiError> {
    let name = app_name(&app)?;
    let now = Utc::now();
    let series = state
        .store
        .history(&name, now)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::unknown_app(&name))?;
    Ok(Json(UptimeView {
        app: name,
        windows: history::summarize(&series, now),
        hourly: series.hourly,
        daily: series.daily,
    }))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<String>,
}

#[derive(Serialize)]
struct IncidentList {
    app: AppName,
    incidents: Vec<Incident>,
}

/// `GET /api/v1/monitors/{app}/incidents?limit=N`: incidents, newest first.
async fn incidents(
    State(state): State<SharedState>,
    Segment(app): Segment,
    Query(query): Query<LimitQuery>,
) -> Result<Json<IncidentList>, ApiError> {
    let name = app_name(&app)?;
    let limit = registry::incidents_limit(query.limit.as_deref()).map_err(ApiError::Invalid)?;
    state.store.visible().await.map_err(ApiError::internal)?;
    let incidents = state
        .store
        .incidents(&name, Utc::now(), limit)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::unknown_app(&name))?;
    Ok(Json(IncidentList {
        app: name,
        incidents,
    }))
}

/// Recent checks each monitor carries in `GET /api/v1/uptime` (the dashboard's bar and
/// sparkline).
pub const RECENT_SHOWN: usize = 30;

/// One monitor in `GET /api/v1/uptime`.
#[derive(Serialize)]
struct Glance {
    app: String,
    uptime_24h: Option<f64>,
    uptime_30d: Option<f64>,
    latency_24h_ms: Option<f64>,
    /// Newest first.
    recent: Vec<Recent>,
}

/// One monitor in `GET /api/v1/uptime?compact=true`: the same, its recent checks as columns
/// (what the dashboard's list reads: a tenth of the bytes of an object per check).
#[derive(Serialize)]
struct CompactGlance {
    app: String,
    uptime_24h: Option<f64>,
    uptime_30d: Option<f64>,
    latency_24h_ms: Option<f64>,
    /// When the newest recent check started (`null` without checks).
    newest: Option<chrono::DateTime<Utc>>,
    /// Newest first, as `outcome` in `recent`: 0 pass, 1 warn, 2 fail.
    outcomes: Vec<u8>,
    /// Newest first, as `latency_ms` in `recent`.
    latencies_ms: Vec<f64>,
    /// Newest first: how many whole milliseconds before `newest` each check started.
    before_ms: Vec<i64>,
}

#[derive(Serialize)]
struct GlanceList<T> {
    monitors: Vec<T>,
}

#[derive(Deserialize)]
struct UptimeQuery {
    compact: Option<String>,
}

/// The `compact` of `GET /api/v1/uptime`: `true` or `false` (the default).
fn compact_form(given: Option<&str>) -> Result<bool, ApiError> {
    match given {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::Invalid(FieldError::new(
            "compact",
            other,
            "true or false",
        ))),
    }
}

/// `GET /api/v1/uptime[?compact=true]`: every monitor's uptime over 24 h and 30 d, its mean
/// latency over 24 h and its last [`RECENT_SHOWN`] checks, for the dashboard's list; with
/// `compact=true` the checks come as columns ([`CompactGlance`]).
async fn uptimes(
    State(state): State<SharedState>,
    Query(query): Query<UptimeQuery>,
) -> Result<Response, ApiError> {
    let compact = compact_form(query.compact.as_deref())?;
    let glances = state
        .store
        .glances(Utc::now(), RECENT_SHOWN)
        .await
        .map_err(ApiError::internal)?;
    let figures = |glance: &crate::history::Glance| {
        (
            glance.day.uptime_percent(),
            glance.month.uptime_percent(),
            (glance.day.checks > 0).then(|| {
                (glance.day.latency_sum.as_secs_f64() * 1e6 / glance.day.checks as f64).round()
                    / 1e3
            }),
        )
    };
    if compact {
        let monitors = glances
            .into_iter()
            .map(|glance| {
                let (uptime_24h, uptime_30d, latency_24h_ms) = figures(&glance);
                let newest = glance.recent.first().map(|check| check.time);
                CompactGlance {
                    app: glance.app,
                    uptime_24h,
                    uptime_30d,
                    latency_24h_ms,
                    newest,
                    outcomes: glance.recent.iter().map(|check| check.outcome).collect(),
                    latencies_ms: glance.recent.iter().map(|check| check.latency_ms).collect(),
                    before_ms: glance
                        .recent
                        .iter()
                        .map(|check| {
                            newest.map_or(0, |newest| (newest - check.time).num_milliseconds())
                        })
                        .collect(),
                }
            })
            .collect();
        return Ok(Json(GlanceList { monitors }).into_response());
    }
    let monitors = glances
        .into_iter()
        .map(|glance| {
            let (uptime_24h, uptime_30d, latency_24h_ms) = figures(&glance);
            Glance {
                uptime_24h,
                uptime_30d,
                latency_24h_ms,
                app: glance.app,
                recent: glance.recent,
            }
        })
        .collect();
    Ok(Json(GlanceList { monitors }).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    app: Option<String>,
}

/// How often an idle event stream sends a comment, so proxies and browsers keep it open.
pub const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /api/v1/events[?app=NAME]`: Server-Sent Events of checks, transitions, maintenance and
/// changes to the set of monitors (of one app, registered yet or not). The first event, `ready`, says the stream is live. A reader
/// that falls [`crate::events::CAPACITY`] events behind gets a last `lagged` event and the
/// stream ends (reconnect and reload); it never slows the checks. Streams end at shutdown.
async fn events(
    State(state): State<SharedState>,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    // An app need not be registered yet: its events start when it is.
    let app = query.app.as_deref().map(app_name).transpose()?;
    let receiver = state.monitors.events().subscribe();
    let stop = state.stop.clone();
    enum Stream {
        Start(tokio::sync::broadcast::Receiver<Arc<Event>>),
        Live(tokio::sync::broadcast::Receiver<Arc<Event>>),
        Done,
    }
    let stream = futures_util::stream::unfold(Stream::Start(receiver), move |stream| {
        let app = app.clone();
        let stop = stop.clone();
        async move {
            let mut receiver = match stream {
                Stream::Start(receiver) => {
                    let ready = SseEvent::default()
                        .event("ready")
                        .data(json!({"version": VERSION}).to_string());
                    return Some((Ok::<_, Infallible>(ready), Stream::Live(receiver)));
                }
                Stream::Live(receiver) => receiver,
                Stream::Done => return None,
            };
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => return None,
                    received = receiver.recv() => received,
                };
                match received {
                    Ok(event) => {
                        if app.as_ref().is_some_and(|app| event.app() != app) {
                            continue;
                        }
                        let Ok(sse) = SseEvent::default().event(event.name()).json_data(&*event)
                        else {
                            continue;
                        };
                        return Some((Ok(sse), Stream::Live(receiver)));
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!("an event stream fell {missed} events behind and is closed");
                        let lagged = SseEvent::default()
                            .event("lagged")
                            .data(json!({"missed": missed}).to_string());
                        return Some((Ok(lagged), Stream::Done));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(EVENTS_KEEP_ALIVE))
        .into_response())
}

/// `GET /metrics`: Prometheus text format ([`crate::metrics`]); `metrics_token` guards it when
/// set.
async fn metrics(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !may_read_metrics(&state.config, &headers) {
        return Err(if state.config.metrics_token.is_some() {
            ApiError::MetricsUnauthorized
        } else {
            ApiError::ReadUnauthorized
        });
    }
    let channels: Vec<String> = state
        .config
        .channels
        .iter()
        .map(|channel| channel.name.clone())
        .collect();
    let text = crate::metrics::render(&state.monitors, &state.store, &channels)
        .await
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

#[derive(Deserialize)]
struct BadgeQuery {
    uptime: Option<String>,
}

/// `GET /badge/{app}.svg[?uptime=30d]`: a shields-style badge of the monitor's state, or of its
/// uptime over a window.
async fn badge(
    State(state): State<SharedState>,
    Segment(file): Segment,
    Query(query): Query<BadgeQuery>,
) -> Result<Response, ApiError> {
    let Some(app) = file.strip_suffix(".svg") else {
        return Err(ApiError::NotFound("a badge is /badge/{app}.svg".to_owned()));
    };
    let name = app_name(app)?;
    let window = query
        .uptime
        .as_deref()
        .map(registry::uptime_window)
        .transpose()
        .map_err(ApiError::Invalid)?;
    let view = state
        .monitors
        .view(&name)
        .ok_or_else(|| ApiError::unknown_app(&name))?;
    let svg = match window {
        None if view.paused => badge::render(name.as_str(), "paused", Color::LightGrey),
        None => badge::render(
            name.as_str(),
            view.state.as_str(),
            Color::of_state(view.state),
        ),
        Some(window) => {
            let now = Utc::now();
            let series = state
                .store
                .history(&name, now)
                .await
                .map_err(ApiError::internal)?
                .unwrap_or_default();
            let percent = history::summarize(&series, now)
                .into_iter()
                .find(|summary| summary.window == window.as_str())
                .and_then(|summary| summary.uptime_percent);
            badge::render(
                &format!("uptime {}", window.as_str()),
                &badge::uptime_text(percent),
                Color::of_uptime(percent),
            )
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        svg,
    )
        .into_response())
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

async fn channels(State(state): State<SharedState>) -> Result<Json<ChannelList>, ApiError> {
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
    State(state): State<SharedState>,
    Segment(app): Segment,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MonitorView>, ApiError> {
    let name = app_name(&app)?;
    let body = body.map_err(ApiError::Unreadable)?;
    let window = crate::registry::MaintenanceRequest::accept(&body)?;
    state
        .monitors
        .set_maintenance(&name, Some(window))
        .await?
        .map(|view| Json(shown(view, Echo::Maintenance, &state.config, &headers)))
        .ok_or_else(|| ApiError::unknown_app(&name))
}

async fn end_maintenance(
    State(state): State<SharedState>,
    Segment(app): Segment,
    headers: HeaderMap,
) -> Result<Json<MonitorView>, ApiError> {
    let name = app_name(&app)?;
    state
        .monitors
        .set_maintenance(&name, None)
        .await?
        .map(|view| Json(shown(view, Echo::Maintenance, &state.config, &headers)))
        .ok_or_else(|| ApiError::unknown_app(&name))
}

async fn test_channel(
    State(state): State<SharedState>,
    Segment(name): Segment,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(notifier) = &state.notifier else {
        return Err(ApiError::NotFound(format!("no channel named {name:?}")));
    };
    // Only a channel that exists is counted (an unknown name is the 404 below).
    if state
        .config
        .channels
        .iter()
        .any(|channel| channel.name == name)
        && let Err(retry_after) = state.channel_tests.admit(&name, Instant::now())
    {
        return Err(ApiError::TestTooSoon {
            channel: name,
            retry_after,
        });
    }
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
    /// 401: a read without the right token, on a server with a `read_token`.
    #[error(
        "this server requires `Authorization: Bearer <read_token>` (or the token for changes) \
         for reads; set HEALTHCHECKER_READ_TOKEN"
    )]
    ReadUnauthorized,
    /// 401: `/metrics` without the right `metrics_token`.
    #[error(
        "this server requires `Authorization: Bearer <metrics_token>` for /metrics (in Prometheus: \
         `authorization: {{credentials: ...}}` in the scrape config)"
    )]
    MetricsUnauthorized,
    /// 404: no such route or app.
    #[error("{0}")]
    NotFound(String),
    /// 408: the request took longer than [`REQUEST_TIMEOUT`] (a body sent too slowly).
    #[error("the request took longer than {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// 413: the body is larger than [`MAX_BODY`].
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// 409: the monitor is declared in the config file, which alone changes it.
    #[error("{0}")]
    ManagedByConfig(String),
    /// 503: another server of the cluster checks the monitor ([`MonitorsError::Elsewhere`]).
    #[error("{0}")]
    Elsewhere(String),
    /// 422: a field out of range or malformed.
    #[error("{0}")]
    Invalid(FieldError),
    /// 429: the server monitors as many apps as it may ([`MonitorsError::Full`]).
    #[error(transparent)]
    Full(MonitorsError),
    /// 429: the client address has created this many monitors, its most
    /// (`max_monitors_per_client`).
    #[error(
        "this address has created {0} monitors, the most one client may \
         (max_monitors_per_client); remove some first"
    )]
    ClientFull(usize),
    /// 429: too many registrations from one address; retry after this many seconds.
    #[error(
        "too many registrations from this address (max_registrations_per_minute); retry in {0} s"
    )]
    RateLimited(u64),
    /// 429: the channel was sent a test message less than
    /// [`crate::throttle::CHANNEL_TEST_INTERVAL`] ago; retry after this many seconds.
    #[error(
        "channel {channel:?} was sent a test message moments ago (one per channel every {} s); retry in {retry_after} s",
        crate::throttle::CHANNEL_TEST_INTERVAL.as_secs()
    )]
    TestTooSoon {
        /// The channel.
        channel: String,
        /// Seconds to wait.
        retry_after: u64,
    },
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
            ApiError::Unauthorized | ApiError::ReadUnauthorized | ApiError::MetricsUnauthorized => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::ManagedByConfig(_) => (StatusCode::CONFLICT, "managed_by_config"),
            ApiError::Elsewhere(_) => (StatusCode::SERVICE_UNAVAILABLE, "checked_elsewhere"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Full(_) => (StatusCode::TOO_MANY_REQUESTS, "monitor_limit"),
            ApiError::ClientFull(_) => (StatusCode::TOO_MANY_REQUESTS, "client_monitor_limit"),
            ApiError::RateLimited(_) | ApiError::TestTooSoon { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
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
            managed @ MonitorsError::ManagedByConfig(_) => {
                ApiError::ManagedByConfig(managed.to_string())
            }
            elsewhere @ MonitorsError::Elsewhere { .. } => {
                ApiError::Elsewhere(elsewhere.to_string())
            }
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
            ApiError::RateLimited(seconds)
            | ApiError::TestTooSoon {
                retry_after: seconds,
                ..
            } => Some(*seconds),
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
