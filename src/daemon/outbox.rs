//! The outbox: every frame the OTA server wants sent, from the moment it is produced until the
//! coordinator has reported its delivery (sans-IO: frames, send results, delivery reports and
//! `now` in; the next frame to send and a deadline out). ZCL §11.13 leaves retries to the
//! client (a device asks again after its own timeout); this only saves it that wait.
//!
//! It owns three queues:
//! * **held**: frames not yet handed to the coordinator, in order, at most [`MAX_HELD_FRAMES`]
//!   and at most [`MAX_HELD_PER_DEVICE`] for one device (beyond its share a device's own frames
//!   are dropped; a full backlog drops a frame of the device holding most of it, never another
//!   device's; issue 18);
//! * **in flight**: unicasts the coordinator took and has not reported on, at most
//!   [`MAX_UNICASTS_IN_FLIGHT`] — the coordinator's own limit, so the coordinator never has to
//!   queue or refuse what the outbox sends; a unicast beyond it waits in `held`;
//! * **refused**: unicasts the NCP refused (its transmit queue was full): each goes again when
//!   a delivery report says a slot came free, or at once when nothing is in flight.
//!
//! A unicast whose delivery failed on the radio is sent once more at once
//! ([`MAX_SENDS_PER_FRAME`] in all). A unicast with no report after [`REPORT_TIMEOUT`] (the
//! coordinator reports its own time-outs well before) frees its slot.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::coordinator::{
    AnswerTiming, DeliveryOutcome, MAX_UNICASTS_IN_FLIGHT, MessageTag, SendError,
};
use crate::server::{Destination, Outgoing};

/// Frames held while the coordinator cannot take them (resetting, in-flight limit reached).
pub const MAX_HELD_FRAMES: usize = 1024;
/// Most frames one device may have held: a full share drops that device's frames, never
/// another's.
pub const MAX_HELD_PER_DEVICE: usize = MAX_HELD_FRAMES / 8;
/// A frame whose delivery fails is sent at most this many times in all.
pub const MAX_SENDS_PER_FRAME: u8 = 2;
/// A unicast with no delivery report after this long frees its in-flight slot.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// A frame waiting for the coordinator.
#[derive(Debug, Clone)]
pub struct Frame {
    /// What to send.
    pub outgoing: Outgoing,
    /// When the request it answers was read from the port and the answer was ready (for the
    /// driver's latency figures); `None` for frames that answer nothing (Image Notify) and for
    /// resends.
    pub timing: Option<AnswerTiming>,
    /// How many times it was already sent.
    times_sent: u8,
}

impl Frame {
    fn resend(outgoing: Outgoing, times_sent: u8) -> Self {
        Frame {
            outgoing,
            timing: None,
            times_sent,
        }
    }

    fn is_unicast(&self) -> bool {
        matches!(self.outgoing.destination, Destination::Unicast(_))
    }
}

#[derive(Debug)]
struct InFlight {
    outgoing: Outgoing,
    times_sent: u8,
    sent_at: Instant,
}

/// What became of a frame handed to the coordinator ([`Outbox::sent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Taken (or dropped for good): send the next one.
    Next,
    /// The coordinator cannot take frames now: the frame is held again; stop until the next
    /// wake-up.
    Stop,
}

/// The outbox (see the module docs).
#[derive(Debug, Default)]
pub struct Outbox {
    held: VecDeque<Frame>,
    in_flight: HashMap<MessageTag, InFlight>,
    refused: VecDeque<(Outgoing, u8)>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Outbox::default()
    }

    /// Queues a frame from the server, behind the frames already held.
    pub fn push(&mut self, outgoing: Outgoing, timing: Option<AnswerTiming>) {
        let own = self
            .held
            .iter()
            .filter(|h| h.outgoing.destination == outgoing.destination)
            .count();
        if own >= MAX_HELD_PER_DEVICE {
            tracing::debug!(destination = ?outgoing.destination, "this device's share of the coordinator backlog is full; its frame is dropped");
            return;
        }
        if self.held.len() >= MAX_HELD_FRAMES {
            let heaviest = heaviest_destination(&self.held, &outgoing.destination);
            tracing::debug!(
                ?heaviest,
                "coordinator backlog full; dropping a frame of the device holding most of it"
            );
            if heaviest == outgoing.destination {
                return;
            }
            if let Some(index) = self
                .held
                .iter()
                .position(|h| h.outgoing.destination == heaviest)
            {
                self.held.remove(index);
            }
        }
        self.held.push_back(Frame {
            outgoing,
            timing,
            times_sent: 0,
        });
    }

    /// The next frame to hand to the coordinator, if one may go now (a unicast waits while
    /// [`MAX_UNICASTS_IN_FLIGHT`] are in flight). Give the result to [`Outbox::sent`].
    pub fn poll_send(&mut self) -> Option<Frame> {
        let next = self.held.front()?;
        if next.is_unicast() && self.in_flight.len() >= MAX_UNICASTS_IN_FLIGHT {
            return None;
        }
        self.held.pop_front()
    }

    /// What the coordinator did with `frame` at `now`.
    pub fn sent(
        &mut self,
        frame: Frame,
        result: Result<MessageTag, SendError>,
        now: Instant,
    ) -> Sent {
        match result {
            Ok(tag) => {
                if frame.is_unicast() {
                    self.in_flight.insert(
                        tag,
                        InFlight {
                            outgoing: frame.outgoing,
                            times_sent: frame.times_sent.saturating_add(1),
                            sent_at: now,
                        },
                    );
                }
                Sent::Next
            }
            Err(SendError::QueueFull | SendError::NotUp(_)) => {
                self.held.push_front(frame);
                Sent::Stop
            }
            Err(error) => {
                tracing::warn!(%error, "frame not sent");
                Sent::Next
            }
        }
    }

    /// A delivery report from the coordinator. Returns the frame's destination when the
    /// report was about a frame the radio handled (delivered or failed; not when the NCP
    /// refused it): what paces a page stream.
    pub fn on_report(&mut self, tag: MessageTag, outcome: DeliveryOutcome) -> Option<Destination> {
        let InFlight {
            outgoing,
            times_sent,
            ..
        } = self.in_flight.remove(&tag)?;
        let handled =
            (!matches!(outcome, DeliveryOutcome::Refused { .. })).then_some(outgoing.destination);
        if !matches!(outcome, DeliveryOutcome::Refused { .. }) {
            // A report means the NCP has a free slot again.
            self.release_refused();
        }
        match outcome {
            DeliveryOutcome::Delivered => {}
            // The NCP's queue was full: not sent at all; wait for a free slot.
            DeliveryOutcome::Refused { .. } if self.refused.len() < MAX_HELD_FRAMES => {
                tracing::debug!(?tag, "NCP queue full; the frame waits for a free slot");
                self.refused
                    .push_back((outgoing, times_sent.saturating_sub(1)));
                if self.in_flight.is_empty() {
                    // Nothing in flight will report back: try again now.
                    self.release_refused();
                }
            }
            // The radio failed to deliver: send it again right away, once, instead of leaving
            // the device to time out and ask again (seconds).
            DeliveryOutcome::Failed { .. } if times_sent < MAX_SENDS_PER_FRAME => {
                tracing::debug!(
                    ?tag,
                    ?outcome,
                    "delivery failed; sending the frame once more"
                );
                self.held.push_front(Frame::resend(outgoing, times_sent));
            }
            _ => tracing::debug!(
                ?tag,
                ?outcome,
                "a frame was not delivered; the device will ask again"
            ),
        }
        handled
    }

    /// When [`Outbox::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight
            .values()
            .map(|f| f.sent_at + REPORT_TIMEOUT)
            .min()
    }

    /// Frees the slots of unicasts whose report is overdue at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let before = self.in_flight.len();
        self.in_flight
            .retain(|_, f| f.sent_at + REPORT_TIMEOUT > now);
        let expired = before - self.in_flight.len();
        if expired > 0 {
            tracing::debug!(
                expired,
                "delivery reports overdue; the devices will ask again"
            );
            for _ in 0..expired {
                self.release_refused();
            }
        }
    }

    /// Frames held, in flight and refused.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.held.len(), self.in_flight.len(), self.refused.len())
    }

    fn release_refused(&mut self) {
        if let Some((outgoing, times_sent)) = self.refused.pop_front() {
            self.held.push_back(Frame::resend(outgoing, times_sent));
        }
    }
}

/// The destination with the most frames in `held`, counting `incoming` too (ties: `incoming`'s).
fn heaviest_destination(held: &VecDeque<Frame>, incoming: &Destination) -> Destination {
    let mut counts: HashMap<Destination, usize> = HashMap::new();
    for frame in held {
        *counts.entry(frame.outgoing.destination).or_default() += 1;
    }
    *counts.entry(*incoming).or_default() += 1;
    let own = counts.get(incoming).copied().unwrap_or(0);
    counts
        .into_iter()
        .filter(|(_, n)| *n > own)
        .max_by_key(|(_, n)| *n)
        .map_or(*incoming, |(destination, _)| destination)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::DeviceAddr;

    /// The virtual clock's origin; tests only add durations to it.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    fn unicast(nwk: u16, seq: u8) -> Outgoing {
        Outgoing {
            destination: Destination::Unicast(DeviceAddr {
                nwk,
                ieee: None,
                endpoint: 1,
            }),
            source_endpoint: 1,
            destination_endpoint: 1,
            zcl_bytes: vec![0x19, seq, 0x05].into(),
        }
    }

    fn broadcast() -> Outgoing {
        Outgoing {
            destination: Destination::Broadcast(0xFFFF),
            source_endpoint: 1,
            destination_endpoint: 0xFF,
            zcl_bytes: vec![0x19, 0, 0x00].into(),
        }
    }

    /// Sends everything that may go now, tags counting from `next_tag`; returns the tags.
    fn send_all(outbox: &mut Outbox, next_tag: &mut u32, now: Instant) -> Vec<MessageTag> {
        let mut tags = Vec::new();
        while let Some(frame) = outbox.poll_send() {
            let tag = MessageTag(*next_tag);
            *next_tag += 1;
            assert_eq!(outbox.sent(frame, Ok(tag), now), Sent::Next);
            tags.push(tag);
        }
        tags
    }

    #[test]
    fn unicasts_beyond_the_coordinators_limit_wait_for_a_report() {
        let now = origin();
        let mut outbox = Outbox::new();
        for seq in 0..=MAX_UNICASTS_IN_FLIGHT {
            outbox.push(unicast(1, seq as u8), None);
        }
        outbox.push(broadcast(), None);
        let mut next = 0;
        let tags = send_all(&mut outbox, &mut next, now);
        assert_eq!(tags.len(), MAX_UNICASTS_IN_FLIGHT);
        assert_eq!(outbox.counts(), (2, MAX_UNICASTS_IN_FLIGHT, 0));
        outbox.on_report(tags[0], DeliveryOutcome::Delivered);
        // The waiting unicast, then the broadcast behind it (broadcasts are not tracked).
        assert_eq!(send_all(&mut outbox, &mut next, now).len(), 2);
        assert_eq!(outbox.counts(), (0, MAX_UNICASTS_IN_FLIGHT, 0));
    }

    #[test]
    fn a_failed_delivery_is_sent_once_more_then_left_to_the_device() {
        let now = origin();
        let mut outbox = Outbox::new();
        outbox.push(unicast(1, 7), None);
        let mut next = 0;
        let first = send_all(&mut outbox, &mut next, now);
        let failed = DeliveryOutcome::Failed { ncp_status: 0x66 };
        outbox.on_report(first[0], failed);
        let again = send_all(&mut outbox, &mut next, now);
        assert_eq!(again.len(), 1, "sent once more");
        outbox.on_report(again[0], failed);
        assert!(send_all(&mut outbox, &mut next, now).is_empty(), "given up");
        assert_eq!(outbox.counts(), (0, 0, 0));
    }

    #[test]
    fn a_refused_frame_waits_for_a_free_slot_and_does_not_count_as_a_send() {
        let now = origin();
        let mut outbox = Outbox::new();
        outbox.push(unicast(1, 1), None);
        outbox.push(unicast(2, 2), None);
        let mut next = 0;
        let tags = send_all(&mut outbox, &mut next, now);
        let refused = DeliveryOutcome::Refused { ncp_status: 0x72 };
        outbox.on_report(tags[1], refused);
        assert_eq!(outbox.counts(), (0, 1, 1), "waits: one is still in flight");
        outbox.on_report(tags[0], DeliveryOutcome::Delivered);
        let resent = send_all(&mut outbox, &mut next, now);
        assert_eq!(resent.len(), 1, "the report freed a slot");
        // Refused again with nothing in flight: tried at once; refusals never use up sends.
        outbox.on_report(resent[0], refused);
        let resent = send_all(&mut outbox, &mut next, now);
        assert_eq!(resent.len(), 1);
        outbox.on_report(resent[0], DeliveryOutcome::Failed { ncp_status: 0x66 });
        assert_eq!(
            send_all(&mut outbox, &mut next, now).len(),
            1,
            "a resend left"
        );
    }

    #[test]
    fn a_coordinator_that_cannot_take_frames_keeps_them_in_order() {
        let now = origin();
        let mut outbox = Outbox::new();
        outbox.push(unicast(1, 1), None);
        outbox.push(unicast(1, 2), None);
        let frame = outbox.poll_send().unwrap();
        assert_eq!(
            outbox.sent(frame, Err(SendError::QueueFull), now),
            Sent::Stop
        );
        let frame = outbox.poll_send().unwrap();
        assert_eq!(frame.outgoing.zcl_bytes[1], 1, "order kept");
    }

    #[test]
    fn a_full_backlog_drops_the_heaviest_devices_frames_only() {
        let mut outbox = Outbox::new();
        let of = |outbox: &Outbox, nwk| {
            outbox
                .held
                .iter()
                .filter(|f| f.outgoing.destination == unicast(nwk, 0).destination)
                .count()
        };
        // One device alone stops at its share; its extra frames are its own loss.
        for seq in 0..MAX_HELD_PER_DEVICE + 10 {
            outbox.push(unicast(1, seq as u8), None);
        }
        assert_eq!(of(&outbox, 1), MAX_HELD_PER_DEVICE);
        // Eight devices at their share fill the backlog.
        for nwk in 2..=8 {
            for seq in 0..MAX_HELD_PER_DEVICE {
                outbox.push(unicast(nwk, seq as u8), None);
            }
        }
        assert_eq!(outbox.counts().0, MAX_HELD_FRAMES);
        // A ninth device still gets its frame in; one of a heaviest device's frames goes.
        outbox.push(unicast(9, 0), None);
        assert_eq!(outbox.counts().0, MAX_HELD_FRAMES);
        assert_eq!(of(&outbox, 9), 1);
        let at_share = (1..=8)
            .filter(|nwk| of(&outbox, *nwk) == MAX_HELD_PER_DEVICE)
            .count();
        assert_eq!(at_share, 7);
    }

    #[test]
    fn an_overdue_report_frees_its_slot_on_the_virtual_clock() {
        let start = origin();
        let mut outbox = Outbox::new();
        for seq in 0..=MAX_UNICASTS_IN_FLIGHT {
            outbox.push(unicast(1, seq as u8), None);
        }
        let mut next = 0;
        send_all(&mut outbox, &mut next, start);
        let later = start + Duration::from_secs(30);
        assert_eq!(outbox.poll_timeout(), Some(start + REPORT_TIMEOUT));
        outbox.handle_timeout(later);
        assert!(send_all(&mut outbox, &mut next, later).is_empty());
        outbox.handle_timeout(start + REPORT_TIMEOUT);
        assert_eq!(outbox.counts(), (1, 0, 0), "every slot freed");
        assert_eq!(send_all(&mut outbox, &mut next, later).len(), 1);
        assert_eq!(outbox.poll_timeout(), Some(later + REPORT_TIMEOUT));
    }
}
