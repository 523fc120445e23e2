//! EZSP commands, responses and callbacks for protocol versions 8–17 (UG100 §"Configuration
//! Frames", "Networking Frames", "Messaging Frames", "Security Frames"; layouts checked
//! against bellows' `ezsp/v13` and `ezsp/v14` command tables).
//!
//! **One table of frames.** The `ezsp_frames!` invocation below has one line per frame: its
//! [`FrameId`] constant and number, the spec's name, the versions it exists in, and the
//! command and response (or callback) variants with their parameter structs (in `requests`,
//! `responses`, `callbacks`) or inline fields. From it come the [`Command`], [`Response`] and
//! [`Callback`] enums, [`FrameId`] and [`command_name`], [`frame_versions`], [`FRAME_IDS`],
//! and the encode/decode dispatch. Adding a frame means adding its line and its parameters
//! struct. Both roles use the same table: the host encodes commands and decodes responses and
//! callbacks; the simulated NCP ([`crate::sim::SimNcp`]) decodes commands through it, answers
//! with its [`Response`] variants, and refuses a frame outside its versions as a real NCP does.
//! The `raw_commands` section lists the ~50 stack frames (keys, tokens, tables, scans) that
//! bellows and zigbee-herdsman send and only the simulator answers: named and versioned here,
//! parameters as bytes; `sim::stack` dispatches on their [`FrameId`] constants.
//! [`Frame`] adds the header.
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

use super::frame::{FrameControl, FrameFormat, FrameHeader};
use super::macros::ezsp_frames;
use super::params::{ParamReader, ParamWriter};
use super::status::Status;
use super::types::{Ieee, NetworkStatus, Nwk};
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

mod callbacks;
mod requests;
mod responses;

pub use callbacks::*;
pub use requests::*;
pub use responses::*;

// ---------------------------------------------------------------------------------------------
// The table: one line per frame (see `ezsp_frames!` in `macros.rs`). Adding a frame means adding
// its line here and its parameters struct above.

ezsp_frames! {
    commands {
        /// `version`.
        VERSION = 0x0000, "version", 8..=17, Version(VersionRequest) => Version(VersionResponse);
        /// `addEndpoint` (EzspStatus before v14).
        ADD_ENDPOINT = 0x0002, "addEndpoint", 8..=17, AddEndpoint(AddEndpoint)
            => AddEndpoint { /** Result. */ status: Status = Ezsp };
        /// `nop`.
        NOP = 0x0005, "nop", 8..=17, Nop => Nop;
        /// `networkInit` (EmberStatus before v14; NOT_JOINED when there is no stored network).
        NETWORK_INIT = 0x0017, "networkInit", 8..=17, NetworkInit(NetworkInit)
            => NetworkInit { /** Result. */ status: Status = Ember };
        /// `networkState`.
        NETWORK_STATE = 0x0018, "networkState", 8..=17, NetworkState
            => NetworkState { /** The state. */ status: NetworkStatus };
        /// `formNetwork` (EmberStatus before v14).
        FORM_NETWORK = 0x001E, "formNetwork", 8..=17, FormNetwork(FormNetwork)
            => FormNetwork { /** Result. */ status: Status = Ember };
        /// `permitJoining` (EmberStatus before v14).
        PERMIT_JOINING = 0x0022, "permitJoining", 8..=17, PermitJoining(PermitJoining)
            => PermitJoining { /** Result. */ status: Status = Ember };
        /// `getEui64`.
        GET_EUI64 = 0x0026, "getEui64", 8..=17, GetEui64
            => GetEui64 { /** The NCP's EUI-64. */ eui64: Ieee };
        /// `getNodeId`.
        GET_NODE_ID = 0x0027, "getNodeId", 8..=17, GetNodeId
            => GetNodeId { /** The NCP's node id. */ node_id: Nwk };
        /// `getNetworkParameters`.
        GET_NETWORK_PARAMETERS = 0x0028, "getNetworkParameters", 8..=17, GetNetworkParameters
            => GetNetworkParameters(GetNetworkParametersResponse);
        /// `maximumPayloadLength`.
        MAXIMUM_PAYLOAD_LENGTH = 0x0033, "maximumPayloadLength", 8..=17, MaximumPayloadLength
            => MaximumPayloadLength { /** Largest APS payload in bytes. */ aps_length: u8 };
        /// `sendUnicast`.
        SEND_UNICAST = 0x0034, "sendUnicast", 8..=17, SendUnicast(SendUnicast)
            => SendUnicast(SendResponse);
        /// `sendBroadcast`.
        SEND_BROADCAST = 0x0036, "sendBroadcast", 8..=17, SendBroadcast(SendBroadcast)
            => SendBroadcast(SendResponse);
        /// `getConfigurationValue`.
        GET_CONFIGURATION_VALUE = 0x0052, "getConfigurationValue", 8..=17,
            GetConfigurationValue(GetConfigurationValue)
            => GetConfigurationValue(GetConfigurationValueResponse);
        /// `setConfigurationValue` (EzspStatus before v14).
        SET_CONFIGURATION_VALUE = 0x0053, "setConfigurationValue", 8..=17,
            SetConfigurationValue(SetConfigurationValue)
            => SetConfigurationValue { /** Result. */ status: Status = Ezsp };
        /// `setPolicy` (EzspStatus before v14).
        SET_POLICY = 0x0055, "setPolicy", 8..=17, SetPolicy(SetPolicy)
            => SetPolicy { /** Result. */ status: Status = Ezsp };
        /// `lookupNodeIdByEui64`.
        LOOKUP_NODE_ID_BY_EUI64 = 0x0060, "lookupNodeIdByEui64", 8..=17,
            LookupNodeIdByEui64(LookupNodeIdByEui64)
            => LookupNodeIdByEui64(LookupNodeIdByEui64Response);
        /// `lookupEui64ByNodeId`.
        LOOKUP_EUI64_BY_NODE_ID = 0x0061, "lookupEui64ByNodeId", 8..=17,
            LookupEui64ByNodeId(LookupEui64ByNodeId)
            => LookupEui64ByNodeId(LookupEui64ByNodeIdResponse);
        /// `setInitialSecurityState` (EmberStatus before v14).
        SET_INITIAL_SECURITY_STATE = 0x0068, "setInitialSecurityState", 8..=17,
            SetInitialSecurityState(SetInitialSecurityState)
            => SetInitialSecurityState { /** Result. */ status: Status = Ember };
        /// `getValue`.
        GET_VALUE = 0x00AA, "getValue", 8..=17, GetValue(GetValue) => GetValue(GetValueResponse);
        /// `setValue` (EzspStatus before v14).
        SET_VALUE = 0x00AB, "setValue", 8..=17, SetValue(SetValue)
            => SetValue { /** Result. */ status: Status = Ezsp };
    }
    responses {
        /// `invalidCommand` (0x0058): the NCP refused the command with this sequence number.
        INVALID_COMMAND = 0x0058, "invalidCommand", 8..=17, InvalidCommand {
            /// Why (EzspStatus before v14: 0x30 VERSION_NOT_SET, 0x31 INVALID_FRAME_ID…).
            status: Status = Ezsp
        };
    }
    callbacks {
        /// `stackStatusHandler` (0x0019): network up/down (EmberStatus before v14).
        STACK_STATUS_HANDLER = 0x0019, "stackStatusHandler", 8..=17, StackStatusHandler {
            /// NETWORK_UP 0x90 / NETWORK_DOWN 0x91; v14+ 0x15 / 0x16.
            status: Status = Ember
        };
        /// `childJoinHandler`.
        CHILD_JOIN_HANDLER = 0x0023, "childJoinHandler", 8..=17, ChildJoinHandler(ChildJoinHandler);
        /// `trustCenterJoinHandler`.
        TRUST_CENTER_JOIN_HANDLER = 0x0024, "trustCenterJoinHandler", 8..=17,
            TrustCenterJoinHandler(TrustCenterJoinHandler);
        /// `messageSentHandler`.
        MESSAGE_SENT_HANDLER = 0x003F, "messageSentHandler", 8..=17,
            MessageSentHandler(MessageSentHandler);
        /// `incomingMessageHandler`.
        INCOMING_MESSAGE_HANDLER = 0x0045, "incomingMessageHandler", 8..=17,
            IncomingMessageHandler(IncomingMessageHandler);
    }
    raw_commands {
        // The stack frames bellows/zigpy and zigbee-herdsman send (start-up, forming, backup,
        // normal operation) that only the simulated NCP answers (`sim::stack`); names and
        // versions from bellows 1.2.1's `ezsp/v*/commands.py`. Where an id changed meaning, the
        // line names its newest frame and the versions it exists in under any name.
        /// `getExtendedValue`.
        GET_EXTENDED_VALUE = 0x0003, "getExtendedValue", 8..=17;
        /// `getMfgToken`.
        GET_MFG_TOKEN = 0x000B, "getMfgToken", 8..=17;
        /// `setMfgToken`.
        SET_MFG_TOKEN = 0x000C, "setMfgToken", 8..=17;
        /// `setConcentrator`.
        SET_CONCENTRATOR = 0x0010, "setConcentrator", 8..=17;
        /// `setManufacturerCode`.
        SET_MANUFACTURER_CODE = 0x0015, "setManufacturerCode", 8..=17;
        /// `startScan`.
        START_SCAN = 0x001A, "startScan", 8..=17;
        /// `leaveNetwork`.
        LEAVE_NETWORK = 0x0020, "leaveNetwork", 8..=17;
        /// `getParentChildParameters`.
        GET_PARENT_CHILD_PARAMETERS = 0x0029, "getParentChildParameters", 8..=17;
        /// `sendMulticast`.
        SEND_MULTICAST = 0x0038, "sendMulticast", 8..=17;
        /// `sendReply`.
        SEND_REPLY = 0x0039, "sendReply", 8..=17;
        /// `sendManyToOneRouteRequest`.
        SEND_MANY_TO_ONE_ROUTE_REQUEST = 0x0041, "sendManyToOneRouteRequest", 8..=17;
        /// `customFrame`.
        CUSTOM_FRAME = 0x0047, "customFrame", 8..=17;
        /// `getChildData`.
        GET_CHILD_DATA = 0x004A, "getChildData", 8..=17;
        /// `setSourceRouteDiscoveryMode`.
        SET_SOURCE_ROUTE_DISCOVERY_MODE = 0x005A, "setSourceRouteDiscoveryMode", 8..=17;
        /// `gpProxyTableRemoveEntry`.
        /// v8–13 `setAddressTableRemoteNodeId`, none in v14–16.
        GP_PROXY_TABLE_REMOVE_ENTRY = 0x005D, "gpProxyTableRemoveEntry", 8..=17;
        /// `getAddressTableInfo`. v8–13 `getAddressTableRemoteEui64`.
        GET_ADDRESS_TABLE_INFO = 0x005E, "getAddressTableInfo", 8..=17;
        /// `gpClearProxyTable`. v8–13 `getAddressTableRemoteNodeId`, none in v14–16.
        GP_CLEAR_PROXY_TABLE = 0x005F, "gpClearProxyTable", 8..=17;
        /// `getMulticastTableEntry`.
        GET_MULTICAST_TABLE_ENTRY = 0x0063, "getMulticastTableEntry", 8..=17;
        /// `setMulticastTableEntry`.
        SET_MULTICAST_TABLE_ENTRY = 0x0064, "setMulticastTableEntry", 8..=17;
        /// `readAndClearCounters`.
        READ_AND_CLEAR_COUNTERS = 0x0065, "readAndClearCounters", 8..=17;
        /// `addOrUpdateKeyTableEntry`.
        ADD_OR_UPDATE_KEY_TABLE_ENTRY = 0x0066, "addOrUpdateKeyTableEntry", 8..=12;
        /// `getCurrentSecurityState`.
        GET_CURRENT_SECURITY_STATE = 0x0069, "getCurrentSecurityState", 8..=17;
        /// `getKey`.
        GET_KEY = 0x006A, "getKey", 8..=12;
        /// `clearTransientLinkKeys`.
        CLEAR_TRANSIENT_LINK_KEYS = 0x006B, "clearTransientLinkKeys", 8..=17;
        /// `getKeyTableEntry`.
        GET_KEY_TABLE_ENTRY = 0x0071, "getKeyTableEntry", 8..=12;
        /// `findKeyTableEntry`.
        FIND_KEY_TABLE_ENTRY = 0x0075, "findKeyTableEntry", 8..=17;
        /// `eraseKeyTableEntry`.
        ERASE_KEY_TABLE_ENTRY = 0x0076, "eraseKeyTableEntry", 8..=17;
        /// `tokenFactoryReset`. v8–12 `becomeTrustCenter`.
        TOKEN_FACTORY_RESET = 0x0077, "tokenFactoryReset", 8..=17;
        /// `setExtendedTimeout`.
        SET_EXTENDED_TIMEOUT = 0x007E, "setExtendedTimeout", 8..=17;
        /// `getExtendedTimeout`.
        GET_EXTENDED_TIMEOUT = 0x007F, "getExtendedTimeout", 8..=17;
        /// `replaceAddressTableEntry`.
        REPLACE_ADDRESS_TABLE_ENTRY = 0x0082, "replaceAddressTableEntry", 8..=17;
        /// `setRadioIeee802154CcaMode`. v8 `overrideCurrentChannel`.
        SET_RADIO_IEEE802154_CCA_MODE = 0x0095, "setRadioIeee802154CcaMode", 8..=17;
        /// `setRadioPower`.
        SET_RADIO_POWER = 0x0099, "setRadioPower", 8..=17;
        /// `removeDevice`.
        REMOVE_DEVICE = 0x00A8, "removeDevice", 8..=17;
        /// `setChildData`. v8 `setGpioCurrentConfiguration`.
        SET_CHILD_DATA = 0x00AC, "setChildData", 8..=17;
        /// `setSourceRoute`.
        SET_SOURCE_ROUTE = 0x00AE, "setSourceRoute", 8..=17;
        /// `clearKeyTable`.
        CLEAR_KEY_TABLE = 0x00B1, "clearKeyTable", 8..=17;
        /// `setLogicalAndRadioChannel`.
        SET_LOGICAL_AND_RADIO_CHANNEL = 0x00B9, "setLogicalAndRadioChannel", 8..=17;
        /// `getSourceRouteTableFilledSize`.
        GET_SOURCE_ROUTE_TABLE_FILLED_SIZE = 0x00C2, "getSourceRouteTableFilledSize", 8..=17;
        /// `getSourceRouteTableTotalSize`.
        GET_SOURCE_ROUTE_TABLE_TOTAL_SIZE = 0x00C3, "getSourceRouteTableTotalSize", 8..=17;
        /// `gpSinkTableClearAll`.
        GP_SINK_TABLE_CLEAR_ALL = 0x00E2, "gpSinkTableClearAll", 8..=17;
        /// `readCounters`.
        READ_COUNTERS = 0x00F1, "readCounters", 8..=17;
        /// `multiPhySetRadioPower`.
        MULTI_PHY_SET_RADIO_POWER = 0x00FA, "multiPhySetRadioPower", 8..=17;
        /// `getTokenCount`.
        GET_TOKEN_COUNT = 0x0100, "getTokenCount", 9..=17;
        /// `getTokenInfo`.
        GET_TOKEN_INFO = 0x0101, "getTokenInfo", 9..=17;
        /// `getTokenData`.
        GET_TOKEN_DATA = 0x0102, "getTokenData", 9..=17;
        /// `setTokenData`.
        SET_TOKEN_DATA = 0x0103, "setTokenData", 9..=17;
        /// `getApsKeyInfo`.
        GET_APS_KEY_INFO = 0x010C, "getApsKeyInfo", 12..=17;
        /// `importLinkKey`.
        IMPORT_LINK_KEY = 0x010E, "importLinkKey", 12..=17;
        /// `exportLinkKeyByIndex`.
        EXPORT_LINK_KEY_BY_INDEX = 0x010F, "exportLinkKeyByIndex", 12..=17;
        /// `importTransientKey`.
        IMPORT_TRANSIENT_KEY = 0x0111, "importTransientKey", 12..=17;
        /// `exportKey`.
        EXPORT_KEY = 0x0114, "exportKey", 12..=17;
        /// `importKey`.
        IMPORT_KEY = 0x0115, "importKey", 12..=17;
        /// `getNetworkKeyInfo`.
        GET_NETWORK_KEY_INFO = 0x0116, "getNetworkKeyInfo", 13..=17;
    }
    other_ids {
        /// `callback`: asks the NCP for a pending callback (UART hosts get them unasked).
        CALLBACK = 0x0006, "callback";
        /// `noCallbacks`: the answer to `callback` when none is pending.
        NO_CALLBACKS = 0x0007, "noCallbacks";
        /// `scanCompleteHandler`: a `startScan` finished (sent raw by the simulated NCP).
        SCAN_COMPLETE_HANDLER = 0x001C, "scanCompleteHandler";
        /// `energyScanResultHandler`: one channel's energy (sent raw by the simulated NCP).
        ENERGY_SCAN_RESULT_HANDLER = 0x0048, "energyScanResultHandler";
    }
}

impl Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of the table yields a named frame id, its versions, and a variant whose
    /// `frame_id()` is that id again.
    #[test]
    fn every_table_line_is_named_versioned_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for &frame_id in FRAME_IDS {
            assert!(seen.insert(frame_id), "{frame_id:?} twice");
            assert_ne!(command_name(frame_id), "unknown frame", "{frame_id:?}");
            assert!(frame_id.name().is_some());
            let versions = frame_versions(frame_id).expect("versions");
            assert!(*versions.start() >= 8 && *versions.end() <= 17);
        }
        assert_eq!(command_name(FrameId(0x7777)), "unknown frame");
        assert_eq!(frame_versions(FrameId(0x7777)), None);
        assert!(FrameId::MESSAGE_SENT_HANDLER.is_callback());
        assert!(!FrameId::SEND_UNICAST.is_callback());
        assert_eq!(response_name(FrameId::GET_EUI64), "getEui64 response");
        // A unit command, an inline-field response and a struct callback come back as
        // themselves through the generated encode and decode.
        let version = EzspVersion::V13;
        let mut out = Vec::new();
        Response::GetEui64 {
            eui64: Ieee::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
        }
        .encode_parameters(version, &mut out)
        .unwrap();
        assert_eq!(
            Response::decode_parameters(version, FrameId::GET_EUI64, &out, 5).unwrap(),
            Response::GetEui64 {
                eui64: Ieee::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])
            }
        );
        assert_eq!(
            Command::decode_parameters(version, FrameId::NOP, &[], 5).unwrap(),
            Command::Nop
        );
        assert!(Command::decode_parameters(version, FrameId::NOP, &[0], 5).is_err());
        assert!(matches!(
            Callback::decode_parameters(version, FrameId(0x0048), &[11, 0xA4], 5).unwrap(),
            Callback::Other {
                frame_id: FrameId(0x0048),
                ..
            }
        ));
    }
}
