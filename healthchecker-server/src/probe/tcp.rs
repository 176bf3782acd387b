//! `tcp://host:port`: a TCP connection made within the timeout passes; refused, reset,
//! unreachable, a name that does not resolve, or no connection in time fails.
//!
//! The connection is made the way an http check makes one (the name looked up without holding
//! a thread, the addresses raced the Happy Eyeballs way), then closed at once: nothing is sent.

use url::Host;

use super::http::{Client, Progress};
use super::{Failure, Verdict, transport_failure};

/// Connects to `host` and `port` once and closes the connection.
pub(super) async fn check(
    client: &Client,
    host: &Host<String>,
    port: u16,
    progress: &mut Progress,
) -> Result<Verdict, Failure> {
    let tcp = client
        .connector()
        .connect_tcp(host, port, progress, &|| client.make_room())
        .await
        .map_err(|error| transport_failure(&error))?;
    drop(tcp);
    Ok(Verdict::pass())
}
