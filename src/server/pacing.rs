//! Block sizing and the concurrency cap (ZCL8 §11.13.6; PROTOCOLS.md §8 "Block size" and
//! "WAIT_FOR_DATA"): how many image bytes fit one Image Block Response on this coordinator for
//! this device, and which devices may download now while the others are told to wait.

use std::time::{Duration, Instant};

use tracing::debug;

use super::DeviceKey;

/// Bytes of an Image Block Response (SUCCESS) before its data: status, manufacturer code,
/// image type, file version, file offset, data size.
pub const BLOCK_RESPONSE_FIXED_LEN: usize = 1 + 2 + 2 + 4 + 4 + 1;

/// Inputs of the block-size decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSizeLimits {
    /// The device's `maximum_data_size`.
    pub device_maximum: u8,
    /// The configured cap for this device (global, manufacturer or per-device).
    pub configured_cap: u8,
    /// The coordinator's maximum APS payload.
    pub max_aps_payload: u8,
    /// Length of the ZCL header of the response (3, or 5 when manufacturer-specific).
    pub zcl_header_len: usize,
    /// Bytes kept free for APS encryption and source routes.
    pub reserve: usize,
}

impl BlockSizeLimits {
    /// Room for data in one APS frame.
    pub fn aps_room(&self) -> usize {
        usize::from(self.max_aps_payload)
            .saturating_sub(self.zcl_header_len + BLOCK_RESPONSE_FIXED_LEN + self.reserve)
    }

    /// The block size: the smallest of the device's maximum, the APS room and the cap.
    /// 0 means no block can be served (the device asked for 0 bytes, or the coordinator's
    /// payload is too small for anything).
    pub fn block_size(&self) -> u8 {
        let room = u8::try_from(self.aps_room()).unwrap_or(u8::MAX);
        self.device_maximum.min(self.configured_cap).min(room)
    }
}

/// Admission to the capped set of concurrent downloads. Devices that find the set full join a
/// queue; a freed slot goes to the first device in the queue that is still around, so a device
/// retrying often cannot starve one retrying rarely. The queue is ordered for a rolling update:
/// mains-powered devices (routers) before unknown ones before battery-powered (sleepy) ones,
/// then the one that has waited longest. A waiting device that does not come back before its
/// entry expires loses its place.
#[derive(Debug, Default)]
pub struct Admission {
    active: Vec<DeviceKey>,
    /// When each active device got its slot (same order as `active`).
    active_since: Vec<Instant>,
    /// Sorted by `(rank, since, seq)`.
    waiting: Vec<Waiter>,
    /// Breaks ties between devices queued at the same instant: first come, first served.
    next_seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    key: DeviceKey,
    until: Instant,
    rank: QueueRank,
    since: Instant,
    seq: u64,
}

/// Where a device stands in the rolling-update order (lower goes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueueRank {
    /// Mains-powered: a router, always listening.
    Mains,
    /// Power source not known.
    Unknown,
    /// Battery-powered: a sleepy end device, slow and often away.
    Battery,
}

impl QueueRank {
    /// The rank for a known or unknown power source.
    pub fn from_mains_powered(mains_powered: Option<bool>) -> Self {
        match mains_powered {
            Some(true) => QueueRank::Mains,
            Some(false) => QueueRank::Battery,
            None => QueueRank::Unknown,
        }
    }
}

impl Admission {
    /// True when `key` holds a slot.
    pub fn is_active(&self, key: &DeviceKey) -> bool {
        self.active.contains(key)
    }

    /// Devices holding a slot.
    pub fn active(&self) -> &[DeviceKey] {
        &self.active
    }

    /// [`Admission::try_admit_ranked`] for a device whose power source is unknown.
    pub fn try_admit(
        &mut self,
        key: DeviceKey,
        cap: usize,
        now: Instant,
        keep_place_for: Duration,
    ) -> bool {
        self.try_admit_ranked(key, cap, now, keep_place_for, QueueRank::Unknown)
    }

    /// Tries to give `key` a slot: it gets one when a slot is free and no device ahead of it
    /// in the queue is still waiting for one. On refusal the device is (re)queued, its place
    /// kept until `now + keep_place_for`.
    pub fn try_admit_ranked(
        &mut self,
        key: DeviceKey,
        cap: usize,
        now: Instant,
        keep_place_for: Duration,
        rank: QueueRank,
    ) -> bool {
        if self.is_active(&key) {
            return true;
        }
        self.expire(now);
        let until = now.checked_add(keep_place_for).unwrap_or(now);
        let (since, seq) = match self.waiting.iter().position(|w| w.key == key) {
            Some(position) => {
                let earlier = self.waiting.remove(position);
                (earlier.since, earlier.seq)
            }
            None => {
                self.next_seq += 1;
                (now, self.next_seq)
            }
        };
        let waiter = Waiter {
            key,
            until,
            rank,
            since,
            seq,
        };
        let position = self
            .waiting
            .partition_point(|w| (w.rank, w.since, w.seq) < (rank, since, seq));
        let free = cap.saturating_sub(self.active.len());
        if position < free {
            self.active.push(key);
            self.active_since.push(now);
            return true;
        }
        self.waiting.insert(position, waiter);
        false
    }

    /// Frees `key`'s slot (or its place in the queue).
    pub fn release(&mut self, key: &DeviceKey) {
        if let Some(index) = self.active.iter().position(|k| k == key) {
            self.active.remove(index);
            if index < self.active_since.len() {
                self.active_since.remove(index);
            }
        }
        self.waiting.retain(|w| w.key != *key);
    }

    /// When `key` got the slot it holds.
    pub fn active_since(&self, key: &DeviceKey) -> Option<Instant> {
        let index = self.active.iter().position(|k| k == key)?;
        self.active_since.get(index).copied()
    }

    /// Drops queue entries whose devices did not come back in time.
    pub fn expire(&mut self, now: Instant) {
        self.waiting.retain(|w| w.until > now);
    }

    /// The earliest queue-entry expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.until).min()
    }

    /// Devices waiting for a slot.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// `key`'s place in the queue, 1 = next; `None` when it is not waiting.
    pub fn queue_position(&self, key: &DeviceKey) -> Option<usize> {
        self.waiting
            .iter()
            .position(|w| w.key == *key)
            .map(|p| p + 1)
    }
}

/// How a slot holder's progress stands against the minimum rate (a slot requires progress;
/// issue 18): `mark` is where the transfer stood (time, offset) when the slot was granted or
/// progress last checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotProgress {
    /// Less than a window since the mark: ask again then.
    NotDue(Instant),
    /// At least the minimum rate since the mark: move the mark to now.
    Enough,
    /// Less than the minimum rate since the mark: the slot goes to a waiting device.
    TooSlow {
        /// Bytes served since the mark.
        bytes: u32,
        /// Since the mark.
        elapsed: Duration,
    },
}

/// Judges `offset` against `mark`: at least `min_rate` bytes a second, measured over at least
/// `window` (so one block right after the grant, then silence, fails after one window).
pub(crate) fn slot_progress(
    mark: (Instant, u32),
    offset: u32,
    now: Instant,
    window: Duration,
    min_rate: u32,
) -> SlotProgress {
    let (at, from) = mark;
    let due = at + window;
    if now < due {
        return SlotProgress::NotDue(due);
    }
    let elapsed = now.saturating_duration_since(at);
    let bytes = offset.saturating_sub(from);
    let wanted = u128::from(min_rate) * elapsed.as_millis() / 1000;
    if u128::from(bytes) >= wanted {
        SlotProgress::Enough
    } else {
        SlotProgress::TooSlow { bytes, elapsed }
    }
}

impl super::OtaServer {
    /// True when `transfer`, holding a slot, moved less than the minimum rate since its mark
    /// ([`slot_progress`]); a transfer that moved enough gets a new mark at `now`.
    pub(super) fn slot_too_slow(
        &self,
        transfer: &mut super::session::Transfer,
        now: Instant,
    ) -> bool {
        let Some(mark) = transfer.slot_mark else {
            return false;
        };
        let offset = transfer.stats.offset;
        match slot_progress(
            mark,
            offset,
            now,
            self.config.slot_progress_window,
            self.config.slot_min_rate_while_others_wait,
        ) {
            SlotProgress::NotDue(_) => false,
            SlotProgress::Enough => {
                transfer.slot_mark = Some((now, offset));
                false
            }
            SlotProgress::TooSlow { bytes, elapsed } => {
                let _entered = transfer.span.enter();
                debug!(bytes, ?elapsed, "too slow for a slot while others wait");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_is_the_smallest_limit() {
        let limits = BlockSizeLimits {
            device_maximum: 63,
            configured_cap: 50,
            max_aps_payload: 82,
            zcl_header_len: 3,
            reserve: 15,
        };
        assert_eq!(limits.aps_room(), 82 - 3 - 14 - 15);
        assert_eq!(limits.block_size(), 50);
        let small_coordinator = BlockSizeLimits {
            max_aps_payload: 70,
            ..limits
        };
        assert_eq!(small_coordinator.block_size(), 70 - 3 - 14 - 15);
        let manufacturer_specific = BlockSizeLimits {
            zcl_header_len: 5,
            max_aps_payload: 70,
            ..limits
        };
        assert_eq!(manufacturer_specific.block_size(), 70 - 5 - 14 - 15);
        let tiny = BlockSizeLimits {
            max_aps_payload: 20,
            ..limits
        };
        assert_eq!(tiny.block_size(), 0);
        let shy_device = BlockSizeLimits {
            device_maximum: 12,
            ..limits
        };
        assert_eq!(shy_device.block_size(), 12);
    }

    #[test]
    #[allow(clippy::disallowed_methods)]
    fn freed_slot_goes_to_the_longest_waiting_device() {
        let t0 = Instant::now();
        let keep = Duration::from_secs(180);
        let mut admission = Admission::default();
        let [a, b, c, d] = [1, 2, 3, 4].map(DeviceKey::Nwk);
        assert!(admission.try_admit(a, 2, t0, keep));
        assert!(admission.try_admit(b, 2, t0, keep));
        assert!(!admission.try_admit(c, 2, t0, keep));
        assert!(!admission.try_admit(d, 2, t0, keep));
        admission.release(&a);
        // d retries first but c has waited longer.
        assert!(!admission.try_admit(d, 2, t0, keep));
        assert!(admission.try_admit(c, 2, t0, keep));
        assert!(admission.is_active(&c));
        // c's place was its own; d is now first in line but no slot is free.
        assert!(!admission.try_admit(d, 2, t0, keep));
        // A waiting device that never comes back loses its place.
        admission.release(&b);
        let later = t0 + keep + Duration::from_secs(1);
        let e = DeviceKey::Nwk(5);
        assert!(admission.try_admit(e, 2, later, keep));
        assert_eq!(admission.waiting_len(), 0);
    }

    /// One block at the grant and then silence fails after one window; a steady slow device
    /// passes; the verdict waits for a whole window.
    #[test]
    #[allow(clippy::disallowed_methods)] // An arbitrary origin for the virtual clock.
    fn a_slot_needs_the_minimum_rate_over_a_window() {
        let t0 = Instant::now();
        let window = Duration::from_secs(10);
        let s = Duration::from_secs;
        assert_eq!(
            slot_progress((t0, 0), 50, t0 + s(3), window, 10),
            SlotProgress::NotDue(t0 + window)
        );
        assert_eq!(
            slot_progress((t0, 0), 50, t0 + window, window, 10),
            SlotProgress::TooSlow {
                bytes: 50,
                elapsed: window
            }
        );
        assert_eq!(
            slot_progress((t0, 0), 100, t0 + window, window, 10),
            SlotProgress::Enough
        );
        // Measured over the whole time since the mark (a stale mark is averaged, not judged
        // on one window).
        assert_eq!(
            slot_progress((t0, 1000), 1700, t0 + s(60), window, 10),
            SlotProgress::Enough
        );
        assert!(matches!(
            slot_progress((t0, 1000), 1500, t0 + s(60), window, 10),
            SlotProgress::TooSlow { bytes: 500, .. }
        ));
        // A minimum rate of 0 never evicts; an offset moved back (a restart) counts as none.
        assert_eq!(
            slot_progress((t0, 0), 0, t0 + s(60), window, 0),
            SlotProgress::Enough
        );
        assert!(matches!(
            slot_progress((t0, 500), 100, t0 + s(60), window, 1),
            SlotProgress::TooSlow { bytes: 0, .. }
        ));
    }
}
