//! The OTA Upgrade server (ZCL8 §11.13, PROTOCOLS.md §8 and §10), sans-IO: decoded requests,
//! the catalog's view and `now` in; frames to send, events and the next deadline out. It never
//! touches a socket, a file or a clock, and works with any coordinator that can carry ZCL
//! frames of cluster 0x0019 and report its maximum APS payload.
//!
//! - [`policy`]: which image a device gets (or why none);
//! - [`control`] and `installer`: the installer's decisions (approve, apply, cancel, hold, the
//!   apply window) and the rolling-update order;
//! - `session`: per-device state: offers, request FIFO, retries, pacing, the transfer;
//! - [`pacing`]: block size and the concurrency cap;
//! - `query` and `notify`: Query Next Image / Device Specific File, Image Notify;
//! - `transfer`: serving blocks and pages;
//! - `upgrade_end`: Upgrade End under the upgrade-time policy, the transfer history;
//! - `status`: what the status socket shows (transfers, devices, history);
//! - [`progress`]: transfer snapshots, events and history;
//! - [`config`]: [`ServerConfig`] and its field-tested defaults.
//!
//! Driving it follows quinn's verbs: feed [`OtaServer::handle_frame`] and
//! [`OtaServer::handle_timeout`], then drain [`OtaServer::poll_transmit`] and
//! [`OtaServer::poll_event`], and sleep until [`OtaServer::poll_timeout`].
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use zigbee_otad::server::{DeviceAddr, ImageKey, OtaImage, OtaServer, ServerConfig};
//! use zigbee_otad::zcl::ota::{OtaCommand, OtaFrame, QueryNextImageResponse};
//! use zigbee_otad::zcl::Ieee;
//!
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now(); // the daemon's clock; the server never reads one
//! let key = ImageKey { manufacturer_code: 0x1189, image_type: 0x0042, file_version: 2 };
//! let image = OtaImage::new(key, Bytes::from(vec![0u8; 1000])).unwrap().shared();
//! let mut server = OtaServer::new(ServerConfig::default());
//! server.set_images(vec![image], now);
//!
//! // A Query Next Image Request (TSN 7) from a device running version 1.
//! let device = DeviceAddr { nwk: 0x1234, ieee: Some(Ieee(0x0011_2233_4455_6677)), endpoint: 1 };
//! let query = [0x01, 0x07, 0x01, 0x00, 0x89, 0x11, 0x42, 0x00, 0x01, 0x00, 0x00, 0x00];
//! server.handle_frame(device, &query, now);
//!
//! let reply = server.poll_transmit().unwrap();
//! assert_eq!(
//!     reply.zcl_bytes.as_ref(),
//!     [0x19, 0x07, 0x02, 0x00, 0x89, 0x11, 0x42, 0x00, 0x02, 0x00, 0x00, 0x00, 0xE8, 0x03, 0x00, 0x00]
//! );
//! let frame = OtaFrame::decode(&reply.zcl_bytes).unwrap();
//! assert!(matches!(
//!     frame.command,
//!     OtaCommand::QueryNextImageResponse(QueryNextImageResponse::Success { image_size: 1000, .. })
//! ));
//! ```

mod addr;
pub mod config;
pub mod control;
mod frame;
pub mod image;
mod installer;
mod notify;
pub mod pacing;
pub mod policy;
pub mod progress;
mod query;
pub mod rate;
mod request;
mod session;
mod status;
mod transfer;
mod upgrade_end;
pub mod vendor_rules;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, warn};

pub use addr::{Destination, DeviceAddr, DeviceKey, NotifyTarget, Outgoing};
pub use config::{
    BlockPeriodUnit, DenyRule, DeviceOverride, ServerConfig, UpgradeTimePolicy, VersionPin,
};
pub use control::{ApplyWindow, ControlState, InstallMode, Withheld};
pub use image::{CatalogRestrictions, ImageKey, ImageReader, OtaImage, Provenance};
pub use installer::{ControlError, InstallOutcome};
pub use policy::{DeviceQuery, NoImageReason, Rejection};
pub use progress::{DeviceStatus, FailureReason, ServerEvent, TransferProgress, TransferState};

pub use crate::zcl::basic::BasicIdentity;

/// How long a page stream waits for the delivery report of its last block before it sends the
/// next one anyway (a report can be lost, or its frame dropped from a full backlog).
pub const PAGE_DELIVERY_FALLBACK: Duration = Duration::from_secs(2);
pub use crate::zcl::{Ieee, ZclStatus};

use pacing::Admission;
use request::{BlockReply, Message, ReplyTo, Request, RequestHeader};
use session::{LastQuery, Pending, Session, after};
use transfer::{PageAsk, Wanted, whole_seconds_at_least_one};

/// The broadcast address used for Image Notify (all devices, sleepy ones via their parents).
pub const BROADCAST_ALL_DEVICES: u16 = 0xFFFF;
/// A broadcast's destination endpoint.
pub const BROADCAST_ENDPOINT: u8 = 0xFF;
/// `upgrade_time` meaning "wait for the server's command".
pub const UPGRADE_TIME_WAIT_FOR_COMMAND: u32 = 0xFFFF_FFFF;
/// The maximum APS payload assumed until the coordinator reports its own (EZSP's usual value).
pub const DEFAULT_MAX_APS_PAYLOAD: u8 = 82;
/// Finished and failed transfers kept for the status socket.
pub const HISTORY_LEN: usize = 256;

#[derive(Debug)]
struct Queued {
    key: Option<DeviceKey>,
    destination: Destination,
    reply_to: ReplyTo,
    message: Message,
}

impl Queued {
    /// Queues `message` as the answer to `session`'s device (keyed `key`), counting it as not
    /// yet polled.
    fn answer(
        transmit: &mut VecDeque<Queued>,
        session: &mut Session,
        key: DeviceKey,
        reply_to: ReplyTo,
        message: Message,
    ) {
        session.unpolled += 1;
        transmit.push_back(Queued {
            key: Some(key),
            destination: Destination::Unicast(session.addr),
            reply_to,
            message,
        });
    }
}

/// The OTA server. See the module docs for how to drive it.
#[derive(Debug)]
pub struct OtaServer {
    config: ServerConfig,
    images: Vec<Arc<OtaImage>>,
    sessions: HashMap<DeviceKey, Session>,
    identities: HashMap<Ieee, BasicIdentity>,
    admission: Admission,
    transmit: VecDeque<Queued>,
    events: VecDeque<ServerEvent>,
    history: VecDeque<TransferProgress>,
    max_aps_payload: u8,
    wall_clock: Option<(Instant, u64)>,
    /// Local time minus UTC, seconds (for the apply window).
    utc_offset_seconds: i32,
    last_broadcast_notify: Option<Instant>,
    next_tsn: u8,
    /// The installer's decisions, and a counter bumped on every change (the daemon saves the
    /// state when it moves).
    control: ControlState,
    control_revision: u64,
    /// When the apply window must be looked at next.
    window_check: WindowCheck,
    /// Mains-powered (true) or battery (false) devices, for the rolling-update order.
    mains_powered: HashMap<Ieee, bool>,
}

/// When [`OtaServer::handle_timeout`] should next look at the apply window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowCheck {
    /// Nothing waits for it.
    Idle,
    /// At the next timeout (something changed).
    Now,
    /// When it opens.
    At(Instant),
}

impl OtaServer {
    /// Replaces the configuration (the daemon's SIGHUP). Transfers in progress keep their image
    /// and offset; new limits and policies apply from the next request. The endpoint is
    /// registered with the coordinator and cannot change while running, so it is kept.
    pub fn set_config(&mut self, mut config: ServerConfig) {
        config.endpoint = self.config.endpoint;
        self.config = config;
        self.window_check = WindowCheck::Now;
    }

    /// A server with no images yet.
    pub fn new(config: ServerConfig) -> Self {
        OtaServer {
            config,
            images: Vec::new(),
            sessions: HashMap::new(),
            identities: HashMap::new(),
            admission: Admission::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            history: VecDeque::new(),
            max_aps_payload: DEFAULT_MAX_APS_PAYLOAD,
            wall_clock: None,
            utc_offset_seconds: 0,
            last_broadcast_notify: None,
            next_tsn: 0,
            control: ControlState::default(),
            control_revision: 0,
            window_check: WindowCheck::Idle,
            mains_powered: HashMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The coordinator's maximum APS payload (EZSP `maximumPayloadLength`, ...).
    pub fn set_max_aps_payload(&mut self, max_aps_payload: u8) {
        self.max_aps_payload = max_aps_payload;
    }

    /// Ties `now` to the wall clock (seconds since the Unix epoch), for maintenance windows.
    pub fn set_wall_clock(&mut self, now: Instant, unix_seconds: u64) {
        if self.wall_clock.is_none() {
            self.window_check = WindowCheck::Now;
        }
        self.wall_clock = Some((now, unix_seconds));
    }

    /// Sets local time minus UTC in seconds (the apply window is in local time). The daemon
    /// sets it with the wall clock, so a change of daylight saving time is followed.
    pub fn set_utc_offset(&mut self, seconds: i32) {
        if seconds != self.utc_offset_seconds {
            self.utc_offset_seconds = seconds;
            self.window_check = WindowCheck::Now;
        }
    }

    /// Records what a device's Basic cluster says it is (model identifier, manufacturer
    /// name, …), for the catalog's model and manufacturer-name restrictions. Until it is
    /// known, images restricted that way are withheld (NO_IMAGE_AVAILABLE); unrestricted
    /// ones are offered as usual.
    pub fn set_device_identity(&mut self, ieee: Ieee, identity: BasicIdentity) {
        // The power source orders a rolling update: mains-powered routers first (issue 14).
        if identity.power_source.is_some() {
            self.set_device_power(ieee, !identity.is_battery());
        }
        self.identities.insert(ieee, identity);
    }

    /// What the Basic cluster said a device is, once read.
    pub fn device_identity(&self, ieee: Ieee) -> Option<&BasicIdentity> {
        self.identities.get(&ieee)
    }

    /// The images currently offered (the catalog's view).
    pub fn images(&self) -> &[Arc<OtaImage>] {
        &self.images
    }

    /// Handles one ZCL frame of cluster 0x0019 received from `source`, unicast to us (a
    /// broadcast request must not be passed in: ZCL answers no broadcast with a Default
    /// Response). Give the device's IEEE address whenever the coordinator knows it (EZSP's
    /// address table, device announces): sessions are keyed by it, so a device keeps its
    /// transfer across a rejoin with a new network address. Undecodable requests get the
    /// Default Response ZCL asks for (MALFORMED_COMMAND, UNSUP_COMMAND; errors are reported
    /// even when the request disabled default responses); frames without a readable header
    /// are dropped.
    pub fn handle_frame(&mut self, source: DeviceAddr, zcl_bytes: &[u8], now: Instant) {
        match frame::decode_request(zcl_bytes) {
            frame::Decoded::Request(header, request) => {
                self.handle_request(
                    source,
                    header,
                    request,
                    Bytes::copy_from_slice(zcl_bytes),
                    now,
                );
            }
            frame::Decoded::Reply(header, status) => {
                debug!(device = %source, ?status, "refusing request");
                self.send_default_response(source, header, status);
            }
            frame::Decoded::Ignore(reason) => {
                debug!(device = %source, reason, "ignoring frame");
            }
        }
    }

    fn send_default_response(
        &mut self,
        source: DeviceAddr,
        header: RequestHeader,
        status: ZclStatus,
    ) {
        if status == ZclStatus::SUCCESS && header.disable_default_response {
            return;
        }
        self.enqueue(
            Some(source.key()),
            Destination::Unicast(source),
            ReplyTo::Request(header),
            Message::DefaultResponse {
                command_id: header.command_id,
                status,
            },
        );
    }

    fn handle_request(
        &mut self,
        source: DeviceAddr,
        header: RequestHeader,
        request: Request,
        raw: Bytes,
        now: Instant,
    ) {
        // Sessions are keyed by the address the coordinator vouches for, never by the
        // requester field of a block or page request: keying some frames of one device by a
        // field it chose and others by its network address would split its session.
        let key = source.key();
        let mut session = match self.sessions.remove(&key) {
            Some(session) => session,
            None => {
                self.make_room_for_a_session();
                Session::new(source, now)
            }
        };
        session.addr = source;
        session.last_heard = now;
        self.process_request(&mut session, key, header, request, raw, now);
        self.sessions.insert(key, session);
    }

    /// Forgets devices while the table is full: first those without a transfer, then any,
    /// the one heard from longest ago first.
    fn make_room_for_a_session(&mut self) {
        while self.sessions.len() >= self.config.max_sessions.max(1) {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| (s.transfer.is_some(), s.last_heard))
                .map(|(key, _)| *key);
            let Some(key) = oldest else {
                return;
            };
            if let Some(session) = self.sessions.remove(&key) {
                warn!(device = %session.addr, "device table full: forgetting the device heard from longest ago");
            }
            self.admission.release(&key);
        }
    }

    fn process_request(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        header: RequestHeader,
        request: Request,
        raw: Bytes,
        now: Instant,
    ) {
        if let Some((reply_to, message)) =
            session.remembered_answer(&raw, now, self.config.retry_window)
        {
            debug!(device = %session.addr, tsn = header.tsn, "retry: answering again");
            Queued::answer(&mut self.transmit, session, key, reply_to, message);
            return;
        }
        if session.is_pending(&raw) {
            debug!(device = %session.addr, tsn = header.tsn, "retry of a queued request");
            return;
        }
        match request {
            Request::ImageBlock { .. } => {
                if session.pending.len() >= self.config.max_pending_per_device {
                    let wait = session.next_block_at.saturating_duration_since(now);
                    let message = Message::ImageBlockResponse(BlockReply::WaitForData {
                        request_time: whole_seconds_at_least_one(wait),
                        // zigpy and ZCL8 always carry the field; 0 is its default.
                        minimum_block_period: Some(session.minimum_block_period.unwrap_or(0)),
                    });
                    self.reply(session, key, header, raw, message, now);
                    return;
                }
                session.pending.push_back(Pending {
                    header,
                    request,
                    raw,
                });
                self.drain(session, key, now);
            }
            Request::ImagePage {
                file,
                offset,
                maximum_data_size,
                page_size,
                response_spacing_ms,
                ..
            } => {
                if session
                    .page
                    .as_ref()
                    .is_some_and(|page| page.raw_request == raw)
                {
                    debug!(device = %session.addr, "retry of the page being streamed");
                    return;
                }
                let spacing = Duration::from_millis(u64::from(response_spacing_ms));
                if let Some(message) = self.start_page(
                    session,
                    key,
                    header,
                    raw.clone(),
                    PageAsk {
                        wanted: Wanted {
                            file,
                            offset,
                            maximum_data_size,
                        },
                        page_size,
                        spacing,
                    },
                    now,
                ) {
                    self.reply(session, key, header, raw, message, now);
                }
                self.pump_page(session, key, now);
            }
            Request::QueryNextImage {
                manufacturer_code,
                image_type,
                current_file_version,
                hardware_version,
            } => {
                let message = self.answer_query(
                    session,
                    LastQuery {
                        manufacturer_code,
                        image_type,
                        current_file_version,
                        hardware_version,
                        offered: None,
                    },
                    now,
                );
                self.reply(session, key, header, raw, message, now);
            }
            Request::UpgradeEnd { status, file } => {
                if let Some(message) =
                    self.answer_upgrade_end(session, key, header, status, file, now)
                {
                    self.reply(session, key, header, raw, message, now);
                }
            }
            Request::QueryDeviceSpecificFile {
                requester,
                manufacturer_code,
                image_type,
                current_file_version,
            } => {
                let message = self.answer_device_specific(
                    session,
                    requester,
                    manufacturer_code,
                    image_type,
                    current_file_version,
                );
                self.reply(session, key, header, raw, message, now);
            }
        }
    }

    /// Queues an answer and remembers it for retries.
    fn reply(
        &mut self,
        session: &mut Session,
        key: DeviceKey,
        header: RequestHeader,
        raw: Bytes,
        message: Message,
        now: Instant,
    ) {
        let reply_to = ReplyTo::Request(header);
        session.remember_answer(raw, reply_to, message.clone(), now);
        Queued::answer(&mut self.transmit, session, key, reply_to, message);
    }

    fn enqueue(
        &mut self,
        key: Option<DeviceKey>,
        destination: Destination,
        reply_to: ReplyTo,
        message: Message,
    ) {
        if let Some(session) = key.and_then(|k| self.sessions.get_mut(&k)) {
            session.unpolled += 1;
        }
        self.transmit.push_back(Queued {
            key,
            destination,
            reply_to,
            message,
        });
    }

    fn take_tsn(&mut self) -> u8 {
        let tsn = self.next_tsn;
        self.next_tsn = self.next_tsn.wrapping_add(1);
        tsn
    }

    /// Handles every deadline that has passed: paced block requests, page blocks, idle and
    /// Upgrade End timeouts, forgotten devices.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.admission.expire(now);
        self.check_window_and_holds(now);
        let keys: Vec<DeviceKey> = self.sessions.keys().copied().collect();
        for key in keys {
            let Some(mut session) = self.sessions.remove(&key) else {
                continue;
            };
            self.drain(&mut session, key, now);
            self.pump_page(&mut session, key, now);
            // Before the transfer is taken out: the idle timeout follows its image's
            // manufacturer, and without the transfer it would follow the device's claim.
            let idle_timeout = self.idle_timeout(&session);
            if let Some(mut transfer) = session.transfer.take() {
                let idle_deadline = after(transfer.last_request_at, idle_timeout);
                let idle = now >= idle_deadline && session.page.is_none();
                let upgrade_end_overdue = transfer
                    .downloaded_at
                    .is_some_and(|at| now >= after(at, self.config.upgrade_end_timeout));
                // A slot needs progress: while others wait, a transfer silent for
                // `slot_idle_while_others_wait` gives up its slot (it keeps its transfer and
                // offset, and still fails at its idle timeout; its next request queues like
                // anyone's).
                let squatting = transfer.state == TransferState::Downloading
                    && session.page.is_none()
                    && self.admission.waiting_len() > 0
                    && self.admission.is_active(&key)
                    && now
                        >= after(
                            transfer.last_request_at,
                            self.config.slot_idle_while_others_wait,
                        );
                // And a slot is a turn, not a tenure: held this long while others wait, it
                // goes to the next in line.
                let turn_over = transfer.state == TransferState::Downloading
                    && self.admission.waiting_len() > 0
                    && self.admission.active_since(&key).is_some_and(|since| {
                        now >= after(since, self.config.max_slot_time_while_others_wait)
                    });
                // And a slot requires progress: below the minimum rate since the slot was
                // granted (or progress last found enough), it goes to the next in line.
                let too_slow = transfer.state == TransferState::Downloading
                    && self.admission.waiting_len() > 0
                    && self.admission.is_active(&key)
                    && self.slot_too_slow(&mut transfer, now);
                if (squatting || turn_over || too_slow) && !idle {
                    debug!(device = %session.addr, squatting, turn_over, too_slow, "slot given up while others wait");
                    session.page = None;
                    self.admission.release(&key);
                }
                match transfer.state {
                    TransferState::Queued if idle => {
                        // It never started: dropped without a history entry.
                        debug!(device = %session.addr, "queued device did not come back");
                        self.admission.release(&key);
                    }
                    TransferState::Downloading if idle => self.end_transfer(
                        &mut session,
                        key,
                        transfer,
                        TransferState::Failed,
                        Some(FailureReason::IdleTimeout),
                    ),
                    TransferState::Waiting if upgrade_end_overdue => self.end_transfer(
                        &mut session,
                        key,
                        transfer,
                        TransferState::Failed,
                        Some(FailureReason::NoUpgradeEnd),
                    ),
                    _ => session.transfer = Some(transfer),
                }
            }
            let forget = session.transfer.is_none()
                && session.pending.is_empty()
                && session.page.is_none()
                && session.unpolled == 0
                && session.awaiting_upgrade_command.is_none()
                && now >= after(session.last_heard, self.config.forget_device_after);
            if forget {
                debug!(device = %session.addr, "forgetting device");
            } else {
                self.sessions.insert(key, session);
            }
        }
    }

    /// The next deadline at which [`OtaServer::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.admission.next_expiry();
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        match self.window_check {
            WindowCheck::Idle => {}
            WindowCheck::Now => {
                if let Some((at, _)) = self.wall_clock {
                    consider(at);
                }
            }
            WindowCheck::At(at) => consider(at),
        }
        for (key, session) in &self.sessions {
            if !session.pending.is_empty() {
                consider(session.next_block_at);
            }
            if let Some(page) = &session.page
                && session.unpolled == 0
            {
                let delivered_or_given_up = page
                    .awaiting_delivery_since
                    .map(|since| after(since, PAGE_DELIVERY_FALLBACK));
                consider(
                    page.next_due
                        .max(delivered_or_given_up.unwrap_or(page.next_due)),
                );
            }
            match &session.transfer {
                Some(t)
                    if matches!(t.state, TransferState::Queued | TransferState::Downloading) =>
                {
                    if session.page.is_none() {
                        consider(after(t.last_request_at, self.idle_timeout(session)));
                        if t.state == TransferState::Downloading
                            && self.admission.waiting_len() > 0
                            && self.admission.is_active(key)
                        {
                            consider(after(
                                t.last_request_at,
                                self.config.slot_idle_while_others_wait,
                            ));
                        }
                    }
                    if let Some(since) = self.admission.active_since(key)
                        && t.state == TransferState::Downloading
                        && self.admission.waiting_len() > 0
                    {
                        consider(after(since, self.config.max_slot_time_while_others_wait));
                        if let Some((at, _)) = t.slot_mark {
                            consider(after(at, self.config.slot_progress_window));
                        }
                    }
                }
                Some(t) if t.state == TransferState::Waiting => {
                    if let Some(at) = t.downloaded_at {
                        consider(after(at, self.config.upgrade_end_timeout));
                    }
                }
                Some(_) => {}
                None => {
                    if session.awaiting_upgrade_command.is_none() {
                        consider(after(session.last_heard, self.config.forget_device_after));
                    }
                }
            }
        }
        next
    }

    /// The coordinator reported a unicast frame to `device` delivered (or finally not): its
    /// page stream, if any, may send the next block ([`ServerConfig::pace_pages_by_delivery`]).
    pub fn on_delivery(&mut self, device: DeviceAddr) {
        if let Some(page) = self
            .sessions
            .get_mut(&device.key())
            .and_then(|session| session.page.as_mut())
        {
            page.awaiting_delivery_since = None;
        }
    }

    /// The next frame for the coordinator to send.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        let queued = self.transmit.pop_front()?;
        if let Some(session) = queued.key.and_then(|k| self.sessions.get_mut(&k)) {
            session.unpolled = session.unpolled.saturating_sub(1);
        }
        let (destination_endpoint, destination) = match queued.destination {
            Destination::Unicast(addr) => (addr.endpoint, Destination::Unicast(addr)),
            Destination::Broadcast(address) => {
                (BROADCAST_ENDPOINT, Destination::Broadcast(address))
            }
        };
        Some(Outgoing {
            destination,
            source_endpoint: self.config.endpoint,
            destination_endpoint,
            zcl_bytes: frame::encode_message(&queued.reply_to, &queued.message),
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }
}
