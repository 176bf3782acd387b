//! Making a connection for a check: the host's addresses (see [`resolve`](super::resolve)),
//! tried the Happy Eyeballs way (RFC 8305), then TLS for https and tls.
//!
//! * The addresses are put in RFC 8305's order (§4): the families interleaved, IPv6 first, each
//!   family in the order the resolver gave.
//! * The first address is tried at once, the next when that attempt fails or after
//!   [`ATTEMPT_DELAY`] (§5), and so on; the first connection made wins and the other attempts are
//!   dropped (closed). So an app whose name has an IPv6 address that does not answer (a stale
//!   AAAA record, an IPv6 route that goes nowhere) is reached on IPv4 a quarter of a second
//!   later, not after the monitor's whole timeout.
//! * Out of open files, the pool is asked to make room (close the older half of the idle
//!   connections) and the attempt is made again, once.
//! * With `allowed_targets`, only the addresses inside it are tried (all of them for a listed
//!   name); none inside is [`Error::NotAllowed`], before any packet is sent. The ICMP echo takes
//!   its address from [`Connector::resolve`] too, so every kind of check is held to the list.
//! * TLS comes in four settings, made once: verified (the system's trust store) or not
//!   (`tls_verify: false`, see [`cert::AnyCertificate`](super::cert::AnyCertificate)), each with
//!   ALPN `http/1.1` for https or without ALPN for `tls://` (a TLS service that is not HTTP may
//!   refuse a client that offers only `http/1.1`). SNI is the host name; none for an address.
//!   The leaf certificate's expiry is read once, after the handshake, and kept with the
//!   connection.
//!
//! hyper-util's `HttpConnector` does a simpler Happy Eyeballs (RFC 6555: one fallback timer
//! between two families, addresses of one family one after the other) and comes with its own
//! resolver interface; the staggered race is short, and its ordering a pure function tested as
//! a table.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use url::Host;

use super::http::{Error, Progress};
use super::pool::Key;
use super::resolve::Resolver;
use super::targets;
use crate::config::targets::AllowedTargets;

/// RFC 8305's "Connection Attempt Delay": how long an attempt runs alone before the next address
/// is tried beside it (the RFC recommends 250 ms).
pub(super) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// What a TLS connection is for, which picks its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TlsUse {
    /// https (ALPN `http/1.1`), or a `tls://` check (no ALPN).
    pub(super) http: bool,
    /// Whether the certificate must be trusted and name the host.
    pub(super) verify: bool,
}

/// Makes connections: resolves, races the addresses, does TLS.
pub(super) struct Connector {
    resolver: Arc<Resolver>,
    /// TLS settings by [`TlsUse`]: `[http verified, http any, raw verified, raw any]`.
    tls: [TlsConnector; 4],
    /// `allowed_targets`: where connections (and echoes) may go; `None`: anywhere.
    allowed: Option<Arc<AllowedTargets>>,
}

impl Connector {
    /// A connector that looks names up with `resolver`, goes only inside `allowed` (when set),
    /// and makes verified https connections with `tls` (whose ALPN should be `http/1.1`); the
    /// other three settings are made from it: the same trust without ALPN, and any certificate
    /// (with and without ALPN).
    pub(super) fn new(
        resolver: Arc<Resolver>,
        tls: Arc<rustls::ClientConfig>,
        allowed: Option<Arc<AllowedTargets>>,
    ) -> Connector {
        let provider = Arc::clone(tls.crypto_provider());
        let mut raw = (*tls).clone();
        raw.alpn_protocols.clear();
        let any = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map(|builder| {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(super::cert::AnyCertificate::new(
                        provider,
                    )))
                    .with_no_client_auth()
            });
        let (any_http, any_raw) = match any {
            Ok(any) => {
                let mut http = any.clone();
                http.alpn_protocols.clone_from(&tls.alpn_protocols);
                (Arc::new(http), Arc::new(any))
            }
            // The provider took the verifying settings, so it takes these; should it not, the
            // verifying ones stand in (a self-signed certificate then fails as untrusted).
            Err(_) => (Arc::clone(&tls), Arc::new(raw.clone())),
        };
        Connector {
            resolver,
            tls: [
                TlsConnector::from(tls),
                TlsConnector::from(any_http),
                TlsConnector::from(Arc::new(raw)),
                TlsConnector::from(any_raw),
            ],
            allowed,
        }
    }

    /// A new connection for `key`: resolve (noted in `progress` while it lasts), connect, and
    /// for https the TLS handshake. `make_room` is called when the server is out of open files;
    /// it says whether it closed anything.
    pub(super) async fn connect(
        &self,
        key: &Key,
        progress: &mut Progress,
        make_room: &(dyn Fn() -> bool + Sync),
    ) -> Result<Stream, Error> {
        let tcp = self
            .connect_tcp(&key.host, key.port, progress, make_room)
            .await?;
        if !key.https {
            return Ok(Stream::Plain(tcp));
        }
        let tls_use = TlsUse {
            http: true,
            verify: key.verify,
        };
        let tls = self.handshake(tcp, &key.host, tls_use, progress).await?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// A TCP connection to `host` and `port`: resolve (noted in `progress` while it lasts), then
    /// race the addresses.
    pub(super) async fn connect_tcp(
        &self,
        host: &Host<String>,
        port: u16,
        progress: &mut Progress,
        make_room: &(dyn Fn() -> bool + Sync),
    ) -> Result<TcpStream, Error> {
        let ips = self.resolve(host, progress).await?;
        let addrs: Vec<SocketAddr> = ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        let tcp = race(&addrs, ATTEMPT_DELAY, |addr| async move {
            match TcpStream::connect(addr).await {
                Err(error) if out_of_files(&error) && make_room() => TcpStream::connect(addr).await,
                attempt => attempt,
            }
        })
        .await
        .map_err(|error| match error {
            Some(error) => Error::Connect(error),
            // A name that resolved to no address at all.
            None => Error::Dns(host.to_string(), "no address".to_owned()),
        })?;
        // The request is one small write: waiting to coalesce it would only add latency.
        tcp.set_nodelay(true).map_err(Error::Connect)?;
        Ok(tcp)
    }

    /// The addresses of `host` in RFC 8305's order (the name looked up, noted in `progress`
    /// while it lasts), only those inside `allowed_targets`: every kind's check (a connection,
    /// or an ICMP echo) goes to an address from here.
    pub(super) async fn resolve(
        &self,
        host: &Host<String>,
        progress: &mut Progress,
    ) -> Result<Vec<IpAddr>, Error> {
        let ips = match host {
            Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
            Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
            Host::Domain(name) => {
                progress.resolving = Some(name.clone());
                let ips = self
                    .resolver
                    .lookup(name)
                    .await
                    .map_err(|error| Error::Dns(name.clone(), error.to_string()))?;
                progress.resolving = None;
                ips
            }
        };
        let ips = targets::inside(self.allowed.as_deref(), host, ips)?;
        Ok(rfc8305_order(ips))
    }

    /// The TLS handshake on `tcp` with the settings of `tls_use`, SNI `host` (none for an
    /// address); the leaf certificate's expiry is read and kept with the connection. A
    /// certificate refused for having expired leaves its expiry in `progress`.
    pub(super) async fn handshake(
        &self,
        tcp: TcpStream,
        host: &Host<String>,
        tls_use: TlsUse,
        progress: &mut Progress,
    ) -> Result<TlsConnection, Error> {
        let name = match host {
            Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(*ip).into()),
            Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(*ip).into()),
            Host::Domain(name) => ServerName::try_from(name.clone()).map_err(|_| {
                Error::Tls(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name:?} is not a valid DNS name"),
                ))
            })?,
        };
        let connector = &self.tls[usize::from(!tls_use.http) * 2 + usize::from(!tls_use.verify)];
        progress.handshaking = true;
        let tls = connector.connect(name, tcp).await.map_err(|error| {
            progress.cert_not_after = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .and_then(super::cert::expired_not_after);
            Error::Tls(error)
        })?;
        progress.handshaking = false;
        let not_after = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(super::cert::leaf_not_after);
        progress.cert_not_after = not_after;
        Ok(TlsConnection {
            stream: tls,
            not_after,
        })
    }
}

/// A TLS connection and its leaf certificate's expiry (read once, after the handshake).
#[derive(Debug)]
pub(super) struct TlsConnection {
    /// The stream.
    pub(super) stream: TlsStream<TcpStream>,
    /// The end-entity certificate's `notAfter`, when it could be read.
    pub(super) not_after: Option<DateTime<Utc>>,
}

/// The server has no file descriptor left for a socket (its own limit, or the system's).
pub(super) fn out_of_files(error: &io::Error) -> bool {
    use rustix::io::Errno;

    matches!(
        Errno::from_io_error(error),
        Some(Errno::MFILE | Errno::NFILE)
    )
}

/// RFC 8305 §4: the addresses with their families interleaved, IPv6 first, each family in the
/// order given (the resolver's). Duplicates are left out.
pub(super) fn rfc8305_order(ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut unique: Vec<IpAddr> = Vec::with_capacity(ips.len());
    for ip in ips {
        if !unique.contains(&ip) {
            unique.push(ip);
        }
    }
    let (mut v6, mut v4): (Vec<IpAddr>, Vec<IpAddr>) =
        unique.into_iter().partition(IpAddr::is_ipv6);
    let mut ordered = Vec::with_capacity(v6.len() + v4.len());
    let (mut v6, mut v4) = (v6.drain(..), v4.drain(..));
    loop {
        match (v6.next(), v4.next()) {
            (None, None) => return ordered,
            (first, second) => ordered.extend(first.into_iter().chain(second)),
        }
    }
}

/// Races `connect` over `addrs` (RFC 8305 §5): the first at once, each next one when the
/// attempts so far have all failed or `delay` after the last one started, whichever is first.
/// The first success wins (the attempts still running are dropped); when every attempt fails,
/// the first error to arrive, or `None` when there was no address.
pub(super) async fn race<T, F, Fut>(
    addrs: &[SocketAddr],
    delay: Duration,
    connect: F,
) -> Result<T, Option<io::Error>>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut waiting = addrs.iter();
    let mut running = FuturesUnordered::new();
    let mut first_error = None;
    loop {
        if running.is_empty() {
            match waiting.next() {
                Some(&addr) => running.push(connect(addr)),
                None => return Err(first_error),
            }
        }
        let more = waiting.len() > 0;
        tokio::select! {
            biased;
            Some(attempt) = running.next() => match attempt {
                Ok(connection) => return Ok(connection),
                Err(error) => {
                    first_error.get_or_insert(error);
                    // The next one starts now (at the top of the loop, when none is running).
                    if more
                        && !running.is_empty()
                        && let Some(&addr) = waiting.next()
                    {
                        running.push(connect(addr));
                    }
                }
            },
            () = tokio::time::sleep(delay), if more => {
                if let Some(&addr) = waiting.next() {
                    running.push(connect(addr));
                }
            }
        }
    }
}

/// A connection: plain TCP, or TLS over TCP (boxed: a TLS stream is large, and most are plain).
#[derive(Debug)]
pub(super) enum Stream {
    /// http.
    Plain(TcpStream),
    /// https.
    Tls(Box<TlsConnection>),
}

impl Stream {
    /// The TCP socket under the connection.
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.stream.get_ref().0,
        }
    }

    /// The expiry of the certificate the connection was made with (https).
    pub(super) fn cert_not_after(&self) -> Option<DateTime<Utc>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls.not_after,
        }
    }

    /// Whether an idle connection still looks usable: nothing to read (the app has neither
    /// closed it nor sent anything unasked), looked at without waiting. For plain TCP a
    /// non-blocking read of one byte; for TLS a read through the TLS layer, so that what the
    /// app sends after the handshake without being asked (TLS 1.3 session tickets) is taken in
    /// and not mistaken for data, and its `close_notify` or a closed socket is seen.
    pub(super) fn looks_open(&mut self) -> bool {
        match self {
            Stream::Plain(tcp) => matches!(
                tcp.try_read(&mut [0u8; 1]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock
            ),
            Stream::Tls(tls) => {
                let mut byte = [0u8; 1];
                let mut buf = ReadBuf::new(&mut byte);
                let mut cx = Context::from_waker(Waker::noop());
                Pin::new(&mut tls.stream)
                    .poll_read(&mut cx, &mut buf)
                    .is_pending()
            }
        }
    }

    /// Leaves no waker of the finished check registered with the runtime for this socket.
    ///
    /// The last thing hyper does with a reusable connection is to look for more to read, which
    /// registers the check task's waker; an idle socket holding it would keep that task's
    /// memory alive for as long as it sits in the pool. A poll with a no-op waker replaces it.
    pub(super) fn forget_waker(&self) {
        let mut cx = Context::from_waker(Waker::noop());
        // Ready means something arrived: the next checkout sees it and closes the connection.
        let _ = self.tcp().poll_read_ready(&mut cx);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut tls.stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut tls.stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(&mut tls.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(&mut tls.stream).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::time::Instant;

    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
    }

    #[test]
    fn addresses_are_interleaved_ipv6_first() {
        let rows: Vec<(Vec<IpAddr>, Vec<IpAddr>)> = vec![
            (vec![], vec![]),
            (vec![v4(1)], vec![v4(1)]),
            (vec![v4(1), v4(2)], vec![v4(1), v4(2)]),
            (vec![v4(1), v6(1)], vec![v6(1), v4(1)]),
            (
                vec![v4(1), v4(2), v4(3), v6(1), v6(2)],
                vec![v6(1), v4(1), v6(2), v4(2), v4(3)],
            ),
            (vec![v6(1), v6(2), v4(1)], vec![v6(1), v4(1), v6(2)]),
            // the same address twice is tried once
            (vec![v4(1), v4(1), v6(1)], vec![v6(1), v4(1)]),
        ];
        for (given, ordered) in rows {
            assert_eq!(rfc8305_order(given.clone()), ordered, "{given:?}");
        }
    }

    /// Races fake connections under tokio's paused clock: each address connects or fails after
    /// the given time. Returns the winner (its index) or the first error's text, when it was
    /// known, and when each attempt started (ms after the race began).
    async fn race_of(plan: &[(u64, bool)]) -> (Result<usize, Option<String>>, Vec<u64>) {
        let start = Instant::now();
        let addrs: Vec<SocketAddr> = (0..plan.len())
            .map(|i| SocketAddr::new(v4(u8::try_from(i).expect("few")), 80))
            .collect();
        let started = Mutex::new(Vec::new());
        let result = race(&addrs, ATTEMPT_DELAY, |addr| {
            let i = addrs
                .iter()
                .position(|known| *known == addr)
                .expect("known");
            started
                .lock()
                .expect("lock")
                .push(u64::try_from(start.elapsed().as_millis()).expect("ms"));
            let (after, connects) = plan[i];
            async move {
                tokio::time::sleep(Duration::from_millis(after)).await;
                match connects {
                    true => Ok(i),
                    false => Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        format!("refused {i}"),
                    )),
                }
            }
        })
        .await;
        let started = started.into_inner().expect("lock");
        (
            result.map_err(|error| error.map(|e| e.to_string())),
            started,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_staggered_and_the_first_connection_wins() {
        // Each row: per address, when its attempt ends and whether it connects; then the
        // winner (or the first error) and when each attempt started.
        #[allow(clippy::type_complexity)]
        let rows: &[(&[(u64, bool)], Result<usize, Option<&str>>, &[u64])] = &[
            (&[], Err(None), &[]),
            (&[(10, true)], Ok(0), &[0]),
            // a fast failure starts the next at once
            (&[(10, false), (10, true)], Ok(1), &[0, 10]),
            // a hanging first address: the second starts 250 ms later and wins
            (&[(10_000, true), (10, true)], Ok(1), &[0, 250]),
            // the first still wins when it answers before the second
            (&[(300, true), (100, true)], Ok(0), &[0, 250]),
            // all fail: the first error to arrive
            (
                &[(10_000, false), (20, false), (5, false)],
                Err(Some("refused 1")),
                &[0, 250, 270],
            ),
            // three hanging, the fourth answers: one every 250 ms
            (
                &[(10_000, true), (10_000, true), (10_000, true), (1, true)],
                Ok(3),
                &[0, 250, 500, 750],
            ),
        ];
        for (plan, winner, starts) in rows {
            let (result, started) = race_of(plan).await;
            assert_eq!(
                (result, started.as_slice()),
                (winner.map_err(|e| e.map(str::to_owned)), *starts),
                "{plan:?}"
            );
        }
    }

    /// A TLS server on 127.0.0.1:0 with the test certificate, which sends its TLS 1.3 session
    /// tickets after the handshake; for each connection it hands the test a sender: send
    /// `true` to make it send `close_notify`, drop it to leave the connection idle.
    async fn tls_server() -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<bool>>,
    ) {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

        let certificate =
            CertificateDer::from(include_bytes!("../../tests/data/localhost.der").to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            include_bytes!("../../tests/data/localhost.key.der").to_vec(),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate], key)
            .expect("certificate");
        assert!(config.send_tls13_tickets > 0, "the server sends tickets");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (connections, accepted) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let (order, ordered) = tokio::sync::oneshot::channel();
                let _ = connections.send(order);
                tokio::spawn(async move {
                    if ordered.await == Ok(true) {
                        let _ = tls.shutdown().await;
                    }
                    // Hold the connection until the client goes.
                    let _ = tls.read(&mut [0u8; 1]).await;
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn an_idle_tls_connection_is_looked_at_before_it_is_used() {
        let (addr, mut accepted) = tls_server().await;
        let connector = Connector::new(
            Arc::new(Resolver::with_name_servers(&[])),
            crate::probe::http::tests::trusting_the_test_ca(),
            None,
        );
        let key = Key {
            verify: true,
            https: true,
            host: Host::Ipv4(Ipv4Addr::LOCALHOST),
            port: addr.port(),
        };
        for closes in [false, true] {
            let mut progress = Progress::default();
            let mut stream = connector
                .connect(&key, &mut progress, &|| false)
                .await
                .expect("connect");
            let order = accepted.recv().await.expect("accepted");
            // The session tickets arrive after the handshake: taken in, they are no data.
            stream.tcp().readable().await.expect("readable");
            assert!(stream.looks_open(), "with the tickets in");
            if closes {
                order.send(true).expect("order");
                stream.tcp().readable().await.expect("readable");
                assert!(!stream.looks_open(), "after close_notify");
            } else {
                assert!(stream.looks_open(), "idle");
                drop(order);
            }
        }
    }

    #[tokio::test]
    async fn an_idle_plain_connection_is_looked_at_before_it_is_used() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        for unasked in [Some(b"x".as_slice()), None] {
            let mut ours = Stream::Plain(TcpStream::connect(addr).await.expect("connect"));
            let (mut theirs, _) = listener.accept().await.expect("accept");
            assert!(ours.looks_open());
            // The app sends something it was not asked for, or closes the connection.
            match unasked {
                Some(bytes) => theirs.write_all(bytes).await.expect("write"),
                None => drop(theirs),
            }
            ours.tcp().readable().await.expect("readable");
            assert!(!ours.looks_open(), "{unasked:?}");
        }
    }

    #[test]
    fn too_many_open_files_is_recognised() {
        assert!(out_of_files(&io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        assert!(!out_of_files(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
    }
}
