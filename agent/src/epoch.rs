//! The session epoch: a persisted u64 in `state_dir/epoch` that grows before every MQTT
//! CONNECT. The Last Will and the birth carry it, so the server can tell a late will of
//! an old connection from the death of the current one.

use std::io;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::durable;

/// Why the epoch could not be advanced. The agent must not connect without a durable
/// epoch: a reused epoch would let an old Last Will mark the live session offline.
#[derive(Debug, thiserror::Error)]
#[error("cannot store the session epoch in {path}: {source}")]
pub struct EpochError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The persisted epoch.
#[derive(Debug)]
pub struct EpochStore {
    path: PathBuf,
    current: u64,
}

impl EpochStore {
    /// Reads `state_dir/epoch`; a missing or unreadable file counts as 0 (the clock floor
    /// in [`EpochStore::advance`] still keeps the next epoch above any earlier one).
    pub fn open(state_dir: &Path) -> Self {
        let path = state_dir.join("epoch");
        let current = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| {
                warn!(path = %path.display(), content = %s.trim(), "Epoch file is corrupt; starting from the clock.");
                0
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "Cannot read the epoch file; starting from the clock.");
                0
            }
        };
        Self { path, current }
    }

    /// The epoch of the current (or last) session; 0 before the first one.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// Sets the epoch to `max(stored + 1, now_unix_s)` and stores it durably. Call before
    /// every CONNECT; on error the stored and current value are unchanged.
    pub fn advance(&mut self, now_unix_s: u64) -> Result<u64, EpochError> {
        let next = self.current.saturating_add(1).max(now_unix_s);
        durable::write_atomically(&self.path, format!("{next}\n").as_bytes()).map_err(
            |source| EpochError {
                path: self.path.clone(),
                source,
            },
        )?;
        self.current = next;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_state_dir_starts_at_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = EpochStore::open(dir.path());
        assert_eq!(e.current(), 0);
        assert_eq!(e.advance(1_800_000_000).unwrap(), 1_800_000_000);
    }

    #[test]
    fn every_advance_is_higher_even_when_the_clock_stands_still_or_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = EpochStore::open(dir.path());
        let a = e.advance(1000).unwrap();
        let b = e.advance(1000).unwrap();
        let c = e.advance(10).unwrap();
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn the_epoch_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let a = EpochStore::open(dir.path()).advance(5000).unwrap();
        let e = EpochStore::open(dir.path());
        assert_eq!(e.current(), a);
        let mut e = e;
        assert_eq!(e.advance(0).unwrap(), a + 1);
    }

    #[test]
    fn a_corrupt_epoch_file_falls_back_to_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("epoch"), "garbage").unwrap();
        let mut e = EpochStore::open(dir.path());
        assert_eq!(e.advance(1_800_000_000).unwrap(), 1_800_000_000);
    }

    #[test]
    fn a_failed_store_leaves_the_epoch_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("does-not-exist");
        let mut e = EpochStore::open(&missing);
        assert!(e.advance(42).is_err());
        assert_eq!(e.current(), 0);
    }
}
