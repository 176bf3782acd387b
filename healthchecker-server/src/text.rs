//! Text from outside (app names, check details, reasons, hosts) on one line: the one rule of
//! which characters are never shown as they are.
//!
//! Whoever registers an app, and whatever an app answers, may put characters into the server's
//! mail headers, mail bodies and log lines. [`is_unsafe`] names the characters that could start
//! a new line or header, or hide or reorder what a reader sees; each place that shows outside
//! text either refuses them (an app name), escapes them (a check's detail) or replaces them
//! (a mail line). A leaf: it imports nothing of this crate.

/// Whether `c` may never appear as it is in a line shown to a person: control characters (CR,
/// LF, tab, ...), the line and paragraph separators, and the invisible formatting characters
/// (zero-width spaces and joiners, bidirectional marks and overrides, word joiners and invisible
/// operators, the byte-order mark, the soft hyphen).
///
/// # Examples
///
/// ```
/// use healthchecker_server::text::is_unsafe;
///
/// assert!(is_unsafe('\n') && is_unsafe('\u{202E}') && is_unsafe('\u{00AD}'));
/// assert!(!is_unsafe('é') && !is_unsafe(' '));
/// ```
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{00AD}')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}')
}
