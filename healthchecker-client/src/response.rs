//! The app's own `/health` answer, in the IETF draft "Health Check Response Format for HTTP
//! APIs" (draft-inadarei-api-health-check, media type `application/health+json`).
//!
//! Only the fields that are set are serialised. The HTTP status follows the status: `fail` is
//! 503 Service Unavailable, `pass` and `warn` are 200 OK (a warning is still serving), as the
//! draft recommends.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The media type of a health answer.
const CONTENT_TYPE: &str = "application/health+json";

/// Whether a service, or one of its components, is healthy.
///
/// # Examples
///
/// ```
/// use healthchecker_client::HealthStatus;
///
/// assert_eq!(HealthStatus::Warn.as_str(), "warn");
/// assert_eq!(HealthStatus::Fail.status_code(), 503);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Healthy (`"pass"`; HTTP 200).
    #[default]
    Pass,
    /// Healthy, with some concern (`"warn"`; HTTP 200).
    Warn,
    /// Unhealthy (`"fail"`; HTTP 503).
    Fail,
}

impl HealthStatus {
    /// The status as the draft spells it: `pass`, `warn` or `fail`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::HealthStatus::Pass.as_str(), "pass");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Pass => "pass",
            HealthStatus::Warn => "warn",
            HealthStatus::Fail => "fail",
        }
    }

    /// The HTTP status of an answer with this status: 503 for `fail`, 200 otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::HealthStatus::Warn.status_code(), 200);
    /// ```
    #[must_use]
    pub const fn status_code(self) -> u16 {
        match self {
            HealthStatus::Pass | HealthStatus::Warn => 200,
            HealthStatus::Fail => 503,
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HealthStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One check of one component, an entry of the answer's `checks` map.
///
/// # Examples
///
/// ```
/// use healthchecker_client::{Check, HealthStatus};
///
/// let check = Check::new()
///     .component_id("dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2")
///     .component_type("datastore")
///     .observed_value(250)
///     .observed_unit("ms")
///     .status(HealthStatus::Pass);
/// assert_eq!(check.to_json()["observedUnit"], "ms");
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use]
pub struct Check {
    component_id: Option<String>,
    component_type: Option<String>,
    observed_value: Option<Value>,
    observed_unit: Option<String>,
    status: Option<HealthStatus>,
    affected_endpoints: Vec<String>,
    time: Option<DateTime<Utc>>,
    output: Option<String>,
    links: BTreeMap<String, String>,
}

impl Check {
    /// A check with nothing set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::Check::new().to_json(), serde_json::json!({}));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// `componentId`: a unique id of this instance of the component.
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().component_id("db-1");
    /// assert_eq!(check.to_json()["componentId"], "db-1");
    /// ```
    pub fn component_id(mut self, id: impl Into<String>) -> Self {
        self.component_id = Some(id.into());
        self
    }

    /// `componentType`: `component`, `datastore`, `system`, or a URI.
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().component_type("system");
    /// assert_eq!(check.to_json()["componentType"], "system");
    /// ```
    pub fn component_type(mut self, kind: impl Into<String>) -> Self {
        self.component_type = Some(kind.into());
        self
    }

    /// `observedValue`: any JSON value (a number, a string, an object, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().observed_value(0.25);
    /// assert_eq!(check.to_json()["observedValue"], 0.25);
    /// ```
    pub fn observed_value(mut self, value: impl Into<Value>) -> Self {
        self.observed_value = Some(value.into());
        self
    }

    /// `observedUnit`: the unit of the observed value, e.g. `ms`, `percent`, `MiB`.
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().observed_unit("percent");
    /// assert_eq!(check.to_json()["observedUnit"], "percent");
    /// ```
    pub fn observed_unit(mut self, unit: impl Into<String>) -> Self {
        self.observed_unit = Some(unit.into());
        self
    }

    /// `status` of this component.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{Check, HealthStatus};
    /// assert_eq!(Check::new().status(HealthStatus::Warn).to_json()["status"], "warn");
    /// ```
    pub fn status(mut self, status: HealthStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds an entry to `affectedEndpoints`: a URI of the service affected by this component's
    /// problem.
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().affected_endpoint("http://nas.local/files");
    /// assert_eq!(check.to_json()["affectedEndpoints"][0], "http://nas.local/files");
    /// ```
    pub fn affected_endpoint(mut self, uri: impl Into<String>) -> Self {
        self.affected_endpoints.push(uri.into());
        self
    }

    /// `time`: when the value was observed, serialised as RFC 3339 in UTC.
    ///
    /// # Examples
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    ///
    /// let at = Utc.with_ymd_and_hms(2018, 1, 17, 3, 36, 48).unwrap();
    /// let check = healthchecker_client::Check::new().time(at);
    /// assert_eq!(check.to_json()["time"], "2018-01-17T03:36:48Z");
    /// ```
    pub fn time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    /// `output`: the error output of a `warn` or `fail` check.
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().output("disk 97% full");
    /// assert_eq!(check.to_json()["output"], "disk 97% full");
    /// ```
    pub fn output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }

    /// Adds a link: relation name (or URI) to URI.
    ///
    /// # Examples
    ///
    /// ```
    /// let check = healthchecker_client::Check::new().link("self", "http://nas.local/db/health");
    /// assert_eq!(check.to_json()["links"]["self"], "http://nas.local/db/health");
    /// ```
    pub fn link(mut self, rel: impl Into<String>, href: impl Into<String>) -> Self {
        self.links.insert(rel.into(), href.into());
        self
    }

    /// The check as a JSON object with only the fields that are set.
    ///
    /// # Examples
    ///
    /// See [`Check`].
    #[must_use]
    pub fn to_json(&self) -> Value {
        to_value(self)
    }
}

impl Serialize for Check {
    /// Only the fields that are set, in the draft's order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        entry(&mut map, "componentId", &self.component_id)?;
        entry(&mut map, "componentType", &self.component_type)?;
        entry(&mut map, "observedValue", &self.observed_value)?;
        entry(&mut map, "observedUnit", &self.observed_unit)?;
        entry(&mut map, "status", &self.status)?;
        list(&mut map, "affectedEndpoints", &self.affected_endpoints)?;
        let time = self
            .time
            .map(|time| time.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        entry(&mut map, "time", &time)?;
        entry(&mut map, "output", &self.output)?;
        links(&mut map, &self.links)?;
        map.end()
    }
}

/// An app's answer to `GET /health`: a builder for an `application/health+json` body.
///
/// The status defaults to `pass`. Return it from an axum handler directly (feature `axum`), or
/// use [`status_code`](Self::status_code), [`content_type`](Self::content_type) and
/// [`body`](Self::body) with any other HTTP library.
///
/// # Examples
///
/// ```
/// use healthchecker_client::{Check, HealthCheckResponse, HealthStatus};
///
/// let response = HealthCheckResponse::new()
///     .description("Sample HealthChecker App")
///     .status(HealthStatus::Pass);
/// assert_eq!(response.status_code(), 200);
/// assert_eq!(response.content_type(), "application/health+json");
/// assert_eq!(
///     response.body(),
///     r#"{"status":"pass","description":"Sample HealthChecker App"}"#
/// );
///
/// let degraded = HealthCheckResponse::new()
///     .status(HealthStatus::Warn)
///     .check("disk:utilization", Check::new().observed_value(91).observed_unit("percent"));
/// assert_eq!(degraded.to_json()["checks"]["disk:utilization"][0]["observedValue"], 91);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use]
pub struct HealthCheckResponse {
    status: HealthStatus,
    version: Option<String>,
    release_id: Option<String>,
    notes: Vec<String>,
    output: Option<String>,
    checks: BTreeMap<String, Vec<Check>>,
    links: BTreeMap<String, String>,
    service_id: Option<String>,
    description: Option<String>,
}

impl HealthCheckResponse {
    /// An answer with status `pass` and nothing else set.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new();
    /// assert_eq!(response.body(), r#"{"status":"pass"}"#);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// `status`: the service's overall health.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{HealthCheckResponse, HealthStatus};
    /// let response = HealthCheckResponse::new().status(HealthStatus::Fail);
    /// assert_eq!(response.status_code(), 503);
    /// ```
    pub fn status(mut self, status: HealthStatus) -> Self {
        self.status = status;
        self
    }

    /// `version`: the public version of the service's API, e.g. `1`.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new().version("1");
    /// assert_eq!(response.to_json()["version"], "1");
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// `releaseId`: the release of the implementation, e.g. `1.2.3`.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new()
    ///     .release_id(env!("CARGO_PKG_VERSION"));
    /// assert!(response.to_json()["releaseId"].is_string());
    /// ```
    pub fn release_id(mut self, release: impl Into<String>) -> Self {
        self.release_id = Some(release.into());
        self
    }

    /// Adds an entry to `notes`.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new().note("nightly backup running");
    /// assert_eq!(response.to_json()["notes"][0], "nightly backup running");
    /// ```
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// `output`: the error output of a `warn` or `fail` answer (the draft says to leave it out
    /// for `pass`).
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{HealthCheckResponse, HealthStatus};
    /// let response = HealthCheckResponse::new().status(HealthStatus::Fail).output("database down");
    /// assert_eq!(response.to_json()["output"], "database down");
    /// ```
    pub fn output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }

    /// Adds a check under `key`, which the draft spells `"{component}:{measurement}"`, e.g.
    /// `"cassandra:responseTime"` or `"uptime"`. Several checks under one key form a list (one
    /// per instance of the component).
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{Check, HealthCheckResponse};
    ///
    /// let response = HealthCheckResponse::new()
    ///     .check("db:connections", Check::new().component_id("db-1").observed_value(4))
    ///     .check("db:connections", Check::new().component_id("db-2").observed_value(7));
    /// assert_eq!(response.to_json()["checks"]["db:connections"][1]["observedValue"], 7);
    /// ```
    pub fn check(mut self, key: impl Into<String>, check: Check) -> Self {
        self.checks.entry(key.into()).or_default().push(check);
        self
    }

    /// Adds a link: relation name (or URI) to URI, e.g. `("about", "http://nas.local/")`.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new().link("about", "http://nas.local/");
    /// assert_eq!(response.to_json()["links"]["about"], "http://nas.local/");
    /// ```
    pub fn link(mut self, rel: impl Into<String>, href: impl Into<String>) -> Self {
        self.links.insert(rel.into(), href.into());
        self
    }

    /// `serviceId`: a unique id of the service.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new().service_id("nas-1");
    /// assert_eq!(response.to_json()["serviceId"], "nas-1");
    /// ```
    pub fn service_id(mut self, id: impl Into<String>) -> Self {
        self.service_id = Some(id.into());
        self
    }

    /// `description`: a human-friendly description of the service, e.g. the app's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let response = healthchecker_client::HealthCheckResponse::new().description("media center");
    /// assert_eq!(response.to_json()["description"], "media center");
    /// ```
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The status set.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{HealthCheckResponse, HealthStatus};
    /// assert_eq!(HealthCheckResponse::new().health_status(), HealthStatus::Pass);
    /// ```
    #[must_use]
    pub fn health_status(&self) -> HealthStatus {
        self.status
    }

    /// The HTTP status to answer with: 503 for `fail`, 200 for `pass` and `warn`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(healthchecker_client::HealthCheckResponse::new().status_code(), 200);
    /// ```
    #[must_use]
    pub fn status_code(&self) -> u16 {
        self.status.status_code()
    }

    /// The `Content-Type` to answer with: `application/health+json`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(
    ///     healthchecker_client::HealthCheckResponse::new().content_type(),
    ///     "application/health+json"
    /// );
    /// ```
    #[must_use]
    pub fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    /// The answer as a JSON object with only the fields that are set.
    ///
    /// # Examples
    ///
    /// ```
    /// let json = healthchecker_client::HealthCheckResponse::new().to_json();
    /// assert_eq!(json, serde_json::json!({"status": "pass"}));
    /// ```
    #[must_use]
    pub fn to_json(&self) -> Value {
        to_value(self)
    }

    /// The answer's body: only the fields that are set, in the draft's order.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{HealthCheckResponse, HealthStatus};
    /// let body = HealthCheckResponse::new().status(HealthStatus::Warn).version("1").body();
    /// assert_eq!(body, r#"{"status":"warn","version":"1"}"#);
    /// ```
    #[must_use]
    pub fn body(&self) -> String {
        // Cannot fail: every key is a string and every value plain JSON. Should that ever change,
        // answering `fail` is the honest fallback for a health endpoint.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"status":"fail"}"#.to_owned())
    }
}

impl Serialize for HealthCheckResponse {
    /// Only the fields that are set, in the draft's order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("status", &self.status)?;
        entry(&mut map, "version", &self.version)?;
        entry(&mut map, "releaseId", &self.release_id)?;
        list(&mut map, "notes", &self.notes)?;
        entry(&mut map, "output", &self.output)?;
        if !self.checks.is_empty() {
            map.serialize_entry("checks", &self.checks)?;
        }
        links(&mut map, &self.links)?;
        entry(&mut map, "serviceId", &self.service_id)?;
        entry(&mut map, "description", &self.description)?;
        map.end()
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for HealthCheckResponse {
    /// The status code, `Content-Type: application/health+json` and the body.
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status_code())
            .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
        (
            status,
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            self.body(),
        )
            .into_response()
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Cannot fail, as for `body`.
    serde_json::to_value(value).unwrap_or_else(|_| serde_json::json!({"status": "fail"}))
}

fn entry<M: SerializeMap, T: Serialize>(
    map: &mut M,
    key: &'static str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, value),
        None => Ok(()),
    }
}

fn list<M: SerializeMap>(
    map: &mut M,
    key: &'static str,
    values: &[String],
) -> Result<(), M::Error> {
    if values.is_empty() {
        Ok(())
    } else {
        map.serialize_entry(key, values)
    }
}

fn links<M: SerializeMap>(map: &mut M, links: &BTreeMap<String, String>) -> Result<(), M::Error> {
    if links.is_empty() {
        Ok(())
    } else {
        map.serialize_entry("links", links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn minimal_answers() {
        let table = [
            (HealthStatus::Pass, 200, r#"{"status":"pass"}"#),
            (HealthStatus::Warn, 200, r#"{"status":"warn"}"#),
            (HealthStatus::Fail, 503, r#"{"status":"fail"}"#),
        ];
        for (status, code, body) in table {
            let response = HealthCheckResponse::new().status(status);
            assert_eq!(response.status_code(), code);
            assert_eq!(response.body(), body);
            assert_eq!(response.content_type(), "application/health+json");
        }
    }

    #[test]
    fn the_original_example() {
        let response = HealthCheckResponse::new()
            .description("Sample HealthChecker App")
            .status(HealthStatus::Pass);
        assert_eq!(
            response.body(),
            r#"{"status":"pass","description":"Sample HealthChecker App"}"#
        );
    }

    /// The example of the draft (section 3), rebuilt with the builder.
    #[test]
    fn every_field() {
        let at = Utc
            .with_ymd_and_hms(2018, 1, 17, 3, 36, 48)
            .single()
            .expect("valid time");
        let response = HealthCheckResponse::new()
            .status(HealthStatus::Pass)
            .version("1")
            .release_id("1.2.2")
            .note("")
            .output("")
            .service_id("f03e522f-1f44-4062-9b55-9587f91c9c41")
            .description("health of authz service")
            .check(
                "cassandra:responseTime",
                Check::new()
                    .component_id("dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2")
                    .component_type("datastore")
                    .observed_value(250)
                    .observed_unit("ms")
                    .status(HealthStatus::Pass)
                    .affected_endpoint("/users/{userId}")
                    .affected_endpoint("/customers/{customerId}/status")
                    .time(at)
                    .output(""),
            )
            .check(
                "uptime",
                Check::new()
                    .component_type("system")
                    .observed_value(1_209_600.245)
                    .observed_unit("s")
                    .status(HealthStatus::Pass)
                    .time(at),
            )
            .check(
                "cpu:utilization",
                Check::new()
                    .component_id("6fd416e0-8920-410f-9c7b-c479000f7227")
                    .component_type("system")
                    .observed_value(85)
                    .observed_unit("percent")
                    .status(HealthStatus::Warn)
                    .time(at)
                    .output(""),
            )
            .check(
                "cpu:utilization",
                Check::new()
                    .component_id("6fd416e0-8920-410f-9c7b-c479000f7227")
                    .component_type("system")
                    .observed_value(85)
                    .observed_unit("percent")
                    .status(HealthStatus::Warn)
                    .time(at)
                    .output("")
                    .link("self", "http://api.example.com/dbnode/dfd6cf2b/health"),
            )
            .link("about", "http://api.example.com/about/authz")
            .link(
                "http://api.x.io/rel/thresholds",
                "http://api.x.io/about/authz/thresholds",
            );
        let cpu = json!({
            "componentId": "6fd416e0-8920-410f-9c7b-c479000f7227",
            "componentType": "system",
            "observedValue": 85,
            "observedUnit": "percent",
            "status": "warn",
            "time": "2018-01-17T03:36:48Z",
            "output": ""
        });
        let mut cpu_with_link = cpu.clone();
        cpu_with_link["links"] = json!({"self": "http://api.example.com/dbnode/dfd6cf2b/health"});
        assert_eq!(
            response.to_json(),
            json!({
                "status": "pass",
                "version": "1",
                "releaseId": "1.2.2",
                "notes": [""],
                "output": "",
                "serviceId": "f03e522f-1f44-4062-9b55-9587f91c9c41",
                "description": "health of authz service",
                "checks": {
                    "cassandra:responseTime": [{
                        "componentId": "dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2",
                        "componentType": "datastore",
                        "observedValue": 250,
                        "observedUnit": "ms",
                        "status": "pass",
                        "affectedEndpoints": ["/users/{userId}", "/customers/{customerId}/status"],
                        "time": "2018-01-17T03:36:48Z",
                        "output": ""
                    }],
                    "uptime": [{
                        "componentType": "system",
                        "observedValue": 1_209_600.245,
                        "observedUnit": "s",
                        "status": "pass",
                        "time": "2018-01-17T03:36:48Z"
                    }],
                    "cpu:utilization": [cpu, cpu_with_link]
                },
                "links": {
                    "about": "http://api.example.com/about/authz",
                    "http://api.x.io/rel/thresholds": "http://api.x.io/about/authz/thresholds"
                }
            })
        );
        // Serialising through serde gives the same JSON.
        assert_eq!(
            serde_json::to_value(&response).expect("serialize"),
            response.to_json()
        );
    }

    #[test]
    fn body_field_order_follows_the_draft() {
        let response = HealthCheckResponse::new()
            .description("d")
            .service_id("s")
            .link("about", "http://a/")
            .check("c", Check::new())
            .output("o")
            .note("n")
            .release_id("r")
            .version("v")
            .status(HealthStatus::Warn);
        assert_eq!(
            response.body(),
            r#"{"status":"warn","version":"v","releaseId":"r","notes":["n"],"output":"o","checks":{"c":[{}]},"links":{"about":"http://a/"},"serviceId":"s","description":"d"}"#
        );
    }

    #[test]
    fn sub_second_times_keep_their_precision() {
        let at = Utc
            .timestamp_millis_opt(1_516_160_208_123)
            .single()
            .expect("valid time");
        assert_eq!(
            Check::new().time(at).to_json(),
            json!({"time": "2018-01-17T03:36:48.123Z"})
        );
    }
}
