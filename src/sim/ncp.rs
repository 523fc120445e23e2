//! A simulated Silicon Labs NCP, sans-IO: the ASH link in the NCP role ([`crate::ash::Link`],
//! UG101) carrying EZSP (UG100) in a chosen protocol version, a Zigbee network that is resumed
//! or formed, the host's endpoints (forgotten on every reset, like a real NCP), and simulated OTA
//! client devices ([`SimDevice`]) reached over a radio with a delay.
//!
//! What it answers: `version` (legacy and extended headers), configuration values, values
//! (`VERSION_INFO`), policies, `addEndpoint` (refused once the network is up),
//! `networkInit` (`NOT_JOINED` until a network was formed), `networkState`,
//! `setInitialSecurityState`, `formNetwork`, `permitJoining`, `getNetworkParameters`,
//! `getEui64`, `getNodeId`, `maximumPayloadLength`, `sendUnicast`, `sendBroadcast`, the address
//! lookups and `nop`; the frames other hosts (bellows/zigpy, zigbee-herdsman) send for keys,
//! tokens, multicast, source routing, scans and the child and address tables are answered by
//! [`super::stack`]; any other frame gets `invalidCommand`, as on a real NCP. Callbacks: `stackStatusHandler`,
//! `incomingMessageHandler` (a device's message reaches the host only when the host registered
//! an endpoint with that cluster as an input cluster), `messageSentHandler`, and a ZDO device
//! announce per device when the network first comes up.
//!
//! [`Faults`] injects lost and damaged ASH frames both ways, failed, late or missing delivery
//! reports, a full transmit queue, and unsolicited NCP resets (once at a chosen moment, or
//! periodically). [`SimNcp::power_off`] and [`SimNcp::power_on`] model the stick being
//! unplugged and plugged in again: its devices carry on, its stored network survives.
//!
//! ```
//! use std::time::Instant;
//! use zigbee_otad::ash::{Link, LinkConfig, LinkEvent, Role};
//! use zigbee_otad::sim::ncp::{SimNcp, SimNcpConfig};
//! let now = Instant::now();
//! let mut ncp = SimNcp::new(SimNcpConfig::default(), Vec::new()).unwrap();
//! let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
//! host.reset(now);
//! while let Some(bytes) = host.poll_transmit(now) { ncp.handle_input(&bytes, now); }
//! while let Some(bytes) = ncp.poll_transmit(now) { host.handle_input(&bytes, now); }
//! assert!(matches!(host.poll_event(), Some(LinkEvent::Connected { .. })));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::device::SimDevice;
use super::faults::{Faults, SplitMix64};
use super::radio::{Framing, Radio, SelfResets, through_line};
use super::stack::{StackEffect, StackTables, StackView};
use crate::ash::{Link, LinkConfig, LinkError, LinkEvent, Role};
use crate::ezsp::command::{
    AddEndpoint, Body, Callback, Command, Frame, GetConfigurationValueResponse,
    GetNetworkParametersResponse, GetValueResponse, IncomingMessageHandler,
    LookupEui64ByNodeIdResponse, LookupNodeIdByEui64Response, MessageSentHandler, Response,
    SendResponse, VersionResponse,
};
use crate::ezsp::frame::{FrameFormat, FrameHeader, FrameId};
use crate::ezsp::status::{EmberStatus, EzspStatus, SlStatus, Status};
use crate::ezsp::types::{
    ApsFrame, ApsOptions, ConfigId, DeviceAnnounce, IncomingMessageType, NetworkParameters,
    NetworkStatus, NodeType, OutgoingMessageType, ValueId,
};
use crate::ezsp::{EzspVersion, UnsupportedVersion};
use crate::zigbee::{Ieee, Nwk, PROFILE_HOME_AUTOMATION};

mod answer;
mod radio;

/// ASH frames are at most this long on the wire (stuffed); longer input is a broken frame.
const MAX_WIRE_FRAME: usize = 512;
/// How long the NCP takes to give up on a node it has no route to.
const NO_ROUTE_DELAY: Duration = Duration::from_millis(40);
/// How long the NCP takes to send a broadcast.
const BROADCAST_DELAY: Duration = Duration::from_millis(5);
/// How long after `networkInit`/`formNetwork` the network comes up.
const NETWORK_UP_DELAY: Duration = Duration::from_millis(20);

/// How the simulated NCP presents itself.
#[derive(Debug, Clone)]
pub struct SimNcpConfig {
    /// The EZSP protocol version it speaks (8..=17).
    pub ezsp_version: u8,
    /// Its EUI-64.
    pub ieee: Ieee,
    /// The largest APS payload it reports (`maximumPayloadLength`).
    pub max_aps_payload: u8,
    /// ASH parameters of its side of the link.
    pub link: LinkConfig,
    /// The network it holds at power-on (`None`: the host must form one; see
    /// [`SimNcpConfig::holding_network`]).
    pub network: Option<NetworkParameters>,
    /// The key of the network it holds (replaced by the host's `setInitialSecurityState`).
    pub network_key: [u8; 16],
    /// Whether each device announces itself (ZDO Device_annce) when the network first comes
    /// up; without it a v13 host learns IEEE addresses only by asking (`lookupEui64ByNodeId`).
    pub announce_devices: bool,
    /// What goes wrong.
    pub faults: Faults,
}

impl Default for SimNcpConfig {
    /// EZSP v13, no network held, 82-byte APS payload, devices announce, no faults; the ASH
    /// values of a real NCP ([`LinkConfig::ncp`]: window 5, UG101 timers).
    fn default() -> Self {
        SimNcpConfig {
            ezsp_version: 13,
            ieee: Ieee(0x00_0D_6F_FF_FE_00_00_01),
            max_aps_payload: 82,
            link: LinkConfig::ncp(),
            network: None,
            network_key: DEFAULT_NETWORK_KEY,
            announce_devices: true,
            faults: Faults::default(),
        }
    }
}

/// The key of the network a simulated stick holds by default: Zigbee2MQTT's default
/// `network_key`, so a host configured with its defaults resumes the network as it is.
pub const DEFAULT_NETWORK_KEY: [u8; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13];

impl SimNcpConfig {
    /// This configuration with a formed network held in NVM, as a stick that has been in use:
    /// PAN 0x1A62, extended PAN `DD:DD:DD:DD:DD:DD:DD:DD`, channel 11, key
    /// [`DEFAULT_NETWORK_KEY`] (Zigbee2MQTT's defaults).
    pub fn holding_network(mut self) -> Self {
        self.network = Some(default_network());
        self.network_key = DEFAULT_NETWORK_KEY;
        self
    }
}

/// The network [`SimNcpConfig::holding_network`] stores.
pub fn default_network() -> NetworkParameters {
    NetworkParameters {
        extended_pan_id: Ieee::from_le_bytes([0xDD; 8]),
        pan_id: 0x1A62,
        radio_tx_power: 5,
        radio_channel: 11,
        join_method: crate::ezsp::types::JoinMethod::USE_MAC_ASSOCIATION,
        nwk_manager_id: Nwk::COORDINATOR,
        nwk_update_id: 0,
        channels: 1 << 11,
    }
}

pub use super::radio::SimEvent;

/// Something of the NCP's own that happens at a given time ([`Radio::schedule`]).
#[derive(Debug, Clone)]
enum Scheduled {
    /// The stack reports the network up.
    NetworkUp,
    /// The stack reports the network down (after `leaveNetwork`).
    NetworkDown,
    /// A callback from the stack tables (scan results, ...).
    Callback {
        frame_id: FrameId,
        parameters: Vec<u8>,
    },
    /// The NCP's own ZDO answers a request the host sent to node 0x0000.
    FromOwnZdo { cluster: u16, payload: Vec<u8> },
    /// The delivery report of a send.
    MessageSent {
        message_type: OutgoingMessageType,
        destination: Nwk,
        aps_frame: ApsFrame,
        message_tag: u16,
        delivered: bool,
        unicast: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Negotiation {
    /// Nothing since the last reset.
    None,
    /// The host asked for our version (in the legacy or the extended header).
    Answered,
}

/// The simulated NCP. See the module docs.
#[derive(Debug)]
pub struct SimNcp {
    config: SimNcpConfig,
    version: EzspVersion,
    link: Link,
    rng: SplitMix64,
    /// Host bytes since the last flag (so faults apply per frame).
    rx_frame: Vec<u8>,
    /// EZSP frames waiting for room in the ASH send queue.
    tx_backlog: VecDeque<Vec<u8>>,
    negotiation: Negotiation,
    last_sequence: u8,
    configuration: Vec<(ConfigId, u16)>,
    endpoints: Vec<AddEndpoint>,
    stored_network: Option<NetworkParameters>,
    network_up: bool,
    /// The devices and what is on the air.
    radio: Radio<Scheduled>,
    next_aps_sequence: u8,
    resets: SelfResets,
    /// False while unplugged: no serial line, no stack; the devices keep going.
    powered: bool,
    events: VecDeque<SimEvent>,
    /// Keys, tokens, multicast, concentrator, ... ([`StackTables`]).
    stack: StackTables,
    /// Values the host set (`setValue`), answered by `getValue`.
    values: Vec<(ValueId, Vec<u8>)>,
}

impl SimNcp {
    /// A powered-on NCP with `devices` on its network.
    pub fn new(config: SimNcpConfig, devices: Vec<SimDevice>) -> Result<Self, SimNcpError> {
        let version = EzspVersion::new(config.ezsp_version)?;
        let link = Link::new(Role::Ncp, config.link.clone())?;
        Ok(SimNcp {
            rng: SplitMix64::new(config.faults.seed),
            stored_network: config.network,
            version,
            link,
            rx_frame: Vec::new(),
            tx_backlog: VecDeque::new(),
            negotiation: Negotiation::None,
            last_sequence: 0,
            configuration: Vec::new(),
            endpoints: Vec::new(),
            network_up: false,
            radio: Radio::new(devices),
            next_aps_sequence: 0,
            resets: SelfResets::default(),
            powered: true,
            events: VecDeque::new(),
            stack: StackTables::new(config.network_key),
            values: Vec::new(),
            config,
        })
    }

    /// The EZSP version it speaks.
    pub fn version(&self) -> EzspVersion {
        self.version
    }

    /// The simulated devices.
    pub fn devices(&self) -> &[SimDevice] {
        self.radio.devices()
    }

    /// The endpoints registered since the last reset.
    pub fn endpoints(&self) -> &[AddEndpoint] {
        &self.endpoints
    }

    /// True while the network is up.
    pub fn network_up(&self) -> bool {
        self.network_up
    }

    /// True unless unplugged ([`SimNcp::power_off`]).
    pub fn powered(&self) -> bool {
        self.powered
    }

    /// Bytes read from the serial port.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if !self.powered {
            return;
        }
        for &byte in bytes {
            self.rx_frame.push(byte);
            if byte == crate::ash::frame::FLAG || self.rx_frame.len() >= MAX_WIRE_FRAME {
                let frame = std::mem::take(&mut self.rx_frame);
                let faults = &self.config.faults;
                let line = (faults.drop_from_host, faults.corrupt_from_host);
                if let Some(damaged) = through_line(&mut self.rng, line, frame, ASH_FRAMING) {
                    self.link.handle_input(&damaged, now);
                }
            }
        }
        self.process_link_events(now);
    }

    /// Fires what is due: link timers, radio deliveries, delivery reports, device timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.powered {
            self.link.handle_timeout(now);
            self.process_link_events(now);
        }
        while let Some(due) = self.radio.pop_due(now, &mut self.events) {
            self.run_scheduled(due, now);
        }
        self.radio.run_device_timers(now, &mut self.events);
        self.maybe_reset_by_itself(now);
    }

    /// Bytes to write to the serial port.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.powered {
            return None;
        }
        self.feed_link();
        loop {
            let bytes = self.link.poll_transmit(now)?;
            let faults = &self.config.faults;
            let line = (faults.drop_to_host, faults.corrupt_to_host);
            if let Some(bytes) = through_line(&mut self.rng, line, bytes, ASH_FRAMING) {
                return Some(bytes);
            }
        }
    }

    /// When [`SimNcp::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let link = self.link.poll_timeout().filter(|_| self.powered);
        // A periodic reset waits for a quiet line; until then the link's own timers and input
        // wake the NCP (a deadline already past would spin).
        let periodic_reset = self
            .resets
            .periodic_due(&self.config.faults, self.powered)
            .filter(|_| self.line_quiet());
        [link, self.radio.poll_timeout(), periodic_reset]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SimEvent> {
        self.events.pop_front()
    }

    /// Reboots now, as after a watchdog reset: an unsolicited RSTACK, endpoints and network
    /// state forgotten (the stored network is kept), everything in flight lost.
    pub fn reset(&mut self, now: Instant) {
        self.reboot_state();
        self.resets.rebooted(now);
        self.link.reset(now);
        if self.config.faults.silent_reset {
            while self.link.poll_transmit(now).is_some() {}
        }
        self.events.push_back(SimEvent::Reset { unsolicited: true });
    }

    /// The stick is unplugged: the NCP loses power with everything it was sending, receiving
    /// and reporting. The devices keep running (and get no answers); what they send meanwhile
    /// is lost. Only its stored network (NVM) survives.
    pub fn power_off(&mut self) {
        self.reboot_state();
        self.rx_frame.clear();
        self.powered = false;
    }

    /// The stick is plugged in again: the NCP boots as after a reset, with the network it had
    /// stored. Its power-on RSTACK is lost (no host has the new port open yet), so nothing is
    /// sent until the host's RST.
    pub fn power_on(&mut self, now: Instant) {
        self.reboot_state();
        self.powered = true;
        self.resets.rebooted(now);
        self.link.reset(now);
        while self.link.poll_transmit(now).is_some() {}
        while self.link.poll_event().is_some() {}
    }

    fn reboot_state(&mut self) {
        self.negotiation = Negotiation::None;
        self.configuration.clear();
        self.endpoints.clear();
        self.network_up = false;
        self.tx_backlog.clear();
        self.radio.forget_all_but_the_air();
    }

    fn maybe_reset_by_itself(&mut self, now: Instant) {
        if !self.powered || !self.line_quiet() {
            return;
        }
        for _ in 0..self.resets.due_now(&self.config.faults, now) {
            self.reset(now);
        }
    }

    /// Nothing unacknowledged on the link and nothing waiting for it.
    fn line_quiet(&self) -> bool {
        self.link.unacknowledged() == 0 && self.tx_backlog.is_empty()
    }

    fn process_link_events(&mut self, now: Instant) {
        while let Some(event) = self.link.poll_event() {
            match event {
                LinkEvent::Connected { .. } => {
                    // The host's RST reboots the NCP.
                    self.reboot_state();
                    self.resets.rebooted(now);
                    self.events
                        .push_back(SimEvent::Reset { unsolicited: false });
                }
                LinkEvent::Received(frame) => self.handle_ezsp(&frame, now),
                LinkEvent::Reset { .. } | LinkEvent::NcpError { .. } | LinkEvent::Failed { .. } => {
                    self.reboot_state();
                }
            }
        }
    }

    /// Moves backlogged EZSP frames into the ASH send queue while it has room.
    fn feed_link(&mut self) {
        while let Some(frame) = self.tx_backlog.front() {
            if self.link.send(frame.clone()).is_err() {
                break;
            }
            self.tx_backlog.pop_front();
        }
    }

    fn queue_frame(&mut self, frame: Vec<u8>) {
        if self.tx_backlog.is_empty() && self.link.send(frame.clone()).is_ok() {
            return;
        }
        self.tx_backlog.push_back(frame);
    }
}

/// Why a simulated NCP could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimNcpError {
    /// The EZSP version is outside 8..=17.
    #[error(transparent)]
    Version(#[from] UnsupportedVersion),
    /// The ASH configuration is invalid.
    #[error("ASH link: {0}")]
    Link(#[from] LinkError),
}

/// The EmberZNet release (major, minor, patch) that speaks each protocol version.
fn firmware_version(version: EzspVersion) -> [u8; 3] {
    match version.get() {
        8 => [6, 10, 3],
        9 => [7, 0, 1],
        10 => [7, 1, 0],
        11 => [7, 2, 2],
        12 => [7, 3, 1],
        13 => [7, 4, 4],
        14 => [8, 0, 0],
        15 | 16 => [8, 1, 0],
        _ => [8, 2, 0],
    }
}

/// A plausible stack version for each protocol version (7.4.4.0 for v13, 8.x for v14+).
fn stack_version(version: EzspVersion) -> u16 {
    let [major, minor, patch] = firmware_version(version);
    (u16::from(major) << 12) | (u16::from(minor & 0xF) << 8) | (u16::from(patch & 0xF) << 4)
}

fn empty_network() -> NetworkParameters {
    NetworkParameters {
        extended_pan_id: Ieee::default(),
        pan_id: 0xFFFF,
        radio_tx_power: 0,
        radio_channel: 0,
        join_method: crate::ezsp::types::JoinMethod::USE_MAC_ASSOCIATION,
        nwk_manager_id: Nwk::COORDINATOR,
        nwk_update_id: 0,
        channels: 0,
    }
}

/// A damaged ASH frame keeps its closing flag.
const ASH_FRAMING: Framing = Framing { head: 0, tail: 1 };

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;

    #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
    fn origin() -> Instant {
        Instant::now()
    }

    proptest::proptest! {
        /// Arbitrary bytes from the host, and the timers they start, never panic the NCP.
        #[test]
        fn hostile_host_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..80), 0..40)) {
            let mut config = SimConfig::default();
            config.add_default_devices(1);
            let mut now = origin();
            let mut ncp = SimNcp::new(SimNcpConfig::default(), config.sim_devices(now)).unwrap();
            for chunk in &chunks {
                ncp.handle_input(chunk, now);
                while ncp.poll_transmit(now).is_some() {}
                while ncp.poll_event().is_some() {}
                now += Duration::from_millis(300);
                ncp.handle_timeout(now);
            }
        }

        /// Arbitrary EZSP frames inside valid ASH DATA frames (so they reach the EZSP decoder
        /// and the command handlers) never panic the NCP, before or after negotiation.
        #[test]
        fn hostile_ezsp_frames_never_panic(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..60), 0..30),
            negotiate: bool,
        ) {
            let mut now = origin();
            let mut ncp = SimNcp::new(SimNcpConfig::default(), Vec::new()).unwrap();
            let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
            host.reset(now);
            let exchange = |host: &mut Link, ncp: &mut SimNcp, now: Instant| {
                for _ in 0..4 {
                    while let Some(bytes) = host.poll_transmit(now) {
                        ncp.handle_input(&bytes, now);
                    }
                    while let Some(bytes) = ncp.poll_transmit(now) {
                        host.handle_input(&bytes, now);
                    }
                    while host.poll_event().is_some() {}
                    while ncp.poll_event().is_some() {}
                }
            };
            exchange(&mut host, &mut ncp, now);
            if negotiate {
                let _ = host.send(vec![0, 0, 0, 13]);
            }
            for frame in frames {
                let mut frame = frame;
                // Half the frames get the extended header's format bits, to reach decoders.
                if frame.len() >= 5 && frame[0] % 2 == 0 {
                    frame[1] = 0x00;
                    frame[2] = 0x01;
                }
                let _ = host.send(frame);
                exchange(&mut host, &mut ncp, now);
                now += Duration::from_millis(50);
                host.handle_timeout(now);
                ncp.handle_timeout(now);
            }
        }
    }

    /// Moves bytes both ways until nothing moves; returns the NCP's events.
    fn exchange(host: &mut Link, ncp: &mut SimNcp, now: Instant) -> Vec<SimEvent> {
        let mut events = Vec::new();
        loop {
            let mut moved = false;
            while let Some(bytes) = host.poll_transmit(now) {
                ncp.handle_input(&bytes, now);
                moved = true;
            }
            while let Some(bytes) = ncp.poll_transmit(now) {
                host.handle_input(&bytes, now);
                moved = true;
            }
            while host.poll_event().is_some() {}
            events.extend(std::iter::from_fn(|| ncp.poll_event()));
            if !moved {
                return events;
            }
        }
    }

    fn injected_resets(events: &[SimEvent]) -> usize {
        events
            .iter()
            .filter(|e| **e == SimEvent::Reset { unsolicited: true })
            .count()
    }

    /// `reset_every`: the period runs from the host's RST, then from each reset; a due reset
    /// waits while a frame is unacknowledged and happens as soon as the line is quiet.
    #[test]
    fn resets_every_period_but_never_with_a_frame_unacknowledged() {
        let period = Duration::from_secs(5);
        let config = SimNcpConfig {
            faults: Faults {
                reset_every: Some(period),
                ..Faults::default()
            },
            ..SimNcpConfig::default()
        };
        let mut ncp = SimNcp::new(config, Vec::new()).unwrap();
        let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
        let start = origin();
        // No host yet: no clock to count from, so no deadline and no reset.
        assert_eq!(ncp.poll_timeout(), None);
        ncp.handle_timeout(start + period * 3);
        assert_eq!(injected_resets(&exchange(&mut host, &mut ncp, start)), 0);

        host.reset(start);
        let connected = exchange(&mut host, &mut ncp, start);
        assert!(connected.contains(&SimEvent::Reset { unsolicited: false }));
        assert_eq!(ncp.poll_timeout(), Some(start + period));
        ncp.handle_timeout(start + period - Duration::from_millis(1));
        assert_eq!(injected_resets(&exchange(&mut host, &mut ncp, start)), 0);
        ncp.handle_timeout(start + period);
        assert_eq!(
            injected_resets(&exchange(&mut host, &mut ncp, start + period)),
            1
        );
        assert_eq!(ncp.poll_timeout(), Some(start + period * 2));

        // The host asks for the version; the answer is sent but its ACK held back.
        let asked = start + period * 2 - Duration::from_millis(100);
        host.send(vec![0, 0, 0, 13]).unwrap();
        while let Some(bytes) = host.poll_transmit(asked) {
            ncp.handle_input(&bytes, asked);
        }
        let answer: Vec<Vec<u8>> = std::iter::from_fn(|| ncp.poll_transmit(asked)).collect();
        assert!(!answer.is_empty());
        let overdue = start + period * 2 + Duration::from_millis(50);
        ncp.handle_timeout(overdue);
        assert_eq!(
            injected_resets(&std::iter::from_fn(|| ncp.poll_event()).collect::<Vec<_>>()),
            0
        );
        // The ACK comes: the line is quiet, the overdue reset is due at once.
        for bytes in answer {
            host.handle_input(&bytes, overdue);
        }
        let _ = exchange(&mut host, &mut ncp, overdue);
        assert!(ncp.poll_timeout().is_some_and(|at| at <= overdue));
        ncp.handle_timeout(overdue);
        assert_eq!(injected_resets(&exchange(&mut host, &mut ncp, overdue)), 1);
        assert_eq!(ncp.poll_timeout(), Some(overdue + period));
    }

    /// Unplugged, the NCP hears and says nothing; plugged in again, it has forgotten the
    /// host's endpoints but kept its devices, and waits for the host's RST in silence.
    #[test]
    fn power_cycle_forgets_the_host_but_keeps_the_devices() {
        let mut sim = SimConfig::default();
        sim.add_default_devices(2);
        let start = origin();
        let mut ncp = SimNcp::new(SimNcpConfig::default(), sim.sim_devices(start)).unwrap();
        let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
        host.reset(start);
        let _ = exchange(&mut host, &mut ncp, start);
        host.send(vec![0, 0, 0, 13]).unwrap();
        let _ = exchange(&mut host, &mut ncp, start);

        ncp.power_off();
        assert!(!ncp.powered());
        host.send(vec![1, 0, 0, 13]).unwrap();
        let unplugged: Vec<Vec<u8>> = std::iter::from_fn(|| host.poll_transmit(start)).collect();
        for bytes in &unplugged {
            ncp.handle_input(bytes, start);
        }
        assert_eq!(ncp.poll_transmit(start), None);
        // The devices keep their clocks while the NCP is off.
        let later = start + Duration::from_secs(3);
        ncp.handle_timeout(later);
        assert!(ncp.devices().iter().all(SimDevice::is_busy));

        ncp.power_on(later);
        assert!(ncp.powered());
        assert_eq!(ncp.devices().len(), 2);
        assert!(ncp.endpoints().is_empty());
        assert_eq!(
            ncp.poll_transmit(later),
            None,
            "the power-on RSTACK is lost"
        );
        let mut host = Link::new(Role::Host, LinkConfig::default()).unwrap();
        host.reset(later);
        let events = exchange(&mut host, &mut ncp, later);
        assert!(events.contains(&SimEvent::Reset { unsolicited: false }));
    }
}
