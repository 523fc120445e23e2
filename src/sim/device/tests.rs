//! Unit tests of the simulated OTA client: whole upgrades, refusals, retries, hostile input.

use super::*;
use crate::ota::{FileVersion, ImageType, ManufacturerCode, OtaHeader};
use crate::zcl::ZclStatus;
use crate::zcl::ota::{BlockData, ImageBlockRequest, ImageBlockResponse, UpgradeEndResponse};

#[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
fn origin() -> Instant {
    Instant::now()
}

const MFR: u16 = 0x1189;
const TYPE: u16 = 0x0005;
const NEW: u32 = 0x0000_0200;

/// A minimal valid OTA file of `total` bytes (the project's own header encoder).
fn ota_file(version: u32, total: usize) -> Vec<u8> {
    let mut header = OtaHeader::new(ManufacturerCode(MFR), ImageType(TYPE), FileVersion(version));
    header.header_string = [b'x'; 32];
    header.image_size = u32::try_from(total).unwrap();
    let mut file = Vec::new();
    header.encode(&mut file);
    file.extend((0..total - file.len()).map(|i| (i * 7) as u8));
    file
}

fn device(spec: &str, now: Instant) -> SimDevice {
    let mut config = SimDeviceConfig::new(Nwk(0x1234), Ieee(0xAB), spec.parse().unwrap());
    config.first_query_after = Duration::ZERO;
    config.response_timeout = Duration::from_secs(2);
    config.max_retries = 3;
    SimDevice::new(config, now)
}

/// The device's next frame, decoded.
fn next_request(device: &mut SimDevice) -> OtaFrame {
    OtaFrame::decode(&device.poll_transmit().expect("a request")).unwrap()
}

fn reply(device: &mut SimDevice, request: &OtaFrame, command: OtaCommand, now: Instant) {
    let mut bytes = Vec::new();
    request.reply(command).encode(&mut bytes);
    device.handle_frame(&bytes, now);
}

fn offer(image_size: usize) -> OtaCommand {
    OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
        manufacturer_code: MFR,
        image_type: TYPE,
        file_version: NEW,
        image_size: u32::try_from(image_size).unwrap(),
    })
}

fn block(request: &ImageBlockRequest, file: &[u8], cap: usize) -> OtaCommand {
    block_at(file, request.file_offset, cap)
}

/// The block of `file` at `offset`, at most `cap` bytes, of the offered version.
fn block_at(file: &[u8], offset: u32, cap: usize) -> OtaCommand {
    let start = offset as usize;
    let len = cap.min(file.len() - start);
    OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
        manufacturer_code: MFR,
        image_type: TYPE,
        file_version: NEW,
        file_offset: offset,
        data: BlockData::new(&file[start..start + len]).unwrap(),
    })
}

fn ended(device: &mut SimDevice) -> UpgradeReport {
    loop {
        match device.poll_event() {
            Some(DeviceEvent::UpgradeEnded(report)) => return report,
            Some(_) => {}
            None => panic!("no report"),
        }
    }
}

proptest::proptest! {
    /// Whatever the server sends, in whatever state, the device neither panics nor sends
    /// anything but well-formed client requests.
    #[test]
    fn hostile_frames_never_break_the_device(frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..30)) {
        let mut now = origin();
        let mut dev = device("0x1189:0x0005:0x100", now);
        dev.handle_timeout(now);
        let query = next_request(&mut dev);
        reply(&mut dev, &query, offer(100), now);
        for (i, frame) in frames.iter().enumerate() {
            // Give some frames a valid server-to-client header so they reach the commands.
            let mut bytes = frame.clone();
            if i % 2 == 0 && bytes.len() >= 3 {
                bytes[0] = 0x19;
            }
            dev.handle_frame(&bytes, now);
            now += Duration::from_millis(500);
            dev.handle_timeout(now);
            while let Some(out) = dev.poll_transmit() {
                let decoded = OtaFrame::decode_request(&out).unwrap();
                proptest::prop_assert!(decoded.command.is_client_request());
            }
        }
    }
}

proptest::proptest! {
    /// Whatever order, repetition, size or offset the true file's blocks come in (some inside
    /// the page, some past it, some lost), a paging device assembles exactly the file or asks
    /// again: it never ends with anything but SUCCESS, and never sends a malformed request.
    #[test]
    fn page_blocks_in_any_order_assemble_the_true_file(
        answers in proptest::collection::vec((0u32..320, 0usize..60, proptest::bool::ANY), 1..120),
    ) {
        let mut now = origin();
        let file = ota_file(NEW, 300);
        let hooks = DeviceHooks {
            fetch: Fetch::Pages { page_size: 200, response_spacing_ms: 0 },
            ..DeviceHooks::default()
        };
        let (mut dev, first) = offered(hooks, &file, now);
        let mut request = first.expect("a page request");
        for (offset, len, tick) in answers {
            let start = (offset as usize).min(file.len());
            let data = &file[start..(start + len).min(file.len())];
            reply(&mut dev, &request, OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                manufacturer_code: MFR,
                image_type: TYPE,
                file_version: NEW,
                file_offset: offset,
                data: BlockData::new(data).unwrap(),
            }), now);
            if tick {
                now += Duration::from_secs(3);
                dev.handle_timeout(now);
            }
            proptest::prop_assert!(dev.bytes_held() <= file.len());
            while let Some(out) = dev.poll_transmit() {
                let sent = OtaFrame::decode_request(&out).unwrap();
                if let OtaCommand::UpgradeEndRequest(end) = &sent.command {
                    proptest::prop_assert_eq!(end.status, ZclStatus::SUCCESS);
                }
                proptest::prop_assert!(sent.command.is_client_request());
                request = sent;
            }
        }
    }
}

/// With `report_every`, the device reports ApplicationVersion unasked, on schedule.
#[test]
fn a_reporting_device_reports_its_application_version() {
    let t0 = origin();
    let mut config = SimDeviceConfig::new(Nwk(1), Ieee(2), "1:2:0x0105".parse().unwrap());
    config.report_every = Some(Duration::from_secs(2));
    config.first_query_after = Duration::from_secs(3600);
    let mut reporting = SimDevice::new(config, t0);
    assert_eq!(reporting.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    reporting.handle_timeout(t0 + Duration::from_secs(2));
    let report = reporting.poll_transmit_basic().expect("a report");
    assert_eq!(report, [0x18, 0, 0x0A, 0x01, 0x00, 0x20, 0x05]);
    assert_eq!(reporting.poll_timeout(), Some(t0 + Duration::from_secs(4)));
    assert!(device("1:2:3", t0).poll_transmit_basic().is_none());
}

/// A battery device answers a Basic cluster read only shortly after it sent something; a
/// mains one always.
#[test]
fn basic_reads_are_answered_like_real_devices() {
    let t0 = origin();
    let read = basic::read_identity_request(9);
    let mut sleepy = device("1:2:3,model=lumi.sensor,power=battery", t0);
    sleepy.handle_basic_frame(&read, t0);
    assert!(
        sleepy.poll_transmit_basic().is_none(),
        "asleep before its first query"
    );
    sleepy.handle_timeout(t0 + Duration::from_secs(1));
    let _query = next_request(&mut sleepy);
    sleepy.handle_basic_frame(&read, t0 + Duration::from_secs(2));
    let answer = sleepy.poll_transmit_basic().unwrap();
    let identity = basic::decode_read_response(&answer).unwrap().1;
    assert_eq!(identity.model_id.as_deref(), Some("lumi.sensor"));
    sleepy.handle_basic_frame(&read, t0 + Duration::from_secs(60));
    assert!(sleepy.poll_transmit_basic().is_none(), "asleep again");
    let mut mains = device("1:2:3,model=TS011F,power=mains", t0);
    mains.handle_basic_frame(&read, t0);
    assert!(mains.poll_transmit_basic().is_some());
}

/// A whole upgrade: query, a WAIT_FOR_DATA honoured to the second, blocks no larger than
/// the device asks for, Upgrade End, a delayed upgrade time, then the new version queried.
#[test]
fn performs_a_whole_upgrade_honouring_wait_for_data() {
    let start = origin();
    let mut now = start;
    let file = ota_file(NEW, 300);
    let mut dev = device("0x1189:0x0005:0x100:0x0001:40", now);
    dev.handle_timeout(now);
    let query = next_request(&mut dev);
    let OtaCommand::QueryNextImageRequest(q) = &query.command else {
        panic!("{query:?}")
    };
    assert_eq!(
        (q.current_file_version, q.hardware_version),
        (0x100, Some(1))
    );
    reply(&mut dev, &query, offer(file.len()), now);

    // First block request: told to wait 3 s, with a minimum block period of 100 ms.
    let first = next_request(&mut dev);
    reply(
        &mut dev,
        &first,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData {
            current_time: 0,
            request_time: 3,
            minimum_block_period: Some(100),
        }),
        now,
    );
    assert!(dev.poll_transmit().is_none());
    assert_eq!(dev.poll_timeout(), Some(now + Duration::from_secs(3)));
    dev.handle_timeout(now + Duration::from_millis(2999));
    assert!(dev.poll_transmit().is_none(), "asked again too early");
    now += Duration::from_secs(3);
    dev.handle_timeout(now);

    let mut blocks = 0;
    let end = loop {
        let request = next_request(&mut dev);
        match &request.command {
            OtaCommand::ImageBlockRequest(b) => {
                assert_eq!(b.maximum_data_size, 40);
                blocks += 1;
                reply(&mut dev, &request, block(b, &file, 40), now);
                // The minimum block period paces the next request; the end request
                // follows the last block at once.
                match dev.poll_transmit() {
                    None => {
                        let next = dev.poll_timeout().unwrap();
                        assert_eq!(next, now + Duration::from_millis(100));
                        now = next;
                        dev.handle_timeout(now);
                    }
                    Some(bytes) => {
                        let frame = OtaFrame::decode(&bytes).unwrap();
                        let OtaCommand::UpgradeEndRequest(end) = &frame.command else {
                            panic!("request sent inside the minimum block period")
                        };
                        break (frame.clone(), end.clone());
                    }
                }
            }
            OtaCommand::UpgradeEndRequest(end) => break (request.clone(), end.clone()),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(blocks, 300usize.div_ceil(40));
    assert_eq!(end.1.status, ZclStatus::SUCCESS);
    reply(
        &mut dev,
        &end.0,
        OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
            manufacturer_code: MFR,
            image_type: TYPE,
            file_version: NEW,
            current_time: 1000,
            upgrade_time: 1005,
        }),
        now,
    );
    assert_eq!(dev.current_version(), 0x100, "not before the upgrade time");
    now += Duration::from_secs(5);
    dev.handle_timeout(now);
    assert_eq!(dev.current_version(), NEW);
    let report = ended(&mut dev);
    assert_eq!(report.outcome, UpgradeOutcome::Upgraded);
    assert!(report.verified);
    assert_eq!((report.waits, report.retries), (1, 0));
    // Its next query reports the new version.
    now += Duration::from_secs(1);
    dev.handle_timeout(now);
    let again = next_request(&mut dev);
    let OtaCommand::QueryNextImageRequest(q) = &again.command else {
        panic!("{again:?}")
    };
    assert_eq!(q.current_file_version, NEW);
}

fn download(dev: &mut SimDevice, file: &[u8], now: Instant) -> OtaFrame {
    dev.handle_timeout(now);
    let query = next_request(dev);
    reply(dev, &query, offer(file.len()), now);
    loop {
        let request = next_request(dev);
        match &request.command {
            OtaCommand::ImageBlockRequest(b) => {
                let answer = block(b, file, usize::from(b.maximum_data_size));
                reply(dev, &request, answer, now);
            }
            _ => return request,
        }
    }
}

#[test]
fn a_wrong_image_is_refused_with_invalid_image() {
    let now = origin();
    let mut file = ota_file(NEW, 200);
    file[20] ^= 0xFF; // the header string: the header check cannot see it ...
    let mut dev = device("0x1189:0x0005:0x100", now);
    dev.config.expected_image = Some(Arc::new(ota_file(NEW, 200)));
    let end = download(&mut dev, &file, now);
    let OtaCommand::UpgradeEndRequest(end) = end.command else {
        panic!("{end:?}")
    };
    // ... but the comparison with the expected bytes does.
    assert_eq!(end.status, ZclStatus::INVALID_IMAGE);
    let report = ended(&mut dev);
    assert_eq!(report.outcome, UpgradeOutcome::InvalidImage);
    assert!(!report.verified);
    assert_eq!(dev.current_version(), 0x100);
}

#[test]
fn a_header_that_disagrees_with_the_offer_is_invalid() {
    let now = origin();
    let file = ota_file(NEW + 1, 200); // the file says another version than offered
    let mut dev = device("0x1189:0x0005:0x100", now);
    let end = download(&mut dev, &file, now);
    let OtaCommand::UpgradeEndRequest(end) = end.command else {
        panic!("{end:?}")
    };
    assert_eq!(end.status, ZclStatus::INVALID_IMAGE);
}

#[test]
fn abort_and_silence_end_the_attempt() {
    let mut now = origin();
    let mut dev = device("0x1189:0x0005:0x100", now);
    dev.handle_timeout(now);
    let query = next_request(&mut dev);
    reply(&mut dev, &query, offer(500), now);
    let request = next_request(&mut dev);
    reply(
        &mut dev,
        &request,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Abort),
        now,
    );
    let report = ended(&mut dev);
    assert_eq!(
        report.outcome,
        UpgradeOutcome::Aborted {
            status: ZclStatus::ABORT
        }
    );

    // Next attempt: the server goes silent; the device retries the same offset, then gives up.
    now += dev.config.query_interval;
    dev.handle_timeout(now);
    let query = next_request(&mut dev);
    reply(&mut dev, &query, offer(500), now);
    let first = next_request(&mut dev);
    for _ in 0..3 {
        now = dev.poll_timeout().unwrap();
        dev.handle_timeout(now);
        let retry = next_request(&mut dev);
        let (OtaCommand::ImageBlockRequest(a), OtaCommand::ImageBlockRequest(b)) =
            (&first.command, &retry.command)
        else {
            panic!()
        };
        assert_eq!(a.file_offset, b.file_offset);
        assert_ne!(first.header.tsn, retry.header.tsn);
    }
    now = dev.poll_timeout().unwrap();
    dev.handle_timeout(now);
    let report = ended(&mut dev);
    assert_eq!(report.outcome, UpgradeOutcome::GaveUp);
    assert_eq!(report.retries, 4);
}

#[test]
fn oversized_or_misplaced_blocks_are_not_taken() {
    let now = origin();
    let file = ota_file(NEW, 200);
    let mut dev = device("0x1189:0x0005:0x100:1:20", now);
    dev.handle_timeout(now);
    let query = next_request(&mut dev);
    reply(&mut dev, &query, offer(file.len()), now);
    let request = next_request(&mut dev);
    let OtaCommand::ImageBlockRequest(b) = &request.command else {
        panic!()
    };
    reply(&mut dev, &request, block(b, &file, 30), now); // larger than asked
    let again = next_request(&mut dev);
    let OtaCommand::ImageBlockRequest(b2) = &again.command else {
        panic!()
    };
    assert_eq!(b2.file_offset, 0, "the oversized block was not taken");
    // A late answer to the first request (old TSN) is ignored too.
    reply(&mut dev, &request, block(b, &file, 20), now);
    assert!(dev.poll_transmit().is_none());
    assert_eq!(dev.counters.protocol_violations, 1);
}

// ---------------------------------------------------------------------------------------------
// Hooks: how a device may differ from the default client, and its log.

/// A device with `hooks`, blocks of 40 bytes, queried and offered a `file` of NEW at once;
/// returns its first request after the offer, if it sends one at once.
fn offered(hooks: DeviceHooks, file: &[u8], now: Instant) -> (SimDevice, Option<OtaFrame>) {
    let mut config =
        SimDeviceConfig::new(Nwk(1), Ieee(2), "0x1189:0x0005:0x100:1:40".parse().unwrap());
    config.first_query_after = Duration::ZERO;
    config.response_timeout = Duration::from_secs(2);
    config.hooks = hooks;
    let mut dev = SimDevice::new(config, now);
    dev.handle_timeout(now);
    let query = next_request(&mut dev);
    reply(&mut dev, &query, offer(file.len()), now);
    let first = dev
        .poll_transmit()
        .map(|bytes| OtaFrame::decode(&bytes).unwrap());
    (dev, first)
}

/// In page mode a block lost from a page is held back: the blocks past it wait, the page's end
/// brings one Image Block Request for the gap, then the next page.
#[test]
fn pages_hold_blocks_past_a_gap_and_fill_it_with_one_block_request() {
    let now = origin();
    let file = ota_file(NEW, 200);
    let hooks = DeviceHooks {
        fetch: Fetch::Pages {
            page_size: 120,
            response_spacing_ms: 10,
        },
        keep_log: true,
        ..DeviceHooks::default()
    };
    let (mut dev, page) = offered(hooks, &file, now);
    let page = page.expect("a page request");
    let OtaCommand::ImagePageRequest(asked) = &page.command else {
        panic!("{page:?}")
    };
    assert_eq!(
        (asked.file_offset, asked.page_size, asked.response_spacing),
        (0, 120, 10)
    );
    // Blocks 0 and 80 arrive; 40 is lost. The page has not ended yet at 40.
    reply(&mut dev, &page, block_at(&file, 0, 40), now);
    assert!(dev.poll_transmit().is_none(), "the page runs on");
    reply(&mut dev, &page, block_at(&file, 80, 40), now);
    assert_eq!(
        dev.bytes_held(),
        40,
        "the block past the gap is held, not appended"
    );
    let gap = next_request(&mut dev);
    let OtaCommand::ImageBlockRequest(gap_request) = &gap.command else {
        panic!("{gap:?}")
    };
    assert_eq!(gap_request.file_offset, 40);
    reply(&mut dev, &gap, block_at(&file, 40, 40), now);
    assert_eq!(dev.bytes_held(), 120, "the held block follows the gap");
    let second = next_request(&mut dev);
    let OtaCommand::ImagePageRequest(asked) = &second.command else {
        panic!("{second:?}")
    };
    assert_eq!(asked.file_offset, 120);
    reply(&mut dev, &second, block_at(&file, 120, 40), now);
    reply(&mut dev, &second, block_at(&file, 160, 40), now);
    let end = next_request(&mut dev);
    let OtaCommand::UpgradeEndRequest(end) = &end.command else {
        panic!("{end:?}")
    };
    assert_eq!(end.status, ZclStatus::SUCCESS, "the whole file checked out");
    let log = dev.log();
    assert_eq!(
        (log.page_requests, log.block_requests, log.blocks.len()),
        (2, 1, 5)
    );
}

/// A device that vanishes hears nothing while away, then asks for the block after the last it
/// holds; `request_delay` paces its requests and stretches its answer timeout.
#[test]
fn a_vanished_device_resumes_where_it_stopped_at_its_own_pace() {
    let now = origin();
    let file = ota_file(NEW, 200);
    let delay = Duration::from_secs(7);
    let away = Duration::from_secs(60);
    let hooks = DeviceHooks {
        request_delay: delay,
        vanish: Some(Vanish {
            after_bytes: 80,
            away,
        }),
        ..DeviceHooks::default()
    };
    let (mut dev, first) = offered(hooks, &file, now);
    assert!(first.is_none(), "the first request waits for the delay");
    assert_eq!(dev.poll_timeout(), Some(now + delay));
    let mut at = now + delay;
    dev.handle_timeout(at);
    let request = next_request(&mut dev);
    reply(&mut dev, &request, block_at(&file, 0, 40), at);
    assert_eq!(dev.poll_timeout(), Some(at + delay));
    at += delay;
    dev.handle_timeout(at);
    let request = next_request(&mut dev);
    assert_eq!(
        dev.poll_timeout(),
        Some(at + delay),
        "waits at least its delay for an answer"
    );
    reply(&mut dev, &request, block_at(&file, 40, 40), at);
    // Holding 80 bytes, it goes.
    assert!(dev.is_offline(at));
    assert_eq!(dev.poll_timeout(), Some(at + away));
    reply(
        &mut dev,
        &request,
        block_at(&file, 80, 40),
        at + Duration::from_secs(1),
    );
    assert_eq!(dev.bytes_held(), 80, "nothing heard while away");
    dev.handle_timeout(at + Duration::from_secs(30));
    assert!(dev.poll_transmit().is_none(), "nothing sent while away");
    dev.handle_timeout(at + away);
    assert!(!dev.is_offline(at + away));
    let resumed = next_request(&mut dev);
    let OtaCommand::ImageBlockRequest(resumed) = &resumed.command else {
        panic!("{resumed:?}")
    };
    assert_eq!(resumed.file_offset, 80);
}

/// A lost Image Block Request goes again as it was, TSN included, with `resend_same_tsn`.
#[test]
fn a_lost_block_request_is_resent_with_the_same_tsn() {
    let now = origin();
    let file = ota_file(NEW, 200);
    let hooks = DeviceHooks {
        resend_same_tsn: true,
        first_tsn: 7,
        ..DeviceHooks::default()
    };
    let (mut dev, first) = offered(hooks, &file, now);
    let first = first.expect("a block request");
    assert_eq!(first.header.tsn, 8, "the query took TSN 7");
    dev.handle_timeout(now + Duration::from_secs(2));
    let again = next_request(&mut dev);
    assert_eq!(again, first);
    assert_eq!(dev.log().retries, 1);
}

/// A forced Upgrade End status goes out unchecked: SUCCESS for any bytes (then applied and
/// logged, the report saying it was not verified), or a failure that ends the attempt.
#[test]
fn a_forced_end_status_is_sent_without_checking_the_image() {
    let now = origin();
    let garbage = vec![0x5A; 100];
    let hooks = DeviceHooks {
        end_status: Some(ZclStatus::SUCCESS),
        keep_log: true,
        silent_while_awaiting_command: true,
        ..DeviceHooks::default()
    };
    let (mut dev, first) = offered(hooks.clone(), &garbage, now);
    let mut request = first.expect("a block request");
    let end = loop {
        let OtaCommand::ImageBlockRequest(b) = &request.command else {
            break request;
        };
        let answer = block(b, &garbage, 40);
        reply(&mut dev, &request, answer, now);
        request = next_request(&mut dev);
    };
    let OtaCommand::UpgradeEndRequest(sent) = &end.command else {
        panic!("{end:?}")
    };
    assert_eq!(sent.status, ZclStatus::SUCCESS);
    // Told to wait for the command, it waits silently.
    let told = |upgrade_time| {
        OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
            manufacturer_code: MFR,
            image_type: TYPE,
            file_version: NEW,
            current_time: 0,
            upgrade_time,
        })
    };
    reply(&mut dev, &end, told(u32::MAX), now);
    assert_eq!(dev.poll_timeout(), None);
    reply(&mut dev, &end, told(0), now + Duration::from_secs(3600));
    assert_eq!(dev.current_version(), NEW);
    let report = ended(&mut dev);
    assert_eq!(
        (report.outcome, report.verified),
        (UpgradeOutcome::Upgraded, false)
    );
    assert_eq!(dev.log().installed, garbage);
    assert_eq!(dev.log().upgrade_times, [u32::MAX, 0]);

    let refusing = DeviceHooks {
        end_status: Some(ZclStatus::ABORT),
        ..hooks
    };
    let (mut dev, first) = offered(refusing, &garbage[..40], now);
    let first = first.expect("a block request");
    reply(&mut dev, &first, block_at(&garbage, 0, 40), now);
    let OtaCommand::UpgradeEndRequest(sent) = next_request(&mut dev).command else {
        panic!("no end request")
    };
    assert_eq!(sent.status, ZclStatus::ABORT);
    let report = ended(&mut dev);
    assert_eq!(
        report.outcome,
        UpgradeOutcome::EndedWith {
            status: ZclStatus::ABORT
        }
    );
    assert!(!dev.is_busy());
}
