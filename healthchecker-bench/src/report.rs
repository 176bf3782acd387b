//! From arrivals at the targets to checks done and lateness.
//!
//! The server checks each monitor at a fixed rate: due times `phase + k * interval`. The bench
//! does not know the phase (the server picks it at random on registration), so it estimates it per
//! target from the arrivals: each arrival is given its tick `k` (rounded from the time since the
//! target's first arrival), its offset from the first arrival's schedule, and the smallest offset
//! seen is taken as on time. The lateness of a check is its offset minus that smallest offset.
//! That sees every delay that varies (a queue building up, a stall, a slow scheduler, a busy
//! machine) but not a constant one shared by every check of a target (the loopback round trip,
//! about 0.1 ms), so it is a slight underestimate.
//!
//! A scheduled check is one whose tick falls in the measured window; it is done when an arrival
//! carries that tick.

use std::time::Duration;

/// What the arrivals say about the measured window.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Checks that should have started in the window.
    pub expected: u64,
    /// Of those, the ones that arrived.
    pub done: u64,
    /// Arrivals on a tick that already had one (a check run twice).
    pub extra: u64,
    /// Targets that never saw a check before the window ended.
    pub never_checked: usize,
    /// Lateness of the checks done, sorted.
    pub lateness: Vec<Duration>,
}

impl Schedule {
    /// The `q`-quantile of lateness (0 when there is none).
    pub fn lateness_at(&self, q: f64) -> Duration {
        if self.lateness.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * (self.lateness.len() - 1) as f64).round() as usize;
        self.lateness[rank.min(self.lateness.len() - 1)]
    }

    /// Share of scheduled checks done, in percent.
    pub fn done_percent(&self) -> f64 {
        if self.expected == 0 {
            return 100.0;
        }
        self.done as f64 * 100.0 / self.expected as f64
    }
}

/// Computes the [`Schedule`] of `targets` targets checked every `interval`, over the window
/// `[from, to)`; times are µs since the farm started. Arrivals at or after `to` are ignored.
pub fn schedule(
    mut arrivals: Vec<(u32, u64)>,
    targets: usize,
    interval: Duration,
    from: u64,
    to: u64,
) -> Schedule {
    let period = i64::try_from(interval.as_micros())
        .unwrap_or(i64::MAX)
        .max(1);
    let (from, to) = (as_i64(from), as_i64(to));
    arrivals.retain(|&(_, at)| as_i64(at) < to);
    arrivals.sort_unstable();
    let mut result = Schedule::default();
    let mut seen = vec![false; targets];
    let mut ticks: Vec<(i64, i64)> = Vec::new();
    for group in arrivals.chunk_by(|a, b| a.0 == b.0) {
        let target = group[0].0 as usize;
        if let Some(seen) = seen.get_mut(target) {
            *seen = true;
        }
        let first = as_i64(group[0].1);
        ticks.clear();
        ticks.extend(group.iter().map(|&(_, at)| {
            let since = as_i64(at) - first;
            let k = (since + period / 2).div_euclid(period);
            (k, since - k * period)
        }));
        let on_time = ticks.iter().map(|&(_, offset)| offset).min().unwrap_or(0);
        let phase = first + on_time;
        // Ticks of this target inside the window.
        let first_k = (from - phase + period - 1).div_euclid(period);
        let last_k = (to - 1 - phase).div_euclid(period);
        if last_k >= first_k {
            result.expected += u64::try_from(last_k - first_k + 1).unwrap_or(0);
        }
        let mut previous = None;
        for &(k, offset) in ticks.iter() {
            if k < first_k || k > last_k {
                previous = Some(k);
                continue;
            }
            if previous == Some(k) {
                result.extra += 1;
                continue;
            }
            previous = Some(k);
            result.done += 1;
            let late = u64::try_from(offset - on_time).unwrap_or(0);
            result.lateness.push(Duration::from_micros(late));
        }
    }
    // Targets without any arrival: every tick of the window is missed.
    let unchecked = seen.iter().filter(|seen| !**seen).count();
    result.never_checked = unchecked;
    let per_target = u64::try_from((to - from) / period).unwrap_or(0);
    result.expected += per_target * unchecked as u64;
    result.lateness.sort_unstable();
    result
}

fn as_i64(micros: u64) -> i64 {
    i64::try_from(micros).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn on_time_checks_are_all_done_and_never_late() {
        // Two targets, every 5 s, phases 1.0 s and 3.5 s; window 10..30 s.
        let mut arrivals = Vec::new();
        for k in 0..8 {
            arrivals.push((0, S + k * 5 * S));
            arrivals.push((1, 3 * S + S / 2 + k * 5 * S));
        }
        let result = schedule(arrivals, 3, Duration::from_secs(5), 10 * S, 30 * S);
        // target 0: 11, 16, 21, 26; target 1: 13.5, 18.5, 23.5, 28.5; target 2: never (4 ticks)
        assert_eq!(result.expected, 12);
        assert_eq!(result.done, 8);
        assert_eq!(result.never_checked, 1);
        assert_eq!(result.lateness_at(1.0), Duration::ZERO);
    }

    #[test]
    fn late_and_missed_checks_show() {
        // Ticks at 0, 5, 10, 15, 20; the one at 10 is 30 ms late, the one at 15 missing.
        let arrivals = vec![(0, 0), (0, 5 * S), (0, 10 * S + 30_000), (0, 20 * S)];
        let result = schedule(arrivals, 1, Duration::from_secs(5), 0, 25 * S);
        assert_eq!(result.expected, 5);
        assert_eq!(result.done, 4);
        assert_eq!(result.lateness_at(1.0), Duration::from_millis(30));
        assert_eq!(result.lateness_at(0.0), Duration::ZERO);
    }

    #[test]
    fn a_late_first_check_does_not_make_the_rest_look_late() {
        let arrivals = vec![(0, 40_000), (0, 5 * S), (0, 10 * S)];
        let result = schedule(arrivals, 1, Duration::from_secs(5), 0, 15 * S);
        assert_eq!(result.done, 3);
        assert_eq!(result.lateness_at(1.0), Duration::from_millis(40));
        assert_eq!(result.lateness_at(0.5), Duration::ZERO);
    }
}
