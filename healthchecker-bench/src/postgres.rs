//! A throwaway PostgreSQL cluster for the cluster mode (`--cluster`), as the server's tests start
//! one (healthchecker-server/tests/common/postgres.rs, TESTING.md): Debian's `initdb` into a fresh
//! folder under /tmp, as the unprivileged `postgres` user when the bench runs as root (`initdb`
//! refuses root), started with a Unix socket in that folder only (`listen_addresses=''`: no TCP)
//! and `fsync=off`; stopped (`pg_ctl -m immediate`) and removed when dropped, on every exit path.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail};

/// A running throwaway cluster; stopped and removed when dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The newest Debian `postgresql` package's `bin` folder.
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
    /// Starts a cluster allowing `connections` connections.
    ///
    /// # Errors
    ///
    /// When PostgreSQL is not installed, or `initdb` or the start fails (with the server's log).
    pub fn start(connections: u32) -> anyhow::Result<Postgres> {
        let bin = find_bin().context(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install -y postgresql",
        )?;
        // /proc/self belongs to the process's effective user.
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
        // A short path: the socket's path must fit in 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("hc-bench-pg-")
            .tempdir_in("/tmp")?;
        if as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .output()?;
            if !chown.status.success() {
                bail!("chown postgres: {}", String::from_utf8_lossy(&chown.stderr));
            }
        }
        // The socket folder is ours alone, so any port number will do; one from the process id
        // keeps two benches' shared-memory keys (derived from the port) apart.
        let port = 20_000 + u16::try_from(std::process::id() % 40_000).unwrap_or(0);
        let postgres = Postgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = postgres.dir.path().join("data");
        postgres.pg(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        let options = format!(
            "-k {} -c listen_addresses='' -p {port} -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off -c max_connections={connections}",
            path_str(postgres.dir.path())?
        );
        let log = postgres.dir.path().join("pg.log");
        let started = postgres.pg_output(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        )?;
        if !started.status.success() {
            bail!(
                "pg_ctl start failed: {}\n{}",
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        postgres.pg(
            "createdb",
            &[
                "-h",
                path_str(postgres.dir.path())?,
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "health",
            ],
        )?;
        Ok(postgres)
    }

    /// The `database_url` of its database `health`: the socket folder in `?host=`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@/health?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }

    fn pg(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let output = self.pg_output(tool, args)?;
        if !output.status.success() {
            bail!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn pg_output(&self, tool: &str, args: &[&str]) -> anyhow::Result<Output> {
        let tool = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&tool);
            command
        } else {
            Command::new(&tool)
        };
        command
            .args(args)
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGDATABASE")
            .output()
            .with_context(|| format!("cannot run {}", tool.display()))
    }
}

impl Drop for Postgres {
    /// Stops the cluster at once (nothing in it is kept); the folder goes with the `TempDir`.
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let Ok(data) = path_str(&data).map(str::to_owned) else {
            return;
        };
        match self.pg_output("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]) {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!("pg_ctl stop: {}", String::from_utf8_lossy(&output.stderr)),
            Err(error) => eprintln!("pg_ctl stop: {error:#}"),
        }
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("not a UTF-8 path: {}", path.display()))
}
