//! Host health of the gateway (CPU, memory, disk of the state directory, uptime) for the
//! heartbeat. One [`HealthSampler`] can serve many in-process agents (the demo runs
//! hundreds): it refreshes at most once per [`MAX_AGE`] and hands out the cached reading
//! otherwise, so heartbeats stay cheap.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use campuswatch_protocol::HostHealth;
use sysinfo::{Disks, System};

/// How long a reading is reused.
pub const MAX_AGE: Duration = Duration::from_secs(1);

struct Reading {
    at: Instant,
    cpu_pct: f32,
    mem_used_pct: f32,
    uptime_s: u64,
    /// (mount point, used percent), longest mount point first.
    disks: Vec<(PathBuf, f32)>,
}

struct State {
    system: System,
    disks: Disks,
    last: Option<Reading>,
}

/// A cached, shareable sampler of host health.
pub struct HealthSampler {
    state: Mutex<State>,
}

impl std::fmt::Debug for HealthSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthSampler").finish_non_exhaustive()
    }
}

impl Default for HealthSampler {
    fn default() -> Self {
        Self::new()
    }
}

fn pct(part: f64, whole: f64) -> f32 {
    if whole > 0.0 {
        clamp_pct((part / whole * 100.0) as f32)
    } else {
        0.0
    }
}

fn clamp_pct(v: f32) -> f32 {
    // The protocol refuses values outside 0..=100; sysinfo can report NaN before its
    // second CPU refresh.
    if v.is_finite() {
        v.clamp(0.0, 100.0)
    } else {
        0.0
    }
}

impl HealthSampler {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                system: System::new(),
                disks: Disks::new(),
                last: None,
            }),
        }
    }

    /// Current health; disk use is that of the filesystem holding `path`.
    pub fn sample(&self, path: &Path) -> HostHealth {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = st.last.as_ref().is_some_and(|r| r.at.elapsed() < MAX_AGE);
        if !fresh {
            let State { system, disks, .. } = &mut *st;
            system.refresh_cpu_usage();
            system.refresh_memory();
            disks.refresh(true);
            let mut d: Vec<(PathBuf, f32)> = disks
                .list()
                .iter()
                .map(|d| {
                    let total = d.total_space() as f64;
                    let used = total - d.available_space() as f64;
                    (d.mount_point().to_path_buf(), pct(used, total))
                })
                .collect();
            d.sort_by_key(|(m, _)| std::cmp::Reverse(m.as_os_str().len()));
            st.last = Some(Reading {
                at: Instant::now(),
                cpu_pct: clamp_pct(st.system.global_cpu_usage()),
                mem_used_pct: pct(
                    st.system.used_memory() as f64,
                    st.system.total_memory() as f64,
                ),
                uptime_s: System::uptime(),
                disks: d,
            });
        }
        let Some(r) = st.last.as_ref() else {
            return HostHealth {
                cpu_pct: 0.0,
                mem_used_pct: 0.0,
                disk_used_pct: 0.0,
                uptime_s: 0,
            };
        };
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let disk_used_pct = r
            .disks
            .iter()
            .find(|(m, _)| abs.starts_with(m))
            .map_or(0.0, |(_, p)| *p);
        HostHealth {
            cpu_pct: r.cpu_pct,
            mem_used_pct: r.mem_used_pct,
            disk_used_pct,
            uptime_s: r.uptime_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_within_the_protocol_bounds_and_cached() {
        let h = HealthSampler::new();
        let dir = tempfile::tempdir().unwrap();
        let a = h.sample(dir.path());
        for v in [a.cpu_pct, a.mem_used_pct, a.disk_used_pct] {
            assert!((0.0..=100.0).contains(&v), "{a:?}");
        }
        assert!(a.mem_used_pct > 0.0, "{a:?}");
        assert!(a.uptime_s > 0, "{a:?}");
        let b = h.sample(dir.path());
        assert_eq!((a.cpu_pct, a.uptime_s), (b.cpu_pct, b.uptime_s));
    }
}
