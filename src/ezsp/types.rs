//! EZSP data types (UG100 "Named Types" and "Structure Definitions"): EmberApsFrame, EUI-64,
//! node ids, EmberNetworkParameters, EmberInitialSecurityState and the one-byte ids and enums
//! that commands carry. None of these change layout between v13 and v17.
//!
//! ```
//! use zigbee_otad::ezsp::types::{ApsFrame, ApsOptions};
//! let aps = ApsFrame {
//!     profile_id: 0x0104, cluster_id: 0x0019, source_endpoint: 1, destination_endpoint: 1,
//!     options: ApsOptions(ApsOptions::RETRY.0 | ApsOptions::ENABLE_ROUTE_DISCOVERY.0),
//!     group_id: 0, sequence: 0x10,
//! };
//! let mut out = Vec::new();
//! aps.encode(&mut out);
//! assert_eq!(out, [0x04, 0x01, 0x19, 0x00, 0x01, 0x01, 0x40, 0x01, 0x00, 0x00, 0x10]);
//! assert_eq!(ApsFrame::decode(&out).unwrap(), aps);
//! ```

use std::fmt;

use super::params::{ParamReader, ParamWriter};
use super::{DecodeError, EzspVersion};
use crate::wire::wire_enum;

/// Runs `read` over all of `bytes` (for the standalone `decode` of a structure).
fn decode_all<T>(
    bytes: &[u8],
    context: &'static str,
    read: impl FnOnce(&mut ParamReader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut reader = ParamReader::new(bytes, 0, context, EzspVersion::V13);
    let value = read(&mut reader)?;
    reader.finish()?;
    Ok(value)
}

/// Encodes with a writer whose version does not matter (structures are the same in v13..v17).
fn encode_with(out: &mut Vec<u8>, context: &'static str, write: impl FnOnce(&mut ParamWriter<'_>)) {
    let mut writer = ParamWriter::new(out, context, EzspVersion::V13);
    write(&mut writer);
}

/// The public `LEN`, `encode`, `decode` and `encoded_len` of a fixed-size structure, from its
/// crate-private `read` and `write`.
macro_rules! structure_codec {
    ($type:ident, $len:literal, $name:literal) => {
        impl $type {
            /// Bytes on the wire.
            pub const LEN: usize = $len;

            #[doc = concat!("Encodes the ", stringify!($len), " bytes.")]
            pub fn encode(&self, out: &mut Vec<u8>) {
                encode_with(out, $name, |w| self.write(w));
            }

            #[doc = concat!("Decodes exactly ", stringify!($len), " bytes.")]
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                decode_all(bytes, $name, Self::read)
            }

            #[doc = concat!("Always [`", stringify!($type), "::LEN`].")]
            pub fn encoded_len(&self) -> usize {
                Self::LEN
            }
        }
    };
}

pub use crate::zigbee::{Ieee, Nwk};

impl Ieee {
    /// Reads the eight wire bytes (EmberEUI64, least significant first).
    pub(crate) fn read(r: &mut ParamReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.array(field).map(Self::from_le_bytes)
    }
}

/// A 128-bit key (EmberKeyData).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyData(pub [u8; 16]);

impl fmt::Debug for KeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are secrets: never print them in logs.
        f.write_str("KeyData(..)")
    }
}

/// EmberApsOption bits of [`ApsFrame::options`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ApsOptions(pub u16);

impl ApsOptions {
    /// No options.
    pub const NONE: Self = Self(0x0000);
    /// APS encryption with the link key.
    pub const ENCRYPTION: Self = Self(0x0020);
    /// Request an APS acknowledgement and retry until it arrives.
    pub const RETRY: Self = Self(0x0040);
    /// Discover a route if there is none.
    pub const ENABLE_ROUTE_DISCOVERY: Self = Self(0x0100);
    /// Rediscover the route even if one exists.
    pub const FORCE_ROUTE_DISCOVERY: Self = Self(0x0200);
    /// Include the source EUI-64 in the network frame.
    pub const SOURCE_EUI64: Self = Self(0x0400);
    /// Include the destination EUI-64 in the network frame.
    pub const DESTINATION_EUI64: Self = Self(0x0800);
    /// Discover the short address if it is unknown.
    pub const ENABLE_ADDRESS_DISCOVERY: Self = Self(0x1000);
    /// The ZDO request needs the application to send the response.
    pub const ZDO_RESPONSE_REQUIRED: Self = Self(0x4000);
    /// This message is part of a fragmented transfer.
    pub const FRAGMENT: Self = Self(0x8000);

    /// True when every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for ApsOptions {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl fmt::Debug for ApsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApsOptions(0x{:04X})", self.0)
    }
}

/// EmberApsFrame: the APS header fields of a message (11 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ApsFrame {
    /// Application profile (0x0104 Home Automation, 0x0000 ZDO).
    pub profile_id: u16,
    /// Cluster (0x0019 OTA Upgrade).
    pub cluster_id: u16,
    /// Source endpoint.
    pub source_endpoint: u8,
    /// Destination endpoint (0xFF broadcast endpoint).
    pub destination_endpoint: u8,
    /// EmberApsOption bits.
    pub options: ApsOptions,
    /// Group for multicast, otherwise 0.
    pub group_id: u16,
    /// APS sequence number.
    pub sequence: u8,
}

structure_codec!(ApsFrame, 11, "EmberApsFrame");

impl ApsFrame {
    pub(crate) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(ApsFrame {
            profile_id: r.u16("apsFrame.profileId")?,
            cluster_id: r.u16("apsFrame.clusterId")?,
            source_endpoint: r.u8("apsFrame.sourceEndpoint")?,
            destination_endpoint: r.u8("apsFrame.destinationEndpoint")?,
            options: ApsOptions(r.u16("apsFrame.options")?),
            group_id: r.u16("apsFrame.groupId")?,
            sequence: r.u8("apsFrame.sequence")?,
        })
    }

    pub(crate) fn write(&self, w: &mut ParamWriter<'_>) {
        w.u16(self.profile_id);
        w.u16(self.cluster_id);
        w.u8(self.source_endpoint);
        w.u8(self.destination_endpoint);
        w.u16(self.options.0);
        w.u16(self.group_id);
        w.u8(self.sequence);
    }
}

wire_enum! {
    /// EzspConfigId: a stack configuration value set before `networkInit`.
    ConfigId(u8) {
        PACKET_BUFFER_COUNT = 0x01,
        NEIGHBOR_TABLE_SIZE = 0x02,
        APS_UNICAST_MESSAGE_COUNT = 0x03,
        BINDING_TABLE_SIZE = 0x04,
        ADDRESS_TABLE_SIZE = 0x05,
        MULTICAST_TABLE_SIZE = 0x06,
        ROUTE_TABLE_SIZE = 0x07,
        DISCOVERY_TABLE_SIZE = 0x08,
        STACK_PROFILE = 0x0C,
        SECURITY_LEVEL = 0x0D,
        MAX_HOPS = 0x10,
        MAX_END_DEVICE_CHILDREN = 0x11,
        INDIRECT_TRANSMISSION_TIMEOUT = 0x12,
        END_DEVICE_POLL_TIMEOUT = 0x13,
        TX_POWER_MODE = 0x17,
        DISABLE_RELAY = 0x18,
        TRUST_CENTER_ADDRESS_CACHE_SIZE = 0x19,
        SOURCE_ROUTE_TABLE_SIZE = 0x1A,
        FRAGMENT_WINDOW_SIZE = 0x1C,
        FRAGMENT_DELAY_MS = 0x1D,
        KEY_TABLE_SIZE = 0x1E,
        APS_ACK_TIMEOUT = 0x1F,
        BROADCAST_TABLE_SIZE = 0x2B,
        APPLICATION_ZDO_FLAGS = 0x2A,
        SUPPORTED_NETWORKS = 0x2D,
    }
}

wire_enum! {
    /// EzspValueId: a value read or written with `getValue`/`setValue`.
    ValueId(u8) {
        TOKEN_STACK_NODE_DATA = 0x00,
        FREE_BUFFERS = 0x03,
        MAXIMUM_INCOMING_TRANSFER_SIZE = 0x05,
        MAXIMUM_OUTGOING_TRANSFER_SIZE = 0x06,
        STACK_TOKEN_WRITING = 0x07,
        EXTENDED_SECURITY_BITMASK = 0x0A,
        NODE_SHORT_ID = 0x0B,
        DESCRIPTOR_CAPABILITY = 0x0C,
        ENDPOINT_FLAGS = 0x0F,
        VERSION_INFO = 0x11,
        NEXT_ZIGBEE_SEQUENCE_NUMBER = 0x14,
        CCA_THRESHOLD = 0x15,
    }
}

wire_enum! {
    /// EzspPolicyId: a policy set with `setPolicy`.
    PolicyId(u8) {
        TRUST_CENTER_POLICY = 0x00,
        BINDING_MODIFICATION_POLICY = 0x01,
        UNICAST_REPLIES_POLICY = 0x02,
        POLL_HANDLER_POLICY = 0x03,
        MESSAGE_CONTENTS_IN_CALLBACK_POLICY = 0x04,
        TC_KEY_REQUEST_POLICY = 0x05,
        APP_KEY_REQUEST_POLICY = 0x06,
        PACKET_VALIDATE_LIBRARY_POLICY = 0x07,
        ZLL_POLICY = 0x08,
        TC_REJOINS_USING_WELL_KNOWN_KEY_POLICY = 0x09,
    }
}

wire_enum! {
    /// EzspDecisionId (or, for the trust-center policy since v8, EzspDecisionBitmask bits).
    DecisionId(u8) {
        ALLOW_JOINS = 0x00,
        ALLOW_PRECONFIGURED_KEY_JOINS = 0x01,
        ALLOW_REJOINS_ONLY = 0x02,
        DISALLOW_ALL_JOINS_AND_REJOINS = 0x03,
        ALLOW_JOINS_REJOINS_HAVE_LINK_KEY = 0x04,
        IGNORE_TRUST_CENTER_REJOINS = 0x05,
        DISALLOW_BINDING_MODIFICATION = 0x10,
        ALLOW_BINDING_MODIFICATION = 0x11,
        HOST_WILL_NOT_SUPPLY_REPLY = 0x20,
        HOST_WILL_SUPPLY_REPLY = 0x21,
        MESSAGE_TAG_ONLY_IN_CALLBACK = 0x40,
        MESSAGE_TAG_AND_CONTENTS_IN_CALLBACK = 0x41,
        DENY_TC_KEY_REQUESTS = 0x50,
        ALLOW_TC_KEY_REQUESTS_AND_SEND_CURRENT_KEY = 0x51,
        DENY_APP_KEY_REQUESTS = 0x60,
        ALLOW_APP_KEY_REQUESTS = 0x61,
    }
}

wire_enum! {
    /// EmberNodeType.
    NodeType(u8) {
        UNKNOWN_DEVICE = 0x00,
        COORDINATOR = 0x01,
        ROUTER = 0x02,
        END_DEVICE = 0x03,
        SLEEPY_END_DEVICE = 0x04,
        UNKNOWN_NODE_TYPE = 0xFF,
    }
}

wire_enum! {
    /// EmberNetworkStatus, the answer to `networkState`.
    NetworkStatus(u8) {
        NO_NETWORK = 0x00,
        JOINING_NETWORK = 0x01,
        JOINED_NETWORK = 0x02,
        JOINED_NETWORK_NO_PARENT = 0x03,
        LEAVING_NETWORK = 0x04,
    }
}

wire_enum! {
    /// EmberOutgoingMessageType.
    OutgoingMessageType(u8) {
        DIRECT = 0x00,
        VIA_ADDRESS_TABLE = 0x01,
        VIA_BINDING = 0x02,
        MULTICAST = 0x03,
        MULTICAST_WITH_ALIAS = 0x04,
        BROADCAST_WITH_ALIAS = 0x05,
        BROADCAST = 0x06,
    }
}

wire_enum! {
    /// EmberIncomingMessageType.
    IncomingMessageType(u8) {
        UNICAST = 0x00,
        UNICAST_REPLY = 0x01,
        MULTICAST = 0x02,
        MULTICAST_LOOPBACK = 0x03,
        BROADCAST = 0x04,
        BROADCAST_LOOPBACK = 0x05,
        MANY_TO_ONE_ROUTE_REQUEST = 0x06,
    }
}

wire_enum! {
    /// EmberDeviceUpdate, the event reported by `trustCenterJoinHandler`.
    DeviceUpdate(u8) {
        STANDARD_SECURITY_SECURED_REJOIN = 0x00,
        STANDARD_SECURITY_UNSECURED_JOIN = 0x01,
        DEVICE_LEFT = 0x02,
        STANDARD_SECURITY_UNSECURED_REJOIN = 0x03,
    }
}

wire_enum! {
    /// EmberJoinDecision, what the trust center did about a join.
    JoinDecision(u8) {
        USE_PRECONFIGURED_KEY = 0x00,
        SEND_KEY_IN_THE_CLEAR = 0x01,
        DENY_JOIN = 0x02,
        NO_ACTION = 0x03,
    }
}

wire_enum! {
    /// EmberJoinMethod, in [`NetworkParameters`].
    JoinMethod(u8) {
        USE_MAC_ASSOCIATION = 0x00,
        USE_NWK_REJOIN = 0x01,
        USE_NWK_REJOIN_HAVE_NWK_KEY = 0x02,
        USE_CONFIGURED_NWK_STATE = 0x03,
    }
}

/// EmberNetworkInitBitmask bits for `networkInit`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct NetworkInitBitmask(pub u16);

impl NetworkInitBitmask {
    /// No options (what a coordinator uses).
    pub const NO_OPTIONS: Self = Self(0x0000);
    /// Save parent info (node id, EUI-64) in a token.
    pub const PARENT_INFO_IN_TOKEN: Self = Self(0x0001);
    /// An end device rejoins on reboot.
    pub const END_DEVICE_REJOIN_ON_REBOOT: Self = Self(0x0002);
}

/// EmberInitialSecurityBitmask bits of [`InitialSecurityState::bitmask`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct InitialSecurityBitmask(pub u16);

impl InitialSecurityBitmask {
    /// Distributed trust center (no coordinator TC).
    pub const DISTRIBUTED_TRUST_CENTER_MODE: Self = Self(0x0002);
    /// Use the well-known global link key `ZigBeeAlliance09`.
    pub const TRUST_CENTER_GLOBAL_LINK_KEY: Self = Self(0x0004);
    /// The network key is preconfigured.
    pub const PRECONFIGURED_NETWORK_KEY_MODE: Self = Self(0x0008);
    /// `preconfigured_trust_center_eui64` is valid.
    pub const HAVE_TRUST_CENTER_EUI64: Self = Self(0x0040);
    /// `preconfigured_key` is valid.
    pub const HAVE_PRECONFIGURED_KEY: Self = Self(0x0100);
    /// `network_key` is valid.
    pub const HAVE_NETWORK_KEY: Self = Self(0x0200);
    /// Ask the TC for a link key when joining.
    pub const GET_LINK_KEY_WHEN_JOINING: Self = Self(0x0400);
    /// Require the key to arrive encrypted.
    pub const REQUIRE_ENCRYPTED_KEY: Self = Self(0x0800);
    /// Do not reset the outgoing frame counter.
    pub const NO_FRAME_COUNTER_RESET: Self = Self(0x1000);
}

impl std::ops::BitOr for InitialSecurityBitmask {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// EmberNetworkParameters (20 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NetworkParameters {
    /// Extended PAN id, wire order.
    pub extended_pan_id: Ieee,
    /// PAN id.
    pub pan_id: u16,
    /// Transmit power in dBm (a signed value carried as u8, as UG100 defines it).
    pub radio_tx_power: u8,
    /// Channel 11..=26.
    pub radio_channel: u8,
    /// How to join.
    pub join_method: JoinMethod,
    /// Network manager's node id.
    pub nwk_manager_id: Nwk,
    /// Network update id.
    pub nwk_update_id: u8,
    /// Channel mask for the network manager.
    pub channels: u32,
}

structure_codec!(NetworkParameters, 20, "EmberNetworkParameters");

impl NetworkParameters {
    pub(crate) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(NetworkParameters {
            extended_pan_id: Ieee::read(r, "parameters.extendedPanId")?,
            pan_id: r.u16("parameters.panId")?,
            radio_tx_power: r.u8("parameters.radioTxPower")?,
            radio_channel: r.u8("parameters.radioChannel")?,
            join_method: JoinMethod(r.u8("parameters.joinMethod")?),
            nwk_manager_id: Nwk(r.u16("parameters.nwkManagerId")?),
            nwk_update_id: r.u8("parameters.nwkUpdateId")?,
            channels: r.u32("parameters.channels")?,
        })
    }

    pub(crate) fn write(&self, w: &mut ParamWriter<'_>) {
        w.bytes(&self.extended_pan_id.to_le_bytes());
        w.u16(self.pan_id);
        w.u8(self.radio_tx_power);
        w.u8(self.radio_channel);
        w.u8(self.join_method.0);
        w.u16(self.nwk_manager_id.0);
        w.u8(self.nwk_update_id);
        w.u32(self.channels);
    }
}

/// EmberInitialSecurityState (43 bytes), the argument of `setInitialSecurityState`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct InitialSecurityState {
    /// Which of the following fields are valid, and the security mode.
    pub bitmask: InitialSecurityBitmask,
    /// Trust-center link key.
    pub preconfigured_key: KeyData,
    /// Network key.
    pub network_key: KeyData,
    /// Network key sequence number.
    pub network_key_sequence_number: u8,
    /// The trust center's EUI-64 (when HAVE_TRUST_CENTER_EUI64).
    pub preconfigured_trust_center_eui64: Ieee,
}

structure_codec!(InitialSecurityState, 43, "EmberInitialSecurityState");

impl InitialSecurityState {
    pub(crate) fn read(r: &mut ParamReader<'_>) -> Result<Self, DecodeError> {
        Ok(InitialSecurityState {
            bitmask: InitialSecurityBitmask(r.u16("state.bitmask")?),
            preconfigured_key: KeyData(r.array("state.preconfiguredKey")?),
            network_key: KeyData(r.array("state.networkKey")?),
            network_key_sequence_number: r.u8("state.networkKeySequenceNumber")?,
            preconfigured_trust_center_eui64: Ieee::read(r, "state.preconfiguredTrustCenterEui64")?,
        })
    }

    pub(crate) fn write(&self, w: &mut ParamWriter<'_>) {
        w.u16(self.bitmask.0);
        w.bytes(&self.preconfigured_key.0);
        w.bytes(&self.network_key.0);
        w.u8(self.network_key_sequence_number);
        w.bytes(&self.preconfigured_trust_center_eui64.to_le_bytes());
    }
}

/// A ZDO Device_annce (ZDO cluster 0x0013), which reaches the host as an
/// `incomingMessageHandler` on profile 0: a device joined or rejoined with these addresses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DeviceAnnounce {
    /// ZDO transaction sequence number.
    pub transaction_sequence: u8,
    /// The device's short address.
    pub node_id: Nwk,
    /// The device's EUI-64.
    pub eui64: Ieee,
    /// MAC capability flags (bit 1 device type, bit 3 receiver on when idle).
    pub capability: u8,
}

impl DeviceAnnounce {
    /// ZDO profile id.
    pub const PROFILE_ID: u16 = 0x0000;
    /// ZDO Device_annce cluster id.
    pub const CLUSTER_ID: u16 = 0x0013;

    /// Decodes the 12-byte ZDO payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_all(bytes, "Device_annce", |r| {
            Ok(DeviceAnnounce {
                transaction_sequence: r.u8("transactionSequence")?,
                node_id: Nwk(r.u16("nwkAddr")?),
                eui64: Ieee::read(r, "ieeeAddr")?,
                capability: r.u8("capability")?,
            })
        })
    }

    /// Encodes the 12-byte ZDO payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_with(out, "Device_annce", |w| {
            w.u8(self.transaction_sequence);
            w.u16(self.node_id.0);
            w.bytes(&self.eui64.to_le_bytes());
            w.u8(self.capability);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ieee_wire_bytes_are_least_significant_first_and_display_most_first() {
        let eui = Ieee::from_le_bytes([0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00]);
        assert_eq!(eui.to_string(), "00:11:22:33:44:55:66:77");
        assert_eq!(eui.0, 0x0011_2233_4455_6677);
        assert_eq!(Ieee(0x0011_2233_4455_6677), eui);
        assert_eq!("00:11:22:33:44:55:66:77".parse::<Ieee>().unwrap(), eui);
        for bad in [
            "00:11:22:33:44:55:66",
            "00:11:22:33:44:55:66:77:88",
            "zz:11:22:33:44:55:66:77",
        ] {
            assert!(bad.parse::<Ieee>().is_err(), "{bad}");
        }
    }

    #[test]
    fn aps_frame_errors_name_field_and_offset() {
        let err = ApsFrame::decode(&[0x04, 0x01, 0x19]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EmberApsFrame: apsFrame.clusterId at offset 2 needs 2 bytes, only 1 left"
        );
        let err = ApsFrame::decode(&[0; 12]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TrailingBytes {
                offset: 11,
                count: 1,
                ..
            }
        ));
    }

    #[test]
    fn key_data_is_not_printed() {
        assert_eq!(format!("{:?}", KeyData([0xAB; 16])), "KeyData(..)");
    }

    #[test]
    fn device_announce_round_trip() {
        let annce = DeviceAnnounce {
            transaction_sequence: 0x81,
            node_id: Nwk(0x1234),
            eui64: Ieee(0x0011_2233_4455_6677),
            capability: 0x8E,
        };
        let mut out = Vec::new();
        annce.encode(&mut out);
        assert_eq!(
            out,
            [
                0x81, 0x34, 0x12, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0x8E
            ]
        );
        assert_eq!(DeviceAnnounce::decode(&out).unwrap(), annce);
    }
}
