//! The check: one `GET {url}{path}` against a monitored app (or, by the URL's scheme, a TCP
//! connection, a TLS handshake or an ICMP echo), turned into a [`CheckRecord`].
//!
//! A failed check is data, not an error: whatever the app does (refuse, hang, answer 503, send
//! 10 MB, redirect), the probe returns a record with an [`Outcome`], a [`Reason`], the HTTP status
//! and the latency.
//!
//! # Kinds
//!
//! | url | a check | pass | warn | fail |
//! |---|---|---|---|---|
//! | `http://`, `https://` | `GET {url}{path}` | the status is in `expect_status` (default 200), and the body says nothing worse | body `warn`; certificate expiring (`cert_expiring`) | as below |
//! | `tcp://host:port` (private module `tcp`) | a TCP connection | connected | | `connect` (refused, reset, unreachable), `timeout`, `dns` |
//! | `tls://host:port` (private module `tls`) | a TCP connection and a TLS handshake (SNI the host name, none for an address; no ALPN) | handshake done | certificate expiring (`cert_expiring`) | `tls` (handshake failed, untrusted or expired certificate), `connect`, `timeout`, `dns` |
//! | `icmp://host` (private module `icmp`) | one ICMP echo | a reply within the timeout | | `no_reply`, `unreachable`, `dns` |
//!
//! For https and tls every check records the leaf certificate's `notAfter` and the days left
//! (also on a reused connection: the expiry is kept with the pooled connection). Fewer days left
//! than the monitor's `cert_warn_days` (default 14, 0 off) make a passing check a warn,
//! `cert_expiring`, its detail naming the host, the days and the date; an expired certificate is
//! a fail (`tls`). `tls_verify: false` accepts any certificate (a self-signed router or NAS);
//! its expiry is still watched (the private module `cert`).
//!
//! The check is split the way pingora splits its health checks:
//!
//! * [`Prober::check`] does the I/O: it sends the request, reads at most [`BODY_LIMIT`] bytes of the
//!   body, all within the monitor's timeout, and turns transport failures into reasons.
//! * [`classify`] is a pure function from what arrived (status, content type, body) to the verdict.
//!   The rules below live there and are tested as a table.
//!
//! # Classification
//!
//! | answer | outcome | reason |
//! |---|---|---|
//! | 200, no body or a body that is not JSON | pass | `ok` |
//! | 200, JSON without a string `status` (e.g. `{"uptime": 5}` or `{"status": 200}`) | pass | `ok` |
//! | 200, `status` is `pass`, `ok`, `up`, `healthy`, `green` | pass | `ok` |
//! | 200, `status` is `warn`, `warning`, `degraded`, `yellow` | warn | `body_warn` |
//! | 200, `status` is `fail`, `failed`, `failure`, `error`, `down`, `unhealthy`, `out_of_service`, `critical`, `red` | fail | `body_fail` |
//! | 200, any other `status` string (e.g. Spring's `UNKNOWN`) | warn | `body_warn` |
//! | 200, `application/health+json` that is not a JSON object with a string `status` | fail | `body_invalid` |
//! | 200, `application/health+json` larger than [`BODY_LIMIT`] (it cannot be checked) | fail | `body_invalid` |
//! | 200, any other body larger than [`BODY_LIMIT`]: read up to the limit, then stop | pass | `ok` |
//! | 200, the connection closed before the announced end of the body | fail | `body_truncated` |
//! | any other status, redirects included (never followed) | fail | `status_code` |
//! | (no request: the host's addresses are all outside `allowed_targets`) | fail | `not_allowed` |
//!
//! What the log keeps of the body: the body itself only when it is a health answer
//! (`application/health+json`, or a JSON object with a `status` member) read to its end, so at
//! most [`BODY_LIMIT`]; any other body only as a [`BodyDigest`] (its size and a short keyed
//! hash). See the private module `body` for why.
//!
//! "200" is the default of `expect_status`: a monitor that expects, say, `200-299` or
//! `[200, 401]` has its answers with those codes read as the 200 rows above ([`classify_with`]),
//! so a health+json body that says `warn` or `fail` still decides.
//!
//! `status` values are compared without regard to case, and `-`, `_` and spaces are ignored, so
//! Spring's `OUT_OF_SERVICE` and `out-of-service` are the same word. The body is parsed as JSON
//! whatever its content type when it starts with `{` or `[` (many apps send JSON as `text/plain`);
//! only `application/health+json` (and `application/vnd.health+json`) is held to the format.
//!
//! An unrecognised `status` is a warn, not a pass: the app answered, so calling it down would be
//! a false alarm, but it said something other than "fine", and a human should look. It is not a
//! fail either: DESIGN.md lists what fails, and a word we do not know is not on that list.
//!
//! Transport failures: the timeout covers the whole exchange (name lookup, connect, TLS, headers,
//! body) and gives `timeout`, or `dns` when it ran out during the name lookup; a refused or reset
//! connection `connect`; a name that does not resolve `dns`; a failed TLS handshake or
//! certificate `tls`; anything else (a malformed or oversized response head, say) `other`.
//!
//! # The client
//!
//! hyper speaks the protocol, through its low-level connection API, once per check (the private
//! module `http`); the connections, their pool and how they are made are ours, because what a
//! general client keeps per idle connection is what limits how many apps one server can watch
//! (hyper-util's pooled client kept a task and two 8 KiB buffers per idle connection: 16.8 KB
//! against 0.5 KB).
//!
//! * Per check: an idle socket from the pool (or a new connection),
//!   `hyper::client::conn::http1::handshake` on it, the `GET`, at most [`BODY_LIMIT`] bytes of
//!   the body, then `Connection::without_shutdown` hands the socket back. hyper's connection is
//!   driven in the check's own task, so nothing of it (task, channel, buffers) outlives the
//!   check.
//! * hyper reads the answer as RFC 9112 says: a head of at most 64 KiB and 100 fields; interim
//!   1xx answers skipped; obsolete line folding unfolded (§5.2, as a user agent must); a bare LF
//!   taken as the end of a head line (§2.2) but not of a chunk line (§7.1); no body for 204 and
//!   304; chunked when it is the last transfer coding, else `Content-Length`, else until the
//!   close. Transfer-Encoding in an HTTP/1.0 answer is faulty framing (§6.1): the answer is
//!   refused (`other`). A body whose framing breaks is taken as cut short.
//! * Connections are kept alive and pooled per scheme, host and port for [`POOL_IDLE_TIMEOUT`],
//!   longer than the longest interval, so a monitor's checks run on one connection. A connection
//!   goes back to the pool only when hyper found it reusable (HTTP/1.1 without
//!   `Connection: close`, or 1.0 with `keep-alive`, and a body framed by its length or chunks,
//!   read to its end), nothing came after the answer, and the answer did not carry both
//!   `Content-Length` and `Transfer-Encoding` (a possible response-splitting attempt: hyper reads
//!   it by its chunks, as it should, but would use the connection again). An app that says
//!   `Keep-Alive: timeout=N` (Node's default is 5 s) gets its connection used for N - 1 s at
//!   most, so that the probe does not write to a connection the app has closed; with N of 1 s or
//!   less it is not kept.
//! * An idle connection is only its socket, when it was last used and until when it may be used:
//!   no buffer, no task, no waker (the check's waker that hyper leaves registered for the socket
//!   is replaced by a no-op one, or the idle socket would keep the finished check task's memory
//!   alive). Expired connections are closed when their host is next checked, or by a sweep of
//!   the whole pool that a check does at most every 30 s.
//! * An idle connection is looked at before it is used, without waiting: a one-byte
//!   non-blocking read for plain TCP; for https a read through the TLS layer, which takes in the
//!   session tickets a TLS 1.3 server sends after the handshake and sees the app's
//!   `close_notify` or a closed socket. A kept-alive connection that fails before any byte of
//!   the answer (the app closed it just as the request went out) is asked again once, on a new
//!   connection; a new connection that fails is reported.
//! * A new connection: the name is looked up without holding a thread (hickory-resolver, with a
//!   cache that keeps each answer for its TTL; `.local` names by the system resolver on threads
//!   of their own; see the private module `resolve`), then the addresses are raced the Happy
//!   Eyeballs way (RFC 8305: IPv6 and IPv4 interleaved, a new attempt every 250 ms or as soon as
//!   one fails, the first connection wins; the private module `connect`).
//! * Each app may hold a connection, so the server may run out of open files (the binary
//!   raises its soft limit to the hard one at start, and warns when that is short of
//!   `max_monitors`). Then a new connection first closes the older half of the idle ones, with a
//!   warning, and the check goes on: the server's want of files is never the app's failure.
//! * https: rustls, checked against the system's trust store (or the Mozilla roots when the
//!   system has none), ALPN `http/1.1`. No proxy is ever used; redirects are not followed.
//! * With `allowed_targets` set, a new connection is made only to the addresses of the host that
//!   are inside it (or to any, for a listed name): what is checked is the address the probe
//!   connects to, after each lookup, so a name whose DNS answer moved outside (DNS rebinding)
//!   fails with `not_allowed` instead of reaching it. [`Targets`] checks a registration the same
//!   way (see the private module `targets`).
//!
//! Measured on the 2-core development machine (release build, loopback targets), the clients'
//! test binaries run in turn, with other work running beside them (the hyper-util figures are
//! from an earlier day, when the hand-written client measured 8.0-10.0 µs):
//!
//! | | hyper-util's pooled client | the hand-written client (until 2026-12) | hyper per check (this one) |
//! |---|---|---|---|
//! | memory per idle kept-alive connection (ignored test `memory_per_idle_connection`, 2,000 targets) | 16.8 KB | 523 B | 539 B |
//! | CPU per check, classification included (ignored test `cpu_per_check`), 16 at a time | 11.7–14.7 µs | 5.8–6.5 µs | 9.0–9.8 µs |
//! | the same, 1 at a time (moves with the machine's load: the wake-ups dominate) | 14–41 µs | 6.8–7.5 µs | 9.8–10.2 µs |
//!
//! In the same runs a bare reqwest GET cost 11.0–11.8 µs 16 at a time. hyper's 3.5 µs more per
//! check (its request channel, the body channel, header maps, a read buffer per check) are
//! about 6 % of the server's CPU per check in the 10,000-monitor benchmark, which still meets its
//! targets (healthchecker-bench/README.md). The memory figure is the process's; the kernel's
//! socket buffers come on top, as they do with any client.

mod body;
mod cert;
mod connect;
mod http;
pub mod icmp;
mod pool;
mod resolve;
mod targets;
mod tcp;
mod tls;

pub use body::{BodyDigest, DigestHash, DigestHashError, DigestKey, JsonBody};
pub(crate) use cert::AnyCertificate;
pub use cert::{days_left, expiry};
pub use resolve::{DNS_LOOKUPS, SYSTEM_LOOKUPS};
pub use targets::{ADMIT_LOOKUP_TIMEOUT, Targets};

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rustls_platform_verifier::BuilderVerifierExt as _;
use serde::{Deserialize, Serialize};

use crate::config::targets::AllowedTargets;
use crate::health::Outcome;
use crate::registry::{ExpectStatus, FieldError, Kind, MonitorSpec};
use body::Status;

/// Most bytes of a body that are read; the rest is never read, let alone buffered.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Most bytes of the read buffer of one check: the response head must fit in it (interim 1xx
/// heads included), and the body is read through it. A monitored app gets no more.
const READ_BUFFER_LIMIT: usize = 64 * 1024;

/// How long an idle kept-alive connection stays in the pool: longer than the longest interval
/// (300 s), so that every monitor's next check finds its connection.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(330);

/// Most idle connections kept per host. Higher than the number of checks of one host that can be
/// in flight at once, so a burst never closes connections that the next round would reopen; the
/// pool only ever holds as many connections as were in use together.
const POOL_MAX_IDLE_PER_HOST: usize = 1024;

/// `healthchecker/<version>`, the same version as [`crate::VERSION`].
const USER_AGENT_VALUE: &str = concat!("healthchecker/", env!("CARGO_PKG_VERSION"));

/// What the probe accepts, health+json first.
const ACCEPT_VALUE: &str = "application/health+json, application/json;q=0.9, */*;q=0.1";

/// Longest `detail`, in characters.
const DETAIL_MAX: usize = 200;

/// Runs checks: one HTTP client with a connection pool, shared by every monitor.
///
/// Cheap to clone (the clones share the pool); build it once, at start.
#[derive(Clone, Debug)]
pub struct Prober {
    client: Arc<http::Client>,
    /// The key of the digests of bodies that are not kept.
    digest_key: DigestKey,
    /// `allowed_targets`, with the resolver the checks use, for checking registrations.
    targets: Targets,
    /// The ICMP sockets, made at the first `icmp://` check of each family.
    pinger: Arc<icmp::Pinger>,
}

/// How a [`Prober`] is built ([`Prober::with_options`]); the default is [`Prober::new`]'s.
#[derive(Debug, Clone, Default)]
pub struct ProberOptions {
    /// Look names up only with the DNS servers at these addresses (UDP, and TCP for long
    /// answers), not `/etc/resolv.conf` nor `/etc/hosts`: for tests, which run their own DNS
    /// server on loopback. `None`: the system's settings.
    pub name_servers: Option<Vec<SocketAddr>>,
    /// Check certificates against these roots only, not the system's trust store: for tests,
    /// which make their own certificate authority. `None`: the system's trust store (or the
    /// Mozilla roots when it has none).
    pub roots: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
    /// Connect only to targets inside this list (`allowed_targets`); `None`: anywhere.
    pub allowed_targets: Option<AllowedTargets>,
    /// The key of the digests of bodies that are not kept (the store's, so hashes stay the
    /// same across restarts); `None`: a random one.
    pub digest_key: Option<DigestKey>,
}

/// The probe's HTTP client could not be built (no TLS configuration could be made).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for the probe: {0}")]
pub struct ProberError(#[source] rustls::Error);

impl Prober {
    /// Builds the prober: `User-Agent: healthchecker/<version>`, kept-alive connections pooled per
    /// host for [`POOL_IDLE_TIMEOUT`], no proxy, no redirects, http and https (rustls, checked
    /// against the system's trust store, or the Mozilla roots when the system has none), names
    /// looked up with the system's DNS settings (`/etc/resolv.conf`, `/etc/hosts`).
    ///
    /// # Errors
    ///
    /// [`ProberError`] when no TLS configuration can be made at all (the crypto provider refuses
    /// every protocol version); this does not happen with the provider built in.
    pub fn new() -> Result<Prober, ProberError> {
        Prober::with_options(ProberOptions::default())
    }

    /// Like [`Prober::new`], but names are looked up only with the DNS servers at `servers`
    /// (UDP, and TCP for long answers), not `/etc/resolv.conf` nor `/etc/hosts`: for tests,
    /// which run their own DNS server on loopback.
    ///
    /// # Errors
    ///
    /// As [`Prober::new`].
    pub fn with_name_servers(servers: &[SocketAddr]) -> Result<Prober, ProberError> {
        Prober::with_options(ProberOptions {
            name_servers: Some(servers.to_vec()),
            ..ProberOptions::default()
        })
    }

    /// A prober built as `options` say: which DNS servers, which trust, `allowed_targets`, the
    /// digest key.
    ///
    /// # Errors
    ///
    /// As [`Prober::new`], and when a root of `options.roots` is not a usable CA certificate.
    pub fn with_options(options: ProberOptions) -> Result<Prober, ProberError> {
        let resolver = Arc::new(match &options.name_servers {
            Some(servers) => resolve::Resolver::with_name_servers(servers),
            None => resolve::Resolver::system(),
        });
        let verifying = match &options.roots {
            Some(roots) => {
                let mut store = rustls::RootCertStore::empty();
                for root in roots {
                    store.add(root.clone()).map_err(ProberError)?;
                }
                Self::tls_builder()
                    .map_err(ProberError)?
                    .with_root_certificates(store)
            }
            None => {
                match Self::tls_builder().and_then(|builder| builder.with_platform_verifier()) {
                    Ok(verifying) => verifying,
                    Err(error) => {
                        tracing::warn!(%error, "no system trust store for the probe; using the Mozilla roots");
                        let mut roots = rustls::RootCertStore::empty();
                        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                        Self::tls_builder()
                            .map_err(ProberError)?
                            .with_root_certificates(roots)
                    }
                }
            }
        };
        let mut tls = verifying.with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let allowed = options.allowed_targets.map(Arc::new);
        let targets = Targets::new(allowed.clone(), Arc::clone(&resolver));
        let connector = connect::Connector::new(resolver, Arc::new(tls), allowed);
        Ok(Prober {
            client: Arc::new(http::Client::new(connector)),
            digest_key: options.digest_key.unwrap_or_else(DigestKey::random),
            targets,
            pinger: Arc::new(icmp::Pinger::default()),
        })
    }

    /// What a registration is checked against: `allowed_targets`, with the resolver the checks
    /// use (cheap to clone).
    pub fn targets(&self) -> Targets {
        self.targets.clone()
    }

    /// Like [`Prober::new`], but certificates are checked against `roots` only, not the
    /// system's trust store: for tests, which make their own certificate authority.
    ///
    /// # Errors
    ///
    /// As [`Prober::new`], and when a root is not a usable CA certificate.
    pub fn with_roots(
        roots: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<Prober, ProberError> {
        Prober::with_options(ProberOptions {
            roots: Some(roots.to_vec()),
            ..ProberOptions::default()
        })
    }

    /// A client configuration builder with the built-in crypto provider and safe versions.
    fn tls_builder()
    -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, rustls::Error>
    {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    }

    /// Whether this server can check `spec` at all: an `icmp://` monitor needs an ICMP socket
    /// (see [`icmp::availability`]); every other kind can always be checked.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] for `url` saying why not and what to change.
    pub fn admit(&self, spec: &MonitorSpec) -> Result<(), FieldError> {
        if spec.kind() != Kind::Icmp {
            return Ok(());
        }
        let v6 = matches!(spec.host(), Some(url::Host::Ipv6(_)));
        icmp::availability(v6).map(drop).map_err(|why| FieldError {
            field: "url".to_owned(),
            value: format!("{:?}", spec.url.as_str()),
            expected: why.0,
        })
    }

    /// Checks `spec` once, all of it within `spec.timeout`: `GET spec.check_url()` for http and
    /// https, a connection for tcp, a connection and a handshake for tls, an echo for icmp.
    ///
    /// Never fails and never panics: every failure of the app is a [`CheckRecord`] with
    /// outcome `fail` and a [`Reason`]. The record's time is when the check started.
    pub async fn check(&self, spec: &MonitorSpec) -> CheckRecord {
        let time = Utc::now();
        let started = Instant::now();
        let kind = spec.kind();
        let mut progress = http::Progress::default();
        let result =
            tokio::time::timeout(spec.timeout, self.attempt(spec, kind, &mut progress)).await;
        let latency = started.elapsed();
        let mut verdict = match result {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(failure)) => failure.into_verdict(),
            Err(_elapsed) => timeout_failure(kind, &progress, spec.timeout).into_verdict(),
        };
        let cert_not_after = progress.cert_not_after.filter(|_| kind.has_certificate());
        if let Some(not_after) = cert_not_after {
            let host = spec.host().map(|host| host.to_string()).unwrap_or_default();
            watch_expiry(&mut verdict, not_after, time, spec.cert_warn_days, &host);
        }
        CheckRecord {
            time,
            outcome: verdict.outcome,
            reason: verdict.reason,
            http_status: progress.status,
            latency,
            body: verdict.body,
            body_digest: verdict.digest.map(Box::new),
            detail: verdict.detail,
            cert_not_after,
            cert_days_left: cert_not_after.map(|not_after| cert::days_left(not_after, time)),
        }
    }

    /// The check of `kind`, without its timeout.
    async fn attempt(
        &self,
        spec: &MonitorSpec,
        kind: Kind,
        progress: &mut http::Progress,
    ) -> Result<Verdict, Failure> {
        let invalid = || Failure::new(Reason::Other, "invalid URL".to_owned());
        if kind.is_http() {
            let request = http::Request::get(&spec.check_url(), USER_AGENT_VALUE, ACCEPT_VALUE)
                .map_err(|http::InvalidUrl| invalid())?
                .verified(spec.tls_verify);
            return self.exchange(&request, progress, &spec.expect_status).await;
        }
        let host = spec.host().ok_or_else(invalid)?;
        match kind {
            Kind::Tcp => {
                let port = spec.url.port().ok_or_else(invalid)?;
                tcp::check(&self.client, &host, port, progress).await
            }
            Kind::Tls => {
                let port = spec.url.port().ok_or_else(invalid)?;
                tls::check(&self.client, &host, port, spec.tls_verify, progress).await
            }
            Kind::Icmp => self.pinger.check(&self.client, &host, progress).await,
            // Push monitors are pinged, never checked (the scheduler arms their deadlines).
            Kind::Http | Kind::Https | Kind::Push => Err(invalid()),
        }
    }

    /// Sends the request and reads the answer; notes in `progress` how far it got (the status
    /// as soon as the head arrives), so a timeout during the body still reports it.
    async fn exchange(
        &self,
        request: &http::Request,
        progress: &mut http::Progress,
        expect: &ExpectStatus,
    ) -> Result<Verdict, Failure> {
        let response = self
            .client
            .get(request, progress)
            .await
            .map_err(|error| transport_failure(&error))?;
        Ok(classify_with(
            &Answer {
                status: response.status,
                content_type: response.content_type.as_deref(),
                location: response.location.as_deref(),
                body: &response.body,
                end: response.end,
            },
            expect,
            &self.digest_key,
        ))
    }
}

/// What the certificate's expiry does to a verdict: an expiring certificate makes a pass a
/// warn, an expired one makes a pass or warn a fail; a failed handshake that rustls refused for
/// the expiry gets the plain detail. Nothing when `warn_days` is 0 (see [`cert::expiry`]).
fn watch_expiry(
    verdict: &mut Verdict,
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
    warn_days: u32,
    host: &str,
) {
    let expired = not_after <= now;
    // rustls refused it (tls_verify on): say so in plain words, whatever `cert_warn_days` is.
    if expired && verdict.outcome == Outcome::Fail && verdict.reason == Reason::Tls {
        if let Some((_, _, detail)) = cert::expiry(not_after, now, warn_days.max(1), host) {
            verdict.detail = Some(one_line(&detail, DETAIL_MAX));
        }
        return;
    }
    let Some((outcome, reason, detail)) = cert::expiry(not_after, now, warn_days, host) else {
        return;
    };
    let worse = match outcome {
        Outcome::Fail => verdict.outcome != Outcome::Fail,
        _ => verdict.outcome == Outcome::Pass,
    };
    if worse {
        verdict.outcome = outcome;
        verdict.reason = reason;
        verdict.detail = Some(one_line(&detail, DETAIL_MAX));
    }
}

/// What a check cut short by its timeout says, by how far it got: a name lookup that did not
/// finish is the DNS's failure, anything later the app's (an echo without a reply: `no_reply`).
fn timeout_failure(kind: Kind, progress: &http::Progress, timeout: Duration) -> Failure {
    let within = seconds_text(timeout);
    if let Some(host) = &progress.resolving {
        return Failure::new(
            Reason::Dns,
            format!("no answer from DNS for host name {host} within {within}"),
        );
    }
    if let Some(ip) = progress.pinged {
        return icmp::no_reply(ip, Some(&within));
    }
    if progress.handshaking {
        return Failure::new(
            Reason::Timeout,
            format!("TLS handshake not complete within {within}"),
        );
    }
    match (kind, progress.status) {
        (Kind::Tcp | Kind::Tls, _) => {
            Failure::new(Reason::Timeout, format!("no connection within {within}"))
        }
        (_, None) => Failure::new(Reason::Timeout, format!("no answer within {within}")),
        (_, Some(_)) => Failure::new(
            Reason::Timeout,
            format!("body not complete within {within}"),
        ),
    }
}

/// A transport failure: the reason and a one-line detail.
#[derive(Debug)]
struct Failure {
    reason: Reason,
    detail: String,
}

impl Failure {
    fn new(reason: Reason, detail: String) -> Failure {
        Failure { reason, detail }
    }

    fn into_verdict(self) -> Verdict {
        Verdict {
            outcome: Outcome::Fail,
            reason: self.reason,
            body: None,
            digest: None,
            detail: Some(one_line(&self.detail, DETAIL_MAX)),
        }
    }
}

/// Turns a failure of the client (before any answer) into a reason and a detail.
fn transport_failure(error: &http::Error) -> Failure {
    let (io, handshake) = match error {
        http::Error::Dns(host, why) => {
            return Failure::new(
                Reason::Dns,
                format!("cannot resolve host name {host}: {why}"),
            );
        }
        http::Error::NotAllowed { name, ip } => {
            return Failure::new(
                Reason::NotAllowed,
                match name {
                    Some(name) => format!("{name} resolves to {ip}, outside allowed_targets"),
                    None => format!("{ip} is outside allowed_targets"),
                },
            );
        }
        http::Error::Closed => {
            return Failure::new(
                Reason::Connect,
                "connection closed before an answer".to_owned(),
            );
        }
        http::Error::HeadTooLarge => {
            return Failure::new(
                Reason::Other,
                format!("response head larger than {} KiB", READ_BUFFER_LIMIT / 1024),
            );
        }
        http::Error::Malformed(what) => {
            return Failure::new(Reason::Other, format!("malformed HTTP response: {what}"));
        }
        http::Error::Connect(io) if connect::out_of_files(io) => {
            return Failure::new(
                Reason::Other,
                "the server is out of open files (raise its open-file limit)".to_owned(),
            );
        }
        http::Error::Connect(io) | http::Error::Io(io) => (io, false),
        http::Error::Tls(io) => (io, true),
    };
    // tokio-rustls hands rustls' own error over inside an `io::Error`.
    if let Some(tls) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Failure::new(Reason::Tls, format!("TLS: {tls}"));
    }
    if let Some(failure) = io_failure(io.kind()) {
        return failure;
    }
    // What else goes wrong in a handshake: the app closed the connection in the middle, say.
    if handshake {
        return Failure::new(Reason::Tls, format!("TLS handshake failed: {io}"));
    }
    Failure::new(Reason::Other, io.to_string())
}

/// The reason and detail of the I/O errors that say what happened to the connection.
fn io_failure(kind: std::io::ErrorKind) -> Option<Failure> {
    use std::io::ErrorKind;

    let (reason, detail) = match kind {
        ErrorKind::ConnectionRefused => (Reason::Connect, "connection refused"),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            (Reason::Connect, "connection reset")
        }
        ErrorKind::HostUnreachable => (Reason::Connect, "host unreachable"),
        ErrorKind::NetworkUnreachable => (Reason::Connect, "network unreachable"),
        ErrorKind::TimedOut => (Reason::Timeout, "connection timed out"),
        _ => return None,
    };
    Some(Failure::new(reason, detail.to_owned()))
}

/// How the reading of a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The body was read to its end.
    Complete,
    /// The body was longer than [`BODY_LIMIT`]; the rest was not read.
    Capped,
    /// The connection closed (or broke) before the body's announced end.
    Cut,
}

/// What arrived from the app, as [`classify`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Location` header, if any (reported for redirects, never followed).
    pub location: Option<&'a str>,
    /// The body, at most [`BODY_LIMIT`] bytes of it.
    pub body: &'a [u8],
    /// Whether the body was read to its end.
    pub end: BodyEnd,
}

/// What [`classify`] makes of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Pass, warn or fail.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// The body, when it is a health answer (`application/health+json`, or a JSON object with
    /// a `status` member) read to its end.
    pub body: Option<JsonBody>,
    /// Any other body that has bytes: its size and hash only.
    pub digest: Option<BodyDigest>,
    /// A one-line explanation for anything but a plain pass.
    pub detail: Option<String>,
}

impl Verdict {
    /// A plain pass: `ok`, nothing more to say.
    fn pass() -> Verdict {
        Verdict {
            outcome: Outcome::Pass,
            reason: Reason::Ok,
            body: None,
            digest: None,
            detail: None,
        }
    }
}

/// How a health `status` word reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Pass,
    Warn,
    Fail,
    Unknown,
}

/// Reads a `status` value: case, `-`, `_` and spaces do not matter.
fn status_word(status: &str) -> Word {
    let word: String = status
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    match word.as_str() {
        "pass" | "ok" | "up" | "healthy" | "green" => Word::Pass,
        "warn" | "warning" | "degraded" | "yellow" => Word::Warn,
        "fail" | "failed" | "failure" | "error" | "down" | "unhealthy" | "outofservice"
        | "critical" | "red" => Word::Fail,
        _ => Word::Unknown,
    }
}

/// Whether a `Content-Type` says `application/health+json` (or the older vnd. form).
fn is_health_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/health+json")
            || essence.eq_ignore_ascii_case("application/vnd.health+json")
    })
}

/// Decides what an answer means with the default `expect_status` (200 alone); see
/// [`classify_with`].
pub fn classify(answer: &Answer<'_>, key: &DigestKey) -> Verdict {
    classify_with(answer, &ExpectStatus::default(), key)
}

/// Decides what an answer means when the status codes of `expect` pass; the rules are in the
/// [module documentation](self).
///
/// Pure: no I/O, no clock. The body is kept (for the log) only when it is a health answer
/// (`application/health+json`, or a JSON object with a `status` member) that was read to its
/// end, so it is never larger than [`BODY_LIMIT`]; any other body is only digested, with `key`.
pub fn classify_with(answer: &Answer<'_>, expect: &ExpectStatus, key: &DigestKey) -> Verdict {
    let health_json = is_health_json(answer.content_type);
    let (parsed, status, has_status) = match answer.end {
        BodyEnd::Complete => match body::parse(answer.body) {
            Some(parsed) => (Some(parsed.body), Some(parsed.status), parsed.has_status),
            None => (None, None, false),
        },
        BodyEnd::Capped | BodyEnd::Cut => (None, None, false),
    };
    // The server is not a proxy into the LAN: only a health answer is kept as it is.
    let body = parsed.filter(|_| health_json || has_status);
    let digest =
        (body.is_none() && !answer.body.is_empty()).then(|| BodyDigest::of(answer.body, key));
    let verdict = |outcome, reason, detail: Option<String>| Verdict {
        outcome,
        reason,
        body: body.clone(),
        digest,
        detail: detail.map(|text| one_line(&text, DETAIL_MAX)),
    };
    if !expect.accepts(answer.status) {
        let mut detail = status_text(answer.status);
        if let Some(location) = answer.location
            && (300..400).contains(&answer.status)
        {
            detail = format!("{detail}, redirect to {location}");
        }
        if !expect.is_default() {
            detail = format!("{detail} (expected {expect})");
        }
        return verdict(Outcome::Fail, Reason::StatusCode, Some(detail));
    }
    match answer.end {
        BodyEnd::Complete => {}
        BodyEnd::Cut => {
            return verdict(
                Outcome::Fail,
                Reason::BodyTruncated,
                Some("connection closed before the end of the body".to_owned()),
            );
        }
        BodyEnd::Capped if health_json => {
            return verdict(
                Outcome::Fail,
                Reason::BodyInvalid,
                Some(format!(
                    "health+json body larger than {} KiB",
                    BODY_LIMIT / 1024
                )),
            );
        }
        // A big body that is not health+json: it answered 200, and we do not read on to see.
        BodyEnd::Capped => return verdict(Outcome::Pass, Reason::Ok, None),
    }
    match status {
        Some(Status::Text(status)) => {
            let quoted = format!("{:?}", truncate_chars(&status, 40));
            match status_word(&status) {
                Word::Pass => verdict(Outcome::Pass, Reason::Ok, None),
                Word::Warn => verdict(
                    Outcome::Warn,
                    Reason::BodyWarn,
                    Some(format!("status {quoted} in body")),
                ),
                Word::Fail => verdict(
                    Outcome::Fail,
                    Reason::BodyFail,
                    Some(format!("status {quoted} in body")),
                ),
                Word::Unknown => verdict(
                    Outcome::Warn,
                    Reason::BodyWarn,
                    Some(format!("unrecognised status {quoted} in body")),
                ),
            }
        }
        _ if health_json => {
            let detail = if body.is_some() {
                "health+json body without a string \"status\""
            } else {
                "body says application/health+json but is not JSON"
            };
            verdict(Outcome::Fail, Reason::BodyInvalid, Some(detail.to_owned()))
        }
        // No body, a body that is not JSON, or JSON that says nothing about its status.
        _ => verdict(Outcome::Pass, Reason::Ok, None),
    }
}

/// `HTTP 503 Service Unavailable`.
fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
    {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// `5 s`, or `300 ms` when not whole seconds.
fn seconds_text(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// One safe line of at most `max` characters: control and invisible formatting characters are
/// escaped (the detail goes into mail and logs), and a longer text is cut and ends in `...`.
fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::text::is_unsafe(c) {
            line.extend(c.escape_unicode());
        } else {
            line.push(c);
        }
    }
    if line.chars().count() > max {
        line = truncate_chars(&line, max.saturating_sub(3)).to_owned() + "...";
    }
    line
}

/// Why a check ended the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// HTTP 200 (or another status in `expect_status`) and a body that does not say otherwise;
    /// connected, handshake done, or echo answered for the other kinds.
    Ok,
    /// A status code not in `expect_status` (by default anything but 200; redirects included:
    /// they are not followed).
    StatusCode,
    /// HTTP 200 with a `status` of `warn` (or `degraded`, ...), or one the probe does not know.
    BodyWarn,
    /// HTTP 200 with a `status` of `fail`, `error`, `down` (or `unhealthy`, `out_of_service`, ...).
    BodyFail,
    /// The body claims `application/health+json` but does not parse as such (or is too long to
    /// be read whole).
    BodyInvalid,
    /// The body ended before its announced end, or the connection broke while reading it.
    BodyTruncated,
    /// The whole exchange did not finish within the monitor's timeout.
    Timeout,
    /// The connection was refused or reset.
    Connect,
    /// The host name did not resolve, or the DNS server did not answer within the timeout.
    Dns,
    /// The TLS handshake failed, or the certificate is not trusted or has expired.
    Tls,
    /// No request was made: the host's addresses are all outside `allowed_targets` (a name
    /// that resolved inside at registration may have moved).
    NotAllowed,
    /// The certificate expires within the monitor's `cert_warn_days` (a warn).
    CertExpiring,
    /// An ICMP echo got no reply within the timeout.
    NoReply,
    /// An ICMP echo could not be sent: no route to the host or its network.
    Unreachable,
    /// Any other failure: a malformed or oversized response head, say.
    Other,
    /// Push monitors: the job said it started (`/start`); the state does not change.
    Started,
    /// Push monitors: a message (`/log`); the state does not change.
    Logged,
    /// Push monitors: the job failed (`/fail`, or a non-zero exit status).
    JobFailed,
    /// Push monitors: the expected success did not come by its deadline.
    Late,
    /// Push monitors: nor within the grace after it.
    Missed,
    /// Push monitors: a started run did not report its result within the grace.
    RunTooLong,
}

impl From<crate::push::PushReason> for Reason {
    fn from(reason: crate::push::PushReason) -> Reason {
        use crate::push::PushReason;
        match reason {
            PushReason::Ok => Reason::Ok,
            PushReason::Started => Reason::Started,
            PushReason::Logged => Reason::Logged,
            PushReason::JobFailed => Reason::JobFailed,
            PushReason::Late => Reason::Late,
            PushReason::Missed => Reason::Missed,
            PushReason::RunTooLong => Reason::RunTooLong,
        }
    }
}

impl Reason {
    /// The name used in the API, logs and mail: `ok`, `status_code`, `timeout`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::StatusCode => "status_code",
            Reason::BodyWarn => "body_warn",
            Reason::BodyFail => "body_fail",
            Reason::BodyInvalid => "body_invalid",
            Reason::BodyTruncated => "body_truncated",
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Dns => "dns",
            Reason::Tls => "tls",
            Reason::NotAllowed => "not_allowed",
            Reason::CertExpiring => "cert_expiring",
            Reason::NoReply => "no_reply",
            Reason::Unreachable => "unreachable",
            Reason::Other => "other",
            Reason::Started => "started",
            Reason::Logged => "logged",
            Reason::JobFailed => "job_failed",
            Reason::Late => "late",
            Reason::Missed => "missed",
            Reason::RunTooLong => "run_too_long",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check of one monitor, as recorded in the health-check log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// When the check started (UTC).
    pub time: DateTime<Utc>,
    /// Pass, warn or fail.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// The HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// Time from sending the request to the end of the body (or the failure).
    #[serde(with = "latency_ms", rename = "latency_ms")]
    pub latency: Duration,
    /// The body, when it is a health answer (`application/health+json`, or a JSON object with
    /// a `status` member), bounded in size.
    pub body: Option<JsonBody>,
    /// Any other body: its size and a short keyed hash, never its content. Boxed: most checks
    /// have none, and every monitor keeps a few records in memory.
    #[serde(default)]
    pub body_digest: Option<Box<BodyDigest>>,
    /// One short, safe line saying what was wrong (a failure or a warn), e.g.
    /// `HTTP 503 Service Unavailable` or `connection refused`; never raw body bytes.
    pub detail: Option<String>,
    /// The leaf certificate's expiry (`notAfter`), for https and tls checks that saw one.
    #[serde(default)]
    pub cert_not_after: Option<DateTime<Utc>>,
    /// Whole days from the check to [`CheckRecord::cert_not_after`] (negative once expired).
    #[serde(default)]
    pub cert_days_left: Option<i64>,
}

/// Serializes a [`Duration`] as fractional milliseconds.
mod latency_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        latency: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64((latency.as_secs_f64() * 1e6).round() / 1e3)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(deserializer)?;
        Ok(Duration::from_secs_f64((ms / 1e3).max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTH_JSON: Option<&str> = Some("application/health+json");
    const JSON: Option<&str> = Some("application/json; charset=utf-8");
    const TEXT: Option<&str> = Some("text/plain");

    /// The digest key of these tests.
    static KEY: std::sync::LazyLock<DigestKey> =
        std::sync::LazyLock::new(|| DigestKey::from_bytes(&[42; 32]).expect("32 bytes"));

    fn answer<'a>(status: u16, content_type: Option<&'a str>, body: &'a str) -> Answer<'a> {
        Answer {
            status,
            content_type,
            location: None,
            body: body.as_bytes(),
            end: BodyEnd::Complete,
        }
    }

    /// Each row: the answer, then the outcome, reason and detail it must get.
    #[test]
    fn classification_table() {
        use Outcome::{Fail, Pass, Warn};
        let rows: &[(Answer<'_>, Outcome, Reason, Option<&str>)] = &[
            // 200 and a body that does not say otherwise
            (answer(200, None, ""), Pass, Reason::Ok, None),
            (answer(200, TEXT, "OK"), Pass, Reason::Ok, None),
            (
                answer(200, Some("text/html"), "<h1>fine</h1>"),
                Pass,
                Reason::Ok,
                None,
            ),
            (answer(200, JSON, "{\"uptime\": 5}"), Pass, Reason::Ok, None),
            (
                answer(200, JSON, "{\"status\": 200}"),
                Pass,
                Reason::Ok,
                None,
            ),
            (answer(200, JSON, "[1, 2]"), Pass, Reason::Ok, None),
            (answer(200, JSON, "{not json"), Pass, Reason::Ok, None),
            (answer(200, JSON, "\"pass\""), Pass, Reason::Ok, None),
            // the status word, whatever the case
            (
                answer(200, HEALTH_JSON, "{\"status\": \"pass\"}"),
                Pass,
                Reason::Ok,
                None,
            ),
            (
                answer(200, JSON, "{\"status\": \"UP\"}"),
                Pass,
                Reason::Ok,
                None,
            ),
            (
                answer(200, TEXT, "{\"status\": \"ok\"}"),
                Pass,
                Reason::Ok,
                None,
            ),
            (
                answer(200, None, " {\"Status\": \"Healthy\"}"),
                Pass,
                Reason::Ok,
                None,
            ),
            (
                answer(200, JSON, "{\"status\": \"green\"}"),
                Pass,
                Reason::Ok,
                None,
            ),
            (
                answer(200, HEALTH_JSON, "{\"status\": \"warn\"}"),
                Warn,
                Reason::BodyWarn,
                Some("status \"warn\" in body"),
            ),
            (
                answer(200, JSON, "{\"status\": \"DEGRADED\"}"),
                Warn,
                Reason::BodyWarn,
                Some("status \"DEGRADED\" in body"),
            ),
            (
                answer(200, JSON, "{\"status\": \"Warning\"}"),
                Warn,
                Reason::BodyWarn,
                Some("status \"Warning\" in body"),
            ),
            (
                answer(200, HEALTH_JSON, "{\"status\": \"fail\"}"),
                Fail,
                Reason::BodyFail,
                Some("status \"fail\" in body"),
            ),
            (
                answer(200, JSON, "{\"status\": \"DOWN\"}"),
                Fail,
                Reason::BodyFail,
                Some("status \"DOWN\" in body"),
            ),
            (
                answer(200, JSON, "{\"status\": \"OUT_OF_SERVICE\"}"),
                Fail,
                Reason::BodyFail,
                Some("status \"OUT_OF_SERVICE\" in body"),
            ),
            (
                answer(200, JSON, "{\"status\": \"error\"}"),
                Fail,
                Reason::BodyFail,
                Some("status \"error\" in body"),
            ),
            (
                answer(200, JSON, "{\"status\": \"unhealthy\"}"),
                Fail,
                Reason::BodyFail,
                Some("status \"unhealthy\" in body"),
            ),
            // a word we do not know: warn
            (
                answer(200, JSON, "{\"status\": \"UNKNOWN\"}"),
                Warn,
                Reason::BodyWarn,
                Some("unrecognised status \"UNKNOWN\" in body"),
            ),
            // health+json is held to the format
            (
                answer(200, HEALTH_JSON, "garbage"),
                Fail,
                Reason::BodyInvalid,
                Some("body says application/health+json but is not JSON"),
            ),
            (
                answer(200, Some("Application/Health+JSON; charset=utf-8"), ""),
                Fail,
                Reason::BodyInvalid,
                Some("body says application/health+json but is not JSON"),
            ),
            (
                answer(
                    200,
                    Some("application/vnd.health+json"),
                    "{\"version\": \"1\"}",
                ),
                Fail,
                Reason::BodyInvalid,
                Some("health+json body without a string \"status\""),
            ),
            (
                answer(200, HEALTH_JSON, "{\"status\": true}"),
                Fail,
                Reason::BodyInvalid,
                Some("health+json body without a string \"status\""),
            ),
            // any status but 200
            (
                answer(503, HEALTH_JSON, "{\"status\": \"fail\"}"),
                Fail,
                Reason::StatusCode,
                Some("HTTP 503 Service Unavailable"),
            ),
            (
                answer(204, None, ""),
                Fail,
                Reason::StatusCode,
                Some("HTTP 204 No Content"),
            ),
            (
                answer(500, TEXT, "{\"status\": \"pass\"}"),
                Fail,
                Reason::StatusCode,
                Some("HTTP 500 Internal Server Error"),
            ),
            (
                answer(599, None, ""),
                Fail,
                Reason::StatusCode,
                Some("HTTP 599"),
            ),
            (
                Answer {
                    location: Some("http://elsewhere.lan/health"),
                    ..answer(302, None, "")
                },
                Fail,
                Reason::StatusCode,
                Some("HTTP 302 Found, redirect to http://elsewhere.lan/health"),
            ),
            (
                Answer {
                    location: Some("/x\r\nSet-Cookie: a=b"),
                    ..answer(301, None, "")
                },
                Fail,
                Reason::StatusCode,
                Some("HTTP 301 Moved Permanently, redirect to /x\\u{d}\\u{a}Set-Cookie: a=b"),
            ),
            // bodies not read to their end
            (
                Answer {
                    end: BodyEnd::Cut,
                    ..answer(200, JSON, "{\"status\": \"pa")
                },
                Fail,
                Reason::BodyTruncated,
                Some("connection closed before the end of the body"),
            ),
            (
                Answer {
                    end: BodyEnd::Capped,
                    ..answer(200, TEXT, "xxxx")
                },
                Pass,
                Reason::Ok,
                None,
            ),
            (
                Answer {
                    end: BodyEnd::Capped,
                    ..answer(200, HEALTH_JSON, "{\"status\": \"pass\", \"checks\": ")
                },
                Fail,
                Reason::BodyInvalid,
                Some("health+json body larger than 64 KiB"),
            ),
            (
                Answer {
                    end: BodyEnd::Cut,
                    ..answer(503, TEXT, "")
                },
                Fail,
                Reason::StatusCode,
                Some("HTTP 503 Service Unavailable"),
            ),
        ];
        for (answer, outcome, reason, detail) in rows {
            let verdict = classify(answer, &KEY);
            assert_eq!(
                (verdict.outcome, verdict.reason, verdict.detail.as_deref()),
                (*outcome, *reason, *detail),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn only_health_answers_are_kept_and_other_bodies_are_digested() {
        let text = |verdict: &Verdict| verdict.body.as_ref().map(|body| body.as_str().to_owned());
        let size = |verdict: &Verdict| verdict.digest.as_ref().map(|digest| digest.size);
        // kept: a JSON object with a `status` member (any status code, any content type), or
        // anything JSON that says it is application/health+json
        for (answer, kept) in [
            (
                answer(503, JSON, "{\"status\": \"fail\", \"why\": \"db\"}"),
                r#"{"status":"fail","why":"db"}"#,
            ),
            (answer(200, TEXT, "{\"Status\": 200}"), r#"{"Status":200}"#),
            (
                answer(200, HEALTH_JSON, "{\"version\": \"1\"}"),
                r#"{"version":"1"}"#,
            ),
        ] {
            let verdict = classify(&answer, &KEY);
            assert_eq!(text(&verdict).as_deref(), Some(kept), "{answer:?}");
            assert_eq!(verdict.digest, None, "{answer:?}");
        }
        // digested: JSON that is not a health answer, text, HTML, bodies not read to the end
        let secret = r#"{"admin": "root", "password": "hunter2"}"#;
        for answer in [
            answer(200, JSON, secret),
            answer(200, JSON, "[true]"),
            answer(200, JSON, "\"pass\""),
            answer(200, TEXT, "up"),
            answer(401, Some("text/html"), "<h1>login</h1>"),
            answer(200, HEALTH_JSON, "garbage"),
            Answer {
                end: BodyEnd::Cut,
                ..answer(200, JSON, "{\"status\": \"pa")
            },
            Answer {
                end: BodyEnd::Capped,
                ..answer(200, HEALTH_JSON, "{\"status\": \"pass\", \"checks\": ")
            },
        ] {
            let verdict = classify(&answer, &KEY);
            assert_eq!(verdict.body, None, "{answer:?}");
            assert_eq!(size(&verdict), Some(answer.body.len() as u64), "{answer:?}");
            assert_eq!(
                verdict.digest,
                Some(BodyDigest::of(answer.body, &KEY)),
                "{answer:?}"
            );
        }
        let verdict = classify(&answer(200, JSON, secret), &KEY);
        let shown = format!("{verdict:?}");
        assert!(!shown.contains("hunter2"), "nothing of it is kept: {shown}");
        // no body: nothing at all
        let empty = classify(&answer(200, None, ""), &KEY);
        assert_eq!((empty.body, empty.digest), (None, None));
    }

    #[test]
    fn details_are_one_safe_line() {
        let verdict = classify(
            &answer(
                200,
                JSON,
                "{\"status\": \"bad\\r\\nBcc: x@y\\u0000\\u202e\"}",
            ),
            &KEY,
        );
        let detail = verdict.detail.expect("detail");
        assert!(
            !detail.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{detail}"
        );
        assert_eq!(
            detail,
            "unrecognised status \"bad\\r\\nBcc: x@y\\0\\u{202e}\" in body"
        );
        let long = classify(
            &answer(
                200,
                JSON,
                &format!("{{\"status\": \"{}\"}}", "w".repeat(500)),
            ),
            &KEY,
        );
        assert!(long.detail.expect("detail").chars().count() < 80);
        let line = one_line(&"é".repeat(300), DETAIL_MAX);
        assert_eq!(line.chars().count(), DETAIL_MAX);
        assert!(line.ends_with("..."));
        assert_eq!(one_line("a\tb", 10), "a\\u{9}b");
    }

    #[test]
    fn status_words() {
        for (word, expected) in [
            ("pass", Word::Pass),
            ("Ok", Word::Pass),
            ("UP", Word::Pass),
            ("warn", Word::Warn),
            ("degraded", Word::Warn),
            ("out-of-service", Word::Fail),
            ("Out Of Service", Word::Fail),
            ("DOWN", Word::Fail),
            ("maintenance", Word::Unknown),
            ("", Word::Unknown),
        ] {
            assert_eq!(status_word(word), expected, "{word}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds_text(Duration::from_secs(5)), "5 s");
        assert_eq!(seconds_text(Duration::from_millis(300)), "300 ms");
    }

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(
            USER_AGENT_VALUE,
            format!("healthchecker/{}", crate::VERSION)
        );
    }

    #[test]
    fn records_serialize_with_names() {
        let record = CheckRecord {
            time: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time"),
            outcome: Outcome::Fail,
            reason: Reason::BodyTruncated,
            http_status: Some(200),
            latency: Duration::from_micros(1500),
            body: None,
            body_digest: None,
            detail: Some("x".to_owned()),
            cert_not_after: None,
            cert_days_left: None,
        };
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(json["reason"], "body_truncated");
        assert_eq!(json["latency_ms"], 1.5);
        assert_eq!(
            serde_json::from_value::<CheckRecord>(json).expect("back"),
            record
        );
    }
}
