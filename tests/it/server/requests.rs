//! One request at a time against the real `OtaServer`: retries, reordering, wrong files, block
//! sizes, default responses, device-specific files, idle transfers.

use super::*;

#[test]
fn query_without_image_is_answered_no_image_available_every_time() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    for tsn in 0..3 {
        server.handle_frame(
            DEV,
            &query(tsn, OLD, None),
            t0 + Duration::from_secs(u64::from(tsn)),
        );
        let reply = only_reply(&mut server);
        assert_eq!(reply.header.tsn, tsn);
        assert_eq!(reply.header.direction, Direction::SERVER_TO_CLIENT);
        assert_eq!(
            reply.command,
            OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus {
                status: ZclStatus::NO_IMAGE_AVAILABLE
            })
        );
    }
}

#[test]
fn retry_with_the_same_tsn_gets_identical_bytes_and_is_not_counted_twice() {
    let img = image(NEW, 1_000, 20);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img.clone()]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    let request = block_request(2, new_key(), 100, 50, None);
    server.handle_frame(DEV, &request, t0);
    let first = replies(&mut server);
    server.handle_frame(DEV, &request, t0 + Duration::from_millis(500));
    let again = replies(&mut server);
    assert_eq!(first.len(), 1);
    assert_eq!(again.len(), 1);
    assert_eq!(first[0].zcl_bytes, again[0].zcl_bytes);
    let progress = server.progress();
    assert_eq!(progress[0].offset, 150);
    let started = std::iter::from_fn(|| server.poll_event())
        .filter(|e| matches!(e, ServerEvent::TransferStarted { .. }))
        .count();
    assert_eq!(started, 1);
}

#[test]
fn retry_of_a_request_still_waiting_for_its_turn_is_answered_once() {
    let img = image(NEW, 1_000, 21);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img.clone()]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    // The device asks for 1 s between blocks (MinimumBlockPeriod 1000 ms).
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, Some(1000)), t0);
    assert_eq!(replies(&mut server).len(), 1);
    let early = block_request(3, new_key(), 50, 50, Some(1000));
    let t = t0 + Duration::from_millis(100);
    server.handle_frame(DEV, &early, t);
    server.handle_frame(DEV, &early, t + Duration::from_millis(50));
    assert!(
        replies(&mut server).is_empty(),
        "held until the period has passed"
    );
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    server.handle_timeout(t0 + Duration::from_secs(1));
    let out = replies(&mut server);
    assert_eq!(out.len(), 1);
    assert_eq!(
        block_of(&decode(&out[0])),
        (50, img.read_all().unwrap()[50..100].to_vec())
    );
}

#[test]
fn reordered_requests_are_each_served_from_the_exact_bytes() {
    let img = image(NEW, 1_000, 22);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img.clone()]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    for (tsn, offset) in [(2u8, 300u32), (3, 100), (4, 999), (5, 0)] {
        server.handle_frame(DEV, &block_request(tsn, new_key(), offset, 50, None), t0);
        let reply = only_reply(&mut server);
        assert_eq!(reply.header.tsn, tsn);
        let (got_offset, data) = block_of(&reply);
        let start = offset as usize;
        let end = (start + 50).min(1_000);
        assert_eq!(got_offset, offset);
        assert_eq!(data, img.read_all().unwrap()[start..end]);
    }
}

#[test]
fn wrong_file_gets_abort_and_offset_past_the_end_malformed() {
    let img = image(NEW, 1_000, 23);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    let other = ImageKey {
        file_version: NEW + 7,
        ..new_key()
    };
    server.handle_frame(DEV, &block_request(2, other, 0, 50, None), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Abort)
    );
    server.handle_frame(DEV, &block_request(3, new_key(), 1_000, 50, None), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::OtherStatus {
            status: ZclStatus::MALFORMED_COMMAND
        })
    );
}

#[test]
fn block_size_is_the_smallest_of_device_cap_manufacturer_and_coordinator() {
    let img = image(NEW, 1_000, 24);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    let size_for = |server: &mut OtaServer, tsn: u8, max: u8| {
        server.handle_frame(DEV, &block_request(tsn, new_key(), 0, max, None), t0);
        block_of(&only_reply(server)).1.len()
    };
    assert_eq!(size_for(&mut server, 2, 64), 50, "the configured cap");
    assert_eq!(size_for(&mut server, 3, 48), 48, "the device's maximum");
    server.set_max_aps_payload(60);
    // 60 − 3 (ZCL header) − 14 (block response fields) − 9 (APS encryption) − 6 (route).
    assert_eq!(
        size_for(&mut server, 4, 64),
        28,
        "what fits the coordinator's APS frame"
    );
}

#[test]
fn manufacturer_caps_apply_to_the_device_manufacturer() {
    let insta = 0x117A;
    let key = ImageKey {
        manufacturer_code: insta,
        image_type: IMAGE_TYPE,
        file_version: NEW,
    };
    let img = OtaImage::new(key, Bytes::from(pattern(500, 25)))
        .unwrap()
        .shared();
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    let q = frame_bytes(
        1,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: insta,
            image_type: IMAGE_TYPE,
            current_file_version: OLD,
            hardware_version: None,
        }),
    );
    server.handle_frame(DEV, &q, t0);
    replies(&mut server);
    server.handle_frame(DEV, &block_request(2, key, 0, 64, None), t0);
    assert_eq!(block_of(&only_reply(&mut server)).1.len(), 40);
}

#[test]
fn legrand_gets_the_64_byte_blocks_it_asks_for() {
    let legrand = 0x1021;
    let key = ImageKey {
        manufacturer_code: legrand,
        image_type: 0x0011,
        file_version: NEW,
    };
    let img = OtaImage::new(key, Bytes::from(pattern(500, 30)))
        .unwrap()
        .shared();
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    let q = frame_bytes(
        1,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: legrand,
            image_type: 0x0011,
            current_file_version: OLD,
            hardware_version: None,
        }),
    );
    server.handle_frame(DEV, &q, t0);
    replies(&mut server);
    server.handle_frame(DEV, &block_request(2, key, 0, 64, None), t0);
    let out = replies(&mut server);
    assert_eq!(block_of(&decode(&out[0])).1.len(), 64);
    // 3 + 14 + 64 = 81 bytes: inside EZSP's 82.
    assert_eq!(out[0].zcl_bytes.len(), 81);
    // A coordinator with less room still bounds it.
    server.set_max_aps_payload(70);
    server.handle_frame(DEV, &block_request(3, key, 0, 64, None), t0);
    assert_eq!(block_of(&only_reply(&mut server)).1.len(), 70 - 3 - 14);
}

#[test]
fn unknown_and_malformed_requests_get_the_right_default_response() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    // Cluster-specific client-to-server command 0x0A: not an OTA command.
    let mut unknown = vec![0x11, 0x42, 0x0A, 0x00];
    server.handle_frame(DEV, &unknown, t0);
    let reply = only_reply(&mut server);
    assert_eq!(reply.header.tsn, 0x42);
    assert_eq!(reply.header.frame_type, FrameType::GLOBAL);
    let OtaCommand::DefaultResponse(response) = reply.command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.command_id.0, 0x0A);
    // An error is reported even when the request disabled default responses (bit 4 set above).
    assert_eq!(response.status, ZclStatus::UNSUP_COMMAND);
    // A truncated Image Block Request.
    unknown = vec![0x01, 0x43, 0x03, 0x00, 0x89, 0x11];
    server.handle_frame(DEV, &unknown, t0);
    let OtaCommand::DefaultResponse(response) = only_reply(&mut server).command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.status, ZclStatus::MALFORMED_COMMAND);
    // A Default Response from the device gets nothing back; nor does half a header.
    server.handle_frame(DEV, &[0x18, 0x44, 0x0B, 0x05, 0x00], t0);
    server.handle_frame(DEV, &[0x01], t0);
    assert!(replies(&mut server).is_empty());
}

#[test]
fn failed_upgrade_end_honours_disable_default_response() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![image(NEW, 100, 26)]);
    let mut request = upgrade_end(5, ZclStatus::ABORT, new_key());
    request[0] |= 0x10;
    server.handle_frame(DEV, &request, t0);
    assert!(replies(&mut server).is_empty());
    let request = upgrade_end(6, ZclStatus::REQUIRE_MORE_IMAGE, new_key());
    server.handle_frame(DEV, &request, t0);
    let OtaCommand::DefaultResponse(response) = only_reply(&mut server).command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.status, ZclStatus::SUCCESS);
    assert_eq!(response.command_id.0, 0x06);
}

#[test]
fn upgrade_end_for_an_image_we_do_not_hold_is_aborted() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    server.handle_frame(DEV, &upgrade_end(7, ZclStatus::SUCCESS, new_key()), t0);
    let OtaCommand::DefaultResponse(response) = only_reply(&mut server).command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.status, ZclStatus::ABORT);
}

#[test]
fn device_specific_file_is_served_only_to_its_device() {
    use zigbee_otad::zcl::ota::QueryDeviceSpecificFileResponse;
    let (key, config_file) = device_specific_file(DEV.ieee.unwrap());
    let (mut server, t0) = server_with(ServerConfig::default(), vec![config_file.clone()]);
    let ask = |requester: u64| device_specific_query(Ieee(requester));
    server.handle_frame(DEV, &ask(0x0011_2233_4455_6677), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::Success {
            manufacturer_code: MFR,
            image_type: 0xFFC1,
            file_version: 3,
            image_size: 200
        })
    );
    // The file is then downloaded with ordinary block requests.
    server.handle_frame(DEV, &block_request(10, key, 0, 50, None), t0);
    assert_eq!(
        block_of(&only_reply(&mut server)).1,
        config_file.read_all().unwrap()[..50]
    );
    let other = DeviceAddr {
        nwk: 0x4321,
        ieee: Some(Ieee(0x99)),
        endpoint: 1,
    };
    server.handle_frame(other, &ask(0x99), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::OtherStatus {
            status: ZclStatus::NO_IMAGE_AVAILABLE
        })
    );
}

#[test]
fn idle_transfer_ends_and_frees_its_slot() {
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let (mut server, t0) = server_with(config, vec![image(NEW, 1_000, 28)]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, None), t0);
    replies(&mut server);
    let second = DeviceAddr {
        nwk: 0x5555,
        ieee: Some(Ieee(0x55)),
        endpoint: 1,
    };
    server.handle_frame(second, &query(1, OLD, None), t0);
    server.handle_frame(second, &block_request(2, new_key(), 0, 50, None), t0);
    let out = replies(&mut server);
    assert!(matches!(
        decode(&out[1]).command,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData {
            current_time: 0,
            ..
        })
    ));
    // The first device goes silent; after the idle timeout its slot is free.
    let deadline = t0 + Duration::from_secs(300);
    while let Some(t) = server.poll_timeout().filter(|t| *t <= deadline) {
        server.handle_timeout(t);
    }
    assert_eq!(server.history().count(), 1);
    let failed: Vec<_> = server.history().map(|t| t.state).collect();
    assert_eq!(failed, vec![TransferState::Failed]);
    server.handle_frame(second, &block_request(3, new_key(), 0, 50, None), deadline);
    assert_eq!(block_of(&only_reply(&mut server)).0, 0);
}

// ---------------------------------------------------------------------------------------------
// Real images and real frames from ../shared/testdata.
