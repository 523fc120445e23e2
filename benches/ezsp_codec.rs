//! EZSP codec speed: encoding a `sendUnicast` frame (every OTA block goes out this way) and
//! decoding an `incomingMessageHandler` callback (every device request comes in this way), in
//! the v13 and v14 layouts.

// A benchmark whose fixture fails to encode or decode should stop loudly.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use zigbee_otad::ezsp::EzspVersion;
use zigbee_otad::ezsp::command::{Callback, Command, Frame, IncomingMessageHandler, SendUnicast};
use zigbee_otad::ezsp::types::{
    ApsFrame, ApsOptions, Ieee, IncomingMessageType, Nwk, OutgoingMessageType,
};

fn ota_aps() -> ApsFrame {
    ApsFrame {
        profile_id: 0x0104,
        cluster_id: 0x0019,
        source_endpoint: 1,
        destination_endpoint: 1,
        options: ApsOptions::RETRY | ApsOptions::ENABLE_ROUTE_DISCOVERY,
        group_id: 0,
        sequence: 0x10,
    }
}

/// An Image Block Response carrying 50 bytes of image data (zigpy's default block size).
fn image_block_response() -> Vec<u8> {
    let mut zcl = vec![0x19, 0x22, 0x05, 0x00, 0x5F, 0x11, 0x01, 0x00];
    zcl.extend_from_slice(&0x1000_0010u32.to_le_bytes());
    zcl.extend_from_slice(&0x0000_0400u32.to_le_bytes());
    zcl.push(50);
    zcl.extend((0..50u8).map(|i| i.wrapping_mul(7)));
    zcl
}

fn bench_send_unicast(c: &mut Criterion) {
    let command = Command::SendUnicast(SendUnicast {
        message_type: OutgoingMessageType::DIRECT,
        index_or_destination: Nwk(0x1234),
        aps_frame: ota_aps(),
        message_tag: 0x42,
        message_contents: image_block_response(),
    });
    for version in [EzspVersion::V13, EzspVersion::V14] {
        let mut out = Vec::with_capacity(128);
        c.bench_function(
            &format!("ezsp {version} encode sendUnicast (50-byte block)"),
            |b| {
                b.iter(|| {
                    out.clear();
                    black_box(&command)
                        .encode_frame(version, black_box(9), &mut out)
                        .unwrap();
                    black_box(out.len())
                })
            },
        );
    }
}

fn bench_incoming_message(c: &mut Criterion) {
    // Query Next Image Request from 0x1234.
    let qnir = vec![
        0x01, 0x21, 0x01, 0x00, 0x5F, 0x11, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00,
    ];
    for version in [EzspVersion::V13, EzspVersion::V14] {
        let wide = version.uses_sl_status();
        let callback = Callback::IncomingMessageHandler(IncomingMessageHandler {
            message_type: IncomingMessageType::UNICAST,
            aps_frame: ota_aps(),
            last_hop_lqi: 0xFF,
            last_hop_rssi: -40,
            sender: Nwk(0x1234),
            sender_eui64: wide.then_some(Ieee(0x0011_2233_4455_6677)),
            binding_index: 0xFF,
            address_index: 0xFF,
            timestamp: wide.then_some(0),
            message_contents: qnir.clone(),
        });
        let mut frame = Vec::new();
        callback.encode_frame(version, 5, &mut frame).unwrap();
        c.bench_function(
            &format!("ezsp {version} decode incomingMessageHandler"),
            |b| b.iter(|| Frame::decode(version, black_box(&frame)).unwrap()),
        );
    }
}

criterion_group!(benches, bench_send_unicast, bench_incoming_message);
criterion_main!(benches);
