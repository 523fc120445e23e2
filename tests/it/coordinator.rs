//! The EZSP coordinator driver against the simulated NCP over a real pseudo-terminal: start-up,
//! whole OTA upgrades through a minimal test OTA responder, 5 % frame loss with an NCP reset
//! mid-way, delivery faults, and a vanished port. Real time with generous timeouts (the paused
//! clock does not work with fd I/O); no sleeps as synchronisation.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use zigbee_otad::ash::LinkConfig;
use zigbee_otad::coordinator::ezsp::{EzspCoordinator, EzspTuning, HostConfig};
use zigbee_otad::coordinator::serial::Backoff;
use zigbee_otad::coordinator::{
    AnswerTiming, CLUSTER_OTA_UPGRADE, Coordinator, CoordinatorConfig, CoordinatorEvent,
    CoordinatorState, DeliveryOutcome, FlowControl, IncomingMessage, MessageTag, Nwk, SendError,
    SerialConfig, UnicastMessage,
};
use zigbee_otad::sim::{
    Faults, SimConfig, SimDeviceSpec, SimEvent, Simulator, UpgradeOutcome, UpgradeReport,
    run_simulator,
};
use zigbee_otad::zcl::ZclStatus;
use zigbee_otad::zcl::ota::{
    BlockData, ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageResponse, UpgradeEndResponse,
};

/// A synthetic OTA file: a valid 56-byte header and one Upgrade Image sub-element of
/// pseudo-random bytes.
pub fn synthetic_ota_file(
    manufacturer: u16,
    image_type: u16,
    version: u32,
    payload: usize,
) -> Vec<u8> {
    let total = 56 + 6 + payload;
    let mut file = Vec::with_capacity(total);
    file.extend_from_slice(&0x0BEE_F11Eu32.to_le_bytes());
    file.extend_from_slice(&0x0100u16.to_le_bytes());
    file.extend_from_slice(&56u16.to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    file.extend_from_slice(&manufacturer.to_le_bytes());
    file.extend_from_slice(&image_type.to_le_bytes());
    file.extend_from_slice(&version.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    let mut name = [0u8; 32];
    name[..15].copy_from_slice(b"zigbee-otad sim");
    file.extend_from_slice(&name);
    file.extend_from_slice(&u32::try_from(total).unwrap().to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    file.extend_from_slice(&u32::try_from(payload).unwrap().to_le_bytes());
    let mut x = u32::from(manufacturer) << 16 | u32::from(image_type) | 1;
    for _ in 0..payload {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        file.push(x as u8);
    }
    assert_eq!(file.len(), total);
    file
}

/// Offered images by (manufacturer code, image type): file version and file.
pub type Images = HashMap<(u16, u16), (u32, Arc<Vec<u8>>)>;

/// The least an OTA server does, for these tests: offer a newer image, serve blocks, confirm
/// the upgrade end. (The real server is the `server` module.)
#[derive(Debug)]
pub struct TestResponder {
    pub images: Images,
    pub endpoint: u8,
    pub block_cap: usize,
}

impl TestResponder {
    /// The reply to a device's OTA request, if any.
    pub fn answer(&self, message: &IncomingMessage) -> Option<UnicastMessage> {
        if message.cluster != CLUSTER_OTA_UPGRADE {
            return None;
        }
        let request = OtaFrame::decode_request(&message.payload).ok()?;
        let command = match &request.command {
            OtaCommand::QueryNextImageRequest(query) => {
                match self
                    .images
                    .get(&(query.manufacturer_code, query.image_type))
                {
                    Some((version, file)) if *version > query.current_file_version => {
                        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
                            manufacturer_code: query.manufacturer_code,
                            image_type: query.image_type,
                            file_version: *version,
                            image_size: u32::try_from(file.len()).unwrap(),
                        })
                    }
                    _ => OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus {
                        status: ZclStatus::NO_IMAGE_AVAILABLE,
                    }),
                }
            }
            OtaCommand::ImageBlockRequest(block) => {
                let (_, file) = self
                    .images
                    .get(&(block.manufacturer_code, block.image_type))?;
                let start = usize::try_from(block.file_offset).unwrap().min(file.len());
                let len = usize::from(block.maximum_data_size)
                    .min(self.block_cap)
                    .min(file.len() - start);
                OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                    manufacturer_code: block.manufacturer_code,
                    image_type: block.image_type,
                    file_version: block.file_version,
                    file_offset: block.file_offset,
                    data: BlockData::new(&file[start..start + len]).unwrap(),
                })
            }
            OtaCommand::UpgradeEndRequest(end) if end.status == ZclStatus::SUCCESS => {
                OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
                    manufacturer_code: end.manufacturer_code,
                    image_type: end.image_type,
                    file_version: end.file_version,
                    current_time: 0,
                    upgrade_time: 0,
                })
            }
            _ => return None,
        };
        let mut payload = Vec::new();
        request.reply(command).encode(&mut payload);
        Some(UnicastMessage {
            destination: message.source,
            src_endpoint: self.endpoint,
            dst_endpoint: message.src_endpoint,
            profile: message.profile,
            cluster: CLUSTER_OTA_UPGRADE,
            payload,
            aps_ack: true,
        })
    }
}

/// Short ASH timers so lost frames cost milliseconds, not seconds (same protocol).
pub fn fast_link() -> LinkConfig {
    LinkConfig {
        t_rx_ack_init: Duration::from_millis(200),
        t_rx_ack_min: Duration::from_millis(100),
        t_rx_ack_max: Duration::from_millis(800),
        rst_timeout: Duration::from_millis(500),
        ..LinkConfig::default()
    }
}

pub fn fast_tuning() -> EzspTuning {
    EzspTuning {
        host: HostConfig {
            link: fast_link(),
            network_up_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_millis(700),
            delivery_timeout: Duration::from_secs(5),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
            ..HostConfig::new(1)
        },
        ..EzspTuning::default()
    }
}

pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otad-coord-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The driver on `path` with XON/XOFF flow control, the daemon's default.
pub fn driver_config(path: &str, state_dir: PathBuf) -> CoordinatorConfig {
    CoordinatorConfig {
        serial: SerialConfig {
            path: path.to_string(),
            baudrate: 115_200,
            flow_control: FlowControl::Software,
        },
        state_dir,
        network: Default::default(),
        endpoint: 1,
    }
}

/// What one end-to-end run saw.
#[derive(Debug, Default)]
struct Transcript {
    states: Vec<CoordinatorState>,
    incoming_ota: Vec<(Nwk, Vec<u8>)>,
    incoming_ieee: Vec<Option<zigbee_otad::coordinator::Ieee>>,
    sent_tags: Vec<MessageTag>,
    reports: HashMap<MessageTag, Vec<DeliveryOutcome>>,
    joined: HashSet<Nwk>,
    to_host: Vec<(Nwk, Vec<u8>)>,
    endpoint_registrations: Vec<Vec<u16>>,
    unsolicited_resets: usize,
    upgrades: Vec<UpgradeReport>,
}

/// Runs the responder on the driver's events until every device reported an upgrade end, then
/// until the driver has seen every message the NCP handed it.
async fn run_upgrades(
    coordinator: &EzspCoordinator,
    events: &mut mpsc::Receiver<CoordinatorEvent>,
    sim: &mut Simulator,
    responder: &TestResponder,
    devices: usize,
    limit: Duration,
) -> Transcript {
    let mut t = Transcript::default();
    let deadline = Instant::now() + limit;
    let mut settled_since: Option<Instant> = None;
    loop {
        let done = t.upgrades.len() >= devices;
        if done {
            // Settle: every message the NCP queued has reached us and every send is reported.
            let all_reported = t.sent_tags.iter().all(|tag| t.reports.contains_key(tag));
            if t.to_host.len() == t.incoming_ota.len() && all_reported {
                let since = *settled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    return t;
                }
            } else {
                settled_since = None;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {} of {devices} upgrades; transcript {:?}",
            t.upgrades.len(),
            (
                t.states.clone(),
                t.endpoint_registrations.clone(),
                t.upgrades.clone()
            )
        );
        tokio::select! {
            event = events.recv() => match event.expect("driver stopped") {
                CoordinatorEvent::StateChanged(state) => t.states.push(state),
                CoordinatorEvent::Incoming(message) => {
                    if message.cluster == CLUSTER_OTA_UPGRADE {
                        t.incoming_ota.push((message.source, message.payload.clone()));
                        t.incoming_ieee.push(message.ieee);
                    }
                    if let Some(reply) = responder.answer(&message) {
                        let timing = AnswerTiming {
                            request_read_at: message.read_at.expect("the driver stamps every message"),
                            answer_ready_at: tokio::time::Instant::now().into_std(),
                        };
                        match coordinator.send_answer(reply, timing) {
                            Ok(tag) => t.sent_tags.push(tag),
                            // The device asks again after its timeout.
                            Err(SendError::QueueFull | SendError::NotUp(_)) => {}
                            Err(e) => panic!("send refused: {e}"),
                        }
                    }
                }
                CoordinatorEvent::DeliveryReport { tag, outcome } => {
                    t.reports.entry(tag).or_default().push(outcome);
                }
                CoordinatorEvent::DeviceJoined { nwk, .. } => {
                    t.joined.insert(nwk);
                }
                other => panic!("unexpected event {other:?}"),
            },
            event = sim.events.recv() => match event.expect("simulator stopped") {
                SimEvent::Device { event: zigbee_otad::sim::device::DeviceEvent::UpgradeEnded(report), .. } => {
                    t.upgrades.push(report);
                }
                SimEvent::MessageToHost { nwk, cluster, payload } => {
                    assert_eq!(cluster, CLUSTER_OTA_UPGRADE);
                    t.to_host.push((nwk, payload));
                }
                SimEvent::EndpointRegistered { input_clusters, .. } => {
                    t.endpoint_registrations.push(input_clusters);
                }
                SimEvent::Reset { unsolicited: true } => t.unsolicited_resets += 1,
                _ => {}
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

fn sim_config(version: u8, specs: &[&str], images: &Images) -> SimConfig {
    let mut config = SimConfig::default();
    config.ncp.ezsp_version = version;
    config.ncp.link = fast_link();
    config.devices = specs
        .iter()
        .map(|s| s.parse::<SimDeviceSpec>().unwrap())
        .collect();
    config.images = images
        .iter()
        .map(|(key, (_, file))| (*key, Arc::clone(file)))
        .collect();
    config.first_query_after = Duration::from_millis(200);
    config.response_timeout = Duration::from_millis(1500);
    config.trace_messages = true;
    config
}

fn images() -> Images {
    let mut images = HashMap::new();
    images.insert(
        (0x1189, 0x0005),
        (
            0x0000_0200,
            Arc::new(synthetic_ota_file(0x1189, 0x0005, 0x0000_0200, 1800)),
        ),
    );
    images.insert(
        (0x117C, 0x2101),
        (
            0x0102_0304,
            Arc::new(synthetic_ota_file(0x117C, 0x2101, 0x0102_0304, 1200)),
        ),
    );
    images
}

fn assert_every_send_reported_once(t: &Transcript) {
    assert!(!t.sent_tags.is_empty());
    for tag in &t.sent_tags {
        let outcomes = t.reports.get(tag).map_or(0, Vec::len);
        assert_eq!(outcomes, 1, "{tag:?} got {outcomes} delivery reports");
    }
    assert_eq!(
        t.reports.len(),
        t.sent_tags.len(),
        "reports for unknown tags"
    );
}

fn assert_upgraded(t: &Transcript, devices: usize) {
    assert_eq!(t.upgrades.len(), devices, "{:?}", t.upgrades);
    for report in &t.upgrades {
        assert_eq!(report.outcome, UpgradeOutcome::Upgraded, "{report}");
        assert!(report.verified, "{report}");
        assert!(report.to_version > report.from_version, "{report}");
    }
}

async fn clean_upgrade(version: u8) {
    let images = images();
    let mut sim = run_simulator(sim_config(
        version,
        &["0x1189:0x0005:0x100", "0x117C:0x2101:0x01000000:1:40"],
        &images,
    ))
    .await
    .unwrap();
    let state_dir = scratch_dir(&format!("clean-v{version}"));
    let (coordinator, mut events) =
        EzspCoordinator::start_with(driver_config(sim.path(), state_dir.clone()), fast_tuning());
    let responder = TestResponder {
        images: images.clone(),
        endpoint: 1,
        block_cap: 50,
    };
    let t = run_upgrades(
        &coordinator,
        &mut events,
        &mut sim,
        &responder,
        2,
        Duration::from_secs(60),
    )
    .await;

    assert_upgraded(&t, 2);
    assert_every_send_reported_once(&t);
    assert_eq!(
        t.incoming_ota, t.to_host,
        "every device message delivered once, in order"
    );
    assert!(
        t.incoming_ieee.iter().all(Option::is_some),
        "{:?}",
        t.incoming_ieee
    );
    assert_eq!(t.states.first(), Some(&CoordinatorState::Starting));
    assert!(t.states.contains(&CoordinatorState::Up));
    assert_eq!(
        t.endpoint_registrations,
        vec![vec![0x0000, CLUSTER_OTA_UPGRADE]]
    );
    // The NCP held no network: one was formed from generated settings, kept in the state dir.
    assert!(state_dir.join("network.json").is_file());
    let info = coordinator.network_info().unwrap();
    assert_eq!(info.protocol_version, version);
    assert_eq!(coordinator.max_aps_payload(), Some(82));
    // Device announces filled the table.
    assert_eq!(coordinator.device_table().len(), 2);
    assert_eq!(t.joined.len(), 2);
    // Every answer's latency was measured twice: until it was handed to the EZSP session and
    // until the write that carried it; per answer the second is the longer.
    let latency = coordinator.answer_latency().unwrap();
    assert_eq!(latency.host.count, t.sent_tags.len() as u64);
    assert_eq!(latency.serial_in_to_out.count, latency.host.count);
    for (host, serial) in [
        (latency.host.p50_us, latency.serial_in_to_out.p50_us),
        (latency.host.p99_us, latency.serial_in_to_out.p99_us),
        (latency.host.max_us, latency.serial_in_to_out.max_us),
    ] {
        assert!(host <= serial, "{latency:?}");
    }
    assert!(
        latency.host.p50_us <= latency.host.p99_us && latency.host.p99_us <= latency.host.max_us
    );

    coordinator.shutdown().await;
    assert_eq!(coordinator.state(), CoordinatorState::Stopped);
    sim.shutdown().await;
    // The device table was kept in the state directory: a restarted driver knows the devices
    // before any of them announces again.
    let (restarted, _events) = EzspCoordinator::start_with(
        driver_config("/dev/otad-no-such-port", state_dir.clone()),
        fast_tuning(),
    );
    assert_eq!(restarted.device_table(), coordinator.device_table());
    restarted.shutdown().await;
    std::fs::remove_dir_all(&state_dir).unwrap();
}

#[tokio::test]
async fn whole_upgrades_over_ezsp_v13() {
    clean_upgrade(13).await;
}

/// The proof: 5 % of ASH frames lost in each direction (and 2 % damaged, for the
/// CRC/NAK path) and one NCP reset mid-way;
/// every device message reaches the driver exactly once, every send gets exactly one report,
/// the endpoint is registered again after the reset, and the upgrades complete and verify.
async fn lossy_upgrade_with_reset(version: u8) {
    let images = images();
    let mut config = sim_config(
        version,
        &["0x1189:0x0005:0x100", "0x117C:0x2101:0x01000000:1:40"],
        &images,
    );
    config.ncp.faults = Faults {
        seed: 0xC0FFEE + u64::from(version),
        drop_to_host: 0.05,
        drop_from_host: 0.05,
        corrupt_to_host: 0.02,
        corrupt_from_host: 0.02,
        reset_after_messages: Some(30),
        ..Faults::default()
    };
    let mut sim = run_simulator(config).await.unwrap();
    let state_dir = scratch_dir(&format!("lossy-v{version}"));
    let (coordinator, mut events) =
        EzspCoordinator::start_with(driver_config(sim.path(), state_dir.clone()), fast_tuning());
    let responder = TestResponder {
        images: images.clone(),
        endpoint: 1,
        block_cap: 50,
    };
    let t = run_upgrades(
        &coordinator,
        &mut events,
        &mut sim,
        &responder,
        2,
        Duration::from_secs(120),
    )
    .await;

    assert_upgraded(&t, 2);
    assert_eq!(t.unsolicited_resets, 1);
    assert_eq!(
        t.endpoint_registrations,
        vec![vec![0x0000, CLUSTER_OTA_UPGRADE]; 2],
        "the endpoint is registered after power-on and again after the reset"
    );
    assert!(
        t.states.contains(&CoordinatorState::Resetting),
        "{:?}",
        t.states
    );
    assert_eq!(
        t.states.last(),
        Some(&CoordinatorState::Up),
        "{:?}",
        t.states
    );
    let unique: HashSet<_> = t.to_host.iter().collect();
    assert_eq!(
        unique.len(),
        t.to_host.len(),
        "the NCP sent no message twice"
    );
    assert_eq!(
        t.incoming_ota, t.to_host,
        "every device message delivered once, in order"
    );
    assert_every_send_reported_once(&t);

    coordinator.shutdown().await;
    sim.shutdown().await;
    std::fs::remove_dir_all(&state_dir).unwrap();
}

#[tokio::test]
async fn lossy_link_and_ncp_reset_v13() {
    lossy_upgrade_with_reset(13).await;
}

/// Waits for the driver to reach `state`, returning the states seen on the way.
async fn wait_for_state(
    events: &mut mpsc::Receiver<CoordinatorEvent>,
    state: CoordinatorState,
    limit: Duration,
) -> Vec<CoordinatorState> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {state:?} within {limit:?}; saw {seen:?}"))
            .expect("driver stopped");
        if let CoordinatorEvent::StateChanged(s) = event {
            seen.push(s);
            if s == state {
                return seen;
            }
        }
    }
}

/// Unplugging the stick (the pty vanishes) makes the driver reopen the port with capped
/// exponential backoff, never in a busy loop, and come back up on the new port.
#[tokio::test]
async fn vanished_port_is_reopened_with_backoff() {
    let dir = scratch_dir("vanish");
    let link = dir.join("ttyNCP");
    let mut config = SimConfig::default();
    config.ncp.link = fast_link();
    config.link_path = Some(link.clone());
    let first = run_simulator(config.clone()).await.unwrap();
    let (coordinator, mut events) = EzspCoordinator::start_with(
        driver_config(link.to_str().unwrap(), dir.clone()),
        fast_tuning(),
    );
    wait_for_state(&mut events, CoordinatorState::Up, Duration::from_secs(20)).await;

    first.shutdown().await;
    wait_for_state(
        &mut events,
        CoordinatorState::Disconnected,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        coordinator.send_unicast(UnicastMessage {
            destination: Nwk(0x1234),
            src_endpoint: 1,
            dst_endpoint: 1,
            profile: 0x0104,
            cluster: CLUSTER_OTA_UPGRADE,
            payload: vec![0x19, 0x00, 0x00, 0x00, 0x64],
            aps_ack: true,
        }),
        Err(SendError::NotUp(CoordinatorState::Disconnected))
    );
    // Let the driver fail to reopen for a while, then plug a new stick in at the same path.
    let down = Instant::now();
    let mut attempts = 0;
    while down.elapsed() < Duration::from_millis(1500) {
        if let Ok(Some(CoordinatorEvent::StateChanged(CoordinatorState::Starting))) =
            tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            attempts += 1;
        }
    }
    // Backoff 50 ms doubling to 400 ms: about 5 attempts in 1.5 s; a busy loop makes thousands.
    assert!(
        (2..=10).contains(&attempts),
        "{attempts} reopen attempts in 1.5 s"
    );
    let second = run_simulator(config).await.unwrap();
    wait_for_state(&mut events, CoordinatorState::Up, Duration::from_secs(20)).await;
    assert_eq!(coordinator.state(), CoordinatorState::Up);

    coordinator.shutdown().await;
    second.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An NCP that already holds a network is resumed, not re-formed; joining can be permitted and
/// a broadcast (Image Notify) reaches every device and is reported sent.
#[tokio::test]
async fn held_network_is_resumed() {
    use zigbee_otad::ezsp::types::{Ieee, JoinMethod, NetworkParameters, Nwk};
    let mut config = SimConfig::default();
    config.ncp.ezsp_version = 14;
    config.ncp.link = fast_link();
    config.ncp.network = Some(NetworkParameters {
        extended_pan_id: Ieee(0xDDDD_EEEE_0000_1111),
        pan_id: 0x1A62,
        radio_tx_power: 8,
        radio_channel: 20,
        join_method: JoinMethod::USE_MAC_ASSOCIATION,
        nwk_manager_id: Nwk::COORDINATOR,
        nwk_update_id: 0,
        channels: 1 << 20,
    });
    config.devices = vec![
        "0x1189:0x0005:0x100".parse().unwrap(),
        "0x117C:0x2101:0x01000000".parse().unwrap(),
    ];
    config.first_query_after = Duration::from_secs(3600);
    config.trace_messages = true;
    let mut sim = run_simulator(config).await.unwrap();
    let dir = scratch_dir("resume");
    let (coordinator, mut events) =
        EzspCoordinator::start_with(driver_config(sim.path(), dir.clone()), fast_tuning());
    wait_for_state(&mut events, CoordinatorState::Up, Duration::from_secs(20)).await;
    let info = coordinator.network_info().unwrap();
    assert_eq!((info.channel, info.pan_id), (20, 0x1A62));
    assert_eq!(info.extended_pan_id, 0xDDDD_EEEE_0000_1111);
    assert!(!dir.join("network.json").exists(), "nothing was formed");

    coordinator.permit_joining(60).unwrap();
    let notify = zigbee_otad::coordinator::BroadcastMessage {
        destination: Nwk::BROADCAST_RX_ON_WHEN_IDLE,
        src_endpoint: 1,
        dst_endpoint: 0xFF,
        profile: 0x0104,
        cluster: CLUSTER_OTA_UPGRADE,
        radius: 0,
        payload: vec![0x19, 0x01, 0x00, 0x00, 0x64],
    };
    assert_eq!(
        coordinator.send_unicast(UnicastMessage {
            destination: Nwk::BROADCAST_ALL,
            src_endpoint: 1,
            dst_endpoint: 1,
            profile: 0x0104,
            cluster: CLUSTER_OTA_UPGRADE,
            payload: vec![],
            aps_ack: false,
        }),
        Err(SendError::BadDestination(Nwk::BROADCAST_ALL))
    );
    let tag = coordinator.send_broadcast(notify).unwrap();
    let (mut permitted, mut notified, mut reported) = (false, HashSet::new(), false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(permitted && notified.len() == 2 && reported) {
        tokio::select! {
            Some(event) = events.recv() => {
                if let CoordinatorEvent::DeliveryReport { tag: t, outcome } = event {
                    assert_eq!((t, outcome), (tag, DeliveryOutcome::Delivered));
                    reported = true;
                }
            }
            Some(event) = sim.events.recv() => match event {
                SimEvent::PermitJoining { duration } => {
                    assert_eq!(duration, 60);
                    permitted = true;
                }
                SimEvent::MessageToDevice { nwk, payload } => {
                    assert_eq!(payload, [0x19, 0x01, 0x00, 0x00, 0x64]);
                    notified.insert(nwk);
                }
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => {
                panic!("permitted {permitted}, notified {notified:?}, reported {reported}")
            }
        }
    }
    coordinator.shutdown().await;
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A real stick, when one is plugged in: `TEST_SERIAL_PORT=/dev/serial/by-id/... cargo test
/// --test it coordinator::real_stick -- --ignored --nocapture` (state goes to a scratch dir, so
/// a stick without a network forms a throwaway one).
#[tokio::test]
#[ignore = "needs hardware: set TEST_SERIAL_PORT"]
async fn real_stick_comes_up() {
    let Ok(port) = std::env::var("TEST_SERIAL_PORT") else {
        eprintln!("SKIPPED: set TEST_SERIAL_PORT to the stick's path");
        return;
    };
    let dir = scratch_dir("hardware");
    let (coordinator, mut events) = EzspCoordinator::start(driver_config(&port, dir.clone()));
    wait_for_state(&mut events, CoordinatorState::Up, Duration::from_secs(60)).await;
    println!(
        "{:?}, max APS payload {:?}",
        coordinator.network_info(),
        coordinator.max_aps_payload()
    );
    coordinator.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without announces an EZSP v13 host has no IEEE address for a sender: the driver asks the
/// NCP (`lookupEui64ByNodeId`), holds that sender's messages until the answer, and delivers
/// them, in order, with the address; the device table learns it.
#[tokio::test]
async fn unknown_senders_are_looked_up_before_v14() {
    let images = images();
    let mut config = sim_config(13, &["0x1189:0x0005:0x100"], &images);
    config.ncp.announce_devices = false;
    let mut sim = run_simulator(config).await.unwrap();
    let state_dir = scratch_dir("lookup");
    let (coordinator, mut events) =
        EzspCoordinator::start_with(driver_config(sim.path(), state_dir.clone()), fast_tuning());
    let responder = TestResponder {
        images: images.clone(),
        endpoint: 1,
        block_cap: 50,
    };
    let t = run_upgrades(
        &coordinator,
        &mut events,
        &mut sim,
        &responder,
        1,
        Duration::from_secs(60),
    )
    .await;
    assert_upgraded(&t, 1);
    assert!(t.joined.is_empty(), "nothing announced");
    assert!(!t.incoming_ieee.is_empty());
    assert!(
        t.incoming_ieee
            .iter()
            .all(|ieee| *ieee == Some(t.upgrades[0].ieee)),
        "{:?}",
        t.incoming_ieee
    );
    assert_eq!(t.incoming_ota, t.to_host);
    let table = coordinator.device_table();
    let (nwk, ieee) = table.entries()[0];
    assert_eq!(ieee, t.upgrades[0].ieee);
    assert_eq!(nwk, t.upgrades[0].nwk);
    coordinator.shutdown().await;
    sim.shutdown().await;
    std::fs::remove_dir_all(&state_dir).unwrap();
}
