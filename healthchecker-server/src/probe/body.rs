//! A JSON body as the app sent it, the one thing [`classify`](super::classify) asks of it (its
//! `status`), and what the log keeps of a body that is not a health answer.
//!
//! Whoever may register can make the server fetch any URL, and whoever may read sees what it
//! kept (DESIGN.md, "The server is not a proxy into the LAN"). So a body is kept whole only when
//! it is a health answer: `application/health+json`, or a JSON object with a `status` member (in
//! any casing, whatever its value). Any other body (a router's JSON, an HTML page, text) is kept
//! as its [`BodyDigest`]: its size and a short hash, enough to see that it changed and nothing of
//! what it says. The hash is keyed ([`DigestKey`], kept in the database), so it cannot be matched
//! against the hashes of guessed bodies (`{"wan":"up"}` or `{"wan":"down"}`).
//!
//! A check's body goes to the log and the API and is never looked at again, so it is kept as JSON
//! text (insignificant whitespace removed) instead of a parsed tree: reading it is one scan that
//! allocates only the text, and writing it to the log or an API answer copies the text. At 2,000
//! checks a second, building a `serde_json::Value` (a map, a string per key), cloning it and
//! encoding it again for the log cost about a tenth of the server's CPU.

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, Mac as _};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;

/// Bytes of the keyed hash a [`BodyDigest`] shows (64 bits: 16 hex digits).
const DIGEST_BYTES: usize = 8;

/// The key of the hashes in [`BodyDigest`]s: 32 random bytes, made once per data folder (the
/// store keeps it), so a body's hash stays the same across restarts. Never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey([u8; 32]);

impl DigestKey {
    /// A new random key (from the operating system's random source).
    ///
    /// # Panics
    ///
    /// When the operating system has no random source at all (not a Linux, BSD, macOS or
    /// Windows system).
    pub fn random() -> DigestKey {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source");
        DigestKey(key)
    }

    /// The key of these 32 bytes; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<DigestKey> {
        bytes.try_into().ok().map(DigestKey)
    }
}

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestKey(***)")
    }
}

/// What the log keeps of a body that is not a health answer: how many bytes were read and a
/// short keyed hash of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyDigest {
    /// Bytes of the body that were read: the whole body, or the first
    /// [`BODY_LIMIT`](super::BODY_LIMIT) of a longer one (or what came before the connection
    /// broke).
    pub size: u64,
    /// The first 64 bits of the body's HMAC-SHA256 under the server's [`DigestKey`]: the same
    /// body gives the same hash, a changed one another.
    pub hash: DigestHash,
}

impl BodyDigest {
    /// The digest of `bytes` under `key`.
    pub fn of(bytes: &[u8], key: &DigestKey) -> BodyDigest {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&key.0).expect("HMAC takes any key");
        mac.update(bytes);
        let mut hash = [0u8; DIGEST_BYTES];
        hash.copy_from_slice(&mac.finalize().into_bytes()[..DIGEST_BYTES]);
        BodyDigest {
            size: bytes.len() as u64,
            hash: DigestHash(hash),
        }
    }
}

/// The short hash of a [`BodyDigest`]: 8 bytes, written as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DigestHash([u8; DIGEST_BYTES]);

/// Text that is not 16 hex digits, read as a [`DigestHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a body hash is 16 hex digits")]
pub struct DigestHashError;

impl std::str::FromStr for DigestHash {
    type Err = DigestHashError;

    fn from_str(text: &str) -> Result<DigestHash, DigestHashError> {
        let mut hash = [0u8; DIGEST_BYTES];
        hex::decode_to_slice(text, &mut hash).map_err(|_| DigestHashError)?;
        Ok(DigestHash(hash))
    }
}

impl fmt::Display for DigestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DigestHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DigestHash({self})")
    }
}

impl Serialize for DigestHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DigestHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DigestHash, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A JSON object or array, as text without insignificant whitespace; the app's key order and
/// number spellings are kept.
///
/// Serializes as the JSON it holds (not as a string).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonBody(Box<RawValue>);

impl JsonBody {
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// JSON text read back from the log.
    ///
    /// # Errors
    ///
    /// When `text` is not JSON.
    pub fn from_text(text: String) -> Result<JsonBody, serde_json::Error> {
        RawValue::from_string(text).map(JsonBody)
    }

    /// The body parsed, for callers that want to look inside.
    ///
    /// # Errors
    ///
    /// Never for a body made by this module (it was valid JSON when it was made).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }
}

impl PartialEq for JsonBody {
    fn eq(&self, other: &JsonBody) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for JsonBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a body says about the app's health.
#[derive(Debug, PartialEq)]
pub(super) enum Status<'a> {
    /// A JSON object whose `status` (or, failing that, any casing of it) is a string.
    Text(Cow<'a, str>),
    /// JSON without a string `status`: an array, an object without one, or one that is not a
    /// string (`{"status": 200}`).
    Silent,
}

/// A body that is a JSON object or array: its text, and what it says.
pub(super) struct Parsed<'a> {
    /// The body, for the log (when it is a health answer).
    pub(super) body: JsonBody,
    /// Its `status`.
    pub(super) status: Status<'a>,
    /// Whether it is a JSON object with a `status` member (in any casing, whatever its value):
    /// a health answer, whatever its content type says.
    pub(super) has_status: bool,
}

/// Reads `bytes` when they are a JSON object or array (leading whitespace allowed); `None` for
/// anything else, invalid JSON included.
pub(super) fn parse(bytes: &[u8]) -> Option<Parsed<'_>> {
    // A body that is not an object or array (plain text, HTML) is not looked at any further.
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace())?;
    if !matches!(first, b'{' | b'[') {
        return None;
    }
    // Checks the syntax of the whole body and finds `status` in one pass, without a tree.
    let shape: Shape<'_> = serde_json::from_slice(bytes).ok()?;
    let body = JsonBody::from_text(String::from_utf8(compact(bytes)?).ok()?).ok()?;
    Some(Parsed {
        body,
        status: shape.status,
        has_status: shape.has_status,
    })
}

/// `bytes` without whitespace outside strings; `None` when a string never ends.
fn compact(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        } else if byte == b'"' {
            in_string = true;
        }
        out.push(byte);
    }
    (!in_string).then_some(out)
}

/// The outline of a JSON object or array: only its `status` is kept.
struct Shape<'a> {
    status: Status<'a>,
    /// An object with a `status` member (any casing, any value).
    has_status: bool,
}

impl<'de> Deserialize<'de> for Shape<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shape<'de>, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape {
            status: Status::Silent,
            has_status: false,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape<'de>, A::Error> {
        // `status` itself wins over other casings of it, wherever it comes.
        let mut exact = None;
        let mut other_casing = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let is_exact = key == "status";
            if is_exact || (other_casing.is_none() && key.eq_ignore_ascii_case("status")) {
                let value = map.next_value::<StatusValue<'de>>()?.0;
                if is_exact {
                    exact = Some(value);
                } else {
                    other_casing = Some(value);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let has_status = exact.is_some() || other_casing.is_some();
        let status = match exact.or(other_casing) {
            Some(Some(text)) => Status::Text(text),
            _ => Status::Silent,
        };
        Ok(Shape { status, has_status })
    }
}

/// A `status` value: its text when it is a string, `None` for any other JSON value.
struct StatusValue<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StatusValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StatusValue<'de>, D::Error> {
        deserializer.deserialize_any(StatusValueVisitor)
    }
}

struct StatusValueVisitor;

impl<'de> Visitor<'de> for StatusValueVisitor {
    type Value = StatusValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(Some(Cow::Borrowed(text))))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(Some(Cow::Owned(text.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(Some(Cow::Owned(text))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<StatusValue<'de>, E> {
        Ok(StatusValue(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusValue<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(StatusValue(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StatusValue<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StatusValue(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(text: &str) -> Option<Status<'_>> {
        parse(text.as_bytes()).map(|parsed| parsed.status)
    }

    fn kept(text: &str) -> Option<String> {
        parse(text.as_bytes()).map(|parsed| parsed.body.as_str().to_owned())
    }

    #[test]
    fn finds_the_status() {
        let text = |word: &str| Some(Status::Text(Cow::Owned(word.to_owned())));
        for (body, expected) in [
            (r#"{"status":"pass"}"#, text("pass")),
            (
                r#" {"checks": {"status": "fail"}, "status" : "warn"} "#,
                text("warn"),
            ),
            (r#"{"Status":"DOWN"}"#, text("DOWN")),
            (r#"{"STATUS":"down","status":"up"}"#, text("up")),
            (r#"{"status":"up","STATUS":"down"}"#, text("up")),
            (r#"{"status":"say \"hi\"\n"}"#, text("say \"hi\"\n")),
            (r#"{"status":200}"#, Some(Status::Silent)),
            (r#"{"status":null}"#, Some(Status::Silent)),
            (r#"{"status":{"status":"fail"}}"#, Some(Status::Silent)),
            (r#"{"uptime":5}"#, Some(Status::Silent)),
            (r#"[{"status":"fail"}]"#, Some(Status::Silent)),
            (r#""pass""#, None),
            ("42", None),
            ("", None),
            ("up", None),
            (r#"{"status":"pass""#, None),
            (r#"{"status":"pass"} trailing"#, None),
            (r#"{"status":"pass",}"#, None),
        ] {
            assert_eq!(status(body), expected, "{body}");
        }
    }

    #[test]
    fn keeps_the_text_without_insignificant_whitespace() {
        assert_eq!(
            kept("\n{ \"status\" : \"pass\",\r\n\t\"b\": [1, 2.50, {\"a b\": \"x \\\" y\"}] }\n")
                .as_deref(),
            Some(r#"{"status":"pass","b":[1,2.50,{"a b":"x \" y"}]}"#)
        );
        assert_eq!(kept("[ ]").as_deref(), Some("[]"));
        assert_eq!(kept("{\"a\": \"unterminated}"), None);
    }

    #[test]
    fn a_status_member_in_any_casing_makes_a_health_answer() {
        let has_status = |text: &str| parse(text.as_bytes()).map(|parsed| parsed.has_status);
        for (body, expected) in [
            (r#"{"status":"pass"}"#, Some(true)),
            (r#"{"Status":200}"#, Some(true)),
            (r#"{"STATUS":null,"x":1}"#, Some(true)),
            (r#"{"checks":{"status":"pass"}}"#, Some(false)),
            (
                r#"{"wan_ip":"203.0.113.7","password":"hunter2"}"#,
                Some(false),
            ),
            (r#"[{"status":"pass"}]"#, Some(false)),
            ("<h1>status</h1>", None),
        ] {
            assert_eq!(has_status(body), expected, "{body}");
        }
    }

    #[test]
    fn digests_show_size_and_a_keyed_hash_only() {
        let key = DigestKey::from_bytes(&[7; 32]).expect("32 bytes");
        let secret = br#"{"admin_password":"hunter2"}"#;
        let digest = BodyDigest::of(secret, &key);
        assert_eq!(digest.size, secret.len() as u64);
        let hex = digest.hash.to_string();
        assert!(
            hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{hex}"
        );
        assert_eq!(hex.parse::<DigestHash>(), Ok(digest.hash));
        assert_eq!(
            serde_json::to_string(&digest).unwrap_or_default(),
            format!(r#"{{"size":{},"hash":"{hex}"}}"#, secret.len())
        );
        assert_eq!("3f2a".parse::<DigestHash>(), Err(DigestHashError));
        assert_eq!(
            "zz2a9c01d4e5b6a7".parse::<DigestHash>(),
            Err(DigestHashError)
        );
        assert_eq!(
            BodyDigest::of(secret, &key),
            digest,
            "the same body, the same hash"
        );
        assert_ne!(
            BodyDigest::of(b"{\"admin_password\":\"hunter3\"}", &key).hash,
            digest.hash
        );
        let other_key = DigestKey::from_bytes(&[8; 32]).expect("32 bytes");
        assert_ne!(
            BodyDigest::of(secret, &other_key).hash,
            digest.hash,
            "another server's key, another hash: guessed bodies cannot be matched"
        );
        assert_ne!(DigestKey::random(), DigestKey::random());
        assert_eq!(format!("{key:?}"), "DigestKey(***)");
        assert!(DigestKey::from_bytes(&[0; 31]).is_none());
    }

    #[test]
    fn serializes_as_json_not_as_a_string() {
        let body = parse(br#"{ "status": "pass" }"#).map(|parsed| parsed.body);
        let record = serde_json::to_string(&body).unwrap_or_default();
        assert_eq!(record, r#"{"status":"pass"}"#);
        let back: Option<JsonBody> = serde_json::from_str(&record).unwrap_or(None);
        assert_eq!(back, body);
    }
}
