//! The data the store's tests write: monitors, checks and times (tests/store.rs and
//! tests/store_contract.rs).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use healthchecker_server::health::{Health, Outcome, State, Transition};
use healthchecker_server::probe::{BodyDigest, CheckRecord, JsonBody, Reason};
use healthchecker_server::registry::{AppName, MonitorSpec, Registration};
use healthchecker_server::store::{CheckWrite, LoggedCheck, StoredMonitor};

pub fn name(text: &str) -> AppName {
    AppName::parse(text).expect("valid name")
}

pub fn spec(port: u16) -> MonitorSpec {
    Registration {
        url: Some(format!("http://192.168.1.20:{port}")),
        email: Some(healthchecker_server::registry::Emails::Many(vec![
            "me@example.com".into(),
            "ops@example.com".into(),
        ])),
        interval: Some(10),
        timeout: Some(3),
        unhealthy: Some(3),
        healthy: Some(4),
        path: Some("/api/health?full=1".into()),
        ..Registration::default()
    }
    .validate()
    .expect("valid spec")
}

/// A time in 2100 plus `seconds`: in the future, so the store's own pruning by the real clock (at
/// start and hourly) never touches what the tests write.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(4_102_444_800 + seconds, 123_456_789)
        .single()
        .expect("valid time")
}

pub fn monitor(text: &str) -> StoredMonitor {
    StoredMonitor {
        source: Default::default(),
        name: name(text),
        spec: spec(9090),
        paused: false,
        registered_at: at(0),
        health: Health::default(),
        since: None,
        last_check: None,
        last_transition: None,
        alerting: Some("{}".to_owned()),
        maintenance: None,
        push: None,
    }
}

/// Check number `n` of `app`: a pass with a JSON body, or (every third) a failure without one.
pub fn check(app: &str, n: u32) -> CheckWrite {
    let pass = !n.is_multiple_of(3);
    let record = CheckRecord {
        cert_not_after: None,
        cert_days_left: None,
        time: at(i64::from(n) * 10),
        outcome: if pass { Outcome::Pass } else { Outcome::Fail },
        reason: if pass { Reason::Ok } else { Reason::Timeout },
        http_status: pass.then_some(200),
        latency: Duration::from_nanos(1_234_567 + u64::from(n)),
        body: pass.then(|| {
            let body = serde_json::json!({"status": "pass", "n": n, "version": "1.2"});
            JsonBody::from_text(body.to_string()).expect("JSON")
        }),
        // A failure's body that is not a health answer: kept as its size and hash.
        body_digest: (!pass).then(|| {
            Box::new(BodyDigest {
                size: u64::from(n) * 100,
                hash: format!("{n:016x}").parse().expect("hex"),
            })
        }),
        detail: Some(format!("check {n}")),
    };
    let state = if pass {
        State::Healthy
    } else {
        State::Degraded
    };
    CheckWrite {
        name: name(app),
        check: LoggedCheck {
            record,
            state,
            ping: None,
        },
        health: Health {
            state,
            passes: u32::from(pass),
            fails: u32::from(!pass),
            recovering: false,
        },
        transition: n.is_multiple_of(3).then(|| Transition {
            time: at(i64::from(n) * 10),
            from: State::Healthy,
            to: State::Degraded,
            reason: format!("timeout: check {n}"),
        }),
        alerting: None,
        messages: Vec::new(),
        withdraw: Vec::new(),
        release: None,
        push: None,
    }
}
