//! One server per data folder, with the real binary: a second server on a folder in use refuses
//! to start (exit status 2, naming the folder and the holder's PID); a folder whose server was
//! killed with SIGKILL is free at once; the subcommands that only read over HTTP do not care.

mod common;

use std::io::Read as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{PATIENCE, ServerProcess, command, free_port, local_args, temp_dir};
use healthchecker_server::datadir::LOCK_FILE;

/// Runs `cmd` to its end within [`PATIENCE`] (a second server that does not refuse would run
/// forever): its exit status and stderr. Panics, after killing it, when it is still running.
fn run_with_deadline(mut cmd: Command) -> (ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {PATIENCE:?}: a second server started on the same folder");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status, stderr)
}

fn lock_file_pid(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("data").join(LOCK_FILE))
        .expect("the lock file")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_second_server_on_the_same_data_folder_exits_2_naming_the_folder_and_the_pid() {
    let dir = temp_dir();
    let mut first = {
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()));
        ServerProcess::start(cmd)
    };
    // Even on the same port (a leftover server after a restart): the folder's holder is named.
    let port = first.url.rsplit(':').next().expect("a port").to_owned();
    let mut second = command(dir.path());
    second.args(local_args(dir.path())).args(["--port", &port]);
    let (status, stderr) = run_with_deadline(second);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let folder = dir.path().join("data");
    assert!(
        stderr.contains(&format!(
            "the data folder {} is in use by another healthchecker-server (PID {})",
            folder.display(),
            first.pid()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening on"),
        "it never served: {stderr}"
    );

    // The first one is untouched, and still the holder.
    let health = reqwest::get(format!("{}/health", first.url))
        .await
        .expect("the first server still answers");
    assert_eq!(health.status(), 200);
    assert_eq!(lock_file_pid(dir.path()), first.pid().to_string());

    // Subcommands that read over HTTP, or only read the configuration, are not servers.
    let list = command(dir.path())
        .args(["list", "--server", &first.url])
        .output()
        .expect("list runs");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains("no monitors"));
    let check = command(dir.path())
        .arg("check-config")
        .args(local_args(dir.path()))
        .output()
        .expect("check-config runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    assert!(first.signal_and_wait("TERM").success());
    assert_eq!(
        lock_file_pid(dir.path()),
        "",
        "a clean stop leaves no PID behind"
    );
}

#[tokio::test]
async fn after_kill_9_a_new_server_starts_on_the_folder_at_once_and_keeps_its_monitors() {
    let dir = temp_dir();
    let start = || {
        let mut cmd = command(dir.path());
        cmd.args(local_args(dir.path()));
        ServerProcess::start(cmd)
    };
    let client = reqwest::Client::new();
    let mut first = start();
    // Nothing listens on the app's port: its checks fail, on loopback.
    let app = format!("http://127.0.0.1:{}/", free_port());
    let answer = client
        .put(format!("{}/api/v1/monitors/nas", first.url))
        .json(&serde_json::json!({"url": app, "interval": 60}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 201);

    let killed = first.signal_and_wait("KILL");
    assert!(!killed.success());
    // The dead server's PID is still in the file; only the lock counts.
    assert_eq!(lock_file_pid(dir.path()), first.pid().to_string());

    let second = start();
    assert_eq!(lock_file_pid(dir.path()), second.pid().to_string());
    let list: serde_json::Value = client
        .get(format!("{}/api/v1/monitors", second.url))
        .send()
        .await
        .expect("GET monitors")
        .json()
        .await
        .expect("JSON");
    let monitors = list["monitors"].as_array().expect("a list");
    assert_eq!(monitors.len(), 1, "{list}");
    assert_eq!(monitors[0]["app"], "nas");
    assert_eq!(monitors[0]["url"], app);
}
