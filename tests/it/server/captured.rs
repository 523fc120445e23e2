//! Byte-for-byte against captures and the reference: a real ubisys session, Image Notify frames,
//! every corpus image served exactly, zigpy's encodings.

use super::*;

fn corpus_image(dir: &std::path::Path, name: &str) -> Option<zigbee_otad::ota::OtaFile> {
    let bytes = std::fs::read(dir.join("ota-corpus/images").join(name)).ok()?;
    zigbee_otad::ota::OtaFile::parse(bytes).ok()
}

fn captured_frame(dir: &std::path::Path, id: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(dir.join("frames/zcl-ota-frames.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let frames = json["frames"].as_array().unwrap();
    let frame = frames.iter().find(|f| f["id"] == id).unwrap();
    unhex(frame["hex"].as_str().unwrap())
}

/// zigbee-herdsman's answers to a ubisys S1, captured on the air, are what this server sends
/// for the same requests: the two ubisys files share manufacturer, type and version and are
/// told apart by the hardware version.
#[test]
fn ubisys_frames_match_a_real_capture_byte_for_byte() {
    let Some(dir) = crate::common::shared_testdata() else {
        return;
    };
    let files = [
        "10F2-7B32-0000-0001-02600460-spo-fms-rev0-1.ota.zigbee",
        "10F2-7B32-0002-0007-02600460-spo-fms.ota.zigbee",
    ];
    let images: Vec<_> = files
        .iter()
        .map(|name| {
            let file = corpus_image(&dir, name).expect("ubisys images parse");
            OtaImage::from_file(&file).unwrap().shared()
        })
        .collect();
    assert_eq!(images[0].key(), images[1].key());
    assert_ne!(images[0].read_all().unwrap(), images[1].read_all().unwrap());
    let (mut server, t0) = server_with(ServerConfig::default(), images.clone());
    let ubisys = ImageKey {
        manufacturer_code: 0x10F2,
        image_type: 0x7B32,
        file_version: 0x0260_0460,
    };
    for (hardware_version, image) in [(1u16, &images[0]), (2, &images[1])] {
        let device = DeviceAddr {
            nwk: 0x7000 + hardware_version,
            ieee: Some(Ieee(0x001F_EE00_0000_0000 + u64::from(hardware_version))),
            endpoint: 1,
        };
        let q = frame_bytes(
            0x18,
            OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
                field_control: 1,
                manufacturer_code: 0x10F2,
                image_type: 0x7B32,
                current_file_version: 0x0250_0000,
                hardware_version: Some(hardware_version),
            }),
        );
        server.handle_frame(device, &q, t0);
        let out = replies(&mut server);
        assert_eq!(
            out[0].zcl_bytes.as_ref(),
            captured_frame(&dir, "qni-rsp-ubisys-s1")
        );
        server.handle_frame(device, &block_request(0x19, ubisys, 0, 50, None), t0);
        let out = replies(&mut server);
        assert_eq!(
            out[0].zcl_bytes.as_ref(),
            captured_frame(&dir, "block-rsp-ubisys-first-block")
        );
        server.handle_frame(device, &block_request(0x1A, ubisys, 50, 6, None), t0);
        let out = replies(&mut server);
        assert_eq!(
            out[0].zcl_bytes.as_ref(),
            captured_frame(&dir, "block-rsp-ubisys-6-bytes")
        );
        // Past the shared header the two files differ: each device gets its own.
        let (first, second) = (images[0].read_all().unwrap(), images[1].read_all().unwrap());
        let offset = first
            .iter()
            .zip(second.iter())
            .position(|(a, b)| a != b)
            .unwrap() as u32;
        server.handle_frame(device, &block_request(0x1B, ubisys, offset, 50, None), t0);
        let (got, data) = block_of(&only_reply(&mut server));
        assert_eq!(got, offset);
        let start = offset as usize;
        assert_eq!(data, image.read_all().unwrap()[start..start + data.len()]);
    }
}

#[test]
fn image_notify_matches_captured_frames() {
    let Some(dir) = crate::common::shared_testdata() else {
        return;
    };
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    let captured = captured_frame(&dir, "image-notify-tuya-z2m");
    // Our TSNs count from 0; the capture's is 3.
    for _ in 0..=3 {
        assert!(server.notify(NotifyTarget::Device(DEV), t0));
    }
    let out = replies(&mut server);
    assert_eq!(out[3].zcl_bytes.as_ref(), captured);
}

/// Every corpus file the `ota` module accepts is served whole, byte for byte, from its magic
/// for `image_size` bytes, by a device walking it block by block.
#[test]
fn every_corpus_image_is_served_byte_exact() {
    let Some(dir) = crate::common::shared_testdata() else {
        return;
    };
    let mut served = 0;
    let mut names: Vec<_> = std::fs::read_dir(dir.join("ota-corpus/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let Some(file) = corpus_image(&dir, &name) else {
            continue;
        };
        let image = OtaImage::from_file(&file).unwrap().shared();
        let key = image.key();
        let (mut server, t0) = server_with(
            ServerConfig {
                allow_downgrade: true,
                allow_reinstall: true,
                ..ServerConfig::default()
            },
            vec![image.clone()],
        );
        let device = DeviceAddr {
            ieee: image.destination().or(DEV.ieee),
            ..DEV
        };
        let q = frame_bytes(
            1,
            OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
                field_control: 1,
                manufacturer_code: key.manufacturer_code,
                image_type: key.image_type,
                current_file_version: 0,
                hardware_version: image.hardware_versions().map(|(min, _)| min),
            }),
        );
        server.handle_frame(device, &q, t0);
        let offer = only_reply(&mut server);
        assert!(
            matches!(offer.command, OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success { image_size, .. }) if image_size as usize == file.image_bytes().len()),
            "{name}: {offer:?}"
        );
        let mut received = Vec::with_capacity(file.image_bytes().len());
        let mut tsn = 2u8;
        while received.len() < file.image_bytes().len() {
            let request = block_request(tsn, key, received.len() as u32, 64, None);
            server.handle_frame(device, &request, t0);
            let (offset, data) = block_of(&only_reply(&mut server));
            assert_eq!(offset as usize, received.len());
            received.extend_from_slice(&data);
            tsn = tsn.wrapping_add(1);
        }
        assert_same_bytes(&received, file.image_bytes());
        served += 1;
    }
    eprintln!("served {served} corpus images byte-exact");
    assert!(served >= 30, "only {served} corpus images parsed");
}

// ---------------------------------------------------------------------------------------------
// zigpy's encoding of the same exchanges (tests/vectors/server, generated by
// gen_server_vectors.py with zigpy).

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn responses_match_zigpy_encoding_byte_for_byte() {
    let path = crate::common::vectors_dir().join("server/server_vectors.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let image_a = OtaImage::new(
        new_key(),
        Bytes::from(unhex(json["image_a"].as_str().unwrap())),
    )
    .unwrap()
    .shared();
    let specific = ImageKey {
        manufacturer_code: MFR,
        image_type: 0xFFC0,
        file_version: 5,
    };
    let image_b = OtaImage::new(
        specific,
        Bytes::from(unhex(json["image_b"].as_str().unwrap())),
    )
    .unwrap()
    .with_destination(DEV.ieee.unwrap())
    .shared();
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let (mut server, t0) = server_with(config, vec![image_a, image_b]);
    let second = DeviceAddr {
        nwk: 0x9999,
        ieee: Some(Ieee(0x99)),
        endpoint: 1,
    };
    let exchanges = json["exchanges"].as_array().unwrap();
    assert!(exchanges.len() >= 13);
    for exchange in exchanges {
        let name = exchange["name"].as_str().unwrap();
        let device = if exchange["device"] == "second" {
            second
        } else {
            DEV
        };
        server.handle_frame(device, &unhex(exchange["request"].as_str().unwrap()), t0);
        let out = replies(&mut server);
        assert_eq!(out.len(), 1, "{name}: {out:?}");
        assert_eq!(
            hex(&out[0].zcl_bytes),
            exchange["response"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(out[0].destination, Destination::Unicast(device), "{name}");
    }
    assert!(server.notify(NotifyTarget::Device(DEV), t0));
    let out = replies(&mut server);
    assert_eq!(
        hex(&out[0].zcl_bytes),
        json["image_notify_unicast_tsn0"].as_str().unwrap()
    );
}
