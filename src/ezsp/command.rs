//! EZSP commands, responses and callbacks for protocol versions 8–17 (UG100 §"Configuration
//! Frames", "Networking Frames", "Messaging Frames", "Security Frames"; layouts checked
//! against bellows' `ezsp/v13` and `ezsp/v14` command tables).
//!
//! Each message has a parameters struct with `encode(version, out)` and `decode(version,
//! bytes)`, and [`Command`], [`Response`] and [`Callback`] gather them so that both roles are
//! covered: the host encodes commands and decodes responses and callbacks, a simulated NCP
//! decodes commands and encodes responses and callbacks. [`Frame`] adds the header.
//!
//! What changed at v14 (bellows `v14/commands.py`): every status is a u32 `sl_status_t`;
//! message tags are u16; `sendBroadcast` gained `alias` and `nwkSequence` in front;
//! `messageSentHandler` moved the status first; `incomingMessageHandler` added the sender's
//! EUI-64 and a timestamp and moved LQI/RSSI; `lookupNodeIdByEui64` gained a status.
//!
//! ```
//! use zigbee_otad::ezsp::EzspVersion;
//! use zigbee_otad::ezsp::command::{Command, SetConfigurationValue};
//! use zigbee_otad::ezsp::types::ConfigId;
//! let command = Command::SetConfigurationValue(SetConfigurationValue {
//!     config_id: ConfigId::PACKET_BUFFER_COUNT,
//!     value: 255,
//! });
//! let mut out = Vec::new();
//! command.encode_frame(EzspVersion::V13, 4, &mut out).unwrap();
//! assert_eq!(out, [0x04, 0x00, 0x01, 0x53, 0x00, 0x01, 0xFF, 0x00]);
//! ```

use super::frame::{FrameControl, FrameFormat, FrameHeader, FrameId};
use super::params::{ParamReader, ParamWriter, StatusKind};
use super::status::Status;
use super::types::{
    ApsFrame, ConfigId, DecisionId, DeviceAnnounce, DeviceUpdate, Eui64, IncomingMessageType,
    InitialSecurityState, JoinDecision, NetworkInitBitmask, NetworkParameters, NetworkStatus,
    NodeId, NodeType, OutgoingMessageType, PolicyId, ValueId,
};
use super::{DecodeError, EncodeError, EzspVersion};

/// Public `encode`/`decode` of a parameters struct, from its crate-private `write`/`read`.
macro_rules! parameters_codec {
    ($type:ident, $name:literal) => {
        impl $type {
            /// Appends the parameters (no frame header) in `version`'s layout.
            pub fn encode(
                &self,
                version: EzspVersion,
                out: &mut Vec<u8>,
            ) -> Result<(), EncodeError> {
                self.write(&mut ParamWriter::new(out, $name, version))
            }

            /// Decodes the parameters (no frame header) in `version`'s layout; trailing
            /// bytes are an error.
            pub fn decode(version: EzspVersion, parameters: &[u8]) -> Result<Self, DecodeError> {
                let mut reader = ParamReader::new(parameters, 0, $name, version);
                let value = Self::read(&mut reader)?;
                reader.finish()?;
                Ok(value)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Requests (host → NCP)

/// `version` (0x0000): the first command after every reset.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionRequest {
    /// The version the host wants to speak.
    pub desired_protocol_version: u8,
}

impl VersionRequest {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            desired_protocol_version: r.u8("desiredProtocolVersion")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.desired_protocol_version);
        Ok(())
    }

    /// The whole legacy-format frame (`seq 00 00 desired`) every host sends first.
    pub fn encode_legacy_frame(&self, sequence: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&[sequence, 0x00, 0x00, self.desired_protocol_version]);
    }
}
parameters_codec!(VersionRequest, "version");

/// `getConfigurationValue` (0x0052).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetConfigurationValue {
    /// Which value.
    pub config_id: ConfigId,
}

impl GetConfigurationValue {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            config_id: ConfigId(r.u8("configId")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.config_id.0);
        Ok(())
    }
}
parameters_codec!(GetConfigurationValue, "getConfigurationValue");

/// `setConfigurationValue` (0x0053).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetConfigurationValue {
    /// Which value.
    pub config_id: ConfigId,
    /// The new value.
    pub value: u16,
}

impl SetConfigurationValue {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            config_id: ConfigId(r.u8("configId")?),
            value: r.u16("value")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.config_id.0);
        w.u16(self.value);
        Ok(())
    }
}
parameters_codec!(SetConfigurationValue, "setConfigurationValue");

/// `getValue` (0x00AA).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetValue {
    /// Which value.
    pub value_id: ValueId,
}

impl GetValue {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            value_id: ValueId(r.u8("valueId")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.value_id.0);
        Ok(())
    }
}
parameters_codec!(GetValue, "getValue");

/// `setValue` (0x00AB).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SetValue {
    /// Which value.
    pub value_id: ValueId,
    /// The new value (at most 255 bytes).
    pub value: Vec<u8>,
}

impl SetValue {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            value_id: ValueId(r.u8("valueId")?),
            value: r.lv_bytes("value")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.value_id.0);
        w.lv_bytes("value", &self.value)
    }
}
parameters_codec!(SetValue, "setValue");

/// `setPolicy` (0x0055).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetPolicy {
    /// Which policy.
    pub policy_id: PolicyId,
    /// The decision (or decision bitmask for the trust-center policy).
    pub decision_id: DecisionId,
}

impl SetPolicy {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            policy_id: PolicyId(r.u8("policyId")?),
            decision_id: DecisionId(r.u8("decisionId")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.policy_id.0);
        w.u8(self.decision_id.0);
        Ok(())
    }
}
parameters_codec!(SetPolicy, "setPolicy");

/// `addEndpoint` (0x0002): registers an endpoint, after every NCP reset and before
/// `networkInit`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddEndpoint {
    /// Endpoint number.
    pub endpoint: u8,
    /// Application profile.
    pub profile_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Device version.
    pub device_version: u8,
    /// Server clusters (0x0019 for an OTA server).
    pub input_clusters: Vec<u16>,
    /// Client clusters.
    pub output_clusters: Vec<u16>,
}

impl AddEndpoint {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let endpoint = r.u8("endpoint")?;
        let profile_id = r.u16("profileId")?;
        let device_id = r.u16("deviceId")?;
        let device_version = r.u8("deviceVersion")?;
        let input_count = r.u8("inputClusterCount")?;
        let output_count = r.u8("outputClusterCount")?;
        Ok(Self {
            endpoint,
            profile_id,
            device_id,
            device_version,
            input_clusters: r.u16_list("inputClusterList", input_count)?,
            output_clusters: r.u16_list("outputClusterList", output_count)?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.endpoint);
        w.u16(self.profile_id);
        w.u16(self.device_id);
        w.u8(self.device_version);
        w.count("inputClusterCount", self.input_clusters.len())?;
        w.count("outputClusterCount", self.output_clusters.len())?;
        for cluster in self.input_clusters.iter().chain(&self.output_clusters) {
            w.u16(*cluster);
        }
        Ok(())
    }
}
parameters_codec!(AddEndpoint, "addEndpoint");

/// `networkInit` (0x0017): resume the network stored in the NCP's tokens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NetworkInit {
    /// Options.
    pub bitmask: NetworkInitBitmask,
}

impl NetworkInit {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bitmask: NetworkInitBitmask(r.u16("networkInitBitmask")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u16(self.bitmask.0);
        Ok(())
    }
}
parameters_codec!(NetworkInit, "networkInit");

/// `formNetwork` (0x001E): form a new network as coordinator (after
/// `setInitialSecurityState`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FormNetwork {
    /// The network to form.
    pub parameters: NetworkParameters,
}

impl FormNetwork {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            parameters: NetworkParameters::read(r)?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        self.parameters.write(w);
        Ok(())
    }
}
parameters_codec!(FormNetwork, "formNetwork");

/// `permitJoining` (0x0022).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PermitJoining {
    /// Seconds to allow joins; 0 closes, 0xFF opens until closed.
    pub duration: u8,
}

impl PermitJoining {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            duration: r.u8("duration")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.duration);
        Ok(())
    }
}
parameters_codec!(PermitJoining, "permitJoining");

/// `sendUnicast` (0x0034).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SendUnicast {
    /// How to address the message (normally [`OutgoingMessageType::DIRECT`]).
    pub message_type: OutgoingMessageType,
    /// Destination node id (or address-table / binding index).
    pub index_or_destination: NodeId,
    /// APS header.
    pub aps_frame: ApsFrame,
    /// Tag echoed in `messageSentHandler` (u8 before v14, u16 from v14).
    pub message_tag: u16,
    /// The APS payload (a ZCL frame).
    pub message_contents: Vec<u8>,
}

impl SendUnicast {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            message_type: OutgoingMessageType(r.u8("type")?),
            index_or_destination: NodeId(r.u16("indexOrDestination")?),
            aps_frame: ApsFrame::read(r)?,
            message_tag: r.message_tag("messageTag")?,
            message_contents: r.lv_bytes("messageContents")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.message_type.0);
        w.u16(self.index_or_destination.0);
        self.aps_frame.write(w);
        w.message_tag("messageTag", self.message_tag)?;
        w.lv_bytes("messageContents", &self.message_contents)
    }
}
parameters_codec!(SendUnicast, "sendUnicast");

/// `sendBroadcast` (0x0036).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SendBroadcast {
    /// Source alias (v14+; [`NodeId::NULL`] for none, the only value before v14).
    pub alias: NodeId,
    /// 0xFFFF all, 0xFFFD receivers on when idle, 0xFFFC routers.
    pub destination: NodeId,
    /// Network sequence number for the alias (v14+; 0 before v14).
    pub nwk_sequence: u8,
    /// APS header.
    pub aps_frame: ApsFrame,
    /// Maximum hops (0 = the stack's maximum).
    pub radius: u8,
    /// Tag echoed in `messageSentHandler` (u8 before v14, u16 from v14).
    pub message_tag: u16,
    /// The APS payload.
    pub message_contents: Vec<u8>,
}

impl SendBroadcast {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let (alias, destination, nwk_sequence) = if r.version().uses_sl_status() {
            (
                NodeId(r.u16("alias")?),
                NodeId(r.u16("destination")?),
                r.u8("nwkSequence")?,
            )
        } else {
            (NodeId::NULL, NodeId(r.u16("destination")?), 0)
        };
        Ok(Self {
            alias,
            destination,
            nwk_sequence,
            aps_frame: ApsFrame::read(r)?,
            radius: r.u8("radius")?,
            message_tag: r.message_tag("messageTag")?,
            message_contents: r.lv_bytes("messageContents")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        if w.version().uses_sl_status() {
            w.u16(self.alias.0);
            w.u16(self.destination.0);
            w.u8(self.nwk_sequence);
        } else {
            if self.alias != NodeId::NULL {
                return Err(w.not_representable(
                    "alias",
                    u64::from(self.alias.0),
                    "sendBroadcast has no alias before v14",
                ));
            }
            if self.nwk_sequence != 0 {
                return Err(w.not_representable(
                    "nwkSequence",
                    u64::from(self.nwk_sequence),
                    "sendBroadcast has no sequence before v14",
                ));
            }
            w.u16(self.destination.0);
        }
        self.aps_frame.write(w);
        w.u8(self.radius);
        w.message_tag("messageTag", self.message_tag)?;
        w.lv_bytes("messageContents", &self.message_contents)
    }
}
parameters_codec!(SendBroadcast, "sendBroadcast");

/// `lookupNodeIdByEui64` (0x0060).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupNodeIdByEui64 {
    /// The device to look up.
    pub eui64: Eui64,
}

impl LookupNodeIdByEui64 {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            eui64: Eui64::read(r, "eui64")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.bytes(&self.eui64.0);
        Ok(())
    }
}
parameters_codec!(LookupNodeIdByEui64, "lookupNodeIdByEui64");

/// `lookupEui64ByNodeId` (0x0061).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupEui64ByNodeId {
    /// The device to look up.
    pub node_id: NodeId,
}

impl LookupEui64ByNodeId {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: NodeId(r.u16("nodeId")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u16(self.node_id.0);
        Ok(())
    }
}
parameters_codec!(LookupEui64ByNodeId, "lookupEui64ByNodeId");

/// `setInitialSecurityState` (0x0068), before `formNetwork`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetInitialSecurityState {
    /// Keys and security mode.
    pub state: InitialSecurityState,
}

impl SetInitialSecurityState {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            state: InitialSecurityState::read(r)?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        self.state.write(w);
        Ok(())
    }
}
parameters_codec!(SetInitialSecurityState, "setInitialSecurityState");

// ---------------------------------------------------------------------------------------------
// Responses (NCP → host, answering a command)

/// The answer to `version`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VersionResponse {
    /// The NCP's EZSP protocol version.
    pub protocol_version: u8,
    /// Stack type (2 = mesh).
    pub stack_type: u8,
    /// Stack version, one nibble per digit (0x7440 = 7.4.4.0).
    pub stack_version: u16,
}

impl VersionResponse {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.u8("protocolVersion")?,
            stack_type: r.u8("stackType")?,
            stack_version: r.u16("stackVersion")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.protocol_version);
        w.u8(self.stack_type);
        w.u16(self.stack_version);
        Ok(())
    }

    /// The whole legacy-format response (`seq 80 00 …`), as an NCP answers the host's first
    /// `version`.
    pub fn encode_legacy_frame(&self, sequence: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&[sequence, 0x80, 0x00, self.protocol_version, self.stack_type]);
        out.extend_from_slice(&self.stack_version.to_le_bytes());
    }
}
parameters_codec!(VersionResponse, "version response");

/// The answer to `getConfigurationValue`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetConfigurationValueResponse {
    /// EzspStatus before v14.
    pub status: Status,
    /// The value.
    pub value: u16,
}

impl GetConfigurationValueResponse {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ezsp)?,
            value: r.u16("value")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ezsp, self.status)?;
        w.u16(self.value);
        Ok(())
    }
}
parameters_codec!(
    GetConfigurationValueResponse,
    "getConfigurationValue response"
);

/// The answer to `getValue`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GetValueResponse {
    /// EzspStatus before v14.
    pub status: Status,
    /// The value bytes.
    pub value: Vec<u8>,
}

impl GetValueResponse {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ezsp)?,
            value: r.lv_bytes("value")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ezsp, self.status)?;
        w.lv_bytes("value", &self.value)
    }
}
parameters_codec!(GetValueResponse, "getValue response");

/// The answer to `getNetworkParameters`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GetNetworkParametersResponse {
    /// EmberStatus before v14.
    pub status: Status,
    /// This node's role (1 = coordinator).
    pub node_type: NodeType,
    /// The network.
    pub parameters: NetworkParameters,
}

impl GetNetworkParametersResponse {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ember)?,
            node_type: NodeType(r.u8("nodeType")?),
            parameters: NetworkParameters::read(r)?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ember, self.status)?;
        w.u8(self.node_type.0);
        self.parameters.write(w);
        Ok(())
    }
}
parameters_codec!(
    GetNetworkParametersResponse,
    "getNetworkParameters response"
);

/// The answer to `sendUnicast` and `sendBroadcast`: queued or not (delivery is reported
/// later by `messageSentHandler`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SendResponse {
    /// EmberStatus before v14.
    pub status: Status,
    /// The APS sequence number given to the message.
    pub sequence: u8,
}

impl SendResponse {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ember)?,
            sequence: r.u8("sequence")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ember, self.status)?;
        w.u8(self.sequence);
        Ok(())
    }
}
parameters_codec!(SendResponse, "send response");

/// The answer to `lookupNodeIdByEui64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupNodeIdByEui64Response {
    /// v14+ only (`None` before v14, where an unknown device reads as node id 0xFFFF).
    pub status: Option<Status>,
    /// The node id, 0xFFFF when unknown.
    pub node_id: NodeId,
}

impl LookupNodeIdByEui64Response {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let status = if r.version().uses_sl_status() {
            Some(r.status("status", StatusKind::Ember)?)
        } else {
            None
        };
        Ok(Self {
            status,
            node_id: NodeId(r.u16("nodeId")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        match (w.version().uses_sl_status(), self.status) {
            (true, Some(status)) => w.status("status", StatusKind::Ember, status)?,
            (false, None) => {}
            (true, None) => {
                return Err(w.not_representable("status", 0, "v14 and later require a status"));
            }
            (false, Some(_)) => {
                return Err(w.not_representable("status", 0, "there is no status before v14"));
            }
        }
        w.u16(self.node_id.0);
        Ok(())
    }
}
parameters_codec!(LookupNodeIdByEui64Response, "lookupNodeIdByEui64 response");

/// The answer to `lookupEui64ByNodeId`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookupEui64ByNodeIdResponse {
    /// EmberStatus before v14.
    pub status: Status,
    /// The EUI-64 when found.
    pub eui64: Eui64,
}

impl LookupEui64ByNodeIdResponse {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            status: r.status("status", StatusKind::Ember)?,
            eui64: Eui64::read(r, "eui64")?,
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.status("status", StatusKind::Ember, self.status)?;
        w.bytes(&self.eui64.0);
        Ok(())
    }
}
parameters_codec!(LookupEui64ByNodeIdResponse, "lookupEui64ByNodeId response");

// ---------------------------------------------------------------------------------------------
// Callbacks (NCP → host, unsolicited)

/// `messageSentHandler` (0x003F): the delivery result of a `sendUnicast`/`sendBroadcast`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MessageSentHandler {
    /// How the message was addressed.
    pub message_type: OutgoingMessageType,
    /// Destination node id (or index).
    pub index_or_destination: NodeId,
    /// The APS header that was sent.
    pub aps_frame: ApsFrame,
    /// The tag given to the send command.
    pub message_tag: u16,
    /// Delivery result (EmberStatus before v14; DELIVERY_FAILED 0x66 / 0x0C02).
    pub status: Status,
    /// The payload, when the message-contents policy asks for it.
    pub message_contents: Vec<u8>,
}

impl MessageSentHandler {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        if r.version().uses_sl_status() {
            let status = r.status("status", StatusKind::Ember)?;
            Ok(Self {
                message_type: OutgoingMessageType(r.u8("type")?),
                index_or_destination: NodeId(r.u16("indexOrDestination")?),
                aps_frame: ApsFrame::read(r)?,
                message_tag: r.message_tag("messageTag")?,
                status,
                message_contents: r.lv_bytes("messageContents")?,
            })
        } else {
            Ok(Self {
                message_type: OutgoingMessageType(r.u8("type")?),
                index_or_destination: NodeId(r.u16("indexOrDestination")?),
                aps_frame: ApsFrame::read(r)?,
                message_tag: r.message_tag("messageTag")?,
                status: r.status("status", StatusKind::Ember)?,
                message_contents: r.lv_bytes("messageContents")?,
            })
        }
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        let status_first = w.version().uses_sl_status();
        if status_first {
            w.status("status", StatusKind::Ember, self.status)?;
        }
        w.u8(self.message_type.0);
        w.u16(self.index_or_destination.0);
        self.aps_frame.write(w);
        w.message_tag("messageTag", self.message_tag)?;
        if !status_first {
            w.status("status", StatusKind::Ember, self.status)?;
        }
        w.lv_bytes("messageContents", &self.message_contents)
    }
}
parameters_codec!(MessageSentHandler, "messageSentHandler");

/// `incomingMessageHandler` (0x0045): a message for one of the host's endpoints (or a ZDO
/// message the stack passes up, such as a device announce).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IncomingMessageHandler {
    /// Unicast, broadcast, multicast…
    pub message_type: IncomingMessageType,
    /// APS header as received.
    pub aps_frame: ApsFrame,
    /// Link quality of the last hop.
    pub last_hop_lqi: u8,
    /// RSSI of the last hop, dBm.
    pub last_hop_rssi: i8,
    /// Sender's node id.
    pub sender: NodeId,
    /// Sender's EUI-64 (v14+; `None` before v14).
    pub sender_eui64: Option<Eui64>,
    /// Binding table index of the sender, 0xFF for none.
    pub binding_index: u8,
    /// Address table index of the sender, 0xFF for none.
    pub address_index: u8,
    /// Receive timestamp (v14+; `None` before v14).
    pub timestamp: Option<u32>,
    /// The APS payload.
    pub message_contents: Vec<u8>,
}

impl IncomingMessageHandler {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        let message_type = IncomingMessageType(r.u8("type")?);
        let aps_frame = ApsFrame::read(r)?;
        if r.version().uses_sl_status() {
            let sender = NodeId(r.u16("sender")?);
            let sender_eui64 = Some(Eui64::read(r, "senderEui64")?);
            let binding_index = r.u8("bindingIndex")?;
            let address_index = r.u8("addressIndex")?;
            let last_hop_lqi = r.u8("lastHopLqi")?;
            let last_hop_rssi = r.i8("lastHopRssi")?;
            let timestamp = Some(r.u32("lastHopTimestamp")?);
            Ok(Self {
                message_type,
                aps_frame,
                last_hop_lqi,
                last_hop_rssi,
                sender,
                sender_eui64,
                binding_index,
                address_index,
                timestamp,
                message_contents: r.lv_bytes("messageContents")?,
            })
        } else {
            Ok(Self {
                message_type,
                aps_frame,
                last_hop_lqi: r.u8("lastHopLqi")?,
                last_hop_rssi: r.i8("lastHopRssi")?,
                sender: NodeId(r.u16("sender")?),
                sender_eui64: None,
                binding_index: r.u8("bindingIndex")?,
                address_index: r.u8("addressIndex")?,
                timestamp: None,
                message_contents: r.lv_bytes("messageContents")?,
            })
        }
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.message_type.0);
        self.aps_frame.write(w);
        if w.version().uses_sl_status() {
            let (Some(eui64), Some(timestamp)) = (self.sender_eui64, self.timestamp) else {
                return Err(w.not_representable(
                    "senderEui64/lastHopTimestamp",
                    0,
                    "v14 and later carry the sender's EUI-64 and a timestamp",
                ));
            };
            w.u16(self.sender.0);
            w.bytes(&eui64.0);
            w.u8(self.binding_index);
            w.u8(self.address_index);
            w.u8(self.last_hop_lqi);
            w.i8(self.last_hop_rssi);
            w.u32(timestamp);
        } else {
            if self.sender_eui64.is_some() || self.timestamp.is_some() {
                return Err(w.not_representable(
                    "senderEui64/lastHopTimestamp",
                    0,
                    "there is no sender EUI-64 or timestamp before v14",
                ));
            }
            w.u8(self.last_hop_lqi);
            w.i8(self.last_hop_rssi);
            w.u16(self.sender.0);
            w.u8(self.binding_index);
            w.u8(self.address_index);
        }
        w.lv_bytes("messageContents", &self.message_contents)
    }

    /// The ZDO device announce this message carries, if it is one (profile 0, cluster
    /// 0x0013) and well formed.
    pub fn device_announce(&self) -> Option<DeviceAnnounce> {
        if self.aps_frame.profile_id == DeviceAnnounce::PROFILE_ID
            && self.aps_frame.cluster_id == DeviceAnnounce::CLUSTER_ID
        {
            DeviceAnnounce::decode(&self.message_contents).ok()
        } else {
            None
        }
    }
}
parameters_codec!(IncomingMessageHandler, "incomingMessageHandler");

/// `trustCenterJoinHandler` (0x0024): a device joined, rejoined or left (seen by the TC).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TrustCenterJoinHandler {
    /// The device's node id.
    pub new_node_id: NodeId,
    /// The device's EUI-64.
    pub new_node_eui64: Eui64,
    /// What happened.
    pub status: DeviceUpdate,
    /// What the trust center decided.
    pub policy_decision: JoinDecision,
    /// The parent the device joined through.
    pub parent_of_new_node_id: NodeId,
}

impl TrustCenterJoinHandler {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            new_node_id: NodeId(r.u16("newNodeId")?),
            new_node_eui64: Eui64::read(r, "newNodeEui64")?,
            status: DeviceUpdate(r.u8("status")?),
            policy_decision: JoinDecision(r.u8("policyDecision")?),
            parent_of_new_node_id: NodeId(r.u16("parentOfNewNodeId")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u16(self.new_node_id.0);
        w.bytes(&self.new_node_eui64.0);
        w.u8(self.status.0);
        w.u8(self.policy_decision.0);
        w.u16(self.parent_of_new_node_id.0);
        Ok(())
    }
}
parameters_codec!(TrustCenterJoinHandler, "trustCenterJoinHandler");

/// `childJoinHandler` (0x0023): a child of the coordinator joined or left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChildJoinHandler {
    /// Child table index.
    pub index: u8,
    /// True on join, false on leave.
    pub joining: bool,
    /// The child's node id.
    pub child_id: NodeId,
    /// The child's EUI-64.
    pub child_eui64: Eui64,
    /// The child's type.
    pub child_type: NodeType,
}

impl ChildJoinHandler {
    fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            index: r.u8("index")?,
            joining: r.bool("joining")?,
            child_id: NodeId(r.u16("childId")?),
            child_eui64: Eui64::read(r, "childEui64")?,
            child_type: NodeType(r.u8("childType")?),
        })
    }
    fn write(&self, w: &mut ParamWriter<'_>) -> Result<(), EncodeError> {
        w.u8(self.index);
        w.u8(u8::from(self.joining));
        w.u16(self.child_id.0);
        w.bytes(&self.child_eui64.0);
        w.u8(self.child_type.0);
        Ok(())
    }
}
parameters_codec!(ChildJoinHandler, "childJoinHandler");

// ---------------------------------------------------------------------------------------------
// The three directions as enums

/// A host → NCP command.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Command {
    /// `version`.
    Version(VersionRequest),
    /// `getConfigurationValue`.
    GetConfigurationValue(GetConfigurationValue),
    /// `setConfigurationValue`.
    SetConfigurationValue(SetConfigurationValue),
    /// `getValue`.
    GetValue(GetValue),
    /// `setValue`.
    SetValue(SetValue),
    /// `setPolicy`.
    SetPolicy(SetPolicy),
    /// `addEndpoint`.
    AddEndpoint(AddEndpoint),
    /// `networkInit`.
    NetworkInit(NetworkInit),
    /// `networkState`.
    NetworkState,
    /// `formNetwork`.
    FormNetwork(FormNetwork),
    /// `permitJoining`.
    PermitJoining(PermitJoining),
    /// `getNetworkParameters`.
    GetNetworkParameters,
    /// `getEui64`.
    GetEui64,
    /// `getNodeId`.
    GetNodeId,
    /// `maximumPayloadLength`.
    MaximumPayloadLength,
    /// `sendUnicast`.
    SendUnicast(SendUnicast),
    /// `sendBroadcast`.
    SendBroadcast(SendBroadcast),
    /// `lookupNodeIdByEui64`.
    LookupNodeIdByEui64(LookupNodeIdByEui64),
    /// `lookupEui64ByNodeId`.
    LookupEui64ByNodeId(LookupEui64ByNodeId),
    /// `setInitialSecurityState`.
    SetInitialSecurityState(SetInitialSecurityState),
    /// `nop`.
    Nop,
    /// Any other frame id, parameters kept as bytes.
    Other {
        /// The frame id.
        frame_id: FrameId,
        /// The raw parameters.
        parameters: Vec<u8>,
    },
}

impl Command {
    /// The frame id this command travels under.
    pub fn frame_id(&self) -> FrameId {
        match self {
            Command::Version(_) => FrameId::VERSION,
            Command::GetConfigurationValue(_) => FrameId::GET_CONFIGURATION_VALUE,
            Command::SetConfigurationValue(_) => FrameId::SET_CONFIGURATION_VALUE,
            Command::GetValue(_) => FrameId::GET_VALUE,
            Command::SetValue(_) => FrameId::SET_VALUE,
            Command::SetPolicy(_) => FrameId::SET_POLICY,
            Command::AddEndpoint(_) => FrameId::ADD_ENDPOINT,
            Command::NetworkInit(_) => FrameId::NETWORK_INIT,
            Command::NetworkState => FrameId::NETWORK_STATE,
            Command::FormNetwork(_) => FrameId::FORM_NETWORK,
            Command::PermitJoining(_) => FrameId::PERMIT_JOINING,
            Command::GetNetworkParameters => FrameId::GET_NETWORK_PARAMETERS,
            Command::GetEui64 => FrameId::GET_EUI64,
            Command::GetNodeId => FrameId::GET_NODE_ID,
            Command::MaximumPayloadLength => FrameId::MAXIMUM_PAYLOAD_LENGTH,
            Command::SendUnicast(_) => FrameId::SEND_UNICAST,
            Command::SendBroadcast(_) => FrameId::SEND_BROADCAST,
            Command::LookupNodeIdByEui64(_) => FrameId::LOOKUP_NODE_ID_BY_EUI64,
            Command::LookupEui64ByNodeId(_) => FrameId::LOOKUP_EUI64_BY_NODE_ID,
            Command::SetInitialSecurityState(_) => FrameId::SET_INITIAL_SECURITY_STATE,
            Command::Nop => FrameId::NOP,
            Command::Other { frame_id, .. } => *frame_id,
        }
    }

    /// Appends the parameters in `version`'s layout.
    pub fn encode_parameters(
        &self,
        version: EzspVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Command::Version(c) => c.encode(version, out),
            Command::GetConfigurationValue(c) => c.encode(version, out),
            Command::SetConfigurationValue(c) => c.encode(version, out),
            Command::GetValue(c) => c.encode(version, out),
            Command::SetValue(c) => c.encode(version, out),
            Command::SetPolicy(c) => c.encode(version, out),
            Command::AddEndpoint(c) => c.encode(version, out),
            Command::NetworkInit(c) => c.encode(version, out),
            Command::FormNetwork(c) => c.encode(version, out),
            Command::PermitJoining(c) => c.encode(version, out),
            Command::SendUnicast(c) => c.encode(version, out),
            Command::SendBroadcast(c) => c.encode(version, out),
            Command::LookupNodeIdByEui64(c) => c.encode(version, out),
            Command::LookupEui64ByNodeId(c) => c.encode(version, out),
            Command::SetInitialSecurityState(c) => c.encode(version, out),
            Command::NetworkState
            | Command::GetNetworkParameters
            | Command::GetEui64
            | Command::GetNodeId
            | Command::MaximumPayloadLength
            | Command::Nop => Ok(()),
            Command::Other { parameters, .. } => {
                out.extend_from_slice(parameters);
                Ok(())
            }
        }
    }

    /// Appends the whole frame (extended header, FC `00 01`, then parameters).
    pub fn encode_frame(
        &self,
        version: EzspVersion,
        sequence: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let header = FrameHeader {
            sequence,
            control: FrameControl::EXTENDED_COMMAND,
            frame_id: self.frame_id(),
        };
        header.encode(FrameFormat::Extended, out)?;
        self.encode_parameters(version, out)
    }

    /// Decodes the parameters of the command `frame_id`; `offset` is where they start in the
    /// frame (for error messages).
    pub fn decode_parameters(
        version: EzspVersion,
        frame_id: FrameId,
        parameters: &[u8],
        offset: usize,
    ) -> Result<Self, DecodeError> {
        let mut r = ParamReader::new(parameters, offset, command_name(frame_id), version);
        let command = match frame_id {
            FrameId::VERSION => Command::Version(VersionRequest::read(&mut r)?),
            FrameId::GET_CONFIGURATION_VALUE => {
                Command::GetConfigurationValue(GetConfigurationValue::read(&mut r)?)
            }
            FrameId::SET_CONFIGURATION_VALUE => {
                Command::SetConfigurationValue(SetConfigurationValue::read(&mut r)?)
            }
            FrameId::GET_VALUE => Command::GetValue(GetValue::read(&mut r)?),
            FrameId::SET_VALUE => Command::SetValue(SetValue::read(&mut r)?),
            FrameId::SET_POLICY => Command::SetPolicy(SetPolicy::read(&mut r)?),
            FrameId::ADD_ENDPOINT => Command::AddEndpoint(AddEndpoint::read(&mut r)?),
            FrameId::NETWORK_INIT => Command::NetworkInit(NetworkInit::read(&mut r)?),
            FrameId::NETWORK_STATE => Command::NetworkState,
            FrameId::FORM_NETWORK => Command::FormNetwork(FormNetwork::read(&mut r)?),
            FrameId::PERMIT_JOINING => Command::PermitJoining(PermitJoining::read(&mut r)?),
            FrameId::GET_NETWORK_PARAMETERS => Command::GetNetworkParameters,
            FrameId::GET_EUI64 => Command::GetEui64,
            FrameId::GET_NODE_ID => Command::GetNodeId,
            FrameId::MAXIMUM_PAYLOAD_LENGTH => Command::MaximumPayloadLength,
            FrameId::SEND_UNICAST => Command::SendUnicast(SendUnicast::read(&mut r)?),
            FrameId::SEND_BROADCAST => Command::SendBroadcast(SendBroadcast::read(&mut r)?),
            FrameId::LOOKUP_NODE_ID_BY_EUI64 => {
                Command::LookupNodeIdByEui64(LookupNodeIdByEui64::read(&mut r)?)
            }
            FrameId::LOOKUP_EUI64_BY_NODE_ID => {
                Command::LookupEui64ByNodeId(LookupEui64ByNodeId::read(&mut r)?)
            }
            FrameId::SET_INITIAL_SECURITY_STATE => {
                Command::SetInitialSecurityState(SetInitialSecurityState::read(&mut r)?)
            }
            FrameId::NOP => Command::Nop,
            other => {
                return Ok(Command::Other {
                    frame_id: other,
                    parameters: parameters.to_vec(),
                });
            }
        };
        r.finish()?;
        Ok(command)
    }
}

/// An NCP → host response to a command.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Response {
    /// `version`.
    Version(VersionResponse),
    /// `getConfigurationValue`.
    GetConfigurationValue(GetConfigurationValueResponse),
    /// `setConfigurationValue` (EzspStatus before v14).
    SetConfigurationValue {
        /// Result.
        status: Status,
    },
    /// `getValue`.
    GetValue(GetValueResponse),
    /// `setValue` (EzspStatus before v14).
    SetValue {
        /// Result.
        status: Status,
    },
    /// `setPolicy` (EzspStatus before v14).
    SetPolicy {
        /// Result.
        status: Status,
    },
    /// `addEndpoint` (EzspStatus before v14).
    AddEndpoint {
        /// Result.
        status: Status,
    },
    /// `networkInit` (EmberStatus before v14; NOT_JOINED when there is no stored network).
    NetworkInit {
        /// Result.
        status: Status,
    },
    /// `networkState`.
    NetworkState {
        /// The state.
        status: NetworkStatus,
    },
    /// `formNetwork` (EmberStatus before v14).
    FormNetwork {
        /// Result.
        status: Status,
    },
    /// `permitJoining` (EmberStatus before v14).
    PermitJoining {
        /// Result.
        status: Status,
    },
    /// `getNetworkParameters`.
    GetNetworkParameters(GetNetworkParametersResponse),
    /// `getEui64`.
    GetEui64 {
        /// The NCP's EUI-64.
        eui64: Eui64,
    },
    /// `getNodeId`.
    GetNodeId {
        /// The NCP's node id.
        node_id: NodeId,
    },
    /// `maximumPayloadLength`.
    MaximumPayloadLength {
        /// Largest APS payload in bytes.
        aps_length: u8,
    },
    /// `sendUnicast`.
    SendUnicast(SendResponse),
    /// `sendBroadcast`.
    SendBroadcast(SendResponse),
    /// `lookupNodeIdByEui64`.
    LookupNodeIdByEui64(LookupNodeIdByEui64Response),
    /// `lookupEui64ByNodeId`.
    LookupEui64ByNodeId(LookupEui64ByNodeIdResponse),
    /// `setInitialSecurityState` (EmberStatus before v14).
    SetInitialSecurityState {
        /// Result.
        status: Status,
    },
    /// `nop`.
    Nop,
    /// `invalidCommand` (0x0058): the NCP refused the command with this sequence number.
    InvalidCommand {
        /// Why (EzspStatus before v14: 0x30 VERSION_NOT_SET, 0x31 INVALID_FRAME_ID…).
        status: Status,
    },
    /// Any other frame id, parameters kept as bytes.
    Other {
        /// The frame id.
        frame_id: FrameId,
        /// The raw parameters.
        parameters: Vec<u8>,
    },
}

impl Response {
    /// The frame id this response travels under.
    pub fn frame_id(&self) -> FrameId {
        match self {
            Response::Version(_) => FrameId::VERSION,
            Response::GetConfigurationValue(_) => FrameId::GET_CONFIGURATION_VALUE,
            Response::SetConfigurationValue { .. } => FrameId::SET_CONFIGURATION_VALUE,
            Response::GetValue(_) => FrameId::GET_VALUE,
            Response::SetValue { .. } => FrameId::SET_VALUE,
            Response::SetPolicy { .. } => FrameId::SET_POLICY,
            Response::AddEndpoint { .. } => FrameId::ADD_ENDPOINT,
            Response::NetworkInit { .. } => FrameId::NETWORK_INIT,
            Response::NetworkState { .. } => FrameId::NETWORK_STATE,
            Response::FormNetwork { .. } => FrameId::FORM_NETWORK,
            Response::PermitJoining { .. } => FrameId::PERMIT_JOINING,
            Response::GetNetworkParameters(_) => FrameId::GET_NETWORK_PARAMETERS,
            Response::GetEui64 { .. } => FrameId::GET_EUI64,
            Response::GetNodeId { .. } => FrameId::GET_NODE_ID,
            Response::MaximumPayloadLength { .. } => FrameId::MAXIMUM_PAYLOAD_LENGTH,
            Response::SendUnicast(_) => FrameId::SEND_UNICAST,
            Response::SendBroadcast(_) => FrameId::SEND_BROADCAST,
            Response::LookupNodeIdByEui64(_) => FrameId::LOOKUP_NODE_ID_BY_EUI64,
            Response::LookupEui64ByNodeId(_) => FrameId::LOOKUP_EUI64_BY_NODE_ID,
            Response::SetInitialSecurityState { .. } => FrameId::SET_INITIAL_SECURITY_STATE,
            Response::Nop => FrameId::NOP,
            Response::InvalidCommand { .. } => FrameId::INVALID_COMMAND,
            Response::Other { frame_id, .. } => *frame_id,
        }
    }

    /// The status this response reports, for responses that carry one.
    pub fn status(&self) -> Option<Status> {
        match self {
            Response::GetConfigurationValue(r) => Some(r.status),
            Response::GetValue(r) => Some(r.status),
            Response::GetNetworkParameters(r) => Some(r.status),
            Response::SendUnicast(r) | Response::SendBroadcast(r) => Some(r.status),
            Response::LookupNodeIdByEui64(r) => r.status,
            Response::LookupEui64ByNodeId(r) => Some(r.status),
            Response::SetConfigurationValue { status }
            | Response::SetValue { status }
            | Response::SetPolicy { status }
            | Response::AddEndpoint { status }
            | Response::NetworkInit { status }
            | Response::FormNetwork { status }
            | Response::PermitJoining { status }
            | Response::SetInitialSecurityState { status }
            | Response::InvalidCommand { status } => Some(*status),
            Response::Version(_)
            | Response::NetworkState { .. }
            | Response::GetEui64 { .. }
            | Response::GetNodeId { .. }
            | Response::MaximumPayloadLength { .. }
            | Response::Nop
            | Response::Other { .. } => None,
        }
    }

    /// Appends the parameters in `version`'s layout.
    pub fn encode_parameters(
        &self,
        version: EzspVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let mut w = ParamWriter::new(out, response_name(self.frame_id()), version);
        match self {
            Response::Version(r) => r.write(&mut w),
            Response::GetConfigurationValue(r) => r.write(&mut w),
            Response::GetValue(r) => r.write(&mut w),
            Response::GetNetworkParameters(r) => r.write(&mut w),
            Response::SendUnicast(r) | Response::SendBroadcast(r) => r.write(&mut w),
            Response::LookupNodeIdByEui64(r) => r.write(&mut w),
            Response::LookupEui64ByNodeId(r) => r.write(&mut w),
            Response::SetConfigurationValue { status }
            | Response::SetValue { status }
            | Response::SetPolicy { status }
            | Response::AddEndpoint { status }
            | Response::InvalidCommand { status } => w.status("status", StatusKind::Ezsp, *status),
            Response::NetworkInit { status }
            | Response::FormNetwork { status }
            | Response::PermitJoining { status }
            | Response::SetInitialSecurityState { status } => {
                w.status("status", StatusKind::Ember, *status)
            }
            Response::NetworkState { status } => {
                w.u8(status.0);
                Ok(())
            }
            Response::GetEui64 { eui64 } => {
                w.bytes(&eui64.0);
                Ok(())
            }
            Response::GetNodeId { node_id } => {
                w.u16(node_id.0);
                Ok(())
            }
            Response::MaximumPayloadLength { aps_length } => {
                w.u8(*aps_length);
                Ok(())
            }
            Response::Nop => Ok(()),
            Response::Other { parameters, .. } => {
                w.bytes(parameters);
                Ok(())
            }
        }
    }

    /// Appends the whole frame (extended header, FC `80 01`, then parameters).
    pub fn encode_frame(
        &self,
        version: EzspVersion,
        sequence: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let header = FrameHeader {
            sequence,
            control: FrameControl::EXTENDED_RESPONSE,
            frame_id: self.frame_id(),
        };
        header.encode(FrameFormat::Extended, out)?;
        self.encode_parameters(version, out)
    }

    /// Decodes the parameters of the response `frame_id`; `offset` is where they start.
    pub fn decode_parameters(
        version: EzspVersion,
        frame_id: FrameId,
        parameters: &[u8],
        offset: usize,
    ) -> Result<Self, DecodeError> {
        let mut r = ParamReader::new(parameters, offset, response_name(frame_id), version);
        let ezsp_status = |r: &mut ParamReader<'_>| r.status("status", StatusKind::Ezsp);
        let ember_status = |r: &mut ParamReader<'_>| r.status("status", StatusKind::Ember);
        let response = match frame_id {
            FrameId::VERSION => Response::Version(VersionResponse::read(&mut r)?),
            FrameId::GET_CONFIGURATION_VALUE => {
                Response::GetConfigurationValue(GetConfigurationValueResponse::read(&mut r)?)
            }
            FrameId::SET_CONFIGURATION_VALUE => Response::SetConfigurationValue {
                status: ezsp_status(&mut r)?,
            },
            FrameId::GET_VALUE => Response::GetValue(GetValueResponse::read(&mut r)?),
            FrameId::SET_VALUE => Response::SetValue {
                status: ezsp_status(&mut r)?,
            },
            FrameId::SET_POLICY => Response::SetPolicy {
                status: ezsp_status(&mut r)?,
            },
            FrameId::ADD_ENDPOINT => Response::AddEndpoint {
                status: ezsp_status(&mut r)?,
            },
            FrameId::INVALID_COMMAND => Response::InvalidCommand {
                status: ezsp_status(&mut r)?,
            },
            FrameId::NETWORK_INIT => Response::NetworkInit {
                status: ember_status(&mut r)?,
            },
            FrameId::FORM_NETWORK => Response::FormNetwork {
                status: ember_status(&mut r)?,
            },
            FrameId::PERMIT_JOINING => Response::PermitJoining {
                status: ember_status(&mut r)?,
            },
            FrameId::SET_INITIAL_SECURITY_STATE => Response::SetInitialSecurityState {
                status: ember_status(&mut r)?,
            },
            FrameId::NETWORK_STATE => Response::NetworkState {
                status: NetworkStatus(r.u8("status")?),
            },
            FrameId::GET_NETWORK_PARAMETERS => {
                Response::GetNetworkParameters(GetNetworkParametersResponse::read(&mut r)?)
            }
            FrameId::GET_EUI64 => Response::GetEui64 {
                eui64: Eui64::read(&mut r, "eui64")?,
            },
            FrameId::GET_NODE_ID => Response::GetNodeId {
                node_id: NodeId(r.u16("nodeId")?),
            },
            FrameId::MAXIMUM_PAYLOAD_LENGTH => Response::MaximumPayloadLength {
                aps_length: r.u8("apsLength")?,
            },
            FrameId::SEND_UNICAST => Response::SendUnicast(SendResponse::read(&mut r)?),
            FrameId::SEND_BROADCAST => Response::SendBroadcast(SendResponse::read(&mut r)?),
            FrameId::LOOKUP_NODE_ID_BY_EUI64 => {
                Response::LookupNodeIdByEui64(LookupNodeIdByEui64Response::read(&mut r)?)
            }
            FrameId::LOOKUP_EUI64_BY_NODE_ID => {
                Response::LookupEui64ByNodeId(LookupEui64ByNodeIdResponse::read(&mut r)?)
            }
            FrameId::NOP => Response::Nop,
            other => {
                return Ok(Response::Other {
                    frame_id: other,
                    parameters: parameters.to_vec(),
                });
            }
        };
        r.finish()?;
        Ok(response)
    }
}

/// An unsolicited NCP → host callback.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Callback {
    /// `stackStatusHandler` (0x0019): network up/down (EmberStatus before v14).
    StackStatusHandler {
        /// NETWORK_UP 0x90 / NETWORK_DOWN 0x91; v14+ 0x15 / 0x16.
        status: Status,
    },
    /// `messageSentHandler`.
    MessageSentHandler(MessageSentHandler),
    /// `incomingMessageHandler`.
    IncomingMessageHandler(IncomingMessageHandler),
    /// `trustCenterJoinHandler`.
    TrustCenterJoinHandler(TrustCenterJoinHandler),
    /// `childJoinHandler`.
    ChildJoinHandler(ChildJoinHandler),
    /// Any other callback, parameters kept as bytes.
    Other {
        /// The frame id.
        frame_id: FrameId,
        /// The raw parameters.
        parameters: Vec<u8>,
    },
}

impl Callback {
    /// The frame id this callback travels under.
    pub fn frame_id(&self) -> FrameId {
        match self {
            Callback::StackStatusHandler { .. } => FrameId::STACK_STATUS_HANDLER,
            Callback::MessageSentHandler(_) => FrameId::MESSAGE_SENT_HANDLER,
            Callback::IncomingMessageHandler(_) => FrameId::INCOMING_MESSAGE_HANDLER,
            Callback::TrustCenterJoinHandler(_) => FrameId::TRUST_CENTER_JOIN_HANDLER,
            Callback::ChildJoinHandler(_) => FrameId::CHILD_JOIN_HANDLER,
            Callback::Other { frame_id, .. } => *frame_id,
        }
    }

    /// Appends the parameters in `version`'s layout.
    pub fn encode_parameters(
        &self,
        version: EzspVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self {
            Callback::StackStatusHandler { status } => ParamWriter::new(
                out,
                "stackStatusHandler",
                version,
            )
            .status("status", StatusKind::Ember, *status),
            Callback::MessageSentHandler(c) => c.encode(version, out),
            Callback::IncomingMessageHandler(c) => c.encode(version, out),
            Callback::TrustCenterJoinHandler(c) => c.encode(version, out),
            Callback::ChildJoinHandler(c) => c.encode(version, out),
            Callback::Other { parameters, .. } => {
                out.extend_from_slice(parameters);
                Ok(())
            }
        }
    }

    /// Appends the whole frame (extended header, FC `90 01`: an asynchronous callback).
    /// `sequence` must not be the sequence of a command the host is still waiting for.
    pub fn encode_frame(
        &self,
        version: EzspVersion,
        sequence: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let header = FrameHeader {
            sequence,
            control: FrameControl::EXTENDED_ASYNC_CALLBACK,
            frame_id: self.frame_id(),
        };
        header.encode(FrameFormat::Extended, out)?;
        self.encode_parameters(version, out)
    }

    /// Decodes the parameters of the callback `frame_id`; `offset` is where they start.
    pub fn decode_parameters(
        version: EzspVersion,
        frame_id: FrameId,
        parameters: &[u8],
        offset: usize,
    ) -> Result<Self, DecodeError> {
        let mut r = ParamReader::new(parameters, offset, command_name(frame_id), version);
        let callback = match frame_id {
            FrameId::STACK_STATUS_HANDLER => Callback::StackStatusHandler {
                status: r.status("status", StatusKind::Ember)?,
            },
            FrameId::MESSAGE_SENT_HANDLER => {
                Callback::MessageSentHandler(MessageSentHandler::read(&mut r)?)
            }
            FrameId::INCOMING_MESSAGE_HANDLER => {
                Callback::IncomingMessageHandler(IncomingMessageHandler::read(&mut r)?)
            }
            FrameId::TRUST_CENTER_JOIN_HANDLER => {
                Callback::TrustCenterJoinHandler(TrustCenterJoinHandler::read(&mut r)?)
            }
            FrameId::CHILD_JOIN_HANDLER => {
                Callback::ChildJoinHandler(ChildJoinHandler::read(&mut r)?)
            }
            other => {
                return Ok(Callback::Other {
                    frame_id: other,
                    parameters: parameters.to_vec(),
                });
            }
        };
        r.finish()?;
        Ok(callback)
    }
}

/// What a frame carries, by direction and frame id.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    /// Host → NCP.
    Command(Command),
    /// NCP → host, answering a command.
    Response(Response),
    /// NCP → host, unsolicited.
    Callback(Callback),
}

/// A whole extended-format frame: header and decoded parameters.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame {
    /// The header.
    pub header: FrameHeader,
    /// The decoded parameters.
    pub body: Body,
}

impl Frame {
    /// Decodes an extended-format frame of a negotiated `version`. The FC direction bit picks
    /// command or NCP → host; among the latter, callback frame ids (and frames flagged as
    /// asynchronous callbacks) are callbacks, everything else is a response.
    pub fn decode(version: EzspVersion, frame: &[u8]) -> Result<Self, DecodeError> {
        let (header, parameters) = FrameHeader::decode(FrameFormat::Extended, frame)?;
        let offset = FrameFormat::Extended.header_len();
        let body = if !header.control.is_response() {
            Body::Command(Command::decode_parameters(
                version,
                header.frame_id,
                parameters,
                offset,
            )?)
        } else if header.frame_id.is_callback() || header.control.is_async_callback() {
            Body::Callback(Callback::decode_parameters(
                version,
                header.frame_id,
                parameters,
                offset,
            )?)
        } else {
            Body::Response(Response::decode_parameters(
                version,
                header.frame_id,
                parameters,
                offset,
            )?)
        };
        Ok(Frame { header, body })
    }

    /// Appends the frame: header (extended format, with this header's FC) then parameters.
    pub fn encode(&self, version: EzspVersion, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.header.encode(FrameFormat::Extended, out)?;
        match &self.body {
            Body::Command(c) => c.encode_parameters(version, out),
            Body::Response(r) => r.encode_parameters(version, out),
            Body::Callback(c) => c.encode_parameters(version, out),
        }
    }
}

/// The spec's name of a command or callback, for error messages.
pub fn command_name(frame_id: FrameId) -> &'static str {
    match frame_id {
        FrameId::VERSION => "version",
        FrameId::ADD_ENDPOINT => "addEndpoint",
        FrameId::NOP => "nop",
        FrameId::CALLBACK => "callback",
        FrameId::NO_CALLBACKS => "noCallbacks",
        FrameId::NETWORK_INIT => "networkInit",
        FrameId::NETWORK_STATE => "networkState",
        FrameId::STACK_STATUS_HANDLER => "stackStatusHandler",
        FrameId::FORM_NETWORK => "formNetwork",
        FrameId::PERMIT_JOINING => "permitJoining",
        FrameId::CHILD_JOIN_HANDLER => "childJoinHandler",
        FrameId::TRUST_CENTER_JOIN_HANDLER => "trustCenterJoinHandler",
        FrameId::GET_EUI64 => "getEui64",
        FrameId::GET_NODE_ID => "getNodeId",
        FrameId::GET_NETWORK_PARAMETERS => "getNetworkParameters",
        FrameId::MAXIMUM_PAYLOAD_LENGTH => "maximumPayloadLength",
        FrameId::SEND_UNICAST => "sendUnicast",
        FrameId::SEND_BROADCAST => "sendBroadcast",
        FrameId::MESSAGE_SENT_HANDLER => "messageSentHandler",
        FrameId::INCOMING_MESSAGE_HANDLER => "incomingMessageHandler",
        FrameId::GET_CONFIGURATION_VALUE => "getConfigurationValue",
        FrameId::SET_CONFIGURATION_VALUE => "setConfigurationValue",
        FrameId::SET_POLICY => "setPolicy",
        FrameId::INVALID_COMMAND => "invalidCommand",
        FrameId::LOOKUP_NODE_ID_BY_EUI64 => "lookupNodeIdByEui64",
        FrameId::LOOKUP_EUI64_BY_NODE_ID => "lookupEui64ByNodeId",
        FrameId::SET_INITIAL_SECURITY_STATE => "setInitialSecurityState",
        FrameId::GET_VALUE => "getValue",
        FrameId::SET_VALUE => "setValue",
        _ => "unknown frame",
    }
}

/// "<command> response", for error messages about responses.
fn response_name(frame_id: FrameId) -> &'static str {
    match frame_id {
        FrameId::VERSION => "version response",
        FrameId::ADD_ENDPOINT => "addEndpoint response",
        FrameId::NOP => "nop response",
        FrameId::NETWORK_INIT => "networkInit response",
        FrameId::NETWORK_STATE => "networkState response",
        FrameId::FORM_NETWORK => "formNetwork response",
        FrameId::PERMIT_JOINING => "permitJoining response",
        FrameId::GET_EUI64 => "getEui64 response",
        FrameId::GET_NODE_ID => "getNodeId response",
        FrameId::GET_NETWORK_PARAMETERS => "getNetworkParameters response",
        FrameId::MAXIMUM_PAYLOAD_LENGTH => "maximumPayloadLength response",
        FrameId::SEND_UNICAST => "sendUnicast response",
        FrameId::SEND_BROADCAST => "sendBroadcast response",
        FrameId::GET_CONFIGURATION_VALUE => "getConfigurationValue response",
        FrameId::SET_CONFIGURATION_VALUE => "setConfigurationValue response",
        FrameId::SET_POLICY => "setPolicy response",
        FrameId::INVALID_COMMAND => "invalidCommand",
        FrameId::LOOKUP_NODE_ID_BY_EUI64 => "lookupNodeIdByEui64 response",
        FrameId::LOOKUP_EUI64_BY_NODE_ID => "lookupEui64ByNodeId response",
        FrameId::SET_INITIAL_SECURITY_STATE => "setInitialSecurityState response",
        FrameId::GET_VALUE => "getValue response",
        FrameId::SET_VALUE => "setValue response",
        _ => "unknown response",
    }
}
