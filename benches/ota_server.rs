//! The OTA server's hot path and footprint. Run with `cargo bench --bench ota_server`.
//!
//! - `server/image_block_request`: one Image Block Request through the whole server: ZCL
//!   decode, session lookup, pacing and admission, block slice, Image Block Response encode
//!   (`handle_frame` + `poll_transmit`), for a device in the middle of a download;
//! - `server/image_block_retry`: the same request again (same TSN): answered from memory;
//! - `server/poll_timeout_1000_sessions`: the next deadline with 1,000 devices downloading;
//! - memory per session with 1,000 concurrent sessions: the growth of the resident set,
//!   printed (criterion measures time only).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // benchmark setup

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use zigbee_otad::server::{DeviceAddr, ImageKey, OtaImage, OtaServer, ServerConfig};
use zigbee_otad::zcl::Ieee;

/// Resident memory of this process in bytes (Linux `/proc/self/statm`), or `None` elsewhere.
/// The crate forbids unsafe code, so a counting global allocator is not an option here.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

const KEY: ImageKey = ImageKey {
    manufacturer_code: 0x1189,
    image_type: 0x0042,
    file_version: 0x0200_0000,
};

fn block_request(tsn: u8, offset: u32) -> Vec<u8> {
    let mut frame = vec![0x01, tsn, 0x03, 0x00];
    frame.extend_from_slice(&KEY.manufacturer_code.to_le_bytes());
    frame.extend_from_slice(&KEY.image_type.to_le_bytes());
    frame.extend_from_slice(&KEY.file_version.to_le_bytes());
    frame.extend_from_slice(&offset.to_le_bytes());
    frame.push(64);
    frame
}

fn query(tsn: u8) -> Vec<u8> {
    let mut frame = vec![0x01, tsn, 0x01, 0x00];
    frame.extend_from_slice(&KEY.manufacturer_code.to_le_bytes());
    frame.extend_from_slice(&KEY.image_type.to_le_bytes());
    frame.extend_from_slice(&0x0100_0000u32.to_le_bytes());
    frame
}

fn device(i: u16) -> DeviceAddr {
    DeviceAddr {
        nwk: i,
        ieee: Some(Ieee(0x00AA_0000_0000_0000 | u64::from(i))),
        endpoint: 1,
    }
}

/// A server with a 200 KB image and `devices` devices each holding a download slot.
fn server_with(devices: u16, now: Instant) -> OtaServer {
    let image = OtaImage::new(KEY, Bytes::from(vec![0x5A; 200_000])).unwrap();
    let config = ServerConfig {
        max_concurrent_transfers: usize::from(devices),
        ..ServerConfig::default()
    };
    let mut server = OtaServer::new(config);
    server.set_images(vec![image.shared()], now);
    for i in 0..devices {
        server.handle_frame(device(i), &query(0), now);
        server.handle_frame(device(i), &block_request(1, 0), now);
        server.handle_frame(device(i), &block_request(2, 50), now);
        while server.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
    }
    server
}

fn bench(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // an origin for the virtual clock
    let now = Instant::now();
    let mut group = c.benchmark_group("server");

    // 256 distinct requests (TSN and offset differ), so no answer comes from the retry memory.
    let requests: Vec<Vec<u8>> = (0..=255u8)
        .map(|tsn| block_request(tsn, u32::from(tsn) * 50 + 100))
        .collect();
    let mut server = server_with(1, now);
    let dev = device(0);
    let mut i = 0usize;
    group.bench_function("image_block_request", |b| {
        b.iter(|| {
            i = (i + 1) & 0xFF;
            server.handle_frame(dev, black_box(&requests[i]), now);
            black_box(server.poll_transmit().unwrap());
        })
    });
    while server.poll_event().is_some() {}

    let retry = block_request(77, 5_000);
    server.handle_frame(dev, &retry, now);
    server.poll_transmit().unwrap();
    group.bench_function("image_block_retry", |b| {
        b.iter(|| {
            server.handle_frame(dev, black_box(&retry), now);
            black_box(server.poll_transmit().unwrap());
        })
    });

    let crowd = server_with(1_000, now);
    group.bench_function("poll_timeout_1000_sessions", |b| {
        b.iter(|| black_box(crowd.poll_timeout()))
    });
    group.finish();

    // Memory: resident growth while 1,000 sessions are created, each mid-download (a
    // session, its transfer, its remembered answers). The image is shared, not per session.
    let Some(before) = resident_bytes() else {
        println!("memory: /proc/self/statm unavailable; not measured");
        return;
    };
    let thousand = server_with(1_000, now + Duration::from_secs(1));
    let after = resident_bytes().unwrap_or(before);
    println!(
        "memory: 1,000 concurrent sessions grew the resident set by {} KiB: {} bytes per session",
        (after.saturating_sub(before)) / 1024,
        after.saturating_sub(before) / 1_000
    );
    drop(thousand);
}

criterion_group!(benches, bench);
criterion_main!(benches);
