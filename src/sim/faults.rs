//! What goes wrong in the simulated coordinator, and how often (probabilities per frame or
//! message, the unit of [`crate::ash::fault`], whose seeded generator drives it, so a failing
//! run can be replayed with the same seed).
//!
//! ```
//! use zigbee_otad::sim::faults::{Faults, SplitMix64};
//! let mut a = SplitMix64::new(7);
//! let mut b = SplitMix64::new(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert!(!Faults::default().any_frame_faults());
//! ```

use std::time::Duration;

pub use crate::ash::fault::SplitMix64;

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
