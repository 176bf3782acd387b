//! The probe's HTTP/1.1 client: one `GET` per check, on a pooled kept-alive connection.
//!
//! Built for many idle connections and few bytes per check, not for general use:
//!
//! * The protocol is sans-IO: [`parse_head`] reads a response head (skipping interim 1xx ones)
//!   from the bytes received so far, and a [`BodyDecoder`] turns the bytes after it into body
//!   bytes, following the framing of RFC 9112 §6.3. Both are pure and tested as tables.
//! * [`Client::get`] does the I/O: it takes an idle connection from the [`Pool`] (or connects,
//!   with TLS for https), writes the request in one write, reads the answer through one buffer
//!   that lives as long as the check, and puts the connection back when it can be reused.
//! * An idle connection is only its stream and when it was last used: no buffers, no task. The
//!   [`Pool`] is a map behind a mutex, swept lazily (no background task), with the clock as an
//!   input.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BufMut as _;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use url::{Host, Url};

use super::{BODY_LIMIT, BodyEnd, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_HOST, READ_BUFFER_LIMIT};

/// Size the read buffer of a check starts at: a health answer (head and body) fits in it. It
/// grows, doubling, up to [`READ_BUFFER_LIMIT`] when a head is larger.
const INITIAL_READ_BUFFER: usize = 4 * 1024;

/// Most header fields in a response head (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// How often, at most, the whole pool is swept for expired connections. The sweep is done by
/// whichever check takes or returns a connection after this long, so it needs no task.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The `GET` a check sends, and where to.
#[derive(Debug, Clone)]
pub(super) struct Request {
    /// Which pooled connections can carry it.
    key: Key,
    /// The whole request, head and (empty) body, as written.
    bytes: Vec<u8>,
}

/// The URL of a check was not an absolute `http` or `https` URL with a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidUrl;

impl Request {
    /// `GET <path-and-query> HTTP/1.1` for `url`, with `Host` (its port only when it is not the
    /// scheme's default), `User-Agent` and `Accept`. Any fragment is left out.
    pub(super) fn get(url: &str, user_agent: &str, accept: &str) -> Result<Request, InvalidUrl> {
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
        let path = url.path();
        let query = url.query();
        let mut bytes = Vec::with_capacity(
            80 + path.len()
                + query.map_or(0, str::len)
                + host_text.len()
                + user_agent.len()
                + accept.len(),
        );
        bytes.extend_from_slice(b"GET ");
        bytes.extend_from_slice(path.as_bytes());
        if let Some(query) = query {
            bytes.push(b'?');
            bytes.extend_from_slice(query.as_bytes());
        }
        bytes.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        bytes.extend_from_slice(host_text.as_bytes());
        // `Url` drops the scheme's default port, so a port here is another one.
        if let Some(port) = url.port() {
            bytes.extend_from_slice(format!(":{port}").as_bytes());
        }
        bytes.extend_from_slice(b"\r\nUser-Agent: ");
        bytes.extend_from_slice(user_agent.as_bytes());
        bytes.extend_from_slice(b"\r\nAccept: ");
        bytes.extend_from_slice(accept.as_bytes());
        bytes.extend_from_slice(b"\r\n\r\n");
        Ok(Request {
            key: Key {
                https,
                host: host.to_owned(),
                port,
            },
            bytes,
        })
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

/// Why no response arrived. The probe turns each into a reason and a detail.
#[derive(Debug)]
pub(super) enum Error {
    /// The host name did not resolve (to any address); the name is kept for the detail.
    Dns(String),
    /// No TCP connection could be made (to any of the addresses).
    Connect(io::Error),
    /// The TLS handshake failed (a `rustls::Error` inside, when rustls refused something).
    Tls(io::Error),
    /// Writing the request or reading the head failed.
    Io(io::Error),
    /// The connection was closed before a whole response head arrived.
    Closed,
    /// The response head did not end within [`READ_BUFFER_LIMIT`] bytes.
    HeadTooLarge,
    /// The response head is not HTTP/1.x; what is wrong with it.
    Malformed(String),
}

/// The probe's client: TLS settings and the pool of idle connections. Shared by every check.
pub(super) struct Client {
    /// Makes TLS connections, with the probe's trust settings and ALPN `http/1.1`.
    tls: TlsConnector,
    /// The idle connections. The lock is only held to take or put one (or sweep): never across
    /// an await, never around a system call.
    pool: Mutex<Pool<Stream>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client with an empty pool that makes TLS connections with `tls`.
    pub(super) fn new(tls: Arc<rustls::ClientConfig>) -> Client {
        Client {
            tls: TlsConnector::from(tls),
            pool: Mutex::new(Pool::new(
                Instant::now(),
                POOL_IDLE_TIMEOUT,
                POOL_MAX_IDLE_PER_HOST,
            )),
        }
    }

    /// Sends `request` and reads the answer: the head, then at most [`BODY_LIMIT`] bytes of the
    /// body. `status` is set as soon as the head has arrived, so that a caller that gives up
    /// while the body comes still knows it.
    ///
    /// A kept-alive connection that fails before any byte of the answer arrived is most likely
    /// one the app closed just as the request went out (its keep-alive timer against ours): the
    /// request is sent once more on a new connection (`GET` is idempotent). A new connection
    /// that fails is reported.
    pub(super) async fn get(
        &self,
        request: Request,
        status: &mut Option<u16>,
    ) -> Result<Response, Error> {
        if let Some(mut stream) = self.checkout(&request.key) {
            match exchange(&mut stream, &request.bytes, status).await {
                Ok(exchanged) => return Ok(self.finish(request.key, stream, exchanged)),
                Err(Attempt::BeforeAnswer(_)) => {}
                Err(Attempt::Answered(error)) => return Err(error),
            }
        }
        let mut stream = self.connect(&request.key).await?;
        match exchange(&mut stream, &request.bytes, status).await {
            Ok(exchanged) => Ok(self.finish(request.key, stream, exchanged)),
            Err(Attempt::BeforeAnswer(error) | Attempt::Answered(error)) => Err(error),
        }
    }

    /// Puts the connection back in the pool when it can carry another request.
    fn finish(&self, key: Key, stream: Stream, exchanged: Exchanged) -> Response {
        if exchanged.reusable {
            let dropped = self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .checkin(key, stream, Instant::now());
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
            let stream = candidate?;
            if stream.looks_open() {
                return Some(stream);
            }
        }
    }

    /// Closes the older half of the idle connections, when the server is out of open files, so
    /// that checks go on (on new connections) instead of failing for the server's own want of
    /// files; false when there was nothing to close.
    fn make_room(&self) -> bool {
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

    /// A new connection for `key`: resolve, connect (to each address in turn until one
    /// accepts), and for https the TLS handshake.
    async fn connect(&self, key: &Key) -> Result<Stream, Error> {
        let addrs: Vec<SocketAddr> = match &key.host {
            Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), key.port)],
            Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), key.port)],
            Host::Domain(name) => tokio::net::lookup_host((name.as_str(), key.port))
                .await
                .map_err(|_| Error::Dns(name.clone()))?
                .collect(),
        };
        let mut first_error = None;
        let mut connected = None;
        for addr in addrs {
            let attempt = match TcpStream::connect(addr).await {
                Err(error) if out_of_files(&error) && self.make_room() => {
                    TcpStream::connect(addr).await
                }
                attempt => attempt,
            };
            match attempt {
                Ok(tcp) => {
                    connected = Some(tcp);
                    break;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let tcp = match (connected, first_error) {
            (Some(tcp), _) => tcp,
            (None, Some(error)) => return Err(Error::Connect(error)),
            // A name that resolved to no address at all.
            (None, None) => return Err(Error::Dns(key.host.to_string())),
        };
        // The request is one small write: waiting to coalesce it would only add latency.
        tcp.set_nodelay(true).map_err(Error::Connect)?;
        if !key.https {
            return Ok(Stream::Plain(tcp));
        }
        let name = match &key.host {
            Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(*ip).into()),
            Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(*ip).into()),
            Host::Domain(name) => ServerName::try_from(name.clone()).map_err(|_| {
                Error::Tls(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name:?} is not a valid DNS name"),
                ))
            })?,
        };
        let tls = self.tls.connect(name, tcp).await.map_err(Error::Tls)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The server has no file descriptor left for a socket (its own limit, or the system's).
pub(super) fn out_of_files(error: &io::Error) -> bool {
    use rustix::io::Errno;

    matches!(
        Errno::from_io_error(error),
        Some(Errno::MFILE | Errno::NFILE)
    )
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

/// A response, and whether its connection may carry another request.
#[derive(Debug)]
struct Exchanged {
    response: Response,
    /// HTTP/1.1 without `Connection: close` (or 1.0 with `keep-alive`), the body read to its
    /// framed end, and nothing more sent after it.
    reusable: bool,
}

/// Writes `request` on `stream` and reads the response, through one buffer that starts at
/// [`INITIAL_READ_BUFFER`] bytes and is freed on return.
async fn exchange<S>(
    stream: &mut S,
    request: &[u8],
    status: &mut Option<u16>,
) -> Result<Exchanged, Attempt>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let written = match stream.write_all(request).await {
        Ok(()) => stream.flush().await,
        Err(error) => Err(error),
    };
    written.map_err(|error| Attempt::BeforeAnswer(Error::Io(error)))?;

    let mut buffer: Vec<u8> = Vec::with_capacity(INITIAL_READ_BUFFER);
    let head = loop {
        match parse_head(&buffer, READ_BUFFER_LIMIT) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(HeadError::TooLarge) => return Err(Attempt::Answered(Error::HeadTooLarge)),
            Err(HeadError::Malformed(what)) => {
                return Err(Attempt::Answered(Error::Malformed(what)));
            }
        }
        let answered = !buffer.is_empty();
        let failure = match read_more(stream, &mut buffer).await {
            Ok(0) => Error::Closed,
            Ok(_) => continue,
            Err(error) => Error::Io(error),
        };
        return Err(match answered {
            false => Attempt::BeforeAnswer(failure),
            true => Attempt::Answered(failure),
        });
    };
    *status = Some(head.status);

    let mut decoder = BodyDecoder::new(head.framing, BODY_LIMIT);
    let mut body = Vec::new();
    let mut start = head.len;
    let (end, reusable) = loop {
        match decoder.feed(&buffer[start..], &mut body) {
            Ok((used, Progress::Complete)) => {
                // Bytes after the end of the body were never asked for: do not reuse.
                let clean = start + used == buffer.len();
                break (BodyEnd::Complete, head.reusable && clean);
            }
            Ok((_, Progress::Capped)) => break (BodyEnd::Capped, false),
            Ok((used, Progress::More)) => start += used,
            // Broken framing: the body ends there, as if the connection had broken.
            Err(_) => break (BodyEnd::Cut, false),
        }
        // What is left is the start of a framing line (a chunk size, say): keep it in front.
        buffer.drain(..start);
        start = 0;
        if buffer.len() >= READ_BUFFER_LIMIT {
            break (BodyEnd::Cut, false);
        }
        match read_more(stream, &mut buffer).await {
            Ok(0) => break (decoder.at_close(), false),
            Ok(_) => {}
            Err(_) => break (BodyEnd::Cut, false),
        }
    };
    Ok(Exchanged {
        response: Response {
            status: head.status,
            content_type: head.content_type,
            location: head.location,
            body,
            end,
        },
        reusable,
    })
}

/// Reads what has arrived onto the end of `buffer`, growing it (doubling) when it is full, but
/// never beyond [`READ_BUFFER_LIMIT`] bytes. `Ok(0)` means the connection was closed; the
/// callers never call it with a full buffer (which would read nothing, too).
async fn read_more<S>(stream: &mut S, buffer: &mut Vec<u8>) -> io::Result<usize>
where
    S: AsyncRead + Unpin,
{
    let room = READ_BUFFER_LIMIT.saturating_sub(buffer.len());
    if buffer.len() == buffer.capacity() {
        buffer.reserve_exact(buffer.capacity().max(INITIAL_READ_BUFFER).min(room));
    }
    stream.read_buf(&mut (&mut *buffer).limit(room)).await
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body at all (1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the app closes the connection.
    UntilClose,
}

/// What the probe needs of a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    /// The status code.
    pub(super) status: u16,
    /// The first `Content-Type` field, if any (not UTF-8 bytes replaced).
    pub(super) content_type: Option<String>,
    /// The first `Location` field, if any (not UTF-8 bytes replaced).
    pub(super) location: Option<String>,
    /// How the body is delimited.
    pub(super) framing: Framing,
    /// Whether the connection may carry another request once the body is read to its end.
    pub(super) reusable: bool,
    /// Bytes the head took at the start of the buffer, interim (1xx) heads before it included.
    pub(super) len: usize,
}

/// A response head that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeadError {
    /// No head ended within the limit.
    TooLarge,
    /// Not an HTTP/1.x response head; what is wrong.
    Malformed(String),
}

/// Reads the final response head at the start of `bytes` (everything received so far), skipping
/// interim 1xx responses (100 Continue, 103 Early Hints, ...) before it.
///
/// `Ok(None)` when the head is not complete yet; [`HeadError::TooLarge`] when it is not
/// complete and `bytes` already holds `limit` bytes. 101 Switching Protocols (never asked for)
/// is taken as the final answer, without a body, on a connection that is not reused.
pub(super) fn parse_head(bytes: &[u8], limit: usize) -> Result<Option<Head>, HeadError> {
    let mut start = 0;
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        let rest = &bytes[start..];
        match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or_default();
                if (100..200).contains(&status) && status != 101 {
                    start += len;
                    continue;
                }
                return read_fields(&response, start + len).map(Some);
            }
            Ok(httparse::Status::Partial) => {}
            // More fields than we take, in a head that has not ended: it may be too large.
            Err(httparse::Error::TooManyHeaders) if !has_head_end(rest) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::Malformed(format!(
                    "more than {MAX_HEADERS} header fields"
                )));
            }
            Err(error) => return Err(HeadError::Malformed(error.to_string())),
        }
        if bytes.len() >= limit {
            return Err(HeadError::TooLarge);
        }
        return Ok(None);
    }
}

/// Whether `bytes` holds the empty line that ends a head (`\r\n\r\n`, or bare `\n`s).
fn has_head_end(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(at, pair)| pair == b"\n\n" || (pair == b"\n\r" && bytes.get(at + 2) == Some(&b'\n')))
}

/// The head of a parsed final response, which took `len` bytes.
fn read_fields(response: &httparse::Response<'_, '_>, len: usize) -> Result<Head, HeadError> {
    let status = response.code.unwrap_or_default();
    let http_1_1 = response.version == Some(1);
    let mut content_type = None;
    let mut location = None;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    for field in response.headers.iter() {
        let name = field.name;
        let text = || String::from_utf8_lossy(field.value).into_owned();
        if name.eq_ignore_ascii_case("content-type") {
            content_type.get_or_insert_with(text);
        } else if name.eq_ignore_ascii_case("location") {
            location.get_or_insert_with(text);
        } else if name.eq_ignore_ascii_case("content-length") {
            // A list of equal values (`5, 5`) is one value (RFC 9110 §8.6); differing ones are
            // a message that cannot be framed.
            for part in field.value.split(|&byte| byte == b',') {
                let value = parse_length(part.trim_ascii()).ok_or_else(|| {
                    HeadError::Malformed(format!(
                        "invalid Content-Length {:?}",
                        String::from_utf8_lossy(field.value)
                    ))
                })?;
                if content_length.is_some_and(|known| known != value) {
                    return Err(HeadError::Malformed(
                        "differing Content-Length values".to_owned(),
                    ));
                }
                content_length = Some(value);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // Only the last coding of the last field says whether it is chunked.
            if let Some(last) = field
                .value
                .split(|&byte| byte == b',')
                .map(<[u8]>::trim_ascii)
                .rfind(|coding| !coding.is_empty())
            {
                chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in field.value.split(|&byte| byte == b',') {
                let option = option.trim_ascii();
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    let persistent = if http_1_1 {
        !close
    } else {
        keep_alive && !close
    };
    // Both framings at once, or chunked in HTTP/1.0, may be a smuggling attempt: read this
    // answer as framed, but never the connection again (RFC 9112 §6.1, §6.3).
    let ambiguous = transfer_encoding && (content_length.is_some() || !http_1_1);
    let reusable =
        persistent && !ambiguous && status != 101 && !matches!(framing, Framing::UntilClose);
    Ok(Head {
        status,
        content_type,
        location,
        framing,
        reusable,
        len,
    })
}

/// A `Content-Length` value: decimal digits only (no sign, no spaces inside).
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// How far a [`BodyDecoder`] got with what it was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// The body has not ended: feed it more (after the unused bytes, if any).
    More,
    /// The body ended; the bytes after the used ones are not part of it.
    Complete,
    /// The body is longer than the limit: the limit is kept, the rest is not to be read.
    Capped,
}

/// The body's framing is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum BodyError {
    /// A chunk size line that is not a hexadecimal size (with optional extensions).
    #[error("invalid chunk size")]
    ChunkSize,
    /// A chunk's data not followed by CRLF.
    #[error("no line end after a chunk")]
    ChunkEnd,
}

/// Where a [`BodyDecoder`] is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// This many bytes left of a body of known length.
    Length(u64),
    /// Everything until the connection closes.
    UntilClose,
    /// A chunk size line comes next.
    ChunkSize,
    /// This many bytes left of a chunk's data.
    ChunkData(u64),
    /// The line end after a chunk's data comes next.
    ChunkEnd,
    /// Trailer fields (read and ignored) up to an empty line.
    Trailers,
    /// The body has ended.
    Done,
}

/// Turns the bytes after a response head into body bytes, keeping at most `limit` of them.
///
/// Pure: it is fed whatever arrived and says how much of it it used; the caller reads more.
#[derive(Debug, Clone)]
pub(super) struct BodyDecoder {
    state: BodyState,
    limit: usize,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`, keeping at most `limit` bytes of it.
    pub(super) fn new(framing: Framing, limit: usize) -> BodyDecoder {
        let state = match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(length) => BodyState::Length(length),
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        BodyDecoder { state, limit }
    }

    /// Decodes as much of `input` as it can, appending body bytes to `body`. Returns how many
    /// bytes of `input` it used and how far it got. With [`Progress::More`], the unused bytes
    /// (the start of a line) must be fed again with what arrives next.
    pub(super) fn feed(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
    ) -> Result<(usize, Progress), BodyError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                BodyState::Done => return Ok((used, Progress::Complete)),
                BodyState::Length(0) => self.state = BodyState::Done,
                BodyState::ChunkData(0) => self.state = BodyState::ChunkEnd,
                BodyState::Length(left) | BodyState::ChunkData(left) => {
                    if body.len() >= self.limit {
                        return Ok((used, Progress::Capped));
                    }
                    if rest.is_empty() {
                        return Ok((used, Progress::More));
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    let kept = self.keep(&rest[..take], body);
                    used += kept;
                    let left = left - kept as u64;
                    self.state = match self.state {
                        BodyState::Length(_) => BodyState::Length(left),
                        _ => BodyState::ChunkData(left),
                    };
                }
                BodyState::UntilClose => {
                    if rest.is_empty() {
                        return Ok((used, Progress::More));
                    }
                    if body.len() >= self.limit {
                        return Ok((used, Progress::Capped));
                    }
                    used += self.keep(rest, body);
                }
                BodyState::ChunkSize => {
                    // httparse takes an empty line for size 0: a size needs a digit.
                    match rest.first() {
                        None => return Ok((used, Progress::More)),
                        Some(first) if !first.is_ascii_hexdigit() => {
                            return Err(BodyError::ChunkSize);
                        }
                        Some(_) => {}
                    }
                    match httparse::parse_chunk_size(rest) {
                        Ok(httparse::Status::Complete((len, size))) => {
                            used += len;
                            self.state = match size {
                                0 => BodyState::Trailers,
                                size => BodyState::ChunkData(size),
                            };
                        }
                        Ok(httparse::Status::Partial) => return Ok((used, Progress::More)),
                        Err(httparse::InvalidChunkSize) => return Err(BodyError::ChunkSize),
                    }
                }
                BodyState::ChunkEnd => match rest {
                    [] | [b'\r'] => return Ok((used, Progress::More)),
                    [b'\r', b'\n', ..] => {
                        used += 2;
                        self.state = BodyState::ChunkSize;
                    }
                    _ => return Err(BodyError::ChunkEnd),
                },
                BodyState::Trailers => {
                    let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
                        return Ok((used, Progress::More));
                    };
                    used += end + 1;
                    if matches!(&rest[..end], [] | [b'\r']) {
                        self.state = BodyState::Done;
                    }
                }
            }
        }
    }

    /// How the body ended when the connection closed before [`Progress::Complete`]: complete
    /// when it was delimited by the close, cut short otherwise.
    pub(super) fn at_close(&self) -> BodyEnd {
        match self.state {
            BodyState::UntilClose | BodyState::Done => BodyEnd::Complete,
            _ => BodyEnd::Cut,
        }
    }

    /// Appends as much of `data` to `body` as the limit allows; returns how much it took (all
    /// of `data`, unless the limit was reached).
    fn keep(&self, data: &[u8], body: &mut Vec<u8>) -> usize {
        let take = data.len().min(self.limit.saturating_sub(body.len()));
        body.extend_from_slice(&data[..take]);
        take
    }
}

/// Which idle connections can carry a request: same scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// https (TLS) or http.
    https: bool,
    /// The host as written in the URL: a name, or an address.
    host: Host<String>,
    /// The port, the scheme's default when the URL has none.
    port: u16,
}

/// An idle connection: the stream and when it was last used, nothing else.
#[derive(Debug)]
struct Idle<S> {
    stream: S,
    last_used: Instant,
}

/// Idle kept-alive connections by [`Key`], most recently used last.
///
/// Pure bookkeeping, the clock given as an argument: the caller holds it behind a mutex, checks
/// that a connection it takes is still open, and drops what it gets back outside the lock.
#[derive(Debug)]
pub(super) struct Pool<S> {
    idle: HashMap<Key, Vec<Idle<S>>>,
    /// A connection idle this long is closed.
    idle_timeout: Duration,
    /// Most idle connections kept per key.
    max_per_key: usize,
    /// When the whole map is next swept for expired connections.
    next_sweep: Instant,
}

impl<S> Pool<S> {
    /// An empty pool.
    pub(super) fn new(now: Instant, idle_timeout: Duration, max_per_key: usize) -> Pool<S> {
        Pool {
            idle: HashMap::new(),
            idle_timeout,
            max_per_key,
            next_sweep: now + SWEEP_EVERY,
        }
    }

    /// Takes the most recently used connection for `key`, unless it has expired. Also returns
    /// the connections found expired (for `key`, or anywhere when a sweep was due), for the
    /// caller to drop.
    pub(super) fn checkout(&mut self, key: &Key, now: Instant) -> (Option<S>, Vec<S>) {
        let mut expired = self.sweep_if_due(now);
        let Some(idle) = self.idle.get_mut(key) else {
            return (None, expired);
        };
        match idle.pop() {
            Some(newest) if now.duration_since(newest.last_used) < self.idle_timeout => {
                (Some(newest.stream), expired)
            }
            // The newest has expired, so have all the older ones.
            Some(newest) => {
                expired.push(newest.stream);
                expired.extend(idle.drain(..).map(|old| old.stream));
                (None, expired)
            }
            None => (None, expired),
        }
    }

    /// Puts a connection back, used `now`. Returns the connections to drop: this one when
    /// `key` already has as many idle connections as are kept, and any a due sweep found.
    pub(super) fn checkin(&mut self, key: Key, stream: S, now: Instant) -> Vec<S> {
        let mut dropped = self.sweep_if_due(now);
        let idle = Idle {
            stream,
            last_used: now,
        };
        match self.idle.get_mut(&key) {
            Some(list) if list.len() >= self.max_per_key => dropped.push(idle.stream),
            Some(list) => list.push(idle),
            None => {
                self.idle.insert(key, vec![idle]);
            }
        }
        dropped
    }

    /// Takes out the older half of all idle connections (at least one, when there is any), for
    /// the caller to close: the server ran out of open files, and a new connection needs room.
    pub(super) fn evict_older_half(&mut self) -> Vec<S> {
        let mut times: Vec<Instant> = self
            .idle
            .values()
            .flat_map(|list| list.iter().map(|idle| idle.last_used))
            .collect();
        if times.is_empty() {
            return Vec::new();
        }
        let middle = (times.len() - 1) / 2;
        let (_, &mut cutoff, _) = times.select_nth_unstable(middle);
        let mut evicted = Vec::new();
        self.idle.retain(|_, list| {
            // Oldest first: the evicted ones are a prefix.
            let kept = list
                .iter()
                .position(|idle| idle.last_used > cutoff)
                .unwrap_or(list.len());
            evicted.extend(list.drain(..kept).map(|idle| idle.stream));
            !list.is_empty()
        });
        evicted
    }

    /// How many idle connections the pool holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Every [`SWEEP_EVERY`], takes the expired connections out of the whole map (and the keys
    /// left without any), so that connections of monitors that were removed do not stay open.
    fn sweep_if_due(&mut self, now: Instant) -> Vec<S> {
        let mut expired = Vec::new();
        if now < self.next_sweep {
            return expired;
        }
        self.next_sweep = now + SWEEP_EVERY;
        let timeout = self.idle_timeout;
        self.idle.retain(|_, list| {
            // Oldest first: the expired ones are a prefix.
            let fresh = list
                .iter()
                .position(|idle| now.duration_since(idle.last_used) < timeout)
                .unwrap_or(list.len());
            expired.extend(list.drain(..fresh).map(|idle| idle.stream));
            !list.is_empty()
        });
        expired
    }
}

/// A connection: plain TCP, or TLS over TCP (boxed: a TLS stream is large, and most are plain).
#[derive(Debug)]
pub(super) enum Stream {
    /// http.
    Plain(TcpStream),
    /// https.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether an idle connection still looks usable: for plain TCP, nothing to read (the app
    /// has neither closed it nor sent anything unasked), checked with a non-blocking read of one
    /// byte. TLS connections are not looked at (a read would go through the TLS layer); one
    /// the app closed fails at once, and the request is sent again on a new one.
    fn looks_open(&self) -> bool {
        match self {
            Stream::Plain(tcp) => matches!(
                tcp.try_read(&mut [0u8; 1]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock
            ),
            Stream::Tls(_) => true,
        }
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
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
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
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A final response head and what must be read from it: status, framing, reusable.
    fn head(text: &str) -> Result<Option<Head>, HeadError> {
        parse_head(text.as_bytes(), READ_BUFFER_LIMIT)
    }

    #[test]
    fn heads_and_their_framing() {
        use Framing::{Chunked, Empty, Length, UntilClose};
        // Each row: the head, then status, framing and whether the connection may be reused.
        let rows: &[(&str, u16, Framing, bool)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n",
                200,
                Length(17),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                200,
                Length(0),
                true,
            ),
            // bare line feeds are read too
            (
                "HTTP/1.1 200 OK\nContent-Length: 2\n\n",
                200,
                Length(2),
                true,
            ),
            // equal values, in a list or in several fields, are one value
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
                200,
                Length(5),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                200,
                Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                200,
                Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                200,
                Chunked,
                true,
            ),
            // chunked must be last, or the body runs until the close
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                200,
                UntilClose,
                false,
            ),
            // both framings: chunked wins, and the connection is not trusted again
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                200,
                Chunked,
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                200,
                Chunked,
                false,
            ),
            // neither: until the close
            (
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                200,
                UntilClose,
                false,
            ),
            ("HTTP/1.0 200 OK\r\n\r\n", 200, UntilClose, false),
            // keep-alive: HTTP/1.1 unless it says close, HTTP/1.0 only if it says keep-alive
            (
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                200,
                Length(0),
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0\r\n\r\n",
                200,
                Length(0),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                200,
                Length(0),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                200,
                Length(0),
                true,
            ),
            // no body, whatever the fields say
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                204,
                Empty,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
                304,
                Empty,
                true,
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                101,
                Empty,
                false,
            ),
            // interim answers are skipped
            (
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                 HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\n",
                503,
                Length(4),
                true,
            ),
        ];
        for (text, status, framing, reusable) in rows {
            let parsed = head(text).expect(text).expect(text);
            assert_eq!(
                (parsed.status, parsed.framing, parsed.reusable, parsed.len),
                (*status, *framing, *reusable, text.len()),
                "{text}"
            );
        }
    }

    #[test]
    fn the_fields_the_probe_reads() {
        let parsed = head(
            "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\nLocation: /ignored\r\n\
             Content-Type: application/health+json\r\nContent-Length: 0\r\n\r\nbody",
        )
        .expect("valid")
        .expect("complete");
        assert_eq!(parsed.location.as_deref(), Some("/elsewhere"));
        assert_eq!(
            parsed.content_type.as_deref(),
            Some("application/health+json")
        );
        let bare = head("HTTP/1.1 200 OK\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!((bare.content_type, bare.location), (None, None));
    }

    #[test]
    fn malformed_heads() {
        let rows: &[(&str, &str)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                "differing Content-Length values",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 7\r\n\r\n",
                "differing Content-Length values",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                "invalid Content-Length \"+5\"",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n",
                "invalid Content-Length \"five\"",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                "invalid Content-Length \"99999999999999999999999\"",
            ),
            ("HTTP/2 200\r\n\r\n", "invalid HTTP version"),
            ("SSH-2.0-OpenSSH_9.6\r\n\r\n", "invalid HTTP version"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "invalid response status"),
            (
                "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                "invalid header name",
            ),
        ];
        for (text, what) in rows {
            assert_eq!(
                head(text),
                Err(HeadError::Malformed((*what).to_owned())),
                "{text}"
            );
        }
    }

    #[test]
    fn a_head_split_anywhere_waits_for_the_rest() {
        let text =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for end in 0..text.len() {
            assert_eq!(
                parse_head(&text[..end], READ_BUFFER_LIMIT),
                Ok(None),
                "{end}"
            );
        }
        let parsed = parse_head(text, READ_BUFFER_LIMIT)
            .expect("valid")
            .expect("complete");
        assert_eq!((parsed.status, parsed.len), (200, text.len()));
    }

    #[test]
    fn a_head_larger_than_the_limit() {
        let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
        while text.len() < 1000 {
            text.extend_from_slice(b"X-Filler: yyyyyyyyyyyyyyyyyyyyyyyy\r\n");
        }
        // Not ended at the limit: too large. Below it: wait.
        assert_eq!(parse_head(&text[..1000], 1000), Err(HeadError::TooLarge));
        assert_eq!(parse_head(&text[..999], 1000), Ok(None));
        // More fields than are taken, in a head that has not ended: it may still be too large.
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..150 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        assert_eq!(parse_head(&many, READ_BUFFER_LIMIT), Ok(None));
        assert_eq!(parse_head(&many, many.len()), Err(HeadError::TooLarge));
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_head(&many, READ_BUFFER_LIMIT),
            Err(HeadError::Malformed(
                "more than 100 header fields".to_owned()
            ))
        );
        // A flood of interim answers counts against the limit too.
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(100);
        assert_eq!(parse_head(&interim, 1000), Err(HeadError::TooLarge));
    }

    /// Feeds `pieces` to a decoder one after the other, as reads would bring them: what is not
    /// used is kept in front of the next piece. Returns the body, how far it got and how many
    /// bytes it did not use.
    fn decode(
        framing: Framing,
        limit: usize,
        pieces: &[&[u8]],
    ) -> (Vec<u8>, Result<Progress, BodyError>, usize, BodyEnd) {
        let mut decoder = BodyDecoder::new(framing, limit);
        let mut body = Vec::new();
        let mut pending = Vec::new();
        let mut pieces = pieces.iter();
        loop {
            match decoder.feed(&pending, &mut body) {
                Ok((used, Progress::More)) => {
                    pending.drain(..used);
                    match pieces.next() {
                        Some(piece) => pending.extend_from_slice(piece),
                        None => {
                            let end = decoder.at_close();
                            return (body, Ok(Progress::More), pending.len(), end);
                        }
                    }
                }
                Ok((used, progress)) => {
                    let end = match progress {
                        Progress::Capped => BodyEnd::Capped,
                        _ => BodyEnd::Complete,
                    };
                    return (body, Ok(progress), pending.len() - used, end);
                }
                Err(error) => return (body, Err(error), pending.len(), BodyEnd::Cut),
            }
        }
    }

    /// `text` cut into one-byte pieces.
    fn bytewise(text: &[u8]) -> Vec<&[u8]> {
        text.chunks(1).collect()
    }

    #[test]
    fn bodies_by_length_and_until_close() {
        use Progress::{Capped, Complete, More};
        // Each row: framing, limit, pieces; then body, progress, unused bytes, end at close.
        #[allow(clippy::type_complexity)]
        let rows: &[(Framing, usize, &[&[u8]], &str, Progress, usize, BodyEnd)] = &[
            (
                Framing::Empty,
                64,
                &[b"extra"],
                "",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            (
                Framing::Length(0),
                64,
                &[],
                "",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            (
                Framing::Length(5),
                64,
                &[b"hel", b"lo"],
                "hello",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            // bytes after the body are not used
            (
                Framing::Length(5),
                64,
                &[b"helloHTTP"],
                "hello",
                Complete,
                4,
                BodyEnd::Complete,
            ),
            // the connection closes early
            (
                Framing::Length(5),
                64,
                &[b"hel"],
                "hel",
                More,
                0,
                BodyEnd::Cut,
            ),
            // longer than the limit: capped as soon as the limit is reached
            (
                Framing::Length(10),
                4,
                &[b"0123"],
                "0123",
                Capped,
                0,
                BodyEnd::Capped,
            ),
            (
                Framing::Length(10),
                4,
                &[b"0123456789"],
                "0123",
                Capped,
                6,
                BodyEnd::Capped,
            ),
            (
                Framing::Length(4),
                4,
                &[b"0123"],
                "0123",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            (
                Framing::UntilClose,
                64,
                &[b"abc", b"def"],
                "abcdef",
                More,
                0,
                BodyEnd::Complete,
            ),
            (
                Framing::UntilClose,
                4,
                &[b"0123"],
                "0123",
                More,
                0,
                BodyEnd::Complete,
            ),
            (
                Framing::UntilClose,
                4,
                &[b"0123", b"4"],
                "0123",
                Capped,
                1,
                BodyEnd::Capped,
            ),
        ];
        for (framing, limit, pieces, body, progress, unused, end) in rows {
            let got = decode(*framing, *limit, pieces);
            assert_eq!(
                got,
                (body.as_bytes().to_vec(), Ok(*progress), *unused, *end),
                "{framing:?} {pieces:?}"
            );
        }
    }

    #[test]
    fn chunked_bodies() {
        use Progress::{Capped, Complete, More};
        let full: &[u8] = b"5;name=value;quoted=\"a;b\"\r\nhello\r\n6 ; ext\r\n world\r\n\
            A\r\n0123456789\r\n0;last\r\nExpires: never\r\nX-Trailer: y\r\n\r\n";
        // Each row: limit, pieces; then body, progress, unused bytes, end at close.
        #[allow(clippy::type_complexity)]
        let rows: Vec<(usize, Vec<&[u8]>, &str, Progress, usize, BodyEnd)> = vec![
            (
                64,
                vec![full],
                "hello world0123456789",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            (
                64,
                bytewise(full),
                "hello world0123456789",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            // no trailers, and what comes after is not used
            (
                64,
                vec![b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1"],
                "abc",
                Complete,
                8,
                BodyEnd::Complete,
            ),
            // cut short: in a size line, in data, before the last chunk, in the trailers
            (64, vec![b"5\r\nhello\r\n1"], "hello", More, 1, BodyEnd::Cut),
            (64, vec![b"5\r\nhel"], "hel", More, 0, BodyEnd::Cut),
            (64, vec![b"5\r\nhello\r\n"], "hello", More, 0, BodyEnd::Cut),
            (64, vec![b"0\r\nExpires: ne"], "", More, 11, BodyEnd::Cut),
            // exactly the limit, then the last chunk: complete
            (
                4,
                vec![b"4\r\n0123\r\n0\r\n\r\n"],
                "0123",
                Complete,
                0,
                BodyEnd::Complete,
            ),
            // more data after the limit: capped
            (
                4,
                vec![b"4\r\n0123\r\n1\r\nx\r\n0\r\n\r\n"],
                "0123",
                Capped,
                8,
                BodyEnd::Capped,
            ),
            (
                4,
                vec![b"8\r\n01234567"],
                "0123",
                Capped,
                4,
                BodyEnd::Capped,
            ),
        ];
        for (limit, pieces, body, progress, unused, end) in rows {
            let got = decode(Framing::Chunked, limit, &pieces);
            assert_eq!(
                got,
                (body.as_bytes().to_vec(), Ok(progress), unused, end),
                "{pieces:?}"
            );
        }
    }

    #[test]
    fn broken_chunks() {
        let rows: &[(&[u8], BodyError)] = &[
            (b"zz\r\nhello\r\n0\r\n\r\n", BodyError::ChunkSize),
            (b"\r\n", BodyError::ChunkSize),
            (b"-5\r\nhello\r\n", BodyError::ChunkSize),
            (b"5 5\r\nhello\r\n", BodyError::ChunkSize),
            (b"10000000000000000\r\n", BodyError::ChunkSize),
            (b"5\r\nhelloXX0\r\n\r\n", BodyError::ChunkEnd),
            (b"5\r\nhello\rX", BodyError::ChunkEnd),
            // chunk lines end in CRLF
            (b"5\nhello\r\n", BodyError::ChunkSize),
            (b"5\r\nhello\n0\r\n\r\n", BodyError::ChunkEnd),
        ];
        for (text, error) in rows {
            let (_, got, _, end) = decode(Framing::Chunked, 64, &[text]);
            assert_eq!((got, end), (Err(*error), BodyEnd::Cut), "{text:?}");
        }
    }

    #[test]
    fn requests_are_written_in_full() {
        let rows: &[(&str, &str)] = &[
            (
                "http://127.0.0.1:8080/health?full=1",
                "GET /health?full=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n",
            ),
            (
                "https://app.lan/api/health",
                "GET /api/health HTTP/1.1\r\nHost: app.lan\r\n",
            ),
            // the scheme's own port is not repeated; the other scheme's is
            (
                "http://App.LAN:80/h",
                "GET /h HTTP/1.1\r\nHost: app.lan\r\n",
            ),
            (
                "https://app.lan:80/h",
                "GET /h HTTP/1.1\r\nHost: app.lan:80\r\n",
            ),
            (
                "http://[::1]:9090/h#frag",
                "GET /h HTTP/1.1\r\nHost: [::1]:9090\r\n",
            ),
            ("http://app.lan", "GET / HTTP/1.1\r\nHost: app.lan\r\n"),
            (
                "http://app.lan/é",
                "GET /%C3%A9 HTTP/1.1\r\nHost: app.lan\r\n",
            ),
        ];
        for (url, start) in rows {
            let request = Request::get(url, "ua/1", "*/*").expect(url);
            assert_eq!(
                String::from_utf8(request.bytes).expect("text"),
                format!("{start}User-Agent: ua/1\r\nAccept: */*\r\n\r\n"),
                "{url}"
            );
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
            Host::<String>::Ipv6(std::net::Ipv6Addr::LOCALHOST)
        );
    }

    fn key(port: u16) -> Key {
        Key {
            https: false,
            host: Host::Domain("app.lan".to_owned()),
            port,
        }
    }

    #[test]
    fn the_pool_hands_out_the_most_recently_used_first() {
        let start = Instant::now();
        let mut pool = Pool::new(start, POOL_IDLE_TIMEOUT, 8);
        assert!(pool.checkin(key(1), 1, start).is_empty());
        assert!(
            pool.checkin(key(1), 2, start + Duration::from_secs(1))
                .is_empty()
        );
        assert!(pool.checkin(key(2), 3, start).is_empty());
        let now = start + Duration::from_secs(2);
        assert_eq!(pool.checkout(&key(1), now), (Some(2), vec![]));
        assert_eq!(pool.checkout(&key(1), now), (Some(1), vec![]));
        assert_eq!(pool.checkout(&key(1), now), (None, vec![]));
        assert_eq!(pool.checkout(&key(3), now), (None, vec![]));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn idle_connections_expire() {
        let start = Instant::now();
        let mut pool = Pool::new(start, POOL_IDLE_TIMEOUT, 8);
        pool.checkin(key(1), 1, start);
        pool.checkin(key(1), 2, start + Duration::from_secs(5));
        // Just before the newest expires, it is handed out; the older one has expired (and a
        // sweep is due, which takes it out).
        let almost = start + Duration::from_secs(5) + POOL_IDLE_TIMEOUT - Duration::from_millis(1);
        assert_eq!(pool.checkout(&key(1), almost), (Some(2), vec![1]));
        assert!(pool.checkin(key(1), 2, almost).is_empty());
        // No sweep is due yet: the expired one is found when its key is asked for.
        let later = almost + POOL_IDLE_TIMEOUT;
        assert_eq!(pool.checkout(&key(1), later), (None, vec![2]));
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn the_sweep_closes_connections_nobody_asks_for_every_30_s_at_most() {
        let start = Instant::now();
        let mut pool = Pool::new(start, Duration::from_secs(20), 8);
        pool.checkin(key(1), 1, start);
        pool.checkin(key(2), 2, start + Duration::from_secs(25));
        // The first sweep is due at 30 s: key 1's connection (30 s idle) goes, key 2's stays.
        let at = |seconds| start + Duration::from_secs(seconds);
        assert_eq!(pool.checkout(&key(9), at(30)), (None, vec![1]));
        assert!(!pool.idle.contains_key(&key(1)));
        // Key 2's has expired at 45 s, but the next sweep is only due at 60 s.
        assert_eq!(pool.checkout(&key(9), at(50)), (None, vec![]));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.checkout(&key(9), at(60)), (None, vec![2]));
        assert_eq!(pool.len(), 0);
        assert!(pool.idle.is_empty());
    }

    #[test]
    fn the_pool_keeps_at_most_so_many_per_host() {
        let start = Instant::now();
        let mut pool = Pool::new(start, POOL_IDLE_TIMEOUT, 2);
        assert!(pool.checkin(key(1), 1, start).is_empty());
        assert!(pool.checkin(key(1), 2, start).is_empty());
        assert_eq!(pool.checkin(key(1), 3, start), vec![3]);
        assert!(pool.checkin(key(2), 4, start).is_empty());
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn out_of_files_the_older_half_is_closed() {
        let start = Instant::now();
        let mut pool = Pool::new(start, POOL_IDLE_TIMEOUT, 8);
        assert!(pool.evict_older_half().is_empty());
        for (i, stream) in (1..=5).enumerate() {
            let used = start + Duration::from_secs(u64::try_from(i).unwrap_or(0));
            // Two hosts, interleaved: the age counts, not the host.
            let _ = pool.checkin(key(if stream % 2 == 0 { 1 } else { 2 }), stream, used);
        }
        let mut evicted = pool.evict_older_half();
        evicted.sort_unstable();
        assert_eq!(evicted, vec![1, 2, 3]);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.evict_older_half(), vec![4]);
        assert_eq!(pool.evict_older_half(), vec![5]);
        assert!(pool.idle.is_empty());
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

    /// Runs `exchange` against an app on the other end of an in-memory pipe that passes
    /// `pipe` bytes at a time: the app reads the request head, then writes `answer` and closes
    /// its end (or keeps it open, with `keep_open`).
    async fn exchange_with(
        answer: &'static [u8],
        pipe: usize,
        keep_open: bool,
    ) -> (Result<Exchanged, Attempt>, Option<u16>) {
        let (mut ours, mut theirs) = tokio::io::duplex(pipe);
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
            request
        });
        let mut status = None;
        let result = exchange(&mut ours, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &mut status).await;
        if !keep_open {
            let request = app.await.expect("app");
            assert_eq!(request, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        (result, status)
    }

    #[tokio::test]
    async fn an_answer_dribbled_a_byte_at_a_time() {
        let answer =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
            Transfer-Encoding: chunked\r\n\r\n2;x=y\r\nOK\r\n0\r\nT: z\r\n\r\n";
        let (result, status) = exchange_with(answer, 1, true).await;
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
        assert!(exchanged.reusable);
    }

    #[tokio::test]
    async fn when_a_connection_is_reused() {
        let rows: &[(&[u8], BodyEnd, bool)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
                BodyEnd::Complete,
                true,
            ),
            // more than was asked for: the connection is not trusted again
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKextra",
                BodyEnd::Complete,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                BodyEnd::Complete,
                false,
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nOK",
                BodyEnd::Complete,
                true,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", BodyEnd::Complete, true),
        ];
        for (answer, end, reusable) in rows {
            let (result, _) = exchange_with(answer, 64 * 1024, true).await;
            let exchanged = result.expect("answer");
            assert_eq!(
                (exchanged.response.end, exchanged.reusable),
                (*end, *reusable),
                "{answer:?}"
            );
        }
        // A body read until the close, or cut short, or capped: never reused.
        let (result, _) = exchange_with(b"HTTP/1.0 200 OK\r\n\r\nall of it", 16, false).await;
        let exchanged = result.expect("answer");
        assert_eq!(exchanged.response.body, b"all of it");
        assert_eq!(
            (exchanged.response.end, exchanged.reusable),
            (BodyEnd::Complete, false)
        );
        let (result, _) = exchange_with(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            16,
            false,
        )
        .await;
        let exchanged = result.expect("answer");
        assert_eq!(
            (exchanged.response.end, exchanged.reusable),
            (BodyEnd::Cut, false)
        );
        let (result, status) = exchange_with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            16,
            true,
        )
        .await;
        let exchanged = result.expect("answer");
        assert_eq!(status, Some(200));
        assert_eq!(
            (exchanged.response.end, exchanged.reusable),
            (BodyEnd::Cut, false)
        );
    }

    #[tokio::test]
    async fn a_big_body_is_read_to_the_limit_only() {
        static ANSWER: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
            let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
            answer.resize(answer.len() + 1_000_000, b'x');
            answer
        });
        let (result, _) = exchange_with(&ANSWER, 64 * 1024, true).await;
        let exchanged = result.expect("answer");
        assert_eq!(exchanged.response.body.len(), BODY_LIMIT);
        assert_eq!(
            (exchanged.response.end, exchanged.reusable),
            (BodyEnd::Capped, false)
        );
    }

    #[tokio::test]
    async fn a_close_before_any_answer_may_be_retried_but_not_after() {
        let (result, status) = exchange_with(b"", 64, false).await;
        assert!(
            matches!(result, Err(Attempt::BeforeAnswer(Error::Closed))),
            "{result:?}"
        );
        assert_eq!(status, None);
        let (result, status) = exchange_with(b"HTTP/1.1 200", 64, false).await;
        assert!(
            matches!(result, Err(Attempt::Answered(Error::Closed))),
            "{result:?}"
        );
        assert_eq!(status, None);
        let (result, _) =
            exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 64, false).await;
        assert!(
            matches!(&result, Err(Attempt::Answered(Error::Malformed(what))) if what == "invalid Content-Length \"x\""),
            "{result:?}"
        );
    }

    /// A TLS app on 127.0.0.1:0 with the certificate of `tests/data`, answering every request
    /// on a connection with `answer`; counts connections.
    async fn tls_app(answer: &'static [u8]) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
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
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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

    /// A client that trusts the test CA of `tests/data` (and nothing else).
    fn client_trusting_the_test_ca() -> Client {
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
        Client::new(Arc::new(config))
    }

    #[tokio::test]
    async fn https_answers_are_read_and_the_connection_reused() {
        let (addr, connections) = tls_app(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\nOK\r\n0\r\n\r\n",
        )
        .await;
        let client = client_trusting_the_test_ca();
        for _ in 0..3 {
            let request =
                Request::get(&format!("https://{addr}/health"), "ua", "*/*").expect("request");
            let mut status = None;
            let response = client.get(request, &mut status).await.expect("response");
            assert_eq!(
                (status, response.body.as_slice(), response.end),
                (Some(200), b"OK".as_slice(), BodyEnd::Complete)
            );
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_idle_plain_connection_is_looked_at_before_it_is_used() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        for unasked in [Some(b"x".as_slice()), None] {
            let ours = Stream::Plain(TcpStream::connect(addr).await.expect("connect"));
            let (mut theirs, _) = listener.accept().await.expect("accept");
            assert!(ours.looks_open());
            // The app sends something it was not asked for, or closes the connection.
            match unasked {
                Some(bytes) => theirs.write_all(bytes).await.expect("write"),
                None => drop(theirs),
            }
            if let Stream::Plain(tcp) = &ours {
                tcp.readable().await.expect("readable");
            }
            assert!(!ours.looks_open(), "{unasked:?}");
        }
    }
}
