//! The two small network helpers an app needs to tell a healthchecker server where it is:
//! its LAN address ([`my_ip_addr`]) and a free TCP port ([`find_free_port`]).
//!
//! Neither helper sends a packet: the address comes from the list of this host's network
//! interfaces, and the port from binding a listening socket that is closed again at once.
//!
//! # Layout
//!
//! * `addr`: finding this host's LAN address; the choice itself is the pure function
//!   [`choose_lan_addr`] over a list of [`InterfaceAddr`], so it is tested with tables.
//! * `port`: finding a free TCP port.
//! * `error`: the crate's one error type, [`Error`].

mod addr;
mod error;
mod port;

pub use addr::{InterfaceAddr, InterfaceFlags, choose_lan_addr, my_ip_addr};
pub use error::Error;
pub use port::{find_free_port, find_free_port_on};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
