//! Image Notify (ZCL8 §11.13.3): new catalog images are announced to the devices they concern,
//! unicast when few, else one broadcast whose query jitter is scaled to the number of known
//! devices; and the installer's "upgrade now" for a device waiting for the server's command
//! (§11.13.6.4, upgrade time 0xFFFFFFFF).

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use super::request::{Message, ReplyTo};
use super::session::after;
use super::{
    BROADCAST_ALL_DEVICES, Destination, DeviceKey, NotifyTarget, OtaImage, OtaServer, policy,
};

impl OtaServer {
    /// Replaces the catalog's view. Transfers in progress keep the exact image they were
    /// offered. Known devices for which a new image appears are notified: unicast when few,
    /// else one broadcast with a scaled query jitter.
    pub fn set_images(&mut self, images: Vec<Arc<OtaImage>>, now: Instant) {
        self.images = images;
        let mut concerned = Vec::new();
        let mut available = Vec::new();
        for (key, session) in &self.sessions {
            let Some(last) = session.last_query else {
                continue;
            };
            let query = self.device_query(session, &last);
            let chosen = policy::choose_image(&self.images, &query, &self.config)
                .ok()
                .map(|image| image.key());
            // `status` (and Home Assistant) learn of the new image now, not at the device's
            // next query, which for a sleepy device may be a day away.
            available.push((*key, chosen));
            if chosen.is_some() && last.offered != chosen {
                concerned.push(session.addr);
            }
        }
        for (key, chosen) in available {
            if let Some(session) = self.sessions.get_mut(&key) {
                session.available = chosen;
            }
        }
        if concerned.is_empty() {
            return;
        }
        info!(
            devices = concerned.len(),
            "new images for known devices; notifying"
        );
        if concerned.len() <= self.config.notify_unicast_limit {
            for addr in concerned {
                self.notify(NotifyTarget::Device(addr), now);
            }
        } else {
            self.notify(NotifyTarget::Broadcast, now);
        }
    }

    /// Sends an Image Notify (payload type 0: query jitter only). Broadcasts closer together
    /// than [`ServerConfig::min_broadcast_notify_interval`] are not sent (false), so repeated
    /// catalog refreshes or requests cannot flood the network.
    pub fn notify(&mut self, target: NotifyTarget, now: Instant) -> bool {
        let (destination, query_jitter, key) = match target {
            NotifyTarget::Device(addr) => (Destination::Unicast(addr), 100, Some(addr.key())),
            NotifyTarget::Broadcast => {
                if self
                    .last_broadcast_notify
                    .is_some_and(|at| now < after(at, self.config.min_broadcast_notify_interval))
                {
                    debug!("broadcast Image Notify suppressed: one was sent recently");
                    return false;
                }
                self.last_broadcast_notify = Some(now);
                let known = self
                    .sessions
                    .values()
                    .filter(|s| s.last_query.is_some())
                    .count();
                (
                    Destination::Broadcast(BROADCAST_ALL_DEVICES),
                    broadcast_jitter(self.config.notify_target_responders, known),
                    None,
                )
            }
        };
        info!(?destination, query_jitter, "image notify");
        let tsn = self.take_tsn();
        self.enqueue(
            key,
            destination,
            ReplyTo::Unsolicited { tsn },
            Message::ImageNotify { query_jitter },
        );
        true
    }

    /// Tells a device that was told to wait for a command (upgrade time 0xFFFFFFFF, or a
    /// maintenance window without a wall clock) to apply its image now. False when the device
    /// is not waiting. [`OtaServer::apply`] is the same by IEEE address, with the reason when
    /// nothing is sent.
    pub fn upgrade_now(&mut self, device: DeviceKey, now: Instant) -> bool {
        let waiting = self
            .sessions
            .get(&device)
            .is_some_and(|s| s.awaiting_upgrade_command.is_some());
        if !waiting {
            return false;
        }
        match device {
            DeviceKey::Ieee(ieee) => self.apply(ieee, now).is_ok(),
            DeviceKey::Nwk(_) => self.send_upgrade_command(device, None, now).is_some(),
        }
    }
}

/// `100 · min(target / devices, 1)`, at least 1.
fn broadcast_jitter(target_responders: u32, known_devices: usize) -> u8 {
    let devices = u64::try_from(known_devices.max(1)).unwrap_or(u64::MAX);
    let jitter = (100 * u64::from(target_responders) / devices).clamp(1, 100);
    u8::try_from(jitter).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_jitter_aims_at_the_target_number_of_responders() {
        assert_eq!(broadcast_jitter(15, 0), 100);
        assert_eq!(broadcast_jitter(15, 10), 100);
        assert_eq!(broadcast_jitter(15, 60), 25);
        assert_eq!(broadcast_jitter(15, 1_500), 1);
        assert_eq!(broadcast_jitter(15, 100_000), 1);
    }
}
