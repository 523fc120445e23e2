//! Decode and encode of the two frames an OTA transfer is made of: the Image Block Request a
//! device sends for every block, and the Image Block Response (50 data bytes) the server sends
//! back. Run with `cargo bench --bench zcl_codec`.

#![allow(clippy::unwrap_used)] // benchmark setup: the fixed inputs are known to decode

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zigbee_otad::zcl::ota::{BlockData, OtaCommand};
use zigbee_otad::zcl::ota::{ImageBlockResponse, OtaFrame};

/// A real Image Block Request (Legrand, minimum block period present), from the shared
/// testdata's `block-req-legrand-067773`.
const BLOCK_REQUEST: [u8; 19] = [
    0x01, 0x89, 0x03, 0x02, 0x21, 0x10, 0x11, 0x00, 0x03, 0x42, 0x5A, 0x00, 0x28, 0x00, 0x00, 0x00,
    0x16, 0x14, 0x00,
];

fn block_response() -> OtaFrame {
    let request = OtaFrame::decode(&BLOCK_REQUEST).unwrap();
    let data: Vec<u8> = (0u8..50).collect();
    request.reply(OtaCommand::ImageBlockResponse(
        ImageBlockResponse::Success {
            manufacturer_code: 0x1021,
            image_type: 0x0011,
            file_version: 0x005A_4203,
            file_offset: 40,
            data: BlockData::new(&data).unwrap(),
        },
    ))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("zcl");

    group.throughput(Throughput::Bytes(BLOCK_REQUEST.len() as u64));
    group.bench_function("decode_request/image_block_request", |b| {
        b.iter(|| OtaFrame::decode_request(black_box(&BLOCK_REQUEST)).unwrap())
    });
    let request = OtaFrame::decode(&BLOCK_REQUEST).unwrap();
    group.bench_function("encode/image_block_request", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            black_box(&request).encode(&mut out);
            black_box(out.len())
        })
    });

    let response = block_response();
    let mut response_bytes = Vec::new();
    response.encode(&mut response_bytes);
    group.throughput(Throughput::Bytes(response_bytes.len() as u64));
    group.bench_function("decode/image_block_response_50", |b| {
        b.iter(|| OtaFrame::decode(black_box(&response_bytes)).unwrap())
    });
    group.bench_function("encode/image_block_response_50", |b| {
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            out.clear();
            black_box(&response).encode(&mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
