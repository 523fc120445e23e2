//! The EZSP host as a sans-IO state machine (quinn-proto's shape; STYLE.md rule 7): bytes from
//! the port go in through [`EzspHost::handle_input`], timers through
//! [`EzspHost::handle_timeout`], bytes for the port come out of [`EzspHost::poll_transmit`],
//! what happened out of [`EzspHost::poll_event`], and [`EzspHost::poll_timeout`] says when to
//! call again. Time is always an argument; nothing here reads a clock, a file or a port. It runs
//! the sans-IO [`Link`] (ASH, UG101) and [`Session`] (EZSP, UG100) underneath.
//!
//! **Start-up** ([`startup`](super::startup)) is an explicit state machine, entered on every
//! opened port and after every NCP reset: ASH reset → EZSP version → configuration values and
//! policies → our endpoint (before `networkInit`) → resume the network the NCP holds, or form
//! one from the [`NetworkSettings`] the driver hands over when asked
//! ([`HostEvent::NetworkSettingsNeeded`]) → `NETWORK_UP` → network parameters → up.
//!
//! **Up** ([`up`](super::up)), the host owns:
//! - the in-flight sends: each [`MessageTag`] gets exactly one [`HostEvent::Delivery`]
//!   (delivered, refused, failed, timed out or link lost), whatever the NCP does;
//! - the address lookups (`lookupEui64ByNodeId`, before v14) and the messages held, in order,
//!   while one runs;
//! - the keepalive `nop` after [`HostConfig::keepalive_interval`] of silence;
//! - the latency stamps of answers (serial in → serial out, [`HostEvent::AnswerLatency`]);
//! - recovery: an unsolicited RSTACK, an ASH ERROR, a failed link or a failed start-up restarts
//!   start-up on the same port after the capped exponential [`Backoff`]; a lost port
//!   ([`EzspHost::port_lost`]) is asked for again ([`HostEvent::OpenPort`]) after it.
//!
//! **Use from outside: the EZSP proxy (issue 17).** The proxy will own the stick's serial port
//! and run this host on it, so zigbee-otad's own sends keep every guarantee above, while an
//! upstream stack (ZHA's bellows, Zigbee2MQTT's `ember` adapter) talks EZSP to the proxy on a
//! pty. For that the host offers:
//! - [`EzspHost::submit`]: any command, typed or raw ([`Command::Other`] carries a frame id and
//!   its parameter bytes), sent with the host's own sequence number; its answer comes back as
//!   [`HostEvent::Response`] with the returned [`RequestId`] (or a failure: no response, link
//!   lost). The proxy maps the upstream's sequence numbers to request ids and back.
//! - [`HostEvent::Callback`]: every callback the host does not consume itself (anything but
//!   stack status, incoming messages, joins and the `messageSentHandler`s of its own tags) is
//!   reported, not swallowed, so the proxy can pass it upstream. A `messageSentHandler` for a tag
//!   the host did not allocate is one of them; the proxy keeps its tags apart from ours by
//!   rewriting them.
//! - [`EzspHost::version`], [`EzspHost::network_info`]: what start-up learned, so the proxy
//!   can answer the upstream's own start-up (version, configuration) without resetting the
//!   stick under us.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::addresses::Addresses;
pub use super::events::{
    HostConfig, HostEvent, LatencySample, RequestFailed, RequestId, SubmitError, Trouble,
};
use super::startup::{Phase, StartupFacts};
use crate::ash::{Link, LinkEvent, Role};
use crate::coordinator::network::NetworkSettings;
use crate::coordinator::serial::Backoff;
use crate::coordinator::{
    CoordinatorState, DeliveryOutcome, DeviceTable, IncomingMessage, MessageTag, NetworkInfo, Nwk,
};
use crate::ezsp::command::Command;
use crate::ezsp::{self as ezsp_core, EzspVersion, Session};

/// Sends awaiting their `messageSentHandler` at most (below the 255 tags of EZSP v13); the
/// command queue waits beyond that. The one coordinator-wide limit, which the daemon's outbox
/// also keeps.
pub const MAX_IN_FLIGHT: usize = crate::coordinator::MAX_UNICASTS_IN_FLIGHT;
/// With every in-flight slot taken, a send still without its `messageSentHandler` after this
/// long is reported timed out early (a real NCP reports within a few seconds, indirect
/// transmissions to sleepy devices included: INDIRECT_TX_TIMEOUT is 7.68 s at most, but those
/// are few; a lost report must not stall every transfer for the full delivery timeout).
pub const IN_FLIGHT_PRESSURE_AGE: Duration = Duration::from_secs(8);
/// Answers waiting for their first write at most; older stamps are dropped unrecorded.
const MAX_ANSWER_STAMPS: usize = 64;

/// A send waiting for its `messageSentHandler`.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    pub(super) tag: MessageTag,
    pub(super) deadline: Instant,
}

/// An answer on its way to the port, for the serial-in -> serial-out latency.
#[derive(Debug, Clone, Copy)]
pub(super) struct AnswerStamp {
    /// The EZSP sequence of its `sendUnicast`.
    pub(super) sequence: u8,
    /// When its request was read from the port.
    pub(super) request_read_at: Instant,
    /// Its place among the payloads the link accepted, once it has one.
    pub(super) link_ordinal: Option<u64>,
}

/// The EZSP host. See the module docs.
#[derive(Debug)]
pub struct EzspHost {
    pub(super) config: HostConfig,
    pub(super) link: Link,
    pub(super) session: Session,
    pub(super) phase: Phase,
    pub(super) facts: StartupFacts,
    pub(super) state: CoordinatorState,
    pub(super) backoff: Backoff,
    pub(super) network_up: bool,
    pub(super) network: Option<NetworkInfo>,
    pub(super) max_payload: Option<usize>,
    pub(super) settings: Option<NetworkSettings>,
    /// Session frames waiting for room in the link's send queue.
    link_backlog: VecDeque<Vec<u8>>,
    /// EZSP message tag → the send it belongs to.
    pub(super) in_flight: HashMap<u16, InFlight>,
    /// EZSP sequence of a `sendUnicast`/`sendBroadcast` → its EZSP message tag.
    pub(super) send_sequences: HashMap<u8, u16>,
    pub(super) next_ezsp_tag: u16,
    pub(super) next_aps_sequence: u8,
    /// When the NCP last sent a frame.
    pub(super) last_heard: Instant,
    /// The sequence of an outstanding keepalive `nop`.
    pub(super) keepalive: Option<u8>,
    /// Sequence of a `lookupEui64ByNodeId` → the sender it is for.
    pub(super) lookups: HashMap<u8, Nwk>,
    /// Messages held until their sender's address lookup answers.
    pub(super) held: HashMap<Nwk, Vec<IncomingMessage>>,
    /// When the last bytes were read from the port.
    pub(super) last_read_at: Instant,
    /// Payloads the link has accepted since the port opened.
    link_accepted: u64,
    /// Answers whose `sendUnicast` has not been written yet.
    pub(super) answer_stamps: VecDeque<AnswerStamp>,
    /// EZSP sequence of a submitted command → its request.
    pub(super) requests: HashMap<u8, RequestId>,
    next_request: u64,
    /// The device table, as joins, announces and senders teach it.
    pub(super) addresses: Addresses,
    /// Trouble found while handling events, acted on at the end of the step.
    pub(super) trouble: Option<Trouble>,
    /// [`EzspHost::stop`] runs: what it ends is not trouble worth a warning.
    stopping: bool,
    events: VecDeque<HostEvent>,
}

impl EzspHost {
    /// A host without a port: its first event is [`HostEvent::OpenPort`]. `devices` is the
    /// device table kept from earlier runs.
    pub fn new(
        config: HostConfig,
        devices: DeviceTable,
        now: Instant,
    ) -> Result<Self, crate::ash::LinkError> {
        let link = Link::new(Role::Host, config.link.clone())?;
        let mut host = EzspHost {
            link,
            session: Session::new(config.session),
            phase: Phase::NoPort { reopen_at: None },
            facts: StartupFacts::default(),
            state: CoordinatorState::Starting,
            backoff: config.backoff.clone(),
            network_up: false,
            network: None,
            max_payload: None,
            settings: None,
            link_backlog: VecDeque::new(),
            in_flight: HashMap::new(),
            send_sequences: HashMap::new(),
            next_ezsp_tag: 1,
            next_aps_sequence: 0,
            last_heard: now,
            keepalive: None,
            lookups: HashMap::new(),
            held: HashMap::new(),
            last_read_at: now,
            link_accepted: 0,
            answer_stamps: VecDeque::new(),
            requests: HashMap::new(),
            next_request: 0,
            addresses: Addresses::new(devices),
            trouble: None,
            stopping: false,
            events: VecDeque::new(),
            config,
        };
        host.events
            .push_back(HostEvent::StateChanged(CoordinatorState::Starting));
        host.events.push_back(HostEvent::OpenPort);
        Ok(host)
    }

    /// The coordinator state.
    pub fn state(&self) -> CoordinatorState {
        self.state
    }

    /// The negotiated EZSP version, while the link is up.
    pub fn version(&self) -> Option<EzspVersion> {
        self.session.version()
    }

    /// The network, once start-up has read it.
    pub fn network_info(&self) -> Option<NetworkInfo> {
        self.network
    }

    /// The NCP's maximum APS payload while up.
    pub fn max_payload(&self) -> Option<usize> {
        self.max_payload
    }

    /// The device table.
    pub fn devices(&self) -> &DeviceTable {
        self.addresses.devices()
    }

    /// The tags of the sends waiting for their delivery report, in tag order.
    pub fn in_flight_tags(&self) -> Vec<MessageTag> {
        let mut tags: Vec<MessageTag> = self.in_flight.values().map(|f| f.tag).collect();
        tags.sort();
        tags
    }

    /// True while the EZSP pending limit and the in-flight limit leave room for a send.
    pub fn accepts_commands(&self) -> bool {
        matches!(self.phase, Phase::Up)
            && self.session.pending_count() < self.config.session.max_pending.max(1)
            && self.in_flight.len() < MAX_IN_FLIGHT
    }

    /// The driver opened the port: start-up begins (ASH reset).
    pub fn port_opened(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::NoPort { .. }) {
            return;
        }
        match Link::new(Role::Host, self.config.link.clone()) {
            Ok(link) => self.link = link,
            Err(e) => {
                self.fail(
                    Trouble::Startup(format!("ASH link configuration: {e}")),
                    now,
                );
                return;
            }
        }
        self.link_accepted = 0;
        self.begin_startup(now);
    }

    /// The driver lost the port, or could not open it: everything in flight is reported lost,
    /// and [`HostEvent::OpenPort`] follows after the backoff.
    pub fn port_lost(&mut self, reason: &str, now: Instant) {
        self.fail(Trouble::PortGone(reason.to_string()), now);
    }

    /// Stops for good: everything in flight is reported lost, the state becomes `Stopped`.
    pub fn stop(&mut self, now: Instant) {
        self.stopping = true;
        self.fail(Trouble::PortGone("stopped".into()), now);
        self.phase = Phase::Stopped;
        self.set_state(CoordinatorState::Stopped);
    }

    /// Sends any command (see the module docs); the answer comes as [`HostEvent::Response`].
    pub fn submit(&mut self, command: &Command, now: Instant) -> Result<RequestId, SubmitError> {
        if !matches!(self.phase, Phase::Up) {
            return Err(SubmitError::NotUp(self.state));
        }
        let sequence = self.session.send(command, now)?;
        let request = RequestId(self.next_request);
        self.next_request += 1;
        self.requests.insert(sequence, request);
        self.drive(now);
        Ok(request)
    }

    /// Bytes read from the port.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.phase, Phase::NoPort { .. } | Phase::Stopped) {
            return;
        }
        self.last_read_at = now;
        self.link.handle_input(bytes, now);
        self.drive(now);
    }

    /// Fires the timers due at `now`. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::NoPort {
                reopen_at: Some(at),
            } if now >= at => {
                self.phase = Phase::NoPort { reopen_at: None };
                self.set_state(CoordinatorState::Starting);
                self.events.push_back(HostEvent::OpenPort);
                return;
            }
            Phase::NoPort { .. } | Phase::Stopped => return,
            Phase::Backoff { until } => {
                if now >= until {
                    self.begin_startup(now);
                }
                return;
            }
            Phase::AwaitNetworkUp { deadline } if now >= deadline => {
                self.trouble = Some(Trouble::Startup("no NETWORK_UP in time".into()));
            }
            _ => {}
        }
        self.link.handle_timeout(now);
        self.session.handle_timeout(now);
        if matches!(self.phase, Phase::Up) {
            self.expire_before(now, now);
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                let grace = self
                    .config
                    .delivery_timeout
                    .saturating_sub(IN_FLIGHT_PRESSURE_AGE);
                self.expire_before(now + grace, now);
            }
        }
        self.drive(now);
        if matches!(self.phase, Phase::Up)
            && self.keepalive.is_none()
            && now >= self.last_heard + self.config.keepalive_interval
        {
            match self.session.send(&Command::Nop, now) {
                Ok(sequence) => self.keepalive = Some(sequence),
                Err(e) => debug!("keepalive not sent: {e}"),
            }
            self.drive(now);
        }
    }

    /// The bytes to write to the port now (everything due, in one write), if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if matches!(self.phase, Phase::NoPort { .. } | Phase::Stopped) {
            return None;
        }
        self.flush_session();
        let mut outgoing = Vec::new();
        while let Some(bytes) = self.link.poll_transmit(now) {
            outgoing.extend_from_slice(&bytes);
        }
        if outgoing.is_empty() {
            return None;
        }
        self.record_written_answers(now);
        Some(outgoing)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// When [`EzspHost::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase_timer = match self.phase {
            Phase::NoPort { reopen_at } => return reopen_at,
            Phase::Stopped => return None,
            Phase::Backoff { until } => return Some(until),
            Phase::AwaitNetworkUp { deadline } => Some(deadline),
            Phase::Up => {
                let keepalive = self
                    .keepalive
                    .is_none()
                    .then(|| self.last_heard + self.config.keepalive_interval);
                let pressure = (self.in_flight.len() >= MAX_IN_FLIGHT)
                    .then(|| self.in_flight.values().map(|f| f.deadline).min())
                    .flatten()
                    .and_then(|d| d.checked_sub(self.config.delivery_timeout))
                    .map(|sent| sent + IN_FLIGHT_PRESSURE_AGE);
                [keepalive, pressure].into_iter().flatten().min()
            }
            _ => None,
        };
        [
            phase_timer,
            self.link.poll_timeout(),
            self.session.poll_timeout(),
            self.in_flight.values().map(|f| f.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // -----------------------------------------------------------------------------------------
    // Internals shared by start-up and up

    pub(super) fn emit(&mut self, event: HostEvent) {
        self.events.push_back(event);
    }

    pub(super) fn set_state(&mut self, state: CoordinatorState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(HostEvent::StateChanged(state));
        }
    }

    /// Hands link events to the session and session events to their handlers, until nothing
    /// moves; acts on trouble found meanwhile.
    pub(super) fn drive(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(event) = self.link.poll_event() {
                moved = true;
                self.handle_link_event(event, now);
            }
            while let Some(event) = self.session.poll_event() {
                moved = true;
                self.handle_session_event(event, now);
            }
            if let Some(trouble) = self.trouble.take() {
                self.fail(trouble, now);
                return;
            }
            if !moved {
                return;
            }
        }
    }

    fn handle_link_event(&mut self, event: LinkEvent, now: Instant) {
        match event {
            LinkEvent::Connected { reset_code } => {
                debug!("ASH connected, NCP reset code {reset_code:?}");
                self.link_connected(now);
            }
            LinkEvent::Received(frame) => {
                self.last_heard = now;
                if let Err(e) = self.session.handle_input(&frame, now) {
                    debug!("EZSP frame ignored: {e}");
                }
            }
            LinkEvent::Reset { reset_code, .. } => {
                if matches!(self.phase, Phase::Resetting) {
                    // An RSTACK racing our RST is still the answer we wait for.
                    self.link_connected(now);
                } else {
                    self.trouble = Some(Trouble::NcpReset(format!("reset code {reset_code:?}")));
                }
            }
            LinkEvent::NcpError { code } => {
                self.trouble = Some(Trouble::NcpError(format!("{code:?}")));
            }
            LinkEvent::Failed { reason } => {
                self.trouble = Some(Trouble::LinkFailed(format!("{reason:?}")));
            }
        }
    }

    fn handle_session_event(&mut self, event: ezsp_core::Event, now: Instant) {
        match event {
            ezsp_core::Event::Negotiated {
                version,
                stack_version,
                ..
            } => self.negotiated(version, stack_version, now),
            ezsp_core::Event::NegotiationFailed(e) => {
                self.trouble = Some(Trouble::Startup(format!("EZSP negotiation: {e}")));
            }
            ezsp_core::Event::Response { sequence, response } => {
                if !self.startup_answered(sequence, &response, now) {
                    self.late_response(sequence, response, now);
                }
            }
            ezsp_core::Event::TimedOut { sequence, .. }
            | ezsp_core::Event::Aborted { sequence, .. } => {
                if !self.startup_unanswered(sequence) {
                    self.unanswered(sequence, RequestFailed::NoResponse, now);
                }
            }
            ezsp_core::Event::ResponseUndecodable { sequence, error } => {
                debug!("EZSP response {sequence} undecodable: {error}");
                if !self.startup_unanswered(sequence) {
                    self.unanswered(sequence, RequestFailed::Undecodable, now);
                }
            }
            ezsp_core::Event::Callback(callback) => self.callback(callback, now),
            other => debug!("EZSP event ignored: {other:?}"),
        }
    }

    /// Moves session frames into the link's send queue, as far as it has room.
    fn flush_session(&mut self) {
        while let Some(frame) = self.session.poll_transmit() {
            self.link_backlog.push_back(frame);
        }
        while let Some(frame) = self.link_backlog.pop_front() {
            let sequence = frame.first().copied();
            if let Err(e) = self.link.send(frame.clone()) {
                debug!("ASH send queue: {e}");
                self.link_backlog.push_front(frame);
                break;
            }
            let ordinal = self.link_accepted;
            self.link_accepted += 1;
            if let Some(stamp) = self
                .answer_stamps
                .iter_mut()
                .find(|s| s.link_ordinal.is_none() && Some(s.sequence) == sequence)
            {
                stamp.link_ordinal = Some(ordinal);
            }
        }
    }

    /// Records serial-in -> serial-out for every answer whose `sendUnicast` frame has now been
    /// written once (the link sends the payloads it accepted in order).
    fn record_written_answers(&mut self, now: Instant) {
        let written_below = self.link_accepted.saturating_sub(self.link.queued() as u64);
        while let Some(stamp) = self.answer_stamps.front().copied() {
            match stamp.link_ordinal {
                Some(ordinal) if ordinal < written_below => {
                    self.answer_stamps.pop_front();
                    self.emit(HostEvent::AnswerLatency(LatencySample::SerialInToOut(
                        now.saturating_duration_since(stamp.request_read_at),
                    )));
                }
                _ => break,
            }
        }
    }

    pub(super) fn stamp_answer(&mut self, sequence: u8, request_read_at: Instant) {
        if self.answer_stamps.len() >= MAX_ANSWER_STAMPS {
            self.answer_stamps.pop_front();
        }
        self.answer_stamps.push_back(AnswerStamp {
            sequence,
            request_read_at,
            link_ordinal: None,
        });
    }

    /// Ends the current start-up or up state: everything in flight is reported, and start-up
    /// runs again after the backoff (on the same port, or on the port asked for again).
    pub(super) fn fail(&mut self, trouble: Trouble, now: Instant) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        let port_gone = matches!(trouble, Trouble::PortGone(_));
        if !port_gone && matches!(self.phase, Phase::NoPort { .. } | Phase::Backoff { .. }) {
            return;
        }
        if self.stopping {
            debug!("stopping: {trouble}");
        } else {
            warn!("{trouble}");
        }
        self.max_payload = None;
        self.keepalive = None;
        self.facts = StartupFacts::default();
        // Held messages were received: deliver them without the IEEE address.
        self.lookups.clear();
        let mut held: Vec<Nwk> = self.held.keys().copied().collect();
        held.sort();
        for source in held {
            self.release_held(source, None, now);
        }
        self.send_sequences.clear();
        let mut lost: Vec<InFlight> = self.in_flight.drain().map(|(_, f)| f).collect();
        lost.sort_by_key(|f| f.tag);
        for flight in lost {
            self.emit(HostEvent::Delivery {
                tag: flight.tag,
                outcome: DeliveryOutcome::LinkLost,
            });
        }
        let mut requests: Vec<RequestId> = self.requests.drain().map(|(_, r)| r).collect();
        requests.sort();
        for request in requests {
            self.emit(HostEvent::Response {
                request,
                outcome: Err(RequestFailed::LinkLost),
            });
        }
        self.session.reset();
        while self.session.poll_event().is_some() {}
        self.link_backlog.clear();
        self.answer_stamps.clear();
        let delay = self.backoff.next_delay();
        if port_gone {
            self.set_state(CoordinatorState::Disconnected);
            self.phase = Phase::NoPort {
                reopen_at: Some(now + delay),
            };
        } else {
            self.set_state(CoordinatorState::Resetting);
            self.phase = Phase::Backoff { until: now + delay };
        }
    }
}
