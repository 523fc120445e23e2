//! The ZNP host, sans-IO (quinn-proto's shape: [`Host::handle_input`], [`Host::handle_timeout`],
//! [`Host::poll_transmit`], [`Host::poll_event`], [`Host::poll_timeout`]); the tokio driver
//! [`crate::coordinator::znp`] only moves bytes and calls these (PROTOCOLS.md §3).
//!
//! **Requests.** One SREQ is in flight at a time, as zigpy-znp does (`_sync_request_lock`): the
//! SRSP with the same subsystem and id, or `RPC_ERROR` naming it, answers it. MT has no
//! retransmission, so a frame lost on the line shows only as a missing answer after
//! [`HostConfig::sreq_timeout`]: a data request is then reported [`DeliveryOutcome::TimedOut`]
//! (never sent twice: the stick may have queued it); a start-up step, lookup or ping is asked
//! again, twice, before the stick is declared gone ([`Lost::NoAnswer`]).
//!
//! **Start-up** ([`Host::start`]), after every (re)connection and every stick reset:
//! 1. `SYS.Ping`; unanswered within [`HostConfig::ping_timeout`], the CC253x serial
//!    bootloader is skipped the way zigpy-znp does it (256 × 0xEF), then pinged again.
//!    A stick without the APP_CNF subsystem runs Z-Stack Home 1.2 and is refused
//!    ([`Lost::UnsupportedFirmware`]).
//! 2. `SYS.Version`, then a soft `SYS.ResetReq` answered by `SYS.ResetInd`, so no endpoint of
//!    an earlier host is left registered.
//! 3. The NV items zigpy-znp reads to resume: the NIB, `BDBNODEISONANETWORK`, `EXTADDR` and
//!    `NWK_ACTIVE_KEY_INFO`. With no network there, one is formed from
//!    [`HostConfig::network`] as zigpy-znp forms one: `PANID`, `EXTENDED_PAN_ID`,
//!    `APS_USE_EXT_PANID`, `PRECFGKEY`, `PRECFGKEYS_ENABLE` = 0 and `CHANLIST` written, the BDB
//!    primary channel set to the one channel and the secondary set emptied.
//! 4. `APP_CNF.BDBStartCommissioning(formation)` until `ZDO.StateChangeInd(started as
//!    coordinator)`, the NIB read again for the network actually running, `AF.Register` of
//!    our endpoint with the OTA cluster 0x0019 as an input cluster: [`HostEvent::Up`].
//!
//! **Up.** A unicast is an `AF.DataRequest` (APS ACK requested when asked, route discovery
//! suppressed as zigpy-znp does); its SRSP status refuses it ([`DeliveryOutcome::Refused`]) or
//! accepts it, and the `AF.DataConfirm` with its TSN is the delivery report. A broadcast is an
//! `AF.DataRequestExt` (broadcast address mode); Z-Stack sends no confirm for it, so the SRSP
//! is its report. `AF.IncomingMsg`/`AF.IncomingMsgExt` become [`HostEvent::Incoming`]; from a
//! sender the table does not know, messages are held, in order, until `ZDO.IEEEAddrReq` is
//! answered (or a timeout releases them without an IEEE address). Device announces, trust
//! center joins and ZDO address answers teach the table ([`HostEvent::DeviceJoined`]).
//! After [`HostConfig::keepalive_interval`] of silence a `SYS.Ping` checks the stick.
//!
//! **Recovery.** An unsolicited `SYS.ResetInd`, an unanswered request or a failed start-up ends
//! in [`HostEvent::Lost`]: every send in flight or queued is reported
//! [`DeliveryOutcome::LinkLost`] first, and the host waits, down, for [`Host::start`] (the
//! driver calls it after its backoff).

mod startup;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use super::command::{
    AF_OPTION_ACK_REQUEST, AF_OPTION_SUPPRESS_ROUTE_DISCOVERY, AddrModeAddress, AfDataRequest,
    AfDataRequestExt, BDB_MODE_FORMATION, CAPABILITY_APP_CNF, DEVICE_STATE_STARTED_AS_COORDINATOR,
    Message, RESET_SOFT, status,
};
use super::frame::{Decoder, FrameType};
use super::nv::osal;
use crate::coordinator::network::NetworkSettings;
use crate::coordinator::{
    BroadcastMessage, DeliveryOutcome, DeviceTable, Ieee, IncomingMessage, MessageTag, NetworkInfo,
    Nwk, SendError, UnicastMessage,
};

/// The largest APS payload we send in one unfragmented `AF.DataRequest` (Z-Stack's AF/APS
/// limit for a secured unicast; zigpy caps OTA blocks at 50 bytes inside it).
pub const MAX_APS_PAYLOAD: usize = 80;
/// Z-Stack's `AF.Register` answer for an endpoint that is already registered.
const STATUS_DUPLICATE_ENDPOINT: u8 = 0xB8;
/// The byte that makes a CC253x serial bootloader jump to the application.
const BOOTLOADER_SKIP_BYTE: u8 = 0xEF;
/// Hops for our sends (Z-Stack's default: twice the maximum depth).
const RADIUS: u8 = 30;

/// Tuning and the network to form.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Our endpoint, registered with the OTA Upgrade cluster as an input cluster.
    pub endpoint: u8,
    /// The network to form when the stick holds none.
    pub network: NetworkSettings,
    /// How long an SREQ may wait for its SRSP.
    pub sreq_timeout: Duration,
    /// How long the first pings wait before the bootloader is skipped.
    pub ping_timeout: Duration,
    /// Pings (after bootloader skips) before the stick is declared absent.
    pub ping_attempts: u32,
    /// How long `SYS.ResetReq` may wait for `SYS.ResetInd`.
    pub reset_timeout: Duration,
    /// How long commissioning may take to report the coordinator started.
    pub network_up_timeout: Duration,
    /// Silence after which a `SYS.Ping` checks the stick.
    pub keepalive_interval: Duration,
    /// How long a unicast may wait for its `AF.DataConfirm`.
    pub delivery_timeout: Duration,
    /// How long messages from an unknown sender wait for its IEEE address.
    pub lookup_timeout: Duration,
    /// Unicasts awaiting their `AF.DataConfirm` at most; later sends wait in the queue.
    pub max_in_flight: usize,
}

impl HostConfig {
    /// Defaults that suit real sticks: SREQ 2 s (asked twice more for start-up steps and pings),
    /// ping 0.5 s × 6, reset 5 s, network up 60 s, keepalive 10 s, delivery 10 s (zigpy-znp
    /// waits 8 s for a confirm; indirect sends to sleepy devices take up to 7.68 s), address
    /// lookup 5 s, 16 unicasts in flight.
    pub fn new(endpoint: u8, network: NetworkSettings) -> Self {
        HostConfig {
            endpoint,
            network,
            sreq_timeout: Duration::from_secs(2),
            ping_timeout: Duration::from_millis(500),
            ping_attempts: 6,
            reset_timeout: Duration::from_secs(5),
            network_up_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(10),
            lookup_timeout: Duration::from_secs(5),
            max_in_flight: 16,
        }
    }
}

/// Why the host is down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Lost {
    /// The stick answered no ping, even after the bootloader skip.
    #[error("no answer to SYS.Ping (is this a Z-Stack ZNP stick at this baud rate?)")]
    NoPing,
    /// An SREQ went unanswered.
    #[error("no answer to {0} within the request timeout")]
    NoAnswer(String),
    /// The stick rebooted by itself.
    #[error("the stick reset by itself (SYS.ResetInd reason {0})")]
    StickReset(u8),
    /// A start-up step failed.
    #[error("start-up failed: {0}")]
    Startup(String),
    /// The serial port went away.
    #[error("the serial port is gone")]
    PortGone,
    /// The firmware is not one we drive.
    #[error(
        "Z-Stack Home 1.2 (no APP_CNF subsystem, a CC2530/CC2531 image) is not supported: flash Z-Stack 3.x.0 (CC26x2/CC13x2) or 3.0.x"
    )]
    UnsupportedFirmware,
}

/// What the host reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// Start-up ended: the network is up and sends are accepted.
    Up {
        /// The network running.
        network: NetworkInfo,
        /// True when this start-up formed it (from [`HostConfig::network`]).
        formed: bool,
        /// `SYS.Version`: product id and release, for logs and status.
        firmware: String,
    },
    /// A device sent us a message.
    Incoming(IncomingMessage),
    /// How a send ended.
    Delivery {
        /// The send's tag.
        tag: MessageTag,
        /// Its outcome.
        outcome: DeliveryOutcome,
    },
    /// A device's addresses became known (an announce, a join, an address answer).
    DeviceJoined {
        /// Network address.
        nwk: Nwk,
        /// IEEE address.
        ieee: Ieee,
    },
    /// The host is down; [`Host::start`] brings it up again.
    Lost(Lost),
}

/// What an outstanding SREQ is for.
#[derive(Debug, Clone)]
enum Purpose {
    Startup,
    Unicast { tag: MessageTag, tsn: u8 },
    Broadcast { tag: MessageTag },
    Lookup,
    Other,
}

#[derive(Debug, Clone)]
struct Request {
    message: Message,
    purpose: Purpose,
    /// How often it was sent again after going unanswered.
    attempts: u8,
}

/// How often an unanswered start-up step, lookup or ping is asked again before the stick is
/// declared gone.
const SREQ_RETRIES: u8 = 2;

/// Start-up steps (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Down,
    Ping { attempt: u32 },
    Version,
    AwaitReset,
    ReadNv { step: usize },
    Form { step: usize },
    AwaitStarted,
    ReadNib,
    Register,
    Up,
}

/// An NV item being read: its length, then its bytes in pieces.
#[derive(Debug, Clone, Default)]
struct NvRead {
    id: u16,
    length: Option<usize>,
    data: Vec<u8>,
}

/// The NV items read at start-up, in order.
const STARTUP_ITEMS: [u16; 4] = [
    osal::NIB,
    osal::BDBNODEISONANETWORK,
    osal::EXTADDR,
    osal::NWK_ACTIVE_KEY_INFO,
];

/// The ZNP host. See the module docs.
pub struct Host {
    config: HostConfig,
    decoder: Decoder,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<HostEvent>,
    phase: Phase,
    phase_deadline: Option<Instant>,
    /// When to send the next ping (after a bootloader skip).
    ping_at: Option<Instant>,
    queue: VecDeque<Request>,
    outstanding: Option<(Request, Instant)>,
    in_flight: HashMap<u8, (MessageTag, Instant)>,
    next_tsn: u8,
    nv_read: NvRead,
    items: HashMap<u16, Vec<u8>>,
    formed: bool,
    firmware: String,
    network: Option<NetworkInfo>,
    devices: DeviceTable,
    held: HashMap<Nwk, (Instant, Vec<IncomingMessage>)>,
    last_heard: Instant,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("phase", &self.phase)
            .field("queued", &self.queue.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host, down until [`Host::start`]; `devices` seeds the address table.
    pub fn new(config: HostConfig, devices: DeviceTable, now: Instant) -> Self {
        Host {
            config,
            decoder: Decoder::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            phase: Phase::Down,
            phase_deadline: None,
            ping_at: None,
            queue: VecDeque::new(),
            outstanding: None,
            in_flight: HashMap::new(),
            next_tsn: 1,
            nv_read: NvRead::default(),
            items: HashMap::new(),
            formed: false,
            firmware: String::new(),
            network: None,
            devices,
            held: HashMap::new(),
            last_heard: now,
        }
    }

    /// True once start-up ended and until the host is lost.
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// The network, once up.
    pub fn network(&self) -> Option<NetworkInfo> {
        self.network.filter(|_| self.is_up())
    }

    /// The address table.
    pub fn devices(&self) -> &DeviceTable {
        &self.devices
    }

    /// Starts (or restarts) start-up on a fresh line.
    pub fn start(&mut self, now: Instant) {
        self.decoder.clear();
        self.outstanding = None;
        self.queue.clear();
        self.items.clear();
        self.formed = false;
        self.last_heard = now;
        self.phase = Phase::Ping { attempt: 0 };
        self.phase_deadline = None;
        self.ping_at = None;
        self.request(Message::SysPing, Purpose::Startup, now);
    }

    /// The port is gone: every send in flight or queued is reported lost, then
    /// [`HostEvent::Lost`]`(`[`Lost::PortGone`]`)`.
    pub fn close(&mut self, now: Instant) {
        if self.phase != Phase::Down {
            self.lose(Lost::PortGone, now);
        }
    }

    /// Queues a unicast; one [`HostEvent::Delivery`] with `tag` follows.
    pub fn send_unicast(
        &mut self,
        tag: MessageTag,
        message: &UnicastMessage,
        now: Instant,
    ) -> Result<(), SendError> {
        self.check_sendable(message.payload.len())?;
        let tsn = self.allocate_tsn();
        let mut options = AF_OPTION_SUPPRESS_ROUTE_DISCOVERY;
        if message.aps_ack {
            options |= AF_OPTION_ACK_REQUEST;
        }
        let request = Message::AfDataRequest(AfDataRequest {
            destination: message.destination.0,
            dst_endpoint: message.dst_endpoint,
            src_endpoint: message.src_endpoint,
            cluster: message.cluster,
            tsn,
            options,
            radius: RADIUS,
            data: message.payload.clone(),
        });
        self.request(request, Purpose::Unicast { tag, tsn }, now);
        Ok(())
    }

    /// Queues a broadcast; one [`HostEvent::Delivery`] with `tag` follows.
    pub fn send_broadcast(
        &mut self,
        tag: MessageTag,
        message: &BroadcastMessage,
        now: Instant,
    ) -> Result<(), SendError> {
        self.check_sendable(message.payload.len())?;
        let tsn = self.allocate_tsn();
        let request = Message::AfDataRequestExt(AfDataRequestExt {
            destination: AddrModeAddress::broadcast(message.destination.0),
            dst_endpoint: message.dst_endpoint,
            dst_pan: 0,
            src_endpoint: message.src_endpoint,
            cluster: message.cluster,
            tsn,
            options: 0,
            radius: if message.radius == 0 {
                RADIUS
            } else {
                message.radius
            },
            data: message.payload.clone(),
        });
        self.request(request, Purpose::Broadcast { tag }, now);
        Ok(())
    }

    /// Opens the network for joining (every router and us) for `seconds`.
    pub fn permit_joining(&mut self, seconds: u8, now: Instant) -> Result<(), SendError> {
        self.check_sendable(0)?;
        let request = Message::ZdoMgmtPermitJoinReq {
            addr_mode: super::command::ADDR_MODE_BROADCAST,
            destination: Nwk::BROADCAST_ROUTERS.0,
            duration: seconds,
            tc_significance: 0,
        };
        self.request(request, Purpose::Other, now);
        Ok(())
    }

    fn check_sendable(&self, len: usize) -> Result<(), SendError> {
        if !self.is_up() {
            return Err(SendError::NotUp(
                crate::coordinator::CoordinatorState::Starting,
            ));
        }
        if len > MAX_APS_PAYLOAD {
            return Err(SendError::PayloadTooLarge {
                len,
                max: MAX_APS_PAYLOAD,
            });
        }
        Ok(())
    }

    fn allocate_tsn(&mut self) -> u8 {
        let queued: Vec<u8> = self
            .queue
            .iter()
            .filter_map(|r| match r.purpose {
                Purpose::Unicast { tsn, .. } => Some(tsn),
                _ => None,
            })
            .collect();
        for _ in 0..=u8::MAX {
            let tsn = self.next_tsn;
            self.next_tsn = self.next_tsn.wrapping_add(1);
            if !self.in_flight.contains_key(&tsn) && !queued.contains(&tsn) {
                return tsn;
            }
        }
        self.next_tsn
    }

    /// Bytes read from the port at `now`.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.decoder.push(bytes);
        while let Some(item) = self.decoder.next_frame() {
            let frame = match item {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::debug!("ZNP line: {e}");
                    continue;
                }
            };
            self.last_heard = now;
            match Message::decode(&frame) {
                Ok(message) => self.handle_message(message, frame.frame_type, now),
                Err(e) => tracing::warn!("ZNP frame {frame:?} refused: {e}"),
            }
        }
        self.pump(now);
    }

    /// Bytes to write to the port.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// When [`Host::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let outstanding = self.outstanding.as_ref().map(|(_, at)| *at);
        let deliveries = self.in_flight.values().map(|(_, at)| *at).min();
        let held = self
            .held
            .values()
            .map(|(at, _)| *at + self.config.lookup_timeout)
            .min();
        let keepalive = (self.is_up() && self.outstanding.is_none())
            .then_some(self.last_heard + self.config.keepalive_interval);
        [
            outstanding,
            deliveries,
            held,
            keepalive,
            self.phase_deadline,
            self.ping_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ping_at.is_some_and(|at| at <= now) {
            self.ping_at = None;
            self.request(Message::SysPing, Purpose::Startup, now);
        }
        if self
            .outstanding
            .as_ref()
            .is_some_and(|(_, deadline)| *deadline <= now)
            && let Some((request, _)) = self.outstanding.take()
        {
            match (&self.phase, request.purpose.clone()) {
                (Phase::Ping { attempt }, _) => self.ping_unanswered(*attempt, now),
                // The frame or its answer was lost on the line (MT has no retransmission): the
                // send is reported, not repeated (the stick may have queued it).
                (_, Purpose::Unicast { tag, .. } | Purpose::Broadcast { tag }) => {
                    self.delivery(tag, DeliveryOutcome::TimedOut);
                }
                // Start-up steps, lookups and pings can be asked again.
                _ if request.attempts < SREQ_RETRIES => {
                    tracing::debug!("no answer to {}: asking again", request.message.name());
                    self.queue.push_front(Request {
                        attempts: request.attempts + 1,
                        ..request
                    });
                }
                _ => {
                    self.lose(Lost::NoAnswer(request.message.name()), now);
                    return;
                }
            }
        }
        if self.phase_deadline.is_some_and(|at| at <= now) {
            let what = match self.phase {
                Phase::AwaitReset => "no SYS.ResetInd after SYS.ResetReq",
                _ => "the coordinator did not start (no ZDO.StateChangeInd) in time",
            };
            self.lose(Lost::Startup(what.into()), now);
            return;
        }
        let overdue: Vec<u8> = self
            .in_flight
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(tsn, _)| *tsn)
            .collect();
        for tsn in overdue {
            if let Some((tag, _)) = self.in_flight.remove(&tsn) {
                self.delivery(tag, DeliveryOutcome::TimedOut);
            }
        }
        let expired: Vec<Nwk> = self
            .held
            .iter()
            .filter(|(_, (since, _))| *since + self.config.lookup_timeout <= now)
            .map(|(nwk, _)| *nwk)
            .collect();
        for nwk in expired {
            self.release(nwk, None);
        }
        if self.is_up()
            && self.outstanding.is_none()
            && self.queue.is_empty()
            && self.last_heard + self.config.keepalive_interval <= now
        {
            self.request(Message::SysPing, Purpose::Other, now);
        }
        self.pump(now);
    }

    fn ping_unanswered(&mut self, attempt: u32, now: Instant) {
        if attempt + 1 >= self.config.ping_attempts {
            self.lose(Lost::NoPing, now);
            return;
        }
        tracing::debug!("no answer to SYS.Ping: sending the CC253x bootloader skip bytes");
        self.transmit.push_back(vec![BOOTLOADER_SKIP_BYTE; 256]);
        self.phase = Phase::Ping {
            attempt: attempt + 1,
        };
        self.ping_at = Some(now + self.config.ping_timeout);
    }

    fn request(&mut self, message: Message, purpose: Purpose, now: Instant) {
        self.queue.push_back(Request {
            message,
            purpose,
            attempts: 0,
        });
        self.pump(now);
    }

    /// Sends the next queued SREQ (or AREQ) when none is outstanding.
    fn pump(&mut self, now: Instant) {
        while self.outstanding.is_none() {
            let blocked = matches!(
                self.queue.front().map(|r| &r.purpose),
                Some(Purpose::Unicast { .. })
            ) && self.in_flight.len() >= self.config.max_in_flight;
            if blocked {
                return;
            }
            let Some(request) = self.queue.pop_front() else {
                return;
            };
            self.transmit.push_back(request.message.to_bytes());
            let (frame_type, _, _) = request.message.header();
            if frame_type == FrameType::Sreq {
                let timeout = if matches!(self.phase, Phase::Ping { .. }) {
                    self.config.ping_timeout
                } else {
                    self.config.sreq_timeout
                };
                self.outstanding = Some((request, now + timeout));
            }
        }
    }

    fn answers(request: &Message, frame_type: FrameType, answer: &Message) -> bool {
        let (_, subsystem, id) = request.header();
        match answer {
            Message::RpcError { cmd0, cmd1, .. } => {
                *cmd0 == ((1 << 5) | subsystem.0) && *cmd1 == id
            }
            other => {
                let (_, answer_subsystem, answer_id) = other.header();
                frame_type == FrameType::Srsp && answer_subsystem == subsystem && answer_id == id
            }
        }
    }

    fn handle_message(&mut self, message: Message, frame_type: FrameType, now: Instant) {
        if frame_type == FrameType::Srsp {
            let Some((request, _)) = self.outstanding.take() else {
                tracing::debug!("unexpected {}", message.name());
                return;
            };
            if !Self::answers(&request.message, frame_type, &message) {
                tracing::warn!(
                    "{} does not answer {}: ignored",
                    message.name(),
                    request.message.name()
                );
                self.outstanding = Some((request, now + self.config.sreq_timeout));
                return;
            }
            self.handle_response(request, message, now);
            return;
        }
        self.handle_callback(message, now);
    }

    fn handle_response(&mut self, request: Request, answer: Message, now: Instant) {
        let status = match &answer {
            Message::StatusResponse { status, .. } => Some(*status),
            Message::RpcError { error, .. } => Some(0x80 | *error),
            _ => None,
        };
        match request.purpose {
            Purpose::Unicast { tag, tsn } => match status {
                Some(status::SUCCESS) => {
                    self.in_flight
                        .insert(tsn, (tag, now + self.config.delivery_timeout));
                }
                other => self.delivery(
                    tag,
                    DeliveryOutcome::Refused {
                        ncp_status: u32::from(other.unwrap_or(status::FAILURE)),
                    },
                ),
            },
            Purpose::Broadcast { tag } => {
                let outcome = match status {
                    Some(status::SUCCESS) => DeliveryOutcome::Delivered,
                    other => DeliveryOutcome::Refused {
                        ncp_status: u32::from(other.unwrap_or(status::FAILURE)),
                    },
                };
                self.delivery(tag, outcome);
            }
            Purpose::Lookup | Purpose::Other => {}
            Purpose::Startup => startup::advance(self, answer, now),
        }
    }

    fn handle_callback(&mut self, message: Message, now: Instant) {
        match message {
            Message::SysResetInd { reason, .. } => {
                if self.phase == Phase::AwaitReset {
                    startup::advance(
                        self,
                        Message::SysResetInd {
                            reason,
                            transport_rev: 0,
                            product_id: 0,
                            release: [0; 3],
                        },
                        now,
                    );
                } else if self.phase != Phase::Down {
                    self.lose(Lost::StickReset(reason), now);
                }
            }
            Message::ZdoStateChangeInd { state }
                if self.phase == Phase::AwaitStarted
                    && state == DEVICE_STATE_STARTED_AS_COORDINATOR =>
            {
                startup::advance(self, Message::ZdoStateChangeInd { state }, now);
            }
            Message::AfDataConfirm { status, tsn, .. } => {
                if let Some((tag, _)) = self.in_flight.remove(&tsn) {
                    let outcome = if status == status::SUCCESS {
                        DeliveryOutcome::Delivered
                    } else {
                        DeliveryOutcome::Failed {
                            ncp_status: u32::from(status),
                        }
                    };
                    self.delivery(tag, outcome);
                }
            }
            Message::AfIncomingMsg(m) => self.incoming(m.to_incoming(now), now),
            Message::AfIncomingMsgExt(m) => {
                if let Some(message) = m.to_incoming(now) {
                    self.incoming(message, now);
                }
            }
            Message::ZdoEndDeviceAnnceInd { nwk, ieee, .. } => self.learn(Nwk(nwk), Ieee(ieee)),
            Message::ZdoTcDevInd { nwk, ieee, .. } => self.learn(Nwk(nwk), Ieee(ieee)),
            Message::ZdoIeeeAddrRsp(r) | Message::ZdoNwkAddrRsp(r) if r.status == 0 => {
                self.learn(Nwk(r.nwk), Ieee(r.ieee));
            }
            _ => {}
        }
    }

    fn incoming(&mut self, mut message: IncomingMessage, now: Instant) {
        if !self.is_up() {
            return;
        }
        message.ieee = self.devices.ieee(message.source);
        if message.ieee.is_some() {
            self.events.push_back(HostEvent::Incoming(message));
            return;
        }
        let source = message.source;
        let first = !self.held.contains_key(&source);
        self.held
            .entry(source)
            .or_insert_with(|| (now, Vec::new()))
            .1
            .push(message);
        if first {
            let lookup = Message::ZdoIeeeAddrReq {
                nwk: source.0,
                request_type: 0,
                start_index: 0,
            };
            self.request(lookup, Purpose::Lookup, now);
        }
    }

    fn learn(&mut self, nwk: Nwk, ieee: Ieee) {
        self.devices.learn(nwk, ieee);
        self.events.push_back(HostEvent::DeviceJoined { nwk, ieee });
        self.release(nwk, Some(ieee));
    }

    fn release(&mut self, nwk: Nwk, ieee: Option<Ieee>) {
        if let Some((_, messages)) = self.held.remove(&nwk) {
            for mut message in messages {
                message.ieee = ieee;
                self.events.push_back(HostEvent::Incoming(message));
            }
        }
    }

    fn delivery(&mut self, tag: MessageTag, outcome: DeliveryOutcome) {
        self.events.push_back(HostEvent::Delivery { tag, outcome });
    }

    /// Goes down: every send in flight or queued is lost, then [`HostEvent::Lost`].
    pub(super) fn lose(&mut self, why: Lost, _now: Instant) {
        let mut lost: Vec<MessageTag> = self.in_flight.drain().map(|(_, (tag, _))| tag).collect();
        let requests = self.outstanding.take().map(|(r, _)| r).into_iter();
        for request in requests.chain(self.queue.drain(..)) {
            if let Purpose::Unicast { tag, .. } | Purpose::Broadcast { tag } = request.purpose {
                lost.push(tag);
            }
        }
        for tag in lost {
            self.delivery(tag, DeliveryOutcome::LinkLost);
        }
        let held: Vec<Nwk> = self.held.keys().copied().collect();
        for nwk in held {
            self.release(nwk, None);
        }
        self.phase = Phase::Down;
        self.phase_deadline = None;
        self.ping_at = None;
        self.network = None;
        self.events.push_back(HostEvent::Lost(why));
    }
}
