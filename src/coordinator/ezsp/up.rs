//! The host while up: sends and their delivery reports, callbacks, address lookups (UG100
//! `sendUnicast`, `messageSentHandler`, `incomingMessageHandler`, `lookupEui64ByNodeId`).
//!
//! Every [`MessageTag`] handed in gets exactly one [`HostEvent::Delivery`]: the NCP's refusal
//! (the `sendUnicast` status, e.g. `MAX_MESSAGE_LIMIT_REACHED`), its `messageSentHandler`, a
//! missing response or report ([`DeliveryOutcome::TimedOut`]), or a lost link
//! ([`DeliveryOutcome::LinkLost`], from [`EzspHost::fail`]). Before v14 the incoming callback
//! carries no EUI-64: for a sender the table does not know, the host asks the NCP once and
//! holds that sender's messages, in order, until it answers.

use std::time::Instant;

use tracing::{debug, warn};

use super::addresses::AddressNews;
use super::host::{EzspHost, HostEvent, InFlight, LatencySample, RequestFailed, Trouble};
use super::startup::Phase;
use crate::coordinator::{
    AnswerTiming, BroadcastMessage, DeliveryOutcome, Ieee, MessageTag, Nwk, PROFILE_ZDO,
    UnicastMessage,
};
use crate::ezsp::EzspVersion;
use crate::ezsp::command::{
    Callback, Command, IncomingMessageHandler, LookupEui64ByNodeId, MessageSentHandler,
    PermitJoining, Response, SendBroadcast, SendUnicast,
};
use crate::ezsp::status::{SlStatus, Status};
use crate::ezsp::types::{ApsFrame, ApsOptions, OutgoingMessageType};

impl EzspHost {
    /// Sends a unicast; `timing` stamps an answer for the latency figures. Its outcome comes as
    /// one [`HostEvent::Delivery`] for `tag`. Call only while [`EzspHost::accepts_commands`];
    /// otherwise it is reported refused or lost at once.
    pub fn send_unicast(
        &mut self,
        tag: MessageTag,
        message: UnicastMessage,
        timing: Option<AnswerTiming>,
        now: Instant,
    ) {
        let aps_frame = ApsFrame {
            profile_id: message.profile,
            cluster_id: message.cluster,
            source_endpoint: message.src_endpoint,
            destination_endpoint: message.dst_endpoint,
            options: if message.aps_ack {
                ApsOptions(ApsOptions::RETRY.0 | ApsOptions::ENABLE_ROUTE_DISCOVERY.0)
            } else {
                ApsOptions::ENABLE_ROUTE_DISCOVERY
            },
            group_id: 0,
            sequence: self.take_aps_sequence(),
        };
        let Some(ezsp_tag) = self.allocate_ezsp_tag() else {
            self.report(tag, DeliveryOutcome::LinkLost);
            return;
        };
        let command = Command::SendUnicast(SendUnicast {
            message_type: OutgoingMessageType::DIRECT,
            index_or_destination: message.destination,
            aps_frame,
            message_tag: ezsp_tag,
            message_contents: message.payload,
        });
        if let (Some(sequence), Some(timing)) =
            (self.send_tracked(tag, ezsp_tag, &command, now), timing)
        {
            self.emit(HostEvent::AnswerLatency(LatencySample::Host(
                timing
                    .answer_ready_at
                    .saturating_duration_since(timing.request_read_at),
            )));
            self.stamp_answer(sequence, timing.request_read_at);
        }
        self.drive(now);
    }

    /// Sends a broadcast; its outcome comes as one [`HostEvent::Delivery`] for `tag`.
    pub fn send_broadcast(&mut self, tag: MessageTag, message: BroadcastMessage, now: Instant) {
        let aps_frame = ApsFrame {
            profile_id: message.profile,
            cluster_id: message.cluster,
            source_endpoint: message.src_endpoint,
            destination_endpoint: message.dst_endpoint,
            options: ApsOptions::NONE,
            group_id: 0,
            sequence: self.take_aps_sequence(),
        };
        let Some(ezsp_tag) = self.allocate_ezsp_tag() else {
            self.report(tag, DeliveryOutcome::LinkLost);
            return;
        };
        let command = Command::SendBroadcast(SendBroadcast {
            alias: Nwk::NULL,
            destination: message.destination,
            nwk_sequence: 0,
            aps_frame,
            radius: message.radius,
            message_tag: ezsp_tag,
            message_contents: message.payload,
        });
        self.send_tracked(tag, ezsp_tag, &command, now);
        self.drive(now);
    }

    /// Opens (or closes, with 0) the network for joining.
    pub fn permit_joining(&mut self, seconds: u8, now: Instant) {
        if !matches!(self.phase, Phase::Up) {
            warn!("permitJoining({seconds}) not sent: not up");
            return;
        }
        let command = Command::PermitJoining(PermitJoining { duration: seconds });
        if let Err(e) = self.session.send(&command, now) {
            warn!("permitJoining({seconds}) not sent: {e}");
        }
        self.drive(now);
    }

    fn report(&mut self, tag: MessageTag, outcome: DeliveryOutcome) {
        self.emit(HostEvent::Delivery { tag, outcome });
    }

    /// Queues a send and tracks it; a refusal is reported at once. Its EZSP sequence.
    fn send_tracked(
        &mut self,
        tag: MessageTag,
        ezsp_tag: u16,
        command: &Command,
        now: Instant,
    ) -> Option<u8> {
        if !matches!(self.phase, Phase::Up) {
            self.report(tag, DeliveryOutcome::LinkLost);
            return None;
        }
        match self.session.send(command, now) {
            Ok(sequence) => {
                self.send_sequences.insert(sequence, ezsp_tag);
                self.in_flight.insert(
                    ezsp_tag,
                    InFlight {
                        tag,
                        deadline: now + self.config.delivery_timeout,
                    },
                );
                Some(sequence)
            }
            Err(e) => {
                warn!("send {tag:?} not queued: {e}");
                self.report(
                    tag,
                    DeliveryOutcome::Refused {
                        ncp_status: SlStatus::NO_MORE_RESOURCE.0,
                    },
                );
                None
            }
        }
    }

    /// A message tag not in flight (see [`next_free_tag`]); `None` before negotiation.
    fn allocate_ezsp_tag(&mut self) -> Option<u16> {
        let version = self.session.version()?;
        let in_flight = &self.in_flight;
        next_free_tag(&mut self.next_ezsp_tag, version, |tag| {
            in_flight.contains_key(&tag)
        })
    }

    fn take_aps_sequence(&mut self) -> u8 {
        let sequence = self.next_aps_sequence;
        self.next_aps_sequence = sequence.wrapping_add(1);
        sequence
    }

    /// Reports every send whose deadline is at or before `cutoff` as timed out.
    pub(super) fn expire_before(&mut self, cutoff: Instant, now: Instant) {
        let mut expired: Vec<(u16, InFlight)> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= cutoff)
            .map(|(t, f)| (*t, *f))
            .collect();
        expired.sort_by_key(|(_, f)| f.tag);
        for (ezsp_tag, flight) in expired {
            self.in_flight.remove(&ezsp_tag);
            self.send_sequences.retain(|_, t| *t != ezsp_tag);
            self.report(flight.tag, DeliveryOutcome::TimedOut);
        }
        let _ = now;
    }

    /// A command sent while up got no response (timed out, undecodable or aborted).
    pub(super) fn unanswered(&mut self, sequence: u8, failure: RequestFailed, now: Instant) {
        debug!("EZSP command with sequence {sequence} got no response ({failure})");
        if let Some(source) = self.lookups.remove(&sequence) {
            self.release_held(source, None, now);
        }
        if self.keepalive == Some(sequence) {
            self.keepalive = None;
            self.trouble = Some(Trouble::LinkFailed("keepalive nop unanswered".into()));
        }
        if let Some(request) = self.requests.remove(&sequence) {
            self.emit(HostEvent::Response {
                request,
                outcome: Err(failure),
            });
        }
        if let Some(ezsp_tag) = self.send_sequences.remove(&sequence)
            && let Some(flight) = self.in_flight.remove(&ezsp_tag)
        {
            self.report(flight.tag, DeliveryOutcome::TimedOut);
        }
    }

    /// Responses of commands sent while up (sends, lookups, keepalives, submitted commands).
    pub(super) fn late_response(&mut self, sequence: u8, response: Response, now: Instant) {
        if let Some(source) = self.lookups.remove(&sequence) {
            let ieee = match response {
                Response::LookupEui64ByNodeId(found) if found.status.is_success() => {
                    Some(found.eui64)
                }
                _ => None,
            };
            self.release_held(source, ieee, now);
            return;
        }
        if self.keepalive == Some(sequence) {
            self.keepalive = None;
            if let Response::InvalidCommand { status } = response {
                // Typically VERSION_NOT_SET: the NCP rebooted and we missed its RSTACK.
                self.trouble = Some(Trouble::NcpReset(format!(
                    "keepalive nop answered with invalidCommand {status:?}"
                )));
            }
            return;
        }
        if let Some(request) = self.requests.remove(&sequence) {
            self.emit(HostEvent::Response {
                request,
                outcome: Ok(response),
            });
            return;
        }
        let Some(ezsp_tag) = self.send_sequences.remove(&sequence) else {
            if let Some(status) = response.status().filter(|s| !s.is_success()) {
                warn!("{:?} failed: {status:?}", response.frame_id());
            }
            return;
        };
        let status = match &response {
            Response::SendUnicast(r) | Response::SendBroadcast(r) => r.status,
            Response::InvalidCommand { status } => *status,
            other => {
                debug!("unexpected response to a send: {other:?}");
                return;
            }
        };
        if status.is_success() {
            return; // messageSentHandler will tell how it went.
        }
        if let Some(flight) = self.in_flight.remove(&ezsp_tag) {
            self.report(
                flight.tag,
                DeliveryOutcome::Refused {
                    ncp_status: status_code(status),
                },
            );
        }
    }

    pub(super) fn callback(&mut self, callback: Callback, now: Instant) {
        match callback {
            Callback::StackStatusHandler { status } => {
                if status.means(SlStatus::ZIGBEE_NETWORK_UP) {
                    if self.state == crate::coordinator::CoordinatorState::NetworkDown {
                        self.set_state(crate::coordinator::CoordinatorState::Up);
                    }
                    self.network_came_up(now);
                } else if status.means(SlStatus::ZIGBEE_NETWORK_DOWN) {
                    self.network_up = false;
                    if self.state == crate::coordinator::CoordinatorState::Up {
                        self.set_state(crate::coordinator::CoordinatorState::NetworkDown);
                    }
                } else {
                    debug!("stack status {status:?}");
                }
            }
            Callback::MessageSentHandler(sent)
                if self.in_flight.contains_key(&sent.message_tag) =>
            {
                self.message_sent(sent);
            }
            Callback::IncomingMessageHandler(incoming) => self.incoming(incoming, now),
            other if self.addresses.join_callback(&other, now) => self.report_address_news(),
            other => {
                debug!("callback not consumed: {:?}", other.frame_id());
                self.emit(HostEvent::Callback(other));
            }
        }
    }

    fn message_sent(&mut self, sent: MessageSentHandler) {
        let Some(flight) = self.in_flight.remove(&sent.message_tag) else {
            return;
        };
        self.send_sequences.retain(|_, t| *t != sent.message_tag);
        self.report(flight.tag, delivery_outcome(&sent));
    }

    fn incoming(&mut self, incoming: IncomingMessageHandler, now: Instant) {
        let message = self.addresses.hear(incoming, self.last_read_at, now);
        self.report_address_news();
        let source = message.source;
        if let Some(held) = self.held.get_mut(&source) {
            held.push(message);
            return;
        }
        if message.ieee.is_none() && message.profile != PROFILE_ZDO {
            let lookup = Command::LookupEui64ByNodeId(LookupEui64ByNodeId { node_id: source });
            if let Ok(sequence) = self.session.send(&lookup, now) {
                self.lookups.insert(sequence, source);
                self.held.insert(source, vec![message]);
                return;
            }
        }
        self.emit(HostEvent::Incoming(message));
    }

    /// Delivers the messages held for `source`'s address lookup, with `ieee` when found.
    pub(super) fn release_held(&mut self, source: Nwk, ieee: Option<Ieee>, now: Instant) {
        let ieee = self.addresses.sender_ieee(source, ieee, now);
        self.report_address_news();
        for mut message in self.held.remove(&source).unwrap_or_default() {
            message.ieee = message.ieee.or(ieee);
            self.emit(HostEvent::Incoming(message));
        }
    }

    /// Reports what the device table learned.
    fn report_address_news(&mut self) {
        while let Some(news) = self.addresses.poll_news() {
            self.emit(match news {
                AddressNews::TableChanged => HostEvent::DeviceTableChanged,
                AddressNews::Joined { nwk, ieee } => HostEvent::DeviceJoined { nwk, ieee },
            });
        }
    }
}

/// The next message tag that `taken` does not hold, counting on from `next` (which moves on):
/// 1..=255 before v14 (u8 tags), 1..=0xFFFF from v14. `None` when 256 tries find none (the
/// callers keep fewer than 255 tags taken, so one is always free).
pub fn next_free_tag(
    next: &mut u16,
    version: EzspVersion,
    taken: impl Fn(u16) -> bool,
) -> Option<u16> {
    let max = if version.uses_sl_status() {
        u16::MAX
    } else {
        u16::from(u8::MAX)
    };
    for _ in 0..=u16::from(u8::MAX) {
        let candidate = *next;
        *next = if candidate >= max { 1 } else { candidate + 1 };
        if !taken(candidate) {
            return Some(candidate);
        }
    }
    None
}

/// How a `messageSentHandler` says a send ended.
pub fn delivery_outcome(sent: &MessageSentHandler) -> DeliveryOutcome {
    if sent.status.is_success() {
        DeliveryOutcome::Delivered
    } else {
        DeliveryOutcome::Failed {
            ncp_status: status_code(sent.status),
        }
    }
}

/// An EZSP status widened to the v14+ 32-bit form.
pub fn status_code(status: Status) -> u32 {
    match status.to_sl() {
        Some(sl) => sl.0,
        None => match status {
            Status::Ember(s) => u32::from(s.0),
            Status::Ezsp(s) => u32::from(s.0),
            Status::Sl(s) => s.0,
        },
    }
}
