//! The probe's HTTP/1.1 client: one `GET` per check, spoken by hyper on a pooled kept-alive socket.
//!
//! hyper does the protocol: it writes the request, reads the response head (obsolete line
//! folding unfolded, interim 1xx answers skipped), frames and decodes the body, and decides by
//! RFC 9112's rules whether the connection may carry another request. This module does what a
//! general client does not do the way a health probe wants:
//!
//! * [`Client::get`] takes an idle socket from the [`Pool`] (or makes one, see
//!   [`connect`](super::connect)), runs `hyper::client::conn::http1::handshake` on it, sends the
//!   `GET` and reads at most [`BODY_LIMIT`] bytes of the body, driving hyper's connection in the
//!   check's own task: no task, no channel and no buffer outlive the check. Then
//!   `Connection::without_shutdown` hands the socket back, and it goes back to the pool only when
//!   hyper found the connection reusable, nothing was read ahead, and the app's `Keep-Alive:
//!   timeout=N` (if any) leaves time to use it again.
//! * An idle connection is only its socket, when it was last used and until when it may be used
//!   again (0.5 KB each): the [`Pool`] is pure bookkeeping behind a mutex, swept lazily.
//! * A kept-alive connection that fails before any byte of the answer arrived (the app closed it
//!   just as the request went out) is asked again once, on a new connection.
//!
//! What is written here rather than left to hyper, and why: hyper's errors do not say whether any
//! byte of the answer arrived, so the stream is wrapped to note it (for the retry); hyper would
//! use a connection again after an answer that carried both `Content-Length` and
//! `Transfer-Encoding` (it reads it by its chunks, as RFC 9112 says), which this client does not
//! trust again; and hyper does not read `Keep-Alive: timeout=N`, a field outside HTTP/1.1 proper,
//! so [`keep_alive_timeout`] does (a few lines, tested as a table).

use std::future::poll_fn;
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use url::Url;

use super::connect::{Connector, Stream};
use super::pool::{Key, Pool};
use super::{BODY_LIMIT, BodyEnd, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_HOST, READ_BUFFER_LIMIT};

/// Most header fields in a response head.
const MAX_HEADERS: usize = 100;

/// How much sooner than the app's `Keep-Alive: timeout` a connection is given up: the app's timer
/// starts when it has sent the answer, a little before the probe has read it, and a request that
/// arrives just as the app closes is a wasted write and a retry.
const KEEP_ALIVE_MARGIN: Duration = Duration::from_secs(1);

/// `Keep-Alive` (RFC 2068 §19.7.1.1, still sent by Node, Apache and others), which the `http`
/// crate has no constant for.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// The `GET` a check sends, and where to.
#[derive(Debug, Clone)]
pub(super) struct Request {
    /// Which pooled connections can carry it.
    pub(super) key: Key,
    /// The path and query (origin form).
    uri: Uri,
    /// `Host`: the host, and the port when it is not the scheme's default.
    host: HeaderValue,
    /// `User-Agent`.
    user_agent: HeaderValue,
    /// `Accept`.
    accept: HeaderValue,
}

/// The URL of a check was not an absolute `http` or `https` URL with a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidUrl;

impl Request {
    /// `GET <path-and-query> HTTP/1.1` for `url`, with `Host` (its port only when it is not the
    /// scheme's default), `User-Agent` and `Accept`. Any fragment is left out.
    pub(super) fn get(
        url: &str,
        user_agent: &'static str,
        accept: &'static str,
    ) -> Result<Request, InvalidUrl> {
        let url = Url::parse(url).map_err(|_| InvalidUrl)?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(InvalidUrl),
        };
        let (Some(host), Some(host_text), Some(port)) =
            (url.host(), url.host_str(), url.port_or_known_default())
        else {
            return Err(InvalidUrl);
        };
        if host_text.is_empty() {
            return Err(InvalidUrl);
        }
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        // `Url` drops the scheme's default port, so a port here is another one.
        let host_header = match url.port() {
            Some(port) => format!("{host_text}:{port}"),
            None => host_text.to_owned(),
        };
        Ok(Request {
            key: Key {
                https,
                verify: true,
                host: host.to_owned(),
                port,
            },
            uri: Uri::try_from(target).map_err(|_| InvalidUrl)?,
            host: HeaderValue::try_from(host_header).map_err(|_| InvalidUrl)?,
            user_agent: HeaderValue::from_static(user_agent),
            accept: HeaderValue::from_static(accept),
        })
    }

    /// The same request on connections made without verifying the certificate when `verify`
    /// is false (`tls_verify: false`).
    pub(super) fn verified(mut self, verify: bool) -> Request {
        self.key.verify = verify || !self.key.https;
        self
    }

    /// The request as hyper sends it (once per attempt: a retry sends a new one).
    fn to_hyper(&self) -> hyper::Request<Empty<Bytes>> {
        let mut request = hyper::Request::new(Empty::new());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        headers.insert(header::ACCEPT, self.accept.clone());
        request
    }
}

/// What arrived: the final response's status and the headers the probe reads, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    /// The status code of the final (not 1xx) response.
    pub(super) status: u16,
    /// The first `Content-Type` field, if any.
    pub(super) content_type: Option<String>,
    /// The first `Location` field, if any.
    pub(super) location: Option<String>,
    /// At most [`BODY_LIMIT`] bytes of the body.
    pub(super) body: Vec<u8>,
    /// How the reading of the body ended.
    pub(super) end: BodyEnd,
}

/// How far a check got: the probe reads it when the monitor's timeout cuts the check short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Progress {
    /// The host name being looked up, while it is.
    pub(super) resolving: Option<String>,
    /// The status of the answer, once its head has arrived.
    pub(super) status: Option<u16>,
    /// A TLS handshake is under way.
    pub(super) handshaking: bool,
    /// The address an ICMP echo went to.
    pub(super) pinged: Option<std::net::IpAddr>,
    /// The expiry of the certificate, once a TLS connection is made (or a certificate was
    /// refused for having expired).
    pub(super) cert_not_after: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why no response arrived. The probe turns each into a reason and a detail.
#[derive(Debug)]
pub(super) enum Error {
    /// The host name did not resolve (to any address): the name, and what went wrong.
    Dns(String, String),
    /// Every address of the host is outside `allowed_targets`: the host name (`None` for an
    /// address) and the first address refused. No connection was attempted.
    NotAllowed {
        /// The host name, when the URL has one.
        name: Option<String>,
        /// The first address outside.
        ip: std::net::IpAddr,
    },
    /// No TCP connection could be made (to any of the addresses).
    Connect(io::Error),
    /// The TLS handshake failed (a `rustls::Error` inside, when rustls refused something).
    Tls(io::Error),
    /// Writing the request or reading the head failed.
    Io(io::Error),
    /// The connection was closed before a whole response head arrived.
    Closed,
    /// The response head did not end within [`READ_BUFFER_LIMIT`] bytes (or had more than 100
    /// fields).
    HeadTooLarge,
    /// The response is not HTTP/1.x, or cannot be framed; what is wrong with it.
    Malformed(String),
}

impl Error {
    /// What hyper's error says happened, before the head of an answer was read.
    fn from_hyper(error: &hyper::Error) -> Error {
        if error.is_parse_too_large() {
            return Error::HeadTooLarge;
        }
        if error.is_parse() || error.is_parse_status() {
            return Error::Malformed(error.to_string());
        }
        let io =
            std::error::Error::source(error).and_then(|source| source.downcast_ref::<io::Error>());
        match io {
            Some(io) => Error::Io(copy_io_error(io)),
            None if error.is_incomplete_message() || error.is_canceled() || error.is_closed() => {
                Error::Closed
            }
            None => Error::Malformed(error.to_string()),
        }
    }
}

/// A copy of an I/O error that hyper keeps (they cannot be cloned): its kind and text, and the
/// `rustls::Error` inside when there is one (a TLS alert in the middle of an answer, say).
fn copy_io_error(error: &io::Error) -> io::Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => io::Error::new(error.kind(), tls.clone()),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// The probe's client: how connections are made, hyper's settings, and the pool of idle
/// connections. Shared by every check.
pub(super) struct Client {
    /// Resolves, connects (Happy Eyeballs) and does TLS.
    connector: Connector,
    /// hyper's HTTP/1 settings, the same for every connection.
    http: http1::Builder,
    /// The idle connections. The lock is only held to take or put one (or sweep): never across
    /// an await, never around a system call.
    pool: Mutex<Pool<Stream>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// hyper's settings for the probe: obsolete line folding unfolded (RFC 9112 §5.2: a user agent
/// must), a head of at most [`READ_BUFFER_LIMIT`] bytes and [`MAX_HEADERS`] fields, header names
/// written in title case (for the odd device that still cares).
fn http_settings() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.allow_obsolete_multiline_headers_in_responses(true)
        .max_buf_size(READ_BUFFER_LIMIT)
        .max_headers(MAX_HEADERS)
        .title_case_headers(true);
    http
}

impl Client {
    /// A client with an empty pool that connects with `connector`.
    pub(super) fn new(connector: Connector) -> Client {
        Client {
            connector,
            http: http_settings(),
            pool: Mutex::new(Pool::new(Instant::now(), POOL_MAX_IDLE_PER_HOST)),
        }
    }

    /// How this client makes connections (the tcp and tls checks use it too).
    pub(super) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Sends `request` and reads the answer: the head, then at most [`BODY_LIMIT`] bytes of the
    /// body. `progress` says how far it got, so that a caller that gives up (a timeout) knows.
    ///
    /// A kept-alive connection that fails before any byte of the answer arrived is most likely
    /// one the app closed just as the request went out (its keep-alive timer against ours): the
    /// request is sent once more on a new connection (`GET` is idempotent). A new connection
    /// that fails is reported.
    pub(super) async fn get(
        &self,
        request: &Request,
        progress: &mut Progress,
    ) -> Result<Response, Error> {
        if let Some(stream) = self.checkout(&request.key) {
            progress.cert_not_after = stream.cert_not_after();
            match exchange(&self.http, stream, request, &mut progress.status).await {
                Ok(exchanged) => return Ok(self.finish(&request.key, exchanged)),
                Err(Attempt::BeforeAnswer(_)) => {}
                Err(Attempt::Answered(error)) => return Err(error),
            }
        }
        let stream = self
            .connector
            .connect(&request.key, progress, &|| self.make_room())
            .await?;
        progress.cert_not_after = stream.cert_not_after();
        match exchange(&self.http, stream, request, &mut progress.status).await {
            Ok(exchanged) => Ok(self.finish(&request.key, exchanged)),
            Err(Attempt::BeforeAnswer(error) | Attempt::Answered(error)) => Err(error),
        }
    }

    /// Puts the connection back in the pool when it can carry another request.
    fn finish(&self, key: &Key, exchanged: Exchanged<Stream>) -> Response {
        if let Some((stream, keep_for)) = exchanged.reuse {
            stream.forget_waker();
            let dropped = self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .checkin(key.clone(), stream, Instant::now(), keep_for);
            // Closing sockets is a system call each: not under the lock.
            drop(dropped);
        }
        exchanged.response
    }

    /// The most recently used idle connection for `key` that has not expired and is still open.
    fn checkout(&self, key: &Key) -> Option<Stream> {
        loop {
            let (candidate, expired) = self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .checkout(key, Instant::now());
            drop(expired);
            let mut stream = candidate?;
            if stream.looks_open() {
                return Some(stream);
            }
        }
    }

    /// Closes the older half of the idle connections, when the server is out of open files, so
    /// that checks go on (on new connections) instead of failing for the server's own want of
    /// files; false when there was nothing to close.
    pub(super) fn make_room(&self) -> bool {
        let evicted = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .evict_older_half();
        if evicted.is_empty() {
            return false;
        }
        tracing::warn!(
            "out of open files: closed {} idle connections to make room; \
             raise the server's open-file limit (ulimit -n) to keep one per app",
            evicted.len()
        );
        // Closing sockets is a system call each: not under the lock.
        drop(evicted);
        true
    }
}

/// How an exchange on one connection failed: before any byte of the answer (so the request may
/// be sent again), or after.
#[derive(Debug)]
enum Attempt {
    /// Nothing of the answer arrived.
    BeforeAnswer(Error),
    /// Some of the answer arrived; this is the outcome.
    Answered(Error),
}

/// A response, and the connection when it may carry another request (with how long it may
/// wait in the pool).
#[derive(Debug)]
struct Exchanged<S> {
    response: Response,
    reuse: Option<(S, Duration)>,
}

/// hyper's connection over a [`Watched`] stream.
type Connection<S> = http1::Connection<TokioIo<Watched<S>>, Empty<Bytes>>;

/// Sends `request` on `stream` with hyper and reads the response; hands the stream back when
/// the connection may be used again.
///
/// hyper's connection is polled here, beside the request, not in a task of its own; `status`
/// is set as soon as the head has arrived.
async fn exchange<S>(
    http: &http1::Builder,
    stream: S,
    request: &Request,
    status: &mut Option<u16>,
) -> Result<Exchanged<S>, Attempt>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = http
        .handshake::<_, Empty<Bytes>>(TokioIo::new(Watched::new(stream)))
        .await
        .map_err(|error| Attempt::BeforeAnswer(Error::from_hyper(&error)))?;
    let mut connection = Some(connection);
    // Whether any byte of an answer arrived on a connection that has been taken apart.
    let mut answered = false;
    let answer = sender.send_request(request.to_hyper());
    let mut reading = pin!(async {
        let response = answer.await?;
        *status = Some(response.status().as_u16());
        let head = Head::of(response.headers(), response.status().as_u16());
        let (body, end) = read_body(response.into_body()).await;
        Ok::<_, hyper::Error>((head, body, end))
    });
    let read = poll_fn(|cx| {
        if let Some(open) = connection.as_mut()
            && open.poll_without_shutdown(cx).is_ready()
        {
            // hyper is done with the connection (closed, or broken): what it had to say went to
            // the request or its body. Taking it apart also fails a request it never picked up.
            if let Some(ended) = connection.take() {
                answered = ended.into_parts().io.inner().answered;
            }
        }
        reading.as_mut().poll(cx)
    })
    .await;
    let (head, body, end) = match read {
        Ok(read) => read,
        Err(error) => {
            let answered = match connection {
                Some(open) => open.into_parts().io.inner().answered,
                None => answered,
            };
            let error = Error::from_hyper(&error);
            return Err(match answered {
                false => Attempt::BeforeAnswer(error),
                true => Attempt::Answered(error),
            });
        }
    };
    let reuse = match (end, head.keep_for, connection) {
        (BodyEnd::Complete, Some(keep_for), Some(connection)) => take_back(sender, connection)
            .await
            .map(|stream| (stream, keep_for)),
        _ => None,
    };
    Ok(Exchanged {
        response: Response {
            status: head.status,
            content_type: head.content_type,
            location: head.location,
            body,
            end,
        },
        reuse,
    })
}

/// The stream of a connection whose answer was read to its end, when hyper found it reusable
/// (an HTTP/1.1 answer without `Connection: close`, or 1.0 with `keep-alive`, framed by its
/// length or chunks) and nothing more was sent after the answer.
async fn take_back<S>(
    mut sender: http1::SendRequest<Empty<Bytes>>,
    mut connection: Connection<S>,
) -> Option<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Once the body has ended, hyper's connection is either idle and ready for the next request,
    // or done (it closes what it must not reuse).
    let idle = poll_fn(|cx: &mut Context<'_>| {
        if connection.poll_without_shutdown(cx).is_ready() {
            return Poll::Ready(false);
        }
        Poll::Ready(matches!(sender.poll_ready(cx), Poll::Ready(Ok(()))))
    })
    .await;
    if !idle {
        return None;
    }
    // Without a sender, an idle connection is done at once.
    drop(sender);
    let parts = connection.without_shutdown().await.ok()?;
    // Bytes after the end of the answer were never asked for: the connection is not trusted.
    if !parts.read_buf.is_empty() {
        return None;
    }
    Some(parts.io.into_inner().stream)
}

/// Reads at most [`BODY_LIMIT`] bytes of `body`, and says how the reading ended. The rest of a
/// longer body is never read.
async fn read_body(mut body: hyper::body::Incoming) -> (Vec<u8>, BodyEnd) {
    let mut bytes = Vec::new();
    loop {
        match body.frame().await {
            None => return (bytes, BodyEnd::Complete),
            // Cut short, or framed wrongly (a broken chunk): the body ends there either way.
            Some(Err(_)) => return (bytes, BodyEnd::Cut),
            Some(Ok(frame)) => {
                // Trailer fields are read (by hyper) and ignored.
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = BODY_LIMIT - bytes.len();
                if data.len() > room {
                    bytes.extend_from_slice(&data[..room]);
                    return (bytes, BodyEnd::Capped);
                }
                bytes.extend_from_slice(&data);
            }
        }
    }
}

/// What the probe needs of a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    /// The first `Content-Type` field, if any (not UTF-8 bytes replaced).
    content_type: Option<String>,
    /// The first `Location` field, if any (not UTF-8 bytes replaced).
    location: Option<String>,
    /// How long the connection may wait in the pool once the answer is read: the pool's time,
    /// or less when the app says when it closes idle connections; `None` when it closes them
    /// (nearly) at once.
    keep_for: Option<Duration>,
}

impl Head {
    fn of(headers: &HeaderMap, status: u16) -> Head {
        let text = |name| {
            headers
                .get(name)
                .map(|value: &HeaderValue| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        let app_timeout = headers
            .get_all(KEEP_ALIVE)
            .iter()
            .find_map(|value| keep_alive_timeout(value.as_bytes()));
        // Both framings at once may be an attempt at response splitting (RFC 9112 §6.3): hyper
        // reads the answer by its chunks, as it should, but the connection is not trusted again.
        let ambiguous = headers.contains_key(header::TRANSFER_ENCODING)
            && headers.contains_key(header::CONTENT_LENGTH);
        Head {
            status,
            content_type: text(header::CONTENT_TYPE),
            location: text(header::LOCATION),
            keep_for: keep_for(app_timeout).filter(|_| !ambiguous),
        }
    }
}

/// The `timeout` parameter of a `Keep-Alive` field (`timeout=5, max=100`): how long the app
/// keeps an idle connection open. `None` when it has none, or one that is not a number.
fn keep_alive_timeout(value: &[u8]) -> Option<Duration> {
    value.split(|&byte| byte == b',').find_map(|parameter| {
        let (name, seconds) = parameter.trim_ascii().split_at_checked(
            parameter
                .trim_ascii()
                .iter()
                .position(|&byte| byte == b'=')?,
        )?;
        if !name.trim_ascii().eq_ignore_ascii_case(b"timeout") {
            return None;
        }
        let seconds = seconds[1..].trim_ascii();
        let seconds = seconds
            .strip_prefix(b"\"")
            .and_then(|quoted| quoted.strip_suffix(b"\""))
            .unwrap_or(seconds);
        if seconds.is_empty() || !seconds.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let seconds: u64 = std::str::from_utf8(seconds).ok()?.parse().ok()?;
        Some(Duration::from_secs(seconds))
    })
}

/// How long a connection may wait in the pool, given the app's keep-alive timeout (if it sent
/// one): [`POOL_IDLE_TIMEOUT`], or [`KEEP_ALIVE_MARGIN`] less than the app's; `None` when that
/// leaves nothing.
fn keep_for(app_timeout: Option<Duration>) -> Option<Duration> {
    match app_timeout {
        None => Some(POOL_IDLE_TIMEOUT),
        Some(timeout) => timeout
            .checked_sub(KEEP_ALIVE_MARGIN)
            .filter(|left| !left.is_zero())
            .map(|left| left.min(POOL_IDLE_TIMEOUT)),
    }
}

/// A stream that remembers whether any byte was read from it: a kept-alive connection that
/// fails before that is one the app closed as the request went out, and the request may be sent
/// again.
#[derive(Debug)]
struct Watched<S> {
    stream: S,
    answered: bool,
}

impl<S> Watched<S> {
    fn new(stream: S) -> Watched<S> {
        Watched {
            stream,
            answered: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.answered = true;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::probe::resolve::Resolver;

    #[test]
    fn requests_carry_the_target_and_host() {
        let rows: &[(&str, &str, &str)] = &[
            (
                "http://127.0.0.1:8080/health?full=1",
                "/health?full=1",
                "127.0.0.1:8080",
            ),
            ("https://app.lan/api/health", "/api/health", "app.lan"),
            // the scheme's own port is not repeated; the other scheme's is
            ("http://App.LAN:80/h", "/h", "app.lan"),
            ("https://app.lan:80/h", "/h", "app.lan:80"),
            ("http://[::1]:9090/h#frag", "/h", "[::1]:9090"),
            ("http://app.lan", "/", "app.lan"),
            ("http://app.lan/é", "/%C3%A9", "app.lan"),
        ];
        for (url, target, host) in rows {
            let request = Request::get(url, "ua/1", "*/*").expect(url).to_hyper();
            assert_eq!(
                (
                    request.uri().to_string().as_str(),
                    request.headers()["host"].to_str().expect("text")
                ),
                (*target, *host),
                "{url}"
            );
            assert_eq!(request.headers()["user-agent"], "ua/1");
            assert_eq!(request.headers()["accept"], "*/*");
        }
        for url in [
            "ftp://app.lan/",
            "not a url",
            "unix:/run/app.sock",
            "http://",
        ] {
            assert!(Request::get(url, "ua", "*/*").is_err(), "{url}");
        }
    }

    #[test]
    fn requests_are_keyed_by_scheme_host_and_port() {
        let key = |url| Request::get(url, "ua", "*/*").expect(url).key;
        assert_eq!(key("http://app.lan/a"), key("http://APP.lan:80/b?c"));
        assert_ne!(key("http://app.lan/"), key("https://app.lan:80/"));
        assert_ne!(key("http://app.lan/"), key("http://app.lan:8080/"));
        assert_ne!(key("http://127.0.0.1/"), key("http://127.0.0.2/"));
        assert_eq!(
            key("http://[::1]:1/").host,
            url::Host::<String>::Ipv6(std::net::Ipv6Addr::LOCALHOST)
        );
    }

    #[test]
    fn keep_alive_timeouts() {
        let rows: &[(&str, Option<u64>)] = &[
            ("timeout=5", Some(5)),
            ("timeout=5, max=1000", Some(5)),
            ("max=100, Timeout = 15", Some(15)),
            ("timeout=\"30\"", Some(30)),
            ("timeout=0", Some(0)),
            ("max=5", None),
            ("timeout=", None),
            ("timeout=-1", None),
            ("timeout=1.5", None),
            ("timeouts=5", None),
            ("", None),
        ];
        for (value, seconds) in rows {
            assert_eq!(
                keep_alive_timeout(value.as_bytes()),
                seconds.map(Duration::from_secs),
                "{value}"
            );
        }
        // How long the pool keeps a connection, given the app's timeout.
        assert_eq!(keep_for(None), Some(POOL_IDLE_TIMEOUT));
        assert_eq!(
            keep_for(Some(Duration::from_secs(5))),
            Some(Duration::from_secs(4))
        );
        assert_eq!(keep_for(Some(Duration::from_secs(1))), None);
        assert_eq!(keep_for(Some(Duration::ZERO)), None);
        assert_eq!(
            keep_for(Some(Duration::from_secs(3600))),
            Some(POOL_IDLE_TIMEOUT)
        );
    }

    /// Runs `exchange` against an app on the other end of an in-memory pipe that passes `pipe`
    /// bytes at a time: the app reads the request head, then writes `answer` and closes its end
    /// (or keeps it open, with `keep_open`). Returns the result, the status and the request
    /// head as the app read it.
    async fn exchange_with(
        answer: &'static [u8],
        pipe: usize,
        keep_open: bool,
    ) -> (
        Result<Exchanged<tokio::io::DuplexStream>, Attempt>,
        Option<u16>,
        Option<String>,
    ) {
        let (ours, mut theirs) = tokio::io::duplex(pipe);
        let app = tokio::spawn(async move {
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if theirs.read(&mut byte).await.expect("read") == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            // The probe may stop reading before the end of the answer: that is fine.
            let _ = theirs.write_all(answer).await;
            if keep_open {
                std::future::pending::<()>().await;
            }
            String::from_utf8(request).expect("text")
        });
        let request = Request::get("http://a:8080/h?x=1", "ua/1", "*/*").expect("request");
        let mut status = None;
        let result = exchange(&http_settings(), ours, &request, &mut status).await;
        let seen = match keep_open {
            false => Some(app.await.expect("app")),
            true => None,
        };
        (result, status, seen)
    }

    #[tokio::test]
    async fn the_request_as_written() {
        let (result, _, seen) = exchange_with(b"HTTP/1.1 200 OK\r\n\r\n", 64, false).await;
        result.expect("answer");
        assert_eq!(
            seen.as_deref(),
            Some("GET /h?x=1 HTTP/1.1\r\nHost: a:8080\r\nUser-Agent: ua/1\r\nAccept: */*\r\n\r\n")
        );
    }

    #[tokio::test]
    async fn an_answer_dribbled_a_byte_at_a_time() {
        let answer =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
            Transfer-Encoding: chunked\r\n\r\n2;x=y\r\nOK\r\n0\r\nT: z\r\n\r\n";
        let (result, status, _) = exchange_with(answer, 1, true).await;
        let exchanged = result.expect("answer");
        assert_eq!(status, Some(200));
        assert_eq!(
            exchanged.response,
            Response {
                status: 200,
                content_type: Some("text/plain".to_owned()),
                location: None,
                body: b"OK".to_vec(),
                end: BodyEnd::Complete,
            }
        );
        assert!(exchanged.reuse.is_some());
    }

    /// Each row: an answer from an app that keeps the connection open, then the status, the
    /// body, how it ended, and how long the connection may be kept (`None`: not reused).
    #[tokio::test]
    async fn what_is_read_and_when_a_connection_is_reused() {
        let pool = Some(POOL_IDLE_TIMEOUT);
        #[allow(clippy::type_complexity)]
        let rows: &[(&[u8], u16, &str, BodyEnd, Option<Duration>)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                pool,
            ),
            // more than was asked for: the connection is not trusted again
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKextra",
                200,
                "OK",
                BodyEnd::Complete,
                None,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                None,
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                pool,
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                204,
                "",
                BodyEnd::Complete,
                pool,
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                304,
                "",
                BodyEnd::Complete,
                pool,
            ),
            // the app's keep-alive timeout, less a second
            (
                b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                Some(Duration::from_secs(4)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1, max=5\r\nContent-Length: 2\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                None,
            ),
            // equal Content-Length values are one value
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                pool,
            ),
            // the last transfer coding is chunked
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n",
                200,
                "OK",
                BodyEnd::Complete,
                pool,
            ),
            // both framings: chunked wins, and the connection is not trusted again
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
                  2\r\nOK\r\n0\r\n\r\n",
                200,
                "OK",
                BodyEnd::Complete,
                None,
            ),
            // RFC 9112 §2.2: a bare LF ends a head line
            (
                b"HTTP/1.1 200 OK\nContent-Length: 2\n\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                pool,
            ),
            // RFC 9112 §5.2: obsolete line folding is unfolded
            (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json;\r\n charset=utf-8\r\n\
                  X-Note: one\r\n\ttwo\r\nContent-Length: 2\r\n\r\nOK",
                200,
                "OK",
                BodyEnd::Complete,
                pool,
            ),
            // interim answers (RFC 9110 §15.2) are skipped
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                  HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown",
                503,
                "down",
                BodyEnd::Complete,
                pool,
            ),
            // RFC 9112 §7.1: chunk lines end in CRLF; a bare LF breaks the body
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nOK\n0\n\n",
                200,
                "",
                BodyEnd::Cut,
                None,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\n0\r\n\r\n",
                200,
                "OK",
                BodyEnd::Cut,
                None,
            ),
        ];
        for (answer, status, body, end, keep) in rows {
            let (result, seen_status, _) = exchange_with(answer, 64 * 1024, true).await;
            let exchanged = result.expect("answer");
            assert_eq!(
                (
                    seen_status,
                    exchanged.response.status,
                    String::from_utf8_lossy(&exchanged.response.body).as_ref(),
                    exchanged.response.end,
                    exchanged.reuse.map(|(_, keep)| keep),
                ),
                (Some(*status), *status, *body, *end, *keep),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn folded_fields_are_read_unfolded() {
        let (result, _, _) = exchange_with(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json;\r\n charset=utf-8\r\n\
              Content-Length: 0\r\n\r\n",
            64,
            true,
        )
        .await;
        let content_type = result.expect("answer").response.content_type;
        assert_eq!(
            content_type.as_deref(),
            Some("application/health+json; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn bodies_that_end_with_the_connection_or_are_cut_or_capped_are_never_reused() {
        let (result, _, _) = exchange_with(b"HTTP/1.0 200 OK\r\n\r\nall of it", 16, false).await;
        let exchanged = result.expect("answer");
        assert_eq!(exchanged.response.body, b"all of it");
        assert_eq!(exchanged.response.end, BodyEnd::Complete);
        assert!(exchanged.reuse.is_none());
        let (result, _, _) = exchange_with(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            16,
            false,
        )
        .await;
        let exchanged = result.expect("answer");
        assert_eq!(exchanged.response.end, BodyEnd::Cut);
        assert!(exchanged.reuse.is_none());
        let (result, status, _) = exchange_with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            16,
            true,
        )
        .await;
        let exchanged = result.expect("answer");
        assert_eq!(status, Some(200));
        assert_eq!(exchanged.response.end, BodyEnd::Cut);
        assert!(exchanged.reuse.is_none());
    }

    #[tokio::test]
    async fn a_big_body_is_read_to_the_limit_only() {
        static ANSWER: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
            answer.resize(answer.len() + 1_000_000, b'x');
            answer
        });
        let (result, _, _) = exchange_with(&ANSWER, 64 * 1024, true).await;
        let exchanged = result.expect("answer");
        assert_eq!(exchanged.response.body.len(), BODY_LIMIT);
        assert_eq!(exchanged.response.end, BodyEnd::Capped);
        assert!(exchanged.reuse.is_none());
        // Exactly the limit is a whole body.
        static EXACT: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY_LIMIT}\r\n\r\n").into_bytes();
            answer.resize(answer.len() + BODY_LIMIT, b'x');
            answer
        });
        let (result, _, _) = exchange_with(&EXACT, 64 * 1024, true).await;
        let exchanged = result.expect("answer");
        assert_eq!(
            (exchanged.response.body.len(), exchanged.response.end),
            (BODY_LIMIT, BodyEnd::Complete)
        );
    }

    #[tokio::test]
    async fn a_close_before_any_answer_may_be_retried_but_not_after() {
        let (result, status, _) = exchange_with(b"", 64, false).await;
        assert!(
            matches!(result, Err(Attempt::BeforeAnswer(Error::Closed))),
            "{result:?}"
        );
        assert_eq!(status, None);
        let (result, status, _) = exchange_with(b"HTTP/1.1 200", 64, false).await;
        assert!(
            matches!(result, Err(Attempt::Answered(Error::Closed))),
            "{result:?}"
        );
        assert_eq!(status, None);
    }

    /// Each row: an answer whose head cannot be read, and what the probe says of it.
    #[tokio::test]
    async fn malformed_answers() {
        let rows: &[(&[u8], &str)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "invalid content-length parsed",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                "invalid content-length parsed",
            ),
            (b"HTTP/2 200\r\n\r\n", "invalid HTTP version parsed"),
            (
                b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
                "invalid HTTP version parsed",
            ),
            (
                b"HTTP/1.1 2000 OK\r\n\r\n",
                "invalid HTTP status-code parsed",
            ),
            (
                b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                "invalid HTTP header parsed",
            ),
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; a user agent
            // discards the answer and closes the connection
            (
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n",
                "unexpected transfer-encoding parsed",
            ),
        ];
        for (answer, what) in rows {
            let (result, status, _) = exchange_with(answer, 64, true).await;
            assert!(
                matches!(&result, Err(Attempt::Answered(Error::Malformed(text))) if text == what),
                "{}: {result:?}",
                String::from_utf8_lossy(answer)
            );
            assert_eq!(status, None);
        }
        // A head larger than the limit, or with more fields than are taken.
        static LARGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
            while answer.len() < READ_BUFFER_LIMIT + 1024 {
                answer.extend_from_slice(b"X-Filler: yyyyyyyyyyyyyyyyyyyyyyyy\r\n");
            }
            answer
        });
        static MANY: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..150 {
                answer.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
            }
            answer.extend_from_slice(b"\r\n");
            answer
        });
        for answer in [&*LARGE, &*MANY] {
            let (result, _, _) = exchange_with(answer, 64 * 1024, true).await;
            assert!(
                matches!(result, Err(Attempt::Answered(Error::HeadTooLarge))),
                "{result:?}"
            );
        }
    }

    /// A TLS app on 127.0.0.1:0 with the certificate of `tests/data`, answering every request
    /// on a connection with `answer`; counts connections.
    async fn tls_app(answer: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
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
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    loop {
                        let mut head = Vec::new();
                        while !head.ends_with(b"\r\n\r\n") {
                            let mut byte = [0u8; 1];
                            match tls.read(&mut byte).await {
                                Ok(1) => head.push(byte[0]),
                                _ => return,
                            }
                        }
                        if tls.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, connections)
    }

    /// A TLS client configuration that trusts the test CA of `tests/data` (and nothing else).
    pub(in crate::probe) fn trusting_the_test_ca() -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                include_bytes!("../../tests/data/test-ca.der").to_vec(),
            ))
            .expect("CA");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    #[tokio::test]
    async fn https_answers_are_read_and_the_connection_reused() {
        let (addr, connections) = tls_app(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\nOK\r\n0\r\n\r\n",
        )
        .await;
        let client = Client::new(Connector::new(
            std::sync::Arc::new(Resolver::with_name_servers(&[])),
            trusting_the_test_ca(),
            None,
        ));
        for _ in 0..3 {
            let request =
                Request::get(&format!("https://{addr}/health"), "ua", "*/*").expect("request");
            let mut progress = Progress::default();
            let response = client.get(&request, &mut progress).await.expect("response");
            assert_eq!(
                (progress.status, response.body.as_slice(), response.end),
                (Some(200), b"OK".as_slice(), BodyEnd::Complete)
            );
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }
}
