//! The simulated NCP driven in-process by a host ASH link and EZSP session on a virtual clock
//! (quinn's `Pair::drive` pattern): deterministic, no pty, no sleeps.

use std::time::{Duration, Instant};

use zigbee_otad::ash::{Link, LinkEvent, Role};
use zigbee_otad::ezsp::command::{AddEndpoint, Command, NetworkInit, Response};
use zigbee_otad::ezsp::status::SlStatus;
use zigbee_otad::ezsp::types::NetworkInitBitmask;
use zigbee_otad::ezsp::{Event, Session, SessionConfig};
use zigbee_otad::sim::device::SimDevice;
use zigbee_otad::sim::{Faults, SimConfig, SimEvent, SimNcp, SimNcpConfig};

use super::coordinator::fast_link;

#[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
fn origin() -> Instant {
    Instant::now()
}

/// A host (ASH link + EZSP session) and the simulated NCP, on a virtual clock.
struct Pair {
    now: Instant,
    host_link: Link,
    session: Session,
    ncp: SimNcp,
    host_events: Vec<Event>,
    link_events: Vec<LinkEvent>,
    sim_events: Vec<SimEvent>,
}

impl Pair {
    fn new(ncp_config: SimNcpConfig, devices: Vec<SimDevice>) -> Self {
        Pair {
            now: origin(),
            host_link: Link::new(Role::Host, fast_link()).unwrap(),
            session: Session::new(SessionConfig::default()),
            ncp: SimNcp::new(ncp_config, devices).unwrap(),
            host_events: Vec::new(),
            link_events: Vec::new(),
            sim_events: Vec::new(),
        }
    }

    /// Moves everything that is ready; true if anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(frame) = self.session.poll_transmit() {
            self.host_link.send(frame).unwrap();
            moved = true;
        }
        while let Some(bytes) = self.host_link.poll_transmit(self.now) {
            self.ncp.handle_input(&bytes, self.now);
            moved = true;
        }
        while let Some(bytes) = self.ncp.poll_transmit(self.now) {
            self.host_link.handle_input(&bytes, self.now);
            moved = true;
        }
        while let Some(event) = self.host_link.poll_event() {
            if let LinkEvent::Received(frame) = &event {
                let _ = self.session.handle_input(frame, self.now);
            } else {
                self.link_events.push(event);
            }
            moved = true;
        }
        while let Some(event) = self.session.poll_event() {
            self.host_events.push(event);
            moved = true;
        }
        while let Some(event) = self.ncp.poll_event() {
            self.sim_events.push(event);
            moved = true;
        }
        moved
    }

    /// Runs until `done` holds, advancing the clock to the next deadline whenever idle.
    fn drive_until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        for _ in 0..100_000 {
            if done(self) {
                return;
            }
            if self.step() {
                continue;
            }
            let next = [
                self.host_link.poll_timeout(),
                self.session.poll_timeout(),
                self.ncp.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| panic!("stuck waiting for {what}"));
            self.now = self.now.max(next);
            self.host_link.handle_timeout(self.now);
            self.session.handle_timeout(self.now);
            self.ncp.handle_timeout(self.now);
        }
        panic!("step limit waiting for {what}");
    }

    fn connect(&mut self) {
        self.host_link.reset(self.now);
        self.drive_until("RSTACK", |p| {
            p.link_events
                .iter()
                .any(|e| matches!(e, LinkEvent::Connected { .. }))
        });
        self.link_events.clear();
        self.session.start(self.now);
        self.drive_until("negotiation", |p| {
            p.host_events
                .iter()
                .any(|e| matches!(e, Event::Negotiated { .. } | Event::NegotiationFailed(_)))
        });
    }

    fn request(&mut self, command: Command) -> Response {
        let sequence = self.session.send(&command, self.now).unwrap();
        let mut answer = None;
        self.drive_until("a response", |p| {
            let index = p.host_events.iter().position(|e| {
                matches!(e, Event::Response { sequence: s, .. } | Event::TimedOut { sequence: s, .. } if *s == sequence)
            });
            if let Some(index) = index {
                answer = Some(p.host_events.remove(index));
                true
            } else {
                false
            }
        });
        match answer {
            Some(Event::Response { response, .. }) => response,
            other => panic!("no response to {command:?}: {other:?}"),
        }
    }
}

fn ota_endpoint() -> Command {
    Command::AddEndpoint(AddEndpoint {
        endpoint: 1,
        profile_id: 0x0104,
        device_id: 0x0005,
        device_version: 0,
        input_clusters: vec![0x0000, 0x0019],
        output_clusters: vec![],
    })
}

fn network_init() -> Command {
    Command::NetworkInit(NetworkInit {
        bitmask: NetworkInitBitmask::NO_OPTIONS,
    })
}

/// A host that asks for v13 ends up speaking whatever 8..=17 the NCP speaks (re-asking in the
/// NCP's format when they differ).
#[test]
fn negotiates_every_supported_version() {
    for version in 8..=17u8 {
        let mut pair = Pair::new(
            SimNcpConfig {
                ezsp_version: version,
                link: fast_link(),
                ..SimNcpConfig::default()
            },
            Vec::new(),
        );
        pair.connect();
        assert_eq!(pair.session.version().map(|v| v.get()), Some(version));
        assert_eq!(pair.request(Command::Nop), Response::Nop);
    }
}

#[test]
fn refuses_an_unsupported_version() {
    assert!(
        SimNcp::new(
            SimNcpConfig {
                ezsp_version: 7,
                ..SimNcpConfig::default()
            },
            Vec::new()
        )
        .is_err()
    );
}

/// Endpoints are taken before the network is up, refused after, and forgotten by a reset,
/// after which nothing but `version` works until the host negotiates again.
#[test]
fn endpoints_vanish_on_reset() {
    for version in [13, 14] {
        let mut pair = Pair::new(
            SimNcpConfig {
                ezsp_version: version,
                link: fast_link(),
                ..SimNcpConfig::default()
            },
            Vec::new(),
        );
        pair.connect();
        assert!(pair.request(ota_endpoint()).status().unwrap().is_success());
        let init = pair.request(network_init());
        assert!(
            init.status().unwrap().means(SlStatus::NOT_JOINED),
            "{init:?}"
        );
        assert_eq!(pair.ncp.endpoints().len(), 1);

        pair.ncp.reset(pair.now);
        pair.drive_until("the unsolicited RSTACK", |p| {
            p.link_events
                .iter()
                .any(|e| matches!(e, LinkEvent::Reset { .. }))
        });
        assert!(pair.ncp.endpoints().is_empty());
        let refused = pair.request(Command::Nop);
        assert!(
            matches!(refused, Response::InvalidCommand { .. }),
            "{refused:?}"
        );
        assert!(
            pair.sim_events
                .contains(&SimEvent::Reset { unsolicited: true })
        );
    }
}

/// Lost and damaged ASH frames both ways: every command still gets its one response.
#[test]
fn commands_survive_a_lossy_line() {
    let mut pair = Pair::new(
        SimNcpConfig {
            ezsp_version: 14,
            link: fast_link(),
            faults: Faults {
                seed: 99,
                drop_to_host: 0.1,
                drop_from_host: 0.1,
                corrupt_to_host: 0.05,
                corrupt_from_host: 0.05,
                ..Faults::default()
            },
            ..SimNcpConfig::default()
        },
        Vec::new(),
    );
    pair.connect();
    for _ in 0..100 {
        assert_eq!(pair.request(Command::Nop), Response::Nop);
    }
    let stats = pair.host_link.stats();
    assert!(stats.retransmissions > 0, "{stats:?}");
}

/// Devices reach the host only once an endpoint serves the OTA cluster and the network is
/// up; each announces itself once.
#[test]
fn devices_talk_once_the_endpoint_and_network_are_up() {
    let mut config = SimConfig::default();
    config.add_default_devices(2);
    config.first_query_after = Duration::from_millis(10);
    let now = origin();
    let devices = config
        .device_configs()
        .into_iter()
        .map(|d| SimDevice::new(d, now))
        .collect();
    let mut pair = Pair::new(
        SimNcpConfig {
            link: fast_link(),
            ..SimNcpConfig::default()
        },
        devices,
    );
    pair.now = now;
    pair.connect();
    // Devices query before anything is registered: their frames go nowhere.
    pair.drive_until("the devices' first query", |p| {
        p.ncp.devices().iter().all(|d| d.is_busy())
    });
    assert!(
        !pair
            .host_events
            .iter()
            .any(|e| matches!(e, Event::Callback(_)))
    );
    assert!(pair.request(ota_endpoint()).status().unwrap().is_success());
    let form = Command::FormNetwork(zigbee_otad::ezsp::command::FormNetwork {
        parameters: zigbee_otad::ezsp::types::NetworkParameters {
            extended_pan_id: zigbee_otad::ezsp::types::Ieee(1),
            pan_id: 0x1234,
            radio_tx_power: 8,
            radio_channel: 15,
            join_method: zigbee_otad::ezsp::types::JoinMethod::USE_MAC_ASSOCIATION,
            nwk_manager_id: zigbee_otad::ezsp::types::Nwk::COORDINATOR,
            nwk_update_id: 0,
            channels: 1 << 15,
        },
    });
    assert!(pair.request(form).status().unwrap().is_success());
    let refused = pair.request(ota_endpoint());
    assert!(!refused.status().unwrap().is_success(), "{refused:?}");
    // Announces, then the devices' retried queries arrive as incomingMessageHandler callbacks.
    pair.drive_until("two queries", |p| {
        p.sim_events
            .iter()
            .filter(|e| matches!(e, SimEvent::MessageToHost { .. }))
            .count()
            >= 2
    });
    pair.drive_until("callbacks", |p| {
        p.host_events
            .iter()
            .filter(|e| matches!(e, Event::Callback(_)))
            .count()
            >= 5 // NETWORK_UP, two announces, two queries
    });
}

/// Opens `path` raw and sends an ASH RST; true when an RSTACK (0xC1) comes back within 2 s.
async fn ncp_answers_rst(path: &std::path::Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_serial::SerialPortBuilderExt;
    let mut port = tokio_serial::new(path.to_string_lossy(), 115_200)
        .open_native_async()
        .unwrap();
    // CANCEL, then RST with its CRC and the flag (UG101 §4.1).
    port.write_all(&[0x1A, 0xC0, 0x38, 0xBC, 0x7E])
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 64];
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while !received.contains(&0xC1) {
        match tokio::time::timeout_at(until, port.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buffer[..n]),
            _ => return false,
        }
    }
    true
}

/// `SimConfig::unplug`: the port vanishes (the link is removed, a host holding the old pty
/// reads an error or end of file), comes back at the same link as a new pty, and the NCP there
/// answers the host's RST; the devices were not restarted (no device event in between says
/// otherwise, and the simulator keeps running).
#[tokio::test]
async fn unplugged_port_comes_back_at_the_same_link() {
    use tokio::io::AsyncReadExt;
    use tokio_serial::SerialPortBuilderExt;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyNCP");
    let mut config = SimConfig::default();
    config.add_default_devices(1);
    config.link_path = Some(link.clone());
    config.unplug = Some(zigbee_otad::sim::Unplug {
        after: Duration::from_millis(500),
        // Long enough that a loaded machine still sees the link gone before it returns (2 s
        // was not, in CI with every other process test running).
        gap: Duration::from_secs(5),
    });
    let mut sim = zigbee_otad::sim::run_simulator(config).await.unwrap();
    assert!(ncp_answers_rst(&link).await);
    let old_target = std::fs::read_link(&link).unwrap();
    let mut old_port = tokio_serial::new(link.to_string_lossy(), 115_200)
        .open_native_async()
        .unwrap();
    // Unplugged: the old port ends, the link is gone.
    let mut buffer = [0u8; 64];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match old_port.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the old pty never ended");
    // The link no longer leads to the old pty: it is gone, or (on a machine so loaded that the
    // 5 s gap passed before this task ran again) it already leads to the new one.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&link).is_ok_and(|target| target == old_target) {
        assert!(
            tokio::time::Instant::now() < until,
            "the link outlived the unplug"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Plugged in again at the same link.
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    while std::fs::metadata(&link).is_err() {
        assert!(
            tokio::time::Instant::now() < until,
            "the link never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ncp_answers_rst(&link).await);
    let mut resets = Vec::new();
    while let Ok(event) = sim.events.try_recv() {
        if let SimEvent::Reset { unsolicited } = event {
            resets.push(unsolicited);
        }
    }
    // One RST before the unplug, one after; the power cycle itself says nothing.
    assert_eq!(resets, [false, false]);
    sim.shutdown().await;
}
