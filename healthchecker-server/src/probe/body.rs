//! A JSON body as the app sent it, and the one thing [`classify`](super::classify) asks of it:
//! its `status`.
//!
//! A check's body goes to the log and the API and is never looked at again, so it is kept as JSON
//! text (insignificant whitespace removed) instead of a parsed tree: reading it is one scan that
//! allocates only the text, and writing it to the log or an API answer copies the text. At 2,000
//! checks a second, building a `serde_json::Value` (a map, a string per key), cloning it and
//! encoding it again for the log cost about a tenth of the server's CPU.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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

/// A body that is a JSON object or array: kept, and what it says.
pub(super) struct Parsed<'a> {
    /// The body, for the log.
    pub(super) body: JsonBody,
    /// Its `status`.
    pub(super) status: Status<'a>,
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
        status: shape.0,
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
struct Shape<'a>(Status<'a>);

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
        Ok(Shape(Status::Silent))
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
        let status = match exact.or(other_casing) {
            Some(Some(text)) => Status::Text(text),
            _ => Status::Silent,
        };
        Ok(Shape(status))
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
    fn serializes_as_json_not_as_a_string() {
        let body = parse(br#"{ "status": "pass" }"#).map(|parsed| parsed.body);
        let record = serde_json::to_string(&body).unwrap_or_default();
        assert_eq!(record, r#"{"status":"pass"}"#);
        let back: Option<JsonBody> = serde_json::from_str(&record).unwrap_or(None);
        assert_eq!(back, body);
    }
}
