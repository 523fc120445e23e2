//! Token buckets for hostile traffic (issue 18, "Pacing" and "Logs"): how many answers go to
//! addresses the coordinator cannot name, and how many log lines one device may cause. Sans-IO:
//! `now` comes in; nothing here reads a clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use zigbee_otad::server::rate::TokenBucket;
//!
//! # #[allow(clippy::disallowed_methods)]
//! let t = Instant::now();
//! let mut bucket = TokenBucket::new(2, Duration::from_secs(1));
//! assert!(bucket.try_take(t) && bucket.try_take(t));
//! assert!(!bucket.try_take(t), "the burst is spent");
//! assert!(bucket.try_take(t + Duration::from_secs(1)), "one token a second comes back");
//! ```

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A burst of `capacity` events, refilled at one token per `every`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: u32,
    every: Duration,
    tokens: u32,
    /// When the last token was added (or the bucket was first used).
    refilled_at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens, one more every `every`.
    pub fn new(capacity: u32, every: Duration) -> Self {
        TokenBucket {
            capacity,
            every,
            tokens: capacity,
            refilled_at: None,
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn refill(&mut self, now: Instant) {
        let Some(at) = self.refilled_at else {
            self.refilled_at = Some(now);
            return;
        };
        if self.every.is_zero() {
            self.tokens = self.capacity;
            self.refilled_at = Some(now);
            return;
        }
        let elapsed = now.saturating_duration_since(at);
        let new = elapsed.as_nanos() / self.every.as_nanos();
        if new == 0 {
            return;
        }
        let new = u32::try_from(new).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(new).min(self.capacity);
        self.refilled_at = Some(if self.tokens == self.capacity {
            now
        } else {
            at + self.every * new
        });
    }
}

/// One [`TokenBucket`] per key, at most `max_keys` of them (the one used longest ago is
/// dropped first), plus a count of what was refused since the key last got through.
#[derive(Debug, Clone)]
pub struct KeyedBuckets<K> {
    template: TokenBucket,
    max_keys: usize,
    buckets: HashMap<K, (TokenBucket, Instant, u64)>,
}

/// What [`KeyedBuckets::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; `suppressed` earlier events of this key were refused since the last allowed one.
    Allowed {
        /// Refused since the last allowed event.
        suppressed: u64,
    },
    /// Refused (counted).
    Refused,
}

impl<K: Eq + Hash + Clone> KeyedBuckets<K> {
    /// Buckets like `template` for at most `max_keys` keys.
    pub fn new(template: TokenBucket, max_keys: usize) -> Self {
        KeyedBuckets {
            template,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token from `key`'s bucket.
    pub fn check(&mut self, key: &K, now: Instant) -> Verdict {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, (_, used, _))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.buckets.remove(&oldest);
            }
        }
        let entry = self
            .buckets
            .entry(key.clone())
            .or_insert_with(|| (self.template.clone(), now, 0));
        entry.1 = now;
        if entry.0.try_take(now) {
            let suppressed = std::mem::take(&mut entry.2);
            Verdict::Allowed { suppressed }
        } else {
            entry.2 = entry.2.saturating_add(1);
            Verdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)]
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn refills_one_token_per_period_up_to_the_capacity() {
        let t = t0();
        let mut bucket = TokenBucket::new(3, Duration::from_millis(100));
        assert_eq!((0..10).filter(|_| bucket.try_take(t)).count(), 3);
        let later = t + Duration::from_millis(250);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 2);
        // The half period left over still counts.
        assert!(bucket.try_take(later + Duration::from_millis(50)));
        let much_later = t + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(much_later)).count(), 3);
    }

    #[test]
    fn keys_are_limited_apart_and_counted_and_bounded() {
        let t = t0();
        let mut buckets = KeyedBuckets::new(TokenBucket::new(1, Duration::from_secs(1)), 2);
        assert_eq!(buckets.check(&1, t), Verdict::Allowed { suppressed: 0 });
        assert_eq!(buckets.check(&1, t), Verdict::Refused);
        assert_eq!(buckets.check(&1, t), Verdict::Refused);
        assert_eq!(buckets.check(&2, t), Verdict::Allowed { suppressed: 0 });
        let later = t + Duration::from_secs(1);
        assert_eq!(buckets.check(&1, later), Verdict::Allowed { suppressed: 2 });
        // A third key pushes out the one used longest ago (2), which starts full again.
        assert_eq!(buckets.check(&3, later), Verdict::Allowed { suppressed: 0 });
        assert_eq!(buckets.buckets.len(), 2);
        assert_eq!(buckets.check(&2, later), Verdict::Allowed { suppressed: 0 });
    }
}
