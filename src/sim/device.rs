//! A simulated OTA Upgrade client (ZCL8 §11.5 and §11.13, client side), sans-IO.
//!
//! A [`SimDevice`] performs a real upgrade over ZCL frames: it sends a Query Next Image Request
//! with its manufacturer code, image type, file version and (optionally) hardware version; when
//! offered an image it fetches every block with Image Block Requests of at most its
//! `max_data_size`, honouring WAIT_FOR_DATA (and a minimum block period, taken as milliseconds),
//! retrying a request whose answer does not come in time; it then checks the whole file (against
//! the expected bytes when it has them, otherwise against the OTA header: magic, manufacturer code,
//! image type, version and total size must match what the server offered), sends an Upgrade End
//! Request with SUCCESS or INVALID_IMAGE, and on the Upgrade End Response waits the indicated time,
//! switches to the new version and queries again, so the server sees the new version.
//!
//! Quinn-style verbs: [`SimDevice::handle_frame`] (a ZCL frame from the server),
//! [`SimDevice::handle_timeout`], [`SimDevice::poll_transmit`] (ZCL frames for the server),
//! [`SimDevice::poll_event`] and [`SimDevice::poll_timeout`]. Time is always an argument.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use zigbee_otad::coordinator::{Ieee, Nwk};
//! use zigbee_otad::sim::device::{SimDevice, SimDeviceConfig, SimDeviceSpec};
//! use zigbee_otad::zcl::ota::{OtaCommand, OtaFrame};
//!
//! let spec: SimDeviceSpec = "0x1189:0x0005:0x100".parse().unwrap();
//! let now = Instant::now();
//! let mut device = SimDevice::new(SimDeviceConfig::new(Nwk(0x1234), Ieee(0xAB), spec), now);
//! device.handle_timeout(now + Duration::from_secs(1));
//! let frame = OtaFrame::decode(&device.poll_transmit().unwrap()).unwrap();
//! let OtaCommand::QueryNextImageRequest(query) = frame.command else { panic!() };
//! assert_eq!((query.manufacturer_code, query.image_type, query.current_file_version), (0x1189, 5, 0x100));
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::wire::Reader;
use crate::zcl::basic;
use crate::zcl::ota::{
    ImageBlockRequest, ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageRequest,
    QueryNextImageResponse, UpgradeEndRequest, UpgradeEndResponse,
};
use crate::zcl::{CommandId, Direction, FrameType, ZclHeader, ZclStatus};
use crate::zigbee::{CLUSTER_BASIC, CLUSTER_OTA_UPGRADE, Ieee, Nwk};

pub use super::device_report::{DeviceEvent, UpgradeOutcome, UpgradeReport};
pub use super::device_spec::{SimDeviceSpec, SpecError};
use super::hostile::{HostileClient, HostileSpec};

/// How long a battery-powered device stays awake (polling its parent quickly) after it sent
/// something; frames reaching it later are lost, as its parent would drop them.
pub const AWAKE_AFTER_SEND: Duration = Duration::from_secs(5);

/// The OTA file identifier, little-endian at offset 0 (ZCL8 §11.4.2.1).
const OTA_FILE_IDENTIFIER: u32 = 0x0BEE_F11E;
/// `upgrade_time` value meaning "wait for another Upgrade End Response".
const UPGRADE_TIME_WAIT_FOR_COMMAND: u32 = 0xFFFF_FFFF;

/// One simulated device: its addresses, what it runs, and how it behaves.
#[derive(Debug, Clone)]
pub struct SimDeviceConfig {
    /// Network address.
    pub nwk: Nwk,
    /// IEEE address.
    pub ieee: Ieee,
    /// The endpoint its OTA client cluster lives on.
    pub endpoint: u8,
    /// Manufacturer, image type, version, hardware version, block size.
    pub spec: SimDeviceSpec,
    /// One-way radio delay between the NCP and this device (hops, a parent's poll interval).
    pub radio_delay: Duration,
    /// When it first queries, after it is created.
    pub first_query_after: Duration,
    /// How often it queries when it has nothing to do.
    pub query_interval: Duration,
    /// How long it waits for an answer before asking again.
    pub response_timeout: Duration,
    /// Unanswered requests in a row after which it gives up the download.
    pub max_retries: u32,
    /// The exact file it expects, when known; otherwise it checks the OTA header only.
    pub expected_image: Option<Arc<Vec<u8>>>,
    /// A hostile device instead of an honest one ([`super::hostile`]).
    pub hostile: Option<HostileSpec>,
    /// Also reports its Basic cluster ApplicationVersion this often (ZCL Report Attributes,
    /// unasked), as a device with a configured reporting does.
    pub report_every: Option<Duration>,
}

impl SimDeviceConfig {
    /// A device with the given addresses and spec, endpoint 1, 10 ms radio delay, first query
    /// after 1 s, queries every 5 min, 5 s answer timeout, 10 retries, header-only check.
    pub fn new(nwk: Nwk, ieee: Ieee, spec: SimDeviceSpec) -> Self {
        SimDeviceConfig {
            nwk,
            ieee,
            endpoint: 1,
            spec,
            radio_delay: Duration::from_millis(10),
            first_query_after: Duration::from_secs(1),
            query_interval: Duration::from_secs(300),
            response_timeout: Duration::from_secs(5),
            max_retries: 10,
            expected_image: None,
            hostile: None,
            report_every: None,
        }
    }
}

/// The image being downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    manufacturer_code: u16,
    image_type: u16,
    file_version: u32,
    image_size: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    block_requests: u32,
    retries: u32,
    waits: u32,
    protocol_violations: u32,
}

#[derive(Debug)]
enum State {
    /// Nothing to do until the next query.
    Idle { next_query: Instant },
    /// A Query Next Image Request is out.
    Querying {
        tsn: u8,
        deadline: Instant,
        attempts: u32,
    },
    /// Fetching blocks. `awaiting` is the outstanding request's TSN and deadline; otherwise the
    /// next request goes out at `next_request`.
    Downloading {
        offer: Offer,
        data: Vec<u8>,
        awaiting: Option<(u8, Instant)>,
        next_request: Instant,
        attempts: u32,
    },
    /// The Upgrade End Request is out.
    Ending {
        offer: Offer,
        deadline: Option<Instant>,
        attempts: u32,
    },
    /// Told to wait for the upgrade command (upgrade time 0xFFFFFFFF): it asks again with an
    /// Upgrade End Request every query interval, as the SiLabs client does, until told when.
    AwaitingCommand { offer: Offer, ask_again: Instant },
    /// Told when to switch to the new image.
    Applying { offer: Offer, at: Instant },
}

/// A simulated OTA client. See the module docs.
#[derive(Debug)]
pub struct SimDevice {
    config: SimDeviceConfig,
    current_version: u32,
    state: State,
    next_tsn: u8,
    min_block_period: Duration,
    started: Option<Instant>,
    counters: Counters,
    outbox: VecDeque<Vec<u8>>,
    /// Basic cluster answers, apart from the OTA frames.
    basic_outbox: VecDeque<Vec<u8>>,
    /// When it last sent something (a battery device is awake shortly after).
    last_sent: Option<Instant>,
    /// When it next reports an attribute ([`SimDeviceConfig::report_every`]).
    next_report: Option<Instant>,
    events: VecDeque<DeviceEvent>,
    /// Set when the config asks for a hostile device: it then does this instead.
    hostile: Option<HostileClient>,
}

impl SimDevice {
    /// A device that first queries `config.first_query_after` from `now`.
    pub fn new(config: SimDeviceConfig, now: Instant) -> Self {
        let next_query = now + config.first_query_after;
        let hostile = config
            .hostile
            .clone()
            .map(|spec| HostileClient::new(spec, now, config.first_query_after, config.ieee.0));
        let next_report = config.report_every.map(|every| now + every);
        SimDevice {
            current_version: config.spec.file_version,
            config,
            state: State::Idle { next_query },
            next_tsn: 0,
            min_block_period: Duration::ZERO,
            started: None,
            counters: Counters::default(),
            outbox: VecDeque::new(),
            basic_outbox: VecDeque::new(),
            last_sent: None,
            next_report,
            events: VecDeque::new(),
            hostile,
        }
    }

    /// Reports ApplicationVersion (0x0001, uint8: the low byte of the running file version)
    /// when due: a global Report Attributes (0x0A), server to client, no default response.
    fn report_if_due(&mut self, now: Instant) {
        let (Some(at), Some(every)) = (self.next_report, self.config.report_every) else {
            return;
        };
        if at > now {
            return;
        }
        self.next_report = Some(now + every);
        let tsn = self.take_tsn();
        let version = self.current_version.to_le_bytes()[0];
        self.basic_outbox
            .push_back(vec![0x18, tsn, 0x0A, 0x01, 0x00, 0x20, version]);
        self.last_sent = Some(now);
    }

    /// Handles a ZCL frame of the Basic cluster: a Read Attributes request is answered with
    /// the spec's identity, as real devices do; a battery-powered device hears it only while
    /// awake ([`AWAKE_AFTER_SEND`] after it last sent something).
    pub fn handle_basic_frame(&mut self, frame: &[u8], now: Instant) {
        if self.hostile.as_ref().is_some_and(HostileClient::is_silent) {
            return;
        }
        let awake = !self.config.spec.identity.is_battery()
            || self
                .last_sent
                .is_some_and(|at| now <= at + AWAKE_AFTER_SEND);
        if !awake {
            return;
        }
        if let Some(answer) = basic::encode_read_response(frame, &self.config.spec.identity) {
            self.basic_outbox.push_back(answer);
        }
    }

    /// The next Basic cluster frame for the server.
    pub fn poll_transmit_basic(&mut self) -> Option<Vec<u8>> {
        self.basic_outbox.pop_front()
    }

    /// The next frame for the radio, with its cluster: OTA frames first, then Basic cluster
    /// answers (what both simulated sticks put on the air for the device).
    pub fn poll_radio_frame(&mut self) -> Option<(u16, Vec<u8>)> {
        if let Some(payload) = self.poll_transmit() {
            return Some((CLUSTER_OTA_UPGRADE, payload));
        }
        self.poll_transmit_basic()
            .map(|payload| (CLUSTER_BASIC, payload))
    }

    /// The device's configuration.
    pub fn config(&self) -> &SimDeviceConfig {
        &self.config
    }

    /// The file version it runs now.
    pub fn current_version(&self) -> u32 {
        self.current_version
    }

    /// True while a download or upgrade is under way.
    pub fn is_busy(&self) -> bool {
        if self.hostile.is_some() {
            return true;
        }
        !matches!(self.state, State::Idle { .. })
    }

    /// Handles a ZCL frame of the OTA cluster that the server sent this device.
    pub fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        if let Some(hostile) = &mut self.hostile {
            return hostile.handle_frame(frame, now);
        }
        let Ok(frame) = OtaFrame::decode(frame) else {
            return;
        };
        if frame.header.direction != Direction::SERVER_TO_CLIENT {
            return;
        }
        let tsn = frame.header.tsn;
        match frame.command {
            OtaCommand::ImageNotify(_) => {
                if let State::Idle { next_query } = &mut self.state {
                    *next_query = (*next_query).min(now);
                }
            }
            OtaCommand::QueryNextImageResponse(response) => {
                self.on_query_response(tsn, response, now)
            }
            OtaCommand::ImageBlockResponse(response) => self.on_block_response(tsn, response, now),
            OtaCommand::UpgradeEndResponse(response) => self.on_end_response(response, now),
            _ => {}
        }
    }

    /// Fires what is due at `now`: queries, block requests, retries, applying the image.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(hostile) = &mut self.hostile {
            // A spoofer sends from its new made-up address (the NCP reads it from the config).
            if let Some((nwk, ieee)) = hostile.handle_timeout(now) {
                (self.config.nwk, self.config.ieee) = (nwk, ieee);
            }
            self.outbox
                .extend(std::iter::from_fn(|| hostile.poll_transmit()));
            return;
        }
        self.report_if_due(now);
        match &mut self.state {
            State::Idle { next_query } if *next_query <= now => {
                self.send_query(now, 0);
            }
            State::Querying {
                deadline, attempts, ..
            } if *deadline <= now => {
                let attempts = *attempts + 1;
                self.counters.retries += 1;
                if attempts > self.config.max_retries {
                    self.state = State::Idle {
                        next_query: now + self.config.query_interval,
                    };
                } else {
                    self.send_query(now, attempts);
                }
            }
            State::Downloading {
                awaiting: Some((_, deadline)),
                ..
            } if *deadline <= now => {
                self.counters.retries += 1;
                self.request_block(now, true);
            }
            State::Downloading {
                awaiting: None,
                next_request,
                ..
            } if *next_request <= now => {
                self.request_block(now, false);
            }
            State::Ending {
                deadline: Some(deadline),
                ..
            } if *deadline <= now => {
                self.counters.retries += 1;
                self.send_end_request(now, true);
            }
            State::AwaitingCommand { offer, ask_again } if *ask_again <= now => {
                self.state = State::Ending {
                    offer: *offer,
                    deadline: None,
                    attempts: 0,
                };
                self.send_end_request(now, false);
            }
            State::Applying { at, .. } if *at <= now => {
                if let State::Applying { offer, .. } = std::mem::replace(
                    &mut self.state,
                    State::Idle {
                        next_query: now + self.config.first_query_after,
                    },
                ) {
                    self.current_version = offer.file_version;
                    self.finish(offer, true, UpgradeOutcome::Upgraded, now);
                }
            }
            _ => {}
        }
    }

    /// The next ZCL frame for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    /// When [`SimDevice::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(hostile) = &self.hostile {
            return Some(hostile.poll_timeout());
        }
        let state = match &self.state {
            State::Idle { next_query } => Some(*next_query),
            State::Querying { deadline, .. } => Some(*deadline),
            State::Downloading {
                awaiting: Some((_, deadline)),
                ..
            } => Some(*deadline),
            State::Downloading { next_request, .. } => Some(*next_request),
            State::Ending { deadline, .. } => *deadline,
            State::AwaitingCommand { ask_again, .. } => Some(*ask_again),
            State::Applying { at, .. } => Some(*at),
        };
        state.into_iter().chain(self.next_report).min()
    }

    fn take_tsn(&mut self) -> u8 {
        let tsn = self.next_tsn;
        self.next_tsn = self.next_tsn.wrapping_add(1);
        tsn
    }

    fn send(&mut self, tsn: u8, command: OtaCommand, now: Instant) {
        let header = ZclHeader {
            frame_type: FrameType::CLUSTER_SPECIFIC,
            manufacturer_code: None,
            direction: Direction::CLIENT_TO_SERVER,
            disable_default_response: false,
            reserved_bits: 0,
            tsn,
            command_id: CommandId(0),
        };
        let mut bytes = Vec::new();
        OtaFrame::new(header, command).encode(&mut bytes);
        self.outbox.push_back(bytes);
        self.last_sent = self.last_sent.max(Some(now));
    }

    fn send_query(&mut self, now: Instant, attempts: u32) {
        let tsn = self.take_tsn();
        let spec = &self.config.spec;
        let query = QueryNextImageRequest {
            field_control: 0,
            manufacturer_code: spec.manufacturer_code,
            image_type: spec.image_type,
            current_file_version: self.current_version,
            hardware_version: spec.hardware_version,
        };
        self.send(tsn, OtaCommand::QueryNextImageRequest(query), now);
        self.state = State::Querying {
            tsn,
            deadline: now + self.config.response_timeout,
            attempts,
        };
    }

    fn on_query_response(&mut self, tsn: u8, response: QueryNextImageResponse, now: Instant) {
        let State::Querying { tsn: expected, .. } = self.state else {
            return;
        };
        if tsn != expected {
            return;
        }
        match response {
            QueryNextImageResponse::Success {
                manufacturer_code,
                image_type,
                file_version,
                image_size,
            } => {
                let offer = Offer {
                    manufacturer_code,
                    image_type,
                    file_version,
                    image_size,
                };
                self.started = Some(now);
                self.counters = Counters::default();
                self.min_block_period = Duration::ZERO;
                self.events.push_back(DeviceEvent::DownloadStarted {
                    file_version,
                    image_size,
                });
                self.state = State::Downloading {
                    offer,
                    data: Vec::new(),
                    awaiting: None,
                    next_request: now,
                    attempts: 0,
                };
                self.request_block(now, false);
            }
            QueryNextImageResponse::OtherStatus { status } => {
                self.events.push_back(DeviceEvent::NoImage {
                    current_version: self.current_version,
                    status,
                });
                self.state = State::Idle {
                    next_query: now + self.config.query_interval,
                };
            }
        }
    }

    /// Sends the Image Block Request for the next missing offset (again, when `retry`).
    fn request_block(&mut self, now: Instant, retry: bool) {
        let State::Downloading {
            offer,
            data,
            attempts,
            ..
        } = &self.state
        else {
            return;
        };
        let (offer, offset, attempts) = (*offer, data.len(), *attempts);
        let attempts = if retry { attempts + 1 } else { 0 };
        if attempts > self.config.max_retries {
            self.finish(offer, false, UpgradeOutcome::GaveUp, now);
            self.state = State::Idle {
                next_query: now + self.config.query_interval,
            };
            return;
        }
        let tsn = self.take_tsn();
        self.counters.block_requests += 1;
        self.send(
            tsn,
            OtaCommand::ImageBlockRequest(ImageBlockRequest {
                field_control: 0,
                manufacturer_code: offer.manufacturer_code,
                image_type: offer.image_type,
                file_version: offer.file_version,
                file_offset: u32::try_from(offset).unwrap_or(u32::MAX),
                maximum_data_size: self.config.spec.max_data_size,
                request_node_address: None,
                minimum_block_period: None,
            }),
            now,
        );
        let deadline = now + self.config.response_timeout;
        if let State::Downloading {
            awaiting,
            attempts: stored,
            ..
        } = &mut self.state
        {
            *awaiting = Some((tsn, deadline));
            *stored = attempts;
        }
    }

    fn on_block_response(&mut self, tsn: u8, response: ImageBlockResponse, now: Instant) {
        let max_data_size = usize::from(self.config.spec.max_data_size);
        let min_block_period = self.min_block_period;
        let State::Downloading {
            offer,
            data,
            awaiting,
            next_request,
            attempts,
        } = &mut self.state
        else {
            return;
        };
        if awaiting.map(|(expected, _)| expected) != Some(tsn) {
            return; // A late answer to a request already retried.
        }
        let offer = *offer;
        match response {
            ImageBlockResponse::Success {
                manufacturer_code,
                image_type,
                file_version,
                file_offset,
                data: block,
            } => {
                let right_image = (manufacturer_code, image_type, file_version)
                    == (
                        offer.manufacturer_code,
                        offer.image_type,
                        offer.file_version,
                    );
                let right_place = usize::try_from(file_offset).ok() == Some(data.len());
                let remaining = usize::try_from(offer.image_size)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(data.len());
                if !right_image
                    || !right_place
                    || block.is_empty()
                    || block.len() > max_data_size
                    || block.len() > remaining
                {
                    // Not taken; ask for the same offset again (counted as a retry, so a server
                    // that keeps sending garbage ends the attempt).
                    self.counters.protocol_violations += 1;
                    self.request_block(now, true);
                    return;
                }
                data.extend_from_slice(block.as_slice());
                *awaiting = None;
                *attempts = 0;
                *next_request = now + min_block_period;
                if u32::try_from(data.len()).ok() == Some(offer.image_size) {
                    self.send_end_request(now, false);
                } else if min_block_period.is_zero() {
                    self.request_block(now, false);
                }
            }
            ImageBlockResponse::WaitForData {
                current_time,
                request_time,
                minimum_block_period,
            } => {
                self.counters.waits += 1;
                let wait_seconds = if current_time == 0 {
                    request_time
                } else {
                    request_time.saturating_sub(current_time)
                };
                *awaiting = None;
                *next_request = now + Duration::from_secs(u64::from(wait_seconds));
                if let Some(period) = minimum_block_period {
                    self.min_block_period = Duration::from_millis(u64::from(period));
                }
            }
            ImageBlockResponse::Abort => {
                self.finish(
                    offer,
                    false,
                    UpgradeOutcome::Aborted {
                        status: ZclStatus::ABORT,
                    },
                    now,
                );
                self.state = State::Idle {
                    next_query: now + self.config.query_interval,
                };
            }
            ImageBlockResponse::OtherStatus { status } => {
                self.finish(offer, false, UpgradeOutcome::Aborted { status }, now);
                self.state = State::Idle {
                    next_query: now + self.config.query_interval,
                };
            }
        }
    }

    /// Checks the downloaded file and sends the Upgrade End Request (again, when `retry`).
    fn send_end_request(&mut self, now: Instant, retry: bool) {
        let (offer, valid, attempts) = match &self.state {
            State::Downloading { offer, data, .. } => (*offer, self.image_is_valid(offer, data), 0),
            State::Ending {
                offer, attempts, ..
            } => (*offer, true, attempts + u32::from(retry)),
            _ => return,
        };
        if attempts > self.config.max_retries {
            self.finish(offer, true, UpgradeOutcome::GaveUp, now);
            self.state = State::Idle {
                next_query: now + self.config.query_interval,
            };
            return;
        }
        let tsn = self.take_tsn();
        self.send(
            tsn,
            OtaCommand::UpgradeEndRequest(UpgradeEndRequest {
                status: if valid {
                    ZclStatus::SUCCESS
                } else {
                    ZclStatus::INVALID_IMAGE
                },
                manufacturer_code: offer.manufacturer_code,
                image_type: offer.image_type,
                file_version: offer.file_version,
            }),
            now,
        );
        if valid {
            self.state = State::Ending {
                offer,
                deadline: Some(now + self.config.response_timeout),
                attempts,
            };
        } else {
            // The server answers INVALID_IMAGE with a Default Response; nothing more to wait for.
            self.finish(offer, false, UpgradeOutcome::InvalidImage, now);
            self.state = State::Idle {
                next_query: now + self.config.query_interval,
            };
        }
    }

    fn on_end_response(&mut self, response: UpgradeEndResponse, now: Instant) {
        let (State::Ending { offer, .. } | State::AwaitingCommand { offer, .. }) = self.state
        else {
            return;
        };
        if (
            response.manufacturer_code,
            response.image_type,
            response.file_version,
        ) != (
            offer.manufacturer_code,
            offer.image_type,
            offer.file_version,
        ) {
            return;
        }
        if response.upgrade_time == UPGRADE_TIME_WAIT_FOR_COMMAND {
            // Wait for the Upgrade End Response that says when, asking again now and then.
            self.state = State::AwaitingCommand {
                offer,
                ask_again: now + self.config.query_interval,
            };
            return;
        }
        let delay_seconds = if response.current_time == 0 {
            response.upgrade_time
        } else {
            response.upgrade_time.saturating_sub(response.current_time)
        };
        self.state = State::Applying {
            offer,
            at: now + Duration::from_secs(u64::from(delay_seconds)),
        };
        self.handle_timeout(now);
    }

    fn image_is_valid(&self, offer: &Offer, data: &[u8]) -> bool {
        if let Some(expected) = &self.config.expected_image {
            return expected.as_slice() == data;
        }
        header_matches(offer, data)
    }

    fn finish(&mut self, offer: Offer, verified: bool, outcome: UpgradeOutcome, now: Instant) {
        let counters = self.counters;
        self.events
            .push_back(DeviceEvent::UpgradeEnded(UpgradeReport {
                nwk: self.config.nwk,
                ieee: self.config.ieee,
                manufacturer_code: offer.manufacturer_code,
                image_type: offer.image_type,
                from_version: self.config.spec.file_version,
                to_version: offer.file_version,
                image_size: offer.image_size,
                verified,
                outcome,
                block_requests: counters.block_requests,
                retries: counters.retries,
                waits: counters.waits,
                protocol_violations: counters.protocol_violations,
                elapsed: self
                    .started
                    .map(|start| now.saturating_duration_since(start))
                    .unwrap_or_default(),
            }));
    }
}

/// The OTA header of `data` names the offered image and declares exactly `data.len()` bytes.
fn header_matches(offer: &Offer, data: &[u8]) -> bool {
    let mut reader = Reader::new(data);
    let parsed = (|| {
        let identifier = reader.u32("file_identifier")?;
        let _header_version = reader.u16("header_version")?;
        let _header_length = reader.u16("header_length")?;
        let _field_control = reader.u16("header_field_control")?;
        let manufacturer_code = reader.u16("manufacturer_code")?;
        let image_type = reader.u16("image_type")?;
        let file_version = reader.u32("file_version")?;
        let _stack_version = reader.u16("zigbee_stack_version")?;
        let _header_string = reader.take("header_string", 32)?;
        let total_size = reader.u32("total_image_size")?;
        Ok::<_, crate::wire::Truncated>((
            identifier,
            manufacturer_code,
            image_type,
            file_version,
            total_size,
        ))
    })();
    let Ok((identifier, manufacturer_code, image_type, file_version, total_size)) = parsed else {
        return false;
    };
    identifier == OTA_FILE_IDENTIFIER
        && manufacturer_code == offer.manufacturer_code
        && image_type == offer.image_type
        && file_version == offer.file_version
        && total_size == offer.image_size
        && usize::try_from(total_size).ok() == Some(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zcl::ota::BlockData;

    #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
    fn origin() -> Instant {
        Instant::now()
    }

    const MFR: u16 = 0x1189;
    const TYPE: u16 = 0x0005;
    const NEW: u32 = 0x0000_0200;

    /// A minimal valid OTA file of `total` bytes.
    fn ota_file(version: u32, total: usize) -> Vec<u8> {
        let mut file = Vec::new();
        file.extend_from_slice(&OTA_FILE_IDENTIFIER.to_le_bytes());
        file.extend_from_slice(&0x0100u16.to_le_bytes());
        file.extend_from_slice(&56u16.to_le_bytes());
        file.extend_from_slice(&0u16.to_le_bytes());
        file.extend_from_slice(&MFR.to_le_bytes());
        file.extend_from_slice(&TYPE.to_le_bytes());
        file.extend_from_slice(&version.to_le_bytes());
        file.extend_from_slice(&2u16.to_le_bytes());
        file.extend_from_slice(&[b'x'; 32]);
        file.extend_from_slice(&u32::try_from(total).unwrap().to_le_bytes());
        file.extend((0..total - file.len()).map(|i| (i * 7) as u8));
        file
    }

    fn device(spec: &str, now: Instant) -> SimDevice {
        let mut config = SimDeviceConfig::new(Nwk(0x1234), Ieee(0xAB), spec.parse().unwrap());
        config.first_query_after = Duration::ZERO;
        config.response_timeout = Duration::from_secs(2);
        config.max_retries = 3;
        SimDevice::new(config, now)
    }

    /// The device's next frame, decoded.
    fn next_request(device: &mut SimDevice) -> OtaFrame {
        OtaFrame::decode(&device.poll_transmit().expect("a request")).unwrap()
    }

    fn reply(device: &mut SimDevice, request: &OtaFrame, command: OtaCommand, now: Instant) {
        let mut bytes = Vec::new();
        request.reply(command).encode(&mut bytes);
        device.handle_frame(&bytes, now);
    }

    fn offer(image_size: usize) -> OtaCommand {
        OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success {
            manufacturer_code: MFR,
            image_type: TYPE,
            file_version: NEW,
            image_size: u32::try_from(image_size).unwrap(),
        })
    }

    fn block(request: &ImageBlockRequest, file: &[u8], cap: usize) -> OtaCommand {
        let start = request.file_offset as usize;
        let len = cap.min(file.len() - start);
        OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
            manufacturer_code: MFR,
            image_type: TYPE,
            file_version: request.file_version,
            file_offset: request.file_offset,
            data: BlockData::new(&file[start..start + len]).unwrap(),
        })
    }

    fn ended(device: &mut SimDevice) -> UpgradeReport {
        loop {
            match device.poll_event() {
                Some(DeviceEvent::UpgradeEnded(report)) => return report,
                Some(_) => {}
                None => panic!("no report"),
            }
        }
    }

    proptest::proptest! {
        /// Whatever the server sends, in whatever state, the device neither panics nor sends
        /// anything but well-formed client requests.
        #[test]
        fn hostile_frames_never_break_the_device(frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..30)) {
            let mut now = origin();
            let mut dev = device("0x1189:0x0005:0x100", now);
            dev.handle_timeout(now);
            let query = next_request(&mut dev);
            reply(&mut dev, &query, offer(100), now);
            for (i, frame) in frames.iter().enumerate() {
                // Give some frames a valid server-to-client header so they reach the commands.
                let mut bytes = frame.clone();
                if i % 2 == 0 && bytes.len() >= 3 {
                    bytes[0] = 0x19;
                }
                dev.handle_frame(&bytes, now);
                now += Duration::from_millis(500);
                dev.handle_timeout(now);
                while let Some(out) = dev.poll_transmit() {
                    let decoded = OtaFrame::decode_request(&out).unwrap();
                    proptest::prop_assert!(decoded.command.is_client_request());
                }
            }
        }
    }

    /// With `report_every`, the device reports ApplicationVersion unasked, on schedule.
    #[test]
    fn a_reporting_device_reports_its_application_version() {
        let t0 = origin();
        let mut config = SimDeviceConfig::new(Nwk(1), Ieee(2), "1:2:0x0105".parse().unwrap());
        config.report_every = Some(Duration::from_secs(2));
        config.first_query_after = Duration::from_secs(3600);
        let mut reporting = SimDevice::new(config, t0);
        assert_eq!(reporting.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        reporting.handle_timeout(t0 + Duration::from_secs(2));
        let report = reporting.poll_transmit_basic().expect("a report");
        assert_eq!(report, [0x18, 0, 0x0A, 0x01, 0x00, 0x20, 0x05]);
        assert_eq!(reporting.poll_timeout(), Some(t0 + Duration::from_secs(4)));
        assert!(device("1:2:3", t0).poll_transmit_basic().is_none());
    }

    /// A battery device answers a Basic cluster read only shortly after it sent something; a
    /// mains one always.
    #[test]
    fn basic_reads_are_answered_like_real_devices() {
        let t0 = origin();
        let read = basic::read_identity_request(9);
        let mut sleepy = device("1:2:3,model=lumi.sensor,power=battery", t0);
        sleepy.handle_basic_frame(&read, t0);
        assert!(
            sleepy.poll_transmit_basic().is_none(),
            "asleep before its first query"
        );
        sleepy.handle_timeout(t0 + Duration::from_secs(1));
        let _query = next_request(&mut sleepy);
        sleepy.handle_basic_frame(&read, t0 + Duration::from_secs(2));
        let answer = sleepy.poll_transmit_basic().unwrap();
        let identity = basic::decode_read_response(&answer).unwrap().1;
        assert_eq!(identity.model_id.as_deref(), Some("lumi.sensor"));
        sleepy.handle_basic_frame(&read, t0 + Duration::from_secs(60));
        assert!(sleepy.poll_transmit_basic().is_none(), "asleep again");
        let mut mains = device("1:2:3,model=TS011F,power=mains", t0);
        mains.handle_basic_frame(&read, t0);
        assert!(mains.poll_transmit_basic().is_some());
    }

    /// A whole upgrade: query, a WAIT_FOR_DATA honoured to the second, blocks no larger than
    /// the device asks for, Upgrade End, a delayed upgrade time, then the new version queried.
    #[test]
    fn performs_a_whole_upgrade_honouring_wait_for_data() {
        let start = origin();
        let mut now = start;
        let file = ota_file(NEW, 300);
        let mut dev = device("0x1189:0x0005:0x100:0x0001:40", now);
        dev.handle_timeout(now);
        let query = next_request(&mut dev);
        let OtaCommand::QueryNextImageRequest(q) = &query.command else {
            panic!("{query:?}")
        };
        assert_eq!(
            (q.current_file_version, q.hardware_version),
            (0x100, Some(1))
        );
        reply(&mut dev, &query, offer(file.len()), now);

        // First block request: told to wait 3 s, with a minimum block period of 100 ms.
        let first = next_request(&mut dev);
        reply(
            &mut dev,
            &first,
            OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData {
                current_time: 0,
                request_time: 3,
                minimum_block_period: Some(100),
            }),
            now,
        );
        assert!(dev.poll_transmit().is_none());
        assert_eq!(dev.poll_timeout(), Some(now + Duration::from_secs(3)));
        dev.handle_timeout(now + Duration::from_millis(2999));
        assert!(dev.poll_transmit().is_none(), "asked again too early");
        now += Duration::from_secs(3);
        dev.handle_timeout(now);

        let mut blocks = 0;
        let end = loop {
            let request = next_request(&mut dev);
            match &request.command {
                OtaCommand::ImageBlockRequest(b) => {
                    assert_eq!(b.maximum_data_size, 40);
                    blocks += 1;
                    reply(&mut dev, &request, block(b, &file, 40), now);
                    // The minimum block period paces the next request; the end request
                    // follows the last block at once.
                    match dev.poll_transmit() {
                        None => {
                            let next = dev.poll_timeout().unwrap();
                            assert_eq!(next, now + Duration::from_millis(100));
                            now = next;
                            dev.handle_timeout(now);
                        }
                        Some(bytes) => {
                            let frame = OtaFrame::decode(&bytes).unwrap();
                            let OtaCommand::UpgradeEndRequest(end) = &frame.command else {
                                panic!("request sent inside the minimum block period")
                            };
                            break (frame.clone(), end.clone());
                        }
                    }
                }
                OtaCommand::UpgradeEndRequest(end) => break (request.clone(), end.clone()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(blocks, 300usize.div_ceil(40));
        assert_eq!(end.1.status, ZclStatus::SUCCESS);
        reply(
            &mut dev,
            &end.0,
            OtaCommand::UpgradeEndResponse(UpgradeEndResponse {
                manufacturer_code: MFR,
                image_type: TYPE,
                file_version: NEW,
                current_time: 1000,
                upgrade_time: 1005,
            }),
            now,
        );
        assert_eq!(dev.current_version(), 0x100, "not before the upgrade time");
        now += Duration::from_secs(5);
        dev.handle_timeout(now);
        assert_eq!(dev.current_version(), NEW);
        let report = ended(&mut dev);
        assert_eq!(report.outcome, UpgradeOutcome::Upgraded);
        assert!(report.verified);
        assert_eq!((report.waits, report.retries), (1, 0));
        // Its next query reports the new version.
        now += Duration::from_secs(1);
        dev.handle_timeout(now);
        let again = next_request(&mut dev);
        let OtaCommand::QueryNextImageRequest(q) = &again.command else {
            panic!("{again:?}")
        };
        assert_eq!(q.current_file_version, NEW);
    }

    fn download(dev: &mut SimDevice, file: &[u8], now: Instant) -> OtaFrame {
        dev.handle_timeout(now);
        let query = next_request(dev);
        reply(dev, &query, offer(file.len()), now);
        loop {
            let request = next_request(dev);
            match &request.command {
                OtaCommand::ImageBlockRequest(b) => {
                    let answer = block(b, file, usize::from(b.maximum_data_size));
                    reply(dev, &request, answer, now);
                }
                _ => return request,
            }
        }
    }

    #[test]
    fn a_wrong_image_is_refused_with_invalid_image() {
        let now = origin();
        let mut file = ota_file(NEW, 200);
        file[20] ^= 0xFF; // the header string: the header check cannot see it ...
        let mut dev = device("0x1189:0x0005:0x100", now);
        dev.config.expected_image = Some(Arc::new(ota_file(NEW, 200)));
        let end = download(&mut dev, &file, now);
        let OtaCommand::UpgradeEndRequest(end) = end.command else {
            panic!("{end:?}")
        };
        // ... but the comparison with the expected bytes does.
        assert_eq!(end.status, ZclStatus::INVALID_IMAGE);
        let report = ended(&mut dev);
        assert_eq!(report.outcome, UpgradeOutcome::InvalidImage);
        assert!(!report.verified);
        assert_eq!(dev.current_version(), 0x100);
    }

    #[test]
    fn a_header_that_disagrees_with_the_offer_is_invalid() {
        let now = origin();
        let file = ota_file(NEW + 1, 200); // the file says another version than offered
        let mut dev = device("0x1189:0x0005:0x100", now);
        let end = download(&mut dev, &file, now);
        let OtaCommand::UpgradeEndRequest(end) = end.command else {
            panic!("{end:?}")
        };
        assert_eq!(end.status, ZclStatus::INVALID_IMAGE);
    }

    #[test]
    fn abort_and_silence_end_the_attempt() {
        let mut now = origin();
        let mut dev = device("0x1189:0x0005:0x100", now);
        dev.handle_timeout(now);
        let query = next_request(&mut dev);
        reply(&mut dev, &query, offer(500), now);
        let request = next_request(&mut dev);
        reply(
            &mut dev,
            &request,
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Abort),
            now,
        );
        let report = ended(&mut dev);
        assert_eq!(
            report.outcome,
            UpgradeOutcome::Aborted {
                status: ZclStatus::ABORT
            }
        );

        // Next attempt: the server goes silent; the device retries the same offset, then gives up.
        now += dev.config.query_interval;
        dev.handle_timeout(now);
        let query = next_request(&mut dev);
        reply(&mut dev, &query, offer(500), now);
        let first = next_request(&mut dev);
        for _ in 0..3 {
            now = dev.poll_timeout().unwrap();
            dev.handle_timeout(now);
            let retry = next_request(&mut dev);
            let (OtaCommand::ImageBlockRequest(a), OtaCommand::ImageBlockRequest(b)) =
                (&first.command, &retry.command)
            else {
                panic!()
            };
            assert_eq!(a.file_offset, b.file_offset);
            assert_ne!(first.header.tsn, retry.header.tsn);
        }
        now = dev.poll_timeout().unwrap();
        dev.handle_timeout(now);
        let report = ended(&mut dev);
        assert_eq!(report.outcome, UpgradeOutcome::GaveUp);
        assert_eq!(report.retries, 4);
    }

    #[test]
    fn oversized_or_misplaced_blocks_are_not_taken() {
        let now = origin();
        let file = ota_file(NEW, 200);
        let mut dev = device("0x1189:0x0005:0x100:1:20", now);
        dev.handle_timeout(now);
        let query = next_request(&mut dev);
        reply(&mut dev, &query, offer(file.len()), now);
        let request = next_request(&mut dev);
        let OtaCommand::ImageBlockRequest(b) = &request.command else {
            panic!()
        };
        reply(&mut dev, &request, block(b, &file, 30), now); // larger than asked
        let again = next_request(&mut dev);
        let OtaCommand::ImageBlockRequest(b2) = &again.command else {
            panic!()
        };
        assert_eq!(b2.file_offset, 0, "the oversized block was not taken");
        // A late answer to the first request (old TSN) is ignored too.
        reply(&mut dev, &request, block(b, &file, 20), now);
        assert!(dev.poll_transmit().is_none());
        assert_eq!(dev.counters.protocol_violations, 1);
    }
}
