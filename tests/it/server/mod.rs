//! Virtual-clock scenario tests for the OTA server: the project's simulated OTA clients
//! (`sim::device::SimDevice`, with the hooks these scenarios need) speak ZCL to the real
//! `OtaServer`; time only moves when the next deadline says so. The fixtures and the simulation
//! live here; the tests are split by topic.

mod captured;
mod properties;
mod requests;
mod scenarios;
mod status;
mod transcript;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zigbee_otad::server::{
    Destination, DeviceAddr, DeviceKey, ImageKey, NotifyTarget, OtaImage, OtaServer, Outgoing,
    ServerConfig, ServerEvent, TransferState, UpgradeTimePolicy,
};
use zigbee_otad::sim::device::{
    DeviceEvent, DeviceHooks, Fetch, SimDevice, SimDeviceConfig, SimDeviceSpec, Vanish,
    encode_client_request,
};
use zigbee_otad::zcl::basic::BasicIdentity;
use zigbee_otad::zcl::ota::{
    ImageBlockRequest, ImageBlockResponse, ImagePageRequest, OtaCommand, OtaFrame,
    QueryNextImageRequest, QueryNextImageResponse, UpgradeEndRequest,
};
use zigbee_otad::zcl::{Direction, FrameType, Ieee, ZclStatus};
use zigbee_otad::zigbee::Nwk;

const MFR: u16 = 0x1189;
const IMAGE_TYPE: u16 = 0x0042;
const OLD: u32 = 0x0100_0000;
const NEW: u32 = 0x0200_0000;

#[allow(clippy::disallowed_methods)]
fn start_of_time() -> Instant {
    // The only clock read: an arbitrary origin. Everything after is virtual.
    Instant::now()
}

/// Deterministic pseudo-random bytes (an image the server must serve exactly).
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

pub fn image(version: u32, len: usize, seed: u32) -> Arc<OtaImage> {
    OtaImage::new(
        ImageKey {
            manufacturer_code: MFR,
            image_type: IMAGE_TYPE,
            file_version: version,
        },
        Bytes::from(pattern(len, seed)),
    )
    .unwrap()
    .shared()
}

/// A client request as every simulated device encodes it.
pub fn frame_bytes(tsn: u8, command: OtaCommand) -> Vec<u8> {
    encode_client_request(tsn, command)
}

pub fn query(tsn: u8, version: u32, hardware_version: Option<u16>) -> Vec<u8> {
    frame_bytes(
        tsn,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: u8::from(hardware_version.is_some()),
            manufacturer_code: MFR,
            image_type: IMAGE_TYPE,
            current_file_version: version,
            hardware_version,
        }),
    )
}

pub fn block_request(
    tsn: u8,
    file: ImageKey,
    offset: u32,
    max: u8,
    period: Option<u16>,
) -> Vec<u8> {
    frame_bytes(
        tsn,
        OtaCommand::ImageBlockRequest(ImageBlockRequest {
            field_control: if period.is_some() { 0b10 } else { 0 },
            manufacturer_code: file.manufacturer_code,
            image_type: file.image_type,
            file_version: file.file_version,
            file_offset: offset,
            maximum_data_size: max,
            request_node_address: None,
            minimum_block_period: period,
        }),
    )
}

/// A 200-byte device-specific file (image type 0xFFC1, version 3) addressed to `ieee`.
pub fn device_specific_file(ieee: Ieee) -> (ImageKey, Arc<OtaImage>) {
    let key = ImageKey {
        manufacturer_code: MFR,
        image_type: 0xFFC1,
        file_version: 3,
    };
    let file = OtaImage::new(key, Bytes::from(pattern(200, 27)))
        .unwrap()
        .with_destination(ieee)
        .shared();
    (key, file)
}

/// A Query Device Specific File Request (TSN 9) for image type 0xFFC1, naming `requester`.
pub fn device_specific_query(requester: Ieee) -> Vec<u8> {
    frame_bytes(
        9,
        OtaCommand::QueryDeviceSpecificFileRequest(
            zigbee_otad::zcl::ota::QueryDeviceSpecificFileRequest {
                request_node_address: requester,
                manufacturer_code: MFR,
                image_type: 0xFFC1,
                file_version: 1,
                current_zigbee_stack_version: 2,
            },
        ),
    )
}

pub fn upgrade_end(tsn: u8, status: ZclStatus, file: ImageKey) -> Vec<u8> {
    frame_bytes(
        tsn,
        OtaCommand::UpgradeEndRequest(UpgradeEndRequest {
            status,
            manufacturer_code: file.manufacturer_code,
            image_type: file.image_type,
            file_version: file.file_version,
        }),
    )
}

/// Compares two byte strings without printing kilobytes on failure.
pub fn assert_same_bytes(got: &[u8], want: &[u8]) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("bytes differ first at offset {i}");
    }
    assert_eq!(got.len(), want.len(), "lengths differ");
}

fn decode(out: &Outgoing) -> OtaFrame {
    OtaFrame::decode(&out.zcl_bytes).expect("the server sends decodable frames")
}

/// A simulated device as these tests use it: the project's [`SimDevice`] running version OLD of
/// MFR/IMAGE_TYPE, blocks of at most 64 bytes, querying at once and then every 5 minutes, 20 ms
/// between requests, a 2 s answer timeout and no giving up. It applies what it downloads without
/// checking it (the tests compare `log().installed` with the image), resends a lost block
/// request with the same TSN, waits silently for the upgrade command, numbers its frames from
/// TSN 1 and keeps a log.
pub fn device(nwk: u16, ieee: u64) -> SimDeviceConfig {
    let spec = SimDeviceSpec {
        manufacturer_code: MFR,
        image_type: IMAGE_TYPE,
        file_version: OLD,
        hardware_version: None,
        max_data_size: 64,
        identity: BasicIdentity::default(),
    };
    let mut config = SimDeviceConfig::new(Nwk(nwk), Ieee(ieee), spec);
    config.first_query_after = Duration::ZERO;
    config.query_interval = Duration::from_secs(300);
    config.response_timeout = Duration::from_secs(2);
    config.max_retries = 1_000;
    config.hooks = DeviceHooks {
        request_delay: Duration::from_millis(20),
        end_status: Some(ZclStatus::SUCCESS),
        resend_same_tsn: true,
        first_tsn: 1,
        silent_while_awaiting_command: true,
        keep_log: true,
        ..DeviceHooks::default()
    };
    config
}

enum Delivery {
    ToServer(DeviceAddr, Vec<u8>),
    ToDevice(usize, Bytes),
}

/// The server, the devices and a virtual clock.
pub struct Sim {
    pub server: OtaServer,
    pub t0: Instant,
    pub now: Instant,
    pub devices: Vec<SimDevice>,
    /// What the devices reported, by device index.
    pub device_events: Vec<(usize, DeviceEvent)>,
    pub events: Vec<(Duration, ServerEvent)>,
    pub sent: Vec<(Instant, Outgoing)>,
    pub latency: Duration,
    in_flight: Vec<(Instant, Delivery)>,
    /// Most transfers seen downloading at once.
    pub peak_downloading: usize,
    /// Every n-th frame from the server is lost.
    pub drop_every: Option<usize>,
    /// Every n-th frame from a device arrives twice.
    pub duplicate_every: Option<usize>,
    to_devices: usize,
    to_server: usize,
    /// Every frame delivered: (time, from the server?, device nwk, bytes).
    pub transcript: Vec<(Instant, bool, u16, Vec<u8>)>,
}

impl Sim {
    pub fn new(config: ServerConfig, images: Vec<Arc<OtaImage>>) -> Self {
        let t0 = start_of_time();
        let mut server = OtaServer::new(config);
        server.set_images(images, t0);
        Sim {
            server,
            t0,
            now: t0,
            devices: Vec::new(),
            device_events: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
            latency: Duration::from_millis(10),
            in_flight: Vec::new(),
            peak_downloading: 0,
            drop_every: None,
            duplicate_every: None,
            to_devices: 0,
            to_server: 0,
            transcript: Vec::new(),
        }
    }

    /// Adds a device that first queries `config.first_query_after` from now.
    pub fn add(&mut self, config: SimDeviceConfig) -> usize {
        self.devices.push(SimDevice::new(config, self.now));
        self.devices.len() - 1
    }

    /// The address the server sees for device `index`.
    pub fn addr(&self, index: usize) -> DeviceAddr {
        let config = self.devices[index].config();
        DeviceAddr {
            nwk: config.nwk.0,
            ieee: Some(config.ieee),
            endpoint: config.endpoint,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn send_to_server(&mut self, index: usize, bytes: Vec<u8>) {
        let addr = self.addr(index);
        let at = self.now + self.latency;
        self.to_server += 1;
        if self
            .duplicate_every
            .is_some_and(|n| self.to_server.is_multiple_of(n))
        {
            let again = at + Duration::from_millis(5);
            self.in_flight
                .push((again, Delivery::ToServer(addr, bytes.clone())));
        }
        self.in_flight.push((at, Delivery::ToServer(addr, bytes)));
    }

    /// Puts what device `index` sent into flight and what it reported into the log.
    fn collect_device(&mut self, index: usize) {
        while let Some(frame) = self.devices[index].poll_transmit() {
            self.send_to_server(index, frame);
        }
        while let Some(event) = self.devices[index].poll_event() {
            self.device_events.push((index, event));
        }
    }

    /// Moves the outputs of the server into flight and the event log.
    fn collect(&mut self) {
        while let Some(out) = self.server.poll_transmit() {
            let at = self.now + self.latency;
            match out.destination {
                Destination::Unicast(addr) => {
                    if let Some(i) = self
                        .devices
                        .iter()
                        .position(|d| d.config().nwk.0 == addr.nwk)
                    {
                        self.in_flight
                            .push((at, Delivery::ToDevice(i, out.zcl_bytes.clone())));
                    }
                }
                Destination::Broadcast(_) => {
                    for i in 0..self.devices.len() {
                        self.in_flight
                            .push((at, Delivery::ToDevice(i, out.zcl_bytes.clone())));
                    }
                }
            }
            self.sent.push((self.now, out));
        }
        while let Some(event) = self.server.poll_event() {
            self.events.push((self.elapsed(), event));
        }
        let downloading = self
            .server
            .progress()
            .iter()
            .filter(|t| t.state == TransferState::Downloading)
            .count();
        self.peak_downloading = self.peak_downloading.max(downloading);
    }

    /// Runs until `done` holds (true) or `limit` of virtual time passes (false).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..5_000_000 {
            self.collect();
            if done(self) {
                return true;
            }
            let mut next = self.server.poll_timeout();
            let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
            for device in &self.devices {
                if let Some(t) = device.poll_timeout() {
                    consider(t);
                }
            }
            for (t, _) in &self.in_flight {
                consider(*t);
            }
            let Some(next) = next else {
                return false;
            };
            if next > self.t0 + limit {
                self.now = self.t0 + limit;
                return false;
            }
            self.now = self.now.max(next);
            let now = self.now;
            // Deliveries due.
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|(t, _)| *t <= now);
            self.in_flight = later;
            for (_, delivery) in due {
                match delivery {
                    Delivery::ToServer(addr, bytes) => {
                        self.transcript.push((now, false, addr.nwk, bytes.clone()));
                        self.server.handle_frame(addr, &bytes, now)
                    }
                    Delivery::ToDevice(i, bytes) => {
                        self.to_devices += 1;
                        if self.devices[i].is_offline(now)
                            || self
                                .drop_every
                                .is_some_and(|n| self.to_devices.is_multiple_of(n))
                        {
                            continue;
                        }
                        let nwk = self.devices[i].config().nwk.0;
                        self.transcript.push((now, true, nwk, bytes.to_vec()));
                        OtaFrame::decode(&bytes).expect("server frames decode");
                        self.devices[i].handle_frame(&bytes, now);
                        self.collect_device(i);
                    }
                }
            }
            // Devices whose own timers are due.
            for i in 0..self.devices.len() {
                if self.devices[i].poll_timeout().is_some_and(|t| t <= now) {
                    self.devices[i].handle_timeout(now);
                    self.collect_device(i);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
        }
        panic!("simulation did not settle");
    }

    pub fn all_upgraded(&self, version: u32) -> bool {
        self.devices.iter().all(|d| d.current_version() == version)
    }

    pub fn count_events(&self, f: impl Fn(&ServerEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }
}

pub fn new_key() -> ImageKey {
    ImageKey {
        manufacturer_code: MFR,
        image_type: IMAGE_TYPE,
        file_version: NEW,
    }
}

const DEV: DeviceAddr = DeviceAddr {
    nwk: 0x1234,
    ieee: Some(Ieee(0x0011_2233_4455_6677)),
    endpoint: 1,
};

fn server_with(config: ServerConfig, images: Vec<Arc<OtaImage>>) -> (OtaServer, Instant) {
    let t0 = start_of_time();
    let mut server = OtaServer::new(config);
    server.set_images(images, t0);
    (server, t0)
}

fn replies(server: &mut OtaServer) -> Vec<Outgoing> {
    std::iter::from_fn(|| server.poll_transmit()).collect()
}

fn only_reply(server: &mut OtaServer) -> OtaFrame {
    let out = replies(server);
    assert_eq!(out.len(), 1, "expected one reply, got {out:?}");
    decode(&out[0])
}

fn block_of(frame: &OtaFrame) -> (u32, Vec<u8>) {
    match &frame.command {
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
            file_offset, data, ..
        }) => (*file_offset, data.to_vec()),
        other => panic!("expected a block, got {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
