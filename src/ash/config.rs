//! The ASH link parameters ([`LinkConfig`]) and the values a real NCP and our host use (UG101
//! §7 "Configuration parameters"; the link itself is [`super::link`]).
//!
//! Two sets of values besides UG101's defaults ([UG101 §7 "Configuration parameters"]):
//! - [`LinkConfig::ncp`] is what a real NCP runs with: TX_K 5, T_RX_ACK 0.4–3.2 s, ACK_TIMEOUTS 4.
//!   The simulated NCP uses it.
//! - [`LinkConfig::host`] is our host: the same window of 5 (UG101's tuned TX_K; sequence
//!   numbers would allow 7, herdsman sends 3, bellows 1), and the adaptive timer with a floor of
//!   [`HOST_T_RX_ACK_MIN`] instead of 0.4 s, so the retransmit timeout follows the measured round
//!   trip (the formula settles at about 4× it) and a lost frame costs milliseconds, not 0.4 s.
//!   Because five doubled timeouts from such a floor pass in well under a second, the link is
//!   declared dead only after [`HOST_MIN_FAILURE_TIME`] without any acknowledgement as well.
//!
//! [`LinkConfig::default`] keeps the UG101 timer values with a window of 1 (what bellows runs),
//! for tests that compare against it.
//!
//! [UG101 §7 "Configuration parameters"]: https://docs.silabs.com/zigbee/9.0.0/uart-gateway-protocol-reference/07-configuration-parameters

use std::time::Duration;

use super::frame::NcpResetCode;
use super::link::LinkError;

/// Sequence numbers are modulo 8, so at most 7 frames can be in flight.
const MAX_WINDOW: u8 = 7;

/// The host's floor for the adaptive ACK timeout ([`LinkConfig::host`]): about two full-length
/// DATA frames at 115200 baud, so a real UART's transmit time never looks like a loss, while on a
/// fast link a lost frame is resent after tens of milliseconds rather than UG101's 0.4 s.
pub const HOST_T_RX_ACK_MIN: Duration = Duration::from_millis(20);
/// How long the host waits without any acknowledgement before it declares the NCP dead
/// ([`LinkConfig::host`]); about what UG101's values give (0.4 + 0.8 + 1.6 + 3.2 s).
pub const HOST_MIN_FAILURE_TIME: Duration = Duration::from_secs(6);

/// Link parameters. [`LinkConfig::default`] gives the UG101 / bellows values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// TX_K: DATA frames sent but not yet acknowledged, 1..=7. bellows keeps 1 because larger
    /// windows crashed some NCP firmware; zigbee-herdsman uses 3.
    pub window: u8,
    /// Initial ACK timeout (UG101 T_RX_ACK_INIT, 1.6 s).
    pub t_rx_ack_init: Duration,
    /// Lower bound of the adaptive ACK timeout (T_RX_ACK_MIN, 0.4 s).
    pub t_rx_ack_min: Duration,
    /// Upper bound of the adaptive ACK timeout (T_RX_ACK_MAX, 3.2 s).
    pub t_rx_ack_max: Duration,
    /// Consecutive ACK timeouts that fail the link (ACK_TIMEOUTS, 5 in bellows, 4 in an NCP).
    pub max_ack_timeouts: u32,
    /// ... and only once this long has passed since the last acknowledgement (or since the
    /// first unacknowledged frame went out). Zero: the count alone decides, as in UG101.
    pub min_failure_time: Duration,
    /// Host: how long to wait for RSTACK after RST (bellows RESET_TIMEOUT, 2.5 s).
    pub rst_timeout: Duration,
    /// Host: RST transmissions before giving up (3 in bellows).
    pub rst_attempts: u32,
    /// Host: CANCEL bytes written before RST to flush a partial frame in the NCP (32 in bellows
    /// 1.2.1, 1 in older bellows and zigbee-herdsman).
    pub rst_cancel_prefix: usize,
    /// Payloads [`Link::send`](super::Link::send) accepts beyond those in flight before it reports a full queue.
    pub send_queue_capacity: usize,
    /// NCP: the reset code its RSTACK reports.
    pub reset_code: NcpResetCode,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            window: 1,
            t_rx_ack_init: Duration::from_millis(1600),
            t_rx_ack_min: Duration::from_millis(400),
            t_rx_ack_max: Duration::from_millis(3200),
            max_ack_timeouts: 5,
            min_failure_time: Duration::ZERO,
            rst_timeout: Duration::from_millis(2500),
            rst_attempts: 3,
            rst_cancel_prefix: 32,
            send_queue_capacity: 32,
            reset_code: NcpResetCode::RESET_SOFTWARE,
        }
    }
}

impl LinkConfig {
    /// What a real NCP runs with (UG101 §7): TX_K 5, T_RX_ACK 1.6 s initially within
    /// 0.4–3.2 s, ACK_TIMEOUTS 4.
    pub fn ncp() -> Self {
        LinkConfig {
            window: 5,
            max_ack_timeouts: 4,
            ..LinkConfig::default()
        }
    }

    /// Our host: a window of 5 and a retransmit timeout that follows the measured round trip
    /// (floor [`HOST_T_RX_ACK_MIN`], initially 0.8 s as in herdsman), failing only after
    /// [`HOST_MIN_FAILURE_TIME`] without an acknowledgement. See the module docs.
    pub fn host() -> Self {
        LinkConfig {
            window: 5,
            t_rx_ack_init: Duration::from_millis(800),
            t_rx_ack_min: HOST_T_RX_ACK_MIN,
            min_failure_time: HOST_MIN_FAILURE_TIME,
            ..LinkConfig::default()
        }
    }

    pub(super) fn validate(&self) -> Result<(), LinkError> {
        let invalid = |field, reason| Err(LinkError::InvalidConfig { field, reason });
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return invalid("window", "must be 1..=7");
        }
        if self.t_rx_ack_min > self.t_rx_ack_max {
            return invalid("t_rx_ack_min", "must not exceed t_rx_ack_max");
        }
        if self.t_rx_ack_min.is_zero() {
            return invalid("t_rx_ack_min", "must be positive");
        }
        if self.max_ack_timeouts == 0 {
            return invalid("max_ack_timeouts", "must be at least 1");
        }
        if self.rst_attempts == 0 {
            return invalid("rst_attempts", "must be at least 1");
        }
        if self.send_queue_capacity == 0 {
            return invalid("send_queue_capacity", "must be at least 1");
        }
        Ok(())
    }
}
