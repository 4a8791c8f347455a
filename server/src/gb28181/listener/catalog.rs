//! Putting a catalog answer together. A device answers one `Catalog` query with as many
//! `MESSAGE`s as it needs, each listing some channels and all giving the total
//! (`SumNum`) and the query's `SN`. Parts are gathered per device and SN until the
//! channels reach the total (a complete catalog) or the wait runs out (handed on as
//! incomplete, with what came). Pure: the time is an argument.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::gb28181::{ChannelInfo, GbCode, GbInput};

/// Most catalogs gathered at once (one per device in practice); beyond, the oldest is
/// handed on as it is.
const MAX_PENDING: usize = 10_000;
/// How many complete catalogs are remembered, so that a part sent again after its
/// catalog was complete does not start a new one.
const DONE_KEPT: usize = 10_000;
/// Most channels one catalog may list; a larger `SumNum` is taken as this.
pub(super) const MAX_CHANNELS: usize = 100_000;

#[derive(Debug)]
struct Pending {
    started: Instant,
    sum_num: usize,
    channels: Vec<ChannelInfo>,
    /// Where each channel is in `channels`, so a part sent twice counts once.
    index: HashMap<GbCode, usize>,
    /// Items the device listed that could not be read: they count towards the total.
    skipped: usize,
}

#[derive(Debug)]
pub(super) struct Gatherer {
    wait: Duration,
    pending: HashMap<(GbCode, u64), Pending>,
    done: HashSet<(GbCode, u64)>,
    done_order: VecDeque<(GbCode, u64)>,
}

impl Gatherer {
    pub(super) fn new(wait: Duration) -> Self {
        Self {
            wait,
            pending: HashMap::new(),
            done: HashSet::new(),
            done_order: VecDeque::new(),
        }
    }

    /// Adds one part from `device`: the catalog once it is complete (and the oldest
    /// pending one, incomplete, when too many are pending).
    pub(super) fn add(
        &mut self,
        device: GbCode,
        sn: u64,
        sum_num: usize,
        items: Vec<ChannelInfo>,
        skipped: usize,
        now: Instant,
    ) -> Vec<GbInput> {
        let mut out = Vec::new();
        if self.done.contains(&(device, sn)) {
            return out;
        }
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&(device, sn)) {
            out.extend(self.hand_on_oldest());
        }
        let p = self.pending.entry((device, sn)).or_insert_with(|| Pending {
            started: now,
            sum_num: sum_num.min(MAX_CHANNELS),
            channels: Vec::new(),
            index: HashMap::new(),
            skipped: 0,
        });
        p.skipped += skipped;
        for item in items {
            match p.index.get(&item.id) {
                Some(&i) => p.channels[i] = item,
                None if p.channels.len() < MAX_CHANNELS => {
                    p.index.insert(item.id, p.channels.len());
                    p.channels.push(item);
                }
                None => p.skipped += 1,
            }
        }
        if p.channels.len() + p.skipped >= p.sum_num {
            if let Some(p) = self.pending.remove(&(device, sn)) {
                if self.done_order.len() >= DONE_KEPT {
                    if let Some(old) = self.done_order.pop_front() {
                        self.done.remove(&old);
                    }
                }
                self.done.insert((device, sn));
                self.done_order.push_back((device, sn));
                out.push(GbInput::Catalog {
                    device,
                    channels: p.channels,
                    complete: true,
                });
            }
        }
        out
    }

    /// The catalogs whose wait ran out by `now`, incomplete.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<GbInput> {
        let wait = self.wait;
        let due: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.started) >= wait)
            .map(|(k, _)| *k)
            .collect();
        due.into_iter().filter_map(|k| self.hand_on(k)).collect()
    }

    fn hand_on_oldest(&mut self) -> Option<GbInput> {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.started)
            .map(|(k, _)| *k)?;
        self.hand_on(oldest)
    }

    fn hand_on(&mut self, key: (GbCode, u64)) -> Option<GbInput> {
        let p = self.pending.remove(&key)?;
        Some(GbInput::Catalog {
            device: key.0,
            channels: p.channels,
            complete: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gb28181::ChannelStatus;

    fn code(n: u32) -> GbCode {
        GbCode::parse(&format!("340200000013200{n:05}")).unwrap()
    }

    fn channel(n: u32, status: ChannelStatus) -> ChannelInfo {
        ChannelInfo {
            id: code(n),
            name: Some(format!("camera {n}")),
            manufacturer: None,
            model: None,
            status,
            parent: None,
        }
    }

    fn part(from: u32, to: u32) -> Vec<ChannelInfo> {
        (from..to).map(|n| channel(n, ChannelStatus::On)).collect()
    }

    const NVR: &str = "34020000001180000001";

    #[test]
    fn ten_thousand_channels_in_many_parts_make_one_complete_catalog() {
        let nvr = GbCode::parse(NVR).unwrap();
        let now = Instant::now();
        let mut g = Gatherer::new(Duration::from_secs(10));
        let mut got = Vec::new();
        for start in (0..10_000).step_by(4) {
            // Every part sent twice, as a retransmission would.
            for _ in 0..2 {
                got.extend(g.add(nvr, 7, 10_000, part(start, start + 4), 0, now));
            }
        }
        assert_eq!(got.len(), 1);
        let GbInput::Catalog {
            device,
            channels,
            complete,
        } = &got[0]
        else {
            panic!("{got:?}")
        };
        assert_eq!((*device, channels.len(), *complete), (nvr, 10_000, true));
        assert_eq!(channels[9_999].id, code(9_999));
        assert!(g.pending.is_empty());
    }

    #[test]
    fn a_catalog_missing_parts_is_handed_on_incomplete_when_the_wait_runs_out() {
        let nvr = GbCode::parse(NVR).unwrap();
        let now = Instant::now();
        let mut g = Gatherer::new(Duration::from_secs(10));
        assert_eq!(g.add(nvr, 1, 6, part(0, 2), 0, now), []);
        assert_eq!(g.add(nvr, 1, 6, part(2, 4), 1, now), []);
        assert!(g.expire(now + Duration::from_secs(9)).is_empty());
        let out = g.expire(now + Duration::from_secs(10));
        assert!(
            matches!(&out[..], [GbInput::Catalog { channels, complete: false, .. }] if channels.len() == 4),
            "{out:?}"
        );
        // An unreadable item counts: 1 readable + 1 skipped of 2 is complete.
        assert!(matches!(
            &g.add(nvr, 2, 2, part(0, 1), 1, now)[..],
            [GbInput::Catalog { complete: true, .. }]
        ));
        // An empty device answers SumNum 0.
        assert!(matches!(
            &g.add(nvr, 3, 0, Vec::new(), 0, now)[..],
            [GbInput::Catalog { complete: true, channels, .. }] if channels.is_empty()
        ));
    }

    #[test]
    fn answers_to_two_queries_are_not_mixed() {
        let nvr = GbCode::parse(NVR).unwrap();
        let now = Instant::now();
        let mut g = Gatherer::new(Duration::from_secs(10));
        assert_eq!(g.add(nvr, 1, 2, part(0, 1), 0, now), []);
        assert_eq!(g.add(nvr, 2, 2, part(5, 6), 0, now), []);
        assert!(matches!(
            &g.add(nvr, 2, 2, part(6, 7), 0, now)[..],
            [GbInput::Catalog { complete: true, channels, .. }] if channels[0].id == code(5)
        ));
        assert_eq!(g.pending.len(), 1);
    }
}
