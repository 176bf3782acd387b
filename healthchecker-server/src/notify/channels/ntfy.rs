//! `ntfy`: a push to a topic (ntfy.sh or a self-hosted server).
//!
//! `POST <topic URL>` with the text as the body and the headers ntfy documents: `Title`
//! (RFC 2047-encoded when it is not ASCII, which ntfy decodes), `Priority` (`urgent` for
//! unhealthy and its reminders, `default` otherwise), `Tags` (an emoji per event), and
//! `Authorization: Bearer <token>` for a protected topic.

use base64::Engine as _;
use url::Url;

use super::HttpRequest;
use super::text::Text;
use crate::config::Secret;
use crate::config::channel::EventKind;

/// The `Priority` of `kind`.
pub fn priority(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Unhealthy | EventKind::Reminder | EventKind::Storm => "urgent",
        EventKind::Degraded | EventKind::Recovered | EventKind::Test | EventKind::Flapping => {
            "default"
        }
    }
}

/// The `Tags` of `kind` (ntfy shows them as emoji).
pub fn tags(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Unhealthy | EventKind::Reminder => "rotating_light",
        EventKind::Degraded => "warning",
        EventKind::Recovered => "white_check_mark",
        EventKind::Test => "test_tube",
        EventKind::Flapping => "repeat",
        EventKind::Storm => "cloud_with_lightning",
    }
}

/// `text` as a header value: as it is when it is ASCII, else an RFC 2047 encoded word.
pub fn header_text(text: &str) -> String {
    if text.is_ascii() {
        text.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    }
}

/// The request that delivers `event`.
pub fn request(url: &Url, token: Option<&Secret>, text: &Text) -> HttpRequest {
    let mut headers = vec![
        ("Title".to_owned(), header_text(&text.title)),
        ("Priority".to_owned(), priority(text.kind).to_owned()),
        ("Tags".to_owned(), tags(text.kind).to_owned()),
    ];
    if let Some(token) = token {
        headers.push((
            "Authorization".to_owned(),
            format!("Bearer {}", token.expose()),
        ));
    }
    HttpRequest {
        url: url.clone(),
        headers,
        content_type: "text/plain; charset=utf-8",
        body: text.body.clone().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HOSTILE_APP, HOSTILE_REASON, event};
    use super::*;

    #[test]
    fn headers_as_ntfy_documents_them() {
        let url: Url = "https://ntfy.sh/my-lab-alerts".parse().expect("url");
        let token = Secret::new("tk_abc".to_owned());
        let table = [
            (
                EventKind::Unhealthy,
                "nas is UNHEALTHY",
                "urgent",
                "rotating_light",
            ),
            (
                EventKind::Reminder,
                "nas is still UNHEALTHY",
                "urgent",
                "rotating_light",
            ),
            (EventKind::Degraded, "nas is DEGRADED", "default", "warning"),
            (
                EventKind::Recovered,
                "nas is HEALTHY again",
                "default",
                "white_check_mark",
            ),
        ];
        for (kind, title, priority, tags) in table {
            let request = request(
                &url,
                Some(&token),
                &Text::of(&event(kind, "nas", "ok"), "http://hc"),
            );
            assert_eq!(
                request.headers,
                [
                    ("Title".to_owned(), title.to_owned()),
                    ("Priority".to_owned(), priority.to_owned()),
                    ("Tags".to_owned(), tags.to_owned()),
                    ("Authorization".to_owned(), "Bearer tk_abc".to_owned()),
                ],
                "{kind}"
            );
            assert_eq!(request.url, url);
        }
    }

    #[test]
    fn unicode_titles_are_encoded_and_hostile_ones_stay_one_line() {
        assert_eq!(header_text("Küche"), "=?UTF-8?B?S8O8Y2hl?=");
        let request = request(
            &"https://ntfy.sh/x".parse().expect("url"),
            None,
            &Text::of(
                &event(EventKind::Unhealthy, HOSTILE_APP, HOSTILE_REASON),
                "http://hc",
            ),
        );
        for (_, value) in &request.headers {
            assert!(
                axum::http::HeaderValue::from_str(value).is_ok(),
                "{value:?}"
            );
        }
    }
}
