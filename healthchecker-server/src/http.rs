//! Serving the API over HTTP/1.1: how many connections the server takes, how long each may take
//! to ask, and the request log.
//!
//! A LAN is not a safe place (DESIGN.md): one host may open thousands of connections and send
//! one byte every few seconds on each, which would otherwise hold a file and a task for ever,
//! starve the probe of the open files its checks need and delay `/health`. So [`serve`]:
//!
//! * takes at most [`MAX_CONNECTIONS`] connections at once, and at most
//!   [`MAX_CONNECTIONS_PER_CLIENT`] from one client address (an IPv6 client by its /64); a
//!   connection past either is answered `503` and closed at once, so it holds no file and the
//!   listen queue never fills up behind it;
//! * closes a connection that has not sent a whole request head within
//!   [`HEADER_READ_TIMEOUT`] of being opened or of its last answer (hyper's header read
//!   timeout, which is also the keep-alive idle timeout); a request body that is slow to come is
//!   bounded by the API's own request timeout ([`crate::api::REQUEST_TIMEOUT`]);
//! * logs every request at debug level (shown with `--verbose`), with tower-http's trace layer:
//!   method, path, status, latency and client address; never a header (a token) or a body;
//! * on cancellation stops accepting at once, lets the requests in flight finish (idle
//!   connections are closed) and closes what is left after the grace it was given.
//!
//! It knows nothing of the routes: [`crate::server`] hands it the API's router.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::Service as _;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::throttle::ConnectionSlots;

/// Connections served at once; past it a new one is answered `503` and closed. The server's
/// open-file budget counts them besides the probe's connections to the apps.
pub const MAX_CONNECTIONS: usize = 1024;

/// Connections one client address (an IPv6 client: its /64) may hold at once. Enough for a host
/// running many apps that all register at once, a browser's dashboard tabs and the CLI.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 128;

/// How long a connection may take to send a whole request head, counted from when it was
/// opened or last answered: also how long an idle kept-alive connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before accepting again when accepting failed (out of open files).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What a connection past a limit is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\
Content-Type: application/json\r\nContent-Length: 94\r\n\r\n\
{\"error\":{\"code\":\"busy\",\"message\":\"too many connections; try again in a moment\",\"field\":null}}";

/// The limits [`serve`] applies; [`ServeOptions::default`] holds the documented numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`MAX_CONNECTIONS_PER_CLIENT`].
    pub max_connections_per_client: usize,
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// How long requests in flight get to finish once serving is cancelled.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: MAX_CONNECTIONS,
            max_connections_per_client: MAX_CONNECTIONS_PER_CLIENT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            grace: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `cancel` fires, then shuts down gracefully: no new
/// connection is accepted, requests in flight get `options.grace` to finish, and whatever is
/// left then is closed. Returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
    options: &ServeOptions,
) {
    let router = router.layer(
        TraceLayer::new_for_http()
            .make_span_with(request_span)
            .on_request(())
            .on_response(log_response)
            .on_failure(()),
    );
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let clients = ConnectionSlots::new(options.max_connections_per_client);
    let mut connections = JoinSet::new();
    loop {
        // Reap the connections that have ended, so the set stays as small as what is open.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of open files, or a connection that died in the queue: pause briefly
                    // rather than spin, and go on.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refuse(&stream, peer, "the server's");
            continue;
        };
        let Some(slot) = clients.take(peer.ip()) else {
            refuse(&stream, peer, "this client's");
            continue;
        };
        let router = router.clone();
        let cancel = cancel.clone();
        let header_read_timeout = options.header_read_timeout;
        connections.spawn(async move {
            serve_connection(stream, peer, router, header_read_timeout, cancel).await;
            drop((permit, slot));
        });
    }
    drop(listener);
    tracing::debug!(
        "no longer accepting connections; {} open",
        connections.len()
    );
    let drained = tokio::time::timeout(options.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "requests still in flight after {:?}; closing them",
            options.grace
        );
        connections.shutdown().await;
    }
}

/// Tells a connection past a limit so (best effort, never waiting) and closes it. What the
/// client has sent already is read first, so that closing sends a FIN after the answer rather
/// than a reset that would discard it.
fn refuse(stream: &TcpStream, peer: SocketAddr, whose: &str) {
    tracing::debug!(%peer, "connection refused: {whose} connection limit is reached");
    let mut request = [0; 4096];
    let _ = stream.try_read(&mut request);
    let _ = stream.try_write(BUSY);
}

/// One connection: HTTP/1.1 with keep-alive and the header read timeout, every request told
/// its client's address; closed gracefully when `cancel` fires.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    cancel: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            Ok::<_, Infallible>(
                router
                    .call(request)
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // A client that timed out, went away or spoke something else than HTTP: its problem.
        tracing::debug!(%peer, "connection closed: {error}");
    }
}

/// The span of one request: its method, path and client address; never a header or the body.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> Span {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        client = client.map(tracing::field::display),
    )
}

/// The line of one answered request, inside its span.
fn log_response(response: &axum::http::Response<axum::body::Body>, latency: Duration, _: &Span) {
    tracing::debug!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "answered"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["code"], "busy");
    }
}
