//! Finding this host's LAN address without sending anything.
//!
//! The policy, in one place: among interfaces that are up, take an IPv4 address that is not
//! loopback, unspecified, multicast or broadcast. Rank the candidates by
//!
//! 1. the interface: a real one before a point-to-point link (VPN tunnel) or a well-known
//!    virtual bridge (`docker0`, `virbr0`, `veth…`, …), whose address other hosts on the LAN
//!    usually cannot reach;
//! 2. the address: private ranges (10/8, 172.16/12, 192.168/16) before other addresses, and
//!    those before link-local (169.254/16);
//! 3. the order the operating system listed them in.
//!
//! Loopback is never chosen: when nothing else is left, the answer is
//! [`Error::NoLanAddress`], because a loopback URL given to a server on another machine makes
//! that server poll itself.

use std::net::{IpAddr, Ipv4Addr};

use crate::{Error, Result};

/// Name prefixes of interfaces that are usually virtual: container and VM bridges, VPNs.
/// Their addresses come after those of real interfaces.
const VIRTUAL_PREFIXES: &[&str] = &[
    "docker",
    "br-",
    "veth",
    "virbr",
    "vboxnet",
    "vmnet",
    "lxcbr",
    "lxdbr",
    "cni",
    "flannel",
    "cali",
    "cilium",
    "weave",
    "podman",
    "kube",
    "tun",
    "tap",
    "wg",
    "tailscale",
    "zt",
    "utun",
];

/// The state of an interface that matters for choosing an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceFlags {
    /// The interface is operationally up (`IFF_RUNNING` on Linux).
    pub up: bool,
    /// The interface is a loopback interface.
    pub loopback: bool,
    /// The interface is a point-to-point link, typically a VPN tunnel.
    pub point_to_point: bool,
}

/// One address of one network interface, as the operating system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface's name, e.g. `eth0`.
    pub name: String,
    /// One address the interface holds.
    pub addr: IpAddr,
    /// The interface's state.
    pub flags: InterfaceFlags,
}

impl InterfaceAddr {
    /// An interface address from its parts.
    ///
    /// # Examples
    ///
    /// ```
    /// use iputils::{InterfaceAddr, InterfaceFlags};
    ///
    /// let up = InterfaceFlags { up: true, ..InterfaceFlags::default() };
    /// let eth0 = InterfaceAddr::new("eth0", [192, 168, 1, 20].into(), up);
    /// assert_eq!(eth0.name, "eth0");
    /// ```
    pub fn new(name: impl Into<String>, addr: IpAddr, flags: InterfaceFlags) -> Self {
        Self {
            name: name.into(),
            addr,
            flags,
        }
    }
}

/// Returns this host's best IPv4 address on the LAN, without sending any packet.
///
/// The interfaces are listed with the operating system's `getifaddrs`, and the choice is made by
/// [`choose_lan_addr`] (see its documentation for the ranking).
///
/// # Errors
///
/// * [`Error::Interfaces`] when the interfaces cannot be listed;
/// * [`Error::NoLanAddress`] when no interface that is up holds a non-loopback IPv4 address.
///   This function never falls back to `127.0.0.1`: pass a loopback URL explicitly when the
///   healthchecker server runs on the same machine.
///
/// # Examples
///
/// ```no_run
/// let port = 8080;
/// let url = format!("http://{}:{port}", iputils::my_ip_addr()?);
/// println!("this app is reachable at {url}");
/// # Ok::<(), iputils::Error>(())
/// ```
pub fn my_ip_addr() -> Result<Ipv4Addr> {
    let interfaces = if_addrs::get_if_addrs().map_err(|source| Error::Interfaces { source })?;
    let listed: Vec<InterfaceAddr> = interfaces
        .iter()
        .map(|iface| InterfaceAddr {
            name: iface.name.clone(),
            addr: iface.ip(),
            flags: InterfaceFlags {
                up: iface.is_oper_up(),
                loopback: iface.is_loopback(),
                point_to_point: iface.is_p2p(),
            },
        })
        .collect();
    choose_lan_addr(&listed).ok_or_else(|| Error::NoLanAddress {
        seen: describe(&listed),
    })
}

/// Chooses the best LAN IPv4 address among `interfaces`, or `None` when there is none.
///
/// A pure function, so the policy is testable: only interfaces that are up count, and only
/// IPv4 addresses that are not loopback, unspecified (`0.0.0.0/8`), multicast or broadcast.
/// Among those it prefers
///
/// 1. real interfaces to point-to-point links and well-known virtual bridges
///    (`docker0`, `br-…`, `veth…`, `virbr…`, `wg…`, `tailscale…`, …);
/// 2. then private addresses (10/8, 172.16/12, 192.168/16) to other addresses, and other
///    addresses to link-local ones (169.254/16);
/// 3. then the earlier entry in `interfaces`.
///
/// # Examples
///
/// ```
/// use std::net::Ipv4Addr;
/// use iputils::{InterfaceAddr, InterfaceFlags, choose_lan_addr};
///
/// let up = InterfaceFlags { up: true, ..InterfaceFlags::default() };
/// let lo = InterfaceFlags { up: true, loopback: true, ..InterfaceFlags::default() };
/// let listed = [
///     InterfaceAddr::new("lo", [127, 0, 0, 1].into(), lo),
///     InterfaceAddr::new("docker0", [172, 17, 0, 1].into(), up),
///     InterfaceAddr::new("eth0", [192, 168, 1, 20].into(), up),
/// ];
/// assert_eq!(choose_lan_addr(&listed), Some(Ipv4Addr::new(192, 168, 1, 20)));
/// ```
#[must_use]
pub fn choose_lan_addr(interfaces: &[InterfaceAddr]) -> Option<Ipv4Addr> {
    interfaces
        .iter()
        .enumerate()
        .filter_map(|(position, iface)| {
            let IpAddr::V4(ip) = iface.addr else {
                return None;
            };
            if !iface.flags.up || iface.flags.loopback {
                return None;
            }
            let class = address_class(ip)?;
            let secondary = iface.flags.point_to_point || is_virtual(&iface.name);
            Some(((secondary, class, position), ip))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, ip)| ip)
}

/// Rank of an address by kind (lower is better), or `None` when it can never be a LAN address.
fn address_class(ip: Ipv4Addr) -> Option<u8> {
    if ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() || ip.octets()[0] == 0 {
        None
    } else if ip.is_private() {
        Some(0)
    } else if ip.is_link_local() {
        Some(2)
    } else {
        Some(1)
    }
}

fn is_virtual(name: &str) -> bool {
    VIRTUAL_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// A short list of what was seen, for the error message.
fn describe(listed: &[InterfaceAddr]) -> String {
    if listed.is_empty() {
        return "none".to_owned();
    }
    listed
        .iter()
        .map(|iface| {
            let state = if iface.flags.up { "" } else { " (down)" };
            format!("{} {}{state}", iface.name, iface.addr)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: InterfaceFlags = InterfaceFlags {
        up: true,
        loopback: false,
        point_to_point: false,
    };
    const DOWN: InterfaceFlags = InterfaceFlags {
        up: false,
        loopback: false,
        point_to_point: false,
    };
    const LOOP: InterfaceFlags = InterfaceFlags {
        up: true,
        loopback: true,
        point_to_point: false,
    };
    const P2P: InterfaceFlags = InterfaceFlags {
        up: true,
        loopback: false,
        point_to_point: true,
    };

    fn entry(name: &str, addr: &str, flags: InterfaceFlags) -> InterfaceAddr {
        InterfaceAddr::new(name, addr.parse().expect("test address"), flags)
    }

    #[test]
    fn choice_table() {
        // (what, listed interfaces, expected choice)
        let table: Vec<(&str, Vec<InterfaceAddr>, Option<&str>)> = vec![
            ("nothing listed", vec![], None),
            ("only loopback", vec![entry("lo", "127.0.0.1", LOOP)], None),
            (
                "loopback address on a non-loopback interface",
                vec![entry("eth0", "127.0.0.2", UP)],
                None,
            ),
            (
                "lan over loopback",
                vec![
                    entry("lo", "127.0.0.1", LOOP),
                    entry("eth0", "192.168.1.20", UP),
                ],
                Some("192.168.1.20"),
            ),
            (
                "down interface skipped",
                vec![
                    entry("eth0", "192.168.1.20", DOWN),
                    entry("wlan0", "10.0.0.7", UP),
                ],
                Some("10.0.0.7"),
            ),
            (
                "only down interfaces",
                vec![entry("eth0", "192.168.1.20", DOWN)],
                None,
            ),
            (
                "ipv6 ignored",
                vec![
                    entry("eth0", "fe80::1", UP),
                    entry("eth0", "2001:db8::5", UP),
                ],
                None,
            ),
            (
                "private before global",
                vec![
                    entry("eth0", "203.0.113.9", UP),
                    entry("eth1", "172.20.3.4", UP),
                ],
                Some("172.20.3.4"),
            ),
            (
                "172.32 is not private: 10/8 wins",
                vec![
                    entry("eth0", "172.32.0.1", UP),
                    entry("eth1", "10.1.2.3", UP),
                ],
                Some("10.1.2.3"),
            ),
            (
                "global before link-local",
                vec![
                    entry("eth0", "169.254.10.20", UP),
                    entry("eth1", "198.18.0.2", UP),
                ],
                Some("198.18.0.2"),
            ),
            (
                "link-local when nothing else",
                vec![
                    entry("lo", "127.0.0.1", LOOP),
                    entry("eth0", "169.254.10.20", UP),
                ],
                Some("169.254.10.20"),
            ),
            (
                "first of equals wins",
                vec![
                    entry("eth0", "192.168.1.20", UP),
                    entry("wlan0", "192.168.1.21", UP),
                ],
                Some("192.168.1.20"),
            ),
            (
                "docker bridge after real interface, even a global one",
                vec![
                    entry("docker0", "172.17.0.1", UP),
                    entry("eth0", "203.0.113.9", UP),
                ],
                Some("203.0.113.9"),
            ),
            (
                "vpn tunnel after real interface",
                vec![
                    entry("wg0", "10.8.0.2", P2P),
                    entry("wlan0", "192.168.0.5", UP),
                ],
                Some("192.168.0.5"),
            ),
            (
                "point-to-point flag counts even with an unknown name",
                vec![
                    entry("ppp0", "10.64.0.2", P2P),
                    entry("en0", "192.168.0.5", UP),
                ],
                Some("192.168.0.5"),
            ),
            (
                "virtual bridge when it is all there is",
                vec![
                    entry("lo", "127.0.0.1", LOOP),
                    entry("virbr0", "192.168.122.1", UP),
                ],
                Some("192.168.122.1"),
            ),
            (
                "unspecified, multicast and broadcast never chosen",
                vec![
                    entry("eth0", "0.0.0.0", UP),
                    entry("eth0", "224.0.0.251", UP),
                    entry("eth0", "255.255.255.255", UP),
                ],
                None,
            ),
        ];
        for (what, listed, expected) in table {
            let expected = expected.map(|s| s.parse::<Ipv4Addr>().expect("test address"));
            assert_eq!(choose_lan_addr(&listed), expected, "{what}");
        }
    }

    #[test]
    fn no_lan_address_message_lists_what_was_seen() {
        let listed = vec![
            entry("lo", "127.0.0.1", LOOP),
            entry("eth0", "192.168.1.20", DOWN),
        ];
        let err = Error::NoLanAddress {
            seen: describe(&listed),
        };
        let msg = err.to_string();
        assert!(
            msg.contains("lo 127.0.0.1, eth0 192.168.1.20 (down)"),
            "{msg}"
        );
        assert!(msg.contains("explicitly"), "{msg}");
        assert_eq!(describe(&[]), "none");
    }

    /// The one test of the real interfaces: it lists them (no packet is sent) and checks only
    /// properties, since the answer depends on the machine.
    #[test]
    fn real_interfaces_give_a_non_loopback_answer_or_a_clear_error() {
        let listed = if_addrs::get_if_addrs().expect("list interfaces");
        let has_lan = listed.iter().any(|iface| {
            matches!(iface.ip(), IpAddr::V4(ip) if address_class(ip).is_some())
                && iface.is_oper_up()
                && !iface.is_loopback()
        });
        match my_ip_addr() {
            Ok(ip) => {
                assert!(!ip.is_loopback(), "{ip}");
                assert!(!ip.is_unspecified(), "{ip}");
                assert!(
                    listed.iter().any(|iface| iface.ip() == IpAddr::V4(ip)),
                    "{ip} is one of this host's addresses"
                );
            }
            Err(Error::NoLanAddress { .. }) => assert!(!has_lan, "a LAN address exists"),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}
