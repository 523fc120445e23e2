//! How late the daemon's main loop runs (issue 18, "Prove it" 1: no main-loop stall over
//! 200 ms under a hostile device), shown in the status snapshot as `main_loop`.
//!
//! Two measures, both taken on the loop itself, neither adding a wake-up:
//!
//! - timer lateness: when the loop's own deadline (paced blocks, page streams, idle and
//!   Upgrade End timeouts) fires, how long after the deadline the loop got to it. Whatever
//!   held the thread meanwhile (a slow handler, another task on the runtime, a blocking call)
//!   shows here; during transfers the deadlines are milliseconds apart, so a stall cannot hide
//!   between them.
//! - turn work: from the end of one `select!` to the start of the next (catalog driving,
//!   flushing answers to the coordinator, events, persistence).
//!
//! A sample over [`STALL`] is also logged at debug level.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What counts as a stall.
pub const STALL: Duration = Duration::from_millis(200);

/// The figures since the daemon started (the status snapshot's `main_loop` object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopLagStatus {
    /// How often the loop's own deadline fired.
    pub timer_samples: u64,
    /// The latest the loop got to its deadline, microseconds.
    pub max_timer_late_us: u64,
    /// Deadlines the loop got to more than 200 ms late.
    pub timer_late_over_200ms: u64,
    /// The longest stretch of work between two waits, microseconds.
    pub max_turn_us: u64,
    /// Stretches of work longer than 200 ms.
    pub turns_over_200ms: u64,
}

/// Collects [`LoopLagStatus`]; time is always an argument.
#[derive(Debug, Default)]
pub struct LoopLag {
    status: LoopLagStatus,
    turn_started: Option<Instant>,
}

impl LoopLag {
    /// The loop's deadline `due` fired and the loop runs it at `now`.
    pub fn timer_fired(&mut self, due: Instant, now: Instant) {
        let late = now.saturating_duration_since(due);
        self.status.timer_samples += 1;
        self.status.max_timer_late_us = self.status.max_timer_late_us.max(micros(late));
        if late > STALL {
            self.status.timer_late_over_200ms += 1;
            tracing::debug!(
                late_ms = late.as_millis(),
                "main loop got to its deadline late"
            );
        }
    }

    /// The loop's `select!` returned at `now`.
    pub fn turn_started(&mut self, now: Instant) {
        self.turn_started = Some(now);
    }

    /// The loop is about to wait again at `now`.
    pub fn turn_ended(&mut self, now: Instant) {
        let Some(started) = self.turn_started.take() else {
            return;
        };
        let work = now.saturating_duration_since(started);
        self.status.max_turn_us = self.status.max_turn_us.max(micros(work));
        if work > STALL {
            self.status.turns_over_200ms += 1;
            tracing::debug!(work_ms = work.as_millis(), "main loop turn took long");
        }
    }

    /// The figures so far.
    pub fn status(&self) -> LoopLagStatus {
        self.status
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn lateness_and_turns_keep_their_maximum_and_count_stalls() {
        let t0 = origin();
        let ms = Duration::from_millis;
        let mut lag = LoopLag::default();
        lag.timer_fired(t0, t0 + ms(3));
        lag.timer_fired(t0, t0 + ms(250));
        lag.timer_fired(t0 + ms(10), t0); // early: counts as on time
        lag.turn_ended(t0); // no turn started: nothing
        lag.turn_started(t0);
        lag.turn_ended(t0 + ms(201));
        lag.turn_started(t0);
        lag.turn_ended(t0 + ms(5));
        let status = lag.status();
        assert_eq!(status.timer_samples, 3);
        assert_eq!(status.max_timer_late_us, 250_000);
        assert_eq!(status.timer_late_over_200ms, 1);
        assert_eq!(status.max_turn_us, 201_000);
        assert_eq!(status.turns_over_200ms, 1);
        let json = serde_json::to_value(status).unwrap();
        for key in [
            "timer_samples",
            "max_timer_late_us",
            "timer_late_over_200ms",
            "max_turn_us",
            "turns_over_200ms",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }
}
