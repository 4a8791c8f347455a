//! The spool's tests: appends and acknowledgements across restarts, compaction, a full
//! spool's drops, and damaged files.

use super::*;
use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, DeviceState, RegionCode};

const NOW_MS: u64 = 1_800_000_000_000;

fn open(dir: &Path, now_ms: u64) -> (Spool, Recovery) {
    Spool::open(dir, now_ms, SpoolConfig::default()).unwrap()
}

fn open_bounded(dir: &Path, max_events: usize) -> (Spool, Recovery) {
    let limits = SpoolConfig {
        max_events,
        ..SpoolConfig::default()
    };
    Spool::open(dir, NOW_MS, limits).unwrap()
}

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
        cause_code: None,
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
    let (mut s, rec) = open(dir.path(), NOW_MS);
    assert_eq!(rec, Recovery::default());
    assert_eq!(s.last_id(), 0);
    assert_eq!(s.allocate_id(), NOW_MS);
    assert_eq!(s.allocate_id(), NOW_MS + 1);
}

#[test]
fn appended_events_survive_a_restart_in_order_with_their_original_times() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let written = append_n(&mut s, 3);
    drop(s);
    let (s, rec) = open(dir.path(), 5);
    assert_eq!(rec.replay, 3);
    let replayed: Vec<Event> = s.unacked().cloned().collect();
    assert_eq!(replayed, written);
    assert_eq!(s.last_id(), NOW_MS + 2);
}

#[test]
fn ids_continue_after_the_highest_even_when_everything_was_acked() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let written = append_n(&mut s, 2);
    for e in &written {
        s.ack(e.id).unwrap();
    }
    drop(s);
    // The clock going back must not matter once ids exist.
    let (mut s, rec) = open(dir.path(), 1);
    assert_eq!(rec.replay, 0);
    assert_eq!(s.allocate_id(), NOW_MS + 2);
}

#[test]
fn out_of_order_acks_release_events_once_the_gap_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 4);
    s.ack(e[2].id).unwrap();
    s.ack(e[1].id).unwrap();
    assert_eq!(ids(&s), [e[0].id, e[3].id]);
    assert!(!s.is_unacked(e[1].id));
    assert_eq!(s.next_unacked(e[1].id).map(|x| x.id), Some(e[3].id));
    // Before the gap closes a restart replays the out-of-order acked ones too.
    drop(s);
    let (mut s, rec) = open(dir.path(), NOW_MS);
    assert_eq!(rec.replay, 4);
    s.ack(e[2].id).unwrap();
    s.ack(e[1].id).unwrap();
    s.ack(e[0].id).unwrap();
    assert_eq!(ids(&s), [e[3].id]);
    drop(s);
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!(rec.replay, 1);
    assert_eq!(ids(&s), [e[3].id]);
}

#[test]
fn repeated_and_unknown_acks_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
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
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 2);
    drop(s);
    let log = dir.path().join("spool/events.log");
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"0badc0de {\"v\":1,\"campus\":\"c-").unwrap();
    drop(f);
    let (mut s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, rec.corrupt), (2, 1));
    let third = append_n(&mut s, 1);
    drop(s);
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, rec.corrupt), (3, 0));
    assert_eq!(ids(&s), [e[0].id, e[1].id, third[0].id]);
}

#[test]
fn a_record_with_a_bad_checksum_is_skipped_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 3);
    drop(s);
    let log = dir.path().join("spool/events.log");
    let text = fs::read_to_string(&log).unwrap();
    // Flip one character inside the second record's JSON.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1] = lines[1].replace("refused", "refusal");
    fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, rec.corrupt), (2, 1));
    assert_eq!(ids(&s), [e[0].id, e[2].id]);
}

#[test]
fn the_log_is_truncated_when_everything_is_acked() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
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
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, COMPACT_AFTER_RECORDS + 10);
    for x in &e[..COMPACT_AFTER_RECORDS] {
        s.ack(x.id).unwrap();
    }
    assert!(log_lines(dir.path()) <= 10 + COMPACT_AFTER_RECORDS / 2);
    drop(s);
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!(rec.replay, 10);
    assert_eq!(
        s.unacked().next().map(|x| x.id),
        Some(e[COMPACT_AFTER_RECORDS].id)
    );
}

#[test]
fn acked_records_left_in_the_log_by_a_crash_are_dropped_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 3);
    drop(s);
    // A crash after the watermark was stored but before the log was compacted.
    durable::write_atomically(
        &dir.path().join("spool/acked"),
        format!("{}\n", e[1].id).as_bytes(),
    )
    .unwrap();
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, rec.acked), (1, 2));
    assert_eq!(ids(&s), [e[2].id]);
    assert_eq!(log_lines(dir.path()), 1);
}

fn marks(dir: &Path) -> String {
    fs::read_to_string(dir.join("spool/acked")).unwrap_or_default()
}

#[test]
fn when_full_the_oldest_waiting_events_are_dropped_first_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_bounded(dir.path(), 5);
    let e = append_n(&mut s, 8);
    assert_eq!(ids(&s), e[3..].iter().map(|x| x.id).collect::<Vec<_>>());
    assert_eq!(s.dropped_total(), 3);
    assert!(!s.is_unacked(e[0].id));
    // The newest is always kept and ids go on from the newest.
    assert_eq!(s.last_id(), e[7].id);
    drop(s);
    // A crash before the drops were stored: the start drops and counts them again,
    // so the total is the same.
    let (s, rec) = open_bounded(dir.path(), 5);
    assert_eq!((rec.replay, rec.dropped), (5, 3));
    assert_eq!(s.dropped_total(), 3);
    assert_eq!(ids(&s), e[3..].iter().map(|x| x.id).collect::<Vec<_>>());
    drop(s);
    // Stored by that start: the next one finds nothing more to drop.
    let (s, rec) = open_bounded(dir.path(), 5);
    assert_eq!((rec.replay, rec.dropped), (5, 0));
    assert_eq!(s.dropped_total(), 3);
    assert_eq!(marks(dir.path()), format!("{} 3\n", e[2].id));
}

#[test]
fn a_long_outage_keeps_the_log_within_twice_the_bound_and_the_count_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_bounded(dir.path(), 5);
    let e = append_n(&mut s, 60);
    assert_eq!(s.dropped_total(), 55);
    assert!(
        log_lines(dir.path()) <= 2 * COMPACT_AFTER_RECORDS.max(5),
        "{}",
        log_lines(dir.path())
    );
    drop(s);
    let (mut s, rec) = open_bounded(dir.path(), 5);
    assert_eq!(rec.replay, 5);
    assert_eq!(s.dropped_total(), 55);
    assert_eq!(ids(&s), e[55..].iter().map(|x| x.id).collect::<Vec<_>>());
    assert_eq!(s.allocate_id(), e[59].id + 1);
}

#[test]
fn the_byte_bound_drops_the_oldest_too() {
    let dir = tempfile::tempdir().unwrap();
    let one = {
        let (mut s, _) = open(dir.path(), NOW_MS);
        encode_record(&event(&mut s)).len() as u64
    };
    let dir = tempfile::tempdir().unwrap();
    let limits = SpoolConfig {
        max_events: 1000,
        max_bytes: 3 * one + one / 2,
    };
    let (mut s, _) = Spool::open(dir.path(), NOW_MS, limits).unwrap();
    let e = append_n(&mut s, 7);
    assert_eq!(ids(&s), e[4..].iter().map(|x| x.id).collect::<Vec<_>>());
    assert_eq!(s.dropped_total(), 4);
    assert!(s.pending_bytes <= limits.max_bytes);
}

#[test]
fn a_lowered_bound_drops_at_start_and_a_raised_one_keeps_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 10);
    drop(s);
    let (s, rec) = open_bounded(dir.path(), 4);
    assert_eq!((rec.replay, rec.dropped), (4, 6));
    assert_eq!(ids(&s), e[6..].iter().map(|x| x.id).collect::<Vec<_>>());
    drop(s);
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, rec.dropped), (4, 0));
    assert_eq!(s.dropped_total(), 6);
}

#[test]
fn an_event_dropped_in_flight_and_then_acknowledged_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_bounded(dir.path(), 5);
    let e = append_n(&mut s, 7);
    assert_eq!(s.dropped_total(), 2);
    // It had been published; the broker's acknowledgement comes after the drop.
    s.ack(e[1].id).unwrap();
    assert_eq!(s.dropped_total(), 1);
    s.ack(e[1].id).unwrap();
    assert_eq!(s.dropped_total(), 1, "a repeated ack counts once");
    assert_eq!(marks(dir.path()), format!("{} 1\n", e[1].id));
    drop(s);
    let (s, _) = open_bounded(dir.path(), 5);
    assert_eq!(s.dropped_total(), 1);
}

#[test]
fn an_event_acknowledged_out_of_order_is_not_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open_bounded(dir.path(), 3);
    let e = append_n(&mut s, 3);
    s.ack(e[1].id).unwrap();
    // e[0] goes (dropped), e[1] (delivered) follows it out.
    append_n(&mut s, 1);
    assert_eq!(s.dropped_total(), 1);
    assert_eq!(ids(&s), [e[2].id, e[2].id + 1]);
    assert_eq!(s.len(), 2);
}

#[test]
fn a_watermark_file_of_the_older_form_reads_as_nothing_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 2);
    drop(s);
    fs::write(dir.path().join("spool/acked"), format!("{}\n", e[0].id)).unwrap();
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, s.dropped_total()), (1, 0));
    assert_eq!(ids(&s), [e[1].id]);
    drop(s);
    // A corrupt watermark replays everything left rather than losing anything.
    fs::write(dir.path().join("spool/acked"), "garbage 7\n").unwrap();
    let (s, rec) = open(dir.path(), NOW_MS);
    assert_eq!((rec.replay, s.dropped_total()), (1, 7));
    assert_eq!(s.last_id(), e[1].id);
}

/// A power cut can leave the log cut at any byte: everything before the cut that is
/// a whole line comes back, the torn line is skipped, and appends go on cleanly.
#[test]
fn a_log_cut_at_any_byte_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = open(dir.path(), NOW_MS);
    let e = append_n(&mut s, 4);
    drop(s);
    let full = fs::read(dir.path().join("spool/events.log")).unwrap();
    let ends: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    // Every record boundary, a byte either side of it, and a spread of offsets
    // inside records.
    let mut cuts: BTreeSet<usize> = (0..full.len()).step_by(37).collect();
    for end in &ends {
        cuts.extend([end - 1, *end, end + 1]);
    }
    cuts.insert(0);
    for cut in cuts.into_iter().filter(|c| *c <= full.len()) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("spool")).unwrap();
        fs::write(d.path().join("spool/events.log"), &full[..cut]).unwrap();
        let (mut s, rec) = open(d.path(), NOW_MS);
        let whole = ends.iter().filter(|end| **end <= cut).count();
        let torn = usize::from(!ends.contains(&cut) && cut > 0);
        assert_eq!((rec.replay, rec.corrupt), (whole, torn), "cut at {cut}");
        assert_eq!(
            ids(&s),
            e[..whole].iter().map(|x| x.id).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        let next = append_n(&mut s, 1);
        drop(s);
        let (s, rec) = open(d.path(), NOW_MS);
        assert_eq!((rec.replay, rec.corrupt), (whole + 1, 0), "cut at {cut}");
        assert_eq!(ids(&s).last(), Some(&next[0].id));
    }
}
