//! The coordinator interface: what the OTA server needs from a Zigbee coordinator, whatever the
//! stick (ARCHITECTURE.md principle 2, STYLE.md rule 5).
//!
//! A [`Coordinator`] sends APS unicasts and broadcasts, reports their delivery, tells the NCP's
//! maximum APS payload, opens the network for joining and keeps a [`DeviceTable`] of NWK ↔ IEEE
//! addresses. Everything it hears arrives as a [`CoordinatorEvent`] on a bounded channel.
//!
//! Sends never wait: they queue the message and hand back a [`MessageTag`]; exactly one
//! [`CoordinatorEvent::DeliveryReport`] with that tag follows (delivered, failed, refused by the
//! NCP, lost to an NCP reset, or timed out). That keeps the OTA server sans-IO: it emits sends and
//! consumes events.
//!
//! The drivers are [`ezsp::EzspCoordinator`] (Silicon Labs EZSP over ASH, UG100/UG101) and
//! [`znp::ZnpCoordinator`] (TI Z-Stack MT over UART), each on a serial port opened by [`serial`].
//!
//! ```
//! use zigbee_otad::coordinator::{DeviceTable, Ieee, Nwk};
//! let mut table = DeviceTable::default();
//! table.learn(Nwk(0x1234), Ieee(0x0011_2233_4455_6677));
//! assert_eq!(table.ieee(Nwk(0x1234)), Some(Ieee(0x0011_2233_4455_6677)));
//! assert_eq!(Nwk(0x1234).to_string(), "0x1234");
//! ```

pub mod any;
pub mod device_store;
pub mod device_table;
pub mod driver_io;
pub mod ezsp;
pub mod handle;
pub mod latency;
pub mod network;
pub mod serial;
#[cfg(test)]
pub(crate) mod virtual_rig;
pub mod znp;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

pub use device_table::DeviceTable;
pub use serial::{FlowControl, SerialConfig};

/// A device's IEEE (EUI-64) address, shared across the crate.
pub use crate::zigbee::Ieee;

pub use crate::zigbee::{
    CLUSTER_BASIC, CLUSTER_OTA_UPGRADE, Nwk, PROFILE_HOME_AUTOMATION, PROFILE_ZDO,
};

/// What a coordinator driver needs to run (the `[coordinator]` config section plus the state
/// directory and the endpoint the OTA server answers on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// The serial port.
    pub serial: SerialConfig,
    /// Where `network.json` (generated network parameters) and `devices.txt` live.
    pub state_dir: PathBuf,
    /// Network parameters fixed by the config; the rest are generated once and kept.
    pub network: network::NetworkOverrides,
    /// Our endpoint, registered with the OTA Upgrade cluster as an input (server) cluster.
    pub endpoint: u8,
}

/// Unicasts awaiting their [`CoordinatorEvent::DeliveryReport`] at most, per coordinator: the
/// EZSP driver's limit (below the 255 tags of EZSP v13) and the daemon's outbox's, so the
/// daemon never hands the coordinator more than it can track.
pub const MAX_UNICASTS_IN_FLIGHT: usize = 64;

/// Identifies one send; its [`CoordinatorEvent::DeliveryReport`] carries the same tag.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageTag(pub u32);

impl fmt::Debug for MessageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageTag({})", self.0)
    }
}

/// An APS unicast to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnicastMessage {
    /// The device's network address.
    pub destination: Nwk,
    /// Our endpoint (the one registered with the OTA cluster).
    pub src_endpoint: u8,
    /// The device's endpoint.
    pub dst_endpoint: u8,
    /// Application profile (0x0104 for OTA).
    pub profile: u16,
    /// Cluster id (0x0019 for OTA).
    pub cluster: u16,
    /// The ZCL frame.
    pub payload: Vec<u8>,
    /// Ask for an APS acknowledgement with retries, so the delivery report means "the device got
    /// it" rather than "the first hop took it".
    pub aps_ack: bool,
}

impl UnicastMessage {
    /// An OTA Upgrade cluster frame (Home Automation profile) to one device, APS-acknowledged:
    /// what the OTA server sends.
    pub fn ota(destination: Nwk, src_endpoint: u8, dst_endpoint: u8, zcl_frame: Vec<u8>) -> Self {
        UnicastMessage {
            destination,
            src_endpoint,
            dst_endpoint,
            profile: PROFILE_HOME_AUTOMATION,
            cluster: CLUSTER_OTA_UPGRADE,
            payload: zcl_frame,
            aps_ack: true,
        }
    }
}

/// A ZCL request to one device, on any cluster: the general "ask a device and hear its
/// answer" path (reading Basic cluster attributes, for one). The coordinator sends it like any
/// unicast ([`Coordinator::send_zcl_request`]); the answer arrives as an ordinary
/// [`CoordinatorEvent::Incoming`], and [`ZclRequest::is_answered_by`] tells whether a message
/// is it (same device, endpoint, profile and cluster, the request's transaction sequence
/// number, the other direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZclRequest {
    /// The device's network address.
    pub destination: Nwk,
    /// Our endpoint.
    pub src_endpoint: u8,
    /// The device's endpoint.
    pub dst_endpoint: u8,
    /// Application profile.
    pub profile: u16,
    /// Cluster id.
    pub cluster: u16,
    /// The whole ZCL frame (header and payload).
    pub zcl_frame: Vec<u8>,
}

impl ZclRequest {
    /// The request's transaction sequence number, when its header can be read.
    pub fn tsn(&self) -> Option<u8> {
        crate::zcl::ZclHeader::decode(&self.zcl_frame)
            .ok()
            .map(|(header, _)| header.tsn)
    }

    /// True when `message` answers this request.
    pub fn is_answered_by(&self, message: &IncomingMessage) -> bool {
        let Ok((request, _)) = crate::zcl::ZclHeader::decode(&self.zcl_frame) else {
            return false;
        };
        let Ok((answer, _)) = crate::zcl::ZclHeader::decode(&message.payload) else {
            return false;
        };
        message.source == self.destination
            && message.src_endpoint == self.dst_endpoint
            && message.profile == self.profile
            && message.cluster == self.cluster
            && !message.broadcast
            && answer.tsn == request.tsn
            && answer.direction == request.direction.flipped()
    }

    /// The APS unicast that carries it (acknowledged, so its delivery report means "the device
    /// got it").
    pub fn to_unicast(&self) -> UnicastMessage {
        UnicastMessage {
            destination: self.destination,
            src_endpoint: self.src_endpoint,
            dst_endpoint: self.dst_endpoint,
            profile: self.profile,
            cluster: self.cluster,
            payload: self.zcl_frame.clone(),
            aps_ack: true,
        }
    }
}

/// An APS broadcast (Image Notify, for instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastMessage {
    /// A broadcast address ([`Nwk::BROADCAST_ALL`], [`Nwk::BROADCAST_RX_ON_WHEN_IDLE`], ...).
    pub destination: Nwk,
    /// Our endpoint.
    pub src_endpoint: u8,
    /// The devices' endpoint (0xFF for all endpoints).
    pub dst_endpoint: u8,
    /// Application profile.
    pub profile: u16,
    /// Cluster id.
    pub cluster: u16,
    /// Maximum hops (0 lets the stack choose).
    pub radius: u8,
    /// The ZCL frame.
    pub payload: Vec<u8>,
}

/// An APS message a device sent us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The sender's network address.
    pub source: Nwk,
    /// The sender's IEEE address when the coordinator knows it (from the NCP or the device table).
    pub ieee: Option<Ieee>,
    /// The sender's endpoint.
    pub src_endpoint: u8,
    /// Our endpoint the message was addressed to.
    pub dst_endpoint: u8,
    /// Application profile.
    pub profile: u16,
    /// Cluster id.
    pub cluster: u16,
    /// The APS sequence number.
    pub aps_sequence: u8,
    /// The message (a ZCL frame for cluster traffic).
    pub payload: Vec<u8>,
    /// Link quality of the last hop.
    pub lqi: u8,
    /// Received signal strength of the last hop, dBm.
    pub rssi: i8,
    /// True when the message was broadcast or multicast rather than unicast to us.
    pub broadcast: bool,
    /// When the driver read the bytes that carried it from the port (the start of the answer
    /// latency, see [`Coordinator::send_answer`]); `None` when the driver does not stamp.
    pub read_at: Option<Instant>,
}

/// When an answer's request was read from the port and when the answer was ready, for the
/// driver's latency figures ([`Coordinator::send_answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerTiming {
    /// [`IncomingMessage::read_at`] of the request.
    pub request_read_at: Instant,
    /// When the OTA server had produced the answer (before any wait for the coordinator).
    pub answer_ready_at: Instant,
}

/// How one send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Unicast: delivered (APS-acknowledged when `aps_ack` was set); broadcast: sent.
    Delivered,
    /// The NCP refused to queue it (its status code, e.g. EMBER 0x72 MAX_MESSAGE_LIMIT_REACHED).
    Refused {
        /// The NCP's status, widened to the v14+ 32-bit form.
        ncp_status: u32,
    },
    /// The NCP queued it but delivery failed (e.g. EMBER 0x66 / sl 0x0C02 DELIVERY_FAILED).
    Failed {
        /// The NCP's status, widened to the v14+ 32-bit form.
        ncp_status: u32,
    },
    /// The NCP reset or the serial port vanished before the outcome was known.
    LinkLost,
    /// No report came from the NCP in time.
    TimedOut,
}

impl DeliveryOutcome {
    /// True only for [`DeliveryOutcome::Delivered`].
    pub fn is_delivered(self) -> bool {
        self == Self::Delivered
    }
}

/// Where the coordinator is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoordinatorState {
    /// Opening the port, resetting the NCP, configuring it, bringing the network up.
    Starting,
    /// The network is up: sends are accepted.
    Up,
    /// The NCP reports the network down (it usually comes back by itself).
    NetworkDown,
    /// The NCP reset unexpectedly or the link failed; the driver restarts it.
    Resetting,
    /// The serial port is gone; the driver reopens it with backoff.
    Disconnected,
    /// The driver stopped (cancelled).
    Stopped,
}

/// The network the coordinator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The coordinator's IEEE address.
    pub ieee: Ieee,
    /// The coordinator's network address (0x0000).
    pub nwk: Nwk,
    /// 802.15.4 channel, 11..=26.
    pub channel: u8,
    /// PAN id.
    pub pan_id: u16,
    /// Extended PAN id.
    pub extended_pan_id: u64,
    /// The EZSP protocol version the NCP speaks (driver specific; 0 when not applicable).
    pub protocol_version: u8,
}

/// Something the coordinator heard or did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoordinatorEvent {
    /// A device sent us an APS message.
    Incoming(IncomingMessage),
    /// The outcome of a send.
    DeliveryReport {
        /// The tag the send returned.
        tag: MessageTag,
        /// How it ended.
        outcome: DeliveryOutcome,
    },
    /// A device joined or announced itself (its NWK address may be new).
    DeviceJoined {
        /// Its network address.
        nwk: Nwk,
        /// Its IEEE address.
        ieee: Ieee,
    },
    /// The coordinator changed state.
    StateChanged(CoordinatorState),
}

/// Why a send or request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The network is not up (starting, resetting, port gone).
    #[error("the coordinator is not up (state {0:?})")]
    NotUp(CoordinatorState),
    /// The driver's command queue is full: try again after some delivery reports.
    #[error("the coordinator's command queue is full")]
    QueueFull,
    /// The payload exceeds the NCP's maximum APS payload.
    #[error("payload of {len} bytes exceeds the NCP's maximum APS payload of {max} bytes")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The NCP's maximum.
        max: usize,
    },
    /// The destination is not a broadcast address (for broadcasts) or is one (for unicasts).
    #[error("destination {0} is not valid for this kind of send")]
    BadDestination(Nwk),
    /// The driver has stopped.
    #[error("the coordinator driver has stopped")]
    Stopped,
    /// A permit-join longer than [`MAX_PERMIT_JOIN_SECONDS`] (255 means "forever").
    #[error("permit-join takes 0 (close) to {MAX_PERMIT_JOIN_SECONDS} seconds, not {0}")]
    PermitJoinTooLong(u8),
}

/// The longest permit-join accepted, in seconds (the stack reads 255 as "open forever").
pub const MAX_PERMIT_JOIN_SECONDS: u8 = 254;

/// The interface between the OTA server and a coordinator driver.
///
/// Every method returns at once; outcomes arrive as [`CoordinatorEvent`]s on the receiver the
/// driver handed out when it started.
pub trait Coordinator: Send + Sync + fmt::Debug {
    /// Queues an APS unicast; one [`CoordinatorEvent::DeliveryReport`] with the returned tag follows.
    fn send_unicast(&self, message: UnicastMessage) -> Result<MessageTag, SendError>;
    /// Like [`Coordinator::send_unicast`], for the answer to a request: the driver records
    /// the host's share (request read -> answer ready) and serial-in -> serial-out (request read
    /// -> the write carrying the answer) in [`Coordinator::answer_latency`].
    fn send_answer(
        &self,
        message: UnicastMessage,
        timing: AnswerTiming,
    ) -> Result<MessageTag, SendError> {
        let _ = timing;
        self.send_unicast(message)
    }
    /// Sends a ZCL request to one device; one [`CoordinatorEvent::DeliveryReport`] with the
    /// returned tag follows, and the device's answer, if any, arrives as an
    /// [`CoordinatorEvent::Incoming`] that [`ZclRequest::is_answered_by`] recognises.
    fn send_zcl_request(&self, request: &ZclRequest) -> Result<MessageTag, SendError> {
        self.send_unicast(request.to_unicast())
    }
    /// Queues an APS broadcast; one [`CoordinatorEvent::DeliveryReport`] with the returned tag follows.
    fn send_broadcast(&self, message: BroadcastMessage) -> Result<MessageTag, SendError>;
    /// The NCP's maximum APS payload in bytes, once the network is up.
    fn max_aps_payload(&self) -> Option<usize>;
    /// Opens the network for joining for `seconds` (0 closes it). At most
    /// [`MAX_PERMIT_JOIN_SECONDS`]: the stack's 255, "open forever", is refused
    /// ([`SendError::PermitJoinTooLong`]), since the trust centre hands the network key to any
    /// device joining while the network is open.
    fn permit_joining(&self, seconds: u8) -> Result<(), SendError>;
    /// A snapshot of the NWK ↔ IEEE table.
    fn device_table(&self) -> DeviceTable;
    /// The current state.
    fn state(&self) -> CoordinatorState;
    /// The network, once it is up.
    fn network_info(&self) -> Option<NetworkInfo>;
    /// The answer latency measured so far, when the driver measures it.
    fn answer_latency(&self) -> Option<latency::AnswerLatency> {
        None
    }
    /// The protocol the coordinator speaks and, once known, its firmware as the stick
    /// describes itself (`None` from drivers that do not say).
    fn firmware(&self) -> Option<CoordinatorFirmware> {
        None
    }
}

/// What the coordinator is, for status: the protocol and the firmware it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorFirmware {
    /// `"ezsp"` or `"znp"`.
    pub protocol: &'static str,
    /// The firmware as the stick describes itself, e.g. "Z-Stack 3.x.0 2.7.1 (build
    /// 20230507)" or "EZSP v13"; `None` until start-up has read it.
    pub version: Option<String>,
}
