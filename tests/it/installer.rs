//! The installer's decisions on the sans-IO server, on a virtual clock: approval, the apply
//! window (local time), a restart while a device waits, cancel, hold and the rolling-update
//! order. Frames are built and read with the `zcl` module; time moves only when a test says so.

use std::time::{Duration, Instant};

use zigbee_otad::server::control::ApplyWindow;
use zigbee_otad::server::{
    ControlError, DeviceAddr, ImageKey, InstallMode, OtaServer, ServerConfig, TransferState,
    UpgradeTimePolicy,
};
use zigbee_otad::zcl::ota::{ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageResponse};
use zigbee_otad::zcl::{Ieee, ZclStatus};

use crate::server::{block_request, image, query, upgrade_end};

const OLD: u32 = 0x0100_0000;
const NEW: u32 = 0x0200_0000;
const FILE: ImageKey = ImageKey {
    manufacturer_code: 0x1189,
    image_type: 0x0042,
    file_version: NEW,
};
/// 2026-01-01 01:00:00 UTC.
const ONE_AM_UTC: u64 = 1_767_229_200;

#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn device(n: u16) -> DeviceAddr {
    DeviceAddr {
        nwk: 0x1000 + n,
        ieee: Some(Ieee(0x00AA_0000_0000_0000 + u64::from(n))),
        endpoint: 1,
    }
}

fn server(config: ServerConfig, now: Instant) -> OtaServer {
    let mut server = OtaServer::new(config);
    server.set_images(vec![image(NEW, 400, 3)], now);
    server.set_wall_clock(now, ONE_AM_UTC);
    server
}

/// Hands `bytes` from `from` to the server and returns every frame it sends.
fn exchange(server: &mut OtaServer, from: DeviceAddr, bytes: &[u8], now: Instant) -> Vec<OtaFrame> {
    server.handle_frame(from, bytes, now);
    drain(server)
}

fn drain(server: &mut OtaServer) -> Vec<OtaFrame> {
    std::iter::from_fn(|| server.poll_transmit())
        .map(|out| OtaFrame::decode(&out.zcl_bytes).unwrap())
        .collect()
}

fn offered(frames: &[OtaFrame]) -> bool {
    frames.iter().any(|f| {
        matches!(
            f.command,
            OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success { .. })
        )
    })
}

fn block_answer(frames: &[OtaFrame]) -> &ImageBlockResponse {
    frames
        .iter()
        .find_map(|f| match &f.command {
            OtaCommand::ImageBlockResponse(r) => Some(r),
            _ => None,
        })
        .expect("an Image Block Response")
}

fn upgrade_times(frames: &[OtaFrame]) -> Vec<u32> {
    frames
        .iter()
        .filter_map(|f| match &f.command {
            OtaCommand::UpgradeEndResponse(r) => Some(r.upgrade_time),
            _ => None,
        })
        .collect()
}

/// Downloads the whole image (blocks of 50) and sends the Upgrade End Request.
fn download_and_end(server: &mut OtaServer, who: DeviceAddr, now: Instant) -> Vec<OtaFrame> {
    // TSNs of their own: a request with the bytes of an earlier one is a retry.
    assert!(offered(&exchange(server, who, &query(100, OLD, None), now)));
    let mut offset = 0;
    let mut tsn = 101u8;
    while offset < 400 {
        let frames = exchange(
            server,
            who,
            &block_request(tsn, FILE, offset, 50, None),
            now,
        );
        assert!(
            matches!(block_answer(&frames), ImageBlockResponse::Success { .. }),
            "{frames:?}"
        );
        offset += 50;
        tsn = tsn.wrapping_add(1);
    }
    exchange(
        server,
        who,
        &upgrade_end(tsn, ZclStatus::SUCCESS, FILE),
        now,
    )
}

fn state_of(server: &OtaServer, who: DeviceAddr) -> Option<TransferState> {
    server
        .history()
        .chain(server.progress().iter())
        .filter(|t| t.ieee == who.ieee)
        .last()
        .map(|t| t.state)
}

/// An image that reaches the catalog after a device's last query shows as available at once
/// (status, Home Assistant), not at the device's next query, which for a sleepy device may be
/// a day away. Nothing is sent to it in approve mode until approved.
#[test]
fn an_image_added_later_shows_as_available_before_the_next_query() {
    let now = origin();
    let mut s = server(
        ServerConfig {
            install: InstallMode::Approve,
            ..ServerConfig::default()
        },
        now,
    );
    s.set_images(Vec::new(), now);
    let d = device(1);
    assert!(!offered(&exchange(&mut s, d, &query(1, OLD, None), now)));
    assert_eq!(s.devices()[0].available_file_version, None);
    s.set_images(vec![image(NEW, 400, 3)], now);
    assert_eq!(s.devices()[0].available_file_version, Some(NEW));
    // The image goes away again: so does the availability.
    s.set_images(Vec::new(), now);
    assert_eq!(s.devices()[0].available_file_version, None);
}

#[test]
fn approve_mode_shows_the_image_serves_nothing_and_offers_it_once_approved() {
    let now = origin();
    let mut s = server(
        ServerConfig {
            install: InstallMode::Approve,
            ..ServerConfig::default()
        },
        now,
    );
    let d = device(1);
    assert!(!offered(&exchange(&mut s, d, &query(1, OLD, None), now)));
    let status = &s.devices()[0];
    assert_eq!(status.available_file_version, Some(NEW));
    assert!(!status.approved);
    assert!(status.withheld.as_deref().unwrap().contains("approve"));
    // Asking for a block anyway (a resume, a hostile client) gets ABORT.
    let frames = exchange(&mut s, d, &block_request(2, FILE, 0, 50, None), now);
    assert_eq!(block_answer(&frames), &ImageBlockResponse::Abort);
    assert_eq!(
        s.approve(device(9).ieee.unwrap(), None, now),
        Err(ControlError::UnknownDevice(device(9).ieee.unwrap()))
    );
    assert_eq!(s.approve(d.ieee.unwrap(), None, now), Ok(Some(NEW)));
    // The device is told to ask (unicast Image Notify), and now gets the image.
    assert!(!drain(&mut s).is_empty());
    assert!(s.devices()[0].approved);
    assert_eq!(upgrade_times(&download_and_end(&mut s, d, now)), vec![0]);
}

#[test]
fn the_apply_window_in_local_time_releases_a_waiting_device_when_it_opens() {
    let now = origin();
    // 03:00-04:00 local; at UTC+1 the local time is 02:00, one hour before it opens.
    let mut s = server(
        ServerConfig {
            apply_window: Some("03:00-04:00".parse::<ApplyWindow>().unwrap()),
            ..ServerConfig::default()
        },
        now,
    );
    s.set_utc_offset(3600);
    let d = device(1);
    assert_eq!(
        upgrade_times(&download_and_end(&mut s, d, now)),
        vec![u32::MAX]
    );
    assert_eq!(state_of(&s, d), Some(TransferState::Downloaded));
    s.handle_timeout(now);
    let opens = s.poll_timeout().unwrap();
    assert_eq!(opens - now, Duration::from_secs(3600));
    // Just before it opens nothing happens; at the opening the command goes out.
    s.handle_timeout(opens - Duration::from_secs(1));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(opens);
    assert_eq!(upgrade_times(&drain(&mut s)), vec![0]);
    assert_eq!(state_of(&s, d), Some(TransferState::Finished));
    // A device finishing inside the window is told "now" at once.
    let e = device(2);
    assert_eq!(upgrade_times(&download_and_end(&mut s, e, opens)), vec![0]);
}

#[test]
fn a_device_waiting_across_a_restart_is_still_released() {
    let now = origin();
    let wait = ServerConfig {
        upgrade_time: UpgradeTimePolicy::WaitForCommand,
        ..ServerConfig::default()
    };
    let mut before = server(wait.clone(), now);
    let d = device(1);
    download_and_end(&mut before, d, now);
    let saved = serde_json::to_string(before.control_state()).unwrap();
    drop(before);

    let later = now + Duration::from_secs(600);
    let mut after = server(wait, later);
    after.restore_control(serde_json::from_str(&saved).unwrap(), later);
    assert_eq!(state_of(&after, d), Some(TransferState::Downloaded));
    // The device asks again (as clients waiting for the command do): still told to wait, and
    // no second history entry.
    let frames = exchange(
        &mut after,
        d,
        &upgrade_end(40, ZclStatus::SUCCESS, FILE),
        later,
    );
    assert_eq!(upgrade_times(&frames), vec![u32::MAX]);
    assert_eq!(after.history().count(), 1);
    assert_eq!(after.apply(d.ieee.unwrap(), later), Ok(FILE));
    assert_eq!(upgrade_times(&drain(&mut after)), vec![0]);
    assert_eq!(state_of(&after, d), Some(TransferState::Finished));
    // A sleepy device that missed the command gets "now" when it next asks.
    let frames = exchange(
        &mut after,
        d,
        &upgrade_end(41, ZclStatus::SUCCESS, FILE),
        later,
    );
    assert_eq!(upgrade_times(&frames), vec![0]);
    // Its next query reports the new version: the waiting record is gone.
    exchange(&mut after, d, &query(42, NEW, None), later);
    assert!(after.control_state().downloaded.is_empty());
}

#[test]
fn cancel_aborts_the_next_block_and_hold_withholds_until_release() {
    let now = origin();
    let mut s = server(ServerConfig::default(), now);
    let d = device(1);
    let ieee = d.ieee.unwrap();
    assert!(offered(&exchange(&mut s, d, &query(1, OLD, None), now)));
    let frames = exchange(&mut s, d, &block_request(2, FILE, 0, 50, None), now);
    assert!(matches!(
        block_answer(&frames),
        ImageBlockResponse::Success { .. }
    ));
    assert_eq!(s.cancel(ieee, now), Ok(FILE));
    assert_eq!(state_of(&s, d), Some(TransferState::Cancelled));
    let frames = exchange(&mut s, d, &block_request(3, FILE, 50, 50, None), now);
    assert_eq!(block_answer(&frames), &ImageBlockResponse::Abort);
    assert!(!offered(&exchange(&mut s, d, &query(4, OLD, None), now)));
    // Approving again lifts the cancellation; a hold keeps the device where it is.
    s.approve(ieee, None, now).unwrap();
    s.hold(ieee, Some(ONE_AM_UTC + 3600), now).unwrap();
    drain(&mut s);
    assert!(!offered(&exchange(&mut s, d, &query(5, OLD, None), now)));
    assert!(s.devices()[0].held);
    // A timed hold ends by itself.
    let past = now + Duration::from_secs(3601);
    assert!(offered(&exchange(&mut s, d, &query(6, OLD, None), past)));
    s.hold(ieee, None, past).unwrap();
    assert!(!offered(&exchange(&mut s, d, &query(7, OLD, None), past)));
    s.release(ieee, past).unwrap();
    assert_eq!(s.release(ieee, past), Err(ControlError::NotHeld(ieee)));
    assert!(offered(&exchange(&mut s, d, &query(8, OLD, None), past)));
}

#[test]
fn a_rolling_update_serves_mains_powered_devices_before_sleepy_ones() {
    let now = origin();
    let mut s = server(
        ServerConfig {
            max_concurrent_transfers: 1,
            ..ServerConfig::default()
        },
        now,
    );
    let (busy, sleepy, router) = (device(1), device(2), device(3));
    // Their Basic-cluster PowerSource, as the identity reader learns it: 0x03 battery, 0x01
    // mains (single phase).
    let powered = |source| zigbee_otad::zcl::basic::BasicIdentity {
        power_source: Some(source),
        ..Default::default()
    };
    s.set_device_identity(sleepy.ieee.unwrap(), powered(0x03));
    s.set_device_identity(router.ieee.unwrap(), powered(0x01));
    let first_block = |s: &mut OtaServer, who, at| {
        exchange(s, who, &query(1, OLD, None), at);
        exchange(s, who, &block_request(2, FILE, 0, 50, None), at)
    };
    assert!(matches!(
        block_answer(&first_block(&mut s, busy, now)),
        ImageBlockResponse::Success { .. }
    ));
    // The sleepy device queues first, the router a second later: the router is ahead.
    let t1 = now + Duration::from_secs(1);
    let t2 = now + Duration::from_secs(2);
    assert!(matches!(
        block_answer(&first_block(&mut s, sleepy, t1)),
        ImageBlockResponse::WaitForData { .. }
    ));
    assert!(matches!(
        block_answer(&first_block(&mut s, router, t2)),
        ImageBlockResponse::WaitForData { .. }
    ));
    let position = |s: &OtaServer, who: DeviceAddr| {
        s.devices()
            .into_iter()
            .find(|d| d.ieee == who.ieee)
            .and_then(|d| d.queue_position)
    };
    assert_eq!(position(&s, router), Some(1));
    assert_eq!(position(&s, sleepy), Some(2));
    // The busy device is stopped: the slot goes to the router even though the sleepy device
    // asks first.
    s.cancel(busy.ieee.unwrap(), t2).unwrap();
    let t3 = now + Duration::from_secs(3);
    let frames = exchange(&mut s, sleepy, &block_request(3, FILE, 0, 50, None), t3);
    assert!(matches!(
        block_answer(&frames),
        ImageBlockResponse::WaitForData { .. }
    ));
    let frames = exchange(&mut s, router, &block_request(3, FILE, 0, 50, None), t3);
    assert!(matches!(
        block_answer(&frames),
        ImageBlockResponse::Success { .. }
    ));
    assert_eq!(position(&s, sleepy), Some(1));
}
