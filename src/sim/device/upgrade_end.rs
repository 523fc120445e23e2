//! The end of a download (ZCL8 §11.13.9-§11.13.10, client side): the whole file is checked
//! (against the expected bytes when known, otherwise against its OTA header, ZCL8 §11.4.2), the
//! Upgrade End Request says SUCCESS or INVALID_IMAGE, and the Upgrade End Response says when to
//! switch to the new image, or to wait for the command (upgrade time 0xFFFFFFFF).

use std::time::{Duration, Instant};

use super::{Offer, SimDevice, State, UpgradeOutcome};
use crate::ota::OtaHeader;
use crate::zcl::ZclStatus;
use crate::zcl::ota::{OtaCommand, UpgradeEndRequest, UpgradeEndResponse};

/// `upgrade_time` value meaning "wait for another Upgrade End Response".
const UPGRADE_TIME_WAIT_FOR_COMMAND: u32 = 0xFFFF_FFFF;

impl SimDevice {
    /// Checks the downloaded file and sends the Upgrade End Request (again, when `retry`).
    pub(super) fn send_end_request(&mut self, now: Instant, retry: bool) {
        let (offer, valid, attempts) = match &self.state {
            State::Downloading { offer, data, .. } => (*offer, self.image_is_valid(offer, data), 0),
            State::Ending {
                offer, attempts, ..
            } => (*offer, true, attempts + u32::from(retry)),
            _ => return,
        };
        if attempts > self.config.max_retries {
            self.end_attempt(offer, true, UpgradeOutcome::GaveUp, now);
            return;
        }
        let tsn = self.take_tsn();
        self.send(
            tsn,
            OtaCommand::UpgradeEndRequest(UpgradeEndRequest {
                status: if valid {
                    ZclStatus::SUCCESS
                } else {
                    ZclStatus::INVALID_IMAGE
                },
                manufacturer_code: offer.manufacturer_code,
                image_type: offer.image_type,
                file_version: offer.file_version,
            }),
            now,
        );
        if valid {
            self.state = State::Ending {
                offer,
                deadline: Some(now + self.config.response_timeout),
                attempts,
            };
        } else {
            // The server answers INVALID_IMAGE with a Default Response; nothing more to wait for.
            self.end_attempt(offer, false, UpgradeOutcome::InvalidImage, now);
        }
    }

    pub(super) fn on_end_response(&mut self, response: UpgradeEndResponse, now: Instant) {
        let (State::Ending { offer, .. } | State::AwaitingCommand { offer, .. }) = self.state
        else {
            return;
        };
        if (
            response.manufacturer_code,
            response.image_type,
            response.file_version,
        ) != (
            offer.manufacturer_code,
            offer.image_type,
            offer.file_version,
        ) {
            return;
        }
        if response.upgrade_time == UPGRADE_TIME_WAIT_FOR_COMMAND {
            // Wait for the Upgrade End Response that says when, asking again now and then.
            self.state = State::AwaitingCommand {
                offer,
                ask_again: now + self.config.query_interval,
            };
            return;
        }
        let delay_seconds = if response.current_time == 0 {
            response.upgrade_time
        } else {
            response.upgrade_time.saturating_sub(response.current_time)
        };
        self.state = State::Applying {
            offer,
            at: now + Duration::from_secs(u64::from(delay_seconds)),
        };
        self.handle_timeout(now);
    }

    fn image_is_valid(&self, offer: &Offer, data: &[u8]) -> bool {
        if let Some(expected) = &self.config.expected_image {
            return expected.as_slice() == data;
        }
        header_matches(offer, data)
    }
}

/// The OTA header of `data` (read by the project's own decoder, ZCL8 §11.4.2) names the offered
/// image and declares exactly `data.len()` bytes.
fn header_matches(offer: &Offer, data: &[u8]) -> bool {
    let Ok(header) = OtaHeader::decode(data) else {
        return false;
    };
    header.manufacturer_code.0 == offer.manufacturer_code
        && header.image_type.0 == offer.image_type
        && header.file_version.0 == offer.file_version
        && header.image_size == offer.image_size
        && usize::try_from(header.image_size).ok() == Some(data.len())
}
