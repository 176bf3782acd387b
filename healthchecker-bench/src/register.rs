//! Registering the monitors through the public API, a bounded number of requests at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What every monitor is registered with.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seconds between checks.
    pub interval: u64,
    /// Seconds a check may take.
    pub timeout: u64,
    /// Failed checks that make a monitor unhealthy.
    pub unhealthy: u32,
    /// Monitors that get an email address (the ones the bench fails later).
    pub mailed: Vec<usize>,
    /// HTTP monitors (`url(i)/health/<i>`), or TCP monitors (`url(i)` alone, no path).
    pub http: bool,
}

/// Registers `bench-0` .. `bench-<n-1>` (target `i` at `url(i)/health/<i>`, or `url(i)` for TCP
/// monitors) with at most
/// `in_flight` requests at once; returns how long it took.
///
/// # Errors
///
/// When a registration is refused or fails (the first error is reported).
pub async fn register(
    api: &str,
    n: usize,
    url: impl Fn(usize) -> String,
    plan: &Plan,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    register_spread(&[api.to_owned()], n, url, plan, in_flight).await
}

/// Like [`register`], the registrations spread over the servers `apis` (monitor `i` registered
/// at `apis[i % apis.len()]`): a cluster, where every server takes registrations.
///
/// # Errors
///
/// When a registration is refused or fails (the first error is reported).
pub async fn register_spread(
    apis: &[String],
    n: usize,
    url: impl Fn(usize) -> String,
    plan: &Plan,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    anyhow::ensure!(!apis.is_empty(), "no server to register with");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .timeout(Duration::from_secs(60))
        .build()?;
    let permits = Arc::new(Semaphore::new(in_flight.max(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let progress = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.tick().await;
            loop {
                tick.tick().await;
                let count = done.load(Ordering::Relaxed);
                let rate = count as f64 / started.elapsed().as_secs_f64();
                eprintln!("  registered {count}/{n} ({rate:.0}/s)");
            }
        })
    };
    let mut tasks = JoinSet::new();
    let mut failure = None;
    for i in 0..n {
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let mut body = serde_json::json!({
            "url": url(i),
            "interval": plan.interval,
            "timeout": plan.timeout,
            "unhealthy": plan.unhealthy,
            "healthy": 2,
        });
        if plan.http {
            body["path"] = serde_json::json!(format!("/health/{i}"));
        }
        if plan.mailed.contains(&i) {
            body["email"] = serde_json::json!(format!("owner-{i}@bench.test"));
        }
        let request = client
            .put(format!(
                "{}/api/v1/monitors/bench-{i}",
                apis[i % apis.len()]
            ))
            .json(&body);
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            let _permit = permit;
            let response = request.send().await?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                bail!("PUT bench-{i}: {status}: {text}");
            }
            done.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        while let Some(result) = tasks.try_join_next() {
            if let Err(error) = result? {
                failure.get_or_insert(error);
            }
        }
        if failure.is_some() {
            break;
        }
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(error) = result? {
            failure.get_or_insert(error);
        }
    }
    progress.abort();
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(started.elapsed())
}
