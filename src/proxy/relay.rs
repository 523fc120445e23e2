//! The proxy's sans-IO core, [`Relay`]: two ASH links (UG101) and the EZSP frames (UG100)
//! between them. Towards the stick it is the host ([`Role::Host`]); towards the upstream stack
//! it is the NCP ([`Role::Ncp`]). Bytes, events and `now` in; bytes, events and deadlines out
//! (quinn's shape, STYLE.md rule 7): the driver feeds [`Relay::handle_stick_input`],
//! [`Relay::handle_upstream_input`] and [`Relay::handle_timeout`], writes
//! [`Relay::poll_stick_transmit`] and [`Relay::poll_upstream_transmit`], and drains
//! [`Relay::poll_event`].
//!
//! **One command at a time.** EZSP is synchronous (UG100 §2: a host sends its next command once
//! the previous one is answered). The relay keeps that towards the stick: it holds one
//! command outstanding and queues the rest, upstream's first (its latency is what the proxy's
//! cost is measured by), then ours. With one command outstanding an upstream frame keeps its
//! own sequence number; ours take numbers upstream is not waiting on, and a callback that would
//! carry a number upstream waits on is renumbered to upstream's last answered one (bellows
//! matches responses by sequence alone).
//!
//! **Upstream owns the network.** Its RST resets the stick; its `version`, configuration,
//! policies, endpoints and `networkInit`/`formNetwork` go to the stick as they are. Just before
//! its first `networkInit` or `formNetwork` after a reset, if none of its endpoints takes the
//! OTA cluster as an input cluster, the relay adds one of its own. A stick that resets by itself
//! (unsolicited RSTACK, ERROR, failed link) is reset and reported upstream as an NCP reset (an
//! unsolicited RSTACK); an upstream that goes away leaves the stick up and our transfers going.
//!
//! What the relay takes for itself is in [`super::ours`]: the OTA cluster, our sends and their
//! delivery reports, the answers to our ZCL requests, the address lookups and network queries.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::frames::{self, FrameView};
use crate::ash::{Link, LinkConfig, LinkEvent, NcpResetCode, Role};
use crate::config::OtaScope;
use crate::coordinator::ezsp::addresses::Addresses;
use crate::coordinator::serial::Backoff;
use crate::coordinator::{
    CoordinatorState, DeliveryOutcome, DeviceTable, IncomingMessage, MessageTag, NetworkInfo, Nwk,
};
use crate::ezsp::EzspVersion;
use crate::ezsp::command::AddEndpoint;
use crate::ezsp::frame::FrameId;

/// How the relay behaves; [`RelayConfig::new`] gives the defaults for real sticks.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Whose OTA cluster traffic is ours.
    pub scope: OtaScope,
    /// The endpoint we add for the OTA server when upstream declares none that takes it.
    pub endpoint: u8,
    /// ASH parameters towards the stick.
    pub stick_link: LinkConfig,
    /// ASH parameters towards upstream (the NCP role).
    pub upstream_link: LinkConfig,
    /// How long the stick may take to answer one command before the next one goes.
    pub command_timeout: Duration,
    /// How long one of our sends may wait for its `messageSentHandler`.
    pub delivery_timeout: Duration,
    /// Delay before reopening a vanished serial port.
    pub backoff: Backoff,
}

impl RelayConfig {
    /// Defaults: the EZSP host's ASH settings towards the stick ([`LinkConfig::host`]), an
    /// NCP's towards upstream ([`LinkConfig::ncp`]), 5 s per command, 30 s per delivery.
    pub fn new(scope: OtaScope, endpoint: u8) -> Self {
        RelayConfig {
            scope,
            endpoint,
            stick_link: LinkConfig::host(),
            upstream_link: LinkConfig::ncp(),
            command_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(30),
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
        }
    }
}

/// What happened, for the driver and the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// Open the stick's serial port, then call [`Relay::stick_opened`] or [`Relay::stick_lost`].
    OpenStick,
    /// The coordinator state as the daemon sees it.
    StateChanged(CoordinatorState),
    /// A message for zigbee-otad (OTA cluster, an answer to our ZCL request).
    Incoming(IncomingMessage),
    /// The outcome of one of our sends.
    Delivery {
        /// Its tag.
        tag: MessageTag,
        /// How it went.
        outcome: DeliveryOutcome,
    },
    /// A device joined or announced itself.
    DeviceJoined {
        /// Its network address.
        nwk: Nwk,
        /// Its IEEE address.
        ieee: crate::coordinator::Ieee,
    },
    /// The device table changed (save it).
    DeviceTableChanged,
}

/// Counters, for tests, benches and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// EZSP frames received from upstream.
    pub from_upstream: u64,
    /// EZSP frames received from the stick.
    pub from_stick: u64,
    /// Upstream frames written to the stick.
    pub upstream_to_stick: u64,
    /// Stick frames passed to upstream.
    pub stick_to_upstream: u64,
    /// Stick frames for upstream dropped because no upstream was connected.
    pub dropped_without_upstream: u64,
    /// Incoming OTA cluster messages answered by us.
    pub ota_intercepted: u64,
    /// Upstream's OTA sends to our devices, dropped.
    pub upstream_ota_dropped: u64,
    /// Delivery reports of our sends, kept from upstream.
    pub reports_kept: u64,
    /// Answers to our ZCL requests, kept from upstream.
    pub answers_kept: u64,
    /// Commands of ours written to the stick.
    pub our_commands: u64,
}

/// Why one of our commands went to the stick, so its answer finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A `sendUnicast`/`sendBroadcast` with this EZSP message tag.
    Send { ezsp_tag: u16 },
    /// `lookupEui64ByNodeId` for a sender whose OTA messages are held.
    Lookup(Nwk),
    /// Our OTA endpoint.
    AddEndpoint,
    /// One of the network queries after `NETWORK_UP`.
    Query(FrameId),
    /// `permitJoining`.
    PermitJoining,
}

/// A frame waiting for the stick.
#[derive(Debug, Clone)]
pub(super) enum Job {
    Upstream(Vec<u8>),
    Ours { frame: Vec<u8>, purpose: Purpose },
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    sequence: u8,
    /// `None`: upstream's.
    purpose: Option<Purpose>,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StickPhase {
    NoPort { reopen_at: Option<Instant> },
    Resetting,
    Connected,
}

/// The relay. See the module docs.
#[derive(Debug)]
pub struct Relay {
    pub(super) config: RelayConfig,
    stick: Link,
    stick_phase: StickPhase,
    upstream: Option<Link>,
    /// The next stick RSTACK is a reset upstream did not ask for: tell it.
    tell_upstream: bool,
    pub(super) version: Option<EzspVersion>,
    /// Our endpoint and the upstream frame held behind it: before everything else.
    pub(super) preface: VecDeque<Job>,
    upstream_queue: VecDeque<Vec<u8>>,
    pub(super) our_queue: VecDeque<Job>,
    outstanding: Option<Outstanding>,
    next_our_sequence: u8,
    /// The sequence of upstream's last command answered by the stick.
    last_upstream_answered: Option<u8>,
    /// Upstream's endpoints since the last stick reset.
    pub(super) upstream_endpoints: Vec<AddEndpoint>,
    /// Whether the endpoint decision was taken since the last stick reset.
    pub(super) endpoint_decided: bool,
    /// The endpoint that serves the OTA cluster (upstream's or ours), once known.
    pub(super) ota_endpoint: Option<u8>,
    /// Our sends waiting for their `messageSentHandler`: EZSP tag → (tag, deadline).
    pub(super) in_flight: HashMap<u16, (MessageTag, Instant)>,
    /// Upstream's sends waiting for theirs: tag on the stick → upstream's own tag.
    pub(super) upstream_tags: HashMap<u16, u16>,
    pub(super) next_ezsp_tag: u16,
    /// Our ZCL requests waiting for their answer.
    pub(super) zcl_requests: Vec<super::ours::PendingZcl>,
    /// ZCL transaction numbers upstream used lately, per destination.
    pub(super) upstream_tsns: HashMap<Nwk, VecDeque<u8>>,
    /// OTA messages held while their sender's IEEE address is looked up.
    pub(super) held: HashMap<Nwk, Vec<(Vec<u8>, IncomingMessage)>>,
    /// The device table, as joins, announces and senders teach it.
    pub(super) addresses: Addresses,
    pub(super) state: CoordinatorState,
    pub(super) network: Option<NetworkInfo>,
    pub(super) max_payload: Option<usize>,
    pub(super) network_query: super::network::NetworkQuery,
    backoff: Backoff,
    pub(super) stats: RelayStats,
    events: VecDeque<RelayEvent>,
}

impl Relay {
    /// A relay without a stick port (its first event is [`RelayEvent::OpenStick`]) and without
    /// upstream. `devices` is the device table kept from earlier runs.
    pub fn new(config: RelayConfig, devices: DeviceTable) -> Result<Self, crate::ash::LinkError> {
        let stick = Link::new(Role::Host, config.stick_link.clone())?;
        // Checked once here, so later upstream links cannot fail to build.
        Link::new(Role::Ncp, config.upstream_link.clone())?;
        let mut relay = Relay {
            stick,
            stick_phase: StickPhase::NoPort { reopen_at: None },
            upstream: None,
            tell_upstream: false,
            version: None,
            preface: VecDeque::new(),
            upstream_queue: VecDeque::new(),
            our_queue: VecDeque::new(),
            outstanding: None,
            next_our_sequence: 0x80,
            last_upstream_answered: None,
            upstream_endpoints: Vec::new(),
            endpoint_decided: false,
            ota_endpoint: None,
            in_flight: HashMap::new(),
            upstream_tags: HashMap::new(),
            next_ezsp_tag: 0xC0,
            zcl_requests: Vec::new(),
            upstream_tsns: HashMap::new(),
            held: HashMap::new(),
            addresses: Addresses::new(devices),
            state: CoordinatorState::Starting,
            network: None,
            max_payload: None,
            network_query: Default::default(),
            backoff: config.backoff.clone(),
            stats: RelayStats::default(),
            events: VecDeque::new(),
            config,
        };
        relay.emit(RelayEvent::StateChanged(CoordinatorState::Starting));
        relay.emit(RelayEvent::OpenStick);
        Ok(relay)
    }

    /// The coordinator state.
    pub fn state(&self) -> CoordinatorState {
        self.state
    }

    /// The EZSP version upstream negotiated with the stick.
    pub fn version(&self) -> Option<EzspVersion> {
        self.version
    }

    /// The network, once it is up and queried.
    pub fn network_info(&self) -> Option<NetworkInfo> {
        self.network
    }

    /// The stick's largest APS payload, while up.
    pub fn max_payload(&self) -> Option<usize> {
        self.max_payload
    }

    /// The device table.
    pub fn devices(&self) -> &DeviceTable {
        self.addresses.devices()
    }

    /// The counters.
    pub fn stats(&self) -> RelayStats {
        self.stats
    }

    /// True while an upstream connection is open.
    pub fn has_upstream(&self) -> bool {
        self.upstream.is_some()
    }

    /// The endpoint that serves the OTA cluster, once upstream's start-up showed it.
    pub fn ota_endpoint(&self) -> Option<u8> {
        self.ota_endpoint
    }

    // -----------------------------------------------------------------------------------------
    // The stick's port

    /// The driver opened the stick's port: the ASH reset goes out, and upstream (if any) will
    /// be told of the reset once the stick answers.
    pub fn stick_opened(&mut self, now: Instant) {
        if !matches!(self.stick_phase, StickPhase::NoPort { .. }) {
            return;
        }
        if let Ok(link) = Link::new(Role::Host, self.config.stick_link.clone()) {
            self.stick = link;
        }
        self.stick_phase = StickPhase::Resetting;
        self.stick.reset(now);
        self.tell_upstream = true;
        self.set_state(CoordinatorState::Resetting);
    }

    /// The driver lost the stick's port (or could not open it): everything of ours in flight is
    /// lost, upstream gets an ASH ERROR, and [`RelayEvent::OpenStick`] follows after a backoff.
    pub fn stick_lost(&mut self, reason: &str, now: Instant) {
        if matches!(self.stick_phase, StickPhase::NoPort { .. }) {
            return;
        }
        warn!("stick port lost: {reason}");
        self.lose_everything();
        self.stick_phase = StickPhase::NoPort {
            reopen_at: Some(now + self.backoff.next_delay()),
        };
        if let Some(upstream) = self.upstream.as_mut() {
            upstream.send_error(NcpResetCode::ERROR_EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT);
        }
        self.set_state(CoordinatorState::Disconnected);
    }

    /// Bytes read from the stick.
    pub fn handle_stick_input(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.stick_phase, StickPhase::NoPort { .. }) {
            return;
        }
        self.stick.handle_input(bytes, now);
        self.drive(now);
    }

    /// What to write to the stick now (everything due, in one write).
    pub fn poll_stick_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if matches!(self.stick_phase, StickPhase::NoPort { .. }) {
            return None;
        }
        let mut out = Vec::new();
        while let Some(bytes) = self.stick.poll_transmit(now) {
            out.extend_from_slice(&bytes);
        }
        (!out.is_empty()).then_some(out)
    }

    // -----------------------------------------------------------------------------------------
    // Upstream's connection

    /// An upstream stack connected; it starts with an ASH RST. A connection already open is
    /// replaced (the driver accepts one at a time).
    pub fn upstream_connected(&mut self, now: Instant) {
        self.upstream_disconnected(now);
        if let Ok(link) = Link::new(Role::Ncp, self.config.upstream_link.clone()) {
            info!("upstream connected");
            self.upstream = Some(link);
        }
    }

    /// Upstream went away: its queued frames are dropped; the stick stays up and our own
    /// transfers carry on.
    pub fn upstream_disconnected(&mut self, _now: Instant) {
        if self.upstream.take().is_some() {
            info!("upstream disconnected; the stick stays up");
        }
        self.upstream_queue.clear();
        self.preface.retain(|job| matches!(job, Job::Ours { .. }));
    }

    /// Bytes read from upstream.
    pub fn handle_upstream_input(&mut self, bytes: &[u8], now: Instant) {
        let Some(upstream) = self.upstream.as_mut() else {
            return;
        };
        upstream.handle_input(bytes, now);
        self.drive(now);
    }

    /// What to write to upstream now.
    pub fn poll_upstream_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let upstream = self.upstream.as_mut()?;
        let mut out = Vec::new();
        while let Some(bytes) = upstream.poll_transmit(now) {
            out.extend_from_slice(&bytes);
        }
        (!out.is_empty()).then_some(out)
    }

    // -----------------------------------------------------------------------------------------
    // Time and events

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let StickPhase::NoPort {
            reopen_at: Some(at),
        } = self.stick_phase
            && now >= at
        {
            self.stick_phase = StickPhase::NoPort { reopen_at: None };
            self.emit(RelayEvent::OpenStick);
        }
        if !matches!(self.stick_phase, StickPhase::NoPort { .. }) {
            self.stick.handle_timeout(now);
        }
        if let Some(upstream) = self.upstream.as_mut() {
            upstream.handle_timeout(now);
        }
        if let Some(out) = self.outstanding
            && now >= out.deadline
        {
            self.outstanding = None;
            match out.purpose {
                Some(purpose) => self.unanswered(purpose),
                None => debug!(
                    "the stick did not answer upstream's command {}",
                    out.sequence
                ),
            }
        }
        self.expire(now);
        self.drive(now);
    }

    /// When [`Relay::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reopen = match self.stick_phase {
            StickPhase::NoPort { reopen_at } => reopen_at,
            _ => self.stick.poll_timeout(),
        };
        [
            reopen,
            self.upstream.as_ref().and_then(Link::poll_timeout),
            self.outstanding.map(|o| o.deadline),
            self.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    pub(super) fn emit(&mut self, event: RelayEvent) {
        self.events.push_back(event);
    }

    pub(super) fn set_state(&mut self, state: CoordinatorState) {
        if self.state != state {
            self.state = state;
            self.emit(RelayEvent::StateChanged(state));
        }
    }

    /// Moves link events through until nothing moves, then sends what can go.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(event) = self.stick.poll_event() {
                moved = true;
                self.stick_event(event, now);
            }
            while let Some(event) = self.upstream.as_mut().and_then(Link::poll_event) {
                moved = true;
                self.upstream_event(event, now);
            }
            self.pump(now);
            if !moved {
                return;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Upstream → stick

    fn upstream_event(&mut self, event: LinkEvent, now: Instant) {
        match event {
            LinkEvent::Connected { .. } => {
                info!("upstream reset the stick (ASH RST)");
                self.upstream_queue.clear();
                self.preface.clear();
                self.reset_stick(now, false);
            }
            LinkEvent::Received(frame) => self.upstream_frame(frame, now),
            other => debug!("upstream link: {other:?}"),
        }
    }

    fn upstream_frame(&mut self, mut frame: Vec<u8>, now: Instant) {
        self.stats.from_upstream += 1;
        let view = match FrameView::parse(&frame) {
            Ok(view) => view,
            Err(e) => {
                debug!("upstream frame passed on unread: {e}");
                self.upstream_queue.push_back(frame);
                return;
            }
        };
        if view.is_response() {
            debug!(
                "upstream sent an NCP-to-host frame {:?}; dropped",
                view.frame_id
            );
            return;
        }
        if let Some(version) = self.version
            && view.shape == frames::Shape::Extended
        {
            match view.frame_id {
                FrameId::SEND_UNICAST | FrameId::SEND_BROADCAST => {
                    let answered = self.upstream_send(&view, &mut frame, version, now);
                    if answered {
                        return;
                    }
                }
                FrameId::ADD_ENDPOINT => {
                    if let Ok(endpoint) = AddEndpoint::decode(version, view.parameters(&frame)) {
                        self.upstream_endpoints.push(endpoint);
                    }
                }
                FrameId::NETWORK_INIT | FrameId::FORM_NETWORK if !self.endpoint_decided => {
                    self.endpoint_decided = true;
                    if self.add_our_endpoint(version) {
                        // Upstream's frame waits behind our endpoint.
                        self.preface.push_back(Job::Upstream(frame));
                        return;
                    }
                }
                _ => {}
            }
        }
        self.upstream_queue.push_back(frame);
    }

    /// Answers an upstream command ourselves (the stick never sees it).
    pub(super) fn answer_upstream(&mut self, frame: Vec<u8>) {
        self.send_upstream(frame);
    }

    // -----------------------------------------------------------------------------------------
    // The stick

    /// Resets the stick (upstream's RST, or a stick in trouble); `tell_upstream`: report the
    /// reset upstream once the stick is back.
    fn reset_stick(&mut self, now: Instant, tell_upstream: bool) {
        self.lose_everything();
        self.tell_upstream = tell_upstream;
        if matches!(self.stick_phase, StickPhase::NoPort { .. }) {
            return;
        }
        self.stick_phase = StickPhase::Resetting;
        self.stick.reset(now);
        self.set_state(CoordinatorState::Resetting);
    }

    /// The stick restarted: nothing it was doing survives. Our sends are reported lost.
    fn lose_everything(&mut self) {
        self.outstanding = None;
        self.version = None;
        self.upstream_endpoints.clear();
        self.endpoint_decided = false;
        self.ota_endpoint = None;
        self.our_queue.clear();
        self.preface.retain(|job| matches!(job, Job::Upstream(_)));
        self.upstream_tags.clear();
        self.lose_our_sends();
        self.network_down();
    }

    fn stick_event(&mut self, event: LinkEvent, now: Instant) {
        match event {
            LinkEvent::Connected { reset_code } => {
                debug!("stick connected, reset code {reset_code:?}");
                self.stick_phase = StickPhase::Connected;
                self.backoff.reset();
                if std::mem::take(&mut self.tell_upstream) {
                    self.tell_upstream_of_reset(now);
                }
                self.set_state(CoordinatorState::Starting);
            }
            LinkEvent::Reset { reset_code, .. } => {
                info!("the stick reset by itself ({reset_code:?}); upstream is told");
                self.lose_everything();
                self.stick_phase = StickPhase::Connected;
                self.tell_upstream_of_reset(now);
                self.set_state(CoordinatorState::Starting);
            }
            LinkEvent::NcpError { code } => {
                warn!("the stick reported ASH ERROR {code:?}; resetting it");
                self.reset_stick(now, true);
            }
            LinkEvent::Failed { reason } => {
                warn!("the stick's ASH link failed ({reason:?}); resetting it");
                self.reset_stick(now, true);
            }
            LinkEvent::Received(frame) => self.stick_frame(frame, now),
        }
    }

    /// Upstream sees the stick's reset as an unsolicited RSTACK.
    fn tell_upstream_of_reset(&mut self, now: Instant) {
        self.upstream_queue.clear();
        if let Some(upstream) = self.upstream.as_mut() {
            upstream.reset(now);
        }
    }

    fn stick_frame(&mut self, frame: Vec<u8>, now: Instant) {
        self.stats.from_stick += 1;
        let view = match FrameView::parse(&frame) {
            Ok(view) => view,
            Err(e) => {
                debug!("stick frame passed on unread: {e}");
                self.send_upstream(frame);
                return;
            }
        };
        if !view.is_response() {
            debug!(
                "the stick sent a host-to-NCP frame {:?}; dropped",
                view.frame_id
            );
            return;
        }
        if view.is_callback() {
            self.callback(&view, frame, now);
            return;
        }
        match self.outstanding {
            Some(out) if out.sequence == view.sequence => {
                self.outstanding = None;
                match out.purpose {
                    None => {
                        self.last_upstream_answered = Some(view.sequence);
                        if let Some(version) = frames::announced_version(&view, &frame) {
                            if self.version != Some(version) {
                                info!("upstream and the stick speak EZSP {version}");
                            }
                            self.version = Some(version);
                        }
                        self.send_upstream(frame);
                    }
                    Some(purpose) => self.our_response(purpose, &view, &frame, now),
                }
            }
            _ if Some(view.sequence) == self.last_upstream_answered => {
                debug!("a late response {} passed upstream", view.sequence);
                self.send_upstream(frame);
            }
            _ => debug!(
                "response {} answers nothing outstanding; dropped",
                view.sequence
            ),
        }
    }

    /// A callback from the stick, after [`super::ours`] had its look: passed upstream unless
    /// it is ours.
    pub(super) fn pass_callback_upstream(&mut self, mut frame: Vec<u8>) {
        // bellows takes any frame with a sequence it waits on for the response: a callback
        // must not carry one (the stick reuses the last command's, which may be ours).
        let awaited = self
            .outstanding
            .filter(|o| o.purpose.is_none())
            .map(|o| o.sequence);
        let queued: Vec<u8> = self
            .upstream_queue
            .iter()
            .filter_map(|f| f.first().copied())
            .collect();
        let sequence = frame.first().copied();
        if let Some(sequence) = sequence
            && (Some(sequence) == awaited || queued.contains(&sequence))
            && let Some(answered) = self.last_upstream_answered
        {
            frames::write_sequence(&mut frame, answered);
        }
        self.send_upstream(frame);
    }

    fn send_upstream(&mut self, frame: Vec<u8>) {
        match self.upstream.as_mut() {
            Some(upstream) => match upstream.send(frame) {
                Ok(()) => self.stats.stick_to_upstream += 1,
                Err(e) => {
                    self.stats.dropped_without_upstream += 1;
                    debug!("frame for upstream dropped: {e}");
                }
            },
            None => self.stats.dropped_without_upstream += 1,
        }
    }

    /// Sends the next waiting frame when the stick has nothing outstanding.
    fn pump(&mut self, now: Instant) {
        if self.stick_phase != StickPhase::Connected || self.outstanding.is_some() {
            return;
        }
        let job = match self.preface.front() {
            Some(_) => self.preface.pop_front(),
            None => match self.upstream_queue.pop_front() {
                Some(frame) => Some(Job::Upstream(frame)),
                None if self.version.is_some() => self.our_queue.pop_front(),
                None => None,
            },
        };
        let Some(job) = job else { return };
        let (frame, purpose) = match job {
            Job::Upstream(frame) => {
                self.stats.upstream_to_stick += 1;
                (frame, None)
            }
            Job::Ours { mut frame, purpose } => {
                self.stats.our_commands += 1;
                frames::write_sequence(&mut frame, self.our_sequence());
                (frame, Some(purpose))
            }
        };
        let Some(&sequence) = frame.first() else {
            return;
        };
        if let Err(e) = self.stick.send(frame) {
            warn!("frame for the stick dropped: {e}");
            if let Some(purpose) = purpose {
                self.unanswered(purpose);
            }
            return;
        }
        self.outstanding = Some(Outstanding {
            sequence,
            purpose,
            deadline: now + self.config.command_timeout,
        });
    }

    /// A sequence number for our command that upstream neither waits on nor is about to use.
    fn our_sequence(&mut self) -> u8 {
        loop {
            let candidate = self.next_our_sequence;
            self.next_our_sequence = candidate.wrapping_add(1);
            let near_upstream = self
                .last_upstream_answered
                .is_some_and(|s| candidate.wrapping_sub(s) <= 2);
            if !near_upstream {
                return candidate;
            }
        }
    }
}
