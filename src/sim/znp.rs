//! A simulated TI Z-Stack 3.x.0 coordinator (a CC2652 running ZNP firmware), sans-IO: MT frames
//! in and out ([`crate::znp`], PROTOCOLS.md §3), an NV memory holding the network the way
//! Z-Stack keeps it ([`crate::znp::nv`]), and the same simulated OTA client devices
//! ([`SimDevice`]) the EZSP simulator uses, behind a radio delay.
//!
//! What it answers — every request zigpy-znp 1.1.1 sends to start, back up, form and run a
//! network (`api.py`, `nvram.py`, `znp/security.py`, `zigbee/application.py`) and what our
//! host sends: `SYS.Ping`, `SYS.Version`, `SYS.ResetReq` (answered by `SYS.ResetInd`), the
//! OSAL NV commands (`OSALNVLength`, `OSALNVRead`, `OSALNVReadExt`, `OSALNVItemInit`,
//! `OSALNVWriteExt`, `OSALNVDelete`), the extended NV commands (`NVLength`, `NVRead`,
//! `NVCreate`, `NVWrite`, `NVDelete`), `UTIL.AssocFindDevice` (a 36-byte aligned struct, so
//! hosts detect a CC26x2), `AF.Register`, `AF.DataRequest`, `AF.DataRequestExt`,
//! `ZDO.MsgCallbackRegister`, `ZDO.IEEEAddrReq`, `ZDO.NwkAddrReq`, `ZDO.MgmtPermitJoinReq`,
//! `ZDO.StartupFromApp`, `APP_CNF.BDBSetChannel` and `APP_CNF.BDBStartCommissioning`; and
//! what zigbee-herdsman's `zstack` adapter adds (`extra`): `SYS.GetExtAddr`,
//! `UTIL.GetDeviceInfo`, `UTIL.LEDControl`, `ZDO.ActiveEpReq`, `ZDO.ExtFindGroup`,
//! `ZDO.ExtAddGroup` and `ZDO.ExtNwkInfo`. Anything
//! else gets `RPC_ERROR.CommandNotRecognized`, as a real stick answers. Callbacks:
//! `SYS.ResetInd`, `ZDO.StateChangeInd`, `APP_CNF.BDBCommissioningNotification`,
//! `AF.DataConfirm`, `AF.IncomingMsg` (OTA frames and Basic cluster answers, to the endpoint
//! registered for the OTA cluster),
//! `ZDO.EndDeviceAnnceInd` per device when the network first comes up, the ZDO address
//! answers and `ZDO.MgmtPermitJoinRsp`.
//!
//! Like a real ZNP it does not start its network by itself after a reset: the host commissions
//! it (`BDBStartCommissioning`), which resumes the network NV holds, or forms one from the NV
//! items `PANID`, `EXTENDED_PAN_ID`, `PRECFGKEY` and the BDB primary channel mask.
//!
//! [`Faults`] applies per MT frame: lost or damaged frames both ways, failed or missing
//! `AF.DataConfirm`s, a full transmit queue (`MEM_ERROR`), and unsolicited resets.

mod extra;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::device::SimDevice;
use super::faults::{Faults, SplitMix64};
use super::radio::{
    DeviceFrame, Due, Framing, Radio, SelfResets, SimEvent, ota_endpoint, through_line,
};
use super::znp_nv::NvMemory;
use crate::zigbee::{Ieee, Nwk};
use crate::znp::command::{
    AddrModeAddress, AfDataRequest, AfDataRequestExt, AfIncomingMsg,
    DEVICE_STATE_STARTED_AS_COORDINATOR, Message, SysVersion, ZdoAddrRsp, status,
};
use crate::znp::frame::{Decoder, FrameType, Subsystem};
use crate::znp::nv::osal;

/// MT capabilities a CC2652 Z-Stack 3.x.0 build reports: SYS, AF, ZDO, UTIL, APP, APP_CNF.
const CAPABILITIES: u16 = 0x0659;
/// How long the stick takes to reboot.
const RESET_DELAY: Duration = Duration::from_millis(20);
/// How long commissioning takes to bring the network up.
const NETWORK_UP_DELAY: Duration = Duration::from_millis(30);
/// How long a broadcast takes to leave.
const BROADCAST_DELAY: Duration = Duration::from_millis(5);
/// How long a unicast to an address nobody has takes to fail.
const NO_ROUTE_DELAY: Duration = Duration::from_millis(40);
/// A damaged MT frame keeps its start-of-frame byte (the FCS catches the damage).
const MT_FRAMING: Framing = Framing { head: 1, tail: 0 };
/// `BDBCommissioningStatus.Success` and `.FormationFailure` (the answer when a network was
/// already formed: zigpy-znp accepts both).
const BDB_SUCCESS: u8 = 0x00;
const BDB_FORMATION_FAILURE: u8 = 0x08;
/// `DeviceState.StartingAsCoordinator`.
const DEVICE_STATE_STARTING: u8 = 0x08;
/// RPC error: invalid command id.
const RPC_INVALID_COMMAND: u8 = 0x02;

/// The network a simulated stick holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZnpNetwork {
    /// Channel 11..=26.
    pub channel: u8,
    /// PAN id.
    pub pan_id: u16,
    /// Extended PAN id.
    pub extended_pan_id: u64,
    /// Network key.
    pub network_key: [u8; 16],
}

impl Default for ZnpNetwork {
    /// Channel 15, PAN 0x1A62, extended PAN DD:DD:DD:DD:DD:DD:DD:DD, key 01 03 05 ... 1F.
    fn default() -> Self {
        ZnpNetwork {
            channel: 15,
            pan_id: 0x1A62,
            extended_pan_id: 0xDDDD_DDDD_DDDD_DDDD,
            network_key: std::array::from_fn(|i| (2 * i + 1) as u8),
        }
    }
}

/// How the simulated stick presents itself.
#[derive(Debug, Clone)]
pub struct SimZnpConfig {
    /// Its IEEE address.
    pub ieee: Ieee,
    /// The network in its NV at power-on (`None`: factory new).
    pub network: Option<ZnpNetwork>,
    /// Whether each device announces itself when the network first comes up.
    pub announce_devices: bool,
    /// What goes wrong.
    pub faults: Faults,
}

impl Default for SimZnpConfig {
    /// A held [`ZnpNetwork::default`], devices announce, no faults.
    fn default() -> Self {
        SimZnpConfig {
            ieee: Ieee(0x00_12_4B_00_1C_DD_00_01),
            network: Some(ZnpNetwork::default()),
            announce_devices: true,
            faults: Faults::default(),
        }
    }
}

/// Something of the stick's own that happens at a given time ([`Radio::schedule`]).
#[derive(Debug, Clone)]
enum Scheduled {
    ResetDone { unsolicited: bool },
    NetworkUp { formed: bool },
    Confirm { status: u8, endpoint: u8, tsn: u8 },
}

/// The simulated stick. See the module docs.
#[derive(Debug)]
pub struct SimZnp {
    config: SimZnpConfig,
    rng: SplitMix64,
    decoder: Decoder,
    tx: VecDeque<Vec<u8>>,
    nv: NvMemory,
    primary_channels: u32,
    endpoints: Vec<crate::znp::command::AfRegister>,
    /// (endpoint, group) pairs added with `ZDO.ExtAddGroup`.
    groups: Vec<(u8, u16)>,
    network_up: bool,
    /// The devices and what is on the air.
    radio: Radio<Scheduled>,
    resets: SelfResets,
    powered: bool,
    events: VecDeque<SimEvent>,
}

impl SimZnp {
    /// A powered-on stick with `devices` on its network.
    pub fn new(config: SimZnpConfig, devices: Vec<SimDevice>) -> Self {
        let mut sim = SimZnp {
            rng: SplitMix64::new(config.faults.seed),
            decoder: Decoder::default(),
            tx: VecDeque::new(),
            nv: NvMemory::new(config.ieee),
            primary_channels: 0,
            endpoints: Vec::new(),
            groups: Vec::new(),
            network_up: false,
            radio: Radio::new(devices),
            resets: SelfResets::default(),
            powered: true,
            events: VecDeque::new(),
            config,
        };
        if let Some(network) = sim.config.network {
            sim.store_network(network);
        }
        sim
    }

    /// The simulated devices.
    pub fn devices(&self) -> &[SimDevice] {
        self.radio.devices()
    }

    /// True while the network is up.
    pub fn network_up(&self) -> bool {
        self.network_up
    }

    /// The network its NV holds.
    pub fn stored_network(&self) -> Option<ZnpNetwork> {
        self.nv.stored_network()
    }

    /// Writes a formed network into NV, as Z-Stack does when commissioning ends.
    fn store_network(&mut self, network: ZnpNetwork) {
        let devices: Vec<(Nwk, Ieee)> = self
            .radio
            .devices()
            .iter()
            .map(|d| (d.config().nwk, d.config().ieee))
            .collect();
        self.nv.store_network(network, &devices);
    }

    /// Bytes read from the serial port.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if !self.powered {
            return;
        }
        self.decoder.push(bytes);
        while let Some(item) = self.decoder.next_frame() {
            let Ok(frame) = item else { continue };
            let faults = &self.config.faults;
            if self.rng.chance(faults.drop_from_host) || self.rng.chance(faults.corrupt_from_host) {
                continue; // lost, or damaged (a real stick drops a frame whose FCS fails)
            }
            match Message::decode(&frame) {
                Ok(message) => self.handle_request(message, now),
                Err(_) if frame.frame_type == FrameType::Sreq => {
                    let cmd0 = frame.cmd0();
                    self.send(Message::RpcError {
                        error: 0x03,
                        cmd0,
                        cmd1: frame.id,
                    });
                }
                Err(_) => {}
            }
        }
    }

    /// Fires what is due: resets, radio deliveries, confirms, device timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.radio.pop_due(now, &mut self.events) {
            self.run_scheduled(due, now);
        }
        self.radio.run_device_timers(now, &mut self.events);
        self.maybe_reset_by_itself(now);
    }

    /// Bytes to write to the serial port.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if !self.powered {
            return None;
        }
        loop {
            let bytes = self.tx.pop_front()?;
            let faults = &self.config.faults;
            let line = (faults.drop_to_host, faults.corrupt_to_host);
            if let Some(bytes) = through_line(&mut self.rng, line, bytes, MT_FRAMING) {
                return Some(bytes);
            }
        }
    }

    /// When [`SimZnp::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let periodic = self.resets.periodic_due(&self.config.faults, self.powered);
        self.radio.poll_timeout().into_iter().chain(periodic).min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SimEvent> {
        self.events.pop_front()
    }

    /// Reboots now by itself (a watchdog reset): `SYS.ResetInd`, network down, endpoints
    /// forgotten, everything in flight lost; NV is kept.
    pub fn reset(&mut self, now: Instant) {
        self.reboot_state();
        self.resets.rebooted(now);
        self.events.push_back(SimEvent::Reset { unsolicited: true });
        if !self.config.faults.silent_reset {
            self.send(reset_indication(0x02));
        }
    }

    /// Unplugged: no serial line, no stack; NV and the devices survive.
    pub fn power_off(&mut self) {
        self.reboot_state();
        self.decoder.clear();
        self.tx.clear();
        self.powered = false;
    }

    /// Plugged in again: boots with its NV; the power-up `SYS.ResetInd` goes to nobody.
    pub fn power_on(&mut self, now: Instant) {
        self.reboot_state();
        self.powered = true;
        self.resets.rebooted(now);
    }

    fn reboot_state(&mut self) {
        self.endpoints.clear();
        self.network_up = false;
        self.tx.clear();
        self.radio.forget_all_but_the_air();
    }

    fn maybe_reset_by_itself(&mut self, now: Instant) {
        if !self.powered {
            return;
        }
        for _ in 0..self.resets.due_now(&self.config.faults, now) {
            self.reset(now);
        }
    }

    fn send(&mut self, message: Message) {
        self.tx.push_back(message.to_bytes());
    }

    fn status(&mut self, subsystem: Subsystem, id: u8, status: u8) {
        self.send(Message::StatusResponse {
            subsystem,
            id,
            status,
        });
    }

    fn handle_request(&mut self, message: Message, now: Instant) {
        match message {
            Message::SysPing => self.send(Message::SysPingResponse {
                capabilities: CAPABILITIES,
            }),
            Message::SysVersion => self.send(Message::SysVersionResponse(SysVersion {
                transport_rev: 2,
                product_id: 1,
                major: 2,
                minor: 7,
                maint: 1,
                extra: Some((20_230_507, 0, 0xFFFF_FFFF)),
            })),
            Message::SysResetReq { .. } => {
                self.reboot_state();
                self.resets.rebooted(now);
                self.events
                    .push_back(SimEvent::Reset { unsolicited: false });
                self.radio.schedule(
                    now + RESET_DELAY,
                    Scheduled::ResetDone { unsolicited: false },
                );
            }
            Message::UtilAssocFindDevice { .. } => {
                let mut device = vec![0xFE, 0xFF];
                device.resize(36, 0);
                self.send(Message::UtilAssocFindDeviceResponse { device });
            }
            Message::AfRegister(register) => {
                let duplicate = self
                    .endpoints
                    .iter()
                    .any(|e| e.endpoint == register.endpoint);
                if duplicate {
                    self.status(Subsystem::AF, 0x00, 0xB8);
                    return;
                }
                self.events.push_back(SimEvent::EndpointRegistered {
                    endpoint: register.endpoint,
                    input_clusters: register.input_clusters.clone(),
                });
                self.endpoints.push(register);
                self.status(Subsystem::AF, 0x00, status::SUCCESS);
            }
            Message::AfDataRequest(request) => self.data_request(0x01, extended(request), now),
            Message::AfDataRequestExt(request) => self.data_request(0x02, request, now),
            Message::ZdoMsgCallbackRegister { .. } => {
                self.status(Subsystem::ZDO, 0x3E, status::SUCCESS);
            }
            Message::ZdoIeeeAddrReq { nwk, .. } => {
                self.status(Subsystem::ZDO, 0x01, status::SUCCESS);
                if let Some(answer) = self.address_answer(|d| d.config().nwk.0 == nwk) {
                    self.send(Message::ZdoIeeeAddrRsp(answer));
                }
            }
            Message::ZdoNwkAddrReq { ieee, .. } => {
                self.status(Subsystem::ZDO, 0x00, status::SUCCESS);
                if let Some(answer) = self.address_answer(|d| d.config().ieee.0 == ieee) {
                    self.send(Message::ZdoNwkAddrRsp(answer));
                }
            }
            Message::ZdoMgmtPermitJoinReq { duration, .. } => {
                self.status(Subsystem::ZDO, 0x36, status::SUCCESS);
                self.events.push_back(SimEvent::PermitJoining { duration });
                self.send(Message::ZdoMgmtPermitJoinRsp {
                    source: 0,
                    status: 0,
                });
            }
            Message::ZdoStartupFromApp { .. } => {
                let restored = self.stored_network().is_some();
                self.send(Message::ZdoStartupFromAppResponse {
                    state: if restored { 0 } else { 1 },
                });
                self.commission(now);
            }
            Message::AppCnfBdbSetChannel {
                is_primary,
                channels,
            } => {
                if is_primary != 0 {
                    self.primary_channels = channels;
                }
                self.status(Subsystem::APP_CNF, 0x08, status::SUCCESS);
            }
            Message::AppCnfBdbStartCommissioning { .. } => {
                self.status(Subsystem::APP_CNF, 0x05, status::SUCCESS);
                self.commission(now);
            }
            Message::Other(frame) if frame.frame_type == FrameType::Sreq => {
                match self.answer_extra(&frame) {
                    Some(answers) => answers.into_iter().for_each(|m| self.send(m)),
                    None => self.send(Message::RpcError {
                        error: RPC_INVALID_COMMAND,
                        cmd0: frame.cmd0(),
                        cmd1: frame.id,
                    }),
                }
            }
            other => {
                if let Some(answer) = self.nv.answer(&other) {
                    self.send(answer);
                } else {
                    let (frame_type, subsystem, id) = other.header();
                    if frame_type == FrameType::Sreq {
                        self.send(Message::RpcError {
                            error: RPC_INVALID_COMMAND,
                            cmd0: (1 << 5) | subsystem.0,
                            cmd1: id,
                        });
                    }
                }
            }
        }
    }

    /// Starts the network: resumes what NV holds, or forms from the NV formation items.
    fn commission(&mut self, now: Instant) {
        if self.network_up {
            self.send(Message::AppCnfBdbCommissioningNotification {
                status: BDB_SUCCESS,
                mode: 0x04,
                remaining_modes: 0,
            });
            return;
        }
        let formed = self.stored_network().is_none();
        if formed {
            let network = self.formation_parameters();
            self.store_network(network);
        }
        self.send(Message::ZdoStateChangeInd {
            state: DEVICE_STATE_STARTING,
        });
        self.radio
            .schedule(now + NETWORK_UP_DELAY, Scheduled::NetworkUp { formed });
    }

    /// What a factory-new stick forms with: its NV formation items, the BDB channel mask.
    fn formation_parameters(&mut self) -> ZnpNetwork {
        let fallback = ZnpNetwork::default();
        let read = |id: u16| self.nv.osal(id).cloned().unwrap_or_default();
        let pan = <[u8; 2]>::try_from(read(osal::PANID).as_slice())
            .map(u16::from_le_bytes)
            .ok()
            .filter(|&p| p != 0xFFFF)
            .unwrap_or_else(|| (self.rng.next_u64() % 0xFFF0) as u16 + 1);
        let ext = <[u8; 8]>::try_from(read(osal::EXTENDED_PAN_ID).as_slice())
            .map(u64::from_le_bytes)
            .unwrap_or(fallback.extended_pan_id);
        let key =
            <[u8; 16]>::try_from(read(osal::PRECFGKEY).as_slice()).unwrap_or(fallback.network_key);
        let channel = (11..=26u8)
            .find(|c| self.primary_channels & (1 << c) != 0)
            .unwrap_or(fallback.channel);
        ZnpNetwork {
            channel,
            pan_id: pan,
            extended_pan_id: ext,
            network_key: key,
        }
    }

    fn address_answer(&self, matches: impl Fn(&SimDevice) -> bool) -> Option<ZdoAddrRsp> {
        let device = self.radio.devices().iter().find(|d| matches(d))?;
        Some(ZdoAddrRsp {
            status: 0,
            ieee: device.config().ieee.0,
            nwk: device.config().nwk.0,
            num_assoc: 0,
            index: 0,
            devices: Vec::new(),
        })
    }

    /// `AF.DataRequest` (`id` 0x01) or `AF.DataRequestExt` (0x02): answered at once, then
    /// delivered to the stick itself, broadcast, or sent as a unicast with its
    /// `AF.DataConfirm` to come.
    fn data_request(&mut self, id: u8, request: AfDataRequestExt, now: Instant) {
        let AfDataRequestExt {
            destination,
            dst_endpoint,
            src_endpoint,
            cluster,
            tsn,
            data,
            ..
        } = request;
        let Some(short) = destination.short().filter(|_| self.network_up) else {
            self.status(Subsystem::AF, id, status::FAILURE);
            return;
        };
        let nwk = Nwk(short);
        if nwk == Nwk(0x0000) {
            self.status(Subsystem::AF, id, status::SUCCESS);
            self.loop_back((src_endpoint, dst_endpoint), cluster, &data, tsn);
            return;
        }
        if nwk.is_broadcast() {
            self.status(Subsystem::AF, id, status::SUCCESS);
            self.radio
                .send_broadcast(now + BROADCAST_DELAY, dst_endpoint, cluster, &data);
            return;
        }
        if self.radio.transmit_queue_full(&self.config.faults) {
            self.status(Subsystem::AF, id, status::MEM_ERROR);
            return;
        }
        self.status(Subsystem::AF, id, status::SUCCESS);
        let frame = DeviceFrame {
            nwk,
            endpoint: dst_endpoint,
            cluster,
            payload: data,
        };
        let fate = self
            .radio
            .send_unicast(frame, now, &self.config.faults, &mut self.rng);
        if fate.reported {
            let delay = fate.radio_delay.unwrap_or(NO_ROUTE_DELAY);
            let status = if fate.delivered {
                status::SUCCESS
            } else {
                status::MAC_NO_ACK
            };
            self.radio.schedule(
                now + delay * 2 + self.config.faults.delivery_report_delay,
                Scheduled::Confirm {
                    status,
                    endpoint: src_endpoint,
                    tsn,
                },
            );
        }
    }

    fn run_scheduled(&mut self, due: Due<Scheduled>, now: Instant) {
        let item = match due {
            Due::FromDevice(frame) => return self.deliver_to_host(frame),
            Due::Announce { nwk, ieee } => {
                if self.network_up {
                    self.send(Message::ZdoEndDeviceAnnceInd {
                        source: nwk.0,
                        nwk: nwk.0,
                        ieee: ieee.0,
                        capabilities: 0x8E,
                    });
                }
                return;
            }
            Due::Stick(item) => item,
        };
        match item {
            Scheduled::ResetDone { unsolicited } => {
                if !unsolicited {
                    self.send(reset_indication(0x00));
                }
            }
            Scheduled::NetworkUp { formed } => {
                self.network_up = true;
                self.events.push_back(SimEvent::NetworkUp);
                self.send(Message::ZdoStateChangeInd {
                    state: DEVICE_STATE_STARTED_AS_COORDINATOR,
                });
                self.send(Message::AppCnfBdbCommissioningNotification {
                    status: if formed {
                        BDB_SUCCESS
                    } else {
                        BDB_FORMATION_FAILURE
                    },
                    mode: 0x04,
                    remaining_modes: 0,
                });
                if self.config.announce_devices {
                    self.radio.announce_once(now);
                }
            }
            Scheduled::Confirm {
                status,
                endpoint,
                tsn,
            } => {
                self.radio.unicast_reported();
                self.send(Message::AfDataConfirm {
                    status,
                    endpoint,
                    tsn,
                });
            }
        }
    }

    /// A device's OTA frame or Basic answer reaches the stick: up to the OTA endpoint (Z-Stack's
    /// `afIncomingData` matches endpoint and profile, not cluster). `MT_AfIncomingMsg` (TI's
    /// `mt_af.c`) uses `AF.IncomingMsgExt` only for inter-PAN frames, 64-bit sources and payloads
    /// over 220 bytes (then without data, for `AF.DataRetrieve`): never for devices of our own
    /// network, whose unfragmented payloads are at most ~82 bytes.
    fn deliver_to_host(&mut self, frame: DeviceFrame) {
        let registered = self
            .endpoints
            .iter()
            .map(|e| (e.endpoint, e.input_clusters.as_slice()));
        let Some(endpoint) = ota_endpoint(registered).filter(|_| self.network_up && self.powered)
        else {
            return;
        };
        let sent = self.resets.message_to_host(&frame, &mut self.events);
        let DeviceFrame {
            nwk,
            endpoint: src_endpoint,
            cluster,
            payload,
        } = frame;
        let tsn = (sent & 0xFF) as u8;
        self.send(Message::AfIncomingMsg(AfIncomingMsg {
            group: 0,
            cluster,
            source: nwk.0,
            src_endpoint,
            dst_endpoint: endpoint,
            was_broadcast: 0,
            lqi: 200,
            security_use: 0,
            timestamp: 0,
            tsn,
            data: payload,
            mac_source: nwk.0,
            radius: 29,
        }));
    }
}

/// `AF.DataRequest` as the `AF.DataRequestExt` it is a short form of: a short address, our PAN.
fn extended(request: AfDataRequest) -> AfDataRequestExt {
    AfDataRequestExt {
        destination: AddrModeAddress::nwk(request.destination),
        dst_endpoint: request.dst_endpoint,
        dst_pan: 0,
        src_endpoint: request.src_endpoint,
        cluster: request.cluster,
        tsn: request.tsn,
        options: request.options,
        radius: request.radius,
        data: request.data,
    }
}

fn reset_indication(reason: u8) -> Message {
    Message::SysResetInd {
        reason,
        transport_rev: 2,
        product_id: 1,
        release: [2, 7, 1],
    }
}
