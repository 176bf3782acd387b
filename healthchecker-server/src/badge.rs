//! Status badges for READMEs and wikis (`GET /badge/{app}.svg`): a small SVG in the flat style of
//! shields.io, a grey label on the left and a coloured message on the right.
//!
//! A pure function of the words and the colour. Text widths are estimated from the average
//! advance of Verdana at 11 px (what shields.io draws with), per character class; a badge is
//! a few dozen characters, so this stays within a few pixels of shields' own measure. Every piece
//! of text is XML-escaped.

use std::fmt::Write as _;

use crate::health::State;

/// Colours of the message side (shields.io's named colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// `#4c1`: healthy, uptime of 99.9 % or more.
    BrightGreen,
    /// `#97ca00`: uptime of 99 % or more.
    Green,
    /// `#dfb317`: degraded, uptime of 95 % or more.
    Yellow,
    /// `#fe7d37`: uptime of 90 % or more.
    Orange,
    /// `#e05d44`: unhealthy, lower uptime.
    Red,
    /// `#007ec6`: in maintenance.
    Blue,
    /// `#9f9f9f`: unknown, paused, no checks yet.
    LightGrey,
}

impl Color {
    /// The colour as SVG wants it.
    pub fn hex(self) -> &'static str {
        match self {
            Color::BrightGreen => "#4c1",
            Color::Green => "#97ca00",
            Color::Yellow => "#dfb317",
            Color::Orange => "#fe7d37",
            Color::Red => "#e05d44",
            Color::Blue => "#007ec6",
            Color::LightGrey => "#9f9f9f",
        }
    }

    /// The colour of a monitor in `state`.
    pub fn of_state(state: State) -> Color {
        match state {
            State::Healthy => Color::BrightGreen,
            State::Degraded => Color::Yellow,
            State::Unhealthy => Color::Red,
            State::Unknown => Color::LightGrey,
        }
    }

    /// The colour of an uptime in percent (`None`: no checks).
    pub fn of_uptime(percent: Option<f64>) -> Color {
        match percent {
            None => Color::LightGrey,
            Some(p) if p >= 99.9 => Color::BrightGreen,
            Some(p) if p >= 99.0 => Color::Green,
            Some(p) if p >= 95.0 => Color::Yellow,
            Some(p) if p >= 90.0 => Color::Orange,
            Some(_) => Color::Red,
        }
    }
}

/// An uptime as a badge shows it: `99.95%`, `100%`, `no data`.
pub fn uptime_text(percent: Option<f64>) -> String {
    match percent {
        None => "no data".to_owned(),
        Some(p) if p >= 100.0 => "100%".to_owned(),
        Some(p) => {
            let text = format!("{p:.2}");
            format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
        }
    }
}

/// Estimated width of `text` in Verdana 11 px, in pixels.
fn width(text: &str) -> u32 {
    let tenths: u32 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 32,
            'f' | 't' | 'r' | 'I' | ' ' | '(' | ')' | '[' | ']' | '-' => 45,
            'm' | 'w' | 'M' | 'W' | '%' => 98,
            'A'..='Z' => 75,
            _ => 65,
        })
        .sum();
    tenths.div_ceil(10)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The badge `label | message` with the message side in `color`.
pub fn render(label: &str, message: &str, color: Color) -> String {
    let (left, right) = (width(label) + 10, width(message) + 10);
    let total = left + right;
    let (label, message) = (escape(label), escape(message));
    let mut svg = String::with_capacity(1024);
    // Text is drawn at 10x and scaled down, as shields does, for crisp sub-pixel positions.
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{color}"/><rect width="{total}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{label}</text><text x="{lx}" y="140" transform="scale(.1)">{label}</text><text aria-hidden="true" x="{mx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)">{message}</text><text x="{mx}" y="140" transform="scale(.1)">{message}</text></g></svg>"##,
        color = color.hex(),
        lx = left * 5,
        mx = left * 10 + right * 5,
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_is_svg_with_its_words_escaped() {
        let svg = render("a<b>&\"c\"", "UNHEALTHY", Color::Red);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(
            svg.contains("a&lt;b&gt;&amp;&quot;c&quot;: UNHEALTHY"),
            "{svg}"
        );
        assert!(!svg.contains("a<b>"), "{svg}");
        assert!(svg.contains("fill=\"#e05d44\""), "{svg}");
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn wider_words_make_wider_badges() {
        let width_of = |svg: String| -> u32 {
            let rest = &svg[svg.find("width=\"").expect("width") + 7..];
            rest[..rest.find('"').expect("quote")]
                .parse()
                .expect("number")
        };
        assert!(
            width_of(render("media-center", "HEALTHY", Color::BrightGreen))
                > width_of(render("nas", "HEALTHY", Color::BrightGreen))
        );
    }

    #[test]
    fn uptime_words_and_colours() {
        assert_eq!(uptime_text(Some(100.0)), "100%");
        assert_eq!(uptime_text(Some(99.953)), "99.95%");
        assert_eq!(uptime_text(Some(99.5)), "99.5%");
        assert_eq!(uptime_text(None), "no data");
        assert_eq!(Color::of_uptime(Some(99.95)), Color::BrightGreen);
        assert_eq!(Color::of_uptime(Some(99.5)), Color::Green);
        assert_eq!(Color::of_uptime(Some(96.0)), Color::Yellow);
        assert_eq!(Color::of_uptime(Some(91.0)), Color::Orange);
        assert_eq!(Color::of_uptime(Some(50.0)), Color::Red);
        assert_eq!(Color::of_uptime(None), Color::LightGrey);
    }
}
