//! `healthchecker-bench`: measures the real `healthchecker-server` against the performance targets
//! of DESIGN.md, on loopback only.
//!
//! ```sh
//! cargo run --release -p healthchecker-bench -- --monitors 10000 --interval 5 --duration 60
//! ```
//!
//! One run: a loopback target farm and a real SMTP server start inside this process; the server
//! binary (built first with cargo) starts as its own process with mDNS off, on 127.0.0.1, with an
//! empty database in a temporary folder; N monitors are registered through the API; after a
//! warm-up of one interval the server's CPU and memory are measured over `--duration` seconds
//! while the farm notes every check's arrival; then a few targets fail and the time until the SMTP
//! server accepts each "is UNHEALTHY" mail is measured. A table and a PASS/FAIL per target follow.
//!
//! # Layout
//!
//! * [`farm`]: the loopback targets, and what arrived when; [`farm::split`] serves them from
//!   several processes when one may not hold enough open files.
//! * [`smtp`]: the SMTP server that times mail.
//! * [`server`]: the server process, stopped on every exit path, and its `/proc` figures.
//! * [`register`]: registering the monitors through the API.
//! * [`report`]: from arrivals to checks done and lateness.
//! * [`cluster`]: the cluster mode (`--cluster N`): N servers on one PostgreSQL, a kill -9, the
//!   failover.
//! * [`postgres`]: the throwaway PostgreSQL the cluster mode starts.
//! * [`push`]: the push mode (`--push`): pings per second from kept-alive clients.
//! * [`run`]: one run, start to table.
//! * [`history`]: the milestone 2 targets of history and the dashboard (`healthchecker-history-bench`):
//!   `GET /api/v1/monitors` at 10,000 monitors, the dashboard's first render in Chromium, the
//!   database after a simulated year.

pub mod cluster;
pub mod farm;
pub mod history;
pub mod postgres;
pub mod push;
pub mod register;
pub mod report;
pub mod server;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use crate::farm::{Farm, Mode};
use crate::server::ServerProcess;

/// Benchmark healthchecker-server against loopback targets.
#[derive(Debug, Parser)]
#[command(name = "healthchecker-bench")]
pub struct Args {
    /// Monitors to register.
    #[arg(long, default_value_t = 1000)]
    pub monitors: usize,
    /// Seconds between checks of each monitor (5-300).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(5..=300))]
    pub interval: u64,
    /// Seconds measured, after a warm-up of one interval.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Distinct target endpoints (loopback address and port); the server keeps a connection per
    /// endpoint. Default: one per monitor, as on a real LAN.
    #[arg(long)]
    pub endpoints: Option<usize>,
    /// Targets failed at the end to time the mail.
    #[arg(long, default_value_t = 5)]
    pub fail: usize,
    /// How failed targets fail: with a 503, or by closing the connection.
    #[arg(long, default_value = "503", value_parser = ["503", "close"])]
    pub fail_mode: String,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 64)]
    pub in_flight: usize,
    /// The server binary [default: built now with cargo, next to this binary].
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// Record a CPU profile of the server over the measured window with `perf record -g` into
    /// this file.
    #[arg(long, value_name = "FILE")]
    pub perf: Option<PathBuf>,
    /// Hard limit of the run, seconds, counted once the server is built [default: from the other
    /// options].
    #[arg(long)]
    pub deadline: Option<u64>,
    /// An environment variable for the server, `KEY=VALUE` (repeatable), e.g. allocator tunables.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    pub server_env: Vec<(String, String)>,
    /// Keep the server's data folder and log (the path is printed).
    #[arg(long)]
    pub keep: bool,
    /// What the monitors are: HTTP apps (`http://`, a kept-alive connection each), or TCP
    /// endpoints (`tcp://`, a new connection per check, one listener per monitor).
    #[arg(long, default_value = "http", value_parser = ["http", "tcp"])]
    pub kind: String,
    /// Push mode: register --monitors push monitors and measure pings per second from --clients
    /// kept-alive clients over --duration seconds (target: 10,000/s, p99 under 20 ms).
    #[arg(long)]
    pub push: bool,
    /// Push mode: clients pinging at once, each on its own kept-alive connection.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Cluster mode: this many servers (at least 2) on one throwaway PostgreSQL (started by the
    /// bench: initdb into /tmp, a Unix socket only), the monitors registered through all of
    /// them; lateness and CPU per check per server, then a kill -9 of one: failover time,
    /// duplicates, lost or repeated mail.
    #[arg(long, value_name = "N")]
    pub cluster: Option<usize>,
    /// Internal: serve one part of a farm split over processes ([`farm::split`]).
    #[arg(long, hide = true, value_name = "FROM:TO:PORT:EPOCH")]
    pub farm_part: Option<String>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// The check timeout and unhealthy threshold every monitor gets.
const TIMEOUT: u64 = 2;
const UNHEALTHY: u32 = 2;

/// Registration at a pessimistic 200/s, the warm-up, the window, the mail, and a margin.
pub fn default_deadline(args: &Args) -> u64 {
    let registration = args.monitors as u64 / 200 + 30;
    let failover = if args.cluster.is_some() {
        // the split (up to 120 s), the kill, the re-checks, the new split, the mail
        120 + 22 * args.interval + 60
    } else {
        0
    };
    registration + 2 * args.interval + args.duration + 3 * args.interval + 60 + failover
}

/// The open-file limit: (soft, hard).
fn nofile() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    text.lines()
        .find(|line| line.starts_with("Max open files"))
        .map(|line| {
            let numbers: Vec<u64> = line
                .split_whitespace()
                .filter_map(|word| word.parse().ok())
                .collect();
            (
                numbers.first().copied().unwrap_or(1024),
                numbers.get(1).copied().unwrap_or(1024),
            )
        })
        .unwrap_or((1024, 1024))
}

/// Raises this process's open-file limit to `wanted` (the server inherits it) with util-linux
/// `prlimit` (no unsafe code here); returns the limit in force.
fn raise_nofile(wanted: u64) -> u64 {
    let (soft, _) = nofile();
    if soft >= wanted {
        return soft;
    }
    let _ = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={wanted}:{wanted}"))
        .status();
    let (soft, hard) = nofile();
    if soft < wanted && hard > soft {
        let _ = std::process::Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    nofile().0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// The push mode of [`run`]: the server, `--monitors` push monitors, `--clients` pinging for
/// `--duration` seconds; prints the figures. `Ok(true)` when the targets hold.
async fn run_push(args: &Args, binary: &Path, deadline: Duration) -> anyhow::Result<bool> {
    let mailbox = smtp::Mailbox::default();
    let smtp_port = smtp::start(Arc::clone(&mailbox))?;
    let target_dir = std::env::current_exe()?
        .parent()
        .and_then(|dir| dir.parent())
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let data = tempfile::Builder::new()
        .prefix("healthchecker-bench-")
        .tempdir_in(&target_dir)?;
    let server = ServerProcess::start(
        binary,
        data.path(),
        smtp_port,
        args.monitors,
        &args.server_env,
        deadline,
    )
    .await?;
    eprintln!(
        "server pid {} on {}; registering {} push monitors ...",
        server.pid, server.url, args.monitors
    );
    let urls = push::register(&server.url, args.monitors).await?;
    // Warm-up: connections open, caches filled.
    push::measure(&server, &urls, args.clients, Duration::from_secs(2)).await?;
    let figures = push::measure(
        &server,
        &urls,
        args.clients,
        Duration::from_secs(args.duration),
    )
    .await?;
    let rate_ok = figures.rate() >= 10_000.0;
    let p99_ok = figures.p99 < Duration::from_millis(20);
    println!(
        "push: {} monitors, {} clients, {:.1} s",
        args.monitors,
        args.clients,
        figures.window.as_secs_f64()
    );
    println!("  pings answered (200, durable)  {:>10}", figures.pings);
    println!(
        "  pings per second               {:>10.0}   target >= 10000   {}",
        figures.rate(),
        verdict(rate_ok)
    );
    println!("  latency p50                    {:>10}", ms(figures.p50));
    println!(
        "  latency p99                    {:>10}   target < 20 ms    {}",
        ms(figures.p99),
        verdict(p99_ok)
    );
    println!(
        "  server CPU per ping            {:>7.1} us",
        figures.cpu_per_ping().as_secs_f64() * 1e6
    );
    if args.keep {
        eprintln!("kept: {}", data.keep().display());
    }
    Ok(rate_ok && p99_ok)
}

/// One run of the server `binary`: farm, SMTP, server, registration, warm-up, measured window,
/// mail; prints the table. `Ok(true)` when every target holds.
///
/// # Errors
///
/// When a part cannot start, a registration fails or the server dies.
pub async fn run(args: &Args, binary: &Path, deadline: Duration) -> anyhow::Result<bool> {
    let started = Instant::now();
    let n = args.monitors;
    anyhow::ensure!(n > 0, "--monitors must be at least 1");
    if args.push {
        return run_push(args, binary, deadline).await;
    }
    if let Some(count) = args.cluster {
        return cluster::run_cluster(args, binary, deadline, count).await;
    }
    let interval = Duration::from_secs(args.interval);

    // File descriptors: the farm holds a listener and a server connection per endpoint (2 each),
    // the server a connection per endpoint; both also need some for themselves.
    let wanted_endpoints = args.endpoints.unwrap_or(n).clamp(1, n);
    let limit = raise_nofile(2 * wanted_endpoints as u64 + 1024);
    let room = usize::try_from(limit.saturating_sub(1024) / 2).unwrap_or(usize::MAX);
    let endpoints = wanted_endpoints.min(room.max(1));
    if endpoints < wanted_endpoints {
        eprintln!(
            "note: open-file limit {limit}: {endpoints} endpoints instead of {wanted_endpoints}, so \
             some monitors share a connection (raise the hard limit to go further)"
        );
    }

    let tcp = args.kind == "tcp";
    anyhow::ensure!(
        !tcp || endpoints == n,
        "--kind tcp needs one listener per monitor ({n}), and the open-file limit allows {endpoints}"
    );
    let mailbox = smtp::Mailbox::default();
    let smtp_port = smtp::start(Arc::clone(&mailbox))?;
    let farm = if tcp {
        Farm::start_tcp(n).await
    } else {
        Farm::start(n, endpoints).await
    }
    .context("cannot start the target farm")?;
    // The data folder goes next to the bench's own build (on a real disk: fsyncs cost what they do).
    let target_dir = std::env::current_exe()?
        .parent()
        .and_then(|dir| dir.parent())
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
    let data = tempfile::Builder::new()
        .prefix("healthchecker-bench-")
        .tempdir_in(&target_dir)?;
    let remaining = deadline.saturating_sub(started.elapsed()) + Duration::from_secs(10);
    let mut server = ServerProcess::start(
        binary,
        data.path(),
        smtp_port,
        n,
        &args.server_env,
        remaining,
    )
    .await?;
    eprintln!(
        "server pid {} on {} (data and log in {}); farm: {} targets on {} endpoint(s); SMTP on 127.0.0.1:{smtp_port}",
        server.pid,
        server.url,
        data.path().display(),
        n,
        farm.endpoints()
    );

    // Which monitors get mail and are failed at the end: spread over the range.
    let fail_count = args.fail.min(n);
    let failing: Vec<usize> = (0..fail_count).map(|j| j * n / fail_count.max(1)).collect();
    let plan = register::Plan {
        interval: args.interval,
        timeout: TIMEOUT,
        unhealthy: UNHEALTHY,
        mailed: failing.clone(),
        http: !tcp,
    };
    eprintln!(
        "registering {n} monitors ({} in flight) ...",
        args.in_flight
    );
    let cpu_before_registration = server.cpu();
    let took = register::register(&server.url, n, |i| farm.url(i), &plan, args.in_flight).await?;
    let registration_cpu = server.cpu().saturating_sub(cpu_before_registration);
    eprintln!(
        "registered {n} in {:.1} s ({:.0}/s); warming up for {} s ...",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        args.interval.max(5) + 1
    );
    // Every first check lies within min(interval, 5 s) of its registration.
    tokio::time::sleep(Duration::from_secs(args.interval.max(5) + 1)).await;

    // The measured window.
    let bench_stat = format!("/proc/{}/stat", std::process::id());
    let from = u64::try_from(farm.started().elapsed().as_micros())?;
    let cpu0 = server.cpu();
    let bench0 = server::cpu_of(&bench_stat);
    let mut perf = match &args.perf {
        Some(file) => Some(
            std::process::Command::new("perf")
                .args(["record", "-F", "499", "-g", "--quiet", "-o"])
                .arg(file)
                .args(["-p", &server.pid.to_string(), "--", "sleep"])
                .arg(args.duration.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .context("cannot run perf")?,
        ),
        None => None,
    };
    eprintln!("measuring for {} s ...", args.duration);
    let window = Duration::from_secs(args.duration);
    let window_start = Instant::now();
    let mut rss_max = 0;
    while window_start.elapsed() < window {
        tokio::time::sleep(
            Duration::from_millis(500).min(window.saturating_sub(window_start.elapsed())),
        )
        .await;
        rss_max = rss_max.max(server.memory().1);
        anyhow::ensure!(
            server.running(),
            "the server died:\n{}",
            server.log_tail(20)
        );
    }
    let to = u64::try_from(farm.started().elapsed().as_micros())?;
    let measured = window_start.elapsed();
    let cpu = server.cpu().saturating_sub(cpu0);
    let bench_cpu = server::cpu_of(&bench_stat).saturating_sub(bench0);
    let (peak_rss, _) = server.memory();
    let fds = server.fds();
    let threads = server.threads();
    if let Some(perf) = perf.as_mut() {
        let _ = perf.wait();
    }

    // Mail: fail some targets, time the "is UNHEALTHY" mails.
    let mails_before = mailbox.lock().map(|mail| mail.len()).unwrap_or(0);
    let mode = if tcp || args.fail_mode == "close" {
        Mode::Close
    } else {
        Mode::Fail503
    };
    let bound = interval * UNHEALTHY + Duration::from_secs(TIMEOUT) + Duration::from_secs(1);
    let mut latencies: Vec<Option<Duration>> = vec![None; failing.len()];
    let incident_from = u64::try_from(farm.started().elapsed().as_micros())?;
    if !failing.is_empty() {
        eprintln!(
            "failing {} targets ({}); waiting for their mail (bound {:?}) ...",
            failing.len(),
            if tcp {
                "listener closed"
            } else {
                args.fail_mode.as_str()
            },
            bound
        );
        let flipped = Instant::now();
        farm.set_mode(&failing, mode);
        while flipped.elapsed() < bound + Duration::from_secs(10) {
            let mail = mailbox.lock().map(|mail| mail.clone()).unwrap_or_default();
            for (slot, &i) in latencies.iter_mut().zip(&failing) {
                if slot.is_none() {
                    let wanted = format!("bench-{i} is UNHEALTHY");
                    *slot = mail
                        .iter()
                        .find(|m| m.subject.contains(&wanted) && m.at >= flipped)
                        .map(|m| m.at - flipped);
                }
            }
            if latencies.iter().all(Option::is_some) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let incident_to = u64::try_from(farm.started().elapsed().as_micros())?;
    let all_mail = mailbox.lock().map(|mail| mail.clone()).unwrap_or_default();

    // The figures.
    let (arrivals, _counts) = farm.arrivals();
    let in_window = arrivals
        .iter()
        .filter(|&&(_, at)| at >= from && at < to)
        .count() as u64;
    // While the failed targets fail and their mail goes out, every check still starts on time:
    // mail never blocks checking.
    let incident = (!failing.is_empty())
        .then(|| report::schedule(arrivals.clone(), n, interval, incident_from, incident_to));
    let schedule = report::schedule(arrivals, n, interval, from, to);
    let seconds = measured.as_secs_f64();
    let expected_rate = n as f64 / interval.as_secs_f64();
    let rate = in_window as f64 / seconds;
    let cpu_per_check = cpu.as_secs_f64() * 1e6 / (in_window.max(1)) as f64;
    let cores = cpu.as_secs_f64() / seconds;
    let p50 = schedule.lateness_at(0.50);
    let p99 = schedule.lateness_at(0.99);
    let max = schedule.lateness_at(1.0);
    let mail_min = latencies.iter().flatten().min().copied();
    let mail_max = latencies.iter().flatten().max().copied();
    let mails_missing = latencies.iter().filter(|l| l.is_none()).count();
    let rss_target: u64 = if n <= 100 {
        15
    } else if n <= 10_000 {
        64
    } else {
        300
    };
    let errors = std::fs::read_to_string(&server.log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("ERROR") || line.contains("WARN"))
        .count();

    println!();
    println!(
        "healthchecker-bench: {n} {} monitors every {} s, measured {seconds:.0} s, {} endpoint(s), {} core(s)",
        args.kind,
        args.interval,
        farm.endpoints(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("{:-<78}", "");
    let row = |name: &str, value: String, target: &str| {
        println!("{name:<34}{value:>22}   {target}");
    };
    row(
        "registration",
        format!(
            "{:.1} s ({:.0}/s)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        ),
        &format!(
            "server CPU {:.0} µs each",
            registration_cpu.as_secs_f64() * 1e6 / n as f64
        ),
    );
    row(
        "checks/s achieved vs expected",
        format!("{rate:.1} / {expected_rate:.1}"),
        "",
    );
    let done_ok = schedule.done_percent() >= 99.9;
    row(
        "scheduled checks done",
        format!(
            "{:.3} % ({}/{})",
            schedule.done_percent(),
            schedule.done,
            schedule.expected
        ),
        &format!(">= 99.9 %            {}", verdict(done_ok)),
    );
    row(
        "monitors never checked",
        schedule.never_checked.to_string(),
        "",
    );
    if schedule.extra > 0 {
        row(
            "checks run twice on one tick",
            schedule.extra.to_string(),
            "",
        );
    }
    let late_ok = p99 < Duration::from_millis(50);
    row("lateness p50", ms(p50), "");
    row(
        "lateness p99",
        ms(p99),
        &format!("< 50 ms              {}", verdict(late_ok)),
    );
    row("lateness max", ms(max), "");
    let incident_ok = incident.as_ref().is_none_or(|incident| {
        let p99 = incident.lateness_at(0.99);
        row(
            "lateness p99 / max while failing",
            format!("{} / {}", ms(p99), ms(incident.lateness_at(1.0))),
            &format!(
                "< 50 ms              {}",
                verdict(p99 < Duration::from_millis(50))
            ),
        );
        p99 < Duration::from_millis(50)
    });
    // DESIGN.md sets the per-check CPU target at 10,000 monitors (below that the fixed costs of
    // batch commits and timers weigh more per check), and a core budget at 100,000.
    let cpu_applies = (10_000..50_000).contains(&n);
    let cpu_ok = !cpu_applies || cpu_per_check <= 70.0;
    row(
        "server CPU per check",
        format!("{cpu_per_check:.1} µs"),
        &if cpu_applies {
            format!("<= 70 µs             {}", verdict(cpu_ok))
        } else {
            "(target set at 10,000 monitors)".to_owned()
        },
    );
    row(
        "server CPU per 1,000 checks",
        format!("{:.1} ms", cpu_per_check),
        "",
    );
    let cores_ok = n <= 10_000 || cores < 0.5;
    row(
        "server cores used",
        format!("{cores:.3}"),
        &if n > 10_000 {
            format!("< 0.5                {}", verdict(cores_ok))
        } else {
            String::new()
        },
    );
    let rss_ok = mib(peak_rss) < rss_target as f64;
    row(
        "server peak RSS (VmHWM)",
        format!("{:.1} MiB", mib(peak_rss)),
        &format!("< {rss_target} MB             {}", verdict(rss_ok)),
    );
    row(
        "server RSS max in window",
        format!("{:.1} MiB", mib(rss_max)),
        "",
    );
    row(
        "server threads / open fds",
        format!("{threads} / {fds}"),
        "",
    );
    let mail_ok = mails_missing == 0 && mail_max.is_some_and(|max| max <= bound);
    if !failing.is_empty() {
        row(
            "mail latency min / max",
            format!(
                "{} / {}",
                mail_min.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
                mail_max.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
            ),
            &format!(
                "<= {:.0} s ({} of {} mailed)  {}",
                bound.as_secs_f64(),
                failing.len() - mails_missing,
                failing.len(),
                verdict(mail_ok)
            ),
        );
        row(
            "mails before the failure",
            mails_before.to_string(),
            &format!("(all mail: {})", all_mail.len()),
        );
    }
    row(
        "bench's own CPU (farm, SMTP)",
        format!("{:.3} cores", bench_cpu.as_secs_f64() / seconds),
        &format!(
            "load average {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    row(
        "farm connections accepted",
        farm.connections
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_string(),
        &format!("stray requests {}", farm.strays()),
    );
    row("server log warnings/errors", errors.to_string(), "");
    println!("{:-<78}", "");
    let all = done_ok
        && late_ok
        && incident_ok
        && cpu_ok
        && cores_ok
        && rss_ok
        && (failing.is_empty() || mail_ok);
    println!("overall: {}", verdict(all));
    if args.keep {
        let kept = data.keep();
        println!("kept: {}", kept.display());
    }
    drop(server);
    Ok(all)
}
