//! Fuzz entry points for the simulated NCP's stack tables ([`crate::sim::stack`]), which parse
//! the parameters of every frame a host may send that the `ezsp` module does not decode.

use crate::ezsp::EzspVersion;
use crate::ezsp::frame::FrameId;
use crate::sim::stack::{StackTables, StackView};

/// The first byte picks the version (8..=17) and whether the network is up, the next two the
/// frame id (little-endian), the rest are the parameters; then the same tables answer the
/// next chunk, so state from one frame (keys, multicast entries) meets the next.
///
/// Invariants: no panic; an answer is never longer than an EZSP frame can carry.
pub fn stack_answer(data: &[u8]) {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let span = EzspVersion::MAX - EzspVersion::MIN + 1;
    let Ok(version) = EzspVersion::new(EzspVersion::MIN + selector % span) else {
        return;
    };
    let children = [(0x1234, [1, 2, 3, 4, 5, 6, 7, 8])];
    let view = StackView {
        version,
        network_up: selector & 0x80 != 0,
        eui64: [8, 7, 6, 5, 4, 3, 2, 1],
        children: &children,
        endpoints: &[1, 242],
    };
    let mut tables = StackTables::new([0x5A; 16]);
    while let [low, high, tail @ ..] = rest {
        let frame_id = u16::from_le_bytes([*low, *high]);
        let length = usize::from(tail.first().copied().unwrap_or(0) % 64);
        let parameters = tail.get(1..).unwrap_or_default();
        let (parameters, next) = parameters.split_at(length.min(parameters.len()));
        if let Some(answer) = tables.answer(&view, FrameId(frame_id), parameters) {
            assert!(
                answer.parameters.len() <= 250,
                "answer too long: {answer:?}"
            );
        }
        rest = next;
    }
}
