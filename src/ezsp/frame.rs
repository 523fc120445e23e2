//! EZSP frame header (UG100 §3 "EZSP Frame Format"; extended format from EZSP v8).
//!
//! | format | versions | bytes |
//! |---|---|---|
//! | [`FrameFormat::Legacy`] | v4, and every host's first `version` command | `seq, FC, id8` |
//! | [`FrameFormat::Intermediate`] | v5–v7 | `seq, FC, 0xFF, FC_hi, id8` |
//! | [`FrameFormat::Extended`] | v8 and later | `seq, FC_lo, FC_hi, id16 (LE)` |
//!
//! ```
//! use zigbee_otad::ezsp::frame::{FrameControl, FrameFormat, FrameHeader, FrameId};
//! let header = FrameHeader {
//!     sequence: 5,
//!     control: FrameControl::EXTENDED_ASYNC_CALLBACK,
//!     frame_id: FrameId::INCOMING_MESSAGE_HANDLER,
//! };
//! let mut out = Vec::new();
//! header.encode(FrameFormat::Extended, &mut out).unwrap();
//! assert_eq!(out, [0x05, 0x90, 0x01, 0x45, 0x00]);
//! let (decoded, parameters) = FrameHeader::decode(FrameFormat::Extended, &out).unwrap();
//! assert_eq!(decoded, header);
//! assert!(decoded.control.is_async_callback());
//! assert!(parameters.is_empty());
//! ```

use std::fmt;

use super::{DecodeError, EncodeError};
use crate::wire::{PutLe, Reader};

pub use super::command::FrameId;

/// The frame control: in the legacy and v5–7 formats the low byte is the only FC byte
/// (v5–7 carry a second, FC_hi, byte after 0xFF); in the extended format low = FC_lo,
/// high = FC_hi.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrameControl(pub u16);

impl FrameControl {
    /// FC_lo bit 7: set in NCP → host frames (responses and callbacks).
    pub const DIRECTION_RESPONSE: u16 = 0x0080;
    /// FC_lo bits 5–6: network index.
    pub const NETWORK_INDEX_MASK: u16 = 0x0060;
    /// FC_lo bits 0–1 of a command: sleep mode.
    pub const SLEEP_MODE_MASK: u16 = 0x0003;
    /// FC_lo bit 0 of a response: the NCP ran out of memory since the last response.
    pub const OVERFLOW: u16 = 0x0001;
    /// FC_lo bit 1 of a response: the NCP truncated the response.
    pub const TRUNCATED: u16 = 0x0002;
    /// FC_lo bit 2 of a response: a callback is pending on the NCP.
    pub const CALLBACK_PENDING: u16 = 0x0004;
    /// FC_lo bit 3 of a response: this is a synchronous callback.
    pub const SYNC_CALLBACK: u16 = 0x0008;
    /// FC_lo bit 4 of a response: this is an asynchronous callback (UART NCPs).
    pub const ASYNC_CALLBACK: u16 = 0x0010;
    /// FC_hi bits 0–1: frame format version (1 in the extended format).
    pub const FORMAT_VERSION_MASK: u16 = 0x0300;
    /// FC_hi format version 1.
    pub const FORMAT_VERSION_1: u16 = 0x0100;
    /// FC_hi bit 6: padding enabled.
    pub const PADDING_ENABLED: u16 = 0x4000;
    /// FC_hi bit 7: security enabled.
    pub const SECURITY_ENABLED: u16 = 0x8000;

    /// A legacy-format command (`FC = 0x00`).
    pub const LEGACY_COMMAND: Self = Self(0x0000);
    /// A legacy-format response (`FC = 0x80`).
    pub const LEGACY_RESPONSE: Self = Self(0x0080);
    /// An extended-format command (`00 01`).
    pub const EXTENDED_COMMAND: Self = Self(0x0100);
    /// An extended-format response (`80 01`).
    pub const EXTENDED_RESPONSE: Self = Self(0x0180);
    /// An extended-format asynchronous callback (`90 01`).
    pub const EXTENDED_ASYNC_CALLBACK: Self = Self(0x0190);

    /// True for NCP → host frames.
    pub fn is_response(self) -> bool {
        self.0 & Self::DIRECTION_RESPONSE != 0
    }

    /// True when the NCP marked the frame as an asynchronous callback.
    pub fn is_async_callback(self) -> bool {
        self.is_response() && self.0 & Self::ASYNC_CALLBACK != 0
    }

    /// True when the NCP says a callback is waiting.
    pub fn is_callback_pending(self) -> bool {
        self.is_response() && self.0 & Self::CALLBACK_PENDING != 0
    }

    /// True when the NCP reports it truncated the frame.
    pub fn is_truncated(self) -> bool {
        self.is_response() && self.0 & Self::TRUNCATED != 0
    }

    /// True when the NCP reports it ran out of memory.
    pub fn is_overflow(self) -> bool {
        self.is_response() && self.0 & Self::OVERFLOW != 0
    }

    /// The network index (bits 5–6).
    pub fn network_index(self) -> u8 {
        // The mask keeps two bits, so the shifted value always fits.
        ((self.0 & Self::NETWORK_INDEX_MASK) >> 5) as u8
    }

    /// The frame-control bits as `format` puts them on the wire for a command or response.
    pub fn for_format(format: FrameFormat, response: bool, async_callback: bool) -> Self {
        let mut low = 0u16;
        if response {
            low |= Self::DIRECTION_RESPONSE;
            if async_callback {
                low |= Self::ASYNC_CALLBACK;
            }
        }
        match format {
            FrameFormat::Legacy | FrameFormat::Intermediate => Self(low),
            FrameFormat::Extended => Self(low | Self::FORMAT_VERSION_1),
        }
    }
}

impl fmt::Debug for FrameControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrameControl(0x{:04X})", self.0)
    }
}

/// Which of the three header layouts a frame uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FrameFormat {
    /// `seq, FC, id8` (v4; the host's first `version` command in every version).
    Legacy,
    /// `seq, FC, 0xFF, FC_hi, id8` (v5–v7).
    Intermediate,
    /// `seq, FC_lo, FC_hi, id16` (v8 and later).
    Extended,
}

impl FrameFormat {
    /// The format a protocol version uses for everything after negotiation.
    pub fn for_version(version: u8) -> Self {
        match version {
            0..=4 => FrameFormat::Legacy,
            5..=7 => FrameFormat::Intermediate,
            _ => FrameFormat::Extended,
        }
    }

    /// Guesses the format of a received frame from its third byte, as an NCP does with the
    /// host's first frame: 0xFF marks v5–7, a format version of 1 in FC_hi marks the extended
    /// format, anything else (the legacy `version` id is 0x00) is legacy.
    pub fn detect(frame: &[u8]) -> Self {
        match frame.get(2) {
            Some(0xFF) => FrameFormat::Intermediate,
            Some(byte) if byte & 0x03 == 0x01 => FrameFormat::Extended,
            _ => FrameFormat::Legacy,
        }
    }

    /// Header length in bytes.
    pub fn header_len(self) -> usize {
        match self {
            FrameFormat::Legacy => 3,
            FrameFormat::Intermediate | FrameFormat::Extended => 5,
        }
    }
}

/// The header in front of every EZSP frame's parameters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FrameHeader {
    /// Sequence number; a response carries its command's.
    pub sequence: u8,
    /// Frame control (see [`FrameControl`] for the byte layout per format).
    pub control: FrameControl,
    /// Which command, response or callback.
    pub frame_id: FrameId,
}

/// The legacy "extended frame id follows" marker of the v5–7 format.
const INTERMEDIATE_MARKER: u8 = 0xFF;

impl FrameHeader {
    /// Appends the header in `format`. Fails when the frame id or FC_hi does not fit the
    /// one-byte fields of the legacy formats.
    pub fn encode(&self, format: FrameFormat, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let [fc_low, fc_high] = self.control.0.to_le_bytes();
        let narrow_id = || {
            u8::try_from(self.frame_id.0).map_err(|_| EncodeError::NotRepresentable {
                context: "EZSP frame header",
                field: "frameId",
                value: u64::from(self.frame_id.0),
                version: 7,
                reason: "legacy and v5-7 headers carry a one-byte frame id",
            })
        };
        match format {
            FrameFormat::Legacy => {
                let id = narrow_id()?;
                if fc_high != 0 {
                    return Err(EncodeError::NotRepresentable {
                        context: "EZSP frame header",
                        field: "frameControl",
                        value: u64::from(self.control.0),
                        version: 4,
                        reason: "the legacy header has a one-byte frame control",
                    });
                }
                out.extend_from_slice(&[self.sequence, fc_low, id]);
            }
            FrameFormat::Intermediate => {
                let id = narrow_id()?;
                out.extend_from_slice(&[self.sequence, fc_low, INTERMEDIATE_MARKER, fc_high, id]);
            }
            FrameFormat::Extended => {
                out.extend_from_slice(&[self.sequence, fc_low, fc_high]);
                out.put_u16_le(self.frame_id.0);
            }
        }
        Ok(())
    }

    /// Header length in `format`.
    pub fn encoded_len(format: FrameFormat) -> usize {
        format.header_len()
    }

    /// Splits `frame` into its header and its parameters.
    pub fn decode(format: FrameFormat, frame: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        let context = "EZSP frame header";
        let mut r = Reader::new(frame);
        let truncated = |source| DecodeError::Truncated { context, source };
        let sequence = r.u8("sequence").map_err(truncated)?;
        let header = match format {
            FrameFormat::Legacy => {
                let control = FrameControl(u16::from(r.u8("frameControl").map_err(truncated)?));
                let frame_id = FrameId(u16::from(r.u8("frameId").map_err(truncated)?));
                FrameHeader {
                    sequence,
                    control,
                    frame_id,
                }
            }
            FrameFormat::Intermediate => {
                let fc_low = r.u8("frameControl").map_err(truncated)?;
                let marker = r.u8("legacyFrameId").map_err(truncated)?;
                if marker != INTERMEDIATE_MARKER {
                    return Err(DecodeError::InvalidField {
                        context,
                        field: "legacyFrameId",
                        offset: 2,
                        value: u64::from(marker),
                        reason: "the v5-7 header has 0xFF here",
                    });
                }
                let fc_high = r.u8("frameControlHigh").map_err(truncated)?;
                let frame_id = FrameId(u16::from(r.u8("frameId").map_err(truncated)?));
                FrameHeader {
                    sequence,
                    control: FrameControl(u16::from_le_bytes([fc_low, fc_high])),
                    frame_id,
                }
            }
            FrameFormat::Extended => {
                let fc_low = r.u8("frameControlLow").map_err(truncated)?;
                let fc_high = r.u8("frameControlHigh").map_err(truncated)?;
                let control = FrameControl(u16::from_le_bytes([fc_low, fc_high]));
                if control.0 & FrameControl::FORMAT_VERSION_MASK != FrameControl::FORMAT_VERSION_1 {
                    return Err(DecodeError::InvalidField {
                        context,
                        field: "frameControlHigh",
                        offset: 2,
                        value: u64::from(fc_high),
                        reason: "the extended header's frame format version must be 1",
                    });
                }
                if control.0 & FrameControl::SECURITY_ENABLED != 0 {
                    return Err(DecodeError::InvalidField {
                        context,
                        field: "frameControlHigh",
                        offset: 2,
                        value: u64::from(fc_high),
                        reason: "EZSP security is not supported",
                    });
                }
                let frame_id = FrameId(r.u16("frameId").map_err(truncated)?);
                FrameHeader {
                    sequence,
                    control,
                    frame_id,
                }
            }
        };
        Ok((header, r.rest()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(format: FrameFormat, header: FrameHeader, expected: &[u8]) {
        let mut out = Vec::new();
        header.encode(format, &mut out).unwrap();
        assert_eq!(out, expected);
        let (decoded, rest) = FrameHeader::decode(format, &out).unwrap();
        assert_eq!(decoded, header);
        assert!(rest.is_empty());
    }

    #[test]
    fn the_three_formats() {
        let version = FrameHeader {
            sequence: 0,
            control: FrameControl::LEGACY_COMMAND,
            frame_id: FrameId::VERSION,
        };
        round_trip(FrameFormat::Legacy, version, &[0x00, 0x00, 0x00]);
        round_trip(
            FrameFormat::Intermediate,
            version,
            &[0x00, 0x00, 0xFF, 0x00, 0x00],
        );
        let nop = FrameHeader {
            sequence: 0x20,
            control: FrameControl::EXTENDED_COMMAND,
            frame_id: FrameId::NOP,
        };
        // PROTOCOLS.md §7: v8 nop = 20 00 01 05 00.
        round_trip(FrameFormat::Extended, nop, &[0x20, 0x00, 0x01, 0x05, 0x00]);
    }

    #[test]
    fn detect_tells_formats_apart() {
        assert_eq!(FrameFormat::detect(&[0, 0, 0, 4]), FrameFormat::Legacy);
        assert_eq!(
            FrameFormat::detect(&[1, 0, 1, 0, 0, 13]),
            FrameFormat::Extended
        );
        assert_eq!(
            FrameFormat::detect(&[1, 0, 0xFF, 0, 0]),
            FrameFormat::Intermediate
        );
        assert_eq!(FrameFormat::detect(&[1]), FrameFormat::Legacy);
    }

    #[test]
    fn wide_ids_do_not_fit_legacy_headers() {
        let header = FrameHeader {
            sequence: 1,
            control: FrameControl::LEGACY_COMMAND,
            frame_id: FrameId(0x0116),
        };
        assert!(header.encode(FrameFormat::Legacy, &mut Vec::new()).is_err());
        assert!(
            header
                .encode(FrameFormat::Intermediate, &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn header_errors_name_field_and_offset() {
        let err = FrameHeader::decode(FrameFormat::Extended, &[1, 0x80, 0x01, 0x45]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EZSP frame header: frameId at offset 3 needs 2 bytes, only 1 left"
        );
        let err =
            FrameHeader::decode(FrameFormat::Extended, &[1, 0x80, 0x02, 0x45, 0]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::InvalidField {
                field: "frameControlHigh",
                offset: 2,
                ..
            }
        ));
        let err =
            FrameHeader::decode(FrameFormat::Intermediate, &[1, 0x80, 0x00, 0, 0]).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::InvalidField {
                field: "legacyFrameId",
                ..
            }
        ));
    }

    #[test]
    fn control_bits() {
        let callback = FrameControl(0x0190);
        assert!(callback.is_response() && callback.is_async_callback());
        assert!(!FrameControl::EXTENDED_RESPONSE.is_async_callback());
        // A command never counts as a callback even with bit 4 set (bit 4 is not defined there).
        assert!(!FrameControl(0x0110).is_async_callback());
        assert_eq!(FrameControl(0x01E0).network_index(), 3);
        assert_eq!(
            FrameControl::for_format(FrameFormat::Extended, true, true),
            callback
        );
        assert_eq!(
            FrameControl::for_format(FrameFormat::Legacy, true, false),
            FrameControl(0x80)
        );
        assert_eq!(
            format!("{:?}", FrameId::SEND_UNICAST),
            "FrameId(0x0034 SEND_UNICAST)"
        );
        assert_eq!(format!("{:?}", FrameId(0x7FF0)), "FrameId(0x7FF0)");
    }
}
