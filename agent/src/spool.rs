//! The event spool: every device transition is written to disk before it is published,
//! and leaves the spool only when the broker has acknowledged it, so neither a broker
//! outage nor an agent crash loses an event.
//!
//! Layout under `state_dir/spool/`:
//! * `events.log` — one record per line: 8 hex digits of the CRC32 of the JSON, a space,
//!   the JSON [`Event`], `\n`; fsynced after every append. A record torn by a crash fails
//!   its CRC and is skipped (counted and logged) on the next start.
//! * `acked` — the acknowledgement watermark, replaced atomically: every event with an id
//!   at or below it has been acknowledged. Acknowledgements that arrive out of order are
//!   kept in memory until the ones before them arrive; after a crash those few are sent
//!   again, which the server's de-duplication on (campus, id) absorbs.
//!
//! The log is truncated when everything in it is acknowledged, and rewritten with only
//! the unacknowledged records when its acknowledged prefix grows large, so it stays small
//! however long the agent runs.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use campuswatch_protocol::Event;
use tracing::{info, warn};

use crate::durable;

/// Rewrite the log once it holds more than this many records of which at least half are
/// acknowledged.
/// (Small under test so that compaction is exercised without thousands of fsyncs.)
const COMPACT_AFTER_RECORDS: usize = if cfg!(test) { 16 } else { 1024 };

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
    /// Records already acknowledged, dropped.
    pub acked: usize,
}

/// The on-disk event spool. Owned by one task (the MQTT session).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    log_path: PathBuf,
    acked_path: PathBuf,
    log: File,
    /// Unacknowledged events in id order (including ones acknowledged out of order that
    /// wait for an earlier one).
    pending: VecDeque<Event>,
    /// Acknowledged ids above the watermark.
    acked_above: BTreeSet<u64>,
    watermark: u64,
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

impl Spool {
    /// Opens (creating if needed) the spool under `state_dir/spool`, drops acknowledged
    /// and corrupt records, and prepares the rest for replay. `now_ms` seeds the event ids
    /// of a fresh state directory, so a reinstalled gateway never reuses an old id.
    pub fn open(state_dir: &Path, now_ms: u64) -> Result<(Spool, Recovery), SpoolError> {
        let dir = state_dir.join("spool");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let log_path = dir.join("events.log");
        let acked_path = dir.join("acked");

        let acked_file = match fs::read_to_string(&acked_path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&acked_path)(e)),
        };
        let watermark = match &acked_file {
            Some(s) => s.trim().parse().unwrap_or_else(|_| {
                // Replaying acknowledged events is harmless (the server de-duplicates);
                // losing unacknowledged ones is not. So a bad watermark means "none".
                warn!(path = %acked_path.display(), "Spool watermark is corrupt; replaying every spooled event.");
                0
            }),
            None => 0,
        };

        let bytes = match fs::read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&log_path)(e)),
        };
        let mut recovery = Recovery::default();
        let mut pending = VecDeque::new();
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
            let newest_kept = pending.back().map_or(0, |e: &Event| e.id);
            if ev.id <= watermark || ev.id <= newest_kept {
                recovery.acked += 1;
            } else {
                pending.push_back(ev);
            }
        }
        recovery.replay = pending.len();
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
        let mut spool = Spool {
            dir,
            log_path,
            acked_path,
            log,
            pending,
            acked_above: BTreeSet::new(),
            watermark,
            log_records: records,
            last_id,
            next_id,
            dirty: false,
        };
        // Rewrite the log unless it is exactly the pending records: a torn tail must not
        // run into the next append, and acknowledged records need not be read again.
        if recovery.corrupt > 0 || recovery.acked > 0 {
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

    /// Appends `event` durably. The event is queued for publishing even when the disk
    /// write fails (the error is returned for the caller to log): it is then only lost if
    /// the agent also dies before the broker acknowledges it.
    pub fn append(&mut self, event: Event) -> Result<(), SpoolError> {
        let record = encode_record(&event);
        self.pending.push_back(event);
        if self.dirty {
            // rewrite() includes the event just queued.
            return self.rewrite();
        }
        let r = self
            .log
            .write_all(&record)
            .and_then(|()| self.log.sync_data());
        match r {
            Ok(()) => {
                self.log_records += 1;
                Ok(())
            }
            Err(e) => {
                self.dirty = true;
                Err(io_err(&self.log_path)(e))
            }
        }
    }

    /// Records the broker's acknowledgement of event `id`. Unknown and repeated ids are
    /// ignored.
    pub fn ack(&mut self, id: u64) -> Result<(), SpoolError> {
        if id <= self.watermark || !self.contains(id) {
            return Ok(());
        }
        self.acked_above.insert(id);
        let before = self.watermark;
        while let Some(front) = self.pending.front() {
            if !self.acked_above.remove(&front.id) {
                break;
            }
            self.watermark = front.id;
            self.pending.pop_front();
        }
        if self.watermark == before {
            return Ok(());
        }
        durable::write_atomically(&self.acked_path, format!("{}\n", self.watermark).as_bytes())
            .map_err(io_err(&self.acked_path))?;
        if self.pending.is_empty() {
            self.truncate()?;
        } else if self.log_records > COMPACT_AFTER_RECORDS
            && self.log_records - self.pending.len() >= self.log_records / 2
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
        self.pending.binary_search_by_key(&id, |e| e.id).is_ok()
    }

    /// The first unacknowledged event with an id at or above `from`.
    pub fn next_unacked(&self, from: u64) -> Option<&Event> {
        let start = self.pending.partition_point(|e| e.id < from);
        self.pending
            .range(start..)
            .find(|e| !self.acked_above.contains(&e.id))
    }

    /// Unacknowledged events, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &Event> {
        self.pending
            .iter()
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
        let mut bytes = Vec::new();
        for e in &self.pending {
            bytes.extend_from_slice(&encode_record(e));
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
mod tests {
    use super::*;
    use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, DeviceState, RegionCode};

    const NOW_MS: u64 = 1_800_000_000_000;

    fn event(spool: &mut Spool) -> Event {
        Event {
            v: 1,
            campus: CampusId::parse("c-1").unwrap(),
            region: RegionCode::parse("150102").unwrap(),
            id: spool.allocate_id(),
            epoch: 7,
            at: "2026-11-29T08:00:00.250Z".parse().unwrap(),
            device: DeviceId::parse("alarm-1").unwrap(),
            kind: DeviceKind::Alarm,
            from: DeviceState::Up,
            to: DeviceState::Down,
            cause: Some("connection refused".into()),
            measurements: Default::default(),
            info: None,
        }
    }

    fn append_n(spool: &mut Spool, n: usize) -> Vec<Event> {
        (0..n)
            .map(|_| {
                let e = event(spool);
                spool.append(e.clone()).unwrap();
                e
            })
            .collect()
    }

    fn ids(spool: &Spool) -> Vec<u64> {
        spool.unacked().map(|e| e.id).collect()
    }

    fn log_lines(dir: &Path) -> usize {
        fs::read(dir.join("spool/events.log"))
            .unwrap()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    }

    #[test]
    fn a_fresh_spool_starts_ids_at_the_clock_in_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!(rec, Recovery::default());
        assert_eq!(s.last_id(), 0);
        assert_eq!(s.allocate_id(), NOW_MS);
        assert_eq!(s.allocate_id(), NOW_MS + 1);
    }

    #[test]
    fn appended_events_survive_a_restart_in_order_with_their_original_times() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let written = append_n(&mut s, 3);
        drop(s);
        let (s, rec) = Spool::open(dir.path(), 5).unwrap();
        assert_eq!(rec.replay, 3);
        let replayed: Vec<Event> = s.unacked().cloned().collect();
        assert_eq!(replayed, written);
        assert_eq!(s.last_id(), NOW_MS + 2);
    }

    #[test]
    fn ids_continue_after_the_highest_even_when_everything_was_acked() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let written = append_n(&mut s, 2);
        for e in &written {
            s.ack(e.id).unwrap();
        }
        drop(s);
        // The clock going back must not matter once ids exist.
        let (mut s, rec) = Spool::open(dir.path(), 1).unwrap();
        assert_eq!(rec.replay, 0);
        assert_eq!(s.allocate_id(), NOW_MS + 2);
    }

    #[test]
    fn out_of_order_acks_release_events_once_the_gap_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, 4);
        s.ack(e[2].id).unwrap();
        s.ack(e[1].id).unwrap();
        assert_eq!(ids(&s), [e[0].id, e[3].id]);
        assert!(!s.is_unacked(e[1].id));
        assert_eq!(s.next_unacked(e[1].id).map(|x| x.id), Some(e[3].id));
        // Before the gap closes a restart replays the out-of-order acked ones too.
        drop(s);
        let (mut s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!(rec.replay, 4);
        s.ack(e[2].id).unwrap();
        s.ack(e[1].id).unwrap();
        s.ack(e[0].id).unwrap();
        assert_eq!(ids(&s), [e[3].id]);
        drop(s);
        let (s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!(rec.replay, 1);
        assert_eq!(ids(&s), [e[3].id]);
    }

    #[test]
    fn repeated_and_unknown_acks_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, 2);
        s.ack(e[0].id).unwrap();
        s.ack(e[0].id).unwrap();
        s.ack(999).unwrap();
        assert_eq!(ids(&s), [e[1].id]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_does_not_swallow_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, 2);
        drop(s);
        let log = dir.path().join("spool/events.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"0badc0de {\"v\":1,\"campus\":\"c-").unwrap();
        drop(f);
        let (mut s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!((rec.replay, rec.corrupt), (2, 1));
        let third = append_n(&mut s, 1);
        drop(s);
        let (s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!((rec.replay, rec.corrupt), (3, 0));
        assert_eq!(ids(&s), [e[0].id, e[1].id, third[0].id]);
    }

    #[test]
    fn a_record_with_a_bad_checksum_is_skipped_and_the_rest_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, 3);
        drop(s);
        let log = dir.path().join("spool/events.log");
        let text = fs::read_to_string(&log).unwrap();
        // Flip one character inside the second record's JSON.
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[1] = lines[1].replace("refused", "refusal");
        fs::write(&log, lines.join("\n") + "\n").unwrap();
        let (s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!((rec.replay, rec.corrupt), (2, 1));
        assert_eq!(ids(&s), [e[0].id, e[2].id]);
    }

    #[test]
    fn the_log_is_truncated_when_everything_is_acked() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, 3);
        assert_eq!(log_lines(dir.path()), 3);
        for x in &e {
            s.ack(x.id).unwrap();
        }
        assert_eq!(log_lines(dir.path()), 0);
        assert!(s.is_empty());
        // Appends after a truncation still land in the log.
        append_n(&mut s, 1);
        assert_eq!(log_lines(dir.path()), 1);
    }

    #[test]
    fn a_large_acked_prefix_is_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, COMPACT_AFTER_RECORDS + 10);
        for x in &e[..COMPACT_AFTER_RECORDS] {
            s.ack(x.id).unwrap();
        }
        assert!(log_lines(dir.path()) <= 10 + COMPACT_AFTER_RECORDS / 2);
        drop(s);
        let (s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!(rec.replay, 10);
        assert_eq!(
            s.unacked().next().map(|x| x.id),
            Some(e[COMPACT_AFTER_RECORDS].id)
        );
    }

    #[test]
    fn acked_records_left_in_the_log_by_a_crash_are_dropped_on_start() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), NOW_MS).unwrap();
        let e = append_n(&mut s, 3);
        drop(s);
        // A crash after the watermark was stored but before the log was compacted.
        durable::write_atomically(
            &dir.path().join("spool/acked"),
            format!("{}\n", e[1].id).as_bytes(),
        )
        .unwrap();
        let (s, rec) = Spool::open(dir.path(), NOW_MS).unwrap();
        assert_eq!((rec.replay, rec.acked), (1, 2));
        assert_eq!(ids(&s), [e[2].id]);
        assert_eq!(log_lines(dir.path()), 1);
    }
}
