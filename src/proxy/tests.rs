//! Trio tests: an upstream [`EzspHost`] (our own host, playing ZHA or Zigbee2MQTT) wired byte for
//! byte to the [`Relay`], wired to the sans-IO [`SimNcp`] with a device, with the sans-IO
//! [`OtaServer`] on the relay's side, on one virtual clock and through four seeded
//! [`FaultyLine`]s. No pty, no sleeps: every run is the same. The process tests in
//! `tests/it/proxy.rs` run unmodified bellows, zigpy and zigbee-herdsman instead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::relay::{Relay, RelayConfig, RelayEvent};
use crate::ash::fault::{FaultConfig, FaultyLine};
use crate::config::OtaScope;
use crate::coordinator::ezsp::{EzspHost, HostConfig, HostEvent};
use crate::coordinator::serial::Backoff;
use crate::coordinator::virtual_rig::{
    DEVICE_IEEE, DEVICE_NWK, VirtualRig, device_config, keep_upgrade_report, numbered_unicast,
    origin, server_offering,
};
use crate::coordinator::{
    CLUSTER_OTA_UPGRADE, CoordinatorState, DeliveryOutcome, DeviceTable, Ieee, IncomingMessage,
    MessageTag, PROFILE_HOME_AUTOMATION, UnicastMessage,
};
use crate::ezsp::frame::FrameId;
use crate::server::{DeviceAddr, OtaServer};
use crate::sim::device::{SimDevice, UpgradeOutcome, UpgradeReport};
use crate::sim::{SimEvent, SimNcp, SimNcpConfig};

const IMAGE_LEN: usize = 3_000;

/// Upstream host ⇄ relay ⇄ simulated stick, the OTA server behind the relay.
struct Trio {
    now: Instant,
    upstream: EzspHost,
    /// Whether upstream is connected to the relay.
    connected: bool,
    relay: Relay,
    ncp: SimNcp,
    server: OtaServer,
    lines: [FaultyLine; 4],
    next_tag: u32,
    /// Our tags → their outcomes.
    ours: BTreeMap<MessageTag, Vec<DeliveryOutcome>>,
    /// Upstream's tags → their outcomes.
    theirs: BTreeMap<MessageTag, Vec<DeliveryOutcome>>,
    upstream_states: Vec<CoordinatorState>,
    relay_states: Vec<CoordinatorState>,
    upstream_incoming: Vec<IncomingMessage>,
    upstream_callbacks: Vec<FrameId>,
    our_incoming: Vec<IncomingMessage>,
    upgrades: Vec<UpgradeReport>,
    /// Device frames the stick passed to a host, by cluster.
    to_host: BTreeMap<u16, usize>,
}

const UP_TO_RELAY: usize = 0;
const RELAY_TO_UP: usize = 1;
const RELAY_TO_STICK: usize = 2;
const STICK_TO_RELAY: usize = 3;

impl Trio {
    fn new(scope: OtaScope, ezsp_version: u8, loss_per_mille: u16) -> Trio {
        let now = origin();
        let server = server_offering(IMAGE_LEN, now);
        let mut device = device_config(Some(IMAGE_LEN));
        device.first_query_after = Duration::from_secs(3);
        device.response_timeout = Duration::from_secs(2);
        device.max_retries = 1_000;
        let ncp_config = SimNcpConfig {
            ezsp_version,
            ..SimNcpConfig::default()
        }
        .holding_network();
        let faults = FaultConfig {
            drop: f64::from(loss_per_mille) / 1000.0,
            ..FaultConfig::default()
        };
        let mut config = RelayConfig::new(scope, 1);
        config.backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(400));
        let mut relay = Relay::new(config, DeviceTable::default()).unwrap();
        relay.upstream_connected(now);
        Trio {
            now,
            upstream: EzspHost::new(upstream_config(), DeviceTable::default(), now).unwrap(),
            connected: true,
            relay,
            ncp: SimNcp::new(ncp_config, vec![SimDevice::new(device, now)]).unwrap(),
            server,
            lines: [1, 2, 3, 4].map(|seed| FaultyLine::new(faults, seed)),
            next_tag: 1,
            ours: BTreeMap::new(),
            theirs: BTreeMap::new(),
            upstream_states: Vec::new(),
            relay_states: Vec::new(),
            upstream_incoming: Vec::new(),
            upstream_callbacks: Vec::new(),
            our_incoming: Vec::new(),
            upgrades: Vec::new(),
            to_host: BTreeMap::new(),
        }
    }

    fn upstream_event(&mut self, event: HostEvent) {
        let now = self.now;
        match event {
            HostEvent::StateChanged(state) => self.upstream_states.push(state),
            HostEvent::OpenPort => self.upstream.port_opened(now),
            HostEvent::Delivery { tag, outcome } => {
                self.theirs.entry(tag).or_default().push(outcome);
            }
            HostEvent::Incoming(message) => self.upstream_incoming.push(message),
            HostEvent::Callback(callback) => self.upstream_callbacks.push(callback.frame_id()),
            _ => {}
        }
    }

    fn relay_event(&mut self, event: RelayEvent) {
        let now = self.now;
        match event {
            RelayEvent::OpenStick => self.relay.stick_opened(now),
            RelayEvent::StateChanged(state) => {
                self.relay_states.push(state);
                if let Some(max) = self.relay.max_payload() {
                    self.server
                        .set_max_aps_payload(u8::try_from(max).unwrap_or(u8::MAX));
                }
            }
            RelayEvent::Incoming(message) => {
                if message.cluster == CLUSTER_OTA_UPGRADE {
                    let source = DeviceAddr {
                        nwk: message.source.0,
                        ieee: message.ieee,
                        endpoint: message.src_endpoint,
                    };
                    self.server.handle_frame(source, &message.payload, now);
                }
                self.our_incoming.push(message);
            }
            RelayEvent::Delivery { tag, outcome } => {
                self.ours
                    .get_mut(&tag)
                    .expect("a report for a tag never handed over")
                    .push(outcome);
            }
            RelayEvent::DeviceJoined { .. } | RelayEvent::DeviceTableChanged => {}
        }
    }

    /// Both stacks up and our transfer under way (more than ten of its reports kept).
    fn mid_transfer() -> Trio {
        let mut trio = Trio::new(OtaScope::All, 13, 0);
        trio.both_up();
        trio.run_until(Duration::from_secs(60), |t| {
            t.relay.stats().reports_kept > 10
        });
        trio
    }

    /// Both stacks come up again, our transfer ends, and upstream saw none of it.
    fn finishes_unseen_by_upstream(&mut self) {
        self.both_up();
        self.upgraded(Duration::from_secs(300));
        self.assert_upstream_saw_nothing_of_ours();
    }

    fn both_up(&mut self) {
        assert!(
            self.run_until(Duration::from_secs(60), |t| {
                t.upstream.state() == CoordinatorState::Up
                    && t.relay.state() == CoordinatorState::Up
            }),
            "not up: upstream {:?}, relay {:?} {:?}",
            self.upstream_states,
            self.relay_states,
            self.relay.stats()
        );
    }

    fn upgraded(&mut self, within: Duration) {
        assert!(
            self.run_until(within, |t| !t.upgrades.is_empty()),
            "no upgrade: relay {:?} {:?}, ours {:?}",
            self.relay_states,
            self.relay.stats(),
            self.ours.values().flatten().collect::<Vec<_>>()
        );
        assert_eq!(self.upgrades.len(), 1);
        // The answer to the device's last request is reported a moment later.
        self.run_until(Duration::from_secs(10), |t| {
            t.ours.values().all(|o| !o.is_empty())
        });
        // The device checks the image it received against the exact expected bytes.
        assert_eq!(
            self.upgrades[0].outcome,
            UpgradeOutcome::Upgraded,
            "{:?}",
            self.upgrades[0]
        );
    }

    /// What upstream must never see, and what it must: no OTA frame, no report of ours.
    fn assert_upstream_saw_nothing_of_ours(&self) {
        assert!(
            self.upstream_incoming
                .iter()
                .all(|m| m.cluster != CLUSTER_OTA_UPGRADE),
            "upstream saw an OTA frame"
        );
        assert!(
            !self
                .upstream_callbacks
                .contains(&FrameId::MESSAGE_SENT_HANDLER),
            "upstream saw a delivery report of ours"
        );
        assert!(self.relay.stats().ota_intercepted > 0);
        assert!(self.relay.stats().reports_kept > 0);
    }

    /// Upstream sends a unicast of its own (the Basic cluster) to the device.
    fn upstream_unicast(&mut self, cluster: u16) -> MessageTag {
        // As bellows does: one command at a time.
        assert!(self.run_until(Duration::from_secs(60), |t| t.upstream.accepts_commands()));
        let tag = MessageTag(1_000_000 + self.next_tag);
        self.next_tag += 1;
        self.theirs.entry(tag).or_default();
        let message = UnicastMessage {
            destination: DEVICE_NWK,
            src_endpoint: 1,
            dst_endpoint: 1,
            profile: PROFILE_HOME_AUTOMATION,
            cluster,
            payload: vec![0x00, 0x42, 0x00, 0x05, 0x00],
            aps_ack: true,
        };
        self.upstream.send_unicast(tag, message, None, self.now);
        tag
    }
}

impl VirtualRig for Trio {
    fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        while let Some(event) = self.upstream.poll_event() {
            moved = true;
            self.upstream_event(event);
        }
        while let Some(event) = self.relay.poll_event() {
            moved = true;
            self.relay_event(event);
        }
        while self.relay.state() == CoordinatorState::Up
            && let Some(outgoing) = self.server.poll_transmit()
        {
            moved = true;
            let Some((tag, message)) = numbered_unicast(&outgoing, &mut self.next_tag) else {
                continue;
            };
            self.ours.entry(tag).or_default();
            self.relay.send_unicast(tag, message, now);
        }
        while self.server.poll_event().is_some() {}
        if let Some(bytes) = self.upstream.poll_transmit(now)
            && self.connected
        {
            moved = true;
            self.lines[UP_TO_RELAY].write(bytes);
        }
        if let Some(bytes) = self.relay.poll_upstream_transmit(now) {
            moved = true;
            self.lines[RELAY_TO_UP].write(bytes);
        }
        if let Some(bytes) = self.relay.poll_stick_transmit(now) {
            moved = true;
            self.lines[RELAY_TO_STICK].write(bytes);
        }
        while let Some(bytes) = self.ncp.poll_transmit(now) {
            moved = true;
            self.lines[STICK_TO_RELAY].write(bytes);
        }
        while let Some(bytes) = self.lines[UP_TO_RELAY].read() {
            moved = true;
            self.relay.handle_upstream_input(&bytes, now);
        }
        while let Some(bytes) = self.lines[RELAY_TO_UP].read() {
            moved = true;
            if self.connected {
                self.upstream.handle_input(&bytes, now);
            }
        }
        while let Some(bytes) = self.lines[RELAY_TO_STICK].read() {
            moved = true;
            self.ncp.handle_input(&bytes, now);
        }
        while let Some(bytes) = self.lines[STICK_TO_RELAY].read() {
            moved = true;
            self.relay.handle_stick_input(&bytes, now);
        }
        while let Some(event) = self.ncp.poll_event() {
            moved = true;
            if let Some(SimEvent::MessageToHost { cluster, .. }) =
                keep_upgrade_report(&mut self.upgrades, event)
            {
                *self.to_host.entry(cluster).or_default() += 1;
            }
        }
        moved
    }

    fn deadlines(&self) -> Vec<Option<Instant>> {
        vec![
            self.upstream.poll_timeout(),
            self.relay.poll_timeout(),
            self.ncp.poll_timeout(),
            self.server.poll_timeout(),
        ]
    }

    fn handle_timeouts(&mut self, now: Instant) {
        self.upstream.handle_timeout(now);
        self.relay.handle_timeout(now);
        self.ncp.handle_timeout(now);
        self.server.handle_timeout(now);
    }

    fn clock(&mut self) -> &mut Instant {
        &mut self.now
    }
}

/// Our host, set up as bellows is: one command at a time, 10 s for each (its
/// `EZSP_CMD_TIMEOUT`).
fn upstream_config() -> HostConfig {
    let base = HostConfig::new(1);
    HostConfig {
        session: crate::ezsp::SessionConfig {
            command_timeout: Duration::from_secs(10),
            max_pending: 1,
            ..base.session
        },
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
        // zigpy waits this long for a delivery report; a lossy line makes some late.
        delivery_timeout: Duration::from_secs(30),
        ..base
    }
}

#[test]
fn upgrade_through_the_proxy_while_upstream_runs() {
    for version in [13, 14] {
        let mut trio = Trio::new(OtaScope::All, version, 0);
        trio.both_up();
        // Upstream's start-up went to the stick: one RST from upstream, the network resumed.
        assert_eq!(trio.relay.version().map(|v| v.get()), Some(version));
        assert!(trio.relay.network_info().is_some());
        // Upstream declared an OTA endpoint (our host does), so the relay added none.
        assert_eq!(trio.relay.ota_endpoint(), Some(1));
        // Upstream's own traffic passes and is reported to it once.
        let basic = trio.upstream_unicast(0x0000);
        trio.upgraded(Duration::from_secs(300));
        trio.assert_upstream_saw_nothing_of_ours();
        assert_eq!(trio.theirs[&basic].len(), 1, "{:?}", trio.theirs);
        assert!(trio.theirs[&basic][0].is_delivered());
        // Every send of ours was reported exactly once.
        assert!(trio.ours.values().all(|o| o.len() == 1), "{:?}", trio.ours);
        // Upstream saw the device's announce (a ZDO frame) all the same.
        assert!(
            trio.upstream_incoming
                .iter()
                .any(|m| m.profile == crate::coordinator::PROFILE_ZDO),
            "{:?}",
            trio.upstream_incoming
        );
    }
}

#[test]
fn upstreams_ota_sends_to_our_devices_are_dropped() {
    let mut trio = Trio::new(OtaScope::All, 13, 0);
    trio.both_up();
    let ota = trio.upstream_unicast(CLUSTER_OTA_UPGRADE);
    trio.run_until(Duration::from_secs(10), |t| !t.theirs[&ota].is_empty());
    assert!(
        matches!(trio.theirs[&ota][..], [DeliveryOutcome::Refused { .. }]),
        "{:?}",
        trio.theirs
    );
    assert_eq!(trio.relay.stats().upstream_ota_dropped, 1);
}

#[test]
fn ota_none_leaves_the_ota_cluster_to_upstream() {
    let mut trio = Trio::new(OtaScope::None, 13, 0);
    trio.both_up();
    trio.run_until(Duration::from_secs(20), |t| {
        t.upstream_incoming
            .iter()
            .any(|m| m.cluster == CLUSTER_OTA_UPGRADE)
    });
    assert!(trio.our_incoming.is_empty());
    assert_eq!(trio.relay.stats().ota_intercepted, 0);
    let ota = trio.upstream_unicast(CLUSTER_OTA_UPGRADE);
    trio.run_until(Duration::from_secs(10), |t| !t.theirs[&ota].is_empty());
    assert!(trio.theirs[&ota][0].is_delivered(), "{:?}", trio.theirs);
}

#[test]
fn a_listed_scope_answers_only_the_listed_device() {
    let other = OtaScope::Listed([Ieee(0x1111)].into_iter().collect());
    let mut trio = Trio::new(other, 13, 0);
    trio.both_up();
    trio.run_until(Duration::from_secs(20), |t| {
        t.upstream_incoming
            .iter()
            .any(|m| m.cluster == CLUSTER_OTA_UPGRADE)
    });
    assert!(trio.our_incoming.is_empty());
    let listed = OtaScope::Listed([DEVICE_IEEE].into_iter().collect());
    let mut trio = Trio::new(listed, 13, 0);
    trio.finishes_unseen_by_upstream();
}

#[test]
fn five_percent_loss_on_each_link_still_ends_byte_exact() {
    let mut trio = Trio::new(OtaScope::All, 13, 50);
    trio.both_up();
    // Upstream keeps talking to the device while the transfer runs.
    let mut basic = Vec::new();
    for _ in 0..40 {
        basic.push(trio.upstream_unicast(0x0000));
        trio.run_until(Duration::from_secs(1), |_| false);
    }
    trio.upgraded(Duration::from_secs(900));
    trio.run_until(Duration::from_secs(10), |_| false);
    trio.assert_upstream_saw_nothing_of_ours();
    for tag in &basic {
        assert_eq!(trio.theirs[tag], [DeliveryOutcome::Delivered], "{tag:?}");
    }
    assert!(trio.ours.values().all(|o| o.len() == 1), "{:?}", trio.ours);
    let dropped: Vec<u64> = trio.lines.iter().map(|l| l.stats().dropped).collect();
    assert!(dropped.iter().all(|d| *d > 0), "{dropped:?}");
}

#[test]
fn the_stick_resetting_by_itself_is_upstreams_reset_too() {
    let mut trio = Trio::mid_transfer();
    let now = trio.now;
    trio.ncp.reset(now);
    trio.run_until(Duration::from_secs(5), |t| {
        t.upstream_states.contains(&CoordinatorState::Resetting)
    });
    assert!(
        trio.upstream_states.contains(&CoordinatorState::Resetting),
        "upstream never saw the reset: {:?}",
        trio.upstream_states
    );
    trio.finishes_unseen_by_upstream();
}

#[test]
fn upstream_leaving_and_coming_back_keeps_the_transfer_going() {
    let mut trio = Trio::mid_transfer();
    let now = trio.now;
    trio.connected = false;
    trio.relay.upstream_disconnected(now);
    let kept = trio.relay.stats().reports_kept;
    // Without upstream the stick stays up and our transfer goes on.
    trio.run_until(Duration::from_secs(10), |_| false);
    assert_eq!(trio.relay.state(), CoordinatorState::Up);
    assert!(trio.relay.stats().reports_kept > kept + 10);
    // A new upstream starts from scratch: its RST resets the stick; our transfer resumes.
    let now = trio.now;
    trio.upstream = EzspHost::new(upstream_config(), DeviceTable::default(), now).unwrap();
    trio.connected = true;
    trio.relay.upstream_connected(now);
    trio.finishes_unseen_by_upstream();
}

#[test]
fn upstream_resetting_the_stick_mid_transfer() {
    let mut trio = Trio::mid_transfer();
    let now = trio.now;
    // Upstream's link breaks and its host starts over with an ASH RST.
    trio.upstream.port_lost("upstream restarts", now);
    trio.run_until(Duration::from_secs(5), |t| {
        t.relay_states.contains(&CoordinatorState::Resetting)
            && t.relay.state() == CoordinatorState::Up
    });
    trio.finishes_unseen_by_upstream();
    assert!(trio.ours.values().all(|o| o.len() == 1), "{:?}", trio.ours);
}
