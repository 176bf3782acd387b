//! `slack`: a Slack incoming webhook (Mattermost takes the same): JSON `text`. Slack's control
//! characters `&`, `<` and `>` are escaped as its documentation says, and an `@` gets a word
//! joiner after it, so neither `<!channel>` nor `@channel` in an app's name notifies anyone.

use serde_json::json;
use url::Url;

use super::text::Text;
use super::{HttpRequest, json};

/// `text` safe for Slack's and Mattermost's markup.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('@', "@\u{2060}")
}

/// The request that delivers `event`.
pub fn request(url: &Url, text: &Text) -> HttpRequest {
    let text = format!("*{}*\n{}", escape(&text.title), escape(&text.body));
    HttpRequest {
        url: url.clone(),
        headers: Vec::new(),
        content_type: "application/json",
        body: json(&json!({ "text": text })),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{HOSTILE_APP, HOSTILE_REASON, event};
    use super::*;
    use crate::config::channel::EventKind;

    #[test]
    fn text_with_markup_and_mentions_escaped() {
        assert_eq!(
            escape("a <!channel> & @here"),
            "a &lt;!channel&gt; &amp; @\u{2060}here"
        );
        let request = request(
            &"https://hooks.slack.com/services/T/B/X"
                .parse()
                .expect("url"),
            &Text::of(
                &event(EventKind::Unhealthy, HOSTILE_APP, HOSTILE_REASON),
                "http://hc",
            ),
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("JSON");
        let text = body["text"].as_str().expect("text");
        assert!(
            text.starts_with("*x\" &lt;a&gt; @\u{2060}everyone &lt;!channel&gt;"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"));
    }
}
