//! The data directory's lock: `yunying serve` holds an exclusive lock on
//! `<data>/yunying.lock` for as long as it runs, so that commands that must
//! not run beside a server (`yunying restore`) can tell, and refuse. The
//! lock is the kernel's (flock): it goes with the process, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "yunying.lock";

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Another process holds it (the message says which).
    InUse(String),
    /// The filesystem cannot lock, or the file cannot be made.
    Unavailable(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::InUse(m) | LockError::Unavailable(m) => f.write_str(m),
        }
    }
}

/// Takes the data directory's lock for `what` (`serve`, `restore`), or says
/// who holds it.
pub fn acquire(data: &Path, what: &str) -> Result<DataDirLock, LockError> {
    use LockError::Unavailable;
    std::fs::create_dir_all(data)
        .map_err(|e| Unavailable(format!("cannot create the data directory {}: {e}", data.display())))?;
    let path = data.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Unavailable(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::InUse(format!(
                "the data directory {} is in use ({}): stop the server first",
                data.display(),
                if holder.is_empty() { "locked by another process".to_string() } else { holder.to_string() }
            )));
        }
        Err(TryLockError::Error(e)) => return Err(Unavailable(format!("cannot lock {}: {e}", path.display()))),
    }
    // Who holds it, for the message of whoever finds it locked.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "yunying {what}, pid {}", std::process::id());
    let _ = file.flush();
    Ok(DataDirLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = super::acquire(dir.path(), "serve").unwrap();
        let refused = super::acquire(dir.path(), "restore").unwrap_err().to_string();
        assert!(refused.contains("in use (yunying serve, pid "), "{refused}");
        drop(held);
        super::acquire(dir.path(), "restore").unwrap();
    }
}
