//! `/metrics` against Prometheus' own tools, as part of `cargo test`: `promtool check metrics`
//! lints what this build's server serves, and a real Prometheus (Debian's `prometheus`) scrapes
//! it on 127.0.0.1 until `monitor_status` can be queried (`tests/prometheus/scrape`).
//!
//! It needs `promtool`, `prometheus`, `curl` and `python3`, and runs only in a network namespace
//! of its own with nothing but `lo` (the test is `netns_...` and ignored elsewhere); without those
//! tools it skips and says why. With `HC_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs
//! them) a missing tool fails it.
//!
//! ```sh
//! cargo build -p healthchecker-server --all-targets
//! unshare -n sh -c 'ip link set lo up && cargo test -p healthchecker-server --offline --test prometheus -- --ignored'
//! ```

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The longest the scrape may take (the script's own waits are 30 s and 60 s).
const DEADLINE: Duration = Duration::from_secs(180);

/// Whether `tool` runs here.
fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Scrapes `/metrics` with `promtool` and a real Prometheus; fails when either rejects it, when
/// `/metrics` answers without the `metrics_token`, or when `monitor_status` of the server's
/// own monitor is not 1 in Prometheus.
#[test]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
fn netns_prometheus_scrapes_monitor_status() {
    let test = "netns_prometheus_scrapes_monitor_status";
    healthchecker_client::testing::assert_network_isolated(test);
    let missing: Vec<&str> = ["promtool", "prometheus", "curl", "python3"]
        .into_iter()
        .filter(|tool| !runs(tool))
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "needs {} (apt-get install prometheus curl python3; .ci/run installs them)",
            missing.join(", ")
        );
        assert!(
            std::env::var_os("HC_REQUIRE_BROWSER").is_none(),
            "{test}: HC_REQUIRE_BROWSER is set and the scrape cannot run: {why}"
        );
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus/scrape");
    let mut command = Command::new("bash");
    command.arg(script).arg(common::BINARY);
    let status = common::run_with_deadline(command, DEADLINE, "the scrape");
    assert!(
        status.success(),
        "the scrape failed ({status}); its output is above"
    );
}
