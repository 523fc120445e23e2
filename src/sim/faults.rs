//! Fault injection for the simulated NCP, and the small seeded generator that drives it (so a
//! failing run can be replayed with the same seed).
//!
//! ```
//! use zigbee_otad::sim::faults::{Faults, SplitMix64};
//! let mut a = SplitMix64::new(7);
//! let mut b = SplitMix64::new(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert!(!Faults::default().any_frame_faults());
//! ```

use std::time::Duration;

/// What goes wrong, and how often. Probabilities are per ASH frame or per message, 0.0..=1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Seed of the fault generator.
    pub seed: u64,
    /// ASH frames from the NCP to the host that vanish.
    pub drop_to_host: f64,
    /// ASH frames from the host to the NCP that vanish.
    pub drop_from_host: f64,
    /// ASH frames from the NCP to the host with one byte damaged.
    pub corrupt_to_host: f64,
    /// ASH frames from the host to the NCP with one byte damaged.
    pub corrupt_from_host: f64,
    /// Unicasts that never reach the device and end in DELIVERY_FAILED.
    pub delivery_failure: f64,
    /// Delivery reports (`messageSentHandler`) that never come.
    pub lost_delivery_report: f64,
    /// Extra delay before each delivery report.
    pub delivery_report_delay: Duration,
    /// Unicasts the NCP holds at once; more are refused with MAX_MESSAGE_LIMIT_REACHED.
    pub transmit_queue: usize,
    /// The NCP resets by itself (unsolicited RSTACK) once, after handing this many device
    /// messages to the host, at the first moment when none is still unacknowledged.
    pub reset_after_messages: Option<u64>,
    /// The NCP resets by itself (unsolicited RSTACK) whenever this much time has passed since
    /// its last reset (the host's RST, an injected reset or a power-on), at the first moment
    /// after that when none of its messages is still unacknowledged.
    pub reset_every: Option<Duration>,
    /// The injected reset's RSTACK is lost, so the host must notice the reset by itself.
    pub silent_reset: bool,
}

impl Default for Faults {
    /// No faults; a transmit queue of 16 unicasts.
    fn default() -> Self {
        Faults {
            seed: 0x5EED,
            drop_to_host: 0.0,
            drop_from_host: 0.0,
            corrupt_to_host: 0.0,
            corrupt_from_host: 0.0,
            delivery_failure: 0.0,
            lost_delivery_report: 0.0,
            delivery_report_delay: Duration::ZERO,
            transmit_queue: 16,
            reset_after_messages: None,
            reset_every: None,
            silent_reset: false,
        }
    }
}

impl Faults {
    /// True when ASH frames may be lost or damaged in either direction.
    pub fn any_frame_faults(&self) -> bool {
        self.drop_to_host > 0.0
            || self.drop_from_host > 0.0
            || self.corrupt_to_host > 0.0
            || self.corrupt_from_host > 0.0
    }
}

/// SplitMix64: tiny, fast and good enough to decide which frame to drop.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits as a fraction in [0, 1).
        let fraction = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        fraction < p
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % u64::try_from(bound).unwrap_or(u64::MAX)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chance_tracks_the_probability() {
        let mut rng = SplitMix64::new(1);
        let hits = (0..100_000).filter(|_| rng.chance(0.05)).count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(2);
        assert!((0..1000).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
    }
}
