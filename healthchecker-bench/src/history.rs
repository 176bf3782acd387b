//! The history, dashboard and API targets of DESIGN.md's milestone 2 (`healthchecker-history-bench`):
//!
//! * `list`: `GET /api/v1/monitors` with 10,000 monitors (checked at their interval against the
//!   loopback farm while it is measured), < 50 ms;
//! * `dashboard`: the dashboard's first render with 1,000 monitors, measured in Chromium (Debian's
//!   `chromium` driven by playwright-core, `healthchecker-server/tests/browser/render.js`): from
//!   the start of navigation until every row is painted with its name and state (the first
//!   render), < 300 ms; each monitor has its last 30 checks (gathered at a 5 s interval first,
//!   then measured at 30 s), and the time until every row is also painted with its data (uptime,
//!   last-checks bar, sparkline) is printed beside it. Run it inside a network namespace
//!   (Chromium's rule here): `unshare -n sh -c 'ip link set lo up && ...'`;
//! * `database`: the size of the database of 100 monitors after a simulated year of checks at
//!   30 s, < 100 MB. The simulation: the real store (the library, not the binary) writes the full
//!   log of every monitor through its writer (`log_retention` checks each, 30 s apart, ending now,
//!   with the health+json bodies the farm answers, a transition now and then), and so the newest
//!   hours of aggregates; the year before is written as the aggregates the writer would have
//!   written for it (720 hourly rows per monitor, the 30 days kept, and 400 daily rows, the most
//!   kept, with the counts of a check every 30 s), into the same tables; then the store's own
//!   pruning runs and it is closed (the WAL folded in), and the file is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use healthchecker_server::health::{Health, Outcome, State, Transition};
use healthchecker_server::probe::{CheckRecord, JsonBody, Reason};
use healthchecker_server::registry::{AppName, Registration, Source};
use healthchecker_server::store::{CheckWrite, LoggedCheck, Store, StoreOptions, StoredMonitor};

use crate::farm::Farm;
use crate::register::{Plan, register};
use crate::server::ServerProcess;

/// A quantile of `samples` (sorted in place).
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

/// A data folder next to the bench's build (a real disk).
fn data_dir() -> anyhow::Result<tempfile::TempDir> {
    let target_dir = std::env::current_exe()?
        .parent()
        .and_then(|dir| dir.parent())
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    Ok(tempfile::Builder::new()
        .prefix("healthchecker-history-bench-")
        .tempdir_in(target_dir)?)
}

/// Starts the server and `monitors` monitors on the farm (at `interval`), and waits until each
/// has been checked once.
async fn server_with(
    binary: &Path,
    data: &Path,
    monitors: usize,
    interval: u64,
    endpoints: usize,
) -> anyhow::Result<(ServerProcess, std::sync::Arc<Farm>)> {
    let farm = Farm::start(monitors, endpoints).await?;
    let server = ServerProcess::start(
        binary,
        data,
        1, // no SMTP server: nobody is mailed
        monitors,
        &[],
        Duration::from_secs(1800),
    )
    .await?;
    let plan = Plan {
        interval,
        timeout: 2,
        unhealthy: 2,
        mailed: Vec::new(),
        http: true,
    };
    let took = register(&server.url, monitors, |i| farm.url(i), &plan, 64).await?;
    eprintln!(
        "registered {monitors} monitors in {:.1} s; waiting for their first checks ...",
        took.as_secs_f64()
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(interval + 60);
    loop {
        let list: serde_json::Value = client
            .get(format!("{}/api/v1/monitors", server.url))
            .send()
            .await?
            .json()
            .await?;
        let checked = list["monitors"].as_array().map_or(0, |all| {
            all.iter().filter(|m| !m["last_check"].is_null()).count()
        });
        if checked == monitors {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {checked} of {monitors} monitors were checked in time");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok((server, farm))
}

/// `list`: the latency of `GET /api/v1/monitors` with `monitors` monitors, over `requests`
/// requests one after another on a kept-alive connection. `Ok(true)` when p99 < 50 ms.
///
/// # Errors
///
/// When the server cannot be started or a request fails.
pub async fn list(
    binary: &Path,
    monitors: usize,
    requests: usize,
    endpoints: usize,
) -> anyhow::Result<bool> {
    let data = data_dir()?;
    let (server, _farm) = server_with(binary, data.path(), monitors, 5, endpoints).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/monitors", server.url);
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests {
        let started = Instant::now();
        let body = client.get(&url).send().await?.bytes().await?;
        times.push(started.elapsed());
        bytes = body.len();
    }
    let p50 = quantile(&mut times, 0.5);
    let p99 = quantile(&mut times, 0.99);
    let max = quantile(&mut times, 1.0);
    println!(
        "GET /api/v1/monitors with {monitors} monitors ({} KiB), {requests} requests while they \
         are checked every 5 s: p50 {}, p99 {}, max {}",
        bytes / 1024,
        ms(p50),
        ms(p99),
        ms(max)
    );
    let pass = p99 < Duration::from_millis(50);
    println!(
        "{}: p99 {} (target < 50 ms)",
        if pass { "PASS" } else { "FAIL" },
        ms(p99)
    );
    Ok(pass)
}

/// One run of `render.js`.
#[derive(Debug, serde::Deserialize)]
struct Render {
    rendered_ms: f64,
    /// Every row painted with its name and state: the first render.
    painted_ms: f64,
    /// Every row painted with its data too (uptime, bar, sparkline); builds before 2026-12-02
    /// drew both at once and report `painted_ms` here.
    complete_ms: f64,
    rows: usize,
    /// Rows that showed their name and state when first painted.
    stated: usize,
    /// Rows that showed their data (state, uptime, a bar with checks, a sparkline) in the end.
    complete: usize,
    /// Elements in the page.
    nodes: usize,
    /// From a jump to the end of the list until it was painted.
    scrolled_ms: f64,
    errors: Vec<String>,
    /// Where the time went: what happened when (ms after the start of navigation), in order.
    #[serde(default)]
    phases: Vec<(String, f64)>,
}

/// Seconds between checks while the monitors gather the checks their rows show.
const GATHER_INTERVAL: u64 = 5;

/// Seconds between checks while the page is measured (what a LAN's apps are usually checked at).
const RENDER_INTERVAL: u64 = 30;

/// Waits until every monitor has at least `checks` recent checks in `GET /api/v1/uptime`.
async fn gathered(url: &str, monitors: usize, checks: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now()
        + Duration::from_secs(
            GATHER_INTERVAL
                .saturating_mul(u64::try_from(checks).unwrap_or(u64::MAX))
                .saturating_add(60),
        );
    loop {
        let glances: serde_json::Value = client
            .get(format!("{url}/api/v1/uptime"))
            .send()
            .await?
            .json()
            .await?;
        let full = glances["monitors"].as_array().map_or(0, |all| {
            all.iter()
                .filter(|g| g["recent"].as_array().is_some_and(|r| r.len() >= checks))
                .count()
        });
        if full == monitors {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {full} of {monitors} monitors had {checks} checks in time");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `dashboard`: the dashboard's first render with `monitors` monitors, `runs` navigations in
/// Chromium, each in a fresh browser context. The monitors are first checked every 5 s until each
/// has `checks` checks (30 fills every row's bar and sparkline, as on a dashboard that has run a
/// while), then every 30 s while the page is measured (their checks arrive live meanwhile).
/// `Ok(true)` when every run painted every row with its name and state within 300 ms, and every
/// row showed its data in the end.
///
/// # Errors
///
/// When the server or the browser cannot be started.
pub async fn dashboard(
    binary: &Path,
    monitors: usize,
    runs: usize,
    endpoints: usize,
    checks: usize,
) -> anyhow::Result<bool> {
    let browser_tests = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../healthchecker-server/tests/browser")
        .canonicalize()
        .context("healthchecker-server/tests/browser")?;
    if !browser_tests.join("node_modules/playwright-core").exists() {
        bail!(
            "run `npm ci` in {} first (it installs playwright-core; the browser is Debian's chromium)",
            browser_tests.display()
        );
    }
    let data = data_dir()?;
    let (server, farm) =
        server_with(binary, data.path(), monitors, GATHER_INTERVAL, endpoints).await?;
    if checks > 1 {
        eprintln!("waiting until every monitor has {checks} checks ...");
        gathered(&server.url, monitors, checks).await?;
    }
    let plan = Plan {
        interval: RENDER_INTERVAL,
        timeout: 2,
        unhealthy: 2,
        mailed: Vec::new(),
        http: true,
    };
    register(&server.url, monitors, |i| farm.url(i), &plan, 64).await?;
    let output = tokio::process::Command::new("node")
        .arg(browser_tests.join("render.js"))
        .arg(format!("{}/", server.url))
        .arg(runs.to_string())
        .current_dir(&browser_tests)
        .output()
        .await
        .context("cannot run node")?;
    if !output.status.success() {
        bail!(
            "render.js failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let results: Vec<Render> = serde_json::from_slice(&output.stdout)
        .with_context(|| String::from_utf8_lossy(&output.stdout).into_owned())?;
    let mut pass = true;
    for (i, run) in results.iter().enumerate() {
        println!(
            "run {}: {} rows ({} with their state, {} with their data, {} elements) rendered at {:.0} ms, painted at {:.0} ms, with their data at {:.0} ms after the start of navigation; the end of the list painted {:.0} ms after a jump there{}",
            i + 1,
            run.rows,
            run.stated,
            run.complete,
            run.nodes,
            run.rendered_ms,
            run.painted_ms,
            run.complete_ms,
            run.scrolled_ms,
            if run.errors.is_empty() {
                String::new()
            } else {
                format!("; errors: {:?}", run.errors)
            }
        );
        let phases: Vec<String> = run
            .phases
            .iter()
            .map(|(name, at)| format!("{name} {at:.0}"))
            .collect();
        if !phases.is_empty() {
            println!("  phases (ms): {}", phases.join(", "));
        }
        pass &= run.rows == monitors
            && run.stated == monitors
            && run.complete == monitors
            && run.painted_ms < 300.0
            && run.errors.is_empty();
    }
    let median_max = |of: fn(&Render) -> f64| {
        let mut times: Vec<f64> = results.iter().map(of).collect();
        times.sort_by(f64::total_cmp);
        (
            times.get(times.len() / 2).copied().unwrap_or_default(),
            times.last().copied().unwrap_or_default(),
        )
    };
    let (painted, painted_max) = median_max(|run| run.painted_ms);
    let (complete, complete_max) = median_max(|run| run.complete_ms);
    println!(
        "{}: first render of the dashboard with {monitors} monitors (every row painted with its \
         name and state): median {painted:.0} ms, max {painted_max:.0} ms (target < 300 ms); \
         every row with its uptime, bar and sparkline: median {complete:.0} ms, max \
         {complete_max:.0} ms",
        if pass { "PASS" } else { "FAIL" },
    );
    Ok(pass)
}

/// The farm's passing body, as the log keeps it.
const BODY: &str = r#"{"status":"pass","version":"1","serviceId":"bench","checks":{"uptime":[{"componentType":"system","observedValue":1234,"observedUnit":"s","status":"pass"}]}}"#;

/// `database`: the size after a simulated year (see the module documentation). `Ok(true)` when
/// it is under 100 MB.
///
/// # Errors
///
/// When the store cannot be written.
pub async fn database(monitors: usize, interval: u64) -> anyhow::Result<bool> {
    let data = data_dir()?;
    let options = StoreOptions::default();
    let store = Store::open(data.path(), options)?;
    let now = Utc::now();
    let started = Instant::now();
    let names: Vec<AppName> = (0..monitors)
        .map(|i| AppName::parse(&format!("monitor-{i}")))
        .collect::<Result<_, _>>()?;
    for (i, name) in names.iter().enumerate() {
        let spec = Registration {
            url: Some(format!("http://192.168.1.{}:{}", 10 + i % 200, 8000 + i)),
            email: Some(healthchecker_server::registry::Emails::One(
                "me@example.com".to_owned(),
            )),
            interval: Some(interval),
            ..Registration::default()
        }
        .validate()?;
        store
            .save_monitor(&StoredMonitor {
                name: name.clone(),
                spec,
                paused: false,
                registered_at: now - TimeDelta::days(365),
                health: Health::default(),
                since: None,
                last_check: None,
                last_transition: None,
                alerting: None,
                maintenance: None,
                source: Source::Api,
                push: None,
            })
            .await?;
    }
    // The full log, oldest first, through the writer: it also writes the newest aggregates.
    let per_monitor = options.log_retention as i64 + 100;
    let step = TimeDelta::seconds(i64::try_from(interval)?);
    let body = JsonBody::from_text(BODY.to_owned())?;
    for n in 0..per_monitor {
        let time = now - step * i32::try_from(per_monitor - n)?;
        for (i, name) in names.iter().enumerate() {
            // One failing check in 200 (a transition into DEGRADED and back).
            let fail = (n + i as i64) % 200 == 0;
            let outcome = if fail { Outcome::Fail } else { Outcome::Pass };
            let state = if fail {
                State::Degraded
            } else {
                State::Healthy
            };
            let transition = ((n + i as i64) % 200 <= 1 && n > 0).then(|| Transition {
                time,
                from: if fail {
                    State::Healthy
                } else {
                    State::Degraded
                },
                to: state,
                reason: if fail {
                    "timeout: no answer within 5 s".to_owned()
                } else {
                    "ok".to_owned()
                },
            });
            store.record(CheckWrite {
                name: name.clone(),
                check: LoggedCheck {
                    record: CheckRecord {
                        time,
                        outcome,
                        reason: if fail { Reason::Timeout } else { Reason::Ok },
                        http_status: (!fail).then_some(200),
                        latency: Duration::from_micros(if fail {
                            5_000_000
                        } else {
                            3_000 + (n % 700) as u64
                        }),
                        body: (!fail).then(|| body.clone()),
                        detail: fail.then(|| "no answer within 5 s".to_owned()),
                        body_digest: None,
                        cert_not_after: None,
                        cert_days_left: None,
                    },
                    state,
                    ping: None,
                },
                health: Health {
                    state,
                    ..Health::default()
                },
                transition,
                alerting: None,
                messages: Vec::new(),
                withdraw: Vec::new(),
                release: None,
                push: None,
            });
        }
        if n % 100 == 0 {
            store.flush().await?;
        }
    }
    store.flush().await?;
    eprintln!(
        "wrote {} log rows through the writer in {:.1} s",
        per_monitor * monitors as i64,
        started.elapsed().as_secs_f64()
    );
    store.close().await?;
    // The year before, as the writer would have aggregated it.
    let file = data.path().join(healthchecker_server::store::FILE_NAME);
    {
        let conn = rusqlite::Connection::open(&file)?;
        let per_hour = 3600 / i64::try_from(interval)?;
        let hour = now.duration_trunc(TimeDelta::hours(1))?;
        let day = now.duration_trunc(TimeDelta::days(1))?;
        let ns = |time: DateTime<Utc>| time.timestamp_nanos_opt().unwrap_or(0);
        let tx = conn.unchecked_transaction()?;
        {
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM monitors")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut hourly = tx.prepare(
                "INSERT OR IGNORE INTO hourly VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8)",
            )?;
            let mut daily = tx.prepare(
                "INSERT OR IGNORE INTO daily VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8)",
            )?;
            for id in ids {
                for h in 0..30 * 24 {
                    let fails = h % 17;
                    hourly.execute(rusqlite::params![
                        id,
                        ns(hour - TimeDelta::hours(h)),
                        per_hour,
                        per_hour - fails,
                        fails,
                        per_hour * 3_350_000 + fails * 5_000_000_000,
                        if fails > 0 {
                            5_000_000_000_i64
                        } else {
                            4_100_000
                        },
                        1_000_000 - h,
                    ])?;
                }
                for d in 0..400 {
                    let fails = d % 23;
                    daily.execute(rusqlite::params![
                        id,
                        ns(day - TimeDelta::days(d)),
                        24 * per_hour,
                        24 * per_hour - fails,
                        fails,
                        24 * per_hour * 3_350_000 + fails * 5_000_000_000,
                        5_000_000_000_i64,
                        1_000_000 - d,
                    ])?;
                }
            }
        }
        tx.commit()?;
    }
    // The store's own pruning and checkpoint, as a running server does them.
    let store = Store::open(data.path(), options)?;
    let pruned = store.prune(now).await?;
    store.close().await?;
    let size = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", file.display())).ok())
        .map(|metadata| metadata.len())
        .sum::<u64>();
    let conn = rusqlite::Connection::open(&file)?;
    let count = |table: &str| -> anyhow::Result<i64> {
        Ok(
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })?,
        )
    };
    println!(
        "{monitors} monitors, a year at {interval} s: {} log rows, {} hourly and {} daily buckets, \
         {} transitions; pruned {} old rows; the file is {:.1} MB",
        count("checks")?,
        count("hourly")?,
        count("daily")?,
        count("transitions")?,
        pruned.transitions + pruned.messages + pruned.buckets,
        size as f64 / 1e6
    );
    let pass = size < 100_000_000;
    println!(
        "{}: database of {monitors} monitors after a simulated year: {:.1} MB (target < 100 MB)",
        if pass { "PASS" } else { "FAIL" },
        size as f64 / 1e6
    );
    Ok(pass)
}
