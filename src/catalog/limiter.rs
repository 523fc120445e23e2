//! The per-source rate and quota limiter: a sans-IO state machine that decides when the next
//! call to a catalog provider may start, following CATALOGS.md ("The LEDVANCE API as
//! documented by LEDVANCE": per-minute call limits, monthly call and byte quotas, HTTP 429 with
//! `Retry-After`).
//!
//! * A minimum interval between calls (LEDVANCE: 6 s, i.e. the stricter "10 calls per 60 s").
//! * Monthly call and byte budgets per UTC calendar month (LEDVANCE: the stricter 100 MB, and
//!   100,000 calls); a call is only started with a byte allowance that fits the budget, and the
//!   IO edge stops reading at that allowance, so the budget is never exceeded.
//! * `Retry-After` and exponential backoff after 429, 5xx and transport failures.
//! * A [`Ledger`] that serialises to JSON, so a restart does not reset the month.
//!
//! Time is always an argument (`now: SystemTime`); the limiter never reads a clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest ledger document accepted when loading.
const MAX_LEDGER_BYTES: usize = 64 * 1024;

/// The limits for one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Minimum time between the starts of two calls.
    pub min_interval: Duration,
    /// Calls allowed per UTC calendar month.
    pub monthly_calls: u64,
    /// Response bytes allowed per UTC calendar month.
    pub monthly_bytes: u64,
    /// Wait after the first failure (429, 5xx, transport); doubled for each further one.
    pub backoff_initial: Duration,
    /// Longest backoff, and the cap applied to a server's `Retry-After`.
    pub backoff_max: Duration,
}

impl LimiterConfig {
    /// The LEDVANCE API, honouring the stricter of its two documented limits: "10 calls per 60
    /// seconds or quota 100 MB per month" (the 429 text) rather than "30 calls every minute, …
    /// 1 GB of bandwidth per month"; 100,000 calls per month. Failures back off from 60 s (what
    /// the zigbee-OTA tooling waits after a 429) up to a day.
    pub fn ledvance() -> Self {
        LimiterConfig {
            min_interval: Duration::from_secs(6),
            monthly_calls: 100_000,
            monthly_bytes: 100_000_000,
            backoff_initial: Duration::from_secs(60),
            backoff_max: Duration::from_secs(24 * 3600),
        }
    }

    /// A vendor's own feed and image host (IKEA, Inovelli, Third Reality, Sonoff): none of them
    /// documents a limit, and each is a small company server rather than a CDN, so be gentler
    /// than with a static host: at least 10 s between calls, at most 3,000 calls and 1 GB a month
    /// (a daily catalog refresh costs 31 calls and well under 1 MB; the rest is images, each
    /// downloaded once), and the same backoff as LEDVANCE.
    pub fn vendor_feed() -> Self {
        LimiterConfig {
            min_interval: Duration::from_secs(10),
            monthly_calls: 3_000,
            monthly_bytes: 1_000_000_000,
            backoff_initial: Duration::from_secs(60),
            backoff_max: Duration::from_secs(24 * 3600),
        }
    }

    /// A static file host (the zigbee-OTA index and its images): no documented quota; one call
    /// per second and the same backoff as LEDVANCE.
    pub fn static_host() -> Self {
        LimiterConfig {
            min_interval: Duration::from_secs(1),
            monthly_calls: u64::MAX,
            monthly_bytes: u64::MAX,
            backoff_initial: Duration::from_secs(60),
            backoff_max: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a call may not start yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitReason {
    /// Too soon after the previous call.
    MinInterval,
    /// The month's call budget is spent.
    MonthlyCalls,
    /// The month's byte budget is spent.
    MonthlyBytes,
    /// The server asked to wait (`Retry-After`) or the limiter is backing off after failures.
    Backoff,
}

/// The earliest time a call may start, and why not before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited ({reason:?}) until {} s after the Unix epoch", unix_seconds(*at))]
pub struct RetryAt {
    /// When to try again.
    pub at: SystemTime,
    /// What is holding the call back.
    pub reason: LimitReason,
}

/// Permission to make one call, with the most response bytes it may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPermit {
    /// Stop reading the response after this many bytes.
    pub byte_allowance: u64,
}

/// How a call ended, for the limiter's backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The server answered and did not complain about load (2xx, 3xx, 4xx other than 429).
    Answered,
    /// HTTP 429, with the server's `Retry-After` when it sent one.
    RateLimited {
        /// The server's `Retry-After`, relative to the response.
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx, with `Retry-After` when sent (503 often carries one).
    ServerError {
        /// The server's `Retry-After`, relative to the response.
        retry_after: Option<Duration>,
    },
    /// No usable answer: connection failure, timeout, truncated body.
    TransportError,
}

impl CallOutcome {
    /// Classifies an HTTP status.
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            429 => CallOutcome::RateLimited { retry_after },
            500..=599 => CallOutcome::ServerError { retry_after },
            _ => CallOutcome::Answered,
        }
    }
}

/// A UTC calendar month.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Month {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u8,
}

impl Month {
    /// The UTC month containing `time` (times before 1970 count as January 1970).
    pub fn containing(time: SystemTime) -> Self {
        let days = i64::try_from(unix_seconds(time) / 86_400).unwrap_or(i64::MAX);
        let (year, month, _) = civil_from_days(days);
        Month { year, month }
    }

    /// Midnight UTC on the first day of the next month.
    pub fn next_start(self) -> SystemTime {
        let (year, month) = if self.month >= 12 {
            (self.year.saturating_add(1), 1)
        } else {
            (self.year, self.month.saturating_add(1))
        };
        let days = days_from_civil(year, month, 1);
        let seconds = u64::try_from(days).unwrap_or(0).saturating_mul(86_400);
        from_unix_seconds(seconds)
    }
}

/// What the limiter remembers; persisted by the IO layer (in the state directory) so a restart
/// keeps the month's usage, the last call and any backoff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// The month `calls` and `bytes` belong to.
    pub month: Month,
    /// Calls started in `month`.
    pub calls: u64,
    /// Response bytes received in `month`.
    pub bytes: u64,
    /// When the last call started (milliseconds since the Unix epoch).
    pub last_call_unix_ms: Option<u64>,
    /// No call before this (milliseconds since the Unix epoch): `Retry-After` or backoff.
    pub blocked_until_unix_ms: Option<u64>,
    /// Failures since the last answered call.
    pub consecutive_failures: u32,
}

/// A ledger could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Larger than any ledger this code writes.
    #[error("ledger is {length} bytes, more than the {max}-byte cap")]
    TooLarge {
        /// Bytes read.
        length: usize,
        /// The cap.
        max: usize,
    },
    /// Not a ledger document.
    #[error("ledger is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

impl Ledger {
    /// An empty ledger for the month containing `now`.
    pub fn new(now: SystemTime) -> Self {
        Ledger {
            month: Month::containing(now),
            calls: 0,
            bytes: 0,
            last_call_unix_ms: None,
            blocked_until_unix_ms: None,
            consecutive_failures: 0,
        }
    }

    /// The ledger as JSON.
    pub fn to_json(&self) -> String {
        // A struct of integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a ledger written by [`Ledger::to_json`].
    pub fn from_json(input: &[u8]) -> Result<Self, LedgerError> {
        if input.len() > MAX_LEDGER_BYTES {
            return Err(LedgerError::TooLarge {
                length: input.len(),
                max: MAX_LEDGER_BYTES,
            });
        }
        Ok(serde_json::from_slice(input)?)
    }
}

/// The limiter for one source: its configuration and its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limiter {
    config: LimiterConfig,
    ledger: Ledger,
}

impl Limiter {
    /// A limiter with an empty ledger.
    pub fn new(config: LimiterConfig, now: SystemTime) -> Self {
        Self::with_ledger(config, Ledger::new(now))
    }

    /// A limiter resuming from a persisted ledger.
    pub fn with_ledger(config: LimiterConfig, ledger: Ledger) -> Self {
        Limiter { config, ledger }
    }

    /// The configuration.
    pub fn config(&self) -> &LimiterConfig {
        &self.config
    }

    /// The ledger, to persist after each call.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Calls and bytes used in the month containing `now`.
    pub fn usage(&self, now: SystemTime) -> (u64, u64) {
        if self.ledger.month == Month::containing(now) {
            (self.ledger.calls, self.ledger.bytes)
        } else {
            (0, 0)
        }
    }

    /// May a call start at `now`? `Err` says when it may.
    pub fn check(&self, now: SystemTime) -> Result<(), RetryAt> {
        let (calls, bytes) = self.usage(now);
        let month_end = Month::containing(now).next_start();
        if calls >= self.config.monthly_calls {
            return Err(RetryAt {
                at: month_end,
                reason: LimitReason::MonthlyCalls,
            });
        }
        if bytes >= self.config.monthly_bytes {
            return Err(RetryAt {
                at: month_end,
                reason: LimitReason::MonthlyBytes,
            });
        }
        if let Some(blocked) = self.ledger.blocked_until_unix_ms {
            // A clock that jumped backwards never blocks longer than the longest backoff.
            let until = from_unix_millis(blocked).min(now + self.config.backoff_max);
            if now < until {
                return Err(RetryAt {
                    at: until,
                    reason: LimitReason::Backoff,
                });
            }
        }
        if let Some(last) = self.ledger.last_call_unix_ms {
            let next = (from_unix_millis(last) + self.config.min_interval)
                .min(now + self.config.min_interval);
            if now < next {
                return Err(RetryAt {
                    at: next,
                    reason: LimitReason::MinInterval,
                });
            }
        }
        Ok(())
    }

    /// Would a call needing at least `needed_bytes` fit the month's byte budget? A download
    /// that could only be cut short is better not started.
    pub fn check_budget(&self, now: SystemTime, needed_bytes: u64) -> Result<(), RetryAt> {
        let (_, bytes) = self.usage(now);
        if bytes.saturating_add(needed_bytes) > self.config.monthly_bytes {
            return Err(RetryAt {
                at: Month::containing(now).next_start(),
                reason: LimitReason::MonthlyBytes,
            });
        }
        Ok(())
    }

    /// Starts a call that wants up to `wanted_bytes` of response: counts the call and returns
    /// the byte allowance (`wanted_bytes` capped at what the month has left). The caller must
    /// not read more than the allowance, then reports with [`Limiter::record_bytes`] and
    /// [`Limiter::record_outcome`].
    pub fn begin_call(
        &mut self,
        now: SystemTime,
        wanted_bytes: u64,
    ) -> Result<CallPermit, RetryAt> {
        self.check(now)?;
        self.roll_month(now);
        self.ledger.calls = self.ledger.calls.saturating_add(1);
        self.ledger.last_call_unix_ms = Some(unix_millis(now));
        let left = self.config.monthly_bytes.saturating_sub(self.ledger.bytes);
        Ok(CallPermit {
            byte_allowance: wanted_bytes.min(left),
        })
    }

    /// Counts response bytes received (call as they arrive, or once at the end).
    pub fn record_bytes(&mut self, now: SystemTime, bytes: u64) {
        self.roll_month(now);
        self.ledger.bytes = self.ledger.bytes.saturating_add(bytes);
    }

    /// Records how a call ended: failures back off exponentially, and a `Retry-After` (capped at
    /// the longest backoff) is honoured when it asks for longer.
    pub fn record_outcome(&mut self, now: SystemTime, outcome: CallOutcome) {
        let retry_after = match outcome {
            CallOutcome::Answered => {
                self.ledger.consecutive_failures = 0;
                self.ledger.blocked_until_unix_ms = None;
                return;
            }
            CallOutcome::RateLimited { retry_after } | CallOutcome::ServerError { retry_after } => {
                retry_after
            }
            CallOutcome::TransportError => None,
        };
        self.ledger.consecutive_failures = self.ledger.consecutive_failures.saturating_add(1);
        let doublings = self.ledger.consecutive_failures.saturating_sub(1).min(32);
        let backoff = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.config.backoff_max);
        let wait = retry_after
            .map_or(backoff, |asked| asked.max(backoff))
            .min(self.config.backoff_max);
        // Whole milliseconds, rounded up so a wait is never cut short.
        let until = (now + wait).duration_since(UNIX_EPOCH).map_or(0, |since| {
            let millis = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
            millis.saturating_add(u64::from(since.subsec_nanos() % 1_000_000 > 0))
        });
        self.ledger.blocked_until_unix_ms = Some(until);
    }

    /// When the next call may start (`now` when it may start already): the deadline for the IO
    /// layer's timer.
    pub fn poll_timeout(&self, now: SystemTime) -> SystemTime {
        match self.check(now) {
            Ok(()) => now,
            Err(retry) => retry.at,
        }
    }

    fn roll_month(&mut self, now: SystemTime) {
        let month = Month::containing(now);
        if month != self.ledger.month {
            self.ledger.month = month;
            self.ledger.calls = 0;
            self.ledger.bytes = 0;
        }
    }
}

/// Whole seconds since the Unix epoch (0 before it).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}

fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's civil-from-days).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's days-from-civil).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: u64) -> SystemTime {
        from_unix_seconds(seconds)
    }

    /// 2026-11-26T00:00:00Z.
    const NOV_26_2026: u64 = 1_795_651_200;

    #[test]
    fn calendar_months() {
        assert_eq!(
            Month::containing(at(NOV_26_2026)),
            Month {
                year: 2026,
                month: 11
            }
        );
        // 2026-12-01T00:00:00Z
        let december = Month::containing(at(NOV_26_2026)).next_start();
        assert_eq!(unix_seconds(december), NOV_26_2026 + 5 * 86_400);
        assert_eq!(
            Month::containing(december),
            Month {
                year: 2026,
                month: 12
            }
        );
        // 2027-01-01T00:00:00Z = 1798761600
        assert_eq!(
            unix_seconds(Month::containing(december).next_start()),
            1_798_761_600
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn min_interval_between_calls() {
        let mut limiter = Limiter::new(LimiterConfig::ledvance(), at(NOV_26_2026));
        limiter.begin_call(at(NOV_26_2026), 10).unwrap();
        assert_eq!(
            limiter.check(at(NOV_26_2026 + 5)),
            Err(RetryAt {
                at: at(NOV_26_2026 + 6),
                reason: LimitReason::MinInterval
            })
        );
        assert!(limiter.check(at(NOV_26_2026 + 6)).is_ok());
        assert_eq!(
            limiter.poll_timeout(at(NOV_26_2026 + 1)),
            at(NOV_26_2026 + 6)
        );
    }

    #[test]
    fn retry_after_and_backoff() {
        let config = LimiterConfig::ledvance();
        let mut limiter = Limiter::new(config, at(NOV_26_2026));
        let t0 = NOV_26_2026;
        limiter.begin_call(at(t0), 10).unwrap();
        limiter.record_outcome(
            at(t0),
            CallOutcome::from_status(429, Some(Duration::from_secs(600))),
        );
        assert_eq!(
            limiter.check(at(t0 + 599)).unwrap_err().reason,
            LimitReason::Backoff
        );
        assert!(limiter.check(at(t0 + 600)).is_ok());
        // Shorter Retry-After than the backoff: the backoff wins (60 s, then 120 s).
        limiter.begin_call(at(t0 + 600), 10).unwrap();
        limiter.record_outcome(
            at(t0 + 600),
            CallOutcome::from_status(503, Some(Duration::from_secs(1))),
        );
        assert_eq!(limiter.check(at(t0 + 600)).unwrap_err().at, at(t0 + 720));
        // Success clears it.
        limiter.begin_call(at(t0 + 720), 10).unwrap();
        limiter.record_outcome(at(t0 + 720), CallOutcome::Answered);
        assert!(limiter.check(at(t0 + 726)).is_ok());
        // Backoff never exceeds the cap, however many failures.
        for _ in 0..40 {
            limiter.record_outcome(at(t0 + 726), CallOutcome::TransportError);
        }
        assert_eq!(
            limiter.check(at(t0 + 726)).unwrap_err().at,
            at(t0 + 726) + config.backoff_max
        );
    }

    #[test]
    fn byte_allowance_and_month_rollover() {
        let config = LimiterConfig {
            monthly_bytes: 1000,
            ..LimiterConfig::ledvance()
        };
        let mut limiter = Limiter::new(config, at(NOV_26_2026));
        let permit = limiter.begin_call(at(NOV_26_2026), 700).unwrap();
        assert_eq!(permit.byte_allowance, 700);
        limiter.record_bytes(at(NOV_26_2026), 700);
        let permit = limiter.begin_call(at(NOV_26_2026 + 10), 700).unwrap();
        assert_eq!(permit.byte_allowance, 300);
        limiter.record_bytes(at(NOV_26_2026 + 10), 300);
        let refused = limiter.check(at(NOV_26_2026 + 20)).unwrap_err();
        assert_eq!(refused.reason, LimitReason::MonthlyBytes);
        assert_eq!(refused.at, at(NOV_26_2026 + 5 * 86_400));
        assert!(limiter.check(refused.at).is_ok());
        assert_eq!(limiter.usage(refused.at), (0, 0));
        assert!(limiter.check_budget(refused.at, 1000).is_ok());
        assert_eq!(
            limiter.check_budget(refused.at, 1001).unwrap_err().reason,
            LimitReason::MonthlyBytes
        );
    }

    #[test]
    fn ledger_round_trips_and_rejects_garbage() {
        let mut limiter = Limiter::new(LimiterConfig::ledvance(), at(NOV_26_2026));
        limiter.begin_call(at(NOV_26_2026), 10).unwrap();
        limiter.record_bytes(at(NOV_26_2026), 10);
        let json = limiter.ledger().to_json();
        assert_eq!(
            Ledger::from_json(json.as_bytes()).unwrap(),
            *limiter.ledger()
        );
        assert!(Ledger::from_json(b"{\"calls\":1}").is_err());
        assert!(Ledger::from_json(&vec![b' '; MAX_LEDGER_BYTES + 1]).is_err());
    }

    #[test]
    fn clock_jumping_back_does_not_block_for_long() {
        let config = LimiterConfig::ledvance();
        let mut limiter = Limiter::new(config, at(NOV_26_2026));
        limiter.begin_call(at(NOV_26_2026 + 1_000_000), 10).unwrap();
        limiter.record_outcome(at(NOV_26_2026 + 1_000_000), CallOutcome::TransportError);
        let retry = limiter.check(at(NOV_26_2026)).unwrap_err();
        assert!(retry.at <= at(NOV_26_2026) + config.backoff_max);
    }

    proptest! {
        #[test]
        fn month_start_contains_itself(seconds in 0u64..10_000_000_000) {
            let month = Month::containing(at(seconds));
            let next = month.next_start();
            prop_assert!(next > at(seconds));
            prop_assert!(Month::containing(next) > month);
            prop_assert!(unix_seconds(next) - seconds <= 31 * 86_400);
        }
    }
}
