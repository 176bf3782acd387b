//! What one client address may do: how many connections it holds at once
//! ([`ConnectionSlots`], for [`crate::http`]), how often it may register
//! ([`RegistrationLimiter`]: `max_registrations_per_minute`, so one host on the LAN cannot flood
//! the server, or through it the mail relay, with registrations), and how many monitors it may
//! have created ([`ClientMonitors`]: `max_monitors_per_client`, so one host cannot turn the server
//! into its port scanner), and how often one channel may be sent a test message
//! ([`ChannelTests`]: once per [`CHANNEL_TEST_INTERVAL`], whoever asks, so a retried or
//! repeated request cannot page people twice). An IPv6 client counts by its /64 network, since one host may use any
//! address in it.
//!
//! The registration algorithm is [`governor`]'s GCRA: a burst of the whole minute's allowance at once, then
//! one more every `60 s / allowance`, so no address gets more than about twice the allowance in
//! any one minute. The API applies it as a layer on `PUT /api/v1/monitors/{app}` only (see
//! [`crate::api::router`]); refused registrations count too. A leaf: it imports nothing of this
//! crate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Addresses remembered at most; past that, those back to a fresh allowance are forgotten.
const ADDRESSES_KEPT: usize = 10_000;

/// The per-address registration limit.
#[derive(Debug)]
pub struct RegistrationLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl RegistrationLimiter {
    /// A limiter of `per_minute` registrations per address; `None` (or 0) when there is no limit.
    pub fn new(per_minute: Option<u32>) -> Option<RegistrationLimiter> {
        let per_minute = NonZeroU32::new(per_minute?)?;
        Some(RegistrationLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one registration from `client`; `Err(seconds)` to wait when it is over its
    /// allowance (at least 1).
    ///
    /// An IPv6 client counts by its /64 network, since one host may use any address in it.
    ///
    /// # Errors
    ///
    /// The whole seconds until `client` may register again.
    pub fn admit(&self, client: IpAddr) -> Result<(), u64> {
        if self.limiter.len() >= ADDRESSES_KEPT {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&network_of(client))
            .map_err(|refused| {
                let wait = refused.wait_time_from(self.clock.now());
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
            })
    }
}

/// Shortest time between two test messages on one channel.
pub const CHANNEL_TEST_INTERVAL: Duration = Duration::from_secs(10);

/// When each channel was last sent a test message: a test of a channel within
/// [`CHANNEL_TEST_INTERVAL`] of the last is refused, whoever asks, from whichever address. A
/// test is counted when it is admitted, before it is sent, so two requests at once (a retried
/// one, a double click) send one message, not two. The caller admits only the names of channels
/// that exist, so what is kept is bounded by the config file.
#[derive(Debug, Default)]
pub struct ChannelTests {
    last: Mutex<HashMap<String, Instant>>,
}

impl ChannelTests {
    /// Counts a test of `channel` at `now`.
    ///
    /// # Errors
    ///
    /// The seconds to wait (at least 1) when `channel` was tested less than
    /// [`CHANNEL_TEST_INTERVAL`] before `now`.
    pub fn admit(&self, channel: &str, now: Instant) -> Result<(), u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&then) = last.get(channel) {
            let since = now.saturating_duration_since(then);
            if since < CHANNEL_TEST_INTERVAL {
                let wait = CHANNEL_TEST_INTERVAL - since;
                return Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
            }
        }
        last.insert(channel.to_owned(), now);
        Ok(())
    }
}

/// How many monitors each client address created, up to `max_monitors_per_client`.
///
/// A monitor counts against the address whose registration created it (updates by anyone do not
/// move it) until it is removed, by anyone. The count is the server's memory of this run:
/// monitors loaded at start, or declared in the config file, count against no address.
#[derive(Debug)]
pub struct ClientMonitors {
    per_client: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Monitors created (or being created) per address.
    created: HashMap<IpAddr, usize>,
    /// Who created each monitor, by its name.
    creator: HashMap<String, IpAddr>,
}

/// A place for one more monitor of one client, held while its registration is made durable:
/// [`MonitorReservation::created`] keeps it; dropped without that, it is given back (the
/// registration failed, or updated a monitor that existed).
#[derive(Debug)]
#[must_use = "dropping the reservation gives it back"]
pub struct MonitorReservation<'a> {
    monitors: &'a ClientMonitors,
    key: IpAddr,
    name: String,
    kept: bool,
}

impl ClientMonitors {
    /// Counts for at most `per_client` monitors per client address; `None` (or 0) when there is
    /// no limit.
    pub fn new(per_client: Option<usize>) -> Option<ClientMonitors> {
        let per_client = per_client.filter(|&count| count > 0)?;
        Some(ClientMonitors {
            per_client,
            counts: Mutex::default(),
        })
    }

    /// The limit per address.
    pub fn per_client(&self) -> usize {
        self.per_client
    }

    /// A place for the monitor `name` that `client` is about to create.
    ///
    /// # Errors
    ///
    /// The limit, when `client` has created that many monitors already.
    pub fn reserve(&self, client: IpAddr, name: &str) -> Result<MonitorReservation<'_>, usize> {
        let key = network_of(client);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let created = counts.created.entry(key).or_insert(0);
        if *created >= self.per_client {
            return Err(self.per_client);
        }
        *created += 1;
        Ok(MonitorReservation {
            monitors: self,
            key,
            name: name.to_owned(),
            kept: false,
        })
    }

    /// The monitor `name` is gone: the place it held is free again.
    pub fn removed(&self, name: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = counts.creator.remove(name) {
            counts.give_back(key);
        }
    }

    /// How many monitors `client` has created.
    pub fn created_by(&self, client: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .created
            .get(&network_of(client))
            .copied()
            .unwrap_or(0)
    }
}

impl Counts {
    fn give_back(&mut self, key: IpAddr) {
        if let Some(count) = self.created.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.created.remove(&key);
            }
        }
    }
}

impl MonitorReservation<'_> {
    /// The monitor was created: it counts against the client until it is removed.
    pub fn created(mut self) {
        let mut counts = self
            .monitors
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(earlier) = counts.creator.insert(self.name.clone(), self.key) {
            // Created again after a removal this count did not see: one place, not two.
            counts.give_back(earlier);
        }
        self.kept = true;
    }
}

impl Drop for MonitorReservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.monitors
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .give_back(self.key);
        }
    }
}

/// How many connections each client address holds, up to a limit per address.
#[derive(Debug, Clone)]
pub struct ConnectionSlots {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_client: usize,
}

/// One connection's place in [`ConnectionSlots`]; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    slots: ConnectionSlots,
    key: IpAddr,
}

impl ConnectionSlots {
    /// Slots for at most `per_client` connections per client address.
    pub fn new(per_client: usize) -> ConnectionSlots {
        ConnectionSlots {
            held: Arc::default(),
            per_client,
        }
    }

    /// A slot for one more connection from `client`; `None` when it holds its limit already.
    pub fn take(&self, client: IpAddr) -> Option<ConnectionSlot> {
        let key = network_of(client);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            slots: self.clone(),
            key,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The key an address counts under: itself for IPv4, its /64 for IPv6.
fn network_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_allowance_then_a_wait() {
        let limiter = RegistrationLimiter::new(Some(4)).expect("a limit");
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..4 {
            assert_eq!(limiter.admit(a), Ok(()));
        }
        let wait = limiter.admit(a).expect_err("over");
        assert!((1..=15).contains(&wait), "{wait}");
        assert_eq!(
            limiter.admit(b),
            Ok(()),
            "another address has its own allowance"
        );
    }

    #[test]
    fn connection_slots_are_counted_per_client_and_given_back() {
        let slots = ConnectionSlots::new(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let first = slots.take(a).expect("one");
        let _second = slots.take(a).expect("two");
        assert!(slots.take(a).is_none(), "a third is over the limit");
        assert!(slots.take([10, 0, 0, 2].into()).is_some(), "another client");
        drop(first);
        assert!(slots.take(a).is_some(), "a slot given back is free again");
    }

    #[test]
    fn monitors_count_against_their_creator_until_removed() {
        let monitors = ClientMonitors::new(Some(2)).expect("a limit");
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        monitors.reserve(a, "one").expect("first").created();
        monitors.reserve(a, "two").expect("second").created();
        assert_eq!(monitors.reserve(a, "three").expect_err("third"), 2);
        assert_eq!(monitors.created_by(a), 2);
        drop(monitors.reserve(b, "four").expect("another client"));
        assert_eq!(
            monitors.created_by(b),
            0,
            "a reservation dropped is given back"
        );
        monitors.removed("one");
        assert_eq!(monitors.created_by(a), 1);
        monitors.reserve(a, "three").expect("room again").created();
        monitors.removed("unknown");
        assert_eq!(monitors.created_by(a), 2);
        let v6: IpAddr = "fd00:1:2:3::1".parse().expect("ip");
        let same_net: IpAddr = "fd00:1:2:3::99".parse().expect("ip");
        let limited = ClientMonitors::new(Some(1)).expect("a limit");
        limited.reserve(v6, "x").expect("one").created();
        assert!(
            limited.reserve(same_net, "y").is_err(),
            "one /64, one client"
        );
        assert!(ClientMonitors::new(Some(0)).is_none() && ClientMonitors::new(None).is_none());
    }

    #[test]
    fn a_channel_is_tested_once_per_interval_whoever_asks() {
        let tests = ChannelTests::default();
        let start = Instant::now();
        tests.admit("pager", start).expect("the first");
        assert_eq!(tests.admit("pager", start), Err(10));
        assert_eq!(
            tests.admit("pager", start + Duration::from_millis(9_500)),
            Err(1)
        );
        tests.admit("slack", start).expect("another channel");
        tests
            .admit("pager", start + CHANNEL_TEST_INTERVAL)
            .expect("after the interval");
        assert!(tests.admit("pager", start + CHANNEL_TEST_INTERVAL).is_err());
    }

    #[test]
    fn no_limit_is_none() {
        assert!(RegistrationLimiter::new(None).is_none());
        assert!(RegistrationLimiter::new(Some(0)).is_none());
    }

    #[test]
    fn an_ipv6_host_counts_by_its_network() {
        let limiter = RegistrationLimiter::new(Some(1)).expect("a limit");
        let one: IpAddr = "fd00:1:2:3::1".parse().expect("ip");
        let same_net: IpAddr = "fd00:1:2:3:ffff::9".parse().expect("ip");
        let other_net: IpAddr = "fd00:1:2:4::1".parse().expect("ip");
        assert_eq!(limiter.admit(one), Ok(()));
        assert!(limiter.admit(same_net).is_err());
        assert_eq!(limiter.admit(other_net), Ok(()));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(network_of(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
