//! The client finding a real healthchecker server over real mDNS, only ever inside a network
//! namespace.
//!
//! An mDNS daemon joins the multicast group on every interface that is up, so each test here is
//! `#[ignore]`d with that reason and, when asked for, first checks that it runs in a namespace
//! of its own with nothing but `lo`, failing otherwise (see TESTING.md). Run them the way `.ci/run` does:
//!
//! ```sh
//! cargo build -p healthchecker-client --all-targets
//! unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && \
//!     cargo test -p healthchecker-client --offline --test discovery -- --ignored mdns_'
//! ```
//!
//! The servers are the real thing (`healthchecker_server::run` on `127.0.0.1:0`, advertising on
//! `lo`, data in a temporary folder, mail only logged). Every server advertises under the same
//! instance name (`healthchecker on <hostname>`) and all of them see each other on `lo`, so the
//! tests take turns ([`one_at_a_time`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use healthchecker_client::{
    DEFAULT_DISCOVERY_TIMEOUT, Error, HealthCheckResponse, HealthCheckerServer, Monitor, Stopped,
};
use healthchecker_server::config::{Config, Mdns, Secret};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, MutexGuard, oneshot};
use tokio::task::JoinHandle;

/// Generous bound for anything that should take a few seconds at most.
const PATIENCE: Duration = Duration::from_secs(15);

/// Environment variable telling the helper test what to do.
const ROLE: &str = "HC_CLIENT_DISCOVERY_TEST_ROLE";

/// Fails `test` unless only `lo` is here: these tests are `#[ignore]`d for that reason and run
/// only when asked for (`-- --ignored mdns_` inside `unshare -n`, as .ci/run does).
fn isolated(test: &str) {
    healthchecker_client::testing::assert_network_isolated(test);
}

/// The tests of this file take turns: a client finds whichever server answers first on `lo`.
async fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::const_new(());
    TURN.lock().await
}

/// A real server, run in this process.
struct Server {
    url: String,
    port: u16,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), healthchecker_server::ServerError>>,
}

/// A listener on a port of its own, on loopback.
async fn bind() -> TcpListener {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind 127.0.0.1:0")
}

impl Server {
    /// Starts a server on `listener` with its data in `data_dir`; advertised on `lo` when `mdns`.
    fn start(listener: TcpListener, data_dir: &Path, mdns: bool) -> Server {
        Server::start_with(listener, data_dir, mdns, None)
    }

    /// [`Server::start`], requiring `token` for changes when given.
    fn start_with(
        listener: TcpListener,
        data_dir: &Path,
        mdns: bool,
        token: Option<&str>,
    ) -> Server {
        let port = listener.local_addr().expect("bound").port();
        let mut config = Config::default();
        config.bind_addr = Ipv4Addr::LOCALHOST.into();
        config.port = port;
        config.data_dir = data_dir.to_owned();
        config.mdns = if mdns {
            Mdns::On {
                interfaces: vec!["lo".into()],
            }
        } else {
            Mdns::Off
        };
        config.test_mode = true;
        config.token = token.map(|token| Secret::new(token.to_owned()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(healthchecker_server::run(config, listener, async {
            let _ = stopped.await;
        }));
        Server {
            url: format!("http://127.0.0.1:{port}"),
            port,
            stop,
            task,
        }
    }

    /// Stops it cleanly (mDNS goodbyes included) and waits until it has.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("server task")
            .expect("server stops cleanly");
    }

    /// A client of this server at its URL, without discovery and without a token.
    fn client(&self, app: &str, app_url: &str) -> HealthCheckerServer {
        HealthCheckerServer::at(&self.url, app, app_url)
            .expect("valid")
            .without_token()
    }
}

/// An app with a passing `/health`, so the server's checks of it pass; its base URL.
async fn app() -> (String, JoinHandle<()>) {
    let listener = bind().await;
    let addr: SocketAddr = listener.local_addr().expect("bound");
    let router = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { HealthCheckResponse::new() }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), task)
}

fn monitor() -> Monitor {
    Monitor::new()
        .email("me@example.com")
        .interval(5)
        .timeout(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_discovers_the_server_over_mdns_and_registers() {
    let _turn = one_at_a_time().await;
    isolated("mdns_discovers_the_server_over_mdns_and_registers");
    let data = tempfile::tempdir().expect("temp dir");
    let (app_url, _app) = app().await;

    let started = Instant::now();
    let server = Server::start(bind().await, data.path(), true);
    // The default timeout: what an app gets without configuring anything.
    let client = HealthCheckerServer::discover("disc-a", &app_url)
        .await
        .expect("the server is found over mDNS")
        .without_token();
    let found_after = started.elapsed();
    let registration = client.monitor(monitor()).await.expect("registers");
    let registered_after = started.elapsed();

    assert_eq!(client.url().as_str(), format!("{}/", server.url));
    assert!(
        client
            .instance()
            .is_some_and(|name| name.starts_with("healthchecker on ")),
        "{client:?}"
    );
    assert!(registration.created, "201 for a new registration");
    assert!(!client.token_required(), "the server advertises auth=none");
    let info = client.info().await.expect("info");
    assert_eq!(info.app, "disc-a");
    assert_eq!(info.url.trim_end_matches('/'), app_url);
    assert_eq!(client.stop().await.expect("stop"), Stopped::Removed);

    println!(
        "server start -> discovered over mDNS: {} ms; -> registered (201): {} ms",
        found_after.as_millis(),
        registered_after.as_millis()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_a_server_restarted_on_a_new_port_is_found_again() {
    let _turn = one_at_a_time().await;
    isolated("mdns_a_server_restarted_on_a_new_port_is_found_again");
    let data = tempfile::tempdir().expect("temp dir");
    let (app_url, _app) = app().await;
    let first = Server::start(bind().await, data.path(), true);
    let client = HealthCheckerServer::discover_with_timeout("disc-b", &app_url, PATIENCE)
        .await
        .expect("found")
        .without_token();
    assert!(client.monitor(monitor()).await.expect("registers").created);

    // Bound before the first one stops, so the port is certainly another one.
    let listener = bind().await;
    first.stop().await;
    let second = Server::start(listener, data.path(), true);
    assert_ne!(first_port(&client), second.port);

    // The next call finds the old port refused, looks again, and goes on at the new one.
    let moved = Instant::now();
    let info = client.info().await.expect("found again after the move");
    let took = moved.elapsed();
    assert_eq!(info.app, "disc-b");
    assert_eq!(client.url().port(), Some(second.port));

    // And unregisters there.
    assert_eq!(client.stop().await.expect("stop"), Stopped::Removed);
    let err = second
        .client("disc-b", &app_url)
        .info()
        .await
        .expect_err("gone from the new server");
    assert!(matches!(err, Error::NotMonitored { .. }), "{err:?}");

    println!(
        "restart on a new port: the first call after it re-discovered and succeeded in {} ms",
        took.as_millis()
    );
    second.stop().await;
}

fn first_port(client: &HealthCheckerServer) -> u16 {
    client.url().port().expect("a port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_a_moved_server_that_lost_the_app_gets_it_registered_again() {
    let _turn = one_at_a_time().await;
    isolated("mdns_a_moved_server_that_lost_the_app_gets_it_registered_again");
    let (app_url, _app) = app().await;
    let old_data = tempfile::tempdir().expect("temp dir");
    let first = Server::start(bind().await, old_data.path(), true);
    let client = HealthCheckerServer::discover_with_timeout("disc-lost", &app_url, PATIENCE)
        .await
        .expect("found")
        .without_token();
    client
        .monitor(monitor().interval(7))
        .await
        .expect("registers");

    // Restarted elsewhere with an empty data folder: it knows nothing of the app.
    let listener = bind().await;
    first.stop().await;
    let new_data = tempfile::tempdir().expect("temp dir");
    let second = Server::start(listener, new_data.path(), true);

    let info = client
        .info()
        .await
        .expect("registered again, then answered");
    assert_eq!(info.app, "disc-lost");
    assert_eq!(info.interval, 7, "with the last monitor given");
    assert_eq!(client.url().port(), Some(second.port));
    assert_eq!(client.stop().await.expect("stop"), Stopped::Removed);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_keep_monitored_follows_a_restart_and_registers_again() {
    let _turn = one_at_a_time().await;
    isolated("mdns_keep_monitored_follows_a_restart_and_registers_again");
    let (app_url, _app) = app().await;
    let old_data = tempfile::tempdir().expect("temp dir");
    let first = Server::start(bind().await, old_data.path(), true);
    let client = HealthCheckerServer::discover_with_timeout("disc-keep", &app_url, PATIENCE)
        .await
        .expect("found")
        .without_token();
    client.monitor(monitor()).await.expect("registers");
    let keeper = client.keep_monitored(Duration::from_secs(1));

    // The server comes back on another port, having lost everything; the app makes no call.
    let listener = bind().await;
    first.stop().await;
    let new_data = tempfile::tempdir().expect("temp dir");
    let restarted = Instant::now();
    let second = Server::start(listener, new_data.path(), true);
    let watcher = second.client("disc-keep", &app_url);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match watcher.info().await {
            Ok(info) => {
                assert_eq!(info.url.trim_end_matches('/'), app_url);
                break;
            }
            Err(Error::NotMonitored { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("not registered again within {PATIENCE:?}: {error}"),
        }
    }
    let took = restarted.elapsed();
    assert_eq!(client.url().port(), Some(second.port));

    // After stop(), nothing brings the app back.
    keeper.stop().await;
    assert_eq!(client.stop().await.expect("stop"), Stopped::Removed);
    println!(
        "keep_monitored (period 1 s): registered again on the restarted server {} ms after it \
         started",
        took.as_millis()
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_healthchecker_url_wins_over_mdns() {
    let _turn = one_at_a_time().await;
    isolated("mdns_healthchecker_url_wins_over_mdns");
    let (app_url, _app) = app().await;
    let advertised_data = tempfile::tempdir().expect("temp dir");
    let advertised = Server::start(bind().await, advertised_data.path(), true);
    let quiet_data = tempfile::tempdir().expect("temp dir");
    let quiet = Server::start(bind().await, quiet_data.path(), false);
    // The advertised server is there to be found: make sure it is, before showing it is not used.
    let seen = healthchecker_client::discovery::find_first(PATIENCE)
        .await
        .expect("the advertised server is on the LAN");
    assert_eq!(seen.port, advertised.port);

    // The environment of a process of its own: this test binary again, running the helper.
    let exe = std::env::current_exe().expect("test binary path");
    let output = tokio::task::spawn_blocking({
        let (quiet_url, app_url) = (quiet.url.clone(), app_url.clone());
        move || {
            Command::new(exe)
                .args([
                    "helper_discover_with_env",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env(ROLE, "env")
                .env(healthchecker_client::ENV_URL, quiet_url)
                .env("HC_TEST_APP_URL", app_url)
                .env_remove(healthchecker_client::ENV_TOKEN)
                .stdin(Stdio::null())
                .output()
                .expect("helper runs")
        }
    })
    .await
    .expect("helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("[helper] {stdout}");
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("HC-USED {}/ ", quiet.url)),
        "{stdout}"
    );

    let on = |server: &Server| server.client("disc-env", &app_url);
    assert_eq!(
        on(&quiet).info().await.expect("registered there").app,
        "disc-env"
    );
    let err = on(&advertised).info().await.expect_err("not there");
    assert!(matches!(err, Error::NotMonitored { .. }), "{err:?}");

    // An explicit URL is used as given too, and never replaced: nothing is looked for.
    let explicit = on(&quiet);
    assert_eq!(explicit.instance(), None);
    assert_eq!(
        explicit.stop().await.expect("stop at the explicit URL"),
        Stopped::Removed
    );
    advertised.stop().await;
    quiet.stop().await;
}

/// The process of `healthchecker_url_wins_over_mdns`: `discover` with `HEALTHCHECKER_URL` set.
#[tokio::test]
#[ignore = "helper of healthchecker_url_wins_over_mdns, run by it with HEALTHCHECKER_URL set"]
async fn helper_discover_with_env() {
    if std::env::var(ROLE).as_deref() != Ok("env") {
        eprintln!("helper_discover_with_env: nothing to do on its own");
        return;
    }
    let app_url = std::env::var("HC_TEST_APP_URL").expect("HC_TEST_APP_URL");
    let client = HealthCheckerServer::discover("disc-env", &app_url)
        .await
        .expect("HEALTHCHECKER_URL is used");
    assert_eq!(client.instance(), None, "not found over mDNS");
    let registration = client.monitor(monitor()).await.expect("registers");
    println!("HC-USED {} created={}", client.url(), registration.created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_with_no_server_discover_says_not_found_within_the_timeout() {
    let _turn = one_at_a_time().await;
    isolated("mdns_with_no_server_discover_says_not_found_within_the_timeout");
    for (timeout, discover) in [
        (Duration::from_secs(1), Some(Duration::from_secs(1))),
        (DEFAULT_DISCOVERY_TIMEOUT, None),
    ] {
        let started = Instant::now();
        let result = match discover {
            Some(timeout) => {
                HealthCheckerServer::discover_with_timeout(
                    "disc-none",
                    "http://127.0.0.1:9",
                    timeout,
                )
                .await
            }
            None => HealthCheckerServer::discover("disc-none", "http://127.0.0.1:9").await,
        };
        let took = started.elapsed();
        let err = result.expect_err("nobody is there");
        assert!(
            matches!(&err, Error::ServerNotFound { waited, unreachable } if *waited == timeout && unreachable.is_empty()),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("set HEALTHCHECKER_URL=http://host:port"),
            "{err}"
        );
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "took {took:?} for a timeout of {timeout:?}"
        );
        println!("nothing advertised: {err} (after {} ms)", took.as_millis());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_a_server_that_wants_a_token_says_so_and_locate_server_finds_it() {
    let _turn = one_at_a_time().await;
    isolated("mdns_a_server_that_wants_a_token_says_so_and_locate_server_finds_it");
    let data = tempfile::tempdir().expect("temp dir");
    let (app_url, _app) = app().await;
    let server = Server::start_with(bind().await, data.path(), true, Some("s3cret"));

    let url = healthchecker_client::discovery::locate_server(PATIENCE)
        .await
        .expect("located");
    assert_eq!(url.as_str(), format!("{}/", server.url));

    let client = HealthCheckerServer::discover_with_timeout("disc-token", &app_url, PATIENCE)
        .await
        .expect("found")
        .without_token();
    assert!(client.token_required(), "auth=token is read from TXT");
    // Without the token (the first call also logs a warning saying so) changes are refused...
    let err = client.monitor(monitor()).await.expect_err("refused");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    // ...and with it they are not.
    let client = client.token("s3cret").expect("token");
    assert!(client.monitor(monitor()).await.expect("registers").created);
    assert_eq!(client.stop().await.expect("stop"), Stopped::Removed);
    server.stop().await;
}
