//! `icmp://host`: one ICMP echo (IPv4 or IPv6) answered within the timeout passes; no reply, a
//! host or network that cannot be reached, or a name that does not resolve fails.
//!
//! The echo goes through surge-ping, one socket per address family shared by every check (made at
//! the first check of that family), with a sequence number of its own for each check so that
//! replies are matched to their check. Which socket:
//!
//! * an unprivileged ping socket (`SOCK_DGRAM`, `IPPROTO_ICMP`) where the kernel allows it: its
//!   `net.ipv4.ping_group_range` (which covers IPv6 too) includes the server's group;
//! * else a raw socket, which needs `CAP_NET_RAW` (root, `setcap cap_net_raw+ep`, or
//!   `AmbientCapabilities=CAP_NET_RAW` in a systemd unit).
//!
//! [`availability`] opens (and closes) such a socket to say which one works, and when neither
//! does, why and what to change: registering an `icmp://` monitor is then refused (422) instead of
//! making a monitor that always fails.

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use url::Host;

use super::http::{Client as HttpClient, Progress};
use super::{Failure, Reason, Verdict, io_failure, transport_failure};

/// What an echo request carries.
const PAYLOAD: &[u8; 16] = b"healthchecker hc";

/// The file that says which groups may open unprivileged ping sockets.
const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Which kind of ICMP socket the server can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// An unprivileged ping socket (`SOCK_DGRAM`).
    Ping,
    /// A raw socket (`SOCK_RAW`, with `CAP_NET_RAW`).
    Raw,
}

/// No ICMP socket can be opened: why, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Which ICMP socket of the family of IPv6 (`v6`) or IPv4 this process can open, trying an
/// unprivileged ping socket first and a raw one second.
///
/// # Errors
///
/// [`Unavailable`] saying why neither opens and what to change.
pub fn availability(v6: bool) -> Result<SocketKind, Unavailable> {
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let ping = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(_) => return Ok(SocketKind::Ping),
        Err(error) => error,
    };
    let raw = match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(_) => return Ok(SocketKind::Raw),
        Err(error) => error,
    };
    let range = std::fs::read_to_string(PING_GROUP_RANGE).ok();
    Err(Unavailable(unavailable_message(
        v6,
        &ping,
        &raw,
        range.as_deref(),
        rustix::process::getgid().as_raw(),
    )))
}

/// Why neither socket opens (`ping` and `raw` are the errors of each), and what to change; pure.
fn unavailable_message(
    v6: bool,
    ping: &io::Error,
    raw: &io::Error,
    range: Option<&str>,
    gid: u32,
) -> String {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let range = range.map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "));
    let ping_why = match (ping.kind(), &range) {
        (io::ErrorKind::PermissionDenied, Some(range)) => format!(
            "unprivileged ping sockets are not allowed for its group {gid} \
             (net.ipv4.ping_group_range is \"{range}\")"
        ),
        _ => format!("an unprivileged ping socket cannot be opened ({ping})"),
    };
    let raw_why = match raw.kind() {
        io::ErrorKind::PermissionDenied => "it has no CAP_NET_RAW for a raw socket".to_owned(),
        _ => format!("a raw socket cannot be opened ({raw})"),
    };
    format!(
        "icmp:// checks need an ICMP socket, and this server can open no {family} one: \
         {ping_why}, and {raw_why}. Allow ping sockets with \
         `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` (or a range with group {gid}; \
         /etc/sysctl.d/ keeps it), or give the server CAP_NET_RAW \
         (`setcap cap_net_raw+ep $(command -v healthchecker-server)`, or \
         AmbientCapabilities=CAP_NET_RAW in its systemd unit)"
    )
}

/// The ICMP sockets of the probe, made when first needed, and the sequence numbers of checks.
#[derive(Default)]
pub(super) struct Pinger {
    v4: Mutex<Option<Client>>,
    v6: Mutex<Option<Client>>,
    sequence: AtomicU16,
}

impl std::fmt::Debug for Pinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinger").finish_non_exhaustive()
    }
}

impl Pinger {
    /// The client (socket) for `ip`'s family, made now if it is the first.
    fn client(&self, ip: IpAddr) -> Result<Client, Failure> {
        let (slot, kind) = match ip {
            IpAddr::V4(_) => (&self.v4, ICMP::V4),
            IpAddr::V6(_) => (&self.v6, ICMP::V6),
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        // Ping sockets first; surge-ping falls back to a raw socket by itself.
        let config = Config::builder()
            .kind(kind)
            .sock_type_hint(socket2::Type::DGRAM)
            .build();
        let client = Client::new(&config).map_err(|_| {
            let why = match availability(ip.is_ipv6()) {
                Err(Unavailable(why)) => why,
                Ok(_) => "cannot open an ICMP socket".to_owned(),
            };
            Failure::new(Reason::Other, why)
        })?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Sends one echo request to `host` (its first address, IPv6 first as for connections) and
    /// waits for the reply; the caller bounds the wait with the monitor's timeout.
    pub(super) async fn check(
        &self,
        client: &HttpClient,
        host: &Host<String>,
        progress: &mut Progress,
    ) -> Result<Verdict, Failure> {
        let ips = client
            .connector()
            .resolve(host, progress)
            .await
            .map_err(|error| transport_failure(&error))?;
        let Some(&ip) = ips.first() else {
            return Err(Failure::new(
                Reason::Dns,
                format!("host name {host} has no address"),
            ));
        };
        progress.pinged = Some(ip);
        let icmp = self.client(ip)?;
        let mut pinger = icmp.pinger(ip, PingIdentifier(fastrand::u16(..))).await;
        // The monitor's timeout bounds the check from outside.
        pinger.timeout(Duration::from_secs(3600));
        let sequence = PingSequence(self.sequence.fetch_add(1, Ordering::Relaxed));
        match pinger.ping(sequence, PAYLOAD).await {
            Ok(_) => Ok(Verdict::pass()),
            Err(SurgeError::IOError(error)) => Err(io_failure(error.kind()).map_or_else(
                || {
                    Failure::new(
                        Reason::Other,
                        format!("cannot send an echo to {ip}: {error}"),
                    )
                },
                |failure| match failure.reason {
                    Reason::Connect => Failure::new(
                        Reason::Unreachable,
                        format!("{} (echo to {ip})", failure.detail),
                    ),
                    _ => failure,
                },
            )),
            Err(SurgeError::Timeout { .. }) => Err(no_reply(ip, None)),
            Err(error) => Err(Failure::new(
                Reason::Other,
                format!("echo to {ip} failed: {error}"),
            )),
        }
    }
}

/// No echo reply from `ip` (within `within`, when known).
pub(super) fn no_reply(ip: IpAddr, within: Option<&str>) -> Failure {
    Failure::new(
        Reason::NoReply,
        match within {
            Some(within) => format!("no echo reply from {ip} within {within}"),
            None => format!("no echo reply from {ip}"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_why_and_what_to_change() {
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        let message = unavailable_message(false, &denied(), &denied(), Some("1\t0\n"), 1000);
        assert!(
            message.starts_with(
                "icmp:// checks need an ICMP socket, and this server can open no IPv4 one: \
                 unprivileged ping sockets are not allowed for its group 1000 \
                 (net.ipv4.ping_group_range is \"1 0\"), and it has no CAP_NET_RAW for a raw socket."
            ),
            "{message}"
        );
        assert!(message.contains("net.ipv4.ping_group_range=\"0 2147483647\""));
        assert!(message.contains("setcap cap_net_raw+ep"));
        assert!(message.contains("AmbientCapabilities=CAP_NET_RAW"));
        let other = io::Error::from(io::ErrorKind::Unsupported);
        let message = unavailable_message(true, &other, &other, None, 0);
        assert!(message.contains("no IPv6 one"), "{message}");
        assert!(
            message.contains("an unprivileged ping socket cannot be opened"),
            "{message}"
        );
    }
}
