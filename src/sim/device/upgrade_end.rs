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
    /// Checks the downloaded file and sends the Upgrade End Request (again, when `retry`): its
    /// status says whether the image checked out, unless [`DeviceHooks::end_status`] forces one.
    ///
    /// [`DeviceHooks::end_status`]: super::DeviceHooks::end_status
    pub(super) fn send_end_request(&mut self, now: Instant, retry: bool) {
        let forced = self.config.hooks.end_status;
        let (offer, status, verified, attempts) = match &self.state {
            State::Downloading(download) => {
                let valid =
                    forced.is_none() && self.image_is_valid(&download.offer, &download.data);
                let status = forced.unwrap_or(if valid {
                    ZclStatus::SUCCESS
                } else {
                    ZclStatus::INVALID_IMAGE
                });
                (download.offer, status, valid, 0)
            }
            State::Ending {
                offer,
                verified,
                attempts,
                ..
            } => (
                *offer,
                ZclStatus::SUCCESS,
                *verified,
                attempts + u32::from(retry),
            ),
            _ => return,
        };
        if attempts > self.config.max_retries {
            self.end_attempt(offer, verified, UpgradeOutcome::GaveUp, now);
            return;
        }
        if self.config.hooks.keep_log
            && let State::Downloading(download) = &mut self.state
        {
            self.downloaded = std::mem::take(&mut download.data);
        }
        let tsn = self.take_tsn();
        self.send(
            tsn,
            OtaCommand::UpgradeEndRequest(UpgradeEndRequest {
                status,
                manufacturer_code: offer.manufacturer_code,
                image_type: offer.image_type,
                file_version: offer.file_version,
            }),
            now,
        );
        if status == ZclStatus::SUCCESS {
            self.state = State::Ending {
                offer,
                verified,
                deadline: Some(now + self.config.response_timeout),
                attempts,
            };
        } else {
            // The server answers a failure with a Default Response; nothing more to wait for.
            let outcome = if status == ZclStatus::INVALID_IMAGE {
                UpgradeOutcome::InvalidImage
            } else {
                UpgradeOutcome::EndedWith { status }
            };
            self.end_attempt(offer, false, outcome, now);
        }
    }

    pub(super) fn on_end_response(&mut self, response: UpgradeEndResponse, now: Instant) {
        let (State::Ending {
            offer, verified, ..
        }
        | State::AwaitingCommand {
            offer, verified, ..
        }) = self.state
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
            let ask_again = (!self.config.hooks.silent_while_awaiting_command)
                .then(|| now + self.config.query_interval);
            self.state = State::AwaitingCommand {
                offer,
                verified,
                ask_again,
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
            verified,
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
