//! The sans-IO ZNP host paired with the simulated ZNP on a virtual clock: start-up (resume and
//! form), sends and their confirms, incoming messages with address lookup, a stick reset.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real instant

use std::time::{Duration, Instant};

use zigbee_otad::coordinator::network::{NetworkOverrides, NetworkSettings};
use zigbee_otad::coordinator::{
    BroadcastMessage, DeliveryOutcome, DeviceTable, Ieee, MessageTag, Nwk, UnicastMessage,
};
use zigbee_otad::sim::device::SimDevice;
use zigbee_otad::sim::{SimConfig, SimZnp, SimZnpConfig, ZnpNetwork};
use zigbee_otad::znp::host::{Host, HostConfig, HostEvent, Lost};

fn settings() -> NetworkSettings {
    NetworkSettings::resolve(
        &NetworkOverrides {
            channel: Some(20),
            pan_id: Some(0x4321),
            extended_pan_id: Some(0x0102_0304_0506_0708),
            network_key: Some([0xAB; 16]),
        },
        None,
        &[0; 32],
    )
}

struct Pair {
    host: Host,
    sim: SimZnp,
    now: Instant,
    events: Vec<HostEvent>,
}

impl Pair {
    fn new(sim_config: SimZnpConfig, devices: usize) -> Pair {
        let now = Instant::now();
        let mut config = SimConfig::default();
        config.add_default_devices(devices);
        // Quiet devices: they query once, an hour after start, unless told otherwise.
        config.first_query_after = Duration::from_secs(3600);
        let devices = config
            .device_configs()
            .into_iter()
            .map(|d| SimDevice::new(d, now))
            .collect();
        let mut host = Host::new(HostConfig::new(1, settings()), DeviceTable::default(), now);
        host.start(now);
        Pair {
            host,
            sim: SimZnp::new(sim_config, devices),
            now,
            events: Vec::new(),
        }
    }

    /// Runs until `done` holds for an event, or `limit` of virtual time passes.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&HostEvent) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            let mut moved = true;
            while moved {
                moved = false;
                while let Some(bytes) = self.host.poll_transmit() {
                    self.sim.handle_input(&bytes, self.now);
                    moved = true;
                }
                while let Some(bytes) = self.sim.poll_transmit() {
                    self.host.handle_input(&bytes, self.now);
                    moved = true;
                }
                while let Some(event) = self.host.poll_event() {
                    let hit = done(&event);
                    self.events.push(event);
                    if hit {
                        return true;
                    }
                }
            }
            let next = [self.host.poll_timeout(), self.sim.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.host.handle_timeout(self.now);
                    self.sim.handle_timeout(self.now);
                }
                _ => return false,
            }
        }
    }

    fn up(&mut self) -> HostEvent {
        assert!(
            self.run_until(Duration::from_secs(30), |e| matches!(
                e,
                HostEvent::Up { .. }
            )),
            "not up: {:?}",
            self.events
        );
        self.events.last().cloned().unwrap()
    }
}

#[test]
fn resumes_the_held_network_and_registers_the_ota_endpoint() {
    let mut pair = Pair::new(SimZnpConfig::default(), 2);
    let HostEvent::Up {
        network,
        formed,
        firmware,
    } = pair.up()
    else {
        unreachable!()
    };
    let held = ZnpNetwork::default();
    assert!(!formed);
    assert_eq!(
        (network.channel, network.pan_id, network.extended_pan_id),
        (held.channel, held.pan_id, held.extended_pan_id)
    );
    assert_eq!(network.ieee, SimZnpConfig::default().ieee);
    assert!(firmware.contains("Z-Stack 3.x.0"), "{firmware}");
    assert_eq!(
        pair.sim.stored_network(),
        Some(held),
        "resuming must not rewrite NV"
    );
    // Both devices announce themselves once the network is up.
    pair.run_until(Duration::from_secs(1), |_| false);
    assert_eq!(pair.host.devices().len(), 2, "{:?}", pair.events);
}

#[test]
fn a_factory_new_stick_forms_the_configured_network() {
    let fresh = SimZnpConfig {
        network: None,
        ..SimZnpConfig::default()
    };
    let mut pair = Pair::new(fresh, 0);
    let HostEvent::Up {
        network, formed, ..
    } = pair.up()
    else {
        unreachable!()
    };
    assert!(formed);
    assert_eq!(
        (network.channel, network.pan_id, network.extended_pan_id),
        (20, 0x4321, 0x0102_0304_0506_0708)
    );
    let stored = pair.sim.stored_network().unwrap();
    assert_eq!(
        stored.network_key, [0xAB; 16],
        "the configured key is in NV"
    );
    // A restart resumes what was formed instead of forming again.
    pair.host.start(pair.now);
    let HostEvent::Up { formed, .. } = pair.up() else {
        unreachable!()
    };
    assert!(!formed);
}

fn unicast(to: Nwk) -> UnicastMessage {
    UnicastMessage {
        destination: to,
        src_endpoint: 1,
        dst_endpoint: 1,
        profile: 0x0104,
        cluster: 0x0019,
        payload: vec![0x19, 0x10, 0x00, 0x00, 0x64],
        aps_ack: true,
    }
}

fn outcome_of(events: &[HostEvent], tag: MessageTag) -> Option<DeliveryOutcome> {
    events.iter().find_map(|e| match e {
        HostEvent::Delivery { tag: t, outcome } if *t == tag => Some(*outcome),
        _ => None,
    })
}

#[test]
fn confirms_refusals_incoming_lookups_and_a_stick_reset() {
    let mut pair = Pair::new(SimZnpConfig::default(), 1);
    pair.up();
    let device = Nwk(0x1001);
    let now = pair.now;
    pair.host
        .send_unicast(MessageTag(1), &unicast(device), now)
        .unwrap();
    pair.host
        .send_unicast(MessageTag(2), &unicast(Nwk(0x7777)), now)
        .unwrap();
    let broadcast = BroadcastMessage {
        destination: Nwk::BROADCAST_RX_ON_WHEN_IDLE,
        src_endpoint: 1,
        dst_endpoint: 0xFF,
        profile: 0x0104,
        cluster: 0x0019,
        radius: 0,
        payload: vec![0x19, 0x11, 0x00, 0x00, 0x64],
    };
    pair.host
        .send_broadcast(MessageTag(3), &broadcast, now)
        .unwrap();
    pair.run_until(Duration::from_secs(2), |_| false);
    assert_eq!(
        outcome_of(&pair.events, MessageTag(1)),
        Some(DeliveryOutcome::Delivered)
    );
    assert_eq!(
        outcome_of(&pair.events, MessageTag(2)),
        Some(DeliveryOutcome::Failed { ncp_status: 0xE9 }),
        "no such device: MAC_NO_ACK"
    );
    assert_eq!(
        outcome_of(&pair.events, MessageTag(3)),
        Some(DeliveryOutcome::Delivered)
    );
    // The Image Notify makes the device query: it reaches us with its IEEE address.
    let incoming = pair.events.iter().find_map(|e| match e {
        HostEvent::Incoming(m) => Some(m.clone()),
        _ => None,
    });
    let incoming = incoming.expect("the device's Query Next Image");
    assert_eq!(incoming.source, device);
    assert_eq!(incoming.ieee, Some(Ieee(0x0012_4B00_0000_0001)));
    assert_eq!(incoming.cluster, 0x0019);

    // The stick reboots with a send in flight: the send is lost, the host goes down and comes
    // back when started again.
    let now = pair.now;
    pair.host
        .send_unicast(MessageTag(4), &unicast(device), now)
        .unwrap();
    pair.sim.reset(now);
    assert!(pair.run_until(Duration::from_secs(1), |e| matches!(
        e,
        HostEvent::Lost(Lost::StickReset(_))
    )));
    assert_eq!(
        outcome_of(&pair.events, MessageTag(4)),
        Some(DeliveryOutcome::LinkLost)
    );
    assert!(
        pair.host
            .send_unicast(MessageTag(5), &unicast(device), now)
            .is_err()
    );
    pair.host.start(pair.now);
    pair.up();
}

#[test]
fn a_silent_stick_is_declared_absent_after_the_bootloader_skip() {
    let mut pair = Pair::new(SimZnpConfig::default(), 0);
    pair.sim.power_off();
    assert!(pair.run_until(Duration::from_secs(30), |e| matches!(
        e,
        HostEvent::Lost(Lost::NoPing)
    )));
}
