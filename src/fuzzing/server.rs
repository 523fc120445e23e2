//! Fuzz entry point for the `server` module: arbitrary ZCL payloads, well-formed requests with
//! arbitrary fields, and arbitrary timings from four devices, fed to one `OtaServer`.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::server::{
    DeviceAddr, DeviceKey, ImageKey, NotifyTarget, OtaImage, OtaServer, ServerConfig,
};
use crate::wire::PutLe;
use crate::zcl::Ieee;
use crate::zcl::ota::{ImageBlockResponse, OtaCommand, OtaFrame};

const KEY: ImageKey = ImageKey {
    manufacturer_code: 0x1189,
    image_type: 0x0042,
    file_version: 0x0200_0000,
};

fn image(len: usize, salt: u8) -> OtaImage {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect();
    #[allow(clippy::expect_used)] // a fixed, small image
    OtaImage::new(KEY, Bytes::from(bytes)).expect("small image")
}

/// Takes up to `n` bytes from the front of `rest`.
fn take(n: usize, rest: &mut &[u8]) -> Vec<u8> {
    let n = n.min(rest.len());
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    head.to_vec()
}

fn device(index: u8) -> DeviceAddr {
    DeviceAddr {
        nwk: 0x1000 + u16::from(index),
        // One device without a known IEEE address: sessions keyed by network address.
        ieee: (index != 3).then_some(Ieee(0xA0 + u64::from(index))),
        endpoint: 1,
    }
}

/// A well-formed client request with fuzzed fields, so that the fuzzer reaches deep states
/// without having to discover the frame layout first.
fn templated_request(kind: u8, tsn: u8, offset: u32, max: u8, extra: u16) -> Vec<u8> {
    let mut out = vec![if extra & 1 == 1 { 0x11 } else { 0x01 }, tsn];
    let file = |out: &mut Vec<u8>| {
        out.put_u16_le(KEY.manufacturer_code);
        out.put_u16_le(KEY.image_type);
        out.put_u32_le(KEY.file_version ^ u32::from(extra >> 15));
    };
    match kind % 4 {
        0 => {
            out.extend_from_slice(&[0x01, 0x00]);
            file(&mut out);
        }
        1 => {
            out.extend_from_slice(&[0x03, 0x02]);
            file(&mut out);
            out.put_u32_le(offset);
            out.put_u8_le(max);
            out.put_u16_le(extra);
        }
        2 => {
            out.extend_from_slice(&[0x04, 0x00]);
            file(&mut out);
            out.put_u32_le(offset);
            out.put_u8_le(max);
            out.put_u16_le(extra % 2048);
            out.put_u16_le(extra % 512);
        }
        _ => {
            out.extend_from_slice(&[0x06, if extra & 2 == 0 { 0x00 } else { 0x96 }]);
            file(&mut out);
        }
    }
    out
}

/// Drives the server with `data` and checks, after every step, that:
/// - every frame it sends decodes, and fits the coordinator's payload;
/// - every image block is a non-empty slice of one of the images the catalog ever held, at
///   its offset;
/// - the next deadline is in the future once the due work is done (no busy loop).
#[allow(clippy::panic, clippy::indexing_slicing)] // a broken invariant must crash the fuzzer
pub fn drive(data: &[u8]) {
    let Some((&payload_byte, mut rest)) = data.split_first() else {
        return;
    };
    let max_aps_payload = 19 + payload_byte % 109;
    let images = [image(700, 0), image(700, 1)];
    let config = ServerConfig {
        max_concurrent_transfers: 2,
        ..ServerConfig::default()
    };
    let mut server = OtaServer::new(config);
    server.set_max_aps_payload(max_aps_payload);
    #[allow(clippy::disallowed_methods)] // the fuzzer's only clock read: an origin
    let mut now = Instant::now();
    server.set_images(vec![images[0].clone().shared()], now);
    let mut tsn = 0u8;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let who = device(op & 3);
        match op >> 2 {
            0..=15 => {
                let len = take(1, &mut rest).first().copied().unwrap_or(0) % 48;
                let frame = take(usize::from(len), &mut rest);
                server.handle_frame(who, &frame, now);
            }
            16..=47 => {
                let f = take(7, &mut rest);
                let byte = |i: usize| f.get(i).copied().unwrap_or(0);
                let offset = u32::from(u16::from_le_bytes([byte(1), byte(2)]));
                let extra = u16::from_le_bytes([byte(4), byte(5)]);
                tsn = tsn.wrapping_add(byte(6) % 2);
                let request = templated_request(byte(0), tsn, offset, byte(3), extra);
                server.handle_frame(who, &request, now);
            }
            48..=55 => {
                let f = take(2, &mut rest);
                let ms = u64::from(u16::from_le_bytes([
                    f.first().copied().unwrap_or(0),
                    f.get(1).copied().unwrap_or(0),
                ]));
                now += Duration::from_millis(ms * 64);
                for _ in 0..4 {
                    match server.poll_timeout() {
                        Some(t) if t <= now => server.handle_timeout(now),
                        _ => break,
                    }
                    check_output(&mut server, &images, max_aps_payload);
                }
                if server.poll_timeout().is_some_and(|t| t <= now) {
                    panic!("deadline still due after handling it: busy loop");
                }
            }
            56..=59 => {
                let which = usize::from(op & 1);
                server.set_images(vec![images[which].clone().shared()], now);
            }
            60..=61 => {
                server.notify(NotifyTarget::Device(who), now);
            }
            62 => {
                server.notify(NotifyTarget::Broadcast, now);
            }
            _ => {
                server.upgrade_now(who.key(), now);
                let _ = server.upgrade_now(DeviceKey::Nwk(who.nwk), now);
            }
        }
        check_output(&mut server, &images, max_aps_payload);
    }
    for transfer in server.progress().iter().chain(server.history()) {
        if serde_json::to_string(transfer).is_err() {
            panic!("progress does not serialise: {transfer:?}");
        }
    }
}

#[allow(clippy::panic, clippy::indexing_slicing)]
fn check_output(server: &mut OtaServer, images: &[OtaImage; 2], max_aps_payload: u8) {
    while let Some(out) = server.poll_transmit() {
        if out.zcl_bytes.len() > usize::from(max_aps_payload) {
            panic!(
                "{} bytes exceed the coordinator's {max_aps_payload}",
                out.zcl_bytes.len()
            );
        }
        let frame = match OtaFrame::decode(&out.zcl_bytes) {
            Ok(frame) => frame,
            Err(error) => panic!("the server sent an undecodable frame ({error}): {out:?}"),
        };
        if let OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
            file_offset,
            data,
            ..
        }) = &frame.command
        {
            let start = *file_offset as usize;
            let end = start + data.len();
            let inside = images.iter().any(|image| {
                image
                    .read_all()
                    .ok()
                    .and_then(|b| b.get(start..end).map(|d| d == &data[..]))
                    == Some(true)
            });
            if data.is_empty() || !inside {
                panic!("block at {start} of {} bytes is not image data", data.len());
            }
        }
    }
    while server.poll_event().is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drives_a_whole_download_and_odd_inputs() {
        // A query, then block requests walking the image, with waits between.
        let mut data = vec![60];
        data.extend_from_slice(&[16 << 2, 0, 0, 0, 0, 0, 0, 0]);
        for offset in (0u16..700).step_by(40) {
            let [lo, hi] = offset.to_le_bytes();
            data.extend_from_slice(&[(16 << 2) | 1, 1, lo, hi, 64, 0, 0, 1]);
            data.extend_from_slice(&[48 << 2, 10, 0]);
        }
        data.extend_from_slice(&[0, 5, 0x01, 0x02, 0x03, 0xFF, 0x00]);
        data.extend_from_slice(&[56 << 2, 62 << 2, 63 << 2, 48 << 2, 0xFF, 0xFF]);
        drive(&data);
        drive(&[]);
        drive(&[0xFF; 64]);
    }
}
