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
//! [`DeviceHooks`] make it a different client (pages, a sleepy poll period, dropping off the
//! network, a forced Upgrade End status, ...) and [`SimDevice::log`] tells what it did; both
//! serve the server's scenario tests, and are off for the simulator's devices.
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

use crate::zcl::basic;
use crate::zcl::ota::{
    ImageBlockResponse, OtaCommand, OtaFrame, QueryNextImageRequest, QueryNextImageResponse,
};
use crate::zcl::{CommandId, Direction, FrameType, ZclHeader};
use crate::zigbee::{CLUSTER_BASIC, CLUSTER_OTA_UPGRADE, Ieee, Nwk};

pub use super::device_report::{DeviceEvent, UpgradeOutcome, UpgradeReport};
pub use super::device_spec::{SimDeviceSpec, SpecError};
use super::hostile::{HostileClient, HostileSpec};

mod download;
mod hooks;
mod upgrade_end;

use download::Download;
pub(super) use download::page_from;
pub use hooks::{BlockRecord, DeviceHooks, DeviceLog, Fetch, Vanish};

/// How long a battery-powered device stays awake (polling its parent quickly) after it sent
/// something; frames reaching it later are lost, as its parent would drop them.
pub const AWAKE_AFTER_SEND: Duration = Duration::from_secs(5);

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
    /// How it differs from the default client (nothing, by default).
    pub hooks: DeviceHooks,
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
            hooks: DeviceHooks::default(),
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
    /// Fetching the image.
    Downloading(Download),
    /// The Upgrade End Request (SUCCESS) is out; `verified` when the image was checked.
    Ending {
        offer: Offer,
        verified: bool,
        deadline: Option<Instant>,
        attempts: u32,
    },
    /// Told to wait for the upgrade command (upgrade time 0xFFFFFFFF): it asks again with an
    /// Upgrade End Request every query interval, as the SiLabs client does, until told when
    /// (or waits silently: [`DeviceHooks::silent_while_awaiting_command`]).
    AwaitingCommand {
        offer: Offer,
        verified: bool,
        ask_again: Option<Instant>,
    },
    /// Told when to switch to the new image.
    Applying {
        offer: Offer,
        verified: bool,
        at: Instant,
    },
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
    /// What it did over its life ([`SimDevice::log`]).
    log: DeviceLog,
    /// Off the network (hears and sends nothing) until then.
    offline_until: Option<Instant>,
    /// [`DeviceHooks::vanish`] has happened (it happens once).
    vanished: bool,
    /// The image just downloaded, until applied ([`DeviceHooks::keep_log`] only).
    downloaded: Vec<u8>,
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
        let first_tsn = config.hooks.first_tsn;
        SimDevice {
            current_version: config.spec.file_version,
            config,
            state: State::Idle { next_query },
            next_tsn: first_tsn,
            min_block_period: Duration::ZERO,
            started: None,
            counters: Counters::default(),
            outbox: VecDeque::new(),
            basic_outbox: VecDeque::new(),
            last_sent: None,
            next_report,
            events: VecDeque::new(),
            hostile,
            log: DeviceLog::default(),
            offline_until: None,
            vanished: false,
            downloaded: Vec::new(),
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
        if self.hostile.as_ref().is_some_and(HostileClient::is_silent) || self.is_offline(now) {
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

    /// What it did over its life: counts, and with [`DeviceHooks::keep_log`] every block,
    /// wait, upgrade time, Default Response and the image it applied.
    pub fn log(&self) -> &DeviceLog {
        &self.log
    }

    /// Bytes of the image it holds so far (0 when not downloading).
    pub fn bytes_held(&self) -> usize {
        match &self.state {
            State::Downloading(download) => download.data.len(),
            _ => 0,
        }
    }

    /// True while it is off the network: frames to it are lost, and it sends nothing.
    pub fn is_offline(&self, now: Instant) -> bool {
        self.offline_until.is_some_and(|until| now < until)
    }

    /// Takes it off the network until `until` (as a device that lost its parent); then it
    /// carries on where it was.
    pub fn go_offline(&mut self, until: Instant) {
        self.offline_until = Some(until);
    }

    /// Goes off the network for [`DeviceHooks::vanish`] once it holds enough; true if it went.
    fn vanish_if_due(&mut self, held: usize, now: Instant) -> bool {
        let Some(vanish) = self.config.hooks.vanish.filter(|_| !self.vanished) else {
            return false;
        };
        if u32::try_from(held).map_or(true, |held| held >= vanish.after_bytes) {
            self.vanished = true;
            self.go_offline(now + vanish.away);
            return true;
        }
        false
    }

    /// Notes in the log what a frame from the server says (with [`DeviceHooks::keep_log`]).
    fn log_frame(&mut self, command: &OtaCommand, now: Instant) {
        if !self.config.hooks.keep_log {
            return;
        }
        let log = &mut self.log;
        match command {
            OtaCommand::ImageBlockResponse(ImageBlockResponse::Success {
                file_offset,
                data,
                ..
            }) if matches!(self.state, State::Downloading(_)) => log.blocks.push(BlockRecord {
                at: now,
                offset: *file_offset,
                len: data.len(),
            }),
            OtaCommand::ImageBlockResponse(ImageBlockResponse::WaitForData {
                request_time,
                ..
            }) => log.wait_for_data.push(*request_time),
            OtaCommand::UpgradeEndResponse(response) => {
                log.upgrade_times.push(response.upgrade_time)
            }
            OtaCommand::DefaultResponse(response) => log.default_responses.push(response.status),
            _ => {}
        }
    }

    /// Counts a request sent again because its answer did not come in time.
    fn count_retry(&mut self) {
        self.counters.retries += 1;
        self.log.retries += 1;
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
        if self.is_offline(now) {
            return;
        }
        let Ok(frame) = OtaFrame::decode(frame) else {
            return;
        };
        if frame.header.direction != Direction::SERVER_TO_CLIENT {
            return;
        }
        self.log_frame(&frame.command, now);
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
        if self.is_offline(now) {
            return;
        }
        self.offline_until = None;
        self.report_if_due(now);
        match &mut self.state {
            State::Idle { next_query } if *next_query <= now => {
                self.send_query(now, 0);
            }
            State::Querying {
                deadline, attempts, ..
            } if *deadline <= now => {
                let attempts = *attempts + 1;
                self.count_retry();
                if attempts > self.config.max_retries {
                    self.state = State::Idle {
                        next_query: now + self.config.query_interval,
                    };
                } else {
                    self.send_query(now, attempts);
                }
            }
            State::Downloading(Download {
                awaiting: Some((_, deadline)),
                ..
            }) if *deadline <= now => {
                self.count_retry();
                self.request_next(now, true);
            }
            State::Downloading(Download {
                awaiting: None,
                next_request,
                ..
            }) if *next_request <= now => {
                self.request_next(now, false);
            }
            State::Ending {
                deadline: Some(deadline),
                ..
            } if *deadline <= now => {
                self.count_retry();
                self.send_end_request(now, true);
            }
            State::AwaitingCommand {
                offer,
                verified,
                ask_again: Some(at),
            } if *at <= now => {
                self.state = State::Ending {
                    offer: *offer,
                    verified: *verified,
                    deadline: None,
                    attempts: 0,
                };
                self.send_end_request(now, false);
            }
            State::Applying { at, .. } if *at <= now => {
                if let State::Applying {
                    offer, verified, ..
                } = std::mem::replace(
                    &mut self.state,
                    State::Idle {
                        next_query: now + self.config.first_query_after,
                    },
                ) {
                    self.current_version = offer.file_version;
                    self.log.installed = std::mem::take(&mut self.downloaded);
                    self.finish(offer, verified, UpgradeOutcome::Upgraded, now);
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
        if let Some(until) = self.offline_until {
            return Some(until);
        }
        let state = match &self.state {
            State::Idle { next_query } => Some(*next_query),
            State::Querying { deadline, .. } => Some(*deadline),
            State::Downloading(Download {
                awaiting: Some((_, deadline)),
                ..
            }) => Some(*deadline),
            State::Downloading(download) => Some(download.next_request),
            State::Ending { deadline, .. } => *deadline,
            State::AwaitingCommand { ask_again, .. } => *ask_again,
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
        self.outbox.push_back(encode_client_request(tsn, command));
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
                let delay = self.config.hooks.request_delay;
                self.state = State::Downloading(Download::new(offer, now + delay));
                if delay.is_zero() {
                    self.request_next(now, false);
                }
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

    /// Ends the attempt with `outcome` and goes idle until the next query.
    fn end_attempt(&mut self, offer: Offer, verified: bool, outcome: UpgradeOutcome, now: Instant) {
        self.finish(offer, verified, outcome, now);
        self.state = State::Idle {
            next_query: now + self.config.query_interval,
        };
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

/// A cluster-specific OTA frame from a client to the server (what every simulated client
/// sends, honest or hostile), encoded; the command id follows the command.
pub fn encode_client_request(tsn: u8, command: OtaCommand) -> Vec<u8> {
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
    bytes
}

#[cfg(test)]
mod tests;
