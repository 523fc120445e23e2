//! Per-vendor rules through the real `OtaServer` (see `server::vendor_rules` and the README's
//! "Per-vendor rules"): what a device of that vendor sends, what it gets back.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zigbee_otad::server::{DeviceAddr, ImageKey, OtaImage, OtaServer, ServerConfig, ServerEvent};
use zigbee_otad::zcl::basic::BasicIdentity;
use zigbee_otad::zcl::ota::{
    ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageRequest, QueryNextImageResponse,
};
use zigbee_otad::zcl::{Ieee, ZclStatus};

use crate::server::{block_request, frame_bytes, pattern, upgrade_end};

const IEEE: Ieee = Ieee(0x54EF_4410_0000_0001);
const DEV: DeviceAddr = DeviceAddr {
    nwk: 0x4321,
    ieee: Some(IEEE),
    endpoint: 1,
};

#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

fn only_reply(server: &mut OtaServer) -> OtaFrame {
    let out: Vec<_> = std::iter::from_fn(|| server.poll_transmit()).collect();
    assert_eq!(out.len(), 1, "expected one reply, got {out:?}");
    OtaFrame::decode(&out[0].zcl_bytes).unwrap()
}

fn query(tsn: u8, key: ImageKey, current_file_version: u32) -> Vec<u8> {
    frame_bytes(
        tsn,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: key.manufacturer_code,
            image_type: key.image_type,
            current_file_version,
            hardware_version: None,
        }),
    )
}

fn server_with(key: ImageKey, len: usize) -> (OtaServer, Vec<u8>, Instant) {
    let bytes = pattern(len, 7);
    let image = OtaImage::new(key, Bytes::from(bytes.clone()))
        .unwrap()
        .shared();
    let t0 = start();
    let mut server = OtaServer::new(ServerConfig::default());
    server.set_images(vec![image], t0);
    (server, bytes, t0)
}

/// herdsman answers a Legrand block request at offset 50 for 12 bytes with 64 bytes from
/// offset 78, meaning to overflow the device's buffer and reset its OTA stack (zigbee-OTA
/// #328). Decided: not copied. It breaks ZCL8 §11.13.8 (more than MaximumDataSize, another
/// offset than asked) and relies on corrupting the device's memory; the device gets exactly
/// what it asked for, and a stalled Legrand transfer is left to its 30-minute idle timeout and
/// its own restart.
#[test]
fn legrand_at_offset_50_for_12_bytes_gets_exactly_that() {
    let key = ImageKey {
        manufacturer_code: 0x1021,
        image_type: 0x0011,
        file_version: 0x0053_43FF,
    };
    let (mut server, bytes, t0) = server_with(key, 600);
    server.handle_frame(DEV, &query(1, key, 0x0050_0000), t0);
    only_reply(&mut server);
    server.handle_frame(DEV, &block_request(2, key, 50, 12, None), t0);
    let OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
        file_offset, data, ..
    }) = only_reply(&mut server).command
    else {
        panic!("not a block");
    };
    assert_eq!(file_offset, 50);
    assert_eq!(data.to_vec(), bytes[50..62].to_vec());
}

/// The Aqara E1 curtain driver reports a wrong version in its query; the server judges it by
/// the one its LUMI cluster reported (carried in its identity), and offers nothing before.
#[test]
fn an_aqara_curtain_is_judged_by_its_lumi_version() {
    let key = ImageKey {
        manufacturer_code: 0x115F,
        image_type: 0x2000,
        file_version: 0x0000_001C,
    };
    let (mut server, _, t0) = server_with(key, 300);
    let curtain = BasicIdentity {
        manufacturer_name: Some("LUMI".into()),
        model_id: Some("lumi.curtain.acn003".into()),
        ..BasicIdentity::default()
    };
    let no_image = OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus {
        status: ZclStatus::NO_IMAGE_AVAILABLE,
    });
    // It says 0x19 (older than the image), but its real version is not known yet.
    server.set_device_identity(IEEE, curtain.clone());
    server.handle_frame(DEV, &query(1, key, 0x19), t0);
    assert_eq!(only_reply(&mut server).command, no_image);
    // Its LUMI cluster says it already runs 0x1C: still nothing (no reinstall).
    server.set_device_identity(
        IEEE,
        BasicIdentity {
            vendor_file_version: Some(0x1C),
            ..curtain.clone()
        },
    );
    server.handle_frame(DEV, &query(2, key, 0x19), t0 + Duration::from_secs(10));
    assert_eq!(only_reply(&mut server).command, no_image);
    // It runs 0x1B: the image is offered.
    server.set_device_identity(
        IEEE,
        BasicIdentity {
            vendor_file_version: Some(0x1B),
            ..curtain
        },
    );
    server.handle_frame(DEV, &query(3, key, 0x19), t0 + Duration::from_secs(20));
    assert!(matches!(
        only_reply(&mut server).command,
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success { file_version, .. })
            if file_version == 0x1C
    ));
}

/// Its upgrade is confirmed by the LUMI version too: not judged while that is unknown (the
/// version in its queries would call it "not applied"), confirmed once it is reported.
#[test]
fn an_aqara_curtain_upgrade_is_confirmed_by_its_lumi_version() {
    let key = ImageKey {
        manufacturer_code: 0x115F,
        image_type: 0x2000,
        file_version: 0x0000_001C,
    };
    let (mut server, _, t0) = server_with(key, 300);
    let curtain = |vendor_file_version| BasicIdentity {
        model_id: Some("lumi.curtain.acn003".into()),
        vendor_file_version,
        ..BasicIdentity::default()
    };
    server.set_device_identity(IEEE, curtain(Some(0x1B)));
    server.handle_frame(DEV, &query(1, key, 0x19), t0);
    only_reply(&mut server);
    for (tsn, offset) in (2u8..).zip((0..300).step_by(50)) {
        server.handle_frame(DEV, &block_request(tsn, key, offset, 50, None), t0);
        only_reply(&mut server);
    }
    server.handle_frame(DEV, &upgrade_end(20, ZclStatus::SUCCESS, key), t0);
    only_reply(&mut server);
    while server.poll_event().is_some() {}

    // Rebooted: its queries still carry a wrong version, its real one is not reported yet.
    server.set_device_identity(IEEE, curtain(None));
    let later = t0 + Duration::from_secs(3600);
    server.handle_frame(DEV, &query(21, key, 0x20), later);
    only_reply(&mut server);
    let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        !events.iter().any(|e| matches!(
            e,
            ServerEvent::UpgradeConfirmed { .. } | ServerEvent::UpgradeNotApplied { .. }
        )),
        "{events:?}"
    );
    // Reported: confirmed.
    server.set_device_identity(IEEE, curtain(Some(0x1C)));
    server.handle_frame(DEV, &query(22, key, 0x20), later + Duration::from_secs(10));
    only_reply(&mut server);
    let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ServerEvent::UpgradeConfirmed { image, .. } if *image == key)),
        "{events:?}"
    );
}
