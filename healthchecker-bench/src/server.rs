//! The server under test: the real `healthchecker-server` binary in its own process, and what
//! `/proc` says about it.
//!
//! The process runs under coreutils `timeout`, so it dies at the bench's hard deadline even when
//! the bench itself is killed with SIGKILL (`timeout` signals its whole process group); dropping
//! [`ServerProcess`] stops that group (normal end, error, panic, Ctrl-C).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A running server; stopped when dropped.
pub struct ServerProcess {
    /// The `timeout` wrapper.
    wrapper: Child,
    /// The server itself (the wrapper's child).
    pub pid: u32,
    /// Its base URL.
    pub url: String,
    /// Where its log goes.
    pub log: PathBuf,
}

/// The cargo profile the server is measured with: `dist` (fat LTO, one codegen unit), the
/// profile of the packages and of the published figures, whichever optimised profile the bench
/// itself was built with.
pub const SERVER_PROFILE: &str = "dist";

/// Finds the server binary: `explicit`, or built now with cargo: with [`SERVER_PROFILE`] when the
/// bench is an optimised build (`--release` or `--profile dist`), else as a debug build.
///
/// # Errors
///
/// When the build fails or the binary is not where it should be.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        // The server runs in its data folder: a relative path must not depend on that.
        return std::fs::canonicalize(path)
            .with_context(|| format!("no server binary at {}", path.display()));
    }
    let exe = std::env::current_exe().context("cannot find the bench's own binary")?;
    let dir = exe.parent().context("the bench binary has no folder")?;
    let profile = dir
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("release")
        .to_owned();
    let target = dir.parent().context("no target folder")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("no workspace")?;
    // Always build: a stale server binary would measure old code.
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--quiet", "-p", "healthchecker-server"]);
    let server_profile = if profile == "release" || profile == SERVER_PROFILE {
        cargo.args(["--profile", SERVER_PROFILE]);
        SERVER_PROFILE
    } else {
        eprintln!(
            "warning: the bench is a {profile} build; build it with --release for real figures"
        );
        profile.as_str()
    };
    let server_dir = target.join(server_profile);
    eprintln!("building healthchecker-server (profile {server_profile}) ...");
    let status = cargo.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build -p healthchecker-server failed");
    }
    let binary = server_dir.join("healthchecker-server");
    if !binary.exists() {
        bail!("{} is missing after the build", binary.display());
    }
    Ok(binary)
}

/// A free port on 127.0.0.1 (free now; the server binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl ServerProcess {
    /// Starts `binary` on 127.0.0.1 with mDNS off, data in `data_dir`, mail to the SMTP server on
    /// `smtp_port`, room for `monitors` monitors and no limit on registrations, and `env` in its environment; killed by `timeout` after `limit` whatever happens; waits until it answers.
    ///
    /// # Errors
    ///
    /// When it cannot be started or does not answer within 20 s.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        smtp_port: u16,
        monitors: usize,
        env: &[(String, String)],
        limit: Duration,
    ) -> anyhow::Result<ServerProcess> {
        let port = free_port()?;
        let log = data_dir.join("server.log");
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new("timeout");
        command
            .arg("--kill-after=5")
            .arg(format!("{}", limit.as_secs().max(1)))
            .arg(binary)
            .args(["--no-mdns", "--bind-addr", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(data_dir.join("data"))
            .arg("--smtp-url")
            .arg(format!("smtp://127.0.0.1:{smtp_port}"))
            .args(["--mail-from", "healthchecker@bench.test"])
            // Room for every monitor, and every registration from this one address at once.
            .arg("--max-monitors")
            .arg(monitors.max(1000).to_string())
            .args(["--max-registrations-per-minute", "0"])
            .args(["--max-monitors-per-client", "0"])
            // No ./config of the caller's, no options from the caller's environment.
            .current_dir(data_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HEALTHCHECKER_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().map(|(key, value)| (key, value)));
        let wrapper = command
            .spawn()
            .context("cannot start `timeout` (coreutils)")?;
        let mut server = ServerProcess {
            pid: 0,
            wrapper,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let children = format!("/proc/{0}/task/{0}/children", server.wrapper.id());
        let started = Instant::now();
        while server.pid == 0 {
            if let Some(pid) = std::fs::read_to_string(&children)
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse().ok())
            {
                server.pid = pid;
            } else if started.elapsed() > Duration::from_secs(5) {
                bail!("the server process did not start");
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let client = reqwest::Client::new();
        loop {
            if let Ok(Some(status)) = server.wrapper.try_wait() {
                bail!(
                    "the server exited ({status}) at start:\n{}",
                    server.log_tail(20)
                );
            }
            let health = client
                .get(format!("{}/health", server.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if health.is_ok_and(|response| response.status().is_success()) {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("the server does not answer:\n{}", server.log_tail(20));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.wrapper.try_wait(), Ok(None))
    }

    /// CPU time used so far (user + system).
    pub fn cpu(&self) -> Duration {
        cpu_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Peak and current resident memory (VmHWM, VmRSS), bytes.
    pub fn memory(&self) -> (u64, u64) {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        (
            status_kib(&text, "VmHWM:") * 1024,
            status_kib(&text, "VmRSS:") * 1024,
        )
    }

    /// Open file descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, Iterator::count)
    }

    /// Threads.
    pub fn threads(&self) -> u64 {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status_kib(&text, "Threads:")
    }

    /// Kills the server itself with SIGKILL (kill -9: no clean stop), not its `timeout` wrapper,
    /// which then exits.
    pub fn kill_9(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }

    /// Signals the process group `timeout` made: the server and anything it started (a profiler
    /// or heaptrack wrapper's children included).
    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.wrapper.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ServerProcess {
    /// SIGTERM (a clean stop), SIGKILL after 5 s, to the whole group; the wrapper reaped.
    fn drop(&mut self) {
        if self.running() {
            self.signal("-TERM");
            let until = Instant::now() + Duration::from_secs(5);
            while self.running() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.signal("-KILL");
        let _ = self.wrapper.kill();
        let _ = self.wrapper.wait();
    }
}

/// `CLK_TCK`, the unit of the CPU times in `/proc/<pid>/stat`.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// utime + stime of a `/proc/.../stat` file.
pub fn cpu_of(stat: &str) -> Duration {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3, `state`.
    let fields: Vec<u64> = text
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_micros(ticks * 1_000_000 / clock_ticks())
}

fn status_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
