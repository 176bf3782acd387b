//! `gotify`: `POST {url}/message` with the app token in `X-Gotify-Key` and a JSON body of
//! `title`, `message` and `priority` (8 for unhealthy and its reminders, 5 otherwise: Gotify's
//! clients notify from 4 and make noise from 8).

use serde_json::json;
use url::Url;

use super::text::Text;
use super::{HttpRequest, json};
use crate::config::Secret;
use crate::config::channel::EventKind;

/// Gotify's `priority` of `kind`.
pub fn priority(kind: EventKind) -> u8 {
    match kind {
        EventKind::Unhealthy | EventKind::Reminder | EventKind::Storm => 8,
        EventKind::Degraded | EventKind::Recovered | EventKind::Test | EventKind::Flapping => 5,
    }
}

/// `{url}/message`, whether or not `url` ends in `/`.
pub fn message_url(url: &Url) -> Url {
    let mut url = url.clone();
    let path = format!("{}/message", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// The request that delivers `event`.
pub fn request(url: &Url, token: &Secret, text: &Text) -> HttpRequest {
    HttpRequest {
        url: message_url(url),
        headers: vec![("X-Gotify-Key".to_owned(), token.expose().to_owned())],
        content_type: "application/json",
        body: json(&json!({
            "title": text.title,
            "message": text.body,
            "priority": priority(text.kind),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::event;
    use super::*;

    #[test]
    fn message_with_key_title_and_priority() {
        for base in [
            "http://gotify.lan",
            "http://gotify.lan/",
            "http://lan/gotify/",
        ] {
            let url: Url = base.parse().expect("url");
            assert!(message_url(&url).as_str().ends_with("/message"), "{base}");
            assert!(!message_url(&url).as_str().contains("//message"), "{base}");
        }
        let request = request(
            &"http://gotify.lan".parse().expect("url"),
            &Secret::new("AbC".to_owned()),
            &Text::of(&event(EventKind::Unhealthy, "nas", "timeout"), "http://hc"),
        );
        assert_eq!(request.url.as_str(), "http://gotify.lan/message");
        assert_eq!(
            request.headers,
            [("X-Gotify-Key".to_owned(), "AbC".to_owned())]
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["title"], "nas is UNHEALTHY");
        assert_eq!(body["priority"], 8);
        assert!(body["message"].as_str().expect("text").contains("timeout"));
    }
}
