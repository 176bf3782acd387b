//! Who this server is: its host name, the service name it goes by on the LAN and the id it gives
//! in `GET /health`.
//!
//! An [`Identity`] is read from the machine once, at start ([`Identity::of_this_host`]), and
//! handed to the parts that show it (the API's [`AppState`](crate::api::AppState), the mDNS
//! [`AdvertiseOptions`](crate::discovery::AdvertiseOptions), the server's URL in mail), so that
//! nothing below the server asks the machine again and tests can pin it
//! ([`Identity::for_host`]). A leaf: it imports nothing of this crate.

/// This server's names, as shown on the LAN and in answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// This machine's host name, or `localhost` when it has none.
    pub host_name: String,
    /// The name the server goes by on the LAN: `healthchecker on <host_name>`, its mDNS
    /// instance name.
    pub service_name: String,
    /// `serviceId` in `GET /health`: the service name.
    pub service_id: String,
}

impl Identity {
    /// The identity of a server on this machine, from its host name.
    pub fn of_this_host() -> Identity {
        let host = hostname::get()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_default();
        Identity::for_host(&host)
    }

    /// The identity of a server on the machine called `host` (`localhost` when it is empty).
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_server::identity::Identity;
    ///
    /// let identity = Identity::for_host("pi");
    /// assert_eq!(identity.service_name, "healthchecker on pi");
    /// assert_eq!(identity.service_id, "healthchecker on pi");
    /// assert_eq!(Identity::for_host("").host_name, "localhost");
    /// ```
    pub fn for_host(host: &str) -> Identity {
        let host_name = if host.is_empty() { "localhost" } else { host }.to_owned();
        let service_name = format!("healthchecker on {host_name}");
        Identity {
            service_id: service_name.clone(),
            service_name,
            host_name,
        }
    }
}
