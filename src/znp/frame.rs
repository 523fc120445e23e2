//! The MT transport frame of TI Z-Stack's ZNP over UART (PROTOCOLS.md §3; zigpy-znp
//! `frames.py`): `FE | LEN | CMD0 | CMD1 | DATA[LEN] | FCS`, FCS = XOR of LEN..DATA,
//! CMD0 = `type << 5 | subsystem`.
//!
//! [`Decoder`] takes bytes as they arrive and hands back whole frames. It resynchronises after
//! garbage the way zigpy-znp's `ZnpMtProtocol` does: bytes before a start-of-frame are skipped,
//! and a frame whose FCS does not match is dropped by skipping only its SOF byte, so a real frame
//! hidden inside the damaged one is still found.
//!
//! ```
//! use zigbee_otad::znp::frame::{Decoder, Frame, FrameType, Subsystem};
//! let ping = Frame::new(FrameType::Sreq, Subsystem::SYS, 0x01, Vec::new());
//! assert_eq!(ping.to_bytes(), [0xFE, 0x00, 0x21, 0x01, 0x20]);
//! let mut decoder = Decoder::default();
//! decoder.push(&[0x00, 0x13, 0xFE, 0x00, 0x21, 0x01, 0x20]);
//! assert!(decoder.next_frame().unwrap().is_err()); // the two bytes of garbage, reported
//! assert_eq!(decoder.next_frame().unwrap().unwrap(), ping);
//! assert!(decoder.next_frame().is_none());
//! ```

use std::fmt;

use crate::wire::wire_enum;

/// Start of frame.
pub const SOF: u8 = 0xFE;
/// The largest DATA field an MT frame carries (LEN is a byte; Z-Stack's buffers stop at 250).
pub const MAX_PAYLOAD: usize = 250;
/// SOF, LEN, CMD0, CMD1 and FCS.
pub const OVERHEAD: usize = 5;

/// The command type in CMD0's top three bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum FrameType {
    /// 0: POLL (unused over UART).
    Poll,
    /// 1: a synchronous request; exactly one SRSP answers it.
    Sreq,
    /// 2: an asynchronous request or callback.
    Areq,
    /// 3: the synchronous response.
    Srsp,
    /// 4..=7: not defined by MT.
    Reserved(u8),
}

impl FrameType {
    /// From CMD0's top three bits.
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x07 {
            0 => FrameType::Poll,
            1 => FrameType::Sreq,
            2 => FrameType::Areq,
            3 => FrameType::Srsp,
            other => FrameType::Reserved(other),
        }
    }

    /// CMD0's top three bits.
    pub fn bits(self) -> u8 {
        match self {
            FrameType::Poll => 0,
            FrameType::Sreq => 1,
            FrameType::Areq => 2,
            FrameType::Srsp => 3,
            FrameType::Reserved(bits) => bits & 0x07,
        }
    }
}

wire_enum! {
    /// The MT subsystem in CMD0's low five bits, named as Z-Stack's MT documentation names it.
    /// `Debug` and `Display` print the bare name (`SYS`), which prefixes every command name.
    Subsystem(u8), names_only {
        /// RPC errors (the answer to a command the stick does not know).
        RPC_ERROR = 0x00,
        /// System: reset, ping, version, NV memory.
        SYS = 0x01,
        /// MAC.
        MAC = 0x02,
        /// Network.
        NWK = 0x03,
        /// Application framework: endpoints and data.
        AF = 0x04,
        /// Zigbee Device Object.
        ZDO = 0x05,
        /// Simple API.
        SAPI = 0x06,
        /// Utilities.
        UTIL = 0x07,
        /// Debug output.
        DEBUG = 0x08,
        /// Application (user-defined messages).
        APP = 0x09,
        /// The serial boot loader.
        UBL = 0x0D,
        /// Application configuration (Z-Stack 3 only: BDB commissioning).
        APP_CNF = 0x0F,
        /// Green Power.
        ZGP = 0x15,
    }
}

/// One MT frame: type, subsystem, command id and payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// SREQ, SRSP or AREQ.
    pub frame_type: FrameType,
    /// The subsystem.
    pub subsystem: Subsystem,
    /// CMD1: the command id within the subsystem.
    pub id: u8,
    /// DATA, at most [`MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Frame({:?} {:?} 0x{:02X} [{}])",
            self.frame_type,
            self.subsystem,
            self.id,
            crate::wire::hex_spaced(&self.payload)
        )
    }
}

impl Frame {
    /// A frame; the payload is cut at [`MAX_PAYLOAD`] when encoded (commands check their sizes
    /// before they get here).
    pub fn new(frame_type: FrameType, subsystem: Subsystem, id: u8, payload: Vec<u8>) -> Self {
        Frame {
            frame_type,
            subsystem,
            id,
            payload,
        }
    }

    /// CMD0: type and subsystem.
    pub fn cmd0(&self) -> u8 {
        (self.frame_type.bits() << 5) | (self.subsystem.0 & 0x1F)
    }

    /// Appends the frame as it goes on the wire.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let payload = self.payload.get(..MAX_PAYLOAD).unwrap_or(&self.payload);
        let len = u8::try_from(payload.len()).unwrap_or(u8::MAX);
        let start = out.len();
        out.push(SOF);
        out.push(len);
        out.push(self.cmd0());
        out.push(self.id);
        out.extend_from_slice(payload);
        let fcs = fcs(out.get(start + 1..).unwrap_or_default());
        out.push(fcs);
    }

    /// The frame as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + OVERHEAD);
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one frame (SOF to FCS, nothing after).
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut decoder = Decoder::default();
        decoder.push(bytes);
        let frame = decoder
            .next_frame()
            .ok_or(FrameError::Incomplete { have: bytes.len() })??;
        if decoder.buffered() > 0 {
            return Err(FrameError::TrailingBytes {
                count: decoder.buffered(),
            });
        }
        Ok(frame)
    }
}

/// XOR of every byte.
pub fn fcs(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// What was wrong with bytes that should have been a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Bytes before a start-of-frame (line noise, a bootloader's output).
    #[error("{count} bytes of garbage before a start-of-frame (0xFE)")]
    Garbage {
        /// How many were skipped.
        count: usize,
    },
    /// LEN says more than MT allows.
    #[error("frame length {len} exceeds the MT maximum of {MAX_PAYLOAD}")]
    TooLong {
        /// The LEN byte.
        len: u8,
    },
    /// The check byte does not match.
    #[error("frame check 0x{received:02X} does not match the computed 0x{computed:02X}")]
    BadFcs {
        /// The FCS byte received.
        received: u8,
        /// The XOR of LEN..DATA.
        computed: u8,
    },
    /// The input ends before the frame does.
    #[error("incomplete frame: {have} bytes")]
    Incomplete {
        /// Bytes there were.
        have: usize,
    },
    /// Bytes follow the frame.
    #[error("{count} bytes after the frame")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

/// Turns a byte stream into frames, skipping garbage (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    /// Appends bytes read from the port.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Forgets everything held (after a reset of the line).
    pub fn clear(&mut self) {
        self.buffer.clear();
    }

    /// The next frame, or what was skipped on the way to it; `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let start = self.buffer.iter().position(|&b| b == SOF);
        match start {
            None if self.buffer.is_empty() => return None,
            None => {
                let count = self.buffer.len();
                self.buffer.clear();
                return Some(Err(FrameError::Garbage { count }));
            }
            Some(0) => {}
            Some(count) => {
                self.buffer.drain(..count);
                return Some(Err(FrameError::Garbage { count }));
            }
        }
        let &len = self.buffer.get(1)?;
        if usize::from(len) > MAX_PAYLOAD {
            self.buffer.drain(..1);
            return Some(Err(FrameError::TooLong { len }));
        }
        let total = usize::from(len) + OVERHEAD;
        let bytes = self.buffer.get(..total)?;
        let computed = fcs(bytes.get(1..total - 1).unwrap_or_default());
        let received = bytes.get(total - 1).copied().unwrap_or_default();
        if computed != received {
            self.buffer.drain(..1);
            return Some(Err(FrameError::BadFcs { received, computed }));
        }
        let cmd0 = bytes.get(2).copied().unwrap_or_default();
        let id = bytes.get(3).copied().unwrap_or_default();
        let payload = bytes.get(4..total - 1).unwrap_or_default().to_vec();
        self.buffer.drain(..total);
        Some(Ok(Frame {
            frame_type: FrameType::from_bits(cmd0 >> 5),
            subsystem: Subsystem(cmd0 & 0x1F),
            id,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut Decoder) -> Vec<Result<Frame, FrameError>> {
        std::iter::from_fn(|| decoder.next_frame()).collect()
    }

    #[test]
    fn subsystems_print_their_bare_names() {
        assert_eq!(format!("{:?}", Subsystem::APP_CNF), "APP_CNF");
        assert_eq!(Subsystem(0x0D).to_string(), "UBL");
        assert_eq!(format!("{:?}", Subsystem(0x1F)), "Subsystem(0x1F)");
        assert_eq!(Subsystem(0x1F).to_string(), "0x1F");
        assert_eq!(Subsystem(0x08).name(), Some("DEBUG"));
        assert_eq!(Subsystem(0x0A).name(), None);
    }

    #[test]
    fn round_trip_and_known_bytes() {
        let reset = Frame::new(FrameType::Areq, Subsystem::SYS, 0x00, vec![0x01]);
        assert_eq!(reset.to_bytes(), [0xFE, 0x01, 0x41, 0x00, 0x01, 0x41]);
        assert_eq!(Frame::decode(&reset.to_bytes()).unwrap(), reset);
    }

    #[test]
    fn resynchronises_after_garbage_and_a_bad_fcs() {
        let ping = Frame::new(FrameType::Sreq, Subsystem::SYS, 0x01, Vec::new());
        let mut damaged = ping.to_bytes();
        *damaged.last_mut().unwrap() ^= 0x55;
        let mut decoder = Decoder::default();
        decoder.push(&[0xEF; 3]);
        decoder.push(&damaged);
        decoder.push(&ping.to_bytes());
        let out = frames(&mut decoder);
        assert_eq!(out.first(), Some(&Err(FrameError::Garbage { count: 3 })));
        assert!(matches!(out.get(1), Some(Err(FrameError::BadFcs { .. }))));
        assert_eq!(out.last(), Some(&Ok(ping)));
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_frame_split_across_reads_waits_for_its_end() {
        let bytes = [0xFE, 0x02, 0x61, 0x01, 0x59, 0x06, 0x3D];
        let mut decoder = Decoder::default();
        for (i, b) in bytes.iter().enumerate() {
            decoder.push(&[*b]);
            let next = decoder.next_frame();
            assert_eq!(next.is_some(), i == bytes.len() - 1);
        }
    }

    #[test]
    fn an_impossible_length_skips_only_the_sof() {
        let ping = Frame::new(FrameType::Sreq, Subsystem::SYS, 0x01, Vec::new()).to_bytes();
        let mut decoder = Decoder::default();
        decoder.push(&[SOF, 0xFB]);
        decoder.push(&ping);
        let out = frames(&mut decoder);
        assert_eq!(out.first(), Some(&Err(FrameError::TooLong { len: 0xFB })));
        assert!(matches!(out.last(), Some(Ok(_))));
    }
}
