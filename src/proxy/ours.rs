//! What the [`Relay`] keeps for zigbee-otad (issue 17 "The OTA cluster is ours"; UG100
//! `sendUnicast`, `messageSentHandler`, `incomingMessageHandler`, `lookupEui64ByNodeId`,
//! `stackStatusHandler`; ZCL §2.4 transaction sequence numbers):
//!
//! - incoming OTA cluster (0x0019) messages from devices in [`OtaScope`]: answered by us, never
//!   passed upstream (before v14 a sender whose IEEE address is unknown is looked up first, its
//!   OTA messages held meanwhile, when the scope lists devices);
//! - upstream's own OTA sends to those devices: answered with `DELIVERY_FAILED` and dropped,
//!   with a log line;
//! - our sends, with EZSP message tags neither side has in flight (an upstream send whose tag
//!   collides with one of ours is renumbered and its report numbered back), and their
//!   `messageSentHandler`s, which upstream never sees;
//! - our ZCL requests (identity reads), with transaction numbers upstream has not used lately
//!   for that device; only the answer that matches one exactly is kept, everything else passes;
//! - the device table, from joins, announces and v14 sender addresses (observed, and passed on;
//!   the bookkeeping is in [`super::network`]);
//! - the network: after `NETWORK_UP` we ask the stick for its parameters, addresses and maximum
//!   payload, and say `Up` once answered.

use std::time::Instant;

use tracing::{debug, info, warn};

use super::frames::{self, FrameView};
use super::relay::{Job, Purpose, Relay, RelayEvent};
use crate::config::OtaScope;
use crate::coordinator::ezsp::up::{delivery_outcome, next_free_tag, status_code};
use crate::coordinator::{
    BroadcastMessage, CLUSTER_OTA_UPGRADE, CoordinatorState, DeliveryOutcome, Ieee,
    IncomingMessage, MessageTag, Nwk, PROFILE_HOME_AUTOMATION, PROFILE_ZDO, UnicastMessage,
    ZclRequest,
};
use crate::ezsp::EzspVersion;
use crate::ezsp::command::{
    AddEndpoint, Body, Callback, Command, Frame, IncomingMessageHandler, LookupEui64ByNodeId,
    PermitJoining, Response, SendBroadcast, SendResponse, SendUnicast,
};
use crate::ezsp::frame::FrameId;
use crate::ezsp::status::{EmberStatus, SlStatus, Status};
use crate::ezsp::types::{ApsFrame, ApsOptions, OutgoingMessageType};

/// ZCL transaction numbers remembered per device from upstream's sends.
const RECENT_TSNS: usize = 16;
/// Devices whose recent transaction numbers are remembered.
const TSN_DEVICES: usize = 256;
/// Our ZCL requests waiting for answers at most (identity reads are few).
const MAX_ZCL_REQUESTS: usize = 64;
/// Messages held per sender during its address lookup.
const MAX_HELD: usize = 16;

/// One of our ZCL requests, waiting for its answer.
#[derive(Debug, Clone)]
pub(crate) struct PendingZcl {
    destination: Nwk,
    endpoint: u8,
    cluster: u16,
    /// The transaction number on the air.
    wire_tsn: u8,
    /// The one the daemon chose.
    our_tsn: u8,
    deadline: Instant,
}

impl Relay {
    // -----------------------------------------------------------------------------------------
    // Our sends (the coordinator interface)

    /// Sends a unicast for zigbee-otad; one [`RelayEvent::Delivery`] follows for `tag`.
    pub fn send_unicast(&mut self, tag: MessageTag, mut message: UnicastMessage, now: Instant) {
        let (Some(version), CoordinatorState::Up) = (self.version, self.state) else {
            self.report(tag, DeliveryOutcome::LinkLost);
            return;
        };
        if message.cluster == CLUSTER_OTA_UPGRADE
            && let Some(endpoint) = self.ota_endpoint
        {
            message.src_endpoint = endpoint;
        }
        let Some(ezsp_tag) = self.free_tag(version) else {
            self.report(tag, DeliveryOutcome::LinkLost);
            return;
        };
        let command = Command::SendUnicast(SendUnicast {
            message_type: OutgoingMessageType::DIRECT,
            index_or_destination: message.destination,
            aps_frame: aps_frame(&message, message.aps_ack),
            message_tag: ezsp_tag,
            message_contents: message.payload,
        });
        self.queue_send(tag, ezsp_tag, &command, version, now);
    }

    /// Sends a ZCL request for zigbee-otad (an identity read): its transaction number is
    /// changed if upstream used it lately for that device, and only the answer that matches it
    /// exactly is kept from upstream (and given back with the daemon's number).
    pub fn send_zcl_request(&mut self, tag: MessageTag, request: &ZclRequest, now: Instant) {
        let mut message = request.to_unicast();
        let Some(our_tsn) = request.tsn() else {
            self.report(tag, DeliveryOutcome::Refused { ncp_status: 0 });
            return;
        };
        let recent = self.upstream_tsns.get(&request.destination);
        let taken = |t: u8| {
            recent.is_some_and(|r| r.contains(&t))
                || self
                    .zcl_requests
                    .iter()
                    .any(|p| p.destination == request.destination && p.wire_tsn == t)
        };
        let wire_tsn = (0..=u8::MAX)
            .map(|step| our_tsn.wrapping_add(step.wrapping_mul(37)))
            .find(|t| !taken(*t))
            .unwrap_or(our_tsn);
        if let Some(slot) = message.payload.get_mut(zcl_tsn_offset(&request.zcl_frame)) {
            *slot = wire_tsn;
        }
        if self.zcl_requests.len() >= MAX_ZCL_REQUESTS {
            self.zcl_requests.remove(0);
        }
        self.zcl_requests.push(PendingZcl {
            destination: request.destination,
            endpoint: request.dst_endpoint,
            cluster: request.cluster,
            wire_tsn,
            our_tsn,
            deadline: now + self.config.delivery_timeout,
        });
        self.send_unicast(tag, message, now);
    }

    /// Sends a broadcast for zigbee-otad; one [`RelayEvent::Delivery`] follows for `tag`.
    pub fn send_broadcast(&mut self, tag: MessageTag, message: BroadcastMessage, now: Instant) {
        let (Some(version), CoordinatorState::Up) = (self.version, self.state) else {
            self.report(tag, DeliveryOutcome::LinkLost);
            return;
        };
        let Some(ezsp_tag) = self.free_tag(version) else {
            self.report(tag, DeliveryOutcome::LinkLost);
            return;
        };
        let unicast = UnicastMessage {
            destination: message.destination,
            src_endpoint: self.ota_endpoint.unwrap_or(message.src_endpoint),
            dst_endpoint: message.dst_endpoint,
            profile: message.profile,
            cluster: message.cluster,
            payload: Vec::new(),
            aps_ack: false,
        };
        let command = Command::SendBroadcast(SendBroadcast {
            alias: Nwk::NULL,
            destination: message.destination,
            nwk_sequence: 0,
            aps_frame: aps_frame(&unicast, false),
            radius: message.radius,
            message_tag: ezsp_tag,
            message_contents: message.payload,
        });
        self.queue_send(tag, ezsp_tag, &command, version, now);
    }

    /// Opens (or closes, with 0) the network for joining.
    pub fn permit_joining(&mut self, seconds: u8, now: Instant) {
        let command = Command::PermitJoining(PermitJoining { duration: seconds });
        self.queue_ours(&command, Purpose::PermitJoining, now);
    }

    fn queue_send(
        &mut self,
        tag: MessageTag,
        ezsp_tag: u16,
        command: &Command,
        version: EzspVersion,
        now: Instant,
    ) {
        let mut frame = Vec::new();
        if let Err(e) = command.encode_frame(version, 0, &mut frame) {
            warn!("send {tag:?} not encodable: {e}");
            self.report(tag, DeliveryOutcome::Refused { ncp_status: 0 });
            return;
        }
        self.in_flight
            .insert(ezsp_tag, (tag, now + self.config.delivery_timeout));
        self.our_queue.push_back(Job::Ours {
            frame,
            purpose: Purpose::Send { ezsp_tag },
        });
        self.handle_timeout(now);
    }

    pub(super) fn queue_ours(&mut self, command: &Command, purpose: Purpose, now: Instant) {
        let Some(version) = self.version else {
            debug!(
                "{:?} not sent: the stick is not negotiated",
                command.frame_id()
            );
            return;
        };
        let mut frame = Vec::new();
        match command.encode_frame(version, 0, &mut frame) {
            Ok(()) => self.our_queue.push_back(Job::Ours { frame, purpose }),
            Err(e) => warn!("{:?} not encodable: {e}", command.frame_id()),
        }
        self.handle_timeout(now);
    }

    /// A message tag neither our sends nor upstream's have in flight.
    fn free_tag(&mut self, version: EzspVersion) -> Option<u16> {
        let (ours, upstreams) = (&self.in_flight, &self.upstream_tags);
        next_free_tag(&mut self.next_ezsp_tag, version, |tag| {
            ours.contains_key(&tag) || upstreams.contains_key(&tag)
        })
    }

    fn report(&mut self, tag: MessageTag, outcome: DeliveryOutcome) {
        self.emit(RelayEvent::Delivery { tag, outcome });
    }

    // -----------------------------------------------------------------------------------------
    // Upstream's frames we look into

    /// Upstream's `sendUnicast`/`sendBroadcast`: true when we answered it ourselves (an OTA
    /// send to one of our devices); otherwise its tag is kept apart from ours.
    pub(super) fn upstream_send(
        &mut self,
        view: &FrameView,
        frame: &mut [u8],
        version: EzspVersion,
        now: Instant,
    ) -> bool {
        let _ = now;
        let (cluster, destination, payload) = match Frame::decode(version, frame) {
            Ok(Frame {
                body: Body::Command(Command::SendUnicast(send)),
                ..
            }) => (
                send.aps_frame.cluster_id,
                Some(send.index_or_destination),
                send.message_contents,
            ),
            Ok(Frame {
                body: Body::Command(Command::SendBroadcast(send)),
                ..
            }) => (send.aps_frame.cluster_id, None, send.message_contents),
            _ => return false,
        };
        let ours = match destination {
            Some(nwk) => self.covers(nwk, self.addresses.ieee(nwk)),
            None => self.config.scope == OtaScope::All,
        };
        if cluster == CLUSTER_OTA_UPGRADE && ours {
            self.stats.upstream_ota_dropped += 1;
            info!(
                "upstream's OTA send to {} dropped: zigbee-otad serves that device's OTA cluster",
                destination.map_or("every device".to_owned(), |n| n.to_string())
            );
            let status = if version.uses_sl_status() {
                Status::Sl(SlStatus::ZIGBEE_DELIVERY_FAILED)
            } else {
                Status::Ember(EmberStatus::DELIVERY_FAILED)
            };
            let answer = SendResponse {
                status,
                sequence: 0,
            };
            let response = if view.frame_id == FrameId::SEND_UNICAST {
                Response::SendUnicast(answer)
            } else {
                Response::SendBroadcast(answer)
            };
            let mut out = Vec::new();
            if response
                .encode_frame(version, view.sequence, &mut out)
                .is_ok()
            {
                self.answer_upstream(out);
            }
            return true;
        }
        if let Some(nwk) = destination
            && let Ok((header, _)) = crate::zcl::ZclHeader::decode(&payload)
        {
            self.remember_upstream_tsn(nwk, header.tsn);
        }
        if let Some(tag) = frames::read_tag(frame, view.frame_id, version) {
            let mut on_stick = tag;
            if self.in_flight.contains_key(&tag) || self.upstream_tags.contains_key(&tag) {
                match self.free_tag(version) {
                    Some(free) if frames::write_tag(frame, view.frame_id, version, free) => {
                        debug!("upstream's message tag {tag} is ours in flight: sent as {free}");
                        on_stick = free;
                    }
                    _ => {}
                }
            }
            self.upstream_tags.insert(on_stick, tag);
        }
        false
    }

    fn remember_upstream_tsn(&mut self, nwk: Nwk, tsn: u8) {
        if !self.upstream_tsns.contains_key(&nwk) && self.upstream_tsns.len() >= TSN_DEVICES {
            self.upstream_tsns.clear();
        }
        let recent = self.upstream_tsns.entry(nwk).or_default();
        if recent.len() >= RECENT_TSNS {
            recent.pop_front();
        }
        recent.push_back(tsn);
    }

    /// Upstream's first `networkInit`/`formNetwork` after a reset: true when our endpoint was
    /// queued ahead of it (none of upstream's endpoints takes the OTA cluster).
    pub(super) fn add_our_endpoint(&mut self, version: EzspVersion) -> bool {
        if let Some(theirs) = self
            .upstream_endpoints
            .iter()
            .find(|e| e.input_clusters.contains(&CLUSTER_OTA_UPGRADE))
        {
            self.ota_endpoint = Some(theirs.endpoint);
            return false;
        }
        if self.config.scope == OtaScope::None {
            return false;
        }
        let taken = |e: u8| self.upstream_endpoints.iter().any(|u| u.endpoint == e);
        let Some(endpoint) = std::iter::once(self.config.endpoint)
            .chain(2..=240)
            .find(|e| (1..=240).contains(e) && !taken(*e))
        else {
            return false;
        };
        let command = Command::AddEndpoint(AddEndpoint {
            endpoint,
            profile_id: PROFILE_HOME_AUTOMATION,
            device_id: 0x0005,
            device_version: 0,
            input_clusters: vec![CLUSTER_OTA_UPGRADE],
            output_clusters: Vec::new(),
        });
        let mut frame = Vec::new();
        if command.encode_frame(version, 0, &mut frame).is_err() {
            return false;
        }
        info!("upstream declared no OTA endpoint: adding endpoint {endpoint} for the OTA server");
        self.ota_endpoint = Some(endpoint);
        self.preface.push_back(Job::Ours {
            frame,
            purpose: Purpose::AddEndpoint,
        });
        true
    }

    // -----------------------------------------------------------------------------------------
    // The stick's frames for us

    /// A callback from the stick: ours, or looked at and passed upstream.
    pub(super) fn callback(&mut self, view: &FrameView, mut frame: Vec<u8>, now: Instant) {
        let Some(version) = self.version else {
            self.pass_callback_upstream(frame);
            return;
        };
        let decoded = match Frame::decode(version, &frame) {
            Ok(Frame {
                body: Body::Callback(callback),
                ..
            }) => callback,
            _ => {
                self.pass_callback_upstream(frame);
                return;
            }
        };
        match decoded {
            Callback::MessageSentHandler(sent) => {
                if let Some((tag, _)) = self.in_flight.remove(&sent.message_tag) {
                    self.stats.reports_kept += 1;
                    self.report(tag, delivery_outcome(&sent));
                    return;
                }
                if let Some(theirs) = self.upstream_tags.remove(&sent.message_tag)
                    && theirs != sent.message_tag
                {
                    frames::write_tag(&mut frame, view.frame_id, version, theirs);
                }
            }
            Callback::IncomingMessageHandler(incoming) => {
                let ours = self.incoming(incoming, &frame, now);
                if ours {
                    return;
                }
            }
            Callback::StackStatusHandler { status } => {
                if status.means(SlStatus::ZIGBEE_NETWORK_UP) {
                    self.network_came_up(now);
                } else if status.means(SlStatus::ZIGBEE_NETWORK_DOWN) {
                    self.network_down();
                }
            }
            other => {
                if self.addresses.join_callback(&other, now) {
                    self.report_address_news();
                }
            }
        }
        self.pass_callback_upstream(frame);
    }

    /// An incoming message: true when it is ours (kept from upstream, or held for a lookup).
    fn incoming(&mut self, incoming: IncomingMessageHandler, frame: &[u8], now: Instant) -> bool {
        let mut message = self.addresses.hear(incoming, now, now);
        self.report_address_news();
        let source = message.source;
        if self.answers_our_request(&mut message) {
            self.stats.answers_kept += 1;
            self.emit(RelayEvent::Incoming(message));
            return true;
        }
        if message.cluster != CLUSTER_OTA_UPGRADE || message.profile == PROFILE_ZDO {
            return false;
        }
        if let Some(held) = self.held.get_mut(&source) {
            if held.len() < MAX_HELD {
                held.push((frame.to_vec(), message));
            }
            return true;
        }
        if message.ieee.is_none() && self.config.scope.needs_ieee() {
            let lookup = Command::LookupEui64ByNodeId(LookupEui64ByNodeId { node_id: source });
            self.held.insert(source, vec![(frame.to_vec(), message)]);
            self.queue_ours(&lookup, Purpose::Lookup(source), now);
            return true;
        }
        self.take_or_pass(frame.to_vec(), message)
    }

    /// An OTA message whose sender is decided: ours (to the daemon) or upstream's.
    fn take_or_pass(&mut self, frame: Vec<u8>, message: IncomingMessage) -> bool {
        if self.covers(message.source, message.ieee) {
            self.stats.ota_intercepted += 1;
            self.emit(RelayEvent::Incoming(message));
            true
        } else {
            let _ = frame;
            false
        }
    }

    fn covers(&self, nwk: Nwk, ieee: Option<Ieee>) -> bool {
        self.config
            .scope
            .covers(ieee.or_else(|| self.addresses.ieee(nwk)))
    }

    /// True (and the transaction number given back) when `message` answers one of our ZCL
    /// requests exactly: same device, endpoint and cluster, our number, server to client.
    fn answers_our_request(&mut self, message: &mut IncomingMessage) -> bool {
        let Ok((header, _)) = crate::zcl::ZclHeader::decode(&message.payload) else {
            return false;
        };
        if message.broadcast || header.direction != crate::zcl::Direction::SERVER_TO_CLIENT {
            return false;
        }
        let Some(index) = self.zcl_requests.iter().position(|p| {
            p.destination == message.source
                && p.endpoint == message.src_endpoint
                && p.cluster == message.cluster
                && p.wire_tsn == header.tsn
        }) else {
            return false;
        };
        let pending = self.zcl_requests.remove(index);
        let offset = zcl_tsn_offset(&message.payload);
        if let Some(slot) = message.payload.get_mut(offset) {
            *slot = pending.our_tsn;
        }
        true
    }

    /// The answer to one of our commands.
    pub(super) fn our_response(
        &mut self,
        purpose: Purpose,
        view: &FrameView,
        frame: &[u8],
        now: Instant,
    ) {
        let response = self.version.and_then(|v| match Frame::decode(v, frame) {
            Ok(Frame {
                body: Body::Response(r),
                ..
            }) => Some(r),
            _ => None,
        });
        let Some(response) = response else {
            debug!(
                "our {purpose:?} got an unreadable answer {:?}",
                view.frame_id
            );
            self.unanswered(purpose);
            return;
        };
        match (purpose, response) {
            (Purpose::Send { ezsp_tag }, response) => {
                let status = match response {
                    Response::SendUnicast(r) | Response::SendBroadcast(r) => r.status,
                    Response::InvalidCommand { status } => status,
                    _ => return,
                };
                if !status.is_success()
                    && let Some((tag, _)) = self.in_flight.remove(&ezsp_tag)
                {
                    self.report(
                        tag,
                        DeliveryOutcome::Refused {
                            ncp_status: status_code(status),
                        },
                    );
                }
            }
            (Purpose::Lookup(source), Response::LookupEui64ByNodeId(found)) => {
                let ieee = found.status.is_success().then_some(found.eui64);
                if let Some(ieee) = ieee {
                    self.addresses.learn(source, ieee);
                    self.report_address_news();
                }
                self.release_held(source, ieee);
            }
            (Purpose::AddEndpoint, response) => match response.status() {
                Some(s) if s.is_success() => debug!("our OTA endpoint is registered"),
                other => warn!("the stick refused our OTA endpoint: {other:?}"),
            },
            (Purpose::Query(_), response) => self.network_answer(response, now),
            (Purpose::PermitJoining, response) => {
                info!("permitJoining: {:?}", response.status());
            }
            (purpose, other) => debug!("our {purpose:?} answered by {:?}", other.frame_id()),
        }
    }

    /// One of our commands got no answer.
    pub(super) fn unanswered(&mut self, purpose: Purpose) {
        match purpose {
            Purpose::Send { ezsp_tag } => {
                if let Some((tag, _)) = self.in_flight.remove(&ezsp_tag) {
                    self.report(tag, DeliveryOutcome::TimedOut);
                }
            }
            Purpose::Lookup(source) => self.release_held(source, None),
            other => debug!("our {other:?} got no answer"),
        }
    }

    fn release_held(&mut self, source: Nwk, ieee: Option<Ieee>) {
        for (frame, mut message) in self.held.remove(&source).unwrap_or_default() {
            message.ieee = message.ieee.or(ieee);
            if !self.take_or_pass(frame.clone(), message) {
                self.pass_callback_upstream(frame);
            }
        }
    }

    /// Sends and requests past their deadline.
    pub(super) fn expire(&mut self, now: Instant) {
        let mut late: Vec<(u16, MessageTag)> = self
            .in_flight
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(ezsp_tag, (tag, _))| (*ezsp_tag, *tag))
            .collect();
        late.sort_by_key(|(_, tag)| *tag);
        for (ezsp_tag, tag) in late {
            self.in_flight.remove(&ezsp_tag);
            self.report(tag, DeliveryOutcome::TimedOut);
        }
        self.zcl_requests.retain(|p| p.deadline > now);
    }

    pub(super) fn next_expiry(&self) -> Option<Instant> {
        let sends = self.in_flight.values().map(|(_, d)| *d).min();
        let requests = self.zcl_requests.iter().map(|p| p.deadline).min();
        sends.into_iter().chain(requests).min()
    }

    /// Every send of ours is lost with the stick's state.
    pub(super) fn lose_our_sends(&mut self) {
        let mut lost: Vec<MessageTag> = self.in_flight.drain().map(|(_, (t, _))| t).collect();
        lost.sort();
        for tag in lost {
            self.report(tag, DeliveryOutcome::LinkLost);
        }
        self.zcl_requests.clear();
        let held: Vec<Nwk> = self.held.keys().copied().collect();
        for source in held {
            self.release_held(source, None);
        }
    }
}

fn aps_frame(message: &UnicastMessage, aps_ack: bool) -> ApsFrame {
    ApsFrame {
        profile_id: message.profile,
        cluster_id: message.cluster,
        source_endpoint: message.src_endpoint,
        destination_endpoint: message.dst_endpoint,
        options: if aps_ack {
            ApsOptions(ApsOptions::RETRY.0 | ApsOptions::ENABLE_ROUTE_DISCOVERY.0)
        } else {
            ApsOptions::ENABLE_ROUTE_DISCOVERY
        },
        group_id: 0,
        sequence: 0,
    }
}

/// Where a ZCL frame keeps its transaction number: after the frame control, and after the
/// manufacturer code when the frame control says there is one (ZCL §2.4.1).
fn zcl_tsn_offset(zcl_frame: &[u8]) -> usize {
    match zcl_frame.first() {
        Some(control) if control & 0x04 != 0 => 3,
        _ => 1,
    }
}
