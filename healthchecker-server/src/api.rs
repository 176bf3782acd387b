//! The HTTP API: JSON under `/api/v1`, the server's own `GET /health`, and one error type.
//!
//! [`router`] builds the whole [`Router`] from an [`AppState`], so tests drive it with
//! `tower::ServiceExt::oneshot` and no socket. Every error leaves through [`ApiError`], which maps
//! to a status code and the JSON body `{"error": {"code", "message", "field"}}` in one place;
//! internal details never reach a response (they go to the log).
//!
//! Input is validated before anything changes: a request that is refused changes nothing.

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

use crate::health::{State as HealthState, Transition};
use crate::monitors::{MonitorView, Monitors, MonitorsError, Upserted};
use crate::registry::{AppName, FieldError, Registration};
use crate::store::{LoggedCheck, Store};
use crate::{Config, VERSION};

/// Media type of health answers (IETF draft "Health Check Response Format for HTTP APIs").
pub const HEALTH_JSON: &str = "application/health+json";

/// Largest request body accepted; a registration is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Transitions shown with one monitor.
pub const TRANSITIONS_SHOWN: usize = 20;

/// Default and largest `limit` of `GET /api/v1/monitors/{app}/log`.
pub const LOG_LIMIT_DEFAULT: usize = 100;
/// See [`LOG_LIMIT_DEFAULT`].
pub const LOG_LIMIT_MAX: usize = 100_000;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The server's configuration.
    pub config: Arc<Config>,
    /// When the server started, for its uptime.
    pub started: Instant,
    /// The name the server goes by: `healthchecker on <hostname>`.
    pub service_id: String,
    /// The live monitors.
    pub monitors: Monitors,
    /// The database, for the logs.
    pub store: Store,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let changes = Router::new()
        .route(
            "/api/v1/monitors/{app}",
            axum::routing::put(register).delete(unregister),
        )
        .route("/api/v1/monitors/{app}/pause", post(pause))
        .route("/api/v1/monitors/{app}/resume", post(resume))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(dashboard))
        .route("/health", get(own_health))
        .route("/api/v1/monitors", get(list))
        .route("/api/v1/monitors/{app}", get(one))
        .route("/api/v1/monitors/{app}/log", get(log))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(changes)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// `GET /health`: the server's own health, in `application/health+json`.
async fn own_health(State(state): State<AppState>) -> Response {
    let counts = state.monitors.state_counts();
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
async fn require_token(
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

fn app_name(raw: &str) -> Result<AppName, ApiError> {
    AppName::parse(raw).map_err(ApiError::Invalid)
}

/// `PUT /api/v1/monitors/{app}`: register or update; 201 created, 200 updated or unchanged.
async fn register(
    State(state): State<AppState>,
    Path(app): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = app_name(&app)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadJson(rejection.body_text())
        }
    })?;
    let registration = parse_registration(&body)?;
    let spec = registration.validate().map_err(ApiError::Invalid)?;
    let (upserted, view) = state.monitors.upsert(name, spec).await?;
    let status = match upserted {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated | Upserted::Unchanged => StatusCode::OK,
    };
    Ok((status, Json(view)).into_response())
}

/// Parses a registration body: syntax errors are 400, wrong types or unknown fields 422 naming
/// the field.
fn parse_registration(body: &[u8]) -> Result<Registration, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, Registration>(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = match message.strip_prefix("unknown field `") {
                    Some(rest) => rest.split('`').next().unwrap_or_default().to_owned(),
                    None => field,
                };
                ApiError::Invalid(FieldError {
                    field: if field == "." {
                        "body".to_owned()
                    } else {
                        field
                    },
                    value: String::new(),
                    expected: message,
                })
            }
            _ => ApiError::BadJson(format!("the body is not valid JSON: {inner}")),
        }
    })
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
async fn list(State(state): State<AppState>) -> Json<MonitorList> {
    Json(MonitorList {
        monitors: state.monitors.list(),
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
) -> Result<Json<MonitorDetail>, ApiError> {
    let name = app_name(&app)?;
    let monitor = state
        .monitors
        .view(&name)
        .ok_or_else(|| ApiError::unknown_app(&name))?;
    state.store.flush().await.map_err(ApiError::internal)?;
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
}

#[derive(Serialize)]
struct LogPage {
    app: AppName,
    checks: Vec<LoggedCheck>,
}

/// `GET /api/v1/monitors/{app}/log?limit=N`: the health-check log, newest first.
async fn log(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let name = app_name(&app)?;
    let limit = match query.limit.as_deref() {
        None => LOG_LIMIT_DEFAULT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=LOG_LIMIT_MAX).contains(limit))
            .ok_or_else(|| {
                ApiError::Invalid(FieldError {
                    field: "limit".to_owned(),
                    value: format!("{text:?}"),
                    expected: format!("from 1 to {LOG_LIMIT_MAX} checks"),
                })
            })?,
    };
    if state.monitors.view(&name).is_none() {
        return Err(ApiError::unknown_app(&name));
    }
    // What was checked a moment ago may still be on its way to the disk.
    state.store.flush().await.map_err(ApiError::internal)?;
    let checks = state
        .store
        .log(&name, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(LogPage { app: name, checks }))
}

/// Every way a request can fail, mapped to its status code in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the body is not JSON.
    #[error("{0}")]
    BadJson(String),
    /// 401: a change without the right token.
    #[error(
        "this server requires `Authorization: Bearer <token>` for changes; set HEALTHCHECKER_TOKEN"
    )]
    Unauthorized,
    /// 404: no such route or app.
    #[error("{0}")]
    NotFound(String),
    /// 413: the body is larger than [`MAX_BODY`].
    #[error("the request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// 422: a field out of range or malformed.
    #[error("{0}")]
    Invalid(FieldError),
    /// 429: the server monitors as many apps as it may.
    #[error("{0}")]
    Full(String),
    /// 500: our fault; the details are in the log, not in the answer.
    #[error("internal error; the server log has the details")]
    Internal,
}

impl ApiError {
    fn unknown_app(name: &AppName) -> ApiError {
        ApiError::NotFound(format!("no monitor named {:?}", name.as_str()))
    }

    fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("request failed: {error}");
        ApiError::Internal
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::Full(_) => (StatusCode::TOO_MANY_REQUESTS, "monitor_limit"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<MonitorsError> for ApiError {
    fn from(error: MonitorsError) -> Self {
        match error {
            MonitorsError::Full(_) => ApiError::Full(error.to_string()),
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
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
