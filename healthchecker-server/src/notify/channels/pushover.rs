//! `pushover`: `POST {api_url}/1/messages.json`, form-encoded as Pushover documents it: `token`
//! (the application), `user` (the user or group key), `title`, `message`, and `priority` (1,
//! high, for unhealthy and its reminders; 0 otherwise).

use url::Url;

use super::HttpRequest;
use super::text::Text;
use crate::config::Secret;
use crate::config::channel::EventKind;

/// Pushover's `priority` of `kind`.
pub fn priority(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Unhealthy | EventKind::Reminder | EventKind::Storm => "1",
        EventKind::Degraded | EventKind::Recovered | EventKind::Test | EventKind::Flapping => "0",
    }
}

/// The request that delivers `event`.
pub fn request(api_url: &Url, token: &Secret, user: &Secret, text: &Text) -> HttpRequest {
    let mut url = api_url.clone();
    let path = format!("{}/1/messages.json", api_url.path().trim_end_matches('/'));
    url.set_path(&path);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token.expose())
        .append_pair("user", user.expose())
        .append_pair("title", &text.title)
        .append_pair("message", &text.body)
        .append_pair("priority", priority(text.kind))
        .finish();
    HttpRequest {
        url,
        headers: Vec::new(),
        content_type: "application/x-www-form-urlencoded",
        body: body.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::event;
    use super::*;

    #[test]
    fn form_with_token_user_title_message_priority() {
        let request = request(
            &"https://api.pushover.net".parse().expect("url"),
            &Secret::new("azGDORePK8gMaC0QOYAMyEEuzJnyUi".to_owned()),
            &Secret::new("uQiRzpo4DXghDmr9QzzfQu27cmVRsG".to_owned()),
            &Text::of(
                &event(EventKind::Unhealthy, "nas & co", "timeout"),
                "http://hc",
            ),
        );
        assert_eq!(
            request.url.as_str(),
            "https://api.pushover.net/1/messages.json"
        );
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(field("token"), "azGDORePK8gMaC0QOYAMyEEuzJnyUi");
        assert_eq!(field("user"), "uQiRzpo4DXghDmr9QzzfQu27cmVRsG");
        assert_eq!(field("title"), "nas & co is UNHEALTHY");
        assert_eq!(field("priority"), "1");
        assert!(field("message").contains("timeout"));
    }
}
