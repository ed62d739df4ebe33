//! Token buckets, one per key: `rate` tokens a second, holding at most twice that (a burst of
//! 2×). The merchant API keys them by API key ([`crate::api::auth`]); the endpoints that need no
//! key (the shopper's browser paths and MSP's notifications) by client address
//! ([`crate::browser::keyless`]).
//!
//! Time is passed in by the caller (seconds on any clock that does not go back), so that tests
//! move a clock instead of sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Keys remembered at most. A key whose bucket has filled up again carries no information and
/// is dropped first; beyond this many *active* keys a new key is let through untracked rather
/// than let the table grow without bound.
const MAX_KEYS: usize = 100_000;

pub struct RateLimiter<K> {
    rate: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at_s: f64,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate_per_s` tokens a second per key; `0` disables the limit.
    pub fn new(rate_per_s: u32) -> Self {
        Self {
            rate: f64::from(rate_per_s),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self) -> f64 {
        self.rate * 2.0
    }

    /// `Ok` to go ahead, or `Err(whole seconds to wait, at least 1)`.
    pub fn take(&self, key: &K, now_s: f64) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-update: the numbers are
        // still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            let (rate, burst) = (self.rate, self.burst());
            buckets.retain(|_, b| b.tokens + (now_s - b.at_s).max(0.0) * rate < burst);
            if buckets.len() >= MAX_KEYS {
                tracing::warn!(
                    keys = buckets.len(),
                    "rate limiter table full; letting a new client through untracked"
                );
                return Ok(());
            }
        }
        let burst = self.burst();
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at_s: now_s,
        });
        let elapsed = (now_s - bucket.at_s).max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(burst);
        bucket.at_s = bucket.at_s.max(now_s);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / self.rate).ceil();
            // `wait` is at most 1 / rate seconds, a small positive number.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Err((wait as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_twice_the_rate_then_one_token_per_interval() {
        let limiter = RateLimiter::new(2);
        for _ in 0..4 {
            assert!(limiter.take(&"a", 10.0).is_ok());
        }
        assert_eq!(limiter.take(&"a", 10.0), Err(1));
        // Another key has its own bucket.
        assert!(limiter.take(&"b", 10.0).is_ok());
        // Half a second later one token is back.
        assert!(limiter.take(&"a", 10.5).is_ok());
        assert_eq!(limiter.take(&"a", 10.5), Err(1));
        // A clock that goes back gives nothing.
        assert_eq!(limiter.take(&"a", 9.0), Err(1));
    }

    #[test]
    fn zero_disables_the_limit() {
        let limiter = RateLimiter::new(0);
        for _ in 0..10_000 {
            assert!(limiter.take(&1u8, 0.0).is_ok());
        }
    }
}
