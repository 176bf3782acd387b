//! `allowed_targets`: what monitors may point at, so that whoever may register cannot make the
//! server reach any host of the LAN (DESIGN.md, "The server is not a proxy into the LAN").
//!
//! The list holds address ranges (`192.168.1.0/24`, `fd00::/8`, or one address) and host names
//! (`nas.lan`, or `*.lab.home` for every name under `lab.home`). A target is inside when its host
//! is a listed name, or when the address the server connects to is in a listed range. A listed
//! name is trusted to whatever it resolves to; any other name is judged by its addresses, at
//! registration and again at each check (the probe connects only to addresses inside), so a name
//! whose DNS answer moves (DNS rebinding) cannot lead a check outside.
//!
//! Pure: parsing and matching, no lookups (those are the probe's).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// One entry of `allowed_targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// An address range (a single address is a /32 or /128).
    Net(IpNet),
    /// This host name, lowercase, without a trailing dot.
    Name(String),
    /// Every name under this domain (`*.lab.home`: `nas.lab.home`, `a.b.lab.home`; not
    /// `lab.home` itself), lowercase.
    Under(String),
}

/// The validated `allowed_targets` list; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTargets {
    entries: Vec<Entry>,
}

/// An entry of `allowed_targets` that is neither a range, an address nor a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid entry {entry:?}: expected address ranges such as 192.168.1.0/24 or fd00::/8, \
     addresses such as 192.168.1.20, or host names such as nas.lan or *.lab.home"
)]
pub struct TargetEntryError {
    /// The entry as given.
    pub entry: String,
}

impl AllowedTargets {
    /// Reads the entries of the option; an empty list is `None` (no restriction).
    ///
    /// # Errors
    ///
    /// [`TargetEntryError`] naming the first entry that is not a range, an address or a name.
    pub fn parse(entries: &[String]) -> Result<Option<AllowedTargets>, TargetEntryError> {
        let mut parsed = Vec::with_capacity(entries.len());
        for text in entries {
            let entry = parse_entry(text.trim()).ok_or_else(|| TargetEntryError {
                entry: text.clone(),
            })?;
            if !parsed.contains(&entry) {
                parsed.push(entry);
            }
        }
        Ok((!parsed.is_empty()).then_some(AllowedTargets { entries: parsed }))
    }

    /// Whether the host name `name` is listed (itself, or under a `*.` entry): then every
    /// address it resolves to is allowed.
    pub fn allows_name(&self, name: &str) -> bool {
        let name = normal_name(name);
        self.entries.iter().any(|entry| match entry {
            Entry::Name(listed) => *listed == name,
            Entry::Under(domain) => name
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            Entry::Net(_) => false,
        })
    }

    /// Whether the address `ip` is in a listed range (an IPv4-mapped IPv6 address counts as its
    /// IPv4 address).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.entries.iter().any(|entry| match entry {
            Entry::Net(net) => net.contains(&ip),
            Entry::Name(_) | Entry::Under(_) => false,
        })
    }

    /// Whether a connection to `ip` for the host `name` (`None` when the target is written as
    /// an address) is inside: the name is listed, or the address is in a range.
    pub fn allows(&self, name: Option<&str>, ip: IpAddr) -> bool {
        name.is_some_and(|name| self.allows_name(name)) || self.allows_ip(ip)
    }
}

impl fmt::Display for AllowedTargets {
    /// The list as a user reads it: `192.168.1.0/24, nas.lan, *.lab.home`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.entries.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            match entry {
                Entry::Net(net) => write!(f, "{net}")?,
                Entry::Name(name) => f.write_str(name)?,
                Entry::Under(domain) => write!(f, "*.{domain}")?,
            }
        }
        Ok(())
    }
}

/// `name` lowercase, without a trailing dot.
fn normal_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn parse_entry(text: &str) -> Option<Entry> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(Entry::Net(canonical_net(net).trunc()));
    }
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Some(Entry::Net(IpNet::from(ip.to_canonical())));
    }
    let (under, name) = match text.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, text),
    };
    let name = normal_name(name);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        })
        // A name of digits and dots is a mistyped address, not a host name.
        && !name.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !valid {
        return None;
    }
    Some(if under {
        Entry::Under(name)
    } else {
        Entry::Name(name)
    })
}

/// `::ffff:10.0.0.0/104` as `10.0.0.0/8`, so that a range written either way matches both.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedTargets {
        let entries: Vec<String> = entries.iter().map(|&entry| entry.to_owned()).collect();
        AllowedTargets::parse(&entries)
            .expect("valid")
            .expect("not empty")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn ranges_addresses_and_names() {
        let allowed = list(&[
            "192.168.1.0/24",
            "10.0.0.7",
            "fd00::/8",
            "[fe80::1]",
            "NAS.lan.",
            "*.Lab.Home",
        ]);
        for inside in [
            "192.168.1.1",
            "192.168.1.255",
            "10.0.0.7",
            "fd12::1",
            "fe80::1",
        ] {
            assert!(allowed.allows_ip(ip(inside)), "{inside}");
        }
        for outside in ["192.168.2.1", "10.0.0.8", "127.0.0.1", "::1", "fe80::2"] {
            assert!(!allowed.allows_ip(ip(outside)), "{outside}");
        }
        assert!(allowed.allows_ip(ip("::ffff:192.168.1.9")), "IPv4-mapped");
        for name in ["nas.lan", "NAS.LAN.", "a.lab.home", "x.y.lab.home"] {
            assert!(allowed.allows_name(name), "{name}");
        }
        for name in [
            "lab.home",
            "evil-lab.home",
            "nas.lan.evil.com",
            "xnas.lan",
            "router",
        ] {
            assert!(!allowed.allows_name(name), "{name}");
        }
        assert!(
            allowed.allows(Some("nas.lan"), ip("8.8.8.8")),
            "a listed name"
        );
        assert!(allowed.allows(Some("router.lan"), ip("192.168.1.1")));
        assert!(!allowed.allows(Some("router.lan"), ip("192.168.9.1")));
        assert!(!allowed.allows(None, ip("192.168.9.1")));
        assert_eq!(
            allowed.to_string(),
            "192.168.1.0/24, 10.0.0.7/32, fd00::/8, fe80::1/128, nas.lan, *.lab.home"
        );
    }

    #[test]
    fn ranges_are_normalised() {
        let allowed = list(&["10.1.2.3/8", "::ffff:172.16.0.0/108"]);
        assert_eq!(allowed.to_string(), "10.0.0.0/8, 172.16.0.0/12");
        assert!(allowed.allows_ip(ip("172.31.255.255")));
        assert!(allowed.allows_ip(ip("::ffff:10.9.9.9")));
    }

    #[test]
    fn empty_is_no_restriction_and_bad_entries_are_named() {
        assert_eq!(AllowedTargets::parse(&[]), Ok(None));
        for bad in [
            "",
            "10.0.0.0/33",
            "300.1.1.1",
            "1.2.3",
            "a b",
            "http://nas.lan",
            "nas.lan:80",
            "*.",
            "*",
            "-a.lan",
            "a..b",
        ] {
            let error = AllowedTargets::parse(&[bad.to_owned()]).expect_err(bad);
            assert_eq!(error.entry, bad);
            assert!(error.to_string().contains("192.168.1.0/24"), "{error}");
        }
    }
}
