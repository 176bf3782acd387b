//! Certificates of https and tls checks: the leaf's expiry, what it means for a check, and the
//! verifier of `tls_verify: false`.
//!
//! * [`leaf_not_after`] reads the end-entity certificate's `notAfter` with x509-parser, once per
//!   connection (a pooled https connection keeps it, so a check on a reused connection records it
//!   too).
//! * [`expiry`] is the policy, a pure function of the expiry, the time and `cert_warn_days`: a
//!   passing check with fewer days left than that is a warn (`cert_expiring`); an expired
//!   certificate is a fail (`tls`). With `tls_verify` on, rustls refuses an expired certificate
//!   during the handshake already; its error carries the `notAfter`, which is recorded all the same
//!   ([`expired_not_after`]).
//! * [`AnyCertificate`] accepts whatever certificate the peer shows (a self-signed router or NAS),
//!   but still checks the handshake's signatures with it, so the connection is to the holder of
//!   that certificate's key.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::health::Outcome;

use super::Reason;

/// The `notAfter` of the first (end-entity) certificate of `chain`; `None` when there is none, or
/// it does not parse.
pub(super) fn leaf_not_after(chain: &[CertificateDer<'_>]) -> Option<DateTime<Utc>> {
    let leaf = chain.first()?;
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
}

/// The `notAfter` that rustls names when it refused a certificate for having expired.
pub(super) fn expired_not_after(error: &rustls::Error) -> Option<DateTime<Utc>> {
    match error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
            not_after,
            ..
        }) => DateTime::from_timestamp(i64::try_from(not_after.as_secs()).ok()?, 0),
        _ => None,
    }
}

/// Whole days from `time` to `not_after`, the part of a day left over dropped: 3 days and 5
/// hours are 3; an expiry 2 days and 5 hours ago is -2 (0 within a day either side).
pub fn days_left(not_after: DateTime<Utc>, time: DateTime<Utc>) -> i64 {
    (not_after - time).num_days()
}

/// What a certificate expiring at `not_after` means for a check at `now` of `host`, with
/// `warn_days` (0: nothing): `None` when it is fine; else the outcome, the reason and a detail
/// naming the host, the days and the date.
pub fn expiry(
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
    warn_days: u32,
    host: &str,
) -> Option<(Outcome, Reason, String)> {
    if warn_days == 0 {
        return None;
    }
    let date = not_after.format("%Y-%m-%d %H:%M UTC");
    if not_after <= now {
        let ago = match (now - not_after).num_seconds().div_euclid(86_400) {
            0 => "less than a day ago".to_owned(),
            1 => "1 day ago".to_owned(),
            days => format!("{days} days ago"),
        };
        return Some((
            Outcome::Fail,
            Reason::Tls,
            format!("certificate of {host} expired {ago} ({date})"),
        ));
    }
    let left = days_left(not_after, now);
    if left >= i64::from(warn_days) {
        return None;
    }
    let within = match left {
        0 => "in less than a day".to_owned(),
        1 => "in 1 day".to_owned(),
        days => format!("in {days} days"),
    };
    Some((
        Outcome::Warn,
        Reason::CertExpiring,
        format!("certificate of {host} expires {within} ({date})"),
    ))
}

/// A verifier that takes any certificate chain (`tls_verify: false`) and checks the handshake's
/// signatures against the certificate shown, with the provider's algorithms.
#[derive(Debug)]
pub(crate) struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl AnyCertificate {
    /// The verifier for `provider`'s signature algorithms.
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> AnyCertificate {
        AnyCertificate { provider }
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn days_left_round_down() {
        let now = at("2027-01-01T12:00:00Z");
        for (not_after, days) in [
            ("2027-01-04T12:00:00Z", 3),
            ("2027-01-04T11:59:59Z", 2),
            ("2027-01-01T12:00:01Z", 0),
            ("2027-01-01T11:59:59Z", 0),
            ("2026-12-31T12:00:00Z", -1),
            ("2026-12-31T11:59:59Z", -1),
            ("2026-12-30T11:59:59Z", -2),
        ] {
            assert_eq!(days_left(at(not_after), now), days, "{not_after}");
        }
    }

    /// Each row: the expiry, `cert_warn_days`, then what the check becomes.
    #[test]
    fn expiry_table() {
        let now = at("2027-01-01T12:00:00Z");
        type Row<'a> = (&'a str, u32, Option<(Outcome, Reason, &'a str)>);
        let rows: &[Row<'_>] = &[
            ("2027-06-01T00:00:00Z", 14, None),
            ("2027-01-15T12:00:00Z", 14, None),
            (
                "2027-01-15T11:59:59Z",
                14,
                Some((
                    Outcome::Warn,
                    Reason::CertExpiring,
                    "certificate of nas.lan expires in 13 days (2027-01-15 11:59 UTC)",
                )),
            ),
            (
                "2027-01-04T12:00:00Z",
                14,
                Some((
                    Outcome::Warn,
                    Reason::CertExpiring,
                    "certificate of nas.lan expires in 3 days (2027-01-04 12:00 UTC)",
                )),
            ),
            (
                "2027-01-02T13:00:00Z",
                14,
                Some((
                    Outcome::Warn,
                    Reason::CertExpiring,
                    "certificate of nas.lan expires in 1 day (2027-01-02 13:00 UTC)",
                )),
            ),
            (
                "2027-01-01T18:00:00Z",
                1,
                Some((
                    Outcome::Warn,
                    Reason::CertExpiring,
                    "certificate of nas.lan expires in less than a day (2027-01-01 18:00 UTC)",
                )),
            ),
            ("2027-01-04T12:00:00Z", 3, None),
            ("2027-01-04T12:00:00Z", 0, None),
            (
                "2026-12-30T12:00:00Z",
                14,
                Some((
                    Outcome::Fail,
                    Reason::Tls,
                    "certificate of nas.lan expired 2 days ago (2026-12-30 12:00 UTC)",
                )),
            ),
            (
                "2027-01-01T06:00:00Z",
                14,
                Some((
                    Outcome::Fail,
                    Reason::Tls,
                    "certificate of nas.lan expired less than a day ago (2027-01-01 06:00 UTC)",
                )),
            ),
            // 0 watches nothing, not even an expired certificate (tls_verify = false only:
            // with verification on, rustls refuses it)
            ("2026-12-30T12:00:00Z", 0, None),
        ];
        for (not_after, warn_days, expected) in rows {
            let got = expiry(at(not_after), now, *warn_days, "nas.lan");
            let got = got
                .as_ref()
                .map(|(outcome, reason, detail)| (*outcome, *reason, detail.as_str()));
            assert_eq!(got, *expected, "{not_after}, {warn_days} days");
        }
    }

    #[test]
    fn an_expired_refusal_names_the_expiry() {
        let error = rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
        });
        assert_eq!(
            expired_not_after(&error),
            DateTime::from_timestamp(1_700_000_000, 0)
        );
        assert_eq!(
            expired_not_after(&rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )),
            None
        );
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(leaf_not_after(&[]), None);
        assert_eq!(
            leaf_not_after(&[CertificateDer::from(b"not DER".to_vec())]),
            None
        );
        let leaf = CertificateDer::from(include_bytes!("../../tests/data/localhost.der").to_vec());
        let not_after = leaf_not_after(&[leaf]).expect("parses");
        assert!(not_after > at("2100-01-01T00:00:00Z"), "{not_after}");
    }
}
