//! Whole upgrades on the virtual clock: many devices, a cap, sleepy and vanishing devices, a lossy
//! link, pages, the upgrade-time policies, notifies.

use super::*;

#[test]
fn whole_upgrade_is_byte_exact_and_confirmed() {
    let img = image(NEW, 10_000, 1);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let d = sim.add(device(0x1001, 0xAA01));
    assert!(sim.run_until(Duration::from_secs(3600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 1
    }));
    let device = &sim.devices[d];
    assert_eq!(device.current_version(), NEW);
    assert_same_bytes(&device.log().installed, &img.read_all().unwrap());
    // Every block was 50 bytes (the default cap; the device accepts 64) but the last.
    assert!(device.log().blocks.iter().all(|block| block.len <= 50));
    assert_eq!(device.log().blocks.len(), 10_000usize.div_ceil(50));
    let history: Vec<_> = sim.server.history().cloned().collect();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, TransferState::Finished);
    assert_eq!(history[0].confirmed, Some(true));
    assert_eq!(history[0].offset, 10_000);
    assert!(sim.server.progress().is_empty());
    let devices = sim.server.devices();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].current_file_version, Some(NEW));
    assert_eq!(devices[0].offered_file_version, None);
    // Milestones: started, ten progress reports at most, download complete, scheduled.
    assert_eq!(
        sim.count_events(|e| matches!(e, ServerEvent::TransferStarted { offset: 0, .. })),
        1
    );
    let progress = sim.count_events(|e| matches!(e, ServerEvent::Progress(_)));
    assert!((1..=10).contains(&progress), "{progress} progress events");
}

#[test]
fn ten_devices_under_a_cap_of_three_all_finish() {
    let img = image(NEW, 3_000, 2);
    let config = ServerConfig {
        max_concurrent_transfers: 3,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(config, vec![img.clone()]);
    for i in 0..10u16 {
        sim.add(device(0x2000 + i, 0xBB00 + u64::from(i)));
    }
    assert!(sim.run_until(Duration::from_secs(6 * 3600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 10
    }));
    assert_eq!(sim.peak_downloading, 3);
    for device in &sim.devices {
        assert_same_bytes(&device.log().installed, &img.read_all().unwrap());
    }
    let waited = sim
        .devices
        .iter()
        .filter(|d| !d.log().wait_for_data.is_empty())
        .count();
    assert!(waited >= 7, "{waited} devices were told to wait");
    // Every WAIT_FOR_DATA carried a sensible request time, never 0.
    assert!(
        sim.devices
            .iter()
            .flat_map(|d| &d.log().wait_for_data)
            .all(|t| (10..=600).contains(t))
    );
}

#[test]
fn vanished_device_resumes_an_hour_later_at_its_old_offset() {
    let img = image(NEW, 8_000, 3);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = device(0x3001, 0xCC01);
    device.hooks.vanish = Some(Vanish {
        after_bytes: 3_000,
        away: Duration::from_secs(3600),
    });
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(3 * 3600), |s| s.all_upgraded(NEW)));
    let device = &sim.devices[d];
    assert_same_bytes(&device.log().installed, &img.read_all().unwrap());
    // The first transfer was ended by the idle timeout; the second resumed where it stopped.
    let history: Vec<_> = sim.server.history().cloned().collect();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].state, TransferState::Failed);
    assert_eq!(history[0].offset, 3_000);
    assert_eq!(history[1].state, TransferState::Finished);
    let resumed: Vec<u32> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            ServerEvent::TransferStarted { offset, .. } => Some(*offset),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, vec![0, 3_000]);
    // No byte before the old offset was sent twice.
    let resent = device
        .log()
        .blocks
        .iter()
        .filter(|block| block.at > sim.t0 + Duration::from_secs(3600) && block.offset < 3_000)
        .count();
    assert_eq!(resent, 0);
}

#[test]
fn sleepy_device_polling_every_seven_seconds_finishes() {
    let img = image(NEW, 1_000, 4);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = device(0x4001, 0xDD01);
    device.hooks.request_delay = Duration::from_secs(7);
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(3600), |s| s.all_upgraded(NEW)));
    assert_same_bytes(&sim.devices[d].log().installed, &img.read_all().unwrap());
    assert_eq!(
        sim.count_events(|e| matches!(e, ServerEvent::TransferFailed { .. })),
        0
    );
    // 20 blocks, 7 s apart: about 140 s.
    assert!(sim.elapsed() >= Duration::from_secs(133));
}

#[test]
fn lossy_link_with_duplicates_and_retries_stays_byte_exact() {
    let img = image(NEW, 5_000, 12);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    sim.drop_every = Some(7);
    sim.duplicate_every = Some(3);
    let d = sim.add(device(0x4101, 0xDD11));
    assert!(sim.run_until(Duration::from_secs(3600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 1
    }));
    let device = &sim.devices[d];
    assert_same_bytes(&device.log().installed, &img.read_all().unwrap());
    assert!(device.log().retries > 5, "{} retries", device.log().retries);
    // Retries and duplicates were answered again, not started over or counted twice.
    assert_eq!(
        sim.count_events(|e| matches!(e, ServerEvent::TransferStarted { .. })),
        1
    );
    assert_eq!(
        sim.count_events(|e| matches!(e, ServerEvent::TransferFailed { .. })),
        0
    );
    let history: Vec<_> = sim.server.history().cloned().collect();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].offset, 5_000);
}

#[test]
fn page_requests_are_streamed_at_the_requested_spacing() {
    let img = image(NEW, 2_000, 5);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = device(0x5001, 0xEE01);
    device.hooks.fetch = Fetch::Pages {
        page_size: 500,
        response_spacing_ms: 100,
    };
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(3600), |s| s.all_upgraded(NEW)));
    let device = &sim.devices[d];
    assert_same_bytes(&device.log().installed, &img.read_all().unwrap());
    // Blocks within a page arrive at least 100 ms apart.
    for pair in device.log().blocks.windows(2) {
        let same_page = pair[0].offset / 500 == pair[1].offset / 500;
        let gap = pair[1].at - pair[0].at;
        assert!(
            !same_page || gap >= Duration::from_millis(100),
            "blocks {gap:?} apart"
        );
    }
    assert_eq!(device.log().blocks.len(), 2_000usize.div_ceil(50));
}

#[test]
fn lost_page_block_is_fetched_with_a_block_request() {
    let img = image(NEW, 1_000, 6);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = device(0x5101, 0xEE11);
    device.hooks.fetch = Fetch::Pages {
        page_size: 1_000,
        response_spacing_ms: 50,
    };
    let d = sim.add(device);
    // Run until the third page block has been sent, then lose it in the air.
    assert!(
        sim.run_until(Duration::from_secs(60), |s| s.devices[0].log().blocks.len()
            == 2)
    );
    let lost = loop {
        assert!(sim.run_until(Duration::from_secs(60), |s| !s.in_flight.is_empty()));
        if let Some(i) = sim
            .in_flight
            .iter()
            .position(|(_, d)| matches!(d, Delivery::ToDevice(..)))
        {
            break sim.in_flight.remove(i);
        }
        sim.run_until(Duration::from_secs(60), |s| s.in_flight.is_empty());
    };
    drop(lost);
    assert!(sim.run_until(Duration::from_secs(600), |s| s.all_upgraded(NEW)));
    assert_same_bytes(&sim.devices[d].log().installed, &img.read_all().unwrap());
    // The page ran on after the loss; the device then asked for the missing block alone.
    assert_eq!(sim.devices[d].log().block_requests, 1);
    assert_eq!(sim.devices[d].log().page_requests, 1);
}

fn upgrade_time_under(policy: UpgradeTimePolicy, wall_clock: Option<u64>) -> (Sim, usize) {
    let img = image(NEW, 500, 7);
    let config = ServerConfig {
        upgrade_time: policy,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(config, vec![img]);
    if let Some(unix) = wall_clock {
        let now = sim.now;
        sim.server.set_wall_clock(now, unix);
    }
    let d = sim.add(device(0x6001, 0xF001));
    assert!(sim.run_until(Duration::from_secs(600), |s| {
        !s.devices[0].log().upgrade_times.is_empty()
    }));
    (sim, d)
}

#[test]
fn upgrade_time_immediately() {
    let (mut sim, d) = upgrade_time_under(UpgradeTimePolicy::Immediately, None);
    assert_eq!(sim.devices[d].log().upgrade_times, vec![0]);
    assert!(sim.run_until(Duration::from_secs(600), |s| s.all_upgraded(NEW)));
}

#[test]
fn upgrade_time_after_a_delay() {
    let (mut sim, d) = upgrade_time_under(
        UpgradeTimePolicy::AfterDelay(Duration::from_secs(120)),
        None,
    );
    assert_eq!(sim.devices[d].log().upgrade_times, vec![120]);
    let told = sim.now;
    assert!(sim.run_until(Duration::from_secs(600), |s| s.all_upgraded(NEW)));
    assert!(sim.now - told >= Duration::from_secs(120));
}

#[test]
fn upgrade_time_waits_for_the_command() {
    let (mut sim, d) = upgrade_time_under(UpgradeTimePolicy::WaitForCommand, None);
    assert_eq!(sim.devices[d].log().upgrade_times, vec![u32::MAX]);
    assert!(!sim.run_until(Duration::from_secs(1200), |s| s.all_upgraded(NEW)));
    let key = DeviceKey::Ieee(Ieee(0xF001));
    let now = sim.now;
    assert!(sim.server.upgrade_now(key, now));
    assert!(!sim.server.upgrade_now(key, now), "only once");
    assert!(sim.run_until(Duration::from_secs(1800), |s| s.all_upgraded(NEW)));
    assert_eq!(sim.devices[d].log().upgrade_times, vec![u32::MAX, 0]);
}

#[test]
fn upgrade_time_in_a_maintenance_window() {
    // 2026-01-01 01:00:00 UTC; window 03:00-04:00: two hours to wait.
    let one_am = 1_767_229_200;
    let window = UpgradeTimePolicy::MaintenanceWindow {
        start_seconds_utc: 3 * 3600,
        end_seconds_utc: 4 * 3600,
    };
    let (sim, d) = upgrade_time_under(window.clone(), Some(one_am));
    let told = sim.devices[d].log().upgrade_times[0];
    let elapsed = sim.elapsed().as_secs() as u32;
    assert_eq!(told, 2 * 3600 - elapsed);
    // Inside the window: now.
    let (sim, d) = upgrade_time_under(window.clone(), Some(one_am + 2 * 3600 + 60));
    assert_eq!(sim.devices[d].log().upgrade_times, vec![0]);
    // Without a wall clock the device waits for the command.
    let (sim, d) = upgrade_time_under(window, None);
    assert_eq!(sim.devices[d].log().upgrade_times, vec![u32::MAX]);
}

#[test]
fn catalog_refresh_mid_transfer_keeps_the_offered_bytes() {
    let original = image(NEW, 6_000, 8);
    let mut sim = Sim::new(ServerConfig::default(), vec![original.clone()]);
    let d = sim.add(device(0x7001, 0x7701));
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.devices[0].bytes_held()
            >= 2_000)
    );
    // The same version with other bytes, and a newer version, replace the catalog.
    let replacement = image(NEW, 6_000, 99);
    let newer = image(NEW + 1, 7_000, 100);
    let now = sim.now;
    sim.server.set_images(vec![replacement, newer], now);
    assert!(sim.run_until(
        Duration::from_secs(3600),
        |s| s.devices[0].current_version() == NEW
    ));
    assert_same_bytes(
        &sim.devices[d].log().installed,
        &original.read_all().unwrap(),
    );
    // The next query is offered the newer image.
    assert!(sim.run_until(
        Duration::from_secs(7200),
        |s| s.devices[0].current_version() == NEW + 1
    ));
}

#[test]
fn failed_upgrade_end_gets_a_default_response_and_is_recorded() {
    let img = image(NEW, 300, 9);
    let mut sim = Sim::new(ServerConfig::default(), vec![img]);
    let mut device = device(0x8001, 0x8801);
    device.hooks.end_status = Some(ZclStatus::INVALID_IMAGE);
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(600), |s| {
        !s.devices[0].log().default_responses.is_empty()
    }));
    assert_eq!(
        sim.devices[d].log().default_responses,
        vec![ZclStatus::SUCCESS]
    );
    let history: Vec<_> = sim.server.history().cloned().collect();
    assert_eq!(history[0].state, TransferState::Failed);
    assert!(
        sim.count_events(|e| matches!(
            e,
            ServerEvent::TransferFailed {
                reason: zigbee_otad::server::FailureReason::DeviceReported(
                    ZclStatus::INVALID_IMAGE
                ),
                ..
            }
        )) == 1
    );
}

#[test]
fn new_image_notifies_known_devices() {
    let mut sim = Sim::new(ServerConfig::default(), vec![]);
    sim.add(device(0x9001, 0x9901));
    // The device queries, hears NO_IMAGE_AVAILABLE and goes idle for 5 minutes.
    assert!(
        sim.run_until(Duration::from_secs(10), |s| !s.sent.is_empty()
            && !s.devices[0].is_busy())
    );
    let img = image(NEW, 400, 10);
    let now = sim.now;
    sim.server.set_images(vec![img], now);
    // The notify makes it query at once rather than after its 5-minute interval.
    assert!(sim.run_until(Duration::from_secs(60), |s| s.all_upgraded(NEW)));
    let notifies: Vec<_> = sim
        .sent
        .iter()
        .filter(|(_, o)| matches!(decode(o).command, OtaCommand::ImageNotify(_)))
        .collect();
    assert_eq!(notifies.len(), 1);
    assert!(matches!(notifies[0].1.destination, Destination::Unicast(_)));
}

#[test]
fn broadcast_notify_jitter_scales_with_the_number_of_devices() {
    let mut sim = Sim::new(ServerConfig::default(), vec![]);
    for i in 0..60u16 {
        sim.add(device(0xA000 + i, 0xA000 + u64::from(i)));
    }
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.sent.len() == 60
            && s.devices.iter().all(|d| !d.is_busy()))
    );
    let now = sim.now;
    sim.server.set_images(vec![image(NEW, 400, 11)], now);
    let out = sim.server.poll_transmit().unwrap();
    assert_eq!(out.destination, Destination::Broadcast(0xFFFF));
    assert_eq!(out.destination_endpoint, 0xFF);
    let OtaCommand::ImageNotify(notify) = decode(&out).command else {
        panic!("not a notify")
    };
    // 100 · 15 / 60 = 25.
    assert_eq!(notify.query_jitter, 25);
    assert!(
        sim.server.poll_transmit().is_none(),
        "one broadcast, not 60 unicasts"
    );
    // Another broadcast within a minute is held back; after it, allowed.
    let soon = now + Duration::from_secs(30);
    assert!(!sim.server.notify(NotifyTarget::Broadcast, soon));
    assert!(sim.server.poll_transmit().is_none());
    assert!(
        sim.server
            .notify(NotifyTarget::Broadcast, now + Duration::from_secs(61))
    );
    assert!(sim.server.poll_transmit().is_some());
    // On request, a unicast notify with jitter 100.
    let addr = sim.addr(0);
    assert!(sim.server.notify(NotifyTarget::Device(addr), now));
    let out = sim.server.poll_transmit().unwrap();
    assert_eq!(out.destination, Destination::Unicast(addr));
    let OtaCommand::ImageNotify(notify) = decode(&out).command else {
        panic!("not a notify")
    };
    assert_eq!(notify.query_jitter, 100);
}

// ---------------------------------------------------------------------------------------------
// One request at a time: what exactly goes back.
