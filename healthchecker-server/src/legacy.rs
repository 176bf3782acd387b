//! The original's routes: what the 2020 Python HealthChecker.Server served under
//! `/healthchecker/`, so that apps using its Python client move to this server without a change.
//!
//! | route | answer |
//! |---|---|
//! | `POST /healthchecker/monitor` (form: `appname`, `url`, `email`, `timeout`, `interval`, `unhealthy_threshold`, `healthy_threshold`) | 201 registered, 200 registered again (updated or unchanged); 400 a bad `url`, `email` or `appname`, or a malformed form; 406 a parameter out of range |
//! | `GET /healthchecker/stop?appname=` (and `stopmonitoring`, the original's name) | 200 `OK`: no longer monitored; 404 unknown |
//! | `GET /healthchecker/pause?appname=`, `.../resume?appname=` | 200 `OK`; 404 unknown |
//! | `GET /healthchecker/info?appname=` | the monitor and its last [`INFO_CHECKS`] checks, as JSON; 404 unknown |
//! | `GET /healthchecker/status` | every monitor, as a JSON object keyed by name |
//!
//! These are a translation, not a second API: the form becomes the same [`Registration`] that
//! `PUT /api/v1/monitors/{app}` takes and is validated by the same [`Registration::validate`], with
//! the same defaults (path `/health`); each refusal is then given the original's code. Registering
//! counts against `max_registrations_per_minute`, `max_monitors` and `max_monitors_per_client`;
//! recipients must be in `allowed_email_domains`, the target in `allowed_targets` (a 422, as in
//! the JSON API: the original had no such refusal). With a `token`, the routes that change
//! something need it like every other change (the original client cannot send one, so a server
//! with a token serves it only `info` and `status`); with a `read_token`, `info` and `status`
//! need that, like every other read. Answers are plain text like the original's, except `info`
//! and `status` (JSON) and the refusals the JSON API gives for every route (401, 413, 422 for a
//! target outside `allowed_targets`, 429, 500), which keep its JSON error body.
//!
//! Form and query values are URL-decoded, `+` as a space: the Python client sends the app name
//! `Sample HealthChecker App` as `Sample+HealthChecker+App`. `email` may be empty (no mail); a
//! number left out takes its default.
//!
//! Off with `--no-legacy` ([`Config::legacy`](crate::Config::legacy)): [`router`] then answers
//! 404 saying so, and the mDNS name that leads here is not advertised ([`crate::discovery::LEGACY_INSTANCE`]).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get, post};
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, AppState, ClientAddr, Routes, SharedState};
use crate::monitors::{MonitorView, Upserted};
use crate::registry::{AppName, Emails, FieldError, Registration};
use crate::store::LoggedCheck;

/// Where the original's routes live.
pub const PREFIX: &str = "/healthchecker";

/// Checks shown by `GET /healthchecker/info`, newest first.
pub const INFO_CHECKS: usize = 20;

/// The original's routes, to be merged into the API with [`api::router_with`] (which puts the
/// guards of reads and changes on them). When `legacy` is off, only a 404 that says so.
pub fn router(state: &AppState) -> Routes {
    if !state.config.legacy {
        return Routes {
            open: Router::new().route("/healthchecker/{*route}", any(switched_off)),
            ..Routes::default()
        };
    }
    let changes = Router::new()
        .route(
            "/healthchecker/monitor",
            post(monitor).route_layer(middleware::from_fn_with_state(
                SharedState::new(state.clone()),
                api::limit_registrations,
            )),
        )
        .route("/healthchecker/stop", get(stop))
        .route("/healthchecker/stopmonitoring", get(stop))
        .route("/healthchecker/pause", get(pause))
        .route("/healthchecker/resume", get(resume));
    let reads = Router::new()
        .route("/healthchecker/info", get(info))
        .route("/healthchecker/status", get(status));
    Routes {
        reads,
        changes,
        open: Router::new(),
    }
}

/// Every route here while `legacy` is off.
async fn switched_off() -> ApiError {
    ApiError::NotFound(
        "the original HealthChecker.Server's routes are off on this server (legacy = false, \
         --no-legacy); the API lives under /api/v1"
            .to_owned(),
    )
}

/// Why a request to one of the original's routes was refused, with the original's codes.
#[derive(Debug, thiserror::Error)]
enum LegacyError {
    /// 400: a bad `url`, `email` or `appname`, a value that is not a number, or not a form.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no monitor of that name (in the original's words).
    #[error("App `{0}` is not health check monitored.")]
    Unknown(AppName),
    /// 406: a parameter outside its range.
    #[error("{0}; see the valid ranges in the README")]
    OutOfRange(FieldError),
    /// A refusal every route shares (401, 413, 429, 500), answered as the JSON API answers it.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl IntoResponse for LegacyError {
    fn into_response(self) -> Response {
        let status = match self {
            LegacyError::Api(error) => return error.into_response(),
            LegacyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            LegacyError::Unknown(_) => StatusCode::NOT_FOUND,
            LegacyError::OutOfRange(_) => StatusCode::NOT_ACCEPTABLE,
        };
        (status, self.to_string()).into_response()
    }
}

/// A refusal of the shared validation, under the original's field names and codes: the
/// parameters with a range are 406, everything else (url, email) 400.
fn refusal(error: FieldError) -> LegacyError {
    let (field, out_of_range) = match error.field.as_str() {
        "app" => ("appname", false),
        "unhealthy" => ("unhealthy_threshold", true),
        "healthy" => ("healthy_threshold", true),
        "interval" => ("interval", true),
        "timeout" => ("timeout", true),
        other => (other, false),
    };
    let error = FieldError {
        field: field.to_owned(),
        ..error
    };
    if out_of_range {
        LegacyError::OutOfRange(error)
    } else {
        LegacyError::BadRequest(error.to_string())
    }
}

/// The form of `POST /healthchecker/monitor`, as the original client sends it. Every field is
/// text, as forms are; a field this server does not know is refused, so a typo is not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorForm {
    appname: Option<String>,
    url: Option<String>,
    email: Option<String>,
    timeout: Option<String>,
    interval: Option<String>,
    unhealthy_threshold: Option<String>,
    healthy_threshold: Option<String>,
}

impl MonitorForm {
    /// The app's name and the registration this form asks for, not yet validated.
    fn translate(&self) -> Result<(AppName, Registration), LegacyError> {
        let name = app_name(self.appname.as_deref())?;
        let url = self.url.clone().ok_or_else(|| {
            LegacyError::BadRequest(
                "`url` is missing: the app's base URL, e.g. http://192.168.1.20:9090".to_owned(),
            )
        })?;
        let email = self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|email| !email.is_empty())
            .map(|email| Emails::One(email.to_owned()));
        let number = |field: &str, text: &Option<String>| whole_number(field, text.as_deref());
        let registration = Registration {
            url: Some(url),
            email,
            interval: number("interval", &self.interval)?,
            timeout: number("timeout", &self.timeout)?,
            unhealthy: number("unhealthy_threshold", &self.unhealthy_threshold)?.map(saturate),
            healthy: number("healthy_threshold", &self.healthy_threshold)?.map(saturate),
            path: None,
            ..Registration::default()
        };
        Ok((name, registration))
    }

    /// The value as the form gave it, for an error about `field` (a registration field name).
    fn given(&self, field: &str) -> Option<&str> {
        match field {
            "interval" => self.interval.as_deref(),
            "timeout" => self.timeout.as_deref(),
            "unhealthy" => self.unhealthy_threshold.as_deref(),
            "healthy" => self.healthy_threshold.as_deref(),
            _ => None,
        }
    }
}

/// Whole numbers beyond `u32` are out of every threshold's range anyway.
fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A whole number from the form: absent is `None` (the default applies). A negative or huge
/// number is kept as 0 or `u64::MAX`, so that validation calls it out of range (406); text that
/// is not a number at all is a malformed form (400).
fn whole_number(field: &str, text: Option<&str>) -> Result<Option<u64>, LegacyError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let trimmed = text.trim();
    let digits = |digits: &str| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if digits(trimmed) {
        return Ok(Some(trimmed.parse().unwrap_or(u64::MAX)));
    }
    if trimmed.strip_prefix('-').is_some_and(digits) {
        return Ok(Some(0));
    }
    let mut shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        shown.push_str("...");
    }
    Err(LegacyError::BadRequest(format!(
        "invalid `{field}` {shown:?}: a whole number"
    )))
}

/// The checked app name of the `appname` field or parameter.
fn app_name(raw: Option<&str>) -> Result<AppName, LegacyError> {
    let raw = raw
        .ok_or_else(|| LegacyError::BadRequest("`appname` parameter not specified.".to_owned()))?;
    AppName::parse(raw).map_err(refusal)
}

/// `POST /healthchecker/monitor`: register or update; 201 new, 200 again.
async fn monitor(
    State(state): State<SharedState>,
    ClientAddr(client): ClientAddr,
    form: Result<Form<MonitorForm>, FormRejection>,
) -> Result<Response, LegacyError> {
    let Form(form) = form.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            LegacyError::Api(ApiError::TooLarge)
        } else {
            LegacyError::BadRequest(format!(
                "not a form the original client sends: {}",
                rejection.body_text()
            ))
        }
    })?;
    let (name, registration) = form.translate()?;
    let spec = registration.validate().map_err(|error| {
        let value = form
            .given(&error.field)
            .map(|text| format!("{:?}", text.trim()));
        refusal(FieldError {
            value: value.unwrap_or(error.value.clone()),
            ..error
        })
    })?;
    if !spec.kind().is_http() {
        // The original speaks of apps with an HTTP health endpoint only.
        return Err(LegacyError::BadRequest(format!(
            "invalid `url` {:?}: an http:// or https:// base URL",
            spec.url.as_str()
        )));
    }
    spec.allowed_by(&state.config).map_err(refusal)?;
    let reservation = state.admit(client, &name, &spec).await?;
    let (upserted, _) = state
        .monitors
        .upsert(name.clone(), spec)
        .await
        .map_err(ApiError::from)?;
    if let (Upserted::Created, Some(reservation)) = (upserted, reservation) {
        reservation.created();
    }
    Ok(match upserted {
        Upserted::Created => (
            StatusCode::CREATED,
            format!("App `{name}` is scheduled for health check monitoring."),
        ),
        Upserted::Updated => (
            StatusCode::OK,
            format!("App `{name}` is monitored already; its registration is updated."),
        ),
        Upserted::Unchanged => (
            StatusCode::OK,
            format!("App `{name}` is monitored already, unchanged."),
        ),
    }
    .into_response())
}

/// The `?appname=` of the routes about one app.
#[derive(Debug, Deserialize)]
struct AppQuery {
    appname: Option<String>,
}

/// The app named in the query.
fn named(query: Result<Query<AppQuery>, QueryRejection>) -> Result<AppName, LegacyError> {
    let Query(query) = query.map_err(|rejection| {
        LegacyError::BadRequest(format!("bad query: {}", rejection.body_text()))
    })?;
    app_name(query.appname.as_deref())
}

/// `GET /healthchecker/stop?appname=` and `.../stopmonitoring`: forget the app.
async fn stop(
    State(state): State<SharedState>,
    query: Result<Query<AppQuery>, QueryRejection>,
) -> Result<&'static str, LegacyError> {
    let name = named(query)?;
    if state.monitors.remove(&name).await.map_err(ApiError::from)? {
        state.removed(&name);
        Ok("OK")
    } else {
        Err(LegacyError::Unknown(name))
    }
}

/// `GET /healthchecker/pause?appname=`.
async fn pause(
    state: State<SharedState>,
    query: Result<Query<AppQuery>, QueryRejection>,
) -> Result<&'static str, LegacyError> {
    set_paused(state, query, true).await
}

/// `GET /healthchecker/resume?appname=`.
async fn resume(
    state: State<SharedState>,
    query: Result<Query<AppQuery>, QueryRejection>,
) -> Result<&'static str, LegacyError> {
    set_paused(state, query, false).await
}

async fn set_paused(
    State(state): State<SharedState>,
    query: Result<Query<AppQuery>, QueryRejection>,
    paused: bool,
) -> Result<&'static str, LegacyError> {
    let name = named(query)?;
    match state
        .monitors
        .set_paused(&name, paused)
        .await
        .map_err(ApiError::from)?
    {
        Some(_) => Ok("OK"),
        None => Err(LegacyError::Unknown(name)),
    }
}

/// The answer of `GET /healthchecker/info`: the monitor as the JSON API shows it, and its log.
#[derive(Serialize)]
struct Info {
    #[serde(flatten)]
    monitor: MonitorView,
    /// The last [`INFO_CHECKS`] checks, newest first.
    checks: Vec<LoggedCheck>,
}

/// `GET /healthchecker/info?appname=`.
async fn info(
    State(state): State<SharedState>,
    query: Result<Query<AppQuery>, QueryRejection>,
) -> Result<Json<Info>, LegacyError> {
    let name = named(query)?;
    if state.monitors.view(&name).is_none() {
        return Err(LegacyError::Unknown(name));
    }
    let internal = |error: crate::store::StoreError| LegacyError::Api(ApiError::internal(error));
    // What was checked a moment ago may still be in the writer's batch.
    state.store.visible().await.map_err(internal)?;
    let checks = state
        .store
        .log(&name, INFO_CHECKS)
        .await
        .map_err(internal)?;
    // The state after the log: a check in the log has always updated the state first, so the
    // answer never shows a check with the state from before it.
    let monitor = state
        .monitors
        .view(&name)
        .ok_or_else(|| LegacyError::Unknown(name.clone()))?;
    Ok(Json(Info { monitor, checks }))
}

/// `GET /healthchecker/status`: every monitor, keyed by name like the original's answer.
async fn status(State(state): State<SharedState>) -> Json<BTreeMap<String, MonitorView>> {
    Json(
        state
            .monitors
            .list()
            .into_iter()
            .map(|view| (view.app.as_str().to_owned(), view))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form as the Python client encodes it (`+` for a space), parsed as the `Form`
    /// extractor parses it.
    fn form(fields: &[(&str, &str)]) -> MonitorForm {
        let text = serde_urlencoded::to_string(fields).expect("encodes");
        assert!(!text.contains("%20"), "spaces are sent as +: {text}");
        serde_urlencoded::from_str(&text).expect("parses")
    }

    fn original(interval: &str) -> MonitorForm {
        form(&[
            ("appname", "Sample HealthChecker App"),
            ("url", "http://192.168.1.20:9090"),
            ("email", ""),
            ("timeout", "5"),
            ("interval", interval),
            ("unhealthy_threshold", "2"),
            ("healthy_threshold", "4"),
        ])
    }

    #[test]
    fn the_original_clients_form_is_a_registration_with_the_defaults() {
        let (name, registration) = original("10").translate().expect("valid");
        assert_eq!(name.as_str(), "Sample HealthChecker App", "`+` is a space");
        let spec = registration.validate().expect("valid");
        assert_eq!(spec.check_url(), "http://192.168.1.20:9090/health");
        assert!(spec.emails.is_empty(), "an empty email is no recipient");
        assert_eq!((spec.interval.as_secs(), spec.timeout.as_secs()), (10, 5));
        assert_eq!((spec.unhealthy, spec.healthy), (2, 4));

        let (_, sparse) = form(&[("appname", "a"), ("url", "http://a")])
            .translate()
            .expect("valid");
        let spec = sparse.validate().expect("defaults apply");
        assert_eq!((spec.interval.as_secs(), spec.healthy), (30, 10));
    }

    #[test]
    fn numbers_that_are_not_numbers_are_malformed_and_others_out_of_range() {
        for text in ["ten", "", "5.0", "+5", "1e3"] {
            let error = original(text).translate().expect_err(text);
            assert!(
                matches!(&error, LegacyError::BadRequest(message)
                    if message.starts_with("invalid `interval`")),
                "{text}: {error}"
            );
        }
        for (text, kept) in [
            ("-1", 0),
            ("301", 301),
            ("99999999999999999999999", u64::MAX),
        ] {
            let (_, registration) = original(text).translate().expect(text);
            assert_eq!(registration.interval, Some(kept));
            let error = registration.validate().expect_err("out of range");
            assert!(matches!(refusal(error), LegacyError::OutOfRange(_)));
        }
    }

    #[test]
    fn refusals_take_the_originals_field_names_and_codes() {
        let mut bad = original("30");
        bad.unhealthy_threshold = Some("11".to_owned());
        let (_, registration) = bad.translate().expect("numbers");
        let error = refusal(registration.validate().expect_err("11"));
        assert_eq!(
            error.to_string(),
            "invalid `unhealthy_threshold` \"11\": from 2 to 10 checks; see the valid ranges in \
             the README"
        );
        for (field, value) in [("url", "ftp://a"), ("email", "not-an-address")] {
            let mut bad = original("30");
            match field {
                "url" => bad.url = Some(value.to_owned()),
                _ => bad.email = Some(value.to_owned()),
            }
            let (_, registration) = bad.translate().expect("translates");
            let error = refusal(registration.validate().expect_err(field));
            assert!(
                matches!(&error, LegacyError::BadRequest(message) if message.contains(&format!("`{field}`"))),
                "{error}"
            );
        }
        let error = app_name(Some(" padded")).expect_err("spaces at the ends");
        assert!(
            error.to_string().starts_with("invalid `appname`"),
            "{error}"
        );
        let error = app_name(None).expect_err("missing");
        assert_eq!(error.to_string(), "`appname` parameter not specified.");
    }
}
