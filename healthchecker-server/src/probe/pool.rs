//! Idle kept-alive connections, by scheme, host and port.
//!
//! Pure bookkeeping, the clock given as an argument: the [`Pool`] never touches a socket. Its
//! owner holds it behind a mutex, checks that a connection it takes is still open, and drops
//! what it gets back (closing those sockets) outside the lock. There is no task: expired
//! connections are taken out when their key is next asked for, or by a sweep of the whole map
//! that a checkout or checkin does at most every [`SWEEP_EVERY`].

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use url::Host;

/// How often, at most, the whole pool is swept for expired connections. The sweep is done by
/// whichever check takes or returns a connection after this long, so it needs no task.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Which idle connections can carry a request: same scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// https (TLS) or http.
    pub(super) https: bool,
    /// Whether the certificate was verified (https): a connection made without verification
    /// (`tls_verify: false`) never carries a check that asks for it.
    pub(super) verify: bool,
    /// The host as written in the URL: a name, or an address.
    pub(super) host: Host<String>,
    /// The port, the scheme's default when the URL has none.
    pub(super) port: u16,
}

/// An idle connection: the stream, when it was last used and until when it may be used.
#[derive(Debug)]
struct Idle<S> {
    stream: S,
    last_used: Instant,
    expires: Instant,
}

/// Idle kept-alive connections by [`Key`], most recently used last.
#[derive(Debug)]
pub(super) struct Pool<S> {
    idle: HashMap<Key, Vec<Idle<S>>>,
    /// Most idle connections kept per key.
    max_per_key: usize,
    /// When the whole map is next swept for expired connections.
    next_sweep: Instant,
}

impl<S> Pool<S> {
    /// An empty pool that keeps at most `max_per_key` idle connections per key.
    pub(super) fn new(now: Instant, max_per_key: usize) -> Pool<S> {
        Pool {
            idle: HashMap::new(),
            max_per_key,
            next_sweep: now + SWEEP_EVERY,
        }
    }

    /// Takes the most recently used connection for `key` that has not expired. Also returns
    /// the connections found expired (for `key`, or anywhere when a sweep was due), for the
    /// caller to drop.
    pub(super) fn checkout(&mut self, key: &Key, now: Instant) -> (Option<S>, Vec<S>) {
        let mut expired = self.sweep_if_due(now);
        let Some(idle) = self.idle.get_mut(key) else {
            return (None, expired);
        };
        let mut found = None;
        while let Some(newest) = idle.pop() {
            if now < newest.expires {
                found = Some(newest.stream);
                break;
            }
            expired.push(newest.stream);
        }
        if idle.is_empty() {
            self.idle.remove(key);
        }
        (found, expired)
    }

    /// Puts a connection back, used `now`, to be kept for at most `keep_for`. Returns the
    /// connections to drop: this one when `key` already has as many idle connections as are
    /// kept, and any a due sweep found.
    pub(super) fn checkin(
        &mut self,
        key: Key,
        stream: S,
        now: Instant,
        keep_for: Duration,
    ) -> Vec<S> {
        let mut dropped = self.sweep_if_due(now);
        let idle = Idle {
            stream,
            last_used: now,
            expires: now + keep_for,
        };
        match self.idle.get_mut(&key) {
            Some(list) if list.len() >= self.max_per_key => dropped.push(idle.stream),
            Some(list) => list.push(idle),
            None => {
                self.idle.insert(key, vec![idle]);
            }
        }
        dropped
    }

    /// Takes out the older half of all idle connections (at least one, when there is any), for
    /// the caller to close: the server ran out of open files, and a new connection needs room.
    pub(super) fn evict_older_half(&mut self) -> Vec<S> {
        let mut times: Vec<Instant> = self
            .idle
            .values()
            .flat_map(|list| list.iter().map(|idle| idle.last_used))
            .collect();
        if times.is_empty() {
            return Vec::new();
        }
        let middle = (times.len() - 1) / 2;
        let (_, &mut cutoff, _) = times.select_nth_unstable(middle);
        let mut evicted = Vec::new();
        self.idle.retain(|_, list| {
            // Oldest first: the evicted ones are a prefix.
            let kept = list
                .iter()
                .position(|idle| idle.last_used > cutoff)
                .unwrap_or(list.len());
            evicted.extend(list.drain(..kept).map(|idle| idle.stream));
            !list.is_empty()
        });
        evicted
    }

    /// How many idle connections the pool holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Every [`SWEEP_EVERY`], takes the expired connections out of the whole map (and the keys
    /// left without any), so that connections of monitors that were removed do not stay open.
    fn sweep_if_due(&mut self, now: Instant) -> Vec<S> {
        let mut expired = Vec::new();
        if now < self.next_sweep {
            return expired;
        }
        self.next_sweep = now + SWEEP_EVERY;
        self.idle.retain(|_, list| {
            let mut index = 0;
            while index < list.len() {
                if now < list[index].expires {
                    index += 1;
                } else {
                    expired.push(list.remove(index).stream);
                }
            }
            !list.is_empty()
        });
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keep time of most connections in these tests.
    const KEEP: Duration = Duration::from_secs(330);

    fn key(port: u16) -> Key {
        Key {
            https: false,
            verify: true,
            host: Host::Domain("app.lan".to_owned()),
            port,
        }
    }

    #[test]
    fn the_pool_hands_out_the_most_recently_used_first() {
        let start = Instant::now();
        let mut pool = Pool::new(start, 8);
        assert!(pool.checkin(key(1), 1, start, KEEP).is_empty());
        assert!(
            pool.checkin(key(1), 2, start + Duration::from_secs(1), KEEP)
                .is_empty()
        );
        assert!(pool.checkin(key(2), 3, start, KEEP).is_empty());
        let now = start + Duration::from_secs(2);
        assert_eq!(pool.checkout(&key(1), now), (Some(2), vec![]));
        assert_eq!(pool.checkout(&key(1), now), (Some(1), vec![]));
        assert_eq!(pool.checkout(&key(1), now), (None, vec![]));
        assert_eq!(pool.checkout(&key(3), now), (None, vec![]));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn idle_connections_expire() {
        let start = Instant::now();
        let mut pool = Pool::new(start, 8);
        pool.checkin(key(1), 1, start, KEEP);
        pool.checkin(key(1), 2, start + Duration::from_secs(5), KEEP);
        // Just before the newest expires, it is handed out; the older one has expired (and a
        // sweep is due, which takes it out).
        let almost = start + Duration::from_secs(5) + KEEP - Duration::from_millis(1);
        assert_eq!(pool.checkout(&key(1), almost), (Some(2), vec![1]));
        assert!(pool.checkin(key(1), 2, almost, KEEP).is_empty());
        // No sweep is due yet: the expired one is found when its key is asked for.
        let later = almost + KEEP;
        assert_eq!(pool.checkout(&key(1), later), (None, vec![2]));
        assert_eq!(pool.len(), 0);
        assert!(pool.idle.is_empty());
    }

    #[test]
    fn each_connection_keeps_its_own_time() {
        // An app that says `Keep-Alive: timeout=5` gets its connections back for 4 s; another
        // the pool's whole time.
        let start = Instant::now();
        let mut pool = Pool::new(start, 8);
        let short = Duration::from_secs(4);
        pool.checkin(key(1), 1, start, short);
        pool.checkin(key(2), 2, start, KEEP);
        let at = |millis| start + Duration::from_millis(millis);
        assert_eq!(pool.checkout(&key(1), at(3_999)), (Some(1), vec![]));
        pool.checkin(key(1), 1, at(3_999), short);
        assert_eq!(pool.checkout(&key(1), at(8_000)), (None, vec![1]));
        assert_eq!(pool.checkout(&key(2), at(8_000)), (Some(2), vec![]));
        // When a newer connection expires before an older one (the app shortened its timeout),
        // the older one is still handed out.
        pool.checkin(key(3), 3, at(0), KEEP);
        pool.checkin(key(3), 4, at(1_000), short);
        assert_eq!(pool.checkout(&key(3), at(6_000)), (Some(3), vec![4]));
    }

    #[test]
    fn the_sweep_closes_connections_nobody_asks_for_every_30_s_at_most() {
        let start = Instant::now();
        let keep = Duration::from_secs(20);
        let mut pool = Pool::new(start, 8);
        pool.checkin(key(1), 1, start, keep);
        pool.checkin(key(2), 2, start + Duration::from_secs(25), keep);
        // The first sweep is due at 30 s: key 1's connection (30 s idle) goes, key 2's stays.
        let at = |seconds| start + Duration::from_secs(seconds);
        assert_eq!(pool.checkout(&key(9), at(30)), (None, vec![1]));
        assert!(!pool.idle.contains_key(&key(1)));
        // Key 2's has expired at 45 s, but the next sweep is only due at 60 s.
        assert_eq!(pool.checkout(&key(9), at(50)), (None, vec![]));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.checkout(&key(9), at(60)), (None, vec![2]));
        assert_eq!(pool.len(), 0);
        assert!(pool.idle.is_empty());
    }

    #[test]
    fn the_pool_keeps_at_most_so_many_per_host() {
        let start = Instant::now();
        let mut pool = Pool::new(start, 2);
        assert!(pool.checkin(key(1), 1, start, KEEP).is_empty());
        assert!(pool.checkin(key(1), 2, start, KEEP).is_empty());
        assert_eq!(pool.checkin(key(1), 3, start, KEEP), vec![3]);
        assert!(pool.checkin(key(2), 4, start, KEEP).is_empty());
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn out_of_files_the_older_half_is_closed() {
        let start = Instant::now();
        let mut pool = Pool::new(start, 8);
        assert!(pool.evict_older_half().is_empty());
        for (i, stream) in (1..=5).enumerate() {
            let used = start + Duration::from_secs(u64::try_from(i).unwrap_or(0));
            // Two hosts, interleaved: the age counts, not the host.
            let _ = pool.checkin(key(if stream % 2 == 0 { 1 } else { 2 }), stream, used, KEEP);
        }
        let mut evicted = pool.evict_older_half();
        evicted.sort_unstable();
        assert_eq!(evicted, vec![1, 2, 3]);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.evict_older_half(), vec![4]);
        assert_eq!(pool.evict_older_half(), vec![5]);
        assert!(pool.idle.is_empty());
    }
}
