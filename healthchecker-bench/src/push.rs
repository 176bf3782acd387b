//! The push mode (`--push`): pings per second answered from kept-alive clients, their latency,
//! and the server's CPU per ping (DESIGN.md: at least 10,000/s from 64 clients, p99 under 20 ms,
//! each answered only once durable).
//!
//! `--monitors` push monitors are registered through the API; then `--clients` tasks, each with
//! its own HTTP client (so one kept-alive connection each), ping them round-robin as fast as the
//! answers come for `--duration` seconds. Every answer must be 200: a ping is answered once it
//! is committed and fsynced, so this measures the durable path.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::server::ServerProcess;

/// The figures of one push run.
#[derive(Debug, Clone)]
pub struct PushFigures {
    /// Pings answered 200.
    pub pings: u64,
    /// Over this long.
    pub window: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Server CPU over the window.
    pub cpu: Duration,
}

impl PushFigures {
    /// Pings per second.
    pub fn rate(&self) -> f64 {
        self.pings as f64 / self.window.as_secs_f64()
    }

    /// Server CPU per ping.
    pub fn cpu_per_ping(&self) -> Duration {
        self.cpu.div_f64((self.pings.max(1)) as f64)
    }
}

/// Registers `monitors` push monitors on `server` and returns their ping URLs.
///
/// # Errors
///
/// When a registration fails.
pub async fn register(server: &str, monitors: usize) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut urls = Vec::with_capacity(monitors);
    for i in 0..monitors {
        let answer: serde_json::Value = client
            .put(format!("{server}/api/v1/monitors/push-{i}"))
            .json(&serde_json::json!({"kind": "push", "period": 3600, "grace": 3600}))
            .send()
            .await
            .context("PUT a push monitor")?
            .error_for_status()?
            .json()
            .await?;
        urls.push(
            answer["ping_url"]
                .as_str()
                .context("no ping_url in the answer")?
                .to_owned(),
        );
    }
    Ok(urls)
}

/// Pings `urls` from `clients` kept-alive clients for `duration`, measuring `server`'s CPU.
///
/// # Errors
///
/// When a ping is answered with anything but 200, or not at all.
pub async fn measure(
    server: &ServerProcess,
    urls: &[String],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<PushFigures> {
    let cpu_before = server.cpu();
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let urls = urls.to_vec();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut latencies = Vec::new();
            let mut i = c;
            while Instant::now() < end {
                let url = &urls[i % urls.len()];
                i += clients;
                let sent = Instant::now();
                let answer = client
                    .post(url.as_str())
                    .body("bench")
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await?;
                anyhow::ensure!(answer.status() == 200, "ping answered {}", answer.status());
                answer.bytes().await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let window = started.elapsed();
    let cpu = server.cpu().saturating_sub(cpu_before);
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(PushFigures {
        pings: latencies.len() as u64,
        window,
        p50: at(0.5),
        p99: at(0.99),
        cpu,
    })
}
