//! The one source of "now". Everything that depends on time (3-D Secure windows,
//! the reconciler's back-off, expiry, card expiry dates, the notification timestamp check) asks a
//! [`Clock`], so that tests move time instead of sleeping: production reads the system clock,
//! tests hold a [`ManualClock`] and advance it.
//!
//! Elapsed-time measurements (request durations, rate-limit buckets, the in-memory store's TTLs)
//! use `std::time::Instant`: they measure how long something took on this machine, which no test
//! needs to move.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock, as the flows and the web layer hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is told to move: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock standing at the current wall-clock time (so that timestamps MSP signs with the
    /// real time still fall within the tolerance until the test moves the clock).
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now())
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Seconds from configuration as a span of time, capped at a hundred years so that adding it to
/// any date of this era can neither overflow nor panic.
pub fn seconds(s: u64) -> TimeDelta {
    const CAP_S: u64 = 100 * 366 * 24 * 3_600;
    TimeDelta::seconds(i64::try_from(s.min(CAP_S)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let clock = ManualClock::at(start);
        assert_eq!(clock.now(), start);
        clock.advance(TimeDelta::minutes(90));
        assert_eq!(clock.now(), start + TimeDelta::minutes(90));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn configured_seconds_never_overflow() {
        assert_eq!(seconds(60), TimeDelta::minutes(1));
        assert!(seconds(u64::MAX) > TimeDelta::days(365 * 99));
        // Adding the cap to today neither overflows nor panics.
        assert!(
            SystemClock
                .now()
                .checked_add_signed(seconds(u64::MAX))
                .is_some()
        );
    }
}
