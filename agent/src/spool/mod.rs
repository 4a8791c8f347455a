//! The event spool: every device transition is written to disk before it is published,
//! and leaves the spool only when the broker has acknowledged it, so neither a broker
//! outage nor an agent crash loses an event — up to the spool's bound.
//!
//! Layout under `state_dir/spool/`:
//! * `events.log` — one record per line: 8 hex digits of the CRC32 of the JSON, a space,
//!   the JSON [`Event`], `\n`; fsynced after every append. A record torn by a crash fails
//!   its CRC and is skipped (counted and logged) on the next start.
//! * `acked` — `{watermark} {dropped}\n`, replaced atomically. Every event with an id at
//!   or below the watermark has been acknowledged or dropped; `dropped` counts the events
//!   dropped since the state directory was made (a file of the older form, the watermark
//!   alone, reads as none dropped). Acknowledgements that arrive out of order are kept in
//!   memory until the ones before them arrive; after a crash those few are sent again,
//!   which the server's de-duplication on (campus, id) absorbs.
//!
//! # The bound
//!
//! The spool keeps at most `spool.max_events` events and `spool.max_bytes` bytes of
//! records waiting for acknowledgement. An append beyond that drops the **oldest**
//! waiting events (never the one just appended): they are the most likely to have been
//! superseded by later transitions of the same device, and a birth sent afterwards
//! carries every device's current state anyway. The watermark moves past them.
//!
//! Drops are persisted lazily, with the next watermark write or before the log is
//! rewritten: until then the dropped records are still in the log above the stored
//! watermark, and a crash makes [`Spool::open`] drop and count them again, so the stored
//! total stays exact without an extra fsync per dropped event. An event dropped while it
//! was in flight and acknowledged afterwards did reach the broker: it is taken off the
//! count again.
//!
//! The log is truncated when everything in it is acknowledged, and rewritten with only
//! the waiting records when its dead prefix (acknowledged or dropped) grows large, so it
//! stays within about twice the bound however long the agent runs.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use campuswatch_protocol::Event;
use tracing::{info, warn};

use crate::config::SpoolConfig;
use crate::durable;

/// Rewrite the log once it holds more than this many records of which at least half are
/// acknowledged or dropped.
/// (Small under test so that compaction is exercised without thousands of fsyncs.)
const COMPACT_AFTER_RECORDS: usize = if cfg!(test) { 16 } else { 1024 };

/// Events the session publishes from the spool without their acknowledgement, at most.
/// Bounds what one broker round trip must carry after an outage, and keeps rumqttc's own
/// in-flight window free.
pub const MAX_EVENTS_IN_FLIGHT: usize = 32;

/// How many of the most recently dropped ids are remembered, so that an acknowledgement
/// of one of them (it was in flight) takes it off the count. More than the session's
/// in-flight window.
const RECENT_DROPS: usize = 2 * MAX_EVENTS_IN_FLIGHT;

/// A spool file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("event spool {path}: {source}")]
pub struct SpoolError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// What [`Spool::open`] found on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Unacknowledged events that will be published again, in order.
    pub replay: usize,
    /// Records that failed their CRC or did not parse (torn writes), skipped.
    pub corrupt: usize,
    /// Records already acknowledged (or dropped before), discarded.
    pub acked: usize,
    /// Waiting events dropped now because they exceed the bound (a crash before their
    /// drop was stored, or a bound lowered since the last run).
    pub dropped: u64,
}

/// One waiting event and the size of its record.
#[derive(Debug)]
struct Spooled {
    event: Event,
    bytes: u64,
}

/// The on-disk event spool. Owned by one task (the MQTT session).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    log_path: PathBuf,
    acked_path: PathBuf,
    log: File,
    limits: SpoolConfig,
    /// Unacknowledged events in id order (including ones acknowledged out of order that
    /// wait for an earlier one).
    pending: VecDeque<Spooled>,
    /// Sum of `pending`'s record sizes.
    pending_bytes: u64,
    /// Acknowledged ids above the watermark.
    acked_above: BTreeSet<u64>,
    watermark: u64,
    /// Events dropped since the state directory was made.
    dropped: u64,
    /// The newest dropped ids, oldest first (at most [`RECENT_DROPS`]).
    recent_drops: VecDeque<u64>,
    /// The watermark or the drop count changed since `acked` was written.
    marks_dirty: bool,
    /// Records in the log file, acknowledged or not.
    log_records: usize,
    /// The newest id handed out (0 if none ever was).
    last_id: u64,
    next_id: u64,
    /// A write failed half-way: the log must be rewritten before the next append.
    dirty: bool,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError {
        path: path.to_path_buf(),
        source,
    }
}

fn encode_record(event: &Event) -> Vec<u8> {
    let json = serde_json::to_vec(event).unwrap_or_default();
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

fn decode_record(line: &[u8]) -> Option<Event> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    if line.get(8) != Some(&b' ') {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Reads `{watermark} [{dropped}]`. A value that does not parse counts as 0, with a
/// warning: replaying acknowledged events is harmless (the server de-duplicates), losing
/// unacknowledged ones is not.
fn parse_marks(path: &Path, text: &str) -> (u64, u64) {
    let mut fields = text.split_whitespace();
    let mut number = |what: &str| match fields.next().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            warn!(path = %path.display(), field = what, "Spool mark is corrupt; counting it as 0 (spooled events are replayed).");
            0
        }
    };
    let watermark = number("watermark");
    let dropped = number("dropped");
    (watermark, dropped)
}

impl Spool {
    /// Opens (creating if needed) the spool under `state_dir/spool`, drops acknowledged
    /// and corrupt records and whatever exceeds `limits`, and prepares the rest for
    /// replay. `now_ms` seeds the event ids of a fresh state directory, so a reinstalled
    /// gateway never reuses an old id.
    pub fn open(
        state_dir: &Path,
        now_ms: u64,
        limits: SpoolConfig,
    ) -> Result<(Spool, Recovery), SpoolError> {
        let dir = state_dir.join("spool");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let log_path = dir.join("events.log");
        let acked_path = dir.join("acked");

        let acked_file = match fs::read_to_string(&acked_path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&acked_path)(e)),
        };
        let (watermark, dropped) = acked_file
            .as_deref()
            .map_or((0, 0), |s| parse_marks(&acked_path, s));

        let bytes = match fs::read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&log_path)(e)),
        };
        let mut recovery = Recovery::default();
        let mut pending: VecDeque<Spooled> = VecDeque::new();
        let mut max_id = 0u64;
        let mut records = 0usize;
        let mut lines = bytes.split(|b| *b == b'\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                // Text after the last newline is a record torn by a crash mid-append.
                if !line.is_empty() {
                    recovery.corrupt += 1;
                }
                break;
            }
            records += 1;
            let Some(ev) = decode_record(line) else {
                recovery.corrupt += 1;
                continue;
            };
            max_id = max_id.max(ev.id);
            let newest_kept = pending.back().map_or(0, |s| s.event.id);
            if ev.id <= watermark || ev.id <= newest_kept {
                recovery.acked += 1;
            } else {
                pending.push_back(Spooled {
                    event: ev,
                    bytes: line.len() as u64 + 1,
                });
            }
        }
        if recovery.corrupt > 0 {
            warn!(path = %log_path.display(), corrupt = recovery.corrupt, "Skipped corrupt or torn spool records.");
        }

        let fresh = acked_file.is_none() && max_id == 0;
        let last_id = if fresh { 0 } else { max_id.max(watermark) };
        let next_id = if fresh { now_ms.max(1) } else { last_id + 1 };

        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        // A file just created exists after a power cut only once its directory entry is
        // durable (POSIX); fsyncing the file alone does not promise that.
        durable::sync_dir(&dir)
            .and_then(|()| durable::sync_dir(state_dir))
            .map_err(io_err(&dir))?;
        let mut spool = Spool {
            dir,
            log_path,
            acked_path,
            log,
            limits,
            pending_bytes: pending.iter().map(|s| s.bytes).sum(),
            pending,
            acked_above: BTreeSet::new(),
            watermark,
            dropped,
            recent_drops: VecDeque::new(),
            marks_dirty: false,
            log_records: records,
            last_id,
            next_id,
            dirty: false,
        };
        recovery.dropped = spool.enforce_bound();
        recovery.replay = spool.pending.len();
        if recovery.dropped > 0 {
            warn!(
                dropped = recovery.dropped,
                dropped_total = spool.dropped,
                max_events = limits.max_events,
                max_bytes = limits.max_bytes,
                "The spool holds more than its bound: dropped the oldest waiting events."
            );
        }
        // Rewrite the log unless it is exactly the pending records: a torn tail must not
        // run into the next append, and dead records need not be read again.
        if recovery.corrupt > 0 || recovery.acked > 0 || recovery.dropped > 0 {
            spool.rewrite()?;
        }
        if recovery.replay > 0 {
            info!(
                replay = recovery.replay,
                "Spooled events will be published again."
            );
        }
        Ok((spool, recovery))
    }

    /// Hands out the next event id (strictly increasing, never reused).
    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.last_id = id;
        id
    }

    /// The newest event id handed out so far (0 if none ever was).
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Events dropped because the spool was full, since the state directory was made.
    pub fn dropped_total(&self) -> u64 {
        self.dropped
    }

    /// Appends `event` durably, then drops the oldest waiting events if the spool is now
    /// beyond its bound (see [`Spool::dropped_total`]). The event is queued for
    /// publishing even when the disk write fails (the error is returned for the caller to
    /// log): it is then only lost if the agent also dies before the broker acknowledges
    /// it.
    pub fn append(&mut self, event: Event) -> Result<(), SpoolError> {
        let record = encode_record(&event);
        let bytes = record.len() as u64;
        self.pending.push_back(Spooled { event, bytes });
        self.pending_bytes += bytes;
        let written = if self.dirty {
            // rewrite() includes the event just queued.
            self.rewrite()
        } else {
            match self
                .log
                .write_all(&record)
                .and_then(|()| self.log.sync_data())
            {
                Ok(()) => {
                    self.log_records += 1;
                    Ok(())
                }
                Err(e) => {
                    self.dirty = true;
                    Err(io_err(&self.log_path)(e))
                }
            }
        };
        // Only now, with the new record durable, may the old ones go.
        if self.enforce_bound() > 0 {
            written?;
            return self.compact_if_mostly_dead();
        }
        written
    }

    /// Drops the oldest waiting events while the spool is beyond its bound, keeping at
    /// least the newest; returns how many were dropped. In memory only (see the module
    /// documentation for why that is enough).
    fn enforce_bound(&mut self) -> u64 {
        let mut dropped = 0;
        while self.pending.len() > 1
            && (self.pending.len() > self.limits.max_events
                || self.pending_bytes > self.limits.max_bytes)
        {
            let Some(oldest) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= oldest.bytes;
            let id = oldest.event.id;
            // One acknowledged out of order was delivered: not a drop.
            if !self.acked_above.remove(&id) {
                dropped += 1;
                if self.recent_drops.len() == RECENT_DROPS {
                    self.recent_drops.pop_front();
                }
                self.recent_drops.push_back(id);
            }
            self.watermark = id;
            self.marks_dirty = true;
        }
        if dropped > 0 {
            self.dropped += dropped;
            // Acknowledged ones that only waited for the dropped ones are done too.
            self.release_acked_prefix();
        }
        dropped
    }

    /// Moves the watermark over the acknowledged events at the front.
    fn release_acked_prefix(&mut self) {
        while let Some(front) = self.pending.front() {
            let id = front.event.id;
            if !self.acked_above.remove(&id) {
                break;
            }
            self.watermark = id;
            self.marks_dirty = true;
            if let Some(done) = self.pending.pop_front() {
                self.pending_bytes -= done.bytes;
            }
        }
    }

    /// Records the broker's acknowledgement of event `id`. Unknown and repeated ids are
    /// ignored; an id dropped while it was in flight is taken off the drop count.
    pub fn ack(&mut self, id: u64) -> Result<(), SpoolError> {
        if id <= self.watermark {
            if let Some(i) = self.recent_drops.iter().position(|d| *d == id) {
                self.recent_drops.remove(i);
                self.dropped = self.dropped.saturating_sub(1);
                self.marks_dirty = true;
                return self.store_marks();
            }
            return Ok(());
        }
        if !self.contains(id) {
            return Ok(());
        }
        self.acked_above.insert(id);
        let before = self.watermark;
        self.release_acked_prefix();
        if self.watermark == before {
            return Ok(());
        }
        self.store_marks()?;
        if self.pending.is_empty() {
            self.truncate()
        } else {
            self.compact_if_mostly_dead()
        }
    }

    /// Writes the watermark and the drop count, if they changed.
    fn store_marks(&mut self) -> Result<(), SpoolError> {
        if !self.marks_dirty {
            return Ok(());
        }
        durable::write_atomically(
            &self.acked_path,
            format!("{} {}\n", self.watermark, self.dropped).as_bytes(),
        )
        .map_err(io_err(&self.acked_path))?;
        self.marks_dirty = false;
        Ok(())
    }

    /// Rewrites the log when most of it is dead (acknowledged or dropped records).
    fn compact_if_mostly_dead(&mut self) -> Result<(), SpoolError> {
        if self.log_records > COMPACT_AFTER_RECORDS
            && self.log_records.saturating_sub(self.pending.len()) >= self.log_records / 2
        {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Whether `id` still waits for an acknowledgement.
    pub fn is_unacked(&self, id: u64) -> bool {
        id > self.watermark && !self.acked_above.contains(&id) && self.contains(id)
    }

    fn contains(&self, id: u64) -> bool {
        self.pending
            .binary_search_by_key(&id, |s| s.event.id)
            .is_ok()
    }

    /// The first unacknowledged event with an id at or above `from`.
    pub fn next_unacked(&self, from: u64) -> Option<&Event> {
        let start = self.pending.partition_point(|s| s.event.id < from);
        self.pending
            .range(start..)
            .map(|s| &s.event)
            .find(|e| !self.acked_above.contains(&e.id))
    }

    /// Unacknowledged events, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &Event> {
        self.pending
            .iter()
            .map(|s| &s.event)
            .filter(|e| !self.acked_above.contains(&e.id))
    }

    /// Number of unacknowledged events.
    pub fn len(&self) -> usize {
        self.pending.len() - self.acked_above.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn truncate(&mut self) -> Result<(), SpoolError> {
        // The marks first: once the records are gone, they alone say what was dropped.
        self.store_marks()?;
        self.log
            .set_len(0)
            .and_then(|()| self.log.sync_all())
            .map_err(io_err(&self.log_path))?;
        self.log_records = 0;
        self.dirty = false;
        Ok(())
    }

    /// Replaces the log with exactly the pending records.
    fn rewrite(&mut self) -> Result<(), SpoolError> {
        // The marks first: once the dropped records are gone, they alone count them.
        if let Err(e) = self.store_marks() {
            self.dirty = true;
            return Err(e);
        }
        let mut bytes = Vec::with_capacity(self.pending_bytes as usize);
        for s in &self.pending {
            bytes.extend_from_slice(&encode_record(&s.event));
        }
        let r = durable::write_atomically(&self.log_path, &bytes)
            .and_then(|()| OpenOptions::new().append(true).open(&self.log_path));
        match r {
            Ok(f) => {
                self.log = f;
                self.log_records = self.pending.len();
                self.dirty = false;
                Ok(())
            }
            Err(e) => {
                self.dirty = true;
                Err(io_err(&self.dir)(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
