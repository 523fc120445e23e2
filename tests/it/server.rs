//! Virtual-clock scenario tests for the OTA server: simulated devices speak ZCL (encoded with
//! the `zcl` module) to the real `OtaServer`; time only moves when the next deadline says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zigbee_otad::server::{
    Destination, DeviceAddr, DeviceKey, ImageKey, NotifyTarget, OtaImage, OtaServer, Outgoing,
    ServerConfig, ServerEvent, TransferState, UpgradeTimePolicy,
};
use zigbee_otad::zcl::ota::{
    ImageBlockRequest, ImageBlockResponse, ImagePageRequest, OtaCommand, OtaFrame,
    QueryNextImageRequest, QueryNextImageResponse, UpgradeEndRequest,
};
use zigbee_otad::zcl::{Direction, FrameType, Ieee, ZclHeader, ZclStatus};

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

fn client_header(tsn: u8, command_id: u8) -> ZclHeader {
    ZclHeader {
        frame_type: FrameType::CLUSTER_SPECIFIC,
        manufacturer_code: None,
        direction: Direction::CLIENT_TO_SERVER,
        disable_default_response: false,
        reserved_bits: 0,
        tsn,
        command_id: command_id.into(),
    }
}

pub fn frame_bytes(tsn: u8, command: OtaCommand) -> Vec<u8> {
    let frame = OtaFrame::new(client_header(tsn, 0), command);
    let mut out = Vec::new();
    frame.encode(&mut out);
    out
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

/// How a simulated device fetches its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Blocks,
    /// Image Page Requests of this size and response spacing (ms).
    Pages {
        page_size: u16,
        spacing_ms: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevState {
    Idle,
    Querying,
    Downloading,
    /// Told to apply at this time.
    Applying(Instant),
    /// Told to wait for the upgrade command.
    AwaitingCommand,
}

/// A simulated OTA client.
#[derive(Debug)]
pub struct Device {
    pub addr: DeviceAddr,
    pub version: u32,
    pub hardware_version: Option<u16>,
    pub max_data_size: u8,
    pub minimum_block_period: Option<u16>,
    pub fetch: Fetch,
    /// Gap between receiving a block and asking for the next (a sleepy device's poll period).
    pub request_delay: Duration,
    pub query_interval: Duration,
    pub state: DevState,
    pub target: Option<(ImageKey, u32)>,
    pub received: Vec<u8>,
    /// The image it applied last.
    pub installed: Vec<u8>,
    pub next_wake: Option<Instant>,
    pub tsn: u8,
    /// Frames to and from the device are lost, and it sleeps, until then.
    pub offline_until: Option<Instant>,
    /// Goes offline for `.1` once it holds at least `.0` bytes.
    pub vanish_at: Option<(usize, Duration)>,
    /// Reports this status instead of SUCCESS in its Upgrade End Request.
    pub end_status: ZclStatus,
    /// Every image block received: (time, offset, len).
    pub blocks: Vec<(Instant, u32, usize)>,
    pub upgrade_times: Vec<u32>,
    pub default_responses: Vec<ZclStatus>,
    pub wait_for_data: Vec<u32>,
    pub block_requests: usize,
    pub page_requests: usize,
    /// The block request not yet answered: resent as is (same TSN) when its answer is lost.
    unanswered: Option<Vec<u8>>,
    pub retries: usize,
    /// Page blocks that arrived after a gap, by offset: the device fills the gap first.
    early: std::collections::BTreeMap<u32, Vec<u8>>,
    page_end: u32,
}

impl Device {
    pub fn new(nwk: u16, ieee: u64) -> Self {
        Device {
            addr: DeviceAddr {
                nwk,
                ieee: Some(Ieee(ieee)),
                endpoint: 1,
            },
            version: OLD,
            hardware_version: None,
            max_data_size: 64,
            minimum_block_period: None,
            fetch: Fetch::Blocks,
            request_delay: Duration::from_millis(20),
            query_interval: Duration::from_secs(300),
            state: DevState::Idle,
            target: None,
            received: Vec::new(),
            installed: Vec::new(),
            next_wake: None,
            tsn: 0,
            offline_until: None,
            vanish_at: None,
            end_status: ZclStatus::SUCCESS,
            blocks: Vec::new(),
            upgrade_times: Vec::new(),
            default_responses: Vec::new(),
            wait_for_data: Vec::new(),
            block_requests: 0,
            page_requests: 0,
            unanswered: None,
            retries: 0,
            early: std::collections::BTreeMap::new(),
            page_end: 0,
        }
    }

    fn next_tsn(&mut self) -> u8 {
        self.tsn = self.tsn.wrapping_add(1);
        self.tsn
    }

    fn offline(&self, now: Instant) -> bool {
        self.offline_until.is_some_and(|until| now < until)
    }

    /// The device's own action when it wakes: the frame it sends, if any.
    fn wake(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.next_wake = None;
        if let Some(until) = self.offline_until {
            if now < until {
                self.next_wake = Some(until);
                return None;
            }
            self.offline_until = None;
        }
        match self.state {
            DevState::Idle | DevState::Querying => {
                self.state = DevState::Querying;
                self.next_wake = Some(now + self.query_interval);
                let tsn = self.next_tsn();
                Some(query(tsn, self.version, self.hardware_version))
            }
            DevState::Downloading => {
                let (file, _) = self.target?;
                if let Some(request) = self.unanswered.clone() {
                    self.retries += 1;
                    self.next_wake = Some(now + Duration::from_secs(2).max(self.request_delay));
                    return Some(request);
                }
                let offset = self.received.len() as u32;
                let tsn = self.next_tsn();
                // Ask again if the answer is lost.
                self.next_wake = Some(now + Duration::from_secs(2).max(self.request_delay));
                match self.fetch {
                    Fetch::Pages {
                        page_size,
                        spacing_ms,
                    } if self.early.is_empty() => {
                        self.page_end = offset + u32::from(page_size);
                        self.page_requests += 1;
                        Some(frame_bytes(
                            tsn,
                            OtaCommand::ImagePageRequest(ImagePageRequest {
                                field_control: 0,
                                manufacturer_code: file.manufacturer_code,
                                image_type: file.image_type,
                                file_version: file.file_version,
                                file_offset: offset,
                                maximum_data_size: self.max_data_size,
                                page_size,
                                response_spacing: spacing_ms,
                                request_node_address: None,
                            }),
                        ))
                    }
                    _ => {
                        self.block_requests += 1;
                        let request = block_request(
                            tsn,
                            file,
                            offset,
                            self.max_data_size,
                            self.minimum_block_period,
                        );
                        self.unanswered = Some(request.clone());
                        Some(request)
                    }
                }
            }
            DevState::Applying(at) if now >= at => {
                if let Some((file, _)) = self.target.take() {
                    self.version = file.file_version;
                }
                self.installed = std::mem::take(&mut self.received);
                self.state = DevState::Querying;
                self.next_wake = Some(now + self.query_interval);
                let tsn = self.next_tsn();
                Some(query(tsn, self.version, self.hardware_version))
            }
            DevState::Applying(at) => {
                self.next_wake = Some(at);
                None
            }
            DevState::AwaitingCommand => None,
        }
    }

    /// Handles a frame from the server; returns a frame to send at once, if any.
    fn receive(&mut self, frame: &OtaFrame, now: Instant) -> Option<Vec<u8>> {
        if matches!(frame.command, OtaCommand::ImageBlockResponse(_))
            && self
                .unanswered
                .as_ref()
                .is_some_and(|r| r[1] == frame.header.tsn)
        {
            self.unanswered = None;
        }
        match &frame.command {
            OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
                manufacturer_code,
                image_type,
                file_version,
                image_size,
            }) if self.state == DevState::Querying => {
                let file = ImageKey {
                    manufacturer_code: *manufacturer_code,
                    image_type: *image_type,
                    file_version: *file_version,
                };
                if self.target.map(|t| t.0) != Some(file) {
                    self.received.clear();
                }
                self.target = Some((file, *image_size));
                self.state = DevState::Downloading;
                self.next_wake = Some(now + self.request_delay);
                None
            }
            OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus { .. }) => {
                self.state = DevState::Idle;
                self.next_wake = Some(now + self.query_interval);
                None
            }
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                file_offset,
                data,
                ..
            }) if self.state == DevState::Downloading => {
                let (file, size) = self.target?;
                self.blocks.push((now, *file_offset, data.len()));
                let offset = *file_offset as usize;
                if offset == self.received.len() {
                    self.received.extend_from_slice(data);
                    // Blocks that arrived early now fit.
                    while let Some(early) = self.early.remove(&(self.received.len() as u32)) {
                        self.received.extend_from_slice(&early);
                    }
                } else if offset > self.received.len() {
                    self.early.insert(*file_offset, data.to_vec());
                }
                if self.received.len() as u32 >= size {
                    self.next_wake = None;
                    let tsn = self.next_tsn();
                    return Some(upgrade_end(tsn, self.end_status, file));
                }
                if let Some((bytes, away)) = self.vanish_at
                    && self.received.len() >= bytes
                {
                    self.vanish_at = None;
                    self.offline_until = Some(now + away);
                    self.next_wake = Some(now + away);
                    return None;
                }
                let page_running = matches!(self.fetch, Fetch::Pages { .. })
                    && (*file_offset + data.len() as u32) < self.page_end.min(size);
                self.next_wake = Some(if page_running {
                    // Wait for the rest of the page; fill gaps if it stalls.
                    now + Duration::from_secs(2)
                } else {
                    now + self.request_delay
                });
                None
            }
            OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData {
                request_time,
                ..
            }) => {
                self.wait_for_data.push(*request_time);
                self.next_wake = Some(now + Duration::from_secs(u64::from(*request_time)));
                None
            }
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Abort) => {
                self.state = DevState::Idle;
                self.next_wake = Some(now + self.query_interval);
                None
            }
            OtaCommand::UpgradeEndResponse(response) => {
                self.upgrade_times.push(response.upgrade_time);
                if response.upgrade_time == u32::MAX {
                    self.state = DevState::AwaitingCommand;
                    self.next_wake = None;
                } else {
                    let at = now + Duration::from_secs(u64::from(response.upgrade_time));
                    self.state = DevState::Applying(at);
                    self.next_wake = Some(at);
                }
                None
            }
            OtaCommand::DefaultResponse(response) => {
                self.default_responses.push(response.status);
                if self.state == DevState::Downloading && self.end_status != ZclStatus::SUCCESS {
                    self.state = DevState::Idle;
                    self.target = None;
                    self.received.clear();
                    self.next_wake = Some(now + self.query_interval);
                }
                None
            }
            OtaCommand::ImageNotify(_) if self.state == DevState::Idle => {
                self.next_wake = Some(now);
                None
            }
            _ => None,
        }
    }
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
    pub devices: Vec<Device>,
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

    pub fn add(&mut self, mut device: Device) -> usize {
        device.next_wake = Some(self.now);
        self.devices.push(device);
        self.devices.len() - 1
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn send_to_server(&mut self, index: usize, bytes: Vec<u8>) {
        let device = &self.devices[index];
        if device.offline(self.now) {
            return;
        }
        let at = self.now + self.latency;
        self.to_server += 1;
        if self
            .duplicate_every
            .is_some_and(|n| self.to_server.is_multiple_of(n))
        {
            let again = at + Duration::from_millis(5);
            self.in_flight
                .push((again, Delivery::ToServer(device.addr, bytes.clone())));
        }
        self.in_flight
            .push((at, Delivery::ToServer(device.addr, bytes)));
    }

    /// Moves the outputs of the server into flight and the event log.
    fn collect(&mut self) {
        while let Some(out) = self.server.poll_transmit() {
            let at = self.now + self.latency;
            match out.destination {
                Destination::Unicast(addr) => {
                    if let Some(i) = self.devices.iter().position(|d| d.addr.nwk == addr.nwk) {
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
                if let Some(t) = device.next_wake {
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
                        if self.devices[i].offline(now)
                            || self
                                .drop_every
                                .is_some_and(|n| self.to_devices.is_multiple_of(n))
                        {
                            continue;
                        }
                        self.transcript
                            .push((now, true, self.devices[i].addr.nwk, bytes.to_vec()));
                        let frame = OtaFrame::decode(&bytes).expect("server frames decode");
                        if let Some(reply) = self.devices[i].receive(&frame, now) {
                            self.send_to_server(i, reply);
                        }
                    }
                }
            }
            // Devices that wake.
            for i in 0..self.devices.len() {
                if self.devices[i].next_wake.is_some_and(|t| t <= now)
                    && let Some(frame) = self.devices[i].wake(now)
                {
                    self.send_to_server(i, frame);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
        }
        panic!("simulation did not settle");
    }

    pub fn all_upgraded(&self, version: u32) -> bool {
        self.devices.iter().all(|d| d.version == version)
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

#[test]
fn whole_upgrade_is_byte_exact_and_confirmed() {
    let img = image(NEW, 10_000, 1);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let d = sim.add(Device::new(0x1001, 0xAA01));
    assert!(sim.run_until(Duration::from_secs(3600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 1
    }));
    let device = &sim.devices[d];
    assert_eq!(device.version, NEW);
    assert_same_bytes(&device.installed, &img.read_all().unwrap());
    // Every block was 50 bytes (the default cap; the device accepts 64) but the last.
    assert!(device.blocks.iter().all(|(_, _, len)| *len <= 50));
    assert_eq!(device.blocks.len(), 10_000usize.div_ceil(50));
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
        sim.add(Device::new(0x2000 + i, 0xBB00 + u64::from(i)));
    }
    assert!(sim.run_until(Duration::from_secs(6 * 3600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 10
    }));
    assert_eq!(sim.peak_downloading, 3);
    for device in &sim.devices {
        assert_same_bytes(&device.installed, &img.read_all().unwrap());
    }
    let waited = sim
        .devices
        .iter()
        .filter(|d| !d.wait_for_data.is_empty())
        .count();
    assert!(waited >= 7, "{waited} devices were told to wait");
    // Every WAIT_FOR_DATA carried a sensible request time, never 0.
    assert!(
        sim.devices
            .iter()
            .flat_map(|d| &d.wait_for_data)
            .all(|t| (10..=600).contains(t))
    );
}

#[test]
fn vanished_device_resumes_an_hour_later_at_its_old_offset() {
    let img = image(NEW, 8_000, 3);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = Device::new(0x3001, 0xCC01);
    device.vanish_at = Some((3_000, Duration::from_secs(3600)));
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(3 * 3600), |s| s.all_upgraded(NEW)));
    let device = &sim.devices[d];
    assert_same_bytes(&device.installed, &img.read_all().unwrap());
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
        .blocks
        .iter()
        .filter(|(t, offset, _)| *t > sim.t0 + Duration::from_secs(3600) && *offset < 3_000)
        .count();
    assert_eq!(resent, 0);
}

#[test]
fn sleepy_device_polling_every_seven_seconds_finishes() {
    let img = image(NEW, 1_000, 4);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = Device::new(0x4001, 0xDD01);
    device.request_delay = Duration::from_secs(7);
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(3600), |s| s.all_upgraded(NEW)));
    assert_same_bytes(&sim.devices[d].installed, &img.read_all().unwrap());
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
    let d = sim.add(Device::new(0x4101, 0xDD11));
    assert!(sim.run_until(Duration::from_secs(3600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 1
    }));
    let device = &sim.devices[d];
    assert_same_bytes(&device.installed, &img.read_all().unwrap());
    assert!(device.retries > 5, "{} retries", device.retries);
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
    let mut device = Device::new(0x5001, 0xEE01);
    device.fetch = Fetch::Pages {
        page_size: 500,
        spacing_ms: 100,
    };
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(3600), |s| s.all_upgraded(NEW)));
    let device = &sim.devices[d];
    assert_same_bytes(&device.installed, &img.read_all().unwrap());
    // Blocks within a page arrive at least 100 ms apart.
    for pair in device.blocks.windows(2) {
        let same_page = pair[0].1 / 500 == pair[1].1 / 500;
        let gap = pair[1].0 - pair[0].0;
        assert!(
            !same_page || gap >= Duration::from_millis(100),
            "blocks {gap:?} apart"
        );
    }
    assert_eq!(device.blocks.len(), 2_000usize.div_ceil(50));
}

#[test]
fn lost_page_block_is_fetched_with_a_block_request() {
    let img = image(NEW, 1_000, 6);
    let mut sim = Sim::new(ServerConfig::default(), vec![img.clone()]);
    let mut device = Device::new(0x5101, 0xEE11);
    device.fetch = Fetch::Pages {
        page_size: 1_000,
        spacing_ms: 50,
    };
    let d = sim.add(device);
    // Run until the third page block has been sent, then lose it in the air.
    assert!(sim.run_until(Duration::from_secs(60), |s| s.devices[0].blocks.len() == 2));
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
    assert_same_bytes(&sim.devices[d].installed, &img.read_all().unwrap());
    // The page ran on after the loss; the device then asked for the missing block alone.
    assert_eq!(sim.devices[d].block_requests, 1);
    assert_eq!(sim.devices[d].page_requests, 1);
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
    let d = sim.add(Device::new(0x6001, 0xF001));
    assert!(sim.run_until(Duration::from_secs(600), |s| {
        !s.devices[0].upgrade_times.is_empty()
    }));
    (sim, d)
}

#[test]
fn upgrade_time_immediately() {
    let (mut sim, d) = upgrade_time_under(UpgradeTimePolicy::Immediately, None);
    assert_eq!(sim.devices[d].upgrade_times, vec![0]);
    assert!(sim.run_until(Duration::from_secs(600), |s| s.all_upgraded(NEW)));
}

#[test]
fn upgrade_time_after_a_delay() {
    let (mut sim, d) = upgrade_time_under(
        UpgradeTimePolicy::AfterDelay(Duration::from_secs(120)),
        None,
    );
    assert_eq!(sim.devices[d].upgrade_times, vec![120]);
    let told = sim.now;
    assert!(sim.run_until(Duration::from_secs(600), |s| s.all_upgraded(NEW)));
    assert!(sim.now - told >= Duration::from_secs(120));
}

#[test]
fn upgrade_time_waits_for_the_command() {
    let (mut sim, d) = upgrade_time_under(UpgradeTimePolicy::WaitForCommand, None);
    assert_eq!(sim.devices[d].upgrade_times, vec![u32::MAX]);
    assert!(!sim.run_until(Duration::from_secs(1200), |s| s.all_upgraded(NEW)));
    let key = DeviceKey::Ieee(Ieee(0xF001));
    let now = sim.now;
    assert!(sim.server.upgrade_now(key, now));
    assert!(!sim.server.upgrade_now(key, now), "only once");
    assert!(sim.run_until(Duration::from_secs(1800), |s| s.all_upgraded(NEW)));
    assert_eq!(sim.devices[d].upgrade_times, vec![u32::MAX, 0]);
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
    let told = sim.devices[d].upgrade_times[0];
    let elapsed = sim.elapsed().as_secs() as u32;
    assert_eq!(told, 2 * 3600 - elapsed);
    // Inside the window: now.
    let (sim, d) = upgrade_time_under(window.clone(), Some(one_am + 2 * 3600 + 60));
    assert_eq!(sim.devices[d].upgrade_times, vec![0]);
    // Without a wall clock the device waits for the command.
    let (sim, d) = upgrade_time_under(window, None);
    assert_eq!(sim.devices[d].upgrade_times, vec![u32::MAX]);
}

#[test]
fn catalog_refresh_mid_transfer_keeps_the_offered_bytes() {
    let original = image(NEW, 6_000, 8);
    let mut sim = Sim::new(ServerConfig::default(), vec![original.clone()]);
    let d = sim.add(Device::new(0x7001, 0x7701));
    assert!(
        sim.run_until(Duration::from_secs(600), |s| s.devices[0].received.len()
            >= 2_000)
    );
    // The same version with other bytes, and a newer version, replace the catalog.
    let replacement = image(NEW, 6_000, 99);
    let newer = image(NEW + 1, 7_000, 100);
    let now = sim.now;
    sim.server.set_images(vec![replacement, newer], now);
    assert!(sim.run_until(Duration::from_secs(3600), |s| s.devices[0].version == NEW));
    assert_same_bytes(&sim.devices[d].installed, &original.read_all().unwrap());
    // The next query is offered the newer image.
    assert!(
        sim.run_until(Duration::from_secs(7200), |s| s.devices[0].version
            == NEW + 1)
    );
}

#[test]
fn failed_upgrade_end_gets_a_default_response_and_is_recorded() {
    let img = image(NEW, 300, 9);
    let mut sim = Sim::new(ServerConfig::default(), vec![img]);
    let mut device = Device::new(0x8001, 0x8801);
    device.end_status = ZclStatus::INVALID_IMAGE;
    let d = sim.add(device);
    assert!(sim.run_until(Duration::from_secs(600), |s| {
        !s.devices[0].default_responses.is_empty()
    }));
    assert_eq!(sim.devices[d].default_responses, vec![ZclStatus::SUCCESS]);
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
    sim.add(Device::new(0x9001, 0x9901));
    // The device queries, hears NO_IMAGE_AVAILABLE and goes idle for 5 minutes.
    assert!(
        sim.run_until(Duration::from_secs(10), |s| !s.sent.is_empty()
            && s.devices[0].state == DevState::Idle)
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
        sim.add(Device::new(0xA000 + i, 0xA000 + u64::from(i)));
    }
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.sent.len() == 60
            && s.devices.iter().all(|d| d.state == DevState::Idle))
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
    let addr = sim.devices[0].addr;
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

#[test]
fn query_without_image_is_answered_no_image_available_every_time() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    for tsn in 0..3 {
        server.handle_frame(
            DEV,
            &query(tsn, OLD, None),
            t0 + Duration::from_secs(u64::from(tsn)),
        );
        let reply = only_reply(&mut server);
        assert_eq!(reply.header.tsn, tsn);
        assert_eq!(reply.header.direction, Direction::SERVER_TO_CLIENT);
        assert_eq!(
            reply.command,
            OtaCommand::QueryNextImageResponse(QueryNextImageResponse::OtherStatus {
                status: ZclStatus::NO_IMAGE_AVAILABLE
            })
        );
    }
}

#[test]
fn retry_with_the_same_tsn_gets_identical_bytes_and_is_not_counted_twice() {
    let img = image(NEW, 1_000, 20);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img.clone()]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    let request = block_request(2, new_key(), 100, 50, None);
    server.handle_frame(DEV, &request, t0);
    let first = replies(&mut server);
    server.handle_frame(DEV, &request, t0 + Duration::from_millis(500));
    let again = replies(&mut server);
    assert_eq!(first.len(), 1);
    assert_eq!(again.len(), 1);
    assert_eq!(first[0].zcl_bytes, again[0].zcl_bytes);
    let progress = server.progress();
    assert_eq!(progress[0].offset, 150);
    let started = std::iter::from_fn(|| server.poll_event())
        .filter(|e| matches!(e, ServerEvent::TransferStarted { .. }))
        .count();
    assert_eq!(started, 1);
}

#[test]
fn retry_of_a_request_still_waiting_for_its_turn_is_answered_once() {
    let img = image(NEW, 1_000, 21);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img.clone()]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    // The device asks for 1 s between blocks (MinimumBlockPeriod 1000 ms).
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, Some(1000)), t0);
    assert_eq!(replies(&mut server).len(), 1);
    let early = block_request(3, new_key(), 50, 50, Some(1000));
    let t = t0 + Duration::from_millis(100);
    server.handle_frame(DEV, &early, t);
    server.handle_frame(DEV, &early, t + Duration::from_millis(50));
    assert!(
        replies(&mut server).is_empty(),
        "held until the period has passed"
    );
    assert_eq!(server.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    server.handle_timeout(t0 + Duration::from_secs(1));
    let out = replies(&mut server);
    assert_eq!(out.len(), 1);
    assert_eq!(
        block_of(&decode(&out[0])),
        (50, img.read_all().unwrap()[50..100].to_vec())
    );
}

#[test]
fn reordered_requests_are_each_served_from_the_exact_bytes() {
    let img = image(NEW, 1_000, 22);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img.clone()]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    for (tsn, offset) in [(2u8, 300u32), (3, 100), (4, 999), (5, 0)] {
        server.handle_frame(DEV, &block_request(tsn, new_key(), offset, 50, None), t0);
        let reply = only_reply(&mut server);
        assert_eq!(reply.header.tsn, tsn);
        let (got_offset, data) = block_of(&reply);
        let start = offset as usize;
        let end = (start + 50).min(1_000);
        assert_eq!(got_offset, offset);
        assert_eq!(data, img.read_all().unwrap()[start..end]);
    }
}

#[test]
fn wrong_file_gets_abort_and_offset_past_the_end_malformed() {
    let img = image(NEW, 1_000, 23);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    let other = ImageKey {
        file_version: NEW + 7,
        ..new_key()
    };
    server.handle_frame(DEV, &block_request(2, other, 0, 50, None), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Abort)
    );
    server.handle_frame(DEV, &block_request(3, new_key(), 1_000, 50, None), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::OtherStatus {
            status: ZclStatus::MALFORMED_COMMAND
        })
    );
}

#[test]
fn block_size_is_the_smallest_of_device_cap_manufacturer_and_coordinator() {
    let img = image(NEW, 1_000, 24);
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    replies(&mut server);
    let size_for = |server: &mut OtaServer, tsn: u8, max: u8| {
        server.handle_frame(DEV, &block_request(tsn, new_key(), 0, max, None), t0);
        block_of(&only_reply(server)).1.len()
    };
    assert_eq!(size_for(&mut server, 2, 64), 50, "the configured cap");
    assert_eq!(size_for(&mut server, 3, 48), 48, "the device's maximum");
    server.set_max_aps_payload(60);
    // 60 − 3 (ZCL header) − 14 (block response fields) − 9 (APS encryption) − 6 (route).
    assert_eq!(
        size_for(&mut server, 4, 64),
        28,
        "what fits the coordinator's APS frame"
    );
}

#[test]
fn manufacturer_caps_apply_to_the_device_manufacturer() {
    let insta = 0x117A;
    let key = ImageKey {
        manufacturer_code: insta,
        image_type: IMAGE_TYPE,
        file_version: NEW,
    };
    let img = OtaImage::new(key, Bytes::from(pattern(500, 25)))
        .unwrap()
        .shared();
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    let q = frame_bytes(
        1,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: insta,
            image_type: IMAGE_TYPE,
            current_file_version: OLD,
            hardware_version: None,
        }),
    );
    server.handle_frame(DEV, &q, t0);
    replies(&mut server);
    server.handle_frame(DEV, &block_request(2, key, 0, 64, None), t0);
    assert_eq!(block_of(&only_reply(&mut server)).1.len(), 40);
}

#[test]
fn legrand_gets_the_64_byte_blocks_it_asks_for() {
    let legrand = 0x1021;
    let key = ImageKey {
        manufacturer_code: legrand,
        image_type: 0x0011,
        file_version: NEW,
    };
    let img = OtaImage::new(key, Bytes::from(pattern(500, 30)))
        .unwrap()
        .shared();
    let (mut server, t0) = server_with(ServerConfig::default(), vec![img]);
    let q = frame_bytes(
        1,
        OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: legrand,
            image_type: 0x0011,
            current_file_version: OLD,
            hardware_version: None,
        }),
    );
    server.handle_frame(DEV, &q, t0);
    replies(&mut server);
    server.handle_frame(DEV, &block_request(2, key, 0, 64, None), t0);
    let out = replies(&mut server);
    assert_eq!(block_of(&decode(&out[0])).1.len(), 64);
    // 3 + 14 + 64 = 81 bytes: inside EZSP's 82.
    assert_eq!(out[0].zcl_bytes.len(), 81);
    // A coordinator with less room still bounds it.
    server.set_max_aps_payload(70);
    server.handle_frame(DEV, &block_request(3, key, 0, 64, None), t0);
    assert_eq!(block_of(&only_reply(&mut server)).1.len(), 70 - 3 - 14);
}

#[test]
fn unknown_and_malformed_requests_get_the_right_default_response() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    // Cluster-specific client-to-server command 0x0A: not an OTA command.
    let mut unknown = vec![0x11, 0x42, 0x0A, 0x00];
    server.handle_frame(DEV, &unknown, t0);
    let reply = only_reply(&mut server);
    assert_eq!(reply.header.tsn, 0x42);
    assert_eq!(reply.header.frame_type, FrameType::GLOBAL);
    let OtaCommand::DefaultResponse(response) = reply.command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.command_id.0, 0x0A);
    // An error is reported even when the request disabled default responses (bit 4 set above).
    assert_eq!(response.status, ZclStatus::UNSUP_COMMAND);
    // A truncated Image Block Request.
    unknown = vec![0x01, 0x43, 0x03, 0x00, 0x89, 0x11];
    server.handle_frame(DEV, &unknown, t0);
    let OtaCommand::DefaultResponse(response) = only_reply(&mut server).command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.status, ZclStatus::MALFORMED_COMMAND);
    // A Default Response from the device gets nothing back; nor does half a header.
    server.handle_frame(DEV, &[0x18, 0x44, 0x0B, 0x05, 0x00], t0);
    server.handle_frame(DEV, &[0x01], t0);
    assert!(replies(&mut server).is_empty());
}

#[test]
fn failed_upgrade_end_honours_disable_default_response() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![image(NEW, 100, 26)]);
    let mut request = upgrade_end(5, ZclStatus::ABORT, new_key());
    request[0] |= 0x10;
    server.handle_frame(DEV, &request, t0);
    assert!(replies(&mut server).is_empty());
    let request = upgrade_end(6, ZclStatus::REQUIRE_MORE_IMAGE, new_key());
    server.handle_frame(DEV, &request, t0);
    let OtaCommand::DefaultResponse(response) = only_reply(&mut server).command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.status, ZclStatus::SUCCESS);
    assert_eq!(response.command_id.0, 0x06);
}

#[test]
fn upgrade_end_for_an_image_we_do_not_hold_is_aborted() {
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    server.handle_frame(DEV, &upgrade_end(7, ZclStatus::SUCCESS, new_key()), t0);
    let OtaCommand::DefaultResponse(response) = only_reply(&mut server).command else {
        panic!("expected a Default Response")
    };
    assert_eq!(response.status, ZclStatus::ABORT);
}

#[test]
fn device_specific_file_is_served_only_to_its_device() {
    use zigbee_otad::zcl::ota::QueryDeviceSpecificFileResponse;
    let (key, config_file) = device_specific_file(DEV.ieee.unwrap());
    let (mut server, t0) = server_with(ServerConfig::default(), vec![config_file.clone()]);
    let ask = |requester: u64| device_specific_query(Ieee(requester));
    server.handle_frame(DEV, &ask(0x0011_2233_4455_6677), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::Success {
            manufacturer_code: MFR,
            image_type: 0xFFC1,
            file_version: 3,
            image_size: 200
        })
    );
    // The file is then downloaded with ordinary block requests.
    server.handle_frame(DEV, &block_request(10, key, 0, 50, None), t0);
    assert_eq!(
        block_of(&only_reply(&mut server)).1,
        config_file.read_all().unwrap()[..50]
    );
    let other = DeviceAddr {
        nwk: 0x4321,
        ieee: Some(Ieee(0x99)),
        endpoint: 1,
    };
    server.handle_frame(other, &ask(0x99), t0);
    assert_eq!(
        only_reply(&mut server).command,
        OtaCommand::QueryDeviceSpecificFileResponse(QueryDeviceSpecificFileResponse::OtherStatus {
            status: ZclStatus::NO_IMAGE_AVAILABLE
        })
    );
}

#[test]
fn idle_transfer_ends_and_frees_its_slot() {
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let (mut server, t0) = server_with(config, vec![image(NEW, 1_000, 28)]);
    server.handle_frame(DEV, &query(1, OLD, None), t0);
    server.handle_frame(DEV, &block_request(2, new_key(), 0, 50, None), t0);
    replies(&mut server);
    let second = DeviceAddr {
        nwk: 0x5555,
        ieee: Some(Ieee(0x55)),
        endpoint: 1,
    };
    server.handle_frame(second, &query(1, OLD, None), t0);
    server.handle_frame(second, &block_request(2, new_key(), 0, 50, None), t0);
    let out = replies(&mut server);
    assert!(matches!(
        decode(&out[1]).command,
        OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData {
            current_time: 0,
            ..
        })
    ));
    // The first device goes silent; after the idle timeout its slot is free.
    let deadline = t0 + Duration::from_secs(300);
    while let Some(t) = server.poll_timeout().filter(|t| *t <= deadline) {
        server.handle_timeout(t);
    }
    assert_eq!(server.history().count(), 1);
    let failed: Vec<_> = server.history().map(|t| t.state).collect();
    assert_eq!(failed, vec![TransferState::Failed]);
    server.handle_frame(second, &block_request(3, new_key(), 0, 50, None), deadline);
    assert_eq!(block_of(&only_reply(&mut server)).0, 0);
}

// ---------------------------------------------------------------------------------------------
// Real images and real frames from ../shared/testdata.

fn corpus_image(dir: &std::path::Path, name: &str) -> Option<zigbee_otad::ota::OtaFile> {
    let bytes = std::fs::read(dir.join("ota-corpus/images").join(name)).ok()?;
    zigbee_otad::ota::OtaFile::parse(bytes).ok()
}

fn captured_frame(dir: &std::path::Path, id: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(dir.join("frames/zcl-ota-frames.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let frames = json["frames"].as_array().unwrap();
    let frame = frames.iter().find(|f| f["id"] == id).unwrap();
    unhex(frame["hex"].as_str().unwrap())
}

/// zigbee-herdsman's answers to a ubisys S1, captured on the air, are what this server sends
/// for the same requests: the two ubisys files share manufacturer, type and version and are
/// told apart by the hardware version.
#[test]
fn ubisys_frames_match_a_real_capture_byte_for_byte() {
    let Some(dir) = crate::common::shared_testdata() else {
        return;
    };
    let files = [
        "10F2-7B32-0000-0001-02600460-spo-fms-rev0-1.ota.zigbee",
        "10F2-7B32-0002-0007-02600460-spo-fms.ota.zigbee",
    ];
    let images: Vec<_> = files
        .iter()
        .map(|name| {
            let file = corpus_image(&dir, name).expect("ubisys images parse");
            OtaImage::from_file(&file).unwrap().shared()
        })
        .collect();
    assert_eq!(images[0].key(), images[1].key());
    assert_ne!(images[0].read_all().unwrap(), images[1].read_all().unwrap());
    let (mut server, t0) = server_with(ServerConfig::default(), images.clone());
    let ubisys = ImageKey {
        manufacturer_code: 0x10F2,
        image_type: 0x7B32,
        file_version: 0x0260_0460,
    };
    for (hardware_version, image) in [(1u16, &images[0]), (2, &images[1])] {
        let device = DeviceAddr {
            nwk: 0x7000 + hardware_version,
            ieee: Some(Ieee(0x001F_EE00_0000_0000 + u64::from(hardware_version))),
            endpoint: 1,
        };
        let q = frame_bytes(
            0x18,
            OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
                field_control: 1,
                manufacturer_code: 0x10F2,
                image_type: 0x7B32,
                current_file_version: 0x0250_0000,
                hardware_version: Some(hardware_version),
            }),
        );
        server.handle_frame(device, &q, t0);
        let out = replies(&mut server);
        assert_eq!(
            out[0].zcl_bytes.as_ref(),
            captured_frame(&dir, "qni-rsp-ubisys-s1")
        );
        server.handle_frame(device, &block_request(0x19, ubisys, 0, 50, None), t0);
        let out = replies(&mut server);
        assert_eq!(
            out[0].zcl_bytes.as_ref(),
            captured_frame(&dir, "block-rsp-ubisys-first-block")
        );
        server.handle_frame(device, &block_request(0x1A, ubisys, 50, 6, None), t0);
        let out = replies(&mut server);
        assert_eq!(
            out[0].zcl_bytes.as_ref(),
            captured_frame(&dir, "block-rsp-ubisys-6-bytes")
        );
        // Past the shared header the two files differ: each device gets its own.
        let (first, second) = (images[0].read_all().unwrap(), images[1].read_all().unwrap());
        let offset = first
            .iter()
            .zip(second.iter())
            .position(|(a, b)| a != b)
            .unwrap() as u32;
        server.handle_frame(device, &block_request(0x1B, ubisys, offset, 50, None), t0);
        let (got, data) = block_of(&only_reply(&mut server));
        assert_eq!(got, offset);
        let start = offset as usize;
        assert_eq!(data, image.read_all().unwrap()[start..start + data.len()]);
    }
}

#[test]
fn image_notify_matches_captured_frames() {
    let Some(dir) = crate::common::shared_testdata() else {
        return;
    };
    let (mut server, t0) = server_with(ServerConfig::default(), vec![]);
    let captured = captured_frame(&dir, "image-notify-tuya-z2m");
    // Our TSNs count from 0; the capture's is 3.
    for _ in 0..=3 {
        assert!(server.notify(NotifyTarget::Device(DEV), t0));
    }
    let out = replies(&mut server);
    assert_eq!(out[3].zcl_bytes.as_ref(), captured);
}

/// Every corpus file the `ota` module accepts is served whole, byte for byte, from its magic
/// for `image_size` bytes, by a device walking it block by block.
#[test]
fn every_corpus_image_is_served_byte_exact() {
    let Some(dir) = crate::common::shared_testdata() else {
        return;
    };
    let mut served = 0;
    let mut names: Vec<_> = std::fs::read_dir(dir.join("ota-corpus/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let Some(file) = corpus_image(&dir, &name) else {
            continue;
        };
        let image = OtaImage::from_file(&file).unwrap().shared();
        let key = image.key();
        let (mut server, t0) = server_with(
            ServerConfig {
                allow_downgrade: true,
                allow_reinstall: true,
                ..ServerConfig::default()
            },
            vec![image.clone()],
        );
        let device = DeviceAddr {
            ieee: image.destination().or(DEV.ieee),
            ..DEV
        };
        let q = frame_bytes(
            1,
            OtaCommand::QueryNextImageRequest(QueryNextImageRequest {
                field_control: 1,
                manufacturer_code: key.manufacturer_code,
                image_type: key.image_type,
                current_file_version: 0,
                hardware_version: image.hardware_versions().map(|(min, _)| min),
            }),
        );
        server.handle_frame(device, &q, t0);
        let offer = only_reply(&mut server);
        assert!(
            matches!(offer.command, OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success { image_size, .. }) if image_size as usize == file.image_bytes().len()),
            "{name}: {offer:?}"
        );
        let mut received = Vec::with_capacity(file.image_bytes().len());
        let mut tsn = 2u8;
        while received.len() < file.image_bytes().len() {
            let request = block_request(tsn, key, received.len() as u32, 64, None);
            server.handle_frame(device, &request, t0);
            let (offset, data) = block_of(&only_reply(&mut server));
            assert_eq!(offset as usize, received.len());
            received.extend_from_slice(&data);
            tsn = tsn.wrapping_add(1);
        }
        assert_same_bytes(&received, file.image_bytes());
        served += 1;
    }
    eprintln!("served {served} corpus images byte-exact");
    assert!(served >= 30, "only {served} corpus images parsed");
}

// ---------------------------------------------------------------------------------------------
// zigpy's encoding of the same exchanges (tests/vectors/server, generated by
// gen_server_vectors.py with zigpy).

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn responses_match_zigpy_encoding_byte_for_byte() {
    let path = crate::common::vectors_dir().join("server/server_vectors.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let image_a = OtaImage::new(
        new_key(),
        Bytes::from(unhex(json["image_a"].as_str().unwrap())),
    )
    .unwrap()
    .shared();
    let specific = ImageKey {
        manufacturer_code: MFR,
        image_type: 0xFFC0,
        file_version: 5,
    };
    let image_b = OtaImage::new(
        specific,
        Bytes::from(unhex(json["image_b"].as_str().unwrap())),
    )
    .unwrap()
    .with_destination(DEV.ieee.unwrap())
    .shared();
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let (mut server, t0) = server_with(config, vec![image_a, image_b]);
    let second = DeviceAddr {
        nwk: 0x9999,
        ieee: Some(Ieee(0x99)),
        endpoint: 1,
    };
    let exchanges = json["exchanges"].as_array().unwrap();
    assert!(exchanges.len() >= 13);
    for exchange in exchanges {
        let name = exchange["name"].as_str().unwrap();
        let device = if exchange["device"] == "second" {
            second
        } else {
            DEV
        };
        server.handle_frame(device, &unhex(exchange["request"].as_str().unwrap()), t0);
        let out = replies(&mut server);
        assert_eq!(out.len(), 1, "{name}: {out:?}");
        assert_eq!(
            hex(&out[0].zcl_bytes),
            exchange["response"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(out[0].destination, Destination::Unicast(device), "{name}");
    }
    assert!(server.notify(NotifyTarget::Device(DEV), t0));
    let out = replies(&mut server);
    assert_eq!(
        hex(&out[0].zcl_bytes),
        json["image_notify_unicast_tsn0"].as_str().unwrap()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Property: whatever a device asks, and whenever, no Image Block Response carries a byte that
// is not at its offset in the image the device was offered, no block exceeds what the device
// accepts, and no frame exceeds the coordinator's payload.

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Block {
            offset: u32,
            period: Option<u16>,
        },
        Page {
            offset: u32,
            page_size: u16,
            spacing_ms: u16,
        },
        Retry,
        Wait(u64),
        ReplaceCatalog,
        UpgradeEnd(bool),
    }

    fn op(image_len: u32) -> impl Strategy<Value = Op> {
        let offset = 0..image_len + 100;
        prop_oneof![
            4 => (offset.clone(), proptest::option::of(0u16..2000))
                .prop_map(|(offset, period)| Op::Block { offset, period }),
            1 => (offset, 0u16..600, 0u16..300).prop_map(|(offset, page_size, spacing_ms)| Op::Page {
                offset,
                page_size,
                spacing_ms
            }),
            1 => Just(Op::Retry),
            2 => (0u64..400_000).prop_map(Op::Wait),
            1 => Just(Op::ReplaceCatalog),
            1 => any::<bool>().prop_map(Op::UpgradeEnd),
        ]
    }

    fn case() -> impl Strategy<Value = (u32, u8, u8, Vec<Op>)> {
        // 19 bytes: the longest fixed-size response (Upgrade End Response) must fit.
        (1u32..3_000, 0u8..=255, 19u8..=127).prop_flat_map(|(len, max, aps)| {
            (
                Just(len),
                Just(max),
                Just(aps),
                proptest::collection::vec(op(len), 1..60),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn blocks_stay_inside_the_offered_image_and_the_limits(
            (len, device_max, max_aps_payload, ops) in case()
        ) {
            let offered = OtaImage::new(new_key(), Bytes::from(pattern(len as usize, 7)))
                .unwrap()
                .shared();
            let (mut server, t0) = server_with(ServerConfig::default(), vec![offered.clone()]);
            server.set_max_aps_payload(max_aps_payload);
            let mut now = t0;
            server.handle_frame(DEV, &query(0, OLD, None), now);
            let mut last: Option<Vec<u8>> = None;
            let mut tsn = 1u8;
            for op in ops {
                let request = match op {
                    Op::Block { offset, period } => {
                        Some(block_request(tsn, new_key(), offset, device_max, period))
                    }
                    Op::Page { offset, page_size, spacing_ms } => Some(frame_bytes(
                        tsn,
                        OtaCommand::ImagePageRequest(ImagePageRequest {
                            field_control: 0,
                            manufacturer_code: MFR,
                            image_type: IMAGE_TYPE,
                            file_version: NEW,
                            file_offset: offset,
                            maximum_data_size: device_max,
                            page_size,
                            response_spacing: spacing_ms,
                            request_node_address: None,
                        }),
                    )),
                    Op::Retry => last.clone(),
                    Op::Wait(ms) => {
                        now += Duration::from_millis(ms);
                        while let Some(t) = server.poll_timeout().filter(|t| *t <= now) {
                            server.handle_timeout(t);
                            check(&mut server, &offered, device_max, max_aps_payload)?;
                        }
                        server.handle_timeout(now);
                        None
                    }
                    Op::ReplaceCatalog => {
                        let other = OtaImage::new(new_key(), Bytes::from(pattern(len as usize, 8)))
                            .unwrap()
                            .shared();
                        server.set_images(vec![other], now);
                        None
                    }
                    Op::UpgradeEnd(success) => Some(upgrade_end(
                        tsn,
                        if success { ZclStatus::SUCCESS } else { ZclStatus::ABORT },
                        new_key(),
                    )),
                };
                if let Some(request) = request {
                    server.handle_frame(DEV, &request, now);
                    last = Some(request);
                    tsn = tsn.wrapping_add(1);
                }
                check(&mut server, &offered, device_max, max_aps_payload)?;
            }
        }
    }

    fn check(
        server: &mut OtaServer,
        offered: &OtaImage,
        device_max: u8,
        max_aps_payload: u8,
    ) -> Result<(), TestCaseError> {
        while let Some(out) = server.poll_transmit() {
            prop_assert!(out.zcl_bytes.len() <= usize::from(max_aps_payload));
            let frame = decode(&out);
            if let OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                file_version,
                file_offset,
                data,
                ..
            }) = &frame.command
            {
                prop_assert_eq!(*file_version, NEW);
                prop_assert!(!data.is_empty());
                prop_assert!(data.len() <= usize::from(device_max));
                let start = *file_offset as usize;
                let end = start + data.len();
                prop_assert!(end <= offered.read_all().unwrap().len());
                prop_assert_eq!(&data[..], &offered.read_all().unwrap()[start..end]);
            }
        }
        Ok(())
    }
}

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

// ---------------------------------------------------------------------------------------------
// A transcript of one whole session, kept as a reviewed file: any change in what goes over the
// air shows up as a diff. Regenerate with UPDATE_TRANSCRIPTS=1 after checking the change.

fn label(bytes: &[u8]) -> String {
    let Ok(frame) = OtaFrame::decode(bytes) else {
        return "undecodable".into();
    };
    match &frame.command {
        OtaCommand::QueryNextImageRequest(q) => {
            format!(
                "QueryNextImageRequest version={:#010x}",
                q.current_file_version
            )
        }
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
            file_version,
            image_size,
            ..
        }) => {
            format!("QueryNextImageResponse SUCCESS version={file_version:#010x} size={image_size}")
        }
        OtaCommand::QueryNextImageResponse(r) => format!("QueryNextImageResponse {:?}", r.status()),
        OtaCommand::ImageBlockRequest(b) => format!(
            "ImageBlockRequest offset={} max={}",
            b.file_offset, b.maximum_data_size
        ),
        OtaCommand::ImagePageRequest(p) => format!(
            "ImagePageRequest offset={} page={} spacing={}ms",
            p.file_offset, p.page_size, p.response_spacing
        ),
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
            file_offset, data, ..
        }) => format!(
            "ImageBlockResponse SUCCESS offset={file_offset} len={}",
            data.len()
        ),
        OtaCommand::ImageBlockResponse(r) => format!("ImageBlockResponse {:?}", r.status()),
        OtaCommand::UpgradeEndRequest(u) => format!("UpgradeEndRequest {:?}", u.status),
        OtaCommand::UpgradeEndResponse(u) => format!(
            "UpgradeEndResponse current_time={} upgrade_time={}",
            u.current_time, u.upgrade_time
        ),
        OtaCommand::ImageNotify(n) => format!("ImageNotify jitter={}", n.query_jitter),
        OtaCommand::DefaultResponse(d) => format!("DefaultResponse {:?}", d.status),
        other => format!("{other:?}"),
    }
}

fn render(sim: &Sim) -> String {
    sim.transcript
        .iter()
        .map(|(t, from_server, nwk, bytes)| {
            let arrow = if *from_server {
                "server -> "
            } else {
                "server <- "
            };
            format!(
                "{:>9.3}s {arrow}0x{nwk:04x}  {}\n           {}\n",
                (*t - sim.t0).as_secs_f64(),
                label(bytes),
                hex(bytes)
            )
        })
        .collect()
}

fn check_transcript(name: &str, got: &str) {
    let path = crate::common::vectors_dir().join("server").join(name);
    if std::env::var_os("UPDATE_TRANSCRIPTS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "transcript {name} differs from line {}:\n{}",
            line + 1,
            got.lines()
                .skip(line)
                .take(6)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn transcript_of_a_small_upgrade_with_a_page_and_a_busy_server() {
    let img = image(NEW, 180, 40);
    let config = ServerConfig {
        max_concurrent_transfers: 1,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(config, vec![img]);
    let mut first = Device::new(0x1001, 0xAA01);
    first.fetch = Fetch::Pages {
        page_size: 100,
        spacing_ms: 50,
    };
    sim.add(first);
    let mut second = Device::new(0x1002, 0xAA02);
    second.request_delay = Duration::from_millis(100);
    sim.add(second);
    assert!(sim.run_until(Duration::from_secs(600), |s| {
        s.count_events(|e| matches!(e, ServerEvent::UpgradeConfirmed { .. })) == 2
    }));
    check_transcript("transcript-small-upgrade.txt", &render(&sim));
}
