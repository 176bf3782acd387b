//! The cluster mode (`--cluster N`, DESIGN.md "Several servers, one database"): N servers on one
//! throwaway PostgreSQL check the monitors together; then one is killed with SIGKILL.
//!
//! What it measures:
//!
//! * per server, over the measured window: its monitors (its `owner` in `GET /api/v1/monitors`,
//!   the same at the window's start and end), their lateness (as in the single-server mode,
//!   [`crate::report`]) and the server's CPU per check (its CPU over the checks of its monitors);
//! * duplicates: two checks of one monitor less than half an interval apart (two servers
//!   checking it in one interval), in the window and after the kill;
//! * the failover: from the kill -9 of server 1 to the moment the last of the monitors it held
//!   is checked again (target: two intervals); and, for a few of its monitors that fail (half of
//!   them just before the kill, as their second failing check, the one that queues the alert,
//!   is answered; the others just after), that each "is UNHEALTHY" mail arrives once: none lost,
//!   none twice.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use serde::Deserialize;

use crate::farm::Mode;
use crate::farm::split::SplitFarm;
use crate::postgres::Postgres;
use crate::server::ServerProcess;
use crate::{Args, TIMEOUT, UNHEALTHY, ms, raise_nofile, register, report, smtp, verdict};

/// One check as the farm saw it: (monitor, µs since the farm started).
type Check = (u32, u64);

/// The id of server `j`.
fn server_id(j: usize) -> String {
    format!("bench-node-{j}")
}

#[derive(Deserialize)]
struct Listed {
    monitors: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    app: String,
    #[serde(default)]
    owner: Option<String>,
}

/// The owner of each monitor (`bench-<i>` at index `i`) as `api` lists them: the server's index,
/// `None` when unowned or not one of ours.
async fn owners(
    client: &reqwest::Client,
    api: &str,
    n: usize,
    servers: usize,
) -> anyhow::Result<Vec<Option<usize>>> {
    let listed: Listed = client
        .get(format!("{api}/api/v1/monitors"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("GET /api/v1/monitors")?;
    let ids: Vec<String> = (0..servers).map(server_id).collect();
    let mut owners = vec![None; n];
    for entry in listed.monitors {
        let Some(i) = entry
            .app
            .strip_prefix("bench-")
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|&i| i < n)
        else {
            continue;
        };
        owners[i] = entry
            .owner
            .and_then(|owner| ids.iter().position(|id| *id == owner));
    }
    Ok(owners)
}

/// The leases per server from `api`'s `/health` (`cluster.servers`), by id.
async fn leases(client: &reqwest::Client, api: &str) -> anyhow::Result<HashMap<String, u64>> {
    let health: serde_json::Value = client
        .get(format!("{api}/health"))
        .send()
        .await?
        .json()
        .await?;
    let servers = health["cluster"]["servers"]
        .as_array()
        .with_context(|| format!("no cluster.servers in /health: {health}"))?;
    Ok(servers
        .iter()
        .filter_map(|server| {
            Some((
                server["id"].as_str()?.to_owned(),
                server["leases"].as_u64()?,
            ))
        })
        .collect())
}

/// Waits (at most `limit`) until the `live` servers hold all `n` monitors, each at most its
/// share; returns how long it took.
async fn until_balanced(
    client: &reqwest::Client,
    api: &str,
    n: usize,
    live: &[usize],
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let share = n.div_ceil(live.len()) as u64;
    let mut seen = HashMap::new();
    while started.elapsed() < limit {
        if let Ok(leases) = leases(client, api).await {
            let held: u64 = live
                .iter()
                .map(|&j| leases.get(&server_id(j)).copied().unwrap_or(0))
                .sum();
            let fair = live.iter().all(|&j| {
                let count = leases.get(&server_id(j)).copied().unwrap_or(0);
                count > 0 && count <= share
            });
            if held == n as u64 && fair {
                return Ok(started.elapsed());
            }
            seen = leases;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!(
        "the servers {live:?} did not split the {n} monitors within {limit:?}: leases {seen:?}"
    )
}

/// Pairs of consecutive checks of one monitor less than half an interval apart, the second
/// within `[from, to)`; `arrivals` sorted by (monitor, time).
fn duplicates(arrivals: &[Check], interval: Duration, from: u64, to: u64) -> Vec<Check> {
    let half = u64::try_from(interval.as_micros() / 2).unwrap_or(u64::MAX);
    arrivals
        .windows(2)
        .filter(|pair| {
            pair[0].0 == pair[1].0
                && (from..to).contains(&pair[1].1)
                && pair[1].1 - pair[0].1 < half
        })
        .map(|pair| pair[1])
        .collect()
}

/// The cluster mode of [`crate::run`]. `Ok(true)` when every target holds.
///
/// # Errors
///
/// When PostgreSQL or a server cannot start, a registration fails or a server dies.
pub async fn run_cluster(
    args: &Args,
    binary: &Path,
    deadline: Duration,
    count: usize,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let n = args.monitors;
    ensure!(count >= 2, "--cluster needs at least 2 servers");
    ensure!(args.kind == "http", "--cluster runs HTTP monitors only");
    let interval = Duration::from_secs(args.interval);
    // The farm holds a listener per endpoint and, in the end, a kept-alive connection per
    // monitor (each server keeps one per monitor it checks, concurrent checks of one endpoint
    // each take their own), more around a takeover: it is split over as many processes as
    // their open-file limit (inherited from this one) asks for.
    let wanted_endpoints = args.endpoints.unwrap_or(n).clamp(1, n);
    let files = n + n / 4 + wanted_endpoints;
    let limit = raise_nofile(files as u64 + 4096);
    let room = usize::try_from(limit.saturating_sub(1024)).unwrap_or(usize::MAX);
    let parts = files.div_ceil(room.max(1));
    if parts > 1 {
        eprintln!(
            "note: open-file limit {limit}: the farm's {wanted_endpoints} endpoints are served by {parts} processes"
        );
    }

    // Each server's pool, and room for psql.
    let postgres = Postgres::start(u32::try_from(count * 40 + 20).unwrap_or(200))?;
    let database_url = postgres.url();
    eprintln!("PostgreSQL: {database_url}");
    let mailbox = smtp::Mailbox::default();
    let smtp_port = smtp::start(Arc::clone(&mailbox))?;
    let farm = SplitFarm::start(n, wanted_endpoints, parts)
        .await
        .context("cannot start the target farm")?;
    let target_dir = std::env::current_exe()?
        .parent()
        .and_then(|dir| dir.parent())
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let data = tempfile::Builder::new()
        .prefix("healthchecker-bench-cluster-")
        .tempdir_in(&target_dir)?;
    let mut servers = Vec::new();
    for j in 0..count {
        let dir = data.path().join(server_id(j));
        std::fs::create_dir_all(&dir)?;
        let mut env = args.server_env.clone();
        env.push((
            "HEALTHCHECKER_DATABASE_URL".to_owned(),
            database_url.clone(),
        ));
        env.push(("HEALTHCHECKER_SERVER_ID".to_owned(), server_id(j)));
        // A few failing apps at once are no storm here.
        env.push(("HEALTHCHECKER_STORM_MIN".to_owned(), "100000".to_owned()));
        let remaining = deadline.saturating_sub(started.elapsed()) + Duration::from_secs(10);
        let server = ServerProcess::start(binary, &dir, smtp_port, n, &env, remaining).await?;
        eprintln!("{} pid {} on {}", server_id(j), server.pid, server.url);
        servers.push(server);
    }
    let apis: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;

    // Mail goes to a spread of monitors; the failing ones are picked among those server 1 holds.
    let victim = 1;
    let fail = args.fail.clamp(2, n);
    let mailed_count = (fail * count * 4).min(n);
    let mailed: Vec<usize> = (0..mailed_count).map(|j| j * n / mailed_count).collect();
    let plan = register::Plan {
        interval: args.interval,
        timeout: TIMEOUT,
        unhealthy: UNHEALTHY,
        mailed: mailed.clone(),
        http: true,
    };
    eprintln!("registering {n} monitors through the {count} servers ...");
    let took = register::register_spread(&apis, n, |i| farm.url(i), &plan, args.in_flight).await?;
    eprintln!(
        "registered {n} in {:.1} s ({:.0}/s); waiting for the split ...",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let live: Vec<usize> = (0..count).collect();
    let split = until_balanced(&client, &apis[0], n, &live, Duration::from_secs(120)).await?;
    eprintln!(
        "split after {:.1} s; warming up for {} s ...",
        split.as_secs_f64(),
        args.interval + 1
    );
    tokio::time::sleep(interval + Duration::from_secs(1)).await;

    // The measured window.
    let owners_before = owners(&client, &apis[0], n, count).await?;
    let from = u64::try_from(farm.started().elapsed().as_micros())?;
    let cpu0: Vec<Duration> = servers.iter().map(ServerProcess::cpu).collect();
    eprintln!("measuring for {} s ...", args.duration);
    let window = Duration::from_secs(args.duration);
    let window_start = Instant::now();
    while window_start.elapsed() < window {
        tokio::time::sleep(
            Duration::from_millis(500).min(window.saturating_sub(window_start.elapsed())),
        )
        .await;
        for (j, server) in servers.iter_mut().enumerate() {
            ensure!(
                server.running(),
                "{} died:\n{}",
                server_id(j),
                server.log_tail(20)
            );
        }
    }
    let to = u64::try_from(farm.started().elapsed().as_micros())?;
    let measured = window_start.elapsed();
    let cpu: Vec<Duration> = servers
        .iter()
        .zip(&cpu0)
        .map(|(server, before)| server.cpu().saturating_sub(*before))
        .collect();
    let rss: Vec<u64> = servers.iter().map(|server| server.memory().0).collect();
    let owners_after = owners(&client, &apis[0], n, count).await?;
    let moved = owners_before
        .iter()
        .zip(&owners_after)
        .filter(|(before, after)| before != after || before.is_none())
        .count();

    // Failover: some of the victim's mailed monitors fail; it is killed as the first half's
    // second failing checks are answered.
    let held: Vec<usize> = (0..n)
        .filter(|&i| owners_after[i] == Some(victim))
        .collect();
    let failing: Vec<usize> = mailed
        .iter()
        .copied()
        .filter(|&i| owners_after[i] == Some(victim))
        .take(fail)
        .collect();
    if failing.is_empty() {
        eprintln!(
            "note: {} holds none of the mailed monitors",
            server_id(victim)
        );
    }
    let (before_kill, after_kill) = failing.split_at(failing.len().div_ceil(2));
    let counts0 = farm.counts().await?;
    farm.set_mode(before_kill, Mode::Fail503).await?;
    let flipped = Instant::now();
    loop {
        let counts = farm.counts().await?;
        if before_kill.iter().all(|&i| counts[i] >= counts0[i] + 2)
            || flipped.elapsed() > 3 * interval
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let kill_at = u64::try_from(farm.started().elapsed().as_micros())?;
    let killed = Instant::now();
    servers[victim].kill_9();
    farm.set_mode(after_kill, Mode::Fail503).await?;
    eprintln!(
        "killed {} (held {} monitors); waiting for them to be checked again ...",
        server_id(victim),
        held.len()
    );
    let mut first_again: Vec<Option<u64>> = vec![None; n];
    let give_up = 6 * interval;
    while killed.elapsed() < give_up {
        let (arrivals, _) = farm.arrivals().await?;
        for &(i, at) in &arrivals {
            let slot = &mut first_again[i as usize];
            if at > kill_at && slot.is_none_or(|first| at < first) {
                *slot = Some(at);
            }
        }
        if held.iter().all(|&i| first_again[i].is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let not_again = held.iter().filter(|&&i| first_again[i].is_none()).count();
    let failover = held
        .iter()
        .filter_map(|&i| first_again[i])
        .max()
        .map(|last| Duration::from_micros(last - kill_at));
    let survivors: Vec<usize> = (0..count).filter(|&j| j != victim).collect();
    let rebalanced = until_balanced(&client, &apis[0], n, &survivors, 2 * give_up)
        .await
        .map_err(|error| eprintln!("{error:#}"))
        .ok();

    // The mail: every failing monitor told once; then a while more for a second one.
    let mail_bound = interval * (UNHEALTHY + 2) + Duration::from_secs(TIMEOUT + 10);
    let told = |mailbox: &smtp::Mailbox| -> HashMap<usize, usize> {
        let mail = mailbox.lock().map(|mail| mail.clone()).unwrap_or_default();
        let mut told = HashMap::new();
        // One alert's subject is `[healthchecker] bench-<i> is UNHEALTHY`; a digest's (alerts
        // to one address within a short time, a held DEGRADED and the UNHEALTHY after it, say)
        // lists each one's: `[healthchecker] 2 alerts: bench-<i> is DEGRADED, bench-<i> is ...`.
        for accepted in &mail {
            for rest in accepted.subject.split("bench-").skip(1) {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if rest[digits..].starts_with(" is UNHEALTHY")
                    && let Ok(i) = rest[..digits].parse::<usize>()
                {
                    *told.entry(i).or_insert(0) += 1;
                }
            }
        }
        told
    };
    while killed.elapsed() < mail_bound && !failing.iter().all(|i| told(&mailbox).contains_key(i)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(2 * interval).await;
    let end = u64::try_from(farm.started().elapsed().as_micros())?;
    let told = told(&mailbox);
    let lost = failing.iter().filter(|i| !told.contains_key(i)).count();
    let twice: usize = failing
        .iter()
        .filter_map(|i| told.get(i))
        .map(|times| times.saturating_sub(1))
        .sum();
    let stray_mail = told.keys().filter(|i| !failing.contains(i)).count();

    // The figures.
    let (mut arrivals, _) = farm.arrivals().await?;
    arrivals.sort_unstable();
    let dup_window = duplicates(&arrivals, interval, from, to);
    let dup_after = duplicates(&arrivals, interval, kill_at, end);
    let (dup_takeover, dup_other): (Vec<Check>, Vec<Check>) = dup_after
        .into_iter()
        .partition(|&(i, at)| held.contains(&(i as usize)) && first_again[i as usize] == Some(at));
    let after_from = kill_at + u64::try_from((2 * interval).as_micros())?;
    // A monitor taken over has a new phase (its new owner checks it at once, then at its
    // interval): its schedule is estimated from the checks after the takeover alone.
    let since: Vec<Check> = arrivals
        .iter()
        .copied()
        .filter(|&(_, at)| at >= after_from)
        .collect();
    let after = report::schedule(since, n, interval, after_from, end);

    println!();
    println!(
        "healthchecker-bench --cluster {count}: {n} monitors every {} s on one PostgreSQL, measured {:.0} s, {} endpoint(s), {} core(s)",
        args.interval,
        measured.as_secs_f64(),
        farm.endpoints(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("{:-<92}", "");
    let row = |name: &str, value: String, target: &str| {
        println!("{name:<40}{value:>28}   {target}");
    };
    row(
        "registration (spread over the servers)",
        format!(
            "{:.1} s ({:.0}/s)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        ),
        "",
    );
    row(
        "split settled after",
        format!("{:.1} s", split.as_secs_f64()),
        "",
    );
    row(
        "owners changed in the window",
        moved.to_string(),
        &format!("0                    {}", verdict(moved == 0)),
    );
    let mut all = moved == 0;
    for j in 0..count {
        let mine: Vec<usize> = (0..n)
            .filter(|&i| owners_before[i] == Some(j) && owners_after[i] == Some(j))
            .collect();
        let mut index = vec![u32::MAX; n];
        for (k, &i) in mine.iter().enumerate() {
            index[i] = u32::try_from(k).unwrap_or(u32::MAX);
        }
        let own: Vec<(u32, u64)> = arrivals
            .iter()
            .filter(|&&(i, _)| index[i as usize] != u32::MAX)
            .map(|&(i, at)| (index[i as usize], at))
            .collect();
        let schedule = report::schedule(own, mine.len(), interval, from, to);
        let checks = schedule.done + schedule.extra;
        let per_check = cpu[j].as_secs_f64() * 1e6 / checks.max(1) as f64;
        let p99 = schedule.lateness_at(0.99);
        let late_ok = p99 < Duration::from_millis(50);
        let done_ok = schedule.done_percent() >= 99.9;
        all &= late_ok && done_ok;
        println!("{}:", server_id(j));
        row(
            "  monitors held",
            mine.len().to_string(),
            &format!("share {}", n.div_ceil(count)),
        );
        row(
            "  scheduled checks done",
            format!(
                "{:.3} % ({}/{})",
                schedule.done_percent(),
                schedule.done,
                schedule.expected
            ),
            &format!(">= 99.9 %            {}", verdict(done_ok)),
        );
        row(
            "  lateness p50 / p99 / max",
            format!(
                "{} / {} / {}",
                ms(schedule.lateness_at(0.5)),
                ms(p99),
                ms(schedule.lateness_at(1.0))
            ),
            &format!("p99 < 50 ms          {}", verdict(late_ok)),
        );
        row(
            "  server CPU per check",
            format!("{per_check:.1} µs"),
            &format!("{:.3} cores", cpu[j].as_secs_f64() / measured.as_secs_f64()),
        );
        row(
            "  peak RSS (VmHWM)",
            format!("{:.1} MiB", crate::mib(rss[j])),
            "",
        );
    }
    let dup_ok = dup_window.is_empty() && dup_other.is_empty();
    row(
        "duplicates in the window",
        dup_window.len().to_string(),
        &format!("0                    {}", verdict(dup_window.is_empty())),
    );
    row(
        "duplicates after the kill",
        dup_other.len().to_string(),
        &format!("0                    {}", verdict(dup_other.is_empty())),
    );
    row(
        "  takeover checks < interval/2 after",
        dup_takeover.len().to_string(),
        "(the new owner's first check, the old one dead)",
    );
    let failover_ok = not_again == 0 && failover.is_some_and(|failover| failover <= 2 * interval);
    row(
        "failover (kill -9 to the last re-check)",
        failover.map_or("-".to_owned(), |failover| {
            format!("{:.2} s", failover.as_secs_f64())
        }),
        &format!(
            "<= {} s ({} of {} checked again)  {}",
            2 * args.interval,
            held.len() - not_again,
            held.len(),
            verdict(failover_ok)
        ),
    );
    row(
        "survivors hold every monitor after",
        rebalanced.map_or("no".to_owned(), |after| {
            format!("{:.1} s", after.as_secs_f64())
        }),
        "",
    );
    let after_ok = after.lateness_at(0.99) < Duration::from_millis(50);
    row(
        "after the failover: done / p99",
        format!(
            "{:.3} % / {}",
            after.done_percent(),
            ms(after.lateness_at(0.99))
        ),
        &format!("p99 < 50 ms          {}", verdict(after_ok)),
    );
    let mail_ok = lost == 0 && twice == 0 && stray_mail == 0 && !failing.is_empty();
    row(
        "UNHEALTHY mails: failing / lost / twice",
        format!("{} / {lost} / {twice}", failing.len()),
        &format!(
            "({} before the kill) 0 / 0  {}",
            before_kill.len(),
            verdict(mail_ok)
        ),
    );
    row(
        "mails for monitors that never failed",
        stray_mail.to_string(),
        "",
    );
    row(
        "load average",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        "",
    );
    println!("{:-<92}", "");
    all &= dup_ok && failover_ok && after_ok && mail_ok && rebalanced.is_some();
    println!("overall: {}", verdict(all));
    if args.keep {
        println!("kept: {}", data.keep().display());
    }
    drop(servers);
    drop(postgres);
    Ok(all)
}
