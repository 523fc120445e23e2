//! ASH, the Asynchronous Serial Host protocol that carries EZSP over a UART (Silicon Labs UG101).
//!
//! - [`frame`]: the frames on the wire (UG101 frame formats): DATA/ACK/NAK/RST/RSTACK/ERROR, data
//!   randomisation, CRC-16/CCITT-FALSE, byte stuffing, and an incremental [`Deframer`].
//! - [`link`]: the sans-IO link state machine (UG101 protocol): RST/RSTACK, sequence numbers,
//!   ACK/NAK, the reject condition, the sliding window and adaptive retransmission, usable as the
//!   host (the gateway) or as the NCP (the simulated coordinator).
//! - [`config`]: the link parameters, UG101's and the values of a real NCP and of our host.
//! - [`fault`]: a seeded lossy line to put between two links in tests and the simulator.
//!
//! ```
//! use zigbee_otad::ash::{Deframer, Frame, encode_frame};
//!
//! // The UG101 example: DATA frmNum 2, ackNum 5, EZSP `version` request.
//! let frame = Frame::Data { frm_num: 2, re_tx: false, ack_num: 5, payload: vec![0, 0, 0, 2] };
//! let mut wire = Vec::new();
//! encode_frame(&frame, &mut wire);
//! assert_eq!(wire, [0x25, 0x42, 0x21, 0xA8, 0x56, 0xA6, 0x09, 0x7E]);
//!
//! let mut deframer = Deframer::new();
//! let decoded: Vec<_> = deframer.push(&wire).collect();
//! assert_eq!(decoded, [Ok(frame)]);
//! ```

pub mod config;
pub mod fault;
pub mod frame;
pub mod link;

pub use frame::{Deframer, Frame, FrameError, NcpResetCode, encode_frame};
pub use link::{FailReason, Link, LinkConfig, LinkError, LinkEvent, LinkState, LinkStats, Role};
