//! What the status socket sees and the device table: progress field names, the table bound, a
//! query before the upgrade time, a rejoin with a new network address.

use super::*;

#[test]
fn progress_serialises_with_the_status_socket_field_names() {
    let img = image(NEW, 1_000, 29);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, None), t0);
    server.handle_frame(
        DEV,
        &block_request(3, new_key(), 50, 50, None),
        t0 + Duration::from_millis(500),
    );
    let progress = server.progress();
    let json = serde_json::to_value(&progress[0]).unwrap();
    assert_eq!(json["ieee"], "00:11:22:33:44:55:66:77");
    assert_eq!(json["nwk"], 0x1234);
    assert_eq!(json["manufacturer_code"], MFR);
    assert_eq!(json["image_type"], IMAGE_TYPE);
    assert_eq!(json["file_version"], NEW);
    assert_eq!(json["offset"], 100);
    assert_eq!(json["image_size"], 1_000);
    assert_eq!(json["state"], "downloading");
    // 50 bytes beyond the start in 0.5 s.
    assert_eq!(json["bytes_per_second"], 100);
    assert_eq!(json["eta_seconds"], 9);
    assert_eq!(json["percent"], 10);
}

#[test]
fn device_table_is_bounded() {
    let config = ServerConfig {
        max_sessions: 10,
        ..ServerConfig::default()
    };
    let (mut server, t0) = server_with(config, vec![image(NEW, 1_000, 31)]);
    // The first device downloads; then 50 made-up addresses query.
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, None), t0);
    for i in 0..50u16 {
        let stranger = DeviceAddr {
            nwk: 0x8000 + i,
            ieee: None,
            endpoint: 1,
        };
        server.handle_frame(
            stranger,
            &query(3, OLD, None),
            t0 + Duration::from_secs(u64::from(i)),
        );
    }
    assert_eq!(server.devices().len(), 10);
    // Every query was still answered, and the downloading device kept its session.
    assert_eq!(replies(&mut server).len(), 52);
    assert_eq!(server.progress().len(), 1);
}

#[test]
fn a_query_before_the_upgrade_time_is_not_a_failed_upgrade() {
    let config = ServerConfig {
        upgrade_time: UpgradeTimePolicy::AfterDelay(Duration::from_secs(120)),
        ..ServerConfig::default()
    };
    let (mut server, t0) = server_with(config, vec![image(NEW, 100, 32)]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, None), t0);
    server.handle_frame(DEV, &block_request(3, new_key(), 50, 50, None), t0);
    server.handle_frame(DEV, &upgrade_end(4, ZclStatus::SUCCESS, new_key()), t0);
    replies(&mut server);
    let judged = |server: &mut OtaServer| {
        std::iter::from_fn(|| server.poll_event())
            .filter(|e| {
                matches!(
                    e,
                    ServerEvent::UpgradeConfirmed { .. } | ServerEvent::UpgradeNotApplied { .. }
                )
            })
            .collect::<Vec<_>>()
    };
    judged(&mut server);
    // Still running the old version 10 s later: it has two minutes to go.
    server.handle_frame(DEV, &query(5, OLD, None), t0 + Duration::from_secs(10));
    assert!(judged(&mut server).is_empty());
    // After the upgrade time, still the old version: not applied.
    server.handle_frame(DEV, &query(6, OLD, None), t0 + Duration::from_secs(130));
    let events = judged(&mut server);
    assert!(matches!(
        events.as_slice(),
        [ServerEvent::UpgradeNotApplied {
            running_version: OLD,
            ..
        }]
    ));
    let history: Vec<_> = server.history().cloned().collect();
    assert_eq!(history[0].confirmed, Some(false));
}

#[test]
fn a_device_that_rejoins_with_a_new_network_address_keeps_its_transfer() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![image(NEW, 1_000, 33)]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, None), t0);
    replies(&mut server);
    let rejoined = DeviceAddr { nwk: 0x4321, ..DEV };
    server.handle_frame(rejoined, &block_request(3, new_key(), 50, 50, None), t0);
    let out = replies(&mut server);
    assert_eq!(out[0].destination, Destination::Unicast(rejoined));
    assert_eq!(block_of(&decode(&out[0])).0, 50);
    let progress = server.progress();
    assert_eq!(progress.len(), 1);
    assert_eq!((progress[0].nwk, progress[0].offset), (0x4321, 100));
    let started = std::iter::from_fn(|| server.poll_event())
        .filter(|e| matches!(e, ServerEvent::TransferStarted { .. }))
        .count();
    assert_eq!(started, 1);
}
