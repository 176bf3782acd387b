//! Name lookups for checks, kept off tokio's blocking pool.
//!
//! `tokio::net::lookup_host` runs `getaddrinfo` on the runtime's blocking pool, the threads that
//! also run the store's reads. With the DNS server down, each lookup holds a thread for the
//! system resolver's whole timeout (5 s, times its attempts), and enough host-name monitors
//! would hold every thread: API reads and mail would wait behind them. So:
//!
//! * Names are looked up with hickory-resolver: asynchronous (UDP and TCP on the runtime, no
//!   thread per lookup), set up from `/etc/resolv.conf` and `/etc/hosts` like the system's
//!   resolver, A and AAAA asked together (for Happy Eyeballs), with a cache that keeps each
//!   answer for its TTL and a negative answer for the zone's negative TTL. `localhost` is the
//!   loopback addresses (RFC 6761) without asking anyone. At most [`DNS_LOOKUPS`] lookups are
//!   in flight at once (each holds a UDP socket, an open file), the others wait their turn
//!   within their check's timeout.
//! * Names under `.local` are mDNS names (RFC 6762), which a unicast DNS server does not know:
//!   the system resolver (`getaddrinfo`, which asks nss-mdns where it is installed) looks them
//!   up, on threads of their own, at most [`SYSTEM_LOOKUPS`] at a time. A lookup that hangs
//!   holds one of those threads, never one of the runtime's.
//! * When `/etc/resolv.conf` cannot be read, the name server is 127.0.0.1, as glibc does; never
//!   a public resolver.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs as _};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::sync::Semaphore;

/// Most DNS lookups in flight at once.
pub const DNS_LOOKUPS: usize = 64;

/// Most system (`getaddrinfo`) lookups of `.local` names at once, each on a thread of its own.
pub const SYSTEM_LOOKUPS: usize = 4;

/// Most answers the DNS cache keeps (an answer is one name and record type).
const CACHE_SIZE: u64 = 4096;

/// A name did not resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum LookupError {
    /// The name has no address (NXDOMAIN, or no A or AAAA record).
    #[error("no such host")]
    NoAddress,
    /// The DNS server did not answer, or answered with an error; what went wrong.
    #[error("{0}")]
    Dns(String),
    /// The system resolver failed (for a `.local` name).
    #[error("{0}")]
    System(String),
}

/// The probe's resolver: hickory for DNS, the system's for mDNS names. Cheap to share.
pub(super) struct Resolver {
    dns: TokioResolver,
    /// Permits for DNS lookups in flight.
    dns_slots: Arc<Semaphore>,
    /// Permits for system lookups, each held by its thread until `getaddrinfo` returns.
    system_slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// How a name is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    /// By DNS (hickory).
    Dns,
    /// By the system resolver: an mDNS name.
    System,
}

/// Which resolver answers for `name`: the system's for `.local` names, DNS for the others.
pub(super) fn path(name: &str) -> Path {
    let name = name.strip_suffix('.').unwrap_or(name);
    let local = name.len() > ".local".len()
        && name
            .get(name.len() - ".local".len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".local"));
    if local { Path::System } else { Path::Dns }
}

impl Resolver {
    /// The system's DNS settings (`/etc/resolv.conf`, `/etc/hosts`), or 127.0.0.1 when they
    /// cannot be read.
    pub(super) fn system() -> Resolver {
        let mut builder = match TokioResolver::builder_tokio() {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(
                    %error,
                    "cannot read the system's DNS settings for the probe; asking 127.0.0.1"
                );
                let local = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![local]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        probe_options(builder.options_mut());
        Resolver::from_dns(builder.build())
    }

    /// Asks only `servers` (UDP, then TCP when an answer is truncated), and not `/etc/hosts`:
    /// for tests, which run their own DNS server on loopback.
    pub(super) fn with_name_servers(servers: &[SocketAddr]) -> Resolver {
        let servers = servers
            .iter()
            .map(|server| {
                let mut config = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut config.connections {
                    connection.port = server.port();
                }
                config
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        );
        probe_options(builder.options_mut());
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        Resolver::from_dns(builder.build())
    }

    fn from_dns(dns: Result<TokioResolver, hickory_resolver::net::NetError>) -> Resolver {
        Resolver {
            dns: dns.expect("a resolver with a configuration is always built"),
            dns_slots: Arc::new(Semaphore::new(DNS_LOOKUPS)),
            system_slots: Arc::new(Semaphore::new(SYSTEM_LOOKUPS)),
        }
    }

    /// The addresses of `name`, in the resolver's order.
    pub(super) async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        match path(name) {
            Path::Dns => self.lookup_dns(name).await,
            Path::System => self.lookup_system(name).await,
        }
    }

    async fn lookup_dns(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let _slot = self
            .dns_slots
            .acquire()
            .await
            .map_err(|_| LookupError::Dns("the resolver is closed".to_owned()))?;
        match self.dns.lookup_ip(name).await {
            Ok(found) => {
                let ips: Vec<IpAddr> = found.iter().collect();
                if ips.is_empty() {
                    Err(LookupError::NoAddress)
                } else {
                    Ok(ips)
                }
            }
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => {
                Err(LookupError::NoAddress)
            }
            Err(error) => Err(LookupError::Dns(error.to_string())),
        }
    }

    async fn lookup_system(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let slot = Arc::clone(&self.system_slots)
            .acquire_owned()
            .await
            .map_err(|_| LookupError::System("the resolver is closed".to_owned()))?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let name = name.to_owned();
        std::thread::Builder::new()
            .name("probe-lookup".to_owned())
            .spawn(move || {
                let found = (name.as_str(), 0).to_socket_addrs();
                // The check may have given up (its timeout): nobody to tell, then.
                let _ = answer.send(found.map(|addrs| addrs.map(|addr| addr.ip()).collect()));
                drop(slot);
            })
            .map_err(|error| LookupError::System(error.to_string()))?;
        match answered.await {
            Ok(Ok(ips)) => {
                let ips: Vec<IpAddr> = ips;
                if ips.is_empty() {
                    Err(LookupError::NoAddress)
                } else {
                    Ok(ips)
                }
            }
            Ok(Err(error)) => Err(system_error(&error)),
            Err(_) => Err(LookupError::System("the lookup thread ended".to_owned())),
        }
    }
}

/// What `getaddrinfo`'s error means for the probe.
fn system_error(error: &io::Error) -> LookupError {
    // glibc's "Name or service not known" and its kin say the name has no address.
    let text = error.to_string();
    if text.contains("not known") || text.contains("No address") {
        LookupError::NoAddress
    } else {
        LookupError::System(text)
    }
}

/// The probe's resolver options on top of `options`: both address families (for Happy
/// Eyeballs) and a cache for many monitors' names. TTLs are the zone's, untouched.
fn probe_options(options: &mut ResolverOpts) {
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.cache_size = CACHE_SIZE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdns_names_go_to_the_system_resolver() {
        for (name, expected) in [
            ("media-center.local", Path::System),
            ("Media-Center.LOCAL.", Path::System),
            ("nas.home.local", Path::System),
            ("local", Path::Dns),
            (".local", Path::Dns),
            ("app.lan", Path::Dns),
            ("localhost", Path::Dns),
            ("example.localdomain", Path::Dns),
            ("notlocal", Path::Dns),
        ] {
            assert_eq!(path(name), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn the_system_path_answers_from_its_own_threads() {
        let resolver = Resolver::with_name_servers(&[]);
        // `localhost` is in every /etc/hosts; the system path is asked directly here.
        let ips = resolver
            .lookup_system("localhost")
            .await
            .expect("localhost");
        assert!(ips.iter().all(IpAddr::is_loopback), "{ips:?}");
        assert!(!ips.is_empty());
    }
}
