//! The simulator's clock: the real time plus whatever `PUT /sim/clock` added. Every
//! timer of the simulator (challenge expiry, clearing, refund settlement, notification retries,
//! the five-minute refund rule) reads it, so a test moves time instead of sleeping. What MSP signs
//! with (`timestamp`, `Auth`) stays on the real clock: see `notifier`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// The furthest the clock may be moved in all, so that dates stay far inside chrono's range.
const MAX_ADVANCE_S: i64 = 100 * 366 * 24 * 3600;

pub(crate) struct Clock {
    /// Milliseconds added to the real time so far; it only grows.
    advanced_ms: AtomicI64,
    /// Bumped at every advance, so that waiting timers look at the time again at once.
    moved: watch::Sender<u64>,
}

/// An advance the clock refuses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooFar {
    pub max_s: i64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            advanced_ms: AtomicI64::new(0),
            moved: watch::channel(0).0,
        }
    }

    /// The simulator's time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.advanced_ms.load(Ordering::Acquire))
    }

    /// The simulator's time as MSP writes it in orders (`2021-03-24T16:26:31`, no zone).
    pub(crate) fn naive_now(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Seconds added so far.
    pub(crate) fn advanced_s(&self) -> i64 {
        self.advanced_ms.load(Ordering::Acquire) / 1000
    }

    /// Moves the clock `seconds` forward and wakes every timer so that what is due happens now.
    pub(crate) fn advance(&self, seconds: u64) -> Result<(), TooFar> {
        let too_far = || TooFar {
            max_s: MAX_ADVANCE_S,
        };
        let ms = i64::try_from(seconds)
            .ok()
            .filter(|s| *s <= MAX_ADVANCE_S)
            .ok_or_else(too_far)?
            * 1000;
        self.advanced_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(ms).filter(|t| *t <= MAX_ADVANCE_S * 1000)
            })
            .map_err(|_| too_far())?;
        self.moved.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// Waits until the simulator's time reaches `due`, however it gets there: by itself, or by
    /// an advance (then within a few milliseconds of it).
    pub(crate) async fn sleep_until(&self, due: DateTime<Utc>) {
        // Subscribed before reading the time, so an advance in between is not missed.
        let mut moved = self.moved.subscribe();
        loop {
            let Ok(left) = (due - self.now()).to_std() else {
                return;
            };
            if left.is_zero() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                changed = moved.changed() => {
                    if changed.is_err() {
                        // Cannot happen while `self` lives; wait out the real time then.
                        tokio::time::sleep(left).await;
                    }
                }
            }
        }
    }

    /// The simulator's time `after` from now (a delay too long for a date is never due).
    pub(crate) fn due_in(&self, after: Duration) -> DateTime<Utc> {
        TimeDelta::from_std(after)
            .ok()
            .and_then(|d| self.now().checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// A UTC stamp as MSP writes its times: Europe/Amsterdam (CET/CEST) wall time,
/// `2021-03-24T16:26:31`, no offset.
pub(crate) fn msp_time(utc: NaiveDateTime) -> String {
    utc.and_utc()
        .with_timezone(&chrono_tz::Europe::Amsterdam)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// MSP's wall time in Europe/Amsterdam (a filter such as `created_from`) as UTC: in the hour
/// that repeats when summer time ends, the first of the two; in the hour skipped when it
/// starts, the instant just after the gap.
pub(crate) fn from_msp_time(local: NaiveDateTime) -> DateTime<Utc> {
    use chrono::TimeZone;
    let zone = chrono_tz::Europe::Amsterdam;
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let later = local + TimeDelta::hours(1);
            zone.from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| later.and_utc())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_and_refuses_too_much() {
        let clock = Clock::new();
        let before = clock.now();
        clock.advance(3600).unwrap();
        let moved = clock.now() - before;
        assert!(moved >= TimeDelta::seconds(3600), "{moved}");
        assert!(moved < TimeDelta::seconds(3610), "{moved}");
        assert_eq!(clock.advanced_s(), 3600);
        assert!(clock.advance(u64::MAX).is_err());
        assert!(clock.advance(MAX_ADVANCE_S as u64).is_err(), "in all");
        assert_eq!(
            clock.advanced_s(),
            3600,
            "a refused advance changes nothing"
        );
    }

    #[tokio::test]
    async fn a_timer_fires_when_the_clock_passes_it() {
        let clock = std::sync::Arc::new(Clock::new());
        let due = clock.due_in(Duration::from_secs(600));
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(due).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        clock.advance(600).unwrap();
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("fires promptly after the advance")
            .unwrap();
    }
}
