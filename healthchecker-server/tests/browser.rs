//! The dashboard in a real browser, as part of `cargo test`: runs the Node tests of
//! `tests/browser/` (Debian's `chromium` driven by npm `playwright-core`, which downloads no
//! browser) against this build's server binary, on 127.0.0.1.
//!
//! They need `node` (18 or newer), `chromium` and the packages of `tests/browser/`
//! (`npm ci --ignore-scripts` there), and run only in a network namespace of their own with
//! nothing but `lo` (the test is `netns_...` and ignored elsewhere, like the mDNS and ICMP
//! tests); without those parts it skips and says why. With `HC_REQUIRE_BROWSER=1` (set by
//! `.ci/run`) a missing part fails the test instead.
//!
//! ```sh
//! (cd healthchecker-server/tests/browser && npm ci --ignore-scripts)
//! cargo build -p healthchecker-server --all-targets
//! unshare -n sh -c 'ip link set lo up && cargo test -p healthchecker-server --offline --test browser -- --ignored'
//! ```
//!
//! A screenshot of each failed browser test is kept in `tests/browser/artifacts/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The folder of the Node tests.
fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The longest the whole browser suite may take (each of its steps has its own 30 s deadline).
const DEADLINE: Duration = Duration::from_secs(300);

/// The browser Debian installs.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the parts the test needs are here; otherwise says why it is skipped (or fails when
/// `HC_REQUIRE_BROWSER` is set).
fn can_run(test: &str) -> bool {
    healthchecker_client::testing::assert_network_isolated(test);

    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let mut missing = Vec::new();
    if !node {
        missing.push("node (apt-get install nodejs npm)");
    }
    if !Path::new(CHROMIUM).exists() {
        missing.push("chromium (apt-get install --no-install-recommends chromium)");
    }
    if !folder().join("node_modules/playwright-core").is_dir() {
        missing.push("playwright-core (npm ci --ignore-scripts in tests/browser)");
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("needs {}; .ci/run installs them", missing.join(", "));
    assert!(
        std::env::var_os("HC_REQUIRE_BROWSER").is_none(),
        "{test}: HC_REQUIRE_BROWSER is set and the browser tests cannot run: {why}"
    );
    eprintln!("{test}: skipped: {why}");
    false
}

/// Runs `node --test` in `tests/browser` against this build's binary; every browser test
/// (the list, a 503 shown live within 3 s, the detail view, pause with the token, maintenance
/// through its API, a wrong token, a phone in dark mode, no console errors) must pass.
#[test]
#[ignore = "needs an isolated network namespace: see the README, Run it, test it"]
fn netns_the_dashboard_in_chromium() {
    let test = "netns_the_dashboard_in_chromium";
    if !can_run(test) {
        return;
    }
    let mut command = Command::new("node");
    command
        .arg("--test")
        .current_dir(folder())
        .env("HC_SERVER_BIN", common::BINARY)
        .env("CHROMIUM", CHROMIUM);
    let status = common::run_with_deadline(command, DEADLINE, "the browser tests");
    assert!(
        status.success(),
        "the browser tests failed ({status}); their output is above, screenshots in {}",
        folder().join("artifacts").display()
    );
}
