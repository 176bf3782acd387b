//! One server per data folder: an exclusive lock held for the server's lifetime.
//!
//! Two servers on one folder would both check every monitor and both send every alert, and their
//! states in memory would drift apart (a leftover process after a restart does this, or a second
//! terminal). So the server binary takes an advisory `flock(2)` on [`LOCK_FILE`] in the folder
//! before anything else of the server starts (its port, its database), writes its PID into the
//! file, and holds it until the server has stopped. A second server finds the lock taken and
//! refuses to start with [`LockError::Held`], naming the folder and that PID. ([`crate::run`]
//! does not lock: the binary owns the folder; tests drive `run` on folders of their own.)
//!
//! The kernel drops the lock when the holder's last descriptor closes, so a lock of a process that
//! died (`kill -9`, a crash, power loss) never blocks a start: the file may still name the dead
//! PID, but only the lock counts, never the file's content. The descriptor is opened close-on-exec
//! (Rust's default), so a program the server runs does not inherit the lock and keep it after the
//! server is gone.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

/// The lock file in the data folder; while a server runs it holds that server's PID.
pub const LOCK_FILE: &str = "server.lock";

/// The data folder, held by this process until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// The open, locked lock file; closing it releases the lock.
    file: File,
    /// The data folder.
    dir: PathBuf,
}

/// Why the data folder cannot be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds the folder.
    #[error(
        "the data folder {} is in use by another healthchecker-server ({}); stop that one first, or give this one another --data-dir",
        dir.display(),
        pid.map_or_else(|| "its PID is not written yet".to_owned(), |pid| format!("PID {pid}"))
    )]
    Held {
        /// The data folder.
        dir: PathBuf,
        /// The holder's PID as written in the lock file, when it could be read.
        pid: Option<u32>,
    },
    /// The folder or its lock file cannot be created, opened or locked.
    #[error("cannot lock the data folder: {}: {source}", path.display())]
    Io {
        /// The folder or the lock file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl DataDirLock {
    /// Creates `dir` if needed and takes it for this process: locks [`LOCK_FILE`] and writes this
    /// process's PID into it. Never blocks.
    ///
    /// # Errors
    ///
    /// [`LockError::Held`] when another process (or another `DataDirLock` of this one) holds the
    /// folder; [`LockError::Io`] when the folder or the file cannot be created or locked.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let io_error = |source: io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        // Not truncated on open: the holder's PID must stay readable for the error below.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    pid: read_pid(&mut file),
                });
            }
            Err(errno) => return Err(io_error(errno.into())),
        }
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        Ok(DataDirLock {
            file,
            dir: dir.to_owned(),
        })
    }

    /// The folder this lock holds.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DataDirLock {
    /// Empties the file while still holding the lock, so that a clean stop leaves no PID behind;
    /// the lock itself goes when the file closes. The file stays: removing it would let a server
    /// that opened it a moment before lock a file no one else can find.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// The PID a holder wrote, if the file holds one (it may be mid-write, or empty).
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).expect("the first lock");
        assert_eq!(first.dir(), data);
        let written = std::fs::read_to_string(data.join(LOCK_FILE)).expect("lock file");
        assert_eq!(written, format!("{}\n", std::process::id()));

        // flock locks belong to an open file, so a second open in this process conflicts too.
        let error = DataDirLock::acquire(&data).expect_err("the folder is held");
        match &error {
            LockError::Held { dir, pid } => {
                assert_eq!(dir, &data);
                assert_eq!(*pid, Some(std::process::id()));
            }
            LockError::Io { .. } => panic!("unexpected: {error}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&data.display().to_string())
                && message.contains(&format!("PID {}", std::process::id())),
            "{message}"
        );

        drop(first);
        assert_eq!(
            std::fs::read_to_string(data.join(LOCK_FILE)).expect("lock file"),
            "",
            "a clean stop leaves no PID behind"
        );
        let again = DataDirLock::acquire(&data).expect("free again once dropped");
        drop(again);
    }

    #[test]
    fn a_stale_pid_in_an_unlocked_file_does_not_block() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(LOCK_FILE), "4000000\n").expect("stale file");
        let lock = DataDirLock::acquire(dir.path()).expect("a stale PID does not count");
        let written = std::fs::read_to_string(dir.path().join(LOCK_FILE)).expect("lock file");
        assert_eq!(written, format!("{}\n", std::process::id()));
        drop(lock);
    }

    #[test]
    fn an_empty_lock_file_of_a_holder_reads_as_no_pid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lock = DataDirLock::acquire(dir.path()).expect("lock");
        // As if the holder had locked but not yet written its PID.
        std::fs::write(dir.path().join(LOCK_FILE), "").expect("empty it");
        let error = DataDirLock::acquire(dir.path()).expect_err("held");
        assert!(
            matches!(error, LockError::Held { pid: None, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("its PID is not written yet"));
        drop(lock);
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, "x").expect("file");
        let error = DataDirLock::acquire(&file).expect_err("not a folder");
        assert!(matches!(error, LockError::Io { .. }), "{error}");
        assert!(
            error.to_string().contains(&file.display().to_string()),
            "{error}"
        );
    }
}
