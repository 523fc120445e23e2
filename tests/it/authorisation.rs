//! Authorisation against hostile devices (issue 18, "Prove it" 2): a device-specific file goes
//! only to the device it names, which must be the sender; every block passes the same policy
//! check as the offer; an Upgrade End SUCCESS for a download never served is not recorded.

use std::time::{Duration, Instant};

use zigbee_otad::server::{
    DeviceAddr, ImageKey, OtaImage, OtaServer, Outgoing, ServerConfig, VersionPin,
};
use zigbee_otad::zcl::ota::{
    ImageBlockResponse, OtaCommand, OtaFrame, QueryDeviceSpecificFileResponse,
    QueryNextImageRequest, QueryNextImageResponse, UpgradeEndResponse,
};
use zigbee_otad::zcl::{Ieee, ZclStatus};

use crate::server::{
    block_request, device_specific_file, device_specific_query, frame_bytes, image, new_key,
    pattern, query, upgrade_end,
};

const MFR: u16 = 0x1189;
const IMAGE_TYPE: u16 = 0x0042;
const OLD: u32 = 0x0100_0000;
const NEW: u32 = 0x0200_0000;

const A: DeviceAddr = DeviceAddr {
    nwk: 0x1234,
    ieee: Some(Ieee(0x0011_2233_4455_6677)),
    endpoint: 1,
};
const B: DeviceAddr = DeviceAddr {
    nwk: 0x4321,
    ieee: Some(Ieee(0x0099_8877_6655_4433)),
    endpoint: 1,
};

/// Bosch's manufacturer code (its images get an hour's idle timeout).
const BOSCH: u16 = 0x1209;

/// A Bosch image of `len` bytes with this file's image type and new version.
fn bosch_image(len: usize) -> (ImageKey, std::sync::Arc<OtaImage>) {
    let key = ImageKey {
        manufacturer_code: BOSCH,
        image_type: IMAGE_TYPE,
        file_version: NEW,
    };
    let image = OtaImage::new(key, bytes::Bytes::from(pattern(len, 3)))
        .unwrap()
        .shared();
    (key, image)
}

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    std::time::Instant::now()
}

fn frames(server: &mut OtaServer) -> Vec<OtaFrame> {
    std::iter::from_fn(|| server.poll_transmit())
        .map(|out: Outgoing| OtaFrame::decode(&out.zcl_bytes).unwrap())
        .collect()
}

fn one(server: &mut OtaServer) -> OtaCommand {
    let mut all = frames(server);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0).command
}

fn block_status(command: &OtaCommand) -> ZclStatus {
    match command {
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Success { .. }) => ZclStatus::SUCCESS,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Abort) => ZclStatus::ABORT,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::OtherStatus { status }) => *status,
        other => panic!("expected an Image Block Response, got {other:?}"),
    }
}

#[test]
fn a_device_asking_for_another_devices_file_gets_no_image_and_its_blocks_abort() {
    let (key, file_of_a) = device_specific_file(A.ieee.unwrap());
    let now = t0();
    let mut server = OtaServer::new(ServerConfig::default());
    server.set_images(vec![file_of_a], now);

    // B names A in the requester field.
    server.handle_frame(B, &device_specific_query(A.ieee.unwrap()), now);
    assert_eq!(
        one(&mut server),
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::OtherStatus {
            status: ZclStatus::NO_IMAGE_AVAILABLE
        })
    );
    // B asks for A's file's blocks anyway, at several offsets.
    for (tsn, offset) in [(10, 0), (11, 50), (12, 150)] {
        server.handle_frame(B, &block_request(tsn, key, offset, 50, None), now);
        assert_eq!(block_status(&one(&mut server)), ZclStatus::ABORT);
    }
    // A device with no known IEEE address cannot claim to be A either.
    let anonymous = DeviceAddr {
        nwk: 0x7777,
        ieee: None,
        endpoint: 1,
    };
    server.handle_frame(anonymous, &device_specific_query(A.ieee.unwrap()), now);
    assert!(matches!(
        one(&mut server),
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::OtherStatus {
            status: ZclStatus::NO_IMAGE_AVAILABLE
        })
    ));
    server.handle_frame(anonymous, &block_request(13, key, 0, 50, None), now);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::ABORT);
    assert!(server.progress().is_empty(), "no transfer was started");

    // A itself gets its file.
    server.handle_frame(A, &device_specific_query(A.ieee.unwrap()), now);
    assert!(matches!(
        one(&mut server),
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::Success {
            file_version: 3,
            ..
        })
    ));
    server.handle_frame(A, &block_request(14, key, 0, 50, None), now);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
}

#[test]
fn a_block_for_an_image_not_offered_passes_the_pin_like_an_offer() {
    let pinned = ServerConfig {
        pins: vec![VersionPin {
            manufacturer_code: MFR,
            image_type: IMAGE_TYPE,
            file_version: OLD,
        }],
        ..ServerConfig::default()
    };
    let now = t0();
    let mut server = OtaServer::new(pinned.clone());
    server.set_images(vec![image(NEW, 1_000, 5)], now);
    // Never queried in this run (a "resume"): the pin still holds.
    server.handle_frame(A, &block_request(1, new_key(), 0, 50, None), now);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::ABORT);
    // After a query, too.
    server.handle_frame(A, &query(2, OLD, None), now);
    assert!(matches!(
        one(&mut server),
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus { .. })
    ));
    server.handle_frame(A, &block_request(3, new_key(), 0, 50, None), now);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::ABORT);
    // Without the pin the same blocks are served; a pin set mid-transfer stops the next block.
    server.set_config(ServerConfig::default());
    server.handle_frame(A, &query(4, OLD, None), now);
    frames(&mut server);
    server.handle_frame(A, &block_request(5, new_key(), 0, 50, None), now);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
    server.set_config(pinned);
    let later = now + Duration::from_secs(1);
    server.handle_frame(A, &block_request(6, new_key(), 50, 50, None), later);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::ABORT);
}

#[test]
fn upgrade_end_success_for_an_image_never_downloaded_is_not_recorded_as_finished() {
    let now = t0();
    let mut server = OtaServer::new(ServerConfig::default());
    server.set_images(vec![image(NEW, 1_000, 6)], now);
    server.handle_frame(A, &query(1, OLD, None), now);
    frames(&mut server);
    // One block, then a claim of success.
    server.handle_frame(A, &block_request(2, new_key(), 0, 50, None), now);
    frames(&mut server);
    server.handle_frame(A, &upgrade_end(3, ZclStatus::SUCCESS, new_key()), now);
    assert!(matches!(
        one(&mut server),
        OtaCommand::UpgradeEndResponse(UpgradeEndResponse { .. })
    ));
    // B claims success without a single block.
    server.handle_frame(B, &upgrade_end(4, ZclStatus::SUCCESS, new_key()), now);
    frames(&mut server);
    assert_eq!(server.history().count(), 0, "nothing finished");
    let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, zigbee_otad::server::ServerEvent::UpgradeScheduled { .. })),
        "{events:?}"
    );
}

/// A squatter holds a slot with one block request per idle timeout (which can be an hour for
/// some manufacturers): once another device waits, the squatter's slot goes to it after
/// `slot_idle_while_others_wait`, and the squatter queues like anyone.
#[test]
fn a_squatting_device_loses_its_slot_to_a_waiting_one() {
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let gap = config.slot_idle_while_others_wait;
    let now = t0();
    let mut server = OtaServer::new(config);
    server.set_images(vec![image(NEW, 5_000, 8)], now);
    server.handle_frame(A, &query(1, OLD, None), now);
    server.handle_frame(A, &block_request(2, new_key(), 0, 50, None), now);
    frames(&mut server);
    server.handle_frame(B, &query(1, OLD, None), now);
    frames(&mut server);
    server.handle_frame(B, &block_request(2, new_key(), 0, 50, None), now);
    assert!(matches!(
        one(&mut server),
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData { .. })
    ));
    // A stays silent; the server's own deadline frees its slot.
    let deadline = now + gap;
    let due = server.poll_timeout().unwrap();
    assert!(due <= deadline, "a deadline for the squatter's slot");
    server.handle_timeout(deadline);
    server.handle_frame(B, &block_request(3, new_key(), 0, 50, None), deadline);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
    // A comes back and waits its turn; its transfer (and offset) is kept.
    let later = deadline + Duration::from_secs(1);
    server.handle_frame(A, &block_request(4, new_key(), 50, 50, None), later);
    assert!(matches!(
        one(&mut server),
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData { .. })
    ));
    assert_eq!(server.progress().len(), 2);
    assert_eq!(server.history().count(), 0, "nobody failed");
}

/// A device asking just often enough never looks idle; a slot is still a turn, not a tenure:
/// after `max_slot_time_while_others_wait` with another device waiting the slot moves on.
#[test]
fn a_slow_dripping_device_gives_up_its_slot_after_its_turn() {
    // The minimum rate (below) would end this drip's slot much sooner; this test is the turn.
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        slot_min_rate_while_others_wait: 0,
        ..ServerConfig::default()
    };
    let turn = config.max_slot_time_while_others_wait;
    let drip = config.slot_idle_while_others_wait - Duration::from_secs(10);
    let now = t0();
    let mut server = OtaServer::new(config);
    server.set_images(vec![image(NEW, 50_000, 8)], now);
    server.handle_frame(A, &query(1, OLD, None), now);
    server.handle_frame(A, &block_request(2, new_key(), 0, 50, None), now);
    frames(&mut server);
    server.handle_frame(B, &query(1, OLD, None), now);
    frames(&mut server);
    let mut t = now;
    let mut tsn = 3;
    let mut offset = 50;
    let b_waits = |server: &mut OtaServer, tsn: u8, t: Instant| {
        server.handle_frame(B, &block_request(tsn, new_key(), 0, 50, None), t);
        matches!(
            one(server),
            OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData { .. })
        )
    };
    assert!(b_waits(&mut server, 200, t));
    // A drips one block per `drip` for a whole turn and keeps its slot meanwhile.
    while t + drip < now + turn {
        t += drip;
        server.handle_timeout(t);
        server.handle_frame(A, &block_request(tsn, new_key(), offset, 50, None), t);
        assert_eq!(
            block_status(&one(&mut server)),
            ZclStatus::SUCCESS,
            "at {:?}",
            t - now
        );
        assert!(b_waits(&mut server, tsn.wrapping_add(100), t));
        tsn += 1;
        offset += 50;
    }
    // The turn ends at the server's own deadline; B gets the slot, A queues with its offset.
    let end = now + turn;
    assert!(server.poll_timeout().unwrap() <= end);
    server.handle_timeout(end);
    server.handle_frame(B, &block_request(250, new_key(), 0, 50, None), end);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
    server.handle_frame(A, &block_request(tsn, new_key(), offset, 50, None), end);
    assert!(matches!(
        one(&mut server),
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData { .. })
    ));
    assert_eq!(server.history().count(), 0, "nobody failed");
}

/// A slot requires progress: a device that takes a slot with one block and then asks too
/// rarely (here a Bosch image, whose idle timeout is an hour) gives the slot to a waiting
/// device one `slot_progress_window` after it got it; a device moving at least
/// `slot_min_rate_while_others_wait` keeps its slot however long others wait.
#[test]
fn a_slot_holder_below_the_minimum_rate_loses_its_slot_after_one_window() {
    let config = ServerConfig {
        max_concurrent_transfers: 2,
        ..ServerConfig::default()
    };
    let window = config.slot_progress_window;
    let min_rate = config.slot_min_rate_while_others_wait;
    assert!(
        window < config.slot_idle_while_others_wait,
        "the rate rule comes first"
    );
    let c = DeviceAddr {
        nwk: 0x5555,
        ieee: Some(Ieee(0x0055_5555_5555_5555)),
        endpoint: 1,
    };
    let now = t0();
    let mut server = OtaServer::new(config);
    let (bosch_key, bosch) = bosch_image(50_000);
    server.set_images(vec![image(NEW, 50_000, 8), bosch], now);
    // A (Bosch) and B take both slots; C waits.
    let bosch_query = frame_bytes(
        1,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: BOSCH,
            image_type: IMAGE_TYPE,
            current_file_version: OLD,
            hardware_version: None,
        }),
    );
    server.handle_frame(A, &bosch_query, now);
    server.handle_frame(A, &block_request(2, bosch_key, 0, 50, None), now);
    server.handle_frame(B, &query(1, OLD, None), now);
    server.handle_frame(B, &block_request(2, new_key(), 0, 50, None), now);
    frames(&mut server);
    server.handle_frame(c, &query(1, OLD, None), now);
    server.handle_frame(c, &block_request(2, new_key(), 0, 50, None), now);
    let answers = frames(&mut server);
    assert!(
        matches!(
            answers.last().map(|f| &f.command),
            Some(OtaCommand::ImageBlockResponse(
                ImageBlockResponse::WaitForData { .. }
            ))
        ),
        "{answers:?}"
    );
    // B moves at twice the minimum rate; A says nothing more.
    let step = Duration::from_millis(500);
    let per_step = min_rate.max(1) as usize; // bytes per half second = twice the rate
    let mut t = now;
    let mut offset = 50u32;
    let mut tsn = 3u8;
    let end = now + window;
    while t + step < end {
        t += step;
        server.handle_timeout(t);
        let size = u8::try_from(per_step.min(50)).unwrap();
        server.handle_frame(B, &block_request(tsn, new_key(), offset, size, None), t);
        assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
        offset += u32::from(size);
        tsn = tsn.wrapping_add(1);
    }
    // At one window the server's own deadline takes A's slot (not B's), and C gets it.
    assert!(server.poll_timeout().unwrap() <= end);
    server.handle_timeout(end);
    server.handle_frame(c, &block_request(3, new_key(), 0, 50, None), end);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
    server.handle_frame(B, &block_request(tsn, new_key(), offset, 10, None), end);
    assert_eq!(block_status(&one(&mut server)), ZclStatus::SUCCESS);
    // A comes back and waits with its offset; nobody failed.
    server.handle_frame(A, &block_request(4, bosch_key, 50, 50, None), end);
    assert!(matches!(
        one(&mut server),
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData { .. })
    ));
    assert_eq!(server.history().count(), 0, "nobody failed");
}

/// Idle timeouts come from the image's manufacturer, not the claim: a device that queries as
/// Bosch (whose images get an hour) but downloads a LEDVANCE image gets LEDVANCE's five
/// minutes; a device downloading a Bosch image gets the hour.
#[test]
fn claiming_bosch_does_not_buy_an_hour_downloading_anything_else() {
    use zigbee_otad::server::{FailureReason, TransferState};
    let config = ServerConfig::default();
    let short = config.idle_timeout;
    assert!(config.idle_timeout_for(BOSCH, IMAGE_TYPE, None) > short);
    let (bosch_key, bosch) = bosch_image(5_000);
    let now = t0();
    let mut server = OtaServer::new(config);
    server.set_images(vec![image(NEW, 5_000, 8), bosch], now);
    let bosch_query = |tsn| {
        frame_bytes(
            tsn,
            OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
                field_control: 0,
                manufacturer_code: BOSCH,
                image_type: 0x7777,
                current_file_version: OLD,
                hardware_version: None,
            }),
        )
    };
    // A claims Bosch, then downloads the LEDVANCE image; B downloads the Bosch image.
    server.handle_frame(A, &bosch_query(1), now);
    server.handle_frame(A, &block_request(2, new_key(), 0, 50, None), now);
    server.handle_frame(B, &block_request(1, bosch_key, 0, 50, None), now);
    let answers = frames(&mut server);
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(block_status(&answers[1].command), ZclStatus::SUCCESS);
    assert_eq!(block_status(&answers[2].command), ZclStatus::SUCCESS);
    // Both go quiet. Past five minutes A's transfer has failed by idle timeout; B's has not.
    let later = now + short + Duration::from_secs(1);
    server.handle_timeout(later);
    let failed: Vec<_> = server.history().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].ieee, A.ieee);
    assert_eq!(failed[0].state, TransferState::Failed);
    assert!(matches!(
        failed[0].failure,
        Some(FailureReason::IdleTimeout)
    ));
    assert!(
        server
            .progress()
            .iter()
            .any(|t| t.ieee == B.ieee && t.state == TransferState::Downloading),
        "the Bosch image's transfer still runs"
    );
}

/// A page request of 65,535 bytes at spacing 0 cannot outrun the radio: with
/// `pace_pages_by_delivery` the next block waits for the coordinator's delivery report of the
/// last one (or 2 s without a report), whatever spacing the device asked for.
#[test]
fn a_page_stream_waits_for_each_delivery_report() {
    use zigbee_otad::server::PAGE_DELIVERY_FALLBACK;
    use zigbee_otad::zcl::ota::ImagePageRequest;
    let config = ServerConfig {
        pace_pages_by_delivery: true,
        ..ServerConfig::default()
    };
    let now = t0();
    let mut server = OtaServer::new(config);
    server.set_images(vec![image(NEW, 50_000, 8)], now);
    server.handle_frame(A, &query(1, OLD, None), now);
    frames(&mut server);
    let file = new_key();
    let page = frame_bytes(
        2,
        OtaCommand::ImagePageRequest(ImagePageRequest {
            field_control: 0,
            manufacturer_code: file.manufacturer_code,
            image_type: file.image_type,
            file_version: file.file_version,
            file_offset: 0,
            maximum_data_size: 50,
            page_size: u16::MAX,
            response_spacing: 0,
            request_node_address: None,
        }),
    );
    server.handle_frame(A, &page, now);
    let mut t = now;
    let mut sent = 0;
    // Without reports: one block, then nothing until the fallback.
    for _ in 0..5 {
        server.handle_timeout(t);
        sent += frames(&mut server).len();
        t += Duration::from_millis(100);
    }
    assert_eq!(sent, 1, "one block before any delivery report");
    let due = server.poll_timeout().unwrap();
    assert!(
        due >= now + PAGE_DELIVERY_FALLBACK,
        "next block waits for the report"
    );
    // Each report lets exactly one more block go.
    for round in 0..10 {
        server.on_delivery(A);
        server.handle_timeout(t);
        assert_eq!(frames(&mut server).len(), 1, "round {round}");
        server.handle_timeout(t);
        assert!(frames(&mut server).is_empty(), "round {round}");
        // Past the 20 ms minimum page spacing.
        t += Duration::from_millis(25);
    }
    // A lost report costs the fallback, not the stream.
    server.handle_timeout(t + PAGE_DELIVERY_FALLBACK);
    assert_eq!(frames(&mut server).len(), 1);
}
