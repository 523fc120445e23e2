//! The ASH link state machine (UG101 "ASH Protocol": reset, sequencing, acknowledgement,
//! retransmission), sans-IO, for either end of the serial line.
//!
//! [`Role::Host`] is the gateway: [`Link::reset`] sends RST (preceded by CANCEL bytes, as bellows
//! 1.2.1 does) and waits for RSTACK. [`Role::Ncp`] is the coordinator side, used by the simulated
//! NCP: it answers RST with RSTACK carrying [`LinkConfig::reset_code`], and can reset or fail on
//! its own ([`Link::reset`], [`Link::send_error`]).
//!
//! Once connected both roles behave alike: DATA frames carry frmNum/ackNum modulo 8, up to
//! [`LinkConfig::window`] frames are outstanding, every DATA frame received is acknowledged, a
//! retransmitted duplicate is ACKed but not delivered again, and an
//! out-of-sequence or corrupt DATA frame sends one NAK and enters the reject condition, which lasts
//! until a good in-sequence frame arrives. A NAK or an ACK timeout resends every outstanding frame
//! (go-back-N) with reTx set. The ACK timeout adapts as UG101 and bellows do: `t = 7/8·t + 1/2·measured`
//! on each acknowledgement (measured only on frames sent once), doubled on each timeout, clamped
//! to `[t_rx_ack_min, t_rx_ack_max]`; `max_ack_timeouts` consecutive timeouts fail the link
//! (once [`LinkConfig::min_failure_time`] has passed without an acknowledgement).
//!
//! The link parameters ([`LinkConfig`]: the NCP's and our host's values) are in
//! [`config`](super::config).
//!
//! The caller owns all I/O and time (quinn style): feed received bytes to
//! [`Link::handle_input`], call [`Link::handle_timeout`] at [`Link::poll_timeout`], write every
//! [`Link::poll_transmit`] chunk to the port, and drain [`Link::poll_event`].
//!
//! Acknowledgement piggybacking (host only): the ackNum of every DATA frame acknowledges what was
//! received, as UG101 allows, so when a DATA frame goes out in the same [`Link::poll_transmit`]
//! round as pending ACKs, the standalone ACKs are dropped (counted in
//! [`LinkStats::acks_piggybacked`]). When no DATA frame can go (nothing queued, or the window is
//! full) the ACK goes out on its own. The NCP role always sends standalone ACKs, so the
//! simulated NCP's wire behaviour is unchanged.
//!
//! The nRdy flag is sent clear and ignored on receipt (bellows does the same).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use super::config::{HOST_MIN_FAILURE_TIME, HOST_T_RX_ACK_MIN, LinkConfig};
use super::frame::{ASH_VERSION, CANCEL, Deframer, Frame, MAX_DATA_LEN, NcpResetCode};

/// Sequence numbers are modulo 8.
const SEQ_MODULUS: u8 = 8;
/// At most this many ACK/NAK frames wait for [`Link::poll_transmit`]; older ACKs are superseded
/// by newer ones (acknowledgement is cumulative), so the oldest is dropped when full.
const CONTROL_QUEUE_CAP: usize = 16;

/// Which end of the serial line this link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The gateway, which resets the NCP and sends EZSP commands.
    Host,
    /// The network co-processor (our simulated coordinator).
    Ncp,
}

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing exchanged yet: the host has not reset, or the NCP has not seen RST.
    Disconnected,
    /// Host: RST sent, waiting for RSTACK.
    Resetting,
    /// DATA frames flow.
    Connected,
    /// The link failed; the host must [`Link::reset`] (the NCP waits for RST).
    Failed(FailReason),
}

/// Why a link failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// `max_ack_timeouts` consecutive ACK timeouts (NCP error code 0x51).
    AckTimeouts,
    /// Host: no RSTACK after this many RSTs.
    ResetTimeout {
        /// RST transmissions made.
        attempts: u32,
    },
    /// The NCP reported an ERROR frame with this code (or, in the NCP role, sent one).
    NcpError(NcpResetCode),
}

/// What the link tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// Host: RSTACK answered our RST. NCP: RST received and RSTACK queued.
    Connected {
        /// The reset code the RSTACK carries.
        reset_code: NcpResetCode,
    },
    /// An EZSP frame arrived, in order and exactly once.
    Received(Vec<u8>),
    /// Host: an RSTACK we did not ask for, so the NCP reset by itself. Sequence numbers restart
    /// at 0 and the link stays connected; payloads not yet acknowledged were dropped.
    Reset {
        /// Why the NCP reset.
        reset_code: NcpResetCode,
        /// Payloads queued or in flight that were dropped.
        discarded: usize,
    },
    /// Host: the NCP sent ERROR and entered its failed state; [`Link::reset`] to recover.
    NcpError {
        /// The NCP's error code.
        code: NcpResetCode,
    },
    /// The link failed locally (ACK timeouts, or no RSTACK).
    Failed {
        /// Why.
        reason: FailReason,
    },
}

/// Errors from [`Link::new`] and [`Link::send`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// DATA can only be sent while connected.
    #[error("cannot send: the ASH link is {state:?}, not connected")]
    NotConnected {
        /// The state the link is in.
        state: LinkState,
    },
    /// The send queue is full; wait for acknowledgements.
    #[error("the ASH send queue is full ({capacity} payloads waiting)")]
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The payload does not fit one DATA frame.
    #[error("payload of {len} bytes exceeds the {max}-byte ASH DATA field")]
    PayloadTooLong {
        /// Payload length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A [`LinkConfig`] field is out of range.
    #[error("invalid ASH link configuration: {field} {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What it must be.
        reason: &'static str,
    },
}

/// Counters for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// DATA frames sent for the first time.
    pub data_sent: u64,
    /// DATA frames sent again (reTx set).
    pub retransmissions: u64,
    /// Payloads delivered as [`LinkEvent::Received`].
    pub delivered: u64,
    /// Retransmitted DATA frames not in sequence (usually already delivered): ACKed, dropped.
    pub duplicates: u64,
    /// ACK frames sent (or due, and then carried by a DATA frame: see `acks_piggybacked`).
    pub acks_sent: u64,
    /// Of `acks_sent`, those not sent as a frame because a DATA frame sent at the same moment
    /// carried the same acknowledgement (host only).
    pub acks_piggybacked: u64,
    /// NAK frames sent.
    pub naks_sent: u64,
    /// NAK frames received.
    pub naks_received: u64,
    /// ACK timeouts.
    pub ack_timeouts: u64,
    /// Frames that failed to deframe or decode, and RSTACK/ERROR with a wrong version.
    pub bad_frames: u64,
    /// Acknowledgements naming a frame number not in flight.
    pub invalid_acks: u64,
}

/// A frame sent and waiting for its acknowledgement.
#[derive(Debug, Clone)]
struct InFlight {
    frm_num: u8,
    payload: Vec<u8>,
    sent_at: Instant,
    retransmitted: bool,
}

/// The one-off frame that goes out before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Urgent {
    Rst,
    RstAck(NcpResetCode),
    Error(NcpResetCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Disconnected,
    Resetting { deadline: Instant, attempts: u32 },
    Connected,
    Failed(FailReason),
}

/// One end of an ASH link. See the module docs for the protocol and the calling pattern.
#[derive(Debug, Clone)]
pub struct Link {
    role: Role,
    config: LinkConfig,
    state: State,
    deframer: Deframer,
    /// frmNum of the next new DATA frame.
    tx_seq: u8,
    /// ackNum: the frmNum expected next from the peer.
    rx_seq: u8,
    queue: VecDeque<Vec<u8>>,
    in_flight: VecDeque<InFlight>,
    /// Index into `in_flight` of the next frame to retransmit.
    resend_from: Option<usize>,
    /// When the ACK timer started; it runs while frames are in flight.
    ack_timer_start: Option<Instant>,
    /// Since when frames have waited without any acknowledgement (for `min_failure_time`).
    unacked_since: Option<Instant>,
    t_rx_ack: Duration,
    consecutive_ack_timeouts: u32,
    reject_condition: bool,
    urgent: Option<Urgent>,
    control_out: VecDeque<Frame>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
}

impl Link {
    /// A disconnected link in `role`.
    pub fn new(role: Role, config: LinkConfig) -> Result<Self, LinkError> {
        config.validate()?;
        Ok(Link {
            role,
            t_rx_ack: config.t_rx_ack_init,
            config,
            state: State::Disconnected,
            deframer: Deframer::new(),
            tx_seq: 0,
            rx_seq: 0,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            resend_from: None,
            ack_timer_start: None,
            unacked_since: None,
            consecutive_ack_timeouts: 0,
            reject_condition: false,
            urgent: None,
            control_out: VecDeque::new(),
            events: VecDeque::new(),
            stats: LinkStats::default(),
        })
    }

    /// This link's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> LinkState {
        match self.state {
            State::Disconnected => LinkState::Disconnected,
            State::Resetting { .. } => LinkState::Resetting,
            State::Connected => LinkState::Connected,
            State::Failed(reason) => LinkState::Failed(reason),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Wire bytes the deframer dropped (noise, cancelled or damaged frames).
    pub fn dropped_bytes(&self) -> u64 {
        self.deframer.dropped_bytes()
    }

    /// The current adaptive ACK timeout.
    pub fn ack_timeout(&self) -> Duration {
        self.t_rx_ack
    }

    /// Payloads accepted by [`Link::send`] and not yet transmitted once (they leave in order).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Payloads accepted by [`Link::send`] and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Host: drops everything pending and sends RST, then waits for RSTACK ([`LinkEvent::Connected`]).
    /// NCP: drops everything pending and sends an unsolicited RSTACK with
    /// [`LinkConfig::reset_code`], as after a reboot; it is connected again at once.
    pub fn reset(&mut self, now: Instant) {
        self.clear_transfer();
        match self.role {
            Role::Host => {
                self.urgent = Some(Urgent::Rst);
                self.state = State::Resetting {
                    deadline: now + self.config.rst_timeout,
                    attempts: 1,
                };
            }
            Role::Ncp => {
                self.urgent = Some(Urgent::RstAck(self.config.reset_code));
                self.state = State::Connected;
            }
        }
    }

    /// NCP: sends ERROR with `code` and enters the failed state until the host sends RST.
    /// On a host link this does nothing (hosts do not send ERROR).
    pub fn send_error(&mut self, code: NcpResetCode) {
        if self.role == Role::Ncp {
            self.clear_transfer();
            self.urgent = Some(Urgent::Error(code));
            self.state = State::Failed(FailReason::NcpError(code));
        }
    }

    /// Queues one EZSP frame for sending.
    pub fn send(&mut self, payload: Vec<u8>) -> Result<(), LinkError> {
        if payload.len() > MAX_DATA_LEN {
            return Err(LinkError::PayloadTooLong {
                len: payload.len(),
                max: MAX_DATA_LEN,
            });
        }
        if self.state != State::Connected {
            return Err(LinkError::NotConnected {
                state: self.state(),
            });
        }
        if self.queue.len() >= self.config.send_queue_capacity {
            return Err(LinkError::QueueFull {
                capacity: self.config.send_queue_capacity,
            });
        }
        self.queue.push_back(payload);
        Ok(())
    }

    /// Processes bytes read from the serial port.
    pub fn handle_input(&mut self, input: &[u8], now: Instant) {
        let results: Vec<_> = self.deframer.push(input).collect();
        for result in results {
            match result {
                Ok(frame) => self.handle_frame(frame, now),
                Err(error) => {
                    self.stats.bad_frames += 1;
                    if error.was_data_frame() && self.state == State::Connected {
                        self.reject();
                    }
                }
            }
        }
    }

    /// Fires the timers that are due at `now` (RST retry, ACK timeout). Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Resetting { deadline, attempts } if now >= deadline => {
                if attempts >= self.config.rst_attempts {
                    self.fail(FailReason::ResetTimeout { attempts });
                } else {
                    self.urgent = Some(Urgent::Rst);
                    self.state = State::Resetting {
                        deadline: now + self.config.rst_timeout,
                        attempts: attempts + 1,
                    };
                }
            }
            State::Connected => {
                let Some(start) = self.ack_timer_start else {
                    return;
                };
                if now < start + self.t_rx_ack {
                    return;
                }
                self.stats.ack_timeouts += 1;
                self.consecutive_ack_timeouts += 1;
                self.t_rx_ack = (self.t_rx_ack * 2).min(self.config.t_rx_ack_max);
                let waited = now.saturating_duration_since(self.unacked_since.unwrap_or(start));
                if self.consecutive_ack_timeouts >= self.config.max_ack_timeouts
                    && waited >= self.config.min_failure_time
                {
                    self.fail(FailReason::AckTimeouts);
                } else {
                    self.resend_from = Some(0);
                    self.ack_timer_start = None;
                }
            }
            _ => {}
        }
    }

    /// The next chunk of bytes to write to the serial port, if any. `now` stamps DATA frames for
    /// the ACK timer.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(urgent) = self.urgent.take() {
            let frame = match urgent {
                Urgent::Rst => {
                    out.resize(self.config.rst_cancel_prefix, CANCEL);
                    Frame::Rst
                }
                Urgent::RstAck(reset_code) => Frame::RstAck {
                    version: ASH_VERSION,
                    reset_code,
                },
                Urgent::Error(error_code) => Frame::Error {
                    version: ASH_VERSION,
                    error_code,
                },
            };
            frame.encode(&mut out);
            return Some(out);
        }
        if self.role == Role::Host && self.state == State::Connected && self.data_frame_ready() {
            // The DATA frame's ackNum (rx_seq) acknowledges everything the queued ACKs would.
            let queued = self.control_out.len();
            self.control_out
                .retain(|frame| !matches!(frame, Frame::Ack { .. }));
            self.stats.acks_piggybacked += (queued - self.control_out.len()) as u64;
        }
        if let Some(frame) = self.control_out.pop_front() {
            frame.encode(&mut out);
            return Some(out);
        }
        if self.state != State::Connected {
            return None;
        }
        let frame = self.next_data_frame(now)?;
        if self.ack_timer_start.is_none() {
            self.ack_timer_start = Some(now);
        }
        if self.unacked_since.is_none() {
            self.unacked_since = Some(now);
        }
        frame.encode(&mut out);
        Some(out)
    }

    /// The next event for the user, if any.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// When [`Link::handle_timeout`] must be called next, if a timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Resetting { deadline, .. } => Some(deadline),
            State::Connected => self.ack_timer_start.map(|start| start + self.t_rx_ack),
            _ => None,
        }
    }

    /// True when [`Link::next_data_frame`] would return a frame.
    fn data_frame_ready(&self) -> bool {
        match self.resend_from {
            Some(index) => index < self.in_flight.len(),
            None => {
                self.in_flight.len() < usize::from(self.config.window) && !self.queue.is_empty()
            }
        }
    }

    /// A retransmission if one is due, else a new frame if the window has room.
    fn next_data_frame(&mut self, now: Instant) -> Option<Frame> {
        let ack_num = self.rx_seq;
        if let Some(index) = self.resend_from {
            let len = self.in_flight.len();
            let entry = self.in_flight.get_mut(index)?;
            entry.retransmitted = true;
            entry.sent_at = now;
            let frame = Frame::Data {
                frm_num: entry.frm_num,
                re_tx: true,
                ack_num,
                payload: entry.payload.clone(),
            };
            self.resend_from = Some(index + 1).filter(|next| *next < len);
            self.stats.retransmissions += 1;
            return Some(frame);
        }
        if self.in_flight.len() >= usize::from(self.config.window) {
            return None;
        }
        let payload = self.queue.pop_front()?;
        let frm_num = self.tx_seq;
        self.tx_seq = (self.tx_seq + 1) % SEQ_MODULUS;
        self.in_flight.push_back(InFlight {
            frm_num,
            payload: payload.clone(),
            sent_at: now,
            retransmitted: false,
        });
        self.stats.data_sent += 1;
        Some(Frame::Data {
            frm_num,
            re_tx: false,
            ack_num,
            payload,
        })
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) {
        match (self.role, frame) {
            (
                Role::Host,
                Frame::RstAck {
                    version,
                    reset_code,
                },
            ) => {
                if version != ASH_VERSION {
                    self.stats.bad_frames += 1;
                    return;
                }
                let was_resetting = matches!(self.state, State::Resetting { .. });
                let discarded = self.clear_transfer();
                self.state = State::Connected;
                self.events.push_back(if was_resetting {
                    LinkEvent::Connected { reset_code }
                } else {
                    LinkEvent::Reset {
                        reset_code,
                        discarded,
                    }
                });
            }
            (
                Role::Host,
                Frame::Error {
                    version,
                    error_code,
                },
            ) => {
                if version != ASH_VERSION {
                    self.stats.bad_frames += 1;
                    return;
                }
                if matches!(self.state, State::Connected | State::Resetting { .. }) {
                    self.clear_transfer();
                    self.state = State::Failed(FailReason::NcpError(error_code));
                    self.events
                        .push_back(LinkEvent::NcpError { code: error_code });
                }
            }
            (Role::Ncp, Frame::Rst) => {
                let reset_code = self.config.reset_code;
                self.clear_transfer();
                self.urgent = Some(Urgent::RstAck(reset_code));
                self.state = State::Connected;
                self.events.push_back(LinkEvent::Connected { reset_code });
            }
            (_, frame) if self.state == State::Connected => match frame {
                Frame::Data {
                    frm_num,
                    re_tx,
                    ack_num,
                    payload,
                } => {
                    self.handle_ack(ack_num, now);
                    self.handle_data(frm_num, re_tx, payload);
                }
                Frame::Ack { ack_num, .. } => self.handle_ack(ack_num, now),
                Frame::Nak { ack_num, .. } => {
                    self.stats.naks_received += 1;
                    self.handle_ack(ack_num, now);
                    if self.in_flight.front().map(|f| f.frm_num) == Some(ack_num) {
                        self.resend_from = Some(0);
                    }
                }
                // RST to a host, RSTACK/ERROR to an NCP: not for this role.
                Frame::Rst | Frame::RstAck { .. } | Frame::Error { .. } => {}
            },
            // Anything else while not connected is ignored (as UG101 has the NCP do before RST).
            _ => {}
        }
    }

    fn handle_data(&mut self, frm_num: u8, re_tx: bool, payload: Vec<u8>) {
        if frm_num == self.rx_seq {
            self.rx_seq = (self.rx_seq + 1) % SEQ_MODULUS;
            self.reject_condition = false;
            self.queue_ack();
            self.stats.delivered += 1;
            self.events.push_back(LinkEvent::Received(payload));
        } else if re_tx {
            // A retransmission of a frame already delivered: acknowledge it again.
            self.stats.duplicates += 1;
            self.queue_ack();
        } else {
            self.reject();
        }
    }

    /// Applies a cumulative acknowledgement: every frame before `ack_num` arrived.
    fn handle_ack(&mut self, ack_num: u8, now: Instant) {
        let Some(oldest) = self.in_flight.front() else {
            return;
        };
        let acked = usize::from(ack_num.wrapping_sub(oldest.frm_num) % SEQ_MODULUS);
        if acked > self.in_flight.len() {
            self.stats.invalid_acks += 1;
            return;
        }
        if acked == 0 {
            return;
        }
        let mut measured = None;
        for entry in self.in_flight.drain(..acked) {
            if !entry.retransmitted {
                measured = Some(now.saturating_duration_since(entry.sent_at));
            }
        }
        if let Some(measured) = measured {
            let adapted = self.t_rx_ack * 7 / 8 + measured / 2;
            self.t_rx_ack = adapted.clamp(self.config.t_rx_ack_min, self.config.t_rx_ack_max);
        }
        self.consecutive_ack_timeouts = 0;
        self.resend_from = self
            .resend_from
            .map(|index| index.saturating_sub(acked))
            .filter(|index| *index < self.in_flight.len());
        self.ack_timer_start = if self.in_flight.is_empty() {
            None
        } else {
            Some(now)
        };
        self.unacked_since = self.ack_timer_start;
    }

    fn queue_ack(&mut self) {
        self.stats.acks_sent += 1;
        self.queue_control(Frame::Ack {
            ack_num: self.rx_seq,
            n_rdy: false,
        });
    }

    /// Sends one NAK and enters the reject condition, unless already in it.
    fn reject(&mut self) {
        if !self.reject_condition {
            self.reject_condition = true;
            self.stats.naks_sent += 1;
            self.queue_control(Frame::Nak {
                ack_num: self.rx_seq,
                n_rdy: false,
            });
        }
    }

    fn queue_control(&mut self, frame: Frame) {
        if self.control_out.len() >= CONTROL_QUEUE_CAP {
            self.control_out.pop_front();
        }
        self.control_out.push_back(frame);
    }

    fn fail(&mut self, reason: FailReason) {
        self.clear_transfer();
        self.state = State::Failed(reason);
        if self.role == Role::Ncp && reason == FailReason::AckTimeouts {
            self.urgent = Some(Urgent::Error(
                NcpResetCode::ERROR_EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT,
            ));
        }
        self.events.push_back(LinkEvent::Failed { reason });
    }

    /// Forgets every frame and sequence number (after RST, RSTACK, ERROR or failure). Returns
    /// how many accepted payloads were dropped.
    fn clear_transfer(&mut self) -> usize {
        let discarded = self.unacknowledged();
        self.queue.clear();
        self.in_flight.clear();
        self.control_out.clear();
        self.resend_from = None;
        self.ack_timer_start = None;
        self.unacked_since = None;
        self.tx_seq = 0;
        self.rx_seq = 0;
        self.reject_condition = false;
        self.consecutive_ack_timeouts = 0;
        self.t_rx_ack = self.config.t_rx_ack_init;
        discarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ash::frame::encode_frame;

    #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
    fn epoch() -> Instant {
        Instant::now()
    }

    fn wire(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(frame, &mut out);
        out
    }

    fn data(frm_num: u8, re_tx: bool, ack_num: u8, payload: &[u8]) -> Vec<u8> {
        wire(&Frame::Data {
            frm_num,
            re_tx,
            ack_num,
            payload: payload.to_vec(),
        })
    }

    /// A host link that has completed the RST/RSTACK handshake.
    fn connected_host(config: LinkConfig, now: Instant) -> Link {
        let mut host = Link::new(Role::Host, config).unwrap();
        host.reset(now);
        assert!(host.poll_transmit(now).is_some());
        host.handle_input(
            &wire(&Frame::RstAck {
                version: ASH_VERSION,
                reset_code: NcpResetCode::RESET_POWER_ON,
            }),
            now,
        );
        assert_eq!(
            host.poll_event(),
            Some(LinkEvent::Connected {
                reset_code: NcpResetCode::RESET_POWER_ON
            })
        );
        host
    }

    fn transmitted(link: &mut Link, now: Instant) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut deframer = Deframer::new();
        while let Some(bytes) = link.poll_transmit(now) {
            frames.extend(deframer.push(&bytes).map(|r| r.unwrap()));
        }
        frames
    }

    fn events(link: &mut Link) -> Vec<LinkEvent> {
        std::iter::from_fn(|| link.poll_event()).collect()
    }

    #[test]
    fn host_piggybacks_the_ack_on_a_data_frame_sent_with_it() {
        let now = epoch();
        let mut host = connected_host(LinkConfig::default(), now);
        host.handle_input(&data(0, false, 0, b"callback"), now);
        host.send(b"answer".to_vec()).unwrap();
        // One DATA frame whose ackNum 1 acknowledges the callback; no ACK frame.
        assert_eq!(
            transmitted(&mut host, now),
            vec![Frame::Data {
                frm_num: 0,
                re_tx: false,
                ack_num: 1,
                payload: b"answer".to_vec(),
            }]
        );
        assert_eq!(host.stats().acks_piggybacked, 1);
        assert_eq!(host.stats().acks_sent, 1);
    }

    #[test]
    fn host_sends_the_ack_alone_when_no_data_frame_can_go() {
        let now = epoch();
        let mut host = connected_host(LinkConfig::default(), now);
        // Window 1: the first frame is in flight, the second must wait for its ACK.
        host.send(b"first".to_vec()).unwrap();
        assert_eq!(transmitted(&mut host, now).len(), 1);
        host.send(b"second".to_vec()).unwrap();
        host.handle_input(&data(0, false, 7, b"callback"), now);
        assert_eq!(
            transmitted(&mut host, now),
            vec![Frame::Ack {
                ack_num: 1,
                n_rdy: false
            }]
        );
        assert_eq!(host.stats().acks_piggybacked, 0);
        // Nothing queued at all: a standalone ACK too.
        let mut idle = connected_host(LinkConfig::default(), now);
        idle.handle_input(&data(0, false, 0, b"callback"), now);
        assert_eq!(
            transmitted(&mut idle, now),
            vec![Frame::Ack {
                ack_num: 1,
                n_rdy: false
            }]
        );
    }

    #[test]
    fn ncp_keeps_standalone_acks() {
        let now = epoch();
        let mut host = connected_host(LinkConfig::default(), now);
        let mut ncp = Link::new(Role::Ncp, LinkConfig::default()).unwrap();
        host.reset(now);
        ncp.handle_input(&host.poll_transmit(now).unwrap(), now);
        host.handle_input(&ncp.poll_transmit(now).unwrap(), now);
        host.send(b"command".to_vec()).unwrap();
        ncp.handle_input(&host.poll_transmit(now).unwrap(), now);
        ncp.send(b"response".to_vec()).unwrap();
        let frames = transmitted(&mut ncp, now);
        assert_eq!(
            frames.first(),
            Some(&Frame::Ack {
                ack_num: 1,
                n_rdy: false
            })
        );
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(ncp.stats().acks_piggybacked, 0);
    }

    #[test]
    fn reject_condition_sends_exactly_one_nak_until_a_good_frame() {
        let now = epoch();
        let mut host = connected_host(LinkConfig::default(), now);
        // Frames 1, 2 and 3 arrive while 0 is missing: one NAK(0) only.
        for frm in 1..=3 {
            host.handle_input(&data(frm, false, 0, &[frm; 4]), now);
        }
        // A corrupt DATA frame while rejecting: still no second NAK.
        let mut corrupt = data(0, false, 0, &[7; 4]);
        corrupt[2] ^= 0x01;
        host.handle_input(&corrupt, now);
        assert_eq!(
            transmitted(&mut host, now),
            vec![Frame::Nak {
                ack_num: 0,
                n_rdy: false
            }]
        );
        assert_eq!(host.stats().naks_sent, 1);
        assert!(events(&mut host).is_empty());
        // The retransmission of frame 0 is in sequence: delivered, ACKed, reject cleared.
        host.handle_input(&data(0, true, 0, &[0; 4]), now);
        assert_eq!(events(&mut host), vec![LinkEvent::Received(vec![0; 4])]);
        assert_eq!(
            transmitted(&mut host, now),
            vec![Frame::Ack {
                ack_num: 1,
                n_rdy: false
            }]
        );
        // A new error gets a new NAK.
        host.handle_input(&corrupt, now);
        assert_eq!(
            transmitted(&mut host, now),
            vec![Frame::Nak {
                ack_num: 1,
                n_rdy: false
            }]
        );
    }

    #[test]
    fn corrupt_non_data_frames_are_dropped_without_nak() {
        let now = epoch();
        let mut host = connected_host(LinkConfig::default(), now);
        let mut ack = wire(&Frame::Ack {
            ack_num: 0,
            n_rdy: false,
        });
        ack[1] ^= 0x40;
        host.handle_input(&ack, now);
        assert!(transmitted(&mut host, now).is_empty());
        assert_eq!(host.stats().bad_frames, 1);
    }

    #[test]
    fn retransmitted_duplicate_is_acked_not_delivered() {
        let now = epoch();
        let mut host = connected_host(LinkConfig::default(), now);
        host.handle_input(&data(0, false, 0, b"abc"), now);
        host.handle_input(&data(0, true, 0, b"abc"), now);
        assert_eq!(
            events(&mut host),
            vec![LinkEvent::Received(b"abc".to_vec())]
        );
        let ack = Frame::Ack {
            ack_num: 1,
            n_rdy: false,
        };
        assert_eq!(transmitted(&mut host, now), vec![ack.clone(), ack]);
        assert_eq!(host.stats().duplicates, 1);
        assert_eq!(host.stats().naks_sent, 0);
    }

    #[test]
    fn window_limits_frames_in_flight_and_acks_are_cumulative() {
        let now = epoch();
        let config = LinkConfig {
            window: 3,
            ..LinkConfig::default()
        };
        let mut host = connected_host(config, now);
        for i in 0..5u8 {
            host.send(vec![i]).unwrap();
        }
        let sent = transmitted(&mut host, now);
        let numbers: Vec<u8> = sent
            .iter()
            .map(|f| match f {
                Frame::Data { frm_num, .. } => *frm_num,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(numbers, [0, 1, 2]);
        // One ACK for two frames frees two slots.
        host.handle_input(
            &wire(&Frame::Ack {
                ack_num: 2,
                n_rdy: false,
            }),
            now,
        );
        assert_eq!(transmitted(&mut host, now).len(), 2);
        assert_eq!(host.unacknowledged(), 3);
        // An ACK naming a frame that was never sent is ignored.
        host.handle_input(
            &wire(&Frame::Ack {
                ack_num: 7,
                n_rdy: false,
            }),
            now,
        );
        assert_eq!(host.stats().invalid_acks, 1);
        assert_eq!(host.unacknowledged(), 3);
    }

    #[test]
    fn nak_resends_from_the_named_frame_with_re_tx() {
        let now = epoch();
        let config = LinkConfig {
            window: 3,
            ..LinkConfig::default()
        };
        let mut host = connected_host(config, now);
        for i in 0..3u8 {
            host.send(vec![i; 3]).unwrap();
        }
        assert_eq!(transmitted(&mut host, now).len(), 3);
        host.handle_input(
            &wire(&Frame::Nak {
                ack_num: 1,
                n_rdy: false,
            }),
            now,
        );
        let resent = transmitted(&mut host, now);
        assert_eq!(
            resent,
            vec![
                Frame::Data {
                    frm_num: 1,
                    re_tx: true,
                    ack_num: 0,
                    payload: vec![1; 3]
                },
                Frame::Data {
                    frm_num: 2,
                    re_tx: true,
                    ack_num: 0,
                    payload: vec![2; 3]
                },
            ]
        );
    }

    #[test]
    fn ack_timeout_adapts_within_bounds() {
        let start = epoch();
        let mut host = connected_host(LinkConfig::default(), start);
        assert_eq!(host.ack_timeout(), Duration::from_millis(1600));
        host.send(vec![1]).unwrap();
        transmitted(&mut host, start);
        assert_eq!(
            host.poll_timeout(),
            Some(start + Duration::from_millis(1600))
        );
        let acked_at = start + Duration::from_millis(100);
        host.handle_input(
            &wire(&Frame::Ack {
                ack_num: 1,
                n_rdy: false,
            }),
            acked_at,
        );
        // 7/8 · 1600 + 1/2 · 100
        assert_eq!(host.ack_timeout(), Duration::from_millis(1450));
        assert_eq!(host.poll_timeout(), None);
        // Quick ACKs drive it down to the 400 ms floor.
        let mut now = acked_at;
        for i in 1..40u8 {
            host.send(vec![i]).unwrap();
            transmitted(&mut host, now);
            now += Duration::from_millis(1);
            host.handle_input(
                &wire(&Frame::Ack {
                    ack_num: (i + 1) % 8,
                    n_rdy: false,
                }),
                now,
            );
        }
        assert_eq!(host.ack_timeout(), Duration::from_millis(400));
        // A timeout doubles it.
        host.send(vec![0]).unwrap();
        transmitted(&mut host, now);
        now += Duration::from_millis(400);
        host.handle_timeout(now - Duration::from_millis(1));
        assert_eq!(
            host.ack_timeout(),
            Duration::from_millis(400),
            "not due yet"
        );
        host.handle_timeout(now);
        assert_eq!(host.ack_timeout(), Duration::from_millis(800));
        assert_eq!(host.stats().ack_timeouts, 1);
        let resent = transmitted(&mut host, now);
        assert!(matches!(resent[..], [Frame::Data { re_tx: true, .. }]));
    }

    /// Acknowledges every DATA frame `rtt` after sending it, `count` times.
    fn quick_round_trips(host: &mut Link, mut now: Instant, rtt: Duration, count: u8) -> Instant {
        for i in 0..count {
            host.send(vec![i]).unwrap();
            let sent = transmitted(host, now);
            let Some(Frame::Data { frm_num, .. }) = sent.last() else {
                panic!("no DATA frame: {sent:?}");
            };
            now += rtt;
            host.handle_input(
                &wire(&Frame::Ack {
                    ack_num: (frm_num + 1) % 8,
                    n_rdy: false,
                }),
                now,
            );
        }
        now
    }

    #[test]
    fn host_timer_follows_the_round_trip_and_the_link_dies_only_after_min_failure_time() {
        let start = epoch();
        let config = LinkConfig::host();
        let mut host = connected_host(config.clone(), start);
        assert_eq!(host.ack_timeout(), Duration::from_millis(800));
        // A 10 ms round trip: the timeout settles at about 4x it (7/8·t + 1/2·10 ms).
        let now = quick_round_trips(&mut host, start, Duration::from_millis(10), 60);
        let settled = host.ack_timeout();
        assert!(
            settled >= Duration::from_millis(39) && settled <= Duration::from_millis(42),
            "{settled:?}"
        );
        // A 1 ms round trip: down to the floor, not to 4 ms.
        let mut now = quick_round_trips(&mut host, now, Duration::from_millis(1), 60);
        assert_eq!(host.ack_timeout(), HOST_T_RX_ACK_MIN);
        // A lost frame is resent after the floor, not UG101's 0.4 s.
        host.send(vec![9]).unwrap();
        transmitted(&mut host, now);
        assert_eq!(host.poll_timeout(), Some(now + HOST_T_RX_ACK_MIN));
        // The NCP goes silent: five timeouts pass long before HOST_MIN_FAILURE_TIME, so the link
        // keeps retrying (timeouts doubling to 3.2 s) and fails at the first timeout after it.
        let silent_since = now;
        while host.state() == LinkState::Connected {
            now = host.poll_timeout().expect("the ACK timer runs");
            host.handle_timeout(now);
            transmitted(&mut host, now);
        }
        assert_eq!(host.state(), LinkState::Failed(FailReason::AckTimeouts));
        let waited = now - silent_since;
        assert!(waited >= HOST_MIN_FAILURE_TIME, "{waited:?}");
        assert!(
            waited < HOST_MIN_FAILURE_TIME + config.t_rx_ack_max,
            "{waited:?}"
        );
        assert!(host.stats().ack_timeouts > u64::from(config.max_ack_timeouts));
    }

    #[test]
    fn ncp_values_are_ug101s() {
        let ncp = LinkConfig::ncp();
        assert_eq!((ncp.window, ncp.max_ack_timeouts), (5, 4));
        assert_eq!(ncp.t_rx_ack_min, Duration::from_millis(400));
        assert_eq!(ncp.t_rx_ack_max, Duration::from_millis(3200));
        assert_eq!(ncp.min_failure_time, Duration::ZERO);
        assert!(Link::new(Role::Ncp, ncp).is_ok());
        assert!(Link::new(Role::Host, LinkConfig::host()).is_ok());
    }

    #[test]
    fn send_errors_name_the_problem() {
        let now = epoch();
        let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
        assert_eq!(
            host.send(vec![1]),
            Err(LinkError::NotConnected {
                state: LinkState::Disconnected
            })
        );
        let config = LinkConfig {
            send_queue_capacity: 2,
            ..LinkConfig::default()
        };
        let mut host = connected_host(config, now);
        assert_eq!(
            host.send(vec![0; MAX_DATA_LEN + 1]),
            Err(LinkError::PayloadTooLong {
                len: MAX_DATA_LEN + 1,
                max: MAX_DATA_LEN
            })
        );
        host.send(vec![1]).unwrap();
        host.send(vec![2]).unwrap();
        assert_eq!(
            host.send(vec![3]),
            Err(LinkError::QueueFull { capacity: 2 })
        );
    }

    #[test]
    fn config_is_validated() {
        for (config, field) in [
            (
                LinkConfig {
                    window: 0,
                    ..LinkConfig::default()
                },
                "window",
            ),
            (
                LinkConfig {
                    window: 8,
                    ..LinkConfig::default()
                },
                "window",
            ),
            (
                LinkConfig {
                    t_rx_ack_min: Duration::from_secs(5),
                    ..LinkConfig::default()
                },
                "t_rx_ack_min",
            ),
            (
                LinkConfig {
                    max_ack_timeouts: 0,
                    ..LinkConfig::default()
                },
                "max_ack_timeouts",
            ),
        ] {
            match Link::new(Role::Host, config) {
                Err(LinkError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn ncp_ignores_everything_before_rst_then_answers_with_rstack() {
        let now = epoch();
        let config = LinkConfig {
            reset_code: NcpResetCode::RESET_EXTERNAL,
            ..LinkConfig::default()
        };
        let mut ncp = Link::new(Role::Ncp, config).unwrap();
        ncp.handle_input(&data(0, false, 0, b"early"), now);
        assert!(events(&mut ncp).is_empty());
        assert!(transmitted(&mut ncp, now).is_empty());
        let mut rst = vec![CANCEL; 32];
        rst.extend(wire(&Frame::Rst));
        ncp.handle_input(&rst, now);
        assert_eq!(
            events(&mut ncp),
            vec![LinkEvent::Connected {
                reset_code: NcpResetCode::RESET_EXTERNAL
            }]
        );
        assert_eq!(
            transmitted(&mut ncp, now),
            vec![Frame::RstAck {
                version: ASH_VERSION,
                reset_code: NcpResetCode::RESET_EXTERNAL
            }]
        );
        assert_eq!(ncp.state(), LinkState::Connected);
    }

    #[test]
    fn rstack_with_wrong_version_is_ignored() {
        let now = epoch();
        let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
        host.reset(now);
        host.poll_transmit(now);
        host.handle_input(
            &wire(&Frame::RstAck {
                version: 1,
                reset_code: NcpResetCode::RESET_SOFTWARE,
            }),
            now,
        );
        assert_eq!(host.state(), LinkState::Resetting);
        assert!(events(&mut host).is_empty());
    }
}
