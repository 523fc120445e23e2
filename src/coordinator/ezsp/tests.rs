//! Pair tests (quinn-proto's `Pair`): the sans-IO [`EzspHost`] wired byte for byte to the
//! sans-IO [`SimNcp`] (and, for transfers, the sans-IO [`OtaServer`]) on a virtual clock. No
//! pty, no sleeps: every run is the same, and each test takes milliseconds. The pty tests in
//! `tests/it/coordinator.rs` keep what is about the port itself (open, XON/XOFF, EOF).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::host::{EzspHost, HostConfig, HostEvent, RequestFailed, RequestId};
use crate::coordinator::network::NetworkSettings;
use crate::coordinator::serial::Backoff;
use crate::coordinator::virtual_rig::{
    DEVICE_IEEE, DEVICE_NWK, VirtualRig, device_config, keep_upgrade_report, numbered_unicast,
    origin, server_offering,
};
use crate::coordinator::{
    CLUSTER_OTA_UPGRADE, CoordinatorState, DeliveryOutcome, DeviceTable, Ieee, IncomingMessage,
    MessageTag, Nwk, PROFILE_HOME_AUTOMATION, UnicastMessage,
};
use crate::ezsp::command::{Command, Response};
use crate::ezsp::frame::FrameId;
use crate::ezsp::status::SlStatus;
use crate::server::{DeviceAddr, OtaServer};
use crate::sim::device::{SimDevice, UpgradeOutcome, UpgradeReport};
use crate::sim::{Faults, SimEvent, SimNcp, SimNcpConfig};

fn host_config() -> HostConfig {
    HostConfig {
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
        delivery_timeout: Duration::from_secs(5),
        ..HostConfig::new(1)
    }
}

/// The host, the simulated NCP and optionally the OTA server, on one virtual clock.
struct Pair {
    now: Instant,
    host: EzspHost,
    ncp: SimNcp,
    server: Option<OtaServer>,
    /// Whether a port exists for the host to open.
    port_exists: bool,
    /// Whether the host has the port open.
    port_open: bool,
    /// Whether bytes cross the line (false: a stick that hangs without vanishing).
    line_up: bool,
    next_tag: u32,
    /// Tags handed to the host → the outcomes reported for them.
    reports: BTreeMap<MessageTag, Vec<DeliveryOutcome>>,
    states: Vec<(Instant, CoordinatorState)>,
    incoming: Vec<IncomingMessage>,
    responses: Vec<(RequestId, Result<Response, RequestFailed>)>,
    callbacks: Vec<FrameId>,
    open_requests: Vec<Instant>,
    upgrades: Vec<UpgradeReport>,
    endpoint_registrations: usize,
}

impl Pair {
    fn new(ncp: SimNcpConfig, devices: Vec<SimDevice>, with_server: bool) -> Pair {
        let now = origin();
        let server = with_server.then(|| server_offering(3_000, now));
        Pair {
            now,
            host: EzspHost::new(host_config(), DeviceTable::default(), now).unwrap(),
            ncp: SimNcp::new(ncp, devices).unwrap(),
            server,
            port_exists: true,
            port_open: false,
            line_up: true,
            next_tag: 1,
            reports: BTreeMap::new(),
            states: Vec::new(),
            incoming: Vec::new(),
            responses: Vec::new(),
            callbacks: Vec::new(),
            open_requests: Vec::new(),
            upgrades: Vec::new(),
            endpoint_registrations: 0,
        }
    }

    /// One device that wants the image (when `image` is set, the byte-exact one).
    fn device(now: Instant, image: bool) -> SimDevice {
        let mut config = device_config(image.then_some(3_000));
        config.first_query_after = Duration::from_secs(1);
        config.response_timeout = Duration::from_secs(2);
        config.max_retries = 50;
        SimDevice::new(config, now)
    }

    fn host_event(&mut self, event: HostEvent) {
        let now = self.now;
        match event {
            HostEvent::StateChanged(state) => self.states.push((now, state)),
            HostEvent::OpenPort => {
                self.open_requests.push(now);
                if self.port_exists {
                    self.port_open = true;
                    self.host.port_opened(now);
                } else {
                    self.host.port_lost("no such file or directory", now);
                }
            }
            HostEvent::NetworkSettingsNeeded => {
                let settings = NetworkSettings::resolve(&Default::default(), None, &[7; 32]);
                self.host.network_settings(Ok(settings), now);
            }
            HostEvent::Delivery { tag, outcome } => {
                self.reports
                    .get_mut(&tag)
                    .expect("a report for a tag never handed over")
                    .push(outcome);
            }
            HostEvent::Incoming(message) => {
                if let (Some(server), true) =
                    (self.server.as_mut(), message.cluster == CLUSTER_OTA_UPGRADE)
                {
                    let source = DeviceAddr {
                        nwk: message.source.0,
                        ieee: message.ieee,
                        endpoint: message.src_endpoint,
                    };
                    server.handle_frame(source, &message.payload, now);
                }
                self.incoming.push(message);
            }
            HostEvent::Response { request, outcome } => self.responses.push((request, outcome)),
            HostEvent::Callback(callback) => self.callbacks.push(callback.frame_id()),
            _ => {}
        }
    }

    fn up(&mut self) {
        assert!(
            self.run_until(Duration::from_secs(30), |p| p.host.state()
                == CoordinatorState::Up),
            "not up: {:?}",
            self.states
        );
    }

    fn unicast(&mut self, payload: Vec<u8>) -> MessageTag {
        self.unicast_to(DEVICE_NWK, payload)
    }

    fn unicast_to(&mut self, destination: Nwk, payload: Vec<u8>) -> MessageTag {
        let tag = MessageTag(self.next_tag);
        self.next_tag += 1;
        self.reports.entry(tag).or_default();
        let message = UnicastMessage {
            destination,
            src_endpoint: 1,
            dst_endpoint: 1,
            profile: PROFILE_HOME_AUTOMATION,
            cluster: 0x0000,
            payload,
            aps_ack: true,
        };
        self.host.send_unicast(tag, message, None, self.now);
        tag
    }

    /// Every tag handed over got exactly one report (after the host has stopped, nothing
    /// may be left in flight).
    fn assert_every_send_reported_once(&mut self) {
        let now = self.now;
        self.host.stop(now);
        while let Some(event) = self.host.poll_event() {
            self.host_event(event);
        }
        for (tag, outcomes) in &self.reports {
            assert_eq!(outcomes.len(), 1, "{tag:?} reported {outcomes:?}");
        }
    }

    fn outcomes(&self) -> Vec<DeliveryOutcome> {
        self.reports.values().flatten().copied().collect()
    }

    fn went_through(&self, state: CoordinatorState) -> bool {
        self.states.iter().any(|(_, s)| *s == state)
    }
}

impl VirtualRig for Pair {
    fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        while let Some(event) = self.host.poll_event() {
            moved = true;
            self.host_event(event);
        }
        if let Some(server) = self.server.as_mut() {
            while self.host.accepts_commands() {
                let Some(outgoing) = server.poll_transmit() else {
                    break;
                };
                moved = true;
                let Some((tag, message)) = numbered_unicast(&outgoing, &mut self.next_tag) else {
                    continue;
                };
                self.reports.entry(tag).or_default();
                self.host.send_unicast(tag, message, None, now);
            }
            while server.poll_event().is_some() {}
        }
        if let Some(bytes) = self.host.poll_transmit(now) {
            moved = true;
            if self.port_open && self.line_up {
                self.ncp.handle_input(&bytes, now);
            }
        }
        while let Some(bytes) = self.ncp.poll_transmit(now) {
            moved = true;
            if self.port_open && self.line_up {
                self.host.handle_input(&bytes, now);
            }
        }
        while let Some(event) = self.ncp.poll_event() {
            moved = true;
            if let Some(SimEvent::EndpointRegistered { .. }) =
                keep_upgrade_report(&mut self.upgrades, event)
            {
                self.endpoint_registrations += 1;
            }
        }
        moved
    }

    fn deadlines(&self) -> Vec<Option<Instant>> {
        vec![
            self.host.poll_timeout(),
            self.ncp.poll_timeout(),
            self.server.as_ref().and_then(OtaServer::poll_timeout),
        ]
    }

    fn handle_timeouts(&mut self, now: Instant) {
        self.host.handle_timeout(now);
        self.ncp.handle_timeout(now);
        if let Some(server) = self.server.as_mut() {
            server.handle_timeout(now);
        }
    }

    fn clock(&mut self) -> &mut Instant {
        &mut self.now
    }
}

fn holding(version: u8) -> SimNcpConfig {
    SimNcpConfig {
        ezsp_version: version,
        ..SimNcpConfig::default().holding_network()
    }
}

#[test]
fn starts_up_at_every_version_holding_or_forming() {
    for version in 8..=17 {
        for held in [true, false] {
            let config = if held {
                holding(version)
            } else {
                SimNcpConfig {
                    ezsp_version: version,
                    ..SimNcpConfig::default()
                }
            };
            let mut pair = Pair::new(config, vec![], false);
            pair.up();
            let info = pair.host.network_info().unwrap();
            assert_eq!(info.protocol_version, version);
            assert_eq!(info.ieee, Ieee(0x00_0D_6F_FF_FE_00_00_01));
            assert_eq!(pair.host.max_payload(), Some(82));
            if held {
                assert_eq!(info.pan_id, 0x1A62, "v{version} resumed the held network");
            }
            assert_eq!(pair.ncp.endpoints().len(), 1, "v{version}: our endpoint");
            assert_eq!(pair.ncp.endpoints()[0].input_clusters, [0x0000, 0x0019]);
        }
    }
}

#[test]
fn whole_upgrade_at_v8_v12_v13_and_v17() {
    for version in [8, 12, 13, 17] {
        let now = origin();
        let mut pair = Pair::new(holding(version), vec![Pair::device(now, true)], true);
        pair.up();
        assert!(
            pair.run_until(Duration::from_secs(600), |p| !p.upgrades.is_empty()),
            "v{version}: no upgrade"
        );
        let report = &pair.upgrades[0];
        assert_eq!(report.outcome, UpgradeOutcome::Upgraded, "v{version}");
        assert!(report.verified, "v{version}: the image arrived byte-exact");
        assert!(pair.outcomes().iter().all(|o| o.is_delivered()));
        pair.assert_every_send_reported_once();
    }
}

#[test]
fn ncp_reset_mid_transfer_loses_nothing_and_the_transfer_finishes() {
    let mut pair = upgrade_through_a_reset(Faults {
        reset_after_messages: Some(20),
        ..Faults::default()
    });
    assert_eq!(pair.host.state(), CoordinatorState::Up);
    pair.assert_every_send_reported_once();
}

/// One device upgraded at v13 while the NCP resets with `faults`: the upgrade ends byte-exact
/// after a `Resetting` (the caller then checks that every send was reported once).
fn upgrade_through_a_reset(faults: Faults) -> Pair {
    let now = origin();
    let config = SimNcpConfig {
        faults,
        ..holding(13)
    };
    let mut pair = Pair::new(config, vec![Pair::device(now, true)], true);
    pair.up();
    assert!(pair.run_until(Duration::from_secs(900), |p| !p.upgrades.is_empty()));
    assert!(
        pair.went_through(CoordinatorState::Resetting),
        "{:?}",
        pair.states
    );
    assert_eq!(pair.upgrades[0].outcome, UpgradeOutcome::Upgraded);
    assert!(pair.upgrades[0].verified);
    pair
}

#[test]
fn lost_delivery_reports_time_out_once_each() {
    let now = origin();
    let config = SimNcpConfig {
        faults: Faults {
            lost_delivery_report: 0.3,
            ..Faults::default()
        },
        ..holding(14)
    };
    let mut pair = Pair::new(config, vec![Pair::device(now, true)], true);
    pair.now = now;
    pair.up();
    assert!(pair.run_until(Duration::from_secs(1800), |p| !p.upgrades.is_empty()));
    assert!(pair.upgrades[0].verified);
    // The last reports lost are due a delivery timeout after the upgrade ended.
    pair.run_for(host_config().delivery_timeout + Duration::from_secs(1));
    assert!(pair.host.in_flight_tags().is_empty());
    let outcomes = pair.outcomes();
    assert!(
        outcomes.contains(&DeliveryOutcome::TimedOut),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&DeliveryOutcome::Delivered));
    pair.assert_every_send_reported_once();
}

#[test]
fn max_message_limit_refusals_are_reported_with_the_ncp_status() {
    // EMBER 0x72 (v13) and sl 0x0C03 (v14) both reach the server in the v14+ form.
    let expected = SlStatus::ZIGBEE_MAX_MESSAGE_LIMIT_REACHED.0;
    for version in [13, 14] {
        let config = SimNcpConfig {
            faults: Faults {
                transmit_queue: 2,
                ..Faults::default()
            },
            ..holding(version)
        };
        let now = origin();
        let mut pair = Pair::new(config, vec![Pair::device(now, false)], false);
        pair.up();
        for i in 0..6u8 {
            assert!(pair.host.accepts_commands());
            pair.unicast(vec![0x00, i, 0x00]);
        }
        pair.run_for(Duration::from_secs(10));
        let outcomes = pair.outcomes();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, DeliveryOutcome::Refused { .. }))
            .count();
        assert!(refused >= 1, "v{version}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, DeliveryOutcome::Refused { ncp_status }
                if *ncp_status == expected)),
            "v{version}: {outcomes:?}"
        );
        assert!(outcomes.iter().filter(|o| o.is_delivered()).count() >= 2);
        pair.assert_every_send_reported_once();
    }
}

#[test]
fn a_vanished_port_is_asked_for_again_with_backoff_and_nothing_is_lost() {
    let now = origin();
    let mut pair = Pair::new(holding(13), vec![Pair::device(now, false)], false);
    pair.now = now;
    pair.up();
    let in_flight: Vec<MessageTag> = (0..3u8).map(|i| pair.unicast(vec![0, i, 0])).collect();
    // Unplugged before any report could come back.
    let at = pair.now;
    pair.port_exists = false;
    pair.port_open = false;
    pair.ncp.power_off();
    pair.host.port_lost("end of file", at);
    pair.open_requests.clear();
    pair.run_for(Duration::from_millis(1_600));
    assert_eq!(pair.host.state(), CoordinatorState::Disconnected);
    for tag in &in_flight {
        assert_eq!(pair.reports[tag], [DeliveryOutcome::LinkLost]);
    }
    // Asked again after 50, 100, 200, 400, 400 ms: capped exponential backoff.
    let gaps: Vec<u128> = std::iter::once(at)
        .chain(pair.open_requests.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert!(gaps.starts_with(&[50, 100, 200, 400, 400]), "{gaps:?}");
    assert!(gaps.iter().all(|gap| *gap <= 400));
    // Plugged in again: up on the next attempt, on the network the stick kept.
    pair.port_exists = true;
    let at = pair.now;
    pair.ncp.power_on(at);
    pair.up();
    assert_eq!(pair.host.network_info().unwrap().pan_id, 0x1A62);
    let tag = pair.unicast(vec![0, 9, 0]);
    pair.run_until(Duration::from_secs(5), |p| !p.reports[&tag].is_empty());
    assert_eq!(pair.reports[&tag], [DeliveryOutcome::Delivered]);
    pair.assert_every_send_reported_once();
}

#[test]
fn a_keepalive_miss_restarts_the_ncp() {
    let mut pair = Pair::new(holding(13), vec![], false);
    pair.up();
    let up_at = pair.now;
    // The stick hangs: the port stays, nothing crosses the line.
    pair.line_up = false;
    pair.run_until(Duration::from_secs(60), |p| {
        p.host.state() == CoordinatorState::Resetting
    });
    let reset_at = pair.states.last().unwrap().0;
    let interval = host_config().keepalive_interval;
    assert!(reset_at >= up_at + interval, "only after a quiet interval");
    assert!(
        reset_at <= up_at + interval * 2,
        "found within one interval more: {:?}",
        reset_at - up_at
    );
    pair.line_up = true;
    pair.up();
}

/// The NCP reboots mid-transfer and its RSTACK is lost: the keepalive finds the NCP no longer
/// negotiated, start-up runs again (our endpoint registered again) and the upgrade completes.
#[test]
fn a_silent_ncp_reset_is_found_by_the_keepalive() {
    let mut pair = upgrade_through_a_reset(Faults {
        reset_after_messages: Some(10),
        silent_reset: true,
        ..Faults::default()
    });
    assert_eq!(
        pair.endpoint_registrations, 2,
        "registered again after the reset"
    );
    pair.assert_every_send_reported_once();
}

#[test]
fn submitted_commands_get_their_responses_and_unconsumed_callbacks_are_reported() {
    let mut pair = Pair::new(holding(13), vec![], false);
    pair.up();
    let now = pair.now;
    let typed = pair.host.submit(&Command::GetEui64, now).unwrap();
    // startScan(energy, channel 11 only, duration 1) as raw parameter bytes.
    let raw = pair
        .host
        .submit(
            &Command::Other {
                frame_id: FrameId(0x001A),
                parameters: vec![0x00, 0x00, 0x08, 0x00, 0x00, 0x01],
            },
            now,
        )
        .unwrap();
    pair.run_for(Duration::from_secs(5));
    let by_id: HashMap<RequestId, &Result<Response, RequestFailed>> =
        pair.responses.iter().map(|(id, r)| (*id, r)).collect();
    assert!(
        matches!(by_id[&typed], Ok(Response::GetEui64 { eui64 }) if eui64.0 == 0x000D_6FFF_FE00_0001)
    );
    assert!(by_id[&raw].is_ok(), "{:?}", by_id[&raw]);
    assert!(
        pair.callbacks.contains(&FrameId(0x0048)) && pair.callbacks.contains(&FrameId(0x001C)),
        "{:?}",
        pair.callbacks
    );
}

#[test]
fn before_v14_unknown_senders_are_looked_up_and_their_messages_held_in_order() {
    let now = origin();
    let config = SimNcpConfig {
        announce_devices: false,
        ..holding(13)
    };
    let mut pair = Pair::new(config, vec![Pair::device(now, true)], true);
    pair.now = now;
    pair.up();
    assert!(pair.run_until(Duration::from_secs(600), |p| !p.upgrades.is_empty()));
    let ota: Vec<&IncomingMessage> = pair
        .incoming
        .iter()
        .filter(|m| m.cluster == CLUSTER_OTA_UPGRADE)
        .collect();
    assert!(!ota.is_empty());
    assert!(
        ota.iter().all(|m| m.ieee == Some(DEVICE_IEEE)),
        "every message under one identity"
    );
    assert!(pair.upgrades[0].verified);
    pair.assert_every_send_reported_once();
}

/// Failed, missing and late delivery reports, unreachable nodes and a full NCP transmit queue:
/// every send gets exactly one report, with the NCP's status where it gave one.
#[test]
fn delivery_faults_give_one_report_per_send() {
    let now = origin();
    let config = SimNcpConfig {
        faults: Faults {
            seed: 42,
            delivery_failure: 0.25,
            lost_delivery_report: 0.15,
            delivery_report_delay: Duration::from_millis(50),
            transmit_queue: 3,
            ..Faults::default()
        },
        ..holding(14)
    };
    let mut pair = Pair::new(config, vec![Pair::device(now, false)], false);
    pair.up();
    // Ten waves of four sends: the NCP queue holds three, so the fourth of a wave is refused;
    // every fourth wave goes to an address nobody has.
    for wave in 0..10u8 {
        let mut tags = Vec::new();
        for i in 0..4u8 {
            let destination = if wave % 4 == 3 {
                Nwk(0x7777)
            } else {
                DEVICE_NWK
            };
            tags.push(pair.unicast_to(destination, vec![0x19, wave * 4 + i, 0x00, 0x00, 0x64]));
        }
        pair.run_until(Duration::from_secs(10), |p| {
            tags.iter().all(|tag| !p.reports[tag].is_empty())
        });
    }
    pair.run_for(Duration::from_secs(2));
    let mut kinds = std::collections::HashSet::new();
    for (tag, outcomes) in &pair.reports {
        assert_eq!(outcomes.len(), 1, "{tag:?}: {outcomes:?}");
        kinds.insert(match outcomes[0] {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed { ncp_status } => {
                assert_eq!(ncp_status, SlStatus::ZIGBEE_DELIVERY_FAILED.0);
                "failed"
            }
            DeliveryOutcome::Refused { ncp_status } => {
                assert_eq!(ncp_status, SlStatus::ZIGBEE_MAX_MESSAGE_LIMIT_REACHED.0);
                "refused"
            }
            DeliveryOutcome::TimedOut => "timed out",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(
        kinds,
        std::collections::HashSet::from(["delivered", "failed", "refused", "timed out"]),
        "{:?}",
        pair.reports
    );
    pair.assert_every_send_reported_once();
}

#[test]
fn free_tags_skip_the_taken_and_wrap_at_the_versions_width() {
    use super::up::next_free_tag;
    use crate::ezsp::EzspVersion;
    let mut next = 254;
    let taken = |tag: u16| tag == 255 || tag == 1;
    assert_eq!(next_free_tag(&mut next, EzspVersion::V13, taken), Some(254));
    // u8 tags before v14: 255 is taken, the count wraps to 1 (taken) and lands on 2.
    assert_eq!(next_free_tag(&mut next, EzspVersion::V13, taken), Some(2));
    let mut next = 255;
    assert_eq!(
        next_free_tag(&mut next, EzspVersion::V14, |_| false),
        Some(255)
    );
    assert_eq!(next, 256, "u16 tags from v14");
    assert_eq!(next_free_tag(&mut next, EzspVersion::V14, |_| true), None);
}
