//! Fuzz entry points for the `ezsp` module.

use std::time::Instant;

use crate::ezsp::command::{Frame, VersionResponse};
use crate::ezsp::frame::{FrameFormat, FrameHeader};
use crate::ezsp::{EzspVersion, Session, SessionConfig};

/// The first byte picks the protocol version (8..=17); the rest is one EZSP frame.
///
/// Invariants: no decoder panics; a frame that decodes re-encodes to exactly the same bytes
/// (decoding keeps every bit, unknown values included); a negotiated [`Session`] fed the frame
/// never panics and never leaves more commands pending than it had.
pub fn decode_frame(data: &[u8]) {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let span = EzspVersion::MAX - EzspVersion::MIN + 1;
    let Ok(version) = EzspVersion::new(EzspVersion::MIN + selector % span) else {
        return;
    };

    for format in [
        FrameFormat::Legacy,
        FrameFormat::Intermediate,
        FrameFormat::Extended,
    ] {
        let _ = FrameHeader::decode(format, frame);
    }

    if let Ok(decoded) = Frame::decode(version, frame) {
        let mut out = Vec::with_capacity(frame.len());
        let result = decoded.encode(version, &mut out);
        assert!(
            result.is_ok(),
            "a decoded frame failed to re-encode: {result:?}"
        );
        assert_eq!(out, frame, "decode/encode changed the frame: {decoded:?}");
    }

    #[allow(clippy::disallowed_methods)] // the fuzzer needs some Instant; its value is irrelevant
    let now = Instant::now();
    let mut session = Session::new(SessionConfig {
        desired_version: version.get(),
        ..SessionConfig::default()
    });
    session.start(now);
    let mut answer = Vec::new();
    VersionResponse {
        protocol_version: version.get(),
        stack_type: 2,
        stack_version: 0,
    }
    .encode_legacy_frame(0, &mut answer);
    let negotiated = session.handle_input(&answer, now);
    assert!(negotiated.is_ok() && session.version() == Some(version));
    let before = session.pending_count();
    let _ = session.handle_input(frame, now);
    assert!(session.pending_count() <= before);
}
