//! Fuzz entry points for the `znp` module.

use crate::znp::command::Message;
use crate::znp::frame::{Decoder, Frame};

/// Arbitrary bytes as a ZNP serial stream, fed in two pieces split where the first byte says.
///
/// Invariants: nothing panics; the decoder consumes everything it is given (it never holds more
/// than one incomplete frame's worth); every frame it yields re-encodes to a frame that decodes
/// to itself; a frame whose DATA decodes to a [`Message`] re-encodes to exactly the same DATA.
pub fn decode_stream(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split).min(stream.len());
    let (first, second) = stream.split_at(cut);
    let mut decoder = Decoder::default();
    let mut frames = Vec::new();
    for piece in [first, second] {
        decoder.push(piece);
        while let Some(item) = decoder.next_frame() {
            if let Ok(frame) = item {
                frames.push(frame);
            }
        }
    }
    assert!(
        decoder.buffered() < crate::znp::frame::MAX_PAYLOAD + crate::znp::frame::OVERHEAD,
        "the decoder holds {} bytes",
        decoder.buffered()
    );
    for frame in frames {
        let bytes = frame.to_bytes();
        assert_eq!(Frame::decode(&bytes).as_ref(), Ok(&frame));
        if let Ok(message) = Message::decode(&frame) {
            assert_eq!(
                message.payload(),
                frame.payload,
                "decode/encode changed {message:?}"
            );
        }
    }
}
