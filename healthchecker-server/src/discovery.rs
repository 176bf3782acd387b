//! Discovery over mDNS / DNS-SD: advertising this server on the LAN, and finding servers on it.
//!
//! * [`Advertiser`] announces the server as `healthchecker on <hostname>` under [`SERVICE_TYPE`],
//!   with the real HTTP port in the SRV record and `version`, `api` and `auth` in the TXT record.
//!   It is started once the listener is bound and shut down (goodbye packets) on a clean stop.
//! * With [`AdvertiseOptions::legacy`], the same daemon also announces the name the original
//!   Python HealthChecker.Server used, so its 2020 client finds this server unchanged: instance
//!   [`LEGACY_INSTANCE`] under [`LEGACY_SERVICE_TYPE`], TXT `version` and `desc`, an A record
//!   per advertised interface (the original client takes the first IPv4 address). It comes and
//!   goes with the main service. The routes it leads to are in [`crate::legacy`].
//! * [`Browser`], [`browse`] and [`find_first`] look for servers, for the `discover`, `list` and
//!   `log` subcommands (and for the tests). They live in [`healthchecker_client::discovery`],
//!   next to the client's own discovery that uses them, and are re-exported here.
//!
//! The mDNS packets and the responder itself are [`mdns_sd`]'s; this module only decides what is
//! advertised and where.
//!
//! # Network interfaces
//!
//! An mDNS daemon joins the multicast group on every interface that is up the moment it starts,
//! before any interface selection applies. So a [`ServiceDaemon`] is only ever created when mDNS
//! is wanted: `--no-mdns` must not call anything here.
//!
//! The service is registered without addresses and with `addr_auto`, so that each interface
//! announces its own address, and `mdns_sd` adds and withdraws addresses by itself when they
//! change (it re-reads the interfaces every [`mdns_sd::IP_CHECK_INTERVAL_IN_SECS_DEFAULT`] seconds
//! and announces the service on an interface that gains an address).

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

pub use healthchecker_client::discovery::{
    BrowseError, BrowseEvent, Browser, DEFAULT_DISCOVERY_TIMEOUT, FoundServer, SERVICE_TYPE,
    browse, find_first,
};
use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo};

use crate::identity::Identity;

/// The path of the JSON API, advertised in the TXT record as `api`.
pub const API_PATH: &str = "/api/v1";

/// The service type the original Python HealthChecker.Server advertised under.
pub const LEGACY_SERVICE_TYPE: &str = "_http._tcp.local.";

/// The instance name the original used, and its client looks up
/// (`_healthchecker._http._tcp.local.`). Fixed: that client knows no other.
pub const LEGACY_INSTANCE: &str = "_healthchecker";

/// The TXT `desc` of the original's advertisement, kept word for word.
pub const LEGACY_DESC: &str = "health check micro-service";

/// How long [`Advertiser::shutdown`] waits, at most, for the goodbyes to go out and the daemon
/// to stop.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// A DNS label (the instance name is one) is at most 63 bytes long (RFC 1035).
const MAX_LABEL_BYTES: usize = 63;

/// An mDNS failure of the advertiser: the server logs it and keeps serving without discovery.
///
/// Browsing has its own error, [`BrowseError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The mDNS daemon could not be started.
    #[error("cannot start the mDNS daemon: {0}")]
    Daemon(#[source] mdns_sd::Error),
    /// The daemon refused a command (it stopped, or its queue is full).
    #[error("the mDNS daemon refused to {action}: {source}")]
    Command {
        /// What was asked, e.g. `register "healthchecker on pi"`.
        action: String,
        /// Why not.
        #[source]
        source: mdns_sd::Error,
    },
    /// The service record could not be built from these options.
    #[error("cannot advertise {instance:?} on port {port}: {source}")]
    Service {
        /// The instance name.
        instance: String,
        /// The port.
        port: u16,
        /// Why not.
        #[source]
        source: mdns_sd::Error,
    },
}

/// What the server advertises, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertiseOptions {
    /// Instance name, normally `healthchecker on <hostname>` ([`Identity::service_name`]).
    pub instance: String,
    /// This machine's host name ([`Identity::host_name`]); its first label, made DNS-safe, is
    /// the mDNS host name (`<label>.local.`) of the SRV record.
    pub host: String,
    /// The port the HTTP API really listens on (never 0).
    pub port: u16,
    /// Interface names to advertise on; empty means every non-loopback interface (and, if this
    /// machine has none, whatever it has, loopback included). `lo` may be named explicitly.
    pub interfaces: Vec<String>,
    /// Whether changes need a bearer token: advertised as `auth=token` (else `auth=none`).
    pub auth_token: bool,
    /// Whether to advertise the original's name too ([`LEGACY_INSTANCE`] under
    /// [`LEGACY_SERVICE_TYPE`]), on the same interfaces and port.
    pub legacy: bool,
}

impl AdvertiseOptions {
    /// Options for the server `identity` on `port`, under its service name, on the default
    /// interfaces, without a token, with the original's name (the server's default).
    pub fn new(identity: &Identity, port: u16) -> Self {
        Self {
            instance: identity.service_name.clone(),
            host: identity.host_name.clone(),
            port,
            interfaces: Vec::new(),
            auth_token: false,
            legacy: true,
        }
    }

    /// The TXT record of the original's name: `version` and `desc`, as the original had.
    fn legacy_txt() -> [(&'static str, &'static str); 2] {
        [("version", crate::VERSION), ("desc", LEGACY_DESC)]
    }

    /// The TXT record: `version`, `api` and `auth`.
    fn txt(&self) -> [(&'static str, &'static str); 3] {
        [
            ("version", crate::VERSION),
            ("api", API_PATH),
            ("auth", if self.auth_token { "token" } else { "none" }),
        ]
    }
}

/// Which interfaces the daemon uses, decided once from the options and the interfaces present.
#[derive(Debug, Clone, PartialEq, Eq)]
enum InterfacePlan {
    /// Every interface, loopback included: the default when there is nothing but loopback.
    Everything,
    /// Every interface but loopback, including those that come up later: the default.
    NonLoopback,
    /// Only these, by name (they may come up later).
    Only(Vec<String>),
}

impl fmt::Display for InterfacePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfacePlan::Everything => f.write_str("every interface, loopback included"),
            InterfacePlan::NonLoopback => f.write_str("every non-loopback interface"),
            InterfacePlan::Only(names) => write!(f, "interfaces {}", names.join(", ")),
        }
    }
}

/// One interface of this machine, as far as the plan cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PresentInterface {
    name: String,
    loopback: bool,
}

/// Decides which interfaces to use: a pure function of what was asked and what is there.
///
/// Returns the plan and the warnings to log. A named interface that is not there now is kept
/// (it may come up later: the daemon looks again every few seconds) but warned about, since it
/// is more often a typo.
fn plan_interfaces(
    requested: &[String],
    present: &[PresentInterface],
) -> (InterfacePlan, Vec<String>) {
    let mut warnings = Vec::new();
    let present_names = || {
        let mut names: Vec<&str> = present.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    if requested.is_empty() {
        if present.iter().any(|i| !i.loopback) {
            return (InterfacePlan::NonLoopback, warnings);
        }
        warnings.push(format!(
            "no non-loopback network interface is up; advertising over mDNS on what there is \
             ({}), and on any interface that comes up later",
            present_names()
        ));
        return (InterfacePlan::Everything, warnings);
    }
    let mut names: Vec<String> = Vec::new();
    for name in requested {
        let name = name.trim();
        if name.is_empty() || names.iter().any(|n| n == name) {
            continue;
        }
        if !present.iter().any(|i| i.name == name) {
            warnings.push(format!(
                "mDNS interface {name:?} has no address now (interfaces with one: {}); it is \
                 used if it comes up",
                present_names()
            ));
        }
        names.push(name.to_owned());
    }
    if names.is_empty() {
        return plan_interfaces(&[], present);
    }
    (InterfacePlan::Only(names), warnings)
}

/// The interfaces of this machine that hold an address.
fn present_interfaces() -> Vec<PresentInterface> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .map(|i| PresentInterface {
                loopback: i.is_loopback(),
                name: i.name,
            })
            .collect(),
        Err(error) => {
            tracing::warn!("cannot list the network interfaces: {error}");
            Vec::new()
        }
    }
}

/// Applies `plan` to `daemon`. Selections apply in order and the last match wins.
fn apply_plan(daemon: &ServiceDaemon, plan: &InterfacePlan) -> Result<(), DiscoveryError> {
    let refused = |source| DiscoveryError::Command {
        action: format!("select {plan}"),
        source,
    };
    match plan {
        InterfacePlan::Everything => Ok(()),
        InterfacePlan::NonLoopback => daemon
            .disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
            .map_err(refused),
        InterfacePlan::Only(names) => {
            daemon.disable_interface(IfKind::All).map_err(refused)?;
            daemon
                .enable_interface(names.iter().map(IfKind::from).collect::<Vec<_>>())
                .map_err(refused)
        }
    }
}

/// The mDNS host name of the machine `host`: its first host-name label, made DNS-safe, in
/// `.local.`.
fn host_label_to_mdns(host: &str) -> String {
    let label: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(MAX_LABEL_BYTES)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "healthchecker.local.".to_owned()
    } else {
        format!("{label}.local.")
    }
}

/// `name` cut to one DNS label (63 bytes), on a character boundary.
fn fit_label(name: &str) -> &str {
    if name.len() <= MAX_LABEL_BYTES {
        return name;
    }
    let mut end = MAX_LABEL_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The server's presence on the LAN over mDNS, from [`Advertiser::start`] to
/// [`Advertiser::shutdown`].
///
/// Dropping it without `shutdown` still stops the daemon (which says goodbye once), but does not
/// wait for it.
pub struct Advertiser {
    daemon: Option<ServiceDaemon>,
    /// Every registered service: the main one, then the original's name when advertised.
    fullnames: Vec<String>,
    instance: String,
    port: u16,
}

impl fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advertiser")
            .field("instance", &self.instance)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Advertiser {
    /// Starts an mDNS daemon on the chosen interfaces and registers the service.
    ///
    /// Returns at once: the daemon probes for the name (about 750 ms) and then announces the
    /// service on its own thread. A name conflict (another server with the same instance name)
    /// is resolved by the daemon, which renames this one (`... (2)`) and logs it.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError`] when the daemon cannot start or refuses the service. The server should
    /// log it and keep serving: discovery is a convenience, the API works without it.
    pub fn start(options: &AdvertiseOptions) -> Result<Advertiser, DiscoveryError> {
        let (plan, warnings) = plan_interfaces(&options.interfaces, &present_interfaces());
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        let instance = fit_label(options.instance.trim()).to_owned();
        if instance != options.instance {
            tracing::warn!(
                "mDNS instance name {:?} shortened to {instance:?}",
                options.instance
            );
        }
        let host = host_label_to_mdns(&options.host);
        let service = ServiceInfo::new(
            SERVICE_TYPE,
            &instance,
            &host,
            (),
            options.port,
            &options.txt()[..],
        )
        .map_err(|source| DiscoveryError::Service {
            instance: instance.clone(),
            port: options.port,
            source,
        })?
        .enable_addr_auto();
        let legacy = options
            .legacy
            .then(|| {
                let txt = AdvertiseOptions::legacy_txt();
                ServiceInfo::new(
                    LEGACY_SERVICE_TYPE,
                    LEGACY_INSTANCE,
                    &host,
                    (),
                    options.port,
                    &txt[..],
                )
                .map(ServiceInfo::enable_addr_auto)
                .map_err(|source| DiscoveryError::Service {
                    instance: LEGACY_INSTANCE.to_owned(),
                    port: options.port,
                    source,
                })
            })
            .transpose()?;
        let fullnames = std::iter::once(&service)
            .chain(&legacy)
            .map(|service| service.get_fullname().to_owned())
            .collect();

        let daemon = ServiceDaemon::new().map_err(DiscoveryError::Daemon)?;
        let advertiser = Advertiser {
            daemon: Some(daemon.clone()),
            fullnames,
            instance,
            port: options.port,
        };
        // On error from here on, dropping `advertiser` stops the daemon.
        match daemon.monitor() {
            Ok(events) => log_daemon_events(events),
            Err(error) => tracing::debug!("no mDNS daemon events: {error}"),
        }
        apply_plan(&daemon, &plan)?;
        daemon
            .register(service)
            .map_err(|source| DiscoveryError::Command {
                action: format!("register {:?}", advertiser.instance),
                source,
            })?;
        tracing::info!(
            "advertising {:?} over mDNS ({SERVICE_TYPE}, port {}) on {plan}",
            advertiser.instance,
            advertiser.port
        );
        if let Some(legacy) = legacy {
            daemon
                .register(legacy)
                .map_err(|source| DiscoveryError::Command {
                    action: format!("register {LEGACY_INSTANCE:?}"),
                    source,
                })?;
            tracing::info!(
                "advertising {LEGACY_INSTANCE:?} over mDNS ({LEGACY_SERVICE_TYPE}, port {}) for \
                 the original Python client",
                advertiser.port
            );
        }
        Ok(advertiser)
    }

    /// The instance name as registered (the daemon may rename it on a conflict, and logs it).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The advertised port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Withdraws the service and stops the daemon, within [`SHUTDOWN_TIMEOUT`].
    ///
    /// The daemon sends goodbye packets (records with TTL 0) on every interface, and once more
    /// 120 ms later in case one was lost; this waits for both, so browsers drop the server at
    /// once instead of when the records expire. Problems are logged, not returned: there is
    /// nothing a stopping server could do about them.
    pub async fn shutdown(mut self) {
        let Some(daemon) = self.daemon.take() else {
            return;
        };
        let fullnames = std::mem::take(&mut self.fullnames);
        let stopped = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
            say_goodbye(&daemon, &fullnames, deadline);
            stop_daemon(&daemon, deadline);
        })
        .await;
        if let Err(error) = stopped {
            tracing::warn!("mDNS shutdown failed: {error}");
        }
        tracing::info!("mDNS advertising stopped");
    }
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            // The daemon says goodbye for every registered service when it exits.
            if let Err(error) = daemon.shutdown() {
                tracing::debug!("mDNS daemon already stopped: {error}");
            }
        }
    }
}

/// Unregisters each of `fullnames` and waits until the daemon has sent the goodbyes and their
/// repeat.
fn say_goodbye(daemon: &ServiceDaemon, fullnames: &[String], deadline: Instant) {
    let mut said = false;
    for fullname in fullnames {
        let answer = match daemon.unregister(fullname) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!("cannot withdraw the mDNS service {fullname:?}: {error}");
                continue;
            }
        };
        match answer.recv_deadline(deadline) {
            Ok(mdns_sd::UnregisterStatus::OK) => said = true,
            Ok(status) => tracing::warn!("withdrawing the mDNS service {fullname:?}: {status:?}"),
            Err(error) => {
                tracing::warn!(
                    "the mDNS daemon did not confirm the goodbye of {fullname:?}: {error}"
                );
            }
        }
    }
    if !said {
        return;
    }
    // The first goodbyes are out (sent back to back); the daemon repeats them after 120 ms.
    // Its counters tell when.
    const REPEAT: &str = "unregister-resend";
    const POLL: Duration = Duration::from_millis(20);
    let repeats_before = daemon_counter(daemon, REPEAT, deadline).unwrap_or(0);
    while Instant::now() + POLL < deadline {
        thread::sleep(POLL);
        match daemon_counter(daemon, REPEAT, deadline) {
            Some(count) if count > repeats_before => return,
            Some(_) => {}
            None => return,
        }
    }
    tracing::debug!("the repeated mDNS goodbye was not confirmed in time");
}

fn daemon_counter(daemon: &ServiceDaemon, name: &str, deadline: Instant) -> Option<i64> {
    let metrics = daemon.get_metrics().ok()?.recv_deadline(deadline).ok()?;
    Some(metrics.get(name).copied().unwrap_or(0))
}

/// Asks the daemon thread to exit and waits for it, until `deadline`.
fn stop_daemon(daemon: &ServiceDaemon, deadline: Instant) {
    match daemon.shutdown() {
        Ok(status) => {
            if let Err(error) = status.recv_deadline(deadline) {
                tracing::warn!("the mDNS daemon did not confirm its stop: {error}");
            }
        }
        Err(error) => tracing::debug!("mDNS daemon already stopped: {error}"),
    }
}

/// Logs what the daemon reports (errors, renames) on a thread that ends with the daemon.
fn log_daemon_events(events: mdns_sd::Receiver<DaemonEvent>) {
    let spawned = thread::Builder::new()
        .name("mdns-events".to_owned())
        .spawn(move || {
            while let Ok(event) = events.recv() {
                match event {
                    DaemonEvent::Error(error) => tracing::warn!("mDNS: {error}"),
                    DaemonEvent::NameChange(change) => tracing::warn!(
                        "mDNS name conflict on {}: {} is now advertised as {}",
                        change.intf_name,
                        change.original,
                        change.new_name
                    ),
                    DaemonEvent::IpAdd(ip) => tracing::debug!("mDNS: address {ip} added"),
                    DaemonEvent::IpDel(ip) => tracing::debug!("mDNS: address {ip} removed"),
                    other => tracing::trace!("mDNS: {other:?}"),
                }
            }
        });
    if let Err(error) = spawned {
        tracing::debug!("no thread for mDNS daemon events: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(list: &[(&str, bool)]) -> Vec<PresentInterface> {
        list.iter()
            .map(|(name, loopback)| PresentInterface {
                name: (*name).to_owned(),
                loopback: *loopback,
            })
            .collect()
    }

    #[test]
    fn default_is_every_non_loopback_interface() {
        let there = present(&[("lo", true), ("lo", true), ("eth0", false)]);
        assert_eq!(
            plan_interfaces(&[], &there),
            (InterfacePlan::NonLoopback, vec![])
        );
    }

    #[test]
    fn default_falls_back_to_loopback_when_there_is_nothing_else() {
        let (plan, warnings) = plan_interfaces(&[], &present(&[("lo", true), ("lo", true)]));
        assert_eq!(plan, InterfacePlan::Everything);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("(lo)"), "{warnings:?}");
        let (plan, _) = plan_interfaces(&[], &[]);
        assert_eq!(plan, InterfacePlan::Everything);
    }

    #[test]
    fn named_interfaces_are_used_as_given_and_unknown_ones_warned_about() {
        let there = present(&[("lo", true), ("eth0", false), ("wlan0", false)]);
        let asked = [
            "lo".to_owned(),
            "eth0".to_owned(),
            "lo".to_owned(),
            " ".to_owned(),
        ];
        assert_eq!(
            plan_interfaces(&asked, &there),
            (
                InterfacePlan::Only(vec!["lo".into(), "eth0".into()]),
                vec![]
            )
        );
        let (plan, warnings) = plan_interfaces(&["eht0".to_owned()], &there);
        assert_eq!(plan, InterfacePlan::Only(vec!["eht0".into()]));
        assert_eq!(
            warnings,
            [
                "mDNS interface \"eht0\" has no address now (interfaces with one: eth0, lo, \
                 wlan0); it is used if it comes up"
            ]
        );
    }

    #[test]
    fn txt_record_says_version_api_and_auth() {
        let mut options = AdvertiseOptions::new(&Identity::of_this_host(), 8080);
        assert!(options.instance.starts_with("healthchecker on "));
        assert_eq!(
            options.txt(),
            [
                ("version", crate::VERSION),
                ("api", "/api/v1"),
                ("auth", "none")
            ]
        );
        options.auth_token = true;
        assert_eq!(options.txt()[2], ("auth", "token"));
    }

    #[test]
    fn the_original_name_has_its_txt_record() {
        assert!(
            AdvertiseOptions::new(&Identity::of_this_host(), 8080).legacy,
            "on by default, like the option"
        );
        assert_eq!(
            AdvertiseOptions::legacy_txt(),
            [
                ("version", crate::VERSION),
                ("desc", "health check micro-service")
            ]
        );
        let service = ServiceInfo::new(
            LEGACY_SERVICE_TYPE,
            LEGACY_INSTANCE,
            "pi.local.",
            (),
            8080,
            &AdvertiseOptions::legacy_txt()[..],
        )
        .expect("a valid service");
        // The exact name the original client asks for.
        assert_eq!(service.get_fullname(), "_healthchecker._http._tcp.local.");
    }

    #[test]
    fn host_names_become_one_safe_label_in_local() {
        assert_eq!(host_label_to_mdns("pi"), "pi.local.");
        assert_eq!(host_label_to_mdns("nas.example.com"), "nas.local.");
        assert_eq!(host_label_to_mdns("my_box!"), "my-box.local.");
        assert_eq!(host_label_to_mdns(""), "healthchecker.local.");
        assert_eq!(host_label_to_mdns("--"), "healthchecker.local.");
    }

    #[test]
    fn long_instance_names_are_cut_on_a_character_boundary() {
        let name = format!("healthchecker on {}", "é".repeat(40));
        let cut = fit_label(&name);
        assert!(cut.len() <= 63 && name.starts_with(cut));
        assert_eq!(fit_label("short"), "short");
    }
}
