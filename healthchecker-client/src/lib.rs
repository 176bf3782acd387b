//! The client side of healthchecker: register a Rust app with a healthchecker server on the LAN,
//! stop monitoring on shutdown, read its state and check log, and build the app's own `/health`
//! answer in the standard `application/health+json` format.
//!
//! ```no_run
//! use healthchecker_client::{HealthCheckerServer, Monitor};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let port = 9090;
//! let server = HealthCheckerServer::discover(
//!     "media-center",
//!     format!("http://{}:{port}", iputils::my_ip_addr()?),
//! )
//! .await?;
//! server
//!     .monitor(&Monitor::new().email("me@example.com").interval(10).unhealthy(2).healthy(4))
//!     .await?;
//! // ... the app runs ...
//! server.stop().await?; // on clean shutdown: unregistered, no alert
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * `server`: [`HealthCheckerServer`], one app's handle on one healthchecker server: the
//!   calls an app makes (`/api/v1/monitors/...`), following a server that moved, and
//!   [`KeepMonitored`].
//! * [`api`]: the client side of the HTTP API, a leaf: base URLs, endpoints and the one
//!   percent-encoding of a name ([`api::encode_segment`]), the HTTP client, one request with its
//!   token and timeout, the mapping of every answer to a value or an [`Error`]; and
//!   [`api::ApiClient`], for tools that read a server without being an app (the server's CLI).
//! * [`discovery`]: where the server is: `HEALTHCHECKER_URL`, or browsing for
//!   `_healthchecker._tcp.local.` over mDNS ([`discovery::browse`], [`discovery::find_first`],
//!   [`discovery::FoundServer`]), and finding a server again when it moved.
//! * `heartbeat`: push monitors from the job's side: [`PushMonitor`] (a period or a cron
//!   schedule, registered with [`api::ApiClient::push`]) and [`Heartbeat`], the ping URL's calls
//!   (`ping`, `start`, `fail`, `exit`, `log`, and `run` around a job).
//! * `app`: [`AppName`], the checked name an app is monitored under.
//! * `monitor`: [`Monitor`], the builder of monitoring parameters, with the defaults and
//!   valid ranges in one place.
//! * `model`: serde views of the server's answers ([`MonitorInfo`], [`CheckRecord`],
//!   [`Transition`], ...), tolerant of fields the server adds later.
//! * `response`: [`HealthCheckResponse`] and [`HealthStatus`], the app's own `/health` body
//!   (IETF draft "Health Check Response Format for HTTP APIs").
//! * `error`: [`Error`], every failure, each saying what to do about it, and discovery's
//!   [`discovery::BrowseError`]: a leaf, so no error type imports a module that returns it.
//! * `testing` (feature `test-util`): a scripted stand-in server on `127.0.0.1:0` that records
//!   what the client sends, for tests of apps that use this crate.
//!
//! # Features
//!
//! * `axum`: [`HealthCheckResponse`] implements `axum::response::IntoResponse`.
//! * `test-util`: the `testing` module.

pub mod api;
mod app;
pub mod discovery;
mod error;
mod heartbeat;
mod model;
mod monitor;
mod response;
mod server;
#[cfg(feature = "test-util")]
pub mod testing;

pub use api::DEFAULT_TIMEOUT;
pub use app::AppName;
pub use discovery::DEFAULT_DISCOVERY_TIMEOUT;
pub use error::Error;
pub use heartbeat::{Heartbeat, OUTPUT_MAX, PushMonitor, tail};
pub use model::{BodyDigest, CheckOutcome, CheckRecord, MonitorInfo, MonitorState, Transition};
pub use monitor::{Monitor, limits};
pub use response::{Check, HealthCheckResponse, HealthStatus};
pub use server::{
    HealthCheckerServer, KEEP_MONITORED_MIN_PERIOD, KeepMonitored, Registration, Stopped,
};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Environment variable with the server's base URL, e.g. `http://192.168.1.10:8080`.
pub const ENV_URL: &str = "HEALTHCHECKER_URL";

/// Environment variable with the bearer token the server requires for changes.
pub const ENV_TOKEN: &str = "HEALTHCHECKER_TOKEN";

/// Environment variable with the bearer token the server requires for reads (its `read_token`);
/// without it, reads send [`ENV_TOKEN`]'s token, which a server takes for reads too.
pub const ENV_READ_TOKEN: &str = "HEALTHCHECKER_READ_TOKEN";
