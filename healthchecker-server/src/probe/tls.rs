//! `tls://host:port`: a TCP connection and a TLS handshake (SNI the host name, none for an
//! address; no ALPN) within the timeout pass; the certificate's expiry is recorded and watched
//! (see [`cert`](super::cert)). A refused connection, a failed handshake, an untrusted or expired
//! certificate (with `tls_verify` on) fail.
//!
//! After the handshake the probe says `close_notify` and closes: nothing else is sent.

use futures_util::FutureExt as _;
use tokio::io::AsyncWriteExt as _;
use url::Host;

use super::connect::TlsUse;
use super::http::{Client, Progress};
use super::{Failure, Verdict, transport_failure};

/// Connects to `host` and `port`, does the handshake, and closes.
pub(super) async fn check(
    client: &Client,
    host: &Host<String>,
    port: u16,
    verify: bool,
    progress: &mut Progress,
) -> Result<Verdict, Failure> {
    let connector = client.connector();
    let tcp = connector
        .connect_tcp(host, port, progress, &|| client.make_room())
        .await
        .map_err(|error| transport_failure(&error))?;
    let tls_use = TlsUse {
        http: false,
        verify,
    };
    let mut tls = connector
        .handshake(tcp, host, tls_use, progress)
        .await
        .map_err(|error| transport_failure(&error))?;
    // Polite, not part of the verdict, and not waited for: `close_notify` goes out if the
    // socket takes it now (it does, unless the peer stopped reading), and the drop closes.
    let _ = tls.stream.shutdown().now_or_never();
    Ok(Verdict::pass())
}
