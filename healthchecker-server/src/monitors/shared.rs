//! The set's part when several servers share one database: each server holds every monitor (it
//! answers the whole API) and checks only those whose lease it holds ([`crate::cluster`] claims
//! and renews them).
//!
//! [`Monitors::take`] starts checking monitors just claimed, from their state as the database
//! has it (written by the server that checked them before); [`Monitors::let_go`] stops checking
//! before a lease is given up or lost; [`Monitors::refresh`] reads what the other servers
//! changed: the state of the monitors they check, and registrations, updates, pauses,
//! maintenance and removals made through them (applied to this server's own monitors too);
//! [`Monitors::refresh_checks`] the newest checks of the monitors others check, for the views.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::{Listed, Monitors, RECENT_CHECKS, Slot, jitter, recent_ring};
use crate::events::{self as live, Change};
use crate::health::Transition;
use crate::registry::AppName;
use crate::store::{LoggedCheck, StoreError};

/// How far apart the first checks of monitors taken over are spread (at most their interval)
/// when they are due already: a killed server's monitors are checked again soon, but not all in
/// one burst. Those not due yet are checked when they are.
pub const TAKEOVER_SPREAD: Duration = Duration::from_secs(1);

impl Monitors {
    /// This server's id when it shares its database with others.
    pub fn server(&self) -> Option<&str> {
        self.inner.server.as_deref()
    }

    /// Makes this server the one that tells what concerns every monitor (a storm's start), or
    /// not: the lease loop names the first live server by id at each renewal.
    pub fn set_speaker(&self, speaker: bool) {
        self.inner
            .speaker
            .store(speaker, std::sync::atomic::Ordering::Relaxed);
    }

    /// The monitors this server checks, by name.
    pub fn owned(&self) -> Vec<AppName> {
        let mut owned: Vec<AppName> = self
            .inner
            .read_slots()
            .iter()
            .filter(|(_, slot)| slot.lock().owned)
            .map(|(name, _)| name.clone())
            .collect();
        owned.sort_unstable();
        owned
    }

    /// Starts checking `names`, whose leases this server just claimed, from their state as
    /// stored: states, counters, open incidents and held degrades carry over from the server
    /// that checked them before.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when they cannot be read (then they are not checked here yet; the lease
    /// stays, and the caller tries again).
    pub async fn take(&self, names: Vec<AppName>) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let _change = self.inner.changes.lock().await;
        let claimed = self.inner.store.load_named(names).await?;
        let now = Instant::now();
        for stored in claimed {
            let name = stored.name.clone();
            let mut slot = self.inner.restored(stored, true);
            slot.owner.clone_from(&self.inner.server);
            if !slot.paused {
                // When the server before would have checked it next (the cadence goes on), or
                // soon when that is past (a killed server's monitors).
                let due = slot
                    .recent
                    .front()
                    .and_then(|last| {
                        (last.record.time + slot.spec.interval - Utc::now())
                            .to_std()
                            .ok()
                    })
                    .unwrap_or_default();
                let first = now + due.max(jitter(slot.spec.interval.min(TAKEOVER_SPREAD)));
                self.inner.schedule(&name, &mut slot, first);
            }
            self.replace(name, slot);
        }
        Ok(())
    }

    /// Stops checking `names` (their leases are given up, or ran out): a check in flight is
    /// discarded, none starts.
    pub fn let_go(&self, names: &[AppName]) {
        for name in names {
            let Some(slot) = self.inner.slot(name) else {
                continue;
            };
            {
                let mut slot = slot.lock();
                if !slot.owned {
                    continue;
                }
                slot.owned = false;
                slot.owner = None;
                slot.generation += 1;
                slot.armed = None;
            }
            self.inner.scheduler.unschedule(name.clone());
        }
    }

    /// Stops checking `count` of the monitors this server checks that have no check in flight
    /// (the last by name first), for their leases to be given up: nothing of theirs is
    /// discarded, so once the store has written what was queued, the next server goes on from
    /// their last check. Returns those it stopped (fewer when more are in flight).
    pub fn let_go_idle(&self, count: usize) -> Vec<AppName> {
        let mut stopped = Vec::with_capacity(count);
        for name in self.owned().into_iter().rev() {
            if stopped.len() == count {
                break;
            }
            let Some(slot) = self.inner.slot(&name) else {
                continue;
            };
            {
                let mut slot = slot.lock();
                if slot.in_flight {
                    continue;
                }
                // No check starts once it is not owned (see `dispatch`).
                slot.owned = false;
                slot.owner = None;
                slot.armed = None;
            }
            self.inner.scheduler.unschedule(name.clone());
            stopped.push(name);
        }
        stopped
    }

    /// Reads what changed in the database after version `since` and applies it; returns the
    /// newest version read. Made under the set's changes lock, so a change made through this
    /// server's API is never undone by an older read.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read (nothing changed).
    pub async fn refresh(&self, since: i64) -> Result<i64, StoreError> {
        let _change = self.inner.changes.lock().await;
        let changes = self.inner.store.changes(since).await?;
        // Removals first: a name removed and registered again is in both.
        for name in &changes.deleted {
            self.forget(name);
        }
        for (stored, owner) in changes.monitors {
            let name = stored.name.clone();
            let ours = owner.as_deref().is_some() && owner.as_deref() == self.server();
            match self.inner.slot(&name) {
                Some(slot) if ours && slot.lock().owned => {
                    self.redefine(&name, &slot, stored);
                }
                _ => {
                    if !ours {
                        self.let_go(std::slice::from_ref(&name));
                    }
                    let old = self.inner.slot(&name);
                    let mut slot = self.inner.restored(stored, false);
                    slot.owner = owner.map(Arc::from);
                    let (check, transition) = match &old {
                        Some(old) => carry_over(&old.lock(), &mut slot),
                        None => (None, None),
                    };
                    self.replace(name.clone(), slot);
                    if old.is_none() {
                        self.changed(&name, Change::Registered);
                    }
                    // Live events of the monitors others check, as their own checks make them.
                    if let Some(check) = check {
                        self.inner.events.publish(|| live::Event::Check {
                            app: name.clone(),
                            check,
                        });
                    }
                    if let Some(transition) = transition {
                        self.inner.events.publish(|| live::Event::Transition {
                            app: name.clone(),
                            transition,
                        });
                    }
                }
            }
        }
        Ok(changes.newest)
    }

    /// Reads the newest check of each monitor another server checks, for its view (its last
    /// check and counters; its state and transitions come with [`Monitors::refresh`]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read (nothing changed).
    pub async fn refresh_checks(&self) -> Result<(), StoreError> {
        for (name, mut check, health) in self.inner.store.last_checks().await? {
            let Some(slot) = self.inner.slot(&name) else {
                continue;
            };
            let mut slot = slot.lock();
            let newer = slot
                .recent
                .front()
                .is_none_or(|last| last.record.time < check.record.time);
            if slot.owned || !newer {
                continue;
            }
            check.record.body = None; // as every check in memory (see `recent_ring`)
            let before = slot.part();
            if slot.recent.len() == super::RECENT_CHECKS {
                slot.recent.pop_back();
            }
            slot.recent.push_front(check);
            if let Some(check) = slot.recent.front() {
                // built only when somebody listens
                self.inner.events.publish(|| live::Event::Check {
                    app: name.clone(),
                    check: check.clone(),
                });
            }
            if slot.health.state == health.state {
                slot.health = health;
            }
            self.inner.crowd().change(&slot.host, before, slot.part());
        }
        Ok(())
    }

    /// Takes a change another server made to the definition of `name`, which this server
    /// checks: a new spec, a pause or a resume, maintenance.
    fn redefine(&self, name: &AppName, slot: &Listed<Slot>, stored: crate::store::StoredMonitor) {
        let maintenance = stored
            .maintenance
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        let mut slot = slot.lock();
        let same_spec = *slot.spec == stored.spec && slot.source == stored.source;
        if same_spec && slot.paused == stored.paused && slot.maintenance == maintenance {
            return; // this server's own change, read back
        }
        slot.maintenance = maintenance;
        let before = slot.part();
        let was_paused = slot.paused;
        let old_host = slot.host.clone();
        if !same_spec {
            {
                let mut keys = self.inner.keys_mut();
                if let Some(old) = &slot.spec.push {
                    keys.remove(&old.key);
                }
                if let Some(new) = &stored.spec.push {
                    keys.insert(new.key.clone(), name.clone());
                }
            }
            slot.host = super::host_of(name, &stored.spec);
            slot.spec = Arc::new(stored.spec);
            slot.source = stored.source;
        }
        if slot.paused != stored.paused || !same_spec {
            slot.generation += 1;
        }
        slot.paused = stored.paused;
        if slot.paused {
            slot.alerting = super::Alerting::default();
            self.inner.scheduler.unschedule(name.clone());
        } else if !same_spec || was_paused {
            let first = Instant::now() + super::first_check(slot.spec.interval, self.inner.options);
            self.inner.schedule(name, &mut slot, first);
        }
        {
            let mut crowd = self.inner.crowd();
            crowd.leave(&old_host, before);
            crowd.join(&slot.host, slot.spec.next_answer_within(), slot.part());
        }
        tracing::info!(app = %name, "monitor changed through another server");
        self.changed(name, Change::Updated);
    }

    /// Puts `slot` in place of `name`'s (a check in flight of the one before is discarded).
    fn replace(&self, name: AppName, slot: Slot) {
        if let Some(old) = self.inner.slot(&name) {
            let mut old = old.lock();
            old.generation += 1;
            if let Some(push) = &old.spec.push {
                self.inner.keys_mut().remove(&push.key);
            }
            self.inner.crowd().leave(&old.host, old.part());
        }
        if let Some(push) = &slot.spec.push {
            self.inner.keys_mut().insert(push.key.clone(), name.clone());
        }
        self.inner
            .crowd()
            .join(&slot.host, slot.spec.next_answer_within(), slot.part());
        self.inner
            .write_slots()
            .insert(name, Arc::new(Listed::new(slot)));
    }

    /// Forgets `name`, removed through another server.
    fn forget(&self, name: &AppName) {
        if !self.inner.unlist(name) {
            return;
        }
        tracing::info!(app = %name, "monitor removed through another server");
        self.changed(name, Change::Removed);
    }
}

/// Keeps the recent checks `old` had that `new` (as read from the database: its newest check
/// alone) lacks, when it checks the same URL. Returns what `new` brings that `old` had not,
/// for live events: its newest check, and its last transition.
fn carry_over(old: &Slot, new: &mut Slot) -> (Option<LoggedCheck>, Option<Transition>) {
    let fresh = new.recent.front().cloned().filter(|check| {
        old.recent
            .front()
            .is_none_or(|last| last.record.time < check.record.time)
    });
    if old.spec.url == new.spec.url {
        let mut recent = recent_ring(fresh.clone());
        let room = RECENT_CHECKS - recent.len();
        recent.extend(old.recent.iter().take(room).cloned());
        new.recent = recent;
    }
    let transition = new
        .last_transition
        .clone()
        .filter(|transition| old.last_transition.as_ref() != Some(transition));
    (fresh, transition)
}
