//! ASH frames on the wire (UG101 "ASH Frame Formats" and "Data Randomization", as bellows
//! 1.2.1 implements them): the six frame types, data randomisation, the CRC-16/CCITT-FALSE
//! check, byte stuffing and the Flag byte, and a [`Deframer`] that turns an arbitrary byte
//! stream back into frames.
//!
//! Encoding order (UG101; bellows `DataFrame.to_bytes`, `_write_frame`): randomise the DATA
//! field only, append the CRC of control byte plus (randomised) data, big-endian, stuff every
//! reserved byte, then append the Flag byte. The deframer reverses this and resynchronises at
//! the next Flag after anything bad (CANCEL, SUBSTITUTE, bad escape, bad CRC, oversized frame),
//! counting the bytes it drops.

use std::collections::VecDeque;

use crate::wire::wire_enum;

/// Flag byte: ends every frame (UG101 reserved bytes).
pub const FLAG: u8 = 0x7E;
/// Escape byte: the next byte has bit 5 inverted.
pub const ESCAPE: u8 = 0x7D;
/// XON: resume transmission (software flow control; dropped on receipt).
pub const XON: u8 = 0x11;
/// XOFF: stop transmission (software flow control; dropped on receipt).
pub const XOFF: u8 = 0x13;
/// Substitute byte: a UART-level error replaced a byte; the frame in progress is discarded.
pub const SUBSTITUTE: u8 = 0x18;
/// Cancel byte: terminates the frame in progress; everything since the last Flag is ignored.
pub const CANCEL: u8 = 0x1A;
/// Every byte that must be stuffed inside a frame.
pub const RESERVED_BYTES: [u8; 6] = [FLAG, ESCAPE, XON, XOFF, SUBSTITUTE, CANCEL];

/// The only ASH version defined (RSTACK and ERROR carry it).
pub const ASH_VERSION: u8 = 0x02;
/// Largest DATA field (an EZSP frame) this crate sends or accepts, as in zigbee-herdsman's
/// `EZSP_MAX_FRAME_LENGTH`.
pub const MAX_DATA_LEN: usize = 220;
/// Largest unstuffed frame: control byte, DATA field, two CRC bytes.
pub const MAX_FRAME_LEN: usize = 1 + MAX_DATA_LEN + 2;

/// Seed of the DATA-field pseudo-random sequence (UG101 "Data Randomization").
const RANDOM_SEED: u8 = 0x42;
/// Feedback applied when the LFSR shifts out a one.
const RANDOM_FEEDBACK: u8 = 0xB8;
/// Bit 5 is inverted by stuffing.
const STUFF_MASK: u8 = 0x20;

const ASH_CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

/// Control-byte values and masks (UG101 "ASH Frame Formats").
const CONTROL_RST: u8 = 0xC0;
const CONTROL_RSTACK: u8 = 0xC1;
const CONTROL_ERROR: u8 = 0xC2;
const CONTROL_ACK: u8 = 0x80;
const CONTROL_NAK: u8 = 0xA0;
const DATA_TYPE_MASK: u8 = 0x80;
const ACK_NAK_TYPE_MASK: u8 = 0xE0;
const RE_TX_BIT: u8 = 0x08;
const N_RDY_BIT: u8 = 0x08;
const SEQ_MASK: u8 = 0x07;

wire_enum! {
    /// The reason an NCP reset, carried by RSTACK and ERROR (bellows `NcpResetCode`; EmberZNet
    /// `EzspStatus` reset codes). Unknown values (0x80 and up are chip-specific) round-trip.
    NcpResetCode(u8), names_first {
        /// Reset reason unknown.
        RESET_UNKNOWN_REASON = 0x00,
        /// External reset (reset pin).
        RESET_EXTERNAL = 0x01,
        /// Power-on reset.
        RESET_POWER_ON = 0x02,
        /// Watchdog reset.
        RESET_WATCHDOG = 0x03,
        /// Assertion failure.
        RESET_ASSERT = 0x06,
        /// Reset into or out of the bootloader.
        RESET_BOOTLOADER = 0x09,
        /// Software reset (the answer to an RST).
        RESET_SOFTWARE = 0x0B,
        /// The peer stopped acknowledging DATA frames (UG101 ACK_TIMEOUTS).
        ERROR_EXCEEDED_MAXIMUM_ACK_TIMEOUT_COUNT = 0x51,
        /// A chip-specific error.
        ERROR_UNKNOWN_EM3XX_ERROR = 0x80,
    }
}

/// One ASH frame. Sequence numbers (`frm_num`, `ack_num`) are 3-bit values: encoding keeps
/// only their low three bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// DATA: an EZSP frame, with its own sequence number and a piggybacked acknowledgement.
    Data {
        /// This frame's number, 0..=7.
        frm_num: u8,
        /// Set when this is a retransmission.
        re_tx: bool,
        /// The next frame number the sender expects to receive, 0..=7.
        ack_num: u8,
        /// The EZSP frame, not randomised.
        payload: Vec<u8>,
    },
    /// ACK: every frame before `ack_num` arrived.
    Ack {
        /// The next frame number expected, 0..=7.
        ack_num: u8,
        /// The sender is not ready to receive callbacks (nRdy).
        n_rdy: bool,
    },
    /// NAK: frame `ack_num` (or a frame after it) was bad; resend from `ack_num`.
    Nak {
        /// The next frame number expected, 0..=7.
        ack_num: u8,
        /// The sender is not ready to receive callbacks (nRdy).
        n_rdy: bool,
    },
    /// RST: the host asks the NCP to reset.
    Rst,
    /// RSTACK: the NCP has reset.
    RstAck {
        /// ASH version, always [`ASH_VERSION`] from conforming NCPs.
        version: u8,
        /// Why the NCP reset.
        reset_code: NcpResetCode,
    },
    /// ERROR: the NCP entered the failed state.
    Error {
        /// ASH version, always [`ASH_VERSION`] from conforming NCPs.
        version: u8,
        /// Why the NCP failed.
        error_code: NcpResetCode,
    },
}

impl Frame {
    /// The control byte.
    pub fn control(&self) -> u8 {
        match self {
            Frame::Data {
                frm_num,
                re_tx,
                ack_num,
                ..
            } => {
                ((frm_num & SEQ_MASK) << 4)
                    | if *re_tx { RE_TX_BIT } else { 0 }
                    | (ack_num & SEQ_MASK)
            }
            Frame::Ack { ack_num, n_rdy } => {
                CONTROL_ACK | if *n_rdy { N_RDY_BIT } else { 0 } | (ack_num & SEQ_MASK)
            }
            Frame::Nak { ack_num, n_rdy } => {
                CONTROL_NAK | if *n_rdy { N_RDY_BIT } else { 0 } | (ack_num & SEQ_MASK)
            }
            Frame::Rst => CONTROL_RST,
            Frame::RstAck { .. } => CONTROL_RSTACK,
            Frame::Error { .. } => CONTROL_ERROR,
        }
    }

    /// Calls `sink` with the unstuffed frame in pieces: control byte, randomised data (in
    /// chunks), then the big-endian CRC over everything before it. No allocation.
    fn for_each_unstuffed_piece(&self, mut sink: impl FnMut(&[u8])) {
        let mut digest = ASH_CRC.digest();
        let mut emit = |piece: &[u8]| {
            digest.update(piece);
            sink(piece);
        };
        emit(&[self.control()]);
        match self {
            Frame::Data { payload, .. } => {
                let mut randomiser = Randomiser::new();
                let mut chunk = [0u8; 32];
                for data in payload.chunks(chunk.len()) {
                    let piece = chunk.get_mut(..data.len()).unwrap_or_default();
                    piece.copy_from_slice(data);
                    randomiser.apply(piece);
                    emit(piece);
                }
            }
            Frame::RstAck {
                version,
                reset_code,
            } => emit(&[*version, reset_code.0]),
            Frame::Error {
                version,
                error_code,
            } => emit(&[*version, error_code.0]),
            Frame::Ack { .. } | Frame::Nak { .. } | Frame::Rst => {}
        }
        sink(&digest.finalize().to_be_bytes());
    }

    /// Appends the unstuffed frame (control byte, randomised data, big-endian CRC) to `out`,
    /// without the Flag byte.
    pub fn encode_unstuffed(&self, out: &mut Vec<u8>) {
        out.reserve(self.unstuffed_len());
        self.for_each_unstuffed_piece(|piece| out.extend_from_slice(piece));
    }

    /// Length of the unstuffed frame (control, data, CRC), without the Flag byte.
    pub fn unstuffed_len(&self) -> usize {
        3 + match self {
            Frame::Data { payload, .. } => payload.len(),
            Frame::RstAck { .. } | Frame::Error { .. } => 2,
            Frame::Ack { .. } | Frame::Nak { .. } | Frame::Rst => 0,
        }
    }

    /// Appends the frame as it goes on the wire: stuffed, followed by the Flag byte.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.unstuffed_len();
        out.reserve(len + len / 8 + 1);
        self.for_each_unstuffed_piece(|piece| stuff(piece, out));
        out.push(FLAG);
    }

    /// Length of [`Frame::encode`]'s output: stuffed frame plus Flag byte.
    pub fn encoded_len(&self) -> usize {
        let mut len = 1;
        self.for_each_unstuffed_piece(|piece| {
            len += piece.len() + piece.iter().filter(|b| is_reserved(**b)).count();
        });
        len
    }

    /// Decodes one unstuffed frame (control byte, data, CRC; no Flag byte), checking the CRC and
    /// each frame type's length. DATA payloads come back de-randomised.
    pub fn decode(raw: &[u8]) -> Result<Frame, FrameError> {
        let (control, body, crc_bytes) = match raw {
            [control, body @ .., crc_high, crc_low] => (*control, body, [*crc_high, *crc_low]),
            _ => return Err(FrameError::TooShort { len: raw.len() }),
        };
        let computed = ASH_CRC.checksum(raw.get(..raw.len() - 2).unwrap_or_default());
        let received = u16::from_be_bytes(crc_bytes);
        if computed != received {
            return Err(FrameError::BadCrc {
                control,
                offset: raw.len() - 2,
                computed,
                received,
            });
        }
        if control & DATA_TYPE_MASK == 0 {
            if body.len() > MAX_DATA_LEN {
                return Err(FrameError::DataTooLong {
                    len: body.len(),
                    max: MAX_DATA_LEN,
                });
            }
            let mut payload = body.to_vec();
            randomise(&mut payload);
            return Ok(Frame::Data {
                frm_num: (control >> 4) & SEQ_MASK,
                re_tx: control & RE_TX_BIT != 0,
                ack_num: control & SEQ_MASK,
                payload,
            });
        }
        let expect_len = |kind: &'static str, expected: usize| {
            if body.len() == expected {
                Ok(())
            } else {
                Err(FrameError::BadLength {
                    kind,
                    control,
                    expected,
                    found: body.len(),
                })
            }
        };
        let ack_num = control & SEQ_MASK;
        let n_rdy = control & N_RDY_BIT != 0;
        match control {
            _ if control & ACK_NAK_TYPE_MASK == CONTROL_ACK => {
                expect_len("ACK", 0)?;
                Ok(Frame::Ack { ack_num, n_rdy })
            }
            _ if control & ACK_NAK_TYPE_MASK == CONTROL_NAK => {
                expect_len("NAK", 0)?;
                Ok(Frame::Nak { ack_num, n_rdy })
            }
            CONTROL_RST => {
                expect_len("RST", 0)?;
                Ok(Frame::Rst)
            }
            CONTROL_RSTACK => {
                expect_len("RSTACK", 2)?;
                let (version, code) = version_and_code(body);
                Ok(Frame::RstAck {
                    version,
                    reset_code: code,
                })
            }
            CONTROL_ERROR => {
                expect_len("ERROR", 2)?;
                let (version, code) = version_and_code(body);
                Ok(Frame::Error {
                    version,
                    error_code: code,
                })
            }
            _ => Err(FrameError::UnknownControl { control }),
        }
    }
}

/// Splits the two-byte body of RSTACK/ERROR (length already checked).
fn version_and_code(body: &[u8]) -> (u8, NcpResetCode) {
    match body {
        [version, code] => (*version, NcpResetCode(*code)),
        _ => (0, NcpResetCode(0)),
    }
}

/// Appends `frame` as it goes on the wire (randomised, CRC, stuffed, Flag) to `out`.
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    frame.encode(out);
}

/// True for the six bytes that must be stuffed.
pub fn is_reserved(byte: u8) -> bool {
    matches!(byte, FLAG | ESCAPE | XON | XOFF | SUBSTITUTE | CANCEL)
}

/// XORs `data` in place with the ASH pseudo-random sequence (UG101 "Data Randomization": seed
/// 0x42; shift right, XOR 0xB8 when a one is shifted out). Applying it twice restores the input.
pub fn randomise(data: &mut [u8]) {
    Randomiser::new().apply(data);
}

/// The randomisation LFSR, resumable across chunks of one DATA field.
#[derive(Debug, Clone, Copy)]
struct Randomiser(u8);

impl Randomiser {
    fn new() -> Self {
        Randomiser(RANDOM_SEED)
    }

    fn apply(&mut self, data: &mut [u8]) {
        for byte in data {
            *byte ^= self.0;
            self.0 = if self.0 & 1 == 0 {
                self.0 >> 1
            } else {
                (self.0 >> 1) ^ RANDOM_FEEDBACK
            };
        }
    }
}

/// Appends `data` to `out` with every reserved byte replaced by `ESCAPE, byte ^ 0x20`.
pub fn stuff(data: &[u8], out: &mut Vec<u8>) {
    for &byte in data {
        if is_reserved(byte) {
            out.extend_from_slice(&[ESCAPE, byte ^ STUFF_MASK]);
        } else {
            out.push(byte);
        }
    }
}

/// Why bytes between two Flags did not make a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer than the three bytes every frame has (control and CRC).
    #[error("frame of {len} bytes is shorter than control byte plus 2-byte CRC")]
    TooShort {
        /// Unstuffed length.
        len: usize,
    },
    /// The CRC does not match.
    #[error(
        "CRC at offset {offset} is 0x{received:04X}, computed 0x{computed:04X} (control 0x{control:02X})"
    )]
    BadCrc {
        /// Control byte of the damaged frame.
        control: u8,
        /// Offset of the CRC in the unstuffed frame.
        offset: usize,
        /// CRC computed over control and data.
        computed: u16,
        /// CRC carried by the frame.
        received: u16,
    },
    /// A control byte no frame type uses (0xC3..=0xFF).
    #[error("control byte 0x{control:02X} at offset 0 names no ASH frame type")]
    UnknownControl {
        /// The control byte.
        control: u8,
    },
    /// A frame type with a fixed body had another length.
    #[error(
        "{kind} frame (control 0x{control:02X}) has {found} data bytes after offset 1, expected {expected}"
    )]
    BadLength {
        /// Frame type.
        kind: &'static str,
        /// Control byte.
        control: u8,
        /// Body length the type requires.
        expected: usize,
        /// Body length received.
        found: usize,
    },
    /// A DATA field longer than [`MAX_DATA_LEN`].
    #[error("DATA field of {len} bytes exceeds the {max}-byte maximum")]
    DataTooLong {
        /// Data length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// More than [`MAX_FRAME_LEN`] unstuffed bytes arrived without a Flag; dropped up to the next Flag.
    #[error("no Flag within {max} bytes; {dropped} bytes dropped up to the next Flag")]
    Oversized {
        /// The cap.
        max: usize,
        /// Bytes dropped, including those before the cap was hit.
        dropped: usize,
    },
    /// An Escape byte was followed by a byte that does not unstuff to a reserved byte, or by
    /// the Flag.
    #[error(
        "escape at offset {offset} is followed by 0x{byte:02X}, which is not a stuffed reserved byte"
    )]
    BadEscape {
        /// Unstuffed offset where the escaped byte would have gone.
        offset: usize,
        /// The byte after the Escape.
        byte: u8,
    },
    /// A SUBSTITUTE byte (UART error) arrived; the frame was dropped up to the next Flag.
    #[error("SUBSTITUTE byte at offset {offset}; {dropped} bytes dropped up to the next Flag")]
    Substituted {
        /// Unstuffed offset where the SUBSTITUTE arrived.
        offset: usize,
        /// Bytes dropped.
        dropped: usize,
    },
}

impl FrameError {
    /// True when the damaged frame looked like a DATA frame (control byte bit 7 clear). The link
    /// answers those with a NAK (the reject condition); other damaged frames are just dropped.
    pub fn was_data_frame(&self) -> bool {
        match self {
            FrameError::BadCrc { control, .. } | FrameError::BadLength { control, .. } => {
                control & DATA_TYPE_MASK == 0
            }
            FrameError::DataTooLong { .. } => true,
            _ => false,
        }
    }
}

/// Where the deframer is inside the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeframeState {
    /// Collecting frame bytes.
    Collecting { escaped: bool },
    /// Dropping everything up to the next Flag, then reporting why.
    Discarding(DiscardReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiscardReason {
    Oversized,
    BadEscape { offset: usize, byte: u8 },
    Substituted { offset: usize },
}

/// Incremental ASH deframer: push byte chunks of any size, get frames and errors out.
///
/// It holds at most one frame ([`MAX_FRAME_LEN`] bytes) plus the results of the last push.
/// XON/XOFF are dropped wherever they appear; CANCEL silently drops the frame in progress and a
/// new frame starts right after it; SUBSTITUTE, a bad escape or an oversized frame drop
/// everything up to the next Flag and then report one error.
#[derive(Debug, Clone)]
pub struct Deframer {
    frame: Vec<u8>,
    state: DeframeState,
    /// Bytes dropped since the current frame started (reported with the discard error).
    discarded_in_frame: usize,
    ready: VecDeque<Result<Frame, FrameError>>,
    dropped_bytes: u64,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    /// An empty deframer, at a frame boundary.
    pub fn new() -> Self {
        Deframer {
            frame: Vec::with_capacity(MAX_FRAME_LEN),
            state: DeframeState::Collecting { escaped: false },
            discarded_in_frame: 0,
            ready: VecDeque::new(),
            dropped_bytes: 0,
        }
    }

    /// Wire bytes that did not end up in a good frame so far (cancelled, substituted,
    /// oversized, badly escaped or failing to decode). XON/XOFF and Flags are not counted.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    /// Feeds `input` and returns every frame or error it completed, in order. Results not taken
    /// from the iterator are discarded when it is dropped.
    pub fn push(&mut self, input: &[u8]) -> impl Iterator<Item = Result<Frame, FrameError>> + '_ {
        self.ready.clear();
        for &byte in input {
            self.feed(byte);
        }
        self.ready.drain(..)
    }

    fn drop_frame_in_progress(&mut self) {
        self.discarded_in_frame += self.frame.len();
        self.dropped_bytes += self.frame.len() as u64;
        self.frame.clear();
    }

    fn start_discarding(&mut self, reason: DiscardReason) {
        self.drop_frame_in_progress();
        self.state = DeframeState::Discarding(reason);
    }

    fn feed(&mut self, byte: u8) {
        match byte {
            XON | XOFF => return,
            CANCEL => {
                self.drop_frame_in_progress();
                self.discarded_in_frame = 0;
                self.state = DeframeState::Collecting { escaped: false };
                return;
            }
            FLAG => {
                self.end_of_frame();
                return;
            }
            _ => {}
        }
        match self.state {
            DeframeState::Discarding(_) => {
                self.discarded_in_frame += 1;
                self.dropped_bytes += 1;
            }
            DeframeState::Collecting { .. } if byte == SUBSTITUTE => {
                let offset = self.frame.len();
                self.start_discarding(DiscardReason::Substituted { offset });
            }
            DeframeState::Collecting { escaped: false } if byte == ESCAPE => {
                self.state = DeframeState::Collecting { escaped: true };
            }
            DeframeState::Collecting { escaped } => {
                let value = if escaped { byte ^ STUFF_MASK } else { byte };
                if escaped && !is_reserved(value) {
                    let offset = self.frame.len();
                    // The escape and this byte are dropped too.
                    self.discarded_in_frame += 2;
                    self.dropped_bytes += 2;
                    self.start_discarding(DiscardReason::BadEscape { offset, byte });
                    return;
                }
                if self.frame.len() >= MAX_FRAME_LEN {
                    self.discarded_in_frame += 1;
                    self.dropped_bytes += 1;
                    self.start_discarding(DiscardReason::Oversized);
                    return;
                }
                self.frame.push(value);
                self.state = DeframeState::Collecting { escaped: false };
            }
        }
    }

    fn end_of_frame(&mut self) {
        let state = std::mem::replace(&mut self.state, DeframeState::Collecting { escaped: false });
        let dropped = self.discarded_in_frame;
        self.discarded_in_frame = 0;
        let result = match state {
            DeframeState::Discarding(DiscardReason::Oversized) => Err(FrameError::Oversized {
                max: MAX_FRAME_LEN,
                dropped,
            }),
            DeframeState::Discarding(DiscardReason::BadEscape { offset, byte }) => {
                Err(FrameError::BadEscape { offset, byte })
            }
            DeframeState::Discarding(DiscardReason::Substituted { offset }) => {
                Err(FrameError::Substituted { offset, dropped })
            }
            DeframeState::Collecting { escaped } => {
                if escaped {
                    // An Escape directly before the Flag.
                    let offset = self.frame.len();
                    self.dropped_bytes += 1;
                    self.drop_frame_in_progress();
                    Err(FrameError::BadEscape { offset, byte: FLAG })
                } else if self.frame.is_empty() {
                    // Back-to-back Flags (or a Flag after a CANCEL) delimit nothing.
                    return;
                } else {
                    let decoded = Frame::decode(&self.frame);
                    if decoded.is_err() {
                        self.dropped_bytes += self.frame.len() as u64;
                    }
                    self.frame.clear();
                    decoded
                }
            }
        };
        self.ready.push_back(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_hex;

    fn wire(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(frame, &mut out);
        out
    }

    fn deframe_all(input: &[u8]) -> Vec<Result<Frame, FrameError>> {
        Deframer::new().push(input).collect()
    }

    #[test]
    fn randomisation_sequence_starts_as_ug101() {
        let mut data = [0u8; 8];
        randomise(&mut data);
        assert_eq!(data, parse_hex("42 21 A8 54 2A 15 B2 59").unwrap()[..]);
    }

    #[test]
    fn ug101_data_example() {
        let frame = Frame::Data {
            frm_num: 2,
            re_tx: false,
            ack_num: 5,
            payload: vec![0, 0, 0, 2],
        };
        assert_eq!(wire(&frame), parse_hex("25 42 21 A8 56 A6 09 7E").unwrap());
        assert_eq!(frame.encoded_len(), 8);
    }

    #[test]
    fn rst_and_rstack_crc_as_ug101() {
        assert_eq!(wire(&Frame::Rst), parse_hex("C0 38 BC 7E").unwrap());
        let rstack = Frame::RstAck {
            version: ASH_VERSION,
            reset_code: NcpResetCode::RESET_SOFTWARE,
        };
        assert_eq!(wire(&rstack), parse_hex("C1 02 0B 0A 52 7E").unwrap());
    }

    #[test]
    fn stuffed_frame_decodes_and_counts_stuffing() {
        let input = parse_hex("12 62 21 A9 51 2A 7D 38 DA 7E").unwrap();
        let frames = deframe_all(&input);
        let expected = Frame::Data {
            frm_num: 1,
            re_tx: false,
            ack_num: 2,
            payload: parse_hex("20 00 01 05 00").unwrap(),
        };
        assert_eq!(frames, vec![Ok(expected.clone())]);
        assert_eq!(expected.encoded_len(), input.len());
    }

    #[test]
    fn bad_crc_names_offset_and_values() {
        let err = Frame::decode(&[0xC0, 0x38, 0xBD]).unwrap_err();
        assert_eq!(
            err,
            FrameError::BadCrc {
                control: 0xC0,
                offset: 1,
                computed: 0x38BC,
                received: 0x38BD
            }
        );
        assert!(err.to_string().contains("offset 1"), "{err}");
        assert!(!err.was_data_frame());
    }

    #[test]
    fn fixed_length_frames_reject_other_lengths() {
        let mut raw = vec![0x81, 0x00];
        let crc = ASH_CRC.checksum(&raw);
        raw.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            Frame::decode(&raw),
            Err(FrameError::BadLength {
                kind: "ACK",
                found: 1,
                ..
            })
        ));
        let mut raw = vec![0xC5];
        raw.extend_from_slice(&ASH_CRC.checksum(&[0xC5]).to_be_bytes());
        assert_eq!(
            Frame::decode(&raw),
            Err(FrameError::UnknownControl { control: 0xC5 })
        );
        assert_eq!(
            Frame::decode(&[0x7E, 0x00]),
            Err(FrameError::TooShort { len: 2 })
        );
    }

    #[test]
    fn cancel_drops_frame_in_progress_and_next_frame_starts_after_it() {
        let mut input = vec![0x25, 0x42, CANCEL];
        input.extend(parse_hex("C0 38 BC 7E").unwrap());
        let mut deframer = Deframer::new();
        let frames: Vec<_> = deframer.push(&input).collect();
        assert_eq!(frames, vec![Ok(Frame::Rst)]);
        assert_eq!(deframer.dropped_bytes(), 2);
    }

    #[test]
    fn substitute_drops_to_next_flag_then_resyncs() {
        let mut input = vec![0x25, SUBSTITUTE, 0x42, 0x21, FLAG];
        input.extend(parse_hex("C0 38 BC 7E").unwrap());
        let mut deframer = Deframer::new();
        let frames: Vec<_> = deframer.push(&input).collect();
        assert_eq!(
            frames,
            vec![
                Err(FrameError::Substituted {
                    offset: 1,
                    dropped: 3
                }),
                Ok(Frame::Rst)
            ]
        );
        assert_eq!(deframer.dropped_bytes(), 3);
    }

    #[test]
    fn xon_xoff_are_ignored_anywhere() {
        let input = [XON, 0xC0, XOFF, 0x38, XON, 0xBC, XOFF, FLAG];
        assert_eq!(deframe_all(&input), vec![Ok(Frame::Rst)]);
    }

    #[test]
    fn bad_escape_is_reported_and_resyncs() {
        let input = [0xC0, ESCAPE, 0x00, 0x38, FLAG, 0xC0, 0x38, 0xBC, FLAG];
        let frames = deframe_all(&input);
        assert_eq!(
            frames,
            vec![
                Err(FrameError::BadEscape {
                    offset: 1,
                    byte: 0x00
                }),
                Ok(Frame::Rst)
            ]
        );
        let frames = deframe_all(&[0xC0, ESCAPE, FLAG]);
        assert_eq!(
            frames,
            vec![Err(FrameError::BadEscape {
                offset: 1,
                byte: FLAG
            })]
        );
    }

    #[test]
    fn oversized_frame_is_capped_and_resyncs() {
        let mut input = vec![0x01; MAX_FRAME_LEN + 50];
        input.push(FLAG);
        input.extend(parse_hex("C0 38 BC 7E").unwrap());
        let mut deframer = Deframer::new();
        let frames: Vec<_> = deframer.push(&input).collect();
        assert_eq!(
            frames,
            vec![
                Err(FrameError::Oversized {
                    max: MAX_FRAME_LEN,
                    dropped: MAX_FRAME_LEN + 50
                }),
                Ok(Frame::Rst)
            ]
        );
        assert_eq!(deframer.dropped_bytes(), (MAX_FRAME_LEN + 50) as u64);
        assert!(deframer.frame.capacity() <= MAX_FRAME_LEN);
    }

    #[test]
    fn frames_split_across_pushes() {
        let bytes = parse_hex("53 42 A1 A8 56 28 04 82 03 2A 7E").unwrap();
        let mut deframer = Deframer::new();
        let mut frames = Vec::new();
        for chunk in bytes.chunks(3) {
            frames.extend(deframer.push(chunk));
        }
        assert_eq!(
            frames,
            vec![Ok(Frame::Data {
                frm_num: 5,
                re_tx: false,
                ack_num: 3,
                payload: parse_hex("00 80 00 02 02 11 30").unwrap()
            })]
        );
    }

    #[test]
    fn reset_code_debug_names_and_hex() {
        assert_eq!(
            format!("{:?}", NcpResetCode::RESET_SOFTWARE),
            "RESET_SOFTWARE(0x0B)"
        );
        assert_eq!(format!("{:?}", NcpResetCode(0x99)), "NcpResetCode(0x99)");
    }
}
