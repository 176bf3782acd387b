//! The checkpointer thread: folds the WAL back into the database file beside the writer.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so one batch
//! in a few hundred waited for thousands of pages to be copied and the file fsynced: the waiting
//! callers of that batch (a push monitor's ping is answered only once durable) saw tens of
//! milliseconds more than the others. Here the writer's connection only notes, after each commit,
//! how many frames its WAL holds (SQLite's WAL hook); past [`WAL_AUTOCHECKPOINT_PAGES`] this
//! thread runs a `PASSIVE` checkpoint on a connection of its own, which copies what is committed
//! while the writer goes on appending (WAL mode lets both run).
//!
//! The WAL file starts over only once everything in it is copied, and a writer that commits
//! continuously has always appended a little more by the time the checkpoint ends. So the
//! writer's next commit after a checkpoint copies that tail itself (a few batches' pages, not
//! thousands), and its next transaction starts the WAL over. Should this thread be gone, the
//! writer checkpoints in its commit once the WAL holds [`WAL_FALLBACK_PAGES`], so the file stays
//! bounded either way.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

use super::schema::classify;
use super::{StoreError, WAL_AUTOCHECKPOINT_PAGES};

/// WAL frames at which the writer checkpoints in its own commit (four times the usual threshold):
/// only when the checkpointer cannot keep up.
pub(super) const WAL_FALLBACK_PAGES: u32 = 4 * WAL_AUTOCHECKPOINT_PAGES;

/// What the writer and the checkpointer tell each other.
#[derive(Default)]
struct Wanted {
    /// The WAL has reached the threshold: the checkpointer should copy it.
    due: bool,
    /// The checkpointer is copying.
    running: bool,
    /// A checkpoint ended: the writer's next commit copies what came after it.
    tail: bool,
    /// The store closes: stop.
    stop: bool,
}

/// The writer's side: says when a checkpoint is due.
#[derive(Clone, Default)]
struct Signal(Arc<(Mutex<Wanted>, Condvar)>);

impl Signal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Wanted> {
        self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A commit left `frames` frames in the WAL (called by SQLite's WAL hook on the writer
    /// thread); true when that commit should copy the tail of a checkpoint itself.
    fn committed(&self, frames: u32) -> bool {
        if frames < WAL_AUTOCHECKPOINT_PAGES {
            return false;
        }
        let mut wanted = self.lock();
        if std::mem::take(&mut wanted.tail) {
            return true;
        }
        if !wanted.due && !wanted.running {
            wanted.due = true;
            drop(wanted);
            self.0.1.notify_one();
        }
        false
    }

    /// The checkpoint that [`Signal::wait`] started has ended.
    fn copied(&self) {
        let mut wanted = self.lock();
        wanted.running = false;
        wanted.tail = true;
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.0.1.notify_one();
    }

    /// Waits for a checkpoint to be due; false once asked to stop.
    fn wait(&self) -> bool {
        let mut wanted = self.lock();
        loop {
            if wanted.stop {
                return false;
            }
            if std::mem::take(&mut wanted.due) {
                wanted.running = true;
                return true;
            }
            wanted = self
                .0
                .1
                .wait(wanted)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The running checkpointer thread.
pub(super) struct Checkpointer {
    signal: Signal,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Takes over the checkpoints of `writer`, the writing connection on the database at `path`
    /// (already prepared): installs its WAL hook, opens a connection of its own, starts the thread.
    pub(super) fn attach(writer: &mut Connection, path: &Path) -> Result<Checkpointer, StoreError> {
        let signal = Signal::default();
        let hook_signal = signal.clone();
        writer
            .wal_hook(Some(move |wal: &mut Wal, frames| {
                let frames = u32::try_from(frames).unwrap_or(0);
                if hook_signal.committed(frames) || frames >= WAL_FALLBACK_PAGES {
                    // A busy checkpointer is no error of the commit's.
                    let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
                }
                Ok(())
            }))
            .map_err(|error| classify(path, &error))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|error| classify(path, &error))?;
        let thread_path = path.to_owned();
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("hc-store-checkpoint".to_owned())
            .spawn(move || run(&conn, &thread_path, &thread_signal))
            .map_err(|error| StoreError::Sqlite {
                path: path.to_owned(),
                reason: format!("cannot start the checkpoint thread: {error}"),
            })?;
        Ok(Checkpointer {
            signal,
            thread: Some(thread),
        })
    }

    /// Stops the thread after the checkpoint it may be running, and waits for it.
    pub(super) fn stop(&mut self) {
        self.signal.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, path: &Path, signal: &Signal) {
    while signal.wait() {
        let started = Instant::now();
        // PASSIVE: copies what no reader still needs, never waits for the writer or readers.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        }) {
            Ok((frames, copied)) => tracing::trace!(
                frames,
                copied,
                "database {}: checkpoint in {:?}",
                path.display(),
                started.elapsed()
            ),
            Err(error) => tracing::warn!(
                "database {}: checkpoint failed (the writer checkpoints itself past {} pages): {}",
                path.display(),
                WAL_FALLBACK_PAGES,
                classify(path, &error)
            ),
        }
        signal.copied();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Past the threshold the pages reach the database file while the writer's connection stays
    /// open and below the fallback: the checkpointer's connection copied them.
    #[test]
    fn the_wal_is_copied_back_beside_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.db");
        let mut conn = super::super::schema::open_writer(&path).expect("opens");
        let mut checkpointer = Checkpointer::attach(&mut conn, &path).expect("starts");
        conn.execute_batch("CREATE TABLE filler (data BLOB NOT NULL)")
            .expect("creates");
        let size = || std::fs::metadata(&path).expect("the file").len();
        let before = size();
        // A 900-byte row fills a 1 KiB page of its own: commits of 100 rows up to just past the
        // threshold, far below the fallback.
        for _ in 0..WAL_AUTOCHECKPOINT_PAGES / 100 + 10 {
            let tx = conn.transaction().expect("begins");
            for _ in 0..100 {
                tx.execute("INSERT INTO filler (data) VALUES (zeroblob(900))", [])
                    .expect("inserts");
            }
            tx.commit().expect("commits");
        }
        let copied = before + u64::from(WAL_AUTOCHECKPOINT_PAGES) * 1024 / 2;
        let deadline = Instant::now() + Duration::from_secs(20);
        while size() < copied {
            assert!(
                Instant::now() < deadline,
                "the database file is still {} bytes after 20 s: nothing was checkpointed",
                size()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        checkpointer.stop();
    }
}
