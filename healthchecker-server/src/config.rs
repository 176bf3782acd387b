//! Server configuration: command line > environment > config file > defaults.
//!
//! Raw input from the three sources is merged by [`figment`] into a [`RawConfig`] (loose types, every
//! key optional), then validated once into the typed [`Config`] that the rest of the server uses.
//! Every error names the option, the bad value and where it came from (the flag, the environment
//! variable or the config file), so a user can fix it without guessing.
//!
//! The defaults live in one place, [`RawConfig::default`]; `--help` and `config.example` repeat
//! them, and tests keep both in step.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

pub mod channel;
pub mod maintenance;
pub mod monitor;
pub mod targets;

/// A table of the config file (`[[channel]]`, `[[monitor]]`, `[[maintenance]]`) that cannot be
/// used: which table, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[{kind}]] {table}: `{field}` {reason}")]
pub struct TableError {
    /// What kind of table: `channel`, `monitor`, `maintenance`.
    pub kind: &'static str,
    /// The table: its name, or its position when it has none.
    pub table: String,
    /// The field.
    pub field: String,
    /// What is wrong, and what is expected.
    pub reason: String,
}

/// Prefix of the environment variables that configure the server (`HEALTHCHECKER_PORT`, ...).
pub const ENV_PREFIX: &str = "HEALTHCHECKER_";

/// The config file read when `--config` is not given; a missing default file is fine.
pub const DEFAULT_CONFIG_FILE: &str = "./config";

/// Set by systemd for a unit with `StateDirectory=` (`/var/lib/healthchecker` for the packaged
/// unit); when set, its first folder replaces `./data` as the default `data_dir`, so the file,
/// the environment and the flag still win over it.
pub const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";

/// Valid `log_retention`: checks kept per monitor.
pub const LOG_RETENTION: std::ops::RangeInclusive<usize> = 10..=100_000;

/// Valid `retention_days`: days transitions and sent mail are kept.
pub const RETENTION_DAYS: std::ops::RangeInclusive<u64> = 1..=3650;

/// Valid `remind_every` when reminders are on: minutes between reminders (0 turns them off).
pub const REMIND_EVERY_MINUTES: std::ops::RangeInclusive<u64> = 5..=10_080;

/// Valid `max_monitors`: apps one server checks.
pub const MAX_MONITORS: std::ops::RangeInclusive<usize> = 1..=1_000_000;

/// Valid `max_registrations_per_minute` (0 turns the limit off).
pub const MAX_REGISTRATIONS_PER_MINUTE: std::ops::RangeInclusive<u32> = 0..=1_000_000;

/// Valid `max_monitors_per_client` (0 turns the limit off).
pub const MAX_MONITORS_PER_CLIENT: std::ops::RangeInclusive<usize> = 0..=1_000_000;

/// Most entries of `allowed_targets`.
pub const ALLOWED_TARGETS_MAX: usize = 1000;

/// The options that hold secrets (the token, the SMTP password inside `smtp_url`): read as text
/// whatever they look like (`HEALTHCHECKER_TOKEN=12345678`, `token = 12345678`), and never shown
/// in an error.
pub const SECRET_OPTIONS: &[&str] = &[
    "smtp_url",
    "database_url",
    "token",
    "read_token",
    "metrics_token",
];

/// Every option a config file or the environment may set, by its full name.
pub const OPTION_NAMES: &[&str] = &[
    "bind_addr",
    "port",
    "data_dir",
    "database_url",
    "server_id",
    "log_retention",
    "retention_days",
    "smtp_url",
    "mail_from",
    "remind_every",
    "token",
    "read_token",
    "metrics_token",
    "allowed_email_domains",
    "allowed_targets",
    "max_monitors",
    "max_monitors_per_client",
    "max_registrations_per_minute",
    "mdns_interface",
    "no_mdns",
    "legacy",
    "verbose",
    "debug",
    "test",
    "default_channels",
    "admin_email",
    "storm_fraction",
    "storm_min",
    "flap_changes",
    "flap_window",
    "public_url",
    "timezone",
];

/// Tables the config file may hold besides the options (`[[channel]]`, `[[monitor]]`,
/// `[[maintenance]]`): file only, never from the environment or the command line.
pub const TABLE_NAMES: &[&str] = &["channel", "monitor", "maintenance"];

/// Options of the server itself, as given on the command line.
///
/// Each one can also come from `HEALTHCHECKER_<OPTION>` or the config file; a flag given here wins.
/// Fields are `Option` so that a flag left out does not hide the environment or the file.
#[derive(Debug, Default, Clone, Args, Serialize)]
pub struct ServeArgs {
    /// Read options from this TOML file (`option_name = value` lines) [default: ./config]
    #[arg(long, value_name = "FILE", env = "HEALTHCHECKER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 0.0.0.0]
    #[arg(long, value_name = "IP", env = "HEALTHCHECKER_BIND_ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_addr: Option<String>,

    /// Port to listen on; 0 lets the system pick a free one [default: 0]
    #[arg(short, long, value_name = "PORT", env = "HEALTHCHECKER_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,

    /// Folder for the database (registrations, states, logs, outbox); under systemd
    /// $STATE_DIRECTORY [default: ./data]
    #[arg(long, value_name = "DIR", env = "HEALTHCHECKER_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,

    /// Checks kept in the health-check log of each monitor, from 10 to 100000; the oldest are
    /// dropped [default: 1000]
    #[arg(long, value_name = "CHECKS", env = "HEALTHCHECKER_LOG_RETENTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_retention: Option<i64>,

    /// PostgreSQL database instead of the SQLite file in data_dir, as a libpq URL:
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE, or for a Unix socket
    /// postgres://USER@/DATABASE?host=/run/postgresql (one server per database for now)
    /// [default: none]
    #[arg(
        long,
        value_name = "URL",
        env = "HEALTHCHECKER_DATABASE_URL",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,

    /// This server's id among the servers sharing one database_url: 1 to 64 letters, digits,
    /// '.', '_' or '-' [default: the host name and 8 random hex digits, new at each start]
    #[arg(long, value_name = "ID", env = "HEALTHCHECKER_SERVER_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,

    /// Days transitions and sent mail are kept, from 1 to 3650 [default: 90]
    #[arg(long, value_name = "DAYS", env = "HEALTHCHECKER_RETENTION_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i64>,

    /// SMTP relay for alert mail, e.g. smtps://user:app-password@smtp.example.com:465; without it
    /// mail is written to the log [default: none]
    #[arg(
        long,
        value_name = "URL",
        env = "HEALTHCHECKER_SMTP_URL",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,

    /// Sender address of alert mail; defaults to healthchecker at this machine's hostname.
    #[arg(
        long,
        value_name = "ADDRESS",
        help = "Sender address of alert mail [default: healthchecker@<hostname>]",
        env = "HEALTHCHECKER_MAIL_FROM"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,

    /// Minutes between reminder mails while an app stays UNHEALTHY, from 5 to 10080 (a week);
    /// 0 sends no reminders [default: 0]
    #[arg(long, value_name = "MINUTES", env = "HEALTHCHECKER_REMIND_EVERY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<i64>,

    /// Advertise over mDNS only on this network interface (repeatable) [default: every
    /// multicast-capable non-loopback interface]
    #[arg(long, value_name = "NAME", env = "HEALTHCHECKER_MDNS_INTERFACE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mdns_interface: Vec<String>,

    /// Do not advertise over mDNS at all [default: false]
    #[arg(long, env = "HEALTHCHECKER_NO_MDNS")]
    #[serde(skip_serializing_if = "is_false")]
    pub no_mdns: bool,

    /// Do not serve the original Python HealthChecker.Server's routes (/healthchecker/...) nor
    /// advertise its mDNS name (_healthchecker._http._tcp); in the environment or the file:
    /// legacy = false [default: false]
    #[arg(long, env = "HEALTHCHECKER_LEGACY")]
    #[serde(
        rename = "legacy",
        skip_serializing_if = "is_false",
        serialize_with = "negated"
    )]
    pub no_legacy: bool,

    /// Require `Authorization: Bearer <TOKEN>` on every call that changes something [default: none]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HEALTHCHECKER_TOKEN",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,

    /// Require `Authorization: Bearer <TOKEN>` (this one, or `token`) on every read: monitors,
    /// logs, events, dashboard data, metrics, badges; the server's own /health stays open
    /// [default: none]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HEALTHCHECKER_READ_TOKEN",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
    /// Require `Authorization: Bearer <TOKEN>` on GET /metrics (Prometheus: `authorization` in
    /// the scrape config); `read_token` and `token` are taken there too [default: none]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "HEALTHCHECKER_METRICS_TOKEN",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<String>,

    /// Accept only recipients in this mail domain (repeatable; subdomains included), so the
    /// server cannot be made to mail strangers [default: any domain]
    #[arg(
        long,
        value_name = "DOMAIN",
        env = "HEALTHCHECKER_ALLOWED_EMAIL_DOMAINS"
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_email_domains: Vec<String>,

    /// Let monitors point only at this address range, address or host name (repeatable, e.g.
    /// 192.168.1.0/24, nas.lan, *.lab.home); names are checked again at every check
    /// [default: anything]
    #[arg(long, value_name = "RANGE|NAME", env = "HEALTHCHECKER_ALLOWED_TARGETS")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_targets: Vec<String>,

    /// Most apps this server monitors; more registrations are refused with 429 [default: 1000]
    #[arg(long, value_name = "COUNT", env = "HEALTHCHECKER_MAX_MONITORS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_monitors: Option<i64>,

    /// Most monitors one client address may create (an IPv6 client: its /64); more are
    /// refused with 429; 0 turns the limit off [default: 100]
    #[arg(
        long,
        value_name = "COUNT",
        env = "HEALTHCHECKER_MAX_MONITORS_PER_CLIENT"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_monitors_per_client: Option<i64>,

    /// Registrations (PUT) accepted per minute from one address; 0 turns the limit off
    /// [default: 60]
    #[arg(
        long,
        value_name = "COUNT",
        env = "HEALTHCHECKER_MAX_REGISTRATIONS_PER_MINUTE"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_registrations_per_minute: Option<i64>,

    /// Log more: what every check and every request does [default: false]
    #[arg(short, long, env = "HEALTHCHECKER_VERBOSE")]
    #[serde(skip_serializing_if = "is_false")]
    pub verbose: bool,

    /// Log everything, the libraries' internals included [default: false]
    #[arg(short, long, env = "HEALTHCHECKER_DEBUG")]
    #[serde(skip_serializing_if = "is_false")]
    pub debug: bool,

    /// Test mode: never send mail, write it to the log instead [default: false]
    #[arg(short, long, env = "HEALTHCHECKER_TEST")]
    #[serde(skip_serializing_if = "is_false")]
    pub test: bool,

    /// A `[[channel]]` of the config file that every monitor's messages also go to
    /// (repeatable) [default: none]
    #[arg(long, value_name = "CHANNEL", env = "HEALTHCHECKER_DEFAULT_CHANNELS")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_channels: Vec<String>,

    /// Who is mailed about the server as a whole (a storm: many monitors failing at once)
    /// (repeatable) [default: none]
    #[arg(long, value_name = "ADDRESS", env = "HEALTHCHECKER_ADMIN_EMAIL")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admin_email: Vec<String>,

    /// A storm (per-app alerts held, one message about the server's network) begins when at
    /// least this fraction of the active monitors fail at once, from 0.1 to 1 [default: 0.5]
    #[arg(long, value_name = "FRACTION", env = "HEALTHCHECKER_STORM_FRACTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm_fraction: Option<f64>,

    /// ... and at least this many, from 2 to 100000 [default: 5]
    #[arg(long, value_name = "COUNT", env = "HEALTHCHECKER_STORM_MIN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm_min: Option<i64>,

    /// A monitor that changes state more than this many times within flap_window is flapping:
    /// told once, not per change, from 2 to 100; 0 turns it off [default: 6]
    #[arg(long, value_name = "COUNT", env = "HEALTHCHECKER_FLAP_CHANGES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap_changes: Option<i64>,

    /// Minutes of flap_window, from 1 to 1440 [default: 30]
    #[arg(long, value_name = "MINUTES", env = "HEALTHCHECKER_FLAP_WINDOW")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap_window: Option<i64>,

    /// This server's URL as the people it mails can reach it (behind a name or a proxy), for
    /// the links in every message; by default `http://` and the address it listens on (this
    /// machine's LAN address for 0.0.0.0) and its port.
    #[arg(
        long,
        value_name = "URL",
        env = "HEALTHCHECKER_PUBLIC_URL",
        help = "This server's URL as the people it mails can reach it (behind a name or a proxy), \
                for the links in every message, e.g. http://healthchecker.lan:8080 \
                [default: http://<listen address, or this machine's LAN address>:<port>]"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,

    /// Time zone of the times in messages (IANA, e.g. Europe/Berlin), shown with their UTC
    /// offset [default: this machine's]
    #[arg(long, value_name = "ZONE", env = "HEALTHCHECKER_TIMEZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl ServeArgs {
    /// `command` with the environment variables of the server's options shown but not read.
    ///
    /// Every option carries clap's `env` so that `--help`, the man page and the completions name
    /// its variable; but the config layer reads the environment itself (it says which variable a
    /// bad value came from, reads secrets as text and lists split at commas), so clap must not
    /// read those variables too: a value clap took from the environment would be reported as a
    /// flag. Parse with the command this returns; show help with the one it was given.
    /// Subcommands that take these options too (`check-config`) get the same treatment.
    pub fn environment_left_to_config(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| {
                let id = arg.get_id().as_str();
                if OPTION_NAMES.contains(&id) || id == "no_legacy" {
                    arg.env(None)
                } else {
                    arg
                }
            })
            .mut_subcommands(ServeArgs::environment_left_to_config)
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `--no-legacy` is the option `legacy = false`.
fn negated<S: serde::Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(!value)
}

/// Every option as it arrives from the merged sources, before validation.
///
/// Its [`Default`] is the one documented place for the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// See [`ServeArgs::bind_addr`].
    pub bind_addr: String,
    /// See [`ServeArgs::port`].
    pub port: i64,
    /// See [`ServeArgs::data_dir`].
    pub data_dir: PathBuf,
    /// See [`ServeArgs::database_url`].
    #[serde(default, deserialize_with = "secret_text")]
    pub database_url: Option<String>,
    /// See [`ServeArgs::server_id`].
    #[serde(default)]
    pub server_id: Option<String>,
    /// See [`ServeArgs::log_retention`].
    pub log_retention: i64,
    /// See [`ServeArgs::retention_days`].
    pub retention_days: i64,
    /// See [`ServeArgs::smtp_url`].
    #[serde(default, deserialize_with = "secret_text")]
    pub smtp_url: Option<String>,
    /// See [`ServeArgs::mail_from`].
    pub mail_from: Option<String>,
    /// See [`ServeArgs::remind_every`].
    pub remind_every: i64,
    /// See [`ServeArgs::mdns_interface`].
    #[serde(deserialize_with = "one_or_many")]
    pub mdns_interface: Vec<String>,
    /// See [`ServeArgs::no_mdns`].
    pub no_mdns: bool,
    /// The original's routes and mDNS name; see [`ServeArgs::no_legacy`].
    pub legacy: bool,
    /// See [`ServeArgs::token`].
    #[serde(default, deserialize_with = "secret_text")]
    pub token: Option<String>,
    /// See [`ServeArgs::read_token`].
    #[serde(default, deserialize_with = "secret_text")]
    pub read_token: Option<String>,
    /// See [`ServeArgs::metrics_token`].
    #[serde(default, deserialize_with = "secret_text")]
    pub metrics_token: Option<String>,
    /// See [`ServeArgs::allowed_email_domains`].
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_email_domains: Vec<String>,
    /// See [`ServeArgs::allowed_targets`].
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_targets: Vec<String>,
    /// See [`ServeArgs::max_monitors`].
    pub max_monitors: i64,
    /// See [`ServeArgs::max_monitors_per_client`].
    pub max_monitors_per_client: i64,
    /// See [`ServeArgs::max_registrations_per_minute`].
    pub max_registrations_per_minute: i64,
    /// See [`ServeArgs::verbose`].
    pub verbose: bool,
    /// See [`ServeArgs::debug`].
    pub debug: bool,
    /// See [`ServeArgs::test`].
    pub test: bool,
    /// See [`ServeArgs::default_channels`].
    #[serde(deserialize_with = "one_or_many")]
    pub default_channels: Vec<String>,
    /// See [`ServeArgs::admin_email`].
    #[serde(deserialize_with = "one_or_many")]
    pub admin_email: Vec<String>,
    /// See [`ServeArgs::storm_fraction`].
    pub storm_fraction: f64,
    /// See [`ServeArgs::storm_min`].
    pub storm_min: i64,
    /// See [`ServeArgs::flap_changes`].
    pub flap_changes: i64,
    /// See [`ServeArgs::flap_window`].
    pub flap_window: i64,
    /// See [`ServeArgs::public_url`].
    pub public_url: Option<String>,
    /// See [`ServeArgs::timezone`].
    pub timezone: Option<String>,
    /// The `[[channel]]` tables of the config file.
    #[serde(default)]
    pub channel: Vec<channel::RawChannel>,
    /// The `[[monitor]]` tables of the config file.
    #[serde(default)]
    pub monitor: Vec<monitor::RawMonitor>,
    /// The `[[maintenance]]` tables of the config file.
    #[serde(default)]
    pub maintenance: Vec<maintenance::RawWindow>,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            bind_addr: "0.0.0.0".to_owned(),
            port: 0,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            server_id: None,
            log_retention: 1000,
            retention_days: 90,
            smtp_url: None,
            mail_from: None,
            remind_every: 0,
            mdns_interface: Vec::new(),
            no_mdns: false,
            legacy: true,
            token: None,
            read_token: None,
            metrics_token: None,
            allowed_email_domains: Vec::new(),
            allowed_targets: Vec::new(),
            max_monitors: 1000,
            max_monitors_per_client: 100,
            max_registrations_per_minute: 60,
            verbose: false,
            debug: false,
            test: false,
            default_channels: Vec::new(),
            admin_email: Vec::new(),
            storm_fraction: 0.5,
            storm_min: 5,
            flap_changes: 6,
            flap_window: 30,
            public_url: None,
            timezone: None,
            channel: Vec::new(),
            monitor: Vec::new(),
            maintenance: Vec::new(),
        }
    }
}

/// A secret as text, whatever it looks like: a string, or a whole number or `true`/`false` that
/// the config file's TOML (or a flag) read as one, written back as it was. A fractional number
/// is refused, since its text may not survive (`1.50` reads as `1.5`); no error shows the value.
fn secret_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Whole(i64),
        Large(u64),
        Switch(bool),
    }
    Ok(
        Option::<Written>::deserialize(deserializer)?.map(|written| match written {
            Written::Text(text) => text,
            Written::Whole(number) => number.to_string(),
            Written::Large(number) => number.to_string(),
            Written::Switch(value) => value.to_string(),
        }),
    )
}

/// The secret options from the environment, as the text they are: figment's [`Env`] would read
/// `HEALTHCHECKER_TOKEN=0012345678` as the number 12345678.
struct SecretsFromEnv;

impl Provider for SecretsFromEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named(SOURCE_ENV)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let env = Env::prefixed(ENV_PREFIX).only(SECRET_OPTIONS);
        let dict: Dict = env
            .iter()
            .map(|(key, text)| (key.into_string(), figment::value::Value::from(text)))
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// Accepts a list, one string, or one comma-separated string (handy in an environment variable).
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(names) => names,
    })
}

/// A value that must never be printed: it shows as `***` in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `secret` so that it is never printed.
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How much the server logs (`RUST_LOG`, when set, overrides it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Start-up, transitions, mail and problems.
    Normal,
    /// `--verbose`: also every check and every request.
    Verbose,
    /// `--debug`: everything, the libraries included.
    Debug,
}

impl LogLevel {
    /// The `tracing_subscriber::EnvFilter` directive for this level.
    ///
    /// The certificate verifier's own error line is off below `--debug`: a failed verification is
    /// the check's `tls` failure, logged and stored with its reason already.
    pub fn filter_directive(self) -> &'static str {
        match self {
            LogLevel::Normal => "info,rustls_platform_verifier=off",
            LogLevel::Verbose => "info,healthchecker_server=debug,rustls_platform_verifier=off",
            LogLevel::Debug => "debug,healthchecker_server=trace",
        }
    }
}

/// Whether and where the server advertises itself over mDNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mdns {
    /// `--no-mdns`: no mDNS daemon is created at all.
    Off,
    /// Advertise on these interfaces; an empty list means every usable interface.
    On {
        /// Interface names given with `--mdns-interface`.
        interfaces: Vec<String>,
    },
}

/// The SMTP relay that alert mail goes through.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(Url);

impl SmtpUrl {
    /// The full URL, credentials included: for building the transport only.
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for SmtpUrl {
    /// Shows the URL with the password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // Cannot fail: the URL already has a host, since it has a password.
            let _ = shown.set_password(Some("***"));
        }
        write!(f, "{shown}")
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

/// The validated configuration of a server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Address the HTTP API listens on.
    pub bind_addr: IpAddr,
    /// Port the HTTP API listens on; 0 lets the system choose.
    pub port: u16,
    /// Folder of the database.
    pub data_dir: PathBuf,
    /// A PostgreSQL database to keep everything in instead of the SQLite file in `data_dir`;
    /// `None`: the file.
    pub database_url: Option<crate::store::DatabaseUrl>,
    /// This server's id among those sharing `database_url` (see [`crate::cluster`]); `None`:
    /// one made at start ([`crate::cluster::default_server_id`]).
    pub server_id: Option<String>,
    /// Checks kept in the health-check log of each monitor (the oldest are dropped).
    pub log_retention: usize,
    /// How long transitions and sent mail are kept.
    pub retention: Duration,
    /// SMTP relay; `None` writes mail to the log.
    pub smtp_url: Option<SmtpUrl>,
    /// Sender of alert mail (an RFC 5322 mailbox); `None` uses `healthchecker@<hostname>`.
    pub mail_from: Option<String>,
    /// Time between reminder mails while an app stays `UNHEALTHY`; `None`: no reminders.
    pub remind_every: Option<Duration>,
    /// mDNS advertising.
    pub mdns: Mdns,
    /// Whether the original Python HealthChecker.Server's routes and mDNS name are served
    /// ([`crate::legacy`]).
    pub legacy: bool,
    /// Bearer token required for changes; `None` leaves the API open.
    pub token: Option<Secret>,
    /// Bearer token required for reads (`token` is taken too); `None` leaves reads open.
    pub read_token: Option<Secret>,
    /// Bearer token required for `GET /metrics`; `None`: guarded like
    /// every read (`read_token`).
    pub metrics_token: Option<Secret>,
    /// Mail domains recipients must be in (lowercase, no leading `@`); empty allows any.
    pub allowed_email_domains: Vec<String>,
    /// What monitors may point at; `None` allows anything.
    pub allowed_targets: Option<targets::AllowedTargets>,
    /// Most monitors one server keeps.
    pub max_monitors: usize,
    /// Most monitors one client address may create; `None`: no limit.
    pub max_monitors_per_client: Option<usize>,
    /// Registrations accepted per minute from one client address; `None`: no limit.
    pub max_registrations_per_minute: Option<u32>,
    /// How much to log.
    pub log_level: LogLevel,
    /// Never send mail, log it instead.
    pub test_mode: bool,
    /// The config file that was read, if one was.
    pub config_file: Option<PathBuf>,
    /// The channels of the config file's `[[channel]]` tables.
    pub channels: Vec<channel::Channel>,
    /// The channels every monitor's messages go to, besides its own (`default_channels`).
    pub default_channels: Vec<String>,
    /// The monitors of the config file's `[[monitor]]` tables.
    pub monitors: Vec<monitor::Declared>,
    /// The scheduled maintenance windows of the config file's `[[maintenance]]` tables.
    pub maintenance: Vec<maintenance::Window>,
    /// Who is mailed about the server as a whole.
    pub admin_email: Vec<String>,
    /// The fraction of active monitors failing at once that makes a storm.
    pub storm_fraction: f64,
    /// The fewest failing monitors that make a storm.
    pub storm_min: usize,
    /// More changes than this within `flap_window` make a monitor flapping; 0: off.
    pub flap_changes: u32,
    /// See `flap_changes`.
    pub flap_window: Duration,
    /// This server's base URL as the recipients of its messages reach it, and the base of push
    /// monitors' ping URLs; `None`: derived from the listening address (ping URLs: from the
    /// address the registration was sent to).
    pub public_url: Option<Url>,
    /// The time zone of the times in messages.
    pub timezone: Zone,
}

/// The time zone of the times a user reads (mail, the CLI), always shown with its UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// This machine's (`TZ`, `/etc/localtime`), the default.
    Host,
    /// A named IANA zone (`timezone = "Europe/Berlin"`).
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `2026-11-21 09:51:11 +01:00`: `time` in this zone, with its UTC offset.
    pub fn format(self, time: chrono::DateTime<chrono::Utc>) -> String {
        const FORMAT: &str = "%Y-%m-%d %H:%M:%S %:z";
        match self {
            Zone::Host => time
                .with_timezone(&chrono::Local)
                .format(FORMAT)
                .to_string(),
            Zone::Named(tz) => time.with_timezone(&tz).format(FORMAT).to_string(),
        }
    }
}

impl Default for Config {
    /// The configuration with every option at its default and no file read.
    fn default() -> Self {
        validate(RawConfig::default(), &Figment::new())
            .unwrap_or_else(|error| unreachable!("the defaults are valid: {error}"))
    }
}

/// A configuration that cannot be used; the message names the option, the value and its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--config FILE` (or `HEALTHCHECKER_CONFIG`) names a file that cannot be read.
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The config file has an option this server does not know.
    #[error(
        "unknown option `{key}` in config file {path}{}; known options: {}",
        did_you_mean(key, OPTION_NAMES),
        OPTION_NAMES.join(", ")
    )]
    UnknownKey {
        /// The unknown key.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// An option has a value that is not valid.
    #[error("invalid value {value} for option `{key}` from {origin}: {reason}")]
    Invalid {
        /// The option.
        key: String,
        /// The value as given (secrets shown as `***`).
        value: String,
        /// Where it came from: a flag, an environment variable or a file.
        origin: String,
        /// What is expected instead.
        reason: String,
    },
    /// The file or a value could not be parsed at all (bad TOML syntax, a string for a number...).
    #[error("{0}")]
    Parse(String),
    /// A table of the config file (`[[channel]]`) cannot be used.
    #[error("{source} (config file {})", path.as_ref().map_or_else(|| "none".to_owned(), |path| path.display().to_string()))]
    Table {
        /// The config file.
        path: Option<PathBuf>,
        /// Which table, which field, and why.
        #[source]
        source: TableError,
    },
}

/// Names given to the sources, so errors can say where a value came from.
const SOURCE_DEFAULT: &str = "default";
const SOURCE_CLI: &str = "command line";
const SOURCE_ENV: &str = "environment";
const SOURCE_SYSTEMD: &str = "systemd";

/// A provider with our own name on it.
struct Named<P> {
    inner: P,
    name: &'static str,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

impl Config {
    /// Resolves the configuration from the command line, the process environment, the config file
    /// and the defaults, in that order of precedence, and validates it.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the option, the value and its source when anything is invalid, or
    /// when an explicitly named config file is missing.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        Self::resolve(args).map(|(config, _)| config)
    }

    /// [`Config::load`], and the merged sources it was validated from.
    fn resolve(args: &ServeArgs) -> Result<(Config, Figment), ConfigError> {
        let (path, explicit) = match &args.config {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let file = read_file(&path, explicit)?;
        let mut figment = Figment::new().merge(Named {
            inner: Serialized::defaults(RawConfig::default()),
            name: SOURCE_DEFAULT,
        });
        if let Some(dir) = state_directory() {
            figment = figment.merge(Named {
                inner: Serialized::default("data_dir", dir),
                name: SOURCE_SYSTEMD,
            });
        }
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let figment = figment
            .merge(Named {
                inner: Env::prefixed(ENV_PREFIX)
                    .only(OPTION_NAMES)
                    .ignore(SECRET_OPTIONS),
                name: SOURCE_ENV,
            })
            .merge(SecretsFromEnv)
            .merge(Named {
                inner: Serialized::defaults(args),
                name: SOURCE_CLI,
            });
        let raw: RawConfig = figment
            .extract()
            .map_err(|error| parse_error(error, &path))?;
        let mut config = validate(raw, &figment).map_err(|error| match error {
            ConfigError::Table { source, .. } => ConfigError::Table {
                path: file.clone(),
                source,
            },
            other => other,
        })?;
        config.config_file = file;
        Ok((config, figment))
    }
}

/// The first folder of `$STATE_DIRECTORY` (systemd separates several with `:`), if set.
fn state_directory() -> Option<PathBuf> {
    let value = std::env::var_os(STATE_DIRECTORY_ENV)?;
    let first = value.to_str()?.split(':').next()?;
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// Checks the config file: absent is fine unless it was asked for; every key must be known.
/// Returns the path when there is a file to read.
fn read_file(path: &Path, explicit: bool) -> Result<Option<PathBuf>, ConfigError> {
    if !path.exists() {
        return if explicit {
            Err(ConfigError::Unreadable {
                path: path.to_owned(),
                reason: "no such file".to_owned(),
            })
        } else {
            Ok(None)
        };
    }
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let data = Toml::file_exact(&path)
        .data()
        .map_err(|error| parse_error(error, &path))?;
    for dict in data.values() {
        if let Some(key) = dict.keys().find(|key| {
            !OPTION_NAMES.contains(&key.as_str()) && !TABLE_NAMES.contains(&key.as_str())
        }) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                path,
            });
        }
    }
    Ok(Some(path))
}

/// Describes where a value came from, in the words a user would search for.
fn describe_source(metadata: Option<&Metadata>, key: &str) -> String {
    match metadata {
        Some(md) if md.name == SOURCE_ENV => {
            format!(
                "environment variable {ENV_PREFIX}{}",
                key.to_ascii_uppercase()
            )
        }
        // `legacy` is on by default: its flag is the one that turns it off.
        Some(md) if md.name == SOURCE_CLI && key == "legacy" => "flag --no-legacy".to_owned(),
        Some(md) if md.name == SOURCE_CLI => format!("flag --{}", key.replace('_', "-")),
        Some(md) if md.name == SOURCE_DEFAULT => "the default".to_owned(),
        Some(md) if md.name == SOURCE_SYSTEMD => {
            format!("environment variable {STATE_DIRECTORY_ENV} (systemd's StateDirectory=)")
        }
        Some(md) => match &md.source {
            Some(figment::Source::File(path)) => format!("config file {}", path.display()),
            _ => md.name.to_string(),
        },
        None => "the configuration".to_owned(),
    }
}

fn parse_error(error: figment::Error, file: &Path) -> ConfigError {
    let messages: Vec<String> = error
        .into_iter()
        .map(|error| {
            let key = error.path.last().cloned().unwrap_or_default();
            let source = match error.metadata.as_ref() {
                Some(md) if md.source.is_some() || md.name != SOURCE_DEFAULT => {
                    describe_source(Some(md), &key)
                }
                _ => format!("config file {}", file.display()),
            };
            // serde speaks of Rust types; users think of numbers and switches. A secret's
            // value is never shown, not even as what serde found instead.
            let reason = if SECRET_OPTIONS.contains(&key.as_str()) {
                "expected text (write it in double quotes); the value is not shown".to_owned()
            } else {
                in_words(&error.kind)
            };
            if key.is_empty() {
                format!("{source}: {reason}")
            } else {
                format!("invalid value for option `{key}` from {source}: {reason}")
            }
        })
        .collect();
    ConfigError::Parse(messages.join("\n"))
}

/// What serde found wrong, in a user's words: "expected a whole number, found the text
/// \"eighty\"", never `i64`; an unknown field with the nearest known one.
fn in_words(kind: &figment::error::Kind) -> String {
    use figment::error::{Actual, Kind};
    let found = |actual: &Actual| match actual {
        Actual::Str(text) => format!("the text \"{text}\""),
        Actual::Bool(value) => format!("{value} (a switch)"),
        Actual::Signed(number) => format!("the number {number}"),
        Actual::Unsigned(number) => format!("the number {number}"),
        Actual::Float(number) => format!("the number {number}"),
        Actual::Char(c) => format!("the text \"{c}\""),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => other.to_string(),
    };
    match kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!(
                "expected {}, found {}",
                expected_in_words(expected),
                found(actual)
            )
        }
        Kind::UnknownField(field, known) => {
            format!(
                "unknown field `{field}`{}; known fields: {}",
                did_you_mean(field, known),
                known.join(", ")
            )
        }
        Kind::UnknownVariant(variant, known) => format!(
            "unknown value `{variant}`{}; expected one of {}",
            did_you_mean(variant, known),
            known.join(", ")
        ),
        Kind::MissingField(field) => format!("`{field}` is missing"),
        Kind::DuplicateField(field) => format!("`{field}` is given twice"),
        // `one_or_many`'s shapes, which serde names by the Rust type.
        Kind::Message(message) if message.contains("untagged enum OneOrMany") => {
            "expected a list such as [\"a\", \"b\"], or one text (commas separate several)"
                .to_owned()
        }
        other => other.to_string(),
    }
}

/// A Rust type named by serde, as a user would say it.
fn expected_in_words(expected: &str) -> &str {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "string" | "a borrowed string" => "text in double quotes",
        "a sequence" => "a list such as [\"a\", \"b\"]",
        "a map" => "a table",
        other => other,
    }
}

/// `"; did you mean `port`?"` when one of `known` is within a typo of `given`, else nothing.
///
/// A typo here is at most one edit (a swapped pair counts as one) in a short name and a third
/// of the letters in a long one: close enough that the suggestion is the likely intent.
pub fn did_you_mean(given: &str, known: &[&str]) -> String {
    let most = (given.chars().count() / 3).max(1);
    known
        .iter()
        .map(|name| (strsim::damerau_levenshtein(given, name), *name))
        .filter(|(distance, _)| *distance <= most)
        .min()
        .map(|(_, name)| format!("; did you mean `{name}`?"))
        .unwrap_or_default()
}

/// Turns the merged raw options into a typed [`Config`].
fn validate(raw: RawConfig, figment: &Figment) -> Result<Config, ConfigError> {
    let invalid = |key: &str, value: &dyn fmt::Display, reason: &str| ConfigError::Invalid {
        key: key.to_owned(),
        value: format!("`{value}`"),
        origin: describe_source(figment.find_metadata(key), key),
        reason: reason.to_owned(),
    };

    let bind_addr: IpAddr = raw.bind_addr.trim().parse().map_err(|_| {
        invalid(
            "bind_addr",
            &raw.bind_addr,
            "expected an IPv4 or IPv6 address such as 0.0.0.0, 127.0.0.1 or ::",
        )
    })?;
    let port = u16::try_from(raw.port).map_err(|_| {
        invalid(
            "port",
            &raw.port,
            "expected a port from 0 to 65535 (0: any free port)",
        )
    })?;
    if raw.data_dir.as_os_str().is_empty() {
        return Err(invalid("data_dir", &"", "expected a folder path"));
    }
    let log_retention = usize::try_from(raw.log_retention)
        .ok()
        .filter(|checks| LOG_RETENTION.contains(checks))
        .ok_or_else(|| {
            invalid(
                "log_retention",
                &raw.log_retention,
                "expected a number of checks from 10 to 100000",
            )
        })?;
    let retention_days = u64::try_from(raw.retention_days)
        .ok()
        .filter(|days| RETENTION_DAYS.contains(days))
        .ok_or_else(|| {
            invalid(
                "retention_days",
                &raw.retention_days,
                "expected a number of days from 1 to 3650",
            )
        })?;
    let database_url = raw
        .database_url
        .as_deref()
        .map(|text| {
            crate::store::DatabaseUrl::parse(text.trim()).map_err(|error| {
                // The text may hold a password: shown as what it parses to, or not at all.
                invalid("database_url", &"***", &error.to_string())
            })
        })
        .transpose()?;
    let server_id = match raw.server_id {
        Some(id) => Some({
            let id = id.trim().to_owned();
            let valid = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid {
                return Err(invalid(
                    "server_id",
                    &id,
                    "expected 1 to 64 letters, digits, '.', '_' or '-'",
                ));
            }
            id
        }),
        None => None,
    };
    let smtp_url = raw
        .smtp_url
        .as_deref()
        .map(|text| {
            parse_smtp_url(text).map_err(|reason| invalid("smtp_url", &redact_url(text), &reason))
        })
        .transpose()?;
    let mail_from = raw
        .mail_from
        .map(|text| {
            text.parse::<lettre::message::Mailbox>()
                .map(|mailbox| mailbox.to_string())
                .map_err(|_| {
                    invalid(
                        "mail_from",
                        &text,
                        "expected an email address such as healthchecker@example.com or \"Health Checker <hc@example.com>\"",
                    )
                })
        })
        .transpose()?;
    let remind_every = u64::try_from(raw.remind_every)
        .ok()
        .filter(|minutes| *minutes == 0 || REMIND_EVERY_MINUTES.contains(minutes))
        .ok_or_else(|| {
            invalid(
                "remind_every",
                &raw.remind_every,
                "expected a number of minutes from 5 to 10080, or 0 for no reminders",
            )
        })?;
    let remind_every = (remind_every > 0).then(|| Duration::from_secs(remind_every * 60));
    if let Some(bad) = raw.mdns_interface.iter().find(|name| {
        name.is_empty()
            || name.len() > 64
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
    }) {
        return Err(invalid(
            "mdns_interface",
            bad,
            "expected network interface names such as eth0",
        ));
    }
    let mdns = if raw.no_mdns {
        Mdns::Off
    } else {
        Mdns::On {
            interfaces: raw.mdns_interface,
        }
    };
    let secret = |key: &str, token: Option<String>| {
        token
            .map(|token| {
                if token.len() < 8 || token.chars().any(|c| !c.is_ascii_graphic()) {
                    Err(invalid(
                        key,
                        &"***",
                        "expected at least 8 printable ASCII characters without spaces",
                    ))
                } else {
                    Ok(Secret(token))
                }
            })
            .transpose()
    };
    let token = secret("token", raw.token)?;
    let read_token = secret("read_token", raw.read_token)?;
    let metrics_token = secret("metrics_token", raw.metrics_token)?;
    let mut allowed_email_domains = Vec::with_capacity(raw.allowed_email_domains.len());
    for domain in &raw.allowed_email_domains {
        let normal = domain.trim().trim_start_matches('@').to_ascii_lowercase();
        let valid = !normal.is_empty()
            && normal.len() <= 253
            && normal.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(invalid(
                "allowed_email_domains",
                domain,
                "expected mail domains such as example.com",
            ));
        }
        allowed_email_domains.push(normal);
    }
    let max_monitors = usize::try_from(raw.max_monitors)
        .ok()
        .filter(|count| MAX_MONITORS.contains(count))
        .ok_or_else(|| {
            invalid(
                "max_monitors",
                &raw.max_monitors,
                "expected a number of apps from 1 to 1000000",
            )
        })?;
    let max_monitors_per_client = usize::try_from(raw.max_monitors_per_client)
        .ok()
        .filter(|count| MAX_MONITORS_PER_CLIENT.contains(count))
        .ok_or_else(|| {
            invalid(
                "max_monitors_per_client",
                &raw.max_monitors_per_client,
                "expected a number of monitors from 0 (no limit) to 1000000",
            )
        })?;
    if raw.allowed_targets.len() > ALLOWED_TARGETS_MAX {
        return Err(invalid(
            "allowed_targets",
            &format!("{} entries", raw.allowed_targets.len()),
            &format!("expected at most {ALLOWED_TARGETS_MAX} ranges and names"),
        ));
    }
    let allowed_targets =
        targets::AllowedTargets::parse(&raw.allowed_targets).map_err(|error| {
            invalid(
                "allowed_targets",
                &error.entry,
                "expected address ranges such as 192.168.1.0/24 or fd00::/8, addresses such as \
             192.168.1.20, or host names such as nas.lan or *.lab.home",
            )
        })?;
    let max_registrations_per_minute = u32::try_from(raw.max_registrations_per_minute)
        .ok()
        .filter(|count| MAX_REGISTRATIONS_PER_MINUTE.contains(count))
        .ok_or_else(|| {
            invalid(
                "max_registrations_per_minute",
                &raw.max_registrations_per_minute,
                "expected a number from 0 (no limit) to 1000000",
            )
        })?;
    let channels = channel::validate(&raw.channel, &raw.default_channels)
        .map_err(|source| ConfigError::Table { path: None, source })?;
    let monitors = monitor::validate(&raw.monitor, &channels)
        .map_err(|source| ConfigError::Table { path: None, source })?;
    let maintenance = maintenance::validate(&raw.maintenance)
        .map_err(|source| ConfigError::Table { path: None, source })?;
    for address in &raw.admin_email {
        if address.parse::<lettre::Address>().is_err() {
            return Err(invalid(
                "admin_email",
                address,
                "expected mail addresses such as admin@example.com",
            ));
        }
    }
    if !(0.1..=1.0).contains(&raw.storm_fraction) {
        return Err(invalid(
            "storm_fraction",
            &raw.storm_fraction,
            "expected a fraction from 0.1 to 1 (0.5: half of the active monitors)",
        ));
    }
    let storm_min = usize::try_from(raw.storm_min)
        .ok()
        .filter(|count| (2..=100_000).contains(count))
        .ok_or_else(|| {
            invalid(
                "storm_min",
                &raw.storm_min,
                "expected a number of monitors from 2 to 100000",
            )
        })?;
    let flap_changes = u32::try_from(raw.flap_changes)
        .ok()
        .filter(|count| *count == 0 || (2..=100).contains(count))
        .ok_or_else(|| {
            invalid(
                "flap_changes",
                &raw.flap_changes,
                "expected a number of changes from 2 to 100, or 0 to turn flapping off",
            )
        })?;
    let flap_window = u64::try_from(raw.flap_window)
        .ok()
        .filter(|minutes| (1..=1440).contains(minutes))
        .ok_or_else(|| {
            invalid(
                "flap_window",
                &raw.flap_window,
                "expected a number of minutes from 1 to 1440",
            )
        })?;
    let public_url = raw
        .public_url
        .as_deref()
        .map(|text| {
            Url::parse(text.trim())
                .ok()
                .filter(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.host_str().is_some_and(|host| !host.is_empty())
                        && url.query().is_none()
                        && url.fragment().is_none()
                        && url.username().is_empty()
                        && url.password().is_none()
                })
                .ok_or_else(|| {
                    invalid(
                        "public_url",
                        &text,
                        "expected an http:// or https:// URL such as http://healthchecker.lan:8080, \
                         without user, query or #",
                    )
                })
        })
        .transpose()?;
    let timezone = match raw.timezone.as_deref().map(str::trim) {
        None | Some("") => Zone::Host,
        Some(name) => maintenance::parse_tz(name)
            .map(Zone::Named)
            .map_err(|reason| invalid("timezone", &name, &reason))?,
    };
    let log_level = if raw.debug {
        LogLevel::Debug
    } else if raw.verbose {
        LogLevel::Verbose
    } else {
        LogLevel::Normal
    };
    Ok(Config {
        bind_addr,
        port,
        data_dir: raw.data_dir,
        database_url,
        server_id,
        log_retention,
        retention: Duration::from_secs(retention_days * 24 * 60 * 60),
        smtp_url,
        mail_from,
        remind_every,
        mdns,
        token,
        read_token,
        metrics_token,
        allowed_email_domains,
        allowed_targets,
        max_monitors,
        max_monitors_per_client: (max_monitors_per_client > 0).then_some(max_monitors_per_client),
        max_registrations_per_minute: (max_registrations_per_minute > 0)
            .then_some(max_registrations_per_minute),
        log_level,
        test_mode: raw.test,
        legacy: raw.legacy,
        config_file: None,
        channels,
        default_channels: raw.default_channels,
        monitors,
        maintenance,
        admin_email: raw.admin_email,
        storm_fraction: raw.storm_fraction,
        storm_min,
        flap_changes,
        flap_window: Duration::from_secs(flap_window * 60),
        public_url,
        timezone,
    })
}

/// Checks an SMTP URL completely, as lettre will read it, so that every mistake is a start
/// error naming what is wrong instead of a library message when the first mail is sent: the
/// scheme, the host, the one query parameter lettre knows (`tls`, `required` or `opportunistic`,
/// and only with `smtp://`), and credentials that percent-decode to text. No reason quotes the
/// user name or the password.
fn parse_smtp_url(text: &str) -> Result<SmtpUrl, String> {
    const EXPECTED: &str = "expected smtp://host[:port], smtp://host?tls=required (STARTTLS) or \
                            smtps://user:password@host[:port] (implicit TLS)";
    let url = Url::parse(text.trim()).map_err(|_| EXPECTED.to_owned())?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none_or(str::is_empty) {
        return Err(EXPECTED.to_owned());
    }
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "tls" if tls.is_some() => return Err("`tls=` is given twice; give it once".to_owned()),
            "tls" => tls = Some(value.into_owned()),
            other => {
                return Err(format!(
                    "unknown query parameter `{other}`; the only one is tls=required \
                     (STARTTLS) or tls=opportunistic (STARTTLS when the relay offers it)"
                ));
            }
        }
    }
    match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("required" | "opportunistic")) | (_, None) => {}
        ("smtps", Some(_)) => {
            return Err(
                "smtps:// is always TLS from the first byte: drop `?tls=`, or use \
                        smtp://host:587?tls=required for STARTTLS"
                    .to_owned(),
            );
        }
        (_, Some(other)) => {
            return Err(format!(
                "`tls={other}` is not a TLS mode: use tls=required (STARTTLS, refuse a relay \
                 without it) or tls=opportunistic (STARTTLS when offered), or smtps:// for \
                 implicit TLS"
            ));
        }
    }
    if url.fragment().is_some() {
        return Err("an SMTP URL has no `#` part (a `#` in a password is written %23)".to_owned());
    }
    let decodes = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .is_ok()
    };
    if !decodes(url.username()) || !url.password().is_none_or(decodes) {
        return Err("the user name or password is not valid percent-encoded UTF-8".to_owned());
    }
    if url.password().is_some() && url.username().is_empty() {
        return Err("a password needs a user name: smtps://user:password@host".to_owned());
    }
    Ok(SmtpUrl(url))
}

/// An SMTP URL as it may be shown in an error: the password replaced.
fn redact_url(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) => SmtpUrl(url).to_string(),
        Err(_) if text.contains('@') => "***".to_owned(),
        Err(_) => text.to_owned(),
    }
}

/// Words that make an option a secret wherever they appear in its name (`token`, a future
/// `smtp_password` or `webhook_secret`): [`Config::load_with_sources`] shows its value as `***`.
/// Passwords inside URLs (`smtp_url`) are masked in any option.
pub const SECRET_WORDS: &[&str] = &["token", "password", "secret", "credential", "key"];

/// One option as `check-config` shows it: the value in effect and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The option's name, as in the config file.
    pub option: &'static str,
    /// Its value in effect, written as TOML with secrets masked; `None` when it is not set.
    pub value: Option<String>,
    /// Where the value came from: a flag, an environment variable, the config file or the default.
    pub source: String,
}

impl Config {
    /// [`Config::load`], and every option of [`OPTION_NAMES`] with the value in effect (secrets
    /// masked, see [`SECRET_WORDS`]) and where it came from, in that order.
    ///
    /// # Errors
    ///
    /// The same [`ConfigError`] as [`Config::load`].
    pub fn load_with_sources(args: &ServeArgs) -> Result<(Config, Vec<Setting>), ConfigError> {
        let (config, figment) = Self::resolve(args)?;
        let raw: RawConfig = figment
            .extract()
            .map_err(|error| ConfigError::Parse(error.to_string()))?;
        let values =
            serde_json::to_value(&raw).map_err(|error| ConfigError::Parse(error.to_string()))?;
        let settings = OPTION_NAMES
            .iter()
            .map(|&option| Setting {
                option,
                value: values
                    .get(option)
                    .filter(|value| !value.is_null())
                    .map(|value| shown_value(option, value)),
                source: describe_source(figment.find_metadata(option), option),
            })
            .collect();
        Ok((config, settings))
    }
}

/// Whether `option` holds a secret, by its name.
fn is_secret(option: &str) -> bool {
    SECRET_WORDS.iter().any(|word| option.contains(word))
}

/// `value` as TOML, with a secret option shown as `"***"` and URL passwords masked.
fn shown_value(option: &str, value: &serde_json::Value) -> String {
    use serde_json::Value;
    fn mask(value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(mask_url_password(text)),
            Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
            other => other.clone(),
        }
    }
    let value = if is_secret(option) {
        Value::String("***".to_owned())
    } else if option == "database_url" {
        // Its password may be in the query (`?password=`) too: shown as it parses, never as written.
        Value::String(match value.as_str().map(crate::store::DatabaseUrl::parse) {
            Some(Ok(url)) => url.to_string(),
            _ => "***".to_owned(),
        })
    } else {
        mask(value)
    };
    // Strings, numbers, switches and lists of strings read the same in JSON and TOML.
    value.to_string()
}

/// `text` unchanged, unless it is a URL with a password: then the password shows as `***`.
fn mask_url_password(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) if url.password().is_some() => SmtpUrl(url).to_string(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_is_checked_and_its_password_never_shown() {
        let raw = |url: &str| RawConfig {
            database_url: Some(url.to_owned()),
            ..RawConfig::default()
        };
        let config = validate(raw("postgres://hc:pw-1@db.lan/health"), &Figment::new())
            .expect("a valid URL");
        assert_eq!(
            config.database_url.map(|url| url.to_string()).as_deref(),
            Some("postgres://hc@db.lan:5432/health")
        );
        assert_eq!(Config::default().database_url, None);
        let error = validate(raw("mysql://root:pw-2@db.lan/x"), &Figment::new())
            .expect_err("not PostgreSQL")
            .to_string();
        assert!(
            error.contains("`database_url`") && error.contains("postgres://"),
            "{error}"
        );
        assert!(!error.contains("pw-2"), "{error}");
        let shown = shown_value(
            "database_url",
            &serde_json::json!("postgres://hc:pw-3@db.lan/health?password=pw-4"),
        );
        assert_eq!(shown, r#""postgres://hc@db.lan:5432/health""#);
        let shown = shown_value("database_url", &serde_json::json!("pw-5 pasted here"));
        assert_eq!(shown, r#""***""#);
    }

    #[test]
    fn defaults_are_valid_and_documented_in_one_place() {
        let config = Config::default();
        assert_eq!(config.bind_addr.to_string(), "0.0.0.0");
        assert_eq!(config.port, 0);
        assert_eq!(config.mdns, Mdns::On { interfaces: vec![] });
        assert_eq!(config.log_level, LogLevel::Normal);
        assert!(config.smtp_url.is_none() && config.token.is_none() && !config.test_mode);
    }

    #[test]
    fn smtp_password_never_shows() {
        let url = parse_smtp_url("smtps://me:hunter22@smtp.example.com:465").expect("valid");
        assert_eq!(url.to_string(), "smtps://me:***@smtp.example.com:465");
        assert!(!format!("{url:?}").contains("hunter22"));
        assert_eq!(format!("{:?}", Secret("abc".into())), "***");
    }

    #[test]
    fn smtp_url_needs_an_smtp_scheme_and_a_host() {
        assert!(parse_smtp_url("smtp://relay.lan").is_ok());
        assert!(parse_smtp_url("smtp://relay.lan:2525?tls=required").is_ok());
        assert!(parse_smtp_url("http://relay.lan").is_err());
        assert!(parse_smtp_url("relay.lan:25").is_err());
    }

    #[test]
    fn typos_get_the_nearest_known_name() {
        for (given, nearest) in [
            ("prot", Some("port")),
            ("smtp_ulr", Some("smtp_url")),
            ("mailfrom", Some("mail_from")),
            ("data-dir", Some("data_dir")),
            ("verbos", Some("verbose")),
            ("colour", None),
            ("p", None),
        ] {
            let hint = did_you_mean(given, OPTION_NAMES);
            match nearest {
                Some(name) => assert_eq!(hint, format!("; did you mean `{name}`?"), "{given}"),
                None => assert_eq!(hint, "", "{given}"),
            }
        }
    }

    /// Issue 23: every part lettre reads is checked at start, each refusal naming what to write.
    #[test]
    fn smtp_urls_are_checked_completely() {
        for good in [
            "smtp://relay.lan",
            "smtp://relay.lan:587?tls=required",
            "smtp://relay.lan:587?tls=opportunistic",
            "smtps://me%40example.com:p%23ss@relay.lan:465",
            "smtp://relay.lan/helo.example.com",
        ] {
            parse_smtp_url(good).unwrap_or_else(|reason| panic!("{good}: {reason}"));
        }
        for (bad, says) in [
            (
                "smtp://relay.lan?tls=sometimes",
                "`tls=sometimes` is not a TLS mode",
            ),
            ("smtp://relay.lan?tls=", "`tls=` is not a TLS mode"),
            (
                "smtp://relay.lan?starttls=1",
                "unknown query parameter `starttls`",
            ),
            ("smtp://relay.lan?tls=required&tls=required", "given twice"),
            ("smtps://relay.lan?tls=required", "drop `?tls=`"),
            ("smtps://me:pw@relay.lan#x", "no `#` part"),
            (
                "smtps://me:%FF@relay.lan",
                "not valid percent-encoded UTF-8",
            ),
            ("smtps://:pw@relay.lan", "needs a user name"),
        ] {
            let reason = parse_smtp_url(bad).expect_err(bad);
            assert!(reason.contains(says), "{bad}: {reason}");
            assert!(!reason.contains("pw"), "{bad}: the password in {reason}");
        }
    }

    #[test]
    fn one_or_many_takes_lists_and_comma_separated_strings() {
        #[derive(Deserialize)]
        struct T {
            #[serde(deserialize_with = "one_or_many")]
            v: Vec<String>,
        }
        let one: T = serde_json::from_str(r#"{"v":"eth0, wlan0"}"#).expect("parses");
        assert_eq!(one.v, ["eth0", "wlan0"]);
        let many: T = serde_json::from_str(r#"{"v":["eth0"]}"#).expect("parses");
        assert_eq!(many.v, ["eth0"]);
    }
}

/// Precedence and error messages on real values, with the process environment and working
/// directory sandboxed by `figment::Jail` (which also serializes these tests).
#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure type, not ours
mod precedence_tests {
    use figment::Jail;

    use super::*;

    fn args(argv: &[&str]) -> ServeArgs {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let matches = ServeArgs::environment_left_to_config(Wrapper::command())
            .get_matches_from(std::iter::once("healthchecker-server").chain(argv.iter().copied()));
        Wrapper::from_arg_matches(&matches).expect("matches").serve
    }

    fn load(argv: &[&str]) -> Result<Config, ConfigError> {
        Config::load(&args(argv))
    }

    #[test]
    fn each_step_of_the_precedence() {
        Jail::expect_with(|jail| {
            // default
            assert_eq!(load(&[]).expect("valid").port, 0);
            // file over default
            jail.create_file(
                "config",
                "port = 1111\nbind_addr = \"127.0.0.2\"\ndata_dir = \"/file\"\n",
            )?;
            let config = load(&[]).expect("valid");
            assert_eq!(config.port, 1111);
            assert_eq!(config.bind_addr.to_string(), "127.0.0.2");
            assert!(config.config_file.is_some());
            // environment over file
            jail.set_env("HEALTHCHECKER_PORT", "2222");
            jail.set_env("HEALTHCHECKER_DATA_DIR", "/env");
            let config = load(&[]).expect("valid");
            assert_eq!(
                (config.port, config.data_dir.to_str()),
                (2222, Some("/env"))
            );
            assert_eq!(
                config.bind_addr.to_string(),
                "127.0.0.2",
                "the file still fills the gaps"
            );
            // flag over environment
            let config = load(&["--port", "3333"]).expect("valid");
            assert_eq!(
                (config.port, config.data_dir.to_str()),
                (3333, Some("/env"))
            );
            Ok(())
        });
    }

    #[test]
    fn switches_and_lists_from_every_source() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "config",
                "mdns_interface = [\"eth0\", \"wlan0\"]\nverbose = true\n",
            )?;
            let config = load(&[]).expect("valid");
            assert_eq!(
                config.mdns,
                Mdns::On {
                    interfaces: vec!["eth0".into(), "wlan0".into()]
                }
            );
            assert_eq!(config.log_level, LogLevel::Verbose);
            jail.set_env("HEALTHCHECKER_MDNS_INTERFACE", "eth1");
            jail.set_env("HEALTHCHECKER_TEST", "true");
            let config = load(&[]).expect("valid");
            assert_eq!(
                config.mdns,
                Mdns::On {
                    interfaces: vec!["eth1".into()]
                }
            );
            assert!(config.test_mode);
            let config =
                load(&["--mdns-interface", "br0", "--mdns-interface", "br1", "-d"]).expect("valid");
            assert_eq!(
                config.mdns,
                Mdns::On {
                    interfaces: vec!["br0".into(), "br1".into()]
                }
            );
            assert_eq!(config.log_level, LogLevel::Debug);
            assert_eq!(load(&["--no-mdns"]).expect("valid").mdns, Mdns::Off);
            Ok(())
        });
    }

    #[test]
    fn explicit_config_file_from_flag_or_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "port = 4444\n")?;
            assert_eq!(load(&["--config", "other.toml"]).expect("valid").port, 4444);
            jail.set_env("HEALTHCHECKER_CONFIG", "other.toml");
            assert_eq!(load(&[]).expect("valid").port, 4444);
            let error = load(&["--config", "missing.toml"]).expect_err("missing file");
            assert_eq!(
                error.to_string(),
                "cannot read config file missing.toml: no such file"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_key_names_the_key_and_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("config", "port = 1\nsmtp_server = \"x\"\n")?;
            let message = load(&[]).expect_err("unknown key").to_string();
            assert!(
                message.starts_with("unknown option `smtp_server` in config file /"),
                "{message}"
            );
            assert!(message.contains("/config;"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn out_of_range_value_names_key_value_and_source() {
        Jail::expect_with(|jail| {
            jail.create_file("config", "port = 70000\n")?;
            let message = load(&[]).expect_err("out of range").to_string();
            assert!(
                message.starts_with("invalid value `70000` for option `port` from config file /"),
                "{message}"
            );
            assert!(
                message.ends_with("expected a port from 0 to 65535 (0: any free port)"),
                "{message}"
            );

            jail.set_env("HEALTHCHECKER_PORT", "-1");
            let message = load(&[]).expect_err("out of range").to_string();
            assert!(
                message.starts_with("invalid value `-1` for option `port` from environment variable HEALTHCHECKER_PORT"),
                "{message}"
            );
            let message = load(&["--port", "65536"])
                .expect_err("out of range")
                .to_string();
            assert!(
                message.contains("`65536` for option `port` from flag --port"),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn wrong_types_and_bad_values_are_explained() {
        Jail::expect_with(|jail| {
            jail.set_env("HEALTHCHECKER_PORT", "eighty");
            let message = load(&[]).expect_err("not a number").to_string();
            assert!(
                message.contains("option `port` from environment variable HEALTHCHECKER_PORT"),
                "{message}"
            );
            assert!(message.contains("expected a whole number"), "{message}");
            jail.clear_env();

            jail.create_file("config", "no_mdns = \"yes\"\n")?;
            let message = load(&[]).expect_err("not a bool").to_string();
            assert!(
                message.contains("option `no_mdns` from config file /"),
                "{message}"
            );
            // Issue 23: types in words, never a Rust type's name.
            for (file, words) in [
                (
                    "no_mdns = \"yes\"\n",
                    "expected true or false, found the text \"yes\"",
                ),
                (
                    "port = \"8080\"\n",
                    "expected a whole number, found the text \"8080\"",
                ),
                (
                    "storm_fraction = \"half\"\n",
                    "expected a number, found the text \"half\"",
                ),
                (
                    "mail_from = 5\n",
                    "expected text in double quotes, found the number 5",
                ),
                ("admin_email = {a = 1}\n", "expected a list such as"),
            ] {
                jail.create_file("config", file)?;
                let message = load(&[]).expect_err(file).to_string();
                assert!(message.contains(words), "{file}: {message}");
                for rust in ["i64", "u64", "f64", "a boolean", "a string"] {
                    assert!(!message.contains(rust), "{file}: `{rust}` in {message}");
                }
            }
            std::fs::remove_file("config").map_err(|error| error.to_string())?;

            let message = load(&["--bind-addr", "localhost:80"])
                .expect_err("bad ip")
                .to_string();
            assert!(
                message.contains("`localhost:80` for option `bind_addr` from flag --bind-addr"),
                "{message}"
            );
            let message = load(&["--mail-from", "not an address"])
                .expect_err("bad mail")
                .to_string();
            assert!(message.contains("option `mail_from`"), "{message}");
            let message = load(&["--token", "short"])
                .expect_err("short token")
                .to_string();
            assert!(
                message.contains("`***` for option `token`") && !message.contains("short"),
                "{message}"
            );
            let message = load(&["--smtp-url", "smtps://me:secret@"])
                .expect_err("bad smtp")
                .to_string();
            assert!(
                !message.contains("secret"),
                "the password must not leak: {message}"
            );
            Ok(())
        });
    }

    #[test]
    fn retention_options_default_and_are_range_checked() {
        Jail::expect_with(|jail| {
            let config = load(&[]).expect("valid");
            assert_eq!(config.log_retention, 1000);
            assert_eq!(config.retention, Duration::from_secs(90 * 24 * 3600));
            jail.create_file("config", "log_retention = 10\nretention_days = 3650\n")?;
            let config = load(&[]).expect("valid");
            assert_eq!(config.log_retention, 10);
            assert_eq!(config.retention, Duration::from_secs(3650 * 24 * 3600));
            let config =
                load(&["--log-retention", "100000", "--retention-days", "1"]).expect("valid");
            assert_eq!(config.log_retention, 100_000);
            assert_eq!(config.retention, Duration::from_secs(24 * 3600));
            let message = load(&["--log-retention", "9"])
                .expect_err("too few")
                .to_string();
            assert!(
                message.contains("`9` for option `log_retention` from flag --log-retention")
                    && message.ends_with("from 10 to 100000"),
                "{message}"
            );
            jail.set_env("HEALTHCHECKER_RETENTION_DAYS", "0");
            let message = load(&[]).expect_err("zero days").to_string();
            assert!(
                message.contains(
                    "`0` for option `retention_days` from environment variable HEALTHCHECKER_RETENTION_DAYS"
                ) && message.ends_with("from 1 to 3650"),
                "{message}"
            );
            jail.set_env("HEALTHCHECKER_RETENTION_DAYS", "3651");
            assert!(load(&[]).is_err());
            Ok(())
        });
    }

    #[test]
    fn remind_every_is_off_by_default_and_range_checked() {
        Jail::expect_with(|jail| {
            assert_eq!(load(&[]).expect("valid").remind_every, None);
            jail.create_file("config", "remind_every = 60\n")?;
            assert_eq!(
                load(&[]).expect("valid").remind_every,
                Some(Duration::from_secs(3600))
            );
            assert_eq!(
                load(&["--remind-every", "0"]).expect("valid").remind_every,
                None
            );
            assert_eq!(
                load(&["--remind-every", "10080"])
                    .expect("valid")
                    .remind_every,
                Some(Duration::from_secs(7 * 24 * 3600))
            );
            let message = load(&["--remind-every", "4"])
                .expect_err("too often")
                .to_string();
            assert!(
                message.contains("`4` for option `remind_every` from flag --remind-every")
                    && message.ends_with("from 5 to 10080, or 0 for no reminders"),
                "{message}"
            );
            jail.set_env("HEALTHCHECKER_REMIND_EVERY", "-1");
            let message = load(&[]).expect_err("negative").to_string();
            assert!(
                message.contains(
                    "`-1` for option `remind_every` from environment variable HEALTHCHECKER_REMIND_EVERY"
                ),
                "{message}"
            );
            jail.set_env("HEALTHCHECKER_REMIND_EVERY", "10081");
            assert!(load(&[]).is_err());
            Ok(())
        });
    }

    #[test]
    fn abuse_limits_have_defaults_and_ranges() {
        Jail::expect_with(|jail| {
            let config = load(&[]).expect("valid");
            assert_eq!(config.max_monitors, 1000);
            assert_eq!(config.max_registrations_per_minute, Some(60));
            assert!(config.allowed_email_domains.is_empty());
            jail.create_file(
                "config",
                "allowed_email_domains = [\"Example.com\", \"@lab.home\"]\nmax_registrations_per_minute = 0\n",
            )?;
            let config = load(&["--max-monitors", "100000"]).expect("valid");
            assert_eq!(config.allowed_email_domains, ["example.com", "lab.home"]);
            assert_eq!(config.max_registrations_per_minute, None);
            assert_eq!(config.max_monitors, 100_000);
            let message = load(&["--max-monitors", "0"])
                .expect_err("zero")
                .to_string();
            assert!(
                message.contains("`0` for option `max_monitors` from flag --max-monitors"),
                "{message}"
            );
            jail.set_env(
                "HEALTHCHECKER_ALLOWED_EMAIL_DOMAINS",
                "example.com, bad domain",
            );
            let message = load(&[]).expect_err("bad domain").to_string();
            assert!(
                message.contains(
                    "`bad domain` for option `allowed_email_domains` from environment variable"
                ),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn lan_limits_have_defaults_ranges_and_name_the_bad_entry() {
        Jail::expect_with(|jail| {
            let config = load(&[]).expect("valid");
            assert_eq!(config.max_monitors_per_client, Some(100));
            assert_eq!(config.allowed_targets, None);
            assert_eq!(config.read_token, None);
            jail.create_file(
                "config",
                "allowed_targets = [\"192.168.1.0/24\", \"nas.lan\"]\nmax_monitors_per_client = 0\n",
            )?;
            let config = load(&[]).expect("valid");
            assert_eq!(config.max_monitors_per_client, None, "0: no limit");
            let allowed = config.allowed_targets.expect("a list");
            assert!(allowed.allows_ip([192, 168, 1, 9].into()) && allowed.allows_name("NAS.lan"));
            jail.set_env("HEALTHCHECKER_ALLOWED_TARGETS", "10.0.0.0/8, *.lab.home");
            let allowed = load(&[]).expect("valid").allowed_targets.expect("a list");
            assert_eq!(allowed.to_string(), "10.0.0.0/8, *.lab.home");
            let allowed = load(&["--allowed-targets", "fd00::/8", "--allowed-targets", "::1"])
                .expect("valid")
                .allowed_targets
                .expect("a list");
            assert_eq!(allowed.to_string(), "fd00::/8, ::1/128");
            let message = load(&["--allowed-targets", "10.0.0.0/33"])
                .expect_err("bad range")
                .to_string();
            assert!(
                message.contains(
                    "`10.0.0.0/33` for option `allowed_targets` from flag --allowed-targets"
                ) && message.contains("192.168.1.0/24"),
                "{message}"
            );
            let message = load(&["--max-monitors-per-client=-1"])
                .expect_err("negative")
                .to_string();
            assert!(
                message.contains("`-1` for option `max_monitors_per_client`")
                    && message.contains("0 (no limit) to 1000000"),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_read_token_is_a_secret_like_the_token() {
        Jail::expect_with(|jail| {
            jail.set_env("HEALTHCHECKER_READ_TOKEN", "0012345678");
            let config = load(&[]).expect("valid");
            assert_eq!(
                config.read_token.as_ref().map(Secret::expose),
                Some("0012345678"),
                "text, leading zeros included"
            );
            assert!(!format!("{config:?}").contains("0012345678"));
            jail.set_env("HEALTHCHECKER_READ_TOKEN", "7654321");
            let message = load(&[]).expect_err("too short").to_string();
            assert!(
                message.contains("`***` for option `read_token`")
                    && message.contains("HEALTHCHECKER_READ_TOKEN")
                    && !message.contains("7654321"),
                "{message}"
            );
            jail.clear_env();
            jail.create_file("config", "read_token = 1234.5678\n")?;
            let message = load(&[]).expect_err("fractional").to_string();
            assert!(
                message.contains("`read_token`") && !message.contains("1234.5678"),
                "{message}"
            );
            jail.create_file("config", "read_token = \"r3ad-t0ken-hunter2\"\n")?;
            let (_, settings) = Config::load_with_sources(&args(&[])).expect("valid");
            let shown = settings
                .iter()
                .find(|setting| setting.option == "read_token")
                .and_then(|setting| setting.value.clone());
            assert_eq!(shown.as_deref(), Some("\"***\""), "check-config masks it");
            assert!(!format!("{settings:?}").contains("hunter2"));
            Ok(())
        });
    }

    #[test]
    fn state_directory_is_the_default_data_dir_below_every_source() {
        Jail::expect_with(|jail| {
            assert_eq!(load(&[]).expect("valid").data_dir.to_str(), Some("./data"));
            jail.set_env("STATE_DIRECTORY", "/var/lib/healthchecker:/var/lib/other");
            assert_eq!(
                load(&[]).expect("valid").data_dir.to_str(),
                Some("/var/lib/healthchecker"),
                "systemd's folder replaces the default"
            );
            jail.create_file("config", "data_dir = \"/file\"\n")?;
            assert_eq!(load(&[]).expect("valid").data_dir.to_str(), Some("/file"));
            jail.set_env("HEALTHCHECKER_DATA_DIR", "/env");
            assert_eq!(load(&[]).expect("valid").data_dir.to_str(), Some("/env"));
            Ok(())
        });
    }

    #[test]
    fn sources_name_where_each_value_came_from_and_mask_secrets() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "config",
                "port = 8080\ntoken = \"hunter2-hunter2\"\nsmtp_url = \"smtps://me:pa55word@smtp.example.com:465\"\n",
            )?;
            jail.set_env("HEALTHCHECKER_MDNS_INTERFACE", "eth0, wlan0");
            jail.set_env("STATE_DIRECTORY", "/var/lib/healthchecker");
            let (config, settings) =
                Config::load_with_sources(&args(&["--bind-addr", "127.0.0.1"])).expect("valid");
            assert_eq!(config.port, 8080);
            let names: Vec<&str> = settings.iter().map(|setting| setting.option).collect();
            assert_eq!(names, OPTION_NAMES, "every option, in order");
            let get = |option: &str| {
                settings
                    .iter()
                    .find(|setting| setting.option == option)
                    .cloned()
                    .expect("listed")
            };
            let shown = |option: &str| {
                let setting = get(option);
                (setting.value, setting.source)
            };
            assert_eq!(
                shown("bind_addr"),
                (Some("\"127.0.0.1\"".into()), "flag --bind-addr".into())
            );
            let (port, source) = shown("port");
            assert_eq!(port.as_deref(), Some("8080"));
            assert!(
                source.starts_with("config file /") && source.ends_with("/config"),
                "{source}"
            );
            assert_eq!(
                shown("mdns_interface"),
                (
                    Some("[\"eth0\",\"wlan0\"]".into()),
                    "environment variable HEALTHCHECKER_MDNS_INTERFACE".into()
                )
            );
            assert_eq!(
                shown("data_dir"),
                (
                    Some("\"/var/lib/healthchecker\"".into()),
                    "environment variable STATE_DIRECTORY (systemd's StateDirectory=)".into()
                )
            );
            assert_eq!(
                shown("log_retention"),
                (Some("1000".into()), "the default".into())
            );
            assert_eq!(shown("mail_from"), (None, "the default".into()));
            assert_eq!(shown("token").0.as_deref(), Some("\"***\""));
            assert_eq!(
                shown("smtp_url").0.as_deref(),
                Some("\"smtps://me:***@smtp.example.com:465\"")
            );
            let everything = format!("{settings:?}");
            assert!(
                !everything.contains("hunter2") && !everything.contains("pa55word"),
                "{everything}"
            );
            Ok(())
        });
    }

    #[test]
    fn legacy_is_on_by_default_and_turned_off_from_every_source() {
        Jail::expect_with(|jail| {
            assert!(load(&[]).expect("valid").legacy);
            assert!(!load(&["--no-legacy"]).expect("valid").legacy);
            jail.create_file("config", "legacy = false\n")?;
            assert!(!load(&[]).expect("valid").legacy);
            jail.set_env("HEALTHCHECKER_LEGACY", "true");
            assert!(load(&[]).expect("valid").legacy, "environment over file");
            assert!(
                !load(&["--no-legacy"]).expect("valid").legacy,
                "flag over environment"
            );
            jail.set_env("HEALTHCHECKER_LEGACY", "false");
            jail.create_file("config", "legacy = true\n")?;
            assert!(!load(&[]).expect("valid").legacy);
            jail.clear_env();
            jail.create_file("config", "legacy = \"no\"\n")?;
            let message = load(&[]).expect_err("not a bool").to_string();
            assert!(
                message.contains("option `legacy` from config file /"),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn secrets_are_recognised_by_name_and_url_passwords_anywhere() {
        assert!(is_secret("token") && is_secret("smtp_password") && is_secret("webhook_secret"));
        assert!(!is_secret("port") && !is_secret("smtp_url") && !is_secret("mail_from"));
        let value = serde_json::json!(["http://a:b@host/x", "plain"]);
        assert_eq!(
            shown_value("urls", &value),
            r#"["http://a:***@host/x","plain"]"#
        );
        assert_eq!(
            shown_value("api_key", &serde_json::json!("abc")),
            r#""***""#
        );
    }

    #[test]
    fn client_variables_in_the_environment_do_not_stop_the_server() {
        Jail::expect_with(|jail| {
            jail.set_env("HEALTHCHECKER_URL", "http://127.0.0.1:1");
            assert!(load(&[]).is_ok());
            Ok(())
        });
    }

    #[test]
    fn secrets_are_text_whatever_they_look_like() {
        Jail::expect_with(|jail| {
            jail.set_env("HEALTHCHECKER_TOKEN", "0012345678");
            let config = load(&[]).expect("a numeric token from the environment");
            assert_eq!(
                config.token.as_ref().map(Secret::expose),
                Some("0012345678"),
                "kept as written, leading zeros included"
            );
            jail.set_env("HEALTHCHECKER_TOKEN", "[not-an-array");
            let config = load(&[]).expect("text that looks like TOML");
            assert_eq!(
                config.token.as_ref().map(Secret::expose),
                Some("[not-an-array")
            );
            jail.clear_env();

            jail.create_file("config", "token = 12345678\n")?;
            let config = load(&[]).expect("a numeric token in the file");
            assert_eq!(config.token.as_ref().map(Secret::expose), Some("12345678"));
            let config = load(&["--token", "87654321"]).expect("a numeric flag");
            assert_eq!(config.token.as_ref().map(Secret::expose), Some("87654321"));
            Ok(())
        });
    }

    #[test]
    fn a_refused_secret_is_never_shown() {
        Jail::expect_with(|jail| {
            for (file, secret) in [
                ("token = 1234.5678\n", "1234.5678"),
                ("token = [\"in-a-list-4711\"]\n", "in-a-list-4711"),
                ("smtp_url = 8675.309\n", "8675.309"),
            ] {
                jail.create_file("config", file)?;
                let message = load(&[]).expect_err(file).to_string();
                assert!(
                    message.contains("`token`") || message.contains("`smtp_url`"),
                    "names the option: {message}"
                );
                assert!(!message.contains(secret), "shows the secret: {message}");
            }
            jail.create_file("config", "")?;
            jail.set_env("HEALTHCHECKER_TOKEN", "9081726");
            let message = load(&[]).expect_err("too short").to_string();
            assert!(
                message.contains("HEALTHCHECKER_TOKEN") && !message.contains("9081726"),
                "{message}"
            );
            jail.set_env("HEALTHCHECKER_TOKEN", "12345678");
            jail.set_env("HEALTHCHECKER_SMTP_URL", "http://me:pw-31337@relay.lan");
            let message = load(&[]).expect_err("not smtp").to_string();
            assert!(
                message.contains("smtp_url") && !message.contains("pw-31337"),
                "{message}"
            );
            Ok(())
        });
    }
}
