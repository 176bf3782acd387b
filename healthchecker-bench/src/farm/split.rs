//! The farm split over child processes, for runs that need more open files than one process may
//! have: every kept-alive connection of every server is an open file of the farm's, so the
//! cluster mode's 30,000 monitors need about 40,000 of them where a sandbox may allow 20,000.
//!
//! Each part is this bench binary again, run with the hidden `--farm-part FROM:TO:PORT:EPOCH`:
//! it serves endpoints `FROM..TO` (of the same numbering as the one-process farm, so the URLs
//! are the same) for every target, counting time from `EPOCH` (µs since the Unix epoch, the
//! parent's start: the parts' arrival times are then on the parent's clock, to the few µs of the
//! clock reads). It answers one command per line on its standard input, on one line of its
//! standard output:
//!
//! * `mode M I,I,...` → `ok`: targets I answer as [`Mode`] M from now on;
//! * `arrivals` → `arrivals I:T I:T ...`: the arrivals since the last `arrivals`;
//! * `stats` → `stats CONNECTIONS STRAYS`.
//!
//! A part ends when its standard input does (its parent is gone), and is killed when its
//! [`SplitFarm`] is dropped.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use super::{Farm, Mode, SHARDS};

/// One check as the farm saw it: (target, µs since the farm started).
type Check = (u32, u64);

/// A farm whose endpoints are served by child processes.
pub struct SplitFarm {
    started: Instant,
    endpoints: Vec<SocketAddr>,
    parts: Mutex<Vec<Part>>,
    seen: Mutex<Seen>,
}

/// What the parts have told so far.
struct Seen {
    checks: Vec<Check>,
    counts: Vec<u32>,
}

struct Part {
    /// Killed on drop.
    _child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
}

impl Part {
    async fn start(
        targets: usize,
        endpoints: std::ops::Range<usize>,
        port: u16,
        epoch: u128,
    ) -> anyhow::Result<(Part, Vec<SocketAddr>)> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--monitors")
            .arg(targets.to_string())
            .arg("--farm-part")
            .arg(format!(
                "{}:{}:{port}:{epoch}",
                endpoints.start, endpoints.end
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a part of the farm")?;
        let input = child.stdin.take().context("no stdin")?;
        let output = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let mut part = Part {
            _child: child,
            input,
            output,
        };
        let ready = part.answer("ready").await?;
        let addresses = ready
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<SocketAddr>, _>>()
            .context("a part of the farm said where it listens in a way not understood")?;
        ensure!(
            addresses.len() == endpoints.len(),
            "a part of the farm listens on {} endpoints, not {}",
            addresses.len(),
            endpoints.len()
        );
        Ok((part, addresses))
    }

    /// The next line, which must start with `word`: the rest of it.
    async fn answer(&mut self, word: &str) -> anyhow::Result<String> {
        let line = tokio::time::timeout(Duration::from_secs(60), self.output.next_line())
            .await
            .context("a part of the farm did not answer within 60 s")??
            .context("a part of the farm ended")?;
        match line.split_once(' ') {
            Some((first, rest)) if first == word => Ok(rest.to_owned()),
            None if line == word => Ok(String::new()),
            _ => bail!("a part of the farm answered {line:?} where {word:?} was due"),
        }
    }

    async fn ask(&mut self, command: &str, word: &str) -> anyhow::Result<String> {
        self.input.write_all(command.as_bytes()).await?;
        self.input.write_all(b"\n").await?;
        self.input.flush().await?;
        self.answer(word).await
    }
}

impl SplitFarm {
    /// Starts `targets` targets on `endpoints` listeners (at least 1) served by `parts` child
    /// processes, each with a contiguous block of the endpoints.
    ///
    /// # Errors
    ///
    /// When a part cannot start or bind its listeners.
    pub async fn start(targets: usize, endpoints: usize, parts: usize) -> anyhow::Result<Self> {
        let endpoints = endpoints.clamp(1, targets.max(1));
        let parts = parts.clamp(1, endpoints);
        let started = Instant::now();
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros();
        let block = |k: usize| k * endpoints / parts..(k + 1) * endpoints / parts;
        // The first part picks the port; the others listen on it where they can.
        let (first, mut addresses) = Part::start(targets, block(0), 0, epoch).await?;
        let port = addresses[0].port();
        let mut started_parts = vec![first];
        for k in 1..parts {
            let (part, more) = Part::start(targets, block(k), port, epoch).await?;
            started_parts.push(part);
            addresses.extend(more);
        }
        Ok(SplitFarm {
            started,
            endpoints: addresses,
            parts: Mutex::new(started_parts),
            seen: Mutex::new(Seen {
                checks: Vec::new(),
                counts: vec![0; targets],
            }),
        })
    }

    /// The base URL of target `i`, as [`Farm::url`].
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.endpoints[i % self.endpoints.len()])
    }

    /// Endpoints in use.
    pub fn endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// When the farm started: arrival times count from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Sets how targets `ids` answer from now on, in every part.
    ///
    /// # Errors
    ///
    /// When a part is gone.
    pub async fn set_mode(&self, ids: &[usize], mode: Mode) -> anyhow::Result<()> {
        let list: Vec<String> = ids.iter().map(usize::to_string).collect();
        let command = format!("mode {} {}", mode as u8, list.join(","));
        for part in self.parts.lock().await.iter_mut() {
            part.ask(&command, "ok").await?;
        }
        Ok(())
    }

    /// Reads the parts' new arrivals into `seen`.
    async fn refresh(&self) -> anyhow::Result<tokio::sync::MutexGuard<'_, Seen>> {
        let mut seen = self.seen.lock().await;
        for part in self.parts.lock().await.iter_mut() {
            let line = part.ask("arrivals", "arrivals").await?;
            for pair in line.split_whitespace() {
                let (target, at) = pair
                    .split_once(':')
                    .with_context(|| format!("an arrival {pair:?} not understood"))?;
                let target: u32 = target.parse()?;
                if let Some(count) = seen.counts.get_mut(target as usize) {
                    *count += 1;
                }
                seen.checks.push((target, at.parse()?));
            }
        }
        Ok(seen)
    }

    /// Every arrival so far, as (target, µs since start), and the count per target.
    ///
    /// # Errors
    ///
    /// When a part is gone or says what cannot be read.
    pub async fn arrivals(&self) -> anyhow::Result<(Vec<Check>, Vec<u32>)> {
        let seen = self.refresh().await?;
        Ok((seen.checks.clone(), seen.counts.clone()))
    }

    /// The count of arrivals per target so far (cheaper than [`SplitFarm::arrivals`]).
    ///
    /// # Errors
    ///
    /// When a part is gone or says what cannot be read.
    pub async fn counts(&self) -> anyhow::Result<Vec<u32>> {
        Ok(self.refresh().await?.counts.clone())
    }

    /// Connections accepted and requests that named no target, over all parts.
    ///
    /// # Errors
    ///
    /// When a part is gone or says what cannot be read.
    pub async fn stats(&self) -> anyhow::Result<(u64, u64)> {
        let (mut connections, mut strays) = (0, 0);
        for part in self.parts.lock().await.iter_mut() {
            let line = part.ask("stats", "stats").await?;
            let mut numbers = line.split_whitespace().map(str::parse::<u64>);
            connections += numbers.next().context("no connections count")??;
            strays += numbers.next().context("no strays count")??;
        }
        Ok((connections, strays))
    }
}

/// Runs one part of a [`SplitFarm`] (the hidden `--farm-part FROM:TO:PORT:EPOCH` of the bench
/// binary) until its standard input ends.
///
/// # Errors
///
/// When `spec` cannot be read, the listeners cannot be bound or the parent cannot be written to.
pub async fn serve_part(targets: usize, spec: &str) -> anyhow::Result<()> {
    let fields: Vec<&str> = spec.split(':').collect();
    let [from, to, port, epoch] = fields[..] else {
        bail!("--farm-part wants FROM:TO:PORT:EPOCH, got {spec:?}");
    };
    let (from, to, port, epoch): (usize, usize, u16, u64) =
        (from.parse()?, to.parse()?, port.parse()?, epoch.parse()?);
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH + Duration::from_micros(epoch))?;
    let started = Instant::now()
        .checked_sub(since_epoch)
        .context("the farm's start is too far back")?;
    let farm = Farm::start_part(targets, from..to, port, started).await?;
    let mut output = tokio::io::stdout();
    let say = |line: String| {
        let mut line = line.into_bytes();
        line.push(b'\n');
        line
    };
    let addresses: Vec<String> = farm.endpoints.iter().map(ToString::to_string).collect();
    output
        .write_all(&say(format!("ready {}", addresses.join(" "))))
        .await?;
    output.flush().await?;
    let mut cursor = [0; SHARDS];
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(command) = commands.next_line().await? {
        let answer = match command.split_once(' ').unwrap_or((&command, "")) {
            ("mode", rest) => {
                let (mode, ids) = rest.split_once(' ').unwrap_or((rest, ""));
                let mode = match mode {
                    "0" => Mode::Pass,
                    "1" => Mode::Fail503,
                    "2" => Mode::Close,
                    _ => bail!("no mode {mode:?}"),
                };
                let ids = ids
                    .split(',')
                    .filter(|id| !id.is_empty())
                    .map(str::parse)
                    .collect::<Result<Vec<usize>, _>>()?;
                farm.set_mode(&ids, mode);
                "ok".to_owned()
            }
            ("arrivals", _) => {
                let mut line = String::from("arrivals");
                for (target, at) in farm.arrivals_after(&mut cursor) {
                    let _ = write!(line, " {target}:{at}");
                }
                line
            }
            ("stats", _) => format!(
                "stats {} {}",
                farm.connections.load(std::sync::atomic::Ordering::Relaxed),
                farm.strays()
            ),
            _ => bail!("no command {command:?}"),
        };
        output.write_all(&say(answer)).await?;
        output.flush().await?;
    }
    Ok(())
}
