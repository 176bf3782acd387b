//! The HTTP API: JSON under `/api/v1`, the server's own `GET /health`, and one error type.
//!
//! [`router`] builds the whole [`Router`] from an [`AppState`], so tests drive it with
//! `tower::ServiceExt::oneshot` and no socket. Every error leaves through [`ApiError`], which maps
//! to a status code and the JSON body `{"error": {"code", "message", "field"}}` in one place;
//! internal details never reach a response.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::{Config, VERSION};

/// Media type of health answers (IETF draft "Health Check Response Format for HTTP APIs").
pub const HEALTH_JSON: &str = "application/health+json";

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The server's configuration.
    pub config: Arc<Config>,
    /// When the server started, for its uptime.
    pub started: Instant,
    /// The name the server goes by: `healthchecker on <hostname>`.
    pub service_id: String,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(own_health))
        .fallback(not_found)
        .with_state(state)
}

/// `GET /health`: the server's own health, in `application/health+json`.
async fn own_health(State(state): State<AppState>) -> Response {
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
        },
    });
    ([(header::CONTENT_TYPE, HEALTH_JSON)], Json(body)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; the API lives under /api/v1".to_owned())
}

/// Every way a request can fail, mapped to its status code in [`ApiError::into_response`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 404: no such route or app.
    #[error("{0}")]
    NotFound(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
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
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                field: None,
            },
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn state() -> AppState {
        AppState {
            config: Arc::new(Config::default()),
            started: Instant::now(),
            service_id: "healthchecker on test".to_owned(),
        }
    }

    async fn get(uri: &str) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = router(state())
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().expect("ascii").to_owned());
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).expect("json"),
        )
    }

    #[tokio::test]
    async fn own_health_is_health_json() {
        let (status, content_type, body) = get("/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(HEALTH_JSON));
        assert_eq!(body["status"], "pass");
        assert_eq!(body["version"], VERSION);
        assert_eq!(body["serviceId"], "healthchecker on test");
    }

    #[tokio::test]
    async fn unknown_route_is_a_json_404() {
        let (status, _, body) = get("/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
    }
}
