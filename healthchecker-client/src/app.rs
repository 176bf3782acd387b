//! The checked name an app is monitored under.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The longest app name, in characters.
const MAX_CHARS: usize = 64;

const EXPECTED: &str = "1 to 64 characters without control characters, invisible formatting \
                        characters, slashes, or spaces at either end, and not \".\" or \"..\"";

/// The name an app is monitored under, checked: 1–64 characters, no control or invisible
/// formatting characters, no slashes, no spaces at either end, not `.` or `..`.
///
/// The same rules as the server's, so a bad name fails before any request is made. The name
/// is sent as one URL path segment, percent-encoded, so spaces and other punctuation are fine.
///
/// # Examples
///
/// ```
/// use healthchecker_client::AppName;
///
/// let name = AppName::parse("Media Center")?;
/// assert_eq!(name.as_str(), "Media Center");
/// assert!(AppName::parse("").is_err());
/// assert!(AppName::parse("a/b").is_err());
/// # Ok::<(), healthchecker_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(String);

impl AppName {
    /// Checks `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for the field `app`, quoting the name and saying what is valid.
    ///
    /// # Examples
    ///
    /// ```
    /// use healthchecker_client::{AppName, Error};
    ///
    /// let err = AppName::parse("bad\nname").unwrap_err();
    /// assert!(matches!(err, Error::InvalidInput { field: "app", .. }));
    /// ```
    pub fn parse(name: &str) -> Result<AppName, Error> {
        let length = name.chars().count();
        let bad_char = |c: char| {
            c.is_control()
                || matches!(c, '/' | '\\')
                // zero-width, bidirectional and other invisible formatting characters
                || matches!(
                    c,
                    '\u{200B}'..='\u{200F}'
                        | '\u{202A}'..='\u{202E}'
                        | '\u{2060}'..='\u{206F}'
                        | '\u{FEFF}'
                        | '\u{2028}'
                        | '\u{2029}'
                )
        };
        if length == 0
            || length > MAX_CHARS
            || name.trim() != name
            || matches!(name, "." | "..")
            || name.chars().any(bad_char)
        {
            return Err(Error::invalid("app", name, EXPECTED));
        }
        Ok(AppName(name.to_owned()))
    }

    /// The name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use healthchecker_client::AppName;
    /// assert_eq!(AppName::parse("nas")?.as_str(), "nas");
    /// # Ok::<(), healthchecker_client::Error>(())
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AppName {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        AppName::parse(name)
    }
}

impl AsRef<str> for AppName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_table() {
        let long_ok = "é".repeat(64);
        let too_long = "a".repeat(65);
        let table: &[(&str, bool)] = &[
            ("media-center", true),
            ("Sample HealthChecker App", true),
            ("a", true),
            (&long_ok, true),
            ("nas?x=1#y%20", true),
            ("", false),
            (&too_long, false),
            (" lead", false),
            ("trail ", false),
            ("a/b", false),
            ("a\\b", false),
            ("line\nbreak", false),
            ("cr\rlf", false),
            ("tab\there", false),
            ("nul\0", false),
            ("zero\u{200B}width", false),
            ("bidi\u{202E}", false),
            (".", false),
            ("..", false),
        ];
        for (name, ok) in table {
            assert_eq!(AppName::parse(name).is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn error_names_the_field_and_quotes_the_value() {
        let err = AppName::parse("x\ny").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            format!("invalid app: \"x\\ny\"; expected {EXPECTED}")
        );
    }
}
