//! Where the healthchecker server is: an explicit URL, `HEALTHCHECKER_URL`, or discovery over
//! mDNS / DNS-SD.
//!
//! * [`Browser`], [`browse`] and [`find_first`] look for servers advertised under
//!   [`SERVICE_TYPE`] and read their records back into a [`FoundServer`]. They are public for
//!   tools that list the servers of a LAN (the server's `discover`, `list` and `log`
//!   subcommands use them).
//! * [`locate_server`] is what [`HealthCheckerServer::discover`] uses: `HEALTHCHECKER_URL` when
//!   it is set, else the first server found over mDNS that answers on one of its addresses.
//!   [`HealthCheckerServer`] comes back here when a server found over mDNS stops answering (it
//!   restarted on another port): see [`HealthCheckerServer`] for that protocol.
//!
//! The mDNS packets and the responder are [`mdns_sd`]'s; this module only decides what is asked
//! and how the answers are read.
//!
//! # Network interfaces
//!
//! Browsing starts an mDNS daemon of its own, which joins the multicast group on every interface
//! that is up: nothing here is called when the server's URL is given (explicitly or in
//! `HEALTHCHECKER_URL`), so such an app never sends a multicast packet.
//!
//! [`HealthCheckerServer`]: crate::HealthCheckerServer
//! [`HealthCheckerServer::discover`]: crate::HealthCheckerServer::discover

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::thread;
use std::time::Duration;

use mdns_sd::{ResolvedService, ServiceDaemon, ServiceEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;
use url::Url;

pub use crate::error::BrowseError;

use crate::api::{Http, parse_base_url};
use crate::{ENV_URL, Error, Result};

/// The DNS-SD service type of a healthchecker server.
pub const SERVICE_TYPE: &str = "_healthchecker._tcp.local.";

/// How long [`HealthCheckerServer::discover`](crate::HealthCheckerServer::discover) listens for
/// servers over mDNS before it gives up: a server that is up answers a query within about a
/// second.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The API path this client speaks; a server advertising another (`api` in its TXT record) is
/// used anyway, with a warning.
const API_PATH: &str = "/api/v1";

/// The longest a found address gets to answer `GET /health` before the next one is tried. A
/// server on the LAN answers in milliseconds; an address that is not routable from here (a
/// second interface's network) may swallow the connection attempt silently, so this is short.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The least a probe is given even when the discovery time is up: a server found just in time
/// still gets a fair chance to answer.
const PROBE_MIN: Duration = Duration::from_millis(200);

/// Events a [`Browser`] may hold before the reader takes them; more than enough for one LAN.
const EVENT_CAPACITY: usize = 256;

/// A healthchecker server found over mDNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundServer {
    /// Instance name, e.g. `healthchecker on pi`.
    pub instance: String,
    /// The mDNS host name from the SRV record, e.g. `pi.local.`.
    pub host: String,
    /// Its addresses, the most usable first (see [`FoundServer::url`]).
    pub addresses: Vec<IpAddr>,
    /// The HTTP port.
    pub port: u16,
    /// `version` from the TXT record.
    pub version: Option<String>,
    /// `api` from the TXT record, e.g. `/api/v1`.
    pub api: Option<String>,
    /// `auth` from the TXT record: `none` or `token`.
    pub auth: Option<String>,
}

impl FoundServer {
    /// The server's base URL, e.g. `http://192.168.1.20:41234` (no trailing slash), on the most
    /// usable address: IPv4 first (LAN, then link-local, then loopback), then IPv6. An IPv6
    /// link-local address is never used: it means nothing without its interface scope.
    ///
    /// `None` when no address is usable.
    pub fn url(&self) -> Option<String> {
        self.urls().into_iter().next()
    }

    /// Every usable base URL of the server, the most usable first (the order of
    /// [`FoundServer::url`]): a client tries them in turn when one does not answer.
    pub fn urls(&self) -> Vec<String> {
        let mut usable: Vec<IpAddr> = self
            .addresses
            .iter()
            .copied()
            .filter(|ip| address_rank(*ip).is_some())
            .collect();
        usable.sort_by_key(|ip| address_rank(*ip));
        usable.dedup();
        usable
            .into_iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => format!("http://{v4}:{}", self.port),
                IpAddr::V6(v6) => format!("http://[{v6}]:{}", self.port),
            })
            .collect()
    }

    fn from_resolved(service: &ResolvedService) -> Option<FoundServer> {
        let instance = instance_of(&service.fullname)?;
        let mut addresses: Vec<IpAddr> = service
            .get_addresses()
            .iter()
            .map(|ip| ip.to_ip_addr())
            .collect();
        addresses.sort_by_key(|ip| (address_rank(*ip).unwrap_or(u8::MAX), *ip));
        addresses.dedup();
        let txt = |key| service.get_property_val_str(key).map(str::to_owned);
        Some(FoundServer {
            instance,
            host: service.host.clone(),
            addresses,
            port: service.port,
            version: txt("version"),
            api: txt("api"),
            auth: txt("auth"),
        })
    }
}

/// How usable an address is for reaching a server, lower first; `None` for never.
fn address_rank(ip: IpAddr) -> Option<u8> {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() => None,
        IpAddr::V4(v4) if v4.is_link_local() => Some(1),
        IpAddr::V4(v4) if v4.is_loopback() => Some(2),
        IpAddr::V4(_) => Some(0),
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => None,
        IpAddr::V6(v6) if v6.is_unicast_link_local() => None,
        IpAddr::V6(v6) if v6.is_loopback() => Some(4),
        IpAddr::V6(_) => Some(3),
    }
}

/// The instance name in a service's full name (`<instance>._healthchecker._tcp.local.`),
/// unescaped; `None` for another service type.
fn instance_of(fullname: &str) -> Option<String> {
    let cut = fullname.len().checked_sub(SERVICE_TYPE.len() + 1)?;
    let (escaped, suffix) = (fullname.get(..cut)?, fullname.get(cut..)?);
    if !suffix.strip_prefix('.')?.eq_ignore_ascii_case(SERVICE_TYPE) {
        return None;
    }
    let mut instance = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => instance.extend(chars.next()),
            c => instance.push(c),
        }
    }
    Some(instance)
}

/// What a [`Browser`] sees.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowseEvent {
    /// A server was resolved (SRV, TXT and an address), or its records changed.
    Resolved(FoundServer),
    /// A server said goodbye, or its records expired.
    Removed {
        /// Its instance name.
        instance: String,
    },
}

/// A running search for healthchecker servers: an mDNS daemon of its own, on every interface.
///
/// Dropping it stops its daemon.
pub struct Browser {
    daemon: ServiceDaemon,
    events: mpsc::Receiver<ServiceEvent>,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts an mDNS daemon and queries for [`SERVICE_TYPE`].
    ///
    /// # Errors
    ///
    /// [`BrowseError`] when the daemon cannot start or refuses the query.
    pub fn start() -> Result<Browser, BrowseError> {
        let daemon = ServiceDaemon::new().map_err(BrowseError::Daemon)?;
        let receiver = match daemon.browse(SERVICE_TYPE) {
            Ok(receiver) => receiver,
            Err(source) => {
                // Without a Browser to drop, stop the daemon here.
                let _ = daemon.shutdown();
                return Err(BrowseError::Command {
                    action: format!("browse {SERVICE_TYPE}"),
                    source,
                });
            }
        };
        // The daemon's channel blocks; a thread hands its events to async readers, and ends
        // when the daemon stops (it then drops the sender) or the reader goes away.
        let (sender, events) = mpsc::channel(EVENT_CAPACITY);
        let spawned = thread::Builder::new()
            .name("mdns-browse".to_owned())
            .spawn(move || {
                while let Ok(event) = receiver.recv() {
                    if sender.blocking_send(event).is_err() {
                        break;
                    }
                }
            });
        if let Err(error) = spawned {
            let _ = daemon.shutdown();
            return Err(BrowseError::Daemon(mdns_sd::Error::Msg(format!(
                "cannot start a thread: {error}"
            ))));
        }
        Ok(Browser { daemon, events })
    }

    /// The next thing seen about a healthchecker server; `None` once the daemon has stopped.
    ///
    /// Cancel-safe: use it with `tokio::time::timeout`.
    pub async fn next_event(&mut self) -> Option<BrowseEvent> {
        loop {
            match self.events.recv().await? {
                ServiceEvent::ServiceResolved(service) => {
                    match FoundServer::from_resolved(&service) {
                        Some(found) => return Some(BrowseEvent::Resolved(found)),
                        None => tracing::debug!("mDNS: ignored {}", service.fullname),
                    }
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    if let Some(instance) = instance_of(&fullname) {
                        return Some(BrowseEvent::Removed { instance });
                    }
                }
                ServiceEvent::SearchStopped(_) => return None,
                other => tracing::trace!("mDNS: {other:?}"),
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Err(error) = self.daemon.shutdown() {
            tracing::debug!("mDNS browse daemon already stopped: {error}");
        }
    }
}

/// Every healthchecker server that answers within `timeout`, sorted by instance name.
///
/// Waits the whole `timeout` (servers answer at different times); an empty list means none
/// answered.
///
/// # Errors
///
/// [`BrowseError`] when the mDNS daemon cannot start.
pub async fn browse(timeout: Duration) -> Result<Vec<FoundServer>, BrowseError> {
    let mut browser = Browser::start()?;
    let mut found: BTreeMap<String, FoundServer> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, browser.next_event()).await {
        match event {
            BrowseEvent::Resolved(server) => {
                merge(&mut found, server);
            }
            BrowseEvent::Removed { instance } => {
                found.remove(&instance);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// Keeps the latest record of each server, with every address it has been seen at.
fn merge(found: &mut BTreeMap<String, FoundServer>, mut server: FoundServer) {
    if let Some(known) = found.get(&server.instance)
        && known.port == server.port
    {
        for ip in &known.addresses {
            if !server.addresses.contains(ip) {
                server.addresses.push(*ip);
            }
        }
        server
            .addresses
            .sort_by_key(|ip| (address_rank(*ip).unwrap_or(u8::MAX), *ip));
    }
    found.insert(server.instance.clone(), server);
}

/// The first healthchecker server with a usable address ([`FoundServer::url`]) that answers
/// within `timeout`; returns as soon as one does.
///
/// # Errors
///
/// [`BrowseError::NotFound`] when none answers in time; [`BrowseError`] when the mDNS
/// daemon cannot start.
pub async fn find_first(timeout: Duration) -> Result<FoundServer, BrowseError> {
    let mut browser = Browser::start()?;
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, browser.next_event()).await {
        if let BrowseEvent::Resolved(server) = event
            && server.url().is_some()
        {
            return Ok(server);
        }
    }
    Err(BrowseError::NotFound(timeout))
}

/// Where a handle's server URL came from, which decides whether a server that stops answering
/// is looked for again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Given to [`HealthCheckerServer::at`](crate::HealthCheckerServer::at): the user knows
    /// where the server is; never second-guessed.
    Explicit,
    /// From `HEALTHCHECKER_URL`: the same.
    Env,
    /// Found over mDNS, listening this long: looked for again when it stops answering.
    Mdns {
        /// The discovery timeout.
        timeout: Duration,
    },
}

/// A server, where it answered, and what it said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// The base URL that answered.
    pub(crate) url: Url,
    /// The mDNS instance name, when found over mDNS: a later search prefers the same server.
    pub(crate) instance: Option<String>,
    /// The server advertised `auth=token`.
    pub(crate) auth_token: bool,
}

impl Location {
    fn given(url: Url) -> Location {
        Location {
            url,
            instance: None,
            auth_token: false,
        }
    }
}

/// The base URL of a healthchecker server: `HEALTHCHECKER_URL` when it is set (then nothing is
/// sent over mDNS), else the first server advertised over mDNS within `timeout` that answers
/// `GET /health` on one of its addresses, tried in [`FoundServer::urls`] order.
///
/// This is how [`HealthCheckerServer::discover`](crate::HealthCheckerServer::discover) finds
/// its server, for tools that need only the URL (the server's `list` and `log` subcommands
/// without `--server`). Unlike [`find_first`], it skips a server or an address that does not
/// answer.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `HEALTHCHECKER_URL` is set but not an http(s) URL;
/// [`Error::ServerNotFound`] when no server answered in time (the message says what to do);
/// [`Error::Discovery`] when mDNS cannot be used at all.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), healthchecker_client::Error> {
/// use healthchecker_client::discovery::{DEFAULT_DISCOVERY_TIMEOUT, locate_server};
///
/// let url = locate_server(DEFAULT_DISCOVERY_TIMEOUT).await?;
/// println!("healthchecker server at {url}");
/// # Ok(())
/// # }
/// ```
pub async fn locate_server(timeout: Duration) -> Result<Url> {
    let http = Http::from_env()?;
    Ok(find_server(http.client(), timeout).await?.0.url)
}

/// Finds the server: `HEALTHCHECKER_URL` when it is set, else the first server that answers
/// over mDNS within `timeout` ([`find_reachable`]).
///
/// # Errors
///
/// [`Error::InvalidInput`] when `HEALTHCHECKER_URL` is set but not an http(s) URL;
/// [`Error::ServerNotFound`] when no server answered in time; [`Error::Discovery`] when mDNS
/// cannot be used at all.
pub(crate) async fn find_server(
    http: &reqwest::Client,
    timeout: Duration,
) -> Result<(Location, Origin)> {
    if let Some(url) = from_env(std::env::var(ENV_URL).ok())? {
        return Ok((Location::given(url), Origin::Env));
    }
    let location = find_reachable(http, timeout, None).await?;
    Ok((location, Origin::Mdns { timeout }))
}

/// Browses for `timeout` at most and returns the first server that answers `GET /health` on
/// one of its addresses, tried in [`FoundServer::urls`] order.
///
/// With `prefer` (the instance name of the server used so far), that server is taken as soon
/// as it answers; another one only if it does not within `timeout`, since a different server
/// does not know the app's registration.
///
/// # Errors
///
/// [`Error::ServerNotFound`] (naming the servers that were seen but did not answer) and
/// [`Error::Discovery`].
pub(crate) async fn find_reachable(
    http: &reqwest::Client,
    timeout: Duration,
    prefer: Option<&str>,
) -> Result<Location> {
    let mut browser = Browser::start()?;
    let deadline = Instant::now() + timeout;
    let mut fallback: Option<Location> = None;
    // URLs that did not answer, by instance, for the error; and not probed twice.
    let mut silent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, browser.next_event()).await {
        let BrowseEvent::Resolved(server) = event else {
            continue;
        };
        let preferred = prefer.is_none_or(|name| name == server.instance);
        if !preferred && fallback.is_some() {
            continue;
        }
        for text in server.urls() {
            if silent
                .get(&server.instance)
                .is_some_and(|urls| urls.contains(&text))
            {
                continue;
            }
            let Ok(url) = parse_base_url("url", &text) else {
                continue;
            };
            if answers(http, &url, deadline).await {
                if server.api.as_deref().is_some_and(|api| api != API_PATH) {
                    tracing::warn!(
                        "the healthchecker server {:?} at {url} advertises the API at {:?}; \
                         this client speaks {API_PATH}",
                        server.instance,
                        server.api.as_deref().unwrap_or_default()
                    );
                }
                let location = Location {
                    url,
                    auth_token: server.auth.as_deref() == Some("token"),
                    instance: Some(server.instance.clone()),
                };
                if preferred {
                    return Ok(location);
                }
                fallback = Some(location);
                break;
            }
            tracing::debug!(
                "healthchecker server {:?} does not answer at {text}",
                server.instance
            );
            silent
                .entry(server.instance.clone())
                .or_default()
                .insert(text);
        }
    }
    if let Some(location) = fallback {
        tracing::warn!(
            "the healthchecker server {:?} was not found again; using {:?} at {} instead",
            prefer.unwrap_or_default(),
            location.instance.as_deref().unwrap_or_default(),
            location.url
        );
        return Ok(location);
    }
    Err(Error::ServerNotFound {
        waited: timeout,
        unreachable: silent
            .into_iter()
            .map(|(instance, urls)| {
                format!(
                    "{instance:?} at {}",
                    urls.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
            .collect(),
    })
}

/// Whether a server answers `GET {url}/health` at all (any HTTP status: it is there).
async fn answers(http: &reqwest::Client, url: &Url, deadline: Instant) -> bool {
    let Ok(health) = url.join("health") else {
        return false;
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .clamp(PROBE_MIN, PROBE_TIMEOUT);
    http.get(health).timeout(wait).send().await.is_ok()
}

/// The server URL from the value of `HEALTHCHECKER_URL`; unset or blank means "not given".
fn from_env(value: Option<String>) -> Result<Option<Url>> {
    match value {
        Some(text) if !text.trim().is_empty() => parse_base_url(ENV_URL, &text).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn env_value_table() {
        assert_eq!(from_env(None).expect("unset"), None);
        assert_eq!(from_env(Some(String::new())).expect("empty"), None);
        assert_eq!(from_env(Some("  ".into())).expect("blank"), None);
        assert_eq!(
            from_env(Some("http://127.0.0.1:8080".into()))
                .expect("valid")
                .map(String::from),
            Some("http://127.0.0.1:8080/".to_owned())
        );
        let err = from_env(Some("127.0.0.1:8080".into())).expect_err("no scheme");
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "HEALTHCHECKER_URL",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn instance_names_are_read_back_from_full_names() {
        assert_eq!(
            instance_of("healthchecker on pi._healthchecker._tcp.local.").as_deref(),
            Some("healthchecker on pi")
        );
        assert_eq!(
            instance_of("healthchecker on nas\\.lan._HealthChecker._tcp.local.").as_deref(),
            Some("healthchecker on nas.lan")
        );
        assert_eq!(instance_of("printer._ipp._tcp.local."), None);
        assert_eq!(instance_of("_healthchecker._tcp.local."), None);
        assert_eq!(instance_of(""), None);
    }

    fn server(addresses: &[IpAddr]) -> FoundServer {
        FoundServer {
            instance: "healthchecker on pi".into(),
            host: "pi.local.".into(),
            addresses: addresses.to_vec(),
            port: 4000,
            version: None,
            api: None,
            auth: None,
        }
    }

    #[test]
    fn url_prefers_lan_ipv4_and_never_uses_unscoped_link_local_ipv6() {
        let lan: IpAddr = Ipv4Addr::new(192, 168, 1, 20).into();
        let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
        let auto_v4: IpAddr = Ipv4Addr::new(169, 254, 3, 4).into();
        let link_v6: IpAddr = "fe80::1".parse::<Ipv6Addr>().expect("ip").into();
        let global_v6: IpAddr = "2001:db8::7".parse::<Ipv6Addr>().expect("ip").into();
        let v6_loopback: IpAddr = Ipv6Addr::LOCALHOST.into();

        let url = |ips: &[IpAddr]| server(ips).url();
        assert_eq!(
            url(&[link_v6, global_v6, loopback, lan, auto_v4]).as_deref(),
            Some("http://192.168.1.20:4000")
        );
        assert_eq!(
            url(&[link_v6, loopback, auto_v4]).as_deref(),
            Some("http://169.254.3.4:4000")
        );
        assert_eq!(
            url(&[v6_loopback, loopback]).as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(
            url(&[v6_loopback, link_v6, global_v6]).as_deref(),
            Some("http://[2001:db8::7]:4000")
        );
        assert_eq!(url(&[link_v6]), None);
        assert_eq!(url(&[]), None);
    }

    #[test]
    fn urls_lists_every_usable_address_in_order() {
        let lan: IpAddr = Ipv4Addr::new(198, 18, 0, 1).into();
        let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
        let link_v6: IpAddr = "fe80::1".parse::<Ipv6Addr>().expect("ip").into();
        let v6_loopback: IpAddr = Ipv6Addr::LOCALHOST.into();
        assert_eq!(
            server(&[v6_loopback, link_v6, loopback, lan, loopback]).urls(),
            [
                "http://198.18.0.1:4000",
                "http://127.0.0.1:4000",
                "http://[::1]:4000"
            ]
        );
        assert!(server(&[link_v6]).urls().is_empty());
    }

    #[test]
    fn browse_results_merge_addresses_and_follow_a_new_port() {
        let a: IpAddr = Ipv4Addr::new(198, 18, 0, 1).into();
        let b: IpAddr = Ipv4Addr::LOCALHOST.into();
        let mut found = BTreeMap::new();
        merge(&mut found, server(&[b]));
        merge(&mut found, server(&[a]));
        assert_eq!(found["healthchecker on pi"].addresses, [a, b]);
        let mut moved = server(&[b]);
        moved.port = 5000;
        merge(&mut found, moved.clone());
        assert_eq!(found["healthchecker on pi"], moved);
    }
}
