//! Discovery over real mDNS, only ever inside network namespaces.
//!
//! An mDNS daemon joins the multicast group on every interface that is up, so each test here is
//! `#[ignore]`d with that reason (a plain `cargo test` lists it as ignored) and, when asked for,
//! first checks that it runs in a namespace of its own with nothing but `lo`, failing otherwise
//! (see TESTING.md). Run them the way `.ci/run` does:
//!
//! ```sh
//! cargo build -p healthchecker-server --all-targets
//! unshare -n sh -c 'ip link set lo up && ip link set lo multicast on && \
//!     cargo test -p healthchecker-server --offline --test discovery -- --ignored mdns_'
//! ```
//!
//! The two-host tests build two more namespaces joined by a veth pair (198.18.0.0/24, a
//! benchmarking range) and run one side each in a child process (this test binary again, one of
//! the `#[ignore]`d helper tests, under `ip netns exec`). The namespaces are always deleted.

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use healthchecker_server::discovery::{
    self, AdvertiseOptions, Advertiser, BrowseEvent, Browser, FoundServer, SERVICE_TYPE,
};

/// Generous bound for anything mDNS does here; the figures printed are far below it.
const PATIENCE: Duration = Duration::from_secs(15);

/// Environment variable telling a helper test which side of the two-host test it plays.
const ROLE: &str = "HC_DISCOVERY_TEST_ROLE";

/// Fails `test` unless only `lo` is here: these tests are `#[ignore]`d for that reason and run
/// only when asked for (`-- --ignored mdns_` inside `unshare -n`, as .ci/run does).
fn isolated(test: &str) {
    healthchecker_client::testing::assert_network_isolated(test);
}

/// A unique instance name for one test, so that tests running side by side on `lo` (all of
/// them see each other's servers) tell theirs apart.
fn instance(tag: &str) -> String {
    format!("hc test {tag} {}", std::process::id())
}

/// A real port, held open for the test.
fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("bound").port();
    (listener, port)
}

fn options(instance: &str, port: u16, interfaces: &[&str], auth_token: bool) -> AdvertiseOptions {
    AdvertiseOptions {
        instance: instance.to_owned(),
        host: healthchecker_server::identity::Identity::of_this_host().host_name,
        port,
        interfaces: interfaces.iter().map(|name| (*name).to_owned()).collect(),
        auth_token,
        // Tests here run side by side on `lo`; the original's one fixed name is tested in
        // tests/legacy.rs.
        legacy: false,
    }
}

/// The first event that `wanted` accepts, within `within`.
async fn wait_for(
    browser: &mut Browser,
    within: Duration,
    mut wanted: impl FnMut(&BrowseEvent) -> bool,
) -> Option<BrowseEvent> {
    tokio::time::timeout(within, async {
        while let Some(event) = browser.next_event().await {
            if wanted(&event) {
                return Some(event);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Waits until `browser` resolves `instance`, on `port` if given.
async fn resolved(browser: &mut Browser, instance: &str, port: Option<u16>) -> FoundServer {
    let event = wait_for(browser, PATIENCE, |event| {
        matches!(event, BrowseEvent::Resolved(found)
            if found.instance == instance && port.is_none_or(|port| found.port == port))
    })
    .await;
    match event {
        Some(BrowseEvent::Resolved(found)) => found,
        other => panic!("{instance} (port {port:?}) not resolved within {PATIENCE:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_advertised_on_lo_is_found_with_its_port_and_txt() {
    isolated("mdns_advertised_on_lo_is_found_with_its_port_and_txt");
    let name = instance("found");
    let (_listener, port) = listener();
    let mut browser = Browser::start().expect("browser starts");

    let started = Instant::now();
    let advertiser = Advertiser::start(&options(&name, port, &["lo"], true)).expect("advertises");
    let found = resolved(&mut browser, &name, None).await;
    let cold = started.elapsed();

    assert_eq!(found.port, port);
    assert_eq!(
        found.version.as_deref(),
        Some(healthchecker_server::VERSION)
    );
    assert_eq!(found.api.as_deref(), Some("/api/v1"));
    assert_eq!(found.auth.as_deref(), Some("token"));
    assert!(found.host.ends_with(".local."), "{found:?}");
    assert!(
        found.addresses.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "{found:?}"
    );
    assert_eq!(found.url(), Some(format!("http://127.0.0.1:{port}")));

    // What a client usually sees: a browser started while the server is long announced. Not a
    // synchronisation: a responder multicasts a record at most once a second (RFC 6762 §6) and
    // announces twice, a second apart, so a query right after start is answered only when that
    // window ends (about 1 s: correct, just not the usual case being measured here).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    let mut late = Browser::start().expect("second browser starts");
    let again = resolved(&mut late, &name, Some(port)).await;
    let warm = started.elapsed();
    assert_eq!(again.url(), found.url());

    println!(
        "discovery time over lo: advertiser start -> resolved {} ms (name probing included); \
         browser start -> resolved, server already up: {} ms",
        cold.as_millis(),
        warm.as_millis()
    );
    advertiser.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_goodbye_on_shutdown_removes_the_service_at_once() {
    isolated("mdns_goodbye_on_shutdown_removes_the_service_at_once");
    let name = instance("goodbye");
    let (_listener, port) = listener();
    let mut browser = Browser::start().expect("browser starts");
    let advertiser = Advertiser::start(&options(&name, port, &["lo"], false)).expect("advertises");
    let found = resolved(&mut browser, &name, Some(port)).await;
    assert_eq!(found.auth.as_deref(), Some("none"));

    let stopping = Instant::now();
    advertiser.shutdown().await;
    let shutdown_took = stopping.elapsed();
    assert!(
        shutdown_took < discovery::SHUTDOWN_TIMEOUT,
        "shutdown took {shutdown_took:?}"
    );
    // Without the goodbye the records would live for their TTL (two minutes and more).
    let removed = wait_for(
        &mut browser,
        Duration::from_secs(5),
        |event| matches!(event, BrowseEvent::Removed { instance } if *instance == name),
    )
    .await;
    assert!(
        removed.is_some(),
        "no ServiceRemoved for {name} within 5 s of shutdown"
    );
    println!(
        "goodbye: shutdown took {} ms; the browser saw the removal {} ms after shutdown started",
        shutdown_took.as_millis(),
        stopping.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_a_restart_on_a_new_port_is_found_on_the_new_port() {
    isolated("mdns_a_restart_on_a_new_port_is_found_on_the_new_port");
    let name = instance("restart");
    let (_first, old_port) = listener();
    let (_second, new_port) = listener();
    let mut browser = Browser::start().expect("browser starts");

    // Default interfaces: in a namespace with only `lo`, the advertiser falls back to it.
    let advertiser = Advertiser::start(&options(&name, old_port, &[], false)).expect("advertises");
    resolved(&mut browser, &name, Some(old_port)).await;
    advertiser.shutdown().await;

    let advertiser =
        Advertiser::start(&options(&name, new_port, &[], false)).expect("advertises again");
    // The running browser follows the move...
    let moved = resolved(&mut browser, &name, Some(new_port)).await;
    assert_eq!(moved.url(), Some(format!("http://127.0.0.1:{new_port}")));
    // ...and a fresh browse knows only the new port. A responder multicasts a record at most
    // once a second, so right after the re-announcement a fresh browser may need a second round
    // (more likely on a loaded machine); it never sees the old port.
    let mut ours = Vec::new();
    for _ in 0..3 {
        let servers = discovery::browse(Duration::from_secs(3))
            .await
            .expect("browse");
        ours = servers
            .into_iter()
            .filter(|s| s.instance == name)
            .collect::<Vec<FoundServer>>();
        if !ours.is_empty() {
            break;
        }
    }
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].port, new_port);
    advertiser.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_find_first_returns_as_soon_as_a_server_answers() {
    isolated("mdns_find_first_returns_as_soon_as_a_server_answers");
    let name = instance("first");
    let (_listener, port) = listener();
    let advertiser = Advertiser::start(&options(&name, port, &["lo"], false)).expect("advertises");
    let mut browser = Browser::start().expect("browser starts");
    resolved(&mut browser, &name, Some(port)).await;

    // Other tests may advertise on `lo` too: any answer will do, as long as it comes. (Here it
    // takes about a second: the server has only just announced, see the first test.)
    let started = Instant::now();
    let first = discovery::find_first(PATIENCE).await.expect("a server");
    assert!(first.url().is_some(), "{first:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    println!(
        "find_first with a server up: {} ms",
        started.elapsed().as_millis()
    );
    advertiser.shutdown().await;
}

// ----- two hosts: a veth pair between two namespaces of our own -----

/// Runs `ip` with `args`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("ip {}: {error}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A network namespace of our own (`ip netns add`), deleted when dropped, whatever happened.
struct Netns(String);

impl Netns {
    fn add(tag: &str, side: &str) -> Result<Netns, String> {
        let name = format!("hc-{tag}-{}-{side}", std::process::id());
        ip(&["netns", "add", &name])?;
        let netns = Netns(name);
        ip(&["-n", &netns.0, "link", "set", "lo", "up"])?;
        Ok(netns)
    }

    fn wait_until_up(&self, dev: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let output = Command::new("ip")
                .args(["-n", &self.0, "-o", "link", "show", "dev", dev])
                .output()
                .map_err(|error| format!("ip link show: {error}"))?;
            if String::from_utf8_lossy(&output.stdout).contains("state UP") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{dev} in {} is not up after 5 s", self.0));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(error) = ip(&["netns", "del", &self.0]) {
            eprintln!("cleanup: {error}");
        }
    }
}

/// Two namespaces, "A" (198.18.0.1 on `vA`) and "B" (198.18.0.2 on `vB`), joined by a veth pair
/// (which goes with them).
struct TwoHosts {
    a: Netns,
    b: Netns,
}

impl TwoHosts {
    /// Builds the pair; `address_a` false leaves `vA` up but without its address.
    fn new(tag: &str, address_a: bool) -> Result<TwoHosts, String> {
        let hosts = TwoHosts {
            a: Netns::add(tag, "a")?,
            b: Netns::add(tag, "b")?,
        };
        let (a, b) = (hosts.a.0.as_str(), hosts.b.0.as_str());
        #[rustfmt::skip]
        let steps: [&[&str]; 4] = [
            &["link", "add", "vA", "netns", a, "type", "veth", "peer", "name", "vB", "netns", b],
            &["-n", b, "addr", "add", "198.18.0.2/24", "dev", "vB"],
            &["-n", a, "link", "set", "vA", "up"],
            &["-n", b, "link", "set", "vB", "up"],
        ];
        for step in steps {
            ip(step)?;
        }
        if address_a {
            hosts.address_a()?;
        }
        // The kernel reports a new link as up a moment later; mDNS skips it until then.
        hosts.a.wait_until_up("vA")?;
        hosts.b.wait_until_up("vB")?;
        Ok(hosts)
    }

    fn address_a(&self) -> Result<(), String> {
        ip(&["-n", &self.a.0, "addr", "add", "198.18.0.1/24", "dev", "vA"])
    }
}

/// This test binary, running only the helper test `test`, in namespace `netns`.
fn helper(netns: &str, test: &str, role: &str, instance: &str, port: u16) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", netns])
        .arg(exe)
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env("HC_DISCOVERY_TEST_INSTANCE", instance)
        .env("HC_DISCOVERY_TEST_PORT", port.to_string());
    command
}

/// A child process, killed if still running when dropped.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of `stream` on a channel, echoed to our stderr with `label`.
fn lines(stream: impl Read + Send + 'static, label: &'static str) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            eprintln!("[{label}] {line}");
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The rest of the first line holding `marker`, from the marker on, within `within`.
///
/// A marker may follow other text on its line: libtest prints `test name ... ` before the
/// helper's own output.
fn line_with(receiver: &mpsc::Receiver<String>, marker: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => {
                if let Some(at) = line.find(marker) {
                    return line[at..].to_owned();
                }
            }
            Err(error) => panic!("no line with {marker:?} within {within:?}: {error}"),
        }
    }
}

/// Advertiser in A, browser in B; returns the browser's `HC-FOUND` line.
fn advertise_in_a_browse_in_b(hosts: &TwoHosts, tag: &str, then: impl FnOnce()) -> String {
    let name = instance(tag);
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let mut advertiser = helper(&hosts.a.0, "helper_advertise", "advertise", &name, port);
    let mut advertiser = Helper(
        advertiser
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("advertiser helper starts"),
    );
    let advertiser_out = lines(
        advertiser.0.stdout.take().expect("piped"),
        "advertiser in A",
    );
    line_with(&advertiser_out, "HC-READY", PATIENCE);
    then();

    let mut browser = helper(&hosts.b.0, "helper_browse", "browse", &name, port);
    let mut browser = Helper(
        browser
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("browser helper starts"),
    );
    let browser_out = lines(browser.0.stdout.take().expect("piped"), "browser in B");
    let found = line_with(&browser_out, "HC-FOUND ", PATIENCE + Duration::from_secs(5));

    // Closing its stdin asks the advertiser to stop cleanly.
    drop(advertiser.0.stdin.take());
    line_with(&advertiser_out, "HC-STOPPED", PATIENCE);
    assert!(
        found.contains(&format!(" port={port} ")),
        "wrong port: {found}"
    );
    found
}

#[test]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
fn mdns_two_hosts_over_a_veth_pair() {
    isolated("mdns_two_hosts_over_a_veth_pair");
    let hosts = TwoHosts::new("veth", true)
        .unwrap_or_else(|error| panic!("cannot build the namespaces (needs `ip netns`): {error}"));
    let found = advertise_in_a_browse_in_b(&hosts, "veth", || {});
    println!("discovery time between two namespaces (advertiser just started): {found}");
    assert!(
        found.contains(" url=http://198.18.0.1:"),
        "the server in A is reached at its veth address: {found}"
    );
    assert!(found.contains(" auth=none"), "{found}");
}

#[test]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
fn mdns_an_address_that_appears_later_is_announced() {
    isolated("mdns_an_address_that_appears_later_is_announced");
    let hosts = TwoHosts::new("later", false)
        .unwrap_or_else(|error| panic!("cannot build the namespaces (needs `ip netns`): {error}"));
    // The advertiser starts with nothing but `lo` addressed; then `vA` gets its address.
    let found = advertise_in_a_browse_in_b(&hosts, "later", || {
        hosts.address_a().expect("address vA");
    });
    println!("address added after start, then found (mDNS looks every 5 s): {found}");
    assert!(found.contains(" url=http://198.18.0.1:"), "{found}");
}

#[test]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
fn mdns_with_nobody_there_browse_is_empty_and_find_first_says_not_found() {
    isolated("mdns_with_nobody_there_browse_is_empty_and_find_first_says_not_found");
    // Other tests advertise on this namespace's `lo`: look from an empty namespace instead.
    let empty = Netns::add("empty", "x")
        .unwrap_or_else(|error| panic!("cannot build a namespace (needs `ip netns`): {error}"));
    let output = helper(&empty.0, "helper_nobody", "nobody", "-", 0)
        .stdin(Stdio::null())
        .output()
        .expect("helper runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("[nobody] {stdout}");
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "HC-NONE browse=[] find_first=no healthchecker server answered over mDNS within 500 ms"
        ),
        "{stdout}"
    );
}

/// The helpers' own check: the namespace holds `lo` and one veth end, nothing else.
fn helper_isolated() -> bool {
    let names = healthchecker_client::testing::interfaces();
    let ok = names
        .iter()
        .all(|name| name == "lo" || name == "vA" || name == "vB");
    if !ok {
        eprintln!(
            "helper: skipped: runs only inside the namespaces of two_hosts_over_a_veth_pair \
             (interfaces here: {})",
            names.join(", ")
        );
    }
    ok
}

fn helper_env() -> Option<(String, u16)> {
    let instance = std::env::var("HC_DISCOVERY_TEST_INSTANCE").ok()?;
    let port = std::env::var("HC_DISCOVERY_TEST_PORT").ok()?.parse().ok()?;
    Some((instance, port))
}

/// Side A of the two-host tests: advertises until stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper of two_hosts_over_a_veth_pair, run by it inside a namespace"]
async fn helper_advertise() {
    if std::env::var(ROLE).as_deref() != Ok("advertise") {
        eprintln!("helper_advertise: nothing to do on its own");
        return;
    }
    let (Some((name, port)), true) = (helper_env(), helper_isolated()) else {
        return;
    };
    let advertiser = Advertiser::start(&options(&name, port, &[], false)).expect("advertises");
    println!("HC-READY");
    tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    })
    .await
    .expect("stdin reader");
    advertiser.shutdown().await;
    println!("HC-STOPPED");
}

/// Side B of the two-host tests: browses until the instance resolves, prints what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper of two_hosts_over_a_veth_pair, run by it inside a namespace"]
async fn helper_browse() {
    if std::env::var(ROLE).as_deref() != Ok("browse") {
        eprintln!("helper_browse: nothing to do on its own");
        return;
    }
    let (Some((name, _)), true) = (helper_env(), helper_isolated()) else {
        return;
    };
    let started = Instant::now();
    let mut browser = Browser::start().expect("browser starts");
    // The first answer may carry only the IPv6 link-local address; wait for a usable one.
    let event = wait_for(&mut browser, PATIENCE, |event| {
        matches!(event, BrowseEvent::Resolved(found) if found.instance == name && found.url().is_some())
    })
    .await;
    let Some(BrowseEvent::Resolved(found)) = event else {
        panic!("{name} not resolved with a usable address within {PATIENCE:?}: {event:?}");
    };
    let addresses: Vec<String> = found.addresses.iter().map(ToString::to_string).collect();
    println!(
        "HC-FOUND port={} url={} addresses={} auth={} elapsed_ms={}",
        found.port,
        found.url().unwrap_or_default(),
        addresses.join(","),
        found.auth.unwrap_or_default(),
        started.elapsed().as_millis()
    );
}

/// Looks for servers where there are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper of with_nobody_there_browse_is_empty_and_find_first_says_not_found"]
async fn helper_nobody() {
    if std::env::var(ROLE).as_deref() != Ok("nobody") {
        eprintln!("helper_nobody: nothing to do on its own");
        return;
    }
    if !helper_isolated() {
        return;
    }
    let window = Duration::from_millis(500);
    let servers = discovery::browse(window).await.expect("browse");
    let error = discovery::find_first(window)
        .await
        .expect_err("nobody is there");
    println!("HC-NONE browse={servers:?} find_first={error}");
}

// ----- an independent implementation: python-zeroconf -----

const ZEROCONF_BROWSER: &str = r#"
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE_TYPE, wanted = sys.argv[1], sys.argv[2]
zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
found = []

def on_change(zeroconf, service_type, name, state_change):
    if state_change is ServiceStateChange.Added and name.startswith(wanted + "."):
        found.append(name)

browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change])
deadline = time.monotonic() + 15
code = 1
while time.monotonic() < deadline:
    if found:
        info = zc.get_service_info(SERVICE_TYPE, found[0], timeout=3000)
        if info is not None:
            txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            print(json.dumps({"name": found[0], "port": info.port, "txt": txt,
                              "addresses": info.parsed_addresses()}))
            code = 0
            break
    time.sleep(0.05)
browser.cancel()
zc.close()
sys.exit(code)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
async fn mdns_python_zeroconf_sees_the_service() {
    isolated("mdns_python_zeroconf_sees_the_service");
    let has_zeroconf = Command::new("python3")
        .args(["-c", "import zeroconf"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_zeroconf,
        "needs python3 with zeroconf (`python3 -m pip install zeroconf`; .ci/run installs it)"
    );
    let name = instance("zeroconf");
    let (_listener, port) = listener();
    let advertiser = Advertiser::start(&options(&name, port, &["lo"], true)).expect("advertises");

    let output = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Helper(
                Command::new("python3")
                    .args(["-c", ZEROCONF_BROWSER, SERVICE_TYPE, &name])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("python3 starts"),
            );
            let out = lines(child.0.stdout.take().expect("piped"), "python-zeroconf");
            line_with(&out, "{", PATIENCE + Duration::from_secs(10))
        })
        .await
        .expect("python helper")
    };
    advertiser.shutdown().await;

    let seen: serde_json::Value = serde_json::from_str(&output).expect("json from python");
    assert_eq!(seen["port"], port, "{seen}");
    assert_eq!(
        seen["txt"]["version"],
        healthchecker_server::VERSION,
        "{seen}"
    );
    assert_eq!(seen["txt"]["api"], "/api/v1", "{seen}");
    assert_eq!(seen["txt"]["auth"], "token", "{seen}");
    assert!(
        seen["addresses"]
            .as_array()
            .is_some_and(|list| list.iter().any(|ip| ip == "127.0.0.1")),
        "{seen}"
    );
}
