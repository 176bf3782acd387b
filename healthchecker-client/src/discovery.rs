//! Where the healthchecker server is.
//!
//! Today: `HEALTHCHECKER_URL`. The extension point for mDNS/DNS-SD discovery
//! (`_healthchecker._tcp.local.`, default timeout 3 s) is [`find_server`]: it is the only place
//! that decides where the server is, so a browse step slots in after the environment lookup and
//! before [`Error::ServerNotFound`]. Re-discovery when the server moved (a new port after a
//! restart) belongs here too, called by `HealthCheckerServer` when a call finds it unreachable.

use url::Url;

use crate::server::parse_base_url;
use crate::{ENV_URL, Error, Result};

/// Finds the server's base URL.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `HEALTHCHECKER_URL` is set but not an http(s) URL;
/// [`Error::ServerNotFound`] when no server could be found.
pub(crate) async fn find_server() -> Result<Url> {
    if let Some(url) = from_env(std::env::var(ENV_URL).ok())? {
        return Ok(url);
    }
    // mDNS browsing goes here (a later issue); until then there is nothing else to try.
    Err(Error::ServerNotFound)
}

/// The server URL from the value of `HEALTHCHECKER_URL`; unset or blank means "not given".
fn from_env(value: Option<String>) -> Result<Option<Url>> {
    match value {
        Some(text) if !text.trim().is_empty() => parse_base_url(ENV_URL, &text).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_value_table() {
        assert_eq!(from_env(None).expect("unset"), None);
        assert_eq!(from_env(Some(String::new())).expect("empty"), None);
        assert_eq!(from_env(Some("  ".into())).expect("blank"), None);
        assert_eq!(
            from_env(Some("http://127.0.0.1:8080".into()))
                .expect("valid")
                .map(String::from),
            Some("http://127.0.0.1:8080/".to_owned())
        );
        let err = from_env(Some("127.0.0.1:8080".into())).expect_err("no scheme");
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "HEALTHCHECKER_URL",
                    ..
                }
            ),
            "{err}"
        );
    }
}
