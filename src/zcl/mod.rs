//! ZCL frames and the OTA Upgrade cluster 0x0019 (ZCL8 §2.4 general frame format, §2.5.12
//! Default Response, chapter 11 OTA Upgrade cluster commands; PROTOCOLS.md §8).
//!
//! Layout follows the data flow:
//! - [`header`]: the ZCL frame header ([`ZclHeader`]), the global [`DefaultResponse`] and the
//!   helpers that build reply headers;
//! - [`status`]: [`ZclStatus`], the status codes as a newtype with named constants;
//! - [`basic`]: the Basic cluster identity attributes and the Read Attributes exchange;
//! - [`ota`]: every OTA cluster command 0x00–0x09 and [`ota::OtaFrame`], a whole frame;
//! - `describe`: `Display` for logs and the CLI, and the manufacturer names shown there.
//!
//! Decoders are bounds-checked and never panic. A malformed request maps to the status the
//! server answers with through `ZclStatus::from(&DecodeError)`.
//!
//! **Trailing bytes.** ZCL lets newer revisions of a cluster append fields to a command, and
//! a receiver built for an older revision ignores the octets it does not understand (zigpy,
//! too, logs and ignores data left after a command). So command decoders accept bytes after
//! the last field they know, and [`ota::OtaFrame`] keeps them in `trailing` so that a frame
//! re-encodes byte-for-byte. A field that is *started* but
//! cut short is an error (MALFORMED_COMMAND), with one deliberate exception: the Image Block
//! Request whose field control announces a minimum block period but omits its two bytes (seen
//! in the wild; zigbee-herdsman tolerates it too).
//!
//! ```
//! use zigbee_otad::zcl::ota::{ImageBlockRequest, OtaCommand, OtaFrame};
//! use zigbee_otad::zcl::{Direction, ZclHeader, ZclStatus};
//!
//! // An Image Block Request captured from an IKEA bulb: offset 80, up to 63 bytes.
//! let bytes = [
//!     0x01, 0x08, 0x03, 0x00, 0x7C, 0x11, 0x04, 0x42, 0x23, 0x96, 0x02, 0x20, 0x50, 0x00,
//!     0x00, 0x00, 0x3F,
//! ];
//! let frame = OtaFrame::decode(&bytes).unwrap();
//! assert_eq!(frame.header.tsn, 8);
//! assert_eq!(frame.header.direction, Direction::CLIENT_TO_SERVER);
//! let OtaCommand::ImageBlockRequest(request) = &frame.command else { panic!() };
//! assert_eq!(request.file_offset, 80);
//! assert_eq!(request.maximum_data_size, 63);
//!
//! // Re-encoding gives back the same bytes.
//! let mut out = Vec::new();
//! frame.encode(&mut out);
//! assert_eq!(out, bytes);
//!
//! // A truncated request maps to the status the server answers with.
//! let err = ImageBlockRequest::decode(&bytes[3..10]).unwrap_err();
//! assert_eq!(ZclStatus::from(&err), ZclStatus::MALFORMED_COMMAND);
//! # let _ = ZclHeader::decode(&bytes).unwrap();
//! ```

pub mod basic;
mod describe;
pub mod header;
pub mod lumi;
pub mod ota;
pub mod status;

use thiserror::Error;

use crate::wire::Truncated;

pub use describe::manufacturer_name;
pub use header::{
    CommandId, DefaultResponse, Direction, FrameType, GeneralCommandId, ZclHeader, default_response,
};
pub use status::ZclStatus;

pub use crate::zigbee::{Ieee, ParseIeeeError};

/// Why bytes could not be decoded as a ZCL frame or command. Offsets count from the start of
/// the input given to the decoder (the whole frame for [`ZclHeader::decode`] and
/// [`ota::OtaFrame::decode`], the payload for the per-command `decode`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field runs past the end of the input.
    #[error("truncated: {0}")]
    Truncated(Truncated),
    /// A field holds a value the spec reserves or forbids.
    #[error("invalid {field} 0x{value:X} at offset {offset}: {reason}")]
    InvalidValue {
        /// The spec's name of the field.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// The value found.
        value: u32,
        /// What the spec allows.
        reason: &'static str,
    },
    /// The frame is well-formed but carries a command the OTA server does not handle (an
    /// unknown id, a command for the other direction, a manufacturer-specific command).
    #[error(
        "unsupported command 0x{:02X} ({frame_type:?}, {direction:?}{})",
        command_id.0,
        if *manufacturer_specific { ", manufacturer-specific" } else { "" }
    )]
    UnsupportedCommand {
        /// Global or cluster-specific.
        frame_type: FrameType,
        /// The direction bit of the frame.
        direction: Direction,
        /// The command id.
        command_id: CommandId,
        /// Whether the frame carried a manufacturer code.
        manufacturer_specific: bool,
    },
}

impl DecodeError {
    /// Shifts the offsets by `base`, for errors found in a payload that starts `base` bytes
    /// into the frame.
    pub fn offset_by(self, base: usize) -> Self {
        match self {
            DecodeError::Truncated(t) => DecodeError::Truncated(Truncated {
                offset: t.offset.saturating_add(base),
                ..t
            }),
            DecodeError::InvalidValue {
                field,
                offset,
                value,
                reason,
            } => DecodeError::InvalidValue {
                field,
                offset: offset.saturating_add(base),
                value,
                reason,
            },
            other => other,
        }
    }
}

impl From<Truncated> for DecodeError {
    fn from(value: Truncated) -> Self {
        DecodeError::Truncated(value)
    }
}

/// The status a server answers a request with when it fails to decode (ZCL8 §2.5.12: the
/// Default Response carries it). Truncation is MALFORMED_COMMAND; a reserved or forbidden value
/// is INVALID_VALUE (ZCL8 deprecates INVALID_FIELD in its favour); a command the server does
/// not handle is UNSUP_COMMAND (ZCL8 folded the older 0x82–0x84 codes into 0x81).
impl From<&DecodeError> for ZclStatus {
    fn from(error: &DecodeError) -> Self {
        match error {
            DecodeError::Truncated(_) => ZclStatus::MALFORMED_COMMAND,
            DecodeError::InvalidValue { .. } => ZclStatus::INVALID_VALUE,
            DecodeError::UnsupportedCommand { .. } => ZclStatus::UNSUP_COMMAND,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ieee_text_round_trips() {
        let ieee = super::Ieee(0x000D_6F00_0019_8B36);
        assert_eq!(ieee.to_string().parse::<super::Ieee>(), Ok(ieee));
        assert_eq!("000d6f0000198b36".parse::<super::Ieee>(), Ok(ieee));
        assert!("00:0d:6f".parse::<super::Ieee>().is_err());
        assert!("zz:0d:6f:00:00:19:8b:36".parse::<super::Ieee>().is_err());
    }

    use super::*;

    #[test]
    fn ieee_prints_like_zigpy() {
        let ieee = Ieee(0x000D_6F00_0019_8B36);
        assert_eq!(ieee.to_string(), "00:0d:6f:00:00:19:8b:36");
        assert_eq!(format!("{ieee:?}"), "Ieee(00:0d:6f:00:00:19:8b:36)");
        assert_eq!(
            serde_json::to_string(&ieee).unwrap(),
            "\"00:0d:6f:00:00:19:8b:36\""
        );
    }

    #[test]
    fn errors_map_to_statuses_and_shift_offsets() {
        let truncated = DecodeError::Truncated(Truncated {
            field: "file_offset",
            offset: 9,
            needed: 4,
            available: 1,
        });
        assert_eq!(ZclStatus::from(&truncated), ZclStatus::MALFORMED_COMMAND);
        let shifted = truncated.offset_by(3);
        assert_eq!(
            shifted.to_string(),
            "truncated: file_offset at offset 12 needs 4 bytes, only 1 left"
        );
        let invalid = DecodeError::InvalidValue {
            field: "payload_type",
            offset: 0,
            value: 7,
            reason: "payload types 0-3 are defined",
        };
        assert_eq!(ZclStatus::from(&invalid), ZclStatus::INVALID_VALUE);
        let unsupported = DecodeError::UnsupportedCommand {
            frame_type: FrameType::CLUSTER_SPECIFIC,
            direction: Direction::CLIENT_TO_SERVER,
            command_id: CommandId(0x0A),
            manufacturer_specific: false,
        };
        assert_eq!(ZclStatus::from(&unsupported), ZclStatus::UNSUP_COMMAND);
        assert_eq!(ZclStatus::UNSUP_COMMAND.0, 0x81);
    }
}
