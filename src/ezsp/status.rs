//! EZSP status codes (UG100 "EmberStatus", "EzspStatus"; SiSDK `sl_status_t`).
//!
//! Before protocol version 14 a status is one byte, either an [`EmberStatus`] (stack results)
//! or an [`EzspStatus`] (EZSP-layer results such as configuration calls and `invalidCommand`).
//! From version 14 every status is a four-byte [`SlStatus`]. [`Status`] holds whichever was on
//! the wire and gives the unified view: success or failure, and the `sl_status_t` equivalent
//! (the same correspondence bellows uses in `sl_Status.from_ember_status`).
//!
//! ```
//! use zigbee_otad::ezsp::status::{EmberStatus, SlStatus, Status};
//! let up = Status::Ember(EmberStatus::NETWORK_UP);
//! assert_eq!(up.to_sl(), Some(SlStatus::ZIGBEE_NETWORK_UP));
//! assert_eq!(EmberStatus::from_sl(SlStatus::ZIGBEE_DELIVERY_FAILED), Some(EmberStatus::DELIVERY_FAILED));
//! assert!(!up.is_success());
//! ```

use crate::wire::wire_enum;

wire_enum! {
    /// A one-byte stack status, used before EZSP version 14.
    EmberStatus(u8) {
        SUCCESS = 0x00,
        ERR_FATAL = 0x01,
        BAD_ARGUMENT = 0x02,
        NOT_FOUND = 0x03,
        NO_BUFFERS = 0x18,
        PACKET_HANDOFF_DROP_PACKET = 0x19,
        SERIAL_RX_EMPTY = 0x26,
        MAC_NO_DATA = 0x31,
        MAC_INVALID_CHANNEL_MASK = 0x35,
        MAC_TRANSMIT_QUEUE_FULL = 0x39,
        MAC_SCANNING = 0x3D,
        MAC_NO_ACK_RECEIVED = 0x40,
        MAC_INDIRECT_TIMEOUT = 0x42,
        DELIVERY_FAILED = 0x66,
        ADDRESS_TABLE_INDEX_OUT_OF_RANGE = 0x6A,
        INVALID_BINDING_INDEX = 0x6C,
        INVALID_CALL = 0x70,
        MAX_MESSAGE_LIMIT_REACHED = 0x72,
        MESSAGE_TOO_LONG = 0x74,
        BINDING_IS_ACTIVE = 0x75,
        ADDRESS_TABLE_ENTRY_IS_ACTIVE = 0x76,
        PHY_TX_SCHED_FAIL = 0x87,
        PHY_INVALID_CHANNEL = 0x8A,
        PHY_INVALID_POWER = 0x8B,
        PHY_TX_CCA_FAIL = 0x8D,
        PHY_TX_BLOCKED = 0x8E,
        NETWORK_UP = 0x90,
        NETWORK_DOWN = 0x91,
        NOT_JOINED = 0x93,
        JOIN_FAILED = 0x94,
        INVALID_SECURITY_LEVEL = 0x95,
        MOVE_FAILED = 0x96,
        CANNOT_JOIN_AS_ROUTER = 0x98,
        NODE_ID_CHANGED = 0x99,
        PAN_ID_CHANGED = 0x9A,
        CHANNEL_CHANGED = 0x9B,
        NETWORK_OPENED = 0x9C,
        NETWORK_CLOSED = 0x9D,
        NETWORK_BUSY = 0xA1,
        INVALID_ENDPOINT = 0xA3,
        BINDING_HAS_CHANGED = 0xA4,
        INSUFFICIENT_RANDOM_DATA = 0xA5,
        APS_ENCRYPTION_ERROR = 0xA6,
        SECURITY_STATE_NOT_SET = 0xA8,
        SOURCE_ROUTE_FAILURE = 0xA9,
        MANY_TO_ONE_ROUTE_FAILURE = 0xAA,
        NO_BEACONS = 0xAB,
        RECEIVED_KEY_IN_THE_CLEAR = 0xAC,
        NO_NETWORK_KEY_RECEIVED = 0xAD,
        NO_LINK_KEY_RECEIVED = 0xAE,
        PRECONFIGURED_KEY_REQUIRED = 0xAF,
        STACK_AND_HARDWARE_MISMATCH = 0xB0,
        INDEX_OUT_OF_RANGE = 0xB1,
        KEY_INVALID = 0xB2,
        KEY_TABLE_INVALID_ADDRESS = 0xB3,
        TABLE_FULL = 0xB4,
        LIBRARY_NOT_PRESENT = 0xB5,
        TABLE_ENTRY_ERASED = 0xB6,
        SECURITY_CONFIGURATION_INVALID = 0xB7,
        TOO_SOON_FOR_SWITCH_KEY = 0xB8,
        SIGNATURE_VERIFY_FAILURE = 0xB9,
        OPERATION_IN_PROGRESS = 0xBA,
        KEY_NOT_AUTHORIZED = 0xBB,
        TRUST_CENTER_EUI_HAS_CHANGED = 0xBC,
        SECURITY_DATA_INVALID = 0xBD,
        IEEE_ADDRESS_DISCOVERY_IN_PROGRESS = 0xBE,
        ID_DISCOVERY_FAILED = 0xC8,
        NO_APS_ACK = 0xC9,
        APS_MESSAGE_CANCELED = 0xCA,
        ID_DISCOVERY_NOT_ENABLED = 0xCB,
        ID_DISCOVERY_UNDERWAY = 0xCC,
        SEND_UNICAST_ROUTE_DISCOVERY_UNDERWAY = 0xCD,
        SEND_UNICAST_FAILURE = 0xCE,
        SEND_UNICAST_NO_ROUTE = 0xCF,
        BROADCAST_TO_SLEEPY_CHILDREN_TIMEOUT = 0xD0,
        BROADCAST_RELAY_FAILED = 0xD1,
        TRANSMIT_INCOMPLETE = 0xD2,
    }
}

wire_enum! {
    /// A four-byte `sl_status_t`, used for every status from EZSP version 14.
    SlStatus(u32) {
        OK = 0x0000,
        FAIL = 0x0001,
        INVALID_STATE = 0x0002,
        BUSY = 0x0004,
        IN_PROGRESS = 0x0005,
        NOT_AVAILABLE = 0x000E,
        NOT_SUPPORTED = 0x000F,
        ZIGBEE_NETWORK_UP = 0x0015,
        ZIGBEE_NETWORK_DOWN = 0x0016,
        NOT_JOINED = 0x0017,
        NO_BEACONS = 0x0018,
        ALLOCATION_FAILED = 0x0019,
        EMPTY = 0x001B,
        FULL = 0x001C,
        INVALID_PARAMETER = 0x0021,
        INVALID_CONFIGURATION = 0x0023,
        NO_MORE_RESOURCE = 0x0024,
        INVALID_INDEX = 0x0027,
        INVALID_RANGE = 0x0028,
        INVALID_KEY = 0x0029,
        NOT_FOUND = 0x002D,
        TRANSMIT_INCOMPLETE = 0x0033,
        MESSAGE_TOO_LONG = 0x0038,
        MAC_NO_DATA = 0x003F,
        MAC_NO_ACK_RECEIVED = 0x0040,
        MAC_INDIRECT_TIMEOUT = 0x0041,
        CCA_FAILURE = 0x004C,
        MAC_SCANNING = 0x004D,
        INVALID_CHANNEL_MASK = 0x004F,
        MAC_TRANSMIT_QUEUE_FULL = 0x0053,
        TRANSMIT_SCHEDULER_FAIL = 0x0054,
        TRANSMIT_INVALID_CHANNEL = 0x0055,
        TRANSMIT_INVALID_POWER = 0x0056,
        TRANSMIT_BLOCKED = 0x0058,
        ZIGBEE_PACKET_HANDOFF_DROPPED = 0x0C01,
        ZIGBEE_DELIVERY_FAILED = 0x0C02,
        ZIGBEE_MAX_MESSAGE_LIMIT_REACHED = 0x0C03,
        ZIGBEE_BINDING_IS_ACTIVE = 0x0C04,
        ZIGBEE_ADDRESS_TABLE_ENTRY_IS_ACTIVE = 0x0C05,
        ZIGBEE_MOVE_FAILED = 0x0C06,
        ZIGBEE_NODE_ID_CHANGED = 0x0C07,
        ZIGBEE_INVALID_SECURITY_LEVEL = 0x0C08,
        ZIGBEE_IEEE_ADDRESS_DISCOVERY_IN_PROGRESS = 0x0C09,
        ZIGBEE_APS_ENCRYPTION_ERROR = 0x0C0A,
        ZIGBEE_SECURITY_STATE_NOT_SET = 0x0C0B,
        ZIGBEE_TOO_SOON_FOR_SWITCH_KEY = 0x0C0C,
        ZIGBEE_SIGNATURE_VERIFY_FAILURE = 0x0C0D,
        ZIGBEE_KEY_NOT_AUTHORIZED = 0x0C0E,
        ZIGBEE_BINDING_HAS_CHANGED = 0x0C0F,
        ZIGBEE_TRUST_CENTER_SWAP_EUI_HAS_CHANGED = 0x0C10,
        ZIGBEE_INSUFFICIENT_RANDOM_DATA = 0x0C12,
        ZIGBEE_SOURCE_ROUTE_FAILURE = 0x0C13,
        ZIGBEE_MANY_TO_ONE_ROUTE_FAILURE = 0x0C14,
        ZIGBEE_STACK_AND_HARDWARE_MISMATCH = 0x0C15,
        ZIGBEE_PAN_ID_CHANGED = 0x0C16,
        ZIGBEE_CHANNEL_CHANGED = 0x0C17,
        ZIGBEE_NETWORK_OPENED = 0x0C18,
        ZIGBEE_NETWORK_CLOSED = 0x0C19,
        ZIGBEE_RECEIVED_KEY_IN_THE_CLEAR = 0x0C1A,
        ZIGBEE_NO_NETWORK_KEY_RECEIVED = 0x0C1B,
        ZIGBEE_NO_LINK_KEY_RECEIVED = 0x0C1C,
        ZIGBEE_PRECONFIGURED_KEY_REQUIRED = 0x0C1D,
        ZIGBEE_ID_DISCOVERY_FAILED = 0x0C1F,
        ZIGBEE_NO_APS_ACK = 0x0C20,
        ZIGBEE_APS_MESSAGE_CANCELED = 0x0C21,
        ZIGBEE_ID_DISCOVERY_NOT_ENABLED = 0x0C22,
        ZIGBEE_ID_DISCOVERY_UNDERWAY = 0x0C23,
        ZIGBEE_SEND_UNICAST_ROUTE_DISCOVERY_UNDERWAY = 0x0C24,
        ZIGBEE_SEND_UNICAST_FAILURE = 0x0C25,
        ZIGBEE_SEND_UNICAST_NO_ROUTE = 0x0C26,
        ZIGBEE_BROADCAST_TO_SLEEPY_CHILDREN_TIMEOUT = 0x0C27,
        ZIGBEE_BROADCAST_RELAY_FAILED = 0x0C28,
    }
}

wire_enum! {
    /// A one-byte EZSP-layer status (configuration calls and `invalidCommand` before v14).
    EzspStatus(u8) {
        SUCCESS = 0x00,
        ERROR_VERSION_NOT_SET = 0x30,
        ERROR_INVALID_FRAME_ID = 0x31,
        ERROR_WRONG_DIRECTION = 0x32,
        ERROR_TRUNCATED = 0x33,
        ERROR_OVERFLOW = 0x34,
        ERROR_OUT_OF_MEMORY = 0x35,
        ERROR_INVALID_VALUE = 0x36,
        ERROR_INVALID_ID = 0x37,
        ERROR_INVALID_CALL = 0x38,
        ERROR_NO_RESPONSE = 0x39,
        ERROR_COMMAND_TOO_LONG = 0x40,
        ERROR_QUEUE_FULL = 0x41,
        ERROR_COMMAND_FILTERED = 0x42,
        ERROR_SECURITY_KEY_ALREADY_SET = 0x43,
        ERROR_SECURITY_TYPE_INVALID = 0x44,
        ERROR_SECURITY_PARAMETERS_INVALID = 0x45,
        ERROR_SECURITY_PARAMETERS_ALREADY_SET = 0x46,
        ERROR_SECURITY_KEY_NOT_SET = 0x47,
        ERROR_SECURITY_PARAMETERS_NOT_SET = 0x48,
        ERROR_UNSUPPORTED_CONTROL = 0x49,
        ERROR_UNSECURE_FRAME = 0x4A,
        NO_ERROR = 0xFF,
    }
}

/// EmberStatus ↔ sl_status_t, the canonical EmberStatus first where several share one
/// `sl_status_t` (so [`EmberStatus::from_sl`] picks it).
const EMBER_TO_SL: &[(EmberStatus, SlStatus)] = &[
    (EmberStatus::SUCCESS, SlStatus::OK),
    (EmberStatus::ERR_FATAL, SlStatus::FAIL),
    (EmberStatus::BAD_ARGUMENT, SlStatus::INVALID_PARAMETER),
    (EmberStatus::INVALID_ENDPOINT, SlStatus::INVALID_PARAMETER),
    (
        EmberStatus::KEY_TABLE_INVALID_ADDRESS,
        SlStatus::INVALID_PARAMETER,
    ),
    (EmberStatus::NOT_FOUND, SlStatus::NOT_FOUND),
    (EmberStatus::TABLE_ENTRY_ERASED, SlStatus::NOT_FOUND),
    (EmberStatus::INVALID_CALL, SlStatus::INVALID_STATE),
    (EmberStatus::MESSAGE_TOO_LONG, SlStatus::MESSAGE_TOO_LONG),
    (EmberStatus::TABLE_FULL, SlStatus::FULL),
    (EmberStatus::LIBRARY_NOT_PRESENT, SlStatus::NOT_AVAILABLE),
    (EmberStatus::OPERATION_IN_PROGRESS, SlStatus::IN_PROGRESS),
    (EmberStatus::INDEX_OUT_OF_RANGE, SlStatus::INVALID_INDEX),
    (EmberStatus::INVALID_BINDING_INDEX, SlStatus::INVALID_INDEX),
    (EmberStatus::NOT_JOINED, SlStatus::NOT_JOINED),
    (EmberStatus::JOIN_FAILED, SlStatus::NOT_JOINED),
    (EmberStatus::CANNOT_JOIN_AS_ROUTER, SlStatus::NOT_JOINED),
    (EmberStatus::NETWORK_UP, SlStatus::ZIGBEE_NETWORK_UP),
    (EmberStatus::NETWORK_DOWN, SlStatus::ZIGBEE_NETWORK_DOWN),
    (EmberStatus::NO_BEACONS, SlStatus::NO_BEACONS),
    (EmberStatus::MOVE_FAILED, SlStatus::ZIGBEE_MOVE_FAILED),
    (
        EmberStatus::NODE_ID_CHANGED,
        SlStatus::ZIGBEE_NODE_ID_CHANGED,
    ),
    (EmberStatus::PAN_ID_CHANGED, SlStatus::ZIGBEE_PAN_ID_CHANGED),
    (
        EmberStatus::CHANNEL_CHANGED,
        SlStatus::ZIGBEE_CHANNEL_CHANGED,
    ),
    (EmberStatus::NETWORK_OPENED, SlStatus::ZIGBEE_NETWORK_OPENED),
    (EmberStatus::NETWORK_CLOSED, SlStatus::ZIGBEE_NETWORK_CLOSED),
    (EmberStatus::MAC_NO_DATA, SlStatus::MAC_NO_DATA),
    (
        EmberStatus::MAC_NO_ACK_RECEIVED,
        SlStatus::MAC_NO_ACK_RECEIVED,
    ),
    (
        EmberStatus::MAC_INDIRECT_TIMEOUT,
        SlStatus::MAC_INDIRECT_TIMEOUT,
    ),
    (EmberStatus::PHY_TX_BLOCKED, SlStatus::TRANSMIT_BLOCKED),
    (
        EmberStatus::PHY_TX_SCHED_FAIL,
        SlStatus::TRANSMIT_SCHEDULER_FAIL,
    ),
    (EmberStatus::PHY_TX_CCA_FAIL, SlStatus::CCA_FAILURE),
    (
        EmberStatus::SOURCE_ROUTE_FAILURE,
        SlStatus::ZIGBEE_SOURCE_ROUTE_FAILURE,
    ),
    (
        EmberStatus::MANY_TO_ONE_ROUTE_FAILURE,
        SlStatus::ZIGBEE_MANY_TO_ONE_ROUTE_FAILURE,
    ),
    (
        EmberStatus::MAX_MESSAGE_LIMIT_REACHED,
        SlStatus::ZIGBEE_MAX_MESSAGE_LIMIT_REACHED,
    ),
    (EmberStatus::NETWORK_BUSY, SlStatus::BUSY),
    (
        EmberStatus::DELIVERY_FAILED,
        SlStatus::ZIGBEE_DELIVERY_FAILED,
    ),
    (
        EmberStatus::APS_ENCRYPTION_ERROR,
        SlStatus::ZIGBEE_APS_ENCRYPTION_ERROR,
    ),
    (
        EmberStatus::RECEIVED_KEY_IN_THE_CLEAR,
        SlStatus::ZIGBEE_RECEIVED_KEY_IN_THE_CLEAR,
    ),
    (
        EmberStatus::NO_NETWORK_KEY_RECEIVED,
        SlStatus::ZIGBEE_NO_NETWORK_KEY_RECEIVED,
    ),
    (
        EmberStatus::NO_LINK_KEY_RECEIVED,
        SlStatus::ZIGBEE_NO_LINK_KEY_RECEIVED,
    ),
    (
        EmberStatus::PRECONFIGURED_KEY_REQUIRED,
        SlStatus::ZIGBEE_PRECONFIGURED_KEY_REQUIRED,
    ),
    (
        EmberStatus::TRUST_CENTER_EUI_HAS_CHANGED,
        SlStatus::ZIGBEE_TRUST_CENTER_SWAP_EUI_HAS_CHANGED,
    ),
    (
        EmberStatus::SIGNATURE_VERIFY_FAILURE,
        SlStatus::ZIGBEE_SIGNATURE_VERIFY_FAILURE,
    ),
    (EmberStatus::KEY_INVALID, SlStatus::INVALID_KEY),
    (
        EmberStatus::BINDING_IS_ACTIVE,
        SlStatus::ZIGBEE_BINDING_IS_ACTIVE,
    ),
    (
        EmberStatus::ADDRESS_TABLE_ENTRY_IS_ACTIVE,
        SlStatus::ZIGBEE_ADDRESS_TABLE_ENTRY_IS_ACTIVE,
    ),
    (
        EmberStatus::ADDRESS_TABLE_INDEX_OUT_OF_RANGE,
        SlStatus::INVALID_RANGE,
    ),
    (EmberStatus::NO_BUFFERS, SlStatus::ALLOCATION_FAILED),
    (
        EmberStatus::SECURITY_CONFIGURATION_INVALID,
        SlStatus::INVALID_CONFIGURATION,
    ),
    (
        EmberStatus::SECURITY_DATA_INVALID,
        SlStatus::INVALID_CONFIGURATION,
    ),
    (EmberStatus::MAC_SCANNING, SlStatus::MAC_SCANNING),
    (
        EmberStatus::MAC_INVALID_CHANNEL_MASK,
        SlStatus::INVALID_CHANNEL_MASK,
    ),
    (
        EmberStatus::PHY_INVALID_CHANNEL,
        SlStatus::TRANSMIT_INVALID_CHANNEL,
    ),
    (
        EmberStatus::PHY_INVALID_POWER,
        SlStatus::TRANSMIT_INVALID_POWER,
    ),
    (EmberStatus::SERIAL_RX_EMPTY, SlStatus::EMPTY),
    (
        EmberStatus::INSUFFICIENT_RANDOM_DATA,
        SlStatus::ZIGBEE_INSUFFICIENT_RANDOM_DATA,
    ),
    (
        EmberStatus::PACKET_HANDOFF_DROP_PACKET,
        SlStatus::ZIGBEE_PACKET_HANDOFF_DROPPED,
    ),
    (
        EmberStatus::SECURITY_STATE_NOT_SET,
        SlStatus::ZIGBEE_SECURITY_STATE_NOT_SET,
    ),
    (
        EmberStatus::KEY_NOT_AUTHORIZED,
        SlStatus::ZIGBEE_KEY_NOT_AUTHORIZED,
    ),
    (
        EmberStatus::MAC_TRANSMIT_QUEUE_FULL,
        SlStatus::MAC_TRANSMIT_QUEUE_FULL,
    ),
    (
        EmberStatus::STACK_AND_HARDWARE_MISMATCH,
        SlStatus::ZIGBEE_STACK_AND_HARDWARE_MISMATCH,
    ),
    (
        EmberStatus::IEEE_ADDRESS_DISCOVERY_IN_PROGRESS,
        SlStatus::ZIGBEE_IEEE_ADDRESS_DISCOVERY_IN_PROGRESS,
    ),
    (
        EmberStatus::TOO_SOON_FOR_SWITCH_KEY,
        SlStatus::ZIGBEE_TOO_SOON_FOR_SWITCH_KEY,
    ),
    (
        EmberStatus::BINDING_HAS_CHANGED,
        SlStatus::ZIGBEE_BINDING_HAS_CHANGED,
    ),
    (
        EmberStatus::INVALID_SECURITY_LEVEL,
        SlStatus::ZIGBEE_INVALID_SECURITY_LEVEL,
    ),
    (
        EmberStatus::ID_DISCOVERY_FAILED,
        SlStatus::ZIGBEE_ID_DISCOVERY_FAILED,
    ),
    (EmberStatus::NO_APS_ACK, SlStatus::ZIGBEE_NO_APS_ACK),
    (
        EmberStatus::APS_MESSAGE_CANCELED,
        SlStatus::ZIGBEE_APS_MESSAGE_CANCELED,
    ),
    (
        EmberStatus::ID_DISCOVERY_NOT_ENABLED,
        SlStatus::ZIGBEE_ID_DISCOVERY_NOT_ENABLED,
    ),
    (
        EmberStatus::ID_DISCOVERY_UNDERWAY,
        SlStatus::ZIGBEE_ID_DISCOVERY_UNDERWAY,
    ),
    (
        EmberStatus::SEND_UNICAST_ROUTE_DISCOVERY_UNDERWAY,
        SlStatus::ZIGBEE_SEND_UNICAST_ROUTE_DISCOVERY_UNDERWAY,
    ),
    (
        EmberStatus::SEND_UNICAST_FAILURE,
        SlStatus::ZIGBEE_SEND_UNICAST_FAILURE,
    ),
    (
        EmberStatus::SEND_UNICAST_NO_ROUTE,
        SlStatus::ZIGBEE_SEND_UNICAST_NO_ROUTE,
    ),
    (
        EmberStatus::BROADCAST_TO_SLEEPY_CHILDREN_TIMEOUT,
        SlStatus::ZIGBEE_BROADCAST_TO_SLEEPY_CHILDREN_TIMEOUT,
    ),
    (
        EmberStatus::BROADCAST_RELAY_FAILED,
        SlStatus::ZIGBEE_BROADCAST_RELAY_FAILED,
    ),
    (
        EmberStatus::TRANSMIT_INCOMPLETE,
        SlStatus::TRANSMIT_INCOMPLETE,
    ),
];

/// EzspStatus → sl_status_t, canonical first.
const EZSP_TO_SL: &[(EzspStatus, SlStatus)] = &[
    (EzspStatus::SUCCESS, SlStatus::OK),
    (EzspStatus::ERROR_INVALID_VALUE, SlStatus::INVALID_PARAMETER),
    (EzspStatus::ERROR_INVALID_ID, SlStatus::INVALID_PARAMETER),
    (EzspStatus::ERROR_INVALID_CALL, SlStatus::INVALID_PARAMETER),
    (EzspStatus::ERROR_OUT_OF_MEMORY, SlStatus::NO_MORE_RESOURCE),
];

/// The `sl_status_t` paired with `legacy` in `table`.
fn legacy_to_sl<T: PartialEq + Copy>(table: &[(T, SlStatus)], legacy: T) -> Option<SlStatus> {
    table.iter().find(|(l, _)| *l == legacy).map(|(_, sl)| *sl)
}

/// The first legacy status paired with `sl` in `table`.
fn sl_to_legacy<T: Copy>(table: &[(T, SlStatus)], sl: SlStatus) -> Option<T> {
    table
        .iter()
        .find(|(_, s)| *s == sl)
        .map(|(legacy, _)| *legacy)
}

impl EmberStatus {
    /// The `sl_status_t` that version 14 reports for this status, when there is one.
    pub fn to_sl(self) -> Option<SlStatus> {
        legacy_to_sl(EMBER_TO_SL, self)
    }

    /// The EmberStatus a pre-v14 NCP reports for `sl`, when there is one.
    pub fn from_sl(sl: SlStatus) -> Option<Self> {
        sl_to_legacy(EMBER_TO_SL, sl)
    }
}

impl EzspStatus {
    /// The `sl_status_t` that version 14 reports for this status, when there is one.
    pub fn to_sl(self) -> Option<SlStatus> {
        legacy_to_sl(EZSP_TO_SL, self)
    }

    /// The EzspStatus a pre-v14 NCP reports for `sl`, when there is one.
    pub fn from_sl(sl: SlStatus) -> Option<Self> {
        sl_to_legacy(EZSP_TO_SL, sl)
    }
}

/// A status as it was on the wire, whichever width the negotiated version uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Status {
    /// One-byte stack status (before v14).
    Ember(EmberStatus),
    /// One-byte EZSP-layer status (before v14).
    Ezsp(EzspStatus),
    /// Four-byte `sl_status_t` (v14 and later).
    Sl(SlStatus),
}

impl Status {
    /// True for EmberStatus/EzspStatus `SUCCESS` and `sl_status_t` `OK`.
    pub fn is_success(self) -> bool {
        match self {
            Status::Ember(status) => status == EmberStatus::SUCCESS,
            Status::Ezsp(status) => status == EzspStatus::SUCCESS,
            Status::Sl(status) => status == SlStatus::OK,
        }
    }

    /// The unified view: the `sl_status_t` equivalent, or `None` when no equivalent is known.
    pub fn to_sl(self) -> Option<SlStatus> {
        match self {
            Status::Ember(status) => status.to_sl(),
            Status::Ezsp(status) => status.to_sl(),
            Status::Sl(status) => Some(status),
        }
    }

    /// True when this status means `sl` (comparing through the unified view).
    pub fn means(self, sl: SlStatus) -> bool {
        self.to_sl() == Some(sl)
    }
}

impl From<EmberStatus> for Status {
    fn from(status: EmberStatus) -> Self {
        Status::Ember(status)
    }
}

impl From<EzspStatus> for Status {
    fn from(status: EzspStatus) -> Self {
        Status::Ezsp(status)
    }
}

impl From<SlStatus> for Status {
    fn from(status: SlStatus) -> Self {
        Status::Sl(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_matches_the_v14_vectors() {
        // ezsp_vectors.out: NETWORK_UP/DOWN 0x90/0x91 <-> 0x15/0x16, DELIVERY_FAILED 0x66 <-> 0x0C02.
        for (ember, sl) in [(0x90, 0x15), (0x91, 0x16), (0x66, 0x0C02)] {
            assert_eq!(EmberStatus(ember).to_sl(), Some(SlStatus(sl)));
            assert_eq!(EmberStatus::from_sl(SlStatus(sl)), Some(EmberStatus(ember)));
        }
    }

    #[test]
    fn from_sl_inverts_to_sl_for_canonical_entries() {
        for (ember, sl) in EMBER_TO_SL {
            let back = EmberStatus::from_sl(*sl).unwrap();
            assert_eq!(back.to_sl(), Some(*sl), "{ember:?}");
        }
    }

    #[test]
    fn debug_prints_hex_and_name() {
        assert_eq!(
            format!("{:?}", EmberStatus(0x66)),
            "EmberStatus(0x66 DELIVERY_FAILED)"
        );
        assert_eq!(format!("{:?}", EmberStatus(0x07)), "EmberStatus(0x07)");
        assert_eq!(
            format!("{:?}", SlStatus(0x0C02)),
            "SlStatus(0x00000C02 ZIGBEE_DELIVERY_FAILED)"
        );
    }

    #[test]
    fn unknown_statuses_are_failures_without_equivalent() {
        let odd = Status::Ember(EmberStatus(0x07));
        assert!(!odd.is_success());
        assert_eq!(odd.to_sl(), None);
        assert!(Status::Sl(SlStatus::OK).is_success());
        assert!(Status::Ezsp(EzspStatus::SUCCESS).means(SlStatus::OK));
    }
}
