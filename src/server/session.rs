//! The per-device state (ZCL8 §11.13.6 "OTA Upgrade Process"): what was offered, the FIFO of
//! requests waiting for their turn, the answers remembered for retries, pacing, the transfer
//! in progress and a page being streamed. One `Session` per device in one map, not a task per
//! device; all traffic crosses one coordinator anyway.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::DeviceAddr;
use super::image::{ImageKey, OtaImage};
use super::progress::{TransferState, TransferStats};
use super::request::{Message, ReplyTo, Request, RequestHeader};

/// Offers remembered per device (its regular image plus a device-specific file or two).
pub(crate) const MAX_OFFERS: usize = 4;
/// Answers remembered per device for retries.
pub(crate) const MAX_REMEMBERED_ANSWERS: usize = 4;

/// A request waiting in the device's FIFO.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) header: RequestHeader,
    pub(crate) request: Request,
    /// The request's exact bytes, to recognise a retry.
    pub(crate) raw: Bytes,
}

/// An answer remembered so that a retry gets identical bytes (encoding is deterministic).
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) raw_request: Bytes,
    pub(crate) reply_to: ReplyTo,
    pub(crate) message: Message,
    pub(crate) at: Instant,
}

/// What the device last asked in a Query Next Image Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastQuery {
    pub(crate) manufacturer_code: u16,
    pub(crate) image_type: u16,
    pub(crate) current_file_version: u32,
    pub(crate) hardware_version: Option<u16>,
    /// The image offered in answer, if any.
    pub(crate) offered: Option<ImageKey>,
}

/// An image offered to a device, with what the device asked when it was offered: every block
/// request for it passes the policy check again against the same question.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub(crate) image: Arc<OtaImage>,
    /// The query it answered; `None` for an image not offered in this run (a resumed
    /// download), whose device's running version is unknown.
    pub(crate) asked: Option<LastQuery>,
}

/// An upgrade the device was told to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingUpgrade {
    pub(crate) image: ImageKey,
    /// When the device should have applied it; `None` while it waits for the upgrade command.
    /// A query reporting the old version before then is not a failure.
    pub(crate) apply_by: Option<Instant>,
}

/// A transfer: one image going to one device.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(crate) image: Arc<OtaImage>,
    /// The query the image answered (see [`Offer::asked`]).
    pub(crate) asked: Option<LastQuery>,
    pub(crate) state: TransferState,
    pub(crate) stats: TransferStats,
    pub(crate) last_request_at: Instant,
    /// When every byte had been served (state `Waiting`).
    pub(crate) downloaded_at: Option<Instant>,
    /// The version the device ran when the transfer started, when known.
    pub(crate) from_version: Option<u32>,
    /// Where the transfer stood (time, offset) when it got its slot or its progress was last
    /// found enough ([`super::pacing::slot_progress`]).
    pub(crate) slot_mark: Option<(Instant, u32)>,
    pub(crate) span: tracing::Span,
}

/// A page being streamed (Image Page Request).
#[derive(Debug)]
pub(crate) struct PageStream {
    pub(crate) header: RequestHeader,
    pub(crate) raw_request: Bytes,
    pub(crate) image: Arc<OtaImage>,
    pub(crate) next_offset: u32,
    pub(crate) end_offset: u32,
    pub(crate) block_size: u8,
    pub(crate) spacing: Duration,
    pub(crate) next_due: Instant,
    /// The last block sent is not reported delivered yet (paced by delivery reports).
    pub(crate) awaiting_delivery_since: Option<Instant>,
}

/// Everything the server keeps about one device.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) addr: DeviceAddr,
    pub(crate) last_heard: Instant,
    pub(crate) last_query: Option<LastQuery>,
    /// Images offered to this device, newest last. A transfer keeps the exact image (bytes
    /// included) it was offered even if the catalog replaces it.
    pub(crate) offers: Vec<Offer>,
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) answered: VecDeque<Answered>,
    /// The device's MinimumBlockPeriod, as last sent.
    pub(crate) minimum_block_period: Option<u16>,
    /// No block response before this.
    pub(crate) next_block_at: Instant,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) page: Option<PageStream>,
    /// Frames for this device in the transmit queue, not yet taken by the coordinator.
    pub(crate) unpolled: usize,
    /// An image whose Upgrade End Response said "wait for a command" (0xFFFFFFFF).
    pub(crate) awaiting_upgrade_command: Option<ImageKey>,
    /// An image the device was told to apply; its first query after the upgrade time should
    /// report that version.
    pub(crate) awaiting_confirmation: Option<PendingUpgrade>,
    /// The last reason a query was refused, to log changes only.
    pub(crate) last_withheld: Option<String>,
    /// The image the policy chose at the last query, before the installer's decisions (shown
    /// as `available_version` even while it waits for approval).
    pub(crate) available: Option<ImageKey>,
}

impl Session {
    pub(crate) fn new(addr: DeviceAddr, now: Instant) -> Self {
        Session {
            addr,
            last_heard: now,
            last_query: None,
            offers: Vec::new(),
            pending: VecDeque::new(),
            answered: VecDeque::new(),
            minimum_block_period: None,
            next_block_at: now,
            transfer: None,
            page: None,
            unpolled: 0,
            awaiting_upgrade_command: None,
            awaiting_confirmation: None,
            last_withheld: None,
            available: None,
        }
    }

    /// The offer of the image named `key`, newest offer first.
    pub(crate) fn offered(&self, key: ImageKey) -> Option<&Offer> {
        self.offers
            .iter()
            .rev()
            .find(|offer| offer.image.key() == key)
    }

    /// Remembers an offer (replacing an older offer of the same key, dropping the oldest).
    pub(crate) fn remember_offer(&mut self, image: Arc<OtaImage>, asked: Option<LastQuery>) {
        let key = image.key();
        if self.offers.last().is_some_and(|last| {
            last.image.key() == key && Arc::ptr_eq(&last.image, &image) && last.asked == asked
        }) {
            return;
        }
        // A transfer in progress keeps its own Arc; replacing the offer does not touch it.
        self.offers.retain(|offer| offer.image.key() != key);
        self.offers.push(Offer { image, asked });
        if self.offers.len() > MAX_OFFERS {
            self.offers.remove(0);
        }
    }

    /// The remembered answer to exactly these request bytes, if still fresh.
    pub(crate) fn remembered_answer(
        &self,
        raw: &[u8],
        now: Instant,
        window: Duration,
    ) -> Option<(ReplyTo, Message)> {
        self.answered
            .iter()
            .rev()
            .find(|a| a.raw_request == raw && now.saturating_duration_since(a.at) <= window)
            .map(|a| (a.reply_to, a.message.clone()))
    }

    /// Remembers the answer to a request.
    pub(crate) fn remember_answer(
        &mut self,
        raw_request: Bytes,
        reply_to: ReplyTo,
        message: Message,
        now: Instant,
    ) {
        self.answered.retain(|a| a.raw_request != raw_request);
        self.answered.push_back(Answered {
            raw_request,
            reply_to,
            message,
            at: now,
        });
        while self.answered.len() > MAX_REMEMBERED_ANSWERS {
            self.answered.pop_front();
        }
    }

    /// True when exactly these bytes are already waiting in the FIFO.
    pub(crate) fn is_pending(&self, raw: &[u8]) -> bool {
        self.pending.iter().any(|p| p.raw == raw)
    }

    /// The image the transfer is on, if any.
    pub(crate) fn transfer_key(&self) -> Option<ImageKey> {
        self.transfer.as_ref().map(|t| t.image.key())
    }
}

/// Duration helper: `now + d`, saturating at `now` on the (theoretical) overflow.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}
