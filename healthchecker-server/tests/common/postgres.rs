//! A throwaway PostgreSQL cluster for one test (TESTING.md, "Real parts for milestone 2").
//!
//! [`Postgres::start`] runs Debian's `initdb` into a fresh temporary folder as the unprivileged
//! `postgres` user (when the tests run as root; as the current user otherwise), and starts it with
//! a Unix socket in that folder only (no TCP: `listen_addresses=''`) and `fsync=off`. Dropping the
//! [`Postgres`] stops the cluster (`pg_ctl -m immediate`) and removes the folder, on every exit
//! path of the test (a passing test, a failed assertion, a panic). [`Postgres::start_with_tls`]
//! listens on 127.0.0.1 too, for TLS connections only.
//!
//! Without PostgreSQL on the machine the tests that need one are skipped with a message, unless
//! `HC_REQUIRE_POSTGRES=1` (CI sets it, and installs Debian's `postgresql`): then they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway cluster; stopped and removed when dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The newest `initdb` of Debian's `postgresql` packages, if one is installed.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl Postgres {
    /// Starts a cluster, or returns `None` (after saying why on stderr) when PostgreSQL is not
    /// installed and `HC_REQUIRE_POSTGRES` is not `1`.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is required but missing, or `initdb` or the start fails (with the
    /// server's log).
    pub fn start() -> Option<Postgres> {
        Postgres::start_with(None)
    }

    /// As [`Postgres::start`], and listening on `127.0.0.1` and `127.0.0.2` at
    /// [`Postgres::port`] too, for TLS only (`hostssl` in pg_hba.conf: a connection without TLS over TCP is refused) with the
    /// certificate chain and key `tls` (PEM).
    pub fn start_with_tls(tls: (&str, &str)) -> Option<Postgres> {
        Postgres::start_with(Some(tls))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Postgres> {
        let Some(bin) = find_bin() else {
            let required = std::env::var("HC_REQUIRE_POSTGRES").is_ok_and(|value| value == "1");
            assert!(
                !required,
                "HC_REQUIRE_POSTGRES=1 but no /usr/lib/postgresql/*/bin/initdb: apt-get install -y postgresql"
            );
            eprintln!(
                "skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; \
                 apt-get install -y postgresql, or set HC_REQUIRE_POSTGRES=1 to fail instead)"
            );
            return None;
        };
        let as_postgres = rustix::process::geteuid().is_root();
        // A short path: the socket's path must fit in 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("hc-pg-")
            .tempdir_in("/tmp")
            .expect("a temporary folder");
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        // Each cluster has its own socket folder, so any port number is free; a random one keeps
        // the clusters' shared-memory keys (derived from the port) apart too. Listening on TCP
        // too, it takes one that is free there.
        let port = match tls {
            None => 20_000 + fastrand::u16(..40_000),
            Some(_) => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port(),
        };
        let postgres = Postgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = postgres.data();
        postgres.pg(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let mut options = format!(
            "-k {} -p {port} -c fsync=off -c full_page_writes=off -c max_connections=200",
            path_str(postgres.dir.path())
        );
        match tls {
            None => options.push_str(" -c listen_addresses=''"),
            Some((chain, key)) => {
                for (name, text) in [
                    ("server.crt", chain),
                    ("server.key", key),
                    (
                        "pg_hba.conf",
                        "local all all trust\nhostssl all all 127.0.0.0/8 trust\n",
                    ),
                ] {
                    let file = data.join(name);
                    std::fs::write(&file, text).expect("write into the cluster's folder");
                    std::fs::set_permissions(
                        &file,
                        std::os::unix::fs::PermissionsExt::from_mode(0o600),
                    )
                    .expect("chmod 600");
                    if as_postgres {
                        run(Command::new("chown").arg("postgres:").arg(&file));
                    }
                }
                options.push_str(" -c listen_addresses=127.0.0.1,127.0.0.2 -c ssl=on");
            }
        }
        let log = postgres.dir.path().join("pg.log");
        let started = postgres.pg_output(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(postgres)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder holding the socket (its file is `.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The socket's port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq URL of database `db` on this cluster, as a user writes `database_url`: the socket
    /// folder in `?host=`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@/{db}?host={}&port={}",
            path_str(self.dir.path()),
            self.port
        )
    }

    /// Creates database `name` (each test of a binary takes its own).
    pub fn create_database(&self, name: &str) {
        let created = self.pg_output(
            "createdb",
            &[
                "-h",
                path_str(self.dir.path()),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        );
        assert!(
            created.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&created.stderr)
        );
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let output = self.pg_output(tool, args);
        assert!(
            output.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_output(&self, tool: &str, args: &[&str]) -> Output {
        let tool = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(tool);
            command
        } else {
            Command::new(tool)
        };
        command
            .args(args)
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGDATABASE")
            .output()
            .expect("run a PostgreSQL tool")
    }
}

impl Drop for Postgres {
    /// Stops the cluster at once (nothing in it is kept) and removes its folder.
    fn drop(&mut self) {
        let data = self.data();
        let stopped = self.pg_output(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
        if !stopped.status.success() {
            eprintln!("pg_ctl stop: {}", String::from_utf8_lossy(&stopped.stderr));
        }
        // The TempDir removes the folder after this.
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
