//! Loopback apps for full-stack tests: `/health/{i}` for `i` in `0..n` on one port, each passing
//! (200) or failing (503) as the test says, every request noted with when it came and what it
//! was answered, so a test can count the checks of each monitor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;

/// One request that reached an app.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// When the app answered it.
    pub at: Instant,
    /// Whether it was answered with a 503.
    pub failed: bool,
}

struct Shared {
    failing: Vec<AtomicBool>,
    arrivals: Mutex<Vec<Vec<Arrival>>>,
    changed: tokio::sync::Notify,
}

/// `n` apps on one loopback port; they run until the test's runtime ends.
#[derive(Clone)]
pub struct Apps {
    /// The base URL, e.g. `http://127.0.0.1:41234`; app `i` is at `{url}/health/{i}`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Apps {
    /// Starts `n` passing apps.
    pub async fn start(n: usize) -> Apps {
        let shared = Arc::new(Shared {
            failing: (0..n).map(|_| AtomicBool::new(false)).collect(),
            arrivals: Mutex::new(vec![Vec::new(); n]),
            changed: tokio::sync::Notify::new(),
        });
        let router = {
            let shared = Arc::clone(&shared);
            Router::new().route(
                "/health/{i}",
                get(move |Path(i): Path<usize>| {
                    let shared = Arc::clone(&shared);
                    async move {
                        let Some(failing) = shared.failing.get(i) else {
                            return (StatusCode::NOT_FOUND, "no such app");
                        };
                        let failed = failing.load(Ordering::SeqCst);
                        shared.arrivals.lock().expect("lock")[i].push(Arrival {
                            at: Instant::now(),
                            failed,
                        });
                        shared.changed.notify_waiters();
                        if failed {
                            (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"fail"}"#)
                        } else {
                            (StatusCode::OK, r#"{"status":"pass"}"#)
                        }
                    }
                }),
            )
        };
        let url = super::serve(router).await;
        Apps { url, shared }
    }

    /// The path of app `i`.
    pub fn path(i: usize) -> String {
        format!("/health/{i}")
    }

    /// From now on app `i` answers 503 (`failing`) or 200.
    pub fn set_failing(&self, i: usize, failing: bool) {
        self.shared.failing[i].store(failing, Ordering::SeqCst);
    }

    /// Every request app `i` got so far, oldest first.
    pub fn arrivals(&self, i: usize) -> Vec<Arrival> {
        self.shared.arrivals.lock().expect("lock")[i].clone()
    }

    /// Every request of every app so far, by app.
    pub fn all(&self) -> Vec<Vec<Arrival>> {
        self.shared.arrivals.lock().expect("lock").clone()
    }

    /// Waits (at most `limit`) until app `i` has had `count` requests answered with a 503, and
    /// returns when the last of them came; `None` past the limit.
    pub async fn until_failed(
        &self,
        i: usize,
        count: usize,
        limit: std::time::Duration,
    ) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            let failed: Vec<Instant> = self
                .arrivals(i)
                .iter()
                .filter(|arrival| arrival.failed)
                .map(|arrival| arrival.at)
                .collect();
            if failed.len() >= count {
                return failed.get(count - 1).copied();
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}
