//! Finding a free TCP port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use crate::{Error, Result};

/// Returns a TCP port that is free on `127.0.0.1` at the moment of the call.
///
/// The port is found by binding `127.0.0.1:0` and asking the operating system which port it
/// chose; the socket is closed again before this function returns. Nothing is sent.
///
/// **The race:** between this function returning and your program binding the port, any other
/// process may take it. When you can, bind port `0` yourself and read the port back from the
/// listener (`listener.local_addr()?.port()`): that is race-free. Use this function only when
/// something else must be told the port before the socket can be opened.
///
/// # Errors
///
/// [`Error::Bind`] when the operating system refuses the bind (e.g. no loopback interface).
///
/// # Examples
///
/// ```
/// let port = iputils::find_free_port()?;
/// assert_ne!(port, 0);
/// # Ok::<(), iputils::Error>(())
/// ```
pub fn find_free_port() -> Result<u16> {
    find_free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Returns a TCP port that is free on the address `ip` at the moment of the call.
///
/// Binds `ip:0` and returns the port the operating system chose, closing the socket again.
/// `0.0.0.0` asks for a port free on every IPv4 address. The same race as for
/// [`find_free_port`] applies: prefer binding port `0` yourself when you can.
///
/// # Errors
///
/// [`Error::Bind`] when `ip` is not an address of this host or the bind is refused.
///
/// # Examples
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
///
/// let port = iputils::find_free_port_on(IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
/// assert_ne!(port, 0);
/// # Ok::<(), iputils::Error>(())
/// ```
pub fn find_free_port_on(ip: IpAddr) -> Result<u16> {
    let addr = SocketAddr::new(ip, 0);
    let listener = TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?
        .port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_right_after() {
        let port = find_free_port().expect("free port");
        assert_ne!(port, 0);
        // Usually still free a moment later (this is the documented race, so only a sanity check
        // that the port number is a real, bindable one).
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        assert!(listener.is_ok() || find_free_port().is_ok());
    }

    #[test]
    fn binding_a_foreign_address_is_a_typed_error() {
        // 192.0.2.1 (TEST-NET-1) is never an address of this host; binding sends nothing.
        let err = find_free_port_on(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))).expect_err("bind");
        assert!(matches!(err, Error::Bind { .. }));
        assert!(err.to_string().contains("192.0.2.1:0"), "{err}");
    }
}
