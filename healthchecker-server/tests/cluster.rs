//! Three real servers on one PostgreSQL (DESIGN.md, "Several servers, one database"): the
//! monitors registered through all three are split between them by leases, each checked by one
//! server at a time; after a kill -9 of one, the others check its monitors again within two
//! intervals, with their states, counters and open incidents, and no alert is lost or sent twice;
//! the killed server, started again, takes a share again.
//!
//! A throwaway cluster (tests/common/postgres.rs; skipped without PostgreSQL unless
//! HC_REQUIRE_POSTGRES=1), a real SMTP server (tests/common/smtp.rs), and loopback apps that note
//! every request (tests/common/apps.rs): checks are counted where they arrive, per monitor.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::apps::{Apps, Arrival};
use common::postgres::Postgres;
use common::smtp::{Received, Smtp};
use common::{ServerProcess, get_json, mailing_command, temp_dir};
use serde_json::{Value, json};

/// Monitors registered.
const APPS: usize = 30;
/// Their interval, seconds (the shortest there is).
const INTERVAL: u64 = 5;
const SERVERS: [&str; 3] = ["node-a", "node-b", "node-c"];
/// How long any wait for the cluster gives it before the test fails (generous: the contract's
/// bounds are measured and asserted separately).
const PATIENCE: Duration = Duration::from_secs(60);

fn interval() -> Duration {
    Duration::from_secs(INTERVAL)
}

fn app(i: usize) -> String {
    format!("app-{i:02}")
}

fn index(app: &str) -> usize {
    app.strip_prefix("app-")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("not one of ours: {app}"))
}

fn server_command(dir: &Path, id: &str, database_url: &str, smtp: u16) -> Command {
    let mut cmd = mailing_command(dir, smtp);
    cmd.args(["--server-id", id])
        .env("HEALTHCHECKER_DATABASE_URL", database_url);
    cmd
}

fn start(dir: &Path, id: &str, database_url: &str, smtp: u16) -> ServerProcess {
    let mut cmd = server_command(dir, id, database_url, smtp);
    // a few apps failing together is no storm here
    cmd.args(["--storm-min", "100000"]);
    ServerProcess::start_as(cmd, id)
}

/// Registers the [`APPS`] apps through `urls` in turn, each mailing its own owner.
async fn register(client: &reqwest::Client, urls: &[String], apps: &Apps) {
    for i in 0..APPS {
        let server = &urls[i % urls.len()];
        let answer = client
            .put(format!("{server}/api/v1/monitors/{}", app(i)))
            .json(&json!({
                // one owner each: mail to one address within 10 s is merged into a digest
                "url": apps.url, "path": Apps::path(i), "email": format!("owner-{i}@example.com"),
                "interval": INTERVAL, "timeout": 2, "unhealthy": 2, "healthy": 2,
            }))
            .send()
            .await
            .expect("PUT");
        assert_eq!(
            answer.status(),
            201,
            "PUT {} at {server}: {}",
            app(i),
            answer.text().await.unwrap_or_default()
        );
    }
}

/// What each test here starts with: a throwaway PostgreSQL (its database `health`), a mail
/// server, and an HTTP client.
struct Bed {
    postgres: Postgres,
    database_url: String,
    smtp: Smtp,
    client: reqwest::Client,
}

impl Bed {
    /// `None` (the test is skipped, said on stderr) without PostgreSQL on the machine.
    fn start() -> Option<Bed> {
        let postgres = Postgres::start()?;
        postgres.create_database("health");
        Some(Bed {
            database_url: postgres.url("health"),
            postgres,
            smtp: Smtp::start(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        })
    }
}

/// Polls `probe` every 100 ms until it gives `Ok`, for at most `limit`; fails the test with
/// `what` and the last `Err` (what was seen instead).
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("{what}: not within {limit:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The monitors as `server` lists them: app -> view.
async fn monitors(client: &reqwest::Client, server: &str) -> BTreeMap<String, Value> {
    let list = get_json(client, format!("{server}/api/v1/monitors")).await;
    list["monitors"]
        .as_array()
        .unwrap_or_else(|| panic!("no monitor list: {list}"))
        .iter()
        .map(|m| (m["app"].as_str().expect("app").to_owned(), m.clone()))
        .collect()
}

/// Who owns what, as `server` lists it: app -> owner (`None` when unowned).
async fn owners(client: &reqwest::Client, server: &str) -> BTreeMap<String, Option<String>> {
    monitors(client, server)
        .await
        .into_iter()
        .map(|(app, view)| {
            assert!(
                view.get("owner").is_some(),
                "a monitor on PostgreSQL shows its owner: {view}"
            );
            (app, view["owner"].as_str().map(str::to_owned))
        })
        .collect()
}

/// The leases per server id, from `server`'s `/health`.
async fn leases(client: &reqwest::Client, server: &str) -> Result<BTreeMap<String, u64>, String> {
    let health = get_json(client, format!("{server}/health")).await;
    let servers = health["cluster"]["servers"]
        .as_array()
        .ok_or_else(|| format!("no cluster.servers in /health: {health}"))?;
    let mut leases = BTreeMap::new();
    let mut selves = 0;
    for entry in servers {
        let id = entry["id"]
            .as_str()
            .ok_or_else(|| format!("a server without an id: {health}"))?;
        let held = entry["leases"]
            .as_u64()
            .ok_or_else(|| format!("a server without leases: {health}"))?;
        let heartbeat = entry["heartbeat_at"].as_str().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(heartbeat)
            .map_err(|error| format!("heartbeat_at {heartbeat:?} is not RFC 3339 ({error})"))?;
        if entry["self"] == true {
            selves += 1;
        }
        leases.insert(id.to_owned(), held);
    }
    if selves != 1 {
        return Err(format!("{selves} entries with self: true: {health}"));
    }
    Ok(leases)
}

/// Waits until every server of `urls` sees the same split: the servers `live` (and no other
/// with a lease) holding every monitor, at most ceil(APPS / live) each, every monitor's owner in
/// the lists one of them and matching the leases. Returns the owners.
async fn until_balanced(
    client: &reqwest::Client,
    urls: &[String],
    live: &[&str],
) -> BTreeMap<String, String> {
    let share = APPS.div_ceil(live.len()) as u64;
    eventually(
        &format!("a balanced split over {live:?}"),
        PATIENCE,
        || async move {
            let mut agreed: Option<BTreeMap<String, String>> = None;
            for url in urls {
                let leases = leases(client, url).await?;
                let held: u64 = leases.values().sum();
                for (id, count) in &leases {
                    if !live.contains(&id.as_str()) && *count > 0 {
                        return Err(format!("{url}: {id} is not running and holds {count}"));
                    }
                }
                for id in live {
                    let count = leases.get(*id).copied().unwrap_or(0);
                    if count == 0 || count > share {
                        return Err(format!("{url}: leases {leases:?}"));
                    }
                }
                if held != APPS as u64 {
                    return Err(format!("{url}: leases {leases:?} sum to {held}"));
                }
                let owners = owners(client, url).await;
                let mut owned: BTreeMap<String, String> = BTreeMap::new();
                for (app, owner) in &owners {
                    match owner {
                        Some(owner) if live.contains(&owner.as_str()) => {
                            owned.insert(app.clone(), owner.clone());
                        }
                        other => return Err(format!("{url}: {app} owned by {other:?}")),
                    }
                }
                if owned.len() != APPS {
                    return Err(format!("{url} lists {} monitors", owned.len()));
                }
                for (id, count) in &leases {
                    let listed = owned.values().filter(|owner| *owner == id).count() as u64;
                    if listed != *count {
                        return Err(format!(
                            "{url}: /health says {id} holds {count}, the list {listed}"
                        ));
                    }
                }
                if agreed.as_ref().is_some_and(|agreed| *agreed != owned) {
                    return Err("the servers' lists differ on the owners".to_owned());
                }
                agreed = Some(owned);
            }
            Ok(agreed.expect("at least one server"))
        },
    )
    .await
}

/// Over `[from, to)` every monitor was checked, at the pace of its interval, by one server at a
/// time: no two checks of one monitor less than half an interval apart (two servers checking it
/// in one interval), none more than one and a half apart (a missed check). The first check of
/// the window is measured from the last one before it.
fn assert_steady(all: &[Vec<Arrival>], from: Instant, to: Instant, what: &str) {
    let half = interval() / 2;
    let mut counts = Vec::new();
    for (i, arrivals) in all.iter().enumerate() {
        let times: Vec<Instant> = arrivals
            .iter()
            .map(|arrival| arrival.at)
            .filter(|&at| at < to)
            .collect();
        let in_window = times.iter().filter(|&&at| at >= from).count();
        counts.push(in_window);
        let first = times.iter().position(|&at| at >= from);
        let Some(first) = first else {
            panic!("{what}: {} not checked at all in {:?}", app(i), to - from);
        };
        let gaps = times[first.saturating_sub(1)..]
            .windows(2)
            .map(|pair| pair[1] - pair[0]);
        for gap in gaps {
            assert!(
                gap >= half,
                "{what}: {} checked twice {gap:?} apart (two servers in one interval?); \
                 its checks: {:?}",
                app(i),
                times.iter().map(|&at| at - from).collect::<Vec<_>>()
            );
            assert!(
                gap <= interval() + half,
                "{what}: {} not checked for {gap:?}",
                app(i)
            );
        }
        let last = *times.last().expect("one at least");
        assert!(
            to - last <= interval() + half,
            "{what}: {} not checked in the last {:?}",
            app(i),
            to - last
        );
    }
    eprintln!("{what}: checks per monitor in {:?}: {counts:?}", to - from);
}

/// Waits `window` and returns `(from, to)`: a stretch of checks to look at afterwards.
async fn watch(window: Duration) -> (Instant, Instant) {
    let from = Instant::now();
    tokio::time::sleep(window).await;
    (from, Instant::now())
}

/// Collects mail until `wanted` holds or `limit` passes.
async fn mail_until(
    smtp: &mut Smtp,
    mails: &mut Vec<Received>,
    limit: Duration,
    wanted: impl Fn(&[Received]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        mails.extend(smtp.drain());
        if wanted(mails) || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times each app was told UNHEALTHY, alone or in a digest (a DEGRADED held until the
/// next check goes out with the UNHEALTHY it turned into, to one address in one mail).
fn unhealthy(mails: &[Received]) -> HashMap<String, usize> {
    let mut told = HashMap::new();
    for headline in mails.iter().flat_map(Received::headlines) {
        if let Some(app) = headline.strip_suffix(" is UNHEALTHY") {
            *told.entry(app.to_owned()).or_insert(0) += 1;
        }
    }
    told
}

/// Every mail's recipients and headlines, for a failure's message.
fn listing(mails: &[Received]) -> Vec<(Vec<String>, Vec<String>)> {
    mails
        .iter()
        .map(|mail| (mail.to.clone(), mail.headlines()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_split_the_monitors_and_take_over_from_a_killed_one() {
    let Some(Bed {
        postgres: _cluster,
        database_url,
        mut smtp,
        client,
    }) = Bed::start()
    else {
        return;
    };
    let apps = Apps::start(APPS).await;
    let apps = &apps;
    let client = &client;

    let dirs: Vec<tempfile::TempDir> = SERVERS.iter().map(|_| temp_dir()).collect();
    let mut servers: Vec<ServerProcess> = SERVERS
        .iter()
        .zip(&dirs)
        .map(|(id, dir)| start(dir.path(), id, &database_url, smtp.port))
        .collect();
    let mut urls: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();

    // Registrations through all three; each is seen by every server.
    register(client, &urls, apps).await;
    for url in &urls {
        eventually(
            &format!("{url} lists all {APPS}"),
            PATIENCE,
            || async move {
                let listed = monitors(client, url).await;
                (listed.len() == APPS)
                    .then_some(())
                    .ok_or_else(|| format!("{} monitors", listed.len()))
            },
        )
        .await;
        let one = get_json(client, format!("{url}/api/v1/monitors/{}", app(7))).await;
        assert_eq!(one["app"], app(7), "{url}: {one}");
        assert!(one.get("owner").is_some(), "{url}: no owner in {one}");
    }

    // Split three ways; every monitor checked by one server at a time.
    let before = until_balanced(client, &urls, &SERVERS).await;
    let first = &urls[0];
    eventually("every monitor HEALTHY", PATIENCE, || async move {
        let listed = monitors(client, first).await;
        let not: Vec<String> = listed
            .iter()
            .filter(|(_, view)| view["state"] != "HEALTHY")
            .map(|(app, view)| format!("{app} {}", view["state"]))
            .collect();
        not.is_empty().then_some(()).ok_or_else(|| not.join(", "))
    })
    .await;
    let (from, to) = watch(3 * interval()).await;
    assert_steady(&apps.all(), from, to, "three servers");
    assert_eq!(
        until_balanced(client, &urls, &SERVERS).await,
        before,
        "the owners moved while no server came or went"
    );

    // The victim: node-b. One of its apps turns 503 before the kill, which comes just as its
    // second failing check (the one that makes it UNHEALTHY, and queues the mail) is answered;
    // another turns 503 after the kill.
    let victim = 1;
    let held: Vec<usize> = before
        .iter()
        .filter(|(_, owner)| *owner == SERVERS[victim])
        .map(|(app, _)| index(app))
        .collect();
    assert!(held.len() >= 2, "node-b holds {held:?}");
    let held = &held;
    let (failed_before, failed_after) = (held[0], held[1]);
    apps.set_failing(failed_before, true);
    let second = apps
        .until_failed(failed_before, 2, 3 * interval())
        .await
        .unwrap_or_else(|| panic!("{} was not checked twice", app(failed_before)));
    let killed_at = Instant::now();
    let status = tokio::task::block_in_place(|| servers[victim].signal_and_wait("KILL"));
    eprintln!(
        "killed {} ({status}) {:?} after {}'s second failing check",
        SERVERS[victim],
        killed_at - second,
        app(failed_before)
    );
    apps.set_failing(failed_after, true);
    let survivors: Vec<String> = urls
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != victim)
        .map(|(_, url)| url.clone())
        .collect();

    // Every monitor it held is checked again, within two intervals of the kill (measured here;
    // the wait itself is longer, so a miss shows by how much).
    let again: Vec<(usize, Instant)> =
        eventually("node-b's monitors checked again", PATIENCE, || async move {
            let mut again = Vec::new();
            for &i in held {
                match apps
                    .arrivals(i)
                    .iter()
                    .find(|arrival| arrival.at > killed_at)
                {
                    Some(arrival) => again.push((i, arrival.at)),
                    None => return Err(format!("{} not checked since the kill", app(i))),
                }
            }
            Ok(again)
        })
        .await;
    let (slowest, last) = again
        .iter()
        .max_by_key(|(_, at)| *at)
        .copied()
        .expect("node-b held some");
    let failover = last - killed_at;
    eprintln!(
        "failover: the last of node-b's {} monitors ({}) checked again {failover:?} after the kill",
        held.len(),
        app(slowest)
    );
    assert!(
        failover <= 2 * interval(),
        "{} checked again {failover:?} after the kill (contract: within two intervals)",
        app(slowest)
    );

    let live = [SERVERS[0], SERVERS[2]];
    let after = until_balanced(client, &survivors, &live).await;
    for (app_name, owner) in &before {
        if *owner != SERVERS[victim] {
            assert_eq!(
                after.get(app_name),
                Some(owner),
                "{app_name} moved from a live server"
            );
        }
    }

    // Both failing apps are told UNHEALTHY once: the alert queued as node-b died is not lost
    // and not sent again, the counter of the other moved with it.
    let mut mails = Vec::new();
    let told = |mails: &[Received]| {
        let told = unhealthy(mails);
        told.contains_key(&app(failed_before)) && told.contains_key(&app(failed_after))
    };
    mail_until(&mut smtp, &mut mails, PATIENCE, told).await;
    assert!(
        told(&mails),
        "{} and {} not both told UNHEALTHY; every mail: {:#?}",
        app(failed_before),
        app(failed_after),
        listing(&mails)
    );
    let (from, to) = watch(3 * interval()).await;
    mails.extend(smtp.drain());
    let mut expected = HashMap::new();
    expected.insert(app(failed_before), 1);
    expected.insert(app(failed_after), 1);
    assert_eq!(
        unhealthy(&mails),
        expected,
        "exactly one UNHEALTHY mail for each failing app, none for the others: {:#?}",
        listing(&mails)
    );
    let incidents = get_json(
        client,
        format!(
            "{}/api/v1/monitors/{}/incidents",
            survivors[0],
            app(failed_before)
        ),
    )
    .await;
    let open: Vec<&Value> = incidents["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|incident| incident["closed_at"].is_null())
        .collect();
    assert_eq!(open.len(), 1, "one open incident: {incidents}");
    let mut all = apps.all();
    assert_steady(&all, from, to, "two servers after the kill");

    // node-b starts again (same id, its own folder) and takes a share again.
    servers[victim] = start(
        dirs[victim].path(),
        SERVERS[victim],
        &database_url,
        smtp.port,
    );
    urls[victim] = servers[victim].url.clone();
    let rejoined = until_balanced(client, &urls, &SERVERS).await;
    let share = rejoined
        .values()
        .filter(|owner| *owner == SERVERS[victim])
        .count();
    eprintln!("node-b holds {share} again");
    let (from, to) = watch(3 * interval()).await;
    all = apps.all();
    assert_steady(&all, from, to, "three servers after the restart");
    assert_eq!(
        until_balanced(client, &urls, &SERVERS).await,
        rejoined,
        "the owners moved after the split settled"
    );
    mails.extend(smtp.drain());
    assert_eq!(
        unhealthy(&mails),
        expected,
        "no UNHEALTHY mail again after the restart: {:#?}",
        listing(&mails)
    );
}

/// A push monitor's ping may reach any server: one that does not hold the monitor hands it to
/// the one that does (which records it), and a ping for no monitor stays a 404 everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_to_any_server_reaches_the_one_that_holds_its_monitor() {
    let Some(Bed {
        postgres: _cluster,
        database_url,
        smtp,
        client,
    }) = Bed::start()
    else {
        return;
    };
    let client = &client;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| temp_dir()).collect();
    let servers: Vec<ServerProcess> = ["node-a", "node-b"]
        .iter()
        .zip(&dirs)
        .map(|(id, dir)| start(dir.path(), id, &database_url, smtp.port))
        .collect();
    let urls: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();
    let jobs = 4;
    let mut keys = BTreeMap::new();
    for n in 0..jobs {
        let answer = client
            .put(format!("{}/api/v1/monitors/job-{n}", urls[0]))
            .json(&json!({"kind": "push", "period": 3600, "email": "ops@example.com"}))
            .send()
            .await
            .expect("PUT");
        assert_eq!(answer.status(), 201);
        let view: Value = answer.json().await.expect("JSON");
        let ping = view["ping_url"].as_str().expect("ping_url").to_owned();
        let key = ping.rsplit('/').next().expect("key").to_owned();
        keys.insert(format!("job-{n}"), key);
    }
    // Both servers hold some (the share is 2 each).
    let held = eventually("a split of the jobs", PATIENCE, || async {
        let owners = owners(client, &urls[0]).await;
        let split: Vec<&Option<String>> = owners.values().collect();
        let a = split
            .iter()
            .filter(|o| o.as_deref() == Some("node-a"))
            .count();
        let b = split
            .iter()
            .filter(|o| o.as_deref() == Some("node-b"))
            .count();
        if a == 2 && b == 2 {
            Ok(owners)
        } else {
            Err(format!("{owners:?}"))
        }
    })
    .await;
    for (job, owner) in &held {
        let owner = owner.as_deref().expect("held");
        let (mine, other) = if owner == "node-a" {
            (&urls[0], &urls[1])
        } else {
            (&urls[1], &urls[0])
        };
        let answer = client
            .post(format!("{other}/ping/{}", keys[job]))
            .body("backup done")
            .send()
            .await
            .expect("ping");
        assert_eq!(
            answer.status(),
            200,
            "a ping of {job} at the server that does not hold it"
        );
        let view = get_json(client, format!("{mine}/api/v1/monitors/{job}")).await;
        assert_eq!(view["state"], "HEALTHY", "{job} at its owner: {view}");
        assert!(view["last_ping"].is_string(), "{job}: {view}");
    }
    for url in &urls {
        let answer = client
            .post(format!("{url}/ping/{}", "0".repeat(32)))
            .send()
            .await
            .expect("ping");
        assert_eq!(answer.status(), 404, "a ping for no monitor at {url}");
    }
    drop(servers);
}

/// A storm (20 of 30 apps failing at once) is seen by both servers, each counting every monitor:
/// it is told once, by the first server by id; the per-app alerts are held during it. And the
/// live events of one server carry the checks and transitions of the other's monitors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_told_once_and_live_events_cover_the_other_servers_monitors() {
    let Some(Bed {
        postgres: _cluster,
        database_url,
        mut smtp,
        client,
    }) = Bed::start()
    else {
        return;
    };
    let apps = Apps::start(APPS).await;
    let client = &client;
    let live = ["node-a", "node-b"];
    let dirs: Vec<tempfile::TempDir> = live.iter().map(|_| temp_dir()).collect();
    let servers: Vec<ServerProcess> = live
        .iter()
        .zip(&dirs)
        .map(|(id, dir)| {
            let mut cmd = server_command(dir.path(), id, &database_url, smtp.port);
            cmd.args(["--admin-email", "admin@example.com"]);
            ServerProcess::start_as(cmd, id)
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();
    register(client, &urls, &apps).await;
    until_balanced(client, &urls, &live).await;
    eventually("every app HEALTHY", PATIENCE, || async {
        let seen = monitors(client, &urls[0]).await;
        let healthy = seen.values().filter(|m| m["state"] == "HEALTHY").count();
        if healthy == APPS {
            Ok(())
        } else {
            Err(format!("{healthy} of {APPS} HEALTHY"))
        }
    })
    .await;
    // node-a streams the events of a failing app that node-b checks
    let owners = owners(client, &urls[0]).await;
    let watched = (0..20)
        .map(app)
        .find(|name| owners[name].as_deref() == Some("node-b"))
        .expect("node-b holds some of the first 20");
    let mut stream = client
        .get(format!("{}/api/v1/events?app={watched}", urls[0]))
        .timeout(PATIENCE * 2)
        .send()
        .await
        .expect("GET events");
    assert_eq!(stream.status(), 200);
    let streamed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let streamed = std::sync::Arc::clone(&streamed);
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = stream.chunk().await {
                streamed
                    .lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        })
    };

    for i in 0..20 {
        apps.set_failing(i, true);
    }
    let storm = |mails: &[Received]| {
        mails
            .iter()
            .filter(|mail| mail.subject().contains("many monitors fail at once"))
            .count()
    };
    let mut mails = Vec::new();
    mail_until(&mut smtp, &mut mails, PATIENCE, |mails| storm(mails) > 0).await;
    assert_eq!(storm(&mails), 1, "{:?}", listing(&mails));
    // a while more: the other server tells it neither, nor any app alone
    mail_until(&mut smtp, &mut mails, 4 * interval(), |_| false).await;
    assert_eq!(storm(&mails), 1, "told twice: {:?}", listing(&mails));
    assert_eq!(
        mails.len(),
        1,
        "held during the storm: {:?}",
        listing(&mails)
    );
    assert!(
        mails[0].to.contains(&"admin@example.com".to_owned()),
        "{:?}",
        mails[0].to
    );

    reader.abort();
    let streamed = streamed.lock().expect("lock").clone();
    let events: Vec<Value> = streamed
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|event| event["type"] == "check" && event["check"]["outcome"] == "fail"),
        "a failed check of {watched} at node-a: {streamed}"
    );
    assert!(
        events
            .iter()
            .any(|event| event["type"] == "transition" && event["transition"]["to"] == "UNHEALTHY"),
        "{watched} UNHEALTHY at node-a: {streamed}"
    );
    drop(servers);
}

/// Two servers with config files that declare different monitors: neither removes the other's
/// at its start or reload; a monitor no file declares any more is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_with_different_config_files_keep_each_others_monitors() {
    let Some(Bed {
        postgres: _cluster,
        database_url,
        smtp,
        client,
    }) = Bed::start()
    else {
        return;
    };
    let client = &client;
    let declare = |names: &[&str]| -> String {
        names
            .iter()
            .map(|name| {
                format!(
                    "[[monitor]]\nname = \"{name}\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = 5\ntimeout = 2\n\n"
                )
            })
            .collect()
    };
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| temp_dir()).collect();
    std::fs::write(dirs[0].path().join("config"), declare(&["dev-a", "both"])).expect("config");
    std::fs::write(dirs[1].path().join("config"), declare(&["dev-b", "both"])).expect("config");
    let mut a = start(dirs[0].path(), "node-a", &database_url, smtp.port);
    let b = start(dirs[1].path(), "node-b", &database_url, smtp.port);
    let names = |url: String| async move {
        let listed: Vec<String> = monitors(client, &url).await.into_keys().collect();
        listed
    };
    for url in [&a.url, &b.url] {
        eventually("every declared monitor at both", PATIENCE, || async {
            let listed = names(url.clone()).await;
            if listed == ["both", "dev-a", "dev-b"] {
                Ok(())
            } else {
                Err(format!("{url}: {listed:?}"))
            }
        })
        .await;
    }
    // node-a's file drops dev-a and both: dev-a goes (no file declares it), both stays (node-b's)
    std::fs::write(dirs[0].path().join("config"), declare(&[])).expect("config");
    let status = Command::new("kill")
        .args(["-HUP", &a.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    a.wait_for_line("reloaded:");
    for url in [&a.url, &b.url] {
        eventually("dev-a removed, the others kept", PATIENCE, || async {
            let listed = names(url.clone()).await;
            if listed == ["both", "dev-b"] {
                Ok(())
            } else {
                Err(format!("{url}: {listed:?}"))
            }
        })
        .await;
    }
    drop((a, b));
}
