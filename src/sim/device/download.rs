//! Fetching the offered image (ZCL8 §11.13.6-§11.13.8, client side): Image Block Requests of at
//! most the device's `max_data_size`, or Image Page Requests ([`Fetch::Pages`]); each answer
//! checked (right image, right offset, no larger than asked, not past the end), page blocks that
//! arrive past a lost one held until the gap is filled with a block request, WAIT_FOR_DATA and
//! its minimum block period honoured, and an unanswered request sent again until the device
//! gives up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::hooks::Fetch;
use super::{Offer, SimDevice, State, UpgradeOutcome};
use crate::zcl::ZclStatus;
use crate::zcl::ota::{ImageBlockRequest, ImageBlockResponse, ImagePageRequest, OtaCommand};

/// A download under way.
#[derive(Debug)]
pub(super) struct Download {
    pub(super) offer: Offer,
    /// The file from its start, as far as it is held without a gap.
    pub(super) data: Vec<u8>,
    /// The outstanding request's TSN and the deadline for its (next) answer; otherwise the next
    /// request goes out at `next_request`.
    pub(super) awaiting: Option<(u8, Instant)>,
    pub(super) next_request: Instant,
    /// Requests in a row that went unanswered or were answered wrongly.
    attempts: u32,
    /// The running page: its request's TSN and the offset where it ends.
    page: Option<(u8, u32)>,
    /// Page blocks that arrived past a gap, by offset.
    early: BTreeMap<u32, Vec<u8>>,
}

impl Download {
    /// A download of `offer` whose first request goes out at `first_request`.
    pub(super) fn new(offer: Offer, first_request: Instant) -> Self {
        Download {
            offer,
            data: Vec::new(),
            awaiting: None,
            next_request: first_request,
            attempts: 0,
            page: None,
            early: BTreeMap::new(),
        }
    }

    /// True when `tsn` is the outstanding request's or the running page's.
    fn expects(&self, tsn: u8) -> bool {
        self.awaiting.is_some_and(|(expected, _)| expected == tsn)
            || self.page.is_some_and(|(page_tsn, _)| page_tsn == tsn)
    }

    /// Takes a block at `offset`: appended when it is next, held when it comes past a gap
    /// (from a page); then whatever held block now follows is appended too.
    fn take(&mut self, offset: usize, block: &[u8]) {
        let held = self.data.len();
        if offset > held {
            if let Ok(key) = u32::try_from(offset) {
                self.early.insert(key, block.to_vec());
            }
            return;
        }
        if offset < held {
            return; // Already held (a page block sent twice).
        }
        self.data.extend_from_slice(block);
        while let Some(next) = u32::try_from(self.data.len())
            .ok()
            .and_then(|at| self.early.remove(&at))
        {
            self.data.extend_from_slice(&next);
        }
        // Held blocks the data has grown past can never be appended.
        let held = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.early = self.early.split_off(&held);
    }
}

impl SimDevice {
    /// Sends the next request (again, when `retry`): an Image Page Request in page mode when no
    /// gap is to be filled, otherwise an Image Block Request for the first missing offset.
    pub(super) fn request_next(&mut self, now: Instant, retry: bool) {
        let State::Downloading(download) = &self.state else {
            return;
        };
        let offer = download.offer;
        let attempts = if retry { download.attempts + 1 } else { 0 };
        if attempts > self.config.max_retries {
            self.end_attempt(offer, false, UpgradeOutcome::GaveUp, now);
            return;
        }
        let offset = u32::try_from(download.data.len()).unwrap_or(u32::MAX);
        let page = match self.config.hooks.fetch {
            Fetch::Pages {
                page_size,
                response_spacing_ms,
            } if download.early.is_empty() => Some((page_size, response_spacing_ms)),
            _ => None,
        };
        // Only a block request is resent as it was; a page that went quiet is not.
        let resend_tsn = download.awaiting.map(|(tsn, _)| tsn).filter(|tsn| {
            retry
                && page.is_none()
                && self.config.hooks.resend_same_tsn
                && download.page.is_none_or(|(page_tsn, _)| page_tsn != *tsn)
        });
        let tsn = resend_tsn.unwrap_or_else(|| self.take_tsn());
        let block = ImageBlockRequest {
            field_control: 0,
            manufacturer_code: offer.manufacturer_code,
            image_type: offer.image_type,
            file_version: offer.file_version,
            file_offset: offset,
            maximum_data_size: self.config.spec.max_data_size,
            request_node_address: None,
            minimum_block_period: None,
        };
        let command = match page {
            Some((page_size, response_spacing)) => {
                self.log.page_requests += 1;
                OtaCommand::ImagePageRequest(page_from(block, page_size, response_spacing))
            }
            None => {
                self.log.block_requests += 1;
                self.counters.block_requests += 1;
                OtaCommand::ImageBlockRequest(block)
            }
        };
        self.send(tsn, command, now);
        let deadline = now + self.answer_timeout();
        if let State::Downloading(download) = &mut self.state {
            download.awaiting = Some((tsn, deadline));
            download.attempts = attempts;
            if let Some((page_size, _)) = page {
                download.page = Some((tsn, offset.saturating_add(u32::from(page_size))));
            }
        }
    }

    /// How long it waits for an answer: its timeout, and at least its pause between requests.
    fn answer_timeout(&self) -> Duration {
        self.config
            .response_timeout
            .max(self.config.hooks.request_delay)
    }

    pub(super) fn on_block_response(
        &mut self,
        tsn: u8,
        response: ImageBlockResponse,
        now: Instant,
    ) {
        let max_data_size = usize::from(self.config.spec.max_data_size);
        let pause = self.min_block_period.max(self.config.hooks.request_delay);
        let answer_timeout = self.answer_timeout();
        let State::Downloading(download) = &mut self.state else {
            return;
        };
        if !download.expects(tsn) {
            return; // A late answer to a request already retried.
        }
        let offer = download.offer;
        match response {
            ImageBlockResponse::Success {
                manufacturer_code,
                image_type,
                file_version,
                file_offset,
                data: block,
            } => {
                let from_page = download.page.filter(|(page_tsn, _)| *page_tsn == tsn);
                let right_image = (manufacturer_code, image_type, file_version)
                    == (
                        offer.manufacturer_code,
                        offer.image_type,
                        offer.file_version,
                    );
                let offset = usize::try_from(file_offset).unwrap_or(usize::MAX);
                let end = offset.saturating_add(block.len());
                // Only a page may answer at another offset than the one asked for, and only
                // inside the page.
                let right_place = offset == download.data.len()
                    || from_page.is_some_and(|(_, page_end)| {
                        u32::try_from(end).is_ok_and(|end| end <= page_end)
                    });
                if !right_image
                    || !right_place
                    || block.is_empty()
                    || block.len() > max_data_size
                    || u32::try_from(end).map_or(true, |end| end > offer.image_size)
                {
                    // Not taken; ask for the same offset again (counted as a retry, so a server
                    // that keeps sending garbage ends the attempt).
                    self.counters.protocol_violations += 1;
                    self.request_next(now, true);
                    return;
                }
                download.take(offset, block.as_slice());
                download.attempts = 0;
                let page_runs_on = from_page.is_some_and(|(_, page_end)| {
                    u32::try_from(end).is_ok_and(|end| end < page_end.min(offer.image_size))
                });
                if page_runs_on {
                    // Wait for the rest of the page; fill a gap if it goes quiet.
                    download.awaiting = Some((tsn, now + answer_timeout));
                    return;
                }
                if from_page.is_some() {
                    download.page = None;
                }
                download.awaiting = None;
                download.next_request = now + pause;
                let held = download.data.len();
                if u32::try_from(held).ok() == Some(offer.image_size) {
                    self.send_end_request(now, false);
                } else if self.vanish_if_due(held, now) {
                    // Back later, it carries on from `next_request`.
                } else if pause.is_zero() {
                    self.request_next(now, false);
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
                download.awaiting = None;
                download.page = None;
                download.next_request = now + Duration::from_secs(u64::from(wait_seconds));
                if let Some(period) = minimum_block_period {
                    self.min_block_period = Duration::from_millis(u64::from(period));
                }
            }
            ImageBlockResponse::Abort => {
                let status = ZclStatus::ABORT;
                self.end_attempt(offer, false, UpgradeOutcome::Aborted { status }, now);
            }
            ImageBlockResponse::OtherStatus { status } => {
                self.end_attempt(offer, false, UpgradeOutcome::Aborted { status }, now);
            }
        }
    }
}

/// The Image Page Request for the image, offset and block size `block` asks for.
pub(in crate::sim) fn page_from(
    block: ImageBlockRequest,
    page_size: u16,
    response_spacing: u16,
) -> ImagePageRequest {
    ImagePageRequest {
        field_control: 0,
        manufacturer_code: block.manufacturer_code,
        image_type: block.image_type,
        file_version: block.file_version,
        file_offset: block.file_offset,
        maximum_data_size: block.maximum_data_size,
        page_size,
        response_spacing,
        request_node_address: None,
    }
}
