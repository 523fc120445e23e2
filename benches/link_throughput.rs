//! CPU cost of a whole OTA transfer through the protocol stack, both ends included: host ASH
//! link + EZSP session + a minimal ZCL responder on one side, the simulated NCP (ASH NCP role,
//! EZSP NCP role) and a simulated device on the other, on a virtual clock with no radio delay.
//! The throughput figure is image bytes per second of CPU time; the air (≈ 200–900 B/s in the
//! field, PROTOCOLS.md §10) is what limits real transfers, not this.
//!
//! The second group runs the real tokio driver ([`EzspCoordinator`]) against the simulator
//! over a pseudo-terminal in real time (no radio delay): the end-to-end rate of the host side,
//! start-up of both included (the device is told to query by an Image Notify once up).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::field_reassign_with_default
)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zigbee_otad::ash::{Link, LinkConfig, LinkEvent, Role};
use zigbee_otad::coordinator::ezsp::EzspCoordinator;
use zigbee_otad::coordinator::{
    Coordinator, CoordinatorConfig, CoordinatorEvent, CoordinatorState, FlowControl, SerialConfig,
    UnicastMessage,
};
use zigbee_otad::ezsp::command::{AddEndpoint, Callback, Command, FormNetwork, SendUnicast};
use zigbee_otad::ezsp::types::{
    ApsFrame, ApsOptions, Ieee, JoinMethod, NetworkParameters, Nwk, OutgoingMessageType,
};
use zigbee_otad::ezsp::{Event, Session, SessionConfig};
use zigbee_otad::sim::device::{DeviceEvent, SimDevice};
use zigbee_otad::sim::{SimConfig, SimDeviceSpec, SimEvent, SimNcp, SimNcpConfig, run_simulator};
use zigbee_otad::zcl::ota::{
    BlockData, ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageResponse, UpgradeEndResponse,
};

const MFR: u16 = 0x1189;
const TYPE: u16 = 0x0005;
const VERSION: u32 = 0x0000_0200;
const IMAGE: usize = 64 * 1024;

fn image() -> Vec<u8> {
    let mut file = Vec::with_capacity(IMAGE);
    file.extend_from_slice(&0x0BEE_F11Eu32.to_le_bytes());
    file.extend_from_slice(&0x0100u16.to_le_bytes());
    file.extend_from_slice(&56u16.to_le_bytes());
    file.extend_from_slice(&0u16.to_le_bytes());
    file.extend_from_slice(&MFR.to_le_bytes());
    file.extend_from_slice(&TYPE.to_le_bytes());
    file.extend_from_slice(&VERSION.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&[b' '; 32]);
    file.extend_from_slice(&(IMAGE as u32).to_le_bytes());
    file.resize(IMAGE, 0xA5);
    file
}

/// The ZCL reply to a device's request.
fn answer(request: &[u8], file: &[u8]) -> Option<Vec<u8>> {
    let request = OtaFrame::decode_request(request).ok()?;
    let command = match &request.command {
        OtaCommand::QueryNextImageRequest(q) if q.current_file_version < VERSION => {
            OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
                manufacturer_code: MFR,
                image_type: TYPE,
                file_version: VERSION,
                image_size: file.len() as u32,
            })
        }
        OtaCommand::ImageBlockRequest(b) => {
            let start = b.file_offset as usize;
            let end = (start + usize::from(b.maximum_data_size)).min(file.len());
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                manufacturer_code: MFR,
                image_type: TYPE,
                file_version: VERSION,
                file_offset: b.file_offset,
                data: BlockData::new(&file[start..end]).ok()?,
            })
        }
        OtaCommand::UpgradeEndRequest(_) => OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
            manufacturer_code: MFR,
            image_type: TYPE,
            file_version: VERSION,
            current_time: 0,
            upgrade_time: 0,
        }),
        _ => return None,
    };
    let mut out = Vec::new();
    request.reply(command).encode(&mut out);
    Some(out)
}

#[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
fn origin() -> Instant {
    Instant::now()
}

/// One whole upgrade; returns the number of block requests.
fn upgrade(file: &[u8], version: u8) -> u32 {
    let mut now = origin();
    let mut config = SimConfig::default();
    config.devices = vec!["0x1189:0x0005:0x100:1:64".parse::<SimDeviceSpec>().unwrap()];
    config.first_query_after = Duration::ZERO;
    config.radio_delay = Duration::ZERO;
    let devices = config
        .device_configs()
        .into_iter()
        .map(|d| SimDevice::new(d, now))
        .collect();
    let mut ncp = SimNcp::new(
        SimNcpConfig {
            ezsp_version: version,
            link: LinkConfig {
                window: 1,
                ..LinkConfig::default()
            },
            ..SimNcpConfig::default()
        },
        devices,
    )
    .unwrap();
    let mut link = Link::new(Role::Host, LinkConfig::default()).unwrap();
    let mut session = Session::new(SessionConfig::default());
    link.reset(now);
    let mut started = false;
    let mut tag = 0u16;
    for step in 0..10_000_000u64 {
        let mut moved = false;
        while let Some(frame) = session.poll_transmit() {
            if link.send(frame).is_err() {
                break;
            }
        }
        while let Some(bytes) = link.poll_transmit(now) {
            ncp.handle_input(&bytes, now);
            moved = true;
        }
        while let Some(bytes) = ncp.poll_transmit(now) {
            link.handle_input(&bytes, now);
            moved = true;
        }
        while let Some(event) = link.poll_event() {
            moved = true;
            match event {
                LinkEvent::Connected { .. } => session.start(now),
                LinkEvent::Received(frame) => {
                    let _ = session.handle_input(&frame, now);
                }
                other => panic!("{other:?}"),
            }
        }
        while let Some(event) = session.poll_event() {
            moved = true;
            match event {
                Event::Negotiated { .. } if !started => {
                    started = true;
                    let endpoint = Command::AddEndpoint(AddEndpoint {
                        endpoint: 1,
                        profile_id: 0x0104,
                        device_id: 5,
                        device_version: 0,
                        input_clusters: vec![0x0019],
                        output_clusters: vec![],
                    });
                    session.send(&endpoint, now).unwrap();
                    let form = Command::FormNetwork(FormNetwork {
                        parameters: NetworkParameters {
                            extended_pan_id: Ieee(1),
                            pan_id: 0x1234,
                            radio_tx_power: 8,
                            radio_channel: 15,
                            join_method: JoinMethod::USE_MAC_ASSOCIATION,
                            nwk_manager_id: Nwk::COORDINATOR,
                            nwk_update_id: 0,
                            channels: 1 << 15,
                        },
                    });
                    session.send(&form, now).unwrap();
                }
                Event::Callback(Callback::IncomingMessageHandler(incoming)) => {
                    if let Some(reply) = answer(&incoming.message_contents, file) {
                        tag = tag.wrapping_add(1) % 255;
                        let send = Command::SendUnicast(SendUnicast {
                            message_type: OutgoingMessageType::DIRECT,
                            index_or_destination: incoming.sender,
                            aps_frame: ApsFrame {
                                profile_id: 0x0104,
                                cluster_id: 0x0019,
                                source_endpoint: 1,
                                destination_endpoint: incoming.aps_frame.source_endpoint,
                                options: ApsOptions::RETRY,
                                group_id: 0,
                                sequence: 0,
                            },
                            message_tag: tag,
                            message_contents: reply,
                        });
                        session.send(&send, now).unwrap();
                    }
                }
                _ => {}
            }
        }
        while let Some(event) = ncp.poll_event() {
            if let SimEvent::Device {
                event: DeviceEvent::UpgradeEnded(report),
                ..
            } = event
            {
                assert!(report.verified, "{report}");
                return report.block_requests;
            }
        }
        if !moved {
            let next = [
                link.poll_timeout(),
                session.poll_timeout(),
                ncp.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| panic!("stuck at step {step}"));
            now = now.max(next);
            link.handle_timeout(now);
            session.handle_timeout(now);
            ncp.handle_timeout(now);
        }
    }
    panic!("no upgrade");
}

/// One upgrade of `file` through the driver and the simulator on a pty; returns block requests.
async fn upgrade_over_pty(file: Arc<Vec<u8>>, state_dir: PathBuf) -> u32 {
    let mut config = SimConfig::default();
    config.devices = vec!["0x1189:0x0005:0x100:1:64".parse::<SimDeviceSpec>().unwrap()];
    // The device queries when notified, once the driver is up.
    config.first_query_after = Duration::from_secs(3600);
    config.radio_delay = Duration::ZERO;
    let device = config.device_configs()[0].nwk;
    let mut sim = run_simulator(config).await.unwrap();
    let (coordinator, mut events) = EzspCoordinator::start(CoordinatorConfig {
        serial: SerialConfig {
            path: sim.path().to_string(),
            baudrate: 115_200,
            flow_control: FlowControl::None,
        },
        state_dir,
        network: Default::default(),
        endpoint: 1,
    });
    let blocks = loop {
        tokio::select! {
            Some(event) = events.recv() => {
                if event == CoordinatorEvent::StateChanged(CoordinatorState::Up) {
                    // Image Notify, query jitter 100: query now.
                    coordinator.send_unicast(UnicastMessage {
                        destination: device,
                        src_endpoint: 1,
                        dst_endpoint: 1,
                        profile: 0x0104,
                        cluster: 0x0019,
                        payload: vec![0x19, 0x00, 0x00, 0x00, 0x64],
                        aps_ack: true,
                    }).unwrap();
                }
                if let CoordinatorEvent::Incoming(message) = event
                    && let Some(payload) = answer(&message.payload, &file)
                {
                    let _ = coordinator.send_unicast(UnicastMessage {
                        destination: message.source,
                        src_endpoint: 1,
                        dst_endpoint: message.src_endpoint,
                        profile: 0x0104,
                        cluster: 0x0019,
                        payload,
                        aps_ack: true,
                    });
                }
            }
            Some(event) = sim.events.recv() => {
                if let SimEvent::Device { event: DeviceEvent::UpgradeEnded(report), .. } = event {
                    assert!(report.verified, "{report}");
                    break report.block_requests;
                }
            }
        }
    };
    coordinator.shutdown().await;
    sim.shutdown().await;
    blocks
}

fn bench(c: &mut Criterion) {
    let file = image();
    let mut group = c.benchmark_group("ota_transfer_through_ash_ezsp_sim");
    group.throughput(Throughput::Bytes(IMAGE as u64));
    group.sample_size(10);
    for version in [13u8, 14] {
        group.bench_function(format!("64KiB_64B_blocks_ezsp_v{version}"), |b| {
            b.iter(|| black_box(upgrade(black_box(&file), version)))
        });
    }
    group.finish();

    const PTY_IMAGE: usize = 16 * 1024;
    let mut small = image();
    small.truncate(PTY_IMAGE);
    small[52..56].copy_from_slice(&(PTY_IMAGE as u32).to_le_bytes());
    let small = Arc::new(small);
    let state_dir = std::env::temp_dir().join(format!("otad-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("ota_transfer_driver_and_sim_over_pty");
    group.throughput(Throughput::Bytes(PTY_IMAGE as u64));
    group.sample_size(10);
    group.bench_function("16KiB_64B_blocks_ezsp_v13", |b| {
        b.iter(|| runtime.block_on(upgrade_over_pty(Arc::clone(&small), state_dir.clone())))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&state_dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
