//! `allowed_targets` where it is enforced: at registration ([`Targets::admit`], a refusal that
//! names the field `url`) and at every new connection ([`inside`], which the connector calls
//! after each lookup, so the address checked is the address connected to).
//!
//! A registration whose host is a name outside the list is looked up with the resolver the
//! checks use. When the lookup cannot answer (the DNS is down, the name does not exist yet), the
//! registration is taken: the checks judge it, and they connect only inside. When it answers, every
//! address must be inside; one outside is a refusal. The rules themselves are
//! [`AllowedTargets`]'.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Host;

use super::http::Error;
use super::resolve::Resolver;
use crate::config::targets::AllowedTargets;
use crate::registry::{FieldError, MonitorSpec};

/// How long a registration waits for the lookup of its host name; longer, and it is taken
/// without (its checks are judged at each connection).
pub const ADMIT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// `allowed_targets` with the resolver the checks use: what a registration is checked against.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Targets {
    allowed: Option<Arc<AllowedTargets>>,
    resolver: Arc<Resolver>,
}

impl Targets {
    /// No restriction at all (the default of a server without `allowed_targets`).
    pub fn anywhere() -> Targets {
        Targets::new(None, Arc::new(Resolver::system()))
    }

    /// `allowed` (no restriction when `None`) with the system's resolver; a server uses
    /// [`Prober::targets`](super::Prober::targets) instead, which shares the checks' resolver.
    pub fn system(allowed: Option<AllowedTargets>) -> Targets {
        Targets::new(allowed.map(Arc::new), Arc::new(Resolver::system()))
    }

    pub(super) fn new(allowed: Option<Arc<AllowedTargets>>, resolver: Arc<Resolver>) -> Targets {
        Targets { allowed, resolver }
    }

    /// Whether any restriction is set.
    pub fn is_restricted(&self) -> bool {
        self.allowed.is_some()
    }

    /// Refuses a registration whose target is outside `allowed_targets`: an address outside
    /// every range, or a name (not listed itself) that resolves to an address outside.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] for `url` that names the address outside and the list.
    pub async fn admit(&self, spec: &MonitorSpec) -> Result<(), FieldError> {
        let Some(allowed) = &self.allowed else {
            return Ok(());
        };
        if spec.is_push() {
            return Ok(()); // nothing is fetched: the job pings the server
        }
        let refuse = |why: String| {
            FieldError::new(
                "url",
                spec.url.as_str(),
                format!("a target inside allowed_targets ({allowed}): {why}"),
            )
        };
        // `spec.host()` reads an address written as a name as the address: the url crate leaves
        // the host of `tcp://127.0.0.1:22` (a scheme it does not know) a name.
        match spec.host() {
            None => Ok(()),
            Some(Host::Ipv4(ip)) => check_address(allowed, IpAddr::V4(ip)).map_err(refuse),
            Some(Host::Ipv6(ip)) => check_address(allowed, IpAddr::V6(ip)).map_err(refuse),
            Some(Host::Domain(name)) => {
                if allowed.allows_name(&name) {
                    return Ok(());
                }
                let lookup =
                    tokio::time::timeout(ADMIT_LOOKUP_TIMEOUT, self.resolver.lookup(&name)).await;
                let Ok(Ok(ips)) = lookup else {
                    tracing::debug!(
                        host = %name,
                        "registration taken without a lookup of its host; its checks are judged at each connection"
                    );
                    return Ok(());
                };
                match ips.into_iter().find(|ip| !allowed.allows_ip(*ip)) {
                    Some(outside) => Err(refuse(format!("{name} resolves to {outside}"))),
                    None => Ok(()),
                }
            }
        }
    }
}

fn check_address(allowed: &AllowedTargets, ip: IpAddr) -> Result<(), String> {
    if allowed.allows_ip(ip) {
        Ok(())
    } else {
        Err(format!("{ip} is outside"))
    }
}

/// The addresses of `host` a new connection may try: all of them without `allowed`, else those
/// inside it (all of them for a listed name). None inside (of some) is [`Error::NotAllowed`]; no
/// addresses at all stay none (the caller reports that the name has none).
pub(super) fn inside(
    allowed: Option<&AllowedTargets>,
    host: &Host<String>,
    mut ips: Vec<IpAddr>,
) -> Result<Vec<IpAddr>, Error> {
    let Some(allowed) = allowed else {
        return Ok(ips);
    };
    let name = match host {
        Host::Domain(name) => Some(name.as_str()),
        Host::Ipv4(_) | Host::Ipv6(_) => None,
    };
    let Some(&first) = ips.first() else {
        return Ok(ips);
    };
    ips.retain(|&ip| allowed.allows(name, ip));
    if ips.is_empty() {
        return Err(Error::NotAllowed {
            name: name.map(str::to_owned),
            ip: first,
        });
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn allowed(entries: &[&str]) -> AllowedTargets {
        let entries: Vec<String> = entries.iter().map(|&entry| entry.to_owned()).collect();
        AllowedTargets::parse(&entries)
            .expect("valid")
            .expect("some")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn connections_go_only_to_addresses_inside() {
        let list = allowed(&["10.0.0.0/8", "nas.lan"]);
        let name = |text: &str| Host::Domain(text.to_owned());
        let inside = |host: &Host<String>, ips: &[&str]| {
            super::inside(Some(&list), host, ips.iter().map(|text| ip(text)).collect())
        };
        assert_eq!(
            inside(&name("app.lan"), &["192.168.1.1", "10.0.0.5"]).expect("one inside"),
            [ip("10.0.0.5")],
            "the address outside is never tried"
        );
        let refused = inside(&name("app.lan"), &["192.168.1.1", "::1"]).expect_err("none");
        assert!(
            matches!(&refused, Error::NotAllowed { name: Some(name), ip: first }
                if name == "app.lan" && *first == ip("192.168.1.1")),
            "{refused:?}"
        );
        let literal = Host::Ipv4(Ipv4Addr::new(127, 0, 0, 1));
        assert!(matches!(
            inside(&literal, &["127.0.0.1"]),
            Err(Error::NotAllowed { name: None, .. })
        ));
        assert_eq!(
            inside(&name("NAS.lan"), &["203.0.113.9"]).expect("a listed name"),
            [ip("203.0.113.9")]
        );
        assert!(inside(&name("app.lan"), &[]).expect("none").is_empty());
        assert_eq!(
            super::inside(None, &literal, vec![ip("127.0.0.1")]).expect("no list"),
            [ip("127.0.0.1")]
        );
    }
}
