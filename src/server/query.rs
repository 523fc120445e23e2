//! Query Next Image and Query Device Specific File (ZCL8 §11.13.4 and §11.13.7): which image a
//! device is offered, the installer's gate, and confirming an upgrade when the device comes back
//! running the new version.

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::policy::{self, DeviceQuery, NoImageReason};
use super::request::Message;
use super::session::{LastQuery, PendingUpgrade, Session};
use super::{Ieee, OtaImage, OtaServer, ServerEvent, ZclStatus};

impl OtaServer {
    pub(super) fn device_query<'a>(
        &'a self,
        session: &'a Session,
        last: &LastQuery,
    ) -> DeviceQuery<'a> {
        let identity = session
            .addr
            .ieee
            .and_then(|ieee| self.identities.get(&ieee));
        DeviceQuery {
            ieee: session.addr.ieee,
            manufacturer_code: last.manufacturer_code,
            image_type: last.image_type,
            current_file_version: last.current_file_version,
            hardware_version: last.hardware_version,
            model: identity.and_then(|i| i.model_id.as_deref()),
            manufacturer_name: identity.and_then(|i| i.manufacturer_name.as_deref()),
            vendor_file_version: identity.and_then(|i| i.vendor_file_version),
        }
    }

    pub(super) fn answer_query(
        &mut self,
        session: &mut Session,
        mut query: LastQuery,
        now: Instant,
    ) -> Message {
        // The version the device runs, as far as its vendor lets us know (an Aqara model whose
        // real version is not reported yet is not judged until it is).
        let running =
            super::vendor_rules::running_version(&self.device_query(session, &query)).ok();
        let judged = running.and_then(|running| {
            session.awaiting_confirmation.filter(|pending| {
                running == pending.image.file_version
                    || pending.apply_by.is_some_and(|by| now >= by)
            })
        });
        if let Some(PendingUpgrade {
            image: expected, ..
        }) = judged
        {
            session.awaiting_confirmation = None;
            if let Some(ieee) = session.addr.ieee
                && self
                    .control
                    .downloaded
                    .get(&ieee)
                    .is_some_and(|d| d.released && d.image() == expected)
            {
                self.control.downloaded.remove(&ieee);
                self.control_revision += 1;
            }
            let running = running.unwrap_or(query.current_file_version);
            let confirmed = running == expected.file_version;
            self.confirm_in_history(session.addr, expected, confirmed);
            if confirmed {
                info!(device = %session.addr, image = %expected, "upgrade confirmed");
                self.events.push_back(ServerEvent::UpgradeConfirmed {
                    device: session.addr,
                    image: expected,
                });
            } else {
                warn!(
                    device = %session.addr,
                    image = %expected,
                    running,
                    "device did not apply its new image"
                );
                self.events.push_back(ServerEvent::UpgradeNotApplied {
                    device: session.addr,
                    image: expected,
                    running_version: running,
                });
            }
        }
        let decision = {
            let device_query = self.device_query(session, &query);
            policy::choose_image(&self.images, &device_query, &self.config)
        };
        session.available = decision.as_ref().ok().map(|image| image.key());
        let decision = decision.and_then(|image| {
            let file_version = image.key().file_version;
            match self.installer_gate(session.addr.ieee, file_version, now) {
                Ok(()) => Ok(image),
                Err(withheld) => Err(NoImageReason::Installer {
                    file_version,
                    withheld,
                }),
            }
        });
        let previous = session.last_query.and_then(|q| q.offered);
        let message = match decision {
            Ok(image) => {
                let key = image.key();
                let size = image.size();
                query.offered = Some(key);
                session.last_withheld = None;
                if previous != Some(key) {
                    info!(device = %session.addr, image = %key, size, "offering image");
                    self.events.push_back(ServerEvent::ImageOffered {
                        device: session.addr,
                        image: key,
                        image_size: size,
                    });
                }
                session.remember_offer(image, Some(query));
                Message::QueryNextImageResponse(Ok((key, size)))
            }
            Err(reason) => {
                let text = reason.to_string();
                if session.last_withheld.as_deref() != Some(text.as_str()) {
                    if reason == NoImageReason::NoImageForDevice {
                        debug!(device = %session.addr, %reason, "no image");
                    } else {
                        info!(device = %session.addr, %reason, "no image offered");
                        self.events.push_back(ServerEvent::ImageWithheld {
                            device: session.addr,
                            reason,
                        });
                    }
                    session.last_withheld = Some(text);
                }
                Message::QueryNextImageResponse(Err(ZclStatus::NO_IMAGE_AVAILABLE))
            }
        };
        session.last_query = Some(query);
        message
    }

    /// A device-specific file (ZCL8 §11.13.7) goes only to the device it names, and that
    /// device must be the sender: the `requester` field is the device's own claim, checked
    /// against the address the coordinator vouches for.
    pub(super) fn answer_device_specific(
        &mut self,
        session: &mut Session,
        requester: Ieee,
        manufacturer_code: u16,
        image_type: u16,
        current_file_version: u32,
    ) -> Message {
        if session.addr.ieee != Some(requester) {
            debug!(device = %session.addr, %requester, "device-specific file asked for another device: NO_IMAGE_AVAILABLE");
            return Message::QueryDeviceSpecificFileResponse(Err(ZclStatus::NO_IMAGE_AVAILABLE));
        }
        let for_device: Vec<Arc<OtaImage>> = self
            .images
            .iter()
            .filter(|image| image.destination() == Some(requester))
            .cloned()
            .collect();
        let identity = self.identities.get(&requester);
        let query = DeviceQuery {
            ieee: Some(requester),
            manufacturer_code,
            image_type,
            current_file_version,
            hardware_version: None,
            model: identity.and_then(|i| i.model_id.as_deref()),
            manufacturer_name: identity.and_then(|i| i.manufacturer_name.as_deref()),
            vendor_file_version: identity.and_then(|i| i.vendor_file_version),
        };
        match policy::choose_image(&for_device, &query, &self.config) {
            Ok(image) => {
                let key = image.key();
                let size = image.size();
                info!(device = %session.addr, image = %key, size, "offering device-specific file");
                let asked = LastQuery {
                    manufacturer_code,
                    image_type,
                    current_file_version,
                    hardware_version: None,
                    offered: Some(key),
                };
                session.remember_offer(image, Some(asked));
                Message::QueryDeviceSpecificFileResponse(Ok((key, size)))
            }
            Err(reason) => {
                debug!(device = %session.addr, %reason, "no device-specific file");
                Message::QueryDeviceSpecificFileResponse(Err(ZclStatus::NO_IMAGE_AVAILABLE))
            }
        }
    }
}
