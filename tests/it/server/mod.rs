//! Virtual-clock scenario tests for the OTA server: simulated devices speak ZCL (encoded with
//! the `zcl` module) to the real `OtaServer`; time only moves when the next deadline says so.
//! The fixtures and the simulation live here; the tests are split by topic.

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
use zigbee_otad::sim::device::encode_client_request;
use zigbee_otad::zcl::ota::{
    ImageBlockRequest, ImageBlockResponse, ImagePageRequest, OtaCommand, OtaFrame,
    QueryNextImageRequest, QueryNextImageResponse, UpgradeEndRequest,
};
use zigbee_otad::zcl::{Direction, FrameType, Ieee, ZclStatus};

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
