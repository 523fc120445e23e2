//! Test rigs on a virtual clock (STYLE.md, "Testing serial code without hardware"): the sans-IO
//! EZSP host and the proxy's relay are wired to simulated sticks and devices, every core is
//! stepped until nothing moves, then the clock jumps to the next deadline. The rigs differ in
//! what they wire; how they run is written once here.

use std::time::{Duration, Instant};

use super::{MessageTag, Nwk, UnicastMessage};
use crate::server::{Destination, Outgoing};
use crate::sim::SimEvent;
use crate::sim::device::{DeviceEvent, UpgradeReport};

/// Keeps the report of an upgrade that ended in `upgrades`; gives back any other event.
pub(crate) fn keep_upgrade_report(
    upgrades: &mut Vec<UpgradeReport>,
    event: SimEvent,
) -> Option<SimEvent> {
    match event {
        SimEvent::Device {
            event: DeviceEvent::UpgradeEnded(report),
            ..
        } => {
            upgrades.push(report);
            None
        }
        other => Some(other),
    }
}

/// An OTA server's send as a rig hands it to the core under test: a unicast numbered from
/// `next_tag` (which moves on); `None` for a broadcast, which the rigs drop.
pub(crate) fn numbered_unicast(
    outgoing: &Outgoing,
    next_tag: &mut u32,
) -> Option<(MessageTag, UnicastMessage)> {
    let Destination::Unicast(device) = outgoing.destination else {
        return None;
    };
    let tag = MessageTag(*next_tag);
    *next_tag += 1;
    let message = UnicastMessage::ota(
        Nwk(device.nwk),
        outgoing.source_endpoint,
        outgoing.destination_endpoint,
        outgoing.zcl_bytes.to_vec(),
    );
    Some((tag, message))
}

/// A set of sans-IO cores wired together and driven by one virtual clock.
pub(crate) trait VirtualRig: Sized {
    /// Moves everything that can move at the rig's time; true when something did.
    fn step(&mut self) -> bool;

    /// Every core's next deadline.
    fn deadlines(&self) -> Vec<Option<Instant>>;

    /// Fires every core's timeouts due at `now`.
    fn handle_timeouts(&mut self, now: Instant);

    /// The virtual time.
    fn clock(&mut self) -> &mut Instant;

    /// Advances the clock to the earliest deadline, at most to `limit`, and fires it; false
    /// when no deadline comes before `limit` (the clock is then at `limit`).
    fn advance(&mut self, limit: Instant) -> bool {
        let next = self.deadlines().into_iter().flatten().min();
        let clock = self.clock();
        let Some(at) = next.filter(|at| *at <= limit) else {
            *clock = (*clock).max(limit);
            return false;
        };
        *clock = (*clock).max(at);
        let now = *clock;
        self.handle_timeouts(now);
        true
    }

    /// Runs until `done` or `within` of virtual time has passed; true when done.
    fn run_until(&mut self, within: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let limit = *self.clock() + within;
        let mut steps = 0u32;
        loop {
            while self.step() {
                steps += 1;
                assert!(steps < 5_000_000, "livelock");
            }
            if done(self) {
                return true;
            }
            if !self.advance(limit) {
                return done(self);
            }
        }
    }

    /// Runs for `duration` of virtual time.
    fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }
}
