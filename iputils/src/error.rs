//! The crate's error type.

use std::io;
use std::net::SocketAddr;

/// What can go wrong while looking up this host's address or a free port.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system would not list the network interfaces.
    #[error("cannot list this host's network interfaces: {source}")]
    Interfaces {
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// No interface that is up holds an IPv4 address other than loopback.
    ///
    /// Returned instead of `127.0.0.1` on purpose: a loopback URL handed to a server on
    /// another machine would make that server poll itself and report the app as down.
    #[error(
        "no LAN IPv4 address found on this host (interfaces seen: {seen}); connect to a network, \
         or give your app's URL explicitly (use 127.0.0.1 only when the healthchecker server \
         runs on this same machine)"
    )]
    NoLanAddress {
        /// The interfaces and addresses that were considered, for the message.
        seen: String,
    },

    /// Binding a socket to find a free port failed.
    #[error(
        "cannot bind {addr} to find a free port: {source}; is that address one of this host's?"
    )]
    Bind {
        /// The address that was bound.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}
