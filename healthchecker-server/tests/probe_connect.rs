//! How the probe reaches an app by name: DNS answers (from a DNS server the test runs on
//! 127.0.0.1, never the network's), their cache, a DNS server that does not answer, and Happy
//! Eyeballs over `localhost`'s two loopback addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use healthchecker_server::health::Outcome;
use healthchecker_server::probe::{CheckRecord, Prober, Reason};
use healthchecker_server::registry::MonitorSpec;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::mpsc;

/// Long enough for any answer the test does not mean to be late.
const PATIENT: Duration = Duration::from_secs(2);

fn spec(url: &str, timeout: Duration) -> MonitorSpec {
    MonitorSpec {
        expect_status: Default::default(),
        cert_warn_days: 14,
        tls_verify: true,
        url: url.parse().expect("url"),
        path: "/health".to_owned(),
        emails: Vec::new(),
        interval: Duration::from_secs(30),
        timeout,
        unhealthy: 2,
        healthy: 2,
        notify: Vec::new(),
        push: None,
    }
}

fn assert_check(record: &CheckRecord, outcome: Outcome, reason: Reason, detail: Option<&str>) {
    assert_eq!(
        (record.outcome, record.reason, record.detail.as_deref()),
        (outcome, reason, detail),
        "{record:?}"
    );
}

/// An app on `listener` that answers every request with `answer`, keeping connections open
/// unless the answer says close; counts connections.
fn app(listener: TcpListener, answer: &'static [u8]) -> Arc<AtomicUsize> {
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut byte = [0u8; 1];
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    connections
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK";
const OK_AND_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nOK";

/// A DNS server on 127.0.0.1:0 (UDP) with the addresses of a few names.
struct DnsServer {
    addr: SocketAddr,
    /// A queries received.
    a_queries: Arc<AtomicUsize>,
    /// Receives the name of every query, as it arrives.
    queries: mpsc::UnboundedReceiver<String>,
}

/// Starts a [`DnsServer`] that answers for the names in `zone` with `ttl` (NXDOMAIN for any
/// other), or never answers at all when `silent`.
async fn dns_server(zone: &'static [(&'static str, IpAddr)], ttl: u32, silent: bool) -> DnsServer {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS");
    let addr = socket.local_addr().expect("addr");
    let a_queries = Arc::new(AtomicUsize::new(0));
    let (seen, queries) = mpsc::unbounded_channel();
    let counter = Arc::clone(&a_queries);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let Ok(request) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let Some(query) = request.queries.first() else {
                continue;
            };
            let name = query.name().to_ascii().trim_end_matches('.').to_lowercase();
            if query.query_type() == RecordType::A {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let _ = seen.send(name.clone());
            if silent {
                continue;
            }
            let mut response = Message::response(request.metadata.id, request.metadata.op_code);
            response.metadata.authoritative = true;
            response.metadata.recursion_desired = request.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(query.clone());
            let known: Vec<IpAddr> = zone
                .iter()
                .filter(|(known, _)| *known == name)
                .map(|(_, ip)| *ip)
                .collect();
            if known.is_empty() {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            for ip in known {
                let data = match (ip, query.query_type()) {
                    (IpAddr::V4(ip), RecordType::A) => RData::A(A(ip)),
                    (IpAddr::V6(ip), RecordType::AAAA) => RData::AAAA(AAAA(ip)),
                    _ => continue,
                };
                response.add_answer(Record::from_rdata(query.name().clone(), ttl, data));
            }
            let bytes = response.to_vec().expect("DNS answer");
            let _ = socket.send_to(&bytes, from).await;
        }
    });
    DnsServer {
        addr,
        a_queries,
        queries,
    }
}

#[tokio::test]
async fn names_are_looked_up_and_kept_for_their_ttl() {
    static ZONE: &[(&str, IpAddr)] = &[
        ("app.probe.test", IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ("brief.probe.test", IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    // The app closes each connection, so every check connects anew (and needs the address).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = app(listener, OK_AND_CLOSE);
    let dns = dns_server(ZONE, 300, false).await;
    let prober = Prober::with_name_servers(&[dns.addr]).expect("prober");
    let cached = spec(&format!("http://app.probe.test:{port}"), PATIENT);
    for _ in 0..3 {
        assert_check(
            &prober.check(&cached).await,
            Outcome::Pass,
            Reason::Ok,
            None,
        );
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    // A TTL of 300 s: asked once.
    assert_eq!(dns.a_queries.load(Ordering::SeqCst), 1);

    // A TTL of 0: asked again for every connection.
    let dns = dns_server(ZONE, 0, false).await;
    let prober = Prober::with_name_servers(&[dns.addr]).expect("prober");
    let brief = spec(&format!("http://brief.probe.test:{port}"), PATIENT);
    for _ in 0..3 {
        assert_check(&prober.check(&brief).await, Outcome::Pass, Reason::Ok, None);
    }
    assert_eq!(dns.a_queries.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_a_dns_failure() {
    let dns = dns_server(&[], 300, false).await;
    let prober = Prober::with_name_servers(&[dns.addr]).expect("prober");
    let record = prober
        .check(&spec("http://nope.probe.test:8080", PATIENT))
        .await;
    assert_check(
        &record,
        Outcome::Fail,
        Reason::Dns,
        Some("cannot resolve host name nope.probe.test: no such host"),
    );
    assert_eq!(record.http_status, None);
}

/// With the DNS server silent, a crowd of checks of host names waits on DNS without taking the
/// runtime's blocking threads, which the store's reads need: a blocking task still runs at once
/// while every lookup is in flight. (Before, each lookup was a `getaddrinfo` on a blocking
/// thread, for the system resolver's whole timeout.)
#[test]
fn a_silent_dns_server_holds_no_thread_of_the_blocking_pool() {
    const CHECKS: usize = 100;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut dns = dns_server(&[], 300, true).await;
        let prober = Prober::with_name_servers(&[dns.addr]).expect("prober");
        let checks: Vec<_> = (0..CHECKS)
            .map(|i| {
                let prober = prober.clone();
                tokio::spawn(async move {
                    let url = format!("http://app-{i}.probe.test:8080");
                    prober.check(&spec(&url, PATIENT)).await
                })
            })
            .collect();
        // Wait until as many lookups as the probe runs at once have reached the DNS server.
        let mut names = std::collections::HashSet::new();
        while names.len() < healthchecker_server::probe::DNS_LOOKUPS {
            let name = tokio::time::timeout(PATIENT, dns.queries.recv())
                .await
                .expect("the lookups reach the DNS server")
                .expect("DNS server running");
            names.insert(name);
        }
        let read = tokio::time::timeout(PATIENT / 2, tokio::task::spawn_blocking(|| 42))
            .await
            .expect("a blocking task runs while the lookups wait")
            .expect("blocking task");
        assert_eq!(read, 42);
        assert!(
            checks.iter().all(|check| !check.is_finished()),
            "the lookups were still waiting"
        );
        for (i, check) in checks.into_iter().enumerate() {
            let record = check.await.expect("check");
            assert_check(
                &record,
                Outcome::Fail,
                Reason::Dns,
                Some(&format!(
                    "no answer from DNS for host name app-{i}.probe.test within 2 s"
                )),
            );
        }
    });
}

/// A listener on `addr` that accepts one connection into its queue and no more, and never
/// accepts: a connection attempt to it hangs, like one to an address that does not answer.
/// Returns it and the connection that fills its queue, both to be held.
async fn blackhole(addr: SocketAddr) -> (TcpListener, tokio::net::TcpStream) {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .expect("socket");
    socket.bind(addr).expect("bind blackhole");
    let listener = socket.listen(0).expect("listen");
    let filler = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("fill the queue");
    (listener, filler)
}

/// A listener on `ip` at a port that is free on `other` too (a test running beside this one may
/// hold the same number there), and its port.
async fn listener_free_on(ip: IpAddr, other: IpAddr) -> (TcpListener, u16) {
    for _ in 0..100 {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(SocketAddr::new(other, port)).is_ok() {
            return (listener, port);
        }
    }
    panic!("no port free on both {ip} and {other} in 100 tries");
}

/// `localhost` is both loopback addresses (RFC 6761): the probe reaches an app that listens on
/// only one of them, whichever it is. The other port is held without listening, so that it
/// refuses.
#[tokio::test]
async fn localhost_is_reached_on_whichever_loopback_address_listens() {
    let prober = Prober::new().expect("prober");
    for listening in [
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    ] {
        let other_ip = match listening {
            IpAddr::V6(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let (listener, port) = listener_free_on(listening, other_ip).await;
        let other = match listening {
            IpAddr::V6(_) => TcpSocket::new_v4().expect("socket"),
            IpAddr::V4(_) => TcpSocket::new_v6().expect("socket"),
        };
        other
            .bind(SocketAddr::new(other_ip, port))
            .expect("hold the other address");
        let connections = app(listener, OK);
        let record = prober
            .check(&spec(&format!("http://localhost:{port}"), PATIENT))
            .await;
        assert_check(&record, Outcome::Pass, Reason::Ok, None);
        assert_eq!(connections.load(Ordering::SeqCst), 1, "{listening}");
    }
}

/// Happy Eyeballs (RFC 8305): `localhost`'s IPv6 address is tried first and does not answer;
/// the IPv4 one is tried a quarter of a second later, and the check passes well within its
/// timeout instead of spending it all on the first address.
#[tokio::test]
async fn an_address_that_does_not_answer_is_raced_by_the_next() {
    let (listener, port) = listener_free_on(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    )
    .await;
    let connections = app(listener, OK);
    let (_hole, _filler) = blackhole(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)).await;
    let prober = Prober::new().expect("prober");
    let record = prober
        .check(&spec(&format!("http://localhost:{port}"), PATIENT))
        .await;
    assert_check(&record, Outcome::Pass, Reason::Ok, None);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    // The next check reuses the connection that won.
    let record = prober
        .check(&spec(&format!("http://localhost:{port}"), PATIENT))
        .await;
    assert_check(&record, Outcome::Pass, Reason::Ok, None);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}
