//! The monitors of the config file: `[[monitor]]` tables validated into [`Declared`] monitors.
//!
//! Devices that cannot register themselves (a media center, a printer, a NAS) are declared by the
//! operator, Heartbeat-style:
//!
//! ```toml
//! [[monitor]]
//! name = "media-center"
//! url = "http://192.168.1.30:8096"
//! path = "/health"
//! interval = 30
//! email = "me@example.com"
//! ```
//!
//! A table takes every field of a registration ([`Registration`]: `url`, `email`, `interval`,
//! `timeout`, `unhealthy`, `healthy`, `path`, `notify`, `expect_status`, `cert_warn_days`,
//! `tls_verify`; `kind = "push"` with `period` or `schedule` and `tz`, and `grace`, for a push
//! monitor, whose ping key is kept across restarts and reloads) plus `name`, and is validated by the same rules as a registration over the API,
//! with the config: a bad table stops the start (and a reload changes nothing), the error naming
//! the file, the table and the field ([`TableError`]). The live set takes them over with
//! [`crate::monitors::Monitors::reconcile`].

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::TableError;
use super::channel::Channel;
use crate::registry::{AppName, MonitorSpec, Registration};

/// A `[[monitor]]` table as written in the config file, before validation: its `name`, and the
/// registration fields as they came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawMonitor {
    /// The monitor's name, as the API and the mail name it.
    pub name: Option<String>,
    /// Every other key of the table: the fields of a registration.
    #[serde(flatten)]
    pub fields: BTreeMap<String, figment::value::Value>,
}

/// A monitor of the config file: its name and its validated definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// Its name.
    pub name: AppName,
    /// What is checked, and how.
    pub spec: MonitorSpec,
}

/// Validates the `[[monitor]]` tables; their `notify` must name `channels`.
///
/// # Errors
///
/// The first [`TableError`] (kind `monitor`): a missing or invalid field, an unknown field, a duplicate name, a
/// channel that does not exist.
pub fn validate(raw: &[RawMonitor], channels: &[Channel]) -> Result<Vec<Declared>, TableError> {
    let mut declared = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for (index, table) in raw.iter().enumerate() {
        let label = table
            .name
            .clone()
            .unwrap_or_else(|| format!("#{} (no name)", index + 1));
        let error = |field: &str, reason: String| TableError {
            kind: "monitor",
            table: label.clone(),
            field: field.to_owned(),
            reason,
        };
        let Some(name) = &table.name else {
            return Err(error(
                "name",
                "is missing: every monitor needs a name (1 to 64 characters)".to_owned(),
            ));
        };
        let name = AppName::parse(name).map_err(|why| TableError {
            table: format!("#{}", index + 1),
            ..error(
                "name",
                format!("{} is not a name: {}", why.value, why.expected),
            )
        })?;
        let registration = registration(table).map_err(|(field, reason)| error(&field, reason))?;
        let spec = registration.validate().map_err(|why| {
            let value = if why.value.is_empty() {
                String::new()
            } else {
                format!("{} ", why.value)
            };
            error(&why.field, format!("{value}is invalid: {}", why.expected))
        })?;
        if let Some(why) = spec.unknown_channel(channels.iter().map(|c| c.name.as_str())) {
            return Err(error(
                "notify",
                format!("{} is not a channel: {}", why.value, why.expected),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(error(
                "name",
                "is used by an earlier [[monitor]]; names must be unique".to_owned(),
            ));
        }
        declared.push(Declared { name, spec });
    }
    Ok(declared)
}

/// The registration fields of a table, read by the same rules as an API body (an unknown field
/// is refused); the error names the field.
fn registration(table: &RawMonitor) -> Result<Registration, (String, String)> {
    let dict: figment::value::Dict = table
        .fields
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    figment::value::Value::from(dict)
        .deserialize::<Registration>()
        .map_err(|error| {
            let field = match &error.kind {
                figment::error::Kind::UnknownField(field, _) => field.clone(),
                _ => error.path.last().cloned().unwrap_or_default(),
            };
            let reason = match &error.kind {
                figment::error::Kind::UnknownField(_, _) => {
                    "is not a field of a monitor; the fields are name, url, email, interval, \
                                          timeout, unhealthy, healthy, path, notify, expect_status, cert_warn_days, \
                     tls_verify; for a push monitor kind = \"push\", period, schedule, tz, grace"
                        .to_owned()
                }
                kind => format!("is invalid: {kind}"),
            };
            (field, reason)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(toml: &str) -> Vec<RawMonitor> {
        #[derive(Deserialize)]
        struct File {
            monitor: Vec<RawMonitor>,
        }
        use figment::providers::Format as _;
        figment::Figment::from(figment::providers::Toml::string(toml))
            .extract::<File>()
            .expect("tables")
            .monitor
    }

    #[test]
    fn a_table_takes_every_registration_field() {
        let declared = validate(
            &tables(
                r#"
                [[monitor]]
                name = "media-center"
                url = "http://192.168.1.30:8096"
                path = "/health"
                interval = 30
                timeout = 5
                unhealthy = 3
                healthy = 2
                email = ["me@example.com", "you@example.com"]
                expect_status = "200-299"

                [[monitor]]
                name = "nas"
                url = "tls://192.168.1.40:5001"
                cert_warn_days = 30
                tls_verify = false

                [[monitor]]
                name = "printer"
                url = "icmp://192.168.1.50"
                email = "me@example.com"
                "#,
            ),
            &[],
        )
        .expect("valid");
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["media-center", "nas", "printer"]);
        let media = &declared[0].spec;
        assert_eq!(media.check_url(), "http://192.168.1.30:8096/health");
        assert_eq!((media.unhealthy, media.healthy), (3, 2));
        assert_eq!(media.emails.len(), 2);
        assert!(media.expect_status.accepts(204));
        assert_eq!(
            (declared[1].spec.cert_warn_days, declared[1].spec.tls_verify),
            (30, false)
        );
        assert_eq!(declared[2].spec.emails, ["me@example.com"]);
    }

    /// Each row: a table, then the error it gets.
    #[test]
    fn errors_name_the_table_and_the_field() {
        let rows: &[(&str, &str)] = &[
            (
                "url = \"http://a\"",
                "[[monitor]] #1 (no name): `name` is missing: every monitor needs a name (1 to 64 characters)",
            ),
            (
                "name = \"a/b\"\nurl = \"http://a\"",
                "[[monitor]] #1: `name` \"a/b\" is not a name: 1 to 64 characters",
            ),
            (
                "name = \"nas\"",
                "[[monitor]] nas: `url` \"(missing)\" is invalid",
            ),
            (
                "name = \"nas\"\nurl = \"http://a\"\ninterval = 3",
                "[[monitor]] nas: `interval` \"3\" is invalid: from 5 to 300 seconds",
            ),
            (
                "name = \"nas\"\nurl = \"http://a\"\nintervall = 30",
                "[[monitor]] nas: `intervall` is not a field of a monitor",
            ),
            (
                "name = \"nas\"\nurl = \"http://a\"\ninterval = \"often\"",
                "[[monitor]] nas: `interval` is invalid: invalid type",
            ),
            (
                "name = \"nas\"\nurl = \"tcp://a:22\"\npath = \"/x\"",
                "[[monitor]] nas: `path` is invalid: only for http:// and https:// monitors",
            ),
            (
                "name = \"nas\"\nurl = \"http://a\"\nnotify = [\"phone\"]",
                "[[monitor]] nas: `notify` \"phone\" is not a channel",
            ),
        ];
        for (table, expected) in rows {
            let error = validate(&tables(&format!("[[monitor]]\n{table}\n")), &[])
                .expect_err(table)
                .to_string();
            assert!(error.starts_with(expected), "{table}: {error}");
        }
        let twice = "[[monitor]]\nname = \"nas\"\nurl = \"http://a\"\n";
        let error = validate(&tables(&format!("{twice}{twice}")), &[]).expect_err("twice");
        assert_eq!(
            error.to_string(),
            "[[monitor]] nas: `name` is used by an earlier [[monitor]]; names must be unique"
        );
    }
}
