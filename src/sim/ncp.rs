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

use super::device::{DeviceEvent, SimDevice};
use super::faults::{Faults, SplitMix64};
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
use crate::zigbee::{CLUSTER_BASIC, CLUSTER_OTA_UPGRADE, Ieee, Nwk, PROFILE_HOME_AUTOMATION};

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

/// What the simulated NCP reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// A simulated device reported something (an upgrade's end, most importantly).
    Device {
        /// Which device.
        nwk: Nwk,
        /// What.
        event: DeviceEvent,
    },
    /// The host registered an endpoint.
    EndpointRegistered {
        /// The endpoint.
        endpoint: u8,
        /// Its input (server) clusters.
        input_clusters: Vec<u16>,
    },
    /// The NCP rebooted: on the host's RST, or by itself (an injected fault).
    Reset {
        /// True for an injected, unsolicited reset.
        unsolicited: bool,
    },
    /// The network came up.
    NetworkUp,
    /// The network went down (the host left it).
    NetworkDown,
    /// The host opened (or closed, with 0) the network for joining.
    PermitJoining {
        /// Seconds (0xFF: until closed).
        duration: u8,
    },
    /// A device message was handed to the host (queued on the ASH link).
    MessageToHost {
        /// The sender.
        nwk: Nwk,
        /// Its cluster.
        cluster: u16,
        /// The APS payload.
        payload: Vec<u8>,
    },
    /// A unicast or broadcast from the host reached a device.
    MessageToDevice {
        /// The receiver.
        nwk: Nwk,
        /// The APS payload.
        payload: Vec<u8>,
    },
}

/// Something that happens on the simulated radio at a given time.
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
    /// A host message reaches a device.
    ToDevice {
        nwk: Nwk,
        aps_frame: ApsFrame,
        payload: Vec<u8>,
    },
    /// A device's message reaches the NCP.
    FromDevice {
        nwk: Nwk,
        endpoint: u8,
        cluster: u16,
        payload: Vec<u8>,
    },
    /// The NCP's own ZDO answers a request the host sent to node 0x0000.
    FromOwnZdo { cluster: u16, payload: Vec<u8> },
    /// A device's ZDO announce reaches the NCP.
    Announce { nwk: Nwk, ieee: Ieee },
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
    announced: bool,
    devices: Vec<SimDevice>,
    schedule: Vec<(Instant, Scheduled)>,
    pending_unicasts: usize,
    next_aps_sequence: u8,
    messages_to_host: u64,
    reset_done: bool,
    /// When the NCP last rebooted (the host's RST, an injected reset, a power-on); `None`
    /// until the host first connects.
    last_reset: Option<Instant>,
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
            announced: false,
            devices,
            schedule: Vec::new(),
            pending_unicasts: 0,
            next_aps_sequence: 0,
            messages_to_host: 0,
            reset_done: false,
            last_reset: None,
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
        &self.devices
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
                let mut frame = std::mem::take(&mut self.rx_frame);
                let faults = &self.config.faults;
                if self.rng.chance(faults.drop_from_host) {
                    continue;
                }
                if self.rng.chance(faults.corrupt_from_host) {
                    corrupt(&mut frame, &mut self.rng);
                }
                self.link.handle_input(&frame, now);
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
        loop {
            let due = self
                .schedule
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= now)
                .min_by_key(|(_, (at, _))| *at)
                .map(|(index, _)| index);
            let Some(index) = due else { break };
            let (_, item) = self.schedule.swap_remove(index);
            self.run_scheduled(item, now);
        }
        for index in 0..self.devices.len() {
            if let Some(device) = self.devices.get_mut(index)
                && device.poll_timeout().is_some_and(|at| at <= now)
            {
                device.handle_timeout(now);
            }
            self.collect_device_output(index, now);
        }
        self.maybe_reset_by_itself(now);
    }

    /// Bytes to write to the serial port.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.powered {
            return None;
        }
        self.feed_link();
        loop {
            let mut bytes = self.link.poll_transmit(now)?;
            let faults = &self.config.faults;
            if self.rng.chance(faults.drop_to_host) {
                continue;
            }
            if self.rng.chance(faults.corrupt_to_host) {
                corrupt(&mut bytes, &mut self.rng);
            }
            return Some(bytes);
        }
    }

    /// When [`SimNcp::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let scheduled = self.schedule.iter().map(|(at, _)| *at).min();
        let devices = self
            .devices
            .iter()
            .filter_map(SimDevice::poll_timeout)
            .min();
        let link = self.link.poll_timeout().filter(|_| self.powered);
        // A periodic reset waits for a quiet line; until then the link's own timers and input
        // wake the NCP (a deadline already past would spin).
        let periodic_reset = self.periodic_reset_due().filter(|_| self.line_quiet());
        [link, scheduled, devices, periodic_reset]
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
        self.last_reset = Some(now);
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
        self.last_reset = Some(now);
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
        // The radio keeps going, but the NCP forgets what it was sending and reporting.
        self.schedule
            .retain(|(_, item)| matches!(item, Scheduled::ToDevice { .. }));
        self.pending_unicasts = 0;
    }

    fn maybe_reset_by_itself(&mut self, now: Instant) {
        if !self.powered || !self.line_quiet() {
            return;
        }
        if let Some(threshold) = self.config.faults.reset_after_messages
            && !self.reset_done
            && self.messages_to_host >= threshold
        {
            self.reset_done = true;
            self.reset(now);
        }
        if self.periodic_reset_due().is_some_and(|at| at <= now) {
            self.reset(now);
        }
    }

    /// When the next periodic reset ([`Faults::reset_every`]) is due, once the host connected.
    fn periodic_reset_due(&self) -> Option<Instant> {
        let period = self.config.faults.reset_every?;
        self.last_reset
            .filter(|_| self.powered)
            .map(|last| last + period)
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
                    self.last_reset = Some(now);
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

    // -----------------------------------------------------------------------------------------
    // EZSP

    fn handle_ezsp(&mut self, frame: &[u8], now: Instant) {
        if FrameFormat::detect(frame) == FrameFormat::Legacy {
            self.handle_legacy(frame);
            return;
        }
        match Frame::decode(self.version, frame) {
            Ok(Frame {
                header,
                body: Body::Command(command),
            }) => {
                self.last_sequence = header.sequence;
                if let Command::Version(_) = command {
                    self.negotiation = Negotiation::Answered;
                } else if self.negotiation == Negotiation::None {
                    // After a reboot nothing works until the host negotiates again.
                    self.respond_invalid(header.sequence, EzspStatus::ERROR_VERSION_NOT_SET);
                    return;
                }
                // The frame table says in which versions a frame exists; outside them a real
                // NCP does not know the frame id.
                if crate::ezsp::command::frame_versions(command.frame_id())
                    .is_some_and(|versions| !versions.contains(&self.version.get()))
                {
                    self.respond_invalid(header.sequence, EzspStatus::ERROR_INVALID_FRAME_ID);
                    return;
                }
                let response = self.answer(command, now);
                let mut out = Vec::new();
                if response
                    .encode_frame(self.version, header.sequence, &mut out)
                    .is_ok()
                {
                    self.queue_frame(out);
                }
            }
            Ok(_) => {}
            Err(_) => {
                if let Some(&sequence) = frame.first() {
                    self.respond_invalid(sequence, EzspStatus::ERROR_INVALID_FRAME_ID);
                }
            }
        }
    }

    /// The host's first `version`, in the legacy header: answer ours in the same header.
    fn handle_legacy(&mut self, frame: &[u8]) {
        let Ok((header, parameters)) = FrameHeader::decode(FrameFormat::Legacy, frame) else {
            return;
        };
        if header.frame_id != FrameId::VERSION || parameters.is_empty() {
            return;
        }
        self.last_sequence = header.sequence;
        self.negotiation = Negotiation::Answered;
        let mut out = Vec::new();
        self.version_response()
            .encode_legacy_frame(header.sequence, &mut out);
        self.queue_frame(out);
    }

    fn version_response(&self) -> VersionResponse {
        VersionResponse {
            protocol_version: self.version.get(),
            stack_type: 2,
            stack_version: stack_version(self.version),
        }
    }

    fn respond_invalid(&mut self, sequence: u8, status: EzspStatus) {
        let sl = if status == EzspStatus::ERROR_VERSION_NOT_SET {
            SlStatus::INVALID_STATE
        } else {
            SlStatus::INVALID_PARAMETER
        };
        let response = Response::InvalidCommand {
            status: self.ezsp_status(status, sl),
        };
        let mut out = Vec::new();
        if response
            .encode_frame(self.version, sequence, &mut out)
            .is_ok()
        {
            self.queue_frame(out);
        }
    }

    fn ok(&self) -> Status {
        Status::Sl(SlStatus::OK)
    }

    fn ember_status(&self, ember: EmberStatus, sl: SlStatus) -> Status {
        if self.version.uses_sl_status() {
            Status::Sl(sl)
        } else {
            Status::Ember(ember)
        }
    }

    fn ezsp_status(&self, ezsp: EzspStatus, sl: SlStatus) -> Status {
        if self.version.uses_sl_status() {
            Status::Sl(sl)
        } else {
            Status::Ezsp(ezsp)
        }
    }

    fn answer(&mut self, command: Command, now: Instant) -> Response {
        let invalid_call =
            self.ezsp_status(EzspStatus::ERROR_INVALID_CALL, SlStatus::INVALID_STATE);
        match command {
            Command::Version(_) => Response::Version(self.version_response()),
            Command::GetConfigurationValue(get) => {
                let value = self
                    .configuration
                    .iter()
                    .rev()
                    .find(|(id, _)| *id == get.config_id)
                    .map_or(0, |(_, v)| *v);
                Response::GetConfigurationValue(GetConfigurationValueResponse {
                    status: self.ok(),
                    value,
                })
            }
            Command::SetConfigurationValue(set) => {
                if self.network_up {
                    return Response::SetConfigurationValue {
                        status: invalid_call,
                    };
                }
                self.configuration.push((set.config_id, set.value));
                Response::SetConfigurationValue { status: self.ok() }
            }
            Command::GetValue(get) => {
                if let Some((_, value)) =
                    self.values.iter().rev().find(|(id, _)| *id == get.value_id)
                {
                    return Response::GetValue(GetValueResponse {
                        status: self.ok(),
                        value: value.clone(),
                    });
                }
                if get.value_id == ValueId::VERSION_INFO {
                    let build = 0x0100u16.to_le_bytes();
                    let [major, minor, patch] = firmware_version(self.version);
                    Response::GetValue(GetValueResponse {
                        status: self.ok(),
                        value: vec![build[0], build[1], major, minor, patch, 0, 0xAA],
                    })
                } else {
                    Response::GetValue(GetValueResponse {
                        status: self
                            .ezsp_status(EzspStatus::ERROR_INVALID_ID, SlStatus::INVALID_PARAMETER),
                        value: Vec::new(),
                    })
                }
            }
            Command::SetValue(set) => {
                self.stack.set_value(set.value_id.0, &set.value);
                self.values.retain(|(id, _)| *id != set.value_id);
                self.values.push((set.value_id, set.value));
                Response::SetValue { status: self.ok() }
            }
            Command::SetPolicy(_) => Response::SetPolicy { status: self.ok() },
            Command::AddEndpoint(endpoint) => {
                let duplicate = self
                    .endpoints
                    .iter()
                    .any(|e| e.endpoint == endpoint.endpoint);
                if self.network_up || duplicate {
                    return Response::AddEndpoint {
                        status: invalid_call,
                    };
                }
                self.events.push_back(SimEvent::EndpointRegistered {
                    endpoint: endpoint.endpoint,
                    input_clusters: endpoint.input_clusters.clone(),
                });
                self.endpoints.push(endpoint);
                Response::AddEndpoint { status: self.ok() }
            }
            Command::NetworkInit(_) => {
                if self.stored_network.is_some() && !self.network_up {
                    // Up at once for queries; the stack status callback follows.
                    self.network_up = true;
                    self.schedule
                        .push((now + NETWORK_UP_DELAY, Scheduled::NetworkUp));
                    Response::NetworkInit { status: self.ok() }
                } else if self.network_up {
                    Response::NetworkInit {
                        status: self
                            .ember_status(EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
                    }
                } else {
                    Response::NetworkInit {
                        status: self.ember_status(EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED),
                    }
                }
            }
            Command::NetworkState => Response::NetworkState {
                status: if self.network_up {
                    NetworkStatus::JOINED_NETWORK
                } else {
                    NetworkStatus::NO_NETWORK
                },
            },
            Command::SetInitialSecurityState(set) => {
                self.stack.set_initial_security(
                    set.state.network_key.0,
                    set.state.preconfigured_key.0,
                    set.state.network_key_sequence_number,
                );
                Response::SetInitialSecurityState { status: self.ok() }
            }
            Command::FormNetwork(form) => {
                if self.network_up {
                    return Response::FormNetwork {
                        status: self
                            .ember_status(EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
                    };
                }
                self.stored_network = Some(form.parameters);
                self.network_up = true;
                self.schedule
                    .push((now + NETWORK_UP_DELAY, Scheduled::NetworkUp));
                Response::FormNetwork { status: self.ok() }
            }
            Command::PermitJoining(permit) => {
                if !self.network_up {
                    return Response::PermitJoining {
                        status: self
                            .ember_status(EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
                    };
                }
                self.events.push_back(SimEvent::PermitJoining {
                    duration: permit.duration,
                });
                Response::PermitJoining { status: self.ok() }
            }
            Command::GetNetworkParameters => match (self.network_up, self.stored_network) {
                (true, Some(parameters)) => {
                    Response::GetNetworkParameters(GetNetworkParametersResponse {
                        status: self.ok(),
                        node_type: NodeType::COORDINATOR,
                        parameters,
                    })
                }
                _ => Response::GetNetworkParameters(GetNetworkParametersResponse {
                    status: self.ember_status(EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED),
                    node_type: NodeType::UNKNOWN_DEVICE,
                    parameters: empty_network(),
                }),
            },
            Command::GetEui64 => Response::GetEui64 {
                eui64: self.config.ieee,
            },
            Command::GetNodeId => Response::GetNodeId {
                node_id: Nwk::COORDINATOR,
            },
            Command::MaximumPayloadLength => Response::MaximumPayloadLength {
                aps_length: self.config.max_aps_payload,
            },
            Command::SendUnicast(send) => {
                let status = self.accept_unicast(
                    send.message_type,
                    send.index_or_destination,
                    send.aps_frame,
                    send.message_tag,
                    send.message_contents,
                    now,
                );
                let sequence = self.take_aps_sequence();
                Response::SendUnicast(SendResponse { status, sequence })
            }
            Command::SendBroadcast(send) => {
                let status = self.accept_broadcast(
                    send.destination,
                    send.aps_frame,
                    send.message_tag,
                    send.message_contents,
                    now,
                );
                let sequence = self.take_aps_sequence();
                Response::SendBroadcast(SendResponse { status, sequence })
            }
            Command::LookupNodeIdByEui64(lookup) => {
                let found = self
                    .devices
                    .iter()
                    .find(|d| d.config().ieee.0 == lookup.eui64.0)
                    .map(|d| d.config().nwk);
                Response::LookupNodeIdByEui64(LookupNodeIdByEui64Response {
                    status: self.version.uses_sl_status().then_some(match found {
                        Some(_) => Status::Sl(SlStatus::OK),
                        None => Status::Sl(SlStatus::NOT_FOUND),
                    }),
                    node_id: found.unwrap_or(Nwk::NULL),
                })
            }
            Command::LookupEui64ByNodeId(lookup) => {
                let found = self
                    .devices
                    .iter()
                    .find(|d| d.config().nwk.0 == lookup.node_id.0)
                    .map(|d| d.config().ieee);
                Response::LookupEui64ByNodeId(LookupEui64ByNodeIdResponse {
                    status: match found {
                        Some(_) => self.ok(),
                        None => self.ember_status(EmberStatus::ERR_FATAL, SlStatus::NOT_FOUND),
                    },
                    eui64: found.unwrap_or_default(),
                })
            }
            Command::Nop => Response::Nop,
            Command::Other {
                frame_id,
                parameters,
            } => self.answer_other(frame_id, &parameters, now),
            // Commands the ezsp module may learn later are refused until the NCP learns them.
            #[allow(unreachable_patterns)]
            _ => Response::InvalidCommand {
                status: self.ezsp_status(
                    EzspStatus::ERROR_INVALID_FRAME_ID,
                    SlStatus::INVALID_PARAMETER,
                ),
            },
        }
    }

    /// Frames outside the ezsp module's set that bellows/zigpy and zigbee-herdsman send
    /// (start-up, forming, backup, normal operation), answered by the stack tables
    /// ([`StackTables::answer`]); anything else is `invalidCommand`, as a real NCP answers an
    /// unknown frame id.
    fn answer_other(&mut self, frame_id: FrameId, parameters: &[u8], now: Instant) -> Response {
        let children: Vec<(u16, [u8; 8])> = self
            .devices
            .iter()
            .map(|d| (d.config().nwk.0, d.config().ieee.to_le_bytes()))
            .collect();
        let endpoints: Vec<u8> = self.endpoints.iter().map(|e| e.endpoint).collect();
        let view = StackView {
            version: self.version,
            network_up: self.network_up,
            eui64: self.config.ieee.to_le_bytes(),
            children: if self.network_up { &children } else { &[] },
            endpoints: &endpoints,
        };
        let Some(answer) = self.stack.answer(&view, frame_id.0, parameters) else {
            return Response::InvalidCommand {
                status: self.ezsp_status(
                    EzspStatus::ERROR_INVALID_FRAME_ID,
                    SlStatus::INVALID_PARAMETER,
                ),
            };
        };
        match answer.effect {
            Some(StackEffect::LeaveNetwork) => {
                self.network_up = false;
                self.stored_network = None;
                self.schedule
                    .push((now + NETWORK_UP_DELAY, Scheduled::NetworkDown));
            }
            Some(StackEffect::FactoryReset) => self.stored_network = None,
            Some(StackEffect::Callbacks(callbacks)) => {
                // One millisecond apart, so they reach the host in order.
                for (order, (frame_id, parameters)) in (0u32..).zip(callbacks) {
                    self.schedule.push((
                        now + BROADCAST_DELAY + Duration::from_millis(u64::from(order)),
                        Scheduled::Callback {
                            frame_id: FrameId(frame_id),
                            parameters,
                        },
                    ));
                }
            }
            Some(StackEffect::MulticastSent {
                message_tag,
                aps_frame,
            }) => {
                if let Ok(aps_frame) = ApsFrame::decode(&aps_frame) {
                    self.schedule.push((
                        now + BROADCAST_DELAY + self.config.faults.delivery_report_delay,
                        Scheduled::MessageSent {
                            message_type: OutgoingMessageType::MULTICAST,
                            destination: Nwk(aps_frame.group_id),
                            aps_frame,
                            message_tag,
                            delivered: true,
                            unicast: false,
                        },
                    ));
                }
            }
            _ => {}
        }
        Response::Other {
            frame_id,
            parameters: answer.parameters,
        }
    }

    /// The one-way radio delay to a device, `None` for an address nobody has.
    fn radio_delay(&self, nwk: Nwk) -> Option<Duration> {
        self.devices
            .iter()
            .find(|d| d.config().nwk == nwk)
            .map(|d| d.config().radio_delay)
    }

    fn take_aps_sequence(&mut self) -> u8 {
        let sequence = self.next_aps_sequence;
        self.next_aps_sequence = sequence.wrapping_add(1);
        sequence
    }

    fn accept_unicast(
        &mut self,
        message_type: OutgoingMessageType,
        destination: Nwk,
        aps_frame: ApsFrame,
        message_tag: u16,
        payload: Vec<u8>,
        now: Instant,
    ) -> Status {
        if !self.network_up {
            return self.ember_status(EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN);
        }
        if payload.len() > usize::from(self.config.max_aps_payload) {
            return self.ember_status(EmberStatus::MESSAGE_TOO_LONG, SlStatus::MESSAGE_TOO_LONG);
        }
        if self.pending_unicasts >= self.config.faults.transmit_queue {
            return self.ember_status(
                EmberStatus::MAX_MESSAGE_LIMIT_REACHED,
                SlStatus::ZIGBEE_MAX_MESSAGE_LIMIT_REACHED,
            );
        }
        self.pending_unicasts += 1;
        if destination == Nwk::COORDINATOR {
            self.loop_back(message_type, aps_frame, message_tag, &payload, now);
            return self.ok();
        }
        let nwk = destination;
        let radio_delay = self.radio_delay(nwk);
        let delivered =
            radio_delay.is_some() && !self.rng.chance(self.config.faults.delivery_failure);
        let delay = radio_delay.unwrap_or(NO_ROUTE_DELAY / 4);
        if delivered {
            self.schedule.push((
                now + delay,
                Scheduled::ToDevice {
                    nwk,
                    aps_frame,
                    payload,
                },
            ));
        }
        if !self.rng.chance(self.config.faults.lost_delivery_report) {
            // An APS ACK comes back over the radio; a failure is known after the retries.
            let report_after = if delivered { delay * 2 } else { delay * 4 };
            self.schedule.push((
                now + report_after + self.config.faults.delivery_report_delay,
                Scheduled::MessageSent {
                    message_type,
                    destination,
                    aps_frame,
                    message_tag,
                    delivered,
                    unicast: true,
                },
            ));
        } else {
            // The report is lost, but the NCP frees the queue slot after its retries.
            self.pending_unicasts = self.pending_unicasts.saturating_sub(1);
        }
        self.ok()
    }

    /// A unicast to the NCP's own node: delivered at once; a ZDO request is answered by the
    /// node's own ZDO server ([`super::zdo`]), whose response reaches the host as an incoming
    /// message from 0x0000.
    fn loop_back(
        &mut self,
        message_type: OutgoingMessageType,
        aps_frame: ApsFrame,
        message_tag: u16,
        payload: &[u8],
        now: Instant,
    ) {
        if aps_frame.profile_id == DeviceAnnounce::PROFILE_ID {
            let node = super::zdo::OwnNode {
                manufacturer_code: self.stack.manufacturer_code(),
                ieee: self.config.ieee.to_le_bytes(),
                endpoints: self.endpoints.clone(),
            };
            if let Some((cluster, response)) =
                super::zdo::answer(&node, aps_frame.cluster_id, payload)
            {
                self.schedule.push((
                    now + BROADCAST_DELAY * 2,
                    Scheduled::FromOwnZdo {
                        cluster,
                        payload: response,
                    },
                ));
            }
        }
        self.schedule.push((
            now + BROADCAST_DELAY + self.config.faults.delivery_report_delay,
            Scheduled::MessageSent {
                message_type,
                destination: Nwk::COORDINATOR,
                aps_frame,
                message_tag,
                delivered: true,
                unicast: true,
            },
        ));
    }

    fn accept_broadcast(
        &mut self,
        destination: Nwk,
        aps_frame: ApsFrame,
        message_tag: u16,
        payload: Vec<u8>,
        now: Instant,
    ) -> Status {
        if !self.network_up {
            return self.ember_status(EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN);
        }
        let receivers: Vec<(Nwk, Duration)> = self
            .devices
            .iter()
            .map(|d| (d.config().nwk, d.config().radio_delay))
            .collect();
        for (nwk, delay) in receivers {
            self.schedule.push((
                now + delay,
                Scheduled::ToDevice {
                    nwk,
                    aps_frame,
                    payload: payload.clone(),
                },
            ));
        }
        self.schedule.push((
            now + BROADCAST_DELAY + self.config.faults.delivery_report_delay,
            Scheduled::MessageSent {
                message_type: OutgoingMessageType::BROADCAST,
                destination,
                aps_frame,
                message_tag,
                delivered: true,
                unicast: false,
            },
        ));
        self.ok()
    }

    // -----------------------------------------------------------------------------------------
    // The radio

    fn run_scheduled(&mut self, item: Scheduled, now: Instant) {
        match item {
            Scheduled::Callback {
                frame_id,
                parameters,
            } => self.send_callback(Callback::Other {
                frame_id,
                parameters,
            }),
            Scheduled::NetworkDown => {
                self.events.push_back(SimEvent::NetworkDown);
                self.send_callback(Callback::StackStatusHandler {
                    status: self
                        .ember_status(EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN),
                });
            }
            Scheduled::NetworkUp => {
                self.network_up = true;
                self.events.push_back(SimEvent::NetworkUp);
                self.send_callback(Callback::StackStatusHandler {
                    status: self.ember_status(EmberStatus::NETWORK_UP, SlStatus::ZIGBEE_NETWORK_UP),
                });
                if !self.announced && self.config.announce_devices {
                    self.announced = true;
                    let announces: Vec<(Nwk, Ieee, Duration)> = self
                        .devices
                        .iter()
                        .map(|d| (d.config().nwk, d.config().ieee, d.config().radio_delay))
                        .collect();
                    for (nwk, ieee, delay) in announces {
                        self.schedule
                            .push((now + delay, Scheduled::Announce { nwk, ieee }));
                    }
                }
            }
            Scheduled::ToDevice {
                nwk,
                aps_frame,
                payload,
            } => {
                let Some(index) = self.devices.iter().position(|d| d.config().nwk == nwk) else {
                    return;
                };
                self.events.push_back(SimEvent::MessageToDevice {
                    nwk,
                    payload: payload.clone(),
                });
                if let Some(device) = self.devices.get_mut(index) {
                    let endpoint = device.config().endpoint;
                    let addressed = aps_frame.destination_endpoint == endpoint
                        || aps_frame.destination_endpoint == 0xFF;
                    if addressed && aps_frame.cluster_id == CLUSTER_OTA_UPGRADE {
                        device.handle_frame(&payload, now);
                    } else if addressed && aps_frame.cluster_id == CLUSTER_BASIC {
                        device.handle_basic_frame(&payload, now);
                    }
                }
                self.collect_device_output(index, now);
            }
            Scheduled::FromDevice {
                nwk,
                endpoint,
                cluster,
                payload,
            } => self.deliver_to_host(nwk, endpoint, cluster, payload),
            Scheduled::Announce { nwk, ieee } => self.announce_to_host(nwk, ieee),
            Scheduled::FromOwnZdo { cluster, payload } => {
                let aps_frame = ApsFrame {
                    profile_id: DeviceAnnounce::PROFILE_ID,
                    cluster_id: cluster,
                    source_endpoint: 0,
                    destination_endpoint: 0,
                    options: ApsOptions::NONE,
                    group_id: 0,
                    sequence: self.take_aps_sequence(),
                };
                let own = self.config.ieee;
                self.send_incoming(aps_frame, Nwk(Nwk::COORDINATOR.0), Some(own), payload);
            }
            Scheduled::MessageSent {
                message_type,
                destination,
                aps_frame,
                message_tag,
                delivered,
                unicast,
            } => {
                if unicast {
                    self.pending_unicasts = self.pending_unicasts.saturating_sub(1);
                }
                let status = if delivered {
                    self.ok()
                } else {
                    self.ember_status(
                        EmberStatus::DELIVERY_FAILED,
                        SlStatus::ZIGBEE_DELIVERY_FAILED,
                    )
                };
                self.send_callback(Callback::MessageSentHandler(MessageSentHandler {
                    message_type,
                    index_or_destination: destination,
                    aps_frame,
                    message_tag,
                    status,
                    message_contents: Vec::new(),
                }));
            }
        }
    }

    /// Puts what the device wants to send on the radio, and its events in the queue.
    fn collect_device_output(&mut self, index: usize, now: Instant) {
        let Some(device) = self.devices.get_mut(index) else {
            return;
        };
        let nwk = device.config().nwk;
        let endpoint = device.config().endpoint;
        let delay = device.config().radio_delay;
        while let Some(payload) = device.poll_transmit() {
            self.schedule.push((
                now + delay,
                Scheduled::FromDevice {
                    nwk,
                    endpoint,
                    cluster: CLUSTER_OTA_UPGRADE,
                    payload,
                },
            ));
        }
        while let Some(payload) = device.poll_transmit_basic() {
            self.schedule.push((
                now + delay,
                Scheduled::FromDevice {
                    nwk,
                    endpoint,
                    cluster: CLUSTER_BASIC,
                    payload,
                },
            ));
        }
        while let Some(event) = device.poll_event() {
            self.events.push_back(SimEvent::Device { nwk, event });
        }
    }

    /// A device's OTA frame (or its answer to a Basic cluster read) reaches the NCP: up to the
    /// host if an endpoint takes the OTA cluster.
    fn deliver_to_host(&mut self, nwk: Nwk, source_endpoint: u8, cluster: u16, payload: Vec<u8>) {
        if !self.network_up {
            return;
        }
        let Some(endpoint) = self
            .endpoints
            .iter()
            .find(|e| e.input_clusters.contains(&CLUSTER_OTA_UPGRADE))
            .map(|e| e.endpoint)
        else {
            return; // No endpoint serves the OTA cluster: the stack drops the message.
        };
        let ieee = self
            .devices
            .iter()
            .find(|d| d.config().nwk == nwk)
            .map(|d| d.config().ieee);
        let aps_frame = ApsFrame {
            profile_id: PROFILE_HOME_AUTOMATION,
            cluster_id: cluster,
            source_endpoint,
            destination_endpoint: endpoint,
            options: ApsOptions::RETRY,
            group_id: 0,
            sequence: self.take_aps_sequence(),
        };
        self.messages_to_host += 1;
        self.events.push_back(SimEvent::MessageToHost {
            nwk,
            cluster,
            payload: payload.clone(),
        });
        self.send_incoming(aps_frame, nwk, ieee, payload);
    }

    fn announce_to_host(&mut self, nwk: Nwk, ieee: Ieee) {
        if !self.network_up {
            return;
        }
        let mut payload = Vec::new();
        DeviceAnnounce {
            transaction_sequence: self.take_aps_sequence(),
            node_id: nwk,
            eui64: ieee,
            capability: 0x8E,
        }
        .encode(&mut payload);
        let aps_frame = ApsFrame {
            profile_id: DeviceAnnounce::PROFILE_ID,
            cluster_id: DeviceAnnounce::CLUSTER_ID,
            source_endpoint: 0,
            destination_endpoint: 0,
            options: ApsOptions::NONE,
            group_id: 0,
            sequence: self.take_aps_sequence(),
        };
        self.send_incoming(aps_frame, nwk, Some(ieee), payload);
    }

    fn send_incoming(
        &mut self,
        aps_frame: ApsFrame,
        nwk: Nwk,
        ieee: Option<Ieee>,
        payload: Vec<u8>,
    ) {
        let v14 = self.version.uses_sl_status();
        let broadcast = aps_frame.profile_id == DeviceAnnounce::PROFILE_ID
            && aps_frame.cluster_id == DeviceAnnounce::CLUSTER_ID;
        self.send_callback(Callback::IncomingMessageHandler(IncomingMessageHandler {
            message_type: if broadcast {
                IncomingMessageType::BROADCAST
            } else {
                IncomingMessageType::UNICAST
            },
            aps_frame,
            last_hop_lqi: 0xFF,
            last_hop_rssi: -40,
            sender: nwk,
            sender_eui64: v14.then(|| Ieee(ieee.map_or(0, |i| i.0))),
            binding_index: 0xFF,
            address_index: 0xFF,
            timestamp: v14.then_some(0),
            message_contents: payload,
        }));
    }

    fn send_callback(&mut self, callback: Callback) {
        let mut out = Vec::new();
        // Callbacks reuse the last answered command's sequence number, which no pending
        // command holds.
        if callback
            .encode_frame(self.version, self.last_sequence, &mut out)
            .is_ok()
        {
            self.queue_frame(out);
        }
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

/// Flips one random bit of a random byte, the final flag excepted.
fn corrupt(frame: &mut [u8], rng: &mut SplitMix64) {
    let body = frame.len().saturating_sub(1);
    if body == 0 {
        return;
    }
    let index = rng.below(body);
    let bit = 1u8 << rng.below(8);
    if let Some(byte) = frame.get_mut(index) {
        *byte ^= bit;
    }
}

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
            let devices = config.device_configs().into_iter().map(|d| SimDevice::new(d, now)).collect();
            let mut ncp = SimNcp::new(SimNcpConfig::default(), devices).unwrap();
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
        let devices = sim
            .device_configs()
            .into_iter()
            .map(|d| SimDevice::new(d, start))
            .collect();
        let mut ncp = SimNcp::new(SimNcpConfig::default(), devices).unwrap();
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
