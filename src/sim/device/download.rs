//! Fetching the offered image (ZCL8 §11.13.6-§11.13.8, client side): Image Block Requests of at
//! most the device's `max_data_size`, each answer checked (right image, right offset, no larger
//! than asked, not past the end), WAIT_FOR_DATA and its minimum block period honoured, and an
//! unanswered request sent again until the device gives up.

use std::time::{Duration, Instant};

use super::{SimDevice, State, UpgradeOutcome};
use crate::zcl::ZclStatus;
use crate::zcl::ota::{ImageBlockRequest, ImageBlockResponse, OtaCommand};

impl SimDevice {
    /// Sends the Image Block Request for the next missing offset (again, when `retry`).
    pub(super) fn request_block(&mut self, now: Instant, retry: bool) {
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
            self.end_attempt(offer, false, UpgradeOutcome::GaveUp, now);
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

    pub(super) fn on_block_response(
        &mut self,
        tsn: u8,
        response: ImageBlockResponse,
        now: Instant,
    ) {
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
                self.end_attempt(
                    offer,
                    false,
                    UpgradeOutcome::Aborted {
                        status: ZclStatus::ABORT,
                    },
                    now,
                );
            }
            ImageBlockResponse::OtherStatus { status } => {
                self.end_attempt(offer, false, UpgradeOutcome::Aborted { status }, now);
            }
        }
    }
}
