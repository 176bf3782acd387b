//! Certificates made in the test (rcgen) and a real rustls server on 127.0.0.1 whose certificate
//! the test changes between checks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A certificate authority made for one test.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, with when it expires.
#[derive(Clone)]
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<Vec<u8>>,
    pub not_after: OffsetDateTime,
    /// The chain and the key as PEM (for a server that reads files: PostgreSQL).
    pub pem: Arc<(String, String)>,
}

impl Leaf {
    /// The expiry, in whole seconds since the epoch (as the certificate has it).
    pub fn not_after_unix(&self) -> i64 {
        self.not_after.unix_timestamp()
    }
}

fn params(valid_for: Duration, expired: bool) -> CertificateParams {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate parameters");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds");
    if expired {
        params.not_before = now - Duration::from_secs(30 * 86_400);
        params.not_after = now - valid_for;
    } else {
        params.not_before = now - Duration::from_secs(86_400);
        params.not_after = now + valid_for;
    }
    params
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "healthchecker test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA's certificate, for a trust store.
    pub fn root(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA's certificate as PEM (for `SSL_CERT_FILE`).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for localhost and 127.0.0.1, valid from a day ago for `valid_for` more.
    pub fn leaf(&self, valid_for: Duration) -> Leaf {
        self.issue(params(valid_for, false))
    }

    /// A certificate for localhost that expired `ago`.
    pub fn expired(&self, ago: Duration) -> Leaf {
        self.issue(params(ago, true))
    }

    fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let not_after = params.not_after;
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Leaf {
            chain: vec![cert.der().clone(), self.root()],
            key: Arc::new(key.serialize_der()),
            not_after,
            pem: Arc::new((cert.pem() + &self.pem(), key.serialize_pem())),
        }
    }
}

/// A self-signed certificate for localhost, valid for `valid_for` (a router's, a NAS's).
pub fn self_signed(valid_for: Duration) -> Leaf {
    let params = params(valid_for, false);
    let key = KeyPair::generate().expect("key");
    let not_after = params.not_after;
    let cert = params.self_signed(&key).expect("self-signed");
    Leaf {
        chain: vec![cert.der().clone()],
        key: Arc::new(key.serialize_der()),
        not_after,
        pem: Arc::new((cert.pem(), key.serialize_pem())),
    }
}

/// A self-signed certificate for localhost that expired `ago`.
pub fn self_signed_expired(ago: Duration) -> Leaf {
    let params = params(ago, true);
    let key = KeyPair::generate().expect("key");
    let not_after = params.not_after;
    let cert = params.self_signed(&key).expect("self-signed");
    Leaf {
        chain: vec![cert.der().clone()],
        key: Arc::new(key.serialize_der()),
        not_after,
        pem: Arc::new((cert.pem(), key.serialize_pem())),
    }
}

/// Hands rustls the certificate the test set last.
#[derive(Debug)]
struct Current(Mutex<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.lock().expect("lock")))
    }
}

fn certified(leaf: &Leaf) -> Arc<CertifiedKey> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.as_ref().clone()));
    let signing = provider
        .key_provider
        .load_private_key(key)
        .expect("usable key");
    Arc::new(CertifiedKey::new(leaf.chain.clone(), signing))
}

/// What the server does once a handshake is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speak {
    /// Nothing: hold the connection until the client closes (a TLS service such as IMAPS).
    Nothing,
    /// Answer every HTTP request on the connection with `200 OK` and a health+json pass.
    Http,
}

/// A TLS server on 127.0.0.1:0 whose certificate can be changed; counts connections and
/// finished handshakes.
pub struct TlsServer {
    pub addr: SocketAddr,
    current: Arc<Current>,
    pub connections: Arc<AtomicUsize>,
    pub handshakes: Arc<AtomicUsize>,
}

impl TlsServer {
    pub async fn start(leaf: &Leaf, speak: Speak) -> TlsServer {
        let current = Arc::new(Current(Mutex::new(certified(leaf))));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        if speak == Speak::Http {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (count, done) = (Arc::clone(&connections), Arc::clone(&handshakes));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let done = Arc::clone(&done);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    done.fetch_add(1, Ordering::SeqCst);
                    match speak {
                        Speak::Nothing => {
                            let _ = tls.read(&mut [0u8; 64]).await;
                        }
                        Speak::Http => loop {
                            let mut head = Vec::new();
                            while !head.ends_with(b"\r\n\r\n") {
                                let mut byte = [0u8; 1];
                                match tls.read(&mut byte).await {
                                    Ok(1) => head.push(byte[0]),
                                    _ => return,
                                }
                            }
                            let body = br#"{"status": "pass"}"#;
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\n\
                                 Content-Length: {}\r\n\r\n",
                                body.len()
                            );
                            if tls.write_all(answer.as_bytes()).await.is_err()
                                || tls.write_all(body).await.is_err()
                            {
                                return;
                            }
                        },
                    }
                });
            }
        });
        TlsServer {
            addr,
            current,
            connections,
            handshakes,
        }
    }

    /// From the next handshake on, the server shows `leaf`.
    pub fn show(&self, leaf: &Leaf) {
        *self.current.0.lock().expect("lock") = certified(leaf);
    }
}
