//! Each monitor's JSON in `GET /api/v1/monitors`, kept from one list to the next until the
//! monitor changes.
//!
//! At 10,000 monitors the list is 7.7 MB of JSON, and between two lists only the monitors that
//! were checked (or changed) meanwhile are different: at 5 s, about 200 in a tenth of a second.
//! A [`Listed`] holds a monitor's slot behind its lock together with the JSON last written for
//! it. The slot can only be reached through a [`Guard`], and every mutable access through the
//! guard marks the JSON stale, so no change can be missed (there is no version to bump by hand
//! at each place that changes a slot). The JSON is written again when it is stale, or when what
//! it shows besides the slot ([`Context`]: the maintenance in force at the time of the list, the
//! base of a push monitor's ping URL) differs from what it was written for.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

/// A value behind a lock, with the JSON last written for it (see the module documentation).
#[derive(Debug)]
pub(super) struct Listed<T> {
    entry: Mutex<Entry<T>>,
}

#[derive(Debug)]
struct Entry<T> {
    value: T,
    /// Whether `json` still shows `value` (false from any mutable access on).
    fresh: bool,
    /// Boxed: a server whose list is never read pays one pointer per monitor.
    json: Option<Box<Kept>>,
}

/// The JSON of one value and the context it was written in.
#[derive(Debug)]
struct Kept {
    bytes: Box<[u8]>,
    maintenance_until: Option<DateTime<Utc>>,
    window: Option<usize>,
    ping_base: Option<String>,
}

impl Kept {
    fn holds(&self, context: Context<'_>) -> bool {
        self.maintenance_until == context.maintenance_until
            && self.window == context.window
            && self.ping_base.as_deref() == context.ping_base
    }
}

/// What a monitor's JSON in the list shows besides its slot; the kept JSON is used only when it
/// was written for the same context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Context<'a> {
    /// Until when the monitor is in maintenance at the time of the list (a manual maintenance
    /// ends, scheduled windows begin and end, with no change to the slot).
    pub maintenance_until: Option<DateTime<Utc>>,
    /// Which scheduled window (its place in the config) gives the maintenance's reason, if one
    /// does.
    pub window: Option<usize>,
    /// Where the monitor's job pings (push monitors; `None` for the others, whose JSON does not
    /// depend on it): the base URL differs with the `Host` a request was sent to.
    pub ping_base: Option<&'a str>,
}

impl<T> Listed<T> {
    /// `value`, with no JSON yet.
    pub(super) fn new(value: T) -> Listed<T> {
        Listed {
            entry: Mutex::new(Entry {
                value,
                fresh: false,
                json: None,
            }),
        }
    }

    /// Locks the value, recovering it if a panicking thread poisoned the lock (slots are
    /// consistent at every unlock point).
    pub(super) fn lock(&self) -> Guard<'_, T> {
        Guard(
            self.entry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The locked value: reading it leaves its JSON as it is; changing it (any `&mut` access) marks
/// the JSON stale.
pub(super) struct Guard<'a, T>(MutexGuard<'a, Entry<T>>);

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        let entry = &mut *self.0;
        entry.fresh = false;
        &mut entry.value
    }
}

impl<T> Guard<'_, T> {
    /// Appends the value's JSON in `context` to `out`: the kept JSON when the value has not
    /// changed since it was written for this context, else what `write` appends (then kept).
    ///
    /// # Errors
    ///
    /// What `write` returns (then nothing is kept, and `out` may hold part of the JSON).
    pub(super) fn write_json<E>(
        &mut self,
        context: Context<'_>,
        out: &mut Vec<u8>,
        write: impl FnOnce(&T, &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let entry = &mut *self.0;
        if entry.fresh
            && let Some(kept) = &entry.json
            && kept.holds(context)
        {
            out.extend_from_slice(&kept.bytes);
            return Ok(());
        }
        entry.fresh = false;
        let start = out.len();
        write(&entry.value, out)?;
        entry.json = Some(Box::new(Kept {
            bytes: out[start..].into(),
            maintenance_until: context.maintenance_until,
            window: context.window,
            ping_base: context.ping_base.map(str::to_owned),
        }));
        entry.fresh = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Context<'static> = Context {
        maintenance_until: None,
        window: None,
        ping_base: None,
    };

    /// The JSON `listed` gives in `context`, and how many times `write` ran in all.
    fn json(listed: &Listed<u32>, context: Context<'_>, writes: &mut u32) -> String {
        let mut out = b"[".to_vec();
        listed
            .lock()
            .write_json(context, &mut out, |value, out| {
                *writes += 1;
                serde_json::to_writer(out, value)
            })
            .expect("a number serializes");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn the_json_is_written_once_until_the_value_changes() {
        let listed = Listed::new(7);
        let mut writes = 0;
        assert_eq!(json(&listed, PLAIN, &mut writes), "[7");
        assert_eq!(json(&listed, PLAIN, &mut writes), "[7");
        assert_eq!(writes, 1, "the second time, the kept JSON");
        *listed.lock() += 1;
        assert_eq!(json(&listed, PLAIN, &mut writes), "[8");
        assert_eq!(writes, 2);
    }

    #[test]
    fn any_mutable_access_makes_it_stale_reading_does_not() {
        let listed = Listed::new(7);
        let mut writes = 0;
        json(&listed, PLAIN, &mut writes);
        assert_eq!(*listed.lock(), 7);
        json(&listed, PLAIN, &mut writes);
        assert_eq!(writes, 1, "a read leaves it fresh");
        {
            let mut guard = listed.lock();
            let _same: &mut u32 = &mut guard;
        }
        json(&listed, PLAIN, &mut writes);
        assert_eq!(
            writes, 2,
            "a `&mut` taken is a change, even without a write"
        );
    }

    #[test]
    fn another_context_writes_it_again() {
        let listed = Listed::new(7);
        let mut writes = 0;
        json(&listed, PLAIN, &mut writes);
        let until = Some(DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a time"));
        let contexts = [
            Context {
                maintenance_until: until,
                ..PLAIN
            },
            Context {
                maintenance_until: until,
                window: Some(0),
                ..PLAIN
            },
            Context {
                ping_base: Some("http://a:1"),
                ..PLAIN
            },
            Context {
                ping_base: Some("http://b:1"),
                ..PLAIN
            },
            PLAIN,
        ];
        for (n, context) in contexts.into_iter().enumerate() {
            json(&listed, context, &mut writes);
            assert_eq!(writes as usize, n + 2, "{context:?} is another context");
            json(&listed, context, &mut writes);
            assert_eq!(writes as usize, n + 2, "{context:?} again: kept");
        }
    }

    #[test]
    fn a_failed_write_keeps_nothing() {
        let listed = Listed::new(7);
        let mut out = Vec::new();
        let failed: Result<(), &str> = listed.lock().write_json(PLAIN, &mut out, |_, out| {
            out.push(b'x');
            Err("no")
        });
        assert_eq!(failed, Err("no"));
        let mut writes = 0;
        assert_eq!(json(&listed, PLAIN, &mut writes), "[7");
        assert_eq!(writes, 1, "written again after the failure");
    }
}
