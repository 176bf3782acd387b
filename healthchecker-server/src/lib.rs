//! # healthchecker-server
//!
//! A zero-config health-check server for a LAN: apps register themselves over a JSON API, the
//! server polls each app's `/health` on the app's own schedule, runs a threshold state machine and
//! emails the owner when an app degrades, goes down or recovers.
//!
//! The binary is thin: it turns the command line, the environment and the config file into a
//! [`Config`], starts logging, binds the listener and calls [`run`]. Everything else can be driven
//! from a test, on port 0.
//!
//! # Layout
//!
//! From the bottom up; a module imports only modules above it in this list (never one below),
//! so the list is also the import graph.
//!
//! * [`config`]: command line > environment > config file > defaults, validated into a typed
//!   [`Config`], with the file's `[[channel]]` and `[[monitor]]` tables (and with
//!   `config::targets`, the `allowed_targets` list and whether a name or address is in it).
//! * [`identity`]: who this server is (host name, service name, `serviceId`), read once at
//!   start and handed down.
//! * [`text`]: the one rule of which characters of outside text may never show as they are.
//! * [`throttle`]: what one client address may do: connections at once, registrations per
//!   minute (governor's GCRA), monitors created (`max_monitors_per_client`).
//! * [`health`]: the threshold state machine, a pure function of state, counters, outcome and thresholds.
//! * [`telemetry`]: the server's own counters for `/metrics` (checks by outcome, lateness,
//!   delivery results), a few atomic additions on the check path.
//! * [`history`]: what a monitor's checks add up to: uptime and latency over windows of hourly
//!   and daily buckets, and incidents found from the transitions (pure data and functions).
//! * [`push`]: push monitors' pure core (cron jobs and agents that report in): ping keys, the
//!   period or cron schedule in a zone, what a ping does, when the next deadline falls.
//! * [`registry`]: what a user may send: a checked [`registry::AppName`], a registration body
//!   validated into a [`registry::MonitorSpec`] of a [`registry::Kind`] (http, https, tcp, tls,
//!   icmp), the log `limit`; every rejection names the field.
//! * [`probe`]: one check of one app (an HTTP request, a TCP connection, a TLS handshake or an
//!   ICMP echo), always a [`probe::CheckRecord`], never an error; it keeps a body only when it is
//!   a health answer (any other as its size and a keyed hash), and connects only inside
//!   `allowed_targets` ([`probe::Targets`] checks registrations the same way).
//! * [`scheduler`]: when each monitor is checked: fixed-rate timers on one timer wheel.
//! * [`store`]: the SQLite file that keeps registrations, states, alerting states, the check log
//!   and the outbox across restarts and crashes; one writer thread that commits checks in batches.
//!   [`store::postgres`]: the same tables in a PostgreSQL database behind the same [`store::Store`],
//!   which several servers may share.
//! * [`cluster`]: several servers on one PostgreSQL database: the loop that renews this server's
//!   lease, claims its share of the monitors and gives up the surplus.
//! * [`events`]: the live events (checks, transitions, maintenance, changes to the set) for
//!   `GET /api/v1/events`: one broadcast ring that never waits for a slow reader.
//! * [`alerting`]: who is told what and when (held degrades, one message per incident, reminders,
//!   threads): a pure function of a monitor's alerting state, a transition or a check, and the time.
//! * [`notify`]: delivery of what the outbox holds: rendering mail, sending it with retries and
//!   digests, marking each message as it goes.
//! * [`monitors`]: the live set: registering, pausing, removing, taking the config file's
//!   monitors (reconciling), and running each check through
//!   the probe, the state machine and the alert policy into one store write (the check, its
//!   transition and its messages together); the list's JSON of each monitor, kept until it
//!   changes (`monitors/listed.rs`).
//! * [`badge`]: shields-style SVG status badges, a pure function of the words and the colour.
//! * [`metrics`]: `GET /metrics` in the Prometheus text format: the telemetry counters and, read
//!   at scrape time, Uptime Kuma's per-monitor series and the outbox.
//! * [`dashboard`]: the web dashboard's files, embedded at build time.
//! * [`discovery`]: mDNS/DNS-SD: advertising this server on the LAN, under its own name and the
//!   original's (browsing is the client crate's, re-exported here).
//! * [`api`]: the HTTP router: the JSON API under `/api/v1`, `GET /health`, one error type that
//!   maps every refusal to a status; it validates nothing itself. It puts the guards in one place:
//!   reads behind `read_token`, changes behind `token` ([`api::Routes`] for other modules' routes).
//! * [`legacy`]: the original Python HealthChecker.Server's routes under `/healthchecker/`, so its
//!   2020 client works unchanged (its mDNS name is advertised by [`discovery`]); a translation onto
//!   the API's validation and errors, merged into the API's router by [`server`].
//! * [`http`]: serving a router over HTTP/1.1: connection caps (total and per client), header
//!   read and idle timeouts, the request log, graceful shutdown.
//! * [`datadir`]: one server per data folder: the lock a server holds on its folder while it runs.
//! * [`cli`]: the command line: running the server, and the subcommands that talk to a running
//!   one through `healthchecker-client`.
//! * [`admin`]: the subcommands for installing it: `check-config`, `completions`, `man`.
//! * [`server`]: [`run`]: wires the parts together, serves until shutdown, takes the config file's
//!   monitors again on each reload, and shuts down in order.

pub mod admin;
pub mod alerting;
pub mod api;
pub mod badge;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod datadir;
pub mod discovery;
pub mod events;
pub mod health;
pub mod history;
pub mod http;
pub mod identity;
pub mod legacy;
pub mod metrics;
pub mod monitors;
pub mod notify;
pub mod probe;
pub mod push;
pub mod registry;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod throttle;

pub use config::Config;
pub use server::{ServerError, run};

/// This crate's version, as advertised in `/health`, mDNS and the probe's `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
