//! The target farm: loopback HTTP servers that answer `/health/<i>` like real apps, and note when
//! each check of each target arrived.
//!
//! Targets are spread over `endpoints` listeners, each on its own loopback address
//! (`127.0.0.1`, then `127.1.0.1`, `127.1.0.2`, ...) on one port. The server's connection pool is
//! keyed by host and port, so with one endpoint per monitor every monitor has its own kept-alive
//! connection, as on a real LAN; with few endpoints, monitors share a few connections.
//!
//! Recording is cheap: a per-target arrival counter, and the arrival time (µs since the farm
//! started) appended to one of a few sharded vectors. Lateness is computed afterwards, in
//! [`crate::report`].
//!
//! For TCP monitors ([`Farm::start_tcp`]) every target has a listener of its own (a check has no
//! path to say which target it is for): an accepted connection is the check's arrival, closed at
//! once; a failed target stops listening, so its checks are refused.

pub mod split;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

/// How a target answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200 with a passing health+json body.
    Pass = 0,
    /// 503 with a failing health+json body.
    Fail503 = 1,
    /// The connection is closed without an answer.
    Close = 2,
}

/// Arrival vectors, each for the targets of one residue.
pub const SHARDS: usize = 64;

/// What the farm shares between its connections and the bench.
pub struct Farm {
    started: Instant,
    modes: Vec<AtomicU8>,
    counts: Vec<AtomicU32>,
    /// (target, µs since `started`), sharded by target.
    arrivals: Vec<Mutex<Vec<(u32, u64)>>>,
    /// Requests for a path that is no target of ours.
    strays: AtomicU64,
    /// Connections accepted, in all.
    pub connections: AtomicU64,
    /// Where each endpoint listens.
    endpoints: Vec<SocketAddr>,
    /// TCP targets (one listener each), or HTTP ones.
    tcp: bool,
    /// Told when a target's mode changes (a failed TCP target closes its listener at once).
    changed: tokio::sync::Notify,
}

const PASS_BODY: &[u8] = br#"{"status":"pass","version":"1","serviceId":"bench","checks":{"uptime":[{"componentType":"system","observedValue":1234,"observedUnit":"s","status":"pass"}]}}"#;
const FAIL_BODY: &[u8] =
    br#"{"status":"fail","version":"1","serviceId":"bench","output":"the bench made me fail"}"#;

/// The loopback address of endpoint `j`: 127.0.0.1 first, then 127.a.b.c with a >= 1, c in 1..=250.
fn endpoint_ip(j: usize) -> IpAddr {
    if j == 0 {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    }
    let j = j - 1;
    let a = 1 + j / 62_500;
    let rest = j % 62_500;
    let octet = |value: usize| u8::try_from(value).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(
        127,
        octet(a),
        octet(rest / 250),
        octet(1 + rest % 250),
    ))
}

/// The listeners of endpoints `endpoints`, on `port` where it is free (0: the first one's, any).
fn bind_all(endpoints: Range<usize>, port: u16) -> std::io::Result<Vec<TcpListener>> {
    let mut port = port;
    let mut listeners = Vec::with_capacity(endpoints.len());
    for j in endpoints {
        let ip = endpoint_ip(j);
        let listener = match bind(SocketAddr::new(ip, port)) {
            Ok(listener) => listener,
            Err(_) => bind(SocketAddr::new(ip, 0))?,
        };
        if port == 0 {
            port = listener.local_addr()?.port();
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Farm {
    /// Starts `targets` targets on `endpoints` listeners (at least 1).
    ///
    /// # Errors
    ///
    /// When a listener cannot be bound (out of file descriptors, say).
    pub async fn start(targets: usize, endpoints: usize) -> anyhow::Result<Arc<Farm>> {
        let endpoints = endpoints.clamp(1, targets.max(1));
        Farm::start_part(targets, 0..endpoints, 0, Instant::now()).await
    }

    /// Starts the listeners of endpoints `endpoints` (of a farm split over processes,
    /// [`split`]) for targets `0..targets`, on `port` where it is free (0: any port), with
    /// arrival times counted from `started`.
    ///
    /// # Errors
    ///
    /// When a listener cannot be bound (out of file descriptors, say).
    pub async fn start_part(
        targets: usize,
        endpoints: Range<usize>,
        port: u16,
        started: Instant,
    ) -> anyhow::Result<Arc<Farm>> {
        let listeners = bind_all(endpoints, port)?;
        let farm = Farm::new(targets, &listeners, false, started)?;
        for listener in listeners {
            tokio::spawn(accept(listener, Arc::clone(&farm)));
        }
        Ok(farm)
    }

    /// Starts `targets` TCP targets, each on a listener of its own.
    ///
    /// # Errors
    ///
    /// When a listener cannot be bound (out of file descriptors, say).
    pub async fn start_tcp(targets: usize) -> anyhow::Result<Arc<Farm>> {
        let targets = targets.max(1);
        let listeners = bind_all(0..targets, 0)?;
        let farm = Farm::new(targets, &listeners, true, Instant::now())?;
        for (i, listener) in listeners.into_iter().enumerate() {
            tokio::spawn(accept_tcp(listener, Arc::clone(&farm), i));
        }
        Ok(farm)
    }

    fn new(
        targets: usize,
        listeners: &[TcpListener],
        tcp: bool,
        started: Instant,
    ) -> anyhow::Result<Arc<Farm>> {
        Ok(Arc::new(Farm {
            started,
            modes: (0..targets)
                .map(|_| AtomicU8::new(Mode::Pass as u8))
                .collect(),
            counts: (0..targets).map(|_| AtomicU32::new(0)).collect(),
            arrivals: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
            strays: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            endpoints: listeners
                .iter()
                .map(TcpListener::local_addr)
                .collect::<Result<_, _>>()?,
            tcp,
            changed: tokio::sync::Notify::new(),
        }))
    }

    /// The URL of target `i`: the base URL of an HTTP target, `tcp://address:port` of a TCP one.
    pub fn url(&self, i: usize) -> String {
        let scheme = if self.tcp { "tcp" } else { "http" };
        format!("{scheme}://{}", self.endpoints[i % self.endpoints.len()])
    }

    /// Notes an arrival for target `i`.
    fn arrived(&self, i: usize) {
        let at = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.arrivals[i % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((u32::try_from(i).unwrap_or(u32::MAX), at));
    }

    /// Endpoints in use.
    pub fn endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// When the farm started: arrival times count from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Sets how targets `ids` answer from now on.
    pub fn set_mode(&self, ids: &[usize], mode: Mode) {
        for &i in ids {
            self.modes[i].store(mode as u8, Ordering::SeqCst);
        }
        self.changed.notify_waiters();
    }

    /// Requests that named no target.
    pub fn strays(&self) -> u64 {
        self.strays.load(Ordering::Relaxed)
    }

    /// The arrivals since the last call with this `cursor` (one position per shard, starting
    /// at zeros), as (target, µs since start).
    pub fn arrivals_after(&self, cursor: &mut [usize; SHARDS]) -> Vec<(u32, u64)> {
        let mut new = Vec::new();
        for (shard, seen) in self.arrivals.iter().zip(cursor.iter_mut()) {
            let shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            new.extend_from_slice(&shard[*seen..]);
            *seen = shard.len();
        }
        new
    }

    /// Every arrival so far, as (target, µs since start), and the count per target.
    pub fn arrivals(&self) -> (Vec<(u32, u64)>, Vec<u32>) {
        let mut all = Vec::new();
        for shard in &self.arrivals {
            all.extend_from_slice(
                &shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        }
        let counts = self
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        (all, counts)
    }

    fn answer(&self, request: &Request<Incoming>) -> Result<Response<Full<Bytes>>, &'static str> {
        let at = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let target = request
            .uri()
            .path()
            .strip_prefix("/health/")
            .and_then(|rest| rest.parse::<usize>().ok())
            .filter(|&i| i < self.counts.len());
        let Some(i) = target else {
            self.strays.fetch_add(1, Ordering::Relaxed);
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .unwrap_or_default());
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.arrivals[i % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((u32::try_from(i).unwrap_or(u32::MAX), at));
        let (status, body) = match self.modes[i].load(Ordering::Relaxed) {
            0 => (StatusCode::OK, PASS_BODY),
            1 => (StatusCode::SERVICE_UNAVAILABLE, FAIL_BODY),
            _ => return Err("closing the connection, as told"),
        };
        let mut response = Response::new(Full::new(Bytes::from_static(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/health+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(response)
    }
}

/// The listener of TCP target `i`: each connection is an arrival, closed at once; once the target
/// is failed the listener is closed (connections are refused from then on).
async fn accept_tcp(listener: TcpListener, farm: Arc<Farm>, i: usize) {
    let failed = || farm.modes[i].load(Ordering::SeqCst) != Mode::Pass as u8;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = farm.changed.notified() => {
                if failed() {
                    return;
                }
                continue;
            }
        };
        match accepted {
            Ok((stream, _)) => {
                farm.connections.fetch_add(1, Ordering::Relaxed);
                if failed() {
                    return;
                }
                farm.arrived(i);
                drop(stream);
            }
            Err(error) => {
                eprintln!("farm: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn accept(listener: TcpListener, farm: Arc<Farm>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: say so once in a while, do not spin.
                eprintln!("farm: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        farm.connections.fetch_add(1, Ordering::Relaxed);
        let farm = Arc::clone(&farm);
        tokio::spawn(async move {
            let service = service_fn(|request: Request<Incoming>| {
                let answer = farm.answer(&request);
                async move {
                    match answer {
                        Ok(response) => Ok(response),
                        Err(why) => Err(std::io::Error::other(why)),
                    }
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
