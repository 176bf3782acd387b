//! `telegram`: the Bot API's `sendMessage`: `POST {api_url}/bot<token>/sendMessage` with JSON
//! `chat_id` and `text` (plain text: no `parse_mode`, so nothing in a name is markup).

use serde_json::json;
use url::Url;

use super::text::Text;
use super::{HttpRequest, json};
use crate::config::Secret;

/// `{api_url}/bot<token>/sendMessage`.
pub fn send_message_url(api_url: &Url, token: &Secret) -> Url {
    let mut url = api_url.clone();
    let path = format!(
        "{}/bot{}/sendMessage",
        api_url.path().trim_end_matches('/'),
        token.expose()
    );
    url.set_path(&path);
    url
}

/// The request that delivers `event`.
pub fn request(api_url: &Url, token: &Secret, chat_id: &str, text: &Text) -> HttpRequest {
    // A numeric id goes as a number, `@channel` as a string, as the Bot API takes them.
    let chat: serde_json::Value = chat_id
        .parse::<i64>()
        .map_or_else(|_| json!(chat_id), |id| json!(id));
    HttpRequest {
        url: send_message_url(api_url, token),
        headers: Vec::new(),
        content_type: "application/json",
        body: json(&json!({
            "chat_id": chat,
            "text": format!("{}\n{}", text.title, text.body),
            "disable_web_page_preview": true,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::event;
    use super::*;
    use crate::config::channel::EventKind;

    #[test]
    fn send_message_with_chat_and_text() {
        let request = request(
            &"https://api.telegram.org".parse().expect("url"),
            &Secret::new("123:ABC".to_owned()),
            "-100200",
            &Text::of(&event(EventKind::Recovered, "nas", "ok"), "http://hc"),
        );
        assert_eq!(
            request.url.as_str(),
            "https://api.telegram.org/bot123:ABC/sendMessage"
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        assert_eq!(body["chat_id"], -100_200);
        assert!(
            body["text"]
                .as_str()
                .expect("text")
                .starts_with("nas is HEALTHY again\n")
        );
        let named = super::request(
            &"http://127.0.0.1:9/tg/".parse().expect("url"),
            &Secret::new("t".to_owned()),
            "@lab",
            &Text::of(&event(EventKind::Recovered, "nas", "ok"), "http://hc"),
        );
        assert_eq!(named.url.as_str(), "http://127.0.0.1:9/tg/bott/sendMessage");
        let body: serde_json::Value = serde_json::from_slice(&named.body).expect("JSON");
        assert_eq!(body["chat_id"], "@lab");
    }
}
