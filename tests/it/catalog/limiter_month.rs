//! The limiter over a simulated month of attempts: budgets, spacing and Retry-After.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zigbee_otad::catalog::limiter::{
    CallOutcome, Ledger, LimitReason, Limiter, LimiterConfig, Month,
};

/// xorshift64*: a deterministic stream for the simulation.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default, Debug)]
struct MonthTotals {
    calls: u64,
    bytes: u64,
    refused: u64,
}

/// Drives a limiter on a virtual clock through ~six weeks of refresh attempts against a
/// simulated server (random sizes, 429 + Retry-After, 500s, bodies cut at the allowance),
/// restarting from the JSON ledger now and then. Returns the per-month totals.
fn simulate(config: LimiterConfig, seed: u64) -> BTreeMap<Month, MonthTotals> {
    let start = UNIX_EPOCH + Duration::from_secs(1_795_651_200); // 2026-11-26
    let end = start + Duration::from_secs(40 * 86_400);
    let mut rng = Rng(seed);
    let mut now = start;
    let mut limiter = Limiter::new(config, now);
    let mut totals: BTreeMap<Month, MonthTotals> = BTreeMap::new();
    let mut call_starts: Vec<SystemTime> = Vec::new();
    let mut not_before: Option<SystemTime> = None;
    let mut attempts = 0u64;
    while now < end {
        attempts += 1;
        let month = totals.entry(Month::containing(now)).or_default();
        let body_len = 100_000 + rng.below(300_000);
        match limiter.begin_call(now, body_len) {
            Err(retry) => {
                assert!(retry.at > now, "a refusal must point to the future");
                month.refused += 1;
            }
            Ok(permit) => {
                if let Some(t) = not_before {
                    assert!(now >= t, "call at {now:?} before Retry-After {t:?}");
                }
                call_starts.push(now);
                month.calls += 1;
                let roll = rng.below(100);
                let outcome = if roll < 5 {
                    let retry_after = Duration::from_secs(1 + rng.below(900));
                    not_before = Some(now + retry_after);
                    limiter.record_bytes(now, 200.min(permit.byte_allowance));
                    month.bytes += 200.min(permit.byte_allowance);
                    CallOutcome::from_status(429, Some(retry_after))
                } else if roll < 8 {
                    CallOutcome::from_status(500, None)
                } else {
                    // The edge stops reading at the allowance; a cut body is a failure.
                    let read = body_len.min(permit.byte_allowance);
                    limiter.record_bytes(now, read);
                    month.bytes += read;
                    if read < body_len {
                        CallOutcome::TransportError
                    } else {
                        CallOutcome::Answered
                    }
                };
                limiter.record_outcome(now, outcome);
            }
        }
        if attempts.is_multiple_of(500) {
            // A daemon restart: the ledger goes through its JSON form.
            let ledger = Ledger::from_json(limiter.ledger().to_json().as_bytes()).unwrap();
            limiter = Limiter::with_ledger(config, ledger);
        }
        now += Duration::from_millis(500 + rng.below(900_000));
    }
    assert!(attempts > 2000, "only {attempts} attempts");

    // Spacing: consecutive calls at least min_interval apart, so never more than
    // 60 s / min_interval calls in any 60 s window.
    for pair in call_starts.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(gap >= config.min_interval, "calls only {gap:?} apart");
    }
    for month in totals.values() {
        assert!(month.calls <= config.monthly_calls, "{month:?}");
        assert!(month.bytes <= config.monthly_bytes, "{month:?}");
    }
    totals
}

#[test]
fn a_month_of_attempts_never_exceeds_the_ledvance_budget() {
    let config = LimiterConfig::ledvance();
    let totals = simulate(config, 0x5EED_0001);
    // The byte budget was the binding limit, and it was used almost fully: the limiter is
    // strict, not merely idle.
    let december = &totals[&Month {
        year: 2026,
        month: 12,
    }];
    assert!(december.refused > 0, "{december:?}");
    assert!(
        december.bytes > config.monthly_bytes * 9 / 10,
        "{december:?}"
    );
}

#[test]
fn a_month_of_attempts_never_exceeds_a_call_budget() {
    let config = LimiterConfig {
        monthly_calls: 300,
        monthly_bytes: u64::MAX,
        ..LimiterConfig::ledvance()
    };
    let totals = simulate(config, 0x5EED_0002);
    let december = &totals[&Month {
        year: 2026,
        month: 12,
    }];
    assert_eq!(december.calls, 300, "{december:?}");
    assert!(december.refused > 0);
}

#[test]
fn retry_after_is_honoured_to_the_second() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_795_651_200);
    let mut limiter = Limiter::new(LimiterConfig::ledvance(), t0);
    limiter.begin_call(t0, 1000).unwrap();
    limiter.record_outcome(
        t0,
        CallOutcome::from_status(429, Some(Duration::from_secs(3600))),
    );
    let refused = limiter
        .begin_call(t0 + Duration::from_secs(3599), 1000)
        .unwrap_err();
    assert_eq!(refused.reason, LimitReason::Backoff);
    assert_eq!(refused.at, t0 + Duration::from_secs(3600));
    assert!(
        limiter
            .begin_call(t0 + Duration::from_secs(3600), 1000)
            .is_ok()
    );
}
