//! TI Z-Stack's ZNP serial protocol (MT over UART, PROTOCOLS.md §3), sans-IO: the
//! transport [`frame`], the typed [`command`]s this project uses, and the [`host`] state machine
//! a tokio driver ([`crate::coordinator::znp`]) runs over a serial port.
//!
//! Supported firmware: Z-Stack 3.x.0 (CC26x2/CC13x2, product id 2) and Z-Stack 3.0.x
//! (CC253x, product id 1) both start with BDB commissioning and keep their network in the NV
//! items read here. Z-Stack Home 1.2 (CC2530/CC2531, no APP_CNF subsystem) is refused at
//! start-up with a message that says so: its NV layout differs and it cannot run the OTA
//! endpoint reliably (see [`host::StartupError::UnsupportedFirmware`]).

mod codec;
pub mod command;
pub mod frame;
pub mod host;
pub mod nv;

use command::{DecodeError, Message};
use frame::{Decoder, Frame, FrameError};

/// One item of a captured byte stream: a frame with its decoded message, or what was skipped.
pub type Decoded = Result<(Frame, Result<Message, DecodeError>), FrameError>;

/// Every frame in a capture (as `decode znp` prints them), garbage and bad frames included.
pub fn decode_stream(bytes: &[u8]) -> Vec<Decoded> {
    let mut decoder = Decoder::default();
    decoder.push(bytes);
    let mut out: Vec<Decoded> = std::iter::from_fn(|| decoder.next_frame())
        .map(|item| {
            item.map(|frame| {
                let message = Message::decode(&frame);
                (frame, message)
            })
        })
        .collect();
    if decoder.buffered() > 0 {
        out.push(Err(FrameError::Incomplete {
            have: decoder.buffered(),
        }));
    }
    out
}

/// One decoded item as JSON for `decode znp --json`.
pub fn decoded_json(item: &Decoded) -> serde_json::Value {
    match item {
        Ok((frame, message)) => serde_json::json!({
            "type": format!("{:?}", frame.frame_type),
            "subsystem": format!("{:?}", frame.subsystem),
            "id": frame.id,
            "payload": crate::wire::hex_spaced(&frame.payload),
            "message": match message {
                Ok(message) => serde_json::Value::String(format!("{message:?}")),
                Err(_) => serde_json::Value::Null,
            },
            "error": match message {
                Ok(_) => serde_json::Value::Null,
                Err(e) => serde_json::Value::String(e.to_string()),
            },
        }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}
