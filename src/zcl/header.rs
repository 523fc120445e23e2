//! The ZCL frame header (ZCL8 §2.4, general frame format) and the global Default Response
//! command (ZCL8 §2.5.12).
//!
//! `frame_control(1) [manufacturer_code(2) if b2] tsn(1) command_id(1)`; frame control bits:
//! b0–1 frame type, b2 manufacturer-specific, b3 direction (1 = server to client), b4 disable
//! default response, b5–7 reserved (kept as found so real frames re-encode byte-for-byte).
//!
//! ```
//! use zigbee_otad::zcl::{Direction, FrameType, ZclHeader};
//! let (header, payload) = ZclHeader::decode(&[0x19, 0x63, 0x00, 0x00, 0x64]).unwrap();
//! assert_eq!(header.frame_type, FrameType::CLUSTER_SPECIFIC);
//! assert_eq!(header.direction, Direction::SERVER_TO_CLIENT);
//! assert!(header.disable_default_response);
//! assert_eq!((header.tsn, header.command_id.0), (0x63, 0x00));
//! assert_eq!(payload, [0x00, 0x64]);
//! let mut out = Vec::new();
//! header.encode(&mut out);
//! assert_eq!(out, [0x19, 0x63, 0x00]);
//! ```

use serde::Serialize;
use std::fmt;

use super::{DecodeError, ZclStatus};
use crate::wire::wire_enum;
use nom::Parser;
use nom::combinator::cond;

use crate::wire::PutLe;
use crate::wire::fields;

wire_enum! {
    /// Frame control bits 0–1. The reserved values 2 and 3 are kept, not rejected.
    FrameType(u8), names_first {
        /// A global (profile-wide) command such as Default Response.
        GLOBAL = 0b00,
        /// A command specific to the cluster (all OTA commands).
        CLUSTER_SPECIFIC = 0b01,
    }
}

wire_enum! {
    /// Frame control bit 3: which side of the cluster sent the frame.
    Direction(u8), names_first {
        /// From the client side (for OTA: the device being upgraded).
        CLIENT_TO_SERVER = 0,
        /// From the server side (for OTA: this daemon).
        SERVER_TO_CLIENT = 1,
    }
}

impl Direction {
    /// The other direction, for a reply.
    pub fn flipped(self) -> Self {
        if self == Self::SERVER_TO_CLIENT {
            Self::CLIENT_TO_SERVER
        } else {
            Self::SERVER_TO_CLIENT
        }
    }
}

wire_enum! {
    /// Global (profile-wide) command ids (ZCL8 §2.5).
    GeneralCommandId(u8), names_first {
        /// Read Attributes.
        READ_ATTRIBUTES = 0x00,
        /// Read Attributes Response.
        READ_ATTRIBUTES_RESPONSE = 0x01,
        /// Write Attributes.
        WRITE_ATTRIBUTES = 0x02,
        /// Write Attributes Undivided.
        WRITE_ATTRIBUTES_UNDIVIDED = 0x03,
        /// Write Attributes Response.
        WRITE_ATTRIBUTES_RESPONSE = 0x04,
        /// Write Attributes No Response.
        WRITE_ATTRIBUTES_NO_RESPONSE = 0x05,
        /// Configure Reporting.
        CONFIGURE_REPORTING = 0x06,
        /// Configure Reporting Response.
        CONFIGURE_REPORTING_RESPONSE = 0x07,
        /// Read Reporting Configuration.
        READ_REPORTING_CONFIGURATION = 0x08,
        /// Read Reporting Configuration Response.
        READ_REPORTING_CONFIGURATION_RESPONSE = 0x09,
        /// Report Attributes.
        REPORT_ATTRIBUTES = 0x0A,
        /// Default Response.
        DEFAULT_RESPONSE = 0x0B,
        /// Discover Attributes.
        DISCOVER_ATTRIBUTES = 0x0C,
        /// Discover Attributes Response.
        DISCOVER_ATTRIBUTES_RESPONSE = 0x0D,
        /// Read Attributes Structured.
        READ_ATTRIBUTES_STRUCTURED = 0x0E,
        /// Write Attributes Structured.
        WRITE_ATTRIBUTES_STRUCTURED = 0x0F,
        /// Write Attributes Structured Response.
        WRITE_ATTRIBUTES_STRUCTURED_RESPONSE = 0x10,
        /// Discover Commands Received.
        DISCOVER_COMMANDS_RECEIVED = 0x11,
        /// Discover Commands Received Response.
        DISCOVER_COMMANDS_RECEIVED_RESPONSE = 0x12,
        /// Discover Commands Generated.
        DISCOVER_COMMANDS_GENERATED = 0x13,
        /// Discover Commands Generated Response.
        DISCOVER_COMMANDS_GENERATED_RESPONSE = 0x14,
        /// Discover Attributes Extended.
        DISCOVER_ATTRIBUTES_EXTENDED = 0x15,
        /// Discover Attributes Extended Response.
        DISCOVER_ATTRIBUTES_EXTENDED_RESPONSE = 0x16,
    }
}

/// A raw command id. Its meaning depends on the frame type (a [`GeneralCommandId`] for global
/// frames, a cluster's own ids such as [`super::ota::OtaCommandId`] otherwise).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CommandId(pub u8);

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandId(0x{:02X})", self.0)
    }
}

impl From<u8> for CommandId {
    fn from(value: u8) -> Self {
        Self(value)
    }
}

impl From<GeneralCommandId> for CommandId {
    fn from(value: GeneralCommandId) -> Self {
        Self(value.0)
    }
}

const FRAME_TYPE_MASK: u8 = 0b0000_0011;
const MANUFACTURER_SPECIFIC_BIT: u8 = 0b0000_0100;
const DIRECTION_BIT: u8 = 0b0000_1000;
const DISABLE_DEFAULT_RESPONSE_BIT: u8 = 0b0001_0000;
const RESERVED_SHIFT: u32 = 5;

/// The ZCL frame header (ZCL8 §2.4, general frame format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ZclHeader {
    /// Frame control bits 0–1.
    pub frame_type: FrameType,
    /// The manufacturer code, present when the frame is manufacturer-specific (bit 2).
    pub manufacturer_code: Option<u16>,
    /// Frame control bit 3.
    pub direction: Direction,
    /// Frame control bit 4: the sender wants no Default Response on success.
    pub disable_default_response: bool,
    /// Frame control bits 5–7, shifted down (0–7). Zero in frames this crate builds.
    pub reserved_bits: u8,
    /// The transaction sequence number; a response repeats the request's.
    pub tsn: u8,
    /// The command id (global or cluster-specific according to `frame_type`).
    pub command_id: CommandId,
}

impl ZclHeader {
    /// Bytes of a header without a manufacturer code.
    pub const MIN_LEN: usize = 3;

    /// A cluster-specific header for a command this server sends on its own initiative (such
    /// as Image Notify): server to client, Default Response disabled as zigpy and Silicon Labs
    /// do, no manufacturer code.
    pub fn server_command(tsn: u8, command_id: impl Into<CommandId>) -> Self {
        ZclHeader {
            frame_type: FrameType::CLUSTER_SPECIFIC,
            manufacturer_code: None,
            direction: Direction::SERVER_TO_CLIENT,
            disable_default_response: true,
            reserved_bits: 0,
            tsn,
            command_id: command_id.into(),
        }
    }

    /// The header of a reply to `self`: the same TSN, the direction flipped, Default Response
    /// disabled (zigpy's `Cluster.reply` and Silicon Labs both set it on responses), and the
    /// request's manufacturer code echoed when it had one (ZCL8 §2.5.12 asks that of the
    /// Default Response, and Silicon Labs' stack does it; zigpy takes the code from the
    /// command's definition instead, which for the standard OTA commands is none).
    pub fn reply(&self, frame_type: FrameType, command_id: impl Into<CommandId>) -> Self {
        ZclHeader {
            frame_type,
            manufacturer_code: self.manufacturer_code,
            direction: self.direction.flipped(),
            disable_default_response: true,
            reserved_bits: 0,
            tsn: self.tsn,
            command_id: command_id.into(),
        }
    }

    /// True for a global Default Response (which never gets a Default Response itself).
    pub fn is_default_response(&self) -> bool {
        self.frame_type == FrameType::GLOBAL
            && self.command_id == CommandId::from(GeneralCommandId::DEFAULT_RESPONSE)
    }

    /// The frame control byte.
    pub fn frame_control(&self) -> u8 {
        let mut fc = self.frame_type.0 & FRAME_TYPE_MASK;
        if self.manufacturer_code.is_some() {
            fc |= MANUFACTURER_SPECIFIC_BIT;
        }
        if self.direction == Direction::SERVER_TO_CLIENT {
            fc |= DIRECTION_BIT;
        }
        if self.disable_default_response {
            fc |= DISABLE_DEFAULT_RESPONSE_BIT;
        }
        fc | ((self.reserved_bits & 0b111) << RESERVED_SHIFT)
    }

    /// Decodes the header and returns it with the payload that follows.
    pub fn decode(bytes: &[u8]) -> Result<(ZclHeader, &[u8]), DecodeError> {
        let ((fc, manufacturer_code, tsn, command_id), payload) = fields::finish(bytes, |input| {
            let (input, fc) = fields::u8("frame_control")(input)?;
            let (input, manufacturer_code) = cond(
                fc & MANUFACTURER_SPECIFIC_BIT != 0,
                fields::u16("manufacturer_code"),
            )
            .parse_complete(input)?;
            let (input, (tsn, command_id)) = (
                fields::u8("transaction_sequence_number"),
                fields::u8("command_id"),
            )
                .parse_complete(input)?;
            Ok((input, (fc, manufacturer_code, tsn, command_id)))
        })?;
        let command_id = CommandId(command_id);
        let header = ZclHeader {
            frame_type: FrameType(fc & FRAME_TYPE_MASK),
            manufacturer_code,
            direction: if fc & DIRECTION_BIT != 0 {
                Direction::SERVER_TO_CLIENT
            } else {
                Direction::CLIENT_TO_SERVER
            },
            disable_default_response: fc & DISABLE_DEFAULT_RESPONSE_BIT != 0,
            reserved_bits: fc >> RESERVED_SHIFT,
            tsn,
            command_id,
        };
        Ok((header, payload))
    }

    /// Appends the header. Only the low bits of `frame_type` (2), `direction` (1) and
    /// `reserved_bits` (3) are written.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.frame_control());
        if let Some(code) = self.manufacturer_code {
            out.put_u16_le(code);
        }
        out.put_u8_le(self.tsn);
        out.put_u8_le(self.command_id.0);
    }

    /// Bytes [`encode`](Self::encode) appends: 3, or 5 with a manufacturer code.
    pub fn encoded_len(&self) -> usize {
        if self.manufacturer_code.is_some() {
            Self::MIN_LEN + 2
        } else {
            Self::MIN_LEN
        }
    }
}

/// The global Default Response (ZCL8 §2.5.12): the command it answers and a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DefaultResponse {
    /// The id of the command being answered.
    pub command_id: CommandId,
    /// The outcome.
    pub status: ZclStatus,
}

impl DefaultResponse {
    /// Payload bytes.
    pub const ENCODED_LEN: usize = 2;

    /// Decodes the payload (after the ZCL header). Trailing bytes are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let ((command_id, status), _trailing) =
            fields::finish(payload, (fields::u8("command_id"), fields::u8("status")))?;
        Ok(DefaultResponse {
            command_id: CommandId(command_id),
            status: ZclStatus(status),
        })
    }

    /// Appends the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8_le(self.command_id.0);
        out.put_u8_le(self.status.0);
    }

    /// Payload bytes: always 2.
    pub fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

/// The Default Response a receiver owes for `request` with outcome `status`, or `None` when
/// none is due: ZCL8 §2.5.12 sends one on error always, on success only when the request
/// did not disable it, and never in answer to a Default Response. (Broadcast requests get none
/// either; the header does not know the addressing, so the caller checks that.) Send it only
/// when the command produced no other response.
pub fn default_response(
    request: &ZclHeader,
    status: ZclStatus,
) -> Option<(ZclHeader, DefaultResponse)> {
    if request.is_default_response() || (status.is_success() && request.disable_default_response) {
        return None;
    }
    let header = request.reply(FrameType::GLOBAL, GeneralCommandId::DEFAULT_RESPONSE);
    Some((
        header,
        DefaultResponse {
            command_id: request.command_id,
            status,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn manufacturer_specific_header() {
        let bytes = [0x05, 0x7C, 0x11, 0x42, 0x0A, 0xEE];
        let (header, payload) = ZclHeader::decode(&bytes).unwrap();
        assert_eq!(header.manufacturer_code, Some(0x117C));
        assert_eq!(header.frame_type, FrameType::CLUSTER_SPECIFIC);
        assert_eq!(header.direction, Direction::CLIENT_TO_SERVER);
        assert!(!header.disable_default_response);
        assert_eq!(header.tsn, 0x42);
        assert_eq!(header.command_id, CommandId(0x0A));
        assert_eq!(payload, [0xEE]);
        assert_eq!(header.encoded_len(), 5);
    }

    #[test]
    fn reserved_bits_and_frame_type_survive() {
        let bytes = [0xE3, 0x01, 0x02];
        let (header, _) = ZclHeader::decode(&bytes).unwrap();
        assert_eq!(header.reserved_bits, 0b111);
        assert_eq!(header.frame_type, FrameType(3));
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn truncated_headers_name_the_field() {
        let err = ZclHeader::decode(&[0x04, 0x7C]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "truncated: manufacturer_code at offset 1 needs 2 bytes, only 1 left"
        );
        let err = ZclHeader::decode(&[0x01, 0x02]).unwrap_err();
        assert!(err.to_string().contains("command_id at offset 2"), "{err}");
        assert!(ZclHeader::decode(&[]).is_err());
    }

    #[test]
    fn reply_flips_direction_keeps_tsn_and_echoes_manufacturer() {
        let (request, _) = ZclHeader::decode(&[0x01, 0x87, 0x01]).unwrap();
        let reply = request.reply(FrameType::CLUSTER_SPECIFIC, CommandId(0x02));
        let mut out = Vec::new();
        reply.encode(&mut out);
        assert_eq!(out, [0x19, 0x87, 0x02]);

        let (request, _) = ZclHeader::decode(&[0x05, 0x34, 0x12, 0x09, 0x0A]).unwrap();
        let (header, response) = default_response(&request, ZclStatus::UNSUP_COMMAND).unwrap();
        let mut out = Vec::new();
        header.encode(&mut out);
        response.encode(&mut out);
        assert_eq!(out, [0x1C, 0x34, 0x12, 0x09, 0x0B, 0x0A, 0x81]);
    }

    #[test]
    fn default_response_rules() {
        let (ddr_request, _) = ZclHeader::decode(&[0x11, 0x01, 0x06]).unwrap();
        assert!(default_response(&ddr_request, ZclStatus::SUCCESS).is_none());
        assert!(default_response(&ddr_request, ZclStatus::MALFORMED_COMMAND).is_some());
        let (request, _) = ZclHeader::decode(&[0x01, 0x01, 0x06]).unwrap();
        let (_, response) = default_response(&request, ZclStatus::SUCCESS).unwrap();
        assert_eq!(response.command_id, CommandId(0x06));
        let (default_rsp, _) = ZclHeader::decode(&[0x08, 0x01, 0x0B]).unwrap();
        assert!(default_response(&default_rsp, ZclStatus::FAILURE).is_none());
    }

    #[test]
    fn default_response_payload() {
        let response = DefaultResponse::decode(&[0x05, 0x95]).unwrap();
        assert_eq!(response.command_id, CommandId(0x05));
        assert_eq!(response.status, ZclStatus::ABORT);
        assert!(DefaultResponse::decode(&[0x05]).is_err());
    }

    proptest! {
        #[test]
        fn header_round_trips(
            frame_type in 0u8..4,
            manufacturer_code in proptest::option::of(any::<u16>()),
            direction in 0u8..2,
            disable_default_response in any::<bool>(),
            reserved_bits in 0u8..8,
            tsn in any::<u8>(),
            command_id in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let header = ZclHeader {
                frame_type: FrameType(frame_type),
                manufacturer_code,
                direction: Direction(direction),
                disable_default_response,
                reserved_bits,
                tsn,
                command_id: CommandId(command_id),
            };
            let mut out = Vec::new();
            header.encode(&mut out);
            prop_assert_eq!(out.len(), header.encoded_len());
            out.extend_from_slice(&payload);
            let (decoded, rest) = ZclHeader::decode(&out).unwrap();
            prop_assert_eq!(decoded, header);
            prop_assert_eq!(rest, &payload[..]);
        }

        #[test]
        fn decode_never_panics_and_reencodes(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Ok((header, rest)) = ZclHeader::decode(&bytes) {
                let mut out = Vec::new();
                header.encode(&mut out);
                out.extend_from_slice(rest);
                prop_assert_eq!(out, bytes);
            }
        }
    }
}
