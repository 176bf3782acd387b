//! A loopback receiver for the HTTP channels: it records every request (path, headers, body and
//! the status it answered) for the test to read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::Value;

/// One request as a receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }
}

#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<Received>>>);

impl Log {
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The delivered (2xx) requests to `path` whose text mentions `needle`.
    pub fn delivered(&self, path: &str, needle: &str) -> usize {
        self.on(path)
            .iter()
            .filter(|r| r.status < 300 && String::from_utf8_lossy(&r.body).contains(needle))
            .count()
    }
}

/// A receiver for every kind on one loopback port: `/flaky` answers 500 to every other request,
/// `/refuses` 400, `/hangs` nothing for a minute, any other path 200. Returns its base URL.
pub async fn receiver(log: Log) -> String {
    async fn record(
        State(log): State<Log>,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
        let path = uri.path().to_owned();
        let earlier = log.on(&path).len();
        let status = match path.as_str() {
            // 500 to the first attempt of each message: the second is delivered
            "/flaky" if earlier % 2 == 0 => 500,
            "/refuses" => 400,
            "/hangs" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                200
            }
            _ => 200,
        };
        log.0.lock().expect("lock").push(Received {
            path,
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        value.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            status,
        });
        (StatusCode::from_u16(status).expect("status"), "{}")
    }
    super::serve(
        Router::new()
            .route("/{*path}", post(record))
            .with_state(log),
    )
    .await
}
