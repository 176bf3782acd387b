//! Running the real `healthchecker-server` binary the way a user does, for full-stack tests.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own part of this module

pub mod apps;
pub mod hooks;
pub mod postgres;
pub mod smtp;
pub mod store_data;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server binary cargo built for these tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_healthchecker-server");

/// How long a test waits for the server to say something before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running server process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    line_rx: mpsc::Receiver<String>,
    /// Base URL from the server's "listening on" log line, e.g. `http://127.0.0.1:41234`.
    pub url: String,
}

/// A `Command` for the server binary in `dir`, with the test environment cleaned of our variables.
pub fn command(dir: &Path) -> Command {
    clean(Command::new(BINARY), dir)
}

/// Like [`command`], with the open-file limits `soft` and `hard` set (by `sh`) before the start.
pub fn command_with_file_limits(dir: &Path, soft: u64, hard: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -S -n {soft} && ulimit -H -n {hard} && exec \"$0\" \"$@\""
        ))
        .arg(BINARY);
    clean(command, dir)
}

/// `command` run in `dir`, without our variables from the test's environment.
fn clean(mut command: Command, dir: &Path) -> Command {
    command
        .current_dir(dir)
        .env_remove("RUST_LOG")
        // systemd's folder would replace ./data as the default data folder.
        .env_remove("STATE_DIRECTORY")
        .env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("HEALTHCHECKER_") {
            command.env_remove(key);
        }
    }
    command
}

/// [`command`] with [`local_args`] and mail to the test's SMTP server on 127.0.0.1:`smtp`.
pub fn mailing_command(dir: &Path, smtp: u16) -> Command {
    let mut command = command(dir);
    command
        .args(local_args(dir))
        .arg("--smtp-url")
        .arg(format!("smtp://127.0.0.1:{smtp}"));
    command
}

/// `GET url` answered with JSON (panics otherwise, naming the URL).
pub async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    let answer = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    answer
        .json()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: not JSON: {error}"))
}

/// Loopback-only, mDNS-off arguments with a data folder inside `dir`.
pub fn local_args(dir: &Path) -> Vec<String> {
    vec![
        "--no-mdns".into(),
        "--bind-addr".into(),
        "127.0.0.1".into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ]
}

impl ServerProcess {
    /// Starts `command` and waits for its "listening on" line.
    pub fn start(command: Command) -> ServerProcess {
        ServerProcess::start_as(command, "server")
    }

    /// Like [`ServerProcess::start`], its log lines shown as `[label] ...` (several servers in
    /// one test).
    pub fn start_as(mut command: Command, label: &str) -> ServerProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (line_tx, line_rx) = mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            let label = label.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[{label}] {line}");
                    lines.lock().expect("lock").push(line.clone());
                    let _ = line_tx.send(line);
                }
            });
        }
        let mut server = ServerProcess {
            child,
            lines,
            line_rx,
            url: String::new(),
        };
        let line = server.wait_for_line("listening on http://");
        let start = line.find("http://").expect("a URL in the line");
        server.url = line[start..]
            .split_whitespace()
            .next()
            .expect("URL")
            .to_owned();
        server
    }

    /// Waits until the server logs a line containing `needle`, and returns it.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        if let Some(line) = self.lines().into_iter().find(|line| line.contains(needle)) {
            return line;
        }
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.line_rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!(
            "the server never logged {needle:?}; it logged:\n{}",
            self.lines().join("\n")
        );
    }

    /// Everything the server logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. "TERM", "INT", "KILL") and waits for the exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
        self.wait(PATIENCE)
            .expect("the server exits after the signal")
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temporary folder for one test.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Runs the binary to completion (for start-up errors): exit status and stderr.
pub fn run_to_end(mut command: Command) -> (ExitStatus, String) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The workspace root, where README.md and config.example live.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

/// Runs `command` (its output goes to the test's) to its end, for at most `limit`: past it the
/// process is sent SIGTERM (so a script's `trap` cleans up), then SIGKILL 10 s later, and the test
/// fails naming `what`.
pub fn run_with_deadline(mut command: Command, limit: Duration, what: &str) -> ExitStatus {
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("{what} does not start: {error}"));
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace && child.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{what} did not finish within {limit:?}");
}

/// Serves `router` on a fresh loopback port for the rest of the test; returns its base URL,
/// e.g. `http://127.0.0.1:41234`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}
