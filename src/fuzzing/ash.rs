//! Fuzz entry points for the `ash` module: the deframer on arbitrary byte streams, and the link
//! state machine driven by arbitrary bytes, frames, sends, resets and clock jumps.

use std::time::{Duration, Instant};

use crate::ash::frame::MAX_DATA_LEN;
use crate::ash::{Deframer, Frame, Link, LinkConfig, NcpResetCode, Role, encode_frame};
use crate::wire::Reader;

/// Feeds `data` to a [`Deframer`] in chunks (the first byte picks the chunk size). Every frame
/// that comes out must encode to bytes that deframe to the same frame, and the deframer must
/// never panic whatever arrives.
pub fn fuzz_deframer(data: &[u8]) {
    let Some((&chunk_byte, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk_byte).max(1);
    let mut deframer = Deframer::new();
    for piece in stream.chunks(chunk) {
        for frame in deframer.push(piece).flatten() {
            let mut wire = Vec::new();
            encode_frame(&frame, &mut wire);
            assert_eq!(wire.len(), frame.encoded_len());
            let again: Vec<_> = Deframer::new().push(&wire).collect();
            assert_eq!(again, [Ok(frame)], "re-encoded frame does not round-trip");
        }
    }
}

/// Drives one [`Link`] (role from the first byte) with operations decoded from `data`: raw
/// input bytes, well-formed frames (so the fuzzer reaches the sequencing logic past the CRC),
/// sends, resets, NCP errors and clock jumps. Checks that every transmitted chunk deframes into
/// good frames only, that timers never point into the past after `handle_timeout`, and that
/// the send queue stays bounded.
pub fn fuzz_link(data: &[u8]) {
    let mut input = Reader::new(data);
    let Ok(role_byte) = input.u8("role") else {
        return;
    };
    let role = if role_byte & 1 == 0 {
        Role::Host
    } else {
        Role::Ncp
    };
    let config = LinkConfig {
        window: (role_byte >> 1) % 7 + 1,
        send_queue_capacity: 8,
        // The host's fast timer and failure floor, or UG101's values.
        ..if role_byte & 0x80 == 0 {
            LinkConfig::default()
        } else {
            LinkConfig::host()
        }
    };
    let max_unacknowledged = config.send_queue_capacity + usize::from(config.window);
    let Ok(mut link) = Link::new(role, config) else {
        return;
    };
    #[allow(clippy::disallowed_methods)] // Only offsets from this origin matter.
    let mut now = Instant::now();
    let mut check_deframer = Deframer::new();

    while let Ok(op) = input.u8("op") {
        match op % 8 {
            0 => {
                let len = usize::from(input.u8("len").unwrap_or(0));
                let bytes = input.take("bytes", len).unwrap_or_else(|_| input.rest());
                link.handle_input(bytes, now);
            }
            1 => {
                let frame = frame_from(&mut input);
                let mut wire = Vec::new();
                encode_frame(&frame, &mut wire);
                link.handle_input(&wire, now);
            }
            2 => {
                let millis = u64::from(input.u16("millis").unwrap_or(0));
                now += Duration::from_millis(millis);
                link.handle_timeout(now);
                if let Some(deadline) = link.poll_timeout() {
                    assert!(deadline > now, "timer in the past after handle_timeout");
                }
            }
            3 => {
                if let Some(deadline) = link.poll_timeout() {
                    now = now.max(deadline);
                    link.handle_timeout(now);
                }
            }
            4 => {
                let len = usize::from(input.u8("len").unwrap_or(0));
                let _ = link.send(vec![0xA5; len]);
            }
            5 => link.reset(now),
            6 => link.send_error(NcpResetCode(input.u8("code").unwrap_or(0))),
            _ => {}
        }
        while let Some(chunk) = link.poll_transmit(now) {
            for frame in check_deframer.push(&chunk) {
                assert!(frame.is_ok(), "link transmitted a bad frame: {frame:?}");
            }
        }
        while let Some(event) = link.poll_event() {
            if let crate::ash::LinkEvent::Received(payload) = event {
                assert!(payload.len() <= MAX_DATA_LEN);
            }
        }
        assert!(link.unacknowledged() <= max_unacknowledged);
    }
}

/// A well-formed frame built from fuzz bytes.
fn frame_from(input: &mut Reader<'_>) -> Frame {
    let kind = input.u8("kind").unwrap_or(0);
    let control = input.u8("control").unwrap_or(0);
    let frm_num = control & 7;
    let ack_num = (control >> 3) & 7;
    let flag = control & 0x40 != 0;
    match kind % 6 {
        0 => {
            let len = usize::from(input.u8("len").unwrap_or(0)).min(MAX_DATA_LEN);
            let payload = input
                .take("payload", len)
                .unwrap_or_else(|_| input.rest())
                .to_vec();
            Frame::Data {
                frm_num,
                re_tx: flag,
                ack_num,
                payload,
            }
        }
        1 => Frame::Ack {
            ack_num,
            n_rdy: flag,
        },
        2 => Frame::Nak {
            ack_num,
            n_rdy: flag,
        },
        3 => Frame::Rst,
        4 => Frame::RstAck {
            version: if flag { 1 } else { 2 },
            reset_code: NcpResetCode(input.u8("code").unwrap_or(0)),
        },
        _ => Frame::Error {
            version: 2,
            error_code: NcpResetCode(input.u8("code").unwrap_or(0)),
        },
    }
}
