//! ZCL status codes (ZCL8 general status enumeration; the OTA codes 0x95–0x9A from chapter 11;
//! PROTOCOLS.md §8), as a
//! newtype so that values this crate does not know survive a decode/encode round trip.
//!
//! ```
//! use zigbee_otad::zcl::ZclStatus;
//! assert_eq!(ZclStatus(0x98), ZclStatus::NO_IMAGE_AVAILABLE);
//! assert_eq!(ZclStatus::NO_IMAGE_AVAILABLE.name(), Some("NO_IMAGE_AVAILABLE"));
//! assert_eq!(format!("{:?}", ZclStatus(0x42)), "ZclStatus(0x42)");
//! assert_eq!(ZclStatus::WAIT_FOR_DATA.to_string(), "WAIT_FOR_DATA (0x97)");
//! ```

use crate::wire::wire_enum;

wire_enum! {
    /// A ZCL status code. Names follow ZCL8; zigpy's older names are noted where they differ.
    ZclStatus(u8), names_first {
        /// Operation was successful.
        SUCCESS = 0x00,
        /// Operation was not successful.
        FAILURE = 0x01,
        /// The sender is not authorised (an OTA server may refuse a client with it).
        NOT_AUTHORIZED = 0x7E,
        /// A reserved field, sub-field or bit was not zero.
        RESERVED_FIELD_NOT_ZERO = 0x7F,
        /// The command is missing fields or has fields that are too short.
        MALFORMED_COMMAND = 0x80,
        /// The command is not supported (UNSUP_CLUSTER_COMMAND before ZCL8).
        UNSUP_COMMAND = 0x81,
        /// A general command is not supported (deprecated in ZCL8, use UNSUP_COMMAND).
        UNSUP_GENERAL_COMMAND = 0x82,
        /// A manufacturer-specific cluster command is not supported (deprecated in ZCL8).
        UNSUP_MANUF_CLUSTER_COMMAND = 0x83,
        /// A manufacturer-specific general command is not supported (deprecated in ZCL8).
        UNSUP_MANUF_GENERAL_COMMAND = 0x84,
        /// A field of the command has a wrong value (deprecated in ZCL8, use INVALID_VALUE).
        INVALID_FIELD = 0x85,
        /// The attribute does not exist on the device.
        UNSUPPORTED_ATTRIBUTE = 0x86,
        /// Out of range, or set to a reserved value.
        INVALID_VALUE = 0x87,
        /// Attempt to write a read-only attribute.
        READ_ONLY = 0x88,
        /// Not enough space to store the data.
        INSUFFICIENT_SPACE = 0x89,
        /// An entry with the same key already exists (deprecated in ZCL8).
        DUPLICATE_EXISTS = 0x8A,
        /// The requested information was not found.
        NOT_FOUND = 0x8B,
        /// The attribute cannot be reported.
        UNREPORTABLE_ATTRIBUTE = 0x8C,
        /// The data type is wrong for the attribute.
        INVALID_DATA_TYPE = 0x8D,
        /// The selector for an attribute is wrong.
        INVALID_SELECTOR = 0x8E,
        /// The attribute cannot be read (deprecated in ZCL8).
        WRITE_ONLY = 0x8F,
        /// The values would leave the device in an inconsistent start-up state (deprecated).
        INCONSISTENT_STARTUP_STATE = 0x90,
        /// The attribute is defined out of band (deprecated).
        DEFINED_OUT_OF_BAND = 0x91,
        /// The supplied values are inconsistent (deprecated in ZCL8).
        INCONSISTENT = 0x92,
        /// The credentials are not sufficient (deprecated in ZCL8).
        ACTION_DENIED = 0x93,
        /// The exchange was aborted because it took too long.
        TIMEOUT = 0x94,
        /// OTA: the client or the server aborts the upgrade.
        ABORT = 0x95,
        /// OTA: the image is invalid (for example a failed signature check).
        INVALID_IMAGE = 0x96,
        /// OTA: the server has no data block available yet; the client retries later.
        WAIT_FOR_DATA = 0x97,
        /// OTA: no image is available for this client.
        NO_IMAGE_AVAILABLE = 0x98,
        /// OTA: the client needs more images (multi-image upgrade).
        REQUIRE_MORE_IMAGE = 0x99,
        /// The command was received and is being processed.
        NOTIFICATION_PENDING = 0x9A,
        /// A hardware failure prevented the operation (deprecated in ZCL8).
        HARDWARE_FAILURE = 0xC0,
        /// A software failure prevented the operation (deprecated in ZCL8).
        SOFTWARE_FAILURE = 0xC1,
        /// An error occurred during calibration (deprecated in ZCL8).
        CALIBRATION_ERROR = 0xC2,
        /// The cluster is not supported.
        UNSUPPORTED_CLUSTER = 0xC3,
    }
}

impl ZclStatus {
    /// True for [`ZclStatus::SUCCESS`].
    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }
}

impl Default for ZclStatus {
    fn default() -> Self {
        Self::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn protocols_md_codes_have_their_values() {
        let expected = [
            (ZclStatus::SUCCESS, 0x00),
            (ZclStatus::FAILURE, 0x01),
            (ZclStatus::NOT_AUTHORIZED, 0x7E),
            (ZclStatus::MALFORMED_COMMAND, 0x80),
            (ZclStatus::UNSUP_COMMAND, 0x81),
            (ZclStatus::INVALID_FIELD, 0x85),
            (ZclStatus::INVALID_VALUE, 0x87),
            (ZclStatus::NOT_FOUND, 0x8B),
            (ZclStatus::ABORT, 0x95),
            (ZclStatus::INVALID_IMAGE, 0x96),
            (ZclStatus::WAIT_FOR_DATA, 0x97),
            (ZclStatus::NO_IMAGE_AVAILABLE, 0x98),
            (ZclStatus::REQUIRE_MORE_IMAGE, 0x99),
            (ZclStatus::NOTIFICATION_PENDING, 0x9A),
        ];
        for (status, value) in expected {
            assert_eq!(status.0, value, "{status:?}");
        }
    }

    #[test]
    fn names_are_unique_and_json_carries_them() {
        let mut names: Vec<_> = ZclStatus::KNOWN.iter().filter_map(|s| s.name()).collect();
        assert_eq!(names.len(), ZclStatus::KNOWN.len());
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ZclStatus::KNOWN.len());
        assert_eq!(
            serde_json::to_string(&ZclStatus::ABORT).unwrap(),
            r#"{"value":149,"name":"ABORT"}"#
        );
        assert_eq!(
            serde_json::to_string(&ZclStatus(0x42)).unwrap(),
            r#"{"value":66,"name":null}"#
        );
    }

    proptest! {
        #[test]
        fn every_byte_round_trips(byte in any::<u8>()) {
            let status = ZclStatus::from(byte);
            prop_assert_eq!(u8::from(status), byte);
            let debug = format!("{status:?}");
            let hex = format!("0x{byte:02X}");
            prop_assert!(debug.contains(&hex));
        }
    }
}
