//! Fuzz entry points for the `zcl` module.

use crate::zcl::ota::{OtaCommand, OtaFrame};
use crate::zcl::{ZclHeader, ZclStatus};

/// Decodes `data` as an OTA-cluster frame, both as a tool would ([`OtaFrame::decode`]) and as
/// the server does ([`OtaFrame::decode_request`]), and checks the invariants:
/// - a decoded frame re-encodes to exactly `data`, and `encoded_len` agrees;
/// - `Display` and the JSON report never fail;
/// - the server side accepts a subset of what the tool side accepts, with the same result;
/// - the troubleshooting decode ([`OtaFrame::inspect`]) reads every frame the strict decode
///   reads, to the same frame, and fails only where the strict decode fails too; a frame it
///   reads with no refused violation is exactly the strict decode's result;
/// - a refused request that gets a Default Response gets one that decodes as such, with the
///   request's TSN and the error's status.
#[allow(clippy::panic)] // a broken invariant must crash the fuzzer
pub fn decode_frame(data: &[u8]) {
    let decoded = OtaFrame::decode(data);
    if let Ok(frame) = &decoded {
        let mut out = Vec::with_capacity(data.len());
        frame.encode(&mut out);
        if out != data {
            panic!("re-encoding changed the frame: {data:02X?} -> {out:02X?}");
        }
        if frame.encoded_len() != data.len() {
            panic!(
                "encoded_len {} for {} bytes",
                frame.encoded_len(),
                data.len()
            );
        }
        let _ = frame.to_string();
        if serde_json::to_string(frame).is_err() {
            panic!("JSON report failed for {frame:?}");
        }
    }
    match (OtaFrame::inspect(data), &decoded) {
        (Ok((frame, violations)), strict) => {
            let refused = violations.iter().any(|v| v.refused);
            match strict {
                Ok(strict) if refused || strict != &frame => {
                    panic!("inspect and decode disagree on {data:02X?}")
                }
                Err(_) if !refused => panic!("inspect read what decode refused: {data:02X?}"),
                _ => {}
            }
            if violations.iter().any(|v| v.offset >= data.len()) {
                panic!("a violation points past the frame: {violations:?}");
            }
        }
        (Err(_), Ok(_)) => panic!("decode read what inspect could not: {data:02X?}"),
        (Err(_), Err(_)) => {}
    }
    match OtaFrame::decode_request(data) {
        Ok(request) => {
            if decoded.as_ref().ok() != Some(&request) {
                panic!("decode_request accepted what decode did not: {data:02X?}");
            }
        }
        Err(refused) => {
            let status = refused.status();
            if let Some(reply) = refused.default_response() {
                let mut out = Vec::new();
                reply.encode(&mut out);
                let parsed = OtaFrame::decode(&out).ok();
                let header = ZclHeader::decode(data).ok().map(|(h, _)| h);
                match (parsed, header) {
                    (Some(parsed), Some(header))
                        if parsed.header.tsn == header.tsn
                            && matches!(
                                parsed.command,
                                OtaCommand::DefaultResponse(r) if r.status == status
                                    && r.command_id == header.command_id
                            )
                            && status != ZclStatus::SUCCESS => {}
                    other => panic!("bad Default Response {other:?} for {data:02X?}"),
                }
            }
        }
    }
}

/// Decodes `data` as a Basic cluster answer to an identity read, and as a read request a
/// simulated device answers; checks that an identity decoded from a response re-encodes to a
/// response that decodes to the same identity.
#[allow(clippy::panic)] // a broken invariant must crash the fuzzer
pub fn decode_basic(data: &[u8]) {
    use crate::zcl::basic;
    if let Ok((header, identity)) = basic::decode_read_response(data) {
        let request = basic::read_identity_request(header.tsn);
        let Some(again) = basic::encode_read_response(&request, &identity) else {
            panic!("no answer to our own read request");
        };
        match basic::decode_read_response(&again) {
            Ok((_, back)) if back == identity => {}
            other => panic!("{identity:?} re-encoded to {again:02X?}, decoded as {other:?}"),
        }
    }
    let _ = basic::encode_read_response(data, &basic::BasicIdentity::default());
}

/// Runs the LUMI cluster (0xFCC0) version reader on arbitrary bytes: it never panics, and a
/// version it finds is never 0 (0 means none).
pub fn decode_lumi(data: &[u8]) {
    if let Ok(Some(version)) = crate::zcl::lumi::reported_file_version(data) {
        assert_ne!(version, 0);
    }
}
