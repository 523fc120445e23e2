//! What the proxy reads in the EZSP frames it passes on (UG100 §3 "EZSP Frame Format" and the
//! `sendUnicast`, `sendBroadcast`, `messageSentHandler` parameter layouts; v14 layouts per the
//! SiSDK EZSP reference), and the few bytes it rewrites: the sequence number (byte 0) and a
//! send's message tag. Everything else passes through as it came.
//!
//! Frames are hostile input from both sides: [`FrameView::parse`] checks every length before
//! it reads, and a frame it cannot read is passed on untouched (the proxy never invents a
//! meaning for bytes it does not understand).
//!
//! ```
//! use zigbee_otad::ezsp::EzspVersion;
//! use zigbee_otad::ezsp::frame::FrameId;
//! use zigbee_otad::proxy::frames::{FrameView, Shape};
//! // The legacy `version` command every host sends first, then an extended `nop`.
//! let version = FrameView::parse(&[0x00, 0x00, 0x00, 0x0D]).unwrap();
//! assert_eq!(version.shape, Shape::LegacyVersion);
//! let nop = FrameView::parse(&[0x07, 0x00, 0x01, 0x05, 0x00]).unwrap();
//! assert_eq!((nop.sequence, nop.frame_id, nop.is_response()), (7, FrameId::NOP, false));
//! ```

use crate::ezsp::EzspVersion;
use crate::ezsp::frame::{FrameControl, FrameFormat, FrameHeader, FrameId};

/// Length of the extended header (`seq, FC_lo, FC_hi, id16`).
pub const EXTENDED_HEADER_LEN: usize = 5;
/// Bytes of an `EmberApsFrame` (profile, cluster, endpoints, options, group, sequence).
const APS_FRAME_LEN: usize = 11;

/// Which header layout a frame has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The legacy-format `version` command or response (`seq, FC, 0x00, …`), which every host
    /// sends first whatever version it speaks.
    LegacyVersion,
    /// The extended format (v8 and later).
    Extended,
}

/// Why a frame cannot be read as EZSP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameViewError {
    /// Shorter than its header.
    #[error("EZSP frame of {len} bytes is shorter than its {needed}-byte header")]
    Short {
        /// The frame's length.
        len: usize,
        /// The header's length.
        needed: usize,
    },
    /// A header format the proxy does not speak (v4–v7 hosts).
    #[error("EZSP frame in the {0:?} format: the proxy speaks EZSP v8 and later")]
    Unsupported(FrameFormat),
}

/// The header of one frame, read without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameView {
    /// Byte 0.
    pub sequence: u8,
    /// The frame control (one byte in the legacy format).
    pub control: FrameControl,
    /// The frame id.
    pub frame_id: FrameId,
    /// The header layout.
    pub shape: Shape,
}

impl FrameView {
    /// Reads the header of `frame`.
    pub fn parse(frame: &[u8]) -> Result<Self, FrameViewError> {
        let format = FrameFormat::detect(frame);
        let shape = match format {
            FrameFormat::Extended => Shape::Extended,
            FrameFormat::Legacy if frame.get(2) == Some(&0x00) => Shape::LegacyVersion,
            other => return Err(FrameViewError::Unsupported(other)),
        };
        let needed = format.header_len();
        let (header, _) =
            FrameHeader::decode(format, frame).map_err(|_| FrameViewError::Short {
                len: frame.len(),
                needed,
            })?;
        Ok(FrameView {
            sequence: header.sequence,
            control: header.control,
            frame_id: header.frame_id,
            shape,
        })
    }

    /// True for NCP → host frames.
    pub fn is_response(&self) -> bool {
        self.control.is_response()
    }

    /// True for an NCP → host frame that is a callback, not the answer to a command.
    pub fn is_callback(&self) -> bool {
        self.is_response()
            && self.shape == Shape::Extended
            && (self.frame_id.is_callback() || self.control.is_async_callback())
    }

    /// The parameters after the header.
    pub fn parameters<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let start = match self.shape {
            Shape::LegacyVersion => FrameFormat::Legacy.header_len(),
            Shape::Extended => EXTENDED_HEADER_LEN,
        };
        frame.get(start..).unwrap_or_default()
    }
}

/// The protocol version a `version` response announces (its first parameter), if it is one we
/// can follow (8..=17).
pub fn announced_version(view: &FrameView, frame: &[u8]) -> Option<EzspVersion> {
    if view.frame_id != FrameId::VERSION || !view.is_response() {
        return None;
    }
    let version = *view.parameters(frame).first()?;
    EzspVersion::new(version).ok()
}

/// Where a send's (or its delivery report's) message tag sits in the frame, and its width:
/// u8 before v14, u16 from v14.
pub fn tag_position(frame_id: FrameId, version: EzspVersion) -> Option<(usize, usize)> {
    let wide = version.uses_sl_status();
    let width = if wide { 2 } else { 1 };
    let after_header = match frame_id {
        // type, indexOrDestination, apsFrame
        FrameId::SEND_UNICAST => 1 + 2 + APS_FRAME_LEN,
        // v14: alias, destination, nwkSequence, apsFrame, radius; before: destination, apsFrame, radius
        FrameId::SEND_BROADCAST if wide => 2 + 2 + 1 + APS_FRAME_LEN + 1,
        FrameId::SEND_BROADCAST => 2 + APS_FRAME_LEN + 1,
        // v14: status (u32), type, indexOrDestination, apsFrame; before: type, index, apsFrame
        FrameId::MESSAGE_SENT_HANDLER if wide => 4 + 1 + 2 + APS_FRAME_LEN,
        FrameId::MESSAGE_SENT_HANDLER => 1 + 2 + APS_FRAME_LEN,
        _ => return None,
    };
    Some((EXTENDED_HEADER_LEN + after_header, width))
}

/// The message tag of a send or delivery report, if the frame is long enough to hold it.
pub fn read_tag(frame: &[u8], frame_id: FrameId, version: EzspVersion) -> Option<u16> {
    let (at, width) = tag_position(frame_id, version)?;
    match width {
        1 => frame.get(at).map(|b| u16::from(*b)),
        _ => {
            let bytes = frame.get(at..at + 2)?;
            Some(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]))
        }
    }
}

/// Rewrites the message tag in place; false (frame unchanged) when it has no tag there or the
/// tag does not fit the version's width.
pub fn write_tag(frame: &mut [u8], frame_id: FrameId, version: EzspVersion, tag: u16) -> bool {
    let Some((at, width)) = tag_position(frame_id, version) else {
        return false;
    };
    match width {
        1 => match (frame.get_mut(at), u8::try_from(tag)) {
            (Some(slot), Ok(tag)) => {
                *slot = tag;
                true
            }
            _ => false,
        },
        _ => match frame.get_mut(at..at + 2) {
            Some(slot) => {
                slot.copy_from_slice(&tag.to_le_bytes());
                true
            }
            None => false,
        },
    }
}

/// Rewrites the sequence number (byte 0).
pub fn write_sequence(frame: &mut [u8], sequence: u8) {
    if let Some(first) = frame.first_mut() {
        *first = sequence;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ezsp::command::{Callback, Command, MessageSentHandler, SendBroadcast, SendUnicast};
    use crate::ezsp::status::{EmberStatus, SlStatus, Status};
    use crate::ezsp::types::{ApsFrame, ApsOptions, Nwk, OutgoingMessageType};

    fn aps() -> ApsFrame {
        ApsFrame {
            profile_id: 0x0104,
            cluster_id: 0x0019,
            source_endpoint: 1,
            destination_endpoint: 1,
            options: ApsOptions::RETRY,
            group_id: 0,
            sequence: 9,
        }
    }

    /// The offsets agree with the typed encoder in every layout, and a rewrite is read back by
    /// the typed decoder.
    #[test]
    fn tag_offsets_match_the_typed_layouts() {
        for version in [EzspVersion::V13, EzspVersion::V14, EzspVersion::V17] {
            let frames = [
                Command::SendUnicast(SendUnicast {
                    message_type: OutgoingMessageType::DIRECT,
                    index_or_destination: Nwk(0x1234),
                    aps_frame: aps(),
                    message_tag: 0xAB,
                    message_contents: vec![1, 2, 3],
                }),
                Command::SendBroadcast(SendBroadcast {
                    alias: Nwk::NULL,
                    destination: Nwk(0xFFFD),
                    nwk_sequence: 0,
                    aps_frame: aps(),
                    radius: 0,
                    message_tag: 0xAB,
                    message_contents: vec![1],
                }),
            ];
            for command in frames {
                let mut out = Vec::new();
                command.encode_frame(version, 3, &mut out).unwrap();
                let view = FrameView::parse(&out).unwrap();
                assert_eq!(read_tag(&out, view.frame_id, version), Some(0xAB));
                assert!(write_tag(&mut out, view.frame_id, version, 0x42));
                let decoded = crate::ezsp::command::Frame::decode(version, &out).unwrap();
                let tag = match decoded.body {
                    crate::ezsp::command::Body::Command(Command::SendUnicast(s)) => s.message_tag,
                    crate::ezsp::command::Body::Command(Command::SendBroadcast(s)) => s.message_tag,
                    other => panic!("{other:?}"),
                };
                assert_eq!(tag, 0x42);
            }
            let status = if version.uses_sl_status() {
                Status::Sl(SlStatus::OK)
            } else {
                Status::Ember(EmberStatus::SUCCESS)
            };
            let mut out = Vec::new();
            Callback::MessageSentHandler(MessageSentHandler {
                message_type: OutgoingMessageType::DIRECT,
                index_or_destination: Nwk(0x1234),
                aps_frame: aps(),
                message_tag: 0xCD,
                status,
                message_contents: Vec::new(),
            })
            .encode_frame(version, 0, &mut out)
            .unwrap();
            let view = FrameView::parse(&out).unwrap();
            assert!(view.is_callback());
            assert_eq!(read_tag(&out, view.frame_id, version), Some(0xCD));
        }
    }

    #[test]
    fn hostile_frames_are_refused_or_left_alone() {
        assert!(FrameView::parse(&[]).is_err());
        assert!(FrameView::parse(&[1, 0x00, 0x01, 0x05]).is_err());
        assert_eq!(
            FrameView::parse(&[1, 0x00, 0xFF, 0x00, 0x05]),
            Err(FrameViewError::Unsupported(FrameFormat::Intermediate))
        );
        let mut short = [1u8, 0x00, 0x01, 0x34, 0x00, 0x00];
        assert_eq!(
            read_tag(&short, FrameId::SEND_UNICAST, EzspVersion::V13),
            None
        );
        assert!(!write_tag(
            &mut short,
            FrameId::SEND_UNICAST,
            EzspVersion::V13,
            1
        ));
        assert!(!write_tag(
            &mut [0u8; 40],
            FrameId::SEND_UNICAST,
            EzspVersion::V13,
            0x100
        ));
        assert!(!write_tag(
            &mut [0u8; 40],
            FrameId::NOP,
            EzspVersion::V13,
            1
        ));
        let mut empty: [u8; 0] = [];
        write_sequence(&mut empty, 3);
    }

    #[test]
    fn version_responses_announce_their_version() {
        let legacy = [0x00, 0x80, 0x00, 0x0D, 0x02, 0x30, 0x74];
        let view = FrameView::parse(&legacy).unwrap();
        assert_eq!(announced_version(&view, &legacy), Some(EzspVersion::V13));
        let old = [0x00, 0x80, 0x00, 0x04, 0x02, 0x30, 0x74];
        assert_eq!(
            announced_version(&FrameView::parse(&old).unwrap(), &old),
            None
        );
        let command = [0x00, 0x00, 0x00, 0x0D];
        assert_eq!(
            announced_version(&FrameView::parse(&command).unwrap(), &command),
            None
        );
    }
}
