//! `discord`: a Discord webhook: JSON `content` (a headline) and one embed with the details, and
//! `allowed_mentions` empty, so an app named `@everyone` pings nobody.

use serde_json::json;
use url::Url;

use super::text::Text;
use super::{HttpRequest, json};
use crate::config::channel::EventKind;

/// The embed's colour of `kind` (red, amber, green, grey).
pub fn colour(kind: EventKind) -> u32 {
    match kind {
        EventKind::Unhealthy | EventKind::Reminder | EventKind::Storm => 0xD9_3025,
        EventKind::Degraded | EventKind::Flapping => 0xF2_A900,
        EventKind::Recovered => 0x2E_A043,
        EventKind::Test => 0x80_8080,
    }
}

/// The request that delivers `event`.
pub fn request(url: &Url, text: &Text) -> HttpRequest {
    HttpRequest {
        url: url.clone(),
        headers: Vec::new(),
        content_type: "application/json",
        body: json(&json!({
            "content": text.title,
            "embeds": [{
                "title": text.title,
                "description": text.body,
                "color": colour(text.kind),
                "timestamp": text.time.to_rfc3339(),
            }],
            "allowed_mentions": {"parse": []},
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HOSTILE_APP, HOSTILE_REASON, event};
    use super::*;

    #[test]
    fn content_embed_and_no_mentions() {
        let request = request(
            &"https://discord.com/api/webhooks/1/t".parse().expect("url"),
            &Text::of(
                &event(EventKind::Unhealthy, HOSTILE_APP, HOSTILE_REASON),
                "http://hc",
            ),
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        assert!(
            body["content"]
                .as_str()
                .expect("content")
                .ends_with("is UNHEALTHY")
        );
        assert_eq!(body["embeds"][0]["color"], 0xD9_3025);
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
    }
}
